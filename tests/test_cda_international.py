"""C-CDA R2.1 documents as US EHRs export them (Epic, Oracle Health, athena, eClinicalWorks)
and HL7 IPS documents, as a French patient treated abroad brings them home: structures the
CI-SIS examples never use, each in a small document checked against what a clinician reading
it would file (round 8 of the CDA real-world cases, after tests/test_cda_real_world.py)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from normalizers.cda import normalize_cda
from normalizers.model import Entry, NormalizedMessage
from parsers.cda import parse_cda

# A C-CDA R2.1 header (US Realm Header) of a French patient seen in Boston: its time carries
# its offset (-0500, EST), its body's times do not, as Epic and Cerner write them.
CCDA_HEAD = """<?xml version="1.0" encoding="UTF-8"?>
<ClinicalDocument xmlns="urn:hl7-org:v3" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
    xmlns:sdtc="urn:hl7-org:sdtc">
  <realmCode code="US"/>
  <typeId root="2.16.840.1.113883.1.3" extension="POCD_HD000040"/>
  <templateId root="2.16.840.1.113883.10.20.22.1.1" extension="2015-08-01"/>
  <templateId root="2.16.840.1.113883.10.20.22.1.2" extension="2015-08-01"/>
  <id root="1.2.840.114350.1.13.531.3.7.8.688883.567421" extension="CCD-2024-0315"/>
  <code code="34133-9" codeSystem="2.16.840.1.113883.6.1" displayName="Summary of episode note"/>
  <title>Continuity of Care Document</title>
  <effectiveTime value="{effective}"/>
  <confidentialityCode code="N" codeSystem="2.16.840.1.113883.5.25"/>
  <languageCode code="en-US"/>
  <recordTarget><patientRole>
    <id root="1.2.840.114350.1.13.531.2.7.5.737384.14" extension="E84215"/>
    <patient><name use="L"><given>Hélène</given><family>Lefèvre</family></name>
      <administrativeGenderCode code="F" codeSystem="2.16.840.1.113883.5.1"/>
      <birthTime value="19680314"/></patient>
  </patientRole></recordTarget>
  <author><time value="{effective}"/><assignedAuthor>
    <id root="2.16.840.1.113883.4.6" extension="1538246790"/>
    <assignedPerson><name><given>Sarah</given><family>O'Connell</family></name></assignedPerson>
  </assignedAuthor></author>
  <custodian><assignedCustodian><representedCustodianOrganization>
    <id root="2.16.840.1.113883.4.6" extension="1972845630"/><name>Beacon Hill Medical Center</name>
  </representedCustodianOrganization></assignedCustodian></custodian>
  <component><structuredBody>
"""
TAIL = "</structuredBody></component></ClinicalDocument>"


def section(code: str, narrative: str, entries: str) -> str:
    return (f'<component><section><code code="{code}" codeSystem="2.16.840.1.113883.6.1"/>'
            f"<title>Section</title><text>{narrative}</text>{entries}</section></component>")


def normalized(*sections: str, effective: str = "20240315143200-0500") -> NormalizedMessage:
    data = (CCDA_HEAD.format(effective=effective) + "".join(sections) + TAIL).encode()
    return normalize_cda(parse_cda(data), data, "test")


def entries(*sections: str, effective: str = "20240315143200-0500") -> list[Entry]:
    return normalized(*sections, effective=effective).entries[1:]


# -- times without offset are the sender's local time ------------------------------------------
VITALS = """<entry><organizer classCode="CLUSTER" moodCode="EVN">
  <templateId root="2.16.840.1.113883.10.20.22.4.26" extension="2015-08-01"/>
  <id root="c6f88320-67ad-11db-bd13-0800200c9a66"/>
  <code code="46680005" codeSystem="2.16.840.1.113883.6.96" displayName="Vital Signs"/>
  <statusCode code="completed"/><effectiveTime value="20240315101500"/>
  <component><observation classCode="OBS" moodCode="EVN">
    <templateId root="2.16.840.1.113883.10.20.22.4.27" extension="2014-06-09"/>
    <id root="c6f88321-67ad-11db-bd13-0800200c9a66"/>
    <code code="8480-6" codeSystem="2.16.840.1.113883.6.1" displayName="Systolic blood pressure"/>
    <statusCode code="completed"/><effectiveTime value="20240315101500"/>
    <value xsi:type="PQ" value="132" unit="mm[Hg]"/></observation></component>
