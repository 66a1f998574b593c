"""PDF lab reports, round 14: an eGFR from cystatin C, antériorités headed by their date, and
a result checked on the line below it.

An eGFR computed from cystatin C ('DFG (cystatine C)', 'DFG estimé cystatine C (CKD-EPI
2012)') was filed under 69405-9 or unmapped, and one from creatinine and cystatin C together
unmapped: each has its own LOINC (tables/pdf_lab_egfr_by_marker.csv), never the
creatinine-based eGFR's. An antériorité column headed by its date with a word before it ('Le
12/01/2026', 'Du 12/01/26', 'Résultat du 12/01/2026' beside 'Résultat') lost its values;
'Résultat contrôlé' printed under a result was a comment only, where the same word beside the
value marks details.checked; a reference column headed 'Valeurs de réf.' was read as none,
its ranges lost. Pages are built as OCR and text layers give them
(test_pdf_round5's pages: the label and heading rules read both alike, and no tesseract run
is what is tested), a whole report with samples/generate_pdf.py's writer and filed through
the pipeline."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from dossiers.schema import entries
from normalizers import lab_pdf
from parsers.pdf.model import OCR, TEXT_LAYER
from tests.test_pdf_round3 import LEFEVRE, _lab_pdf, _read, _row
from tests.test_pdf_round5 import _page
from tests.test_pdf_round9 import _file, _warned

EGFR_CYSTATIN = "50210-4"  # GFR/1.73 sq M.predicted by Cystatin C-based formula
EGFR_CR_CYS = "94677-2"  # ... by Creatinine and Cystatin C-based formula (CKD-EPI)
EGFR_CR_CYS_2021 = "98980-6"  # ... (CKD-EPI 2021)
HEAD = [(40, "Analyse"), (330, "Résultat"), (390, "Unité"), (480, "Normes")]


def _results(rows: list[list[tuple[float, str]]], source: str = TEXT_LAYER):  # noqa: ANN202
    """The results of one page of (x, text) rows, as lab_pdf reads them."""
    return lab_pdf.lab_results(_page(source, rows, styles_seen=source == TEXT_LAYER), [1],
                               "r|x", effective="2026-02-04", issued=None)


def _said(found) -> list[str]:  # noqa: ANN001
    return [w.split(":")[0] for w in found.warnings]


def _egfr(name: str, *below: str) -> list[list[tuple[float, str]]]:
    return [HEAD, [(40, name), (330, "48"), (390, "mL/min/1,73m²"), (480, "> 60")],
            *[[(40, text)] for text in below]]


# -- an eGFR from cystatin C, alone or with creatinine ------------------------------------------
@pytest.mark.parametrize(("name", "method", "code", "unnamed"), [
    ("DFG (cystatine C)", None, EGFR_CYSTATIN, True),
    ("DFG estimé cystatine C (CKD-EPI 2012)", None, EGFR_CYSTATIN, False),
    ("Débit de filtration glomérulaire estimé par la cystatine C", None, EGFR_CYSTATIN, True),
    ("DFG", "Équation CKD-EPI 2012 cystatine C", EGFR_CYSTATIN, False),
    ("DFG créatinine + cystatine C (CKD-EPI)", None, EGFR_CR_CYS, False),
    ("DFG (créatinine et cystatine C, CKD-EPI 2012)", None, EGFR_CR_CYS, False),
    ("DFG créatinine-cystatine C", "Formule CKD-EPI 2021", EGFR_CR_CYS_2021, False),
])
def test_an_egfr_from_cystatin_c_gets_its_own_code(
        name: str, method: str | None, code: str, unnamed: bool) -> None:
    """'DFG (cystatine C)' read as 'DFG' (its parentheses dropped) was filed under 69405-9,
    the eGFR LOINC files with creatinine's; the others, unmapped. The marker named in the
    name or method line now picks the cystatin C eGFR (any equation: LOINC has none of a
    named one) or, with creatinine, the combined eGFR of the equation named. With no
    equation named the ledger says so, as for the creatinine eGFR."""
    found = _results(_egfr(name, *([method] if method else [])))
    (egfr,) = found.entries
    assert (egfr.code, egfr.system, egfr.unit, egfr.value_num) == (
        code, "LN", "mL/min/{1.73_m2}", 48.0)
    assert egfr.details.get("formula_unnamed", False) is unnamed
    assert _said(found) == (["PDF_LAB_FORMULA_UNNAMED"] if unnamed else [])


@pytest.mark.parametrize("name", [
    "DFG créatinine + cystatine C", "DFG cystatine C (MDRD)", "DFG estimé (Cys C, MDRD)"])
def test_an_egfr_from_cystatin_c_of_no_code_stays_unmapped_and_says_why(name: str) -> None:
    """Creatinine and cystatin C with no equation named (LOINC's combined terms are each of
    an equation), or cystatin C by MDRD (a creatinine equation): no code we could confirm.
    Unmapped under its printed name, said, never the creatinine eGFR's code."""
    found = _results(_egfr(name))
    (egfr,) = found.entries
    assert (egfr.code, egfr.system, egfr.mapped) == (name, "PDF-LABEL", False)
    assert _said(found) == ["PDF_LAB_EGFR_UNCODED"]
    assert "page 1 line 2" in found.warnings[0] and "48" not in found.warnings[0]


