"""PDF reports from laboratories and imaging centres (round 7): what real French reports and
scans still made us read wrong. One patient's laboratory reports of different days printed in
one PDF (every result was dated by the first report's specimen); two reports printed on one
page (one entry); a PDF/A-3 carrying its CDA (ignored; now read through the CDA path, the PDF
kept as the document, and checked against the patient printed); an analysis named at a page's
foot with its values on the next (dropped unsaid); blank pages OCR'd for nothing.
Born-digital PDFs are written with samples/generate_pdf.py's writer (tests/test_pdf_round3.py's
helpers) or by hand (tests/test_pdf_parser.build_pdf), read by parsers.pdf and normalized as
the pipeline does; no OCR here (the blank page is asserted never rasterised)."""

from __future__ import annotations

import csv
import hashlib
import io
import zlib

import pypdfium2 as pdfium
import pytest
from sqlalchemy import select

from dossiers.schema import entries, imports
from normalizers.cda import normalize_cda
from parsers.cda import parse_cda
from parsers.pdf import TEXT_LAYER, PdfLimits, PdfParseError, parse_pdf
from parsers.pdf import _ocr as ocrmod
from pipelines.dossier_admin import DossierInput, create_dossiers
from pipelines.intake import Received, intake
from pipelines.process import drain
from samples import generate_pdf as g
from tests.conftest import SAMPLES
from tests.test_pdf_parser import build_pdf
from tests.test_pdf_round2 import _report
from tests.test_pdf_round3 import C_HEAD, LE_GOFF, LEFEVRE, C, _lab_pdf_pages, _read, _row

CERBA = ("centre", "LABORATOIRE CERBA - Biologie médicale")


def _cerba(collected: str, creatinine: str, potassium: str, validated: str) -> list[tuple]:
    return [CERBA, *LEFEVRE, ("label", f"Prélèvement du {collected}"), ("title", "BIOCHIMIE"),
            C_HEAD, _row(C, "Créatinine", creatinine, "µmol/L", "(45 - 84)"),
            _row(C, "Potassium", potassium, "mmol/L", "(3,5 - 5,0)"),
            ("body", f"Validé le {validated} par Dr Anne KERGOAT")]


def _dated(msg) -> list[tuple]:  # noqa: ANN001
    return [(e.type, e.code, e.value, e.effective) for e in msg.entries]


# -- one patient's reports of different days in one PDF ----------------------------------------
def test_one_patients_reports_of_two_days_are_two_reports_each_dated_by_its_specimen() -> None:
    """A laboratory's print of a patient's January and March reports in one PDF: one report
    entry, and March's creatinine and potassium filed as of 12 January (the first page's
    specimen), beside January's. Each page naming the patient and a specimen of another day
    is now its own report, its results dated by its own collection."""
    msg = _read(g.write_pdf(_lab_pdf_pages(
        _cerba("12/01/2026 à 08h15", "72", "4,2", "12/01/2026 à 14h02"),
        _cerba("12/03/2026 à 09h30", "68", "5,8", "12/03/2026 à 15h10")), title="Lot"))
    assert msg.patients is None and msg.identity.family == "LEFÈVRE"
    assert msg.warnings[0].startswith("REPORT_SEVERAL: the PDF holds 2 reports")
    assert _dated(msg) == [
        ("report", None, None, "2026-01-12"),
        ("lab_result", "14682-9", "72", "2026-01-12T08:15+01:00"),
        ("lab_result", "2823-3", "4,2", "2026-01-12T08:15+01:00"),
        ("report", None, None, "2026-03-12"),
        ("lab_result", "14682-9", "68", "2026-03-12T09:30+01:00"),
        ("lab_result", "2823-3", "5,8", "2026-03-12T09:30+01:00")]
    assert len({e.key for e in msg.entries}) == 6