</organizer></entry>"""


@pytest.mark.parametrize(("effective", "expected"), [
    ("20240315143200-0500", "2024-03-15T10:15:00-05:00"),  # Boston, EST
    ("20240315143200-0400", "2024-03-15T10:15:00-04:00"),  # Guadeloupe, a US EHR in summer
    ("20240315143200+0100", "2024-03-15T10:15:00+01:00"),  # Paris
    ("20240715143200+0100", "2024-03-15T10:15:00+01:00"),  # a French sender's fixed '+0100'
    ("20240715143200+0200", "2024-03-15T10:15:00+01:00"),  # Paris in summer
    ("20240115143200+0200", "2024-03-15T10:15:00+02:00"),  # Athens in winter
    ("20240315143200+0000", "2024-03-15T10:15:00+01:00"),  # a server clock in UTC
    ("20240315", "2024-03-15T10:15:00+01:00"),  # no time: nothing said against Paris
])
def test_times_without_offset_are_read_at_the_documents_own_offset(effective: str,
                                                                   expected: str) -> None:
    """The body's times without offset were read at Paris's: a US document's vital signs
    taken at 10:15 in Boston were filed at 10:15 Paris time, six hours early, and a result
    received again by HL7v2 (read at its MSH-7 offset) was another fact. The document's own
    effectiveTime says where its sender is, as MSH-7 does (Paris's offsets, whatever the
    season, and UTC say nothing against Paris)."""
    bp, = entries(section("8716-3", "BP 132", VITALS), effective=effective)
    assert bp.effective == expected


def test_a_declared_source_zone_wins_over_the_documents_offset() -> None:
    data = (CCDA_HEAD.format(effective="20240315143200-0500")
            + section("8716-3", "BP 132", VITALS) + TAIL).encode()
    msg = normalize_cda(parse_cda(data), data, "test", zone="America/Guadeloupe")
    assert msg.entries[1].effective == "2024-03-15T10:15:00-04:00"
    again = normalize_cda(parse_cda(data), data, "test")  # the zone was this call's only
    assert again.entries[1].effective == "2024-03-15T10:15:00-05:00"


def test_processing_reads_a_cda_in_the_zone_its_source_declared(ctx) -> None:  # noqa: ANN001
    """Through the pipeline: a CDA from a source declared in La Réunion (a lab writing
    '+0100' nowhere, times without offset) is read at +04:00, as its HL7v2 results are."""
    from dataclasses import replace

    from pipelines.dossier_admin import DossierInput, create_dossiers
    from pipelines.intake import Received, intake
    from pipelines.process import drain
    from pipelines.report import show_dossier, show_import

    create_dossiers(ctx.engine, [DossierInput("Lefèvre", "Hélène", "1968-03-14", "F",
                                              ins="268036912354128")])
    ctx.settings = replace(ctx.settings, source_timezones={"labo-reunion": "Indian/Reunion"})
    head = CCDA_HEAD.format(effective="20240315143200").replace(
        '<id root="1.2.840.114350.1.13.531.2.7.5.737384.14" extension="E84215"/>',
        '<id root="1.2.250.1.213.1.4.8" extension="268036912354128"/>')
    data = (head + section("8716-3", "BP 132", VITALS) + TAIL).encode()
    ids = intake(ctx.engine, ctx.archive, [Received(data=data, source="labo-reunion",
                                                    channel="file")])[0].message_ids
    drain(ctx)
    shown = show_import(ctx.engine, ids[0])
    assert shown["status"] == "deposited", shown
    times = [e["effective"] for e in show_dossier(ctx.engine, str(shown["patient_id"]))["entries"]
             if e["type"] == "vital_sign"]
    assert times == ["2024-03-15T10:15:00+04:00"]


# -- 'no known allergies / problems / medications' is no allergy, problem or medication ------
IPS_ABSENT = "2.16.840.1.113883.5.1150.1"


def allergy(value: str, participant: str, neg: str = ' negationInd="true"') -> str:
    """A C-CDA R2.1 Allergy Concern Act holding an Allergy - Intolerance Observation."""
    return f"""<entry typeCode="DRIV"><act classCode="ACT" moodCode="EVN">
      <templateId root="2.16.840.1.113883.10.20.22.4.30" extension="2015-08-01"/>
      <id root="36e3e930-7b14-11db-9fe1-0800200c9a66"/>
      <code code="CONC" codeSystem="2.16.840.1.113883.5.6"/><statusCode code="active"/>
      <effectiveTime><low value="20240315"/></effectiveTime>
      <entryRelationship typeCode="SUBJ"><observation classCode="OBS" moodCode="EVN"{neg}>
        <templateId root="2.16.840.1.113883.10.20.22.4.7" extension="2014-06-09"/>
        <id root="4adc1020-7b14-11db-9fe1-0800200c9a66"/>
        <code code="ASSERTION" codeSystem="2.16.840.1.113883.5.4"/>
        <statusCode code="completed"/><effectiveTime><low nullFlavor="NA"/></effectiveTime>
        {value}{participant}
      </observation></entryRelationship></act></entry>"""


def snomed(code: str, display: str) -> str:
    return (f'<value xsi:type="CD" code="{code}" codeSystem="2.16.840.1.113883.6.96" '
            f'displayName="{display}"/>')


NO_SUBSTANCE = """<participant typeCode="CSM"><participantRole classCode="MANU">
  <playingEntity classCode="MMAT"><code nullFlavor="NA"/></playingEntity>
  </participantRole></participant>"""


@pytest.mark.parametrize(("statement", "absent_code"), [
    # C-CDA R2.1: negated, value 'allergy to substance', the substance nullFlavor NA
    (allergy(snomed("419199007", "Allergy to substance (disorder)"), NO_SUBSTANCE),
     "no-known-allergies"),
    # ... with no participant at all (athena, eClinicalWorks)
    (allergy(snomed("419199007", "Allergy to substance (disorder)"), ""), "no-known-allergies"),
    # negated 'drug allergy': no known drug allergies (NKDA)
    (allergy(snomed("416098002", "Drug allergy (disorder)"), NO_SUBSTANCE),
     "no-known-medication-allergies"),
])
def test_negated_generic_allergy_is_no_known_allergies(statement: str, absent_code: str) -> None:
    """'No known allergies' as C-CDA writes it was filed as an allergy 'Allergy to
    substance' flagged negated (a refuted AllergyIntolerance of nothing in FHIR): it is the
    absence an IPS document codes 'no-known-allergies', filed as such, what was sent kept."""
    got, = entries(section("48765-2", "No Known Allergies", statement))
    assert (got.type, got.code, got.system, got.value) == ("absence", absent_code, IPS_ABSENT,
                                                           None)
    assert got.details["absent"] == "allergy"
    assert "negated" not in got.details
    assert got.details["absent_as_sent"]["system"] == "SNOMED-CT"


def test_no_known_allergy_situation_codes_are_absences() -> None:
    """SNOMED CT 'No known allergy' (716186003), as the allergy's value, affirmed: it was
    filed as the patient's allergy 'No known allergy (situation)', concern active."""
    got = entries(section("48765-2", "NKA", allergy(
        snomed("716186003", "No known allergy (situation)"), "", neg="")
        + allergy(snomed("429625007", "No known food allergy (situation)"), "", neg="")
        .replace("4adc1020", "5adc1020")))
    assert [(e.type, e.code, e.details["absent"]) for e in got] == [
        ("absence", "716186003", "allergy"), ("absence", "429625007", "allergy")]


def test_negated_allergy_to_a_named_substance_stays_a_negated_allergy() -> None:
    """'Not allergic to penicillin' is a statement about penicillin, not an empty list."""
    coded = """<participant typeCode="CSM"><participantRole classCode="MANU">
      <playingEntity classCode="MMAT"><code code="7980" codeSystem="2.16.840.1.113883.6.88"
        displayName="Penicillin G"/></playingEntity></participantRole></participant>"""
    words = """<participant typeCode="CSM"><participantRole classCode="MANU">
      <playingEntity classCode="MMAT"><code nullFlavor="OTH"><originalText>Latex
      </originalText></code></playingEntity></participantRole></participant>"""
    got = entries(section("48765-2", "", allergy(snomed("419199007", "Allergy to substance"),
                                                 coded)
                          + allergy(snomed("419199007", "Allergy to substance"), words)
                          .replace("4adc1020", "5adc1020")))
    assert [(e.type, e.code, e.details.get("negated")) for e in got] == [
        ("allergy", "7980", True), ("allergy", "419199007", True)]
    assert got[1].details["allergen_text"] == "Latex"


NO_KNOWN_PROBLEMS = """<entry><act classCode="ACT" moodCode="EVN">
  <templateId root="2.16.840.1.113883.10.20.22.4.3" extension="2015-08-01"/>
  <id root="ec8a6ff8-ed4b-4f7e-82c3-e98e58b45de7"/>
  <code code="CONC" codeSystem="2.16.840.1.113883.5.6"/><statusCode code="active"/>
  <entryRelationship typeCode="SUBJ"><observation classCode="OBS" moodCode="EVN"
    negationInd="true"><templateId root="2.16.840.1.113883.10.20.22.4.4" extension="2015-08-01"/>
    <id root="ab1791b0-5c71-11db-b0de-0800200c9a66"/>
    <code code="55607006" codeSystem="2.16.840.1.113883.6.96" displayName="Problem">
      <translation code="75326-9" codeSystem="2.16.840.1.113883.6.1"/></code>
    <statusCode code="completed"/><effectiveTime><low nullFlavor="NA"/></effectiveTime>
    <value xsi:type="CD" code="55607006" codeSystem="2.16.840.1.113883.6.96"
      displayName="Problem"/></observation></entryRelationship></act></entry>"""
