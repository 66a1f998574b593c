"""Dependency faults with the real thing instead of a stub: the archive's file system full
(a 1 MiB tmpfs, as root) and PostgreSQL restarted under a running service. While the fault
lasts the listener acknowledges nothing it cannot store (no AA); once it ends the service
recovers by itself (no restart) and the store is consistent. (An archive stub that fails, an
S3 endpoint down and a store down for the folder poller are tested in test_mllp_service.py,
test_s3_connector.py and test_folder_connector.py.)"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from pipelines.check import check
from tests.conftest import _free_port, _pg_bin, migrated_sqlite, start_moto
from tests.mllp_support import Client, msa, running_service, statuses, wait_processed
from tests.test_mllp_service import make_ctx, original_mode, sample

MESSAGES = ["01_labm_nfs.hl7", "02_labm_lipides_glycemie.hl7", "03_synlab_iono_creatinine.hl7",
            "05_chu_hba1c.hl7", "06_bioazur_iono_vitd.hl7"]


@pytest.fixture
def small_fs(tmp_path) -> Path:  # noqa: ANN001
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mnt = tmp_path / "small"
    mnt.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)],
                          capture_output=True)
    if done.returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def _fill(mnt: Path) -> Path:
    """Fill the file system to the last byte."""
    filler = mnt / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            os.write(fd, b"\0" * 512)
    except OSError:
        pass
    finally:
        os.close(fd)
    return filler


def test_archive_disk_full_refuses_then_recovers(tmp_path, small_fs, sqlite_template) -> None:  # noqa: ANN001
    ctx = make_ctx(tmp_path, migrated_sqlite(sqlite_template, tmp_path / "store.sqlite3"))
    from pipelines.archive import DirectoryArchive

    ctx.archive = DirectoryArchive(small_fs / "archive")
    try:
        with running_service(ctx) as svc, Client(svc.port) as client:
            assert msa(client.send(original_mode(sample(MESSAGES[0]))))[1] == "AA"
            filler = _fill(small_fs)
            refused = [msa(client.send(original_mode(sample(m))))[1] for m in MESSAGES[1:]]
            assert "AA" not in refused and set(refused) <= {"AR", "AE"}, refused
            filler.unlink()  # space again: the same connection, no restart
            again = [msa(client.send(original_mode(sample(m))))[1] for m in MESSAGES[1:]]
            assert again == ["AA"] * (len(MESSAGES) - 1)
            wait_processed(ctx)
        assert statuses(ctx) == {"deposited": len(MESSAGES)}
        report = check(ctx.engine, ctx.archive)
        assert report.consistent, report.as_dict()
    finally:
        ctx.engine.dispose()


class Cluster:
    """A PostgreSQL cluster of this test's own (it is stopped and started mid-test)."""

    def __init__(self) -> None:
        initdb, self.pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
        if not initdb or not self.pg_ctl:
            pytest.skip("PostgreSQL binaries not found")
        self.base = Path(tempfile.mkdtemp(prefix="dmp-pg-restart-"))
        self.prefix: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.base, "postgres", "postgres")
            self.prefix = ["runuser", "-u", "postgres", "--"]
        self.run(initdb, "-D", str(self.base / "data"), "-A", "trust", "-U", "postgres",
                 "-E", "UTF8", "--no-sync")
        for attempt in range(3):  # picked just before the start, again if taken meanwhile
            self.port = _free_port()
            if self.start(check=attempt == 2):
                break

    def run(self, *args: str) -> None:
        subprocess.run([*self.prefix, *args], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, timeout=120)

    def start(self, *, check: bool = True) -> bool:
        """Start on self.port; False when another process holds the port (picked, then
        taken before the start: two xdist workers, other programs) and not ``check``."""
        started = subprocess.run(
            [*self.prefix, self.pg_ctl, "-D", str(self.base / "data"), "-l",
             str(self.base / "log"), "-o", f"-c listen_addresses=127.0.0.1 -p {self.port} "
             f"-k {self.base} -c fsync=off", "-w", "-t", "60", "start"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=120)
        if started.returncode == 0:
            return True
        log = self.base / "log"
        if check or "already in use" not in (log.read_text(errors="replace")
                                             if log.exists() else ""):
            raise subprocess.CalledProcessError(started.returncode, "pg_ctl start",
                                                stderr=started.stderr)
        return False

    def stop(self) -> None:
        self.run(self.pg_ctl, "-D", str(self.base / "data"), "-m", "fast", "-w", "stop")

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def remove(self) -> None:
        subprocess.run([*self.prefix, self.pg_ctl, "-D", str(self.base / "data"), "-m",
                        "immediate", "stop"], capture_output=True)
        shutil.rmtree(self.base, ignore_errors=True)


def test_postgresql_restarted_under_the_service(tmp_path) -> None:  # noqa: ANN001
    cluster = Cluster()
    ctx = make_ctx(tmp_path, cluster.url)
    try:
        with running_service(ctx) as svc, Client(svc.port) as client:
            assert msa(client.send(original_mode(sample(MESSAGES[0]))))[1] == "AA"
            cluster.stop()
            down = msa(client.send(original_mode(sample(MESSAGES[1])), timeout=120))[1]
            assert down in ("AR", "AE"), down
            cluster.start()
            back = [msa(client.send(original_mode(sample(m)), timeout=120))[1]
                    for m in MESSAGES[1:]]
            assert back == ["AA"] * (len(MESSAGES) - 1)
            wait_processed(ctx, timeout=120)
        assert statuses(ctx) == {"deposited": len(MESSAGES)}
        assert check(ctx.engine, ctx.archive).consistent
    finally:
        ctx.engine.dispose()
        cluster.remove()


def test_s3_archive_down_then_back(tmp_path, monkeypatch, sqlite_template) -> None:  # noqa: ANN001
    """The archive on S3 (moto's server on loopback) stops answering, then comes back on the
    same address: no AA meanwhile, AA again after, without a restart."""
    import boto3
    from botocore.config import Config

    from pipelines.s3_archive import S3Archive

    for name, value in (("AWS_ACCESS_KEY_ID", "test"), ("AWS_SECRET_ACCESS_KEY", "test"),
                        ("AWS_DEFAULT_REGION", "eu-west-3")):
        monkeypatch.setenv(name, value)
    server, port = start_moto()
    endpoint = f"http://127.0.0.1:{port}"
    client = boto3.client("s3", endpoint_url=endpoint, config=Config(
        retries={"max_attempts": 1}, connect_timeout=2, read_timeout=5))
    try:  # moto keeps its buckets per process: another test's server may have made it
        client.create_bucket(Bucket="dmp-archive",
                             CreateBucketConfiguration={"LocationConstraint": "eu-west-3"})
    except client.exceptions.BucketAlreadyOwnedByYou:
        pass
    ctx = make_ctx(tmp_path, migrated_sqlite(sqlite_template, tmp_path / "store.sqlite3"))
    ctx.archive = S3Archive("dmp-archive", "raw", client=client)
    # A row the worker was filing when S3 went away is put back for a retry after
    # retry_base_seconds (30 s by default, which this test then spent waiting): the retry is
    # what is tested here, not its delay.
    ctx.settings = replace(ctx.settings, retry_base_seconds=0.5)
    try:
        with running_service(ctx) as svc, Client(svc.port) as client_:
            assert msa(client_.send(original_mode(sample(MESSAGES[0]))))[1] == "AA"
            server.stop()
            down = msa(client_.send(original_mode(sample(MESSAGES[1])), timeout=60))[1]
            assert down in ("AR", "AE"), down
            server, _ = start_moto(port)  # moto keeps its buckets: the same store is back
            back = [msa(client_.send(original_mode(sample(m)), timeout=60))[1]
                    for m in MESSAGES[1:]]
            assert back == ["AA"] * (len(MESSAGES) - 1)
            wait_processed(ctx, timeout=120)
        assert statuses(ctx) == {"deposited": len(MESSAGES)}
        assert check(ctx.engine, ctx.archive).consistent
    finally:
        ctx.engine.dispose()
        server.stop()


def test_a_postgresql_host_that_never_answers_fails_the_connection(monkeypatch) -> None:  # noqa: ANN001
    """A host that takes the TCP connection and then says nothing (a server frozen in a
    failover, a proxy with no backend): the connection attempt ends with an error after
    dossiers.db.POSTGRES_CONNECT_TIMEOUT, rather than when the kernel gives up."""
    import socket

    from sqlalchemy import text
    from sqlalchemy.exc import OperationalError

    import dossiers.db as db

    monkeypatch.setattr(db, "POSTGRES_CONNECT_TIMEOUT", 1)
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # the kernel completes the handshake; nobody ever answers
        port = silent.getsockname()[1]
        engine = db.make_engine(f"postgresql://postgres@127.0.0.1:{port}/postgres")
        failed: list[BaseException] = []

        def connect() -> None:
            try:
                with engine.connect() as conn:
                    conn.execute(text("SELECT 1"))
            except BaseException as exc:  # noqa: BLE001 (what it was is asserted below)
                failed.append(exc)

        attempt = threading.Thread(target=connect, daemon=True)
        attempt.start()
        attempt.join(60)  # without a connect timeout, libpq waits for as long as TCP lets it
        assert not attempt.is_alive(), "the connection attempt is still waiting"
        assert len(failed) == 1 and isinstance(failed[0], OperationalError)
        engine.dispose()
        own = db.make_engine(f"postgresql://postgres@127.0.0.1:{port}/x?connect_timeout=3")
        assert own.dialect.create_connect_args(own.url)[1]["connect_timeout"] == "3"
        own.dispose()
