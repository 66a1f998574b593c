"""The operators' round: an admin finds the failed imports, fixes the cause and reruns them,
with the CLI in-process (its Prefect flow run as plain functions: no server), the admin API
and pipelines/, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from contextlib import nullcontext

import pytest
from sqlalchemy import select

import cli
import flows
from dossiers.schema import audit_log, imports
from pipelines.filters import build_filter
from pipelines.intake import Received, intake
from pipelines.ledger import ImportFilter, claim_batch
from pipelines.process import Context, drain
from pipelines.report import count_imports, import_stats, list_imports
from pipelines.resilient import process_or_defer
from pipelines.settings import load_settings
from tests.test_admin import BAD, UNKNOWN
from tests.test_api import api  # noqa: F401 (a fixture)
from tests.test_pipeline import NIR_2, make_patient, oru

# Filed, with a warning: a debugging message (MSH-11 'D') read from a file is filed all the
# same, and said so.
DEBUGGING = oru("W1", value="6.2", filler="CMD-2002").replace(b"|P|2.5|", b"|D|2.5|")


def run(capsys, *argv: str) -> tuple[int, str, str]:  # noqa: ANN001
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def no_prefect(monkeypatch):  # noqa: ANN001, ANN201
    """The CLI's flows run as the plain functions they wrap (what Prefect would call)."""
    monkeypatch.setattr(cli, "_prefect_api", nullcontext)
    monkeypatch.setattr(flows, "rerun_imports", flows.rerun_imports.fn)
    monkeypatch.setattr(flows, "process_batch", flows.process_batch.fn)


@pytest.fixture
def store(home, database_url, monkeypatch, no_prefect):  # noqa: ANN001, ANN201
    """The CLI's store (SQLite, PostgreSQL): one dossier; a deposited import, one with a
    warning, a quarantined one (no dossier yet) and a failed one (not a number)."""
    monkeypatch.setenv("DMP_DATABASE_URL", database_url)
    ctx = Context.from_settings(load_settings())
    make_patient(ctx)
    ids = _ingest(ctx, oru("M1"), DEBUGGING, oru("M2", local_id="LAB00077", **UNKNOWN),
                  oru("M3", extra_obx=BAD))
    yield ctx, ids
    ctx.engine.dispose()


def _ingest(ctx: Context, *blobs: bytes, source: str = "lab") -> list[int]:  # noqa: ANN001
    ids = [i for r in intake(ctx.engine, ctx.archive,
                             [Received(b, source, "file", file_name=f"m{n}.hl7")
                              for n, b in enumerate(blobs)]) for i in r.message_ids]
    drain(ctx)
    return ids


def _audit(ctx: Context) -> list[tuple]:
    with ctx.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(
            select(audit_log.c.actor, audit_log.c.action, audit_log.c.import_id,
                   audit_log.c.reason).order_by(audit_log.c.id))]


def test_a_rerun_from_the_cli_is_in_the_audit_trail(store, capsys) -> None:  # noqa: ANN001
    ctx, (_, _, quar, fail) = store
    code, _, _ = run(capsys, "imports", "rerun", str(fail), "--as", "carol",
                     "--reason", "ticket 4521: glucose fixed upstream")
    assert code == 0
    assert _audit(ctx)[-1] == ("carol", "import.rerun", fail,
                               "ticket 4521: glucose fixed upstream")
    code, _, _ = run(capsys, "imports", "rerun", "--status", "quarantined", "--code",
                     "IDENTITY_UNKNOWN_PATIENT", "--as", "dave")
    assert code == 0 and _audit(ctx)[-1] == ("dave", "import.rerun", quar, None)
    code, _, _ = run(capsys, "imports", "rerun", str(quar), str(fail), "--as", "erin")
    with ctx.engine.connect() as conn:
        last = conn.execute(select(audit_log).order_by(audit_log.c.id.desc())).first()
    assert (last.actor, last.action, last.details) == (
        "erin", "import.rerun", {"imports": [quar, fail], "count": 2})
    code, out, _ = run(capsys, "imports", "show", str(fail), "--json")
    assert [a["actor"] for a in json.loads(out)["audit"]] == ["carol"]


