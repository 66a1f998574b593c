"""Identity round 3: PID-3, PID-5 and recordTarget shapes from senders not seen before, and
whether each lands in the right dossier, or is quarantined with a specific code. Invented
patients; INS under the test OIDs or with made-up digits and valid keys; real LOINC codes."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dossiers.patients import add_identifier, create_patient
from normalizers.identity import extract_identity
from parsers.hl7v2.er7 import parse_text
from pipelines.identity import resolve_identity

MSH = "MSH|^~\\&|DXCARE|CHU-NANTES|DMP|DMP|20261120093000+0100||ORU^R01^ORU_R01|77|P|2.5"
INS_NIR = "1.2.250.1.213.1.4.8"
INS_TEST = "1.2.250.1.213.1.4.10"
CHU = "1.2.250.1.71.4.2.2.440000001"  # the hospital's IPP domain


def nir(base13: str) -> str:
    digits = base13[:5] + {"2A": "19", "2B": "18"}.get(base13[5:7], base13[5:7]) + base13[7:]
    return f"{base13}{97 - int(digits) % 97:02d}"


HELENE = nir("2790351215189")


def pid(ids: str, names: str = "LEFÈVRE^Hélène^^^^^L", birth: str = "19790328",
        sex: str = "F", status: str = "PROV") -> str:
    return f"PID|||{ids}||{names}||{birth}|{sex}" + "|" * 24 + status


@pytest.fixture
def engine(sqlite_engine):  # noqa: ANN001, ANN201
    """A store of the test's own (tests/conftest.py)."""
    return sqlite_engine


def identity(segment: str):  # noqa: ANN201
    return extract_identity(parse_text(f"{MSH}\r{segment}\r"))


def dossier(engine, *, family: str = "Lefèvre", given: str = "Hélène",  # noqa: ANN001
            birth_date: str = "1979-03-28", sex: str = "F", ins: str | None = None,
            ins_oid: str | None = None, birth_family: str | None = None,
            ids: tuple[tuple[str, str, str], ...] = ()) -> int:
    with engine.begin() as conn:
        pid_ = create_patient(conn, family=family, given=given, birth_date=birth_date, sex=sex,
                              ins=ins, ins_oid=ins_oid, birth_family=birth_family)
        for authority, value, type_code in ids:
            add_identifier(conn, pid_, authority, value, type_code)
    return pid_


def resolve(engine, segment: str, auto_create: bool = False):  # noqa: ANN001, ANN201
    with engine.begin() as conn:
        return resolve_identity(conn, identity(segment), auto_create=auto_create)


# -- PID-3: identifiers that do not name the patient ----------------------------------------------
def test_stay_number_beside_the_ipp_is_not_a_patient_identifier(engine):  # noqa: ANN001
    """A sender repeating the stay number (NDA, CX.5 AN) in PID-3 under the hospital's
    authority: the NDA 200777 is also Paul Durand's IPP. It named his dossier too (the
    message, clearly Hélène's by her IPP, was IDENTITY_AMBIGUOUS), and once filed it was
    remembered as Hélène's identifier, pointing Paul's next messages at her dossier."""
    helene = dossier(engine, ids=((CHU, "100234", "PI"),))
    paul = dossier(engine, family="Durand", given="Paul", birth_date="1985-06-01", sex="M",
                   ids=((CHU, "200777", "PI"),))
    ids = f"100234^^^CHU-NANTES&{CHU}&ISO^PI~200777^^^CHU-NANTES&{CHU}&ISO^AN"
    found = resolve(engine, pid(ids))
    assert (found.patient_id, found.via) == (helene, "local-id")
    said = identity(pid(ids))
    assert [li.value for li in said.local_ids] == ["100234"]
    assert any("repetition 2" in w and "AN" in w for w in said.warnings)
    # nothing learnt from the NDA: Paul's IPP still names Paul alone
    paul_says = pid(f"200777^^^CHU-NANTES&{CHU}&ISO^PI", "DURAND^Paul^^^^^L", "19850601", "M")
    assert resolve(engine, paul_says).patient_id == paul


def test_visit_number_alone_finds_no_dossier_by_itself(engine):  # noqa: ANN001
    dossier(engine, family="Durand", given="Paul", birth_date="1985-06-01", sex="M",
            ids=((CHU, "200777", "PI"),))
    helene = dossier(engine)
    found = resolve(engine, pid(f"200777^^^CHU-NANTES&{CHU}&ISO^VN"))
    assert (found.patient_id, found.via) == (helene, "demographics")



