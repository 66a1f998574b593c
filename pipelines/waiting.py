"""Quarantined imports that a dossier now exists for: what an operator reruns after
``dossier create``, an ADT teaching a patient's IPP, or any change that gives a waiting
message a dossier.

A message about a patient without a dossier is quarantined IDENTITY_UNKNOWN_PATIENT (or
IDENTITY_INCOMPLETE); once the dossier exists the operator had to find the quarantined
imports by hand. The ledger keeps no identity (no patient data on it), so the archived bytes
are read and normalized again (no database write) and the identifiers they state are looked
up as the identity resolution looks them up: the INS, and the local identifiers (PID-3 IPP)
with their assigning authority scoped to the source or facility as the resolution scopes it
(``normalizers.identity``: a lab's 'CHU' 4711 is not another facility's 'CHU' 4711, unless
the source declares the namespace shared). A hint only: nothing is filed here; the rerun
resolves the identity with every rule (INS qualified, traits, conflicts) and decides.

HL7v2 messages and CDA documents only: a scanned PDF's identity is read by OCR, seconds a
page, too slow to redo for every quarantined scan on each question. Those, and the messages
that state no valid INS (a dossier made by hand holds no IPP to match), are named apart
(``scan``): the operator checks them and reruns or assigns them by id.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import Connection, select

from dossiers.schema import imports, patient_identifiers, patients
from normalizers.model import PatientIdentity
from pipelines.identity import BatchLookup, local_id_matches
from pipelines.ledger import QUARANTINED, ImportFilter, where_filter
from pipelines.process import NO_DOSSIER_CODES, Context, _prepare, _Stop
from pipelines.report import list_import_ids

# At most this many quarantined imports are read per question (the most recent first): the
# bytes of each are read and normalized, a bounded cost for a command an operator waits on.
SCAN_LIMIT = 5000
# Identities looked up together (one BatchLookup: a few queries for all of them), so that a
# scan of SCAN_LIMIT imports neither holds them all nor binds thousands of values at once.
LOOKUP_CHUNK = 500
# The formats whose identity is read again here (a scanned PDF's would take OCR).
SEARCHED = ("hl7v2", "cda")


@dataclass(slots=True)
class Resolvable:
    """What a scan found: import id -> the dossiers its identity now names (oldest import
    first); how many quarantined imports were read; whether older ones were left unread
    (more than SCAN_LIMIT: the operator narrows the question with a filter)."""

    found: dict[int, list[int]] = field(default_factory=dict)
    scanned: int = 0
    truncated: bool = False
    # read, named no dossier, and state no valid INS: no dossier made by hand will name them
    without_ins: list[int] = field(default_factory=list)


def waiting_for(ctx: Context, patient_ids: list[int]) -> dict[int, list[int]]:
    """patient id -> the quarantined imports (no dossier found) whose message names that
    dossier's INS or one of its local identifiers, oldest first. A dossier with neither
    waits for nothing here."""
    with ctx.engine.connect() as conn:
        if not _named_at_all(conn, patient_ids):
            return {}
    wanted = set(patient_ids)
    waiting: dict[int, list[int]] = {}
    for import_id, dossiers in resolvable_imports(ctx).found.items():
        for pid in sorted(set(dossiers) & wanted):
            waiting.setdefault(pid, []).append(import_id)
    return waiting


def _named_at_all(conn: Connection, patient_ids: list[int]) -> bool:
    """Whether any of these dossiers holds an INS or a local identifier: without one, no
    message can name it and the archive is not read."""
    if not patient_ids:
        return False
    with_ins = select(patients.c.id).where(patients.c.id.in_(patient_ids),
                                           patients.c.ins.is_not(None)).limit(1)
    with_ids = select(patient_identifiers.c.id).where(
        patient_identifiers.c.patient_id.in_(patient_ids)).limit(1)
    return conn.execute(with_ins).first() is not None or \
        conn.execute(with_ids).first() is not None


def resolvable_imports(ctx: Context, flt: ImportFilter | None = None) -> Resolvable:
    """The quarantined imports (no dossier found, HL7v2 or CDA; ``flt`` narrows them) whose
    message now names a dossier by its INS or a local identifier: at most the SCAN_LIMIT
    most recent are read."""
    query = select(imports).where(
        imports.c.status == QUARANTINED, imports.c.error_code.in_(NO_DOSSIER_CODES),
        imports.c.format.in_(SEARCHED))
    if flt is not None:
        query = where_filter(query, flt)
    with ctx.engine.connect() as conn:
        rows = conn.execute(query.order_by(imports.c.id.desc()).limit(SCAN_LIMIT + 1)).all()
    result = Resolvable(truncated=len(rows) > SCAN_LIMIT)
    rows = list(reversed(rows[:SCAN_LIMIT]))
    result.scanned = len(rows)
    started = datetime.now(UTC)
    for start in range(0, len(rows), LOOKUP_CHUNK):
        named = [(row.id, _identities(ctx, row, started))
                 for row in rows[start:start + LOOKUP_CHUNK]]
        result.found.update(_dossiers_named(ctx, [n for n in named if n[1]]))
        # (no identity read at all: no longer readable as it was; its rerun will say why)
        result.without_ins += [import_id for import_id, identities in named
                               if identities and import_id not in result.found
                               and not any(i.key_valid for identity in identities
                                           for i in identity.ins)]
    return result


def scan(ctx: Context, patient_ids: list[int]) -> tuple[dict[int, list[int]], list[int]]:
    """``waiting_for`` and, in the same pass (each message normalized once), the quarantined
    imports (no dossier found) that it cannot attribute, oldest first: scanned PDFs (not
    read again here) and messages or documents that name no dossier and state no valid INS
    (a local id no dossier holds yet, demographics only). Why: the advice 'create the
    dossier, then rerun --waiting-for' left those quarantined without a word; the operator
    is told their ids, to check and rerun or assign them one by one."""
    result = resolvable_imports(ctx)
    wanted = set(patient_ids)
    waiting: dict[int, list[int]] = {}
    for import_id, dossiers in result.found.items():
        for pid in sorted(set(dossiers) & wanted):
            waiting.setdefault(pid, []).append(import_id)
    with ctx.engine.connect() as conn:
        scans = list(conn.scalars(select(imports.c.id).where(
            imports.c.status == QUARANTINED, imports.c.error_code.in_(NO_DOSSIER_CODES),
            imports.c.format.not_in(SEARCHED)).order_by(imports.c.id.desc())
            .limit(SCAN_LIMIT)))
    return waiting, sorted(scans + result.without_ins)


def _identities(ctx: Context, row, started: datetime) -> list[PatientIdentity]:  # noqa: ANN001
    """The identities an archived message states (one per patient it is about); none when
    it no longer reads as it did (its rerun will say why)."""
    try:
        normalized = _prepare(ctx, row, started).normalized
    except _Stop:
        return []
    return [i for i in (normalized.identity, *(p.identity for p in normalized.patients or ()))
            if i is not None]


def _dossiers_named(ctx: Context, named: list[tuple[int, list[PatientIdentity]]]
                    ) -> dict[int, list[int]]:
    """import id -> the dossiers its identities name: by an INS with a valid key, or by a
    local identifier as ``resolve_identity`` looks it up (``local_id_matches``)."""
    found: dict[int, list[int]] = {}
    with ctx.engine.connect() as conn:
        lookup = BatchLookup(conn, [i for _, identities in named for i in identities])
        for import_id, identities in named:
            dossiers: set[int] = set()
            for identity in identities:
                dossiers |= {p.id for i in identity.ins if i.key_valid
                             if (p := lookup.by_ins(i.nir)) is not None}
                dossiers |= local_id_matches(lookup, identity)
            if dossiers:
                found[import_id] = sorted(dossiers)
    return found


def resolvable_listing(ctx: Context, flt: ImportFilter | None = None, *, sort: str = "-id",
                       limit: int = 200, offset: int = 0) -> dict:
    """``imports list --resolvable``: a page of the quarantined imports whose identity now
    names a dossier, each with ``dossiers`` (their ids: what the listing shows of the
    patient, no more), ``total``, and ``scanned``/``truncated``: how many were read, and
    whether older ones were left unread (SCAN_LIMIT). ValueError for an unknown sort key."""
    found = resolvable_imports(ctx, flt)
    rows = list_import_ids(ctx.engine, list(found.found), sort=sort, limit=limit,
                           offset=offset)
    for row in rows:
        row["dossiers"] = found.found[row["id"]]
    return {"imports": rows, "offset": offset, "limit": limit, "total": len(found.found),
            "scanned": found.scanned, "truncated": found.truncated}
