"""Identity resolution: which dossier an input belongs to, or why we cannot tell.

Order (DESIGN.md): a trusted INS (valid key, identity status VALI or QUAL with no doubtful,
fictitious... attribute: tables/identity_status.csv), then a known local
identifier (assigning authority + id), then a strict demographic match (folded family name,
first given name, full birth date, sex). Anything ambiguous or unknown is quarantined with
the reason; nothing is filed on a guess. Reasons name identifiers by kind, never by value.
A dossier the patient opposed (OPPOSITION) or whose DMP is closed (DOSSIER_CLOSED) is not
fed: what would feed it is quarantined as well.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, bindparam, select

from dossiers.names import name_key
from dossiers.patients import (
    Patient,
    add_identifier,
    add_identifiers,
    create_patient,
    find_by_demographics,
    find_by_ins,
    find_by_local_id,
    first_given_key,
    get_patient,
    patient_from_row,
    replace_ins,
    set_ins,
)
from dossiers.schema import patient_identifiers, patients
from normalizers.identity import read_identity_status
from normalizers.model import InsIdentifier, LocalIdentifier, PatientIdentity
from normalizers.nir import (
    birth_place_contradicts,
    ins_kind,
    ins_replaced_by,
    nir_contradicts,
    nir_problem,
)

OPPOSITION = "OPPOSITION"  # quarantine: the patient opposed the feeding of their dossier
DOSSIER_CLOSED = "DOSSIER_CLOSED"  # quarantine: the patient's DMP is closed (ZFA-1 FERME)
CLOSED = "FERME"
# found by a local id, in a dossier holding a qualified INS, for an identity without a trusted
# INS: filed, but not an identity update (pipelines/process.py TRUSTED_MATCHES lacks it)
LOCAL_ID_NO_INS = "local-id-no-ins"
KNOWN_SEXES = ("F", "M")  # what a strict demographic match compares; dossiers hold one
TRUSTED_KINDS = {"INS-NIR", "INS-NIA", "INS-NIR-TEST", "INS-NIR-DEMO"}
# the INSi test platform's and the demonstration INS (OIDs .4.10, .4.11): their numbers look
# like real NIRs (some are), only the OID tells them apart; a production intake
# (Settings.trust_test_ins false) never lets one choose or create a dossier
TEST_KINDS = {"INS-NIR-TEST", "INS-NIR-DEMO"}
NOT_IDENTITY_KINDS = {
    "INS-C": "the computed INS (OID 1.2.250.1.213.1.4.2) is obsolete, replaced by the INS-NIR",
    "NIR": "a NIR used as a social security number is not an INS",
    "NIA": "a NIA used as a social security number is not an INS",
}


@dataclass(slots=True)
class Resolution:
    patient_id: int | None
    via: str = ""  # 'ins', 'local-id', LOCAL_ID_NO_INS, 'demographics', 'auto-create'
    code: str | None = None  # quarantine reason code
    reason: str | None = None
    warnings: list[str] | None = None
    # what the resolution changed in the dossier's identity, for its audit trail (kinds only):
    # ('identity.ins_replaced', {'from': 'INS-NIA', 'to': 'INS-NIR'}), ('dossier.create', ...)
    audit: tuple[str, dict] | None = None


class NeedsOwnTransaction(Exception):
    """Raised by a batch lookup for what it does not do in bulk (creating a dossier): the
    message is filed on its own instead."""


class StoreLookup:
    """Identity lookups and writes straight against the store, one message at a time."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def by_ins(self, nir: str) -> Patient | None:
        return find_by_ins(self.conn, nir)

    def by_local_id(self, authority: str, value: str) -> list[int]:
        return find_by_local_id(self.conn, authority, value)

    def by_identifier(self, li: LocalIdentifier) -> list[int]:
        """The dossiers ``li`` names: by its authority, else, for a namespace-only one, by
        the namespace as sent (identifiers stored before scoping, ``find_by_local_id``)."""
        found = self.by_local_id(li.authority, li.value)
        return found or (self.by_local_id(li.unscoped, li.value) if li.unscoped else [])

    def by_demographics(self, family: str, given: str, birth_date: str, sex: str) -> list[int]:
        return find_by_demographics(self.conn, family, given, birth_date, sex)

    def patient(self, patient_id: int) -> Patient | None:
        return get_patient(self.conn, patient_id)

    def remember(self, patient_id: int, authority: str, value: str, type_code: str) -> None:
        add_identifier(self.conn, patient_id, authority, value, type_code)

    def create(self, **fields) -> int:  # noqa: ANN003
        return create_patient(self.conn, **fields)

    def give_ins(self, patient_id: int, nir: str, oid: str) -> bool:
        return set_ins(self.conn, patient_id, nir, oid)

    def change_ins(self, patient: Patient, nir: str, oid: str) -> bool:
        return replace_ins(self.conn, patient.id, patient.ins or "", patient.ins_oid or "",
                           nir, oid)


