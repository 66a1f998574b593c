"""Dossiers merged into another (tombstones), expressed with the schema as it is.

A dossier merged by an identity-vigilance operator (pipelines/dossier_merge.py) stays as a
row of ``patients``, closed (``dmp_status`` FERME: nothing feeds it) and pointed at from the
survivor by one ``patient_identifiers`` row: authority ``MERGED_AUTHORITY``, value the
merged dossier's id, ``patient_id`` the survivor. Why an identifier row rather than a new
column: it needs no migration, the unique (authority, value) says a dossier is merged once,
and when the survivor is merged in its turn its identifiers move, this row with them, so
the old id follows the chain to where its entries are now.
"""

from __future__ import annotations

from sqlalchemy import Connection, Select, cast, select

from dossiers.schema import Id, patient_identifiers

# No sender's assigning authority: an internal URN, never sent in a CX.4 or a CDA @root.
MERGED_AUTHORITY = "urn:dmp-ingest:merged-dossier"
MERGED_TYPE = "MERGED"


def merged_into(conn: Connection, patient_id: int) -> int | None:
    """The dossier that holds what dossier ``patient_id`` held, None when it was not merged."""
    return conn.execute(select(patient_identifiers.c.patient_id).where(
        patient_identifiers.c.authority == MERGED_AUTHORITY,
        patient_identifiers.c.value == str(patient_id))).scalar()


def tombstone_ids() -> Select:
    """The ids of the merged dossiers, as a subquery (``patients.id NOT IN ...``)."""
    return select(cast(patient_identifiers.c.value, Id)).where(
        patient_identifiers.c.authority == MERGED_AUTHORITY)


def pointer_row(survivor_id: int, merged_id: int) -> dict:
    """The identifier row that points from the survivor back to the merged dossier."""
    return {"patient_id": survivor_id, "authority": MERGED_AUTHORITY,
            "value": str(merged_id), "type_code": MERGED_TYPE}
