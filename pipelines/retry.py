"""Automatic retries of transient failures: the archive or the store unavailable mid-processing.

A transient failure says nothing about the message, so the row goes back to 'received' with a
``not_before`` time (exponential backoff: base, 2 x base, 4 x base...) that ``claim_batch``
respects; after ``retry_max`` consecutive transient failures it is failed with code
TRANSIENT_EXHAUSTED for an admin to look at (and rerun once the outage is over). Permanent
failures (a bad message, a missing or corrupt archived object) are never retried.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import Engine, select, update
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError

from dossiers.schema import import_attempts, imports
from pipelines.ledger import FAILED, PROCESSING, RECEIVED, RETRY, Outcome, now

log = logging.getLogger("dmp.retry")

EXHAUSTED = "TRANSIENT_EXHAUSTED"


def backoff_seconds(retries: int, base: float) -> float:
    """Delay before the ``retries``-th retry (1-based): base, 2 x base, 4 x base..."""
    return base * (2 ** max(0, retries - 1))


def transient_outcome(retries_so_far: int, *, retry_max: int, base_seconds: float, stage: str,
                      code: str, message: str) -> Outcome:
    """The outcome of one transient failure of a row that failed so ``retries_so_far`` times
    in a row: back to the queue after a backoff, or failed TRANSIENT_EXHAUSTED."""
    retries = retries_so_far + 1
    if retries >= retry_max:
        return Outcome(FAILED, stage=stage, error_code=EXHAUSTED,
                       error_message=f"{retries} transient failures in a row, last: {code} "
                       f"({message}); rerun once the outage is over")
    return Outcome(RECEIVED, stage=stage, error_code=code, error_message=message,
                   not_before=now() + timedelta(seconds=backoff_seconds(retries, base_seconds)),
                   retries=retries)


def is_store_outage(exc: BaseException) -> bool:
    """The store could not be reached or dropped the connection (not a constraint or a bug)."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, OperationalError | InterfaceError | DisconnectionError)


def defer_claimed(engine: Engine, ids: list[int], *, retry_max: int, base_seconds: float,
                  worker: str, code: str = "STORE_UNAVAILABLE",
                  code_version: str = "", trigger: str = "") -> int:
    """After a batch failed because the store went away: put this worker's claimed rows back
    with a backoff (or fail them TRANSIENT_EXHAUSTED), with an attempt each. Best effort: if
    the store is still down this raises, and the rows' leases expire instead. Returns the
    number of rows deferred."""
    if not ids:
        return 0
    t = now()
    with engine.begin() as conn:
        rows = conn.execute(select(imports.c.id, imports.c.retries).where(
            imports.c.id.in_(ids), imports.c.status == PROCESSING,
            imports.c.claimed_by == worker)).all()
        attempts = []
        for row in rows:
            o = transient_outcome(row.retries or 0, retry_max=retry_max,
                                  base_seconds=base_seconds, stage="store", code=code,
                                  message="the store was unavailable while processing")
            conn.execute(update(imports).where(imports.c.id == row.id).values(
                status=o.status, stage=o.stage, error_code=o.error_code,
                error_message=o.error_message, not_before=o.not_before, retries=o.retries,
                attempts=imports.c.attempts + 1, claimed_by=None, claimed_until=None,
                claims=0, updated_at=t))
            attempts.append({"import_id": row.id, "started_at": t, "finished_at": t,
                             "code_version": code_version,
                             "status": RETRY if o.status == RECEIVED else o.status,
                             "error_code": o.error_code,
                             "error_message": o.error_message, "trigger": trigger})
        if attempts:
            conn.execute(import_attempts.insert(), attempts)
    log.warning("%d claimed row(s) deferred after a store outage (%s)", len(rows), code)
    return len(rows)

