"""The MLLP listener against other engines' habits, round 6: connection patterns
(resends while the first copy is still being processed), signals and what an operator reads
in the log, each over a real socket.
"""

from __future__ import annotations

import ipaddress
import socket
import threading

import pytest
from sqlalchemy import select

from dossiers.schema import imports
from pipelines.settings import Source
from tests.mllp_support import (
    CR,
    FS,
    VT,
    Client,
    msa,
    read_frame,
    running_service,
    segment,
)
from tests.test_mllp_service import make_ctx, original_mode, sample, tls_files

tls_files = tls_files  # the CA and the server's certificate (openssl), a module fixture


@pytest.fixture
def ctx(tmp_path, database_url):  # noqa: ANN001, ANN201
    context = make_ctx(tmp_path, database_url)
    yield context
    context.engine.dispose()


def test_a_resend_while_the_first_copy_is_processed_is_not_answered_aa(  # noqa: ANN001
        tmp_path, database_url, monkeypatch) -> None:
    """Application mode: an engine whose response timeout passes while its message is
    still being processed (a large report, the store's write lock held) sends it again on
    a new connection. The repeat, recorded as a duplicate of a row still being processed,
    was answered AA at once: the engine marked the message sent while the first copy then
    failed (AE, on a connection the engine had given up), and the result was never filed.
    The repeat is now answered AR 207 (stored, not processed yet: send it again later);
    once the first copy's verdict is known, a further resend gets that verdict (AE)."""
    import pipelines.acknowledge as acknowledge

    gate, held = threading.Event(), threading.Event()
    process = acknowledge.process_claimed

    def slow_once(ctx, ids):  # noqa: ANN001, ANN202
        if not held.is_set():
            held.set()
            gate.wait(300)  # until released: its verdict must not be known before
        return process(ctx, ids)

    monkeypatch.setattr(acknowledge, "process_claimed", slow_once)
    ctx = make_ctx(tmp_path, database_url, ack_mode="application")
    bad = original_mode(sample("20_casse_nm_non_numerique.hl7"))
    try:
        with running_service(ctx, process=False) as svc, Client(svc.port) as first:
            first.sock.sendall(VT + bad + FS + CR)
            assert held.wait(60)
            with Client(svc.port) as again:  # the engine's resend after its timeout
                resent = again.send(bad)
            gate.set()
            original = read_frame(first.sock, first.buffer)
            with Client(svc.port) as later:  # its next retry
                retried = later.send(bad)
        assert msa(original)[1] == "AE"
        assert msa(resent)[1] == "AR", "a copy whose first is still processed got AA"
        err = segment(resent, "ERR")
        assert err[3].startswith("207^") and err[8].startswith("DMP_PROCESSING_DEFERRED")
        assert msa(retried)[1] == "AE"
        assert segment(retried, "ERR")[2:] == segment(original, "ERR")[2:]
        with ctx.engine.connect() as conn:
            rows = conn.execute(select(imports.c.status).order_by(imports.c.id)).scalars().all()
        assert rows == ["failed", "duplicate", "duplicate"]
    finally:
        gate.set()
        ctx.engine.dispose()


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback on this host")
def test_a_listener_on_all_ipv6_addresses_takes_ipv4_labs_too(tmp_path, database_url) -> None:  # noqa: ANN001, E501
    """``host = "::"``, all addresses as a Java engine or most Linux servers read it: asyncio
    made the socket IPv6-only, and every lab connecting over IPv4 was refused (connection
    refused, nothing logged). Both families are now taken; an IPv4 lab's address is the one
    its source declares (not '::ffff:127.0.0.1'), in the ledger and for ``peers``; an IPv6
    one's is its own."""
    labs = Source("labs", peers=(ipaddress.ip_network("127.0.0.1/32"),
                                 ipaddress.ip_network("::1/128")))
    ctx = make_ctx(tmp_path, database_url, host="::", sources=(labs,))
    data = original_mode(sample("01_labm_nfs.hl7"))
    try:
        with running_service(ctx) as svc:
            with Client(svc.port, host="127.0.0.1") as v4:
                assert msa(v4.send(data))[1] == "AA"
            with Client(svc.port, host="::1") as v6:
                assert msa(v6.send(data))[1] == "AA"
        with ctx.engine.connect() as conn:
            peers = conn.execute(select(imports.c.peer).order_by(imports.c.id)).scalars().all()
        assert peers == ["127.0.0.1", "::1"]
    finally:
        ctx.engine.dispose()


