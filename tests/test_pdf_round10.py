"""PDF reports from imaging centres and laboratories not seen before (round 10): what their
real reports print that we still read wrong. A signature line dated with the day of the week
('Paris, le lundi 17 mars 2025': no report date, and the line read into the conclusion).
A letterhead's sidebar (the centre's radiologists down the left of the page) wedged into the
report's lines: the conclusion lost at a sidebar's 'Dr', a sidebar name taken for the signer.
A letterhead of more than three lines printed again on page 2, and footers or 'continued'
marks of other forms than 'Page 1/2', read into a conclusion going over the page.
Born-digital PDFs are written with samples/generate_pdf.py's writer (tests/test_pdf_round3.py's
helpers: each cell at its own x), read by parsers.pdf and normalized as the pipeline does."""

from __future__ import annotations

from pathlib import Path

import pdfplumber
import pytest

from parsers.pdf import PdfLimits, _text_layer_page, parse_pdf
from samples import generate_pdf as g
from tests.test_pdf_round3 import _lab_pdf, _read

CORPUS = Path(__file__).resolve().parents[1] / ".." / "shared" / "corpus" / "pdf"
PARC = ("centre", "CENTRE D'IMAGERIE DU PARC - 12 avenue Jean Jaurès, 69007 Lyon")
LEFEVRE = [("label", "Patiente : Mme LEFÈVRE Hélène"), ("label", "Née le 14/03/1968")]


def _fields(msg, n: int = 0) -> dict:  # noqa: ANN001
    return {k: v["value"] for k, v in msg.entries[n].details["fields"].items()}


# -- a report date with the day of the week --------------------------------------------------
def test_a_report_dated_with_its_day_of_the_week_is_dated_and_ends_the_conclusion() -> None:
    """'Paris, le lundi 17 mars 2025' under the conclusion (French letters name the day): no
    report date was read (the entry's ``issued`` empty) and, with no 'Dr' line between, the
    date line was read into the conclusion. The weekday is skipped; a line without one is
    read as before."""
    def report(signed: str) -> bytes:
        return _lab_pdf([PARC, *LEFEVRE, ("title", "ÉCHOGRAPHIE ABDOMINALE"),
                         ("label", "Examen réalisé le lundi 17 mars 2025"),
                         ("head", "Conclusion :"),
                         ("body", "Stéatose hépatique modérée, sans lésion focale."),
                         ("body", signed), ("body", "Dr Jean MARTIN")])

    for signed, day in (("Paris, le lundi 17 mars 2025", "2025-03-17"),
                        ("Saint-Étienne, le mercredi 19/03/2025", "2025-03-19"),
                        ("Paris, le 18 mars 2025", "2025-03-18")):
        msg = _read(report(signed))
        assert _fields(msg)["exam_date"] == "2025-03-17"
        assert _fields(msg)["report_date"] == day and msg.entries[0].issued == day
        assert msg.entries[0].value == "Stéatose hépatique modérée, sans lésion focale."
    msg = _read(_lab_pdf([PARC, *LEFEVRE, ("title", "ÉCHOGRAPHIE ABDOMINALE"),
                          ("label", "Compte rendu du jeudi 20 mars 2025"),
                          ("head", "Conclusion :"), ("body", "Examen normal.")]))
    assert _fields(msg)["report_date"] == "2025-03-20"


# -- a letterhead's sidebar beside the report ----------------------------------------------------
SIDEBAR = ["Dr Jean MARTIN", "Dr Claire DUBOIS", "Dr Luc FABRE", "Radiologues",
           "Anciens internes", "des Hôpitaux de Lyon", "Secrétariat", "04 78 12 34 56",
           "Scanner - IRM", "Échographie", "Mammographie"]
