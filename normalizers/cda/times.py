"""TS readers: the zone of a document's times sent without offset and ISO 8601 times."""

from __future__ import annotations

import calendar
from contextvars import ContextVar
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation

from normalizers.cda.common import Ctx
from normalizers.cda.tables import time_units
from normalizers.dates import BAD_TS_TEXT, PARIS, hl7_ts_to_iso, sender_zone
from parsers.cda.model import IVL, PQ, TS, Document, Value

# The zone of the times the document being read writes without offset ('20240315101500'):
# HL7 V3 TS, as HL7 v2.5 2.A.22, reads them in the sender's local time. Set for the length of
# one normalize_cda (``document_zone``); Paris's elsewhere (a CDA carried in HL7v2).
ZONE: ContextVar[str] = ContextVar("cda_zone", default=PARIS)


def document_zone(doc: Document, declared: str | None = None) -> str:
    """The zone of a document's times sent without offset: the one its source declared,
    else the offset of its own effectiveTime when that says the sender is not in Paris
    (``sender_zone``, as MSH-7 for HL7v2: a US EHR's '20240315143200-0500'; not '+0100',
    which French senders write in any season), else Paris's.
    A C-CDA export writes the document's time with its offset and its vital signs and results
    without: read at Paris's offset they were filed five to ten hours off, and never met the
    same result received by HL7v2 (dedupe level 4)."""
    if declared:
        return declared
    ts = doc.header.effective_time
    if not isinstance(ts, TS) or not ts.value or ts.value.strip()[-5:] in _PARIS_OFFSETS:
        return PARIS
    return sender_zone(ts.value)


# Offsets that say nothing against Paris whatever the season: its winter one (French senders
# write '+0100' all year round, CI-SIS examples included) and UTC (a server clock). Its
# summer '+0200' is Paris's in summer (``sender_zone``), not in winter (Athens, Helsinki).
_PARIS_OFFSETS = frozenset({"+0100", "+0000", "-0000"})


def effective_time(value: Value | None, ctx: Ctx) -> str:
    if isinstance(value, TS) and value.value:
        return iso_value(value.value, ctx.warnings, value.path)
    if isinstance(value, IVL):
        if value.value:
            return iso_value(value.value, ctx.warnings, value.path)
        bounds = center_bounds(value, [])  # its width's warnings are set_period_end's
        if bounds:
            return bounds[0]
        for v in (value.low, value.center, value.high):
            if isinstance(v, TS) and v.value:
                return iso_value(v.value, ctx.warnings, v.path)
    return ""


def iso_time(ts: TS | None, warnings: list[str], where: str) -> str | None:
    if ts is None or not ts.value:
        return None
    return iso_value(ts.value, warnings, where) or None


def iso_value(value: str, warnings: list[str] | None = None, where: str = "") -> str:
    try:
        return hl7_ts_to_iso(value, ZONE.get())
    except ValueError:
        if warnings is not None:
            warnings.append(f"CDA_BAD_DATE: {where}: {BAD_TS_TEXT}, ignored")
        return ""


def center_bounds(period: IVL, warnings: list[str]) -> tuple[str, str] | None:
    """The start and end of an interval given as its center and width, no low nor high
    (IVL_TS center + width: 'around 10:00, over 2 h'), as ISO at the center's precision:
    center - width/2 and center + width/2. It was read as its center alone, the period lost.
    None when there is no such interval, when the width is no time (warning, as
    ``width_end``), or when half of it is finer than the center (a day's center, 1 d wide)."""
    center, width = period.center, period.width
    if not isinstance(center, TS) or not center.value or not isinstance(width, PQ) or \
            not width.value.strip() or any(isinstance(b, TS) and b.value
                                           for b in (period.low, period.high)):
        return None
    how = _width_unit(width, warnings)
    if how is None:
        return None
    middle = iso_value(center.value, warnings, center.path)
    if not middle:
        return None
    half = how[1] / 2
    low, high = _add_width(middle, how[0], -half), _add_width(middle, how[0], half)
    return (low, high) if low and high else None


def computed_end(period: IVL, warnings: list[str]) -> str | None:
    """The end an interval with no high says through its width: low + width (``width_end``)
    or center + width/2 (``center_bounds``), as ISO; None for any other interval, or a width
    that says no time (warned there)."""
    end = width_end(period, warnings)
    if end:
        return end
    bounds = center_bounds(period, warnings)
    return bounds[1] if bounds else None


