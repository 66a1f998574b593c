"""Lab results out of French laboratories' PDF reports (round 6): what real reports print that
we still read wrong. Negative values (a base excess, printed '-2,1' or '- 2,1') and signed
ranges, counts per mm3 as older LIS print them ('7 200 /mm3', '245 10^3/mm3'), analyses
whose printed name or unit does not say which LOINC they are (a troponin not said T or I,
D-dimers not said FEU or DDU, the 25-OH vitamin D in nmol/L).
Born-digital PDFs are written with samples/generate_pdf.py's writer (tests/test_pdf_round3.py's
helpers), read by parsers.pdf and normalized as the pipeline does; a hand-built page of words
where the layout needs cells the writer does not make."""

from __future__ import annotations

import time

import pytest
from PIL import Image

from normalizers import lab_pdf
from normalizers.report import normalize_report
from parsers.pdf import PdfLimits, parse_pdf
from parsers.pdf import _ocr as ocrmod
from parsers.pdf.model import OCR
from samples import generate_pdf as g
from tests.test_pdf_round3 import (
    C_HEAD,
    LEFEVRE,
    C,
    _doc,
    _lab_pdf,
    _lab_pdf_pages,
    _read,
    _results,
    _row,
)

HEADER = [("centre", "LABORATOIRE BIOMED 35 - Biologie médicale"), *LEFEVRE,
          ("label", "Prélevé le 12/03/2026 à 08h15")]


def _codes(doc) -> tuple[list[tuple], list[str]]:  # noqa: ANN001
    found = lab_pdf.lab_results(doc, [1], "report|x", effective="2026-03-12", issued=None)
    return ([(e.code, e.value, e.value_num, e.unit, e.reference_range) for e in found.entries],
            [w.split(":")[0] for w in found.warnings])


# -- negative values and signed ranges ---------------------------------------------------------
def test_a_negative_value_keeps_its_sign_and_its_signed_range() -> None:
    """A blood gas's base excess: '-2,1' (glued sign) was read as a word, the line as no
    result, and filed as the comment of the line above; '- 2,1' (the sign apart) was filed as
    +2,1 with no range (a wrong value); the range '(-2,0 - +3,0)' was not read. Under the
    result's heading a sign apart is the value's too."""
    rows = [*HEADER, ("title", "GAZ DU SANG"), C_HEAD,
            _row(C, "Potassium", "4,1", "mmol/L", "(3,5 - 5,0)"),
            _row(C, "Excès de base", "-2,1", "mmol/L", "(-2,0 - +3,0)"),
            _row(C, "Excès de base", "- 2,1", "mmol/L", "(-2 à +3)"),
            _row(C, "Excès de base", "-3,4 L", "mmol/L", "(-2,0 - +3,0)")]
    msg = _read(_lab_pdf(rows))
    assert _results(msg) == [("2823-3", "4,1", "mmol/L", "3,5 - 5,0", None),
                             ("Excès de base", "-2,1", "mmol/L", "-2,0 - +3,0", None),
                             ("Excès de base", "-2,1", "mmol/L", "-2 à +3", None),
                             ("Excès de base", "-3,4", "mmol/L", "-2,0 - +3,0", "L")]
    assert [e.value_num for e in msg.entries if e.type == "lab_result"][1:] == [-2.1, -2.1, -3.4]
    assert "comment" not in msg.entries[1].details


def test_without_a_heading_a_dash_apart_is_not_taken_for_a_sign_nor_dropped() -> None:
    """With no heading, 'Excès de base  -  2,1' may be a separator or a sign: it was filed as
    +2,1. It is not filed, and the ledger says why; a glued sign is the value's."""
    doc = _doc([[(40, "Excès"), (72, "de"), (88, "base"), (220, "-"), (226, "2,1"),
                 (290, "mmol/L"), (360, "(-2,0 - +3,0)")],
                [(40, "Excès"), (72, "de"), (88, "base"), (220, "-2,1"), (290, "mmol/L"),
                 (360, "(-2,0 - +3,0)")],
                [(40, "Sodium"), (220, "140"), (290, "mmol/L"), (360, "136-145")]])
    found, warnings = _codes(doc)
    assert found == [("Excès de base", "-2,1", -2.1, "mmol/L", "-2,0 - +3,0"),
                     ("2951-2", "140", 140.0, "mmol/L", "136-145")]
    assert warnings[0] == "PDF_LAB_SIGN_DOUBTFUL"


