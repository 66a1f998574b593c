"""CDA R2 documents the way other senders write them (round 10: medications, vaccinations,
problems): each test builds a small invented document with one structure the standard allows
and checks what lands in the entries and in the dossier's FHIR export against what a
clinician reading the document expects."""

from __future__ import annotations

from dataclasses import asdict

from dossiers.fhir import to_bundle
from tests.test_cda_real_world import _entries, _section
from tests.test_fhir_export import VERIFICATION, check_bundle

PATIENT = {"id": 1, "family": "ESSAI", "given": "Jeanne", "birth_date": "1962-04-15",
           "sex": "F", "ins": None}
EDQM_ORAL = ('<routeCode code="20053000" codeSystem="0.4.0.127.0.16.1.1.2.1" '
             'displayName="Voie orale"/>')


def _exported(*sections: str) -> list[dict]:
    """The body's entries of a document, exported and validated as a dossier's Bundle: the
    resources, in the order of the entries."""
    rows = [{**asdict(e), "id": i} for i, e in enumerate(_entries(*sections), 1)]
    bundle = to_bundle(PATIENT, rows)
    check_bundle(bundle)
    return [item["resource"] for item in bundle["entry"][1:] if
            item["resource"]["resourceType"] != "Provenance"]


def _medication(mood: str, timing: str, dose: str = '<doseQuantity value="1"/>',
                status: str = "active", ident: str = "M1",
                drug: str = "DOLIPRANE 1000 mg, comprimé") -> str:
    return f"""<entry><substanceAdministration classCode="SBADM" moodCode="{mood}">
      <templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.7"/>
      <templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.7.1"/>
      <id root="1.2.250.1.999.3" extension="{ident}"/>
      <code code="DRUG" codeSystem="2.16.840.1.113883.5.4"/>
      <statusCode code="{status}"/>
      <effectiveTime xsi:type="IVL_TS"><low value="20240312"/><high value="20240326"/>
      </effectiveTime>{timing}{EDQM_ORAL}{dose}
      <consumable><manufacturedProduct><manufacturedMaterial>
        <code code="3400935566836" codeSystem="1.2.250.1.213.2.3.2" displayName="{drug}"/>
        <name>{drug}</name></manufacturedMaterial></manufacturedProduct></consumable>
    </substanceAdministration></entry>"""


THREE_A_DAY = """<effectiveTime xsi:type="PIVL_TS" institutionSpecified="true" operator="A">
  <period value="8" unit="h"/></effectiveTime>"""
EVERY_8_H = """<effectiveTime xsi:type="PIVL_TS" institutionSpecified="false" operator="A">
  <period value="8" unit="h"/></effectiveTime>"""
AT_BEDTIME = """<effectiveTime xsi:type="EIVL_TS" operator="A"><event code="HS"
  codeSystem="2.16.840.1.113883.5.139"/></effectiveTime>"""


# -- a prescription is no medication taken ------------------------------------------------------
def test_a_prescribed_medication_is_a_medication_request_not_one_taken() -> None:
    """A discharge prescription (moodCode INT: CI-SIS eP-MED, the 'traitements à la sortie'
    of an LDL-SES) was exported as a MedicationStatement 'active': the patient is taking
    it. It is a MedicationRequest; the medication taken (EVN) stays a statement."""
    prescribed, taken = _exported(_section("10183-2", "Traitements à la sortie",
                                           _medication("INT", THREE_A_DAY)
                                           + _medication("EVN", EVERY_8_H, ident="M2")))
    assert prescribed["resourceType"] == "MedicationRequest"
    assert prescribed["intent"] == "plan" and prescribed["status"] == "active"
    assert prescribed["medicationCodeableConcept"]["coding"][0]["code"] == "3400935566836"
    assert prescribed["dosageInstruction"][0]["route"]["coding"][0]["code"] == "20053000"
    assert taken["resourceType"] == "MedicationStatement"
    assert "dosageInstruction" not in taken and taken["dosage"]


