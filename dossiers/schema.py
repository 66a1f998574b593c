"""The store's tables (SQLAlchemy Core): import ledger, patients, entries, provenance.

Core rather than the ORM: the pipeline writes thousands of rows a second in batches, and the
rows are plain records. One MetaData for everything; the Alembic history in
``dossiers/migrations`` builds the same tables, SQLite or PostgreSQL alike (a test compares).
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

metadata = MetaData()

# BigInteger ids on PostgreSQL, plain INTEGER (rowid alias, autoincrement) on SQLite.
Id = BigInteger().with_variant(Integer(), "sqlite")

# -- the import ledger ---------------------------------------------------------------------
imports = Table(
    "imports", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("source", String(200), nullable=False),
    Column("channel", String(20), nullable=False),  # file, folder, mllp, s3, http, edit
    Column("peer", String(200)),  # remote address, bucket/key, path
    Column("file_name", String(500)),
    Column("part", Integer),  # position of this message in its file/batch (1-based)
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("format", String(20)),  # hl7v2, cda, pdf, unknown
    Column("logical_id", String(400)),  # sender + MSH-10, CDA document id
    Column("status", String(20), nullable=False),  # received/processing/deposited/duplicate/...
    Column("stage", String(20)),  # where it stopped: intake, parse, normalize, identity, deposit
    Column("error_code", String(60)),
    Column("error_message", Text),
    Column("error_location", String(500)),  # OBX[4]-5.1, a CDA element path
    Column("warnings", JSON),
    Column("entries_count", Integer, nullable=False, default=0),
    Column("duplicates_count", Integer, nullable=False, default=0),
    Column("patient_id", Id, ForeignKey("patients.id")),
    Column("duplicate_of", Id, ForeignKey("imports.id")),
    Column("batch_of", Id, ForeignKey("imports.id")),  # the file-level row of a batch
    Column("attempts", Integer, nullable=False, default=0),
    Column("claimed_by", String(100)),
    Column("claimed_until", DateTime(timezone=True)),
    Column("updated_at", DateTime(timezone=True)),
    # Operations console (issue 6). All nullable or defaulted: existing writers need not know.
    Column("not_before", DateTime(timezone=True)),  # a transient failure's retry time
    Column("retries", Integer, nullable=False, default=0),  # consecutive transient failures
    # Times taken by a worker since its last recorded outcome: above 0 at a claim, its last
    # worker died with it (or its lease ran out); see ledger.claim_batch (poison messages).
    Column("claims", Integer, nullable=False, default=0),
    Column("assigned_patient_id", Id, ForeignKey("patients.id")),  # forced by an admin
    Column("edited_from", Id, ForeignKey("imports.id")),  # the import this edit corrects
    Column("discard_reason", Text),  # why an admin closed it (or "edited as import N")
)
Index("ix_imports_status", imports.c.status, imports.c.id)
Index("ix_imports_source_sha", imports.c.source, imports.c.sha256)
Index("ix_imports_logical", imports.c.logical_id)
Index("ix_imports_patient", imports.c.patient_id)

# Every processing attempt of an import: the history an admin reads.
import_attempts = Table(
    "import_attempts", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("import_id", Id, ForeignKey("imports.id"), nullable=False, index=True),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True)),
    Column("code_version", String(40)),
    Column("status", String(20)),
    Column("error_code", String(60)),
    Column("error_message", Text),
    Column("trigger", String(20)),  # ingest, serve, rerun
)

# Who did what to which import or dossier, and why: admin actions (assign, edit, discard, reading
# raw bytes) now, dossier reads later. Append-only; names people, never patient data.
audit_log = Table(
    "audit_log", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("action", String(40), nullable=False),  # import.raw, import.assign, ...
    Column("import_id", Id, ForeignKey("imports.id")),
    Column("patient_id", Id, ForeignKey("patients.id")),
    Column("reason", Text),
    Column("details", JSON),
    # Hash chain (issue 8): one chain per dossier (chain = patient id; 0 for rows about no
    # dossier), seq counts its rows from 1, hash = sha256(prev_hash + the row's content).
    # Editing, deleting or inserting a row breaks it (dossiers/audit.py, `audit verify`).
    Column("chain", Id),
    Column("seq", Integer),
    Column("prev_hash", String(64)),
    Column("hash", String(64)),
)
Index("uq_audit_chain_seq", audit_log.c.chain, audit_log.c.seq, unique=True)
Index("ix_audit_import", audit_log.c.import_id)
Index("ix_audit_patient", audit_log.c.patient_id)

# The anchor of each audit chain (migration 0013): its last seq and hash, written by
# dossiers/audit.py ``append`` in the transaction that appends the rows. The chain alone
# cannot tell its last rows deleted from rows never written; ``audit verify`` compares the
# chain's end with this row.
audit_heads = Table(
    "audit_heads", metadata,
    Column("chain", Id, primary_key=True, autoincrement=False),
    Column("seq", Integer, nullable=False),
    Column("hash", String(64), nullable=False),
)

# A logical message or document is deposited once (dedupe level 2): the primary key is the
# arbiter, even with several workers racing.
logical_messages = Table(
    "logical_messages", metadata,
    Column("logical_id", String(400), primary_key=True),
    Column("import_id", Id, ForeignKey("imports.id"), nullable=False),
    # sha256 of what the message says (its entries), to tell a true resend from a sender that
    # reuses a control id for another message.
    Column("fingerprint", String(64)),
)

# -- patients and dossiers -------------------------------------------------------------------
patients = Table(
    "patients", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("ins", String(15), unique=True),  # NIR/NIA with its key, when known
    Column("ins_oid", String(40)),
    Column("family", String(200), nullable=False),
    Column("given", String(200), nullable=False),
    Column("birth_family", String(200)),
    Column("birth_date", String(10), nullable=False),
    Column("sex", String(1), nullable=False),
    Column("family_key", String(200), nullable=False),  # accent/case-folded, for matching
    Column("given_key", String(200), nullable=False),
    # name_key(birth_family), NULL without one: a message naming the patient by her birth
    # name alone finds the dossier created under her used name (migration 0007)
    Column("birth_family_key", String(200)),
    Column("opposed", Boolean, nullable=False, default=False),  # opposition to feeding
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(40)),  # 'admin', 'auto-create'
    # The patient's current choices (their history: `consents`). ZFA-1: ACTIF, FERME,
    # INEXISTANT; ZFA-11 consent to consultation: NA, INC, IC. None: never stated.
    Column("dmp_status", String(12)),
    Column("consultation_consent", String(3)),
    Column("treating_rpps", String(20)),  # the médecin traitant (RPPS id)
    # The patient's death (migration 0012; dossiers/death.py), as a hospital's ADT last
    # stated it (PID-29/30): deceased None = never stated, False = stated alive (a death
    # reverted); deceased_at the ISO date/time with its precision (None: not dated);
    # death_stated_at orders the statements (EVN-2, else MSH-7); death_import_id and
    # death_trigger say where it came from (no foreign key: imports already points here).
    Column("deceased", Boolean),
    Column("deceased_at", String(40)),
    Column("death_stated_at", DateTime(timezone=True)),
    Column("death_import_id", Id),
    Column("death_trigger", String(8)),
    # The patient's oppositions to emergency access (migration 0013; dossiers/access.py):
    # to break-glass by any professional ("bris de glace"), and separately to the access of
    # the SAMU-Centre 15 regulating doctor. None: never stated (not opposed). Set by the
    # patient or an admin, never from ZFA (ZFA-4 to ZFA-8, which carried them, are obsolete).
    Column("break_glass_opposed", Boolean),
    Column("regulation_opposed", Boolean),
)
Index("ix_patients_demo", patients.c.family_key, patients.c.birth_date, patients.c.sex)
Index("ix_patients_birth_demo", patients.c.birth_family_key, patients.c.birth_date,
      patients.c.sex)

patient_identifiers = Table(
    "patient_identifiers", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("patient_id", Id, ForeignKey("patients.id"), nullable=False, index=True),
    Column("authority", String(200), nullable=False),
    Column("value", String(100), nullable=False),
    Column("type_code", String(10)),
    UniqueConstraint("authority", "value", name="uq_identifier"),
)

entries = Table(
    "entries", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("patient_id", Id, ForeignKey("patients.id"), nullable=False),
    Column("type", String(30), nullable=False),
    Column("key", String(500), nullable=False),  # identity of the fact within the dossier
    Column("version", Integer, nullable=False),
    Column("current", Boolean, nullable=False),  # the version a reader sees
    Column("status", String(30), nullable=False),  # final, corrected, ..., withdrawn
    Column("code", String(100)),
    Column("system", String(100)),
    Column("display", String(500)),
    Column("mapped", Boolean, nullable=False, default=True),
    Column("value", Text),
    Column("value_type", String(10)),
    Column("value_num", Float),
    Column("comparator", String(2)),
    Column("unit", String(60)),
    Column("unit_original", String(60)),
    Column("reference_range", String(120)),
    Column("interpretation", String(60)),
    Column("effective", String(40)),
    Column("issued", String(40)),
    Column("specimen_time", String(40)),
    Column("performer", String(300)),
    Column("parent_id", Id, ForeignKey("entries.id")),
    Column("attachment_sha256", String(64)),
    Column("media_type", String(100)),
    Column("masking", JSON),
    Column("details", JSON),
    Column("superseded_by", Id, ForeignKey("entries.id")),
    Column("import_id", Id, ForeignKey("imports.id"), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    # The clinical fact whatever the channel (type, code, instant, value, unit), hashed: the
    # same result by HL7v2 and inside a CDA lab report is one entry (dedupe level 4).
    Column("fact", String(64)),
    # The patient's own choice (mask / unmask), over the sender's MASQUE_PS; None: theirs.
    Column("mask_override", Boolean),
    # Withdrawn by its author (a version with status 'withdrawn'): who, kept for the audit.
    Column("withdrawn_by", String(200)),
    UniqueConstraint("patient_id", "key", "version", name="uq_entry_version"),
)
Index("ix_entries_fact", entries.c.patient_id, entries.c.fact)
# A document's or a lab report's key across dossiers: a correction whose original another
# dossier holds (dossiers/elsewhere.py). Partial: reports and documents only (migration 0008).
Index("ix_entries_report_key", entries.c.key,
      sqlite_where=text("type IN ('lab_report', 'document')"),
      postgresql_where=text("type IN ('lab_report', 'document')"))
Index("ix_entries_parent", entries.c.parent_id)

# Who may read a dossier, as the patient decided. Rows are never deleted: revoking sets
# revoked_at, so the history stays readable.
professionals = Table(
    "professionals", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("rpps", String(20), nullable=False, unique=True),
    Column("family", String(200), nullable=False),
    Column("given", String(200)),
    Column("role", String(60), nullable=False),  # médecin, infirmier, pharmacien, ...
    Column("created_at", DateTime(timezone=True), nullable=False),
)

authorizations = Table(
    "authorizations", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("patient_id", Id, ForeignKey("patients.id"), nullable=False),
    Column("rpps", String(20), nullable=False),
    Column("granted_at", DateTime(timezone=True), nullable=False),
    Column("granted_by", String(200), nullable=False),
    Column("revoked_at", DateTime(timezone=True)),
    Column("revoked_by", String(200)),
    # the first day (ISO, in France) it no longer holds; None: until revoked (migration 0015)
    Column("valid_until", String(10)),
)
Index("ix_authorizations_patient", authorizations.c.patient_id, authorizations.c.rpps)

# Break-glass: an emergency read outside the patient's authorisations, for a limited time,
# always with a reason; every read inside it is marked as such in the audit trail.
break_glass = Table(
    "break_glass", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("patient_id", Id, ForeignKey("patients.id"), nullable=False),
    Column("rpps", String(20), nullable=False),
    Column("reason", Text, nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
)
Index("ix_break_glass_patient", break_glass.c.patient_id, break_glass.c.rpps)

# The history of a patient's DMP status, opposition to feeding and consent to consultation,
# as stated by hospital ADT messages (ZFA) or by the patient; the current values are on
# `patients`.
consents = Table(
    "consents", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("patient_id", Id, ForeignKey("patients.id"), nullable=False, index=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("actor", String(200), nullable=False),  # source id of the ADT, or who acted
    Column("import_id", Id, ForeignKey("imports.id")),
    Column("dmp_status", String(12)),  # ZFA-1
    Column("opposition", String(3)),  # ZFA-9: NA, IO, INO
    Column("opposition_date", String(40)),  # ZFA-10
    Column("consultation", String(3)),  # ZFA-11: NA, INC, IC
    Column("consultation_date", String(40)),  # ZFA-12
)

# Which imports brought (or confirmed) an entry: the same fact twice is one entry, two links.
provenance = Table(
    "provenance", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("entry_id", Id, ForeignKey("entries.id"), nullable=False, index=True),
    Column("import_id", Id, ForeignKey("imports.id"), nullable=False, index=True),
    Column("source", String(200), nullable=False),
    Column("source_ref", String(500)),  # OBX[7]; a CDA element path
    Column("relation", String(20), nullable=False),  # created, confirmed, superseded, withdrew
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# Legal representatives (migration 0010): the parents (titulaires de l'autorité parentale) or
# the guardian (tuteur, person in charge of a protective measure with representation) who
# read a minor's or a protected adult's dossier as the patient does, minus what is invisible
# to them (dossiers/access.py). Declared by an admin, for a period; never deleted: revoking
# sets revoked_at, so the trail of who could read when stays readable.
legal_representatives = Table(
    "legal_representatives", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("patient_id", Id, ForeignKey("patients.id"), nullable=False),
    # the representative's account, as their token names it (opaque: never a NIR or a name)
    Column("subject", String(64), nullable=False),
    Column("family", String(200), nullable=False),
    Column("given", String(200)),
    Column("quality", String(40), nullable=False),  # parent, tuteur, ... (table)
    Column("valid_from", String(10), nullable=False),  # YYYY-MM-DD, first day it holds
    Column("valid_until", String(10)),  # YYYY-MM-DD, first day it no longer holds; None: open
    Column("declared_at", DateTime(timezone=True), nullable=False),
    Column("declared_by", String(200), nullable=False),
    Column("revoked_at", DateTime(timezone=True)),
    Column("revoked_by", String(200)),
    Column("revoke_reason", Text),
)
Index("ix_legal_representatives_patient", legal_representatives.c.patient_id,
      legal_representatives.c.subject)
