"""``authorizations.valid_until``: the first day (ISO calendar day, in France) on which a
professional's authorisation to read a dossier no longer holds (dossiers/access.py).

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-27

A nullable column, no index: an authorisation granted before the upgrade has no end (None:
until revoked, as before), and every read a store upgraded from before served stays as it
was. A store created at head by create_all before migrations is stamped 0001 then upgraded:
a column already there is left as it is.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    held = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("authorizations")}
    if "valid_until" not in held:
        op.add_column("authorizations",
                      sa.Column("valid_until", sa.String(length=10), nullable=True))


def downgrade() -> None:
    # Not batch mode on SQLite (see 0012): it drops a column in place since 3.35
    if op.get_bind().dialect.name == "sqlite":
        op.execute(sa.text("ALTER TABLE authorizations DROP COLUMN valid_until"))
    else:
        op.drop_column("authorizations", "valid_until")
