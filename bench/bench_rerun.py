"""Time to rerun N failed lab messages (default 10,000) once their cause is fixed.

Prints figures; asserts nothing.

    .venv/bin/python bench/bench_rerun.py [--messages 10000] [--database-url URL] [--with-prefect]

Generates N ORU^R01 messages with samples/generate.py (seed 7, French lab traffic, 5 to 30
OBX each), appends to each one result under a local code (ZZGLU, system L) that no mapping
table knows, and takes them in from source 'benchlab', declared as requiring mapped codes
(DMP_REQUIRE_MAPPING): every message fails with CODE_UNMAPPED. Then the table is written
(mappings/benchlab.csv) and the rerun is timed as an admin runs it: select by filter
(--status failed --source benchlab --code CODE_UNMAPPED), check every archived object
(read back, sha256), reopen, process in batches, through pipelines/ directly;
``--with-prefect`` also times `dmp-ingest imports rerun` by filter on a second copy (CLI +
Prefect ephemeral server + flow).
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

LOCAL = "OBX|99|NM|ZZGLU^Glycémie capillaire^L||{}|mmol/L|3.9-5.8|N|||F\r"
TABLE = "coding_system,local_code,loinc,display\nL,ZZGLU,14743-9,Glucose capillaire\n"


def timed(label: str, n: int, fn):  # noqa: ANN001, ANN201
    start = time.perf_counter()
    result = fn()
    elapsed = time.perf_counter() - start
    print(f"{label:<52} {elapsed:8.2f} s  {n / elapsed:10,.0f} messages/s")
    return result, elapsed


def _failed_store(work: Path, home: Path, messages: list[bytes], env: dict) -> None:
    """A store where every message failed CODE_UNMAPPED (no table for ZZGLU yet)."""
    from pipelines.dossier_admin import DossierInput, create_dossiers
    from pipelines.intake import Received, intake
    from pipelines.process import Context, drain
    from pipelines.settings import load_settings

    ctx = Context.from_settings(load_settings(env={**env, "DMP_HOME": str(home)}))
    with open(work / "data" / "patients.csv", encoding="utf-8") as fh:
        create_dossiers(ctx.engine, [DossierInput.from_mapping(r) for r in csv.DictReader(fh)])
    intake(ctx.engine, ctx.archive, [Received(m, "benchlab", "mllp") for m in messages])
    counts = drain(ctx)
    print(f"first run: {counts}")
    ctx.engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--database-url")
    parser.add_argument("--with-prefect", action="store_true")
    args = parser.parse_args()

    from parsers.hl7v2 import split_batch
    from samples.generate import write_bulk

    work = Path(tempfile.mkdtemp(prefix="dmp-bench-rerun-"))
    count, hl7_dir = write_bulk(work / "data", args.messages, args.seed, batch=True)
    data = next(hl7_dir.iterdir()).read_bytes()
    messages = [m.rstrip(b"\r") + b"\r" + LOCAL.format(f"{3 + i / 10_000:.4f}").encode()
                for i, m in enumerate(split_batch(data).messages)]
    tables = work / "mappings"
    shutil.copytree(work / "data" / "mappings", tables)
    env = {"DMP_MAPPINGS_DIR": str(tables), "DMP_REQUIRE_MAPPING": "benchlab"}
    if args.database_url:
        env["DMP_DATABASE_URL"] = args.database_url
    print(f"{count} messages, {sum(map(len, messages)) / 1e6:.1f} MB, {os.cpu_count()} "
          f"cores, python {sys.version.split()[0]}, "
          f"{'PostgreSQL' if args.database_url else 'SQLite'}")
    home = work / "home"
    _failed_store(work, home, messages, env)

    (tables / "benchlab.csv").write_text(TABLE, encoding="utf-8")  # the cause is fixed
    from pipelines.filters import build_filter
    from pipelines.process import CODE_VERSION, Context, drain
    from pipelines.rerun import reopen_checked, targets
    from pipelines.settings import load_settings

    ctx = Context.from_settings(load_settings(env={**env, "DMP_HOME": str(home)}),
                                trigger="rerun")
    start = time.perf_counter()
    flt = build_filter(ctx.engine, status="failed", source="benchlab", code="CODE_UNMAPPED")
    ids, _ = timed("select by filter", count, lambda: targets(ctx.engine, None, flt))
    plan, _ = timed("check archived objects (sha256) + reopen", len(ids), lambda: reopen_checked(
        ctx.engine, ctx.archive, ids, code_version=CODE_VERSION))
    done, _ = timed("process (parse ... deposit), batches of "
                    f"{ctx.settings.batch_size}", len(plan.to_process),
                    lambda: drain(ctx, ids=plan.to_process))
    total = time.perf_counter() - start
    print(f"{'RERUN BY FILTER, TOTAL':<52} {total:8.2f} s  {len(ids) / total:10,.0f} "
          f"messages/s   outcomes: {done}")
    from pipelines.ledger import ImportFilter
    from pipelines.report import import_stats

    still = import_stats(ctx.engine, ImportFilter(source="benchlab", status="failed"))
    if still["by_code"]:  # the generator's deliberately bad messages, and their reasons
        print("still failed: " + ", ".join(f"{r['count']} {r['error_code']}"
                                           for r in still["by_code"]))
    ctx.engine.dispose()

    if args.with_prefect and not args.database_url:
        home2 = work / "home2"
        shutil.move(str(tables / "benchlab.csv"), str(work / "benchlab.csv"))
        _failed_store(work, home2, messages, env)
        shutil.move(str(work / "benchlab.csv"), str(tables / "benchlab.csv"))
        cli_env = dict(os.environ, **env, DMP_HOME=str(home2), PYTHONPATH=str(ROOT))
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "cli", "imports", "rerun", "--status", "failed",
                        "--source", "benchlab", "--code", "CODE_UNMAPPED"], env=cli_env,
                       cwd=ROOT, check=True)
        total = time.perf_counter() - start
        subprocess.run([sys.executable, "-m", "cli", "prefect", "stop"], env=cli_env, cwd=ROOT,
                       stdout=subprocess.DEVNULL)  # the local server the command started
        print(f"{'dmp-ingest imports rerun (CLI + Prefect), TOTAL':<52} {total:8.2f} s  "
              f"{count / total:10,.0f} messages/s")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