# -- the dosing, as structured as it was sent ----------------------------------------------------
def test_frequency_event_and_duration_are_the_dosage_timing() -> None:
    """'3 fois par jour' (PIVL_TS institutionSpecified), 'toutes les 8 h' and 'au coucher'
    (EIVL_TS HS) were exported as words only, and the bedtime not at all: the dosage read
    '1' with no time of day."""
    thrice, every8, bedtime = _exported(_section("10160-0", "Traitements", (
        _medication("EVN", THREE_A_DAY) + _medication("EVN", EVERY_8_H, ident="M2")
        + _medication("EVN", AT_BEDTIME, ident="M3", drug="STILNOX 10 mg, comprimé"))))
    assert thrice["dosage"][0]["timing"]["repeat"] == {"frequency": 3, "period": 1,
                                                       "periodUnit": "d"}
    assert every8["dosage"][0]["timing"]["repeat"] == {"frequency": 1, "period": 8,
                                                       "periodUnit": "h"}
    assert bedtime["dosage"][0]["timing"]["repeat"] == {"when": ["HS"]}
    assert "HS" in bedtime["dosage"][0]["text"]


def test_rate_and_maximum_dose_are_in_the_dosage() -> None:
    """CI-SIS FR-Traitement '100 mg / jour', 'au plus 200 mg / jour' (rateQuantity,
    maxDoseQuantity): in the store, missing from the exported dosage."""
    dose = """<doseQuantity><low value="1" unit="{tbl}"/><high value="2" unit="{tbl}"/>
      </doseQuantity><rateQuantity value="100" unit="mg/d"/>
      <maxDoseQuantity><numerator value="200" unit="mg"/><denominator value="1" unit="d"/>
      </maxDoseQuantity>"""
    (res,) = _exported(_section("10160-0", "Traitements",
                                _medication("EVN", EVERY_8_H, dose=dose)))
    text = res["dosage"][0]["text"]
    assert "1-2 {tbl}" in text and "100 mg/d" in text and "200 mg/1 d" in text


# -- vaccinations: what was given, or why not ---------------------------------------------------
def _vaccination(negated: str = "", reason: str = "", when: str = "20240115") -> str:
    return f"""<entry><substanceAdministration classCode="SBADM" moodCode="EVN"{negated}>
      <templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.12"/>
      <templateId root="2.16.840.1.113883.10.20.22.4.52" extension="2015-08-01"/>
      <id root="1.2.250.1.999.5" extension="V-{when}"/>
      <code code="IMMUNIZ" codeSystem="2.16.840.1.113883.5.4"/>
      <statusCode code="completed"/><effectiveTime value="{when}"/>
      <routeCode code="20035000" codeSystem="0.4.0.127.0.16.1.1.2.1"
        displayName="Voie intramusculaire"/>
      <doseQuantity value="0.5" unit="mL"/>
      <consumable><manufacturedProduct><manufacturedMaterial>
        <code code="J07CA02" codeSystem="2.16.840.1.113883.6.73"
          displayName="diphtérie-poliomyélite-tétanos-coqueluche"/>
        <name>REPEVAX</name><lotNumberText>X5T31</lotNumberText>
      </manufacturedMaterial></manufacturedProduct></consumable>
      <entryRelationship typeCode="SUBJ"><observation classCode="OBS" moodCode="EVN">
        <templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.13"/>
        <code code="30973-2" codeSystem="2.16.840.1.113883.6.1"/>
        <statusCode code="completed"/><value xsi:type="INT" value="3"/></observation>
      </entryRelationship>{reason}
    </substanceAdministration></entry>"""


REFUSED = """<entryRelationship typeCode="RSON"><act classCode="ACT" moodCode="EVN">
  <templateId root="2.16.840.1.113883.10.20.22.4.53"/>
  <code code="PATOBJ" codeSystem="2.16.840.1.113883.5.8" displayName="objection du patient"/>
  <statusCode code="completed"/></act></entryRelationship>"""


