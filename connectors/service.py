"""`dmp-ingest serve`: the long-running service, composed of the MLLP listener, the HTTP API
(api/, uvicorn in this same loop), the folder and S3 bucket pollers and the ledger workers,
with a clean shutdown.

Each declared folder or bucket source gets an asyncio task that runs its (synchronous) poll
in a thread every ``poll_interval`` seconds and wakes the ledger workers after each intake;
a poll that fails (source or store unreachable) is retried with a growing delay.

SIGTERM, SIGINT or SIGHUP: the listener stops accepting, the frames being handled are stored and
acknowledged, idle connections are closed, the HTTP API answers the requests in progress
(a POST /imports being stored still gets its 202) and closes, the pollers finish the group
of files in hand and stop, the worker finishes its batch; exit status 0.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import queue
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from connectors.mllp.ack_sender import AckSender
from connectors.mllp.server import MLLPServer, tls_context
from pipelines.acknowledge import Answered, Frame, Prepared, prepare_frame, store_group
from pipelines.app_acks import HELD_DAYS, AckOutbox, outbox_of
from pipelines.ledger import release_claims, release_worker
from pipelines.process import Context
from pipelines.settings import Source
from pipelines.worker import Worker, run_worker_process

log = logging.getLogger("dmp.service")
SUPERVISE_SECONDS = 2.0  # how often the service looks for dead worker processes


@dataclass
class PollerHealth:
    source: str
    kind: str  # folder or bucket
    last_poll: datetime | None = None
    last_error: str | None = None  # the poll's own words (no patient data), or an exception type
    taken: int = 0


@dataclass
class ServiceStatus:
    """What the console's dashboard shows of the running service: the listener and each
    poller, updated by the service as it goes (read only by the console)."""

    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    listener: Any = None  # the MLLPServer (its port and connection count), None if not run
    listener_tls: bool = False
    pollers: list[PollerHealth] = field(default_factory=list)

    def snapshot(self) -> dict:
        server = self.listener
        return {"started_at": self.started_at.isoformat(),
                "listener": None if server is None else {
                    "up": getattr(server, "port", None) is not None, "port": server.port,
                    "tls": self.listener_tls, "connections": server.connections},
                "pollers": [vars(p).copy() for p in self.pollers]}


async def serve(ctx: Context, *, mllp: bool = True, process: bool = True, pollers: bool = True,
                http: bool = False, on_ready: Callable[[int | None], None] | None = None,
                on_http_ready: Callable[[int], None] | None = None,
                stop: asyncio.Event | None = None) -> dict:
    """Run until SIGTERM/SIGINT/SIGHUP (or ``stop`` is set); return counters for the exit line.
    ``on_ready(port)`` is called once listening (the real port when 0 was asked).
    ``pollers``: poll the declared folder and bucket sources. ``http``: serve the HTTP API
    on ``settings.http`` host and port (``on_http_ready(port)`` once it listens)."""
    listener = ctx.settings.listener
    stop = stop or asyncio.Event()
    status = ServiceStatus()
    loop = asyncio.get_running_loop()
    # SIGHUP too: the terminal or session that started the service closing, or a
    # ``kill -HUP`` (log rotation scripts send one), killed it outright, the frames in hand
    # unanswered and its workers' batches cut; it now stops as SIGTERM does
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # not the main thread (tests)
            pass
    name = ctx.settings.worker_id
    released = release_claims(ctx.engine, f"{name}/")
    if released:
        log.warning("%d ledger row(s) left claimed by a previous run of %s: taken again",
                    released, name)
    workers = Workers(ctx, name) if process else None
    server = None
    if mllp:
        receiving = Context(ctx.settings, ctx.engine, ctx.archive, worker=f"{name}/listener",
                            trigger="mllp")

        ledger_turn = threading.Lock()

        def prepare(frame: Frame) -> Prepared:
            return prepare_frame(receiving, frame)

        outbox = outbox_of(ctx.settings.home)
        senders = AckSenders(outbox, ctx.settings.sources, loop)

        def handler(prepared: list[Prepared]) -> Answered:
            answers = store_group(receiving, prepared, mode=listener.ack_mode,
                                  ledger_turn=ledger_turn, outbox=outbox)
            if workers is not None:
                workers.wake()
            return answers

        context = None
        if listener.tls_cert:
            context = tls_context(listener.tls_cert, listener.tls_key, listener.tls_client_ca)
        server = MLLPServer(handler, host=listener.host, port=listener.port,
                            max_frame_bytes=listener.max_frame_bytes,
                            idle_timeout=listener.idle_timeout, ssl_context=context,
                            prepare=prepare, max_connections=listener.max_connections,
                            max_connections_per_peer=listener.max_connections_per_peer,
                            proxy_protocol=listener.proxy_protocol,
                            proxy_trusted=listener.proxy_trusted)
        try:
            await server.start()
        except BaseException:  # port taken: the worker processes just started end too (the
            if workers is not None:  # service exited under them: tracebacks from each)
                await loop.run_in_executor(None, workers.stop)
            raise
        status.listener, status.listener_tls = server, listener.tls_cert is not None
        senders.start()
        if not ctx.settings.sources and not listener.accept_unknown_senders:
            log.warning("no sources declared: every MLLP message will be refused (AR); "
                        "declare [sources.<id>] in the settings file")
    api = None
    if http:
        from api.server import ApiServer

        api = ApiServer(ctx, host=ctx.settings.http.host, port=ctx.settings.http.port,
                        on_intake=workers.wake if workers is not None else None)
        try:
            await api.start()
        except BaseException:
            if server is not None:
                await server.stop()
            if workers is not None:
                await loop.run_in_executor(None, workers.stop)
            raise
        if api.server is not None:  # the console's dashboard reads it
            api.server.config.app.state.service_status = status
    polling = Pollers(ctx, workers, status) if pollers else None
    print(f"dmp-ingest serve: MLLP on {server.bound()}" if server
          else "dmp-ingest serve: processing only" if not api and (not polling
                                                                  or not polling.loops)
          else "dmp-ingest serve: no MLLP listener", flush=True)
    if api is not None:
        print(f"dmp-ingest serve: HTTP API on {'https' if api.tls else 'http'}://"
              f"{api.host}:{api.port}", flush=True)
    if polling is not None and polling.loops:
        polling.start()
        print(f"dmp-ingest serve: polling {polling.describe()}", flush=True)
        for line in polling.lines():
            print(f"dmp-ingest serve:   {line}", flush=True)
    if on_ready is not None:
        on_ready(server.port if server else None)
    if on_http_ready is not None and api is not None:
        on_http_ready(api.port)
    # A worker process that died (OOM killer...) is replaced as soon as it ends (its
    # sentinel becomes readable), and looked for every SUPERVISE_SECONDS besides: the
    # listener went on acknowledging for up to 2 s with nothing draining the ledger.
    died = asyncio.Event()
    if workers is not None:
        workers.watch(loop, died.set)
    while not stop.is_set():
        waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(died.wait())]
        try:
            await asyncio.wait(waits, timeout=SUPERVISE_SECONDS,
                               return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in waits:
                waiting.cancel()
        if workers is not None and not stop.is_set():
            died.clear()
            await loop.run_in_executor(None, workers.revive, ctx)
            workers.watch(loop, died.set)
    if workers is not None:
        workers.unwatch(loop)
    print("dmp-ingest serve: stopping", flush=True)
    if server is not None:
        await server.stop()
        await senders.stop()  # after the listener: the ACKs of its last frames are queued
    if api is not None:
        await api.stop()
    polled = await polling.stop() if polling is not None else {}
    processed = await loop.run_in_executor(None, workers.stop) if workers else {}
    return {"connections": server.connections if server else 0,
            "acks": server.acks if server else 0, "processed": processed, "polled": polled}


class AckSenders:
    """The application ACK senders, one per source with a return route (``ack_route``),
    each woken when the listener queues an ACK for its source."""

    def __init__(self, outbox: AckOutbox, sources: tuple[Source, ...],
                 loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.stopping = asyncio.Event()
        self.senders = {s.id: AckSender(s, outbox) for s in sources if s.ack_route}
        self.tasks: list[asyncio.Task] = []
        outbox.on_queued(self._queued)
        try:
            pruned = outbox.prune_held()
        except OSError as exc:
            log.warning("held application ACKs not pruned: %s", type(exc).__name__)
        else:
            if pruned:
                log.info("%d held application ACK(s) older than %d days removed", pruned,
                         HELD_DAYS)

    def _queued(self, source: str) -> None:  # in a processing thread
        sender = self.senders.get(source)
        if sender is not None:
            self.loop.call_soon_threadsafe(sender.wake.set)

    def start(self) -> None:
        for source, sender in self.senders.items():
            self.tasks.append(asyncio.create_task(sender.run(self.stopping),
                                                  name=f"app-acks-{source}"))
            log.info("application ACKs of source %s go to %s", source, sender.where())

    async def stop(self) -> None:
        """The ACK being written is finished; those still queued wait for the next start."""
        self.stopping.set()
        if self.tasks:
            await asyncio.wait(self.tasks, timeout=CLOSE_SENDERS)


CLOSE_SENDERS = 10.0  # seconds the ACK senders have to finish the ACK in hand at shutdown


# The signals that stop the service. A closing terminal (SIGHUP), Ctrl-C (SIGINT) or
# systemd's stop (SIGTERM to every process of the unit) reach the whole process group: a
# worker process killed by one while it was still importing (before it ignores them) left
# the stop waiting a minute for its counts, and multiprocessing's resource tracker, which
# ignores only SIGINT and SIGTERM, died of a SIGHUP with tracebacks in the log.
_SERVICE_SIGNALS = frozenset({signal.SIGHUP, signal.SIGINT, signal.SIGTERM})


@contextmanager
def _service_signals_blocked() -> Iterator[None]:
    """The service's signals blocked while a child process is started: the child inherits
    the mask, so a signal meant for the service stays pending there (the worker then
    ignores them; the resource tracker never unblocks them); the service gets its own as
    soon as the block ends."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, _SERVICE_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


