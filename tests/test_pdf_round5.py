"""Lab results out of French laboratories' PDF reports (round 5): what real reports print that
we still read wrong. Abnormal flags printed before the value ('H 5,9', '(L) 131', '↑ 7,2'),
the biologist's validation in the footer, the formula line under an estimated GFR or a
computed LDL, qualitative results written as a phrase ('Présence d'oxalate de calcium'),
the units of other analysers ('x 10^9/L', '10*3/µL', 'mEq/L'), the analyses every lab prints
that our table lacked, the urine tests of an ECBU, and what a scan cannot show (bold type).
Born-digital PDFs are written with samples/generate_pdf.py's writer (tests/test_pdf_round3.py's
helpers), read by parsers.pdf and normalized as the pipeline does; a hand-built page of words
where the writer's WinAnsi fonts cannot print the mark (arrows) or where the page must be an
OCR'd one."""

from __future__ import annotations

from normalizers import lab_pdf
from parsers.pdf import PdfLimits, parse_pdf
from parsers.pdf.model import OCR, TEXT_LAYER, Page, PdfDocument, Word
from tests.test_pdf_round2 import _searchable_scan
from tests.test_pdf_round3 import C_HEAD, LEFEVRE, C, _doc, _lab_pdf, _read, _results, _row

HEADER = [("centre", "LABORATOIRE BIOMED 35 - Biologie médicale"), *LEFEVRE,
          ("label", "Prélevé le 12/03/2026 à 08h15")]


# -- flags printed before the value ------------------------------------------------------------
def test_a_flag_printed_before_the_value_is_the_values() -> None:
    """Some LIS print the mark in front of the value ('H 5,9', '(L) 131', 'B 131'): under a
    heading it was dropped (an out-of-range kalaemia filed as normal); without a heading it
    was read as part of the name ('Leucocytes H', an analysis we do not know: not filed at
    all). 'H : 13,0 - 17,0' is still the men's range, and a value with no mark has none."""
    rows = [*HEADER, C_HEAD,
            _row(C, "Potassium", "H 5,9", "mmol/L", "(3,5 - 5,0)"),
            _row(C, "Sodium", "(L) 131", "mmol/L", "(136 - 145)"),
            _row(C, "Créatinine", "68", "µmol/L", "(45 - 84)"),
            _row(C, "Hémoglobine", "L 11,2", "g/dL", "(12,0 - 16,0)"),
            ("title", "NUMÉRATION"),
            ("body", (40.0, "Leucocytes"), (220.0, "H 12,4"), (290.0, "G/L"),
             (360.0, "(4,0 - 10,0)")),
            ("body", (40.0, "Plaquettes"), (220.0, "L 95"), (290.0, "G/L"),
             (360.0, "(150 - 400)")),
            ("body", (40.0, "Hématocrite"), (220.0, "41,0"), (290.0, "%"),
             (360.0, "H : 40,0 - 52,0"))]
    assert _results(_read(_lab_pdf(rows))) == [
        ("2823-3", "5,9", "mmol/L", "3,5 - 5,0", "H"),
        ("2951-2", "131", "mmol/L", "136 - 145", "L"),
        ("14682-9", "68", "umol/L", "45 - 84", None),
        ("718-7", "11,2", "g/dL", "12,0 - 16,0", "L"),
        ("6690-2", "12,4", "10*9/L", "4,0 - 10,0", "H"),
        ("777-3", "95", "10*9/L", "150 - 400", "L"),
        ("4544-3", "41,0", "%", "H : 40,0 - 52,0", None)]


def test_an_arrow_before_the_value_is_its_flag() -> None:
    doc = _doc([[(40, "Glycémie"), (220, "↑"), (232, "7,2"), (290, "mmol/L"), (360, "4,1-5,9")],
                [(40, "Sodium"), (220, "↓"), (232, "128"), (290, "mmol/L"), (360, "136-145")]])
    found = lab_pdf.lab_results(doc, [1], "report|x", effective="2026-03-03", issued=None)
    assert [(e.code, e.value_num, e.interpretation) for e in found.entries] == [
        ("14749-6", 7.2, "H"), ("2951-2", 128.0, "L")]


