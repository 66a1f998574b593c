"""The process the crash tests kill: a one-shot ingest, a worker draining the ledger, or a
folder poller, through the real pipelines (``DMP_FAULT`` arms a kill at a named point).

    python -m tests.crash_child ingest FILE...   intake of the files, then drain
    python -m tests.crash_child drain            drain the ledger (a worker)
    python -m tests.crash_child folder DIR       one poll of a drop folder, then drain
    python -m tests.crash_child rerun            rerun every import (reopen, then process)

``DMP_TEST_POISON=sha256``: the process dies (SIGKILL) whenever it prepares the message with
these bytes, as a worker does on an input that crashes a C library or exhausts memory.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from pipelines.intake import Received, intake
from pipelines.process import Context, drain
from pipelines.settings import FolderSource, load_settings


def _arm_poison(sha: str) -> None:
    import pipelines.process as process

    prepare = process._prepare

    def dying(ctx, row, started):  # noqa: ANN001, ANN202
        if row.sha256 == sha:
            os.kill(os.getpid(), signal.SIGKILL)
        return prepare(ctx, row, started)

    process._prepare = dying


def main(argv: list[str]) -> int:
    mode, args = argv[0], argv[1:]
    if os.environ.get("DMP_TEST_POISON"):
        _arm_poison(os.environ["DMP_TEST_POISON"])
    settings = load_settings()
    ctx = Context.from_settings(settings, worker=settings.worker_id)
    if mode == "ingest":
        items = [Received(data=Path(p).read_bytes(), source="crash", channel="file",
                          file_name=Path(p).name) for p in args]
        intake(ctx.engine, ctx.archive, items)
    elif mode == "folder":
        from connectors.folder import FolderPoller

        source = FolderSource(id="crash", path=Path(args[0]), settle_seconds=0)
        with FolderPoller(source, ctx.engine, ctx.archive, name=settings.worker_id) as poller:
            poller.poll()
    elif mode == "rerun":  # what `dmp-ingest rerun` does: reopen, then process those rows
        from pipelines.process import CODE_VERSION
        from pipelines.rerun import reopen_checked, select_ids

        plan = reopen_checked(ctx.engine, ctx.archive, select_ids(ctx.engine),
                              code_version=CODE_VERSION)
        drain(ctx, ids=plan.to_process)
    elif mode != "drain":
        print(f"unknown mode {mode}", file=sys.stderr)
        return 2
    drain(ctx)
    ctx.engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
