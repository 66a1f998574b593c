"""Patient identity as stated in PID: INS, local identifiers, names, birth date, sex, status.

Rules (IHE PAM France / CI-SIS):
- PID-3 repetitions whose assigning authority (CX.4.2) is an INS OID are INS identifiers,
  whatever CX.5 says, except CX.5 = 'NH': that is the NIR used for billing, not an identity,
  so it stays a local identifier and is never used as an INS. Without an OID, an INS
  namespace (CX.4.1 'ASIP-SANTE-INS-NIR') or an INS type code (CX.5 'INS-NIR', 'INS-NIA':
  tables/ins_type_codes.csv) makes it an INS as well, with a warning.
- Other identifiers keep their authority: the OID (CX.4.2) when it is one, else the namespace
  (CX.4.1). One canonical spelling per authority makes local-id matching reliable. Those
  whose type code says they name a stay, an account or an order, not the patient (CX.5 'AN',
  'VN'...: tables/identifier_types_not_patient.csv), are warned about and not kept. A
  namespace without an OID is the sender's own ('LABO'): scoped to the sending facility
  (MSH-4), 'LABO@LABO-LYON' (``scoped_authority``); to its source's identifier domain
  ('CHU@domain:chu-rennes') when the source declares it shared by its facilities or MSH-4
  is empty (``_scoped_for``); read as the OID its source declares for it
  (``Message.namespace_oids``: a hospital's lab naming by namespace the IPP domain its GAM
  names by OID).
- PID-5: type 'L' is the birth name (nom de naissance), 'D' the used name (nom d'usage);
  plain HL7's 'B' (name at birth) and 'M' (maiden name) are the birth name, and 'L' beside
  them the used name (tables/name_types.csv); plain HL7's 'P' (partner or spouse) is the
  used name too. A pseudonym (type 'S', anonymous patient) is not a name, nor an alias,
  a nickname or a name typed bad ('A', 'N', 'BAD'...): never used, so never matched on.
  The first given name is PID-5.2, else the first of the list in PID-5.3.
- PID-32 is the identity status; it repeats (a status and attributes: 'QUAL~DOUTE'), all
  kept, '~'-joined. ``read_identity_status`` reads it with tables/identity_status.csv: the
  INS is trusted under VALI or QUAL (RNIV 'identité qualifiée') unless an attribute (DOUTE,
  FICTI, USUR...) or an unknown code withdraws that trust (identity resolution decides).
Nothing here is logged or put in an error text: warnings only name fields.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache, lru_cache

from normalizers.dates import hl7_ts_to_iso
from normalizers.fields import comps, loc, part, reps, sub, text
from normalizers.married_names import split_family
from normalizers.model import (
    InsIdentifier,
    LocalIdentifier,
    NormalizationError,
    PatientIdentity,
)
from normalizers.nir import (
    ins_kind,
    ins_nir_like,
    ins_oid_for_namespace,
    ins_oid_for_type_code,
    nir_key_valid,
    nir_problem,
    nir_valid,
)
from normalizers.tabledata import table
from parsers.hl7v2.er7 import Message, Segment

_OID = re.compile(r"[0-2](?:\.\d+)+")
# a birth date whose month or day is unknown, written '00' (INSi traits of people born
# abroad): 'YYYY0000', 'YYYYMM00', with or without a time
_UNKNOWN_PARTS = re.compile(r"\d{4}(?:00\d\d|\d\d00)\d*")
UNKNOWN_YEAR = "0000"  # '00000000': no part of the birth date is known
BILLING_NIR = "NH"
INS_TYPE = "INS"
BIRTH_NAME = "birth"  # roles of PID-5.7 name types (tables/name_types.csv)
MAIDEN_NAME = "maiden"
USED_NAME = "used"
PSEUDONYM = "pseudonym"  # a coded pseudo-name (anonymity): never matched on
OTHER_NAME = "other"  # an alias, a nickname, a bad name: never the birth nor the used name
IDENTITY_UNKNOWN = "Y"  # PID-31 identity unknown indicator (HL7 v2.5 table 0136)
MULTIPLE_BIRTH, BIRTH_ORDER = 24, 25  # PID-24 multiple birth indicator, PID-25 birth order
MULTIPLE_BIRTH_YES = "Y"  # HL7 v2.5 table 0136


def authority_of(namespace: str, universal_id: str, universal_type: str) -> str:
    """Canonical assigning authority: the OID when there is one, else the namespace. An OID
    written as a URN ('urn:oid:1.2.250...', as FHIR-minded engines write it) is the bare OID
    a CDA's id/@root and other senders' CX.4.2 give: kept with its prefix, the same
    hospital's IPP was another identifier by HL7v2 and by CDA."""
    bare = _as_oid(universal_id)
    if bare:
        return bare
    if universal_id and universal_type.upper() == "ISO":
        return universal_id
    return _as_oid(namespace) or namespace or universal_id


