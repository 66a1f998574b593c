"""Name keys with the letters Unicode does not decompose folded to their plain letter (Ł, Ø,
Đ, Þ, Ħ: ``dossiers.names``): 'Wałęsa' was keyed 'WAŁESA' and never matched 'WALESA', the
INS traits' spelling that laboratories send. ``family_key`` and ``birth_family_key`` of every
row are recomputed; only the keys that change are written.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-26

The folds are copied here, not imported (as in 0006, 0007). Downgrade rekeys with the fold
of 0007.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

BATCH = 1000

_SEPARATORS = re.compile(r"[\s\-'’`.]+")
_LIGATURES_0007 = {"Œ": "OE", "œ": "oe", "Æ": "AE", "æ": "ae", "ß": "ss"}
_LETTERS_0009 = {"Ł": "L", "ł": "l", "Ø": "O", "ø": "o", "Đ": "D", "đ": "d", "Þ": "TH",
                 "þ": "th", "Ħ": "H", "ħ": "h"}


def _fold(table: dict[int, str]) -> Callable[[str], str]:
    def key(name: str) -> str:
        text = unicodedata.normalize("NFKD", name.translate(table))
        text = "".join(c for c in text if not unicodedata.combining(c))
        return _SEPARATORS.sub(" ", text).strip().upper().replace(" ", "")
    return key


fold_0007 = _fold(str.maketrans(_LIGATURES_0007))
fold_0009 = _fold(str.maketrans({**_LIGATURES_0007, **_LETTERS_0009}))

_patients = sa.table("patients", sa.column("id", sa.BigInteger()),
                     sa.column("family", sa.String()), sa.column("family_key", sa.String()),
                     sa.column("birth_family", sa.String()),
                     sa.column("birth_family_key", sa.String()))


def rekey(bind: sa.Connection, fold: Callable[[str], str], batch: int) -> int:
    """Set every row's family_key and birth_family_key with ``fold``; returns how many rows
    changed."""
    p = _patients.c
    read = (sa.select(p.id, p.family, p.family_key, p.birth_family, p.birth_family_key)
            .where(p.id > sa.bindparam("after")).order_by(p.id).limit(batch))
    write = (sa.update(_patients).where(p.id == sa.bindparam("row_id"))
             .values(family_key=sa.bindparam("key"), birth_family_key=sa.bindparam("birth")))
    after, changed = -1, 0
    while True:
        rows = bind.execute(read, {"after": after}).all()
        if not rows:
            return changed
        updates = []
        for r in rows:
            key = fold(r.family or "")
            birth = (fold(r.birth_family) or None) if r.birth_family else None
            if (key, birth) != (r.family_key, r.birth_family_key):
                updates.append({"row_id": r.id, "key": key, "birth": birth})
        if updates:
            bind.execute(write, updates)
            changed += len(updates)
        after = rows[-1].id


def upgrade() -> None:
    rekey(op.get_bind(), fold_0009, BATCH)


def downgrade() -> None:
    rekey(op.get_bind(), fold_0007, BATCH)
