"""NIR key and INS kinds: known values, Corsica, and properties over any NIR shape."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from normalizers.nir import (
    ins_kind,
    ins_nir_like,
    ins_oid_for_namespace,
    ins_oid_for_type_code,
    nir_contradicts,
    nir_key,
    nir_key_valid,
    nir_problem,
)


def key_of(base13: str) -> str:
    """Independent reference: 97 - (base mod 97), Corsica 2A -> 19, 2B -> 18."""
    digits = base13[:5] + {"2A": "19", "2B": "18"}.get(base13[5:7], base13[5:7]) + base13[7:]
    return f"{97 - int(digits) % 97:02d}"


def test_corsica_example_from_the_spec_is_valid():
    assert nir_key_valid("188102B17295165")
    assert key_of("188102B172951") == "65"


def test_known_nirs():
    base = "2690375123456"  # woman born March 1969 in Paris 12e (75)
    assert nir_key_valid(base + key_of(base))
    assert not nir_key_valid(base + f"{(int(key_of(base)) % 97) + 1:02d}")
    corse_du_sud = "185072A004123"
    assert nir_key_valid(corse_du_sud + key_of(corse_du_sud))
    assert nir_key_valid(corse_du_sud.replace("2A", "2a") + key_of(corse_du_sud))


def test_ans_example_inses():
    # From the ANS CI-SIS examples (test patients).
    assert nir_key_valid("277076322082910")
    assert nir_key_valid("279035121518989")
    assert not nir_key_valid("276037510669380")  # published with a wrong key


def test_malformed_nirs():
    for bad in ("", "1", "18810217295165", "1881021729516500", "18810X217295165",
                "1881021729516A5", "188102B1729516 ", "１88102B17295165"):
        assert not nir_key_valid(bad)
    assert nir_key("123") is None


@given(st.text(alphabet="0123456789", min_size=13, max_size=13))
def test_any_base_with_its_key_is_valid(base):
    assert nir_key_valid(base + key_of(base))


@given(st.text(alphabet="0123456789", min_size=13, max_size=13), st.integers(0, 99))
def test_any_other_key_fails(base, key):
    good = key_of(base)
    candidate = f"{key:02d}"
    assert nir_key_valid(base + candidate) == (candidate == good)


@given(st.text(alphabet="0123456789", min_size=5, max_size=5), st.sampled_from(["2A", "2B"]),
       st.text(alphabet="0123456789", min_size=6, max_size=6))
def test_corsica_any(head, dept, tail):
    base = head + dept + tail
    assert nir_key_valid(base + key_of(base))


def test_ins_kinds_from_the_table():
    assert ins_kind("1.2.250.1.213.1.4.8") == "INS-NIR"
    assert ins_kind("1.2.250.1.213.1.4.9") == "INS-NIA"
    assert ins_kind("1.2.250.1.213.1.4.10") == "INS-NIR-TEST"
    assert ins_kind("1.2.250.1.213.1.4.11") == "INS-NIR-DEMO"
    assert ins_kind("1.2.250.1.213.1.4.13") == "NIR"
    assert ins_kind("1.2.250.1.213.1.4.14") == "NIA"
    assert ins_kind("1.2.250.1.213.1.4.2") == "INS-C"
    assert ins_kind("1.2.250.1.213.1.4.1") is None
    assert ins_kind("1.2.250.1.71.4.2.1") is None
    assert ins_nir_like("1.2.250.1.213.1.4.8") and not ins_nir_like("1.2.250.1.213.1.4.2")
    assert ins_oid_for_namespace("asip-sante-ins-nir") == "1.2.250.1.213.1.4.8"


def test_ins_type_codes_from_the_table():
    assert ins_oid_for_type_code("INS-NIR") == "1.2.250.1.213.1.4.8"
    assert ins_oid_for_type_code("ins-nia") == "1.2.250.1.213.1.4.9"
    assert ins_oid_for_type_code("INS") is None  # says no kind
    assert ins_oid_for_type_code("PI") is None


def test_nir_problem_says_what_is_wrong_without_quoting_it():
    good = "188102B17295165"
    assert nir_problem(good) == ""
    assert nir_problem(good[:13]) == "has no key (13 characters)"
    assert nir_problem(good[:14]) == "has 14 characters, not 15"
    assert nir_problem("18810X217295165") == "is not digits (Corsica 2A/2B aside)"
    assert nir_problem(good[:13] + "66") == "has a key that does not match"
    assert all(good[:5] not in nir_problem(x) for x in (good[:13], good[:14]))


def test_nir_digits_against_the_traits():
    corse = "188102B17295165"  # man, born October 1988
    assert nir_contradicts(corse, "1988-10-02", "M") == ""
    assert nir_contradicts(corse, "1988-10-02", "F") == "sex"
    assert nir_contradicts(corse, "2005-10-02", "M") == "birth year"
    assert nir_contradicts(corse, "1988-01-02", "M") == "birth month"
    assert nir_contradicts(corse, "", "U") == ""  # nothing to compare
    assert nir_contradicts("2883099123456" + "00", "1988-06-01", "F") == ""  # month 30: unknown
    # the ANS MDM examples: a woman's INS (born July 1974) for a boy born in 2005
    assert nir_contradicts("274075176079430", "2005-01-01", "M") == "sex"