def extract_identity(msg: Message, pid: Segment | None = None) -> PatientIdentity:
    """PatientIdentity from the PID segment (the first one unless ``pid`` is given).

    Raises NormalizationError HL7_NO_PID when the message has no PID segment.
    """
    if pid is None:
        pid = msg.first("PID")
    if pid is None:
        raise NormalizationError("HL7_NO_PID", "the message has no PID segment", "PID")
    pid = nulls_read_empty(msg, pid)
    ident = PatientIdentity()
    seen: set[tuple[str, str, str]] = set()
    # PID-2 (external id) is where v2.3 senders often put their id; it was withdrawn in v2.7.
    for field_no in (3, 2):
        for n, rep in enumerate(reps(msg, pid, field_no), start=1):
            _add_identifier(msg, ident, rep, f"{loc(pid, field_no)} repetition {n}", seen)
    _mothers_ids(msg, pid, ident)
    _names(msg, pid, ident)
    _birth_date(msg, pid, ident)
    ident.birth_place = _birth_place(msg, pid)
    if text(msg, _first(msg, pid, 31)).strip().upper() == IDENTITY_UNKNOWN:
        # PID-31 'Y': the patient's identity is unknown (an unconscious patient admitted as
        # 'INCONNU'): the names and birth date sent are placeholders, never matched on
        if ident.family or ident.given or ident.birth_date:
            ident.warnings.append(f"{loc(pid, 31)}: identity unknown (Y): the names and birth "
                                  "date sent are placeholders, not used")
        ident.family = ident.given = ident.birth_family = ident.birth_date = ""
        ident.birth_place = ""
        ident.birth_date_partial = ""
    ident.sex = text(msg, part(comps(msg, _first(msg, pid, 8)), 1)).upper()
    # PID-24 'Y', else a birth order past the first (some senders fill '1' for everyone)
    said = text(msg, _first(msg, pid, MULTIPLE_BIRTH)).strip().upper()
    order = text(msg, _first(msg, pid, BIRTH_ORDER)).strip()
    ident.multiple_birth = said == MULTIPLE_BIRTH_YES or (
        not said and order.isdigit() and int(order) > 1)
    ident.identity_status = STATUS_SEPARATOR.join(
        code for code in (text(msg, part(comps(msg, rep), 1)).strip().upper()
                          for rep in reps(msg, pid, 32)) if code)
    return ident


MOTHERS_ID = 21  # PID-21 mother's identifier (a newborn's messages)
MOTHER = "MTH"  # NK1-3 relationship: mother (HL7 v2.5 table 0063)
NK1_RELATIONSHIP, NK1_IDENTIFIERS = 3, 33  # NK1-33: the associated party's identifiers
# segments that may stand between a PID and its NK1s (v2.5 ADT: PID [PD1] [{ROL}] [{NK1}];
# ORU: PID [PD1] [{NTE}] [{NK1}]): the NK1s after another segment are not this PID's
_PATIENT_GROUP = frozenset({"PD1", "ROL", "NTE", "NK1"})


def _mothers_ids(msg: Message, pid: Segment, ident: PatientIdentity) -> None:
    """A PID-3 identifier that PID-21, or the identifiers (NK1-33) of an NK1 whose
    relationship is the mother (NK1-3 'MTH'), give as the mother's: a newborn's message
    filled with its mother's INS or IPP (the child has no NIR yet, the software copied the
    mother's). Filed by it, the baby's results went into the mother's dossier: a conflict,
    quarantined by identity resolution. Compared as read (INS by number, local ids by
    authority). Plain HL7 senders name the mother in NK1 rather than PID-21: read only in
    PID-21, her identifiers in PID-3 were not seen."""
    for where, mother in _mothers(msg, pid):
        nirs = {i.nir for i in mother.ins}
        locals_ = {(li.authority, li.value) for li in mother.local_ids}
        if any(i.nir in nirs for i in ident.ins) or any(
                (li.authority, li.value) in locals_ for li in ident.local_ids):
            ident.conflicts.append(f"{loc(pid, 3)} holds the mother's identifier "
                                   f"({where}): a newborn's message carrying its "
                                   "mother's identity")
            return


