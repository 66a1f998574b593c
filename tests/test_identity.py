"""Identity from PID (PAM France): INS vs billing NIR vs local ids, names, birth date."""

from __future__ import annotations

from pathlib import Path

import pytest

from normalizers.identity import extract_identity
from normalizers.model import NormalizationError
from parsers.hl7v2.er7 import parse_text

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"
MSH = "MSH|^~\\&|GAM|CHU-X|DPI|CHU-X|20240306111154||ADT^A01^ADT_A01|1|P|2.5|||||FRA|UNICODE UTF-8"


def nir(base13: str) -> str:
    digits = base13[:5] + {"2A": "19", "2B": "18"}.get(base13[5:7], base13[5:7]) + base13[7:]
    return f"{base13}{97 - int(digits) % 97:02d}"


HELENE = nir("2880299351042")  # woman, Feb 1988, born in Finistère (29)
HELENE_BAD = HELENE[:13] + f"{(int(HELENE[13:]) % 97) + 1:02d}"


def msg(pid: str):
    return parse_text(f"{MSH}\r{pid}\r")


def test_french_pid():
    m = msg(f"PID|1||000123^^^CHU-X&1.2.250.1.999.1.1&ISO^PI~{HELENE}^^^ASIP-SANTE-INS-NIR&"
            "1.2.250.1.213.1.4.8&ISO^INS^^20230101~1880229351042^^^CPAM&1.2.250.1.213.1.4.13&"
            "ISO^NH||LEFÈVRE-ÜNAL^Hélène^Hélène Marie^^^^D~MARTIN^Hélène^Hélène Marie^^^^L||"
            "19880215|F" + "|" * 24 + "VALI")
    ident = extract_identity(m)
    assert [(i.nir, i.oid, i.kind, i.key_valid) for i in ident.ins] == [
        (HELENE, "1.2.250.1.213.1.4.8", "INS-NIR", True)]
    assert [(x.authority, x.value, x.type_code) for x in ident.local_ids] == [
        ("1.2.250.1.999.1.1", "000123", "PI"),
        ("1.2.250.1.213.1.4.13", "1880229351042", "NH"),  # billing NIR: never an INS
    ]
    assert ident.family == "LEFÈVRE-ÜNAL"
    assert ident.birth_family == "MARTIN"
    assert ident.given == "Hélène"
    assert ident.birth_date == "1988-02-15"
    assert ident.sex == "F"
    assert ident.identity_status == "VALI"
    assert ident.warnings == []


def test_invalid_key_is_flagged_and_never_printed():
    m = msg(f"PID|||{HELENE_BAD}^^^ASIP-SANTE-INS-NIR&1.2.250.1.213.1.4.8&ISO^INS||"
            "LEFÈVRE-ÜNAL^Hélène^^^^^L||1988|F")
    ident = extract_identity(m)
    assert ident.ins[0].key_valid is False
    assert ident.birth_date == ""
    assert any("partial" in w for w in ident.warnings)
    text = " ".join(ident.warnings)
    assert HELENE_BAD not in text and "LEFÈVRE" not in text and "1988" not in text
    assert "PID[2]-3" in text


def test_ins_recognised_by_oid_whatever_cx5_and_by_namespace_alone():
    m = msg(f"PID|||{HELENE}^^^&1.2.250.1.213.1.4.10&ISO^PI~{nir('1850599123456')}^^^"
            "ASIP-SANTE-INS-NIR^INS||DUPONT^Jean")
    ident = extract_identity(m)
    assert [i.kind for i in ident.ins] == ["INS-NIR-TEST", "INS-NIR"]
    assert all(i.key_valid for i in ident.ins)
    assert any("namespace" in w for w in ident.warnings)


def test_corsican_ins():
    corse = nir("188102B172951")
    assert corse == "188102B17295165"
    m = msg(f"PID|||{corse}^^^ASIP-SANTE-INS-NIR&1.2.250.1.213.1.4.8&ISO^INS||CASANOVA^Ghjuvan")
    assert extract_identity(m).ins[0].key_valid


