"""Throughput of 1, 2 and 4 worker processes draining one PostgreSQL ledger, and of 1 and 2 on
SQLite: messages/s, and what a message costs in CPU (workers; PostgreSQL server) on each.

The workers are the service's (pipelines/worker.py, multiprocessing 'spawn'). The ledger is
prepared once per store (samples/generate.py lab results, dossiers created, messages taken
in) and copied for every run, so every run drains the same rows. The throughput counts from
the first processing attempt's start to the last one's end (process start-up excluded; the
wall time with start-up is printed too).

    .venv/bin/python bench/bench_workers.py [--messages 20000] [--workers 1,2,4]
        [--sqlite-workers 1,2] [--database-url postgresql://user@host/db] [--durable]
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select  # noqa: E402

from bench.drain_workers import (  # noqa: E402
    WorkerPool,
    check_ledger,
    copy_database,
    prepare_ledger,
    wait_drained,
)
from bench.pg_local import server_cpu_seconds, throwaway_postgres  # noqa: E402
from dossiers.db import make_engine  # noqa: E402
from dossiers.schema import import_attempts  # noqa: E402
from pipelines.settings import load_settings  # noqa: E402


def _settings(url: str, work: Path):  # noqa: ANN202
    return load_settings(env={"DMP_HOME": str(work / "home"), "DMP_DATABASE_URL": url,
                              "DMP_ARCHIVE_URL": str(work / "archive"),
                              "DMP_WORKER_ID": "bench"})


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(template: str, name: str, n: int, work: Path, count: int,
        pg_data: Path | None) -> dict:
    url = copy_database(template, name)
    engine = make_engine(url)
    pool = WorkerPool(_settings(url, work), n)
    cpu0, pg0 = _children_cpu(), server_cpu_seconds(pg_data) if pg_data else 0.0
    start = time.perf_counter()
    pool.start()
    try:
        wait_drained(engine, timeout=3600)
    except BaseException:  # interrupted: no worker left behind
        for p in pool.processes:
            p.kill()
        raise
    wall = time.perf_counter() - start
    pool.stop()
    workers_cpu = _children_cpu() - cpu0
    server_cpu = (server_cpu_seconds(pg_data) - pg0) if pg_data else 0.0
    with engine.connect() as conn:
        first, last = conn.execute(select(func.min(import_attempts.c.started_at),
                                          func.max(import_attempts.c.finished_at))).one()
    check = check_ledger(engine)
    engine.dispose()
    if not check.exactly_once:
        raise SystemExit(f"{name}: ledger check failed: {check}")
    window = (last - first).total_seconds()
    return {"window": window, "wall": wall, "rate": count / window,
            "workers_ms": 1000 * workers_cpu / count, "server_ms": 1000 * server_cpu / count,
            "raced": check.internal_errors, "by_status": check.by_status}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workers", default="1,2,4", help="PostgreSQL worker counts")
    parser.add_argument("--sqlite-workers", dest="sqlite_workers", default="1,2")
    parser.add_argument("--database-url", dest="database_url",
                        help="an existing PostgreSQL database to prepare the ledger in "
                        "(copies are made beside it; default: a throwaway cluster)")
    parser.add_argument("--durable", action="store_true",
                        help="throwaway cluster with fsync/synchronous_commit on")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="dmp-bench-workers-"))
    print(f"{args.messages} messages, {os.cpu_count()} cores, python "
          f"{sys.version.split()[0]}, batches of {_settings('sqlite://', work).batch_size}")
    header = (f"{'store':<11} {'workers':>7} {'drain s':>8} {'msg/s':>8} {'wall s':>7} "
              f"{'worker CPU ms/msg':>18} {'server CPU ms/msg':>18} {'INTERNAL_ERROR':>14}")
    rows = []
    server = (nullcontext((args.database_url.rsplit("/", 1)[0], None)) if args.database_url
              else throwaway_postgres(durable=args.durable))
    with server as (base, pg_data):
        template = args.database_url or f"{base}/dmp_template"
        if not args.database_url:
            import psycopg

            admin = base.replace("postgresql+psycopg://", "postgresql://") + "/postgres"
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute('CREATE DATABASE "dmp_template"')
        started = time.perf_counter()
        count = prepare_ledger(_settings(template, work), work / "pg", args.messages,
                               args.seed)
        print(f"PostgreSQL ledger prepared: {count} rows in {time.perf_counter() - started:.1f} s")
        for n in [int(x) for x in args.workers.split(",") if x]:
            rows.append(("PostgreSQL", n, run(template, f"dmp_run{n}", n, work, count,
                                              pg_data)))
            print(_line(*rows[-1]), flush=True)
    sqlite_template = f"sqlite:///{work / 'template.sqlite3'}"
    count = prepare_ledger(_settings(sqlite_template, work), work / "sqlite", args.messages,
                           args.seed)
    for n in [int(x) for x in args.sqlite_workers.split(",") if x]:
        rows.append(("SQLite", n, run(sqlite_template, f"run{n}", n, work, count, None)))
        print(_line(*rows[-1]), flush=True)
    print()
    for store, n, r in rows:
        print(f"{store} x{n}: {r['by_status']}")
    print(header)
    for row in rows:
        print(_line(*row))


def _line(store: str, n: int, r: dict) -> str:
    server = f"{r['server_ms']:18.2f}" if store == "PostgreSQL" else f"{'-':>18}"
    return (f"{store:<11} {n:>7} {r['window']:8.1f} {r['rate']:8.0f} {r['wall']:7.1f} "
            f"{r['workers_ms']:18.2f} {server} {r['raced']:14}")


if __name__ == "__main__":
    main()
