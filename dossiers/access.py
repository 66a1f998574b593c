"""Who may read and change a dossier, and what each reader sees: the DMP's rules, in one place.

The HTTP API (and later the web console) only turns tokens into a ``Principal``, calls one of
the functions at the bottom of this module and maps its exceptions to status codes. Each
function opens its own transaction, decides, does the work and appends the audit row(s) in
that same transaction: an action is never done without its trace, nor traced without being
done.

The rules (DESIGN.md "Dossier rules", DMP-FACTS.md "Rules of the DMP"):

- A **patient** reads their own dossier, masked documents included, except documents flagged
  INVISIBLE_PATIENT (waiting for the announcement consultation). They grant and revoke
  professionals' access, mask and unmask documents, name their médecin traitant, oppose
  (or stop opposing) the feeding of their dossier, and read their audit trail.
- A **professional** reads a dossier when they are its médecin traitant, when the patient
  authorised them (not revoked, and before the authorisation's end date when the patient set
  one: ``authorizations.valid_until``, the first French calendar day it no longer holds,
  migration 0015; after it the read is refused AUTHORIZATION_ENDED, traced in the patient's
  trail), or through break-glass (an emergency, with a reason, for
  ``BREAK_GLASS_HOURS``; every read inside it is traced as such). A patient who stated no
  consent to consultation (ZFA-11 ``INC``), or whose DMP is closed (``FERME``), can be read
  by nobody but themselves, except through break-glass.
- **Oppositions to emergency access**: the patient may oppose break-glass ("bris de glace")
  and, separately, the access of a SAMU-Centre 15 regulating doctor (a professional whose
  role is in tables/regulation_roles.csv breaks the glass in the 'regulation' mode; anyone
  else in the 'emergency' mode). Set by the patient or, on the patient's request, by an admin
  with a reason (``set_emergency_opposition``), audited 'break_glass.opposition'; never from
  an ADT: ZFA-4 to ZFA-8, which carried them in IHE PAM France, are obsolete. Opposed, the
  opening is refused BREAK_GLASS_OPPOSED (REGULATION_OPPOSED), and so is every read through
  a break-glass opened before the opposition; each refusal is in the patient's trail.
- **Break-glass by a professional not in our registry** is allowed: an emergency physician
  (a SAMU, an emergency department) is rarely registered by the platform that holds the
  dossier, and refusing would leave the emergency without the dossier the DMP opens to any
  professional authenticated by their card. What the registry vouched for is checked
  instead: the RPPS number's check digit (Luhn), a typo or a made-up number is refused
  RPPS_KEY_INVALID, and the opening is flagged ``registered: false`` in the trail the
  patient reads (registered professionals are named there; this one is a bare number).
- **Masked** documents and entries (the sender's MASQUE_PS, or the patient's own choice,
  which wins) are seen by the patient, the médecin traitant and the document's author only;
  break-glass does not reveal them. An entry inside a document (a result of a CDA lab
  report) follows its document.
- A document **withdrawn** by its author becomes a new version with status ``withdrawn``:
  gone from every read, kept (with who withdrew it) for the audit.
- An **unauthorised** professional gets the same ``AccessDenied`` whether the patient exists
  or not. Denied attempts on an existing dossier are traced in the patient's trail.
- A **legal representative** (the parents of a minor, the guardian of a minor or of a
  protected adult), declared on the dossier by an admin for a period and revocable, reads the
  dossier as the patient does (masked documents included, whatever the patient's consent to
  consultation), except what is invisible to legal representatives (``_hidden_from``,
  tables/visibility_flags.csv): documents flagged INVISIBLE_REP_LEGAUX (XDS
  INVISIBLE_REPRESENTANTS_LEGAUX), INVISIBLE_PATIENT, or CONNEXION_SECRETE, and the entries
  read from them. CONNEXION_SECRETE, as the DMP means it: the DMP's "connexion secrète" is
  the mode in which a professional works in a minor's DMP at the minor's request, keeping a
  care secret from the holders of parental authority (code de la santé publique L1111-5;
  DMP LPS requirement EX_0.1-1100, carried by the confidentiality code of the VIHF token);
  in that mode only documents invisible to the legal representatives may be filed
  (EX_2.1-1050). So a document sent with CONNEXION_SECRETE=Y is invisible to them even when
  its INVISIBLE_REP_LEGAUX flag is missing or N, and so is the trace of it in the audit
  trail: a representative's trail leaves out every event about a document hidden from them
  (its filing, its reads, its masking, its withdrawal), and of other people's reads keeps
  who, when and on what basis, not the counts, which would tell what they do not see.
  While the patient is a minor, a representative of a quality acting for a minor
  (representative_qualities.csv acts_for_minor: parent, tuteur; L1111-2, L1111-14) exercises
  the patient's rights that are safe to share with the minor's own: they authorise
  professionals and revoke the authorisations representatives gave (not the minor's own),
  list them, and mask documents they see (not unmask: a document the minor or the sender
  masked stays masked). A professional authorised by representatives only does not see
  what is hidden from them (the minor's secret care, L1111-5): a parent's choice of doctor
  does not open it. Anything else (the treating doctor, oppositions) stays the patient's;
  an adult's representative changes nothing. A parent's
  representation (the qualities marked ends_at_majority in representative_qualities.csv)
  ends on the patient's 18th birthday whatever the declaration's end says; a guardian's
  ends at the date the admin states (a minor's guardianship and an adult's share the
  quality). An emancipated minor is not modelled (the admin revokes).
- The flags follow a document's versions as MASQUE_PS does (dossiers/deposit.py: a new
  version stating no flags keeps those held; one stating flags has them). MODIF_CONF_CODE=Y
  says the message updates the visibility of a document held (CI-SIS "transmission de
  documents CDA en HL7v2"): the document sent again with other flags is a new version with
  them, which is what happens to any flags stated, so Y needs nothing more; and since a
  document secret in any of its versions keeps its trail secret (``hidden_entries``), a
  representative loses sight of a document made invisible to them and of their past reads
  of it. INVISIBLE_PATIENT is the exception (visibility_flags.csv trail = current): it waits
  for the announcement consultation, and once a later version lifts it the patient reads
  the document and, in their trail, who read it.
- **Admins** run the platform: they register professionals, declare and revoke legal
  representatives and may set a médecin traitant, but they do not read dossiers through here
  (the operator's CLI has its own, audited, commands). **Senders** only push.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, func, insert, or_, select, update

from dossiers.audit import AuditEvent, append, iso_utc
from dossiers.consent import DOES_NOT_OBJECT, OBJECTS, apply_consent
from dossiers.merged import merged_into
from dossiers.names import fold_name
from dossiers.patients import find_by_reference
from dossiers.schema import (
    audit_log,
    authorizations,
    break_glass,
    entries,
    imports,
    legal_representatives,
    patients,
    professionals,
    provenance,
)
from dossiers.versions import current_versions, earlier_versions
from normalizers.model import ConsentStatement
from normalizers.tabledata import read_csv_rows

BREAK_GLASS_HOURS = 4
RPPS_OID = "1.2.250.1.71.4.2.1"  # CDA author ids: root RPPS_OID, extension "8" + RPPS
KINDS = ("patient", "professional", "admin", "sender", "representative")
READS_AS_PATIENT = ("patient", "representative")  # bases that see masked documents
_RPPS = re.compile(r"^8?(\d{11})$")
# A representative's account id, as their token names it: opaque, never a NIR nor a name (a
# letter at least: a bare number, a NIR or a phone number, is refused)
ACCOUNT_ID = re.compile(r"^(?=[^A-Za-z]*[A-Za-z])[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
# Representation begins and ends on French calendar days (a minor comes of age at midnight
# in Paris, not in UTC)
LOCAL_ZONE = ZoneInfo("Europe/Paris")
TABLES = Path(__file__).resolve().parent / "tables"


@cache
def _hidden_from() -> dict[str, frozenset[str]]:
    """basis -> the visibility flags that hide a document and its entries from readers on
    that basis (tables/visibility_flags.csv)."""
    found: dict[str, set[str]] = {}
    for row in read_csv_rows(TABLES / "visibility_flags.csv"):
        found.setdefault(row["hidden_from"], set()).add(row["flag"])
    return {basis: frozenset(flags) for basis, flags in found.items()}


def hidden_flags(basis: str) -> frozenset[str]:
    return _hidden_from().get(basis, frozenset())


@cache
def lifted_flags() -> frozenset[str]:
    """The flags whose secret ends when a later version clears them, the audit trail's
    included (visibility_flags.csv trail = current): INVISIBLE_PATIENT."""
    return frozenset(row["flag"] for row in read_csv_rows(TABLES / "visibility_flags.csv")
                     if row.get("trail", "").strip() == "current")


@cache
def representative_qualities() -> dict[str, str]:
    """quality -> its wording (tables/representative_qualities.csv)."""
    return {r["quality"]: r["display"]
            for r in read_csv_rows(TABLES / "representative_qualities.csv")}


@cache
def qualities_ending_at_majority() -> frozenset[str]:
    """The qualities that end on the patient's 18th birthday (representative_qualities.csv)."""
    return frozenset(r["quality"] for r in read_csv_rows(TABLES / "representative_qualities.csv")
                     if r.get("ends_at_majority", "").lower() == "yes")


def majority_day(birth_date: str | None) -> str | None:
    """The patient's 18th birthday (ISO), the first day a parent no longer represents them;
    None when the birth date is not a full date (a year alone: no day can be said, the
    declaration's own dates decide). Born on 29 February: 1 March of a common year."""
    try:
        born = date.fromisoformat((birth_date or "")[:10])
    except ValueError:
        return None
    try:
        return born.replace(year=born.year + 18).isoformat()
    except ValueError:
        return date(born.year + 18, 3, 1).isoformat()


