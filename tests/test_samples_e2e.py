"""The committed sample set (samples/) end to end: each file ends as samples/expected.csv says."""

from __future__ import annotations

import csv
from dataclasses import replace

from sqlalchemy import select

from dossiers.schema import imports
from pipelines.dossier_admin import DossierInput, create_dossiers
from pipelines.intake import Received, intake
from pipelines.process import drain
from pipelines.report import show_dossier
from tests.conftest import SAMPLES


def load_samples(ctx) -> dict[str, list]:  # noqa: ANN001
    with open(SAMPLES / "patients.csv", encoding="utf-8") as fh:
        create_dossiers(ctx.engine, [DossierInput.from_mapping(r) for r in csv.DictReader(fh)])
    files = sorted((SAMPLES / "hl7v2").iterdir())
    items = [Received(data=f.read_bytes(), source="samples", channel="file",
                      file_name=f.name) for f in files]
    intake(ctx.engine, ctx.archive, items)
    drain(ctx)
    with ctx.engine.connect() as conn:
        rows = conn.execute(select(imports).order_by(imports.c.id)).all()
    by_file: dict[str, list] = {}
    for r in rows:
        by_file.setdefault(r.file_name, []).append(r)
    return by_file


def test_every_sample_file_ends_as_expected(ctx) -> None:  # noqa: ANN001
    ctx.settings = replace(ctx.settings, mappings_dir=SAMPLES / "mappings")
    by_file = load_samples(ctx)
    with open(SAMPLES / "expected.csv", encoding="utf-8") as fh:
        expected = list(csv.DictReader(fh))
    assert len(expected) == len(by_file)
    for row in expected:
        name = row["file"].split("/")[-1]
        rows = by_file[name]
        messages = [r for r in rows if r.status != "split" and not
                    (r.stage == "intake" and r.status == "failed")]
        envelope = [r for r in rows if r not in messages]
        assert len(messages) == int(row["messages"]), name
        if row["expect"] == "batch count mismatch":
            assert [r.error_code for r in envelope] == ["HL7_BATCH_COUNT_MISMATCH"]
            assert {r.status for r in messages} == {"deposited"}
            continue
        assert {r.status for r in messages} == {row["outcome"]}, (name, [
            (r.status, r.error_code, r.error_message) for r in messages])
        if row["outcome"] == "deposited" and row["expect"] != "corrected":
            assert sum(r.entries_count for r in messages) >= int(row["results"]), name


def test_samples_corrections_units_and_unmapped_codes(ctx) -> None:  # noqa: ANN001
    ctx.settings = replace(ctx.settings, mappings_dir=SAMPLES / "mappings")
    load_samples(ctx)
    with open(SAMPLES / "patients.csv", encoding="utf-8") as fh:
        patients = {r["key"]: r for r in csv.DictReader(fh)}
    k1 = show_dossier(ctx.engine, patients["K1"]["ins"], history=True)["entries"]
    platelets = [e for e in k1 if e["code"] == "777-3" and e["value_num"] in (96.0, 212.0)]
    assert [(e["value_num"], e["current"]) for e in platelets] == [(96.0, False), (212.0, True)]
    assert platelets[1]["unit"] == "10*9/L"  # sent as G/L
    k2 = show_dossier(ctx.engine, patients["K2"]["ins"])["entries"]
    assert any(e["code"] == "1558-6" and e["mapped"] for e in k2)  # GLY via samples/mappings
    k3 = show_dossier(ctx.engine, patients["K3"]["ins"])["entries"]
    unmapped = [e for e in k3 if not e["mapped"] and e["type"] == "lab_result"]
    assert {e["code"] for e in unmapped} == {"VITD25"}
