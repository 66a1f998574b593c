"""Operators' round 6 (second pass): every failure code the pipeline records, walked from the
operator's side (find it, read what to do, fix, rerun). The CLI in-process (its Prefect
flows as plain functions), the admin API in-process; SQLite, and PostgreSQL for the code
filter's LIKE.

What the round found: the quarantines a person must resolve on a PDF report
(IDENTITY_NOT_FOUND, IDENTITY_UNCERTAIN, PDF_EMBEDDED_CDA_PATIENT_MISMATCH) and a CDA in
OBX-5 naming another patient than PID-3 (CISIS_PATIENT_MISMATCH) got the default advice
("fix the cause, then rerun": a rerun quarantines them again) or their family's, never the
`imports assign` that resolves them; a PDF with no text (REPORT_EMPTY) was told to rerun;
every `imports assign` / `imports discard` an advice named lacked the --reason the CLI
requires; PDF_TOO_LARGE / PDF_PAGE_TOO_LARGE were told to raise settings that do not exist.
`--code 'CDA_*'` matched nothing (one code at a time). CODE_UNMAPPED named one local code
and '(and N more)' results: one rerun per code of a new panel. A store outage in the middle
of a command was a traceback and exit 1 (CLI), a 500 INTERNAL_ERROR (API).
"""

from __future__ import annotations

import json
import re
import shlex

import pytest
from sqlalchemy import func, select

import cli
from dossiers.schema import entries
from pipelines import advice as advice_module
from pipelines.intake import Received, intake
from pipelines.process import Context, drain
from pipelines.settings import load_settings
from tests.conftest import migrated_sqlite
from tests.test_api import api  # noqa: F401 (a fixture)
from tests.test_operators_round import no_prefect, run  # noqa: F401 (a fixture)
from tests.test_pipeline import NIR, make_patient


@pytest.fixture
def cli_store(home, sqlite_template, tmp_path, monkeypatch, no_prefect):  # noqa: ANN001, ANN201, F811
    """The CLI's store on SQLite, one dossier (Hélène Lefèvre), nothing received yet."""
    monkeypatch.setenv("DMP_DATABASE_URL",
                       migrated_sqlite(sqlite_template, tmp_path / "store.sqlite3"))
    ctx = Context.from_settings(load_settings())
    make_patient(ctx)
    yield ctx
    ctx.engine.dispose()


def _receive(ctx: Context, data: bytes, source: str, file_name: str) -> list[int]:
    ids = [i for r in intake(ctx.engine, ctx.archive, [Received(data, source, "file",
                                                                file_name=file_name)])
           for i in r.message_ids]
    drain(ctx)
    return ids


def _entries(ctx: Context) -> int:
    with ctx.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(entries)).scalar_one()


# -- quarantines a person resolves: the advice names the command that does it -----------------
QUARANTINES_RESOLVED_BY_ASSIGN = ("IDENTITY_NOT_FOUND", "IDENTITY_UNCERTAIN",
                                  "PDF_EMBEDDED_CDA_PATIENT_MISMATCH", "CISIS_PATIENT_MISMATCH",
                                  "IDENTITY_UNKNOWN_PATIENT", "IDENTITY_AMBIGUOUS",
                                  "IDENTITY_CONFLICT", "IDENTITY_TRAITS_MISMATCH",
                                  "IDENTITY_INS_INVALID_KEY", "CORRECTION_OTHER_DOSSIER")


@pytest.mark.parametrize("code", QUARANTINES_RESOLVED_BY_ASSIGN)
def test_a_quarantine_a_person_resolves_is_told_to_assign_it(code: str) -> None:
    """Each of these quarantines waits for a person to say which dossier; a rerun alone
    quarantines it again. The advice names `imports assign`, not 'fix the cause, rerun'."""
    text = advice_module.advice(code)
    assert text != advice_module.advice("NOT_A_CODE_OF_OURS"), code
    assert "imports assign ID --patient" in text, code