# -- the biologist's validation in the footer --------------------------------------------------
def test_the_biologists_validation_ends_the_table_and_is_no_comment() -> None:
    """'Compte rendu validé biologiquement par Dr ...', 'Validation biologique : Dr ...',
    'Biologiste responsable : Dr ...' under the last result were kept as its comments (the
    biologist's name in a result's details); a real comment under a result stays one."""
    rows = [*HEADER, C_HEAD,
            _row(C, "Potassium", "4,1", "mmol/L", "(3,5 - 5,0)"),
            ("body", "Contrôle sur tube hépariné."),
            _row(C, "Sodium", "140", "mmol/L", "(136 - 145)"),
            ("body", "Compte rendu validé biologiquement par Dr Anne KERGOAT le 12/03/2026"),
            ("body", "Biologiste responsable : Dr Anne KERGOAT"),
            ("body", "Validation biologique : Dr Yann CORRE - 12/03/2026 14:02"),
            ("body", "Document validé électroniquement")]
    msg = _read(_lab_pdf(rows))
    potassium, sodium = (e for e in msg.entries if e.type == "lab_result")
    assert potassium.details["comment"] == ["Contrôle sur tube hépariné."]
    assert "comment" not in sodium.details


# -- the formula line under an estimated GFR or a computed LDL --------------------------------
def test_the_formula_line_is_the_results_method_and_codes_it() -> None:
    """A LIS printing the eGFR as 'DFG estimé' with the formula on the line below ('Formule
    CKD-EPI 2009', '(selon MDRD)'): the formula line was filed as a result of its own
    ('Formule CKD-EPI', value 2009) and the eGFR unmapped; each formula has its own LOINC
    (CKD-EPI 62238-1, CKD-EPI 2021 98979-8, MDRD 33914-3). The LDL computed by Friedewald's
    formula in both units is coded as computed; without a formula it is the LDL of no
    method (2089-1, 22748-8)."""
    rows = [*HEADER, C_HEAD,
            _row(C, "Créatinine", "92", "µmol/L", "(59 - 104)"),
            _row(C, "DFG estimé", "78", "mL/min/1,73m²", "(> 60)"),
            ("small", "Formule CKD-EPI 2009"),
            _row(C, "DFG estimé", "81", "mL/min/1,73m²", "(> 60)"),
            ("small", "Équation CKD-EPI 2021"),
            _row(C, "Débit de filtration glomérulaire", "74", "mL/min/1,73m²", "(> 60)"),
            ("small", "(selon MDRD)"),
            _row(C, "Cholestérol LDL", "1,30", "g/L", "(< 1,60)"),
            _row(C, "", "3,36", "mmol/L", "(< 4,14)"),
            ("small", "Formule de Friedewald"),
            _row(C, "LDL cholestérol", "1,25 g/L", "3,23 mmol/L")]
    msg = _read(_lab_pdf(rows))
    assert [(e.code, e.value, e.unit) for e in msg.entries if e.type == "lab_result"] == [
        ("14682-9", "92", "umol/L"),
        ("62238-1", "78", "mL/min/{1.73_m2}"),
        ("98979-8", "81", "mL/min/{1.73_m2}"),
        ("33914-3", "74", "mL/min/{1.73_m2}"),
        ("13457-7", "1,30", "g/L"), ("39469-2", "3,36", "mmol/L"),
        ("2089-1", "1,25", "g/L"), ("22748-8", "3,23", "mmol/L")]
    egfr = msg.entries[2]
    assert egfr.details["method"] == "Formule CKD-EPI 2009"


