"""``legal_representatives``: the parents or guardian who read a minor's or a protected adult's
dossier (dossiers/access.py), declared by an admin for a period, revocable.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-26

A new table only: a store upgraded from before has no representative, and every read it
served stays as it was.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def _id() -> sa.types.TypeEngine:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    if sa.inspect(op.get_bind()).has_table("legal_representatives"):  # made by create_all
        return
    op.create_table(
        "legal_representatives",
        sa.Column("id", _id(), autoincrement=True, nullable=False),
        sa.Column("patient_id", _id(), nullable=False),
        sa.Column("subject", sa.String(64), nullable=False),
        sa.Column("family", sa.String(200), nullable=False),
        sa.Column("given", sa.String(200), nullable=True),
        sa.Column("quality", sa.String(40), nullable=False),
        sa.Column("valid_from", sa.String(10), nullable=False),
        sa.Column("valid_until", sa.String(10), nullable=True),
        sa.Column("declared_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("declared_by", sa.String(200), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_by", sa.String(200), nullable=True),
        sa.Column("revoke_reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["patient_id"], ["patients.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_legal_representatives_patient", "legal_representatives",
                    ["patient_id", "subject"])


def downgrade() -> None:
    op.drop_index("ix_legal_representatives_patient", table_name="legal_representatives")
    op.drop_table("legal_representatives")
