"""The MLLP listener against engines we have not seen, round 8: empty frames (an engine's
keep-alive), TLS clients that close their sending side (close_notify, or a bare TCP FIN)
right after their last frame, and handshakes that never end. Over real sockets, on one
plain service and one TLS service started for the module (the suite is at its CI-time
limit)."""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from dossiers.schema import imports
from tests.conftest import migrated_sqlite
from tests.mllp_support import CR, FS, VT, Client, ec_tls_files, msa, read_frame, running_service
from tests.test_mllp_service import make_ctx, original_mode, sample

TLS_IDLE = 0.5  # the TLS service's idle timeout, hence its handshake's
PER_PEER = 3  # the plain service's max_connections_per_peer


class GatedArchive:
    """The real archive, whose writes wait while ``gate`` is clear (a frame held in flight);
    ``entered`` is set when one is waiting."""

    def __init__(self, real) -> None:  # noqa: ANN001
        self.real, self.gate, self.entered = real, threading.Event(), threading.Event()
        self.gate.set()

    def put(self, data: bytes) -> str:
        self._wait()
        return self.real.put(data)

    def put_many(self, items: list) -> None:
        self._wait()
        self.real.put_many(items)

    def get(self, sha: str) -> bytes:
        return self.real.get(sha)

    def _wait(self) -> None:
        self.entered.set()
        self.gate.wait(60)


class Service:
    """A module service: its port, its context and the running service."""

    def __init__(self, svc, ctx) -> None:  # noqa: ANN001
        self.port, self.ctx, self.svc = svc.port, ctx, svc

    def rows(self) -> int:
        with self.ctx.engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(imports)).scalar_one()


@pytest.fixture(scope="module")
def service(tmp_path_factory, sqlite_template) -> Iterator[Service]:  # noqa: ANN001
    tmp = tmp_path_factory.mktemp("round8")
    ctx = make_ctx(tmp, migrated_sqlite(sqlite_template, tmp / "store.sqlite3"),
                   max_connections_per_peer=PER_PEER)
    try:
        with running_service(ctx, process=False) as svc:
            yield Service(svc, ctx)
    finally:
        ctx.engine.dispose()


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory) -> dict[str, Path]:  # noqa: ANN001
    """A CA and a server certificate for 127.0.0.1 (tests/mllp_support.py)."""
    return ec_tls_files(tmp_path_factory.mktemp("tls8"))


@pytest.fixture(scope="module")
def tls_service(tmp_path_factory, sqlite_template, tls_files) -> Iterator[Service]:  # noqa: ANN001
    tmp = tmp_path_factory.mktemp("round8-tls")
    ctx = make_ctx(tmp, migrated_sqlite(sqlite_template, tmp / "store.sqlite3"),
                   tls_cert=tls_files["server.pem"], tls_key=tls_files["server.key"],
                   idle_timeout=TLS_IDLE)
    ctx.archive = GatedArchive(ctx.archive)
    try:
        with running_service(ctx, process=False) as svc:
            yield Service(svc, ctx)
    finally:
        ctx.engine.dispose()


def message(control_id: str) -> bytes:
    """A Cerballiance NFS result (original mode), MSH-10 ``control_id``."""
    return original_mode(sample("01_labm_nfs.hl7")).replace(
        b"|RB2501140000001|", f"|{control_id}|".encode(), 1)


# -- empty frames -----------------------------------------------------------------------------

