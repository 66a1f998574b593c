"""PDF reports and CDA periods, round 13.

A lab's report whose conclusion is headed 'Avis biologique', 'Avis du biologiste', 'En résumé'
or 'Commentaire du biologiste' (tables/pdf_lab_conclusion_titles.csv, which ends a lab table
since PDF round 12) had no conclusion field: report.py only knew 'Conclusion', 'Synthèse' and
'Au total'. A CDA IVL_TS given as center + width was read as its center alone, the period
lost. Reports are built as parsers/pdf objects (test_report_normalizer's pages); CDAs as a
small document (test_cda_real_world's head and tail)."""

from __future__ import annotations

import pytest

from normalizers.report import normalize_report
from tests.test_cda_real_world import _section
from tests.test_cda_senders_round26 import _amoxicillin, _normalized, _result
from tests.test_report_normalizer import PDF, doc, fields_of, page

LAB = """Laboratoire de biologie médicale des Trois Fontaines
Nom : BÉRANGER
Prénom : Hélène
Date de naissance : 14/05/1958
Sexe : F
Prélevé le 04/02/2026 à 07h50
Glycémie à jeun 7,2 mmol/L (4,1 - 5,9)
HbA1c 7,8 % (4,0 - 6,0)
{heading}
Diabète déséquilibré, à confronter au contexte clinique.
Dr Étienne ROUSSEL
Biologiste"""


@pytest.mark.parametrize("heading", [
    "Avis biologique :", "AVIS DU BIOLOGISTE", "En résumé :", "Commentaire du biologiste -",
    "Synthèse biologique :", "Conclusion :"])
def test_a_biologists_heading_gives_the_conclusion(heading: str) -> None:
    """The same headings that end the lab table give the report's conclusion field."""
    msg = normalize_report(doc(page(1, LAB.format(heading=heading))), PDF, "trois-fontaines")
    conclusion = fields_of(msg)["conclusion"]
    assert conclusion["value"] == "Diabète déséquilibré, à confronter au contexte clinique."
    assert conclusion["page"] == 1


@pytest.mark.parametrize("heading", [
    "Avis biologique demandé au Dr ROUSSEL", "En résumé de l'antériorité, stable"])
def test_words_that_only_start_like_a_heading_give_no_conclusion(heading: str) -> None:
    """A sentence starting with the heading's words is no heading: no conclusion field."""
    msg = normalize_report(doc(page(1, LAB.format(heading=heading))), PDF, "trois-fontaines")
    assert "conclusion" not in fields_of(msg)


# -- CDA: an interval given as its center and width --------------------------------------------
def _around(center: str, width: str) -> str:
    return (f'<effectiveTime xsi:type="IVL_TS"><center value="{center}"/>{width}'
            "</effectiveTime>")


def _urine(when: str):  # noqa: ANN202
    urine = _result("2889-4", "Protéinurie des 24 heures",
                    '<value xsi:type="PQ" value="0.42" unit="g/(24.h)"/>', when)
    return _normalized(_section("30954-2", "Biochimie urinaire", urine))


@pytest.mark.parametrize(("center", "width", "low", "high"), [
    ("20240311200000+0100", '<width value="24" unit="h"/>',
     "2024-03-11T08:00:00+01:00", "2024-03-12T08:00:00+01:00"),
    ("202403111000+0100", '<width value="90" unit="min"/>',
     "2024-03-11T09:15+01:00", "2024-03-11T10:45+01:00"),
    ("20240311", '<width value="4" unit="d"/>', "2024-03-09", "2024-03-13"),
    ("20240315", '<width value="2" unit="mo"/>', "2024-02-15", "2024-04-15"),
    ("20240311", '<width value="1" unit="a"/>', "2023-09-11", "2024-09-11"),
])
def test_a_period_given_by_its_center_and_width_has_both_ends(
        center: str, width: str, low: str, high: str) -> None:
    """center + width, no low: the entry's time is center - width/2 and period_high
    center + width/2, at the center's precision."""
    msg = _urine(_around(center, width))
    (protein,) = msg.entries[1:]
    assert (protein.effective, protein.details.get("period_high")) == (low, high)
    assert not [w for w in msg.warnings if "WIDTH" in w]


def test_half_a_width_finer_than_the_center_leaves_the_center() -> None:
    """A day's center 1 d wide: half a day is finer than a day, the center stays as read."""
    msg = _urine(_around("20240311", '<width value="1" unit="d"/>'))
    (protein,) = msg.entries[1:]
    assert protein.effective == "2024-03-11" and "period_high" not in protein.details


def test_a_center_with_a_width_that_is_no_time_is_said_and_keeps_the_center() -> None:
    msg = _urine(_around("20240311200000+0100", '<width value="1850" unit="mL"/>'))
    (protein,) = msg.entries[1:]
    assert protein.effective == "2024-03-11T20:00:00+01:00"
    assert "period_high" not in protein.details
    (warning,) = [w for w in msg.warnings if w.startswith("CDA_WIDTH_NOT_TIME")]
    assert "'mL'" in warning


def test_a_center_with_a_french_unit_of_time_is_read_and_said() -> None:
    msg = _urine(_around("20240311", '<width value="2" unit="j"/>'))
    (protein,) = msg.entries[1:]
    assert (protein.effective, protein.details["period_high"]) == ("2024-03-10", "2024-03-12")
    assert [w.split(":")[0] for w in msg.warnings if "WIDTH" in w] == [
        "CDA_WIDTH_UNIT_NOT_UCUM"]


def test_a_center_alone_is_read_as_before() -> None:
    msg = _urine('<effectiveTime xsi:type="IVL_TS"><center value="20240311"/></effectiveTime>')
    (protein,) = msg.entries[1:]
    assert protein.effective == "2024-03-11" and "period_high" not in protein.details


def test_a_medication_around_a_day_has_its_start_and_end() -> None:
    """A treatment 'around 10 March, over 6 days' (CI-SIS posology, center + width)."""
    msg = _normalized(_section("10160-0", "Traitements", _amoxicillin(
        _around("20240310", '<width value="6" unit="d"/>'))))
    (medication,) = msg.entries[1:]
    assert (medication.details["period_low"], medication.details["period_high"]) == (
        "2024-03-07", "2024-03-13")
