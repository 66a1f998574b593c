"""CR-BIO lab reports (CDA R2, 100 results each) end to end: documents/s and entries/s.

Run on demand (not a test):

    .venv/bin/python bench/bench_cda.py [--documents 500] [--results 100] [--database-url URL]

Generates the documents with samples/generate_cda.py (one new patient each, dossiers created
first), then times, in one process: the parser alone, parse + normalize, intake (archive +
ledger), and processing (parse, normalize, identity, dedupe, deposit) through the same
``drain`` as `dmp-ingest ingest`. Prints each step's figure; nothing is asserted.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def timed(label: str, count: int, fn, unit: str = "documents") -> float:  # noqa: ANN001
    start = time.perf_counter()
    fn()
    elapsed = time.perf_counter() - start
    print(f"{label:<48} {elapsed:8.2f} s  {count / elapsed:10,.0f} {unit}/s", flush=True)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--documents", type=int, default=500)
    parser.add_argument("--results", type=int, default=100)
    parser.add_argument("--database-url")
    parser.add_argument("--prepare-processes", type=int, default=None,
                        help="processes preparing batches beside the filing one (default: "
                        "one per core; 0: everything in one process)")
    args = parser.parse_args()

    from samples.generate import write_patients_csv
    from samples.generate_cda import big_patient, cr_bio

    t0 = time.perf_counter()
    docs = [cr_bio(args.results, seed) for seed in range(1, args.documents + 1)]
    patients = [big_patient(seed) for seed in range(1, args.documents + 1)]
    size = sum(map(len, docs)) / len(docs)
    print(f"{len(docs)} CR-BIO documents of {args.results} results generated in "
          f"{time.perf_counter() - t0:.1f} s ({size / 1000:.0f} KB each on average)")

    from normalizers.cda import normalize_cda
    from parsers.cda import parse_cda

    n = len(docs)
    timed("parse alone (parsers/cda, hardened lxml)", n, lambda: [parse_cda(d) for d in docs])
    timed("parse + normalize", n, lambda: [normalize_cda(parse_cda(d), d, "bench")
                                           for d in docs])

    from pipelines.dossier_admin import DossierInput, create_dossiers
    from pipelines.intake import Received, intake
    from pipelines.process import Context, drain
    from pipelines.settings import load_settings

    work = Path(tempfile.mkdtemp(prefix="bench-cda-"))
    env = {"DMP_HOME": str(work / "home")}
    if args.database_url:
        env["DMP_DATABASE_URL"] = args.database_url
    if args.prepare_processes is not None:
        env["DMP_PREPARE_PROCESSES"] = str(args.prepare_processes)
    ctx = Context.from_settings(load_settings(env=env))
    write_patients_csv(work / "patients.csv", patients)
    with open(work / "patients.csv", encoding="utf-8") as fh:
        create_dossiers(ctx.engine, [DossierInput.from_mapping(r) for r in csv.DictReader(fh)])

    from pipelines.gc_tuning import tune_for_batches

    tune_for_batches()  # as `dmp-ingest` does
    items = [Received(d, "bench", "file", file_name=f"{i}.xml") for i, d in enumerate(docs)]
    t_intake = timed("intake (archive + ledger)", n, lambda: intake(ctx.engine, ctx.archive,
                                                                      items))
    from bench.bench_processing import children_cpu

    totals: dict[str, int] = {}
    pool_before, cpu_before = children_cpu(), time.process_time()
    t_process = timed(f"processing, batches of {ctx.settings.batch_size}", n,
                      lambda: totals.update(drain(ctx)))
    filing, pool = time.process_time() - cpu_before, children_cpu() - pool_before
    print(f"{'  CPU of the filing process':<48} {filing:8.2f} s  {filing / n * 1000:10.2f} "
          "ms/document")
    print(f"{'  CPU of the preparing pool':<48} {pool:8.2f} s  {pool / n * 1000:10.2f} "
          "ms/document")
    # both cores busy or not: the CPU of every process over the wall time (the filing
    # process's figure includes the parts it prepared itself while the pool was behind)
    print(f"{'  cores kept busy (CPU / wall time)':<48} {(filing + pool) / t_process:8.2f}    "
          f"of {os.cpu_count()}")
    from sqlalchemy import func, select

    from dossiers.schema import entries

    with ctx.engine.connect() as conn:
        filed = conn.execute(select(func.count()).select_from(entries)).scalar_one()
    total = t_intake + t_process
    print(f"{'END TO END (intake + processing)':<48} {total:8.2f} s  {n / total:10,.0f} "
          f"documents/s  {filed / total:10,.0f} entries/s")
    print(f"outcomes: {totals}; entries filed: {filed}")


if __name__ == "__main__":
    main()
