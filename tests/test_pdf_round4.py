"""Lab results out of French laboratories' PDF reports (round 4): layouts of laboratories not
seen before (Cerballiance, Biogroup, Eurofins Biomnis, Synlab, Inovie, a CHU's LIS). Each test
is what one of them prints that we read wrong: an analysis our table does not know printed
without a column heading (dropped with no word), the collection's date and time as other
labs print it, an abnormal value marked only in bold. Born-digital PDFs are written with
samples/generate_pdf.py's writer (tests/test_pdf_round3.py's helpers), read by parsers.pdf
and normalized as the pipeline does."""

from __future__ import annotations

import pytest

from normalizers import lab_pdf
from samples import generate_pdf as g
from tests.test_pdf_round3 import C_HEAD, LE_GOFF, LEFEVRE, C, _doc, _lab_pdf, _read, _results, _row

# -- an analysis we do not know, in a report without column headings ---------------------------
BIOGROUP = [("centre", "BIOGROUP - Laboratoire de biologie médicale"), *LE_GOFF,
            ("label", "Date de prélèvement : 05/02/2026"), ("title", "BIOCHIMIE"),
            ("body", (40.0, "Créatinine"), (200.0, "92 µmol/L"), (300.0, "(59 - 104)")),
            ("body", (40.0, "Vitamine B1 (thiamine)"), (200.0, "142 nmol/L"),
             (300.0, "(66 - 200)")),
            ("body", (40.0, "Zinc"), (200.0, "9,8 µmol/L L"), (300.0, "(10,7 - 18,4)")),
            ("body", (40.0, "Anticorps anti-TPO"), (200.0, "< 9"), (240.0, "UI/mL"),
             (300.0, "(< 34)")),
            ("body", "Contrôle du zinc à 12 µmol/L conseillé dans 3 mois."),
            ("body", "Imprimé le 06/02/2026 - Page 1/1")]


def test_an_analysis_we_do_not_know_without_headings_is_filed_unmapped_not_dropped() -> None:
    """A report with no column heading: a line naming an analysis our table does not know
    (thiamine, zinc, anti-TPO) was dropped without a word; only the creatinine was filed.
    Laid out as a result (name, value with a unit we know, range, each apart) it is now filed
    unmapped under its printed name, with a warning; a sentence quoting a value is not, and
    says so."""
    msg = _read(_lab_pdf(BIOGROUP))
    assert _results(msg) == [("14682-9", "92", "umol/L", "59 - 104", None),
                             ("Vitamine B1 (thiamine)", "142", "nmol/L", "66 - 200", None),
                             ("Zinc", "9,8", "umol/L", "10,7 - 18,4", "L"),
                             ("Anticorps anti-TPO", "< 9", "[IU]/mL", "< 34", None)]
    assert [(e.system, e.mapped) for e in msg.entries[2:]] == [("PDF-LABEL", False)] * 3
    assert msg.entries[4].comparator == "<" and msg.entries[4].value_num == 9.0
    codes = [w.split(":")[0] for w in msg.warnings]
    assert codes.count("PDF_LAB_UNKNOWN_ANALYSIS") == 3
    assert "PDF_LAB_NOT_FILED" in codes  # the advice quoting '12 µmol/L'
    assert not any("Zinc" in w or "9,8" in w for w in msg.warnings)  # no data in messages


# -- the specimen's collection as other laboratories print it ----------------------------------
@pytest.mark.parametrize(("printed", "expected"), [
    ("Prélevé le 12/03/2025", "2025-03-12"),
    ("Prélèvement du 12/03/2025 à 08h15", "2025-03-12T08:15+01:00"),
    ("Prélevé le 12 mars 2025 à 8h15", "2025-03-12T08:15+01:00"),
    ("Date de prélèvement : 1er août 2025", "2025-08-01"),
    ("Prélèvement effectué le 12/03/2025 à 08h15", "2025-03-12T08:15+01:00"),
    ("Date/heure de prélèvement : 12/03/2025 08:15", "2025-03-12T08:15+01:00"),
    ("Date et heure de prélèvement : 12/07/2025 - 14:05", "2025-07-12T14:05+02:00"),
    ("Prélèvement : 12.03.2025 08:15", "2025-03-12T08:15+01:00"),
    ("Date de prélèvement : 12/03/2025 Heure : 08h15", "2025-03-12T08:15+01:00"),
    ("Prélevé le 12/03/2025 à 8h", "2025-03-12T08+01:00"),
    ("Prélevé le 12/03/2025 à 25h10", "2025-03-12"),
    ("Prélèvement : sang veineux, 2 tubes", None),
    ("Prélevé le mercredi 12 mars 2025 à 08h15", "2025-03-12T08:15+01:00"),
    ("Date de prélèvement : 2025-03-12 08:15", "2025-03-12T08:15+01:00"),
    ("Prélevé à 08h15 le 12/03/2025", "2025-03-12T08:15+01:00"),
])
def test_collection_date_and_time_as_laboratories_print_them(printed, expected) -> None:  # noqa: ANN001
    """'Date/heure de prélèvement', 'Prélèvement :' with a dotted date were no collection
    (results undated); a date in words, 'effectué le', 'Heure :' after the date, '8h'
    lost the time (results dated to the day); a weekday before the date, an ISO date, the
    time before the date were no collection. A time that is none leaves the day."""
    words = printed.split()
    doc = _doc([[(40.0 + 60 * n, w) for n, w in enumerate(words)]])
    assert lab_pdf.collection_time(doc, [1]) == expected


