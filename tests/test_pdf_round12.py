"""PDF lab reports, round 12: what French labs we had not seen print, that round 11 read wrong.

An eGFR printed with no equation named ('DFG', 'Débit de filtration glomérulaire') was filed
unmapped (and, its unit spaced 'ml/min/1,73 m²', in square metres); a result out of its
printed range with no flag printed had no interpretation of any kind; French number and
range forms ('1.234,5', '[3,5 ; 5,0]', '[< 5]') lost the value or the range; OCR's 'µmol/I'
stayed unmapped. Born-digital PDFs are written with samples/generate_pdf.py's writer, each
cell at its column's x, read by parsers.pdf and normalized as the pipeline does; scans are
pages built as OCR gives them (no tesseract run: the OCR engine is not what is tested)."""

from __future__ import annotations

import pytest

from normalizers import lab_pdf
from parsers.pdf.model import OCR, TEXT_LAYER
from tests.test_pdf_round3 import LEFEVRE, _lab_pdf, _read, _row
from tests.test_pdf_round5 import _page
from tests.test_pdf_round9 import _file, _warned

# wide columns: 'ml/min/1,73 m²' fits its unit column
W = (40.0, 250.0, 300.0, 400.0, 520.0)
W_HEAD = _row(W, "", "Résultat", "Unité", "Valeurs de référence", "Antériorité(s)",
              style="label")
HEADER = [("centre", "LABORATOIRE DES QUATRE CHEMINS - Biologie médicale"), *LEFEVRE,
          ("label", "Prélevé le 04/02/2026 à 07h50"), ("title", "BIOCHIMIE SANGUINE")]


def _lab(msg) -> list:  # noqa: ANN001
    return [e for e in msg.entries if e.type == "lab_result"]


def _codes(msg) -> list[str]:  # noqa: ANN001
    return [w.split(":")[0] for w in msg.warnings]


# -- an eGFR with no equation named ------------------------------------------------------------
EGFR = "69405-9"  # LOINC's eGFR per 1.73 m² of no method


@pytest.mark.parametrize(("name", "unit"), [
    ("DFG", "mL/min/1,73m²"), ("Débit de filtration glomérulaire", "ml/min/1,73 m²"),
    ("DFG estimé", "mL/min/1.73 m2"), ("Estimation du DFG", "mL/min/1,73m²")])
def test_an_egfr_with_no_equation_named_is_coded_and_says_its_equation_is_unnamed(
        name: str, unit: str) -> None:
    """'DFG  52  ml/min/1,73 m²  (> 60)' with no CKD-EPI or MDRD on the line, its method or
    comment: filed unmapped under its printed name (a spaced unit read as 'm2' or not at
    all). Now coded as the eGFR of no named equation, in its unit, with its range, and
    said so (ledger and details), so that nobody trends it with another equation's."""
    msg = _read(_lab_pdf([*HEADER, W_HEAD, _row(W, "Créatinine", "98", "µmol/L", "(45 - 84)"),
                          _row(W, name, "52", unit, "(> 60)")]))
    egfr = _lab(msg)[1]
    assert (egfr.code, egfr.system, egfr.value_num, egfr.unit, egfr.reference_range) == (
        EGFR, "LN", 52.0, "mL/min/{1.73_m2}", "> 60")
    assert egfr.details["formula_unnamed"] is True
    said = [w for w in msg.warnings if w.startswith("PDF_LAB_FORMULA_UNNAMED")]
    assert len(said) == 1 and "page 1 line 8" in said[0] and "LEFÈVRE" not in said[0]


@pytest.mark.parametrize(("name", "method", "code"), [
    ("DFG estimé (CKD-EPI)", None, "62238-1"),
    ("DFG", "Formule CKD-EPI 2021", "98979-8"),
    ("Débit de filtration glomérulaire", "(selon MDRD)", "33914-3"),
])
def test_an_egfr_whose_equation_is_named_keeps_that_equations_code(
        name: str, method: str | None, code: str) -> None:
    """The equation named in the name or on the line below still picks its own code (the
    name without its parentheses is looked up with the formula first: 'DFG estimé
    (CKD-EPI)' is no eGFR of no equation), and nothing is said."""
    rows = [*HEADER, W_HEAD, _row(W, name, "> 90", "mL/min/1,73m²", "> 60")]
    rows += [("small", method)] if method else []
    msg = _read(_lab_pdf(rows))
    (egfr,) = _lab(msg)
    assert (egfr.code, egfr.comparator, egfr.value_num) == (code, ">", 90.0)
    assert "formula_unnamed" not in egfr.details and msg.warnings == []


def test_a_creatinine_clearance_in_ml_per_minute_is_no_egfr() -> None:
    """'DFG (Cockcroft)  64 mL/min': a clearance not indexed to 1.73 m², which the eGFR's
    code is not for: unmapped as before, said so."""
    msg = _read(_lab_pdf([*HEADER, W_HEAD, _row(W, "DFG (Cockcroft)", "64", "mL/min",
                                                "(> 60)")]))
    (clearance,) = _lab(msg)
    assert (clearance.system, clearance.unit) == ("PDF-LABEL", "mL/min")
    assert _codes(msg) == ["PDF_LAB_UNIT_UNEXPECTED"]