def test_local_ids_authority_canonical_and_typed_ins_without_ins_oid():
    m = msg("PID|||42^^^LABO-NORD^PI~43^^^LABO&1.2.250.1.999.7&ISO^PI~44^^^CHU-X&000897406&M^MR"
            "~45^^^FOO&1.2.3&L^INS||DUPONT^Jean")
    ident = extract_identity(m)
    assert [(x.authority, x.value, x.type_code) for x in ident.local_ids] == [
        ("LABO-NORD@CHU-X", "42", "PI"), ("1.2.250.1.999.7", "43", "PI"), ("CHU-X", "44", "MR"),
        ("1.2.3", "45", "INS")]
    assert ident.ins == []
    assert any("not an INS OID" in w for w in ident.warnings)


def test_v23_pid2_and_single_name():
    m = parse_text("MSH|^~\\&|LAB|X|||199901011200||ORU^R01|9|P|2.3\r"
                   "PID|1|A1234^^^HOSP|B567^^^LABO||Dupont^Marie-Noëlle||19550101|F\r")
    ident = extract_identity(m)
    assert [(x.authority, x.value) for x in ident.local_ids] == [("LABO@X", "B567"),
                                                                 ("HOSP@X", "A1234")]
    assert ident.family == ident.birth_family == "Dupont"
    assert ident.given == "Marie-Noëlle"
    assert ident.birth_date == "1955-01-01"


def test_birth_date_with_time_and_invalid_date():
    assert extract_identity(msg("PID|||1^^^A^PI||X^Y||198802150930|M")).birth_date == \
        "1988-02-15"
    ident = extract_identity(msg("PID|||1^^^A^PI||X^Y||19880230|M"))
    assert ident.birth_date == "" and any("not a valid date" in w for w in ident.warnings)


def test_escaped_name():
    ident = extract_identity(msg("PID|||1^^^A^PI||D\\T\\ANGELO^Zoé||20000101|F"))
    assert ident.family == "D&ANGELO"


def test_no_pid():
    with pytest.raises(NormalizationError) as exc:
        extract_identity(parse_text(MSH))
    assert exc.value.code == "HL7_NO_PID"


@pytest.mark.skipif(not (CORPUS / "hl7v2").is_dir(), reason="shared corpus absent")
def test_corpus_pam_admission():
    m = parse_text((CORPUS / "hl7v2" / "SGL_admission.er7").read_text(encoding="utf-8"))
    ident = extract_identity(m)
    assert [(i.kind, i.key_valid) for i in ident.ins] == [("INS-NIR-TEST", True)]
    assert ident.local_ids[0].type_code == "PI"
    assert ident.local_ids[0].authority == "CHU-X"  # '000897406' typed 'N' is no OID
    assert (ident.family, ident.given, ident.birth_date, ident.sex) == (
        "PAT-TROIS", "DOMINIQUE", "1979-03-28", "F")


def test_ins_without_oid_is_an_ins_whatever_its_type_code():
    # The namespace alone, typed PI (or untyped), or only an INS type code (FR Core v2-0203):
    # still the INS, never a local identifier matched whatever PID-32 says.
    m = msg(f"PID|||{HELENE}^^^ASIP-SANTE-INS-NIR^PI~{nir('1850599123456')}^^^^INS-NIA~"
            f"{nir('2920645123789')}^^^ASIP-SANTE-INS-NIR~{nir('1711275123321')}^^^INS-NIR~"
            f"{nir('1650313055123')}^^^ASIP^INS-NIR||LE GOFF^Maëlle||19920615|F"
            + "|" * 24 + "PROV")
    ident = extract_identity(m)
    assert [(i.kind, i.key_valid) for i in ident.ins] == [
        ("INS-NIR", True), ("INS-NIA", True), ("INS-NIR", True), ("INS-NIR", True),
        ("INS-NIR", True)]
    assert ident.local_ids == []
    assert sum("INS without OID" in w for w in ident.warnings) == 5
    assert any("type code (CX.5)" in w for w in ident.warnings)
    assert HELENE not in " ".join(ident.warnings)


