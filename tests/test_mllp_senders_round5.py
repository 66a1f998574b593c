"""The MLLP listener against senders we have not seen, round 5: what interface engines
(Mirth/NextGen Connect, Rhapsody, Cloverleaf, InterSystems, Corepoint, small SIL vendors)
put on the wire that the earlier rounds did not cover, each over a real socket.
"""

from __future__ import annotations

import logging
import socket
import ssl
import time

import pytest
from sqlalchemy import select

from dossiers.schema import entries, imports
from tests import test_mllp_service
from tests.conftest import migrated_sqlite
from tests.mllp_support import (
    VT,
    Client,
    msa,
    read_frame,
    running_service,
    segment,
    statuses,
    wait_processed,
)
from tests.test_mllp_service import _with_msh, make_ctx, original_mode, sample

tls_files = test_mllp_service.tls_files  # the CA, server and client certificates (openssl)


@pytest.fixture
def ctx(tmp_path, database_url):  # noqa: ANN001, ANN201
    context = make_ctx(tmp_path, database_url)
    yield context
    context.engine.dispose()


@pytest.mark.parametrize("mode", ["accept", "application"])
def test_training_and_debug_messages_are_refused_from_msh_11(tmp_path, database_url,  # noqa: ANN001
                                                              mode) -> None:
    """MSH-11 T (training) or D (debugging), as an engine's test channel left pointed at
    production sends: answered AA and filed in a real patient's dossier. HL7 v2.5 2.9.2 has
    the receiver check MSH-11 with MSH-9 and MSH-12 before accepting: AR, ERR 202
    (unsupported processing id) at MSH-11, recorded on the ledger; nothing filed. P, with
    or without its processing mode (P^T, P^A), is taken as before; so is T on a listener
    declared for test traffic."""
    base = original_mode(sample("01_labm_nfs.hl7"))
    ctx = make_ctx(tmp_path, database_url, ack_mode=mode)
    try:
        with running_service(ctx) as svc, Client(svc.port) as client:
            refused = [client.send(_with_msh(base, f10=f"PT{n}", f11=pid))
                       for n, pid in enumerate(("T", "D", "t", "T^A"))]
            enhanced = client.send(_with_msh(sample("01_labm_nfs.hl7"), f10="PT9", f11="D"))
            taken = client.send(_with_msh(base, f11="P^A"))
            wait_processed(ctx)
        for n, ack in enumerate(refused):
            assert msa(ack)[1:3] == ["AR", f"PT{n}"], n
            assert segment(ack, "MSH")[10] == ("T", "D", "t", "T^A")[n]  # echoed as sent
            err = segment(ack, "ERR")
            assert err[2:5] == ["MSH^1^11^1", "202^Unsupported processing id^HL70357", "E"]
            assert err[8].startswith("HL7_UNSUPPORTED_PROCESSING_ID: processing id (MSH-11) ")
        assert msa(enhanced)[1:3] == ["CR", "PT9"]
        assert msa(taken)[1] == "AA"
        with ctx.engine.connect() as conn:
            rows = conn.execute(select(imports.c.status, imports.c.error_code)
                                .order_by(imports.c.id)).all()
            filed = conn.execute(select(entries.c.id)).all()
        assert [tuple(r) for r in rows] == [("failed", "HL7_UNSUPPORTED_PROCESSING_ID")] * 5 \
            + [("deposited", None)]
        assert filed  # the production message only
    finally:
        ctx.engine.dispose()


