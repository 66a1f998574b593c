"""The admins' operations console through pipelines/ (no Prefect), on SQLite and PostgreSQL:
filters and stats, show, rerun (dry run, archive check, idempotence), assign, edit, discard,
transient retries, and the issue's "done when" (imports failed by a missing mapping, rerun by
filter once it is back: 300 in batches of 100 here, as 1,000 in batches of 500 were)."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.exc import OperationalError

from dossiers.schema import audit_log, entries, import_attempts, imports, provenance
from pipelines import resilient
from pipelines.admin import AdminError, assign, discard, edit, read_raw
from pipelines.advice import advice
from pipelines.archive import ArchiveUnavailable
from pipelines.audit import Actor
from pipelines.filters import FilterError, build_filter, parse_time
from pipelines.intake import Received, intake
from pipelines.ledger import ImportFilter, claim_batch, now
from pipelines.process import CODE_VERSION, Context, drain
from pipelines.report import import_stats, list_imports, show_dossier, show_import
from pipelines.rerun import (
    LEFT_DEPOSITED,
    LEFT_DISCARDED,
    LEFT_IN_PROGRESS,
    LEFT_INTAKE,
    plan_rerun,
    reopen_checked,
    select_ids,
    targets,
)
from tests.conftest import SAMPLES
from tests.test_multi_patient import SECOND, both, ledger
from tests.test_pipeline import NIR, NIR_2, ingest, make_patient, oru, statuses

ALICE = Actor("alice")
UNKNOWN = dict(nir=NIR_2, sex="M", family="SANTONI", given="Ange", birth="19881002")
BAD = "OBX|4|NM|2345-7^Glucose^LN||abc|mmol/L|||||F"


def attempts_of(ctx, import_id: int) -> list[tuple[str, str | None, str]]:  # noqa: ANN001
    with ctx.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(
            select(import_attempts.c.status, import_attempts.c.error_code,
                   import_attempts.c.trigger)
            .where(import_attempts.c.import_id == import_id).order_by(import_attempts.c.id))]


def rerun(ctx, ids: list[int]) -> dict:  # noqa: ANN001
    """What the rerun flow does, without Prefect."""
    plan = reopen_checked(ctx.engine, ctx.archive, ids, code_version=CODE_VERSION)
    done = drain(dataclasses.replace(ctx, trigger="rerun"), ids=plan.to_process) \
        if plan.to_process else {}
    return {"plan": plan, "outcomes": done}


def _mixed(ctx) -> dict[str, int]:  # noqa: ANN001
    """One deposited, one quarantined, one failed (lab), one failed from another source."""
    make_patient(ctx)
    dep, quar, fail = ingest(ctx, oru("M1"), oru("M2", **UNKNOWN), oru("M3", extra_obx=BAD))
    other = ingest(ctx, oru("M4", filler="CMD-9", extra_obx=BAD), source="lab2")[0]
    return {"deposited": dep, "quarantined": quar, "failed": fail, "other": other}


def test_list_filters_sort_and_stats(ctx) -> None:  # noqa: ANN001
    ids = _mixed(ctx)
    assert [r["id"] for r in list_imports(ctx.engine)] == sorted(ids.values(), reverse=True)
    flt = build_filter(ctx.engine, status="failed", code="obx_bad_number")
    assert [r["id"] for r in list_imports(ctx.engine, flt, sort="id")] == [ids["failed"],
                                                                          ids["other"]]
    assert [r["id"] for r in list_imports(ctx.engine, ImportFilter(source="lab2"))] == [
        ids["other"]]
    assert [r["id"] for r in list_imports(ctx.engine, ImportFilter(stage="identity"))] == [
        ids["quarantined"]]
    assert list_imports(ctx.engine, ImportFilter(channel="mllp")) == []
    assert [r["id"] for r in list_imports(ctx.engine, build_filter(ctx.engine, patient=NIR),
                                          sort="id")] == [ids["deposited"]]
    assert len(list_imports(ctx.engine, build_filter(ctx.engine, since="1h"))) == 4
    assert list_imports(ctx.engine, build_filter(ctx.engine, until="2000-01-01")) == []
    assert list_imports(ctx.engine, build_filter(ctx.engine, since=parse_time("1h") +
                                                 timedelta(hours=2))) == []
    by_status = [r["status"] for r in list_imports(ctx.engine, sort="status")]
    assert by_status == sorted(by_status)
    assert len(list_imports(ctx.engine, sort="-received", limit=2)) == 2
    with pytest.raises(ValueError, match="sort key"):
        list_imports(ctx.engine, sort="nope")
    with pytest.raises(FilterError):
        build_filter(ctx.engine, since="yesterday-ish")
    with pytest.raises(FilterError, match="no dossier"):
        build_filter(ctx.engine, patient="999")

    stats = import_stats(ctx.engine)
    assert stats["total"] == 4
    assert stats["by_status"] == {"deposited": 1, "failed": 2, "quarantined": 1}
    assert stats["by_code"][0] == {"error_code": "OBX_BAD_NUMBER", "status": "failed",
                                   "stage": "normalize", "count": 2,
                                   "advice": advice("OBX_BAD_NUMBER")}
    assert import_stats(ctx.engine, ImportFilter(source="lab2"))["total"] == 1


def test_show_has_error_location_attempts_entries_and_audited_raw(ctx) -> None:  # noqa: ANN001
    ids = _mixed(ctx)
    failed = show_import(ctx.engine, ids["failed"])
    assert (failed["error_code"], failed["error_location"]) == ("OBX_BAD_NUMBER", "OBX[8]-5")
    assert [a["status"] for a in failed["attempts"]] == ["failed"]
    deposited = show_import(ctx.engine, ids["deposited"])
    assert {(e["type"], e["relation"]) for e in deposited["produced"]} == {
        ("lab_report", "created"), ("lab_result", "created")}
    assert len(deposited["produced"]) == 4
    assert [(a["actor"], a["action"]) for a in deposited["audit"]] == [
        ("sender:lab", "dossier.deposit")]  # the dossier write, in the patient's trail
    assert "value" not in deposited["produced"][0]  # ids and codes, no results

    raw = read_raw(ctx.engine, ctx.archive, ids["failed"], ALICE, reason="ticket 7")
    assert raw.text.startswith("MSH|") and "LEFÈVRE" in raw.text and raw.charset
    assert raw.data == oru("M3", extra_obx=BAD)
    assert [(a["actor"], a["action"], a["reason"]) for a in
            show_import(ctx.engine, ids["failed"])["audit"]] == [
        ("alice", "import.raw", "ticket 7")]
    with pytest.raises(AdminError, match="no import"):
        read_raw(ctx.engine, ctx.archive, 999, ALICE)


def test_rerun_plan_says_what_is_left_alone_and_why(ctx) -> None:  # noqa: ANN001
    ids = _mixed(ctx)
    repeat = ingest(ctx, oru("M3", extra_obx=BAD))[0]  # same bytes again: decided at intake
    busy = ingest(ctx, oru("M5", filler="CMD-5", extra_obx=BAD))[0]
    with ctx.engine.begin() as conn:  # a worker holds it now
        conn.execute(update(imports).where(imports.c.id == busy).values(
            status="processing", claimed_until=now() + timedelta(minutes=5)))
    discard(ctx.engine, ids["other"], ALICE, "sender withdrew it")
    plan = plan_rerun(ctx.engine, ctx.archive, [*ids.values(), repeat, busy, 999])
    assert plan.reopen == [ids["quarantined"], ids["failed"]]
    assert plan.left == {ids["deposited"]: LEFT_DEPOSITED, ids["other"]: LEFT_DISCARDED,
                         repeat: LEFT_INTAKE, busy: LEFT_IN_PROGRESS}
    assert plan.unknown == [999] and plan.cannot == {}
    assert statuses(ctx, [ids["failed"]]) == ["failed"]  # a plan writes nothing


def test_rerun_checks_the_archived_object_and_is_idempotent(ctx) -> None:  # noqa: ANN001
    make_patient(ctx)
    gone, corrupt, fine = ingest(ctx, oru("M1", filler="A", extra_obx=BAD),
                                 oru("M2", filler="B", extra_obx=BAD),
                                 oru("M3", filler="C", extra_obx=BAD))
    with ctx.engine.connect() as conn:
        sha = dict(conn.execute(select(imports.c.id, imports.c.sha256)).all())
    ctx.archive.path(sha[gone]).unlink()
    ctx.archive.path(sha[corrupt]).write_bytes(b"MSH|something else")
    plan = plan_rerun(ctx.engine, ctx.archive, [gone, corrupt, fine])
    assert plan.cannot == {gone: "cannot be reprocessed: archived object missing",
                           corrupt: "cannot be reprocessed: archived object corrupt "
                           "(sha256 mismatch)"}
    assert plan.reopen == [fine]
    first = rerun(ctx, [gone, corrupt, fine])
    assert first["outcomes"] == {"failed": 1}  # still bad: same bytes, same code
    assert attempts_of(ctx, gone)[-1] == ("failed", "ARCHIVE_MISSING", "rerun")
    assert attempts_of(ctx, corrupt)[-1] == ("failed", "ARCHIVE_CORRUPT", "rerun")
    assert [a[0] for a in attempts_of(ctx, fine)] == ["failed", "failed"]

    ok = ingest(ctx, oru("M9", filler="D"))[0]
    again = rerun(ctx, [ok])
    assert again["outcomes"] == {} and again["plan"].left == {ok: LEFT_DEPOSITED}
    assert len(attempts_of(ctx, ok)) == 1


@pytest.mark.parametrize("kind", ["hl7v2", "cda", "pdf"])
def test_assign_files_a_quarantined_import_in_the_chosen_dossier(ctx, kind) -> None:  # noqa: ANN001
    path = {"hl7v2": SAMPLES / "hl7v2" / "11_labm_patient_inconnu.hl7",
            "cda": SAMPLES / "cda" / "12_crbio_patient_inconnu.xml",
            "pdf": SAMPLES / "pdf" / "12_radio_thorax_inconnue_U1_texte.pdf"}[kind]
    pid = make_patient(ctx)
    other = make_patient(ctx, nir=NIR_2, family="Santoni", given="Ange",
                         birth_date="1988-10-02", sex="M")
    imp = ingest(ctx, path.read_bytes(), source="hospital")[0]
    assert statuses(ctx, [imp]) == ["quarantined"]
    with pytest.raises(AdminError, match="reason"):
        assign(ctx.engine, imp, str(pid), ALICE, " ")
    with pytest.raises(AdminError, match="no dossier"):
        assign(ctx.engine, imp, "424242", ALICE, "phone call")
    assert assign(ctx.engine, imp, NIR_2, ALICE, "identity checked with the lab") == other
    assert rerun(ctx, [imp])["outcomes"] == {"deposited": 1}
    info = show_import(ctx.engine, imp)
    assert info["patient_id"] == info["assigned_patient_id"] == other
    assert {e["patient_id"] for e in info["produced"]} == {other}
    assert [a["status"] for a in info["attempts"]] == ["quarantined", "assigned", "deposited"]
    assert [(a["action"], a["patient_id"]) for a in info["audit"]] == [("import.assign", other),
                                                                  ("dossier.deposit", other)]
    with pytest.raises(AdminError, match="not quarantined"):
        assign(ctx.engine, imp, str(pid), ALICE, "again")


def test_edit_is_a_new_import_and_the_original_is_kept(ctx) -> None:  # noqa: ANN001
    make_patient(ctx)
    original = ingest(ctx, oru("M3", extra_obx=BAD))[0]
    bad_bytes = oru("M3", extra_obx=BAD)
    fixed = oru("M3", extra_obx=BAD.replace("||abc|", "||6.0|"))
    with pytest.raises(AdminError, match="unchanged"):
        edit(ctx.engine, ctx.archive, original, bad_bytes, ALICE)
    new = edit(ctx.engine, ctx.archive, original, fixed, ALICE, reason="typo")
    assert len(new) == 1
    assert drain(ctx, ids=new) == {"deposited": 1}
    old, now_ = show_import(ctx.engine, original), show_import(ctx.engine, new[0])
    assert (old["status"], old["discard_reason"]) == ("discarded", f"edited as import {new[0]}")
    assert old["error_code"] == "OBX_BAD_NUMBER" and old["edited_as"] == new
    assert ctx.archive.get(old["sha256"]) == bad_bytes  # never modified
    assert (now_["channel"], now_["edited_from"], now_["status"]) == ("edit", original,
                                                                     "deposited")
    assert [a["action"] for a in old["audit"]] == ["import.edit"]
    with pytest.raises(AdminError, match="only failed or quarantined"):
        edit(ctx.engine, ctx.archive, original, fixed + b"\r", ALICE)


def test_discard_closes_without_deleting_bytes(ctx) -> None:  # noqa: ANN001
    ids = _mixed(ctx)
    assert discard(ctx.engine, ids["failed"], ALICE, "lab will resend") is True
    assert discard(ctx.engine, ids["failed"], ALICE, "twice") is False
    info = show_import(ctx.engine, ids["failed"])
    assert (info["status"], info["discard_reason"]) == ("discarded", "lab will resend")
    assert ctx.archive.get(info["sha256"])
    assert [(a["actor"], a["action"]) for a in info["audit"]] == [("alice", "import.discard")]
    with pytest.raises(AdminError, match="deposited"):
        discard(ctx.engine, ids["deposited"], ALICE, "no")
    with pytest.raises(AdminError, match="reason"):
        discard(ctx.engine, ids["quarantined"], ALICE, "")
    assert select_ids(ctx.engine, ImportFilter(status="discarded")) == [ids["failed"]]


class _Unavailable:
    """An archive whose reads fail as if S3 were down."""

    def __init__(self, inner) -> None:  # noqa: ANN001
        self.inner = inner

    def get(self, sha: str) -> bytes:
        raise ArchiveUnavailable("S3 archive read failed (503)")

    def put_many(self, items) -> None:  # noqa: ANN001
        self.inner.put_many(items)


def test_transient_archive_failures_back_off_then_exhaust(ctx) -> None:  # noqa: ANN001
    make_patient(ctx)
    items = [Received(oru("M1"), "lab", "file")]
    imp = intake(ctx.engine, ctx.archive, items)[0].message_ids[0]
    down = dataclasses.replace(ctx, archive=_Unavailable(ctx.archive),
                               settings=dataclasses.replace(ctx.settings, retry_max=3,
                                                            retry_base_seconds=60))
    assert drain(down) == {"received": 1}
    info = show_import(ctx.engine, imp)
    assert (info["status"], info["error_code"], info["retries"]) == (
        "received", "ARCHIVE_UNAVAILABLE", 1)
    assert claim_batch(ctx.engine, limit=10, worker="w") == []  # waits for its not_before
    with ctx.engine.begin() as conn:
        conn.execute(update(imports).values(not_before=now() - timedelta(seconds=1)))
    assert drain(down) == {"received": 1}
    with ctx.engine.begin() as conn:
        conn.execute(update(imports).values(not_before=now() - timedelta(seconds=1)))
    assert drain(down) == {"failed": 1}
    info = show_import(ctx.engine, imp)
    assert (info["status"], info["error_code"]) == ("failed", "TRANSIENT_EXHAUSTED")
    assert [a["status"] for a in info["attempts"]] == ["retry", "retry", "failed"]
    assert rerun(ctx, [imp])["outcomes"] == {"deposited": 1}  # the outage is over

    gone = intake(ctx.engine, ctx.archive, [Received(oru("M2", filler="X"), "lab", "file")])
    gone_id = gone[0].message_ids[0]
    ctx.archive.path(show_import(ctx.engine, gone_id)["sha256"]).unlink()
    assert drain(ctx) == {"failed": 1}  # permanent: not retried
    assert attempts_of(ctx, gone_id) == [("failed", "ARCHIVE_MISSING", "ingest")]


def test_store_outage_mid_batch_defers_claimed_rows(ctx, monkeypatch) -> None:  # noqa: ANN001
    imp = intake(ctx.engine, ctx.archive, [Received(oru("M1"), "lab", "file")])[0]
    claimed = claim_batch(ctx.engine, limit=10, worker=ctx.worker)
    assert claimed == imp.message_ids

    def down(*_a, **_k) -> None:  # noqa: ANN002, ANN003
        raise OperationalError("COMMIT", {}, ConnectionError("server closed the connection"))

    monkeypatch.setattr(resilient, "file_prepared", down)
    assert resilient.process_or_defer(ctx, claimed) == {"retry": 1}
    info = show_import(ctx.engine, claimed[0])
    assert (info["status"], info["error_code"], info["retries"]) == (
        "received", "STORE_UNAVAILABLE", 1)
    assert info["not_before"] is not None

    def bug(*_a, **_k) -> None:  # noqa: ANN002, ANN003
        raise KeyError("a bug, not an outage")

    monkeypatch.setattr(resilient, "file_prepared", bug)
    with pytest.raises(KeyError):
        resilient.process_or_defer(ctx, claimed)


def test_store_outage_while_filing_one_message_defers_it(ctx, monkeypatch) -> None:  # noqa: ANN001
    """The store going away while a message is filed (inside its savepoint, not around the
    batch): the message was recorded FAILED INTERNAL_ERROR, the batch's recording then failed
    on the dead transaction (PendingRollbackError, not an outage) and the rows stayed claimed
    until their leases expired (ten minutes after a PostgreSQL restart). It is an outage:
    the batch is put back for a retry."""
    import pipelines.process as process

    imp = intake(ctx.engine, ctx.archive, [Received(oru("M1"), "lab", "file")])[0]
    claimed = claim_batch(ctx.engine, limit=10, worker=ctx.worker)

    def down(*_a, **_k) -> None:  # noqa: ANN002, ANN003
        raise OperationalError("SELECT", {}, ConnectionError("server closed the connection"))

    monkeypatch.setattr(process, "_file", down)
    assert resilient.process_or_defer(ctx, claimed) == {"retry": 1}
    info = show_import(ctx.engine, imp.message_ids[0])
    assert (info["status"], info["error_code"]) == ("received", "STORE_UNAVAILABLE")


def _lab_batch(n: int) -> list[bytes]:
    local = "OBX|4|NM|ZZGLU^Glycémie capillaire^L||{}|mmol/L|3.9-5.8|N|||F"
    return [oru(f"BULK-{i}", filler=f"CMD-{i}", extra_obx=local.format(f"{3 + i / 1000:.3f}"))
            for i in range(n)]


BULK = 300
BULK_BATCH = 100


def test_bulk_imports_failed_by_a_missing_mapping_rerun_by_filter(ctx, tmp_path) -> None:  # noqa: ANN001
    """The issue's "done when": fail imports by the hundred by removing a mapping, restore it,
    rerun by filter: all deposited, none duplicated, the history shows both attempts.

    BULK imports in batches of BULK_BATCH: the failing drain and the rerun each span several
    batches, as the issue's 1,000 in batches of 500 did (a third of the filing time)."""
    tables = tmp_path / "mappings"
    tables.mkdir()
    table = "coding_system,local_code,loinc,display\nL,ZZGLU,14743-9,Glucose capillaire\n"
    settings = dataclasses.replace(ctx.settings, mappings_dir=tables, batch_size=BULK_BATCH,
                                   require_mapping=frozenset({"bulklab"}))
    make_patient(ctx)
    without = Context(settings=settings, engine=ctx.engine, archive=ctx.archive)
    items = [Received(b, "bulklab", "mllp") for b in _lab_batch(BULK)]
    ids = [i for r in intake(ctx.engine, ctx.archive, items) for i in r.message_ids]
    assert drain(without) == {"failed": BULK}
    stats = import_stats(ctx.engine, ImportFilter(source="bulklab"))
    assert stats["by_code"] == [{"error_code": "CODE_UNMAPPED", "status": "failed",
                                 "stage": "normalize", "count": BULK,
                                 "advice": advice("CODE_UNMAPPED")}]
    assert "mapping table" in stats["by_code"][0]["advice"]
    one = show_import(ctx.engine, ids[0])
    assert one["error_location"] == "OBX[8]-3" and "ZZGLU" in one["error_message"]

    (tables / "bulklab.csv").write_text(table, encoding="utf-8")  # the mapping is back
    restored = Context(settings=settings, engine=ctx.engine, archive=ctx.archive,
                       trigger="rerun")
    flt = build_filter(ctx.engine, status="failed", source="bulklab", code="CODE_UNMAPPED",
                       since="1d")
    wanted = targets(ctx.engine, None, flt)
    assert wanted == ids
    plan = reopen_checked(ctx.engine, ctx.archive, wanted, code_version=CODE_VERSION)
    assert len(plan.reopen) == BULK
    assert drain(restored, ids=plan.to_process) == {"deposited": BULK}

    with ctx.engine.connect() as conn:
        # one entry per fact (the results the messages share are one entry, several links)
        assert conn.execute(select(func.count()).select_from(entries).where(
            entries.c.code == "14743-9")).scalar_one() == BULK
        assert conn.execute(select(func.count()).select_from(provenance)).scalar_one() == 5 * BULK
        assert conn.execute(select(func.count()).select_from(
            select(entries.c.patient_id, entries.c.fact).where(entries.c.fact.is_not(None))
            .group_by(
                entries.c.patient_id, entries.c.fact).having(func.count() > 1)
            .subquery())).scalar_one() == 0
        history = conn.execute(
            select(import_attempts.c.status, import_attempts.c.trigger,
                   import_attempts.c.error_code, func.count(
                       import_attempts.c.import_id.distinct()))
            .group_by(import_attempts.c.status, import_attempts.c.trigger,
                      import_attempts.c.error_code)).all()
        assert conn.execute(select(func.count()).select_from(audit_log).where(
            audit_log.c.action != "dossier.deposit")).scalar_one() == 0
    assert sorted(tuple(h) for h in history) == [("deposited", "rerun", None, BULK),
                                                 ("failed", "ingest", "CODE_UNMAPPED", BULK)]
    assert [a["status"] for a in show_import(ctx.engine, ids[-1])["attempts"]] == [
        "failed", "deposited"]
    assert import_stats(ctx.engine, ImportFilter(source="bulklab"))["by_status"] == {
        "deposited": BULK}
    assert rerun(ctx, ids)["outcomes"] == {}  # idempotent: nothing reopened


