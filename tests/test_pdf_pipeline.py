"""PDF reports through the pipeline: samples/pdf ends as samples/pdf/truth.csv says (text
layer and real tesseract OCR, French), a re-scan of a report already filed is one report, and
the public PDFs of the ANS corpus all reach a terminal state."""

from __future__ import annotations

import csv
from dataclasses import replace

from sqlalchemy import select

from dossiers.schema import entries, imports, provenance
from pipelines.dossier_admin import DossierInput, create_dossiers
from pipelines.intake import Received, intake
from pipelines.process import drain
from tests.conftest import SAMPLES, corpus_path

PDF = SAMPLES / "pdf"
# What cannot be told from content alone: an HTML page named .pdf is not a PDF for us either.
FAILED_CODES = {"PDF_NOT_PDF": {"PDF_NOT_PDF", "UNKNOWN_FORMAT"}}


def _truth() -> list[dict[str, str]]:
    with open(PDF / "truth.csv", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_every_pdf_sample_ends_as_expected(sqlite_ctx) -> None:  # noqa: ANN001
    ctx = sqlite_ctx
    with open(SAMPLES / "patients.csv", encoding="utf-8") as fh:
        create_dossiers(ctx.engine, [DossierInput.from_mapping(r) for r in csv.DictReader(fh)])
    files = sorted(PDF.glob("*.pdf"))
    intake(ctx.engine, ctx.archive, [Received(f.read_bytes(), "imaging", "file",
                                              file_name=f.name) for f in files])
    drain(ctx)
    with ctx.engine.connect() as conn:
        rows = {r.file_name: r for r in conn.execute(select(imports))}
        reports = {r.import_id: r for r in conn.execute(
            select(entries).where(entries.c.type.in_(("report", "imaging_report"))))}
        links = conn.execute(select(provenance.c.entry_id, provenance.c.import_id,
                                    provenance.c.relation)).all()
    truth = _truth()
    assert {t["file"] for t in truth} == {f.name for f in files}
    for t in truth:
        got = rows[t["file"]]
        assert got.status == t["outcome"], (t["file"], got.status, got.error_code,
                                            got.error_message)
        if t["outcome"] == "failed":
            assert got.error_code in FAILED_CODES.get(t["code"], {t["code"]}), t["file"]
        elif t["outcome"] == "quarantined":
            assert got.error_code == t["code"], t["file"]
        elif t["outcome"] == "deposited":
            report = reports[got.id]
            fields = report.details["fields"]
            assert report.effective == t["exam_date"], t["file"]
            assert report.code == t["modality"] or (t["modality"] == "DXA" and report.code
                                                    in ("DXA", "BMD")), t["file"]
            assert report.attachment_sha256 and report.media_type == "application/pdf"
            assert ctx.archive.get(report.attachment_sha256) == (PDF / t["file"]).read_bytes()
            source = fields["exam_date"]["source"]
            assert source == ("text" if t["form"] in ("text", "mixed") else "ocr"), t["file"]
        if t["duplicate_of"] and t["code"] == "DUPLICATE_CONTENT":
            # the re-scan: no second report, one more provenance link on the first
            first = reports[rows[t["duplicate_of"]].id]
            assert (first.id, got.id, "confirmed") in {tuple(link) for link in links}


def test_public_pdfs_reach_a_terminal_state(sqlite_ctx) -> None:  # noqa: ANN001
    """Real French reports (text layer; one made of page images): no crash, no internal
    error; their patients have no dossier here, so they wait in quarantine."""
    ctx = sqlite_ctx
    ctx.settings = replace(ctx.settings, pdf_max_pages=30)
    files = sorted(corpus_path("pdf").glob("*.pdf"))
    intake(ctx.engine, ctx.archive, [Received(f.read_bytes(), "ans", "file", file_name=f.name)
                                     for f in files])
    drain(ctx)
    with ctx.engine.connect() as conn:
        rows = conn.execute(select(imports.c.file_name, imports.c.status,
                                   imports.c.error_code)).all()
    assert len(rows) == len(files)
    for name, status, code in rows:
        assert status in ("quarantined", "failed", "deposited"), name
        assert code != "INTERNAL_ERROR", name
