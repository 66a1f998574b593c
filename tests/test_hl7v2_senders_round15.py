"""HL7v2 hospital feeds, round 15: the patient's death (IHE PAM France), and what it changes.

What the round found:
- PID-29 (death date/time) and PID-30 (death indicator) were never read: an A03 discharge
  by death, an A08/A31 stating a death, left the dossier as a living patient's; nothing in
  the store could hold a death (migration 0012 adds it, with the import that stated it).
  They are now read from every ADT (normalizers/death.py), applied to the dossier in the
  order of the statements (EVN-2) and audited (dossiers/death.py); PID-30 = N, the HL7 null
  "", or an A13 cancelling the A03 that stated the death reverts it, audited too;
- a PID-30 code outside table 0136, a PID-30 N beside a PID-29, a death before the PID-7
  birth date or after the message itself are refused with their own codes and field;
- results and documents kept being filed after a death (right: labs send results after it)
  but nothing said when one was dated well after it; now a warning, on both filing paths;
- a result message or a CDA (sdtc:deceasedInd / deceasedTime) stating a death the dossier
  does not record was silent: now a warning (only the hospital's ADT records a death);
- the patient's own token kept reading (and changing) the dossier of a deceased patient; now
  PATIENT_DECEASED, professionals keep their access, a tutor's representation ends and a
  parent of a deceased minor keeps reading (CSP L1110-4 V); `dossier show`, the API and the
  FHIR export (Patient.deceasedDateTime) show the death.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select, update

from dossiers import access
from dossiers.access import AccessDenied, Principal
from dossiers.fhir.patient import patient_resource
from dossiers.schema import audit_log, imports, patients
from normalizers.cda import normalize_cda
from normalizers.model import NormalizationError
from parsers.cda import parse_cda
from pipelines.report import show_dossier
from tests.conftest import SAMPLES
from tests.test_adt_consent import SOURCE, adt, ledger, normalize, patient_row
from tests.test_pipeline import NIR, ingest, make_patient, oru, statuses

ADMIN = Principal("admin", "alice")
DOCTOR = "10000000001"


def with_death(data: bytes, time: str = "", indicator: str = "Y") -> bytes:
    """The message's PID with PID-29 ``time`` and PID-30 ``indicator`` (PID-32 kept)."""
    old = b"|" * 24 + b"VALI"
    assert old in data
    return data.replace(old, b"|" * 21 + f"{time}|{indicator}||".encode() + b"VALI")


def death_adt(control_id: str, trigger: str = "A03", time: str = "202403100415",
              indicator: str = "Y", evn: str = "20240310090000", **kw) -> bytes:
    return with_death(adt(control_id, trigger, evn=evn, msh7=evn, **kw), time, indicator)


def audit_actions(ctx, pid: int) -> list[str]:  # noqa: ANN001
    with ctx.engine.connect() as conn:
        return [r.action for r in conn.execute(
            select(audit_log.c.action).where(audit_log.c.patient_id == pid,
                                             audit_log.c.action.like("patient.death%"))
            .order_by(audit_log.c.id))]


# -- normalization ----------------------------------------------------------------------------
@pytest.mark.parametrize("trigger", ["A01", "A03", "A08", "A31"])
def test_pid_29_30_are_read_from_every_adt(trigger: str) -> None:
    n = normalize(death_adt("D1", trigger))
    death = n.adt.death
    assert (death.deceased, death.time) == (True, "2024-03-10T04:15+01:00")
    assert death.location.endswith("-30")


def test_pid_30_n_states_the_patient_alive_and_the_hl7_null_erases() -> None:
    assert normalize(death_adt("D1", "A08", time="", indicator="N")).adt.death.deceased is False
    assert normalize(death_adt("D1", "A08", time="", indicator='""')).adt.death.deceased is False
    assert normalize(adt("D1", "A08")).adt.death is None  # nothing said



def test_pid_30_spelled_out_as_a_word_is_read_as_its_code() -> None:
    """Microsoft's FHIR-converter sample ORU sends PID-30 'NO': it was refused as an unknown
    code (a warning on every such result message); the words are rows of the table."""
    assert normalize(death_adt("D1", "A08", time="", indicator="NO")).adt.death.deceased is False
    assert normalize(death_adt("D1", "A08", indicator="Yes")).adt.death.deceased is True

