"""Differential of the fast path: the same inputs filed in batches (one drain, the preparing
pool on, pieces cut by its pace) and one message at a time, in the same ledger order, must
leave the same store. Prints every difference (ledger outcomes, entries, provenance links).

    PYTHONPATH=. .venv/bin/python bench/diff_batching.py [--crbio N] [--processes 2]
        [--batch-size 500] [--commit-every 100] [PATH ...]

Inputs: samples/hl7v2, samples/cda and ../shared/corpus (cda, hl7v2, intl) unless PATHs are
given, plus N generated CR-BIO documents (patients created beforehand), with auto-create on
as the corpus's patients have no dossier. Both runs intake every file as one group, so the
ledger (and the order of filing) is the same: the reference drains it in batches of one
message (each filed alone, the one-by-one path), the other in batches of ``--batch-size``.
Exit status 1 when they differ. Why one group for both: a replacement received before its
original is filed differently on purpose; comparing two receive orders shows that, not a
batching bug.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import sys
import tempfile
from pathlib import Path

from sqlalchemy import select

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO.parent / "shared" / "corpus"
SKIPPED = (".txt", ".md", ".pdf", ".csv")


def default_inputs() -> list[Path]:
    folders = [REPO / "samples/hl7v2", REPO / "samples/cda", CORPUS / "cda",
               CORPUS / "hl7v2", CORPUS / "intl"]
    return [p for d in folders for p in sorted(d.rglob("*"))
            if p.is_file() and p.suffix.lower() not in SKIPPED]


def file_all(work: Path, files: list[Path], crbio: int, batch_size: int, processes: int,
             commit_every: int) -> dict[str, list[str]]:
    """Intake everything as one group, drain, and return the store as comparable lines."""
    from pipelines.dossier_admin import DossierInput, create_dossiers
    from pipelines.intake import Received, intake
    from pipelines.process import Context, drain
    from pipelines.settings import load_settings
    from samples.generate import write_patients_csv
    from samples.generate_cda import big_patient, cr_bio

    settings = load_settings(env={"DMP_HOME": str(work), "DMP_AUTO_CREATE": "1",
                                  "DMP_MAPPINGS_DIR": str(REPO / "samples/mappings")})
    ctx = Context.from_settings(dataclasses.replace(
        settings, batch_size=batch_size, prepare_processes=processes,
        commit_every=commit_every))
    write_patients_csv(work / "crbio.csv", [big_patient(s) for s in range(1, crbio + 1)])
    for table in (REPO / "samples/patients.csv", work / "crbio.csv"):
        with open(table, encoding="utf-8") as fh:
            create_dossiers(ctx.engine, [DossierInput.from_mapping(r)
                                         for r in csv.DictReader(fh)])
    items = [Received(p.read_bytes(), "samples", "file", file_name=p.name) for p in files]
    items += [Received(cr_bio(100, s), "bench", "file", file_name=f"crbio{s}.xml")
              for s in range(1, crbio + 1)]
    intake(ctx.engine, ctx.archive, items)
    drain(ctx)
    try:
        return snapshot(ctx.engine)
    finally:
        ctx.engine.dispose()


def snapshot(engine) -> dict[str, list[str]]:  # noqa: ANN001
    """Ledger outcomes by import id, entries and provenance links without their row ids
    (an entry's parent by its key), the dossiers (ids included: created in the same order),
    their identifiers and the logical messages claimed, as sorted JSON lines."""
    from dossiers.schema import (
        entries,
        imports,
        logical_messages,
        patient_identifiers,
        patients,
        provenance,
    )

    skip = {"id", "created_at", "patient_id", "supersedes", "superseded_by", "parent_id"}
    with engine.connect() as c:
        ledger = [json.dumps({"id": r.id, "file": r.file_name, "status": r.status,
                              "code": r.error_code, "where": r.error_location,
                              "entries": r.entries_count, "duplicates": r.duplicates_count,
                              "warnings": r.warnings}, ensure_ascii=False, default=str)
                  for r in c.execute(select(imports).order_by(imports.c.id))]
        rows = c.execute(select(entries)).all()
        key_of = {r.id: r.key for r in rows}
        stored = sorted(json.dumps({**{k: v for k, v in r._mapping.items() if k not in skip},
                                    "parent": key_of.get(r.parent_id)},
                                   sort_keys=True, ensure_ascii=False, default=str)
                        for r in rows)
        links = sorted(json.dumps([r.import_id, r.relation, str(r.source_ref),
                                   key_of.get(r.entry_id)], ensure_ascii=False)
                       for r in c.execute(select(provenance)))
        people = sorted(json.dumps({k: v for k, v in r._mapping.items()
                                    if k not in ("created_at", "updated_at")},
                                   sort_keys=True, ensure_ascii=False, default=str)
                        for r in c.execute(select(patients)))
        known = sorted(json.dumps([r.patient_id, r.authority, r.value, r.type_code])
                       for r in c.execute(select(patient_identifiers)))
        claimed = sorted(json.dumps([r.logical_id, r.import_id, r.fingerprint])
                         for r in c.execute(select(logical_messages)))
    return {"ledger": ledger, "entries": stored, "provenance": links, "patients": people,
            "identifiers": known, "logical": claimed}


def differences(one: dict[str, list[str]], batched: dict[str, list[str]]) -> list[str]:
    """What the batched store has that the one-by-one store has not (+), and the reverse
    (-), per table."""
    out = []
    for table in one:
        a, b = set(one[table]), set(batched[table])
        out += [f"{table} - {line}" for line in sorted(a - b)]
        out += [f"{table} + {line}" for line in sorted(b - a)]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="*", type=Path)
    parser.add_argument("--crbio", type=int, default=0, help="generated CR-BIO documents")
    parser.add_argument("--processes", type=int, default=2, help="preparing processes")
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--commit-every", type=int, default=100)
    args = parser.parse_args(argv)
    files = [p for path in args.paths for p in ([path] if path.is_file() else sorted(
        q for q in path.rglob("*") if q.is_file() and q.suffix.lower() not in SKIPPED))] \
        if args.paths else default_inputs()
    with tempfile.TemporaryDirectory(prefix="diff-batching-") as tmp:
        one = file_all(Path(tmp) / "one", files, args.crbio, 1, 0, args.commit_every)
        batched = file_all(Path(tmp) / "batched", files, args.crbio, args.batch_size,
                           args.processes, args.commit_every)
    found = differences(one, batched)
    for line in found:
        print(line)
    print(f"{len(files)} files + {args.crbio} CR-BIO; {len(one['ledger'])} ledger rows, "
          f"{len(one['entries'])} entries; differences: {len(found)}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