def test_a_pdf_with_no_text_is_not_told_to_rerun() -> None:
    """REPORT_EMPTY: not a line of text, even by OCR; the same bytes read again give nothing."""
    text = advice_module.advice("REPORT_EMPTY")
    assert "readable" in text and "imports discard ID" in text
    assert "A rerun reads the same pages again" in text


_PLACEHOLDERS = {"ID": "4521", "FILE": "/tmp/cr.pdf", "SURVIVOR": "12", "MERGED": "13",
                 "...": "x", "CODE_UNMAPPED": "CODE_UNMAPPED"}


def _commands(text: str) -> list[list[str]]:
    """The `dmp-ingest` commands an advice names, in parentheses ('imports assign ID
    --patient ...'), as argument lists with their placeholders filled in."""
    found = []
    for inside in re.findall(r"\(((?:dmp-ingest )?(?:imports|dossier|check)\b[^()]*)\)", text):
        for part in inside.split("; "):  # 'dossier merge ...; --dry-run first shows...'
            argv = shlex.split(part.removeprefix("dmp-ingest "))
            if argv[0] in ("imports", "dossier", "check"):
                found.append([_PLACEHOLDERS.get(a, a) for a in argv])
    return found


def test_every_command_an_advice_names_is_one_the_cli_takes() -> None:
    """An operator copies the command from the advice: each one (its sub-command and
    options) must be one `dmp-ingest` parses, with its placeholders filled in."""
    from normalizers.tabledata import read_csv_rows
    from tests.conftest import ROOT

    parser = cli.build_parser()
    named = 0
    for row in read_csv_rows(ROOT / "pipelines" / "tables" / "error_advice.csv"):
        for argv in _commands(row["advice"]):
            named += 1
            try:
                parser.parse_args(argv)
            except SystemExit:
                pytest.fail(f"{row['code']}: advice names {' '.join(argv)!r}, which "
                            "dmp-ingest does not take")
    assert named > 40


def test_every_setting_an_advice_names_is_one_the_settings_read() -> None:
    """'raise X in the settings' is followed by an operator: every setting an advice names
    (snake_case, or its DMP_ environment variable) is one pipelines/settings.py reads."""
    import dataclasses

    from normalizers.tabledata import read_csv_rows
    from pipelines import settings as module
    from tests.conftest import ROOT

    source = (ROOT / "pipelines" / "settings.py").read_text(encoding="utf-8")
    fields = {f.name for cls in (module.Settings, module.Source, module.FolderSource,
                                 module.BucketSource, module.ListenerSettings)
              for f in dataclasses.fields(cls)}
    for row in read_csv_rows(ROOT / "pipelines" / "tables" / "error_advice.csv"):
        for word in re.findall(r"\b[a-z]+(?:_[a-z0-9]+)+\b", row["advice"]):
            assert word in fields or f'pick("{word}"' in source, (row["code"], word)
        for var in re.findall(r"\bDMP_[A-Z0-9_]+\b", row["advice"]):
            assert f'pick("{var[4:].lower()}"' in source, (row["code"], var)


@pytest.mark.parametrize("code", ["PDF_TOO_LARGE", "PDF_PAGE_TOO_LARGE"])
def test_a_pdf_over_a_fixed_limit_is_not_told_to_raise_a_setting(code: str) -> None:
    """PDF_TOO_LARGE (50 MiB, or streams inflating past the parser's bound) and
    PDF_PAGE_TOO_LARGE (a page too big to rasterise) are limits of the parser no setting
    changes: 'raise the limit in the settings and rerun' (PDF_TOO_*) sent the operator
    looking for a setting that is not there, and a page too large was told to ask for the
    'complete, unaltered' file. Only the page count has a setting (pdf_max_pages)."""
    text = advice_module.advice(code)
    assert "no setting raises it" in text and "a rerun fails the same way" in text
    assert "pdf_max_pages" in advice_module.advice("PDF_TOO_MANY_PAGES")


