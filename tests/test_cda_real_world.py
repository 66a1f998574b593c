"""CDA structures seen in real senders' documents (C-CDA vendor exports, IHE PCC, CI-SIS) that
the ANS examples do not exercise: each test builds a small invented document with one such
structure and checks what parsers/cda and normalizers/cda make of it."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from normalizers.cda import normalize_cda
from normalizers.model import Entry, NormalizationError
from parsers.cda import CdaParseError, parse_cda

HEAD = """<?xml version="1.0" encoding="UTF-8"?>
<ClinicalDocument xmlns="urn:hl7-org:v3" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
    xmlns:sdtc="urn:hl7-org:sdtc">
  <typeId root="2.16.840.1.113883.1.3" extension="POCD_HD000040"/>
  <templateId root="2.16.840.1.113883.2.8.2.1"/>
  <id root="1.2.250.1.999.1.2" extension="DOC-REEL-1"/>
  <code code="34133-9" codeSystem="2.16.840.1.113883.6.1"/>
  <title>Synthèse</title>
  <effectiveTime value="20240312101500+0100"/>
  <confidentialityCode code="N" codeSystem="2.16.840.1.113883.5.25"/>
  <recordTarget><patientRole>
    <id root="1.2.250.1.999.1.1" extension="IPP-4242"/>
    <patient><name><given>Jeanne</given><family qualifier="BR">Essai</family></name>
      <administrativeGenderCode code="F" codeSystem="2.16.840.1.113883.5.1"/>
      <birthTime value="19620415"/></patient>
  </patientRole></recordTarget>
  <author><time value="20240312"/><assignedAuthor><id root="1.2.250.1.71.4.2.1"
    extension="810000000001"/></assignedAuthor></author>
  <custodian><assignedCustodian><representedCustodianOrganization>
    <id root="1.2.250.1.999"/></representedCustodianOrganization></assignedCustodian></custodian>
  <component><structuredBody>
"""
TAIL = "</structuredBody></component></ClinicalDocument>"


def _section(code: str, narrative: str, entries: str) -> str:
    return (f'<component><section><code code="{code}" codeSystem="2.16.840.1.113883.6.1"/>'
            f"<title>Section</title><text>{narrative}</text>{entries}</section></component>")


def _entries(*sections: str) -> list[Entry]:
    data = (HEAD + "".join(sections) + TAIL).encode()
    msg = normalize_cda(parse_cda(data), data, "test")
    return msg.entries[1:]  # the body's entries (the first one is the document)


def _one(*sections: str) -> Entry:
    got = _entries(*sections)
    assert len(got) == 1, [(e.type, e.code) for e in got]
    return got[0]


# -- allergies: the substance is a participant, not the value ----------------------------------
CCDA_ALLERGY = """<entry><act classCode="ACT" moodCode="EVN">
  <templateId root="2.16.840.1.113883.10.20.22.4.30"/><id root="1.2.250.1.999.7" extension="A1"/>
  <code code="CONC" codeSystem="2.16.840.1.113883.5.6"/><statusCode code="active"/>
  <entryRelationship typeCode="SUBJ"><observation classCode="OBS" moodCode="EVN"{neg}>
    <templateId root="2.16.840.1.113883.10.20.22.4.7"/>
    <id root="1.2.250.1.999.7" extension="A1-obs"/>
    <code code="ASSERTION" codeSystem="2.16.840.1.113883.5.4"/><statusCode code="completed"/>
    <effectiveTime><low value="2006"/></effectiveTime>
    <value xsi:type="CD" code="416098002" codeSystem="2.16.840.1.113883.6.96"
      displayName="allergie médicamenteuse"/>
    <participant typeCode="CSM"><participantRole classCode="MANU">
      <playingEntity classCode="MMAT"><code code="J01CA04" codeSystem="2.16.840.1.113883.6.73"
        displayName="amoxicilline"><originalText><reference value="#agent1"/></originalText>
      </code></playingEntity></participantRole></participant>
    <entryRelationship typeCode="MFST" inversionInd="true"><observation classCode="OBS"
      moodCode="EVN"><templateId root="2.16.840.1.113883.10.20.22.4.9"/>
      <code code="ASSERTION" codeSystem="2.16.840.1.113883.5.4"/>
      <value xsi:type="CD" code="126485001" codeSystem="2.16.840.1.113883.6.96"
        displayName="urticaire"/></observation></entryRelationship>
  </observation></entryRelationship></act></entry>"""


def test_allergy_substance_comes_from_the_consumable_participant() -> None:
    """C-CDA: code ASSERTION, value = the kind of allergy, participant CSM = the substance.
    The substance is what the allergy is to: it becomes the entry's code."""
    entry = _one(_section("48765-2", '<content ID="agent1">Amoxicilline</content>',
                          CCDA_ALLERGY.format(neg="")))
    assert entry.type == "allergy"
    assert (entry.code, entry.system, entry.display) == ("J01CA04", "ATC", "amoxicilline")
    assert entry.details["allergy_type"] == {"code": "416098002", "system": "SNOMED-CT",
                                             "display": "allergie médicamenteuse"}
    assert "negated" not in entry.details


def test_negated_allergy_keeps_its_substance_and_is_flagged() -> None:
    entry = _one(_section("48765-2", "Pas d'allergie à l'amoxicilline",
                          CCDA_ALLERGY.format(neg=' negationInd="true"')))
    assert entry.code == "J01CA04"
    assert entry.details["negated"] is True


def test_ihe_pcc_allergy_type_in_the_code_and_an_empty_value() -> None:
    """IHE PCC / CI-SIS: the code says the kind of allergy, the value (a description) is
    often empty: the substance still becomes the code, the kind goes to allergy_type."""
    entry = _one(_section("48765-2", '<content ID="desc">Éruption après la prise</content>', """
      <entry><observation classCode="OBS" moodCode="EVN">
        <templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.6"/>
        <id root="1.2.250.1.999.7" extension="A2"/>
        <code code="416098002" codeSystem="2.16.840.1.113883.6.96"
          displayName="allergie médicamenteuse"/>
        <value xsi:type="CD"><originalText><reference value="#desc"/></originalText></value>
        <participant typeCode="CSM"><participantRole classCode="MANU">
          <playingEntity classCode="MMAT"><code code="N02BE01"
            codeSystem="2.16.840.1.113883.6.73" displayName="paracétamol"/></playingEntity>
        </participantRole></participant>
      </observation></entry>"""))
    assert (entry.code, entry.system) == ("N02BE01", "ATC")
    assert entry.details["allergy_type"]["code"] == "416098002"
    assert entry.value == "Éruption après la prise"


def test_allergy_with_an_uncoded_substance_keeps_its_name() -> None:
    entry = _one(_section("48765-2", '<content ID="ag">Pollen de bouleau</content>', """
      <entry><observation classCode="OBS" moodCode="EVN">
        <templateId root="2.16.840.1.113883.10.20.22.4.7"/>
        <code code="ASSERTION" codeSystem="2.16.840.1.113883.5.4"/>
        <value xsi:type="CD" code="419199007" codeSystem="2.16.840.1.113883.6.96"
          displayName="allergie à une substance"/>
        <participant typeCode="CSM"><participantRole><playingEntity>
          <code nullFlavor="OTH"><originalText><reference value="#ag"/></originalText></code>
        </playingEntity></participantRole></participant>
      </observation></entry>"""))
    assert entry.code == "419199007"
    assert entry.details["allergen_text"] == "Pollen de bouleau"


# -- problems whose value is not coded ----------------------------------------------------------
PROBLEM = """<entry><act classCode="ACT" moodCode="EVN">
  <templateId root="2.16.840.1.113883.10.20.22.4.3"/><code nullFlavor="NA"/>
  <entryRelationship typeCode="SUBJ"><observation classCode="OBS" moodCode="EVN">
    <templateId root="2.16.840.1.113883.10.20.22.4.4"/>
    <id root="1.2.250.1.999.8" extension="{ident}"/>
    <code code="55607006" codeSystem="2.16.840.1.113883.6.96" displayName="problème"/>
    <effectiveTime><low value="20090709"/></effectiveTime>
    {value}
  </observation></entryRelationship></act></entry>"""


def test_uncoded_problem_reads_its_text_in_the_narrative() -> None:
    """value nullFlavor=OTH with originalText pointing into the narrative: the problem is
    that text, not the observation code ('problem'), which stays in details."""
    entry = _one(_section("11450-4", '<content ID="p1">Hypertension artérielle essentielle'
                          "</content>", PROBLEM.format(ident="P1", value="""
      <value xsi:type="CD" nullFlavor="OTH"><originalText><reference value="#p1"/>
      </originalText></value>""")))
    assert entry.type == "problem"
    assert entry.code is None and entry.system is None
    assert entry.display == entry.value == "Hypertension artérielle essentielle"
    assert entry.mapped is False
    assert entry.details["observation_code"] == "55607006"


def test_problem_coded_only_in_a_translation() -> None:
    entry = _one(_section("11450-4", '<content ID="p2">Bronchopneumopathie chronique</content>',
                          PROBLEM.format(ident="P2", value="""
      <value xsi:type="CD" nullFlavor="OTH"><originalText><reference value="#p2"/>
      </originalText><translation code="J44.9" codeSystem="2.16.840.1.113883.6.3"/></value>""")))
    assert (entry.code, entry.system) == ("J44.9", "CIM-10")
    assert entry.display == "Bronchopneumopathie chronique"  # the translation has no display


def test_problem_whose_text_cannot_be_found_keeps_the_observation_code() -> None:
    entry = _one(_section("11450-4", "Antécédents", PROBLEM.format(ident="P3", value="""
      <value xsi:type="CD" nullFlavor="NA"><originalText><reference value="#absent"/>
      </originalText></value>""")))
    assert entry.code == "55607006"


# -- results ------------------------------------------------------------------------------------
def _result(value: str, extra: str = "", mood: str = "EVN", code: str = "2160-0") -> str:
    return f"""<entry><organizer classCode="BATTERY" moodCode="EVN">
      <templateId root="2.16.840.1.113883.10.20.22.4.1"/>
      <code code="24320-4" codeSystem="2.16.840.1.113883.6.1"/>
      <component><observation classCode="OBS" moodCode="{mood}">
        <templateId root="2.16.840.1.113883.10.20.22.4.2"/>
        <id root="1.2.250.1.999.9" extension="R-{code}"/>
        <code code="{code}" codeSystem="2.16.840.1.113883.6.1" displayName="Créatinine"/>
        <statusCode code="completed"/><effectiveTime value="20240311083000+0100"/>
        {value}{extra}
      </observation></component></organizer></entry>"""


def test_interval_result_keeps_its_unit_and_one_sided_bound() -> None:
    """IVL_PQ values: '< 5 µmol/L' is an interval with only a high bound (exclusive)."""
    entry = _one(_section("30954-2", "Résultats", _result(
        '<value xsi:type="IVL_PQ"><high value="5" unit="umol/L" inclusive="false"/></value>')))
    assert entry.type == "lab_result"
    assert (entry.value, entry.comparator, entry.value_num) == ("<5", "<", 5.0)
    assert entry.unit == "umol/L"


def test_closed_interval_result_keeps_its_unit() -> None:
    entry = _one(_section("30954-2", "Résultats", _result(
        '<value xsi:type="IVL_PQ"><low value="0" unit="pg/mL"/><high value="5" unit="pg/mL"/>'
        "</value>")))
    assert (entry.value, entry.unit, entry.comparator) == ("0-5", "pg/mL", None)


def test_units_observation_under_a_result_is_its_unit_not_a_result() -> None:
    """C-CDA: a non-numeric value with its unit in a child observation coded 'units'."""
    entry = _one(_section("30954-2", "Résultats", _result(
        '<value xsi:type="ST">Non calculable</value>', """
        <entryRelationship typeCode="COMP"><observation classCode="OBS" moodCode="EVN">
          <code code="246514001" codeSystem="2.16.840.1.113883.6.96" displayName="units"/>
          <value xsi:type="CD" code="mg/dL" codeSystem="2.16.840.1.113883.6.8"/>
        </observation></entryRelationship>""")))
    assert (entry.code, entry.value, entry.unit) == ("2160-0", "Non calculable", "mg/dL")


def test_previous_result_nested_in_a_result_is_still_a_result() -> None:
    got = _entries(_section("30954-2", "Résultats", _result(
        '<value xsi:type="PQ" value="80" unit="umol/L"/>', """
        <entryRelationship typeCode="REFR"><observation classCode="OBS" moodCode="EVN">
          <code code="2160-0" codeSystem="2.16.840.1.113883.6.1"/>
          <effectiveTime value="20230101"/><value xsi:type="PQ" value="75" unit="umol/L"/>
        </observation></entryRelationship>""")))
    assert [(e.type, e.value) for e in got] == [("lab_result", "80"), ("lab_result", "75")]


@pytest.mark.parametrize("mood", ["RQO", "INT", "PRP", "GOL"])
def test_planned_observation_is_not_filed_as_a_result(mood: str) -> None:
    """(Second round: a planned or goal measurement is a plan, no longer an observation.)"""
    entry = _one(_section("30954-2", "Résultats", _result(
        '<value xsi:type="PQ" value="80" unit="umol/L"/>', mood=mood)))
    assert (entry.type, entry.details["planned"]) == ("plan", "observation")
    assert entry.details["mood"] == mood


def test_coded_result_value_reads_its_text_in_the_narrative() -> None:
    entry = _one(_section("30954-2", '<content ID="c1">jaune paille</content>', _result(
        '<value xsi:type="CD" nullFlavor="OTH"><originalText><reference value="#c1"/>'
        "</originalText></value>", code="5778-6")))
    assert entry.value == "jaune paille"


@pytest.mark.parametrize(("value", "expected"), [
    ('<value xsi:type="BL" value="true"/>', "true"),
    ('<value xsi:type="RTO_PQ_PQ"><numerator value="1" unit="1"/>'
     '<denominator value="64" unit="1"/></value>', "1/64"),
    ('<value xsi:type="IVL_TS"><low value="20240101"/><high nullFlavor="UNK"/></value>',
     "2024-01-01/"),
    ('<value xsi:type="ZZ" value="7"/>', "7"),
])
def test_other_value_types_keep_what_they_say(value: str, expected: str) -> None:
    entry = _one(_section("29762-2", "Mode de vie", f"""<entry><observation classCode="OBS"
      moodCode="EVN"><code code="11345-6" codeSystem="2.16.840.1.113883.6.1"/>{value}
      </observation></entry>"""))
    assert entry.value == expected


def test_a_number_beyond_float_range_is_no_infinite_value() -> None:
    entry = _one(_section("30954-2", "Résultats", _result(
        '<value xsi:type="REAL" value="1e400"/>')))
    assert entry.value == "1e400" and entry.value_num is None


# -- medications --------------------------------------------------------------------------------
def _medication(inner: str, mood: str = "EVN", product: str = "") -> str:
    product = product or """<code code="60234173" codeSystem="1.2.250.1.213.2.3.1"
        displayName="INSULINE GLARGINE 100 U/ml"/>"""
    return f"""<entry><substanceAdministration classCode="SBADM" moodCode="{mood}">
      <templateId root="2.16.840.1.113883.10.20.22.4.16"/>
      <id root="1.2.250.1.999.10" extension="M1"/>
      {inner}
      <consumable><manufacturedProduct><manufacturedMaterial>{product}
      </manufacturedMaterial></manufacturedProduct></consumable>
    </substanceAdministration></entry>"""


def test_dose_without_xsi_type_keeps_its_unit() -> None:
    """doseQuantity is an IVL_PQ by schema: a plain value + unit is a point interval."""
    entry = _one(_section("10160-0", "Traitements", _medication(
        '<effectiveTime xsi:type="IVL_TS"><low value="20240101"/></effectiveTime>'
        '<effectiveTime xsi:type="EIVL_TS" operator="A"><event code="HS"/></effectiveTime>'
        '<doseQuantity value="40" unit="[iU]"/>')))
    assert entry.details["dose"] == "40 [iU]"
    assert entry.details["event"] == "HS"
    assert entry.details["period_low"] == "2024-01-01"


def test_frequency_given_as_a_range_of_periods() -> None:
    entry = _one(_section("10160-0", "Traitements", _medication(
        '<effectiveTime xsi:type="PIVL_TS" institutionSpecified="false" operator="A">'
        '<period xsi:type="IVL_PQ"><low value="4" unit="h"/><high value="6" unit="h"/>'
        "</period></effectiveTime>")))
    assert entry.details["frequency"] == "every 4-6 h"


def test_intended_medication_is_kept_and_says_so() -> None:
    entry = _one(_section("10160-0", "Traitements", _medication("", mood="INT")))
    assert entry.type == "medication"
    assert entry.details["mood"] == "INT"


def test_medication_named_only_in_the_narrative() -> None:
    """A translation without displayName, the name in the narrative via originalText."""
    entry = _one(_section("10160-0", '<content ID="m1">Metformine 850 mg cp</content>',
                          _medication("", product="""<code nullFlavor="OTH">
          <originalText><reference value="#m1"/></originalText>
          <translation code="60000000" codeSystem="1.2.250.1.213.2.3.1"/></code>""")))
    assert (entry.code, entry.system) == ("60000000", "CIS")
    assert entry.display == "Metformine 850 mg cp"


def test_free_text_medication_without_any_code() -> None:
    entry = _one(_section("10160-0", '<content ID="m2">Préparation magistrale</content>',
                          _medication("", product="""<code nullFlavor="UNK">
          <originalText><reference value="#m2"/></originalText></code>""")))
    assert entry.code is None
    assert entry.display == "Préparation magistrale"


# -- documents as some senders write them -------------------------------------------------------
def test_hl7_namespace_bound_to_a_prefix() -> None:
    """<cda:ClinicalDocument xmlns:cda="urn:hl7-org:v3">: the same document."""
    plain = (HEAD + _section("30954-2", "Résultats", _result(
        '<value xsi:type="PQ" value="80" unit="umol/L"/>')) + TAIL)
    prefixed = plain.replace('xmlns="urn:hl7-org:v3"', 'xmlns:cda="urn:hl7-org:v3"')
    prefixed = prefixed.replace("<", "<cda:").replace("<cda:/", "</cda:")
    prefixed = prefixed.replace("<cda:?xml", "<?xml")
    prefixed = prefixed.replace('xsi:type="PQ"', 'xsi:type="cda:PQ"')
    data = prefixed.encode()
    msg = normalize_cda(parse_cda(data), data, "test")
    entry = msg.entries[1]
    assert (entry.type, entry.code, entry.value, entry.unit) == ("lab_result", "2160-0", "80",
                                                                 "umol/L")
    assert not msg.warnings


def test_null_flavors_everywhere_are_no_error() -> None:
    got = _entries(_section("30954-2", "Résultats", """
      <entry><organizer classCode="BATTERY" moodCode="EVN"><id nullFlavor="NI"/>
        <code nullFlavor="UNK"/><statusCode nullFlavor="UNK"/><effectiveTime nullFlavor="UNK"/>
        <component><observation classCode="OBS" moodCode="EVN"><id nullFlavor="NI"/>
          <code code="2160-0" codeSystem="2.16.840.1.113883.6.1"/>
          <effectiveTime><low nullFlavor="UNK"/></effectiveTime>
          <value xsi:type="PQ" nullFlavor="NI"/>
          <interpretationCode nullFlavor="NI"/>
          <referenceRange><observationRange><value xsi:type="IVL_PQ"><low nullFlavor="NINF"/>
            <high value="104" unit="umol/L"/></value></observationRange></referenceRange>
        </observation></component></organizer></entry>"""))
    assert [(e.code, e.value, e.effective, e.reference_range) for e in got] == [
        ("2160-0", None, None, "<=104")]


def test_statement_without_any_content_is_skipped_quietly() -> None:
    assert _entries(_section("10160-0", "Traitements", """
      <entry><substanceAdministration classCode="SBADM" moodCode="EVN"/></entry>
      <entry><observation classCode="OBS" moodCode="EVN"/></entry>
      <entry><act classCode="ACT" moodCode="EVN"><entryRelationship typeCode="SUBJ"/></act>
      </entry>""")) == []


def test_broken_document_is_our_error_without_its_content() -> None:
    data = (HEAD + "<component><section><title>Jeanne Essai" + TAIL).encode()
    with pytest.raises(CdaParseError) as info:
        parse_cda(data)
    assert info.value.code == "CDA_NOT_XML"
    assert "Essai" not in str(info.value) and "Essai" not in info.value.location


@pytest.mark.parametrize(("value", "expected"), [
    ('<value code="I10" codeSystem="2.16.840.1.113883.6.3" displayName="HTA essentielle"/>',
     ("problem", "I10", "HTA essentielle", None)),
    ('<value value="38.2" unit="Cel"/>', ("observation", "8310-5", "38.2", "Cel")),
])
def test_value_without_xsi_type_is_read_by_its_attributes(
        value: str, expected: tuple[str, str, str, str | None]) -> None:
    """xsi:type forgotten (invalid, seen in the wild): a code makes it a CD, a unit a PQ."""
    entry = _one(_section("11450-4", "Antécédents", f"""<entry><observation classCode="OBS"
      moodCode="EVN"><code code="8310-5" codeSystem="2.16.840.1.113883.6.1"/>{value}
      </observation></entry>"""))
    assert (entry.type, entry.code, entry.value, entry.unit) == expected


def test_procedure_activity_act_and_body_site() -> None:
    """C-CDA puts procedures that change nothing physical in an act (template 4.12), which
    was dropped; the body site and its laterality qualifier are kept with the procedure."""
    got = _entries(_section("47519-4", "Actes", """
      <entry><act classCode="ACT" moodCode="EVN">
        <templateId root="2.16.840.1.113883.10.20.22.4.12"/>
        <id root="1.2.250.1.999.11" extension="ACT-1"/>
        <code code="409063005" codeSystem="2.16.840.1.113883.6.96"
          displayName="conseil diététique"/>
        <statusCode code="completed"/><effectiveTime value="20240110"/></act></entry>
      <entry><procedure classCode="PROC" moodCode="EVN">
        <templateId root="2.16.840.1.113883.10.20.22.4.14"/>
        <id root="1.2.250.1.999.11" extension="PROC-1"/>
        <code code="NFFA004" codeSystem="1.2.250.1.213.2.5" displayName="arthroscopie du genou"/>
        <targetSiteCode code="72696002" codeSystem="2.16.840.1.113883.6.96"
          displayName="genou"><qualifier><name code="272741003"
          codeSystem="2.16.840.1.113883.6.96"/><value code="7771000"
          codeSystem="2.16.840.1.113883.6.96" displayName="gauche"/></qualifier>
        </targetSiteCode></procedure></entry>"""))
    assert [(e.type, e.code) for e in got] == [("procedure", "409063005"),
                                               ("procedure", "NFFA004")]
    assert got[1].details["target_site"] == {"code": "72696002", "system": "SNOMED-CT",
                                             "display": "genou",  # round 26: its words
                                             "qualifiers": ["7771000"]}


def test_mixture_ingredients_and_generic_class_from_ihe_pharm() -> None:
    """A magistral mixture has no product code, only pharm:ingredient substances (C-CDA /
    IHE Pharm); CI-SIS nests pharm:ingredient twice and gives the ATC class in
    pharm:asSpecializedKind. Both were dropped."""
    pharm = 'xmlns:pharm="urn:ihe:pharm:medication"'
    got = _entries(_section("10160-0", "Traitements", _medication("", product=f"""
        <code nullFlavor="OTH"/><name>Bain de bouche lidocaïne + bicarbonate</name>
        <pharm:ingredient {pharm} classCode="ACTI"><pharm:quantity>
          <pharm:numerator xsi:type="PQ" value="50" unit="mg"/></pharm:quantity>
          <pharm:ingredientSubstance><pharm:code code="N01BB02"
            codeSystem="2.16.840.1.113883.6.73" displayName="lidocaïne"/>
          </pharm:ingredientSubstance></pharm:ingredient>
        <pharm:ingredient {pharm} classCode="ACTI"><pharm:ingredientSubstance>
          <pharm:code code="B05XA02" codeSystem="2.16.840.1.113883.6.73"
            displayName="bicarbonate de sodium"/></pharm:ingredientSubstance>
        </pharm:ingredient>""") + _medication("", product=f"""
        <code code="60000001" codeSystem="1.2.250.1.213.2.3.1" displayName="DOLIPRANE 500"/>
        <pharm:asSpecializedKind {pharm} classCode="GRIC"><pharm:generalizedMedicineClass>
          <pharm:code code="N02BE01" codeSystem="2.16.840.1.113883.6.73"
            displayName="paracétamol"/></pharm:generalizedMedicineClass>
        </pharm:asSpecializedKind>
        <pharm:ingredient {pharm} classCode="ACTI"><pharm:ingredient classCode="MMAT">
          <pharm:code code="100000090270" codeSystem="2.16.840.1.113883.3.6905.2"
            displayName="Paracétamol"/></pharm:ingredient></pharm:ingredient>""")))
    mixture, brand = got
    assert mixture.code is None
    assert mixture.display == "Bain de bouche lidocaïne + bicarbonate"
    assert [i["code"] for i in mixture.details["ingredients"]] == ["N01BB02", "B05XA02"]
    assert brand.details["generic"] == [{"code": "N02BE01", "system": "ATC",
                                         "display": "paracétamol"}]
    assert brand.details["ingredients"][0]["code"] == "100000090270"


def test_allergy_reactions_and_substance_named_by_the_playing_entity() -> None:
    """Reactions (MFST observations, coded or only in words) go with the allergy; a
    substance with no code and no narrative text keeps the playingEntity's name."""
    entry = _one(_section("48765-2", '<content ID="r2">plaques rouges</content>', """
      <entry><observation classCode="OBS" moodCode="EVN">
        <templateId root="2.16.840.1.113883.10.20.22.4.7"/>
        <code code="ASSERTION" codeSystem="2.16.840.1.113883.5.4"/>
        <value xsi:type="CD" code="419199007" codeSystem="2.16.840.1.113883.6.96"/>
        <participant typeCode="CSM"><participantRole><playingEntity>
          <code nullFlavor="NA"/><name>sulfate de codéine</name></playingEntity>
        </participantRole></participant>
        <entryRelationship typeCode="MFST" inversionInd="true"><observation classCode="OBS"
          moodCode="EVN"><templateId root="2.16.840.1.113883.10.20.22.4.9"/>
          <code code="ASSERTION" codeSystem="2.16.840.1.113883.5.4"/>
          <value xsi:type="CD" code="422587007" codeSystem="2.16.840.1.113883.6.96"
            displayName="nausées"/></observation></entryRelationship>
        <entryRelationship typeCode="MFST" inversionInd="true"><observation classCode="OBS"
          moodCode="EVN"><code code="ASSERTION" codeSystem="2.16.840.1.113883.5.4"/>
          <text><reference value="#r2"/></text><value xsi:type="CD" nullFlavor="OTH"/>
        </observation></entryRelationship>
      </observation></entry>"""))
    assert entry.details["allergen_text"] == "sulfate de codéine"
    assert entry.details["reactions"] == [
        {"code": "422587007", "system": "SNOMED-CT", "display": "nausées"},
        {"text": "plaques rouges"}]


def test_header_of_a_self_presenting_cisis_document_carried_in_hl7v2() -> None:
    """The HL7v2 path reads only the CDA header (normalizers/cda_header.py): a CI-SIS
    'autoprésentable' document (XSL stylesheet around data:Contenu/ClinicalDocument) was
    taken for a non-CDA payload, so not keyed by its id nor checked against the patient."""
    from normalizers.cda_header import read_cda_header

    cda = (HEAD + _section("30954-2", "Résultats", "") + TAIL).split("?>", 1)[1]
    wrapped = ('<?xml version="1.0" encoding="UTF-8"?>'
               '<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform"'
               ' xmlns:data="urn:asip-sante:ci-sis">'
               '<xsl:template match="/"><html><body><p>Compte rendu</p><id>leurre</id>'
               '</body></html></xsl:template>'
               f"<data:Contenu>{cda}</data:Contenu></xsl:stylesheet>").encode()
    header = read_cda_header(wrapped)
    assert header is not None
    assert header.document_id == "1.2.250.1.999.1.2^DOC-REEL-1"
    assert header.patient_ids == [("1.2.250.1.999.1.1", "IPP-4242")]
    assert header.title == "Synthèse" and header.code == "34133-9"
    stray = wrapped.replace(b"urn:asip-sante:ci-sis", b"urn:autre")
    assert read_cda_header(stray) is None


def test_reference_to_the_section_text_element_itself() -> None:
    """<text ID="..."> is a reference target like any narrative element (C-CDA 'No known
    problems' examples point there)."""
    data = (HEAD + '<component><section><code code="11450-4" '
            'codeSystem="2.16.840.1.113883.6.1"/><text ID="tout">Aucun antécédent connu</text>'
            + PROBLEM.format(ident="P9", value="""<value xsi:type="CD" nullFlavor="OTH">
              <originalText><reference value="#tout"/></originalText></value>""")
            + "</section></component>" + TAIL).encode()
    doc = parse_cda(data)
    assert doc.sections[0].narrative_ids["tout"] == "Aucun antécédent connu"
    entry = normalize_cda(doc, data, "test").entries[1]
    assert entry.display == "Aucun antécédent connu"


def test_vaccine_lot_number_is_kept() -> None:
    entry = _one(_section("11369-6", "Vaccins", """
      <entry><substanceAdministration classCode="SBADM" moodCode="EVN">
        <templateId root="2.16.840.1.113883.10.20.22.4.52"/>
        <effectiveTime value="20231015"/>
        <consumable><manufacturedProduct><manufacturedMaterial>
          <code code="J07BB02" codeSystem="2.16.840.1.113883.6.73" displayName="grippe"/>
          <lotNumberText>AB1234</lotNumberText>
        </manufacturedMaterial></manufacturedProduct></consumable>
      </substanceAdministration></entry>"""))
    assert (entry.type, entry.details["lot_number"]) == ("immunization", "AB1234")


