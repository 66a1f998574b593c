"""Lab results out of French laboratories' PDF reports (round 4): layouts of laboratories not
seen before (Cerballiance, Biogroup, Eurofins Biomnis, Synlab, Inovie, a CHU's LIS). Each test
is what one of them prints that we read wrong: an analysis our table does not know printed
without a column heading (dropped with no word), the collection's date and time as other
labs print it, an abnormal value marked only in bold. Born-digital PDFs are written with
samples/generate_pdf.py's writer (tests/test_pdf_round3.py's helpers), read by parsers.pdf
and normalized as the pipeline does."""

from __future__ import annotations

from tests.test_pdf_round3 import LE_GOFF, _lab_pdf, _read, _results

# -- an analysis we do not know, in a report without column headings ---------------------------
BIOGROUP = [("centre", "BIOGROUP - Laboratoire de biologie médicale"), *LE_GOFF,
            ("label", "Date de prélèvement : 05/02/2026"), ("title", "BIOCHIMIE"),
            ("body", (40.0, "Créatinine"), (200.0, "92 µmol/L"), (300.0, "(59 - 104)")),
            ("body", (40.0, "Vitamine B9 (folates sériques)"), (200.0, "12,3 nmol/L"),
             (300.0, "(10,4 - 42,4)")),
            ("body", (40.0, "Zinc"), (200.0, "9,8 µmol/L L"), (300.0, "(10,7 - 18,4)")),
            ("body", (40.0, "Anticorps anti-TPO"), (200.0, "< 9"), (240.0, "UI/mL"),
             (300.0, "(< 34)")),
            ("body", "Contrôle du zinc à 12 µmol/L conseillé dans 3 mois."),
            ("body", "Imprimé le 06/02/2026 - Page 1/1")]


def test_an_analysis_we_do_not_know_without_headings_is_filed_unmapped_not_dropped() -> None:
    """A report with no column heading: a line naming an analysis our table does not know
    (folates, zinc, anti-TPO) was dropped without a word; only the creatinine was filed.
    Laid out as a result (name, value with a unit we know, range, each apart) it is now filed
    unmapped under its printed name, with a warning; a sentence quoting a value is not, and
    says so."""
    msg = _read(_lab_pdf(BIOGROUP))
    assert _results(msg) == [("14682-9", "92", "umol/L", "59 - 104", None),
                             ("Vitamine B9 (folates sériques)", "12,3", "nmol/L",
                              "10,4 - 42,4", None),
                             ("Zinc", "9,8", "umol/L", "10,7 - 18,4", "L"),
                             ("Anticorps anti-TPO", "< 9", "[IU]/mL", "< 34", None)]
    assert [(e.system, e.mapped) for e in msg.entries[2:]] == [("PDF-LABEL", False)] * 3
    assert msg.entries[4].comparator == "<" and msg.entries[4].value_num == 9.0
    codes = [w.split(":")[0] for w in msg.warnings]
    assert codes.count("PDF_LAB_UNKNOWN_ANALYSIS") == 3
    assert "PDF_LAB_NOT_FILED" in codes  # the advice quoting '12 µmol/L'
    assert not any("Zinc" in w or "9,8" in w for w in msg.warnings)  # no data in messages
