"""PDF reports from laboratories and imaging centres (round 7): what real French reports and
scans still made us read wrong. One patient's laboratory reports of different days printed in
one PDF (every result was dated by the first report's specimen), ...
Born-digital PDFs are written with samples/generate_pdf.py's writer (tests/test_pdf_round3.py's
helpers), read by parsers.pdf and normalized as the pipeline does."""

from __future__ import annotations

from samples import generate_pdf as g
from tests.test_pdf_round3 import C_HEAD, LEFEVRE, C, _lab_pdf_pages, _read, _row

CERBA = ("centre", "LABORATOIRE CERBA - Biologie médicale")


def _cerba(collected: str, creatinine: str, potassium: str, validated: str) -> list[tuple]:
    return [CERBA, *LEFEVRE, ("label", f"Prélèvement du {collected}"), ("title", "BIOCHIMIE"),
            C_HEAD, _row(C, "Créatinine", creatinine, "µmol/L", "(45 - 84)"),
            _row(C, "Potassium", potassium, "mmol/L", "(3,5 - 5,0)"),
            ("body", f"Validé le {validated} par Dr Anne KERGOAT")]


def _dated(msg) -> list[tuple]:  # noqa: ANN001
    return [(e.type, e.code, e.value, e.effective) for e in msg.entries]


# -- one patient's reports of different days in one PDF ----------------------------------------
def test_one_patients_reports_of_two_days_are_two_reports_each_dated_by_its_specimen() -> None:
    """A laboratory's print of a patient's January and March reports in one PDF: one report
    entry, and March's creatinine and potassium filed as of 12 January (the first page's
    specimen), beside January's. Each page naming the patient and a specimen of another day
    is now its own report, its results dated by its own collection."""
    msg = _read(g.write_pdf(_lab_pdf_pages(
        _cerba("12/01/2026 à 08h15", "72", "4,2", "12/01/2026 à 14h02"),
        _cerba("12/03/2026 à 09h30", "68", "5,8", "12/03/2026 à 15h10")), title="Lot"))
    assert msg.patients is None and msg.identity.family == "LEFÈVRE"
    assert msg.warnings[0].startswith("REPORT_SEVERAL: the PDF holds 2 reports")
    assert _dated(msg) == [
        ("report", None, None, "2026-01-12"),
        ("lab_result", "14682-9", "72", "2026-01-12T08:15+01:00"),
        ("lab_result", "2823-3", "4,2", "2026-01-12T08:15+01:00"),
        ("report", None, None, "2026-03-12"),
        ("lab_result", "14682-9", "68", "2026-03-12T09:30+01:00"),
        ("lab_result", "2823-3", "5,8", "2026-03-12T09:30+01:00")]
    assert len({e.key for e in msg.entries}) == 6


def test_a_report_repeating_its_patient_and_specimen_or_former_results_stays_one() -> None:
    """Page 2 reprinting the patient block and the same collection, or a page of former
    results under its 'Résultats antérieurs' heading with their own collection day: one
    report (they are not another day's report)."""
    page1 = _cerba("12/03/2026 à 09h30", "68", "5,8", "12/03/2026 à 15h10")[:-1]
    same = [CERBA, *LEFEVRE, ("label", "Prélèvement du 12/03/2026"), ("title", "HÉMATOLOGIE"),
            C_HEAD, _row(C, "Hémoglobine", "13,2", "g/dL", "(12,0 - 16,0)")]
    former = [CERBA, *LEFEVRE, ("title", "Résultats antérieurs"),
              ("label", "Prélèvement du 12/01/2026"),
              _row(C, "Créatinine", "72", "µmol/L", "(45 - 84)")]
    for page2 in (same, former):
        msg = _read(g.write_pdf(_lab_pdf_pages(page1, page2), title="CR"))
        assert not any(w.startswith("REPORT_SEVERAL") for w in msg.warnings)
        assert [e.type for e in msg.entries].count("report") == 1
        assert {e.effective for e in msg.entries if e.type == "lab_result"} == {
            "2026-03-12T09:30+01:00"}
