"""OBX-5 by data type: dispatch to numbers, coded values and text; dates and date ranges, names,
composite values and reference pointers (RP)."""

from __future__ import annotations

import re
from functools import cache

from normalizers.dates import BAD_TS_TEXT, hl7_tm_to_iso, hl7_ts_to_iso
from normalizers.documents import ed_encodings, media_type, reference_warning
from normalizers.fields import (
    comps,
    first_rep,
    loc,
    organization,
    part,
    person_name,
    reps,
    sub,
    text,
    with_degree,
)
from normalizers.lab.coded import fill_coded
from normalizers.lab.common import (
    CODED_TYPES,
    DATE_TYPES,
    NUMBER,
    SINGLE_VALUE_TYPES,
    TEXT_TYPES,
    Ctx,
)
from normalizers.lab.notes import text_line
from normalizers.lab.numeric import (
    composite_quantity,
    fill_numeric,
    is_comparator,
    nm_with_components,
)
from normalizers.lab.people import provider_id
from normalizers.lab.quantities import (
    QUANTITY_STARTS,
    text_quantity,
    text_titre,
    text_with_unit,
)
from normalizers.lab.structured import structured_numeric
from normalizers.model import Entry, NormalizationError
from normalizers.tabledata import table
from parsers.hl7v2.er7 import Delimiters, Message, Segment
from parsers.hl7v2.escape import escape, unescape


@cache
def _value_types() -> frozenset[str]:
    """OBX-2 values known as HL7 data types (tables/hl7_value_types.csv)."""
    return frozenset(row["code"] for row in table("hl7_value_types"))


def fill_value(ctx: Ctx, obx: Segment, entry: Entry) -> None:
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
        if NUMBER.fullmatch(text(msg, raw5)):
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
        if len(c) > 1 and (not head or is_comparator(head)) and text(msg, c[1]):
            # '^182', '<^0.5': an SN's components under OBX-2 NM. Read as NM, the number in
            # component 2 was lost without a word ('^182') or the message failed ('<^0.5').
            ctx.warnings.append(f"{where}: NM value written as an SN (comparator^number), "
                                "read as SN")
            structured_numeric(ctx, c, entry, where)
        elif len(c) > 1 and any(text(msg, x) for x in c[1:]):
            nm_with_components(ctx, first, c, head, entry, where)
        else:
            fill_numeric(ctx, head, entry, where)
    elif vtype == "SN":
        structured_numeric(ctx, comps(msg, first), entry, where)
    elif vtype == "CQ":
        composite_quantity(ctx, obx, first, entry, where)
    elif vtype in TEXT_TYPES:
        # whole repetitions: a text value has no components, and leading blanks are layout
        entry.value = "\n".join(text_line(msg, r) for r in reps(msg, obx, 5))
        if _cut_short(msg, raw5):
            ctx.warnings.append(f"{where}: the text ends with the truncation character MSH-2 "
                                "declares: the sender cut it short, filed as received")
        if obx.raw(6).strip() and entry.value:
            text_quantity(ctx, entry, vtype, where)
        elif entry.value and entry.value[:1] in QUANTITY_STARTS and "\n" not in entry.value:
            text_with_unit(ctx, entry, vtype, where)
        if entry.value_num is None and entry.value and entry.value[:1] == "1":
            text_titre(ctx, entry, vtype, where)
    elif vtype in CODED_TYPES:
        fill_coded(ctx, obx, entry)
    elif vtype in DATE_TYPES:
        c = comps(msg, first)
        value = with_degree(text(msg, part(c, 1)), text(msg, part(c, 2)))
        try:
            entry.value = hl7_ts_to_iso(value, ctx.zone)
        except ValueError:
            sent = text(msg, part(c, 1)).strip()
            if not _DAY_FIRST.fullmatch(sent):
                raise NormalizationError("HL7_BAD_DATE", f"{where}: {BAD_TS_TEXT}",
                                         where) from None
            _day_first_date(ctx, entry, vtype, sent, where)
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


# A date written day first, as French LIS print it: '15/03/2024', '15-03-2024 08:30',
# '15.03.2024 08h30:12'; or to the month, month first ('03/2024': a last vaccination)
_DAY_FIRST = re.compile(r"(?:\d{1,2}([/.-])\d{1,2}\1|\d{2}[/.-])\d{4}"
                        r"(?:[ T]\d{1,2}[:hH]\d{2}(?::\d{2})?)?")