# -- counts per mm3 ------------------------------------------------------------------------------
def test_counts_per_mm3_are_coded_under_a_hemogram_heading_only() -> None:
    """Older LIS print the blood count per mm3 ('7 200 /mm3', '4 520 000 /mm³', a formula's
    '4 471 /mm3'): the leucocytes, red cells and the formula's counts were all unmapped, and
    '245 10^3/mm3' lost its unit (the '10' of '10^3' read as a second value). Per mm3 the same
    names count cells in urine and CSF: under a heading saying blood ('NUMÉRATION FORMULE
    SANGUINE') they are the blood's codes; the range '1 800 - 7 500' goes to the count (read
    as '1 - 800' it went to the percentage)."""
    rows = [*HEADER, ("title", "NUMÉRATION FORMULE SANGUINE"), C_HEAD,
            _row(C, "Leucocytes", "7 200", "/mm3", "(4 000 - 10 000)"),
            _row(C, "Hématies", "4 520 000", "/mm³", "(4 000 000 - 5 200 000)"),
            _row(C, "Polynucléaires neutrophiles", "62,1 %", "4 471 /mm3", "(1 800 - 7 500)"),
            _row(C, "Plaquettes", "245", "10^3/mm3", "(150 - 400)"),
            _row(C, "Lymphocytes", "2,1", "G/L", "(1,0 - 4,0)")]
    assert _results(_read(_lab_pdf(rows))) == [
        ("6690-2", "7 200", "/mm3", "4 000 - 10 000", None),
        ("789-8", "4 520 000", "/mm3", "4 000 000 - 5 200 000", None),
        ("770-8", "62,1", "%", None, None),
        ("751-8", "4 471", "/mm3", "1 800 - 7 500", None),
        ("777-3", "245", "10*3/mm3", "150 - 400", None),
        ("731-0", "2,1", "10*9/L", "1,0 - 4,0", None)]


def test_counts_per_mm3_under_no_heading_naming_blood_stay_unmapped_and_say_why() -> None:
    """With no section saying whose count it is, leucocytes per mm3 may be urine's (85 /mm3
    in an ECBU): unmapped, with a warning naming the reason (no more 'not in this unit');
    under a heading naming blood and urine the urine's table is read; platelets, counted in
    blood only, are coded."""
    rows = [*HEADER, C_HEAD,
            _row(C, "Leucocytes", "7 200", "/mm3", "(4 000 - 10 000)"),
            _row(C, "Plaquettes", "245 000", "/mm3", "(150 000 - 400 000)"),
            ("title", "HÉMATOLOGIE ET CYTOLOGIE URINAIRE"), C_HEAD,
            _row(C, "Leucocytes", "85", "/mm3", "(< 10)")]
    msg = _read(_lab_pdf(rows))
    assert [(code, unit) for code, _, unit, *_ in _results(msg)] == [
        ("Leucocytes", "/mm3"), ("777-3", "/mm3"), ("30405-5", "/mm3")]
    assert [w.split(":")[0] for w in msg.warnings if w.startswith("PDF_LAB")] == [
        "PDF_LAB_SPECIMEN_UNSAID"]