def test_a_rerun_that_fails_again_says_which_and_why(store, capsys) -> None:  # noqa: ANN001
    ctx, (dep, _, quar, fail) = store
    make_patient(ctx, NIR_2, family="Santoni", given="Ange", birth_date="1988-10-02",
                 sex="M")  # the cause of the quarantine fixed; the failed one is not
    code, out, _ = run(capsys, "imports", "rerun", str(quar), str(fail), str(dep), "--json")
    result = json.loads(out)
    assert code == 0 and result["outcomes"] == {"deposited": 1, "failed": 1}
    assert [(r["id"], r["status"], r["error_code"], r["error_location"])
            for r in result["results"]] == [(quar, "deposited", None, None),
                                             (fail, "failed", "OBX_BAD_NUMBER", "OBX[8]-5")]
    code, out, _ = run(capsys, "imports", "rerun", str(fail))
    assert code == 0 and f"import {fail} failed again: OBX_BAD_NUMBER at OBX[8]-5" in out


def test_rerun_outcomes_are_the_ledger_s_when_the_service_took_the_rows(  # noqa: ANN001
        store, monkeypatch) -> None:
    """The service's worker claims the reopened rows before the rerun flow does (it is
    woken by the same ledger): the flow processes nothing itself, yet its answer must say
    what became of each import, not 'nothing processed'."""
    ctx, (_, _, _, fail) = store
    service = Context.from_settings(load_settings(), trigger="serve", worker="host/1")
    planned = flows.process_batch

    def service_first(ids: list[int], trigger: str) -> dict[str, int]:
        assert claim_batch(service.engine, limit=10, worker=service.worker, ids=ids) == ids
        done = planned(ids, trigger)  # the flow's own claim finds nothing left
        assert done == {}
        return done

    monkeypatch.setattr(flows, "process_batch", service_first)
    result = flows.rerun_imports(ids=[fail], actor="carol")
    assert result["outcomes"] == {"processing": 1}
    assert result["results"][0]["id"] == fail
    assert process_or_defer(service, [fail]) == {"failed": 1}  # the service's worker
    service.engine.dispose()


def test_list_pages_through_thousands_and_says_how_many_more(ctx) -> None:  # noqa: ANN001
    ids = [i for r in intake(ctx.engine, ctx.archive,
                             [Received(f"pas un message {n}".encode(), "scanner", "file",
                                       file_name=f"f{n}.txt") for n in range(1200)])
           for i in r.message_ids]
    drain(ctx)
    flt = ImportFilter(error_code="UNKNOWN_FORMAT")
    assert count_imports(ctx.engine, flt) == 1200
    seen: list[int] = []
    for offset in range(0, 1200, 500):
        seen += [r["id"] for r in list_imports(ctx.engine, flt, sort="id", limit=500,
                                               offset=offset)]
    assert seen == ids  # every one once, in order
    assert list_imports(ctx.engine, flt, limit=10, offset=1200) == []


def test_list_says_when_more_match_than_shown(store, capsys) -> None:  # noqa: ANN001
    _, (dep, warned, quar, fail) = store
    code, out, _ = run(capsys, "imports", "list", "--limit", "3")
    assert code == 0 and "Imports 1-3 of 4" in out and "1 more: --offset 3" in out
    code, out, _ = run(capsys, "imports", "list", "--limit", "3", "--offset", "3", "--json")
    assert [r["id"] for r in json.loads(out)] == [dep]
    code, out, _ = run(capsys, "imports", "list", "--offset", "-1")
    assert code == 1
    code, out, _ = run(capsys, "imports", "list", "--file", "M3.HL7", "--json")
    assert [r["id"] for r in json.loads(out)] == [fail]


def test_imports_filed_with_warnings_are_found_and_counted(store, capsys) -> None:  # noqa: ANN001
    ctx, (dep, warned, quar, fail) = store
    assert [r["id"] for r in list_imports(ctx.engine, ImportFilter(warnings=True))] == [warned]
    assert import_stats(ctx.engine)["with_warnings"] == 1
    code, out, _ = run(capsys, "imports", "list", "--warnings", "--status", "deposited",
                       "--json")
    rows = json.loads(out)
    assert code == 0 and [r["id"] for r in rows] == [warned]
    assert "MSH-11" in rows[0]["warnings"][0]
    code, out, _ = run(capsys, "imports", "stats")
    assert "1 with warnings" in out


def test_rerun_of_an_id_not_in_the_ledger_exits_1_after_the_others(store, capsys) -> None:  # noqa: ANN001
    ctx, (_, _, _, fail) = store
    code, out, err = run(capsys, "imports", "rerun", str(fail), "987654")
    assert code == 1 and err == "dmp-ingest: no import 987654\n"
    assert "outcomes: 1 failed" in out  # the known one was rerun all the same


