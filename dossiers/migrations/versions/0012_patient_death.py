"""The patient's death on ``patients``: deceased (indicator), deceased_at (date/time with
its precision), death_stated_at (what orders the statements), death_import_id and
death_trigger (which import and ADT trigger stated it). dossiers/death.py.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-27

Nullable columns only, no index: a store upgraded from before holds no death (None: never
stated), and every read it served stays as it was. A store created at head by create_all before
migrations is stamped 0001 then upgraded: a column already there is left as it is.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

COLUMNS = ("deceased", "deceased_at", "death_stated_at", "death_import_id", "death_trigger")


def _columns() -> list[sa.Column]:
    return [sa.Column("deceased", sa.Boolean(), nullable=True),
            sa.Column("deceased_at", sa.String(length=40), nullable=True),
            sa.Column("death_stated_at", sa.DateTime(timezone=True), nullable=True),
            sa.Column("death_import_id",
                      sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
            sa.Column("death_trigger", sa.String(length=8), nullable=True)]


def upgrade() -> None:
    held = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("patients")}
    for column in _columns():
        if column.name not in held:
            op.add_column("patients", column)


def downgrade() -> None:
    # Not batch mode on SQLite: it copies the table, and dropping the old ``patients`` fails
    # its foreign keys (imports, entries... point at it) while they are enforced. SQLite
    # drops a column in place since 3.35 (2021).
    bind = op.get_bind()
    for name in reversed(COLUMNS):
        if bind.dialect.name == "sqlite":
            op.execute(sa.text(f"ALTER TABLE patients DROP COLUMN {name}"))
        else:
            op.drop_column("patients", name)