# BatchLookup's reads, built once with their lists as expanding parameters: built per batch
# with the values as literals, SQLAlchemy coerced every value and rebuilt each statement.
_BY_NIRS = select(patients).where(patients.c.ins.in_(bindparam("nirs", expanding=True)))
_BY_VALUES = select(patient_identifiers).where(
    patient_identifiers.c.value.in_(bindparam("values", expanding=True)))
_BY_IDS = select(patients).where(patients.c.id.in_(bindparam("ids", expanding=True)))


class BatchLookup(StoreLookup):
    """The same lookups for a batch of messages: the patients named by INS or by local id in
    any of them are read with a few queries up front, identifiers learnt are written in one
    statement by ``flush``; creating a dossier is left to the one-by-one path."""

    def __init__(self, conn: Connection, identities: list[PatientIdentity]) -> None:
        super().__init__(conn)
        nirs = {i.nir for ident in identities for i in ident.ins}
        values = {li.value for ident in identities for li in ident.local_ids if li.value}
        # an INS replaced since (an INS-NIA) is remembered among the identifiers of the
        # dossier that now holds its successor (``replace_ins``)
        values |= {i.nir for ident in identities for i in ident.ins
                   if ins_replaced_by(i.kind)}
        self.by_nir: dict[str, Patient] = {}
        self.patients: dict[int, Patient] = {}
        self.identifiers: dict[tuple[str, str], list[int]] = {}
        self.learnt: list[dict] = []
        if nirs:
            for row in conn.execute(_BY_NIRS, {"nirs": sorted(nirs)}):
                self._keep(patient_from_row(row))
        if values:
            for row in conn.execute(_BY_VALUES, {"values": sorted(values)}):
                self.identifiers.setdefault((row.authority, row.value), []).append(
                    row.patient_id)
            missing = {p for ids in self.identifiers.values() for p in ids} - set(self.patients)
            if missing:
                for row in conn.execute(_BY_IDS, {"ids": sorted(missing)}):
                    self._keep(patient_from_row(row))

    def _keep(self, patient: Patient) -> None:
        self.patients[patient.id] = patient
        if patient.ins:
            self.by_nir[patient.ins] = patient

    def by_ins(self, nir: str) -> Patient | None:
        return self.by_nir.get(nir)

    def by_local_id(self, authority: str, value: str) -> list[int]:
        return list(self.identifiers.get((authority, value), []))

    def patient(self, patient_id: int) -> Patient | None:
        if patient_id not in self.patients:
            found = get_patient(self.conn, patient_id)
            if found is None:
                return None
            self._keep(found)
        return self.patients[patient_id]

    def remember(self, patient_id: int, authority: str, value: str, type_code: str) -> None:
        if (authority, value) not in self.identifiers:
            self.identifiers[(authority, value)] = [patient_id]
            self.learnt.append({"patient_id": patient_id, "authority": authority,
                                "value": value, "type_code": type_code})

    def create(self, **fields) -> int:  # noqa: ANN003
        raise NeedsOwnTransaction

    def give_ins(self, patient_id: int, nir: str, oid: str) -> bool:
        raise NeedsOwnTransaction

    def change_ins(self, patient: Patient, nir: str, oid: str) -> bool:
        raise NeedsOwnTransaction

    def mark(self) -> int:
        """Where ``undo`` goes back to."""
        return len(self.learnt)

    def undo(self, mark: int) -> None:
        """Forget the identifiers learnt since ``mark``: a message of several patients whose
        second patient is quarantined files nothing, not even what its first taught us."""
        for learnt in self.learnt[mark:]:
            self.identifiers.pop((learnt["authority"], learnt["value"]), None)
        del self.learnt[mark:]

    def flush(self) -> None:
        if self.learnt:
            add_identifiers(self.conn, self.learnt)
            self.learnt = []


def _said(identity_status: str) -> str:
    """PID-32 as a reason may show it: its known codes only (an unknown one could be
    anything a sender put in the field)."""
    known = [c for c in identity_status.split("~") if c and read_identity_status(c).unknown == ()]
    hidden = len([c for c in identity_status.split("~") if c]) - len(known)
    return "~".join(known) + (f" (+{hidden} unknown code(s))" if hidden else "") or "empty"


def _quarantine(code: str, reason: str, warnings: list[str]) -> Resolution:
    return Resolution(None, code=code, reason=reason, warnings=warnings)


def dossier_refusal(patient: Patient | None) -> tuple[str, str] | None:
    """(code, reason) when the dossier must not be fed: the patient opposed its feeding
    (ZFA-9 IO), or their DMP is closed (ZFA-1 FERME). None when it may be fed."""
    if patient is None:
        return None
    if patient.opposed:
        return OPPOSITION, "the patient has opposed the feeding of their dossier"
    if patient.dmp_status == CLOSED:
        return DOSSIER_CLOSED, "the patient's DMP is closed: it is not fed"
    return None


