"""Quarantined imports that a dossier now exists for: what an operator reruns after
``dossier create``.

A message about a patient without a dossier is quarantined IDENTITY_UNKNOWN_PATIENT (or
IDENTITY_INCOMPLETE); the operator creates the dossier for that INS and then had to find the
quarantined imports by hand. The ledger keeps no identity (no patient data on it), so the
archived bytes are read and normalized again (no database write) and the INS they state is
compared with the dossiers'. A hint only: nothing is filed here; the rerun resolves the
identity with every rule (INS qualified, traits) and decides.

HL7v2 messages and CDA documents only: a scanned PDF's identity is read by OCR, seconds a
page, too slow to redo for every quarantined scan on each ``dossier create``; those are found
as before (``imports list --code IDENTITY_UNKNOWN_PATIENT``).
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


def waiting_for(ctx: Context, patient_ids: list[int]) -> dict[int, list[int]]:
    """patient id -> the quarantined imports (no dossier found) whose message names that
    dossier's INS, oldest first. Dossiers without an INS wait for nothing here."""
    with ctx.engine.connect() as conn:
        by_ins = {r.ins: r.id for r in conn.execute(
            select(patients.c.id, patients.c.ins).where(
                patients.c.id.in_(patient_ids), patients.c.ins.is_not(None)))}
        rows = conn.execute(select(imports).where(
            imports.c.status == QUARANTINED, imports.c.error_code.in_(NO_DOSSIER_CODES),
            imports.c.format.in_(("hl7v2", "cda")))
            .order_by(imports.c.id.desc()).limit(SCAN_LIMIT)).all() if by_ins else []
    found: dict[int, list[int]] = {}
    started = datetime.now(UTC)
    for row in reversed(rows):
        try:
            prepared = _prepare(ctx, row, started)
        except _Stop:  # no longer readable as it was: its rerun will say why
            continue
        normalized = prepared.normalized
        identities = [normalized.identity, *(p.identity for p in normalized.patients or ())]
        named = {i.nir for identity in identities if identity is not None
                 for i in identity.ins if i.key_valid}
        for ins in sorted(named & by_ins.keys()):
            found.setdefault(by_ins[ins], []).append(row.id)
    return found