@dataclass
class _PollLoop:
    poller: Any  # FolderPoller or BucketPoller: poll() -> PollResult, close(), stop_event
    interval: float
    kind: str
    taken: int = 0
    task: asyncio.Task | None = None
    health: PollerHealth | None = None


class Pollers:
    """One asyncio task per declared folder or bucket source; each runs the source's
    synchronous poll in a thread, then sleeps ``poll_interval`` (longer after failures)."""

    MAX_BACKOFF = 300.0

    def __init__(self, ctx: Context, workers: Workers | None,
                 status: ServiceStatus | None = None) -> None:
        from connectors.folder import FolderPoller
        from connectors.s3_bucket import TAKEN_DIR, BucketPoller

        settings = ctx.settings
        self.stopping = asyncio.Event()
        wake = workers.wake if workers is not None else None
        self.loops: list[_PollLoop] = []
        for folder in settings.folders:
            poller = FolderPoller(folder, ctx.engine, ctx.archive, name=settings.worker_id,
                                  on_intake=wake)
            self.loops.append(_PollLoop(poller, folder.poll_interval or settings.poll_interval,
                                        "folder"))
        for bucket in settings.buckets:
            poller = BucketPoller(bucket, ctx.engine, ctx.archive,
                                  endpoint_url=settings.s3_endpoint_url, on_intake=wake,
                                  state_dir=settings.home / TAKEN_DIR)
            self.loops.append(_PollLoop(poller, bucket.poll_interval or settings.poll_interval,
                                        "bucket"))
        for p in self.loops:
            p.health = PollerHealth(p.poller.source.id, p.kind)
            if status is not None:
                status.pollers.append(p.health)

    def describe(self) -> str:
        folders = sum(1 for p in self.loops if p.kind == "folder")
        return f"{folders} folder(s), {len(self.loops) - folders} bucket(s)"

    def lines(self) -> list[str]:
        """One line per source, printed at start: which folder or bucket each poller
        watches, how often, and what it does with what it took. 'polling 2 folder(s), 1
        bucket(s)' alone left an admin to guess which path or prefix (or endpoint: the
        global one, or the source's own) a running service had read from the settings."""
        return [describe_source(p.poller.source, p.interval, p.poller) for p in self.loops]

    def start(self) -> None:
        for p in self.loops:
            p.task = asyncio.create_task(self._run(p), name=f"poll-{p.poller.source.id}")

    async def _run(self, p: _PollLoop) -> None:
        loop = asyncio.get_running_loop()
        source = p.poller.source.id
        failures = 0
        try:
            while not self.stopping.is_set():
                try:
                    result = await loop.run_in_executor(None, p.poller.poll)
                    p.taken += result.taken
                    failures = failures + 1 if result.error else 0
                    _health(p, result.error)
                except Exception as exc:  # a bug: keep the service and the other pollers up
                    log.error("poll of source %s failed (%s)", source, type(exc).__name__)
                    log.debug("poll failure", exc_info=True)
                    failures += 1
                    _health(p, type(exc).__name__)
                delay = p.interval
                if failures:
                    delay = min(p.interval * 2 ** min(failures, 10),
                                max(p.interval, self.MAX_BACKOFF))
                try:
                    await asyncio.wait_for(self.stopping.wait(), delay)
                except TimeoutError:
                    pass
        finally:
            await loop.run_in_executor(None, p.poller.close)

    async def stop(self) -> dict[str, int]:
        """No new poll; a poll in progress ends after the group of files in hand (those
        claimed and not yet recorded are taken at the next start). Files or objects taken,
        per source."""
        self.stopping.set()
        for p in self.loops:
            p.poller.stop_event.set()
        tasks = [p.task for p in self.loops if p.task is not None]
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        return {p.poller.source.id: p.taken for p in self.loops}


