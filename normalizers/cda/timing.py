"""When a medication is taken: PIVL/EIVL/SXPR times as frequency, phase and offset."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from normalizers.cda.quantities import quantity_text, range_text
from normalizers.cda.times import center_bounds, iso_value, width_end
from parsers.cda.model import EIVL_TS, IVL, PQ, SXPR_TS, TS, Value


def _flat_times(times: list[Value]) -> Iterator[Value]:
    """The effectiveTimes of a medication, the parts of a set expression among them."""
    for t in times:
        if isinstance(t, SXPR_TS):
            yield from _flat_times(t.comps)
        else:
            yield t


def united(times: list[Value], details: dict[str, Any]) -> None:
    """Times of a dosing united (SXPR_TS comps, or effectiveTimes, with set operator I, the
    default; never A, intersect, nor E, exclude): IHE PCC's 'matin et soir' is two PIVL_TS of
    one day at 08:00 and at 20:00, 'au lever et au coucher' two EIVL_TS. Each overwrote the
    one before: filed 'every 1 d' (half the dose) and 'HS' alone. Several periodic times of
    one period are that many times a period (details.times_of_day: their hours); several
    events are all kept ('WAKE, HS')."""
    flat = list(_flat_times(times))
    pivls = [t for t in flat if t.type == "PIVL_TS" and
             isinstance(getattr(t, "period", None), PQ) and t.period.value]
    if len(pivls) > 1 and all(t.operator not in ("A", "E") for t in pivls[1:]) and \
            len({(t.period.value.strip(), t.period.unit.strip()) for t in pivls}) == 1:
        hours = [h for h in (_phase_time(t) for t in pivls) if h]
        if len(set(hours)) == len(pivls):  # distinct times, not the same one said twice
            period = pivls[0].period
            daily = period.unit.strip() == "d" and period.value.strip() in ("1", "1.0")
            details["frequency"] = f"{len(pivls)} times a day" if daily else \
                f"{len(pivls)} times every {period.value.strip()} {period.unit.strip()}"
            details["times_of_day"] = sorted(hours)
    elif len(pivls) == 1 and getattr(pivls[0], "institution_specified", "") != "true" and \
            _phase_time(pivls[0]):
        # one periodic time with its phase (C-CDA R2.1 'once a day at 08:00': phase low
        # 198701010800, period 1 d): the hour was dropped, filed 'every 1 d' at any time
        details["times_of_day"] = [_phase_time(pivls[0])]
    eivls = [t for t in flat if isinstance(t, EIVL_TS) and t.event is not None and
             t.event.code]
    if len(eivls) > 1 and all(t.operator not in ("A", "E") for t in eivls[1:]):
        details["event"] = ", ".join(dict.fromkeys(t.event.code for t in eivls))


def _phase_time(pivl: Value) -> str | None:
    """The time of day a PIVL_TS's phase starts at ('08:00'), None without one."""
    phase = getattr(pivl, "phase", None)
    low = phase.low if isinstance(phase, IVL) else None
    text = low.value.strip() if isinstance(low, TS) and low.value else ""
    digits = text.split("+")[0].split("-")[0]
    if len(digits) >= 12 and digits[:12].isdigit():
        return f"{digits[8:10]}:{digits[10:12]}"
    return None


_HOURS = {"h": Decimal(1), "d": Decimal(24)}  # UCUM units a daily frequency is given in


def _times_a_day(period: PQ) -> str | None:
    """A PIVL_TS with institutionSpecified="true" is a frequency, not an interval (HL7 V3
    data types: '3 times a day' against 'every 8 hours'): C-CDA writes twice a day as period
    12 h so, and it was read 'every 12 h'. None when it is no whole count a day."""
    try:
        hours = Decimal(period.value.strip()) * _HOURS[period.unit.strip() or "h"]
    except (KeyError, ArithmeticError, ValueError):
        return None
    if hours <= 0 or Decimal(24) % hours:
        return None
    times = int(Decimal(24) / hours)
    return "once a day" if times == 1 else f"{times} times a day"


