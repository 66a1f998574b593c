"""The MLLP listener against engines we have not seen, round 12: peers that open a plain
MLLP port with another protocol (an engine configured for TLS, an HTTP health check), a
message without its control id (MSH-10) in accept mode, a .NET sender's byte order mark
before its start block, and a load balancer's PROXY protocol header on a listener not set
up for it. Over real sockets, on one SQLite service in accept mode started for the
module."""

from __future__ import annotations

import logging
import socket
import ssl
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from connectors.mllp.framing import opening_protocol
from connectors.mllp.proxy import V2_SIGNATURE
from dossiers.schema import imports
from tests.conftest import migrated_sqlite
from tests.mllp_support import Client, msa, read_frame, running_service, segment
from tests.test_mllp_senders_round8 import message
from tests.test_mllp_service import make_ctx

IDLE = 60.0  # the module service's idle timeout: what a foreign client waited for before
WAIT = 10.0  # a client's socket timeout, under IDLE: waiting for the idle timeout fails


class Service:
    """The module's service: its port and context."""

    def __init__(self, svc, ctx) -> None:  # noqa: ANN001
        self.port, self.ctx = svc.port, ctx

    def rows(self, **where: object) -> list:
        query = select(imports.c.id, imports.c.status, imports.c.error_code,
                       imports.c.error_location, imports.c.logical_id)
        for name, value in where.items():
            query = query.where(imports.c[name] == value)
        with self.ctx.engine.connect() as conn:
            return conn.execute(query.order_by(imports.c.id)).all()


@pytest.fixture(scope="module")
def service(tmp_path_factory, sqlite_template) -> Iterator[Service]:  # noqa: ANN001
    tmp = tmp_path_factory.mktemp("round12")
    ctx = make_ctx(tmp, migrated_sqlite(sqlite_template, tmp / "store.sqlite3"),
                   idle_timeout=IDLE)
    try:
        with running_service(ctx, process=False) as svc:
            yield Service(svc, ctx)
    finally:
        ctx.engine.dispose()



# -- another protocol on the plain MLLP port --------------------------------------------------

def test_connection_openings_are_told_apart() -> None:
    """A TLS record of type handshake and HTTP request lines are foreign; MLLP starts with
    VT, a sender without start blocks with MSH, keep-alive noise with line ends."""
    assert opening_protocol(b"\x16\x03\x01\x02\x00\x01") == "TLS"
    assert opening_protocol(b"GET /sante HTTP/1.1") == "HTTP"
    assert opening_protocol(b"PRI * HTTP/2.0\r\n") == "HTTP"
    for mllp in (b"\x0bMSH|^~\\&|", b"MSH|^~\\&|", b"\r\n\x0bMSH", b"\x16\x0bMSH", b"GETX"):
        assert opening_protocol(mllp) is None, mllp


def test_a_tls_client_on_the_plain_port_is_refused_at_once(service: Service, caplog) -> None:  # noqa: ANN001
    """An engine configured for TLS pointed at the plain port: its ClientHello was read as
    noise (it holds 0x0B bytes, so a frame was started inside it) until the idle timeout,
    the client waiting for a ServerHello, then the log said a frame had been cut. The
    connection is now closed at once, the log saying the peer speaks TLS; the listener
    serves the next sender."""
    caplog.set_level(logging.INFO, logger="dmp.mllp")
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", service.port), timeout=WAIT) as raw:
        with pytest.raises((ssl.SSLError, ConnectionError)):  # not TimeoutError
            context.wrap_socket(raw)
    with Client(service.port) as client:
        assert msa(client.send(message("TLS-APRES")))[1:3] == ["AA", "TLS-APRES"]
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("opened with a TLS handshake" in line for line in lines), lines
    assert not [line for line in lines if "frame not finished" in line or "outside" in line]


def test_an_http_request_on_the_mllp_port_is_answered_400(service: Service, caplog) -> None:  # noqa: ANN001
    """A load balancer's HTTP health check (or a browser) on the MLLP port: answered 400
    with a line saying what the port takes, and closed; it waited for the idle timeout and
    got nothing. Nothing is recorded on the ledger: no message came."""
    caplog.set_level(logging.INFO, logger="dmp.mllp")
    before = len(service.rows())
    with socket.create_connection(("127.0.0.1", service.port), timeout=WAIT) as sock:
        sock.sendall(b"GET /sante HTTP/1.1\r\nHost: dmp-intake\r\n\r\n")
        answer = bytearray()
        while chunk := sock.recv(4096):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert answer.endswith(b"\r\n\r\nThis port takes HL7 v2 over MLLP, not HTTP requests.\r\n")
    assert len(service.rows()) == before
    assert any("opened with an HTTP request" in r.getMessage() for r in caplog.records)


# -- a message without its control id (MSH-10) -----------------------------------------------