def test_statement_with_a_null_flavor_is_not_filed() -> None:
    """<observation nullFlavor="UNK"> 'unknown whether pregnant': its value (pregnancy) is no
    fact; it was filed as one. A warning says where, nothing of what."""
    data = (HEAD + _section("29762-2", '<paragraph ID="g1">Grossesse : ne sait pas</paragraph>',
                            """<entry><observation classCode="OBS" moodCode="EVN"
        nullFlavor="UNK"><code code="ASSERTION" codeSystem="2.16.840.1.113883.5.4"/>
        <text><reference value="#g1"/></text><effectiveTime value="20240101"/>
        <value xsi:type="CD" code="77386006" codeSystem="2.16.840.1.113883.6.96"
          displayName="grossesse"/></observation></entry>""") + TAIL).encode()
    msg = normalize_cda(parse_cda(data), data, "test")
    assert msg.entries[1:] == []
    warning = next(w for w in msg.warnings if w.startswith("CDA_NULL_STATEMENT"))
    assert "/observation" in warning and "grossesse" not in warning.lower()


def test_free_text_medication_and_its_sig_are_one_medication() -> None:
    """C-CDA free-text medication: no product code nor name, the words in the narrative, and
    a 'Medication Free Text Sig' child (template 4.147, code LOINC 76662-6) that was filed as
    a medication of its own ('Medication Instructions')."""
    entry = _one(_section("10160-0", '<paragraph ID="t1">Tisane maison, une tasse le soir'
                          "</paragraph>", """
      <entry><substanceAdministration classCode="SBADM" moodCode="EVN">
        <templateId root="2.16.840.1.113883.10.20.22.4.16"/>
        <text><reference value="#t1"/></text>
        <consumable><manufacturedProduct><manufacturedMaterial><code nullFlavor="UNK"/>
        </manufacturedMaterial></manufacturedProduct></consumable>
        <entryRelationship typeCode="COMP"><substanceAdministration classCode="SBADM"
          moodCode="EVN"><templateId root="2.16.840.1.113883.10.20.22.4.147"/>
          <code code="76662-6" codeSystem="2.16.840.1.113883.6.1"/>
          <text><reference value="#t1"/></text>
          <consumable><manufacturedProduct><manufacturedLabeledDrug nullFlavor="NA"/>
          </manufacturedProduct></consumable></substanceAdministration></entryRelationship>
      </substanceAdministration></entry>"""))
    assert (entry.type, entry.code) == ("medication", None)
    assert entry.display == "Tisane maison, une tasse le soir"


def test_nullified_statement_is_entered_in_error() -> None:
    """ActStatus 'nullified' (recorded in error) passed through as an unknown status."""
    entry = _one(_section("30954-2", "Résultats", _result(
        '<value xsi:type="PQ" value="80" unit="umol/L"/>').replace(
        '<statusCode code="completed"/>', '<statusCode code="nullified"/>')))
    assert entry.status == "entered-in-error"


# -- whatever the values say, normalizing never raises anything but our own errors -------------
_SEED = (HEAD + _section("48765-2", '<content ID="agent1">Amoxicilline</content>',
                         CCDA_ALLERGY.format(neg=""))
         + _section("30954-2", '<content ID="c1">jaune</content>', _result(
             '<value xsi:type="IVL_PQ"><low value="0" unit="pg/mL"/><high value="5"/></value>'))
         + _section("10160-0", "Traitements", _medication(
             '<effectiveTime xsi:type="PIVL_TS"><period value="8" unit="h"/></effectiveTime>'
             '<doseQuantity value="1" unit="1"/>'))
         + _section("11450-4", '<content ID="p1">HTA</content>', PROBLEM.format(
             ident="P1", value='<value xsi:type="CD" nullFlavor="OTH"><originalText>'
             '<reference value="#p1"/></originalText></value>'))
         + TAIL).encode()


def _mutate(data: bytes, draw) -> bytes:  # noqa: ANN001
    from lxml import etree

    root = etree.fromstring(data)
    elements = [e for e in root.iter() if isinstance(e.tag, str)]
    xsi = "{http://www.w3.org/2001/XMLSchema-instance}type"
    for _ in range(draw(st.integers(1, 5))):
        victim = elements[draw(st.integers(0, len(elements) - 1))]
        what = draw(st.sampled_from(["type", "attr", "drop"]))
        if what == "type":
            victim.set(xsi, draw(st.sampled_from(
                ["", "PQ", "IVL_PQ", "IVL_TS", "RTO", "RTO_PQ_PQ", "BL", "INT", "REAL", "TS",
                 "ST", "SC", "ED", "CD", "CE", "II", "PIVL_TS", "EIVL_TS", "SXPR_TS", "ZZ",
                 "x:y:z"])))
        elif what == "attr" and victim.attrib:
            victim.set(draw(st.sampled_from(sorted(victim.attrib))), draw(st.sampled_from(
                ["", "1e400", "NaN", "-0", "abc", "#", "#absent", "20241399", "UNK",
                 "99999999999999999999999", "true"])))
        elif what == "drop" and victim.getparent() is not None:
            victim.getparent().remove(victim)
    return etree.tostring(root)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_documents_normalize_or_fail_cleanly(data) -> None:  # noqa: ANN001
    from normalizers.model import NormalizationError

    raw = _mutate(_SEED, data.draw)
    try:
        normalize_cda(parse_cda(raw), raw, "test")
    except (CdaParseError, NormalizationError):
        pass


def test_statements_without_template_ids_typed_by_their_section() -> None:
    """Some senders put no templateId on entries: a measurement among vital signs, a coded
    observation in the problem list, an observation naming a consumed substance among
    allergies are still a vital sign, a problem, an allergy (they were 'observation')."""
    got = _entries(
        _section("8716-3", "Constantes", """<entry><observation classCode="OBS" moodCode="EVN">
          <code code="8867-4" codeSystem="2.16.840.1.113883.6.1" displayName="Pouls"/>
          <effectiveTime value="20240312"/><value xsi:type="PQ" value="72" unit="/min"/>
          </observation></entry>"""),
        _section("11450-4", "Problèmes", """<entry><observation classCode="OBS" moodCode="EVN">
          <code code="55607006" codeSystem="2.16.840.1.113883.6.96"/>
          <value xsi:type="CD" code="38341003" codeSystem="2.16.840.1.113883.6.96"
            displayName="hypertension artérielle"/></observation></entry>"""),
        _section("48765-2", "Allergies", """<entry><observation classCode="OBS" moodCode="EVN">
          <code code="ASSERTION" codeSystem="2.16.840.1.113883.5.4"/>
          <participant typeCode="CSM"><participantRole><playingEntity>
            <code code="227493005" codeSystem="2.16.840.1.113883.6.96"
              displayName="noix de cajou"/></playingEntity></participantRole></participant>
          </observation></entry>"""))
    assert [(e.type, e.code) for e in got] == [("vital_sign", "8867-4"),
                                               ("problem", "38341003"),
                                               ("allergy", "227493005")]


def test_specimen_collection_time_goes_to_the_results_it_was_taken_for() -> None:
    """IHE LAB / CI-SIS FR-Prelevement: the act of a CR-BIO nests the Specimen Collection
    procedure (its effectiveTime, often only a high) beside the battery; the results get it
    as specimen_time, a previous result nested in one of them does not."""
    got = _entries(_section("18719-5", "Biochimie", """
      <entry><act classCode="ACT" moodCode="EVN">
        <templateId root="1.3.6.1.4.1.19376.1.3.1"/>
        <code code="18719-5" codeSystem="2.16.840.1.113883.6.1"/>
        <entryRelationship typeCode="COMP"><procedure classCode="PROC" moodCode="EVN">
          <templateId root="1.3.6.1.4.1.19376.1.3.1.2"/>
          <code code="9050" codeSystem="1.2.250.1.213.2.7" displayName="ponction veineuse"/>
          <effectiveTime><high value="202403110735+0100"/></effectiveTime></procedure>
        </entryRelationship>
        <entryRelationship typeCode="COMP"><organizer classCode="BATTERY" moodCode="EVN">
          <code code="24320-4" codeSystem="2.16.840.1.113883.6.1"/>
          <component><observation classCode="OBS" moodCode="EVN">
            <templateId root="1.3.6.1.4.1.19376.1.3.1.6"/>
            <code code="2160-0" codeSystem="2.16.840.1.113883.6.1"/>
            <effectiveTime value="202403111030+0100"/>
            <value xsi:type="PQ" value="80" unit="umol/L"/>
            <entryRelationship typeCode="REFR"><observation classCode="OBS" moodCode="EVN">
              <templateId root="1.3.6.1.4.1.19376.1.3.1.6"/>
              <code code="2160-0" codeSystem="2.16.840.1.113883.6.1"/>
              <effectiveTime value="20230101"/><value xsi:type="PQ" value="75" unit="umol/L"/>
            </observation></entryRelationship>
          </observation></component></organizer></entryRelationship>
      </act></entry>"""))
    assert [(e.value, e.specimen_time) for e in got] == [("80", "2024-03-11T07:35+01:00"),
                                                         ("75", None)]
    assert got[0].details["panel"] == {"code": "24320-4", "system": "LN", "display": ""}
    assert "panel" not in got[1].details


# -- level-1 bodies (nonXMLBody) as the ED data type allows them -------------------------------
def _level1(text_element: str) -> bytes:
    head = HEAD.replace("<component><structuredBody>", "")
    return (head + f"<component><nonXMLBody>{text_element}</nonXMLBody></component>"
            "</ClinicalDocument>").encode()


@pytest.mark.parametrize("compression", ["DF", "GZ", "ZL"])
def test_compressed_pdf_body_is_inflated_before_it_is_read(compression: str) -> None:
    """ED compression (DF deflate, GZ gzip, ZL zlib) on a B64 PDF body: the PDF reader was
    handed the still-compressed bytes (PDF_NOT_PDF) and the report entry was lost."""
    import base64
    import gzip
    import zlib

    from samples.generate_cda import tiny_pdf

    pdf = tiny_pdf(["Compte rendu de consultation", "Examen clinique sans particularité"],
                   title="CR", created="20240312101500")
    packed = {"DF": lambda b: zlib.compress(b)[2:-4], "GZ": gzip.compress,
              "ZL": zlib.compress}[compression](pdf)
    data = _level1(f'<text mediaType="application/pdf" representation="B64" '
                   f'compression="{compression}">{base64.b64encode(packed).decode()}</text>')
    msg = normalize_cda(parse_cda(data), data, "test")
    assert [e.type for e in msg.entries] == ["document", "report"]
    assert msg.entries[0].details["body_compression"] == compression
    assert not [w for w in msg.warnings if "PDF" in w]


def test_broken_compressed_body_and_external_reference_file_the_document_alone() -> None:
    """A stream that does not inflate is a warning with its code, not an exception; a body
    that is only a reference is never fetched: the document is filed and says where it is."""
    import base64

    broken = _level1('<text mediaType="application/pdf" representation="B64" '
                     f'compression="DF">{base64.b64encode(b"pas du deflate").decode()}</text>')
    msg = normalize_cda(parse_cda(broken), broken, "test")
    assert [e.type for e in msg.entries] == ["document"]
    assert any(w.startswith("CDA_BAD_COMPRESSION") for w in msg.warnings)
    referenced = _level1('<text mediaType="application/pdf"><reference '
                         'value="https://exemple.invalid/cr/4242.pdf"/></text>')
    msg = normalize_cda(parse_cda(referenced), referenced, "test")
    assert [e.type for e in msg.entries] == ["document"]
    assert msg.entries[0].details["body_reference"] == "https://exemple.invalid/cr/4242.pdf"
    warning = next(w for w in msg.warnings if w.startswith("CDA_EXTERNAL_BODY"))
    assert "exemple.invalid" not in warning


# -- statements named only in words (code nullFlavor + originalText) ---------------------------
def test_result_and_procedure_named_only_in_words_are_kept() -> None:
    """<code nullFlavor="OTH"><originalText> with a value (a point-of-care test the lab
    has no code for), a procedure named only in words, a procedure coded only in a
    translation: all three were dropped. Uncoded ones are unmapped, with their words."""
    got = _entries(
        _section("30954-2", '<content ID="g1">Glycémie capillaire au doigt</content>',
                 _result('<value xsi:type="PQ" value="1.12" unit="g/L"/>').replace(
                     '<code code="2160-0" codeSystem="2.16.840.1.113883.6.1" '
                     'displayName="Créatinine"/>',
                     '<code nullFlavor="OTH"><originalText><reference value="#g1"/>'
                     "</originalText></code>")),
        _section("47519-4", '<content ID="a1">Pose d\'un plâtre de l\'avant-bras</content>', """
          <entry><procedure classCode="PROC" moodCode="EVN">
            <templateId root="2.16.840.1.113883.10.20.22.4.14"/>
            <code nullFlavor="OTH"><originalText><reference value="#a1"/></originalText>
            </code><effectiveTime value="20240110"/></procedure></entry>
          <entry><procedure classCode="PROC" moodCode="EVN">
            <templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.19"/>
            <code nullFlavor="OTH"><translation code="QZJA002" codeSystem="1.2.250.1.213.2.5"
              displayName="ablation de lésion cutanée"/></code></procedure></entry>
          <entry><procedure classCode="PROC" moodCode="EVN">
            <templateId root="2.16.840.1.113883.10.20.22.4.14"/>
            <code nullFlavor="UNK"/></procedure></entry>"""))
    assert [(e.type, e.code, e.system, e.display, e.mapped) for e in got] == [
        ("lab_result", None, None, "Glycémie capillaire au doigt", False),
        ("procedure", None, None, "Pose d'un plâtre de l'avant-bras", False),
        ("procedure", "QZJA002", "CCAM", "ablation de lésion cutanée", True)]
    assert (got[0].value, got[0].unit) == ("1.12", "g/L")
    assert got[1].effective == "2024-01-10"


def test_result_without_code_nor_words_is_still_not_filed() -> None:
    assert _entries(_section("30954-2", "Résultats", _result(
        '<value xsi:type="PQ" value="1.12" unit="g/L"/>').replace(
        '<code code="2160-0" codeSystem="2.16.840.1.113883.6.1" displayName="Créatinine"/>',
        '<code nullFlavor="UNK"/>'))) == []


# -- translations: the shared terminology over the sender's local code -------------------------
def test_local_code_with_a_standard_translation_is_filed_under_the_translation() -> None:
    """A problem coded in the hospital's local thesaurus with its CIM-10 translation, a
    procedure under a local code with its SNOMED CT translation: filed under the local code
    (unmapped), the shared one ignored. A translation in another local system changes
    nothing."""
    got = _entries(
        _section("11450-4", "Problèmes", """<entry><observation classCode="OBS" moodCode="EVN">
          <templateId root="2.16.840.1.113883.10.20.22.4.4"/>
          <code code="55607006" codeSystem="2.16.840.1.113883.6.96"/>
          <value xsi:type="CD" code="CARD-12" codeSystem="1.2.250.1.999.3.1"
            displayName="HTA (thésaurus local)"><translation code="LOC9"
            codeSystem="1.2.250.1.999.3.2"/><translation code="I10"
            codeSystem="2.16.840.1.113883.6.3" displayName="Hypertension essentielle"/></value>
          </observation></entry>"""),
        _section("47519-4", "Actes", """<entry><procedure classCode="PROC" moodCode="EVN">
          <templateId root="2.16.840.1.113883.10.20.22.4.14"/>
          <code code="PR-0042" codeSystem="1.2.250.1.999.3.3" displayName="appendicectomie">
            <translation code="80146002" codeSystem="2.16.840.1.113883.6.96"/></code>
          </procedure></entry>
          <entry><procedure classCode="PROC" moodCode="EVN">
          <templateId root="2.16.840.1.113883.10.20.22.4.14"/>
          <code code="PR-0043" codeSystem="1.2.250.1.999.3.3" displayName="suture">
            <translation code="S-99" codeSystem="1.2.250.1.999.3.4"/></code>
          </procedure></entry>"""))
    assert [(e.code, e.system, e.display, e.mapped) for e in got] == [
        ("I10", "CIM-10", "Hypertension essentielle", True),
        ("80146002", "SNOMED-CT", "appendicectomie", True),
        ("PR-0043", "1.2.250.1.999.3.3", "suture", False)]


# -- prose longer than the store's columns -----------------------------------------------------
def test_long_prose_is_shortened_not_the_whole_document_refused() -> None:
    """A problem named by a long narrative paragraph (display, 500 at most) and a reference
    range written out for every age (120 at most) made the whole document FIELD_TOO_LONG.
    Shortened, kept whole in details; a warning says where, not what."""
    paragraph = "Antécédent de cardiopathie ischémique avec pose de stent en 2019, " * 12
    ranges = "Adulte : 0,5 à 1,2 ; enfant de moins de 12 ans : 0,3 à 0,9 ; " * 4
    data = (HEAD + _section("11450-4", f'<paragraph ID="p7">{paragraph}</paragraph>',
                            PROBLEM.format(ident="P7", value="""
      <value xsi:type="CD" nullFlavor="OTH"><originalText><reference value="#p7"/>
      </originalText></value>"""))
            + _section("30954-2", "Résultats", _result(
                '<value xsi:type="PQ" value="80" unit="umol/L"/>',
                f"<referenceRange><observationRange><text>{ranges}</text></observationRange>"
                "</referenceRange>")) + TAIL).encode()
    msg = normalize_cda(parse_cda(data), data, "test")
    problem, result = msg.entries[1:]
    assert len(problem.display) == 500 and problem.display.endswith("…")
    assert problem.details["full_text"]["display"] == paragraph.strip()
    assert len(result.reference_range) == 120
    assert result.details["full_text"]["reference_range"] == ranges.strip()
    shortened = [w for w in msg.warnings if "shortened" in w]
    assert len(shortened) == 2 and not any("stent" in w or "Adulte" in w for w in shortened)


# -- family history: a relative's condition is never the patient's problem ---------------------
def test_family_history_is_about_the_relative_not_the_patient() -> None:
    """CI-SIS FR-Antecedents-familiaux (IHE PCC family history organizer, subject =
    relatedSubject MTH, observations coded in CIM-10) were filed as the patient's problems;
    C-CDA family history observations as the patient's observations, their 'age at onset'
    child too. They are family_history entries naming the relative."""
    got = _entries(_section("10157-6", "Antécédents familiaux", """
      <entry><organizer classCode="CLUSTER" moodCode="EVN">
        <templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.15"/><statusCode code="completed"/>
        <subject typeCode="SBJ"><relatedSubject classCode="PRS">
          <code code="MTH" codeSystem="2.16.840.1.113883.5.111" displayName="Mère"/>
          <subject><administrativeGenderCode code="F" codeSystem="2.16.840.1.113883.5.1"/>
          </subject></relatedSubject></subject>
        <component><observation classCode="OBS" moodCode="EVN">
          <templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.13"/>
          <templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.13.3"/>
          <id root="1.2.250.1.999.12" extension="FH1"/>
          <code code="282291009" codeSystem="2.16.840.1.113883.6.96"/>
          <value xsi:type="CD" code="E11" codeSystem="2.16.840.1.113883.6.3"
            displayName="Diabète de type 2"/></observation></component>
      </organizer></entry>
      <entry><organizer classCode="CLUSTER" moodCode="EVN">
        <templateId root="2.16.840.1.113883.10.20.22.4.45"/>
        <subject><relatedSubject classCode="PRS"><code code="FTH"
          codeSystem="2.16.840.1.113883.5.111"/><subject><sdtc:birthTime value="1940"/>
          <sdtc:deceasedInd value="true"/></subject></relatedSubject></subject>
        <component><observation classCode="OBS" moodCode="EVN">
          <id root="1.2.250.1.999.12" extension="FH2"/>
          <code code="64572001" codeSystem="2.16.840.1.113883.6.96"/>
          <value xsi:type="CD" code="22298006" codeSystem="2.16.840.1.113883.6.96"
            displayName="infarctus du myocarde"/>
          <entryRelationship typeCode="SUBJ" inversionInd="true"><observation
            classCode="OBS" moodCode="EVN"><templateId root="2.16.840.1.113883.10.20.22.4.31"/>
            <code code="445518008" codeSystem="2.16.840.1.113883.6.96"/>
            <value xsi:type="PQ" value="57" unit="a"/></observation></entryRelationship>
        </observation></component></organizer></entry>"""))
    assert [(e.type, e.code, e.system, e.details["relative"]["code"]) for e in got] == [
        ("family_history", "E11", "CIM-10", "MTH"), ("family_history", "22298006", "SNOMED-CT",
                                                    "FTH")]
    assert got[0].details["relative"]["sex"] == "F"
    assert (got[1].details["relative"]["birth_time"],
            got[1].details["relative"]["deceased"]) == ("1940", True)


def test_observation_about_a_parent_says_so() -> None:
    """A newborn's certificate (CI-SIS CS8) records the mother's smoking with
    subject/relatedSubject MTH: it stays an observation, but says whom it is about."""
    entry = _one(_section("29762-2", "Mode de vie", """<entry><observation classCode="OBS"
      moodCode="EVN"><code code="74011-8" codeSystem="2.16.840.1.113883.6.1"/>
      <subject><relatedSubject classCode="PRS"><code code="MTH"
        codeSystem="2.16.840.1.113883.5.111"/></relatedSubject></subject>
      <value xsi:type="INT" value="0"/></observation></entry>"""))
    assert (entry.type, entry.value) == ("observation", "0")
    assert entry.details["subject"]["code"] == "MTH"


# -- plans: a vaccination or a procedure intended is not one done ------------------------------
@pytest.mark.parametrize("mood", ["INT", "RQO", "PRP", "APT", "ARQ"])
def test_planned_vaccination_and_procedure_are_plans_not_facts(mood: str) -> None:
    """C-CDA Planned Immunization / Planned Procedure, CI-SIS plan de soins (moodCode INT...)
    were filed as immunization / procedure entries: a vaccine never given exported as an
    Immunization 'completed'. They are 'plan' entries saying what is planned."""
    got = _entries(_section("18776-5", "Plan de soins", f"""
      <entry><substanceAdministration classCode="SBADM" moodCode="{mood}">
        <templateId root="2.16.840.1.113883.10.20.22.4.120"/>
        <id root="1.2.250.1.999.13" extension="V1"/><statusCode code="active"/>
        <effectiveTime value="20240601"/>
        <consumable><manufacturedProduct><manufacturedMaterial>
          <code code="J07BM03" codeSystem="2.16.840.1.113883.6.73" displayName="HPV"/>
        </manufacturedMaterial></manufacturedProduct></consumable>
      </substanceAdministration></entry>
      <entry><procedure classCode="PROC" moodCode="{mood}">
        <templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.19"/>
        <id root="1.2.250.1.999.13" extension="P1"/>
        <code code="HHFA016" codeSystem="1.2.250.1.213.2.5" displayName="appendicectomie"/>
        <statusCode code="active"/></procedure></entry>"""))
    assert [(e.type, e.code, e.details["planned"], e.details["mood"]) for e in got] == [
        ("plan", "J07BM03", "immunization", mood), ("plan", "HHFA016", "procedure", mood)]


def test_vaccination_given_stays_an_immunization() -> None:
    entry = _one(_section("11369-6", "Vaccins", """
      <entry><substanceAdministration classCode="SBADM" moodCode="EVN">
        <templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.12"/><effectiveTime value="20231015"/>
        <consumable><manufacturedProduct><manufacturedMaterial>
          <code code="J07BB02" codeSystem="2.16.840.1.113883.6.73" displayName="grippe"/>
        </manufacturedMaterial></manufacturedProduct></consumable>
      </substanceAdministration></entry>"""))
    assert (entry.type, "planned" in entry.details) == ("immunization", False)


# -- reference ranges ---------------------------------------------------------------------------
def test_the_normal_range_is_the_one_interpreted_normal() -> None:
    """C-CDA sends one observationRange per interpretation ('positive: abnormal' first, say):
    the first was taken, whatever it said; a coded range without text was lost."""
    ranges = """
      <referenceRange><observationRange><text>Positif : pathologique</text>
        <value xsi:type="CO" code="10828004" codeSystem="2.16.840.1.113883.6.96"
          displayName="Positif"/><interpretationCode code="A"
          codeSystem="2.16.840.1.113883.5.83"/></observationRange></referenceRange>
      <referenceRange><observationRange>
        <value xsi:type="CO" code="260385009" codeSystem="2.16.840.1.113883.6.96"
          displayName="Négatif"/><interpretationCode code="N"
          codeSystem="2.16.840.1.113883.5.83"/></observationRange></referenceRange>"""
    entry = _one(_section("30954-2", "Résultats", _result(
        '<value xsi:type="CO" code="10828004" codeSystem="2.16.840.1.113883.6.96" '
        'displayName="Positif"/><interpretationCode code="A" '
        'codeSystem="2.16.840.1.113883.5.83"/>', ranges, code="60256-5")))
    assert (entry.value, entry.interpretation, entry.reference_range) == ("Positif", "A",
                                                                          "Négatif")
    assert entry.details["reference_ranges"] == 2


# -- 'no known ...' is no medication, vaccination, procedure or problem -----------------------
IPS_ABSENT = "2.16.840.1.113883.5.1150.1"


def test_no_known_medications_is_an_absence_and_no_information_is_not_filed() -> None:
    """CI-SIS / IPS say an empty list with a code of the absent-unknown system where the
    product, vaccine or act goes: 'no-known-immunizations' was filed as a vaccination (an
    Immunization 'completed' in FHIR). Nothing known: an 'absence' entry saying of what;
    no information: not filed, a warning says where."""
    def vaccine(code: str, ident: str) -> str:
        return f"""<entry><substanceAdministration classCode="SBADM" moodCode="EVN">
          <templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.12"/>
          <id root="1.2.250.1.999.14" extension="{ident}"/>
          <code code="{code}" codeSystem="{IPS_ABSENT}"/>
          <effectiveTime nullFlavor="NA"/>
          <consumable><manufacturedProduct><manufacturedMaterial><code nullFlavor="NA"/>
          </manufacturedMaterial></manufacturedProduct></consumable>
        </substanceAdministration></entry>"""
    data = (HEAD + _section("11369-6", "Aucun vaccin connu",
                            vaccine("no-known-immunizations", "V0")
                            + vaccine("no-immunization-info", "V9"))
            + _section("11450-4", "Problèmes", """<entry><observation classCode="OBS"
              moodCode="EVN"><templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.5"/>
              <code code="55607006" codeSystem="2.16.840.1.113883.6.96"/>
              <value xsi:type="CD" code="no-known-problems"
                codeSystem="2.16.840.1.113883.5.1150.1"/></observation></entry>""")
            + TAIL).encode()
    msg = normalize_cda(parse_cda(data), data, "test")
    got = msg.entries[1:]
    assert [(e.type, e.code, e.details["absent"], e.mapped) for e in got] == [
        ("absence", "no-known-immunizations", "immunization", True),
        ("absence", "no-known-problems", "problem", True)]
    assert any(w.startswith("CDA_NO_INFORMATION") for w in msg.warnings)


# -- the time of an organizer is its components' when they have none ---------------------------
def test_measurements_take_the_time_of_their_organizer() -> None:
    """CI-SIS / IHE PCC vital signs: the organizer holds the time, each measurement says
    effectiveTime nullFlavor="NA"; C-CDA assessment scale items have none, the scale has
    it. Such entries had no time at all (41 of the 66 vital signs of the ANS examples).
    A component's own time wins; a previous result nested with REFR keeps none."""
    got = _entries(_section("8716-3", "Signes vitaux", """
      <entry><organizer classCode="CLUSTER" moodCode="EVN">
        <templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.13.1"/>
        <code code="85353-1" codeSystem="2.16.840.1.113883.6.1"/>
        <statusCode code="completed"/><effectiveTime value="20240312"/>
        <component><observation classCode="OBS" moodCode="EVN">
          <templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.13.2"/>
          <code code="29463-7" codeSystem="2.16.840.1.113883.6.1"/>
          <effectiveTime nullFlavor="NA"/><value xsi:type="PQ" value="59" unit="kg"/>
        </observation></component>
        <component><observation classCode="OBS" moodCode="EVN">
          <templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.13.2"/>
          <code code="8867-4" codeSystem="2.16.840.1.113883.6.1"/>
          <effectiveTime value="202403121015+0100"/><value xsi:type="PQ" value="64"
            unit="/min"/></observation></component>
      </organizer></entry>"""), _section("47420-5", "Autonomie", """
      <entry><observation classCode="OBS" moodCode="EVN">
        <templateId root="2.16.840.1.113883.10.20.22.4.69"/>
        <code code="35088-4" codeSystem="2.16.840.1.113883.6.1"/>
        <effectiveTime value="20240311"/><value xsi:type="INT" value="14"/>
        <entryRelationship typeCode="COMP"><observation classCode="OBS" moodCode="EVN">
          <code code="9267-6" codeSystem="2.16.840.1.113883.6.1"/>
          <value xsi:type="INT" value="4"/></observation></entryRelationship>
        <entryRelationship typeCode="REFR"><observation classCode="OBS" moodCode="EVN">
          <code code="35088-4" codeSystem="2.16.840.1.113883.6.1"/>
          <value xsi:type="INT" value="12"/></observation></entryRelationship>
      </observation></entry>"""))
    assert [(e.code, e.effective) for e in got] == [
        ("29463-7", "2024-03-12"), ("8867-4", "2024-03-12T10:15+01:00"),
        ("35088-4", "2024-03-11"), ("9267-6", "2024-03-11"), ("35088-4", None)]


# -- value types as the data types define them ---------------------------------------------------
@pytest.mark.parametrize(("value", "expected"), [
    # IVL_PQ given by its centre only: the value was lost (no bound, no point value)
    ('<value xsi:type="IVL_PQ"><center value="7" unit="d"/></value>', ("7", 7.0, "d", {})),
    # SC: a string with a code, the code was dropped
    ('<value xsi:type="SC" code="POS" codeSystem="1.2.250.1.999.4">positif franc</value>',
     ("positif franc", None, None, {"code": "POS", "system": "1.2.250.1.999.4"})),
    # ED pointing into the narrative: read as ''
    ('<value xsi:type="ED"><reference value="#v1"/></value>',
     ("Aspect trouble", None, None, {})),
    # a TS the sender wrote as ISO 8601: lost, without a word; read now (normalizers/dates)
    ('<value xsi:type="TS" value="2024-09-01"/>', ("2024-09-01", None, None, {})),
    ('<value xsi:type="TS" value="20240901"/>', ("2024-09-01", None, None, {})),
])
def test_value_types_keep_what_they_say_too(value: str, expected: tuple) -> None:
    data = (HEAD + _section("29762-2", '<content ID="v1">Aspect trouble</content>',
                            f"""<entry><observation classCode="OBS" moodCode="EVN">
      <code code="11345-6" codeSystem="2.16.840.1.113883.6.1"/>{value}</observation></entry>""")
            + TAIL).encode()
    msg = normalize_cda(parse_cda(data), data, "test")
    entry = msg.entries[1]
    assert (entry.value, entry.value_num, entry.unit,
            entry.details.get("value_code", {})) == expected
    assert not any(w.startswith("CDA_BAD_DATE") for w in msg.warnings)