class _S3Stub:
    def __init__(self, exc: Exception) -> None:
        self.exc = exc

    def get_object(self, **_kw) -> dict:  # noqa: ANN003
        raise self.exc


def test_s3_read_errors_tell_unavailable_from_missing() -> None:
    from botocore.exceptions import ClientError, EndpointConnectionError

    from pipelines.archive import ArchiveCorrupt, ArchiveError, ArchiveMissing
    from pipelines.s3_archive import S3Archive

    def client_error(code: str, status: int) -> ClientError:
        return ClientError({"Error": {"Code": code},
                            "ResponseMetadata": {"HTTPStatusCode": status}}, "GetObject")

    cases = [(client_error("NoSuchKey", 404), ArchiveMissing),
             (client_error("InternalError", 500), ArchiveUnavailable),
             (client_error("SlowDown", 503), ArchiveUnavailable),
             (EndpointConnectionError(endpoint_url="http://s3"), ArchiveUnavailable)]
    for exc, expected in cases:
        with pytest.raises(expected):
            S3Archive("b", client=_S3Stub(exc)).get("ab" * 32)
    with pytest.raises(ArchiveError) as denied:
        S3Archive("b", client=_S3Stub(client_error("AccessDenied", 403))).get("ab" * 32)
    assert not isinstance(denied.value, ArchiveUnavailable | ArchiveMissing | ArchiveCorrupt)