def _mothers(msg: Message, pid: Segment) -> list[tuple[str, PatientIdentity]]:
    """(field position, identifiers) of the mother as this PID's message states her:
    PID-21, and NK1-33 of this PID's NK1s whose relationship is 'MTH'."""
    found = []
    if pid.raw(MOTHERS_ID):
        found.append((loc(pid, MOTHERS_ID), identifiers_in(msg, pid, MOTHERS_ID)))
    for seg in msg.segments[pid.index:]:
        if seg.name not in _PATIENT_GROUP:
            break
        if seg.name != "NK1" or not seg.raw(NK1_IDENTIFIERS):
            continue
        relation = text(msg, part(comps(msg, _first(msg, seg, NK1_RELATIONSHIP)), 1))
        if relation.strip().upper() == MOTHER:
            found.append((loc(seg, NK1_IDENTIFIERS),
                          identifiers_in(msg, seg, NK1_IDENTIFIERS)))
    return found


STATUS_SEPARATOR = "~"  # PID-32 repeats: a status and its attributes, kept in order


@dataclass(frozen=True, slots=True)
class StatusReading:
    """What PID-32 (all its repetitions) allows: trusting the INS, a demographic match."""

    ins_trusted: bool
    demographics: bool
    unknown: tuple[str, ...] = ()  # codes tables/identity_status.csv does not know
    vetoes: tuple[str, ...] = ()  # attributes that withdrew trust from the INS
    read_as: str = ""  # several consistent statuses read as the one implying the others
    # the codes saying the traits sent are not stated as the patient's own (FICTI, DOUTE...:
    # tables/identity_status.csv traits_own 0): an ADT's identity update does not apply them
    traits_doubted: tuple[str, ...] = ()


@cache
def _statuses() -> dict[str, dict[str, str]]:
    return {row["code"].upper(): row for row in table("identity_status")}


@lru_cache(maxsize=256)
def read_identity_status(status: str) -> StatusReading:
    """``PatientIdentity.identity_status`` ('QUAL', 'VALI~DOUTE'...) read with
    tables/identity_status.csv: the INS is trusted when a repetition qualifies it (VALI,
    QUAL), it states no other status that it does not imply (``_implying_all``: 'VALI~QUAL'
    is QUAL, 'PROV~VALI' contradicts itself) and no repetition vetoes it
    (DOUTE, FICTI, USUR...) or is unknown; a demographic match is
    allowed unless a repetition says the traits may not be this person's; an ADT's traits
    are applied to the dossier unless one says they are not stated as the patient's own.

    Cached (a frozen result of one string and of the table, itself read once): the filing
    process reads every message's status, nearly always one of a handful ('VALI', 'PROV'),
    and reading it was a fifth of ``resolve_identity`` (cProfile of filing 3,000 ORU^R01)."""
    codes = [c for c in status.upper().split(STATUS_SEPARATOR) if c]
    rows = _statuses()
    unknown = tuple(c for c in codes if c not in rows)
    known = [rows[c] for c in codes if c in rows]
    vetoes = tuple(r["code"] for r in known if r["vetoes_ins"] == "1")
    stated = {r["code"] for r in known if r["kind"] == "status"}
    top = _implying_all(stated)
    qualified = top is not None and rows[top]["qualifies_ins"] == "1"
    return StatusReading(ins_trusted=qualified and not vetoes and not unknown,
                         demographics=all(r["demographics"] == "1" for r in known),
                         unknown=unknown, vetoes=vetoes,
                         read_as=top if top is not None and len(stated) > 1 else "",
                         traits_doubted=tuple(r["code"] for r in known
                                              if r["traits_own"] == "0"))


def _implying_all(stated: set[str]) -> str | None:
    """The one status of ``stated`` that implies every other (tables/identity_status.csv
    ``implies``), None when there is none (no status, or two that contradict each other).

    Why: PAM France lets PID-32 repeat, and senders moving to the RNIV's statuses send the
    identity's whole history of qualification, 'VALI~QUAL' (validated, then qualified).
    Read as two exclusive statuses, that qualified INS was ignored; 'PROV~VALI' still is
    (a provisional identity is not a validated one)."""
    rows = _statuses()
    for code in stated:
        implied = set(rows[code]["implies"].split())
        if stated - {code} <= implied:
            return code
    return None


