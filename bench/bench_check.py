"""How long `dmp-ingest check` takes on a large store: N ledger rows, each deposited with one
entry and its provenance, N archived objects. Prints figures; asserts nothing.

    .venv/bin/python bench/bench_check.py [--rows 100000] [--database-url URL]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    from dossiers.db import create_schema, make_engine
    from dossiers.schema import entries, imports, patients, provenance
    from pipelines.archive import DirectoryArchive, sha256_hex
    from pipelines.check import check

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--database-url")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="dmp-bench-check-"))
    engine = make_engine(args.database_url or f"sqlite:///{work / 'store.sqlite3'}")
    create_schema(engine)
    archive = DirectoryArchive(work / "archive")
    now = datetime.now(UTC)
    t0 = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(patients.insert(), [{"id": 1, "family": "X", "given": "Y",
                                          "birth_date": "2000-01-01", "sex": "F",
                                          "family_key": "x", "given_key": "y",
                                          "opposed": False, "created_at": now}])
    step = 10_000
    for start in range(0, args.rows, step):
        ids = range(start + 1, min(args.rows, start + step) + 1)
        blobs = [(sha256_hex(b"m%d" % i), b"m%d" % i) for i in ids]
        archive.put_many(blobs)
        with engine.begin() as conn:
            conn.execute(imports.insert(), [
                {"id": i, "source": "b", "channel": "file", "received_at": now, "sha256": sha,
                 "size": len(data), "status": "deposited", "entries_count": 1,
                 "duplicates_count": 0, "attempts": 1, "retries": 0}
                for i, (sha, data) in zip(ids, blobs, strict=True)])
            conn.execute(entries.insert(), [
                {"id": i, "patient_id": 1, "type": "lab_result", "key": f"k{i}", "version": 1,
                 "current": True, "status": "final", "mapped": True, "import_id": i,
                 "created_at": now, "fact": f"f{i}"} for i in ids])
            conn.execute(provenance.insert(), [
                {"entry_id": i, "import_id": i, "source": "b", "relation": "created",
                 "created_at": now} for i in ids])
    print(f"built {args.rows} rows in {time.perf_counter() - t0:.1f}s ({engine.dialect.name})")
    for verify in (False, True):
        t = time.perf_counter()
        report = check(engine, archive, verify_hashes=verify)
        print(f"check {'(re-reading every object)' if verify else '--quick'}: "
              f"{time.perf_counter() - t:.1f}s; consistent={report.consistent}, "
              f"imports={report.imports}, orphans={report.orphans}")
    engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
