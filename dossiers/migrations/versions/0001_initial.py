"""The store as first deployed: ledger, attempts, logical messages, patients, entries, provenance.

Revision ID: 0001
Revises:
Create Date: 2026-11-25

Frozen copy of ``dossiers/schema.py`` as of commit b503373 (before the operations console):
a revision never imports the live schema, which keeps changing.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _id() -> sa.types.TypeEngine:
    """BigInteger ids on PostgreSQL, plain INTEGER (rowid alias) on SQLite."""
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table('patients',
        sa.Column('id', _id(), autoincrement=True, nullable=False),
        sa.Column('ins', sa.String(length=15), nullable=True),
        sa.Column('ins_oid', sa.String(length=40), nullable=True),
        sa.Column('family', sa.String(length=200), nullable=False),
        sa.Column('given', sa.String(length=200), nullable=False),
        sa.Column('birth_family', sa.String(length=200), nullable=True),
        sa.Column('birth_date', sa.String(length=10), nullable=False),
        sa.Column('sex', sa.String(length=1), nullable=False),
        sa.Column('family_key', sa.String(length=200), nullable=False),
        sa.Column('given_key', sa.String(length=200), nullable=False),
        sa.Column('opposed', sa.Boolean(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('created_by', sa.String(length=40), nullable=True),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('ins')
    )
    op.create_index('ix_patients_demo', 'patients', ['family_key', 'birth_date', 'sex'])
    op.create_table('imports',
        sa.Column('id', _id(), autoincrement=True, nullable=False),
        sa.Column('source', sa.String(length=200), nullable=False),
        sa.Column('channel', sa.String(length=20), nullable=False),
        sa.Column('peer', sa.String(length=200), nullable=True),
        sa.Column('file_name', sa.String(length=500), nullable=True),
        sa.Column('part', sa.Integer(), nullable=True),
        sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('sha256', sa.String(length=64), nullable=False),
        sa.Column('size', sa.BigInteger(), nullable=False),
        sa.Column('format', sa.String(length=20), nullable=True),
        sa.Column('logical_id', sa.String(length=400), nullable=True),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('stage', sa.String(length=20), nullable=True),
        sa.Column('error_code', sa.String(length=60), nullable=True),
        sa.Column('error_message', sa.Text(), nullable=True),
        sa.Column('error_location', sa.String(length=500), nullable=True),
        sa.Column('warnings', sa.JSON(), nullable=True),
        sa.Column('entries_count', sa.Integer(), nullable=False),
        sa.Column('duplicates_count', sa.Integer(), nullable=False),
        sa.Column('patient_id', _id(), nullable=True),
        sa.Column('duplicate_of', _id(), nullable=True),
        sa.Column('batch_of', _id(), nullable=True),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('claimed_by', sa.String(length=100), nullable=True),
        sa.Column('claimed_until', sa.DateTime(timezone=True), nullable=True),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['batch_of'], ['imports.id'], ),
        sa.ForeignKeyConstraint(['duplicate_of'], ['imports.id'], ),
        sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], ),
        sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_imports_logical', 'imports', ['logical_id'])
    op.create_index('ix_imports_patient', 'imports', ['patient_id'])
    op.create_index('ix_imports_source_sha', 'imports', ['source', 'sha256'])
    op.create_index('ix_imports_status', 'imports', ['status', 'id'])
    op.create_table('patient_identifiers',
        sa.Column('id', _id(), autoincrement=True, nullable=False),
        sa.Column('patient_id', _id(), nullable=False),
        sa.Column('authority', sa.String(length=200), nullable=False),
        sa.Column('value', sa.String(length=100), nullable=False),
        sa.Column('type_code', sa.String(length=10), nullable=True),
        sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], ),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('authority', 'value', name='uq_identifier')
    )
    op.create_index('ix_patient_identifiers_patient_id', 'patient_identifiers', ['patient_id'])
    op.create_table('entries',
        sa.Column('id', _id(), autoincrement=True, nullable=False),
        sa.Column('patient_id', _id(), nullable=False),
        sa.Column('type', sa.String(length=30), nullable=False),
        sa.Column('key', sa.String(length=500), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('current', sa.Boolean(), nullable=False),
        sa.Column('status', sa.String(length=30), nullable=False),
        sa.Column('code', sa.String(length=100), nullable=True),
        sa.Column('system', sa.String(length=100), nullable=True),
        sa.Column('display', sa.String(length=500), nullable=True),
        sa.Column('mapped', sa.Boolean(), nullable=False),
        sa.Column('value', sa.Text(), nullable=True),
        sa.Column('value_type', sa.String(length=10), nullable=True),
        sa.Column('value_num', sa.Float(), nullable=True),
        sa.Column('comparator', sa.String(length=2), nullable=True),
        sa.Column('unit', sa.String(length=60), nullable=True),
        sa.Column('unit_original', sa.String(length=60), nullable=True),
        sa.Column('reference_range', sa.String(length=120), nullable=True),
        sa.Column('interpretation', sa.String(length=60), nullable=True),
        sa.Column('effective', sa.String(length=40), nullable=True),
        sa.Column('issued', sa.String(length=40), nullable=True),
        sa.Column('specimen_time', sa.String(length=40), nullable=True),
        sa.Column('performer', sa.String(length=300), nullable=True),
        sa.Column('parent_id', _id(), nullable=True),
        sa.Column('attachment_sha256', sa.String(length=64), nullable=True),
        sa.Column('media_type', sa.String(length=100), nullable=True),
        sa.Column('masking', sa.JSON(), nullable=True),
        sa.Column('details', sa.JSON(), nullable=True),
        sa.Column('superseded_by', _id(), nullable=True),
        sa.Column('import_id', _id(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('fact', sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(['import_id'], ['imports.id'], ),
        sa.ForeignKeyConstraint(['parent_id'], ['entries.id'], ),
        sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], ),
        sa.ForeignKeyConstraint(['superseded_by'], ['entries.id'], ),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('patient_id', 'key', 'version', name='uq_entry_version')
    )
    op.create_index('ix_entries_current', 'entries', ['patient_id', 'key', 'current'])
    op.create_index('ix_entries_fact', 'entries', ['patient_id', 'fact'])
    op.create_index('ix_entries_parent', 'entries', ['parent_id'])
    op.create_table('import_attempts',
        sa.Column('id', _id(), autoincrement=True, nullable=False),
        sa.Column('import_id', _id(), nullable=False),
        sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('code_version', sa.String(length=40), nullable=True),
        sa.Column('status', sa.String(length=20), nullable=True),
        sa.Column('error_code', sa.String(length=60), nullable=True),
        sa.Column('error_message', sa.Text(), nullable=True),
        sa.Column('trigger', sa.String(length=20), nullable=True),
        sa.ForeignKeyConstraint(['import_id'], ['imports.id'], ),
        sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_import_attempts_import_id', 'import_attempts', ['import_id'])
    op.create_table('logical_messages',
        sa.Column('logical_id', sa.String(length=400), nullable=False),
        sa.Column('import_id', _id(), nullable=False),
        sa.Column('fingerprint', sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(['import_id'], ['imports.id'], ),
        sa.PrimaryKeyConstraint('logical_id')
    )
    op.create_table('provenance',
        sa.Column('id', _id(), autoincrement=True, nullable=False),
        sa.Column('entry_id', _id(), nullable=False),
        sa.Column('import_id', _id(), nullable=False),
        sa.Column('source', sa.String(length=200), nullable=False),
        sa.Column('source_ref', sa.String(length=500), nullable=True),
        sa.Column('relation', sa.String(length=20), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['entry_id'], ['entries.id'], ),
        sa.ForeignKeyConstraint(['import_id'], ['imports.id'], ),
        sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_provenance_entry_id', 'provenance', ['entry_id'])
    op.create_index('ix_provenance_import_id', 'provenance', ['import_id'])


def downgrade() -> None:
    for table in ("provenance", "logical_messages", "import_attempts", "entries",
                  "patient_identifiers", "imports", "patients"):
        op.drop_table(table)