# -- analyses whose name or unit says which code they are, and those that do not ----------------
def test_an_analysis_is_coded_only_when_its_name_or_unit_proves_which_it_is() -> None:
    """A troponin said to be I or T (by no method), D-dimers in DDU ('ng/mL DDU', 'D-dimères
    (DDU)') or FEU said by the name, the 25-OH vitamin D3 named as such in nmol/L were
    unmapped; they are coded. A troponin not said T or I, D-dimers said neither FEU nor DDU,
    the total 25-OH vitamin D in nmol/L stay unmapped, and the ledger now says why for each
    (a troponin said nothing at all)."""
    rows = [*HEADER, C_HEAD,
            _row(C, "Troponine Ic", "0,02", "ng/mL", "(< 0,04)"),
            _row(C, "Troponine T", "0,01", "µg/L", "(< 0,01)"),
            _row(C, "Troponine", "0,02", "ng/mL", "(< 0,04)"),
            _row(C, "D-dimères", "350", "ng/mL DDU", "(< 250)"),
            _row(C, "D-dimères (DDU)", "0,35", "µg/mL", "(< 0,25)"),
            _row(C, "D-dimères (FEU)", "620", "ng/mL", "(< 500)"),
            _row(C, "D-dimères", "0,35", "µg/mL", "(< 0,50)"),
            _row(C, "25-OH vitamine D3", "46", "nmol/L", "(75 - 250)"),
            _row(C, "25-OH vitamine D", "46", "nmol/L", "(75 - 250)"),
            _row(C, "25-OH vitamine D", "18,5", "ng/mL", "(30 - 100)")]
    msg = _read(_lab_pdf(rows))
    assert [(code, value, unit) for code, value, unit, *_ in _results(msg)] == [
        ("10839-9", "0,02", "ng/mL"), ("6598-7", "0,01", "ug/L"), ("Troponine", "0,02", "ng/mL"),
        ("48066-5", "350", "ng/mL{DDU}"), ("48066-5", "0,35", "ug/mL"),
        ("48065-7", "620", "ng/mL"), ("D-dimères", "0,35", "ug/mL"),
        ("14635-7", "46", "nmol/L"), ("25-OH vitamine D", "46", "nmol/L"),
        ("62292-8", "18,5", "ng/mL")]
    said = [w for w in msg.warnings if w.startswith("PDF_LAB")]
    assert [(w.split(":")[0], w.split(":")[1].strip()) for w in said] == [
        ("PDF_LAB_ANALYSIS_AMBIGUOUS", "page 1 line 8"),
        ("PDF_LAB_ANALYSIS_AMBIGUOUS", "page 1 line 12"),
        ("PDF_LAB_ANALYSIS_AMBIGUOUS", "page 1 line 14")]
    assert "T or I" in said[0] and "FEU nor DDU" in said[1]


# -- the conclusion in a column right of the results, words cut at a line's end -----------------
T = (40.0, 150.0, 200.0, 250.0)
RIGHT = 340.0


def test_a_conclusion_printed_right_of_the_results_is_read_alone() -> None:
    """A LIS printing the biologist's conclusion in a column right of the result table: its
    heading, on the heading row of the table, was never found (a heading is read at a line's
    start), and the conclusion was lost. It is read from its column only (not the results
    beside it), to where the column ends; the results are read as before. A word the layout
    cut at the line's end ('pré-' / 'lèvement') is one word again."""
    rows = [*HEADER, ("title", "BIOCHIMIE"),
            ("label", (T[0], "Analyse"), (T[1], "Résultat"), (T[2], "Unité"), (T[3], "Réf."),
             (RIGHT, "Conclusion :")),
            ("body", (T[0], "Glycémie"), (T[1], "7,2 H"), (T[2], "mmol/L"), (T[3], "4,1-5,9"),
             (RIGHT, "Hyperglycémie à jeun, à")),
            ("body", (T[0], "Potassium"), (T[1], "4,1"), (T[2], "mmol/L"), (T[3], "3,5-5,0"),
             (RIGHT, "contrôler sur un nouveau pré-")),
            ("body", (T[0], "Sodium"), (T[1], "140"), (T[2], "mmol/L"), (T[3], "136-145"),
             (RIGHT, "lèvement. Kaliémie normale.")),
            ("body", (T[0], "Créatinine"), (T[1], "68"), (T[2], "µmol/L"), (T[3], "45-84")),
            ("body", (T[0], "Urée"), (T[1], "5,1"), (T[2], "mmol/L"), (T[3], "2,5-7,5")),
            ("body", "Validé le 12/03/2026 par Dr Anne KERGOAT")]
    msg = _read(_lab_pdf(rows))
    report = next(e for e in msg.entries if e.type != "lab_result")
    assert report.details["fields"]["conclusion"]["value"] == (
        "Hyperglycémie à jeun, à\ncontrôler sur un nouveau prélèvement. Kaliémie normale.")
    assert [(code, value) for code, value, *_ in _results(msg)] == [
        ("14749-6", "7,2"), ("2823-3", "4,1"), ("2951-2", "140"), ("14682-9", "68"),
        ("22664-7", "5,1")]