@pytest.mark.parametrize("source", [TEXT_LAYER, OCR])
def test_the_other_egfr_lines_of_the_report_keep_their_codes(source: str) -> None:
    """One report printing the creatinine, its eGFR, the cystatin C and both eGFRs from it,
    born digital or scanned: each keeps its own code, and a comment quoting cystatin C under
    the creatinine eGFR changes nothing of it."""
    found = _results([
        HEAD, [(40, "Créatinine"), (330, "98"), (390, "µmol/L"), (480, "45 - 84")],
        [(40, "DFG estimé (CKD-EPI)"), (330, "56"), (390, "mL/min/1,73m²"), (480, "> 60")],
        [(40, "Contrôle par la cystatine C conseillé.")],
        [(40, "Cystatine C"), (330, "1,12"), (390, "mg/L"), (480, "0,61 - 0,95")],
        [(40, "DFG cystatine C (CKD-EPI 2012)"), (330, "61"), (390, "mL/min/1,73m²")],
        [(40, "DFG créatinine + cystatine C (CKD-EPI 2012)"), (330, "58"),
         (390, "mL/min/1,73m²")],
        [(40, "DFG"), (330, "57"), (390, "mL/min/1,73m²"), (480, "> 60")]], source)
    assert [(e.code, e.value) for e in found.entries] == [
        ("14682-9", "98"), ("62238-1", "56"), ("33863-2", "1,12"), (EGFR_CYSTATIN, "61"),
        (EGFR_CR_CYS, "58"), ("69405-9", "57")]
    assert found.entries[1].details["comment"] == ["Contrôle par la cystatine C conseillé."]
    # the last 'DFG' only; on a scan the four values out of range, their bold unseen
    assert [w for w in _said(found) if w != "PDF_LAB_FLAG_NOT_SEEN"] == [
        "PDF_LAB_FORMULA_UNNAMED"]
    assert _said(found).count("PDF_LAB_FLAG_NOT_SEEN") == (4 if source == OCR else 0)


# -- antériorités headed by their date ---------------------------------------------------------
@pytest.mark.parametrize(("today", "before"), [
    ("Le 04/02/2026", "Le 12/01/2026"), ("Résultat", "Du 12/01/2026"),
    ("Résultat", "Le 12/01/2026"), ("Résultats du 04/02/2026", "Résultats du 12/01/2026"),
    ("Résultat", "Résultat du 12/01/2026"), ("Le 04/02/2026", "12/01/2026"),
    ("04/02/2026", "12/01/2026"), ("Résultat du 04/02/2026", "Antériorité")])
def test_an_anteriorite_headed_by_its_date_is_kept_apart_never_todays(
        today: str, before: str) -> None:
    """'Le 04/02/2026 | ... | Le 12/01/2026', 'Résultat | ... | Du 12/01/2026': a date with
    'le' or 'du' before it named no column; the former results were lost (with
    PDF_LAB_NOT_READ or silently), and with today's column unread the table had no heading
    at all. A column headed 'Résultat' with no date makes every dated one an antériorité,
    else the first dated: today's values are filed, the former kept in details.previous
    with their date."""
    found = _results([
        [(40, "Analyse"), (200, today), (420, "Unité"), (470, "Normes"), (545, before)],
        [(40, "Créatinine"), (200, "98"), (420, "µmol/L"), (470, "45 - 84"), (545, "102")],
        [(40, "Urée"), (200, "6,1"), (420, "mmol/L"), (470, "2,5 - 7,5"), (545, "5,8")]])
    dated = "" if before == "Antériorité" else " (12/01/2026)"
    assert [(e.code, e.value, e.unit, e.reference_range, e.details.get("previous"))
            for e in found.entries] == [
        ("14682-9", "98", "umol/L", "45 - 84", f"102{dated}"),
        ("22664-7", "6,1", "mmol/L", "2,5 - 7,5", f"5,8{dated}")]
    assert found.warnings == []


