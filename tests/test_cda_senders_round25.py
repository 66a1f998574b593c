"""CDA R2 documents from hospitals we have not seen (round 25). Each test builds a small
document the way a French laboratory or hospital, or an EHR abroad, writes it with the
structures CDA R2 / IHE LAB / CI-SIS / C-CDA R2.1 allow, and checks what is filed and
exported against what a clinician reading it understands.

Found wrong and fixed here: an observation's values after its first (CDA R2 value 0..*: a
glucose in mmol/L and g/L as two PQ, a culture's two coded germs) were dropped without a
word unless the second was a score's answer code; a result or vital sign over a period
(a 24-hour urine from 08:00 to 08:00, a mean blood pressure over an ambulatory recording)
lost its end, and the FHIR export made an instant of every observation over a period (the
C-CDA tobacco use's end too); a C-CDA Result Organizer of classCode CLUSTER (its value
set allows it) gave its results no panel; an instruction to the patient (C-CDA
Instruction) was read under a medication only: under a planned or done procedure it was
dropped, and alone in a section dropped without a word. Checked right and kept so: TS,
RTO, REAL, INT, BL, SC values, CD nullFlavor OTH with originalText, one-sided IVL_PQ with
inclusive="false", PQ translations, effectiveTime given by its low or center with
+0100/+0200 offsets and minute or fractional-second precision; statusCode aborted,
cancelled, nullified, new on results, problems, medications and procedures; negated
results; C-CDA procedures as act, observation and procedure; C-CDA immunizations (lot,
manufacturer, dose number); vital signs' methodCode and targetSiteCode."""

from __future__ import annotations

from dataclasses import asdict

import pytest

from dossiers.fhir import to_bundle
from normalizers.cda import normalize_cda
from parsers.cda import parse_cda
from tests.test_cda_real_world import HEAD, TAIL, _section
from tests.test_fhir_export import check_bundle

LOINC = 'codeSystem="2.16.840.1.113883.6.1"'
SNOMED = 'codeSystem="2.16.840.1.113883.6.96"'
PATIENT = {"id": 1, "family": "CHASSAGNE", "given": "Élodie", "birth_date": "1971-06-23",
           "sex": "F", "ins": None}


def _normalized(*sections: str):  # noqa: ANN202
    data = (HEAD + "".join(sections) + TAIL).encode()
    return normalize_cda(parse_cda(data), data, "test")


def _observations(entries: list) -> list[dict]:
    """The Observations of the entries in a Bundle checked against R4, in their order."""
    bundle = to_bundle(PATIENT, [{**asdict(e), "id": n} for n, e in enumerate(entries, 1)])
    check_bundle(bundle)
    return [item["resource"] for item in bundle["entry"]
            if item["resource"]["resourceType"] == "Observation"]


def _result(code: str, name: str, values: str,
            when: str = '<effectiveTime value="20240311080000+0100"/>',
            template: str = "1.3.6.1.4.1.19376.1.3.1.6") -> str:
    """An IHE LAB / CI-SIS FR-Resultat-examens-de-biologie-element-clinique-pertinent."""
    return f"""<entry><observation classCode="OBS" moodCode="EVN">
      <templateId root="{template}"/>
      <id root="1.2.250.1.999.25.1" extension="RES-{code}"/>
      <code code="{code}" displayName="{name}" {LOINC}/><statusCode code="completed"/>
      {when}{values}</observation></entry>"""


# -- an observation's further values -----------------------------------------------------------
@pytest.mark.parametrize(("values", "first", "others"), [
    # a glucose the LIS writes in both units, as two PQ rather than a PQ translation
    ('<value xsi:type="PQ" value="5.4" unit="mmol/L"/>'
     '<value xsi:type="PQ" value="0.97" unit="g/L"/>', "5.4", ["0.97 g/L"]),
    # a culture naming two germs, each a coded value
    (f'<value xsi:type="CD" code="112283007" {SNOMED} displayName="Escherichia coli"/>'
     f'<value xsi:type="CD" code="56415008" {SNOMED} displayName="Klebsiella pneumoniae"/>',
     "Escherichia coli", ["Klebsiella pneumoniae"]),
    # a value below a limit, then the same in words
    ('<value xsi:type="IVL_PQ"><high value="0.5" unit="mg/L" inclusive="false"/></value>'
     '<value xsi:type="ST">inférieur au seuil de détection</value>',
     "<0.5", ["inférieur au seuil de détection"]),
])
def test_an_observations_further_values_are_kept_apart(values: str, first: str,
                                                       others: list[str]) -> None:
    """CDA R2 Observation.value is 0..*. The first value stays the value (which one is
    'the' value is the sender's order); the others were dropped without a word (only a
    score's answer code was read). They are kept in details.other_values, as HL7v2's OBX-5
    repetitions are, said on the ledger row, and exported as a note of the Observation."""
    msg = _normalized(_section("30954-2", "Résultats", _result("2345-7", "Glucose", values)))
    (got,) = msg.entries[1:]
    assert (got.value, got.details["other_values"]) == (first, others)
    assert [w.split(":")[0] for w in msg.warnings] == ["CDA_OTHER_VALUES"]
    (resource,) = _observations([got])
    assert {"text": "further values sent (CDA observation value repeated): "
                    + "; ".join(others)} in resource["note"]