def test_a_report_without_patient_block_is_assigned_not_rerun(cli_store, capsys) -> None:  # noqa: ANN001
    """A radiology centre's report printing no patient block is quarantined
    IDENTITY_NOT_FOUND: `imports show` tells the operator to look at it and assign it; a
    rerun quarantines it again (nothing filed), the assignment files it once, and a rerun
    after that leaves it alone."""
    from samples import generate_pdf as g

    blocks = [("centre", "CABINET DE RADIOLOGIE DU VIEUX-PORT"), ("title", "ÉCHOGRAPHIE "
              "ABDOMINALE"), ("head", "CONCLUSION :"), ("body", "Foie de taille normale, "
              "sans lésion focale.")]
    data = g.write_pdf(g.layout(blocks), title="Compte rendu")
    [pid] = _receive(cli_store, data, "imagerie-vieux-port", "CR_20261126_0931.pdf")
    code, out, _ = run(capsys, "imports", "show", str(pid), "--json")
    shown = json.loads(out)
    assert (code, shown["status"], shown["error_code"]) == (0, "quarantined",
                                                            "IDENTITY_NOT_FOUND")
    assert "imports assign ID --patient" in shown["advice"]
    code, out, _ = run(capsys, "imports", "rerun", str(pid), "--json")
    assert json.loads(out)["results"][0]["error_code"] == "IDENTITY_NOT_FOUND"
    assert _entries(cli_store) == 0
    code, out, err = run(capsys, "imports", "assign", str(pid), "--patient", NIR,
                         "--reason", "patiente identifiée sur le compte rendu papier")
    assert code == 0, err
    filed = _entries(cli_store)
    assert filed == 1
    code, out, _ = run(capsys, "imports", "rerun", str(pid), "--json")
    assert json.loads(out)["left_alone"][0]["reason"] == "deposited: nothing to do"
    assert _entries(cli_store) == filed


# -- a family of codes: 'CDA_*' ----------------------------------------------------------------
NO_RECORD_TARGET = ('<?xml version="1.0" encoding="UTF-8"?><ClinicalDocument '
                    'xmlns="urn:hl7-org:v3"><id root="1.2.250.1.213.1.1.9" extension="CR-7781"/>'
                    '<title>Compte rendu de biologie médicale</title></ClinicalDocument>'
                    ).encode()
TRUNCATED = ('<?xml version="1.0" encoding="UTF-8"?><ClinicalDocument xmlns="urn:hl7-org:v3">'
             '<title>Compte rendu d\'hospitalisation — Hôpital Édouard-Herriot</ti').encode()


