"""Identity and dedupe round 5: what real senders still got wrong. Invented patients, INS
with made-up digits and valid keys, real LOINC codes and realistic values."""

from __future__ import annotations

import pytest

from dossiers.deposit import fact_of
from dossiers.patients import get_patient
from normalizers.cda import normalize_cda
from normalizers.model import Entry
from parsers.cda import parse_cda
from pipelines.identity import resolve_identity
from tests.conftest import SAMPLES
from tests.test_dedup_channels import cholesterol, cr_bio, file, links, oru
from tests.test_identity_round4 import CHU, dossier, identity, nir, pid, resolve

GLUCOSE = "2345-7"  # Glucose [Mass/volume] in Serum or Plasma
INS_NIR = "1.2.250.1.213.1.4.8"
INS_NIA = "1.2.250.1.213.1.4.9"


@pytest.fixture
def engine(sqlite_engine):  # noqa: ANN001, ANN201
    """A store of the test's own (tests/conftest.py)."""
    return sqlite_engine


def result(effective: str) -> Entry:
    return Entry(type="lab_result", key="k", source_ref="OBX[1]", system="LN", code=GLUCOSE,
                 value="0.92", value_num=0.92, unit="g/L", effective=effective)


# -- dedupe: a time to the hour is not the same instant as a time to the minute --------------
def test_a_result_to_the_hour_is_another_fact_than_one_to_the_minute() -> None:
    """OBX-14 '2024031508+0100' (to the hour) was read as 08:00: the same fact as a result
    taken at 08:00 to the minute. A precision is part of what was stated (as to the day)."""
    hour = fact_of(result("2024-03-15T08+01:00"))
    assert hour != fact_of(result("2024-03-15T08:00+01:00"))
    assert hour == fact_of(result("2024-03-15T07Z"))  # the same hour, in UTC
    assert hour != fact_of(result("2024-03-15T09+01:00"))
    assert fact_of(result("2024-03-15T08+05:30")) != fact_of(result("2024-03-15T02:30Z"))
    # minutes stay what they were: seconds dropped, offsets folded to UTC
    assert fact_of(result("2024-03-15T08:00:42+01:00")) == fact_of(result("2024-03-15T07:00Z"))


def test_oru_to_the_hour_and_cr_bio_to_the_minute_stay_two_entries(sqlite_ctx) -> None:  # noqa: ANN001
    lab = file(sqlite_ctx, oru(obx14="2025020310+0100"), "LABM")
    hospital = file(sqlite_ctx, cr_bio(when="202502031000+0100"), "chu")
    first, second = cholesterol(sqlite_ctx)
    assert links(sqlite_ctx, first.id) == [(lab.id, "created")]
    assert links(sqlite_ctx, second.id) == [(hospital.id, "created")]


def test_oru_and_cr_bio_both_to_the_hour_are_one_entry(sqlite_ctx) -> None:  # noqa: ANN001
    lab = file(sqlite_ctx, oru(obx14="2025020310+0100"), "LABM")
    hospital = file(sqlite_ctx, cr_bio(when="2025020310+0100"), "chu")
    (entry,) = cholesterol(sqlite_ctx)
    assert links(sqlite_ctx, entry.id) == [(lab.id, "created"), (hospital.id, "confirmed")]


