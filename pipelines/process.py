"""Processing: archived bytes -> parse -> normalize -> identity -> dedupe -> deposit -> outcome.

A batch of claimed ledger rows is processed in one database transaction, each message in a
savepoint of its own: a message deposits all its entries or none, one bad message never
stops the others, and the batch costs one commit (one fsync) instead of one per message.
If the process dies mid-batch nothing is committed and the rows' leases expire: the batch is
replayed from the archive, which is idempotent.
"""

from __future__ import annotations

import hashlib
import logging
import traceback
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property

from sqlalchemy import Engine, insert, select
from sqlalchemy.exc import IntegrityError

from dossiers.deposit import deposit
from dossiers.schema import imports, logical_messages
from normalizers.codes import load_mappings
from normalizers.lab import normalize_message
from normalizers.model import Entry, NormalizationError, NormalizedMessage
from parsers.hl7v2 import HL7ParseError, parse_message
from pipelines.archive import Archive, ArchiveError, open_archive, sha256_hex
from pipelines.identity import resolve_identity
from pipelines.ledger import (
    DEPOSITED,
    DUPLICATE,
    FAILED,
    QUARANTINED,
    Outcome,
    claim_batch,
    now,
    record_outcomes,
)
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

    @cached_property
    def mappings(self):  # noqa: ANN201
        return load_mappings(self.settings.mappings_dir)

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


def process_claimed(ctx: Context, ids: list[int]) -> dict[str, int]:
    """Process rows already claimed by this worker; return counts per outcome status."""
    counts: dict[str, int] = {}
    if not ids:
        return counts
    with ctx.engine.begin() as conn:
        rows = conn.execute(select(imports).where(imports.c.id.in_(ids))
                            .order_by(imports.c.id)).all()
        results: list[tuple[int, Outcome, datetime]] = []
        for row in rows:
            started = now()
            savepoint = conn.begin_nested()
            try:
                outcome = _process_row(ctx, conn, row)
                savepoint.commit()
            except _Stop as stop:
                savepoint.rollback()
                outcome = stop.outcome
            except Exception as exc:  # a bug, not bad input: never a traceback to users
                savepoint.rollback()
                log.error("import %s: internal error %s at\n%s", row.id, type(exc).__name__,
                          "".join(traceback.format_tb(exc.__traceback__)))
                outcome = Outcome(FAILED, stage="internal", error_code="INTERNAL_ERROR",
                                  error_message=f"unexpected {type(exc).__name__} while "
                                  f"processing; see the service log for import {row.id}")
            results.append((row.id, outcome, started))
            counts[outcome.status] = counts.get(outcome.status, 0) + 1
        record_outcomes(conn, results, code_version=CODE_VERSION, trigger=ctx.trigger)
    return counts


def drain(ctx: Context, *, limit: int | None = None, ids: list[int] | None = None) -> dict:
    """Claim and process batches until nothing is left (or ``limit`` batches)."""
    totals: dict[str, int] = {}
    batches = 0
    while limit is None or batches < limit:
        claimed = claim_batch(ctx.engine, limit=ctx.settings.batch_size, worker=ctx.worker,
                              ids=ids)
        if not claimed:
            break
        for status, n in process_claimed(ctx, claimed).items():
            totals[status] = totals.get(status, 0) + n
        batches += 1
    return totals