def describe_source(source: Any, interval: float, poller: Any = None) -> str:  # noqa: ANN401
    """A folder or bucket source in one line, no secret: an endpoint's user and password
    (``https://key:secret@host``) are left out."""
    from urllib.parse import urlsplit

    if hasattr(source, "path"):
        return (f"folder source {source.id}: {source.path} (every {interval:g} s, settled "
                f"{source.settle_seconds:g} s, {'with' if source.recursive else 'without'} "
                f"subfolders, then moved to done/ or failed/)")
    endpoint = getattr(poller, "endpoint_url", None) or source.endpoint_url
    if endpoint:
        parts = urlsplit(endpoint)
        endpoint = parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()
    after = ("tagged dmp-intake=done" if source.after == "tag" else
             f"moved under {source.processed_prefix or '(no prefix)'}")
    return (f"bucket source {source.id}: s3://{source.bucket}/{source.key_prefix} at "
            f"{endpoint or 'AWS'}{f' ({source.region})' if source.region else ''} (every "
            f"{interval:g} s, then {after}{', requester pays' if source.requester_pays else ''}"
            f"{_whole(source.full_listing_seconds)})")


def _whole(seconds: float) -> str:
    return f", whole listing every {seconds:g} s" if seconds else ""


def _health(p: _PollLoop, error: str | None) -> None:
    if p.health is not None:
        p.health.last_poll, p.health.last_error = datetime.now(UTC), error
        p.health.taken = p.taken


