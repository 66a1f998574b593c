"""PDF reports, round 11: what real reports print that round 10 left read wrong.

A letterhead's sidebar printed on the report's own baselines (its leading, in a smaller
type) was wedged into the report's lines: round 10 split a sidebar only in a leading of its
own. Born-digital PDFs are written with samples/generate_pdf.py's writer (each line at its
own x and baseline), read by parsers.pdf and normalized as the pipeline does."""

from __future__ import annotations

import pytest

from parsers.pdf import PdfLimits, parse_pdf
from samples import generate_pdf as g
from tests.test_pdf_round3 import _lab_pdf, _read
from tests.test_pdf_round10 import REPORT, SIDEBAR


def _fields(msg, n: int = 0) -> dict:  # noqa: ANN001
    return {k: v["value"] for k, v in msg.entries[n].details["fields"].items()}


def _text(data: bytes) -> list[str]:
    return parse_pdf(data, PdfLimits(processes=1)).pages[0].text.splitlines()


# -- a sidebar on the report's own baselines -------------------------------------------------
@pytest.mark.parametrize(("top", "leading"), [(800.0, 14.0), (702.0, 14.0), (800.0, 28.0)],
                         ids=["beside-all", "beside-conclusion", "every-other-line"])
def test_a_sidebar_in_the_reports_leading_is_read_after_the_report(top: float,
                                                                    leading: float) -> None:
    """The radiologists' sidebar (8.5 pt) printed on the report's baselines (10 pt, 14 pt
    leading, or every other one): 'Dr Jean MARTIN Fissure horizontale...' was one line, the
    conclusion lost at the sidebar's 'Dr' and 'Dr Jean MARTIN Fissure' the signer, or
    'Radiologues IRM DU GENOU DROIT' the exam. Its smaller type tells it apart: read after
    the report, as a sidebar in a leading of its own is since round 10."""
    page = [g.Line("body", t, 170.0, 800.0 - 14.0 * n) for n, t in enumerate(REPORT)]
    page += [g.Line("small", t, 30.0, top - leading * n) for n, t in enumerate(SIDEBAR)]
    data = g.write_pdf([page], title="Compte rendu")
    text = _text(data)
    assert text[:len(REPORT)] == REPORT and text[len(REPORT):] == SIDEBAR
    fields = _fields(_read(data))
    assert fields["conclusion"] == ("Fissure horizontale du ménisque interne.\n"
                                    "Pas d'épanchement articulaire.")
    assert fields["radiologist"] == "Dr Jean MARTIN"
    assert fields["exam_type"] == "IRM DU GENOU DROIT"


def test_small_labels_and_result_names_beside_their_values_stay_in_their_rows() -> None:
    """What the smaller type must not split: a form's labels in small type ending in ':'
    beside their values, and a result table whose analyte names are in a smaller type than
    its values: read row by row, as before."""
    labels = [("Nom :", "LEFÈVRE"), ("Prénom :", "Hélène"), ("Née le :", "14/03/1968"),
              ("Examen :", "IRM DU GENOU DROIT"), ("Date :", "12/03/2025")]
    results = [("Sodium", "141 mmol/L (136 - 145)"), ("Potassium", "4,1 mmol/L (3,5 - 5,1)"),
               ("Chlorure", "< 95 mmol/L (98 - 107)"), ("Créatinine", "68 µmol/L (45 - 84)"),
               ("Glucose", "5,2 mmol/L (4,1 - 5,9)")]
    for rows in (labels, results):
        page = []
        for n, (left, right) in enumerate(rows):
            page += [g.Line("small", left, 40.0, 800.0 - 14.0 * n),
                     g.Line("body", right, 150.0, 800.0 - 14.0 * n)]
        assert _text(g.write_pdf([page], title="CR")) == [f"{a} {b}" for a, b in rows]


# -- a report dated only in its letterhead ---------------------------------------------------
PARC = [("centre", "CENTRE D'IMAGERIE DU PARC"), ("small", "12 avenue Jean Jaurès, 69007 Lyon")]
LEFEVRE = [("label", "Patiente : Mme LEFÈVRE Hélène"), ("label", "Née le 14/03/1968")]
ECHO = [("title", "ÉCHOGRAPHIE ABDOMINALE"),
        ("body", "Indication : douleurs de l'hypocondre droit."), ("head", "Conclusion :"),
        ("body", "Stéatose hépatique modérée, sans lésion focale.")]


@pytest.mark.parametrize("dated", ["Lyon, le 3 mars 2025", "Le lundi 03/03/2025"])
def test_a_report_dated_only_in_its_letterhead_takes_that_date_as_its_exam_date(
        dated: str) -> None:
    """'Lyon, le 3 mars 2025' in the letterhead, above the patient and the title, and no
    date in the body: no exam date (the entry's ``effective`` empty, its dedupe key
    'nodate'). The letterhead's date is the exam date, marked as read from the header, with
    a warning saying where."""
    msg = _read(_lab_pdf([*PARC, ("small", dated), *LEFEVRE, *ECHO,
                          ("body", "Dr Jean MARTIN")]))
    entry = msg.entries[0]
    exam = entry.details["fields"]["exam_date"]
    assert (exam["value"], exam["from"], entry.effective) == ("2025-03-03", "header",
                                                               "2025-03-03")
    assert entry.key.startswith("report|2025-03-03|US|")
    said = [w for w in msg.warnings if w.startswith("REPORT_EXAM_DATE_FROM_HEADER")]
    assert said and "page 1, line 3" in said[0] and "LEFÈVRE" not in said[0]


def test_a_date_in_the_body_wins_over_the_letterheads() -> None:
    """The body's own date is never replaced: an exam date in the body stays the exam date;
    a body signed 'Lyon, le 17 mars 2025' (the letter reprinted later under a letterhead
    dated otherwise) takes no exam date from the letterhead; no warning either way."""
    head = [*PARC, ("small", "Lyon, le 3 mars 2025"), *LEFEVRE]
    msg = _read(_lab_pdf([*head, ECHO[0], ("label", "Examen réalisé le 28/02/2025"),
                          *ECHO[1:], ("body", "Dr Jean MARTIN")]))
    assert msg.entries[0].effective == "2025-02-28"
    msg_signed = _read(_lab_pdf([*head, *ECHO, ("body", "Lyon, le 17 mars 2025"),
                                 ("body", "Dr Jean MARTIN")]))
    assert msg_signed.entries[0].effective is None
    assert not [w for m in (msg, msg_signed) for w in m.warnings
                if w.startswith("REPORT_EXAM_DATE_FROM_HEADER")]
