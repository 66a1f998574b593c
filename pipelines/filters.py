"""An admin's filter as typed (CLI options, Prefect flow parameters) -> an ImportFilter.

One place parses times and patient references, so `imports list`, `stats`, `rerun` and the
`rerun_imports` flow select exactly the same rows for the same words.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import Engine

from dossiers.patients import find_by_reference
from pipelines.ledger import (
    DEPOSITED,
    DISCARDED,
    DUPLICATE,
    FAILED,
    HELD,
    PROCESSING,
    QUARANTINED,
    RECEIVED,
    SPLIT,
    ImportFilter,
    now,
)

if TYPE_CHECKING:
    from pipelines.settings import Settings

# Every status a ledger row can have (an attempt's 'retry' is no row's): a status filter
# outside them (a typo, 'quarantine', 'error') would select nothing and look like good news.
STATUSES = (RECEIVED, PROCESSING, DEPOSITED, DUPLICATE, FAILED, QUARANTINED, HELD, SPLIT,
            DISCARDED)
_RELATIVE = re.compile(r"^(\d+)\s*([mhdw])$")
# '2026-11-25T08:00 01:00': the '+' of an offset sent unencoded in a URL query
# (?since=2026-11-25T08:00+01:00) arrives as a space; no other input puts a space there
_PLUS_AS_SPACE = re.compile(r"^(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?) "
                            r"(\d{2}(?::?\d{2})?)$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


class FilterError(ValueError):
    """A filter value that cannot be understood: one line for the admin."""


def parse_time(text: str | datetime | None) -> datetime | None:
    """'2026-11-25', '2026-11-25T08:00', '2026-11-25T08:00+01:00' (no zone: UTC), or a
    duration back from now: '30m', '24h', '7d', '2w'."""
    if text is None or isinstance(text, datetime):
        return _utc(text) if text is not None else None
    value = _PLUS_AS_SPACE.sub(r"\1+\2", text.strip())
    if m := _RELATIVE.match(value.lower()):
        return now() - timedelta(**{_UNITS[m.group(2)]: int(m.group(1))})
    try:
        if len(value) == 10:
            d = date.fromisoformat(value)
            return datetime(d.year, d.month, d.day, tzinfo=UTC)
        return _utc(datetime.fromisoformat(value.replace("Z", "+00:00")))
    except ValueError:
        raise FilterError(f"not a date, time or duration: {value!r} (e.g. 2026-11-25, "
                          "2026-11-25T08:00+01:00, 24h, 7d)") from None


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def build_filter(engine: Engine, *, status: str | None = None, source: str | None = None,
                 channel: str | None = None, stage: str | None = None,
                 code: str | None = None, since: str | datetime | None = None,
                 until: str | datetime | None = None,
                 patient: str | int | None = None,
                 warnings: bool | None = None,
                 file: str | None = None, settings: Settings | None = None,
                 warning: str | None = None) -> ImportFilter:
    """The ImportFilter for these words; ``patient`` is an INS or a dossier id;
    ``warnings``: only the imports whose outcome carries warnings; ``file``: the file name
    it came under (a sender's ticket names it), '*' and '?' as in a shell; ``warning``: only
    the imports a warning of which names this code (a document filed unread). With the
    ``settings``, ``source`` also selects what came in under the source's former ids
    (``[renamed_sources]``)."""
    patient_id = None
    if patient is not None and str(patient).strip():
        with engine.connect() as conn:
            found = find_by_reference(conn, str(patient))
        if found is None:
            raise FilterError(f"no dossier {patient}")
        patient_id = found.id
    start, end = parse_time(since), parse_time(until)
    if start is not None and end is not None and end <= start:
        # swapped, or '7d' for --until: a window that holds nothing, shown as no failure
        raise FilterError(f"until ({end.isoformat(timespec='minutes')}) is not after "
                          f"since ({start.isoformat(timespec='minutes')}): nothing was "
                          "received in between")
    return ImportFilter(status=_status(status), source=source or None,
                        channel=_word(channel), stage=_word(stage),
                        error_code=code.strip().upper() if code and code.strip() else None,
                        since=start, until=end,
                        patient_id=patient_id, warnings=True if warnings else None,
                        file_name=file.strip() if file and file.strip() else None,
                        warning_code=warning.strip().upper() if warning and warning.strip()
                        else None,
                        source_aliases=_former_ids(settings, source) if source else ())


def _status(text: str | None) -> str | None:
    """A status as the ledger writes it ('Failed ' is 'failed'); one it never writes is
    refused, with the ones there are."""
    value = _word(text)
    if value is not None and value not in STATUSES:
        raise FilterError(f"unknown status {text.strip()!r} (one of: {', '.join(STATUSES)})")
    return value


def _word(text: str | None) -> str | None:
    """A channel or stage as the ledger writes them: lower case, no blanks around."""
    return (text.strip().lower() or None) if text else None


def _former_ids(settings: Settings | None, source: str) -> tuple[str, ...]:
    """The ids that ``source`` had before its renames (old -> new -> newer)."""
    if settings is None:
        return ()
    return tuple(sorted(old for old in settings.renamed_sources
                        if old != source and settings.current_source(old) == source))