def test_dates_alone_under_a_heading_are_still_no_heading() -> None:
    """Pinned: a row of dates with no unit nor range beside them heads nothing."""
    found = _results([
        [(40, "Analyse"), (330, "Résultat"), (420, "Unité"), (470, "Normes")],
        [(40, "Créatinine"), (330, "98"), (420, "µmol/L"), (470, "45 - 84")],
        [(330, "Le 04/02/2026"), (545, "Le 12/01/2026")],
        [(40, "Urée"), (330, "6,1"), (420, "mmol/L"), (470, "2,5 - 7,5")]])
    assert [(e.code, e.value) for e in found.entries] == [
        ("14682-9", "98"), ("22664-7", "6,1")]


# -- 'Résultat contrôlé' under the result --------------------------------------------------------
KALAEMIA = [HEAD, [(40, "Potassium"), (330, "6,1"), (390, "mmol/L"), (480, "3,5 - 5,0")]]
NATRAEMIA = [(40, "Sodium"), (330, "139"), (390, "mmol/L"), (480, "136 - 145")]


@pytest.mark.parametrize(("below", "kept"), [
    ("Résultat contrôlé", "comment"), ("Résultat vérifié sur un second prélèvement.", "comment"),
    ("Valeur contrôlée sur le même échantillon", "comment"), ("Contrôlé", "comment"),
    ("(Résultat vérifié)", "method")])
def test_a_result_checked_on_the_line_below_says_so(below: str, kept: str) -> None:
    """'6,1 (contrôlé)' beside the value marked details.checked; the same printed on the line
    under it ('Résultat contrôlé sur un second prélèvement') was a comment only, and a
    surprising kalaemia did not say it had been confirmed. Now checked too; the line is
    kept where it was (comment or method), and the next result is not checked."""
    found = _results([*KALAEMIA, [(40, below)], NATRAEMIA])
    potassium, sodium = found.entries
    assert potassium.details["checked"] is True and "checked" not in sodium.details
    kept_text = potassium.details[kept]
    assert below in (kept_text if isinstance(kept_text, list) else [kept_text])
    assert found.warnings == []


@pytest.mark.parametrize("below", [
    "Contrôle à prévoir dans 3 mois.", "Contrôle de la kaliémie conseillé",
    "Résultat à contrôler sur un nouveau prélèvement"])
def test_a_check_asked_for_is_no_check_done(below: str) -> None:
    """'Contrôle à prévoir' folds to the same letters as 'contrôlé': a request, never a
    check done; only a whole mark or 'Résultat/Valeur contrôlé(e)/vérifié(e) ...' is."""
    found = _results([*KALAEMIA, [(40, below)], NATRAEMIA])
    assert "checked" not in found.entries[0].details
    assert found.entries[0].details["comment"] == [below]


# -- the reference column's heading abridged ---------------------------------------------------
@pytest.mark.parametrize("heading", [
    "Valeurs de réf.", "Valeurs réf.", "Intervalle de réf.", "Val. usuelles",
    "Valeurs attendues", "Limites de référence", "Valeurs biologiques de référence"])
def test_a_reference_column_headed_in_short_keeps_its_ranges(heading: str) -> None:
    """'Valeurs de réf.' (and other wordings) named no column of ours: the column was
    read as none, every range under it lost without a word and no flag computed. Now the
    reference column: the range is the result's."""
    found = _results([
        [(40, "Analyse"), (200, "Résultat"), (300, "Unité"), (400, heading)],
        [(40, "Créatinine"), (200, "98"), (300, "µmol/L"), (400, "45 - 84")],
        [(40, "Potassium"), (200, "4,1"), (300, "mmol/L"), (400, "3,5 - 5,0")]])
    assert [(e.code, e.reference_range) for e in found.entries] == [
        ("14682-9", "45 - 84"), ("2823-3", "3,5 - 5,0")]
    assert found.entries[0].details["flag_computed"]["code"] == "H"