def test_a_message_without_control_id_is_refused_in_accept_mode(service: Service) -> None:
    """A hand-written sender that leaves MSH-10 empty (or blank): accept mode answered AA
    with an empty MSA-2, and processing then failed the message (HL7_NO_CONTROL_ID), its
    sender never told. It is refused from its header now, as an application-mode listener
    refuses it: AE, ERR 101 at MSH-10 in the message's own version form (ERR-1 before
    v2.5), CR in enhanced mode; the frame archived and recorded as failed with that code."""
    answers = {}
    with Client(service.port) as client:
        answers["2.5"] = client.send(message(""))
        answers["2.3"] = client.send(message("  ").replace(b"|P|2.5|", b"|P|2.3|", 1))
        answers["enhanced"] = client.send(message("").replace(b"|P|2.5|||", b"|P|2.5|||AL|NE|"))
        answers["after"] = client.send(message("MSH10-APRES"))
    assert msa(answers["2.5"])[1:3] == ["AE", ""]
    assert segment(answers["2.5"], "ERR")[2:5] == [
        "MSH^1^10^1", "101^Required field missing^HL70357", "E"]
    assert msa(answers["2.3"])[1:3] == ["AE", "  "]
    assert segment(answers["2.3"], "ERR")[1] == "MSH^1^10^101&Required field missing&HL70357"
    assert msa(answers["enhanced"])[1] == "CR"
    assert msa(answers["after"])[1:3] == ["AA", "MSH10-APRES"]
    assert [r.status for r in service.rows(error_code="HL7_NO_CONTROL_ID")] == ["failed"] * 3


def test_a_batch_answers_its_messages_without_control_id_alone(service: Service) -> None:
    """In a batch, each message without MSH-10 gets its own AE, the first one too (refusing
    the first refused the whole batch: its sender would resend the good ones); the others
    are answered AA and filed."""
    batch = (b"BHS|^~\\&|LABM|CERBALLIANCE_LYON|DMP-INTAKE|DMP|20250114114500+0100||||LOT-12\r"
             + message("") + message("LOT-12-2") + message(" ").replace(b"|4.07|", b"|4.08|")
             + b"BTS|3\r")
    with Client(service.port) as client:
        answer = client.send(batch)
    codes = [line.split("|")[1:3] for line in answer.decode().split("\r")
             if line.startswith("MSA|")]
    assert codes == [["AE", ""], ["AA", "LOT-12-2"], ["AE", " "]]
    assert answer.decode().rstrip("\r").endswith("BTS|3")


# -- a byte order mark before the start block -------------------------------------------------

def test_a_bom_before_the_start_block_is_no_noise_to_warn_about(service: Service,  # noqa: ANN001
                                                                caplog) -> None:
    """A .NET sender writing through a UTF-8 StreamWriter puts the writer's preamble (a BOM)
    before its first VT on each connection. The message was answered, but each connection
    made a warning that bytes outside frames were skipped (a sender connecting per message:
    a warning per message). A BOM there is now padding, as blanks and line ends are; other
    bytes are still counted."""
    caplog.set_level(logging.INFO, logger="dmp.mllp")
    for n, lead in enumerate((b"\xef\xbb\xbf", b"\r\n\xef\xbb\xbf", b"\xef\xbb\xbf#")):
        with socket.create_connection(("127.0.0.1", service.port), timeout=WAIT) as sock:
            sock.sendall(lead + b"\x0b" + message(f"BOM-{n}") + b"\x1c\r")
            buffer = bytearray()
            ack = read_frame(sock, buffer)
            sock.shutdown(socket.SHUT_WR)  # the listener logs what it skipped, then closes
            assert read_frame(sock, buffer) is None
        assert msa(ack)[1:3] == ["AA", f"BOM-{n}"]
    skipped = [r.getMessage() for r in caplog.records if "outside frames" in r.getMessage()]
    assert len(skipped) == 1 and " 1 byte(s) outside frames skipped" in skipped[0], skipped


# -- a PROXY protocol header the listener is not set up for -----------------------------------

def test_a_proxy_header_on_a_listener_not_set_up_for_it_is_named(service: Service,  # noqa: ANN001
                                                                 caplog) -> None:
    """A load balancer switched to the PROXY protocol (HAProxy send-proxy, a cloud balancer's
    'proxy protocol v2' option) in front of a listener not configured for it: the header
    was skipped as noise, the warning counting bytes outside frames and never naming the
    balancer's setting. It is now dropped whole and named once per connection (the frame
    after it answered as before, as the balancer's connection's); bytes that only look
    like a header's beginning are still noise."""
    caplog.set_level(logging.INFO, logger="dmp.mllp")
    v1 = b"PROXY TCP4 10.1.2.3 10.0.0.5 40000 2575\r\n"
    body = bytes([10, 1, 2, 3, 10, 0, 0, 5]) + (40000).to_bytes(2, "big") + (2575).to_bytes(
        2, "big")
    v2 = V2_SIGNATURE + b"\x21\x11" + len(body).to_bytes(2, "big") + body
    for n, lead in enumerate((v1, v2, b"PROXY ?\r\n")):
        with socket.create_connection(("127.0.0.1", service.port), timeout=WAIT) as sock:
            sock.sendall(lead + b"\x0b" + message(f"PROXY-{n}") + b"\x1c\r")
            buffer = bytearray()
            ack = read_frame(sock, buffer)
            sock.shutdown(socket.SHUT_WR)  # the listener logs, then closes
            assert read_frame(sock, buffer) is None
        assert msa(ack)[1:3] == ["AA", f"PROXY-{n}"]
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    named = [line for line in lines if "PROXY protocol header" in line]
    assert [("(v1:" in line, "(v2:" in line) for line in named] == [(True, False),
                                                                   (False, True)], lines
    noise = [line for line in lines if "outside frames" in line]
    assert len(noise) == 1 and " 6 byte(s) outside frames skipped" in noise[0], noise
