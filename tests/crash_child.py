"""The process the crash tests kill: a one-shot ingest, a worker draining the ledger, or a
folder poller, through the real pipelines (``DMP_FAULT`` arms a kill at a named point).

    python -m tests.crash_child ingest FILE...   intake of the files, then drain
    python -m tests.crash_child drain            drain the ledger (a worker)
    python -m tests.crash_child folder DIR       one poll of a drop folder, then drain
    python -m tests.crash_child rerun            rerun every import (reopen, then process)

``DMP_TEST_POISON=sha256``: the process dies (SIGKILL) whenever it prepares the message with
these bytes, as a worker does on an input that crashes a C library or exhausts memory.

    python -m tests.crash_child --zygote         (tests/test_crash_points.py's Zygote)

imports all this once, then forks one child per request read on stdin, each running ``main``
as ``python -m tests.crash_child`` would (its own environment, working directory and fault
plan) and answers with the child's exit status: the same process, killed the same way,
without paying the interpreter's start and these imports (2-4 s on two busy cores) per run.
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


def zygote() -> int:
    """One JSON request a line on stdin, ``{"argv", "env", "cwd", "stdout", "stderr"}``: fork
    a child that runs ``main(argv)`` with that environment (the fault plan read from its
    DMP_FAULT, as at an import), its output to those files; answer with its exit status as
    ``subprocess`` reports it (negative: the signal that killed it)."""
    import json
    import traceback

    import connectors.folder  # noqa: F401 - imported late by main: imported once here
    import pipelines.faults as faults
    import pipelines.rerun  # noqa: F401

    # modules bound ``fault_point`` at import: armed (DMP_FAULT set for this process), it
    # reads the plan each child sets below; with an empty plan it returns at once, as _off
    if faults.fault_point is not faults._armed:
        print("the zygote needs DMP_FAULT set when it starts", file=sys.stderr)
        return 2
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:  # the child
            status = 1
            try:
                for fd, name in ((1, "stdout"), (2, "stderr")):
                    out = os.open(request[name], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                    os.dup2(out, fd)
                    os.close(out)
                os.environ.clear()
                os.environ.update(request["env"])
                os.chdir(request["cwd"])
                faults._plan = faults._parse(os.environ.get(faults.ENV, ""))
                faults._hits.clear()
                status = main(request["argv"])
            except SystemExit as exc:
                status = exc.code if isinstance(exc.code, int) else 1
            except BaseException:  # noqa: BLE001 - as the interpreter would: traceback, 1
                traceback.print_exc()
                status = 1
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(status)
        _, wait_status = os.waitpid(pid, 0)
        print(json.dumps(os.waitstatus_to_exitcode(wait_status)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(zygote() if sys.argv[1:] == ["--zygote"] else main(sys.argv[1:]))