# -- through the PDF writer and parser -------------------------------------------------------
def test_the_text_layer_report_reads_as_the_pages_do() -> None:
    """The same cystatin C eGFR through the PDF writer and parser (a text layer)."""
    x = (40.0, 300.0, 380.0, 450.0)
    msg = _read(_lab_pdf([*LEFEVRE, ("label", "Prélevé le 04/02/2026 à 07h50"),
                          _row(x, "", "Résultat", "Unité", "Normes", style="label"),
                          _row(x, "DFG estimé cystatine C (CKD-EPI 2012)", "61",
                               "mL/min/1,73m²", "> 60")]))
    assert [(e.code, e.value) for e in msg.entries if e.type == "lab_result"] == [
        (EGFR_CYSTATIN, "61")]


@pytest.mark.parametrize(("name", "below", "code"), [
    ("DFG", "CKD-EPI 2021", "98979-8"), ("DFG cystatine C", "CKD-EPI 2012", EGFR_CYSTATIN),
    ("DFG créatinine + cystatine C", "CKD-EPI 2012", EGFR_CR_CYS)])
def test_an_equation_printed_alone_under_the_egfr_is_its_method_not_a_result(
        name: str, below: str, code: str) -> None:
    """'CKD-EPI 2021' alone on the line under the eGFR (no 'Formule' before it) was filed as
    a result 'CKD-EPI' of value 2021, and the eGFR coded as of no equation (or uncoded).
    A formula's name alone, with its year or not, is the method of the result above."""
    x = (40.0, 300.0, 380.0, 450.0)
    msg = _read(_lab_pdf([*LEFEVRE, ("label", "Prélevé le 04/02/2026 à 07h50"),
                          _row(x, "", "Résultat", "Unité", "Normes", style="label"),
                          _row(x, name, "58", "mL/min/1,73m²", "> 60"), ("small", below),
                          _row(x, "Potassium", "4,1", "mmol/L", "3,5 - 5,0")]))
    assert [(e.code, e.value, e.details.get("method")) for e in msg.entries
            if e.type == "lab_result"] == [(code, "58", below), ("2823-3", "4,1", None)]
    assert msg.warnings == []


# -- through the pipeline ----------------------------------------------------------------------
def test_on_the_ledger_and_in_the_dossier(sqlite_ctx) -> None:  # noqa: ANN001
    """Through intake, processing and deposit into Mme Lefèvre's dossier: the cystatin C
    eGFR under its code, the combined one of no equation said on the ledger (where, never
    its value nor the patient), the former creatinine kept apart, the checked kalaemia."""
    x = (40.0, 300.0, 380.0, 450.0, 520.0)
    pdf = _lab_pdf([("centre", "LABORATOIRE DES QUATRE CHEMINS - Biologie médicale"), *LEFEVRE,
                    ("label", "Prélevé le 04/02/2026 à 07h50"), ("title", "BIOCHIMIE SANGUINE"),
                    _row(x, "", "Le 04/02/2026", "Unité", "Normes", "Le 12/01/2026",
                         style="label"),
                    _row(x, "Créatinine", "98", "µmol/L", "45 - 84", "102"),
                    _row(x, "DFG (cystatine C)", "61", "mL/min/1,73m²", "> 60"),
                    _row(x, "DFG créatinine + cystatine C", "58", "mL/min/1,73m²", "> 60"),
                    _row(x, "Potassium", "6,1", "mmol/L", "3,5 - 5,0", "4,2"),
                    ("small", "Résultat contrôlé sur un second prélèvement")])
    _, ledger = _file(sqlite_ctx, (pdf, "lab-quatre-chemins"))
    assert [r["status"] for r in ledger] == ["deposited"]
    warned = _warned(ledger)
    assert "PDF_LAB_EGFR_UNCODED: page 1 line 9" in warned
    assert "PDF_LAB_FORMULA_UNNAMED: page 1 line 8" in warned
    assert "LEFÈVRE" not in warned and "58" not in warned
    with sqlite_ctx.engine.connect() as conn:
        stored = conn.execute(select(entries.c.code, entries.c.value, entries.c.details)
                              .where(entries.c.type == "lab_result").order_by(entries.c.id)
                              ).all()
    assert [(code, value) for code, value, _ in stored] == [
        ("14682-9", "98"), (EGFR_CYSTATIN, "61"), ("DFG créatinine + cystatine C", "58"),
        ("2823-3", "6,1")]
    assert stored[0].details["previous"] == "102 (12/01/2026)"
    assert stored[3].details["previous"] == "4,2 (12/01/2026)"
    assert stored[3].details["checked"] is True