# -- PID-5: a birth name typed the plain HL7 way ('M' maiden name, 'B' name at birth) ----------
@pytest.mark.parametrize(("names", "used", "birth"), [
    ("DUPONT^Marie^^^^^D~MARTIN^Marie^^^^^M", "DUPONT", "MARTIN"),  # used name and maiden name
    ("DUPONT^Marie^^^^^L~MARTIN^Marie^^^^^M", "DUPONT", "MARTIN"),  # plain HL7: L is legal
    ("DUPONT^Marie^^^^^U~MARTIN^Marie^^^^^B", "DUPONT", "MARTIN"),  # unspecified, at birth
    ("DUPONT^Marie^^^^^D~MARTIN^Marie^^^^^L", "DUPONT", "MARTIN"),  # PAM France, unchanged
    ("DUPONT^Marie^^^^^A~MARTIN^Marie^^^^^L", "MARTIN", "MARTIN"),  # an alias is no name
    ("MARTIN^Marie^^^^^M", "MARTIN", "MARTIN"),
    # PAM France's pair (L birth, D used) is read as such whatever else is sent
    ("DUPONT^Marie^^^^^D~MARTIN^Marie^^^^^L~LEROY^Marie^^^^^M", "DUPONT", "MARTIN"),
])
def test_maiden_name_typed_m_or_b_is_the_birth_name(names: str, used: str, birth: str) -> None:
    """'DUPONT^Marie^^^^^D~MARTIN^Marie^^^^^M': the maiden name was read as no name at all,
    the used name became the birth name too."""
    ident = identity(pid(f"4711^^^CHU-RENNES&{CHU}&ISO^PI", names))
    assert (ident.family, ident.birth_family, ident.given) == (used, birth, "Marie")


def test_a_maiden_name_other_than_the_dossiers_birth_name_is_another_person(engine) -> None:  # noqa: ANN001
    """Mme Dupont née Martin has a dossier; a message for Mme Dupont née Leroy (same first
    name, birth date, sex: another woman who married another Dupont) sent her maiden name
    typed 'M'. The maiden name dropped, she matched Mme Dupont née Martin's dossier."""
    dossier(engine, family="Dupont", given="Marie", birth_family="Martin")
    res = resolve(engine, pid("", "DUPONT^Marie^^^^^D~LEROY^Marie^^^^^M"))
    assert (res.patient_id, res.code) == (None, "IDENTITY_UNKNOWN_PATIENT")
    found = dossier(engine, family="Dupont", given="Marie", birth_family="Leroy")
    assert resolve(engine, pid("", "DUPONT^Marie^^^^^D~LEROY^Marie^^^^^M")).patient_id == found


# -- a newborn's message carrying its mother's identifier ----------------------------------------
MOTHER_NIR = nir("2840699351042")  # Mme Le Bihan née Martin, born June 1984 abroad (99)


def newborn_pid(ids: str, mother: str, status: str = "VALI", birth: str = "202611200412",
                sex: str = "M", given: str = "Noé") -> str:
    """PID of a baby born on 20 Nov 2026, PID-21 naming the mother."""
    fields = ["PID", "", "", ids, "", f"LE BIHAN^{given}^^^^^L", "", birth, sex]
    fields += [""] * (21 - len(fields)) + [mother] + [""] * 10 + [status]
    return "|".join(fields)


MOTHER = f"{MOTHER_NIR}^^^ASIP-SANTE-INS-NIR&{INS_NIR}&ISO^INS~7311^^^CHU-RENNES&{CHU}&ISO^PI"


@pytest.mark.parametrize("ids", [
    f"{MOTHER_NIR}^^^ASIP-SANTE-INS-NIR&{INS_NIR}&ISO^INS~88001^^^CHU-RENNES&{CHU}&ISO^PI",
    f"{MOTHER_NIR}^^^ASIP-SANTE-INS-NIR&{INS_NIR}&ISO^INS",
    f"7311^^^CHU-RENNES&{CHU}&ISO^PI",  # the mother's IPP
])
@pytest.mark.parametrize(("feeding", "birth", "sex", "given"), [
    (False, "202611200412", "M", "Noé"),  # the birth's ADT^A01: an identity update
    (True, "", "F", "Maëlle"),  # results for a girl named after her mother, no birth date
])
def test_newborn_message_with_the_mothers_identifier_is_a_conflict(
        engine, ids: str, feeding: bool, birth: str, sex: str, given: str) -> None:  # noqa: ANN001
    """The maternity's software filled the baby's PID-3 with the mother's INS (or IPP), the
    one PID-21 gives as the mother's. Found by it, the mother's dossier took the baby's ADT
    (traits differing are a warning in an identity update: her identity became the baby's),
    and results whose traits did not contradict hers (no birth date)."""
    dossier(engine, ins=MOTHER_NIR, ins_oid=INS_NIR, ids=((CHU, "7311", "PI"),))
    with engine.begin() as conn:
        res = resolve_identity(conn, identity(newborn_pid(ids, MOTHER, birth=birth, sex=sex,
                                                          given=given)),
                               auto_create=True, feeding=feeding)
    assert (res.patient_id, res.code) == (None, "IDENTITY_CONFLICT")
    assert "mother" in res.reason and MOTHER_NIR not in res.reason and "7311" not in res.reason


