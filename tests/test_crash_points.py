"""SIGKILL at named points of the real code path (pipelines/faults.py), then recovery: the
store ends exactly as an uninterrupted run leaves it (nothing lost, nothing filed twice) and
`check` finds it consistent.

Four kinds of process are killed: a one-shot ingest (intake then drain), a worker draining
rows recorded before, a drop-folder poller and a rerun of every import (reopen, then
process); and `serve` over MLLP, its listener inside its intake of a group and its worker
process mid-batch. Recovery is what an operator or a restarted service does: the worker's
claims are released (a service restarting under its name), the one-shot ingest is run again
on the same files (what was recorded is a byte-identical repeat), the folder is polled again
(the dead poller's claim folder is adopted), and the ledger drained (rows a rerun reopened
are 'received': the drain processes them).

CI runs the fixed list below on SQLite (and a few points on PostgreSQL); `make soak` sets
DMP_CRASH_RANDOM=N to add N random (kind, point, n) draws on both stores.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import select

from connectors.folder import FolderPoller
from dossiers.db import make_engine
from dossiers.schema import entries, imports, provenance
from pipelines.archive import sha256_hex
from pipelines.check import check
from pipelines.intake import Received, intake
from pipelines.ledger import release_claims
from pipelines.process import Context, drain
from pipelines.settings import FolderSource, load_settings
from tests.conftest import ROOT, SAMPLES, migrated_sqlite
from tests.reliability_support import create_sample_dossiers, not_terminal

WORKER = "crash-child"
INPUTS = [*(SAMPLES / "hl7v2" / n for n in (
    "01_labm_nfs.hl7", "02_labm_lipides_glycemie.hl7", "03_synlab_iono_creatinine.hl7",
    "05_chu_hba1c.hl7", "08_labm_creatinine_prov.hl7", "09_synlab_nfs_crp_groupe.hl7",
    "12_labm_nfs_correction.hl7", "13_labm_lipides_glycemie_copie.hl7",
    "15_chu_batch.hl7", "19_casse_tronque.hl7")),
    *(SAMPLES / "cda" / n for n in ("01_crbio_labm_lipides_glycemie.xml",
                                      "02_crbio_synlab_bilan_renal_v1.xml",
                                      "03_crbio_synlab_bilan_renal_v2_rplc.xml",
                                      # its PDF is the attachment filing stores (deposit.*)
                                      "09_crbio_niveau1_pdf.xml"))]

INTAKE = ["archive.written", "intake.archived", "intake.uncommitted", "intake.committed"]
PROCESS = ["ledger.claimed", "process.prepared", "process.file_one", "process.filed",
           "process.recorded", "process.committed"]
# inside filing, around the calls into dossiers/deposit.py (the bulk path and one by one)
DEPOSIT = ["deposit.planned", "deposit.attached", "deposit.written"]
FOLDER = ["folder.claimed", "folder.recorded", "folder.moved"]
KINDS = {"ingest": INTAKE + PROCESS + DEPOSIT, "drain": PROCESS + DEPOSIT,
         "folder": [*FOLDER, *INTAKE, *PROCESS, *DEPOSIT],
         # the rows a rerun reopens here are failures and duplicates: nothing to deposit
         "rerun": ["rerun.reopened", *(p for p in PROCESS if p != "process.file_one")]}
# (kind, point, n): killed the n-th time the point is reached. Batches of 4 rows and
# transactions of 2 messages make the later points reached several times.
CI_POINTS = [
    *(("ingest", p, 1) for p in INTAKE + PROCESS + DEPOSIT),
    ("ingest", "ledger.claimed", 3), ("ingest", "process.committed", 2),
    ("ingest", "process.recorded", 4), ("ingest", "process.filed", 3),
    ("drain", "process.prepared", 2), ("drain", "process.filed", 3),
    ("drain", "process.committed", 5), ("drain", "process.file_one", 2),
    ("folder", "folder.claimed", 1), ("folder", "folder.claimed", 5),
    ("folder", "archive.written", 1), ("folder", "intake.uncommitted", 1),
    ("folder", "folder.recorded", 1), ("folder", "process.filed", 1),
    ("drain", "deposit.written", 3), ("drain", "deposit.attached", 1),
    ("folder", "folder.moved", 1), ("folder", "folder.moved", 6),
    ("folder", "deposit.planned", 2), ("rerun", "rerun.reopened", 1),
    ("rerun", "process.committed", 1),
]
PG_POINTS = [("ingest", "intake.uncommitted", 1), ("ingest", "process.recorded", 2),
             ("drain", "process.committed", 3), ("folder", "folder.recorded", 1),
             ("drain", "deposit.written", 2), ("rerun", "rerun.reopened", 1)]


def _random_points(n: int) -> list[tuple[str, str, int]]:
    rng = random.Random(os.environ.get("DMP_CRASH_SEED", "9"))
    out = []
    for _ in range(n):
        kind = rng.choice(sorted(KINDS))
        out.append((kind, rng.choice(KINDS[kind]), rng.randint(1, 6)))
    return out


RANDOM_POINTS = _random_points(int(os.environ.get("DMP_CRASH_RANDOM", "0")))


def _settings(tmp_path: Path, database_url: str):  # noqa: ANN202
    return load_settings(env={
        "DMP_HOME": str(tmp_path / "home"), "DMP_DATABASE_URL": database_url,
        "DMP_ARCHIVE_URL": str(tmp_path / "archive"), "DMP_MAPPINGS_DIR": str(SAMPLES /
                                                                             "mappings"),
        "DMP_BATCH_SIZE": "4", "DMP_COMMIT_EVERY": "2", "DMP_WORKER_ID": WORKER})


def _env(settings, fault: str | None) -> dict[str, str]:  # noqa: ANN001
    env = {k: v for k, v in os.environ.items() if not k.startswith("DMP_")}
    env.update(PYTHONPATH=str(ROOT), DMP_HOME=str(settings.home),
               DMP_DATABASE_URL=settings.database_url, DMP_ARCHIVE_URL=settings.archive_url,
               DMP_MAPPINGS_DIR=str(settings.mappings_dir), DMP_BATCH_SIZE="4",
               DMP_COMMIT_EVERY="2", DMP_WORKER_ID=WORKER, DMP_LOG_LEVEL="ERROR")
    if fault:
        env["DMP_FAULT"] = fault
    return env


class Zygote:
    """``python -m tests.crash_child --zygote``, started once for the module: each run is a
    child process forked from it, which runs tests.crash_child's ``main`` with the run's
    environment and is SIGKILLed at its fault point as a ``python -m tests.crash_child``
    process is, without an interpreter start and the pipelines' imports per run."""

    def __init__(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DMP_")}
        env.update(PYTHONPATH=str(ROOT), DMP_FAULT="zygote.never:1")  # fault_point armed
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.crash_child", "--zygote"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env,
                                     cwd=ROOT, text=True)
        self.runs = 0

    def run(self, argv: list[str], env: dict[str, str], out: Path,
            timeout: float = 120) -> subprocess.CompletedProcess:
        import json
        import selectors

        self.runs += 1
        stdout, stderr = out / f"child{self.runs}.out", out / f"child{self.runs}.err"
        self.proc.stdin.write(json.dumps({"argv": argv, "env": env, "cwd": str(ROOT),
                                          "stdout": str(stdout), "stderr": str(stderr)}) + "\n")
        self.proc.stdin.flush()
        # a selector, not select(): the session may hold over 1,024 descriptors by now,
        # and select() cannot watch one numbered past that (FD_SETSIZE)
        with selectors.DefaultSelector() as waiting:
            waiting.register(self.proc.stdout, selectors.EVENT_READ)
            ready = waiting.select(timeout)
        assert ready, f"the child did not end within {timeout} s"
        line = self.proc.stdout.readline()
        assert line, f"the zygote is gone (status {self.proc.poll()})"
        return subprocess.CompletedProcess(argv, int(line), stdout.read_text(),
                                           stderr.read_text())

    def close(self) -> None:
        self.proc.stdin.close()
        try:
            self.proc.wait(30)
        finally:
            self.proc.kill()