@pytest.mark.parametrize("value", [
    '<value xsi:type="PQ" value="un virgule huit" unit="g/L"/>',
    '<value xsi:type="INT" value="quelques"/>',
    '<value xsi:type="REAL" value="1,8,4"/>',  # '1,84' is a decimal comma (round 15)
])
def test_a_number_that_is_not_one_is_filed_as_text_with_a_warning(value: str) -> None:
    """Before, filed as text with no numeric value and no word to the sender (the HL7v2
    OBX NM of the same fails the message: OBX_BAD_NUMBER)."""
    data = (HEAD + _section("29762-2", "", f"""<entry><observation classCode="OBS"
      moodCode="EVN"><code code="2093-3" codeSystem="2.16.840.1.113883.6.1"/>{value}
      </observation></entry>""") + TAIL).encode()
    msg = normalize_cda(parse_cda(data), data, "test")
    assert msg.entries[1].value_num is None and msg.entries[1].value
    (warning,) = [w for w in msg.warnings if w.startswith("CDA_BAD_NUMBER")]
    assert warning.startswith("CDA_BAD_NUMBER: /ClinicalDocument/component/structuredBody/")
    assert warning.split(": ")[1].endswith("/observation/value")
    assert msg.entries[1].value not in warning


@pytest.mark.parametrize(("old", "new", "where"), [
    ('extension="IPP-4242"', 'extension="' + "4" * 120 + '"',
     "/ClinicalDocument/recordTarget/patientRole"),
    ("<family qualifier=\"BR\">Essai</family>", "<family>" + "Essai-" * 40 + "</family>",
     "/ClinicalDocument/recordTarget/patientRole"),
    ('extension="DOC-REEL-1"', 'extension="' + "D" * 420 + '"', "/ClinicalDocument/id"),
])
def test_a_patient_or_id_too_long_is_located_in_the_document(old: str, new: str,
                                                             where: str) -> None:
    """Before, FIELD_TOO_LONG pointed at 'PID' (or 'MSH-10'), which a CDA has not."""
    data = (HEAD.replace(old, new, 1) + _section("29762-2", "", "") + TAIL).encode()
    assert new in data.decode()
    with pytest.raises(NormalizationError) as exc:
        normalize_cda(parse_cda(data), data, "test")
    assert (exc.value.code, exc.value.location) == ("FIELD_TOO_LONG", where)
    assert "Essai" not in str(exc.value) and "4444" not in str(exc.value)


def test_dose_given_by_its_centre() -> None:
    entry = _one(_section("10160-0", "Traitements", _medication(
        '<doseQuantity><center value="2" unit="{comprimé}"/></doseQuantity>')))
    assert entry.details["dose"] == "2 {comprimé}"


@pytest.mark.parametrize("compression", ["", "DF"])
def test_base64_text_value_is_read(compression: str) -> None:
    """A result whose value is an ED text/plain in base64 (possibly deflated) was dropped
    with the binary values; a binary one says its media type; one that does not decode is a
    warning, not an exception."""
    import base64
    import zlib

    text = b"Urines jaune paille, limpides"
    packed = zlib.compress(text)[2:-4] if compression else text
    attr = f' compression="{compression}"' if compression else ""
    entry = _one(_section("30954-2", "Résultats", _result(
        f'<value xsi:type="ED" mediaType="text/plain" representation="B64"{attr}>'
        f"{base64.b64encode(packed).decode()}</value>", code="5778-6")))
    assert entry.value == "Urines jaune paille, limpides"
    data = (HEAD + _section("30954-2", "Résultats", _result(
        '<value xsi:type="ED" mediaType="image/png" representation="B64">iVBORw0K</value>')
        + _result('<value xsi:type="ED" mediaType="text/plain" representation="B64" '
                  'compression="DF">cGFzIGRlZmxhdGU=</value>', code="5778-6")) + TAIL).encode()
    msg = normalize_cda(parse_cda(data), data, "test")
    png, broken = msg.entries[1:]
    assert (png.value, png.details["value_media_type"]) == (None, "image/png")
    assert broken.value is None
    assert any(w.startswith("CDA_BAD_COMPRESSION") for w in msg.warnings)


@pytest.mark.parametrize("representation", ["TXT", "B64"])
def test_level1_text_body_is_the_documents_narrative(representation: str) -> None:
    """IHE XDS-SD text/plain body: its words were only in the archived XML; they are the
    document's narrative now, as a structured body's sections are."""
    import base64

    words = "Compte rendu dicté : suites simples, ablation des fils à J10."
    text = base64.b64encode(words.encode()).decode() if representation == "B64" else words
    data = _level1(f'<text mediaType="text/plain" representation="{representation}">'
                   f"{text}</text>")
    msg = normalize_cda(parse_cda(data), data, "test")
    assert [e.type for e in msg.entries] == ["document"]
    assert msg.entries[0].details["sections"] == [{"code": None, "title": None,
                                                   "text": words, "level": 0}]


# -- codes that are no codes -------------------------------------------------------------------
def test_placeholder_code_and_a_value_repeating_the_question() -> None:
    """Seen in a US vendor export: a drug coded code="Unknown" in RxNorm (its real code in a
    translation, its name beside), a problem whose value repeats the observation code
    ('Problem', the diagnosis in an ICD translation). Filed as RxNorm 'Unknown' and as the
    problem 'Problem'. A product whose only translation has no code raised TypeError."""
    got = _entries(
        _section("10160-0", '<content ID="m5">Décongestionnant 120 mg</content>', _medication(
            "", product="""<code code="Unknown" displayName="Unknown"
              codeSystem="2.16.840.1.113883.6.88"><originalText><reference value="#m5"/>
              </originalText><translation code="60000002" codeSystem="1.2.250.1.213.2.3.1"
              displayName="DECONGESTIONNANT 120 mg gélule"/></code>
              <name>Décongestionnant</name>""")
        + _medication("", product="""<code nullFlavor="UNK"><translation nullFlavor="UNK"/>
              </code><name>Sirop maison</name>""")),
        _section("11450-4", '<content ID="d1">Migraine sans aura</content>',
                 PROBLEM.format(ident="P4", value="""<value xsi:type="CD" code="55607006"
                   codeSystem="2.16.840.1.113883.6.96" displayName="Problem"><originalText>
                   <reference value="#d1"/></originalText><translation code="G43.0"
                   codeSystem="2.16.840.1.113883.6.3"/></value>""")
                 + PROBLEM.format(ident="P5", value="""<value xsi:type="CD" code="55607006"
                   codeSystem="2.16.840.1.113883.6.96" displayName="Problem"><originalText>
                   <reference value="#d1"/></originalText></value>""")))
    assert [(e.type, e.code, e.system, e.display) for e in got] == [
        ("medication", "60000002", "CIS", "DECONGESTIONNANT 120 mg gélule"),
        ("medication", None, None, "Sirop maison"),
        ("problem", "G43.0", "CIM-10", "Migraine sans aura"),
        ("problem", None, None, "Migraine sans aura")]


# -- a problem's clinical status is its concern's ----------------------------------------------
@pytest.mark.parametrize(("concern", "status"), [("active", "final"), ("completed", "final"),
                                                  ("nullified", "entered-in-error")])
def test_problem_keeps_the_status_of_its_concern(concern: str, status: str) -> None:
    """The problem observation's statusCode is always 'completed' (C-CDA, IHE PCC): whether
    the problem is active or resolved is the concern act's statusCode, which was lost; a
    concern recorded in error (nullified) left its problem filed as final."""
    entry = _one(_section("11450-4", "Problèmes", f"""<entry><act classCode="ACT"
      moodCode="EVN"><templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.5.2"/>
      <code nullFlavor="NA"/><statusCode code="{concern}"/>
      <entryRelationship typeCode="SUBJ"><observation classCode="OBS" moodCode="EVN">
        <templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.5"/>
        <code code="282291009" codeSystem="2.16.840.1.113883.6.96"/>
        <statusCode code="completed"/>
        <value xsi:type="CD" code="K35" codeSystem="2.16.840.1.113883.6.3"
          displayName="Appendicite aiguë"/></observation></entryRelationship>
      </act></entry>"""))
    assert (entry.type, entry.code, entry.status) == ("problem", "K35", status)
    assert entry.details["concern_status"] == concern


def test_procedure_activity_observation_is_a_procedure() -> None:
    """C-CDA Procedure Activity Observation (template 4.13: an ECG, a spirometry), on an
    observation or, as some senders write it, on a procedure element: never filed (the
    template was unknown and it has no result template)."""
    got = _entries(_section("47519-4", "Actes", """
      <entry><observation classCode="OBS" moodCode="EVN">
        <templateId root="2.16.840.1.113883.10.20.22.4.13"/>
        <id root="1.2.250.1.999.15" extension="ECG1"/>
        <code code="29303009" codeSystem="2.16.840.1.113883.6.96"
          displayName="électrocardiogramme"/><statusCode code="completed"/>
        <effectiveTime value="20240105"/>
        <value xsi:type="CD" code="17621005" codeSystem="2.16.840.1.113883.6.96"
          displayName="normal"/></observation></entry>
      <entry><procedure classCode="OBS" moodCode="EVN">
        <templateId root="2.16.840.1.113883.10.20.22.4.13"/>
        <id root="1.2.250.1.999.15" extension="P2"/>
        <code code="DEQP003" codeSystem="1.2.250.1.213.2.5" displayName="ECG"/>
        <effectiveTime value="20240106"/></procedure></entry>"""))
    assert [(e.type, e.code, e.value, e.effective) for e in got] == [
        ("procedure", "29303009", "normal", "2024-01-05"),
        ("procedure", "DEQP003", None, "2024-01-06")]


# -- dispensations and what a medication statement's own code says -----------------------------
def test_dispensed_medication_is_filed_and_a_prescription_reference_is_not() -> None:
    """CI-SIS eDISP (IHE PHARM DIS): the dispensed product is a supply in event mood; it was
    not filed, while the reference to the prescription line it nests (a substanceAdministration
    with code 'PREItem' and no product) was filed as the medication 'PREItem'. A
    substanceAdministration's own code ('DRUG', 'IMMUNIZ') is the kind of act, not the
    product: a magistral preparation was filed as the drug 'DRUG'."""
    section = """<component><section><code code="60590-7"
        codeSystem="2.16.840.1.113883.6.1"/><title>Dispensation</title>
      <text><content ID="p1">Crème préparée : 30 g dermocorticoïde, 70 g excipient</content>
      </text>
      <author><time value="20240312113000+0100"/><assignedAuthor><id
        root="1.2.250.1.71.4.2.1" extension="899999999999"/></assignedAuthor></author>
      <entry><supply classCode="SPLY" moodCode="EVN">
        <templateId root="1.3.6.1.4.1.19376.1.9.1.3.4"/>
        <id root="1.2.250.1.999.16" extension="D1"/><quantity value="2" unit="30009000"/>
        <product><manufacturedProduct><manufacturedMaterial>
          <code><translation code="3400930000001" codeSystem="1.2.250.1.213.2.3.2"
            displayName="PARACETAMOL 500 mg cp, boîte de 16"/></code>
          <lotNumberText>L42</lotNumberText>
        </manufacturedMaterial></manufacturedProduct></product>
        <entryRelationship typeCode="REFR"><substanceAdministration classCode="SBADM"
          moodCode="INT"><templateId root="1.3.6.1.4.1.19376.1.9.1.3.11"/>
          <id root="1.2.250.1.999.16" extension="PRESC-1"/>
          <code code="PREItem" codeSystem="1.3.6.1.4.1.19376.1.9.2.2"/>
          <consumable><manufacturedProduct><manufacturedMaterial nullFlavor="NA"/>
          </manufacturedProduct></consumable></substanceAdministration></entryRelationship>
      </supply></entry>
      <entry><substanceAdministration classCode="SBADM" moodCode="INT">
        <templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.7"/>
        <id root="1.2.250.1.999.16" extension="M2"/>
        <code code="DRUG" codeSystem="2.16.840.1.113883.5.4" displayName="Médicament"/>
        <consumable><manufacturedProduct><manufacturedMaterial><code nullFlavor="NA">
          <originalText><reference value="#p1"/></originalText></code>
        </manufacturedMaterial></manufacturedProduct></consumable>
      </substanceAdministration></entry></section></component>"""
    got = _entries(section)
    assert [(e.type, e.code, e.system, e.display) for e in got] == [
        ("medication", "3400930000001", "CIP", "PARACETAMOL 500 mg cp, boîte de 16"),
        ("medication", None, None, "Crème préparée : 30 g dermocorticoïde, 70 g excipient")]
    dispensed, magistral = got
    assert dispensed.details["dispensed"] is True
    assert dispensed.details["dispensed_quantity"] == "2 30009000"
    assert dispensed.details["lot_number"] == "L42"
    assert dispensed.effective == "2024-03-12T11:30:00+01:00"
    assert magistral.details["act_code"] == "DRUG"


def test_supply_ordered_is_no_dispense() -> None:
    assert _entries(_section("10160-0", "Traitements", """<entry><supply classCode="SPLY"
      moodCode="INT"><templateId root="2.16.840.1.113883.10.20.22.4.18"/>
      <product><manufacturedProduct><manufacturedMaterial><code code="60000003"
        codeSystem="1.2.250.1.213.2.3.1"/></manufacturedMaterial></manufacturedProduct>
      </product></supply></entry>""")) == []


# -- medical devices -----------------------------------------------------------------------------
def test_medical_device_is_a_device_and_its_characteristics_are_not_the_patients() -> None:
    """CI-SIS FR-Dispositif-medical: a supply with the device as a DEV participant (EMDN code,
    brand and model misplaced as NCI translations), its characteristics as nested
    observations. The device was not filed, its 'Taille: 2.5' was, as the patient's
    observation; the NCI 'brand' translation must not replace the device's code. A device
    prescribed (moodCode INT, eP-MED) is a plan."""
    device = """<entry><supply classCode="SPLY" moodCode="{mood}">
        <templateId root="2.16.840.1.113883.10.20.1.34"/>
        <templateId root="1.2.250.1.213.1.1.3.20"/>
        <id root="1.2.250.1.999.17" extension="{ident}"/>
        <effectiveTime xsi:type="IVL_TS"><low value="20230704"/></effectiveTime>
        <participant typeCode="DEV"><participantRole classCode="MANU"><playingDevice>
          <code code="R010302" codeSystem="1.2.250.1.213.2.68"
            displayName="sonde d'intubation à ballonnet"><translation code="C101668"
            codeSystem="2.16.840.1.113883.3.26.1.1" displayName="Marque"/></code>
        </playingDevice></participantRole></participant>
        <entryRelationship typeCode="COMP"><observation classCode="OBS" moodCode="EVN">
          <code code="GEN-234" codeSystem="1.2.250.1.213.1.1.4.322" displayName="Taille"/>
          <value xsi:type="PQ" value="7.5" unit="mm"/></observation></entryRelationship>
      </supply></entry>"""
    got = _entries(_section("46264-8", "Dispositifs médicaux",
                            device.format(mood="EVN", ident="D1")
                            + device.format(mood="INT", ident="D2")))
    assert [(e.type, e.code, e.system, e.display) for e in got] == [
        ("device", "R010302", "EMDN", "sonde d'intubation à ballonnet"),
        ("plan", "R010302", "EMDN", "sonde d'intubation à ballonnet")]
    assert got[0].details["characteristics"] == [
        {"code": "GEN-234", "system": "TA_ASIP", "display": "Taille", "value": "7.5",
         "unit": "mm"}]
    assert got[0].details["period_low"] == "2023-07-04"
    assert (got[1].details["planned"], got[1].details["mood"]) == ("device", "INT")


def test_ccd_supply_of_a_drug_is_no_device() -> None:
    """The CCD supply activity template marks devices and drug supplies alike: a supply
    ordered under a medication stays part of it, one dispensed is a dispensed medication."""
    got = _entries(_section("10160-0", "Traitements", _medication("""
      <entryRelationship typeCode="REFR"><supply classCode="SPLY" moodCode="INT">
        <templateId root="2.16.840.1.113883.10.20.1.34"/><quantity value="30"/>
        <product><manufacturedProduct><manufacturedMaterial><code code="60234173"
          codeSystem="1.2.250.1.213.2.3.1"/></manufacturedMaterial></manufacturedProduct>
        </product></supply></entryRelationship>""") + """<entry><supply classCode="SPLY"
      moodCode="EVN"><templateId root="2.16.840.1.113883.10.20.1.34"/>
      <quantity value="1"/><product><manufacturedProduct><manufacturedMaterial>
        <code code="60234173" codeSystem="1.2.250.1.213.2.3.1"/></manufacturedMaterial>
      </manufacturedProduct></product></supply></entry>"""))
    assert [(e.type, e.code, e.details.get("dispensed")) for e in got] == [
        ("medication", "60234173", None), ("medication", "60234173", True)]


def test_problem_resolution_date_is_not_its_onset() -> None:
    """effectiveTime low = onset, high = resolution (C-CDA, IHE PCC): a problem with only a
    high was dated by its resolution; the resolution is kept apart."""
    got = _entries(_section("11450-4", "Antécédents",
                            PROBLEM.format(ident="R1", value="""<value xsi:type="CD"
      code="K35" codeSystem="2.16.840.1.113883.6.3"/>""").replace(
        '<effectiveTime><low value="20090709"/></effectiveTime>',
        '<effectiveTime><low nullFlavor="UNK"/><high value="20100301"/></effectiveTime>')
                            + PROBLEM.format(ident="R2", value="""<value xsi:type="CD"
      code="J18" codeSystem="2.16.840.1.113883.6.3"/>""").replace(
        '<effectiveTime><low value="20090709"/></effectiveTime>',
        '<effectiveTime><low value="20090709"/><high value="20090801"/></effectiveTime>')))
    assert [(e.code, e.effective, e.details.get("resolved")) for e in got] == [
        ("K35", None, "2010-03-01"), ("J18", "2009-07-09", "2009-08-01")]


def test_problem_status_and_severity_are_kept() -> None:
    """The status (LOINC 33999-4: active, resolved) and severity (ActCode SEV) nested in a
    problem were skipped with its other children and lost."""
    entry = _one(_section("11450-4", "Problèmes", PROBLEM.format(ident="S1", value="""
      <value xsi:type="CD" code="I10" codeSystem="2.16.840.1.113883.6.3"/>
      <entryRelationship typeCode="REFR"><observation classCode="OBS" moodCode="EVN">
        <code code="33999-4" codeSystem="2.16.840.1.113883.6.1"/>
        <value xsi:type="CD" code="413322009" codeSystem="2.16.840.1.113883.6.96"
          displayName="résolu"/></observation></entryRelationship>
      <entryRelationship typeCode="SUBJ" inversionInd="true"><observation classCode="OBS"
        moodCode="EVN"><code code="SEV" codeSystem="2.16.840.1.113883.5.4"/>
        <value xsi:type="CD" code="24484000" codeSystem="2.16.840.1.113883.6.96"
          displayName="sévère"/></observation></entryRelationship>""")))
    assert entry.code == "I10"
    assert entry.details["clinical_status"] == {"code": "413322009", "system": "SNOMED-CT",
                                                "display": "résolu"}
    assert entry.details["severity"]["display"] == "sévère"


def test_vaccination_not_given_says_why() -> None:
    """C-CDA: negationInd on the immunization, the refusal reason as the code of an RSON
    observation ('PATOBJ'); it was lost (the vaccination stays negated, as before)."""
    entry = _one(_section("11369-6", "Vaccins", """
      <entry><substanceAdministration classCode="SBADM" moodCode="EVN" negationInd="true">
        <templateId root="2.16.840.1.113883.10.20.22.4.52"/><effectiveTime value="20231015"/>
        <consumable><manufacturedProduct><manufacturedMaterial>
          <code code="J07BB02" codeSystem="2.16.840.1.113883.6.73" displayName="grippe"/>
        </manufacturedMaterial></manufacturedProduct></consumable>
        <entryRelationship typeCode="RSON"><observation classCode="OBS" moodCode="EVN">
          <templateId root="2.16.840.1.113883.10.20.22.4.53"/>
          <code code="PATOBJ" codeSystem="2.16.840.1.113883.5.8"
            displayName="refus du patient"/></observation></entryRelationship>
      </substanceAdministration></entry>"""))
    assert (entry.type, entry.details["negated"]) == ("immunization", True)
    assert entry.details["not_done_reason"] == {"code": "PATOBJ",
                                                "system": "HL7-ACTREASON",
                                                "display": "refus du patient"}


def test_score_and_its_answer_code_are_both_kept() -> None:
    """C-CDA assessment scale items send the score (INT) and the LOINC answer (CO) as two
    values: the answer was dropped."""
    entry = _one(_section("47420-5", "Autonomie", """<entry><observation classCode="OBS"
      moodCode="EVN"><code code="9267-6" codeSystem="2.16.840.1.113883.6.1"/>
      <effectiveTime value="20240311"/><value xsi:type="INT" value="3"/>
      <value xsi:type="CO" code="LA6555-2" codeSystem="2.16.840.1.113883.6.1"
        displayName="ouverture des yeux à la demande"/></observation></entry>"""))
    assert (entry.value, entry.value_num) == ("3", 3.0)
    assert entry.details["value_code"] == {"code": "LA6555-2", "system": "LN",
                                           "display": "ouverture des yeux à la demande"}


def test_planned_test_and_goal_are_plans() -> None:
    """C-CDA Planned Observation (an ECG to do, no value) and a goal (moodCode GOL, a target
    weight) were filed as observations: exported as Observations that exist."""
    got = _entries(_section("18776-5", "Plan de soins", """
      <entry><observation classCode="OBS" moodCode="INT">
        <templateId root="2.16.840.1.113883.10.20.22.4.44"/>
        <code code="34534-8" codeSystem="2.16.840.1.113883.6.1" displayName="ECG 12 voies"/>
        <statusCode code="active"/><effectiveTime value="20240623"/></observation></entry>
      <entry><observation classCode="OBS" moodCode="GOL">
        <templateId root="2.16.840.1.113883.10.20.22.4.121"/>
        <code code="29463-7" codeSystem="2.16.840.1.113883.6.1" displayName="poids"/>
        <value xsi:type="PQ" value="70" unit="kg"/></observation></entry>"""))
    assert [(e.type, e.code, e.details["mood"], e.value) for e in got] == [
        ("plan", "34534-8", "INT", None), ("plan", "29463-7", "GOL", "70")]


def test_what_a_procedure_nests_describes_it() -> None:
    """Observations nested in an act without an entry template of their own ('difficulty:
    easy' of an intubation) are the act's; they were the patient's observations. One with
    its own template (a problem) is still an entry."""
    got = _entries(_section("29554-3", "Actes", """
      <entry><procedure classCode="PROC" moodCode="EVN">
        <templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.19"/>
        <code code="GELD004" codeSystem="1.2.250.1.213.2.5" displayName="intubation"/>
        <effectiveTime value="20240312"/>
        <entryRelationship typeCode="COMP"><observation classCode="OBS" moodCode="EVN">
          <code code="GEN-023" codeSystem="1.2.250.1.213.1.1.4.322"
            displayName="difficulté"/><value xsi:type="ST">facile</value>
        </observation></entryRelationship>
        <entryRelationship typeCode="RSON"><observation classCode="OBS" moodCode="EVN">
          <templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.5"/>
          <code code="282291009" codeSystem="2.16.840.1.113883.6.96"/>
          <value xsi:type="CD" code="K35" codeSystem="2.16.840.1.113883.6.3"/>
        </observation></entryRelationship></procedure></entry>"""))
    assert [(e.type, e.code) for e in got] == [("procedure", "GELD004"), ("problem", "K35")]
    assert got[0].details["observations"] == [
        {"code": "GEN-023", "system": "TA_ASIP", "display": "difficulté", "value": "facile",
         "unit": None}]


def test_procedure_not_done_is_negated_and_says_why() -> None:
    entry = _one(_section("47519-4", "Actes", """<entry><procedure classCode="PROC"
      moodCode="EVN" negationInd="true"><templateId root="2.16.840.1.113883.10.20.22.4.14"/>
      <code code="73761001" codeSystem="2.16.840.1.113883.6.96" displayName="coloscopie"/>
      <effectiveTime value="20240110"/>
      <entryRelationship typeCode="RSON"><observation classCode="OBS" moodCode="EVN">
        <code code="77301-0" codeSystem="2.16.840.1.113883.6.1"/>
        <value xsi:type="CD" code="183944003" codeSystem="2.16.840.1.113883.6.96"
          displayName="refus du patient"/></observation></entryRelationship>
      </procedure></entry>"""))
    assert (entry.type, entry.details["negated"]) == ("procedure", True)
    assert entry.details["not_done_reason"]["code"] == "183944003"
    assert "observations" not in entry.details  # the reason is not what the act found


def test_a_negated_result_is_never_the_same_fact_as_the_positive_one():
    """Dedupe level 4 merges one result received by two channels (same code, instant, value,
    unit). A CDA result with negationInd="true" states the opposite of its value: it must
    not be merged with the HL7v2 result that states the value."""
    from dossiers.deposit import fact_of

    positive = Entry(type="lab_result", key="k1", source_ref="OBX[1]", code="5196-1",
                     system="LN", value="POS", effective="2024-03-12T08:00+01:00")
    negated = Entry(type="lab_result", key="k2", source_ref="/obs", code="5196-1",
                    system="LN", value="POS", effective="2024-03-12T08:00+01:00",
                    details={"negated": True})
    assert fact_of(positive) is not None
    assert fact_of(negated) is None


# -- third round: lab reports (IHE PaLM / XD-LAB, CR-BIO, C-CDA results) ------------------------
def _lab_result(value: str, extra: str = "", code: str = "31147-2") -> str:
    return f"""<entry><observation classCode="OBS" moodCode="EVN">
      <templateId root="1.3.6.1.4.1.19376.1.3.1.6"/><id root="1.2.250.1.999.9" extension="R1"/>
      <code code="{code}" codeSystem="2.16.840.1.113883.6.1"/><statusCode code="completed"/>
      <effectiveTime value="20240310083000+0100"/>{value}{extra}</observation></entry>"""


@pytest.mark.parametrize("xsi_type", ["RTO_INT_INT", "RTO_QTY_QTY"])
def test_titre_with_a_long_ratio_type_is_filed(xsi_type: str) -> None:
    """A titre sent as RTO_INT_INT (or the schema's RTO_QTY_QTY): its type is longer than
    the 10 characters an entry's value type holds, and the whole CR-BIO was refused as
    FIELD_TOO_LONG. The result is filed as an RTO, the type as sent in details."""
    entry = _one(_section("18723-7", "Sérologie", _lab_result(
        f'<value xsi:type="{xsi_type}"><numerator xsi:type="INT" value="1"/>'
        '<denominator xsi:type="INT" value="128"/></value>')))
    assert (entry.value, entry.value_type) == ("1/128", "RTO")
    assert entry.details["xsi_type"] == xsi_type


def _antibiogram(interpretation: str) -> str:
    """The antibiogram battery of an isolate: amoxicillin's MIC (<= 2 mg/L) and its reading."""
    return f"""<component><organizer classCode="BATTERY" moodCode="EVN">
        <templateId root="1.3.6.1.4.1.19376.1.3.1.4"/>
        <code code="18769-0" codeSystem="2.16.840.1.113883.6.1"/><statusCode code="completed"/>
        <component><observation classCode="OBS" moodCode="EVN">
          <templateId root="1.3.6.1.4.1.19376.1.3.1.6"/>
          <code code="18862-3" codeSystem="2.16.840.1.113883.6.1"/><statusCode code="completed"/>
          <value xsi:type="IVL_PQ"><high value="2" unit="mg/L" inclusive="true"/></value>
          <interpretationCode code="{interpretation}" codeSystem="2.16.840.1.113883.5.83"/>
        </observation></component></organizer></component>"""


def _isolate(germ: str, name: str, number: str, interpretation: str) -> str:
    return f"""<entryRelationship typeCode="COMP"><organizer classCode="CLUSTER" moodCode="EVN">
      <templateId root="1.3.6.1.4.1.19376.1.3.1.5"/><statusCode code="completed"/>
      <effectiveTime value="20240311160000+0100"/>
      <specimen typeCode="SPC"><specimenRole classCode="SPEC">
        <id root="1.2.250.1.999.9.3" extension="{number}"/>
        <specimenPlayingEntity classCode="MIC"><code code="{germ}"
          codeSystem="2.16.840.1.113883.6.96"><originalText>{name}</originalText></code>
        </specimenPlayingEntity></specimenRole></specimen>
      {_antibiogram(interpretation)}</organizer></entryRelationship>"""


def test_antibiogram_results_say_which_germ_they_are_of() -> None:
    """IHE LAB / CI-SIS microbiology: each isolate organizer names its germ in its specimen
    (specimenPlayingEntity, SNOMED CT); the susceptibility results under it name only the
    antibiotic. Two germs' 'amoxicillin' results could not be told apart: each result now
    carries its isolate (code, the lab's words, the isolate number)."""
    got = _entries(_section("18725-2", "ECBU", f"""<entry><act classCode="ACT" moodCode="EVN">
      <templateId root="1.3.6.1.4.1.19376.1.3.1"/>
      <code code="18725-2" codeSystem="2.16.840.1.113883.6.1"/><statusCode code="completed"/>
      {_isolate("112283007", "Escherichia coli BLSE", "ISO-1", "R")}
      {_isolate("3092008", "Staphylococcus aureus", "ISO-2", "S")}
      </act></entry>"""))
    assert [(e.code, e.interpretation, e.details["isolate"]["code"]) for e in got] == [
        ("18862-3", "R", "112283007"), ("18862-3", "S", "3092008")]
    assert got[0].details["isolate"] == {"code": "112283007", "system": "SNOMED-CT",
                                         "display": "Escherichia coli BLSE",
                                         "id": "1.2.250.1.999.9.3^ISO-1"}
    assert got[0].details["panel"]["code"] == "18769-0"