def test_pid_29_without_pid_30_is_a_death_with_a_warning() -> None:
    n = normalize(death_adt("D1", "A08", indicator=""))
    assert n.adt.death.deceased and n.adt.death.time == "2024-03-10T04:15+01:00"
    assert any("without the death indicator" in w for w in n.warnings)


@pytest.mark.parametrize(("time", "indicator", "code"), [
    ("202403100415", "N", "ADT_DEATH_CONTRADICTORY"),
    ("", "X", "ADT_DEATH_UNKNOWN_CODE"),
    ("19790327", "Y", "ADT_DEATH_BEFORE_BIRTH"),  # PID-7 is 1979-03-28
    ("202403120000", "Y", "ADT_DEATH_IN_FUTURE"),  # after EVN-2, 2024-03-10 09:00
    ("20240231", "Y", "HL7_BAD_DATE"),
])
def test_an_impossible_death_is_refused_with_its_code(time: str, indicator: str,
                                                      code: str) -> None:
    with pytest.raises(NormalizationError) as exc:
        normalize(death_adt("D1", "A08", time=time, indicator=indicator))
    assert exc.value.code == code and "PID[3]-" in exc.value.location
    assert "2024" not in str(exc.value) and "1979" not in str(exc.value)  # no dates said


def test_a_death_on_the_birth_day_or_dated_to_the_month_of_birth_is_accepted() -> None:
    assert normalize(death_adt("D1", time="19790328")).adt.death.deceased
    assert normalize(death_adt("D1", time="197903")).adt.death.time == "1979-03"


@settings(max_examples=40, deadline=None)
@given(st.integers(min_value=0, max_value=17_500))  # 1979-03-28 to 2027
def test_any_death_between_birth_and_the_message_is_read(days: int) -> None:
    when = datetime(1979, 3, 28) + timedelta(days=days)
    stamp = when.strftime("%Y%m%d")
    evn = "20240310090000"
    if stamp > evn[:8]:
        with pytest.raises(NormalizationError) as exc:
            normalize(death_adt("D1", time=stamp, evn=evn))
        assert exc.value.code == "ADT_DEATH_IN_FUTURE"
    else:
        assert normalize(death_adt("D1", time=stamp, evn=evn)).adt.death.time == \
            when.date().isoformat()


# -- the death on the dossier ---------------------------------------------------------------
def test_a03_records_the_death_once_audited(ctx) -> None:  # noqa: ANN001
    pid = make_patient(ctx)
    ids = ingest(ctx, death_adt("D1"), source=SOURCE)
    row = patient_row(ctx, pid)
    assert (row.deceased, row.deceased_at) == (True, "2024-03-10T04:15+01:00")
    assert (row.death_import_id, row.death_trigger) == (ids[0], "A03")
    assert "death recorded" in ledger(ctx, ids[0]).error_message
    # the same statement again (A08 update with the same death): nothing changes, no audit
    again = ingest(ctx, death_adt("D2", "A08", evn="20240310100000"), source=SOURCE)
    assert statuses(ctx, again) == ["deposited"]
    assert audit_actions(ctx, pid) == ["patient.death"]
    with ctx.engine.connect() as conn:
        details = conn.execute(select(audit_log.c.details).where(
            audit_log.c.action == "patient.death")).scalar_one()
    assert details["trigger"] == "A03" and "2024" not in str(details)


def test_a08_with_pid_30_n_reverts_the_death_and_an_older_one_does_not(ctx) -> None:  # noqa: ANN001
    pid = make_patient(ctx)
    ingest(ctx, death_adt("D1", "A08"), source=SOURCE)
    older = ingest(ctx, death_adt("D0", "A08", time="", indicator="N",
                                  evn="20240309080000"), source=SOURCE)
    assert patient_row(ctx, pid).deceased is True  # older than the death: not applied
    assert any("older than what the dossier holds" in w
               for w in ledger(ctx, older[0]).warnings)
    ids = ingest(ctx, death_adt("D2", "A08", time="", indicator="N", evn="20240311080000"),
                 source=SOURCE)
    row = patient_row(ctx, pid)
    assert (row.deceased, row.deceased_at) == (False, None)
    assert "death reverted" in ledger(ctx, ids[0]).error_message
    assert audit_actions(ctx, pid) == ["patient.death", "patient.death_reverted"]