def holds_on(quality: str, day: str, birth_date: str | None) -> bool:
    """Whether a declaration of this quality (in force by its own dates) still holds on
    ``day`` given the patient's age: a parent's ends at the patient's majority."""
    if quality not in qualities_ending_at_majority():
        return True
    adult = majority_day(birth_date)
    return adult is None or day < adult


@cache
def qualities_acting_for_minor() -> frozenset[str]:
    """The qualities that exercise a minor patient's rights (representative_qualities.csv)."""
    return frozenset(r["quality"] for r in read_csv_rows(TABLES / "representative_qualities.csv")
                     if r.get("acts_for_minor", "").lower() == "yes")


def is_minor_on(day: str, birth_date: str | None) -> bool:
    """Whether the patient is a minor on ``day``; False when the birth date is not a full
    date (minority cannot be shown, so nobody acts for them on its strength)."""
    adult = majority_day(birth_date)
    return adult is not None and day < adult


@cache
def qualities_after_death() -> frozenset[str]:
    """The qualities whose reading outlives the patient (representative_qualities.csv)."""
    return frozenset(r["quality"] for r in read_csv_rows(TABLES / "representative_qualities.csv")
                     if r.get("after_death", "").lower() == "yes")


class AccessError(Exception):
    """A refusal shown to the caller: ``code`` for programs, ``message`` for people. Never
    carries patient data."""

    status = 400

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class AccessDenied(AccessError):
    status = 403


class NotFound(AccessError):
    status = 404


class InvalidRequest(AccessError):
    status = 400


class Merged(AccessError):
    """The dossier was merged into another (dossiers/merged.py): told to whoever may read
    it, with where its entries are now, rather than shown empty."""

    status = 410


DENIED = ("ACCESS_DENIED", "no access to this dossier")
# The patient's oppositions to emergency access (mode -> the patients column, the refusal)
OPPOSITIONS = {
    "emergency": ("break_glass_opposed", "BREAK_GLASS_OPPOSED",
                  "the patient opposes break-glass access to their dossier"),
    "regulation": ("regulation_opposed", "REGULATION_OPPOSED",
                   "the patient opposes access by the SAMU-Centre 15 regulating doctor to "
                   "their dossier"),
}
OPPOSITION_CODES = frozenset(code for _, code, _ in OPPOSITIONS.values())
# A professional's authorisation whose end date (``authorizations.valid_until``) has passed
AUTHORISATION_ENDED = ("AUTHORIZATION_ENDED", "your authorisation to read this dossier has "
                       "ended (the patient set its end date)")
# The patient's own access (and a representative's whose representation ends with the
# person) after a death recorded on the dossier (dossiers/death.py); the dossier is kept and
# professionals keep reading it. Said only to the patient's own account, or to a
# representative declared on the dossier: anyone else gets DENIED as before.
DECEASED = ("PATIENT_DECEASED", "the patient's death is recorded on this dossier: the "
            "patient's own access has ended (the dossier is kept; professionals caring for it "
            "keep their access)")


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is asking, as the token says."""

    kind: str  # patient, professional, admin, sender
    subject: str  # patient: internal id; professional: RPPS; admin: name; sender: source id
    role: str | None = None  # a professional's role (médecin, infirmier...)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown principal kind {self.kind!r}")

    @property
    def actor(self) -> str:
        return f"{self.kind}:{self.subject}"

    @property
    def rpps(self) -> str | None:
        return normalize_rpps(self.subject) if self.kind == "professional" else None


@cache
def regulation_roles() -> frozenset[str]:
    """The regulating doctor's roles, folded (tables/regulation_roles.csv)."""
    return frozenset(fold_name(r["role"]) for r in read_csv_rows(TABLES / "regulation_roles.csv"))


def emergency_mode(principal: Principal) -> str:
    """'regulation' for a SAMU-Centre 15 regulating doctor, 'emergency' for anyone else."""
    return "regulation" if fold_name(principal.role or "") in regulation_roles() \
        else "emergency"


def rpps_key_ok(number: str) -> bool:
    """Whether an 11-digit RPPS number's last digit is its Luhn check digit."""
    if len(number) != 11 or not number.isdigit():
        return False
    total = 0
    for i, c in enumerate(reversed(number)):
        d = int(c) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def normalize_rpps(value: str | None) -> str | None:
    """The 11-digit RPPS number, from '10001234567', '810001234567' (the CDA extension) or
    '1.2.250.1.71.4.2.1^810001234567'; None for anything else."""
    if not value:
        return None
    value = value.strip()
    if "^" in value:
        root, _, value = value.partition("^")
        if root != RPPS_OID:
            return None
    found = _RPPS.match(value)
    return found.group(1) if found else None


@dataclass(frozen=True, slots=True)
class Access:
    """A granted read: on which dossier, on what basis."""

    patient_id: int
    basis: str  # patient, representative, treating, authorised, break_glass; author
    principal: Principal
    # flags hiding documents besides the basis's own: a professional authorised only by a
    # minor's legal representative does not see what is hidden from them (``_open``)
    also_hidden: frozenset[str] = frozenset()

    @property
    def hidden(self) -> frozenset[str]:
        return hidden_flags(self.basis) | self.also_hidden

    @property
    def sees_masked(self) -> bool:
        return self.basis in ("patient", "representative", "treating")

    def as_dict(self) -> dict:
        return {"basis": self.basis, "break_glass": self.basis == "break_glass"}


# -- decisions (pure, over rows already read) ------------------------------------------------
def decide(principal: Principal, patient, *, authorised: bool,  # noqa: ANN001
           break_glass_open: bool, represents: bool = False,
           authorisation_ended: bool = False) -> str:
    """The basis on which ``principal`` may read ``patient`` (a ``patients`` row), or
    AccessDenied. ``represents``: a legal representative's declaration holds today (they
    read as the patient does, whatever the consent to consultation, which is the
    patient's statement about professionals). ``authorisation_ended``: the professional
    held an authorisation (not revoked) whose end date has passed; refused
    AUTHORIZATION_ENDED rather than DENIED, so that the patient's trail says why (the
    professional knew the dossier: nothing is told them that they did not know)."""
    if principal.kind == "patient":
        if str(patient.id) == principal.subject:
            if getattr(patient, "deceased", None):
                raise AccessDenied(*DECEASED)
            return "patient"
        raise AccessDenied(*DENIED)
    if principal.kind == "representative":
        if represents:
            return "representative"
        raise AccessDenied(*DENIED)
    if principal.kind != "professional" or principal.rpps is None:
        raise AccessDenied(*DENIED)
    closed = patient.dmp_status == "FERME" or patient.consultation_consent == "INC"
    if not closed:
        if patient.treating_rpps and normalize_rpps(patient.treating_rpps) == principal.rpps:
            return "treating"
        if authorised:
            return "authorised"
    if break_glass_open:
        _not_opposed(patient, principal)
        return "break_glass"
    if authorisation_ended and not closed:
        raise AccessDenied(*AUTHORISATION_ENDED)
    raise AccessDenied(*DENIED)


def _not_opposed(patient, principal: Principal) -> None:  # noqa: ANN001
    """AccessDenied BREAK_GLASS_OPPOSED (REGULATION_OPPOSED) when the patient opposes the
    mode of emergency access this professional's role breaks the glass in."""
    column, code, message = OPPOSITIONS[emergency_mode(principal)]
    if getattr(patient, column, None):
        raise AccessDenied(code, message)


def author_rpps(row) -> set[str]:  # noqa: ANN001
    """The RPPS numbers of an entry's authors (CDA author ids, the performer id)."""
    found = {normalize_rpps(row.performer)} if row.performer else set()
    for author in (row.details or {}).get("authors", []) if isinstance(row.details, dict) \
            else []:
        for key in author.get("ids", []) if isinstance(author, dict) else []:
            found.add(normalize_rpps(key))
    found.discard(None)
    return found  # type: ignore[return-value]


def is_masked(row) -> bool:  # noqa: ANN001
    """The patient's choice when they made one, else the sender's MASQUE_PS flag."""
    if row.mask_override is not None:
        return bool(row.mask_override)
    return bool((row.masking or {}).get("MASQUE_PS"))


def is_flagged(row, flags: frozenset[str]) -> bool:  # noqa: ANN001
    """Whether any of ``flags`` is set on the row's own masking."""
    held = row.masking or {}
    return isinstance(held, dict) and any(held.get(f) for f in flags)


def is_visible(row, access: Access, document=None) -> bool:  # noqa: ANN001
    """Whether ``access`` shows this entry (a current one). ``document``: the entry's parent
    document row, whose masking, flags and author the entry follows. The entry's own flags
    count too: a CDA section (or a DS4P-annotated statement) flagged INVISIBLE_PATIENT in a
    document that is not was shown to the patient, who was read the document's flags only."""
    if not row.current or row.status == "withdrawn":
        return False
    holder = document if document is not None else row
    if document is not None and (not document.current or document.status == "withdrawn"):
        return False
    hidden = access.hidden
    if hidden and (is_flagged(holder, hidden) or is_flagged(row, hidden)):
        return False
    if access.basis in READS_AS_PATIENT:
        return True
    if not (is_masked(holder) or is_masked(row)):
        return True
    if access.basis == "treating":
        return True
    return access.principal.rpps in author_rpps(holder)


# -- reading rows ------------------------------------------------------------------------------
def _patient_row(conn: Connection, ref: str):  # noqa: ANN202
    found = find_by_reference(conn, ref)
    if found is None:
        return None
    return conn.execute(select(patients).where(patients.c.id == found.id)).one()


def _authorisation_state(conn: Connection, patient_id: int, rpps: str | None,
                         today: str) -> str | None:
    """'in_force' when an authorisation of this professional on this dossier holds today;
    else 'ended' when their latest one reached its end date (not revoked), 'revoked' when
    it was revoked; None when they never were authorised. (At most one holds at a time:
    ``grant`` moves the end of the one in force rather than adding one.)"""
    if rpps is None:
        return None
    a = authorizations.c
    rows = conn.execute(select(a.valid_until, a.revoked_at).where(
        a.patient_id == patient_id, a.rpps == rpps).order_by(a.id)).all()
    if any(r.revoked_at is None and in_force(r.valid_until, today) for r in rows):
        return "in_force"
    if not rows:
        return None
    return "revoked" if rows[-1].revoked_at is not None else "ended"