def test_rerun_of_an_import_whose_archive_is_gone_exits_1(store, capsys) -> None:  # noqa: ANN001
    ctx, (_, _, quar, fail) = store
    with ctx.engine.connect() as conn:
        sha = conn.execute(select(imports.c.sha256).where(imports.c.id == fail)).scalar_one()
    ctx.archive.path(sha).unlink()
    for dry in ((), ("--dry-run",)):
        code, out, err = run(capsys, "imports", "rerun", str(quar), str(fail), *dry)
        assert code == 1, dry
        assert err == f"dmp-ingest: cannot reprocess {fail}: archived object missing or " \
            "corrupt\n"
        assert f"import {fail} cannot be reprocessed: archived object missing" in out
    code, _, _ = run(capsys, "imports", "rerun", str(quar))  # the others: still 0
    assert code == 0


def test_admin_api_counts_pages_with_a_total_and_audits_reruns(api) -> None:  # noqa: ANN001, F811
    ctx = api.ctx
    make_patient(ctx)
    dep, warned, quar, fail = _ingest(ctx, oru("M1"), DEBUGGING,
                                      oru("M2", local_id="LAB00077", **UNKNOWN),
                                      oru("M3", extra_obx=BAD), source="labm")
    with api.client("admin", subject="alice") as c:
        stats = c.get("/admin/imports/stats", params={"source": "labm"}).json()
        assert stats["by_status"] == {"deposited": 2, "failed": 1, "quarantined": 1}
        assert [(r["error_code"], r["count"]) for r in stats["by_code"]] == [
            ("IDENTITY_UNKNOWN_PATIENT", 1), ("OBX_BAD_NUMBER", 1)]
        assert stats["with_warnings"] == 1
        r = c.get("/admin/imports/stats", params={"since": "last week"})
        assert (r.status_code, r.json()["error"]) == (400, "BAD_FILTER")
        page = c.get("/admin/imports", params={"limit": 3, "offset": 1, "sort": "id"}).json()
        assert [r["id"] for r in page["imports"]] == [warned, quar, fail]
        assert page["total"] == 4
        warned_only = c.get("/admin/imports", params={"warnings": "true"}).json()
        assert [r["id"] for r in warned_only["imports"]] == [warned]
        r = c.post("/admin/imports/rerun", json={"filter": {"code": "OBX_BAD_NUMBER"},
                                                 "wait": True, "reason": "ticket 77"})
        done = r.json()
        assert done["outcomes"] == {"failed": 1}
        assert [(x["id"], x["error_code"]) for x in done["results"]] == [
            (fail, "OBX_BAD_NUMBER")]
        r = c.post("/admin/imports/rerun", json={"filter": {"code": "IDENTITY_NOT_FOUND"}})
        assert (r.status_code, r.json()["error"]) == (400, "NOTHING_TO_RERUN")
        assert "IDENTITY_NOT_FOUND" in r.json()["message"]
    assert _audit(ctx)[-1] == ("alice", "import.rerun", fail, "ticket 77")


def test_each_failure_says_what_to_do(store, capsys) -> None:  # noqa: ANN001
    ctx, (dep, _, quar, fail) = store
    code, out, _ = run(capsys, "imports", "show", str(quar))
    assert "what to do: create the patient's dossier (dossier create)" in out
    code, out, _ = run(capsys, "imports", "list", "--json", "--sort", "id")
    advice = {r["id"]: r["advice"] for r in json.loads(out)}
    assert advice[dep] is None and "imports edit ID" in advice[fail]
    code, out, _ = run(capsys, "imports", "stats", "--json")
    by_code = {r["error_code"]: r["advice"] for r in json.loads(out)["by_code"]}
    assert by_code["IDENTITY_UNKNOWN_PATIENT"] == advice[quar]


def test_the_advice_table_names_codes_that_exist() -> None:
    """A misspelt code in the table would never match: every exact code and prefix it names
    is one the code base produces, and every code an ACK can carry gets specific advice."""
    from normalizers.tabledata import read_csv_rows
    from pipelines import advice as module
    from tests.conftest import ROOT

    source = "\n".join(p.read_text(encoding="utf-8")
                       for d in ("parsers", "normalizers", "pipelines", "dossiers",
                                 "connectors")
                       for p in (ROOT / d).rglob("*.py"))
    for row in read_csv_rows(ROOT / "pipelines" / "tables" / "error_advice.csv"):
        code = row["code"].rstrip("*")
        if code:
            assert f'"{code}' in source, row["code"]
    default = module.advice("NOT_A_CODE_OF_OURS")
    for code in ("FOLDER_FILE_TOO_LARGE", "FOLDER_EMPTY_FILE", "S3_EMPTY_OBJECT",
                 "MLLP_UNKNOWN_SENDER"):  # refused at reception: cannot be rerun, say so
        assert "cannot be rerun" in module.advice(code), code
    for row in read_csv_rows(ROOT / "pipelines" / "tables" / "ack_codes.csv"):
        code = row["error_code"]
        if code != "*" and f'"{code}"' in source:  # '*' is the default itself
            assert module.advice(code) != default, code