@pytest.mark.parametrize("keep_alive", [VT + FS + CR, VT + CR + FS + CR, VT + b"\r\n" + FS])
def test_an_empty_frame_is_a_keep_alive_not_stored_nor_answered(
        service: Service, keep_alive: bytes, caplog) -> None:  # noqa: ANN001
    """An engine's keep-alive, VT FS CR: no MSH, so no message and nothing for an ACK's
    MSA-2. It was archived as a failed import (HL7_NO_MSH) and answered AR with an empty
    MSA-2, which an engine that does not wait for an answer to its keep-alive read as the
    answer to its next message: that message 'refused', every later ACK one message
    late. Now the next frame read answers the next message, nothing is recorded, and the
    log says it once per connection."""
    before = service.rows()
    with caplog.at_level(logging.INFO, logger="dmp.mllp"), Client(service.port) as client:
        client.sock.sendall(keep_alive + keep_alive)
        first = client.send(message("KA-1"))
        client.sock.sendall(keep_alive)
        second = client.send(message("KA-2"))
    assert msa(first)[1:3] == ["AA", "KA-1"]
    assert msa(second)[1:3] == ["AA", "KA-2"]
    assert service.rows() == before + 2
    said = [r.getMessage() for r in caplog.records if "empty frame" in r.getMessage()]
    assert said == ["connection from 127.0.0.1: empty frame (no MSH: a keep-alive), not "
                    "stored, not answered"]


def test_a_frame_of_text_without_msh_is_still_refused(service: Service) -> None:
    """Found right, pinned: only an empty frame is a keep-alive; a frame with content and no
    MSH is still recorded and answered AR (HL7_NO_MSH), for its sender to learn why."""
    before = service.rows()
    with Client(service.port) as client:
        answer = client.send(b"PID|1||123^^^LABM\r")
    assert msa(answer)[1] == "AR"
    assert service.rows() == before + 1


# -- pipelining ---------------------------------------------------------------------------------

def test_a_sender_pipelining_enhanced_messages_gets_both_acks_of_each_in_order(
        service: Service) -> None:
    """Found right, pinned: an engine that sends its next frames before reading our answers,
    each message asking AL/AL: the listener reads one frame at a time, so the answers come
    in order, one per message (the commit ACK; the application ACK, with no return route
    declared, is held: round 11), and nothing more."""
    ids = [f"PIPE-{n}" for n in range(3)]
    with Client(service.port) as client:
        client.sock.sendall(b"".join(VT + _enhanced(message(i), "AL", "AL") + FS + CR
                                     for i in ids))
        answers = [read_frame(client.sock, client.buffer) for _ in range(3)]
        with pytest.raises(socket.timeout):
            read_frame(client.sock, client.buffer, timeout=0.5)
    assert [msa(a)[1:3] for a in answers] == [["CA", i] for i in ids]


def _enhanced(data: bytes, accept: str, application: str) -> bytes:
    """``data`` with MSH-15 and MSH-16 set."""
    first, _, rest = data.partition(b"\r")
    fields = first.split(b"|")
    fields[14:16] = [accept.encode(), application.encode()]
    return b"|".join(fields) + b"\r" + rest


# -- TLS clients closing their side ---------------------------------------------------------

def tls_send_and_close(port: int, ca: Path, payload: bytes, close: str) -> bytes:
    """A TLS client (memory buffers, to control each record) that sends ``payload`` and at
    once closes its sending side: ``close_notify`` (as Java's SSLSocket.shutdownOutput does
    in TLS 1.3) or ``fin`` (a TCP FIN under TLS, no close_notify); then reads what comes
    back until the listener closes. The plaintext received."""
    return tls_send_in_records(port, ca, [payload], close)


@pytest.mark.parametrize("close", ["close_notify", "fin"])
def test_a_tls_client_closing_its_side_after_its_last_frame_gets_its_acks(
        tls_service: Service, tls_files, close: str) -> None:  # noqa: ANN001
    """asyncio's TLS shut the connection down on the client's close_notify (or a FIN under
    TLS) and dropped the ACK written after it: both messages were stored, neither was
    answered, and the engine sent them again. Each is answered now, then the listener
    closes (what the same client over plain TCP got already, round 7)."""
    before = tls_service.rows()
    frames = VT + message(f"TLS-{close}-1") + FS + CR + VT + message(f"TLS-{close}-2") + FS
    received = tls_send_and_close(tls_service.port, tls_files["ca.pem"], frames, close)
    buffer = bytearray(received)
    acks = [read_frame(_Closed(), buffer) for _ in range(2)]
    assert [msa(a)[1:3] for a in acks] == [["AA", f"TLS-{close}-1"], ["AA", f"TLS-{close}-2"]]
    assert not buffer
    assert tls_service.rows() == before + 2


