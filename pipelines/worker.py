"""The service's processing: drain the ledger continuously, batch by batch, in one thread.

The same pipeline as `ingest` and the Prefect drain flow (claim a batch under a lease, process
it in one transaction). It sleeps when the ledger is empty and is woken early when the
listener stores something. A store outage is logged and retried with a back-off; a message
is never lost to it (its row stays 'received', or its lease expires and it is taken again).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

from pipelines.ledger import claim_batch
from pipelines.process import Context, process_claimed

log = logging.getLogger("dmp.worker")


@dataclass
class Worker:
    ctx: Context
    poll_seconds: float = 1.0
    stop_event: threading.Event = field(default_factory=threading.Event)
    wake_event: threading.Event = field(default_factory=threading.Event)
    totals: dict[str, int] = field(default_factory=dict)
    batches: int = 0

    def wake(self) -> None:
        self.wake_event.set()

    def stop(self) -> None:
        """Finish the batch in hand, then return from ``run``."""
        self.stop_event.set()
        self.wake_event.set()

    def run(self) -> None:
        backoff = self.poll_seconds
        while not self.stop_event.is_set():
            try:
                claimed = claim_batch(self.ctx.engine, limit=self.ctx.settings.batch_size,
                                      worker=self.ctx.worker)
                counts = process_claimed(self.ctx, claimed) if claimed else {}
            except Exception as exc:  # store down: wait and retry, never give up
                log.error("processing batch failed (%s); retrying in %.0fs",
                          type(exc).__name__, backoff)
                self.stop_event.wait(backoff)
                backoff = min(backoff * 2, 60.0)
                continue
            backoff = self.poll_seconds
            if counts:
                self.batches += 1
                for status, n in counts.items():
                    self.totals[status] = self.totals.get(status, 0) + n
                continue
            self.wake_event.wait(self.poll_seconds)
            self.wake_event.clear()

    def start_thread(self) -> threading.Thread:
        thread = threading.Thread(target=self.run, name="ledger-worker", daemon=True)
        thread.start()
        return thread


def wait_idle(ctx: Context, timeout: float, pending) -> bool:  # noqa: ANN001
    """Wait until ``pending(conn)`` is 0 (tests, benchmarks): True if it got there in time."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with ctx.engine.connect() as conn:
            if pending(conn) == 0:
                return True
        time.sleep(0.05)
    return False
