"""Processing: archived bytes -> parse -> normalize -> identity -> dedupe -> deposit -> outcome.

A batch of claimed ledger rows is processed in one database transaction: the messages that
are independent of each other are filed together (a few multi-row statements for the whole
batch: that is what makes processing fast), the others one by one, each in a savepoint of
its own. Either way a message deposits all its entries or none, one bad message never stops
the others, and the batch costs one commit instead of one per message. If the process dies
mid-batch nothing is committed and the rows' leases expire: the batch is replayed from the
archive, which is idempotent. For the same reason processing's commits do not wait for the
disk (``dossiers.db.replayable_commits``): one lost in a power cut is replayed the same way.
"""

from __future__ import annotations

import hashlib
import logging
import random
import re
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any

from sqlalchemy import Engine, bindparam, insert, select
from sqlalchemy.exc import IntegrityError

from dossiers.audit import AuditEvent, append
from dossiers.audit import record as record_audit
from dossiers.consent import apply_consent, identity_stated_at, instant, update_identity
from dossiers.db import (
    begin_replayable,
    bulk_insert,
    replayable_commits,
    write_turn_wanted,
)
from dossiers.death import apply_death, death_cancels
from dossiers.deposit import (
    DepositResult,
    codes_of,
    deposit,
    document_aliases,
    entry_facts,
    facts_of,
    follow_document_numbers,
    follow_order_scopes,
    follow_replaced_versions,
    follow_sub_id_spellings,
    held_by_code,
    held_children,
    held_confirmed,
    held_entries,
    held_facts,
    held_replacements,
    held_set_documents,
    keys_of,
    originals,
    orphan_corrections,
    plan_deposit,
    sets_of,
    write_deposits,
)
from dossiers.elsewhere import named_keys, originals_elsewhere
from dossiers.merged import named_only_as_merged_away
from dossiers.patients import (
    add_identifiers,
    find_by_ins,
    find_by_local_id,
    get_patient,
    remove_ins,
)
from dossiers.schema import entries as entry_rows
from dossiers.schema import imports, logical_messages, provenance
from normalizers.adt import identifier_change_triggers, identifier_move_triggers
from normalizers.cda import normalize_cda
from normalizers.codes import CodeMappings, load_mappings, tables_version
from normalizers.death import check_death
from normalizers.lab import normalize_message
from normalizers.model import (
    ACTION_DELETE,
    ACTION_NEW,
    DOCUMENT,
    STATUS_CHANGE_DETAIL,
    Entry,
    HeldBack,
    NormalizationError,
    NormalizedMessage,
    NotificationOnlyError,
    PatientIdentity,
)
from parsers.cda import CdaParseError, parse_cda
from parsers.detect import unknown_reason
from parsers.hl7v2 import HL7ParseError, parse_message
from parsers.hl7v2.er7 import Message
from pipelines import held as held_drafts
from pipelines.adt_identity import identity_update
from pipelines.archive import Archive, ArchiveError, ArchiveUnavailable, open_archive, sha256_hex
from pipelines.death import death_warnings, deaths_of
from pipelines.faults import fault_point
from pipelines.identifier_change import ChangeRefused, apply_changes, plan_changes
from pipelines.identifier_move import MOVE_HELD, check_moves, held_reason, no_move_note
from pipelines.identity import (
    LOCAL_ID_NO_INS,
    BatchLookup,
    NeedsOwnTransaction,
    StoreLookup,
    dossier_refusal,
    naming,
    resolve_identity,
)
from pipelines.input_limits import too_large
from pipelines.ledger import (
    ADT_STAGE,
    DEPOSITED,
    DUPLICATE,
    FAILED,
    HELD,
    NOTIFICATION_STAGE,
    QUARANTINED,
    Outcome,
    aware,
    claim_batch,
    keep_claims,
    now,
    record_outcomes,
)
from pipelines.mapping_policy import unmapped_failure
from pipelines.merge import MergeRefused, adopt_survivor, apply_merge, merged_dossiers
from pipelines.prepare_pool import Preparing, start_preparing
from pipelines.retry import is_store_outage, transient_outcome
from pipelines.settings import Settings

log = logging.getLogger("dmp.process")

CODE_VERSION = "0.1.0"


@dataclass
class Context:
    """What processing needs, built once per worker (tables are loaded once, not per message)."""

    settings: Settings
    engine: Engine
    archive: Archive
    worker: str = "local"
    trigger: str = "ingest"
    # when another writer last waited for this worker's SQLite transaction (``_piece_size``)
    waited_at: float = float("-inf")

    @cached_property
    def tables(self) -> tuple[tuple, CodeMappings]:
        """The code tables, loaded once per context, and the version read (the preparing
        processes must normalize with the same tables: pipelines/prepare_pool.py)."""
        version = tables_version(self.settings.mappings_dir)
        return version, load_mappings(self.settings.mappings_dir)

    @property
    def mappings(self) -> CodeMappings:
        return self.tables[1]

    def refresh_tables(self) -> None:
        """Read the per-source tables again if they changed on disk since they were loaded.

        Why: ``serve``'s workers and listener keep one context for their whole life; an
        operator who adds a missing mapping and reruns the imports that failed with
        CODE_UNMAPPED had them fail again until the service was restarted. Called once per
        batch (a listing and a stat of the folder's CSV files)."""
        if self.settings.mappings_dir is None or "tables" not in self.__dict__:
            return
        version = tables_version(self.settings.mappings_dir)
        if version != self.tables[0]:
            self.__dict__["tables"] = (version, load_mappings(self.settings.mappings_dir))

    @classmethod
    def from_settings(cls, settings: Settings, **kw) -> Context:  # noqa: ANN003
        from dossiers.db import create_schema, make_engine

        engine = make_engine(settings.database_url)
        create_schema(engine)
        archive = open_archive(settings.archive_url, settings.s3_endpoint_url)
        return cls(settings=settings, engine=engine, archive=archive, **kw)


class _Stop(Exception):
    """Internal: a stage decided the outcome (failed/quarantined/duplicate)."""

    def __init__(self, outcome: Outcome) -> None:
        self.outcome = outcome


@dataclass(slots=True)
class Prepared:
    """A message read and normalized, not yet filed (no database write so far)."""

    row: Any
    normalized: NormalizedMessage
    items: list[tuple[Entry, str | None]]  # entries with their attachment's sha256
    fingerprint: str
    warnings: list[str]
    started: datetime
    keys: set[str]  # every dossier key it reads or writes (computed once, outside the lock)
    facts: set[str]  # its level-4 facts
    item_facts: list[str | None]  # the fact of each entry, in order
    # A message of several patients: each one's share of ``items``; None for one patient
    shares: list[PatientShare] | None = None
    # A document not for patient care yet (HeldBack): (code, text, location) of the hold;
    # ``items`` are what it files once signed (pipelines/held.py)
    held: tuple[str, str, str] | None = None
    # Filed from two imports (a held draft and its signature): the other one and what it
    # gave ('drafted': the content; 'signed': the status), linked too
    released_from: tuple[int, str] | None = None


@dataclass(slots=True)
class PatientShare:
    """One patient of a message that carries several: who (their PID, as sent) and which of
    the message's items are theirs (``items[start:end]``). Indexes, not copies: what the
    preparing processes pickle stays the size of the message."""

    location: str  # the PID that starts the patient's group ('PID[12]')
    identity: PatientIdentity
    start: int
    end: int


@dataclass(slots=True)
class _Target:
    """What a message files in one dossier: its items there, their facts, the keys and facts
    it reads or writes there, and the PIDs of the message that named that dossier (none for
    a message about one patient)."""

    patient_id: int
    items: Sequence[tuple[Entry, str | None]]
    item_facts: Sequence[str | None]
    keys: set[str]
    facts: set[str]
    where: tuple[str, ...] = ()


def process_claimed(ctx: Context, ids: list[int]) -> dict[str, int]:
    """Process rows already claimed by this worker; return counts per outcome status.

    Read, parse and normalize every message (no transaction; in the preparing processes when
    the batch is large, pipelines/prepare_pool.py); then file them (``file_prepared``)."""
    if not ids:
        return {}
    return file_prepared(ctx, start_preparing(ctx, read_claimed(ctx, ids)))


def read_claimed(ctx: Context, ids: list[int]) -> list:
    """The ledger rows of ``ids``, in id order (the order messages are filed in)."""
    with ctx.engine.connect() as conn:
        return conn.execute(select(imports).where(imports.c.id.in_(ids))
                            .order_by(imports.c.id)).all()


def prepare_rows(ctx: Context, rows: list) -> tuple[list[Prepared],  # noqa: ANN001
                                                    dict[int, tuple[Outcome, datetime]]]:
    """Read, parse and normalize each row's message: the messages ready to file, and the
    outcomes decided on the way (a parse error, a quarantine...). Needs no store: it runs
    in this process or in a preparing process (pipelines/prepare_pool.py) alike."""
    outcomes: dict[int, tuple[Outcome, datetime]] = {}
    prepared: list[Prepared] = []
    for row in rows:
        started = now()
        try:
            prepared.append(_prepare(ctx, row, started))
        except _Stop as stop:
            outcomes[row.id] = (stop.outcome, started)
        except Exception as exc:  # a bug, not bad input: never a traceback to users
            outcomes[row.id] = (_internal_error(row.id, exc), started)
    return prepared, outcomes


def file_prepared(ctx: Context, preparing: Preparing) -> dict[str, int]:
    """File a prepared batch: in transactions of up to ``commit_every`` messages, file the
    messages that do not touch each other (different logical ids, patients or keys) with a
    few statements for all of them, then the rest one by one, each in a savepoint (a message
    deposits all or nothing, whatever happens to the others), and record the outcomes. If the
    bulk filing fails for any reason, every message of that transaction takes the one-by-one
    path. Filing starts with the first messages the pool has ready. Returns counts per
    outcome status.

    On SQLite a transaction is filed piece by piece and ends early, between two pieces, when
    another connection waits for its write lock (the listener, to acknowledge:
    dossiers/write_turn.py) or when the next piece is not prepared yet (the lock is never
    held while waiting for the pool). Pieces are of ``YIELD_EVERY`` messages where a writer
    may be waiting (``_piece_size``), of ``commit_every`` elsewhere. Large transactions
    while nobody waits, a short wait for whoever does."""
    # Reading, parsing and normalizing took no transaction: with SQLite the write lock is
    # held only while filing, so the listener's intake waits less.
    sources = {row.id: row.source for row in preparing.rows}
    lease = _Lease(ctx, preparing.rows)
    counts: dict[str, int] = {}
    commit_every = max(1, ctx.settings.commit_every)
    # PostgreSQL: one piece per transaction, as its row locks are taken in one sorted order
    # per piece (two workers' transactions of several pieces each would deadlock)
    one_writer = ctx.engine.dialect.name == "sqlite"
    pieces = _pieces(preparing, lambda: _piece_size(ctx, commit_every) if one_writer
                     else commit_every)
    with ctx.engine.connect() as conn, replayable_commits(conn):
        first = True
        for piece, outcomes in pieces:
            if first:
                fault_point("process.prepared")
                first = False
            with begin_replayable(conn):
                filed = _file_and_record(ctx, conn, lease, piece, outcomes, sources, counts)
                while one_writer and filed < commit_every and preparing.ready_ahead() \
                        and not _writer_waits(ctx, conn):
                    more = next(pieces, None)
                    if more is None:
                        break
                    filed += _file_and_record(ctx, conn, lease, *more, sources, counts)
                if one_writer:
                    _writer_waits(ctx, conn)  # seen now: the next pieces are small
            fault_point("process.committed")
    return counts


# The held records of a piece's logical ids, built once (the ids as one expanding parameter,
# not literals coerced one by one and a statement rebuilt for every piece).
_HELD_LOGICAL = select(logical_messages).where(
    logical_messages.c.logical_id.in_(bindparam("ids", expanding=True)))

YIELD_EVERY = 20  # messages filed between two looks at who waits for the write lock
WAITED_RECENTLY = 2.0  # seconds after a writer waited during which pieces stay small


def _piece_size(ctx: Context, commit_every: int) -> int:
    """Messages per piece on SQLite: ``YIELD_EVERY`` while another writer may want the lock
    (in `serve`, where the listener's intake does, or when one waited lately), so that it
    waits for one small piece at most; else ``commit_every``: each piece costs a few
    statements of its own (identity, dedupe look-ups, outcomes, audit), about 8 % of
    processing in pieces of 20."""
    if ctx.trigger == "serve" or time.monotonic() - ctx.waited_at < WAITED_RECENTLY:
        return min(commit_every, YIELD_EVERY)
    return commit_every


