"""`dmp-ingest imports ...`: arguments, output and exit codes (the logic is tested through
pipelines/ in test_admin.py). One test goes through the Prefect flow `rerun_imports`."""

from __future__ import annotations

import json

import pytest

import cli
from pipelines.intake import Received, intake
from pipelines.process import Context, drain
from pipelines.settings import load_settings
from tests.test_admin import BAD, UNKNOWN, _lab_batch
from tests.test_pipeline import NIR, make_patient, oru


def run(capsys, *argv: str) -> tuple[int, str, str]:  # noqa: ANN001
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _ctx() -> Context:
    return Context.from_settings(load_settings())


def _ingest(ctx: Context, *blobs: bytes, source: str = "lab") -> list[int]:
    ids = [i for r in intake(ctx.engine, ctx.archive,
                             [Received(b, source, "file", file_name=f"m{n}.hl7")
                              for n, b in enumerate(blobs)]) for i in r.message_ids]
    drain(ctx)
    return ids


@pytest.fixture
def store(home, database_url, monkeypatch):  # noqa: ANN001, ANN201
    """The CLI's store on SQLite and on PostgreSQL, with one deposited, one quarantined and one
    failed import."""
    monkeypatch.setenv("DMP_DATABASE_URL", database_url)
    ctx = _ctx()
    make_patient(ctx)
    ids = _ingest(ctx, oru("M1"), oru("M2", **UNKNOWN), oru("M3", extra_obx=BAD))
    yield ids
    ctx.engine.dispose()


def test_list_stats_show_discard_and_dry_run(store, capsys) -> None:  # noqa: ANN001
    dep, quar, fail = store
    code, out, _ = run(capsys, "imports", "list", "--status", "failed", "--source", "lab",
                       "--since", "1h", "--code", "OBX_BAD_NUMBER", "--json")
    assert code == 0 and [r["id"] for r in json.loads(out)] == [fail]
    code, out, _ = run(capsys, "imports", "list", "--patient", NIR, "--sort", "received")
    assert code == 0 and "deposited" in out and "failed" not in out
    code, out, _ = run(capsys, "imports", "stats", "--json")
    assert json.loads(out)["by_status"] == {"deposited": 1, "failed": 1, "quarantined": 1}
    code, out, _ = run(capsys, "imports", "stats")
    assert code == 0 and "OBX_BAD_NUMBER" in out

    code, out, _ = run(capsys, "imports", "show", str(fail))
    assert code == 0 and "OBX[8]-5" in out and "MSH|" not in out  # no raw unless asked
    code, out, _ = run(capsys, "imports", "show", str(fail), "--raw", "--as", "carol",
                       "--reason", "ticket 9", "--json")
    shown = json.loads(out)
    assert shown["raw"]["text"].startswith("MSH|") and shown["raw"]["format"] == "hl7v2"
    assert [(a["actor"], a["action"]) for a in shown["audit"]] == [("carol", "import.raw")]
    code, out, _ = run(capsys, "imports", "show", str(fail), "--raw")
    assert code == 0 and "\nPID|" in out

    code, out, _ = run(capsys, "imports", "rerun", "--dry-run", "--since", "1d", "--json")
    plan = json.loads(out)
    assert plan["reopen"] == [quar, fail] and plan["left_alone"][0]["ids"] == [dep]
    code, out, _ = run(capsys, "imports", "rerun", str(dep), "--dry-run")
    assert code == 0 and "deposited: nothing to do" in out

    code, out, _ = run(capsys, "imports", "discard", str(fail), "--reason", "resent")
    assert code == 0 and "discarded" in out
    code, out, _ = run(capsys, "imports", "list", "--status", "discarded", "--json")
    assert [r["discard_reason"] for r in json.loads(out)] == ["resent"]