def test_each_refusal_is_logged_for_the_operator_without_patient_data(  # noqa: ANN001
        tmp_path, database_url, caplog, monkeypatch) -> None:
    """A lab's integrator calls about the AR its engine got: the listener's log said nothing
    of a refused frame (unknown sender, training message, oversize, no MSH), so the
    operator had to search the ledger blind. Each refusal is now one warning naming the
    peer, the source, the control id, our code and the import to open; never the patient
    (names, NIR) nor a control id that is not a plain identifier (a malformed header
    shifts any field into its place)."""
    import logging

    from pipelines import acknowledge
    from pipelines.logs import Throttle

    monkeypatch.setattr(acknowledge, "_refusals", Throttle())  # not the earlier tests' counts
    caplog.set_level(logging.WARNING, logger="dmp.acknowledge")
    ctx = make_ctx(tmp_path, database_url, max_frame_bytes=4000,
                   sources=(Source("labm", sending_application="LABM"),))
    data = original_mode(sample("01_labm_nfs.hl7"))
    stranger = data.replace(b"|LABM|", b"|OTHERLAB|", 1)
    training = data.replace(b"|P|2.5|", b"|T|2.5|", 1).replace(b"RB2501140000001", b"TR-7", 1)
    shifted = data.replace(b"RB2501140000001", "Béranger 268036912354128".encode(), 1)
    shifted = shifted.replace(b"|LABM|", b"|OTHERLAB|", 1)
    oversize = data + b"NTE|1||" + b"x" * 5000 + b"\r"
    try:
        with running_service(ctx) as svc, Client(svc.port) as client:
            answers = [client.send(m) for m in (stranger, training, shifted, oversize,
                                                b"no header here")]
        assert [msa(a, "latin-1")[1] for a in answers] == ["AR"] * 5
        with ctx.engine.connect() as conn:
            ids = conn.execute(select(imports.c.id, imports.c.error_code)
                               .order_by(imports.c.id)).all()
    finally:
        ctx.engine.dispose()
    lines = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert lines == [
        f"MLLP frame from 127.0.0.1 refused, MLLP_UNKNOWN_SENDER: source unknown, control id "
        f"RB2501140000001, import {ids[0].id}",
        f"MLLP frame from 127.0.0.1 refused, HL7_UNSUPPORTED_PROCESSING_ID: source labm, "
        f"control id TR-7, import {ids[1].id}",
        f"MLLP frame from 127.0.0.1 refused, MLLP_UNKNOWN_SENDER: source unknown, control id "
        f"(not shown), import {ids[2].id}",
        f"MLLP frame from 127.0.0.1 refused, MLLP_FRAME_TOO_LARGE: source unknown, control id "
        f"RB2501140000001, import {ids[3].id}",
        f"MLLP frame from 127.0.0.1 refused, HL7_NO_MSH: source unknown, control id (none), "
        f"import {ids[4].id}",
    ]
    text = caplog.text
    assert "Béranger" not in text and "268036912354128" not in text


def test_an_engine_resending_its_refused_message_does_not_flood_the_log(  # noqa: ANN001
        tmp_path, database_url, caplog, monkeypatch) -> None:
    """An undeclared lab's engine resends its message after every AR: a warning per frame
    (86,400 a day at one a second) drowned the log. Five lines per peer and code a minute
    at most, then the count of those held back with the next one; the ledger keeps every
    frame."""
    import logging

    from pipelines import acknowledge
    from pipelines.logs import Throttle

    clock = [1000.0]
    monkeypatch.setattr(acknowledge, "_refusals", Throttle(clock=lambda: clock[0]))
    caplog.set_level(logging.WARNING, logger="dmp.acknowledge")
    ctx = make_ctx(tmp_path, database_url, sources=(Source("labm", sending_application="LABM"),))
    stranger = original_mode(sample("01_labm_nfs.hl7")).replace(b"|LABM|", b"|OTHERLAB|", 1)
    try:
        with running_service(ctx) as svc, Client(svc.port) as client:
            answers = [client.send(stranger) for _ in range(12)]
            clock[0] += 61  # a minute later: the next one is said, with the count
            answers.append(client.send(stranger))
        assert [msa(a, "latin-1")[1] for a in answers] == ["AR"] * 13
        with ctx.engine.connect() as conn:
            rows = conn.execute(select(imports.c.id)).scalars().all()
    finally:
        ctx.engine.dispose()
    lines = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert len(lines) == 6
    assert all("MLLP_UNKNOWN_SENDER" in line for line in lines)
    assert lines[-1].endswith(" (7 more from this peer refused MLLP_UNKNOWN_SENDER since the "
                              "last such line)")
    assert len(rows) == 13, rows  # the ledger has every frame


