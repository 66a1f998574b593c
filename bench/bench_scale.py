"""A store with millions of entries: do the dedupe lookups and `dossier show` stay fast?

Prints figures; asserts nothing (performance is measured here, never in tests).

    .venv/bin/python bench/bench_scale.py [--entries 10000000] [--per-patient 100]
        [--database-url URL] [--samples 1000] [--keep PATH]

Builds a fresh store (SQLite in a temporary folder by default) holding ``--entries`` lab
results over ``--entries / --per-patient`` patients, written with the same bulk path as
processing (``dossiers.db.bulk_insert``: every index of the real schema maintained), each
with its provenance link. Then times, over ``--samples`` random patients, the statements the
pipeline and the CLI run against such a store:

- ``held_entries``: the stored versions of a message's 15 (patient, key) pairs (dedupe
  levels 3 and versions), as filing a message does;
- ``held_facts``: the current entries holding its 15 facts (dedupe level 4);
- a batch of 500 messages' pairs at once (what bulk filing sends);
- ``show_dossier``: a patient's current entries, as `dmp-ingest dossier show` reads them.

Target (issue 10, item 7): 10 million entries, the lookups and `dossier show` under 20 ms.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CODES = [f"{n}-{n % 9}" for n in range(2000, 2200)]  # 200 LOINC-shaped codes
CHUNK = 50_000  # rows per bulk insert


def build(engine, total: int, per_patient: int, seed: int) -> tuple[int, float]:  # noqa: ANN001
    """Patients, one import each, ``per_patient`` results each (and their provenance)."""
    from dossiers.db import bulk_insert
    from dossiers.schema import entries, imports, patients, provenance

    rng = random.Random(seed)
    n_patients = max(1, total // per_patient)
    now = datetime.now(UTC)
    start = time.perf_counter()
    entry_id = 0
    for first in range(0, n_patients, CHUNK // per_patient or 1):
        ids = range(first + 1, min(n_patients, first + CHUNK // per_patient) + 1)
        with engine.begin() as conn:
            bulk_insert(conn, patients, [{
                "id": p, "ins": f"{p:013d}{p % 97:02d}", "ins_oid": "1.2.250.1.213.1.4.8",
                "family": f"F{p}", "given": f"G{p}", "birth_family": None,
                "birth_date": f"19{p % 90 + 10}-0{p % 9 + 1}-1{p % 9}", "sex": "FM"[p % 2],
                "family_key": f"f{p}", "given_key": f"g{p}", "opposed": False,
                "created_at": now, "created_by": "bench"} for p in ids])
            bulk_insert(conn, imports, [{
                "id": p, "source": "bench", "channel": "file", "received_at": now,
                "sha256": hashlib.sha256(str(p).encode()).hexdigest(), "size": 1000,
                "format": "hl7v2", "status": "deposited", "stage": "deposit",
                "entries_count": per_patient, "duplicates_count": 0, "attempts": 1,
                "patient_id": p, "updated_at": now} for p in ids])
            rows, links = [], []
            for p in ids:
                for k in range(per_patient):
                    entry_id += 1
                    code = CODES[k % len(CODES)]
                    key = f"lab|ORD{p}-{k // 20}|LN|{code}"
                    rows.append({
                        "id": entry_id, "patient_id": p, "type": "lab_result", "key": key,
                        "version": 1, "current": True, "status": "final", "code": code,
                        "system": "LN", "display": "Résultat", "mapped": True,
                        "value": str(round(rng.uniform(1, 200), 1)), "value_type": "NM",
                        "value_num": rng.uniform(1, 200), "comparator": None,
                        "unit": "mmol/L", "unit_original": "mmol/l",
                        "reference_range": "3.5-5.1", "interpretation": "N",
                        "effective": f"2025-0{k % 9 + 1}-1{k % 9}T08:30:00+01:00",
                        "issued": None, "specimen_time": None, "performer": None,
                        "parent_id": None, "attachment_sha256": None, "media_type": None,
                        "masking": None, "details": None, "superseded_by": None,
                        "import_id": p, "created_at": now,
                        "fact": hashlib.sha256(f"{p}|{key}".encode()).hexdigest()[:32]})
                    links.append({"entry_id": entry_id, "import_id": p, "source": "bench",
                                  "source_ref": f"OBX[{k + 1}]", "relation": "created",
                                  "created_at": now})
            bulk_insert(conn, entries, rows)
            bulk_insert(conn, provenance, links)
        if entry_id and entry_id % 1_000_000 < CHUNK:
            rate = entry_id / (time.perf_counter() - start)
            print(f"  {entry_id:>11,} entries written ({rate:,.0f}/s)", flush=True)
    return n_patients, time.perf_counter() - start


def timings(fn, samples: list) -> tuple[float, float, float]:  # noqa: ANN001
    spent = []
    for sample in samples:
        start = time.perf_counter()
        fn(sample)
        spent.append((time.perf_counter() - start) * 1000)
    spent.sort()
    return (statistics.median(spent), spent[min(len(spent) - 1, int(len(spent) * 0.99))],
            spent[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=10_000_000)
    parser.add_argument("--per-patient", type=int, default=100)
    parser.add_argument("--database-url")
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", help="build in this folder and keep it (SQLite)")
    args = parser.parse_args()

    from sqlalchemy import func, select

    from dossiers.db import create_schema, make_engine
    from dossiers.deposit import held_entries, held_facts
    from dossiers.schema import entries
    from pipelines.report import show_dossier

    home = Path(args.keep or tempfile.mkdtemp(prefix="dmp-scale-"))
    home.mkdir(parents=True, exist_ok=True)
    url = args.database_url or f"sqlite:///{home / 'dmp.sqlite3'}"
    engine = make_engine(url)
    create_schema(engine)
    with engine.connect() as conn:
        present = conn.execute(select(func.count()).select_from(entries)).scalar_one()
    if present == 0:
        print(f"building {args.entries:,} entries, {args.per_patient} per patient "
              f"({url.split('://')[0]})", flush=True)
        n_patients, spent = build(engine, args.entries, args.per_patient, args.seed)
        print(f"built in {spent:.0f} s ({args.entries / spent:,.0f} entries/s)")
    else:
        n_patients = max(1, present // args.per_patient)
        print(f"store already holds {present:,} entries")
    if url.startswith("sqlite"):
        size = sum(f.stat().st_size for f in home.glob("dmp.sqlite3*"))
        print(f"database size: {size / 1e9:.2f} GB")

    rng = random.Random(args.seed + 1)
    patients = [rng.randint(1, n_patients) for _ in range(args.samples)]

    def message_pairs(p: int) -> set[tuple[int, str]]:
        order = rng.randrange(max(1, args.per_patient // 20))
        return {(p, f"lab|ORD{p}-{order}|LN|{CODES[(order * 20 + k) % len(CODES)]}")
                for k in range(15)}

    def message_facts(p: int) -> set[tuple[int, str]]:
        return {(p, hashlib.sha256(f"{p}|{key}".encode()).hexdigest()[:32])
                for _, key in message_pairs(p)}

    batches = [[q for p in rng.sample(range(1, n_patients + 1), min(500, n_patients))
                for q in message_pairs(p)] for _ in range(max(1, args.samples // 100))]
    print(f"\n{'statement (' + str(args.samples) + ' samples)':<52}{'p50 ms':>9}"
          f"{'p99 ms':>9}{'max ms':>9}")
    with engine.connect() as conn:
        for label, fn, samples in [
            ("held_entries: one message's 15 keys", lambda p: held_entries(
                conn, message_pairs(p)), patients),
            ("held_facts: one message's 15 facts", lambda p: held_facts(
                conn, message_facts(p)), patients),
            ("held_entries: 500 messages' keys at once", lambda b: held_entries(
                conn, set(b)), batches),
        ]:
            p50, p99, worst = timings(fn, samples)
            print(f"{label:<52}{p50:9.2f}{p99:9.2f}{worst:9.2f}")
    p50, p99, worst = timings(lambda p: show_dossier(engine, str(p)), patients)
    print(f"{'show_dossier: a patient, ' + str(args.per_patient) + ' current entries':<52}"
          f"{p50:9.2f}{p99:9.2f}{worst:9.2f}")
    engine.dispose()
    if not args.keep:
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
