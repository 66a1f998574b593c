"""`dmp-ingest check`: a clean store is consistent; each kind of damage is reported (ids and
codes only), on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import delete, select, update

from dossiers.schema import entries, imports, provenance
from pipelines.check import check
from pipelines.ledger import now
from pipelines.process import Context
from pipelines.settings import load_settings
from tests.conftest import ROOT, SAMPLES, migrated_sqlite
from tests.reliability_support import load_sample_set


# Every test here damages a store holding the sample set (HL7v2 and CDA samples filed, no
# PDF), each in its own way. The set was filed again for each test (18 times: about 1.5 s on
# SQLite, 2.5-4.5 s on PostgreSQL in a CI run); it is filed once per store kind and test
# process (an xdist worker) into a store no test touches, and each test gets a copy of it
# (file copy; CREATE DATABASE ... TEMPLATE) with a copy of its archive: the same rows and
# objects, damaged by that test only.
@dataclass(frozen=True)
class _Filled:
    url: str
    archive: Path
    database: Path | None = None  # the SQLite file (PostgreSQL: the url's database)


def _settings(home: Path, url: str, archive: Path):  # noqa: ANN202
    return load_settings(env={"DMP_HOME": str(home), "DMP_DATABASE_URL": url,
                              "DMP_ARCHIVE_URL": str(archive)})


def _fill(kind: str, folder: Path, request) -> _Filled:  # noqa: ANN001
    """The sample set filed into a new store of ``kind`` under ``folder``."""
    if kind == "sqlite":
        database = folder / "store.sqlite3"
        url = migrated_sqlite(request.getfixturevalue("sqlite_template"), database)
    else:
        database = None
        url = request.getfixturevalue("postgres_server").new_database()
    filled = _Filled(url, folder / "archive", database)
    ctx = Context.from_settings(_settings(folder / "home", url, filled.archive))
    try:
        load_sample_set(ctx, pdfs=False)
    finally:
        ctx.engine.dispose()  # a template has no session (PostgreSQL refuses to copy it)
    if database is not None:  # the last connection closed checkpointed the WAL into the file
        assert not database.with_name(database.name + "-wal").exists()
    return filled


@pytest.fixture(scope="module")
def _filled_stores() -> dict[str, _Filled]:
    return {}


@pytest.fixture(params=["sqlite", "postgresql"])
def loaded(request, tmp_path, tmp_path_factory, _filled_stores):  # noqa: ANN001, ANN201
    """A context on a store holding the sample set: a copy of the module's filled one."""
    kind = request.param
    if kind not in _filled_stores:
        _filled_stores[kind] = _fill(kind, tmp_path_factory.mktemp(f"filled-{kind}"), request)
    filled = _filled_stores[kind]
    if filled.database is not None:
        url = migrated_sqlite(filled.database, tmp_path / "store.sqlite3")
    else:
        template = filled.url.rsplit("/", 1)[1]
        url = request.getfixturevalue("postgres_server").new_database(template=template)
    shutil.copytree(filled.archive, tmp_path / "archive")
    ctx = Context.from_settings(_settings(tmp_path / "home", url, tmp_path / "archive"))
    ctx.settings = replace(ctx.settings, mappings_dir=SAMPLES / "mappings")  # as filled
    yield ctx
    ctx.engine.dispose()


def _codes(ctx) -> dict[str, list]:  # noqa: ANN001
    return {f.code: f.ids for f in check(ctx.engine, ctx.archive).findings}


def _deposited_entry(ctx):  # noqa: ANN001, ANN202
    with ctx.engine.connect() as conn:
        return conn.execute(select(entries).where(entries.c.current)
                            .order_by(entries.c.id)).first()


def test_clean_store_is_consistent(loaded) -> None:  # noqa: ANN001
    report = check(loaded.engine, loaded.archive)
    assert report.consistent, report.as_dict()
    assert report.imports > 20 and report.entries > 50
    assert report.orphans == 0


def test_missing_and_corrupt_archive_objects(loaded) -> None:  # noqa: ANN001
    with loaded.engine.connect() as conn:
        a, b = conn.execute(select(imports.c.sha256).distinct().limit(2)).scalars()
    loaded.archive.path(a).unlink()
    loaded.archive.path(b).write_bytes(b"not what was received")
    codes = _codes(loaded)
    assert codes.pop("ARCHIVE_MISSING") == [a]
    assert codes.pop("ARCHIVE_CORRUPT") == [b]
    assert codes == {}
    quick = check(loaded.engine, loaded.archive, verify_hashes=False)
    assert [f.code for f in quick.findings] == ["ARCHIVE_MISSING"]


