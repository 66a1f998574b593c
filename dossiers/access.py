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
  authorised them (not revoked), or through break-glass (an emergency, with a reason, for
  ``BREAK_GLASS_HOURS``; every read inside it is traced as such). A patient who stated no
  consent to consultation (ZFA-11 ``INC``), or whose DMP is closed (``FERME``), can be read
  by nobody but themselves, except through break-glass.
- **Masked** documents and entries (the sender's MASQUE_PS, or the patient's own choice,
  which wins) are seen by the patient, the médecin traitant and the document's author only;
  break-glass does not reveal them. An entry inside a document (a result of a CDA lab
  report) follows its document.
- A document **withdrawn** by its author becomes a new version with status ``withdrawn``:
  gone from every read, kept (with who withdrew it) for the audit.
- An **unauthorised** professional gets the same ``AccessDenied`` whether the patient exists
  or not. Denied attempts on an existing dossier are traced in the patient's trail.
- **Admins** run the platform: they register professionals and may set a médecin traitant,
  but they do not read dossiers through here (the operator's CLI has its own, audited,
  commands). **Senders** only push.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, Engine, func, insert, select, update

from dossiers.audit import AuditEvent, append, iso_utc
from dossiers.consent import DOES_NOT_OBJECT, OBJECTS, apply_consent
from dossiers.patients import find_by_reference
from dossiers.schema import (
    audit_log,
    authorizations,
    break_glass,
    entries,
    patients,
    professionals,
)
from normalizers.model import ConsentStatement

BREAK_GLASS_HOURS = 4
RPPS_OID = "1.2.250.1.71.4.2.1"  # CDA author ids: root RPPS_OID, extension "8" + RPPS
KINDS = ("patient", "professional", "admin", "sender")
_RPPS = re.compile(r"^8?(\d{11})$")


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


DENIED = ("ACCESS_DENIED", "no access to this dossier")


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
    basis: str  # patient, treating, authorised, break_glass; author (withdrawal only)
    principal: Principal

    @property
    def sees_masked(self) -> bool:
        return self.basis in ("patient", "treating")

    def as_dict(self) -> dict:
        return {"basis": self.basis, "break_glass": self.basis == "break_glass"}


# -- decisions (pure, over rows already read) ------------------------------------------------
def decide(principal: Principal, patient, *, authorised: bool,  # noqa: ANN001
           break_glass_open: bool) -> str:
    """The basis on which ``principal`` may read ``patient`` (a ``patients`` row), or
    AccessDenied."""
    if principal.kind == "patient":
        if str(patient.id) == principal.subject:
            return "patient"
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
        return "break_glass"
    raise AccessDenied(*DENIED)


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


def is_visible(row, access: Access, document=None) -> bool:  # noqa: ANN001
    """Whether ``access`` shows this entry (a current one). ``document``: the entry's parent
    document row, whose masking, flags and author the entry follows."""
    if not row.current or row.status == "withdrawn":
        return False
    holder = document if document is not None else row
    if document is not None and (not document.current or document.status == "withdrawn"):
        return False
    flags = holder.masking or {}
    if access.basis == "patient":
        return not flags.get("INVISIBLE_PATIENT")
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


def _authorised(conn: Connection, patient_id: int, rpps: str | None) -> bool:
    if rpps is None:
        return False
    return conn.execute(select(authorizations.c.id).where(
        authorizations.c.patient_id == patient_id, authorizations.c.rpps == rpps,
        authorizations.c.revoked_at.is_(None)).limit(1)).first() is not None


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
    now = datetime.now(UTC)
    try:
        basis = decide(principal, patient,
                       authorised=_authorised(conn, patient.id, principal.rpps),
                       break_glass_open=_break_glass_open(conn, patient.id, principal.rpps,
                                                          now))
    except AccessDenied as exc:
        exc.patient_id = patient.id  # type: ignore[attr-defined]
        exc.action = action  # type: ignore[attr-defined]
        raise
    return patient, Access(patient.id, basis, principal)