def test_ipp_authority_written_as_an_oid_urn_is_the_bare_oid(engine):  # noqa: ANN001
    """The dossier learnt the IPP from a CDA (id/@root is a bare OID); the same hospital's
    HL7v2 engine writes CX.4.2 as 'urn:oid:...': it was another authority, so the IPP was
    unknown and, the traits incomplete (birth date at year precision), refused."""
    helene = dossier(engine, ids=((CHU, "100234", "PI"),))
    for hd in (f"CHU-NANTES&urn:oid:{CHU}&ISO", f"&urn:oid:{CHU}&URI", f"urn:oid:{CHU}"):
        said = identity(pid(f"100234^^^{hd}^PI", birth="1979"))
        assert [(li.authority, li.value) for li in said.local_ids] == [(CHU, "100234")], hd
        found = resolve(engine, pid(f"100234^^^{hd}^PI", birth="1979"))
        assert (found.patient_id, found.via) == (helene, "local-id"), hd

# -- an INS not qualified still says whose it is not ----------------------------------------------
def test_unqualified_ins_held_by_another_dossier_than_the_ipp_names_is_a_conflict(engine):  # noqa: ANN001, E501
    """PID-32 PROV: the INS does not choose the dossier; but the IPP names Hélène's dossier
    without INS, and another dossier holds that INS qualified: one of the two numbers is
    wrong. It was filed in the IPP's dossier; it is IDENTITY_CONFLICT now. With an attribute
    doubting the INS (DOUTE: the card may be another person's), the IPP decides, as before."""
    by_ipp = dossier(engine, ids=((CHU, "100234", "PI"),))
    dossier(engine, family="Lefèvre", given="Hélène", ins=HELENE, ins_oid=INS_NIR)
    ids = f"100234^^^CHU-NANTES&{CHU}&ISO^PI~{HELENE}^^^ASIP-SANTE-INS-NIR&{INS_NIR}&ISO^INS"
    for status in ("PROV", "RECUP", ""):
        found = resolve(engine, pid(ids, status=status))
        assert (found.patient_id, found.code) == (None, "IDENTITY_CONFLICT"), status
        assert "held by another dossier" in found.reason and HELENE not in found.reason
    doubted = resolve(engine, pid(ids, status="PROV~DOUTE"))
    assert (doubted.patient_id, doubted.via) == (by_ipp, "local-id")


def test_unqualified_ins_other_than_the_dossiers_is_a_conflict(engine):  # noqa: ANN001
    """The IPP's dossier holds a qualified INS; the message sends another one (RECUP):
    the IPP was typed for the wrong patient, or the INS is another person's."""
    dossier(engine, ins=HELENE, ins_oid=INS_NIR, ids=((CHU, "100234", "PI"),))
    other = nir("2790375056077")
    ids = f"100234^^^CHU-NANTES&{CHU}&ISO^PI~{other}^^^ASIP-SANTE-INS-NIR&{INS_NIR}&ISO^INS"
    found = resolve(engine, pid(ids, status="RECUP"))
    assert (found.patient_id, found.code) == (None, "IDENTITY_CONFLICT")
    assert "holds another INS" in found.reason


def test_unqualified_ins_beside_a_demographic_match_of_another_holder(engine):  # noqa: ANN001
    """No IPP: the traits match a dossier without INS; the dossier holding the INS sent
    (PROV) goes by a used name, so the traits do not find it. The INS says the patient is
    that second dossier's: not filed in the look-alike."""
    dossier(engine)
    dossier(engine, family="Lefèvre-Marchal", given="Hélène", ins=HELENE, ins_oid=INS_NIR)
    ids = f"{HELENE}^^^ASIP-SANTE-INS-NIR&{INS_NIR}&ISO^INS"
    found = resolve(engine, pid(ids, status="PROV"))
    assert (found.patient_id, found.code) == (None, "IDENTITY_CONFLICT")


def test_unqualified_ins_the_dossier_holds_files_there(engine):  # noqa: ANN001
    held = dossier(engine, ins=HELENE, ins_oid=INS_TEST, ids=((CHU, "100234", "PI"),))
    spaced = " ".join((HELENE[0], HELENE[1:3], HELENE[3:5], HELENE[5:7], HELENE[7:10],
                       HELENE[10:13], HELENE[13:]))
    ids = f"{spaced}^^^ASIP-SANTE-INS-NIR-TEST&{INS_TEST}&ISO^INS~100234^^^&{CHU}&ISO^PI"
    found = resolve(engine, pid(ids, status="PROV"))
    assert (found.patient_id, found.code) == (held, None)