@pytest.fixture(scope="module")
def zygote():  # noqa: ANN201
    forks = Zygote()
    yield forks
    forks.close()


def _drop(folder: Path) -> None:
    """Dropped oldest first in name order: a poller takes new files by age, and files it
    finds claimed by a dead poller by name; with both orders alike, the level-4 attribution
    (which import brought a result both an HL7v2 message and a CDA state) is the same."""
    folder.mkdir(parents=True, exist_ok=True)
    for age, f in enumerate(sorted(INPUTS, key=lambda f: f.name)):
        shutil.copy(f, folder / f.name)
        os.utime(folder / f.name, (1_700_000_000 + age, 1_700_000_000 + age))


def _received() -> list[Received]:
    return [Received(data=f.read_bytes(), source="crash", channel="file", file_name=f.name)
            for f in INPUTS]


def _poll(ctx: Context, folder: Path) -> None:
    source = FolderSource(id="crash", path=folder, settle_seconds=0)
    with FolderPoller(source, ctx.engine, ctx.archive, name="recovery") as poller:
        poller.poll()


def _state(ctx: Context) -> dict:
    """What the store holds, independent of row ids and of repeats recorded at intake."""
    with ctx.engine.connect() as conn:
        rows = conn.execute(select(imports)).all()
        # a file received again gets its own envelope row ('split') and intake repeats
        ledger = Counter((r.file_name, r.part, r.status, r.error_code, r.entries_count)
                         for r in rows if r.status != "split" and not
                         (r.status == "duplicate" and r.stage == "intake"))
        ledger.update({(r.file_name, "envelope") for r in rows if r.status == "split"})
        rows = {r.id: (r.patient_id, r.key, r.version) for r in conn.execute(select(entries))}
        found = Counter((r.patient_id, r.key, r.version, r.current, r.status, r.value, r.fact)
                        for r in conn.execute(select(entries)))
        links = Counter((rows[r.entry_id], r.relation)
                        for r in conn.execute(select(provenance)))
    return {"ledger": ledger, "entries": found, "links": links}