def _writer_waits(ctx: Context, conn) -> bool:  # noqa: ANN001
    """``write_turn_wanted``, remembered for ``_piece_size``."""
    if write_turn_wanted(conn):
        ctx.waited_at = time.monotonic()
        return True
    return False


def _file_and_record(ctx: Context, conn, lease: _Lease,  # noqa: ANN001
                     piece: list[Prepared], outcomes: dict[int, tuple[Outcome, datetime]],
                     sources: dict[int, str], counts: dict[str, int]) -> int:
    """File one piece and record its outcomes (and those decided while preparing), inside
    the caller's transaction, for the rows this worker still holds (``_Lease``); the number
    of outcomes recorded."""
    held = lease.keep(conn, [item.row.id for item in piece] + list(outcomes))
    piece = [item for item in piece if item.row.id in held]
    decided = {row_id: outcome for row_id, outcome in outcomes.items() if row_id in held}
    _file_piece(ctx, conn, piece, decided)
    append(conn, deposit_events(decided, sources))
    fault_point("process.filed")
    results = [(row_id, *outcome) for row_id, outcome in decided.items()]
    for _, outcome, _ in results:
        counts[outcome.status] = counts.get(outcome.status, 0) + 1
    record_outcomes(conn, results, code_version=CODE_VERSION, trigger=ctx.trigger)
    fault_point("process.recorded")
    return len(results)


class _Lease:
    """The claims of one batch while it is filed: before each piece, the piece's rows are
    checked to be still this worker's (``keep_claims``; a row taken by another worker after
    this one's lease expired is left to it, never filed twice), and once half the lease has
    gone every row not filed yet has its lease extended, so that a long batch is not taken
    from a worker that is still at it."""

    def __init__(self, ctx: Context, rows: list) -> None:  # noqa: ANN001
        self.ctx = ctx
        self.pending = {row.id for row in rows}
        self.renew_at = min((aware(row.claimed_until) for row in rows
                             if getattr(row, "claimed_until", None) is not None),
                            default=now()) - timedelta(seconds=self.seconds / 2)

    @property
    def seconds(self) -> int:
        return self.ctx.settings.lease_seconds

    def keep(self, conn, ids: list[int]) -> set[int]:  # noqa: ANN001
        """The rows among ``ids`` still this worker's (their leases extended)."""
        wanted = set(ids)
        if now() >= self.renew_at:
            wanted |= self.pending
            self.renew_at = now() + timedelta(seconds=self.seconds / 2)
        held = keep_claims(conn, sorted(wanted), self.ctx.worker, self.seconds)
        lost = [i for i in ids if i not in held]
        if lost:
            log.warning("%d message(s) of this batch were taken by another worker after this "
                        "worker's lease (%d s) expired: left to it (imports %s)", len(lost),
                        self.seconds, ", ".join(map(str, lost[:20])))
        self.pending -= set(ids)
        return held


def _pieces(preparing: Preparing, size_now: Callable[[], int]) -> Iterator[
        tuple[list[Prepared], dict[int, tuple[Outcome, datetime]]]]:
    """The batch in pieces of at most ``size_now()`` messages (asked before each piece),
    each with the outcomes decided while preparing that are not recorded yet; filed as soon
    as the pool has prepared them, in a smaller piece when the pool is behind (rather than
    wait idle). At least one, so that a batch of failures is recorded too."""
    ready: list[Prepared] = []
    outcomes: dict[int, tuple[Outcome, datetime]] = {}
    for done, decided in preparing.chunks():
        ready.extend(done)
        outcomes.update(decided)
        while len(ready) >= (size := max(1, size_now())):
            yield ready[:size], outcomes
            ready, outcomes = ready[size:], {}
        if ready and not preparing.ready_ahead():  # file these while the pool works
            yield ready, outcomes
            ready, outcomes = [], {}
    if ready or outcomes:
        yield ready, outcomes


def deposit_events(decided: dict[int, tuple[Outcome, datetime]],
                   sources: dict[int, str]) -> list[AuditEvent]:
    """The dossier writes of one transaction, for the patients' audit trails: one row per
    dossier and sender (the imports and the number of entries filed), not one per message,
    so that the trail costs little on the hot path and stays readable."""
    grouped: dict[tuple[int, str], list[tuple[int, int]]] = {}
    for row_id, (outcome, _) in decided.items():
        if outcome.status == DEPOSITED and outcome.patient_id is not None and outcome.entries:
            grouped.setdefault((outcome.patient_id, sources[row_id]), []).append(
                (row_id, outcome.entries))
        elif outcome.status == DEPOSITED and outcome.patients:  # several patients
            for patient_id, filed in outcome.patients:
                if filed:
                    grouped.setdefault((patient_id, sources[row_id]), []).append(
                        (row_id, filed))
    return [AuditEvent(f"sender:{source}", "dossier.deposit", patient_id=patient_id,
                       import_id=filed[0][0] if len(filed) == 1 else None,
                       details={"imports": sorted(i for i, _ in filed),
                                "entries": sum(n for _, n in filed)})
            for (patient_id, source), filed in sorted(grouped.items())]


def _file_piece(ctx: Context, conn, piece: list[Prepared],  # noqa: ANN001
                outcomes: dict[int, tuple[Outcome, datetime]]) -> None:
    """File a piece as filing its messages one by one in ledger order would: in bulk up to
    the first message that must be filed on its own before the next ones are even resolved
    (``file_in_bulk``'s rest), then that one and those deferred, then the rest likewise.

    When the bulk path stops at its very first message (a run of messages creating their
    dossiers, as when auto-create meets a new population), each try cost the look-ups of
    the whole rest for nothing: the next messages are then filed one by one, 1, 2, 4... up
    to ``ALONE_MAX`` of them between two tries. One by one is the reference: the outcome is
    the same either way."""
    rest, streak, alone = piece, 0, 0
    while rest:
        if alone or len(rest) == 1:
            one_by_one, rest = rest[:max(alone, 1)], rest[max(alone, 1):]
            alone = 0
        else:
            before = len(rest)
            one_by_one, rest = file_in_bulk(ctx, conn, rest, outcomes)
            stalled = len(one_by_one) == 1 and len(rest) == before - 1
            streak = min(2 * streak or 1, ALONE_MAX) if stalled else 0
            alone = streak
        for item in one_by_one:
            outcomes[item.row.id] = (_file_in_savepoint(ctx, conn, item), item.started)


ALONE_MAX = 16  # messages filed one by one between two tries of a bulk path that stalls


CONFLICT_RETRIES = 3  # in place, with a growing random pause; then back to the queue
CONFLICT_BACKOFF_SECONDS = 1.0


def _file_in_savepoint(ctx: Context, conn, item: Prepared) -> Outcome:  # noqa: ANN001
    """One message, all or nothing. Another worker filing the same patient's same entry at
    the same moment makes our insert of that version collide with its committed row (or the
    two deadlock): the message is then filed again, seeing that row (read committed), and
    becomes a confirmation or a new version of it, as if it had come second (after a short
    random pause, so that two losers do not meet again). A deadlock, or conflicts that go on,
    send the message back to the queue for a moment later (``transient_outcome``)."""
    for attempt in range(CONFLICT_RETRIES + 1):
        savepoint = conn.begin_nested()
        try:
            outcome = _file(ctx, conn, item)
            savepoint.commit()
            fault_point("process.file_one")
            return outcome
        except _Stop as stop:
            savepoint.rollback()
            return _without_undone_dossier(conn, stop.outcome)
        except Exception as exc:
            if is_store_outage(exc):
                # the store went away: no outcome of this message (it was recorded FAILED
                # INTERNAL_ERROR, then the batch's dead transaction failed its recording and
                # the rows stayed claimed until their leases expired); the batch is put back
                # for a retry (pipelines/resilient)
                raise
            savepoint.rollback()
            # SQLite has one writer: a constraint error there is a bug, never a race
            conflict = _concurrent_conflict(exc) if conn.dialect.name == "postgresql" else None
            if conflict == "deadlock" or (conflict and attempt == CONFLICT_RETRIES):
                # Our transaction holds the rows of the messages filed before this one, which
                # the other worker may be waiting for: trying again inside it can deadlock
                # again. The message goes back to the queue, for a moment later.
                log.info("import %s: filing conflict with another worker (%s); back to the "
                         "queue", item.row.id, conflict)
                return transient_outcome(item.row.retries or 0,
                                         retry_max=ctx.settings.retry_max,
                                         base_seconds=CONFLICT_BACKOFF_SECONDS,
                                         stage="deposit", code="FILING_CONFLICT",
                                         message="filed at the same moment as another "
                                         "worker's message; taken again")
            if conflict:
                log.info("import %s: filed at the same moment as another worker's message; "
                         "filing it again", item.row.id)
                time.sleep(random.uniform(0, 0.01 * 2 ** attempt))
                continue
            return _internal_error(item.row.id, exc)
    raise AssertionError("unreachable")


def _without_undone_dossier(conn, outcome: Outcome) -> Outcome:  # noqa: ANN001
    """A message stopped after its identity created a dossier in its savepoint (auto-create):
    a duplicate of what a message filed for another patient (the ANS examples reuse one
    MSH-10 and one document for two patients). The dossier went with the savepoint: the
    outcome names none, or recording it failed (the ledger's patient_id pointed at no
    dossier) and with it the whole transaction of the batch."""
    if outcome.patient_id is not None and get_patient(conn, outcome.patient_id) is None:
        outcome.patient_id = None
    return outcome


def _concurrent_conflict(exc: Exception) -> str | None:
    """A unique violation or a deadlock/serialization failure: what two writers of the same
    rows cause (PostgreSQL SQLSTATE 23505, 40P01, 40001), wrapped by SQLAlchemy or raw from
    psycopg (the COPY of dossiers.db.bulk_insert goes to the driver directly)."""
    state = getattr(exc, "sqlstate", None) or getattr(getattr(exc, "orig", None), "sqlstate",
                                                      None)
    if state in ("40P01", "40001"):
        return "deadlock"
    if state == "23505" or isinstance(exc, IntegrityError):
        return "unique"
    return None


def _internal_error(import_id: int, exc: Exception) -> Outcome:
    log.error("import %s: internal error %s at\n%s", import_id, type(exc).__name__,
              "".join(traceback.format_tb(exc.__traceback__)))
    return Outcome(FAILED, stage="internal", error_code="INTERNAL_ERROR",
                   error_message=f"unexpected {type(exc).__name__} while processing; see the "
                   f"service log for import {import_id}")


def drain(ctx: Context, *, limit: int | None = None, ids: list[int] | None = None) -> dict:
    """Claim and process batches until nothing is left (or ``limit`` batches). With the
    preparing pool, the next batch is claimed and handed to it before this one is filed:
    preparing and filing overlap."""
    totals: dict[str, int] = {}
    batches = 0
    ahead: Preparing | None = None
    while limit is None or batches < limit:
        current = ahead or claim_and_start(ctx, ids=ids)
        if current is None:
            break
        batches += 1
        more = limit is None or batches < limit
        ahead = claim_and_start(ctx, ids=ids) if more and current.parallel else None
        for status, n in file_prepared(ctx, current).items():
            totals[status] = totals.get(status, 0) + n
    return totals


def claim_and_start(ctx: Context, *, ids: list[int] | None = None) -> Preparing | None:
    """Claim the next batch (a lease; among ``ids`` when given) and start preparing it."""
    claimed = claim_batch(ctx.engine, limit=ctx.settings.batch_size, worker=ctx.worker,
                          lease_seconds=ctx.settings.lease_seconds, ids=ids)
    return start_preparing(ctx, read_claimed(ctx, claimed)) if claimed else None


