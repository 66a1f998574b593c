"""Shared fixtures: a real PostgreSQL server for the session, stores on SQLite and PostgreSQL.

The PostgreSQL server is a throwaway cluster (initdb in a temporary folder, loopback port,
fsync off) started on first use and stopped at the end of the session, so `make test` needs no
running service. As root, the cluster runs as the 'postgres' system user (initdb refuses
root). Without PostgreSQL binaries the PostgreSQL variants skip, unless DMP_REQUIRE_POSTGRES=1
(set by `make test`), where they fail: CI must never silently test less.
"""

from __future__ import annotations

import glob
import itertools
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus"
SAMPLES = ROOT / "samples"

# tesseract's readings kept by page pixels for this session (parsers/pdf/_ocr_memo.py): the
# sample scans and the ANS examples' PDFs are filed by dozens of tests, and three quarters of
# the suite's OCR time was reading again a page already read. Every page is still read once by
# the real tesseract; tests of tesseract itself ask for ``real_ocr``. Set here, before any
# test starts a process, so that services and pools inherit it.
#
# Under pytest-xdist (``make test`` runs two workers), the controller makes the folder and
# each worker, started with the controller's environment, reads and writes the same one
# (a reading is written under a temporary name, then renamed): only the controller removes it.
XDIST_WORKER = os.environ.get("PYTEST_XDIST_WORKER")
if XDIST_WORKER and os.environ.get("DMP_OCR_MEMO"):
    OCR_MEMO = Path(os.environ["DMP_OCR_MEMO"])
else:
    OCR_MEMO = Path(tempfile.mkdtemp(prefix="dmp-ocr-memo-"))
    os.environ["DMP_OCR_MEMO"] = str(OCR_MEMO)


# Every store a test opens is durable as in production: SQLite commits with an fsync
# (synchronous=FULL), the archive fsyncs each blob and its folder. On the CI's disk an fsync
# costs 3 ms on a quiet machine and far more on a busy one, paid thousands of times: tests
# of four test files ran in 94 s with their temporary folders on tmpfs against 128 s on the
# disk, back to back. The tests' temporary folders (``tmp_path``) are on tmpfs, then, when
# /dev/shm is one with room to spare; the code and what the tests check are the same (a
# killed process loses nothing a tmpfs keeps). ``--basetemp`` chooses another place, and
# DMP_TEST_TMPFS=0 keeps pytest's default. The PostgreSQL cluster (fsync off) stays on disk.
TMPFS = Path("/dev/shm")
TMPFS_ROOM = 4 << 30  # bytes free before tests go there (88 store tests wrote 14 MB)
_tmpfs: dict[str, Path] = {}


def _is_tmpfs(path: Path) -> bool:
    """Whether ``path`` is the mount point of a tmpfs (from /proc/mounts; False elsewhere)."""
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return False
    return any(line.split()[1:3] == [str(path), "tmpfs"] for line in mounts
               if len(line.split()) > 2)


def _tmpfs_basetemp() -> Path | None:
    """A new folder on /dev/shm for this session's ``tmp_path``, or None (pytest's default)
    when it is not a writable tmpfs with TMPFS_ROOM free, or DMP_TEST_TMPFS=0."""
    if os.environ.get("DMP_TEST_TMPFS") == "0" or not _is_tmpfs(TMPFS):
        return None
    if not os.access(TMPFS, os.W_OK):
        return None
    free = os.statvfs(TMPFS)
    if free.f_bavail * free.f_frsize < TMPFS_ROOM:
        return None
    _remove_stale_basetemps()
    return TMPFS / f"dmp-pytest-{os.getpid()}"


def _remove_stale_basetemps() -> None:
    """The folders of sessions killed before their end (no sessionfinish): memory held until
    the machine restarts otherwise. A folder is stale when its session's process is gone."""
    for folder in TMPFS.glob("dmp-pytest-*"):
        pid = folder.name.rsplit("-", 1)[1]
        if pid.isdigit() and folder.stat().st_uid == os.getuid() and not _alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    """Whether a process of that id exists (one of another user's counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config) -> None:  # noqa: ANN001
    """Before pytest's own tmp_path set-up reads ``--basetemp``: tmpfs unless one was given."""
    if config.option.basetemp is None and (base := _tmpfs_basetemp()) is not None:
        config.option.basetemp = str(base)
        _tmpfs["base"] = base
    if _xdist_controller(config):
        _start_prefect_migration()
        os.environ[PREFECT_DB_ENV] = str(_prefect_db["folder"])


