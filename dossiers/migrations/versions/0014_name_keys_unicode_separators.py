"""Name keys with the Unicode apostrophes and hyphens as separators (``dossiers.names``): the
modifier letter apostrophe (U+02BC), the left quote (U+2018), the Unicode hyphen (U+2010),
non-breaking hyphen (U+2011), the dashes (U+2012-2015), the minus sign (U+2212), the soft
hyphen... were kept in the keys, so 'NʼDIAYE' was keyed 'NʼDIAYE' and never matched the
'NDIAYE' of "N'DIAYE", nor 'MARIE–CLAIRE' (en dash) 'MARIE-CLAIRE'. ``family_key`` and
``birth_family_key`` of every row are recomputed, ``given_key`` (``fold_name`` of the given
names, blanks kept) where the given names hold one of these characters; only the keys that
change are written, rows read by id in batches.

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-27

The folds are copied here, not imported (as in 0006, 0007, 0009): this revision must compute
the same keys whatever dossiers/names.py becomes. Downgrade rekeys with the fold of 0009.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

BATCH = 1000

_SEPARATORS_0009 = re.compile(r"[\s\-'’`.]+")
_SEPARATORS_0014 = re.compile("[\\s\\-\u00ad'\u2018\u2019\u201b`\u02b9\u02bb\u02bc\u2032."
                              "\u2010-\u2015\u2212]+")
_LETTERS = str.maketrans({"Œ": "OE", "œ": "oe", "Æ": "AE", "æ": "ae", "ß": "ss",
                          "Ł": "L", "ł": "l", "Ø": "O", "ø": "o", "Đ": "D", "đ": "d",
                          "Þ": "TH", "þ": "th", "Ħ": "H", "ħ": "h"})

Fold = Callable[[str], str]


def _folds(separators: re.Pattern[str]) -> tuple[Fold, Fold]:
    """(fold_name, name_key) of ``dossiers.names`` with these separators."""
    def fold(name: str) -> str:
        text = unicodedata.normalize("NFKD", name.translate(_LETTERS))
        text = "".join(c for c in text if not unicodedata.combining(c))
        return separators.sub(" ", text).strip().upper()

    def key(name: str) -> str:
        return fold(name).replace(" ", "")
    return fold, key


display_0009, fold_0009 = _folds(_SEPARATORS_0009)
display_0014, fold_0014 = _folds(_SEPARATORS_0014)

_patients = sa.table("patients", sa.column("id", sa.BigInteger()),
                     sa.column("family", sa.String()), sa.column("family_key", sa.String()),
                     sa.column("birth_family", sa.String()),
                     sa.column("birth_family_key", sa.String()),
                     sa.column("given", sa.String()), sa.column("given_key", sa.String()))


def _keys(row: sa.Row, key: Fold, display: Fold) -> tuple[str, str | None, str]:
    """The row's (family_key, birth_family_key, given_key) with these folds. given_key is
    recomputed only where the two revisions fold the given names differently: any other
    row keeps the one it was written with."""
    birth = (key(row.birth_family) or None) if row.birth_family else None
    given = row.given_key
    if display_0009(row.given or "") != display_0014(row.given or ""):
        given = display(row.given or "")
    return key(row.family or ""), birth, given


def rekey(bind: sa.Connection, key: Fold, display: Fold, batch: int) -> int:
    """Set every row's keys with ``key`` and ``display`` (``_keys``); returns how many rows
    changed."""
    p = _patients.c
    read = (sa.select(p.id, p.family, p.family_key, p.birth_family, p.birth_family_key,
                      p.given, p.given_key)
            .where(p.id > sa.bindparam("after")).order_by(p.id).limit(batch))
    write = (sa.update(_patients).where(p.id == sa.bindparam("row_id"))
             .values(family_key=sa.bindparam("key"), birth_family_key=sa.bindparam("birth"),
                     given_key=sa.bindparam("given_k")))
    after, changed = -1, 0
    while True:
        rows = bind.execute(read, {"after": after}).all()
        if not rows:
            return changed
        updates = []
        for r in rows:
            keys = _keys(r, key, display)
            if keys != (r.family_key, r.birth_family_key, r.given_key):
                updates.append({"row_id": r.id, "key": keys[0], "birth": keys[1],
                                "given_k": keys[2]})
        if updates:
            bind.execute(write, updates)
            changed += len(updates)
        after = rows[-1].id


def upgrade() -> None:
    rekey(op.get_bind(), fold_0014, display_0014, BATCH)


def downgrade() -> None:
    rekey(op.get_bind(), fold_0009, display_0009, BATCH)