def in_force(valid_until: str | None, today: str) -> bool:
    """Whether an authorisation ending on ``valid_until`` (the first day it no longer holds,
    a French calendar day) holds on ``today``."""
    return valid_until is None or valid_until > today


def local_today() -> str:
    """Today's date in France, ISO (what a representation's dates are compared with)."""
    return datetime.now(LOCAL_ZONE).date().isoformat()


def _represents(conn: Connection, patient, principal: Principal, today: str) -> bool:  # noqa: ANN001
    """A declaration of this representative on this dossier, not revoked, holding today
    (valid_from included, valid_until excluded), and a parent's only while the patient is a
    minor (``holds_on``): a parent declared without an end read the dossier of their child
    become adult, masked documents included."""
    if principal.kind != "representative":
        return False
    r = legal_representatives.c
    return any(holds_on(q, today, patient.birth_date) for q in conn.execute(select(
        r.quality).where(
        r.patient_id == patient.id, r.subject == principal.subject, r.revoked_at.is_(None),
        r.valid_from <= today, or_(r.valid_until.is_(None), r.valid_until > today)))
        .scalars())


def _represents_after_death(conn: Connection, patient, principal: Principal) -> bool:  # noqa: ANN001
    """After the patient's death: a representative reads on when a declaration of a quality
    that outlives the patient (``qualities_after_death``) held on the day of death (today
    when the death is not dated), not revoked since. A declaration that held that day but
    of another quality: AccessDenied PATIENT_DECEASED (the representation ended with the
    person); none: False (DENIED, as for anyone)."""
    if principal.kind != "representative":
        return False
    day = (patient.deceased_at or "")[:10]
    day = day if len(day) == 10 else local_today()
    r = legal_representatives.c
    held = {row.quality for row in conn.execute(select(r.quality).where(
        r.patient_id == patient.id, r.subject == principal.subject, r.revoked_at.is_(None),
        r.valid_from <= day, or_(r.valid_until.is_(None), r.valid_until > day)))
        if holds_on(row.quality, day, patient.birth_date)}
    if held & qualities_after_death():
        return True
    if held:
        raise AccessDenied(*DECEASED)
    return False


def _break_glass_open(conn: Connection, patient_id: int, rpps: str | None,
                      at: datetime) -> bool:
    if rpps is None:
        return False
    return conn.execute(select(break_glass.c.id).where(
        break_glass.c.patient_id == patient_id, break_glass.c.rpps == rpps,
        break_glass.c.expires_at > at).limit(1)).first() is not None


def _open(conn: Connection, principal: Principal, ref: str, action: str) -> tuple:
    """(patients row, Access) or AccessDenied; a denial on an existing dossier is traced
    (committed even though the caller's transaction is about to fail: see ``_denied``)."""
    patient = _patient_row(conn, ref)
    if patient is None:
        raise AccessDenied(*DENIED)
    now, today = datetime.now(UTC), local_today()
    try:
        represents = (_represents_after_death(conn, patient, principal) if patient.deceased
                      else _represents(conn, patient, principal, today))
        held = _authorisation_state(conn, patient.id, principal.rpps, today)
        basis = decide(principal, patient, authorised=held == "in_force",
                       break_glass_open=_break_glass_open(conn, patient.id, principal.rpps,
                                                          now),
                       represents=represents, authorisation_ended=held == "ended")
    except AccessDenied as exc:
        exc.patient_id = patient.id  # type: ignore[attr-defined]
        exc.action = action  # type: ignore[attr-defined]
        raise
    went = merged_into(conn, patient.id) if action != "audit.read" else None
    if went is not None:  # its trail stays readable: who read it before is the patient's
        raise Merged("DOSSIER_MERGED", f"dossier {patient.id} was merged into dossier {went}: "
                     f"read dossier {went}")
    also = hidden_flags("representative") if basis == "authorised" and \
        _granted_by_representatives_only(conn, patient.id, principal.rpps, today) \
        else frozenset()
    return patient, Access(patient.id, basis, principal, also)


def _granted_by_representatives_only(conn: Connection, patient_id: int, rpps: str | None,
                                     today: str) -> bool:
    """Whether every authorisation in force of this professional was granted by a legal
    representative (none by the patient). Such a professional does not see what is hidden
    from the representatives (a minor's secret care, CONNEXION_SECRETE, L1111-5): a parent
    choosing a doctor must not open to them, and through them to the parents, what the
    minor kept from the parents."""
    a = authorizations.c
    by = [r.granted_by for r in conn.execute(select(a.granted_by, a.valid_until).where(
        a.patient_id == patient_id, a.rpps == rpps, a.revoked_at.is_(None)))
        if in_force(r.valid_until, today)]
    return bool(by) and all(b.startswith("representative:") for b in by)


def _documents_of(conn: Connection, rows: Sequence) -> dict[int, object]:
    """{parent id: the parent's current version}. An entry confirmed unchanged by a new
    version of its report or document keeps pointing at the version that brought it: what it
    follows (masking, author, withdrawal) is the newest version of that parent, found
    through ``superseded_by`` (a CDA document's versions have keys of their own) or the key
    (dossiers/versions.py)."""
    parents = {r.parent_id for r in rows if r.parent_id is not None}
    if not parents:
        return {}
    return current_versions(conn, parents)


def _visible(conn: Connection, rows: Sequence, access: Access) -> list:
    documents = _documents_of(conn, rows)
    return [r for r in rows if is_visible(r, access, documents.get(r.parent_id))]


def files_withheld(conn: Connection, patient_id: int, access: Access) -> set[int]:
    """The ids of the reader's visible entries whose original file (a CDA, the PDF of a
    report) holds an entry hidden from them: a result the patient masked inside a report
    they did not mask, a section flagged INVISIBLE_PATIENT in a document that is not. The
    entry is shown, its file is not: the file says everything the document said, and
    handing it over showed a professional the result the patient had masked, and the
    patient the result awaiting its announcement consultation."""
    rows = _current_rows(conn, patient_id)
    documents = _documents_of(conn, rows)
    by_id = {r.id: r for r in rows}
    found: set[int] = set()
    for r in rows:
        if is_visible(r, access, documents.get(r.parent_id)):
            continue
        parent, steps = documents.get(r.parent_id), 0
        while parent is not None and steps < 64:
            if parent.attachment_sha256 is not None:
                found.add(parent.id)
            held = by_id.get(parent.id)
            parent = documents.get(held.parent_id) if held is not None else None
            steps += 1
    return found


def entry_dict(e) -> dict:  # noqa: ANN001
    """An entry as readers get it (no internal keys, no import ids)."""
    return {"id": e.id, "type": e.type, "code": e.code, "system": e.system,
            "display": e.display, "mapped": e.mapped, "value": e.value,
            "value_type": e.value_type, "value_num": e.value_num, "comparator": e.comparator,
            "unit": e.unit, "reference_range": e.reference_range,
            "interpretation": e.interpretation, "status": e.status, "effective": e.effective,
            "issued": e.issued, "specimen_time": e.specimen_time, "performer": e.performer,
            "parent_id": e.parent_id, "version": e.version,
            "media_type": e.media_type, "has_file": e.attachment_sha256 is not None,
            "masked": is_masked(e)}


def patient_dict(p) -> dict:  # noqa: ANN001
    return {"id": p.id, "ins": p.ins, "ins_oid": p.ins_oid, "family": p.family,
            "given": p.given, "birth_family": p.birth_family, "birth_date": p.birth_date,
            "sex": p.sex, "dmp_status": p.dmp_status, "opposed": bool(p.opposed),
            "consultation_consent": p.consultation_consent,
            "treating_rpps": p.treating_rpps, "deceased": bool(p.deceased),
            "deceased_at": p.deceased_at if p.deceased else None,
            "break_glass_opposed": bool(p.break_glass_opposed),
            "regulation_opposed": bool(p.regulation_opposed)}


def _read_event(access: Access, action: str, **details: object) -> AuditEvent:
    return AuditEvent(access.principal.actor, action, patient_id=access.patient_id,
                      details={"basis": access.basis, **details})


def _with_trace(engine: Engine, principal: Principal, work):  # noqa: ANN001, ANN202
    """Run ``work(conn)`` in one transaction; a denial on an existing dossier is traced in a
    transaction of its own (the patient sees who tried), then raised."""
    try:
        with engine.begin() as conn:
            return work(conn)
    except AccessError as exc:  # AccessDenied, or the NotFound an entry's denial answers
        patient_id = getattr(exc, "patient_id", None)
        if patient_id is not None:
            with engine.begin() as conn:
                append(conn, [AuditEvent(principal.actor, "access.denied",
                                         patient_id=patient_id,
                                         details={"action": getattr(exc, "action", None),
                                                  "code": getattr(exc, "denied_code",
                                                                  exc.code)})])
        raise


# -- the operations ---------------------------------------------------------------------------
def read_dossier(engine: Engine, principal: Principal, patient_ref: str) -> dict:
    """The patient's identity and choices, what the reader may see counted by type."""
    def work(conn: Connection) -> dict:
        patient, access = _open(conn, principal, patient_ref, "dossier.read")
        rows = _visible(conn, _current_rows(conn, patient.id), access)
        counts: dict[str, int] = {}
        for r in rows:
            counts[r.type] = counts.get(r.type, 0) + 1
        append(conn, [_read_event(access, "dossier.read", entries=len(rows))])
        return {"patient": patient_dict(patient), "access": access.as_dict(),
                "counts": counts}
    return _with_trace(engine, principal, work)