def test_a_test_listener_takes_the_processing_ids_it_is_declared_for(tmp_path,  # noqa: ANN001
                                                                     database_url) -> None:
    """A staging listener (``processing_ids = ["P", "T"]``) files training messages; D is
    still refused there."""
    base = original_mode(sample("01_labm_nfs.hl7"))
    ctx = make_ctx(tmp_path, database_url, processing_ids=("P", "T"))
    try:
        with running_service(ctx) as svc, Client(svc.port) as client:
            training = client.send(_with_msh(base, f11="T"))
            debugging = client.send(_with_msh(base, f10="D1", f11="D"))
            wait_processed(ctx)
        assert msa(training)[1] == "AA"
        assert msa(debugging)[1:3] == ["AR", "D1"]
        assert "accepted here: P, T" in segment(debugging, "ERR")[8]
        assert statuses(ctx) == {"deposited": 1, "failed": 1}
    finally:
        ctx.engine.dispose()


# (MSH-18 as sent, MSH-4 as the sender's bytes): Windows senders writing cp1252 whatever
# they declare (’ 0x92, Œ 0x8C, € 0x80, none of them in ISO 8859-1 or -15)
WINDOWS_SENDERS = [("8859/1", "Labo d’Œuvre €".encode("cp1252")),
                   ("", "Labo d’Œuvre €".encode("cp1252")),
                   ("8859/15", "Labo d’Œuvre".encode("cp1252")),
                   ("8859/1", "Clinique Sainte-Cécile".encode("latin-1"))]


def test_the_ack_echoes_a_windows_sender_s_bytes(ctx) -> None:  # noqa: ANN001
    """A Windows sender writes cp1252 bytes (0x80-0x9F: €, ’, Œ) and declares 8859/1, 8859/15
    or nothing: its MSH was read right (C1 bytes as the cp1252 characters they are), but the
    ACK was encoded in the declared charset, where those characters do not exist: its MSH-5/6
    came back as 'Labo d??uvre ?' (or 8859/15's own bytes for Œ and €), not what the sender
    wrote. The ACK now gives back the sender's own bytes, under its own MSH-18."""
    text = original_mode(sample("01_labm_nfs.hl7")).decode("utf-8")
    first, rest = text.split("\r", 1)
    with running_service(ctx, process=False) as svc, Client(svc.port) as client:
        for n, (charset, facility) in enumerate(WINDOWS_SENDERS):
            fields = first.split("|")
            fields[3], fields[9], fields[17:] = "@", f"W{n}", [charset]
            data = "|".join(fields).encode("ascii").replace(b"@", facility) + b"\r" \
                + rest.encode("utf-8")
            ack = client.send(data)
            msh = ack.split(b"\r", 1)[0].split(b"|")
            assert msa(ack, "latin-1")[1:3] == ["AA", f"W{n}"], n
            assert msh[5] == facility, n
            assert msh[17:] == ([charset.encode()] if charset else []), n


def test_tls_handshake_failures_are_logged_with_the_peer(tmp_path, tls_files, caplog,  # noqa: ANN001
                                                         sqlite_template) -> None:  # noqa: ANN001
    """A lab whose engine sends plain MLLP to the TLS port, or connects without the client
    certificate asked for: the connection was closed and nothing at all was logged (asyncio
    keeps handshake errors for its debug mode), so nobody could tell the lab why it gets no
    ACK. Each is now one warning naming the peer and the TLS reason, without a traceback,
    and the listener goes on."""
    ctx = make_ctx(tmp_path, migrated_sqlite(sqlite_template, tmp_path / "tls.sqlite3"),
                   tls_cert=tls_files["server.pem"], tls_key=tls_files["server.key"],
                   tls_client_ca=tls_files["ca.pem"])
    data = original_mode(sample("01_labm_nfs.hl7"))
    caplog.set_level(logging.INFO, logger="dmp.mllp")
    try:
        with running_service(ctx) as svc:
            with socket.create_connection(("127.0.0.1", svc.port), timeout=10) as plain:
                plain.sendall(b"\x0b" + data + b"\x1c\r")
                assert plain.recv(100) == b""  # closed, no ACK
            anonymous = ssl.create_default_context(cafile=str(tls_files["ca.pem"]))
            with socket.create_connection(("127.0.0.1", svc.port), timeout=10) as raw:
                try:
                    with anonymous.wrap_socket(raw, server_hostname="127.0.0.1") as sock:
                        sock.sendall(b"\x0b" + data + b"\x1c\r")
                        assert sock.recv(100) == b""
                except (ssl.SSLError, ConnectionError):
                    pass
            context = ssl.create_default_context(cafile=str(tls_files["ca.pem"]))
            context.load_cert_chain(str(tls_files["client.pem"]), str(tls_files["client.key"]))
            with socket.create_connection(("127.0.0.1", svc.port), timeout=10) as raw, \
                    context.wrap_socket(raw, server_hostname="127.0.0.1") as sock:
                sock.sendall(b"\x0b" + data + b"\x1c\r")
                assert msa(read_frame(sock, bytearray()))[1] == "AA"
    finally:
        ctx.engine.dispose()
    failures = [r for r in caplog.records
                if r.name == "dmp.mllp" and "TLS handshake" in r.getMessage()]
    assert len(failures) == 2, [r.getMessage() for r in failures]
    plain_text, no_certificate = (r.getMessage() for r in failures)
    assert "127.0.0.1" in plain_text and "not speaking TLS" in plain_text
    assert "127.0.0.1" in no_certificate and "CERTIFICATE" in no_certificate.upper()
    assert all(r.levelno == logging.WARNING and r.exc_info is None for r in failures)


