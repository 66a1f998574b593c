"""PDF reports from imaging centres and laboratories not seen before (round 10): what their
real reports print that we still read wrong. A signature line dated with the day of the week
('Paris, le lundi 17 mars 2025': no report date, and the line read into the conclusion).
Born-digital PDFs are written with samples/generate_pdf.py's writer (tests/test_pdf_round3.py's
helpers: each cell at its own x), read by parsers.pdf and normalized as the pipeline does."""

from __future__ import annotations

from tests.test_pdf_round3 import _lab_pdf, _read

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