def resolve_identity(conn: Connection, identity: PatientIdentity, *, auto_create: bool,
                     lookup: StoreLookup | None = None, feeding: bool = True,
                     trust_test_ins: bool = True) -> Resolution:
    """Find the dossier (``lookup``: the store, or a batch's prefetched view of it).

    ``feeding``: the input would feed the dossier (results, documents), so a dossier the
    patient opposed or closed is refused. An ADT is not feeding: it is what states the
    opposition, and what lifts it. ``trust_test_ins`` false (a production intake): a test
    or demonstration INS is ignored, as a NIR used for billing is (``_production_ins``)."""
    lookup = lookup or StoreLookup(conn)
    warnings: list[str] = []
    if identity.conflicts:
        return _quarantine("IDENTITY_CONFLICT", f"{identity.conflicts[0]}: not filed on a "
                           "guess", warnings)
    chosen = None
    ins_candidates = [i for i in identity.ins if i.kind in TRUSTED_KINDS]
    if not trust_test_ins:
        ins_candidates = _production_ins(ins_candidates, warnings)
    for kind in sorted({i.kind for i in identity.ins if i.kind not in TRUSTED_KINDS}):
        # INS-C: the computed INS withdrawn for the INS-NIR; NIR/NIA (OIDs .4.13, .4.14):
        # the number used for social security, not an identity (NOT_IDENTITY_KINDS)
        warnings.append(f"{kind} ignored: {NOT_IDENTITY_KINDS.get(kind, 'not an INS')}")
    status = read_identity_status(identity.identity_status)
    if status.unknown:
        warnings.append(f"identity status (PID-32): {len(status.unknown)} code(s) not in "
                        "table identity_status (the INS is not trusted)")
    if status.read_as:
        warnings.append(f"identity status (PID-32) repeats consistent statuses "
                        f"({_said(identity.identity_status)}): read as {status.read_as}, "
                        "which implies the others")
    if ins_candidates:
        if identity.identity_status and not status.ins_trusted:
            warnings.append(f"INS ignored: identity status (PID-32) is "
                            f"{_said(identity.identity_status)}, not a qualified identity "
                            "(VALI or QUAL without a doubtful, fictitious... attribute)")
        elif not identity.identity_status and identity.ins:
            warnings.append("INS ignored: no identity status (PID-32) says it was qualified")
        else:
            invalid = [i for i in ins_candidates if not i.key_valid]
            if invalid:
                return _quarantine("IDENTITY_INS_INVALID_KEY",
                                   f"the {invalid[0].kind} sent {nir_problem(invalid[0].nir)} "
                                   f"(OID {invalid[0].oid}): not filed on a guess", warnings)
            pair = _with_predecessor(ins_candidates)
            if pair is not None:
                return _by_successor(lookup, identity, *pair, identity.local_ids, warnings,
                                     auto_create, feeding)
            if len({i.nir for i in ins_candidates}) > 1:
                return _quarantine("IDENTITY_AMBIGUOUS",
                                   f"the identifiers carry {len({i.nir for i in ins_candidates})} "
                                   "different INS: one person has one INS", warnings)
            kinds = sorted({i.kind for i in ins_candidates})
            if len(kinds) > 1:
                # one number as a production and a test INS: which one the dossier holds
                # decided by the repetitions' order (filed one way, IDENTITY_CONFLICT the other)
                return _quarantine("IDENTITY_CONFLICT", f"the INS is sent as {len(kinds)} "
                                   f"kinds ({', '.join(kinds)}): a production INS is never a "
                                   "test one", warnings)
            chosen = ins_candidates[0]

    local_ids = patient_local_ids(identity)
    if chosen is not None:
        return _by_ins(lookup, identity, chosen, local_ids, warnings, auto_create, feeding)
    # An INS not trusted to find the dossier (PROV, RECUP, no PID-32) is still this person's
    # number unless an attribute doubts it (DOUTE, FICTI, USUR...): it may veto a dossier.
    unqualified = [i for i in ins_candidates if i.key_valid] if not status.vetoes else []

    matches = _local_matches(lookup, local_ids)
    if len(matches) == 1:
        known = lookup.patient(next(iter(matches)))
        refused = _incoherent(identity, "local identifier", known, warnings, feeding) \
            if known is not None else None
        refused = refused or _other_ins(lookup, unqualified, next(iter(matches)), known,
                                        "local identifiers", warnings)
        if refused:
            return refused
        via = "local-id"
        if known is not None and known.ins:
            # The dossier holds a qualified INS (its traits are the INSi's); a message without
            # a trusted INS files there, but its traits must not overwrite the dossier's.
            via = LOCAL_ID_NO_INS
            if not feeding:
                warnings.append("the dossier holds a qualified INS and this identity is not "
                                "qualified: its traits do not update the dossier")
        return _accept(lookup, matches.pop(), via, local_ids, warnings, feeding, patient=known)
    if len(matches) > 1:
        return _quarantine("IDENTITY_CONFLICT",
                           f"the local identifiers point to {len(matches)} different dossiers "
                           f"({naming(lookup, local_ids)}): not filed on a guess", warnings)

    if not status.demographics:
        return _quarantine("IDENTITY_UNKNOWN_PATIENT",
                           f"no trusted INS, no known local identifier, and the identity status "
                           f"(PID-32 {_said(identity.identity_status)}) says the traits may not be "
                           "the patient's own: no demographic match", warnings)
    if not (identity.family and identity.given and identity.birth_date and identity.sex):
        return _quarantine("IDENTITY_UNKNOWN_PATIENT",
                           "no trusted INS, no known local identifier, and demographics "
                           "incomplete for a strict match", warnings)
    if identity.sex not in KNOWN_SEXES:
        # PID-8 'U', 'O', 'A', 'N', CDA 'UN': the sex is not known, a trait missing; a strict
        # match needs all four (dossiers hold F or M), so none is made, and the reason says so
        return _quarantine("IDENTITY_UNKNOWN_PATIENT",
                           "no trusted INS, no known local identifier, and the sex is not "
                           "stated as F or M (unknown, other...): demographics incomplete for "
                           "a strict match", warnings)
    if identity.multiple_birth:
        # twins share family name, birth date and often sex; a newborn's given name is
        # often a placeholder ('BEBE 1', 'BEBE 2' both key as BEBE): matched on traits, the
        # second twin's results went into the first one's dossier
        return _quarantine("IDENTITY_UNKNOWN_PATIENT",
                           "no trusted INS, no known local identifier, and the patient is one "
                           "of a multiple birth (PID-24, PID-25): twins are not told apart by "
                           "their traits, no demographic match", warnings)
    found = _demographic_matches(lookup, identity)
    if len(found) == 1:
        refused = _born_elsewhere(identity, lookup.patient(found[0]), warnings) or \
            _other_ins(lookup, unqualified, found[0], lookup.patient(found[0]),
                       "demographics", warnings)
        return refused or _accept(lookup, found[0], "demographics", local_ids, warnings,
                                  feeding)
    if len(found) > 1:
        return _quarantine("IDENTITY_AMBIGUOUS",
                           f"demographics match {len(found)} dossiers", warnings)
    return _quarantine("IDENTITY_UNKNOWN_PATIENT",
                       "no dossier matches the INS, local identifiers or demographics",
                       warnings)


