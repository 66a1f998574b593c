"""Helpers for the HTTP API tests: the real `serve` (HTTP only) in a thread, token clients."""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx

from api.tokens import mint
from pipelines.settings import Source

SECRET = "test-secret-" + "0123456789abcdef" * 4  # 64+ bytes: HS512 test tokens too
SOURCES = (Source("labm"), Source("hospital"), Source("imaging"),
           Source("fenced", peers=(ipaddress.ip_network("192.0.2.0/24"),)))


def api_settings(settings, **http: object):  # noqa: ANN001, ANN201
    """Test settings: declared sources, a fixed key, the HTTP API on a free port."""
    return dataclasses.replace(settings, sources=SOURCES, api_secret=SECRET,
                               http=dataclasses.replace(settings.http, port=0, **http))


@dataclass
class RunningApi:
    ctx: object
    url: str
    loop: asyncio.AbstractEventLoop
    stop_event: asyncio.Event
    thread: threading.Thread
    verify: object = True  # httpx's: an ssl.SSLContext trusting the test CA for HTTPS

    def token(self, scope: str, **claims: object) -> str:
        return mint(self.ctx.settings, scope, **claims)

    def client(self, scope: str | None = None, *, token: str | None = None,
               **claims: object) -> httpx.Client:
        """An httpx client against the running service, with a token of ``scope``."""
        headers = {}
        if scope is not None:
            token = self.token(scope, **claims)
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return httpx.Client(base_url=self.url, headers=headers, timeout=60,
                            verify=self.verify)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.stop_event.set)
        self.thread.join(60)
        assert not self.thread.is_alive(), "service did not stop"


@contextmanager
def running_api(ctx, *, process: bool = False, mllp: bool = False,  # noqa: ANN001
                pollers: bool = False, verify: object = True) -> Iterator[RunningApi]:
    """`serve` with the HTTP API (by default alone: no MLLP, no pollers) in a background
    thread; with ``process`` its ledger worker too (``ctx.settings.workers`` = 0: a thread)."""
    from api.server import tls_files
    from connectors.service import serve

    # never the default ports (8080, 2575): `make test` runs two workers, whose services
    # would meet there ('Address already in use'); the port bound is read back below
    settings = ctx.settings
    if settings.http.port or settings.listener.port:
        ctx = dataclasses.replace(ctx, settings=dataclasses.replace(
            settings, http=dataclasses.replace(settings.http, port=0),
            listener=dataclasses.replace(settings.listener, port=0)))
    ready = threading.Event()
    box: dict = {}

    def main() -> None:
        async def run() -> None:
            box["loop"] = asyncio.get_running_loop()
            box["stop"] = asyncio.Event()

            def on_http_ready(port: int) -> None:
                box["port"] = port
                ready.set()

            await serve(ctx, mllp=mllp, process=process, pollers=pollers, http=True,
                        on_http_ready=on_http_ready, stop=box["stop"])
        try:
            asyncio.run(run())
        except BaseException as exc:  # noqa: BLE001
            box["error"] = exc
        finally:
            ready.set()

    thread = threading.Thread(target=main, daemon=True)
    thread.start()
    assert ready.wait(60) and "port" in box, f"service did not start: {box.get('error')!r}"
    scheme = "https" if tls_files(ctx)[0] else "http"
    running = RunningApi(ctx, f"{scheme}://127.0.0.1:{box['port']}", box["loop"],
                         box["stop"], thread, verify)
    try:
        yield running
    finally:
        if thread.is_alive():
            running.stop()
