"""The MLLP client that delivers application ACKs to a source's return route (enhanced mode:
``pipelines.app_acks``): the ACKs queued in the outbox for that source, oldest first, over one
connection kept open, each in a frame of its own.

An ACK is removed from the outbox once written to the route (its bytes drained to the
socket). None is waited for in return: an acknowledgement is not acknowledged (v2.5 2.9),
and what the route sends back (an engine whose inbound channel answers every message) is
read and dropped, so that it never fills the connection. The route unreachable (refused,
timeout, TLS failure, closed): the ACKs stay queued, the connection is made again after
1 s, 2 s, 4 s... up to ``RETRY_MAX``, one warning a minute at most with the count queued.
The ACKs queued when the service stops are sent after its next start.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from pathlib import Path

from pipelines.app_acks import AckOutbox
from pipelines.logs import Throttle
from pipelines.settings import Source

log = logging.getLogger("dmp.mllp")

RETRY_FIRST, RETRY_MAX = 1.0, 60.0  # seconds between two attempts to reach the route
CONNECT_TIMEOUT = 10.0
RESCAN = 30.0  # seconds between two looks at the outbox without a wake-up
_unreachable = Throttle(window_seconds=60.0)


def route_context(source: Source) -> ssl.SSLContext | None:
    """The TLS client context of a source's route (its CA, else the system's), or None."""
    if not source.ack_route_tls:
        return None
    context = ssl.create_default_context(
        cafile=str(source.ack_route_ca) if source.ack_route_ca else None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


class AckSender:
    """One source's route: a task (``run``) sending what the outbox holds for it."""

    def __init__(self, source: Source, outbox: AckOutbox, *,
                 retry_first: float = RETRY_FIRST, retry_max: float = RETRY_MAX) -> None:
        assert source.ack_route is not None
        self.source = source
        self.host, self.port = source.ack_route
        self.outbox = outbox
        self.context = route_context(source)
        self.retry_first, self.retry_max = retry_first, retry_max
        self.wake = asyncio.Event()
        self.sent = 0
        self.writer: asyncio.StreamWriter | None = None
        self._drain_task: asyncio.Task | None = None

    def where(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'mllps' if self.context else 'mllp'}://{host}:{self.port}"

    async def run(self, stopping: asyncio.Event) -> None:
        delay = self.retry_first
        loop = asyncio.get_running_loop()
        try:
            while not stopping.is_set():
                self.wake.clear()
                queued = await loop.run_in_executor(None, self.outbox.queued, self.source.id)
                if not queued:
                    await _either(self.wake, stopping, RESCAN)
                    continue
                try:
                    await self._deliver(queued, stopping)
                    delay = self.retry_first
                except (OSError, TimeoutError, EOFError) as exc:  # ssl.SSLError is an OSError
                    self._close()
                    left = len(self.outbox.queued(self.source.id))
                    now, held = _unreachable.allow(self.source.id)
                    if now:
                        log.warning("application ACKs of source %s: route %s not reached (%s); "
                                    "%d queued, next attempt in %.0fs%s", self.source.id,
                                    self.where(), type(exc).__name__, left, delay,
                                    f" ({held} more failed attempts since the last such "
                                    "line)" if held else "")
                    await _either(stopping, stopping, delay)
                    delay = min(delay * 2, self.retry_max)
        finally:
            self._close()

    async def _deliver(self, queued: list[Path], stopping: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        for path in queued:
            if stopping.is_set():
                return
            ack = await loop.run_in_executor(None, _read, path)
            if ack is None:  # sent and removed meanwhile
                continue
            writer = await self._connection()
            writer.write(b"\x0b" + ack + b"\x1c\r")
            async with asyncio.timeout(CONNECT_TIMEOUT):
                await writer.drain()
            if writer.is_closing():
                raise EOFError("the route closed the connection")
            await loop.run_in_executor(None, self.outbox.sent, path)
            self.sent += 1

    async def _connection(self) -> asyncio.StreamWriter:
        if self.writer is not None and not self.writer.is_closing():
            return self.writer
        async with asyncio.timeout(CONNECT_TIMEOUT):
            reader, writer = await asyncio.open_connection(
                self.host, self.port, ssl=self.context,
                server_hostname=self.host if self.context else None)
        self.writer = writer
        self._drain_task = asyncio.create_task(self._drop_replies(reader, writer))
        log.info("application ACKs of source %s: connected to %s", self.source.id,
                 self.where())
        return writer

    async def _drop_replies(self, reader: asyncio.StreamReader,
                            writer: asyncio.StreamWriter) -> None:
        """Read what the route sends back (dropped); its end closes the connection."""
        try:
            while await reader.read(65536):
                pass
        except (OSError, asyncio.IncompleteReadError):
            pass
        if self.writer is writer:
            self._close()

    def _close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
        if self._drain_task is not None and self._drain_task is not asyncio.current_task():
            self._drain_task.cancel()
        self._drain_task = None


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


async def _either(first: asyncio.Event, second: asyncio.Event, timeout: float) -> None:
    """Until one of two events is set, or ``timeout`` seconds."""
    waits = [asyncio.ensure_future(first.wait()), asyncio.ensure_future(second.wait())]
    try:
        await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            w.cancel()