def test_newborn_with_his_own_ipp_and_his_mother_in_pid21_is_filed(engine) -> None:  # noqa: ANN001
    dossier(engine, ins=MOTHER_NIR, ins_oid=INS_NIR)
    baby = dossier(engine, family="Le Bihan", given="Noé", birth_date="2026-11-20", sex="M",
                   birth_family="Le Bihan", ids=((CHU, "88001", "PI"),))
    res = resolve(engine, newborn_pid(f"88001^^^CHU-RENNES&{CHU}&ISO^PI",
                                      f"{MOTHER_NIR}^^^ASIP-SANTE-INS-NIR&{INS_NIR}&ISO^INS",
                                      status="PROV"))
    assert (res.patient_id, res.code) == (baby, None)


# -- CDA recordTarget: ids with a nullFlavor, roots written as URNs ------------------------------
CRBIO = (SAMPLES / "cda" / "01_crbio_labm_lipides_glycemie.xml").read_text(encoding="utf-8")
CRBIO_IDS = ('      <id extension="155112923219071" root="1.2.250.1.213.1.4.10"/>\n'
             '      <id extension="4100001953" root="2.999.250.1.1"/>')


def cda_identity(ids: str):  # noqa: ANN201
    assert CRBIO_IDS in CRBIO
    data = CRBIO.replace(CRBIO_IDS, ids).encode()
    return normalize_cda(parse_cda(data), data, "chu").identity


def test_cda_id_with_a_null_flavor_is_no_identifier() -> None:
    """'<id nullFlavor="MSK" root="1.2.250.1.213.1.4.10" extension="..."/>': an II with a
    nullFlavor is null; its extension was read as the INS (trusted as VALI), and a
    placeholder IPP under nullFlavor UNK as the patient's."""
    ident = cda_identity('<id nullFlavor="MSK" extension="155112923219071" '
                         'root="1.2.250.1.213.1.4.10"/>\n'
                         '<id nullFlavor="UNK" extension="0000000000" root="2.999.250.1.1"/>\n'
                         '<id extension="4100001953" root="2.999.250.1.2"/>')
    assert ident.ins == [] and ident.identity_status == ""
    assert [(li.authority, li.value) for li in ident.local_ids] == [("2.999.250.1.2",
                                                                      "4100001953")]
    assert sum("nullFlavor" in w for w in ident.warnings) == 2
    assert not any("155112923219071" in w or "0000000000" in w for w in ident.warnings)


def test_cda_ins_root_written_as_an_oid_urn_is_the_ins() -> None:
    """root="urn:oid:1.2.250.1.213.1.4.10": the INS was a local identifier of authority
    'urn:oid:...', never checked as an INS (PID-32 rule, key, test vs production)."""
    ident = cda_identity('<id extension="1 55 11 29 232 190 71" '
                         'root="urn:oid:1.2.250.1.213.1.4.10"/>\n'
                         '<id extension="4100001953" root=" urn:oid:2.999.250.1.1 "/>')
    assert [(i.nir, i.oid, i.kind, i.key_valid) for i in ident.ins] == [
        ("155112923219071", "1.2.250.1.213.1.4.10", "INS-NIR-TEST", True)]
    assert [(li.authority, li.value) for li in ident.local_ids] == [("2.999.250.1.1",
                                                                      "4100001953")]
    assert ident.identity_status == "VALI"


