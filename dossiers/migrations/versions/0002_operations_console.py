"""Operations console (issue 6): retry scheduling, admin assignment/edit/discard, audit log.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25

Tolerant of what ``create_all`` may already have done to a store that predates migrations:
a store created at 0001 and then opened by later code gained ``audit_log`` (create_all makes
missing tables) but not the new ``imports`` columns, so each piece is added only if absent.

SQLite cannot add a foreign key to an existing table with ALTER (alembic would want a
batch copy of ``imports``, which other tables reference), but it can add a column that
carries its own REFERENCES clause: that is what is emitted there.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# name, PostgreSQL type, SQLite column DDL, referenced table (or None)
_COLUMNS = (
    ("not_before", sa.DateTime(timezone=True), "DATETIME", None),
    ("assigned_patient_id", sa.BigInteger(), "INTEGER REFERENCES patients (id)", "patients"),
    ("edited_from", sa.BigInteger(), "INTEGER REFERENCES imports (id)", "imports"),
    ("discard_reason", sa.Text(), "TEXT", None),
)


def _id() -> sa.types.TypeEngine:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    bind = op.get_bind()
    inspector = sa.inspect(bind)
    have = {c["name"] for c in inspector.get_columns("imports")}
    sqlite = bind.dialect.name == "sqlite"
    if "retries" not in have:
        if sqlite:
            op.execute("ALTER TABLE imports ADD COLUMN retries INTEGER NOT NULL DEFAULT 0")
        else:  # the server default fills existing rows, then goes (the code sets it)
            op.add_column("imports", sa.Column("retries", sa.Integer(), nullable=False,
                                               server_default="0"))
            op.alter_column("imports", "retries", server_default=None)
    for name, pg_type, sqlite_ddl, target in _COLUMNS:
        if name in have:
            continue
        if sqlite:
            op.execute(f"ALTER TABLE imports ADD COLUMN {name} {sqlite_ddl}")
            continue
        op.add_column("imports", sa.Column(name, pg_type, nullable=True))
        if target is not None:
            op.create_foreign_key(None, "imports", target, [name], ["id"])
    if not inspector.has_table("audit_log"):
        op.create_table(
            "audit_log",
            sa.Column("id", _id(), autoincrement=True, nullable=False),
            sa.Column("at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("actor", sa.String(length=200), nullable=False),
            sa.Column("action", sa.String(length=40), nullable=False),
            sa.Column("import_id", _id(), nullable=True),
            sa.Column("patient_id", _id(), nullable=True),
            sa.Column("reason", sa.Text(), nullable=True),
            sa.Column("details", sa.JSON(), nullable=True),
            sa.ForeignKeyConstraint(["import_id"], ["imports.id"]),
            sa.ForeignKeyConstraint(["patient_id"], ["patients.id"]),
            sa.PrimaryKeyConstraint("id"),
        )
        op.create_index("ix_audit_import", "audit_log", ["import_id"])
        op.create_index("ix_audit_patient", "audit_log", ["patient_id"])


def downgrade() -> None:
    op.drop_table("audit_log")
    with op.batch_alter_table("imports") as batch:
        for name in ("discard_reason", "edited_from", "assigned_patient_id", "retries",
                     "not_before"):
            batch.drop_column(name)
