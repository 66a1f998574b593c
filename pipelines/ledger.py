"""The import ledger: one row per received message, its status, and every attempt.

Statuses: received -> processing -> deposited | duplicate | failed | quarantined | held
(terminal), plus 'split' for the file-level row of a batch whose messages have rows of
their own, and 'discarded' for what an admin withdrew. Claims are leases so that a dead
worker's batch is taken again once ``claimed_until`` has passed; on PostgreSQL concurrent
workers skip each other's rows (FOR UPDATE SKIP LOCKED).

'held' is a document its sender says is not for patient care yet (a dictated report, HL7
v2.5 9.6.1.19; MDM_NOT_AVAILABLE): accepted, nothing filed, nothing wrong. It was 'failed':
a working dictate-then-sign flow left one failure per report for operators to look at. The
signature (MDM^T03) files it (pipelines/held.py); the row then says by which import.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import (
    Connection,
    Engine,
    Select,
    Text,
    and_,
    bindparam,
    cast,
    func,
    or_,
    select,
    update,
)

from dossiers.db import bulk_insert, bulk_update
from dossiers.schema import entries, import_attempts, imports, provenance
from pipelines.faults import fault_point
from pipelines.warning_lines import condensed

RECEIVED = "received"
PROCESSING = "processing"
DEPOSITED = "deposited"
DUPLICATE = "duplicate"
FAILED = "failed"
QUARANTINED = "quarantined"
HELD = "held"  # a draft not for patient care yet: accepted, not filed until signed
SPLIT = "split"
DISCARDED = "discarded"
RETRY = "retry"  # an attempt's status only: transient failure, the row waits in 'received'
ADT_STAGE = "consent"  # the stage of an ADT applied to a dossier: deposited without entries
# An MDM notification without its document (MDM_NOTIFICATION_ONLY): deposited without entries,
# the code kept on the row (AA: valid HL7, its content comes with the trigger named)
NOTIFICATION_STAGE = "notification"
TERMINAL = (DEPOSITED, DUPLICATE, FAILED, QUARANTINED, HELD, SPLIT, DISCARDED)
COUNTED = (DEPOSITED, DUPLICATE, FAILED, QUARANTINED, HELD)  # what a summary reports


@dataclass(slots=True)
class Outcome:
    """How one processing attempt ended; written to the ledger row and its attempt."""

    status: str
    stage: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    error_location: str | None = None
    entries: int = 0
    duplicates: int = 0
    patient_id: int | None = None
    logical_id: str | None = None
    duplicate_of: int | None = None
    warnings: list[str] | None = None
    # A message of several patients (an ORU^R01 whose PATIENT_RESULT group repeats): the
    # dossiers filed and the entries each got, for their audit trails; ``patient_id`` is
    # then None (the ledger row names one dossier). None for everything else.
    patients: tuple[tuple[int, int], ...] | None = None
    # A transient failure (archive or store unavailable): status RECEIVED, retried after
    # ``not_before``; ``retries`` counts consecutive transient failures (0 resets it).
    not_before: datetime | None = None
    retries: int = 0


@dataclass(frozen=True, slots=True)
class ImportFilter:
    """The admin's filter on the ledger, shared by list, stats, rerun (CLI and Prefect flow).
    Every field is optional; set fields are combined with AND."""

    status: str | None = None
    source: str | None = None
    channel: str | None = None
    stage: str | None = None
    error_code: str | None = None  # a code, or a family of codes: 'CDA_*', 'HL7_BATCH_*'
    since: datetime | None = None  # received at or after
    until: datetime | None = None  # received before
    patient_id: int | None = None  # filed in (or assigned to) this dossier
    warnings: bool | None = None  # True: only imports with warnings (filed, yet doubtful)
    # only imports a warning of which names this code (CDA_DTD_FORBIDDEN: a document filed
    # unread); ``imports list --warning`` alone: rerun and stats do not take it
    warning_code: str | None = None
    file_name: str | None = None  # the name it came under; '*' and '?' as in a shell
    # The ids ``source`` had before a rename (``[renamed_sources]``): the ledger keeps the id
    # an import came in under, and the admin filters by the name the source has now.
    source_aliases: tuple[str, ...] = ()

    def is_empty(self) -> bool:
        return all(getattr(self, name) is None for name in self.__slots__
                   if name != "source_aliases")


def where_filter(query: Select, flt: ImportFilter | None = None, *, status: str | None = None,
                 source: str | None = None, error_code: str | None = None,
                 since: datetime | None = None) -> Select:
    """The admin's filter on the ledger, shared by listing and rerun (an ImportFilter, or
    the older keyword form)."""
    if flt is None:
        flt = ImportFilter(status=status or None, source=source or None,
                           error_code=error_code or None, since=since)
    c = imports.c
    for column, value in ((c.status, flt.status), (c.channel, flt.channel),
                          (c.stage, flt.stage)):
        if value is not None:
            query = query.where(column == value)
    if flt.error_code is not None:
        query = query.where(code_matches(flt.error_code))
    if flt.source is not None:
        query = query.where(c.source == flt.source if not flt.source_aliases
                            else c.source.in_((flt.source, *flt.source_aliases)))
    if flt.warnings:
        query = query.where(has_warnings())
    if flt.warning_code is not None:
        query = query.where(warning_names(flt.warning_code))
    if flt.file_name is not None:
        query = query.where(_name_matches(flt.file_name))
    if flt.since is not None:
        query = query.where(c.received_at >= flt.since)
    if flt.until is not None:
        query = query.where(c.received_at < flt.until)
    if flt.patient_id is not None:
        # An import of several patients names none in patient_id: it is found through what
        # it filed in this patient's dossier (provenance).
        filed_here = select(provenance.c.import_id).join(
            entries, entries.c.id == provenance.c.entry_id).where(
            entries.c.patient_id == flt.patient_id)
        query = query.where(or_(c.patient_id == flt.patient_id,
                                c.assigned_patient_id == flt.patient_id,
                                and_(c.patient_id.is_(None), c.id.in_(filed_here))))
    return query


def code_matches(pattern: str):  # noqa: ANN201
    """error_code is ``pattern``: one code, or with '*' and '?' as in a shell a family of
    them ('CDA_*', as error_advice.csv groups them). Why: after a sender fixed its CDA
    generator the operator reruns everything it failed, whatever the CDA_ code; one code at
    a time missed those not thought of. '_' is a plain character (every code holds one)."""
    if "*" not in pattern and "?" not in pattern:
        return imports.c.error_code == pattern
    return imports.c.error_code.like(_like_pattern(pattern), escape="\\")


def _like_pattern(pattern: str) -> str:
    """A shell pattern ('*', '?') as a LIKE pattern escaped by '\\' ('%', '_' and '\\'
    plain characters)."""
    escaped = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%").replace("?", "_")


def _name_matches(pattern: str):  # noqa: ANN202
    """file_name matching ``pattern`` as a shell pattern ('*', '?'), case ignored alike on
    SQLite and PostgreSQL (ILIKE); '%', '_' and '\\' in a name are plain characters (a
    lab's CR_2026_11.hl7). Accented letters match in both Unicode spellings: names are
    recorded as the sender's file system gives them, decomposed (NFD) from a Mac, composed
    (NFC) from anything else and from every keyboard."""
    likes = []
    for form in sorted({unicodedata.normalize("NFC", pattern),
                        unicodedata.normalize("NFD", pattern)}):
        likes.append(imports.c.file_name.ilike(_like_pattern(form), escape="\\"))
    return likes[0] if len(likes) == 1 else or_(*likes)


def has_warnings():  # noqa: ANN201
    """Rows whose outcome carries warnings. The column is JSON: a row without warnings holds
    SQL NULL, or JSON ``null`` (SQLite and PostgreSQL store Python None so), never an empty
    list (``record_outcomes`` writes None for it); both are excluded."""
    text = cast(imports.c.warnings, Text)
    return and_(imports.c.warnings.is_not(None), text.not_in(("null", "[]")))


def warning_names(code: str):  # noqa: ANN201
    """Rows one of whose warnings names ``code`` (an unread document's CDA_DTD_FORBIDDEN,
    PDF_ENCRYPTED): the JSON column read as text, '_' and '%' in the code plain characters.
    Such a row is 'deposited' with no error code, so ``--code`` never found it."""
    return cast(imports.c.warnings, Text).contains(code, autoescape=True)


def now() -> datetime:
    return datetime.now(UTC)


def aware(value: datetime) -> datetime:
    """A ledger time as read back: SQLite hands back naive datetimes (stored as UTC)."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


# A row taken again without an outcome recorded since its last claim is a suspect: the
# worker that had it died (SIGKILL, OOM, a crash in a C library) or overran its lease.
# Suspects taken once before come in small groups (an eighth of a batch: after one crash the
# dead worker's batch is soon done), those taken twice or more come alone, so that a message
# that kills its worker takes nothing else down with it. One taken POISON_AFTER times (so
# alone at least twice) is failed instead of retried forever.
POISON_AFTER = 4
POISON_CODE = "POISON_MESSAGE"


def claim_batch(engine: Engine, *, limit: int, worker: str, lease_seconds: int = 600,
                ids: list[int] | None = None) -> list[int]:
    """Atomically take up to ``limit`` rows to process (received, or with an expired lease).

    Suspects (see POISON_AFTER) come in small groups, then alone; a suspect already taken
    POISON_AFTER times is failed with POISON_MESSAGE in this same transaction and not
    returned."""
    t = now()
    with engine.begin() as conn:
        # a row put back after a transient failure waits for its not_before (backoff)
        cond = or_(and_(imports.c.status == RECEIVED,
                        or_(imports.c.not_before.is_(None), imports.c.not_before <= t)),
                   and_(imports.c.status == PROCESSING, imports.c.claimed_until < t))
        if ids is not None:
            cond = and_(cond, imports.c.id.in_(ids))
        query = select(imports.c.id, imports.c.claims).where(cond).order_by(imports.c.id) \
            .limit(limit)
        if conn.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        rows = conn.execute(query).all()
        poisoned = [r.id for r in rows if r.claims >= POISON_AFTER]
        if poisoned:
            _fail_poisoned(conn, poisoned, t)
        rows = [r for r in rows if r.claims < POISON_AFTER]
        suspects = [r for r in rows if r.claims > 0]
        if suspects:
            level = suspects[0].claims
            size = max(1, limit // 8) if level == 1 else 1
            claimed = [r.id for r in suspects if r.claims == level][:size]
        else:
            claimed = [r.id for r in rows]
        if claimed:
            conn.execute(update(imports).where(imports.c.id.in_(claimed)).values(
                status=PROCESSING, claimed_by=worker, claims=imports.c.claims + 1,
                claimed_until=t + timedelta(seconds=lease_seconds), updated_at=t))
    fault_point("ledger.claimed")
    return claimed


def keep_claims(conn: Connection, ids: list[int], worker: str, lease_seconds: int) -> set[int]:
    """The rows among ``ids`` that ``worker`` still holds (processing, claimed by it), their
    leases extended, inside the caller's transaction; the others were taken by another
    worker once this one's lease had expired (it overran it: a batch of OCR, an overloaded
    machine), and only that worker may record them. On PostgreSQL the rows stay locked
    until the transaction ends: a worker claiming expired leases skips them (SKIP LOCKED);
    on SQLite the transaction holds the store's write lock."""
    if not ids:
        return set()
    until = now() + timedelta(seconds=lease_seconds)
    return set(conn.execute(_KEEP_CLAIMS, {"ids": ids, "worker": worker, "until": until})
               .scalars())


# Built once, the ids as one expanding parameter: built per call with the ids as literals,
# SQLAlchemy coerced each id and rebuilt the statement, about 1 ms per piece of 100 messages.
_KEEP_CLAIMS = (update(imports)
                .where(imports.c.id.in_(bindparam("ids", expanding=True)),
                       imports.c.status == PROCESSING,
                       imports.c.claimed_by == bindparam("worker"))
                .values(claimed_until=bindparam("until", type_=imports.c.claimed_until.type))
                .returning(imports.c.id))


def _fail_poisoned(conn: Connection, ids: list[int], t: datetime) -> None:
    message = (f"taken by a worker {POISON_AFTER} times without an outcome: each time the "
               "worker processing it stopped (killed, crashed, or past its lease); not "
               "retried again (rerun it once the cause is fixed)")
    conn.execute(update(imports).where(imports.c.id.in_(ids)).values(
        status=FAILED, stage="process", error_code=POISON_CODE, error_message=message,
        error_location=None, claimed_by=None, claimed_until=None, claims=0,
        attempts=imports.c.attempts + 1, updated_at=t))
    conn.execute(import_attempts.insert(), [
        {"import_id": i, "started_at": t, "finished_at": t, "status": FAILED,
         "error_code": POISON_CODE, "error_message": message, "trigger": "claim"}
        for i in ids])


def release_claims(engine: Engine, prefix: str | None = None,
                   ids: list[int] | None = None) -> int:
    """Give back claimed rows so that any worker takes them: those held by workers named
    ``prefix``... (a service starting under a name whose previous process died: SIGKILL,
    power cut; its batches are taken again at once instead of when their leases expire), or
    the rows ``ids`` (claimed at intake by the listener, then left to the workers)."""
    if prefix is None and ids is None:
        raise ValueError("release_claims needs a worker name prefix or row ids")
    cond = imports.c.status == PROCESSING
    if prefix is not None:
        cond = and_(cond, imports.c.claimed_by.startswith(prefix, autoescape=True))
    if ids is not None:
        if not ids:
            return 0
        cond = and_(cond, imports.c.id.in_(ids))
    with engine.begin() as conn:
        return conn.execute(update(imports).where(cond).values(
            status=RECEIVED, claimed_by=None, claimed_until=None, updated_at=now())).rowcount


def release_worker(engine: Engine, worker: str) -> int:
    """Give back the rows claimed by exactly this worker (one that died: the service starts
    another in its place, and its batch need not wait for the lease to expire)."""
    with engine.begin() as conn:
        return conn.execute(update(imports).where(
            imports.c.status == PROCESSING, imports.c.claimed_by == worker).values(
            status=RECEIVED, claimed_by=None, claimed_until=None, updated_at=now())).rowcount


def record_outcomes(conn: Connection, results: list[tuple[int, Outcome, datetime]], *,
                    code_version: str, trigger: str) -> None:
    """Write a batch's outcomes: one executemany updating the ledger and one inserting the
    attempts (``bulk_update``, ``bulk_insert``: on SQLite straight to the driver, the
    statements built once)."""
    if not results:
        return
    t = now()
    bulk_update(conn, imports, [
        {"id": i, "status": o.status, "stage": o.stage, "error_code": o.error_code,
         "error_message": _storable(o.error_message),
         "error_location": _storable(o.error_location, 500), "entries_count": o.entries,
         "duplicates_count": o.duplicates, "patient_id": o.patient_id,
         "logical_id": _storable(o.logical_id, 400), "duplicate_of": o.duplicate_of,
         "warnings": [_storable(w) for w in condensed(o.warnings)] if o.warnings else None,
         "not_before": o.not_before, "retries": o.retries, "updated_at": t}
        for i, o, _ in results], _OUTCOME_COLUMNS,
        fixed=_RELEASED)
    bulk_insert(conn, import_attempts, [
        {"import_id": i, "started_at": started, "finished_at": t,
         "code_version": code_version, "status": RETRY if o.status == RECEIVED else o.status,
         "error_code": o.error_code,
         "error_message": _storable(o.error_message), "trigger": trigger}
        for i, o, started in results])


# What every recorded outcome sets alike; one object, so that bulk_update's SQL for it is
# compiled once (``dossiers.db._set_constants``), not for each piece.
_RELEASED = {"attempts": imports.c.attempts + 1, "claimed_by": None, "claimed_until": None,
             "claims": 0}

_OUTCOME_COLUMNS = ["status", "stage", "error_code", "error_message", "error_location",
                    "entries_count", "duplicates_count", "patient_id", "logical_id",
                    "duplicate_of", "warnings", "not_before", "retries", "updated_at"]


def _storable(text: str | None, limit: int | None = None) -> str | None:
    """An outcome's text as PostgreSQL can store it: no NUL (a parser's message quoting what
    it read) and no longer than its column (a sender's oversized control id in logical_id).
    Either would make the whole batch's outcome update fail, and the batch be replayed
    forever."""
    if text and "\x00" in text:
        text = text.replace("\x00", "\\x00")
    if text and limit is not None and len(text) > limit:
        text = text[:limit - 1] + "…"
    return text


def reset_for_rerun(conn: Connection, ids: list[int]) -> list[int]:
    """Put terminal rows back to 'received' so the next drain replays them from the archive.
    Deposited rows are left alone (rerunning them would change nothing), as are rows whose
    outcome was decided at intake (byte-identical repeats, batch envelopes) and rows being
    processed."""
    rows = conn.execute(select(imports.c.id, imports.c.status, imports.c.stage)
                        .where(imports.c.id.in_(ids))).all()
    todo = [r.id for r in rows if reopenable(r.status, r.stage)]
    if todo:
        conn.execute(update(imports).where(imports.c.id.in_(todo)).values(
            status=RECEIVED, not_before=None, retries=0, claims=0, updated_at=now()))
    return todo


def reopenable(status: str, stage: str | None) -> bool:
    """What a rerun puts back in the queue (``reset_for_rerun``): a held draft too, when an
    admin names it (no filter on failures selects it)."""
    return status in (FAILED, QUARANTINED, DUPLICATE, HELD) and stage != "intake"


def counts_by_status(conn: Connection, ids: list[int] | None = None) -> dict[str, int]:
    q = select(imports.c.status, func.count()).group_by(imports.c.status)
    if ids is not None:
        q = q.where(imports.c.id.in_(ids))
    return {status: n for status, n in conn.execute(q)}


def pending_count(conn: Connection) -> int:
    return conn.execute(select(func.count()).select_from(imports).where(
        imports.c.status.in_((RECEIVED, PROCESSING)))).scalar_one()


def recorded_as(engine: Engine, source: str, sha256: str, file_name: str) -> int | None:
    """The first import of these bytes from this source under this name, if any: how a
    connector that cannot mark an input where it lies (an S3 object already carrying the 10
    tags S3 allows) knows, after a restart, that it has it already."""
    with engine.connect() as conn:
        return conn.execute(select(func.min(imports.c.id)).where(
            imports.c.source == source, imports.c.sha256 == sha256,
            imports.c.file_name == file_name)).scalar_one()
