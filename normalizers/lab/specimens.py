"""Specimens (SPM, OBR-15): type, site, collection time, condition, per result."""

from __future__ import annotations

import re

from normalizers.codes import system_name
from normalizers.dates import BAD_TS_TEXT, hl7_ts_to_iso
from normalizers.fields import comps, first_rep, loc, part, reps, sub, text, with_degree, zone_of
from normalizers.lab.common import coded_item
from normalizers.lab.groups import Group
from normalizers.model import LAB_RESULT, Entry, NormalizationError
from parsers.hl7v2.er7 import Message, Segment


def specimen_type(msg: Message, g: Group) -> dict[str, str] | None:
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


def specimen_site(msg: Message, g: Group) -> dict[str, str] | None:
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


def patient_observations(g: Group, results: list[Entry]) -> None:
    """The patient's own observations of a point-of-care message (its temperature, its FiO2)
    are said to be (details['patient_observation']) and taken from no specimen."""
    for r in results:
        if r.type == LAB_RESULT and int(r.source_ref[4:-1]) in g.about_patient:
            r.details["patient_observation"] = True
            r.details.pop("specimen", None)
            r.details.pop("specimen_site", None)


def own_specimens(msg: Message, g: Group, results: list[Entry]) -> None:
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


def collection_time(msg: Message, g: Group) -> str | None:
    for spm in g.specimens:
        value = _collected(msg, spm)
        if value:
            return value
    return None


def _specimen_state(msg: Message, spm: Segment) -> dict[str, list[dict[str, str]]]:
    """What the laboratory says of a specimen it received: SPM-21 why it was rejected
    ('tube cassé', 'quantité insuffisante', table 0490) and SPM-24 its condition
    ('hémolysé', 'lipémique', table 0493), each repetition as ``coded_item`` reads it."""
    state: dict[str, list[dict[str, str]]] = {}
    f = spm.fields
    for n, name in ((21, "specimen_rejected"), (24, "specimen_condition")):
        if len(f) > n and f[n]:
            said = [i for i in (coded_item(msg, r) for r in reps(msg, spm, n)) if i]
            if said:
                state[name] = said
    return state


def specimen_states(msg: Message, g: Group, report: Entry | None,
                    results: list[Entry]) -> None:
    """``_specimen_state`` of the order's specimens, in details: on the report all of them,
    on each result its own specimen's (``Group.specimen_of``), else the order's first.
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