def _process_row(ctx: Context, conn, row) -> Outcome:  # noqa: ANN001
    try:
        data = ctx.archive.get(row.sha256)
    except ArchiveError as exc:
        raise _Stop(Outcome(FAILED, stage="archive", error_code="ARCHIVE_UNREADABLE",
                            error_message=str(exc))) from None
    if row.format != "hl7v2":
        raise _Stop(_unsupported_format(row.format))

    # Parse
    try:
        msg = parse_message(data, ctx.settings.fallback_charset(row.source))
    except HL7ParseError as exc:
        raise _Stop(Outcome(FAILED, stage="parse", error_code=exc.code,
                            error_message=str(exc), error_location=exc.location)) from None

    # Normalize
    try:
        normalized: NormalizedMessage = normalize_message(msg, row.source, ctx.mappings)
    except NormalizationError as exc:
        raise _Stop(Outcome(FAILED, stage="normalize", error_code=exc.code,
                            error_message=str(exc), error_location=exc.location or None,
                            logical_id=_logical_id(msg))) from None
    warnings = list(msg.warnings) + list(normalized.warnings)
    logical_id = normalized.logical_id
    if normalized.quarantine_reasons:  # e.g. the CDA inside names another patient than PID
        code, _, text = normalized.quarantine_reasons[0].partition(" ")
        raise _Stop(Outcome(QUARANTINED, stage="normalize", error_code=code,
                            error_message=text or code, logical_id=logical_id,
                            warnings=warnings))

    # Identity
    resolution = resolve_identity(conn, normalized.identity,
                                  auto_create=ctx.settings.auto_create)
    warnings += normalized.identity.warnings + (resolution.warnings or [])
    if resolution.patient_id is None:
        raise _Stop(Outcome(QUARANTINED, stage="identity", error_code=resolution.code,
                            error_message=resolution.reason, logical_id=logical_id,
                            warnings=warnings))

    # Dedupe level 2: the same logical message (sender + MSH-10, document id) deposited
    # before with the same content. A sender that reuses a control id for another message
    # (the ANS examples do) is not a duplicate: it is deposited, with a warning.
    items = [(e, sha256_hex(e.attachment.data) if e.attachment is not None else None)
             for e in normalized.entries]  # attachment hashes, computed once
    fingerprint = _fingerprint(items)
    variant = f"{logical_id}#{fingerprint[:16]}"
    held = conn.execute(select(logical_messages).where(
        logical_messages.c.logical_id.in_((logical_id, variant)))).all()
    same = [h for h in held if h.fingerprint == fingerprint and h.import_id != row.id]
    if same:
        raise _Stop(Outcome(DUPLICATE, stage="dedupe", logical_id=logical_id,
                            patient_id=resolution.patient_id, duplicate_of=same[0].import_id,
                            error_message=f"message already deposited by import "
                            f"{same[0].import_id}", warnings=warnings))
    if not any(h.import_id == row.id for h in held):
        if held:
            warnings.append("control id reused by the sender for a message with other "
                            f"content (first deposited by import {held[0].import_id})")
        try:
            with conn.begin_nested():
                conn.execute(insert(logical_messages).values(
                    logical_id=variant if held else logical_id, import_id=row.id,
                    fingerprint=fingerprint))
        except IntegrityError:  # another worker deposited it a moment ago
            raise _Stop(Outcome(DUPLICATE, stage="dedupe", logical_id=logical_id,
                                patient_id=resolution.patient_id,
                                error_message="message already deposited by another import",
                                warnings=warnings)) from None

    # Attachments (embedded documents) go to the archive before the entries point at them.
    blobs = [(sha, entry.attachment.data) for entry, sha in items if sha is not None]
    if blobs:
        ctx.archive.put_many(blobs)

    result = deposit(conn, patient_id=resolution.patient_id, import_id=row.id,
                     source=row.source, items=items)
    if result.missing_targets:
        warnings.append(f"{result.missing_targets} correction(s)/deletion(s) refer to "
                        "entries this dossier does not hold")
    status = DEPOSITED if result.created or not result.duplicates else DUPLICATE
    return Outcome(status, stage="deposit", entries=result.created,
                   duplicates=result.duplicates, patient_id=resolution.patient_id,
                   logical_id=logical_id, warnings=warnings or None)


def _fingerprint(items: list[tuple[Entry, str | None]]) -> str:
    """What the message says, independent of its bytes (line ends, charset, field padding)."""
    digest = hashlib.sha256()
    for e, attachment_sha in items:
        digest.update(repr((e.type, e.key, e.content(), e.replaces_key, attachment_sha or "",
                            sorted(e.masking.items()))).encode())
    return digest.hexdigest()


def _logical_id(msg) -> str | None:  # noqa: ANN001
    control = msg.control_id
    return f"{msg.sender}|{control}" if control else None


def _unsupported_format(fmt: str | None) -> Outcome:
    if fmt in ("cda", "pdf"):
        return Outcome(FAILED, stage="parse", error_code="FORMAT_NOT_SUPPORTED",
                       error_message=f"{fmt.upper()} inputs are archived but not processed by "
                       "this version; rerun the import once it is supported")
    return Outcome(FAILED, stage="parse", error_code="UNKNOWN_FORMAT",
                   error_message="content is neither HL7v2 (MSH/FHS/BHS), CDA "
                   "(ClinicalDocument) nor PDF")