def identifiers_in(msg: Message, seg: Segment, n: int) -> PatientIdentity:
    """The identifiers of any CX field (MRG-1 of an ADT^A47...), read as PID-3 is: INS kept
    apart from local ids. Only ``ins``, ``local_ids`` and ``warnings`` are filled."""
    ident = PatientIdentity()
    seen: set[tuple[str, str, str]] = set()
    seg = nulls_read_empty(msg, seg)
    for k, rep in enumerate(reps(msg, seg, n), start=1):
        _add_identifier(msg, ident, rep, f"{loc(seg, n)} repetition {k}", seen)
    return ident


def located_local_ids(msg: Message, seg: Segment,
                      n: int) -> list[tuple[str, LocalIdentifier, str]]:
    """The local identifiers of a CX field, each with where it is ('MRG[4]-1 repetition 2')
    and its authority's namespace as sent (CX.4.1), read as ``identifiers_in`` reads them
    (INS, stay and account numbers left out).

    Why the position: an ADT^A47 refused because of an identifier must say which one, and
    never its value (patient data). Why the namespace: a GAM that names the authority by its
    namespace alone in MRG-1 and with its OID in PID-3 means the one domain."""
    seg = nulls_read_empty(msg, seg)
    seen: set[tuple[str, str, str]] = set()
    located: list[tuple[str, LocalIdentifier, str]] = []
    for k, rep in enumerate(reps(msg, seg, n), start=1):
        ident = PatientIdentity()
        where = f"{loc(seg, n)} repetition {k}"
        _add_identifier(msg, ident, rep, where, seen)
        namespace = sub(msg, part(comps(msg, rep), 4), 1)
        located.extend((where, li, namespace) for li in ident.local_ids)
    return located


NULL = '""'  # HL7 v2.5 2.5.3: a value sent as "" is explicitly null: no text


def nulls_read_empty(msg: Message, seg: Segment) -> Segment:
    """``seg`` with every explicitly null value ("") read as empty, whole field, component or
    subcomponent alike (a copy: the parsed message stays as sent). In an identity a '""'
    read as text became a family name '""', a sex '""', an INS '""' with an invalid key (the
    message quarantined) and a birth date warned about as invalid."""
    if not msg.maybe_null or not any(NULL in f for f in seg.fields[1:]):
        return seg
    d = msg.delimiters

    def read(value: str) -> str:
        if NULL not in value:
            return value
        return d.repetition.join(
            d.component.join(d.subcomponent.join("" if s == NULL else s
                                                 for s in comp.split(d.subcomponent))
                             for comp in rep.split(d.component))
            for rep in value.split(d.repetition))

    return Segment(seg.name, [seg.fields[0], *map(read, seg.fields[1:])], seg.index)


def _first(msg: Message, seg: Segment, n: int) -> str:
    r = reps(msg, seg, n)
    return r[0] if r else ""


def _as_oid(value: str) -> str:
    """``value`` as a bare OID ('urn:oid:1.2.3' -> '1.2.3'), '' when it is no OID."""
    value = value.strip()
    if value[:8].lower() == "urn:oid:":
        value = value[8:]
    return value if _OID.fullmatch(value) else ""


def _ins_spelled_otherwise(namespace: str, oid: str, ident: PatientIdentity,
                           where: str) -> tuple[str | None, str]:
    """(INS kind or None, OID) for an INS OID sent as a URN ('urn:oid:1.2.250...') or in
    CX.4.1 instead of CX.4.2 ('NIR^^^1.2.250.1.213.1.4.8^INS'), else (None, ``oid``)."""
    bare = _as_oid(oid)
    if bare:
        kind = ins_kind(bare)
        return (kind, bare) if kind else (None, oid)
    bare = _as_oid(namespace)
    kind = ins_kind(bare) if bare else None
    if kind is None:
        return None, oid
    ident.warnings.append(f"{where}: INS OID sent as the namespace (CX.4.1), not as the "
                          "universal id (CX.4.2)")
    return kind, bare


def _oids_disagree(ident: PatientIdentity, namespace: str, universal_id: str, where: str,
                   kind: str | None = None) -> None:
    """CX.4.1 written as an OID other than CX.4.2's ('1.2.250.1.213.1.4.8&1.2.250.1.213.1.4.10'):
    the universal id (CX.4.2) is the assigning authority (HL7 v2.5 2.A.33), said in a
    warning; for an INS whose two OIDs name two kinds (a production and a test INS-NIR) a
    conflict: which kind the number is, the sender does not know itself. Unread, the
    namespace's OID was dropped in silence and the number filed as the other kind."""
    said, used = _as_oid(namespace), _as_oid(universal_id)
    if not said or not used or said == used:
        return
    said_kind = ins_kind(said)
    if kind is not None and said_kind is not None and said_kind != kind:
        ident.conflicts.append(f"{where}: the assigning authority names an {said_kind} "
                               f"(CX.4.1) and an {kind} (CX.4.2)")
        return
    ident.warnings.append(f"{where}: assigning authority's namespace (CX.4.1) is another OID "
                          "than its universal id (CX.4.2): CX.4.2 used")