REPORT = ["CENTRE D'IMAGERIE DU PARC", "Patiente : Mme LEFÈVRE Hélène", "Née le 14/03/1968",
          "IRM DU GENOU DROIT", "Examen du 12/03/2025", "Indication : douleur interne.",
          "Conclusion :", "Fissure horizontale du ménisque interne.",
          "Pas d'épanchement articulaire.", "Dr Jean MARTIN", "Lyon, le 17 mars 2025"]


def _beside(sidebar_top: float) -> bytes:
    """The report at x 170 (10 pt type, 14 pt leading) and the sidebar at x 30 (8.5 pt,
    9.5 pt leading) from ``sidebar_top`` down."""
    page = [g.Line("body", t, 170.0, 800.0 - 14.0 * n) for n, t in enumerate(REPORT)]
    page += [g.Line("small", t, 30.0, sidebar_top - 9.5 * n) for n, t in enumerate(SIDEBAR)]
    return g.write_pdf([page], title="Compte rendu")


def test_a_letterhead_sidebar_is_read_after_the_report_not_into_its_lines() -> None:
    """A radiology centre's sidebar listing its radiologists beside the report: its lines
    were read into the report's ('Dr Jean MARTIN Fissure horizontale...'), the conclusion
    ended at once on that 'Dr' (none filed) and 'Dr Jean MARTIN Fissure' was the signer;
    beside the title, 'Radiologues IRM DU GENOU DROIT' was the exam. The sidebar is read as
    a column of its own, after the page."""
    for top in (705.0, 800.0):  # beside the conclusion; beside the whole report
        data = _beside(top)
        text = parse_pdf(data, PdfLimits(processes=1)).pages[0].text.splitlines()
        assert text[:len(REPORT)] == REPORT and text[len(REPORT):] == SIDEBAR
        msg = _read(data)
        fields = _fields(msg)
        assert fields["conclusion"] == ("Fissure horizontale du ménisque interne.\n"
                                        "Pas d'épanchement articulaire.")
        assert fields["radiologist"] == "Dr Jean MARTIN"
        assert fields["exam_type"] == "IRM DU GENOU DROIT"
        assert msg.identity.family == "LEFÈVRE" and msg.identity.birth_date == "1968-03-14"


def test_labels_and_cells_beside_their_values_are_no_sidebar() -> None:
    """Labels printed in a column left of their values ('Nom :' ... 'LEFÈVRE'), and a
    result table's first column, share their rows' tops: read row by row as before."""
    rows = [("label", (40.0, "Nom :"), (150.0, "LEFÈVRE")),
            ("label", (40.0, "Prénom :"), (150.0, "Hélène")),
            ("label", (40.0, "Né(e) le :"), (150.0, "14/03/1968")),
            ("label", (40.0, "Examen :"), (150.0, "IRM DU GENOU DROIT")),
            ("label", (40.0, "Date :"), (150.0, "12/03/2025")),
            ("body", (40.0, "Sodium"), (150.0, "141 mmol/L"), (250.0, "(136 - 145)")),
            ("body", (40.0, "Potassium"), (150.0, "4,1 mmol/L"), (250.0, "(3,5 - 5,1)"))]
    text = parse_pdf(_lab_pdf(rows), PdfLimits(processes=1)).pages[0].text.splitlines()
    assert text == ["Nom : LEFÈVRE", "Prénom : Hélène", "Né(e) le : 14/03/1968",
                    "Examen : IRM DU GENOU DROIT", "Date : 12/03/2025",
                    "Sodium 141 mmol/L (136 - 145)", "Potassium 4,1 mmol/L (3,5 - 5,1)"]