def test_a_later_update_corrects_the_date_and_an_undated_one_keeps_it(ctx) -> None:  # noqa: ANN001
    pid = make_patient(ctx)
    ingest(ctx, death_adt("D1", time="20240309"), source=SOURCE)
    ingest(ctx, death_adt("D2", "A31", time="202403090545", evn="20240310100000"),
           source=SOURCE)
    assert patient_row(ctx, pid).deceased_at == "2024-03-09T05:45+01:00"
    ingest(ctx, death_adt("D3", "A08", time="", evn="20240310110000"), source=SOURCE)
    row = patient_row(ctx, pid)
    assert (row.deceased, row.deceased_at, row.death_trigger) == (
        True, "2024-03-09T05:45+01:00", "A31")
    assert audit_actions(ctx, pid) == ["patient.death", "patient.death"]


def test_a13_cancelling_the_discharge_by_death_reverts_it(ctx) -> None:  # noqa: ANN001
    pid = make_patient(ctx)
    ingest(ctx, death_adt("D1", "A03"), source=SOURCE)
    ids = ingest(ctx, adt("D2", "A13", evn="20240310100000", msh7="20240310100000"),
                 source=SOURCE)
    assert statuses(ctx, ids) == ["deposited"]
    assert patient_row(ctx, pid).deceased is False
    assert audit_actions(ctx, pid) == ["patient.death", "patient.death_reverted"]


def test_a13_leaves_a_death_stated_by_an_update(ctx) -> None:  # noqa: ANN001
    pid = make_patient(ctx)
    ingest(ctx, death_adt("D1", "A08"), source=SOURCE)
    ingest(ctx, adt("D2", "A13", evn="20240310100000", msh7="20240310100000"), source=SOURCE)
    assert patient_row(ctx, pid).deceased is True


def test_cancellations_and_leaves_are_acknowledged_and_change_nothing(ctx) -> None:  # noqa: ANN001
    pid = make_patient(ctx)
    triggers = ["A11", "A13", "A21", "A22", "A52", "A53", "A54", "A55"]
    ids = ingest(ctx, *(adt(f"M{n}", t) for n, t in enumerate(triggers)), source=SOURCE)
    assert statuses(ctx, ids) == ["deposited"] * len(triggers)
    assert [ledger(ctx, i).error_message for i in ids] == [
        f"ADT^{t} recorded, nothing to apply" for t in triggers]
    assert patient_row(ctx, pid).deceased is None


# -- filing after a death ---------------------------------------------------------------------
def late_warnings(ctx, import_id: int) -> list[str]:  # noqa: ANN001
    return [w for w in ledger(ctx, import_id).warnings or [] if "after the patient's" in w]


def test_results_after_a_death_are_filed_and_the_late_ones_warned(ctx) -> None:  # noqa: ANN001
    make_patient(ctx)
    # death on 2024-03-15 at 09:00; the ORU's specimen was taken that morning at 08:30
    ids = ingest(ctx, death_adt("D1", time="202403150900", evn="20240315100000"), oru("R1"),
                 source=SOURCE)
    assert statuses(ctx, ids) == ["deposited", "deposited"]
    assert ledger(ctx, ids[1]).entries_count == 4 and late_warnings(ctx, ids[1]) == []


@pytest.mark.parametrize("with_adt", [True, False])
def test_results_dated_well_after_the_death_are_filed_with_a_warning(ctx,  # noqa: ANN001
                                                                     with_adt: bool) -> None:
    """Filed one by one (after an ADT in the batch) or in bulk: the same warning."""
    pid = make_patient(ctx)
    ingest(ctx, death_adt("D0", time="20240310", evn="20240310090000"), source=SOURCE)
    blobs = [adt("M9", "A22", evn="20240316090000", msh7="20240316090000")] if with_adt \
        else []
    ids = ingest(ctx, *blobs, oru("R1"), source=SOURCE)
    assert statuses(ctx, ids)[-1] == "deposited"
    assert ledger(ctx, ids[-1]).entries_count == 4
    assert late_warnings(ctx, ids[-1]) == [
        "4 entries dated more than 2 days after the patient's recorded death: filed; check "
        "that they are this patient's"]
    assert patient_row(ctx, pid).deceased is True


