"""IHE PAM France ADT messages: the patient's identity (PID) and DMP choices (ZFA).

Why ADT goes through the same channel as results: hospitals send their patient-administration
stream (admissions, discharges, updates) over the same MLLP link, and it is the only place the
DMP status, the opposition to feeding and the consent to consultation are stated (segment ZFA,
DMP-FACTS.md). An ADT yields no entry: an ``AdtEvent`` that the pipeline applies to the
dossier (dossiers/consent.py).

- Triggers read: normalizers/tables/adt_triggers.csv (every PAM France trigger that carries a
  PID), the merges of normalizers/tables/adt_merges.csv (A40, A18, and A34 / A36 of
  v2.3.1 / v2.4: MRG-1 the merged patient's identifiers, applied by pipelines/merge.py)
  and the identifier changes A47 / A46 (normalizers/tables/adt_identifier_changes.csv: an
  INS removed, a local identifier replaced); the links A24 / A37 and the account and visit
  events (A35, A41-A45, A48-A51) are accepted with no effect
  (normalizers/tables/adt_no_effect.csv); the identifier move A43 is read for
  pipelines/identifier_move.py (normalizers/tables/adt_identifier_moves.csv); the person
  merges A30, A39 stay HL7_UNSUPPORTED_EVENT. A28 (add person) states the identity as A31
  does: for a patient already held, IHE PAM reads it as an update.
- ZFA-1, ZFA-9, ZFA-11 must hold a code of normalizers/tables/zfa_codes.csv: an unknown code is
  refused (ZFA_UNKNOWN_CODE, naming the field and the code) rather than guessed, since it
  decides whether a dossier may be fed; the HL7 null '""' states nothing (warned). ZFA-4 to
  ZFA-8 are obsolete and not read.
- Several ZFA segments: read together, field by field; one field stated differently by two
  (or one choice with two dates) is ZFA_CONTRADICTORY; an empty one is passed over with a
  warning.
- Movements (A01-A07, A09-A16, A21-A27, A38, A52-A55, Z80-Z99): PV1 (patient class, location,
  UF) and ZBE are not read: the dossier keeps no stay, so a cancellation or a discharge
  without its admission has nothing to undo or close; acknowledged, recorded 'nothing to
  apply' (tables/adt_triggers.csv).
- PID-29 / PID-30 (the patient's death) are read by normalizers/death.py, whatever the
  trigger (PAM France states a death on the A03 discharge and on A08/A31 updates) and
  applied by dossiers/death.py.
- The statement is dated by EVN-2 (recorded), else MSH-7: what orders statements arriving out
  of order; ZFA-10 / ZFA-12 date the opposition and the consent themselves when present. An
  EVN-2 after MSH-7 (a sender's wrong clock) is not trusted: MSH-7 dates it (warned).
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import timedelta
from functools import cache

from normalizers.death import check_death, period_end, period_start, pid_death
from normalizers.fields import field_text, loc, logical_id, ts_field
from normalizers.identity import (
    birth_name_stated,
    extract_identity,
    identifiers_in,
    located_local_ids,
    single_pid,
)
from normalizers.model import (
    AdtEvent,
    ConsentStatement,
    IdentifierChange,
    IdentifierMove,
    LocalIdentifier,
    NormalizationError,
    NormalizedMessage,
    PatientIdentity,
)
from normalizers.tabledata import table
from parsers.hl7v2.er7 import Message, Segment

ZFA_STATUS, ZFA_OPPOSITION, ZFA_OPPOSITION_DATE = 1, 9, 10
ZFA_CONSULTATION, ZFA_CONSULTATION_DATE = 11, 12
_CODE_SHOWN = 12  # an unknown code is quoted in the error, cut to this length


@cache
def adt_triggers() -> dict[str, bool]:
    """{trigger: updates identity} for the ADT triggers this intake reads."""
    return {row["trigger"].upper(): row["identity"].lower() == "yes"
            for row in table("adt_triggers")}


@cache
def zfa_codes() -> dict[int, frozenset[str]]:
    """{ZFA field number: the codes it may carry}."""
    codes: dict[int, set[str]] = {}
    for row in table("zfa_codes"):
        codes.setdefault(int(row["field"]), set()).add(row["code"].upper())
    return {n: frozenset(c) for n, c in codes.items()}


CHANGE_IDENTIFIER = "A47"  # IHE PAM's identifier change (A46 its v2.3 form: table below)
BILLING_NIR = "NH"  # CX.5 of a NIR used for billing: may be the insured parent's, no identity


@cache
def identifier_change_triggers() -> frozenset[str]:
    """The ADT triggers that replace the patient's identifiers of MRG-1 by PID-3's (A47, A46)."""
    return frozenset(row["trigger"].upper() for row in table("adt_identifier_changes"))


@cache
def merge_triggers() -> frozenset[str]:
    """The ADT triggers that merge the patient of MRG-1 into the patient of PID-3."""
    return frozenset(row["trigger"].upper() for row in table("adt_merges"))


@cache
def identifier_move_triggers() -> frozenset[str]:
    """The ADT triggers that move MRG-1's identifier to the patient of PID-3 (A43)."""
    return frozenset(row["trigger"].upper() for row in table("adt_identifier_moves"))


