"""Lab results out of French laboratories' PDF reports (round 3): the result table of reports
laid out as Cerba, Synlab, Biogroup, Eurofins Biomnis and a CHU's LIS print them (columns in
their orders, antériorités with their dates, a header repeated or not on each page, two
units on one line, ranges by sex on two lines, names on two lines, methods and comments,
footers). Before this round no result of a PDF became an entry (the report's text only).
Born-digital PDFs are written in the test with samples/generate_pdf.py's writer, each cell
at its column's x, as a LIS prints its table; read by parsers.pdf and normalized as the
pipeline does."""

from __future__ import annotations

import csv

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from dossiers.schema import entries
from normalizers import lab_pdf
from normalizers.documents import pdf_report_entries
from normalizers.model import Entry
from normalizers.report import normalize_report
from parsers.pdf import PdfLimits, parse_pdf
from parsers.pdf.model import TEXT_LAYER, Page, PdfDocument, Word
from pipelines.dossier_admin import DossierInput, create_dossiers
from pipelines.intake import Received, intake
from pipelines.process import drain
from samples import generate_pdf as g
from tests.conftest import SAMPLES

LEFEVRE = [("label", "Patient : Mme LEFÈVRE Hélène"), ("label", "Née le 14/03/1968")]
LE_GOFF = [("label", "Patient : M. LE GOFF Jérôme"), ("label", "Né le 02/11/1955")]


def _row(xs: tuple[float, ...], *cells: str, style: str = "body") -> tuple:
    return (style, *[(x, t) for x, t in zip(xs, cells, strict=False) if t])


def _lab_pdf(*pages: list[tuple]) -> bytes:
    """Text pages: each row (style, str) or (style, (x, text), ...) at its own x."""
    return g.write_pdf(_lab_pdf_pages(*pages), title="Compte rendu de biologie")


def _lab_pdf_pages(*pages: list[tuple]) -> list[list[g.Line]]:
    out = []
    for rows in pages:
        page, y = [], 800.0
        for style, *cells in rows:
            for cell in cells:
                x, text = cell if isinstance(cell, tuple) else (40.0, cell)
                page.append(g.Line(style, text, x, y))
            y -= 11.0 if style == "small" else 14.0
        out.append(page)
    return out


def _read(data: bytes):  # noqa: ANN202
    return normalize_report(parse_pdf(data, PdfLimits(processes=1)), data, "round3")


def _results(msg) -> list[tuple]:  # noqa: ANN001
    return [(e.code, e.value, e.unit, e.reference_range, e.interpretation)
            for e in msg.entries if e.type == "lab_result"]


# -- Cerba: Résultat | Unité | Valeurs de référence | Antériorité(s), two pages ------------------
C = (40.0, 220.0, 290.0, 360.0, 470.0)
C_HEAD = _row(C, "", "Résultat", "Unité", "Valeurs de référence", "Antériorité(s)",
              style="label")
CERBA_1 = [("centre", "LABORATOIRE CERBA - Biologie médicale"), *LEFEVRE,
           ("label", "Prescripteur : Dr Paul ROCHE"),
           ("label", "Prélèvement du 12/03/2026 à 08h15"), ("title", "HÉMATOLOGIE"), C_HEAD,
           _row(C, "Hématies", "4,52", "T/L", "(3,80 - 5,20)", "4,61 le 12/01/26"),
           _row(C, "Hémoglobine", "11,2 L", "g/dL", "(12,0 - 16,0)", "12,8 (12/01/26)"),
           _row(C, "Hématocrite", "38,5", "%", "(36,0 - 46,0)", "39,1"),
           _row(C, "Leucocytes", "7,85", "G/L", "(4,00 - 10,00)"),
           _row(C, "Polynucléaires neutrophiles", "62,1 %", "4,87 G/L", "(1,80 - 7,50)"),
           _row(C, "Lymphocytes", "28,0 %", "2,20 G/L", "(1,00 - 4,00)"),
           _row(C, "Plaquettes", "1 250 *", "G/L", "(150 - 400)", "245"),
           ("small", "Méthode : impédancemétrie (Sysmex XN)"),
           ("body", "Edité le 12/03/2026 - page 1/2")]
CERBA_2 = [("centre", "LABORATOIRE CERBA - Biologie médicale"), ("title", "BIOCHIMIE SANGUINE"),
           C_HEAD,
           _row(C, "Glycémie à jeun", "5,20 mmol/L", "0,94 g/L", "(4,10 - 5,90)"),
           _row(C, "Créatinine", "68", "µmol/L", "(45 - 84)", "72 (12/01/26)"),
           _row(C, "DFG estimé (CKD-EPI)", "> 90", "mL/min/1,73m²", "> 60"),
           _row(C, "Potassium", "5,8 H", "mmol/L", "3,5 à 5,0"),
           ("body", "Contrôlé sur un second prélèvement."),
           _row(C, "CRP", "< 0,5", "mg/L", "Inf. à 5,0"),
           _row(C, "TSH", "Non réalisé"),
           ("title", "SÉROLOGIE"),
           _row(C, "Antigène HBs", "Négatif", "", "Négatif", "Négatif (12/01/26)"),
           ("body", "Validé le 12/03/2026 à 14h02 par Dr Anne KERGOAT"),
           ("body", "Edité le 12/03/2026 - page 2/2")]
