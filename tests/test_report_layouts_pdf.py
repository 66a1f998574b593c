"""Real-world report layouts as real PDFs: written with samples/generate_pdf.py's writer (text
layer, read by pdfplumber through parsers.pdf) and one scanned with its Pillow renderer (read
by the real tesseract), then normalized as the pipeline does (normalizers/report.py)."""

from __future__ import annotations

import shutil

import pytest

from normalizers.nir import nir_key
from normalizers.report import normalize_report
from parsers.pdf import PdfLimits, parse_pdf
from parsers.pdf.model import OCR, TEXT_LAYER
from samples import generate_pdf as g


def _nir(base13: str) -> str:
    return f"{base13}{nir_key(base13):02d}"


NIR = _nir("2610775112034")


def _read(data: bytes):  # noqa: ANN202
    doc = parse_pdf(data, PdfLimits(processes=1))
    msg = normalize_report(doc, data, "layouts")
    return doc, msg, {k: v["value"] for k, v in msg.entries[0].details["fields"].items()}


def _text_pdf(blocks: list[tuple[str, str]], footer: str | None = None) -> bytes:
    return g.write_pdf(g.layout(blocks, footer), title="Compte rendu")


def test_two_column_header_as_a_table_line():
    blocks = [("centre", "IMAGERIE MÉDICALE DES LILAS"),
              # left and right columns, one text line each row (empty cells in between)
              ("table", "Patient : Mme DURAND Claire |  |  | Examen du 12/03/2025"),
              ("table", "Née le 03/07/1961 |  |  | Demandé par : Dr Paul ROCHE"),
              ("title", "IRM CEREBRALE SANS ET AVEC INJECTION"),
              ("head", "Technique :"), ("body", "Séquences T1, T2 FLAIR et diffusion."),
              ("head", "CONCLUSION :"), ("body", "IRM cérébrale normale."),
              ("body", "Compte rendu validé électroniquement par le Dr Hélène VIDAL")]
    doc, msg, v = _read(_text_pdf(blocks))
    assert doc.pages[0].source == TEXT_LAYER
    assert (v["family"], v["given"], v["sex"], v["birth_date"]) == \
        ("DURAND", "Claire", "F", "1961-07-03")
    assert (v["exam_date"], v["modality"], v["body_region"]) == ("2025-03-12", "MR", "encéphale")
    assert v["prescriber"] == "Dr Paul ROCHE" and v["radiologist"] == "Dr Hélène VIDAL"
    assert v["conclusion"] == "IRM cérébrale normale." and msg.quarantine_reasons == []


def test_patient_in_the_footer_of_every_page_and_spouse_name():
    n = NIR
    body = [("body", "Coupes millimétriques sans injection, reconstructions multiplanaires. "
                     "Pas d'anomalie du parenchyme pulmonaire.")] * 60
    blocks = [("centre", "CLINIQUE DU LAC - IMAGERIE"),
              ("title", "SCANOGRAPHIE THORACO-ABDOMINO-PELVIENNE"),
              ("label", "Date de l'examen : 05/05/2025"),
              ("label", f"N° de sécurité sociale : {n[0]} {n[1:3]} {n[3:5]} {n[5:7]} "
                        f"{n[7:10]} {n[10:13]} {n[13:]}"),
              ("head", "Résultats :"), *body,
              ("head", "Synthèse :"), ("body", "Pas de lésion secondaire."),
              ("body", "Dr Hélène VIDAL")]
    doc, msg, v = _read(_text_pdf(blocks, footer="MARTIN Claire - née le 03/07/1961"))
    assert doc.page_count >= 2
    assert (v["family"], v["given"], v["birth_date"], v["sex"]) == \
        ("MARTIN", "Claire", "1961-07-03", "F")
    assert v["nir"] == NIR and [i.nir for i in msg.identity.ins] == [NIR]
    assert (v["modality"], v["body_region"]) == ("CT", "thorax-abdomen-pelvis")
    assert v["conclusion"] == "Pas de lésion secondaire." and msg.quarantine_reasons == []

    blocks[1:1] = [("label", "Madame Claire DURAND épouse MARTIN"),
                   ("label", "Date de naissance : 3 juillet 1961")]
    _, msg, v = _read(_text_pdf(blocks[:5] + blocks[-3:]))
    assert (v["family"], v["birth_family"], v["given"]) == ("MARTIN", "DURAND", "Claire")


@pytest.mark.skipif(shutil.which("tesseract") is None, reason="tesseract is absent")
def test_scanned_layout_read_by_ocr():
    blocks = [("centre", "CABINET DE RADIOLOGIE DU PORT"),
              ("label", "Nom / Prénom : DURAND Claire"),
              ("label", "Date de naissance : 03/07/1961"),
              ("label", "Sexe : Féminin"),
              ("title", "ECHO-DOPPLER DES TRONCS SUPRA-AORTIQUES"),
              ("label", "Examen du 14/03/2025"),
              ("head", "Conclusion :"),
              ("body", "Absence de sténose significative des axes carotidiens."),
              ("body", "Dr Marc LEBLANC")]
    pages = g.layout(blocks)
    data = g.pillow_pdf(g.scan_images(pages, "layouts"), "Compte rendu")
    doc, msg, v = _read(data)
    assert doc.pages[0].source == OCR
    assert (v["family"], v["given"], v["sex"], v["birth_date"]) == \
        ("DURAND", "Claire", "F", "1961-07-03")
    assert (v["modality"], v["body_region"], v["exam_date"]) == \
        ("US", "troncs supra-aortiques", "2025-03-14")
    assert v["conclusion"].startswith("Absence de sténose")
    # what OCR read of the identity is used only above the confidence threshold
    low = [f for f in ("family", "given", "birth_date")
           if msg.entries[0].details["fields"][f]["confidence"] < 80]
    assert bool(low) == bool(msg.quarantine_reasons)
