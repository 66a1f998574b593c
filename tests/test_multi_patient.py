"""An ORU^R01 carrying several patients (PATIENT_RESULT repeated), through pipelines/ on
SQLite and PostgreSQL: each patient's results in their own dossier and nothing of another's,
all or nothing (one patient not found quarantines the whole message), dedupe level 2 for the
message as a whole, corrections per patient, the admin's assignment refused; and, as a
property, filing such a message equals filing its patients' messages one by one."""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from dossiers.schema import audit_log, entries, imports, logical_messages, patient_identifiers
from dossiers.schema import provenance as provenance_table
from pipelines.dossier_admin import DossierInput, create_dossiers
from pipelines.intake import Received, intake
from pipelines.process import CODE_VERSION, Context, drain
from pipelines.report import show_dossier, show_import
from pipelines.rerun import reopen_checked
from pipelines.settings import load_settings
from tests.conftest import migrated_sqlite
from tests.test_pipeline import INS_OID, NIR, NIR_2, ingest, make_patient, oru, statuses

SECOND = dict(nir=NIR_2, family="SANTONI", given="Ange", birth="19881002", sex="M",
              local_id="LAB00099")


def combine(*messages: bytes) -> bytes:
    """One ORU^R01 with the PATIENT_RESULT groups of ``messages`` (the first one's MSH)."""
    segments = messages[0].decode().rstrip("\r").split("\r")
    for other in messages[1:]:
        segments += other.decode().rstrip("\r").split("\r")[1:]
    return ("\r".join(segments) + "\r").encode()


def rerun(ctx, ids: list[int]) -> dict:  # noqa: ANN001
    """What the rerun flow does, without Prefect (as tests/test_admin.py)."""
    plan = reopen_checked(ctx.engine, ctx.archive, ids, code_version=CODE_VERSION)
    done = drain(dataclasses.replace(ctx, trigger="rerun"), ids=plan.to_process) \
        if plan.to_process else {}
    return {"plan": plan, "outcomes": done}


def both(control_id: str, *, value_1: str = "5.4", value_2: str = "7.1", status_2: str = "F",
         filler_2: str = "CMD-1001") -> bytes:
    """The usual patient, then SANTONI Ange, in one message (the same filler order number
    by default: keys may be equal across patients, they are never mixed)."""
    return combine(oru(control_id, value=value_1),
                   oru(control_id, value=value_2, status=status_2, filler=filler_2, **SECOND))


def second_patient(ctx) -> int:  # noqa: ANN001
    return make_patient(ctx, NIR_2, family="Santoni", given="Ange", birth_date="1988-10-02",
                        sex="M")


def glucose(ctx, nir: str, history: bool = False) -> list[tuple]:  # noqa: ANN001
    dossier = show_dossier(ctx.engine, nir, history=history)
    return [(e["version"], e["current"], e["value"], e["status"]) for e in dossier["entries"]
            if e["code"] == "14749-6"]


def ledger(ctx, import_id: int):  # noqa: ANN001, ANN201
    with ctx.engine.connect() as conn:
        return conn.execute(select(imports).where(imports.c.id == import_id)).one()


