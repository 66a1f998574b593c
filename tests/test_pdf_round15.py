"""PDF lab reports, round 15: a column dated before the specimen's collection taken for
today's, antériorités headed 'Rappel' or 'Ant.', headings we do not know, and the specimen's
fault printed as the value.

A table whose today's heading was unread (merged by the text layer into the next cell, or
misread by OCR) beside a lone 'Résultat du 12/01/2026' filed January's creatinine as
today's: a column dated before the collection is now an antériorité, always. 'Rappel',
'Rappel du <date>', 'Ant.' headed no column of ours: their values were dropped without a
word. Cells under a heading we do not know are still not read, but the ledger now names the
heading once per table. 'Absence de prélèvement' in the result column was filed as a
finding 'Absent' (SNOMED CT 2667000) of the potassium, and 'Prélèvement hémolysé' lost with
no more than PDF_LAB_VALUE_NOT_READ: both are now an analysis not done, its reason kept.
Pages are built as text layers and OCR give them (test_pdf_round5's pages), a whole report
with samples/generate_pdf.py's writer and filed through the pipeline."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from dossiers.schema import entries
from normalizers import lab_pdf
from parsers.pdf.model import OCR, TEXT_LAYER
from tests.test_pdf_round3 import LEFEVRE, _lab_pdf, _row
from tests.test_pdf_round5 import _page
from tests.test_pdf_round9 import _file, _warned

COLLECTED = [(40, "Prélevé le 04/02/2026 à 07h50")]


def _results(rows: list[list[tuple[float, str]]], source: str = TEXT_LAYER,
             collected: bool = True):  # noqa: ANN202
    """The results of one page of (x, text) rows (the collection printed above them)."""
    rows = [COLLECTED, *rows] if collected else rows
    return lab_pdf.lab_results(_page(source, rows, styles_seen=source == TEXT_LAYER), [1],
                               "r|x", effective="2026-02-04", issued=None)


def _said(found) -> list[str]:  # noqa: ANN001
    return [w.split(":")[0] for w in found.warnings]


def _table(*heading: tuple[float, str]) -> list[list[tuple[float, str]]]:
    """A creatinine and a urea, today's value and unit at 200/260, the range at 470 and
    January's value at 545, under ``heading``."""
    return [[(40, "Analyse"), *heading],
            [(40, "Créatinine"), (200, "98"), (260, "µmol/L"), (470, "45 - 84"), (545, "102")],
            [(40, "Urée"), (200, "6,1"), (260, "mmol/L"), (470, "2,5 - 7,5"), (545, "5,8")]]


# -- a column dated before the collection is never today's --------------------------------------
@pytest.mark.parametrize("source", [TEXT_LAYER, OCR])
@pytest.mark.parametrize("today", ["Rèsu1tat Unitè", None])
@pytest.mark.parametrize("before", ["Résultat du 12/01/2026", "Le 12/01/2026", "12/01/26"])
def test_a_lone_column_dated_before_the_collection_is_never_todays(
        source: str, today: str | None, before: str) -> None:
    """Today's heading unreadable ('Rèsu1tat Unitè' on a scan) or not printed, the only
    dated column, January's, was taken for today's result column: 102 µmol/L filed as the
    creatinine of 4 February, today's 98 dropped. A column dated before the collection is
    now an antériorité: its values kept in details.previous with their date, today's read
    from the line as outside a table, and the ledger says why the heading was not used."""
    found = _results(_table(*([(200, today)] if today else []), (470, "Normes"),
                            (545, before)), source)
    day = before.split()[-1]
    assert [(e.code, e.value, e.unit, e.reference_range, e.details.get("previous"))
            for e in found.entries] == [
        ("14682-9", "98", "umol/L", "45 - 84", f"102 ({day})"),
        ("22664-7", "6,1", "mmol/L", "2,5 - 7,5", f"5,8 ({day})")]
    stale = [w for w in found.warnings if w.startswith("PDF_LAB_COLUMN_BEFORE_COLLECTION")]
    assert len(stale) == 1 and "page 1 line 2" in stale[0] and "102" not in stale[0]
    assert "PDF_LAB_NOT_READ" not in _said(found)


