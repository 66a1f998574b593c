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
from tests.test_mllp_service import make_ctx, original_mode, sample


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
            gate.wait(15)
        return process(ctx, ids)

    monkeypatch.setattr(acknowledge, "process_claimed", slow_once)
    ctx = make_ctx(tmp_path, database_url, ack_mode="application")
    bad = original_mode(sample("20_casse_nm_non_numerique.hl7"))
    try:
        with running_service(ctx, process=False) as svc, Client(svc.port) as first:
            first.sock.sendall(VT + bad + FS + CR)
            assert held.wait(10)
            with Client(svc.port) as again:  # the engine's resend after its timeout
                resent = again.send(bad, timeout=5)
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
