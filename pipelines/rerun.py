"""Rerun: put imports back in the queue so they are replayed from their archived bytes.

The ledger row is the same (its attempts table keeps every earlier outcome), the bytes are the
original ones from the archive, and the code and mapping tables are today's. Deposited rows are
not reopened: rerunning them would change nothing.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, select

from dossiers.schema import imports
from pipelines.ledger import reset_for_rerun, where_filter


def select_ids(engine: Engine, *, status: str | None = None, source: str | None = None,
               error_code: str | None = None, since: datetime | None = None) -> list[int]:
    """Ids matching an admin's filter, oldest first."""
    q = where_filter(select(imports.c.id).order_by(imports.c.id), status=status, source=source,
                     error_code=error_code, since=since)
    with engine.connect() as conn:
        return list(conn.execute(q).scalars())


def reopen(engine: Engine, ids: list[int]) -> list[int]:
    """Mark the given imports 'received' again; returns those actually reopened."""
    if not ids:
        return []
    with engine.begin() as conn:
        return reset_for_rerun(conn, ids)