NO_KNOWN_MEDICATIONS = """<entry><substanceAdministration classCode="SBADM" moodCode="EVN"
  negationInd="true"><templateId root="2.16.840.1.113883.10.20.22.4.16" extension="2014-06-09"/>
  <id root="cdbd33f0-6cde-11db-9fe1-0800200c9a66"/><statusCode code="active"/>
  <effectiveTime xsi:type="IVL_TS"><low nullFlavor="NA"/></effectiveTime>
  <doseQuantity nullFlavor="NA"/>
  <consumable><manufacturedProduct classCode="MANU">
    <templateId root="2.16.840.1.113883.10.20.22.4.23" extension="2014-06-09"/>
    <manufacturedMaterial><code code="410942007" codeSystem="2.16.840.1.113883.6.96"
      displayName="Drug or medicament"/></manufacturedMaterial></manufacturedProduct></consumable>
</substanceAdministration></entry>"""
NO_VACCINE = """<entry><substanceAdministration classCode="SBADM" moodCode="EVN">
  <templateId root="2.16.840.1.113883.10.20.22.4.52" extension="2015-08-01"/>
  <id root="e6f1ba43-c0ed-4b9b-9f12-f435d8ad8f92"/><statusCode code="completed"/>
  <effectiveTime value="20231012"/>
  <consumable><manufacturedProduct classCode="MANU"><manufacturedMaterial>
    <code code="998" codeSystem="2.16.840.1.113883.12.292"
      displayName="no vaccine administered"/></manufacturedMaterial></manufacturedProduct>
  </consumable></substanceAdministration></entry>"""


def test_no_known_problems_medications_and_no_vaccine_given_are_absences() -> None:
    """C-CDA's negated 'Problem' and 'Drug or medicament' were a refuted problem 'Problem'
    and a medication 'Drug or medicament' not taken; CVX 998 'no vaccine administered' a
    vaccination done. Each is a list said empty."""
    got = entries(section("11450-4", "No known problems", NO_KNOWN_PROBLEMS),
                  section("10160-0", "No known medications", NO_KNOWN_MEDICATIONS),
                  section("11369-6", "No vaccine given", NO_VACCINE))
    assert [(e.type, e.code, e.details["absent"]) for e in got] == [
        ("absence", "no-known-problems", "problem"),
        ("absence", "no-known-medications", "medication"),
        ("absence", "998", "immunization")]
    assert [e.display for e in got[:2]] == ["No known problems", "No known medications"]
    assert got[1].status == "final"  # statusCode active: the list is empty now, no result
    # to come ('active' was exported as a preliminary Observation)
    assert "concern_status" not in got[0].details


def test_a_negated_specific_problem_stays_a_negated_problem() -> None:
    """'No diabetes' is about diabetes: a negated problem, as before."""
    got, = entries(section("11450-4", "", NO_KNOWN_PROBLEMS.replace(
        '<value xsi:type="CD" code="55607006" codeSystem="2.16.840.1.113883.6.96"\n'
        '      displayName="Problem"/>',
        '<value xsi:type="CD" code="44054006" codeSystem="2.16.840.1.113883.6.96"/>')))
    assert (got.type, got.code, got.details["negated"]) == ("problem", "44054006", True)


# -- vaccinations under templates of other countries -------------------------------------------
def vaccination(template: str) -> str:
    return f"""<entry><substanceAdministration classCode="SBADM" moodCode="EVN">
      <templateId root="{template}"/><id root="d0f2b6a1-1bde-4c7f-9d33-0b9e3ec2f7a2"/>
      <statusCode code="completed"/><effectiveTime value="20230301"/>
      <consumable><manufacturedProduct classCode="MANU">
        <templateId root="2.16.840.1.113883.10.22.4.2"/><manufacturedMaterial>
        <code code="J07BX03" codeSystem="2.16.840.1.113883.6.73" displayName="vaccins covid-19"/>
        <lotNumberText>FH2309</lotNumberText></manufacturedMaterial></manufacturedProduct>
      </consumable>
      <entryRelationship typeCode="SUBJ"><observation classCode="OBS" moodCode="EVN">
        <code code="30973-2" codeSystem="2.16.840.1.113883.6.1" displayName="Dose number"/>
        <value xsi:type="INT" value="3"/></observation></entryRelationship>
    </substanceAdministration></entry>"""


@pytest.mark.parametrize("template", [
    "2.16.840.1.113883.10.22.4.15",  # HL7 CDA IPS Immunization
    "2.16.999.1.4.7",  # a national template we do not know, in the immunizations section
])
def test_a_vaccination_under_a_template_of_its_own_is_a_vaccination(template: str) -> None:
    """An IPS Immunization (its own template only) was filed as a medication 'covid-19
    vaccines' taken, its rank in the series lost: a vaccination, as any substance
    administration of the immunizations section whose template we do not know."""
    got, = entries(section("11369-6", "COVID-19 (3e dose)", vaccination(template)))
    assert (got.type, got.code, got.system) == ("immunization", "J07BX03", "ATC")
    assert (got.details["lot_number"], got.details["dose_number"]) == ("FH2309", 3)


def test_a_substance_administration_elsewhere_stays_a_medication() -> None:
    got, = entries(section("10160-0", "", vaccination("2.16.999.1.4.7")))
    assert got.type == "medication"


# -- allergy reactions -------------------------------------------------------------------------
def test_the_severity_of_each_reaction_is_kept() -> None:
    """C-CDA R2.1 moved the severity from the allergy into each reaction (Severity
    Observation nested in the Reaction Observation): 'hives, moderate' was read 'hives'."""
    reaction = """<participant typeCode="CSM"><participantRole classCode="MANU">
      <playingEntity classCode="MMAT"><code code="7980" codeSystem="2.16.840.1.113883.6.88"
        displayName="Penicillin G"/></playingEntity></participantRole></participant>
      <entryRelationship typeCode="MFST" inversionInd="true"><observation classCode="OBS"
        moodCode="EVN"><templateId root="2.16.840.1.113883.10.20.22.4.9" extension="2014-06-09"/>
        <id root="4adc1020-7b14-11db-9fe1-0800200c9a64"/>
        <code code="ASSERTION" codeSystem="2.16.840.1.113883.5.4"/><statusCode code="completed"/>
        <value xsi:type="CD" code="247472004" codeSystem="2.16.840.1.113883.6.96"
          displayName="Urticaire"/>
        <entryRelationship typeCode="SUBJ" inversionInd="true"><observation classCode="OBS"
          moodCode="EVN"><templateId root="2.16.840.1.113883.10.20.22.4.8" extension="2014-06-09"/>
          <code code="SEV" codeSystem="2.16.840.1.113883.5.4"/><statusCode code="completed"/>
          <value xsi:type="CD" code="6736007" codeSystem="2.16.840.1.113883.6.96"
            displayName="Modérée"/></observation></entryRelationship>
      </observation></entryRelationship>"""
    got, = entries(section("48765-2", "Pénicilline : urticaire modérée", allergy(
        snomed("416098002", "Drug allergy (disorder)"), reaction, neg="")))
    assert (got.type, got.code) == ("allergy", "7980")
    assert got.details["reactions"] == [{
        "code": "247472004", "system": "SNOMED-CT", "display": "Urticaire",
        "severity": {"code": "6736007", "system": "SNOMED-CT", "display": "Modérée"}}]
    assert "severity" not in got.details  # the allergy's own: not said


