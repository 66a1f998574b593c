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
from typing import TYPE_CHECKING

from parsers.process_lifetime import die_with_parent
from pipelines.logs import configure_logging

if TYPE_CHECKING:
    from pipelines.prepare_pool import Preparing
    from pipelines.process import Context

# The pipeline (SQLAlchemy, the parsers and normalizers: about a second) is imported by the
# functions that run it, not by this module: a worker process imports this module before it
# runs (multiprocessing 'spawn'), and it must reach ``die_with_parent`` first. A service
# killed while its worker was importing left an orphan importing for a second or two before
# it could notice and end; it now notices at once.

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
        from pipelines.process import claim_and_start
        from pipelines.resilient import file_or_defer

        backoff = self.poll_seconds
        ahead: Preparing | None = None  # the next batch, being prepared by the pool
        while not self.stop_event.is_set() or ahead is not None:
            if parent_pid is not None and os.getppid() != parent_pid:
                log.error("the service process is gone: worker stops")
                return
            try:
                current, ahead = ahead or claim_and_start(self.ctx), None
                if current is not None and current.parallel and not self.stop_event.is_set():
                    ahead = self._claim_ahead()  # prepared by the pool while this is filed
                counts = file_or_defer(self.ctx, current) if current is not None else {}
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
                if ahead is not None or len(current.rows) >= self.ctx.settings.batch_size:
                    continue  # a backlog: go on at once
            if self.wake_event.wait(self.poll_seconds):
                self.stop_event.wait(self.linger_seconds)
            self.wake_event.clear()

    def _claim_ahead(self) -> Preparing | None:
        """The next batch, or None if the store does not answer now: the batch in hand is
        filed (or deferred) first either way."""
        from pipelines.process import claim_and_start
        from pipelines.retry import is_store_outage

        try:
            return claim_and_start(self.ctx)
        except Exception as exc:
            if not is_store_outage(exc):
                raise
            return None


    def start_thread(self) -> threading.Thread:
        thread = threading.Thread(target=self.run, name="ledger-worker", daemon=True)
        thread.start()
        return thread


def lower_priority(increment: int) -> None:
    """Lower this process's CPU priority by ``increment`` (nice). On two cores the listener,
    the filing process and its preparing pool compete for the CPU: an ACK waited behind
    whichever processing was running when its frame arrived. Niced, processing still gets
    every cycle the listener does not use (it keeps pace), but a frame arriving is served
    first. Linux groups the processes of one session (autogroup), so this ranks the service's
    own processes and takes nothing from other services. Refused (a sandbox): logged, not
    fatal."""
    if increment <= 0:
        return
    try:
        os.nice(increment)
    except OSError as exc:
        log.warning("worker priority not lowered (nice %d): %s", increment,
                    type(exc).__name__)


def run_worker_process(settings, name: str, stop_event, wake_event,  # noqa: ANN001
                       results, service_pid: int | None = None) -> None:  # noqa: ANN001
    """Entry point of a worker process (multiprocessing 'spawn'). The service decides when
    it stops (SIGINT/SIGTERM/SIGHUP ignored here, ``stop_event`` set by the service); if the service
    dies (SIGKILL), the kernel kills this process too, so a restarted service never finds
    an orphan still filing beside its new workers.

    ``service_pid``: the pid of the service that started it. A service killed while this
    process was still starting (importing, before ``die_with_parent``) sends no signal: the
    process is an orphan already, whose parent is now init or a subreaper. It must not run:
    it would claim and file rows under the dead service's worker name while the restarted
    service gives that name's claims to its own workers (the same rows filed twice)."""
    die_with_parent()
    parent = service_pid if service_pid is not None else os.getppid()
    if os.getppid() != parent:
        return  # the service died before die_with_parent: nothing was claimed yet
    # the service stops it: a signal to the whole process group (Ctrl-C, a closing
    # terminal's SIGHUP, systemd's stop sending SIGTERM to every process) is for the service
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    configure_logging()
    lower_priority(settings.worker_nice)  # before the preparing pool: it inherits it
    from pipelines.gc_tuning import tune_for_batches
    from pipelines.prepare_pool import shutdown_pool
    from pipelines.process import Context

    ctx = Context.from_settings(settings, worker=name, trigger="serve")
    tune_for_batches()
    worker = Worker(ctx, stop_event=stop_event, wake_event=wake_event)
    try:
        worker.run(parent_pid=parent)
    finally:
        # The OCR process pool must go first: a multiprocessing child joins its own children
        # on exit, and an idle pool's workers never end by themselves.
        from parsers.pdf import shutdown_pools

        shutdown_pools()
        shutdown_pool()
        results.put(worker.totals)
        ctx.engine.dispose()