# -- qualitative results written as a phrase ---------------------------------------------------
def test_a_qualitative_phrase_is_the_value_and_no_unit_is_read_in_it() -> None:
    """'Présence d'anticorps' was filed as 'Présence' in the unit 'd' (days: the 'd' of
    'd''); 'Présence d'oxalate de calcium', wider than its column, was taken for the unit
    column's and the crystals not filed. The phrase is the value, coded by its first word;
    no unit is read in it."""
    rows = [*HEADER, C_HEAD,
            _row(C, "Anticorps anti-VHC", "Présence d'anticorps"),
            _row(C, "Cristaux", "Présence d'oxalate de calcium"),
            _row(C, "Antigène HBs", "Absence"),
            _row(C, "Hématies", "Absence d’hématies")]
    msg = _read(_lab_pdf(rows))
    found = [(e.code, e.value, e.unit, e.details["value_code"]["code"])
             for e in msg.entries if e.type == "lab_result"]
    assert found == [("16128-1", "Présence d'anticorps", None, "52101004"),
                     ("Cristaux", "Présence d'oxalate de calcium", None, "52101004"),
                     ("5196-1", "Absence", None, "2667000"),
                     ("Hématies", "Absence d’hématies", None, "2667000")]


# -- units of other analysers ------------------------------------------------------------------
def test_counts_in_other_analysers_units_and_mEq_per_litre() -> None:
    """'x 10^9/L' printed with a blank after the 'x' lost its unit (the leucocytes filed
    unmapped with none); platelets in '10*3/µL' or 'milliers/mm3', red cells in '10^6/µL'
    (the same counts as G/L and T/L) were unmapped; sodium and potassium in 'mEq/L' (equal
    to mmol/L for these ions, and commensurable in UCUM) were unmapped. Each keeps the unit
    printed."""
    rows = [*HEADER, C_HEAD,
            _row(C, "Leucocytes", "7,2", "x 10^9/L", "(4,0 - 10,0)"),
            _row(C, "Hématies", "4,52", "x 10^12/L", "(3,80 - 5,20)"),
            _row(C, "Plaquettes", "245", "10*3/µL", "(150 - 400)"),
            _row(C, "Plaquettes", "245", "milliers/mm3", "(150 - 400)"),
            _row(C, "Globules rouges", "4,52", "10^6/µL", "(3,80 - 5,20)"),
            _row(C, "Polynucléaires neutrophiles", "55,2 %", "3,21 10^3/µL", "(1,80 - 7,50)"),
            _row(C, "Sodium", "140", "mEq/L", "(136 - 145)"),
            _row(C, "Potassium", "4,1", "mEq/L", "(3,5 - 5,1)"),
            _row(C, "Calcium", "4,8", "mEq/L", "(4,3 - 5,3)")]
    assert [(code, value, unit) for code, value, unit, *_ in _results(_read(_lab_pdf(rows)))] \
        == [("6690-2", "7,2", "10*9/L"), ("789-8", "4,52", "10*12/L"),
            ("777-3", "245", "10*3/uL"), ("777-3", "245", "10*3/mm3"),
            ("789-8", "4,52", "10*6/uL"), ("770-8", "55,2", "%"), ("751-8", "3,21", "10*3/uL"),
            ("2951-2", "140", "meq/L"), ("2823-3", "4,1", "meq/L"),
            # a divalent ion: 1 mmol is 2 mEq, never under the mmol/L code
            ("Calcium", "4,8", "meq/L")]


def test_superscript_powers_of_ten() -> None:
    doc = _doc([[(40, "Leucocytes"), (220, "7,2"), (290, "10⁹/L"), (360, "4,0-10,0")],
                [(40, "Hématies"), (220, "4,52"), (290, "x10¹²/L"), (360, "3,80-5,20")]])
    found = lab_pdf.lab_results(doc, [1], "report|x", effective="2026-03-03", issued=None)
    assert [(e.code, e.unit) for e in found.entries] == [("6690-2", "10*9/L"),
                                                         ("789-8", "10*12/L")]