# -- medications -------------------------------------------------------------------------------
def test_a_medication_taken_as_needed_says_for_what() -> None:
    """C-CDA 'as needed for wheezing' is a precondition (4.25: code ASSERTION, the condition
    its value); eP-MED writes 'si douleur' in words. Dropped, salbutamol 2 puffs every 4 to
    6 hours as needed read as taken around the clock."""
    got, = entries(section("10160-0", '<content ID="prn">si douleur</content>', """
      <entry><substanceAdministration classCode="SBADM" moodCode="EVN">
        <templateId root="2.16.840.1.113883.10.20.22.4.16" extension="2014-06-09"/>
        <id root="cdbd33f0-6cde-11db-9fe1-0800200c9a66" extension="m1"/>
        <statusCode code="active"/>
        <effectiveTime xsi:type="IVL_TS"><low value="20220301"/></effectiveTime>
        <effectiveTime xsi:type="PIVL_TS" operator="A"><period xsi:type="IVL_PQ">
          <low value="4" unit="h"/><high value="6" unit="h"/></period></effectiveTime>
        <doseQuantity value="2"/>
        <consumable><manufacturedProduct classCode="MANU"><manufacturedMaterial>
          <code code="745679" codeSystem="2.16.840.1.113883.6.88"
            displayName="200 ACTUAT albuterol 0.09 MG/ACTUAT Metered Dose Inhaler"/>
        </manufacturedMaterial></manufacturedProduct></consumable>
        <precondition typeCode="PRCN"><criterion>
          <templateId root="2.16.840.1.113883.10.20.22.4.25" extension="2014-06-09"/>
          <code code="ASSERTION" codeSystem="2.16.840.1.113883.5.4"/>
          <value xsi:type="CD" code="56018004" codeSystem="2.16.840.1.113883.6.96"
            displayName="Sifflements"/></criterion></precondition>
        <precondition><criterion><text><reference value="#prn"/></text></criterion>
        </precondition>
      </substanceAdministration></entry>"""))
    assert (got.type, got.code, got.details["frequency"]) == ("medication", "745679",
                                                              "every 4-6 h")
    assert got.details["preconditions"] == [
        {"code": "56018004", "system": "SNOMED-CT", "display": "Sifflements"},
        {"text": "si douleur"}]


# -- header ------------------------------------------------------------------------------------
EPIC_DEVICE = """<author><time value="20240315143200-0500"/><assignedAuthor>
    <id root="1.2.840.114350.1.1" extension="CARE-EVERYWHERE"/>
    <assignedAuthoringDevice><manufacturerModelName>Epic - Version 10.3</manufacturerModelName>
      <softwareName>Epic - Version 10.3</softwareName></assignedAuthoringDevice>
    <representedOrganization><name>Beacon Hill Medical Center</name></representedOrganization>
  </assignedAuthor></author>"""
SIGNED = """<legalAuthenticator><time value="20240315150000-0500"/><signatureCode code="S"/>
    <assignedEntity><id root="2.16.840.1.113883.4.6" extension="1538246790"/>
    </assignedEntity></legalAuthenticator>"""


def document(head: str) -> Entry:
    data = (head + section("51848-0", "Stable", "") + TAIL).encode()
    return normalize_cda(parse_cda(data), data, "test").entries[0]


def test_a_document_by_software_only_is_not_performed_by_the_software() -> None:
    """An EHR export naming only the EHR as author (assignedAuthoringDevice) had the
    software's id as the document's performer: who signed it is, else nobody; the device
    is still said in details.authors. Its language (here Spanish) is kept."""
    head = CCDA_HEAD.format(effective="20240315143200-0500")
    start, end = head.index("<author>"), head.index("</author>") + len("</author>")
    by_device = head[:start] + EPIC_DEVICE + head[end:]
    signed = by_device.replace("<component><structuredBody>",
                               SIGNED + "<component><structuredBody>")
    assert document(signed).performer == "2.16.840.1.113883.4.6^1538246790"
    unsigned = document(by_device.replace('<languageCode code="en-US"/>',
                                          '<languageCode code="es-US"/>'))
    assert unsigned.performer is None
    assert unsigned.details["authors"][0]["device"] == ["Epic - Version 10.3"] * 2
    assert unsigned.details["language"] == "es-US"
    assert document(head).performer == "2.16.840.1.113883.4.6^1538246790"  # a person


def test_a_document_naming_two_patients_is_refused_with_where() -> None:
    """CDA R2 lets recordTarget repeat; we file a document in one dossier, so two patients
    are refused (CDA_MULTIPLE_PATIENTS, the second one located), never filed in the first's."""
    from normalizers.model import NormalizationError

    head = CCDA_HEAD.format(effective="20240315143200-0500")
    start, end = head.index("<recordTarget>"), head.index("</recordTarget>") + 15
    twice = head[:end] + head[start:end].replace("E84215", "E99999") + head[end:]
    with pytest.raises(NormalizationError) as caught:
        document(twice)
    assert caught.value.code == "CDA_MULTIPLE_PATIENTS"
    assert caught.value.location.endswith("recordTarget[2]")
    assert "E99999" not in str(caught.value) and "Lefèvre" not in str(caught.value)


# -- vital signs -------------------------------------------------------------------------------
def test_ccd_1_0_vital_signs_are_vital_signs() -> None:
    """CCD 1.0 (still exported by older athena and NextGen interfaces) writes vital signs
    with the CCD result observation template only (2.16.840.1.113883.10.20.1.31) in a
    vital signs organizer: outside a results section they were plain observations."""
    got = entries(section("8716-3", "TA 118/76", """<entry><organizer classCode="CLUSTER"
      moodCode="EVN"><templateId root="2.16.840.1.113883.10.20.1.32"/>
      <templateId root="2.16.840.1.113883.10.20.1.35"/><id root="1.2.3.4" extension="vs"/>
      <code code="46680005" codeSystem="2.16.840.1.113883.6.96"/><statusCode code="completed"/>
      <effectiveTime value="20240315091000-0500"/>
      <component><observation classCode="OBS" moodCode="EVN">
        <templateId root="2.16.840.1.113883.10.20.1.31"/><id root="1.2.3.4" extension="s"/>
        <code code="8480-6" codeSystem="2.16.840.1.113883.6.1"/><statusCode code="completed"/>
        <value xsi:type="PQ" value="118" unit="mm[Hg]"/></observation></component>
      <component><observation classCode="OBS" moodCode="EVN">
        <templateId root="2.16.840.1.113883.10.20.1.31"/><id root="1.2.3.4" extension="t"/>
        <code code="8310-5" codeSystem="2.16.840.1.113883.6.1"/><statusCode code="completed"/>
        <value xsi:type="PQ" value="99.1" unit="[degF]"/></observation></component>
    </organizer></entry>"""))
    assert [(e.type, e.code, e.value, e.unit, e.effective) for e in got] == [
        ("vital_sign", "8480-6", "118", "mm[Hg]", "2024-03-15T09:10:00-05:00"),
        ("vital_sign", "8310-5", "99.1", "[degF]", "2024-03-15T09:10:00-05:00")]