CERBA = [("789-8", "4,52", "10*12/L", "3,80 - 5,20", None),
         ("718-7", "11,2", "g/dL", "12,0 - 16,0", "L"),
         ("4544-3", "38,5", "%", "36,0 - 46,0", None),
         ("6690-2", "7,85", "10*9/L", "4,00 - 10,00", None),
         ("770-8", "62,1", "%", None, None),
         ("751-8", "4,87", "10*9/L", "1,80 - 7,50", None),
         ("736-9", "28,0", "%", None, None),
         ("731-0", "2,20", "10*9/L", "1,00 - 4,00", None),
         ("777-3", "1 250", "10*9/L", "150 - 400", "A"),
         ("14749-6", "5,20", "mmol/L", "4,10 - 5,90", None),
         ("2345-7", "0,94", "g/L", None, None),
         ("14682-9", "68", "umol/L", "45 - 84", None),
         ("62238-1", "> 90", "mL/min/{1.73_m2}", "> 60", None),
         ("2823-3", "5,8", "mmol/L", "3,5 à 5,0", "H"),
         ("1988-5", "< 0,5", "mg/L", "Inf. à 5,0", None),
         ("3016-3", None, None, None, None),
         ("5196-1", "Négatif", None, "Négatif", None)]


def test_cerba_report_every_result_coded_and_no_anteriorite_read_as_a_result() -> None:
    """Two pages, the heading repeated, the antériorité column with its dates: each line one
    coded result (two for the leucocyte formula and the glycaemia in two units), the former
    results in details.previous only; none of them, no date, no page number is a result."""
    msg = _read(_lab_pdf(CERBA_1, CERBA_2))
    report, *results = msg.entries
    assert report.type == "report" and report.details["lab_results"] == 17
    assert _results(msg) == CERBA
    assert {r.parent_key for r in results} == {report.key}
    assert {(r.effective, r.specimen_time) for r in results} == {
        ("2026-03-12T08:15+01:00", "2026-03-12T08:15+01:00")}
    by_code = {r.code: r for r in results}
    assert by_code["718-7"].details["previous"] == "12,8 (12/01/26)"
    assert by_code["718-7"].value_num == 11.2 and by_code["777-3"].value_num == 1250.0
    assert (by_code["1988-5"].comparator, by_code["1988-5"].value_num) == ("<", 0.5)
    assert by_code["777-3"].details["method"] == "Méthode : impédancemétrie (Sysmex XN)"
    assert "comment" not in by_code["777-3"].details  # the page's footer and header are none
    assert by_code["2823-3"].details["comment"] == ["Contrôlé sur un second prélèvement."]
    assert by_code["3016-3"].status == "cancelled" and by_code["3016-3"].value_num is None
    assert by_code["5196-1"].details["value_code"]["code"] == "260385009"
    assert by_code["718-7"].details["section"] == "HÉMATOLOGIE"
    assert by_code["5196-1"].details["section"] == "SÉROLOGIE"
    assert all(r.mapped and r.system == "LN" for r in results)
    assert msg.quarantine_reasons == []


# -- Synlab: Résultats | Valeurs usuelles | Unités | Antériorités --------------------------------
S = (40.0, 220.0, 290.0, 380.0, 460.0)
SYNLAB = [("centre", "SYNLAB Provence"), *LE_GOFF, ("label", "Prélevé le 03/03/26 à 07:40"),
          _row(S, "Analyses", "Résultats", "Valeurs usuelles", "Unités", "Antériorités",
               style="label"),
          _row(S, "Sodium", "139", "136 - 145", "mmol/L", "141 (02/02/26)"),
          _row(S, "Potassium", "3,2 L", "3,5 - 5,1", "mmol/L", "3,9"),
          _row(S, "Cholestérol total", "2,45 *", "< 2,00", "g/L"),
          _row(S, "ALAT (TGP)", "35", "< 41", "UI/L", "28"),
          _row(S, "Gamma-GT", "1.250", "< 55", "UI/L"),
          _row(S, "Hémoglobine glyquée (HbA1c)", "7,2 H", "4,0 - 6,0", "%", "6,8 (05/12/25)")]


def test_synlab_columns_in_another_order_unit_after_the_range() -> None:
    """The unit column after the reference column: the unit is the result's, the bound
    '< 2,00' under 'Valeurs usuelles' is the range (not a value '<2'), '1.250' in a report
    with comma decimals is 1250, and 'H' before the range a flag (not a men's range)."""
    msg = _read(_lab_pdf(SYNLAB))
    assert _results(msg) == [("2951-2", "139", "mmol/L", "136 - 145", None),
                             ("2823-3", "3,2", "mmol/L", "3,5 - 5,1", "L"),
                             ("2093-3", "2,45", "g/L", "< 2,00", "A"),
                             ("1742-6", "35", "[IU]/L", "< 41", None),
                             ("2324-2", "1.250", "[IU]/L", "< 55", None),
                             ("4548-4", "7,2", "%", "4,0 - 6,0", "H")]
    ggt = next(e for e in msg.entries if e.code == "2324-2")
    assert ggt.value_num == 1250.0 and ggt.comparator is None
    assert msg.entries[0].effective == "2026-03-03"
    assert {e.effective for e in msg.entries[1:]} == {"2026-03-03T07:40+01:00"}


