"""Intake: archive the raw bytes, write the ledger rows, both durable before returning.

This is the only thing a connector calls. A connector may acknowledge its sender once
``intake`` has returned: the bytes are fsynced in the archive and the ledger rows committed.
A file or frame holding several HL7v2 messages (concatenated, or FHS/BHS batches) gets one
ledger row per message plus a file-level row ('split', or 'failed' when the envelope's counts
do not match: a truncated batch is reported, its messages still processed).
Dedupe level 1 happens here: the same bytes from the same source again get a row of their own,
marked duplicate of the first, and are never processed.
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache

from sqlalchemy import Engine, bindparam, func, insert, or_, select

from dossiers.db import allocate_ids, bulk_insert
from dossiers.schema import imports
from parsers.detect import detect_format
from parsers.hl7v2.framing import split_batch
from pipelines.archive import Archive, sha256_hex
from pipelines.faults import fault_point
from pipelines.ledger import DUPLICATE, FAILED, PROCESSING, RECEIVED, SPLIT, now

EMPTY_BATCH = "HL7_EMPTY_BATCH"

# The columns of a message row (the others are NULL or their scalar default) and the
# level-1 dedupe lookup, fixed once: on SQLite both go to the driver as text (_insert_many);
# SQLAlchemy building and compiling them per group cost the listener more than SQLite did.
_COLUMNS = ["id", "source", "channel", "peer", "file_name", "received_at", "format",
            "entries_count", "duplicates_count", "attempts", "updated_at", "batch_of", "part",
            "duplicate_of", "error_code", "error_message", "claimed_by", "claimed_until",
            "sha256", "size", "warnings", "status", "stage"]
_FIRST_SEEN = (select(imports.c.source, imports.c.sha256, func.min(imports.c.id))
               .where(imports.c.source.in_(bindparam("sources", expanding=True)),
                      imports.c.sha256.in_(bindparam("shas", expanding=True)),
                      imports.c.status != SPLIT,
                      # refused at intake (unknown sender...): never an original
                      or_(imports.c.status != FAILED, imports.c.stage != "intake"))
               .group_by(imports.c.source, imports.c.sha256))
_FIRST_SEEN_SQLITE = ("SELECT source, sha256, min(id) FROM imports WHERE source IN ({}) "
                      "AND sha256 IN ({}) AND status != ? AND (status != ? OR stage != ?) "
                      "GROUP BY source, sha256")


@dataclass(slots=True)
class Received:
    """Raw bytes as a connector got them, with where they came from."""

    data: bytes
    source: str
    channel: str
    peer: str | None = None
    file_name: str | None = None
    received_at: datetime | None = None
    # Refused by the connector before intake (unknown sender, oversize frame...): recorded
    # as a failed import with this (code, message), archived, never processed.
    rejection: tuple[str, str] | None = None
    # One message of a file cut by the caller (pipelines/intake_stream.py: a file too big to
    # hold): the id of the file's row and the message's position in it.
    batch_of: int | None = None
    part: int | None = None


@dataclass(slots=True)
class IntakeResult:
    message_ids: list[int] = field(default_factory=list)  # rows to process (or repeats)
    repeats: int = 0  # byte-identical repeats (dedupe level 1)
    batch_id: int | None = None
    batch_problems: list[str] = field(default_factory=list)
    claimed_ids: list[int] = field(default_factory=list)  # rows written claimed (claim_for)


def batch_warnings(failures: list, problems: list) -> list[str]:
    """The warnings of a file's row: its problems after the first (which is its error),
    then its notes (``BatchProblem.warning``: odd, nothing missing)."""
    return [f"{p.code}: {p.message}" for p in failures[1:]] + [
        f"{p.code}: {p.message}" for p in problems if p.warning]


def _split(item: Received) -> tuple[str, list[bytes], list]:
    fmt = detect_format(item.data)
    if fmt != "hl7v2" or item.rejection is not None:
        return fmt, [item.data], []
    batch = split_batch(item.data)
    if not batch.messages and batch.envelope and not batch.problems:
        return fmt, [], []  # an empty batch (BTS-1 = 0): its batch row alone, nothing to file
    # the notes (warnings: nothing missing) ride with the problems, told apart by ``warning``
    return fmt, batch.messages or [item.data], [*batch.problems, *batch.notes]


@dataclass(slots=True)
class Archived:
    """A group whose bytes are durable in the archive and whose ledger rows are not written
    yet (the first of intake's two steps; see ``archive_group`` and ``record_group``)."""

    parts: list  # (item, format, [(sha256, bytes)], batch problems, sha256 of the whole)


def intake(engine: Engine, archive: Archive, items: Iterable[Received], *,
           claim_for: str | None = None, lease_seconds: int = 600) -> list[IntakeResult]:
    """Archive and record a group of inputs with one archive sync and one commit.

    ``claim_for``: the new rows are written already claimed by that worker (status
    'processing' with a lease), for a caller that processes them at once (the listener in
    application-ACK mode) without a background worker taking them meanwhile."""
    return record_group(engine, archive_group(archive, items), claim_for=claim_for,
                        lease_seconds=lease_seconds)


def archive_group(archive: Archive, items: Iterable[Received]) -> Archived:
    """Step 1: split, hash and archive a group (durable when this returns). Needs no
    database: a caller may archive one group while the ledger rows of the previous one are
    being committed (the listener does), as long as each group's rows are written after its
    bytes, never before."""
    prepared = []
    blobs: dict[str, bytes] = {}
    for item in items:
        part, item_blobs = split_item(item)
        blobs.update(item_blobs)
        prepared.append(part)
    archive.put_many(list(blobs.items()))
    fault_point("intake.archived")
    return Archived(prepared)


def split_item(item: Received) -> tuple[tuple, list[tuple[str, bytes]]]:
    """One input cut into messages and hashed: its part of an ``Archived`` group and the
    (sha256, bytes) blobs to store (the whole input too when it held several messages)."""
    fmt, parts, problems = _split(item)
    hashed = [(sha256_hex(p), p) for p in parts]
    blobs = list(hashed)
    whole = None
    if len(parts) != 1 or problems:
        whole = sha256_hex(item.data)
        blobs.append((whole, item.data))
    return (item, fmt, hashed, problems, whole), blobs


@dataclass(slots=True)
class Staged:
    """One input split, hashed and, when the archive can (``DirectoryArchive.write_many``),
    written to it but not yet durable: ``archive_staged`` makes a group of them durable."""

    part: tuple
    blobs: list[tuple[str, bytes]]
    written: bool


def stage(archive: Archive, item: Received) -> Staged:
    """Step 1a, for a caller that receives inputs one by one (the MLLP listener): split,
    hash and write one input as soon as it arrives, while the previous group is still being
    synced and committed, so that a group's own step 1 is little more than one sync. An
    archive without ``write_many`` (S3, test doubles) stores the group in ``archive_staged``
    instead. Raises ArchiveError when the write fails."""
    part, blobs = split_item(item)
    write = getattr(archive, "write_many", None)
    if write is not None and getattr(archive, "sync", None) is not None:
        write(blobs)
        return Staged(part, blobs, True)
    return Staged(part, blobs, False)


def archive_staged(archive: Archive, staged: list[Staged]) -> Archived:
    """Step 1b: make a group of staged inputs durable (one sync for those already written,
    ``put_many`` for the others). Always syncs when some were written, even when they were
    all stored already (a resend): the earlier copy may be one that a failed sync left
    unflushed."""
    pending = {sha: data for s in staged if not s.written for sha, data in s.blobs}
    if pending:
        archive.put_many(list(pending.items()))
    if any(s.written for s in staged):
        fault_point("archive.written")
        archive.sync()
    fault_point("intake.archived")
    return Archived([s.part for s in staged])


def store_staged(engine: Engine, archive: Archive, staged: list[Staged], *,
                 claim_for: str | None = None, lease_seconds: int = 600) -> list[IntakeResult]:
    """``archive_staged`` then ``record_group``, overlapped: the ledger rows are written
    while another thread syncs the archive, and committed only once the sync has returned
    (a row is never durable before its bytes; a failed sync rolls the rows back). The
    group's time is then its sync or its inserts, whichever is longer, plus the commit."""
    syncing = _syncer().submit(archive_staged, archive, staged)
    try:
        with engine.begin() as conn:
            results = _record(conn, [s.part for s in staged], claim_for, lease_seconds)
            syncing.result()  # raises ArchiveError: rolled back, nothing acknowledged
    finally:
        wait([syncing])  # the next group's sync never overlaps this one's
    fault_point("intake.committed")  # recorded; the caller has not acknowledged or moved it
    return results


@cache
def _syncer() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(1, thread_name_prefix="archive-sync")


def record_group(engine: Engine, archived: Archived, *, claim_for: str | None = None,
                 lease_seconds: int = 600) -> list[IntakeResult]:
    """Step 2: the ledger rows of an archived group, in one committed transaction."""
    with engine.begin() as conn:
        results = _record(conn, archived.parts, claim_for, lease_seconds)
    fault_point("intake.committed")  # recorded; the caller has not acknowledged or moved it
    return results


def _record(conn, prepared: list, claim_for: str | None,  # noqa: ANN001
            lease_seconds: int) -> list[IntakeResult]:
    """The ledger rows of a group: batch rows first (their ids are the messages' batch_of),
    then every message row in one insert, then the in-group repeats (whose duplicate_of is a
    row of the same group). Level-1 dedupe is one query for the group."""
    results = [IntakeResult() for _ in prepared]
    bases = []
    for (item, fmt, hashed, problems, whole), result in zip(prepared, results, strict=True):
        received_at = item.received_at or now()
        base = {"source": item.source, "channel": item.channel, "peer": item.peer,
                "file_name": item.file_name, "received_at": received_at,
                "format": fmt, "entries_count": 0, "duplicates_count": 0,
                "attempts": 0, "updated_at": received_at, "batch_of": None, "part": None,
                "duplicate_of": None, "error_code": None, "error_message": None,
                "claimed_by": None, "claimed_until": None}
        if whole is not None:
            result.batch_problems = [f"{p.code}: {p.message}" for p in problems]
            failures = [p for p in problems if not p.warning]
            result.batch_id = conn.execute(insert(imports).values(
                {**base, "sha256": whole, "size": len(item.data),
                 "status": FAILED if failures else SPLIT, "stage": "intake",
                 "error_code": failures[0].code if failures else None,
                 "error_message": "; ".join(p.message for p in failures) or None,
                 "warnings": batch_warnings(failures, problems) or _empty_batch(hashed)},
            ).returning(imports.c.id)).scalar_one()
        bases.append(base)

    wanted = {(item.source, sha) for item, _, hashed, _, _ in prepared
              if item.rejection is None for sha, _ in hashed}
    first_seen = _first_seen(conn, wanted)

    rows: list[dict] = []  # (result index, row) in arrival order
    owners: list[int] = []
    repeats: list[tuple[int, dict, tuple[str, str]]] = []
    in_group: set[tuple[str, str]] = set()
    for n, ((item, _, hashed, _, whole), base) in enumerate(zip(prepared, bases, strict=True)):
        for part, (sha, data) in enumerate(hashed, start=1):
            row = {**base, "sha256": sha, "size": len(data), "warnings": None,
                   "batch_of": results[n].batch_id if whole is not None else item.batch_of,
                   "part": part if whole is not None else item.part}
            key = (item.source, sha)
            if item.rejection is not None:
                row.update(status=FAILED, stage="intake", error_code=item.rejection[0],
                           error_message=item.rejection[1])
            elif key in first_seen or key in in_group:
                repeats.append((n, row, key))
                continue
            elif claim_for is not None:
                row.update(status=PROCESSING, stage="intake", claimed_by=claim_for,
                           claimed_until=base["received_at"] + timedelta(seconds=lease_seconds))
                in_group.add(key)
            else:
                row.update(status=RECEIVED, stage="intake")
                in_group.add(key)
            rows.append(row)
            owners.append(n)
    for n, row, new_id in zip(owners, rows, _insert_many(conn, rows), strict=True):
        results[n].message_ids.append(new_id)
        if row["status"] == PROCESSING:
            results[n].claimed_ids.append(new_id)
        key = (row["source"], row["sha256"])
        if row["status"] != FAILED:
            first_seen.setdefault(key, new_id)
    for _, row, key in repeats:
        original = first_seen[key]
        row.update(status=DUPLICATE, stage="intake", duplicate_of=original,
                   error_message=f"same bytes as import {original} from this source")
    for (n, _, _), new_id in zip(repeats, _insert_many(conn, [r for _, r, _ in repeats]),
                                 strict=True):
        results[n].message_ids.append(new_id)
        results[n].repeats += 1
    fault_point("intake.uncommitted")
    return results


def _empty_batch(hashed: list) -> list[str] | None:
    """The note on the row of a batch that holds no message. HL7 v2.5 2.10.3 allows one (a
    periodic submission with nothing to send): recorded as a batch ('split' into nothing),
    not as a failure an admin would have to look at."""
    return None if hashed else [f"{EMPTY_BATCH}: the batch holds no message, nothing to file"]


def _first_seen(conn, wanted: set[tuple[str, str]]) -> dict[tuple[str, str], int]:  # noqa: ANN001
    """Level-1 dedupe: the first row of each (source, sha256) already in the ledger. Both
    columns are constrained, so that the (source, sha256) index is searched: on sha256 alone
    the query read the whole index, a cost growing with the ledger, paid by every group. On
    SQLite the statement goes to the driver as text; elsewhere it is built once (its expanding
    INs make every call a compiled-cache hit). Building the expression and its execution
    context per group cost the listener more than running the query."""
    first_seen: dict[tuple[str, str], int] = {}
    if not wanted:
        return first_seen
    sources = sorted({source for source, _ in wanted})
    shas = sorted({sha for _, sha in wanted})
    if conn.dialect.name == "sqlite":
        found = conn.exec_driver_sql(
            _FIRST_SEEN_SQLITE.format(", ".join("?" * len(sources)),
                                      ", ".join("?" * len(shas))),
            (*sources, *shas, SPLIT, FAILED, "intake"))
    else:
        found = conn.execute(_FIRST_SEEN, {"sources": sources, "shas": shas})
    for source, sha, first in found:
        if (source, sha) in wanted:
            first_seen[(source, sha)] = first
    return first_seen


def _insert_many(conn, rows: list[dict]) -> list[int]:  # noqa: ANN001
    """Ids of rows inserted with one statement, in the order given. SQLite: ids allocated
    first and one executemany straight to sqlite3 (``dossiers.db``: the values converted by
    the columns' own bind processors, read back as if SQLAlchemy had written them);
    SQLAlchemy's multi-row ``INSERT ... RETURNING`` cost the listener more per group than
    SQLite's commit. Elsewhere that statement, as before."""
    if not rows:
        return []
    if conn.dialect.name != "sqlite":
        return list(conn.execute(insert(imports).returning(imports.c.id,
                                                           sort_by_parameter_order=True),
                                 rows).scalars())
    ids = allocate_ids(conn, imports, len(rows))
    empty = dict.fromkeys(_COLUMNS)
    bulk_insert(conn, imports, [{**empty, **row, "id": new_id}
                                for row, new_id in zip(rows, ids, strict=True)],
                columns=_COLUMNS)
    return ids