# -- plans -------------------------------------------------------------------------------------
def test_what_the_plan_of_treatment_intends_is_a_plan_not_a_fact() -> None:
    """C-CDA Plan of Treatment: a Planned Medication Activity ('begin amlodipine'), a
    Planned Act ('low-sodium diet') and an IHE PCC Immunization Recommendation (CI-SIS
    FR-Vaccin-recommande in IPS-FR) were a medication taken, nothing, and a medication
    taken. Each is a plan saying what is planned. An intended medication elsewhere (a
    prescription) stays a medication."""
    got = entries(section("18776-5", "Plan", """
      <entry><substanceAdministration moodCode="INT" classCode="SBADM">
        <templateId root="2.16.840.1.113883.10.20.22.4.42" extension="2014-06-09"/>
        <id root="9a6d1bac-17d3-4195-89a4-1121bc809b4c"/><statusCode code="active"/>
        <effectiveTime value="20240320"/>
        <consumable><manufacturedProduct classCode="MANU"><manufacturedMaterial>
          <code code="197361" codeSystem="2.16.840.1.113883.6.88"
            displayName="amlodipine 5 MG Oral Tablet"/></manufacturedMaterial>
        </manufacturedProduct></consumable></substanceAdministration></entry>
      <entry><act classCode="ACT" moodCode="INT">
        <templateId root="2.16.840.1.113883.10.20.22.4.39" extension="2014-06-09"/>
        <id root="9a6d1bac-17d3-4195-89a4-1121bc809b4e"/>
        <code code="437421000124105" codeSystem="2.16.840.1.113883.6.96"
          displayName="Régime hyposodé"/><statusCode code="active"/>
        <effectiveTime value="20240320"/></act></entry>
      <entry><substanceAdministration classCode="SBADM" moodCode="INT">
        <templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.12.2"/>
        <id root="41DAC707-8A98-47B7-B600-AC63D8002142"/>
        <code code="IMMUNIZ" codeSystem="2.16.840.1.113883.5.4"/><statusCode code="active"/>
        <effectiveTime xsi:type="IVL_TS"><low value="20241201"/><high value="20241231"/>
        </effectiveTime>
        <consumable><manufacturedProduct><manufacturedMaterial>
          <code code="J07AN" codeSystem="2.16.840.1.113883.6.73"
            displayName="Vaccin antituberculeux"/></manufacturedMaterial></manufacturedProduct>
        </consumable></substanceAdministration></entry>"""),
        section("10160-0", "Ordonnance", """<entry><substanceAdministration moodCode="INT"
          classCode="SBADM"><templateId root="2.16.840.1.113883.10.20.22.4.16"/>
          <id root="9a6d1bac-17d3-4195-89a4-1121bc809b4f"/><statusCode code="active"/>
          <consumable><manufacturedProduct classCode="MANU"><manufacturedMaterial>
            <code code="197361" codeSystem="2.16.840.1.113883.6.88"/></manufacturedMaterial>
          </manufacturedProduct></consumable></substanceAdministration></entry>"""))
    assert [(e.type, e.code, e.details.get("planned"), e.details["mood"]) for e in got] == [
        ("plan", "197361", "medication", "INT"),
        ("plan", "437421000124105", "procedure", "INT"),
        ("plan", "J07AN", "immunization", "INT"),
        ("medication", "197361", None, "INT")]


def test_ehdsi_absent_or_unknown_situations() -> None:
    """eHDSI patient summaries say 'no known allergy' in the allergy's code, 'no current
    problems' in the problem's value, 'no drug therapy prescribed' as the product: each was
    the patient's allergy, problem or medication. 'Drug treatment unknown' and 'past
    medical history unknown' say nothing: not filed, said in a warning."""
    def concern(template: str, inner: str, ident: str) -> str:
        return f"""<entry><act classCode="ACT" moodCode="EVN"><templateId root="{template}"/>
          <id root="1.2.250.1.999.3.{ident}"/><code code="CONC" codeSystem="2.16.840.1.113883.5.6"/>
          <statusCode code="active"/><entryRelationship typeCode="SUBJ">{inner}
          </entryRelationship></act></entry>"""
    ehdsi = "1.3.6.1.4.1.12559.11.10.1.3.1.3"
    allergy_obs = f"""<observation classCode="OBS" moodCode="EVN">
      <templateId root="{ehdsi}.17"/><id root="1.2.250.1.999.3.1.1"/>
      <code code="716186003" codeSystem="2.16.840.1.113883.6.96"
        displayName="Pas d'allergie connue"/><statusCode code="completed"/></observation>"""
    def problem_obs(code: str, ident: str) -> str:
        return f"""<observation classCode="OBS" moodCode="EVN">
          <templateId root="{ehdsi}.7"/><id root="1.2.250.1.999.3.{ident}.1"/>
          <code code="404684003" codeSystem="2.16.840.1.113883.6.96"/>
          <value xsi:type="CD" code="{code}" codeSystem="2.16.840.1.113883.6.96"/></observation>"""
    def medication(code: str, ident: str) -> str:
        return f"""<entry><substanceAdministration classCode="SBADM" moodCode="INT">
          <templateId root="{ehdsi}.4"/><id root="1.2.250.1.999.3.{ident}"/>
          <consumable><manufacturedProduct><manufacturedMaterial><code code="{code}"
            codeSystem="2.16.840.1.113883.6.96"/></manufacturedMaterial></manufacturedProduct>
          </consumable></substanceAdministration></entry>"""
    msg = normalized(
        section("48765-2", "", concern(f"{ehdsi}.16", allergy_obs, "1")),
        section("11450-4", "", concern(f"{ehdsi}.15", problem_obs("160245001", "2"), "2")
                + concern(f"{ehdsi}.15", problem_obs("396782006", "3"), "3")),
        section("10160-0", "", medication("182849000", "4") + medication("182904002", "5")))
    assert [(e.type, e.code, e.details["absent"]) for e in msg.entries[1:]] == [
        ("absence", "716186003", "allergy"), ("absence", "160245001", "problem"),
        ("absence", "182849000", "medication")]
    assert sum(w.startswith("CDA_NO_INFORMATION") for w in msg.warnings) == 2
    assert "a problem statement that says there is no information" in " ".join(msg.warnings)
    assert not any(w.startswith("CDA_NOT_FILED") for w in msg.warnings)  # said once only


def test_renewals_of_a_prescription_and_fills_of_a_supply_order_are_kept() -> None:
    """eP-MED's 'Nombre de renouvellement(s) possible(s)' (IHE Pharm prescription item
    repeatNumber) and a C-CDA supply order's fills (repeatNumber 3: two refills) were
    dropped; each goes to its own key, the element counting different things."""
    got = entries(section("10160-0", "Metformine", """
      <entry><substanceAdministration classCode="SBADM" moodCode="INT">
        <templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.7"/>
        <templateId root="1.3.6.1.4.1.19376.1.9.1.3.2"/>
        <id root="1.2.250.1.999.6" extension="P1"/><statusCode code="completed"/>
        <repeatNumber value="3"/>
        <consumable><manufacturedProduct><manufacturedMaterial>
          <code code="3400930000000" codeSystem="1.2.250.1.213.2.3.2"
            displayName="METFORMINE 500 mg cp"/></manufacturedMaterial></manufacturedProduct>
        </consumable></substanceAdministration></entry>
      <entry><substanceAdministration classCode="SBADM" moodCode="EVN">
        <templateId root="2.16.840.1.113883.10.20.22.4.16" extension="2014-06-09"/>
        <id root="1.2.250.1.999.6" extension="M1"/><statusCode code="active"/>
        <repeatNumber value="6"/>
        <consumable><manufacturedProduct><manufacturedMaterial>
          <code code="860975" codeSystem="2.16.840.1.113883.6.88"/></manufacturedMaterial>
        </manufacturedProduct></consumable>
        <entryRelationship typeCode="REFR"><supply classCode="SPLY" moodCode="INT">
          <templateId root="2.16.840.1.113883.10.20.22.4.17" extension="2014-06-09"/>
          <id nullFlavor="NI"/><statusCode code="completed"/>
          <repeatNumber value="3"/><quantity value="60"/></supply></entryRelationship>
      </substanceAdministration></entry>"""))
    prescribed, taken = got
    assert prescribed.details["renewals"] == 3
    assert taken.details["fills"] == 3
    assert taken.details["quantity_prescribed"] == {"value": "60", "unit": None}
    assert "renewals" not in taken.details  # the activity's own count: administrations