@cache
def no_effect_triggers() -> dict[str, str]:
    """{trigger: why it changes no dossier} (normalizers/tables/adt_no_effect.csv)."""
    return {row["trigger"].upper(): row["why"] for row in table("adt_no_effect")}


def handles(kind: str, trigger: str) -> bool:
    return kind.upper() == "ADT" and (trigger.upper() in adt_triggers()
                                      or trigger.upper() in identifier_change_triggers()
                                      or trigger.upper() in merge_triggers()
                                      or trigger.upper() in identifier_move_triggers()
                                      or trigger.upper() in no_effect_triggers())


def _no_effect(msg: Message, lid: str, trigger: str) -> NormalizedMessage:
    """An ADT that IHE PAM France does not use or that changes nothing a dossier holds (A24 /
    A37 links, account and visit events): an event saying why, no identity read, nothing to apply.

    Why not refused: answered AR, a sender that stops its queue on AR (most GAM interfaces
    do) blocked every later message of every patient behind it. Its PIDs are not read (an
    A24 names two patients): nothing of them is applied, so nothing of them can fail it.
    A ZFA it carries is not applied (a link is no statement of the patient's choices)."""
    why = no_effect_triggers()[trigger]
    warnings = []
    zfas = msg.all("ZFA")
    if zfas:
        warnings.append(f"{loc(zfas[0])}: ZFA not applied: ADT^{trigger} is not applied by "
                        "this intake (its DMP choices are taken from the patient's own "
                        "ADT: A28, A31, movements)")
    stated_at = ts_field(msg, msg.msh, 7) or ""
    event = AdtEvent(trigger=trigger, stated_at=stated_at, updates_identity=False,
                     no_effect=why)
    return NormalizedMessage(logical_id=lid, identity=PatientIdentity(), entries=[],
                             warnings=warnings, adt=event)