def test_the_same_antibiotic_result_on_two_germs_is_two_facts() -> None:
    """Dedupe level 4 merges a result another channel brings again (type, code, time, value,
    unit). Two isolates' 'amoxicillin: MIC <= 2 mg/L' at one time are two results: the germ
    is part of the fact, as the HL7v2 susceptibility's organism is."""
    from dossiers.deposit import fact_of

    got = _entries(_section("18725-2", "ECBU", f"""<entry><act classCode="ACT" moodCode="EVN">
      <templateId root="1.3.6.1.4.1.19376.1.3.1"/>
      <code code="18725-2" codeSystem="2.16.840.1.113883.6.1"/><statusCode code="completed"/>
      {_isolate("112283007", "Escherichia coli BLSE", "ISO-1", "S")}
      {_isolate("3092008", "Staphylococcus aureus", "ISO-2", "S")}
      </act></entry>"""))
    assert len(got) == 2 and got[0].value == got[1].value
    assert fact_of(got[0]) and fact_of(got[1]) and fact_of(got[0]) != fact_of(got[1])


def test_interpretation_is_the_hl7_code_of_a_translated_lab_flag() -> None:
    """A lab's own flag ('++') translated to the HL7 ObservationInterpretation code: the
    HL7 code (HH) is the interpretation, the lab's flag kept in details."""
    entry = _one(_section("18719-5", "Biochimie", _lab_result(
        '<value xsi:type="PQ" value="14.2" unit="mmol/L"/>',
        '<interpretationCode code="++" codeSystem="1.2.250.1.999.9.5">'
        '<translation code="HH" codeSystem="2.16.840.1.113883.5.83"/></interpretationCode>'
        '<interpretationCode code="A" codeSystem="2.16.840.1.113883.5.83"/>')))
    assert entry.interpretation == "HH,A"
    assert entry.details["interpretation_local"] == ["++"]


def test_comments_on_a_result_and_on_its_battery_are_kept() -> None:
    """Comments (IHE PCC Comment / CI-SIS FR-Commentaire-ER, C-CDA Comment Activity 4.64)
    nested in a result, a problem..., or held by a battery (CI-SIS puts the battery's
    conclusion among its components) were skipped: they go to details.comments, and to
    details.panel.comments for the battery's."""
    got = _entries(_section("18719-5", '<content ID="com1">Contrôlé sur un 2e tube</content>'
                            '<content ID="concl">Profil compatible avec un syndrome '
                            'inflammatoire</content>', """
      <entry><organizer classCode="BATTERY" moodCode="EVN">
        <templateId root="1.3.6.1.4.1.19376.1.3.1.4"/><statusCode code="completed"/>
        <effectiveTime value="20240310"/>
        <component><observation classCode="OBS" moodCode="EVN">
          <templateId root="1.3.6.1.4.1.19376.1.3.1.6"/>
          <code code="1988-5" codeSystem="2.16.840.1.113883.6.1"/><statusCode code="completed"/>
          <value xsi:type="PQ" value="48" unit="mg/L"/>
          <entryRelationship typeCode="SUBJ" inversionInd="true"><act classCode="ACT"
            moodCode="EVN"><templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.2"/>
            <code code="48767-8" codeSystem="2.16.840.1.113883.6.1"/>
            <text><reference value="#com1"/></text><statusCode code="completed"/></act>
          </entryRelationship>
          <entryRelationship typeCode="SUBJ" inversionInd="true"><act classCode="ACT"
            moodCode="EVN"><templateId root="2.16.840.1.113883.10.20.22.4.64"/>
            <code code="48767-8" codeSystem="2.16.840.1.113883.6.1"/>
            <text>Prélèvement hémolysé</text></act></entryRelationship>
        </observation></component>
        <component><act classCode="ACT" moodCode="EVN">
          <templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.2"/>
          <code code="48767-8" codeSystem="2.16.840.1.113883.6.1"/>
          <text><reference value="#concl"/></text><statusCode code="completed"/></act>
        </component></organizer></entry>"""))
    assert len(got) == 1
    assert got[0].details["comments"] == ["Contrôlé sur un 2e tube", "Prélèvement hémolysé"]
    assert got[0].details["panel"] == {
        "comments": ["Profil compatible avec un syndrome inflammatoire"]}


def test_specimen_of_a_ccda_cluster_organizer_is_no_germ() -> None:
    """A C-CDA Result Organizer may be a CLUSTER and name its specimen (blood): that is the
    material, not an isolate's germ."""
    entry = _one(_section("30954-2", "Résultats", """<entry><organizer classCode="CLUSTER"
      moodCode="EVN"><templateId root="2.16.840.1.113883.10.20.22.4.1"/>
      <code code="6598-7" codeSystem="2.16.840.1.113883.6.1"/><statusCode code="completed"/>
      <specimen typeCode="SPC"><specimenRole><specimenPlayingEntity><code code="119297000"
        codeSystem="2.16.840.1.113883.6.96" displayName="sang"/></specimenPlayingEntity>
      </specimenRole></specimen>
      <component><observation classCode="OBS" moodCode="EVN">
        <templateId root="2.16.840.1.113883.10.20.22.4.2"/>
        <code code="6598-7" codeSystem="2.16.840.1.113883.6.1"/><statusCode code="completed"/>
        <effectiveTime value="20240310"/><value xsi:type="PQ" value="0.01" unit="ng/mL"/>
      </observation></component></organizer></entry>"""))
    assert "isolate" not in entry.details
    assert entry.details["specimen"] == {"code": "119297000", "system": "SNOMED-CT",
                                         "display": "sang"}


def test_a_result_without_value_says_why() -> None:
    """C-CDA pending component: statusCode active, value PQ nullFlavor NA. The result is
    filed without a value (not final) and says why there is none."""
    entry = _one(_section("30954-2", "Résultats", _lab_result(
        '<value xsi:type="PQ" nullFlavor="NA"/>', code="804-5").replace(
        '<statusCode code="completed"/>', '<statusCode code="active"/>')))
    assert (entry.value, entry.status) == (None, "preliminary")  # HL7v2's word (round 17)
    assert entry.details["value_null_flavor"] == "NA"


def test_results_of_a_subcontracting_laboratory_name_it() -> None:
    """IHE LAB Laboratory Performer / CI-SIS FR-Laboratoire-executant on the report act (or
    a battery, or the result itself): the results it holds were done there, not by the
    document's author. Filed as the HL7v2 path files OBX-23: the organization's name."""
    got = _entries(_section("18719-5", "Biochimie", """<entry><act classCode="ACT"
      moodCode="EVN"><templateId root="1.3.6.1.4.1.19376.1.3.1"/>
      <code code="18719-5" codeSystem="2.16.840.1.113883.6.1"/><statusCode code="completed"/>
      <performer typeCode="PRF"><templateId root="1.3.6.1.4.1.19376.1.3.3.1.7"/>
        <assignedEntity><id root="1.2.250.1.71.4.2.1" extension="899900000012"/>
          <representedOrganization><id root="1.2.250.1.71.4.2.2" extension="1129900017"/>
            <name>Laboratoire des Tilleuls</name></representedOrganization></assignedEntity>
      </performer>
      <entryRelationship typeCode="COMP"><organizer classCode="BATTERY" moodCode="EVN">
        <templateId root="1.3.6.1.4.1.19376.1.3.1.4"/><statusCode code="completed"/>
        <component><observation classCode="OBS" moodCode="EVN">
          <templateId root="1.3.6.1.4.1.19376.1.3.1.6"/>
          <code code="2160-0" codeSystem="2.16.840.1.113883.6.1"/><statusCode code="completed"/>
          <effectiveTime value="20240310"/><value xsi:type="PQ" value="80" unit="umol/L"/>
        </observation></component>
        <component><observation classCode="OBS" moodCode="EVN">
          <templateId root="1.3.6.1.4.1.19376.1.3.1.6"/>
          <code code="3094-0" codeSystem="2.16.840.1.113883.6.1"/><statusCode code="completed"/>
          <effectiveTime value="20240310"/><value xsi:type="PQ" value="5.1" unit="mmol/L"/>
          <performer><assignedEntity><id root="1.2.250.1.71.4.2.1" extension="899900000099"/>
          </assignedEntity></performer>
        </observation></component></organizer></entryRelationship></act></entry>"""))
    assert [(e.code, e.performer) for e in got] == [
        ("2160-0", "Laboratoire des Tilleuls"), ("3094-0", "1.2.250.1.71.4.2.1^899900000099")]


def test_value_in_a_non_ucum_unit_sent_as_a_translation_is_kept() -> None:
    """C-CDA 'Results Unit Non-UCUM': a value whose unit is no UCUM unit is a PQ nullFlavor
    OTH carrying the number in a translation, the unit in its originalText; the range the
    same way. The value and the range were lost; the same quantity sent in other units
    beside a UCUM value is kept in details."""
    entry = _one(_section("30954-2", "Résultats", _lab_result(
        '<value xsi:type="PQ" nullFlavor="OTH"><translation value="152" nullFlavor="OTH">'
        '<originalText>G/L</originalText></translation></value>',
        '<referenceRange><observationRange><value xsi:type="IVL_PQ">'
        '<low nullFlavor="OTH"><translation value="150" nullFlavor="OTH"><originalText>G/L'
        '</originalText></translation></low><high nullFlavor="OTH"><translation value="400"'
        ' nullFlavor="OTH"><originalText>G/L</originalText></translation></high></value>'
        '</observationRange></referenceRange>', code="26515-7")))
    assert (entry.value, entry.value_num, entry.unit_original) == ("152", 152.0, "G/L")
    assert entry.reference_range == "150-400"
    assert entry.details["value_translated"] is True
    assert "value_null_flavor" not in entry.details
    both = _one(_section("30954-2", "Résultats", _lab_result(
        '<value xsi:type="PQ" value="1.05" unit="g/L"><translation value="5.8" code="mmol/L"'
        ' codeSystem="2.16.840.1.113883.6.8"/></value>', code="2345-7")))
    assert (both.value, both.unit) == ("1.05", "g/L")
    assert both.details["value_translations"] == [{"value": "5.8", "unit": "mmol/L"}]
    words = "milliers de plaquettes par microlitre de sang total (numération automate)"
    long = _one(_section("30954-2", "Résultats", _lab_result(
        f'<value xsi:type="PQ" nullFlavor="OTH"><translation value="152" nullFlavor="OTH">'
        f'<originalText>{words}</originalText></translation></value>', code="26515-7")))
    assert (long.value, long.unit, long.details["unit_text"]) == ("152", None, words)


@pytest.mark.parametrize(("lab_status", "status"), [("active", "preliminary"),
                                                    ("completed", "final")])
def test_partial_lab_report_is_preliminary(lab_status: str, status: str) -> None:
    """IHE XD-LAB / CI-SIS CR-BIO: documentationOf/serviceEvent/lab:statusCode 'active' says
    the report is partial (results to come); it was filed as a final document."""
    data = (HEAD.replace('<component><structuredBody>', f"""<documentationOf><serviceEvent>
      <code code="18719-5" codeSystem="2.16.840.1.113883.6.1"/>
      <lab:statusCode xmlns:lab="urn:oid:1.3.6.1.4.1.19376.1.3.2" code="{lab_status}"/>
      </serviceEvent></documentationOf><component><structuredBody>""")
            + _section("18719-5", "Biochimie", "") + TAIL).encode()
    document = normalize_cda(parse_cda(data), data, "test").entries[0]
    assert (document.status, document.details["report_status"]) == (status, lab_status)


def test_what_the_document_reports_on_who_signed_and_where_are_kept() -> None:
    """CR-IMG: documentationOf/serviceEvent is the exam (LOINC, its CCAM act and DICOM
    modality as translations, accession number, period, radiologist); legalAuthenticator
    the signing physician; inFulfillmentOf the order; encompassingEncounter/location the
    unit. All were only in the archived XML."""
    header = """<inFulfillmentOf><order><id root="1.2.250.1.999.5" extension="CMD-77"/></order>
      </inFulfillmentOf>
      <documentationOf><serviceEvent classCode="ACT">
        <id root="1.2.250.1.999.6" extension="ACC-2024-118"/>
        <code code="24627-2" codeSystem="2.16.840.1.113883.6.1" displayName="TDM thorax">
          <translation code="ZBQK002" codeSystem="1.2.250.1.213.2.5"/>
          <translation code="CT" codeSystem="1.2.840.10008.2.16.4"/></code>
        <effectiveTime><low value="20240312093000+0100"/><high value="20240312094500+0100"/>
        </effectiveTime>
        <performer typeCode="PRF"><assignedEntity><id root="1.2.250.1.71.4.2.1"
          extension="810000000002"/><representedOrganization><id root="1.2.250.1.71.4.2.2"
          extension="1129900025"/><name>Imagerie des Lilas</name></representedOrganization>
        </assignedEntity></performer></serviceEvent></documentationOf>
      <componentOf><encompassingEncounter><effectiveTime value="20240312"/>
        <location><healthCareFacility><id root="1.2.250.1.999.7" extension="UF-RADIO"/>
          <code code="SA01" codeSystem="1.2.250.1.71.4.2.4" displayName="Établissement public"/>
        </healthCareFacility></location></encompassingEncounter></componentOf>
      <component><structuredBody>"""
    data = (HEAD.replace("<component><structuredBody>", header).replace(
        "<custodian>", '<legalAuthenticator><time value="20240312120000+0100"/>'
        '<signatureCode code="S"/><assignedEntity><id root="1.2.250.1.71.4.2.1" '
        'extension="810000000002"/></assignedEntity></legalAuthenticator><custodian>', 1)
        + _section("18782-3", "Conclusion", "") + TAIL).encode()
    details = normalize_cda(parse_cda(data), data, "test").entries[0].details
    event = details["service_events"][0]
    assert (event["code"], event["ids"], event["low"]) == (
        "24627-2", ["1.2.250.1.999.6^ACC-2024-118"], "2024-03-12T09:30:00+01:00")
    assert {t["code"] for t in event["translations"]} == {"ZBQK002", "CT"}
    assert event["performers"][0]["organization_name"] == "Imagerie des Lilas"
    assert details["legal_authenticator"] == {"ids": ["1.2.250.1.71.4.2.1^810000000002"],
                                              "time": "2024-03-12T12:00:00+01:00"}
    assert details["orders"] == ["1.2.250.1.999.5^CMD-77"]
    assert details["encounter"]["location"]["ids"] == ["1.2.250.1.999.7^UF-RADIO"]
    assert details["encounter"]["location"]["code"]["code"] == "SA01"


def test_a_software_author_is_not_the_documents_performer() -> None:
    """The ANS eDISP names the 'Dossier Pharmaceutique' software (assignedAuthoringDevice)
    as its first author, the pharmacist second: the software's id was the document's
    performer. The first person is; the device is said as such in details.authors."""
    data = (HEAD.replace("<author><time", """<author><time value="20240312"/><assignedAuthor>
      <id root="1.2.250.1.71.4.2.1" extension="578435954900010/1.2.250.1.176.1"/>
      <assignedAuthoringDevice><manufacturerModelName>Éditeur</manufacturerModelName>
      <softwareName>Logiciel du laboratoire</softwareName></assignedAuthoringDevice>
      </assignedAuthor></author><author><time""", 1).replace(
        'extension="810000000001"/></assignedAuthor>',
        'extension="810000000001"/><assignedPerson><name><family>Martin</family></name>'
        '</assignedPerson></assignedAuthor>') + _section("18782-3", "x", "") + TAIL).encode()
    document = normalize_cda(parse_cda(data), data, "test").entries[0]
    assert document.performer == "1.2.250.1.71.4.2.1^810000000001"
    assert document.details["authors"][0]["device"] == ["Éditeur", "Logiciel du laboratoire"]


def test_previous_result_is_not_given_the_current_ones_laboratory_nor_germ() -> None:
    """A previous result (REFR, CI-SIS antériorité) nested in a result was done on an
    earlier specimen, maybe elsewhere: it takes neither the performer nor the isolate of
    the result it is nested in (as it never took its specimen time)."""
    got = _entries(_section("18725-2", "Antibiogramme", f"""<entry><act classCode="ACT"
      moodCode="EVN"><templateId root="1.3.6.1.4.1.19376.1.3.1"/>
      <code code="18725-2" codeSystem="2.16.840.1.113883.6.1"/><statusCode code="completed"/>
      <performer typeCode="PRF"><assignedEntity><id root="1.2.250.1.71.4.2.1"
        extension="899900000012"/><representedOrganization><name>Laboratoire des Tilleuls</name>
        </representedOrganization></assignedEntity></performer>
      {_isolate("112283007", "Escherichia coli", "ISO-1", "R").replace(
          '</observation></component></organizer></component>',
          '''<entryRelationship typeCode="REFR"><observation classCode="OBS" moodCode="EVN">
            <templateId root="1.3.6.1.4.1.19376.1.3.1.6"/>
            <code code="18862-3" codeSystem="2.16.840.1.113883.6.1"/>
            <effectiveTime value="20231102"/><value xsi:type="IVL_PQ"><high value="8"
              unit="mg/L"/></value></observation></entryRelationship>
          </observation></component></organizer></component>''')}
      </act></entry>"""))
    assert [(e.effective[:10], e.performer, "isolate" in e.details) for e in got] == [
        ("2024-03-11", "Laboratoire des Tilleuls", True), ("2023-11-02", None, False)]


def test_the_method_of_a_result_is_kept() -> None:
    """methodCode (CI-SIS: the technique or reagent from the ANSM common reagent table; HL7
    ObservationMethod): two glucose results by different methods are not comparable; it
    was dropped."""
    entry = _one(_section("18719-5", "Biochimie", _lab_result(
        '<value xsi:type="PQ" value="4.89" unit="mmol/L"/><methodCode code="DEG" '
        'displayName="Spectrophotométrie glucose oxydase" codeSystem="1.2.250.1.213.2.3.5"/>',
        code="40193-5")))
    assert entry.details["method"] == [{"code": "DEG", "system": "1.2.250.1.213.2.3.5",
                                        "display": "Spectrophotométrie glucose oxydase"}]


def test_a_method_named_only_in_words_is_kept() -> None:
    """CI-SIS CR-BIO examples name the method of most results only in the narrative
    (methodCode/originalText/reference): its words are the method."""
    entry = _one(_section("18719-5", '<content ID="m1">(Immunoturbidimétrie)</content>',
                          _lab_result('<value xsi:type="PQ" value="3" unit="mg/L"/>'
                                      '<methodCode><originalText><reference value="#m1"/>'
                                      '</originalText></methodCode>', code="1988-5")))
    assert entry.details["method"] == [{"text": "(Immunoturbidimétrie)"}]


def test_the_test_kit_of_a_result_is_kept() -> None:
    """CI-SIS DEP-CCU / IHE LAB: the kit or instrument a result was obtained with is a DEV
    participant of the observation (the HPV detection kit); it was dropped."""
    entry = _one(_section("18725-2", "HPV", _lab_result(
        '<value xsi:type="CD" code="1269497006" codeSystem="2.16.840.1.113883.6.96" '
        'displayName="ADN d\'HPV-HR détecté"/><participant typeCode="DEV"><participantRole '
        'classCode="MANU"><playingDevice><code code="VHEDA1" codeSystem="1.2.250.1.213.2.3.5"'
        ' displayName="Trousse HPV-HR"/></playingDevice></participantRole></participant>',
        code="77379-6")))
    assert entry.details["devices"] == [{"code": "VHEDA1", "system": "1.2.250.1.213.2.3.5",
                                         "display": "Trousse HPV-HR"}]


def test_each_battery_takes_the_collection_time_of_its_own_specimen() -> None:
    """IHE LAB: a battery (or isolate) organizer may hold its Specimen Collection procedure
    as a component, one specimen per battery (a blood and a urine sample): it was looked
    for only among the act's entryRelationships and the results had no specimen time."""
    def battery(code: str, taken: str, result: str) -> str:
        return f"""<entryRelationship typeCode="COMP"><organizer classCode="BATTERY"
          moodCode="EVN"><templateId root="1.3.6.1.4.1.19376.1.3.1.4"/>
          <statusCode code="completed"/>
          <component><procedure classCode="PROC" moodCode="EVN">
            <templateId root="1.3.6.1.4.1.19376.1.3.1.2"/>
            <effectiveTime><high value="{taken}"/></effectiveTime></procedure></component>
          <component><observation classCode="OBS" moodCode="EVN">
            <templateId root="1.3.6.1.4.1.19376.1.3.1.6"/>
            <code code="{code}" codeSystem="2.16.840.1.113883.6.1"/>
            <effectiveTime value="202403111030+0100"/>
            <value xsi:type="PQ" value="{result}" unit="mmol/L"/></observation></component>
          </organizer></entryRelationship>"""
    got = _entries(_section("18719-5", "Biochimie", f"""<entry><act classCode="ACT"
      moodCode="EVN"><templateId root="1.3.6.1.4.1.19376.1.3.1"/>
      <code code="18719-5" codeSystem="2.16.840.1.113883.6.1"/>
      {battery("2951-2", "202403110735+0100", "140")}
      {battery("2955-3", "202403110900+0100", "60")}</act></entry>"""))
    assert [(e.code, e.specimen_time) for e in got] == [
        ("2951-2", "2024-03-11T07:35+01:00"), ("2955-3", "2024-03-11T09:00+01:00")]


def test_reference_range_written_in_the_narrative_is_kept() -> None:
    """C-CDA: observationRange/text is often only a reference to the narrative ('#rr1');
    the range was read as '' and lost."""
    entry = _one(_section("18719-5", '<content ID="rr1">3,9 à 5,8 mmol/L</content>',
                          _lab_result('<value xsi:type="PQ" value="6.1" unit="mmol/L"/>',
                                      '<referenceRange><observationRange><text><reference '
                                      'value="#rr1"/></text></observationRange>'
                                      '</referenceRange>', code="2345-7")))
    assert entry.reference_range == "3,9 à 5,8 mmol/L"


def test_results_say_who_validated_them_and_when() -> None:
    """IHE LAB Laboratory Result Verifier / CI-SIS FR-Participant: participant AUTHEN on the
    report act (the biologist who validated, time/high the validation) applies to the
    results it holds, a battery's own verifier to its results; it was dropped."""
    def verifier(rpps: str, when: str) -> str:
        return f"""<participant typeCode="AUTHEN"><templateId root="1.3.6.1.4.1.19376.1.3.3.1.5"/>
          <time><high value="{when}"/></time><participantRole><id root="1.2.250.1.71.4.2.1"
          extension="{rpps}"/></participantRole></participant>"""
    got = _entries(_section("18719-5", "Biochimie", f"""<entry><act classCode="ACT"
      moodCode="EVN"><templateId root="1.3.6.1.4.1.19376.1.3.1"/>
      <code code="18719-5" codeSystem="2.16.840.1.113883.6.1"/>
      {verifier("899900000031", "202403111120+0100")}
      <entryRelationship typeCode="COMP"><observation classCode="OBS" moodCode="EVN">
        <templateId root="1.3.6.1.4.1.19376.1.3.1.6"/>
        <code code="2160-0" codeSystem="2.16.840.1.113883.6.1"/>
        <effectiveTime value="20240311"/><value xsi:type="PQ" value="80" unit="umol/L"/>
      </observation></entryRelationship>
      <entryRelationship typeCode="COMP"><organizer classCode="BATTERY" moodCode="EVN">
        <templateId root="1.3.6.1.4.1.19376.1.3.1.4"/><statusCode code="completed"/>
        {verifier("899900000049", "202403111300+0100")}
        <component><observation classCode="OBS" moodCode="EVN">
          <templateId root="1.3.6.1.4.1.19376.1.3.1.6"/>
          <code code="3094-0" codeSystem="2.16.840.1.113883.6.1"/>
          <effectiveTime value="20240311"/><value xsi:type="PQ" value="5.1" unit="mmol/L"/>
        </observation></component></organizer></entryRelationship></act></entry>"""))
    assert [(e.code, e.details["validated_by"]) for e in got] == [
        ("2160-0", {"ids": ["1.2.250.1.71.4.2.1^899900000031"],
                    "time": "2024-03-11T11:20+01:00"}),
        ("3094-0", {"ids": ["1.2.250.1.71.4.2.1^899900000049"],
                    "time": "2024-03-11T13:00+01:00"})]


def test_ccam_under_the_assurance_maladie_oid_is_ccam() -> None:
    """The ANS examples (CR-IMG, IPS-FR, VSM, LDL, cardiology) code CCAM acts under the OID
    1.2.250.1.215.300.1, the table knew only 1.2.250.1.213.2.5: the acts were filed under
    an OID as unmapped local codes, not as the same CCAM act another sender codes."""
    entry = _one(_section("47519-4", "Actes", """<entry><procedure classCode="PROC"
      moodCode="EVN"><templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.19"/>
      <code code="DDAF004" codeSystem="1.2.250.1.215.300.1" codeSystemName="CCAM"
        displayName="Dilatation intraluminale de 2 vaisseaux coronaires"/>
      <effectiveTime value="20240110"/></procedure></entry>"""))
    assert (entry.code, entry.system, entry.mapped) == ("DDAF004", "CCAM", True)


# -- fourth round: specimen type, germs identified by an observation ---------------------------
def _collection(material: str, system: str = "2.16.840.1.113883.18.311",
                display: str = "Sang") -> str:
    """An IHE LAB / CI-SIS FR-Prelevement Specimen Collection procedure producing a
    specimen of type ``material``."""
    return f"""<procedure classCode="PROC" moodCode="EVN">
      <templateId root="1.3.6.1.4.1.19376.1.3.1.2"/>
      <effectiveTime><high value="202403110735+0100"/></effectiveTime>
      <participant typeCode="PRD"><participantRole classCode="SPEC">
        <id root="1.2.250.1.999.9.8" extension="ECH-1"/>
        <playingEntity><code code="{material}" codeSystem="{system}"
          displayName="{display}"/></playingEntity></participantRole></participant>
    </procedure>"""


def test_specimen_type_goes_to_the_results_the_nearest_wins() -> None:
    """IHE LAB / CI-SIS CR-BIO: the Specimen Collection procedure names the specimen's type
    (participant PRD / participantRole SPEC / playingEntity: BLD, UR in HL7 table 0487); it
    was not read. Each result carries it as details.specimen ({code, system, display}); a
    battery's own collection wins over the act's, a result's own specimen over both, and a
    previous result nested in a result takes none."""
    got = _entries(_section("18719-5", "Biochimie", f"""<entry><act classCode="ACT"
      moodCode="EVN"><templateId root="1.3.6.1.4.1.19376.1.3.1"/>
      <code code="18719-5" codeSystem="2.16.840.1.113883.6.1"/>
      <entryRelationship typeCode="COMP">{_collection("BLD")}</entryRelationship>
      <entryRelationship typeCode="COMP"><organizer classCode="BATTERY" moodCode="EVN">
        <templateId root="1.3.6.1.4.1.19376.1.3.1.4"/><statusCode code="completed"/>
        <component><observation classCode="OBS" moodCode="EVN">
          <templateId root="1.3.6.1.4.1.19376.1.3.1.6"/>
          <code code="2160-0" codeSystem="2.16.840.1.113883.6.1"/>
          <effectiveTime value="202403111030+0100"/>
          <value xsi:type="PQ" value="80" unit="umol/L"/>
          <entryRelationship typeCode="REFR"><observation classCode="OBS" moodCode="EVN">
            <templateId root="1.3.6.1.4.1.19376.1.3.1.6"/>
            <code code="2160-0" codeSystem="2.16.840.1.113883.6.1"/>
            <effectiveTime value="20230101"/><value xsi:type="PQ" value="75" unit="umol/L"/>
          </observation></entryRelationship></observation></component>
        <component><observation classCode="OBS" moodCode="EVN">
          <templateId root="1.3.6.1.4.1.19376.1.3.1.6"/>
          <code code="2345-7" codeSystem="2.16.840.1.113883.6.1"/>
          <effectiveTime value="202403111030+0100"/>
          <specimen typeCode="SPC"><specimenRole><specimenPlayingEntity><code code="SER"
            codeSystem="2.16.840.1.113883.18.311" displayName="Sérum"/>
          </specimenPlayingEntity></specimenRole></specimen>
          <value xsi:type="PQ" value="5.1" unit="mmol/L"/></observation></component>
      </organizer></entryRelationship>
      <entryRelationship typeCode="COMP"><organizer classCode="BATTERY" moodCode="EVN">
        <templateId root="1.3.6.1.4.1.19376.1.3.1.4"/><statusCode code="completed"/>
        <component>{_collection("UR", display="Urine")}</component>
        <component><observation classCode="OBS" moodCode="EVN">
          <templateId root="1.3.6.1.4.1.19376.1.3.1.6"/>
          <code code="2161-8" codeSystem="2.16.840.1.113883.6.1"/>
          <effectiveTime value="202403111030+0100"/>
          <value xsi:type="PQ" value="9.2" unit="mmol/L"/></observation></component>
      </organizer></entryRelationship></act></entry>"""))
    assert [(e.code, e.value, (e.details.get("specimen") or {}).get("code")) for e in got] == [
        ("2160-0", "80", "BLD"), ("2160-0", "75", None), ("2345-7", "5.1", "SER"),
        ("2161-8", "9.2", "UR")]
    assert got[0].details["specimen"] == {"code": "BLD", "system": "HL70487",
                                          "display": "Sang"}


def test_specimen_of_a_result_organizer_is_its_results_specimen() -> None:
    """C-CDA Result Organizer (and IHE XD-LAB acts): specimen/specimenRole/
    specimenPlayingEntity names the material of the results it holds."""
    entry = _one(_section("30954-2", "Résultats", """<entry><organizer classCode="BATTERY"
      moodCode="EVN"><templateId root="2.16.840.1.113883.10.20.22.4.1"/>
      <code code="24362-6" codeSystem="2.16.840.1.113883.6.1"/><statusCode code="completed"/>
      <specimen typeCode="SPC"><specimenRole><specimenPlayingEntity><code code="122575003"
        codeSystem="2.16.840.1.113883.6.96" displayName="échantillon d'urine"/>
      </specimenPlayingEntity></specimenRole></specimen>
      <component><observation classCode="OBS" moodCode="EVN">
        <templateId root="2.16.840.1.113883.10.20.22.4.2"/>
        <code code="5811-5" codeSystem="2.16.840.1.113883.6.1"/><statusCode code="completed"/>
        <effectiveTime value="20240310"/><value xsi:type="PQ" value="1.015" unit="1"/>
      </observation></component></organizer></entry>"""))
    assert entry.details["specimen"] == {"code": "122575003", "system": "SNOMED-CT",
                                         "display": "échantillon d'urine"}


