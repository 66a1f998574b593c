"""The admin's hands on the ledger: read the raw bytes, assign a patient, edit, discard.

Every action here is audited (pipelines/audit) in the same transaction as its effect, and
none of them ever changes or deletes archived bytes: an edit is a new archived object and a
new ledger row (channel 'edit', ``edited_from`` the original), and the original row is closed
as 'discarded' with the reason "edited as import N" so whoever reads it sees what replaced it.
Processing after assign/edit is the caller's (the rerun flow): these functions only decide.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, and_, or_, select, update

from dossiers.merged import merged_into
from dossiers.patients import find_by_reference
from dossiers.schema import entries, import_attempts, imports, provenance
from pipelines.archive import Archive, ArchiveCorrupt, ArchiveMissing, sha256_hex
from pipelines.audit import Actor, record
from pipelines.intake import Received, intake
from pipelines.ledger import (
    DEPOSITED,
    DISCARDED,
    FAILED,
    PROCESSING,
    QUARANTINED,
    RECEIVED,
    SPLIT,
    now,
    reset_for_rerun,
)
from pipelines.process import CODE_VERSION
from pipelines.settings import Settings


class AdminError(ValueError):
    """An action that cannot be done as asked: one line for the admin, no patient data."""


@dataclass(frozen=True, slots=True)
class RawContent:
    data: bytes
    format: str | None
    text: str | None  # decoded by the message's charset; None for binary content (PDF)
    charset: str | None


def _row(conn: Connection, import_id: int):  # noqa: ANN202
    row = conn.execute(select(imports).where(imports.c.id == import_id)).first()
    if row is None:
        raise AdminError(f"no import {import_id}")
    return row


def _attempt(conn: Connection, import_id: int, status: str, message: str) -> None:
    """An admin's action in the import's history, beside the processing attempts."""
    t = now()
    conn.execute(import_attempts.insert().values(
        import_id=import_id, started_at=t, finished_at=t, code_version=CODE_VERSION,
        status=status, error_code=None, error_message=message, trigger="admin"))


def _archived(archive: Archive, import_id: int, sha: str) -> bytes:
    try:
        return archive.get(sha)
    except ArchiveMissing:
        raise AdminError(f"import {import_id}: archived object missing") from None
    except ArchiveCorrupt:
        raise AdminError(f"import {import_id}: archived object corrupt (sha256 mismatch)") \
            from None


def decode_raw(data: bytes, fmt: str | None, fallback: str | None = None) -> tuple[str | None,
                                                                               str | None]:
    """(text, charset) of archived bytes: HL7v2 by MSH-18 (or the source's fallback), XML
    by its declaration (utf-8 by default); None for PDF and other binary content."""
    if fmt == "pdf" or data[:5] == b"%PDF-":
        return None, None
    if fmt == "hl7v2":
        from parsers.hl7v2.charset import decode

        try:
            text, codec, _ = decode(data, fallback)
            return text, codec
        except (UnicodeDecodeError, LookupError, ValueError):
            pass
    if fmt == "cda" or data.lstrip()[:1] == b"<":
        import re

        declared = re.match(rb"\s*<\?xml[^>]*encoding=[\"']([A-Za-z0-9._-]+)", data)
        codec = declared.group(1).decode("ascii") if declared else "utf-8"
        try:
            return data.decode(codec), codec
        except (UnicodeDecodeError, LookupError):
            pass
    return data.decode("utf-8", errors="replace"), "utf-8 (with replacements)"


def concerned_patients(conn: Connection, row) -> list[int | None]:  # noqa: ANN001
    """The dossiers whose patient data an import's bytes hold: its own patient and the one
    an admin assigned it to, the patients of the messages of a batch file (the file-level
    row has none of its own), the patient of the import it repeats (a duplicate's row has
    none either). [None] when no dossier is known (a quarantined message): the read then
    goes in the trail of no dossier, as before. Each read of the bytes is in the trail of
    every patient they concern: a batch file read whole was in no patient's trail."""
    found = {row.patient_id, row.assigned_patient_id}
    i = imports.c
    related = or_(i.batch_of == row.id, i.id == row.duplicate_of) \
        if row.duplicate_of is not None else i.batch_of == row.id
    for other in conn.execute(select(i.patient_id, i.assigned_patient_id).where(related)):
        found.update((other.patient_id, other.assigned_patient_id))
    found.discard(None)
    return sorted(found) or [None]


def read_raw(engine: Engine, archive: Archive, import_id: int, actor: Actor,
             reason: str | None = None, settings: Settings | None = None) -> RawContent:
    """The archived bytes of an import (patient data): audited before they are returned.
    ``settings``: for the source's fallback charset (HL7v2 without MSH-18)."""
    with engine.begin() as conn:
        row = _row(conn, import_id)
        data = _archived(archive, import_id, row.sha256)
        for patient_id in concerned_patients(conn, row):
            record(conn, actor, "import.raw", import_id=import_id, patient_id=patient_id,
                   reason=reason)
    fallback = settings.fallback_charset(row.source) if settings is not None else None
    text, charset = decode_raw(data, row.format, fallback)
    return RawContent(data, row.format, text, charset)


def record_show(engine: Engine, import_id: int, actor: Actor,
                reason: str | None = None) -> bool:
    """An admin's look at an import (``imports show`` without ``--raw``, GET
    /admin/imports/{id}, the console's page) in the trail of every patient it concerns: it
    lists the entries the import filed in their dossier (types and codes: what the dossier
    holds), a read of patient data as a raw read is. Nothing recorded when the import names
    no dossier (a failed or quarantined message: nothing of a dossier is shown). False when
    there is no such import."""
    with engine.begin() as conn:
        row = conn.execute(select(imports).where(imports.c.id == import_id)).first()
        if row is None:
            return False
        patients = set(concerned_patients(conn, row))
        patients.update(conn.execute(
            select(entries.c.patient_id).distinct()
            .join(provenance, provenance.c.entry_id == entries.c.id)
            .where(provenance.c.import_id == import_id)).scalars())
        patients.discard(None)
        for patient_id in sorted(patients):
            record(conn, actor, "import.show", import_id=import_id, patient_id=patient_id,
                   reason=reason)
    return True


def assign(engine: Engine, import_id: int, patient_ref: str, actor: Actor,
           reason: str, archive: Archive | None = None) -> int:
    """Resolve a quarantined identity by hand: the import will be filed in this dossier on
    its next run (``assigned_patient_id``, honored by processing for this import only), and
    it is reopened. Returns the dossier's id.

    With ``archive``, an import that carries several patients' results (an ORU^R01 whose
    PATIENT_RESULT group repeats) is refused: one assigned dossier cannot say whose results
    are whose, and filing them all there would mix patients. Without it, processing refuses
    the assignment instead (quarantined ASSIGN_SEVERAL_PATIENTS)."""
    if not reason.strip():
        raise AdminError("a reason is required (--reason)")
    if archive is not None:  # read and normalized before the write transaction
        with engine.connect() as conn:
            row = _row(conn, import_id)
        if row.status == QUARANTINED and (several := _patients(archive, row)) > 1:
            raise AdminError(f"import {import_id} carries the results of {several} patients: "
                             "an assigned dossier would receive them all. Create or complete "
                             "the dossier that was not found and rerun the import, or edit it "
                             "into one message per patient")
    with engine.begin() as conn:
        row = _row(conn, import_id)
        if row.status != QUARANTINED:
            raise AdminError(f"import {import_id} is {row.status}, not quarantined")
        patient = find_by_reference(conn, patient_ref)
        if patient is None:
            raise AdminError(f"no dossier {patient_ref}")
        went = merged_into(conn, patient.id)
        if went is not None:  # a tombstone is closed: what it held is in the survivor
            raise AdminError(f"dossier {patient.id} was merged into dossier {went}: assign "
                             f"the import to dossier {went}")
        # An opposed or closed dossier is not refused here: the rerun decides (a document is
        # quarantined OPPOSITION again; an ADT that lifts the opposition is applied).
        conn.execute(update(imports).where(imports.c.id == import_id)
                     .values(assigned_patient_id=patient.id, updated_at=now()))
        record(conn, actor, "import.assign", import_id=import_id, patient_id=patient.id,
               reason=reason)
        _attempt(conn, import_id, "assigned", f"patient {patient.id} assigned by {actor.name}")
        reset_for_rerun(conn, [import_id])
    return patient.id


def _patients(archive: Archive, row) -> int:  # noqa: ANN001
    """How many patients' results an HL7v2 import carries, filed apart (1 for anything that
    cannot be read here: processing decides, and refuses an assignment it cannot honor)."""
    if row.format != "hl7v2":
        return 1
    from normalizers.lab import normalize_message
    from parsers.hl7v2 import parse_message

    try:
        normalized = normalize_message(parse_message(_archived(archive, row.id, row.sha256)),
                                       row.source)
    except Exception:  # noqa: BLE001 - unreadable here: processing says why
        return 1
    return len(normalized.patients or ()) or 1


def edit(engine: Engine, archive: Archive, import_id: int, data: bytes, actor: Actor,
         reason: str | None = None) -> list[int]:
    """Store an edited version of a failed or quarantined import as a new archived object and
    new ledger row(s) linked to the original (``edited_from``), received and ready to process;
    close the original ('discarded', "edited as import N"). The original bytes and row are
    otherwise untouched. Returns the new message ids."""
    with engine.connect() as conn:
        row = _row(conn, import_id)
    if row.status not in (FAILED, QUARANTINED):
        raise AdminError(f"import {import_id} is {row.status}: only failed or quarantined "
                         "imports can be edited")
    if sha256_hex(data) == row.sha256:
        raise AdminError(f"import {import_id}: the edited content is unchanged")
    if not data.strip():
        raise AdminError(f"import {import_id}: the edited content is empty")
    # The new rows are written held (claimed by this edit): no worker processes them before
    # the original is closed, and they are released only if it is closed by this edit.
    holder = f"edit:{import_id}:{uuid.uuid4().hex[:12]}"
    result = intake(engine, archive, [Received(data=data, source=row.source, channel="edit",
                                               peer=f"import:{import_id}",
                                               file_name=row.file_name)],
                    claim_for=holder)[0]
    new_ids = list(result.message_ids)
    linked = new_ids + ([result.batch_id] if result.batch_id is not None else [])
    first = min(new_ids) if new_ids else result.batch_id
    held = and_(imports.c.id.in_(linked), imports.c.claimed_by == holder)
    with engine.begin() as conn:
        # closed only if still failed or quarantined: two admins editing the same import at
        # once (a console's double submit, the API and the CLI) both passed the check above
        # and both replacements were filed; a rerun may have reopened it meanwhile
        closed = conn.execute(update(imports).where(
            imports.c.id == import_id, imports.c.status.in_((FAILED, QUARANTINED))).values(
            status=DISCARDED, discard_reason=f"edited as import {first}",
            updated_at=now())).rowcount
        if closed:
            conn.execute(update(imports).where(imports.c.id.in_(linked)).values(
                edited_from=import_id, assigned_patient_id=row.assigned_patient_id))
            conn.execute(update(imports).where(held).values(
                status=RECEIVED, claimed_by=None, claimed_until=None, updated_at=now()))
            _attempt(conn, import_id, DISCARDED, f"edited as import {first} by {actor.name}")
            # in the trail of each patient the import names (it was in no dossier's trail
            # only: a patient never saw an admin rewrite a message about them)
            for patient_id in concerned_patients(conn, row):
                record(conn, actor, "import.edit", import_id=import_id,
                       patient_id=patient_id, reason=reason,
                       details={"new_imports": new_ids, "sha256": sha256_hex(data)})
    if not closed:  # the bytes stay archived; their rows say why nothing was done with them
        with engine.begin() as conn:
            became = _row(conn, import_id).status
            conn.execute(update(imports).where(imports.c.id.in_(linked)).values(
                edited_from=import_id))
            conn.execute(update(imports).where(held).values(
                status=DISCARDED, claimed_by=None, claimed_until=None, updated_at=now(),
                discard_reason=f"edit of import {import_id} not applied: it was {became} "
                "by then"))
        raise AdminError(f"import {import_id} is {became} now (another edit or a rerun came "
                         "first): this edit was not applied")
    return new_ids


def edited_text_bytes(engine: Engine, archive: Archive, import_id: int, text: str,
                      actor: Actor, settings: Settings | None = None) -> bytes:
    """An admin's corrected text of an import as the bytes to store: in the message's own
    charset (MSH-18, the XML declaration: an ISO-8859-15 message stays one, its accents
    intact), HL7v2 segments joined by CR again whatever line ends the text came with. The
    console and the admin API take text; both go through here so that one correction gives
    the same bytes whichever way it came. Reading the original is audited (import.raw)."""
    raw = read_raw(engine, archive, import_id, actor, reason="edit", settings=settings)
    if raw.text is None:
        raise AdminError(f"import {import_id} is binary ({raw.format}): it cannot be edited "
                         "as text")
    if raw.format == "hl7v2":
        text = "\r".join(line for line in text.replace("\r\n", "\n").replace("\r", "\n")
                         .split("\n") if line.strip()) + "\r"
    codec = raw.charset if raw.charset and "replacement" not in raw.charset else "utf-8"
    try:
        return text.encode(codec)
    except (UnicodeEncodeError, LookupError):
        raise AdminError("the edited text cannot be written in the message's charset "
                         f"({codec})") from None


def discard(engine: Engine, import_id: int, actor: Actor, reason: str) -> bool:
    """Close an import deliberately ('discarded', with the reason); the archived bytes stay.
    False if it was discarded already (nothing done)."""
    if not reason.strip():
        raise AdminError("a reason is required (--reason)")
    with engine.begin() as conn:
        row = _row(conn, import_id)
        if row.status == DISCARDED:
            return False
        if row.status in (DEPOSITED, SPLIT):
            raise AdminError(f"import {import_id} is {row.status}: its content is filed, "
                             "nothing to discard")
        if row.status == PROCESSING:
            raise AdminError(f"import {import_id} is being processed; try again in a moment")
        conn.execute(update(imports).where(imports.c.id == import_id).values(
            status=DISCARDED, discard_reason=reason, not_before=None, updated_at=now()))
        _attempt(conn, import_id, DISCARDED, f"discarded by {actor.name}")
        record(conn, actor, "import.discard", import_id=import_id,
               patient_id=row.patient_id, reason=reason)
    return True