# -- Biogroup: no heading, antériorité as '88 le 12/10/25' ------------------------------------
BIOGROUP = [("centre", "BIOGROUP - Laboratoire de biologie médicale"), *LE_GOFF,
            ("label", "Date de prélèvement : 05/02/2026"), ("title", "BIOCHIMIE"),
            ("body", (40.0, "Créatinine"), (200.0, "92 µmol/L"), (300.0, "(59 - 104)"),
             (420.0, "88 le 12/10/25")),
            ("body", (40.0, "Glycémie à jeun"), (200.0, "1,32 g/L H"), (300.0, "(0,70 - 1,10)"),
             (420.0, "1,18 le 12/10/25")),
            ("body", (40.0, "TSH ultra-sensible"), (200.0, "2,10 mUI/L"), (300.0, "0,27 à 4,20")),
            ("body", (40.0, "Ferritine"), (200.0, "(15) µg/L"), (300.0, "(30 - 400)")),
            ("body", (40.0, "Sodium"), (200.0, "140 mmol/L"), (300.0, "141 mmol/L (12/10/25)")),
            ("body", "Imprimé le 06/02/2026 - Page 1/1")]


def test_biogroup_without_heading_anteriorite_by_its_date() -> None:
    """No column heading: the name is what precedes the value, the range follows it, and a
    number with a date after it is the antériorité (kept in details, never a result; a
    second value in the same unit neither); a value in parentheses is the value."""
    msg = _read(_lab_pdf(BIOGROUP))
    assert _results(msg) == [("14682-9", "92", "umol/L", "59 - 104", None),
                             ("2345-7", "1,32", "g/L", "0,70 - 1,10", "H"),
                             ("3016-3", "2,10", "m[IU]/L", "0,27 à 4,20", None),
                             ("2276-4", "15", "ug/L", "30 - 400", None),
                             ("2951-2", "140", "mmol/L", None, None)]
    previous = [e.details.get("previous") for e in msg.entries[1:]]
    assert previous == ["88 le 12/10/25", "1,18 le 12/10/25", None, None,
                        "141 mmol/L (12/10/25)"]
    assert {e.effective for e in msg.entries[1:]} == {"2026-02-05"}  # no time printed


# -- Eurofins Biomnis: names on two lines, ranges by sex, 'Voir commentaire' ----------------------
B = (40.0, 250.0, 320.0, 410.0)
BIOMNIS = [("centre", "EUROFINS BIOMNIS"), *LE_GOFF, ("label", "Prélèvement du 12/03/2026 à 08h15"),
           _row(B, "", "Résultat", "Unité", "Valeurs de référence", style="label"),
           _row(B, "Hémoglobine", "14,1", "g/dL", "H : 13,0 - 17,0"),
           _row(B, "", "", "", "F : 12,0 - 16,0"),
           _row(B, "Débit de filtration glomérulaire"),
           _row(B, "estimé (CKD-EPI)", "85", "mL/min/1,73m²", "> 60"),
           ("small", "Méthode : créatinine enzymatique IDMS"),
           _row(B, "Recherche d'agglutinines irrégulières", "Voir commentaire"),
           ("body", "Présence d'un anticorps anti-Kell."),
           _row(B, "Anticorps anti-VHC", "Absence"),
           _row(B, "Ferritine", "85", "µg/L", "cf commentaire"),
           _row(B, "Créatinine", "68 µmol/L (7,7 mg/L)", "", "45 - 84"),
           ("body", "Validé le 12/03/2026 par Dr Anne KERGOAT")]


def test_biomnis_two_line_name_ranges_by_sex_and_see_comment() -> None:
    msg = _read(_lab_pdf(BIOMNIS))
    hb, dfg, rai, hcv, ferritin, crea_mol, crea_mass = msg.entries[1:]
    assert [(e.code, e.value_num, e.unit, e.reference_range) for e in (crea_mol, crea_mass)] == [
        ("14682-9", 68.0, "umol/L", "45 - 84"), ("2160-0", 7.7, "mg/L", None)]
    assert (ferritin.value_num, ferritin.unit, ferritin.reference_range) == (
        85.0, "ug/L", "cf commentaire")
    assert (hb.code, hb.reference_range) == ("718-7", "H : 13,0 - 17,0 ; F : 12,0 - 16,0")
    assert (dfg.code, dfg.display, dfg.value_num, dfg.reference_range) == (
        "62238-1", "Débit de filtration glomérulaire estimé (CKD-EPI)", 85.0, "> 60")
    assert dfg.details["method"] == "Méthode : créatinine enzymatique IDMS"
    assert (rai.system, rai.mapped, rai.value, rai.value_type) == (
        "PDF-LABEL", False, "Présence d'un anticorps anti-Kell.", "TX")
    assert (hcv.code, hcv.value, hcv.details["value_code"]["code"]) == (
        "16128-1", "Absence", "2667000")
    assert "section" not in hb.details  # the laboratory's name in capitals is no section


# -- a CHU: 10^9/L, /mm3 with blank thousands, seconds, a table cut across two pages -----------
H = (40.0, 240.0, 310.0, 400.0)
CHU_1 = [("centre", "CHU DE RENNES - Laboratoire d'hématologie"), *LE_GOFF,
         ("label", "Prélèvement du 20/01/2026 à 22h40"),
         _row(H, "Examen", "Résultat", "Unité", "Normales", style="label"),
         _row(H, "Leucocytes", "12,40 H", "10^9/L", "4,0 - 10,0"),
         _row(H, "Plaquettes", "98 000 L", "/mm3", "150 000 - 400 000"),
         _row(H, "Temps de céphaline activée", "38,2", "sec", "< 40"),
         _row(H, "Ratio TCA patient/témoin", "1,18", "", "< 1,20"),
         ("small", "CHU de Rennes - 2 rue Henri Le Guilloux 35033 Rennes - page 1/2")]