def test_entry_without_provenance(loaded) -> None:  # noqa: ANN001
    entry = _deposited_entry(loaded)
    with loaded.engine.begin() as conn:
        conn.execute(delete(provenance).where(provenance.c.entry_id == entry.id))
    codes = _codes(loaded)
    assert codes["ENTRY_WITHOUT_PROVENANCE"] == [entry.id]


def test_deposited_import_without_entries(loaded) -> None:  # noqa: ANN001
    with loaded.engine.begin() as conn:
        row = conn.execute(select(imports).where(imports.c.status == "deposited",
                                                 imports.c.entries_count > 0)).first()
        conn.execute(update(imports).where(imports.c.id == row.id).values(entries_count=99))
        conn.execute(delete(provenance).where(provenance.c.import_id == row.id))
    assert row.id in _codes(loaded)["DEPOSITED_WITHOUT_ENTRIES"]


def test_two_current_versions(loaded) -> None:  # noqa: ANN001
    with loaded.engine.begin() as conn:
        old = conn.execute(select(entries).where(entries.c.current.is_(False))).first()
        assert old is not None, "the samples hold corrections"
        conn.execute(update(entries).where(entries.c.id == old.id).values(current=True))
    codes = _codes(loaded)
    assert codes["TWO_CURRENT_VERSIONS"] == [(old.patient_id, old.key)]


def test_duplicate_fact(loaded) -> None:  # noqa: ANN001
    entry = _deposited_entry(loaded)
    with loaded.engine.begin() as conn:
        lab = conn.execute(select(entries).where(entries.c.current, entries.c.type ==
                                                 "lab_result", entries.c.fact.is_not(None),
                                                 entries.c.id != entry.id)).first()
        other = conn.execute(select(entries).where(
            entries.c.current, entries.c.type == "lab_result", entries.c.fact != lab.fact,
            entries.c.patient_id == lab.patient_id)).first()
        conn.execute(update(entries).where(entries.c.id == other.id).values(fact=lab.fact))
    assert _codes(loaded)["DUPLICATE_FACT"] == [(lab.patient_id, lab.fact)]


def test_expired_lease_and_backlog(loaded) -> None:  # noqa: ANN001
    with loaded.engine.begin() as conn:
        a, b = conn.execute(select(imports.c.id).where(imports.c.status == "failed")
                            .order_by(imports.c.id).limit(2)).scalars()
        conn.execute(update(imports).where(imports.c.id == a).values(
            status="processing", claimed_by="dead", claimed_until=now() - timedelta(minutes=1)))
        conn.execute(update(imports).where(imports.c.id == b).values(
            status="received", received_at=now() - timedelta(hours=3)))
    codes = _codes(loaded)
    assert codes == {"LEASE_EXPIRED": [a], "BACKLOG": [b]}
    assert "BACKLOG" not in {f.code for f in check(loaded.engine, loaded.archive,
                                                   backlog_minutes=600).findings}


def test_orphans_counted_not_deleted(loaded) -> None:  # noqa: ANN001
    sha = loaded.archive.put(b"archived, then the intake died before its ledger commit")
    report = check(loaded.engine, loaded.archive)
    assert report.consistent and report.orphans == 1
    assert loaded.archive.path(sha).exists()


def test_cli_check_exit_codes_and_json(loaded) -> None:  # noqa: ANN001
    settings = loaded.settings
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DMP_HOME": str(settings.home),
           "DMP_DATABASE_URL": settings.database_url, "DMP_ARCHIVE_URL": settings.archive_url}
    cmd = [sys.executable, "-m", "cli", "check"]
    ok = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip().endswith("consistent")
    entry = _deposited_entry(loaded)
    with loaded.engine.begin() as conn:
        conn.execute(delete(provenance).where(provenance.c.entry_id == entry.id))
    bad = subprocess.run([*cmd, "--json"], env=env, cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    # an entry no import created: critical, exit 2 (Nagios/Icinga; it was 1, which
    # monitoring reads as a mere warning)
    assert bad.returncode == 2, bad.stderr
    report = json.loads(bad.stdout)
    assert report["consistent"] is False and report["status"] == "critical"
    assert report["findings"] == [{"code": "ENTRY_WITHOUT_PROVENANCE", "count": 1,
                                   "ids": [entry.id], "what": "entry",
                                   "severity": "critical"}]
