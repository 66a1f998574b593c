"""CDA R2 documents the way other senders write them (round 19). Each test builds a small
invented document with one structure CDA R2 / CI-SIS / IHE PCC / C-CDA 2.1 allows, or reads
the committed samples, and checks what is filed against what a clinician reading the
document understands. The round found: the sample generator's IHE internal references
(a treatment's reason) named ids no problem had."""

from __future__ import annotations

from pathlib import Path

import pytest

from normalizers.cda import normalize_cda
from parsers.cda import parse_cda
from tests.test_cda_real_world import HEAD, TAIL

LOINC = 'codeSystem="2.16.840.1.113883.6.1"'
SAMPLES = Path(__file__).resolve().parent.parent / "samples" / "cda"


# -- the samples' internal references name the problems they are about ---------------------------
@pytest.mark.parametrize("name", ["05_ldl_ses_chu_bordeaux.xml", "06_vsm_medecin_traitant.xml"])
def test_a_samples_treatment_reason_names_its_problem(name: str) -> None:
    """IHE PCC internal reference (CI-SIS FR-Reference-interne) from a treatment to the
    problem it treats: the generator wrote a fresh id there, so every reason pointed at
    nothing (CDA_ENTRY_REFERENCE_UNRESOLVED on samples 05, 06 and 07). Each now names its
    problem observation, and the link carries the problem's key with the same code."""
    data = (SAMPLES / name).read_bytes()
    msg = normalize_cda(parse_cda(data), data, "samples")
    assert not [w for w in msg.warnings if "CDA_ENTRY_REFERENCE_UNRESOLVED" in w]
    problems = {e.key: e for e in msg.entries if e.type == "problem"}
    linked = 0
    for med in (e for e in msg.entries if e.type == "medication"):
        for link in med.details.get("entry_links") or ():
            assert link["type"] == "RSON"
            assert link["key"] in problems
            linked += 1
    assert linked == 3


# -- an entry reference read before what it names ------------------------------------------------
def _goal(reference: str) -> str:
    """A C-CDA Goal Observation (4.121): HbA1c at or below 7 %, for a health concern."""
    return f"""<component><section><templateId root="2.16.840.1.113883.10.20.22.2.60"/>
<code code="61146-7" {LOINC}/><title>Objectifs</title>
<text><paragraph ID="g1">HbA1c inférieure ou égale à 7 %</paragraph></text>
<entry><observation classCode="OBS" moodCode="GOL">
<templateId root="2.16.840.1.113883.10.20.22.4.121"/><id root="1.2.250.1.999.19" extension="OBJ-1"/>
<code code="4548-4" {LOINC}
  displayName="Hémoglobine A1c/hémoglobine totale [Fraction massique] Sang"/>
<text><reference value="#g1"/></text><statusCode code="active"/>
<effectiveTime><low value="20240301"/><high value="20240901"/></effectiveTime>
<value xsi:type="IVL_PQ"><high value="7" unit="%"/></value>{reference}</observation></entry>
</section></component>"""


CONCERN_REF = """<entryRelationship typeCode="RSON"><act classCode="ACT" moodCode="EVN">
<templateId root="2.16.840.1.113883.10.20.22.4.122"/>
<id root="1.2.250.1.999.19" extension="PREOC-1"/><code nullFlavor="NP"/>
<statusCode code="completed"/></act></entryRelationship>"""

HEALTH_CONCERN = f"""<component><section><templateId root="2.16.840.1.113883.10.20.22.2.58"/>
<code code="75310-3" {LOINC}/><title>Préoccupations</title><text>Diabète déséquilibré</text>
<entry><act classCode="ACT" moodCode="EVN"><templateId root="2.16.840.1.113883.10.20.22.4.132"/>
<id root="1.2.250.1.999.19" extension="PREOC-1"/><code code="75310-3" {LOINC}/>
<statusCode code="active"/>
<entryRelationship typeCode="REFR"><observation classCode="OBS" moodCode="EVN">
<templateId root="2.16.840.1.113883.10.20.22.4.4" extension="2015-08-01"/>
<id root="1.2.250.1.999.19" extension="PB-1"/>
<code code="55607006" codeSystem="2.16.840.1.113883.6.96"/><statusCode code="completed"/>
<effectiveTime><low value="2015"/></effectiveTime>
<value xsi:type="CD" code="E11.9" codeSystem="2.16.840.1.113883.6.3"
  displayName="Diabète sucré de type 2, sans complication"/></observation></entryRelationship>
</act></entry></section></component>"""


