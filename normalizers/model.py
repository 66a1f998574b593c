"""Canonical entries: what every channel (HL7v2, CDA, PDF) turns into before deposit.

Plain dataclasses, no storage concerns: pipelines/ turns them into rows. Everything a reader
of the dossier needs is here; ``details`` keeps the rest of what the sender said so that
nothing coded is thrown away.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from operator import attrgetter
from typing import Any

# Entry types
LAB_REPORT = "lab_report"
LAB_RESULT = "lab_result"
DOCUMENT = "document"

# Actions on what we already hold (dedupe level 3)
ACTION_NEW = "new"
ACTION_REPLACE = "replace"
ACTION_DELETE = "delete"
# details key of a document entry stating a status only, no content (MDM^T03): deposit files
# it as a new version of the document held, that content carried over
STATUS_CHANGE_DETAIL = "status_change"
# details key of a lab result sent in one message after the withdrawal of the same result
# (OBX-11 W then F): deposit files a final of that key arriving later, issued no later, as
# the original arriving late (history), not as a new version over the replacement
REPLACES_WITHDRAWN_DETAIL = "replaces_withdrawn"
# details key of a document sent by a status change with its content (MDM^T04 outside
# CI-SIS): a new version of the document held, whose new status the other documents filed
# under the same number take (a CDA beside the PDF rendering the T04 re-sends signed)
STATUS_CONTENT_DETAIL = "status_change_content"
# details key of an entry read from a document whose status is its document's (the report
# read from a preliminary PDF): a status change of the document changes it too
DOCUMENT_STATUS_DETAIL = "status_of_document"


@dataclass(slots=True)
class Attachment:
    """Binary content carried by a message (HL7 ED, CDA nonXMLBody). Archived by sha256."""

    data: bytes
    media_type: str  # 'text/xml', 'application/pdf', 'application/octet-stream'...
    encoding_note: str | None = None  # e.g. 'base64 padding repaired'


@dataclass(slots=True)
class Entry:
    """One clinical fact or document, with enough identity to be deduplicated.

    ``key`` identifies the fact within one patient's dossier across messages (the same result
    resent, or corrected, has the same key). ``source_ref`` says where in the input it came
    from ('OBX[7]', 'OBR[3]'), for provenance and error messages.
    """

    type: str
    key: str
    source_ref: str
    code: str | None = None
    system: str | None = None  # 'LN' (LOINC) or the sender's coding system
    display: str | None = None
    mapped: bool = True  # False: a local code with no LOINC mapping ('unmapped')
    value: str | None = None  # the value as text (always set when the sender gave one)
    value_type: str | None = None  # HL7 value type (NM, ST, TX, CE, CWE, SN, ED, ...)
    value_num: float | None = None
    comparator: str | None = None  # '<', '<=', '>', '>=' for SN values like '<0.5'
    unit: str | None = None  # UCUM when known
    unit_original: str | None = None  # as sent
    reference_range: str | None = None
    interpretation: str | None = None  # abnormal flags (H, L, N, A, ...)
    status: str = "final"  # final, preliminary, corrected, cancelled, entered-in-error, ...
    effective: str | None = None  # ISO 8601 with offset, precision kept
    issued: str | None = None
    specimen_time: str | None = None
    performer: str | None = None
    parent_key: str | None = None  # a result's report (OBR)
    action: str = ACTION_NEW
    replaces_key: str | None = None  # ACTION_REPLACE / ACTION_DELETE: the key held before
    attachment: Attachment | None = None
    masking: dict[str, bool] = field(default_factory=dict)  # MetaDMPMSS flags
    details: dict[str, Any] = field(default_factory=dict)

    def content(self) -> tuple:
        """What makes two versions of the same fact different (for dedupe level 2; the
        attachment is compared by its digest beside this)."""
        return (self.code, self.system, self.value, self.unit, self.reference_range,
                self.interpretation, self.status, self.effective, self.action)

    def __reduce__(self) -> tuple:
        """Pickled as a call of the constructor with the field values, in order. The
        preparing processes send every entry to the filing one (pipelines/prepare_pool.py):
        unpickled this way an entry takes a third of the time of the slots dataclass's own
        state restoring (a Python loop over ``fields()`` per object), and half the bytes."""
        return Entry, _entry_values(self)


_entry_values = attrgetter(*(f.name for f in fields(Entry)))


@dataclass(slots=True)
class InsIdentifier:
    nir: str
    oid: str
    kind: str  # 'INS-NIR', 'INS-NIA', 'INS-NIR-TEST', 'INS-NIR-DEMO', 'NIR', 'NIA', 'INS-C'
    key_valid: bool


@dataclass(slots=True)
class LocalIdentifier:
    authority: str  # assigning authority: namespace id or OID (CX.4.1 or CX.4.2)
    value: str
    type_code: str = ""  # CX.5 (PI, PN, ...)
    # a namespace-only authority ('LABO', no OID) is scoped to the sending facility
    # ('LABO@LABO-LYON', normalizers/identity.py ``scoped_authority``); this is the namespace
    # as sent, what identifiers stored before that scoping (round 9) are found by
    unscoped: str = ""


@dataclass(slots=True, frozen=True)
class IdentifierChange:
    """ADT^A47 / A46: one local identifier of MRG-1 (the patient's old one) replaced by the
    identifier of the same assigning authority in PID-3 (IHE PAM ITI-30). ``new`` is None
    when PID-3 carries several of that authority: which one replaces it is not said."""

    old: LocalIdentifier
    old_at: str  # 'MRG[4]-1 repetition 1': where, never the value
    new: LocalIdentifier | None
    new_at: str  # 'PID[3]-3 repetition 1' (several: 'PID[3]-3 repetitions 1, 2')


@dataclass(slots=True)
class PatientIdentity:
    """Who the message is about, as the sender stated it."""

    ins: list[InsIdentifier] = field(default_factory=list)
    local_ids: list[LocalIdentifier] = field(default_factory=list)
    family: str = ""
    given: str = ""
    birth_family: str = ""
    birth_date: str = ""  # ISO YYYY-MM-DD ('' when absent or partial)
    # a birth date sent to the year or the month only ('1984', '1984-06'): never matched on,
    # but a dossier born another year (or month) is not this person
    birth_date_partial: str = ""
    # one of twins, triplets... (PID-24 'Y', PID-25 a birth order): they share family name,
    # birth date and often sex, their given names are often placeholders ('BEBE 1')
    multiple_birth: bool = False
    # the INSEE code of the birth place (PID-11 type BDL, XAD.9): never matched on, but a
    # dossier whose INS says another birth place is not this person (a homonym born the same
    # day elsewhere)
    birth_place: str = ""
    sex: str = ""  # F, M, U, O...
    identity_status: str = ""  # PID-32 (VALI, QUAL, PROV, VIDE...); INS trusted only if VALI
    # False when PID-5 named only the used name (PAM France type 'D'): ``birth_family`` then
    # repeats it for matching, but is not the birth name to record in a new dossier
    birth_family_stated: bool = True
    warnings: list[str] = field(default_factory=list)
    # where the identity contradicts itself (a newborn's PID-3 holding the mother's
    # identifier of PID-21): resolution quarantines it, whatever else would find a dossier
    conflicts: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ConsentStatement:
    """What a hospital's ADT (IHE PAM France, segment ZFA) says about the patient's DMP.

    ``None``: the field was empty (nothing said). Dates are ISO 8601 with their precision;
    ``stated_at`` is when the hospital stated it (EVN-2, else MSH-7), which dates the DMP
    status and the choices whose own date (ZFA-10, ZFA-12) is absent: an older statement
    arriving late must not override a newer one."""

    stated_at: str
    dmp_status: str | None = None  # ZFA-1: ACTIF, FERME, INEXISTANT
    opposition: str | None = None  # ZFA-9: NA, IO, INO
    opposition_date: str | None = None  # ZFA-10
    consultation: str | None = None  # ZFA-11: NA, INC, IC
    consultation_date: str | None = None  # ZFA-12


@dataclass(frozen=True, slots=True)
class DeathStatement:
    """What a message says about the patient's death (HL7 PID-29 / PID-30, CDA
    ``sdtc:deceasedInd`` / ``sdtc:deceasedTime``).

    ``deceased`` False: the patient is stated alive (PID-30 N, or the death fields sent as
    the HL7 null ""), which reverts a death the dossier holds. ``time`` is ISO 8601 with its
    precision, None when the death is not dated. ``location`` names the field (PID[3]-30),
    never a value."""

    deceased: bool
    time: str | None
    location: str


@dataclass(slots=True, frozen=True)
class IdentifierMove:
    """ADT^A43: the identifiers of one MRG-1, moved from the patient who held them to the
    patient of the PID before it (HL7 v2.5 3.3.43)."""

    where: str  # 'MRG[4]-1': where, never a value
    moved: PatientIdentity  # MRG-1's identifiers
    target: PatientIdentity  # the local identifiers of that PID's PID-3, the moved ones left out


@dataclass(slots=True)
class AdtEvent:
    """An ADT message: no entries, but the patient's consent and perhaps their identity."""

    trigger: str  # MSH-9.2: A01, A08, A31...
    stated_at: str  # EVN-2, else MSH-7 (ISO 8601)
    updates_identity: bool  # PID is an identity statement to apply (A08, A31)
    consent: ConsentStatement | None = None  # None: no ZFA segment
    # ADT^A47 with an INS in MRG-1: the hospital says that INS is not this patient's; the
    # dossier holding it loses it. [(NIR, kind)]
    removed_ins: list[tuple[str, str]] = field(default_factory=list)
    # ADT^A47 / A46: MRG-1's local identifiers that PID-3 replaces (tables/
    # adt_identifier_changes.csv), applied to the dossier MRG-1 names (pipelines/
    # identifier_change.py)
    changed_ids: list[IdentifierChange] = field(default_factory=list)
    # ADT^A40 / A18 (merge): MRG-1's identifiers, the merged patient's, that from now on name
    # the dossier of PID-3 (normalizers/adt.py); (MRG field location, identifiers)
    merged: list[tuple[str, PatientIdentity]] = field(default_factory=list)
    # PID-5 states the birth name (False: only a used name 'D', which the identity also
    # carries as its birth name for matching): an update leaves the dossier's birth name
    birth_name_stated: bool = True
    # PID-29 / PID-30 (normalizers/death.py); None: the message says nothing of a death
    death: DeathStatement | None = None
    # ADT^A43 (normalizers/tables/adt_identifier_moves.csv): each MRG-1's identifiers, which
    # the sender moves to the patient of the PID before it
    moved: list[IdentifierMove] = field(default_factory=list)
    # A24 / A37 / A35 (normalizers/tables/adt_no_effect.csv): why the trigger changes no
    # dossier; accepted (AA) and recorded, nothing applied. None: every other ADT
    no_effect: str | None = None