def tls_send_in_records(port: int, ca: Path, records: list[bytes], close: str) -> bytes:
    """``tls_send_and_close`` with each of ``records`` written as TLS records of its own, the
    last one in the same write as the close."""
    context = ssl.create_default_context(cafile=str(ca))
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname="127.0.0.1")
    with socket.create_connection(("127.0.0.1", port), timeout=60) as raw:
        while True:
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                raw.sendall(outgoing.read())
                incoming.write(raw.recv(65536))
        for n, record in enumerate(records, 1):
            tls.write(record)
            if n < len(records):
                raw.sendall(outgoing.read())
        if close == "close_notify":
            with pytest.raises(ssl.SSLWantReadError):
                tls.unwrap()  # sent; the listener's own is not in yet
        raw.sendall(outgoing.read())
        if close == "fin":
            raw.shutdown(socket.SHUT_WR)
        received = bytearray()
        while chunk := raw.recv(65536):
            incoming.write(chunk)
            try:
                while data := tls.read(65536):
                    received += data
            except (ssl.SSLWantReadError, ssl.SSLZeroReturnError):
                pass
    return bytes(received)


@settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck))
@given(cuts=st.lists(st.integers(min_value=1, max_value=8000), max_size=6),
       close=st.sampled_from(["close_notify", "fin"]))
def test_tls_records_cut_anywhere_still_give_one_ack_per_frame(
        tls_service: Service, tls_files, cuts: list[int], close: str) -> None:  # noqa: ANN001
    """The TLS layer is ours now: frames cut into records at any byte (a record ending
    between FS and CR, or inside a multi-byte accent), then the client's close: one ACK per
    frame, in order."""
    ids = [f"TLS-REC-{n}-{sum(cuts) % 997}-{close[0]}" for n in range(3)]
    stream = b"".join(VT + message(i) + FS + CR for i in ids)
    points = sorted({c % len(stream) for c in cuts} - {0})
    records = [stream[a:b] for a, b in zip([0, *points], [*points, len(stream)], strict=True)]
    received = tls_send_in_records(tls_service.port, tls_files["ca.pem"], records, close)
    buffer = bytearray(received)
    acks = [read_frame(_Closed(), buffer) for _ in ids]
    assert [msa(a)[1:3] for a in acks] == [["AA", i] for i in ids]


class _Closed:
    """A socket already read to its end, for ``read_frame`` over what was received."""

    def settimeout(self, timeout: float) -> None:
        pass

    def recv(self, size: int) -> bytes:
        return b""


def test_a_tls_client_that_never_sends_close_notify_is_served_and_let_go(
        tls_service: Service, tls_files) -> None:  # noqa: ANN001
    """Found right, pinned on the new TLS layer: a client that reads its ACK and drops the
    TCP connection without close_notify (most engines on restart) leaves no connection
    behind; the next one is served at once."""
    context = ssl.create_default_context(cafile=str(tls_files["ca.pem"]))
    for n in range(2):
        raw = socket.create_connection(("127.0.0.1", tls_service.port), timeout=60)
        sock = context.wrap_socket(raw, server_hostname="127.0.0.1")
        sock.sendall(VT + message(f"TLS-DROP-{n}") + FS + CR)
        assert msa(read_frame(sock, bytearray()))[1:3] == ["AA", f"TLS-DROP-{n}"]
        socket.socket(fileno=sock.detach()).close()  # no close_notify


