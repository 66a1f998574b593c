"""Senders gone silent: when each source last sent something, against its ``max_silence``.

Why: a laboratory's MLLP feed that stops at 2 a.m. raises no error anywhere (nothing arrives,
so nothing fails); only the absence says it. The ledger already knows when each source last
sent (the newest ``received_at`` of its rows), so no table or migration is needed: one
GROUP BY per look. An admin's edit (channel 'edit') is no sign of life of the sender and is
not counted; rows received under a source's former id (``[renamed_sources]``) count for the
id it has now.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine, func, select

from dossiers.schema import imports
from pipelines.settings import Settings


@dataclass(frozen=True, slots=True)
class Silence:
    """A source silent longer than it may be: since ``last_received`` (None: never)."""

    source: str
    max_silence: float  # seconds allowed
    last_received: datetime | None
    silent_for: float | None  # seconds since last_received; None when it never sent

    def as_dict(self) -> dict:
        return {"source": self.source, "max_silence_seconds": self.max_silence,
                "last_received": (self.last_received.isoformat()
                                  if self.last_received is not None else None),
                "silent_seconds": (round(self.silent_for) if self.silent_for is not None
                                   else None)}

    def line(self) -> str:
        """One line for the operator (no patient data: a source id and times)."""
        allowed = say_duration(self.max_silence)
        if self.last_received is None:
            return f"{self.source}: nothing ever received (max_silence {allowed})"
        return (f"{self.source}: nothing received for {say_duration(self.silent_for or 0)} "
                f"(max_silence {allowed}; last at "
                f"{self.last_received.isoformat(timespec='seconds')})")


def _utc(value: datetime) -> datetime:
    """SQLite gives ledger times back naive (stored in UTC), PostgreSQL with their offset."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def last_received(engine: Engine, settings: Settings | None = None) -> dict[str, datetime]:
    """{source id: when it last sent anything}, every source the ledger knows, under the id
    it has now (renamed sources folded in)."""
    q = (select(imports.c.source, func.max(imports.c.received_at))
         .where(imports.c.channel != "edit").group_by(imports.c.source))
    found: dict[str, datetime] = {}
    with engine.connect() as conn:
        for source, last in conn.execute(q):
            if last is None:
                continue
            current = settings.current_source(source) if settings is not None else source
            last = _utc(last)
            if current not in found or last > found[current]:
                found[current] = last
    return found


def silent_sources(engine: Engine, settings: Settings, at: datetime | None = None,
                   last: dict[str, datetime] | None = None) -> list[Silence]:
    """The sources with a ``max_silence`` that have sent nothing for longer (or never),
    the longest silence first, the never-heard last. ``last``: ``last_received``'s answer
    when the caller has it already."""
    if not settings.max_silence:
        return []
    at = _utc(at) if at is not None else datetime.now(UTC)
    last = last_received(engine, settings) if last is None else last
    silent = []
    for source, allowed in settings.max_silence.items():
        when = last.get(settings.current_source(source))
        if when is None:
            silent.append(Silence(source, allowed, None, None))
        elif (quiet := (at - when).total_seconds()) > allowed:
            silent.append(Silence(source, allowed, when, quiet))
    return sorted(silent, key=lambda s: (s.silent_for is None, -(s.silent_for or 0),
                                         s.source))


def say_duration(seconds: float) -> str:
    """'45s', '12m', '3h12m', '2d4h': as an operator reads a silence or a wait."""
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m"
    if s < 86400:
        h, m = divmod(s // 60, 60)
        return f"{h}h{m:02d}m" if m else f"{h}h"
    d, h = divmod(s // 3600, 24)
    return f"{d}d{h}h" if h else f"{d}d"
