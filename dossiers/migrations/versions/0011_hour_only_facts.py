"""Facts of results timed to the hour rehashed with their hour precision: since identity
round 5 ``dossiers.deposit.fact_of`` keeps a time to the hour as one ('2024-03-15T08+01:00'
-> '2024-03-15T07Z'), where it read it as 08:00 before ('2024-03-15T07:00Z'). The rows filed
before kept the old hash, so the same result sent again by the other channel (a CR-BIO to
the hour after the lab's ORU to the hour) was a second entry: dedupe level 4 missed it.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-27

Only result rows (lab_result, vital_sign) with a fact whose instant (effective, else the
specimen time) is written to the hour are read; a row is rewritten only when its stored fact
is the one the old reading gives (recomputed here from its columns): a fact that cannot be
reproduced (a row written by other code) is left as it is. The hashing is copied here, not
imported (as the folds of 0006-0009): the module may change, this revision must not.
Downgrade writes the old hash back the same way.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

BATCH = 1000
FACT_TYPES = ("lab_result", "vital_sign")
HOUR_ONLY = "/hour"  # the 0011 mark of an hour whose UTC minute is not 0 (offset +05:30)
# an ISO time to the hour: '2024-03-15T08', with an offset or Z after the hour
HOUR_PATTERNS = ("____-__-__T__", "____-__-__T__+%", "____-__-__T__-%", "____-__-__T__Z")

_entries = sa.table("entries", sa.column("id", sa.BigInteger()), sa.column("type", sa.String()),
                    sa.column("system", sa.String()), sa.column("code", sa.String()),
                    sa.column("effective", sa.String()),
                    sa.column("specimen_time", sa.String()),
                    sa.column("comparator", sa.String()), sa.column("value", sa.Text()),
                    sa.column("value_num", sa.Float()), sa.column("unit", sa.String()),
                    sa.column("details", sa.JSON()), sa.column("fact", sa.String()))


def _hour_only(iso: str | None) -> bool:
    return bool(iso) and len(iso) > 10 and (len(iso) == 13 or iso[13] in "+-Z")


def _moment(iso: str) -> tuple[datetime, str] | None:
    try:
        moment = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is not None:
        return moment.astimezone(UTC), "Z"
    return moment, ""


def instant_0010(iso: str) -> str:
    """deposit._instant up to 0010: to the minute, in UTC."""
    found = _moment(iso)
    if found is None:
        return iso
    moment, suffix = found
    return moment.strftime("%Y-%m-%dT%H:%M") + suffix


def instant_0011(iso: str) -> str:
    """deposit._instant from 0011: a time to the hour keeps its precision."""
    found = _moment(iso)
    if found is None:
        return iso
    moment, suffix = found
    if moment.minute == 0:
        return moment.strftime("%Y-%m-%dT%H") + suffix
    return moment.strftime("%Y-%m-%dT%H:%M") + suffix + HOUR_ONLY


def _qualifier_key(qualifier: object) -> str:
    if not isinstance(qualifier, dict):
        return str(qualifier)
    parts = []
    for side in ("name", "value"):
        coded = qualifier.get(side) or {}
        parts.append("\x1d".join(str(coded.get(k, "")) for k in ("system", "code", "text"))
                     if isinstance(coded, dict) else str(coded))
    return "\x1c".join(parts)


def _what_of(details: dict) -> str:
    raw = ""
    parent = details.get("parent_result")
    if parent:
        raw += "\x1f" + "\x1e".join(str(parent.get(k, "")) for k in ("code", "sub_id", "value"))
    isolate = details.get("isolate")
    if isolate:
        raw += "\x1f" + "\x1e".join(str(isolate.get(k, ""))
                                     for k in ("system", "code", "id", "text"))
    site = details.get("target_site")
    if isinstance(site, dict) and site.get("code"):
        raw += "\x1f" + "\x1e".join((str(site.get("system", "")), str(site["code"]),
                                      *map(str, site.get("qualifiers") or ())))
    group = details.get("group")
    if isinstance(group, dict) and (group.get("code") or group.get("text")):
        raw += "\x1fgroup\x1e" + "\x1e".join(
            (str(group.get("system", "")), str(group.get("code") or group.get("text")),
             *map(_qualifier_key, group.get("qualifiers") or ())))
    for key in ("code_qualifiers", "value_qualifiers"):
        qualifiers = details.get(key)
        if qualifiers:
            raw += "\x1f" + key + "\x1e" + "\x1e".join(map(_qualifier_key, qualifiers))
    return raw


def fact(row, instant: Callable[[str], str]) -> str | None:  # noqa: ANN001
    """deposit.fact_of of a stored result row, its instant read with ``instant``."""
    when = instant(row.effective or row.specimen_time)
    value = repr(row.value_num) if row.value_num is not None else (row.value or "").strip()
    if not when or not value or not row.code:
        return None
    raw = "\x1f".join((row.type, row.system or "", row.code, when, row.comparator or "", value,
                       row.unit or ""))
    raw += _what_of(row.details if isinstance(row.details, dict) else {})
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


def rehash(bind: sa.Connection, was: Callable[[str], str], becomes: Callable[[str], str],
           batch: int = BATCH) -> int:
    """Rewrite the fact of every result row to the hour whose stored fact is ``was``'s as
    ``becomes``'s; returns how many rows changed."""
    e = _entries.c
    timed = sa.or_(*(e.effective.like(p) for p in HOUR_PATTERNS),
                   sa.and_(e.effective.is_(None),
                           sa.or_(*(e.specimen_time.like(p) for p in HOUR_PATTERNS))))
    read = (sa.select(_entries).where(e.id > sa.bindparam("after"), e.type.in_(FACT_TYPES),
                                      e.fact.is_not(None), timed)
            .order_by(e.id).limit(batch))
    write = sa.update(_entries).where(e.id == sa.bindparam("row_id")).values(
        fact=sa.bindparam("new_fact"))
    after, changed = -1, 0
    while True:
        rows = bind.execute(read, {"after": after}).all()
        if not rows:
            return changed
        updates = [{"row_id": r.id, "new_fact": fact(r, becomes)} for r in rows
                   if _hour_only(r.effective or r.specimen_time) and r.fact == fact(r, was)]
        if updates:
            bind.execute(write, updates)
            changed += len(updates)
        after = rows[-1].id


def upgrade() -> None:
    rehash(op.get_bind(), instant_0010, instant_0011)


def downgrade() -> None:
    rehash(op.get_bind(), instant_0011, instant_0010)