def end_of(period: IVL, warnings: list[str], dated: list[str] | None = None) -> str | None:
    """When an interval ended, as ISO: its high, else the end its width says
    (``computed_end``: a specimen collected 'around 10:00 over 2 h' ended at 11:00, it was
    read as its center), else its low or center (when it began is all that is said), else
    its own value. ``warnings``: the width's; ``dated``: where a bad date is said (None: it
    is ignored, as the reader did)."""
    high = period.high
    if isinstance(high, TS) and high.value:
        return iso_value(high.value, dated, high.path) or None
    end = computed_end(period, warnings)
    if end:
        return end
    for bound in (period.low, period.center):
        if isinstance(bound, TS) and bound.value:
            return iso_value(bound.value, dated, bound.path) or None
    return (iso_value(period.value, dated, period.path) or None) if period.value else None


def _width_unit(width: PQ, warnings: list[str]) -> tuple[str, Decimal] | None:
    """How to add a width (tables/ucum_time_units.csv's 'add') and its amount in that unit
    (seconds or months); None, with a warning, when the width is no duration in a unit of
    time; a unit of time that is not UCUM's ('hr', 'j') is read, with a warning."""
    unit = width.unit.strip() or "1"
    how = time_units().get(unit)
    try:
        amount = Decimal(width.value.strip())
    except InvalidOperation:
        amount = None
    if how is None or amount is None or not amount.is_finite() or amount < 0:
        warnings.append(f"CDA_WIDTH_NOT_TIME: {width.path}: width {width.value.strip()[:20]!r} "
                        f"{unit[:20]!r} is not a duration in a UCUM unit of time (s, min, h, "
                        "d, wk, mo, a): the period's end is not known")
        return None
    if not how[2]:  # 'hr', 'j': a time all the same, said
        warnings.append(f"CDA_WIDTH_UNIT_NOT_UCUM: {width.path}: width unit {unit!r} is not "
                        "UCUM: read as the unit of time it names")
    return how[0], amount * how[1]


def width_end(period: IVL, warnings: list[str]) -> str | None:
    """The end of an interval given as its start and its width, no high (IVL_TS low +
    width: 'from 08:00 for 24 h', a 24-hour urine collection; a medication 'for 7 d'), as
    ISO at the start's precision: the width was not read and the period had no end. None
    when there is no such interval, or when the width says no time (its unit is no unit of
    time: a warning, the period is left open) or is finer than the start (a day plus 8 h).
    A unit of time senders write that is not UCUM's ('hr', the French 'j') is read, with a
    warning."""
    low, width = period.low, period.width
    if not isinstance(low, TS) or not low.value or not isinstance(width, PQ) or \
            not width.value.strip() or (isinstance(period.high, TS) and period.high.value):
        return None
    how = _width_unit(width, warnings)
    if how is None:
        return None
    start = iso_value(low.value, warnings, low.path)
    return _add_width(start, *how) if start else None


def _add_width(start: str, add: str, amount: Decimal) -> str | None:
    """ISO ``start`` plus ``amount`` seconds or calendar months, at the start's precision;
    None when the start is coarser than a day or the amount finer than the start."""
    if len(start) == 10:  # a day: whole days or months only
        day = date.fromisoformat(start)
        if add == "months":
            return _plus_months(day, amount).isoformat() if amount == amount.to_integral() \
                else None
        days, rest = divmod(amount, 86400)
        return (day + timedelta(days=int(days))).isoformat() if not rest else None
    if len(start) < 10:
        return None
    precision = _precision(start)
    moment = datetime.fromisoformat(start if precision != "hours" else
                                    start[:13] + ":00" + start[13:])
    if add == "months":
        if amount != amount.to_integral():
            return None
        end = datetime.combine(_plus_months(moment.date(), amount), moment.timetz())
    else:
        end = moment + timedelta(seconds=float(amount))
    text = end.isoformat(timespec="minutes" if precision == "hours" else precision)
    return text[:13] + text[16:] if precision == "hours" else text


def _precision(start: str) -> str:
    """The isoformat timespec of an ISO date-time as hl7_ts_to_iso writes it."""
    clock = start[11:].split("+")[0].split("-")[0].rstrip("Z")
    if "." in clock:
        return "microseconds" if len(clock.split(".")[1]) > 3 else "milliseconds"
    return {2: "hours", 5: "minutes"}.get(len(clock), "seconds")


def _plus_months(day: date, months: Decimal) -> date:
    """``day`` plus whole calendar months, the 31st becoming the month's last day."""
    total = day.year * 12 + day.month - 1 + int(months)
    year, month = divmod(total, 12)
    month += 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))