def test_a_family_of_codes_is_listed_and_rerun_as_one(cli_store, capsys) -> None:  # noqa: ANN001
    """The Clinique des Lilas fixed its CDA generator: the operator reruns everything of it
    that failed as CDA (CDA_NO_RECORD_TARGET, CDA_NOT_XML...) with one `--code 'CDA_*'`, as
    the advice table groups them; its HL7v2 failure is left alone. 'CDA_*' matched nothing
    (the filter took it as one code) and rerun said no import had it."""
    from tests.test_admin import BAD
    from tests.test_pipeline import oru

    lilas = "clinique-des-lilas"
    [norec] = _receive(cli_store, NO_RECORD_TARGET, lilas, "CR-7781.xml")
    [cut] = _receive(cli_store, TRUNCATED, lilas, "CRH-0412.xml")
    [hl7] = _receive(cli_store, oru("LIL-3", extra_obx=BAD), lilas, "ORU-LIL-3.hl7")
    code, out, _ = run(capsys, "imports", "list", "--code", "cda_*", "--sort", "id", "--json")
    assert code == 0
    assert [(r["id"], r["error_code"]) for r in json.loads(out)] == [
        (norec, "CDA_NO_RECORD_TARGET"), (cut, "CDA_NOT_XML")]
    code, out, _ = run(capsys, "imports", "list", "--code", "CDA_NO_*", "--json")
    assert [r["id"] for r in json.loads(out)] == [norec]  # '_' is no wildcard: not CDA_NOT_
    code, out, _ = run(capsys, "imports", "stats", "--code", "CDA_*", "--json")
    assert json.loads(out)["by_status"] == {"failed": 2}
    code, out, err = run(capsys, "imports", "rerun", "--code", "CDA_*", "--source", lilas,
                         "--json")
    rerun = json.loads(out)
    assert code == 0, err
    assert sorted(rerun["reopen"]) == [norec, cut]
    assert [(r["id"], r["error_code"]) for r in rerun["results"]] == [
        (norec, "CDA_NO_RECORD_TARGET"), (cut, "CDA_NOT_XML")]
    code, out, _ = run(capsys, "imports", "show", str(hl7), "--json")
    assert len(json.loads(out)["attempts"]) == 1  # not rerun
    code, _, err = run(capsys, "imports", "rerun", "--code", "PDF_*")
    assert code == 1 and "no import has error code PDF_*" in err


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_family_of_codes_on_postgresql(ctx) -> None:  # noqa: ANN001
    """The same patterns on PostgreSQL, whose LIKE is case-sensitive and takes the escape as
    SQLite does: the family, the exact code, '_' a plain character, nothing seen."""
    from pipelines.filters import build_filter
    from pipelines.report import code_seen, list_imports
    from pipelines.rerun import select_ids

    [norec] = _receive(ctx, NO_RECORD_TARGET, "clinique-des-lilas", "CR-7781.xml")
    [cut] = _receive(ctx, TRUNCATED, "clinique-des-lilas", "CRH-0412.xml")
    for pattern, wanted in (("cda_*", [norec, cut]), ("CDA_NOT_XML", [cut]),
                            ("CDA_NO_*", [norec]), ("CDA_NOT_?ML", [cut]), ("PDF_*", [])):
        flt = build_filter(ctx.engine, code=pattern)
        assert select_ids(ctx.engine, flt) == wanted, pattern
        assert sorted(r["id"] for r in list_imports(ctx.engine, flt)) == wanted, pattern
        assert code_seen(ctx.engine, flt.error_code) is bool(wanted), pattern


# -- a new panel without its mappings: every code in one message ------------------------------
NEW_PANEL = "\r".join([
    "OBX|4|NM|ZZGLU^Glycémie locale^L||5.1|mmol/L|3.9-5.8|N|||F",
    "OBX|5|NM|ZZCRE^Créatinine locale^L||72|µmol/L|45-90|N|||F",
    "OBX|6|NM|ZZCRE^Créatinine locale^L||75|µmol/L|45-90|N|||F|||20240310083000+0100",
    "OBX|7|NM|ZZDFG^DFG CKD-EPI^L||98|mL/min/1.73m2|>60|N|||F"])


def test_an_unmapped_panel_names_every_code_so_one_rerun_files_it(cli_store, capsys, tmp_path,  # noqa: ANN001
                                                                 monkeypatch) -> None:
    """Labo Lyon starts a renal panel of three local codes its mapping table lacks (one
    repeated, the previous value of a cumulative report). The failure named the first code
    and '(and 3 more)' results: the operator mapped ZZGLU, reran, failed on ZZCRE, and so
    on. It names each code once with where it was read, so the table is completed at once
    and one rerun by code files the message."""
    mappings = tmp_path / "mappings"
    mappings.mkdir()
    table = mappings / "SIL-LAB__LABO-LYON.csv"
    table.write_text("source,coding_system,local_code,loinc,display\n", encoding="utf-8")
    monkeypatch.setenv("DMP_MAPPINGS_DIR", str(mappings))
    monkeypatch.setenv("DMP_REQUIRE_MAPPING", "lab")
    from tests.test_pipeline import oru

    ctx = Context.from_settings(load_settings())
    try:
        [imp] = _receive(ctx, oru("LYON-REN-1", extra_obx=NEW_PANEL), "lab", "ORU-REN-1.hl7")
    finally:
        ctx.engine.dispose()
    code, out, _ = run(capsys, "imports", "show", str(imp), "--json")
    shown = json.loads(out)
    assert (shown["error_code"], shown["error_location"]) == ("CODE_UNMAPPED", "OBX[8]-3")
    assert shown["error_message"] == (
        "OBX[8]-3: local code ZZGLU (L) has no LOINC mapping for source lab; nor have "
        "ZZCRE (L) at OBX[9]-3, ZZDFG (L) at OBX[11]-3")
    with table.open("a", encoding="utf-8") as fh:
        fh.write("SIL-LAB|LABO-LYON,L,ZZGLU,14749-6,Glucose\n"
                 "SIL-LAB|LABO-LYON,L,ZZCRE,14682-9,Créatinine\n"
                 "SIL-LAB|LABO-LYON,L,ZZDFG,62238-1,DFG CKD-EPI\n")
    code, out, err = run(capsys, "imports", "rerun", "--code", "CODE_UNMAPPED", "--source",
                         "lab", "--json")
    assert code == 0, err
    assert json.loads(out)["outcomes"] == {"deposited": 1}