@dataclass(slots=True)
class PatientPart:
    """One patient of a message that carries several (the PATIENT_RESULT groups of an
    ORU^R01): who they are, and how many of the message's entries, in order, are theirs.
    Each part's identity is resolved on its own and its entries go to its dossier only."""

    location: str  # the PID that starts the part ('PID[12]': segment position)
    identity: PatientIdentity
    entries: int


@dataclass(slots=True)
class NormalizedMessage:
    """Everything one input yields: identity, entries, and the logical id for dedupe level 2."""

    logical_id: str  # sender + MSH-10, or the CDA document id
    identity: PatientIdentity
    entries: list[Entry]
    warnings: list[str] = field(default_factory=list)
    # Why a person must look before anything is deposited (e.g. 'CISIS_PATIENT_MISMATCH ...':
    # the CDA inside names another patient than PID). Non-empty -> the pipeline quarantines.
    # Codes and locations only, never patient data.
    quarantine_reasons: list[str] = field(default_factory=list)
    # An ADT message (consent, identity) instead of entries; None for everything else.
    adt: AdtEvent | None = None
    # Several patients (an ORU^R01 whose PATIENT_RESULT group repeats): their parts, in
    # order, whose ``entries`` counts add up to ``entries``; ``identity`` is then empty
    # (nothing can be filed on it by mistake). None: one patient, ``identity`` (nearly all).
    patients: list[PatientPart] | None = None
    # A message that feeds the dossier (results, a document) and states the patient's death
    # (PID-29/30, sdtc:deceasedInd): never applied from there (only a hospital's ADT records
    # a death), compared with the dossier's at filing (pipelines/death.py). None: not said.
    death: DeathStatement | None = None

    def __post_init__(self) -> None:
        check_sizes(self)