@pytest.mark.parametrize("goal_first", [True, False])
def test_a_reference_read_before_the_concern_it_names_links_to_its_problem(
        goal_first: bool) -> None:
    """C-CDA Care Plan: the goals section comes before the health concerns one (any order is
    allowed). The goal's Entry Reference (4.122) carries the concern's id; read first, it
    registered that id as its own statement, so the concern was never found
    (CDA_ENTRY_REFERENCE_UNRESOLVED, the problem lost to the goal). In either order the
    link now names the diabetes the concern holds."""
    sections = [_goal(CONCERN_REF), HEALTH_CONCERN]
    data = (HEAD + "".join(sections if goal_first else sections[::-1]) + TAIL).encode()
    msg = normalize_cda(parse_cda(data), data, "test")
    assert not [w for w in msg.warnings if "CDA_ENTRY_REFERENCE_UNRESOLVED" in w]
    problem = next(e for e in msg.entries if e.type == "problem")
    goal = next(e for e in msg.entries if e.code == "4548-4")
    assert goal.details["entry_links"] == [
        {"type": "RSON", "id": "1.2.250.1.999.19^PREOC-1", "keys": [problem.key]}]


def test_a_reference_to_nothing_is_still_said_unresolved() -> None:
    """A reference whose id no statement has stays an id, with the warning (round 18)."""
    data = (HEAD + _goal(CONCERN_REF) + TAIL).encode()
    msg = normalize_cda(parse_cda(data), data, "test")
    assert [w for w in msg.warnings if "CDA_ENTRY_REFERENCE_UNRESOLVED" in w]
    goal = next(e for e in msg.entries if e.code == "4548-4")
    assert goal.details["entry_links"] == [{"type": "RSON", "id": "1.2.250.1.999.19^PREOC-1"}]


# -- a goal is exported as a goal ----------------------------------------------------------------
def _bundle_of(*sections: str) -> dict:
    """The FHIR Bundle of the body's entries as the store keeps them; the plan's resources
    validated against R4 (the whole Bundle's models cost seconds to load: the export tests
    validate those)."""
    from fhir.resources.R4B import get_fhir_model_class

    from dossiers.fhir import to_bundle
    from tests.test_fhir_export import PATIENT, _rows_read

    data = (HEAD + "".join(sections) + TAIL).encode()
    entries = normalize_cda(parse_cda(data), data, "test").entries[1:]
    rows = _rows_read(entries)
    for row, entry in zip(rows, entries, strict=True):
        row["value_type"], row["comparator"] = entry.value_type, entry.comparator
    bundle = to_bundle(PATIENT, rows)
    for item in bundle["entry"]:
        if item["resource"]["resourceType"] in ("Goal", "ServiceRequest", "Condition",
                                                 "Immunization", "Procedure",
                                                 "MedicationStatement"):
            get_fhir_model_class(item["resource"]["resourceType"]).model_validate(
                item["resource"])
    return bundle


def _of_type(bundle: dict, kind: str) -> list[dict]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == kind]


def test_a_goal_with_a_target_is_a_goal_not_a_request_for_the_test() -> None:
    """C-CDA Goal Observation (moodCode GOL: HbA1c at or below 7 % by September) was
    exported as a ServiceRequest coded 4548-4: an HbA1c test ordered, the 7 % dropped. It is
    a FHIR Goal: its code the description and the target's measure, its value the target's
    detail, its effectiveTime the start and the date it is due."""
    bundle = _bundle_of(_goal(""))
    assert not _of_type(bundle, "ServiceRequest")
    (goal,) = _of_type(bundle, "Goal")
    assert goal["lifecycleStatus"] == "active"
    assert goal["description"]["coding"][0]["code"] == "4548-4"
    assert goal["startDate"] == "2024-03-01"
    (target,) = goal["target"]
    assert target["measure"]["coding"][0]["code"] == "4548-4"
    assert target["detailQuantity"] == {"value": 7.0, "comparator": "<=", "unit": "%",
                                        "system": "http://unitsofmeasure.org", "code": "%"}
    assert target["dueDate"] == "2024-09-01"


@pytest.mark.parametrize(("status", "lifecycle"), [("active", "active"),
                                                   ("completed", "completed"),
                                                   ("cancelled", "cancelled")])
