"""French CI-SIS documents of volets not seen before (round 18: eDISP, CR-ACP, VAC, OBP,
CSE, IPS-FR...). Each test builds a small invented document with one structure CDA R2 /
CI-SIS / the IHE PCC, PHARM and LAB templates allow, or runs an ANS example when
../shared/corpus is there, and checks what is filed against what a clinician reading the
document understands. The round found: the pharmacy that performed a dispense dropped."""

from __future__ import annotations

from normalizers.cda import normalize_cda
from parsers.cda import parse_cda
from tests.conftest import corpus_path
from tests.test_cda_real_world import _entries

LOINC = 'codeSystem="2.16.840.1.113883.6.1"'


def _corpus(name: str):  # noqa: ANN202
    """The NormalizedMessage of one ANS example; the test skips when the corpus is absent."""
    data = corpus_path("cda", name).read_bytes()
    return normalize_cda(parse_cda(data), data, "corpus")


# -- a dispense says which pharmacy handed it out ------------------------------------------------
PHARMACIST = """<author><time value="20240412103000+0200"/><assignedAuthor>
  <id root="1.2.250.1.71.4.2.1" extension="810002345678"/>
  <code code="G15_21" codeSystem="1.2.250.1.213.1.1.4.5" displayName="Pharmacien"/>
  <assignedPerson><name><given>Amélie</given><family>Lefèvre</family></name></assignedPerson>
  <representedOrganization><id root="1.2.250.1.71.4.2.2" extension="1130456789"/>
  <name>Pharmacie de la Canebière</name></representedOrganization>
  </assignedAuthor></author>"""
SOFTWARE = """<author><time value="20240412103000+0200"/><assignedAuthor>
  <id root="1.2.250.1.999.18" extension="LGO-1"/>
  <assignedAuthoringDevice><softwareName>LGO Officine</softwareName>
  </assignedAuthoringDevice></assignedAuthor></author>"""
PERFORMER = """<performer typeCode="PRF"><assignedEntity>
  <id root="1.2.250.1.71.4.2.1" extension="810009876543"/>
  <representedOrganization><id root="1.2.250.1.71.4.2.2" extension="690123456"/>
  <name>Pharmacie des Terreaux</name></representedOrganization>
  </assignedEntity></performer>"""


def _dispense(inner: str = "") -> str:
    return f"""<entry><supply classCode="SPLY" moodCode="EVN">
  <templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.7.3"/>
  <templateId root="1.3.6.1.4.1.19376.1.9.1.3.4"/>
  <id root="1.2.250.1.999.18.2" extension="DISP-0412-1"/>
  <effectiveTime value="20240412103000+0200"/>
  <quantity value="2" unit="{{box}}"/>
  <product><manufacturedProduct><manufacturedMaterial>
    <code code="3400936404894" codeSystem="1.2.250.1.213.2.3.1"
      displayName="AMOXICILLINE BIOGARAN 1 g, comprimé dispersible"/>
  </manufacturedMaterial></manufacturedProduct></product>{inner}</supply></entry>"""


def _dispensation(section_author: str, entry: str) -> str:
    return (f'<component><section><code code="60590-7" {LOINC}/><title>Dispensation</title>'
            f"<text>Amoxicilline 1 g, 2 boîtes</text>{section_author}{entry}"
            "</section></component>")


def test_the_pharmacy_that_dispensed_is_kept_from_the_section_author() -> None:
    """CI-SIS eDISP (and IHE PHARM DIS) name the dispensing pharmacist, and the pharmacy
    he works for, as the author of the dispensation section: the dispense was filed
    without the pharmacy (recorded_by kept the pharmacist's RPPS, not the pharmacy's
    name). It says who dispensed now, the pharmacy with its FINESS and name."""
    (dispense,) = _entries(_dispensation(PHARMACIST, _dispense()))
    assert dispense.details["dispensed"] is True
    assert dispense.details["dispensed_by"] == {
        "ids": ["1.2.250.1.71.4.2.1^810002345678"],
        "organization": ["1.2.250.1.71.4.2.2^1130456789"],
        "organization_name": "Pharmacie de la Canebière"}


def test_the_supply_performer_is_the_dispenser_before_any_author() -> None:
    """C-CDA Medication Dispense and the IHE PCC Supply Entry name the pharmacy as the
    supply's performer: it is the dispenser, not the software that wrote the section."""
    (dispense,) = _entries(_dispensation(SOFTWARE, _dispense(PERFORMER)))
    assert dispense.details["dispensed_by"] == {
        "ids": ["1.2.250.1.71.4.2.1^810009876543"],
        "organization": ["1.2.250.1.71.4.2.2^690123456"],
        "organization_name": "Pharmacie des Terreaux"}


def test_software_is_not_a_dispenser() -> None:
    """A section written by the pharmacy's software alone says nobody dispensed it."""
    (dispense,) = _entries(_dispensation(SOFTWARE, _dispense()))
    assert "dispensed_by" not in dispense.details


def test_the_ans_edisp_example_names_its_pharmacy() -> None:
    msg = _corpus("eDISP-MED_2024.01.xml")
    dispensed = [e for e in msg.entries if e.details.get("dispensed")]
    assert dispensed
    assert {e.details["dispensed_by"]["organization_name"] for e in dispensed} == {
        "Pharmacie du village"}