def test_report_and_results_dated_by_date_heure_de_prelevement() -> None:
    """A Cerballiance-like header 'Date/heure de prélèvement : 12/03/2025 08:15': neither the
    report nor its results had a date."""
    rows = [("centre", "CERBALLIANCE Bretagne"), *LEFEVRE,
            ("label", "Date/heure de prélèvement : 12/03/2025 08:15"), C_HEAD,
            _row(C, "Sodium", "140", "mmol/L", "(136 - 145)")]
    report, sodium = _read(_lab_pdf(rows)).entries
    assert report.effective == "2025-03-12"
    assert (sodium.code, sodium.effective) == ("2951-2", "2025-03-12T08:15+01:00")


# -- an abnormal value marked by bold type alone -----------------------------------------------
def _styled_pdf(rows: list[list[tuple[float, str, str]]]) -> bytes:
    """One text page whose cells each have their style: (x, text, style)."""
    page, y = [], 800.0
    for row in rows:
        page.extend(g.Line(style, text, x, y) for x, text, style in row)
        y -= 14.0
    return g.write_pdf([page], title="Compte rendu de biologie")


def _cells(*cells: tuple[float, str] | tuple[float, str, str]) -> list[tuple[float, str, str]]:
    return [(c[0], c[1], c[2] if len(c) > 2 else "body") for c in cells]


CERBALLIANCE = [_cells((40.0, "CERBALLIANCE Île-de-France Est", "centre")),
                _cells((40.0, "Patient : Mme LEFÈVRE Hélène")), _cells((40.0, "Née le 14/03/1968")),
                _cells((40.0, "Prélèvement du 12/03/2025 à 08h15")),
                _cells((220.0, "Résultat"), (290.0, "Unité"), (360.0, "Valeurs de référence")),
                _cells((40.0, "Potassium", "strong"), (220.0, "5,9", "strong"), (290.0, "mmol/L"),
                       (360.0, "(3,5 - 5,0)")),
                _cells((40.0, "Sodium"), (220.0, "140"), (290.0, "mmol/L"), (360.0, "(136 - 145)")),
                _cells((40.0, "Créatinine"), (220.0, "< 40", "strong"), (290.0, "µmol/L"),
                       (360.0, "(45 - 84)")),
                _cells((40.0, "Hémoglobine"), (220.0, "11,2 L", "strong"), (290.0, "g/dL"),
                       (360.0, "(12,0 - 16,0)")),
                _cells((40.0, "Plaquettes"), (220.0, "250 000"), (290.0, "/mm3"),
                       (360.0, "(150 000 - 400 000)"))]


def test_a_value_in_bold_alone_is_flagged_abnormal() -> None:
    """Cerballiance-like: the kalaemia out of range printed in bold, no '*' nor 'H' beside it:
    it was filed with no flag, as normal as the sodium. Bold alone now flags it abnormal
    ('A'); a printed flag stays what it says; values in regular type get none."""
    msg = _read(_styled_pdf(CERBALLIANCE))
    assert _results(msg) == [("2823-3", "5,9", "mmol/L", "3,5 - 5,0", "A"),
                             ("2951-2", "140", "mmol/L", "136 - 145", None),
                             ("14682-9", "< 40", "umol/L", "45 - 84", "A"),
                             ("718-7", "11,2", "g/dL", "12,0 - 16,0", "L"),
                             ("777-3", "250 000", "/mm3", "150 000 - 400 000", None)]
    assert msg.entries[1].details["flag_printed"] == "bold"
    assert "flag_printed" not in msg.entries[4].details  # 'L' printed: the flag is the letter
    assert msg.entries[5].value_num == 250000.0