def test_a_score_and_its_answer_code_stay_one_value() -> None:
    """What the rule is not about: a C-CDA assessment item's score and its LOINC answer
    (INT 3 and CO LA6555-2) are one value and its code, as before; no further value, no
    warning. One value alone: nothing either."""
    item = _result("9267-6", "Ouverture des yeux",
                   '<value xsi:type="INT" value="3"/>'
                   '<value xsi:type="CO" code="LA6555-2" codeSystem="2.16.840.1.113883.6.1" '
                   'displayName="À la demande verbale"/>',
                   template="2.16.840.1.113883.10.20.22.4.86")
    single = _result("2345-7", "Glucose", '<value xsi:type="PQ" value="5.4" unit="mmol/L"/>')
    msg = _normalized(_section("30954-2", "Résultats", item + single))
    score, glucose = msg.entries[1:]
    assert (score.value, score.details["value_code"]["code"]) == ("3", "LA6555-2")
    assert "other_values" not in score.details and "other_values" not in glucose.details
    assert not [w for w in msg.warnings if w.startswith("CDA_OTHER_VALUES")]


# -- a result over a period ------------------------------------------------------------------------
DAY_OF_URINE = ('<effectiveTime><low value="20240311080000+0100"/>'
                '<high value="20240312080000+0100"/></effectiveTime>')


def test_a_24_hour_urine_result_keeps_the_end_of_its_collection() -> None:
    """IHE LAB / C-CDA Result Observation effectiveTime IVL_TS: a 24-hour urine protein
    collected from 08:00 to 08:00 the next day. Its start was the entry's time and its end
    dropped: the day's collection read as an instant. The end is details.period_high and
    the export an effectivePeriod; a result at an instant is unchanged."""
    urine = _result("2889-4", "Protéinurie des 24 heures",
                    '<value xsi:type="PQ" value="0.42" unit="g/(24.h)"/>', DAY_OF_URINE)
    instant = _result("2345-7", "Glucose", '<value xsi:type="PQ" value="5.4" unit="mmol/L"/>')
    protein, glucose = _normalized(_section("30954-2", "Biochimie urinaire",
                                            urine + instant)).entries[1:]
    assert (protein.effective, protein.details["period_high"]) == (
        "2024-03-11T08:00:00+01:00", "2024-03-12T08:00:00+01:00")
    assert "period_high" not in glucose.details
    exported, single = _observations([protein, glucose])
    assert exported["effectivePeriod"] == {"start": "2024-03-11T08:00:00+01:00",
                                           "end": "2024-03-12T08:00:00+01:00"}
    assert "effectiveDateTime" not in exported
    assert single["effectiveDateTime"] == "2024-03-11T08:00:00+01:00"
    assert "effectivePeriod" not in single


def test_a_mean_blood_pressure_over_a_day_is_a_vital_sign_over_that_day() -> None:
    """C-CDA Vital Sign Observation (4.27) in its organizer (4.26): the mean systolic
    pressure of a 24-hour ambulatory recording, with its method and site. It is still a
    vital sign meeting R4's vitalsigns profile, over the day it was measured."""
    organizer = f"""<entry><organizer classCode="CLUSTER" moodCode="EVN">
      <templateId root="2.16.840.1.113883.10.20.22.4.26"/>
      <id root="1.2.250.1.999.25.2" extension="MAPA-1"/>
      <code code="46680005" {SNOMED}/><statusCode code="completed"/>{DAY_OF_URINE}
      <component><observation classCode="OBS" moodCode="EVN">
        <templateId root="2.16.840.1.113883.10.20.22.4.27"/>
        <id root="1.2.250.1.999.25.2" extension="MAPA-1-PAS"/>
        <code code="8480-6" displayName="Pression artérielle systolique" {LOINC}/>
        <statusCode code="completed"/>{DAY_OF_URINE}
        <value xsi:type="PQ" value="134" unit="mm[Hg]"/>
        <methodCode code="371909004" {SNOMED} displayName="Mesure ambulatoire"/>
        <targetSiteCode code="368208006" {SNOMED} displayName="Bras gauche"/>
      </observation></component></organizer></entry>"""
    (systolic,) = _normalized(_section("8716-3", "Signes vitaux", organizer)).entries[1:]
    assert (systolic.type, systolic.value, systolic.details["period_high"]) == (
        "vital_sign", "134", "2024-03-12T08:00:00+01:00")
    assert systolic.details["method"][0]["code"] == "371909004"
    (exported,) = _observations([systolic])
    assert exported["effectivePeriod"]["end"] == "2024-03-12T08:00:00+01:00"
    assert exported["meta"]["profile"] == ["http://hl7.org/fhir/StructureDefinition/vitalsigns"]


