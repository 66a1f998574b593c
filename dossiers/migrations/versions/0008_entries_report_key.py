"""``ix_entries_report_key``: the key of documents and lab reports, across dossiers, so that a
correction or cancel whose original another dossier holds is found (dossiers/elsewhere.py)
and quarantined rather than filed as a tombstone while the original stays current there.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26

Partial (type 'lab_report' or 'document'): results, nine entries in ten, are not indexed
again (each index more is one b-tree more per entry written; see 0005).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

PREDICATE = "type IN ('lab_report', 'document')"


def upgrade() -> None:
    indexes = {i["name"] for i in sa.inspect(op.get_bind()).get_indexes("entries")}
    if "ix_entries_report_key" not in indexes:  # a store made at head by create_all
        op.create_index("ix_entries_report_key", "entries", ["key"],
                        sqlite_where=sa.text(PREDICATE), postgresql_where=sa.text(PREDICATE))


def downgrade() -> None:
    op.drop_index("ix_entries_report_key", table_name="entries")
