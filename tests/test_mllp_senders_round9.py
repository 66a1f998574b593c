"""The MLLP listener behind the networks hospitals and labs really use, round 9: a TCP load
balancer writing the PROXY protocol header (v1 text, v2 binary; plain and TLS after it),
IPv6 and IPv4-mapped peers against allow-lists in CIDR, TCP keepalive on accepted
connections, and a port already taken. Over real sockets, on module services."""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
import os
import socket
import ssl
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from connectors.mllp.proxy import ProxyHeaderError, parse_header
from dossiers.schema import imports
from pipelines.settings import SettingsError, Source, load_settings
from tests.conftest import migrated_sqlite
from tests.mllp_support import CR, FS, VT, ec_tls_files, msa, read_frame, running_service
from tests.test_mllp_service import make_ctx, original_mode, sample

V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"
LAB_NETS = ("10.1.2.0/24", "2001:db8:42::/48")
SOURCES = (Source("labs", peers=tuple(ipaddress.ip_network(n) for n in LAB_NETS)),)
TRUSTED = (ipaddress.ip_network("127.0.0.1/32"),)  # the "balancer"; 127.0.0.2 is not one


def message(control_id: str) -> bytes:
    return original_mode(sample("01_labm_nfs.hl7")).replace(
        b"|RB2501140000001|", f"|{control_id}|".encode(), 1)


def v1(src: str, family: str = "TCP4", dst: str = "10.0.0.1") -> bytes:
    return f"PROXY {family} {src} {dst} 40000 2575\r\n".encode()


def v2(src: str, command: int = 1) -> bytes:
    address = ipaddress.ip_address(src)
    if address.version == 4:
        body = address.packed + bytes(4) + struct.pack("!HH", 40000, 2575)
        family = 0x11
    else:
        body = address.packed + bytes(16) + struct.pack("!HH", 40000, 2575)
        family = 0x21
    body += b"\x04\x00\x02ab"  # a TLV (PP2_TYPE_NOOP): skipped
    return V2_SIG + bytes([0x20 | command, family]) + struct.pack("!H", len(body)) + body


class Svc:
    def __init__(self, svc, ctx) -> None:  # noqa: ANN001
        self.port, self.ctx = svc.port, ctx

    def last_peer(self) -> str | None:
        """The peer recorded on the latest ledger row (each test reads its own, just sent)."""
        with self.ctx.engine.connect() as conn:
            return conn.execute(select(imports.c.peer).order_by(imports.c.id.desc())
                                .limit(1)).scalar_one()


@pytest.fixture(scope="module")
def proxied(tmp_path_factory, sqlite_template) -> Iterator[Svc]:  # noqa: ANN001
    tmp = tmp_path_factory.mktemp("round9")
    ctx = make_ctx(tmp, migrated_sqlite(sqlite_template, tmp / "store.sqlite3"),
                   sources=SOURCES, proxy_protocol=True, proxy_trusted=TRUSTED,
                   max_connections_per_peer=1, idle_timeout=0.5)
    try:
        with running_service(ctx, process=False) as svc:
            yield Svc(svc, ctx)
    finally:
        ctx.engine.dispose()


def connect(port: int, source: str | None = None, host: str = "127.0.0.1") -> socket.socket:
    return socket.create_connection((host, port), timeout=5,
                                    source_address=(source, 0) if source else None)


def exchange(sock: socket.socket, payload: bytes) -> bytes | None:
    sock.sendall(VT + payload + FS + CR)
    return read_frame(sock, bytearray(), 5)


def closed_at_once(sock: socket.socket, within: float = 30.0) -> bool:
    """Closed by the listener, without an answer. ``within``: a bound on a loaded machine
    (recv returns at the close), well below any timeout the service is not given here."""
    sock.settimeout(within)
    try:
        return sock.recv(100) == b""
    except ConnectionResetError:
        return True


# -- PROXY protocol ----------------------------------------------------------------------------

@pytest.mark.parametrize("header,expected", [
    (v1("10.1.2.3"), "10.1.2.3"),
    (v1("2001:db8:42::7", "TCP6", "2001:db8::1"), "2001:db8:42::7"),
    (v2("10.1.2.4"), "10.1.2.4"),
    (v2("2001:db8:42::8"), "2001:db8:42::8"),
])
def test_a_proxy_header_names_the_sender_its_allow_list_is_matched_against(
        proxied: Svc, header: bytes, expected: str) -> None:
    """Behind HAProxy, an NLB or an F5 every connection came from the balancer: a source's
    ``peers`` refused every lab (or, listing the balancer, allowed anyone). The header's
    sender is now the peer: allowed, recorded on the ledger."""
    with connect(proxied.port) as sock:
        sock.sendall(header)
        ack = exchange(sock, message(f"PX{len(header)}{expected[-1]}"))
    assert ack is not None and msa(ack)[1] == "AA"
    assert proxied.last_peer() == expected


