"""PDF reports from senders not seen before (round 2): several reports in one PDF, headers and
footers repeated on every page, rotated and cropped pages, odd text layers (combining accents,
no-break spaces), form fields, lab reports printed to PDF. Born-digital PDFs are written with
samples/generate_pdf.py's writer or, for what it cannot express (/Rotate, /CropBox, fonts with
a /ToUnicode map, AcroForm), by hand as real producers write them (tests/test_pdf_parser's
build_pdf); read by parsers.pdf (pdfplumber) and normalized as the pipeline does."""

from __future__ import annotations

import csv
import io
import shutil
import zlib

import pypdfium2 as pdfium
import pytest
from sqlalchemy import select

from dossiers.schema import entries, imports
from normalizers.report import normalize_report
from parsers.pdf import OCR, TEXT_LAYER, PdfLimits, PdfParseError, parse_pdf
from pipelines.dossier_admin import DossierInput, create_dossiers
from pipelines.intake import Received, intake
from pipelines.process import drain
from samples import generate_pdf as g
from tests.conftest import SAMPLES
from tests.test_pdf_parser import build_pdf, image_pdf, make_scan


def _read(data: bytes):  # noqa: ANN202
    doc = parse_pdf(data, PdfLimits(processes=1))
    return doc, normalize_report(doc, data, "round2")


def _values(entry) -> dict:  # noqa: ANN001
    return {k: v["value"] for k, v in entry.details["fields"].items()}


def _report(title: str, patient: list[tuple[str, str]], date: str, conclusion: str,
            signer: str = "Dr Hélène VIDAL") -> list[tuple[str, str]]:
    return [("centre", "IMAGERIE MÉDICALE DES LILAS"), ("small", "12 rue des Lilas, 69003 Lyon"),
            ("title", title), *patient, ("label", f"Examen du {date}"),
            ("head", "Technique :"), ("body", "Acquisition standard."),
            ("head", "Conclusion :"), ("body", conclusion), ("body", signer)]


LEFEVRE = [("label", "Patient : Mme LEFÈVRE Hélène"), ("label", "Née le 14/03/1968")]
LE_GOFF = [("label", "Patient : M. LE GOFF Jérôme"), ("label", "Né le 02/11/1955")]


def _pages(*reports: list[tuple[str, str]]) -> bytes:
    pages = []
    for blocks in reports:
        pages += g.layout(blocks)
    return g.write_pdf(pages, title="Comptes rendus")


# -- several reports in one PDF -----------------------------------------------------------------
def test_two_patients_in_one_pdf_are_filed_each_in_their_own_dossier(sqlite_ctx) -> None:  # noqa: ANN001
    """A centre's batch print: Mme Lefèvre's knee MRI then M. Le Goff's chest X-ray. All of it
    was filed as one report in Mme Lefèvre's dossier (her identity read first, his report's
    text and PDF in her record)."""
    data = _pages(_report("IRM DU GENOU DROIT", LEFEVRE, "12/03/2025",
                          "Fissure horizontale du ménisque interne."),
                  _report("RADIOGRAPHIE DU THORAX", LE_GOFF, "12/03/2025",
                          "Pas de foyer pulmonaire."))
    _, msg = _read(data)
    assert [e.code for e in msg.entries] == ["MR", "XR"]
    assert [e.details["report_pages"] for e in msg.entries] == [[1], [2]]
    assert [(p.location, p.identity.family, p.identity.birth_date, p.entries)
            for p in msg.patients] == [("page 1", "LEFÈVRE", "1968-03-14", 1),
                                       ("page 2", "LE GOFF", "1955-11-02", 1)]
    assert msg.identity.family == ""  # nothing can be filed on the message's identity
    assert msg.warnings[0].startswith("REPORT_SEVERAL: the PDF holds 2 reports (page 1; page 2)")

    ctx = sqlite_ctx
    with open(SAMPLES / "patients.csv", encoding="utf-8") as fh:
        create_dossiers(ctx.engine, [DossierInput.from_mapping(r) for r in csv.DictReader(fh)
                                     if r["key"] in ("K1", "K2")])
    intake(ctx.engine, ctx.archive, [Received(data, "imaging", "file", file_name="lot.pdf")])
    drain(ctx)
    with ctx.engine.connect() as conn:
        row = conn.execute(select(imports)).one()
        filed = conn.execute(select(entries.c.patient_id, entries.c.code, entries.c.value)
                             .order_by(entries.c.code)).all()
    assert (row.status, row.entries_count) == ("deposited", 2), row.error_message
    assert len({patient for patient, _, _ in filed}) == 2
    assert [(code, value) for _, code, value in filed] == [
        ("MR", "Fissure horizontale du ménisque interne."), ("XR", "Pas de foyer pulmonaire.")]


