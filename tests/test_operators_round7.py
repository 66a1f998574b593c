"""Operators' round 7: what an operator on call needs at 3 a.m. The CLI in-process (its
Prefect flows as plain functions), the API app in-process; SQLite and PostgreSQL where the
store is touched.

What the round found: a sender that went silent (a lab's MLLP feed stopped at 2 a.m.) was
said by nothing; `check` exited 1 for everything, so monitoring could not tell a lost
archived object from a late worker, said nothing of the backlog unless a row was already an
hour old, and listed the whole archive at every probe; a burst of one error code from one
source was 412 lines of `imports list`, and one line without source or time on the
dashboard; Ctrl-C in a rerun left its batch 'processing' for the lease's 10 minutes, without
a word.
"""

from __future__ import annotations

import dataclasses
import html
import json
import re
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select, update

from dossiers.schema import imports
from pipelines.ledger import now
from pipelines.settings import SettingsError, load_settings
from tests.test_api import api  # noqa: F401 (a fixture)
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
    assert (settings.backlog_minutes, settings.backlog_critical_minutes) == (60, 240)
    conf.write_text("[check]\nbacklog_minutes = 30\nbacklog_critical_minutes = 90\n",
                    encoding="utf-8")
    settings = load_settings({"DMP_HOME": str(tmp_path), "DMP_CONFIG": str(conf)})
    assert (settings.backlog_minutes, settings.backlog_critical_minutes) == (30, 90)
    with pytest.raises(SettingsError, match="at least backlog_minutes"):
        load_settings({"DMP_HOME": str(tmp_path), "DMP_CONFIG": str(conf),
                       "DMP_CHECK_BACKLOG_MINUTES": "120"})
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
    # a probe every few minutes leaves the archive alone, and says so
    code, out, _ = run(capsys, "check", "--no-archive")
    assert code == 1 and out.splitlines()[0] == "WARNING: 1 BACKLOG"
    assert "entries, not the archive (--no-archive)" in out
    code, out, _ = run(capsys, "check", "--no-archive", "--json")
    assert json.loads(out)["archive_checked"] is False


# -- the console's dashboard ------------------------------------------------------------------
@pytest.fixture
def watched_api(settings):  # noqa: ANN001, ANN201
    """The service (HTTP API alone) of a store whose 'lab' may be silent 1 hour and
    'labo-nuit' 30 minutes."""
    from pipelines.process import Context
    from tests.api_support import api_settings, running_api

    watched = dataclasses.replace(settings, max_silence={"lab": 3600.0, "labo-nuit": 1800.0})
    ctx = Context.from_settings(api_settings(watched))
    with running_api(ctx) as running:
        yield running
    ctx.engine.dispose()


