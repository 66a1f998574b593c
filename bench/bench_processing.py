"""Processing alone (``pipelines.process.drain``) of an HL7v2 batch file, with the CPU time of
the filing process and of the preparing pool per message: which of the two is the bottleneck.

    .venv/bin/python bench/bench_processing.py [--messages 10000] [--prepare-processes N]

Prints figures; asserts nothing. The file is the one of bench_ingest.py (samples/generate.py,
seed 7); intake is done first and not timed. The pool's CPU is read from /proc for the
children of this process (Linux), the filing process's with ``time.process_time`` (all its
threads: unpickling the pool's results happens in the executor's thread).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def children_cpu() -> float:
    """CPU seconds (user + system) of the live descendants of this process."""
    tick = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry.name)] = int(fields[1])
        times[int(entry.name)] = (int(fields[11]) + int(fields[12])) / tick
    mine = {os.getpid()}
    changed = True
    while changed:
        changed = False
        for pid, ppid in parents.items():
            if ppid in mine and pid not in mine:
                mine.add(pid)
                changed = True
    return sum(times[pid] for pid in mine if pid != os.getpid())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--prepare-processes", type=int, default=None)
    args = parser.parse_args()

    from bench.bench_ingest import bench_context
    from pipelines.intake import Received, intake
    from pipelines.process import drain
    from samples.generate import write_bulk

    work = Path(tempfile.mkdtemp(prefix="dmp-bench-processing-"))
    count, hl7_dir = write_bulk(work / "data", args.messages, args.seed, batch=True)
    data = next(hl7_dir.iterdir()).read_bytes()
    ctx = bench_context(work, prepare_processes=args.prepare_processes)
    intake(ctx.engine, ctx.archive, [Received(data=data, source="bench", channel="file")])

    pool_before, cpu_before, start = children_cpu(), time.process_time(), time.perf_counter()
    totals = drain(ctx)
    wall = time.perf_counter() - start
    filing, pool = time.process_time() - cpu_before, children_cpu() - pool_before
    print(f"{count} messages, {os.cpu_count()} cores, python {sys.version.split()[0]}")
    print(f"processing (drain)            {wall:7.2f} s  {count / wall:8,.0f} messages/s")
    print(f"CPU of the filing process     {filing:7.2f} s  {filing / count * 1000:8.3f} ms/message")
    print(f"CPU of the preparing pool     {pool:7.2f} s  {pool / count * 1000:8.3f} ms/message")
    print(f"outcomes: {totals}")


if __name__ == "__main__":
    main()
