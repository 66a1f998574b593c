"""Helpers shared by the reliability tests (check, crash points, fuzzing, hostile inputs,
privacy): load the committed sample set into a store, count what was filed."""

from __future__ import annotations

import csv
from dataclasses import replace
from pathlib import Path

from sqlalchemy import func, select

from dossiers.schema import entries, imports, provenance
from pipelines.dossier_admin import DossierInput, create_dossiers
from pipelines.intake import Received, intake
from pipelines.ledger import TERMINAL
from pipelines.process import drain
from tests.conftest import SAMPLES

# Text-layer PDFs only: OCR of the scanned ones takes seconds each.
TEXT_PDFS = ("01_irm_genou_droit_K1_texte.pdf", "03_echo_abdominale_K3_texte.pdf",
             "12_radio_thorax_inconnue_U1_texte.pdf", "15_pas_un_pdf.pdf")
# Scans that repeat a shape another scan already takes through OCR (one page, no text
# layer): left out of ``scanned`` sets, where each would only add seconds of tesseract.
REPEATED_SCANS = ("04_radio_poignet_gauche_K4_scan.pdf", "06_mammographie_K6_scan.pdf",
                  "08_irm_pelvienne_K8_scan_3pages.pdf", "11_tdm_thorax_K2_rescan.pdf")


def create_sample_dossiers(ctx) -> None:  # noqa: ANN001
    with open(SAMPLES / "patients.csv", encoding="utf-8") as fh:
        create_dossiers(ctx.engine, [DossierInput.from_mapping(r) for r in csv.DictReader(fh)],
                        skip_existing=True)


def sample_files(pdfs: bool = True, scanned: bool = False) -> list[Path]:
    """The HL7v2 and CDA samples, with the text-layer PDFs (``pdfs``) or every kind of PDF
    sample: a scan, a mixed one, a copy, encrypted and broken ones (``scanned``: a few
    seconds of OCR)."""
    files = sorted((SAMPLES / "hl7v2").glob("*.hl7")) + sorted((SAMPLES / "cda").glob("*.xml"))
    if scanned:
        files += [f for f in sorted((SAMPLES / "pdf").glob("*.pdf"))
                  if f.name not in REPEATED_SCANS]
    elif pdfs:
        files += [SAMPLES / "pdf" / name for name in TEXT_PDFS]
    return files


def load_sample_set(ctx, pdfs: bool = True, scanned: bool = False) -> list[int]:  # noqa: ANN001
    """Dossiers of samples/patients.csv, then every sample file through intake and drain."""
    ctx.settings = replace(ctx.settings, mappings_dir=SAMPLES / "mappings")
    create_sample_dossiers(ctx)
    items = [Received(data=f.read_bytes(), source="samples", channel="file", file_name=f.name)
             for f in sample_files(pdfs, scanned)]
    ids = [i for r in intake(ctx.engine, ctx.archive, items) for i in r.message_ids]
    drain(ctx)
    return ids


def not_terminal(engine) -> list[tuple[int, str]]:  # noqa: ANN001
    with engine.connect() as conn:
        return conn.execute(select(imports.c.id, imports.c.status)
                            .where(imports.c.status.not_in(TERMINAL))).all()


def created_links_per_import(engine) -> dict[int, int]:  # noqa: ANN001
    with engine.connect() as conn:
        return dict(conn.execute(
            select(provenance.c.import_id, func.count()).where(provenance.c.relation == "created")
            .group_by(provenance.c.import_id)).all())


def entry_count(engine) -> int:  # noqa: ANN001
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(entries)).scalar_one()