def _identifier_move(msg: Message, lid: str, trigger: str) -> NormalizedMessage:
    """ADT^A43 (HL7 v2.5 3.3.43, move patient information - patient identifier list): the
    identifiers of each MRG-1, which the sender moves, with what was filed under them, to
    the patient of the PID before it; pipelines/identifier_move.py decides from the
    dossiers they name (tables/adt_identifier_moves.csv).

    Why the PIDs are not read: the ADT_A43 structure repeats its PID-MRG pair, one target
    patient each (``single_pid`` would refuse a second one), and nothing of a target is
    applied: the outcome depends on MRG-1 alone. Nor its ZFA (not part of ADT_A43; a move
    is no statement of the patient's choices: warned). Raises HL7_NO_MRG without MRG,
    ADT_CHANGE_NO_IDENTIFIER when an MRG-1 names no identifier (what moves is not said)."""
    mrgs = msg.all("MRG")
    if not mrgs:
        raise NormalizationError("HL7_NO_MRG", f"ADT^{trigger} (an identifier move) without "
                                 "MRG segment: the identifier moved is not named", "MRG")
    warnings: list[str] = []
    moved = []
    for mrg in mrgs:
        ident = identifiers_in(msg, mrg, 1)
        where = loc(mrg, 1)
        if not ident.ins and not ident.local_ids:
            raise NormalizationError("ADT_CHANGE_NO_IDENTIFIER", f"{where}: names no "
                                     f"identifier (ADT^{trigger}): which identifier moves "
                                     "is not said", where)
        warnings.extend(ident.warnings)
        moved.append(IdentifierMove(where, ident, _move_target(msg, mrg, ident)))
    zfas = msg.all("ZFA")
    if zfas:
        warnings.append(f"{loc(zfas[0])}: ZFA not applied: ADT^{trigger} moves an identifier, "
                        "it states no patient's DMP choices")
    stated_at = ts_field(msg, msg.msh, 7) or ""
    event = AdtEvent(trigger=trigger, stated_at=stated_at, updates_identity=False,
                     moved=moved)
    return NormalizedMessage(logical_id=lid, identity=PatientIdentity(), entries=[],
                             warnings=warnings, adt=event)


def _move_target(msg: Message, mrg: Segment, moved: PatientIdentity) -> PatientIdentity:
    """The local identifiers of PID-3 of the PID before ``mrg`` (its PID-MRG pair), the
    ones MRG-1 moves left out (an MPI lists the moved identifier among the target's once
    moved): what names the target patient's dossier, if we hold it. Local identifiers only:
    the sender's own domain, not an INS whose trust PID-32 would have to decide."""
    pid = next((seg for seg in reversed(msg.segments[:mrg.index])
                if seg.name == "PID"), None)
    target = PatientIdentity()
    if pid is None:
        return target
    gone = {(li.authority, li.value) for li in moved.local_ids}
    target.local_ids = [li for li in identifiers_in(msg, pid, 3).local_ids
                        if (li.authority, li.value) not in gone]
    return target


def normalize_adt(msg: Message, source: str) -> NormalizedMessage:  # noqa: ARG001
    """ADT^Axx to a NormalizedMessage without entries, carrying an ``AdtEvent``.

    Raises NormalizationError: HL7_NO_PID, HL7_MULTIPLE_PATIENTS, HL7_BAD_DATE (EVN-2, MSH-7,
    ZFA-10, ZFA-12, PID-29), ZFA_UNKNOWN_CODE, ZFA_CONTRADICTORY, ADT_NO_DATE (neither EVN-2
    nor MSH-7), ADT_DEATH_* (PID-29/30: normalizers/death.py)."""
    lid = logical_id(msg)
    trigger = msg.message_type[1].upper()
    if trigger in no_effect_triggers():
        return _no_effect(msg, lid, trigger)
    if trigger in identifier_move_triggers():
        return _identifier_move(msg, lid, trigger)
    pid = single_pid(msg)
    identity = extract_identity(msg, pid)
    warnings: list[str] = []
    stated_at = _event_time(msg, warnings)
    zfas = msg.all("ZFA")
    consent = _consents(msg, zfas, stated_at, warnings) if zfas else None
    death = pid_death(msg, pid, warnings) if pid is not None else None
    if death is not None:
        check_death(death, identity.birth_date or identity.birth_date_partial, stated_at)
    event = AdtEvent(trigger=trigger, stated_at=stated_at,
                     updates_identity=adt_triggers().get(trigger, False), consent=consent,
                     birth_name_stated=(birth_name_stated(msg, pid)
                                        or identity.birth_family != identity.family),
                     death=death)
    if trigger in identifier_change_triggers():
        mrg = msg.first("MRG")
        if mrg is None:
            raise NormalizationError("HL7_NO_MRG", f"ADT^{trigger} without MRG segment", "MRG")
        warnings.extend(_mrg_warnings(msg, mrg))
        event.removed_ins = _removed_ins(msg, mrg, identity, warnings)
        event.changed_ids = _changed_ids(msg, mrg, pid, trigger, warnings)
    elif trigger in merge_triggers():
        event.merged = _merged(msg, trigger)
        warnings.extend(w for _, ident in event.merged for w in ident.warnings)
    return NormalizedMessage(logical_id=lid, identity=identity, entries=[],
                             warnings=identity.warnings + warnings, adt=event)


