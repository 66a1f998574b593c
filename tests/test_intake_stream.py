"""Big HL7v2 batch files are taken in by streaming (pipelines/intake_stream.py): the same
ledger as the in-memory path, in groups, and an interrupted intake loses and doubles nothing."""

from __future__ import annotations

import csv
from dataclasses import replace

import pytest
from sqlalchemy import select

from dossiers.schema import entries, imports
from parsers.hl7v2 import split_batch
from pipelines import intake_stream
from pipelines.dossier_admin import DossierInput, create_dossiers
from pipelines.intake import Received, intake
from pipelines.intake_stream import INTERRUPTED, intake_file, is_large_hl7
from pipelines.process import Context, drain
from pipelines.settings import load_settings
from samples.generate import write_bulk
from tests.conftest import migrated_sqlite


@pytest.fixture
def batch_file(tmp_path):  # noqa: ANN001, ANN201
    _, folder = write_bulk(tmp_path / "data", 120, 5, batch=True)
    return next(folder.iterdir())


def _rows(ctx, batch_id: int) -> list:  # noqa: ANN001
    with ctx.engine.connect() as conn:
        return conn.execute(select(imports.c.part, imports.c.sha256, imports.c.status)
                            .where(imports.c.batch_of == batch_id)
                            .order_by(imports.c.part)).all()


def test_streamed_file_has_the_rows_of_the_in_memory_split(ctx, batch_file) -> None:  # noqa: ANN001
    from pipelines.archive import sha256_hex

    result = intake_file(ctx.engine, ctx.archive, batch_file, source="lab", group=25,
                         window=4096)
    expected = [sha256_hex(m) for m in split_batch(batch_file.read_bytes()).messages]
    rows = _rows(ctx, result.batch_id)
    assert [r.sha256 for r in rows if r.status != "duplicate"] == list(dict.fromkeys(expected))
    assert [r.part for r in rows] == list(range(1, len(expected) + 1))
    with ctx.engine.connect() as conn:
        whole = conn.execute(select(imports).where(imports.c.id == result.batch_id)).one()
    assert (whole.status, whole.error_code) == ("split", None)
    assert whole.sha256 == sha256_hex(batch_file.read_bytes())
    assert ctx.archive.get(whole.sha256) == batch_file.read_bytes()
    counts = drain(ctx)  # no dossiers here: quarantined, but every row processed once
    assert sum(counts.values()) == len(result.message_ids) - result.repeats