def _prepare(ctx: Context, row, started: datetime) -> Prepared:  # noqa: ANN001
    """Archive -> parse -> normalize (raises _Stop with the outcome when it ends here)."""
    if (over := too_large(row.format, row.size or 0)) is not None:  # never read whole
        raise _Stop(Outcome(FAILED, stage="parse", error_code=over[0], error_message=over[1]))
    try:
        data = ctx.archive.get(row.sha256)
    except ArchiveUnavailable as exc:  # transient: back to the queue after a backoff
        raise _Stop(transient_outcome(row.retries or 0, retry_max=ctx.settings.retry_max,
                                      base_seconds=ctx.settings.retry_base_seconds,
                                      stage="archive", code=exc.code,
                                      message=str(exc))) from None
    except ArchiveError as exc:  # missing or corrupt object: permanent
        raise _Stop(Outcome(FAILED, stage="archive", error_code=exc.code,
                            error_message=str(exc))) from None
    if row.format == "cda" or (row.format == "unknown" and data.lstrip()[:1] == b"<"
                               and b"urn:hl7-org:v3" in data[:65536]):
        # Other HL7 v3 XML goes to the CDA parser too: it says precisely what is wrong (wrong
        # root, broken XML) and reads CI-SIS documents wrapped in their XSL envelope.
        return _prepare_cda(ctx, row, data, started)
    if row.format == "pdf":
        return _prepare_pdf(ctx, row, data, started)
    if row.format != "hl7v2":
        raise _Stop(_unsupported_format(data))
    try:
        msg = parse_message(data, ctx.settings.fallback_charset(row.source))
    except HL7ParseError as exc:
        raise _failed("parse", exc) from None
    source_settings(msg, ctx.settings, row.source)
    if (refused := sender_not_source(ctx.settings, row.source, msg.sender)) is not None:
        raise _Stop(refused)
    try:
        normalized: NormalizedMessage = normalize_message(msg, row.source, ctx.mappings)
    except HeldBack as exc:
        return _held_prepared(row, exc, list(msg.warnings), started)
    except NotificationOnlyError as exc:
        raise _Stop(_notification_only(exc, _logical_id(msg), list(msg.warnings))) from None
    except NormalizationError as exc:
        raise _failed("normalize", exc, logical_id=_logical_id(msg)) from None
    if (unmapped := unmapped_failure(ctx.settings, row.source, normalized)) is not None:
        raise _Stop(unmapped)
    return _prepared(row, normalized, list(msg.warnings) + list(normalized.warnings), started)


def source_settings(msg: Message, settings: Settings, source: str) -> None:
    """Give ``msg`` what its source declared for reading it: the zone of its times without
    offset, and its identifiers' domain, shared namespaces and namespace aliases
    (``Settings.identifier_settings``): a message normalized without them scoped a shared
    namespace to MSH-4, or left one without MSH-4 global."""
    msg.zone = settings.source_zone(source)
    msg.identifier_domain, msg.shared_namespaces, msg.namespace_oids = \
        settings.identifier_settings(source)


def _notification_only(exc: NotificationOnlyError, logical_id: str | None,
                       warnings: list[str]) -> Outcome:
    """An MDM notification without its document (T01, T03, T05, T07, T09): accepted (AA),
    nothing filed, the ledger row saying so under its code (stage 'notification', searchable
    by code or stage). It was failed and answered AR: valid HL7, and a sender that stops its
    queue on AR blocked every report behind it."""
    return Outcome(DEPOSITED, stage=NOTIFICATION_STAGE, error_code=exc.code,
                   error_message=str(exc), error_location=exc.location or None,
                   logical_id=logical_id, warnings=warnings or None)


def _held_prepared(row, exc: HeldBack, warnings: list[str],  # noqa: ANN001
                   started: datetime) -> Prepared:
    """A draft held back: prepared as what it would file (no quarantine: nothing is filed
    now, its identity is read when it is), the hold kept for ``_file``."""
    item = _prepared(row, replace(exc.held, quarantine_reasons=[]),
                     warnings + list(exc.held.warnings), started)
    item.held = (exc.code, str(exc), exc.location)
    return item


def sender_not_source(settings: Settings, source: str, sender: str) -> Outcome | None:
    """A failed outcome when an HL7v2 message names a sender (MSH-3, MSH-4) that the source
    it came through is not declared to send for (``[sources.<id>]`` of the same id as the
    drop folder, bucket or listener source); None otherwise, and for undeclared sources.

    Why: the sender is the namespace of MSH-10 (dedupe level 2) and of corrections (level
    3). A laboratory's drop folder holding a message that claims another laboratory's
    MSH-3/MSH-4 and control id would otherwise supersede that laboratory's results. The
    listener already picks the source by these names (and refuses unknown senders); this
    holds folders and buckets to the same declaration, and rows rerun after it changed."""
    current = settings.current_source(source)  # a source renamed since: its new settings
    declared = next((s for s in settings.sources if s.id == current), None)
    if declared is None:
        return None
    application, _, facility = sender.partition("|")
    if declared.names(application, facility):
        return None
    return Outcome(FAILED, stage="parse", error_code="SENDER_NOT_SOURCE",
                   error_message=f"MSH-3/MSH-4 name a sender that source {source!r} is not "
                   "declared to send for (sending_application, sending_facility)",
                   error_location="MSH")


def _failed(stage: str, exc: HL7ParseError | CdaParseError | NormalizationError,
            logical_id: str | None = None) -> _Stop:
    """A parse or normalization error of any format, as the import's outcome: its stable
    code, its text (no patient data) and where in the input."""
    return _Stop(Outcome(FAILED, stage=stage, error_code=exc.code, error_message=str(exc),
                         error_location=exc.location or None, logical_id=logical_id))


def _prepared(row, normalized: NormalizedMessage, warnings: list[str],  # noqa: ANN001
              started: datetime, received: bytes | None = None) -> Prepared:
    """The end of every format's path: a quarantine the normalizer asked for (the CDA inside
    names another patient than PID, a PDF report's identity not found or read by OCR with
    low confidence), else the entries with their attachment hashes (computed once) and the
    message's fingerprint. ``received``: the bytes read from the archive for ``row`` (see
    ``_attachment_sha``)."""
    if normalized.quarantine_reasons and row.assigned_patient_id is None:  # not if assigned
        code, _, text = normalized.quarantine_reasons[0].partition(" ")
        place = _LEADING_PLACE.match(text)  # 'OBX[6]-5: the CDA patientRole/id ...'
        raise _Stop(Outcome(QUARANTINED, stage="normalize", error_code=code,
                            error_message=text or code,
                            error_location=place.group(1) if place else None,
                            logical_id=normalized.logical_id, warnings=warnings))
    items = [(e, _attachment_sha(e.attachment.data, row.sha256, received)
              if e.attachment is not None else None) for e in normalized.entries]
    facts = entry_facts(items)
    fingerprint = _fingerprint(items) if normalized.adt is None else _adt_fingerprint(normalized)
    _drop_archived_bytes(items, row.sha256)
    return Prepared(row, normalized, items, fingerprint, warnings, started,
                    keys_of(items), facts_of(items, facts), facts,
                    _shares(normalized) if normalized.patients else None)


def _attachment_sha(data: bytes, row_sha: str, received: bytes | None) -> str:
    """An attachment's sha256; the row's own when the attachment is the very bytes object
    read from the archive for it (a CDA document's entry: ``Attachment(data, ...)``).

    Why: ``Archive.get`` returns only bytes whose sha256 it has checked against the row's
    (ArchiveCorrupt otherwise), so hashing them again gave the same digest: 0.1-0.3 ms of a
    CR-BIO's preparing for a 130 KB document. An attachment that is any other object
    (decoded base64, a copy, a PDF inside) is hashed."""
    return row_sha if received is not None and data is received else sha256_hex(data)


# A segment's place at the start of a normalizer's quarantine reason ('ZFA[5]-9: ...'), or
# a PDF report's page(s) ('page 2: ...', 'pages 1-3: ...', 'pages 1, 3: ...')
_LEADING_PLACE = re.compile(r"([A-Z][A-Z0-9]{2}\[\d+\](?:-\d+(?:\.\d+)?)?"
                            r"|pages? \d+(?:(?:-|, )\d+)*): ")


def _shares(normalized: NormalizedMessage) -> list[PatientShare]:
    """Each patient's share of a message of several (their entries are consecutive)."""
    shares: list[PatientShare] = []
    start = 0
    for part in normalized.patients:
        shares.append(PatientShare(part.location, part.identity, start, start + part.entries))
        start += part.entries
    return shares


def _drop_archived_bytes(items: list[tuple[Entry, str | None]], received_sha: str) -> None:
    """Empty the bytes of attachments that are the received input itself (a CDA document,
    a PDF report: the document entry's file is the import's own archived object).

    Why: they are in the archive since intake, durable before the ledger row existed, so
    filing has nothing to store for them (``_new_blobs``); carrying them on would copy every
    document from a preparing process to the filing one (a 130 KB CR-BIO was 70 % of the
    pickled batch) and hash it again when the archive finds it stored already. Done after
    the fingerprint and hashes, which read the bytes; the media type stays for the entry."""
    for entry, sha in items:
        if sha is not None and sha == received_sha and entry.attachment is not None:
            entry.attachment = replace(entry.attachment, data=b"")


def _new_blobs(item: Prepared) -> list[tuple[str, bytes]]:
    """The attachments filing must store: every one but the received input's own bytes
    (archived at intake; see ``_drop_archived_bytes``)."""
    return [(sha, entry.attachment.data) for entry, sha in item.items
            if sha is not None and sha != item.row.sha256]


def _prepare_cda(ctx: Context, row, data: bytes, started: datetime) -> Prepared:  # noqa: ANN001
    """CDA R2 document -> parse (hardened) -> normalize."""
    try:
        document = parse_cda(data)
    except CdaParseError as exc:
        raise _failed("parse", exc) from None
    try:
        normalized = normalize_cda(document, data, row.source, ctx.mappings,
                                   ctx.settings.source_zone(row.source))
    except NormalizationError as exc:
        raise _failed("normalize", exc) from None
    return _prepared(row, normalized, list(normalized.warnings), started, data)


def _prepare_pdf(ctx: Context, row, data: bytes, started: datetime) -> Prepared:  # noqa: ANN001
    """PDF report -> text layer or OCR, page by page (parsers/pdf) -> fields (normalizers)."""
    from normalizers.pdf_embedded import embedded_cda
    from normalizers.report import normalize_report
    from parsers.pdf import PdfLimits, PdfParseError, parse_pdf

    settings = ctx.settings
    limits = PdfLimits(max_pages=settings.pdf_max_pages, lang=settings.ocr_lang,
                       timeout_seconds=settings.pdf_timeout_seconds,
                       page_timeout_seconds=settings.pdf_timeout_seconds / 2)
    try:
        document = parse_pdf(data, limits)
    except PdfParseError as exc:
        raise _failed("parse", exc) from None
    said: list[str] = []
    if document.embedded:  # PDF/A-3 with its structured copy: the CDA path, the PDF kept
        structured, said = embedded_cda(document, data, row.source, ctx.mappings,
                                        settings.source_zone(row.source))
        if structured is not None:
            return _prepared(row, structured,
                             list(document.warnings) + list(structured.warnings), started)
    try:
        normalized = normalize_report(document, data, row.source,
                                      min_identity_confidence=settings.ocr_identity_confidence)
    except NormalizationError as exc:
        raise _failed("normalize", exc) from None
    return _prepared(row, normalized,
                     list(document.warnings) + said + list(normalized.warnings), started)


def _resolve_targets(ctx: Context, conn, item: Prepared,  # noqa: ANN001
                     lookup: StoreLookup | None = None) -> tuple[list[_Target], list[str]]:
    """Where the message files (one target per dossier) and the warnings so far, or _Stop
    (quarantined)."""
    if item.shares is not None:
        resolved, warnings = _resolve_patients(ctx, conn, item, lookup)
        targets = _targets(item, resolved)
    else:
        patient_id, _, warnings = _resolve_via(ctx, conn, item, lookup)
        targets = [_Target(patient_id, item.items, item.item_facts, item.keys, item.facts)]
    _refuse_corrections_elsewhere(conn, item, targets, warnings)
    return targets, warnings


# CORRECTION_OTHER_DOSSIER's location for a CDA: the entry's source_ref names the document,
# the replacement is said by its relatedDocument.
_CORRECTION_PLACE = {"ClinicalDocument": "/ClinicalDocument/relatedDocument"}


def _refuse_corrections_elsewhere(conn, item: Prepared, targets: list[_Target],  # noqa: ANN001
                                  warnings: list[str]) -> None:
    """_Stop (quarantined, CORRECTION_OTHER_DOSSIER) when a cancel or correction of the
    message acts on an original that another dossier than its own holds (dossiers/
    elsewhere.py): applied here it left the original current there. An admin's assignment
    says which dossier: it is filed there as asked."""
    if item.row.assigned_patient_id is not None or item.normalized.adt is not None:
        return
    for target in targets:
        found = originals_elsewhere(conn, target.patient_id, target.items)
        if not found:
            continue
        first = found[0]
        where = _CORRECTION_PLACE.get(first.where, first.where)
        more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
        raise _Stop(Outcome(
            QUARANTINED, stage="identity", error_code="CORRECTION_OTHER_DOSSIER",
            error_message=f"{where}{more}: cancels or corrects what import {first.import_id} "
            f"filed in dossier {first.patient_id}, but this message's patient is dossier "
            f"{target.patient_id}: not applied across dossiers (assign the dossier, or "
            "correct the identity, then rerun)", error_location=where,
            logical_id=item.normalized.logical_id, warnings=warnings))