def test_a_header_split_over_packets_and_a_sender_outside_the_allow_list(proxied: Svc) -> None:
    header = v2("192.0.2.9")
    with connect(proxied.port) as sock:
        sock.sendall(header[:7])  # a prefix of the signature: waited for, not refused
        sock.sendall(header[7:20])
        sock.sendall(header[20:])
        ack = exchange(sock, message("PXOUT"))
    assert ack is not None and msa(ack)[1] == "AR"  # 192.0.2.9 is no lab of this source


@pytest.mark.parametrize("first,reason", [
    (VT + b"MSH|^~\\&|LAB", "no PROXY protocol header"),
    (b"PROXY TCP4 10.1.2.3 nonsense\r\n", "version 1 header"),
    (V2_SIG + b"\x21\x31\x00\x00", "not TCP"),
])
def test_a_missing_or_bad_header_is_refused_with_a_line_naming_the_balancer(
        proxied: Svc, first: bytes, reason: str, caplog) -> None:  # noqa: ANN001
    caplog.set_level(logging.WARNING, "dmp.mllp")
    with connect(proxied.port) as sock:
        sock.sendall(first)
        assert closed_at_once(sock)
    lines = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert lines and "127.0.0.1" in lines[-1] and reason in lines[-1]
    assert "MSH" not in lines[-1] and "10.1.2.3" not in lines[-1]  # nothing it sent quoted


def test_no_header_within_the_timeout_frees_the_slot(proxied: Svc, caplog) -> None:  # noqa: ANN001
    caplog.set_level(logging.WARNING, "dmp.mllp")
    with connect(proxied.port) as sock:
        assert closed_at_once(sock)  # idle_timeout 0.5 s
    assert any("within the handshake timeout" in r.getMessage() for r in caplog.records)


def test_a_header_from_an_address_not_a_balancer_is_not_believed(proxied: Svc, caplog) -> None:  # noqa: ANN001
    """Anyone able to reach the port could otherwise claim a lab's address."""
    caplog.set_level(logging.WARNING, "dmp.mllp")
    with connect(proxied.port, source="127.0.0.2") as sock:
        sock.sendall(v1("10.1.2.3"))
        assert closed_at_once(sock)
    assert any("127.0.0.2" in r.getMessage() and "proxy_trusted" in r.getMessage()
               for r in caplog.records)


def test_the_per_peer_limit_counts_the_senders_behind_the_balancer(proxied: Svc) -> None:
    """max_connections_per_peer 1: every connection came from the balancer, so a second
    lab's was closed at once. Now one per sender."""
    with connect(proxied.port) as first, connect(proxied.port) as second:
        first.sendall(v1("10.1.2.10"))
        second.sendall(v1("10.1.2.11"))
        ack = exchange(second, message("PXLIM"))
        assert ack is not None and msa(ack)[1] == "AA"
        with connect(proxied.port) as third:  # 10.1.2.10 again: over its limit
            third.sendall(v1("10.1.2.10"))
            assert closed_at_once(third)


def test_a_balancer_health_check_is_not_a_sender(proxied: Svc) -> None:
    """v2 LOCAL (HAProxy's health checks): the balancer's own connection; a message on it
    is the balancer's, not any lab's."""
    with connect(proxied.port) as sock:
        sock.sendall(v2("10.1.2.3", command=0))
        ack = exchange(sock, message("PXLOCAL"))
    assert ack is not None and msa(ack)[1] == "AR"


def test_connections_waiting_for_their_header_count_against_max_connections(
        tmp_path, sqlite_template) -> None:  # noqa: ANN001
    """A balancer's connections that never send their header held descriptors beyond
    max_connections (until the header timeout), the limit that keeps storing able to
    open the archive's files."""
    ctx = make_ctx(tmp_path, migrated_sqlite(sqlite_template, tmp_path / "s.sqlite3"),
                   sources=SOURCES, proxy_protocol=True, proxy_trusted=TRUSTED,
                   max_connections=2, idle_timeout=60)
    try:
        with running_service(ctx, process=False) as svc, connect(svc.port) as one, \
                connect(svc.port) as two:
            for sock in (one, two):  # both accepted and waiting (a header not yet complete)
                sock.sendall(b"PROXY TCP4")
            with connect(svc.port) as third:
                assert closed_at_once(third, within=30)  # not after the 60 s timeout
            one.settimeout(0.1)
            with pytest.raises(TimeoutError):  # the first ones still wait for their header
                one.recv(1)
    finally:
        ctx.engine.dispose()


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory) -> dict[str, Path]:  # noqa: ANN001
    """A CA and a server certificate for 127.0.0.1 (tests/mllp_support.py)."""
    return ec_tls_files(tmp_path_factory.mktemp("tls9"))


def test_tls_follows_the_proxy_header(tmp_path, sqlite_template, tls_files) -> None:  # noqa: ANN001
    """The balancer writes the header in clear, then relays the client's TLS."""
    ctx = make_ctx(tmp_path, migrated_sqlite(sqlite_template, tmp_path / "s.sqlite3"),
                   sources=SOURCES, proxy_protocol=True, proxy_trusted=TRUSTED,
                   tls_cert=tls_files["server.pem"], tls_key=tls_files["server.key"])
    client = ssl.create_default_context(cafile=str(tls_files["ca.pem"]))
    try:
        with running_service(ctx, process=False) as svc, connect(svc.port) as raw:
            raw.sendall(v2("10.1.2.5"))
            with client.wrap_socket(raw, server_hostname="127.0.0.1") as sock:
                ack = exchange(sock, message("PXTLS"))
            assert ack is not None and msa(ack)[1] == "AA"
            assert Svc(svc, ctx).last_peer() == "10.1.2.5"
    finally:
        ctx.engine.dispose()