def test_a_tls_handshake_that_never_ends_is_cut_and_said_so(
        tls_service: Service, caplog) -> None:  # noqa: ANN001
    """A peer that connects to the TLS port and sends nothing (a port scanner, a load
    balancer's check): its connection is closed once the handshake timeout (the idle
    timeout, here 0.5 s) has passed, and the warning says so. It said "the peer closed the
    connection (ConnectionAbortedError)", sending the operator after the peer."""
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="dmp.mllp"), \
            socket.create_connection(("127.0.0.1", tls_service.port), timeout=30) as raw:
        raw.sendall(b"\x16\x03\x01")  # the first bytes of a ClientHello, no more
        assert raw.recv(100) == b""  # closed by the listener
        waited = time.monotonic() - started
        deadline = time.monotonic() + 60
        while "TLS handshake" not in caplog.text and time.monotonic() < deadline:
            time.sleep(0.05)
    # the listener's own timeout, not asyncio's 60 s for a handshake (an upper bound that a
    # loaded machine cannot reach: it was TLS_IDLE + 1.5 s)
    assert TLS_IDLE * 0.9 <= waited < 30
    said = [r.getMessage() for r in caplog.records if "TLS handshake" in r.getMessage()]
    assert said == ["TLS handshake with 127.0.0.1 failed (no handshake within the timeout): "
                    "connection closed"]


# -- connections per peer ---------------------------------------------------------------------

def test_one_peer_cannot_take_every_connection(service: Service, caplog) -> None:  # noqa: ANN001
    """An engine that opens a connection per retry and never closes the old ones took every
    slot of the listener (only a total limit), and every other lab was closed at once.
    With ``max_connections_per_peer`` its own extra connection is closed at once, with a
    warning naming it; another peer is served meanwhile, and the peer again once one of
    its connections has closed."""
    clients = [Client(service.port) for _ in range(PER_PEER)]
    try:
        for n, client in enumerate(clients):
            assert msa(client.send(message(f"PEER-{n}")))[1] == "AA"
        with caplog.at_level(logging.WARNING, logger="dmp.mllp"), \
                socket.create_connection(("127.0.0.1", service.port), timeout=60) as extra:
            extra.sendall(VT + message("PEER-EXTRA") + FS + CR)
            assert _closed_unanswered(extra)
        assert "max_connections_per_peer 3" in caplog.text
        with Client(service.port, source="127.0.0.2") as other:
            assert msa(other.send(message("OTHER-PEER")))[1] == "AA"
        clients.pop().close()
        deadline = time.monotonic() + 60
        while True:  # its end is seen by the listener a moment later
            with socket.create_connection(("127.0.0.1", service.port), timeout=60) as sock:
                sock.sendall(VT + message("PEER-AGAIN") + FS + CR)
                answer = read_frame(sock, bytearray(), timeout=60)
            if answer is not None or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert answer is not None and msa(answer)[1:3] == ["AA", "PEER-AGAIN"]
    finally:
        for client in clients:
            client.close()


def _closed_unanswered(sock: socket.socket) -> bool:
    """Closed by the listener without an answer (a reset when what we sent was unread)."""
    try:
        return sock.recv(100) == b""
    except ConnectionResetError:
        return True


def test_the_limit_per_peer_is_read_from_the_settings(tmp_path) -> None:  # noqa: ANN001
    from pipelines.settings import load_settings

    env = {"DMP_HOME": str(tmp_path), "DMP_MLLP_MAX_CONNECTIONS_PER_PEER": "8"}
    assert load_settings(env=env).listener.max_connections_per_peer == 8
    (tmp_path / "dmp.toml").write_text("[mllp]\nmax_connections_per_peer = 5\n")
    assert load_settings(env={"DMP_HOME": str(tmp_path)}).listener.max_connections_per_peer \
        == 5
    assert load_settings(env={"DMP_HOME": str(tmp_path / "none")}
                         ).listener.max_connections_per_peer == 0