def test_a_report_printing_every_value_in_bold_flags_none() -> None:
    """Bold is a mark only where other values are not bold."""
    rows = [[(x, t, "strong" if x == 220.0 else s) for x, t, s in row] for row in CERBALLIANCE]
    assert [e.interpretation for e in _read(_styled_pdf(rows)).entries[1:]] == [
        None, None, None, "L", None]


# -- two tables side by side -------------------------------------------------------------------
T = (40.0, 150.0, 205.0, 250.0, 310.0, 420.0, 475.0, 520.0)
SIDE_BY_SIDE = [("centre", "CENTRE HOSPITALIER DE QUIMPER - Laboratoire"), *LE_GOFF,
                ("label", "Prélevé le 12/03/2025 à 08:15"),
                _row(T, "Analyse", "Résultat", "Unité", "Réf.", "Analyse", "Résultat", "Unité",
                     "Réf.", style="label"),
                _row(T, "Sodium", "140", "mmol/L", "136-145", "Leucocytes", "12,4 H", "G/L",
                     "4-10"),
                _row(T, "Potassium", "4,1", "mmol/L", "3,5-5,0", "Hémoglobine", "13,2", "g/dL",
                     "13-17"),
                _row(T, "Créatinine", "88", "µmol/L", "59-104", "Plaquettes", "", "", ""),
                _row(T, "", "", "", "", "", "245", "G/L", "150-400"),
                ("body", "Validé le 12/03/2025 par Dr Yann MORVAN")]


def test_two_tables_side_by_side_each_result_under_its_own_name() -> None:
    """A hospital LIS printing biochemistry and haematology side by side under one heading
    row: read across, the right table's value went to the left one's analysis (a leucocyte
    count of 12,4 G/L filed as an unmapped 'Sodium', the haemoglobin as 'Potassium') and the
    right table's names to nothing; 'Réf.' headed no column (every range lost)."""
    msg = _read(_lab_pdf(SIDE_BY_SIDE))
    assert _results(msg) == [("2951-2", "140", "mmol/L", "136-145", None),
                             ("2823-3", "4,1", "mmol/L", "3,5-5,0", None),
                             ("14682-9", "88", "umol/L", "59-104", None),
                             ("6690-2", "12,4", "10*9/L", "4-10", "H"),
                             ("718-7", "13,2", "g/dL", "13-17", None),
                             ("777-3", "245", "10*9/L", "150-400", None)]
    assert all(e.mapped for e in msg.entries[1:])
    assert not [w for w in msg.warnings if w.startswith("PDF_LAB")]


# -- analyses and units the table lacked -------------------------------------------------------
BIOMNIS = [("centre", "EUROFINS BIOMNIS"), *LEFEVRE, ("label", "Prélèvement du 12/03/2025 à 08h15"),
           C_HEAD,
           _row(C, "Urée", "5,2", "mmol/L", "(2,5 - 7,5)"),
           _row(C, "Acide urique", "412 H", "µmol/L", "(150 - 360)"),
           _row(C, "Calcium", "2,40", "mmol/L", "(2,20 - 2,60)"),
           _row(C, "Bilirubine totale", "12", "µmol/L", "(< 17)"),
           _row(C, "Phosphatases alcalines", "80", "U/L", "(40 - 130)"),
           _row(C, "ALAT", "35", "U/L", "(< 35)"),
           _row(C, "TSH", "2,10", "µUI/mL", "(0,27 - 4,20)"),
           _row(C, "Ferritine", "85", "ng/mL", "(15 - 150)"),
           _row(C, "Vitamine B12", "350", "pg/mL", "(200 - 900)"),
           _row(C, "Fibrinogène", "3,2", "g/L", "(2,0 - 4,0)"),
           _row(C, "Hémoglobine glyquée (HbA1c)", "6,5 %", "48 mmol/mol", "(< 6,0)"),
           _row(C, "Sélénium", "1,05", "µmol/L", "(0,75 - 1,30)")]


def test_common_analyses_and_other_labs_units_are_coded() -> None:
    """Urea, urate, calcium, bilirubin, ALP, B12, fibrinogen were filed unmapped; ALAT in
    'U/L' (not 'UI/L'), TSH in µUI/mL, ferritin in ng/mL, the HbA1c in mmol/mol (IFCC)
    unmapped with PDF_LAB_UNIT_UNEXPECTED. What the table still lacks (selenium) stays
    unmapped under its name, never under another analysis's code."""
    msg = _read(_lab_pdf(BIOMNIS))
    assert [(e.code, e.unit, e.interpretation) for e in msg.entries[1:]] == [
        ("22664-7", "mmol/L", None), ("14933-6", "umol/L", "H"), ("2000-8", "mmol/L", None),
        ("14631-6", "umol/L", None), ("6768-6", "U/L", None), ("1742-6", "U/L", None),
        ("3016-3", "u[IU]/mL", None), ("2276-4", "ng/mL", None), ("2132-9", "pg/mL", None),
        ("3255-7", "g/L", None), ("4548-4", "%", None), ("59261-8", "mmol/mol", None),
        ("Sélénium", "umol/L", None)]
    assert not [w for w in msg.warnings if "UNIT_UNEXPECTED" in w]