def test_the_setting_and_its_parser() -> None:
    env = {"DMP_HOME": "/nonexistent", "DMP_MLLP_PROXY_PROTOCOL": "true"}
    with pytest.raises(SettingsError, match="proxy_trusted"):
        load_settings(env=env)  # believing anyone's header: refused at start
    listener = load_settings(env={**env, "DMP_MLLP_PROXY_TRUSTED": "10.0.0.0/24, fd00::1"}
                             ).listener
    assert listener.proxy_protocol and len(listener.proxy_trusted) == 2
    assert parse_header(b"PROXY TCP4 10.1.2") is None  # more to come
    assert parse_header(V2_SIG[:5]) is None
    with pytest.raises(ProxyHeaderError):
        parse_header(b"PROXY " + b"x" * 120)
    with pytest.raises(ProxyHeaderError):
        parse_header(v1("10.1.2.3", "TCP6"))  # an IPv4 address said to be TCP6


# -- IPv6, keepalive, start ----------------------------------------------------------------------

def test_ipv6_and_ipv4_mapped_peers_against_cidr_allow_lists() -> None:
    """An allow-list entry written in the IPv4-mapped form (as an IPv6-only tool writes it)
    matched no IPv4 peer of a dual-stack listener, which are recorded in IPv4 form."""
    source = Source("x", peers=(ipaddress.ip_network("::ffff:10.1.2.0/120"),
                                ipaddress.ip_network("10.9.0.0/16"),
                                ipaddress.ip_network("2001:db8::/32")))
    assert source.allows_peer("10.1.2.3")
    assert source.allows_peer("::ffff:10.9.1.1")
    assert source.allows_peer("2001:db8::1")
    assert not source.allows_peer("10.1.3.3") and not source.allows_peer("::1")


def server_side(client: socket.socket) -> socket.socket:
    """The listener's socket of ``client``'s connection (same process: the service runs in
    a thread), found among this process's descriptors."""
    want = (client.getsockname(), client.getpeername())
    for fd in os.listdir("/proc/self/fd"):
        try:
            sock = socket.socket(fileno=os.dup(int(fd)))
        except OSError:
            continue
        try:
            if (sock.getpeername(), sock.getsockname()) == want:
                return sock
        except OSError:
            pass
        sock.close()
    raise AssertionError("server side not found")


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="finds sockets in /proc")
def test_accepted_connections_have_tcp_keepalive(proxied: Svc) -> None:
    """A sender whose NAT or VPN dropped the flow held its slot until idle_timeout."""
    with connect(proxied.port) as sock:
        sock.sendall(v1("10.1.2.20"))
        assert msa(exchange(sock, message("PXKA")) or b"MSA|")[1] == "AA"
        theirs = server_side(sock)
        with theirs:
            assert theirs.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
            assert theirs.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) <= 120


def test_an_ipv6_listener_prints_its_address(tmp_path, sqlite_template, capsys) -> None:  # noqa: ANN001
    """'MLLP on :::2575' read as nonsense to an operator: now '[::]:2575'."""
    ctx = make_ctx(tmp_path, migrated_sqlite(sqlite_template, tmp_path / "s.sqlite3"),
                   host="::")
    try:
        with running_service(ctx, process=False) as svc:
            assert f"MLLP on [::]:{svc.port}" in capsys.readouterr().out
            with socket.create_connection(("::1", svc.port), timeout=5) as sock:
                ack = exchange(sock, message("V6"))
                assert ack is not None and msa(ack)[1] == "AA"
    finally:
        ctx.engine.dispose()


def test_a_taken_port_says_which_and_stops_the_workers(tmp_path, sqlite_template) -> None:  # noqa: ANN001
    """On '::' a taken port said only 'Address already in use'; and the ledger workers,
    started before the listener, were left running (worker processes then died with
    tracebacks once the service had exited under them)."""
    import asyncio
    import threading

    from connectors.service import serve

    with socket.socket(socket.AF_INET6) as taken:
        taken.bind(("::", 0))
        taken.listen()
        port = taken.getsockname()[1]
        ctx = make_ctx(tmp_path, migrated_sqlite(sqlite_template, tmp_path / "s.sqlite3"),
                       host="::")
        ctx.settings = dataclasses.replace(ctx.settings, listener=dataclasses.replace(
            ctx.settings.listener, port=port))
        before = sum(t.name == "ledger-worker" for t in threading.enumerate())
        try:
            with pytest.raises(OSError, match=rf"\[::\]:{port}.*in use"):
                asyncio.run(serve(ctx, process=True, pollers=False))
        finally:
            ctx.engine.dispose()
    assert sum(t.name == "ledger-worker" and t.is_alive()
               for t in threading.enumerate()) == before
