"""Rerun: put imports back in the queue so they are replayed from their archived bytes.

The ledger row is the same (its attempts table keeps every earlier outcome), the bytes are the
original ones from the archive, and the code and mapping tables are today's. What is reopened
and what is left alone (and why) is decided once, by ``plan_rerun``, for the dry run and the
real run alike. Before anything is reopened its archived object is read back and checked
against its sha256: an import whose object is missing or corrupt cannot be reprocessed; it is
said plainly and recorded as an attempt, never replayed.

Whoever asks for a rerun (CLI, admin API, console) is recorded in the audit trail with the
ids and the reason, and what became of each import is read back from the ledger once the
processing is done: a worker of the service may have taken some of the reopened rows first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Connection, Engine, select, update

from dossiers.schema import imports
from pipelines.admin import concerned_patients
from pipelines.archive import Archive, ArchiveCorrupt, ArchiveMissing
from pipelines.audit import Actor, record
from pipelines.faults import fault_point
from pipelines.ledger import (
    DEPOSITED,
    DISCARDED,
    FAILED,
    PROCESSING,
    RECEIVED,
    SPLIT,
    ImportFilter,
    Outcome,
    aware,
    now,
    record_outcomes,
    reopenable,
    reset_for_rerun,
    where_filter,
)
from pipelines.settings import Settings

LEFT_DEPOSITED = "deposited: nothing to do"
LEFT_INTAKE = "decided at intake (byte-identical repeat or refused by the connector)"
LEFT_BATCH = ("batch file whose envelope failed at intake: its messages have rows of their "
              "own (imports list --file NAME lists them; rerun those), the file itself has "
              "nothing to replay: a complete batch is for the sender to send again")
LEFT_REFUSED = ("refused at intake ({code}): nothing was taken in to replay; the sender must "
                "send it again")
LEFT_SPLIT = "batch envelope: its messages have rows of their own"
LEFT_DISCARDED = "discarded by an admin"
LEFT_IN_PROGRESS = "in progress (claimed by a worker)"
CANNOT = "cannot be reprocessed: archived object {}"


@dataclass
class RerunPlan:
    """What a rerun of some ids does. ``reopen``: terminal rows put back in the queue;
    ``queued``: rows already waiting (processed now); ``left``: id -> why nothing is done;
    ``cannot``: id -> why it cannot be reprocessed (archive); ``unknown``: not in the ledger;
    ``notes``: what the admin should know before (a source no longer declared)."""

    reopen: list[int] = field(default_factory=list)
    queued: list[int] = field(default_factory=list)
    left: dict[int, str] = field(default_factory=dict)
    cannot: dict[int, str] = field(default_factory=dict)
    unknown: list[int] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def to_process(self) -> list[int]:
        return sorted(self.reopen + self.queued)

    def summary(self) -> dict:
        """Counts and ids for people and scripts (the dry run's output)."""
        left: dict[str, list[int]] = {}
        for i, why in sorted(self.left.items()):
            left.setdefault(why, []).append(i)
        return {"reopen": self.reopen, "queued": self.queued,
                "left_alone": [{"reason": k, "count": len(v), "ids": v}
                               for k, v in left.items()],
                "cannot_reprocess": [{"id": i, "reason": why}
                                     for i, why in sorted(self.cannot.items())],
                "unknown": self.unknown, "notes": self.notes}


def select_ids(engine: Engine, flt: ImportFilter | None = None, *, status: str | None = None,
               source: str | None = None, error_code: str | None = None,
               since: datetime | None = None) -> list[int]:
    """Ids matching an admin's filter, oldest first."""
    flt = flt or ImportFilter(status=status, source=source, error_code=error_code, since=since)
    q = where_filter(select(imports.c.id).order_by(imports.c.id), flt)
    with engine.connect() as conn:
        return list(conn.execute(q).scalars())


def targets(engine: Engine, ids: list[int] | None, flt: ImportFilter | None) -> list[int]:
    """The ids given plus those a filter selects (an empty filter selects nothing)."""
    wanted = set(ids or [])
    if flt is not None and not flt.is_empty():
        wanted |= set(select_ids(engine, flt))
    return sorted(wanted)


def dry_run(engine: Engine, archive: Archive | None, ids: list[int],
            settings: Settings | None = None) -> dict:
    """What a rerun would do, for people and scripts (nothing written)."""
    return {"requested": len(ids), "dry_run": True, "outcomes": {}, "results": [],
            **plan_rerun(engine, archive, ids, settings).summary()}


def _left_reason(row, t: datetime) -> str | None:  # noqa: ANN001
    """Why a row is not rerun, or None if it is."""
    if row.status == DEPOSITED:
        return LEFT_DEPOSITED
    if row.status == SPLIT:
        return LEFT_SPLIT
    if row.status == DISCARDED:
        return LEFT_DISCARDED
    if row.status == PROCESSING and row.claimed_until is not None and \
            aware(row.claimed_until) >= t:
        return LEFT_IN_PROGRESS
    if row.status in (RECEIVED, PROCESSING) or reopenable(row.status, row.stage):
        return None
    return _intake_reason(row)


def _intake_reason(row) -> str:  # noqa: ANN001
    """Why a row decided at intake is not rerun, said for what it is. Why: a batch file whose
    BTS/FTS count did not match was told it was 'a byte-identical repeat or refused by the
    connector', which sent the operator looking for a repeat that did not exist."""
    code = row.error_code or ""
    if row.status == FAILED and code.startswith("HL7_BATCH_"):
        return LEFT_BATCH
    if row.status == FAILED and code:
        return LEFT_REFUSED.format(code=code)
    return LEFT_INTAKE


def plan_rerun(engine: Engine, archive: Archive | None, ids: list[int],
               settings: Settings | None = None) -> RerunPlan:
    """Decide, without writing anything, what rerunning ``ids`` does; with ``archive``, also
    check every candidate's archived object (read back, sha256 verified). An archive that
    cannot be reached raises ArchiveUnavailable: nothing can be said about the objects.
    With ``settings``, note the sources no longer declared (``undeclared_note``)."""
    plan = RerunPlan()
    wanted = sorted(set(ids))
    t = now()
    rows = {}
    with engine.connect() as conn:
        for i in range(0, len(wanted), 500):
            for r in conn.execute(select(imports.c.id, imports.c.status, imports.c.stage,
                                         imports.c.error_code, imports.c.sha256,
                                         imports.c.claimed_until, imports.c.source,
                                         imports.c.channel)
                                  .where(imports.c.id.in_(wanted[i:i + 500]))):
                rows[r.id] = r
    for i in wanted:
        row = rows.get(i)
        if row is None:
            plan.unknown.append(i)
            continue
        why = _left_reason(row, t)
        if why is not None:
            plan.left[i] = why
            continue
        if archive is not None:
            try:
                archive.get(row.sha256)
            except ArchiveMissing:
                plan.cannot[i] = CANNOT.format("missing")
                continue
            except ArchiveCorrupt:
                plan.cannot[i] = CANNOT.format("corrupt (sha256 mismatch)")
                continue
        (plan.queued if row.status in (RECEIVED, PROCESSING) else plan.reopen).append(i)
    if settings is not None:
        plan.notes = undeclared_note(settings, [rows[i] for i in plan.to_process])
    return plan


# Channels whose source is always a declared one (a listener's sender, a token's source, a
# drop folder, a bucket): such a source missing from today's settings was renamed or removed.
DECLARED_CHANNELS = ("mllp", "http", "folder", "s3")


def undeclared_note(settings: Settings, rows: list) -> list[str]:
    """One note per source of ``rows`` that came in through a declared source the settings no
    longer declare (nor name in ``[renamed_sources]``): replayed as they are, they would be
    read without that source's charset, time zone, required mappings and allowed senders.
    Nothing when the settings declare no source at all (a store fed by files only)."""
    declared = settings.declared_sources()
    if not declared:
        return []
    loose = (settings.listener.accept_unknown_senders and ("mllp", "http")) or ()
    missing: dict[str, int] = {}
    for row in rows:
        if row.channel in DECLARED_CHANNELS and row.channel not in loose and \
                settings.current_source(row.source) not in declared:
            missing[row.source] = missing.get(row.source, 0) + 1
    return [f"source {source!r} ({n} import(s)) is not declared in the settings any more: "
            f"if it was renamed, name it under [renamed_sources] ({source} = \"new id\") "
            "and rerun then; as it is, they are read without its per-source settings "
            "(charset, time zone, required mappings, allowed senders)"
            for source, n in sorted(missing.items())]


def reopen_checked(engine: Engine, archive: Archive, ids: list[int], *,
                   code_version: str, trigger: str = "rerun",
                   settings: Settings | None = None) -> RerunPlan:
    """Carry out a plan: record the imports that cannot be reprocessed (failed, with an
    attempt saying why: the admin sees it in `imports show`), reopen the others. Returns the
    plan; its ``to_process`` are the rows to process now."""
    plan = plan_rerun(engine, archive, ids, settings)
    with engine.begin() as conn:
        if plan.cannot:
            t = now()
            record_outcomes(conn, [
                (i, Outcome(FAILED, stage="archive",
                            error_code="ARCHIVE_MISSING" if "missing" in why
                            else "ARCHIVE_CORRUPT", error_message=why), t)
                for i, why in sorted(plan.cannot.items())],
                code_version=code_version, trigger=trigger)
        for i in range(0, len(plan.reopen), 500):
            reset_for_rerun(conn, plan.reopen[i:i + 500])
        if plan.queued:  # waiting after a transient failure: now, not after the backoff
            conn.execute(update(imports).where(imports.c.id.in_(plan.queued),
                                               imports.c.status == RECEIVED)
                         .values(not_before=None))
    fault_point("rerun.reopened")  # back in the queue, their earlier outcomes cleared
    return plan


def audit_rerun(engine: Engine, actor: Actor, ids: list[int], reason: str | None) -> None:
    """Who asked for the rerun of which imports, and why: one audit row (with the import id
    for one import, the ids in its details for several: at most 10,000 listed, the count
    always), written before anything is reopened. Only imports of the ledger: an id the admin
    mistyped is reported as unknown, not audited as rerun (one alone was written as the row's
    import id, which PostgreSQL's foreign key refused: a traceback, a 500)."""
    if not ids:
        return
    with engine.begin() as conn:
        wanted = sorted(set(ids))
        known = [i for n in range(0, len(wanted), 500) for (i,) in conn.execute(
            select(imports.c.id).where(imports.c.id.in_(wanted[n:n + 500]))
            .order_by(imports.c.id))]
        if len(known) == 1:
            row = conn.execute(select(imports).where(imports.c.id == known[0])).one()
            for patient_id in concerned_patients(conn, row):
                record(conn, actor, "import.rerun", import_id=known[0],
                       patient_id=patient_id, reason=reason)
        elif known:
            record(conn, actor, "import.rerun", reason=reason,
                   details={"imports": known[:10_000], "count": len(known)})
            # and in each named patient's trail, their imports among them (they were in no
            # dossier's trail only)
            for patient_id, theirs in sorted(_per_patient(conn, known).items()):
                record(conn, actor, "import.rerun", patient_id=patient_id, reason=reason,
                       details={"imports": theirs[:10_000], "count": len(theirs)})


def _per_patient(conn: Connection, ids: list[int]) -> dict[int, list[int]]:
    """patient id -> the imports among ``ids`` that name them (their own patient or the one
    an admin assigned), read in chunks of ids (bounded IN lists)."""
    found: dict[int, list[int]] = {}
    for n in range(0, len(ids), 500):
        for r in conn.execute(select(imports.c.id, imports.c.patient_id,
                                     imports.c.assigned_patient_id)
                              .where(imports.c.id.in_(ids[n:n + 500]))
                              .order_by(imports.c.id)):
            for patient_id in {r.patient_id, r.assigned_patient_id} - {None}:
                found.setdefault(patient_id, []).append(r.id)
    return found


def rerun_outcomes(engine: Engine, ids: list[int]) -> dict:
    """What became of the imports a rerun processed, as the ledger says after the run (not
    as this process counted: a service worker may have taken some reopened rows first, and
    a transient failure leaves a row 'received'). ``outcomes``: count per ledger status
    ('received' waits for a retry or a worker, 'processing' is held by another worker);
    ``results``: each import's status and, when it failed or was quarantined again, its
    error code, location and message, so that the admin sees which failed again and why."""
    outcomes: dict[str, int] = {}
    results: list[dict] = []
    wanted = sorted(set(ids))
    with engine.connect() as conn:
        for i in range(0, len(wanted), 500):
            for r in conn.execute(select(imports.c.id, imports.c.status, imports.c.stage,
                                         imports.c.error_code, imports.c.error_location,
                                         imports.c.error_message)
                                  .where(imports.c.id.in_(wanted[i:i + 500]))
                                  .order_by(imports.c.id)):
                outcomes[r.status] = outcomes.get(r.status, 0) + 1
                results.append({"id": r.id, "status": r.status, "stage": r.stage,
                                "error_code": r.error_code,
                                "error_location": r.error_location,
                                "error_message": r.error_message})
    return {"outcomes": outcomes, "results": results}


def reopen(engine: Engine, ids: list[int]) -> list[int]:
    """Mark the given imports 'received' again; returns those actually reopened (no archive
    check: see ``reopen_checked``)."""
    if not ids:
        return []
    with engine.begin() as conn:
        return reset_for_rerun(conn, ids)