@pytest.mark.parametrize(("timing", "expected"), [
    ('institutionSpecified="true"><period value="12" unit="h"/>', "2 times a day"),
    ('institutionSpecified="true"><period value="8" unit="h"/>', "3 times a day"),
    ('institutionSpecified="true"><period value="1" unit="d"/>', "once a day"),
    ('institutionSpecified="true"><period value="0.5" unit="d"/>', "2 times a day"),
    ('institutionSpecified="false"><period value="8" unit="h"/>', "every 8 h"),
    ('><period value="12" unit="h"/>', "every 12 h"),
    ('institutionSpecified="true"><period value="5" unit="h"/>', "every 5 h"),
    ('institutionSpecified="true"><period value="1" unit="wk"/>', "every 1 wk"),
])
def test_a_frequency_set_by_the_institution_is_so_many_times_a_day(timing: str,
                                                                  expected: str) -> None:
    """Epic writes 'metformin twice a day' as PIVL_TS period 12 h institutionSpecified
    true: times of day left to the patient or the ward, not every 12 hours sharp. It was
    read 'every 12 h'."""
    got, = entries(section("10160-0", "Metformine", f"""
      <entry><substanceAdministration classCode="SBADM" moodCode="EVN">
        <templateId root="2.16.840.1.113883.10.20.22.4.16" extension="2014-06-09"/>
        <id root="1.2.250.1.999.6" extension="M1"/><statusCode code="active"/>
        <effectiveTime xsi:type="PIVL_TS" operator="A" {timing}</effectiveTime>
        <consumable><manufacturedProduct><manufacturedMaterial>
          <code code="860975" codeSystem="2.16.840.1.113883.6.88"/></manufacturedMaterial>
        </manufacturedProduct></consumable></substanceAdministration></entry>"""))
    assert got.details["frequency"] == expected


def test_an_assertion_is_of_what_its_value_says() -> None:
    """C-CDA Pregnancy Observation: code ASSERTION, value 'pregnant'. It was filed as an
    observation coded 'ASSERTION' (nothing a reader or the dedupe can use); the value is
    what is observed, as for a problem. Its estimated delivery date stays an observation."""
    got = entries(section("29762-2", "Enceinte, terme prévu le 15/09/2024", """
      <entry><observation classCode="OBS" moodCode="EVN">
        <templateId root="2.16.840.1.113883.10.20.15.3.8"/><id root="1.2.250.1.999.9"/>
        <code code="ASSERTION" codeSystem="2.16.840.1.113883.5.4"/><statusCode code="completed"/>
        <effectiveTime><low value="20240301"/></effectiveTime>
        <value xsi:type="CD" code="77386006" codeSystem="2.16.840.1.113883.6.96"
          displayName="Enceinte"/>
        <entryRelationship typeCode="REFR"><observation classCode="OBS" moodCode="EVN">
          <templateId root="2.16.840.1.113883.10.20.15.3.1"/>
          <code code="11778-8" codeSystem="2.16.840.1.113883.6.1"/>
          <statusCode code="completed"/><value xsi:type="TS" value="20240915"/></observation>
        </entryRelationship></observation></entry>"""))
    assert [(e.type, e.code, e.system, e.value) for e in got] == [
        ("observation", "77386006", "SNOMED-CT", "Enceinte"),
        ("observation", "11778-8", "LN", "2024-09-15")]
    assert got[0].details["observation_code"] == "ASSERTION"


# -- family history ----------------------------------------------------------------------------
MOTHER = """<subject><relatedSubject classCode="PRS"><code code="MTH"
  codeSystem="2.16.840.1.113883.5.111" displayName="Mère"/><subject>
  <administrativeGenderCode code="F" codeSystem="2.16.840.1.113883.5.1"/></subject>
  </relatedSubject></subject>"""


def test_a_relatives_problem_or_allergy_outside_family_history_is_not_the_patients() -> None:
    """C-CDA lets a Problem or Allergy Observation name its subject: the mother's breast
    cancer in the problem list, her penicillin allergy among allergies, were filed as the
    patient's problem and allergy (with details.subject). They are family history."""
    problem = f"""<entry><act classCode="ACT" moodCode="EVN">
      <templateId root="2.16.840.1.113883.10.20.22.4.3" extension="2015-08-01"/>
      <id root="1.2.250.1.999.5" extension="C1"/>
      <code code="CONC" codeSystem="2.16.840.1.113883.5.6"/><statusCode code="active"/>
      <entryRelationship typeCode="SUBJ"><observation classCode="OBS" moodCode="EVN">
        <templateId root="2.16.840.1.113883.10.20.22.4.4" extension="2015-08-01"/>
        <id root="1.2.250.1.999.5" extension="P1"/>
        <code code="75326-9" codeSystem="2.16.840.1.113883.6.1"/>{MOTHER}
        <statusCode code="completed"/><effectiveTime><low value="2012"/></effectiveTime>
        <value xsi:type="CD" code="254837009" codeSystem="2.16.840.1.113883.6.96"
          displayName="Cancer du sein"/></observation></entryRelationship></act></entry>"""
    penicillin = """<participant typeCode="CSM"><participantRole classCode="MANU">
      <playingEntity classCode="MMAT"><code code="7980" codeSystem="2.16.840.1.113883.6.88"
        displayName="Penicillin G"/></playingEntity></participantRole></participant>"""
    got = entries(section("11450-4", "Mère : cancer du sein", problem),
                  section("48765-2", "Mère : allergie à la pénicilline", allergy(
                      snomed("416098002", "Drug allergy"), penicillin, neg="").replace(
                      '<code code="ASSERTION" codeSystem="2.16.840.1.113883.5.4"/>',
                      '<code code="ASSERTION" codeSystem="2.16.840.1.113883.5.4"/>' + MOTHER)))
    assert [(e.type, e.code, e.details["relative"]["code"]) for e in got] == [
        ("family_history", "254837009", "MTH"), ("family_history", "7980", "MTH")]
    assert all("concern_status" not in e.details for e in got)


def test_the_route_says_whose_code_it_is_and_what_it_means() -> None:
    """routeCode was kept as a bare code: 'C38288' is NCI's oral route in a C-CDA, and a
    reader could not tell it from an EDQM or HL7 code. Its system and words are kept too."""
    got, = entries(section("10160-0", "Metformine", """
      <entry><substanceAdministration classCode="SBADM" moodCode="EVN">
        <templateId root="2.16.840.1.113883.10.20.22.4.16" extension="2014-06-09"/>
        <id root="1.2.250.1.999.6" extension="M1"/><statusCode code="active"/>
        <routeCode code="C38288" codeSystem="2.16.840.1.113883.3.26.1.1" displayName="ORAL"/>
        <consumable><manufacturedProduct><manufacturedMaterial>
          <code code="860975" codeSystem="2.16.840.1.113883.6.88"/></manufacturedMaterial>
        </manufacturedProduct></consumable></substanceAdministration></entry>"""))
    assert got.details["route"] == "C38288"
    assert got.details["route_coded"] == {"code": "C38288", "system": "NCI", "display": "ORAL"}