def test_each_patient_gets_their_own_entries_and_nothing_of_the_other(ctx) -> None:  # noqa: ANN001
    first, second = make_patient(ctx), second_patient(ctx)
    [imp] = ingest(ctx, both("MULTI-1"))
    row = ledger(ctx, imp)
    assert (row.status, row.entries_count, row.patient_id) == ("deposited", 8, None)
    assert any(w.startswith("2 patient groups (PID) filed apart: PID[2] in dossier "
                            f"{first}; PID[8] in dossier {second}") for w in row.warnings)
    mine = show_dossier(ctx.engine, NIR)["entries"]
    theirs = show_dossier(ctx.engine, NIR_2)["entries"]
    assert len(mine) == len(theirs) == 4
    assert glucose(ctx, NIR) == [(1, True, "5.4", "final")]
    assert glucose(ctx, NIR_2) == [(1, True, "7.1", "final")]
    with ctx.engine.connect() as conn:
        refs = {(r.patient_id, r.code): r.source_ref for r in conn.execute(
            select(entries.c.patient_id, entries.c.code, provenance_table.c.source_ref)
            .join(provenance_table, provenance_table.c.entry_id == entries.c.id))}
        learnt = {(r.patient_id, r.value) for r in conn.execute(select(patient_identifiers))}
        audited = sorted(r.patient_id for r in conn.execute(
            select(audit_log).where(audit_log.c.action == "dossier.deposit")))
    # provenance points at the patient's own segments of the message as received
    assert refs[(first, "14749-6")] == "OBX[5]" and refs[(second, "14749-6")] == "OBX[11]"
    assert refs[(second, "24331-1")] == "OBR[10]"
    assert {("LAB00042", first), ("LAB00099", second)} <= {(v, p) for p, v in learnt}
    assert audited == [first, second]  # each patient's trail shows the deposit
    # `imports list --patient`: found for each of its patients, though it names none
    from pipelines.ledger import ImportFilter
    from pipelines.rerun import select_ids

    for patient in (first, second):
        assert select_ids(ctx.engine, ImportFilter(patient_id=patient)) == [imp]


def test_a_resent_message_is_a_duplicate(ctx) -> None:  # noqa: ANN001
    make_patient(ctx), second_patient(ctx)
    message = both("MULTI-2")
    [first] = ingest(ctx, message)
    # the same message again, its line ends rewritten: not byte-identical (level 1), the
    # same sender and MSH-10 with the same content (level 2)
    [again] = ingest(ctx, message.replace(b"\r", b"\n"))
    assert statuses(ctx, [first, again]) == ["deposited", "duplicate"]
    row = ledger(ctx, again)
    assert (row.stage, row.duplicate_of, row.entries_count) == ("dedupe", first, 0)
    assert glucose(ctx, NIR, history=True) == [(1, True, "5.4", "final")]
    assert glucose(ctx, NIR_2, history=True) == [(1, True, "7.1", "final")]
    with ctx.engine.connect() as conn:
        assert len(conn.execute(select(logical_messages)).all()) == 1  # once for all


def test_one_unknown_patient_quarantines_the_whole_message(ctx) -> None:  # noqa: ANN001
    first = make_patient(ctx)
    # with another message in the same batch, so that the bulk path decides too
    [multi, other] = ingest(ctx, both("MULTI-3"), oru("ALONE-1", filler="CMD-7", value="6.1"))
    assert statuses(ctx, [multi, other]) == ["quarantined", "deposited"]
    row = ledger(ctx, multi)
    assert (row.error_code, row.error_location) == ("IDENTITY_UNKNOWN_PATIENT", "PID[8]")
    assert row.error_message.startswith("patient 2 of 2 (PID[8]): ")
    assert NIR_2 not in row.error_message and "SANTONI" not in row.error_message
    assert row.entries_count == 0
    # nothing of the first patient was filed either: only the other message's entries
    with ctx.engine.connect() as conn:
        filed = conn.execute(select(entries.c.import_id).where(
            entries.c.patient_id == first)).scalars().all()
        claimed = conn.execute(select(logical_messages.c.import_id)).scalars().all()
    assert set(filed) == {other} and claimed == [other]

    # the admin creates the missing dossier; a rerun files everything, once
    second = second_patient(ctx)
    assert rerun(ctx, [multi])["outcomes"] == {"deposited": 1}
    assert glucose(ctx, NIR_2) == [(1, True, "7.1", "final")]
    assert sorted(v for _, _, v, _ in glucose(ctx, NIR)) == ["5.4", "6.1"]
    assert rerun(ctx, [multi])["outcomes"] == {}  # deposited: nothing to do
    with ctx.engine.connect() as conn:
        assert conn.execute(select(entries.c.patient_id).where(
            entries.c.import_id == multi)).scalars().all().count(second) == 4


