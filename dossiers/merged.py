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

from dossiers.schema import Id, audit_log, patient_identifiers

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


# The key of an 'identity.merged' audit row's details listing the patient_identifiers rows of
# the merged patient's identifiers (MRG-1): internal row ids, never an identifier's value.
MERGED_ROWS = "merged_rows"


def identifier_rows(conn: Connection, patient_id: int,
                    named: list[tuple[str, str, str]]) -> dict[int, tuple[str, str]]:
    """{row id: (authority, value)} of dossier ``patient_id``'s identifiers among ``named``
    ((authority, value, unscoped namespace or '') triples: an identifier stored before
    namespace scoping is held under the namespace as sent)."""
    keys = {(a, v) for a, v, _ in named} | {(u, v) for _, v, u in named if u}
    rows = conn.execute(select(patient_identifiers.c.id, patient_identifiers.c.authority,
                               patient_identifiers.c.value).where(
        patient_identifiers.c.patient_id == patient_id,
        patient_identifiers.c.value.in_({v for _, v in keys})))
    return {r.id: (r.authority, r.value) for r in rows if (r.authority, r.value) in keys}


def merged_away_rows(conn: Connection, patient_id: int) -> set[int]:
    """The identifier rows that a hospital's merge (ADT^A40...) named as its merged patient's
    (MRG-1) on this dossier or on a dossier merged into it: identifiers HL7 v2.5 3.3.40 says
    are 'logically never referenced in future transactions' by the hospital.

    Why from the audit rows: the merge records them there already (no migration); an admin's
    dossier merge moves identifier rows to the survivor, ids kept, so the merged dossiers'
    rows are read too."""
    merged = [int(v) for (v,) in conn.execute(select(patient_identifiers.c.value).where(
        patient_identifiers.c.patient_id == patient_id,
        patient_identifiers.c.authority == MERGED_AUTHORITY)) if v.isdigit()]
    rows = conn.execute(select(audit_log.c.details).where(
        audit_log.c.patient_id.in_([patient_id, *merged]),
        audit_log.c.action == "identity.merged"))
    return {int(i) for (d,) in rows if isinstance(d, dict)
            for i in d.get(MERGED_ROWS) or () if isinstance(i, int)}


def named_only_as_merged_away(conn: Connection, patient_id: int,
                              named: list[tuple[str, str, str]]) -> bool:
    """Whether the identifiers of ``named`` that dossier ``patient_id`` holds (at least one)
    are all ones a hospital's merge named as its merged patient's (``merged_away_rows``)."""
    rows = identifier_rows(conn, patient_id, named)
    return bool(rows) and set(rows) <= merged_away_rows(conn, patient_id)