CHU_2 = [_row(H, "INR", "2,6", "", "2,0 - 3,0"),
         _row(H, "Taux de prothrombine", "32 L", "%", "70 - 100"),
         ("small", "CHU de Rennes - 2 rue Henri Le Guilloux 35033 Rennes - page 2/2")]


def test_chu_table_cut_across_pages_and_unmapped_analyses_kept() -> None:
    """Page 2 has no heading: the table goes on. Analyses not in the table are filed
    unmapped under their printed name; the footer's address and page numbers are none."""
    msg = _read(_lab_pdf(CHU_1, CHU_2))
    assert _results(msg) == [("6690-2", "12,40", "10*9/L", "4,0 - 10,0", "H"),
                             ("777-3", "98 000", "/mm3", "150 000 - 400 000", "L"),
                             ("14979-9", "38,2", "s", "< 40", None),
                             ("Ratio TCA patient/témoin", "1,18", None, "< 1,20", None),
                             ("6301-6", "2,6", None, "2,0 - 3,0", None),
                             ("5894-1", "32", "%", "70 - 100", "L")]
    assert [e.mapped for e in msg.entries[1:]] == [True, True, True, False, True, True]
    assert msg.entries[2].value_num == 98000.0
    assert msg.entries[1].effective == "2026-01-20T22:40+01:00"


# -- what is never a result ---------------------------------------------------------------------
def test_imaging_report_and_lab_prose_give_no_result() -> None:
    """An imaging report's measurements, and a lab report's lines outside a result table
    naming no analysis we know (an address, a phone number, a date), are no results."""
    imaging = _lab_pdf([("centre", "IMAGERIE MÉDICALE DES LILAS"), *LEFEVRE,
                        ("title", "ÉCHOGRAPHIE ABDOMINALE"), ("label", "Examen du 12/03/2026"),
                        ("body", "Foie 14,5 cm. Rate 11 cm. Glycémie 1,02 g/L selon le patient."),
                        ("head", "Conclusion :"), ("body", "Examen normal.")])
    assert [e.type for e in _read(imaging).entries] == ["imaging_report"]
    prose = _lab_pdf([("centre", "LABORATOIRE BIOLAB"), *LEFEVRE,
                      ("label", "Prélevé le 03/03/26 à 08:15"),
                      ("body", "5 avenue Jean Jaurès 69007 Lyon - Tél. 04 78 12 34 56"),
                      ("body", "Dossier 2603030045 du 03/03/2026, 12 tubes reçus"),
                      ("body", "Hémoglobine glyquée : à contrôler dans 3 mois"),
                      ("body", "Ferritine : 2 tubes"),
                      ("body", "Edité le 03/03/2026 - page 1/1")])
    assert [e.type for e in _read(prose).entries] == ["report"]


def _doc(rows: list[list[tuple[float, str]]]) -> PdfDocument:
    """A text page from (x, word) rows, for marks the samples' WinAnsi fonts cannot print
    (arrows)."""
    words = [Word(t, 100.0, (x, 100.0 + 14 * n, x + 6 * len(t), 110.0 + 14 * n), n)
             for n, row in enumerate(rows) for x, t in row]
    text = "\n".join(" ".join(t for _, t in row) for row in rows)
    return PdfDocument([Page(1, TEXT_LAYER, text, words, 100.0, 595.0, 842.0)])


def test_arrow_flags_and_comparator_words() -> None:
    doc = _doc([[(40, "Potassium"), (220, "5,9"), (240, "↑"), (290, "mmol/L"), (360, "3,5-5,0")],
                [(40, "Sodium"), (220, "128"), (250, "↓"), (290, "mmol/L"), (360, "136-145")],
                [(40, "CRP"), (220, "Inf."), (243, "à"), (253, "0,5"), (290, "mg/L"),
                 (360, "<"), (368, "5,0")]])
    found = lab_pdf.lab_results(doc, [1], "report|x", effective="2026-03-03", issued=None)
    assert [(e.code, e.value_num, e.comparator, e.interpretation, e.reference_range)
            for e in found.entries] == [("2823-3", 5.9, None, "H", "3,5-5,0"),
                                        ("2951-2", 128.0, None, "L", "136-145"),
                                        ("1988-5", 0.5, "<", None, "< 5,0")]


def test_point_decimals_report_reads_1_250_as_a_decimal() -> None:
    """'1.250' is a thousand two hundred and fifty only where decimals are commas; in a
    report writing '4.52' it is one and a quarter."""
    doc = _doc([[(40, "Hématies"), (220, "4.52"), (290, "T/L"), (360, "3.80-5.20")],
                [(40, "INR"), (220, "1.250"), (360, "0.80-1.20")],
                [(40, "Potassium"), (220, "4.15"), (290, "mmol/L"), (360, "3.50-5.00")]])
    found = lab_pdf.lab_results(doc, [1], "report|x", effective=None, issued=None)
    assert [e.value_num for e in found.entries] == [4.52, 1.25, 4.15]


@given(st.decimals(min_value=0, max_value=99999, places=2, allow_nan=False))
def test_french_numbers_read_back(value) -> None:  # noqa: ANN001
    """Any value printed the French way, with or without blank thousands, reads back."""
    plain = f"{value:.2f}".replace(".", ",")
    grouped = f"{value:,.2f}".replace(",", " ").replace(".", ",")
    for printed in (plain, grouped):
        assert lab_pdf._number(printed, True) == (float(value), f"{value:.2f}")