def test_one_patient_opposed_quarantines_the_whole_message(ctx) -> None:  # noqa: ANN001
    from dossiers.schema import patients

    first, second = make_patient(ctx), second_patient(ctx)
    with ctx.engine.begin() as conn:
        conn.execute(patients.update().where(patients.c.id == first).values(opposed=True))
    [imp] = ingest(ctx, both("MULTI-4"))
    row = ledger(ctx, imp)
    assert (row.status, row.error_code, row.error_location) == (
        "quarantined", "OPPOSITION", "PID[2]")
    assert show_dossier(ctx.engine, NIR_2)["entries"] == []
    assert second


def test_a_correction_supersedes_the_right_patients_result(ctx) -> None:  # noqa: ANN001
    make_patient(ctx), second_patient(ctx)
    [first] = ingest(ctx, both("MULTI-5"))
    # later, another message of both patients: the second one's glucose corrected (C)
    [later] = ingest(ctx, both("MULTI-6", value_2="9.9", status_2="C"))
    assert statuses(ctx, [first, later]) == ["deposited", "deposited"]
    assert glucose(ctx, NIR, history=True) == [(1, True, "5.4", "final")]
    assert glucose(ctx, NIR_2, history=True) == [(1, False, "7.1", "final"),
                                                 (2, True, "9.9", "corrected")]
    row = ledger(ctx, later)
    assert (row.entries_count, row.duplicates_count) == (1, 7)


def test_prepared_message_of_several_patients_crosses_processes_small(ctx) -> None:  # noqa: ANN001
    """What the preparing processes send back (pipelines/prepare_pool.py) is picklable, and
    the shares are indexes into the message's items, not copies of its entries."""
    import pickle

    from pipelines.process import prepare_rows, read_claimed

    ids = [i for r in intake(ctx.engine, ctx.archive, [
        Received(both("MULTI-12"), "lab", "file", file_name="multi.hl7"),
        Received(oru("ALONE-4"), "lab", "file", file_name="alone.hl7")]) for i in r.message_ids]
    (multi, alone), outcomes = prepare_rows(ctx, read_claimed(ctx, ids))
    assert outcomes == {} and alone.shares is None
    back = pickle.loads(pickle.dumps(multi))
    assert [(s.location, s.start, s.end) for s in back.shares] == [("PID[2]", 0, 4),
                                                                   ("PID[8]", 4, 8)]
    assert back.shares[1].identity.ins[0].nir == NIR_2
    # two patients' message: about twice one patient's, not more
    assert len(pickle.dumps(multi)) < 2.5 * len(pickle.dumps(alone))


def test_a_normalization_error_names_the_patient(ctx) -> None:  # noqa: ANN001
    make_patient(ctx), second_patient(ctx)
    bad = "OBX|4|NM|2345-7^Glucose^LN||abc|mmol/L|||||F"
    message = combine(oru("MULTI-8"), oru("MULTI-8", extra_obx=bad, **SECOND))
    [imp] = ingest(ctx, message)
    info = show_import(ctx.engine, imp)
    assert (info["status"], info["error_code"], info["error_location"]) == (
        "failed", "OBX_BAD_NUMBER", "OBX[14]-5")
    assert info["error_message"].startswith("patient 2 of 2 (PID[8]): OBX[14]-5")


def test_the_same_patient_in_two_groups_files_both_in_their_dossier(ctx) -> None:  # noqa: ANN001
    """A, B, then A again (another PID-3 between them): three groups, two dossiers; A's two
    orders are planned together in A's dossier, B's apart."""
    make_patient(ctx), second_patient(ctx)
    message = combine(oru("MULTI-14"), oru("MULTI-14", **SECOND),
                      oru("MULTI-14", filler="CMD-5", value="6.6"))
    [imp] = ingest(ctx, message)
    row = ledger(ctx, imp)
    # 4 + 4 + 4: A's second order repeats the cholesterol and the comment of the first;
    # within one message, as for two orders of one patient, they are not level-4 duplicates
    # of each other (filed as two messages, the second's would be)
    assert (row.status, row.entries_count) == ("deposited", 12)
    assert sorted(v for _, _, v, _ in glucose(ctx, NIR)) == ["5.4", "6.6"]
    assert glucose(ctx, NIR_2) == [(1, True, "5.4", "final")]
    assert any(w.startswith("3 patient groups (PID) filed apart: PID[2], PID[14] in dossier")
               for w in row.warnings)