def test_the_dashboard_shows_silent_sources_and_the_backlog_s_level(watched_api) -> None:  # noqa: ANN001
    from tests.test_admin import BAD
    from tests.test_console import _login
    from tests.test_pipeline import ingest, oru

    ctx = watched_api.ctx
    ids = ingest(ctx, oru("D1"), oru("D2", value="6.1"))
    ingest(ctx, *[oru(f"E{n}", value=f"4.{n}", extra_obx=BAD) for n in range(3)],
           source="labo-x")
    _age(ctx, None, hours=3, minutes=12)
    with ctx.engine.begin() as conn:
        conn.execute(update(imports).where(imports.c.id == ids[1]).values(
            status="received", received_at=now() - timedelta(minutes=95)))
    with _login(watched_api, "admin", subject="alice") as c:
        page = html.unescape(c.get("/console/dashboard", params={"lang": "en"}).text)
    silent = re.search(r'<section class="card" id="silent">(.*?)</section>', page, re.S)
    assert silent is not None, page
    text = re.sub(r"<[^>]+>", "", silent.group(1))
    assert "Silent sources 2" in text
    # the newest row is the one waiting for a worker, received 95 minutes ago
    assert re.search(r"lab : nothing received for 1h3[45]m \(silence allowed: 1h\) — "
                     r"last received \d{4}-\d\d-\d\d \d\d:\d\d UTC", text), text
    assert "labo-nuit : nothing ever received (silence allowed: 30m)" in text
    # the errors, one line per code and source, with since when
    burst = re.search(r'<tr id="burst-1">(.*?)</tr>', page, re.S).group(1)
    cells = [re.sub(r"<[^>]+>", "", td) for td in re.findall(r"<td[^>]*>(.*?)</td>", burst)]
    assert cells[:4] == ["OBX_BAD_NUMBER", "labo-x", "failed", "3"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d", cells[4])
    assert "/console/imports?code=OBX_BAD_NUMBER&source=labo-x&status=failed" in burst
    assert 'id="backlog-level">warning<' in page
    assert re.search(r'id="backlog-oldest">the oldest has waited 1h3[45]m \(', page), page
    assert "warning after 1h, critical after 4h" in page


# -- a burst of one code from one source ------------------------------------------------------
def test_a_burst_of_one_code_from_one_source_is_one_line_and_one_rerun(store, capsys) -> None:  # noqa: ANN001, F811
    """LABO-X changed its format overnight: 6 failures of one code, beside the store's own
    (one failure from 'lab'). Grouped, the operator sees 6 × OBX_BAD_NUMBER from labo-x with
    when it began, and the options that select exactly that group for a rerun."""
    import shlex

    from tests.test_admin import BAD
    from tests.test_operators_round import _ingest
    from tests.test_pipeline import oru

    ctx, (dep, warn, quar, fail) = store
    burst = _ingest(ctx, *[oru(f"X{n}", value=f"5.{n}", extra_obx=BAD) for n in range(6)],
                    source="labo-x")
    _age(ctx, burst[:1], hours=1)
    code, out, _ = run(capsys, "imports", "list", "--status", "failed", "--group-by",
                       "code,source", "--json")
    found = json.loads(out)
    assert code == 0 and (found["total"], found["groups_total"]) == (7, 2)
    first, second = found["groups"]
    assert {k: first[k] for k in ("code", "source", "count", "select")} == {
        "code": "OBX_BAD_NUMBER", "source": "labo-x", "count": 6,
        "select": "--status failed --code OBX_BAD_NUMBER --source labo-x"}
    assert first["first_received"] < first["last_received"]
    assert (second["source"], second["count"]) == ("lab", 1)
    code, out, _ = run(capsys, "imports", "list", "--status", "failed", "--group-by",
                       "code,source", "--since", "2h")
    assert code == 0 and "groups 1-2 of 2 (7 imports)" in out
    # '2h' pasted later would be another window: the instant it meant
    # OBX_BAD_NUMBER fails again unchanged: listed, not offered for a rerun (round 8)
    hint = re.search(r"list a group: dmp-ingest imports list --status failed --since "
                     r"(\S+) --code OBX_BAD_NUMBER --source labo-x", out)
    assert hint is not None, out
    assert abs(datetime.fromisoformat(hint.group(1)) - (now() - timedelta(hours=2))) \
        < timedelta(minutes=1)
    # the group's words select that group and nothing else: a dry run counts it
    code, out, _ = run(capsys, "imports", "rerun", *shlex.split(first["select"]),
                       "--dry-run", "--json")
    assert code == 0 and sorted(json.loads(out)["reopen"]) == sorted(burst)
    # every import, grouped by status alone: no code to select the filed ones by
    code, out, _ = run(capsys, "imports", "list", "--group-by", "status,code", "--json")
    groups = {(g["status"], g["code"]): g for g in json.loads(out)["groups"]}
    assert groups[("deposited", None)]["count"] == 2
    assert groups[("deposited", None)]["select"] is None
    assert groups[("quarantined", "IDENTITY_UNKNOWN_PATIENT")]["select"] == (
        "--status quarantined --code IDENTITY_UNKNOWN_PATIENT")
    code, _, err = run(capsys, "imports", "list", "--group-by", "code,lab")
    assert code == 1 and err.strip() == (
        "dmp-ingest: --group-by: unknown group key 'lab' (one or more of: code, source, "
        "status, stage, channel, comma-separated)")


def test_the_admin_api_groups_a_burst_and_reruns_that_group(api) -> None:  # noqa: ANN001, F811
    from tests.test_admin import BAD
    from tests.test_pipeline import ingest, make_patient, oru

    make_patient(api.ctx)
    ingest(api.ctx, oru("A1"), oru("A2", extra_obx=BAD))
    burst = ingest(api.ctx, *[oru(f"Y{n}", value=f"4.{n}", extra_obx=BAD) for n in range(4)],
                   source="labo-x")
    with api.client("admin", subject="alice") as c:
        r = c.get("/admin/imports/groups", params={"status": "failed", "since": "2h"})
        assert r.status_code == 200, r.text
        found = r.json()
        assert (found["group_by"], found["total"], found["groups_total"]) == (
            ["code", "source"], 5, 2)
        top = found["groups"][0]
        assert (top["code"], top["source"], top["count"]) == ("OBX_BAD_NUMBER", "labo-x", 4)
        since = top["filter"].pop("since")  # the instant '2h' meant
        assert abs(datetime.fromisoformat(since) - (now() - timedelta(hours=2))) \
            < timedelta(minutes=1)
        assert top["filter"] == {"status": "failed", "code": "OBX_BAD_NUMBER",
                                 "source": "labo-x"}
        r = c.post("/admin/imports/rerun", json={"filter": {**top["filter"], "since": since},
                                                 "dry_run": True})
        assert r.status_code == 200, r.text
        assert sorted(r.json()["reopen"]) == sorted(burst)
        r = c.get("/admin/imports/groups", params={"group_by": "code,patient"})
        assert (r.status_code, r.json()["error"]) == (400, "BAD_GROUP_BY")


# -- Ctrl-C in a rerun -------------------------------------------------------------------------
def test_ctrl_c_in_a_rerun_gives_the_batch_back_and_says_what_is_left(store, capsys,  # noqa: ANN001, F811
                                                                      monkeypatch) -> None:
    """Interrupted while its batch was in hand, the rerun left those rows 'processing' for
    the lease's 10 minutes, taken by no one, and exited 130 without a word."""
    import flows
    from pipelines.ledger import claim_batch

    ctx, (_, _, quar, fail) = store
    planned = flows.process_batch  # the plain function (no Prefect), put back below

    def interrupted(ids: list[int], trigger: str) -> dict:
        flow_ctx = flows._context(trigger)
        assert claim_batch(flow_ctx.engine, limit=len(ids), worker=flow_ctx.worker,
                           ids=ids, lease_seconds=600) == ids
        raise KeyboardInterrupt

    monkeypatch.setattr(flows, "process_batch", interrupted)
    code, out, err = run(capsys, "imports", "rerun", str(quar), str(fail))
    assert code == 130 and out == ""
    assert err.startswith("dmp-ingest: interrupted: 2 import(s) in hand given back, nothing "
                          "half-filed; what was filed stays filed, what was not waits as "
                          "'received'"), err
    with ctx.engine.connect() as conn:
        rows = conn.execute(select(imports.c.status, imports.c.claimed_by).where(
            imports.c.id.in_((quar, fail)))).all()
    assert rows == [("received", None), ("received", None)]
    monkeypatch.setattr(flows, "process_batch", planned)
    # what the line says finishes the job (rows whose claim ended without an outcome are
    # taken one at a time, as after a crash: they may be what stopped the worker)
    for _ in range(2):
        code, _, _ = run(capsys, "imports", "rerun", "--status", "received")
        assert code == 0
    with ctx.engine.connect() as conn:
        assert conn.execute(select(imports.c.status).where(imports.c.id.in_((quar, fail)))
                            .order_by(imports.c.id)).scalars().all() == ["quarantined",
                                                                         "failed"]


def test_the_admin_api_health_is_what_check_says_of_the_backlog_and_the_silence(  # noqa: ANN001
        watched_api) -> None:
    """An HTTP monitor polls GET /admin/health: the same status as `check` for the backlog
    and the silent sources, and when each source last sent."""
    from tests.test_pipeline import ingest, oru

    ctx = watched_api.ctx
    with watched_api.client("admin", subject="nagios") as c:
        ids = ingest(ctx, oru("H1"), oru("H2", value="6.3"))
        r = c.get("/admin/health")
        assert r.status_code == 200, r.text
        body = r.json()
        # 'lab' sent just now; 'labo-nuit' never did: critical
        assert body["status"] == "critical" and list(body["last_received"]) == ["lab"]
        assert [s["source"] for s in body["silent"]] == ["labo-nuit"]
        with ctx.engine.begin() as conn:
            conn.execute(update(imports).where(imports.c.source == "lab").values(
                source="labo-nuit"))
            conn.execute(update(imports).where(imports.c.id == ids[0]).values(
                source="lab", status="received", received_at=now() - timedelta(minutes=50)))
        body = c.get("/admin/health").json()
        assert (body["status"], body["silent"], body["backlog"]["level"]) == (
            "ok", [], "ok")
        _age(ctx, [ids[0]], minutes=75)  # lab: silent 75 min of the hour allowed
        body = c.get("/admin/health").json()
        assert body["status"] == "critical" and body["backlog"]["level"] == "warning"
        assert [s["source"] for s in body["silent"]] == ["lab"]
    with watched_api.client("sender", source="lab") as c:
        assert c.get("/admin/health").status_code == 403