def _current_rows(conn: Connection, patient_id: int, *, type: str | None = None,  # noqa: A002
                  code: str | None = None, date_from: str | None = None,
                  date_to: str | None = None) -> list:
    q = select(entries).where(entries.c.patient_id == patient_id,
                              entries.c.current.is_(True), entries.c.status != "withdrawn")
    if type:
        q = q.where(entries.c.type == type)
    if code:
        q = q.where(entries.c.code == code)
    # ISO strings keep the sender's precision: compare on the bound's own length, so that
    # from=2025-03 takes every day of March and to=2025-03-31 takes the whole day.
    if date_from:
        q = q.where(func.substr(entries.c.effective, 1, len(date_from)) >= date_from)
    if date_to:
        q = q.where(func.substr(entries.c.effective, 1, len(date_to)) <= date_to)
    return list(conn.execute(q.order_by(entries.c.effective, entries.c.id)))


_DATE = re.compile(r"^\d{4}(-\d{2}(-\d{2})?)?$")


def read_entries(engine: Engine, principal: Principal, patient_ref: str, *,
                 type: str | None = None, code: str | None = None,  # noqa: A002
                 date_from: str | None = None, date_to: str | None = None,
                 limit: int = 500, offset: int = 0) -> dict:
    """The entries the reader may see, filtered by type, code and effective date range
    (YYYY, YYYY-MM or YYYY-MM-DD, both ends included)."""
    for name, value in (("from", date_from), ("to", date_to)):
        if value and not _DATE.match(value):
            raise InvalidRequest("BAD_DATE", f"{name}: YYYY, YYYY-MM or YYYY-MM-DD expected")
    if not 1 <= limit <= 5000 or offset < 0:
        raise InvalidRequest("BAD_PAGE", "limit: 1 to 5000; offset: 0 or more")

    def work(conn: Connection) -> dict:
        patient, access = _open(conn, principal, patient_ref, "entries.read")
        rows = _visible(conn, _current_rows(conn, patient.id, type=type, code=code,
                                            date_from=date_from, date_to=date_to), access)
        page = rows[offset:offset + limit]
        filters = {k: v for k, v in (("type", type), ("code", code), ("from", date_from),
                                     ("to", date_to)) if v}
        append(conn, [_read_event(access, "entries.read", entries=len(page),
                                  filters=filters or None)])
        withheld = files_withheld(conn, patient.id, access) \
            if any(r.attachment_sha256 is not None for r in page) else set()
        shown = [entry_dict(r) for r in page]
        for e in shown:
            if e["id"] in withheld:
                e["has_file"] = False
        return {"patient_id": patient.id, "access": access.as_dict(), "total": len(rows),
                "offset": offset, "entries": shown}
    return _with_trace(engine, principal, work)


def _entry_for(conn: Connection, principal: Principal, entry_id: int, action: str) -> tuple:
    """(entry row, its document row or None, patients row, Access); NotFound when the
    entry does not exist, when the reader may not see it, and when it is in a dossier they
    may not open (the same answer for all three; the last one still traced in that
    patient's trail). A 403 for the last one made ids an oracle: 403 said 'another
    dossier', so a 404 below the highest id said 'a version or an entry of the dossier you
    read that is hidden from you', a legal representative probing ids learnt that the
    minor's dossier held documents kept from them."""
    row = conn.execute(select(entries).where(entries.c.id == entry_id)).first()
    if row is None:
        raise NotFound("NOT_FOUND", f"no document {entry_id}")
    try:
        patient, access = _open(conn, principal, str(row.patient_id), action)
    except AccessDenied as exc:
        if exc.code == DECEASED[0]:  # said to the patient's own account (or representative)
            raise                    # only: no id oracle, and the same code as every read
        unseen = NotFound("NOT_FOUND", f"no document {entry_id}")
        unseen.denied_code = exc.code  # type: ignore[attr-defined]  # the trail's: the real one
        unseen.patient_id = exc.patient_id  # type: ignore[attr-defined]
        unseen.action = exc.action  # type: ignore[attr-defined]
        raise unseen from None
    if not row.current:  # an old version's id: the reader gets the current one's rules
        raise NotFound("NOT_FOUND", f"no document {entry_id}")
    document = _documents_of(conn, [row]).get(row.parent_id)
    if not is_visible(row, access, document):
        raise NotFound("NOT_FOUND", f"no document {entry_id}")
    return row, document, patient, access


def read_document(engine: Engine, principal: Principal, entry_id: int) -> dict:
    """Where the original file of a document entry is (its sha256 in the archive)."""
    def work(conn: Connection) -> dict:
        row, _, _, access = _entry_for(conn, principal, entry_id, "document.read")
        if row.attachment_sha256 is None \
                or row.id in files_withheld(conn, row.patient_id, access):
            # the same answer: that part of it is hidden from the reader is not said
            raise NotFound("NO_FILE", f"entry {entry_id} has no original file")
        append(conn, [_read_event(access, "document.read", entry=entry_id)])
        return {"entry_id": row.id, "patient_id": row.patient_id,
                "sha256": row.attachment_sha256,
                "media_type": row.media_type or "application/octet-stream",
                "file_name": f"document-{row.id}{_suffix(row.media_type)}"}
    return _with_trace(engine, principal, work)


def _suffix(media_type: str | None) -> str:
    return {"application/pdf": ".pdf", "text/xml": ".xml", "application/xml": ".xml",
            "text/plain": ".txt"}.get(media_type or "", "")


def read_audit(engine: Engine, principal: Principal, patient_ref: str, *,
               limit: int = 1000, offset: int = 0, before: int | None = None) -> dict:
    """The patient's trail: every access and change, with who did it (professionals and
    legal representatives by name), and what it was about: the document an event names
    (``document``), what the import an event names put in the dossier (``documents``: an
    admin's raw read, a sender's filing), each as far as the reader may see it. Read by the
    patient, or by a legal representative, whose trail leaves out what is hidden from them
    (``_trail_for``).

    Newest first, as the API documents it: a patient opens their trail to see who read the
    dossier lately, and the first page (offset 0) must be the latest events. It was oldest
    first, so a dossier with more events than a page never showed its recent reads (the
    console reversed the oldest page). Each read of the trail adds a row on top, so paging
    by ``offset`` shows one row twice per page: ``before`` (a ``seq``; the answer's
    ``next_before``) pages from a fixed point instead."""
    def work(conn: Connection) -> dict:
        patient, access = _open(conn, principal, patient_ref, "audit.read")
        if access.basis not in READS_AS_PATIENT:
            raise AccessDenied(*DENIED)
        q = select(audit_log).where(audit_log.c.chain == patient.id)
        if before is not None:
            q = q.where(audit_log.c.seq < before)
        rows = list(conn.execute(q.order_by(audit_log.c.seq.desc()).limit(limit)
                                 .offset(offset)))
        # from the rows read, before some are left out for this reader: a page of hidden
        # rows still has a next one
        next_before = rows[-1].seq if len(rows) == limit and rows[-1].seq > 1 else None
        rows = _trail_for(conn, patient.id, rows, access)
        names = {**_professional_names(conn, rows),
                 **_representative_names(conn, patient.id, rows)}
        described = _described_entries(conn, rows, access)
        brought = _described_imports(conn, rows, access)
        append(conn, [_read_event(access, "audit.read", events=len(rows))])
        return {"patient_id": patient.id, "next_before": next_before, "events": [
            {"seq": r.seq, "at": iso_utc(r.at), "actor": r.actor,
             "actor_name": names.get(r.actor), "action": r.action, "reason": r.reason,
             "details": r.details,
             "document": described.get(_entry_named(r)),
             "documents": _brought_by(r, brought),
             "break_glass": _break_glass_event(r)} for r in rows]}
    return _with_trace(engine, principal, work)


def _break_glass_event(row) -> bool:  # noqa: ANN001
    """Whether the trail flags an event as emergency access: an opening, a read through
    one, and an emergency attempt refused (an opening refused, a read through a break-glass
    the patient has since opposed). The refused ones were not flagged: the patient who
    opposed break-glass did not see, among their trail's emergency events, the attempts
    their opposition stopped."""
    details = row.details if isinstance(row.details, dict) else {}
    if row.action == "access.denied":
        return details.get("action") == "break_glass.open" \
            or details.get("code") in OPPOSITION_CODES
    return details.get("basis") == "break_glass" or row.action == "break_glass.open"


def _entry_named(row) -> int | None:  # noqa: ANN001
    """The entry an audit row names (a document read, masked, withdrawn), if any."""
    entry = row.details.get("entry") if isinstance(row.details, dict) else None
    return entry if isinstance(entry, int) and not isinstance(entry, bool) else None


def _described_entries(conn: Connection, rows: Sequence, access: Access) -> dict[int, dict]:
    """{entry id an event names: what it is, for people}: its current version's type, title
    and date, when the reader may see it now. The trail said only 'document.read, entry
    7412': the patient saw who read, and when, but not what. An entry the reader may not
    see (withdrawn since, hidden from a representative) is not described: the id alone, as
    before."""
    named = {e for r in rows if (e := _entry_named(r)) is not None}
    if not named:
        return {}
    current = current_versions(conn, named)
    documents = _documents_of(conn, list(current.values()))
    return {entry: {"type": row.type, "title": row.display, "effective": row.effective}
            for entry, row in current.items()
            if row.patient_id == access.patient_id
            and is_visible(row, access, documents.get(row.parent_id))}


MAX_DESCRIBED = 20  # what one import event lists (a batch file may bring hundreds)