def test_two_hundred_idle_connections_and_a_sender_still_served(ctx) -> None:  # noqa: ANN001
    """An engine pool (or a port scanner) holding 200 connections open without a word: each
    costs a descriptor and a task, not a thread; a lab connecting meanwhile is answered, and
    nothing is recorded for the silent ones."""
    with running_service(ctx) as svc:
        idle = [socket.create_connection(("127.0.0.1", svc.port), timeout=10)
                for _ in range(200)]
        try:
            with Client(svc.port) as client:
                assert msa(client.send(original_mode(sample("01_labm_nfs.hl7"))))[1] == "AA"
        finally:
            for sock in idle:
                sock.close()
        wait_processed(ctx)
    assert statuses(ctx) == {"deposited": 1}


def test_a_slow_loris_frame_is_cut_and_others_are_served(tmp_path, database_url,  # noqa: ANN001
                                                          caplog) -> None:
    """A sender dribbling one byte at a time, never finishing its frame: the frame must
    arrive within idle_timeout, so the connection is closed although bytes keep coming (a
    timeout on silence alone would hold it as long as the dribble lasts); its unfinished
    frame is never acknowledged nor recorded, and a lab connecting meanwhile is served. The
    log says a frame was cut (a warning), not that the connection was idle."""
    caplog.set_level(logging.INFO, logger="dmp.mllp")
    ctx = make_ctx(tmp_path, database_url, idle_timeout=1.0)
    data = VT + original_mode(sample("03_synlab_iono_creatinine.hl7"))  # its FS never comes
    try:
        with running_service(ctx) as svc:
            with socket.create_connection(("127.0.0.1", svc.port), timeout=10) as slow:
                slow.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                closed = False
                give_up = time.monotonic() + 60  # a guard against a hang, not a measure
                for n, byte in enumerate(data):
                    if time.monotonic() > give_up:
                        break
                    try:
                        slow.sendall(bytes([byte]))
                    except OSError:  # reset: the listener closed it
                        closed = True
                        break
                    if n == 5:  # mid-dribble, another sender is answered
                        with Client(svc.port) as client:
                            ack = client.send(original_mode(sample("01_labm_nfs.hl7")))
                            assert msa(ack)[1] == "AA"
                    time.sleep(0.02)
                if not closed:
                    slow.settimeout(10)
                    try:
                        closed = slow.recv(100) == b""
                    except OSError:
                        closed = True
                assert closed, "the dribbling sender's connection was never closed"
                assert n < len(data) - 1, "the whole frame was sent before the cut"
            cut = [r for r in caplog.records if "frame not finished" in r.getMessage()]
            assert len(cut) == 1 and cut[0].levelno == logging.WARNING
            assert not [r for r in caplog.records if " idle for " in r.getMessage()]
            wait_processed(ctx)
        assert statuses(ctx) == {"deposited": 1}
    finally:
        ctx.engine.dispose()