def test_admin_mistakes_are_one_line_exit_1(store, capsys) -> None:  # noqa: ANN001
    dep, quar, fail = store
    for argv in (["imports", "list", "--since", "last tuesday"],
                 ["imports", "list", "--sort", "size"],
                 ["imports", "list", "--patient", "123456789012345"],
                 ["imports", "show", "999"],
                 ["imports", "show", "999", "--raw"],
                 ["imports", "rerun"],
                 ["imports", "assign", str(fail), "--patient", "1", "--reason", "x"],
                 ["imports", "discard", str(dep), "--reason", "x"],
                 ["imports", "edit", str(fail), "--from-file", "/nonexistent"]):
        code, _, err = run(capsys, *argv)
        assert code == 1 and err.count("\n") == 1 and "Traceback" not in err, argv


def test_rerun_assign_and_edit_through_the_prefect_flow(prefect_harness, home, capsys,  # noqa: ANN001
                                                        monkeypatch) -> None:
    tables = home / "mappings"
    tables.mkdir()
    monkeypatch.setenv("DMP_MAPPINGS_DIR", str(tables))
    monkeypatch.setenv("DMP_REQUIRE_MAPPING", "bulklab")
    ctx = _ctx()
    make_patient(ctx)
    failed = _ingest(ctx, *_lab_batch(20), source="bulklab")
    quar, bad = _ingest(ctx, oru("M2", **UNKNOWN), oru("M3", extra_obx=BAD))
    (tables / "bulklab.csv").write_text("coding_system,local_code,loinc,display\n"
                                        "L,ZZGLU,14743-9,Glucose capillaire\n", encoding="utf-8")

    code, out, _ = run(capsys, "imports", "rerun", "--status", "failed", "--source", "bulklab",
                       "--code", "CODE_UNMAPPED", "--json")
    result = json.loads(out)
    assert code == 0 and result["outcomes"] == {"deposited": 20}
    assert result["reopen"] == failed
    code, out, _ = run(capsys, "imports", "rerun", "--source", "bulklab")  # idempotent
    assert code == 0 and "left alone: 20 deposited" in out and "nothing processed" in out

    code, out, _ = run(capsys, "imports", "assign", str(quar), "--patient", NIR, "--reason",
                       "checked with the lab", "--as", "dana", "--json")
    assert code == 0 and json.loads(out)["outcomes"] in ({"deposited": 1}, {"duplicate": 1})

    fixed = home / "fixed.hl7"
    fixed.write_bytes(oru("M3", extra_obx=BAD.replace("||abc|", "||6.0|")))
    code, out, _ = run(capsys, "imports", "edit", str(bad), "--from-file", str(fixed),
                       "--reason", "typo", "--json")
    edited = json.loads(out)
    assert code == 0 and edited["outcomes"] == {"deposited": 1}
    code, out, _ = run(capsys, "imports", "show", str(bad), "--json")
    assert json.loads(out)["discard_reason"] == f"edited as import {edited['new_imports'][0]}"

    other = _ingest(ctx, oru("M7", filler="CMD-7", extra_obx=BAD))[0]
    editor = home / "editor.sh"
    editor.write_text('#!/bin/sh\nsed -i "s/||abc|/||6.1|/" "$1"\n', encoding="utf-8")
    editor.chmod(0o755)
    monkeypatch.setenv("EDITOR", str(editor))
    monkeypatch.delenv("VISUAL", raising=False)
    code, out, err = run(capsys, "imports", "edit", str(other), "--reason", "typo")
    assert code == 0 and "rerun: 1 deposited" in out, err
    ctx.engine.dispose()


def test_output_piped_into_a_reader_that_stops_is_no_traceback(monkeypatch) -> None:  # noqa: ANN001
    """`dmp-ingest imports show 32 --json | head` printed a BrokenPipeError traceback."""
    def closed(args):  # noqa: ANN001, ANN202
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(cli, "cmd_imports_stats", closed)
    assert cli.main(["imports", "stats", "--json"]) == cli.EXIT_BROKEN_PIPE
