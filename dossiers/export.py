"""Reads for an export of a dossier: the patient, its current entries, their provenance.

Kept apart from dossiers/fhir/ so that the mapping stays a pure function of rows: the CLI
reads with these, the HTTP API reads with its own access filter, both call ``to_bundle``.
"""

from __future__ import annotations

import base64
import hashlib
import logging
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence

from sqlalchemy import Connection, select

from dossiers.merged import MERGED_AUTHORITY
from dossiers.schema import entries, patient_identifiers, patients, provenance
from dossiers.versions import current_versions

log = logging.getLogger(__name__)

# sha256 of an archived file -> (base64 SHA-1, size in bytes). The archive is content-addressed:
# the bytes behind one sha256 never change, so what was read once holds for every later
# export (bounded: a long-running API reads many dossiers).
_DIGESTS: dict[str, tuple[str, int]] = {}
_DIGESTS_HELD = 4096
# reads failed in a row after which the archive is taken as down for this export: an S3
# bucket out of reach makes each read wait for its timeouts, and a dossier holds hundreds
# of files
_FAILURES_IN_A_ROW = 3


def load_dossier_rows(conn: Connection, patient_id: int
                      ) -> tuple[Mapping | None, list[Mapping]]:
    """(the patient's row, its current non-withdrawn entries ordered by id), as mappings.
    (None, []) when there is no such patient. Masking is not applied: the caller decides
    who reads what."""
    patient = conn.execute(select(patients).where(patients.c.id == patient_id)).first()
    if patient is None:
        return None, []
    rows = conn.execute(select(entries).where(
        entries.c.patient_id == patient_id, entries.c.current.is_(True),
        entries.c.status != "withdrawn").order_by(entries.c.id)).all()
    return patient._mapping, [r._mapping for r in rows]


def load_patient_identifiers(conn: Connection, patient_id: int) -> list[Mapping]:
    """The patient's local ids (an IPP and its assigning authority) for ``to_bundle``, in
    the order they were learnt; not our pointers to dossiers merged into this one
    (dossiers/merged.py), which name no identifier a sender gave."""
    return [r._mapping for r in conn.execute(select(patient_identifiers).where(
        patient_identifiers.c.patient_id == patient_id,
        patient_identifiers.c.authority != MERGED_AUTHORITY).order_by(
        patient_identifiers.c.id))]


def load_provenance(conn: Connection, entry_ids: Iterable[int],
                    chunk: int = 500) -> dict[int, Sequence[Mapping]]:
    """entry id -> its provenance rows (oldest first), in chunks of ids (bounded IN lists)."""
    ids = sorted(set(entry_ids))
    found: dict[int, list[Mapping]] = {}
    for start in range(0, len(ids), chunk):
        part = ids[start:start + chunk]
        for r in conn.execute(select(provenance).where(provenance.c.entry_id.in_(part))
                              .order_by(provenance.c.id)):
            found.setdefault(r.entry_id, []).append(r._mapping)
    return found


def load_parent_versions(conn: Connection, rows: Sequence[Mapping]) -> dict[int, int]:
    """{id of an earlier version an entry names as its parent: id of that parent's current
    version}, for ``to_bundle(versions=...)``. A result confirmed unchanged by a corrected
    report (a susceptibility panel sent again with one antibiotic corrected) keeps naming the
    version it came with; read as it is, it was linked to nothing in the export."""
    held = {r["id"] for r in rows}
    wanted = {r["parent_id"] for r in rows if r["parent_id"] is not None} - held
    if not wanted:
        return {}
    return {old: row.id for old, row in current_versions(conn, wanted).items()
            if row.id != old and row.current}


def attachment_digests(rows: Sequence[Mapping], read: Callable[[str], bytes],
                       withheld: Collection[int] = ()) -> dict[str, tuple[str, int]]:
    """{sha256 of a document's archived file: (its SHA-1 in base64, its size)}, for
    ``to_bundle(files=...)``: FHIR R4's Attachment.hash is the SHA-1 of the data and .size
    its length, and we hold only the sha256 that names the file in the archive, so the
    bytes are read (``read``: the archive's ``get``). Files withheld from the reader are not
    read (nothing of them is said). A file the archive cannot give now (missing, corrupt,
    the bucket unreachable) is left out: the export still answers, that attachment
    without hash and size; after a few failures in a row the archive is not asked again
    for this export. Logged by entry id, never by content."""
    out: dict[str, tuple[str, int]] = {}
    unread: list[int] = []
    failed = 0
    for row in rows:
        sha = row.get("attachment_sha256")
        if not sha or row.get("id") in withheld or sha in out:
            continue
        found = _DIGESTS.get(sha)
        if found is None:
            if failed >= _FAILURES_IN_A_ROW:
                unread.append(row.get("id"))
                continue
            try:
                data = read(sha)
            except (RuntimeError, OSError):  # the archive's errors (ArchiveError...)
                unread.append(row.get("id"))
                failed += 1
                continue
            failed = 0
            found = (base64.b64encode(hashlib.sha1(data).digest()).decode("ascii"),  # noqa: S324
                     len(data))
            if len(_DIGESTS) >= _DIGESTS_HELD:
                _DIGESTS.clear()
            _DIGESTS[sha] = found
        out[sha] = found
    if unread:
        log.warning("fhir export: file of entries %s not read from the archive: no "
                    "attachment hash", unread[:20])
    return out