def test_a_page_naming_another_patient_without_birth_date_is_not_filed_with_the_first():
    """The second report prints the name only: it is a report of its own, quarantined for its
    missing birth date (page 2), instead of going to the first patient's dossier."""
    _, msg = _read(_pages(_report("IRM DU GENOU DROIT", LEFEVRE, "12/03/2025", "Normal."),
                          _report("RADIOGRAPHIE DU THORAX", LE_GOFF[:1], "12/03/2025",
                                  "Pas de foyer pulmonaire.")))
    assert [p.location for p in msg.patients] == ["page 1", "page 2"]
    assert msg.quarantine_reasons[0].startswith("IDENTITY_NOT_FOUND page 2: birth date")


def test_the_family_doctor_named_on_a_page_is_no_other_patient() -> None:
    """'Médecin traitant : Mme Sophie BERNARD' was read as the patient when no 'Patient' label
    came before it (the civility is all that names the patient there), and on page 2 of a
    report it would have made page 2 another patient's report."""
    blocks = [("centre", "IMAGERIE MÉDICALE DES LILAS"), ("title", "SCANNER THORACIQUE"),
              ("label", "Médecin traitant : Mme Sophie BERNARD"),
              ("label", "Mme LEFÈVRE Hélène"), ("label", "Née le 14/03/1968"),
              ("label", "Examen du 12/03/2025"), ("head", "Conclusion :"),
              ("body", "Pas de nodule suspect."), ("body", "Dr Paul ROCHE")]
    _, msg = _read(g.write_pdf(g.layout(blocks), title="CR"))
    assert (msg.identity.family, msg.identity.given) == ("LEFÈVRE", "Hélène")
    body = [("body", "Coupes axiales et reconstructions multiplanaires sans anomalie.")] * 45
    blocks = [*_report("SCANNER THORACIQUE", LEFEVRE, "12/03/2025", "Pas de nodule suspect.")]
    blocks[6:6] = [("head", "Résultats :"), *body]
    blocks.append(("small", "Médecin traitant : Mme Sophie BERNARD"))
    pages = g.layout(blocks)
    banner = g.Line("small", "LEFÈVRE Hélène - née le 14/03/1968 - SCANNER THORACIQUE", 56, 800)
    _, msg = _read(g.write_pdf([pages[0], [banner, *pages[1]]], title="CR"))
    assert len(pages) == 2 and len(msg.entries) == 1 and msg.patients is None


def test_two_exams_of_one_patient_are_two_reports() -> None:
    """Two exams the same day printed in one PDF: two reports for one patient (the second
    exam's modality, region and conclusion were lost)."""
    _, msg = _read(_pages(
        _report("MAMMOGRAPHIE BILATÉRALE", LEFEVRE, "05/05/2025", "ACR 1 bilatéral."),
        _report("ÉCHOGRAPHIE MAMMAIRE BILATÉRALE", LEFEVRE, "05/05/2025",
                "Pas d'anomalie échographique. ACR 1.")))
    assert msg.patients is None and msg.identity.family == "LEFÈVRE"
    assert [(e.code, _values(e)["body_region"], e.value, e.effective) for e in msg.entries] == [
        ("MG", "seins", "ACR 1 bilatéral.", "2025-05-05"),
        ("US", "seins", "Pas d'anomalie échographique. ACR 1.", "2025-05-05")]
    assert len({e.key for e in msg.entries}) == 2


def test_one_report_over_pages_with_the_patient_on_every_page_stays_one() -> None:
    """The banner repeated on every page and the conclusion on page 2: one report."""
    body = [("body", "Coupes axiales et reconstructions multiplanaires sans anomalie.")] * 45
    blocks = [("centre", "IMAGERIE MÉDICALE DES LILAS"), ("title", "SCANNER THORACIQUE"),
              *LEFEVRE, ("label", "Examen du 12/03/2025"), ("head", "Résultats :"), *body,
              ("head", "Conclusion :"), ("body", "Pas de nodule suspect."),
              ("body", "Dr Paul ROCHE")]
    pages = g.layout(blocks)
    assert len(pages) == 2
    banner = [g.Line("small", "LEFÈVRE Hélène - née le 14/03/1968 - SCANNER THORACIQUE", 56, 800)]
    data = g.write_pdf([pages[0], banner + pages[1]], title="CR")
    _, msg = _read(data)
    assert len(msg.entries) == 1 and msg.patients is None
    assert msg.entries[0].value == "Pas de nodule suspect."