def test_the_admin_cannot_assign_a_message_of_several_patients(ctx) -> None:  # noqa: ANN001
    """One dossier assigned to a message of several patients would receive all their
    results: refused when the import is assigned (the archived message says how many
    patients), and by processing when it was assigned anyway (no archive to look)."""
    first = make_patient(ctx)
    [imp] = ingest(ctx, both("MULTI-7"))
    assert statuses(ctx, [imp]) == ["quarantined"]
    with pytest.raises(AdminError, match=f"import {imp} carries the results of 2 patients"):
        assign(ctx.engine, imp, str(first), ALICE, "checked", archive=ctx.archive)
    assert ledger(ctx, imp).assigned_patient_id is None
    # without the archive to look, processing refuses what was assigned
    assign(ctx.engine, imp, str(first), ALICE, "checked")
    drain(ctx)
    row = ledger(ctx, imp)
    assert (row.status, row.error_code) == ("quarantined", "ASSIGN_SEVERAL_PATIENTS")
    assert show_dossier(ctx.engine, NIR)["entries"] == []
    # a one-patient import is assigned as before
    [alone] = ingest(ctx, oru("ALONE-2", **SECOND))
    assert statuses(ctx, [alone]) == ["quarantined"]
    assert assign(ctx.engine, alone, str(first), ALICE, "checked",
                  archive=ctx.archive) == first