@cache
def _not_patient_types() -> frozenset[str]:
    """CX.5 type codes of identifiers that name no patient (a stay, an account, an order)."""
    return frozenset(row["type_code"].upper() for row in table("identifier_types_not_patient"))


def _add_identifier(msg: Message, ident: PatientIdentity, rep: str, where: str,
                    seen: set[tuple[str, str, str]]) -> None:
    c = comps(msg, rep)
    value = sub(msg, part(c, 1), 1)
    if not value:
        return
    hd = part(c, 4)
    namespace, oid, oid_type = sub(msg, hd, 1), sub(msg, hd, 2), sub(msg, hd, 3)
    type_code = text(msg, part(c, 5)).upper()
    kind = ins_kind(oid) if oid else None
    if kind is None and (oid[:4].lower() == "urn:" or namespace[:2] in ("1.", "ur", "UR")):
        kind, oid = _ins_spelled_otherwise(namespace, oid, ident, where)
    if kind is None and not oid and type_code != BILLING_NIR:
        # No OID: an INS namespace ('ASIP-SANTE-INS-NIR') or an INS type code ('INS-NIR')
        # still says it is an INS, whatever else CX.5 says ('PI', empty): read as a local id
        # it was matched and remembered whatever PID-32 said, bypassing the VALI rule.
        guessed = ins_oid_for_namespace(namespace) or ins_oid_for_type_code(namespace)
        said = "its namespace"
        if not guessed:
            guessed, said = ins_oid_for_type_code(type_code), "its type code (CX.5)"
        if guessed:
            oid, kind = guessed, ins_kind(guessed)
            ident.warnings.append(f"{where}: INS without OID, kind taken from {said}")
    if kind is not None and type_code != BILLING_NIR:
        _oids_disagree(ident, namespace, oid, where, kind)
        nir = "".join(value.split()).upper()  # '2 88 02 99 351 042 xx', tabs, NBSP
        if ("ins", oid, nir) in seen:
            return
        seen.add(("ins", oid, nir))
        nir_like = ins_nir_like(oid)
        valid = nir_valid(nir) if nir_like else False
        ident.ins.append(InsIdentifier(nir=nir, oid=oid, kind=kind, key_valid=valid))
        if nir_like and not valid:
            said = "INS is not valid" if nir_key_valid(nir) else "INS key is not valid"
            ident.warnings.append(f"{where}: {said}: the INS {nir_problem(nir)}")
        return
    if type_code in _not_patient_types():
        # a stay (NDA), account or order number beside the IPP: numbered from another counter
        # than the patients, it is some other patient's IPP too; never matched nor remembered
        ident.warnings.append(f"{where}: identifier of type {type_code} does not name the "
                              "patient (tables/identifier_types_not_patient.csv): not used")
        return
    if type_code == INS_TYPE or ins_oid_for_type_code(type_code):
        ident.warnings.append(f"{where}: typed INS but its authority is not an INS OID")
    _oids_disagree(ident, namespace, oid, where)
    authority = authority_of(namespace, oid, oid_type)
    if not authority:
        ident.warnings.append(f"{where}: identifier without assigning authority")
    unscoped = ""
    if authority and authority == namespace and not _as_oid(namespace) \
            and not ins_oid_for_namespace(namespace):  # a national one ('ASIP-SANTE-INS-NIR')
        scoped = msg.namespace_oids.get(namespace.strip().upper()) or \
            _scoped_for(msg, namespace)
        unscoped, authority = (namespace, scoped) if scoped != namespace else ("", authority)
    if (authority, value, type_code) in seen:
        return
    seen.add((authority, value, type_code))
    ident.local_ids.append(LocalIdentifier(authority=authority, value=value, type_code=type_code,
                                           unscoped=unscoped))


SENDING_FACILITY = 4  # MSH-4


def _sending_facility(msg: Message) -> str:
    """MSH-4's namespace id, else its universal id (as ``Message.sender`` reads it)."""
    msh = msg.segments[0] if msg.segments else None
    return msg.hd(msh, SENDING_FACILITY) if msh is not None and msh.name == "MSH" else ""