def test_a_goal_in_words_has_no_target_and_keeps_its_status(status: str,
                                                            lifecycle: str) -> None:
    """'Marcher 30 minutes par jour' (SNOMED CT, no value, one date): a description, no
    target; the CDA statusCode is its lifecycle."""
    bundle = _bundle_of(f"""<component><section><code code="61146-7" {LOINC}/>
<title>Objectifs</title><text><paragraph ID="g2">Marcher 30 minutes par jour</paragraph></text>
<entry><observation classCode="OBS" moodCode="GOL">
<templateId root="2.16.840.1.113883.10.20.22.4.121"/><id root="1.2.250.1.999.19" extension="OBJ-2"/>
<code code="229065009" codeSystem="2.16.840.1.113883.6.96" displayName="Exercise therapy"/>
<text><reference value="#g2"/></text><statusCode code="{status}"/><effectiveTime value="20240301"/>
</observation></entry></section></component>""")
    (goal,) = _of_type(bundle, "Goal")
    assert goal["lifecycleStatus"] == lifecycle
    assert goal["description"]["coding"][0]["code"] == "229065009"
    assert "target" not in goal


def test_a_planned_measurement_is_still_a_service_request() -> None:
    """The same HbA1c to be done (moodCode INT, C-CDA Planned Observation) stays a
    ServiceRequest, as before."""
    bundle = _bundle_of(_goal("").replace('moodCode="GOL"', 'moodCode="INT"')
                        .replace("<value xsi:type=\"IVL_PQ\"><high value=\"7\" unit=\"%\"/>"
                                 "</value>", ""))
    assert not _of_type(bundle, "Goal")
    (request,) = _of_type(bundle, "ServiceRequest")
    assert request["intent"] == "plan"


# -- the codes a sender gives a problem or a vaccine beside the one filed ------------------------
CCDA_PROBLEM = f"""<component><section>
<templateId root="2.16.840.1.113883.10.20.22.2.5.1" extension="2015-08-01"/>
<code code="11450-4" {LOINC}/><title>Problèmes</title>
<text><content ID="p2">Insuffisance rénale chronique stade 3</content></text>
<entry><act classCode="ACT" moodCode="EVN">
<templateId root="2.16.840.1.113883.10.20.22.4.3" extension="2015-08-01"/>
<id root="1.2.250.1.999.19" extension="PREOC-2"/>
<code code="CONC" codeSystem="2.16.840.1.113883.5.6"/>
<statusCode code="active"/><effectiveTime><low value="20210104"/></effectiveTime>
<entryRelationship typeCode="SUBJ"><observation classCode="OBS" moodCode="EVN">
<templateId root="2.16.840.1.113883.10.20.22.4.4" extension="2015-08-01"/>
<id root="1.2.250.1.999.19" extension="PB-2"/>
<code code="55607006" codeSystem="2.16.840.1.113883.6.96" displayName="Problem"/>
<statusCode code="completed"/><effectiveTime><low value="20210104"/></effectiveTime>
<value xsi:type="CD" code="433146000" codeSystem="2.16.840.1.113883.6.96"
  displayName="Chronic kidney disease stage 3"><originalText><reference value="#p2"/></originalText>
<translation code="N18.30" codeSystem="2.16.840.1.113883.6.90"
  displayName="Chronic kidney disease, stage 3 unspecified"/>
<translation code="N18.3" codeSystem="2.16.840.1.113883.6.3"
  displayName="Maladie rénale chronique, stade 3"/></value>
</observation></entryRelationship></act></entry></section></component>"""


def test_a_problems_other_codes_are_codings_of_the_condition() -> None:
    """A C-CDA problem in SNOMED CT with its ICD-10-CM and CIM-10 translations: the store
    kept them (details.value_code.translations, round 13) but Condition.code had the
    SNOMED CT alone; a reader coding in CIM-10 found nothing. They are further codings."""
    (condition,) = _of_type(_bundle_of(CCDA_PROBLEM), "Condition")
    assert [(c["system"], c["code"]) for c in condition["code"]["coding"]] == [
        ("http://snomed.info/sct", "433146000"),
        ("http://hl7.org/fhir/sid/icd-10-cm", "N18.30"),
        ("http://hl7.org/fhir/sid/icd-10", "N18.3")]