# -- analyses every laboratory prints that the table lacked -------------------------------------
def test_analyses_the_table_lacked_are_coded_in_their_units_only() -> None:
    """Magnesium, 25-OH vitamin D, folates, ESR, CRP-us, NT-proBNP, hs troponins, D-dimers,
    Quick and aPTT times, bicarbonates were filed unmapped ('VS 1ère heure' as 'VS': the
    '1ère heure' of its name was taken for a value). Each is coded in the units of its
    property only: D-dimers without 'FEU' (maybe DDU, half the value), vitamin D in nmol/L
    and a troponin not said to be T or I stay unmapped."""
    rows = [*HEADER, C_HEAD,
            _row(C, "Magnésium", "0,82", "mmol/L", "(0,70 - 1,05)"),
            _row(C, "25-OH vitamine D", "18,5 L", "ng/mL", "(30 - 100)"),
            _row(C, "25-OH vitamine D", "46", "nmol/L", "(75 - 250)"),
            _row(C, "Folates sériques", "5,2", "ng/mL", "(3,9 - 26,8)"),
            _row(C, "VS 1ère heure", "22", "mm", "(< 20)"),
            _row(C, "CRP ultra-sensible", "1,2", "mg/L", "(< 3,0)"),
            _row(C, "NT-proBNP", "450", "pg/mL", "(< 125)"),
            _row(C, "Troponine T hs", "14", "ng/L", "(< 14)"),
            _row(C, "Troponine I hypersensible", "5,2", "ng/L", "(< 34,2)"),
            _row(C, "Troponine", "0,02", "ng/mL", "(< 0,04)"),
            _row(C, "D-dimères", "350", "ng/mL FEU", "(< 500)"),
            _row(C, "D-dimères", "0,35", "µg/mL", "(< 0,50)"),
            _row(C, "Temps de Quick", "12,8", "s"),
            _row(C, "Taux de prothrombine", "85", "%", "(70 - 100)"),
            _row(C, "INR", "1,05"),
            _row(C, "TCA patient", "32,5", "s"),
            _row(C, "Bicarbonates", "26", "mmol/L", "(22 - 29)")]
    msg = _read(_lab_pdf(rows))
    assert [(e.code, e.value, e.unit) for e in msg.entries if e.type == "lab_result"] == [
        ("2601-3", "0,82", "mmol/L"), ("62292-8", "18,5", "ng/mL"),
        ("25-OH vitamine D", "46", "nmol/L"), ("2284-8", "5,2", "ng/mL"),
        ("30341-2", "22", "mm"), ("30522-7", "1,2", "mg/L"), ("33762-6", "450", "pg/mL"),
        ("67151-1", "14", "ng/L"), ("89579-7", "5,2", "ng/L"), ("Troponine", "0,02", "ng/mL"),
        ("48065-7", "350", "ng/mL{FEU}"), ("D-dimères", "0,35", "ug/mL"),
        ("5902-2", "12,8", "s"), ("5894-1", "85", "%"), ("6301-6", "1,05", None),
        ("14979-9", "32,5", "s"), ("1963-8", "26", "mmol/L")]
    vs = next(e for e in msg.entries if e.code == "30341-2")
    assert vs.display == "VS 1ère heure" and vs.reference_range == "< 20"


# -- the urine tests of an ECBU ----------------------------------------------------------------
ECBU = [*HEADER, ("title", "EXAMEN CYTOBACTÉRIOLOGIQUE DES URINES (ECBU)"), C_HEAD,
        _row(C, "Leucocytes", "85 *", "/mm3", "(< 10)"),
        _row(C, "Hématies", "< 5", "/mm3", "(< 10)"),
        _row(C, "Nitrites", "Positif"),
        _row(C, "Culture", "Positive"),
        _row(C, "Numération bactérienne", "> 100000", "UFC/mL"),
        ("title", "ECBU DE CONTRÔLE"), C_HEAD,
        _row(C, "Culture", "Stérile"),
        ("title", "VIROLOGIE"), C_HEAD,
        _row(C, "Charge virale VHC", "Indétectable"),
        ("title", "HÉMATOLOGIE"), C_HEAD,
        _row(C, "Leucocytes", "7,2", "G/L", "(4,0 - 10,0)")]