def test_conclusion_over_a_page_leaves_the_footer_and_the_banner_out() -> None:
    """The conclusion goes on to page 2: page 1's footer and page 2's patient banner were read
    into it (the patient's name in the conclusion, and another digest for dedupe)."""
    for n in range(38, 52):  # as many result lines as put the page break in the conclusion
        body = [("body", "Coupes axiales et reconstructions multiplanaires sans anomalie.")] * n
        blocks = [("centre", "IMAGERIE MÉDICALE DES LILAS"), ("title", "SCANNER THORACIQUE"),
                  *LEFEVRE, ("label", "Examen du 12/03/2025"), ("head", "Résultats :"), *body,
                  ("head", "Conclusion :"), ("body", "Nodule de 6 mm du lobe supérieur droit."),
                  ("body", "Pas d'adénopathie médiastinale."),
                  ("body", "Absence d'épanchement pleural."), ("body", "Dr Paul ROCHE")]
        pages = g.layout(blocks, footer="IMAGERIE DES LILAS - LEFÈVRE Hélène - 12/03/2025")
        if len(pages) == 2 and pages[1][0].text.startswith("Pas d'ad"):
            break
    banner = g.Line("small", "LEFÈVRE Hélène - née le 14/03/1968 - Examen du 12/03/2025", 56, 800)
    _, msg = _read(g.write_pdf([pages[0], [banner, *pages[1]]], title="CR"))
    assert len(msg.entries) == 1 and msg.entries[0].value == (
        "Nodule de 6 mm du lobe supérieur droit.\nPas d'adénopathie médiastinale.\n"
        "Absence d'épanchement pleural.")


# -- text layers as other producers write them ---------------------------------------------------
def _escape(text: str) -> bytes:
    return text.encode("cp1252").replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")


def _hand_pdf(lines: list[str], *, page: bytes = b"", font: bytes = b"/WinAnsiEncoding",
              extra: tuple[bytes, ...] = (), ops: list[bytes] | None = None) -> bytes:
    """One A4 page of Helvetica 11 lines (object 4 the page, 5 its content, 6.. ``extra``)."""
    ops = list(ops or []) + [b"BT /F1 11 Tf 72 %d Td (%s) Tj ET" % (770 - 16 * i, _escape(t))
                             for i, t in enumerate(lines)]
    stream = b"\n".join(ops)
    return build_pdf([b"<< /Type /Catalog /Pages 2 0 R >>",
                      b"<< /Type /Pages /Kids [4 0 R] /Count 1 >>",
                      b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding " + font
                      + b" >>",
                      b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] " + page
                      + b" /Resources << /Font << /F1 3 0 R >> >> /Contents 5 0 R >>",
                      b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
                      *extra])


REPORT = ["IMAGERIE MÉDICALE DES LILAS", "IRM DU GENOU DROIT", "Patient : Mme LEFÈVRE Hélène",
          "Née le 14/03/1968", "Examen du 12/03/2025", "Conclusion :",
          "Fissure horizontale du ménisque interne.", "Dr Paul ROCHE"]


def _to_unicode(pairs: bytes) -> bytes:
    cmap = (b"/CIDInit /ProcSet findresource begin 12 dict begin begincmap\n"
            b"/CMapName /Adobe-Identity-UCS def /CMapType 2 def\n"
            b"1 begincodespacerange <00> <FF> endcodespacerange\n"
            + pairs + b"\nendcmap CMapName currentdict /CMap defineresource pop end end")
    return b"<< /Length %d >>\nstream\n" % len(cmap) + cmap + b"\nendstream"


