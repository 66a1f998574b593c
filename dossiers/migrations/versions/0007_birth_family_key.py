"""``patients.birth_family_key``: the matching key of the birth name (nom de naissance), indexed
with the birth date and sex as ``family_key`` is, so that a message naming a woman by her
birth name alone (the INS traits are the birth name; many laboratories send only that) finds
the dossier created under her used name (nom d'usage). Matched on ``family_key`` only, it
found no dossier, and was quarantined or, with auto-creation, made her a second one.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26

The fold is copied here, not imported (as in 0006): this revision must compute the same keys
whatever dossiers/names.py becomes. NULL where no birth name is held. Rows are read by id in
batches; downgrade drops the index and the column.
"""

from __future__ import annotations

import re
import unicodedata

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

BATCH = 1000

_SEPARATORS = re.compile(r"[\s\-'’`.]+")
_LIGATURES = str.maketrans({"Œ": "OE", "œ": "oe", "Æ": "AE", "æ": "ae", "ß": "ss"})


def fold_0007(name: str) -> str:
    """The key of 0006 (``family_key``): accents, case, ligatures folded, separators removed."""
    text = unicodedata.normalize("NFKD", name.translate(_LIGATURES))
    text = "".join(c for c in text if not unicodedata.combining(c))
    return _SEPARATORS.sub(" ", text).strip().upper().replace(" ", "")


_patients = sa.table("patients", sa.column("id", sa.BigInteger()),
                     sa.column("birth_family", sa.String()),
                     sa.column("birth_family_key", sa.String()))


def fill(bind: sa.Connection, batch: int) -> int:
    """Key every row holding a birth name; returns how many rows were written."""
    read = (sa.select(_patients.c.id, _patients.c.birth_family)
            .where(_patients.c.id > sa.bindparam("after"), _patients.c.birth_family.is_not(None))
            .order_by(_patients.c.id).limit(batch))
    write = (sa.update(_patients).where(_patients.c.id == sa.bindparam("row_id"))
             .values(birth_family_key=sa.bindparam("key")))
    after, written = -1, 0
    while True:
        rows = bind.execute(read, {"after": after}).all()
        if not rows:
            return written
        updates = [{"row_id": r.id, "key": fold_0007(r.birth_family) or None} for r in rows]
        bind.execute(write, updates)
        written += len(updates)
        after = rows[-1].id


def upgrade() -> None:
    bind = op.get_bind()
    inspector = sa.inspect(bind)
    # a store created at head by create_all before migrations is stamped 0001, then
    # upgraded: the column and index may be there already (as in 0002, 0004)
    if "birth_family_key" not in {c["name"] for c in inspector.get_columns("patients")}:
        op.add_column("patients", sa.Column("birth_family_key", sa.String(length=200),
                                            nullable=True))
    fill(bind, BATCH)
    if "ix_patients_birth_demo" not in {i["name"] for i in inspector.get_indexes("patients")}:
        op.create_index("ix_patients_birth_demo", "patients",
                        ["birth_family_key", "birth_date", "sex"])


def downgrade() -> None:
    op.drop_index("ix_patients_birth_demo", table_name="patients")
    with op.batch_alter_table("patients") as batch:
        batch.drop_column("birth_family_key")
