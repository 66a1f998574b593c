"""The MLLP listener against engines we have not seen, round 7: end blocks padded with
blanks and blanks between frames, MLLP release 2 senders (NextGen Connect's "MLLPv2" mode: a
commit block before the HL7 ACK, a NAK when not stored, and their own blocks acknowledging
ours), acknowledgements sent to us (never answered), the ACK's MSH-18 under a declared
UTF-16, and what the log says of peers that retry a failing connection every second. Over
real sockets, on one service started for the module (the suite is at its CI-time limit),
except where a test needs settings of its own."""

from __future__ import annotations

import functools
import itertools
import logging
import socket
import subprocess
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from dossiers.schema import imports
from parsers.hl7v2.charset import CHARSETS
from pipelines.settings import Source
from tests.conftest import migrated_sqlite
from tests.mllp_support import CR, FS, VT, Client, msa, read_frame, running_service, segment
from tests.test_mllp_framing import run
from tests.test_mllp_service import FlakyArchive, make_ctx, original_mode, sample

# MLLP release 2 blocks (HL7 v3 Transport Specification, MLLP release 2): the whole frame
ACK_BLOCK, NAK_BLOCK = VT + b"\x06" + FS + CR, VT + b"\x15" + FS + CR
LIMIT = 64 * 1024  # the module service's frame size limit
SOURCES = (Source("mirth-v2", sending_application="MIRTH_V2", mllp_release=2),
           Source("labs"))


class Service:
    """The module's service, its context and the archive a test may take down."""

    def __init__(self, svc, ctx, archive: FlakyArchive) -> None:  # noqa: ANN001
        self.port, self.ctx, self.archive = svc.port, ctx, archive

    def rows(self) -> int:
        with self.ctx.engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(imports)).scalar_one()


@pytest.fixture(scope="module")
def service(tmp_path_factory, sqlite_template) -> Iterator[Service]:  # noqa: ANN001
    tmp = tmp_path_factory.mktemp("round7")
    ctx = make_ctx(tmp, migrated_sqlite(sqlite_template, tmp / "store.sqlite3"),
                   sources=SOURCES, max_frame_bytes=LIMIT)
    ctx.archive = archive = FlakyArchive(ctx.archive)
    archive.down = False
    try:
        with running_service(ctx, process=False) as svc:
            yield Service(svc, ctx, archive)
    finally:
        ctx.engine.dispose()


def message(control_id: str, application: str = "LABM") -> bytes:
    """A Cerballiance NFS result (original mode) from ``application``, MSH-10 ``control_id``."""
    data = original_mode(sample("01_labm_nfs.hl7"))
    return (data.replace(b"|LABM|", f"|{application}|".encode(), 1)
            .replace(b"|RB2501140000001|", f"|{control_id}|".encode(), 1))


# -- end blocks padded with blanks ------------------------------------------------------------

def test_an_end_block_followed_by_blanks_ends_the_frame() -> None:
    """'FS SP', 'FS TAB CR', 'FS SP VT...': the blanks pad the end block. The FS was read as
    a raw 0x1C inside the text (round 5) and the frame went on: its sender waited for an
    ACK that never came. An FS followed by blanks then text is still content."""
    inner = b"MSH|^~\\&|A\rNTE|1||x" + FS + b" y\rOBX|1\r"
    r = run([VT + b"MSH|a" + FS + b" ", VT + b"MSH|b" + FS + b"\t\r" + VT + inner + FS + b"  "
             + VT + b"MSH|c" + FS + b" \r\n"])
    assert r.frames == [b"MSH|a", b"MSH|b", inner, b"MSH|c"]
    assert (r.skipped, r.abandoned, r.unframed) == (0, 0, 0)


def test_a_sender_padding_its_end_block_with_a_blank_is_answered(service: Service) -> None:
    with socket.create_connection(("127.0.0.1", service.port), timeout=60) as sock:
        buffer = bytearray()
        sock.sendall(VT + message("PAD1") + FS + b" ")  # no CR: the blank, then it waits
        first = read_frame(sock, buffer)
        sock.sendall(VT + message("PAD2") + FS + b" \r")
        second = read_frame(sock, buffer)
    assert msa(first)[1:3] == ["AA", "PAD1"]
    assert msa(second)[1:3] == ["AA", "PAD2"]