def test_specimen_type_is_not_part_of_the_fact() -> None:
    """The specimen type is not in the dedupe level-4 fact: HL7v2 results do not carry it,
    and the same result received by HL7v2 and in a CR-BIO must stay one entry."""
    from dossiers.deposit import fact_of

    def result(collection: str) -> Entry:
        return _one(_section("18719-5", "Biochimie", f"""<entry><act classCode="ACT"
          moodCode="EVN"><templateId root="1.3.6.1.4.1.19376.1.3.1"/>
          <code code="18719-5" codeSystem="2.16.840.1.113883.6.1"/>{collection}
          <entryRelationship typeCode="COMP"><observation classCode="OBS" moodCode="EVN">
            <templateId root="1.3.6.1.4.1.19376.1.3.1.6"/>
            <code code="2345-7" codeSystem="2.16.840.1.113883.6.1"/>
            <effectiveTime value="202403111030+0100"/>
            <value xsi:type="PQ" value="5.1" unit="mmol/L"/></observation>
          </entryRelationship></act></entry>"""))
    with_type = result(f'<entryRelationship typeCode="COMP">{_collection("BLD")}'
                       "</entryRelationship>")
    without = result("")
    assert with_type.details["specimen"]["code"] == "BLD" and "specimen" not in without.details
    assert fact_of(with_type) == fact_of(without) is not None


def _isolate_by_observation(germ: str, name: str, interpretation: str,
                            template: str = '<templateId root="1.3.6.1.4.1.19376.1.3.1.5"/>',
                            value: str = "") -> str:
    """An isolate organizer whose germ is given by an 'organism identified' observation
    (LOINC 11475-1, value SNOMED CT, or ``value`` as given) in an identification battery,
    beside the antibiogram."""
    value = value or f"""<value xsi:type="CD" code="{germ}" codeSystem="2.16.840.1.113883.6.96"
            displayName="{name}"/>"""
    return f"""<entryRelationship typeCode="COMP"><organizer classCode="CLUSTER" moodCode="EVN">
      {template}<statusCode code="completed"/>
      <effectiveTime value="20240311160000+0100"/>
      <component><organizer classCode="BATTERY" moodCode="EVN">
        <templateId root="1.3.6.1.4.1.19376.1.3.1.4"/>
        <code code="11475-1" codeSystem="2.16.840.1.113883.6.1"/><statusCode code="completed"/>
        <component><observation classCode="OBS" moodCode="EVN">
          <templateId root="1.3.6.1.4.1.19376.1.3.1.6"/>
          <code code="11475-1" codeSystem="2.16.840.1.113883.6.1"/><statusCode code="completed"/>
          {value}</observation></component></organizer></component>
      {_antibiogram(interpretation)}</organizer></entryRelationship>"""


def test_germ_identified_by_an_observation_is_the_isolates() -> None:
    """An isolate whose germ is not its specimen but an 'organism identified' observation
    (LOINC 11475-1 / 634-6 / 43409-2, a SNOMED CT or NCBI Taxonomy value): its antibiogram
    had no details.isolate, and two germs' 'amoxicillin: S' were one fact. The results now
    carry it; the identification is still a result of its own, without it."""
    from dossiers.deposit import fact_of

    got = _entries(_section("18725-2", "ECBU", f"""<entry><act classCode="ACT" moodCode="EVN">
      <templateId root="1.3.6.1.4.1.19376.1.3.1"/>
      <code code="18725-2" codeSystem="2.16.840.1.113883.6.1"/><statusCode code="completed"/>
      {_isolate_by_observation("112283007", "Escherichia coli", "S")}
      {_isolate_by_observation("3092008", "Staphylococcus aureus", "S")}
      </act></entry>"""))
    assert [(e.code, e.value, (e.details.get("isolate") or {}).get("code")) for e in got] == [
        ("11475-1", "Escherichia coli", None), ("18862-3", "<=2", "112283007"),
        ("11475-1", "Staphylococcus aureus", None), ("18862-3", "<=2", "3092008")]
    assert got[1].details["isolate"] == {"code": "112283007", "system": "SNOMED-CT",
                                         "display": "Escherichia coli"}
    assert fact_of(got[1]) != fact_of(got[3])


def test_culture_cluster_without_isolate_template_names_its_germ_by_observation() -> None:
    """A culture CLUSTER without the IHE isolate template (C-CDA senders) holding one
    'bacteria identified' observation: its results are of that germ. With two germs in one
    cluster which result is whose is unsaid: none is given an isolate."""
    one = _entries(_section("18725-2", "ECBU", f"""<entry><act classCode="ACT" moodCode="EVN">
      <code code="18725-2" codeSystem="2.16.840.1.113883.6.1"/>
      {_isolate_by_observation("562", "Escherichia coli", "R", template="").replace(
          'codeSystem="2.16.840.1.113883.6.96"', 'codeSystem="2.16.840.1.113883.3.9471"')}
      </act></entry>"""))
    assert one[1].details["isolate"] == {"code": "562", "system": "NCBI-TAXONOMY",
                                         "display": "Escherichia coli"}
    identification = """<component><observation classCode="OBS" moodCode="EVN">
          <templateId root="1.3.6.1.4.1.19376.1.3.1.6"/>
          <code code="11475-1" codeSystem="2.16.840.1.113883.6.1"/>"""
    two = _isolate_by_observation("562", "Escherichia coli", "R", template="").replace(
        identification, identification + """
          <value xsi:type="CD" code="1280" codeSystem="2.16.840.1.113883.6.96"
            displayName="Staphylococcus aureus"/></observation></component>""" +
        identification, 1)
    got = _entries(_section("18725-2", "ECBU", f"""<entry><act classCode="ACT" moodCode="EVN">
      <code code="18725-2" codeSystem="2.16.840.1.113883.6.1"/>{two}</act></entry>"""))
    assert [e.code for e in got] == ["11475-1", "11475-1", "18862-3"]
    assert not any("isolate" in e.details for e in got)
    in_words = _entries(_section("18725-2", "ECBU", f"""<entry><act classCode="ACT"
      moodCode="EVN"><code code="18725-2" codeSystem="2.16.840.1.113883.6.1"/>
      {_isolate_by_observation("", "", "R", template="",
                               value='<value xsi:type="ST">E. coli BLSE</value>')}
      </act></entry>"""))
    assert in_words[1].details["isolate"] == {"text": "E. coli BLSE"}


def test_ccda_specimen_collection_procedure_dates_and_types_the_results() -> None:
    """C-CDA (R2.1 companion guide, 3.0, 4.0): a Result Organizer holds a Specimen
    Collection Procedure (2.16.840.1.113883.10.20.22.4.415) as a component: its
    effectiveTime is when the specimen was taken, its participant PRD the specimen's type.
    Only the IHE LAB template was known: the results had neither."""
    entry = _one(_section("30954-2", "Résultats", """<entry><organizer classCode="BATTERY"
      moodCode="EVN"><templateId root="2.16.840.1.113883.10.20.22.4.1"/>
      <code code="57021-8" codeSystem="2.16.840.1.113883.6.1"/><statusCode code="completed"/>
      <component><procedure classCode="PROC" moodCode="EVN">
        <templateId root="2.16.840.1.113883.10.20.22.4.415" extension="2018-09-01"/>
        <code code="17636008" codeSystem="2.16.840.1.113883.6.96"/>
        <statusCode code="completed"/><effectiveTime value="20240310081500+0100"/>
        <participant typeCode="PRD"><participantRole classCode="SPEC">
          <playingEntity><code code="119297000" codeSystem="2.16.840.1.113883.6.96"
            displayName="sang"/></playingEntity></participantRole></participant>
      </procedure></component>
      <component><observation classCode="OBS" moodCode="EVN">
        <templateId root="2.16.840.1.113883.10.20.22.4.2"/>
        <code code="718-7" codeSystem="2.16.840.1.113883.6.1"/><statusCode code="completed"/>
        <effectiveTime value="20240310101500+0100"/><value xsi:type="PQ" value="13.2"
          unit="g/dL"/></observation></component></organizer></entry>"""))
    assert entry.specimen_time == "2024-03-10T08:15:00+01:00"
    assert entry.details["specimen"] == {"code": "119297000", "system": "SNOMED-CT",
                                         "display": "sang"}


# -- eHDSI (epSOS) cross-border patient summary: its own templates ------------------------------
EHDSI_PROBLEM = """<entry><act classCode="ACT" moodCode="EVN">
  <templateId root="1.3.6.1.4.1.12559.11.10.1.3.1.3.15"/>
  <id root="1.2.250.1.999.4.1"/><code code="CONC" codeSystem="2.16.840.1.113883.5.6"/>
  <statusCode code="active"/><effectiveTime><low value="19941003"/></effectiveTime>
  <entryRelationship typeCode="SUBJ"><observation classCode="OBS" moodCode="EVN">
    <templateId root="1.3.6.1.4.1.12559.11.10.1.3.1.3.7"/><id root="1.2.250.1.999.4.1.1"/>
    <code code="404684003" codeSystem="2.16.840.1.113883.6.96"/>
    <effectiveTime><low value="19941003"/></effectiveTime>
    <value xsi:type="CD" code="J45" codeSystem="1.3.6.1.4.1.12559.11.10.1.3.1.44.2">
      <originalText>Asthme allergique</originalText></value>
    <entryRelationship typeCode="REFR"><observation classCode="OBS" moodCode="EVN">
      <templateId root="1.3.6.1.4.1.12559.11.10.1.3.1.3.9"/>
      <code code="33999-4" codeSystem="2.16.840.1.113883.6.1"/><statusCode code="completed"/>
      <value xsi:type="CE" code="55561003" codeSystem="2.16.840.1.113883.6.96"/>
    </observation></entryRelationship>
    <entryRelationship typeCode="SUBJ"><observation classCode="OBS" moodCode="EVN">
      <code code="66455-7" codeSystem="2.16.840.1.113883.6.1"/><statusCode code="completed"/>
      <value xsi:type="CD" code="provisional" codeSystem="2.16.840.1.113883.4.642.1.1075"
        displayName="Provisoire"/></observation></entryRelationship>
  </observation></entryRelationship></act></entry>"""
EHDSI_ALLERGY = """<entry><act classCode="ACT" moodCode="EVN">
  <templateId root="1.3.6.1.4.1.12559.11.10.1.3.1.3.16"/><id root="1.2.250.1.999.2.2"/>
  <code code="CONC" codeSystem="2.16.840.1.113883.5.6"/><statusCode code="active"/>
  <entryRelationship typeCode="SUBJ"><observation classCode="OBS" moodCode="EVN">
    <templateId root="1.3.6.1.4.1.12559.11.10.1.3.1.3.17"/><id root="1.2.250.1.999.2.2.1"/>
    <code code="420134006" codeSystem="2.16.840.1.113883.6.96"/><statusCode code="completed"/>
    <effectiveTime><low value="19830505"/></effectiveTime>
    <participant typeCode="CSM"><participantRole classCode="MANU"><playingEntity
      classCode="MMAT"><code code="N02BA01" codeSystem="2.16.840.1.113883.6.73">
      <originalText>aspirine</originalText></code></playingEntity></participantRole>
    </participant>
    <entryRelationship typeCode="MFST"><observation classCode="OBS" moodCode="EVN">
      <templateId root="1.3.6.1.4.1.12559.11.10.1.3.1.3.44"/>
      <code code="418799008" codeSystem="2.16.840.1.113883.6.96"/>
      <value xsi:type="CD" code="247472004" codeSystem="2.16.840.1.113883.6.96"
        displayName="urticaire"/></observation></entryRelationship>
    <entryRelationship typeCode="SUBJ"><observation classCode="OBS" moodCode="EVN">
      <templateId root="1.3.6.1.4.1.12559.11.10.1.3.1.3.33"/>
      <code code="82606-5" codeSystem="2.16.840.1.113883.6.1"/><statusCode code="completed"/>
      <value code="high" displayName="Élevée" codeSystem="2.16.840.1.113883.4.642.4.130"/>
    </observation></entryRelationship>
  </observation></entryRelationship></act></entry>"""
EHDSI_DEVICE = """<entry><supply classCode="SPLY" moodCode="EVN">
  <templateId root="1.3.6.1.4.1.12559.11.10.1.3.1.3.5"/>
  <effectiveTime xsi:type="IVL_TS"><low value="20141020"/></effectiveTime>
  <participant typeCode="DEV"><participantRole classCode="MANU">
    <id root="1.2.250.1.999.5" extension="DEF-1"/><playingDevice classCode="DEV">
    <code code="72506001" codeSystem="2.16.840.1.113883.6.96"
      displayName="défibrillateur implantable"/></playingDevice></participantRole>
  </participant></supply></entry>"""


def test_ehdsi_patient_summary_problems_allergies_and_devices() -> None:
    """eHDSI (epSOS) patient summaries use templates of their own (1.3.6.1.4.1.12559.11.10.
    1.3.1.3.x) and the eHDSI OID for ICD-10: the problem was filed as an observation 'clinical
    finding' with its status as another observation, the allergy was lost (its reaction and
    criticality filed as the patient's observations), the implanted device was not filed.
    Certainty (66455-7: CI-SIS FR-Certitude too) and criticality (82606-5) were dropped."""
    got = _entries(_section("11450-4", "Problèmes", EHDSI_PROBLEM),
                   _section("48765-2", "Allergies", EHDSI_ALLERGY),
                   _section("46264-8", "Dispositifs", EHDSI_DEVICE))
    assert [(e.type, e.code, e.system) for e in got] == [
        ("problem", "J45", "CIM-10"), ("allergy", "N02BA01", "ATC"),
        ("device", "72506001", "SNOMED-CT")]
    problem, allergy, device = got
    assert problem.details["clinical_status"]["code"] == "55561003"
    assert problem.details["certainty"] == {"code": "provisional",
                                            "system": "2.16.840.1.113883.4.642.1.1075",
                                            "display": "Provisoire"}
    assert allergy.details["criticality"]["code"] == "high"
    assert allergy.details["reactions"] == [{"code": "247472004", "system": "SNOMED-CT",
                                             "display": "urticaire"}]
    assert device.details["period_low"] == "2014-10-20"


@pytest.mark.parametrize("namespace", ["urn:hl7-org:pharm", "urn:epsos-org:ep:medication"])
def test_ehdsi_medication_ingredients_and_generic_class(namespace: str) -> None:
    """eHDSI (and epSOS before it) binds the IHE Pharm product extensions to the HL7 (or
    epSOS) namespace: a product named only by its brand lost its ATC class and its active
    ingredients, the only codes it had."""
    entry = _one(_section("10160-0", "Traitements", f"""<entry><substanceAdministration
      classCode="SBADM" moodCode="INT" xmlns:pharm="{namespace}">
      <templateId root="1.3.6.1.4.1.12559.11.10.1.3.1.3.4"/><id root="1.2.250.1.999.1.2"/>
      <statusCode code="active"/><effectiveTime xsi:type="IVL_TS"><low value="20170506"/>
      </effectiveTime>
      <consumable><manufacturedProduct><manufacturedMaterial classCode="MMAT"
        determinerCode="KIND"><name>Triatec</name>
        <pharm:asSpecializedKind classCode="GEN"><pharm:generalizedMedicineClass
          classCode="MMAT"><pharm:code code="C09AA05" codeSystem="2.16.840.1.113883.6.73"
          displayName="ramipril"/></pharm:generalizedMedicineClass></pharm:asSpecializedKind>
        <pharm:ingredient classCode="ACTI"><pharm:ingredientSubstance classCode="MMAT">
          <pharm:code code="C09AA05" codeSystem="2.16.840.1.113883.6.73"
          displayName="ramipril"/></pharm:ingredientSubstance></pharm:ingredient>
      </manufacturedMaterial></manufacturedProduct></consumable>
      </substanceAdministration></entry>"""))
    assert entry.display == "Triatec"
    assert entry.details["generic"] == [{"code": "C09AA05", "system": "ATC",
                                         "display": "ramipril"}]
    assert entry.details["ingredients"] == entry.details["generic"]


def test_value_typed_without_the_xsi_prefix() -> None:
    """type="TS" instead of xsi:type="TS" (eHDSI samples): the date was kept as the raw
    '20230214'; it is read as the type it names (a date, an integer)."""
    got = _entries(_section("10162-6", "Grossesses", """
      <entry><observation classCode="OBS" moodCode="EVN">
        <code code="11778-8" codeSystem="2.16.840.1.113883.6.1"/>
        <effectiveTime value="20220615"/><value type="TS" value="20230214"/></observation>
      </entry><entry><observation classCode="OBS" moodCode="EVN">
        <code code="11636-8" codeSystem="2.16.840.1.113883.6.1"/>
        <effectiveTime value="20220615"/><value type="INT" value="2"/></observation></entry>"""))
    assert [(e.value, e.value_type, e.value_num) for e in got] == [
        ("2023-02-14", "TS", None), ("2", "INT", 2.0)]


def test_values_padded_with_blanks_are_stripped() -> None:
    """Italian CDA2 lab reports pad numbers with a blank (value=" 16.00", a range low
    " 0.00"): the result read ' 16.00' and its range ' 0.00- 20.00'."""
    entry = _one(_section("18729-4", "Urines", _lab_result(
        '<value xsi:type="PQ" value=" 16.00" unit="mg/L"/>',
        '<referenceRange><observationRange><value xsi:type="IVL_PQ"><low value=" 0.00" '
        'unit="mg/L"/><high value=" 20.00" unit="mg/L"/></value></observationRange>'
        '</referenceRange>', code="14957-5")))
    assert (entry.value, entry.value_num, entry.reference_range) == ("16.00", 16.0,
                                                                     "0.00-20.00")


def test_ccda_result_status_observations_are_no_results() -> None:
    """C-CDA (companion guide, USCDI) puts the report's status in a Laboratory Result Status
    observation (4.418, LOINC 92235-1) among the organizer's components, a result's in a
    Laboratory Observation Result Status (4.419) it nests, and the specimen's condition in
    the collection procedure (4.421): each was filed as a lab result ('Lab order result
    status: final'). The results alone are filed."""
    got = _entries(_section("30954-2", "Résultats", """<entry><organizer classCode="BATTERY"
      moodCode="EVN"><templateId root="2.16.840.1.113883.10.20.22.4.1"/>
      <code code="58410-2" codeSystem="2.16.840.1.113883.6.1"/><statusCode code="completed"/>
      <component><observation classCode="OBS" moodCode="EVN">
        <templateId root="2.16.840.1.113883.10.20.22.4.2"/>
        <code code="718-7" codeSystem="2.16.840.1.113883.6.1"/><statusCode code="completed"/>
        <effectiveTime value="20240310"/><value xsi:type="PQ" value="13.2" unit="g/dL"/>
        <entryRelationship typeCode="COMP"><observation classCode="OBS" moodCode="EVN">
          <templateId root="2.16.840.1.113883.10.20.22.4.419" extension="2018-06-12"/>
          <code code="92236-9" codeSystem="2.16.840.1.113883.6.1"/>
          <value xsi:type="CD" code="F" codeSystem="2.16.840.1.113883.18.34"/>
        </observation></entryRelationship></observation></component>
      <component><observation classCode="OBS" moodCode="EVN">
        <templateId root="2.16.840.1.113883.10.20.22.4.418" extension="2018-06-12"/>
        <code code="92235-1" codeSystem="2.16.840.1.113883.6.1"/>
        <value xsi:type="CD" code="F" codeSystem="2.16.840.1.113883.18.51"/>
      </observation></component>
      <component><procedure classCode="PROC" moodCode="EVN">
        <templateId root="2.16.840.1.113883.10.20.22.4.415" extension="2018-09-01"/>
        <code code="17636008" codeSystem="2.16.840.1.113883.6.96"/>
        <effectiveTime value="20240310081500+0100"/>
        <entryRelationship typeCode="COMP"><observation classCode="OBS" moodCode="EVN">
          <templateId root="2.16.840.1.113883.10.20.22.4.421" extension="2018-06-12"/>
          <code code="93047-9" codeSystem="2.16.840.1.113883.6.1"/>
          <value xsi:type="CD" code="HEM" codeSystem="2.16.840.1.113883.18.403"/>
        </observation></entryRelationship></procedure></component>
      </organizer></entry>"""))
    assert [(e.type, e.code, e.value) for e in got] == [("lab_result", "718-7", "13.2")]
    assert got[0].specimen_time == "2024-03-10T08:15:00+01:00"


def test_hl7_ips_problem_and_allergy_templates() -> None:
    """HL7 CDA IPS documents type their problems and allergies with their own templates
    only (2.16.840.1.113883.10.22.4.x): the problem was filed as an observation, the
    allergy (no value: its type is its code) was lost."""
    got = _entries(_section("11450-4", "Problèmes", """<entry><act classCode="ACT"
      moodCode="EVN"><templateId root="2.16.840.1.113883.10.22.4.7"/>
      <id root="1.2.250.1.999.4.9"/><code code="CONC" codeSystem="2.16.840.1.113883.5.6"/>
      <statusCode code="completed"/>
      <entryRelationship typeCode="SUBJ"><observation classCode="OBS" moodCode="EVN">
        <templateId root="2.16.840.1.113883.10.22.4.8"/><id root="1.2.250.1.999.4.9.1"/>
        <code code="55607006" codeSystem="2.16.840.1.113883.6.96"/>
        <effectiveTime><low value="2019"/></effectiveTime>
        <value xsi:type="CD" code="44054006" codeSystem="2.16.840.1.113883.6.96"
          displayName="diabète de type 2"/></observation></entryRelationship>
      </act></entry>"""), _section("48765-2", "Allergies", """<entry><act classCode="ACT"
      moodCode="EVN"><templateId root="2.16.840.1.113883.10.22.4.5"/>
      <id root="1.2.250.1.999.2.9"/><code code="CONC" codeSystem="2.16.840.1.113883.5.6"/>
      <statusCode code="active"/>
      <entryRelationship typeCode="SUBJ"><observation classCode="OBS" moodCode="EVN">
        <templateId root="2.16.840.1.113883.10.22.4.1"/><id root="1.2.250.1.999.2.9.1"/>
        <code code="419511003" codeSystem="2.16.840.1.113883.6.96"/>
        <participant typeCode="CSM"><participantRole classCode="MANU"><playingEntity>
          <code code="J01CA04" codeSystem="2.16.840.1.113883.6.73"
            displayName="amoxicilline"/></playingEntity></participantRole></participant>
      </observation></entryRelationship></act></entry>"""))
    assert [(e.type, e.code, e.details.get("concern_status")) for e in got] == [
        ("problem", "44054006", "completed"), ("allergy", "J01CA04", "active")]
    assert got[1].details["allergy_type"]["code"] == "419511003"


def test_status_nested_in_an_observation_is_its_status_not_an_observation() -> None:
    """An observation under a template we do not know (another country's) nests its status
    and severity as IHE PCC does for problems: each was filed as an observation of the
    patient of its own ('Status: active'). They go to the observation's details."""
    entry = _one(_section("29762-2", "Mode de vie", """<entry><observation classCode="OBS"
      moodCode="EVN"><templateId root="1.2.999.77.3.1"/><id root="1.2.250.1.999.9.77"/>
      <code code="229819007" codeSystem="2.16.840.1.113883.6.96"/>
      <effectiveTime><low value="20170415"/></effectiveTime>
      <value xsi:type="PQ" value="0.5" unit="{paquet}/d"/>
      <entryRelationship typeCode="REFR"><observation classCode="OBS" moodCode="EVN">
        <templateId root="1.2.999.77.3.2"/>
        <code code="33999-4" codeSystem="2.16.840.1.113883.6.1"/><statusCode code="completed"/>
        <value xsi:type="CE" code="55561003" codeSystem="2.16.840.1.113883.6.96"
          displayName="actif"/></observation></entryRelationship>
      </observation></entry>"""))
    assert (entry.type, entry.code, entry.value) == ("observation", "229819007", "0.5")
    assert entry.details["clinical_status"] == {"code": "55561003", "system": "SNOMED-CT",
                                                "display": "actif"}


def test_a_comment_on_the_whole_exam_goes_to_each_of_its_results() -> None:
    """CI-SIS CR-BIO puts the comment on a whole exam ('commentaire sur l'ECBU') under the
    results act (FR-Commentaire-ER, typeCode SUBJ), beside its batteries and isolates; an
    Italian CDA2 lab report puts it under its act (code 48767-8, no template). It stayed in
    the narrative only: every result of that exam now carries it in
    details.exam_comments (a battery's own comment still goes to its panel), and it is no
    part of the result's fact."""
    from dataclasses import replace

    from dossiers.deposit import fact_of

    cisis = _section("18725-2", '<paragraph ID="c-ecbu">Traitement immédiat conseillé'
                     '</paragraph><content ID="c-bat">Contrôle sur un second flacon</content>',
                     """<entry typeCode="DRIV"><templateId root="1.3.6.1.4.1.19376.1.3.1"/>
      <act classCode="ACT" moodCode="EVN">
        <code code="18725-2" codeSystem="2.16.840.1.113883.6.1"/><statusCode code="completed"/>
        <entryRelationship typeCode="COMP"><organizer classCode="BATTERY" moodCode="EVN">
          <templateId root="1.3.6.1.4.1.19376.1.3.1.4"/><statusCode code="completed"/>
          <effectiveTime value="20240310"/>
          <component><observation classCode="OBS" moodCode="EVN">
            <templateId root="1.3.6.1.4.1.19376.1.3.1.6"/>
            <code code="5821-4" codeSystem="2.16.840.1.113883.6.1"/>
            <statusCode code="completed"/>
            <value xsi:type="PQ" value="120" unit="/uL"/></observation></component>
          <component><act classCode="ACT" moodCode="EVN">
            <templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.2"/>
            <code code="48767-8" codeSystem="2.16.840.1.113883.6.1"/>
            <text><reference value="#c-bat"/></text></act></component>
        </organizer></entryRelationship>
        <entryRelationship typeCode="COMP"><organizer classCode="CLUSTER" moodCode="EVN">
          <templateId root="1.3.6.1.4.1.19376.1.3.1.5"/><statusCode code="completed"/>
          <effectiveTime value="20240310"/>
          <component><observation classCode="OBS" moodCode="EVN">
            <templateId root="1.3.6.1.4.1.19376.1.3.1.6"/>
            <code code="564-5" codeSystem="2.16.840.1.113883.6.1"/>
            <statusCode code="completed"/>
            <value xsi:type="PQ" value="100000" unit="/mL"/></observation></component>
        </organizer></entryRelationship>
        <entryRelationship typeCode="SUBJ"><act classCode="ACT" moodCode="EVN">
          <templateId root="2.16.840.1.113883.10.20.1.40"/>
          <templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.2"/>
          <templateId root="1.2.250.1.213.1.1.3.32"/>
          <code code="48767-8" codeSystem="2.16.840.1.113883.6.1"/>
          <text><reference value="#c-ecbu"/></text><statusCode code="completed"/></act>
        </entryRelationship></act></entry>""")
    italian = _section("18729-4", '<table ID="nota1"><tbody><tr><td>Microalbumine</td>'
                       '<td>Urines du matin</td></tr></tbody></table>', """<entry typeCode="DRIV">
      <act classCode="ACT" moodCode="EVN">
        <code code="14957-5" codeSystem="2.16.840.1.113883.6.1"/><statusCode code="active"/>
        <entryRelationship typeCode="SUBJ"><act classCode="ACT" moodCode="EVN">
          <code code="48767-8" codeSystem="2.16.840.1.113883.6.1"/>
          <text><reference value="#nota1"/></text></act></entryRelationship>
        <entryRelationship typeCode="COMP"><observation classCode="OBS" moodCode="EVN">
          <code code="14957-5" codeSystem="2.16.840.1.113883.6.1"/>
          <statusCode code="completed"/><effectiveTime value="20240311"/>
          <value xsi:type="PQ" value="16.00" unit="mg/L"/></observation></entryRelationship>
      </act></entry>""")
    got = _entries(cisis, italian)
    assert [(e.code, e.details.get("exam_comments")) for e in got] == [
        ("5821-4", ["Traitement immédiat conseillé"]),
        ("564-5", ["Traitement immédiat conseillé"]),
        ("14957-5", ["Microalbumine | Urines du matin"])]
    assert got[0].details["panel"] == {"comments": ["Contrôle sur un second flacon"]}
    assert fact_of(got[2]) == fact_of(replace(got[2], details={})) is not None


CCDA_STATUS = """<entryRelationship typeCode="COMP"><observation classCode="OBS" moodCode="EVN">
  <templateId root="2.16.840.1.113883.10.20.22.4.419" extension="2018-09-01"/>
  <code code="92236-9" codeSystem="2.16.840.1.113883.6.1"/>
  <value xsi:type="CD" code="{code}" codeSystem="2.16.840.1.113883.18.34"/>
</observation></entryRelationship>"""


def _ccda_results(report: str, own: str) -> list[Entry]:
    own_status = CCDA_STATUS.format(code=own) if own else ""
    report_status = f"""<component><observation classCode="OBS" moodCode="EVN">
        <templateId root="2.16.840.1.113883.10.20.22.4.418" extension="2018-09-01"/>
        <code code="92235-1" codeSystem="2.16.840.1.113883.6.1"/>
        <value xsi:type="CD" code="{report}" codeSystem="2.16.840.1.113883.18.51"/>
      </observation></component>""" if report else ""
    return _entries(_section("30954-2", "Résultats", f"""<entry><organizer classCode="BATTERY"
      moodCode="EVN"><templateId root="2.16.840.1.113883.10.20.22.4.1"/>
      <code code="24323-8" codeSystem="2.16.840.1.113883.6.1"/><statusCode code="completed"/>
      <component><observation classCode="OBS" moodCode="EVN">
        <templateId root="2.16.840.1.113883.10.20.22.4.2"/>
        <code code="2951-2" codeSystem="2.16.840.1.113883.6.1"/><statusCode code="completed"/>
        <effectiveTime value="20240310"/><value xsi:type="PQ" value="139" unit="mmol/L"/>
        {own_status}</observation></component>
      <component><observation classCode="OBS" moodCode="EVN">
        <templateId root="2.16.840.1.113883.10.20.22.4.2"/>
        <code code="2823-3" codeSystem="2.16.840.1.113883.6.1"/><statusCode code="completed"/>
        <effectiveTime value="20240310"/><value xsi:type="PQ" value="4.1" unit="mmol/L"/>
      </observation></component>
      {report_status}</organizer></entry>"""))