@pytest.mark.parametrize("merged", ["Résultat Unité", "RésultatUnité", "Résultats  Unités"])
def test_todays_heading_merged_with_the_units_is_todays_column(merged: str) -> None:
    """'Résultat' and 'Unité' set close, one cell in the text layer: read as the result's
    column (values and units are told apart by what they are), the dated one an
    antériorité, nothing to say."""
    found = _results(_table((200, merged), (470, "Normes"), (545, "Résultat du 12/01/2026")))
    assert [(e.code, e.value, e.unit, e.details.get("previous")) for e in found.entries] == [
        ("14682-9", "98", "umol/L", "102 (12/01/2026)"),
        ("22664-7", "6,1", "mmol/L", "5,8 (12/01/2026)")]
    assert found.warnings == []


def test_the_collection_days_column_is_todays_wherever_it_is_printed() -> None:
    """January's column printed first, today's last ('Le 12/01/2026 | ... | Le
    04/02/2026'): the first dated column was taken for today's. Now the one not before the
    collection is, silently: the layout is the lab's own."""
    found = _results([
        [(40, "Analyse"), (200, "Le 12/01/2026"), (300, "Unité"), (400, "Normes"),
         (545, "Le 04/02/2026")],
        [(40, "Créatinine"), (200, "102"), (300, "µmol/L"), (400, "45 - 84"), (545, "98")]])
    assert [(e.value, e.details.get("previous")) for e in found.entries] == [
        ("98", "102 (12/01/2026)")]
    assert found.warnings == []


@pytest.mark.parametrize("head", ["Résultat du 04/02/2026", "Le 04/02/26", "05/02/2026"])
def test_a_column_dated_the_collection_day_or_after_is_still_todays(head: str) -> None:
    """Pinned: dated the collection's day (or the edition's, after it), the column is
    today's as in round 14, and nothing is said."""
    found = _results(_table((200, head), (380, "Unité"), (470, "Normes"),
                            (545, "Le 12/01/2026")))
    assert [(e.value, e.details.get("previous")) for e in found.entries] == [
        ("98", "102 (12/01/2026)"), ("6,1", "5,8 (12/01/2026)")]
    assert found.warnings == []


def test_with_no_collection_printed_a_dated_column_is_read_as_before() -> None:
    """Pinned: with no collection printed there is nothing to compare with (the edition
    date may be days after the specimen): a lone dated column is read as in round 14,
    but its heading unread beside it is now said."""
    found = _results(_table((200, "Rèsu1tat Unitè"), (470, "Normes"), (545, "Le 12/01/2026")),
                     collected=False)
    assert "PDF_LAB_COLUMN_BEFORE_COLLECTION" not in _said(found)
    assert "PDF_LAB_COLUMN_UNKNOWN" in _said(found)


# -- 'Rappel', 'Ant.' --------------------------------------------------------------------------
@pytest.mark.parametrize(("heading", "dated"), [
    ("Rappel", ""), ("Rappel du 12/01/2026", " (12/01/2026)"), ("Ant.", ""),
    ("Ant. 12/01/2026", " (12/01/2026)"), ("Rappel (12/01/26)", " (12/01/26)"),
    ("Antér.", ""), ("Rappels", "")])
def test_an_anteriorite_headed_rappel_or_ant_is_kept_apart(heading: str, dated: str) -> None:
    """'Rappel', 'Rappel du 12/01/2026', 'Ant.' named no column: January's values under them
    were dropped without a word. Now antériorités (tables/pdf_lab_columns.csv), kept with
    their date in details.previous, never today's."""
    found = _results([
        [(40, "Analyse"), (200, "Résultat"), (420, "Unité"), (470, "Normes"), (545, heading)],
        [(40, "Créatinine"), (200, "98"), (420, "µmol/L"), (470, "45 - 84"), (545, "102")],
        [(40, "Urée"), (200, "6,1"), (420, "mmol/L"), (470, "2,5 - 7,5"), (545, "5,8")]])
    assert [(e.code, e.value, e.details.get("previous")) for e in found.entries] == [
        ("14682-9", "98", f"102{dated}"), ("22664-7", "6,1", f"5,8{dated}")]
    assert found.warnings == []