# -- the pipeline: the report and its results in the dossier ----------------------------------
def test_lab_pdf_results_are_filed_in_the_dossier(sqlite_ctx) -> None:  # noqa: ANN001
    ctx = sqlite_ctx
    with open(SAMPLES / "patients.csv", encoding="utf-8") as fh:
        create_dossiers(ctx.engine, [DossierInput.from_mapping(r) for r in csv.DictReader(fh)
                                     if r["key"] == "K2"])
    data = _lab_pdf(CHU_1, CHU_2)
    intake(ctx.engine, ctx.archive, [Received(data, "chu-labo", "file", file_name="cr.pdf")])
    drain(ctx)
    with ctx.engine.connect() as conn:
        rows = conn.execute(select(entries.c.type, entries.c.code, entries.c.value_num)
                            .order_by(entries.c.id)).all()
    assert [tuple(r) for r in rows] == [("report", None, None), ("lab_result", "6690-2", 12.4),
                                        ("lab_result", "777-3", 98000.0),
                                        ("lab_result", "14979-9", 38.2),
                                        ("lab_result", "Ratio TCA patient/témoin", 1.18),
                                        ("lab_result", "6301-6", 2.6),
                                        ("lab_result", "5894-1", 32.0)]


# -- layouts of the ANS's published CR-BIO examples (corpus/pdf), with our own values ---------
E = (21.0, 160.0, 260.0, 370.0, 480.0)
HEMOGRAMME = [("centre", "Laboratoire des Charmes"), *LEFEVRE,
              ("label", "Prélèvement du 04/01/2023 à 07h35 par le cabinet infirmier"),
              ("title", "HEMATOLOGIE"),
              ("body", (183.0, "04/01/2023 11:30"), (275.0, "Valeurs de référence"),
               (398.0, "Interprétation"), (503.0, "12/09/2020 08:15")),
              _row(E, "Leucocytes (10*9/L)", "8.2", "5 à 10", "", "5.8"),
              _row(E, "Hémoglobine (g/dL)", "13.4", "11.5 à 14.5", "", "13.3"),
              _row(E, "Volume globulaire moyen (fL)", "97", "85 à 95", "Haut, croissant", "90"),
              _row(E, "Indice de distribution", "17.5", "11.5 à 14.5", "Haut", "13.0"),
              _row(E, "erythrocytaire (%)"),
              _row(E, "Concentration corpusculaire", "33.0", "32 à 36", "", "32.5"),
              _row(E, "moyenne en hémoglobine (g/"),
              _row(E, "dL)"),
              ("body", (21.0, "Polynucléaires éosinophiles (%) 2"), (260.0, "1 à 3"),
               (480.0, "2.0")),
              ("body", (17.0, "Résultats validés par Jean DE SANTS - 04/01/2023, 11h20")),
              ("body", (17.0, "Patient")),
              ("body", (21.0, "Matricule INS"), (160.0, "268036912354128")),
              ("body", (21.0, "Tel Domicile"), (160.0, "0147150000")),
              ("body", (21.0, "Version"), (160.0, "1"))]


def test_specimen_date_heading_units_in_names_wrapped_names_and_the_end_of_the_table() -> None:
    """A LIS heading its result column with the specimen's date and its antériorité column
    with the former one, an 'Interprétation' column, the unit after the name ('Leucocytes
    (10*9/L)'), names wrapped under their values, a value printed right after a long name.
    The heading was not read (no 'Résultat'): values, ranges and antériorités mixed; the
    units in the names were lost. And the patient block after the biologist's validation
    ('Matricule INS', 'Tel Domicile') must never be results. (Round 4: each antériorité
    carries the date heading its column; it was kept without it.)"""
    msg = _read(_lab_pdf(HEMOGRAMME))
    got = [(e.code, e.display, e.value, e.unit, e.reference_range, e.interpretation,
            e.details.get("previous")) for e in msg.entries[1:]]
    assert got == [
        ("6690-2", "Leucocytes", "8.2", "10*9/L", "5 à 10", None, "5.8 (12/09/2020 08:15)"),
        ("718-7", "Hémoglobine", "13.4", "g/dL", "11.5 à 14.5", None, "13.3 (12/09/2020 08:15)"),
        ("787-2", "Volume globulaire moyen", "97", "fL", "85 à 95", "H", "90 (12/09/2020 08:15)"),
        ("788-0", "Indice de distribution erythrocytaire", "17.5", "%", "11.5 à 14.5", "H",
         "13.0 (12/09/2020 08:15)"),
        ("786-4", "Concentration corpusculaire moyenne en hémoglobine", "33.0", "g/dL",
         "32 à 36", None, "32.5 (12/09/2020 08:15)"),
        ("713-8", "Polynucléaires éosinophiles", "2", "%", "1 à 3", None, "2.0 (12/09/2020 08:15)")]


TYPEWRITER = [("centre", "LABORATOIRE D'ANALYSES MEDICALES"), *LE_GOFF,
              ("label", "Prélevé le 07/03/17 à 08:10"), ("title", "BIOCHIMIE - SANG"),
              ("body", (71.0, "TRIGLYCERIDES"), (283.0, ":"), (295.0, "*"), (307.0, "4,10"),
               (337.0, "g/l"), (460.0, "N:0,7 -1,8")),
              ("body", (71.0, "15/02/17"), (177.0, "4,23")),
              ("body", (254.0, "Soit"), (284.0, ":"), (296.0, "4,67"), (326.0, "mmol/l")),
              ("body", (71.0, "PLAQUETTES"), (248.0, "295"), (272.0, "000"), (308.0, "/mm3"),
               (400.0, "N: 150 000 - 400 000")),
              ("body", (71.0, "57, rue du petit pont - 75010 PARIS")),
              ("body", (71.0, "Tél: 01 40 40 40 40 - Fax: 01 40 40 40 41"))]