def test_blanks_between_frames_are_no_noise_to_warn_about(service: Service, caplog) -> None:  # noqa: ANN001, E501
    """Blanks after an end block's CR (an engine padding to a fixed width, a CR LF SP):
    counted as bytes skipped, they made a warning that bytes outside frames were dropped,
    sending the operator after data that was never lost. Line ends and blanks are not
    counted now; other bytes still are."""
    caplog.set_level(logging.WARNING, logger="dmp.mllp")
    with socket.create_connection(("127.0.0.1", service.port), timeout=60) as sock:
        sock.sendall(VT + message("BLANK1") + FS + CR + b"  \t\r\n " + VT + message("BLANK2")
                     + FS + CR + b"   ")
        sock.shutdown(socket.SHUT_WR)
        buffer = bytearray()
        acks = [read_frame(sock, buffer) for _ in range(2)]
        assert read_frame(sock, buffer) is None  # closed: its warnings are said
    assert [msa(a)[1:3] for a in acks] == [["AA", "BLANK1"], ["AA", "BLANK2"]]
    assert _lines(caplog, "outside frames skipped") == []


def test_a_sender_closing_its_side_after_sending_gets_every_ack(service: Service) -> None:
    """Found right, pinned: an engine that sends its frames (the last with FS alone), then
    shuts its side of the socket down (FIN) and reads until ours closes, gets an ACK for
    each before the listener closes the connection."""
    with socket.create_connection(("127.0.0.1", service.port), timeout=60) as sock:
        sock.sendall(VT + message("HALF1") + FS + CR + VT + message("HALF2") + FS)
        sock.shutdown(socket.SHUT_WR)
        buffer = bytearray()
        acks = [read_frame(sock, buffer) for _ in range(2)]
        assert read_frame(sock, buffer) is None  # then closed
    assert [msa(a)[1:3] for a in acks] == [["AA", "HALF1"], ["AA", "HALF2"]]


# -- the ACK's charset -------------------------------------------------------------------------

def test_the_ack_names_the_charset_its_bytes_are_in_when_utf_16_was_declared(
        service: Service) -> None:
    """MSH-18 'UNICODE UTF-16~8859/1' over latin-1 bytes (an engine's template copied from
    another interface): the ACK, written in the bytes the message was read with, echoed
    the field, and an engine decoding its answers by MSH-18 read UTF-16, unreadable. Its
    MSH-18 now names the single-byte charset its bytes are in (round 6 did it for UTF-8)."""
    text = original_mode(sample("01_labm_nfs.hl7")).decode("utf-8")
    first, _, rest = text.partition("\r")
    fields = first.split("|")
    fields[3], fields[9], fields[17] = "Clinique Sainte-Cécile", "U16L1", "UNICODE UTF-16~8859/1"
    data = ("|".join(fields) + "\r" + rest).encode("latin-1", errors="replace")
    with Client(service.port) as client:
        ack = client.send(data)
    declared = segment(ack, "MSH", "latin-1")[17]
    assert "UTF-16" not in declared
    codec = CHARSETS[declared][0]
    assert codec in ("iso-8859-1", "iso-8859-15")
    assert segment(ack, "MSH", codec)[5] == "Clinique Sainte-Cécile"
    assert msa(ack, codec)[1:3] == ["AA", "U16L1"]


# -- acknowledgements received ----------------------------------------------------------------

def _ack_message(control_id: str) -> bytes:
    return (b"MSH|^~\\&|LABM|CERBALLIANCE_LYON|DMP-INTAKE|DMP|20250114114201+0100||"
            b"ACK^R01^ACK|" + control_id.encode() + b"|P|2.5\rMSA|AA|A1736851320000000001\r")


def test_an_acknowledgement_received_is_recorded_and_never_answered(service: Service) -> None:
    """An engine that routes its own ACKs to us (or acknowledges our ACK with one): each
    was answered AR 200, which such an engine acknowledged again, a loop HL7 rules out
    (an ACK is never acknowledged). Now no answer, for a lone ACK or a batch of them; it
    is recorded as refused for the operator, and the next message gets its own ACK."""
    before = service.rows()
    batch = (b"BHS|^~\\&|LABM|CERBALLIANCE_LYON|DMP-INTAKE|DMP|20250114114202+0100||||"
             b"B1\r" + _ack_message("ACKB1") + _ack_message("ACKB2") + b"BTS|2\r")
    with Client(service.port) as client:
        client.sock.sendall(VT + _ack_message("ACK1") + FS + CR + VT + batch + FS + CR)
        after = client.send(message("AFTERACK"))
    assert msa(after)[1:3] == ["AA", "AFTERACK"]  # the first frame read: nothing before it
    assert service.rows() == before + 3  # the ACK, the batch (refused whole), the message
    with service.ctx.engine.connect() as conn:
        rows = conn.execute(select(imports.c.status, imports.c.error_code)
                            .order_by(imports.c.id.desc()).limit(3)).all()
    assert [tuple(r) for r in rows[1:]] == [("failed", "HL7_UNSUPPORTED_TYPE")] * 2


