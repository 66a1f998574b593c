"""Helpers for the MLLP tests: the service running in a thread, a plain socket client."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import func, select

from dossiers.schema import imports

VT, FS, CR = b"\x0b", b"\x1c", b"\r"

ANY_SOURCE = {"sources": {"labs": {"sending_application": "*", "sending_facility": "*"}}}


@dataclass
class Running:
    ctx: object
    port: int
    loop: asyncio.AbstractEventLoop
    stop_event: asyncio.Event
    thread: threading.Thread
    result: dict = field(default_factory=dict)

    def stop(self) -> dict:
        self.loop.call_soon_threadsafe(self.stop_event.set)
        self.thread.join(60)
        assert not self.thread.is_alive(), "service did not stop"
        return self.result


@contextmanager
def running_service(ctx, *, process: bool = True) -> Iterator[Running]:  # noqa: ANN001
    """`serve` in a background thread with its own event loop, on a free port."""
    from connectors.service import serve

    ready = threading.Event()
    box: dict = {}

    def main() -> None:
        async def run() -> None:
            box["loop"] = asyncio.get_running_loop()
            box["stop"] = asyncio.Event()

            def on_ready(port: int | None) -> None:
                box["port"] = port
                ready.set()

            box["result"] = await serve(ctx, process=process, on_ready=on_ready,
                                        stop=box["stop"])
        try:
            asyncio.run(run())
        finally:
            ready.set()

    thread = threading.Thread(target=main, daemon=True)
    thread.start()
    assert ready.wait(2 * WAIT) and "port" in box, "service did not start"
    running = Running(ctx, box["port"], box["loop"], box["stop"], thread)
    try:
        yield running
    finally:
        if thread.is_alive():
            running.stop()
        running.result.update(box.get("result") or {})


# Bounds on waits for the service (an ACK, a connection, its start, its filing), not guesses of
# its speed: each wait ends as soon as its condition holds, and a loaded machine (CI runs two
# pytest-xdist workers on two cores) can take many seconds for what takes milliseconds here.
# Tests that expect silence pass a short timeout of their own.
WAIT = 60.0


def read_frame(sock: socket.socket, buffer: bytearray, timeout: float = WAIT) -> bytes | None:
    """The next VT..FS CR frame from ``sock`` (None when the peer closed)."""
    sock.settimeout(timeout)
    while True:
        start = buffer.find(VT)
        end = buffer.find(FS + CR, start + 1) if start >= 0 else -1
        if start >= 0 and end >= 0:
            payload = bytes(buffer[start + 1:end])
            del buffer[:end + 2]
            return payload
        chunk = sock.recv(65536)
        if not chunk:
            return None
        buffer += chunk


class Client:
    """A minimal MLLP sender (one keep-alive connection) for the tests."""

    def __init__(self, port: int, host: str = "127.0.0.1", source: str | None = None) -> None:
        self.sock = socket.create_connection((host, port), timeout=WAIT,
                                             source_address=(source, 0) if source else None)
        self.buffer = bytearray()

    def send(self, payload: bytes, timeout: float = WAIT) -> bytes | None:
        self.sock.sendall(VT + payload + FS + CR)
        return read_frame(self.sock, self.buffer, timeout)

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def msa(ack: bytes, encoding: str = "utf-8") -> list[str]:
    """MSA fields of an ACK: [MSA, code, control id, text...]."""
    for seg in ack.decode(encoding).split("\r"):
        if seg.startswith("MSA"):
            return seg.split("|")
    raise AssertionError("no MSA in ACK")


def segment(ack: bytes, name: str, encoding: str = "utf-8") -> list[str] | None:
    for seg in ack.decode(encoding).split("\r"):
        if seg.startswith(name + "|"):
            return seg.split("|")
    return None


def wait_processed(ctx, timeout: float = 2 * WAIT) -> None:  # noqa: ANN001
    """Until no ledger row is received/processing."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with ctx.engine.connect() as conn:
            pending = conn.execute(select(func.count()).select_from(imports).where(
                imports.c.status.in_(("received", "processing")))).scalar_one()
        if pending == 0:
            return
        time.sleep(0.05)
    raise AssertionError(f"{pending} row(s) still pending after {timeout}s")


def statuses(ctx) -> dict[str, int]:  # noqa: ANN001
    with ctx.engine.connect() as conn:
        return dict(conn.execute(select(imports.c.status, func.count())
                                 .group_by(imports.c.status)).all())


def ec_tls_files(d: Path) -> dict[str, Path]:
    """A CA and a server certificate for 127.0.0.1 in folder ``d``, made with openssl on
    P-256 keys (RSA keys took most of a test file's time budget to make): ca.pem,
    server.pem, server.key."""

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)

    key = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    run("req", "-x509", *key, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
        "-subj", "/CN=test-ca")
    run("req", *key, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=server")
    (d / "server.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "server.ext")
    return {n: d / n for n in ("ca.pem", "server.pem", "server.key")}
