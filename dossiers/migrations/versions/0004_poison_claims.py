"""Poison messages (issue 9): ``imports.claims`` counts the times a row was taken by a worker
since its last recorded outcome.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    if "claims" in {c["name"] for c in sa.inspect(bind).get_columns("imports")}:
        return
    if bind.dialect.name == "sqlite":
        op.execute("ALTER TABLE imports ADD COLUMN claims INTEGER NOT NULL DEFAULT 0")
    else:  # the server default fills existing rows, then goes (the code sets it)
        op.add_column("imports", sa.Column("claims", sa.Integer(), nullable=False,
                                           server_default="0"))
        op.alter_column("imports", "claims", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("imports") as batch:
        batch.drop_column("claims")