@pytest.mark.parametrize("alone", ["Ant.", "Ant", "Antér."])
def test_a_short_form_alone_on_a_line_starts_no_block_of_former_results(alone: str) -> None:
    """'Ant.' is an antériorité column's heading now; alone on a line (a stray cell of the
    text layer) it is no title of a block of former results: the results under it are
    today's, read as ever. 'Rappel du 12/01/2026 :' spelt out is such a title."""
    found = _results([
        [(40, "Analyse"), (200, "Résultat"), (300, "Unité"), (400, "Normes")],
        [(40, "Créatinine"), (200, "98"), (300, "µmol/L"), (400, "45 - 84")],
        [(40, alone)],
        [(40, "Urée"), (200, "6,1"), (300, "mmol/L"), (400, "2,5 - 7,5")]])
    assert [e.value for e in found.entries] == ["98", "6,1"]
    assert "PDF_LAB_PREVIOUS_BLOCK" not in _said(found)
    block = _results([
        [(40, "Analyse"), (200, "Résultat"), (300, "Unité"), (400, "Normes")],
        [(40, "Créatinine"), (200, "98"), (300, "µmol/L"), (400, "45 - 84")],
        [(40, "Rappel du 12/01/2026 :")],
        [(40, "Créatinine"), (200, "102"), (300, "µmol/L"), (400, "45 - 84")]])
    assert [e.value for e in block.entries] == ["98"]
    assert _said(block) == ["PDF_LAB_PREVIOUS_BLOCK"]


# -- a heading we do not know ------------------------------------------------------------------
def test_a_column_under_a_heading_we_do_not_know_is_said_once_per_table() -> None:
    """'Commentaire technique' heads no column of ours: what is under it was dropped without
    a word. Still not read (what it holds is not known), but the ledger names the heading
    once for the table, not once per cell, and again only for another heading."""
    found = _results([
        [(40, "Analyse"), (200, "Résultat"), (300, "Unité"), (400, "Normes"),
         (500, "Commentaire technique")],
        [(40, "Créatinine"), (200, "98"), (300, "µmol/L"), (400, "45 - 84"), (500, "hémolysé")],
        [(40, "Urée"), (200, "6,1"), (300, "mmol/L"), (400, "2,5 - 7,5"), (500, "ictérique")],
        [(40, "BILAN HÉPATIQUE")],
        [(40, "Analyse"), (200, "Résultat"), (300, "Unité"), (400, "Normes"),
         (500, "Commentaire technique")],
        [(40, "ASAT"), (200, "32"), (300, "UI/L"), (400, "< 35"), (500, "lipémique")]])
    assert [e.value for e in found.entries] == ["98", "6,1", "32"]
    assert found.warnings == [
        "PDF_LAB_COLUMN_UNKNOWN: page 1 line 2: column heading(s) 'Commentaire technique' "
        "name no column we know (tables/pdf_lab_columns.csv): what is printed under them "
        "was not read"]


def test_an_unknown_heading_is_said_capped_and_with_its_neighbours() -> None:
    """Two unknown headings on one row: one warning naming both; a long one cut at 40
    characters (a heading is layout, never patient data, but the ledger is no dump)."""
    long = "Observations du biologiste sur la qualité de l'échantillon reçu"
    found = _results([
        [(40, "Analyse"), (200, "Résultat"), (300, "Unité"), (360, "Normes"), (430, "Tech."),
         (470, long)],
        [(40, "Potassium"), (200, "4,1"), (300, "mmol/L"), (360, "3,5 - 5,0"), (430, "ISE")]])
    (said,) = found.warnings
    assert said.startswith(f"PDF_LAB_COLUMN_UNKNOWN: page 1 line 2: column heading(s) "
                           f"'Tech.', '{long[:40]}' name")
    assert long[:41] not in said


def test_a_stray_mark_in_a_scanned_heading_is_no_heading_to_name() -> None:
    """A table rule OCR read as '|' or '—' between two headings: nothing to add to the
    table, nothing said."""
    found = _results([
        [(40, "Analyse"), (200, "Résultat"), (260, "|"), (300, "Unité"), (360, "—"),
         (400, "Normes")],
        [(40, "Potassium"), (200, "4,1"), (300, "mmol/L"), (400, "3,5 - 5,0")]], OCR)
    assert [e.value for e in found.entries] == ["4,1"]
    assert found.warnings == []


# -- the specimen's fault as the value --------------------------------------------------------
@pytest.mark.parametrize("printed", [
    "Absence de prélèvement", "Absence d’échantillon", "Prélèvement hémolysé",
    "Échantillon non reçu", "Quantité insuffisante", "Prélèvement coagulé",
    "Non fait : tube manquant", "Ininterprétable (hémolyse)", "Non effectué - sérum lactescent"])