def _documents_of(conn: Connection, rows: Sequence) -> dict[int, object]:
    """{parent id: the parent's current version}. An entry confirmed unchanged by a new
    version of its report or document keeps pointing at the version that brought it: what it
    follows (masking, author, withdrawal) is the newest version of that parent."""
    parents = {r.parent_id for r in rows if r.parent_id is not None}
    if not parents:
        return {}
    found = {r.id: r for r in conn.execute(select(entries).where(entries.c.id.in_(parents)))}
    stale = {(r.patient_id, r.key) for r in found.values() if not r.current}
    if stale:
        newest = {(r.patient_id, r.key): r for r in conn.execute(select(entries).where(
            entries.c.patient_id.in_({p for p, _ in stale}),
            entries.c.key.in_({k for _, k in stale}), entries.c.current.is_(True)))}
        for parent_id, r in list(found.items()):
            if not r.current and (r.patient_id, r.key) in newest:
                found[parent_id] = newest[(r.patient_id, r.key)]
    return found


def _visible(conn: Connection, rows: Sequence, access: Access) -> list:
    documents = _documents_of(conn, rows)
    return [r for r in rows if is_visible(r, access, documents.get(r.parent_id))]


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
            "treating_rpps": p.treating_rpps}


def _read_event(access: Access, action: str, **details: object) -> AuditEvent:
    return AuditEvent(access.principal.actor, action, patient_id=access.patient_id,
                      details={"basis": access.basis, **details})


def _with_trace(engine: Engine, principal: Principal, work):  # noqa: ANN001, ANN202
    """Run ``work(conn)`` in one transaction; a denial on an existing dossier is traced in a
    transaction of its own (the patient sees who tried), then raised."""
    try:
        with engine.begin() as conn:
            return work(conn)
    except AccessDenied as exc:
        patient_id = getattr(exc, "patient_id", None)
        if patient_id is not None:
            with engine.begin() as conn:
                append(conn, [AuditEvent(principal.actor, "access.denied",
                                         patient_id=patient_id,
                                         details={"action": getattr(exc, "action", None)})])
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
        return {"patient_id": patient.id, "access": access.as_dict(), "total": len(rows),
                "offset": offset, "entries": [entry_dict(r) for r in page]}
    return _with_trace(engine, principal, work)


def _entry_for(conn: Connection, principal: Principal, entry_id: int, action: str) -> tuple:
    """(entry row, its document row or None, patients row, Access); NotFound when the
    entry does not exist or the reader may not see it (the same answer for both)."""
    row = conn.execute(select(entries).where(entries.c.id == entry_id)).first()
    if row is None:
        raise NotFound("NOT_FOUND", f"no document {entry_id}")
    patient, access = _open(conn, principal, str(row.patient_id), action)
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
        if row.attachment_sha256 is None:
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
               limit: int = 1000, offset: int = 0) -> dict:
    """The patient's trail: every access and change, with who did it (the patient only)."""
    def work(conn: Connection) -> dict:
        patient, access = _open(conn, principal, patient_ref, "audit.read")
        if access.basis != "patient":
            raise AccessDenied(*DENIED)
        rows = list(conn.execute(select(audit_log).where(audit_log.c.chain == patient.id)
                                 .order_by(audit_log.c.seq).limit(limit).offset(offset)))
        names = _professional_names(conn, rows)
        append(conn, [_read_event(access, "audit.read", events=len(rows))])
        return {"patient_id": patient.id, "events": [
            {"seq": r.seq, "at": iso_utc(r.at), "actor": r.actor,
             "actor_name": names.get(r.actor), "action": r.action, "reason": r.reason,
             "details": r.details,
             "break_glass": (r.details or {}).get("basis") == "break_glass"
             or r.action == "break_glass.open"} for r in rows]}
    return _with_trace(engine, principal, work)


def _professional_names(conn: Connection, rows: Iterable) -> dict[str, str]:
    rpps = {r.actor.split(":", 1)[1] for r in rows if r.actor.startswith("professional:")}
    if not rpps:
        return {}
    return {f"professional:{p.rpps}": " ".join(filter(None, (p.given, p.family)))
            + f" ({p.role})" for p in conn.execute(
                select(professionals).where(professionals.c.rpps.in_(rpps)))}


def export_fhir(engine: Engine, principal: Principal, patient_ref: str,
                base_url: str = "urn:dmp") -> dict:
    """What the reader may see, as a FHIR R4 Bundle (dossiers/fhir.py)."""
    from dossiers.export import load_parent_versions, load_provenance
    from dossiers.fhir import to_bundle

    def work(conn: Connection) -> dict:
        patient, access = _open(conn, principal, patient_ref, "dossier.export")
        rows = _visible(conn, _current_rows(conn, patient.id), access)
        append(conn, [_read_event(access, "dossier.export", format="fhir",
                                  entries=len(rows))])
        found = [r._mapping for r in rows]
        return to_bundle(patient._mapping, found, versions=load_parent_versions(conn, found),
                         provenance=load_provenance(conn, [r["id"] for r in found]),
                         import_ids=False, base_url=base_url)
    return _with_trace(engine, principal, work)