def test_a_frame_without_its_start_block_is_reported_at_once(ctx, caplog) -> None:  # noqa: ANN001
    """An engine whose framing lacks the start block (raw TCP mode with FS CR as end bytes)
    sends 'MSH...FS CR' and waits for an ACK. MLLP frames start with VT (appendix C), so the
    bytes are skipped, as HAPI, Mirth and Cloverleaf do; but the skip was only counted and
    logged when the connection closed, hours later on a keep-alive connection, while the
    lab's queue stood still. It is now one warning naming the peer as soon as such a
    frame's end arrives; the connection goes on and a well-framed message is answered."""
    caplog.set_level(logging.INFO, logger="dmp.mllp")
    message = original_mode(sample("01_labm_nfs.hl7"))
    with running_service(ctx) as svc, Client(svc.port) as client:
        client.sock.sendall(message + b"\x1c\r")
        deadline = time.monotonic() + 30  # a guard against a hang, not a measure
        while time.monotonic() < deadline and not any(
                "start block" in r.getMessage() for r in caplog.records):
            time.sleep(0.05)
        warned = [r for r in caplog.records if "start block" in r.getMessage()]
        assert len(warned) == 1 and warned[0].levelno == logging.WARNING
        assert "127.0.0.1" in warned[0].getMessage()
        assert msa(client.send(message))[1] == "AA"  # the same connection, framed right
        wait_processed(ctx)
    assert statuses(ctx) == {"deposited": 1}


@pytest.mark.parametrize("mode", ["accept", "application"])
def test_an_fs_byte_inside_a_message_does_not_cut_it(tmp_path, database_url, mode) -> None:  # noqa: ANN001
    """A sender whose text holds a raw FS byte (0x1C: binary pasted in a comment, a field
    separator of the lab's own system; Mirth issue #1309): the frame was taken to end at
    that byte, its first part stored, filed and answered AA, the rest (results included)
    skipped as noise: an AA for a message we did not get whole. An FS followed by anything
    but CR, LF, NUL or VT is content (the end block is FS CR; FS alone ends a frame only at
    the end of what has arrived or before the next VT): the message is stored whole, as
    sent."""
    base = original_mode(sample("01_labm_nfs.hl7"))
    lines = base.split(b"\r")
    at = next(n for n, line in enumerate(lines) if line.startswith(b"OBX|"))
    lines.insert(at + 1, b"NTE|1||commentaire \x1c et suite")
    data = b"\r".join(lines)
    ctx = make_ctx(tmp_path, database_url, ack_mode=mode)
    try:
        with running_service(ctx) as svc, Client(svc.port) as client:
            ack = client.send(data)
            after = client.send(original_mode(sample("03_synlab_iono_creatinine.hl7")))
            wait_processed(ctx)
        assert msa(ack)[1:3] == ["AA", "RB2501140000001"]
        assert msa(after)[1] == "AA"  # the connection is still in step
        with ctx.engine.connect() as conn:
            rows = conn.execute(select(imports.c.status, imports.c.size)
                                .order_by(imports.c.id)).all()
        assert rows[0].size == len(data)  # stored whole
        assert [r.status for r in rows] == ["deposited", "deposited"]
    finally:
        ctx.engine.dispose()