def test_a_smokers_years_are_exported_as_a_period() -> None:
    """C-CDA Tobacco Use (4.85): 'smoked daily from 1995 to 2015' kept its end in
    details.period_high (earlier round), but the FHIR Observation said 1995 alone."""
    use = f"""<entry><observation classCode="OBS" moodCode="EVN">
      <templateId root="2.16.840.1.113883.10.20.22.4.85" extension="2014-06-09"/>
      <id root="1.2.250.1.999.25.3" extension="TABAC-1"/>
      <code code="11367-0" {LOINC}/><statusCode code="completed"/>
      <effectiveTime><low value="19950101"/><high value="20150601"/></effectiveTime>
      <value xsi:type="CD" code="449868002" {SNOMED} displayName="Fume quotidiennement"/>
      </observation></entry>"""
    (tobacco,) = _normalized(_section("29762-2", "Mode de vie", use)).entries[1:]
    (exported,) = _observations([tobacco])
    assert exported["effectivePeriod"] == {"start": "1995-01-01", "end": "2015-06-01"}


# -- a C-CDA result organizer of classCode CLUSTER ---------------------------------------------
def _organizer(class_code: str, template: str) -> str:
    glucose = _result("2345-7", "Glucose", '<value xsi:type="PQ" value="5.4" unit="mmol/L"/>')
    component = glucose.replace("<entry>", "<component>").replace("</entry>", "</component>")
    return f"""<entry><organizer classCode="{class_code}" moodCode="EVN">
      <templateId root="{template}"/><id root="1.2.250.1.999.25.4" extension="BMP-1"/>
      <code code="24323-8" displayName="Bilan métabolique de base" {LOINC}/>
      <statusCode code="completed"/><effectiveTime value="20240311080000+0100"/>
      {component}</organizer></entry>"""


@pytest.mark.parametrize(("class_code", "template", "panel"), [
    # C-CDA R2.1 Result Organizer: classCode from HL7 ActClass, CLUSTER as often as BATTERY
    ("CLUSTER", "2.16.840.1.113883.10.20.22.4.1", "24323-8"),
    ("BATTERY", "2.16.840.1.113883.10.20.22.4.1", "24323-8"),
    # what the rule is not about: a cluster of no result organizer template names no panel
    ("CLUSTER", "1.2.250.1.999.25.99", None),
])
def test_a_result_organizer_names_its_panel_whatever_its_class(class_code: str, template: str,
                                                               panel: str | None) -> None:
    """A C-CDA Result Organizer sent with classCode CLUSTER (its value set allows it; EHRs
    abroad send it): its results named no panel, where the same organizer as a BATTERY
    gave them its code (details.panel)."""
    (got,) = _normalized(_section("30954-2", "Résultats",
                                  _organizer(class_code, template))).entries[1:]
    assert (got.details.get("panel") or {}).get("code") == panel


# -- an instruction to the patient in a procedure or a plan ------------------------------------
def _instruction(words: str) -> str:
    """C-CDA R2.1 Instruction (V2), as Planned Procedure and Procedure Activity nest it."""
    return f"""<entryRelationship typeCode="SUBJ" inversionInd="true">
      <act classCode="ACT" moodCode="INT">
      <templateId root="2.16.840.1.113883.10.20.22.4.20" extension="2014-06-09"/>
      <code code="311401005" {SNOMED} displayName="Éducation du patient"/>
      <text>{words}</text><statusCode code="completed"/></act></entryRelationship>"""