def feeding_refused(msg: Message) -> str | None:
    """A quarantine reason ('OPPOSITION ...', 'DOSSIER_CLOSED ...', the codes of
    pipelines/identity.py) when a message that feeds the DMP (results, a document) carries
    a ZFA saying the patient objects to the feeding (ZFA-9 IO) or that their DMP is closed
    (ZFA-1 FERME); None otherwise.

    Why: consent is applied to the dossier from ADT, but a sender that puts the patient's
    ZFA in its ORU or MDM states the patient's choice for this very message; filing it
    because no ADT said so first would feed a DMP against an objection the message itself
    carries. Held for a person, as an opposition recorded on the dossier is (an admin's
    assignment overrides it). Every ZFA segment is read: an empty one before the one that
    states the objection hid it."""
    zfas = msg.all("ZFA")
    for zfa in zfas:
        if field_text(msg, zfa, ZFA_OPPOSITION).strip().upper() == "IO":
            return (f"OPPOSITION {loc(zfa, ZFA_OPPOSITION)}: the message states that the "
                    "patient objects to the feeding of their DMP (ZFA-9 IO)")
    for zfa in zfas:
        if field_text(msg, zfa, ZFA_STATUS).strip().upper() == "FERME":
            return (f"DOSSIER_CLOSED {loc(zfa, ZFA_STATUS)}: the message states that the "
                    "patient's DMP is closed (ZFA-1 FERME)")
    return None


def _mrg_warnings(msg: Message, mrg: Segment) -> list[str]:
    """What reading MRG-1 and MRG-4 warned of (an INS without OID or with a wrong key, a stay
    number that names no patient, an identifier without authority, CX.4.1 and CX.4.2
    disagreeing), each naming its repetition.

    Why: an A47 pairs MRG-1's identifiers by position (``located_local_ids``), which keeps
    none of these warnings; the ledger row said nothing of them, and an operator checking
    why an A47 changed less than the GAM meant could not see that MRG-1 was misread. A
    merge (A40) copies its MRG-1's already (``_merged``)."""
    return [w for n in (1, MRG_PRIOR_PATIENT_ID) for w in identifiers_in(msg, mrg, n).warnings]


def _removed_ins(msg: Message, mrg: Segment, identity: PatientIdentity,
                 warnings: list[str]) -> list[tuple[str, str]]:
    """ADT^A47 / A46: the INS that MRG-1 names and PID-3 no longer carries: the dossier holding
    it loses it (DMP-FACTS.md).

    An INS that PID-3 (the patient's identifiers now) still carries is not removed: GAMs
    that change an IPP put the whole old identifier list in MRG-1, the INS that stays
    valid included. Read as removed, the patient lost her INS because her IPP changed."""
    named = identifiers_in(msg, mrg, 1).ins
    kept = {i.nir for i in identity.ins}
    if any(i.nir in kept for i in named):
        warnings.append(f"{loc(mrg, 1)}: the INS it names, PID-3 still carries: not removed")
    return [(i.nir, i.kind) for i in named if i.nir not in kept]