def test_a_vaccination_exports_its_lot_dose_number_and_route() -> None:
    """The lot (traceability, 'rappel' recall), the rank in the series ('3e dose') and the
    route were read into the store and left out of the Immunization."""
    (res,) = _exported(_section("11369-6", "Vaccinations", _vaccination()))
    assert res["status"] == "completed" and res["occurrenceDateTime"] == "2024-01-15"
    assert res["lotNumber"] == "X5T31"
    assert res["protocolApplied"] == [{"doseNumberPositiveInt": 3}]
    assert res["route"]["coding"][0]["code"] == "20035000"
    assert res["doseQuantity"]["value"] == 0.5 and res["doseQuantity"]["code"] == "mL"


def test_a_refused_vaccination_says_why_it_was_not_done() -> None:
    """negationInd with a refusal reason (C-CDA 4.53 'PATOBJ'): not-done, and the reason
    (statusReason) was dropped from the export."""
    (res,) = _exported(_section("11369-6", "Vaccinations",
                                _vaccination(' negationInd="true"', REFUSED)))
    assert res["status"] == "not-done"
    assert res["statusReason"]["coding"][0]["code"] == "PATOBJ"
    assert "protocolApplied" not in res  # no dose of the series was given


# -- problems: resolved is not active ------------------------------------------------------------
def _concern(concern: str, problems: str) -> str:
    return f"""<entry><act classCode="ACT" moodCode="EVN">
      <templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.5.2"/>
      <id root="1.2.250.1.999.4" extension="C1"/><code nullFlavor="NA"/>
      <statusCode code="{concern}"/><effectiveTime><low value="2010"/></effectiveTime>
      {problems}</act></entry>"""


def _problem(ident: str, code: str, name: str, period: str, status: str = "") -> str:
    return f"""<entryRelationship typeCode="SUBJ"><observation classCode="OBS" moodCode="EVN">
      <templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.5"/>
      <id root="1.2.250.1.999.4" extension="{ident}"/>
      <code code="282291009" codeSystem="2.16.840.1.113883.6.96"/>
      <statusCode code="completed"/><effectiveTime>{period}</effectiveTime>
      <value xsi:type="CD" code="{code}" codeSystem="2.16.840.1.113883.6.3"
        displayName="{name}"/>{status}</observation></entryRelationship>"""


ACTIVE = """<entryRelationship typeCode="REFR"><observation classCode="OBS" moodCode="EVN">
  <templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.1.1"/>
  <code code="33999-4" codeSystem="2.16.840.1.113883.6.1"/><statusCode code="completed"/>
  <value xsi:type="CD" code="55561003" codeSystem="2.16.840.1.113883.6.96"
    displayName="Active"/></observation></entryRelationship>"""


def test_a_problem_resolved_under_an_active_concern_is_resolved() -> None:
    """IHE PCC: the concern (act) is still followed, its asthma ended in 2015 (the problem's
    effectiveTime/high): it was exported 'active' with an abatement date, which R4 forbids
    (con-4) and reads as an ongoing asthma. The diabetes beside it, not ended, stays active."""
    asthma, diabetes = _exported(_section("11450-4", "Problèmes", _concern("active", (
        _problem("P1", "J45.9", "Asthme", '<low value="2010"/><high value="20150601"/>')
        + _problem("P2", "E11.9", "Diabète de type 2", '<low value="2016"/>')))))
    assert asthma["clinicalStatus"]["coding"][0]["code"] == "resolved"
    assert asthma["abatementDateTime"] == "2015-06-01"
    assert diabetes["clinicalStatus"]["coding"][0]["code"] == "active"
    assert "abatementDateTime" not in diabetes