LOCAL_GLUCOSE = "OBX|4|NM|ZZGLU^Glycémie locale^L||5.1|mmol/L|3.9-5.8|N|||F"


def test_a_renamed_source_keeps_its_settings_for_what_came_in_before(tmp_path) -> None:
    (tmp_path / "dmp.toml").write_text(
        '[sources.cerballiance-lyon]\nsending_application = "SIL-LAB"\n'
        'timezone = "America/Cayenne"\ncharset = "iso-8859-15"\n'
        '[renamed_sources]\n"labm-lyon" = "cerballiance-lyon"\n', encoding="utf-8")
    settings = load_settings(env={"DMP_HOME": str(tmp_path)})
    assert settings.current_source("labm-lyon") == "cerballiance-lyon"
    assert settings.source_zone("labm-lyon") == "America/Cayenne"
    assert settings.fallback_charset("labm-lyon") == "iso-8859-15"
    assert settings.source_zone("another") is None
    env = {"DMP_HOME": str(tmp_path), "DMP_RENAMED_SOURCES": "a=b,b=a"}
    assert load_settings(env=env).current_source("a") == "b"  # a cycle ends
    from pipelines.settings import SettingsError

    for bad in ("a", "a=a", "=b"):
        with pytest.raises(SettingsError):
            load_settings(env={"DMP_HOME": str(tmp_path), "DMP_RENAMED_SOURCES": bad})


def test_rerun_after_a_source_was_renamed(ctx) -> None:  # noqa: ANN001
    """An MLLP sender's source renamed in the settings while one of its imports waited in
    quarantine: the dry run says so, and once the rename is declared the rerun reads it
    with the new id's settings (here: its codes must map to LOINC)."""
    import dataclasses

    from pipelines.rerun import dry_run
    from pipelines.settings import Source
    from tests.test_admin import rerun

    (imp,) = [i for r in intake(ctx.engine, ctx.archive, [Received(
        oru("R1", local_id="LAB00077", extra_obx=LOCAL_GLUCOSE, **UNKNOWN), "labm-lyon",
        "mllp")]) for i in r.message_ids]
    drain(ctx)
    renamed = dataclasses.replace(ctx.settings, sources=(Source("cerballiance-lyon"),),
                                  require_mapping=frozenset({"cerballiance-lyon"}))
    plan = dry_run(ctx.engine, ctx.archive, [imp], renamed)
    assert plan["reopen"] == [imp] and len(plan["notes"]) == 1
    assert "'labm-lyon' (1 import(s)) is not declared" in plan["notes"][0]
    assert "[renamed_sources]" in plan["notes"][0]

    renamed = dataclasses.replace(renamed, renamed_sources={"labm-lyon": "cerballiance-lyon"})
    assert dry_run(ctx.engine, ctx.archive, [imp], renamed)["notes"] == []
    make_patient(ctx, NIR_2, family="Santoni", given="Ange", birth_date="1988-10-02",
                 sex="M")
    done = rerun(dataclasses.replace(ctx, settings=renamed), [imp])
    assert done["outcomes"] == {"failed": 1}
    info = show_import_of(ctx, imp)
    assert (info["error_code"], info["error_location"]) == ("CODE_UNMAPPED", "OBX[8]-3")
    assert "cerballiance-lyon" in info["error_message"]
    # The admin filters by the name the source has now: what came in under the old id is
    # found, under both names (the ledger keeps the id it came in under).
    for name in ("cerballiance-lyon", "labm-lyon"):
        flt = build_filter(ctx.engine, source=name, settings=renamed)
        assert [r["id"] for r in list_imports(ctx.engine, flt)] == [imp], name
    assert list_imports(ctx.engine, build_filter(ctx.engine, source="cerballiance-lyon")) == []
    chained = dataclasses.replace(renamed, renamed_sources={
        "labm-lyon": "cerballiance-lyon", "cerballiance-lyon": "cerballiance-aura"})
    flt = build_filter(ctx.engine, source="cerballiance-aura", settings=chained)
    assert flt.source_aliases == ("cerballiance-lyon", "labm-lyon")
    assert count_imports(ctx.engine, flt) == 1


def show_import_of(ctx: Context, import_id: int) -> dict:
    from pipelines.report import show_import

    return show_import(ctx.engine, import_id)


