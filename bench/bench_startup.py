"""Start-up of `dmp-ingest ingest ONE.hl7` (issue 10, target 6: under 3 s on a warm machine).

    .venv/bin/python bench/bench_startup.py [--runs 5]

Each run is the real command in a new process, as an operator types it, without
PREFECT_API_URL. Printed, in one run:

- first run into a fresh store: creates the store and Prefect's database, and starts the
  warm local Prefect server (pipelines/local_server.py, use_local_server);
- warm runs (the target): the server started by the first run is reused;
- Prefect's own ephemeral server (``DMP_PREFECT_SERVER=ephemeral``, the floor this replaces):
  a server started and stopped by every command.

The local server is stopped at the end.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def timed(env: dict[str, str], sample: Path) -> float:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "cli", "ingest", str(sample)], cwd=ROOT,
                          env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"dmp-ingest ingest failed (exit {done.returncode}): "
                 f"{done.stderr.strip().splitlines()[-1:]}")
    return wall


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5, help="warm runs (median printed)")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="dmp-startup-"))
    sample = sorted((ROOT / "samples" / "hl7v2").glob("*.hl7"))[0]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DMP_", "PREFECT_"))}
    env.update(DMP_HOME=str(home), PYTHONPATH=str(ROOT),
               DMP_MAPPINGS_DIR=str(ROOT / "samples" / "mappings"))
    try:
        first = timed(env, sample)
        warm = [timed(env, sample) for _ in range(args.runs)]
        ephemeral_env = dict(env, DMP_PREFECT_SERVER="ephemeral")
        ephemeral = [timed(ephemeral_env, sample) for _ in range(max(1, args.runs // 2))]
    finally:
        subprocess.run([sys.executable, "-m", "cli", "prefect", "stop"], cwd=ROOT, env=env,
                       capture_output=True)
    print(f"first run (fresh store, starts the local server) {first:6.2f} s wall")
    print(f"warm runs, local server reused (target < 3 s)     {statistics.median(warm):6.2f} s "
          f"median of {len(warm)} (min {min(warm):.2f}, max {max(warm):.2f})")
    print(f"Prefect's ephemeral server per command (floor)    "
          f"{statistics.median(ephemeral):6.2f} s median of {len(ephemeral)}")


if __name__ == "__main__":
    main()