def test_a_problem_said_active_with_an_end_keeps_the_senders_status() -> None:
    """The status observation says active, the effectiveTime has a high: the sender's word
    is kept and the end date is said in a note, not as an abatement (con-4)."""
    (res,) = _exported(_section("11450-4", "Problèmes", _concern("active", _problem(
        "P1", "I10", "Hypertension artérielle", '<low value="2010"/><high value="20250101"/>',
        ACTIVE))))
    assert res["clinicalStatus"]["coding"][0]["code"] == "active"
    assert "abatementDateTime" not in res
    assert any("2025-01-01" in n["text"] for n in res["note"])


def _status_observation(code: str, system: str) -> str:
    return f"""<entryRelationship typeCode="REFR"><observation classCode="OBS" moodCode="EVN">
      <templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.1.1"/>
      <templateId root="1.2.250.1.213.1.1.3.30"/>
      <code code="33999-4" codeSystem="2.16.840.1.113883.6.1"/><statusCode code="completed"/>
      <value xsi:type="CE" code="{code}" codeSystem="{system}"/></observation>
      </entryRelationship>"""


ALLERGY = """<entry><act classCode="ACT" moodCode="EVN">
  <templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.5.3"/>
  <id root="1.2.250.1.999.6" extension="AC1"/><code nullFlavor="NA"/>
  <statusCode code="active"/><effectiveTime><low value="2015"/></effectiveTime>
  <entryRelationship typeCode="SUBJ"><observation classCode="OBS" moodCode="EVN">
    <templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.6"/>
    <id root="1.2.250.1.999.6" extension="A1"/>
    <code code="DALG" codeSystem="2.16.840.1.113883.5.4"/><statusCode code="completed"/>
    <effectiveTime><low value="2015"/></effectiveTime>
    <value xsi:type="CD" code="DALG" codeSystem="2.16.840.1.113883.5.4"/>
    <participant typeCode="CSM"><participantRole classCode="MANU"><playingEntity classCode="MMAT">
      <code code="J01CA04" codeSystem="2.16.840.1.113883.6.73" displayName="amoxicilline"/>
    </playingEntity></participantRole></participant>{status}</observation></entryRelationship>
</act></entry>"""


def test_a_clinical_status_coded_in_fhir_terms_is_the_exported_one() -> None:
    """CI-SIS FR-Statut-du-probleme (IPS-FR, CARD-F-PRC) codes the status with the FHIR
    code systems ('recurrence' in condition-clinical, 2.16.840.1.113883.4.642.1.1074;
    'inactive' in allergyintolerance-clinical, .4.642.4.1373), not SNOMED CT: the export
    knew only SNOMED CT and fell back on the concern, 'active'."""
    problem, allergy = _exported(_section("11450-4", "Problèmes", _concern("active", _problem(
        "P1", "I48", "Fibrillation auriculaire", '<low value="2019"/>',
        _status_observation("recurrence", "2.16.840.1.113883.4.642.1.1074")))),
        _section("48765-2", "Allergies", ALLERGY.format(status=_status_observation(
            "inactive", "2.16.840.1.113883.4.642.4.1373"))))
    assert problem["resourceType"] == "Condition"
    assert problem["clinicalStatus"]["coding"][0]["code"] == "recurrence"
    assert allergy["resourceType"] == "AllergyIntolerance"
    assert allergy["clinicalStatus"]["coding"][0]["code"] == "inactive"


def _step(sequence: int, start: str, days: int, hours: int) -> str:
    return f"""<entryRelationship typeCode="COMP"><sequenceNumber value="{sequence}"/>
      <substanceAdministration classCode="SBADM" moodCode="INT">
      <templateId root="1.2.250.1.213.1.1.3.83.1"/><statusCode code="completed"/>
      <effectiveTime xsi:type="SXPR_TS"><comp xsi:type="IVL_TS" operator="A">
        <low value="{start}"/><width value="{days}" unit="d"/></comp>
        <comp xsi:type="PIVL_TS" operator="A"><period value="{hours}" unit="h"/></comp>
      </effectiveTime>
      <doseQuantity><low value="1" unit="{{tablet}}"/><high value="2" unit="{{tablet}}"/>
      </doseQuantity>
      <consumable><manufacturedProduct><manufacturedMaterial><code nullFlavor="NA"/>
      </manufacturedMaterial></manufacturedProduct></consumable>
      </substanceAdministration></entryRelationship>"""