@pytest.mark.parametrize(("report", "own", "statuses"), [
    ("P", "", ["preliminary", "preliminary"]),  # the report says preliminary: both are
    ("F", "C", ["corrected", "final"]),  # the result's own status wins over the report's
    ("", "P", ["preliminary", "final"]),
    ("X", "", ["cancelled", "cancelled"]),
    ("A", "", ["final", "final"]),  # 'some results available' says nothing of these
])
def test_ccda_laboratory_status_observations_set_the_result_status(
        report: str, own: str, statuses: list[str]) -> None:
    """C-CDA carries the lab's status in a Laboratory Result Status (4.418, HL7 table 0123)
    among the result organizer's components and a Laboratory Observation Result Status
    (4.419, table 0085) nested in a result; the statusCode alone (completed) was read, so
    a result the lab calls preliminary was filed final. The status observations are still
    no results of their own."""
    got = _ccda_results(report, own)
    assert [(e.code, e.status) for e in got] == [("2951-2", statuses[0]),
                                                 ("2823-3", statuses[1])]
    if own:
        assert got[0].details["lab_status"] == {"code": own, "system": "HL70085"}


def test_unknown_laboratory_status_keeps_the_status_code_and_says_so() -> None:
    data = (HEAD + _section("30954-2", "Résultats", """<entry><observation classCode="OBS"
      moodCode="EVN"><templateId root="2.16.840.1.113883.10.20.22.4.2"/>
      <code code="2951-2" codeSystem="2.16.840.1.113883.6.1"/><statusCode code="completed"/>
      <effectiveTime value="20240310"/><value xsi:type="PQ" value="139" unit="mmol/L"/>
      """ + CCDA_STATUS.format(code="Q") + "</observation></entry>") + TAIL).encode()
    msg = normalize_cda(parse_cda(data), data, "test")
    assert [(e.code, e.status) for e in msg.entries[1:]] == [("2951-2", "final")]
    assert any(w.startswith("CDA_UNKNOWN_RESULT_STATUS") for w in msg.warnings)


def test_ehdsi_vaccination_says_which_diseases_it_targets() -> None:
    """eHDSI (epSOS) Immunization names the disease or agent a vaccine protects against in
    a participant typeCode IND / participantRole AGNT / code (the playingEntity ENT
    naming it in words when uncoded): not read. It goes to details.target_diseases."""
    entry = _one(_section("11369-6", "Vaccinations", """<entry><substanceAdministration
      classCode="SBADM" moodCode="EVN" negationInd="false">
      <templateId root="1.3.6.1.4.1.12559.11.10.1.3.1.3.19"/>
      <templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.12"/>
      <templateId root="2.16.840.1.113883.10.20.1.24"/><id root="1.2.250.1.999.6.1"/>
      <code code="IMMUNIZ" codeSystem="1.3.5.1.4.1.19376.1.5.3.2"/>
      <statusCode code="completed"/><effectiveTime value="20230915"/>
      <consumable><manufacturedProduct><manufacturedMaterial>
        <code code="J07AM51" codeSystem="2.16.840.1.113883.6.73"
          displayName="anatoxine tétanique, associations avec l'anatoxine diphtérique"/>
        <lotNumberText>LOT-DT-42</lotNumberText></manufacturedMaterial></manufacturedProduct>
      </consumable>
      <participant typeCode="IND"><participantRole classCode="AGNT">
        <code code="76902006" codeSystem="2.16.840.1.113883.6.96" displayName="tétanos"/>
        <playingEntity classCode="ENT"/></participantRole></participant>
      <participant typeCode="IND"><participantRole classCode="AGNT">
        <code nullFlavor="OTH"><originalText>diphtérie</originalText></code>
        <playingEntity classCode="ENT"/></participantRole></participant>
    </substanceAdministration></entry>"""))
    assert (entry.type, entry.code, entry.details["lot_number"]) == (
        "immunization", "J07AM51", "LOT-DT-42")
    assert entry.details["target_diseases"] == [
        {"code": "76902006", "system": "SNOMED-CT", "display": "tétanos"},
        {"text": "diphtérie"}]


def test_a_comment_on_a_problem_concern_goes_to_its_problems() -> None:
    """CI-SIS (IHE PCC) lets a comment sit beside the problems of a concern, about the
    concern as a whole (ANS anaesthesia example): it was skipped. Each problem of that
    concern carries it in details.concern_comments (its own comments stay in comments)."""
    got = _entries(_section("11450-4", '<content ID="c-conc">Bilan cardiologique à '
                            'prévoir</content>', """<entry><act classCode="ACT" moodCode="EVN">
      <templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.5.2"/><id root="1.2.250.1.999.4.20"/>
      <code nullFlavor="NA"/><statusCode code="active"/>
      <entryRelationship typeCode="SUBJ"><observation classCode="OBS" moodCode="EVN">
        <templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.5"/><id root="1.2.250.1.999.4.20.1"/>
        <code code="282291009" codeSystem="2.16.840.1.113883.6.96"/>
        <value xsi:type="CD" code="I10" codeSystem="2.16.840.1.113883.6.3"/>
        <entryRelationship typeCode="SUBJ" inversionInd="true"><act classCode="ACT"
          moodCode="EVN"><templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.2"/>
          <code code="48767-8" codeSystem="2.16.840.1.113883.6.1"/>
          <text>Sous traitement</text></act></entryRelationship></observation>
      </entryRelationship>
      <entryRelationship typeCode="SUBJ"><observation classCode="OBS" moodCode="EVN">
        <templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.5"/><id root="1.2.250.1.999.4.20.2"/>
        <code code="282291009" codeSystem="2.16.840.1.113883.6.96"/>
        <value xsi:type="CD" code="E10" codeSystem="2.16.840.1.113883.6.3"/></observation>
      </entryRelationship>
      <entryRelationship typeCode="SUBJ" inversionInd="true"><act classCode="ACT"
        moodCode="EVN"><templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.2"/>
        <code code="48767-8" codeSystem="2.16.840.1.113883.6.1"/>
        <text><reference value="#c-conc"/></text></act></entryRelationship>
    </act></entry>"""))
    assert [(e.code, e.details.get("comments"), e.details["concern_comments"])
            for e in got] == [("I10", ["Sous traitement"], ["Bilan cardiologique à prévoir"]),
                              ("E10", None, ["Bilan cardiologique à prévoir"])]


def test_laboratory_status_under_the_v2_table_oid_is_read_by_its_table() -> None:
    """Senders also code these statuses under the HL7 v2 table OIDs (2.16.840.1.113883.12.85
    for table 0085): 'S' there is a partial result (preliminary), not table 0123's
    'procedure scheduled'."""
    data = (HEAD + _section("30954-2", "Résultats", """<entry><observation classCode="OBS"
      moodCode="EVN"><templateId root="2.16.840.1.113883.10.20.22.4.2"/>
      <code code="2951-2" codeSystem="2.16.840.1.113883.6.1"/><statusCode code="completed"/>
      <effectiveTime value="20240310"/><value xsi:type="PQ" value="139" unit="mmol/L"/>
      """ + CCDA_STATUS.format(code="S").replace("2.16.840.1.113883.18.34",
                                                 "2.16.840.1.113883.12.85")
        + "</observation></entry>") + TAIL).encode()
    entry = normalize_cda(parse_cda(data), data, "test").entries[1]
    assert (entry.status, entry.details["lab_status"]) == (
        "preliminary", {"code": "S", "system": "HL70085"})


@pytest.mark.parametrize(("value", "dose"), [('xsi:type="INT" value="2"', 2),
                                              ('xsi:type="INT" value="rappel"', "rappel"),
                                              ('xsi:type="PQ" value="3" unit="1"', 3)])
def test_vaccination_keeps_its_rank_in_the_series(value: str, dose: int | str) -> None:
    """CI-SIS FR-Rang-de-la-vaccination (CCD series number observation, LOINC 30973-2)
    nested in a vaccination says which dose it was: skipped as no entry of its own, it
    was lost (ANS VAC and IPS-FR examples). It goes to details.dose_number."""
    entry = _one(_section("11369-6", "Vaccinations", f"""<entry><substanceAdministration
      classCode="SBADM" moodCode="EVN" negationInd="false">
      <templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.12"/><id root="1.2.250.1.999.6.2"/>
      <code code="IMMUNIZ" codeSystem="2.16.840.1.113883.5.4"/>
      <statusCode code="completed"/><effectiveTime value="20240105"/>
      <consumable><manufacturedProduct><manufacturedMaterial>
        <code code="J07BC01" codeSystem="2.16.840.1.113883.6.73"
          displayName="vaccin de l'hépatite B"/></manufacturedMaterial></manufacturedProduct>
      </consumable>
      <entryRelationship typeCode="SUBJ"><observation classCode="OBS" moodCode="EVN">
        <templateId root="2.16.840.1.113883.10.20.1.46"/>
        <templateId root="1.2.250.1.213.1.1.3.82"/>
        <code code="30973-2" codeSystem="2.16.840.1.113883.6.1"/>
        <statusCode code="completed"/><value {value}/></observation></entryRelationship>
    </substanceAdministration></entry>"""))
    assert (entry.type, entry.code, entry.details["dose_number"]) == (
        "immunization", "J07BC01", dose)


EPMED_LINE = """<entry><substanceAdministration classCode="SBADM" moodCode="INT">
  <templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.7"/><templateId root="1.2.250.1.213.1.1.3.42"/>
  <id root="1.2.250.1.999.12.1"/><code code="DRUG" codeSystem="2.16.840.1.113883.5.4"/>
  <statusCode code="active"/>
  <effectiveTime xsi:type="IVL_TS"><low value="20240301"/><high value="20240310"/></effectiveTime>
  <consumable><manufacturedProduct><manufacturedMaterial>
    <code code="60234100" codeSystem="1.2.250.1.213.2.3.1" displayName="AMOXICILLINE 1 g"/>
  </manufacturedMaterial></manufacturedProduct></consumable>
  <entryRelationship typeCode="SUBJ" inversionInd="true"><act classCode="ACT" moodCode="INT">
    <templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.3"/>
    <code code="PINSTRUCT" codeSystem="1.3.6.1.4.1.19376.1.5.3.2"/>
    <text><reference value="#instr-pat"/></text></act></entryRelationship>
  <entryRelationship typeCode="SUBJ" inversionInd="true"><act classCode="ACT" moodCode="INT">
    <templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.3.1"/>
    <code code="FINSTRUCT" codeSystem="1.3.6.1.4.1.19376.1.5.3.2"/>
    <text><reference value="#instr-disp"/></text></act></entryRelationship>
  <entryRelationship typeCode="COMP"><supply classCode="SPLY" moodCode="RQO">
    <templateId root="1.3.6.1.4.1.19376.1.9.1.3.8"/><independentInd value="false"/>
    <quantity value="2" unit="30009000"/></supply></entryRelationship>
  <entryRelationship typeCode="COMP"><act classCode="ACT" moodCode="DEF">
    <templateId root="1.3.6.1.4.1.19376.1.9.1.3.9.1"/>
    <code code="N" displayName="Aucune substitution permise"
      codeSystem="2.16.840.1.113883.5.1070"/></act></entryRelationship>
  <entryRelationship typeCode="COMP"><observation classCode="OBS" moodCode="EVN">
    <templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.13"/>
    <templateId root="1.2.250.1.213.1.1.3.48.13"/>
    <code code="MED-574" displayName="En rapport avec une ALD"
      codeSystem="1.2.250.1.213.1.1.4.322"/>
    <statusCode code="completed"/><value xsi:type="BL" value="true"/></observation>
  </entryRelationship>
  <entryRelationship typeCode="RSON"><act classCode="ACT" moodCode="EVN">
    <templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.4.1"/><id root="1.2.250.1.999.4.33"/>
    <code code="J01.0" displayName="Sinusite maxillaire aiguë"
      codeSystem="2.16.840.1.113883.6.3"/></act></entryRelationship>
</substanceAdministration></entry>"""


def test_what_a_prescription_line_says_of_itself_is_kept() -> None:
    """A CI-SIS eP-MED prescription line nests its patient and pharmacist instructions
    (IHE PCC PINSTRUCT / FINSTRUCT), the quantity to dispense and the substitution
    permission (IHE Pharm), its flags (FR-En-rapport-avec-ALD...) and its indication (RSON,
    an internal reference to the problem): all were skipped, leaving the drug and dosing."""
    entry = _one(_section("57828-6", '<content ID="instr-pat">Pendant le repas</content>'
                          '<content ID="instr-disp">-</content>', EPMED_LINE))
    assert (entry.type, entry.code, entry.details["mood"]) == ("medication", "60234100", "INT")
    d = entry.details
    assert d["patient_instructions"] == ["Pendant le repas"]
    assert "fulfillment_instructions" not in d  # '-': no instruction
    assert d["quantity_prescribed"] == {"value": "2", "unit": "30009000"}
    assert d["substitution"] == {"code": "N", "system": "2.16.840.1.113883.5.1070",
                                 "display": "Aucune substitution permise"}
    assert d["observations"] == [{"code": "MED-574", "system": "TA_ASIP",
                                  "display": "En rapport avec une ALD",
                                  "value": "true", "unit": None}]
    assert d["reasons"] == [{"code": "J01.0", "system": "CIM-10",
                             "display": "Sinusite maxillaire aiguë"}]


def test_ccda_medication_indication_supply_order_and_reaction_are_kept() -> None:
    """C-CDA nests a medication's indication (4.19: the problem is the value, the code
    only says 'finding'), its supply order (4.17: the quantity ordered) and a reaction
    (4.9, MFST) in the medication activity: all were dropped."""
    entry = _one(_section("10160-0", "Traitements", """<entry><substanceAdministration
      classCode="SBADM" moodCode="EVN"><templateId root="2.16.840.1.113883.10.20.22.4.16"/>
      <id root="1.2.250.1.999.13.1"/><statusCode code="active"/>
      <effectiveTime xsi:type="IVL_TS"><low value="20240101"/></effectiveTime>
      <consumable><manufacturedProduct><manufacturedMaterial>
        <code code="197361" codeSystem="2.16.840.1.113883.6.88" displayName="amlodipine 5 mg"/>
      </manufacturedMaterial></manufacturedProduct></consumable>
      <entryRelationship typeCode="RSON"><observation classCode="OBS" moodCode="EVN">
        <templateId root="2.16.840.1.113883.10.20.22.4.19"/>
        <code code="75321-0" codeSystem="2.16.840.1.113883.6.1"/>
        <value xsi:type="CD" code="38341003" codeSystem="2.16.840.1.113883.6.96"
          displayName="hypertension artérielle"/></observation></entryRelationship>
      <entryRelationship typeCode="REFR"><supply classCode="SPLY" moodCode="INT">
        <templateId root="2.16.840.1.113883.10.20.22.4.17"/>
        <repeatNumber value="3"/><quantity value="30"/></supply></entryRelationship>
      <entryRelationship typeCode="MFST" inversionInd="true"><observation classCode="OBS"
        moodCode="EVN"><templateId root="2.16.840.1.113883.10.20.22.4.9"/>
        <code code="ASSERTION" codeSystem="2.16.840.1.113883.5.4"/>
        <value xsi:type="CD" code="271807003" codeSystem="2.16.840.1.113883.6.96"
          displayName="éruption cutanée"/></observation></entryRelationship>
    </substanceAdministration></entry>"""))
    assert (entry.type, entry.code) == ("medication", "197361")
    assert entry.details["reasons"] == [{"code": "38341003", "system": "SNOMED-CT",
                                         "display": "hypertension artérielle"}]
    assert entry.details["quantity_prescribed"] == {"value": "30", "unit": None}
    assert entry.details["reactions"] == [{"code": "271807003", "system": "SNOMED-CT",
                                           "display": "éruption cutanée"}]
    assert "observations" not in entry.details


def test_internal_references_of_a_procedure_say_why_and_with_what() -> None:
    """CI-SIS procedures point at the problem they were done for (RSON) and at the device
    they used (REFR) through IHE PCC internal references (an id and a code): both were
    dropped. They go to details.reasons and details.references."""
    entry = _one(_section("47519-4", "Actes", """<entry><procedure classCode="PROC"
      moodCode="EVN"><templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.19"/>
      <id root="1.2.250.1.999.14.1"/>
      <code code="DEQP003" codeSystem="1.2.250.1.213.2.5" displayName="pose de stimulateur"/>
      <statusCode code="completed"/><effectiveTime value="20240212"/>
      <entryRelationship typeCode="RSON"><act classCode="ACT" moodCode="EVN">
        <templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.4.1"/>
        <templateId root="1.2.250.1.213.1.1.3.36"/><id root="1.2.250.1.999.4.41"/>
        <code code="I44.2" codeSystem="2.16.840.1.113883.6.3"
          displayName="bloc auriculoventriculaire complet"/></act></entryRelationship>
      <entryRelationship typeCode="REFR"><act classCode="ACT" moodCode="EVN">
        <templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.4.1"/><id root="1.2.250.1.999.5.7"/>
        <code code="J010101" codeSystem="1.2.250.1.213.2.68"
          displayName="stimulateurs cardiaques implantables"/></act></entryRelationship>
    </procedure></entry>"""))
    assert (entry.type, entry.code) == ("procedure", "DEQP003")
    assert entry.details["reasons"] == [{"code": "I44.2", "system": "CIM-10", "unit": None,
                                         "value": None,
                                         "display": "bloc auriculoventriculaire complet"}]
    assert entry.details["references"] == [{"code": "J010101", "system": "EMDN",
                                            "display": "stimulateurs cardiaques implantables"}]


def test_what_a_problem_nests_about_itself_is_kept() -> None:
    """A problem (CI-SIS FR-Probleme) nests simple observations about itself (how much it
    bled, the follow-up of its treatment), C-CDA its age at onset (4.31): skipped as no
    entries of their own, they were lost. They go to details.observations; its status
    and severity still go to their own keys."""
    entry = _one(_section("11450-4", "Problèmes", """<entry><observation classCode="OBS"
      moodCode="EVN"><templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.5"/>
      <id root="1.2.250.1.999.4.50"/>
      <code code="55607006" codeSystem="2.16.840.1.113883.6.96"/>
      <effectiveTime><low value="20240319"/></effectiveTime>
      <value xsi:type="CD" code="T81.0" codeSystem="2.16.840.1.113883.6.3"
        displayName="hémorragie compliquant un acte"/>
      <entryRelationship typeCode="SUBJ" inversionInd="true"><observation classCode="OBS"
        moodCode="EVN"><templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.13"/>
        <code code="GEN-167" displayName="Quantité" codeSystem="1.2.250.1.213.1.1.4.322"/>
        <value xsi:type="PQ" value="20" unit="mL"/></observation></entryRelationship>
      <entryRelationship typeCode="SUBJ" inversionInd="true"><observation classCode="OBS"
        moodCode="EVN"><templateId root="2.16.840.1.113883.10.20.22.4.31"/>
        <code code="445518008" codeSystem="2.16.840.1.113883.6.96" displayName="âge"/>
        <value xsi:type="PQ" value="57" unit="a"/></observation></entryRelationship>
      <entryRelationship typeCode="SUBJ" inversionInd="true"><observation classCode="OBS"
        moodCode="EVN"><code code="SEV" codeSystem="2.16.840.1.113883.5.4"/>
        <value xsi:type="CD" code="24484000" codeSystem="2.16.840.1.113883.6.96"
          displayName="sévère"/></observation></entryRelationship>
    </observation></entry>"""))
    assert (entry.type, entry.code) == ("problem", "T81.0")
    assert entry.details["observations"] == [
        {"code": "GEN-167", "system": "TA_ASIP", "display": "Quantité", "value": "20",
         "unit": "mL"},
        {"code": "445518008", "system": "SNOMED-CT", "display": "âge", "value": "57",
         "unit": "a"}]
    assert entry.details["severity"]["code"] == "24484000"


def test_dose_counted_in_administration_units_keeps_its_unit() -> None:
    """C-CDA gives a dose of '1' with the unit it counts in administrationUnitCode (NCI
    'tablet'): the dose was filed as '1' of nothing. The unit goes to
    details.administration_unit."""
    entry = _one(_section("10160-0", "Traitements", """<entry><substanceAdministration
      classCode="SBADM" moodCode="EVN"><templateId root="2.16.840.1.113883.10.20.22.4.16"/>
      <id root="1.2.250.1.999.13.2"/><statusCode code="active"/>
      <effectiveTime xsi:type="IVL_TS"><low value="20240101"/></effectiveTime>
      <routeCode code="C38288" codeSystem="2.16.840.1.113883.3.26.1.1" displayName="orale"/>
      <doseQuantity value="1"/>
      <administrationUnitCode code="C48542" codeSystem="2.16.840.1.113883.3.26.1.1"
        displayName="comprimé"/>
      <consumable><manufacturedProduct><manufacturedMaterial>
        <code code="197884" codeSystem="2.16.840.1.113883.6.88" displayName="lisinopril 10 mg"/>
      </manufacturedMaterial></manufacturedProduct></consumable>
    </substanceAdministration></entry>"""))
    assert (entry.details["dose"], entry.details["administration_unit"]) == (
        "1", {"code": "C48542", "system": "NCI", "display": "comprimé"})


def test_vaccine_manufacturer_is_kept_with_its_lot() -> None:
    """C-CDA Immunization Medication Information names who made the vaccine
    (manufacturerOrganization) beside its lot: it was dropped."""
    entry = _one(_section("11369-6", "Vaccinations", """<entry><substanceAdministration
      classCode="SBADM" moodCode="EVN" negationInd="false">
      <templateId root="2.16.840.1.113883.10.20.22.4.52"/><id root="1.2.250.1.999.6.3"/>
      <statusCode code="completed"/><effectiveTime value="20231012"/>
      <consumable><manufacturedProduct classCode="MANU">
        <templateId root="2.16.840.1.113883.10.20.22.4.54"/>
        <manufacturedMaterial><code code="J07BB02" codeSystem="2.16.840.1.113883.6.73"
          displayName="vaccin grippal inactivé"/><lotNumberText>GRP-2023-117</lotNumberText>
        </manufacturedMaterial>
        <manufacturerOrganization><name>Laboratoire Vaccinal de Lyon</name>
        </manufacturerOrganization></manufacturedProduct></consumable>
    </substanceAdministration></entry>"""))
    assert (entry.details["lot_number"], entry.details["manufacturer"]) == (
        "GRP-2023-117", "Laboratoire Vaccinal de Lyon")


def test_one_loinc_code_asked_two_questions_is_two_facts() -> None:
    """CI-SIS asks several questions under one LOINC code, each named by a qualifier of
    the code ('mobility': 'up and across the room in 15 s?', 'fell in the last 6 months?'),
    or one per side (laterality 20228-3): the qualifiers were dropped, so two different
    answers 'false' on the same day were the same dedupe fact and merged. They go to
    details.code_qualifiers (a coded value's to value_qualifiers) and into the fact."""
    from dossiers.deposit import fact_of

    def question(name: str, code: str, side: str = "") -> str:
        lateral = f"""<qualifier><name code="20228-3" codeSystem="2.16.840.1.113883.6.1"
            displayName="latéralité"/><value code="{side}"
            codeSystem="2.16.840.1.113883.6.96"/></qualifier>""" if side else ""
        return f"""<entry><observation classCode="OBS" moodCode="EVN">
          <templateId root="1.3.6.1.4.1.19376.1.3.1.6"/>
          <code code="95023-8" codeSystem="2.16.840.1.113883.6.1" displayName="Mobilité">
            <qualifier><name code="{code}" codeSystem="1.2.250.1.213.1.1.4.322"
              displayName="{name}"/></qualifier>{lateral}</code>
          <statusCode code="completed"/><effectiveTime value="20240323"/>
          <value xsi:type="BL" value="false"/></observation></entry>"""

    got = _entries(_section("30954-2", "Évaluation", question(
        "Se lève et traverse la pièce en moins de 15 s ?", "MED-596")
        + question("Chute dans les 6 derniers mois ?", "MED-597")
        + question("Chute dans les 6 derniers mois ?", "MED-597", "24028007")))
    assert [e.details["code_qualifiers"][0]["name"]["code"] for e in got] == [
        "MED-596", "MED-597", "MED-597"]
    assert got[2].details["code_qualifiers"][1] == {
        "name": {"code": "20228-3", "system": "LN", "display": "latéralité"},
        "value": {"code": "24028007", "system": "SNOMED-CT", "display": ""}}
    facts = [fact_of(e) for e in got]
    assert None not in facts and len(set(facts)) == 3


def test_the_same_finding_at_two_body_sites_is_two_facts() -> None:
    """CI-SIS (DLU-EHPAD) records pain at each site as its own observation, the site in
    targetSiteCode: pain in the left forearm and in the left thigh, the same minute, were
    one dedupe fact. The site is part of the fact."""
    from dossiers.deposit import fact_of

    def pain(site: str) -> str:
        return f"""<entry><observation classCode="OBS" moodCode="EVN">
          <templateId root="1.3.6.1.4.1.19376.1.3.1.6"/>
          <code code="R52.9" codeSystem="2.16.840.1.113883.6.3" displayName="douleur"/>
          <statusCode code="completed"/><effectiveTime value="20240327153500+0100"/>
          <value xsi:type="BL" value="true"/>
          <targetSiteCode code="{site}" codeSystem="2.16.840.1.113883.6.96"/></observation>
          </entry>"""

    got = _entries(_section("30954-2", "Observations", pain("66480008") + pain("61396006")))
    assert [e.details["target_site"]["code"] for e in got] == ["66480008", "61396006"]
    assert fact_of(got[0]) != fact_of(got[1])


def test_discharge_disposition_of_the_documented_stay_is_kept() -> None:
    """encompassingEncounter/dischargeDispositionCode (where the patient went at
    discharge) was parsed but dropped: it goes to the document's details.encounter."""
    head = HEAD.replace("  <component><structuredBody>", """  <componentOf>
    <encompassingEncounter><id root="1.2.250.1.999.3" extension="SEJ-77"/>
      <effectiveTime><low value="20240301"/><high value="20240312"/></effectiveTime>
      <dischargeDispositionCode code="04" codeSystem="2.16.840.1.113883.12.112"
        displayName="transfert en soins de suite"/>
    </encompassingEncounter></componentOf>
  <component><structuredBody>""")
    data = (head + _section("10164-2", "Synthèse", "") + TAIL).encode()
    document = normalize_cda(parse_cda(data), data, "test").entries[0]
    assert document.details["encounter"]["discharge_disposition"] == {
        "code": "04", "system": "HL70112",
        "display": "transfert en soins de suite"}


def test_ehdsi_procedure_and_vital_sign_with_their_own_template_only() -> None:
    """eHDSI procedures (1.3.6.1.4.1.12559.11.10.1.3.1.3.26) need not carry the IHE PCC
    procedure template, and eHDSI vital signs observations (…3.22) have their own: with
    only theirs, the procedure was not filed and the measurement was an observation."""
    got = _entries(_section("47519-4", "Actes", """<entry><procedure classCode="PROC"
      moodCode="EVN"><templateId root="1.3.6.1.4.1.12559.11.10.1.3.1.3.26"/>
      <id root="1.2.250.1.999.14.2"/>
      <code code="80146002" codeSystem="2.16.840.1.113883.6.96" displayName="appendicectomie"/>
      <statusCode code="completed"/><effectiveTime value="20150610"/></procedure></entry>"""),
      _section("8716-3", "Signes vitaux", """<entry><organizer classCode="CLUSTER"
      moodCode="EVN"><templateId root="1.3.6.1.4.1.12559.11.10.1.3.1.3.21"/>
      <statusCode code="completed"/><effectiveTime value="20240312"/>
      <component><observation classCode="OBS" moodCode="EVN">
        <templateId root="1.3.6.1.4.1.12559.11.10.1.3.1.3.22"/>
        <code code="8480-6" codeSystem="2.16.840.1.113883.6.1"/>
        <effectiveTime value="20240312"/><value xsi:type="PQ" value="132" unit="mm[Hg]"/>
      </observation></component></organizer></entry>"""))
    assert [(e.type, e.code) for e in got] == [("procedure", "80146002"),
                                               ("vital_sign", "8480-6")]


@pytest.mark.parametrize(("code", "status"), [("active", "preliminary"),
                                              ("completed", "final")])
def test_document_status_extension_says_a_report_is_not_final(code: str, status: str) -> None:
    """ELGA (Austria) codes a report not yet complete as ClinicalDocument/sdtc:statusCode
    'active' (the HL7 extension for a document in other than the completed state), not
    with lab:statusCode: it was filed as a final document."""
    data = (HEAD.replace("<title>Synthèse</title>",
                         f'<title>Synthèse</title><sdtc:statusCode code="{code}"/>')
            + _section("18719-5", "Biochimie", "") + TAIL).encode()
    document = normalize_cda(parse_cda(data), data, "test").entries[0]
    assert (document.status, document.details["report_status"]) == (status, code)


