"""`dmp-ingest serve` as a real process: SIGKILL mid-stream loses nothing acknowledged and
duplicates nothing; SIGTERM stops cleanly with exit status 0. (Killed at a named point of
the listener's intake or of its worker: tests/test_crash_points.py.)"""

from __future__ import annotations

import atexit
import functools
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bench.soak_mllp import children
from dossiers.db import make_engine
from dossiers.schema import entries, imports
from parsers.process_lifetime import process_alive
from pipelines.archive import sha256_hex
from tests.conftest import ROOT, migrated_sqlite
from tests.mllp_support import WAIT, Client, msa

# The command as this checkout's code: the `dmp-ingest` console script imports `cli` through
# the editable install, which may be another checkout (the shared venv's), not the code under test.
DMP = [sys.executable, "-m", "cli"]


@functools.cache
def _generate(n: int, seed: int) -> tuple[list[bytes], list]:
    """``n`` messages of the generated traffic of ``seed`` and their patients, made once per
    (n, seed) for the session (the callers only read them): 12 listener crash points share
    200 of seed 7, both stores the 800 of seed 3."""
    from samples.generate import Traffic

    traffic = Traffic(seed, patients=60, corrections=0, duplicates=0)
    stream = iter(traffic)
    messages = [next(stream) for _ in range(n)]
    return messages, traffic.used_patients()


# The SQLite stores made with their dossiers, by patient list: most tests here start from the
# same generated traffic, so the dossiers are created once per list and the other homes get a
# copy of its store (creating them costs seconds; the copy, milliseconds).
_dossier_stores: dict[str, Path] = {}


def _copy_store(src: Path, dst: Path) -> None:
    """A SQLite store no process has open (and its WAL, if any is left)."""
    for suffix in ("", "-wal"):
        if Path(f"{src}{suffix}").exists():
            shutil.copyfile(f"{src}{suffix}", f"{dst}{suffix}")


def _home(tmp_path: Path, database_url: str, patients: list) -> dict[str, str]:
    from samples.generate import write_mappings, write_patients_csv

    home = tmp_path / "home"
    home.mkdir()
    (home / "dmp.toml").write_text(
        'worker_id = "crash-test"\n[sources.labs]\nsending_application = "*"\n')
    write_patients_csv(tmp_path / "patients.csv", patients)
    write_mappings(tmp_path / "mappings")
    env = {**os.environ, "DMP_HOME": str(home), "DMP_DATABASE_URL": database_url,
           "DMP_ARCHIVE_URL": str(tmp_path / "archive"), "DMP_MLLP_PORT": "0",
           "DMP_MAPPINGS_DIR": str(tmp_path / "mappings"), "DMP_LOG_LEVEL": "WARNING"}
    store = Path(database_url.removeprefix("sqlite:///")) \
        if database_url.startswith("sqlite:///") else None
    key = repr(patients)
    if store is not None and key in _dossier_stores:
        _copy_store(_dossier_stores[key], store)
        Path(env["DMP_ARCHIVE_URL"]).mkdir(parents=True, exist_ok=True)  # as the command does
        return env
    _create_dossiers(env, tmp_path / "patients.csv")
    if store is not None:
        kept = Path(tempfile.mkdtemp(prefix="dmp-dossiers-")) / "store.sqlite3"
        atexit.register(shutil.rmtree, kept.parent, True)
        _copy_store(store, kept)
        _dossier_stores[key] = kept
    return env


def _create_dossiers(env: dict[str, str], patients_csv: Path) -> None:
    """What ``dmp-ingest dossier create --from-csv`` does (cli.py, cmd_dossier_create), in this
    process: the command's start (Python, the pipelines' imports) cost seconds of each home
    that is not a copy; the service these tests run is still the real process."""
    from pipelines.audit import Actor
    from pipelines.dossier_admin import create_dossiers, read_dossiers_csv
    from pipelines.process import Context
    from pipelines.settings import load_settings

    ctx = Context.from_settings(load_settings(env=env))
    try:
        create_dossiers(ctx.engine, read_dossiers_csv(patients_csv), skip_existing=True,
                        actor=Actor.current(None))
    finally:
        ctx.engine.dispose()