def _changed_ids(msg: Message, mrg: Segment, pid: Segment | None, trigger: str,
                 warnings: list[str]) -> list[IdentifierChange]:
    """ADT^A47 / A46: each local identifier of MRG-1 that PID-3 replaces, paired with PID-3's
    identifier of the same assigning authority (IHE PAM ITI-30: the old identifier of a
    domain is replaced by the new one of that domain). A v2.3 sender's external id (PID-2,
    which identity reads as a local identifier) and its prior value (MRG-4) are paired alike.

    Not changed, said in a warning: one PID-3 still carries (MRG-1 holding the whole old
    list, the unchanged ones included), one without assigning authority, one whose authority
    PID-3 has no identifier of (another domain's: not the sender's to change). Raises
    ADT_CHANGE_NO_IDENTIFIER when MRG-1 names no identifier at all: nothing says whose
    identifier changed."""
    olds = _located(msg, mrg, (1, MRG_PRIOR_PATIENT_ID))
    if not olds and not identifiers_in(msg, mrg, 1).ins:
        where = loc(mrg, 1)
        raise NormalizationError("ADT_CHANGE_NO_IDENTIFIER", f"{where}: names no identifier of "
                                 f"the patient (ADT^{trigger}): which identifier changed is not "
                                 "said", where)
    news = [(at, li, ns) for at, li, ns in (_located(msg, pid, (3, PID_EXTERNAL_ID))
                                            if pid is not None else [])
            if li.type_code != BILLING_NIR]
    changes = []
    for old_at, old, namespace in olds:
        if old.type_code == BILLING_NIR:
            continue
        if not old.authority:
            warnings.append(f"{old_at}: identifier without assigning authority: not changed")
            continue
        same = [(at, li) for at, li, _ in news if li.authority == old.authority]
        if not same and namespace in (old.authority, old.unscoped):  # no OID in MRG-1
            old, same = _by_namespace(old, namespace, news, old_at, warnings)
        if not same:
            same = _by_domain_oid(msg, old, namespace, olds, news, old_at, warnings)
        if any(li.value == old.value for _, li in same):
            continue  # still the patient's: MRG-1 repeats the unchanged ones
        if not same:
            warnings.append(f"{old_at}: PID-3 carries no identifier of its assigning authority: "
                            f"not changed (ADT^{trigger} replaces an identifier within its "
                            f"domain){_undeclared(old, news)}")
        elif len(same) > 1:
            reps_at = ", ".join(at.rsplit(" ", 1)[1] for at, _ in same)
            changes.append(IdentifierChange(old, old_at, None,
                                            f"{loc(pid, 3)} repetitions {reps_at}"))
        else:
            changes.append(IdentifierChange(old, old_at, same[0][1], same[0][0]))
    return changes


def _merged(msg: Message, trigger: str) -> list[tuple[str, PatientIdentity]]:
    """ADT^A40 / A18 / A34 / A36: the identifiers of MRG-1, one list per MRG segment (an A40
    may repeat its PID-MRG group for one surviving patient: ``single_pid`` refuses two
    survivors).

    Raises NormalizationError HL7_NO_MRG without MRG segment, ADT_MERGE_NO_IDENTIFIER when
    an MRG-1 names no identifier (nothing says which patient is merged)."""
    mrgs = msg.all("MRG")
    if not mrgs:
        raise NormalizationError("HL7_NO_MRG", f"ADT^{trigger} (a merge) without MRG segment: "
                                 "the merged patient is not named", "MRG")
    merged = []
    for mrg in mrgs:
        ident = identifiers_in(msg, mrg, 1)
        where = loc(mrg, 1)
        if not ident.ins and not ident.local_ids:
            raise NormalizationError("ADT_MERGE_NO_IDENTIFIER",
                                     f"{where}: names no identifier of the merged patient "
                                     f"(ADT^{trigger})", where)
        merged.append((where, ident))
    return merged


# v2.3 senders' external patient id (PID-2, read as a local identifier by
# normalizers/identity.py) and the prior one an A46 / A47 names for it (MRG-4)
PID_EXTERNAL_ID, MRG_PRIOR_PATIENT_ID = 2, 4


def _located(msg: Message, seg: Segment,
             fields: tuple[int, ...]) -> list[tuple[str, LocalIdentifier, str]]:
    """The local identifiers of ``fields`` of ``seg`` (PID-3 then PID-2, MRG-1 then MRG-4),
    each once: an id repeated in both fields is one identifier, not two candidates."""
    seen: set[tuple[str, str]] = set()
    located = []
    for n in fields:
        for at, li, ns in located_local_ids(msg, seg, n):
            if (li.authority, li.value) not in seen:
                seen.add((li.authority, li.value))
                located.append((at, li, ns))
    return located