_baselines: dict[str, dict] = {}


def _baseline(kind: str, tmp_path: Path, template: Path) -> dict:
    """The store after an uninterrupted run of the same inputs (SQLite; once per kind), on a
    copy of the session's migrated template: a new file was migrated from the first
    revision, once per kind and per xdist worker."""
    if kind not in _baselines:
        base = tmp_path / "baseline"
        ctx = Context.from_settings(_settings(base, migrated_sqlite(template,
                                                                    base / "b.sqlite3")),
                                    worker="baseline")
        create_sample_dossiers(ctx)
        if kind == "folder":
            _drop(base / "drop")
            _poll(ctx, base / "drop")
        else:
            intake(ctx.engine, ctx.archive, _received())
        drain(ctx)
        if kind == "rerun":
            _rerun_all(ctx)
        _baselines[kind] = _state(ctx)
        ctx.engine.dispose()
    return _baselines[kind]


def _rerun_all(ctx: Context) -> None:
    """Every import rerun, as tests.crash_child's rerun does, uninterrupted."""
    from pipelines.process import CODE_VERSION
    from pipelines.rerun import reopen_checked, select_ids

    plan = reopen_checked(ctx.engine, ctx.archive, select_ids(ctx.engine),
                          code_version=CODE_VERSION)
    assert plan.reopen, "nothing to rerun: the rerun crash points would test nothing"
    drain(ctx, ids=plan.to_process)


