"""Processing a claimed batch, with the store's outages turned into retries.

If the store goes away mid-batch nothing of the batch is committed; instead of leaving the
rows claimed until their leases expire (ten minutes, uncounted), they are put back with a
backoff and counted (pipelines/retry), as soon as the store answers again. If it does not,
the leases expire as before: nothing is lost either way.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from pipelines.prepare_pool import Preparing, start_preparing
from pipelines.process import CODE_VERSION, Context, file_prepared, read_claimed
from pipelines.retry import defer_claimed, is_store_outage

log = logging.getLogger("dmp.process")


def process_or_defer(ctx: Context, ids: list[int]) -> dict[str, int]:
    """``process_claimed``; on a store outage, the rows deferred ('retry': n) instead of an
    exception. Any other exception (a bug) propagates."""
    if not ids:
        return {}
    return _or_defer(ctx, ids, lambda: start_preparing(ctx, read_claimed(ctx, ids)))


def file_or_defer(ctx: Context, preparing: Preparing) -> dict[str, int]:
    """``file_prepared`` of a batch handed to the preparing pool earlier, with the same
    deferral on a store outage."""
    return _or_defer(ctx, [row.id for row in preparing.rows], lambda: preparing)


def _or_defer(ctx: Context, ids: list[int], batch: Callable[[], Preparing]) -> dict[str, int]:
    try:
        return file_prepared(ctx, batch())
    except Exception as exc:
        if not is_store_outage(exc):
            raise
        log.error("store unavailable while processing %d row(s) (%s)", len(ids),
                  type(exc).__name__)
        try:
            n = defer_claimed(ctx.engine, ids, retry_max=ctx.settings.retry_max,
                              base_seconds=ctx.settings.retry_base_seconds,
                              worker=ctx.worker, code_version=CODE_VERSION,
                              trigger=ctx.trigger)
        except Exception as again:  # still down: the leases will expire
            if not is_store_outage(again):
                raise
            raise exc from None
        return {"retry": n} if n else {}
