"""``ix_entries_current`` (patient_id, key, current) goes: ``uq_entry_version`` (patient_id,
key, version) answers every look-up by patient and key (a key has a handful of versions, the
flag is read from the row), and each index more is one b-tree more per entry written: the
filing process spent about 6 % of its CPU on this one (bench/bench_processing.py).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    indexes = {i["name"] for i in sa.inspect(op.get_bind()).get_indexes("entries")}
    if "ix_entries_current" in indexes:
        op.drop_index("ix_entries_current", table_name="entries")


def downgrade() -> None:
    op.create_index("ix_entries_current", "entries", ["patient_id", "key", "current"])