def test_a_report_repeating_its_patient_and_specimen_or_former_results_stays_one() -> None:
    """Page 2 reprinting the patient block and the same collection, or a page of former
    results under its 'Résultats antérieurs' heading with their own collection day: one
    report (they are not another day's report)."""
    page1 = _cerba("12/03/2026 à 09h30", "68", "5,8", "12/03/2026 à 15h10")[:-1]
    same = [CERBA, *LEFEVRE, ("label", "Prélèvement du 12/03/2026"), ("title", "HÉMATOLOGIE"),
            C_HEAD, _row(C, "Hémoglobine", "13,2", "g/dL", "(12,0 - 16,0)")]
    former = [CERBA, *LEFEVRE, ("title", "Résultats antérieurs"),
              ("label", "Prélèvement du 12/01/2026"),
              _row(C, "Créatinine", "72", "µmol/L", "(45 - 84)")]
    for page2 in (same, former):
        msg = _read(g.write_pdf(_lab_pdf_pages(page1, page2), title="CR"))
        assert not any(w.startswith("REPORT_SEVERAL") for w in msg.warnings)
        assert [e.type for e in msg.entries].count("report") == 1
        assert {e.effective for e in msg.entries if e.type == "lab_result"} == {
            "2026-03-12T09:30+01:00"}


# -- a PDF/A-3 carrying its structured copy (an embedded CDA) ---------------------------------
LE_GOFF_PAGE = [("centre", "LABORATOIRE LABM DES CHARMES - Biologie médicale"), *LE_GOFF,
                ("label", "Prélèvement du 04/02/2025 à 08h30"), ("title", "BIOCHIMIE"), C_HEAD,
                _row(C, "Glycémie à jeun", "5,20", "mmol/L", "(4,10 - 5,90)")]


def _with_attachment(pdf: bytes, name: str, data: bytes) -> bytes:
    """``pdf`` with ``data`` embedded as a PDF/A-3 producer attaches a file (pdfium)."""
    doc = pdfium.PdfDocument(pdf)
    doc.new_attachment(name).set_data(data)
    buf = io.BytesIO()
    doc.save(buf)
    doc.close()
    return buf.getvalue()


def _filed(ctx, data: bytes) -> tuple[list[tuple], dict]:  # noqa: ANN001
    with open(SAMPLES / "patients.csv", encoding="utf-8") as fh:
        create_dossiers(ctx.engine, [DossierInput.from_mapping(r) for r in csv.DictReader(fh)
                                     if r["key"] == "K2"])
    intake(ctx.engine, ctx.archive, [Received(data, "labm-charmes", "file", file_name="cr.pdf")])
    drain(ctx)
    with ctx.engine.connect() as conn:
        rows = conn.execute(select(entries.c.type, entries.c.code, entries.c.media_type,
                                   entries.c.attachment_sha256).order_by(entries.c.id)).all()
        row = conn.execute(select(imports)).one()._asdict()
    row["warnings"] = "\n".join(row["warnings"] or [])
    return [tuple(r) for r in rows], row


def test_an_embedded_cda_is_filed_through_the_cda_path_with_the_pdf_as_the_document(
        sqlite_ctx) -> None:  # noqa: ANN001
    """A LIS's PDF/A-3 report with its CR-BIO attached: the CDA was ignored ('not read'
    warning) and the printed table read instead (a glycaemia under its printed name, no INS).
    The CDA now files its own coded entries, exactly those it files when received alone,
    and the document entry's file is the PDF (what people read), not the XML."""
    cda = (SAMPLES / "cda" / "01_crbio_labm_lipides_glycemie.xml").read_bytes()
    pdf = _with_attachment(g.write_pdf(_lab_pdf_pages(LE_GOFF_PAGE), title="CR"),
                           "LE_GOFF_Jerome_CR-BIO.xml", cda)
    doc = parse_pdf(pdf, PdfLimits(processes=1))
    assert len(doc.embedded) == 1 and doc.embedded[0].data == cda
    assert not any(w.startswith("PDF_ATTACHMENTS") for w in doc.warnings)
    rows, row = _filed(sqlite_ctx, pdf)
    assert row["status"] == "deposited" and "PDF_EMBEDDED_CDA: " in row["warnings"]
    assert "LE_GOFF" not in row["warnings"] and "Goff" not in row["warnings"]
    alone = normalize_cda(parse_cda(cda), cda, "labm-charmes")
    assert [(t, c) for t, c, *_ in rows] == [(e.type, e.code) for e in alone.entries]
    document = [r for r in rows if r[0] == "document"]
    assert document == [("document", "11502-2", "application/pdf",
                         hashlib.sha256(pdf).hexdigest())]


