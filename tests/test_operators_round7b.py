"""Operators' round 7 (second pass): the admin's day on the store `make run` leaves, walked
with only what the tools say. The CLI in-process (its Prefect flows as plain functions),
SQLite.

What the walk found: IDENTITY_UNKNOWN_PATIENT's advice ('create the dossier, then rerun
--waiting-for') left quarantined, without a word, the imports --waiting-for cannot attribute:
a CDA naming its patient by a local id of an unknown authority, a scanned report whose NIR is
no INS (`dossier create` named none of them; `--waiting-for` on a dossier created without an
INS said 'no quarantined import names the INS', exit 1, and stopped there). A rerun of a
batch file whose BTS-1 count did not match was 'left alone: decided at intake (byte-identical
repeat or refused by the connector)': it was neither. HL7_BAD_CHARSET's advice said to
'declare the source's fallback charset in the settings' without naming the setting.
"""

from __future__ import annotations

import json

import pytest

import flows
from pipelines.intake import Received, intake
from pipelines.process import Context, drain
from pipelines.rerun import LEFT_BATCH
from pipelines.settings import load_settings
from tests.test_operators_round import no_prefect, run  # noqa: F401 (a fixture)
from tests.test_pipeline import INS_OID, make_patient, oru

# Mathéo Rousseau's result from a lab that names him by its own id only (no INS in PID-3):
# nothing to search by INS, his dossier is found on his demographics once it exists.
NO_INS = oru("NI-1", family="ROUSSEAU", given="Mathéo", birth="19830409", sex="M",
             filler="CMD-3001").replace(
    f"279035121518989^^^ASIP-SANTE-INS-NIR&{INS_OID}&ISO^INS~".encode(), b"")
# Gaëlle Le Bihan's, with her (test) INS: found by --waiting-for once her dossier exists.
WITH_INS = oru("WI-1", nir="290075626024810", family="LE BIHAN", given="Gaëlle",
               birth="19900704", filler="CMD-3002", local_id="LAB00090")


@pytest.fixture
def cli_ctx(home, database_url, monkeypatch, no_prefect):  # noqa: ANN001, ANN201, F811
    """The CLI's store (SQLite) and a context on it for the test's own intake."""
    monkeypatch.setenv("DMP_DATABASE_URL", database_url)
    ctx = Context.from_settings(load_settings())
    yield ctx
    ctx.engine.dispose()


def _ingest(ctx: Context, *blobs: bytes, source: str = "lab") -> list[int]:
    ids = [i for r in intake(ctx.engine, ctx.archive,
                             [Received(b, source, "file", file_name=f"cr{n}.hl7")
                              for n, b in enumerate(blobs)]) for i in r.message_ids]
    drain(ctx)
    return ids


def _status(capsys, import_id: int) -> dict:  # noqa: ANN001
    code, out, _ = run(capsys, "imports", "show", str(import_id), "--json")
    assert code == 0, out
    return json.loads(out)


# -- a quarantined import no INS can attribute ------------------------------------------------
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_dossier_create_names_the_quarantined_imports_waiting_for_cannot_find(
        cli_ctx, capsys) -> None:  # noqa: ANN001
    """Both results are quarantined IDENTITY_UNKNOWN_PATIENT. The operator follows the advice
    for Mathéo: creates his dossier (he has no INS) and reruns --waiting-for: both commands
    name his import as one to rerun by id (it states no INS), and the rerun by id files it.
    Gaëlle's, stating an INS, is not among them."""
    no_ins, with_ins = _ingest(cli_ctx, NO_INS, WITH_INS)
    shown = _status(capsys, no_ins)
    assert (shown["status"], shown["error_code"]) == ("quarantined", "IDENTITY_UNKNOWN_PATIENT")
    assert "named apart, to check and rerun by id" in shown["advice"]
    code, out, _ = run(capsys, "dossier", "create", "--family", "Rousseau", "--given", "Mathéo",
                       "--birth-date", "1983-04-09", "--sex", "M", "--json")
    assert code == 0, out
    made = json.loads(out)
    (matheo,) = made["created"]
    assert made["waiting"] == {} and made["unsearchable"] == [no_ins]
    code, out, err = run(capsys, "imports", "rerun", "--waiting-for", str(matheo))
    assert code == 1
    assert f"no quarantined import names the INS of dossier {matheo} (it has none)" in err
    assert f"state no INS (scanned PDFs, local ids or demographics only): {no_ins};" in err
    assert "Rousseau" not in err and "ROUSSEAU" not in err  # ids and codes only
    code, out, _ = run(capsys, "imports", "rerun", str(no_ins), "--reason", "dossier créé")
    assert code == 0 and "1 deposited" in out, out
    assert (_status(capsys, no_ins)["patient_id"]) == matheo
    assert _status(capsys, with_ins)["status"] == "quarantined"  # not touched
    code, out, _ = run(capsys, "dossier", "create", "--ins", "290075626024810", "--family",
                       "Le Bihan", "--given", "Gaëlle", "--birth-date", "1990-07-04", "--sex",
                       "F")
    assert code == 0 and "quarantined import(s) name it: " + str(with_ins) in out, out
    assert "state no INS" not in out  # nothing left that --waiting-for cannot find


