"""The asyncio MLLP listener: many connections, each carrying many frames, each answered
(one ACK, a commit ACK then an application ACK, or for a batch one frame holding a batch of
ACKs: whatever the handler returns, each in a frame of its own).

Each connection reads a frame, hands it to the group committer and writes back the answer
before reading the next frame (MLLP is request/response per connection; a sender that
pipelines gets its ACKs in order). The committer runs the storing handler in one thread on
whatever frames are waiting, so the frames of many connections share one archive sync and one
ledger commit: throughput grows with concurrency while each ACK still follows durable storage.
With a ``prepare`` function, each frame's own work (parsing its header, writing its bytes) is
done by another thread as soon as it arrives, while the previous group is being stored.

An empty frame (VT FS CR: a keep-alive) is no message: not stored, not answered
(``is_empty_frame``). TLS is ``connectors.mllp.tls``: a client that closes its side after its
last frame is still answered.

Shutdown (``stop``): stop accepting, let every connection finish the frame it is handling and
write its ACK, close the idle ones, then stop the committer. Nothing here parses HL7: the
handler (pipelines.acknowledge) does, on bytes.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import resource
import socket
import ssl
import traceback
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

from connectors.mllp.framing import FrameReader, Oversize
from connectors.mllp.proxy import ProxyHeaderError, parse_header
from connectors.mllp.tls import TLSServerProtocol
from pipelines.acknowledge import ACK_BLOCKS, Answered, Frame
from pipelines.faults import fault_point
from pipelines.logs import Throttle

log = logging.getLogger("dmp.mllp")

# Seconds of the window in which a peer's warnings of one kind (``MLLPServer._warn_peer``)
# are limited to five
PEER_WARNING_WINDOW = 60.0


def _log_bug(what: str, *args: object, exc: BaseException) -> None:
    """A bug's type and where it happened, never its text: an exception's message can quote
    what it was handling (a database error its statement's parameters: names, NIRs)."""
    log.error(what + ": %s at\n%s", *args, type(exc).__name__,
              "".join(traceback.format_tb(exc.__traceback__)))

# frames (or what prepare made of them) -> the answers of each, or an Answered whose
# processing (``then``) runs apart from the storing
Handler = Callable[[list], list[list[bytes]] | Answered]
Reply = tuple[list[bytes], "asyncio.Future[list[bytes]] | None"]  # now, then what follows
Prepare = Callable[[Frame], object]


class GroupCommitter:
    """Queues frames from all connections and stores them group by group, with up to
    ``in_flight`` groups being stored at once (each by a thread of its own: while one group's
    ledger rows are committed, the next group's bytes are archived). A connection has one
    frame in flight at a time, so its ACKs keep their order whatever the groups do.
    Default 1: on 2 cores, two storing threads measured slower (980 against 1,100 ACK/s with
    8 senders; again 1,550 against 1,900 once frames were prepared on arrival): they contend
    for the interpreter and make smaller groups; the fsyncs they would overlap cost well
    under a millisecond on this disk.

    ``linger``: a group waits up to that long for the connections answered by the previous
    group (their next frame is on its way), so that they are stored together. Without it,
    8 senders split into two cohorts that took turns (groups of 1 and 7, each paying a sync
    and a commit); a connection that does not send again within ``linger`` is not waited
    for, and a lone sender never waits (nobody else is on the way)."""

    LINGER = 0.001
    # Threads processing groups before their application ACKs (``Answered.then``), apart
    # from the storing thread: a slow message (a large one, the store's write lock held by
    # the worker) holds back the answers of its own group only; the groups that arrive
    # meanwhile are stored, answered when they need no processing, and processed beside it.
    PROCESSING_THREADS = 4

    def __init__(self, handler: Handler, max_group: int = 500, in_flight: int = 1,
                 prepare: Prepare | None = None, linger: float = LINGER) -> None:
        self.handler = handler
        self.max_group = max_group
        self.in_flight = max(1, in_flight)
        self.queue: list[tuple[Frame | Future, asyncio.Future, object]] = []
        self.wakeup = asyncio.Event()
        self.linger = linger
        self.returning: dict[object, float] = {}  # sender -> when its answer was ready
        self._timer: asyncio.TimerHandle | None = None
        self.executor = ThreadPoolExecutor(self.in_flight, thread_name_prefix="mllp-commit")
        # One thread: frames are prepared in arrival order, and a second one would only
        # contend with the storing thread for the interpreter.
        self.prepare = prepare
        self.preparer = (ThreadPoolExecutor(1, thread_name_prefix="mllp-prepare")
                         if prepare is not None else None)
        self.processor = ThreadPoolExecutor(self.PROCESSING_THREADS,
                                            thread_name_prefix="mllp-process")
        self.processing: set[asyncio.Task] = set()
        self.closing = False
        self.groups = 0
        self.frames = 0

    async def submit(self, frame: Frame, sender: object = None) -> Reply:
        """The answers to ``frame``: those to send now, and a future for those that follow
        its processing (None when nothing follows); ``sender`` (its connection) lets a group
        wait for the next frame of a connection it has just answered (``linger``)."""
        future = asyncio.get_running_loop().create_future()
        self.returning.pop(sender, None)
        if self.preparer is not None:  # started now; the storing thread waits for it
            self.queue.append((self.preparer.submit(self.prepare, frame), future, sender))
        else:
            self.queue.append((frame, future, sender))
        self.wakeup.set()
        return await future

    def forget(self, sender: object) -> None:
        """A connection closed: no frame of it to wait for."""
        self.returning.pop(sender, None)

    def _handle(self, items: list[Frame | Future]) -> list[list[bytes]] | Answered:
        """In the storing thread: the group's prepared frames (waiting for those still being
        prepared), then the handler."""
        return self.handler([i.result() if isinstance(i, Future) else i for i in items])

    async def run(self) -> None:
        storing: set[asyncio.Task] = set()
        while True:
            await self.wakeup.wait()
            self.wakeup.clear()
            while self.queue and len(storing) < self.in_flight and not self._lingering():
                group = self.queue[:self.max_group]
                del self.queue[:self.max_group]
                task = asyncio.create_task(self._store(group))
                storing.add(task)
                task.add_done_callback(self._stored(storing))
            if self.closing and not self.queue and not storing:
                return

    def _lingering(self) -> bool:
        """Whether to wait a little more before taking a group (a wake-up is then set for
        when the oldest connection being waited for is given up)."""
        if self.closing or len(self.queue) >= self.max_group or not self.returning:
            return False
        loop = asyncio.get_running_loop()
        now = loop.time()
        for sender, answered in list(self.returning.items()):
            if now - answered >= self.linger:
                del self.returning[sender]
        if not self.returning:
            return False
        if self._timer is not None:
            self._timer.cancel()
        self._timer = loop.call_at(min(self.returning.values()) + self.linger,
                                   self.wakeup.set)
        return True

    def _stored(self, storing: set[asyncio.Task]):  # noqa: ANN202
        def done(task: asyncio.Task) -> None:
            storing.discard(task)
            self.wakeup.set()  # room for the next group
        return done

    async def _store(self, group: list[tuple[Frame | Future, asyncio.Future, object]]) -> None:
        loop = asyncio.get_running_loop()
        try:
            answers = await loop.run_in_executor(self.executor, self._handle,
                                                 [f for f, _, _ in group])
        except Exception as exc:  # a bug: no ACK at all rather than a wrong one
            _fail([fut for _, fut, _ in group], exc, "storing a group of %d frame(s) failed")
            return
        self.groups += 1
        self.frames += len(group)
        if not isinstance(answers, Answered):
            answers = Answered(answers, [False] * len(group))
        later = [loop.create_future() if waits else None for waits in answers.pending]
        if answers.then is not None:
            task = asyncio.create_task(self._process(answers.then, later))
            self.processing.add(task)
            task.add_done_callback(self.processing.discard)
        now = loop.time()
        for (_, fut, sender), answer, then in zip(group, answers.now, later, strict=True):
            if not fut.done():
                fut.set_result((answer, then))
                if sender is not None and then is None:
                    self.returning[sender] = now

    async def _process(self, then: Callable[[], list[list[bytes]]],
                       later: list[asyncio.Future | None]) -> None:
        """A stored group's processing, in a processing thread; each waiting connection then
        gets what follows its first answers."""
        waiting = [f for f in later if f is not None]
        try:
            answers = await asyncio.get_running_loop().run_in_executor(self.processor, then)
        except Exception as exc:  # a bug: no application ACK rather than a wrong one
            _fail(waiting, exc, "processing a group for its %d answer(s) failed")
            return
        for fut, answer in zip(later, answers, strict=True):
            if fut is not None and not fut.done():
                fut.set_result(answer)

    async def close(self) -> None:
        self.closing = True
        self.wakeup.set()

    def shutdown(self) -> None:
        """The threads, once ``run`` has returned."""
        self.executor.shutdown(wait=True)
        self.processor.shutdown(wait=True)
        if self.preparer is not None:
            self.preparer.shutdown(wait=True)


def _fail(futures: list[asyncio.Future], exc: Exception, what: str) -> None:
    """A bug in the handler: logged without its text; its connections end unanswered."""
    _log_bug(what, len(futures), exc=exc)
    for fut in futures:
        if not fut.done():
            fut.set_exception(exc)


def tls_context(cert: Path, key: Path | None = None,
                client_ca: Path | None = None) -> ssl.SSLContext:
    """Server TLS; with ``client_ca`` every client must present a certificate it signed."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(str(cert), str(key) if key else None)
    if client_ca:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(str(client_ca))
    return context


# Seconds a closed connection has to take the answers still queued for it before it is
# aborted: a peer that neither reads nor closes (a hung engine) kept the socket, its file
# descriptor and its buffers for ever once closed (asyncio's close waits for the queue to
# empty), its connection no longer counted against max_connections: a hung engine that
# reconnects leaked one descriptor per connection towards the limit storing needs.
CLOSE_GRACE = 5.0
STREAM_LIMIT = 1 << 20  # a connection's StreamReader buffer (frames are read 64 KiB at a time)
HANDSHAKE_TIMEOUT = 60.0  # seconds for a TLS handshake (asyncio's default), at most idle_timeout
# A connection's kernel send buffer, fixed (Linux doubles it: 64 KiB). ACKs are a few hundred
# bytes; left to autotuning, the buffer grew to megabytes for a sender that never reads its
# ACKs, and the listener stored some 10,000 of its frames (27 MB) before it stopped reading.
# Fixed, it stops after a few hundred; a sender that reads its ACKs never fills it.
ACK_SEND_BUFFER = 32 * 1024
# What a peer opening with another protocol than MLLP is told and what the log says of it
# (``MLLPServer._refuse_foreign``)
_HTTP_BODY = b"This port takes HL7 v2 over MLLP, not HTTP requests.\r\n"
HTTP_REFUSAL = (b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\n"
                b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(_HTTP_BODY)
                + _HTTP_BODY)
FOREIGN_HINTS = {"TLS": "a TLS handshake (ClientHello)", "HTTP": "an HTTP request"}
FOREIGN_ADVICE = {
    "TLS": "the sender expects TLS on this plain MLLP port: configure the listener's TLS, or "
           "plain MLLP on the sender",
    "HTTP": "answered 400 (a health check or a browser on the MLLP port: check it over TCP)",
}
# OpenSSL reasons meaning the peer spoke no TLS at all (plain MLLP, HTTP) on the TLS port
_NOT_TLS = frozenset({"WRONG_VERSION_NUMBER", "HTTP_REQUEST", "HTTPS_PROXY_REQUEST",
                      "UNKNOWN_PROTOCOL", "UNSUPPORTED_PROTOCOL", "RECORD_LAYER_FAILURE",
                      "PACKET_LENGTH_TOO_LONG"})


def _fix_send_buffer(sock: socket.socket | None) -> None:
    """``ACK_SEND_BUFFER`` for this connection's answers (a TLS connection's socket too)."""
    if sock is None:
        return
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, ACK_SEND_BUFFER)
    except OSError:  # a socket that takes no such option: the kernel's default stays
        pass


def _tls_failure(exc: BaseException) -> str:
    """Why a handshake failed, in OpenSSL's words (a reason code, never the peer's data)."""
    if isinstance(exc, TimeoutError):
        return "no handshake within the timeout"
    reason = getattr(exc, "reason", None)
    if isinstance(exc, ssl.SSLError) and reason:
        return f"{reason}: the peer is not speaking TLS" if reason in _NOT_TLS else reason
    if isinstance(exc, ConnectionError):
        return f"the peer closed the connection ({type(exc).__name__})"
    return type(exc).__name__


def _spoken_instead(opening: bytes) -> str:
    """What a client that failed the handshake sent instead of a ClientHello, by its first
    bytes' kind only (never the bytes: they may open a patient's message). A lab's engine
    sending plain MLLP to the TLS port saw its connection closed, and the log said
    'WRONG_VERSION_NUMBER: the peer is not speaking TLS': right, but not what to change."""
    head = opening.lstrip(b"\r\n")
    if head.startswith((b"\x0b", b"MSH", b"FHS", b"BHS")):
        return ("; it sent plain MLLP (an HL7 frame, no TLS ClientHello): the sender's "
                "connection is not set for TLS (turn TLS on in it, or point it at the plain "
                "MLLP port)")
    if head[:4] in (b"GET ", b"POST", b"HEAD", b"PUT ", b"PRI "):
        return "; it sent an HTTP request"
    return ""


class _TLSAccept(asyncio.Protocol):
    """A TLS connection just accepted: handed at once to its TLS layer (``TLSServerProtocol``,
    which keeps answering a client that closed its side), the handshake awaited by
    ``MLLPServer._accept_tls``."""

    def __init__(self, server: MLLPServer) -> None:
        self.server = server

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.server._start_tls(transport, transport.get_extra_info("peername"))


class _ProxyAccept(asyncio.Protocol):
    """A connection from a load balancer (``proxy_protocol``): its PROXY header read first,
    then the connection handed on as coming from the sender the header names (plain MLLP,
    or TLS: the balancer writes the header in clear before the client's ClientHello).
    Refused, with one warning naming the balancer and the reason, when it comes from an
    address not in ``proxy_trusted`` (anyone could otherwise claim any lab's address), when
    its first bytes are not a header, or when none came within the handshake timeout."""

    def __init__(self, server: MLLPServer) -> None:
        self.server = server
        self.buffer = b""
        self.transport: asyncio.Transport | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.peer: str | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        server = self.server
        self.transport, self.peer = transport, peer_address(transport.get_extra_info("peername"))
        _keep_alive(transport.get_extra_info("socket"))
        if not server.trusts_balancer(self.peer):
            server._warn_peer(self.peer, "proxy untrusted",
                              "connection from %s closed at once: the listener expects a "
                              "PROXY protocol header and this address is not one of its "
                              "load balancers (proxy_trusted)", self.peer)
            transport.abort()
            return
        open_now = len(server._handshakes) + len(server._idle) + len(server._proxy_pending)
        if open_now >= server.max_connections:  # each holds a descriptor as any connection
            server._warn_peer(self.peer, "proxy full",
                              "connection from the load balancer %s closed at once: %d "
                              "connection(s) open or waiting for their PROXY header, the "
                              "listener's limit (max_connections %d)", self.peer, open_now,
                              server.max_connections)
            transport.abort()
            return
        server._proxy_pending.add(transport)
        self.timer = asyncio.get_running_loop().call_later(
            min(server.idle_timeout, HANDSHAKE_TIMEOUT), self._refuse,
            "no PROXY protocol header within the handshake timeout")

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        try:
            parsed = parse_header(self.buffer)
        except ProxyHeaderError as exc:
            self._refuse(str(exc))
            return
        if parsed is None:
            return
        header, taken = parsed
        self._done()
        assert self.transport is not None
        peername = header.source or self.transport.get_extra_info("peername")
        log.debug("connection from %s through the load balancer %s (PROXY protocol v%d)",
                  peer_address(peername), self.peer, header.version)
        self.server._after_proxy(self.transport, peername, self.buffer[taken:])

    def eof_received(self) -> bool:
        self._refuse("closed before its PROXY protocol header was complete")
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._done()

    def _done(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.transport is not None:
            self.server._proxy_pending.discard(self.transport)

    def _refuse(self, reason: str) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        self.server._warn_peer(self.peer, "proxy " + reason,
                               "connection from the load balancer %s refused: %s", self.peer,
                               reason)
        self._done()
        self.transport.abort()


ALL_IPV6 = "::"


def dual_stack_socket(port: int) -> socket.socket:
    """A listening socket on every address, IPv6 and IPv4, for the host '::'. asyncio
    makes an IPv6 listener IPv6-only: a listener set to '::' (all addresses, as Java
    engines and most Linux servers read it) refused every lab connecting over IPv4."""
    sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        try:
            sock.bind((ALL_IPV6, port))
        except OSError as exc:  # said only "Address already in use": which one, as asyncio
            raise OSError(exc.errno, f"error while attempting to bind on address "
                          f"[{ALL_IPV6}]:{port}: {(exc.strerror or str(exc)).lower()}") from None
        sock.listen(socket.SOMAXCONN)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


# TCP keepalive on accepted connections: a sender whose network went away without a word
# (a NAT or firewall forgetting the flow, a VPN down) held its connection slot, and its
# per-peer slot, until idle_timeout (5 minutes by default; hours for a frame being written).
# Probes after 60 s of silence, every 15 s, 4 unanswered: the connection ends in about 2 min.
KEEPALIVE_IDLE, KEEPALIVE_INTERVAL, KEEPALIVE_COUNT = 60, 15, 4


def _keep_alive(sock: socket.socket | None) -> None:
    """TCP keepalive on an accepted connection (``KEEPALIVE_*``), where the system has it."""
    if sock is None:
        return
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        for name, value in (("TCP_KEEPIDLE", KEEPALIVE_IDLE),
                            ("TCP_KEEPINTVL", KEEPALIVE_INTERVAL),
                            ("TCP_KEEPCNT", KEEPALIVE_COUNT)):
            if hasattr(socket, name):
                sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, name), value)
    except OSError:  # the connection already gone
        pass


def peer_address(peername: object) -> str | None:
    """The peer's address as the sources' ``peers`` and the operator know it: an IPv4
    client of a dual-stack listener ('::ffff:10.1.2.3') as its IPv4 address."""
    if not isinstance(peername, tuple) or not peername:
        return None
    host = str(peername[0])
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return str(address.ipv4_mapped)
    return host


# What an empty frame may hold: nothing, or the line ends, blanks and NUL of a template
KEEP_ALIVE_BYTES = b"\r\n \t\x00"


def is_empty_frame(payload: bytes) -> bool:
    """Whether a frame holds no message at all (VT FS CR, or VT CR FS CR): the keep-alive
    some engines send on an idle connection. It has no MSH, so no MSA-2 to answer: it was
    stored as a failed import and answered AR with an empty MSA-2, which the sender read as
    the answer to its next message (an engine that does not wait for an answer to its
    keep-alive), every later ACK then one message late. HL7 v2.5 2.9 acknowledges
    messages, and the MLLP release 2 commit acknowledgement acknowledges content; an
    empty frame is neither: not stored, not answered, logged."""
    return not payload.strip(KEEP_ALIVE_BYTES)


FDS_KEPT = 256  # file descriptors left for storing (archive files, database, pools, API)
OVER_LIMIT_LOG_EVERY = 10.0  # seconds between two warnings of connections closed at the limit


def connection_limit(asked: int = 0) -> int:
    """How many connections may be open at once: ``asked``, else the process's file
    descriptor limit less ``FDS_KEPT``. Past the limit, accept() failed (EMFILE: asyncio
    logged a traceback per attempt) and, worse, storing could no longer open the archive's
    files: every sender's message was answered AR 207, the idle connections holding the
    descriptors. A connection over the limit is closed at once instead; its sender keeps
    its messages and connects again."""
    if asked > 0:
        return asked
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 1 << 16
    return max(16, soft - FDS_KEPT)


class MLLPServer:
    def __init__(self, handler: Handler, *, host: str = "127.0.0.1", port: int = 2575,
                 max_frame_bytes: int = 10 * 1024 * 1024, idle_timeout: float = 300.0,
                 ssl_context: ssl.SSLContext | None = None,
                 prepare: Prepare | None = None, max_connections: int = 0,
                 max_connections_per_peer: int = 0, proxy_protocol: bool = False,
                 proxy_trusted: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = (),
                 ) -> None:
        self.committer = GroupCommitter(handler, prepare=prepare)
        self.host, self.port = host, port
        self.max_frame_bytes = max_frame_bytes
        self.idle_timeout = idle_timeout
        self.ssl_context = ssl_context
        self.server: asyncio.Server | None = None
        self._committer_task: asyncio.Task | None = None
        self._idle: dict[asyncio.Task, bool] = {}  # connection task -> waiting for a frame
        # TLS connections in their handshake (their task then serves them, in ``_idle``)
        self._handshakes: set[asyncio.Task] = set()
        self.closing = False
        self.connections = 0
        self.acks = 0
        self.foreign = 0  # connections that opened with another protocol (TLS, HTTP)
        self.max_connections = connection_limit(max_connections)
        self.turned_away = 0  # connections closed at the limit since the last warning
        self.max_per_peer = max_connections_per_peer  # 0: no limit but the listener's
        self._per_peer: dict[str | None, int] = {}  # peer address -> connections open
        self._warned_at: float | None = None
        self._peer_warnings = Throttle(window_seconds=PEER_WARNING_WINDOW)
        # behind a load balancer: each connection starts with a PROXY protocol header
        # naming its sender, read from the balancers ``proxy_trusted`` only
        self.proxy_protocol = proxy_protocol
        self.proxy_trusted = proxy_trusted
        self._proxy_pending: set[asyncio.Transport] = set()  # their header not yet read
        self._proxied_tasks: set[asyncio.Task] = set()  # plain ones, until they start

    def trusts_balancer(self, peer: str | None) -> bool:
        """Whether ``peer`` is one of the load balancers whose PROXY headers are believed."""
        try:
            address = ipaddress.ip_address((peer or "").split("%", 1)[0])
        except ValueError:
            return False
        return any(address in net for net in self.proxy_trusted)

    def _start_tls(self, transport: asyncio.Transport, peername: object,
                   data: bytes = b"") -> None:
        """A TLS connection accepted (from ``peername``: the sender's address, a PROXY
        header's when behind a balancer): handed at once to its TLS layer, ``data`` (what
        followed the PROXY header) its first bytes."""
        if self._over_limit(peername):
            transport.close()
            return
        assert self.ssl_context is not None
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=STREAM_LIMIT)
        tls = TLSServerProtocol(self.ssl_context, asyncio.StreamReaderProtocol(reader), loop)
        transport.set_protocol(tls)  # before any byte is read: the ClientHello goes to it
        tls.connection_made(transport)
        if data:
            tls.data_received(data)
        task = loop.create_task(self._accept_tls(tls, reader, peername))
        self._handshakes.add(task)
        task.add_done_callback(self._handshakes.discard)
        peer = peer_address(peername)
        task.add_done_callback(lambda _: self._release(peer))  # run or cancelled

    def _after_proxy(self, transport: asyncio.Transport, peername: object, data: bytes) -> None:
        """A balancer's connection whose PROXY header is read: served as the sender's."""
        if self.closing:
            transport.abort()
            return
        if self.ssl_context is not None:
            self._start_tls(transport, peername, data)
            return
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=STREAM_LIMIT)
        protocol = asyncio.StreamReaderProtocol(reader)
        transport.set_protocol(protocol)
        protocol.connection_made(transport)
        if data:
            protocol.data_received(data)
        writer = asyncio.StreamWriter(transport, protocol, reader, loop)
        task = loop.create_task(self._serve_connection(reader, writer, peername))
        self._proxied_tasks.add(task)
        task.add_done_callback(self._proxied_tasks.discard)

    def _warn_peer(self, peer: str | None, kind: str, what: str, *args: object) -> None:
        """``log.warning(what, *args)``, five a minute per peer and ``kind`` at most, the
        count held back said with the next line. The warnings of what a peer's connections
        do wrong (a failed TLS handshake, frames without their start block, oversize
        frames, bytes outside frames, a frame cut by the timeout) came one per connection
        or frame: a misconfigured engine retrying every second (plain MLLP on the TLS
        port, no client certificate) wrote 86,400 a day, drowning every other line."""
        now, held = self._peer_warnings.allow((peer, kind))
        if now:
            log.warning(what + "%s", *args, f" ({held} more such from this peer since the "
                        "last such line)" if held else "")

    def _over_limit(self, peername: object) -> bool:
        """Whether a connection just accepted is one too many (closed at once): a warning
        names the peer and the limit, then at most one every ``OVER_LIMIT_LOG_EVERY``
        seconds with the count (a sender retrying in a loop must not flood the log).
        Admitted, it is counted for its peer until ``_release``."""
        peer = peer_address(peername)
        if self._peer_over_limit(peer):
            return True
        open_now = len(self._handshakes) + len(self._idle) + len(self._proxy_pending)
        if open_now < self.max_connections:
            self._per_peer[peer] = self._per_peer.get(peer, 0) + 1
            return False
        self.turned_away += 1
        now = asyncio.get_running_loop().time()
        if self._warned_at is None or now - self._warned_at >= OVER_LIMIT_LOG_EVERY:
            log.warning("connection from %s closed at once: %d connection(s) open, the "
                        "listener's limit (max_connections %d); %d turned away since the "
                        "last warning. Idle connections hold the others: see idle_timeout",
                        peer, open_now, self.max_connections, self.turned_away)
            self._warned_at, self.turned_away = now, 0
        return True

    def _peer_over_limit(self, peer: str | None) -> bool:
        """Whether the peer already has ``max_per_peer`` connections open. One engine that
        opens a connection per retry and never closes the old ones (a channel restarted in
        a loop, half-open connections behind a firewall) took every slot of the listener,
        and every other lab's connection was closed at once until its idle ones timed out.
        Its own new connections are closed now; the other peers are served."""
        open_now = self._per_peer.get(peer, 0)
        if self.max_per_peer <= 0 or open_now < self.max_per_peer:
            return False
        self._warn_peer(peer, "per-peer limit",
                        "connection from %s closed at once: %d connection(s) open from this "
                        "peer, the listener's limit per peer (max_connections_per_peer %d); "
                        "the other peers are served", peer, open_now, self.max_per_peer)
        return True

    def _release(self, peer: str | None) -> None:
        """An admitted connection has ended: one fewer for its peer."""
        left = self._per_peer.get(peer, 0) - 1
        if left > 0:
            self._per_peer[peer] = left
        else:
            self._per_peer.pop(peer, None)

    async def start(self) -> None:
        self._committer_task = asyncio.create_task(self.committer.run())
        where: dict = ({"sock": dual_stack_socket(self.port)} if self.host == ALL_IPV6
                       else {"host": self.host, "port": self.port, "reuse_address": True})
        if self.proxy_protocol:  # the PROXY header first (``_ProxyAccept``), then TLS if any
            self.server = await asyncio.get_running_loop().create_server(
                lambda: _ProxyAccept(self), **where)
        elif self.ssl_context is None:
            self.server = await asyncio.start_server(self._serve_connection,
                                                     limit=STREAM_LIMIT, **where)
        else:  # the handshake is ours, to say who failed it and why (``_accept_tls``)
            self.server = await asyncio.get_running_loop().create_server(
                lambda: _TLSAccept(self), **where)
        self.port = self.server.sockets[0].getsockname()[1]  # the real one when port was 0
        log.info("MLLP listening on %s%s%s", self.bound(), " (TLS)" if self.ssl_context
                 else "", " (PROXY protocol)" if self.proxy_protocol else "")

    def bound(self) -> str:
        """Where it listens, as the operator writes it: every bound address ('localhost'
        is two), an IPv6 one in brackets ('[::]:2575', not ':::2575')."""
        if self.server is None:
            return ""
        found = []
        for sock in self.server.sockets:
            host, port = sock.getsockname()[:2]
            found.append(f"[{host}]:{port}" if ":" in host else f"{host}:{port}")
        return ", ".join(dict.fromkeys(found))

    async def stop(self, grace: float = 30.0) -> None:
        """Stop accepting; finish in-flight frames (ACK written); close idle connections."""
        self.closing = True
        if self.server is not None:
            self.server.close()
        for task in list(self._handshakes):  # not a connection yet: nothing in flight
            task.cancel()
        for transport in list(self._proxy_pending):  # no PROXY header yet: nothing either
            transport.abort()
        for task, idle in list(self._idle.items()):
            if idle:
                task.cancel()
        if self._idle:
            await asyncio.wait(list(self._idle), timeout=grace)
        for task in list(self._idle):  # still busy after the grace period
            task.cancel()
        await self.committer.close()
        if self._committer_task is not None:
            await asyncio.wait([self._committer_task], timeout=grace)
        self.committer.shutdown()

    async def _accept_tls(self, tls: TLSServerProtocol, reader: asyncio.StreamReader,
                          peername: object = None) -> None:
        """The TLS handshake of a connection accepted in plain TCP, then the connection.
        asyncio's own (``start_server(ssl=...)``) drops a failed handshake without a word
        outside its debug mode: a lab sending plain MLLP to the TLS port, or connecting
        without the client certificate asked for, got no ACK and nobody could tell it why.
        A failure is one warning naming the peer and the TLS reason (no traceback); a
        handshake not done within ``HANDSHAKE_TIMEOUT`` (at most ``idle_timeout``) frees its
        slot, said as such (it was said "the peer closed the connection")."""
        assert tls.transport is not None
        transport = tls.transport
        peername = peername or transport.get_extra_info("peername")
        peer = peer_address(peername)
        try:
            async with asyncio.timeout(min(self.idle_timeout, HANDSHAKE_TIMEOUT)):
                await asyncio.shield(tls.handshake)
        except (OSError, TimeoutError, ConnectionError) as exc:  # ssl.SSLError is an OSError
            reason = _tls_failure(exc) + _spoken_instead(tls.opening)
            self._warn_peer(peer, "tls " + reason,
                            "TLS handshake with %s failed (%s): connection closed", peer,
                            reason)
            transport.abort() if isinstance(exc, TimeoutError) else transport.close()
            return
        except asyncio.CancelledError:  # stopping
            transport.abort()
            raise
        # a connection now: stop() lets it finish the frame it is handling (it cancelled
        # every TLS connection at once, ACKs of stored frames unsent)
        self._handshakes.discard(asyncio.current_task())  # type: ignore[arg-type]
        protocol = tls.app
        assert isinstance(protocol, asyncio.StreamReaderProtocol)
        writer = asyncio.StreamWriter(tls.app_transport, protocol, reader,
                                      asyncio.get_running_loop())
        await self._serve_connection(reader, writer, peername)

    async def _write(self, writer: asyncio.StreamWriter, answers: list[bytes]) -> None:
        """Each answer in a frame of its own."""
        if not answers:
            return
        writer.write(b"".join(b"\x0b" + a + b"\x1c\r" for a in answers))
        async with asyncio.timeout(self.idle_timeout):
            await writer.drain()
        self.acks += sum(a not in ACK_BLOCKS for a in answers)  # HL7 ACKs, not blocks
        fault_point("mllp.acked")  # acknowledged: the sender will not send it again

    async def _refuse_foreign(self, writer: asyncio.StreamWriter, peer: str | None,
                              protocol: str) -> None:
        """A peer that opened with another protocol (``FrameReader.foreign``): one warning
        naming it (five a minute per peer: a health check polls), an HTTP client answered
        400 with the reason so whoever reads it learns which port this is; the connection
        is then closed. A TLS client gets no bytes it could misread: the close ends its
        handshake at once (it waited for the idle timeout)."""
        self.foreign += 1
        if protocol == "HTTP":
            writer.write(HTTP_REFUSAL)
            try:
                async with asyncio.timeout(CLOSE_GRACE):
                    await writer.drain()
            except (ConnectionError, TimeoutError):
                pass
        self._warn_peer(peer, "foreign " + protocol,
                        "connection from %s opened with %s, not MLLP: closed at once; %s",
                        peer, FOREIGN_HINTS.get(protocol, protocol), FOREIGN_ADVICE[protocol])

    async def _serve_connection(self, reader: asyncio.StreamReader,
                                writer: asyncio.StreamWriter, peername: object = None) -> None:
        """One connection's frames; ``peername``: its sender's address when it is not the
        socket's own (a PROXY protocol header's)."""
        task = asyncio.current_task()
        assert task is not None
        peername = peername or writer.get_extra_info("peername")
        if self.ssl_context is None and self._over_limit(peername):
            writer.close()
            return
        _fix_send_buffer(writer.get_extra_info("socket"))
        _keep_alive(writer.get_extra_info("socket"))
        peer = peer_address(peername)
        plain = self.ssl_context is None  # counted for its peer here (TLS: by its task)
        self._idle[task] = True
        self.connections += 1
        def unframed() -> None:
            self._warn_peer(peer, "unframed",
                            "connection from %s: a frame ended (FS) without its start block "
                            "(VT): skipped, not answered; the sender's MLLP framing lacks the "
                            "start block", peer)

        frames = FrameReader(reader, self.max_frame_bytes, on_unframed=unframed)
        count = acknowledged = empty = 0
        proxy_said = False  # a PROXY header this listener is not set up for: warned once
        try:
            while not self.closing:
                self._idle[task] = True
                try:
                    async with asyncio.timeout(self.idle_timeout):  # no task per frame, as
                        got = await frames.next()                  # wait_for makes (3.11)
                except TimeoutError:
                    if frames.in_frame:  # a slow loris, or a link too slow for the frame
                        self._warn_peer(peer, "cut",
                                        "connection from %s: frame not finished within %ss: "
                                        "closed, not answered (its sender still holds it)",
                                        peer, self.idle_timeout)
                    else:
                        log.info("connection from %s idle for %ss: closed", peer,
                                 self.idle_timeout)
                    break
                if frames.proxy_header is not None and not proxy_said:
                    proxy_said = True
                    self._warn_peer(peer, "proxy header",
                                    "connection from %s opened with a PROXY protocol header "
                                    "(v%d: a load balancer's), but this listener is not set "
                                    "up for it (proxy_protocol): header skipped, the "
                                    "connection taken as the balancer's, whose address the "
                                    "allow-lists see", peer, frames.proxy_header.version)
                if got is None:
                    if frames.foreign is not None:
                        await self._refuse_foreign(writer, peer, frames.foreign)
                    break
                if isinstance(got, bytes) and got in ACK_BLOCKS:  # a release 2 peer
                    acknowledged += 1  # acknowledging our ACK: no message (stored as one,
                    continue           # it was answered AR, which the peer acknowledged...)
                if isinstance(got, bytes) and is_empty_frame(got):
                    empty += 1
                    if empty == 1:  # a heartbeat every minute: one line per connection
                        log.info("connection from %s: empty frame (no MSH: a keep-alive), "
                                 "not stored, not answered", peer)
                    continue
                self._idle[task] = False
                received_at = datetime.now(UTC)
                if isinstance(got, Oversize):
                    self._warn_peer(peer, "oversize",
                                    "frame of %d bytes from %s over the %d-byte limit",
                                    got.size, peer, self.max_frame_bytes)
                    item = Frame(got.head, peer, received_at, size=got.size)
                else:
                    item = Frame(got, peer, received_at)
                answers, then = await self.committer.submit(item, task)
                count += 1
                await self._write(writer, answers)
                if then is not None:  # what follows its processing (an application ACK)
                    await self._write(writer, await then)
        except (ConnectionError, TimeoutError, ssl.SSLError) as exc:
            log.info("connection from %s ended: %s", peer, type(exc).__name__)
        except asyncio.CancelledError:
            pass
        except Exception as exc:  # the handler's bug: this connection ends, the others go on
            _log_bug("connection from %s failed", peer, exc=exc)
        finally:
            self._idle.pop(task, None)
            if plain:
                self._release(peer)
            self.committer.forget(task)
            if frames.skipped or frames.abandoned or frames.inner_fs:
                self._warn_peer(peer, "noise",
                                "connection from %s: %d byte(s) outside frames skipped, %d "
                                "unfinished frame(s) abandoned, %d FS byte(s) inside frames "
                                "read as content", peer, frames.skipped, frames.abandoned,
                                frames.inner_fs)
            log.debug("connection from %s closed after %d frame(s), %d MLLP release 2 "
                      "acknowledgement block(s) and %d empty frame(s)", peer, count,
                      acknowledged, empty)
            writer.close()
            try:
                await asyncio.wait_for(writer.wait_closed(), CLOSE_GRACE)
            except TimeoutError:  # the peer takes none of what is left: let it go
                writer.transport.abort()
            except (Exception, asyncio.CancelledError):
                pass