def test_an_embedded_cda_that_cannot_be_read_is_said_and_the_pages_are_read(sqlite_ctx) -> None:  # noqa: ANN001
    """A broken CDA attached (truncated XML): the report is read from its pages as before,
    with a warning naming the embedded file and the CDA parser's code."""
    cda = (SAMPLES / "cda" / "01_crbio_labm_lipides_glycemie.xml").read_bytes()[:3000]
    pdf = _with_attachment(g.write_pdf(_lab_pdf_pages(LE_GOFF_PAGE), title="CR"),
                           "cr.xml", cda)
    rows, row = _filed(sqlite_ctx, pdf)
    assert row["status"] == "deposited"
    assert "PDF_EMBEDDED_CDA_UNREADABLE: embedded file 1 is a CDA document that cannot be " \
           "read (CDA_NOT_XML" in row["warnings"]
    assert [(t, c, m) for t, c, m, _ in rows] == [("report", None, "application/pdf"),
                                                  ("lab_result", "14749-6", None)]


def _pdf_a3(attachment: bytes, catalog_files: bytes) -> bytes:
    """A one-page PDF whose catalog lists a deflated embedded file as a PDF/A-3 producer
    does (``catalog_files``: the catalog's /Names and/or /AF, the file spec being object 6)."""
    page = b"BT /F1 12 Tf 72 770 Td (Compte rendu de biologie - voir le fichier joint) Tj ET"
    packed = zlib.compress(attachment, 9)
    return build_pdf([
        b"<< /Type /Catalog /Pages 2 0 R " + catalog_files + b" >>",
        b"<< /Type /Pages /Kids [4 0 R] /Count 1 >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources "
        b"<< /Font << /F1 3 0 R >> >> /Contents 5 0 R >>",
        b"<< /Length %d >>\nstream\n" % len(page) + page + b"\nendstream",
        b"<< /Type /Filespec /F (cr-bio.xml) /UF (cr-bio.xml) /AFRelationship /Alternative "
        b"/EF << /F 7 0 R >> >>",
        b"<< /Type /EmbeddedFile /Subtype /text#2Fxml /Filter /FlateDecode /Length %d >>\n"
        b"stream\n" % len(packed) + packed + b"\nendstream"])


def test_an_embedded_file_is_found_by_af_and_names_once_and_inflated_within_the_budget() -> None:
    """PDF/A-3 lists its associated file twice (the catalog's /AF and the /EmbeddedFiles
    name tree): read once, with its /Subtype and /AFRelationship. A deflated attachment
    inflating past the document's budget (a bomb) is PDF_TOO_LARGE, never read whole."""
    cda = (SAMPLES / "cda" / "01_crbio_labm_lipides_glycemie.xml").read_bytes()
    both = b"/Names << /EmbeddedFiles << /Names [(cr-bio.xml) 6 0 R] >> >> /AF [6 0 R]"
    doc = parse_pdf(_pdf_a3(cda, both), PdfLimits(processes=1))
    assert [(f.data == cda, f.media_type, f.relationship) for f in doc.embedded] == [
        (True, "text/xml", "Alternative")]
    assert doc.warnings == []
    only_af = parse_pdf(_pdf_a3(cda, b"/AF [6 0 R]"), PdfLimits(processes=1))
    assert len(only_af.embedded) == 1
    bomb = cda.replace(b"<ClinicalDocument", b"<!--" + b" " * 3_000_000 + b"-->"
                       b"<ClinicalDocument", 1)
    with pytest.raises(PdfParseError) as caught:
        parse_pdf(_pdf_a3(bomb, both), PdfLimits(processes=1, max_inflated_bytes=1_000_000))
    assert (caught.value.code, caught.value.location) == ("PDF_TOO_LARGE", "embedded files")


