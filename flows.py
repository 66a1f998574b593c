"""Prefect flows: thin wrappers that call pipelines/ in batches.

A Prefect task costs milliseconds, so a task handles a batch (hundreds of files at intake,
``batch_size`` ledger rows at processing), never one message. Without PREFECT_API_URL the
CLI runs them against a warm local server (the end of this module) instead of Prefect's
per-command ephemeral one; point PREFECT_API_URL at a Prefect server to see and schedule them
there (README, "Prefect").
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import os
import sys
import time
from dataclasses import asdict
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import IO

from prefect import flow, task

from connectors.files import (
    FILE_NAME_MAX,
    PEER_MAX,
    from_wire,
    grouped,
    iter_files,
    read_files,
    shown,
)
from pipelines.intake import intake
from pipelines.intake_stream import intake_file, intake_path, is_large, is_large_hl7
from pipelines.ledger import claim_batch, release_worker
from pipelines.local_server import (  # noqa: F401 (the commands' side, re-exported)
    DEFAULT_IDLE_SECONDS,
    LEASE_FILE,
    STATE_FILE,
    LocalServer,
    LocalServerError,
    local_server_answers,
    read_local_server,
    stop_local_server,
    use_local_server,
)
from pipelines.process import CODE_VERSION, Context
from pipelines.resilient import process_or_defer
from pipelines.settings import load_settings

INTAKE_CHUNK = 200  # files per intake call: one archive sync and one commit each
CHUNK_BYTES = 64 * 1024 * 1024  # and no more bytes than this held per call


@cache
def _context(trigger: str) -> Context:
    """One context per worker process and trigger: engine, archive, mapping tables. Its
    ledger claims are named after the host and process (``flow:<worker_id>:<pid>``), so that
    flow runs on several Prefect workers are told apart, and a `serve` restarting on the same
    host (which releases claims named ``<worker_id>/...``) leaves them alone."""
    settings = load_settings()
    return Context.from_settings(settings, trigger=trigger,
                                 worker=f"flow:{settings.worker_id}:{os.getpid()}")


def give_back_claims(trigger: str) -> int:
    """The rows this process claimed for ``trigger`` and did not finish (the command was
    interrupted: Ctrl-C) made 'received' again at once, for any worker: they stayed
    'processing' until their lease expired (10 minutes by default), taken by no one. What a
    batch committed is kept; what it had not is rolled back and done again by whoever
    takes the rows."""
    ctx = _context(trigger)
    return release_worker(ctx.engine, ctx.worker)


@task(name="intake-files")
def intake_files(paths: list[str], source: str) -> dict:
    ctx = _context("ingest")
    ids: list[int] = []
    batch_ids: list[int] = []
    every = list(iter_files([from_wire(p) for p in paths]))
    large = [p for p in every if is_large_hl7(p)]  # streamed, never read whole
    big = [p for p in every if p not in large and is_large(p)]  # CDA, PDF...: streamed too
    files = read_files([p for p in every if p not in large and p not in big], source)
    for chunk in grouped(files, INTAKE_CHUNK, CHUNK_BYTES):
        for result in intake(ctx.engine, ctx.archive, chunk):
            ids.extend(result.message_ids)
            if result.batch_id is not None:
                batch_ids.append(result.batch_id)
    for path in big:
        ids.extend(intake_path(ctx.engine, ctx.archive, path, source=source,
                               peer=shown(str(path.parent), PEER_MAX),
                               file_name=shown(path.name, FILE_NAME_MAX)).message_ids)
    for path in large:
        result = intake_file(ctx.engine, ctx.archive, path, source=source,
                             peer=shown(str(path.parent), PEER_MAX),
                             file_name=shown(path.name, FILE_NAME_MAX))
        ids.extend(result.message_ids)
        batch_ids.append(result.batch_id)
    return {"message_ids": ids, "batch_ids": batch_ids}


@task(name="process-batch")
def process_batch(ids: list[int], trigger: str) -> dict[str, int]:
    ctx = _context(trigger)
    claimed = claim_batch(ctx.engine, limit=len(ids), worker=ctx.worker, ids=ids,
                          lease_seconds=ctx.settings.lease_seconds)
    return process_or_defer(ctx, claimed)


def _batches(ids: list[int], size: int) -> list[list[int]]:
    return [ids[i:i + size] for i in range(0, len(ids), size)]


@flow(name="ingest-files", log_prints=False)
def ingest_files(paths: list[str], source: str = "files") -> dict:
    """Intake every file, then process the messages received, batch by batch."""
    received = intake_files(paths, source)
    size = _context("ingest").settings.batch_size
    for batch in _batches(received["message_ids"], size):
        process_batch(batch, "ingest")
    return received


@task(name="drain-batch")
def drain_batch(trigger: str) -> dict[str, int]:
    """Claim the next batch of received rows (a lease, safe with several workers), process it."""
    ctx = _context(trigger)
    claimed = claim_batch(ctx.engine, limit=ctx.settings.batch_size, worker=ctx.worker,
                          lease_seconds=ctx.settings.lease_seconds)
    return process_or_defer(ctx, claimed)


@flow(name="drain-ledger", log_prints=False)
def drain_ledger(max_batches: int | None = None) -> dict[str, int]:
    """Process whatever the ledger holds as received (the service's and reruns' flow)."""
    totals: dict[str, int] = {}
    done = 0
    while max_batches is None or done < max_batches:
        counts = drain_batch("serve")
        if not counts:
            break
        for status, n in counts.items():
            totals[status] = totals.get(status, 0) + n
        done += 1
    return totals


@flow(name="rerun-imports", log_prints=False)
def rerun_imports(ids: list[int] | None = None, status: str | None = None,
                  source: str | None = None, channel: str | None = None,
                  stage: str | None = None, code: str | None = None,
                  since: datetime | str | None = None, until: datetime | str | None = None,
                  patient: str | None = None, dry_run: bool = False,
                  actor: str | None = None, reason: str | None = None,
                  warnings: bool = False, file: str | None = None) -> dict:
    """Replay imports from their archived bytes with today's code and tables: the ``ids``
    given plus those the filter selects (status, source, channel, stage, error code, received
    since/until: ISO time or '24h', '7d'; patient: INS or dossier id; warnings: only those
    with warnings; file: the file name, '*' and '?' as in a shell), so that it can be
    started from the Prefect UI or a schedule too.
    ``dry_run``: only say what would happen. ``actor`` (default DMP_ADMIN, else the OS user
    of the worker) and ``reason`` go to the audit trail. Returns the plan (reopened, left
    alone and why, cannot be reprocessed), the outcomes and each import's result as the
    ledger holds them after the run."""
    from pipelines.audit import Actor
    from pipelines.filters import build_filter
    from pipelines.rerun import audit_rerun, reopen_checked, rerun_outcomes, targets
    from pipelines.rerun import dry_run as plan_only

    ctx = _context("rerun")
    flt = build_filter(ctx.engine, status=status, source=source, channel=channel, stage=stage,
                       code=code, since=since, until=until, patient=patient,
                       warnings=warnings, file=file, settings=ctx.settings)
    wanted = targets(ctx.engine, ids, flt)
    if dry_run:
        return plan_only(ctx.engine, ctx.archive, wanted, ctx.settings)
    audit_rerun(ctx.engine, Actor.current(actor), wanted, reason)
    plan = reopen_checked(ctx.engine, ctx.archive, wanted, code_version=CODE_VERSION,
                          settings=ctx.settings)
    for batch in _batches(plan.to_process, ctx.settings.batch_size):
        process_batch(batch, "rerun")
    return {"requested": len(wanted), "dry_run": False, **plan.summary(),
            **rerun_outcomes(ctx.engine, plan.to_process)}


# -- folder and bucket pollers ----------------------------------------------------------------
class PollFailed(RuntimeError):
    """A source could not be polled (unreachable, store down); what was taken is processed."""


@task(name="poll-folder")
def poll_folder(source_id: str) -> dict:
    """One poll of a declared folder: settled files recorded (moved to done/ or failed/)."""
    from connectors.folder import FolderPoller

    ctx = _context("poll")
    source = next(f for f in ctx.settings.folders if f.id == source_id)
    with FolderPoller(source, ctx.engine, ctx.archive, name=ctx.settings.worker_id) as poller:
        return asdict(poller.poll())


@task(name="poll-bucket")
def poll_bucket(source_id: str) -> dict:
    """One poll of a declared bucket prefix: new objects recorded, then tagged or moved."""
    from connectors.s3_bucket import TAKEN_DIR, BucketPoller

    ctx = _context("poll")
    source = next(b for b in ctx.settings.buckets if b.id == source_id)
    with BucketPoller(source, ctx.engine, ctx.archive,
                      endpoint_url=ctx.settings.s3_endpoint_url,
                      state_dir=ctx.settings.home / TAKEN_DIR) as poller:
        return asdict(poller.poll())


def _process_polled(results: list[dict]) -> dict:
    """Process what the polls received, batch by batch; fail the run (after processing) if a
    source could not be polled."""
    ids = [i for r in results for i in r["message_ids"]]
    for batch in _batches(ids, _context("poll").settings.batch_size):
        process_batch(batch, "poll")
    summary = {"sources": {r["source"]: {k: r[k] for k in ("taken", "refused", "pending",
                                                           "error")} for r in results},
               "message_ids": ids, "batch_ids": [i for r in results for i in r["batch_ids"]]}
    errors = [r["error"] for r in results if r["error"]]
    if errors:
        raise PollFailed("; ".join(errors))
    return summary


@flow(name="poll-folders", log_prints=False)
def poll_folders(sources: list[str] | None = None) -> dict:
    """One poll of every declared folder (or of ``sources``), then processing of what came
    in. Deploy it on a schedule, or let `dmp-ingest serve` poll continuously."""
    folders = _context("poll").settings.folders
    return _process_polled([poll_folder(f.id) for f in folders
                            if sources is None or f.id in sources])


@flow(name="poll-buckets", log_prints=False)
def poll_buckets(sources: list[str] | None = None) -> dict:
    """One poll of every declared bucket source (or of ``sources``), then processing."""
    buckets = _context("poll").settings.buckets
    return _process_polled([poll_bucket(b.id) for b in buckets
                            if sources is None or b.id in sources])


# -- the warm local Prefect API server -------------------------------------------------------
# Where the CLI's flows run when no PREFECT_API_URL is configured; the commands' side (start,
# find, stop, the lease) is pipelines/local_server.py, which needs no Prefect import. The
# server process is below: ``python -m flows local-server``.


# -- the server process ---------------------------------------------------------------------
class _Activity:
    """ASGI wrapper noting when the API last answered and how many requests are in hand."""

    def __init__(self, app) -> None:  # noqa: ANN001
        self.app = app
        self.last = time.monotonic()
        self.in_hand = 0

    async def __call__(self, scope, receive, send) -> None:  # noqa: ANN001
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self.in_hand += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_hand -= 1
            self.last = time.monotonic()


def _idle_and_unleased(activity: _Activity, idle_seconds: float, lease: IO[str]) -> bool:
    if activity.in_hand or time.monotonic() - activity.last < idle_seconds:
        return False
    try:
        fcntl.flock(lease, fcntl.LOCK_EX | fcntl.LOCK_NB)  # kept until exit: no new user
    except BlockingIOError:
        return False
    return True


async def _serve(port: int, idle_seconds: float, prefect_home: Path) -> None:
    import uvicorn
    from prefect.server.api.server import create_app

    activity = _Activity(create_app(ephemeral=True, final=True))
    server = uvicorn.Server(uvicorn.Config(activity, host="127.0.0.1", port=port,
                                           log_level="error", lifespan="on"))
    lease = open(prefect_home / LEASE_FILE, "a+")  # noqa: SIM115 (held until exit)
    serving = asyncio.create_task(server.serve())
    while not serving.done():
        await asyncio.wait({serving}, timeout=min(5.0, max(idle_seconds / 4, 0.2)))
        if not serving.done() and _idle_and_unleased(activity, idle_seconds, lease):
            state = read_local_server(prefect_home)
            if state is not None and state.pid == os.getpid():
                (prefect_home / STATE_FILE).unlink(missing_ok=True)
            server.should_exit = True
    await serving


def _local_server_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m flows local-server",
                                     description="the warm local Prefect API server")
    parser.add_argument("command", choices=["local-server"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--idle-seconds", type=float, default=DEFAULT_IDLE_SECONDS)
    parser.add_argument("--prefect-home", type=Path, required=True)
    args = parser.parse_args(argv)
    asyncio.run(_serve(args.port, args.idle_seconds, args.prefect_home))
    return 0


if __name__ == "__main__":
    sys.exit(_local_server_main())
