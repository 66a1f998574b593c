"""The patient's oppositions to emergency access on ``patients`` (break_glass_opposed,
regulation_opposed), and ``audit_heads``: each audit chain's last seq and hash, the anchor
``audit verify`` checks the chain's end against (dossiers/audit.py).

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-27

Nullable columns (None: never stated, not opposed): every read a store upgraded from before
served stays as it was. ``audit_heads`` is filled from the chains already there, so that a
store upgraded verifies intact, and from then on a deletion of a chain's last rows is found
(what was deleted before the upgrade cannot be: the anchor starts at the upgrade). A store
created at head by create_all before migrations is stamped 0001 then upgraded: what is
already there is left as it is.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

COLUMNS = ("break_glass_opposed", "regulation_opposed")


def _id() -> sa.types.TypeEngine:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    bind = op.get_bind()
    inspector = sa.inspect(bind)
    held = {c["name"] for c in inspector.get_columns("patients")}
    for name in COLUMNS:
        if name not in held:
            op.add_column("patients", sa.Column(name, sa.Boolean(), nullable=True))
    if inspector.has_table("audit_heads"):  # made by create_all
        return
    op.create_table(
        "audit_heads",
        sa.Column("chain", _id(), autoincrement=False, nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("chain"),
    )
    # each chain's last row, as it stands: the anchor begins here
    op.execute(sa.text(
        "INSERT INTO audit_heads (chain, seq, hash) SELECT a.chain, a.seq, a.hash"
        " FROM audit_log a JOIN (SELECT chain, MAX(seq) AS seq FROM audit_log"
        " WHERE chain IS NOT NULL AND hash IS NOT NULL GROUP BY chain) last"
        " ON a.chain = last.chain AND a.seq = last.seq"))


def downgrade() -> None:
    op.drop_table("audit_heads")
    # Not batch mode on SQLite (see 0012): it drops a column in place since 3.35
    bind = op.get_bind()
    for name in reversed(COLUMNS):
        if bind.dialect.name == "sqlite":
            op.execute(sa.text(f"ALTER TABLE patients DROP COLUMN {name}"))
        else:
            op.drop_column("patients", name)