# -- French number and range forms -------------------------------------------------------------
@pytest.mark.parametrize(("value", "num", "comparator"), [
    ("1 234,5", 1234.5, None), ("1.234,5", 1234.5, None), ("< 0,5", 0.5, "<"),
    ("> 90", 90.0, ">"),
])
def test_french_number_forms_are_read(value: str, num: float, comparator: str | None) -> None:
    """'1.234,5' (thousands by point, decimals by comma) was no value at all
    (PDF_LAB_VALUE_NOT_READ); the other forms are pinned as read."""
    msg = _read(_lab_pdf([*HEADER, W_HEAD, _row(W, "Plaquettes", value, "G/L", "150 - 400"),
                          _row(W, "Sodium", "140,5", "mmol/L", "136 - 145")]))
    platelets, sodium = _lab(msg)
    assert (platelets.code, platelets.value_num, platelets.comparator, platelets.unit) == (
        "777-3", num, comparator, "10*9/L")
    assert sodium.value_num == 140.5 and "PDF_LAB_VALUE_NOT_READ" not in _codes(msg)


@pytest.mark.parametrize(("printed", "stored", "heading"), [
    ("[3,5 ; 5,0]", "3,5 - 5,0", True), ("[3,5-5,0]", "3,5-5,0", True),
    ("(3,5-5,0)", "3,5-5,0", True), ("N < 5,5", "< 5,5", True), ("[< 5,5]", "< 5,5", True),
    ("[3,5 ; 5,0]", "3,5 - 5,0", False), ("[3,5 - 5,0]", "3,5 - 5,0", False),
    ("[< 5,5]", "< 5,5", False),
])
def test_range_forms_are_the_results_range(printed: str, stored: str, heading: bool) -> None:
    """A range in square brackets ('[3,5 ; 5,0]', '[3,5-5,0]', '[< 5]') was lost, silently
    under a heading, as 'text after the result' without one. Read as a range, its brackets
    dropped as parentheses are; limits parted by ';' are parted by ' - ' (' ; ' joins a
    result's several ranges)."""
    line = _row(W, "Potassium", "4,2", "mmol/L", printed) if heading else (
        "body", (40.0, "Potassium"), (250.0, "4,2 mmol/L"), (400.0, printed))
    msg = _read(_lab_pdf([*HEADER, *([W_HEAD] if heading else []), line]))
    (potassium,) = _lab(msg)
    assert (potassium.code, potassium.reference_range) == ("2823-3", stored)
    assert "PDF_LAB_NOT_READ" not in _codes(msg)


def test_count_units_are_read() -> None:
    """Pinned: the count units French labs print ('x 10*9/L', 'G/L', 'T/L')."""
    msg = _read(_lab_pdf([*HEADER, W_HEAD,
                          _row(W, "Leucocytes", "7,2", "x 10*9/L", "4,0 - 10,0"),
                          _row(W, "Plaquettes", "245", "G/L", "150 - 400"),
                          _row(W, "Hématies", "4,52", "T/L", "3,80 - 5,20")]))
    assert [(e.code, e.unit) for e in _lab(msg)] == [
        ("6690-2", "10*9/L"), ("777-3", "10*9/L"), ("789-8", "10*12/L")]


@pytest.mark.parametrize("unit", ["µmol/I", "umol/I", "umol/|", "mmol/I"])
def test_ocr_misread_units_are_read_on_a_scan_only(unit: str) -> None:
    """OCR reads the 'l' of 'µmol/l' as 'I' or '|': unmapped. On an OCR'd page it is the
    unit (tables/pdf_lab_ocr_units.csv); on a text layer it stays as printed, unmapped."""
    ucum = "umol/L" if "u" in unit or "µ" in unit else "mmol/L"
    rows = [[(40, "Analyse"), (220, "Résultat"), (290, "Unité"), (360, "Normes")],
            [(40, "Potassium"), (220, "4,1"), (290, unit), (360, "3,5-5,0")]]
    scan = lab_pdf.lab_results(_page(OCR, rows, styles_seen=False), [1], "r|x",
                               effective="2026-02-04", issued=None)
    assert [e.unit for e in scan.entries] == [ucum]
    text = lab_pdf.lab_results(_page(TEXT_LAYER, rows, styles_seen=True), [1], "r|x",
                               effective="2026-02-04", issued=None)
    assert [(e.unit, e.mapped) for e in text.entries] == [(unit, False)]


# -- a result out of its printed range, no flag printed --------------------------------------
KALAEMIA = [[(40, "Analyse"), (220, "Résultat"), (290, "Unité"), (360, "Normes")],
            [(40, "Potassium"), (220, "5,9"), (290, "mmol/L"), (360, "3,5-5,0")],
            [(40, "Sodium"), (220, "131"), (290, "mmol/L"), (360, "[136 ; 145]")],
            [(40, "Calcium"), (220, "2,40"), (290, "mmol/L"), (360, "2,20 à 2,60")],
            [(40, "Glycémie"), (220, "7,2"), (240, "H"), (290, "mmol/L"), (360, "4,1-5,9")],
            [(40, "CRP"), (220, "12"), (290, "mg/L"), (360, "N < 5")],
            [(40, "Ferritine"), (220, "< 15"), (290, "µg/L"), (360, "20 - 200")]]