SCOPE_MARK = "@"
DOMAIN_MARK = "domain:"  # 'CHU@domain:chu-rennes': a source's domain, not an MSH-4 value
FACILITY_MARK = "msh4:"  # an MSH-4 value that begins as a domain does: 'CHU@msh4:domain:x'
AUTHORITY_MAX = 200  # patient_identifiers.authority


def _scoped_for(msg: Message, namespace: str) -> str:
    """A namespace-only authority as stored: scoped to its source's identifier domain when
    the source declares the namespace shared by its facilities (``Message.shared_namespaces``)
    or when MSH-4 names no facility, else to MSH-4 (``scoped_authority``).

    Why the domain: a hospital's lab and RIS number their patients in one 'CHU' domain under
    two MSH-4 values; scoped to each, the RIS missed every IPP the lab taught. Why for an
    empty MSH-4: left as sent ('LABO'), what such a sender taught was global, found by any
    other sender's 'LABO' through the fallback kept for identifiers stored before scoping."""
    domain = msg.identifier_domain.strip()
    facility = _sending_facility(msg)
    if domain and (namespace.strip().upper() in msg.shared_namespaces or not facility.strip()):
        return domain_authority(namespace, domain)
    return scoped_authority(namespace, facility)


def domain_authority(namespace: str, domain: str) -> str:
    """'CHU@domain:chu-rennes': a namespace-only authority scoped to a source's identifier
    domain; marked apart from an MSH-4 scope ('CHU@chu-rennes'), which any sender may claim.
    ``namespace`` as it is when the two would not fit the stored column."""
    scoped = f"{namespace}{SCOPE_MARK}{DOMAIN_MARK}{domain.strip()}"
    return scoped if len(scoped) <= AUTHORITY_MAX else namespace


def scoped_authority(namespace: str, facility: str) -> str:
    """A namespace-only assigning authority (CX.4.1 'LABO', no OID in CX.4.2) as the sending
    facility's (MSH-4): 'LABO@LABO-LYON'. Why: a namespace without a universal id is only
    defined locally (HL7 v2.5 2.A.33), and two laboratories both calling their patient
    numbers 'LABO' shared every number: one's patient 4711 was filed in the dossier the
    other's 4711 named. ``namespace`` as it is without a facility, when it is the facility's
    own name (a hospital naming its IPP domain after itself: that domain is the facility's,
    and its other systems, sending under another MSH-4, name it so too), or when the two
    would not fit the stored column (a namespace that long is no short local name anyway)."""
    facility = facility.strip()
    if facility.lower().startswith(DOMAIN_MARK):  # never read as a source's domain
        facility = f"{FACILITY_MARK}{facility}"
    scoped = f"{namespace}{SCOPE_MARK}{facility}"
    if not facility or facility.upper() == namespace.strip().upper() \
            or len(scoped) > AUTHORITY_MAX:
        return namespace
    return scoped


@cache
def _name_types() -> dict[str, tuple[str, int]]:
    """PID-5.7 name type -> (role, rank) from tables/name_types.csv."""
    return {row["code"].upper(): (row["role"], int(row["rank"] or 1))
            for row in table("name_types")}


def birth_name_stated(msg: Message, pid: Segment) -> bool:
    """Whether PID-5 states the patient's birth name: a repetition typed as one (PAM France
    'L', plain HL7 'B' or 'M'), or an untyped name (one field for both names), or a family
    name written 'X ÉPOUSE Y' (``read_joined_family``).

    Why: a PID naming only the used name (PAM France 'D') reads, for matching, with that name
    as the birth name too (``_names``); an ADT^A08/A31 applying it then overwrote the
    dossier's birth name with the married name."""
    for rep in reps(msg, pid, 5):
        c = comps(msg, rep)
        if not sub(msg, part(c, 1), 1):
            continue
        role, _ = _name_types().get(text(msg, part(c, 7)).strip().upper(), ("", 0))
        if role in ("", BIRTH_NAME, MAIDEN_NAME):
            return True
    return False


