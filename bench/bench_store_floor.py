"""The store's floor: how fast SQLite alone writes what filing writes, with no Python work.

Prints figures; asserts nothing (performance is measured here, never in tests).

    .venv/bin/python bench/bench_store_floor.py [--messages 5000] [--documents 100] [--runs 3]

Why: issue 10's targets are throughputs into the SQLite store (target 1: 10,000 ORU^R01
messages/s end to end; target 3: 500 CR-BIO documents/s). Whatever the Python side does, the
store has one writer, so the rows a message leaves there bound the rate from below no matter
how many cores prepare them. This measures that bound on the real schema and the real rows.

How: it files ``--messages`` ORU^R01 (``samples/generate.py``, seed 7, the file of
``bench_processing.py``) and ``--documents`` CR-BIO of 100 results (``cr_bio``) through the
pipeline into a fresh store, reads back every ``entries`` and ``provenance`` row filing wrote
(the rows that grow with the content: about 15 and 15 per message, 101 and 101 per
document), then, ``--runs`` times, empties those two tables in a copy of the store and writes
the same rows again from ready tuples with ``sqlite3``'s ``executemany``: the same schema and
indexes, foreign keys checked, WAL, ``synchronous=NORMAL`` and a commit per piece of 100
messages (20 documents), as filing does. Left out, so the floor is a floor: the ledger's
rows and updates, the dedupe and identity look-ups, the archive, and all of the Python work
(parsing, normalizing, building the rows). The CPU of the filing process in the same run is
printed beside it (the rest of the pool's work runs in other processes).
"""

from __future__ import annotations

import argparse
import bisect
import os
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def content_rows(db: Path) -> tuple[list[str], list[tuple], list[str], list[tuple]]:
    """The columns and rows of ``entries`` and ``provenance``, in id order. ``superseded_by``
    is emptied: it points forward to rows of a later piece, which filing writes by an update
    after the insert (left out here)."""
    con = sqlite3.connect(db)
    try:
        ecols = [r[1] for r in con.execute("PRAGMA table_info(entries)")]
        pcols = [r[1] for r in con.execute("PRAGMA table_info(provenance)")]
        entries = con.execute("SELECT * FROM entries ORDER BY id").fetchall()
        provenance = con.execute("SELECT * FROM provenance ORDER BY id").fetchall()
    finally:
        con.close()
    at = ecols.index("superseded_by")
    entries = [r[:at] + (None,) + r[at + 1:] for r in entries]
    return ecols, entries, pcols, provenance