def _by_ins(lookup: StoreLookup, identity: PatientIdentity, chosen: InsIdentifier,
            local_ids: list[LocalIdentifier], warnings: list[str], auto_create: bool,
            feeding: bool) -> Resolution:
    """The dossier of a trusted INS. The INS decides, but never against the rest of what the
    sender says: the local identifiers naming another dossier (IDENTITY_CONFLICT), the
    dossier holding this number as another kind of INS (a test INS is not a production one),
    or the dossier's traits contradicting the message's (IDENTITY_TRAITS_MISMATCH) are
    quarantined. An INS no dossier holds, sent with a local identifier that names one
    dossier (created earlier from a provisional identity): that dossier, which receives the
    INS, rather than a second dossier for the same person."""
    named = _local_matches(lookup, local_ids)
    patient = lookup.by_ins(chosen.nir)
    if patient is None and ins_replaced_by(chosen.kind):
        patient = _replaced_holder(lookup, chosen, warnings)
    if patient is not None:
        if named - {patient.id}:
            return _quarantine("IDENTITY_CONFLICT",
                               f"the {chosen.kind} and the local identifiers name different "
                               f"dossiers ({chosen.kind} -> dossier {patient.id}; "
                               f"{naming(lookup, local_ids)}): not filed on a guess", warnings)
        refused = _incoherent(identity, chosen.kind, patient, warnings, feeding, chosen.nir)
        return refused or _accept(lookup, patient.id, "ins", local_ids, warnings, feeding,
                                  patient=patient)
    if len(named) > 1:
        return _quarantine("IDENTITY_CONFLICT",
                           f"no dossier holds this {chosen.kind} and the local identifiers "
                           f"point to {len(named)} different dossiers "
                           f"({naming(lookup, local_ids)}): not filed on a guess", warnings)
    if named:
        known = lookup.patient(next(iter(named)))
        if known is None:
            return _quarantine("IDENTITY_UNKNOWN_PATIENT", "the dossier the local identifiers "
                               "name no longer exists", warnings)
        if known.ins and _succeeds(chosen, known):
            return _succeed(lookup, identity, chosen, known, local_ids, warnings, feeding)
        if known.ins:
            return _quarantine("IDENTITY_CONFLICT",
                               f"the local identifiers name a dossier that holds another INS "
                               f"than the {chosen.kind} sent: not filed on a guess", warnings)
        refused = _incoherent(identity, chosen.kind, known, warnings, feeding)
        if refused:
            return refused
        # the NIR's own digits (sex, birth year and month) must agree with the dossier it
        # is given to: a newborn's message carrying its mother's INS beside the baby's IPP
        # gave the baby's dossier the mother's INS, and her results then went there
        contradicted = nir_contradicts(chosen.nir, known.birth_date, known.sex) or \
            nir_contradicts(chosen.nir, identity.birth_date, identity.sex)
        if contradicted:
            return _quarantine("IDENTITY_TRAITS_MISMATCH",
                               f"the {chosen.kind}'s own digits contradict the {contradicted} "
                               "of the dossier the local identifiers name: it is not given "
                               "to it (identity to check)", warnings)
        found = _accept(lookup, known.id, "local-id", local_ids, warnings, feeding,
                        patient=known)
        if found.patient_id is not None:
            if lookup.give_ins(known.id, chosen.nir, chosen.oid):
                warnings.append(f"the dossier found by its local identifier receives the "
                                f"{chosen.kind} (qualified identity)")
            else:
                return _quarantine("IDENTITY_CONFLICT", f"the {chosen.kind} could not be "
                                   "given to the dossier the local identifiers name (another "
                                   "dossier holds it)", warnings)
        return found
    if not (identity.family and identity.given and identity.birth_date
            and identity.sex in ("F", "M")):
        if not auto_create:
            return _quarantine("IDENTITY_UNKNOWN_PATIENT",
                               f"no dossier for this {chosen.kind} "
                               "(create it, or enable auto-creation)", warnings)
        return _quarantine("IDENTITY_INCOMPLETE",
                           "dossier auto-creation needs family name, given name, "
                           "full birth date and sex (PID-5, PID-7, PID-8)", warnings)
    # a look-alike holding its own INS-NIR is another person (one person, one INS): twins
    # named 'BEBE 1' and 'BEBE 2', homonyms born the same day; one holding an INS that a
    # NIR replaces (an INS-NIA) may be this person still
    look_alikes = [p for p in _demographic_matches(lookup, identity)
                   if not _holds_lasting_ins(lookup.patient(p))]
    if look_alikes:
        return _quarantine("IDENTITY_AMBIGUOUS" if auto_create else "IDENTITY_UNKNOWN_PATIENT",
                           f"no dossier holds this {chosen.kind}, but {len(look_alikes)} "
                           "dossier(s) without it match its traits: assign the patient "
                           "(a new dossier would duplicate it)", warnings)
    if not auto_create:
        return _quarantine("IDENTITY_UNKNOWN_PATIENT",
                           f"no dossier for this {chosen.kind} "
                           "(create it, or enable auto-creation)", warnings)
    contradicted = nir_contradicts(chosen.nir, identity.birth_date, identity.sex)
    if contradicted:
        return _quarantine("IDENTITY_TRAITS_MISMATCH",
                           f"the {chosen.kind}'s own digits contradict the {contradicted} "
                           "sent: no dossier is created on it (identity to check)", warnings)
    pid = lookup.create(family=identity.family, given=identity.given,
                        # PID-5 naming only the used name ('D') does not say the birth name:
                        # recorded, the married name became the dossier's birth name
                        birth_family=(identity.birth_family or None)
                        if identity.birth_family_stated else None,
                        birth_date=identity.birth_date, sex=identity.sex,
                        ins=chosen.nir, ins_oid=chosen.oid, created_by="auto-create")
    _remember(lookup, pid, local_ids)
    # a dossier opened for the patient is a write to it, in the trail they read, as an
    # operator's `dossier create` is (under the sender's source id, with the import)
    return Resolution(pid, via="auto-create", warnings=warnings,
                      audit=("dossier.create", {"ins": True, "auto": True}))