def test_a_prescription_in_steps_exports_each_step() -> None:
    """eP-MED structured posology (FR-Traitement-prescrit-subordonnee): 1 to 2 tablets every
    8 h for 2 days, then every 12 h for 4 days. The steps were in the store, and the
    exported prescription said no dose nor frequency at all."""
    steps = _step(1, "20211201", 2, 8) + _step(2, "20211203", 4, 12)
    prescription = _medication("INT", "", dose="", drug="PARACETAMOL MYLAN 500 mg, comprimé"
                               ).replace("</substanceAdministration></entry>",
                                         steps + "</substanceAdministration></entry>")
    (res,) = _exported(_section("57828-6", "Prescription", prescription))
    first, second = res["dosageInstruction"]
    assert (first["sequence"], second["sequence"]) == (1, 2)
    assert first["timing"]["repeat"] == {"frequency": 1, "period": 8, "periodUnit": "h",
                                         "boundsDuration": {"value": 2, "unit": "d",
                                                            "system": "http://unitsofmeasure.org",
                                                            "code": "d"}}
    assert second["timing"]["repeat"]["period"] == 12
    assert "1-2 {tablet}" in first["text"] and "every 12 h" in second["text"]
    assert first["route"]["coding"][0]["code"] == "20053000"


# -- the dosing of a medication, as the document says it ---------------------------------------
MORNING_AND_EVENING = """<effectiveTime xsi:type="SXPR_TS" operator="A">
  <comp xsi:type="PIVL_TS" institutionSpecified="false"><phase><low value="202403120800"/>
    </phase><period value="1" unit="d"/></comp>
  <comp xsi:type="PIVL_TS" institutionSpecified="false" operator="I"><phase>
    <low value="202403122000"/></phase><period value="1" unit="d"/></comp></effectiveTime>"""
WAKING_AND_BEDTIME = """<effectiveTime xsi:type="SXPR_TS" operator="A">
  <comp xsi:type="EIVL_TS"><event code="WAKE"/></comp>
  <comp xsi:type="EIVL_TS" operator="I"><event code="HS"/></comp></effectiveTime>"""


def test_two_times_a_day_united_are_twice_a_day() -> None:
    """IHE PCC 'matin et soir': two PIVL_TS of one day, at 08:00 and 20:00, united (SXPR_TS
    operator I). The second overwrote the first: filed 'every 1 d', half the dose."""
    entry, = _entries(_section("10160-0", "Traitements",
                               _medication("EVN", MORNING_AND_EVENING)))
    assert entry.details["frequency"] == "2 times a day"
    assert entry.details["times_of_day"] == ["08:00", "20:00"]
    (res,) = _exported(_section("10160-0", "Traitements",
                                _medication("EVN", MORNING_AND_EVENING)))
    assert res["dosage"][0]["timing"]["repeat"] == {
        "frequency": 2, "period": 1, "periodUnit": "d", "timeOfDay": ["08:00:00", "20:00:00"]}
    assert "2 times a day; at 08:00, 20:00" in res["dosage"][0]["text"]


def test_two_events_united_are_both_kept() -> None:
    """'au lever et au coucher' (EIVL_TS WAKE and HS united): only the last was kept."""
    entry, = _entries(_section("10160-0", "Traitements",
                               _medication("EVN", WAKING_AND_BEDTIME)))
    assert entry.details["event"] == "WAKE, HS"
    (res,) = _exported(_section("10160-0", "Traitements",
                                _medication("EVN", WAKING_AND_BEDTIME)))
    assert res["dosage"][0]["timing"]["repeat"] == {"when": ["WAKE", "HS"]}