# -- MLLP release 2 ---------------------------------------------------------------------------

def test_acknowledgement_blocks_from_a_peer_are_not_messages(service: Service) -> None:
    """A release 2 peer acknowledges our ACK with <VT><ACK><FS><CR>. The block was taken for
    a message: archived, a failed ledger row (HL7_NO_MSH) and an AR, which the peer read as
    the answer to its next message (and acknowledged again). It is dropped now, a NAK too:
    the next frame the sender reads answers its next message."""
    before = service.rows()
    with Client(service.port) as client:
        first = client.send(message("BLK1"))
        client.sock.sendall(ACK_BLOCK + NAK_BLOCK)
        second = client.send(message("BLK2"))
    assert msa(first)[1:3] == ["AA", "BLK1"]
    assert msa(second)[1:3] == ["AA", "BLK2"]
    assert service.rows() == before + 2


def test_a_release_2_source_gets_the_commit_block_before_its_ack(service: Service) -> None:
    """A source declared mllp_release = 2 (Mirth's MLLPv2 mode) waits for the commit
    acknowledgement block once its frame is stored and reads anything else as a failed
    delivery (it sent the message again, for ever); the HL7 ACK follows the block. Its
    own block acknowledging our ACK is dropped. A release 1 source gets no block."""
    with Client(service.port) as client:
        block = client.send(message("V2-1", "MIRTH_V2"))
        ack = read_frame(client.sock, client.buffer)
        client.sock.sendall(ACK_BLOCK)  # what the release 2 sender does with our ACK
        block2 = client.send(message("V2-2", "MIRTH_V2"))
        ack2 = read_frame(client.sock, client.buffer)
    assert block == block2 == b"\x06"
    assert msa(ack)[1:3] == ["AA", "V2-1"] and msa(ack2)[1:3] == ["AA", "V2-2"]
    with Client(service.port) as client:
        assert msa(client.send(message("V1-1")))[1:3] == ["AA", "V1-1"]


def test_a_release_2_source_gets_a_nak_when_its_frame_cannot_be_stored(
        service: Service) -> None:
    """Storing failed: a release 2 sender is sent the NAK block alone (it sends the frame
    again), not an HL7 AR it would take for the block answering that resend; a release 1
    sender still gets AR 207."""
    service.archive.down = True
    try:
        with Client(service.port) as client:
            nak = client.send(message("V2-NAK", "MIRTH_V2"))
            client.sock.settimeout(0.2)
            with pytest.raises(TimeoutError):
                client.sock.recv(100)  # nothing after the NAK
            ar = client.send(message("V1-NAK"))
    finally:
        service.archive.down = False
    assert nak == b"\x15"
    assert msa(ar)[1:3] == ["AR", "V1-NAK"] and segment(ar, "ERR")[3].startswith("207^")
    with Client(service.port) as client:  # the resend, once the archive is back
        assert client.send(message("V2-NAK", "MIRTH_V2")) == b"\x06"
        assert msa(read_frame(client.sock, client.buffer))[1] == "AA"


def test_a_release_2_source_s_oversize_frame_gets_the_block_before_its_refusal(
        service: Service) -> None:
    """A frame over the limit is recorded under no source (only its head is kept), so its
    release 2 sender got the HL7 AR alone, which NextGen Connect reads as an invalid block
    and answers by sending the frame again, without end by default. The source is now
    known from the head's MSH for this: the block, then the AR naming the limit."""
    big = message("V2-BIG", "MIRTH_V2") + b"NTE|1||" + b"x" * LIMIT + b"\r"
    with Client(service.port) as client:
        block = client.send(big)
        refusal = read_frame(client.sock, client.buffer)
    assert block == b"\x06"
    assert msa(refusal)[1:3] == ["AR", "V2-BIG"]
    assert segment(refusal, "ERR")[8].startswith("MLLP_FRAME_TOO_LARGE")


