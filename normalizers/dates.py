"""HL7v2 TS/DTM/DT values to ISO 8601, keeping the precision the sender gave.

Why keep precision: '2024-03' (a month) is not '2024-03-01', and a birth year is not a birth
date; inventing digits would make later deduplication and display lie. A value with a time
gets an offset: the one sent, else the one of ``default_tz`` (Europe/Paris) at that local time,
which is what French senders mean when they send none (summer time included), or the fixed
offset of a sender whose message time (MSH-7) says it is elsewhere (``sender_zone``).
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from functools import cache, lru_cache
from zoneinfo import ZoneInfo

from normalizers.tabledata import column_map

_TS = re.compile(
    r"(\d{4})(?:(\d{2})(?:(\d{2})(?:(\d{2})(?:(\d{2})(?:(\d{2})(?:\.(\d{1,4}))?)?)?)?)?)?"
    r"(?:([+-])(\d{2})(\d{2}))?"
)


# ISO 8601's extended form ('2024-03-15T08:10:00+01:00'), which some senders (FHIR-minded
# engines, spreadsheets exported as HL7) write in TS fields: not HL7's form, but one reading
# only. Read as the HL7 value it spells; other forms ('15/03/2024': day or month first?)
# stay refused.
_ISO = re.compile(
    r"(\d{4})-(\d{2})(?:-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?)?"
    r"(Z|[+-]\d{2}(?::?\d{2})?)?"
)


def _from_iso(value: str) -> str | None:
    """The HL7 TS that ISO 8601 extended ``value`` spells ('2024-03-15T08:10+01:00' ->
    '202403150810+0100'), None when it is not that form."""
    m = _ISO.fullmatch(value)
    if m is None:
        return None
    y, mo, d, h, mi, s, frac, zone = m.groups()
    out = y + mo + (d or "") + (h or "") + (mi or "") + (s or "") + (f".{frac[:4]}" if frac else "")
    if zone and h:
        if zone == "Z":
            zone = "+0000"
        zone = zone.replace(":", "")
        out += zone if len(zone) == 5 else zone + "00"
    return out


@cache
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


@lru_cache(maxsize=4096)
def _offset(tz: str, y: int, mo: int, d: int, h: int, mi: int, fold: int = 0) -> str:
    """'+01:00' style offset of a local wall time in ``tz`` (cached: many values per day);
    ``fold`` 1: of its second occurrence, in the hour repeated when summer time ends."""
    off = datetime(y, mo, d, h, mi, tzinfo=_zone(tz), fold=fold).utcoffset() or timedelta(0)
    return _fmt_offset(int(off.total_seconds()) // 60)


def _fmt_offset(minutes: int) -> str:
    sign = "+" if minutes >= 0 else "-"
    minutes = abs(minutes)
    return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"


PARIS = "Europe/Paris"


@lru_cache(maxsize=256)
def sender_zone(msh7: str) -> str:
    """The zone of a sender's times sent without offset, from its message time (MSH-7).

    HL7 v2.5 2.A.22: a time without offset is in the sender's local time zone. French
    senders mean Paris's (``PARIS``, summer time included), and so does a MSH-7 without
    offset or with Paris's offset at that instant. A MSH-7 with another offset ('-0400' of a
    US lab, '+0400' of a lab in La Réunion) says the sender is elsewhere: its other times
    are read at that offset, not an hour or ten away at Paris's. Not '+0000': that is as
    often a server clock kept in UTC as a sender in a UTC zone, and says nothing sure of the
    wall times its application writes."""
    m = _TS.fullmatch(msh7.split("^", 1)[0].strip())
    if m is None or m.group(8) is None or m.group(4) is None:
        return PARIS
    sent = f"{m.group(8)}{m.group(9)}:{m.group(10)}"
    if sent[1:] == "00:00":
        return PARIS
    wall = (int(m.group(1)), int(m.group(2)), int(m.group(3)), int(m.group(4)),
            int(m.group(5) or 0))
    try:
        # both offsets of a wall time in the hour repeated when summer time ends (02:30 on
        # the last Sunday of October is +02:00, then +01:00): the second was taken for a
        # sender in a fixed +01:00 zone, and the other times of the message, an order
        # drawn at 01:45 (+02:00), were filed an hour late
        here = {_offset(PARIS, *wall), _offset(PARIS, *wall, fold=1)}
    except ValueError:
        return PARIS
    return PARIS if sent in here else sent


def is_hl7_ts(value: str) -> bool:
    """Whether ``value`` is an HL7 TS/DTM as ``sender_zone`` reads one: HL7's own form
    (YYYY[MM[DD[HH[MM[SS[.S]]]]]][+/-ZZZZ], a date and time that exist; the v2.3 form
    'value^precision' too). ISO 8601's extended form is not: ``hl7_ts_to_iso`` reads it as a
    value, but its offset says nothing of the sender's zone here."""
    value = value.split("^", 1)[0].strip()
    if _TS.fullmatch(value) is None:
        return False
    try:
        hl7_ts_to_iso(value)
    except ValueError:
        return False
    return True


# What a sender is told when a date/time is refused (never the value itself)
BAD_TS_TEXT = ("not a valid HL7 date/time (YYYY[MM[DD[HH[MM[SS[.S]]]]]][+/-ZZZZ] expected, "
               "a date and time that exist)")