def test_typewriter_report_marks_labels_second_unit_below_and_spaced_thousands() -> None:
    """An older LIS in a spaced font: '*' printed before the value, 'N:' before the range,
    the value in mmol/l on the line below ('Soit : 4,67 mmol/l'), the antériorité on a line
    of its own starting with its date, '295 000' with the groups in two cells. The flag,
    the range, the second unit and the platelets were lost ('295' read alone)."""
    msg = _read(_lab_pdf(TYPEWRITER))
    assert _results(msg) == [("2571-8", "4,10", "g/L", "0,7 -1,8", "A"),
                             ("14927-8", "4,67", "mmol/L", None, None),
                             ("777-3", "295 000", "/mm3", "150 000 - 400 000", None)]
    assert msg.entries[3].value_num == 295000.0
    assert msg.entries[1].details["previous"] == "15/02/17 4,23"  # the line under it


def test_ocr_misread_units_are_read_on_scans_only() -> None:
    """OCR reads 'g/l' as 'g/1' and 'UI/l' as 'Ul/|': on a scanned page they are the units
    printed; in a text layer they are read as printed (no unit of the analyses' codes)."""
    rows = [[(56, "Glycémie à jeun"), (236, "0.88"), (258, "g/1"), (297, "(0.70 - 1.08)")],
            [(56, "ASAT"), (243, "45"), (258, "Ul/|"), (297, "(10 - 50)")]]
    scan = _doc(rows)
    scan.pages[0].source = "ocr"
    scan.pages[0].words[1].confidence = 55.0  # "0.88" read unsure: its cell ("0.88 g/1") 77.5
    found = lab_pdf.lab_results(scan, [1], "report|x", effective=None, issued=None)
    # the glycaemia read unsure is not filed: a misread digit would be a wrong result
    assert [(e.code, e.unit, e.mapped) for e in found.entries] == [("1920-8", "[IU]/L", True)]
    assert found.warnings == ["PDF_LAB_OCR_DOUBTFUL: page 1 line 1: a result read by OCR "
                              "with confidence 77.5 < 80: not filed (read it on the scan)"]
    scan.pages[0].words[1].confidence = 95.0
    found = lab_pdf.lab_results(scan, [1], "report|x", effective=None, issued=None)
    assert [(e.code, e.unit, e.mapped) for e in found.entries] == [
        ("2345-7", "g/L", True), ("1920-8", "[IU]/L", True)]
    assert found.warnings == []
    found = lab_pdf.lab_results(_doc(rows), [1], "report|x", effective=None, issued=None)
    assert found.entries == []  # outside a table, a unit of none of their codes: not filed
    assert [w.split(":")[0] for w in found.warnings] == ["PDF_LAB_NOT_FILED"] * 2


def test_two_patients_lab_reports_in_one_pdf_each_with_its_results_and_date() -> None:
    """A laboratory's batch print: each report's results go with its own patient part and
    are dated by its own specimen (the first page's collection time was every report's)."""
    second = [("centre", "SYNLAB Provence"), *LEFEVRE, ("label", "Prélevé le 04/03/26 à 09:05"),
              _row(S, "Analyses", "Résultats", "Valeurs usuelles", "Unités", style="label"),
              _row(S, "Potassium", "4,1", "3,5 - 5,1", "mmol/L")]
    msg = _read(g.write_pdf(_lab_pdf_pages(SYNLAB, second), title="Lot"))
    assert [(p.identity.family, p.entries) for p in msg.patients] == [("LE GOFF", 7),
                                                                      ("LEFÈVRE", 2)]
    assert [(e.code, e.effective) for e in msg.entries if e.code == "2823-3"] == [
        ("2823-3", "2026-03-03T07:40+01:00"), ("2823-3", "2026-03-04T09:05+01:00")]


# -- Inovie: a heading on two lines, the antériorité's date under it, two ranges on a line --
X = (40.0, 220.0, 290.0, 370.0, 470.0)
INOVIE = [("centre", "INOVIE - Laboratoire Labosud"), *LEFEVRE,
          ("label", "Prélèvement du 12/03/2026 à 08h15"),
          _row(X, "Examens", "Résultats", "Unités", "Valeurs de", "Antériorités", style="label"),
          _row(X, "", "", "", "référence", "", style="label"),
          _row(X, "Hémoglobine", "13,2", "g/dL", "12,0 - 16,0", "12,8 g/dL"),
          _row(X, "", "", "", "", "12/01/26"),
          _row(X, "DFG selon CKD-EPI", "> 90", "mL/min/1,73m²", "> 60"),
          _row(X, "Potassium", "5,8 +", "mmol/L", "Adultes : 3,5 - 5,0"),
          ("body", "Contrôle de la kaliémie à 4,8 mmol/L recommandé."),
          _row(X, "Glycémie", "5,20 mmol/L", "0,94 g/L", "(4,10 - 5,90) (0,74 - 1,06)"),
          _row(X, "Neutrophiles", "62,1 %", "4,12 G/L", "(40 - 75) (1,80 - 7,50)"),
          _row(X, "Sodium", "Voir commentaire"),
          ("body", "Hémolyse : dosage non interprétable.")]


