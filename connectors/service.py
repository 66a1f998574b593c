"""`dmp-ingest serve`: the long-running service, composed of the MLLP listener and the ledger
worker (later the folder/S3 pollers and the HTTP API), with a clean shutdown.

SIGTERM or SIGINT: the listener stops accepting, the frames being handled are stored and
acknowledged, idle connections are closed, the worker finishes its batch; exit status 0.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import signal
from collections.abc import Callable

from connectors.mllp.server import MLLPServer, tls_context
from pipelines.acknowledge import acknowledge
from pipelines.ledger import release_claims
from pipelines.process import Context
from pipelines.worker import Worker

log = logging.getLogger("dmp.service")


async def serve(ctx: Context, *, mllp: bool = True, process: bool = True,
                on_ready: Callable[[int | None], None] | None = None,
                stop: asyncio.Event | None = None) -> dict:
    """Run until SIGTERM/SIGINT (or ``stop`` is set); return counters for the exit line.
    ``on_ready(port)`` is called once listening (the real port when 0 was asked)."""
    listener = ctx.settings.listener
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # not the main thread (tests)
            pass
    name = ctx.settings.worker_id
    released = release_claims(ctx.engine, [f"{name}/serve", f"{name}/listener"])
    if released:
        log.warning("%d ledger row(s) left claimed by a previous run of %s: taken again",
                    released, name)
    worker = Worker(Context(ctx.settings, ctx.engine, ctx.archive, worker=f"{name}/serve",
                            trigger="serve")) if process else None
    thread = worker.start_thread() if worker else None

    server = None
    if mllp:
        receiving = Context(ctx.settings, ctx.engine, ctx.archive, worker=f"{name}/listener",
                            trigger="mllp")

        def handler(frames: list) -> list[list[bytes]]:
            answers = acknowledge(receiving, frames, mode=listener.ack_mode,
                                  worker=receiving.worker)
            if worker is not None:
                worker.wake()
            return answers

        context = None
        if listener.tls_cert:
            context = tls_context(listener.tls_cert, listener.tls_key, listener.tls_client_ca)
        server = MLLPServer(handler, host=listener.host, port=listener.port,
                            max_frame_bytes=listener.max_frame_bytes,
                            idle_timeout=listener.idle_timeout, ssl_context=context)
        await server.start()
        if not ctx.settings.sources and not listener.accept_unknown_senders:
            log.warning("no sources declared: every MLLP message will be refused (AR); "
                        "declare [sources.<id>] in the settings file")
    print(f"dmp-ingest serve: MLLP on {listener.host}:{server.port}" if server
          else "dmp-ingest serve: processing only", flush=True)
    if on_ready is not None:
        on_ready(server.port if server else None)
    await stop.wait()
    print("dmp-ingest serve: stopping", flush=True)
    if server is not None:
        await server.stop()
    if worker is not None and thread is not None:
        worker.stop()
        await loop.run_in_executor(None, functools.partial(thread.join, 60))
    return {"connections": server.connections if server else 0,
            "acks": server.acks if server else 0,
            "processed": dict(worker.totals) if worker else {}}
