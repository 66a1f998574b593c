"""Reading, parsing and normalizing claimed messages on every core, while this process files.

Filing has one writer at a time (SQLite's write lock), but reading a message from the archive,
parsing and normalizing it needs nothing from the store and is about half of a message's CPU
time. A pool of processes prepares a batch in chunks, and ``drain`` hands it the next batch
while this process files the current one: on two cores both are busy, which one process
never achieves (one Python process is one core at most).

What crosses the process boundary is plain data: the ledger rows as dicts, the settings and
the version of the code tables (pickled once per context; a preparing process keeps its
context for them), and back the ``Prepared`` messages or their outcomes. The same function
prepares a batch in the pool and inline (``pipelines.process.prepare_rows``): the result is
the same either way.

- PDF reports stay in the calling process: their OCR has a pool of its own (parsers/pdf).
- Small batches stay in the calling process: below ``MIN_ROWS`` the round trips cost more
  than they save, and `dmp-ingest ingest one-file.hl7` never starts a pool.
- A pool worker that dies (a crash in a C library on a hostile input) breaks the pool: the
  batch is prepared again in the calling process, where the ledger's poison-message handling
  (claims counted per row, pipelines/ledger.py) isolates the culprit as for any crash, and a
  new pool is started for the next batch.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import pickle
import signal
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import datetime
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pipelines.ledger import Outcome
    from pipelines.process import Context, Prepared
    from pipelines.settings import Settings

log = logging.getLogger("dmp.process")

MIN_ROWS = 32  # a batch smaller than this is prepared inline
CHUNK_MIN = 8  # rows per task sent to a pool worker, at least
# Tasks per preparing process and batch: small enough that filing starts soon after the
# batch is handed over (a CR-BIO document takes about 8 ms to prepare), large enough that
# the round trip per task stays small beside the work.
CHUNKS_PER_PROCESS = 4
INLINE_FORMATS = frozenset({"pdf"})

Decided = dict[int, tuple["Outcome", datetime]]
# What the forkserver imports before it forks the preparing processes ('__main__', as
# multiprocessing does by default, then what _worker_init imports).
PRELOAD = ["__main__", "pipelines.prepare_pool", "pipelines.process", "pipelines.logs",
           "pipelines.gc_tuning", "parsers.pdf", "parsers.process_lifetime"]


def pool_processes(settings: Settings) -> int:
    """How many preparing processes: the setting, else the cores shared among `serve`'s
    worker processes (``workers``: one per core for `ingest`), none on one core (0:
    everything inline); none in a daemonic process (it may not have children)."""
    if multiprocessing.current_process().daemon:
        return 0  # a daemonic process may not have children
    if settings.prepare_processes is not None:
        return max(0, settings.prepare_processes)
    cores = os.cpu_count() or 1
    if cores == 1:
        return 0
    return min(cores // max(1, settings.workers), 8)  # `serve`'s workers share the cores


@dataclass
class Preparing:
    """A batch whose messages are being prepared: consecutive runs of its rows, each sent to
    the pool (a future) or kept for this process (None), in ledger order."""

    ctx: Context
    rows: list[Any]
    parts: list[tuple[list[Any], Future | None]]
    _next: int = 0  # the part ``chunks`` reads next
    # parts this process took back from the pool's queue and prepared itself (``_steal``)
    _stolen: dict[int, tuple[list[Prepared], Decided]] = field(default_factory=dict)

    @property
    def parallel(self) -> bool:
        return any(future is not None for _, future in self.parts)

    def chunks(self) -> Iterator[tuple[list[Prepared], Decided]]:
        """The messages ready to file and the outcomes already decided (a parse error, a
        quarantine...), run by run in ledger order, each as soon as it is ready: filing
        starts before the whole batch is prepared."""
        from pipelines.process import prepare_rows

        for n, (rows, future) in enumerate(self.parts):
            self._next = n + 1
            if future is None:
                yield prepare_rows(self.ctx, rows)
                continue
            if n in self._stolen:
                yield self._stolen.pop(n)
                continue
            while not future.done() and self._steal(n):
                pass
            try:
                done, decided = future.result()
            except Exception as exc:  # BrokenProcessPool: a worker died; else a bug
                level = logging.INFO if isinstance(exc, TablesChanged) else logging.ERROR
                log.log(level, "preparing in the pool failed (%s): %d message(s) prepared "
                        "again in this process", type(exc).__name__, len(rows))
                if isinstance(exc, BrokenProcessPool):
                    _discard_pool()
                yield prepare_rows(self.ctx, rows)
                continue
            by_id = {row.id: row for row in rows}
            for item in done:
                item.row = by_id[item.row.id]  # the ledger row, not its copy
            yield done, decided

    def _steal(self, waiting: int) -> bool:
        """While part ``waiting`` is still being prepared in the pool, prepare here the last
        part the pool has not started (cancelled in its queue, so prepared once); False when
        there is none.

        Why: this process would otherwise wait idle, one core doing nothing. Above all while
        the pool starts (its forkserver imports the pipeline: a second or more of one core,
        several under load), when the whole first batch waited; and whenever the pool is
        behind. The last part, so that the pool keeps the order it files in. The result is
        the same (``prepare_rows`` in either process); ``chunks`` yields it in its turn."""
        from pipelines.process import prepare_rows

        for m in range(len(self.parts) - 1, waiting, -1):
            rows, future = self.parts[m]
            if future is not None and m not in self._stolen and future.cancel():
                self._stolen[m] = prepare_rows(self.ctx, rows)
                return True
        return False

    def ready_ahead(self) -> bool:
        """Whether ``chunks`` would yield its next part at once, with no work: the pool has
        prepared it, or this process did (``_steal``), or nothing is left. Not a part to
        prepare in this process: that is work, maybe OCR. The filing process files what it
        has instead of waiting idle, and ends its transaction rather than hold the store's
        write lock meanwhile."""
        if self._next >= len(self.parts) or self._next in self._stolen:
            return True
        future = self.parts[self._next][1]
        return future is not None and future.done()

    def result(self) -> tuple[list[Prepared], Decided]:
        """The whole batch at once."""
        prepared: list[Prepared] = []
        decided: Decided = {}
        for done, outcomes in self.chunks():
            prepared.extend(done)
            decided.update(outcomes)
        return prepared, decided


def start_preparing(ctx: Context, rows: list[Any]) -> Preparing:
    """Send the batch's messages to the pool (nothing waits here), or keep them for
    preparation in this process when the pool is off or the batch small."""
    ctx.refresh_tables()  # a mapping added since the last batch is used by this one
    processes = pool_processes(ctx.settings)
    pooled = sum(1 for row in rows if row.format not in INLINE_FORMATS)
    if processes == 0 or pooled < MIN_ROWS:
        return Preparing(ctx, rows, [(list(rows), None)])
    size = max(CHUNK_MIN, -(-pooled // (CHUNKS_PER_PROCESS * processes)))
    blob = _context_blob(ctx)
    try:
        pool = _pool(processes)
        parts = [(run, pool.submit(_prepare_chunk, blob, [dict(r._mapping) for r in run])
                  if pooled_run else None) for run, pooled_run in _runs(rows, size)]
    except Exception as exc:  # it died while idle, or cannot start: this batch here
        log.error("the preparing pool cannot take a batch (%s): prepared in this process",
                  type(exc).__name__)
        _discard_pool()
        return Preparing(ctx, rows, [(list(rows), None)])
    return Preparing(ctx, rows, parts)


def _runs(rows: list[Any], size: int) -> Iterator[tuple[list[Any], bool]]:
    """Consecutive runs of rows for the pool (at most ``size``) or for this process."""
    run: list[Any] = []
    for row in rows:
        pooled = row.format not in INLINE_FORMATS
        if run and (pooled != (run[-1].format not in INLINE_FORMATS) or len(run) >= size):
            yield run, run[-1].format not in INLINE_FORMATS
            run = []
        run.append(row)
    if run:
        yield run, run[-1].format not in INLINE_FORMATS


# -- the pool, one per process (a forked child never uses its parent's) ------------------------
_lock = threading.Lock()
_current: tuple[int, int, ProcessPoolExecutor] | None = None  # (owner pid, size, pool)
_blob: tuple[Context, tuple, bytes] | None = None


def _context_blob(ctx: Context) -> bytes:
    """What a preparing process needs to act as ``ctx``: its settings and the version of its
    code tables, pickled once per context (the context is kept with its pickle, so that
    another one at the same address after it was freed is never taken for it)."""
    global _blob
    cached = _blob
    version = ctx.tables[0]  # read again by ``refresh_tables``: a new version, a new pickle
    if cached is not None and cached[0] is ctx and cached[1] == version:
        return cached[2]
    blob = pickle.dumps((ctx.settings, version))
    _blob = (ctx, version, blob)
    return blob


class TablesChanged(RuntimeError):
    """The code tables on disk are not the version the filing process normalizes with."""


def _pool(processes: int) -> ProcessPoolExecutor:
    global _current
    with _lock:
        if _current is not None:
            pid, size, pool = _current
            if pid == os.getpid() and size == processes and not getattr(pool, "_broken", False):
                return pool
            if pid == os.getpid():
                pool.shutdown(wait=False, cancel_futures=True)
        # forkserver, not fork: this process runs threads (Prefect, the listener)
        context = multiprocessing.get_context("forkserver")
        # The forkserver, when this starts it, imports the pipeline once and every preparing
        # process is forked with it imported: each imported it for itself in _worker_init
        # (a second of CPU each, all of them at once, while the batch waited).
        context.set_forkserver_preload(PRELOAD)
        pool = ProcessPoolExecutor(max_workers=processes, mp_context=context,
                                   initializer=_worker_init, initargs=(os.getpid(),))
        _current = (os.getpid(), processes, pool)
        return pool


def _discard_pool() -> None:
    global _current
    with _lock:
        if _current is not None and _current[0] == os.getpid():
            _current[2].shutdown(wait=False, cancel_futures=True)
        _current = None


def shutdown_pool() -> None:
    """Stop the preparing processes (also done at interpreter exit)."""
    global _current
    with _lock:
        current, _current = _current, None
    if current is not None and current[0] == os.getpid():
        current[2].shutdown(wait=True, cancel_futures=True)


# -- in the pool's processes -------------------------------------------------------------------
_contexts: dict[bytes, Context] = {}


def _worker_init(owner_pid: int) -> None:
    """A preparing process ends with the process it works for (parsers/process_lifetime),
    logs like the service does (import ids and codes only), and has its code imported and
    the collector paced before the first chunk comes."""
    from parsers.pdf import ocr_in_this_process
    from parsers.process_lifetime import die_with
    from pipelines.gc_tuning import tune_for_batches
    from pipelines.logs import configure_logging
    from pipelines.process import prepare_rows  # noqa: F401 (imported before the freeze)

    die_with(owner_pid)
    # a signal to the whole process group (Ctrl-C, a closing terminal, systemd's stop) is
    # for the service, which stops its workers and they their pools: killed here, the batch
    # in hand was prepared again inline and the pool started anew while stopping
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    configure_logging()
    ocr_in_this_process()  # a PDF inside an HL7 message: read here, no pool in the pool
    tune_for_batches()


def _worker_context(blob: bytes) -> Context:
    """The context of a preparing process: settings, archive and code tables; no store
    (preparing never reads or writes it). Its tables must be the version the filing process
    uses: if they changed on disk in between, TablesChanged, and that process prepares the
    chunk itself."""
    ctx = _contexts.get(blob)
    if ctx is None:
        from pipelines.archive import open_archive
        from pipelines.process import Context

        settings, version = pickle.loads(blob)
        ctx = Context(settings=settings, engine=None,  # type: ignore[arg-type]
                      archive=open_archive(settings.archive_url, settings.s3_endpoint_url),
                      worker="prepare")
        if ctx.tables[0] != version:
            raise TablesChanged("the code tables changed on disk")
        _contexts.clear()
        _contexts[blob] = ctx
    return ctx


def _prepare_chunk(blob: bytes, rows: list[dict]) -> tuple[list[Prepared], Decided]:
    """The chunk's messages prepared, each sent back with its ledger row's id alone: the
    filing process puts its own row back (``Preparing.chunks``), so the copy (32 columns,
    three timestamps) was pickled here and unpickled there for nothing."""
    from pipelines.process import prepare_rows

    done, decided = prepare_rows(_worker_context(blob), [SimpleNamespace(**row) for row in rows])
    for item in done:
        item.row = SimpleNamespace(id=item.row.id)
    return done, decided