def test_a_sender_that_never_reads_its_acks_is_cut_off_alone(tmp_path, sqlite_template) -> None:  # noqa: ANN001
    """An engine that writes and writes and never reads its ACKs: the listener stops
    reading it once its ACKs back up (its socket buffers and one drain's worth, not memory
    without bound), gives it idle_timeout to read them, then closes it; a lab connecting
    meanwhile is answered at once, and every ACK the stuck sender did get was for a stored
    message. (SQLite only.) Its connection's send buffer is fixed (ACK_SEND_BUFFER): left
    to the kernel's autotuning it grew to megabytes of ACKs, and some 10,000 frames (27 MB,
    50 s here) were stored before the listener stopped reading; now a few hundred are."""
    ctx = make_ctx(tmp_path, migrated_sqlite(sqlite_template, tmp_path / "lazy.sqlite3"),
                   idle_timeout=1.0)
    message = original_mode(sample("01_labm_nfs.hl7"))
    try:
        with running_service(ctx, process=False) as svc:
            lazy = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            lazy.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            lazy.connect(("127.0.0.1", svc.port))
            lazy.settimeout(3)
            sent = 0
            try:
                for _ in range(20_000):
                    lazy.sendall(VT + message + b"\x1c\r")
                    sent += 1
            except OSError:  # blocked (timeout), or cut off already
                pass
            assert sent < 20_000, "the listener read on without bound"
            with Client(svc.port) as client:
                assert msa(client.send(message))[1] == "AA"
            lazy.settimeout(10)
            buffer, acks, closed = bytearray(), 0, False
            try:
                while read_frame(lazy, buffer, timeout=30) is not None:
                    acks += 1
                closed = True
            except ConnectionResetError:  # closed with its unread frames: a reset
                closed = True
            except TimeoutError:
                pass
            lazy.close()
            assert closed, "the listener kept the stuck sender's connection open"
        with ctx.engine.connect() as conn:
            stored = conn.execute(select(imports.c.id)).all()
        assert acks <= len(stored) - 1 < sent + 1
        # 777 with the full suite running beside it, 2,600 once on a machine loaded more (the
        # groups stored while the ACK buffers filled); some 10,000 with autotuned buffers
        assert len(stored) - 1 < 5_000, "the listener read on far past its ACKs' buffers"
    finally:
        ctx.engine.dispose()


def test_a_training_message_inside_a_batch_or_a_frame_refuses_it_whole(ctx) -> None:  # noqa: ANN001
    """A batch (BHS ... BTS) or a frame of plainly concatenated messages whose second message
    is a training one (MSH-11 T): only the first MSH was checked, so the T message was
    answered AA and filed. The frame is now refused whole, as for an undeclared sender (one
    failed row, nothing filed): the T message's ACK says why at its MSH-11, the others that
    the batch is refused for it."""
    from tests.test_mllp_batch import batch, control_id, lines

    first = original_mode(sample("01_labm_nfs.hl7"))
    training = _with_msh(original_mode(sample("03_synlab_iono_creatinine.hl7")), f11="T")
    with running_service(ctx) as svc, Client(svc.port) as client:
        got = lines(client.send(batch([first, training])))
        plain = client.send(_with_msh(first, f10="CONCAT1") + training)
        wait_processed(ctx)
    assert [f[1:3] for f in got if f[0] == "MSA"] == [
        ["AR", control_id(first)], ["AR", control_id(training)]]
    errs = [f for f in got if f[0] == "ERR"]
    assert [e[2:4] for e in errs] == [["", "202^Unsupported processing id^HL70357"],
                                      ["MSH^1^11^1", "202^Unsupported processing id^HL70357"]]
    assert errs[0][8].startswith("HL7_UNSUPPORTED_PROCESSING_ID: the batch is refused whole")
    assert "message 2 of the batch" in errs[1][8]
    assert msa(plain, "latin-1")[1:3] == ["AR", "CONCAT1"]
    err = segment(plain, "ERR", "latin-1")
    assert err[3].startswith("202^") and "message 2 of the frame" in err[8]
    assert statuses(ctx) == {"failed": 2}
    with ctx.engine.connect() as conn:
        assert not conn.execute(select(entries.c.id)).all()