def _by_namespace(old: LocalIdentifier, namespace: str,
                  news: list[tuple[str, LocalIdentifier, str]], old_at: str,
                  warnings: list[str]) -> tuple[LocalIdentifier, list]:
    """MRG-1's identifier names its authority by namespace only ('IPP0042^^^CHU-X^PI'), PID-3
    the same namespace with its OID ('IPP0777^^^CHU-X&1.2.250...&ISO^PI'): one domain, which
    the GAM filled in twice differently (warned). Read as PID-3's authority (the OID, under
    which the dossier learnt the IPP), the namespace kept as where to find one stored by it;
    not paired, the change was dropped as another domain's. One OID only: two are two
    domains, not guessed."""
    oids = {li.authority for _, li, ns in news if ns == namespace and li.authority != namespace}
    if not namespace or len(oids) != 1:
        return old, []
    authority = oids.pop()
    warnings.append(f"{old_at}: assigning authority sent as its namespace only (CX.4.1), "
                    "PID-3 gives that namespace with an OID: read as PID-3's")
    same = [(at, li) for at, li, ns in news if li.authority == authority]
    return replace(old, authority=authority, unscoped=old.authority), same


def _by_domain_oid(msg: Message, old: LocalIdentifier, namespace: str,
                   olds: list[tuple[str, LocalIdentifier, str]],
                   news: list[tuple[str, LocalIdentifier, str]], old_at: str,
                   warnings: list[str]) -> list[tuple[str, LocalIdentifier]]:
    """PID-3's identifiers of ``old``'s domain when one side names it by its OID and the
    other by a namespace only: MRG-1 'IPP0042^^^CHU&1.2.250.1.71.4.2.2&ISO^PI' and PID-3
    'IPP0777^^^CHU^PI' (or the reverse, the namespace-only one with no OID to compare).
    The namespace is that OID's when the message declares it so (a CX giving both, the one
    OID it gives that namespace) or the source does (``Message.namespace_oids``). Why: a GAM
    filling MRG-1 and PID-3 from two templates names one domain two ways; the change was
    dropped as another domain's, the dossier kept the old IPP and missed the new one.
    Nothing otherwise: a namespace the message gives two OIDs is two domains, not guessed."""
    declared = _namespace_oids(olds + news)
    for ns, oid in msg.namespace_oids.items():
        declared.setdefault(ns, oid)

    def domain(li: LocalIdentifier, ns: str) -> str:
        own = li.authority if _by_oid(li) else ""
        return own or declared.get(ns.strip().upper(), "")

    oid = domain(old, namespace)
    if not oid:
        return []
    same = [(at, li) for at, li, ns in news if domain(li, ns) == oid]
    if same:
        warnings.append(f"{old_at}: assigning authority named by its OID on one side and by "
                        "its namespace only on the other (MRG-1, PID-3): paired as that OID's "
                        "domain")
    return same


_OID_AUTHORITY = re.compile(r"[0-2](?:\.\d+)+")


def _by_oid(li: LocalIdentifier) -> bool:
    return not li.unscoped and bool(_OID_AUTHORITY.fullmatch(li.authority))


def _undeclared(old: LocalIdentifier, news: list[tuple[str, LocalIdentifier, str]]) -> str:
    """What the admin can do when MRG-1 and PID-3 name their domains one by OID, the other
    by namespace only, and nothing said which namespace is which OID: '' otherwise."""
    if not any(_by_oid(li) != _by_oid(old) for _, li, _ in news):
        return ""
    return ("; one of MRG-1 and PID-3 names it by OID, the other by namespace only: the "
            "source's namespace_oids may say which namespace is that OID's")


def _namespace_oids(located: list[tuple[str, LocalIdentifier, str]]) -> dict[str, str]:
    """namespace (upper case) -> the OID the CXs of a message give it with (CX.4.1 and
    CX.4.2 both filled), for namespaces given one OID only."""
    seen: dict[str, set[str]] = {}
    for _, li, ns in located:
        if ns.strip() and not li.unscoped and _OID_AUTHORITY.fullmatch(li.authority):
            seen.setdefault(ns.strip().upper(), set()).add(li.authority)
    return {ns: next(iter(oids)) for ns, oids in seen.items() if len(oids) == 1}