def _resolve_via(ctx: Context, conn, item: Prepared,  # noqa: ANN001
                 lookup: StoreLookup | None = None) -> tuple[int, str, list[str]]:
    """The dossier's id, how it was found ('ins', 'local-id', 'demographics', 'auto-create',
    'assigned') and the warnings so far, or _Stop (quarantined)."""
    normalized = item.normalized
    feeding = normalized.adt is None  # an ADT states the opposition: never refused for it
    assigned = item.row.assigned_patient_id
    if assigned is not None:  # an admin's choice (imports assign); the patient's still wins
        refusal = dossier_refusal(get_patient(conn, assigned)) if feeding else None
        if refusal is not None:
            raise _Stop(Outcome(QUARANTINED, stage="identity", error_code=refusal[0],
                                error_message=refusal[1], logical_id=normalized.logical_id,
                                warnings=item.warnings))
        return assigned, "assigned", item.warnings + ["patient assigned by an admin"]
    resolution = resolve_identity(conn, normalized.identity,
                                  auto_create=ctx.settings.auto_create, lookup=lookup,
                                  feeding=feeding,
                                  trust_test_ins=ctx.settings.trust_test_ins)
    warnings = item.warnings + (resolution.warnings or [])
    if resolution.patient_id is None:
        raise _Stop(Outcome(QUARANTINED, stage="identity", error_code=resolution.code,
                            error_message=resolution.reason,
                            error_location=_PATIENT_PLACE.get(item.row.format),
                            logical_id=normalized.logical_id, warnings=warnings))
    _audit_resolution(conn, item, resolution)
    return resolution.patient_id, resolution.via, warnings


def _audit_resolution(conn, item: Prepared, resolution) -> None:  # noqa: ANN001
    """What resolving the identity changed in the dossier (its INS-NIA replaced by the
    INS-NIR), in its audit trail: the patient sees who changed their identity and when.
    Written in the message's savepoint: gone with it if the message is not filed.

    A dossier an ADT auto-created records that ADT's statement time (EVN-2, else MSH-7) on
    its 'dossier.create' row: its traits are that statement's, and an older identity
    statement received after it (a GAM's backlog replayed) must not overwrite them
    (``identity_stated_at``). Without it, the A08 of January reaching us after the A28 of
    June that created the dossier put back the name the patient had left."""
    if resolution.audit is not None:
        action, details = resolution.audit
        adt = item.normalized.adt
        if action == "dossier.create" and adt is not None and adt.stated_at:
            details = {**details, "stated_at": adt.stated_at}
        record_audit(conn, item.row.source, action, patient_id=resolution.patient_id,
                     import_id=item.row.id, details=details)


# Where a message names its patient, for an identity quarantine's location (a message of
# several patients names the PID of the one not found: _resolve_patients). A PDF has no
# such place: the identity is read in its text.
_PATIENT_PLACE = {"hl7v2": "PID", "cda": "/ClinicalDocument/recordTarget/patientRole"}


CDA_LOGICAL_PREFIX = "cda|"  # a CDA's logical id: 'cda|' + ClinicalDocument/id (normalizers.cda)


def _dedupe(item: Prepared, held: list, patient_id: int | None,
            warnings: list[str]) -> dict | None:
    """Dedupe level 2: the same logical message (sender + MSH-10, document id) deposited
    before with the same content is a duplicate (_Stop). A sender that reuses a control id
    for another message (the ANS examples do) is not: it is deposited, with a warning. Returns
    the logical_messages row to write (None on a rerun of the import that wrote it)."""
    logical_id = item.normalized.logical_id
    same = [h for h in held if h.fingerprint == item.fingerprint and h.import_id != item.row.id]
    if same:
        raise _Stop(Outcome(DUPLICATE, stage="dedupe", logical_id=logical_id,
                            patient_id=patient_id, duplicate_of=same[0].import_id,
                            error_message=f"message already deposited by import "
                            f"{same[0].import_id}", warnings=warnings))
    if any(h.import_id == item.row.id for h in held):
        return None
    if held and logical_id.startswith(CDA_LOGICAL_PREFIX):
        # a CDA's id is no control id: the same document received again in another form
        # (carried by a PDF/A-3, or by an HL7v2 message) has other bytes; whether it says
        # anything new is decided entry by entry (a duplicate, or a new version)
        warnings.append("the same CDA document (ClinicalDocument/id) was received before in "
                        f"another form by import {held[0].import_id}: compared with what "
                        "that import filed")
    elif held:
        warnings.append("control id reused by the sender for a message with other content "
                        f"(first deposited by import {held[0].import_id})")
    return {"logical_id": _variant(item) if held else logical_id, "import_id": item.row.id,
            "fingerprint": item.fingerprint}


def _variant(item: Prepared) -> str:
    return f"{item.normalized.logical_id}#{item.fingerprint[:16]}"


def deposit_warnings(result: DepositResult, warnings: list[str]) -> None:
    """What an admin must know of a deposit that did not go the plain way: corrections of
    what the dossier does not hold, deletions kept ahead of their original, entries filed
    under a withdrawal (counts only)."""
    if result.missing_targets:
        warnings.append(f"{result.missing_targets} correction(s) refer to entries the "
                        "dossier does not hold: filed as new entries")
    for where in result.missing_documents[:5]:
        warnings.append(f"{where}: replaces a document the dossier does not hold (TXA-13 or "
                        "the CDA's relatedDocument names one never received here): filed as a "
                        "new document")
    for where in result.replaced_versions[:5]:
        warnings.append(f"{where}, the document's current version: the version the "
                        "replacement names (TXA-13 or the CDA's relatedDocument) was replaced "
                        "by a later one already")
    for where in result.masked_like_parent[:5]:
        warnings.append(f"{where}: an addendum (relatedDocument APND, MDM^T06) to a document "
                        "the dossier holds masked, stating no masking of its own: masked as "
                        "that document is")
    for where in result.deleted_replaced[:5]:
        warnings.append(f"{where}: deletes a version of a document that a later version has "
                        "replaced: that version is recorded as withdrawn, the later version "
                        "stays current; if the sender meant the whole document, it must "
                        "delete the current version")
    for where in result.reissue_doubts[:5]:
        warnings.append(f"REPORT_REISSUE_NOT_MATCHED: {where}; the report says it reissues "
                        "an earlier one (addendum, rectification) but supersedes none: filed "
                        "as a report of its own")
    if result.tombstones:
        warnings.append(f"{result.tombstones} deletion(s) of entries the dossier does not "
                        "hold yet: recorded as withdrawn, so that an original arriving later "
                        "is kept in the history, not filed as current")
    for said in result.shared_numbers[:5]:
        warnings.append(f"DOCUMENT_NUMBER_SHARED: {said} documents filed under their CDA "
                        "ids (sent under this one number): the cancel, replacement or status "
                        "change acts on each of them")
    for where in result.unheld_status_changes[:5]:
        warnings.append(f"{where}: a status change (MDM^T03, no content) of a document the "
                        "dossier does not hold (never received, held back as not for patient "
                        "care yet, or withdrawn): nothing filed; the document is filed when "
                        "its sender sends it with its content (MDM^T04 or T08)")
    if result.gaps:
        warnings.append(f"{result.gaps} document(s) replace a version the dossier does not "
                        "hold (relatedDocument RPLC): the earlier version of the set it holds "
                        "is superseded")
    if result.crossed:
        warnings.append(f"{result.crossed} correction(s) of a result the dossier holds from "
                        "another channel (same test, same instant): that result superseded")
    if result.stale:
        warnings.append(f"{result.stale} result(s) state the value of an earlier version "
                        "the dossier holds (corrected since): linked to that version, not "
                        "filed as current")
    if result.buried:
        warnings.append(f"{result.buried} entr{'y' if result.buried == 1 else 'ies'} filed "
                        "as history, not current: the dossier holds them withdrawn by a "
                        "deletion (an entry issued after the deletion is filed as current)")
    for where in result.after_withdrawal[:5]:
        warnings.append(f"{where}: a result its sender withdrew (OBX-11 W or D), sent again "
                        "with a value the dossier never held and not issued before the "
                        "withdrawal (OBR-22 / OBX-19 unchanged or empty): filed as current, "
                        "the replacement of the withdrawn one")


def _deposited(item: Prepared, patient_id: int, result: DepositResult,
               warnings: list[str], deaths: dict[int, str | None]) -> Outcome:
    """The outcome of filing one patient's message; ``deaths``: the batch's dossiers that
    record a death (pipelines/death.py), for its warnings."""
    deposit_warnings(result, warnings)
    warnings.extend(death_warnings(deaths, patient_id, item.items, item.normalized.death))
    if result.history:
        warnings.append(f"{result.history} entr{'y' if result.history == 1 else 'ies'} filed "
                        "as history, not current: the dossier holds a later version (a later "
                        "versionNumber of the document, or a result in a later status)")
    status = DEPOSITED if result.created or not result.duplicates else DUPLICATE
    return Outcome(status, stage="deposit", entries=result.created,
                   duplicates=result.duplicates, patient_id=patient_id,
                   logical_id=item.normalized.logical_id, warnings=warnings or None)


def _file(ctx: Context, conn, item: Prepared) -> Outcome:  # noqa: ANN001
    """Identity -> dedupe -> deposit for one message, inside the caller's savepoint."""
    if item.shares is not None:
        return _file_patients(ctx, conn, item)
    if item.normalized.adt is not None and item.normalized.adt.no_effect:
        return _file_no_effect(conn, item)
    if item.normalized.adt is not None and item.normalized.adt.trigger in \
            identifier_move_triggers():
        return _file_identifier_move(conn, item)
    if item.normalized.adt is not None:
        _bound_by_reception(item)
    if item.normalized.adt is not None and item.normalized.adt.trigger in \
            identifier_change_triggers():
        return _file_identifier_change(conn, item)
    if item.normalized.adt is not None and item.normalized.adt.merged:
        return _file_merge(ctx, conn, item)
    if item.normalized.adt is not None:
        try:
            patient_id, via, warnings = _resolve_via(ctx, conn, item)
        except _Stop as stop:
            return _adt_without_dossier(conn, item, stop)
        return _file_adt(conn, item, patient_id, via, warnings)
    if item.held is not None:
        signed = _signed_before(ctx, conn, item)
        if signed is None:
            return _hold(conn, item)
        item = signed
    elif (cancelled := _cancel_held(conn, item)) is not None:
        return cancelled
    patient_id, via, warnings = _resolve_via(ctx, conn, item)
    if item.held is None and item.released_from is None:
        item = _release_held(ctx, conn, item, patient_id, warnings)
    _refuse_corrections_elsewhere(
        conn, item, [_Target(patient_id, item.items, item.item_facts, set(), set())], warnings)
    _claim_logical_id(conn, item, patient_id, warnings, "deposited")
    # Attachments (embedded documents) go to the archive before the entries point at them.
    blobs = _new_blobs(item)
    if blobs:
        ctx.archive.put_many(blobs)
        fault_point("deposit.attached")  # attachments durable, no entry points at them yet
    result = deposit(conn, patient_id=patient_id, import_id=item.row.id,
                     source=item.row.source, items=item.items)
    _after_deposit(conn, item, result)
    fault_point("deposit.written")  # entries written (uncommitted), no outcome recorded
    return _deposited(item, patient_id, result, warnings, deaths_of(conn, [patient_id]))


# -- documents held back until signed (pipelines/held.py) ----------------------------------
def _hold(conn, item: Prepared) -> Outcome:  # noqa: ANN001
    """The outcome of a draft not for patient care yet: 'held', nothing filed, its document
    recorded as held by this import (the latest draft of a document is the one held) for
    the status change that will sign it. A held status change (a T03 saying 'dictated')
    holds no content: there is nothing for a signature to file."""
    code, message, location = item.held
    keys = _content_keys(item)
    if keys:
        held_drafts.hold(conn, keys, item.row.id)
    return Outcome(HELD, stage="normalize", error_code=code, error_message=message,
                   error_location=location or None, logical_id=item.normalized.logical_id,
                   warnings=item.warnings or None)


def _content_keys(item: Prepared) -> list[str]:
    """The documents a message carries with their content (not a status change)."""
    return [e.key for e, _ in item.items if e.type == DOCUMENT and e.action == ACTION_NEW
            and not e.details.get(STATUS_CHANGE_DETAIL)]


def _signed_before(ctx: Context, conn, item: Prepared) -> Prepared | None:  # noqa: ANN001
    """A draft whose signature came first (an MDM^T03 that found no document, waiting for
    it): the draft filed at once in the status the T03 states, both imports linked. None
    when no signature waits (the draft is held)."""
    for key in _content_keys(item):
        signer = held_drafts.waiting_signature(conn, key)
        if signer is None:
            continue
        row = conn.execute(select(imports).where(imports.c.id == signer)).one()
        signature = _read_again(ctx, row) or _NOTHING
        change = held_drafts.status_change(signature, key)
        if change is None or not held_drafts.same_patient(item.normalized.identity,
                                                          signature.identity):
            continue  # another patient's signature signs nothing of this one's
        held_drafts.forget(conn, [key], held_drafts.SIGNED_PREFIX)
        signed = _prepared(item.row, held_drafts.signed_content(item.normalized, change),
                           [*item.warnings, f"{change.source_ref}: filed as import {signer} "
                            "(its status change, received before it) says: not held back"],
                           item.started)
        signed.released_from = (signer, "signed")
        return signed
    return None