@pytest.mark.parametrize("source", [TEXT_LAYER, OCR])
def test_an_unflagged_value_out_of_range_gets_our_flag_apart_never_the_labs(
        source: str) -> None:
    """OBX-8 (and FHIR's Observation.interpretation) is the lab's judgement: a flag the lab
    did not print is never put there. Our comparison with the printed range is kept apart,
    marked as computed here (details.flag_computed: the HL7 0078 code, who computed it, the
    range): high above, low below, none inside, none over a flag printed or a comparator."""
    doc = _page(source, KALAEMIA, styles_seen=source == TEXT_LAYER)
    found = lab_pdf.lab_results(doc, [1], "r|x", effective="2026-02-04", issued=None)
    got = [(e.display, e.interpretation, e.details.get("flag_computed"))
           for e in found.entries]
    ours = {"system": "HL7-0078", "computed_by": "dmp-ingest"}
    assert got == [
        ("Potassium", None, {"code": "H", **ours, "against": "3,5-5,0"}),
        ("Sodium", None, {"code": "L", **ours, "against": "136 - 145"}),
        ("Calcium", None, None),
        ("Glycémie", "H", None),
        ("CRP", None, {"code": "H", **ours, "against": "< 5"}),
        ("Ferritine", None, None)]
    said = [w.split(":")[0] for w in found.warnings]
    # on a scan the flag may not have been seen (bold): said as since round 5; on a text
    # layer nothing more is said
    assert said == (["PDF_LAB_FLAG_NOT_SEEN"] * 3 if source == OCR else [])


def test_on_the_ledger_the_unnamed_equation_is_said_and_the_computed_flag_is_stored(
        sqlite_ctx) -> None:  # noqa: ANN001
    """Through intake, processing and deposit into Mme Lefèvre's dossier: the eGFR of no
    equation deposited under its code, the ledger row saying where (no patient data), and
    the computed flag stored apart from the interpretation."""
    pdf = _lab_pdf([*HEADER, W_HEAD, _row(W, "Créatinine", "112", "µmol/L", "[45 ; 84]"),
                    _row(W, "DFG", "48", "ml/min/1,73 m²", "(> 60)")])
    _, ledger = _file(sqlite_ctx, (pdf, "lab-quatre-chemins"))
    assert [r["status"] for r in ledger] == ["deposited"]
    warned = _warned(ledger)
    assert "PDF_LAB_FORMULA_UNNAMED: page 1 line 8" in warned
    assert "LEFÈVRE" not in warned and "48" not in warned.replace("page 1 line 8", "")
    from sqlalchemy import select

    from dossiers.schema import entries
    with sqlite_ctx.engine.connect() as conn:
        stored = conn.execute(select(entries.c.code, entries.c.interpretation,
                                     entries.c.reference_range, entries.c.details)
                              .where(entries.c.code.in_(["14682-9", EGFR]))
                              .order_by(entries.c.id)).all()
    assert [(r.code, r.interpretation, r.reference_range) for r in stored] == [
        ("14682-9", None, "45 - 84"), (EGFR, None, "> 60")]
    assert [r.details["flag_computed"]["code"] for r in stored] == ["H", "L"]


# -- the biologist's conclusion under another heading than 'Conclusion' ------------------------
@pytest.mark.parametrize("title", ["Synthèse :", "AVIS BIOLOGIQUE", "En résumé :"])
def test_the_biologists_conclusion_under_its_own_heading_ends_the_table(title: str) -> None:
    """'Synthèse :', 'Avis biologique', 'En résumé :' under the table: the heading, the
    biologist's sentence on the sodium and the signature were filed as comments of the last
    result (the potassium). They end the table, as 'Conclusion' does."""
    rows = [*HEADER, W_HEAD, _row(W, "Sodium", "131", "mmol/L", "(136 - 145)"),
            _row(W, "Potassium", "4,2", "mmol/L", "(3,5 - 5,0)"),
            ("body", title), ("body", "Hyponatrémie modérée, à contrôler."),
            ("body", "Dr Anne KERGOAT")]
    sodium, potassium = _lab(_read(_lab_pdf(rows)))
    assert "comment" not in potassium.details and "comment" not in sodium.details


def test_an_interpretation_under_a_serology_stays_its_comment() -> None:
    """Pinned: 'Interprétation :' under a serology is that panel's (its last line's
    comment, as before), not the report's conclusion."""
    rows = [*HEADER, W_HEAD, _row(W, "Antigène HBs", "Négatif"),
            ("body", "Interprétation : absence d'infection par le VHB.")]
    (hbs,) = _lab(_read(_lab_pdf(rows)))
    assert hbs.details["comment"] == ["Interprétation : absence d'infection par le VHB."]