def _remove_tmpfs_basetemp() -> None:
    """The session's folder on tmpfs is memory: removed at the end (pytest keeps the last
    three sessions' folders on disk, not one it was given), by a process the session does
    not wait for."""
    base = _tmpfs.get("base")
    if base is not None and base.exists():
        subprocess.Popen(["rm", "-rf", "--", str(base)], stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True)


@pytest.fixture
def real_ocr(monkeypatch) -> None:  # noqa: ANN001
    """Every page of this test read by tesseract itself (its time limit, its absence)."""
    monkeypatch.delenv("DMP_OCR_MEMO")


def corpus_path(*parts: str) -> Path:
    path = CORPUS.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"public corpus not present ({path})")
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_moto(port: int = 0, attempts: int = 40):  # noqa: ANN201
    """A moto S3 server on loopback, started: ``(server, port)``. With port 0 the server binds
    a port the kernel picks and reports it: a port picked by ``_free_port``, released, then
    bound by the server later could be taken in between by another process (two xdist
    workers, other programs), and the test then talked to the wrong server or hung. With a
    given port (a server started again on the address its clients know), a bind clash is
    retried a short while (a closing socket, another process's brief use of it), then raised:
    moto's own start() waited for ever when its bind failed."""
    from moto.server import ThreadedMotoServer

    class _Server(ThreadedMotoServer):
        bind_error: OSError | None = None

        def _server_entry(self) -> None:
            try:
                super()._server_entry()
            except OSError as exc:  # the bind: start() would wait for ever
                self.bind_error = exc
                self._server_ready_event.set()

    for attempt in range(attempts):
        server = _Server(ip_address="127.0.0.1", port=port, verbose=False)
        server.start()
        if server.bind_error is None:
            return server, server.get_host_and_port()[1]
        if attempt == attempts - 1:
            raise server.bind_error
        time.sleep(0.05)
    raise AssertionError("unreachable")


# The store's schema comes from the Alembic migrations (dossiers.migrate), run when a store is
# opened: about 0.15 s on a new SQLite file and 0.7 s on a new PostgreSQL database, paid by
# each of hundreds of tests. They run once per session into a template instead, and each test
# gets a copy of that template (a file copy; CREATE DATABASE ... TEMPLATE), already at head,
# where opening the store reads the version table only. test_migrations.py, which is about
# the migrations themselves, asks for empty stores (``empty_database_url``).
TEMPLATE_DB = "dmp_template"


def _migrate(url: str) -> None:
    from dossiers.db import create_schema, make_engine

    engine = make_engine(url)
    try:
        create_schema(engine)
    finally:
        engine.dispose()


@dataclass
class PostgresServer:
    host: str
    port: int
    _counter = itertools.count(1)
    _template: bool = False

    def _admin(self):  # noqa: ANN202
        import psycopg

        return psycopg.connect(f"host={self.host} port={self.port} user=postgres "
                               "dbname=postgres", autocommit=True)

    def url(self, name: str) -> str:
        return f"postgresql+psycopg://postgres@{self.host}:{self.port}/{name}"

    def new_database(self, *, migrated: bool = True, template: str | None = None) -> str:
        """A database of its own: a copy of the session's template at the head revision, or
        (``migrated=False``) an empty one, or a copy of ``template`` (a database of this
        server no session is connected to: a store a module filled once for its tests)."""
        if migrated and template is None and not self._template:
            with self._admin() as conn:
                conn.execute(f'CREATE DATABASE "{TEMPLATE_DB}"')
            _migrate(self.url(TEMPLATE_DB))  # disposed: a template must have no session
            self._template = True
        source = template or (TEMPLATE_DB if migrated else None)
        name = f"t{os.getpid()}_{next(self._counter)}"
        with self._admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}"'
                         + (f' TEMPLATE "{source}"' if source else ""))
        return self.url(name)


def _pg_bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