def _release_held(ctx: Context, conn, item: Prepared, patient_id: int,  # noqa: ANN001
                  warnings: list[str]) -> Prepared:
    """A status change (MDM^T03, no content) of a document held back as a draft: the held
    import's content, read again from the archive, filed in the status the T03 states, as
    one filing of this import linked to both. The held row says it was released. A draft
    the dossier holds a later version of (signed content filed since) is not released: it
    is closed as superseded. Anything else: ``item`` as it is."""
    for change in (e for e, _ in item.items
                   if e.type == DOCUMENT and e.details.get(STATUS_CHANGE_DETAIL)):
        held_id = held_drafts.held_import(conn, change.key)
        if held_id is None:
            continue
        held_drafts.forget(conn, [change.key])
        if _filed_since(conn, patient_id, change.key, held_id):
            held_drafts.close(conn, held_id, f"superseded: a later version was filed before import "
                       f"{item.row.id} signed this draft; not filed")
            continue
        row = conn.execute(select(imports).where(imports.c.id == held_id)).one()
        content = _read_again(ctx, row)
        if content is None or held_drafts.status_change(content, change.key) is not None \
                or not any(e.key == change.key for e in content.entries):
            continue
        if not held_drafts.same_patient(content.identity, item.normalized.identity):
            held_drafts.hold(conn, [change.key], held_id)  # still held, for its own patient
            warnings.append(f"{change.source_ref}: names another patient (PID-3) than the "
                            f"draft held back by import {held_id}: the draft is not filed")
            continue
        held_drafts.close(conn, held_id, f"released: filed by import {item.row.id} (the status "
                   "change that signs it)")
        warnings.append(f"{change.source_ref}: files the document held back by import "
                        f"{held_id} (its content) in the status stated here")
        signed = held_drafts.signed_content(content, change)
        released = _prepared(item.row, replace(signed, logical_id=item.normalized.logical_id),
                             [*item.warnings, *signed.warnings], item.started)
        released.released_from = (held_id, "drafted")
        return released
    return item


def _cancel_held(conn, item: Prepared) -> Outcome | None:  # noqa: ANN001
    """MDM^T11 (or a deletion) of drafts held back and filed nowhere: they are closed, the
    held rows say by which import, and nothing is filed: no withdrawn entry (no dossier holds
    the document; the draft, rerun, is held again), no dossier resolved or made for it. None
    for anything else: a version filed somewhere is withdrawn the usual way, and the held
    draft closed after (``_after_deposit``)."""
    deletes = [e for e, _ in item.items if e.type == DOCUMENT and e.action == ACTION_DELETE]
    if not deletes or len(deletes) != len(item.items):
        return None
    found = []
    for entry in deletes:
        key = entry.replaces_key or entry.key
        held_id = held_drafts.held_import(conn, key)
        if held_id is None or _filed_anywhere(conn, key):
            return None
        found.append((key, held_id, entry.source_ref))
    warnings = list(item.warnings)
    for key, held_id, where in found:
        held_drafts.forget(conn, [key])
        held_drafts.close(conn, held_id, f"cancelled by import {item.row.id} before it was signed: "
                   "never filed")
        warnings.append(f"{where}: cancels the draft held back by import {held_id}, never "
                        "filed: nothing to withdraw")
    return Outcome(DEPOSITED, stage="deposit", logical_id=item.normalized.logical_id,
                   warnings=warnings)


def _filed_anywhere(conn, key: str) -> bool:  # noqa: ANN001
    """Whether any dossier holds a document under ``key`` (ix_entries_report_key)."""
    e = entry_rows.c
    return conn.execute(select(e.id).where(e.key == key, e.type == DOCUMENT).limit(1)) \
        .first() is not None


_NOTHING = NormalizedMessage(logical_id="", identity=PatientIdentity(), entries=[])


def _filed_since(conn, patient_id: int, key: str, import_id: int) -> bool:  # noqa: ANN001
    """Whether the dossier's current version of ``key`` was filed after ``import_id``."""
    e = entry_rows.c
    return conn.execute(select(e.id).where(
        e.patient_id == patient_id, e.key == key, e.current,
        e.import_id > import_id).limit(1)).first() is not None


def _read_again(ctx: Context, row) -> NormalizedMessage | None:  # noqa: ANN001
    """An HL7v2 import normalized again from its archived bytes (a held draft: what it
    would file); None when it no longer reads. The archive unreachable: the message waits
    (a transient outcome), a signature is not filed without its content."""
    try:
        data = ctx.archive.get(row.sha256)
    except ArchiveUnavailable as exc:
        raise _Stop(transient_outcome(0, retry_max=ctx.settings.retry_max,
                                      base_seconds=ctx.settings.retry_base_seconds,
                                      stage="archive", code=exc.code,
                                      message=str(exc))) from None
    except ArchiveError:
        return None
    try:
        msg = parse_message(data, ctx.settings.fallback_charset(row.source))
        source_settings(msg, ctx.settings, row.source)
        return normalize_message(msg, row.source, ctx.mappings)
    except HeldBack as exc:
        return exc.held
    except (HL7ParseError, NormalizationError):
        return None


def _after_deposit(conn, item: Prepared, result: DepositResult) -> None:  # noqa: ANN001
    """What a document message tells the held drafts: a release links the other import to
    what was filed; a cancel or deletion of a held draft closes it (nothing was filed, and
    a later signature files nothing); a status change that found no document waits for the
    draft it signs."""
    if item.released_from is not None:
        _link_other(conn, item.row.id, *item.released_from, item.row.source)
    held_drafts.close_superseded(conn, _content_filed([item]))
    for entry, _ in item.items:
        if entry.type != DOCUMENT:
            continue
        if entry.action == ACTION_DELETE:
            key = entry.replaces_key or entry.key
            if (held_id := held_drafts.held_import(conn, key)) is not None:
                held_drafts.forget(conn, [key])
                held_drafts.close(conn, held_id, f"cancelled by import {item.row.id} before it was "
                           "signed: never filed")
        elif entry.details.get(STATUS_CHANGE_DETAIL) \
                and entry.source_ref in result.unheld_status_changes:
            held_drafts.wait_for_draft(conn, [entry.key], item.row.id)


def _content_filed(items: Sequence[Prepared]) -> list[tuple[str, int]]:
    """(document key, import) of the documents these messages filed with their content."""
    return [(key, item.row.id) for item in items if item.held is None
            for key in _content_keys(item)]


def _touches_held(item: Prepared) -> bool:
    """A draft held back, a status change or a document deletion: filed one by one
    (``_file`` holds, releases or closes drafts)."""
    return item.held is not None or any(
        e.type == DOCUMENT and (e.action == ACTION_DELETE or e.details.get(STATUS_CHANGE_DETAIL))
        for e, _ in item.items)


def _link_other(conn, import_id: int, other: int, relation: str,  # noqa: ANN001
                source: str) -> None:
    """Provenance of a filing made of two imports (a draft and its signature): what
    ``import_id`` created is linked to ``other`` too, as what it gave ('drafted' the content,
    'signed' the status): two 'created' links said the same of both, and a reader of the
    provenance (imports show, the FHIR Provenance's activity) could not tell the draft's
    author system from the signing message."""
    rows = conn.execute(select(provenance.c.entry_id, provenance.c.source_ref).where(
        provenance.c.import_id == import_id, provenance.c.relation == "created")).all()
    if rows:
        t = now()
        conn.execute(insert(provenance), [
            {"entry_id": r.entry_id, "import_id": other, "source": source,
             "source_ref": r.source_ref, "relation": relation, "created_at": t}
            for r in rows])


def _file_patients(ctx: Context, conn, item: Prepared) -> Outcome:  # noqa: ANN001
    """``_file`` for a message of several patients: every patient resolved first (any one
    not resolved quarantines the whole message, nothing filed), the message's id claimed
    once for all of them (dedupe level 2), then each dossier given its own entries."""
    resolved, warnings = _resolve_patients(ctx, conn, item)
    targets = _targets(item, resolved)
    _refuse_corrections_elsewhere(conn, item, targets, warnings)
    _claim_logical_id(conn, item, None, warnings, "deposited")
    blobs = _new_blobs(item)
    if blobs:
        ctx.archive.put_many(blobs)
        fault_point("deposit.attached")
    results = [deposit(conn, patient_id=t.patient_id, import_id=item.row.id,
                       source=item.row.source, items=t.items) for t in targets]
    fault_point("deposit.written")
    return _deposited_patients(item, targets, results, warnings,
                               deaths_of(conn, [t.patient_id for t in targets]))


def _resolve_patients(ctx: Context, conn, item: Prepared,  # noqa: ANN001
                      lookup: StoreLookup | None = None) -> tuple[
                          list[tuple[int, PatientShare]], list[str]]:
    """The dossier of each patient of a message of several, in order, and the warnings so
    far; or _Stop (quarantined) naming the first patient not resolved by its place in the
    message (never by what identifies them). An admin's assignment names one dossier: it
    cannot say whose results go there, so it is refused rather than filing every patient's
    results in it (pipelines/admin.py refuses to make one)."""
    normalized, shares = item.normalized, item.shares
    total = len(shares)
    if item.row.assigned_patient_id is not None:
        raise _Stop(Outcome(QUARANTINED, stage="identity", error_code="ASSIGN_SEVERAL_PATIENTS",
                            error_message=f"the message carries the results of {total} "
                            "patients: a dossier assigned by an admin would receive them all; "
                            "create or complete the dossier that was not found and rerun",
                            logical_id=normalized.logical_id, warnings=item.warnings))
    warnings = list(item.warnings)
    resolved: list[tuple[int, PatientShare]] = []
    for n, share in enumerate(shares, 1):
        said = f"patient {n} of {total} ({share.location})"
        resolution = resolve_identity(conn, share.identity, auto_create=ctx.settings.auto_create,
                                      lookup=lookup, trust_test_ins=ctx.settings.trust_test_ins)
        warnings.extend(f"{said}: {w}" for w in resolution.warnings or ())
        if resolution.patient_id is None:
            raise _Stop(Outcome(QUARANTINED, stage="identity", error_code=resolution.code,
                                error_message=f"{said}: {resolution.reason}",
                                error_location=share.location,
                                logical_id=normalized.logical_id, warnings=warnings))
        _audit_resolution(conn, item, resolution)
        resolved.append((resolution.patient_id, share))
    return resolved, warnings


def _targets(item: Prepared, resolved: list[tuple[int, PatientShare]]) -> list[_Target]:
    """One target per dossier of a message of several patients, in the order first named;
    two groups of the message that name the same dossier (the same patient sent twice, under
    two identifiers) file together, so that their keys are planned against each other."""
    by_patient: dict[int, tuple[list, list, list[str]]] = {}
    for patient_id, share in resolved:
        items, facts, where = by_patient.setdefault(patient_id, ([], [], []))
        items.extend(item.items[share.start:share.end])
        facts.extend(item.item_facts[share.start:share.end])
        where.append(share.location)
    return [_Target(patient_id, items, facts, keys_of(items), facts_of(items, facts),
                    tuple(where)) for patient_id, (items, facts, where) in by_patient.items()]


def _deposited_patients(item: Prepared, targets: list[_Target], results: list[DepositResult],
                        warnings: list[str], deaths: dict[int, str | None]) -> Outcome:
    """``_deposited`` for a message of several patients: the counts added up, each dossier
    and its entries kept for the audit trails, and which dossier each PID went to (dossier
    ids and segment positions only) among the warnings for whoever reads the import."""
    for result in results:
        deposit_warnings(result, warnings)
    for target in targets:
        warnings.extend(death_warnings(deaths, target.patient_id, target.items, None))
    warnings.append(f"{sum(len(t.where) for t in targets)} patient groups (PID) filed apart: "
                    + "; ".join(f"{', '.join(t.where)} in dossier {t.patient_id}"
                                for t in targets))
    created = sum(r.created for r in results)
    duplicates = sum(r.duplicates for r in results)
    status = DEPOSITED if created or not duplicates else DUPLICATE
    return Outcome(status, stage="deposit", entries=created, duplicates=duplicates,
                   patients=tuple((t.patient_id, r.created)
                                  for t, r in zip(targets, results, strict=True)),
                   logical_id=item.normalized.logical_id, warnings=warnings)