# -- a result cut by the page break --------------------------------------------------------------
def _cut(name: str, values: tuple[str, ...]) -> list[list[tuple]]:
    """Page 1 ends with ``name`` alone over the footer; page 2 reprints the laboratory, a
    patient banner and the table's heading, then ``values`` (name column first)."""
    page1 = [CERBA, *LEFEVRE, ("label", "Prélèvement du 12/03/2026 à 08h15"),
             ("title", "BIOCHIMIE"), C_HEAD, _row(C, "Créatinine", "68", "µmol/L", "(45 - 84)"),
             _row(C, name), ("body", "Edité le 12/03/2026 - page 1/2")]
    page2 = [CERBA, ("small", "LEFÈVRE Hélène - née le 14/03/1968 - Dossier 260312-0042"),
             C_HEAD, _row(C, *values), _row(C, "Potassium", "4,2", "mmol/L", "(3,5 - 5,0)"),
             ("body", "Edité le 12/03/2026 - page 2/2")]
    return [page1, page2]


def test_an_analysis_named_at_the_foot_of_a_page_and_valued_on_the_next_is_one_result() -> None:
    """'Hémoglobine glyquée (HbA1c)' last on page 1, its '6,5 %' on page 2 under the repeated
    heading: the HbA1c was dropped without a word (and its name kept as a comment of the
    creatinine). The name is now carried over the page break to its values; with the
    abbreviation on page 2 the whole name is the result's too."""
    for name, values in (("Hémoglobine glyquée (HbA1c)", ("", "6,5", "%", "(4,0 - 6,0)")),
                         ("Hémoglobine glyquée", ("(HbA1c)", "6,5", "%", "(4,0 - 6,0)"))):
        msg = _read(g.write_pdf(_lab_pdf_pages(*_cut(name, values)), title="CR"))
        found = [(e.display, e.code, e.value, e.unit, e.reference_range)
                 for e in msg.entries if e.type == "lab_result"]
        assert found == [("Créatinine", "14682-9", "68", "umol/L", "45 - 84"),
                         ("Hémoglobine glyquée (HbA1c)", "4548-4", "6,5", "%", "4,0 - 6,0"),
                         ("Potassium", "2823-3", "4,2", "mmol/L", "3,5 - 5,0")]
        assert "comment" not in msg.entries[1].details and msg.warnings == []


def test_values_whose_name_cannot_be_told_over_the_page_break_are_said_not_dropped() -> None:
    """The line at the foot of page 1 is no analysis we know (a name or a comment: it cannot
    be told): the values under page 2's heading with no name are not filed, and now said."""
    msg = _read(g.write_pdf(_lab_pdf_pages(*_cut("Facteur rhumatoïde IgM",
                                                 ("", "6,5", "UI/mL", "(< 14)"))), title="CR"))
    assert [e.code for e in msg.entries if e.type == "lab_result"] == ["14682-9", "2823-3"]
    assert [w.split(":")[0:2] for w in msg.warnings] == [["PDF_LAB_NAME_NOT_READ",
                                                           " page 2 line 4"]]


# -- two reports on one page -------------------------------------------------------------------
def test_two_exams_printed_on_one_page_are_two_reports() -> None:
    """A mammography and its breast ultrasound printed one under the other on one page: one
    entry, the ultrasound's modality and conclusion lost. A title line under a conclusion
    now starts another report on the page (with the rules that tell pages apart)."""
    page = [*_report("MAMMOGRAPHIE BILATÉRALE", LEFEVRE, "05/05/2025", "ACR 1 bilatéral."),
            *_report("ÉCHOGRAPHIE MAMMAIRE BILATÉRALE", LEFEVRE, "05/05/2025",
                     "Pas d'anomalie échographique. ACR 1.")]
    pages = g.layout(page)
    assert len(pages) == 1
    msg = _read(g.write_pdf(pages, title="CR"))
    assert msg.patients is None and msg.identity.family == "LEFÈVRE"
    assert [(e.code, e.value, e.effective) for e in msg.entries] == [
        ("MG", "ACR 1 bilatéral.", "2025-05-05"),
        ("US", "Pas d'anomalie échographique. ACR 1.", "2025-05-05")]
    assert [e.details["report_lines"][0] for e in msg.entries] == [1, 14]
    # a conclusion naming an exam ('Échographie de contrôle ...') starts no report: it has
    # no conclusion of its own, it stays the first one's
    for conclusion in ("Échographie de contrôle dans 6 mois", "Échographie normale."):
        page = [*_report("ÉCHOGRAPHIE ABDOMINALE", LEFEVRE, "05/05/2025", conclusion),
                *_report("RADIOGRAPHIE DU THORAX", LEFEVRE, "05/05/2025", "Pas de foyer.")]
        msg = _read(g.write_pdf(g.layout(page), title="CR"))
        assert [(e.code, e.display, e.value) for e in msg.entries] == [
            ("US", "ÉCHOGRAPHIE ABDOMINALE", conclusion),
            ("XR", "RADIOGRAPHIE DU THORAX", "Pas de foyer.")]