def _described_imports(conn: Connection, rows: Sequence,
                       access: Access) -> dict[int, list[dict]]:
    """{import id an event names: what that import put in this dossier, for people}: the
    type, title and date of the current version of each document (or entry outside a
    document) it brought that the reader may see now, at most ``MAX_DESCRIBED``. An
    admin's raw read, look, assignment, edit or rerun of an import, a sender's filing, said
    only 'import 4123': the patient saw that someone read a message about them, not which.
    A duplicate stands for the import it repeats, a batch file for its messages, an edited
    import for its corrected copies; what the import brought to other patients (a batch
    file, a message with several patients' results) is never described."""
    named = {i for r in rows for i in _imports_named(r)}
    if not named:
        return {}
    stands = _standing_for(conn, named)
    every = sorted(set().union(*stands.values()))
    brought: dict[int, set[int]] = {}
    for start in range(0, len(every), 500):
        for link in conn.execute(select(provenance.c.import_id, provenance.c.entry_id).where(
                provenance.c.import_id.in_(every[start:start + 500]))):
            brought.setdefault(link.import_id, set()).add(link.entry_id)
    entry_ids = set().union(*brought.values()) if brought else set()
    if not entry_ids:
        return {}
    current = current_versions(conn, entry_ids)
    documents = _documents_of(conn, list(current.values()))
    seen = {entry: row for entry, row in current.items()
            if row.patient_id == access.patient_id
            and is_visible(row, access, documents.get(row.parent_id))}
    found: dict[int, list[dict]] = {}
    for import_id, sources in stands.items():
        rows_ = {seen[e].id: seen[e] for s in sources for e in brought.get(s, ()) if e in seen}
        top = [r for r in rows_.values() if r.parent_id is None
               or getattr(documents.get(r.parent_id), "id", None) not in rows_]
        top.sort(key=lambda r: (r.effective or "", r.id))
        if top:
            found[import_id] = [{"type": r.type, "title": r.display, "effective": r.effective}
                                for r in top[:MAX_DESCRIBED]]
    return found


def _imports_named(row) -> list[int]:  # noqa: ANN001
    """The imports an audit row is about: its import_id, or the imports of a filing
    ('dossier.deposit' of several messages at once names them in its details)."""
    if row.import_id is not None:
        return [row.import_id]
    listed = row.details.get("imports") if isinstance(row.details, dict) else None
    return [i for i in listed if isinstance(i, int) and not isinstance(i, bool)] \
        if isinstance(listed, list) else []


def _brought_by(row, brought: dict[int, list[dict]]) -> list[dict] | None:  # noqa: ANN001
    """What the imports an audit row names put in the dossier, as the reader may see it
    (``_described_imports``); None for an event about no import."""
    named = _imports_named(row)
    if not named:
        return None
    found = [d for i in named for d in brought.get(i, ())]
    return found[:MAX_DESCRIBED]


def _standing_for(conn: Connection, import_ids: set[int]) -> dict[int, set[int]]:
    """{import id: the imports whose entries it stands for}: itself, the import a duplicate
    repeats, the messages of a batch file, the corrected copies of an edited import."""
    stands = {n: {n} for n in import_ids}
    ids, i = sorted(import_ids), imports.c
    for start in range(0, len(ids), 500):
        part = ids[start:start + 500]
        for r in conn.execute(select(i.id, i.duplicate_of).where(
                i.id.in_(part), i.duplicate_of.is_not(None))):
            stands[r.id].add(r.duplicate_of)
        for column in (i.batch_of, i.edited_from):
            for r in conn.execute(select(i.id, column.label("of")).where(column.in_(part))):
                stands[r.of].add(r.id)
    return stands


# What of another person's audit event a reader is shown when the dossier holds entries hidden
# from them: who acted on what basis, not how many entries they read (a count that tells there
# is more than one sees), nor what they searched for (a code names a hidden result).
_TRAIL_DETAILS = frozenset({"basis", "rpps", "format", "expires_at", "action", "entry",
                            "subject", "quality", "valid_from", "valid_until", "code",
                            "mode", "registered", "break_glass", "regulation"})


@dataclass(frozen=True, slots=True)
class _Shown:
    """An audit row as a reader is shown it (the same fields as the row)."""

    seq: int
    at: datetime
    actor: str
    action: str
    import_id: int | None
    reason: str | None
    details: dict | None


def hidden_entries(conn: Connection, patient_id: int, flags: frozenset[str]) -> set[int]:
    """The ids of every version of every entry of the dossier that ``flags`` hide: a
    document (or an entry) flagged in any of its versions, and what was read from it. Any
    version: a document secret once keeps its past reads secret after a later version
    unflags it; except for the flags a later version lifts (``lifted_flags``), which count
    on the current version only. INVISIBLE_PATIENT counted in any version, and the patient
    whose result was announced, its document now shown to her, never saw in her trail who
    had read it, nor even her own reads of it."""
    if not flags:
        return set()
    rows = list(conn.execute(select(entries.c.id, entries.c.key, entries.c.parent_id,
                                    entries.c.masking, entries.c.superseded_by,
                                    entries.c.current).where(
        entries.c.patient_id == patient_id)))
    ever, lifted = flags - lifted_flags(), flags & lifted_flags()
    keys = {r.key for r in rows
            if is_flagged(r, ever) or (r.current and is_flagged(r, lifted))}
    if not keys:
        return set()
    key_of = {r.id: r.key for r in rows}
    # the versions of a CDA document have keys of their own, linked by superseded_by: one
    # flagged version makes them all secret (and the results hanging from any of them)
    linked: dict[str, set[str]] = {}
    for r in rows:
        other = key_of.get(r.superseded_by)
        if other is not None and other != r.key:
            linked.setdefault(r.key, set()).add(other)
            linked.setdefault(other, set()).add(r.key)
    todo = list(keys)
    while todo:
        for other in linked.get(todo.pop(), ()):
            if other not in keys:
                keys.add(other)
                todo.append(other)
    return {r.id for r in rows if r.key in keys or key_of.get(r.parent_id) in keys}


def _imports_of(conn: Connection, entry_ids: set[int]) -> set[int]:
    """The imports that brought or confirmed any of these entries."""
    found: set[int] = set()
    ids = sorted(entry_ids)
    for start in range(0, len(ids), 500):
        found.update(conn.execute(select(provenance.c.import_id).where(
            provenance.c.entry_id.in_(ids[start:start + 500]))).scalars())
    return found


def _with_kin(conn: Connection, import_ids: set[int]) -> set[int]:
    """These imports, the batch files they were split from, and the imports that repeat
    them (duplicates): reading the raw bytes of a batch file or of a duplicate is a read of
    the same message, in the patients' trails too (pipelines/admin.py read_raw). And their
    edit lineage (``_edit_lineage``), first: an admin's corrected copy of a failed or
    quarantined import (pipelines/admin.py edit) is the same message, so the original's
    assignment, edit and raw reads told the patient of a document hidden from them that
    only the copy brought."""
    found = _edit_lineage(conn, import_ids)
    ids = sorted(found)
    i = imports.c
    for start in range(0, len(ids), 500):
        part = ids[start:start + 500]
        found.update(b for b in conn.execute(select(i.batch_of).where(
            i.id.in_(part), i.batch_of.is_not(None))).scalars())
        found.update(conn.execute(select(i.id).where(i.duplicate_of.in_(part))).scalars())
    return found


def _edit_lineage(conn: Connection, import_ids: set[int]) -> set[int]:
    """These imports, the ones they were edited from and the edits made of them, to any
    depth (an edit of an edit): ``imports.edited_from`` both ways."""
    found, todo = set(import_ids), sorted(import_ids)
    i = imports.c
    while todo:
        part, todo = todo[:500], todo[500:]
        linked = set(conn.execute(select(i.edited_from).where(
            i.id.in_(part), i.edited_from.is_not(None))).scalars())
        linked.update(conn.execute(select(i.id).where(i.edited_from.in_(part))).scalars())
        new = linked - found
        found |= new
        todo += sorted(new)
    return found


def _trail_for(conn: Connection, patient_id: int, rows: Sequence, access: Access) -> list:
    """The audit rows as ``access`` is shown them. When the dossier holds entries hidden from
    the reader (INVISIBLE_PATIENT for the patient; also INVISIBLE_REP_LEGAUX and
    CONNEXION_SECRETE for a representative), the events about them (a read, a mask, a
    withdrawal naming one; the filing of an import that brought one) are left out, and other
    people's events keep ``_TRAIL_DETAILS`` only. Otherwise the rows as they are."""
    hidden = hidden_entries(conn, patient_id, hidden_flags(access.basis))
    if not hidden:
        return list(rows)
    unseen = _with_kin(conn, _imports_of(conn, hidden))
    me = access.principal.actor
    shown = []
    for r in rows:
        details = r.details if isinstance(r.details, dict) else {}
        if details.get("entry") in hidden or (r.import_id is not None and r.import_id in unseen) \
                or unseen.intersection(details.get("imports") or ()):
            continue
        shown_details = r.details
        if r.actor != me and details:
            shown_details = {k: v for k, v in details.items() if k in _TRAIL_DETAILS} or None
        shown.append(_Shown(r.seq, r.at, r.actor, r.action, r.import_id, r.reason,
                            shown_details))
    return shown


def _professional_names(conn: Connection, rows: Iterable) -> dict[str, str]:
    rpps = {r.actor.split(":", 1)[1] for r in rows if r.actor.startswith("professional:")}
    if not rpps:
        return {}
    return {f"professional:{p.rpps}": " ".join(filter(None, (p.given, p.family)))
            + f" ({p.role})" for p in conn.execute(
                select(professionals).where(professionals.c.rpps.in_(rpps)))}


def _representative_names(conn: Connection, patient_id: int, rows: Iterable) -> dict[str, str]:
    """'representative:<subject>' -> their name and quality, as declared on this dossier."""
    subjects = {r.actor.split(":", 1)[1] for r in rows
                if r.actor.startswith("representative:")}
    if not subjects:
        return {}
    r = legal_representatives.c
    return {f"representative:{p.subject}": " ".join(filter(None, (p.given, p.family)))
            + f" ({representative_qualities().get(p.quality, p.quality)})"
            for p in conn.execute(select(legal_representatives).where(
                r.patient_id == patient_id, r.subject.in_(subjects)).order_by(r.id))}