def _start(env: dict[str, str], log: Path, *args: str,
           new_session: bool = False) -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen([*DMP, "serve", "--no-http", *args],
                            env={**env, "PYTHONPATH": str(ROOT)}, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=log.open("ab"), text=True,
                            start_new_session=new_session)
    line = proc.stdout.readline()
    assert "MLLP on" in line, f"serve did not start: {line!r} {log.read_text()[-2000:]}"
    return proc, int(line.rsplit(":", 1)[1])


def _stream(port: int, messages: list[bytes], acked: set[str], stop_after: int | None = None,
            senders: int = 4) -> None:
    """Send over ``senders`` connections; record the sha256 of every message answered AA/CA.
    Stops quietly when the server goes away (its connection closed or reset). An ACK that
    does not come within the bound is not the server going away: it fails the test (it
    stopped that sender quietly, and the test failed later for a message never resent)."""
    lock = threading.Lock()
    late: list[str] = []

    def run(part: list[bytes]) -> None:
        try:
            with Client(port) as client:
                for m in part:
                    ack = client.send(m, timeout=WAIT)
                    if ack is None:
                        return
                    code = msa(ack, "latin-1")[1]
                    assert code in ("AA", "CA"), code
                    with lock:
                        acked.add(sha256_hex(m))
        except TimeoutError:
            late.append(f"no ACK within {WAIT:.0f} s")
        except OSError:
            return

    threads = [threading.Thread(target=run, args=(messages[i::senders],))
               for i in range(senders)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not late, late


def resend_after_restart(env: dict[str, str], log: Path, messages: list[bytes],
                         first_life: set[str], acked: set[str], url: str, *args: str) -> None:
    """Restart the service (``args``: its options); the sender resends whatever it has no ACK
    for; every message must then be acknowledged and processed, and SIGTERM exit 0."""
    proc, port = _start(env, log, *args)
    try:
        _stream(port, [m for m in messages if sha256_hex(m) not in first_life], acked)
        assert len(acked) == len(messages)
        _wait_processed(url, len(messages))
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0


def _wait_processed(url: str, expected_rows: int, timeout: float = 120) -> None:
    engine = make_engine(url)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                pending = conn.execute(select(func.count()).select_from(imports).where(
                    imports.c.status.in_(("received", "processing")))).scalar_one()
                rows = conn.execute(select(func.count()).select_from(imports)).scalar_one()
            if pending == 0 and rows >= expected_rows:
                return
            time.sleep(0.05)
        raise AssertionError(f"{pending} row(s) pending, {rows} row(s) after {timeout}s")
    finally:
        engine.dispose()


# 800 messages, killed after 200 to 600 acknowledged (321 for seed 3): hundreds acknowledged
# before the kill, hundreds sent again after it, on four connections; 2,000 killed after 300
# to 1,500 checked nothing more, for 2.5 times the sending and the filing.
SIGKILL_MESSAGES = 800
SIGKILL_AFTER = (200, 600)


@pytest.mark.parametrize("seed", [3])
def test_sigkill_mid_stream_loses_nothing_acknowledged(tmp_path, database_url, seed) -> None:  # noqa: ANN001
    messages, patients = _generate(SIGKILL_MESSAGES, seed)
    assert len({sha256_hex(m) for m in messages}) == len(messages)
    env = _home(tmp_path, database_url, patients)
    log = tmp_path / "serve.log"
    kill_at = random.Random(seed).randint(*SIGKILL_AFTER)

    proc, port = _start(env, log)
    acked: set[str] = set()
    sender = threading.Thread(target=_stream, args=(port, messages, acked))
    sender.start()
    while len(acked) < kill_at and sender.is_alive():
        time.sleep(0.005)
    workers = children(proc.pid)  # the service's worker processes
    assert workers, "serve should run its ledger worker in a process of its own"
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    deadline = time.monotonic() + WAIT  # the workers die with the service (no orphan filing)
    while any(process_alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(process_alive(w) for w in workers)
    sender.join(60)
    first_life = set(acked)
    assert kill_at <= len(first_life) < len(messages), "the kill came too late to mean much"

    # Every message acknowledged before the kill is in the ledger and the archive.
    engine = make_engine(database_url)
    with engine.connect() as conn:
        stored = set(conn.execute(select(imports.c.sha256)).scalars())
    assert first_life <= stored

    resend_after_restart(env, log, messages, first_life, acked, database_url)
    with engine.connect() as conn:
        rows = conn.execute(select(imports.c.sha256, imports.c.status, imports.c.logical_id,
                                   imports.c.error_code)).all()
        keys = conn.execute(select(entries.c.patient_id, entries.c.key)
                            .where(entries.c.current)).all()
    engine.dispose()
    deposited = [r for r in rows if r.status == "deposited"]
    # each message deposited exactly once; the resent ones that had been stored before the
    # kill are byte-identical repeats
    assert len(deposited) == len(messages), {r.status for r in rows}
    assert {r.sha256 for r in deposited} == {sha256_hex(m) for m in messages}
    assert {r.status for r in rows} <= {"deposited", "duplicate"}
    assert len(keys) == len(set(keys)), "an entry was filed twice"
    assert "Traceback" not in log.read_text()


def test_sigterm_stops_cleanly_with_status_0(tmp_path, sqlite_template) -> None:  # noqa: ANN001
    messages, patients = _generate(200, 5)
    url = migrated_sqlite(sqlite_template, tmp_path / "store.sqlite3")
    env = _home(tmp_path, url, patients)
    proc, port = _start(env, tmp_path / "serve.log")
    acked: set[str] = set()
    sender = threading.Thread(target=_stream, args=(port, messages, acked, None, 2))
    sender.start()
    while len(acked) < 50 and sender.is_alive():
        time.sleep(0.005)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    sender.join(60)
    assert proc.returncode == 0
    assert "stopped;" in out
    engine = make_engine(url)
    with engine.connect() as conn:
        stored = set(conn.execute(select(imports.c.sha256)).scalars())
    engine.dispose()
    assert acked <= stored



@pytest.mark.parametrize(("sig", "group"), [(signal.SIGHUP, False), (signal.SIGHUP, True),
                                            (signal.SIGTERM, True)],
                         ids=["sighup", "sighup-group", "sigterm-group"])
def test_sighup_and_group_signals_stop_cleanly(tmp_path, sig, group,  # noqa: ANN001
                                              sqlite_template) -> None:  # noqa: ANN001
    """SIGHUP (the terminal or ssh session that started the service closing, an operator's
    or a log rotation's ``kill -HUP``) killed the service outright: the frames in hand
    unanswered, its worker processes left to die with it, exit status -1. It now stops as
    SIGTERM does: what was received is answered, nothing acknowledged is lost, status 0.
    A closing session signals the whole process group, as systemd's default stop
    (KillMode=control-group) sends SIGTERM to every process of the service: its worker and
    preparing processes are stopped by the service, and must not die first."""
    messages, patients = _generate(120, 7)
    url = migrated_sqlite(sqlite_template, tmp_path / "store.sqlite3")
    env = _home(tmp_path, url, patients)
    log = tmp_path / "serve.log"
    proc, port = _start(env, log, new_session=True)
    acked: set[str] = set()
    sender = threading.Thread(target=_stream, args=(port, messages, acked, None, 2))
    sender.start()
    while len(acked) < 30 and sender.is_alive():
        time.sleep(0.005)
    engine = make_engine(url)
    with engine.connect() as conn:  # the worker process is running (it files)
        while not conn.execute(select(func.count()).select_from(imports).where(
                imports.c.status == "deposited")).scalar_one():
            time.sleep(0.05)
            conn.rollback()
    workers = children(proc.pid)
    if group:
        os.killpg(proc.pid, sig)
    else:
        proc.send_signal(sig)
    try:
        out, _ = proc.communicate(timeout=60)
    finally:
        proc.kill()
    sender.join(60)
    assert proc.returncode == 0
    assert "stopped;" in out
    assert "died" not in log.read_text()
    deadline = time.monotonic() + WAIT
    while [p for p in workers if process_alive(p)] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [p for p in workers if process_alive(p)]
    with engine.connect() as conn:
        stored = set(conn.execute(select(imports.c.sha256)).scalars())
    engine.dispose()
    assert acked <= stored