# -- PID-5 / CDA name: 'épouse' and 'née' in one family name field ---------------------------------
def test_married_names_in_one_field_are_the_birth_and_the_used_name(engine):  # noqa: ANN001
    """A LIS with one name field writes 'MARTIN ÉPOUSE DUPONT' or 'DUPONT NÉE MARTIN': the
    whole string matched neither name and the patient, known as Mme Dupont, was refused."""
    marie = dossier(engine, family="Dupont", given="Marie-Claire", birth_date="1980-01-15")
    for names in ("MARTIN ÉPOUSE DUPONT^Marie-Claire^^^^^L", "Martin ep. Dupont^MARIE-CLAIRE",
                  "DUPONT NÉE MARTIN^Marie-Claire^^^^^D",
                  "MARTIN^Marie-Claire^^^^^L~MARTIN EPSE DUPONT^Marie-Claire^^^^^D"):
        said = identity(pid("", names, "19800115"))
        assert (said.family.upper(), said.birth_family.upper()) == ("DUPONT", "MARTIN"), names
        assert any("épouse" in w and "PID[2]-5" in w for w in said.warnings)
        found = resolve(engine, pid("", names, "19800115"))
        assert (found.patient_id, found.via) == (marie, "demographics"), names


def test_a_joining_word_inside_a_plain_name_is_not_split():
    for names in ("LE NEE^Yann", "EP DUPONT^Anne", "MARTIN VVE DUPONT NEE X^Anne",
                  "NEEL^Anne", "DE LA NÉE-ROCHE^Anne"):
        said = identity(pid("", names))
        assert said.family == said.birth_family == names.split("^")[0], names
        assert not any("épouse" in w for w in said.warnings)


def cda_identity(name: str, birth: str = "19800115"):  # noqa: ANN201
    """The identity the CDA normalizer reads from a minimal CR-BIO naming its patient so."""
    from normalizers.cda import normalize_cda
    from parsers.cda import parse_cda

    xml = ('<ClinicalDocument xmlns="urn:hl7-org:v3"><id root="1.2.250.1.999.4" extension="D1"/>'
           '<code code="11502-2" codeSystem="2.16.840.1.113883.6.1"/>'
           '<effectiveTime value="20261120100000+0100"/><recordTarget><patientRole>'
           f'<id root="{CHU}" extension="100234"/><patient>{name}'
           '<administrativeGenderCode code="F" codeSystem="2.16.840.1.113883.5.1"/>'
           f'<birthTime value="{birth}"/></patient></patientRole></recordTarget>'
           '<component><structuredBody/></component></ClinicalDocument>').encode()
    return normalize_cda(parse_cda(xml), xml, "chu").identity


def test_cda_family_written_with_epouse_is_read_as_both_names():
    said = cda_identity("<name><family>MARTIN épouse DUPONT</family><given>Marie-Claire</given>"
                        "</name>")
    assert (said.family, said.birth_family, said.given) == ("DUPONT", "MARTIN", "Marie-Claire")
    assert any("épouse" in w and "recordTarget" in w for w in said.warnings)
    birth_and_used = cda_identity('<name><family qualifier="BR">MARTIN</family>'
                                  '<family qualifier="SP">DUPONT</family><given>Marie</given>'
                                  '</name>')
    assert (birth_and_used.family, birth_and_used.birth_family) == ("DUPONT", "MARTIN")
    assert not any("épouse" in w for w in birth_and_used.warnings)


def test_cda_birth_time_at_year_or_month_precision_is_said():
    """PID-7 '1980' is warned about as partial; recordTarget birthTime '1980' was silently
    no birth date (the quarantine then said 'demographics incomplete' with nothing why)."""
    for partial in ("1980", "198001"):
        said = cda_identity("<name><family>DUPONT</family><given>Marie</given></name>", partial)
        assert said.birth_date == ""
        assert any("birthTime" in w and "partial" in w for w in said.warnings), partial
    said = cda_identity("<name><family>DUPONT</family><given>Marie</given></name>",
                        "198001150030+0400")
    assert said.birth_date == "1980-01-15" and not any("birthTime" in w for w in said.warnings)


