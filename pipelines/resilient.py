"""Processing a claimed batch, with the store's outages turned into retries.

If the store goes away mid-batch nothing of the batch is committed; instead of leaving the
rows claimed until their leases expire (ten minutes, uncounted), they are put back with a
backoff and counted (pipelines/retry), as soon as the store answers again. If it does not,
the leases expire as before: nothing is lost either way.
"""

from __future__ import annotations

import logging

from pipelines.process import CODE_VERSION, Context, process_claimed
from pipelines.retry import defer_claimed, is_store_outage

log = logging.getLogger("dmp.process")


def process_or_defer(ctx: Context, ids: list[int]) -> dict[str, int]:
    """``process_claimed``; on a store outage, the rows deferred ('retry': n) instead of an
    exception. Any other exception (a bug) propagates."""
    try:
        return process_claimed(ctx, ids)
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