def export_fhir(engine: Engine, principal: Principal, patient_ref: str,
                base_url: str = "urn:dmp",
                read_file: Callable[[str], bytes] | None = None) -> dict:
    """What the reader may see, as a FHIR R4 Bundle (dossiers/fhir/). ``read_file`` (the
    archive's ``get``) gives the attachments their hash and size."""
    from dossiers.export import (
        attachment_digests,
        load_parent_versions,
        load_patient_identifiers,
        load_provenance,
    )
    from dossiers.fhir import to_bundle

    def work(conn: Connection) -> dict:
        patient, access = _open(conn, principal, patient_ref, "dossier.export")
        rows = _visible(conn, _current_rows(conn, patient.id), access)
        append(conn, [_read_event(access, "dossier.export", format="fhir",
                                  entries=len(rows))])
        found = [r._mapping for r in rows]
        # a file stating what the reader may not see is not theirs (read_document): the
        # Bundle gives no link to it
        withheld = files_withheld(conn, patient.id, access) \
            if any(r.attachment_sha256 is not None for r in rows) else set()
        return to_bundle(patient._mapping, found, versions=load_parent_versions(conn, found),
                         provenance=_shown_provenance(conn, patient.id, rows, access,
                                                      load_provenance),
                         import_ids=False, base_url=base_url,
                         identifiers=load_patient_identifiers(conn, patient.id),
                         withheld=withheld,
                         files=attachment_digests(found, read_file, withheld)
                         if read_file is not None else None)
    return _with_trace(engine, principal, work)


def _shown_provenance(conn: Connection, patient_id: int, visible: Sequence, access: Access,
                      load) -> dict:  # noqa: ANN001
    """The provenance links of the entries a reader sees, without the links to an import
    that also brought something they may not see. One fact sent twice (a result by HL7v2,
    then again inside a masked or secret CDA) is one entry with two links: the second one,
    exported as a Provenance 'confirmed' with its sender and time, told the reader that a
    document hidden from them exists."""
    shown = {r.id for r in visible}
    rows = list(conn.execute(select(entries.c.id, entries.c.key, entries.c.current).where(
        entries.c.patient_id == patient_id)))
    hidden_keys = {r.key for r in rows if r.current and r.id not in shown}
    unseen = {r.id for r in rows if r.key in hidden_keys}  # every version of what is hidden
    blocked = _imports_of(conn, unseen) if unseen else set()
    if not blocked:
        return load(conn, sorted(shown))
    return {entry_id: [link for link in links if link["import_id"] not in blocked]
            for entry_id, links in load(conn, sorted(shown)).items()}


# -- changes ---------------------------------------------------------------------------------
def _document_family(conn: Connection, row) -> list:  # noqa: ANN001
    """A document (or report) and the current entries it holds, whichever of its versions
    brought them, and what those hold in turn (what masking or withdrawing it acts on). Down
    every level: a culture's susceptibility panel hangs from its organism, which hangs from
    the culture's report (OBR-26/29); with the direct children alone, the antibiotics of a
    report the patient masked (or its author withdrew) stayed shown to every professional."""
    family, seen, keys = [row], {row.id}, {row.key}
    while keys:
        # every version: those of the key, and those the rows of the key replaced (a CDA
        # document's earlier versions have keys of their own; the results a new version
        # confirmed unchanged still hang from them)
        versions = sorted(earlier_versions(conn, conn.execute(select(entries.c.id).where(
            entries.c.patient_id == row.patient_id, entries.c.key.in_(keys))).scalars()))
        children = [c for start in range(0, len(versions), 500)
                    for c in conn.execute(select(entries).where(
                        entries.c.parent_id.in_(versions[start:start + 500]),
                        entries.c.current.is_(True)))
                    if c.id not in seen]
        seen.update(c.id for c in children)
        family += children
        keys = {c.key for c in children}
    return family


def set_mask(engine: Engine, principal: Principal, entry_id: int, masked: bool) -> dict:
    """The patient masks (or unmasks) a document, or a single entry, from professionals."""
    def work(conn: Connection) -> dict:
        row, _, patient, access = _entry_for(conn, principal, entry_id, "document.mask")
        acting = access.basis == "representative" and masked \
            and acts_for_minor(conn, patient, principal)
        if access.basis != "patient" and not acting:
            raise AccessDenied("PATIENT_ONLY", "only the patient masks or unmasks (the legal "
                               "representative of a minor patient masks)")
        family = _document_family(conn, row)
        conn.execute(update(entries).where(entries.c.id.in_([r.id for r in family]))
                     .values(mask_override=masked))
        append(conn, [_read_event(access, "document.mask" if masked else "document.unmask",
                                  entry=entry_id, entries=len(family))])
        return {"entry_id": entry_id, "masked": masked, "entries": len(family)}
    return _with_trace(engine, principal, work)


def _own_document(conn: Connection, principal: Principal, entry_id: int) -> tuple | None:
    """(entry row, Access on the basis 'author') when a professional names a current entry
    they authored, whether or not the patient authorised them: a document filed in the wrong
    dossier is withdrawn by its author, who has no reason to be allowed to read that
    dossier. None otherwise (the usual rules then decide, and refuse). The row is locked
    (PostgreSQL): of two withdrawals at once, the second finds it no longer current."""
    if principal.kind != "professional" or principal.rpps is None:
        return None
    row = conn.execute(select(entries).where(entries.c.id == entry_id)
                       .with_for_update()).first()
    if row is None or not row.current or row.status == "withdrawn" \
            or principal.rpps not in author_rpps(row):
        return None
    document = _documents_of(conn, [row]).get(row.parent_id)
    if document is not None and (not document.current or document.status == "withdrawn"):
        return None
    return row, Access(row.patient_id, "author", principal)


def withdraw(engine: Engine, principal: Principal, entry_id: int, reason: str) -> dict:
    """The author withdraws a document: a new version with status 'withdrawn' (its entries
    too) replaces what readers saw; the old versions stay, for the audit. The author needs
    no read access to the dossier (``_own_document``); anyone else is refused, as a read
    would be (404 on a dossier they may not read, AUTHOR_ONLY on one they may)."""
    reason = (reason or "").strip()
    if len(reason) < 3:
        raise InvalidRequest("REASON_REQUIRED",
                             "a reason (3 characters or more) is required to withdraw")

    def work(conn: Connection) -> dict:
        own = _own_document(conn, principal, entry_id)
        if own is None:
            _entry_for(conn, principal, entry_id, "document.withdraw")  # 404, traced
            raise AccessDenied("AUTHOR_ONLY", "only the document's author withdraws it")
        row, access = own
        now = datetime.now(UTC)
        family = _document_family(conn, row)
        for old in family:
            values = {c.name: getattr(old, c.name) for c in entries.columns if c.name != "id"}
            values.update(status="withdrawn", version=old.version + 1, current=True,
                          created_at=now, withdrawn_by=principal.actor,
                          parent_id=old.parent_id)
            conn.execute(update(entries).where(entries.c.id == old.id).values(current=False))
            new_id = conn.execute(insert(entries).values(**values)
                                  .returning(entries.c.id)).scalar_one()
            conn.execute(update(entries).where(entries.c.id == old.id)
                         .values(superseded_by=new_id))
        append(conn, [AuditEvent(principal.actor, "document.withdraw",
                                 patient_id=access.patient_id, reason=reason,
                                 details={"basis": access.basis, "entry": entry_id,
                                          "entries": len(family)})])
        return {"entry_id": entry_id, "withdrawn": len(family)}
    return _with_trace(engine, principal, work)


def _known_professional(conn: Connection, rpps: str | None) -> str:
    number = normalize_rpps(rpps)
    if number is None:
        raise InvalidRequest("BAD_RPPS", "an RPPS number has 11 digits")
    if conn.execute(select(professionals.c.id).where(professionals.c.rpps == number)).first() \
            is None:
        raise InvalidRequest("UNKNOWN_PROFESSIONAL", f"no professional with RPPS {number}")
    return number


def _patient_only(conn: Connection, principal: Principal, ref: str, action: str) -> tuple:
    patient, access = _open(conn, principal, ref, action)
    if access.basis != "patient":
        raise AccessDenied("PATIENT_ONLY", "only the patient decides who may read")
    return patient, access


def acts_for_minor(conn: Connection, patient, principal: Principal) -> bool:  # noqa: ANN001
    """Whether a legal representative exercises the patient's rights today: a declaration
    in force of a quality acting for a minor (representative_qualities.csv acts_for_minor:
    parent, tuteur), on a patient who is a minor today (a full birth date says so)."""
    if principal.kind != "representative":
        return False
    today = local_today()
    if not is_minor_on(today, patient.birth_date):
        return False
    r = legal_representatives.c
    return any(q in qualities_acting_for_minor() for q in conn.execute(select(r.quality).where(
        r.patient_id == patient.id, r.subject == principal.subject, r.revoked_at.is_(None),
        r.valid_from <= today, or_(r.valid_until.is_(None), r.valid_until > today)))
        .scalars())


def _granted_by_side(access: Access, *, revoking: bool):  # noqa: ANN202
    """The authorisations a grant or a revocation acts on: a representative's, those
    granted by representatives (the minor's own choices stay the minor's: a parent neither
    ends nor shortens the authorisation the minor gave, for a care kept secret perhaps);
    the patient's grant, their own (a representative's stays, and the patient's own opens
    what representatives do not see); the patient's revocation, all of them."""
    granted_by = authorizations.c.granted_by
    if access.basis == "representative":
        return granted_by.like("representative:%")
    return granted_by.is_not(None) if revoking else granted_by.not_like("representative:%")


def _patient_or_acting(conn: Connection, principal: Principal, ref: str, action: str) -> tuple:
    """The patient, or a legal representative acting for a minor patient (``acts_for_minor``);
    anyone else AccessDenied PATIENT_ONLY (traced)."""
    patient, access = _open(conn, principal, ref, action)
    if access.basis == "patient" or (access.basis == "representative"
                                     and acts_for_minor(conn, patient, principal)):
        return patient, access
    exc = AccessDenied("PATIENT_ONLY", "only the patient, or the legal representative of a "
                       "minor patient, decides who may read")
    exc.patient_id, exc.action = patient.id, action  # type: ignore[attr-defined]
    raise exc