def test_the_urine_tests_of_an_ecbu_are_coded_as_urines() -> None:
    """'EXAMEN CYTOBACTÉRIOLOGIQUE DES URINES' was no section: its leucocytes and red cells
    (/mm3) were filed unmapped as if of blood, its nitrites and culture unmapped. Under an
    ECBU they are the urine's (30405-5, 30391-7, 5802-4, 630-4); what the urine table does
    not know stays unmapped; the blood count after it is the blood's again. 'Stérile' (a
    culture) and 'Indétectable' (a viral load) were no value ('PDF_LAB_VALUE_NOT_READ')."""
    msg = _read(_lab_pdf(ECBU))
    assert [(e.code, e.value, e.unit, e.interpretation)
            for e in msg.entries if e.type == "lab_result"] == [
        ("30405-5", "85", "/mm3", "A"), ("30391-7", "< 5", "/mm3", None),
        ("5802-4", "Positif", None, None), ("630-4", "Positive", None, None),
        ("Numération bactérienne", "> 100000", "{CFU}/mL", None),
        ("630-4", "Stérile", None, None), ("Charge virale VHC", "Indétectable", None, None),
        ("6690-2", "7,2", "10*9/L", None)]
    sterile, undetectable = msg.entries[6:8]
    assert sterile.details["value_code"]["code"] == "264868006"  # No growth
    assert undetectable.details["value_code"]["code"] == "260415000"  # Not detected
    assert msg.entries[1].details["section"] == "EXAMEN CYTOBACTÉRIOLOGIQUE DES URINES (ECBU)"


# -- what a scan cannot show: bold type --------------------------------------------------------
def _page(source: str, rows: list[list[tuple[float, str]]], *, styles_seen: bool,
          bold: frozenset[str] = frozenset()) -> PdfDocument:
    """One page of (x, word) rows as ``source`` gives it; ``bold``: words printed in bold."""
    words = [Word(t, 96.0, (x, 100.0 + 14 * n, x + 6 * len(t), 110.0 + 14 * n), n,
                  bold=t in bold) for n, row in enumerate(rows) for x, t in row]
    text = "\n".join(" ".join(t for _, t in row) for row in rows)
    return PdfDocument([Page(1, source, text, words, 96.0, 595.0, 842.0,
                             styles_seen=styles_seen)])


KALAEMIA = [[(40, "Analyse"), (220, "Résultat"), (290, "Unité"), (360, "Normes")],
            [(40, "Potassium"), (220, "5,9"), (290, "mmol/L"), (360, "3,5-5,0")],
            [(40, "Sodium"), (220, "140"), (290, "mmol/L"), (360, "136-145")],
            [(40, "Glycémie"), (220, "7,2"), (240, "H"), (290, "mmol/L"), (360, "4,1-5,9")]]


def test_on_a_scan_an_unflagged_value_out_of_its_range_is_said_not_flagged() -> None:
    """OCR cannot see bold type, the only mark of some labs' abnormal results: on a scan
    the kalaemia out of its range, printed in bold, was filed with no flag and no word, as
    normal as the sodium. Nothing is invented (no flag is computed from the range: the lab's
    rules, by age or sex, are its own), but the result says that a flag may not have been
    seen and the ledger warns where. A flag printed is read as ever; on a text layer, where
    bold is seen, an unflagged value is the lab's choice and says nothing."""
    scan = lab_pdf.lab_results(_page(OCR, KALAEMIA, styles_seen=False), [1], "r|x",
                               effective="2026-03-12", issued=None)
    assert [(e.code, e.interpretation, e.details.get("flag_not_seen"))
            for e in scan.entries] == [("2823-3", None, True), ("2951-2", None, None),
                                       ("14749-6", "H", None)]
    assert [w.split(":")[0] for w in scan.warnings] == ["PDF_LAB_FLAG_NOT_SEEN"]
    assert "5,9" not in scan.warnings[0] and "page 1 line 2" in scan.warnings[0]
    text = lab_pdf.lab_results(_page(TEXT_LAYER, KALAEMIA, styles_seen=True), [1], "r|x",
                               effective="2026-03-12", issued=None)
    assert [(e.interpretation, e.details.get("flag_not_seen")) for e in text.entries] == [
        (None, None), (None, None), ("H", None)]
    assert text.warnings == []


