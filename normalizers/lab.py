"""ORU^R01 (v2.3 to v2.5.1 and later) to LAB_REPORT / LAB_RESULT / DOCUMENT entries.

One LAB_REPORT per OBR, one LAB_RESULT per OBX under it, one DOCUMENT per OBX of type ED (a CDA
or PDF report: never a result of type ED). Segments are grouped by position (an OBX belongs to
the OBR before it), which reads the v2.5 group structure and the flat v2.3 layout alike.

Keys are built from what the sender keeps stable across a resend or a correction: the order
number (filler, else placer), the observation code *as sent* (not its mapping, which may change
with the tables) and the sub-id. A correction (OBX-11 = C) replaces the same key; D / W delete it.

Speed matters (10,000 messages/s end to end): every field is split once, tables are dicts
built once, dates are cached, nothing is compiled per call.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache, lru_cache, partial
from typing import Any

from normalizers.adt import feeding_refused, handles, normalize_adt
from normalizers.codes import (
    CodeMappings,
    loinc_check_fails,
    resolve_code,
    system_name,
    text_in_system_slot,
)
from normalizers.dates import BAD_TS_TEXT, PARIS, hl7_tm_to_iso, hl7_ts_to_iso
from normalizers.death import feeding_pid_death
from normalizers.documents import (
    OBX_DOCUMENT,
    OBX_PIECE,
    OBX_RESULT,
    DocumentContext,
    GroupFlags,
    MessageMeta,
    add_embedded_entries,
    apply_group_meta,
    classify_obx,
    collect_meta,
    continuations,
    document_entry,
    ed_encodings,
    is_cisis,
    media_type,
    normalize_mdm,
    obx_status,
    order_control_source,
    reference_warning,
    sender_performer,
    sender_scope,
)
from normalizers.fields import (
    comps,
    first_rep,
    header_warnings,
    id_code,
    leaf,
    loc,
    logical_id,
    organization,
    part,
    person_name,
    reps,
    split_field,
    sub,
    text,
    ts_field,
    unescaped,
    with_degree,
    zone_of,
)
from normalizers.identity import authority_of, extract_identity, patient_starts, single_pid
from normalizers.loinc_units import PROPERTY_NAMES, unit_contradicts_code
from normalizers.model import (
    ACTION_DELETE,
    ACTION_REPLACE,
    DOCUMENT,
    LAB_REPORT,
    LAB_RESULT,
    Entry,
    HeldBack,
    NormalizationError,
    NormalizedMessage,
    PatientIdentity,
    PatientPart,
    shorten_prose,
)
from normalizers.tabledata import column_map, table
from normalizers.units import to_ucum
from parsers.hl7v2.er7 import Delimiters, Message, Segment
from parsers.hl7v2.escape import escape, unescape

_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")
_GROUPED = re.compile(r"[+-]?\d{1,3}(?:[ \u00a0\u202f]\d{3})+(?:[.,]\d+)?")
_BLANKS = re.compile(r"[ \u00a0\u202f]")
# Thousands grouped by the one mark and decimals after the other ('1.250,5' as a German or
# French export prints it, '1,250.5' as a US one), or grouped twice without decimals
# ('1.250.000', '250,000,000'): the only reading. One group alone stays a decimal ('1.250',
# '1,250' are one and a quarter, as a French lab means them).
_GROUPED_DOTS = re.compile(r"[+-]?\d{1,3}(?:(?:\.\d{3})+,\d+|(?:\.\d{3}){2,})")
_GROUPED_COMMAS = re.compile(r"[+-]?\d{1,3}(?:(?:,\d{3})+\.\d+|(?:,\d{3}){2,})")
# Scientific notation ('1.2E+03', '3,5e-2'): a viral load or a bacterial count as analysers
# print it. Not in the NM grammar (v2.5 2.A.47) but no other reading; the exponent is bounded
# so that no value reads as infinite.
_EXPONENT = re.compile(r"([+-]?(?:\d+(?:[.,]\d*)?|[.,]\d+))[eE]([+-]?\d{1,2})")
# A comparator and what follows it ('<0.5', '> 1 000', '<1.0E2', '≥ 60', '=<0,25'):
# _parse_number reads the rest; a one-sign or reversed comparator (tables/
# comparator_signs.csv) is read by _comparator.
_COMPARED = re.compile(r"(<=|>=|=<|=>|<>|<|>|=|[\u2264\u2265\u2a7d\u2a7e])\s*([+\-\d.,].*)")
COMPARATORS = frozenset({"<", ">", "<=", ">=", "=", "<>"})
SN_SEPARATORS = frozenset({"-", "+", "/", ".", ":"})  # SN.3 (v2.5 2.A.71)
TEXT_TYPES = frozenset({"ST", "TX", "FT"})
NARRATIVE_TYPES = frozenset({"TX", "FT"})  # text meant for display, line by line
CODED_TYPES = frozenset({"CE", "CWE", "CNE", "CF"})
DATE_TYPES = frozenset({"DT", "TS", "DTM"})
# OBX-11 statuses (tables/result_status.csv) under which OBX-5 is not a result: X and N (no
# result obtained), D and W (the result is withdrawn). HL7 v2.5 7.4.2.11.
NO_VALUE_STATUSES = frozenset({"cancelled", "entered-in-error"})
# ... and those whose result is still to come: I (specimen in lab, results pending) and O
# (order detail, no result). What a SIL writes there ('En cours', 'A suivre' under NM) is no
# value either; read as one, it failed the whole message (OBX_BAD_NUMBER).
WITHHELD_STATUSES = NO_VALUE_STATUSES | {"registered"}
SINGLE_VALUE_TYPES = frozenset({"NM", "SN", "CQ", "TM", "DR"}) | DATE_TYPES
# Segments whose explicitly null fields ("") are read as empty (see _nulled).
_NULLABLE = frozenset({"OBX", "OBR", "ORC", "NTE", "SPM"})
# Segments after which an NTE no longer comments the last OBX / OBR.
_NOTE_BREAKERS = frozenset({"PID", "PD1", "NK1", "PV1", "PV2", "ORC", "SPM", "TQ1", "TQ2",
                            "CTD", "FT1", "CTI", "SAC"})
# Segments of the PATIENT group (v2.5 7.3.1: PID [PD1] [{NTE}] [{NK1}] [PV1 [PV2]]): an NTE
# sent after one of them (outside the grammar, but sent: 'Renseignements cliniques : ...'
# after the PV1) speaks of the patient. It was dropped without a word.
_PATIENT_PARTS = frozenset({"PD1", "NK1", "PV1", "PV2"})

# -- dispatch ---------------------------------------------------------------------------------
# ORU^R30/R31/R32 (v2.5 7.3.4-7.3.6): point-of-care results (a blood gas, a glucose meter
# reading), with or without an order; the same PID, ORC, OBR, OBX layout as R01.
# OUL^R22/R23 (specimen first) and R24 (order first), v2.5 13.4: the results of IHE LTW and
# LAW laboratory systems, the same segments in another order (see _oul_groups).
# OUL^R21 (v2.4-v2.6 7.3.x, laboratory automation middleware): ORU's ORC OBR OBX, each order
# opened by its container ([SAC [{OBX}]] [{SID}] [ORC] OBR ...).
_HANDLED = {("ORU", "R01"): "oru", ("ORU", "R30"): "oru", ("ORU", "R31"): "oru",
            ("ORU", "R32"): "oru", ("OUL", "R21"): "oul_container",
            ("OUL", "R22"): "oul_specimen",
            ("OUL", "R23"): "oul_specimen", ("OUL", "R24"): "oul_order",
            **{("MDM", f"T{n:02d}"): "mdm" for n in range(1, 12)}}  # tables/mdm_triggers.csv
POINT_OF_CARE = frozenset({"R30", "R31", "R32"})  # ORU triggers of point-of-care results


def normalize_message(msg: Message, source: str,
                      mappings: CodeMappings | None = None) -> NormalizedMessage:
    """Dispatch on MSH-9: ORU^R01 (and point-of-care R30-R32) -> lab results and documents;
    MDM^T01-T11 -> documents;
    IHE PAM France ADT (normalizers/tables/adt_triggers.csv) -> consent and identity.

    A type that is no v2.5 trigger but that a sender means as one (tables/
    message_type_aliases.csv: INLOG's ORU^O01) is read as the type it means, with a warning.
    Anything else raises NormalizationError HL7_UNSUPPORTED_TYPE (a type not read) or
    HL7_UNSUPPORTED_EVENT (a trigger not read of a type that is).
    """
    kind, trigger, _ = msg.message_type
    kind, trigger = kind.strip().upper(), trigger.strip().upper()
    _refuse_fragment(msg)
    alias = _type_aliases().get((kind, trigger))
    try:
        if alias is None:
            nm = _dispatch(msg, source, mappings, kind, trigger)
        else:
            nm = _dispatch(msg, source, mappings, *alias)
            nm.warnings.append(f"MSH-9: {kind}^{trigger} is no trigger of HL7 v2.5, read as "
                               f"{alias[0]}^{alias[1]}")
    except HeldBack as held:  # a draft held back: what it would file says the same
        held.held.warnings.extend(header_warnings(msg))
        raise
    nm.warnings.extend(header_warnings(msg))  # MSH-7, MSH-12: for every message type
    return nm


def _refuse_fragment(msg: Message) -> None:
    """A message that says it is one fragment of a larger one (v2.5 2.10.2, continuation
    messages) is refused with HL7_FRAGMENTED_MESSAGE: a DSC whose DSC-1 (continuation
    pointer) is valued says that the rest follows in another message, an ADD segment that
    this one continues a segment of an earlier one. A segment may be cut anywhere, a value
    too ('12' of '125'), and the next fragment holds results without their order or patient:
    fragments are not joined here, and read one by one they filed cut values as whole ones.
    A DSC with DSC-1 empty says nothing and is read past."""
    segments = msg.segments
    last = segments[-1]
    if last.name == "DSC" and text(msg, first_rep(msg, last, 1)):
        where = loc(last, 1)
        raise NormalizationError("HL7_FRAGMENTED_MESSAGE", f"{where}: the message continues in "
                                 "another one (continuation pointer, HL7 v2.5 2.10.2): "
                                 "fragments are not joined by this intake, the sender is to "
                                 "send whole messages", where)
    add = next((s for s in segments if s.name == "ADD"), None)
    if add is not None:
        where = loc(add)
        raise NormalizationError("HL7_FRAGMENTED_MESSAGE", f"{where}: the message continues a "
                                 "segment of an earlier one (ADD, HL7 v2.5 2.10.2): fragments "
                                 "are not joined by this intake, the sender is to send whole "
                                 "messages", where)


@cache
def _type_aliases() -> dict[tuple[str, str], tuple[str, str]]:
    """(MSH-9.1, MSH-9.2) as sent -> the type it is read as (tables/message_type_aliases.csv)."""
    return {(row["kind"].upper(), row["trigger"].upper()):
            (row["read_as_kind"].upper(), row["read_as_trigger"].upper())
            for row in table("message_type_aliases")}


def _dispatch(msg: Message, source: str, mappings: CodeMappings | None, kind: str,
              trigger: str) -> NormalizedMessage:
    """``normalize_message`` for MSH-9 ``kind^trigger`` (upper case, stripped)."""
    if kind == "ORU" and not trigger:
        # v2.1 MSH-9 names the message alone, and its only ORU is the unsolicited result.
        nm = normalize_results(msg, source, mappings)
        nm.warnings.append("MSH-9: no trigger event (v2.1 style), read as ORU^R01")
        return nm
    handler = _HANDLED.get((kind, trigger))
    if handler is None and handles(kind, trigger):
        return normalize_adt(msg, source)
    if handler == "oru":
        if trigger == "R01":  # the only one whose PATIENT_RESULT group repeats
            return normalize_results(msg, source, mappings)
        return normalize_oru(msg, source, mappings, _groups(msg, patient_observations=True))
    if handler in ("oul_specimen", "oul_order", "oul_container"):
        _refuse_oul_without_patient(msg, f"{kind}^{trigger}")
        return normalize_oru(msg, source, mappings,
                             _oul_groups(msg, specimen_first=handler == "oul_specimen",
                                         containers_first=handler == "oul_container"))
    if handler == "mdm":
        return normalize_mdm(msg, source, mappings)
    if not kind:
        raise NormalizationError("HL7_UNSUPPORTED_TYPE", "MSH-9 names no message type (its first "
                                 "component, the message code, is empty): the message code "
                                 "and trigger event (ORU^R01, MDM^T02...) are required",
                                 "MSH-9")
    name = f"{kind}^{trigger}" if trigger else kind
    # A message code we read (ORU, MDM, ADT...) with a trigger we do not is an unsupported
    # event (HL7 table 0357: 201), not an unsupported message type (200): the sender's
    # engine shows the two apart, and only the first is fixed by choosing another trigger.
    code = "HL7_UNSUPPORTED_EVENT" if kind in _KINDS_READ else "HL7_UNSUPPORTED_TYPE"
    meaning = _adt_not_applied().get(trigger) if kind == "ADT" else None
    if meaning:
        raise NormalizationError(code, f"message type {name[:16]} ({meaning}) "
                                 "is not applied by this intake: a merge or identifier move "
                                 "changes which dossier is which; identity management decides",
                                 "MSH-9")
    routed = _not_received().get(kind)
    if routed is not None:
        raise NormalizationError(code, _misrouted_text(msg, name[:16], *routed), "MSH-9")
    raise NormalizationError(code, f"message type {name[:16]} is not handled by this intake",
                             "MSH-9")


def _refuse_oul_without_patient(msg: Message, name: str) -> None:
    """An OUL's PATIENT group is optional (v2.5 13.4): an automation line or its middleware
    sends the results of its quality control and calibration specimens (SPM-11 'Q', 'C'
    ...) without any PID. Such a message is sound HL7 and about no patient: refused
    HL7_NO_PID saying so, where 'the message has no PID segment' told the sender its
    message was broken."""
    if msg.first("PID") is not None:
        return
    spm = msg.first("SPM")
    role = text(msg, part(comps(msg, first_rep(msg, spm, 11)), 1)) if spm is not None else ""
    said = f" (SPM-11 specimen role {role[:8]!r})" if role else ""
    raise NormalizationError("HL7_NO_PID", f"{name} without a patient (no PID: an OUL's "
                             "PATIENT group is optional, as in the results of quality control "
                             f"or calibration specimens{said}): nothing in it is for a "
                             "patient's dossier", "PID")


@cache
def _not_received() -> dict[str, tuple[str, str]]:
    """MSH-9.1 -> (what such a message is, where it belongs), tables/
    message_types_not_received.csv."""
    return {row["kind"].upper(): (row["what"], row["belongs"])
            for row in table("message_types_not_received")}


def _misrouted_text(msg: Message, name: str, what: str, belongs: str) -> str:
    """The refusal of a message routed here by mistake (an order, a query, an ACK...): what
    it is and where it belongs, so that an operator fixes the route, not the message. An
    acknowledgement also says which message it answers (MSA-2, a control id) and how
    (MSA-1): the operator finds the misrouted exchange on the sender's side."""
    said = f"message type {name} is {what}: this intake receives results, documents and " \
           f"patient administration only; it belongs {belongs}"
    msa = msg.first("MSA")
    if msa is not None:
        code, acked = text(msg, first_rep(msg, msa, 1)), text(msg, first_rep(msg, msa, 2))
        if code or acked:
            said += f" (MSA-1 {code[:2] or '?'}, answering control id {acked[:40] or '?'})"
    return said


_KINDS_READ = frozenset({kind for kind, _ in _HANDLED} | {"ADT"})


@cache
def _adt_not_applied() -> dict[str, str]:
    return column_map("adt_not_applied", "trigger", "meaning")


# -- several patients in one ORU^R01 ----------------------------------------------------------
# What carries an order's data into entries: none of these may come before the first PID of
# a message that carries several patients (whose results they would be is not said).
_ORDER_SEGMENTS = frozenset({"ORC", "OBR", "OBX", "SPM"})


def normalize_results(msg: Message, source: str,
                      mappings: CodeMappings | None = None) -> NormalizedMessage:
    """ORU^R01: ``normalize_oru`` when it is about one patient (nearly always: one pass
    over the segment names decides), else ``normalize_patients``."""
    starts = patient_starts(msg)
    if len(starts) < 2:
        return normalize_oru(msg, source, mappings)
    return normalize_patients(msg, source, mappings, starts)


def normalize_patients(msg: Message, source: str, mappings: CodeMappings | None,
                       starts: list[int]) -> NormalizedMessage:
    """An ORU^R01 whose PATIENT_RESULT group repeats (v2.5 7.3.1: batch-oriented lab systems
    send several patients' results in one message). Each group (a PID and every segment up
    to the next PID of another patient, ``patient_starts``) is normalized as the message
    it would be alone: the header (MSH, SFT) and that group's segments, the segment
    positions unchanged (so locations and provenance point into the message as received).
    Keys, document flags (MetaDMPMSS), and the CDA-inside-ORU identity check stay within
    one group: nothing of one patient is ever read into another's entries.

    A group without any result has nothing to file: it is left out, with a warning (its
    identity is not resolved, so it cannot hold the others back). Left with one group, the
    result is a plain one-patient message; with several, ``NormalizedMessage.patients``
    says whose entries are whose and ``identity`` stays empty. A normalization error in any
    group fails the whole message, its text naming the group."""
    segments = msg.segments
    head = segments[:starts[0]]
    stray = next((s for s in head if s.name in _ORDER_SEGMENTS), None)
    if stray is not None:
        where = loc(stray)
        raise NormalizationError("HL7_RESULTS_WITHOUT_PATIENT", f"{where}: order or result "
                                 "before the first PID of a message carrying several patients: "
                                 "whose it is is not said", where)
    total = len(starts)
    normalized: list[tuple[int, str, NormalizedMessage]] = []  # (n, its PID, the group)
    first: NormalizedMessage | None = None
    warnings: list[str] = []
    for n, (a, b) in enumerate(zip(starts, [*starts[1:], len(segments)], strict=True), 1):
        where = loc(segments[a])
        alone = Message(head + segments[a:b], msg.delimiters, msg.charset, [], msg.maybe_null,
                        msg.zone)
        try:
            nm = normalize_oru(alone, source, mappings)
        except NormalizationError as exc:
            raise NormalizationError(exc.code, f"patient {n} of {total} ({where}): {exc}",
                                     exc.location) from None
        first = first or nm
        if not nm.entries:
            warnings.append(f"{where}: patient {n} of {total} has no result: nothing to "
                            "file for them, their identity is not resolved")
            continue
        warnings.extend(nm.warnings)
        normalized.append((n, where, nm))
    warnings = list(dict.fromkeys(warnings))  # the header's, said once
    if len(normalized) < 2:
        nm = normalized[0][2] if normalized else first  # none with results: as for one
        nm.warnings = warnings
        return nm
    entries: list[Entry] = []
    parts: list[PatientPart] = []
    quarantine: list[str] = []
    for n, where, nm in normalized:
        entries.extend(nm.entries)
        parts.append(PatientPart(where, nm.identity, len(nm.entries)))
        for reason in nm.quarantine_reasons:
            code, _, said = reason.partition(" ")
            quarantine.append(f"{code} patient {n} of {total} ({where}): {said or code}")
    return NormalizedMessage(logical_id=normalized[0][2].logical_id, identity=PatientIdentity(),
                             entries=entries, warnings=warnings, quarantine_reasons=quarantine,
                             patients=parts)


# -- grouping ---------------------------------------------------------------------------------
@dataclass(slots=True)
class _Group:
    """One OBR with what belongs to it. ``orc`` is the last ORC before the OBR; ``own_orc``
    says whether it is this OBR's own (no other OBR between them) or one inherited from an
    earlier order of the same patient, which v2.3 flat senders rely on for ORC-1 but whose
    order numbers belong to that earlier order."""

    obr: Segment
    orc: Segment | None
    own_orc: bool = False
    notes: list[Segment] = field(default_factory=list)
    observations: list[tuple[Segment, list[Segment]]] = field(default_factory=list)
    specimens: list[Segment] = field(default_factory=list)
    # OBX index -> the SPM whose SPECIMEN group it is in (v2.5.1 ORU_R01: OBR ... {OBX}
    # {SPM {OBX}}): what it observes is that specimen (its volume, its aspect, a bottle's
    # growth), not the order's first one
    specimen_of: dict[int, Segment] = field(default_factory=dict)
    # OBX indices of the patient's own observations sent before any order (v2.7+ ORU_R30-R32
    # PATIENT_OBSERVATION: the body temperature, the FiO2 a blood gas is read at), filed
    # with the first order that follows
    about_patient: set[int] = field(default_factory=set)
    # SPM sent between the ORC and the OBR (or before the first OBR): this order's, said in
    # a warning (ORU_R01 has the SPECIMEN group after the OBR and its results)
    early_specimens: list[Segment] = field(default_factory=list)
    # its ORC came before the message's PID (ORC PID [PV1] OBR): said in a warning
    orc_before_patient: bool = False
    # PRT (v2.7+: who took part, in place of OBX-15/16/23-25 and OBR-32): those after an
    # OBX, by its index; those of the order (after its ORC or its OBR, before any OBX)
    result_parts: dict[int, list[Segment]] = field(default_factory=dict)
    order_parts: list[Segment] = field(default_factory=list)
    # TQ1 (v2.5+: the order's timing and priority), after its OBR, or its ORC in an OUL
    timing: list[Segment] = field(default_factory=list)
    # NTE of the PATIENT group (PID [PD1] [{NTE}]): comments on the patient ('sous AVK'),
    # the same list for every order of that patient
    patient_notes: list[Segment] = field(default_factory=list)
    # NTE before any PID (OUL_R22/R24: MSH [{SFT}] [NTE] [PATIENT]...; an ORU sender may do
    # the same): about the whole message, the same list for every order
    message_notes: list[Segment] = field(default_factory=list)


NULL = '""'  # HL7 v2.5 2.5.3: a field sent as "" is explicitly null, it holds no text


def _nulled(seg: Segment) -> Segment:
    """``seg`` with its explicitly null fields ("") read as empty (a copy: the parsed message
    stays as sent). Senders write "" for 'no value'; read as text it became a value '""', a
    number that fails, a date that fails."""
    return Segment(seg.name, ["" if x == NULL else x for x in seg.fields], seg.index)


def _groups(msg: Message, patient_observations: bool = False) -> list[_Group]:
    """The orders of an ORU, each OBR with what follows it. ``patient_observations``
    (point of care, ORU^R30-R32): OBX sent after the PID and before any OBR are the
    patient's own (v2.7+ PATIENT_OBSERVATION group), filed with the order that follows;
    elsewhere such an OBX fails the message (HL7_OBX_WITHOUT_OBR)."""
    groups: list[_Group] = []
    waiting: list[tuple[Segment, list[Segment]]] = []  # patient observations, for an OBR
    current: _Group | None = None
    orc: Segment | None = None
    orc_fresh = False  # no OBR since ``orc``: it is the next OBR's own
    patient_notes: list[Segment] = []  # of the last PID
    message_notes: list[Segment] = []  # before any PID
    notes: list[Segment] | None = message_notes
    order_notes: list[Segment] = []  # NTE sent between an ORC and its OBR: the order's
    maybe_null = msg.maybe_null  # the common case: the message holds no '""' at all
    spm: Segment | None = None  # the SPM of the SPECIMEN group the next OBX would be in
    last_obx: Segment | None = None  # the OBX a PRT sent now is about
    orc_parts: list[Segment] = []  # PRT sent after an ORC, before its OBR
    in_patient = False  # a PID was read, no order yet: where patient observations go
    # SPM sent before the OBR of their order, with the group current then (where they went
    # before, as they do still when no OBR follows them)
    early: list[tuple[Segment, _Group | None]] = []
    pid_seen = False
    pid_seen_before_orc = True  # whether a PID came before the last ORC
    for seg in msg.segments:
        name = seg.name
        if maybe_null and NULL in seg.fields and name in _NULLABLE:
            seg = _nulled(seg)
        if name == "OBX":
            if current is None and patient_observations and in_patient and orc is None:
                notes = []
                waiting.append((seg, notes))
                continue
            if current is None:
                where = loc(seg)
                raise NormalizationError("HL7_OBX_WITHOUT_OBR",
                                         f"{where}: observation before any OBR (each "
                                         "result belongs to the order its OBR describes: "
                                         "the OBR comes first)", where)
            early = _settle(early)
            if orc_fresh and not current.own_orc and not current.observations:
                # OBR ORC OBX (the ORC after its OBR, as in an OUL): no OBR came after the
                # ORC, it is this order's own. Left for the next OBR, an order sent with its
                # placer number only was filed under the previous order's filler number.
                current.orc, current.own_orc, orc_fresh = orc, True, False
                current.notes.extend(order_notes)
                current.order_parts.extend(orc_parts)
                order_notes, orc_parts = [], []
            notes = []
            current.observations.append((seg, notes))
            last_obx = seg
            if spm is not None:
                current.specimen_of[seg.index] = spm
        elif name == "PRT":
            if current is not None and last_obx is not None:
                current.result_parts.setdefault(last_obx.index, []).append(seg)
            elif current is not None and not current.observations:
                current.order_parts.append(seg)
            elif orc_fresh:
                orc_parts.append(seg)  # ORC [PRT] OBR: the next order's
        elif name == "NTE":
            if notes is not None:
                notes.append(seg)
        elif name == "OBR":
            current = _Group(seg, orc, own_orc=orc_fresh, notes=order_notes,
                             patient_notes=patient_notes, order_parts=orc_parts,
                             message_notes=message_notes)
            current.orc_before_patient = orc_fresh and not pid_seen_before_orc
            if early:
                current.early_specimens = [spm for spm, _ in early]
                current.specimens.extend(current.early_specimens)
                early = []
            groups.append(current)
            notes = current.notes
            orc_fresh, order_notes, spm, last_obx, orc_parts = False, [], None, None, []
            if waiting:
                current.observations.extend(waiting)
                current.about_patient.update(obx.index for obx, _ in waiting)
                waiting, in_patient = [], False
        elif name == "SPM" and (current is None or orc_fresh):
            # ORC SPM OBR, or PID SPM OBR: the specimen of the order whose OBR follows (the
            # ORC before it is that order's). Dropped before any OBR, and given to the order
            # before the ORC after one: a urine specimen was filed as the serum order's.
            early.append((seg, current))
            spm, last_obx = seg, None
            notes = order_notes
        elif name == "SPM":
            current.specimens.append(seg)
            spm, last_obx = seg, None
            # an NTE right after the SPM (outside v2.5's ORU, which has none there, but sent:
            # 'échantillon hémolysé') speaks of the order's specimen: the order's comments,
            # not dropped
            notes = current.notes
        elif name in _NOTE_BREAKERS:
            notes = None
            if name in ("ORC", "PID"):
                spm = last_obx = None
                orc_parts = []
                early = _settle(early)
            if name == "ORC":
                orc, orc_fresh = seg, True
                order_notes = notes = []
                pid_seen_before_orc = pid_seen
            elif name == "PID":  # a new PATIENT_RESULT group: no order of the last one applies
                if not (orc_fresh and not pid_seen):
                    # ORC PID ... OBR, the message's first ORC before its only patient: no
                    # other order it could be; dropped, the order numbers it alone held
                    # failed the message (HL7_NO_ORDER_NUMBER)
                    orc, orc_fresh = None, False
                pid_seen = True
                patient_notes = notes = []
                in_patient = not waiting
            elif name in _PATIENT_PARTS:
                notes = patient_notes  # PID [PD1] [{NTE}], and after NK1, PV1, PV2 as sent
            elif current is not None:
                # TQ1 TQ2 CTD FT1 CTI: parts of the order (v2.5 7.3.1); an NTE after them
                # is the order's, no longer its last result's (and no longer dropped)
                notes = current.notes
                if name == "TQ1":
                    current.timing.append(seg)
    if waiting:
        where = loc(waiting[0][0])
        raise NormalizationError("HL7_OBX_WITHOUT_OBR", f"{where}: observation of the patient "
                                 "(before any order) that no OBR follows", where)
    _settle(early)
    return groups


def _settle(early: list[tuple[Segment, _Group | None]]) -> list:
    """SPM sent before an OBR that did not come: each goes where it went before this reading
    (the order current when it was sent; none before the first OBR). The empty list."""
    for spm, group in early:
        if group is not None:
            group.specimens.append(spm)
    return []


def _oul_groups(msg: Message, specimen_first: bool,
                containers_first: bool = False) -> list[_Group]:
    """The orders of an OUL (v2.5 13.4), where the ORC follows its OBR.

    R22/R23 (``specimen_first``): SPM [OBX...] [SAC...] then the orders of that specimen,
    OBR [ORC] [NTE] [TQ1] [OBX [NTE]...]; the specimen's own OBX (its volume, its aspect)
    are filed with its first order, and its SPM-17 dates every order of it. R24: OBR [ORC]
    [NTE] [SPM [OBX]] [OBX [NTE]...], each SPM its order's. An ORC sent before its OBR, as
    in an ORU, is still that OBR's.

    R21 (``containers_first``): [SAC [OBX...]] [SID...] [ORC] OBR [NTE] [TQ1] [OBX [TCD]
    [SID] [NTE]...]: a SAC opens the next order, its OBX (the tube's hemolysis or lipemia
    index, its volume) are filed with that order as a specimen's are. Read as R24, they
    were filed as results of the order before the SAC."""
    groups: list[_Group] = []
    current: _Group | None = None
    specimen: list[Segment] = []  # R22/R23: the SPM of the orders that follow
    waiting: list[tuple[Segment, list[Segment]]] = []  # specimen OBX, for its next order
    orc: Segment | None = None  # an ORC sent before its OBR
    resulted = False  # the current order has results of its own: a next ORC is not its own
    last_obx: Segment | None = None  # of the current order: the OBX a PRT sent now is about
    patient_notes: list[Segment] = []  # of the last PID
    message_notes: list[Segment] = []  # before any PID: MSH [{SFT}] [NTE]
    specimen_notes: list[Segment] = []  # after an SPM (or its SAC) sent before its orders
    notes: list[Segment] | None = message_notes
    maybe_null = msg.maybe_null
    for seg in msg.segments:
        name = seg.name
        if maybe_null and NULL in seg.fields and name in _NULLABLE:
            seg = _nulled(seg)
        if name == "OBX":
            notes = []
            if current is None:
                waiting.append((seg, notes))
            else:
                current.observations.append((seg, notes))
                resulted, last_obx = True, seg
        elif name == "PRT" and current is not None:  # v2.7+: as in an ORU (_groups)
            if last_obx is not None:
                current.result_parts.setdefault(last_obx.index, []).append(seg)
            elif not current.observations:
                current.order_parts.append(seg)
        elif name == "NTE":
            if notes is not None:
                notes.append(seg)
        elif name == "OBR":
            current = _Group(seg, orc, own_orc=orc is not None, specimens=list(specimen),
                             notes=list(specimen_notes) if specimen else [],
                             patient_notes=patient_notes, message_notes=message_notes)
            orc, resulted, last_obx = None, False, None
            if not specimen_first:
                specimen = []  # R24: an SPM sent before the first order is that order's
                specimen_notes = []
            current.observations.extend(waiting)
            waiting = []
            groups.append(current)
            notes = current.notes
        elif name == "ORC":
            if current is not None and current.orc is None and not resulted:
                current.orc, current.own_orc = seg, True
                notes = current.notes
            else:
                orc, notes = seg, None
        elif name == "SPM":
            # an NTE after the SPM (outside v2.5's OUL, but sent: 'échantillon hémolysé')
            # speaks of the specimen: the comments of its orders, as in an ORU (_groups);
            # it was dropped
            last_obx = None
            if specimen_first or current is None:
                specimen, current = [seg], None  # its OBX wait for its first order
                specimen_notes = notes = []
            else:
                current.specimens.append(seg)
                notes = current.notes
        elif name == "SAC" and containers_first:
            current, last_obx, notes = None, None, None  # its OBX wait for its order
        elif name in _NOTE_BREAKERS:
            notes = None
            if name == "PID":
                current, specimen, orc = None, [], None
                patient_notes = notes = []
                specimen_notes = []
            elif name in _PATIENT_PARTS:
                notes = patient_notes  # PID [PD1] [{NTE}], and after NK1, PV1, PV2 as sent
            elif current is not None:
                notes = current.notes  # TQ1 TQ2 CTD FT1 CTI SAC: parts of the order
                if name == "TQ1":
                    current.timing.append(seg)
            elif name == "SAC" and specimen:
                notes = specimen_notes  # R22: the container of the specimen before its orders
    if waiting:
        where = loc(waiting[0][0])
        raise NormalizationError("HL7_OBX_WITHOUT_OBR",
                                 f"{where}: observation of a specimen or container no OBR "
                                 "follows", where)
    return groups


# -- ORU ----------------------------------------------------------------------------------------
@dataclass(slots=True)
class _Ctx:
    msg: Message
    source: tuple[str, ...]  # mapping table candidates: intake source id, then sender
    mappings: CodeMappings | None
    warnings: list[str]
    keys: set[str] = field(default_factory=set)
    # a result key -> the OBX-14 its first result was sent with ('' for none): what tells a
    # cumulative report's previous results of one test apart (``_make_unique``)
    observed: dict[str, str] = field(default_factory=dict)
    # a result or report key -> the OBR-7 of the order its first entry came in, as sent:
    # what tells apart the orders of one number and code (``_order_time_key``)
    ordered: dict[str, str] = field(default_factory=dict)
    order_time: str = ""  # OBR-7 as sent of the order being read
    zone: str = PARIS  # of times sent without offset (fields.zone_of)
    # MSH-7 as ISO 8601 and as an instant (None: no time with an offset to compare with)
    sent_iso: str = ""
    sent_at: datetime | None = None
    # a result key -> the entry of the message that withdraws it (OBX-11 W or D), and the
    # entries left out (a withdrawal its replacement follows: ``_replacement_of``)
    withdrawals: dict[str, Entry] = field(default_factory=dict)
    dropped: set[int] = field(default_factory=set)


def normalize_oru(msg: Message, source: str, mappings: CodeMappings | None = None,
                  groups: list[_Group] | None = None) -> NormalizedMessage:
    """ORU^R01 to entries. ``source`` is the intake source id (selects per-source mappings);
    ``groups``: the orders as ``_oul_groups`` read them, for an OUL."""
    warnings: list[str] = []
    sender = msg.sender  # MSH-3|MSH-4: part of the logical id, and a mapping table candidate
    lid = logical_id(msg, sender)
    pid = single_pid(msg)
    identity = extract_identity(msg, pid)
    death = feeding_pid_death(msg, pid, identity.birth_date, warnings)
    if groups is None:
        groups = _groups(msg)
    _orders_without_request(msg, groups, warnings)
    groups = [g for g in groups if not _empty_request(g, warnings)]
    for g in groups:
        if g.orc_before_patient and g.orc is not None:
            warnings.append(f"{loc(g.orc)}: order control sent before the patient (PID): read "
                            f"as {loc(g.obr)}'s, the message's only order control before it")
        warnings.extend(f"{loc(spm)}: specimen sent before its order's OBR (ORU_R01 has it "
                        f"after the OBR and its results): read as {loc(g.obr)}'s"
                        for spm in g.early_specimens)
    if not groups:
        _no_order(msg, warnings)
    ctx = _Ctx(msg, (source, sender), mappings, warnings, zone=zone_of(msg))
    ctx.sent_iso, ctx.sent_at = _message_time(msg, ctx.zone)
    cisis = is_cisis(msg)
    meta = MessageMeta()
    quarantine: list[str] = [refused] if (refused := feeding_refused(msg)) else []
    entries: list[Entry] = []
    empty: list[NormalizationError] = []  # ED_EMPTY documents
    flags: list[GroupFlags] = []  # each order's MetaDMPMSS flags (documents.apply_group_meta)
    for g in groups:
        obr = g.obr
        gflags = GroupFlags(loc(obr))
        flags.append(gflags)
        start = len(entries)
        order_no, ns, scope_ns = _order_number(msg, g, ctx)
        c4 = comps(msg, first_rep(msg, obr, 4))
        obr_code = sub(msg, part(c4, 1), 1)
        if not obr_code and sub(msg, part(c4, 4), 1):
            # Only the alternate triplet (OBR-4.4-6) is filled ('^^^24326-1^Iono^LN'): it is
            # the identifier, as for OBX-3. Read past, every such order of one filler number
            # had the key 'report|number|ns|', and a panel sent alone later replaced another.
            c4 = c4[3:]
            obr_code = sub(msg, part(c4, 1), 1)
        parent = _parent_result(msg, obr)
        scope = parent.scope if parent is not None else ""
        report_key = f"report|{order_no}|{scope_ns}|{obr_code}"
        if scope:
            report_key = f"{report_key}|{scope}"
        ctx.order_time = _order_time_sent(msg, obr)
        if report_key in ctx.keys:
            report_key = _order_time_key(ctx, report_key, obr) \
                or _unique_key(ctx, report_key, obr)
        else:
            ctx.ordered[report_key] = ctx.order_time
        ctx.keys.add(report_key)
        collected = _specimen_time(msg, g)
        # OBR-7, else the specimen's collection time (SPM-17, v2.5.1): the clinically
        # relevant time of the order, which senders that fill SPM leave out of OBR-7
        obr7 = ts_field(msg, obr, 7)
        effective = obr7 or collected or _observation_end(ctx, obr)
        if effective is not None and ctx.sent_at is not None:
            _after_message(ctx, effective, loc(obr, 7) if obr7 else loc(obr))
        issued = ts_field(msg, obr, 22)
        specimen_time = collected or effective
        kinds = [classify_obx(msg, obx) for obx, _ in g.observations]
        cut = continuations(msg, [obx for obx, _ in g.observations], kinds, warnings) \
            if OBX_DOCUMENT in kinds else {}
        if cut:
            pieced = {id(o) for p in cut.values() for o in p.segments}
            kinds = [OBX_PIECE if id(obx) in pieced else k
                     for (obx, _), k in zip(g.observations, kinds, strict=True)]
        with_report = not kinds or OBX_RESULT in kinds
        report_performer = _report_performer(msg, obr)
        results: list[Entry] = []
        report_text: list[str] = []
        doc_ctx: DocumentContext | None = None
        last_text: tuple[tuple[str, str, str], Entry] | None = None
        for n, ((obx, notes), kind) in enumerate(zip(g.observations, kinds, strict=True)):
            if kind == OBX_PIECE:  # read with the document it continues
                continue
            if kind == OBX_RESULT:
                f = obx.fields  # (OBX-3, -4, -11) of a narrative line: see _continue_text
                nf = len(f)
                line = (f[3], f[4], f[11].strip().upper() if nf > 11 else "") \
                    if nf > 4 and f[3] and _narrative(f[2]) else None
                if line is not None and last_text is not None and last_text[0] == line:
                    _continue_text(msg, last_text[1], obx, notes)
                    continue
                try:
                    result = _result(ctx, obx, notes, order_no, scope_ns, effective, issued,
                                     specimen_time, report_key if with_report else None, scope)
                except _NothingCoded as said:  # its comments stay, as an empty OBX's
                    warnings.append(str(said))
                    report_text.extend(_notes(msg, notes) if notes else ())
                    last_text = None
                    continue
                if result is None:  # a line of text without identifier: the report's
                    if (f[2] if nf > 2 else "").strip().upper() in TEXT_TYPES:
                        report_text.extend(_untitled_text(msg, obx, notes))
                    else:  # an empty OBX: see _result
                        warnings.append(f"{loc(obx)}: observation without identifier nor "
                                        "value, nothing to file")
                        report_text.extend(_notes(msg, notes) if notes else ())
                    last_text = None
                    continue
                if result.effective != effective and result.effective is not None \
                        and ctx.sent_at is not None:
                    _after_message(ctx, result.effective, loc(obx, 14))
                results.append(result)
                last_text = (line, result) if line is not None else None
                continue
            last_text = None
            if kind == OBX_DOCUMENT:
                if doc_ctx is None:
                    doc_ctx = DocumentContext(
                        source=source, mappings=mappings, fallback_id="", fallback_is_slot=True,
                        action_sources=[order_control_source(msg, g.orc, cisis, warnings)],
                        effective=effective, issued=issued,
                        performer=sender_performer(msg) or report_performer,
                        parent_key=report_key if with_report else None)
                sub_id = text(msg, obx.raw(4)) or text(msg, obx.raw(1)) or str(obx.index)
                # a bare order number is scoped by its sender (documents.sender_scope):
                # two senders' '100234' were one document, the second replacing the first
                doc_ctx.fallback_id = f"{order_no}|{ns or sender_scope(msg)}|{sub_id}"
                try:
                    entry = document_entry(msg, obx, doc_ctx, identity, cisis, warnings,
                                           quarantine, pieces=cut.get(n))
                except NormalizationError as exc:
                    if exc.code != "ED_EMPTY":
                        raise
                    empty.append(exc)  # decided below, once the results are read
                    continue
                if entry.key in ctx.keys:
                    _make_unique(ctx, entry, obx)
                ctx.keys.add(entry.key)
                if n in cut:  # and after the OBX that continue it
                    pieces = {id(p) for p in cut[n].segments if p is not obx}
                    notes = notes + [nte for o, said in g.observations if id(o) in pieces
                                     for nte in said]
                if notes:
                    # an NTE after the document's OBX ('compte rendu signé électroniquement')
                    # is the document's comment, as a result's: it was dropped
                    entry.details.setdefault("comments", []).extend(_notes(msg, notes))
                    _keep_comment_types(msg, notes, entry.details)
                results.append(entry)
            else:
                _collect_flags(msg, obx, meta, gflags, warnings)
        if report_text:
            warnings.append(f"{loc(obr)}: text lines without observation identifier (OBX-3) "
                            "kept as the report's text")
        if effective is None and any(r.effective is None for r in results
                                     if r.type == LAB_RESULT):
            warnings.append(f"{loc(obr, 7)}: no observation date/time for the order (OBR-7, "
                            "SPM-17, OBR-8 empty) nor for some of its results (OBX-14): they "
                            "are filed without one")
        if with_report:
            report = _report(ctx, g, report_key, c4, obr_code,
                             effective or _results_time(ctx, obr, results), issued,
                             specimen_time, report_performer, results)
            if report_text:
                report.details["text"] = "\n".join(report_text).strip("\n")
            if parent is not None:
                _link_parent(report, parent, entries, _parent_order(msg, obr))
            if len(obr.fields) > 29 and obr.fields[29]:
                said_order = _parent_order_said(msg, obr)
                if said_order:
                    report.details["parent_order"] = said_order
            entries.append(report)
        if len(results) > 1:
            _isolates(msg, g, results)
        if g.result_parts or g.order_parts:
            _participants(msg, g, entries[-1] if with_report else None, results)
        if parent is not None:
            said = parent.said()  # which organism a susceptibility is of, on each result
            for r in results:
                if r.type == LAB_RESULT:
                    r.details["parent_result"] = said
        if g.specimens or (len(obr.fields) > 15 and obr.fields[15]):
            specimen = _specimen_type(msg, g)
            site = _specimen_site(msg, g)
            for r in results:
                if r.type == LAB_RESULT:
                    if specimen:
                        r.details["specimen"] = dict(specimen)
                    if site:
                        r.details["specimen_site"] = dict(site)
            if len(g.specimens) > 1 and g.specimen_of:
                _own_specimens(msg, g, results)
        if g.about_patient:
            _patient_observations(g, results)
        if g.specimens:
            _specimen_states(msg, g, entries[-1] if with_report else None, results)
        entries.extend(results)
        gflags.entries = {id(e) for e in entries[start:]}
        gflags.documents = any(e.type == DOCUMENT for e in entries[start:])
    if ctx.dropped:  # withdrawals their replacement follows (_replacement_of)
        entries = [e for e in entries if id(e) not in ctx.dropped]
    _empty_documents(empty, entries, warnings)
    if cisis:
        _reference_only(entries)
    add_embedded_entries(entries, source, mappings, warnings, msg.zone)
    entries = apply_group_meta(msg, entries, flags, meta, warnings)
    try:
        return NormalizedMessage(logical_id=lid, identity=identity, entries=entries,
                                 warnings=identity.warnings + warnings,
                                 quarantine_reasons=quarantine, death=death)
    except NormalizationError as exc:  # checked there once for all: nothing to pay before
        if exc.code != "FIELD_TOO_LONG":
            raise
        for entry in entries:
            if entry.type != DOCUMENT:
                _fit(entry, warnings)
        return NormalizedMessage(logical_id=lid, identity=identity, entries=entries,
                                 warnings=identity.warnings + warnings,
                                 quarantine_reasons=quarantine, death=death)


def _message_time(msg: Message, zone: str) -> tuple[str, datetime | None]:
    """MSH-7 as ISO 8601 and as an instant, for ``_after_message``; ('', None) when it is
    no HL7 date/time with a time to the minute (said by ``header_warnings``; a message
    dated to the day or the hour may have been sent at its end)."""
    sent = text(msg, part(comps(msg, first_rep(msg, msg.msh, 7)), 1))
    try:
        iso = hl7_ts_to_iso(sent, zone) if sent else ""
        at = datetime.fromisoformat(iso) if iso[13:14] == ":" else None
    except ValueError:
        return "", None
    return (iso, at) if at is not None and at.tzinfo is not None else ("", None)


# How far ahead of the message a time may be without a word: an instrument's or a LIS's
# clock a few minutes off is common and tells nothing
_AHEAD = timedelta(minutes=10)


def _after_message(ctx: _Ctx, when: str, where: str) -> None:
    """Say a collection or observation time later than the message itself (MSH-7): a
    result is observed before it is sent. A typo in a year ('2042'), an instrument left on
    summer time, times in UTC beside times in Paris time were filed as sent, a result on
    top of every trend, without a word. Filed as sent all the same (nothing tells the true
    time). A date is compared with the message's day, a time with its instant (a time to
    the hour by the hour's start)."""
    if "T" in when:
        try:
            late = datetime.fromisoformat(when) - ctx.sent_at > _AHEAD  # type: ignore[operator]
        except (ValueError, TypeError):  # no offset to compare with: nothing said
            return
    else:  # '2024-03-16', '2042-03', '2042': the day, month or year the message was sent
        late = when > ctx.sent_iso[:len(when)]
    if late:
        ctx.warnings.append(f"{where}: later than the message itself (MSH-7): a typo, or a "
                            "clock or time zone of the sender's that is wrong? filed as sent")


def _no_order(msg: Message, warnings: list[str]) -> None:
    """A results message without any OBR (v2.5 7.3.1 requires one per patient; a LIS
    sending 'Résultats à suivre' as an NTE after the PID, or a PID alone) files nothing:
    it was 'deposited, 0 entries' without a word, its comments dropped. Said, with how many
    comments are not filed (never their text); an ORC alone is said by
    ``_orders_without_request``."""
    if any(s.name == "ORC" for s in msg.segments):
        return
    pid = msg.first("PID")
    notes = sum(1 for s in msg.segments if s.name == "NTE")
    lost = f"; its {notes} comment(s) (NTE) are not filed" if notes else ""
    warnings.append(f"{loc(pid) if pid is not None else 'MSH'}: no OBR (observation "
                    f"request) in the message: no order, no result, nothing filed{lost}")


def _orders_without_request(msg: Message, groups: list[_Group], warnings: list[str]) -> None:
    """An ORC that is no order's own (no OBR follows it before the next ORC, PID or the end:
    v2.5 7.3.1 requires one) has nothing to file: said in a warning, with its ORC-1 (a
    cancellation 'CA' sent that way is not applied). It was dropped without a word."""
    own = {g.orc.index for g in groups if g.own_orc and g.orc is not None}
    for seg in msg.segments:
        if seg.name == "ORC" and seg.index not in own:
            code = text(msg, first_rep(msg, seg, 1))[:2]
            warnings.append(f"{loc(seg)}: order control{f' {code!r}' if code else ''} without "
                            "an OBR (observation request) after it: nothing filed for it")


def _empty_request(g: _Group, warnings: list[str]) -> bool:
    """An OBR that says nothing (no field valued beyond its set id: 'OBR|', 'OBR|2', as a
    sender's template leaves a last order group unfilled) with nothing under it (no OBX,
    SPM nor NTE): no order to file, said in a warning. It was filed as a report of no test,
    no date and unknown status, under the order number of the ORC before it."""
    if g.observations or g.specimens or g.notes:
        return False
    if any(value.strip() and value != NULL for value in g.obr.fields[2:]):
        return False
    warnings.append(f"{loc(g.obr)}: observation request with no field valued (no test, no "
                    "order number) and no result: nothing filed for it")
    return True


def _participants(msg: Message, g: _Group, report: Entry | None,
                  results: list[Entry]) -> None:
    """Who performed and who interpreted, as v2.7+ senders say it: PRT segments (table 0912
    roles) in place of the fields v2.7 deprecates. A result's performer is the performing
    organization (PRT-4 'PO', PRT-8) unless OBX-23 names one, else the responsible observer
    (PRT 'RO', PRT-5) when OBX-15/16 name nobody; a report's is its principal interpreter
    (PRT 'PI') when OBR-32 is empty. They were read from the old fields only: a v2.8 lab's
    results had no performer, its subcontracted tests looked done in-house."""
    if report is not None and g.order_parts and not (len(g.obr.fields) > 32
                                                       and g.obr.fields[32]):
        name = _participant(msg, g.order_parts, "PI")
        if name:
            report.performer = name
    if report is not None and g.order_parts and "ordering_provider" not in report.details:
        _ordering_provider(msg, g.order_parts, report)
    if not g.result_parts:
        return
    by_ref = {r.source_ref: r for r in results if r.type == LAB_RESULT}
    for index, parts in g.result_parts.items():
        result = by_ref.get(f"OBX[{index}]")
        if result is None:
            continue
        obx = next(o for o, _ in g.observations if o.index == index)
        f = obx.fields
        org = _participant(msg, parts, "PO") if not (len(f) > 23 and f[23]) else None
        if org:
            result.performer = org
            said = next((_organization_said(msg, first_rep(msg, prt, 8)) for prt in parts
                         if text(msg, part(comps(msg, first_rep(msg, prt, 4)), 1)).upper()
                         == "PO"), None)
            if said and said["name"] == org:
                result.details["performing_organization"] = said
        elif result.performer is None:
            result.performer = _participant(msg, parts, "RO")
        if "responsible_observer" not in result.details:
            for prt in parts:
                if text(msg, part(comps(msg, first_rep(msg, prt, 4)), 1)).upper() == "RO":
                    observer = _observer(msg, first_rep(msg, prt, 5))
                    if observer:
                        result.details["responsible_observer"] = observer
                    break


def _ordering_provider(msg: Message, parts: list[Segment], report: Entry) -> None:
    """The ordering provider of a v2.7+ order: the PRT in role OP (table 0912) after its ORC
    or OBR, PRT-5 its person, read as OBR-16 and ORC-12 are (they win when sent). v2.7
    deprecates OBR-16 for it; a v2.8 lab's report did not say who had ordered the tests
    (the prescriber a result goes back to)."""
    for prt in parts:
        if text(msg, part(comps(msg, first_rep(msg, prt, 4)), 1)).upper() != "OP":
            continue
        rep = first_rep(msg, prt, 5)
        name = person_name(msg, rep) if rep else ""
        if name:
            report.details["ordering_provider"] = name
            said = _provider_id(msg, rep)
            if said:
                report.details["ordering_provider_id"] = said
            return


def _organization_said(msg: Message, rep: str) -> dict[str, Any] | None:
    """A performing laboratory (OBX-23, PRT-8: XON) with its identifier as sent: XON.10
    (XON.3 before v2.5), its assigning authority XON.6 (the OID when there is one: a FINESS
    under the ANS structures' 1.2.250.1.71.4.2.2) and its type XON.7 ('FINEG'). Only the
    name was kept, and two laboratories of one name were one. None without a name and an
    identifier (a name alone is the entry's performer already)."""
    c = comps(msg, rep)
    name = sub(msg, part(c, 1), 1)
    number = sub(msg, part(c, 10), 1) or sub(msg, part(c, 3), 1)
    if not name or not number:
        return None
    hd = part(c, 6)
    ident = {"id": number,
             "authority": authority_of(sub(msg, hd, 1), sub(msg, hd, 2), sub(msg, hd, 3)),
             "type": sub(msg, part(c, 7), 1)}
    return {"name": name, "id": {k: v for k, v in ident.items() if v}}


def _participant(msg: Message, parts: list[Segment], role: str) -> str | None:
    """The name of the first PRT of ``parts`` in ``role`` (PRT-4.1): its organization
    (PRT-8, XON) for an organization's role, else its person (PRT-5, XCN)."""
    for prt in parts:
        if text(msg, part(comps(msg, first_rep(msg, prt, 4)), 1)).upper() != role:
            continue
        org = first_rep(msg, prt, 8)
        name = (organization(msg, org) if org else "") if role == "PO" else ""
        person = first_rep(msg, prt, 5)
        name = name or (person_name(msg, person) if person else "") or \
            (organization(msg, org) if org else "")
        if name:
            return name
    return None


@cache
def _organism_codes() -> frozenset[tuple[str, str]]:
    """(system, code) of the 'organism identified' observations (tables/
    organism_identification_codes.csv, shared with the CDA path)."""
    return frozenset((row["system"], row["code"])
                     for row in table("organism_identification_codes"))


def _isolates(msg: Message, g: _Group, results: list[Entry]) -> None:
    """A culture's results grouped by organism through OBX-4 (v2.5 7.4.2.4: the sub-id
    relates OBX of one order): the organism's identification under '1', its colony count
    and antibiotics under '1' too (US ELR) or '1.1', '1.2'... (dotted, French LIS). Each
    result of a group names its organism in ``details['isolate']`` ({code, system,
    display} or {text}), as a CR-BIO's isolate organizer does. Unsaid, two organisms'
    'amoxicillin S' were one fact (dedupe level 4): the second organism's, filed by a later
    message of the culture, was taken for the first's and never filed. A sub-id under two
    identifications names no single organism and is left alone; results sent before the
    first identification (the cytology of an ECBU, under a default sub-id '1') are no
    organism's."""
    codes = _organism_codes()
    found = [r for r in results if r.type == LAB_RESULT and (r.system or "", r.code or "")
             in codes]
    if not found:
        return
    organisms: dict[str, dict[str, str] | None] = {}
    sub_ids = {f"OBX[{obx.index}]": (obx.fields[4].strip() if len(obx.fields) > 4 else "")
               for obx, _ in g.observations}
    for r in found:
        sub_id = sub_ids.get(r.source_ref, "")
        if sub_id:
            organisms[sub_id] = None if sub_id in organisms else _germ_of(r)
    first = results.index(found[0])
    for r in results[first + 1:]:  # what follows the identification: a cytology sent
        # before it under the same default sub-id '1' is no result of the organism
        if r.type != LAB_RESULT or (r.system or "", r.code or "") in codes:
            continue
        sub_id = sub_ids.get(r.source_ref, "")
        while sub_id:
            if sub_id in organisms:
                germ = organisms[sub_id]
                if germ:
                    r.details["isolate"] = dict(germ)
                break
            sub_id = sub_id.rpartition(".")[0]


def _germ_of(result: Entry) -> dict[str, str] | None:
    """The organism an identification result names: its coded value ({code, system named
    as on every channel, display}) or its words ({text}); None when it names none (no
    value yet, several organisms in one value)."""
    coded = result.details.get("coded_value")
    if isinstance(coded, dict):
        if coded.get("code"):
            system = coded.get("system", "")
            return {"code": coded["code"], "system": system_name(system) if system else "",
                    "display": coded.get("display", "")}
        words = coded.get("display") or coded.get("original_text")
        return {"text": words} if words else None
    if coded is None and result.value and result.value_num is None:
        return {"text": result.value}
    return None


def _collect_flags(msg: Message, obx: Segment, meta: MessageMeta, group: GroupFlags,
                   warnings: list[str]) -> None:
    """A MetaDMPMSS or mail OBX read for the message (``meta``, its warnings said) and for
    its order alone (``group``): what the message-wide reading says that the order's own
    does not (two orders' flags 'sent twice') is kept in ``group.cross``."""
    said: list[str] = []
    collect_meta(msg, obx, meta, said)
    own: list[str] = []
    collect_meta(msg, obx, group.meta, own)
    group.obx.append(obx)
    group.cross.update(set(said) - set(own))
    warnings.extend(said)


def _empty_documents(empty: list[NormalizationError], entries: list[Entry],
                     warnings: list[str]) -> None:
    """An empty ED (ED_EMPTY) fails the message when the message is about that document;
    beside results, the results are filed and the empty document is not, with a warning.
    Why: filed, an empty document was a blank current version (a replacement hid the report);
    failing the whole ORU for it kept a validated potassium out of the dossier."""
    if not empty:
        return
    if not any(e.type == LAB_RESULT for e in entries):
        raise empty[0]
    for exc in empty:
        warnings.append(f"{exc.location}: the document is empty (no data in the ED): not "
                        "filed; the results of the message are")


def _results_time(ctx: _Ctx, obr: Segment, results: list[Entry]) -> str | None:
    """The time of an order sent without any (OBR-7, SPM-17, OBR-8 empty) whose results all
    give one and the same OBX-14, said; None otherwise. The report was filed undated, its
    results dated: listed by date, the dossier showed it nowhere. Results observed at
    several times (a cumulative report's previous results) date nothing: the order's time
    is none of them."""
    times = {r.effective for r in results if r.type == LAB_RESULT}
    if len(times) != 1 or None in times:
        return None
    ctx.warnings.append(f"{loc(obr, 7)}: no observation date/time for the order (OBR-7, "
                        "SPM-17, OBR-8 empty): the report is dated by its results' one "
                        "observation time (OBX-14)")
    return times.pop()


def _observation_end(ctx: _Ctx, obr: Segment) -> str | None:
    """OBR-8, the end of the collection (v2.5 7.4.1.8), when neither OBR-7 nor SPM-17 dates
    the order: OBR-7 is required in a result, but older SILs fill only OBR-8, and their
    results were filed undated without a word. Said in a warning."""
    if len(obr.fields) <= 8 or not obr.fields[8]:
        return None
    end = ts_field(ctx.msg, obr, 8)
    if end is not None:
        ctx.warnings.append(f"{loc(obr, 7)}: empty; the end of the observation (OBR-8) dates "
                            "the order")
    return end


def _untitled_text(msg: Message, obx: Segment, notes: list[Segment]) -> list[str]:
    """The lines of a text OBX (ST, TX, FT) sent without observation identifier.

    Transcription and radiology systems send a narrative report one line per OBX, OBX-3 left
    empty (empty lines are paragraph breaks). There is no observation to key a result on, but
    the text belongs to the report of the OBR: it is kept there, in order, notes included.
    Any other OBX without identifier but with a value still fails (OBX_NO_CODE, see
    ``_result``)."""
    lines = [_text_line(msg, r) for r in reps(msg, obx, 5)] or [""]
    return lines + _notes(msg, notes)


@lru_cache(maxsize=64)
def _narrative(vtype: str) -> bool:
    """OBX-2 is TX or FT (cached: a handful of spellings, read for every OBX). Not ST: two
    ST values under one identifier are as often two results (two organisms) sent without
    sub-ids, and stay two entries."""
    return vtype.strip().upper() in NARRATIVE_TYPES


def _continue_text(msg: Message, entry: Entry, obx: Segment, notes: list[Segment]) -> None:
    """A narrative report (TX, FT) sent one line per OBX, each with the same identifier,
    sub-id and status (radiology and transcription systems): one observation whose text
    goes on, not a result per line with made-up keys '#2', '#3'... (a correction with fewer
    lines left the old extra lines behind)."""
    lines = "\n".join(_text_line(msg, r) for r in reps(msg, obx, 5))
    if entry.status in WITHHELD_STATUSES:  # the same OBX-11 as the first line's
        withheld = entry.details.get("value_withheld")
        entry.details["value_withheld"] = f"{withheld}\n{lines}" if withheld else lines
    else:
        entry.value = f"{entry.value or ''}\n{lines}"
        if entry.value_num is not None:  # a number read from the first line is no more
            entry.value_num = entry.comparator = None
    comments = _notes(msg, notes) if notes else None
    if comments:
        entry.details.setdefault("comments", []).extend(comments)
        _keep_comment_types(msg, notes, entry.details)


@dataclass(slots=True, frozen=True)
class _ParentResult:
    """OBR-26 (PRL): the parent's OBX-3 identifier, OBX-4 sub-id and OBX-5 value (text).

    A susceptibility panel names the organism it is about this way (v2.5 7.4.1.26, ELR
    microbiology); ``scope`` keeps the keys of two organisms' panels apart."""

    code: str
    sub_id: str
    value: str
    system: str = ""  # OBR-26.1.3, as sent: part of the parent's key, never of what is said

    @property
    def scope(self) -> str:
        if self.code and not self.sub_id and self.value:
            # PRL.2 left out ('600-7&Germe&LN^^Escherichia coli'): the isolate PRL.3 names
            # tells two organisms' panels apart. Keyed by the code alone, the second panel
            # was told from the first by its rank ('#2'), and a later message holding only
            # the second filed it over the first organism's antibiogram.
            return f"{self.code}^^{self.value[:64]}"
        if self.code or self.sub_id:
            return f"{self.code}^{self.sub_id}"
        return self.value

    def said(self) -> dict[str, str]:
        """What the sender said of the parent, for ``details['parent_result']``."""
        said = {"code": self.code, "sub_id": self.sub_id, "value": self.value}
        return {k: v for k, v in said.items() if v}


def _parent_result(msg: Message, obr: Segment) -> _ParentResult | None:
    """OBR-26 when it is one: a PRL has components (identifier ^ sub-id ^ value) or at least
    a coded identifier (code&text&system); a lone value there ('F', a status shifted by one
    field) is no parent and changes no key."""
    f = obr.fields
    if len(f) <= 26 or not f[26]:
        return None
    d = msg.delimiters
    if d.component not in f[26] and d.subcomponent not in f[26]:
        return None
    c = comps(msg, first_rep(msg, obr, 26))
    value = part(c, 3)  # TX; ELR senders write the organism coded there: code&text&system
    value = (sub(msg, value, 2) or sub(msg, value, 1)) if d.subcomponent in value \
        else text(msg, value)
    parent = _ParentResult(sub(msg, part(c, 1), 1), sub(msg, part(c, 2), 1), value,
                           sub(msg, part(c, 1), 3))
    return parent if parent.scope else None


def _link_parent(report: Entry, parent: _ParentResult, entries: list[Entry],
                 parent_order: tuple[str, str, str] | None) -> None:
    """A child order (a susceptibility panel) points at the result it is about (the
    organism): ``details['parent_result']`` says which, as sent, and ``parent_key`` is that
    result's key: the last one of the message with that identifier and sub-id, else, when
    the organism came in an earlier message, the key it was filed under, built from OBR-29
    (the parent order: filler number and namespace) and OBR-26.1 (its OBX-3 code and coding
    system as sent). A panel sent the day after its organism (the usual course of a
    culture) was linked to nothing; deposit finds the organism in the dossier by that key
    (none held: no link, as before)."""
    report.details["parent_result"] = parent.said()
    if not parent.code:
        return
    if not parent.sub_id and parent.value:
        found = _isolate_result(parent, entries)
        if found is not None:
            report.parent_key = found.key
            return
    for entry in reversed(entries):
        if entry.type != LAB_RESULT:
            continue
        parts = entry.key.split("|")
        # OBR-26.1 names the parent by its OBX-3 as sent, or by the LOINC the result is filed
        # under ('600-7' for an organism sent 'GERME^Germe^L^600-7^^LN')
        if len(parts) > 5 and parts[5] == parent.sub_id \
                and (parts[3] == parent.code or entry.code == parent.code):
            report.parent_key = entry.key
            return
    if parent_order is not None and parent.system:
        number, _, scope = parent_order
        report.parent_key = f"result|{number}|{scope}|{parent.code}|{parent.system}|" \
                            f"{parent.sub_id}"


def _isolate_result(parent: _ParentResult, entries: list[Entry]) -> Entry | None:
    """The message's result a PRL without sub-id names by its isolate (PRL.3, its words or
    its code): the last one of OBR-26.1's identifier whose organism (``_germ_of``) is
    that one, whatever its OBX-4. Read by identifier and an empty sub-id, the panel was
    linked to no result (or to a key no result has)."""
    said = parent.value.strip().casefold()
    for entry in reversed(entries):
        parts = entry.key.split("|")
        if entry.type != LAB_RESULT or parent.code not in (parts[3] if len(parts) > 3 else "",
                                                           entry.code):
            continue
        germ = _germ_of(entry) or {}
        if said in {str(v).strip().casefold() for k, v in germ.items() if k != "system"}:
            return entry
    return None


def _parent_order(msg: Message, obr: Segment) -> tuple[str, str, str] | None:
    """(number, namespace, scope) of the parent order OBR-29 names (EIP: placer ^ filler,
    each number & namespace & universal id), filler first as ``_order_number`` keys an order;
    None if unsaid."""
    c29 = comps(msg, first_rep(msg, obr, 29))
    for i in (2, 1):
        number = sub(msg, part(c29, i), 1)
        if number:
            namespace, universal = sub(msg, part(c29, i), 2), sub(msg, part(c29, i), 3)
            return number, namespace or universal, order_scope(msg, namespace, universal)
    return None


def _parent_order_said(msg: Message, obr: Segment) -> dict[str, str]:
    """OBR-29 (EIP: placer ^ filler, each number & namespace) as sent: the order this one
    was made from. A reflex test (a free T4 ordered by the laboratory after a high TSH) names
    its parent only there, OBR-26 empty; it was not read, and the report did not say which
    order it came from. Not part of any key."""
    c29 = comps(msg, first_rep(msg, obr, 29))
    said: dict[str, str] = {}
    for i, role in ((1, "placer"), (2, "filler")):
        number = sub(msg, part(c29, i), 1)
        if number:
            said[role] = number
            ns = sub(msg, part(c29, i), 2) or sub(msg, part(c29, i), 3)
            if ns:
                said[f"{role}_namespace"] = ns
    return said


def _order_number(msg: Message, g: _Group, ctx: _Ctx) -> tuple[str, str, str]:
    """(number, namespace, scope): filler order (OBR-3, ORC-3) first, else placer (OBR-2,
    ORC-2); the namespace as sent (EI.2, else EI.3), the scope its assigning authority as the
    keys of its results and report name it (``order_scope``); for a point-of-care result
    sent without any number, see ``_point_of_care_set``.

    An ORC inherited from an earlier order (``_Group.own_orc`` false) comes after the OBR's
    own numbers: its filler number is that other order's, and taking it first filed the
    results of an OBR sent with a placer number only under the previous order."""
    if g.own_orc:
        candidates = [(g.obr, 3), (g.orc, 3), (g.obr, 2), (g.orc, 2)]
    else:
        candidates = [(g.obr, 3), (g.obr, 2), (g.orc, 3), (g.orc, 2)]
    for seg, n in candidates:
        if seg is None:
            continue
        c = comps(msg, first_rep(msg, seg, n))
        number = sub(msg, part(c, 1), 1)
        if number:
            namespace, universal = sub(msg, part(c, 2), 1), sub(msg, part(c, 3), 1)
            return number, namespace or universal, order_scope(msg, namespace, universal)
    # A child order (OBR-26 set: a susceptibility panel) sent without numbers of its own is
    # filed under its parent's (OBR-29: placer&ns ^ filler&ns), the parent result in its key.
    if _parent_result(msg, g.obr):
        parent = _parent_order(msg, g.obr)
        if parent is not None:
            return parent
    where = loc(g.obr, 3)
    if msg.message_type[1].strip().upper() in POINT_OF_CARE:
        number, namespace = _point_of_care_set(ctx, g, where)
        return number, namespace, namespace
    raise NormalizationError("HL7_NO_ORDER_NUMBER",
                             f"{where}: no filler or placer order number (OBR-3, OBR-2, ORC)",
                             where)


def order_scope(msg: Message, namespace: str, universal: str) -> str:
    """The namespace part of an order's keys: who assigned its number (EI.2 namespace id,
    EI.3 universal id; v2.5 2.A.28), as ``dossiers.deposit.unscoped_order_key`` reads it.

    An order number is unique only within its assigning authority. Keyed by the namespace
    id alone, two laboratories giving the same number under one namespace name ('LAB',
    universal ids 1.2.250.1.999.1 and .2), or giving a bare number ('24C0315-07', no EI.2 nor
    EI.3, as many LIS write OBR-3), filed their results under one key: the potassium of one
    lab became a 'new version' of the other's, the first hidden from the dossier. Now: both
    ids when both are sent ('LAB&1.2.250.1.999.1', as an HD is written), either alone as
    before, and a bare number scoped by the application and facility that sent it (the
    filler of an ORU, v2.5 4.5.1.3: '&SIL-BIO^LABO-DEMO'). What comes before the '&' is the
    key's namespace as it was before: deposit follows results filed then."""
    if namespace and universal:
        return namespace if namespace == universal else f"{namespace}&{universal}"
    return namespace or universal or "&" + msg.sender.replace("|", "^")


def _point_of_care_set(ctx: _Ctx, g: _Group, where: str) -> tuple[str, str]:
    """(number, namespace) of a point-of-care observation set sent without any order number.

    ORU^R30/R31/R32 (v2.5 7.3.4-7.3.6, IHE LPOCT): a glucose meter or blood gas analyser
    reports what it measured before any order exists; the order is made from the result, and
    many devices and data managers send neither OBR-2 nor OBR-3. Such a message was refused
    whole (HL7_NO_ORDER_NUMBER). What tells one reading from another is when it was observed
    (OBR-7, else the first OBX-14) and on which device (the first OBX-18 equipment instance,
    else the sending application and facility): the same reading sent again (a new MSH-10)
    gets the same keys and is a duplicate, its correction (OBX-11 C) replaces it, and a
    reading of another time or device is another result. Without any time nothing tells the
    readings apart: still refused, saying so."""
    msg = ctx.msg
    obr = g.obr
    observed = ts_field(msg, obr, 7)
    device = ""
    for obx, _ in g.observations:
        f = obx.fields
        if observed is None and len(f) > 14 and f[14]:
            observed = _ts(obx, 14, msg.delimiters, ctx.zone)
        if not device and len(f) > 18 and f[18]:
            c = comps(msg, first_rep(msg, obx, 18))
            device = "^".join(x for x in (sub(msg, part(c, i), 1) for i in (1, 2, 3)) if x)
    if observed is None:
        raise NormalizationError(
            "HL7_NO_ORDER_NUMBER", f"{where}: point-of-care result without order number "
            "(OBR-3, OBR-2, ORC) nor observation time (OBR-7, OBX-14): nothing tells this "
            "reading from another", where)
    namespace = device or msg.sender.replace("|", "^")
    ctx.warnings.append(f"{where}: point-of-care result without order number (OBR-3, OBR-2, "
                        "ORC): identified by its observation time and "
                        + ("its device (OBX-18)" if device else "its sender (MSH-3, MSH-4)"))
    return f"POC-{observed}", namespace


def _specimen_type(msg: Message, g: _Group) -> dict[str, str] | None:
    """What was sampled (blood, urine...): SPM-4 of the order's specimen (v2.5), else OBR-15
    component 1 (v2.3-2.4 senders), as the CDA path files a CR-BIO's specimen
    (``details.specimen``: code, system (named as on every channel), display; or only its
    text). Never part of the dedupe fact: one channel may say it and the other not."""
    for spm in g.specimens:
        found = _coded_specimen(msg, comps(msg, first_rep(msg, spm, 4)), subcomponents=False)
        if found:
            return found
    obr = g.obr
    if len(obr.fields) > 15 and obr.fields[15]:
        c = comps(msg, first_rep(msg, obr, 15))
        # 'URI^Urine^HL70487': the specimen written as a CWE in the components (v2.7's
        # SPM-4 habit), not in component 1's subcomponents (SPS.1); its name was read as
        # SPS.2 (additives) and lost. The table name in the third place says which it is.
        as_cwe = (len(c) >= 3 and _SPECIMEN_TABLE.fullmatch(text(msg, c[2]).strip())
                  and msg.delimiters.subcomponent not in c[0])
        found = _coded_specimen(msg, c[:3] if as_cwe else c[:1], subcomponents=not as_cwe)
        # a code of table 0070's form ('BLD', 'SER', 'UR'), not what a sender that shifted
        # its fields put there (an ordering provider's id, '555-55-5555^PRIMARY^...'); a
        # specimen table named says it is one (a SNOMED CT code is digits)
        if found and (as_cwe or _SPECIMEN_CODE.fullmatch(found.get("code")
                                                          or found.get("text", ""))):
            return found
    return None


def _specimen_site(msg: Message, g: _Group) -> dict[str, str] | None:
    """Where on the body the specimen was taken: SPM-8, specimen source site (CWE, v2.5
    7.4.3.8: 'Pied gauche', 'Cathéter veineux central'), else OBR-15.4, the body site of
    the specimen source (v2.3-2.4 SPS). A wound swab of the left foot and one of the right
    hand, a blood culture drawn through a catheter and one drawn peripherally (the
    differential time to positivity tells a catheter infection), are told apart only by it;
    it was not read, and every such result looked taken from nowhere in particular. In
    ``details['specimen_site']`` (the FHIR Specimen's collection.bodySite); never part of a
    key or of the dedupe fact, as the specimen type is not."""
    for spm in g.specimens:
        if len(spm.fields) > 8 and spm.fields[8]:
            found = _coded_specimen(msg, comps(msg, first_rep(msg, spm, 8)),
                                    subcomponents=False)
            if found:
                return found
    obr = g.obr
    if len(obr.fields) > 15 and obr.fields[15]:
        c = comps(msg, first_rep(msg, obr, 15))
        if len(c) > 3 and c[3]:
            return _coded_specimen(msg, [c[3]], subcomponents=True)
    return None


def _patient_observations(g: _Group, results: list[Entry]) -> None:
    """The patient's own observations of a point-of-care message (its temperature, its FiO2)
    are said to be (details['patient_observation']) and taken from no specimen."""
    for r in results:
        if r.type == LAB_RESULT and int(r.source_ref[4:-1]) in g.about_patient:
            r.details["patient_observation"] = True
            r.details.pop("specimen", None)
            r.details.pop("specimen_site", None)


def _own_specimens(msg: Message, g: _Group, results: list[Entry]) -> None:
    """The results of an order with several specimens (SPM) that came in a SPECIMEN group
    (v2.5.1 ORU_R01: SPM {OBX}) are about that SPM's specimen: its type (SPM-4) and its
    collection time (SPM-17). The order's first specimen was given to all of them: the
    second blood culture bottle's growth was filed as taken from the first one, at its
    time; a 24 h urine volume beside a serum as from the serum."""
    by_ref = {r.source_ref: r for r in results if r.type == LAB_RESULT}
    for index, spm in g.specimen_of.items():
        result = by_ref.get(f"OBX[{index}]")
        if result is None:
            continue
        own = _coded_specimen(msg, comps(msg, first_rep(msg, spm, 4)), subcomponents=False)
        if own:
            result.details["specimen"] = own
        site = _coded_specimen(msg, comps(msg, first_rep(msg, spm, 8)), subcomponents=False) \
            if len(spm.fields) > 8 and spm.fields[8] else None
        if site:
            result.details["specimen_site"] = site
        collected = _collected(msg, spm)
        if collected:
            result.specimen_time = collected


# The specimen tables a CWE names: HL7 0070 (v2.5) and 0487 (v2.5.1+), and SNOMED CT.
_SPECIMEN_TABLE = re.compile(r"(?i)(?:HL7)?0?(?:070|487)|SCT|SNOMED[ -]?CT|SNM")
_SPECIMEN_CODE = re.compile(r"[A-Za-z][A-Za-z0-9]{0,9}|[^\W\d][^\d]*")


def _coded_specimen(msg: Message, c: list[str], *, subcomponents: bool) -> dict[str, str] | None:
    """A CWE (SPM-4), or one written in the subcomponents of a component (OBR-15.1)."""
    if subcomponents:
        first = part(c, 1)
        code, display, system = (sub(msg, first, i) for i in (1, 2, 3))
    else:
        code, display, system = _specimen_cwe(msg, c)
    if code:
        return {"code": code, "system": system_name(system) if system else "",
                "display": display}
    return {"text": display} if display else None


def _specimen_cwe(msg: Message, c: list[str]) -> tuple[str, str, str]:
    """(code, text, coding system) of a specimen type sent as a CWE (SPM-4, v2.5 7.4.3.4):
    its identifier triplet, else its alternate one (CWE.4-6: '^^^BLD^Sang^HL70487', a
    sender with no code of its own), the text else the original text (CWE.9: '^^^^^^^^Sang
    veineux', or a code sent without its text). Only the first triplet was read: a specimen
    coded in the alternate triplet or said in the original text alone was lost without a
    word, as OBX-3 and OBR-4 were (rounds 7 and 9)."""
    code, display, system = (text(msg, part(c, i)) for i in (1, 2, 3))
    if not code and not display and text(msg, part(c, 4)):
        code, display, system = (text(msg, part(c, i)) for i in (4, 5, 6))
    return code, display or text(msg, part(c, 9)), system


def _specimen_time(msg: Message, g: _Group) -> str | None:
    for spm in g.specimens:
        value = _collected(msg, spm)
        if value:
            return value
    return None


def _specimen_state(msg: Message, spm: Segment) -> dict[str, list[dict[str, str]]]:
    """What the laboratory says of a specimen it received: SPM-21 why it was rejected
    ('tube cassé', 'quantité insuffisante', table 0490) and SPM-24 its condition
    ('hémolysé', 'lipémique', table 0493), each repetition as ``_coded_item`` reads it."""
    state: dict[str, list[dict[str, str]]] = {}
    f = spm.fields
    for n, name in ((21, "specimen_rejected"), (24, "specimen_condition")):
        if len(f) > n and f[n]:
            said = [i for i in (_coded_item(msg, r) for r in reps(msg, spm, n)) if i]
            if said:
                state[name] = said
    return state


def _specimen_states(msg: Message, g: _Group, report: Entry | None,
                     results: list[Entry]) -> None:
    """``_specimen_state`` of the order's specimens, in details: on the report all of them,
    on each result its own specimen's (``_Group.specimen_of``), else the order's first.
    Dropped, a rejected specimen left a cancelled order with no reason, and a potassium
    measured on a haemolysed sample read like any other."""
    states = {id(spm): _specimen_state(msg, spm) for spm in g.specimens}
    if not any(states.values()):
        return
    if report is not None:
        for state in states.values():
            for name, said in state.items():
                held = report.details.setdefault(name, [])
                held.extend(i for i in said if i not in held)
    first = states[id(g.specimens[0])]
    for r in results:
        if r.type != LAB_RESULT:
            continue
        own = g.specimen_of.get(int(r.source_ref[4:-1])) if g.specimen_of else None
        for name, said in (states[id(own)] if own is not None else first).items():
            r.details[name] = list(said)


def _collected(msg: Message, spm: Segment) -> str | None:
    """SPM-17, specimen collection date/time, a DR (v2.5 2.A.20: start ^ end, each a TS whose
    DTM and degree of precision are subcomponents): the start, else the end. Read as a
    TS, a start sent with its precision ('20240315080500&S', IHE LAB-TF's form) failed the
    whole message HL7_BAD_DATE, and a range with its end alone dated nothing."""
    c = comps(msg, first_rep(msg, spm, 17))
    sent = part(c, 1) if sub(msg, part(c, 1), 1) else part(c, 2)
    raw = sub(msg, sent, 1)
    if not raw:
        return None
    try:
        return hl7_ts_to_iso(with_degree(raw, sub(msg, sent, 2)), zone_of(msg))
    except ValueError:
        where = loc(spm, 17)
        raise NormalizationError("HL7_BAD_DATE", f"{where}: {BAD_TS_TEXT}", where) from None


def _report_performer(msg: Message, obr: Segment) -> str | None:
    """OBR-32 principal result interpreter, else the sending facility (MSH-4)."""
    rep = first_rep(msg, obr, 32)
    return (person_name(msg, rep) if rep else "") or msg.get(msg.msh, 4) or None


@cache
def _report_statuses() -> dict[str, str]:
    return column_map("report_status", "code", "status")


@cache
def _order_control_statuses() -> dict[str, str]:
    return column_map("order_control_status", "code", "status")


@cache
def _order_statuses() -> dict[str, str]:
    return column_map("order_status", "code", "status")


def _order_status(msg: Message, orc: Segment, resulted: bool) -> str:
    """The status of an order sent without OBR-25 whose results tell none: its own ORC-1 may
    say it was canceled ('OC'); with no result at all, its ORC-5 (table 0038) that it is in
    process ('IP', 'SC': an order registered, its results to come). An order sent before its
    results (ORC|SC||...||IP, an OBR without OBX) was filed as a report of unknown status.
    (ORC-5 is not read beside results of their own status: they tell more than it.)"""
    code1 = text(msg, first_rep(msg, orc, 1)).upper()
    status = _order_control_statuses().get(code1)
    if status is None and resulted:
        return "unknown"
    if status is None:
        code5 = text(msg, part(comps(msg, first_rep(msg, orc, 5)), 1)).strip().upper()
        status = _order_statuses().get(code5, "unknown")
    return status


def _report(ctx: _Ctx, g: _Group, key: str, c4: list[str], obr_code: str,
            effective: str | None, issued: str | None, specimen_time: str | None,
            performer: str | None, results: list[Entry]) -> Entry:
    """One LAB_REPORT; ``c4``: the components of OBR-4, as the caller split them."""
    msg, obr = ctx.msg, g.obr
    display, system = text(msg, part(c4, 2)), sub(msg, part(c4, 3), 1)
    sent_system = ""
    if system and not display and text_in_system_slot(system):
        sent_system = system
        display, system = _name_in_system_slot(ctx, obr, 4, part(c4, 3))
    if not display:
        display = _original_text(msg, obr, 4)
    coded = resolve_code(obr_code, display, system, sub(msg, part(c4, 4), 1),
                         sub(msg, part(c4, 5), 1), sub(msg, part(c4, 6), 1),
                         source=ctx.source, mappings=ctx.mappings, sent_system=sent_system)
    code25 = text(msg, first_rep(msg, obr, 25)).upper()
    if msg.delimiters.component in code25:
        code25 = _coded_id(ctx, obr, 25, "result status")
    if code25:
        status = _report_statuses().get(code25)
        if status is None:
            status = "unknown"
            ctx.warnings.append(f"{loc(obr, 25)}: unknown result status, kept as unknown")
        elif results:
            _status_disagreement(ctx, obr, code25, status, results)
    else:  # optional before v2.5: the results tell
        status = _status_of_results({r.status for r in results if r.type == LAB_RESULT})
        if status == "unknown" and g.own_orc and g.orc is not None:
            status = _order_status(msg, g.orc, resulted=any(r.type == LAB_RESULT for r in results))
    details: dict[str, Any] = {}
    if coded.local:
        details["local_code"] = dict(zip(("code", "system", "display"), coded.local, strict=True))
    placer = sub(msg, part(comps(msg, first_rep(msg, obr, 2)), 1), 1)
    if placer:
        details["placer_order"] = placer
    if len(obr.fields) > 24 and obr.fields[24]:
        # OBR-24, diagnostic service section (HL7 table 0074: HM, CH, MB, SR...): which
        # bench of the laboratory reports the order, a DiagnosticReport's category. It was
        # not read at all. As sent (ID): a local code is not turned into another.
        section = text(msg, part(comps(msg, first_rep(msg, obr, 24)), 1))
        if section:
            details["service_section"] = section
    ordering = first_rep(msg, obr, 16)
    if not ordering and g.own_orc and g.orc is not None:
        ordering = first_rep(msg, g.orc, 12)  # ORC-12: the same person (v2.5 4.5.1.12)
    if ordering:
        details["ordering_provider"] = person_name(msg, ordering)
        said = _provider_id(msg, ordering)
        if said:
            details["ordering_provider_id"] = said
    priority = _priority(ctx, g)
    if priority:
        details["priority"] = priority
    comments = _notes(msg, g.notes) if g.notes else None
    if comments:
        details["comments"] = comments
        _keep_comment_types(msg, g.notes, details)
    about_patient = _notes(msg, g.patient_notes) if g.patient_notes else None
    if about_patient:
        details["patient_comments"] = about_patient
    about_message = _notes(msg, g.message_notes) if g.message_notes else None
    if about_message:
        details["message_comments"] = about_message
    entry = Entry(type=LAB_REPORT, key=key, source_ref=loc(obr), code=coded.code or None,
                  system=coded.system or None, display=coded.display or None,
                  mapped=coded.mapped, status=status, effective=effective, issued=issued,
                  specimen_time=specimen_time, performer=performer, details=details)
    if code25 == "C":
        entry.action, entry.replaces_key = ACTION_REPLACE, key
    return entry


def _original_text(msg: Message, seg: Segment, n: int) -> str:
    """CWE.9, the original text (v2.5 2.A.74), of a test's identifier sent without its text
    (CWE.2): what the laboratory calls it ('2823-3^^LN^^^^2.74^^Kaliémie', as v2.7+ and LRI
    senders write OBX-3 and OBR-4). It was dropped: the result had no name to show beside a
    local code, and a LOINC none but its number."""
    c = comps(msg, first_rep(msg, seg, n))
    return text(msg, part(c, 9)) if len(c) > 8 else ""


def _priority(ctx: _Ctx, g: _Group) -> dict[str, str] | None:
    """How urgently the order was to be done: TQ1-9 (CWE, table 0485, v2.5+), else the
    priority component of the order's TQ (OBR-27.6, ORC-7.6, v2.3-2.4), else OBR-5 (v2.3);
    as {code, meaning} (tables/order_priorities.csv; a code not listed kept alone). It was
    not read: a stat potassium looked like any routine one in the dossier."""
    msg = ctx.msg
    code = ""
    for tq1 in g.timing:
        code = text(msg, part(comps(msg, first_rep(msg, tq1, 9)), 1))
        if code:
            break
    if not code:
        for seg, n in ((g.obr, 27), (g.orc if g.own_orc else None, 7)):
            if seg is not None and len(seg.fields) > n and seg.fields[n]:
                code = text(msg, part(comps(msg, first_rep(msg, seg, n)), 6))
                if code:
                    break
    if not code and len(g.obr.fields) > 5 and g.obr.fields[5]:
        code = text(msg, first_rep(msg, g.obr, 5))
    if not code:
        return None
    code = code.upper()
    meaning = _priority_meanings().get(code)
    return {"code": code, "meaning": meaning} if meaning else {"code": code}


@cache
def _priority_meanings() -> dict[str, str]:
    return column_map("order_priorities", "code", "meaning")


_VERIFIED = frozenset({"final", "corrected", "amended"})
_NOT_YET = frozenset({"preliminary", "registered"})
# OBR-25 statuses that say the order has no result (I, O, S: not yet; X: canceled)
_NO_RESULT_YET = frozenset({"registered", "cancelled"})


def _status_disagreement(ctx: _Ctx, obr: Segment, code25: str, status: str,
                         results: list[Entry]) -> None:
    """OBR-25 and the results' OBX-11 that contradict each other: an order said canceled or
    without result (X, I, O, S) whose results carry values, or said final (F, C) with results
    still preliminary or pending. Each result keeps its own status (OBX-11 is the result's,
    OBR-25 the report's, v2.5 7.4.1.25 and 7.4.2.11), as before; the contradiction was read
    past without a word, and a dossier showed a canceled order beside its final glucose."""
    labs = [r for r in results if r.type == LAB_RESULT]
    if status in _NO_RESULT_YET:
        odd = [r for r in labs if r.value is not None and r.status not in WITHHELD_STATUSES]
        said = "carry a value"
    elif status in _VERIFIED:
        odd = [r for r in labs if r.status in _NOT_YET]
        said = "are still preliminary or pending (OBX-11)"
    else:
        return
    if odd:
        ctx.warnings.append(f"{loc(obr, 25)}: the order's status {code25[:2]!r} ({status}) "
                            f"disagrees with its results: {len(odd)} of {len(labs)} {said}; "
                            "each result is filed with its own status")


def _status_of_results(statuses: set[str]) -> str:
    """A report's status told by its results' (OBR-25 empty, optional before v2.5): theirs
    when they agree; else results withdrawn or not obtained aside (the others tell), any
    correction makes it corrected, verified results beside pending or preliminary ones make
    it partial (OBR-25 'A'), preliminary and pending ones preliminary. Mixed statuses gave
    'unknown': a validated potassium beside a pending sodium said nothing."""
    told = statuses - NO_VALUE_STATUSES or statuses
    if not told:  # no result: nothing told
        return "unknown"
    if len(told) == 1:
        return next(iter(told))
    if told <= _VERIFIED:
        return "corrected" if "corrected" in told else "amended"
    if told <= _VERIFIED | _NOT_YET and told & _VERIFIED:
        return "partial"
    if told <= _NOT_YET:
        return "preliminary"
    return "unknown"


def _provider_id(msg: Message, rep: str) -> dict[str, str] | None:
    """The identifier of an XCN (OBR-16, ORC-12) as sent: XCN.1, its assigning authority
    (XCN.9, the OID when there is one) and its type (XCN.13). French prescribers are named
    by their RPPS or ADELI number ('10003791976^MARTIN^Paul^^^DR^^^ASIP-SANTE-PS&1.2.250.1.
    71.4.2.1&ISO^D^^^RPPS'), what tells two Dr MARTIN apart; only the name was kept."""
    said = _xcn_id(msg.delimiters, rep)
    return dict(said) if said else None


@lru_cache(maxsize=1024)
def _xcn_id(d: Delimiters, rep: str) -> tuple[tuple[str, str], ...]:
    """``_provider_id`` of the raw text alone (cached: a lab's reports name the same few
    prescribers). A lone value is the name's stand-in, not an identifier."""
    c = rep.split(d.component)
    number = leaf(d, c[0])
    if not number or len(c) < 2:
        return ()
    hd = [leaf(d, x) for x in part(c, 9).split(d.subcomponent)]
    said = (("id", number), ("authority", authority_of(part(hd, 1), part(hd, 2), part(hd, 3))),
            ("type", leaf(d, part(c, 13))))
    return tuple((k, v) for k, v in said if v)


# -- one OBX ------------------------------------------------------------------------------------
def _leaf_reader(d: Delimiters, fields: list[str]) -> Callable[[str], str]:
    """``leaf(d, x)`` for values cut from ``fields``. Most segments hold no subcomponent and no
    escape at all: then a leaf is just the text stripped, and ``str.strip`` (a C call) reads
    it instead of a Python call per value."""
    joined = "".join(fields)
    if d.subcomponent in joined or d.escape in joined:
        return partial(leaf, d)
    return str.strip


def _result(ctx: _Ctx, obx: Segment, notes: list[Segment], order_no: str, ns: str,
            obr_effective: str | None, obr_issued: str | None, specimen_time: str | None,
            parent_key: str | None, scope: str = "") -> Entry | None:
    """One LAB_RESULT. Written flat on purpose: this runs for every OBX of every message.
    None for a text OBX without any identifier (see ``_untitled_text``), and for an OBX
    with neither identifier nor value. ``scope``: the
    parent result of the OBR (OBR-26), part of the key: the same antibiotic tested on two
    organisms under one order number is two results, not one the second overwrites."""
    msg = ctx.msg
    d = msg.delimiters
    f = obx.fields
    nf = len(f)
    lf = _leaf_reader(d, f)
    c3 = split_field(d, f[3]) if nf > 3 else [""]
    sent3 = c3
    n3 = len(c3)
    code = lf(c3[0])
    if not code and n3 > 3 and lf(c3[3]):
        # Only the alternate triplet (OBX-3.4-6) is filled: it is the identifier.
        c3 = c3[3:]
        n3 = len(c3)
        code = lf(c3[0])
    if not code:
        if (f[2] if nf > 2 else "").strip().upper() in TEXT_TYPES:
            return None  # a line of narrative text: the caller keeps it with the report
        if not (f[5].strip() if nf > 5 else ""):
            # 'OBX|1|RP|||||||||F' (a radiology system's empty placeholder): no identifier,
            # no value. Nothing is observed and nothing lost; failing the whole message for
            # it lost every other result. The caller says so.
            return None
        where = loc(obx, 3)
        said = "holds a name but no code" if any(x.strip() for x in c3) else "is empty"
        raise NormalizationError("OBX_NO_CODE", f"{where}: observation without identifier "
                                 f"(OBX-3 {said}: a result is filed under its test's code, "
                                 "LOINC or the laboratory's own)", where)
    display = text(msg, c3[1]) if n3 > 1 else ""  # ST: a raw '&' there is text
    system = lf(c3[2]) if n3 > 2 else ""  # as sent: part of the key
    if not system and n3 > 13:
        # CWE.14 (v2.7+), the coding system's OID, sent instead of its name in CWE.3
        # ('2823-3^Potassium^^^^^^^^^^^^2.16.840.1.113883.6.1'): read as an OID in CWE.3 is.
        # Without it the LOINC code was filed as a local one, unmapped.
        system = lf(c3[13])
    coding = system  # the coding system the code is read under
    if system and not display and text_in_system_slot(system):
        display, coding = _name_in_system_slot(ctx, obx, 3, c3[2])
    if not display and len(sent3) > 8:
        display = text(msg, sent3[8])  # CWE.9, original text: see _original_text
    if coding == "LN" and (n3 < 4 or not c3[3]):  # the sender's own LOINC, alone
        r_code, r_system, r_display, mapped, local = code, "LN", display, True, None
    elif n3 > 3:
        r_code, r_system, r_display, mapped, local = resolve_code(
            code, display, coding, lf(c3[3]), text(msg, c3[4]) if n3 > 4 else "",
            (lf(c3[5]) if n3 > 5 else "") or (lf(c3[16]) if n3 > 16 else ""),  # CWE.17: OID
            source=ctx.source, mappings=ctx.mappings,
            sent_system=system if coding != system else "")
    else:
        r_code, r_system, r_display, mapped, local = resolve_code(
            code, display, coding, source=ctx.source, mappings=ctx.mappings,
            sent_system=system if coding != system else "")
    if r_system == "LN" and loinc_check_fails(r_code):
        ctx.warnings.append(f"{loc(obx, 3)}: LOINC code fails its check digit (a typo in the "
                            "sender's table?): filed as sent")
    sub_id = lf(f[4]) if nf > 4 else ""
    key = f"result|{order_no}|{ns}|{code}|{system}|{sub_id}"
    if scope:
        key = f"{key}|{scope}"
    status_code = lf(f[11]).upper() if nf > 11 else ""
    if status_code and d.component in f[11]:
        status_code = _coded_id(ctx, obx, 11, "result status")
    if not status_code:
        # OBX-11 is required (v2.3 to v2.5.1); without it we cannot tell a final result from a
        # preliminary one, and it is what a message cut in transit loses first.
        where = loc(obx, 11)
        raise NormalizationError("OBX_NO_STATUS", f"{where}: observation result status "
                                 f"(OBX-11) is {_why_no_status(f)}", where)
    status, action = obx_status(status_code)
    if status == "unknown":
        ctx.warnings.append(f"{loc(obx, 11)}: unknown result status, kept as unknown")
    withheld = status in WITHHELD_STATUSES
    if not withheld and nf > 5 and f[5] and (f[2] if nf > 2 else "").strip().upper() \
            in CODED_TYPES and not _codes_anything(msg, obx):
        raise _NothingCoded(f"{loc(obx, 5)}: the coded value holds a coding system and no "
                            "code nor text: the observation carries nothing, not filed")
    entry = Entry(type=LAB_RESULT, key=key, source_ref=f"OBX[{obx.index}]", code=r_code,
                  system=r_system, display=r_display or None, mapped=mapped,
                  status=status, specimen_time=specimen_time, parent_key=parent_key,
                  action=action)
    observed_sent = lf(f[14].split(d.component, 1)[0]) if nf > 14 and f[14] else ""
    if key in ctx.withdrawals and not withheld:
        _replacement_of(ctx, entry, obx)
    elif key in ctx.keys:
        _make_unique(ctx, entry, obx, observed_sent)
    else:
        ctx.observed[key] = observed_sent
        ctx.ordered[key] = ctx.order_time
    ctx.keys.add(entry.key)
    if action == ACTION_REPLACE or action == ACTION_DELETE:
        entry.replaces_key = entry.key
    if action == ACTION_DELETE and entry.key == key:
        ctx.withdrawals[key] = entry
    if local:
        lc, ls, ld = local
        entry.details["local_code"] = {"code": lc, "system": ls, "display": ld}
    vtype = f[2] if nf > 2 else ""
    raw5 = f[5] if nf > 5 else ""
    if withheld:
        entry.value_type = lf(vtype).upper() or None
        if raw5:
            _withhold(ctx, obx, entry, status_code)
    elif vtype == "NM" and raw5 and _NUMBER.fullmatch(raw5):  # the common case, inline
        entry.value_type, entry.value, entry.value_num = "NM", raw5, float(raw5)
    elif raw5:
        _value(ctx, obx, entry)
    else:
        entry.value_type = lf(vtype).upper() or None
        if status_code in _empty_means_held():
            # OBX-11 U (v2.5 7.4.2.11): 'results status change to final without
            # retransmitting results already sent as preliminary'. The value is the one
            # held; deposit carries it over (dossiers/deposit.py). Filed as it came, the
            # final had no value and the potassium sent as preliminary was gone.
            entry.details["value_held"] = True
    if nf > 6 and f[6]:
        in_value = entry.unit if entry.details.get("unit_in_value") else None
        _unit(lf, split_field(d, f[6]), entry, ctx.warnings, obx)
        if in_value is not None:
            _check_unit_in_value(obx, entry, in_value)
    if r_system == "LN" and entry.unit and (clash := unit_contradicts_code(r_code, entry.unit)):
        _unit_contradicts_code(ctx, obx, entry, clash)
    if nf > 7 and f[7]:
        # ST: no components, and a '&' there is text a sender left unescaped ('H & F : ...')
        if d.repetition in f[7]:
            _reference_ranges(ctx, obx, entry)
        else:
            entry.reference_range = text(msg, f[7]) or None
    if nf > 8 and f[8]:
        raw8 = f[8]
        if d.repetition in raw8 or d.component in raw8:
            entry.interpretation = _coded_flags(ctx, obx, raw8, lf)
            _flag_origins(ctx, raw8, lf, entry)
        else:
            flag = lf(raw8)  # 'H', 'N': as nearly all send, one lookup
            entry.interpretation = (flag if flag in _flag_codes() else _flag(ctx, obx, flag)) \
                or None
    observed = _ts(obx, 14, d, ctx.zone) if nf > 14 and f[14] else None
    if observed is not None and len(observed) <= 10 and obr_effective \
            and obr_effective.startswith(observed):
        # OBX-14 a date ('20240315') where OBR-7 has the time of that day: the time is kept.
        # Filed as the day only, the result lost its hour and never met the same result of
        # a CDA lab report (dedupe level 4 compares the instant)
        observed = obr_effective
    entry.effective = observed or obr_effective
    entry.issued = (_ts(obx, 19, d, ctx.zone) if nf > 19 and f[19] else None) or obr_issued
    if nf > 23 and f[23]:  # performing organization (v2.5): XON.1 name, else its id
        org = split_field(d, f[23])
        entry.performer = lf(org[0]) or (lf(org[9]) if len(org) > 9 else "") or None
        said = _organization_said(msg, first_rep(msg, obx, 23))
        if said and said["name"] == entry.performer:
            entry.details["performing_organization"] = said
    if entry.performer is None and nf > 15 and (f[15] or (nf > 16 and f[16])):
        entry.performer = _result_performer(msg, obx)
    if nf > 16 and f[16]:
        observer = _observer(msg, first_rep(msg, obx, 16))
        if observer:
            entry.details["responsible_observer"] = observer
    if nf > 17 and (f[17] or (nf > 18 and f[18]) or (nf > 29 and f[29])):
        _how_observed(ctx, obx, entry)
    comments = _notes(msg, notes) if notes else None
    if comments:
        entry.details["comments"] = comments
        _keep_comment_types(msg, notes, entry.details)
    return entry


def _unit_contradicts_code(ctx: _Ctx, obx: Segment, entry: Entry,
                           clash: tuple[str, str]) -> None:
    """The unit is of another kind than the LOINC code says (normalizers/loinc_units.py):
    '75 nmol/L' under 1989-3, 25-OH vitamin D [Mass/volume]. Filed as sent, never
    converted; said, and kept in ``details['unit_contradicts_code']`` for whoever trends by
    code (read by the code, 75 is ng/mL: two and a half times the vitamin D measured)."""
    code_property, unit_property = clash
    entry.details["unit_contradicts_code"] = {"code_property": code_property,
                                              "unit_property": unit_property}
    ctx.warnings.append(
        f"{loc(obx, 6)}: the unit is a {PROPERTY_NAMES[unit_property]} concentration, the "
        f"LOINC code one of {PROPERTY_NAMES[code_property]}: filed as sent, not converted")


def _reference_ranges(ctx: _Ctx, obx: Segment, entry: Entry) -> None:
    """OBX-7 repeated ('H : 13-17~F : 12-16', a range per sex or per age): OBX-7 is one ST
    (v2.5 7.4.2.7), so the first filled one is the range, as before; the others go to
    ``details['other_reference_ranges']``, said. They were dropped without a word. Empty
    repetitions (a trailing '~') are no range."""
    msg = ctx.msg
    ranges = [r for r in (text(msg, x) for x in obx.fields[7].split(msg.delimiters.repetition))
              if r.strip()]
    entry.reference_range = ranges[0] if ranges else None
    if len(ranges) > 1:
        entry.details["other_reference_ranges"] = ranges[1:]
        ctx.warnings.append(f"{loc(obx, 7)}: {len(ranges)} reference ranges (OBX-7 repeated): "
                            "the first is the range, the others are kept apart")


def _how_observed(ctx: _Ctx, obx: Segment, entry: Entry) -> None:
    """OBX-17 observation method (CWE, repeats: 'calculated by Friedewald', the enzymatic
    or immunoturbidimetric technique a French report prints beside the result), OBX-18
    equipment instance (EI: the analyser), OBX-29 observation type (table 0936: a result,
    or the answer to a question asked at order entry, 'fasting: yes'), in
    ``details['method']``, ``details['equipment']``, ``details['observation_type']``.
    US ELR and LRI 2.5.1 senders require them; they were dropped, and an LDL computed
    by formula read as one measured."""
    msg, f = ctx.msg, obx.fields
    methods = [m for m in (_coded_item(msg, r) for r in reps(msg, obx, 17)) if m]
    if methods:
        entry.details["method"] = methods[0] if len(methods) == 1 else methods
    devices = []
    for rep in reps(msg, obx, 18) if len(f) > 18 and f[18] else ():
        c = comps(msg, rep)
        said = {"id": text(msg, part(c, 1)), "namespace": text(msg, part(c, 2)),
                "universal_id": text(msg, part(c, 3))}
        said = {k: v for k, v in said.items() if v}
        if said:
            devices.append(said)
    if devices:
        entry.details["equipment"] = devices[0] if len(devices) == 1 else devices
    kind = text(msg, part(comps(msg, first_rep(msg, obx, 29)), 1)).upper() \
        if len(f) > 29 and f[29] else ""
    if kind:
        entry.details["observation_type"] = kind
        if kind not in _observation_types():
            ctx.warnings.append(f"{loc(obx, 29)}: observation type is none of HL7 table 0936 "
                                "(tables/observation_types.csv): kept as sent")


def _coded_item(msg: Message, rep: str) -> dict[str, str] | None:
    """One CE/CWE repetition as {code, system (named as on every channel), display}, or its
    text alone ('Formule de Friedewald' sent as words); None when empty."""
    c = comps(msg, rep)
    code, display = text(msg, part(c, 1)), text(msg, part(c, 2))
    system = text(msg, part(c, 3))
    original = text(msg, part(c, 9))
    if code and not display and not system and _WORDS.search(code):
        return {"text": code}
    if code:
        return {"code": code, "system": system_name(system) if system else "",
                "display": display or original}
    text_said = display or original
    return {"text": text_said} if text_said else None


@cache
def _observation_types() -> frozenset[str]:
    """OBX-29 codes of HL7 table 0936 (tables/observation_types.csv)."""
    return frozenset(row["code"] for row in table("observation_types"))


def _flag(ctx: _Ctx, obx: Segment, sent: str) -> str:
    """An OBX-8 flag as its HL7 table 0078 code: sent in lower case ('h', 'hh', 'syn-r', as
    some hospital LIS write them) it was filed as sent, no code any reader knew
    (tables/abnormal_flags.csv). Anything else is kept as sent and said: a '*' or a '+'
    of a LIS printing its report, 'HIGH', is no interpretation any reader knows, and was
    filed as if it were one. The warning never quotes the flag (it tells of the result)."""
    codes = _flag_codes()
    if not sent or sent in codes:
        return sent
    code = codes.get(sent.upper())
    if code is None:
        code = _flag_word(ctx, obx, sent)
    if code is None:
        ctx.warnings.append(f"{loc(obx, 8)}: an abnormal flag is no code of HL7 table 0078 "
                            "(interpretation codes): kept as sent")
        return sent
    return code


def _flag_word(ctx: _Ctx, obx: Segment, sent: str) -> str | None:
    """The table 0078 code of a flag written as a French word ('Sensible', 'RÉSISTANT',
    'Haut': tables/hl7_flag_words.csv), said; None for any other text. Kept as sent, an
    antibiogram's 'Sensible' was an interpretation no reader (nor the same result of a CDA,
    coded S) knew."""
    folded = "".join(ch for ch in unicodedata.normalize("NFKD", sent.strip().lower())
                     if not unicodedata.combining(ch))
    code = _flag_words().get(folded)
    if code is not None:
        ctx.warnings.append(f"{loc(obx, 8)}: an abnormal flag written as a word, read as its "
                            "code of HL7 table 0078")
    return code


@cache
def _flag_words() -> dict[str, str]:
    return column_map("hl7_flag_words", "word", "interpretation")


def _coded_flags(ctx: _Ctx, obx: Segment, raw8: str, lf: Callable[[str], str]) -> str | None:
    """OBX-8 with repetitions or components: each repetition a flag. v2.7 made OBX-8 a CWE
    (code ^ text ^ system ^ alternate code ^ alternate text ^ alternate system ...): the
    flag is the code in table 0078's system wherever it is ('HAUT^Haut^L^H^High^HL70078':
    the LIS code first, the bridge's mapping second), else the first code of the two
    triplets ('^^^HH^Critique haut^HL70078'), else the words ('^Élevé'), kept as its words
    and said. Only CWE.1 was read: the alternate triplet's flag and the words were lost."""
    d = ctx.msg.delimiters
    said: list[str] = []
    for rep in raw8.split(d.repetition):
        c = rep.split(d.component)
        if len(c) == 1:
            flag = _flag(ctx, obx, lf(c[0]))
        else:
            codes = [(lf(part(c, i)), lf(part(c, i + 2)).upper()) for i in (1, 4)]
            standard = [code for code, system in codes if code and system in _FLAG_SYSTEMS]
            flag = next(iter(standard), "") or next((code for code, _ in codes if code), "")
            if flag:
                flag = _flag(ctx, obx, flag)
            else:
                flag = text(ctx.msg, part(c, 2)) or text(ctx.msg, part(c, 5)) \
                    or text(ctx.msg, part(c, 9))
                word = _flag_word(ctx, obx, flag) if flag else None
                if word is not None:
                    flag = word
                elif flag:
                    ctx.warnings.append(f"{loc(obx, 8)}: an abnormal flag sent as words, "
                                        "without a code: kept as its words")
        if flag:
            said.append(flag)
    return ",".join(said) or None


def _flag_origins(ctx: _Ctx, raw8: str, lf: Callable[[str], str], entry: Entry) -> None:
    """The sender's own flags of a coded OBX-8 and their coding systems, in the details as
    a CDA's are: 'HAUT^Haut^L^H^High^HL70078' was filed 'H', the LIS code 'HAUT' and its
    system 'L' lost; '+^Positif^99LAB' kept '+' without '99LAB'. ``interpretation_local``
    lists a sender's codes sent beside a table 0078 one (the flag filed), and
    ``interpretation_systems`` maps each code outside table 0078 to its system (our name
    for it, ``system_name``). Nothing is added for flags of table 0078 alone."""
    d = ctx.msg.delimiters
    local: list[str] = []
    systems: dict[str, str] = {}
    for rep in raw8.split(d.repetition):
        c = rep.split(d.component)
        codes = [(lf(part(c, i)), lf(part(c, i + 2))) for i in (1, 4)]
        standard = any(code and system.upper() in _FLAG_SYSTEMS for code, system in codes)
        for code, system in codes:
            if code and system and system.upper() not in _FLAG_SYSTEMS:
                systems[code] = system_name(system)
                if standard:
                    local.append(code)
    if local:
        entry.details["interpretation_local"] = local
    if systems:
        entry.details["interpretation_systems"] = systems


# The coding system of table 0078 as senders name it in a CWE (v2.7+ OBX-8)
_FLAG_SYSTEMS = frozenset({"HL70078", "HL7-0078", "0078"})


@cache
def _flag_codes() -> dict[str, str]:
    return {row["code"]: row["code"] for row in table("abnormal_flags")}


def _name_in_system_slot(ctx: _Ctx, seg: Segment, n: int, raw: str) -> tuple[str, str]:
    """(text, coding system) of an identifier (OBX-3, OBR-4) sent 'LEUUR^^Leucocytes': the
    name in the coding-system slot, its own slot empty (``text_in_system_slot``). The name is
    its text and the code is local ('L'). The key keeps the component as sent (a result
    filed before this reading is still the one a correction replaces), and a mapping row
    keyed by the name as the coding system still maps (``resolve_code``'s sent_system).
    Said once per message: such a sender writes every identifier that way."""
    said = f"{seg.name}-{n}: name of the coding system"
    if not any(w.startswith(said) for w in ctx.warnings):
        ctx.warnings.append(f"{said} holds words, text empty: read as the text, the code as "
                            f"local (first at {loc(seg, n)})")
    return text(ctx.msg, raw), ""


def _coded_id(ctx: _Ctx, seg: Segment, n: int, what: str) -> str:
    """An ID field sent as a coded element ('F^Final^HL70085'): its code, said (``id_code``)."""
    code = id_code(ctx.msg, seg, n)
    ctx.warnings.append(f"{loc(seg, n)}: {what} sent with components (an ID holds one code): "
                        "its first component read as the code")
    return code


def _why_no_status(f: list[str]) -> str:
    """Why OBX-11 is empty, for the error: the segment ends before it (a message cut in
    transit), or a status sits in OBX-12 (a field missing before it shifted the rest, as
    from a sender that leaves out OBX-10), or it is just empty. Codes only, never values."""
    if len(f) <= 11:
        return "missing; truncated message?"
    if len(f) > 12 and f[12].strip().upper() in _obx_status_codes():
        return "empty and OBX-12 holds a result status: a field missing before it?"
    return "empty"


@cache
def _value_types() -> frozenset[str]:
    """OBX-2 values known as HL7 data types (tables/hl7_value_types.csv)."""
    return frozenset(row["code"] for row in table("hl7_value_types"))


@cache
def _empty_means_held() -> frozenset[str]:
    """OBX-11 codes whose empty OBX-5 means 'the value sent before stands' (U), from
    tables/result_status.csv (column empty_value = held)."""
    return frozenset(row["code"] for row in table("result_status")
                     if row.get("empty_value") == "held")


@cache
def _obx_status_codes() -> frozenset[str]:
    return frozenset(column_map("result_status", "code", "status"))


# Free text the sender writes as it likes, stored in bounded columns (normalizers/model.py).
# Only those two are prose in practice; an over-long unit, code or name is refused
# (FIELD_TOO_LONG), never shortened: it is no unit or code any more.
_FREE_TEXT = ("reference_range", "interpretation")


def _fit(entry: Entry, warnings: list[str]) -> None:
    """A reference range written out in words ('Phase folliculaire : 2,5 à 10,2 UI/L ; ...')
    is shortened (``shorten_prose``) rather than failing the whole message as
    FIELD_TOO_LONG. Called only once the message's sizes were found too long
    (NormalizedMessage checks them), so that the common case pays nothing."""
    shorten_prose(entry, _FREE_TEXT, warnings)


def _ts(seg: Segment, n: int, d: Delimiters, zone: str) -> str | None:
    value = seg.fields[n]
    if d.component in value or d.repetition in value or d.escape in value:
        c = split_field(d, value)
        value = leaf(d, c[0])
        if not value:
            return None
        if len(c) > 1:
            value = with_degree(value, leaf(d, c[1]))  # TS.2: '20240315000000^D' is a day
    try:
        return hl7_ts_to_iso(value, zone)
    except ValueError:
        where = loc(seg, n)
        raise NormalizationError("HL7_BAD_DATE", f"{where}: {BAD_TS_TEXT}",
                                 where) from None


def _replacement_of(ctx: _Ctx, entry: Entry, obx: Segment) -> None:
    """A result following, in one message, the OBX-11 W or D of the same observation (HL7
    table 0085 W: 'post original as wrong', the right result sent with it): the new version
    of that result, a correction of the one held (its versions kept). Made a key of its
    own as a second result of the test, it was current beside the key withdrawn, and the
    lab's next correction of the test (filed under that key) went to history."""
    gone = ctx.withdrawals.pop(entry.key)
    ctx.dropped.add(id(gone))
    entry.action, entry.replaces_key = ACTION_REPLACE, entry.key
    ctx.warnings.append(f"{loc(obx)}: follows {gone.source_ref}, the same result withdrawn "
                        "(OBX-11 W or D): filed as its replacement, the result held kept "
                        "in its history")


def _make_unique(ctx: _Ctx, entry: Entry, obx: Segment, observed: str = "") -> None:
    """A result under the key of an earlier one of the message. Observed at another time
    (OBX-14) than the first, it is a previous result a cumulative report repeats (French
    labs' 'antériorités'): its key says that time ('...@202401100805'). By rank ('#2') the
    key named whichever previous result came second: the next report, listing one more,
    filed December's potassium as a correction of January's, and January's was gone."""
    key = entry.key
    first = ctx.observed.get(key)
    if observed and first is not None and observed != first \
            and f"{key}@{observed}" not in ctx.keys:
        entry.key = f"{key}@{observed}"
        ctx.warnings.append(f"{loc(obx)}: same test as an earlier segment of the message, "
                            "observed at another time (OBX-14): told apart by that time")
        return
    if not observed and not first:
        by_order = _order_time_key(ctx, key, obx)
        if by_order is not None:
            entry.key = by_order
            return
    entry.key = _unique_key(ctx, key, obx)


def _order_time_sent(msg: Message, obr: Segment) -> str:
    """OBR-7 as sent (its first component, the time without its degree of precision)."""
    f = obr.fields
    if len(f) <= 7 or not f[7]:
        return ""
    return text(msg, part(comps(msg, first_rep(msg, obr, 7)), 1)).strip()


def _order_time_key(ctx: _Ctx, key: str, seg: Segment) -> str | None:
    """The key of a report or result under the key of an earlier one of the message whose
    order has another observation time (OBR-7): that time appended ('...@202403150900'),
    said; None when the times are the same or unsaid (ranked, ``_unique_key``).

    A dynamic test (a glucose tolerance test's T0, T60, T120; serial troponins), or the
    previous results of a cumulative report sent each in its own order group, repeats one
    order number and code under several OBR-7, OBX-14 empty. Keyed by rank ('#2', '#3'),
    the order's next report, with a time added between two others (the T30 the lab had
    not validated yet), filed the T30 under the T60's key, as a new version of it: the
    T60 was gone from the dossier. As round 14 keys a cumulative report's OBX by OBX-14."""
    when, first = ctx.order_time, ctx.ordered.get(key)
    if not when or first is None or first == when or f"{key}@{when}" in ctx.keys:
        return None
    ctx.warnings.append(f"{loc(seg)}: same test as in an earlier order of the message, "
                        "observed at another time (OBR-7): told apart by that time")
    return f"{key}@{when}"


def _unique_key(ctx: _Ctx, key: str, seg: Segment) -> str:
    """Keys are unique within a message: the same order or the same code and sub-id twice
    get their rank appended, so that nothing silently overwrites another entry (stable
    across resends of the same message)."""
    n = 2
    while f"{key}#{n}" in ctx.keys:
        n += 1
    ctx.warnings.append(f"{loc(seg)}: same key as an earlier segment of the message; "
                        "key made unique")
    return f"{key}#{n}"


def _withhold(ctx: _Ctx, obx: Segment, entry: Entry, status_code: str) -> None:
    """OBX-11 X or N (no result could be obtained), I or O (no result yet) or D / W (the result
    is withdrawn): what OBX-5 holds is not a result and is never filed as the value. It is
    kept, as sent, in
    ``details['value_withheld']`` (a lab often says there why the analysis was not done)."""
    where = loc(obx, 5)
    entry.details["value_withheld"] = "\n".join(
        _text_line(ctx.msg, r) for r in reps(ctx.msg, obx, 5))
    ctx.warnings.append(f"{where}: result status {status_code[:2]} ({entry.status}): the value "
                        "is not filed as a result")


def _value(ctx: _Ctx, obx: Segment, entry: Entry) -> None:
    msg = ctx.msg
    vtype = text(msg, obx.raw(2)).upper()
    raw5 = obx.raw(5)
    entry.value_type = vtype or None
    if not raw5:
        return
    where = loc(obx, 5)
    if not vtype:
        # OBX-2 is required when OBX-5 is valued; older senders leave it out. A plain number
        # is read as one (else a glucose would be filed as text, out of every trend).
        if _NUMBER.fullmatch(text(msg, raw5)):
            ctx.warnings.append(f"{loc(obx, 2)}: no value type, numeric value read as NM")
            vtype = "NM"
        elif (typed := _typed_by_components(msg, first_rep(msg, obx, 5))) is not None:
            ctx.warnings.append(f"{loc(obx, 2)}: no value type, value with components read "
                                f"as {typed}")
            vtype = typed
        else:
            ctx.warnings.append(f"{loc(obx, 2)}: no value type, value read as text")
            vtype = "ST"
        entry.value_type = vtype
    first = first_rep(msg, obx, 5)
    if vtype in SINGLE_VALUE_TYPES and msg.delimiters.repetition in raw5:
        # One NM, SN or date per OBX: further repetitions are not lost, but not the value.
        # An empty repetition holds nothing ('5.4~', '~5.4'): the value is the first one
        # filled (a leading '~' left the value empty, the number among the others).
        filled = [r for r in reps(msg, obx, 5) if r.strip()]
        first = filled[0] if filled else ""
        if len(filled) > 1:
            others = [text(msg, r) for r in filled[1:]]
            entry.details["other_values"] = others
            ctx.warnings.append(f"{where}: {len(filled)} repetitions of a single {vtype} "
                                "value: the first is the value, the others are kept apart")
    if vtype == "NM":
        c = comps(msg, first)
        head = text(msg, c[0]) if c else ""
        if len(c) > 1 and (not head or _is_comparator(head)) and text(msg, c[1]):
            # '^182', '<^0.5': an SN's components under OBX-2 NM. Read as NM, the number in
            # component 2 was lost without a word ('^182') or the message failed ('<^0.5').
            ctx.warnings.append(f"{where}: NM value written as an SN (comparator^number), "
                                "read as SN")
            _structured_numeric(ctx, c, entry, where)
        elif len(c) > 1 and any(text(msg, x) for x in c[1:]):
            _nm_with_components(ctx, first, c, head, entry, where)
        else:
            _numeric(ctx, head, entry, where)
    elif vtype == "SN":
        _structured_numeric(ctx, comps(msg, first), entry, where)
    elif vtype == "CQ":
        _composite_quantity(ctx, obx, first, entry, where)
    elif vtype in TEXT_TYPES:
        # whole repetitions: a text value has no components, and leading blanks are layout
        entry.value = "\n".join(_text_line(msg, r) for r in reps(msg, obx, 5))
        if _cut_short(msg, raw5):
            ctx.warnings.append(f"{where}: the text ends with the truncation character MSH-2 "
                                "declares: the sender cut it short, filed as received")
        if obx.raw(6).strip() and entry.value:
            _text_quantity(ctx, entry, vtype, where)
        elif entry.value and entry.value[:1] in _QUANTITY_STARTS and "\n" not in entry.value:
            _text_with_unit(ctx, entry, vtype, where)
        if entry.value_num is None and entry.value and entry.value[:1] == "1":
            _text_titre(ctx, entry, vtype, where)
    elif vtype in CODED_TYPES:
        _coded(ctx, obx, entry)
    elif vtype in DATE_TYPES:
        c = comps(msg, first)
        value = with_degree(text(msg, part(c, 1)), text(msg, part(c, 2)))
        try:
            entry.value = hl7_ts_to_iso(value, ctx.zone)
        except ValueError:
            raise NormalizationError("HL7_BAD_DATE", f"{where}: {BAD_TS_TEXT}",
                                     where) from None
    elif vtype == "DR":
        _date_range(ctx, first, entry, where)
    elif vtype in _NAME_TYPES:
        _names(msg, obx, entry, vtype)
    elif vtype == "RP":
        _reference(msg, obx, entry)
        ctx.warnings.append(reference_warning(obx))
    elif vtype == "TM":
        value = text(msg, part(comps(msg, first), 1))
        try:
            entry.value = hl7_tm_to_iso(value)
        except ValueError:  # kept as sent: a time of day is never worth the whole message
            entry.value = value
            ctx.warnings.append(f"{where}: not a valid HL7 time, kept as sent")
    else:  # ID, IS, HD, FN, NA, MO, CP... kept as sent
        entry.value = "\n".join(_composite_text(msg, r) for r in reps(msg, obx, 5))
        if vtype not in _value_types():
            ctx.warnings.append(f"{loc(obx, 2)}: value type {vtype[:5]!r} is not an HL7 value "
                                "type (table 0125): the value is kept as text")


# OBX-2 types of a person (id ^ family ^ given... for XCN and CN; family ^ given... for XPN
# and PN) or an organization (XON), with where the family name is (0: an organization)
_NAME_TYPES = {"XCN": 2, "CN": 2, "XPN": 1, "PN": 1, "XON": 0}


def _reference_only(entries: list[Entry]) -> None:
    """CISIS_REFERENCE_ONLY: an ORU^R01 of the CI-SIS CDA transmission (MSH-21
    CISIS_CDA_HL7_V2) whose document is only pointed at (OBX-2 RP: a URL, a file on the
    sender's server) and carried by no ED. The profile sends the CDA itself in OBX-5; the
    pointer is never fetched (the pipeline has no network to a sender's server). It was
    filed as a lab result holding the pointer under the document's type code: the message
    meant to feed the DMP a document and the dossier got none, the sender an AA. Refused,
    naming the OBX, when the pointer is all the message brings; beside results of their own
    (a glucose, and the report's URL), or in a plain ORU, it is kept as a reference, with
    its warning."""
    if any(e.type == DOCUMENT or (e.type == LAB_RESULT and e.value_type != "RP")
           for e in entries):
        return
    pointer = next((e for e in entries if e.value_type == "RP"), None)
    if pointer is None:
        return
    where = f"{pointer.source_ref}-5"
    raise NormalizationError(
        "CISIS_REFERENCE_ONLY", f"{where}: the CDA document of this CI-SIS message (MSH-21 "
        "CISIS_CDA_HL7_V2) is only pointed at (OBX-2 RP, a URL or a file of the sender), "
        "never fetched: nothing filed; send the document itself in an OBX of type ED", where)


def _names(msg: Message, obx: Segment, entry: Entry, vtype: str) -> None:
    """XCN, CN, XPN, PN, XON values (who collected the specimen, the biologist who
    validated, the laboratory a test was sent to): the name each repetition spells, one a
    line, read as OBR-16's prescriber or OBX-23's laboratory is; a person's identifier
    (XCN.1 with its authority and type: an RPPS number) in ``details['value_ids']``. Kept
    as sent, the value was the composite, the sender's delimiters and the RPPS in it."""
    family_at = _NAME_TYPES[vtype]
    names: list[str] = []
    ids: list[dict[str, str]] = []
    for rep in reps(msg, obx, 5):
        if not rep.strip():
            continue
        names.append(organization(msg, rep) if not family_at
                     else person_name(msg, rep, family_at))
        said = _provider_id(msg, rep) if family_at == 2 else None
        if said:
            ids.append(said)
    entry.value = "\n".join(n for n in names if n) or None
    if ids:
        entry.details["value_ids"] = ids


def _date_range(ctx: _Ctx, rep: str, entry: Entry, where: str) -> None:
    """DR (v2.5 2.A.20): range start ^ range end, each a TS (its own precision in
    subcomponents, v2.3 style): the period of a 24-hour urine collection. Kept as sent it
    was '20240314080000^20240315080000', no date any reader took for one. The value is the
    ISO 8601 interval 'start/end' ('..' for an open end, ISO 8601-2), each end read as a TS
    is (precision kept, the sender's zone when it gave none); ``details['period']`` holds
    the ends given. An end that is no date fails as a DT value does (HL7_BAD_DATE)."""
    msg = ctx.msg
    c = comps(msg, rep)
    period: dict[str, str] = {}
    for name, component in (("start", part(c, 1)), ("end", part(c, 2))):
        sent = text(msg, sub(msg, component, 1) if component else "").strip()
        if not sent:
            continue
        try:
            period[name] = hl7_ts_to_iso(with_degree(sent, sub(msg, component, 2)), ctx.zone)
        except ValueError:
            raise NormalizationError("HL7_BAD_DATE", f"{where}: the range {name} (DR): "
                                     f"{BAD_TS_TEXT}", where) from None
    if period:
        entry.value = f"{period.get('start', '..')}/{period.get('end', '..')}"
        entry.details["period"] = period


def _cut_short(msg: Message, raw: str) -> bool:
    """Whether a value ends with the truncation character its MSH-2 declares (v2.7 2.5.5.5:
    MSH-2's 5th character, '#'): the sender cut a value longer than it could send and says
    so that way. A '#' of the text is escaped (\\P\\), so a raw one at the end is that mark;
    without a 5th character in MSH-2, a '#' is text."""
    mark = msg.delimiters.truncation
    if not raw.rstrip().endswith(mark):
        return False
    msh2 = msg.msh.raw(2)
    return len(msh2) > 4 and msh2[4] == mark


def _typed_by_components(msg: Message, rep: str) -> str | None:
    """The value type of an OBX-5 sent with components but without OBX-2: 'SN' for a
    comparator (or nothing) then a number ('<^0,5', '^182'), 'CWE' for anything else
    ('POS^Positif^L', '^^^260373001^Detected^SCT'); None without components. ST has no
    components: read as text, the value was the code, its text and its coding system glued
    by the sender's delimiters ('POS^Positif^L'), no code kept, nothing any reader shows."""
    d = msg.delimiters
    if d.component not in rep:
        return None
    c = comps(msg, rep)
    if len(c) > 3 and text(msg, c[3]).upper() in ed_encodings():
        return None  # an ED's shape ('^AP^PDF^Base64^JVBERi0...'): no coded value, as before
    head, second = text(msg, c[0]).strip(), text(msg, part(c, 2)).strip()
    if (not head or _is_comparator(head)) and _NUMBER.fullmatch(second.replace(",", ".")):
        return "SN"
    return "CWE"


_STANDARD = Delimiters()


def _composite_text(msg: Message, rep: str) -> str:
    """One repetition of a value of a type read as text (ID, IS, NA, MO, CP, XPN...): as
    sent when it is one leaf; with components (an NA '1.2^3.4^5.6', an MO '12.50^EUR'),
    written with the standard delimiters (^ and &), a delimiter inside a leaf escaped.
    Unescaped whole, the value depended on the sender's delimiters (with '#!@$%' the same
    NA read '1.2!3.4!5.6', and never met the same value of another sender) and a '^' sent
    escaped inside a leaf (\\S\\) read as one more component. Unchanged for a message with
    the standard delimiters and no escape."""
    d = msg.delimiters
    if d.component not in rep and d.subcomponent not in rep:
        return text(msg, rep)
    if d == _STANDARD and d.escape not in rep:
        return rep.strip()
    return _STANDARD.component.join(
        _STANDARD.subcomponent.join(escape(unescape(s, d), _STANDARD)
                                    for s in c.split(d.subcomponent))
        for c in rep.split(d.component)).strip()


def _parse_number(ctx: _Ctx, value: str, where: str) -> float | None:
    if _NUMBER.fullmatch(value):
        return float(value)
    if "," in value and "." not in value:
        dotted = value.replace(",", ".", 1)
        if _NUMBER.fullmatch(dotted):
            ctx.warnings.append(f"{where}: decimal comma read as a decimal point")
            return float(dotted)
    if _GROUPED.fullmatch(value):
        # '12 000', '250 000', '1 250,5': thousands grouped by a blank, as French reports
        # print counts (a urine leucocyte count, platelets per mm3). Groups of exactly three
        # digits after the first: nothing else reads that way. A dot is never read as a
        # thousands separator ('1.250' is one and a quarter).
        ctx.warnings.append(f"{where}: digits grouped by blanks read as one number")
        return float(_BLANKS.sub("", value).replace(",", "."))
    if _GROUPED_DOTS.fullmatch(value):
        ctx.warnings.append(f"{where}: thousands grouped by dots read as one number")
        return float(value.replace(".", "").replace(",", "."))
    if _GROUPED_COMMAS.fullmatch(value):
        ctx.warnings.append(f"{where}: thousands grouped by commas read as one number")
        return float(value.replace(",", ""))
    m = _EXPONENT.fullmatch(value)
    if m is not None:
        ctx.warnings.append(f"{where}: number in scientific notation read as one number")
        return float(f"{m.group(1).replace(',', '.')}e{m.group(2)}")
    m = _POWER_TEXT.fullmatch(value)
    if m is not None:
        # '10\S\5' (a colony count, its '^' escaped as HL7 wants): the unescaped '10^5'
        # was read as a power of ten, this one failed the whole message (OBX_BAD_NUMBER)
        mantissa = float(m.group(1).replace(",", ".")) if m.group(1) else 1.0
        ctx.warnings.append(f"{where}: power of ten ('10^n') read as the number it spells")
        return float(f"{mantissa!r}e{int(m.group(2))}")
    return None


# A power of ten written out with its '^' escaped ('10\S\5', '2,5x10\S\6'): '10^5' once
# unescaped. Mantissa and its multiplication sign optional, as in ``_POWER_OF_TEN``.
_POWER_TEXT = re.compile(r"\s*(?:(\d+(?:[.,]\d+)?)\s*[x\u00d7*]\s*)?10\^([+-]?\d{1,2})\s*")


# A power of ten written with an unescaped '^' ('>10^3', '2,5x10^6', '1.2 x 10^5'): it reaches
# us as the components '>10' and '3'. Comparator, mantissa and 'x' optional.
_POWER_OF_TEN = re.compile(r"(<=|>=|<|>|[\u2264\u2265\u2a7d\u2a7e])?"
                           r"\s*(?:(\d+(?:[.,]\d+)?)\s*[x\u00d7*]\s*)?10")
_EXPONENT_DIGITS = re.compile(r"[+-]?\d{1,2}")


def _nm_with_components(ctx: _Ctx, first: str, c: list[str], head: str, entry: Entry,
                        where: str) -> None:
    """An NM value (no components in HL7) that arrives with some: what follows its first
    component was dropped without a word. A power of ten sent with an unescaped '^'
    ('>10^3' copies/mL: more than a thousand) was read as '>10', a thousand times less; it
    is now read as the number it spells. Anything else after the number ('4.5^H') is kept
    in details.value_sent (OBX-5 as sent), with a warning; the number is read as before."""
    msg = ctx.msg
    tail = text(msg, c[1]) if len(c) == 2 else ""
    m = _POWER_OF_TEN.fullmatch(head) if tail else None
    if m is not None and _EXPONENT_DIGITS.fullmatch(tail):
        mantissa = float(m.group(2).replace(",", ".")) if m.group(2) else 1.0
        entry.value = f"{head}^{tail}"
        entry.value_num = float(f"{mantissa!r}e{int(tail)}")
        entry.comparator = _comparator(ctx, m.group(1), where) if m.group(1) else None
        ctx.warnings.append(f"{where}: unescaped '^' inside the value read as a power of ten")
        return
    entry.details["value_sent"] = unescaped(msg, first)
    ctx.warnings.append(f"{where}: components after the first are no part of an NM value: "
                        "the number is the first, the value as sent is kept apart")
    _numeric(ctx, head, entry, where)


def _numeric(ctx: _Ctx, value: str, entry: Entry, where: str, vtype: str = "NM") -> None:
    if not value:
        return
    entry.value = value
    num = _parse_number(ctx, value, where)
    if num is None:
        m = _COMPARED.fullmatch(value)
        body = m.group(2) if m is not None else value
        if m is not None:  # '<0.5' sent as NM: unambiguous, accepted as SN would have been
            num = _parse_number(ctx, body, where)
        if num is None:  # '12,5 g/dL', '< 0,5 mg/L': the unit typed after the number
            num = _number_with_unit(ctx, body, entry, where)
            if num is not None:
                entry.details["value_sent"] = value
                entry.value = value[:len(value) - len(entry.unit_original or "")].rstrip()
        if m is not None and num is not None:
            comparator = _comparator(ctx, m.group(1), where)
            if comparator != "=":
                entry.comparator = comparator
            ctx.warnings.append(f"{where}: comparator in an {vtype} value without components, "
                                "read as SN")
    if num is None and _says_no_number(value):
        _text_not_number(ctx, entry, vtype, where)
        return
    if num is None:
        raise NormalizationError("OBX_BAD_NUMBER", f"{where}: not a number (value type {vtype})",
                                 where)
    entry.value_num = num


_WORDS_OF = re.compile(r"[^\W\d_]+")


def _says_no_number(value: str) -> bool:
    """Whether a value that reads as no number holds a word saying why (tables/
    numeric_text_words.csv), case- and accent-insensitively, and no digit: words around a
    number ('positif 1:128', 'environ 4,5') may hold the number a reader needs, and still
    fail as a number garbled (OBX_BAD_NUMBER) rather than hide it in text."""
    if any(ch.isdigit() for ch in value):
        return False
    folded = "".join(ch for ch in unicodedata.normalize("NFKD", value.lower())
                     if not unicodedata.combining(ch))
    return any(w in _numeric_text_words() for w in _WORDS_OF.findall(folded))


@cache
def _numeric_text_words() -> frozenset[str]:
    return frozenset(row["word"].strip() for row in table("numeric_text_words"))


def _text_not_number(ctx: _Ctx, entry: Entry, vtype: str, where: str) -> None:
    """A numeric value type whose OBX-5 holds words ('voir commentaire', 'non réalisé',
    'ininterprétable', 'hémolysé'): the LIS's template types the test NM, the biologist
    wrote why there is no number (one of the words of tables/numeric_text_words.csv). It is
    filed as text (value type ST, the type sent in ``details['value_type_sent']``) with a
    warning; it failed the whole message (OBX_BAD_NUMBER), every other result of it lost.
    Anything else that reads as no number ('4,1,2', 'abc') still fails: a number mistyped
    or garbled is no text to show. OBX-11 X or N ('no result obtained') never reaches
    here: the value is withheld (``_withhold``)."""
    entry.value_type = "ST"
    entry.value_num = None
    entry.details["value_type_sent"] = vtype
    ctx.warnings.append(f"{where}: value type {vtype} but the value is text, not a number: "
                        "filed as text")


# A number then its unit in one value ('12,5 g/dL', '245 G/L', '1.2E+03 copies/mL'), as v2.3
# LIS print a result into OBX-5; the unit is read only when the units table knows it.
# A colony count '10^5 UFC/mL' (its '^' escaped: '10\S\5') is such a number: the power
# first, else '10' and the unit '^5 UFC/mL' were read
_NUMBER_THEN_UNIT = re.compile(r"((?:\d+(?:[.,]\d+)?\s*[x\u00d7*]\s*)?10\^[+-]?\d{1,2}"
                               r"|[+-]?(?:\d+(?:[.,]\d*)?|[.,]\d+)(?:[eE][+-]?\d{1,2})?)"
                               r"\s*([^\d\s.,+\-].*)")


def _number_with_unit(ctx: _Ctx, value: str, entry: Entry, where: str) -> float | None:
    """The number of a value that is a number followed by a unit the units table knows
    ('12,5 g/dL'), its unit set on ``entry`` (UCUM, as sent) and said; None otherwise.

    Why: older LIS write the unit into the value. Under NM the whole message failed
    (OBX_BAD_NUMBER) and every other result with it; under ST the haemoglobin was text, out
    of every trend. A unit that OBX-6 contradicts is refused by ``_check_unit_in_value``.
    What follows the number must be a known unit ('2 croix', '3 colonies' stay what they
    were)."""
    m = _NUMBER_THEN_UNIT.fullmatch(value.strip())
    if m is None:
        return None
    unit, mapped = to_ucum(m.group(2))
    if not mapped:
        return None
    num = _parse_number(ctx, m.group(1), where)
    if num is None:
        return None
    entry.unit, entry.unit_original = unit, m.group(2).strip()
    entry.details["unit_in_value"] = True
    ctx.warnings.append(f"{where}: unit written in the value after the number, read as the "
                        "number and its unit")
    return num


def _composite_quantity(ctx: _Ctx, obx: Segment, rep: str, entry: Entry, where: str) -> None:
    """CQ (v2.5 2.A.13): quantity (NM) ^ units (CE, its parts subcomponents:
    '12^mg&&UCUM', '5.4^mmol/L&millimole par litre&UCUM'), as US ELR and v2.6+ senders
    type a quantity that carries its own unit. It was kept as the composite text
    '5.4^mmol/L&&UCUM': no number, no unit, out of every trend. The number is read as an
    NM's is and the unit as OBX-6's is (UCUM, table mapping); an OBX-6 sent beside it must
    say the same unit (``_check_unit_in_value``: OBX_UNIT_CONFLICT otherwise)."""
    msg = ctx.msg
    d = msg.delimiters
    c = comps(msg, rep)
    _numeric(ctx, text(msg, part(c, 1)), entry, where, "CQ")
    units = part(c, 2)
    if units.strip(d.subcomponent + " "):
        _unit(_leaf_reader(d, obx.fields), units.split(d.subcomponent), entry, ctx.warnings,
              obx, field=5)
        if entry.unit is not None:
            entry.details["unit_in_value"] = True


def _check_unit_in_value(obx: Segment, entry: Entry, in_value: str | None) -> None:
    """OBX-6 set beside a unit written in OBX-5 (``_number_with_unit``): the same unit
    (UCUM) is said twice and read once; another one leaves the number's meaning in doubt
    (12,5 'g/dL' in OBX-5, 'g/L' in OBX-6): OBX_UNIT_CONFLICT, never a guess."""
    if in_value is None or entry.unit == in_value:
        return
    where = loc(obx, 6)
    raise NormalizationError("OBX_UNIT_CONFLICT", f"{where}: the unit written in the value "
                             "(OBX-5) is not the unit of OBX-6: which one the number is in "
                             "is not said", where)


def _text_quantity(ctx: _Ctx, entry: Entry, vtype: str, where: str) -> None:
    """A text value (ST, TX, FT) that is a number, or a comparator and a number, sent with
    its unit (OBX-6): a quantity, as an NM or SN would have said. Blood gas analysers and
    middleware type every value FT or ST ('OBX|1|FT|^^^pCO2^pCO2^NOVABIO||40.0|mmHg|...');
    read as text, the result fell out of every trend and never met the same result sent
    as a number by another channel (dedupe level 4). The value and its type stay as sent;
    without a unit a number in a text value may be a class or a stage, and stays text."""
    value = entry.value.strip() if entry.value else ""
    m = _COMPARED.fullmatch(value)
    number = m.group(2) if m is not None else value
    if not (_NUMBER.fullmatch(number.replace(",", ".", 1)) or _EXPONENT.fullmatch(number)
            or _POWER_TEXT.fullmatch(number)):
        return  # a viral load typed ST '1.2E+03' 'copies/mL' is a number too, and a colony
        # count '10^5' (escaped '10\S\5') 'UFC/mL' one
    num = _parse_number(ctx, number, where)
    if num is None:
        return
    _set_quantity(ctx, entry, num, m, where)
    ctx.warnings.append(f"{where}: number with a unit sent as {vtype}, read as a number")


def _set_quantity(ctx: _Ctx, entry: Entry, num: float, m: re.Match | None,
                  where: str) -> None:
    """The number read from a text value, and its comparator when ``m`` (``_COMPARED``)
    found one ('=' says nothing more than the number)."""
    entry.value_num = num
    if m is not None:
        comparator = _comparator(ctx, m.group(1), where)
        if comparator != "=":
            entry.comparator = comparator


_QUANTITY_STARTS = frozenset("0123456789<>=+-.,\u2264\u2265\u2a7d\u2a7e")


# A titre written as text: 1, then ':' or '/', then the dilution ('1/160', '1 : 128')
_TITRE = re.compile(r"\s*1\s*([:/])\s*(\d+)\s*")


def _text_titre(ctx: _Ctx, entry: Entry, vtype: str, where: str) -> None:
    """A text value (ST, TX, FT) that is a titre, '1/160' or '1:128' (a serology, as a LIS
    prints it): the ratio an SN '^1^/^160' says, in ``details['sn']`` (the FHIR export's
    valueRatio), said. It was text alone, a valueString no trend or comparison reads. The
    value and its type stay as sent."""
    m = _TITRE.fullmatch(entry.value or "")
    if m is None or int(m.group(2)) == 0:
        return
    entry.details["sn"] = {"comparator": "", "num1": "1", "separator": m.group(1),
                           "num2": m.group(2)}
    ctx.warnings.append(f"{where}: a titre (1:n) sent as {vtype}, read as a ratio (SN)")


def _text_with_unit(ctx: _Ctx, entry: Entry, vtype: str, where: str) -> None:
    """A text value (ST, TX, FT) without OBX-6 that is a number, or a comparator and a
    number, followed by a unit the units table knows ('12,5 g/dL', '< 0,5 mg/L'): the
    quantity it spells, as ``_text_quantity`` reads one whose unit is in OBX-6. The value
    and its type stay as sent."""
    value = entry.value.strip() if entry.value else ""
    m = _COMPARED.fullmatch(value)
    num = _number_with_unit(ctx, m.group(2) if m is not None else value, entry, where)
    if num is None:
        return
    _set_quantity(ctx, entry, num, m, where)


@cache
def _comparator_signs() -> dict[str, str]:
    """'≤' -> '<=', '≥' -> '>=' (tables/comparator_signs.csv)."""
    return column_map("comparator_signs", "sign", "comparator")


def _is_comparator(sent: str) -> bool:
    """Whether ``sent`` is an SN comparator, as HL7 writes it or as a sign or a reversed
    pair stands for one (tables/comparator_signs.csv)."""
    return sent in COMPARATORS or sent in _comparator_signs()


def _comparator(ctx: _Ctx, sent: str, where: str) -> str:
    """The HL7 comparator (SN.1) ``sent`` is: itself, or the one a single sign stands for
    ('≤0,5', '≥ 60' from systems that print them), or the one a reversed pair stands for
    ('=<0,25', '=>32': microbiology systems print MICs so, MIMIC-IV's dilution comparisons
    hold '=>'); the whole message failed as OBX_BAD_NUMBER. Said in a warning."""
    comparator = _comparator_signs().get(sent)
    if comparator is None:
        return sent
    how = "as one sign" if len(sent) == 1 else f"reversed ({sent})"
    ctx.warnings.append(f"{where}: comparator written {how}, read as {comparator}")
    return comparator


# A titre or a range typed as one text where SN wants its parts ('1:128', '1/64', '10-20'):
# unsigned numbers only, so that no signed number ('-5') is ever read as a range
_GLUED_RATIO = re.compile(r"\s*(\d+(?:[.,]\d+)?)\s*([:/-])\s*(\d+(?:[.,]\d+)?)\s*")


def _structured_numeric(ctx: _Ctx, c: list[str], entry: Entry, where: str) -> None:
    """SN = comparator ^ num1 ^ separator/suffix ^ num2. '<^0.5' -> comparator '<', 0.5;
    ratios and ranges ('1^:^128', '^10^-^20') are kept as text."""
    msg = ctx.msg
    if len(c) == 1:
        glued = _GLUED_RATIO.fullmatch(text(msg, c[0]))
        if glued is None:
            # No component at all: '182' or '<0.5' where '^182' or '<^0.5' was due. What a
            # sender means is clear, and it is what an NM value may hold: read the same way.
            _numeric(ctx, text(msg, c[0]), entry, where, "SN")
            return
        c = ["", *glued.groups()]
        ctx.warnings.append(f"{where}: SN ratio or range written without components, read as "
                            "num1^separator^num2")
    comparator, num1 = text(msg, part(c, 1)), text(msg, part(c, 2))
    separator, num2 = text(msg, part(c, 3)), text(msg, part(c, 4))
    if num1 and not separator and not num2 and (glued := _GLUED_RATIO.fullmatch(num1)):
        # '^1:128', '<^1:10': the ratio (or range) typed whole into num1
        num1, separator, num2 = glued.groups()
        ctx.warnings.append(f"{where}: SN ratio or range written whole in num1, read as "
                            "num1^separator^num2")
    if comparator in _comparator_signs():  # '≤^0.25'
        comparator = _comparator(ctx, comparator, where)
    if comparator and comparator not in COMPARATORS and len(c) < 4 \
            and num1 in SN_SEPARATORS and _NUMBER.fullmatch(comparator):
        # '1^:^128' or '1^-^5' where '^1^:^128' was due (the empty comparator left out): a
        # number before a separator is num1, as unambiguous as a plain '182' is
        comparator, num1, separator, num2 = "", comparator, num1, separator
        ctx.warnings.append(f"{where}: SN without its comparator component, read as "
                            "num1^separator^num2")
    if not comparator and not num2 and num1:
        shifted = _comparator_in_num1(num1, separator)
        if shifted is not None:
            # '^>^100000' (one component too far), '^<=0.25' (glued to its number): the
            # comparator in num1's place. Read as such: the count or MIC is unambiguous, and
            # the whole message failed OBX_BAD_NUMBER with it
            comparator, num1 = shifted
            separator = ""
            if comparator in _comparator_signs():
                comparator = _comparator(ctx, comparator, where)
            ctx.warnings.append(f"{where}: SN comparator sent in the num1 component, read as "
                                "comparator^num1")
    if comparator and comparator not in COMPARATORS:
        raise NormalizationError("OBX_BAD_NUMBER", f"{where}: unknown SN comparator", where)
    if num2 and not separator:
        # '^1^^128': num2 comes after a separator (v2.5 2.A.71), which says whether the two
        # numbers are a ratio (a titre 1:128) or a range. Glued, the value was '1128'.
        raise NormalizationError("OBX_BAD_NUMBER", f"{where}: SN with a second number (num2) "
                                 "but no separator/suffix (':' or '/' of a ratio, '-' of a "
                                 "range): what the two numbers say is not told", where)
    if separator and separator not in SN_SEPARATORS and _sn_power(ctx, comparator, num1,
                                                                  separator, num2, entry, where):
        return
    shown = comparator if comparator != "=" else ""
    entry.value = f"{shown}{num1}{separator}{num2}" or None
    parsed = [_parse_number(ctx, n, where) if n else None for n in (num1, num2)]
    if num1 and parsed[0] is None and not (separator or num2):
        # '<^5 mg/L': the unit typed after the number, as under NM ('_number_with_unit')
        parsed[0] = _number_with_unit(ctx, num1, entry, where)
        if parsed[0] is not None:
            entry.details["value_sent"] = entry.value
            entry.value = f"{shown}{num1[:len(num1) - len(entry.unit_original or '')].rstrip()}"
    if num1 and parsed[0] is None and not (comparator or separator or num2) \
            and _says_no_number(num1):  # '^Voir commentaire': as under NM
        entry.value = num1
        _text_not_number(ctx, entry, "SN", where)
        return
    for n, number in zip((num1, num2), parsed, strict=True):
        if n and number is None:
            raise NormalizationError("OBX_BAD_NUMBER", f"{where}: not a number (value type SN)",
                                     where)
    if separator or num2:
        entry.details["sn"] = {"comparator": comparator, "num1": num1, "separator": separator,
                               "num2": num2}
        return
    if num1:
        entry.value_num = parsed[0]  # parsed once: a decimal comma is warned about once
        entry.comparator = shown or None


def _comparator_in_num1(num1: str, separator: str) -> tuple[str, str] | None:
    """(comparator, number) of an SN whose comparator is in num1's place: num1 a comparator
    and the number after it ('^>^100000'), or num1 a comparator glued to a number with
    nothing after ('^<=0.25'); None for anything else."""
    if num1 in COMPARATORS or num1 in _comparator_signs():
        return (num1, separator) if separator and _NUMBER_LIKE.fullmatch(separator) else None
    if separator:
        return None
    m = _COMPARED.fullmatch(num1)
    return (m.group(1), m.group(2).strip()) if m is not None else None


_NUMBER_LIKE = re.compile(r"\s*[+-]?[\d.,][\d.,\s\u00a0\u202f]*(?:[eE][+-]?\d{1,2})?\s*")


def _sn_power(ctx: _Ctx, comparator: str, num1: str, separator: str, num2: str, entry: Entry,
              where: str) -> bool:
    """An SN whose separator/suffix (SN.3) is none of HL7's (+ - / . :). A power of ten
    ('>^10^5', a colony count typed with its '^' unescaped; '^1^E^5') is the number it
    spells: it was filed as the text '>105', a thousand times less than meant, without a
    word. True when read so; else False, and the value is kept as sent, with a warning."""
    power = None
    if not num2 and _EXPONENT_DIGITS.fullmatch(separator):
        m = _POWER_OF_TEN.fullmatch(num1)
        if m is not None and not m.group(1):
            mantissa = float(m.group(2).replace(",", ".")) if m.group(2) else 1.0
            power = float(f"{mantissa!r}e{int(separator)}")
    elif separator in ("E", "e") and _EXPONENT_DIGITS.fullmatch(num2):
        number = _parse_number(ctx, num1, where) if num1 else None
        if number is not None:
            power = float(f"{number!r}e{int(num2)}")
    if power is None:
        ctx.warnings.append(f"{where}: SN separator/suffix is none of + - / . : (HL7 v2.5 "
                            "2.A.71), the value is kept as sent")
        return False
    shown = comparator if comparator != "=" else ""
    entry.value = f"{shown}{num1}{'^' if num2 == '' else ''}{separator}{num2}"
    entry.value_num = power
    entry.comparator = shown or None
    ctx.warnings.append(f"{where}: SN read as a power of ten (separator/suffix is no HL7 "
                        "separator)")
    return True


_WORDS = re.compile(r"\S\s+\S")  # two words: text, never one code


def _coded(ctx: _Ctx, obx: Segment, entry: Entry) -> None:
    """CE / CWE values: each repetition with its alternate triplet (CE.4-6) and, from v2.5,
    its original text (CWE.9). The value shown is the first of text, code, alternate text,
    alternate code, original text: public-health senders code the alternate triplet only
    ('^^^260373001^Detected^SCT') or send the original text alone, which was lost. A text
    sent in the coding-system slot ('POS^^Positif', as the same French LIS writes OBX-3)
    is the text (``_name_in_system_slot``)."""
    msg = ctx.msg
    coded: list[dict[str, str]] = []
    system_only: list[str] = []
    for n, rep in enumerate(reps(msg, obx, 5), 1):
        if not rep.strip(msg.delimiters.component + " "):
            continue  # an empty repetition ('A^A^L~') codes nothing: it made the value 'A; '
        if not _rep_codes_anything(msg, rep):
            system_only.append(str(n))  # '^^99LAB~POS^Positif^L': it made the value '; Positif'
            continue
        c = comps(msg, rep)
        if len(c) == 1 and _WORDS.search(c[0].strip()):
            # 'Escherichia coli', 'Pas de germe isolé': words alone where a CWE was due (a SIL
            # typing its free text CE). No code: its original text (CWE.9). Filed as the
            # code, it was a code no coding system has, exported as one.
            coded.append({"code": "", "display": "", "system": "",
                          "original_text": text(msg, c[0])})
            continue
        item = {"code": sub(msg, part(c, 1), 1), "display": text(msg, part(c, 2)),
                "system": sub(msg, part(c, 3), 1) or sub(msg, part(c, 14), 1)}  # 14: its OID
        if item["system"] and not item["display"] and text_in_system_slot(item["system"]):
            item["display"], item["system"] = _name_in_system_slot(ctx, obx, 5, part(c, 3))
        if part(c, 4) or part(c, 5):
            item.update(alt_code=sub(msg, part(c, 4), 1), alt_display=text(msg, part(c, 5)),
                        alt_system=sub(msg, part(c, 6), 1) or sub(msg, part(c, 17), 1))
        original = text(msg, part(c, 9))
        if original:
            item["original_text"] = original
        coded.append(item)
    if system_only:
        ctx.warnings.append(f"{loc(obx, 5)}: repetition {', '.join(system_only)} holds a "
                            "coding system and no code nor text: left out of the value")
    if not coded:
        return
    entry.value = "; ".join(
        i["display"] or i["code"] or i.get("alt_display") or i.get("alt_code")
        or i.get("original_text", "") for i in coded) or None
    entry.details["coded_value"] = coded[0] if len(coded) == 1 else coded


class _NothingCoded(Exception):
    """An OBX whose coded value (CE, CWE, CNE) names a coding system and nothing else: its
    message is the ledger warning."""


# CE / CWE components that say something: code, text, alternate code and text, original text
_CODED_SAYING = (1, 2, 4, 5, 9)


def _rep_codes_anything(msg: Message, rep: str) -> bool:
    """Whether one CE/CWE repetition holds a code or a text, not only coding systems.

    '^^L' or '^^99LAB' (a LIS's empty coded result, its table named and nothing picked from
    it) was filed as a coded result of empty code: a value no reader can show. A name sent in
    the coding-system slot ('^^Positif') is a text (``text_in_system_slot``)."""
    c = comps(msg, rep)
    if any(text(msg, part(c, i)).strip() for i in _CODED_SAYING):
        return True
    return text_in_system_slot(sub(msg, part(c, 3), 1))


def _codes_anything(msg: Message, obx: Segment) -> bool:
    """Whether OBX-5, a coded value, holds a code or a text in any repetition (or nothing at
    all). Only the rare value starting with a delimiter is checked further: a plain code is
    read at once."""
    raw5 = obx.raw(5)
    d = msg.delimiters
    if raw5[:1] not in (d.component, d.repetition, d.subcomponent, " "):
        return True  # its first repetition starts with a code
    filled = [rep for rep in reps(msg, obx, 5) if rep.strip(d.component + " ")]
    # '^^~' holds nothing at all, as an empty OBX-5: filed so, as before
    return not filled or any(_rep_codes_anything(msg, rep) for rep in filled)


def _reference(msg: Message, obx: Segment, entry: Entry) -> None:
    """RP, a reference pointer (v2.5 2.A.65): pointer ^ application id ^ type of data ^
    subtype. A report kept elsewhere (a PDF on the lab's file server, an ECG viewer's URL,
    'file:////data/pdf/CR_0412.pdf^SIL^AP^PDF'). The pointer is the value, and what it
    points at goes to ``details['reference']``; read whole as text, the value was the
    pointer with the other components glued to it, which opened nothing. The pointer is
    read as text (ST): a raw '&' in a URL's query is part of it."""
    refs: list[dict[str, str]] = []
    for rep in reps(msg, obx, 5):
        c = comps(msg, rep)
        type_of_data, subtype = text(msg, part(c, 3)), text(msg, part(c, 4))
        ref = {"pointer": text(msg, part(c, 1)),
               "application": sub(msg, part(c, 2), 1) or sub(msg, part(c, 2), 2),
               "type_of_data": type_of_data, "subtype": subtype,
               "media_type": media_type(type_of_data, subtype)
               if type_of_data or subtype else ""}
        refs.append({k: v for k, v in ref.items() if v})
    entry.value = "\n".join(r.get("pointer", "") for r in refs).strip("\n") or None
    entry.details["reference"] = refs[0] if len(refs) == 1 else refs


def _unit(lf: Callable[[str], str], c: list[str], entry: Entry, warnings: list[str],
          obx: Segment, field: int = 6) -> None:
    """OBX-6 (CE: code ^ text ^ system) to UCUM; a unit already declared UCUM is kept.
    ``lf`` reads a leaf (see ``_leaf_reader``); ``field`` is where the unit was sent, for
    the warnings (5: a CQ's units, ``_composite_quantity``).

    '10^9/L' sent without escaping its '^' reaches us as code '10', text '9/L': no unit is a
    bare number and no unit's text starts with a digit, so the two are put back together
    (with a warning) rather than filing the unit '10'. The same holds for the power written
    with its multiplication sign ('x10^9/l', 'x 10^12/L', '×10^3/µL'): code 'x10' was filed
    as the unit, unmapped, and the '10*9/L' it meant lost."""
    if 1 < len(c) < 4 and _UNIT_POWER_HEAD.fullmatch(c[0]) and c[1][:1].isdigit() \
            and (len(c) == 2 or not c[2].strip()):
        c = [f"{c[0].strip()}^{c[1].strip()}"]
        warnings.append(f"{loc(obx, field)}: unescaped '^' inside the unit read as an exponent")
    if len(c) > 3 and lf(c[3]) and not _unit_reads(lf, c[:3]) \
            and (not lf(c[0]) or _unit_reads(lf, c[3:6])):
        c = _alternate_unit(lf, c, entry, warnings, obx, field)
    sent = lf(c[0]) or (lf(c[1]) if len(c) > 1 else "")
    if not sent:
        return
    entry.unit_original = sent
    unit, mapped = to_ucum(sent)
    if len(c) > 2 and lf(c[2]).upper() == "UCUM":
        # Declared UCUM: kept as sent, unless it is a spelling the table reads as another
        # code ('µmol/L^^UCUM': UCUM writes micro 'u'; 'G/L^^UCUM', which UCUM would read
        # as gauss per litre). Kept, it was a unit no other channel's result ever met (the
        # CDA path maps every unit through the table) and no UCUM reader understood.
        entry.unit = unit if mapped else sent
        if mapped and unit.lower() != sent.lower():
            warnings.append(f"{loc(obx, field)}: unit declared UCUM is no UCUM code, read as "
                            "the UCUM unit it spells")
        return
    if not mapped and len(c) > 1 and sent == lf(c[0]):
        # '0004-17a0^°C^MDIL', '266016^mmHg^MDC': a monitor's or a LIS's own unit code, the
        # unit itself in the text (CE.2). The unit read is the text's; the code is kept
        # apart (details.unit_code). Filed as the unit, the code was no unit at all.
        said = lf(c[1])
        by_text = to_ucum(said) if said else None
        if by_text is not None and by_text.mapped:
            entry.unit, entry.unit_original = by_text.unit, said
            entry.details["unit_code"] = {"code": sent, "system": lf(c[2]) if len(c) > 2 else ""}
            return
    entry.unit = unit
    if not mapped:
        entry.details["unit_unmapped"] = True


def _unit_reads(lf: Callable[[str], str], triplet: list[str]) -> bool:
    """Whether a triplet of a unit (code ^ text ^ system) says a unit we read: declared
    UCUM, or its code or its text a unit the units table knows."""
    code, said = lf(part(triplet, 1)), lf(part(triplet, 2))
    if code and lf(part(triplet, 3)).upper() == "UCUM":
        return True
    return any(x and to_ucum(x).mapped for x in (code, said))


def _alternate_unit(lf: Callable[[str], str], c: list[str], entry: Entry,
                    warnings: list[str], obx: Segment, field: int) -> list[str]:
    """The alternate triplet of a unit (CE.4-6, v2.5 2.A.8) read as the unit, when the first
    names none we read: empty ('^^^mmol/L^millimole par litre^UCUM'), or a LIS's own unit
    code beside a UCUM or known unit ('MMOLL^^99LAB^mmol/L^^UCUM', as v2.5.1 LRI and ELR
    senders send UCUM beside their local code). Only the first triplet was read: the
    potassium was filed without any unit, or under the unmapped unit 'MMOLL'. A local code
    is kept apart (details.unit_code), as when its text says the unit (``_unit``); two
    local codes stay the first, as before."""
    code = lf(c[0])
    if code:
        entry.details["unit_code"] = {"code": code, "system": lf(c[2])}
    warnings.append(f"{loc(obx, field)}: unit read from its alternate triplet (CE.4-6): the "
                    "first names none")
    return [c[3], part(c, 5), part(c, 6)]


# What the code of a unit split at an unescaped '^' is when the '^' was an exponent: a bare
# number ('10' of '10^9/L'), or ten after a multiplication sign ('x10' of 'x10^9/l').
_UNIT_POWER_HEAD = re.compile(r"\s*(?:\d+|[xX\u00d7*]\s*10)\s*")


def _observer(msg: Message, rep: str) -> dict[str, Any] | None:
    """OBX-16 or a PRT-5 in role RO, the responsible observer (in France the biologist who
    validated the result), as {name, id: {id, authority, type}}: the RPPS number tells two
    Dr MARTIN apart. Only a name, and only when no organization was named, was kept."""
    name = person_name(msg, rep) if rep else ""
    said: dict[str, Any] = {"name": name} if name else {}
    ident = _provider_id(msg, rep) if rep else None
    if ident:
        said["id"] = ident
    return said or None


def _result_performer(msg: Message, obx: Segment) -> str | None:
    """OBX-23 performing organization, else OBX-15 producer, else OBX-16 responsible observer."""
    rep = first_rep(msg, obx, 23)
    if rep:
        name = organization(msg, rep)
        if name:
            return name
    c15 = comps(msg, first_rep(msg, obx, 15))
    producer = sub(msg, part(c15, 2), 1) or sub(msg, part(c15, 1), 1)
    if producer:
        return producer
    rep = first_rep(msg, obx, 16)
    return (person_name(msg, rep) or None) if rep else None


def _text_line(msg: Message, raw: str) -> str:
    """One repetition of a text value (ST, TX, FT, NTE-3), unescaped, trailing blanks (layout)
    removed, its line ends as '\\n'. Engines escape a line end inside a field as hex
    (Cloverleaf and Mirth write '\\X0D\\', Windows senders '\\X0D0A\\'): kept as the
    parser reads it, the value held a bare CR ('Ligne 1\\rLigne 2'), which a terminal prints
    over the line's start and no other line end of ours is (\\.br\\, repetitions, an LF
    left unescaped are all '\\n')."""
    value = unescaped(msg, raw)
    if "\r" in value:
        value = value.replace("\r\n", "\n").replace("\r", "\n")
    return value.rstrip()


def _notes(msg: Message, notes: list[Segment]) -> list[str]:
    """NTE-3 of each note (repetitions are lines); empty notes (a bare 'NTE|1') are dropped."""
    texts = (_note_text(msg, nte) for nte in notes)
    return [t for t in texts if t.strip()]


def _note_text(msg: Message, nte: Segment) -> str:
    return "\n".join(_text_line(msg, r) for r in reps(msg, nte, 3))


def _comment_types(msg: Message, notes: list[Segment]) -> list[dict[str, str]]:
    """NTE-4, the comment type (CE, HL7 table 0364, v2.4+) of each note that has one and a
    text: {text, code, display, system}, the display from ``tables/comment_types.csv`` when
    only the code was sent. A patient instruction (PI: 'à jeun pour le prochain bilan') or
    the reason an order was made (1R) is no remark on the result; the type was dropped and
    all of them read alike. The comments themselves stay in ``details['comments']``."""
    out: list[dict[str, str]] = []
    for nte in notes:
        rep = first_rep(msg, nte, 4)
        if not rep:
            continue
        c = comps(msg, rep)
        code = sub(msg, part(c, 1), 1)
        body = _note_text(msg, nte)
        if not code or not body.strip():
            continue
        item = {"text": body, "code": code,
                "display": text(msg, part(c, 2)) or _comment_type_names().get(code.upper(), ""),
                "system": sub(msg, part(c, 3), 1)}
        out.append({k: v for k, v in item.items() if v})
    return out


@cache
def _comment_type_names() -> dict[str, str]:
    return column_map("comment_types", "code", "meaning")


def _keep_comment_types(msg: Message, notes: list[Segment], details: dict[str, Any]) -> None:
    """``_comment_types`` of ``notes`` added to ``details['comment_types']``."""
    typed = _comment_types(msg, notes) if notes else None
    if typed:
        details.setdefault("comment_types", []).extend(typed)


# -- for the MLLP listener --------------------------------------------------------------------
def handles_message_type(kind: str, trigger: str) -> bool:
    """Whether ``normalize_message`` reads MSH-9 ``kind^trigger`` (its dispatch table), for
    the MLLP listener, which answers an unsupported type from the header alone (HL7 v2.5
    2.9.2: MSH-9 is among what the receiver checks before accepting a message)."""
    kind, trigger = kind.strip().upper(), trigger.strip().upper()
    kind, trigger = _type_aliases().get((kind, trigger), (kind, trigger))
    return ((kind == "ORU" and not trigger) or (kind, trigger) in _HANDLED
            or handles(kind, trigger))
