"""Corrections whose original lies in another dossier than the one they resolve to.

A cancel or a correction (HL7v2 OBX-11 D, W, C; MDM^T10/T11; a CDA whose relatedDocument
RPLC names its parent) acts on what the dossier holds under the key it names. When the
dossier its identity resolves to does not hold that key but another dossier does, filing it
would leave the original current in the other dossier (a result the laboratory withdrew
still shown, a document replaced still current) and put a tombstone or a lone new version in
this one. A DMP does not act across dossiers either (a replacement must name a document of
the same patient). So the caller quarantines it, naming the import that filed the original,
and an operator decides (assign it to one dossier, or correct the identity, and rerun).

Which keys are looked up across dossiers: the documents (``document|<id>``: a CDA id, a
document number) and the lab reports a result hangs from (``report|<order>|<namespace>|...``):
the partial index ``ix_entries_report_key`` holds those two types only, a tenth of the
entries, so that looking up a key across dossiers costs one index probe without a b-tree
more per result written. A report key without the order number's namespace (filed before
bare numbers were scoped by their sender, normalizers.lab.order_scope) is not looked up: two
laboratories may number their orders alike. An original withdrawn in the other
dossier (a document deleted there because it was sent to the wrong patient) holds nothing to
act on: the new version is filed in its own dossier.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, bindparam, text

from normalizers.model import ACTION_DELETE, ACTION_REPLACE, DOCUMENT, Entry

# The types ``ix_entries_report_key`` holds: the predicate is written out as the index's,
# so that both SQLite and PostgreSQL use the partial index.
INDEXED_TYPES = "type IN ('lab_report', 'document')"
_ACTING = (ACTION_REPLACE, ACTION_DELETE)  # the actions that name an original
_HOLDERS = (text(f"SELECT patient_id, key, import_id FROM entries WHERE {INDEXED_TYPES} "
                "AND key IN :keys AND current AND status <> 'withdrawn'")
            .bindparams(bindparam("keys", expanding=True)))


@dataclass(frozen=True, slots=True)
class Elsewhere:
    """A correction (``where``: its place in the message) whose original another dossier
    (``patient_id``) holds, filed there by import ``import_id``."""

    where: str
    patient_id: int
    import_id: int


def named_keys(entry: Entry) -> set[str]:
    """The indexed keys a correction or cancel acts on: the document it replaces or
    deletes, or the report (order) of the result it corrects. Empty for anything else."""
    if entry.action not in _ACTING:
        return set()
    keys = {entry.replaces_key or entry.key}
    if entry.type != DOCUMENT and entry.parent_key:
        keys.add(entry.parent_key)
    return {k for k in keys if k.startswith("document|") or _report_with_namespace(k)}


def _report_with_namespace(key: str) -> bool:
    parts = key.split("|")
    return parts[0] == "report" and len(parts) > 2 and bool(parts[2])


def originals_elsewhere(conn: Connection, patient_id: int,
                        items: Sequence[tuple[Entry, str | None]]) -> list[Elsewhere]:
    """The corrections of ``items`` (one message's, for dossier ``patient_id``) none of whose
    named keys this dossier holds while another dossier does; one per correction."""
    if not any(entry.action in _ACTING for entry, _ in items):
        return []  # nothing corrected nor cancelled (most messages): no key set built
    wanted = {id(entry): named_keys(entry) for entry, _ in items}
    keys = sorted(set().union(*wanted.values())) if wanted else []
    if not keys:
        return []
    holders: dict[str, list] = {}
    for row in conn.execute(_HOLDERS, {"keys": keys}):
        holders.setdefault(row.key, []).append(row)
    found: list[Elsewhere] = []
    for entry, _ in items:
        rows = [r for k in wanted[id(entry)] for r in holders.get(k, ())]
        if not rows or any(r.patient_id == patient_id for r in rows):
            continue
        other = min(rows, key=lambda r: r.import_id)
        found.append(Elsewhere(entry.source_ref, other.patient_id, other.import_id))
    return found