# Matches that make an ADT's PID trustworthy enough to update the dossier's demographics: a
# qualified INS (VALI) or the hospital's own identifier. Not demographics (they are what would
# change), not an auto-created dossier (it was just made from this PID), not an admin's
# assignment (it says which dossier, not that the PID is right).
TRUSTED_MATCHES = ("ins", "local-id")
# Matches of an identity ADT (A08, A28, A31) that say nothing of its identity not being
# applied: LOCAL_ID_NO_INS (its own warning says why already) and 'auto-create' (the dossier
# was just made from this very PID: its traits are the dossier's; warned 'not matched by a
# qualified INS', the admin of a GAM sending A28 for each new patient looked for a problem
# that was not there). Demographics and an admin's assignment keep the warning.
IDENTITY_MADE_HERE = (LOCAL_ID_NO_INS, "auto-create")


def _file_adt(conn, item: Prepared, patient_id: int, via: str,  # noqa: ANN001
              warnings: list[str]) -> Outcome:
    """An ADT: dedupe level 2 like any message, then its consent statement (ZFA) and, for
    A08/A31 with a trusted match, its identity (PID) applied to the dossier. Recorded as
    'deposited' without entries, stage 'consent': what it did is in the dossier's consent
    history and audit trail, and in a note on the ledger row (its message column)."""
    adt = item.normalized.adt
    logical_id = item.normalized.logical_id
    _claim_logical_id(conn, item, patient_id, warnings)
    actor, import_id = item.row.source, item.row.id
    done: list[str] = []
    _apply_zfa(conn, item, patient_id, via, done, warnings)
    _apply_death(conn, item, patient_id, via, done, warnings)
    if adt.updates_identity:
        if via in TRUSTED_MATCHES:
            values, held = identity_update(get_patient(conn, patient_id),
                                           item.normalized.identity, adt,
                                           identity_stated_at(conn, patient_id),
                                           merged_away=via == "local-id" and _merged_away(
                                               conn, patient_id, item.normalized.identity))
            warnings.extend(held)
            changed = update_identity(conn, patient_id, actor=actor, import_id=import_id,
                                      stated_at=adt.stated_at, **values) if values else []
            if changed:
                done.append("identity updated: " + ", ".join(changed))
        elif via not in IDENTITY_MADE_HERE:
            warnings.append("identity not updated: the patient was not matched by a "
                            "qualified INS (PID-32 VALI) or a known local identifier")
    note = "; ".join(done) or f"ADT^{adt.trigger} recorded, nothing to apply"
    return Outcome(DEPOSITED, stage=ADT_STAGE, patient_id=patient_id, logical_id=logical_id,
                   error_message=note, warnings=warnings or None)


def _merged_away(conn, patient_id: int, identity: PatientIdentity) -> bool:  # noqa: ANN001
    """PID-3's local identifiers name the dossier only as a merged record's (an earlier
    ADT^A40's MRG-1): what ``identity_update`` does not take the traits of."""
    return named_only_as_merged_away(conn, patient_id, [
        (li.authority, li.value, li.unscoped) for li in identity.local_ids
        if li.authority and li.value])


# Matches on which an ADT's ZFA (DMP status, opposition, consent) is applied: a trusted INS
# or a known local identifier, an admin's assignment, a dossier made from this very PID.
# Not demographics alone: a look-alike's "does not object" would lift the real patient's
# opposition (product decision, ADT round 17).
CONSENT_MATCHES = ("ins", "local-id", LOCAL_ID_NO_INS, "auto-create", "assigned")
# The warning (a code, then why) on the ledger row of an ADT whose ZFA was not applied.
ZFA_NOT_APPLIED = "ZFA_NOT_APPLIED"


def _apply_zfa(conn, item: Prepared, patient_id: int, via: str,  # noqa: ANN001
               done: list[str], warnings: list[str]) -> None:
    """The ADT's consent statement (ZFA) applied to the dossier (dossiers/consent.py) when
    the dossier was found by a match in CONSENT_MATCHES; otherwise nothing of it is
    recorded, and a ZFA_NOT_APPLIED warning says why."""
    adt = item.normalized.adt
    if adt.consent is None:
        return
    if via not in CONSENT_MATCHES:
        warnings.append(f"{ZFA_NOT_APPLIED}: the DMP status, opposition and consent of ZFA "
                        f"are not applied: the patient was matched by {via} only, not by a "
                        "qualified INS or a known local identifier: a look-alike's choices "
                        "are not the patient's (an ADT naming her by INS or hospital "
                        "identifier states hers)")
        return
    change = apply_consent(conn, patient_id, adt.consent, actor=item.row.source,
                           import_id=item.row.id, trigger=adt.trigger)
    if change.applied:
        done.append("consent applied: " + ", ".join(change.applied))
    if change.kept_newer:
        warnings.append("older than what the dossier holds, kept in its history only: "
                        + ", ".join(change.kept_newer))


# Matches on which an ADT's death is recorded: every one that names the dossier by an
# identifier or an admin's word, not demographics alone (a look-alike's death would end the
# wrong patient's access to their dossier).
DEATH_MATCHES = ("ins", "local-id", LOCAL_ID_NO_INS, "auto-create", "assigned")


def _apply_death(conn, item: Prepared, patient_id: int, via: str,  # noqa: ANN001
                 done: list[str], warnings: list[str]) -> None:
    """PID-29/30 of an ADT (or the cancellation of the movement that stated a death) applied
    to the dossier (dossiers/death.py); what it did goes to the ledger note."""
    adt = item.normalized.adt
    if adt.death is None and adt.trigger not in death_cancels():
        return
    if via not in DEATH_MATCHES:
        if adt.death is not None and adt.death.deceased:  # PID-30 N on a look-alike: no news
            warnings.append(f"{adt.death.location}: death not applied: the patient was "
                            f"matched by {via} only, not by an identifier")
        return
    change = apply_death(conn, patient_id, adt.death, stated_at=instant(adt.stated_at),
                         trigger=adt.trigger, actor=item.row.source, import_id=item.row.id)
    if change.done is not None:
        done.append(f"death {change.done}")
    if change.older:
        warnings.append("death: older than what the dossier holds (EVN-2/MSH-7), not applied")


# Identity quarantines that only say the patient has no dossier here (none found; none
# auto-created for want of the traits to create it), for ``_adt_without_dossier``.
NO_DOSSIER_CODES = ("IDENTITY_UNKNOWN_PATIENT", "IDENTITY_INCOMPLETE")


def _adt_without_dossier(conn, item: Prepared, stop: _Stop) -> Outcome:  # noqa: ANN001
    """An ADT whose patient has no dossier here (NO_DOSSIER_CODES) and that carries
    no ZFA: recorded (deposited, stage 'consent', no dossier, no entry), not quarantined.

    Why: a hospital's GAM sends every movement (A01-A03, A21/A22, A52-A55, Z99...) and every
    update (A08, A31) of every patient it treats, most of whom have no dossier here. Without
    a ZFA there is nothing an admin could apply by assigning a dossier (an assigned dossier
    never takes the PID's traits), so each one in quarantine was work for nobody. An ADT with
    a ZFA states the patient's DMP choices: it stays quarantined until the dossier is known;
    any other identity problem (ambiguous, conflicting, invalid INS) too, for an admin to
    see. Dedupe level 2 still applies (a resend is a duplicate)."""
    outcome = stop.outcome
    adt = item.normalized.adt
    if (outcome.status != QUARANTINED or outcome.error_code not in NO_DOSSIER_CODES
            or adt.consent is not None or item.row.assigned_patient_id is not None):
        raise stop
    warnings = [*(outcome.warnings or item.warnings), f"not filed: {outcome.error_message}"]
    _claim_logical_id(conn, item, None, warnings)
    return Outcome(DEPOSITED, stage=ADT_STAGE, logical_id=item.normalized.logical_id,
                   error_message=f"ADT^{adt.trigger} recorded: no dossier for this patient "
                   "here, nothing to apply", warnings=warnings or None)


def _file_merge(ctx: Context, conn, item: Prepared) -> Outcome:  # noqa: ANN001
    """ADT^A40 / A18 (A34 / A36 of v2.3.1): the surviving dossier is PID-3's (resolved as any
    ADT's, but never by demographics alone: moving identifiers on look-alike traits would
    file one patient's results in another's dossier), then MRG-1's identifiers name it
    (pipelines/merge.py; quarantined, nothing changed, when that would merge two dossiers),
    then the rest of the ADT (dedupe level 2, its ZFA) as ``_file_adt``.

    Neither patient with a dossier here (PID-3 unknown, MRG-1 naming no dossier), no ZFA:
    recorded, not quarantined, as any ADT of a patient we do not hold
    (``_adt_without_dossier``). A GAM sends the merges of all its patients; each one was
    quarantined, work for nobody: no dossier here holds either patient's identifiers.
    The surviving patient unknown, the merged one with a dossier: ``_merge_into_merged``."""
    normalized = item.normalized
    try:
        patient_id, via, warnings = _resolve_via(ctx, conn, item)
    except _Stop as stop:
        holders = merged_dossiers(conn, normalized.adt.merged)
        if not holders:
            return _adt_without_dossier(conn, item, stop)
        if stop.outcome.error_code not in NO_DOSSIER_CODES or len(holders) > 1:
            raise  # an identity problem, or MRG-1 names several dossiers: an admin decides
        return _merge_into_merged(conn, item, holders.pop(), stop)
    if via not in MERGE_SURVIVOR_MATCHES:
        raise _Stop(Outcome(QUARANTINED, stage="identity", error_code="IDENTITY_UNKNOWN_PATIENT",
                            error_message="the surviving patient of a merge (PID-3) was found "
                            f"by {via} only: a merge is applied to a dossier named by its INS "
                            "or a known identifier", error_location="PID-3",
                            logical_id=normalized.logical_id, warnings=warnings))
    adt = normalized.adt
    try:
        done = apply_merge(conn, patient_id, adt.merged, actor=item.row.source,
                           import_id=item.row.id, trigger=adt.trigger, warnings=warnings,
                           domains=frozenset(li.authority for li in normalized.identity.local_ids
                                             if li.authority))
    except MergeRefused as refused:
        raise _Stop(Outcome(QUARANTINED, stage="identity", error_code=refused.code,
                            error_message=refused.reason, error_location=refused.location,
                            logical_id=normalized.logical_id, warnings=warnings)) from None
    outcome = _file_adt(conn, item, patient_id, via, warnings)
    rest = outcome.error_message or ""
    note = done.note(adt.trigger)
    if rest and not rest.endswith("nothing to apply"):
        note += "; " + rest
    return replace(outcome, error_message=note)


def _merge_into_merged(conn, item: Prepared, holder_id: int,  # noqa: ANN001
                       stop: _Stop) -> Outcome:
    """A merge whose surviving patient (PID-3) has no dossier here while the merged one
    (MRG-1) has: the hospital's duplicate record is the one that fed us. PID-3's
    identifiers come to name that dossier (pipelines/merge.py ``adopt_survivor``), so the
    results the hospital now sends under the surviving IPP reach it; then the rest of the
    ADT as ``_file_adt``. Refused (quarantined, nothing changed) as a merge is."""
    normalized = item.normalized
    adt = normalized.adt
    warnings = list(stop.outcome.warnings or item.warnings)
    try:
        learnt = adopt_survivor(conn, holder_id, normalized.identity, adt.merged,
                                actor=item.row.source, import_id=item.row.id,
                                trigger=adt.trigger, warnings=warnings)
    except MergeRefused as refused:
        raise _Stop(Outcome(QUARANTINED, stage="identity", error_code=refused.code,
                            error_message=refused.reason, error_location=refused.location,
                            logical_id=normalized.logical_id, warnings=warnings)) from None
    outcome = _file_adt(conn, item, holder_id, "local-id", warnings)
    note = (f"ADT^{adt.trigger} merge: the surviving patient (PID-3) had no dossier here; "
            f"{learnt} identifier(s) of PID-3 now name the dossier MRG-1 names")
    rest = outcome.error_message or ""
    if rest and not rest.endswith("nothing to apply"):
        note += "; " + rest
    return replace(outcome, error_message=note)


# How the surviving dossier of a merge may have been found: not by demographics alone.
MERGE_SURVIVOR_MATCHES = ("ins", "local-id", LOCAL_ID_NO_INS, "auto-create", "assigned")