# How far EVN-2 (recorded) may be after MSH-7 (sent) and still order the statement: the
# event is recorded before its message is built, a sender's two clocks differ by seconds.
EVN_AHEAD_TOLERANCE = timedelta(minutes=10)


def _event_time(msg: Message, warnings: list[str]) -> str:
    """EVN-2, else MSH-7: the time that orders the message's statements (consent, identity,
    death) against the ones the dossier holds.

    An EVN-2 later than MSH-7 (beyond EVN_AHEAD_TOLERANCE) is not trusted: an event is
    recorded before the message reporting it is sent, so it is a sender's wrong clock (or a
    mistyped year). Trusted, it stayed the newest statement until that date, and every real
    later choice of the patient (a lifted opposition, a death reverted) was filed as older,
    history only. MSH-7 orders the message instead, with a warning."""
    evn = msg.first("EVN")
    recorded = ts_field(msg, evn, 2) if evn is not None else None
    if recorded is None:
        sent = ts_field(msg, msg.msh, 7)
    else:  # MSH-7 only bounds EVN-2: a bad one leaves EVN-2 trusted (header_warnings says it)
        try:
            sent = ts_field(msg, msg.msh, 7)
        except NormalizationError:
            sent = None
    if recorded and sent and _ahead(recorded, sent):
        warnings.append("EVN-2: the event is recorded after the message was sent (MSH-7), a "
                        "sender's clock is wrong: MSH-7 orders the message's statements")
        return sent
    stated = recorded or sent
    if not stated:
        raise NormalizationError("ADT_NO_DATE", "neither EVN-2 nor MSH-7 dates the message: "
                                 "its consent statement cannot be ordered", "MSH-7")
    return stated


def _ahead(recorded: str, sent: str) -> bool:
    """EVN-2 starts after MSH-7's period (its minute, its day...) ends, plus the tolerance."""
    start, end = period_start(recorded), period_end(sent)
    return start is not None and end is not None and start > end + EVN_AHEAD_TOLERANCE


def _consents(msg: Message, zfas: list[Segment], stated_at: str,
              warnings: list[str]) -> ConsentStatement | None:
    """The consent statement of the message's ZFA segments (PAM France sends one).

    Why every segment is read: an EAI that merges two sources' segments sends an empty ZFA
    before the one that states the choices; reading the first only dropped the patient's
    opposition. Two that state different choices are refused (ZFA_CONTRADICTORY, the second
    one's location): whether the patient objects decides whether the DMP is fed, and which
    one they said is not guessed."""
    stating = [(zfa, c) for zfa in zfas
               if (c := _consent(msg, zfa, stated_at, warnings)) is not None]
    if not stating:
        warnings.append(f"{loc(zfas[0])}: ZFA states neither DMP status, opposition nor "
                        "consent; nothing applied")
        return None
    (first_zfa, first), others = stating[0], stating[1:]
    combined = first
    for zfa, consent in others:
        together = _together(combined, consent)
        if together is None:
            where = loc(zfa)
            raise NormalizationError("ZFA_CONTRADICTORY", f"{where}: states other DMP choices "
                                     f"than {loc(first_zfa)} (status, opposition, consent or "
                                     "their dates): which the patient made is not guessed",
                                     where)
        combined = together
    if combined != first:
        warnings.append(f"{loc(zfas[1])}: {len(zfas)} ZFA segments stating complementary "
                        "choices (each field stated by one, or alike in both): read together")
    elif len(zfas) > 1:
        warnings.append(f"{loc(zfas[1])}: {len(zfas)} ZFA segments ({len(stating)} stating the "
                        f"patient's choices, the same ones): {loc(first_zfa)} read")
    return combined


# A choice of ZFA and the field dating it (the DMP status is dated by the message)
_CHOICES = (("dmp_status", None), ("opposition", "opposition_date"),
            ("consultation", "consultation_date"))