def test_the_log_throttle_counts_what_it_holds_back() -> None:
    from pipelines.logs import Throttle

    t = [0.0]
    throttle = Throttle(window_seconds=60, burst=2, max_keys=2, clock=lambda: t[0])
    assert [throttle.allow("a") for _ in range(4)] == [(True, 0), (True, 0), (False, 0),
                                                       (False, 0)]
    assert throttle.allow("b") == (True, 0)  # keys are apart
    t[0] = 59.9
    assert throttle.allow("a") == (False, 0)
    t[0] = 60.0
    assert throttle.allow("a") == (True, 3)  # a new window: the three held back are said
    assert throttle.allow("a") == (True, 0)
    t[0] = 200.0
    assert throttle.allow("c") == (True, 0)  # over max_keys: the stale ones went
    assert set(throttle._seen) == {"c"}


@pytest.mark.parametrize("tls", [False, True], ids=["plain", "tls"])
def test_connections_over_the_limit_are_closed_and_the_others_served(  # noqa: ANN001
        tmp_path, database_url, caplog, tls, tls_files) -> None:
    """Many engines each keeping idle connections open: past the file descriptor limit,
    accept() failed in a loop (asyncio logged a traceback per attempt) and storing could no
    longer open the archive's files, so every sender's message was answered AR 207. The
    listener now keeps at most ``max_connections`` open (by default the descriptor limit
    less what storing needs): one more is closed at once, with a warning naming the peer
    and the limit; the open ones are served, and a new one is taken once one closes."""
    import logging
    import ssl

    caplog.set_level(logging.WARNING, logger="dmp.mllp")
    extra = {}
    if tls:
        extra = {"tls_cert": tls_files["server.pem"], "tls_key": tls_files["server.key"]}
    ctx = make_ctx(tmp_path, database_url, max_connections=3, **extra)
    data = original_mode(sample("01_labm_nfs.hl7"))

    def connect(port: int) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        if not tls:
            return sock
        context = ssl.create_default_context(cafile=str(tls_files["ca.pem"]))
        return context.wrap_socket(sock, server_hostname="127.0.0.1")

    def send(sock: socket.socket, control: str) -> bytes | None:
        sock.sendall(VT + data.replace(b"RB2501140000001", control.encode(), 1) + FS + CR)
        return read_frame(sock, bytearray())

    try:
        with running_service(ctx) as svc:
            held = [connect(svc.port) for _ in range(3)]
            assert msa(send(held[0], "H0"))[1] == "AA"
            try:
                extra_one = connect(svc.port)
                turned_away = send(extra_one, "X1") is None
            except OSError:  # the TLS handshake itself cut
                turned_away = True
            assert turned_away
            assert msa(send(held[1], "H1"))[1] == "AA"
            held.pop().close()
            answer = None
            for _ in range(50):  # until the listener has seen the close
                try:
                    with connect(svc.port) as again:
                        answer = send(again, "N1")
                except OSError:
                    answer = None
                if answer is not None:
                    break
                threading.Event().wait(0.1)
            assert answer is not None and msa(answer)[1] == "AA"
            for sock in held:
                sock.close()
    finally:
        ctx.engine.dispose()
    warnings = [r.getMessage() for r in caplog.records if "closed at once" in r.getMessage()]
    assert warnings and "connection from 127.0.0.1 closed at once: 3 connection(s) open" \
        in warnings[0] and "max_connections 3" in warnings[0]


def test_the_ack_of_a_message_declared_utf_16_says_the_utf_8_it_is_written_in(ctx) -> None:  # noqa: ANN001, E501
    """MSH-18 'UNICODE UTF-16' (or UTF-32) over MLLP, whose bytes are in fact single-byte or
    UTF-8 (MLLP cannot frame UTF-16 text): the ACK is written in UTF-8 and echoed 'UNICODE
    UTF-16' in its MSH-18, so an engine decoding its answers by MSH-18 could not read it.
    Its MSH-18 now says UNICODE UTF-8; other charsets are echoed as before."""
    base = original_mode(sample("01_labm_nfs.hl7"))
    with running_service(ctx) as svc, Client(svc.port) as client:
        answers = {name: client.send(base.replace(b"|UNICODE UTF-8", f"|{name}".encode(), 1))
                   for name in ("UNICODE UTF-16", "unicode utf-32", "UNICODE UTF-8", "8859/15")}
    for name, ack in answers.items():
        assert msa(ack, "latin-1")[1] == "AA", name
        declared = segment(ack, "MSH", "latin-1")[17]
        expected = "UNICODE UTF-8" if "UTF-16" in name.upper() or "UTF-32" in name.upper() \
            else name
        assert declared == expected, name
        ack.decode("utf-8")