def test_a_searchable_scans_text_layer_shows_no_type_styles() -> None:
    """A searchable scan's invisible text is the scanner's OCR, in a font of its own: bold
    is no more seen there than by tesseract, and a born-digital page's is."""
    layer = ["Potassium 5,9 mmol/L (3,5 - 5,0)", "Sodium 140 mmol/L (136 - 145)"]
    doc = parse_pdf(_searchable_scan(layer), PdfLimits(processes=1))
    assert (doc.pages[0].source, doc.pages[0].styles_seen) == (TEXT_LAYER, False)
    found = lab_pdf.lab_results(doc, [1], "r|x", effective="2026-03-12", issued=None)
    assert [(e.code, e.details.get("flag_not_seen")) for e in found.entries] == [
        ("2823-3", True), ("2951-2", None)]
    born_digital = parse_pdf(_lab_pdf([*HEADER, C_HEAD, _row(C, "Sodium", "140", "mmol/L")]),
                             PdfLimits(processes=1))
    assert born_digital.pages[0].styles_seen


# -- two results of one analysis: the SI columns ------------------------------------------------
SI = (40.0, 200.0, 250.0, 310.0, 370.0, 450.0)


def test_the_si_columns_are_results_each_with_its_unit() -> None:
    """'Résultat | Unité | Résultat SI | Unité SI': the SI columns were no column of ours,
    their values dropped without a word (the glycaemia in mmol/L, the creatinine in
    µmol/L). Each is now a result in its unit; the one range goes to the value it fits."""
    rows = [*HEADER,
            _row(SI, "", "Résultat", "Unité", "Résultat SI", "Unité SI",
                 "Valeurs de référence", style="label"),
            _row(SI, "Glycémie", "1,10", "g/L", "6,11", "mmol/L", "(0,70 - 1,10)"),
            _row(SI, "Créatinine", "9,5", "mg/L", "84", "µmol/L", "(5,0 - 11,0)")]
    assert _results(_read(_lab_pdf(rows))) == [
        ("2345-7", "1,10", "g/L", "0,70 - 1,10", None),
        ("14749-6", "6,11", "mmol/L", None, None),
        ("2160-0", "9,5", "mg/L", "5,0 - 11,0", None),
        ("14682-9", "84", "umol/L", None, None)]


def test_a_name_wrapped_above_its_values_with_its_abbreviation_below() -> None:
    """'Hémoglobine glyquée' on a line of its own and '(HbA1c)  6,5 %' under it: the line
    in parentheses was taken for the method of the result above (the kalaemia given a
    method '(HbA1c)' and a value in %, not filed), and the HbA1c lost."""
    rows = [*HEADER, ("title", "BIOCHIMIE"),
            ("body", (40.0, "Potassium"), (200.0, "5,9 mmol/L"), (300.0, "(3,5 - 5,0)")),
            ("body", (40.0, "Hémoglobine glyquée")),
            ("body", (40.0, "(HbA1c)"), (200.0, "6,5 %"), (300.0, "(4,0 - 6,0)"))]
    msg = _read(_lab_pdf(rows))
    potassium, hba1c = (e for e in msg.entries if e.type == "lab_result")
    assert (potassium.code, potassium.value, "method" in potassium.details) == (
        "2823-3", "5,9", False)
    assert (hba1c.code, hba1c.value, hba1c.unit, hba1c.reference_range) == (
        "4548-4", "6,5", "%", "4,0 - 6,0")
    assert not [w for w in msg.warnings if w.startswith("PDF_LAB_NOT_FILED")]


