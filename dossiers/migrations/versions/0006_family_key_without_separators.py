"""``patients.family_key`` without separators: 'D'ARTAGNAN' was keyed 'D ARTAGNAN' and never
matched 'DARTAGNAN' sent by a laboratory system that drops apostrophes, hyphens and blanks
(fixed-width fields); every row is rekeyed with the new fold (``dossiers.names.name_key``).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26

The folds are copied here, not imported: this revision must compute the same keys whatever
dossiers/names.py becomes. Rows are read by id in batches and only the keys that change are
written. Downgrade rekeys with the previous fold.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

BATCH = 1000

_SEPARATORS = re.compile(r"[\s\-'’`.]+")
_LIGATURES = str.maketrans({"Œ": "OE", "œ": "oe", "Æ": "AE", "æ": "ae", "ß": "ss"})


def fold_0005(name: str) -> str:
    """The key up to 0005: accents, case and ligatures folded, separators as one blank."""
    text = unicodedata.normalize("NFKD", name.translate(_LIGATURES))
    text = "".join(c for c in text if not unicodedata.combining(c))
    return _SEPARATORS.sub(" ", text).strip().upper()


def fold_0006(name: str) -> str:
    """The key from 0006: the same, separators removed."""
    return fold_0005(name).replace(" ", "")


_patients = sa.table("patients", sa.column("id", sa.BigInteger()),
                     sa.column("family", sa.String()), sa.column("family_key", sa.String()))


def rekey(bind: sa.Connection, fold: Callable[[str], str], batch: int) -> int:
    """Set every row's family_key to ``fold(family)``; returns how many rows changed."""
    read = (sa.select(_patients.c.id, _patients.c.family, _patients.c.family_key)
            .where(_patients.c.id > sa.bindparam("after")).order_by(_patients.c.id)
            .limit(batch))
    write = (sa.update(_patients).where(_patients.c.id == sa.bindparam("row_id"))
             .values(family_key=sa.bindparam("key")))
    after, changed = -1, 0
    while True:
        rows = bind.execute(read, {"after": after}).all()
        if not rows:
            return changed
        keys = [(r, fold(r.family or "")) for r in rows]
        updates = [{"row_id": r.id, "key": key} for r, key in keys if key != r.family_key]
        if updates:
            bind.execute(write, updates)
            changed += len(updates)
        after = rows[-1].id


def upgrade() -> None:
    rekey(op.get_bind(), fold_0006, BATCH)


def downgrade() -> None:
    rekey(op.get_bind(), fold_0005, BATCH)