def test_bulk_filing_takes_messages_of_several_patients(ctx, caplog) -> None:  # noqa: ANN001
    """Several messages in one batch (the bulk path): two of several patients, one of one,
    for the same dossiers; filed together, no fall back to one by one."""
    make_patient(ctx), second_patient(ctx)
    ids = ingest(ctx, both("MULTI-9", filler_2="CMD-2001"),
                 both("MULTI-10", value_1="6.0", value_2="8.0").replace(b"CMD-1001", b"CMD-3"),
                 oru("ALONE-3", filler="CMD-4", value="4.4"))
    assert "fell back" not in caplog.text
    assert statuses(ctx, ids) == ["deposited"] * 3
    assert sorted(v for _, _, v, _ in glucose(ctx, NIR)) == ["4.4", "5.4", "6.0"]
    assert sorted(v for _, _, v, _ in glucose(ctx, NIR_2)) == ["7.1", "8.0"]


def test_application_ack_names_the_failed_patients_segment(tmp_path, sqlite_template) -> None:  # noqa: ANN001
    """MLLP application mode: an AE for a message of several patients says where (ERR-2, in
    the HL7 sense: the 4th OBX of the message) and whose group (ERR-8: patient 2 of 2)."""
    from datetime import UTC, datetime

    from pipelines.acknowledge import APPLICATION, Frame, acknowledge
    from tests.mllp_support import msa, segment
    from tests.test_mllp_service import make_ctx

    ctx = make_ctx(tmp_path, migrated_sqlite(sqlite_template, tmp_path / "store.sqlite3"))
    bad = "OBX|4|NM|2345-7^Glucose^LN||abc|mmol/L|||||F"
    message = combine(oru("MULTI-11"), oru("MULTI-11", extra_obx=bad, **SECOND))
    # results before the first PID of a message of several patients: whose is not said
    lines = combine(oru("MULTI-13"), oru("MULTI-13", **SECOND)).split(b"\r")
    orphan = b"\r".join([lines[0], *lines[2:7], *lines[1:]])
    now = datetime.now(UTC)
    try:
        (ack,), (ack_orphan,) = acknowledge(ctx, [Frame(message, "127.0.0.1", now),
                                                  Frame(orphan, "127.0.0.1", now)],
                                            mode=APPLICATION)
    finally:
        ctx.engine.dispose()
    assert msa(ack)[1:3] == ["AE", "MULTI-11"]
    err = segment(ack, "ERR")
    assert err[2] == "OBX^7^5^1"  # the 7th OBX of the message: the second patient's 4th
    assert err[3].startswith("102^")
    assert err[8].startswith("OBX_BAD_NUMBER: patient 2 of 2 (PID[8]): ")
    assert NIR_2.encode() not in ack and b"SANTONI" not in ack
    assert msa(ack_orphan)[1:3] == ["AE", "MULTI-13"]
    err = segment(ack_orphan, "ERR")
    assert (err[2], err[3][:4]) == ("ORC^1", "100^")
    assert err[8].startswith("HL7_RESULTS_WITHOUT_PATIENT: ORC[2]: ")


# -- the property: several patients in one message = their messages one by one ---------------
PEOPLE = [  # (nir, family, given, birth, sex, local id)
    (NIR, "LEFÈVRE", "Hélène", "19790328", "F", "LAB00042"),
    (NIR_2, "SANTONI", "Ange", "19881002", "M", "LAB00099"),
    ("260057511512375", "MARTIN", "Zoé", "19600512", "F", "LAB00101"),
    ("179120512345641", "ROUX", "Paul", "19791205", "M", "LAB00102"),
]
UNITS = ["mmol/L", "g/L", "µmol/L", "%"]