# -- the leucocyte formula under '%' and 'Valeurs absolues' ------------------------------------
def test_formula_columns_headed_by_the_percent_sign_and_absolute_values() -> None:
    """'FORMULE LEUCOCYTAIRE' with the columns '%  |  Valeurs absolues  |  Valeurs de
    référence', the percentage printed without its sign: that heading was no heading (no
    'Résultat'), each line read as two numbers without a unit between them, and the whole
    formula was not filed. The '%' column's numbers are percentages, the absolute values
    results; the range goes to the count it fits."""
    F = (40.0, 200.0, 250.0, 370.0)
    rows = [*HEADER, ("title", "FORMULE LEUCOCYTAIRE"),
            _row(F, "", "%", "Valeurs absolues", "Valeurs de référence", style="label"),
            _row(F, "Polynucléaires neutrophiles", "55,2", "3,21 G/L", "(1,80 - 7,50)"),
            _row(F, "Lymphocytes", "30,1", "1,75 G/L", "(1,00 - 4,00)"),
            _row(F, "Monocytes", "14,7 H", "0,86 G/L", "(0,20 - 1,00)")]
    assert _results(_read(_lab_pdf(rows))) == [
        ("770-8", "55,2", "%", None, None), ("751-8", "3,21", "10*9/L", "1,80 - 7,50", None),
        ("736-9", "30,1", "%", None, None), ("731-0", "1,75", "10*9/L", "1,00 - 4,00", None),
        ("5905-5", "14,7", "%", None, "H"), ("742-7", "0,86", "10*9/L", "0,20 - 1,00", None)]


# -- the page header repeated over a table going on ---------------------------------------------
def test_a_header_repeated_on_every_page_is_no_result_where_the_table_goes_on() -> None:
    """Page 2 repeats the page header ('LABORATOIRE BIOMED 35', the patient's banner) and
    goes on with the table without its heading: the lab's name, ending with its
    département's number, was filed as a result ('LABORATOIRE BIOMED' = 35, flagged 'A' for
    its bold type) with the patient's banner as its comment. A line printed on every page
    before the table is the page's, never a result."""
    banner = ("label", "Mme LEFÈVRE Hélène - Née le 14/03/1968 - Dossier 2603120045")
    page_1 = [("centre", "LABORATOIRE BIOMED 35"), banner, *HEADER[1:], C_HEAD,
              _row(C, "Sodium", "140", "mmol/L", "(136 - 145)", "141 (12/01/26)"),
              ("body", "Page 1/2")]
    page_2 = [("centre", "LABORATOIRE BIOMED 35"), banner,
              _row(C, "Potassium", "4,1", "mmol/L", "(3,5 - 5,0)", "4,3 (12/01/26)"),
              _row(C, "Chlore", "102", "mmol/L", "(98 - 107)"),
              ("body", "Page 2/2")]
    msg = _read(_lab_pdf(page_1, page_2))
    assert _results(msg) == [("2951-2", "140", "mmol/L", "136 - 145", None),
                             ("2823-3", "4,1", "mmol/L", "3,5 - 5,0", None),
                             ("2075-0", "102", "mmol/L", "98 - 107", None)]
    assert not any("comment" in e.details for e in msg.entries[1:])


def test_a_name_wrapped_before_its_abbreviation_is_not_the_line_above() -> None:
    """'Alanine aminotransférase' on its own line, then '(ALAT)  35  UI/L  (< 41)', under
    the eGFR: the '(ALAT)' line was read as the eGFR in another unit (a method '(ALAT)'),
    and the transaminase filed under the eGFR's name in UI/L. The name's two lines are one
    analysis, known by the abbreviation in parentheses ending it, never the line above."""
    rows = [*HEADER, C_HEAD,
            _row(C, "DFG estimé (CKD-EPI)", "85", "mL/min/1,73m²", "(> 60)"),
            _row(C, "Alanine aminotransférase"),
            _row(C, "(ALAT)", "35", "UI/L", "(< 41)")]
    msg = _read(_lab_pdf(rows))
    assert _results(msg) == [
        ("62238-1", "85", "mL/min/{1.73_m2}", "> 60", None),
        ("1742-6", "35", "[IU]/L", "< 41", None)]
    assert not any(k in msg.entries[1].details for k in ("method", "comment"))
    assert msg.entries[2].display == "Alanine aminotransférase (ALAT)"