def test_specimen_condition_goes_with_the_specimen_of_the_results() -> None:
    """C-CDA's Specimen Condition Observation (4.421) in the collection procedure says the
    tube was hemolysed: skipped as no result, it was lost. The results of that specimen
    carry it in details.specimen.condition (their dedupe fact is unchanged)."""
    from dataclasses import replace

    from dossiers.deposit import fact_of

    entry = _one(_section("30954-2", "Résultats", """<entry><organizer classCode="BATTERY"
      moodCode="EVN"><templateId root="2.16.840.1.113883.10.20.22.4.1"/>
      <code code="24320-4" codeSystem="2.16.840.1.113883.6.1"/><statusCode code="completed"/>
      <component><observation classCode="OBS" moodCode="EVN">
        <templateId root="2.16.840.1.113883.10.20.22.4.2"/>
        <code code="2823-3" codeSystem="2.16.840.1.113883.6.1"/><statusCode code="completed"/>
        <effectiveTime value="20240310"/><value xsi:type="PQ" value="5.9" unit="mmol/L"/>
      </observation></component>
      <component><procedure classCode="PROC" moodCode="EVN">
        <templateId root="2.16.840.1.113883.10.20.22.4.415" extension="2018-09-01"/>
        <code code="17636008" codeSystem="2.16.840.1.113883.6.96"/>
        <effectiveTime value="20240310081500+0100"/>
        <participant typeCode="PRD"><participantRole classCode="SPEC"><playingEntity>
          <code code="119364003" codeSystem="2.16.840.1.113883.6.96" displayName="sérum"/>
        </playingEntity></participantRole></participant>
        <entryRelationship typeCode="COMP"><observation classCode="OBS" moodCode="EVN">
          <templateId root="2.16.840.1.113883.10.20.22.4.421" extension="2018-09-01"/>
          <code code="93047-9" codeSystem="2.16.840.1.113883.6.1"/>
          <value xsi:type="CD" code="HEM" codeSystem="2.16.840.1.113883.18.403"
            displayName="hémolysé"/></observation></entryRelationship>
      </procedure></component></organizer></entry>"""))
    assert (entry.code, entry.specimen_time) == ("2823-3", "2024-03-10T08:15:00+01:00")
    assert entry.details["specimen"] == {
        "code": "119364003", "system": "SNOMED-CT", "display": "sérum",
        "condition": [{"code": "HEM", "system": "2.16.840.1.113883.18.403",
                       "display": "hémolysé"}]}
    assert fact_of(entry) == fact_of(replace(entry, details={})) is not None


def test_panel_named_only_in_words_is_kept() -> None:
    """A battery without a panel code (code nullFlavor, its name in originalText: C-CDA
    senders with local panels) gave its results no panel at all; its words are kept."""
    entry = _one(_section("30954-2", '<content ID="pan1">Bilan martial</content>',
                          """<entry><organizer classCode="BATTERY" moodCode="EVN">
      <templateId root="2.16.840.1.113883.10.20.22.4.1"/>
      <code nullFlavor="UNK"><originalText><reference value="#pan1"/></originalText></code>
      <statusCode code="completed"/>
      <component><observation classCode="OBS" moodCode="EVN">
        <templateId root="2.16.840.1.113883.10.20.22.4.2"/>
        <code code="2276-4" codeSystem="2.16.840.1.113883.6.1"/><statusCode code="completed"/>
        <effectiveTime value="20240310"/><value xsi:type="PQ" value="35" unit="ug/L"/>
      </observation></component></organizer></entry>"""))
    assert entry.details["panel"] == {"text": "Bilan martial"}


def test_the_prescriber_of_a_lab_report_is_kept() -> None:
    """The prescriber of a CR-BIO (header participant REF, IHE XD-LAB Ordering Provider)
    and the date of the prescription were dropped (HL7v2 keeps OBR-16): they go to the
    document's details.ordered_by, as ids."""
    head = HEAD.replace("  <component><structuredBody>", """  <participant typeCode="REF">
    <templateId root="1.3.6.1.4.1.19376.1.3.3.1.6"/>
    <time xsi:type="IVL_TS"><high value="202403080735+0100"/></time>
    <associatedEntity classCode="PROV"><id root="1.2.250.1.71.4.2.1" extension="810000000777"/>
      <associatedPerson><name><family>Prescriptrice</family></name></associatedPerson>
      <scopingOrganization><id root="1.2.250.1.71.4.2.2" extension="1330000000"/>
        <name>Cabinet des Lilas</name></scopingOrganization>
    </associatedEntity></participant>
  <component><structuredBody>""")
    data = (head + _section("18719-5", "Biochimie", "") + TAIL).encode()
    document = normalize_cda(parse_cda(data), data, "test").entries[0]
    assert document.details["ordered_by"] == [{
        "ids": ["1.2.250.1.71.4.2.1^810000000777"],
        "organization": ["1.2.250.1.71.4.2.2^1330000000"],
        "organization_name": "Cabinet des Lilas", "time": "2024-03-08T07:35+01:00"}]


# -- round 6: CDA-CH, ELGA, vendor C-CDAs, CI-SIS gaps ----------------------------------------
def _lab_act(collection_extra: str, result_extra: str = "") -> str:
    return f"""<entry><act classCode="ACT" moodCode="EVN">
        <templateId root="1.3.6.1.4.1.19376.1.3.1"/>
        <code code="18719-5" codeSystem="2.16.840.1.113883.6.1"/>
        <entryRelationship typeCode="COMP"><procedure classCode="PROC" moodCode="EVN">
          <templateId root="1.3.6.1.4.1.19376.1.3.1.2"/>
          <code code="33882-2" codeSystem="2.16.840.1.113883.6.1"/>
          <effectiveTime><high value="202403110735+0100"/></effectiveTime>
          <participant typeCode="PRD"><participantRole classCode="SPEC">
            <playingEntity><code code="BLD" codeSystem="2.16.840.1.113883.18.311"
              displayName="Sang"/></playingEntity></participantRole></participant>
          {collection_extra}</procedure></entryRelationship>
        <entryRelationship typeCode="COMP"><organizer classCode="BATTERY" moodCode="EVN">
          <code code="24320-4" codeSystem="2.16.840.1.113883.6.1"/>
          <component><observation classCode="OBS" moodCode="EVN">
            <templateId root="1.3.6.1.4.1.19376.1.3.1.6"/>
            <code code="2823-3" codeSystem="2.16.840.1.113883.6.1"/>
            <effectiveTime value="202403131030+0100"/>
            <value xsi:type="PQ" value="5.9" unit="mmol/L"/>{result_extra}
          </observation></component></organizer></entryRelationship>
      </act></entry>"""


SPECIMEN_RECEIVED = """<entryRelationship typeCode="COMP"><act classCode="ACT" moodCode="EVN">
            <templateId root="1.3.6.1.4.1.19376.1.3.1.3"/>
            <templateId root="1.2.250.1.213.1.1.3.107"/>
            <code code="SPRECEIVE" codeSystem="1.3.5.1.4.1.19376.1.5.3.2"
              displayName="Échantillon reçu"/>
            <effectiveTime value="202403130752+0100"/></act></entryRelationship>"""


def test_the_time_the_laboratory_received_the_specimen_is_kept() -> None:
    """IHE LAB Specimen Received (CI-SIS FR-Echantillon-date-reception, CDA-CH lab reports):
    an act SPRECEIVE under the Specimen Collection procedure says when the specimen reached
    the laboratory. It was skipped: a potassium on a tube received two days after it was
    drawn looked like one analysed at once. It goes to details.specimen.received."""
    entry = _one(_section("18719-5", "Biochimie", _lab_act(SPECIMEN_RECEIVED)))
    assert entry.specimen_time == "2024-03-11T07:35+01:00"
    assert entry.details["specimen"] == {"code": "BLD", "system": "HL70487", "display": "Sang",
                                         "received": "2024-03-13T07:52+01:00"}
    without = _one(_section("18719-5", "Biochimie", _lab_act("")))
    assert "received" not in without.details["specimen"]


def test_ans_value_set_oids_sent_as_code_systems_file_under_their_terminology() -> None:
    """CI-SIS senders put the OID of an ANS or Assurance Maladie value set (JDV_Orpha_Maladies,
    JDV_sejours_actes_CNAM-HR_CISIS...) in codeSystem: the same ORPHAcode was filed under
    two systems (the value set's OID, Orphanet's), a CCAM act not under CCAM, all flagged
    unmapped. They are filed under their terminology (Orphanet by its OID)."""
    def problem(code: str, system: str) -> str:
        return f"""<entry><observation classCode="OBS" moodCode="EVN">
          <templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.5"/>
          <code code="55607006" codeSystem="2.16.840.1.113883.6.96"/>
          <statusCode code="completed"/>
          <value xsi:type="CD" code="{code}" codeSystem="{system}" displayName="LAL"/>
          </observation></entry>"""

    got = _entries(_section("11450-4", "Problèmes", problem("513", "1.2.250.1.213.2.49.1") +
                            problem("513", "1.2.250.1.213.2.49")),
                   _section("47519-4", "Actes", """<entry><procedure classCode="PROC"
                     moodCode="EVN"><templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.19"/>
                     <code code="QEQJ001" codeSystem="1.2.250.1.215.200.3.4"
                       codeSystemName="JDV_sejours_actes_CNAM-HR_CISIS"/>
                     <statusCode code="completed"/><effectiveTime value="20230105"/>
                     </procedure></entry>"""))
    assert [(e.code, e.system, e.mapped) for e in got] == [
        ("513", "1.2.250.1.213.2.49", True), ("513", "1.2.250.1.213.2.49", True),
        ("QEQJ001", "CCAM", True)]


def test_the_stay_of_a_discharge_letter_keeps_its_times_unit_and_physician() -> None:
    """encompassingEncounter (CI-SIS LDL-SES, OBP, C-CDA discharge summaries): admission and
    discharge were kept as raw CDA timestamps, unlike every other time; the encounter's class
    lost its system and name; the physician responsible (responsibleParty), the attending
    (encounterParticipant ATND), the unit's name (healthCareFacility/location) and the
    organization's name were dropped."""
    head = HEAD.replace("  <component><structuredBody>", """  <componentOf>
    <encompassingEncounter><id root="1.2.250.1.999.3" extension="SEJ-78"/>
      <code code="IMP" codeSystem="2.16.840.1.113883.5.4" displayName="Hospitalisation"/>
      <effectiveTime><low value="20240301081500+0100"/><high value="20240312"/></effectiveTime>
      <responsibleParty><assignedEntity><id root="1.2.250.1.71.4.2.1" extension="810000000888"/>
        <assignedPerson><name><family>Responsable</family></name></assignedPerson>
        <representedOrganization><id root="1.2.250.1.71.4.2.2" extension="1330000001"/>
          <name>Hôpital des Essais</name></representedOrganization></assignedEntity>
      </responsibleParty>
      <encounterParticipant typeCode="ATND"><assignedEntity>
        <id root="1.2.250.1.71.4.2.1" extension="810000000999"/></assignedEntity>
      </encounterParticipant>
      <location><healthCareFacility><id root="1.2.250.1.71.4.2.2" extension="1330000001"/>
        <code code="SA01" codeSystem="1.2.250.1.71.4.2.4" displayName="Établissement public"/>
        <location><name>Service de cardiologie</name></location>
        <serviceProviderOrganization><id root="1.2.250.1.71.4.2.2" extension="1330000001"/>
          <name>Hôpital des Essais</name></serviceProviderOrganization>
      </healthCareFacility></location>
    </encompassingEncounter></componentOf>
  <component><structuredBody>""")
    data = (head + _section("10164-2", "Synthèse", "") + TAIL).encode()
    encounter = normalize_cda(parse_cda(data), data, "test").entries[0].details["encounter"]
    assert encounter == {
        "ids": ["1.2.250.1.999.3^SEJ-78"], "code": "IMP", "system": "HL7-ACTCODE",
        "display": "Hospitalisation", "low": "2024-03-01T08:15:00+01:00", "high": "2024-03-12",
        "responsible": {"ids": ["1.2.250.1.71.4.2.1^810000000888"],
                        "organization": ["1.2.250.1.71.4.2.2^1330000001"],
                        "organization_name": "Hôpital des Essais"},
        "participants": [{"type": "ATND", "ids": ["1.2.250.1.71.4.2.1^810000000999"]}],
        "location": {"ids": ["1.2.250.1.71.4.2.2^1330000001"],
                     "code": {"code": "SA01", "system": "1.2.250.1.71.4.2.4",
                              "display": "Établissement public"},
                     "name": "Service de cardiologie",
                     "organization": ["1.2.250.1.71.4.2.2^1330000001"],
                     "organization_name": "Hôpital des Essais"}}


def test_a_specimen_described_in_its_own_section_is_linked_to_its_results_by_id() -> None:
    """IHE PaLM / C-CDA: the Specimen Collection procedures may be entries of a section of
    their own (ELGA Laborbefund 'Probeninformation', CI-SIS CR-GM 'Informations sur le
    prélèvement'), each specimen with its id; a battery or a result names its specimen by
    that id (specimen/specimenRole/id). The results had no collection time nor specimen;
    they get those of the specimen they name, and only they."""
    def collection(spec_id: str, when: str, code: str, received: str = "") -> str:
        return f"""<entry><procedure classCode="PROC" moodCode="EVN">
          <templateId root="1.3.6.1.4.1.19376.1.3.1.2"/>
          <code code="33882-2" codeSystem="2.16.840.1.113883.6.1"/>
          <effectiveTime value="{when}"/>
          <participant typeCode="PRD"><participantRole classCode="SPEC">
            <id root="1.2.250.1.999.21" extension="{spec_id}"/>
            <playingEntity><code code="{code}" codeSystem="2.16.840.1.113883.5.129"/>
            </playingEntity></participantRole></participant>{received}</procedure></entry>"""

    def named(spec_id: str) -> str:
        return (f'<specimen><specimenRole><id root="1.2.250.1.999.21" extension="{spec_id}"/>'
                "</specimenRole></specimen>")

    results = f"""<entry><organizer classCode="BATTERY" moodCode="EVN">
        <templateId root="1.3.6.1.4.1.19376.1.3.1.4"/>
        <code code="24320-4" codeSystem="2.16.840.1.113883.6.1"/><statusCode code="completed"/>
        {named("S-1")}
        <component><observation classCode="OBS" moodCode="EVN">
          <templateId root="1.3.6.1.4.1.19376.1.3.1.6"/>
          <code code="2823-3" codeSystem="2.16.840.1.113883.6.1"/><statusCode code="completed"/>
          <effectiveTime value="202403121030+0100"/><value xsi:type="PQ" value="4.1" unit="mmol/L"/>
        </observation></component>
        <component><observation classCode="OBS" moodCode="EVN">
          <templateId root="1.3.6.1.4.1.19376.1.3.1.6"/>
          <code code="2345-7" codeSystem="2.16.840.1.113883.6.1"/><statusCode code="completed"/>
          <effectiveTime value="202403121030+0100"/><value xsi:type="PQ" value="5.2" unit="mmol/L"/>
          {named("S-2")}
        </observation></component>
        <component><observation classCode="OBS" moodCode="EVN">
          <templateId root="1.3.6.1.4.1.19376.1.3.1.6"/>
          <code code="2951-2" codeSystem="2.16.840.1.113883.6.1"/><statusCode code="completed"/>
          <effectiveTime value="202403121030+0100"/><value xsi:type="PQ" value="140" unit="mmol/L"/>
          {named("S-9")}
        </observation></component>
      </organizer></entry>"""
    got = _entries(_section("10", "Probeninformation",
                            collection("S-1", "202403110700+0100", "SER", SPECIMEN_RECEIVED) +
                            collection("S-2", "202403110710+0100", "PLAS")),
                   _section("18719-5", "Chemie", results))
    assert [(e.code, e.specimen_time, e.details.get("specimen")) for e in got] == [
        ("2823-3", "2024-03-11T07:00+01:00",
         {"code": "SER", "system": "HL7-SPECIMENTYPE", "display": "",
          "received": "2024-03-13T07:52+01:00"}),
        ("2345-7", "2024-03-11T07:10+01:00",
         {"code": "PLAS", "system": "HL7-SPECIMENTYPE", "display": ""}),
        ("2951-2", "2024-03-11T07:00+01:00",  # names a specimen nobody describes: the battery's
         {"code": "SER", "system": "HL7-SPECIMENTYPE", "display": "",
          "received": "2024-03-13T07:52+01:00"})]


@pytest.mark.parametrize(("code", "masked"), [("1141000195107", True), ("263856008", True),
                                               ("17621005", False), ("1051000195109", False)])
def test_swiss_epr_confidentiality_codes_mask_like_the_hl7_ones(code: str, masked: bool) -> None:
    """CDA-CH documents (Swiss EPR) send confidentialityCode in SNOMED CT and the EPR
    extension (normal, restricted, secret) rather than HL7 N/R/V: unknown, a secret
    document was filed visible to professionals, with only a warning."""
    head = HEAD.replace('<confidentialityCode code="N" codeSystem="2.16.840.1.113883.5.25"/>',
                        f'<confidentialityCode code="{code}" codeSystem="2.16.840.1.113883.6.96"/>')
    data = (head + _section("10164-2", "Synthèse", "") + TAIL).encode()
    msg = normalize_cda(parse_cda(data), data, "test")
    assert msg.entries[0].masking.get("MASQUE_PS", False) is masked
    assert not any("CONFIDENTIALITY" in w for w in msg.warnings)


def test_the_site_a_specimen_was_taken_from_is_kept() -> None:
    """The Specimen Collection procedure says where the specimen was taken: approachSiteCode
    in IHE LAB / CDA-CH ('Kubital links', often in words only), targetSiteCode in C-CDA 4.415
    (USCDI 'specimen source site'; HL7v2 SPM-8). It was dropped: a wound swab's site matters
    to read its culture. It goes to details.specimen.site."""
    words = _one(_section("18719-5", '<content ID="site1">Kubital links</content>', _lab_act(
        '<approachSiteCode nullFlavor="ASKU"><originalText><reference value="#site1"/>'
        "</originalText></approachSiteCode>")))
    assert words.details["specimen"]["site"] == {"text": "Kubital links"}
    coded = _one(_section("18719-5", "Biochimie", _lab_act(
        '<targetSiteCode code="368208006" codeSystem="2.16.840.1.113883.6.96" '
        'displayName="Left upper arm structure"/>')))
    assert coded.details["specimen"]["site"] == {
        "code": "368208006", "system": "SNOMED-CT", "display": "Left upper arm structure"}


@pytest.mark.parametrize(("document_id", "said"), [
    ('<id extension="DOC-REEL-1"/>', "has an extension but no root"),
    ('<id nullFlavor="NI"/>', "is a nullFlavor ('NI')"),
    ("", "is missing"),
])
def test_an_unusable_document_id_says_what_is_wrong_with_it(document_id: str, said: str) -> None:
    """CDA_NO_DOCUMENT_ID said 'ClinicalDocument/id is missing' for an id sent with an
    extension and no root, or as a nullFlavor: the integrator looked for an absent element."""
    from normalizers.model import NormalizationError

    head = HEAD.replace('<id root="1.2.250.1.999.1.2" extension="DOC-REEL-1"/>', document_id)
    data = (head + _section("10164-2", "Synthèse", "") + TAIL).encode()
    with pytest.raises(NormalizationError) as raised:
        normalize_cda(parse_cda(data), data, "test")
    assert raised.value.code == "CDA_NO_DOCUMENT_ID"
    assert said in str(raised.value)


def test_the_vaccinator_and_who_did_a_procedure_are_kept() -> None:
    """CI-SIS FR-Vaccination (VAC, IPS-FR), IHE PCC and CDA-CH immunizations name who gave
    the vaccine (performer: RPPS, GLN); a procedure its performer (CNAM-HR: the organization
    when the person's id is a nullFlavor). It was dropped: every vaccination was filed
    without its vaccinator. It goes to details.performed_by, not Entry.performer, which
    dossiers/access.py reads as the entry's author."""
    got = _entries(_section("11369-6", "Vaccinations", """<entry><substanceAdministration
      classCode="SBADM" moodCode="EVN"><templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.12"/>
      <code code="IMMUNIZ" codeSystem="2.16.840.1.113883.5.4"/><statusCode code="completed"/>
      <effectiveTime value="20230104"/>
      <consumable><manufacturedProduct><manufacturedMaterial><code code="J07BD52"
        codeSystem="2.16.840.1.113883.6.73" displayName="ROR"/></manufacturedMaterial>
      </manufacturedProduct></consumable>
      <performer typeCode="PRF"><assignedEntity><id root="1.2.250.1.71.4.2.1"
        extension="810000000555"/></assignedEntity></performer>
      </substanceAdministration></entry>"""),
                   _section("47519-4", "Actes", """<entry><procedure classCode="PROC"
      moodCode="EVN"><templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.19"/>
      <code code="QEQJ001" codeSystem="1.2.250.1.213.2.5"/><statusCode code="completed"/>
      <effectiveTime value="20230105"/>
      <performer typeCode="PRF"><assignedEntity><id nullFlavor="UNK"/>
        <representedOrganization><id root="1.2.250.1.71.4.2.2" extension="1330000002"/>
        </representedOrganization></assignedEntity></performer></procedure></entry>"""))
    assert [(e.type, e.performer, e.details["performed_by"]) for e in got] == [
        ("immunization", None, {"ids": ["1.2.250.1.71.4.2.1^810000000555"]}),
        ("procedure", None, {"organization": ["1.2.250.1.71.4.2.2^1330000002"]})]


def test_cvx_under_its_older_oid_is_cvx() -> None:
    """The C-CDA R1.1 CCD sample (chb/ccdaScorecard samples/CCD.sample.xml) and the vendor
    exports built on it code vaccines in CVX under 2.16.840.1.113883.6.59, the older OID of
    the HL7 registry: filed unmapped under the raw OID, never the same vaccine as a CVX one."""
    entry = _one(_section("11369-6", "Vaccins", """<entry><substanceAdministration
      classCode="SBADM" moodCode="EVN"><templateId root="2.16.840.1.113883.10.20.22.4.52"/>
      <statusCode code="completed"/><effectiveTime value="19991101"/>
      <consumable><manufacturedProduct><manufacturedMaterial><code code="88"
        codeSystem="2.16.840.1.113883.6.59" codeSystemName="CVX"
        displayName="Influenza virus vaccine"/></manufacturedMaterial></manufacturedProduct>
      </consumable></substanceAdministration></entry>"""))
    assert (entry.code, entry.system, entry.mapped) == ("88", "CVX", True)


SIMPLE_OBSERVATION = """<entry><observation classCode="OBS" moodCode="EVN">
  <templateId root="2.16.840.1.113883.10.20.1.31"/>
  <templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.13"/>
  <code code="{code}" codeSystem="2.16.840.1.113883.6.1"/><statusCode code="completed"/>
  <effectiveTime value="20240301"/>{value}</observation></entry>"""


def test_an_ihe_pcc_simple_observation_is_a_lab_result_only_among_results() -> None:
    """Every IHE PCC simple observation carries the CCD 'result observation' template
    (CI-SIS FR-Simple-Observation: autonomy, NIHSS and ECOG scores, home help in the ANS
    AVC, ANEST, CANCER and IPS-FR examples): they were all filed as lab results. A lab
    result only in a results section (or battery); an observation elsewhere; a more
    specific template (a vital sign) still decides."""
    autonomy = SIMPLE_OBSERVATION.format(code="45590-7",
                                         value='<value xsi:type="BL" value="true"/>')
    nihss = SIMPLE_OBSERVATION.format(code="72089-6", value='<value xsi:type="INT" value="4"/>')
    glucose = SIMPLE_OBSERVATION.format(
        code="2345-7", value='<value xsi:type="PQ" value="5.2" unit="mmol/L"/>')
    weight = SIMPLE_OBSERVATION.replace(
        '<templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.13"/>',
        '<templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.13"/>'
        '<templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.13.2"/>').format(
        code="29463-7", value='<value xsi:type="PQ" value="70" unit="kg"/>')
    got = _entries(_section("46006-3", "Autonomie", autonomy + nihss + weight),
                   _section("30954-2", "Résultats", glucose))
    assert [(e.code, e.type) for e in got] == [
        ("45590-7", "observation"), ("72089-6", "observation"), ("29463-7", "vital_sign"),
        ("2345-7", "lab_result")]


def test_ihe_pharm_package_and_ingredient_strength_are_kept() -> None:
    """IHE Pharm products: a CDA-CH treatment plan (hl7ch/hl7ch-cda projects/Cara, MTP)
    codes the material by its ATC class and names the product only in the package
    (pharm:asContent/containerPackagedMedicine: a GTIN, RENITEN 20 mg x 28); CI-SIS eDISP
    sends the CIP13 there. Both the package and the strength of each ingredient
    (pharm:quantity numerator/denominator) were dropped."""
    entry = _one(_section("10160-0", "Traitement", """<entry><substanceAdministration
      classCode="SBADM" moodCode="INT"><templateId root="1.3.6.1.4.1.19376.1.9.1.3.7"/>
      <statusCode code="completed"/><effectiveTime xsi:type="IVL_TS"><low value="20190201"/>
      </effectiveTime>
      <consumable><manufacturedProduct><manufacturedMaterial xmlns:pharm="urn:ihe:pharm">
        <code code="C09AA02" codeSystem="2.16.840.1.113883.6.73" displayName="énalapril"/>
        <pharm:asContent classCode="CONT"><pharm:containerPackagedMedicine classCode="CONT">
          <pharm:code code="7680460380107" codeSystem="2.51.1.1"/>
          <pharm:name>Énalapril Essai cpr 20 mg</pharm:name>
          <pharm:capacityQuantity value="28"/></pharm:containerPackagedMedicine></pharm:asContent>
        <pharm:ingredient classCode="ACTI"><pharm:quantity>
          <numerator xsi:type="PQ" value="20" unit="mg"/><denominator xsi:type="PQ" value="1"/>
          </pharm:quantity><pharm:ingredient classCode="MMAT"><pharm:code code="C09AA02"
          codeSystem="2.16.840.1.113883.6.73" displayName="énalapril"/></pharm:ingredient>
        </pharm:ingredient>
        <pharm:ingredient classCode="ACTI"><pharm:quantity>
          <numerator xsi:type="PQ" value="250" unit="mg"/>
          <denominator xsi:type="PQ" value="5" unit="mL"/></pharm:quantity>
          <pharm:ingredient classCode="MMAT"><pharm:code code="J01CA04"
          codeSystem="2.16.840.1.113883.6.73" displayName="amoxicilline"/></pharm:ingredient>
        </pharm:ingredient>
      </manufacturedMaterial></manufacturedProduct></consumable>
      </substanceAdministration></entry>"""))
    assert entry.details["package"] == [{"code": "7680460380107", "system": "2.51.1.1",
                                         "display": "Énalapril Essai cpr 20 mg",
                                         "capacity": "28"}]
    assert [(i["code"], i["strength"]) for i in entry.details["ingredients"]] == [
        ("C09AA02", "20 mg"), ("J01CA04", "250 mg/5 mL")]


DS4P_ANNOTATION = """<entryRelationship typeCode="COMP"><organizer classCode="CLUSTER"
  moodCode="EVN"><templateId root="2.16.840.1.113883.3.3251.1.4"/>
  <statusCode code="active"/>
  <component><observation classCode="OBS" moodCode="EVN">
    <templateId root="2.16.840.1.113883.3.445.21"/>
    <templateId root="2.16.840.1.113883.3.445.12"/>
    <code code="SECCLASSOBS" codeSystem="2.16.840.1.113883.1.11.20471"/>
    <value xsi:type="CE" code="R" codeSystem="2.16.840.1.113883.5.25"/></observation>
  </component>
  <component><observation classCode="OBS" moodCode="EVN">
    <templateId root="2.16.840.1.113883.3.445.21"/>
    <templateId root="2.16.840.1.113883.3.445.23"/>
    <code code="SECCONOBS" codeSystem="2.16.840.1.113883.1.11.20457"/>
    <value xsi:type="CE" code="NORDSCLCD" codeSystem="2.16.840.1.113883.1.11.20471"/>
  </observation></component></organizer></entryRelationship>"""


def _ds4p_problem(code: str, annotation: str = "") -> str:
    return f"""<entry><observation classCode="OBS" moodCode="EVN">
      <templateId root="2.16.840.1.113883.10.20.22.4.4"/>
      <code code="55607006" codeSystem="2.16.840.1.113883.6.96"/><statusCode code="completed"/>
      <value xsi:type="CD" code="{code}" codeSystem="2.16.840.1.113883.6.96"/>{annotation}
      </observation></entry>"""


def test_ds4p_section_and_entry_confidentiality_mask_what_they_mark() -> None:
    """HL7 DS4P (ONC 170.315(b)(8) samples, onc-healthit/reference-ccda-validator
    src/test/resources/170.315_b8_ds4p_amb_sample1_v5.xml): a section's own
    confidentialityCode R, or a Privacy Annotation nested in one statement, restricts what
    it marks in a document N. Both were ignored (the entries filed as visible as the rest),
    and the security observations of the privacy markings section were filed as clinical
    observations of the patient."""
    restricted = _section("11450-4", "Addictologie", _ds4p_problem("7200002")).replace(
        "<title>Section</title>",
        '<title>Section</title><confidentialityCode code="R" '
        'codeSystem="2.16.840.1.113883.5.25"/>')
    markings = _section("57017-6", "Privacy markings", f"""<entry><organizer
      classCode="CLUSTER" moodCode="EVN"><templateId root="2.16.840.1.113883.3.3251.1.4"/>
      <statusCode code="active"/>{DS4P_ANNOTATION.split('<statusCode code="active"/>')[1]
      .rsplit("</organizer>", 1)[0]}</organizer></entry>""")
    got = _entries(markings, restricted,
                   _section("11450-4", "Problèmes", _ds4p_problem("38341003") +
                            _ds4p_problem("66071002", DS4P_ANNOTATION)))
    assert [(e.code, e.masking.get("MASQUE_PS", False)) for e in got] == [
        ("7200002", True), ("38341003", False), ("66071002", True)]


def test_the_dosage_instructions_of_a_dispense_are_kept() -> None:
    """IHE Pharm DIS / CI-SIS eDISP (ANS eDISP-MED example) and CDA-CH eMedication
    (hl7ch/hl7ch-cda projects/Cara/10.DISP.1.*.xml): the pharmacist's dispense nests the
    posology it hands out as a substanceAdministration without a product (IHE Pharm Dosage
    Instructions). Read only for medications, it was dropped for a dispense: it goes to
    details.dosage."""
    entry = _one(_section("60590-7", "Dispensation", """<entry><supply classCode="SPLY"
      moodCode="EVN"><templateId root="1.3.6.1.4.1.19376.1.9.1.3.4"/>
      <quantity value="1" unit="1"/>
      <product><manufacturedProduct><manufacturedMaterial><code code="C09AA02"
        codeSystem="2.16.840.1.113883.6.73" displayName="énalapril"/></manufacturedMaterial>
      </manufacturedProduct></product>
      <entryRelationship typeCode="COMP"><substanceAdministration classCode="SBADM"
        moodCode="INT"><templateId root="1.3.6.1.4.1.19376.1.9.1.3.6"/>
        <templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.7.1"/>
        <effectiveTime xsi:type="IVL_TS"><low value="20230125"/><high value="20230127"/>
        </effectiveTime>
        <effectiveTime xsi:type="EIVL_TS" operator="A"><event code="ACM"/></effectiveTime>
        <routeCode code="20053000" codeSystem="0.4.0.127.0.16.1.1.2.1"/>
        <doseQuantity value="2" unit="{tablet}"/>
        <consumable><manufacturedProduct><manufacturedMaterial nullFlavor="NA"/>
        </manufacturedProduct></consumable></substanceAdministration></entryRelationship>
      </supply></entry>"""))
    assert entry.details["dispensed"] is True
    assert entry.details["dosage"] == {"dose": "2 {tablet}", "route": "20053000",
                                       "route_coded": {"code": "20053000", "system": "EDQM",
                                                       "display": ""},
                                       "period_low": "2023-01-25", "period_high": "2023-01-27",
                                       "event": "ACM"}


