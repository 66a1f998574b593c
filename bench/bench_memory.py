"""Peak memory of `dmp-ingest ingest` on one big HL7v2 batch file (target: 1 GB under 400 MB).

Prints figures; asserts nothing (performance is measured here, never in tests).

    .venv/bin/python bench/bench_memory.py [--megabytes 1024] [--intake-only] [--keep]

Generates one batch file of about ``--megabytes`` with samples/generate.py (French lab
traffic, ORU^R01 with 5 to 30 OBX), creates its patients' dossiers, then runs the real command
(`dmp-ingest ingest FILE`, through the Prefect flow, into a fresh SQLite store) as a child
process and reads its peak resident memory from the kernel (``wait4``'s ru_maxrss: the
child's high-water mark; the Prefect server it starts is a process of its own, measured
apart as the largest of the grandchildren), and samples the whole process tree: the
preparing pool's processes (pipelines/prepare_pool.py) count in the ingest's memory.
``--intake-only`` measures the intake alone (archive, split, ledger) in a child calling
pipelines/ directly.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

INTAKE_ONLY = """
import sys
from pathlib import Path
from pipelines.intake_stream import intake_file
from pipelines.process import Context
from pipelines.settings import load_settings
ctx = Context.from_settings(load_settings())
result = intake_file(ctx.engine, ctx.archive, Path(sys.argv[1]), source="bench")
print(f"{len(result.message_ids)} message rows")
"""


def _tree(root: int) -> list[int]:
    """``root`` and its descendants, from /proc."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as fh:
                    ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            parents.setdefault(ppid, []).append(int(entry))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(parents.get(pid, []))
    return found


def _pss(pid: int) -> tuple[int, bool]:
    """(proportional set size in bytes, whether it is one of the ingest's own processes:
    the command itself, its preparing pool and their forkserver, not the Prefect server)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as fh:
            kb = next(int(line.split()[1]) for line in fh if line.startswith("Pss:"))
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            cmd = fh.read()
    except (OSError, StopIteration, ValueError):
        return 0, False
    return kb * 1024, b"multiprocessing" in cmd or b"cli" in cmd


class TreeSampler(threading.Thread):
    """Every half second, the memory of the whole process tree (PSS, so that the pages
    forked processes share are counted once): the peak of the ingest's own processes
    (the command, its preparing processes, their forkserver) and of everything."""

    def __init__(self, root: int) -> None:
        super().__init__(daemon=True)
        self.root, self.own, self.all, self.root_hwm = root, 0, 0, 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.5):
            try:  # the command's own high-water mark (wait4's includes the children it reaped)
                with open(f"/proc/{self.root}/status", encoding="ascii") as fh:
                    kb = next(int(ln.split()[1]) for ln in fh if ln.startswith("VmHWM:"))
                self.root_hwm = max(self.root_hwm, kb * 1024)
            except (OSError, StopIteration, ValueError):
                pass
            sizes = [_pss(pid) for pid in _tree(self.root)]
            self.own = max(self.own, sum(size for size, own in sizes if own))
            self.all = max(self.all, sum(size for size, _ in sizes))


def run_measured(command: list[str], env: dict[str, str]) -> tuple[float, int, int, str,
                                                                    TreeSampler]:
    """(wall seconds, peak RSS of the child in bytes, of its largest descendant, output,
    the tree's peaks)."""
    start = time.perf_counter()
    child = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT)
    sampler = TreeSampler(child.pid)
    sampler.start()
    assert child.stdout is not None
    output = child.stdout.read().decode(errors="replace")
    sampler.done.set()
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - start
    import resource

    descendants = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    return wall, usage.ru_maxrss * 1024, descendants, output, sampler


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--megabytes", type=int, default=1024)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--intake-only", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the generated data")
    parser.add_argument("--reuse", help="the folder a --keep run printed: its file again")
    args = parser.parse_args()

    from samples.generate import write_bulk

    work = Path(args.reuse or tempfile.mkdtemp(prefix="dmp-memory-"))
    start = time.perf_counter()
    if args.reuse:  # the data of an earlier --keep run: generating a gigabyte takes minutes
        shutil.rmtree(work / "home", ignore_errors=True)
        batch = next((work / "data" / "hl7v2").iterdir())
        count = batch.read_bytes().count(b"\rMSH|")
    else:
        count, folder = write_bulk(work / "data", None, args.seed, batch=True,
                                   max_bytes=args.megabytes * 1024 * 1024)
        batch = next(folder.iterdir())
    size = batch.stat().st_size
    print(f"{count:,} messages, {size / 1e6:,.0f} MB, generated in "
          f"{time.perf_counter() - start:.0f} s; {os.cpu_count()} cores", flush=True)
    env = dict(os.environ, DMP_HOME=str(work / "home"), PYTHONPATH=str(ROOT),
               DMP_MAPPINGS_DIR=str(work / "data" / "mappings"))
    subprocess.run([sys.executable, "-m", "cli", "dossier", "create", "--from-csv",
                    str(work / "data" / "patients.csv")], env=env, cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)
    if args.intake_only:
        command = [sys.executable, "-c", INTAKE_ONLY, str(batch)]
        label = "intake alone (archive, split, ledger)"
    else:
        command = [sys.executable, "-m", "cli", "ingest", "--source", "bench", str(batch)]
        label = "dmp-ingest ingest (intake + processing, Prefect flow)"
    wall, peak, largest, output, tree = run_measured(command, env)
    subprocess.run([sys.executable, "-m", "cli", "prefect", "stop"], env=env, cwd=ROOT,
                   stdout=subprocess.DEVNULL)  # the local Prefect server the command started
    lines = output.strip().splitlines()
    print(f"{label}: {wall:,.0f} s wall, {count / wall:,.0f} messages/s")
    print(f"peak RSS of the ingest process: {peak / 1e6:,.0f} MB "
          f"({peak / size * 100:.0f}% of the file); largest process of the run: "
          f"{largest / 1e6:,.0f} MB")
    print(f"peak RSS of the command's own process (VmHWM, last sample): "
          f"{tree.root_hwm / 1e6:,.0f} MB")
    print(f"peak of the sum over processes (PSS, sampled every 0.5 s): the ingest's own "
          f"(command, preparing pool, forkserver) {tree.own / 1e6:,.0f} MB; everything, "
          f"Prefect's server included, {tree.all / 1e6:,.0f} MB")
    print("output: " + ("\n".join(lines[-12:]) if lines else "(none)"))
    if not args.keep and not args.reuse:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"kept: {work}")


if __name__ == "__main__":
    main()