# -- a peer that neither reads nor closes ------------------------------------------------------

def _tcp_state(local_port: int, remote_port: int) -> str | None:
    """The kernel's state of the IPv4 socket from ``local_port`` to ``remote_port`` (hex, as
    /proc/net/tcp says it: '01' established), None when there is none."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, state = fields[1], fields[2], fields[3]
        if int(local.split(":")[1], 16) == local_port and \
                int(remote.split(":")[1], 16) == remote_port:
            return state
    return None


def test_a_peer_that_neither_reads_nor_closes_does_not_keep_its_socket(monkeypatch) -> None:  # noqa: ANN001
    """A hung engine: it sends, never reads its ACKs, never closes. After idle_timeout the
    listener closed the connection, but asyncio's close waits for the queued ACKs to be
    taken: the socket, its descriptor and buffers stayed established for ever, no longer
    counted against max_connections (a hung engine reconnecting leaked one per connection
    toward the descriptors storing needs). It is aborted after CLOSE_GRACE now."""
    from connectors.mllp import server as mllp_server

    monkeypatch.setattr(mllp_server, "CLOSE_GRACE", 0.2)
    ack = b"MSH|^~\\&|DMP|DMP|||20260101||ACK|1|P|2.5\rMSA|AA|1|" + b"x" * 4000 + b"\r"
    ready, done = threading.Event(), threading.Event()
    box: dict = {}

    async def serve() -> None:
        listener = mllp_server.MLLPServer(lambda frames: [[ack] for _ in frames], port=0,
                                          idle_timeout=0.3)
        await listener.start()
        box["port"] = listener.port
        ready.set()
        while not done.is_set():
            await asyncio.sleep(0.05)
        await listener.stop(grace=1)

    thread = threading.Thread(target=asyncio.run, args=(serve(),), daemon=True)
    thread.start()
    try:
        assert ready.wait(60)
        with socket.socket() as hung:
            hung.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            hung.connect(("127.0.0.1", box["port"]))
            hung.settimeout(0.5)
            try:
                for _ in range(2000):  # its ACKs back up long before
                    hung.sendall(VT + b"MSH|^~\\&|LABM|X|||20260101||ORU^R01|1|P|2.5\r" + FS + CR)
            except TimeoutError:
                pass
            mine = hung.getsockname()[1]
            deadline = time.monotonic() + 60
            while _tcp_state(box["port"], mine) == "01" and time.monotonic() < deadline:
                time.sleep(0.05)
            assert _tcp_state(box["port"], mine) != "01", "still established"
    finally:
        done.set()
        thread.join(5)


# -- last: stops the TLS service ----------------------------------------------------------------

def test_stopping_lets_a_tls_connection_finish_its_frame(tls_service: Service,
                                                         tls_files) -> None:  # noqa: ANN001
    """A stop lets every connection finish the frame it is handling and write its ACK; a
    TLS connection's task was cancelled at once with the handshakes (it stayed counted as
    one for its whole life): its frame was stored, its ACK never sent. Last in this file:
    it stops the module's TLS service."""
    archive = tls_service.ctx.archive
    context = ssl.create_default_context(cafile=str(tls_files["ca.pem"]))
    with socket.create_connection(("127.0.0.1", tls_service.port), timeout=60) as raw, \
            context.wrap_socket(raw, server_hostname="127.0.0.1") as sock:
        archive.gate.clear()
        archive.entered.clear()
        sock.sendall(VT + message("TLS-STOP") + FS + CR)
        try:
            assert archive.entered.wait(60)  # the frame is in flight
            stopping = threading.Thread(target=tls_service.svc.stop)
            stopping.start()
            time.sleep(0.15)  # the stop under way
        finally:
            archive.gate.set()
        ack = read_frame(sock, bytearray())
        stopping.join(60)
    assert ack is not None and msa(ack)[1:3] == ["AA", "TLS-STOP"]
