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


def test_serve_worker_process_ocrs_a_dropped_scan(tmp_path, sqlite_template) -> None:  # noqa: ANN001
    """The real service: a 3-page scanned report dropped in a watched folder is OCR'd by the ledger
    worker process (which runs its own OCR process pool) and filed; SIGTERM exits 0."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from dossiers.db import make_engine
    from tests.conftest import ROOT, migrated_sqlite

    dmp = [sys.executable, "-m", "cli"]  # this checkout's code, not the editable install's
    home, drop = tmp_path / "home", tmp_path / "drop"
    home.mkdir()
    drop.mkdir()
    migrated_sqlite(sqlite_template, home / "dmp.sqlite3")  # the home's store, at head
    (home / "dmp.toml").write_text(
        f'worker_id = "pdf-test"\npoll_interval = 0.5\n'
        f'[folders.imaging]\npath = "{drop}"\nsettle_seconds = 0.2\n')
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DMP_HOME": str(home),
           "DMP_ARCHIVE_URL": str(tmp_path / "archive")}
    subprocess.run([*dmp, "dossier", "create", "--from-csv", str(SAMPLES / "patients.csv")],
                   env=env, check=True, capture_output=True, cwd=ROOT)
    proc = subprocess.Popen([*dmp, "serve", "--no-mllp", "--no-http"], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        (drop / "scan.pdf").write_bytes((PDF / "08_irm_pelvienne_K8_scan_3pages.pdf").read_bytes())
        engine = make_engine(f"sqlite:///{home / 'dmp.sqlite3'}")
        status = None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and status not in ("deposited", "failed",
                                                             "quarantined"):
            time.sleep(0.5)
            with engine.connect() as conn:
                status = conn.execute(select(imports.c.status)).scalar()
        with engine.connect() as conn:
            row = conn.execute(select(imports)).one()
        engine.dispose()
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    assert (row.status, row.error_code) == ("deposited", None), (row.error_message, err[-2000:])
    assert proc.returncode == 0


def test_report_without_patient_block_is_quarantined_with_its_own_code_and_pages(
        sqlite_ctx) -> None:  # noqa: ANN001
    """No name nor birth date printed anywhere: IDENTITY_NOT_FOUND (the document lacks the
    patient block), not IDENTITY_UNCERTAIN (a scan to look at); the ledger's location says
    which pages were read."""
    from samples import generate_pdf as g

    blocks = [("centre", "IMAGERIE MÉDICALE DES LILAS"), ("title", "IRM CEREBRALE"),
              ("head", "CONCLUSION :"), ("body", "IRM cérébrale normale.")]
    data = g.write_pdf(g.layout(blocks), title="Compte rendu")
    intake(sqlite_ctx.engine, sqlite_ctx.archive, [Received(data, "imaging", "file",
                                                            file_name="sans_patient.pdf")])
    drain(sqlite_ctx)
    with sqlite_ctx.engine.connect() as conn:
        row = conn.execute(select(imports)).one()
    assert (row.status, row.stage, row.error_code, row.error_location) == (
        "quarantined", "normalize", "IDENTITY_NOT_FOUND", "page 1")
    assert row.error_message.startswith("page 1: family name not found; birth date not found")