# -- the store going away in the middle of a bulk rerun ---------------------------------------
def test_a_store_outage_during_a_rerun_is_one_line_and_exit_3(cli_store, capsys,  # noqa: ANN001
                                                              monkeypatch) -> None:
    """PostgreSQL fails over while `imports rerun --code ...` reads back what became of the
    imports: the command printed a SQLAlchemy traceback (its SQL and parameters) and exit 1,
    which scripts took for a user error. It says the store went away, what to do, and exits
    3 (unavailable), as when the store is down from the start; the same command run again
    once the store answers does the job."""
    from sqlalchemy.exc import OperationalError

    from pipelines import rerun as rerun_module
    from tests.test_admin import BAD
    from tests.test_pipeline import oru

    [imp] = _receive(cli_store, oru("LYON-4410", extra_obx=BAD), "lab", "ORU-4410.hl7")

    def gone(*_a: object, **_k: object) -> dict:
        raise OperationalError("SELECT imports.id FROM imports", {},
                               ConnectionError("server closed the connection unexpectedly"))

    answering = rerun_module.rerun_outcomes
    monkeypatch.setattr(rerun_module, "rerun_outcomes", gone)
    code, out, err = run(capsys, "imports", "rerun", "--code", "OBX_BAD_NUMBER")
    assert code == 3 and out == ""
    assert err.startswith("dmp-ingest: the store became unreachable during the command "
                          "(OperationalError)") and err.count("\n") == 1
    assert "imports rerun --status received" in err and "SELECT" not in err
    monkeypatch.setattr(rerun_module, "rerun_outcomes", answering)  # the store is back
    code, out, err = run(capsys, "imports", "rerun", "--code", "OBX_BAD_NUMBER", "--json")
    assert code == 0, err
    assert [(r["id"], r["error_code"]) for r in json.loads(out)["results"]] == [
        (imp, "OBX_BAD_NUMBER")]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_admin_api_says_the_store_is_away_not_an_internal_error(api, monkeypatch) -> None:  # noqa: ANN001, F811
    """The console's list (GET /admin/imports) while PostgreSQL fails over answered 500
    INTERNAL_ERROR, which a script reports as a bug and does not retry; it is 503
    STORE_UNAVAILABLE with a Retry-After, as the push endpoint says of the same outage. Any
    other fault stays a 500."""
    from sqlalchemy.exc import OperationalError

    from api import admin

    def gone(*_a: object, **_k: object) -> list:
        raise OperationalError("SELECT imports.id FROM imports", {},
                               ConnectionError("server closed the connection unexpectedly"))

    def bug(*_a: object, **_k: object) -> list:
        raise KeyError("status")

    with api.client("admin", subject="odile.ferrand") as c:
        monkeypatch.setattr(admin, "count_imports", gone)
        r = c.get("/admin/imports", params={"status": "failed"})
        assert (r.status_code, r.json()["error"]) == (503, "STORE_UNAVAILABLE")
        assert r.headers["retry-after"] == "30" and "SELECT" not in r.text
        monkeypatch.setattr(admin, "count_imports", bug)
        r = c.get("/admin/imports", params={"status": "failed"})
        assert (r.status_code, r.json()["error"]) == (500, "INTERNAL_ERROR")
