"""Which row is the current version of an entry, and which rows are versions of it.

Versions of an HL7v2 report or result share their key. Versions of a CDA document do not:
each version has its own document id (its key), the set (setId) groups them, and the deposit
links each replaced version to its replacement through ``superseded_by``. A result confirmed
unchanged by a new version of its document keeps pointing at the version that brought it;
read by key alone, that parent was 'not current' and the result followed nothing (hidden
from every reader, the patient included) and masking the new version missed it. Both links
are followed here: ``superseded_by`` first, then the key.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Connection, select

from dossiers.schema import entries

_HOPS = 64  # a document replaced more often than this is not a real dossier's
_CHUNK = 500  # bounded IN lists


def _rows(conn: Connection, ids: Iterable[int]) -> dict[int, object]:
    ids = sorted(set(ids))
    found: dict[int, object] = {}
    for start in range(0, len(ids), _CHUNK):
        found.update((r.id, r) for r in conn.execute(
            select(entries).where(entries.c.id.in_(ids[start:start + _CHUNK]))))
    return found


def current_versions(conn: Connection, ids: Iterable[int]) -> dict[int, object]:
    """{id: the row of that entry's current version} for each id that exists: the row itself
    when current, else the end of its ``superseded_by`` chain when that is current, else the
    current row of the same patient and key. A version with no current successor maps to
    itself (not current: the caller's rules hide it)."""
    found = _rows(conn, ids)
    result = dict(found)
    follow = {i: r for i, r in found.items() if not r.current}
    for _ in range(_HOPS):
        nexts = {i: r.superseded_by for i, r in follow.items() if r.superseded_by is not None}
        if not nexts:
            break
        rows = _rows(conn, nexts.values())
        follow = {}
        for i, nxt in nexts.items():
            row = rows.get(nxt)
            if row is None:
                continue
            result[i] = row
            if not row.current:
                follow[i] = row
    stale = {(r.patient_id, r.key) for r in result.values() if not r.current}
    if stale:
        newest = {(r.patient_id, r.key): r for r in conn.execute(select(entries).where(
            entries.c.patient_id.in_({p for p, _ in stale}),
            entries.c.key.in_({k for _, k in stale}), entries.c.current.is_(True)))}
        for i, r in list(result.items()):
            if not r.current and (r.patient_id, r.key) in newest:
                result[i] = newest[(r.patient_id, r.key)]
    return result


def earlier_versions(conn: Connection, ids: Iterable[int]) -> set[int]:
    """The ids of every row replaced, directly or not, by one of ``ids`` (through
    ``superseded_by``), ``ids`` included."""
    return set(versions_of(conn, ids))


def versions_of(conn: Connection, ids: Iterable[int]) -> dict[int, int]:
    """{id of a row, or of a row it replaced directly or not: the id among ``ids`` it leads
    to} (``superseded_by`` walked backwards; each of ``ids`` maps to itself)."""
    owner = {i: i for i in ids}
    frontier = sorted(owner)
    for _ in range(_HOPS):
        if not frontier:
            break
        found: list[int] = []
        for start in range(0, len(frontier), _CHUNK):
            for r in conn.execute(select(entries.c.id, entries.c.superseded_by).where(
                    entries.c.superseded_by.in_(frontier[start:start + _CHUNK]))):
                if r.id not in owner:
                    owner[r.id] = owner[r.superseded_by]
                    found.append(r.id)
        frontier = sorted(found)
    return owner