def _colonoscopy(mood: str, template: str, instruction: str) -> str:
    return f"""<entry><procedure classCode="PROC" moodCode="{mood}">
      <templateId root="{template}" extension="2014-06-09"/>
      <id root="1.2.250.1.999.25.5" extension="COLO-1"/>
      <code code="HHQE005" codeSystem="1.2.250.1.213.2.5"
        displayName="Coloscopie totale avec franchissement de l'orifice iléocolique"/>
      <statusCode code="active"/><effectiveTime value="20240520"/>{instruction}
      </procedure></entry>"""


def test_a_planned_procedures_instruction_is_what_the_patient_is_told() -> None:
    """C-CDA R2.1 Planned Procedure (4.41) in the Plan of Treatment, with an Instruction
    (4.20): 'à jeun depuis minuit'. Read under a medication only, it was dropped; it is the
    plan's details.patient_instructions and the ServiceRequest's patientInstruction."""
    told = "Rester à jeun depuis minuit ; préparation colique la veille au soir."
    planned = _colonoscopy("RQO", "2.16.840.1.113883.10.20.22.4.41", _instruction(told))
    msg = _normalized(_section("18776-5", "Plan de soins", planned))
    (plan,) = msg.entries[1:]
    assert (plan.type, plan.details["patient_instructions"]) == ("plan", [told])
    assert not [w for w in msg.warnings if "instruction" in w]
    bundle = to_bundle(PATIENT, [{**asdict(plan), "id": 1}])
    check_bundle(bundle)
    (request,) = [e["resource"] for e in bundle["entry"]
                  if e["resource"]["resourceType"] == "ServiceRequest"]
    assert request["patientInstruction"] == told


def test_a_procedures_instruction_is_a_note_of_the_procedure() -> None:
    """C-CDA Procedure Activity Procedure (4.14) done, with what the patient was told
    after it: details.patient_instructions, a note of the FHIR Procedure (R4 has no
    patientInstruction there). Without an instruction, nothing of the kind."""
    told = "Pas de conduite automobile dans les 24 heures."
    done = _colonoscopy("EVN", "2.16.840.1.113883.10.20.22.4.14", _instruction(told))
    plain = _colonoscopy("EVN", "2.16.840.1.113883.10.20.22.4.14", "").replace(
        "COLO-1", "COLO-2")
    procedure, other = _normalized(_section("47519-4", "Actes", done + plain)).entries[1:]
    assert procedure.details["patient_instructions"] == [told]
    assert "patient_instructions" not in other.details
    bundle = to_bundle(PATIENT, [{**asdict(procedure), "id": 1}, {**asdict(other), "id": 2}])
    check_bundle(bundle)
    first, second = [e["resource"] for e in bundle["entry"]
                     if e["resource"]["resourceType"] == "Procedure"]
    assert {"text": f"instructions to the patient (CDA instruction): {told}"} in first["note"]
    assert not second.get("note")


def test_an_instruction_alone_in_a_section_is_said_not_filed() -> None:
    """An Instruction that is an entry of its own outside a plan ('surveiller la glycémie
    capillaire matin et soir' among the medications) was dropped without a word: it is said
    CDA_NOT_FILED (its words are in the section's narrative). A medication's instruction
    is still the medication's, without a warning."""
    alone = f"""<entry><act classCode="ACT" moodCode="INT">
      <templateId root="2.16.840.1.113883.10.20.22.4.20" extension="2014-06-09"/>
      <code code="311401005" {SNOMED} displayName="Éducation du patient"/>
      <text>Surveiller la glycémie capillaire matin et soir</text>
      <statusCode code="completed"/></act></entry>"""
    metformin = f"""<entry><substanceAdministration classCode="SBADM" moodCode="INT">
      <templateId root="2.16.840.1.113883.10.20.22.4.42" extension="2014-06-09"/>
      <id root="1.2.250.1.999.25.6" extension="MET-1"/><statusCode code="active"/>
      <effectiveTime value="20240315"/>
      <consumable><manufacturedProduct><templateId root="2.16.840.1.113883.10.20.22.4.23"/>
      <manufacturedMaterial><code code="A10BA02" codeSystem="2.16.840.1.113883.6.73"
        displayName="metformine"/></manufacturedMaterial></manufacturedProduct></consumable>
      {_instruction("Au cours des repas.")}</substanceAdministration></entry>"""
    # not in the plan of care, where it is filed as a plan since round 27
    # (tests/test_cda_senders_round27.py): in the medications
    msg = _normalized(_section("10160-0", "Traitements", alone + metformin))
    (medication,) = msg.entries[1:]
    assert medication.details["patient_instructions"] == ["Au cours des repas."]
    said = [w for w in msg.warnings if w.startswith("CDA_NOT_FILED")]
    assert len(said) == 1 and "/entry[1]/act: instruction to the patient" in said[0]