def _names(msg: Message, pid: Segment, ident: PatientIdentity) -> None:
    by_type: dict[str, tuple[str, str]] = {}
    ranks: dict[str, int] = {}
    untyped: tuple[str, str] | None = None
    first: tuple[str, str] | None = None
    pseudonym = False
    others = 0  # names typed as not the patient's own (alias...) sent before the first read
    for rep in reps(msg, pid, 5):
        c = comps(msg, rep)
        family, given = sub(msg, part(c, 1), 1), sub(msg, part(c, 2), 1)
        if not given:
            # PAM France: PID-5.2 the first given name, PID-5.3 the list of given names;
            # a sender filling only the list still names the first one
            given = next(iter(sub(msg, part(c, 3), 1).replace(",", " ").split()), "")
        if not family and not given:
            continue
        role, rank = _name_types().get(text(msg, part(c, 7)).strip().upper(), ("", 0))
        if role == PSEUDONYM:
            pseudonym = True
            continue
        if role == OTHER_NAME:
            if first is None:  # sent before any name read: it was the one compared
                others += 1
            continue
        if first is None:
            first = (family, given)
        if role and (role not in by_type or rank < ranks[role]):
            by_type[role], ranks[role] = (family, given), rank
        elif not role and untyped is None:
            untyped = (family, given)
    if pseudonym:
        ident.warnings.append(f"{loc(pid, 5)}: a pseudonym (name type S) is not the patient's "
                              "name: not used")
    birth = by_type.get(BIRTH_NAME)
    used = by_type.get(USED_NAME)
    maiden = by_type.get(MAIDEN_NAME)
    if others and birth is None and used is None and maiden is None:
        # read as the first name sent, an alias before the legal name (or alone) was the
        # name matched, compared and given to an auto-created dossier
        ident.warnings.append(f"{loc(pid, 5)}: {others} name(s) typed as not the patient's "
                              "own (alias, nickname, bad name...: tables/name_types.csv "
                              "role other): not used")
    if maiden is not None and (birth is None or used is None):
        # plain HL7: the birth name typed 'B' or 'M', the legal name 'L' the one used now
        # ('L' beside 'D' is PAM France's birth name: it stays so, whatever 'M' says)
        birth, used = maiden, used or birth or untyped or maiden
    elif birth is None and used is None:
        birth = used = first
    elif birth is None:
        birth = used
        # only the used name: compared as both names, but the birth name is unknown
        ident.birth_family_stated = untyped is not None
    elif used is None:
        used = birth
    if birth is None or used is None:
        ident.warnings.append(f"{loc(pid, 5)}: no patient name")
        return
    ident.family = used[0] or birth[0]
    ident.birth_family = birth[0]
    ident.given = birth[1] or used[1]
    read_joined_family(ident, loc(pid, 5))


def read_joined_family(ident: PatientIdentity, where: str) -> None:
    """A family name written 'MARTIN ÉPOUSE DUPONT' or 'DUPONT NÉE MARTIN' (one field for
    both names, normalizers/married_names.py) is its birth name and its used name: compared
    whole it matched no dossier. A name sent apart (PID-5 type L beside D) is kept."""
    in_birth, in_used = split_family(ident.birth_family), split_family(ident.family)
    if in_birth is None and in_used is None:
        return
    single = ident.birth_family in ("", ident.family)  # one field for both names
    if in_used is not None:
        ident.family = in_used.used
        if single:
            ident.birth_family = in_used.birth
            ident.birth_family_stated = True  # 'DUPONT ÉPOUSE MARTIN' says it
    if in_birth is not None and not single:
        ident.birth_family = in_birth.birth
    ident.warnings.append(f"{where}: family name written with 'épouse' or 'née': read as a "
                          "birth name and a used name")


BIRTH_ADDRESS = "BDL"  # XAD.7 address type: birth delivery location (HL7 v2.5 table 0190)
ADDRESS, ADDRESS_TYPE, COUNTY_CODE, BIRTH_PLACE = 11, 7, 9, 23
_INSEE_CODE = re.compile(r"(?:\d\d|2[AB])\d{3}")  # a commune's, or '99' + a country's


def _birth_place(msg: Message, pid: Segment) -> str:
    """The INSEE code of the birth place: PID-11's address of type BDL, its XAD.9 (IHE PAM
    France, the INS traits' 'lieu de naissance'), else PID-23 when it holds such a code
    (a place name there is not compared); '' when none is given. Only ever used to tell
    two persons apart (identity resolution), never to find a dossier."""
    for rep in reps(msg, pid, ADDRESS):
        c = comps(msg, rep)
        if text(msg, part(c, ADDRESS_TYPE)).upper() == BIRTH_ADDRESS:
            code = insee_code(text(msg, part(c, COUNTY_CODE)))
            if code:
                return code
    return insee_code(text(msg, part(comps(msg, _first(msg, pid, BIRTH_PLACE)), 1)))


def insee_code(value: str) -> str:
    """``value`` as an INSEE place code ('29232', '2A004', '99351'), '' when it is none."""
    code = value.strip().upper()
    return code if _INSEE_CODE.fullmatch(code) else ""


