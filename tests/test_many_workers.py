"""Four worker processes draining one PostgreSQL ledger: every message filed exactly once,
and a worker killed mid-batch (SIGKILL) has its batch finished by another once its lease has
expired. (Two workers were run too, 8 s of the suite's time: four on two cores contend for the
same rows more, and every claim or filing conflict two can meet, four meet.)

500 messages in batches of 50 here (the suite must stay fast on 2 cores: 1,000 in batches of
100 were as many batches for each worker to contend for, twice the filing); bench/
bench_workers.py drains 20,000 the same way (bench/README.md).

Two workers filing the same patient's same entry key at the same moment collide on
uq_entry_version; the loser's message is filed again, seeing the winner's row
(pipelines/process.py, _file_in_savepoint): no message may end INTERNAL_ERROR.
"""

from __future__ import annotations

import os
import signal
import time
from datetime import timedelta

import pytest
from sqlalchemy import select, text

from bench.drain_workers import (
    WorkerPool,
    check_ledger,
    copy_database,
    held_by,
    prepare_ledger,
    wait_drained,
)
from dossiers.db import make_engine
from dossiers.schema import import_attempts, imports
from pipelines.ledger import PROCESSING, RECEIVED
from pipelines.settings import load_settings

MESSAGES = int(os.environ.get("DMP_TEST_WORKER_MESSAGES", "500"))
BATCH = 50  # ten batches among four workers
# seconds: longer than a batch takes here (a worker filing extends its lease at half time),
# short enough to wait for (8 s with batches of 100)
LEASE = 4


def _settings(url: str, tmp: str):  # noqa: ANN202
    return load_settings(env={"DMP_HOME": f"{tmp}/home", "DMP_DATABASE_URL": url,
                              "DMP_ARCHIVE_URL": f"{tmp}/archive", "DMP_BATCH_SIZE": str(BATCH),
                              "DMP_COMMIT_EVERY": str(BATCH // 2), "DMP_LEASE_SECONDS": str(LEASE),
                              "DMP_WORKER_ID": "test"})


@pytest.fixture(scope="module")
def ledger(postgres_server, tmp_path_factory):  # noqa: ANN001, ANN201
    """A PostgreSQL store holding MESSAGES received rows (copied for each test)."""
    work = tmp_path_factory.mktemp("workers")
    url = postgres_server.new_database()
    count = prepare_ledger(_settings(url, str(work)), work, MESSAGES)
    return url, str(work), count


def _no_filing_race(check) -> None:  # noqa: ANN001
    assert check.internal_errors == 0, "a concurrent filing conflict was not filed again"


def _terminal(totals: list[dict[str, int]]) -> int:
    """Messages the workers finished: a message sent back to the queue (a filing conflict
    with another worker, status 'received') is counted again when it is taken again."""
    return sum(n for t in totals for status, n in t.items() if status != RECEIVED)


def _run(ledger, n: int, name: str):  # noqa: ANN001, ANN202
    template, work, count = ledger
    url = copy_database(template, name)
    settings = _settings(url, work)
    return settings, make_engine(url), WorkerPool(settings, n), count


def _start_together(engine, pool: WorkerPool, timeout: float = 120) -> None:  # noqa: ANN001
    """Start the pool's workers with the ledger table locked, and unlock it once every
    worker waits on it: they then claim their first batches at the same moment. Started
    freely, a worker that was slow to start (seconds of imports on a loaded machine) found
    the ledger drained by the others, and 'every worker took part' failed."""
    waiting = text("SELECT count(DISTINCT pid) FROM pg_locks WHERE NOT granted"
                   " AND relation = 'imports'::regclass")
    with engine.connect() as lock, engine.connect() as watch:
        lock.execute(text("LOCK TABLE imports IN ACCESS EXCLUSIVE MODE"))
        pool.start()
        deadline = time.monotonic() + timeout
        while watch.execute(waiting).scalar_one() < pool.n:
            assert time.monotonic() < deadline, "the workers never reached the ledger"
            assert all(p.is_alive() for p in pool.processes), "a worker ended at its start"
            watch.rollback()
            time.sleep(0.02)
        lock.commit()


def _freeze_holding(engine, victim, worker: str, timeout: float = 120) -> dict:  # noqa: ANN001
    """SIGSTOP ``victim`` at a moment it holds rows (claimed, not recorded) and return them
    by id, with their lease's end and claim time: frozen, it can neither record them nor
    extend its lease. Polled then stopped, it could have recorded its batch in between: it
    is then let go and caught again."""
    deadline = time.monotonic() + timeout
    while True:
        if held_by(engine, worker):
            os.kill(victim.pid, signal.SIGSTOP)
            with engine.connect() as conn:
                held = {r.id: r for r in conn.execute(select(
                    imports.c.id, imports.c.claimed_until, imports.c.updated_at).where(
                    imports.c.status == PROCESSING, imports.c.claimed_by == worker))}
            if held:
                return held
            os.kill(victim.pid, signal.SIGCONT)
        assert time.monotonic() < deadline, f"{worker} never held a batch"
        time.sleep(0.02)


@pytest.mark.parametrize("n", [4])
def test_workers_file_every_message_exactly_once(ledger, n) -> None:  # noqa: ANN001
    settings, engine, pool, count = _run(ledger, n, f"drain{n}_{os.getpid()}")
    try:
        _start_together(engine, pool)
        wait_drained(engine, timeout=300)
        totals = pool.stop()
        check = check_ledger(engine)
        assert check.exactly_once, check
        assert _terminal(totals) == count
        assert sum(1 for t in totals if t) == n  # every worker took part
        _no_filing_race(check)
    finally:
        engine.dispose()


def test_a_killed_workers_batch_is_finished_by_another(ledger) -> None:  # noqa: ANN001
    settings, engine, pool, count = _run(ledger, 4, f"kill_{os.getpid()}")
    victim = pool.processes[0]
    try:
        _start_together(engine, pool)
        leases = _freeze_holding(engine, victim, "w1")  # what it holds cannot change now
        held = list(leases)
        os.kill(victim.pid, signal.SIGKILL)
        victim.join(60)
        wait_drained(engine, timeout=300)
        totals = pool.stop()
        check = check_ledger(engine)
        assert check.exactly_once, check
        # the three survivors did everything w1 had not recorded, its held rows included
        assert len(held) <= _terminal(totals) <= count
        with engine.connect() as conn:
            rows = conn.execute(select(imports.c.status, imports.c.claimed_by)
                                .where(imports.c.id.in_(held))).all()
            finished = conn.execute(select(import_attempts.c.import_id,
                                           import_attempts.c.finished_at)
                                    .where(import_attempts.c.import_id.in_(held))).all()
        assert all(r.claimed_by is None and r.status != "processing" for r in rows)
        assert len(finished) == len(held)  # one outcome each, recorded by a survivor
        # taken again only once w1's lease had run out (the lease it held when frozen; the
        # time of the kill is no bound: on a loaded machine it can come seconds after the
        # claim, the lease's end before it)
        assert all(f.finished_at > leases[f.import_id].claimed_until for f in finished)
        # and that lease was the configured one (or more: extended while filing)
        assert all(r.claimed_until - r.updated_at >= timedelta(seconds=LEASE)
                   for r in leases.values())
        _no_filing_race(check)
    finally:
        if victim.exitcode is None:
            victim.kill()
        engine.dispose()
