"""Quarantined imports that a dossier now exists for: what an operator reruns after
``dossier create``.

A message about a patient without a dossier is quarantined IDENTITY_UNKNOWN_PATIENT (or
IDENTITY_INCOMPLETE); the operator creates the dossier for that INS and then had to find the
quarantined imports by hand. The ledger keeps no identity (no patient data on it), so the
archived bytes are read and normalized again (no database write) and the INS they state is
compared with the dossiers'. A hint only: nothing is filed here; the rerun resolves the
identity with every rule (INS qualified, traits) and decides.

HL7v2 messages and CDA documents only: a scanned PDF's identity is read by OCR, seconds a
page, too slow to redo for every quarantined scan on each ``dossier create``. Those, and the
messages stating no valid INS, are named apart (``scan``): the operator reruns or assigns
them by id.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from dossiers.schema import imports, patients
from pipelines.ledger import QUARANTINED
from pipelines.process import NO_DOSSIER_CODES, Context, _prepare, _Stop

# At most this many quarantined imports are read per question (the most recent first): the
# bytes of each are read and normalized, a bounded cost for a command an operator waits on.
SCAN_LIMIT = 5000
# The formats whose identity is read again here (a PDF's would take OCR).
SEARCHED = ("hl7v2", "cda")


def _quarantined(conn) -> list:  # noqa: ANN001
    """The quarantined imports no dossier was found for, most recent first (bounded)."""
    return conn.execute(select(imports).where(
        imports.c.status == QUARANTINED, imports.c.error_code.in_(NO_DOSSIER_CODES))
        .order_by(imports.c.id.desc()).limit(SCAN_LIMIT)).all()


def _named_ins(ctx: Context, rows: list) -> dict[int, set[str] | None]:
    """import id -> the valid INS its bytes state (empty: none), oldest first; None for a row
    no longer readable as it was (its rerun will say why)."""
    named: dict[int, set[str] | None] = {}
    started = datetime.now(UTC)
    for row in reversed(rows):
        try:
            prepared = _prepare(ctx, row, started)
        except _Stop:
            named[row.id] = None
            continue
        normalized = prepared.normalized
        identities = [normalized.identity, *(p.identity for p in normalized.patients or ())]
        named[row.id] = {i.nir for identity in identities if identity is not None
                         for i in identity.ins if i.key_valid}
    return named


def waiting_for(ctx: Context, patient_ids: list[int]) -> dict[int, list[int]]:
    """patient id -> the quarantined imports (no dossier found) whose message names that
    dossier's INS, oldest first. Dossiers without an INS wait for nothing here."""
    return scan(ctx, patient_ids, unsearched=False)[0]


def scan(ctx: Context, patient_ids: list[int], *,
         unsearched: bool = True) -> tuple[dict[int, list[int]], list[int]]:
    """``waiting_for`` and, in the same pass (each message normalized once), the quarantined
    imports (no dossier found) that it can never attribute, oldest first: scanned PDFs (not
    read again here) and messages or documents that state no valid INS (a local id of an
    unknown authority, demographics only). Why: the advice 'create the dossier, then rerun
    --waiting-for' left those quarantined without a word; the operator is told their ids,
    to rerun or assign them one by one."""
    with ctx.engine.connect() as conn:
        by_ins = {r.ins: r.id for r in conn.execute(
            select(patients.c.id, patients.c.ins).where(
                patients.c.id.in_(patient_ids), patients.c.ins.is_not(None)))}
        rows = _quarantined(conn) if unsearched or by_ins else []
    found: dict[int, list[int]] = {}
    named_by_id = _named_ins(ctx, [r for r in rows if r.format in SEARCHED])
    for import_id, named in named_by_id.items():
        for ins in sorted((named or set()) & by_ins.keys()):
            found.setdefault(by_ins[ins], []).append(import_id)
    if not unsearched:
        return found, []
    unread = [r.id for r in rows if r.format not in SEARCHED]
    return found, sorted(unread + [i for i, ins in named_by_id.items() if ins == set()])
