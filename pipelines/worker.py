"""The service's processing: drain the ledger continuously, batch by batch.

`serve` runs it in worker processes (``workers``, default 1) so that parsing and filing do
not take the listener's core (one Python process is one core at most), or in a thread of the
service itself (``workers = 0``: tests, small machines).

The same pipeline as `ingest` and the Prefect drain flow (claim a batch under a lease, process
it in one transaction). It sleeps when the ledger is empty and is woken early when the
listener stores something. A store outage is logged and retried with a back-off; a message
is never lost to it (its row stays 'received', or its lease expires and it is taken again).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from dataclasses import dataclass, field

from parsers.process_lifetime import die_with_parent
from pipelines.ledger import claim_batch
from pipelines.logs import configure_logging
from pipelines.process import Context
from pipelines.resilient import process_or_defer

log = logging.getLogger("dmp.worker")


@dataclass
class Worker:
    ctx: Context
    poll_seconds: float = 1.0
    # After a wake-up, wait this long for more messages before claiming: larger batches, far
    # fewer turns of the store's write lock (SQLite has one) than a batch per listener group.
    linger_seconds: float = 0.05
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

    def run(self, parent_pid: int | None = None) -> None:
        backoff = self.poll_seconds
        while not self.stop_event.is_set():
            if parent_pid is not None and os.getppid() != parent_pid:
                log.error("the service process is gone: worker stops")
                return
            try:
                claimed = claim_batch(self.ctx.engine, limit=self.ctx.settings.batch_size,
                                      worker=self.ctx.worker,
                                      lease_seconds=self.ctx.settings.lease_seconds)
                counts = process_or_defer(self.ctx, claimed) if claimed else {}
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
                if len(claimed) >= self.ctx.settings.batch_size:
                    continue  # a backlog: go on at once
            if self.wake_event.wait(self.poll_seconds):
                self.stop_event.wait(self.linger_seconds)
            self.wake_event.clear()

    def start_thread(self) -> threading.Thread:
        thread = threading.Thread(target=self.run, name="ledger-worker", daemon=True)
        thread.start()
        return thread


def run_worker_process(settings, name: str, stop_event, wake_event,  # noqa: ANN001
                       results) -> None:  # noqa: ANN001
    """Entry point of a worker process (multiprocessing 'spawn'). The service decides when
    it stops (SIGINT/SIGTERM ignored here, ``stop_event`` set by the service); if the service
    dies (SIGKILL), the kernel kills this process too, so a restarted service never finds
    an orphan still filing beside its new workers."""
    parent = os.getppid()
    die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    configure_logging()
    ctx = Context.from_settings(settings, worker=name, trigger="serve")
    worker = Worker(ctx, stop_event=stop_event, wake_event=wake_event)
    try:
        worker.run(parent_pid=parent)
    finally:
        # The OCR process pool must go first: a multiprocessing child joins its own children
        # on exit, and an idle pool's workers never end by themselves.
        from parsers.pdf import shutdown_pools

        shutdown_pools()
        results.put(worker.totals)
        ctx.engine.dispose()