def test_a_hyphen_of_the_word_itself_is_kept_where_its_line_ends() -> None:
    """Joining cut words back keeps a compound word's own hyphen: 'anti-' / 'inflammatoire'
    (a prefix that takes one), 'c'est-à-' / 'dire' (already hyphenated), a word printed
    hyphenated elsewhere in the report; a dash ending a sentence's line is no cut."""
    rows = [*HEADER, ("body", "Traitement anti-inflammatoire à discuter."),
            ("title", "Conclusion :"),
            ("body", "Syndrome inflammatoire biologique modéré, c'est-à-"),
            ("body", "dire une CRP à 25 mg/L sous traitement anti-"),
            ("body", "inflammatoire et une VS accé-"),
            ("body", "lérée. Bilan à refaire dans 8 jours -"),
            ("body", "ou plus tôt si fièvre.")]
    msg = _read(_lab_pdf(rows))
    report = next(e for e in msg.entries if e.type != "lab_result")
    assert report.details["fields"]["conclusion"]["value"] == (
        "Syndrome inflammatoire biologique modéré, c'est-à-dire une CRP à 25 mg/L sous "
        "traitement anti-inflammatoire et une VS accélérée. Bilan à refaire dans 8 jours -\n"
        "ou plus tôt si fièvre.")