def dose_range(dose: IVL) -> str | None:
    """A dose given as a range ('1 to 2 tablets': IVL_PQ low/high, or a center) with its
    unit: the bounds' unit, else the one the IVL element carries (CDA-CH: unit="mg" on
    doseQuantity, center value="20"). '2-2' of nothing was filed: tablets or mg?"""
    text = range_text(dose)
    if not text:
        return None
    unit = next((b.unit for b in (dose.low, dose.high, dose.center)
                 if isinstance(b, PQ) and b.unit and b.unit != "1"), "") or \
        (dose.unit if dose.unit != "1" else "")
    return f"{text} {unit}" if unit and not text.endswith(unit) else text


def read_timing(t: Value, details: dict[str, Any], warnings: list[str] | None = None) -> None:
    """One effectiveTime of a medication into ``details``: its period (low, high; 'for 2 d'
    as duration), frequency (PIVL_TS), timing event (EIVL_TS), and the parts of a set
    expression (SXPR_TS: IHE PCC / CI-SIS structured posology 'every 8 h from the 1st for
    2 days', whose frequency and duration were lost). A period given as its start and width
    ('from the 1st for 7 d') has its end computed (``width_end``; ``warnings`` gets a width
    that is no time)."""
    if isinstance(t, SXPR_TS):
        for comp in t.comps:
            read_timing(comp, details, warnings)
    elif isinstance(t, IVL):
        for name in ("low", "high"):
            v = getattr(t, name)
            if isinstance(v, TS) and v.value:
                details[f"period_{name}"] = iso_value(v.value)
        if isinstance(t.width, PQ) and t.width.value:
            details["duration"] = quantity_text(t.width)
            end = width_end(t, warnings if warnings is not None else [])
            if end:
                details["period_high"] = end
            bounds = center_bounds(t, warnings if warnings is not None else [])
            if bounds:  # 'around the 10th, over 6 d': its start and end
                details["period_low"], details["period_high"] = bounds
    elif t.type == "PIVL_TS":
        period = getattr(t, "period", None)
        if isinstance(period, PQ) and period.value:
            details["frequency"] = (_times_a_day(period) if
                                    getattr(t, "institution_specified", "") == "true"
                                    else None) or f"every {period.value} {period.unit}".strip()
        elif isinstance(period, IVL) and range_text(period):  # every 4 to 6 h
            bound = next((b for b in (period.low, period.high) if isinstance(b, PQ)),
                         None)
            unit = bound.unit if bound is not None and bound.unit != "1" else ""
            details["frequency"] = f"every {range_text(period)} {unit}".strip()
    elif isinstance(t, EIVL_TS) and t.event is not None and t.event.code:
        details["event"] = t.event.code  # HL7 TimingEvent: HS, ACM, PCV...
        offset = _offset_text(t.offset) if t.offset is not None else None
        if offset:  # '30 min before meals' (offset 30 min of AC) read as 'before meals'
            details["event_offset"] = offset


def _offset_text(offset: IVL) -> str | None:
    """The offset of an EIVL_TS from its event as sent ('30 min', '-1 h', '30-60 min'):
    its bounds, else its centre or point value, with their unit; None when it says none."""
    bounds = [b for b in (offset.low, offset.high) if isinstance(b, PQ) and b.value.strip()]
    if not bounds:
        point = offset.center if isinstance(offset.center, PQ) else \
            PQ(type="PQ", value=offset.value, unit=offset.unit) if offset.value else None
        bounds = [point] if point is not None and point.value.strip() else []
    if not bounds:
        return None
    unit = next((b.unit.strip() for b in bounds if b.unit.strip() not in ("", "1")), "")
    text = "-".join(dict.fromkeys(b.value.strip() for b in bounds))
    return f"{text} {unit}".strip()[:40]