# The store's column sizes (dossiers/schema.py; a test keeps them equal). A value longer than
# its column is refused here, with its location, rather than failing the database write
# (PostgreSQL enforces them; SQLite does not).
ENTRY_MAX = {"key": 500, "source_ref": 500, "code": 100, "system": 100, "display": 500, "unit": 60,
             "unit_original": 60, "reference_range": 120, "interpretation": 60,
             "effective": 40, "issued": 40, "specimen_time": 40, "performer": 300,
             "comparator": 2, "status": 30, "type": 30, "value_type": 10}
LOGICAL_ID_MAX = 400
_ENTRY_FIELDS = attrgetter(*ENTRY_MAX)  # all str or None
_ENTRY_LIMITS = tuple(ENTRY_MAX.values())


def check_sizes(message: NormalizedMessage) -> None:
    """Raise NormalizationError FIELD_TOO_LONG naming the entry and field (never the value)."""
    if len(message.logical_id or "") > LOGICAL_ID_MAX:
        raise NormalizationError("FIELD_TOO_LONG", f"the message id (sender and control id) "
                                 f"is {len(message.logical_id)} characters long, at most "
                                 f"{LOGICAL_ID_MAX} are stored", "MSH-10")
    identity = message.identity
    too_long = [f"{name} ({len(value)} characters, at most {limit})" for name, value, limit in (
        *(("family name", identity.family, 200), ("given name", identity.given, 200),
          ("birth name", identity.birth_family, 200)),
        *(("INS OID", i.oid, 40) for i in identity.ins),
        *(("identifier", li.value, 100) for li in identity.local_ids),
        *(("assigning authority", li.authority, 200) for li in identity.local_ids),
        *(("identifier type", li.type_code, 10) for li in identity.local_ids))
        if len(value or "") > limit]
    if too_long:
        raise NormalizationError("FIELD_TOO_LONG", f"patient {too_long[0]} cannot be stored",
                                 "PID")
    for entry in message.entries:  # on every message: one attrgetter, no getattr per field
        for value, limit in zip(_ENTRY_FIELDS(entry), _ENTRY_LIMITS, strict=True):
            if value is not None and len(value) > limit:
                _refuse_entry(entry)