# -- birth names stated on both sides -----------------------------------------------------------
def test_birth_name_differing_from_the_dossiers_is_another_person(engine):  # noqa: ANN001
    """The message: born MARTIN, now DUPONT (PID-5 L and D). The only look-alike dossier:
    born LEROY, now going by MARTIN, same first name, birth date and sex. Matched by the name
    one was born with and the other married into, the results went to Mme Martin née Leroy;
    they are quarantined now. The dossier born MARTIN now DUPONT is found as before."""
    dossier(engine, family="Martin", birth_family="Leroy", given="Sophie",
            birth_date="1975-09-02")
    names = "MARTIN^Sophie^^^^^L~DUPONT^Sophie^^^^^D"
    found = resolve(engine, pid("", names, "19750902"))
    assert (found.patient_id, found.code) == (None, "IDENTITY_UNKNOWN_PATIENT")
    hers = dossier(engine, family="Dupont", birth_family="Martin", given="Sophie",
                   birth_date="1975-09-02")
    found = resolve(engine, pid("", names, "19750902"))
    assert (found.patient_id, found.via) == (hers, "demographics")


def test_birth_name_unknown_on_one_side_still_matches(engine):  # noqa: ANN001
    """A dossier created with one name (an admin's, or a sender without name types) says no
    birth name apart: the message's used or birth name finds it, as before."""
    one_name = dossier(engine, family="Martin", given="Sophie", birth_date="1975-09-02")
    found = resolve(engine, pid("", "MARTIN^Sophie^^^^^L~DUPONT^Sophie^^^^^D", "19750902"))
    assert (found.patient_id, found.via) == (one_name, "demographics")

# -- through the pipeline: the ledger says what and where ----------------------------------------
def test_pipeline_unqualified_ins_of_another_dossier_is_quarantined_at_pid(sqlite_ctx):  # noqa: ANN001, E501
    """The batch path (BatchLookup) refuses as the one-by-one path does: nothing filed in the
    IPP's dossier, the ledger's code IDENTITY_CONFLICT at PID, no NIR in its message."""
    from sqlalchemy import func, select

    from dossiers.schema import entries, imports
    from tests.test_pipeline import ingest

    by_ipp = dossier(sqlite_ctx.engine, ids=((CHU, "100234", "PI"),))
    dossier(sqlite_ctx.engine, family="Lefèvre", given="Hélène", ins=HELENE, ins_oid=INS_NIR)
    ids = f"100234^^^CHU-NANTES&{CHU}&ISO^PI~{HELENE}^^^ASIP-SANTE-INS-NIR&{INS_NIR}&ISO^INS"
    message = "\r".join((
        MSH, pid(ids, status="RECUP"), "ORC|RE|P-1|CMD-9^CHU-NANTES",
        "OBR|1|P-1|CMD-9^CHU-NANTES|2823-3^Potassium^LN|||20261120080000+0100",
        "OBX|1|NM|2823-3^Potassium [Moles/volume] in Serum or Plasma^LN||4.1|mmol/L|3.5-5.1|N"
        "|||F|||20261120080000+0100")) + "\r"
    [import_id] = ingest(sqlite_ctx, message.encode())
    with sqlite_ctx.engine.connect() as conn:
        row = conn.execute(select(imports).where(imports.c.id == import_id)).one()
        filed = conn.execute(select(func.count()).select_from(entries)
                             .where(entries.c.patient_id == by_ipp)).scalar()
    assert (row.status, row.error_code, row.error_location) == (
        "quarantined", "IDENTITY_CONFLICT", "PID")
    assert HELENE not in row.error_message and filed == 0


# -- the order of the repetitions decides nothing --------------------------------------------------
def test_same_number_as_production_and_test_ins_is_a_conflict_in_any_order(engine):  # noqa: ANN001
    """The dossier holds the production INS; a sender lists the number under the production
    and the test OID. Filed when production came first, IDENTITY_CONFLICT the other way:
    the repetitions' order decided. Both orders are IDENTITY_CONFLICT now."""
    dossier(engine, ins=HELENE, ins_oid=INS_NIR)
    prod = f"{HELENE}^^^ASIP-SANTE-INS-NIR&{INS_NIR}&ISO^INS"
    test = f"{HELENE}^^^ASIP-SANTE-INS-NIR-TEST&{INS_TEST}&ISO^INS"
    for ids in (f"{prod}~{test}", f"{test}~{prod}"):
        found = resolve(engine, pid(ids, status="VALI"))
        assert (found.patient_id, found.code) == (None, "IDENTITY_CONFLICT"), ids


_REPETITIONS = (
    f"{HELENE}^^^ASIP-SANTE-INS-NIR&{INS_NIR}&ISO^INS",
    f"100234^^^CHU-NANTES&{CHU}&ISO^PI",
    f"200777^^^CHU-NANTES&{CHU}&ISO^AN",
    "1234567890123456789012^^^ASIP-SANTE-INS-C&1.2.250.1.213.1.4.2&ISO^INS-C",
    f"{HELENE}^^^ASSURANCE-MALADIE&{INS_NIR}&ISO^NH",
    "LAB-0042^^^LABO-DEMO^PI",
)
_NAMES = ("LEFÈVRE^Hélène^Hélène Marie^^^^L", "MARTIN^Hélène^^^^^D", "X-ANONYME^Y^^^^^S")