def test_a_forms_labels_down_its_left_are_no_sidebar() -> None:
    """The ANS's example prescription (../shared/corpus/pdf) prints its headings and labels
    down the left ('Historique des grossesses', 'Patient', 'Nom de naissance PAT-TROIS')
    between rows of values whose addresses run over two lines: not a block in one leading,
    no sidebar; the patient's labels stay with their values, in their rows."""
    path = CORPUS / "eP-MED-DM_2023.01_PosoNonStruct_22.pdf"
    if not path.exists():
        pytest.skip("ANS corpus not present")
    with pdfplumber.open(path) as pdf:  # its text page alone (the others are scans)
        text = _text_layer_page(pdf.pages[1], 2, 20).text.splitlines()
    assert "Nom de naissance PAT-TROIS Adresse 28 Avenue de Breteuil Escalier A 75007" in text
    assert text.index("Patient") < text.index("Prénom(s) de naissance DOMINIQUE") \
        < text.index("Nom et prénom utilisés PAT-TROIS DOMINIQUE")


# -- a letterhead of six lines repeated on every page -------------------------------------------
LETTERHEAD = [("centre", "CENTRE D'IMAGERIE DU PARC"),
              ("small", "12 avenue Jean Jaurès, 69007 Lyon"),
              ("small", "Tél. 04 78 12 34 56 - Fax 04 78 12 34 57"),
              ("small", "FINESS 690000001 - www.imagerie-parc.fr"),
              ("small", "Dr Jean MARTIN - Dr Claire DUBOIS - Dr Luc FABRE"),
              ("small", "Patiente : Mme LEFÈVRE Hélène - Née le 14/03/1968")]


def test_a_long_letterhead_on_every_page_stays_out_of_a_conclusion_over_the_page() -> None:
    """A scanner report whose six-line letterhead is printed again on page 2, where its
    conclusion goes on: the fourth line ('FINESS ... www...') was read into the conclusion
    and the fifth ('Dr Jean MARTIN - Dr Claire DUBOIS ...') ended it, the follow-up advice
    lost. The letterhead's lines printed again on the next page are skipped whatever their
    number; the signature under it still ends the conclusion."""
    page_1 = [*LETTERHEAD, ("title", "SCANNER THORACIQUE SANS INJECTION"),
              ("label", "Examen du 28/03/2025"), ("head", "Conclusion :"),
              ("body", "Nodule pulmonaire solide lobaire supérieur droit de 8 mm."),
              ("small", "Page 1/2")]
    page_2 = [*LETTERHEAD, ("body", "Contrôle scanographique à 3 mois recommandé."),
              ("body", "Dr Jean MARTIN"), ("small", "Page 2/2")]
    msg = _read(_lab_pdf(page_1, page_2))
    assert msg.entries[0].value == ("Nodule pulmonaire solide lobaire supérieur droit de 8 mm.\n"
                                    "Contrôle scanographique à 3 mois recommandé.")
    assert _fields(msg)["radiologist"] == "Dr Jean MARTIN"
    assert msg.identity.family == "LEFÈVRE" and len(msg.entries) == 1


# -- page footers and 'continued' marks of other forms ------------------------------------------
def test_page_footers_and_continued_marks_stay_out_of_a_conclusion_over_the_page() -> None:
    """Footers as other centres print them ('- 1 -', 'p. 1/2') and the marks saying the
    text goes on ('Suite page suivante', '.../...', 'T.S.V.P.') under a conclusion cut by
    the page: they were read into it as a line ('Page 1/2' already was not)."""
    banner = [PARC, *LEFEVRE]
    for footer in ("- 1 -", "p. 1/2", "Suite page suivante", ".../...", "T.S.V.P."):
        page_1 = [*banner, ("title", "SCANNER THORACIQUE"), ("label", "Examen du 28/03/2025"),
                  ("head", "Conclusion :"),
                  ("body", "Nodule pulmonaire solide lobaire supérieur droit de 8 mm."),
                  ("small", footer)]
        page_2 = [*banner, ("body", "Contrôle scanographique à 3 mois recommandé."),
                  ("body", "Dr Jean MARTIN")]
        msg = _read(_lab_pdf(page_1, page_2))
        assert msg.entries[0].value == (
            "Nodule pulmonaire solide lobaire supérieur droit de 8 mm.\n"
            "Contrôle scanographique à 3 mois recommandé."), footer
