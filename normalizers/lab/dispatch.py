"""Dispatch on MSH-9 (ORU, OUL, MDM, ADT), refusals of what is not read, and messages about several
patients."""

from __future__ import annotations

from functools import cache

from normalizers.adt import handles, normalize_adt
from normalizers.codes import CodeMappings
from normalizers.documents import normalize_mdm
from normalizers.fields import comps, first_rep, header_warnings, loc, part, text
from normalizers.identity import patient_starts
from normalizers.lab.groups import order_groups, oul_groups
from normalizers.lab.oru import normalize_oru
from normalizers.model import (
    Entry,
    HeldBack,
    NormalizationError,
    NormalizedMessage,
    PatientIdentity,
    PatientPart,
)
from normalizers.tabledata import column_map, table
from parsers.hl7v2.er7 import Message

# -- dispatch ---------------------------------------------------------------------------------
# ORU^R30/R31/R32 (v2.5 7.3.4-7.3.6): point-of-care results (a blood gas, a glucose meter
# reading), with or without an order; the same PID, ORC, OBR, OBX layout as R01.
# OUL^R22/R23 (specimen first) and R24 (order first), v2.5 13.4: the results of IHE LTW and
# LAW laboratory systems, the same segments in another order (see oul_groups).
# OUL^R21 (v2.4-v2.6 7.3.x, laboratory automation middleware): ORU's ORC OBR OBX, each order
# opened by its container ([SAC [{OBX}]] [{SID}] [ORC] OBR ...).
HANDLED = {("ORU", "R01"): "oru", ("ORU", "R30"): "oru", ("ORU", "R31"): "oru",
           ("ORU", "R32"): "oru", ("OUL", "R21"): "oul_container",
           ("OUL", "R22"): "oul_specimen",
           ("OUL", "R23"): "oul_specimen", ("OUL", "R24"): "oul_order",
           **{("MDM", f"T{n:02d}"): "mdm" for n in range(1, 12)}}  # tables/mdm_triggers.csv


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
    handler = HANDLED.get((kind, trigger))
    if handler is None and handles(kind, trigger):
        return normalize_adt(msg, source)
    if handler == "oru":
        if trigger == "R01":  # the only one whose PATIENT_RESULT group repeats
            return normalize_results(msg, source, mappings)
        return normalize_oru(msg, source, mappings, order_groups(msg, patient_observations=True))
    if handler in ("oul_specimen", "oul_order", "oul_container"):
        _refuse_oul_without_patient(msg, f"{kind}^{trigger}")
        return normalize_oru(msg, source, mappings,
                             oul_groups(msg, specimen_first=handler == "oul_specimen",
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


_KINDS_READ = frozenset({kind for kind, _ in HANDLED} | {"ADT"})


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


# -- for the MLLP listener --------------------------------------------------------------------
def handles_message_type(kind: str, trigger: str) -> bool:
    """Whether ``normalize_message`` reads MSH-9 ``kind^trigger`` (its dispatch table), for
    the MLLP listener, which answers an unsupported type from the header alone (HL7 v2.5
    2.9.2: MSH-9 is among what the receiver checks before accepting a message)."""
    kind, trigger = kind.strip().upper(), trigger.strip().upper()
    kind, trigger = _type_aliases().get((kind, trigger), (kind, trigger))
    return ((kind == "ORU" and not trigger) or (kind, trigger) in HANDLED
            or handles(kind, trigger))