# -- a scanned lab report: its table read by rows (real tesseract) -------------------------------
def test_a_scanned_result_table_is_read_by_rows_and_its_values_kept() -> None:
    """tesseract's automatic layout (--psm 3) read a scanned result table as column blocks:
    the names a block, the units another, the ranges a third, each cell a line, and the
    result column, taken for a picture, dropped whole: not one result of the scan was filed.
    A page whose lines sit three abreast is read again by rows; OCR's '/mm3' misread
    ('Imm3', '1073/mm3' for '10^3/mm3') is the unit, wherever the unit column is; the
    conclusion under the table is no comment of its last result, nor the end of its name."""
    rows = [*HEADER, ("title", "NUMÉRATION FORMULE SANGUINE"), C_HEAD,
            _row(C, "Leucocytes", "7 200", "/mm3", "(4 000 - 10 000)"),
            _row(C, "Plaquettes", "245", "10^3/mm3", "(150 - 400)"),
            ("title", "GAZ DU SANG"), C_HEAD,
            _row(C, "Excès de base", "-2,1", "mmol/L", "(-2,0 - +3,0)"),
            _row(C, "Potassium", "4,1", "mmol/L", "(3,5 - 5,0)"),
            ("title", "Conclusion :"),
            ("body", "Numération normale, à contrôler sur un nouveau pré-"),
            ("body", "lèvement dans un mois.")]
    page = g.render_page(_lab_pdf_pages(rows)[0])
    data = g.pillow_pdf([page.crop((0, 0, page.width, page.height * 2 // 5))], "scan")
    doc = parse_pdf(data, PdfLimits(processes=1, dpi=200))
    assert doc.pages[0].source == OCR
    msg = normalize_report(doc, data, "round6")
    assert [(e.code, e.value, e.unit, e.reference_range.replace(" - ", "-"))
            for e in msg.entries if e.type == "lab_result"] == [
        ("6690-2", "7 200", "/mm3", "4 000-10 000"), ("777-3", "245", "10*3/mm3", "150-400"),
        ("Excès de base", "-2,1", "mmol/L", "-2,0-+3,0"), ("2823-3", "4,1", "mmol/L", "3,5-5,0")]
    potassium = msg.entries[-1]
    assert (potassium.display, "comment" in potassium.details) == ("Potassium", False)
    assert msg.entries[0].details["fields"]["conclusion"]["value"] == (
        "Numération normale, à contrôler sur un nouveau prélèvement dans un mois.")


def _tesseract_words(words: list[tuple[str, int, int, int, int]]) -> dict[str, list]:
    """image_to_data's dict of (text, left px, top px, block, line) words, 30 px high."""
    n = len(words)
    return {"text": [w[0] for w in words], "conf": [93.0] * n, "height": [30] * n,
            "width": [22 * len(w[0]) for w in words], "left": [w[1] for w in words],
            "top": [w[2] for w in words], "block_num": [w[3] for w in words],
            "par_num": [1] * n, "line_num": [w[4] for w in words]}


NAMES, RESULTS, UNITS, RANGES = 170, 920, 1210, 1500  # the columns' x at 300 dpi
TABLE = [("Leucocytes", "7,2", "G/L", "(4,0-10,0)"), ("Hématies", "4,52", "T/L", "(3,8-5,2)"),
         ("Plaquettes", "245", "G/L", "(150-400)"), ("Potassium", "4,1", "mmol/L", "(3,5-5,0)")]


def test_a_page_read_as_column_blocks_is_read_again_by_rows(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """--psm 3 read the table as three column blocks and dropped the result column: the page
    is read again by rows (--psm 4), and that reading, as full and as sure, is the page's.
    A page of running text is read once."""
    blocks = [(t[col], x, 500 + 60 * r, b, r + 1) for b, (col, x) in
              enumerate(((0, NAMES), (2, UNITS), (3, RANGES)), start=1)
              for r, t in enumerate(TABLE)]
    rows = [(t[col], x, 500 + 60 * r, 1, r + 1) for r, t in enumerate(TABLE)
            for col, x in enumerate((NAMES, RESULTS, UNITS, RANGES))]
    prose = [(w, NAMES + 200 * k, 500 + 60 * r, 1, r + 1) for r in range(4)
             for k, w in enumerate(("Pas", "de", "lésion", "suspecte."))]
    calls: list[int] = []

    def tesseract(image, lang, psm, *args):  # noqa: ANN001, ANN002, ANN202
        calls.append(psm)
        return _tesseract_words(reading[psm])

    monkeypatch.setattr(ocrmod, "render_page",
                        lambda *a: (Image.new("L", (2480, 3508), 255), 595.0, 842.0))
    monkeypatch.setattr(ocrmod, "_tesseract", tesseract)
    reading = {3: blocks, 4: rows}
    page = ocrmod.ocr_page(b"", 0, 300, "fra", 60.0, time.time() + 60)
    assert calls == [3, 4]
    assert page.text.splitlines()[0] == "Leucocytes 7,2 G/L (4,0-10,0)"
    calls.clear()
    reading = {3: prose, 4: []}
    page = ocrmod.ocr_page(b"", 0, 300, "fra", 60.0, time.time() + 60)
    assert calls == [3] and page.text.splitlines()[0] == "Pas de lésion suspecte."
    calls.clear()
    reading = {3: blocks, 4: blocks[:4]}  # the second reading lost words: the first stands
    page = ocrmod.ocr_page(b"", 0, 300, "fra", 60.0, time.time() + 60)
    assert calls == [3, 4] and page.text.splitlines()[0] == "Leucocytes"


# -- units printed in a heading -----------------------------------------------------------------
def test_a_unit_printed_in_the_columns_or_the_sections_heading_is_the_values() -> None:
    """'IONOGRAMME (mmol/L)' over values printed bare was no section (its unit in
    parentheses), and 'Résultat (G/L)' no heading: the sodium, the potassium and the
    leucocytes were filed unmapped without a unit. The unit printed in a heading is theirs;
    never an INR's (a ratio, coded with no unit), nor over a unit printed with the value."""
    rows = [*HEADER, ("title", "IONOGRAMME (mmol/L)"),
            _row(C, "", "Résultat", "", "Valeurs de référence", "Antériorité(s)", style="label"),
            _row(C, "Sodium", "140", "", "(136 - 145)", "141 le 12/01/26"),
            _row(C, "Potassium", "4,1", "", "(3,5 - 5,0)"),
            _row(C, "Créatinine", "68 µmol/L", "", "(45 - 84)"),
            ("title", "HÉMOSTASE (s)"),
            _row(C, "", "Résultat", "", "Valeurs de référence", style="label"),
            _row(C, "INR", "1,05"),
            _row(C, "Temps de Quick", "12,8", "", "(11,0 - 13,5)"),
            ("title", "HÉMATOLOGIE"),
            _row(C, "", "Résultat (G/L)", "", "Valeurs de référence", style="label"),
            _row(C, "Leucocytes", "7,2", "", "(4,0 - 10,0)", "6,9")]
    assert [(code, value, unit) for code, value, unit, *_ in _results(_read(_lab_pdf(rows)))] \
        == [("2951-2", "140", "mmol/L"), ("2823-3", "4,1", "mmol/L"),
            ("14682-9", "68", "umol/L"), ("6301-6", "1,05", None), ("5902-2", "12,8", "s"),
            ("6690-2", "7,2", "10*9/L")]


# -- a table over a page break ------------------------------------------------------------------
def test_the_footer_printed_on_every_page_is_no_comment_of_the_result_above() -> None:
    """The laboratory's footer (address, telephone) printed under the table on every page
    was kept as comments of each page's last result; only a line of one page was taken for
    the page's own, above the table. A real comment stays; the table goes on on page 2."""
    foot = [("small", "Laboratoire BIOMED 35 - 12 rue de la Santé - 35000 Rennes"),
            ("small", "Tél. 02 99 00 00 00 - www.biomed35.fr")]
    page_1 = [*HEADER, ("title", "BIOCHIMIE"), C_HEAD,
              _row(C, "Sodium", "140", "mmol/L", "(136 - 145)", "141 (12/01/26)"),
              _row(C, "Potassium", "4,1", "mmol/L", "(3,5 - 5,0)"),
              ("body", "Contrôle sur tube hépariné."), *foot, ("body", "Page 1/2")]
    page_2 = [("label", "Dossier 2603120045 - suite"),
              _row(C, "Chlore", "102", "mmol/L", "(98 - 107)", "100 (12/01/26)"),
              _row(C, "Glycémie", "5,2", "mmol/L", "(4,1 - 5,9)"), *foot, ("body", "Page 2/2")]
    msg = _read(_lab_pdf(page_1, page_2))
    found = [e for e in msg.entries if e.type == "lab_result"]
    assert [e.code for e in found] == ["2951-2", "2823-3", "2075-0", "14749-6"]
    assert [e.details.get("comment") for e in found] == [
        None, ["Contrôle sur tube hépariné."], None, None]


# -- a block of former results under its own heading ----------------------------------------
def test_a_block_of_former_results_is_never_filed_as_this_specimens() -> None:
    """Some LIS print the antériorités as a block of their own under the table
    ('ANTÉRIORITÉS' over dated columns, 'Résultats antérieurs du 12/01/2026' over full
    rows): its sodium of January was filed as today's (2951-2, 141 mmol/L: a wrong and
    duplicate result), the block's title as the potassium's comment. Its lines are not filed,
    and the ledger says where; the next section is read again."""
    rows = [*HEADER, ("title", "BIOCHIMIE"), C_HEAD,
            _row(C, "Sodium", "140", "mmol/L", "(136 - 145)"),
            _row(C, "Potassium", "4,1", "mmol/L", "(3,5 - 5,0)"),
            ("title", "ANTÉRIORITÉS"),
            _row(C, "", "12/01/2026", "03/10/2025", style="label"),
            _row(C, "Sodium", "141", "139"),
            ("title", "Résultats antérieurs du 12/01/2026 :"), C_HEAD,
            _row(C, "Sodium", "141", "mmol/L", "(136 - 145)"),
            _row(C, "Glycémie", "5,1", "mmol/L", "(4,1 - 5,9)"),
            ("title", "HÉMATOLOGIE"), C_HEAD,
            _row(C, "Leucocytes", "7,2", "G/L", "(4,0 - 10,0)")]
    msg = _read(_lab_pdf(rows))
    assert [(code, value) for code, value, *_ in _results(msg)] == [
        ("2951-2", "140"), ("2823-3", "4,1"), ("6690-2", "7,2")]
    assert "comment" not in msg.entries[2].details
    assert [w.split(":")[0] for w in msg.warnings if w.startswith("PDF_LAB")] == [
        "PDF_LAB_PREVIOUS_BLOCK", "PDF_LAB_PREVIOUS_BLOCK"]


# -- the section ends with its table --------------------------------------------------------------
def test_an_ecbu_after_the_hemogram_is_never_coded_as_blood() -> None:
    """As the ANS's CR-BIO example prints it: the hemogram under 'HEMATOLOGIE', validated,
    then 'Examen cytobactériologique des urines (ECBU)' in lower case (no section: only
    capitals were) and the urine's 'Leucocytes 5 /uL' with no heading: the hemogram's section
    still held, and the urine's leucocytes were coded as blood's (6690-2). The section ends
    with its table's validation, and a line naming another specimen outside a table is the
    section of what follows: the urine's codes."""
    rows = [*HEADER, ("title", "HEMATOLOGIE"), C_HEAD,
            _row(C, "Leucocytes", "8,2", "G/L", "(5 - 10)"),
            ("body", "Résultats validés par Jean DE SANTS - 04/01/2023, 11h20"),
            ("title", "Examen cytobactériologique des urines (ECBU)"),
            ("body", (40.0, "Leucocytes"), (220.0, "5 /uL")),
            ("body", (40.0, "Hématies"), (220.0, "2 /uL"))]
    msg = _read(_lab_pdf(rows))
    assert [(code, value, unit) for code, value, unit, *_ in _results(msg)] == [
        ("6690-2", "8,2", "10*9/L"), ("30405-5", "5", "/uL"), ("30391-7", "2", "/uL")]


def test_the_conclusion_under_the_table_is_no_comment_of_its_last_result() -> None:
    """'Conclusion   Bisalbuminémie' (the heading and its text on one row, as the ANS's
    electrophoresis prints it) was kept as the albumin's comment."""
    doc = _doc([[(40, "Analyse"), (220, "Résultat"), (290, "Unité"), (360, "Normes")],
                [(40, "Albumine"), (220, "45,0"), (290, "g/L"), (360, "36,00-48,00")],
                [(40, "Conclusion"), (110, "Bisalbuminémie")],
                [(40, "Conclusion"), (102, "Bisalbuminémie")]])
    found = lab_pdf.lab_results(doc, [1], "report|x", effective="2026-03-12", issued=None)
    assert [(e.code, e.details.get("comment")) for e in found.entries] == [("1751-7", None)]


def test_the_uncertainty_printed_after_a_value_is_kept_and_no_second_value() -> None:
    """'5,2 ± 0,2 mmol/L': the uncertainty was read as a second number without a unit (the
    line said 'not read'); it is the value's, kept in its details."""
    doc = _doc([[(40, "Analyse"), (220, "Résultat"), (290, "Unité"), (360, "Normes")],
                [(40, "Glycémie"), (220, "5,2"), (238, "±"), (246, "0,2"), (290, "mmol/L"),
                 (360, "4,1-5,9")],
                [(40, "Potassium"), (220, "4,1"), (238, "+/-"), (258, "0,1"), (290, "mmol/L"),
                 (360, "3,5-5,0")]])
    found = lab_pdf.lab_results(doc, [1], "report|x", effective="2026-03-12", issued=None)
    assert [(e.code, e.value, e.unit, e.details.get("uncertainty")) for e in found.entries] == [
        ("14749-6", "5,2", "mmol/L", "± 0,2"), ("2823-3", "4,1", "mmol/L", "+/- 0,1")]
    assert found.warnings == []
