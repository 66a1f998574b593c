"""The console's dashboard figures: imports per source and status over time, and the backlog.

Counted by the database (GROUP BY over an hour or day bucket of ``received_at``), never by
loading ledger rows: a ledger of millions of rows is summed in one query per chart. Buckets
are UTC; SQLite stores naive UTC text, PostgreSQL a timestamptz (converted to UTC first).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, and_, func, literal, not_, select

from dossiers.schema import imports
from pipelines.ledger import PROCESSING, RECEIVED


def _bucket(engine: Engine, hourly: bool):  # noqa: ANN202
    """'YYYY-MM-DDTHH' (hourly) or 'YYYY-MM-DD' (daily) of received_at, in UTC."""
    if engine.dialect.name == "postgresql":
        fmt = 'YYYY-MM-DD"T"HH24' if hourly else "YYYY-MM-DD"
        return func.to_char(func.timezone(literal("UTC"), imports.c.received_at), fmt)
    return func.replace(func.substr(imports.c.received_at, 1, 13 if hourly else 10), " ", "T")


def timeline(engine: Engine, *, hourly: bool, now: datetime | None = None,
             source: str | None = None) -> dict:
    """{"labels": [...], "series": {status: [count per bucket]}, "sources": {source: n}}
    over the last 24 hours (hourly) or the last 30 days (daily), empty buckets included."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    if hourly:
        end = now.replace(minute=0, second=0, microsecond=0)
        keys = [(end - timedelta(hours=i)).strftime("%Y-%m-%dT%H") for i in range(23, -1, -1)]
        start = end - timedelta(hours=23)
    else:
        end = now.replace(hour=0, minute=0, second=0, microsecond=0)
        keys = [(end - timedelta(days=i)).strftime("%Y-%m-%d") for i in range(29, -1, -1)]
        start = end - timedelta(days=29)
    bucket = _bucket(engine, hourly).label("bucket")
    q = (select(bucket, imports.c.source, imports.c.status, func.count())
         .where(imports.c.received_at >= start)
         .group_by(bucket, imports.c.source, imports.c.status))
    series: dict[str, list[int]] = {}
    sources: dict[str, int] = {}
    index = {k: i for i, k in enumerate(keys)}
    with engine.connect() as conn:
        for key, src, status, n in conn.execute(q):
            sources[src] = sources.get(src, 0) + n
            if source and src != source:
                continue
            i = index.get(key)
            if i is None:
                continue
            series.setdefault(status, [0] * len(keys))[i] += n
    labels = [k[11:13] + "h" if hourly else k[5:] for k in keys]
    return {"labels": labels, "keys": keys, "series": dict(sorted(series.items())),
            "sources": dict(sorted(sources.items()))}


def per_source(engine: Engine) -> list[dict]:
    """Every import ever received, per source and status (the table under the charts)."""
    q = (select(imports.c.source, imports.c.status, func.count())
         .group_by(imports.c.source, imports.c.status))
    table: dict[str, dict[str, int]] = {}
    with engine.connect() as conn:
        for src, status, n in conn.execute(q):
            table.setdefault(src, {})[status] = n
    return [{"source": s, "counts": table[s], "total": sum(table[s].values())}
            for s in sorted(table)]


def backlog(engine: Engine, *, warning_minutes: float = 60.0,
            critical_minutes: float = 240.0, at: datetime | None = None) -> dict:
    """Rows waiting for a worker (received) or in a worker's hands (processing), and the
    age of the oldest one waiting, against the thresholds ``check`` uses: ``level`` is 'ok',
    'warning' (the oldest waits longer than ``warning_minutes``) or 'critical'. A row waiting
    for its retry time (``not_before`` ahead) is counted apart: it is not stuck, and it is
    not the oldest waiting (``check`` says BACKLOG of the same rows)."""
    at = (at or datetime.now(UTC)).astimezone(UTC)
    i = imports.c
    retry_later = and_(i.status == RECEIVED, i.not_before.is_not(None), i.not_before >= at)
    with engine.connect() as conn:
        counts = dict(conn.execute(select(i.status, func.count())
                                   .where(i.status.in_((RECEIVED, PROCESSING)))
                                   .group_by(i.status)).all())
        later = conn.execute(select(func.count()).select_from(imports)
                             .where(retry_later)).scalar_one()
        oldest = conn.execute(select(func.min(i.received_at))
                              .where(i.status == RECEIVED, not_(retry_later))).scalar()
    if oldest is not None and oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=UTC)
    age = max(0.0, (at - oldest).total_seconds()) if oldest is not None else None
    level = "ok"
    if age is not None and age > warning_minutes * 60:
        level = "critical" if age > critical_minutes * 60 else "warning"
    return {"received": counts.get(RECEIVED, 0), "processing": counts.get(PROCESSING, 0),
            "waiting_retry": later,
            "oldest_waiting": oldest.isoformat() if oldest is not None else None,
            "oldest_age_seconds": round(age) if age is not None else None,
            "level": level, "warning_minutes": warning_minutes,
            "critical_minutes": critical_minutes}