def test_a_problem_without_other_codes_has_one_coding() -> None:
    (condition,) = _of_type(_bundle_of(CCDA_PROBLEM.replace(
        CCDA_PROBLEM[CCDA_PROBLEM.index("<translation"):CCDA_PROBLEM.index("</value>")], "")),
        "Condition")
    assert [c["code"] for c in condition["code"]["coding"]] == ["433146000"]


def test_a_vaccines_local_code_is_a_coding_of_the_vaccine() -> None:
    """A C-CDA Immunization Activity whose vaccine is the EHR's own code with its CVX in
    translation: filed under the CVX, the local code kept (details.local_code), but
    vaccineCode had the CVX alone, as Observation.code keeps a lab's own code beside its
    LOINC."""
    (shot,) = _of_type(_bundle_of(f"""<component><section>
<templateId root="2.16.840.1.113883.10.20.22.2.2.1" extension="2015-08-01"/>
<code code="11369-6" {LOINC}/><title>Vaccinations</title><text>Grippe</text>
<entry><substanceAdministration classCode="SBADM" moodCode="EVN" negationInd="false">
<templateId root="2.16.840.1.113883.10.20.22.4.52" extension="2015-08-01"/>
<id root="1.2.250.1.999.19" extension="VAC-1"/><statusCode code="completed"/>
<effectiveTime value="20231015"/><consumable><manufacturedProduct classCode="MANU">
<templateId root="2.16.840.1.113883.10.20.22.4.54" extension="2014-06-09"/>
<manufacturedMaterial><code code="GRIPPE-4V" codeSystem="1.2.250.1.999.19.7"
  displayName="Vaccin grippal quadrivalent"><translation code="150"
  codeSystem="2.16.840.1.113883.12.292" displayName="Influenza, injectable, quadrivalent"/>
</code><lotNumberText>UT1234AB</lotNumberText></manufacturedMaterial>
</manufacturedProduct></consumable></substanceAdministration></entry></section></component>"""),
        "Immunization")
    assert [(c["system"], c["code"]) for c in shot["vaccineCode"]["coding"]] == [
        ("http://hl7.org/fhir/sid/cvx", "150"), ("urn:oid:1.2.250.1.999.19.7", "GRIPPE-4V")]


# -- a procedure's other codes -------------------------------------------------------------------
def _operation(code: str) -> str:
    """A C-CDA Procedure Activity Procedure (4.14) of an Operative Note."""
    return f"""<component><section>
<templateId root="2.16.840.1.113883.10.20.22.2.7.1" extension="2014-06-09"/>
<code code="47519-4" {LOINC}/><title>Interventions</title>
<text><content ID="op1">Appendicectomie par cœlioscopie</content></text>
<entry><procedure classCode="PROC" moodCode="EVN">
<templateId root="2.16.840.1.113883.10.20.22.4.14" extension="2014-06-09"/>
<id root="1.2.250.1.999.19" extension="OP-1"/>{code}<statusCode code="completed"/>
<effectiveTime><low value="20240305081500+0100"/><high value="20240305092000+0100"/>
</effectiveTime></procedure></entry></section></component>"""


CPT_AND_SNOMED = """<code nullFlavor="OTH"><originalText><reference value="#op1"/></originalText>
<translation code="44970" codeSystem="2.16.840.1.113883.6.12"
  displayName="Laparoscopy, surgical, appendectomy"/>
<translation code="6025007" codeSystem="2.16.840.1.113883.6.96"
  displayName="Laparoscopic appendectomy"/></code>"""


def test_a_procedures_other_translation_is_kept_and_exported() -> None:
    """Code nullFlavor OTH with the CPT and the SNOMED CT in translation (as US EHRs write
    an operation): filed under the CPT, as before; the SNOMED CT was dropped from the store
    and the export. It is details.other_codes and a further coding of Procedure.code."""
    data = (HEAD + _operation(CPT_AND_SNOMED) + TAIL).encode()
    (op,) = normalize_cda(parse_cda(data), data, "test").entries[1:]
    assert (op.type, op.code, op.system) == ("procedure", "44970", "CPT")
    assert op.details["other_codes"] == [{"code": "6025007", "system": "SNOMED-CT",
                                          "display": "Laparoscopic appendectomy"}]
    (proc,) = _of_type(_bundle_of(_operation(CPT_AND_SNOMED)), "Procedure")
    assert [(c["system"], c["code"]) for c in proc["code"]["coding"]] == [
        ("http://www.ama-assn.org/go/cpt", "44970"), ("http://snomed.info/sct", "6025007")]