def test_inovie_heading_on_two_lines_and_a_number_in_a_comment_is_no_result() -> None:
    """'Valeurs de' / 'référence' heading the range column on two lines (the ranges were
    under no column); the antériorité's date on the line under it; two ranges on a line of
    two units; a comment quoting a value ('kaliémie à 4,8 mmol/L') is no result."""
    msg = _read(_lab_pdf(INOVIE))
    assert _results(msg) == [("718-7", "13,2", "g/dL", "12,0 - 16,0", None),
                             ("62238-1", "> 90", "mL/min/{1.73_m2}", "> 60", None),
                             ("2823-3", "5,8", "mmol/L", "Adultes : 3,5 - 5,0", "H"),
                             ("14749-6", "5,20", "mmol/L", "4,10 - 5,90", None),
                             ("2345-7", "0,94", "g/L", "0,74 - 1,06", None),
                             ("770-8", "62,1", "%", "40 - 75", None),
                             ("751-8", "4,12", "10*9/L", "1,80 - 7,50", None),
                             ("2951-2", "Hémolyse : dosage non interprétable.", None, None,
                              None)]
    assert msg.entries[1].details["previous"] == "12,8 g/dL 12/01/26"


def test_two_digit_collection_year_is_never_in_the_future() -> None:
    """'Prélevé le 03/03/99' was read as 2099 (a specimen from the future)."""
    doc = _doc([[(40, "Prélevé"), (80, "le"), (95, "03/03/99"), (150, "à"), (160, "08:15")]])
    assert lab_pdf.collection_time(doc, [1]) == "1999-03-03T08:15+01:00"
    doc = _doc([[(40, "Prélevé"), (80, "le"), (95, "03/03/26"), (150, "à"), (160, "08:15")]])
    assert lab_pdf.collection_time(doc, [1]) == "2026-03-03T08:15+01:00"


def test_a_urine_section_is_never_coded_as_blood() -> None:
    """'Créatinine 9800 µmol/L' under 'BIOCHIMIE URINAIRE' was coded 14682-9, the serum
    creatinine: the dossier would chart a urine value as a kidney failure. (Since round 5
    it is coded as the urine's creatinine, 14683-7; an analysis the urine table lacks is
    filed unmapped.)"""
    rows = [("centre", "LABORATOIRE BIOLAB"), *LEFEVRE, ("label", "Prélevé le 03/03/26 à 08:15"),
            ("title", "BIOCHIMIE SANGUINE"), C_HEAD,
            _row(C, "Créatinine", "68", "µmol/L", "45 - 84"),
            ("title", "BIOCHIMIE URINAIRE"), C_HEAD,
            _row(C, "Créatinine", "9800", "µmol/L", "", "9500 (12/01/26)"),
            _row(C, "Sodium", "85", "mmol/L")]
    _, serum, urine, sodium = _read(_lab_pdf(rows)).entries
    assert (serum.code, serum.system, serum.value_num) == ("14682-9", "LN", 68.0)
    assert (urine.code, urine.system, urine.mapped, urine.value_num) == (
        "14683-7", "LN", True, 9800.0)
    assert (sodium.code, sodium.system, sodium.mapped) == ("Sodium", "PDF-LABEL", False)


_ANALYTES = [("Hémoglobine", "g/dL", "718-7"), ("Créatinine", "µmol/L", "14682-9"),
             ("Potassium", "mmol/L", "2823-3"), ("Plaquettes", "G/L", "777-3"),
             ("TSH", "mUI/L", "3016-3"), ("CRP", "mg/L", "1988-5")]
_HEADINGS = {"result": "Résultat", "unit": "Unité", "reference": "Valeurs de référence",
             "previous": "Antériorité"}


def _french(x: float) -> str:
    return f"{x:.2f}".replace(".", ",")


@given(order=st.permutations(["result", "unit", "reference", "previous"]),
       picks=st.lists(st.tuples(st.sampled_from(_ANALYTES),
                                st.floats(0.1, 999, allow_nan=False),
                                st.floats(0.1, 999, allow_nan=False),
                                st.integers(1, 28)), min_size=1, max_size=6,
                      unique_by=lambda p: p[0][0]))
def test_anteriorite_never_becomes_a_result_whatever_the_column_order(order, picks) -> None:  # noqa: ANN001
    """Whatever the order of the columns, each line gives its one result with its value, unit
    and range, and the antériorité (its value and date) is never a result nor the range.
    (Found: a unit column before the result's lost every unit, the results unmapped.)"""
    xs = dict(zip(order, (160.0, 300.0, 440.0, 580.0), strict=True))
    rows = [[(40.0, "Analyse")] + sorted((xs[k], v) for k, v in _HEADINGS.items())]
    for (name, unit, _), value, previous, day in picks:
        cells = {"result": _french(value), "unit": unit, "reference": "(1,00 - 9,00)",
                 "previous": f"{_french(previous)} ({day:02d}/01/26)"}
        rows.append([(40.0, name)] + sorted((xs[k], v) for k, v in cells.items()))
    doc = _doc([[xw for x, cell in row for xw in _spread(x, cell)] for row in rows])
    found = lab_pdf.lab_results(doc, [1], "report|x", effective="2026-03-03", issued=None)
    assert [(e.code, e.value_num, e.unit_original, e.reference_range,
             e.details.get("previous")) for e in found.entries] == [
        (code, round(value, 2), unit, "1,00 - 9,00", f"{_french(previous)} ({day:02d}/01/26)")
        for (_, unit, code), value, previous, day in picks]