def test_one_frequency_intersected_with_the_period_is_unchanged() -> None:
    """The common case stays as it was: IVL_TS and one PIVL_TS operator A."""
    entry, = _entries(_section("10160-0", "Traitements", _medication("EVN", EVERY_8_H)))
    assert entry.details["frequency"] == "every 8 h" and "times_of_day" not in entry.details


def test_a_dose_counted_in_administration_units_says_them_in_the_dosage() -> None:
    """C-CDA doseQuantity 1 and administrationUnitCode 'comprimé' (NCI C48542): the store
    keeps the unit (details.administration_unit), the exported dosage read '1' of nothing."""
    unit = ('<doseQuantity value="1"/><administrationUnitCode code="C48542" '
            'codeSystem="2.16.840.1.113883.3.26.1.1" displayName="comprimé"/>')
    (res,) = _exported(_section("10160-0", "Traitements",
                                _medication("EVN", THREE_A_DAY, dose=unit)))
    assert res["dosage"][0]["text"].startswith("1 comprimé; 3 times a day")


EP_MED_PARTS = """<entryRelationship typeCode="SUBJ" inversionInd="true">
  <act classCode="ACT" moodCode="INT">
    <templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.3"/>
    <code code="PINSTRUCT" codeSystem="1.3.6.1.4.1.19376.1.5.3.2"/>
    <text>À prendre au cours d'un repas</text><statusCode code="completed"/></act>
  </entryRelationship>
  <entryRelationship typeCode="COMP"><supply classCode="SPLY" moodCode="RQO">
    <templateId root="1.3.6.1.4.1.19376.1.9.1.3.8"/><independentInd value="false"/>
    <quantity value="2" unit="30009000"/></supply></entryRelationship>
  <entryRelationship typeCode="COMP"><act classCode="ACT" moodCode="DEF">
    <templateId root="1.3.6.1.4.1.19376.1.9.1.3.9.1"/>
    <code code="N" codeSystem="2.16.840.1.113883.5.1070"
      displayName="Aucune substitution permise"/><statusCode code="completed"/></act>
  </entryRelationship>"""


def test_a_prescriptions_renewals_quantity_substitution_and_instructions_are_exported() -> None:
    """eP-MED: 'à renouveler 3 fois', 2 boxes, 'non substituable', 'à prendre au cours d'un
    repas' were in the store and out of the exported prescription: a pharmacist reading it
    could substitute a drug the prescriber forbade substituting."""
    prescription = _medication("INT", THREE_A_DAY).replace(
        '<templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.7.1"/>',
        '<templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.7.1"/>'
        '<templateId root="1.3.6.1.4.1.19376.1.9.1.3.2"/>').replace(
        "</consumable>", "</consumable>" + EP_MED_PARTS).replace(
        EDQM_ORAL, '<repeatNumber value="3"/>' + EDQM_ORAL)
    (res,) = _exported(_section("57828-6", "Prescription", prescription))
    assert res["resourceType"] == "MedicationRequest"
    assert res["substitution"] == {"allowedBoolean": False}
    assert res["dispenseRequest"]["numberOfRepeatsAllowed"] == 3
    assert res["dispenseRequest"]["quantity"]["value"] == 2
    assert res["dispenseRequest"]["validityPeriod"]["start"] == "2024-03-12"
    assert res["dosageInstruction"][0]["patientInstruction"] == "À prendre au cours d'un repas"