def test_interrupted_intake_is_taken_again_without_loss_or_double(  # noqa: ANN201
        ctx, batch_file, monkeypatch, tmp_path, sqlite_template):  # noqa: ANN001
    mappings = batch_file.parent.parent / "mappings"
    ctx.settings = replace(ctx.settings, mappings_dir=mappings)
    ctx.__dict__.pop("mappings", None)  # the cached tables, read again from there
    _dossiers(ctx, batch_file)
    real = intake_stream.intake
    calls = {"n": 0}

    def dying(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError("the process died here")
        return real(*args, **kwargs)

    monkeypatch.setattr(intake_stream, "intake", dying)
    with pytest.raises(OSError):
        intake_file(ctx.engine, ctx.archive, batch_file, source="lab", group=20)
    monkeypatch.setattr(intake_stream, "intake", real)
    with ctx.engine.connect() as conn:
        first = conn.execute(select(imports).where(imports.c.batch_of.is_(None),
                                                   imports.c.status == "split")).one()
    assert first.error_code == INTERRUPTED  # the admin sees the cut
    assert len(_rows(ctx, first.id)) == 40
    again = intake_file(ctx.engine, ctx.archive, batch_file, source="lab", group=20)
    assert again.repeats >= 40
    drain(ctx)
    with ctx.engine.connect() as conn:
        processed = conn.execute(select(imports.c.sha256).where(
            imports.c.batch_of.is_not(None),
            imports.c.status.in_(("deposited", "failed", "quarantined")))).scalars().all()
    assert len(processed) == len(set(processed))  # no message processed twice
    # and the dossiers hold what one uninterrupted in-memory ingest of the file gives
    migrated_sqlite(sqlite_template, tmp_path / "reference" / "dmp.sqlite3")
    reference = Context.from_settings(load_settings(env={
        "DMP_HOME": str(tmp_path / "reference"), "DMP_MAPPINGS_DIR": str(mappings)}))
    _dossiers(reference, batch_file)
    intake(reference.engine, reference.archive,
           [Received(batch_file.read_bytes(), "lab", "file")])
    drain(reference)
    assert _facts(ctx) == _facts(reference) and _facts(ctx)
    reference.engine.dispose()


def _dossiers(ctx, batch_file) -> None:  # noqa: ANN001
    with open(batch_file.parent.parent / "patients.csv", encoding="utf-8") as fh:
        create_dossiers(ctx.engine, [DossierInput.from_mapping(r) for r in csv.DictReader(fh)])


def _facts(ctx) -> list:  # noqa: ANN001
    with ctx.engine.connect() as conn:
        return sorted(conn.execute(select(entries.c.key, entries.c.version, entries.c.value,
                                          entries.c.current)).all())


def test_truncated_streamed_batch_is_reported(ctx, tmp_path) -> None:  # noqa: ANN001
    msg = (b"MSH|^~\\&|LAB|FAC|DMP|DMP|20250113104700||ORU^R01|T-%d|P|2.5\r"
           b"PID|1||%d^^^LAB^PI||DURAND^Zo\xc3\xa9||19800101|F\r")
    path = tmp_path / "cut.hl7"
    path.write_bytes(b"BHS|^~\\&|LAB\r" + b"".join(msg % (i, i) for i in range(5))
                     + b"BTS|9\r")
    result = intake_file(ctx.engine, ctx.archive, path, source="lab", window=64)
    with ctx.engine.connect() as conn:
        whole = conn.execute(select(imports).where(imports.c.id == result.batch_id)).one()
    assert (whole.status, whole.error_code) == ("failed", "HL7_BATCH_COUNT_MISMATCH")
    assert len(result.message_ids) == 5


@pytest.mark.parametrize("streamed", [True, False])
def test_empty_batch_is_a_batch_row_not_a_failure(ctx, tmp_path, streamed) -> None:  # noqa: ANN001
    """HL7 v2.5 2.10.3 allows a batch of zero messages (a periodic submission with nothing
    to send): one batch row 'split' into nothing, noted, whether streamed or not; a file of
    no HL7 at all is still HL7_NO_MSH."""
    path = tmp_path / "empty.hl7"
    path.write_bytes(b"FHS|^~\\&|LAB\rBHS|^~\\&|LAB\rBTS|0\rFTS|1\r")
    if streamed:
        result = intake_file(ctx.engine, ctx.archive, path, source="lab", window=16)
    else:
        result = intake(ctx.engine, ctx.archive, [Received(path.read_bytes(), "lab",
                                                           "file")])[0]
    assert result.message_ids == [] and result.batch_problems == []
    with ctx.engine.connect() as conn:
        rows = conn.execute(select(imports)).all()
    assert [(r.id, r.status, r.error_code, r.warnings) for r in rows] == [
        (result.batch_id, "split", None,
         ["HL7_EMPTY_BATCH: the batch holds no message, nothing to file"])]
    assert ctx.archive.get(rows[0].sha256) == path.read_bytes()
    assert drain(ctx) == {}


def test_only_big_hl7_files_are_streamed(tmp_path, batch_file) -> None:  # noqa: ANN001
    pdf = tmp_path / "scan.pdf"
    pdf.write_bytes(b"%PDF-1.4\n" + b"x" * 5000)
    assert is_large_hl7(batch_file, limit=1000)
    assert not is_large_hl7(batch_file)  # under 64 MB: read whole as before
    assert not is_large_hl7(pdf, limit=1000)
    assert not is_large_hl7(tmp_path / "absent.hl7", limit=1000)