def test_accents_as_combining_characters_are_read() -> None:
    """A producer whose /ToUnicode gives 'e' + U+0301 for 'é' (decomposed, NFD): 'Née le',
    'LEFÈVRE' and 'Hélène' were not read (identity not found, quarantined) and the text
    kept decomposed letters (another digest than the same report precomposed)."""
    nfd = _to_unicode(b"4 beginbfchar <E9> <00650301> <C8> <00450300> <E8> <00650300> "
                      b"<C9> <00450301> endbfchar")
    doc, msg = _read(_hand_pdf(REPORT, font=b"/WinAnsiEncoding /ToUnicode 6 0 R", extra=(nfd,)))
    v = _values(msg.entries[0])
    assert (v["family"], v["given"], v["birth_date"], v["sex"]) == (
        "LEFÈVRE", "Hélène", "1968-03-14", "F")
    assert msg.quarantine_reasons == [] and "\u0301" not in doc.text
    assert msg.entries[0].value == "Fissure horizontale du ménisque interne."
    _, plain = _read(_hand_pdf(REPORT))
    assert plain.entries[0].key == msg.entries[0].key


# -- pages turned and cropped ---------------------------------------------------------------------
def _turned(lines: list[str], angle: int) -> list[bytes]:
    """``lines`` drawn turned by ``angle`` degrees counter-clockwise (a landscape layout
    printed on a portrait page, as report engines do), each under the one before."""
    matrix, start, step = {90: ((0, 1, -1, 0), (100, 72), (16, 0)),
                           180: ((-1, 0, 0, -1), (520, 72), (0, 16)),
                           270: ((0, -1, 1, 0), (500, 770), (-16, 0))}[angle]
    return [b"BT /F1 11 Tf %d %d %d %d %d %d Tm (%s) Tj ET" % (
        *matrix, start[0] + step[0] * i, start[1] + step[1] * i, _escape(t))
        for i, t in enumerate(lines)]


def _expect_report(msg) -> None:  # noqa: ANN001
    v = _values(msg.entries[0])
    assert (v["family"], v["given"], v["birth_date"], v["exam_date"], v["body_region"]) == (
        "LEFÈVRE", "Hélène", "1968-03-14", "2025-03-12", "genou droit")
    assert msg.entries[0].value == "Fissure horizontale du ménisque interne."
    assert msg.quarantine_reasons == []


def test_pages_rotated_by_rotate_or_drawn_turned_are_read_in_their_text_direction() -> None:
    """/Rotate 90, 180 or 270 on a page whose text is drawn upright (a page turned in a viewer
    and saved), and text drawn turned with no /Rotate: pdfplumber read the page as displayed,
    each line a column of letters ('GENOU' taken for the family name, or nothing read:
    quarantined). A landscape page drawn turned with its /Rotate was right and stays so."""
    for angle in (90, 180, 270):
        _, msg = _read(_hand_pdf(REPORT, page=b"/Rotate %d" % angle))
        _expect_report(msg)
        _, msg = _read(_hand_pdf([], ops=_turned(REPORT, angle)))
        _expect_report(msg)
        _, msg = _read(_hand_pdf([], ops=_turned(REPORT, angle), page=b"/Rotate %d" % angle))
        _expect_report(msg)


def test_a_margin_note_printed_up_the_side_stays_out_of_the_lines() -> None:
    """'Document imprimé le ... - Page 1/1' printed up the left margin (hospital information
    systems do): its letters were wedged into every line it crossed as one-letter or reversed
    words ('tnemucoD', '5202/30/31'): the conclusion took them and lost its signer. It is now
    one line of its own after the page's, read in its direction; the same up the right
    margin (reading down) and upside down at the foot."""
    note = "Document imprimé le 13/03/2025 à 10:42 - CR n° 2025-000123 - Page 1/1"
    for angle, placed in ((90, b"0 1 -1 0 30 560"), (270, b"0 -1 1 0 570 800"),
                          (180, b"-1 0 0 -1 500 40")):
        doc, msg = _read(_hand_pdf(REPORT, ops=[b"BT /F1 8 Tf %s Tm (%s) Tj ET"
                                                % (placed, _escape(note))]))
        _expect_report(msg)
        assert _values(msg.entries[0])["radiologist"] == "Dr Paul ROCHE", angle
        assert doc.pages[0].text.split("\n")[-1] == note, angle