def _day_first_date(ctx: Ctx, entry: Entry, vtype: str, sent: str, where: str) -> None:
    """A DT, TS or DTM value written day first ('15/03/2024', '15/03/2024 08:30') or month
    first ('03/2024'): HL7 v2.5
    (2.A.21, 2.A.77) says YYYY[MM[DD[HHMM...]]]. The value is the lab's result (a date of
    last menstrual period, of a previous transfusion), not a time the message is filed by:
    it is filed as text (value type ST, the type sent in ``details['value_type_sent']``),
    said with the form expected. The date is not read: '03/04/2024' is the 3rd of April
    in France and March 4th from a sender set up in the United States. It failed the whole
    message (HL7_BAD_DATE), every other result lost. A value of no date form at all, or an
    impossible YYYYMMDD ('20240230'), still fails; so do the dates a message is filed by
    (MSH-7, PID-7, OBR-7, OBX-14). A DR with an end written so is text the same way
    (``_date_range``)."""
    entry.value, entry.value_type = sent, "ST"
    entry.details["value_type_sent"] = vtype
    ctx.warnings.append(f"{where}: value type {vtype} but the date is written day or month "
                        "first (DD/MM/YYYY, MM/YYYY), not as HL7 v2.5 writes it "
                        "(YYYYMMDD[HHMM[SS]]): filed as text, the date not read")


# OBX-2 types of a person (id ^ family ^ given... for XCN and CN; family ^ given... for XPN
# and PN) or an organization (XON), with where the family name is (0: an organization)
_NAME_TYPES = {"XCN": 2, "CN": 2, "XPN": 1, "PN": 1, "XON": 0}


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
        said = provider_id(msg, rep) if family_at == 2 else None
        if said:
            ids.append(said)
    entry.value = "\n".join(n for n in names if n) or None
    if ids:
        entry.details["value_ids"] = ids


def _date_range(ctx: Ctx, rep: str, entry: Entry, where: str) -> None:
    """DR (v2.5 2.A.20): range start ^ range end, each a TS (its own precision in
    subcomponents, v2.3 style): the period of a 24-hour urine collection. Kept as sent it
    was '20240314080000^20240315080000', no date any reader took for one. The value is the
    ISO 8601 interval 'start/end' ('..' for an open end, ISO 8601-2), each end read as a TS
    is (precision kept, the sender's zone when it gave none); ``details['period']`` holds
    the ends given. An end that is no date fails as a DT value does (HL7_BAD_DATE). An end
    written day first ('01/03/2024^15/03/2024': a French LIS's period of a treatment)
    makes the range text, as a day-first DT is (``_day_first_date``): it failed the whole
    message."""
    msg = ctx.msg
    c = comps(msg, rep)
    period: dict[str, str] = {}
    sent_ends: dict[str, str] = {}
    day_first = False
    for name, component in (("start", part(c, 1)), ("end", part(c, 2))):
        sent = text(msg, sub(msg, component, 1) if component else "").strip()
        if not sent:
            continue
        sent_ends[name] = sent
        try:
            period[name] = hl7_ts_to_iso(with_degree(sent, sub(msg, component, 2)), ctx.zone)
        except ValueError:
            if not _DAY_FIRST.fullmatch(sent):
                raise NormalizationError("HL7_BAD_DATE", f"{where}: the range {name} (DR): "
                                         f"{BAD_TS_TEXT}", where) from None
            day_first = True
    if day_first:
        _day_first_date(ctx, entry, "DR", _range_text(sent_ends), where)
    elif period:
        entry.value = f"{period.get('start', '..')}/{period.get('end', '..')}"
        entry.details["period"] = period


def _range_text(ends: dict[str, str]) -> str:
    """A DR filed as text: its ends as sent, 'start - end', '..' for an open end (as in the
    ISO 8601 interval a DR read is filed as): '01/03/2024 - 15/03/2024', '01/03/2024 - ..'.
    Kept with the sender's '^' it read as no period to anyone."""
    return f"{ends.get('start', '..')} - {ends.get('end', '..')}"


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
    if (not head or is_comparator(head)) and NUMBER.fullmatch(second.replace(",", ".")):
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
