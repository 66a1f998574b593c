"""Identity round 3: PID-3, PID-5 and recordTarget shapes from senders not seen before, and
whether each lands in the right dossier, or is quarantined with a specific code. Invented
patients; INS under the test OIDs or with made-up digits and valid keys; real LOINC codes."""

from __future__ import annotations

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
def test_stay_number_beside_the_ipp_is_not_a_patient_identifier(sqlite_ctx):  # noqa: ANN001
    """A sender repeating the stay number (NDA, CX.5 AN) in PID-3 under the hospital's
    authority: the NDA 200777 is also Paul Durand's IPP. It named his dossier too (the
    message, clearly Hélène's by her IPP, was IDENTITY_AMBIGUOUS), and once filed it was
    remembered as Hélène's identifier, pointing Paul's next messages at her dossier."""
    engine = sqlite_ctx.engine
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


def test_visit_number_alone_finds_no_dossier_by_itself(sqlite_ctx):  # noqa: ANN001
    engine = sqlite_ctx.engine
    dossier(engine, family="Durand", given="Paul", birth_date="1985-06-01", sex="M",
            ids=((CHU, "200777", "PI"),))
    helene = dossier(engine)
    found = resolve(engine, pid(f"200777^^^CHU-NANTES&{CHU}&ISO^VN"))
    assert (found.patient_id, found.via) == (helene, "demographics")
