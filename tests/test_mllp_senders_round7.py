"""The MLLP listener against engines we have not seen, round 7: end blocks padded with
blanks, MLLP release 2 senders (Mirth/NextGen Connect's "MLLPv2" mode: a commit block before
the HL7 ACK, and their own blocks acknowledging ours), and what the log says of peers
that retry a failing connection every second. Over real sockets, on one service started
for the module (the suite is at its CI-time limit), except where a test needs settings of
its own.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from dossiers.schema import imports
from pipelines.settings import Source
from tests.conftest import migrated_sqlite
from tests.mllp_support import CR, FS, VT, msa, read_frame, running_service
from tests.test_mllp_framing import run
from tests.test_mllp_service import FlakyArchive, make_ctx, original_mode, sample

# MLLP release 2 blocks (HL7 v3 Transport Specification, MLLP release 2): the whole frame
ACK_BLOCK, NAK_BLOCK = VT + b"\x06" + FS + CR, VT + b"\x15" + FS + CR
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
                   sources=SOURCES)
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
    with socket.create_connection(("127.0.0.1", service.port), timeout=5) as sock:
        buffer = bytearray()
        sock.sendall(VT + message("PAD1") + FS + b" ")  # no CR: the blank, then it waits
        first = read_frame(sock, buffer, timeout=3)
        sock.sendall(VT + message("PAD2") + FS + b" \r")
        second = read_frame(sock, buffer, timeout=3)
    assert msa(first)[1:3] == ["AA", "PAD1"]
    assert msa(second)[1:3] == ["AA", "PAD2"]
