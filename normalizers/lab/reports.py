"""One OBR to one LAB_REPORT entry: its status (OBR-25, ORC-5, ORC-1) against its results', its
dates (OBR-7, OBR-8, the results' time), its code and notes."""

from __future__ import annotations

from functools import cache
from typing import Any

from normalizers.codes import resolve_code, text_in_system_slot
from normalizers.dates import hl7_ts_to_iso
from normalizers.fields import (
    comps,
    first_rep,
    loc,
    part,
    person_name,
    reps,
    sub,
    text,
    ts_field,
    with_degree,
    zone_of,
)
from normalizers.lab.common import (
    NO_VALUE_STATUSES,
    WITHHELD_STATUSES,
    Ctx,
    coded_id,
    coded_item,
    name_in_system_slot,
)
from normalizers.lab.groups import Group
from normalizers.lab.notes import keep_comment_types, note_texts
from normalizers.lab.orders import order_priority
from normalizers.lab.people import provider_id
from normalizers.model import ACTION_REPLACE, LAB_REPORT, LAB_RESULT, Entry
from normalizers.tabledata import column_map
from parsers.hl7v2.er7 import Message, Segment


def results_time(ctx: Ctx, obr: Segment, results: list[Entry]) -> str | None:
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


def observation_end(ctx: Ctx, obr: Segment) -> str | None:
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


def report_entry(ctx: Ctx, g: Group, key: str, c4: list[str], obr_code: str,
                 effective: str | None, issued: str | None, specimen_time: str | None,
                 performer: str | None, results: list[Entry]) -> Entry:
    """One LAB_REPORT; ``c4``: the components of OBR-4, as the caller split them."""
    msg, obr = ctx.msg, g.obr
    display, system = text(msg, part(c4, 2)), sub(msg, part(c4, 3), 1)
    sent_system = ""
    if system and not display and text_in_system_slot(system):
        sent_system = system
        display, system = name_in_system_slot(ctx, obr, 4, part(c4, 3))
    if not display:
        display = _original_text(msg, obr, 4)
    coded = resolve_code(obr_code, display, system, sub(msg, part(c4, 4), 1),
                         sub(msg, part(c4, 5), 1), sub(msg, part(c4, 6), 1),
                         source=ctx.source, mappings=ctx.mappings, sent_system=sent_system)
    code25 = text(msg, first_rep(msg, obr, 25)).upper()
    if msg.delimiters.component in code25:
        code25 = coded_id(ctx, obr, 25, "result status")
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
    clinical = _clinical_information(msg, obr)
    if clinical:
        details["clinical_information"] = clinical
    received = _received(ctx, g)
    if received:
        details["specimen_received"] = received
    ordering = first_rep(msg, obr, 16)
    if not ordering and g.own_orc and g.orc is not None:
        ordering = first_rep(msg, g.orc, 12)  # ORC-12: the same person (v2.5 4.5.1.12)
    if ordering:
        details["ordering_provider"] = person_name(msg, ordering)
        said = provider_id(msg, ordering)
        if said:
            details["ordering_provider_id"] = said
    priority = order_priority(ctx, g)
    if priority:
        details["priority"] = priority
    comments = note_texts(msg, g.notes) if g.notes else None
    if comments:
        details["comments"] = comments
        keep_comment_types(msg, g.notes, details)
    about_patient = note_texts(msg, g.patient_notes) if g.patient_notes else None
    if about_patient:
        details["patient_comments"] = about_patient
    about_message = note_texts(msg, g.message_notes) if g.message_notes else None
    if about_message:
        details["message_comments"] = about_message
    entry = Entry(type=LAB_REPORT, key=key, source_ref=loc(obr), code=coded.code or None,
                  system=coded.system or None, display=coded.display or None,
                  mapped=coded.mapped, status=status, effective=effective, issued=issued,
                  specimen_time=specimen_time, performer=performer, details=details)
    if code25 == "C":
        entry.action, entry.replaces_key = ACTION_REPLACE, key
    return entry


def _clinical_information(msg: Message, obr: Segment) -> list[dict[str, str]]:
    """OBR-13, relevant clinical information: what the prescriber told the laboratory about
    the patient or the specimen ('Grossesse 12 SA', 'Sous AVK, INR cible 2-3', 'Fièvre au
    retour du Mali'), which a French report prints beside the results and without which a
    result is misread (an INR under AVK, a hCG in pregnancy). It was not read at all: the
    dossier lost it. ST in v2.5 (7.4.1.13), kept as {text}; CWE and repeating from v2.7
    (sent by v2.7+ systems and LRI-style bridges): each as a coded item (``coded_item``)."""
    if len(obr.fields) <= 13 or not obr.fields[13]:
        return []
    items = []
    for rep in reps(msg, obr, 13):
        if msg.delimiters.component in rep:
            item = coded_item(msg, rep)
        else:
            said = text(msg, rep)
            item = {"text": said} if said else None
        if item:
            items.append(item)
    return items


def _received(ctx: Ctx, g: Group) -> str | None:
    """When the laboratory received the specimen: SPM-18 (v2.5 7.4.3.18, TS) of the order's
    specimens, else OBR-14 (v2.5 7.4.1.14, the same time before SPM existed, still sent by
    v2.3-2.4 senders and HPRIM converters), as ISO 8601. Neither was read: the time a
    specimen waited before analysis (a potassium or a glucose drift with it) was lost. It
    dates nothing (the order is dated by its collection): a value that is no HL7 time is
    not read, said, and fails nothing."""
    msg = ctx.msg
    sources = [(spm, 18) for spm in g.specimens] + [(g.obr, 14)]
    for seg, n in sources:
        if len(seg.fields) <= n or not seg.fields[n]:
            continue
        c = comps(msg, first_rep(msg, seg, n))
        raw = text(msg, part(c, 1))
        if not raw:
            continue
        try:
            return hl7_ts_to_iso(with_degree(raw, text(msg, part(c, 2))), zone_of(msg))
        except ValueError:
            ctx.warnings.append(f"{loc(seg, n)}: the specimen's reception time is no HL7 "
                                "date/time (YYYYMMDD[HHMM[SS]]): not read")
    return None


def _original_text(msg: Message, seg: Segment, n: int) -> str:
    """CWE.9, the original text (v2.5 2.A.74), of a test's identifier sent without its text
    (CWE.2): what the laboratory calls it ('2823-3^^LN^^^^2.74^^Kaliémie', as v2.7+ and LRI
    senders write OBX-3 and OBR-4). It was dropped: the result had no name to show beside a
    local code, and a LOINC none but its number."""
    c = comps(msg, first_rep(msg, seg, n))
    return text(msg, part(c, 9)) if len(c) > 8 else ""


_VERIFIED = frozenset({"final", "corrected", "amended"})
_NOT_YET = frozenset({"preliminary", "registered"})
# OBR-25 statuses that say the order has no result (I, O, S: not yet; X: canceled)
_NO_RESULT_YET = frozenset({"registered", "cancelled"})


def _status_disagreement(ctx: Ctx, obr: Segment, code25: str, status: str,
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
