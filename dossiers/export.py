"""Reads for an export of a dossier: the patient, its current entries, their provenance.

Kept apart from dossiers/fhir.py so that the mapping stays a pure function of rows: the CLI
reads with these, the HTTP API reads with its own access filter, both call ``to_bundle``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from sqlalchemy import Connection, select

from dossiers.merged import MERGED_AUTHORITY
from dossiers.schema import entries, patient_identifiers, patients, provenance
from dossiers.versions import current_versions


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