def test_a_medications_free_text_sig_is_kept_and_is_the_dosage_text() -> None:
    """C-CDA R2.1 Medication Free Text Sig (4.147): the prescriber's words for the whole
    posology ('1 comprimé matin et soir pendant 10 jours'). It was skipped: what the
    structured dosing could not say was lost."""
    sig = """<entryRelationship typeCode="COMP"><substanceAdministration classCode="SBADM"
      moodCode="EVN"><templateId root="2.16.840.1.113883.10.20.22.4.147"/>
      <code code="76662-6" codeSystem="2.16.840.1.113883.6.1"/>
      <text><reference value="#sig1"/></text>
      <consumable><manufacturedProduct><manufacturedMaterial nullFlavor="NA"/>
      </manufacturedProduct></consumable></substanceAdministration></entryRelationship>"""
    med = _medication("EVN", THREE_A_DAY).replace("</consumable>", "</consumable>" + sig)
    narrative = '<paragraph ID="sig1">1 comprimé matin, midi et soir pendant 10 jours</paragraph>'
    entry, = _entries(_section("10160-0", narrative, med))
    assert entry.details["sig"] == ["1 comprimé matin, midi et soir pendant 10 jours"]
    (res,) = _exported(_section("10160-0", narrative, med))
    assert res["dosage"][0]["text"].startswith("1 comprimé matin, midi et soir pendant 10 "
                                               "jours; 1; 3 times a day")


def _certainty(code: str, system: str = "2.16.840.1.113883.4.642.1.1075") -> str:
    return f"""<entryRelationship typeCode="SUBJ" inversionInd="true">
      <observation classCode="OBS" moodCode="EVN">
      <templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.13"/>
      <templateId root="1.2.250.1.213.1.1.3.171"/>
      <code code="66455-7" codeSystem="2.16.840.1.113883.6.1" displayName="Certitude"/>
      <statusCode code="completed"/><value xsi:type="CD" code="{code}"
        codeSystem="{system}"/></observation></entryRelationship>"""


def test_a_refuted_or_provisional_diagnosis_says_so_in_the_export() -> None:
    """CI-SIS FR-Certitude (IPS-FR: condition-ver-status codes; eHDSI: SNOMED CT qualifiers)
    says a diagnosis is refuted ('infirmé') or only suspected: it was read into
    details.certainty and exported as a plain Condition, read as a diagnosis made."""
    refuted, suspected, confirmed = _exported(_section("11450-4", "Problèmes", _concern(
        "active", _problem("P1", "C34.9", "Cancer du poumon", '<low value="2023"/>',
                           _certainty("refuted"))
        + _problem("P2", "I26.9", "Embolie pulmonaire", '<low value="2024"/>',
                   _certainty("415684004", "2.16.840.1.113883.6.96"))
        + _problem("P3", "E11.9", "Diabète de type 2", '<low value="2016"/>',
                   _certainty("confirmed")))))

    def verification(res: dict) -> str:
        return res["verificationStatus"]["coding"][0]["code"]

    assert verification(refuted) == "refuted"
    assert verification(suspected) == "provisional"
    assert verification(confirmed) == "confirmed"


def test_the_certainty_table_stays_in_the_r4_value_sets() -> None:
    from dossiers.fhir.conditions import verification_statuses

    for row in verification_statuses().values():
        for resource, allowed in VERIFICATION.items():
            assert row[resource] in allowed, row


def _qualifier(code: str, value: str, system: str) -> str:
    return f"""<entryRelationship typeCode="SUBJ" inversionInd="true">
      <observation classCode="OBS" moodCode="EVN">
      <code code="{code}" codeSystem="{'2.16.840.1.113883.6.1' if '-' in code else
                                       '2.16.840.1.113883.5.4'}"/>
      <statusCode code="completed"/><value xsi:type="CD" code="{value}"
        codeSystem="{system}"/></observation></entryRelationship>"""