def test_two_laboratory_reports_on_one_page_each_with_its_own_results() -> None:
    """January's report, validated, then March's under it on the same page: each its own
    report with its own results, dated by its own specimen (a shared page's results are
    read on each report's lines only, never twice)."""
    page = [*_cerba("12/01/2026 à 08h15", "72", "4,2", "12/01/2026 à 14h02"),
            *_cerba("12/03/2026 à 09h30", "68", "5,8", "12/03/2026 à 15h10")]
    msg = _read(g.write_pdf(_lab_pdf_pages(page), title="Lot"))
    assert _dated(msg) == [
        ("report", None, None, "2026-01-12"),
        ("lab_result", "14682-9", "72", "2026-01-12T08:15+01:00"),
        ("lab_result", "2823-3", "4,2", "2026-01-12T08:15+01:00"),
        ("report", None, None, "2026-03-12"),
        ("lab_result", "14682-9", "68", "2026-03-12T09:30+01:00"),
        ("lab_result", "2823-3", "5,8", "2026-03-12T09:30+01:00")]
    assert msg.warnings[0].startswith("REPORT_SEVERAL: the PDF holds 2 reports (page 1 lines")


# -- a page that draws nothing ------------------------------------------------------------------
def test_the_blank_back_of_a_duplex_print_is_empty_without_ocr(monkeypatch) -> None:  # noqa: ANN001
    """A report printed recto-verso with blank backs: each blank page was rasterised and
    read by tesseract (seconds a page; a batch's blank backs reached the time limit, and a
    worker without tesseract failed a born-digital report). A page drawing nothing is now
    empty at once, said as before (PDF_PAGE_EMPTY)."""
    def no_render(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise AssertionError("a blank page was rasterised")

    monkeypatch.setattr(ocrmod, "render_page", no_render)
    pages = g.layout(_report("IRM DU GENOU DROIT", LEFEVRE, "12/03/2025", "Normal."))
    data = g.write_pdf([pages[0], [], pages[0], []], title="CR")
    doc = parse_pdf(data, PdfLimits(processes=1))
    assert [(p.source, len(p.words) > 0) for p in doc.pages] == [
        (TEXT_LAYER, True), (TEXT_LAYER, False), (TEXT_LAYER, True), (TEXT_LAYER, False)]
    assert doc.warnings == ["PDF_PAGE_EMPTY: page 2 has no text",
                            "PDF_PAGE_EMPTY: page 4 has no text"]


def test_an_embedded_cda_of_another_patient_than_the_printed_one_is_quarantined(
        sqlite_ctx) -> None:  # noqa: ANN001
    """The CDA attached to Mme LEFÈVRE's printed report is M. LE GOFF's (a LIS attaching the
    wrong file): filed on the CDA's identity, the PDF showing Mme LEFÈVRE would have been in
    M. LE GOFF's dossier. Quarantined, saying on which page and which field disagree, never
    their values."""
    cda = (SAMPLES / "cda" / "01_crbio_labm_lipides_glycemie.xml").read_bytes()
    page = [LE_GOFF_PAGE[0], *LEFEVRE, *LE_GOFF_PAGE[3:]]
    pdf = _with_attachment(g.write_pdf(_lab_pdf_pages(page), title="CR"), "cr.xml", cda)
    rows, row = _filed(sqlite_ctx, pdf)
    assert rows == [] and row["status"] == "quarantined"
    assert (row["error_code"], row["error_location"]) == ("PDF_EMBEDDED_CDA_PATIENT_MISMATCH",
                                                          "page 1")
    assert "(birth date)" in row["error_message"] and "1968" not in row["error_message"]