def grant(engine: Engine, principal: Principal, patient_ref: str, rpps: str,
          valid_until: str | None = None) -> dict:
    """The patient authorises a professional to read their dossier, until the day before
    ``valid_until`` (a French calendar day; None: until revoked). Granting again a
    professional authorised sets the end of the authorisation in force to the one stated
    (an extension, a shortening, or no end); one that has ended stays, as history, and a
    new one begins. Audited 'authorization.grant' with the end."""
    end = _day(valid_until, "valid_until")
    if end is not None and end <= local_today():
        raise InvalidRequest("BAD_PERIOD", "valid_until must come after today")

    def work(conn: Connection) -> dict:
        patient, access = _patient_or_acting(conn, principal, patient_ref,
                                             "authorization.grant")
        number = _known_professional(conn, rpps)
        a, today = authorizations.c, local_today()
        held = [r.id for r in conn.execute(select(a.id, a.valid_until).where(
            a.patient_id == patient.id, a.rpps == number, a.revoked_at.is_(None),
            _granted_by_side(access, revoking=False)))
            if in_force(r.valid_until, today)]
        if held:
            conn.execute(update(authorizations).where(a.id.in_(held))
                         .values(valid_until=end))
        else:
            conn.execute(insert(authorizations).values(
                patient_id=patient.id, rpps=number, granted_at=datetime.now(UTC),
                granted_by=principal.actor, valid_until=end))
        append(conn, [_read_event(access, "authorization.grant", rpps=number,
                                  valid_until=end)])
        return {"patient_id": patient.id, "rpps": number, "authorised": True,
                "valid_until": end}
    return _with_trace(engine, principal, work)


def list_authorizations(engine: Engine, principal: Principal, patient_ref: str) -> dict:
    """The professionals the patient authorised, revoked and ended authorisations included,
    each with its end and whether it holds today: for the patient (their own choices), an
    admin answering the patient, or a minor's representative (those representatives gave
    only: a doctor the minor chose may be a care kept from them). Audited
    'authorization.list' (who may read the dossier is the patient's business: an admin's
    look at it is in their trail)."""
    def work(conn: Connection) -> dict:
        if principal.kind == "admin":
            patient = _admin_dossier(conn, principal, patient_ref, "lists authorisations")
            event = AuditEvent(principal.actor, "authorization.list", patient_id=patient.id,
                               details={"basis": "admin"})
        else:
            patient, access = _patient_or_acting(conn, principal, patient_ref,
                                                 "authorization.list")
            event = _read_event(access, "authorization.list")
        a, p, today = authorizations.c, professionals.c, local_today()
        q = select(authorizations, p.family, p.given, p.role).join(
            professionals, p.rpps == a.rpps, isouter=True).where(a.patient_id == patient.id)
        if principal.kind == "representative":  # whom the minor chose may be their secret
            q = q.where(_granted_by_side(access, revoking=False))
        rows = conn.execute(q.order_by(a.id)).all()
        append(conn, [event])
        return {"patient_id": patient.id, "authorizations": [
            {"rpps": r.rpps, "name": " ".join(filter(None, (r.given, r.family))) or None,
             "role": r.role, "granted_at": iso_utc(r.granted_at), "granted_by": r.granted_by,
             "valid_until": r.valid_until, "revoked_at": iso_utc(r.revoked_at),
             "revoked_by": r.revoked_by,
             "in_force": r.revoked_at is None and in_force(r.valid_until, today)}
            for r in rows]}
    return _with_trace(engine, principal, work)


def revoke(engine: Engine, principal: Principal, patient_ref: str, rpps: str) -> dict:
    """The patient withdraws a professional's authorisation (the row stays, revoked)."""
    def work(conn: Connection) -> dict:
        patient, access = _patient_or_acting(conn, principal, patient_ref,
                                             "authorization.revoke")
        number = normalize_rpps(rpps)
        if number is None:
            raise InvalidRequest("BAD_RPPS", "an RPPS number has 11 digits")
        a = authorizations.c  # the one in force: an ended one stays ended, not revoked
        done = conn.execute(update(authorizations).where(
            a.patient_id == patient.id, a.rpps == number, a.revoked_at.is_(None),
            _granted_by_side(access, revoking=True),
            or_(a.valid_until.is_(None), a.valid_until > local_today())).values(
            revoked_at=datetime.now(UTC), revoked_by=principal.actor)).rowcount
        append(conn, [_read_event(access, "authorization.revoke", rpps=number,
                                  revoked=done)])
        return {"patient_id": patient.id, "rpps": number, "authorised": False}
    return _with_trace(engine, principal, work)


def set_treating(engine: Engine, principal: Principal, patient_ref: str,
                 rpps: str | None) -> dict:
    """Name (or clear, with None) the médecin traitant: the patient, or an admin."""
    def work(conn: Connection) -> dict:
        if principal.kind == "admin":
            patient = _admin_dossier(conn, principal, patient_ref, "sets a médecin traitant",
                                     open_only=True)
        else:
            patient, _ = _patient_only(conn, principal, patient_ref, "treating.set")
        number = _known_professional(conn, rpps) if rpps else None
        conn.execute(update(patients).where(patients.c.id == patient.id)
                     .values(treating_rpps=number))
        append(conn, [AuditEvent(principal.actor, "treating.set", patient_id=patient.id,
                                 details={"rpps": number})])
        return {"patient_id": patient.id, "treating_rpps": number}
    return _with_trace(engine, principal, work)


def set_opposition(engine: Engine, principal: Principal, patient_ref: str,
                   opposed: bool) -> dict:
    """The patient opposes (or stops opposing) the feeding of their dossier themselves, not
    only through a hospital's ADT: a statement of their own (ZFA-9 IO / INO, dated now) in
    the same consent history, under the same rule (the most recent statement by its date is
    current), audited 'consent.update' by dossiers/consent.py. What is filed from then on
    is quarantined OPPOSITION (pipelines/identity.py); what is already filed stays."""
    def work(conn: Connection) -> dict:
        patient, _ = _patient_only(conn, principal, patient_ref, "opposition.set")
        stated = datetime.now(UTC).isoformat(timespec="seconds")
        change = apply_consent(conn, patient.id, ConsentStatement(
            stated, opposition=OBJECTS if opposed else DOES_NOT_OBJECT,
            opposition_date=stated), actor=principal.actor)
        now_opposed = conn.execute(select(patients.c.opposed).where(
            patients.c.id == patient.id)).scalar_one()
        return {"patient_id": patient.id, "opposed": bool(now_opposed),
                "applied": "opposition" in change.applied}
    return _with_trace(engine, principal, work)


def emergency_reason_ok(reason: str) -> bool:
    """Whether a break-glass reason says something: 10 characters or more, with 5 letters
    or more among 4 different ones. The length alone let '..........', '0000000000' or
    'xxxxxxxxxx' through: the patient's trail then showed an emergency access whose reason
    says nothing, the trace the DMP requires of every break-glass (a reason in words can
    still be wrong; it can no longer be empty)."""
    letters = [c.casefold() for c in reason if c.isalpha()]
    return len(reason) >= 10 and len(letters) >= 5 and len(set(letters)) >= 4


def open_break_glass(engine: Engine, principal: Principal, patient_ref: str,
                     reason: str) -> dict:
    """An emergency read for ``BREAK_GLASS_HOURS``, with a reason, always traced."""
    reason = (reason or "").strip()
    if not emergency_reason_ok(reason):
        raise InvalidRequest("REASON_REQUIRED",
                             "break-glass needs the emergency's reason in words (10 characters "
                             "or more, 5 letters or more, not one letter repeated)")
    if principal.kind != "professional" or principal.rpps is None:
        raise AccessDenied(*DENIED)

    def work(conn: Connection) -> dict:
        patient = _patient_row(conn, patient_ref)
        if patient is None:
            raise AccessDenied(*DENIED)
        went = merged_into(conn, patient.id)
        if went is not None:  # the emergency's dossier is the survivor: open that one
            raise Merged("DOSSIER_MERGED", f"dossier {patient.id} was merged into dossier "
                         f"{went}: break the glass on dossier {went}")
        mode = emergency_mode(principal)
        registered = conn.execute(select(professionals.c.id).where(
            professionals.c.rpps == principal.rpps)).first() is not None
        try:
            if not registered and not rpps_key_ok(principal.rpps or ""):
                raise AccessDenied("RPPS_KEY_INVALID", "break-glass by a professional not in "
                                   "the registry needs an RPPS number with its right check "
                                   "digit (Luhn)")
            _not_opposed(patient, principal)
        except AccessDenied as exc:
            exc.patient_id = patient.id  # type: ignore[attr-defined]
            exc.action = "break_glass.open"  # type: ignore[attr-defined]
            raise
        now = datetime.now(UTC)
        expires = now + timedelta(hours=BREAK_GLASS_HOURS)
        conn.execute(insert(break_glass).values(patient_id=patient.id, rpps=principal.rpps,
                                                reason=reason, started_at=now,
                                                expires_at=expires))
        append(conn, [AuditEvent(principal.actor, "break_glass.open", patient_id=patient.id,
                                 reason=reason,
                                 details={"basis": "break_glass", "mode": mode,
                                          "registered": registered,
                                          "expires_at": expires.isoformat()})])
        return {"patient_id": patient.id, "expires_at": expires.isoformat(),
                "break_glass": True, "mode": mode, "registered": registered}
    return _with_trace(engine, principal, work)