def _with_predecessor(candidates: list[InsIdentifier]
                      ) -> tuple[InsIdentifier, InsIdentifier] | None:
    """(successor, predecessor) when ``candidates`` are two numbers, one of a kind the
    other's replaces (an INS-NIR and the person's former INS-NIA: tables/ins_oids.csv
    replaced_by), else None.

    Why: a CDA recordTarget (several patientRole/id) or a PID-3 that carries the INS-NIR
    the person received and the INS-NIA they were known by until then: 'two different INS,
    one person has one INS' quarantined it (IDENTITY_AMBIGUOUS), though the NIA is by
    definition the temporary number the NIR replaces."""
    distinct = {(i.nir, i.kind): i for i in candidates}
    if len(distinct) != 2 or len({nir for nir, _ in distinct}) != 2:
        return None
    first, second = distinct.values()
    if ins_replaced_by(second.kind) == first.kind:
        return first, second
    if ins_replaced_by(first.kind) == second.kind:
        return second, first
    return None


def _by_successor(lookup: StoreLookup, identity: PatientIdentity, chosen: InsIdentifier,
                  former: InsIdentifier, local_ids: list[LocalIdentifier], warnings: list[str],
                  auto_create: bool, feeding: bool) -> Resolution:
    """The dossier of an INS sent with the one it replaced (``_with_predecessor``): the
    dossier holding the successor; else the one still holding the predecessor, which the
    successor replaces (as ``_succeed`` does); two dossiers holding one each are two
    persons' (IDENTITY_CONFLICT naming them, nothing filed)."""
    local_ids = [li for li in local_ids if li.type_code != "NH"]
    warnings.append(f"the {former.kind} sent beside the {chosen.kind} that replaces it: "
                    f"filed by the {chosen.kind}")
    holder = lookup.by_ins(chosen.nir)
    former_holder = lookup.by_ins(former.nir) or _replaced_holder(lookup, former, [])
    if holder is not None and former_holder is not None and holder.id != former_holder.id:
        return _quarantine("IDENTITY_CONFLICT",
                           f"the {chosen.kind} and the {former.kind} sent name different "
                           f"dossiers ({chosen.kind} -> dossier {holder.id}; {former.kind} "
                           f"-> dossier {former_holder.id}): not filed on a guess", warnings)
    if holder is None and former_holder is not None and former_holder.ins == former.nir:
        named = _local_matches(lookup, local_ids) - {former_holder.id}
        if named:
            return _quarantine("IDENTITY_CONFLICT",
                               f"the {former.kind} and the local identifiers name different "
                               f"dossiers ({former.kind} -> dossier {former_holder.id}; "
                               f"{naming(lookup, local_ids)}): not filed on a guess", warnings)
        return _succeed(lookup, identity, chosen, former_holder, local_ids, warnings, feeding,
                        via="ins")
    return _by_ins(lookup, identity, chosen, local_ids, warnings, auto_create, feeding)