def _claim_logical_id(conn, item: Prepared, patient_id: int | None,  # noqa: ANN001
                      warnings: list[str], done: str = "applied") -> None:
    """Dedupe level 2, one message at a time: _Stop(duplicate) when another import already
    ``done`` (deposited, applied) this logical message, even a moment ago in another worker."""
    logical_id = item.normalized.logical_id
    held = conn.execute(select(logical_messages).where(
        logical_messages.c.logical_id.in_((logical_id, _variant(item))))).all()
    record = _dedupe(item, held, patient_id, warnings)
    if record is not None:
        try:
            with conn.begin_nested():
                conn.execute(insert(logical_messages).values(**record))
        except IntegrityError:  # another worker took it a moment ago
            raise _Stop(Outcome(DUPLICATE, stage="dedupe", logical_id=logical_id,
                                patient_id=patient_id,
                                error_message=f"message already {done} by another import",
                                warnings=warnings)) from None


# How far an ADT's statement time (EVN-2, else MSH-7) may be after we received it: the
# sender's clock against ours.
RECEPTION_TOLERANCE = timedelta(minutes=10)


def _bound_by_reception(item: Prepared) -> None:
    """An ADT stated after we received it (EVN-2 and MSH-7 from one wrong clock: the
    normalizer's bound by MSH-7 cannot see it) is dated by its reception instead, with a
    warning, and so are the choices of its ZFA dated after that day; its death is checked
    again against that time (``_check_death_at_reception``).

    Why: trusted, its consent, identity and death statements stayed the newest ones until
    that date, every later real statement filed as older, history only. The reception time
    is the ledger row's (a rerun dates it the same); the fingerprint (dedupe level 2) keeps
    the message's own dates, so a resend is still a duplicate."""
    adt = item.normalized.adt
    received = item.row.received_at
    if received.tzinfo is None:  # SQLite gives back naive UTC datetimes
        received = received.replace(tzinfo=UTC)
    if instant(adt.stated_at) <= received + RECEPTION_TOLERANCE:
        return
    at = received.astimezone(UTC).isoformat(timespec="seconds")
    adt.stated_at = at
    if adt.consent is not None:
        def kept(date: str | None) -> str | None:
            return date if date is None or instant(date) <= received else None
        adt.consent = replace(adt.consent, stated_at=at,
                              opposition_date=kept(adt.consent.opposition_date),
                              consultation_date=kept(adt.consent.consultation_date))
    item.warnings.append("EVN-2/MSH-7: the message is dated after we received it (a sender's "
                         "clock is wrong): its statements are dated by the reception time")
    _check_death_at_reception(item)


def _check_death_at_reception(item: Prepared) -> None:
    """An ADT's death checked again against the reception time its statement was pulled
    back to: _Stop(failed ADT_DEATH_IN_FUTURE) when the death is dated after it.

    Why: the normalizer checks the death against EVN-2 / MSH-7 and the time it runs; a
    message whose clock is days ahead, processed later (a backlog, a rerun), passed both
    checks with a death dated after we received the message that states it, and the dossier
    recorded a death that had not happened when it was sent."""
    adt = item.normalized.adt
    if adt.death is None:
        return
    identity = item.normalized.identity
    try:
        check_death(adt.death, identity.birth_date or identity.birth_date_partial,
                    adt.stated_at)
    except NormalizationError as exc:
        if exc.code == "ADT_DEATH_IN_FUTURE":  # say which bound: not EVN-2/MSH-7 here
            exc = NormalizationError(exc.code, f"{adt.death.location}: the death is dated "
                                     "after we received the message that states it (its "
                                     "EVN-2/MSH-7, later still, are a wrong clock): not "
                                     "recorded", exc.location)
        stop = _failed("normalize", exc, logical_id=item.normalized.logical_id)
        raise _Stop(replace(stop.outcome, warnings=list(item.warnings))) from None


def _file_no_effect(conn, item: Prepared) -> Outcome:  # noqa: ANN001
    """An ADT of normalizers/tables/adt_no_effect.csv (A24 / A37 links, account and visit
    events):
    dedupe level 2 like any message, then recorded (deposited, stage 'consent', no dossier,
    no entry) with a note saying why nothing was applied; its sender gets an AA."""
    adt = item.normalized.adt
    warnings = list(item.warnings)
    _claim_logical_id(conn, item, None, warnings)
    return Outcome(DEPOSITED, stage=ADT_STAGE, logical_id=item.normalized.logical_id,
                   error_message=f"ADT^{adt.trigger} accepted, nothing applied: "
                   f"{adt.no_effect}", warnings=warnings or None)


def _file_identifier_move(conn, item: Prepared) -> Outcome:  # noqa: ANN001
    """ADT^A43 (pipelines/identifier_move.py): MRG-1's identifiers naming no dossier here,
    or the one PID-3's own identifiers name already, dedupe level 2 then recorded with
    nothing applied (AA); naming another, quarantined (ADT_MOVE_IDENTIFIER, answered AA:
    held for an admin), nothing changed."""
    adt = item.normalized.adt
    warnings = list(item.warnings)
    check = check_moves(conn, adt.moved)
    if check.held:
        raise _Stop(Outcome(QUARANTINED, stage="identity", error_code=MOVE_HELD,
                            error_message=held_reason(adt.trigger, check.held),
                            error_location=check.held[0][0],
                            logical_id=item.normalized.logical_id, warnings=warnings or None))
    patient_id = min(check.done) if len(check.done) == 1 else None
    _claim_logical_id(conn, item, patient_id, warnings)
    return Outcome(DEPOSITED, stage=ADT_STAGE, patient_id=patient_id,
                   logical_id=item.normalized.logical_id,
                   error_message=no_move_note(adt.trigger, check), warnings=warnings or None)


def _file_identifier_change(conn, item: Prepared) -> Outcome:  # noqa: ANN001
    """ADT^A47 / A46: MRG-1's local identifiers replaced by PID-3's in the dossier they name
    (pipelines/identifier_change.py), and an INS of MRG-1 that PID-3 dropped removed
    (``_file_ins_removal``, unchanged when the A47 changes no local identifier). Doing both,
    the INS and the local identifiers of MRG-1 must name one dossier (IDENTITY_CONFLICT).
    Changing neither (MRG-1 repeats PID-3, or names another domain's identifiers): recorded,
    nothing changed, its sender answered AA (a refusal stopped the GAM's queue)."""
    normalized = item.normalized
    adt = normalized.adt
    if not adt.changed_ids and adt.removed_ins:
        return _file_ins_removal(conn, item)
    warnings = list(item.warnings)
    assigned = item.row.assigned_patient_id
    try:
        plan = plan_changes(conn, adt.changed_ids, assigned, warnings)
        _same_dossier_as_ins(conn, item, plan.target)
    except ChangeRefused as refused:
        raise _Stop(Outcome(QUARANTINED, stage="identity", error_code=refused.code,
                            error_message=refused.reason, error_location=refused.location,
                            logical_id=normalized.logical_id, warnings=warnings)) from None
    if adt.removed_ins:
        apply_changes(conn, plan, actor=item.row.source, import_id=item.row.id,
                      trigger=adt.trigger)
        outcome = _file_ins_removal(conn, item, warnings)
        # no dossier held the INS: the dossier whose identifier changed is the one touched
        return replace(outcome, patient_id=outcome.patient_id or plan.target,
                       error_message=f"{plan.note(adt.trigger)}; {outcome.error_message}")
    _claim_logical_id(conn, item, plan.target, warnings)
    apply_changes(conn, plan, actor=item.row.source, import_id=item.row.id, trigger=adt.trigger)
    done = [plan.note(adt.trigger) if adt.changed_ids else
            f"ADT^{adt.trigger} recorded, nothing to change: MRG-1 names no INS that PID-3 "
            "dropped and no local identifier that PID-3 replaces"]
    if plan.target is not None:
        _apply_zfa(conn, item, plan.target, "assigned" if assigned else "local-id", done,
                   warnings)
    else:
        _a47_zfa(conn, item, None, _named_by_pid3(conn, item), done, warnings)
    return Outcome(DEPOSITED, stage=ADT_STAGE, patient_id=plan.target,
                   logical_id=normalized.logical_id, error_message="; ".join(done),
                   warnings=warnings or None)


def _same_dossier_as_ins(conn, item: Prepared, target: int | None) -> None:  # noqa: ANN001
    """An A47 removing an INS and changing a local identifier: the dossier holding the INS
    must be the one MRG-1's local identifiers name, else nothing is done on a guess."""
    adt = item.normalized.adt
    if not adt.removed_ins or target is None or item.row.assigned_patient_id is not None:
        return
    nir, kind = adt.removed_ins[0]
    holder = find_by_ins(conn, nir)
    if holder is not None and holder.id != target:
        where = adt.changed_ids[0].old_at
        raise ChangeRefused("IDENTITY_CONFLICT", f"MRG-1: its {kind} names dossier {holder.id}, "
                            f"its local identifier ({where}) dossier {target}: nothing "
                            "changed on a guess", where)


def _named_by_pid3(conn, item: Prepared) -> set[int]:  # noqa: ANN001
    """The dossiers PID-3's local identifiers name (not a billing NIR's)."""
    return {p for li in item.normalized.identity.local_ids if li.type_code != "NH"
            for p in find_by_local_id(conn, li.authority, li.value, li.unscoped)}


def _file_ins_removal(conn, item: Prepared,  # noqa: ANN001
                      warnings: list[str] | None = None) -> Outcome:
    """ADT^A47 with an INS in MRG-1: the dossier holding that INS loses it. The dossier is
    the one holding the INS (or the one an admin assigned); PID-3's local identifiers, when
    known, must name the same dossier, else nothing is done on a guess (IDENTITY_CONFLICT,
    naming the dossiers and the identifiers' authorities as the other paths do: it answered
    IDENTITY_AMBIGUOUS without saying which, and the admin searched both dossiers by name).
    No dossier holds it: recorded, nothing to remove."""
    normalized = item.normalized
    logical_id = normalized.logical_id
    warnings = list(item.warnings) if warnings is None else warnings
    nir, kind = normalized.adt.removed_ins[0]
    if len(normalized.adt.removed_ins) > 1:
        warnings.append("MRG-1 holds several INS: only the first is removed")
    holder = find_by_ins(conn, nir)
    target = item.row.assigned_patient_id or (holder.id if holder else None)
    local_ids = [li for li in normalized.identity.local_ids if li.type_code != "NH"]
    named = {p for li in local_ids
             for p in find_by_local_id(conn, li.authority, li.value, li.unscoped)}
    if target is not None and named - {target}:
        chosen = "the dossier assigned" if item.row.assigned_patient_id else f"{kind} of MRG-1"
        raise _Stop(Outcome(QUARANTINED, stage="identity", error_code="IDENTITY_CONFLICT",
                            error_message="the INS of MRG-1 and the local identifiers of "
                            f"PID-3 name different dossiers ({chosen} -> dossier {target}; "
                            f"{naming(StoreLookup(conn), local_ids)}): nothing removed on a "
                            "guess", logical_id=logical_id, warnings=warnings))
    _claim_logical_id(conn, item, target, warnings)
    done: list[str] = []
    if target is None or not remove_ins(conn, target, nir):
        _a47_zfa(conn, item, target, named, done, warnings)
        note = "; ".join(["no dossier holds the INS of MRG-1: nothing removed", *done])
        return Outcome(DEPOSITED, stage=ADT_STAGE, patient_id=target, logical_id=logical_id,
                       error_message=note, warnings=warnings or None)
    record_audit(conn, item.row.source, "identity.ins_removed", patient_id=target,
                 import_id=item.row.id, details={"kind": kind,
                                                 "trigger": normalized.adt.trigger})
    add_identifiers(conn, [{"patient_id": target, "authority": li.authority,
                            "value": li.value, "type_code": li.type_code}
                           for li in local_ids if li.authority and li.value])
    _a47_zfa(conn, item, target, named, done, warnings)
    note = "; ".join([f"{kind} removed from the dossier (ADT^{normalized.adt.trigger}, MRG-1)",
                      *done])
    return Outcome(DEPOSITED, stage=ADT_STAGE, patient_id=target, logical_id=logical_id,
                   error_message=note, warnings=warnings or None)


def _a47_zfa(conn, item: Prepared, target: int | None, named: set[int],  # noqa: ANN001
             done: list[str], warnings: list[str]) -> None:
    """The ZFA an ADT^A47 carries (GAMs send the patient's segments whole), applied as any
    ADT's (``_apply_zfa``): it was ignored, and the opposition it stated lost. The dossier
    must be named by PID-3's local identifiers (or an admin's assignment): the INS MRG-1
    removes is the one the hospital says was wrong, no trusted match."""
    if item.normalized.adt.consent is None:
        return
    if item.row.assigned_patient_id is not None:
        _apply_zfa(conn, item, item.row.assigned_patient_id, "assigned", done, warnings)
    elif len(named) == 1 and (target is None or named == {target}):
        _apply_zfa(conn, item, next(iter(named)), "local-id", done, warnings)
    elif target is not None:
        _apply_zfa(conn, item, target, "the INS that MRG-1 removes", done, warnings)
    else:
        warnings.append(f"{ZFA_NOT_APPLIED}: the DMP status, opposition and consent of ZFA "
                        "are not applied: no dossier here holds the INS of MRG-1 or the "
                        "local identifiers of PID-3")


