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

import pytest
from sqlalchemy import select

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
from pipelines.ledger import RECEIVED
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


@pytest.mark.parametrize("n", [4])
def test_workers_file_every_message_exactly_once(ledger, n) -> None:  # noqa: ANN001
    settings, engine, pool, count = _run(ledger, n, f"drain{n}_{os.getpid()}")
    try:
        pool.start()
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
        pool.start()
        deadline = time.monotonic() + 120
        while not (held := held_by(engine, "w1")):
            assert time.monotonic() < deadline, "w1 never claimed a batch"
            time.sleep(0.02)
        os.kill(victim.pid, signal.SIGSTOP)  # freeze it: what it holds cannot change
        held = held_by(engine, "w1")
        os.kill(victim.pid, signal.SIGKILL)
        killed_at = time.time()
        victim.join(10)
        assert held, "w1 had recorded its batch before the kill"
        wait_drained(engine, timeout=300)
        recovered_after = time.time() - killed_at
        totals = pool.stop()
        check = check_ledger(engine)
        assert check.exactly_once, check
        # the three survivors did everything w1 had not recorded, its held rows included
        assert len(held) <= _terminal(totals) <= count
        with engine.connect() as conn:
            rows = conn.execute(select(imports.c.status, imports.c.claimed_by)
                                .where(imports.c.id.in_(held))).all()
            finished = conn.execute(select(import_attempts.c.finished_at)
                                    .where(import_attempts.c.import_id.in_(held))).scalars()
            finished = list(finished)
        assert all(r.claimed_by is None and r.status != "processing" for r in rows)
        assert len(finished) == len(held)  # one outcome each, recorded by a survivor
        assert min(f.timestamp() for f in finished) >= killed_at + LEASE - 1
        assert recovered_after >= LEASE - 1
        _no_filing_race(check)
    finally:
        if victim.exitcode is None:
            victim.kill()
        engine.dispose()