def test_the_patient_is_identified_by_the_legal_name_not_a_nickname() -> None:
    """A C-CDA may list the patient's nickname (use P) before the legal name (use L): the
    nickname was the name compared with the dossier's, and the document quarantined."""
    head = CCDA_HEAD.format(effective="20240315143200-0500").replace(
        '<name use="L"><given>Hélène</given><family>Lefèvre</family></name>',
        '<name use="P"><given>Lena</given></name>'
        '<name use="L"><given>Hélène</given><given>Marie</given><family>Lefèvre</family></name>')
    data = (head + section("51848-0", "Stable", "") + TAIL).encode()
    identity = normalize_cda(parse_cda(data), data, "test").identity
    assert (identity.family, identity.given) == ("Lefèvre", "Hélène")


def test_a_former_name_whose_validity_ended_is_not_the_one_compared() -> None:
    """Two legal names, the first ended (validTime/high in the past: a maiden name kept in
    the record): the former name was compared with the dossier's and conflicted."""
    head = CCDA_HEAD.format(effective="20240315143200-0500").replace(
        '<name use="L"><given>Hélène</given><family>Lefèvre</family></name>',
        '<name use="L"><given>Hélène</given><family>Martin</family>'
        '<validTime><low value="19800512"/><high value="20090620"/></validTime></name>'
        '<name use="L"><given>Hélène</given><family>Lefèvre</family>'
        '<validTime><low value="20090620"/></validTime></name>')
    data = (head + section("51848-0", "Stable", "") + TAIL).encode()
    identity = normalize_cda(parse_cda(data), data, "test").identity
    assert (identity.family, identity.given) == ("Lefèvre", "Hélène")
    # one name only, however old: still the patient's name
    head = CCDA_HEAD.format(effective="20240315143200-0500").replace(
        '<name use="L"><given>Hélène</given><family>Lefèvre</family></name>',
        '<name use="L"><given>Hélène</given><family>Martin</family>'
        '<validTime><high value="20090620"/></validTime></name>')
    data = (head + section("51848-0", "Stable", "") + TAIL).encode()
    assert normalize_cda(parse_cda(data), data, "test").identity.family == "Martin"


def test_the_end_of_a_period_observed_is_kept() -> None:
    """C-CDA Tobacco Use: 'smoked daily from 1995 to 2015' kept only its start."""
    got, = entries(section("29762-2", "Tabac : quotidien 1995-2015", """
      <entry><observation classCode="OBS" moodCode="EVN">
        <templateId root="2.16.840.1.113883.10.20.22.4.85" extension="2014-06-09"/>
        <id root="45efb604-7049-4a2e-ad33-d38556c9636d"/>
        <code code="11367-0" codeSystem="2.16.840.1.113883.6.1"/><statusCode code="completed"/>
        <effectiveTime><low value="19950101"/><high value="20150601"/></effectiveTime>
        <value xsi:type="CD" code="449868002" codeSystem="2.16.840.1.113883.6.96"
          displayName="Fume quotidiennement"/></observation></entry>"""))
    assert (got.type, got.effective, got.details["period_high"]) == (
        "observation", "1995-01-01", "2015-06-01")


# -- procedures and encounters under templates we do not know ----------------------------------
def test_a_procedure_or_encounter_under_an_unknown_template_is_one() -> None:
    """An IPS procedure (its own template only), a procedure with no template at all and an
    encounter under another country's template were not filed ('of a kind not read here'):
    the CDA element says what they are. A specimen's collection among results stays read
    into its results."""
    msg = normalized(section("47519-4", "Appendicectomie (2010)", """
      <entry><procedure classCode="PROC" moodCode="EVN">
        <templateId root="2.16.840.1.113883.10.22.4.27"/><id root="1.2.250.1.999.8" extension="P1"/>
        <code code="80146002" codeSystem="2.16.840.1.113883.6.96" displayName="Appendicectomie"/>
        <statusCode code="completed"/><effectiveTime value="20100512"/></procedure></entry>
      <entry><procedure classCode="PROC" moodCode="EVN"><id root="1.2.250.1.999.8" extension="P2"/>
        <code code="HFFC0010" codeSystem="1.2.250.1.213.2.5"/>
        <statusCode code="completed"/><effectiveTime value="20100512"/></procedure></entry>"""),
        section("46240-8", "Consultation", """
      <entry><encounter classCode="ENC" moodCode="EVN">
        <templateId root="2.16.756.5.30.1.1.10.4.99"/>
        <id root="1.2.250.1.999.8" extension="E1"/>
        <code code="AMB" codeSystem="2.16.840.1.113883.5.4"/>
        <effectiveTime><low value="20240101"/></effectiveTime></encounter></entry>"""),
        section("30954-2", "Glycémie", """
      <entry><organizer classCode="BATTERY" moodCode="EVN">
        <templateId root="2.16.840.1.113883.10.20.22.4.1"/>
        <id root="1.2.250.1.999.8" extension="O"/>
        <code code="24323-8" codeSystem="2.16.840.1.113883.6.1"/><statusCode code="completed"/>
        <component><procedure classCode="PROC" moodCode="EVN">
          <code code="17636008" codeSystem="2.16.840.1.113883.6.96" displayName="Prélèvement"/>
          <effectiveTime value="20240314080000"/></procedure></component>
        <component><observation classCode="OBS" moodCode="EVN">
          <templateId root="2.16.840.1.113883.10.20.22.4.2"/>
          <id root="1.2.250.1.999.8" extension="R"/>
          <code code="2345-7" codeSystem="2.16.840.1.113883.6.1"/><statusCode code="completed"/>
          <value xsi:type="PQ" value="5.4" unit="mmol/L"/></observation></component>
      </organizer></entry>"""))
    assert [(e.type, e.code) for e in msg.entries[1:]] == [
        ("procedure", "80146002"), ("procedure", "HFFC0010"), ("encounter", "AMB"),
        ("lab_result", "2345-7")]
    said = [w for w in msg.warnings if w.startswith("CDA_NOT_FILED")]
    assert not any(f"structuredBody/component[{n}]/" in w for w in said for n in (1, 2))


def test_statements_under_unknown_templates_take_the_kind_of_their_section() -> None:
    """A vital sign, a problem and an allergy under templates of another country (here
    made-up Swiss-like ones) were plain observations; only statements with no template at
    all took their section's kind."""
    def observation(ident: str, inner: str) -> str:
        return f"""<entry><observation classCode="OBS" moodCode="EVN">
          <templateId root="2.16.756.5.30.1.1.10.4.{ident}"/>
          <id root="1.2.250.1.999.10" extension="{ident}"/><statusCode code="completed"/>
          <effectiveTime value="20240315091000-0500"/>{inner}</observation></entry>"""
    got = entries(
        section("8716-3", "Poids 72 kg", observation("1", """
          <code code="29463-7" codeSystem="2.16.840.1.113883.6.1"/>
          <value xsi:type="PQ" value="72" unit="kg"/>""")),
        section("11450-4", "Asthme", observation("2", """
          <code code="55607006" codeSystem="2.16.840.1.113883.6.96"/>
          <value xsi:type="CD" code="195967001" codeSystem="2.16.840.1.113883.6.96"
            displayName="Asthme"/>""")),
        section("48765-2", "Pénicilline", observation("3", """
          <code code="416098002" codeSystem="2.16.840.1.113883.6.96"/>
          <participant typeCode="CSM"><participantRole classCode="MANU"><playingEntity>
            <code code="J01CE01" codeSystem="2.16.840.1.113883.6.73"
              displayName="benzylpénicilline"/></playingEntity></participantRole>
          </participant>""")))
    assert [(e.type, e.code) for e in got] == [
        ("vital_sign", "29463-7"), ("problem", "195967001"), ("allergy", "J01CE01")]