def test_mllp_release_is_read_from_the_settings(tmp_path) -> None:  # noqa: ANN001
    from pipelines.settings import SettingsError, load_settings

    def sources(release: str) -> tuple[Source, ...]:
        (tmp_path / "dmp.toml").write_text(
            f'[sources.mirth]\nsending_application = "MIRTH"\nmllp_release = {release}\n')
        return load_settings(env={"DMP_HOME": str(tmp_path)}).sources

    assert sources("2")[0].mllp_release == 2
    assert sources("1")[0].mllp_release == 1
    for wrong in ("3", '"2"', "true"):
        with pytest.raises(SettingsError, match="mllp_release must be 1 or 2"):
            sources(wrong)


# -- peers retrying a failing connection ------------------------------------------------------

def _lines(caplog, words: str) -> list[str]:  # noqa: ANN001
    return [r.getMessage() for r in caplog.records if words in r.getMessage()]


def _until_closed(sock: socket.socket) -> None:
    """Until the listener has closed the connection (its warning is said by then). A bound,
    not a delay; not closed within it fails: it waited 3 s, then went on quietly, and the
    count of warnings was read before the listener's last one on a loaded machine."""
    sock.settimeout(60)
    try:
        while sock.recv(4096):
            pass
    except (ConnectionResetError, BrokenPipeError):  # reset by the listener
        pass


def test_a_sender_without_start_blocks_retrying_does_not_flood_the_log(
        service: Service, caplog) -> None:  # noqa: ANN001
    """An engine framing without the VT reconnects and sends again after each silence: a
    warning per frame, and another per connection for its bytes outside frames. Five of
    each a minute per peer now (the count of the others with the next line)."""
    caplog.set_level(logging.WARNING, logger="dmp.mllp")
    for n in range(8):
        with socket.create_connection(("127.0.0.1", service.port), timeout=60) as sock:
            sock.sendall(message(f"NOVT{n}") + FS + CR)
            sock.shutdown(socket.SHUT_WR)
            _until_closed(sock)
    assert len(_lines(caplog, "without its start block")) == 5
    assert len(_lines(caplog, "outside frames skipped")) == 5


def _server_certificate(where) -> tuple:  # noqa: ANN001
    """A self-signed P-256 certificate for 127.0.0.1 (an EC key: RSA's take seconds)."""
    cert, key = where / "server.pem", where / "server.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    return cert, key


def test_a_plain_sender_retrying_on_the_tls_port_does_not_flood_the_log(
        tmp_path, sqlite_template, caplog, monkeypatch) -> None:  # noqa: ANN001
    """Plain MLLP on the TLS port, the engine reconnecting at once after each failure: a
    warning per handshake (86,400 a day at one a second). Five per peer and reason in a
    window now; the next window's first line says how many were held back."""
    from connectors.mllp import server

    # The throttle's clock is the test's: the first eight handshakes' warnings fall in one
    # window, the ninth's in the next. The window was 0.2 s of real time, slept through
    # before the ninth: eight handshakes took longer on a loaded machine, and the listener
    # says a handshake's warning after closing its connection, so the eighth's could come
    # after the sleep; either way more lines were let through.
    asked = itertools.count()

    def clock() -> float:
        return 0.0 if next(asked) < 8 else server.PEER_WARNING_WINDOW

    monkeypatch.setattr(server, "Throttle", functools.partial(server.Throttle, clock=clock))
    caplog.set_level(logging.WARNING, logger="dmp.mllp")
    cert, key = _server_certificate(tmp_path)
    ctx = make_ctx(tmp_path, migrated_sqlite(sqlite_template, tmp_path / "tls.sqlite3"),
                   sources=SOURCES, tls_cert=cert, tls_key=key)
    try:
        with running_service(ctx, process=False) as svc:
            def attempt() -> None:
                with socket.create_connection(("127.0.0.1", svc.port), timeout=60) as sock:
                    sock.sendall(VT + message("PLAIN") + FS + CR)
                    _until_closed(sock)

            for _ in range(9):
                attempt()
    finally:
        ctx.engine.dispose()
    lines = _lines(caplog, "TLS handshake with 127.0.0.1 failed")
    assert len(lines) == 6, lines
    assert lines[-1].endswith("(3 more such from this peer since the last such line)")