def test_severity_criticality_and_certainty_of_an_allergy_and_a_problem() -> None:
    """The problem's severity (HL7 SEV, SNOMED CT 'sévère') and the allergy's criticality
    (CI-SIS FR-Criticite, FHIR codes) were read and not exported; the IPS-FR example codes
    an allergy's certainty 'confirmed' under another FHIR code system's OID (.4.642.4.130):
    the code is FHIR's all the same."""
    problem, allergy = _exported(
        _section("11450-4", "Problèmes", _concern("active", _problem(
            "P1", "J45.9", "Asthme", '<low value="2010"/>',
            _qualifier("SEV", "24484000", "2.16.840.1.113883.6.96"))))
        + _section("48765-2", "Allergies", ALLERGY.format(
            status=_qualifier("82606-5", "high", "2.16.840.1.113883.4.642.4.130")
            + _certainty("confirmed", "2.16.840.1.113883.4.642.4.130"))))
    assert problem["severity"]["coding"][0]["code"] == "24484000"
    assert allergy["criticality"] == "high"
    assert allergy["verificationStatus"]["coding"][0]["code"] == "confirmed"


def test_a_reaction_to_a_vaccination_says_which_vaccination() -> None:
    """IHE PCC / CI-SIS FR-Vaccination: the fever it caused is a problem entry under
    entryRelationship CAUS. It was filed as an unrelated problem; it is still filed, and
    says which vaccination it is the reaction to (as an allergy's manifestation does)."""
    fever = """<entryRelationship typeCode="CAUS" inversionInd="false">
      <observation classCode="OBS" moodCode="EVN">
      <templateId root="2.16.840.1.113883.10.20.1.54"/>
      <templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.5"/>
      <id root="1.2.250.1.999.5" extension="R1"/>
      <code code="418799008" codeSystem="2.16.840.1.113883.6.96"/>
      <statusCode code="completed"/><effectiveTime><low value="20240116"/></effectiveTime>
      <value xsi:type="CD" code="R50.2" codeSystem="2.16.840.1.113883.6.3"
        displayName="Fièvre due à des médicaments"/></observation></entryRelationship>"""
    vaccination, reaction = _entries(_section("11369-6", "Vaccinations",
                                              _vaccination(reason=fever)))
    assert (vaccination.type, reaction.type, reaction.code) == ("immunization", "problem",
                                                                "R50.2")
    assert reaction.details["reaction_to"] == vaccination.key


def test_the_diseases_a_vaccination_targets_are_in_its_protocol() -> None:
    """eHDSI: the diseases a combined vaccine protects against (participant IND, AGNT) were
    read (details.target_diseases) and not exported with the dose of the series they
    count for (protocolApplied.targetDisease)."""
    targets = """</consumable>
      <participant typeCode="IND"><participantRole classCode="AGNT">
        <code code="76902006" codeSystem="2.16.840.1.113883.6.96" displayName="tétanos"/>
        <playingEntity classCode="ENT"/></participantRole></participant>
      <participant typeCode="IND"><participantRole classCode="AGNT">
        <code nullFlavor="OTH"><originalText>diphtérie</originalText></code>
        <playingEntity classCode="ENT"/></participantRole></participant>"""
    (res,) = _exported(_section("11369-6", "Vaccinations",
                                _vaccination().replace("</consumable>", targets)))
    protocol, = res["protocolApplied"]
    assert protocol["doseNumberPositiveInt"] == 3
    assert [t.get("text") for t in protocol["targetDisease"]] == ["tétanos", "diphtérie"]
    assert protocol["targetDisease"][0]["coding"][0]["code"] == "76902006"


def test_a_medication_in_the_plan_of_care_is_a_medication_request() -> None:
    """A medication to start (C-CDA Planned Medication Activity, IPS-FR plan de soins: moodCode
    INT in the plan of treatment section) is filed as a plan; it was exported as a
    ServiceRequest coded with a drug, which R4 reserves for services (medications are
    MedicationRequests)."""
    (res,) = _exported(_section("18776-5", "Plan de soins", _medication(
        "INT", EVERY_8_H, drug="ROSUVASTATINE EG 5 mg, comprimé pelliculé")))
    assert res["resourceType"] == "MedicationRequest" and res["intent"] == "plan"
    assert res["medicationCodeableConcept"]["text"] == "ROSUVASTATINE EG 5 mg, comprimé pelliculé"
    assert res["dosageInstruction"][0]["timing"]["repeat"]["period"] == 8