# -- flags as other LIS print them -------------------------------------------------------------
@pytest.mark.parametrize(("printed", "value", "flag"), [
    ("5,9 (H)", 5.9, "H"), ("3,1 [L]", 3.1, "L"), ("5,9 H*", 5.9, "H"), ("3,1 *L", 3.1, "L"),
    ("5,9H", 5.9, "H"), ("6,8HH", 6.8, "HH"), ("4,2", 4.2, None), ("5,9 *", 5.9, "A"),
])
def test_flags_in_brackets_combined_or_glued_to_the_value(printed, value, flag) -> None:  # noqa: ANN001
    """'5,9 (H)', '[L]', 'H*' were no flag (filed as normal); '5,9H' glued was read as the
    value 5 (the number cut before its decimals), in an unexpected unit."""
    rows = [[(40, "Analyse"), (220, "Résultat"), (290, "Unité"), (360, "Normes")],
            [(40, "Potassium"), *[(220 + 30 * n, w) for n, w in enumerate(printed.split())],
             (290, "mmol/L"), (360, "3,5-5,0")]]
    found = lab_pdf.lab_results(_doc(rows), [1], "r|x", effective=None, issued=None)
    assert [(e.code, e.value_num, e.interpretation) for e in found.entries] == [
        ("2823-3", value, flag)]


@pytest.mark.parametrize("printed", ["5,9X", "En cours", "Hémolysé"])
def test_what_is_under_the_result_heading_and_no_value_is_said(printed) -> None:  # noqa: ANN001
    """'5,9X' (a misprint) was read as the value 5; 'En cours', 'Hémolysé' under 'Résultat'
    gave nothing and said nothing. No result is filed, and the ledger says where."""
    rows = [[(40, "Analyse"), (220, "Résultat"), (290, "Unité"), (360, "Normes")],
            [(40, "Potassium"), *[(220 + 40 * n, w) for n, w in enumerate(printed.split())],
             (290, "mmol/L"), (360, "3,5-5,0")],
            [(40, "Sodium"), (220, "140"), (290, "mmol/L"), (360, "136-145")]]
    found = lab_pdf.lab_results(_doc(rows), [1], "r|x", effective=None, issued=None)
    assert [(e.code, e.value_num) for e in found.entries] == [("2951-2", 140.0)]
    assert found.warnings == ["PDF_LAB_VALUE_NOT_READ: page 1 line 2: what is printed under "
                              "the result's heading is no value we can read: no result filed "
                              "(read it on the report)"]


def test_grams_per_100_ml_is_the_unit_not_its_ml() -> None:
    """An older LIS printing 'g/100 mL': the unit was read as 'mL' (its last word), the
    haemoglobin filed unmapped in millilitres."""
    rows = [[(40, "Analyse"), (220, "Résultat"), (290, "Unité"), (360, "Normes")],
            [(40, "Hémoglobine"), (220, "13,5"), (290, "g/100"), (316, "mL"), (360, "13-17")],
            [(40, "Protides totaux"), (220, "7,1"), (290, "g/100mL"), (360, "6,4-8,3")]]
    found = lab_pdf.lab_results(_doc(rows), [1], "r|x", effective=None, issued=None)
    assert [(e.code, e.value_num, e.unit) for e in found.entries][0] == ("718-7", 13.5, "g/dL")
    assert found.entries[1].unit == "g/dL"


# -- antériorités headed by their date ---------------------------------------------------------
A = (40.0, 200.0, 270.0, 340.0, 460.0)


@pytest.mark.parametrize("previous", ["Antériorité du 12/01/2025", "Antérieur (12/01/25)",
                                      "Résultat précédent 12/01/25", "12/01/2025"])