# -- a birth date to the year or the month still contradicts a dossier born in another ---------
@pytest.mark.parametrize(("birth", "code"), [
    ("1984", None), ("198406", None), ("19840600", None), ("19840000", None),
    ("1990", "IDENTITY_TRAITS_MISMATCH"),  # the IPP of another person (or a typing error)
    ("198407", "IDENTITY_TRAITS_MISMATCH"),
    ("19570000", "IDENTITY_TRAITS_MISMATCH"),  # INS traits of someone born abroad, in 1957
])
def test_partial_birth_date_is_compared_with_the_dossiers(engine, birth: str, code) -> None:  # noqa: ANN001
    """PID-7 '1990' was kept empty and compared with nothing: the results of a man born in
    1990 were filed in the dossier of Mme Le Bihan, born 12 June 1984, its IPP sent."""
    found = dossier(engine, ids=((CHU, "7311", "PI"),))
    res = resolve(engine, pid(f"7311^^^CHU-RENNES&{CHU}&ISO^PI", birth=birth))
    assert (res.patient_id, res.code) == ((None, code) if code else (found, None))


def test_cda_birth_time_to_the_year_is_kept_for_the_traits_check() -> None:
    assert '<birthTime value="19551102"/>' in CRBIO
    data = CRBIO.replace('<birthTime value="19551102"/>', '<birthTime value="1955"/>').encode()
    ident = normalize_cda(parse_cda(data), data, "chu").identity
    assert (ident.birth_date, ident.birth_date_partial) == ("", "1955")


# -- twins: never told apart by their traits ---------------------------------------------------
def twin_pid(given: str, multiple: str = "Y", order: str = "2") -> str:
    """PID of the second of twin boys born on 20 Nov 2026 (PID-24, PID-25), no INS yet."""
    fields = ["PID", "", "", f"88002^^^CHU-RENNES&{CHU}&ISO^PI", "", f"LE BIHAN^{given}", "",
              "20261120", "M"] + [""] * 15 + [multiple, order] + [""] * 6 + ["PROV"]
    return "|".join(fields)


@pytest.mark.parametrize(("given", "multiple", "order"), [
    ("BEBE 2", "Y", "2"), ("Bébé 2", "", "2"), ("BEBE", "Y", ""),
])
def test_a_twin_is_never_filed_by_demographics(engine, given: str, multiple: str,  # noqa: ANN001
                                               order: str) -> None:
    """Twin boys, 'BEBE 1' and 'BEBE 2' until named: the first one's dossier exists, the
    second one's IPP is not known yet. 'BEBE 2' keys as BEBE, so the second twin matched
    the first one's dossier by family name, first given name, birth date and sex."""
    dossier(engine, given="BEBE 1", birth_date="2026-11-20", sex="M", birth_family="Le Bihan")
    res = resolve(engine, twin_pid(given, multiple, order))
    assert (res.patient_id, res.code) == (None, "IDENTITY_UNKNOWN_PATIENT")
    assert "multiple birth" in res.reason


@pytest.mark.parametrize(("multiple", "order"), [("N", ""), ("", "1"), ("N", "1"), ("", "")])
def test_a_single_birth_still_matches_by_demographics(engine, multiple: str,  # noqa: ANN001
                                                      order: str) -> None:
    found = dossier(engine, given="Noé", birth_date="2026-11-20", sex="M",
                    birth_family="Le Bihan")
    assert resolve(engine, twin_pid("Noé", multiple, order)).patient_id == found