def test_a_sender_s_ticket_names_a_file_and_the_admin_finds_it(ctx) -> None:  # noqa: ANN001
    names = ["CR_2026_11_Lefèvre.hl7", "CRX2026X11.hl7", "cr_2026_12.hl7", "100%_ok.hl7",
             "autre.xml"]
    ids = dict(zip(names, (i for r in intake(ctx.engine, ctx.archive, [
        Received(f"pas un message {n}".encode(), "scanner", "folder", file_name=n)
        for n in names]) for i in r.message_ids), strict=True))

    def found(pattern: str) -> list[str]:
        flt = build_filter(ctx.engine, file=pattern)
        by_id = {v: k for k, v in ids.items()}
        return [by_id[r["id"]] for r in list_imports(ctx.engine, flt, sort="id")]

    assert found("CRX2026X11.hl7") == ["CRX2026X11.hl7"]
    assert found("CR_2026_*") == ["CR_2026_11_Lefèvre.hl7", "cr_2026_12.hl7"]  # '_' is '_'
    assert found("cr_2026_1?.hl7") == ["cr_2026_12.hl7"]
    assert found("100%*") == ["100%_ok.hl7"]
    assert found("*.xml") == ["autre.xml"]
    assert found("nothing*") == []
    assert build_filter(ctx.engine, file="  ").is_empty()


def test_a_failed_import_resent_corrected_points_to_its_resend(store, capsys) -> None:  # noqa: ANN001
    """The lab corrects the message and sends it again under the same file name: the failed
    one says so, so that the admin closes it instead of rerunning it forever."""
    ctx, (dep, _, quar, fail) = store
    (resent,) = [i for r in intake(ctx.engine, ctx.archive, [
        Received(oru("M3", value="6.4", filler="CMD-3003"), "lab", "file",
                 file_name="m3.hl7")]) for i in r.message_ids]
    (other,) = [i for r in intake(ctx.engine, ctx.archive, [
        Received(oru("M9", value="6.0"), "lab", "file", file_name="m9.hl7")])
        for i in r.message_ids]
    drain(ctx)
    code, out, _ = run(capsys, "imports", "show", str(fail), "--json")
    assert [(r["id"], r["status"]) for r in json.loads(out)["resent_as"]] == [
        (resent, "deposited")]
    code, out, _ = run(capsys, "imports", "show", str(fail))
    assert f"import {resent} (deposited)" in out
    assert f"imports discard {fail} --reason 'resent as import {resent}'" in out
    code, out, _ = run(capsys, "imports", "show", str(quar), "--json")
    assert json.loads(out)["resent_as"] == []  # m2.hl7 was not sent again
    code, out, _ = run(capsys, "imports", "show", str(dep), "--json")
    assert json.loads(out)["resent_as"] == [] and other  # filed: nothing to point to


def test_a_big_rerun_names_the_first_failures_and_counts_the_rest(store, capsys) -> None:  # noqa: ANN001
    ctx, _ = store
    _ingest(ctx, *(oru(f"B{n}", filler=f"CMD-{n}", extra_obx=BAD) for n in range(55)))
    code, out, _ = run(capsys, "imports", "rerun", "--code", "OBX_BAD_NUMBER")
    assert code == 0 and "outcomes: 56 failed" in out
    assert out.count("failed again: OBX_BAD_NUMBER at OBX[8]-5") == cli.RERUN_LINES
    assert f"... and {56 - cli.RERUN_LINES} more (--json lists them all" in out


def test_a_code_no_import_ever_had_is_said_not_shown_as_nothing(store, capsys) -> None:  # noqa: ANN001
    """The admin types the code from a ticket (IDENTITY_NOT_FOUND) where the ledger says
    IDENTITY_UNKNOWN_PATIENT: an empty list and 'rerun of 0 import(s)' hid the typo."""
    code, out, err = run(capsys, "imports", "rerun", "--code", "IDENTITY_NOT_FOUND")
    assert code == 1 and "no import has error code IDENTITY_NOT_FOUND" in err
    assert err.count("\n") == 1 and out == ""
    code, out, err = run(capsys, "imports", "list", "--code", "identity_not_found", "--json")
    assert code == 0 and json.loads(out) == [] and "IDENTITY_NOT_FOUND" in err
    code, out, err = run(capsys, "imports", "list", "--code", "OBX_BAD_NUMBER", "--status",
                         "deposited")  # a code seen, no row in this filter: nothing to say
    assert code == 0 and err == ""
    code, out, err = run(capsys, "imports", "rerun", "--code", "IDENTITY_UNKNOWN_PATIENT",
                         "--dry-run")
    assert code == 0 and "would reopen 1" in out