def test_the_steps_of_a_tapered_or_split_dose_are_kept() -> None:
    """IHE PCC split / tapered doses, CI-SIS FR-Traitement-prescrit-subordonnee (ANS eP-MED
    'posologie structurée' examples): the medication nests one substanceAdministration per
    step (sequenceNumber), without a product, each timed by a set expression (SXPR_TS: from
    a date for a duration, every N hours). The steps were dropped (only the overall period
    was kept), and SXPR_TS was not read at all."""
    def step(n: int, low: str, days: int, hours: int) -> str:
        return f"""<entryRelationship typeCode="COMP"><sequenceNumber value="{n}"/>
          <substanceAdministration classCode="SBADM" moodCode="INT">
          <templateId root="1.2.250.1.213.1.1.3.83.1"/>
          <effectiveTime xsi:type="SXPR_TS">
            <comp xsi:type="IVL_TS" operator="A"><low value="{low}"/>
              <width value="{days}" unit="d"/></comp>
            <comp xsi:type="PIVL_TS" operator="A"><period value="{hours}" unit="h"/></comp>
          </effectiveTime>
          <doseQuantity value="1" unit="{{tablet}}"/>
          <consumable><manufacturedProduct><manufacturedMaterial nullFlavor="NA"/>
          </manufacturedProduct></consumable></substanceAdministration></entryRelationship>"""

    entry = _one(_section("57828-6", "Prescription", f"""<entry><substanceAdministration
      classCode="SBADM" moodCode="INT"><templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.7"/>
      <effectiveTime xsi:type="IVL_TS"><low value="20211201"/><high value="20211206"/>
      </effectiveTime>
      <consumable><manufacturedProduct><manufacturedMaterial><code code="N02BE01"
        codeSystem="2.16.840.1.113883.6.73" displayName="paracétamol"/></manufacturedMaterial>
      </manufacturedProduct></consumable>
      {step(1, "20211201", 2, 8)}{step(2, "20211203", 4, 12)}
      </substanceAdministration></entry>"""))
    assert entry.details["dosage_steps"] == [
        {"sequence": "1", "period_low": "2021-12-01", "duration": "2 d",
         "period_high": "2021-12-03",  # low + width (round 26)
         "frequency": "every 8 h", "dose": "1 {tablet}"},
        {"sequence": "2", "period_low": "2021-12-03", "duration": "4 d",
         "period_high": "2021-12-07", "frequency": "every 12 h", "dose": "1 {tablet}"}]
    assert entry.details["period_low"] == "2021-12-01"


@pytest.mark.parametrize(("dose", "expected"), [
    ('<low value="1" unit="{tablet}"/><high value="2" unit="{tablet}"/>', "1-2 {tablet}"),
    ('<low value="2" unit="{tbl}"/><high value="2" unit="{tbl}"/>', "2-2 {tbl}"),
    ("<center value='20'/>", "20 mg"),  # CDA-CH eMedication: the unit on doseQuantity
])
def test_a_dose_given_as_a_range_keeps_its_unit(dose: str, expected: str) -> None:
    """CI-SIS FR-Traitement sends every dose as an IVL_PQ (low/high, '1 to 1 tablet': ANS
    LDL-SES, VSM, CARD, AVC... examples); CDA-CH puts the unit on doseQuantity around a
    center. The range kept its numbers only: '2-2' of tablets or of mg was not said."""
    unit = ' unit="mg"' if "center" in dose else ""
    entry = _one(_section("10160-0", "Traitements", f"""<entry><substanceAdministration
      classCode="SBADM" moodCode="EVN"><templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.7"/>
      <doseQuantity{unit}>{dose}</doseQuantity>
      <consumable><manufacturedProduct><manufacturedMaterial><code code="B01AA03"
        codeSystem="2.16.840.1.113883.6.73" displayName="warfarine"/></manufacturedMaterial>
      </manufacturedProduct></consumable></substanceAdministration></entry>"""))
    assert entry.details["dose"] == expected


def test_the_rate_of_a_medication_is_kept() -> None:
    """rateQuantity (CI-SIS FR-Traitement: the daily amount, '1500 to 3000 mg/d' in the ANS
    eP-MED, eDISP and LDL-SES examples; an infusion's rate in C-CDA) was dropped."""
    entry = _one(_section("10160-0", "Traitements", _medication(
        '<doseQuantity><low value="1" unit="{tablet}"/><high value="2" unit="{tablet}"/>'
        '</doseQuantity><rateQuantity><low value="1500" unit="mg/d"/>'
        '<high value="3000" unit="mg/d"/></rateQuantity>')))
    assert (entry.details["dose"], entry.details["rate"]) == ("1-2 {tablet}", "1500-3000 mg/d")


def test_what_a_dispense_nests_about_itself_is_kept() -> None:
    """CI-SIS eDISP (ANS eDISP-MED_2024.01 example): the dispense nests the patient's
    instructions, the pharmacist's notes and the substitution made (IHE Pharm substitution
    act, FR-Acte-substitution). They were read for prescriptions only and dropped for a
    dispense."""
    entry = _one(_section("60590-7", '<content ID="pi">Au cours du repas</content>'
                          '<content ID="fi">Patient averti</content>', """<entry><supply
      classCode="SPLY" moodCode="EVN"><templateId root="1.3.6.1.4.1.19376.1.9.1.3.4"/>
      <quantity value="2"/>
      <product><manufacturedProduct><manufacturedMaterial><code code="N02BE01"
        codeSystem="2.16.840.1.113883.6.73" displayName="paracétamol"/></manufacturedMaterial>
      </manufacturedProduct></product>
      <entryRelationship typeCode="SUBJ" inversionInd="true"><act classCode="ACT"
        moodCode="INT"><templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.3"/>
        <code code="PINSTRUCT" codeSystem="1.3.6.1.4.1.19376.1.5.3.2"/>
        <text><reference value="#pi"/></text></act></entryRelationship>
      <entryRelationship typeCode="SUBJ" inversionInd="true"><act classCode="ACT"
        moodCode="INT"><templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.3.1"/>
        <code code="FINSTRUCT" codeSystem="1.3.6.1.4.1.19376.1.5.3.2"/>
        <text><reference value="#fi"/></text></act></entryRelationship>
      <entryRelationship typeCode="COMP"><act classCode="ACT" moodCode="EVN">
        <templateId root="1.3.6.1.4.1.19376.1.9.1.3.9.2"/>
        <code code="G" codeSystem="2.16.840.1.113883.5.1070" displayName="générique"/>
        <statusCode code="completed"/></act></entryRelationship>
      </supply></entry>"""))
    assert entry.details["patient_instructions"] == ["Au cours du repas"]
    assert entry.details["fulfillment_instructions"] == ["Patient averti"]
    assert entry.details["substitution_made"] == {"code": "G", "system": "2.16.840.1.113883.5.1070",
                                                  "display": "générique"}


def test_record_target_ins_with_blanks_first_given_at_birth_and_bad_birth_time():
    """The patient's identity as CI-SIS writes it, and as senders get it wrong: an INS typed
    with the blanks of the card was an invalid key (quarantined); the first given name at
    birth (given qualifier BR) is the one to match on; a birthTime that is no date
    ('19551399') became '1955-13-99', compared with dossiers; an id under the INS arc with no
    known INS kind was a local id without a word."""
    head = HEAD.replace(
        '<id root="1.2.250.1.999.1.1" extension="IPP-4242"/>',
        '<id root="1.2.250.1.213.1.4.10" extension="2 79 03 51 215 189 89"/>'
        '<id root="1.2.250.1.213.1.4.99" extension="XYZ"/>').replace(
        "<given>Jeanne</given>",
        '<given>Marie-Jeanne Louise</given><given qualifier="BR">Marie-Jeanne</given>'
        '<given qualifier="CL">Jeanne</given>').replace(
        '<birthTime value="19620415"/>', '<birthTime value="19551399"/>')
    data = (head + TAIL).encode()
    nm = normalize_cda(parse_cda(data), data, "test")
    ident = nm.identity
    assert [(i.nir, i.key_valid) for i in ident.ins] == [("279035121518989", True)]
    assert [li.authority for li in ident.local_ids] == ["1.2.250.1.213.1.4.99"]
    assert ident.given == "Marie-Jeanne" and ident.birth_date == ""
    assert any(w.startswith("CDA_BAD_DATE") and "birthTime" in w for w in nm.warnings)
    assert any("INS arc" in w for w in nm.warnings)
    assert not any("19551399" in w or "XYZ" in w for w in nm.warnings)


# -- encounters --------------------------------------------------------------------------------
CCDA_ENCOUNTER = """<entry typeCode="DRIV"><encounter classCode="ENC" moodCode="{mood}">
  <templateId root="2.16.840.1.113883.10.20.22.4.49" extension="2015-08-01"/>
  <id root="2a620155-9d11-439e-92b3-5d9815ff4de8"/>
  <code code="99213" codeSystem="2.16.840.1.113883.6.12"
    displayName="Office outpatient visit 15 minutes">
    <originalText><reference value="#Encounter1_type"/></originalText>
    <translation code="AMB" codeSystem="2.16.840.1.113883.5.4" displayName="Ambulatory"/>
  </code>
  <effectiveTime><low value="201209271000-0500"/><high value="201209271100-0500"/></effectiveTime>
  <performer><assignedEntity><id root="2.16.840.1.113883.4.6" extension="1234567"/>
    <code code="207QA0505X" codeSystem="2.16.840.1.113883.6.101"/></assignedEntity></performer>
  <participant typeCode="LOC"><participantRole classCode="SDLOC">
    <templateId root="2.16.840.1.113883.10.20.22.4.32"/>
    <code code="1160-1" codeSystem="2.16.840.1.113883.6.259" displayName="Urgent Care Center"/>
    <playingEntity classCode="PLC"><name>Community Urgent Care Center</name></playingEntity>
  </participantRole></participant>
  <entryRelationship typeCode="COMP"><act classCode="ACT" moodCode="EVN">
    <templateId root="2.16.840.1.113883.10.20.22.4.80" extension="2015-08-01"/>
    <code code="29308-4" codeSystem="2.16.840.1.113883.6.1" displayName="Diagnosis"/>
    <entryRelationship typeCode="SUBJ"><observation classCode="OBS" moodCode="EVN">
      <templateId root="2.16.840.1.113883.10.20.22.4.4" extension="2015-08-01"/>
      <id root="db734647-fc99-424c-a864-7e3cda82e705"/>
      <code code="282291009" codeSystem="2.16.840.1.113883.6.96" displayName="Diagnosis"/>
      <statusCode code="completed"/><effectiveTime><low value="20120927"/></effectiveTime>
      <value xsi:type="CD" code="J18.9" codeSystem="2.16.840.1.113883.6.3"
        displayName="Pneumonie, sans précision"/>
    </observation></entryRelationship></act></entryRelationship>
  <entryRelationship typeCode="RSON"><observation classCode="OBS" moodCode="EVN">
    <templateId root="2.16.840.1.113883.10.20.22.4.19" extension="2014-06-09"/>
    <code code="404684003" codeSystem="2.16.840.1.113883.6.96" displayName="Finding"/>
    <value xsi:type="CD" code="49727002" codeSystem="2.16.840.1.113883.6.96" displayName="Cough"/>
  </observation></entryRelationship>
</encounter></entry>"""


def test_ccda_encounter_activity_is_an_encounter_with_place_performer_and_diagnosis() -> None:
    """C-CDA Encounter Activity (Encounters section 46240-8): its type, period, performer,
    service delivery location and diagnoses; it was dropped without a word. The problem
    its Encounter Diagnosis holds is still a problem of its own."""
    got = _entries(_section("46240-8", '<content ID="Encounter1_type">Consultation</content>',
                            CCDA_ENCOUNTER.format(mood="EVN")))
    by_type = {e.type: e for e in got}
    enc = by_type["encounter"]
    assert (enc.code, enc.display) == ("99213", "Office outpatient visit 15 minutes")
    assert enc.details["class"] == {"code": "AMB", "display": "Ambulatory"}
    assert enc.effective == enc.details["period_low"] == "2012-09-27T10:00-05:00"
    assert enc.details["period_high"] == "2012-09-27T11:00-05:00"
    assert enc.details["performed_by"] == {"ids": ["2.16.840.1.113883.4.6^1234567"]}
    assert enc.details["location"]["name"] == "Community Urgent Care Center"
    assert enc.details["location"]["code"]["code"] == "1160-1"
    assert [(d["role"], d["code"]) for d in enc.details["diagnoses"]] == [
        ("diagnosis", "J18.9"), ("reason", "49727002")]
    assert by_type["problem"].code == "J18.9"


def test_planned_encounter_is_a_plan() -> None:
    """moodCode INT/ARQ (C-CDA Planned Encounter, CI-SIS 'recontacter pour fixer RDV'):
    a visit to come, filed as a plan of an encounter, never as one that took place."""
    got = _entries(_section("46240-8", "", CCDA_ENCOUNTER.format(mood="INT")))
    plan = next(e for e in got if e.key.endswith("2a620155-9d11-439e-92b3-5d9815ff4de8"))
    assert plan.type == "plan"
    assert plan.details["planned"] == "encounter" and plan.details["mood"] == "INT"


def test_ans_encounters_stays_and_the_empty_list() -> None:
    """CNAM-HR: two hospital stays (FR-Rencontre IMP with the GHS as a qualifier, the
    clinic as performer); the 'sans-info' example's 'Aucun' encounter is an absence, no
    stay; OBP-SAP: four antenatal encounters (one id for all four: four entries)."""
    from tests.conftest import corpus_path

    def entries_of(name: str) -> list[Entry]:
        data = corpus_path("cda", name).read_bytes()
        return normalize_cda(parse_cda(data), data, "ans").entries

    stays = [e for e in entries_of("CNAM-HR_2021.01.xml") if e.type == "encounter"]
    assert [(e.code, e.details["period_low"], e.details.get("period_high")) for e in stays] \
        == [("IMP", "2019-05-15", "2019-05-30"), ("IMP", "2019-04-12", None)]
    assert stays[0].details["code_qualifiers"][0]["value"]["code"] == "1940"
    assert stays[0].details["performed_by"]["organization_name"] == \
        "CLINIQUE SAINTE GENEVIEVE"
    empty = entries_of("CNAM-HR_2021.01_sans-info.xml")
    assert not [e for e in empty if e.type == "encounter"]
    assert [e.details["absent"] for e in empty if e.type == "absence" and
            e.details["section"] == "46240-8"] == ["encounter"]
    antenatal = [e for e in entries_of("OBP-SAP_2024.01.xml") if e.type == "encounter"]
    assert [e.code for e in antenatal] == ["GEN-079", "MED-163", "ORG-193", "ORG-077"]
    assert len({e.key for e in antenatal}) == 4


# -- plans of care, advance directives, dispenses inside a medication --------------------------
def test_requested_exam_without_value_is_a_plan_holding_what_it_says_of_itself() -> None:
    """IHE PCC care plan observation request (CI-SIS FR-Demande-d-examen-ou-de-suivi,
    IPS-FR 'LDL à contrôler', IMG-DA 'scanner demandé'): coded, no value, moodCode INT. It
    was dropped (untyped and no value); what it nests (the function studied, 'call me
    back') was filed as the patient's own observations."""
    entry = _one(_section("18776-5", "", """
      <entry><observation classCode="OBS" moodCode="INT">
        <templateId root="1.3.6.1.4.1.19376.1.5.3.1.1.20.3.1"/>
        <templateId root="1.2.250.1.213.1.1.3.27"/>
        <id root="1.2.250.1.999.9" extension="DEM-1"/>
        <code code="22748-8" codeSystem="2.16.840.1.113883.6.1" displayName="Cholestérol LDL"/>
        <statusCode code="active"/><effectiveTime value="20241201"/>
        <entryRelationship typeCode="COMP"><observation classCode="OBS" moodCode="EVN">
          <templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.13"/>
          <code code="GEN-297" codeSystem="1.2.250.1.213.1.1.4.322"
            displayName="Le demandeur souhaite un retour par téléphone"/>
          <value xsi:type="BL" value="true"/></observation></entryRelationship>
      </observation></entry>"""))
    assert (entry.type, entry.code, entry.effective) == ("plan", "22748-8", "2024-12-01")
    assert entry.details["planned"] == "observation" and entry.details["mood"] == "INT"
    assert [o["code"] for o in entry.details["observations"]] == ["GEN-297"]


def test_advance_directive_observation_is_filed_without_a_value() -> None:
    """IHE PCC advance directive observation (IPS-FR 'Directives anticipées', since
    2024-04-01, the PDF nested): that they exist is the fact; it was dropped."""
    entry = _one(_section("42348-3", "", """
      <entry><observation classCode="OBS" moodCode="EVN">
        <templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.13"/>
        <templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.13.7"/>
        <id root="1.2.250.1.999.9" extension="DA-1"/>
        <code code="42348-3" codeSystem="2.16.840.1.113883.6.1"
          displayName="Directives anticipées"/>
        <statusCode code="completed"/>
        <effectiveTime><low value="20240401"/><high nullFlavor="NA"/></effectiveTime>
      </observation></entry>"""))
    assert (entry.type, entry.code, entry.effective, entry.value) == (
        "observation", "42348-3", "2024-04-01", None)


def test_a_dispense_nested_in_a_medication_is_its_delivery() -> None:
    """CNAM-HR: a medication (the CIP reimbursed) nests the IHE PCC supply entry of its
    delivery, with no product of its own (when: the performer's time; how many; the
    pharmacy). It was dropped as a dispense naming nothing."""
    entry = _one(_section("10160-0", "", """
      <entry><substanceAdministration classCode="SBADM" moodCode="EVN">
        <templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.7"/>
        <id root="1.2.250.1.999.9" extension="MED-1"/>
        <consumable><manufacturedProduct><manufacturedMaterial>
          <code code="3400939169002" codeSystem="1.2.250.1.213.2.3.2" displayName="CRESTOR 5MG"/>
        </manufacturedMaterial></manufacturedProduct></consumable>
        <entryRelationship typeCode="REFR"><supply classCode="SPLY" moodCode="EVN">
          <templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.7.3"/>
          <id root="1.2.250.1.999.9" extension="DEL-1"/><quantity value="1"/>
          <performer typeCode="PRF"><time value="20190311"/><assignedEntity>
            <id nullFlavor="UNK"/><representedOrganization><name>PHARMACIE DU PONT</name>
            </representedOrganization></assignedEntity></performer>
        </supply></entryRelationship>
      </substanceAdministration></entry>"""))
    assert entry.type == "medication" and entry.code == "3400939169002"
    assert entry.details["dispenses"] == [{"time": "2019-03-11", "quantity": "1",
                                           "by": {"organization_name": "PHARMACIE DU PONT"}}]


# -- what is not filed is said -----------------------------------------------------------------
PADV = """<entry><observation classCode="OBS" moodCode="EVN">
  <templateId root="1.3.6.1.4.1.19376.1.9.1.3.3"/>
  <id root="1.2.250.1.999.9" extension="PADV-{n}"/>
  <code code="CHANGE" codeSystem="1.3.6.1.4.1.19376.1.9.2.1" displayName="Changement"/>
  <statusCode code="completed"/><effectiveTime value="20240312"/>
  <value xsi:type="ST">Posologie réduite de moitié</value>
  <entryRelationship typeCode="REFR"><substanceAdministration classCode="SBADM" moodCode="INT">
    <templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.7"/>
    <id root="1.2.250.1.999.9" extension="CHG-{n}"/>
    <consumable><manufacturedProduct><manufacturedMaterial>
      <code code="3400930000000" codeSystem="1.2.250.1.213.2.3.2" displayName="PRODUIT"/>
    </manufacturedMaterial></manufacturedProduct></consumable>
  </substanceAdministration></entryRelationship>
  <reference typeCode="REFR"><externalDocument><id root="1.2.250.1.999.3" extension="PRE-1"/>
  </externalDocument></reference>
</observation></entry>"""


def test_pharmaceutical_advice_is_not_filed_and_said_once_with_its_count() -> None:
    """IHE Pharm PADV (a pharmacist's CHANGE on an item of a prescription, another
    document): no fact about the patient, not the changed medication either; it was
    dropped without a word (or, with a value, filed as the patient's observation 'CHANGE'
    and its proposed medication as a medication). One CDA_NOT_FILED per kind and document,
    with the count and the first path; no patient data in it."""
    data = (HEAD + _section("61356-1", "", PADV.format(n=1) + PADV.format(n=2)) +
            TAIL).encode()
    msg = normalize_cda(parse_cda(data), data, "test")
    assert [e.type for e in msg.entries] == ["document"]
    said = [w for w in msg.warnings if w.startswith("CDA_NOT_FILED")]
    assert len(said) == 1
    assert "pharmaceutical advice" in said[0] and "(2 in the document)" in said[0]
    assert "/section/entry[1]/observation" in said[0]
    assert "Posologie" not in said[0] and "PRODUIT" not in said[0]


def test_statements_naming_nothing_or_of_unknown_kind_are_said_structure_is_not() -> None:
    """A medication whose product has no code, name nor words (DLU-EHPAD-FLUDT: code and
    name nullFlavor UNK) and an act of a template read nowhere (an IHE PCC act template no
    table names) were dropped silently; a comment, an internal reference and an empty
    organizer hold nothing to say. (The CI-SIS patient transfer, 80413-8, this test once
    used as the act of unknown kind, is filed as an encounter since round 12.)"""
    data = (HEAD + _section("10160-0", "", """
      <entry><substanceAdministration classCode="SBADM" moodCode="EVN">
        <templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.7"/><id root="1.2.250.1.999.9" extension="M"/>
        <code nullFlavor="NA"/><text><reference/></text>
        <consumable><manufacturedProduct><manufacturedMaterial><code nullFlavor="UNK"/>
          <name nullFlavor="UNK"/></manufacturedMaterial></manufacturedProduct></consumable>
      </substanceAdministration></entry>
      <entry><act classCode="ACT" moodCode="EVN">
        <templateId root="1.3.6.1.4.1.19376.1.5.3.1.1.99.4.1"/>
        <code code="80413-8" codeSystem="2.16.840.1.113883.6.1"/>
        <effectiveTime><low value="20210503100500"/></effectiveTime></act></entry>
      <entry><act classCode="ACT" moodCode="EVN">
        <templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.2"/>
        <code code="48767-8" codeSystem="2.16.840.1.113883.6.1"/><text>Vu</text></act></entry>
      <entry><act classCode="ACT" moodCode="EVN">
        <templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.4.1"/><id root="1.2.3.4"/>
        <code code="70938-6" codeSystem="2.16.840.1.113883.6.1"/></act></entry>
      <entry><organizer classCode="CLUSTER" moodCode="EVN"><statusCode code="completed"/>
      </organizer></entry>""") + TAIL).encode()
    msg = normalize_cda(parse_cda(data), data, "test")
    said = sorted(w for w in msg.warnings if w.startswith("CDA_NOT_FILED"))
    assert len(said) == 2, said
    assert "entry[1]/substanceAdministration: medication statement naming nothing" in said[0]
    assert "entry[2]/act: act 1.3.6.1.4.1.19376.1.5.3.1.1.99.4.1 code 80413-8" in said[1]


# -- template placeholders are no content ------------------------------------------------------
def test_placeholder_texts_are_not_filed_as_values_comments_names_or_narrative() -> None:
    """CI-SIS examples (IMG-DA, OPH-BRE, ANEST, AVC-AUNV) leave '(texte libre)' where the
    author's words go, and senders copy them: it was filed as a result's value, a problem's
    name, a comment, a section's narrative. Now none of these; a statement whose value it
    was is said (CDA_NOT_FILED); words that only start with it are the author's."""
    data = (HEAD + _section("11450-4", '<content ID="pb">(Texte libre)</content>', """
      <entry><observation classCode="OBS" moodCode="EVN">
        <templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.5"/>
        <id root="1.2.250.1.999.9" extension="PB-1"/>
        <code code="282291009" codeSystem="2.16.840.1.113883.6.96" displayName="Diagnostic"/>
        <value xsi:type="CD" nullFlavor="OTH"><originalText><reference value="#pb"/>
        </originalText></value></observation></entry>
      <entry><observation classCode="OBS" moodCode="EVN">
        <templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.5"/>
        <id root="1.2.250.1.999.9" extension="PB-2"/>
        <code code="282291009" codeSystem="2.16.840.1.113883.6.96"/>
        <value xsi:type="CD" code="R06.0" codeSystem="2.16.840.1.113883.6.3"
          displayName="Dyspnée"/>
        <entryRelationship typeCode="SUBJ" inversionInd="true"><act classCode="ACT"
          moodCode="EVN"><templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.2"/>
          <code code="48767-8" codeSystem="2.16.840.1.113883.6.1"/>
          <text>(texte libre)</text></act></entryRelationship>
        <entryRelationship typeCode="SUBJ" inversionInd="true"><act classCode="ACT"
          moodCode="EVN"><templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.2"/>
          <code code="48767-8" codeSystem="2.16.840.1.113883.6.1"/>
          <text>(Texte libre) Dyspnée majeure peropératoire</text></act></entryRelationship>
      </observation></entry>""") + _section("30954-2", "", """
      <entry><observation classCode="OBS" moodCode="EVN">
        <templateId root="1.3.6.1.4.1.19376.1.3.1.6"/>
        <id root="1.2.250.1.999.9" extension="R-1"/>
        <code code="EAQH002" codeSystem="1.2.250.1.213.2.5"/>
        <value xsi:type="ST">(texte libre : Description des lésions diagnostiquées)</value>
      </observation></entry>""") + _section("19005-8", "(texte libre)", "") + TAIL).encode()
    msg = normalize_cda(parse_cda(data), data, "test")
    document, *body = msg.entries
    assert [(e.type, e.code) for e in body] == [("problem", "R06.0")]
    assert body[0].details["comments"] == ["(Texte libre) Dyspnée majeure peropératoire"]
    said = [w for w in msg.warnings if w.startswith("CDA_NOT_FILED")]
    assert len(said) == 2 and all("template placeholder" in w for w in said)
    conclusion = [s for s in document.details["sections"] if s["code"] == "19005-8"]
    assert conclusion == [{"code": "19005-8", "title": "Section", "text": None, "level": 0}]


@pytest.mark.parametrize("text, placeholder", [
    ("(texte libre)", True), ("(Texte libre) ", True), ("Texte  libre", True), ("...", True),
    ("…", True), ("(texte libre : Description des lésions diagnostiquées)", True),
    ("(Texte libre) Dyspnée majeure", False), ("Pas d'anomalie...", False), ("", False),
    ("texte libre de toute lésion", False)])
def test_what_a_placeholder_is(text: str, placeholder: bool) -> None:
    from normalizers.cda import is_placeholder

    assert is_placeholder(text) is placeholder


# -- images in a battery -----------------------------------------------------------------------
def test_an_image_of_a_battery_is_referenced_by_its_results() -> None:
    """CR-BIO electrophoresis: the curve is an observationMedia (CI-SIS
    FR-Image-illustrative) among the battery's results; it was dropped. Each result of
    the battery now says where it is (panel.media: type, ID the narrative renders, path,
    size), the content staying in the document; a file an observation nests (IPS-FR: the
    advance directives' PDF) is the observation's (details.media)."""
    png = ("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9aw"
           "AAAABJRU5ErkJggg==")
    got = _entries(_section("18719-5", '<renderMultiMedia referencedObject="ELECTRO"/>', f"""
      <entry><organizer classCode="BATTERY" moodCode="EVN">
        <templateId root="1.3.6.1.4.1.19376.1.3.1.4"/>
        <code code="24351-9" codeSystem="2.16.840.1.113883.6.1"/>
        <statusCode code="completed"/><effectiveTime value="20240312"/>
        <component><observation classCode="OBS" moodCode="EVN">
          <templateId root="1.3.6.1.4.1.19376.1.3.1.6"/>
          <code code="2862-1" codeSystem="2.16.840.1.113883.6.1"/>
          <value xsi:type="PQ" value="38.2" unit="g/L"/></observation></component>
        <component><observationMedia classCode="OBS" moodCode="EVN" ID="ELECTRO">
          <templateId root="1.2.250.1.213.1.1.3.103"/>
          <value mediaType="image/png" representation="B64">{png}</value>
        </observationMedia></component>
      </organizer></entry>"""), _section("42348-3", "", """
      <entry><observation classCode="OBS" moodCode="EVN">
        <templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.13.7"/>
        <code code="42348-3" codeSystem="2.16.840.1.113883.6.1"/>
        <effectiveTime><low value="20240401"/></effectiveTime>
        <entryRelationship typeCode="COMP"><observationMedia classCode="OBS" moodCode="EVN"
          ID="da-pdf"><value mediaType="application/pdf" representation="B64">JVBERi0xLjcK
          </value></observationMedia></entryRelationship>
      </observation></entry>"""))
    albumin, directive = got
    media = albumin.details["panel"]["media"]
    assert [(m["media_type"], m["id"]) for m in media] == [("image/png", "ELECTRO")]
    assert media[0]["ref"].endswith("/organizer/component[2]/observationMedia")
    assert media[0]["bytes"] == len(png) * 3 // 4
    assert directive.details["media"][0]["media_type"] == "application/pdf"
    assert "JVBER" not in str(albumin.details) + str(directive.details)