def _production_ins(candidates: list[InsIdentifier],
                    warnings: list[str]) -> list[InsIdentifier]:
    """``candidates`` without the test and demonstration INS (``TEST_KINDS``), each kind
    dropped warned about. Why: a sender's engine left on the INSi test platform goes live
    and sends its patients' test INS under VALI; trusted, they found or created dossiers by
    a number that is not the patient's (and may be a real person's NIR). Not even kept as an
    unqualified INS that could veto a dossier: the number says nothing of this person."""
    for kind in sorted({i.kind for i in candidates if i.kind in TEST_KINDS}):
        warnings.append(f"{kind} ignored: a test or demonstration INS is not trusted by a "
                        "production intake (trust_test_ins = false)")
    return [i for i in candidates if i.kind not in TEST_KINDS]


def _holds_lasting_ins(patient: Patient | None) -> bool:
    """The dossier holds an INS no other replaces (an INS-NIR, not a temporary INS-NIA)."""
    held = ins_kind(patient.ins_oid or "") if patient is not None and patient.ins else None
    return held is not None and ins_replaced_by(held) is None


def _replaced_holder(lookup: StoreLookup, chosen: InsIdentifier,
                     warnings: list[str]) -> Patient | None:
    """The dossier that held this INS (an INS-NIA) before its successor replaced it
    (``replace_ins`` keeps it among the dossier's identifiers), when exactly one did."""
    former = lookup.by_local_id(chosen.oid, chosen.nir)
    if len(former) != 1:
        return None
    patient = lookup.patient(former[0])
    if patient is not None:
        warnings.append(f"the {chosen.kind} sent has been replaced by the dossier's "
                        f"{ins_kind(patient.ins_oid or '') or 'INS'}: filed by it")
    return patient


def _succeeds(chosen: InsIdentifier, known: Patient) -> bool:
    """The INS sent is the successor of the one the dossier holds (an INS-NIR sent for a
    dossier holding the person's temporary INS-NIA: tables/ins_oids.csv replaced_by)."""
    held = ins_kind(known.ins_oid or "")
    return held is not None and ins_replaced_by(held) == chosen.kind


def _succeed(lookup: StoreLookup, identity: PatientIdentity, chosen: InsIdentifier,
             known: Patient, local_ids: list[LocalIdentifier], warnings: list[str],
             feeding: bool, via: str = "local-id") -> Resolution:
    """A qualified INS-NIR for the dossier the local identifiers name, which holds the
    person's INS-NIA: the NIA was temporary, the NIR replaces it (the NIA is kept among the
    dossier's identifiers). Only when the dossier's traits agree with the message's and
    the NIR's own digits with both (sex, birth year and month): else another person's NIR,
    quarantined. It was IDENTITY_CONFLICT whatever the traits: the dossier could never
    receive its NIR."""
    refused = _incoherent(identity, chosen.kind, known, warnings, feeding, chosen.nir)
    if refused:
        return refused
    contradicted = nir_contradicts(chosen.nir, known.birth_date, known.sex)
    if contradicted:
        return _quarantine("IDENTITY_TRAITS_MISMATCH",
                           f"the {chosen.kind}'s own digits contradict the dossier's "
                           f"{contradicted}: it does not replace the dossier's "
                           f"{ins_kind(known.ins_oid or '')} (identity to check)", warnings)
    found = _accept(lookup, known.id, via, local_ids, warnings, feeding, patient=known)
    if found.patient_id is None:
        return found
    if not lookup.change_ins(known, chosen.nir, chosen.oid):
        return _quarantine("IDENTITY_CONFLICT", f"the {chosen.kind} could not replace the "
                           "dossier's temporary INS (another dossier holds it)", warnings)
    held = ins_kind(known.ins_oid or "")
    warnings.append(f"the dossier's {held} (temporary) is replaced by the {chosen.kind} sent "
                    "(qualified identity)")
    found.audit = ("identity.ins_replaced", {"from": held, "to": chosen.kind})
    return found