def shorten_prose(entry: Entry, names: tuple[str, ...], warnings: list[str]) -> None:
    """Prose longer than its column (a reference range for every age and sex, a problem
    named by a whole narrative paragraph) is shortened there, ending with '…', and kept
    whole in ``details['full_text']``, with a warning, rather than failing the whole
    message as FIELD_TOO_LONG. Only for the ``names`` given: codes, units and ids are never
    shortened (one too long stays FIELD_TOO_LONG: it is no code any more)."""
    for name in names:
        value, limit = getattr(entry, name), ENTRY_MAX[name]
        if value is not None and len(value) > limit:
            entry.details.setdefault("full_text", {})[name] = value
            setattr(entry, name, value[:limit - 1] + "…")
            warnings.append(f"{entry.source_ref}: {name} longer than {limit} characters, "
                            "shortened (the whole text is kept in details)")


def _refuse_entry(entry: Entry) -> None:
    """Raise FIELD_TOO_LONG for the first field of ``entry`` over its limit. Apart from the
    check's loop, which runs for every entry of every message and only needs the limits."""
    for value, limit, name in zip(_ENTRY_FIELDS(entry), _ENTRY_LIMITS, ENTRY_MAX, strict=True):
        if value is not None and len(value) > limit:
            raise NormalizationError("FIELD_TOO_LONG", f"{name} of entry "
                                     f"{entry.source_ref or entry.type} is {len(value)} "
                                     f"characters long, at most {limit} are stored",
                                     entry.source_ref or "")


class NormalizationError(ValueError):
    """Input parsed but cannot be turned into entries. Same contract as HL7ParseError:
    a stable code and a human text that names the location and never carries patient data."""

    def __init__(self, code: str, message: str, location: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.location = location


class NotificationOnlyError(NormalizationError):
    """MDM_NOTIFICATION_ONLY: a notification trigger (MDM^T01, T03, T05, T07, T09) carrying no
    document. Valid HL7 with nothing to file: the pipeline records it as accepted (the ledger
    says nothing was filed and which trigger brings the content) instead of failing it, whose
    AR stopped the queue of senders that stop on a refusal."""


class HeldBack(NormalizationError):
    """MDM_NOT_AVAILABLE: the sender says its document is not for patient care yet (a draft,
    HL7 v2.5 9.6.1.19). Nothing is filed now, but the message is read whole: ``held`` is what
    it would file, kept so that the pipeline can file it once the document is signed (an
    MDM^T03 stating it authenticated carries no content of its own)."""

    def __init__(self, code: str, message: str, location: str,
                 held: NormalizedMessage) -> None:
        super().__init__(code, message, location)
        self.held = held

    def __reduce__(self):  # noqa: ANN204 - picklable across the preparing processes
        return (HeldBack, (self.code, str(self), self.location, self.held))
