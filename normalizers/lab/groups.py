"""Segment grouping: which OBX, NTE, SPM, PRT and TQ1 belong to which OBR, in ORU (v2.5 groups or
flat v2.3) and OUL (specimen first, order first, container first) layouts."""

from __future__ import annotations

from dataclasses import dataclass, field

from normalizers.fields import loc
from normalizers.model import NormalizationError
from parsers.hl7v2.er7 import Message, Segment

# Segments whose explicitly null fields ("") are read as empty (see _nulled).
_NULLABLE = frozenset({"OBX", "OBR", "ORC", "NTE", "SPM"})
# Segments after which an NTE no longer comments the last OBX / OBR.
_NOTE_BREAKERS = frozenset({"PID", "PD1", "NK1", "PV1", "PV2", "ORC", "SPM", "TQ1", "TQ2",
                            "CTD", "FT1", "CTI", "SAC"})
# Segments of the PATIENT group (v2.5 7.3.1: PID [PD1] [{NTE}] [{NK1}] [PV1 [PV2]]): an NTE
# sent after one of them (outside the grammar, but sent: 'Renseignements cliniques : ...'
# after the PV1) speaks of the patient. It was dropped without a word.
_PATIENT_PARTS = frozenset({"PD1", "NK1", "PV1", "PV2"})


# -- grouping ---------------------------------------------------------------------------------
@dataclass(slots=True)
class Group:
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


def order_groups(msg: Message, patient_observations: bool = False) -> list[Group]:
    """The orders of an ORU, each OBR with what follows it. ``patient_observations``
    (point of care, ORU^R30-R32): OBX sent after the PID and before any OBR are the
    patient's own (v2.7+ PATIENT_OBSERVATION group), filed with the order that follows;
    elsewhere such an OBX fails the message (HL7_OBX_WITHOUT_OBR)."""
    groups: list[Group] = []
    waiting: list[tuple[Segment, list[Segment]]] = []  # patient observations, for an OBR
    current: Group | None = None
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
    early: list[tuple[Segment, Group | None]] = []
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
            current = Group(seg, orc, own_orc=orc_fresh, notes=order_notes,
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


def _settle(early: list[tuple[Segment, Group | None]]) -> list:
    """SPM sent before an OBR that did not come: each goes where it went before this reading
    (the order current when it was sent; none before the first OBR). The empty list."""
    for spm, group in early:
        if group is not None:
            group.specimens.append(spm)
    return []


def oul_groups(msg: Message, specimen_first: bool,
               containers_first: bool = False) -> list[Group]:
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
    groups: list[Group] = []
    current: Group | None = None
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
        elif name == "PRT" and current is not None:  # v2.7+: as in an ORU (order_groups)
            if last_obx is not None:
                current.result_parts.setdefault(last_obx.index, []).append(seg)
            elif not current.observations:
                current.order_parts.append(seg)
        elif name == "NTE":
            if notes is not None:
                notes.append(seg)
        elif name == "OBR":
            current = Group(seg, orc, own_orc=orc is not None, specimens=list(specimen),
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
            # speaks of the specimen: the comments of its orders, as in an ORU (order_groups);
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
