"""Operators' round 7: what an operator on call needs at 3 a.m. The CLI in-process (its
Prefect flows as plain functions), the API app in-process; SQLite and PostgreSQL where the
store is touched.

What the round found: a sender that went silent (a lab's MLLP feed stopped at 2 a.m.) was
said by nothing; `check` exited 1 for everything, so monitoring could not tell a lost
archived object from a late worker, and said nothing of the backlog unless a row was already
an hour old; a burst of one error code from one source was 412 lines of `imports list`.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from dossiers.schema import imports
from pipelines.ledger import now
from pipelines.settings import SettingsError, load_settings
from tests.test_operators_round import no_prefect, run, store  # noqa: F401 (fixtures)


def _age(ctx, ids: list[int] | None, **ago: float) -> None:  # noqa: ANN001
    """Every row (or these) received that long ago."""
    q = update(imports).values(received_at=now() - timedelta(**ago))
    with ctx.engine.begin() as conn:
        conn.execute(q if ids is None else q.where(imports.c.id.in_(ids)))


# -- a sender gone silent ---------------------------------------------------------------------
def test_a_source_silent_longer_than_its_max_silence_is_critical(store, capsys,  # noqa: ANN001, F811
                                                                 monkeypatch) -> None:
    """LABO-LYON's feed stopped 3 hours ago, 2 hours are allowed: `check` says so on a line
    of its own and exits 2; a source declared but never heard from is said too."""
    ctx, ids = store
    monkeypatch.setenv("DMP_MAX_SILENCE", "lab=2h,labo-nuit=30m")
    _age(ctx, None, hours=3, minutes=12)
    code, out, _ = run(capsys, "check", "--quick")
    lines = out.splitlines()
    assert code == 2, out
    assert lines[0] == "CRITICAL: 2 SILENT_SOURCE"
    assert any(line.startswith("SILENT_SOURCE (critical) lab: nothing received for 3h12m "
                               "(max_silence 2h; last at ") for line in lines), out
    assert "SILENT_SOURCE (critical) labo-nuit: nothing ever received (max_silence 30m)" \
        in lines
    code, out, _ = run(capsys, "check", "--quick", "--json")
    report = json.loads(out)
    assert code == 2 and report["status"] == "critical"
    assert [(s["source"], s["max_silence_seconds"]) for s in report["silent"]] == [
        ("lab", 7200), ("labo-nuit", 1800)]
    assert 3 * 3600 + 11 * 60 < report["silent"][0]["silent_seconds"] < 3 * 3600 + 13 * 60
    # an admin's edit is no sign of life of the sender
    with ctx.engine.begin() as conn:
        conn.execute(update(imports).where(imports.c.id == ids[3]).values(
            channel="edit", received_at=now()))
    code, out, _ = run(capsys, "check", "--quick")
    assert code == 2 and "SILENT_SOURCE (critical) lab: nothing received" in out
    # the lab sends again: only the source never heard from is left
    _age(ctx, [ids[0]], minutes=5)
    code, out, _ = run(capsys, "check", "--quick", "--json")
    assert [s["source"] for s in json.loads(out)["silent"]] == ["labo-nuit"]


def test_a_renamed_source_is_heard_under_its_new_id(store, capsys, monkeypatch) -> None:  # noqa: ANN001, F811
    """The ledger keeps the id an import came in under ('lab'); renamed 'labo-lyon' in the
    settings, the source is not silent for what it sent under its former id."""
    ctx, _ = store
    monkeypatch.setenv("DMP_RENAMED_SOURCES", "lab=labo-lyon")
    monkeypatch.setenv("DMP_MAX_SILENCE", "labo-lyon=2h")
    _age(ctx, None, minutes=20)
    code, out, _ = run(capsys, "check", "--quick", "--json")
    assert code == 0 and json.loads(out)["silent"] == [], out


def test_max_silence_is_read_from_each_kind_of_source_table(tmp_path) -> None:  # noqa: ANN001
    conf = tmp_path / "dmp.toml"
    conf.write_text('[sources.labo-x]\nmax_silence = "2h"\n'
                    f'[folders.imagerie]\npath = "{tmp_path / "drop"}"\nmax_silence = "1d"\n'
                    '[max_silence]\nfiles = 5400\n', encoding="utf-8")
    settings = load_settings({"DMP_HOME": str(tmp_path), "DMP_CONFIG": str(conf),
                              "DMP_MAX_SILENCE": "labo-x=45m"})
    assert settings.max_silence == {"labo-x": 2700.0, "imagerie": 86400.0, "files": 5400.0}
    for bad in ('"0"', '"2 hours"', '"-1h"', "true"):
        conf.write_text(f"[max_silence]\nlabo-x = {bad}\n", encoding="utf-8")
        with pytest.raises(SettingsError, match=r"\[max_silence\] labo-x: a duration above 0"):
            load_settings({"DMP_HOME": str(tmp_path), "DMP_CONFIG": str(conf)})


def test_check_cannot_be_made_is_unknown_not_a_warning(store, capsys, monkeypatch) -> None:  # noqa: ANN001, F811
    """Unusable settings: exit 3 (UNKNOWN for monitoring); 1 would read as a mere warning."""
    monkeypatch.setenv("DMP_MAX_SILENCE", "lab=soon")
    code, out, err = run(capsys, "check", "--quick")
    assert code == 3 and out == ""
    assert err.strip() == ("dmp-ingest: settings: DMP_MAX_SILENCE lab: a duration above 0 "
                           "expected ('30m', '2h', '1d' or a number of seconds), not 'soon'")
    monkeypatch.delenv("DMP_MAX_SILENCE")
    code, _, err = run(capsys, "check", "--backlog-minutes", "90",
                       "--backlog-critical-minutes", "30")
    assert code == 3 and "at least --backlog-minutes" in err


# -- the backlog, with thresholds -------------------------------------------------------------
def test_the_backlog_is_a_warning_then_critical_by_the_oldest_row_s_wait(store, capsys) -> None:  # noqa: ANN001, F811
    ctx, (dep, warn, quar, fail) = store
    code, out, _ = run(capsys, "check", "--quick")
    assert code == 0 and out.splitlines()[0] == "OK: nothing to report"
    assert ("backlog: 0 received (none waiting; 0 waiting for a retry), 0 processing; "
            "warning after 1h, critical after 4h") in out
    with ctx.engine.begin() as conn:
        conn.execute(update(imports).where(imports.c.id.in_((quar, fail))).values(
            status="received", not_before=None))
        # a row waiting for its retry time is not stuck, however old
        conn.execute(update(imports).where(imports.c.id == quar).values(
            not_before=now() + timedelta(minutes=5), received_at=now() - timedelta(hours=9)))
    _age(ctx, [fail], minutes=90)
    code, out, _ = run(capsys, "check", "--quick", "--json")
    report = json.loads(out)
    assert code == 1 and report["status"] == "warning"
    assert {k: report["backlog"][k] for k in ("received", "waiting_retry", "level")} == {
        "received": 2, "waiting_retry": 1, "level": "warning"}
    assert 89 * 60 < report["backlog"]["oldest_age_seconds"] < 91 * 60
    assert [(f["code"], f["ids"], f["severity"]) for f in report["findings"]] == [
        ("BACKLOG", [fail], "warning")]
    _age(ctx, [fail], hours=5)
    code, out, _ = run(capsys, "check", "--quick")
    assert code == 2 and out.splitlines()[0] == "CRITICAL: 1 BACKLOG"
    assert f"BACKLOG (critical): 1 import: {fail}" in out
    code, out, _ = run(capsys, "check", "--quick", "--backlog-critical-minutes", "600")
    assert code == 1 and out.splitlines()[0] == "WARNING: 1 BACKLOG"


def test_an_integrity_finding_outranks_a_warning(store, capsys) -> None:  # noqa: ANN001, F811
    """A lost archived object beside a late row: critical (exit 2), both said."""
    ctx, (dep, _, _, fail) = store
    with ctx.engine.connect() as conn:
        sha = conn.execute(select(imports.c.sha256).where(imports.c.id == dep)).scalar_one()
    ctx.archive.path(sha).unlink()
    with ctx.engine.begin() as conn:
        conn.execute(update(imports).where(imports.c.id == fail).values(status="received"))
    _age(ctx, [fail], minutes=70)
    code, out, _ = run(capsys, "check", "--quick")
    assert code == 2 and out.splitlines()[0] == "CRITICAL: 1 ARCHIVE_MISSING, 1 BACKLOG"
    assert f"ARCHIVE_MISSING (critical): 1 sha256: {sha}" in out
