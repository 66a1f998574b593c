"""Turns at SQLite's write lock (dossiers/write_turn.py) and the filing that yields to them.

Real SQLite files, real flock locks, real threads and a real second process; what is checked
is who gets the lock and when (in counts of transactions), never how fast.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from sqlalchemy import event, text

from dossiers.db import make_engine, write_turn_wanted
from dossiers.write_turn import WriteTurn
from pipelines.dossier_admin import DossierInput, create_dossiers
from pipelines.intake import Received, intake
from pipelines.process import Context, drain
from pipelines.settings import load_settings
from tests.conftest import ROOT, migrated_sqlite


def _engine(path: Path):  # noqa: ANN202
    engine = make_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS t (n INTEGER)"))
    return engine


def test_a_waiting_writer_is_seen_and_served_next(tmp_path: Path) -> None:
    db = tmp_path / "store.sqlite3"
    holder, waiter = _engine(db), _engine(db)
    got_it = threading.Event()
    with holder.connect() as conn:
        tx = conn.begin()
        conn.execute(text("INSERT INTO t VALUES (1)"))
        assert not write_turn_wanted(conn)

        def wait() -> None:
            with waiter.begin() as other:
                other.execute(text("INSERT INTO t VALUES (2)"))
            got_it.set()

        thread = threading.Thread(target=wait)
        thread.start()
        while not write_turn_wanted(conn):  # it queues (holds the queue lock) ...
            assert thread.is_alive()
        assert not got_it.wait(0.2)  # ... and gets nothing while this transaction lasts
        tx.commit()
        thread.join(30)
    assert got_it.is_set()
    with holder.connect() as conn:
        assert conn.execute(text("SELECT n FROM t ORDER BY rowid")).scalars().all() == [1, 2]


def test_a_writer_that_begins_again_at_once_does_not_starve_another(tmp_path: Path) -> None:
    """SQLite's own queue let a process that commits and begins again take the lock back
    before a sleeping waiter woke: here the waiter gets it after at most one more of them."""
    db = tmp_path / "store.sqlite3"
    busy, other = _engine(db), _engine(db)
    stop = threading.Event()
    commits = []

    def loop() -> None:
        with busy.connect() as conn:
            while not stop.is_set():
                with conn.begin():
                    conn.execute(text("INSERT INTO t VALUES (1)"))
                    stop.wait(0.01)  # a transaction of 10 ms, then at once the next one
                commits.append(1)

    thread = threading.Thread(target=loop)
    thread.start()
    try:
        while not commits:
            pass
        for _ in range(10):
            before = len(commits)
            with other.begin() as conn:
                conn.execute(text("INSERT INTO t VALUES (2)"))
                during = len(commits) - before
            assert during <= 1, f"{during} transactions of the other writer went first"
    finally:
        stop.set()
        thread.join(30)


def test_a_turn_not_given_in_time_falls_back_and_a_killed_holder_frees_it(
        tmp_path: Path) -> None:
    db = str(tmp_path / "store.sqlite3")
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom dossiers.write_turn import WriteTurn\n"
         "t = WriteTurn(sys.argv[1]); assert t.take(); print('held', flush=True)\n"
         "time.sleep(600)", db],
        cwd=ROOT, stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert holder.stdout.readline().strip() == "held"
        turn = WriteTurn(db)
        assert not turn.take(timeout=0.05)  # the caller then waits SQLite's way
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(30)
        assert turn.take(timeout=5)  # the kernel released the dead holder's lock
        turn.give_back()
        turn.close()
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()


def test_filing_ends_its_transaction_early_only_for_a_waiting_writer(
        tmp_path: Path, monkeypatch, sqlite_template: Path) -> None:  # noqa: ANN001
    """One batch of 60 messages, commit_every 100: one transaction when nobody waits; one
    per piece of ``YIELD_EVERY`` when another connection waits all along (the check is
    stubbed to say so: the real check is the first test's), in `serve`, where the listener
    may wait at any time. Elsewhere (`ingest`) pieces are of ``commit_every`` until a
    waiter is seen, and of ``YIELD_EVERY`` for a while after."""
    import pipelines.process as process
    from samples.generate import Traffic

    traffic = Traffic(5, patients=12)
    stream = iter(traffic)
    messages = [next(stream) for _ in range(60)]

    def run(name: str, trigger: str, lately: bool = False) -> tuple[int, int]:
        migrated_sqlite(sqlite_template, tmp_path / name / "dmp.sqlite3")  # the home's store
        settings = load_settings(env={"DMP_HOME": str(tmp_path / name)})
        settings = dataclasses.replace(settings, batch_size=500, commit_every=100,
                                       prepare_processes=0)
        ctx = Context.from_settings(settings, trigger=trigger)
        create_dossiers(ctx.engine, [DossierInput(ins=p.nir, family=p.family, given=p.given,
                                                  birth_date=p.birth_date.isoformat(),
                                                  sex=p.sex)
                                     for p in traffic.used_patients()])
        intake(ctx.engine, ctx.archive, [Received(m, "labs", "file") for m in messages])
        commits = []
        event.listen(ctx.engine, "commit", lambda conn: commits.append(1))
        if lately:  # a waiter seen just now: set here, as the set-up above took seconds
            ctx.waited_at = time.monotonic()  # under load, more than WAITED_RECENTLY
        filed = sum(drain(ctx).values())  # identical bytes twice are one row (level 1)
        ctx.engine.dispose()
        return filed, len(commits)

    filed, alone = run("alone", "serve")
    assert (filed, alone) == run("alone-ingest", "ingest")
    monkeypatch.setattr(process, "write_turn_wanted", lambda conn: True)
    again, waited_for = run("waited", "serve")
    assert filed == again > 2 * process.YIELD_EVERY
    pieces = -(-filed // process.YIELD_EVERY)
    assert waited_for - alone == pieces - 1
    # ingest: the waiter is seen after the first piece, the whole batch here
    assert run("waited-ingest", "ingest") == (filed, alone)
    # ... and after a waiter was seen lately, small pieces again
    assert run("waited-lately", "ingest", lately=True) == (filed, waited_for)


def test_processing_checkpoints_its_log_after_giving_its_turn_back(tmp_path: Path,
                                                                   monkeypatch) -> None:  # noqa: ANN001
    """SQLite checkpoints inside COMMIT, so the write turn was held through the copy and sync
    of 40 MB of log while the listener waited to acknowledge. Processing's connection now
    checkpoints once the turn is given back, past FILING_CHECKPOINT_PAGES frames (read from
    the wal-index), and SQLite's own checkpoint is only the safety net."""
    import dossiers.db as store
    from dossiers.db import replayable_commits, wal_frames_pending

    db = tmp_path / "store.sqlite3"
    engine = _engine(db)
    monkeypatch.setattr(store, "FILING_CHECKPOINT_PAGES", 50)
    seen: list[tuple[bool, int | None]] = []
    real = store._checkpoint_if_due

    def spy(connection) -> None:  # noqa: ANN001
        seen.append((connection.info["write_turn"].held, wal_frames_pending(str(db))))
        real(connection)

    monkeypatch.setattr(store, "_checkpoint_if_due", spy)
    with engine.connect() as conn, replayable_commits(conn):
        for _ in range(3):
            with conn.begin():
                conn.execute(text("INSERT INTO t SELECT randomblob(3000) FROM "
                                  "(WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 "
                                  "FROM c WHERE x < 80) SELECT x FROM c)"))
            assert wal_frames_pending(str(db)) < 50  # copied into the database at once
    assert len(seen) == 3
    assert all(not held for held, _ in seen)  # the turn was given back before
    assert all(pending >= 50 for _, pending in seen)  # SQLite had not checkpointed itself
    with engine.begin() as conn:  # other connections: SQLite's safety net only
        conn.execute(text("INSERT INTO t SELECT randomblob(3000) FROM t"))
    assert wal_frames_pending(str(db)) >= 50