def _together(a: ConsentStatement, b: ConsentStatement) -> ConsentStatement | None:
    """Two ZFA statements of one message as one, None when they contradict.

    Why: an EAI that merges the GAM's ZFA (the DMP status) with the DPI's (the opposition,
    the consent) sends two, each stating some of the fields; refused as ZFA_CONTRADICTORY,
    the patient's opposition was lost with the message. Contradiction is a field stated in
    both with other values, or the same choice with two different dates."""
    values: dict[str, str | None] = {}
    for name, date_name in _CHOICES:
        mine, theirs = getattr(a, name), getattr(b, name)
        if mine is not None and theirs is not None and mine != theirs:
            return None
        values[name] = mine if mine is not None else theirs
        if date_name is None:
            continue
        dates = {d for d in (getattr(a, date_name) if mine is not None else None,
                             getattr(b, date_name) if theirs is not None else None) if d}
        if len(dates) > 1:
            return None
        values[date_name] = dates.pop() if dates else None
    return replace(a, **values)


def _consent(msg: Message, zfa: Segment, stated_at: str,
             warnings: list[str]) -> ConsentStatement | None:
    """One ZFA's statement; None when it states neither status, opposition nor consent."""
    status = _code(msg, zfa, ZFA_STATUS, warnings)
    opposition = _code(msg, zfa, ZFA_OPPOSITION, warnings)
    consultation = _code(msg, zfa, ZFA_CONSULTATION, warnings)
    if status is None and opposition is None and consultation is None:
        return None
    return ConsentStatement(
        stated_at=stated_at, dmp_status=status, opposition=opposition,
        opposition_date=(_date(msg, zfa, ZFA_OPPOSITION_DATE, stated_at, warnings)
                         if opposition else None),
        consultation=consultation,
        consultation_date=(_date(msg, zfa, ZFA_CONSULTATION_DATE, stated_at, warnings)
                           if consultation else None))


HL7_NULL = '""'  # HL7 v2.5 2.5.3: a field sent as "" is explicitly null


def _date(msg: Message, zfa: Segment, n: int, stated_at: str,
          warnings: list[str]) -> str | None:
    """ZFA-10 / ZFA-12 as ISO 8601; None when empty or sent as the HL7 null '""' (the
    statement's own time then dates the choice, as when the date is left out).

    A date on a later day than the message stating it (EVN-2, else MSH-7) is None with a
    warning: a choice is not made after the message that reports it (a mistyped year,
    20420301 for 20240301). Kept, it was the newest statement for decades: every later
    real choice of the patient was filed as 'older, history only'. Compared by calendar
    day as the sender wrote them: a date-only ZFA-10 of the message's day is not later."""
    if field_text(msg, zfa, n).strip() == HL7_NULL:
        return None
    value = ts_field(msg, zfa, n)
    if value is not None and value[:10] > stated_at[:10]:
        warnings.append(f"{loc(zfa, n)}: dated after the message that states it (EVN-2, "
                        "else MSH-7): the choice is dated by the message instead")
        return None
    return value


def _code(msg: Message, zfa: Segment, n: int, warnings: list[str]) -> str | None:
    """The code of ZFA-n, None when empty; ZFA_UNKNOWN_CODE when not in the table (the code is
    quoted, cut short: it is a sender's code, never patient data).

    The HL7 null '""' (GAMs write it in every field they have no value for) is None with a
    warning: it says the sender does not know the patient's choice, not what it is, so the
    dossier keeps what it holds. Read as a code, it failed the whole ADT (its identity
    update, its other ZFA fields, its death) as ZFA_UNKNOWN_CODE."""
    value = field_text(msg, zfa, n).strip().upper()
    if not value:
        return None
    if value == HL7_NULL:
        warnings.append(f"{loc(zfa, n)}: HL7 null (\"\") in ZFA-{n}: states no choice, the "
                        "dossier keeps what it holds")
        return None
    allowed = zfa_codes()[n]
    if value not in allowed:
        where = loc(zfa, n)
        shown = value[:_CODE_SHOWN] + ("..." if len(value) > _CODE_SHOWN else "")
        raise NormalizationError("ZFA_UNKNOWN_CODE",
                                 f"{where}: unknown code {shown!r} in ZFA-{n} (expected one of "
                                 f"{', '.join(sorted(allowed))})", where)
    return value