# -- changes ---------------------------------------------------------------------------------
def _document_family(conn: Connection, row) -> list:  # noqa: ANN001
    """A document and the current entries it holds, whichever of its versions brought them
    (what masking or withdrawing it acts on)."""
    versions = select(entries.c.id).where(entries.c.patient_id == row.patient_id,
                                          entries.c.key == row.key)
    children = list(conn.execute(select(entries).where(
        entries.c.parent_id.in_(versions), entries.c.current.is_(True),
        entries.c.id != row.id)))
    return [row, *children]


def set_mask(engine: Engine, principal: Principal, entry_id: int, masked: bool) -> dict:
    """The patient masks (or unmasks) a document, or a single entry, from professionals."""
    def work(conn: Connection) -> dict:
        row, _, _, access = _entry_for(conn, principal, entry_id, "document.mask")
        if access.basis != "patient":
            raise AccessDenied("PATIENT_ONLY", "only the patient masks or unmasks")
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
    would be (403 on a dossier they may not read, AUTHOR_ONLY on one they may)."""
    reason = (reason or "").strip()
    if len(reason) < 3:
        raise InvalidRequest("REASON_REQUIRED", "a reason is required to withdraw")

    def work(conn: Connection) -> dict:
        own = _own_document(conn, principal, entry_id)
        if own is None:
            _entry_for(conn, principal, entry_id, "document.withdraw")  # 404 / 403, traced
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


def grant(engine: Engine, principal: Principal, patient_ref: str, rpps: str) -> dict:
    """The patient authorises a professional to read their dossier."""
    def work(conn: Connection) -> dict:
        patient, access = _patient_only(conn, principal, patient_ref, "authorization.grant")
        number = _known_professional(conn, rpps)
        if not _authorised(conn, patient.id, number):
            conn.execute(insert(authorizations).values(
                patient_id=patient.id, rpps=number, granted_at=datetime.now(UTC),
                granted_by=principal.actor))
        append(conn, [_read_event(access, "authorization.grant", rpps=number)])
        return {"patient_id": patient.id, "rpps": number, "authorised": True}
    return _with_trace(engine, principal, work)


def revoke(engine: Engine, principal: Principal, patient_ref: str, rpps: str) -> dict:
    """The patient withdraws a professional's authorisation (the row stays, revoked)."""
    def work(conn: Connection) -> dict:
        patient, access = _patient_only(conn, principal, patient_ref, "authorization.revoke")
        number = normalize_rpps(rpps)
        if number is None:
            raise InvalidRequest("BAD_RPPS", "an RPPS number has 11 digits")
        done = conn.execute(update(authorizations).where(
            authorizations.c.patient_id == patient.id, authorizations.c.rpps == number,
            authorizations.c.revoked_at.is_(None)).values(
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
            patient = _patient_row(conn, patient_ref)
            if patient is None:
                raise NotFound("NOT_FOUND", "no such dossier")
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


def open_break_glass(engine: Engine, principal: Principal, patient_ref: str,
                     reason: str) -> dict:
    """An emergency read for ``BREAK_GLASS_HOURS``, with a reason, always traced."""
    reason = (reason or "").strip()
    if len(reason) < 10:
        raise InvalidRequest("REASON_REQUIRED",
                             "break-glass needs the emergency's reason (10 characters or more)")
    if principal.kind != "professional" or principal.rpps is None:
        raise AccessDenied(*DENIED)

    def work(conn: Connection) -> dict:
        patient = _patient_row(conn, patient_ref)
        if patient is None:
            raise AccessDenied(*DENIED)
        now = datetime.now(UTC)
        expires = now + timedelta(hours=BREAK_GLASS_HOURS)
        conn.execute(insert(break_glass).values(patient_id=patient.id, rpps=principal.rpps,
                                                reason=reason, started_at=now,
                                                expires_at=expires))
        append(conn, [AuditEvent(principal.actor, "break_glass.open", patient_id=patient.id,
                                 reason=reason,
                                 details={"basis": "break_glass",
                                          "expires_at": expires.isoformat()})])
        return {"patient_id": patient.id, "expires_at": expires.isoformat(),
                "break_glass": True}
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