def _message(control_id: str, person: tuple, result: dict) -> bytes:
    nir, family, given, birth, sex, local_id = person
    extra = "OBX|4|NM|2160-0^Créatinine^LN||{}|{}|||||{}|||{}".format(
        result["crea"], result["unit"], result["status"], result["when"])
    return oru(control_id, nir=nir, family=family, given=given, birth=birth, sex=sex,
               local_id=local_id, value=result["value"], status=result["status"],
               filler=result["filler"], extra_obx=extra)


results = st.fixed_dictionaries({
    "value": st.sampled_from(["3.2", "5.4", "6.9", "12"]),
    "crea": st.decimals(min_value=20, max_value=900, places=1).map(str),
    "unit": st.sampled_from(UNITS),
    "status": st.sampled_from(["F", "P"]),
    "filler": st.sampled_from(["CMD-1", "CMD-2"]),  # equal across patients, or not
    "when": st.sampled_from(["20240315083000+0100", "202403150900", "20240316"]),
})


def _store(base: Path, name: str, template: Path) -> Context:
    """A store of its own, a copy of the session's migrated template: two per example, and a
    new file's migrations were most of an example's time."""
    home = base / f"home-{name}"
    settings = load_settings(env={"DMP_HOME": str(home),
                                  "DMP_DATABASE_URL": migrated_sqlite(template,
                                                                      home / "dmp.sqlite3"),
                                  "DMP_ARCHIVE_URL": str(base / f"archive-{name}")})
    ctx = Context.from_settings(dataclasses.replace(settings, prepare_processes=0))
    create_dossiers(ctx.engine, [DossierInput(ins=nir, ins_oid=INS_OID, family=family.title(),
                                              given=given, birth_date=f"{b[:4]}-{b[4:6]}-{b[6:]}",
                                              sex=sex)
                                 for nir, family, given, b, sex, _ in PEOPLE])
    return ctx


def _filed(ctx: Context, blobs: list[bytes]) -> dict[str, list[tuple]]:
    intake(ctx.engine, ctx.archive, [Received(b, "lab", "file", file_name=f"{i}.hl7")
                                     for i, b in enumerate(blobs)])
    drain(ctx)
    out = {}
    for person in PEOPLE:
        dossier = show_dossier(ctx.engine, person[0], history=True)
        out[person[0]] = sorted(
            (e["type"], e["key"], e["code"], e["value"], e["value_num"], e["unit"],
             e["effective"], e["specimen_time"], e["status"], e["version"], e["current"])
            for e in dossier["entries"])
    with ctx.engine.connect() as conn:
        out["statuses"] = sorted(set(conn.execute(select(imports.c.status)).scalars()))
    ctx.engine.dispose()
    return out


@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(people=st.permutations(range(len(PEOPLE))).flatmap(
           lambda order: st.integers(2, len(PEOPLE)).map(lambda n: order[:n])),
       data=st.data())
def test_several_patients_in_one_message_file_as_their_messages_apart(people, data,  # noqa: ANN001
                                                                      sqlite_template) -> None:
    """For any N one-patient messages (distinct patients) and any split of them into
    consecutive runs, each run sent as one multi-patient ORU^R01: every dossier holds the
    same entries (keys, codes, values, units, times, statuses, versions) as when the N
    messages are filed one by one. Distinct patients: the same patient twice in a row is one
    PATIENT_RESULT group (same PID-3), whose orders share one message's keys; filed apart,
    two messages under one order number would make a second version instead."""
    chosen = [PEOPLE[i] for i in people]
    sent = [data.draw(results) for _ in chosen]
    cuts = sorted(data.draw(st.sets(st.integers(1, len(chosen) - 1))))
    apart = [_message(f"M-{n}", person, result)
             for n, (person, result) in enumerate(zip(chosen, sent, strict=True))]
    runs, start = [], 0
    for cut in [*cuts, len(chosen)]:
        runs.append(combine(*apart[start:cut]) if cut - start > 1 else apart[start])
        start = cut
    with tempfile.TemporaryDirectory() as tmp:
        expected = _filed(_store(Path(tmp), "apart", sqlite_template), apart)
        got = _filed(_store(Path(tmp), "together", sqlite_template), runs)
    assert expected["statuses"] == got["statuses"] == ["deposited"]
    assert got == expected