def test_a_result_message_stating_a_death_does_not_record_it(ctx) -> None:  # noqa: ANN001
    pid = make_patient(ctx)
    ids = ingest(ctx, with_death(oru("R1"), "202403140000"))
    assert statuses(ctx, ids) == ["deposited"]
    assert patient_row(ctx, pid).deceased is None
    assert any(w.startswith("PID[2]-30: the message states the patient deceased, the "
                            "dossier records no death") for w in ledger(ctx, ids[0]).warnings)
    # PID-30 = N (filled by default by laboratory systems) says nothing worth a warning,
    # even for a dossier that records a death
    ingest(ctx, death_adt("D1", time="20240310"), source=SOURCE)
    plain = ingest(ctx, with_death(oru("R3", value="4.9"), "", "N"))
    assert not any("states the patient" in w for w in ledger(ctx, plain[0]).warnings or [])
    # a PID-30 it cannot read does not fail the results it carries
    bad = ingest(ctx, with_death(oru("R2", value="6.1"), "", "Q"))
    assert statuses(ctx, bad) == ["deposited"]
    assert any(w.startswith("ADT_DEATH_UNKNOWN_CODE") for w in ledger(ctx, bad[0]).warnings)


def cda_with_death(ind: str = '<sdtc:deceasedInd value="true"/>'
                   '<sdtc:deceasedTime value="20250801"/>') -> bytes:
    data = (SAMPLES / "cda" / "10_crbio_hcg_restreint.xml").read_bytes()
    old = b'<birthTime value="19950211"/>'
    assert old in data
    return data.replace(old, old + ind.encode())


def cda_normalized(data: bytes):  # noqa: ANN201
    return normalize_cda(parse_cda(data), data, "hospital")


def test_cda_deceased_ind_is_read_and_warned_not_applied(ctx) -> None:  # noqa: ANN001
    n = cda_normalized(cda_with_death())
    assert (n.death.deceased, n.death.time) == (True, "2025-08-01")
    assert cda_normalized(cda_with_death("")).death is None
    early = cda_normalized(cda_with_death('<sdtc:deceasedTime value="19940101"/>'))
    assert early.death is None and any(w.startswith("ADT_DEATH_BEFORE_BIRTH")
                                       for w in early.warnings)
    pid = make_patient(ctx, nir="295029712010115", family="Da Silva", given="Maëlys",
                       birth_date="1995-02-11")
    ids = ingest(ctx, cda_with_death(), source="hospital")
    assert statuses(ctx, ids) == ["deposited"]
    assert patient_row(ctx, pid).deceased is None
    assert any("sdtc:deceasedInd: the message states the patient deceased" in w
               for w in ledger(ctx, ids[0]).warnings)