def test_the_specimens_fault_printed_as_the_value_is_an_analysis_not_done(printed: str) -> None:
    """'Absence de prélèvement' under 'Résultat' was the finding 'Absent' of the potassium
    (a coded, wrong result); 'Prélèvement hémolysé', 'Quantité insuffisante' no value read;
    'Non fait : tube manquant' lost its reason. Each is now the analysis not done (status
    cancelled, no value), what the lab printed kept whole in details.not_done."""
    found = _results([
        [(40, "Analyse"), (200, "Résultat"), (300, "Unité"), (400, "Normes")],
        [(40, "Potassium"), (200, printed), (400, "3,5 - 5,0")],
        [(40, "Sodium"), (200, "139"), (300, "mmol/L"), (400, "136 - 145")]])
    potassium, sodium = found.entries
    assert (potassium.code, potassium.status, potassium.value, potassium.value_type) == (
        "2823-3", "cancelled", None, None)
    assert potassium.details["not_done"] == printed and "value_code" not in potassium.details
    assert (sodium.value, sodium.status) == ("139", "final")
    assert found.warnings == []


def test_the_specimens_fault_in_a_comment_stays_the_labs_remark() -> None:
    """'Prélèvement hémolysé : résultat sous réserve.' under a result, at the names' margin:
    a comment of the kalaemia as before, never a result not done."""
    found = _results([
        [(40, "Analyse"), (200, "Résultat"), (300, "Unité"), (400, "Normes")],
        [(40, "Potassium"), (200, "5,6"), (300, "mmol/L"), (400, "3,5 - 5,0")],
        [(40, "Prélèvement hémolysé : résultat sous réserve.")]])
    (potassium,) = found.entries
    assert (potassium.value, potassium.status) == ("5,6", "final")
    assert potassium.details["comment"] == ["Prélèvement hémolysé : résultat sous réserve."]


# -- through the PDF writer, the parser and the pipeline ---------------------------------------
def test_on_the_ledger_and_in_the_dossier(sqlite_ctx) -> None:  # noqa: ANN001
    """Mme Lefèvre's report of 4 February from a lab we have not seen: today's heading run
    into the units' ('Résultat Unité'), 'Rappel du 12/01/2026' beside it, a technician's
    column we do not know, a kalaemia not done on a haemolysed specimen. Filed: today's
    values with January's kept apart, the kalaemia cancelled with its reason; the ledger
    names the unknown heading, never the patient nor a value."""
    x = (40.0, 230.0, 330.0, 400.0, 530.0)
    pdf = _lab_pdf([("centre", "LABORATOIRE DU VAL D'ÉRDRE - Biologie médicale"), *LEFEVRE,
                    ("label", "Prélevé le 04/02/2026 à 07h50"), ("title", "BIOCHIMIE SANGUINE"),
                    _row(x, "", "Résultat Unité", "Normes", "Rappel du 12/01/2026", "Opér.",
                         style="label"),
                    _row(x, "Créatinine", "98 µmol/L", "45 - 84", "102", "MLB"),
                    _row(x, "Potassium", "Prélèvement hémolysé", "3,5 - 5,0", "4,2", "MLB"),
                    _row(x, "Sodium", "139 mmol/L", "136 - 145", "141", "MLB")])
    _, ledger = _file(sqlite_ctx, (pdf, "lab-val-d-erdre"))
    assert [r["status"] for r in ledger] == ["deposited"]
    warned = _warned(ledger)
    assert "PDF_LAB_COLUMN_UNKNOWN: page 1 line 6: column heading(s) 'Opér.'" in warned
    assert "LEFÈVRE" not in warned and "98" not in warned and "MLB" not in warned
    with sqlite_ctx.engine.connect() as conn:
        stored = conn.execute(select(entries.c.code, entries.c.value, entries.c.status,
                                     entries.c.details)
                              .where(entries.c.type == "lab_result").order_by(entries.c.id)
                              ).all()
    assert [(code, value, status) for code, value, status, _ in stored] == [
        ("14682-9", "98", "final"), ("2823-3", None, "cancelled"), ("2951-2", "139", "final")]
    assert [d.get("previous") for *_, d in stored] == [
        "102 (12/01/2026)", "4,2 (12/01/2026)", "141 (12/01/2026)"]
    assert stored[1].details["not_done"] == "Prélèvement hémolysé"
