"""Prefect flows and the `dmp-ingest` command, end to end (one Prefect harness per session:
the ``prefect_harness`` and ``home`` fixtures are in conftest.py)."""

from __future__ import annotations

import json
import subprocess
import sys

import cli
from tests.test_pipeline import NIR, oru


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:  # noqa: ANN001
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def create_patient(capsys) -> None:  # noqa: ANN001
    code, out, _ = run_cli(capsys, "dossier", "create", "--ins", NIR, "--family", "Lefèvre",
                           "--given", "Hélène", "--birth-date", "1979-03-28", "--sex", "F",
                           "--json")
    assert code == 0 and json.loads(out)["created"] == [1]


def test_ingest_twice_then_rerun_through_prefect(prefect_harness, home, capsys) -> None:  # noqa: ANN001
    folder = home / "drop"
    folder.mkdir()
    (folder / "results.hl7").write_bytes(oru("MSG-1") + oru("MSG-2", value="6.2", status="C"))
    (folder / "unknown.txt").write_bytes(oru("MSG-3", nir="188102B17295165", sex="M",
                                             family="SANTONI", given="Ange",
                                             birth="19881002", local_id="LAB00077",
                                             filler="CMD-2001"))
    (folder / "broken.hl7").write_bytes(oru(
        "MSG-4", extra_obx="OBX|4|NM|2345-7^Glucose^LN||abc|mmol/L|||||F"))
    create_patient(capsys)

    code, out, _ = run_cli(capsys, "ingest", str(folder), "--source", "lab", "--json")
    first = json.loads(out)
    assert code == 0
    assert {k: first[k] for k in ("received", "deposited", "duplicate", "failed",
                                  "quarantined")} == {
        "received": 4, "deposited": 2, "duplicate": 0, "failed": 1, "quarantined": 1}

    code, out, _ = run_cli(capsys, "ingest", str(folder), "--source", "lab", "--json",
                           "--strict")
    again = json.loads(out)
    assert again["duplicate"] == again["received"] == 4
    assert code == 0  # nothing new failed: the repeats are duplicates

    code, out, _ = run_cli(capsys, "dossier", "show", NIR, "--json")
    shown = json.loads(out)
    glucose = [e for e in shown["entries"] if e["code"] == "14749-6"]
    assert [(e["value"], e["status"]) for e in glucose] == [("6.2", "corrected")]
    assert {"type", "code", "system", "value", "unit", "status", "effective"} <= set(glucose[0])

    code, out, _ = run_cli(capsys, "imports", "list", "--status", "quarantined", "--json")
    quarantined = json.loads(out)
    assert [(r["status"], r["error_code"]) for r in quarantined] == [
        ("quarantined", "IDENTITY_UNKNOWN_PATIENT")]

    code, out, _ = run_cli(capsys, "dossier", "create", "--ins", "188102B17295165",
                           "--family", "Santoni", "--given", "Ange", "--birth-date",
                           "1988-10-02", "--sex", "M")
    assert code == 0
    code, out, _ = run_cli(capsys, "imports", "rerun", "--status", "quarantined", "--json")
    assert code == 0 and json.loads(out)["outcomes"] == {"deposited": 1}
    code, out, _ = run_cli(capsys, "imports", "show", str(quarantined[0]["id"]), "--json")
    shown = json.loads(out)
    assert [a["status"] for a in shown["attempts"]] == ["quarantined", "deposited"]
    assert shown["attempts"][1]["trigger"] == "rerun"

    code, out, _ = run_cli(capsys, "ingest", str(folder / "broken.hl7"), "--source", "other",
                           "--strict")
    assert code == 1 and "OBX_BAD_NUMBER" in out


def test_user_errors_are_one_line_with_exit_1(home, capsys) -> None:  # noqa: ANN001
    code, _, err = run_cli(capsys, "dossier", "show", "123456789012345")
    assert code == 1 and err.count("\n") == 1 and "Traceback" not in err
    code, _, err = run_cli(capsys, "dossier", "create", "--ins", "279035121518900",
                           "--family", "A", "--given", "B", "--birth-date", "1979-03-28",
                           "--sex", "F")
    assert code == 1 and "key" in err
    code, _, err = run_cli(capsys, "ingest", str(home / "nope"))
    assert code == 1 and "no such file" in err


def test_bad_usage_exits_2(home) -> None:  # noqa: ANN001
    proc = subprocess.run([sys.executable, "-m", "cli", "imports", "frobnicate"],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr


def test_unreachable_store_exits_3(home, capsys, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("DMP_DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    code, _, err = run_cli(capsys, "imports", "list")
    assert code == 3 and "unavailable" in err
