"""Our ISO 8601 dates and times (precision kept) as FHIR dateTime, date and instant values."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Any

# FHIR R4 primitive formats (what the validators check)
_FHIR_DATETIME = re.compile(
    r"([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]"
    r"|3[0-1])(T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]{1,9})?)?)?"
    r"(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00)?)?)?")
_FHIR_DATE = re.compile(
    r"([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2]"
    r"[0-9]|3[0-1]))?)?")
_OURS = re.compile(r"(\d{4}(?:-\d{2}(?:-\d{2})?)?)"  # the date, as precise as it is
                   r"(?:T(\d{2})(?::(\d{2})(?::(\d{2})(\.\d+)?)?)?)?"  # the time
                   r"(Z|[+-]\d{2}:?\d{2})?")


def fhir_datetime(value: str | None) -> str | None:
    """Our ISO 8601 (precision kept) -> a FHIR dateTime, never more precise than ours.

    '2025', '2025-03', '2025-03-19' unchanged; '2025-03-19T08:30+01:00' ->
    '2025-03-19T08:30:00+01:00' (FHIR requires seconds and lets them be zero-filled);
    a time to the hour, or without offset, -> its date. None when it is not a date at all."""
    if not value:
        return None
    m = _OURS.fullmatch(value.strip())
    if m is None:
        return None
    day, hour, minute, second, frac, offset = m.groups()
    if not _FHIR_DATETIME.fullmatch(day) or not _real_day(day):
        return None
    out = day
    if hour is not None and minute is not None and offset:
        if offset != "Z" and ":" not in offset:
            offset = f"{offset[:3]}:{offset[3:]}"
        out = f"{day}T{hour}:{minute}:{second or '00'}{(frac or '')[:7]}{offset}"
        if not _FHIR_DATETIME.fullmatch(out) or int(hour) > 23 or int(minute) > 59 \
                or int(second or 0) > 59:
            return day  # a time that cannot be: the date alone is what we can vouch for
    return out


def _real_day(day: str) -> bool:
    """'2025-02-30' is no day (the FHIR pattern alone lets it through)."""
    if len(day) < 10:
        return True
    try:
        date.fromisoformat(day)
    except ValueError:
        return False
    return True


def fhir_instant(value: str | None) -> str | None:
    """A FHIR instant (full time with offset), or None when we hold less than that."""
    out = fhir_datetime(value)
    return out if out and "T" in out else None


def fhir_date(value: str | None) -> str | None:
    if not value:
        return None
    value = value.strip()
    return value if _FHIR_DATE.fullmatch(value) and _real_day(value) else None


def instant_of(moment: Any) -> str | None:  # noqa: ANN401
    """A stored timestamp (datetime, naive = UTC as SQLite gives them, or ISO text)."""
    if isinstance(moment, datetime):
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.isoformat()
    if isinstance(moment, str):
        try:
            return instant_of(datetime.fromisoformat(moment.replace("Z", "+00:00")))
        except ValueError:
            return None
    return None