def file_in_bulk(ctx: Context, conn, prepared: list[Prepared],  # noqa: ANN001
                 outcomes: dict[int, tuple[Outcome, datetime]]
                 ) -> tuple[list[Prepared], list[Prepared]]:
    """File, with a few statements for the whole batch, the messages that touch nothing
    another message of the batch touches; return the others for the one-by-one path (all of
    them if anything goes wrong), and the rest of the batch, not looked at, that must be
    filed after those (``_file_piece``). Outcomes decided here are added to ``outcomes``.

    The outcome must be the one of filing the messages one by one in ledger order, whatever
    the batch (the pool's pace cuts batches into pieces): the bulk messages are filed first,
    then the deferred ones in order, so nothing after a deferred message may depend on it.
    What a message does to the identities the next ones are resolved with (an ADT, a dossier
    created, an INS given, an identifier learnt by a deferred message), or a refusal that may
    depend on what an earlier message of the batch files, cannot be marked: the batch is cut
    there, and the messages after it are resolved once it is filed."""
    decided: dict[int, Outcome] = {}
    later: list[Prepared] = []
    cut = len(prepared)
    savepoint = conn.begin_nested()
    try:
        lookup = BatchLookup(conn, [p.normalized.identity for p in prepared]
                             + [s.identity for p in prepared if p.shares for s in p.shares])
        # the records of the batch's logical ids (dedupe level 2), read once: a duplicate is
        # decided as soon as it is resolved, so that what its identity taught is forgotten
        # (filed alone, its savepoint is rolled back with it)
        wanted = {x for item in prepared for x in (item.normalized.logical_id, _variant(item))}
        held: dict[str, list] = {}
        ids = sorted(w for w in wanted if w is not None)
        if ids:
            for h in conn.execute(_HELD_LOGICAL, {"ids": ids}):
                held.setdefault(h.logical_id, []).append(h)
        records: list[dict] = []
        filing: list[tuple[Prepared, list[_Target], list[str]]] = []
        logical_seen: set[str] = set()
        pairs_seen: set[tuple[int, str]] = set()
        codes_seen: set[tuple[int, str]] = set()  # (patient, code) of results
        fixes_seen: set[tuple[int, str]] = set()  # (patient, code) of corrected results
        keys_seen: set[str] = set()  # every key filed by the batch so far, any dossier
        named_later: set[str] = set()  # keys that deferred messages correct, any dossier
        doc_sets: dict[int, set[tuple[int, str]]] = {}  # import id -> (patient, CDA set id)
        for n, item in enumerate(prepared):
            if item.normalized.adt is not None or _touches_held(item):
                # An ADT changes what the messages after it may do (an opposition refuses
                # them, a merge moves their dossier), and so does a document held back,
                # signed or cancelled (pipelines/held.py): what it holds or releases decides
                # what the messages after it file. Filed on its own, in its turn.
                later.append(item)
                cut = n + 1
                break
            named = {k for e, _ in item.items for k in named_keys(e)}
            mark = lookup.mark()
            try:
                targets, warnings = _resolve_targets(ctx, conn, item, lookup)
            except _Stop as stop:
                lookup.undo(mark)  # a message of several patients: nothing of it is kept
                if named & keys_seen:
                    # CORRECTION_OTHER_DOSSIER decided without what an earlier message of
                    # the batch files: decided again in its turn
                    later.append(item)
                    cut = n + 1
                    break
                decided[item.row.id] = stop.outcome
                continue
            except NeedsOwnTransaction:
                # a dossier to create or an INS to give: the next messages may be that
                # patient's (by INS, local id or demographics), resolved once it is done
                lookup.undo(mark)
                later.append(item)
                cut = n + 1
                break
            doc_sets[item.row.id] = {(t.patient_id, s) for t in targets for s in sets_of(t.items)}
            pairs = {(t.patient_id, k) for t in targets for k in t.keys} | \
                {(t.patient_id, k) for t in targets for k in document_aliases(t.items)} | \
                {(t.patient_id, f"fact:{f}") for t in targets for f in t.facts} | \
                {(pid, f"set:{s}") for pid, s in doc_sets[item.row.id]}
            logical_id = item.normalized.logical_id
            # a correction may supersede another key's result of its test (another channel's):
            # it and a message with results of its code are filed one after the other
            codes = {(t.patient_id, c) for t in targets for c in codes_of(t.items)}
            fixes = {(t.patient_id, c) for t in targets for c in codes_of(t.items, True)}
            # a correction of what an earlier message of the batch files, maybe in another
            # dossier (CORRECTION_OTHER_DOSSIER): checked once that one is written
            keys = {k for t in targets for k in t.keys}
            if logical_id in logical_seen or pairs & pairs_seen or fixes & codes_seen \
                    or codes & fixes_seen or named & keys_seen or keys & named_later:
                # depends on another message of this batch: filed after the bulk ones. What
                # it touches stays marked (below), so that a later message depending on it
                # is filed after it too: it went in bulk, before it (the second of two
                # documents stating one fact owned the entry, the first only confirmed it),
                # and which one won depended on where the pool's pace cut the batch
                later.append(item)
                named_later |= named
                if lookup.mark() != mark:
                    # it taught the batch an identifier the next messages may be found by:
                    # learnt when it is filed, and they resolved after it
                    lookup.undo(mark)
                    cut = n + 1
                    break
            else:
                mine = held.get(logical_id, []) + held.get(_variant(item), [])
                try:
                    record = _dedupe(item, mine,
                                     None if item.shares else targets[0].patient_id, warnings)
                except _Stop as stop:
                    lookup.undo(mark)  # a duplicate files nothing, learns nothing
                    decided[item.row.id] = stop.outcome
                    continue
                if record is not None:
                    records.append(record)
                filing.append((item, targets, warnings))
            logical_seen.add(logical_id)
            keys_seen |= keys
            pairs_seen |= pairs
            codes_seen |= codes
            fixes_seen |= fixes

        stored = held_entries(conn, {(t.patient_id, k) for _, targets, _ in filing
                                     for t in targets for k in t.keys})
        stored.update(held_set_documents(conn, {pair for item, _, _ in filing
                                                for pair in doc_sets[item.row.id]}))
        every_target = [(t.patient_id, t.items) for _, targets, _ in filing for t in targets]
        every_source = [item.row.source for item, targets, _ in filing for _ in targets]
        follow_order_scopes(conn, stored, every_target, every_source)
        follow_sub_id_spellings(conn, stored, every_target)
        companions = follow_document_numbers(conn, stored, every_target, every_source)
        follow_replaced_versions(conn, stored, every_target)
        facts = held_facts(conn, {(t.patient_id, f) for _, targets, _ in filing
                                  for t in targets for f in t.facts})
        every = every_target
        by_code = held_by_code(conn, orphan_corrections(stored, every))
        replacements = held_replacements(conn, originals(stored, every))
        children = held_children(conn, stored)
        confirmed = held_confirmed(conn, stored)
        # plan_deposit reads every stored version it is given: one patient's, not the batch's
        by_patient: dict[int, dict[tuple[int, str], list]] = {}
        for pair, versions in stored.items():
            by_patient.setdefault(pair[0], {})[pair] = versions
        # one plan per message and dossier (a message of several patients has several)
        planned = [[plan_deposit(by_patient.get(t.patient_id, {}), patient_id=t.patient_id,
                                 import_id=item.row.id, source=item.row.source,
                                 items=t.items, facts=facts, children=children,
                                 item_facts=t.item_facts, by_code=by_code,
                                 replacements=replacements, confirmed=confirmed,
                                 companions=companions)
                    for t in targets]
                   for item, targets, _ in filing]
        fault_point("deposit.planned")  # versions read and planned, nothing written
        blobs = [blob for item, _, _ in filing for blob in _new_blobs(item)]
        if blobs:
            ctx.archive.put_many(blobs)
            fault_point("deposit.attached")  # attachments durable, no entry points at them
        lookup.flush()
        if records:
            bulk_insert(conn, logical_messages, records)
        write_deposits(conn, [plan for plans in planned for plan in plans])
        fault_point("deposit.written")  # entries written (uncommitted), no outcome recorded
        deaths = deaths_of(conn, [t.patient_id for _, targets, _ in filing for t in targets])
        held_drafts.close_superseded(conn, _content_filed([item for item, _, _ in filing]))
        for (item, targets, warnings), plans in zip(filing, planned, strict=True):
            if item.shares is None:
                decided[item.row.id] = _deposited(item, targets[0].patient_id,
                                                  plans[0].result, warnings, deaths)
            else:
                decided[item.row.id] = _deposited_patients(
                    item, targets, [plan.result for plan in plans], warnings, deaths)
        savepoint.commit()
    except Exception as exc:  # a conflict with another worker, a bug: take the safe path
        savepoint.rollback()
        log.warning("batch filing of %d message(s) fell back to one by one (%s)",
                    len(prepared), type(exc).__name__)
        return prepared, []
    for item in prepared:
        if item.row.id in decided:
            outcomes[item.row.id] = (decided[item.row.id], item.started)
    return later, prepared[cut:]


def _adt_fingerprint(normalized: NormalizedMessage) -> str:
    """What an ADT says (it has no entries): trigger, consent statement, identity."""
    adt, ident = normalized.adt, normalized.identity
    return hashlib.sha256(repr((
        "adt", adt.trigger, adt.stated_at, adt.updates_identity, adt.consent,
        adt.removed_ins,
        # an A47's identifier changes only when there are some: every other ADT's unchanged
        *([[(c.old.unscoped or c.old.authority, c.old.value,
             c.new and (c.new.unscoped or c.new.authority, c.new.value)) for c in adt.changed_ids]]
          if adt.changed_ids else []),
        # a merge's MRG-1 only when there is one: every other ADT's fingerprint unchanged
        # (not where MRG sits: a resend with one more segment says the same)
        *([[([(i.nir, i.oid) for i in m.ins],
             [(li.unscoped or li.authority, li.value, li.type_code) for li in m.local_ids])
            for _, m in adt.merged]] if adt.merged else []),
        # only when PID-5 names no birth name: every other ADT's fingerprint unchanged
        *(["no birth name"] if not adt.birth_name_stated else []),
        # only when PID-29/30 say something: every other ADT's fingerprint unchanged
        *([("death", adt.death.deceased, adt.death.time)] if adt.death is not None else []),
        [(i.nir, i.oid) for i in ident.ins],
        # the namespace as sent: an ADT resent after scoping (round 9) is the same
        [(li.unscoped or li.authority, li.value, li.type_code) for li in ident.local_ids],
        ident.family, ident.given, ident.birth_family, ident.birth_date, ident.sex,
        ident.identity_status)).encode()).hexdigest()


def _fingerprint(items: list[tuple[Entry, str | None]]) -> str:
    """What the message says, independent of its bytes (line ends, charset, field padding).

    The text hashed per entry is the repr of (type, key, content, replaces_key, attachment
    digest, sorted masking), written out as one f-string (no tuple built, then reprs walked)
    and hashed in one update: the same bytes, so fingerprints stored earlier still match."""
    parts = [f"({e.type!r}, {e.key!r}, {e.content()!r}, {e.replaces_key!r}, "
             f"{_content_digest(e, sha) if e.attachment is not None else ''!r}, "
             f"{sorted(e.masking.items()) if e.masking else []!r})" for e, sha in items]
    return hashlib.sha256("".join(parts).encode()).hexdigest()


_XML_TYPES = ("text/xml", "application/xml")


def _content_digest(entry: Entry, attachment_sha: str | None) -> str:
    """An attachment's identity for dedupe level 2: its sha256, except that an XML document's
    line ends do not count (XML reads CRLF, CR and LF alike: a CDA re-sent by a system that
    rewrote them is the same document)."""
    attachment = entry.attachment
    if attachment is None or attachment_sha is None:
        return ""
    if attachment.media_type in _XML_TYPES and b"\r" in attachment.data:
        # without any CR the bytes are already in that form: their sha256 is the one the
        # caller has (a 130 KB CR-BIO was hashed twice, after two copies)
        data = attachment.data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        return sha256_hex(data)
    return attachment_sha


def _logical_id(msg) -> str | None:  # noqa: ANN001
    control = msg.control_id
    return f"{msg.sender}|{control}" if control else None


def _unsupported_format(data: bytes) -> Outcome:
    """What an input of no known format looks like (parsers.detect.unknown_reason)."""
    code, message, location = unknown_reason(data)
    return Outcome(FAILED, stage="parse", error_code=code, error_message=message,
                   error_location=location or None)