def _other_ins(lookup: StoreLookup, sent: list[InsIdentifier], patient_id: int,
               patient: Patient | None, found_by: str, warnings: list[str]) -> Resolution | None:
    """IDENTITY_CONFLICT when an INS the message sends without qualifying it (``sent``: valid
    keys, no attribute doubting them) says the dossier ``found_by`` the local identifiers or
    the demographics is another person's: another dossier holds that INS, or this dossier
    holds another INS. The INS does not choose the dossier (PID-32 does not let it), but one
    person has one INS: filing there would put one patient's results in another's dossier."""
    for ins in sent:
        holder = lookup.by_ins(ins.nir)
        if holder is not None and holder.id != patient_id:
            return _quarantine("IDENTITY_CONFLICT",
                               f"the {ins.kind} sent (not qualified) is held by another "
                               f"dossier than the one the {found_by} name: not filed on a "
                               "guess", warnings)
    # an INS the dossier held before its successor replaced it (an INS-NIA) is still its own
    former = {i.nir for i in sent if ins_replaced_by(i.kind)
              and patient_id in lookup.by_local_id(i.oid, i.nir)}
    if sent and patient is not None and patient.ins and not former \
            and patient.ins not in {i.nir for i in sent}:
        return _quarantine("IDENTITY_CONFLICT",
                           f"the dossier the {found_by} name holds another INS than the "
                           f"{sent[0].kind} sent (not qualified): not filed on a guess",
                           warnings)
    return None


def naming(lookup: StoreLookup, local_ids: list[LocalIdentifier]) -> str:
    """Which identifier names which dossier, by assigning authority and type code and the
    dossier's internal id ('1.2.250.1.71.4.2.2.1 (PI) -> dossier 12; LABO-X (PI) ->
    dossier 34'), never the identifier's value: what the admin needs to find the two dossiers
    (told only that there were two, they searched both by the patient's name)."""
    said = []
    for li in local_ids:
        ids = sorted(set(lookup.by_identifier(li)))
        if ids:
            typed = f" ({li.type_code})" if li.type_code else ""
            said.append(f"{li.authority}{typed} -> dossier{'s' if len(ids) > 1 else ''} "
                        f"{', '.join(map(str, ids))}")
    return "; ".join(said)


def _born_elsewhere(identity: PatientIdentity, patient: Patient | None,
                    warnings: list[str]) -> Resolution | None:
    """IDENTITY_TRAITS_MISMATCH when the dossier the traits found holds an INS whose own
    digits name another birth place than the one sent (PID-11 BDL): two persons of the same
    names, birth date and sex, born in two communes (the homonyms the INS traits' birth
    place is there to tell apart). Only ever a veto: a birth place finds no dossier."""
    if patient is None or not patient.ins or \
            not birth_place_contradicts(patient.ins, identity.birth_place,
                                        identity.birth_date or patient.birth_date):
        return None
    return _quarantine("IDENTITY_TRAITS_MISMATCH",
                       "the only dossier the demographics match holds an INS whose birth place "
                       "(its digits 6-10) is not the one sent (PID-11 BDL): a homonym born the "
                       "same day elsewhere; not filed on a guess (identity to check)", warnings)


def patient_local_ids(identity: PatientIdentity) -> list[LocalIdentifier]:
    """The local identifiers that may name the patient's dossier: all but a billing NIR
    (CX.5 'NH', not an identity)."""
    return [li for li in identity.local_ids if li.type_code != "NH"]


def local_id_matches(lookup: StoreLookup, identity: PatientIdentity) -> set[int]:
    """The dossiers the identity's local identifiers name, as ``resolve_identity`` looks
    them up (scoped authority, then the namespace as sent): for the hint of which
    quarantined imports a dossier now exists for (pipelines/waiting.py)."""
    return _local_matches(lookup, patient_local_ids(identity))


def _local_matches(lookup: StoreLookup, local_ids: list[LocalIdentifier]) -> set[int]:
    matches: set[int] = set()
    for li in local_ids:
        matches.update(lookup.by_identifier(li))
    return matches