def _crash_and_recover(kind: str, point: str, n: int, tmp_path: Path,
                       database_url: str, zygote: Zygote, template: Path) -> bool:
    """True if the child was killed (False: the point was not reached n times)."""
    settings = _settings(tmp_path / "run", database_url)
    ctx = Context.from_settings(settings, worker="recovery")
    try:
        create_sample_dossiers(ctx)
        args = {"ingest": [str(f) for f in INPUTS], "drain": [], "rerun": [],
                "folder": [str(tmp_path / "drop")]}[kind]
        if kind in ("drain", "rerun"):
            intake(ctx.engine, ctx.archive, _received())
        if kind == "rerun":
            drain(ctx)
        if kind == "folder":
            _drop(tmp_path / "drop")
        child = zygote.run([kind, *args], _env(settings, f"{point}:{n}"), tmp_path)
        assert child.returncode in (0, -signal.SIGKILL), child.stderr[-3000:]
        # recovery: the restarted worker gives back its dead claims, the input comes again
        release_claims(ctx.engine, WORKER)
        if kind == "ingest":
            intake(ctx.engine, ctx.archive, _received())
        elif kind == "folder":
            _poll(ctx, tmp_path / "drop")
            left = [p for p in (tmp_path / "drop").rglob("*")
                    if p.is_file() and "done" not in p.parts and p.name != ".lock"]
            assert left == [], left
        drain(ctx)
        assert not_terminal(ctx.engine) == []
        report = check(ctx.engine, ctx.archive)
        assert report.consistent, report.as_dict()
        after = _state(ctx)
        expected = _baseline(kind, tmp_path, template)
        assert after["ledger"] == expected["ledger"], "ledger differs from an uninterrupted run"
        assert after["entries"] == expected["entries"], "entries lost or filed twice"
        assert after["links"] == expected["links"], "provenance differs"
        _record(kind, point, n, child.returncode == -signal.SIGKILL)
        return child.returncode == -signal.SIGKILL
    finally:
        ctx.engine.dispose()


def _record(kind: str, point: str, n: int, killed: bool, inputs: int = len(INPUTS)) -> None:
    """One line per run for `make soak`'s report (DMP_RELIABILITY_LOG)."""
    path = os.environ.get("DMP_RELIABILITY_LOG")
    if path:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(f"crash\t{kind}\t{point}\t{n}\t{'killed' if killed else 'not-reached'}"
                     f"\t{inputs}\n")


@pytest.mark.parametrize(("kind", "point", "n"), CI_POINTS + RANDOM_POINTS)
def test_crash_point_sqlite(kind: str, point: str, n: int, tmp_path: Path,
                            sqlite_template: Path, zygote: Zygote) -> None:
    killed = _crash_and_recover(kind, point, n, tmp_path,
                                migrated_sqlite(sqlite_template, tmp_path / "store.sqlite3"),
                                zygote, sqlite_template)
    assert killed or (kind, point, n) in RANDOM_POINTS, "the fault point was never reached"


@pytest.mark.parametrize(("kind", "point", "n"), PG_POINTS + RANDOM_POINTS)
def test_crash_point_postgresql(kind: str, point: str, n: int, tmp_path: Path,
                                postgres_server, zygote: Zygote,  # noqa: ANN001
                                sqlite_template: Path) -> None:
    killed = _crash_and_recover(kind, point, n, tmp_path, postgres_server.new_database(),
                                zygote, sqlite_template)
    assert killed or (kind, point, n) in RANDOM_POINTS, "the fault point was never reached"


def test_fault_list_kills(tmp_path: Path, sqlite_template: Path) -> None:
    """A list of points in DMP_FAULT: the first one reached kills."""
    settings = _settings(tmp_path, migrated_sqlite(sqlite_template, tmp_path / "store.sqlite3"))
    ctx = Context.from_settings(settings)
    create_sample_dossiers(ctx)
    ctx.engine.dispose()
    fault = ",".join(f"{p}:1" for p in INTAKE + PROCESS)
    child = subprocess.run([sys.executable, "-m", "tests.crash_child", "ingest",
                            *map(str, INPUTS)], env=_env(settings, fault), cwd=ROOT,
                           capture_output=True, text=True, timeout=120)
    assert child.returncode == -signal.SIGKILL