def _spread(x: float, cell: str) -> list[tuple[float, str]]:
    """The words of a cell at their x, as _doc's boxes (6 points a letter, one space)."""
    out = []
    for word in cell.split():
        out.append((x, word))
        x += 6 * len(word) + 3
    return out


@given(picks=st.lists(st.tuples(st.sampled_from(_ANALYTES),
                                st.floats(0.1, 999, allow_nan=False),
                                st.sampled_from(["", "H", "L", "*"]),
                                st.floats(0.1, 999, allow_nan=False),
                                st.sampled_from(["le {d}/01/26", "({d}/01/26)", "du {d}/01/2026"]),
                                st.booleans()),
                      min_size=1, max_size=6, unique_by=lambda p: p[0][0]))
def test_without_heading_flags_kept_and_the_dated_anteriorite_is_no_result(picks) -> None:  # noqa: ANN001
    """No heading: 'Potassium  5,80 H mmol/L  (3,50 - 5,00)  4,10 le 12/01/26', the range
    there or not. One result each, its flag; the dated former value is kept as such."""
    rows = []
    for (name, unit, _), value, flag, previous, when, ranged in picks:
        rows.append(_spread(40.0, name) + _spread(200.0, f"{_french(value)} {flag}".strip())
                    + _spread(250.0, unit) + (_spread(320.0, "(1,00 - 9,00)") if ranged else [])
                    + _spread(420.0, f"{_french(previous)} {when.format(d='12')}"))
    found = lab_pdf.lab_results(_doc(rows), [1], "report|x", effective=None, issued=None)
    flags = {"": None, "H": "H", "L": "L", "*": "A"}
    assert [(e.code, e.value_num, e.interpretation, e.reference_range,
             e.details.get("previous")) for e in found.entries] == [
        (code, round(value, 2), flags[flag], "1,00 - 9,00" if ranged else None,
         f"{_french(previous)} {when.format(d='12')}")
        for (_, _, code), value, flag, previous, when, ranged in picks]


def test_collection_to_the_minute_when_printed_twice_and_bounds_without_a() -> None:
    """The ANS's OCR'd CR-BIO: 'Date de prélèvement : 04/01/2021' in the header, then
    'Prélèvement du 04/01/2021 à 07h35' (its 'à' decomposed, a + U+0300) above the results:
    the results were dated to the day only. 'N: Inf. 2,00' (no 'à') was no range."""
    doc = _doc([[(40, "Date"), (70, "de"), (85, "prélèvement"), (160, ":"), (170, "04/01/2021")],
                [(40, "Prélèvement"), (110, "du"), (125, "04/01/2021"), (190, "a\u0300"),
                 (200, "07h35")],
                [(40, "CHOLESTEROL"), (120, "TOTAL"), (283, ":"), (295, "3,10"), (325, "g/l"),
                 (460, "N:"), (475, "Inf."), (500, "2,00")]])
    assert lab_pdf.collection_time(doc, [1]) == "2021-01-04T07:35+01:00"
    found = lab_pdf.lab_results(doc, [1], "report|x", effective=None, issued=None)
    assert [(e.code, e.value_num, e.reference_range, e.effective) for e in found.entries] == [
        ("2093-3", 3.1, "Inf. 2,00", "2021-01-04T07:35+01:00")]


def test_two_units_in_parentheses_the_range_to_the_nearer_and_the_interpretation_to_both() -> None:
    """As the ANS's CR-BIO prints its biochemistry: '7.2 mmol/L (1.30 g/L)', 'Anormalement
    haut' in an 'Interprétation' column, the range '3.9 à 6.1 mmol/L (0.7 à' wrapped. The
    g/L value was dropped; once read, the range fitted both (1.30 is within 3 times 3.9)
    and went to none, and the interpretation to none."""
    k = (26.0, 120.0, 213.0, 307.0, 420.0)
    rows = [("centre", "Laboratoire des Charmes"), *LEFEVRE,
            ("label", "Prélèvement du 04/01/2023 à 07h35"),
            ("small", (133.0, "Résultat du jour"), (231.0, "Interprétation"),
             (311.0, "Valeurs de référence"), (452.0, "Résultats antérieurs")),
            _row(k, "Glucose à jeun", "7.2 mmol/L (1.30 g/L)", "Anormalement haut",
                 "3.9 à 6.1 mmol/L (0.7 à", "6.0 mmol/L (1.08 g/L)", style="small"),
            _row(k, "", "", "", "1.1 g/L)", style="small")]
    msg = _read(_lab_pdf(rows))
    assert _results(msg) == [("14749-6", "7.2", "mmol/L", "3.9 à 6.1", "H"),
                             ("2345-7", "1.30", "g/L", None, "H")]
    assert msg.entries[1].details["previous"] == "6.0 mmol/L (1.08 g/L)"


def test_a_lab_pdf_inside_a_structured_document_gives_its_report_only() -> None:
    """A lab's PDF carried by an HL7 ED or a CDA nonXMLBody: every entry read from it was
    given the one key '<document>|report' (the results too: seventeen entries under one
    key). The document's coded results are the sender's; the PDF gives its report only."""
    doc = Entry(type="document", key="doc|1", source_ref="OBX[3]")
    warnings: list[str] = []
    found = pdf_report_entries(doc, _lab_pdf(CERBA_1, CERBA_2), "lab", warnings)
    assert [(e.type, e.key, e.parent_key) for e in found] == [("report", "doc|1|report",
                                                                 "doc|1")]
    assert "lab_results" not in found[0].details and warnings == []
