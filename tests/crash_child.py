"""The process the crash tests kill: a one-shot ingest, a worker draining the ledger, or a
folder poller, through the real pipelines (``DMP_FAULT`` arms a kill at a named point).

    python -m tests.crash_child ingest FILE...   intake of the files, then drain
    python -m tests.crash_child drain            drain the ledger (a worker)
    python -m tests.crash_child folder DIR       one poll of a drop folder, then drain
"""

from __future__ import annotations

import sys
from pathlib import Path

from pipelines.intake import Received, intake
from pipelines.process import Context, drain
from pipelines.settings import FolderSource, load_settings


def main(argv: list[str]) -> int:
    mode, args = argv[0], argv[1:]
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
    elif mode != "drain":
        print(f"unknown mode {mode}", file=sys.stderr)
        return 2
    drain(ctx)
    ctx.engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
