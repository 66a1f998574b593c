"""The HTTP API served by uvicorn inside `dmp-ingest serve`'s asyncio loop.

The service owns the process's signals (SIGTERM/SIGINT stop everything in order), so
uvicorn's own signal capture is switched off and it is stopped with ``should_exit``. The
socket is bound here, before anything is served: a port already taken is an OSError the
command reports as one line, and port 0 gives the real port back at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import uvicorn

from api.app import create_app
from pipelines.process import Context

log = logging.getLogger("dmp.api")


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """The service handles SIGTERM/SIGINT and sets ``should_exit``."""
        yield


def tls_files(ctx: Context) -> tuple[Path | None, Path | None]:
    """The HTTP API's certificate and key: its own, else the MLLP listener's."""
    http, listener = ctx.settings.http, ctx.settings.listener
    if http.tls_cert:
        return http.tls_cert, http.tls_key
    return listener.tls_cert, listener.tls_key


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(1024)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


class ApiServer:
    """start() -> serving on ``port``; stop() -> requests in progress answered, then closed."""

    def __init__(self, ctx: Context, *, host: str = "127.0.0.1", port: int = 8080,
                 on_intake: Callable[[], None] | None = None, grace: float = 30.0) -> None:
        self.ctx, self.host, self.port = ctx, host, port
        self.on_intake = on_intake
        self.grace = grace
        self.tls = False
        self.server: _Server | None = None
        self.task: asyncio.Task | None = None

    async def start(self) -> None:
        cert, key = tls_files(self.ctx)
        self.tls = cert is not None
        config = uvicorn.Config(
            create_app(self.ctx, on_intake=self.on_intake), lifespan="off",
            log_config=None,  # the service's logging, not uvicorn's
            access_log=False,  # request paths hold patient references (INS)
            server_header=False, proxy_headers=False,
            ssl_certfile=str(cert) if cert else None, ssl_keyfile=str(key) if key else None,
            timeout_graceful_shutdown=int(self.grace))
        try:
            sock = bind(self.host, self.port)
        except OSError as exc:
            raise OSError(exc.errno, f"HTTP API on {self.host}:{self.port}: "
                          f"{exc.strerror or exc}") from None
        self.port = sock.getsockname()[1]
        self.server = _Server(config)
        self.task = asyncio.create_task(self.server.serve(sockets=[sock]), name="http-api")
        while not self.server.started:
            if self.task.done():  # failed to start: raise its error
                sock.close()
                await self.task
                raise OSError("the HTTP API did not start")
            await asyncio.sleep(0.02)
        log.info("HTTP API listening on %s:%s%s", self.host, self.port,
                 " (TLS)" if self.tls else "")

    async def stop(self) -> None:
        if self.server is None or self.task is None:
            return
        self.server.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(self.task), self.grace + 5)
        except TimeoutError:
            self.server.force_exit = True
            await self.task
