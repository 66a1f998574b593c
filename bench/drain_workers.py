"""Several worker processes draining one ledger: shared by tests/test_many_workers.py and
bench/bench_workers.py.

The workers are the service's own (``pipelines.worker.run_worker_process``, multiprocessing
'spawn', as `serve` starts them), so what is measured and tested is what runs in production.
A ledger is prepared once (dossiers created, messages taken in) and copied for each run: on
PostgreSQL with ``CREATE DATABASE ... TEMPLATE``, on SQLite as a file copy.
"""

from __future__ import annotations

import csv
import multiprocessing
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine, func, select, text

from dossiers.schema import import_attempts, imports, provenance
from pipelines.ledger import PROCESSING, RECEIVED, TERMINAL


def prepare_ledger(settings, work: Path, messages: int, seed: int = 7) -> int:  # noqa: ANN001
    """Generate ``messages`` lab results (samples/generate.py), create their patients'
    dossiers and take them in (archived, recorded 'received'). Returns the rows to process."""
    from parsers.hl7v2 import split_batch
    from pipelines.dossier_admin import DossierInput, create_dossiers
    from pipelines.intake import Received, intake
    from pipelines.process import Context
    from samples.generate import write_bulk

    _, hl7_dir = write_bulk(work / "data", messages, seed, batch=True)
    data = next(hl7_dir.iterdir()).read_bytes()
    ctx = Context.from_settings(settings)
    try:
        with open(work / "data" / "patients.csv", encoding="utf-8") as fh:
            create_dossiers(ctx.engine, [DossierInput.from_mapping(r)
                                         for r in csv.DictReader(fh)])
        parts = split_batch(data).messages
        for i in range(0, len(parts), 1000):
            intake(ctx.engine, ctx.archive,
                   [Received(m, "benchlab", "mllp") for m in parts[i:i + 1000]])
        with ctx.engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(imports).where(
                imports.c.status == RECEIVED)).scalar_one()
    finally:
        ctx.engine.dispose()


def copy_database(template_url: str, name: str) -> str:
    """A fresh copy of a prepared store (nobody may be connected to the template)."""
    if template_url.startswith("sqlite"):
        source = Path(template_url.split("///", 1)[1])
        target = source.with_name(f"{name}.sqlite3")
        shutil.copyfile(source, target)
        return f"sqlite:///{target}"
    import psycopg

    base, template = template_url.rsplit("/", 1)
    admin = base.replace("postgresql+psycopg://", "postgresql://") + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    return f"{base}/{name}"


@dataclass
class WorkerPool:
    """``n`` worker processes named w1..wn, started on ``settings``' store."""

    settings: object
    n: int
    processes: list = field(default_factory=list)

    def __post_init__(self) -> None:
        from pipelines.worker import run_worker_process

        mp = multiprocessing.get_context("spawn")
        self.stop_event = mp.Event()
        self.wake_event = mp.Event()
        self.results = mp.Queue()
        self.processes = [mp.Process(target=run_worker_process, name=f"w{i}",
                                     args=(self.settings, f"w{i}", self.stop_event,
                                           self.wake_event, self.results), daemon=False)
                          for i in range(1, self.n + 1)]

    def start(self) -> None:
        for p in self.processes:
            p.start()

    def stop(self, timeout: float = 60) -> list[dict]:
        """Let every live worker finish its batch and return its totals."""
        self.stop_event.set()
        self.wake_event.set()
        alive = [p for p in self.processes if p.exitcode is None]
        totals = [self.results.get(timeout=timeout) for _ in alive]
        for p in self.processes:
            p.join(timeout)
        return totals


def wait_drained(engine: Engine, timeout: float, poll: float = 0.2) -> float:
    """Wait until no row is received or processing; returns the time it took."""
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        with engine.connect() as conn:
            left = conn.execute(select(func.count()).select_from(imports).where(
                imports.c.status.in_((RECEIVED, PROCESSING)))).scalar_one()
        if not left:
            return time.perf_counter() - start
        time.sleep(poll)
    raise TimeoutError(f"{left} ledger rows still pending after {timeout:.0f} s")


def held_by(engine: Engine, worker: str) -> list[int]:
    """The rows ``worker`` holds (claimed, not yet recorded)."""
    with engine.connect() as conn:
        return list(conn.execute(select(imports.c.id).where(
            imports.c.status == PROCESSING, imports.c.claimed_by == worker)).scalars())


@dataclass
class LedgerCheck:
    """What 'every message deposited exactly once' means on the store."""

    rows: int
    by_status: dict[str, int]
    not_terminal: int
    rows_with_several_outcomes: int  # imports with more than one recorded attempt
    entries: int
    entries_without_one_creation: int  # entries with zero or several 'created' links
    entries_counted: int  # sum of the ledger's entries_count
    # Rows failed INTERNAL_ERROR: none expected (two workers filing the same entry at once
    # collide on uq_entry_version: the loser files again or goes back to the queue).
    internal_errors: int

    @property
    def exactly_once(self) -> bool:
        """Nothing left, nothing twice: one outcome per row, one creation per entry."""
        return (self.not_terminal == 0 and self.rows_with_several_outcomes == 0
                and self.entries_without_one_creation == 0
                and self.entries == self.entries_counted)


def check_ledger(engine: Engine) -> LedgerCheck:
    with engine.connect() as conn:
        by_status = dict(conn.execute(select(imports.c.status, func.count())
                                      .group_by(imports.c.status)).all())
        several = conn.execute(select(func.count()).select_from(
            select(import_attempts.c.import_id)
            .where(import_attempts.c.status != "retry")  # put back to the queue: no outcome
            .group_by(import_attempts.c.import_id)
            .having(func.count() > 1).subquery())).scalar_one()
        entries = conn.execute(text("SELECT count(*) FROM entries")).scalar_one()
        created = (select(provenance.c.entry_id, func.count().label("n"))
                   .where(provenance.c.relation == "created")
                   .group_by(provenance.c.entry_id).subquery())
        ones = conn.execute(select(func.count()).select_from(created)
                            .where(created.c.n == 1)).scalar_one()
        counted = conn.execute(select(func.coalesce(func.sum(imports.c.entries_count), 0))
                               ).scalar_one()
        internal = conn.execute(select(func.count()).select_from(imports).where(
            imports.c.error_code == "INTERNAL_ERROR")).scalar_one()
    return LedgerCheck(
        rows=sum(by_status.values()), by_status=by_status,
        not_terminal=sum(n for s, n in by_status.items() if s not in TERMINAL),
        rows_with_several_outcomes=several, entries=entries,
        entries_without_one_creation=entries - ones, entries_counted=int(counted),
        internal_errors=internal)