def test_a_service_worker_killed_mid_batch_is_replaced(tmp_path: Path,
                                                      sqlite_template: Path) -> None:
    """`serve`'s worker process is SIGKILLed after filing its first batch (uncommitted): the
    service starts another, which takes the batch again; the listener never stopped
    acknowledging, and every message is deposited once."""
    from tests.mllp_support import Client, msa
    from tests.test_mllp_crash import _generate, _home, _start, _wait_processed

    messages, patients = _generate(60, 8)
    url = migrated_sqlite(sqlite_template, tmp_path / "store.sqlite3")
    env = _home(tmp_path, url, patients)
    env.update(PYTHONPATH=str(ROOT), DMP_FAULT="process.filed:1",
               DMP_FAULT_ONCE=str(tmp_path / "fired"))
    log = tmp_path / "serve.log"
    proc, port = _start(env, log)
    try:
        with Client(port) as client:
            for m in messages:
                assert msa(client.send(m, timeout=60), "latin-1")[1] in ("AA", "CA")
        _wait_processed(url, len(messages))
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(120) == 0
    assert (tmp_path / "fired").exists(), "the worker was never killed"
    assert "died" in log.read_text()
    ctx = Context.from_settings(load_settings(env={
        "DMP_HOME": env["DMP_HOME"], "DMP_DATABASE_URL": url,
        "DMP_ARCHIVE_URL": env["DMP_ARCHIVE_URL"]}))
    try:
        assert check(ctx.engine, ctx.archive).consistent
        with ctx.engine.connect() as conn:
            deposited = conn.execute(select(imports.c.logical_id).where(
                imports.c.status == "deposited")).scalars().all()
        assert len(deposited) == len(set(deposited)) == len(messages)
        _record("serve-worker", "process.filed", 1, True, len(messages))
    finally:
        ctx.engine.dispose()


def _original_mode(message: bytes) -> bytes:
    """The message without MSH-15/MSH-16 (original acknowledgment mode), whatever its
    segment ends."""
    end = min(i for i in (message.find(b"\r"), message.find(b"\n"), len(message)) if i >= 0)
    fields = message[:end].split(b"|")
    fields[14:16] = [b"", b""]
    return b"|".join(fields) + message[end:]


def _no_survivor(home: str, timeout: float = 120) -> None:
    """Every process of a killed service ends: its worker processes die with it, even one
    that was still starting (before its PR_SET_PDEATHSIG), and their pools. An orphan worker
    would go on claiming and filing beside the restarted service."""
    from parsers.process_lifetime import process_alive

    needle = f"DMP_HOME={home}".encode()
    deadline = time.monotonic() + timeout
    while True:
        left = []
        for d in Path("/proc").iterdir():
            try:
                if d.name.isdigit() and needle in (d / "environ").read_bytes().split(b"\0") \
                        and process_alive(int(d.name)):
                    left.append(int(d.name))
            except OSError:
                continue
        if not left:
            return
        assert time.monotonic() < deadline, f"processes of the killed service left: {left}"
        time.sleep(0.02)  # a scan of /proc: a few ms


LISTENER_POINTS = [("accept", "archive.written", 5), ("accept", "intake.archived", 7),
                   ("accept", "intake.uncommitted", 9), ("accept", "mllp.committed", 6),
                   ("application", "intake.uncommitted", 4),
                   ("application", "mllp.committed", 3),
                   ("application", "process.filed", 3), ("application", "process.recorded", 2),
                   ("accept", "mllp.staged", 12), ("accept", "mllp.acked", 10),
                   ("application", "mllp.processed", 3), ("application", "mllp.acked", 5)]