# -- values ------------------------------------------------------------------------------------
def test_an_uncoded_value_translated_keeps_the_senders_words() -> None:
    """CD nullFlavor OTH (no code of the sender's), its words in the narrative, a standard
    code in translation: the result is filed under the translation, as before, and the
    sender's words ('Non réactif') are no longer dropped."""
    got, = entries(section("30954-2", '<content ID="r1">Non réactif</content>', """
      <entry><observation classCode="OBS" moodCode="EVN">
        <templateId root="2.16.840.1.113883.10.20.22.4.2" extension="2015-08-01"/>
        <id root="1.2.250.1.999.11" extension="HBS"/>
        <code code="5196-1" codeSystem="2.16.840.1.113883.6.1"/><statusCode code="completed"/>
        <effectiveTime value="20240314"/>
        <value xsi:type="CD" nullFlavor="OTH"><originalText><reference value="#r1"/>
          </originalText><translation code="260385009" codeSystem="2.16.840.1.113883.6.96"
          displayName="Négatif"/></value></observation></entry>"""))
    assert (got.value, got.details["value_code"]["code"]) == ("Négatif", "260385009")
    assert got.details["value_text"] == "Non réactif"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(min_value=-12 * 60, max_value=14 * 60).filter(lambda m: m % 15 == 0))
def test_any_foreign_offset_of_the_document_is_its_times_offset(minutes: int) -> None:
    """Whatever offset the document's time carries, its times without one are read at it,
    unless it is one of Paris's (winter, summer) or UTC, read as Paris's."""
    sign = "-" if minutes < 0 else "+"
    offset = f"{sign}{abs(minutes) // 60:02d}{abs(minutes) % 60:02d}"
    bp, = entries(section("8716-3", "TA", VITALS), effective=f"20240315143200{offset}")
    if offset in ("+0100", "+0000", "-0000"):  # ('+0200' is Paris's in summer only)
        assert bp.effective == "2024-03-15T10:15:00+01:00"
    else:
        assert bp.effective == f"2024-03-15T10:15:00{offset[:3]}:{offset[3:]}"


@pytest.mark.parametrize(("unit", "ucum"), [
    ("[lb_av]", "[lb_av]"), ("lbs", "[lb_av]"), ("[in_i]", "[in_i]"), ("in", "[in_i]"),
    ("[degF]", "[degF]"), ("°F", "[degF]"), ("kg/m^2", "kg/m2"), ("{beats}/min", "/min"),
])
def test_us_vital_sign_units_are_ucum(unit: str, ucum: str) -> None:
    """Pounds, inches and degrees Fahrenheit (UCUM [lb_av], [in_i], [degF], or as US systems
    spell them) were unknown to the unit table: exported to FHIR without the UCUM system,
    'lbs' kept as a unit of its own. 'F' stays unmapped (the UCUM farad)."""
    from normalizers.units import to_ucum

    assert to_ucum(unit) == (ucum, True)
    assert not to_ucum("F").mapped
    weight, = entries(section("8716-3", "Poids", VITALS.replace(
        '<code code="8480-6"', '<code code="29463-7"').replace(
        'value="132" unit="mm[Hg]"', f'value="158.4" unit="{unit}"')))
    assert (weight.unit, weight.unit_original) == (ucum, unit)


def test_the_maximum_dose_is_kept() -> None:
    """maxDoseQuantity ('at most 4 a day', eP-MED and C-CDA as-needed medications) was
    parsed and dropped."""
    got, = entries(section("10160-0", "Paracétamol si douleur, 4 par jour au plus", """
      <entry><substanceAdministration classCode="SBADM" moodCode="EVN">
        <templateId root="2.16.840.1.113883.10.20.22.4.16" extension="2014-06-09"/>
        <id root="1.2.250.1.999.6" extension="M1"/><statusCode code="active"/>
        <doseQuantity value="1"/>
        <maxDoseQuantity><numerator value="4"/><denominator value="1" unit="d"/>
        </maxDoseQuantity>
        <consumable><manufacturedProduct><manufacturedMaterial>
          <code code="N02BE01" codeSystem="2.16.840.1.113883.6.73"
            displayName="paracétamol"/></manufacturedMaterial></manufacturedProduct>
        </consumable></substanceAdministration></entry>"""))
    assert got.details["max_dose"] == "4/1 d"


def test_a_note_activity_is_a_comment() -> None:
    """C-CDA Note Activity (4.202): nested in a problem, the clinician's note on it; alone in
    a section, what the narrative already says. It was 'of a kind not read here'."""
    note = """<act classCode="ACT" moodCode="EVN">
      <templateId root="2.16.840.1.113883.10.20.22.4.202" extension="2016-11-01"/>
      <code code="34109-9" codeSystem="2.16.840.1.113883.6.1"/>
      <text>Équilibre correct sous metformine.</text><statusCode code="completed"/>
      <effectiveTime value="20240315"/></act>"""
    msg = normalized(section("11450-4", "Diabète de type 2", f"""
      <entry><observation classCode="OBS" moodCode="EVN">
        <templateId root="2.16.840.1.113883.10.20.22.4.4" extension="2015-08-01"/>
        <id root="1.2.250.1.999.12" extension="P"/>
        <code code="75326-9" codeSystem="2.16.840.1.113883.6.1"/>
        <value xsi:type="CD" code="44054006" codeSystem="2.16.840.1.113883.6.96"/>
        <entryRelationship typeCode="SUBJ" inversionInd="true">{note}</entryRelationship>
      </observation></entry><entry>{note}</entry>"""))
    problem, = msg.entries[1:]
    assert problem.details["comments"] == ["Équilibre correct sous metformine."]
    assert not any(w.startswith("CDA_NOT_FILED") for w in msg.warnings)


def test_a_cda_carried_in_an_oru_reads_its_times_as_the_same_cda_as_a_file() -> None:
    """The US document carried in an ORU's ED: its body was read at Paris's offset there
    while the same document as a file was read at its own (-0500), so one vital sign by two
    channels was two instants, never one fact (level 4)."""
    import base64

    from normalizers.model import DOCUMENT
    from tests.test_documents_normalizer import norm as hl7_norm
    from tests.test_documents_normalizer import oru

    data = (CCDA_HEAD.format(effective="20240315143200-0500")
            + section("8716-3", "BP 132", VITALS) + TAIL).encode()
    as_file = normalize_cda(parse_cda(data), data, "test").entries[1]
    carried = hl7_norm(oru("NW", "F", base64.b64encode(data).decode()))
    bp, = [e for e in carried.entries if e.type != DOCUMENT and e.code == "8480-6"]
    assert bp.effective == as_file.effective == "2024-03-15T10:15:00-05:00"