@pytest.fixture
def helene_and_paul(engine):  # noqa: ANN001, ANN201
    """Hélène (born Lefèvre, now Martin: qualified INS, IPP 100234) and Paul, whose IPP is the
    number of Hélène's stay (NDA 200777); filled once for all of a property's examples."""
    dossier(engine, family="Martin", birth_family="Lefèvre", ins=HELENE, ins_oid=INS_NIR,
            ids=((CHU, "100234", "PI"),))
    dossier(engine, family="Durand", given="Paul", birth_date="1985-06-01", sex="M",
            ids=((CHU, "200777", "PI"),))
    return engine


@given(ids=st.permutations(_REPETITIONS), names=st.permutations(_NAMES),
       status=st.sampled_from(("VALI", "PROV", "VALI~DOUTE")))
@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_resolution_does_not_depend_on_the_order_of_repetitions(helene_and_paul, ids,  # noqa: ANN001
                                                                 names, status):
    """PID-3 and PID-5 repetitions in any order: the same identity and the same dossier,
    found by the INS when qualified, else by the IPP (the stay number never names Paul)."""
    segment = pid("~".join(ids), "~".join(names), status=status)
    said = identity(segment)
    assert (said.family, said.birth_family, said.given) == ("MARTIN", "LEFÈVRE", "Hélène")
    assert sorted(li.value for li in said.local_ids) == ["100234", HELENE, "LAB-0042"]
    with helene_and_paul.connect() as conn:  # what is learnt is not kept between examples
        found = resolve_identity(conn, said, auto_create=False)
        conn.rollback()
    expected = {"VALI": (1, "ins"), "PROV": (1, "local-id-no-ins"),
                "VALI~DOUTE": (1, "local-id-no-ins")}[status]
    assert (found.patient_id, found.via) == expected


# -- a CDA carried in HL7v2: PID-3 must equal its patientRole/id --------------------------------
def carried(pid_segment: str, cda_root: str, cda_ext: str):  # noqa: ANN201
    """An ORU (CI-SIS CDA over HL7v2) whose PID is ``pid_segment``, carrying a CR-BIO whose
    recordTarget id is (cda_root, cda_ext), normalized."""
    from normalizers.codes import load_mappings
    from normalizers.lab import normalize_message
    from tests.test_documents_normalizer import PID, b64, cda, oru

    text = oru("NW", "F", b64(cda("DOC-1", nir=cda_ext, oid=cda_root))).replace(PID,
                                                                               pid_segment)
    return normalize_message(parse_text(text), "chu", load_mappings(None))


def test_carried_cda_of_another_ipp_of_the_same_hospital_is_quarantined():
    """PID-3 names IPP 100234, the CDA inside names the same hospital's IPP 100872: two of its
    patients. With no INS on either side it was filed under PID's patient unchecked."""
    said = carried(pid(f"100234^^^CHU-NANTES&{CHU}&ISO^PI"), CHU, "100872")
    assert said.quarantine_reasons and said.quarantine_reasons[0].startswith(
        "CISIS_PATIENT_MISMATCH OBX[")
    assert "100234" not in said.quarantine_reasons[0] and "100872" not in said.quarantine_reasons[0]
    same = carried(pid(f"100234^^^CHU-NANTES&{CHU}&ISO^PI"), CHU, "100234")
    assert same.quarantine_reasons == []
    other_authority = carried(pid(f"100234^^^CHU-NANTES&{CHU}&ISO^PI"), "1.2.250.1.999.3",
                              "100872")  # the lab's own id: nothing to compare it with
    assert other_authority.quarantine_reasons == []


def test_carried_cda_with_its_ins_typed_in_blanks_is_the_same_patient():
    spaced = " ".join((HELENE[0], HELENE[1:3], HELENE[3:5], HELENE[5:7], HELENE[7:10],
                       HELENE[10:13], HELENE[13:]))
    ins = f"{HELENE}^^^ASIP-SANTE-INS-NIR&{INS_NIR}&ISO^INS"
    said = carried(pid(ins, status="VALI"), INS_NIR, spaced)
    assert said.quarantine_reasons == []
    other = carried(pid(ins, status="VALI"), INS_NIR, nir("2790375056077"))
    assert other.quarantine_reasons[0].startswith("CISIS_PATIENT_MISMATCH")