def test_text_outside_the_crop_box_is_not_read() -> None:
    """Two reports printed side by side on one sheet, split into two pages by crop boxes over
    the same content (what 'split pages' tools write): each page read both reports (the first
    patient read on both, the second one's report filed in her dossier). Now each page reads
    what it shows: two reports, two patients."""
    left = [b"BT /F1 11 Tf 72 %d Td (%s) Tj ET" % (770 - 16 * i, _escape(t))
            for i, t in enumerate(REPORT)]
    other = ["CENTRE DE RADIOLOGIE DU PORT", "RADIOGRAPHIE DU THORAX",
             "Patient : M. LE GOFF Jérôme", "Né le 02/11/1955", "Examen du 12/03/2025",
             "Conclusion :", "Pas de foyer pulmonaire.", "Dr Anne KERGOAT"]
    right = [b"BT /F1 11 Tf 667 %d Td (%s) Tj ET" % (770 - 16 * i, _escape(t))
             for i, t in enumerate(other)]
    stream = b"\n".join(left + right)
    page = (b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 1190 842] /CropBox [%s] "
            b"/Resources << /Font << /F1 3 0 R >> >> /Contents 6 0 R >>")
    data = build_pdf([b"<< /Type /Catalog /Pages 2 0 R >>",
                      b"<< /Type /Pages /Kids [4 0 R 5 0 R] /Count 2 >>",
                      b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica "
                      b"/Encoding /WinAnsiEncoding >>",
                      page % b"0 0 595 842", page % b"595 0 1190 842",
                      b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream"])
    doc, msg = _read(data)
    assert "LE GOFF" not in doc.pages[0].text and "LEFÈVRE" not in doc.pages[1].text
    assert [(p.location, p.identity.family) for p in msg.patients] == [
        ("page 1", "LEFÈVRE"), ("page 2", "LE GOFF")]
    assert [e.value for e in msg.entries] == ["Fissure horizontale du ménisque interne.",
                                              "Pas de foyer pulmonaire."]


# -- odd files ------------------------------------------------------------------------------------
def _form_pdf(labels: list[tuple[str, int]], fields: list[tuple[bytes, bytes, str, int, int]],
              drawn: list[tuple[str, int, int]] = ()) -> bytes:
    """A form as a PDF editor saves it once filled in: printed labels, text fields (/FT /Tx,
    value /V, appearance stream /AP drawing it) and a check box, in the page's /Annots and
    the catalog's /AcroForm; ``drawn``: values also printed in the page's own text."""
    ops = [b"BT /F1 11 Tf %d %d Td (%s) Tj ET" % (x, y, _escape(t))
           for t, x, y in [(t, 72, y) for t, y in labels] + list(drawn)]
    stream = b"\n".join(ops)
    refs = b" ".join(b"%d 0 R" % (6 + 2 * i) for i in range(len(fields)))
    objects = [b"<< /Type /Catalog /Pages 2 0 R /AcroForm << /Fields [%s] /NeedAppearances "
               b"false /DA (/Helv 0 Tf 0 g) /DR << /Font << /Helv 3 0 R >> >> >> >>" % refs,
               b"<< /Type /Pages /Kids [4 0 R] /Count 1 >>",
               b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica "
               b"/Encoding /WinAnsiEncoding >>",
               b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font "
               b"<< /F1 3 0 R >> >> /Contents 5 0 R /Annots [%s] >>" % refs,
               b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream"]
    for i, (kind, name, value, x, y) in enumerate(fields):
        shown = value.replace("\r", " ")
        ap = b"/Tx BMC BT /Helv 10 Tf 2 4 Td (%s) Tj ET EMC" % _escape(shown)
        v = b"/%s" % value.encode() if kind == b"Btn" else b"(%s)" % _escape(value)
        objects.append(b"<< /Type /Annot /Subtype /Widget /F 4 /FT /%s /T (%s) /V %s "
                       b"/Rect [%d %d %d %d] /P 4 0 R /DA (/Helv 10 Tf 0 g) /AP << /N %d 0 R >> >>"
                       % (kind, name, v, x, y - 4, x + 320, y + 12, 7 + 2 * i))
        objects.append(b"<< /Type /XObject /Subtype /Form /BBox [0 0 320 16] /Resources << /Font "
                       b"<< /Helv 3 0 R >> >> /Length %d >>\nstream\n" % len(ap) + ap
                       + b"\nendstream")
    return build_pdf(objects)


FORM_LABELS = [("IMAGERIE MÉDICALE DES LILAS", 780), ("IRM DU GENOU DROIT", 760),
               ("Nom :", 720), ("Prénom :", 704), ("Date de naissance :", 688),
               ("Date de l'examen :", 672), ("Urgent :", 656), ("Conclusion :", 630)]
FORM_FIELDS = [(b"Tx", b"nom", "LEFÈVRE", 200, 718), (b"Tx", b"prenom", "Hélène", 200, 702),
               (b"Tx", b"ddn", "14/03/1968", 200, 686), (b"Tx", b"date", "12/03/2025", 200, 670),
               (b"Btn", b"urgent", "Off", 200, 654),
               (b"Tx", b"conclusion", "Fissure horizontale\rdu ménisque interne.", 72, 612)]


def test_form_field_values_are_the_content() -> None:
    """A report typed into a PDF form: the patient, the date and the conclusion are the
    fields' values (shown by every viewer from the widgets), not in the page's text. None
    was read (IDENTITY_NOT_FOUND, no conclusion). A check box says no text."""
    doc, msg = _read(_form_pdf(FORM_LABELS, FORM_FIELDS))
    v = _values(msg.entries[0])
    assert (v["family"], v["given"], v["birth_date"], v["exam_date"], v["body_region"]) == (
        "LEFÈVRE", "Hélène", "1968-03-14", "2025-03-12", "genou droit")
    assert msg.entries[0].value == "Fissure horizontale\ndu ménisque interne."
    assert msg.quarantine_reasons == []
    assert "Nom : LEFÈVRE" in doc.pages[0].text and "Off" not in doc.pages[0].text
    # a form flattened into the page's text, its widgets kept: each value read once
    drawn = [(v.replace("\r", " "), x + 2, y) for kind, _, v, x, y in FORM_FIELDS if kind == b"Tx"]
    doc, msg = _read(_form_pdf(FORM_LABELS, FORM_FIELDS, drawn))
    assert doc.pages[0].text.count("LEFÈVRE") == 1 and msg.entries[0].details["fields"][
        "family"]["value"] == "LEFÈVRE"


# -- a laboratory's report printed to PDF ------------------------------------------------
def test_lab_report_printed_to_pdf_is_dated_by_its_specimen() -> None:
    """A lab's report as PDF: its date is the specimen's collection ('Prélevé le 03/03/26 à
    08:15', two-digit year), which was read nowhere (no effective date: the report undated in
    the dossier, its dedupe key 'nodate'). Its results are in the report's text, and since
    round 3 also coded results under it (tests/test_pdf_round3.py)."""
    blocks = [("centre", "LABORATOIRE DE BIOLOGIE MÉDICALE BIOLAB"),
              ("small", "5 avenue Jean Jaurès, 69007 Lyon"), *LEFEVRE,
              ("label", "Prescripteur : Dr Paul ROCHE"),
              ("label", "Prélevé le 03/03/26 à 08:15 - Reçu le 03/03/26 à 10:02"),
              ("title", "HÉMATOLOGIE"),
              ("table", "Analyse | Résultat | Unité | Valeurs de référence"),
              ("table", "Hémoglobine | 13,2 | g/dL | 12,0 - 16,0"),
              ("table", "Créatinine | 68 | µmol/L | 45 - 84"),
              ("body", "Compte rendu validé par le Dr Anne KERGOAT, biologiste, le 3 mars 2026")]
    _, msg = _read(g.write_pdf(g.layout(blocks), title="CR biologie"))
    entry, *results = msg.entries
    assert [(r.code, r.value_num, r.unit, r.effective) for r in results] == [
        ("718-7", 13.2, "g/dL", "2026-03-03T08:15+01:00"),
        ("14682-9", 68.0, "umol/L", "2026-03-03T08:15+01:00")]
    assert (entry.type, entry.effective, entry.issued) == ("report", "2026-03-03", "2026-03-03")
    assert "Créatinine 68 µmol/L 45 - 84" in entry.details["text"]
    assert entry.key.startswith("report|2026-03-03|") and msg.quarantine_reasons == []
    for label in ("Date de prélèvement : 3 mars 2026", "Prélèvement du 03.03.2026",
                  "Date de prélèvement : 2026-03-03"):  # ISO 8601, as RIS and LIS print it
        blocks[5] = ("label", label)  # instead of "Prélevé le ..."
        _, msg = _read(g.write_pdf(g.layout(blocks), title="CR biologie"))
        assert msg.entries[0].effective == "2026-03-03", label


# -- searchable scans: the scanner's OCR text layer --------------------------------------
def _searchable_scan(layer: list[str]) -> bytes:
    """A scanned report (150 dpi page image of REPORT) with ``layer`` as invisible text over
    it (text render mode 3), as scanners and OCR tools write a searchable PDF."""
    img = make_scan(REPORT, dpi=150)
    w_pt, h_pt = img.width * 72 / 150, img.height * 72 / 150
    raw = zlib.compress(img.tobytes())
    ops = [b"q %.2f 0 0 %.2f 0 0 cm /Im1 Do Q" % (w_pt, h_pt)]
    ops += [b"BT 3 Tr /F1 11 Tf 58 %.2f Td (%s) Tj ET" % (h_pt - 30 - 19.8 * i, _escape(t))
            for i, t in enumerate(layer)]
    content = b"\n".join(ops)
    return build_pdf([
        b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [4 0 R] /Count 1 >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %.2f %.2f] /Resources << /Font "
        b"<< /F1 3 0 R >> /XObject << /Im1 6 0 R >> >> /Contents 5 0 R >>" % (w_pt, h_pt),
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
        b"<< /Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /DeviceGray "
        b"/BitsPerComponent 8 /Filter /FlateDecode /Length %d >>\nstream\n"
        % (img.width, img.height, len(raw)) + raw + b"\nendstream"])


def test_a_short_searchable_scan_keeps_the_scanners_text_layer() -> None:
    """A one-page report scanned with its OCR layer: under 200 letters, the layer was taken
    for a fax header stamped on a scan and thrown away, the page OCR'd again (seconds per
    page, and tesseract's errors instead of the scanner's reading). Invisible text is the
    scanner's OCR: it is read."""
    doc, msg = _read(_searchable_scan(REPORT))
    assert doc.pages[0].source == TEXT_LAYER
    _expect_report(msg)


@pytest.mark.skipif(shutil.which("tesseract") is None, reason="tesseract is absent")
def test_a_garbled_scanner_text_layer_is_read_again_by_ocr() -> None:
    """A scanner whose OCR read nonsense (wrong language, wrong orientation): its layer was
    kept, however long, and the report read as nothing (quarantined). Now the page is OCR'd."""
    garbage = ["~ï¿½ |\\l; Xrtpq Mzzkl ^^ ¤¤ Wxcvbn Pqrst #Jkl Mnbvc Zxcv Trqs Plmk",
               "Grzx Wvtp ¬¬ Ksdf Qwrt Zxcvb |||| Bnmk Lkjh Gfds Trez Mlkj Nbvc"] * 3
    doc, msg = _read(_searchable_scan(garbage))
    assert doc.pages[0].source == OCR
    v = _values(msg.entries[0])
    assert (v["family"], v["birth_date"], v["exam_date"]) == ("LEFÈVRE", "1968-03-14",
                                                            "2025-03-12")


def test_embedded_files_are_said_not_dropped_silently() -> None:
    """A PDF/A-3 report carrying its structured copy as an attachment (an HPRIM file: a
    CDA is read since round 7, tests/test_pdf_round7.py): the file was ignored without a
    word. Its pages are read as before, and a warning says how many files it carries (their
    names are not said: they may name the patient)."""
    pdf = pdfium.PdfDocument(_hand_pdf(REPORT))
    pdf.new_attachment("LEFEVRE_Helene_CR.hpr").set_data(
        b"H|~^\\&|||LABO|||||||P|H2.2|20250312\rP|1||||LEFEVRE^HELENE\rL|1\r")
    buf = io.BytesIO()
    pdf.save(buf)
    pdf.close()
    doc, msg = _read(buf.getvalue())
    _expect_report(msg)
    said = [w for w in doc.warnings if w.startswith("PDF_ATTACHMENTS: ")]
    assert len(said) == 1 and "1 embedded file(s)" in said[0] and "LEFEVRE" not in said[0]
    assert _read(_hand_pdf(REPORT))[0].warnings == []


@pytest.mark.skipif(shutil.which("tesseract") is None, reason="tesseract is absent")
def test_a_page_scanned_sideways_is_turned_upright_and_read() -> None:
    """A report fed into the scanner sideways (the page image turned, no /Rotate to say it):
    tesseract read scraps at confidence 37 ('SZOZ/£0/TT'), the report quarantined with no
    patient found. Its orientation is now asked of tesseract (OSD) and the page read upright."""
    sideways = make_scan(REPORT, dpi=150).rotate(90, expand=True)
    doc, msg = _read_dpi(image_pdf([sideways], dpi=150), 150)
    assert doc.pages[0].source == OCR and doc.pages[0].confidence > 60
    v = _values(msg.entries[0])
    assert (v["family"], v["birth_date"], v["exam_date"]) == ("LEFÈVRE", "1968-03-14",
                                                            "2025-03-12")


def _read_dpi(data: bytes, dpi: int):  # noqa: ANN202
    doc = parse_pdf(data, PdfLimits(processes=1, dpi=dpi))
    return doc, normalize_report(doc, data, "round2")


# -- checked and right: pinned ---------------------------------------------------------------------
def test_empty_user_password_opens_and_a_real_one_is_refused_with_its_code() -> None:
    """Encrypted with an empty user password (an owner password only: print or copy
    restrictions, any viewer opens it): read. A real user password: PDF_ENCRYPTED."""
    pages = g.layout(_report("IRM DU GENOU DROIT", LEFEVRE, "12/03/2025", "Normal."))
    _, msg = _read(g.write_pdf(pages, title="CR", user_password=""))
    assert msg.identity.family == "LEFÈVRE" and msg.entries[0].value == "Normal."
    with pytest.raises(PdfParseError) as err:
        parse_pdf(g.write_pdf(pages, title="CR", user_password="secret"))
    assert err.value.code == "PDF_ENCRYPTED" and "LEFÈVRE" not in err.value.message


def test_an_incremental_update_is_read_as_last_saved() -> None:
    """A report corrected and saved again by appending (incremental update: a new content
    stream, a new xref section with /Prev): the last version is read, not the first."""
    base = _hand_pdf(REPORT)
    prev = int(base.rsplit(b"startxref\n", 1)[1].split(b"\n")[0])
    lines = [*REPORT[:-2], "Fissure horizontale du ménisque externe.", "Dr Paul ROCHE"]
    stream = b"\n".join(b"BT /F1 11 Tf 72 %d Td (%s) Tj ET" % (770 - 16 * i, _escape(t))
                        for i, t in enumerate(lines))
    at = len(base)
    update = b"5 0 obj\n<< /Length %d >>\nstream\n" % len(stream) + stream \
        + b"\nendstream\nendobj\n"
    xref = at + len(update)
    update += (b"xref\n0 1\n0000000000 65535 f \n5 1\n%010d 00000 n \ntrailer\n<< /Size 6 "
               b"/Root 1 0 R /Prev %d >>\nstartxref\n%d\n%%%%EOF\n" % (at, prev, xref))
    _, msg = _read(base + update)
    assert msg.entries[0].value == "Fissure horizontale du ménisque externe."


def test_ligatures_and_no_break_spaces_in_dates_and_values() -> None:
    """Glyphs 'fi' / 'fl' (a font's /Differences, as typesetters write 'confirmé', 'reflux')
    are read as letters; no-break spaces (U+00A0) and narrow ones (U+202F, French typography
    before units and inside dates) are spaces for the dates and values."""
    ligatures = b"<< /Type /Encoding /BaseEncoding /WinAnsiEncoding /Differences [30 /fi 31 /fl] >>"
    narrow = _to_unicode(b"1 beginbfchar <A0> <202F> endbfchar")
    lines = [*REPORT[:3], "Née le\xa014\xa0mars\xa01968", "Examen du 12\xa0/\xa003\xa0/\xa02025",
             "Conclusion :", "Fissure con\x1erm\xe9e, sans re\x1fux articulaire, de 12\xa0mm.",
             "Dr Paul ROCHE"]
    for font, extra in ((b"/WinAnsiEncoding", ()), (ligatures, ()),
                        (b"/WinAnsiEncoding /ToUnicode 6 0 R", (narrow,))):
        stream = [b"BT /F1 11 Tf 72 %d Td (%s) Tj ET" % (770 - 16 * i, t.encode("cp1252")
                                                        .replace(b"(", b"\\(")
                                                        .replace(b")", b"\\)"))
                  for i, t in enumerate(lines)]
        _, msg = _read(_hand_pdf([], font=font, extra=extra, ops=stream))
        v = _values(msg.entries[0])
        assert (v["family"], v["birth_date"], v["exam_date"]) == (
            "LEFÈVRE", "1968-03-14", "2025-03-12"), font
        if font == ligatures:
            assert msg.entries[0].value == "Fissure confirmée, sans reflux articulaire, de 12 mm."