def _birth_date(msg: Message, pid: Segment, ident: PatientIdentity) -> None:
    raw = part(comps(msg, _first(msg, pid, 7)), 1)
    if not raw:
        return
    try:
        iso = hl7_ts_to_iso(text(msg, raw), None)
    except ValueError:
        if text(msg, raw)[:4] == UNKNOWN_YEAR:
            # '00000000': the default of HIS forms for a birth date nobody typed. Read as the
            # year 0000 it was "a birth date to the year" that every dossier contradicted:
            # each message was warned as stating another birth date than the dossier's
            ident.warnings.append(f"{loc(pid, 7)}: birth date unknown (year 0000), kept "
                                  "empty")
            return
        if _UNKNOWN_PARTS.fullmatch(text(msg, raw)):
            ident.warnings.append(f"{loc(pid, 7)}: birth date with unknown month or day "
                                  "('00', as the INS traits state it), kept empty")
            digits = text(msg, raw)
            ident.birth_date_partial = digits[:4] if digits[4:6] == "00" \
                else f"{digits[:4]}-{digits[4:6]}"
        else:
            ident.warnings.append(f"{loc(pid, 7)}: birth date is not a valid date, ignored")
        return
    if len(iso) < 10:
        ident.warnings.append(f"{loc(pid, 7)}: birth date is partial, kept empty")
        ident.birth_date_partial = iso
        return
    ident.birth_date = iso[:10]


def single_pid(msg: Message) -> Segment:
    """The PID of a message about one patient.

    Raises HL7_NO_PID when there is none and HL7_MULTIPLE_PATIENTS when it names several
    patients (an ADT, an MDM, an ORU^R30: one patient by their structure; an ORU^R01 is cut
    into one part per patient first, normalizers/lab/dispatch.py ``normalize_patients``, and
    each part read here). Their data is never mixed."""
    pids = msg.all("PID")
    if not pids:
        raise NormalizationError("HL7_NO_PID", "the message has no PID segment", "PID")
    first = pids[0]
    for other in pids[1:]:
        differs = _other_patient(msg, first, other)
        if differs:
            where = loc(other, differs)
            raise NormalizationError("HL7_MULTIPLE_PATIENTS",
                                     f"{where}: a second patient in the same message", where)
    return first


# What says who the patient is when PID-3 names no one: PID-2 (the external id of v2.3
# senders), PID-4 (alternate id), PID-5 (names), PID-7 (birth date), PID-8 (sex).
_IDENTITY_WITHOUT_PID3 = (2, 4, 5, 7, 8)


def _other_patient(msg: Message, before: Segment, pid: Segment) -> int:
    """0 when ``pid`` repeats the patient of ``before``, else the PID field that tells them
    apart. The same PID-3 holding an identifier is the same patient; PID-3 empty (or
    explicitly null, or no CX.1 in any repetition) on both says nothing, and the other
    fields that identify a patient decide. Compared on PID-3 alone, two patients sent by
    their PID-2 external ids or by their names only were one: the second one's results
    were filed in the first one's dossier. Raw fields compared: no split in the common case
    (PID-3 differs, or holds an identifier)."""
    raw3 = pid.raw(3)
    if raw3 != before.raw(3):
        return 3
    if _names_someone(msg, raw3):
        return 0
    return next((n for n in _IDENTITY_WITHOUT_PID3 if pid.raw(n) != before.raw(n)), 0)


def _names_someone(msg: Message, raw3: str) -> bool:
    """PID-3 holds an identifier (CX.1) in some repetition: '""', '^^^LABO^PI' name no one."""
    d = msg.delimiters
    return any(text(msg, rep.split(d.component, 1)[0].split(d.subcomponent, 1)[0])
               not in ("", '""') for rep in raw3.split(d.repetition)) if raw3 else False


def patient_starts(msg: Message) -> list[int]:
    """The positions in ``msg.segments`` of the PIDs that start a patient: every PID that
    names another patient than the PID before it (``_other_patient``: a PID repeated with
    the same PID-3 is still the same patient, as ``single_pid`` reads it; without PID-3,
    PID-2, PID-4 and the demographics tell). One comprehension, no field split in the
    common case: it runs for every result message, nearly all of them about one patient."""
    segments = msg.segments
    pids = [i for i, seg in enumerate(segments) if seg.name == "PID"]
    if len(pids) < 2:
        return pids
    return [i for n, i in enumerate(pids)
            if n == 0 or _other_patient(msg, segments[pids[n - 1]], segments[i])]