def _demographic_matches(lookup: StoreLookup, identity: PatientIdentity) -> list[int]:
    """The dossiers whose family name (``patients.family_key``) or birth name
    (``birth_family_key``) is the message's used or birth name, with its first given name,
    birth date and sex. When both sides state a birth name apart from their used name and
    the two differ, they are two persons: a message
    born MARTIN, now DUPONT, is not the dossier born LEROY now going by MARTIN (it matched
    that dossier by the name one was born with and the other married into)."""
    found = lookup.by_demographics(identity.family, identity.given, identity.birth_date,
                                   identity.sex)
    said_birth = _distinct_birth_name(identity.family, identity.birth_family)
    if said_birth:
        found = sorted(set(found) | set(lookup.by_demographics(
            identity.birth_family, identity.given, identity.birth_date, identity.sex)))
        found = [pid for pid in found if _birth_name_agrees(lookup.patient(pid), said_birth)]
    return found


def _distinct_birth_name(family: str | None, birth_family: str | None) -> str:
    """The key of a birth name stated apart from a different used name, '' when none is."""
    birth = name_key(birth_family or "")
    return birth if birth and birth != name_key(family or "") else ""


def _birth_name_agrees(patient: Patient | None, said_birth: str) -> bool:
    held = _distinct_birth_name(patient.family, patient.birth_family) if patient else ""
    return not held or held == said_birth


def _incoherent(identity: PatientIdentity, named_by: str, patient: Patient,
                warnings: list[str], feeding: bool, nir: str | None = None) -> Resolution | None:
    """IDENTITY_CONFLICT / IDENTITY_TRAITS_MISMATCH when the dossier an INS (``named_by``: its
    kind) or a local identifier names is not the person the message describes, None when
    coherent. Traits compared when both sides have them: birth date, sex (F/M), and the
    names (the family names, used and birth, share nothing AND the first given names
    differ: a marriage changes the used name, not the birth name nor the first given name).
    An ADT (not ``feeding``) is how a hospital corrects an identity (A08, A31): its traits
    differing are a warning, not a quarantine, or a wrong dossier could never be put right.
    ``nir``: the INS sent; the dossier holding it as another kind is compared only when it
    holds that very number (an INS-NIA held, its successor INS-NIR sent: ``_succeed``)."""
    held_kind = ins_kind(patient.ins_oid) if patient.ins and patient.ins_oid else None
    if held_kind and named_by.startswith("INS") and held_kind != named_by \
            and (nir is None or patient.ins == nir):
        return _quarantine("IDENTITY_CONFLICT",
                           f"the dossier holds this number as {held_kind}, "
                           f"the message sends it as {named_by}", warnings)
    differ = traits_differ(identity, patient)
    if differ and not feeding:
        warnings.append(f"the dossier named by the {named_by} has another {differ} than "
                        "the message (an identity update may correct it)")
    elif differ:
        return _quarantine("IDENTITY_TRAITS_MISMATCH",
                           f"the dossier named by the {named_by} has another {differ} than "
                           "the message: not filed on a guess (identity to check)", warnings)
    return None


def traits_differ(identity: PatientIdentity, patient: Patient) -> str:
    """Which trait of ``identity`` contradicts ``patient`` ('birth date', 'sex', 'names'),
    '' when none does (a trait missing on either side contradicts nothing; a birth date sent
    to the year or the month contradicts a dossier born in another). Names are
    compared by the keys the demographic match uses (``name_key``, ``first_given_key``):
    'D'ARTAGNAN' and 'DARTAGNAN' are one family name here too."""
    if identity.birth_date and patient.birth_date and identity.birth_date != patient.birth_date:
        return "birth date"
    # a year or a month only ('1984', '1984-06'): the dossier's date must fall in it
    partial = identity.birth_date_partial
    if partial and not identity.birth_date and patient.birth_date \
            and not patient.birth_date.startswith(partial):
        return "birth date"
    if identity.sex in ("F", "M") and patient.sex in ("F", "M") and identity.sex != patient.sex:
        return "sex"
    said = {name_key(n) for n in (identity.family, identity.birth_family) if n} - {""}
    held = {name_key(n) for n in (patient.family, patient.birth_family) if n} - {""}
    said_given, held_given = first_given_key(identity.given), first_given_key(patient.given)
    if said and held and not said & held and said_given and held_given \
            and said_given != held_given:
        return "names"
    return ""


def _accept(lookup: StoreLookup, patient_id: int, via: str, local_ids, warnings,  # noqa: ANN001
            feeding: bool, patient: Patient | None = None) -> Resolution:
    if feeding:
        refusal = dossier_refusal(patient or lookup.patient(patient_id))
        if refusal is not None:
            return _quarantine(*refusal, warnings)
    _remember(lookup, patient_id, local_ids)
    return Resolution(patient_id, via=via, warnings=warnings)


def _remember(lookup: StoreLookup, patient_id: int, local_ids) -> None:  # noqa: ANN001
    for li in local_ids:
        if li.authority and li.value:
            lookup.remember(patient_id, li.authority, li.value, li.type_code)