def test_anteriorite_column_headed_by_its_date_keeps_the_date(previous) -> None:  # noqa: ANN001
    """'Antériorité du 12/01/2025' named no column: the former results were dropped without
    a word (not kept in details.previous); under a date alone they were kept without it.
    They are now kept with the date heading their column, never as results."""
    rows = [("centre", "LABORATOIRE INOVIE - Gen-Bio"), *LEFEVRE,
            ("label", "Prélevé le 12/03/2025 à 08:15"),
            _row(A, "Analyse", "Résultat", "Unité", "Valeurs de référence", previous,
                 style="label"),
            _row(A, "Potassium", "4,1", "mmol/L", "3,5 - 5,0", "4,5"),
            _row(A, "Sodium", "139", "mmol/L", "136 - 145", "141 (03/01/25)")]
    msg = _read(_lab_pdf(rows))
    when = previous.split()[-1].strip("()")
    assert [(e.code, e.value, e.reference_range, e.details.get("previous"))
            for e in msg.entries[1:]] == [("2823-3", "4,1", "3,5 - 5,0", f"4,5 ({when})"),
                                          ("2951-2", "139", "136 - 145", "141 (03/01/25)")]


def test_a_range_labelled_by_age_is_kept_as_printed() -> None:
    """'Enfant < 15 ans : 150 - 420' under 'Adulte : 40 - 130' was kept as the ranges
    '< 15' and '150 - 420' (the age read as a range, its label lost); 'Homme > 50 ans :
    < 6,5' as '> 50 ; < 6,5'. Kept as printed now."""
    rows = [("centre", "SYNLAB Pays de Savoie"), *LE_GOFF, ("label", "Prélevé le 12/03/2025"),
            _row(A, "Analyse", "Résultat", "Unité", "Valeurs de référence", style="label"),
            _row(A, "Phosphatases alcalines", "250 H", "UI/L", "Adulte : 40 - 130"),
            _row(A, "", "", "", "Enfant < 15 ans : 150 - 420"),
            _row(A, "PSA total", "3,2", "µg/L", "Homme < 50 ans : < 2,5"),
            _row(A, "", "", "", "Homme > 50 ans : < 6,5")]
    msg = _read(_lab_pdf(rows))
    assert [(e.code, e.reference_range, e.interpretation) for e in msg.entries[1:]] == [
        ("6768-6", "Adulte : 40 - 130 ; Enfant < 15 ans : 150 - 420", "H"),
        ("2857-1", "Homme < 50 ans : < 2,5 ; Homme > 50 ans : < 6,5", None)]


def test_every_result_in_bold_with_its_other_unit_in_regular_flags_none() -> None:
    """A LIS printing every result in bold, and the same result in another unit on the line
    below ('Soit : 5,83 mmol/L') in regular type: every result was flagged abnormal."""
    rows = [_cells((40.0, "BIOGROUP Lorraine", "centre")),
            _cells((40.0, "Patient : M. LE GOFF Jérôme")), _cells((40.0, "Né le 02/11/1955")),
            _cells((40.0, "Prélevé le 12/03/2025 à 08:15")),
            _cells((220.0, "Résultat"), (290.0, "Unité"), (360.0, "Valeurs de référence")),
            _cells((40.0, "Glycémie à jeun"), (220.0, "1,05", "strong"), (290.0, "g/L"),
                   (360.0, "(0,70 - 1,10)")),
            _cells((60.0, "Soit :"), (220.0, "5,83"), (290.0, "mmol/L"), (360.0, "(3,89 - 6,10)")),
            _cells((40.0, "Sodium"), (220.0, "140", "strong"), (290.0, "mmol/L"),
                   (360.0, "(136 - 145)"))]
    msg = _read(_styled_pdf(rows))
    assert [(e.code, e.interpretation) for e in msg.entries[1:]] == [
        ("2345-7", None), ("14749-6", None), ("2951-2", None)]


def test_a_unit_in_parentheses_is_read_and_a_unit_we_cannot_read_is_not_cut() -> None:
    """'(mmol/L)' under 'Unité' was no unit (the potassium filed unmapped); 'UI/100 mL', a
    spelling no table knows, was read as 'mL' (its last word): a wrong unit in the dossier.
    Now the first is read, the second gives no unit and the result is filed unmapped."""
    rows = [[(40, "Analyse"), (220, "Résultat"), (290, "Unité"), (360, "Normes")],
            [(40, "Potassium"), (220, "4,5"), (290, "(mmol/L)"), (360, "3,5-5,0")],
            [(40, "Sodium"), (220, "140"), (290, "UI/100"), (328, "mL"), (360, "136-145")]]
    found = lab_pdf.lab_results(_doc(rows), [1], "r|x", effective=None, issued=None)
    assert [(e.code, e.unit, e.mapped) for e in found.entries] == [
        ("2823-3", "mmol/L", True), ("Sodium", None, False)]
    assert [w.split(":")[0] for w in found.warnings] == ["PDF_LAB_UNIT_UNEXPECTED"]
