"""The MLLP listener against engines we have not seen, round 8: empty frames (an engine's
keep-alive), TLS clients that close their sending side (close_notify, or a bare TCP FIN)
right after their last frame, and handshakes that never end. Over real sockets, on one
plain service and one TLS service started for the module (the suite is at its CI-time
limit)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from dossiers.schema import imports
from tests.conftest import migrated_sqlite
from tests.mllp_support import CR, FS, VT, Client, msa, running_service
from tests.test_mllp_service import make_ctx, original_mode, sample


class Service:
    """A module service: its port and its context."""

    def __init__(self, svc, ctx) -> None:  # noqa: ANN001
        self.port, self.ctx = svc.port, ctx

    def rows(self) -> int:
        with self.ctx.engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(imports)).scalar_one()


@pytest.fixture(scope="module")
def service(tmp_path_factory, sqlite_template) -> Iterator[Service]:  # noqa: ANN001
    tmp = tmp_path_factory.mktemp("round8")
    ctx = make_ctx(tmp, migrated_sqlite(sqlite_template, tmp / "store.sqlite3"))
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
        first = client.send(message("KA-1"), timeout=3)
        client.sock.sendall(keep_alive)
        second = client.send(message("KA-2"), timeout=3)
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
        answer = client.send(b"PID|1||123^^^LABM\r", timeout=3)
    assert msa(answer)[1] == "AR"
    assert service.rows() == before + 1