# `make soak`: DMP_CRASH_RANDOM=N adds N // 4 random (mode, point, n) draws; every point is
# reached at least 12 times in either mode (a group, a frame or a piece of 200 messages).
LISTENER_KINDS = {
    "accept": ["archive.written", "intake.archived", "intake.uncommitted",
               "intake.committed", "mllp.committed", "mllp.staged", "mllp.acked"],
    "application": ["intake.uncommitted", "intake.committed", "mllp.committed",
                    "process.filed", "process.recorded", "process.committed",
                    "mllp.processed", "mllp.acked"]}


def _random_listener_points(n: int) -> list[tuple[str, str, int]]:
    rng = random.Random(os.environ.get("DMP_CRASH_SEED", "9") + "/listener")
    out = []
    for _ in range(n):
        mode = rng.choice(sorted(LISTENER_KINDS))
        out.append((mode, rng.choice(LISTENER_KINDS[mode]), rng.randint(1, 12)))
    return out


RANDOM_LISTENER_POINTS = _random_listener_points(
    int(os.environ.get("DMP_CRASH_RANDOM", "0")) // 4)


@pytest.mark.parametrize(("mode", "point", "n"), LISTENER_POINTS + RANDOM_LISTENER_POINTS)
def test_listener_killed_at_a_named_point(tmp_path, mode: str, point: str, n: int,  # noqa: ANN001
                                          sqlite_template: Path) -> None:
    """`serve`'s listener SIGKILLed inside its handling of an MLLP group: in its intake
    (after the archive write, after its sync, before the ledger commit), once the group is
    committed but not acknowledged, once acknowledged, and in application-ACK mode (no
    worker process: the listener files the messages before answering) mid-filing and once
    filed but not acknowledged. After a restart (claims of
    the dead listener released) the sender resends what got no ACK, and every message is
    deposited exactly once, the store consistent."""
    from tests.test_mllp_crash import _generate, _home, _start, _stream, resend_after_restart

    messages, patients = _generate(200, 7)
    if mode == "application":  # original mode: every message's ACK waits for its filing
        messages = [_original_mode(m) for m in messages]
    url = migrated_sqlite(sqlite_template, tmp_path / "store.sqlite3")
    env = _home(tmp_path, url, patients)
    log = tmp_path / "serve.log"
    args = ("--ack-mode", mode, "--no-process") if mode == "application" else ()
    proc, port = _start({**env, "DMP_FAULT": f"{point}:{n}",
                         "DMP_FAULT_ONCE": str(tmp_path / "fired")}, log, *args)
    acked: set[str] = set()
    _stream(port, messages, acked)
    assert proc.wait(60) == -signal.SIGKILL, "the listener was not killed at the point"
    assert (tmp_path / "fired").exists()
    _no_survivor(env["DMP_HOME"])
    first_life = set(acked)
    assert len(first_life) < len(messages)
    engine = make_engine(url)
    with engine.connect() as conn:
        stored = set(conn.execute(select(imports.c.sha256)).scalars())
    assert first_life <= stored  # acknowledged means committed

    resend_after_restart(env, log, messages, first_life, acked, url, "--ack-mode", mode)
    with engine.connect() as conn:
        rows = conn.execute(select(imports.c.sha256, imports.c.status)).all()
        keys = conn.execute(select(entries.c.patient_id, entries.c.key)
                            .where(entries.c.current)).all()
    engine.dispose()
    deposited = [r.sha256 for r in rows if r.status == "deposited"]
    assert sorted(deposited) == sorted(sha256_hex(m) for m in messages)
    assert {r.status for r in rows} <= {"deposited", "duplicate"}
    assert len(keys) == len(set(keys)), "an entry was filed twice"
    ctx = Context.from_settings(load_settings(env={
        "DMP_HOME": env["DMP_HOME"], "DMP_DATABASE_URL": url,
        "DMP_ARCHIVE_URL": env["DMP_ARCHIVE_URL"]}))
    try:
        assert check(ctx.engine, ctx.archive).consistent
    finally:
        ctx.engine.dispose()
    _record(f"listener-{mode}", point, n, True, len(messages))