def _start_postgres(pg_ctl: list[str], data: Path, base: Path, attempts: int = 3) -> int:
    """Start the cluster on a free loopback port; returns the port. The port is picked just
    before the start (it was picked before initdb, seconds earlier on a loaded machine) and
    picked again when another process took it in between: two pytest-xdist workers, and any
    other program on the machine, open ports at the same time."""
    for _ in range(attempts):
        port = _free_port()
        opts = (f"-c listen_addresses=127.0.0.1 -p {port} -k {base} -c fsync=off "
                "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
        started = subprocess.run([*pg_ctl, "-D", str(data), "-o", opts, "-l",
                                  str(base / "log"), "-w", "-t", "120", "start"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if started.returncode == 0:
            return port
        log = (base / "log").read_text(errors="replace") if (base / "log").exists() else ""
        if "already in use" not in log:
            break
    raise RuntimeError(f"PostgreSQL did not start: {started.stderr.decode(errors='replace')}"
                       f" (log: {base / 'log'})")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if not initdb or not pg_ctl:
        if os.environ.get("DMP_REQUIRE_POSTGRES") == "1":
            pytest.fail("PostgreSQL binaries not found and DMP_REQUIRE_POSTGRES=1")
        pytest.skip("PostgreSQL binaries not found")
    base = Path(tempfile.mkdtemp(prefix="dmp-pg-"))
    data = base / "data"
    prefix: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(base, "postgres", "postgres")
        prefix = ["runuser", "-u", "postgres", "--"]
    run = dict(check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    subprocess.run([*prefix, initdb, "-D", str(data), "-A", "trust", "-U", "postgres",
                    "-E", "UTF8", "--no-sync"], **run)
    port = _start_postgres([*prefix, pg_ctl], data, base)
    try:
        yield PostgresServer("127.0.0.1", port)
    finally:
        subprocess.run([*prefix, pg_ctl, "-D", str(data), "-m", "immediate", "stop"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # Hundreds of databases of ~300 files each: removing them took 10 s (30 s on busy
        # disks) at the end of the session, the suite waiting for it. The server is stopped;
        # the folder is removed by a process of its own, which the session does not wait for.
        subprocess.Popen(["rm", "-rf", "--", str(base)], stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:  # noqa: ANN001
    """A SQLite store migrated to head once for the session (see TEMPLATE_DB)."""
    path = tmp_path_factory.mktemp("template") / "store.sqlite3"
    _migrate(f"sqlite:///{path}")
    # the last connection closed has checkpointed and removed the WAL: the file is the store
    assert not path.with_name(path.name + "-wal").exists()
    return path


def migrated_sqlite(template: Path, path: Path) -> str:
    """A SQLite store at ``path``, a copy of the session's template; its URL."""
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def sqlite_engine(sqlite_template, tmp_path):  # noqa: ANN001, ANN201
    """An engine on a SQLite store of the test's own at head (a copy of the template)."""
    from dossiers.db import make_engine

    engine = make_engine(migrated_sqlite(sqlite_template, tmp_path / "store.sqlite3"))
    yield engine
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path) -> str:  # noqa: ANN001
    """A store at the head revision, on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return migrated_sqlite(request.getfixturevalue("sqlite_template"),
                               tmp_path / "store.sqlite3")
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return server.new_database()


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database_url(request, tmp_path) -> str:  # noqa: ANN001
    """An empty store (no tables), on SQLite and on PostgreSQL: for the migrations' tests."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.sqlite3'}"
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return server.new_database(migrated=False)


@pytest.fixture
def settings(database_url, tmp_path):  # noqa: ANN001, ANN201
    from pipelines.settings import load_settings

    return load_settings(env={"DMP_HOME": str(tmp_path / "home"),
                              "DMP_DATABASE_URL": database_url,
                              "DMP_ARCHIVE_URL": str(tmp_path / "archive")})


@pytest.fixture
def ctx(settings):  # noqa: ANN001, ANN201
    from pipelines.process import Context

    context = Context.from_settings(settings)
    yield context
    context.engine.dispose()


@pytest.fixture
def sqlite_ctx(tmp_path, sqlite_template):  # noqa: ANN001, ANN201
    """A SQLite-only context for tests that are about logic, not the database."""
    from pipelines.process import Context
    from pipelines.settings import load_settings

    url = migrated_sqlite(sqlite_template, tmp_path / "home" / "dmp.sqlite3")
    settings = load_settings(env={"DMP_HOME": str(tmp_path / "home"), "DMP_DATABASE_URL": url})
    context = Context.from_settings(settings)
    yield context
    context.engine.dispose()


# The Prefect test server below starts on a new SQLite database, which it migrates first:
# 7-9 s of its 12-15 s start, on the one core the session runs on. When the session holds a
# test asking for it, a process of its own migrates that database as soon as that test is
# collected, on the other core, while the collection (about 15 s) goes on; the server then
# starts on a copy (the same Prefect migrations, by ``prefect server database upgrade``),
# which it finds at head. Under pytest-xdist the controller, which collects nothing, starts
# that process while its workers start, and tells them the folder (PREFECT_DB_ENV); the
# process leaves a mark there (``ok`` or ``failed``) for the workers to wait on.
PREFECT_TEST_DB = "prefect-test.db"  # the harness's file name (prefect.testing.utilities)
PREFECT_DB_ENV = "DMP_TEST_PREFECT_DB_DIR"
_prefect_db: dict[str, object] = {}


# Fixtures that use that database: the harness, and ``migrated_prefect_db`` (the local
# servers of test_prefect_local.py start on a copy, as the harness's server does).
_PREFECT_DB_USERS = ("prefect_harness", "migrated_prefect_db")


def _start_prefect_migration() -> None:
    """Migrate a new Prefect database in a process of its own (see above)."""
    folder = Path(tempfile.mkdtemp(prefix="dmp-prefect-db-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_HOME=str(folder / "home"), PREFECT_SERVER_ANALYTICS_ENABLED="false",
               PREFECT_SERVER_DATABASE_CONNECTION_URL=
               f"sqlite+aiosqlite:///{folder / PREFECT_TEST_DB}")
    upgrade = f"{sys.executable} -m prefect server database upgrade -y"
    _prefect_db["folder"] = folder
    _prefect_db["proc"] = subprocess.Popen(
        ["sh", "-c", f'if {upgrade}; then : > "$0/ok"; else : > "$0/failed"; fi', folder],
        env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)


def _xdist_controller(config) -> bool:  # noqa: ANN001
    """Whether this process hands the tests to pytest-xdist workers (and runs none)."""
    return bool(getattr(config.option, "numprocesses", None)) and not XDIST_WORKER


def pytest_itemcollected(item) -> None:  # noqa: ANN001
    if ("proc" in _prefect_db or os.environ.get(PREFECT_DB_ENV)
            or not any(name in getattr(item, "fixturenames", ())
                       for name in _PREFECT_DB_USERS)):
        return
    _start_prefect_migration()


# Modules whose tests share an expensive module-scoped fixture, each kept on one xdist worker:
# under ``--dist loadgroup`` every other test is a unit of its own, the two workers take a
# module's tests in turns, and each worker set the fixture up (a second Chromium and console
# service, a second OCR of the noisy scans, a second 500-message PostgreSQL ledger, the
# samples filed twice more). The loadgroup scheduler hands out the largest groups first.
ONE_WORKER_MODULES = frozenset({
    "test_console.py",          # world: a console service and its store; browser: Chromium
    "test_fhir_export.py",      # store: the HL7v2, CDA and PDF samples filed
    "test_pdf_ocr_quality.py",  # read_scans: every noisy scan through tesseract
    "test_many_workers.py",     # ledger: 500 received messages in PostgreSQL
    "test_check.py",            # the sample set filed into SQLite and PostgreSQL
    "test_pdf_samples.py",      # regenerated: the PDF sample set written again
})


@pytest.hookimpl(wrapper=True)
def pytest_collection_modifyitems(config, items):  # noqa: ANN001, ANN201
    """Under pytest-xdist, every test of the Prefect harness in one group (``--dist
    loadgroup``): one worker starts the one harness; the others' tests are handed out one by
    one; so are the tests of each module of ONE_WORKER_MODULES, a group per module. The
    mark is set before xdist's own hook, which reads the groups; the group is put in the
    test ids after it (``_group_ids``)."""
    if XDIST_WORKER:
        for item in items:
            if "prefect_harness" in getattr(item, "fixturenames", ()):
                item.add_marker(pytest.mark.xdist_group("prefect_harness"))
            elif item.path.name in ONE_WORKER_MODULES:
                item.add_marker(pytest.mark.xdist_group(item.path.stem))
    result = yield
    if XDIST_WORKER and config.getvalue("loadgroup"):
        _group_ids(items)
    return result


def _group_ids(items) -> None:  # noqa: ANN001
    """Give each grouped test the ``@group`` id suffix the loadgroup scheduler groups by.

    xdist 3.8's hook writes it into ``item._nodeid``, which pytest 9.2 no longer reads (node
    ids are structured, ``item._id``; pytest-xdist issue #1386): the suffix was lost, the
    harness's tests went to both workers and each worker started a Prefect server of its own
    (11.8 s and 14.9 s of setup in the CI's run). Nothing is done where the suffix is
    there already (an older pytest, a fixed xdist)."""
    for item in items:
        names = {str(m.args[0] if m.args else m.kwargs.get("name", "default"))
                 for m in item.iter_markers("xdist_group")}
        suffix = "@" + "_".join(sorted(names))
        if not names or item.nodeid.endswith(suffix) or not hasattr(item, "_id"):
            continue
        from _pytest.nodeid import NodeId

        item._id = NodeId.parse(item.nodeid + suffix)  # noqa: SLF001


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session, exitstatus) -> None:  # noqa: ANN001, ARG001
    """Last of the session's ends: pytest's own (its tmpdir plugin unlinks the dead
    ``*current`` links of the base folder) ran before the folder's removal started; the
    other way round, the two raced and the session ended with a FileNotFoundError."""
    if XDIST_WORKER:
        return  # the controller's: the memo, the tmpfs folder, the Prefect database
    shutil.rmtree(OCR_MEMO, ignore_errors=True)
    _remove_tmpfs_basetemp()
    proc = _prefect_db.get("proc")
    if proc is not None:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        shutil.rmtree(_prefect_db["folder"], ignore_errors=True)


def _migrated_prefect_db() -> Path | None:
    """The database migrated since collection, or None (the server then migrates its own)."""
    proc = _prefect_db.get("proc")
    folder = _prefect_db.get("folder") or os.environ.get(PREFECT_DB_ENV)
    if folder is None:
        return None
    folder = Path(folder)
    deadline = time.monotonic() + 300
    if proc is not None:
        proc.wait(timeout=300)
    while not (folder / "ok").exists() and not (folder / "failed").exists():
        if time.monotonic() > deadline or not folder.exists():
            return None
        time.sleep(0.1)
    path = folder / PREFECT_TEST_DB
    return path if (folder / "ok").exists() and path.exists() else None


@pytest.fixture(scope="session")
def migrated_prefect_db() -> Path | None:
    """A Prefect database at head, migrated since collection (copy it, never open it), or
    None when it could not be made (the user then migrates its own, as before)."""
    return _migrated_prefect_db()


def _private_websocket_random() -> None:
    """Prefect's events client keeps a websocket to the harness's server open for the whole
    session, and its keepalive ping (every 20 s, from Prefect's event-loop thread) draws its
    payload from the global ``random``. Hypothesis checks that the global generator is left
    alone while it generates data, so a ping landing then made it warn "Do not use the
    random module inside strategies" about strategies that use none. The pings draw from a
    generator of their own instead."""
    import random

    import websockets.asyncio.connection as connection

    if getattr(connection, "random", None) is random:
        connection.random = random.Random()


@pytest.fixture(scope="session")
def prefect_harness():  # noqa: ANN201
    """One Prefect test server for the whole session (it takes seconds to start)."""
    import prefect.testing.utilities as harness
    from prefect.testing.utilities import prefect_test_harness

    # the harness makes its folder with its module's ``mkdtemp``; another Prefect that does
    # not leaves the copy out, and its server migrates its own database
    mkdtemp = getattr(harness, "mkdtemp", None)
    migrated = _migrated_prefect_db() if mkdtemp is not None else None

    def with_database() -> str:  # the harness's folder, holding the migrated database
        folder = mkdtemp()
        shutil.copyfile(migrated, Path(folder) / PREFECT_TEST_DB)
        return folder

    if migrated is not None:
        harness.mkdtemp = with_database
    _private_websocket_random()
    try:
        with prefect_test_harness(server_startup_timeout=120):
            if mkdtemp is not None:
                harness.mkdtemp = mkdtemp
            yield
    finally:
        if mkdtemp is not None:
            harness.mkdtemp = mkdtemp


@pytest.fixture
def home(tmp_path, monkeypatch):  # noqa: ANN001, ANN201
    """A `dmp-ingest` home of its own (SQLite store, local archive), flows' contexts reset."""
    monkeypatch.setenv("DMP_HOME", str(tmp_path / "var"))
    for name in ("DMP_DATABASE_URL", "DMP_ARCHIVE_URL", "DMP_AUTO_CREATE", "DMP_CONFIG",
                 "DMP_MAPPINGS_DIR", "DMP_REQUIRE_MAPPING", "DMP_ADMIN"):
        monkeypatch.delenv(name, raising=False)
    import flows

    flows._context.cache_clear()
    yield tmp_path
    flows._context.cache_clear()


@pytest.fixture
def quirky(bucket):  # noqa: ANN001, ANN201
    """An S3 store with a real-world quirk in front of moto: (store proxy, bucket name, direct
    client to moto). ``bucket`` is tests/test_s3_connector.py's fixture, which the connector
    rounds using this one import."""
    from tests.s3_quirks import QuirkyStore

    endpoint, name, client = bucket
    store = QuirkyStore(endpoint)
    try:
        yield store, name, client
    finally:
        store.close()