@pytest.mark.parametrize(("birth", "sex", "given"), [
    ("202611200412", "M", "Noé"),  # her son: sex and birth year contradict her NIR
    ("202611200412", "F", "Léa"),  # her daughter: the birth year does
])
def test_mothers_ins_is_not_given_to_her_babys_dossier(engine, birth: str, sex: str,  # noqa: ANN001
                                                       given: str) -> None:
    """The baby's dossier (made under a provisional identity, known by its IPP 88001); the
    maternity's message sends the baby's IPP beside the mother's INS, qualified, and no
    PID-21. The INS no dossier held was given to the baby's dossier: the mother's results
    went there from then on. The NIR's digits say a woman born in June 1984."""
    baby = dossier(engine, family="Le Bihan", given=given, birth_date="2026-11-20", sex=sex,
                   birth_family="Le Bihan", ids=((CHU, "88001", "PI"),))
    ids = f"{MOTHER_NIR}^^^ASIP-SANTE-INS-NIR&{INS_NIR}&ISO^INS~88001^^^CHU-RENNES&{CHU}&ISO^PI"
    res = resolve(engine, newborn_pid(ids, "", birth=birth, sex=sex, given=given))
    assert (res.patient_id, res.code) == (None, "IDENTITY_TRAITS_MISMATCH")
    with engine.connect() as conn:
        assert get_patient(conn, baby).ins is None


def test_the_babys_own_ins_is_given_to_its_dossier(engine) -> None:  # noqa: ANN001
    own = nir("1261199351042")  # a boy born in November 2026
    baby = dossier(engine, family="Le Bihan", given="Noé", birth_date="2026-11-20", sex="M",
                   birth_family="Le Bihan", ids=((CHU, "88001", "PI"),))
    ids = f"{own}^^^ASIP-SANTE-INS-NIR&{INS_NIR}&ISO^INS~88001^^^CHU-RENNES&{CHU}&ISO^PI"
    assert resolve(engine, newborn_pid(ids, "")).patient_id == baby
    with engine.connect() as conn:
        assert get_patient(conn, baby).ins == own


def test_a_twins_own_ins_makes_its_dossier_beside_its_twins(engine) -> None:  # noqa: ANN001
    """Twin boys 'BEBE 1' (dossier with his INS-NIR) and 'BEBE 2', whose own INS-NIR arrives
    qualified: the first twin's dossier was a look-alike (same keyed traits), so the second
    was quarantined for an admin, though one person has one INS and that dossier holds
    another. A look-alike holding a temporary INS-NIA may still be this person."""
    first = dossier(engine, family="Le Bihan", given="BEBE 1", birth_date="2026-11-20",
                    sex="M", birth_family="Le Bihan", ins=nir("1261199351042"), ins_oid=INS_NIR)
    second_ins = nir("1261199351043")
    segment = newborn_pid(f"{second_ins}^^^ASIP-SANTE-INS-NIR&{INS_NIR}&ISO^INS", "",
                          given="BEBE 2")
    res = resolve(engine, segment, auto_create=True)
    assert res.code is None and res.via == "auto-create" and res.patient_id != first
    nia = dossier(engine, family="Le Bihan", given="BEBE", birth_date="2026-11-20", sex="F",
                  birth_family="Le Bihan", ins=nir("8261199351044"), ins_oid=INS_NIA)
    segment = newborn_pid(f"{nir('2261199351045')}^^^ASIP-SANTE-INS-NIR&{INS_NIR}&ISO^INS",
                          "", given="BEBE", sex="F")
    res = resolve(engine, segment, auto_create=True)
    assert (res.patient_id, res.code) == (None, "IDENTITY_AMBIGUOUS") and nia


def test_pipeline_results_with_the_mothers_ins_in_pid21_are_quarantined(sqlite_ctx) -> None:  # noqa: ANN001
    """The whole way: an ORU whose PID-21 gives as the mother's the INS that PID-3 sends
    (a sample patient's, whose dossier exists): quarantined, on the ledger with its code
    and a reason naming fields only."""
    message = oru().decode()
    old = next(seg for seg in message.split("\r") if seg.startswith("PID|"))
    f = old.split("|")
    f[21] = f[3].split("~")[0]
    row = file(sqlite_ctx, message.replace(old, "|".join(f)).encode(), "LABM")
    assert (row.status, row.error_code) == ("quarantined", "IDENTITY_CONFLICT")
    assert "mother" in row.error_message and "155112923219071" not in row.error_message
    assert cholesterol(sqlite_ctx) == []