# -- reading a deceased patient's dossier -----------------------------------------------------
def test_the_patient_is_refused_professionals_and_a_parent_keep_reading(ctx) -> None:  # noqa: ANN001
    # a minor (born 2012): a parent represents a minor only (access round 5)
    pid = make_patient(ctx, birth_date="2012-03-28")
    ingest(ctx, oru("R1"))
    ref = str(pid)
    patient = Principal("patient", ref)
    access.register_professional(ctx.engine, ADMIN, DOCTOR, "Durand", "Anne", "médecin")
    access.grant(ctx.engine, patient, ref, DOCTOR)
    access.declare_representative(ctx.engine, ADMIN, ref, subject="rep-mere", family="Lefèvre",
                                  given="Claire", quality="parent", valid_from="2020-01-01")
    access.declare_representative(ctx.engine, ADMIN, ref, subject="rep-tuteur",
                                  family="Martin", given="Paul", quality="tuteur",
                                  valid_from="2020-01-01")
    ingest(ctx, death_adt("D1", time="20240310", birth="20120328"), source=SOURCE)
    for action in (lambda: access.read_dossier(ctx.engine, patient, ref),
                   lambda: access.read_entries(ctx.engine, patient, ref),
                   lambda: access.revoke(ctx.engine, patient, ref, DOCTOR)):
        with pytest.raises(AccessDenied) as refused:
            action()
        assert refused.value.code == "PATIENT_DECEASED"
    with pytest.raises(AccessDenied) as other:  # another patient's token learns nothing
        access.read_dossier(ctx.engine, Principal("patient", str(pid + 1000)), ref)
    assert other.value.code == "ACCESS_DENIED"
    read = access.read_dossier(ctx.engine, Principal("professional", DOCTOR), ref)
    assert read["access"]["basis"] == "authorised"
    assert (read["patient"]["deceased"], read["patient"]["deceased_at"]) == (True, "2024-03-10")
    bundle = access.export_fhir(ctx.engine, Principal("professional", DOCTOR), ref)
    resource = next(e["resource"] for e in bundle["entry"]
                    if e["resource"]["resourceType"] == "Patient")
    assert resource["deceasedDateTime"] == "2024-03-10"
    mother = access.read_dossier(ctx.engine, Principal("representative", "rep-mere"), ref)
    assert mother["access"]["basis"] == "representative"
    with pytest.raises(AccessDenied) as tutor:
        access.read_dossier(ctx.engine, Principal("representative", "rep-tuteur"), ref)
    assert tutor.value.code == "PATIENT_DECEASED"
    # reverted (A08 PID-30 N): the patient reads again
    ingest(ctx, death_adt("D2", "A08", time="", indicator="N", evn="20240311090000",
                          birth="20120328"), source=SOURCE)
    assert access.read_dossier(ctx.engine, patient, ref)["access"]["basis"] == "patient"


def test_dossier_show_and_fhir_patient_say_the_death(ctx) -> None:  # noqa: ANN001
    pid = make_patient(ctx)
    assert show_dossier(ctx.engine, NIR)["patient"]["deceased"] is False
    assert "deceasedDateTime" not in patient_resource(show_dossier(ctx.engine, NIR)["patient"])
    ingest(ctx, death_adt("D1"), source=SOURCE)
    shown = show_dossier(ctx.engine, NIR)["patient"]
    assert (shown["deceased"], shown["deceased_at"]) == (True, "2024-03-10T04:15+01:00")
    assert patient_resource(shown)["deceasedDateTime"] == "2024-03-10T04:15:00+01:00"
    with ctx.engine.begin() as conn:  # a death stated without its date
        conn.execute(update(patients).where(patients.c.id == pid).values(deceased_at=None))
    assert patient_resource(show_dossier(ctx.engine, NIR)["patient"])["deceasedBoolean"]


def test_death_of_a_dossier_found_by_demographics_only_is_not_applied(ctx) -> None:  # noqa: ANN001
    pid = make_patient(ctx, nir=None)
    data = re.sub(rb"~[^|]*\^INS", b"", death_adt("D1")).replace(b"|VALI", b"|PROV")
    ids = ingest(ctx, data.replace(b"IPP0042", b"IPP9999"), source=SOURCE)
    assert statuses(ctx, ids) == ["deposited"]
    assert patient_row(ctx, pid).deceased is None
    assert any("death not applied" in w for w in ledger(ctx, ids[0]).warnings)
    alive = re.sub(rb"~[^|]*\^INS", b"", death_adt("D2", "A08", time="", indicator="N",
                                                   evn="20240311090000"))
    later = ingest(ctx, alive.replace(b"IPP0042", b"IPP9999").replace(b"|VALI", b"|PROV"),
                   source=SOURCE)
    assert not any("death" in w for w in ledger(ctx, later[0]).warnings or [])


def test_a_death_ledger_row_names_no_date(ctx) -> None:  # noqa: ANN001
    make_patient(ctx)
    ids = ingest(ctx, death_adt("D1", time="19790327"), source=SOURCE)
    row = ledger(ctx, ids[0])
    assert (row.status, row.error_code) == ("failed", "ADT_DEATH_BEFORE_BIRTH")
    assert row.error_location == "PID[3]-30" and "1979" not in row.error_message
    with ctx.engine.connect() as conn:
        assert conn.execute(select(imports.c.id).where(imports.c.id == ids[0])).first()