@lru_cache(maxsize=8192)
def hl7_ts_to_iso(ts: str, default_tz: str | None = "Europe/Paris") -> str:
    """'202403151230' -> '2024-03-15T12:30+01:00'; '2024' -> '2024'; '20240315' -> '2024-03-15'.

    Accepts YYYY[MM[DD[HH[MM[SS[.S{1,4}]]]]]][+/-ZZZZ], the v2.3 TS form 'value^precision'
    (the value cut to the precision, ``to_precision``) and ISO 8601's extended form
    ('2024-03-15T08:10:00Z', see ``_ISO``); results are cached, values repeat a lot. Raises
    ValueError for
    anything else, including impossible dates (Feb 30), hours > 23 and offsets beyond +/-14:00.
    ``default_tz=None`` leaves a time without offset when the sender gave none; a fixed
    offset ('+04:00') is used as is.
    """
    caret = ts.find("^")
    if caret != -1:
        ts = to_precision(ts[:caret].strip(), ts[caret + 1:])
    ts = ts.strip()
    m = _TS.fullmatch(ts)
    if m is None and "-" in ts[4:5]:
        m = _TS.fullmatch(_from_iso(ts) or "")
    if m is None:
        raise ValueError("not an HL7 date/time")
    ys, mos, ds, hs, mis, ss, frac, sign, oh, om = m.groups()
    y = int(ys)
    if y < 1:
        raise ValueError("year out of range")
    if mos is None:
        return ys
    mo = int(mos)
    if not 1 <= mo <= 12:
        raise ValueError("month out of range")
    if ds is None:
        return f"{ys}-{mos}"
    date(y, mo, int(ds))  # raises ValueError for Feb 30 and friends
    day = f"{ys}-{mos}-{ds}"
    if hs is None:
        return day  # a date has no time zone: any offset sent with it is dropped
    h = int(hs)
    mi = int(mis) if mis is not None else 0
    if h > 23 or mi > 59 or (ss is not None and int(ss) > 59):
        raise ValueError("time out of range")
    if sign is not None:
        if int(oh) > 14 or int(om) > 59:
            raise ValueError("offset out of range")
        offset = f"{sign}{oh}:{om}"
    elif default_tz:
        # a zone name ('Europe/Paris'), or a fixed offset ('-04:00': see sender_zone)
        offset = default_tz if default_tz[0] in "+-" else _offset(default_tz, y, mo, int(ds), h,
                                                                   mi)
    else:
        offset = ""
    out = f"{day}T{hs}"
    if mis is not None:
        out += f":{mis}"
        if ss is not None:
            out += f":{ss}"
            if frac is not None:
                out += f".{frac}"
    return out + offset


def to_precision(ts: str, degree: str) -> str:
    """An HL7 TS cut to the degree of precision its sender gave (TS.2, HL7 table 0529,
    ``tables/ts_precision.csv``): '20240315000000^D' is the 15th of March, and
    '202403151000^H' ten o'clock, not midnight or 10:00 to the minute. v2.3.1 LIS pad every
    time to the second with zeros and say the precision beside it; read without it, a day
    was filed as midnight, a time no one measured (and one dedupe compared to the minute).
    The offset stays with a time (hour or finer) and goes with a date, as a date has none.
    A degree we do not know, or finer than the value, leaves the value as sent: precision is
    never invented."""
    digits = _precision_digits().get(degree.strip().upper())
    m = _TS.fullmatch(ts)
    if digits is None or m is None:
        return ts
    sent = "".join(g or "" for g in m.groups()[:6])
    if len(sent) < digits or (len(sent) == digits and m.group(7) is None):
        return ts
    out = sent[:digits]
    if m.group(8) is not None and digits >= 10:
        out += m.group(8) + m.group(9) + m.group(10)
    return out


@cache
def _precision_digits() -> dict[str, int]:
    return {code: int(n) for code, n in column_map("ts_precision", "code", "digits").items()}


_TM = re.compile(r"(\d{2})(?:(\d{2})(?:(\d{2})(?:\.(\d{1,4}))?)?)?(?:([+-])(\d{2})(\d{2}))?")


def hl7_tm_to_iso(tm: str) -> str:
    """An HL7 TM ('HH[MM[SS[.S{1,4}]]][+/-ZZZZ]', v2.5 2.A.75) as ISO 8601 time: '0830' ->
    '08:30', '083015.5+0100' -> '08:30:15.5+01:00'. Precision kept, no offset invented: a
    time of day has no date to read a zone's offset at. Raises ValueError for anything
    else (hours > 23, minutes or seconds > 59, offsets beyond +/-14:00)."""
    m = _TM.fullmatch(tm.strip())
    if m is None:
        raise ValueError("not an HL7 time")
    hs, mis, ss, frac, sign, oh, om = m.groups()
    if int(hs) > 23 or (mis is not None and int(mis) > 59) or (ss is not None and int(ss) > 59):
        raise ValueError("time out of range")
    out = hs + (f":{mis}" if mis is not None else "")  # 'hh' alone: ISO reduced precision
    if ss is not None:
        out += f":{ss}" + (f".{frac}" if frac is not None else "")
    if sign is not None:
        if int(oh) > 14 or int(om) > 59:
            raise ValueError("offset out of range")
        out += f"{sign}{oh}:{om}"
    return out