def test_a_local_act_code_with_its_ccam_is_not_another_code_twice() -> None:
    """A hospital's own act code with its CCAM translation: the CCAM filed, the local code
    in details.local_code (round 15), nothing more."""
    data = (HEAD + _operation("""<code code="APP-COE" codeSystem="1.2.250.1.999.19.8"
  displayName="Appendicectomie coelio"><translation code="HHFA016"
  codeSystem="1.2.250.1.213.2.5" displayName="Appendicectomie, par cœlioscopie"/></code>""")
            + TAIL).encode()
    (op,) = normalize_cda(parse_cda(data), data, "test").entries[1:]
    assert (op.code, op.details["local_code"]["code"]) == ("HHFA016", "APP-COE")
    assert "other_codes" not in op.details


# -- a medication's dose is a quantity in the export ---------------------------------------------
def _metformin(dose: str, unit_code: str = "") -> str:
    """A C-CDA Medication Activity (4.16): metformine, twice a day."""
    return f"""<component><section>
<templateId root="2.16.840.1.113883.10.20.22.2.1.1" extension="2014-06-09"/>
<code code="10160-0" {LOINC}/><title>Traitements</title>
<text><content ID="m1">Metformine 500 mg, matin et soir</content></text>
<entry><substanceAdministration classCode="SBADM" moodCode="EVN">
<templateId root="2.16.840.1.113883.10.20.22.4.16" extension="2014-06-09"/>
<id root="1.2.250.1.999.19" extension="TT-1"/><text><reference value="#m1"/></text>
<statusCode code="active"/><effectiveTime xsi:type="IVL_TS"><low value="20230105"/></effectiveTime>
<effectiveTime xsi:type="PIVL_TS" institutionSpecified="true" operator="A">
<period value="12" unit="h"/></effectiveTime>{dose}{unit_code}
<consumable><manufacturedProduct classCode="MANU">
<templateId root="2.16.840.1.113883.10.20.22.4.23" extension="2014-06-09"/>
<manufacturedMaterial><code code="A10BA02" codeSystem="2.16.840.1.113883.6.73"
  displayName="metformine"/></manufacturedMaterial></manufacturedProduct></consumable>
</substanceAdministration></entry></section></component>"""


@pytest.mark.parametrize(("dose", "unit_code", "expected"), [
    ('<doseQuantity value="500" unit="mg"/>', "",
     {"doseQuantity": {"value": 500, "unit": "mg", "system": "http://unitsofmeasure.org",
                       "code": "mg"}}),
    ('<doseQuantity value="1"/>', '<administrationUnitCode code="C48542" '
     'codeSystem="2.16.840.1.113883.3.26.1.1" displayName="comprimé"/>',
     {"doseQuantity": {"value": 1, "unit": "comprimé"}}),
    ('<doseQuantity><low value="1" unit="{comprimé}"/><high value="2" unit="{comprimé}"/>'
     "</doseQuantity>", "",
     {"doseRange": {"low": {"value": 1, "unit": "{comprimé}"},
                    "high": {"value": 2, "unit": "{comprimé}"}}}),
])
def test_a_dose_is_a_quantity_of_the_dosage(dose: str, unit_code: str, expected: dict) -> None:
    """500 mg, one tablet (C-CDA dose 1 with its administration unit), 1 to 2 tablets: the
    dose was in Dosage.text alone ('500 mg; 2 times a day'), no reader could compute with
    it. It is Dosage.doseAndRate (doseQuantity, or doseRange for a range)."""
    (statement,) = _of_type(_bundle_of(_metformin(dose, unit_code)), "MedicationStatement")
    (dosage,) = statement["dosage"]
    assert dosage["doseAndRate"] == [expected]
    assert dosage["timing"]["repeat"] == {"frequency": 2, "period": 1, "periodUnit": "d"}


@pytest.mark.parametrize("dose", ['<doseQuantity nullFlavor="UNK"/>',
                                  '<doseQuantity><low value="1" unit="mg"/></doseQuantity>',
                                  ""])
def test_a_dose_that_is_no_amount_has_no_quantity(dose: str) -> None:
    """No dose, an unknown one, or one with a lower bound only ('>=1 mg'): no doseAndRate
    (the words stay in the text)."""
    (statement,) = _of_type(_bundle_of(_metformin(dose)), "MedicationStatement")
    assert "doseAndRate" not in statement["dosage"][0]
