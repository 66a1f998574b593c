"""The patient's dossier (issue 8): professionals, authorisations, break-glass, consent history,
the patient's choices on ``patients``, mask and withdrawal on ``entries``, and the audit
trail's hash chain.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25

Rows already in ``audit_log`` are chained here, oldest first, so that ``audit verify`` holds
from the first row on.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def _id() -> sa.types.TypeEngine:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


_NEW_COLUMNS = {
    "patients": (("dmp_status", sa.String(12)), ("consultation_consent", sa.String(3)),
                 ("treating_rpps", sa.String(20))),
    "entries": (("mask_override", sa.Boolean()), ("withdrawn_by", sa.String(200))),
    "audit_log": (("chain", _id()), ("seq", sa.Integer()), ("prev_hash", sa.String(64)),
                  ("hash", sa.String(64))),
}


def upgrade() -> None:
    bind = op.get_bind()
    inspector = sa.inspect(bind)
    for table, columns in _NEW_COLUMNS.items():
        have = {c["name"] for c in inspector.get_columns(table)}
        for name, type_ in columns:
            if name not in have:  # nullable columns: a plain ADD COLUMN on both databases
                op.add_column(table, sa.Column(name, type_, nullable=True))
    if not any(i["name"] == "uq_audit_chain_seq" for i in inspector.get_indexes("audit_log")):
        _chain_existing_rows(bind)
        op.create_index("uq_audit_chain_seq", "audit_log", ["chain", "seq"], unique=True)
    if not inspector.has_table("professionals"):
        op.create_table(
            "professionals",
            sa.Column("id", _id(), autoincrement=True, nullable=False),
            sa.Column("rpps", sa.String(20), nullable=False),
            sa.Column("family", sa.String(200), nullable=False),
            sa.Column("given", sa.String(200), nullable=True),
            sa.Column("role", sa.String(60), nullable=False),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint("rpps"),
        )
    if not inspector.has_table("authorizations"):
        op.create_table(
            "authorizations",
            sa.Column("id", _id(), autoincrement=True, nullable=False),
            sa.Column("patient_id", _id(), nullable=False),
            sa.Column("rpps", sa.String(20), nullable=False),
            sa.Column("granted_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("granted_by", sa.String(200), nullable=False),
            sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
            sa.Column("revoked_by", sa.String(200), nullable=True),
            sa.ForeignKeyConstraint(["patient_id"], ["patients.id"]),
            sa.PrimaryKeyConstraint("id"),
        )
        op.create_index("ix_authorizations_patient", "authorizations", ["patient_id", "rpps"])
    if not inspector.has_table("break_glass"):
        op.create_table(
            "break_glass",
            sa.Column("id", _id(), autoincrement=True, nullable=False),
            sa.Column("patient_id", _id(), nullable=False),
            sa.Column("rpps", sa.String(20), nullable=False),
            sa.Column("reason", sa.Text(), nullable=False),
            sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
            sa.ForeignKeyConstraint(["patient_id"], ["patients.id"]),
            sa.PrimaryKeyConstraint("id"),
        )
        op.create_index("ix_break_glass_patient", "break_glass", ["patient_id", "rpps"])
    if not inspector.has_table("consents"):
        op.create_table(
            "consents",
            sa.Column("id", _id(), autoincrement=True, nullable=False),
            sa.Column("patient_id", _id(), nullable=False),
            sa.Column("at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("actor", sa.String(200), nullable=False),
            sa.Column("import_id", _id(), nullable=True),
            sa.Column("dmp_status", sa.String(12), nullable=True),
            sa.Column("opposition", sa.String(3), nullable=True),
            sa.Column("opposition_date", sa.String(40), nullable=True),
            sa.Column("consultation", sa.String(3), nullable=True),
            sa.Column("consultation_date", sa.String(40), nullable=True),
            sa.ForeignKeyConstraint(["import_id"], ["imports.id"]),
            sa.ForeignKeyConstraint(["patient_id"], ["patients.id"]),
            sa.PrimaryKeyConstraint("id"),
        )
        op.create_index("ix_consents_patient_id", "consents", ["patient_id"])


def _chain_existing_rows(bind: sa.Connection) -> None:
    """Give the rows written before the chain existed their chain, seq and hashes."""
    from dossiers.audit import GENESIS, NO_DOSSIER, row_hash

    log = sa.table("audit_log", sa.column("id"), sa.column("at", sa.DateTime(timezone=True)),
                   sa.column("actor"), sa.column("action"), sa.column("import_id"),
                   sa.column("patient_id"), sa.column("reason"),
                   sa.column("details", sa.JSON()), sa.column("chain"), sa.column("seq"),
                   sa.column("prev_hash"), sa.column("hash"))
    heads: dict[int, tuple[int, str]] = {}
    for r in bind.execute(sa.select(log).where(log.c.hash.is_(None)).order_by(log.c.id)).all():
        chain = r.patient_id if r.patient_id is not None else NO_DOSSIER
        seq, prev = heads.get(chain, (0, GENESIS))
        seq += 1
        digest = row_hash(prev, chain=chain, seq=seq, at=r.at, actor=r.actor, action=r.action,
                          import_id=r.import_id, patient_id=r.patient_id, reason=r.reason,
                          details=r.details)
        heads[chain] = (seq, digest)
        bind.execute(sa.update(log).where(log.c.id == r.id).values(
            chain=chain, seq=seq, prev_hash=prev, hash=digest))


def downgrade() -> None:
    for table in ("consents", "break_glass", "authorizations", "professionals"):
        op.drop_table(table)
    op.drop_index("uq_audit_chain_seq", "audit_log")
    for table, columns in _NEW_COLUMNS.items():
        with op.batch_alter_table(table) as batch:
            for name, _ in columns:
                batch.drop_column(name)