# -- a batch file whose count does not match --------------------------------------------------
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_rerun_of_a_failed_batch_file_says_it_is_a_batch_not_a_repeat(cli_ctx,
                                                                      capsys) -> None:  # noqa: ANN001
    """A CHU's batch announces 3 messages and holds 2: the file's row fails
    HL7_BATCH_COUNT_MISMATCH, its messages are processed. `imports rerun` of the file's row
    says why nothing is done in the batch's own terms, not 'byte-identical repeat or refused
    by the connector'; the messages are found by the file name it names."""
    make_patient(cli_ctx)
    head = "BHS|^~\\&|GLIMS|CHU_RENNES|DMP|DMP|20251203061500+0100||BRB0002||BRB0002\r"
    data = (head.encode() + oru("B-1") + oru("B-2", filler="CMD-1002") + b"BTS|3\r")
    (result,) = intake(cli_ctx.engine, cli_ctx.archive,
                       [Received(data, "lab", "file", file_name="CR_lot_20251203.hl7")])
    drain(cli_ctx)
    batch = result.batch_id
    assert _status(capsys, batch)["error_code"] == "HL7_BATCH_COUNT_MISMATCH"
    code, out, _ = run(capsys, "imports", "rerun", str(batch), "--dry-run", "--json")
    assert code == 0, out
    assert json.loads(out)["left_alone"] == [{"reason": LEFT_BATCH, "count": 1, "ids": [batch]}]
    code, out, _ = run(capsys, "imports", "rerun", str(batch), "--reason", "essai")
    assert "left alone: 1 batch file whose envelope failed at intake" in out
    assert "byte-identical" not in out
    code, out, _ = run(capsys, "imports", "list", "--file", "CR_lot_20251203.hl7", "--json")
    assert sorted(r["id"] for r in json.loads(out)) == sorted([batch, *result.message_ids])


# -- the charset advice, followed to the letter -----------------------------------------------
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_bad_charset_advice_names_the_setting_that_fixes_it(cli_ctx, capsys,
                                                           monkeypatch) -> None:  # noqa: ANN001
    """A LIS writes ISO-8859-15 and declares UTF-8 in MSH-18: HL7_BAD_CHARSET. The advice
    names the setting (source_charsets, SOURCE=CODEC; DMP_SOURCE_CHARSETS in the
    environment); set for the source, the rerun the
    advice names files the result, the accents read right."""
    make_patient(cli_ctx, family="Lefèvre")
    latin = oru("CS-1").decode("utf-8").encode("iso-8859-15")
    (imp,) = _ingest(cli_ctx, latin)
    shown = _status(capsys, imp)
    assert shown["error_code"] == "HL7_BAD_CHARSET"
    assert "source_charsets setting, SOURCE=CODEC" in shown["advice"]
    assert "(imports rerun ID --reason ...)" in shown["advice"]
    monkeypatch.setenv("DMP_SOURCE_CHARSETS", f"{shown['source']}=iso-8859-15")
    flows._context.cache_clear()  # a new command reads the settings again
    code, out, _ = run(capsys, "imports", "rerun", str(imp), "--reason", "charset déclaré")
    assert code == 0 and "1 deposited" in out, out
    assert any(w.startswith("HL7_CHARSET_FALLBACK") for w in _status(capsys, imp)["warnings"])