def set_emergency_opposition(engine: Engine, principal: Principal, patient_ref: str, *,
                             break_glass: bool | None = None, regulation: bool | None = None,
                             reason: str | None = None) -> dict:
    """The patient opposes (or stops opposing) break-glass access to their dossier, and
    apart from it the access of the SAMU-Centre 15 regulating doctor (None: that one left
    as it is). The patient themselves, or an admin acting on the patient's request with a
    reason (a letter, a form signed at the desk). Audited 'break_glass.opposition' with the
    values stated, those changed, and the admin's reason. From then on an opening in an
    opposed mode is refused, and so is a read through one opened before."""
    if break_glass is None and regulation is None:
        raise InvalidRequest("NOTHING_STATED", "state break_glass and/or regulation "
                             "(true: opposed, false: not opposed)")
    reason = (reason or "").strip() or None
    if principal.kind == "admin" and (reason is None or len(reason) < 3):
        raise InvalidRequest("REASON_REQUIRED", "an admin states why (the patient's request, "
                             "3 characters or more)")

    def work(conn: Connection) -> dict:
        if principal.kind == "admin":
            patient = _admin_dossier(conn, principal, patient_ref, "sets an opposition",
                                     open_only=True)
            basis = "admin"
        else:
            patient, access = _patient_only(conn, principal, patient_ref,
                                            "break_glass.opposition")
            basis = access.basis
        stated = {"break_glass_opposed": break_glass, "regulation_opposed": regulation}
        values = {k: v for k, v in stated.items() if v is not None}
        changed = sorted(k for k, v in values.items() if bool(getattr(patient, k)) != v)
        conn.execute(update(patients).where(patients.c.id == patient.id).values(**values))
        append(conn, [AuditEvent(principal.actor, "break_glass.opposition",
                                 patient_id=patient.id, reason=reason,
                                 details={"basis": basis, "break_glass": break_glass,
                                          "regulation": regulation, "changed": changed})])
        now = conn.execute(select(patients.c.break_glass_opposed,
                                  patients.c.regulation_opposed)
                           .where(patients.c.id == patient.id)).one()
        return {"patient_id": patient.id, "break_glass_opposed": bool(now[0]),
                "regulation_opposed": bool(now[1]), "changed": changed}
    return _with_trace(engine, principal, work)


def register_professional(engine: Engine, principal: Principal, rpps: str, family: str,
                          given: str | None, role: str) -> dict:
    """Admins declare the professionals who may be authorised (RPPS, name, role)."""
    if principal.kind != "admin":
        raise AccessDenied("ADMIN_ONLY", "only an admin registers professionals")
    number = normalize_rpps(rpps)
    if number is None:
        raise InvalidRequest("BAD_RPPS", "an RPPS number has 11 digits")
    if not (family or "").strip() or not (role or "").strip():
        raise InvalidRequest("BAD_PROFESSIONAL", "family name and role are required")
    with engine.begin() as conn:
        found = conn.execute(select(professionals.c.id).where(
            professionals.c.rpps == number)).first()
        values = {"family": family.strip(), "given": (given or "").strip() or None,
                  "role": role.strip()}
        if found:
            conn.execute(update(professionals).where(professionals.c.id == found.id)
                         .values(**values))
        else:
            conn.execute(insert(professionals).values(rpps=number,
                                                      created_at=datetime.now(UTC),
                                                      **values))
        append(conn, [AuditEvent(principal.actor, "professional.register",
                                 details={"rpps": number, "role": values["role"]})])
    return {"rpps": number, **values}


# -- legal representatives ---------------------------------------------------------------------
def _day(value: str | None, name: str) -> str | None:
    """An ISO calendar day, or InvalidRequest BAD_DATE naming the field."""
    if value is None or not str(value).strip():
        return None
    try:
        return date.fromisoformat(str(value).strip()).isoformat()
    except ValueError:
        raise InvalidRequest("BAD_DATE", f"{name}: YYYY-MM-DD expected") from None


def _admin_dossier(conn: Connection, principal: Principal, ref: str, what: str, *,  # noqa: ANN202
                   open_only: bool = False):
    """The dossier an admin acts on; ``open_only``: a change, refused DOSSIER_MERGED on a
    merged dossier (a tombstone is closed: what it held, and whom, is in the survivor)."""
    if principal.kind != "admin":
        raise AccessDenied("ADMIN_ONLY", f"only an admin {what}")
    patient = _patient_row(conn, ref)
    if patient is None:
        raise NotFound("NOT_FOUND", "no such dossier")
    went = merged_into(conn, patient.id) if open_only else None
    if went is not None:
        raise Merged("DOSSIER_MERGED", f"dossier {patient.id} was merged into dossier {went}: "
                     f"act on dossier {went}")
    return patient


def representative_dict(r) -> dict:  # noqa: ANN001
    return {"id": r.id, "patient_id": r.patient_id, "subject": r.subject,
            "family": r.family, "given": r.given, "quality": r.quality,
            "valid_from": r.valid_from, "valid_until": r.valid_until,
            "declared_at": iso_utc(r.declared_at), "declared_by": r.declared_by,
            "revoked_at": iso_utc(r.revoked_at), "revoked_by": r.revoked_by,
            "revoke_reason": r.revoke_reason}


def declare_representative(engine: Engine, principal: Principal, patient_ref: str, *,
                           subject: str, family: str, given: str | None, quality: str,
                           valid_from: str | None = None,
                           valid_until: str | None = None) -> dict:
    """An admin declares a legal representative on a dossier, on the strength of the papers
    seen (a minor's parents, a guardianship judgment), from ``valid_from`` (today when
    None) until the day before ``valid_until`` (None: until revoked; a minor's: their 18th
    birthday). Audited 'representative.declare' in the patient's trail (the account and the
    dates; the name is read from the declaration when the trail is shown). A representative
    already declared and not revoked on this dossier is refused ALREADY_DECLARED: revoke,
    then declare again, so that each period stays in the history."""
    subject = (subject or "").strip()
    if not ACCOUNT_ID.match(subject):
        raise InvalidRequest("BAD_SUBJECT", "the representative's account id: 1 to 64 letters, "
                             "digits, '.', '_' or '-', one letter at least")
    if not (family or "").strip():
        raise InvalidRequest("BAD_REPRESENTATIVE", "the representative's family name is "
                             "required")
    quality = (quality or "").strip().lower()
    if quality not in representative_qualities():
        raise InvalidRequest("BAD_QUALITY", "quality: one of "
                             + ", ".join(representative_qualities()))
    start = _day(valid_from, "valid_from") or local_today()
    end = _day(valid_until, "valid_until")
    if end is not None and end <= start:
        raise InvalidRequest("BAD_PERIOD", "valid_until must come after valid_from")

    def work(conn: Connection) -> dict:
        patient = _admin_dossier(conn, principal, patient_ref, "declares a legal "
                                 "representative", open_only=True)
        if not holds_on(quality, start, patient.birth_date):
            raise InvalidRequest("PATIENT_OF_AGE", f"a {quality} represents a minor only: "
                                 "the patient is of age on valid_from")
        r = legal_representatives.c
        if conn.execute(select(r.id).where(r.patient_id == patient.id, r.subject == subject,
                                           r.revoked_at.is_(None))).first() is not None:
            raise InvalidRequest("ALREADY_DECLARED", f"representative {subject} is already "
                                 "declared on this dossier: revoke first")
        new_id = conn.execute(insert(legal_representatives).values(
            patient_id=patient.id, subject=subject, family=family.strip(),
            given=(given or "").strip() or None, quality=quality, valid_from=start,
            valid_until=end, declared_at=datetime.now(UTC), declared_by=principal.actor)
            .returning(r.id)).scalar_one()
        append(conn, [AuditEvent(principal.actor, "representative.declare",
                                 patient_id=patient.id,
                                 details={"subject": subject, "quality": quality,
                                          "valid_from": start, "valid_until": end})])
        return representative_dict(conn.execute(select(legal_representatives).where(
            r.id == new_id)).one())
    with engine.begin() as conn:
        return work(conn)


def revoke_representative(engine: Engine, principal: Principal, patient_ref: str,
                          subject: str, reason: str) -> dict:
    """An admin ends a representation before its term (a judgment withdrawing parental
    authority, a guardian replaced): the declaration stays, revoked, with who and why; the
    representative's next read is refused. Audited 'representative.revoke'."""
    reason = (reason or "").strip()
    if len(reason) < 3:
        raise InvalidRequest("REASON_REQUIRED",
                             "a reason (3 characters or more) is required to revoke")
    subject = (subject or "").strip()

    def work(conn: Connection) -> dict:
        patient = _admin_dossier(conn, principal, patient_ref, "revokes a legal "
                                 "representative")
        r = legal_representatives.c
        done = conn.execute(update(legal_representatives).where(
            r.patient_id == patient.id, r.subject == subject, r.revoked_at.is_(None))
            .values(revoked_at=datetime.now(UTC), revoked_by=principal.actor,
                    revoke_reason=reason)).rowcount
        if not done:
            raise NotFound("NOT_DECLARED", f"no representative {subject[:64]} in force on "
                           "this dossier")
        append(conn, [AuditEvent(principal.actor, "representative.revoke",
                                 patient_id=patient.id, reason=reason,
                                 details={"subject": subject})])
        return {"patient_id": patient.id, "subject": subject, "revoked": done}
    with engine.begin() as conn:
        return work(conn)


def list_representatives(engine: Engine, principal: Principal, patient_ref: str) -> dict:
    """Every declaration on a dossier, revoked and ended ones included, with whether it
    holds today (an admin's view)."""
    today = local_today()
    with engine.connect() as conn:
        patient = _admin_dossier(conn, principal, patient_ref, "lists legal representatives")
        rows = conn.execute(select(legal_representatives).where(
            legal_representatives.c.patient_id == patient.id)
            .order_by(legal_representatives.c.id)).all()
    return {"patient_id": patient.id, "majority_day": majority_day(patient.birth_date),
            "representatives": [
        {**representative_dict(r), "in_force": r.revoked_at is None and r.valid_from <= today
         and (r.valid_until is None or r.valid_until > today)
         and holds_on(r.quality, today, patient.birth_date)} for r in rows]}