def test_billing_nir_under_an_ins_namespace_stays_billing():
    m = msg(f"PID|||{HELENE}^^^ASIP-SANTE-INS-NIR^NH||LE GOFF^Maëlle||19920615|F")
    ident = extract_identity(m)
    assert ident.ins == []
    assert [(x.authority, x.type_code) for x in ident.local_ids] == [
        ("ASIP-SANTE-INS-NIR", "NH")]


def test_ins_type_code_under_a_local_authority_is_warned():
    m = msg(f"PID|||{HELENE}^^^CHU-X&1.2.250.1.999.1.1&ISO^INS-NIR||LE GOFF^Maëlle")
    ident = extract_identity(m)
    assert ident.ins == []
    assert any("not an INS OID" in w for w in ident.warnings)


def test_pseudonym_is_never_the_patients_name():
    # An anonymous patient (name type S, HL7 table 0200): a demographic match on it could
    # only find someone else.
    ident = extract_identity(msg("PID|||1^^^A^PI||ANONYME^Patient^^^^^S||19900101|F"))
    assert (ident.family, ident.given, ident.birth_family) == ("", "", "")
    assert any("pseudonym" in w for w in ident.warnings)
    assert "ANONYME" not in " ".join(ident.warnings)
    both = extract_identity(msg("PID|||1^^^A^PI||X123^Y^^^^^S~LE GOFF^Maëlle^^^^^L||19900101|F"))
    assert (both.family, both.given) == ("LE GOFF", "Maëlle")


def test_first_given_name_from_the_list_when_pid_5_2_is_empty():
    ident = extract_identity(msg("PID|||1^^^A^PI||D'ARTAGNAN^^Anne-Laure Zoé^^^^L||19900101|F"))
    assert (ident.family, ident.given) == ("D'ARTAGNAN", "Anne-Laure")


def test_ins_with_blanks_or_without_key_and_unknown_birth_day():
    spaced = " ".join([HELENE[:1], HELENE[1:3], HELENE[3:5], HELENE[5:7], HELENE[7:10],
                       HELENE[10:13], HELENE[13:]])
    m = msg(f"PID|||{spaced}^^^ASIP-SANTE-INS-NIR&1.2.250.1.213.1.4.8&ISO^INS~"
            f"{HELENE[:13]}^^^ASIP-SANTE-INS-NIR&1.2.250.1.213.1.4.10&ISO^INS||"
            "LE GOFF^Maëlle||19880200|F")
    ident = extract_identity(m)
    assert [(i.nir, i.key_valid) for i in ident.ins] == [(HELENE, True), (HELENE[:13], False)]
    text = " ".join(ident.warnings)
    assert "has no key (13 characters)" in text and HELENE[:13] not in text
    assert ident.birth_date == "" and "unknown month or day" in text and "1988" not in text


def test_identity_unknown_indicator_makes_the_traits_placeholders():
    # PID-31 'Y' (HL7 v2.5): an unconscious patient admitted as 'INCONNU', a made-up date.
    pid = "PID|||U-77^^^CHU-X^PI||INCONNU^Homme||19000101|M" + "|" * 23 + "Y|PROV"
    ident = extract_identity(msg(pid))
    assert (ident.family, ident.given, ident.birth_date, ident.sex) == ("", "", "", "M")
    assert [x.value for x in ident.local_ids] == ["U-77"]
    assert ident.identity_status == "PROV"
    assert any("PID[2]-31" in w for w in ident.warnings)
    assert "INCONNU" not in " ".join(ident.warnings)
    known = extract_identity(msg(pid.replace("|Y|PROV", "|N|PROV")))
    assert (known.family, known.birth_date) == ("INCONNU", "1900-01-01")
