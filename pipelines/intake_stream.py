"""Intake of an HL7v2 batch file too big to hold in memory (a laboratory's day, a gigabyte).

``intake`` takes bytes; for a file above ``LARGE_FILE_BYTES`` the connector calls
``intake_file`` instead, which never holds more than a window of the file plus a group of
messages: the file is archived by streaming (its own blob, as for any batch), cut by
``iter_batch`` window by window, and its messages go through the same ``intake`` in groups
(one archive sync and one ledger commit per group).

Why the file's row is written first, marked interrupted: its id is every message's
``batch_of``, and the groups are committed one after the other. If the process dies midway,
the row says so (code ``HL7_INTAKE_INTERRUPTED``); the connector has not acknowledged the file
(not moved to done/, not tagged), so it is taken again in full, and the messages recorded the
first time become duplicates of themselves (dedupe level 1): nothing lost, nothing doubled.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, insert, update

from dossiers.schema import imports
from parsers.detect import detect_format
from parsers.hl7v2.framing import Batch, iter_batch
from pipelines.archive import Archive
from pipelines.intake import (
    EMPTY_BATCH,
    IntakeResult,
    Received,
    _first_seen,
    batch_warnings,
    intake,
)
from pipelines.ledger import DUPLICATE, FAILED, RECEIVED, SPLIT, now

# Above this an HL7v2 file is streamed. Held whole, a batch file costs about six times its
# size at its peak (its bytes, each message's, their rows: 398 MB for a 63 MB file, measured
# with bench/bench_memory.py); streamed, the same whatever its size.
LARGE_FILE_BYTES = 16 * 1024 * 1024
GROUP_MESSAGES = 2000  # messages per intake group: one sync and one commit
WINDOW_BYTES = 8 * 1024 * 1024
INTERRUPTED = "HL7_INTAKE_INTERRUPTED"


def is_large(path: Path, limit: int = LARGE_FILE_BYTES) -> bool:
    """A file worth streaming whatever its format (``intake_path``; HL7v2: ``intake_file``)."""
    try:
        return path.stat().st_size > limit
    except OSError:
        return False  # the normal path reads it and reports why it cannot


def is_large_hl7(path: Path, limit: int = LARGE_FILE_BYTES) -> bool:
    """A file worth streaming: over ``limit`` bytes and HL7v2 by its first bytes."""
    try:
        if path.stat().st_size <= limit:
            return False
        with open(path, "rb") as fh:
            return detect_format(fh.read(65536)) == "hl7v2"
    except OSError:
        return False  # the normal path reads it and reports why it cannot


def intake_path(engine: Engine, archive: Archive, path: Path, *, source: str,
                channel: str = "file", peer: str | None = None,
                file_name: str | None = None) -> IntakeResult:
    """Archive and record one big file of another format (a CDA, a scanned PDF, a file of no
    known format) without holding it: streamed to the archive (hashed while copied), its
    format detected from its head, its row written as ``intake`` writes one (received, or a
    byte-identical repeat). Held whole, a 2 GB scan given to `ingest` took 2 GB of memory
    here and again in the worker; the worker now refuses an input over its parser's limit
    by the row's size, before reading it (pipelines/input_limits.py)."""
    with open(path, "rb") as fh:
        fmt = detect_format(fh.read(65536))
    sha, size = archive.put_file(path)
    received_at = now()
    row = {"source": source, "channel": channel, "peer": peer, "file_name": file_name,
           "received_at": received_at, "updated_at": received_at, "sha256": sha,
           "size": size, "format": fmt, "stage": "intake", "entries_count": 0,
           "duplicates_count": 0, "attempts": 0}
    with engine.begin() as conn:
        original = _first_seen(conn, {(source, sha)}).get((source, sha))
        if original is None:
            row.update(status=RECEIVED)
        else:
            row.update(status=DUPLICATE, duplicate_of=original,
                       error_message=f"same bytes as import {original} from this source")
        new_id = conn.execute(insert(imports).values(row).returning(imports.c.id)).scalar_one()
    return IntakeResult(message_ids=[new_id], repeats=int(original is not None))


def intake_file(engine: Engine, archive: Archive, path: Path, *, source: str,
                channel: str = "file", peer: str | None = None,
                file_name: str | None = None, group: int = GROUP_MESSAGES,
                window: int = WINDOW_BYTES) -> IntakeResult:
    """Archive and record a big HL7v2 batch file, message rows in groups (module doc)."""
    sha, size = archive.put_file(path)
    received_at = now()
    with engine.begin() as conn:
        batch_id = conn.execute(insert(imports).values(
            source=source, channel=channel, peer=peer, file_name=file_name,
            received_at=received_at, sha256=sha, size=size, format="hl7v2", status=SPLIT,
            stage="intake", error_code=INTERRUPTED, entries_count=0, duplicates_count=0,
            attempts=0, updated_at=received_at,
            error_message="intake of this file stopped before its end; the file is taken "
            "again in full (messages recorded the first time become duplicates)",
        ).returning(imports.c.id)).scalar_one()
    result = IntakeResult(batch_id=batch_id)
    pending: list[Received] = []
    envelope = Batch([])
    messages = 0

    def flush() -> None:
        for r in intake(engine, archive, pending):
            result.message_ids.extend(r.message_ids)
            result.repeats += r.repeats
        pending.clear()

    with open(path, "rb") as fh:
        for item in iter_batch(fh.read, window):
            if isinstance(item, Batch):
                envelope = item
                break
            messages += 1
            pending.append(Received(item, source, channel, peer=peer, file_name=file_name,
                                    received_at=received_at, batch_of=batch_id,
                                    part=messages))
            if len(pending) >= group:
                flush()
    flush()
    problems = list(envelope.problems)
    notes = list(envelope.notes)
    empty = None
    if not messages and envelope.envelope and not problems:
        status, code, text = SPLIT, None, None  # an empty batch: intake._empty_batch
        empty = [f"{EMPTY_BATCH}: the batch holds no message, nothing to file"]
    elif not messages:
        status, code = FAILED, "HL7_NO_MSH"
        text = f"no MSH segment at a line start in the file's {size} bytes"
    elif problems:
        status, code = FAILED, problems[0].code
        text = "; ".join(p.message for p in problems)
    else:
        status, code, text = SPLIT, None, None
    result.batch_problems = [f"{p.code}: {p.message}" for p in problems + notes]
    with engine.begin() as conn:
        conn.execute(update(imports).where(imports.c.id == batch_id).values(
            status=status, error_code=code, error_message=text,
            warnings=batch_warnings(problems, problems + notes) or empty, updated_at=now()))
    return result