def pieces(ecols: list[str], entries: list[tuple], pcols: list[str], provenance: list[tuple],
           count: int) -> list[tuple[list[tuple], list[tuple]]]:
    """``count`` pieces of consecutive entries, each with the provenance links of its entries
    (a link never names an entry of a later piece, so foreign keys hold at each commit)."""
    size = -(-len(entries) // count)
    chunks = [entries[i:i + size] for i in range(0, len(entries), size)]
    ends = [chunk[-1][ecols.index("id")] for chunk in chunks]
    links: list[list[tuple]] = [[] for _ in chunks]
    at = pcols.index("entry_id")
    for row in provenance:
        links[bisect.bisect_left(ends, row[at])].append(row)
    return list(zip(chunks, links, strict=True))


VARIANTS = {
    "as filed": (True, False),
    "entries only": (False, False),
    "entries only, no secondary index": (False, True),
}


def rewrite(db: Path, work: Path, ecols: list[str], pcols: list[str],
            parts: list[tuple[list[tuple], list[tuple]]], *, links: bool = True,
            bare: bool = False) -> tuple[float, float]:
    """CPU and wall seconds to write ``parts`` again into an emptied copy of ``db``: with
    their provenance ``links`` or not, and with the secondary indexes of ``entries`` or
    (``bare``) only its primary key (what a row per result costs at the very least)."""
    copy = work / "floor.sqlite3"
    for suffix in ("", "-wal", "-shm"):
        if Path(f"{db}{suffix}").exists():
            shutil.copy(f"{db}{suffix}", f"{copy}{suffix}")
    con = sqlite3.connect(copy, isolation_level=None)
    try:
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=NORMAL")
        con.execute("DELETE FROM provenance")  # foreign keys off: no scan per deleted row
        con.execute("DELETE FROM entries")
        con.execute("VACUUM")  # no free-list pages left to scatter the new rows over
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        if bare:
            for (name,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'index' "
                                       "AND tbl_name = 'entries' AND sql IS NOT NULL").fetchall():
                con.execute(f'DROP INDEX "{name}"')
        con.execute("PRAGMA foreign_keys=ON")
        insert_entry = (f"INSERT INTO entries ({', '.join(ecols)}) "
                        f"VALUES ({', '.join('?' * len(ecols))})")
        insert_link = (f"INSERT INTO provenance ({', '.join(pcols)}) "
                       f"VALUES ({', '.join('?' * len(pcols))})")
        cpu, wall = time.process_time(), time.perf_counter()
        for rows, linked in parts:
            con.execute("BEGIN")
            con.executemany(insert_entry, rows)
            if links:
                con.executemany(insert_link, linked)
            con.execute("COMMIT")
        return time.process_time() - cpu, time.perf_counter() - wall
    finally:
        con.close()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{copy}{suffix}").unlink(missing_ok=True)


def measure(label: str, unit: str, count: int, per_piece: int, db: Path, work: Path,
            runs: int, filing_cpu: float) -> None:
    ecols, entries, pcols, provenance = content_rows(db)
    parts = pieces(ecols, entries, pcols, provenance, max(1, count // per_piece))
    print(f"{label}: {count} {unit}s filed, {len(entries):,} entry rows and "
          f"{len(provenance):,} provenance rows "
          f"({len(entries) / count:.1f} and {len(provenance) / count:.1f} per {unit})")
    print(f"  the filing process in that run: {filing_cpu / count * 1e3:.3f} ms CPU per {unit}")
    for variant, (links, bare) in VARIANTS.items():
        for run in range(runs):
            cpu, wall = rewrite(db, work, ecols, pcols, parts, links=links, bare=bare)
            rows = len(entries) + (len(provenance) if links else 0)
            print(f"  SQLite alone, {variant}, run {run + 1}: {cpu / count * 1e3:.3f} ms CPU, "
                  f"{wall / count * 1e3:.3f} ms wall per {unit} -> at most "
                  f"{count / max(cpu, wall):,.0f} {unit}s/s through this one writer "
                  f"({rows / wall:,.0f} rows/s)")


def filed_hl7(work: Path, messages: int, seed: int) -> tuple[Path, float]:
    """A store holding ``messages`` filed ORU^R01, and the filing process's CPU seconds."""
    from bench.bench_ingest import bench_context
    from pipelines.intake import Received, intake
    from pipelines.process import drain
    from samples.generate import write_bulk

    _, hl7_dir = write_bulk(work / "data", messages, seed, batch=True)
    ctx = bench_context(work, prepare_processes=None)
    intake(ctx.engine, ctx.archive, [Received(data=next(hl7_dir.iterdir()).read_bytes(),
                                              source="bench", channel="file")])
    cpu = time.process_time()
    print(f"HL7v2 outcomes: {drain(ctx)}")
    cpu = time.process_time() - cpu
    ctx.engine.dispose()
    return work / "home" / "dmp.sqlite3", cpu


def filed_cda(work: Path, documents: int) -> tuple[Path, float]:
    """A store holding ``documents`` filed CR-BIO of 100 results (as bench_cda.py builds
    them), and the filing process's CPU seconds."""
    import csv

    from pipelines.dossier_admin import DossierInput, create_dossiers
    from pipelines.gc_tuning import tune_for_batches
    from pipelines.intake import Received, intake
    from pipelines.process import Context, drain
    from pipelines.settings import load_settings
    from samples.generate import write_patients_csv
    from samples.generate_cda import big_patient, cr_bio

    ctx = Context.from_settings(load_settings(env={"DMP_HOME": str(work / "home")}))
    write_patients_csv(work / "patients.csv", [big_patient(s) for s in range(1, documents + 1)])
    with open(work / "patients.csv", encoding="utf-8") as fh:
        create_dossiers(ctx.engine, [DossierInput.from_mapping(r) for r in csv.DictReader(fh)])
    tune_for_batches()
    intake(ctx.engine, ctx.archive, [Received(data=cr_bio(100, s), source="bench",
                                              channel="file", file_name=f"crbio-{s}.xml")
                                     for s in range(1, documents + 1)])
    cpu = time.process_time()
    print(f"CDA outcomes: {drain(ctx)}")
    cpu = time.process_time() - cpu
    ctx.engine.dispose()
    return work / "home" / "dmp.sqlite3", cpu


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--documents", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="dmp-bench-floor-"))
    try:
        print(f"{os.cpu_count()} cores, python {sys.version.split()[0]}, "
              f"SQLite {sqlite3.sqlite_version}, load average {os.getloadavg()[0]:.2f}")
        hl7_db, hl7_cpu = filed_hl7(work / "hl7", args.messages, args.seed)
        if args.documents:
            cda_db, cda_cpu = filed_cda(work / "cda", args.documents)
        measure("ORU^R01", "message", args.messages, 100, hl7_db, work, args.runs, hl7_cpu)
        if args.documents:
            measure("CR-BIO of 100 results", "document", args.documents, 20, cda_db, work,
                    args.runs, cda_cpu)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
