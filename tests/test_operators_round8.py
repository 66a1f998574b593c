"""Operators' round 8: what the round 7 walk found and left. The CLI in-process (its Prefect
flows as plain functions), SQLite.

1. IDENTITY_INS_INVALID_KEY's advice says 'assign the import to the right dossier after
   checking', but `dossier show` takes an INS or an id: the operator had to look the patient
   up outside the tool. `dossier find` lists the dossiers by name (accents, case and
   separators ignored), given name and birth date, bounded, audited with its reason.
2. `imports show` of a failed batch file (HL7_BATCH_*: 'the messages found in it were
   processed on their own') did not name those messages: it lists their ids and statuses,
   bounded, and the `imports list --file` that lists them all.
3. `imports list --group-by code` suggested rerunning the largest group whatever its code,
   OBX_BAD_NUMBER (fails again unchanged) included: the advice table's `rerun` column tells
   a group a rerun helps from one the sender must resend (or to assign one by one).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select, update

from dossiers.patients import birth_family_key
from dossiers.schema import audit_log, patients
from normalizers.tabledata import read_csv_rows
from pipelines import report
from pipelines.advice import RERUN_KINDS, rerun_kind
from pipelines.audit import Actor
from pipelines.dossier_admin import FIND_LIMIT, DossierInput, create_dossiers, find_dossiers
from pipelines.intake import Received, intake
from pipelines.process import Context, drain
from pipelines.settings import load_settings
from tests.test_admin import BAD
from tests.test_operators_round import no_prefect, run  # noqa: F401 (a fixture)
from tests.test_pipeline import make_patient, oru

# Hélène Lefèvre's glucose, her NIR's key mistyped by the laboratory (89 -> 88).
BAD_KEY = oru("BK-1", nir="279035121518988")


@pytest.fixture
def cli_ctx(home, database_url, monkeypatch, no_prefect):  # noqa: ANN001, ANN201, F811
    """The CLI's store (SQLite) and a context on it for the test's own intake."""
    monkeypatch.setenv("DMP_DATABASE_URL", database_url)
    ctx = Context.from_settings(load_settings())
    yield ctx
    ctx.engine.dispose()


def _ingest(ctx: Context, *blobs: bytes) -> list[int]:
    ids = [i for r in intake(ctx.engine, ctx.archive,
                             [Received(b, "lab", "file", file_name=f"cr{n}.hl7")
                              for n, b in enumerate(blobs)]) for i in r.message_ids]
    drain(ctx)
    return ids


def _json(capsys, *argv: str):  # noqa: ANN001, ANN202
    code, out, err = run(capsys, *argv, "--json")
    assert code == 0, out + err
    return json.loads(out)


# -- 1. a dossier found by name and birth date ------------------------------------------------
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_dossier_find_lists_candidates_to_assign_an_import_whose_ins_key_is_wrong(
        cli_ctx, capsys) -> None:  # noqa: ANN001
    """The result is quarantined IDENTITY_INS_INVALID_KEY. The operator looks Hélène up as
    she would type it (no accents, lower case, given name's start), sees two Lefèvre born
    the same day and chooses by given name and INS; the assignment files the result. Each
    dossier listed has the look in its trail with the reason; no name in the trail."""
    helene = make_patient(cli_ctx)
    (homonym,) = create_dossiers(cli_ctx.engine, [DossierInput(
        family="LEFEVRE", given="Héloïse", birth_date="1979-03-28", sex="F")])
    create_dossiers(cli_ctx.engine, [DossierInput(  # another birth date: not listed
        family="Lefèvre", given="Hélène", birth_date="1980-03-28", sex="F")])
    (imported,) = _ingest(cli_ctx, BAD_KEY)
    shown = _json(capsys, "imports", "show", str(imported))
    assert (shown["status"], shown["error_code"]) == ("quarantined", "IDENTITY_INS_INVALID_KEY")
    assert "dossier find --family ... --given ... --birth-date ... --reason" in shown["advice"]
    found = _json(capsys, "dossier", "find", "--family", "lefevre", "--given", "hel",
                  "--birth-date", "1979-03-28", "--reason", "INS invalide, import " +
                  str(imported))
    assert found["more"] is False
    assert [(d["id"], d["given"], d["ins"]) for d in found["dossiers"]] == [
        (helene, "Hélène", True), (homonym, "Héloïse", False)]
    assert found["dossiers"][0] | {"id": 0} == {
        "id": 0, "family": "Lefèvre", "given": "Hélène", "birth_family": None,
        "birth_date": "1979-03-28", "sex": "F", "ins": True, "opposed": False}
    code, out, _ = run(capsys, "dossier", "find", "--family", "LEFÈVRE", "--given", "helene",
                       "--birth-date", "1979-03-28", "--reason", "vérification")
    assert code == 0 and str(helene) in out and "Hélène" in out and "Héloïse" not in out, out
    code, out, _ = run(capsys, "imports", "assign", str(imported), "--patient", str(helene),
                       "--reason", "clé INS erronée, identité vérifiée")
    assert code == 0, out
    assert _json(capsys, "imports", "show", str(imported))["patient_id"] == helene
    with cli_ctx.engine.connect() as conn:
        rows = conn.execute(select(audit_log).where(audit_log.c.action == "dossier.find")
                            .order_by(audit_log.c.id)).all()
    assert [(r.patient_id, r.reason) for r in rows] == [
        (helene, f"INS invalide, import {imported}"), (homonym, f"INS invalide, import {imported}"),
        (helene, "vérification")]
    assert "Lef" not in json.dumps([r.details for r in rows])  # criteria named, not valued


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_dossier_find_is_bounded_needs_a_reason_and_checks_the_birth_date(
        cli_ctx, capsys) -> None:  # noqa: ANN001
    """A common name lists its first 50 dossiers and says there are more; without --reason
    argparse refuses (exit 2); a birth date that is no date is one line, exit 1."""
    create_dossiers(cli_ctx.engine, [DossierInput(
        family="Martin", given=f"Camille{n:02d}", birth_date="1990-01-01", sex="F",
        ins=None) for n in range(FIND_LIMIT + 1)])
    found = _json(capsys, "dossier", "find", "--family", "martin", "--reason", "homonymes")
    assert len(found["dossiers"]) == FIND_LIMIT and found["more"] is True
    code, out, _ = run(capsys, "dossier", "find", "--family", "martin", "--reason", "homonymes")
    assert code == 0 and f"more than {FIND_LIMIT} dossiers match" in out, out
    with pytest.raises(SystemExit) as exc:
        run(capsys, "dossier", "find", "--family", "martin")
    assert exc.value.code == 2
    code, _, err = run(capsys, "dossier", "find", "--family", "martin", "--birth-date",
                       "1990-02-30", "--reason", "homonymes")
    assert code == 1 and "birth date is not a calendar date" in err, err



@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_dossier_find_on_postgresql_folds_names_and_takes_wildcards_literally(
        cli_ctx) -> None:  # noqa: ANN001
    """The store's query on PostgreSQL: a compound name typed without accents or hyphen, the
    birth name (Mme Lefèvre-Ünal née Nguyễn found as Nguyen), a given name's start; '%' and
    '_' typed are letters, not LIKE wildcards (nothing is 'MA_' or '%')."""
    (marie,) = create_dossiers(cli_ctx.engine, [DossierInput(
        family="Lefèvre-Ünal", given="Marie-Ange", birth_date="1961-11-02", sex="F")])
    with cli_ctx.engine.begin() as conn:
        conn.execute(update(patients).where(patients.c.id == marie).values(
            birth_family="Nguyễn", birth_family_key=birth_family_key("Nguyễn")))
    actor = Actor("ide.vigilance")

    def ids(family: str, given: str | None = None) -> list[int]:
        found, more = find_dossiers(cli_ctx.engine, family, given=given,
                                    birth_date="1961-11-02", actor=actor, reason="essai")
        assert more is False
        return [d["id"] for d in found]

    assert ids("lefevre unal", "marie ange") == ids("NGUYEN", "mar") == [marie]
    assert ids("lefevre unal", "ma_") == ids("lefevre unal", "%") == []


# -- 2. a failed batch file names its messages ------------------------------------------------
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_show_of_a_failed_batch_file_lists_its_messages(cli_ctx, capsys,
                                                        monkeypatch) -> None:  # noqa: ANN001
    """The CHU's batch announces 3 messages and holds 2: its row fails
    HL7_BATCH_COUNT_MISMATCH. `imports show` of it names both messages with their status,
    the one that failed with its code, and the command that lists them all; bounded (the
    bound lowered to 1 here: '... and 1 more')."""
    make_patient(cli_ctx)
    head = "BHS|^~\\&|GLIMS|CHU_RENNES|DMP|DMP|20251203061500+0100||BRB0003||BRB0003\r"
    data = (head.encode() + oru("B-1") + oru("B-2", filler="CMD-1002", extra_obx=(
        "OBX|2|NM|2345-7^Glucose^LN||cinq|mmol/L|||||F\r")) + b"BTS|3\r")
    (result,) = intake(cli_ctx.engine, cli_ctx.archive,
                       [Received(data, "lab", "file", file_name="CR lot 20251203.hl7")])
    drain(cli_ctx)
    first, second = result.message_ids
    shown = _json(capsys, "imports", "show", str(result.batch_id))
    assert shown["error_code"] == "HL7_BATCH_COUNT_MISMATCH"
    assert shown["batch_messages_count"] == 2
    statuses = [(m["id"], m["part"], m["status"]) for m in shown["batch_messages"]]
    assert statuses == [(first, 1, "deposited"), (second, 2, "failed")]
    failed_code = shown["batch_messages"][1]["error_code"]
    assert failed_code
    code, out, _ = run(capsys, "imports", "show", str(result.batch_id))
    assert code == 0, out
    assert (f"messages: 2: {first} (deposited), {second} (failed {failed_code}); all of them: "
            "dmp-ingest imports list --file 'CR lot 20251203.hl7'") in out, out
    assert _json(capsys, "imports", "show", str(first))["batch_messages"] == []
    monkeypatch.setattr(report, "BATCH_MESSAGES_SHOWN", 1)
    code, out, _ = run(capsys, "imports", "show", str(result.batch_id))
    assert f"messages: 2: {first} (deposited) ... and 1 more; all of them" in out, out


# -- 3. which groups a rerun helps ------------------------------------------------------------
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_group_by_code_suggests_rerunning_only_groups_a_rerun_helps(cli_ctx,
                                                                    capsys) -> None:  # noqa: ANN001
    """Two results with a glucose 'cinq' (OBX_BAD_NUMBER: the same bytes fail the same way)
    and one for Gaëlle Le Bihan, whose dossier does not exist yet (IDENTITY_UNKNOWN_PATIENT:
    a rerun files it once the dossier is created). The larger group is the bad numbers: the
    rerun suggested is the identity's; the bad numbers are named as the sender's to resend,
    with the words that list them. The JSON carries each group's kind."""
    make_patient(cli_ctx)
    _ingest(cli_ctx, oru("G-1", extra_obx=BAD), oru("G-2", value="6.1", extra_obx=BAD),
            oru("G-3", nir="290075626024810", family="LE BIHAN", given="Gaëlle",
                birth="19900704", filler="CMD-3002", local_id="LAB00090"))
    code, out, _ = run(capsys, "imports", "list", "--group-by", "code")
    assert code == 0, out
    assert ("rerun a group: dmp-ingest imports rerun --code IDENTITY_UNKNOWN_PATIENT "
            "--dry-run") in out, out
    assert ("OBX_BAD_NUMBER: the sender must resend (a rerun fails again unchanged); list a "
            "group: dmp-ingest imports list --code OBX_BAD_NUMBER") in out, out
    assert "imports rerun --code OBX_BAD_NUMBER" not in out
    groups = {g["code"]: g for g in _json(capsys, "imports", "list", "--group-by", "code")[
        "groups"]}
    assert (groups["OBX_BAD_NUMBER"]["count"], groups["OBX_BAD_NUMBER"]["rerun"]) == (2, "resend")
    assert groups["IDENTITY_UNKNOWN_PATIENT"]["rerun"] == "yes"
    assert set(groups) == {"OBX_BAD_NUMBER", "IDENTITY_UNKNOWN_PATIENT"}


def test_every_advice_row_says_what_a_rerun_does() -> None:
    """The column is read for every code: a row without it (or a typo) would hide a group
    from the suggestion without a word. Codes of every kind, exact and by prefix."""
    table = Path(report.__file__).with_name("tables") / "error_advice.csv"
    assert {row["code"]: row["rerun"] for row in read_csv_rows(table)
            if row["rerun"] not in RERUN_KINDS} == {}
    assert [rerun_kind(c) for c in ("CDA_DTD_FORBIDDEN", "OBX_BAD_NUMBER", "CODE_UNMAPPED",
                                    "IDENTITY_AMBIGUOUS", "MLLP_UNKNOWN_SENDER",
                                    "SOMETHING_NEW")] == [
        "resend", "resend", "yes", "by-id", "no", "yes"]