class Workers:
    """The ledger workers: ``settings.workers`` processes, or one thread when it is 0."""

    def __init__(self, ctx: Context, name: str) -> None:
        count = ctx.settings.workers
        # the processes ``watch`` watches, by sentinel: held until their sentinel is no
        # longer watched (a Process freed closes it, and the number could be reused)
        self._watched: dict[int, Any] = {}
        self.threads: list[threading.Thread] = []
        self.processes: list = []
        if count <= 0:
            self.worker = Worker(Context(ctx.settings, ctx.engine, ctx.archive,
                                         worker=f"{name}/serve", trigger="serve"))
            self.threads.append(self.worker.start_thread())
            self.stop_event, self.wake_event = self.worker.stop_event, self.worker.wake_event
            return
        mp = multiprocessing.get_context("spawn")
        with _service_signals_blocked():  # the resource tracker starts with the first Event
            self.stop_event, self.wake_event = mp.Event(), mp.Event()
            self.results = mp.Queue()
        self._mp, self._settings, self._name = mp, ctx.settings, name
        for i in range(count):
            self.processes.append(self._start(i))

    def _start(self, i: int):  # noqa: ANN202
        proc = self._mp.Process(target=run_worker_process, name=f"dmp-worker-{i + 1}",
                                args=(self._settings, f"{self._name}/serve-{i + 1}",
                                      self.stop_event, self.wake_event, self.results,
                                      os.getpid()))
        # not daemonic: a worker runs its own OCR process pool (daemons may not have
        # children); it dies with the service anyway (PR_SET_PDEATHSIG) and stop() joins it
        with _service_signals_blocked():
            proc.start()
        return proc

    def revive(self, ctx: Context) -> int:
        """Replace the worker processes that died (killed, out of memory): their claims are
        given back, a new process takes their place. Without this the listener would go on
        acknowledging while nothing drains the ledger."""
        revived = 0
        for i, proc in enumerate(self.processes):
            if proc.is_alive() or self.stop_event.is_set():
                continue
            worker = f"{self._name}/serve-{i + 1}"
            released = release_worker(ctx.engine, worker)
            log.error("worker process %s died (exit code %s); %d claimed row(s) given back, "
                      "a new worker started", worker, proc.exitcode, released)
            self.processes[i] = self._start(i)
            self.wake_event.set()
            revived += 1
        return revived

    def watch(self, loop: asyncio.AbstractEventLoop, ended: Callable[[], None]) -> None:
        """Call ``ended`` in ``loop`` when one of the worker processes ends."""
        for proc in self.processes:
            if proc.sentinel not in self._watched:
                self._watched[proc.sentinel] = proc
                loop.add_reader(proc.sentinel, self._ended, loop, proc.sentinel, ended)

    def _ended(self, loop: asyncio.AbstractEventLoop, sentinel: int,
               ended: Callable[[], None]) -> None:
        loop.remove_reader(sentinel)
        self._watched.pop(sentinel, None)
        ended()

    def unwatch(self, loop: asyncio.AbstractEventLoop) -> None:
        for sentinel in self._watched:
            loop.remove_reader(sentinel)
        self._watched.clear()

    def wake(self) -> None:
        self.wake_event.set()

    def stop(self, timeout: float = 60.0) -> dict[str, int]:
        """Let every worker finish its batch; their outcome counts, added up."""
        self.stop_event.set()
        self.wake_event.set()
        totals: dict[str, int] = {}
        if self.threads:
            for t in self.threads:
                t.join(timeout)
            return dict(self.worker.totals)
        expected, deadline = len(self.processes), time.monotonic() + timeout
        while expected and time.monotonic() < deadline:
            try:
                got = self.results.get(timeout=0.5)
            except queue.Empty:
                # a worker that died (killed while it was starting, before it ignores the
                # signals meant for the service) never sends its counts: the stop waited
                # the whole timeout for them
                if not any(p.is_alive() for p in self.processes) and self.results.empty():
                    break
                continue
            expected -= 1
            for status, n in got.items():
                totals[status] = totals.get(status, 0) + n
        for proc in self.processes:
            proc.join(timeout)
            if proc.is_alive():
                proc.kill()
        return totals
