"""C-CDA R2.1 (and R1.1) documents the way US and international EHRs export them (round 17:
CCD, Discharge Summary, Referral Note, Care Plan from Epic, Oracle Health, athenahealth,
eClinicalWorks, NextGen, Allscripts). Each test builds a small invented document with one
structure C-CDA / CDA R2 allows and checks what is filed against what a clinician reading
the document understands. The round found: narrative table cells spanning rows or columns
and line breaks inside cells shifting columns; the care team's functions dropped; ICD-10-PCS,
HCPCS and CDT procedures filed as local codes; ActReason under a bare OID; C-CDA allergy
criticality not exported; the Health Concern Act's status ignored; HTML entities refusing
the document; Entry References reported as not filed; R1.1 smoking status under its
value's code; results in progress filed 'active' instead of 'preliminary'."""

from __future__ import annotations

from html.entities import name2codepoint

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from dossiers.deposit import status_order
from normalizers.cda import normalize_cda
from parsers.cda import CdaParseError, parse_cda
from parsers.cda.narrative import flatten
from tests.test_cda_international import CCDA_HEAD, TAIL, normalized
from tests.test_cda_senders_round14 import _bundle, _resources

V3 = "urn:hl7-org:v3"


def _flat(table: str) -> tuple[str, dict[str, str]]:
    return flatten(etree.fromstring(f'<text xmlns="{V3}">{table}</text>'))


# -- narrative tables: cells spanning rows or columns stay in their columns ---------------------
RESULTS_TABLE = """<table border="1"><thead><tr><th>Date</th><th>Examen</th><th>Résultat</th>
  <th>Valeurs de référence</th></tr></thead>
  <tbody><tr><td rowspan="2" ID="day1">10/03/2024</td><td>Hémoglobine</td>
    <td ID="hb">13,2 g/dL</td><td>12,0-16,0</td></tr>
  <tr><td>Plaquettes</td><td>98 G/L</td><td>150-400</td></tr>
  <tr><td colspan="2">Commentaire du biologiste</td><td>Contrôle à 8 jours</td><td/></tr>
  <tr><td colspan="4">Résultats validés par Dr Élise Martin</td></tr></tbody></table>"""


def test_a_cell_spanning_rows_is_read_in_each_row_it_covers() -> None:
    """Epic and Cerner results tables give the date once for the rows of a day (rowspan):
    the rows below lost a cell, 'Plaquettes' read under 'Date' and '98 G/L' under
    'Examen'. Each row now has its four columns, the date read again."""
    text, ids = _flat(RESULTS_TABLE)
    assert text.splitlines() == [
        "Date | Examen | Résultat | Valeurs de référence",
        "10/03/2024 | Hémoglobine | 13,2 g/dL | 12,0-16,0",
        "10/03/2024 | Plaquettes | 98 G/L | 150-400",
        "Commentaire du biologiste | | Contrôle à 8 jours |",
        "Résultats validés par Dr Élise Martin",
    ]
    assert (ids["day1"], ids["hb"]) == ("10/03/2024", "13,2 g/dL")  # references unchanged


def test_spanned_columns_at_the_end_and_inside_a_row() -> None:
    """A span in the middle or last columns (a status for two medications) is read in its
    column, after the row's own cells; a hostile span is not a loop of that many cells."""
    text, _ = _flat("""<table><tr><th>Médicament</th><th>Posologie</th><th>Statut</th></tr>
      <tr><td>Lisinopril 10 mg</td><td>1 cp/j</td><td rowspan="2">Actif</td></tr>
      <tr><td>Metformine 500 mg</td><td>1 à 2 cp avant les repas</td></tr>
      <tr><td>a</td><td rowspan="99999999999">b</td><td>c</td></tr><tr><td>d</td></tr>
      </table>""")
    assert text.splitlines()[1:] == [
        "Lisinopril 10 mg | 1 cp/j | Actif",
        "Metformine 500 mg | 1 à 2 cp avant les repas | Actif",
        "a | b | c", "d"]


def test_a_line_break_inside_a_cell_does_not_cut_the_row() -> None:
    """Epic writes a medication's name and directions in one cell, a <br/> between them
    (and some senders paragraphs): the row was cut in two lines, the cells after the
    break read as a row of their own under the first headers. The row stays one line;
    what a reference to the cell reads keeps its lines."""
    text, ids = _flat("""<table><thead><tr><th>Date</th><th>Traitement</th><th>Statut</th>
      </tr></thead><tbody><tr><td>10/03/2024</td><td ID="med1">Lisinopril 10 mg<br/>1 cp
      le matin<paragraph>Depuis 2023</paragraph></td><td>Actif</td></tr></tbody></table>""")
    assert text.splitlines() == [
        "Date | Traitement | Statut",
        "10/03/2024 | Lisinopril 10 mg 1 cp le matin Depuis 2023 | Actif"]
    assert ids["med1"] == "Lisinopril 10 mg\n1 cp le matin\nDepuis 2023"


def test_a_table_of_one_column_keeps_the_lines_of_its_cell() -> None:
    """A table used as a frame (the ANS molecular genetics report: one cell holding the
    conclusion's paragraphs) has no columns to keep together: its paragraphs stay lines,
    as they read before the row was kept on one line."""
    text, _ = _flat("""<table><tbody><tr><td><paragraph>Présence de la mutation c.2573T&gt;G
      du gène EGFR.</paragraph><paragraph>Pas d'anomalie dans les autres gènes
      analysés.</paragraph></td></tr></tbody></table>""")
    assert [" ".join(line.split()) for line in text.splitlines()] == [
        "Présence de la mutation c.2573T>G du gène EGFR.",
        "Pas d'anomalie dans les autres gènes analysés."]


def test_the_sections_narrative_of_a_ccd_keeps_its_columns() -> None:
    """Through the whole path: the section text of the document keeps the spanned cell."""
    section = ('<component><section><code code="30954-2" codeSystem="2.16.840.1.113883.6.1"/>'
               f"<title>Results</title><text>{RESULTS_TABLE}</text></section></component>")
    (sect,) = normalized(section).entries[0].details["sections"]
    assert "10/03/2024 | Plaquettes | 98 G/L | 150-400" in sect["text"].splitlines()


# -- the care team: who is the primary care physician -------------------------------------------
CARE_TEAM = """<documentationOf><serviceEvent classCode="PCPR">
    <effectiveTime><low value="20230101"/><high value="20240315"/></effectiveTime>
    <performer typeCode="PRF">
      <functionCode code="PCP" codeSystem="2.16.840.1.113883.5.88"
        displayName="primary care physician"/>
      <time><low value="20190601"/></time>
      <assignedEntity><id root="2.16.840.1.113883.4.6" extension="1234567893"/>
        <code code="207Q00000X" codeSystem="2.16.840.1.113883.6.101"
          displayName="Family Medicine Physician"/>
        <assignedPerson><name><given>Anne</given><family>Dupont</family></name></assignedPerson>
      </assignedEntity></performer>
    <performer typeCode="SPRF">
      <assignedEntity><id root="2.16.840.1.113883.4.6" extension="1987654321"/>
        <code code="207RC0000X" codeSystem="2.16.840.1.113883.6.101" displayName="Cardiology"/>
      </assignedEntity></performer>
    <performer typeCode="PRF">
      <assignedEntity><id nullFlavor="UNK"/>
        <assignedPerson><name><given>John</given><family>Smith</family></name></assignedPerson>
      </assignedEntity></performer>
  </serviceEvent></documentationOf>
  <component><structuredBody>"""


def test_the_care_team_says_who_is_the_primary_care_physician() -> None:
    """A CCD's care team (documentationOf/serviceEvent/performer, C-CDA R2.1): the
    performers were kept as ids alone; the primary care physician (functionCode PCP, the
    médecin traitant's equivalent), each one's specialty (NUCC) and since when were
    dropped. A member known by name alone is still not kept (no third party's name)."""
    msg = normalized(effective="20240315143200-0500").entries[0]
    assert "service_events" not in msg.details  # the plain header has no care team
    head = CCDA_HEAD.format(effective="20240315143200-0500").replace(
        "  <component><structuredBody>\n", CARE_TEAM)
    data = (head + TAIL).encode()
    document = normalize_cda(parse_cda(data), data, "test").entries[0]
    (event,) = document.details["service_events"]
    assert event["performers"] == [
        {"type": "PRF", "function": {"code": "PCP", "system": "HL7-PARTICIPATIONFUNCTION",
                                     "display": "primary care physician"},
         "role": "207Q00000X", "time": "2019-06-01",
         "ids": ["2.16.840.1.113883.4.6^1234567893"]},
        {"type": "SPRF", "role": "207RC0000X", "ids": ["2.16.840.1.113883.4.6^1987654321"]}]
    assert "Dupont" not in str(document.details) and "Smith" not in str(document.details)


# -- US terminologies: national codes are not local ones ----------------------------------------
def _procedure(code: str) -> str:
    """A C-CDA Procedure Activity Procedure (4.14) as Epic or Cerner write it."""
    return f"""<entry><procedure classCode="PROC" moodCode="EVN">
      <templateId root="2.16.840.1.113883.10.20.22.4.14" extension="2014-06-09"/>
      <id root="d68b7e32-7810-4f5b-9cc2-acd54b0fd85d"/>{code}
      <statusCode code="completed"/><effectiveTime value="20231201"/></procedure></entry>"""


def _section(code: str, entries: str) -> str:
    return (f'<component><section><code code="{code}" codeSystem="2.16.840.1.113883.6.1"/>'
            f"<title>Section</title><text>texte</text>{entries}</section></component>")


@pytest.mark.parametrize(("code", "expected"), [
    ('<code code="0DTJ4ZZ" codeSystem="2.16.840.1.113883.6.4" displayName="Resection of '
     'Appendix, Percutaneous Endoscopic Approach"/>', ("0DTJ4ZZ", "ICD-10-PCS")),
    ('<code code="G0105" codeSystem="2.16.840.1.113883.6.285" displayName="Colorectal cancer '
     'screening; colonoscopy on individual at high risk"/>', ("G0105", "HCPCS")),
    ('<code code="D1110" codeSystem="2.16.840.1.113883.6.13" displayName="prophylaxis - '
     'adult"/>', ("D1110", "2.16.840.1.113883.6.13")),
    # Epic's own procedure code (EAP) with its HCPCS translation: filed under HCPCS
    ('<code code="45378" codeSystem="1.2.840.114350.1.13.531.2.7.2.696580" '
     'displayName="COLONOSCOPIE"><translation code="G0105" '
     'codeSystem="2.16.840.1.113883.6.285"/></code>', ("G0105", "HCPCS")),
])
def test_a_procedure_in_a_us_procedure_terminology_is_mapped(code: str,
                                                             expected: tuple) -> None:
    """ICD-10-PCS (a discharge summary's inpatient procedures), HCPCS and CDT are national
    terminologies: a procedure coded in one was filed under the bare OID as a local code
    ('unmapped', for an admin to map), and an EHR's local code translated into HCPCS kept
    the local code."""
    (proc,) = normalized(_section("47519-4", _procedure(code))).entries[1:]
    assert (proc.code, proc.system, proc.mapped) == (*expected, True)


def test_a_vaccine_refused_says_why_in_hl7_act_reason() -> None:
    """C-CDA Immunization Refusal Reason (4.53): its HL7 ActReason code (PATOBJ) was filed
    under a bare OID and exported as urn:oid:; FHIR R4's Immunization.statusReason value set
    is that code system's, under its canonical URI."""
    imm = """<entry><substanceAdministration classCode="SBADM" moodCode="EVN" negationInd="true">
      <templateId root="2.16.840.1.113883.10.20.22.4.52" extension="2015-08-01"/>
      <id root="e6f1ba43-c0ed-4b9b-9f12-f435d8ad8f93"/><statusCode code="completed"/>
      <effectiveTime value="20231015"/>
      <consumable><manufacturedProduct classCode="MANU">
        <templateId root="2.16.840.1.113883.10.20.22.4.54" extension="2014-06-09"/>
        <manufacturedMaterial><code code="115" codeSystem="2.16.840.1.113883.12.292"
          displayName="Tdap"/></manufacturedMaterial></manufacturedProduct></consumable>
      <entryRelationship typeCode="RSON"><observation classCode="OBS" moodCode="EVN">
        <templateId root="2.16.840.1.113883.10.20.22.4.53"/>
        <code code="59785-6" codeSystem="2.16.840.1.113883.6.1"/><statusCode code="completed"/>
        <value xsi:type="CD" code="PATOBJ" codeSystem="2.16.840.1.113883.5.8"
          displayName="patient objection"/></observation></entryRelationship>
    </substanceAdministration></entry>"""
    (entry,) = normalized(_section("11369-6", imm)).entries[1:]
    assert entry.details["not_done_reason"]["system"] == "HL7-ACTREASON"
    (resource,) = _resources(_bundle([entry]), "Immunization")
    assert resource["status"] == "not-done"
    assert resource["statusReason"]["coding"] == [
        {"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "PATOBJ",
         "display": "patient objection"}]


# -- allergies: C-CDA's criticality reaches the export --------------------------------------------
def _penicillin_allergy(criticality: str) -> str:
    """A C-CDA Allergy Concern Act (4.30) with its Allergy - Intolerance Observation (4.7),
    hives as reaction and a Criticality Observation (4.145) valued in HL7 ObservationValue."""
    return f"""<entry><act classCode="ACT" moodCode="EVN">
      <templateId root="2.16.840.1.113883.10.20.22.4.30" extension="2015-08-01"/>
      <id root="36e3e930-7b14-11db-9fe1-0800200c9a66"/>
      <code code="CONC" codeSystem="2.16.840.1.113883.5.6"/>
      <statusCode code="active"/><effectiveTime><low value="20070501"/></effectiveTime>
      <entryRelationship typeCode="SUBJ"><observation classCode="OBS" moodCode="EVN">
        <templateId root="2.16.840.1.113883.10.20.22.4.7" extension="2014-06-09"/>
        <id root="4adc1020-7b14-11db-9fe1-0800200c9a66"/>
        <code code="ASSERTION" codeSystem="2.16.840.1.113883.5.4"/>
        <statusCode code="completed"/><effectiveTime><low value="20070501"/></effectiveTime>
        <value xsi:type="CD" code="419511003" codeSystem="2.16.840.1.113883.6.96"
          displayName="Propensity to adverse reactions to drug"/>
        <participant typeCode="CSM"><participantRole classCode="MANU">
          <playingEntity classCode="MMAT"><code code="7980" codeSystem="2.16.840.1.113883.6.88"
            displayName="Penicillin G"/></playingEntity></participantRole></participant>
        <entryRelationship typeCode="MFST" inversionInd="true">
          <observation classCode="OBS" moodCode="EVN">
          <templateId root="2.16.840.1.113883.10.20.22.4.9" extension="2014-06-09"/>
          <code code="ASSERTION" codeSystem="2.16.840.1.113883.5.4"/>
          <statusCode code="completed"/>
          <value xsi:type="CD" code="247472004" codeSystem="2.16.840.1.113883.6.96"
            displayName="Urticaire"/></observation></entryRelationship>
        <entryRelationship typeCode="SUBJ" inversionInd="true">
          <observation classCode="OBS" moodCode="EVN">
          <templateId root="2.16.840.1.113883.10.20.22.4.145"/>
          <code code="82606-5" codeSystem="2.16.840.1.113883.6.1" displayName="Criticality"/>
          <statusCode code="completed"/>{criticality}</observation></entryRelationship>
      </observation></entryRelationship></act></entry>"""


@pytest.mark.parametrize(("criticality", "exported"), [
    ('<value xsi:type="CD" code="CRITH" codeSystem="2.16.840.1.113883.5.1063" '
     'displayName="high criticality"/>', "high"),
    ('<value xsi:type="CD" code="CRITL" codeSystem="2.16.840.1.113883.5.1063"/>', "low"),
    ('<value xsi:type="CD" code="CRITU" codeSystem="2.16.840.1.113883.5.1063"/>',
     "unable-to-assess"),
    ('<value xsi:type="CD" code="high" codeSystem="2.16.840.1.113883.4.642.4.130"/>', "high"),
    ('<value xsi:type="CD" nullFlavor="UNK"/>', None),
    ('<value xsi:type="CD" code="CRITH" codeSystem="2.16.840.1.113883.5.4"/>', None),
])
def test_the_criticality_of_a_c_cda_allergy_is_exported(criticality: str,
                                                        exported: str | None) -> None:
    """C-CDA's Criticality Observation says CRITH / CRITL / CRITU (HL7 ObservationValue):
    it was read into the store but the export took only FHIR's own codes (CI-SIS), so a
    high-criticality penicillin allergy was exported without its criticality. A code of
    no known vocabulary, or none, exports none (not a guess)."""
    (allergy,) = normalized(_section("48765-2", _penicillin_allergy(criticality))).entries[1:]
    assert (allergy.type, allergy.code) == ("allergy", "7980")
    (resource,) = _resources(_bundle([allergy]), "AllergyIntolerance")
    assert resource.get("criticality") == exported


# -- health concerns (C-CDA R2.1 Health Concern Act) ----------------------------------------------
def _health_concern(status: str, inner: str) -> str:
    return f"""<entry><act classCode="ACT" moodCode="EVN">
      <templateId root="2.16.840.1.113883.10.20.22.4.132" extension="2015-08-01"/>
      <id root="4eab0e52-dd7d-4285-99eb-72d32ddb195c"/>
      <code code="75310-3" codeSystem="2.16.840.1.113883.6.1" displayName="Health Concern"/>
      <text><reference value="#hc1"/></text>
      <statusCode code="{status}"/><effectiveTime><low value="20240101"/></effectiveTime>
      {inner}</act></entry>"""


OBESITY = """<entryRelationship typeCode="REFR"><observation classCode="OBS" moodCode="EVN">
      <templateId root="2.16.840.1.113883.10.20.22.4.4" extension="2015-08-01"/>
      <id root="ab1791b0-5c71-11db-b0de-0800200c9a66"/>
      <code code="55607006" codeSystem="2.16.840.1.113883.6.96" displayName="Problem"/>
      <statusCode code="completed"/><effectiveTime><low value="20240101"/></effectiveTime>
      <value xsi:type="CD" code="414916001" codeSystem="2.16.840.1.113883.6.96"
        displayName="Obésité"/></observation></entryRelationship>"""
HC_TEXT = '<paragraph ID="hc1">Obésité, risque de chute à domicile</paragraph>'


@pytest.mark.parametrize(("status", "concern", "filed", "clinical"), [
    ("active", "active", "final", "active"),
    ("completed", "completed", "final", "resolved"),
    ("nullified", "nullified", "entered-in-error", None),
])
def test_a_health_concern_says_the_status_of_its_problem(status: str, concern: str,
                                                         filed: str,
                                                         clinical: str | None) -> None:
    """The Health Concern Act's statusCode is the status of the concern (C-CDA R2.1 4.132),
    as a Problem Concern Act's is: it was read as a container, so a concern recorded in
    error (nullified) filed its obesity as a fact and an active one said no status."""
    msg = normalized(_section_text("75310-3", HC_TEXT, _health_concern(status, OBESITY)))
    (problem,) = msg.entries[1:]
    assert (problem.type, problem.code, problem.status) == ("problem", "414916001", filed)
    assert problem.details["concern_status"] == concern
    if filed != "entered-in-error":
        (resource,) = _resources(_bundle([problem]), "Condition")
        assert resource["clinicalStatus"]["coding"][0]["code"] == clinical


def test_a_health_concern_in_words_alone_is_not_dropped_silently() -> None:
    """A Health Concern Act with its words and no observation is not filed (there is no
    coded fact), but the integrator is told, as for any statement not filed."""
    msg = normalized(_section_text("75310-3", HC_TEXT, _health_concern("active", "")))
    assert msg.entries[1:] == []
    (warning,) = [w for w in msg.warnings if w.startswith("CDA_NOT_FILED")]
    assert "concern act holding no statement, only words" in warning
    assert "chute" not in warning  # no patient data in warnings


def _section_text(code: str, narrative: str, entries: str) -> str:
    return (f'<component><section><code code="{code}" codeSystem="2.16.840.1.113883.6.1"/>'
            f"<title>Section</title><text>{narrative}</text>{entries}</section></component>")


# -- HTML entities in the narrative ----------------------------------------------------------------
def _with_narrative(narrative: str) -> bytes:
    section = ('<component><section><code code="29762-2" codeSystem="2.16.840.1.113883.6.1"/>'
               f"<title>Social History</title><text>{narrative}</text></section></component>")
    return (CCDA_HEAD.format(effective="20240315143200-0500") + section + TAIL).encode()


def test_html_entities_in_the_narrative_are_read_as_their_characters() -> None:
    """Narrative generators that write HTML put '&nbsp;' and '&eacute;' in the section
    text; XML defines five entities only, and the whole document was refused
    (CDA_NOT_XML) for a no-break space. They are read as the characters HTML names, with
    a warning naming the entities (no text of the document)."""
    data = _with_narrative("Tabac&nbsp;: ancien fumeur, sevr&eacute; &lt; 2019 &amp; "
                           "alcool 1&nbsp;verre/j")
    msg = normalize_cda(parse_cda(data), data, "test")
    (section,) = msg.entries[0].details["sections"]
    assert section["text"] == "Tabac : ancien fumeur, sevré < 2019 & alcool 1 verre/j"
    (warning,) = [w for w in msg.warnings if w.startswith("CDA_HTML_ENTITY")]
    assert "&nbsp;" in warning and "&eacute;" in warning and "fumeur" not in warning
    assert msg.entries[0].attachment.data == data  # the document is kept as it was sent


def test_an_entity_neither_xml_nor_html_defines_is_still_refused() -> None:
    data = _with_narrative("Tabac&nbsp;&inconnu; arrêté")
    with pytest.raises(CdaParseError) as refused:
        parse_cda(data)
    assert refused.value.code == "CDA_NOT_XML" and "inconnu" in refused.value.message


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(sorted(set(name2codepoint) - {"amp", "lt", "gt", "quot"})))
def test_every_html_entity_reads_as_its_character(name: str) -> None:
    data = _with_narrative(f"avant&{name};après")
    document = parse_cda(data)
    (section,) = document.sections
    character = chr(name2codepoint[name])
    assert section.text.startswith("avant") and section.text.endswith("après")
    assert character in section.text or character.isspace()
    assert [w.code for w in document.warnings] == ["CDA_HTML_ENTITY"]


# -- care plans: entry references are links, not statements of a kind unknown -----------------
def test_an_entry_reference_of_a_care_plan_is_no_statement_not_filed() -> None:
    """C-CDA Entry Reference (4.122: an entry of the same document by id, code nullFlavor
    NP) links a Care Plan's outcome to its goal: it was reported as an act 'of a kind not
    read here' (CDA_NOT_FILED) on every Care Plan, though it states nothing. The outcome
    it is nested in is still filed."""
    outcome = """<entry><observation classCode="OBS" moodCode="EVN">
      <templateId root="2.16.840.1.113883.10.20.22.4.144"/>
      <id root="8b3b6b5e-6d9f-4a55-8a6b-3a0a7a1a0003"/>
      <code code="29463-7" codeSystem="2.16.840.1.113883.6.1" displayName="Body weight"/>
      <statusCode code="completed"/><effectiveTime value="20240601"/>
      <value xsi:type="PQ" value="72" unit="kg"/>
      <entryRelationship typeCode="GEVL"><act classCode="ACT" moodCode="EVN">
        <templateId root="2.16.840.1.113883.10.20.22.4.122"/>
        <id root="3700b3b0-fbed-11e2-b778-0800200c9a66"/>
        <code nullFlavor="NP"/><statusCode code="completed"/></act></entryRelationship>
    </observation></entry>"""
    msg = normalized(_section("11383-7", outcome))
    (weight,) = msg.entries[1:]
    assert (weight.code, weight.value, weight.unit) == ("29463-7", "72", "kg")
    assert not [w for w in msg.warnings if w.startswith("CDA_NOT_FILED")]


# -- smoking status: one code whatever the C-CDA version -------------------------------------------
def _smoking_status(template: str, code: str) -> str:
    return f"""<entry><observation classCode="OBS" moodCode="EVN">
      <templateId root="{template}"/>
      <id root="45efb604-7049-4a2e-ad33-d38556c9636c"/>{code}
      <statusCode code="completed"/><effectiveTime value="20240315"/>
      <value xsi:type="CD" code="8517006" codeSystem="2.16.840.1.113883.6.96"
        displayName="Ex-fumeur"/></observation></entry>"""


R21_SMOKING = '<code code="72166-2" codeSystem="2.16.840.1.113883.6.1"/>'
R11_SMOKING = '<code code="ASSERTION" codeSystem="2.16.840.1.113883.5.4"/>'


@pytest.mark.parametrize(("template", "code"), [
    ("2.16.840.1.113883.10.20.22.4.78", R21_SMOKING),  # C-CDA R2.1
    ("2.16.840.1.113883.10.20.22.4.78", R11_SMOKING),  # C-CDA R1.1
    ("2.16.840.1.113883.10.22.4.78", R11_SMOKING),  # R1.1 under its misprinted templateId
])
def test_a_smoking_status_has_one_code_whatever_the_c_cda_version(template: str,
                                                                   code: str) -> None:
    """C-CDA R1.1 coded the smoking status ASSERTION and R2.1 codes it LOINC 72166-2: the
    R1.1 one was filed under its value's code (SNOMED 'former smoker'), so the same fact
    from two versions was two facts, and the export had no smoking status observation."""
    (smoking,) = normalized(_section("29762-2", _smoking_status(template, code))).entries[1:]
    assert (smoking.code, smoking.system, smoking.value) == ("72166-2", "LN", "Ex-fumeur")
    assert smoking.details["value_code"] == {"code": "8517006", "system": "SNOMED-CT"}
    (resource,) = _resources(_bundle([smoking]), "Observation")
    assert resource["code"]["coding"][0]["code"] == "72166-2"
    assert resource["valueCodeableConcept"]["coding"][0]["code"] == "8517006"


def test_another_assertion_is_still_of_what_its_value_says() -> None:
    """A pregnancy observation (ASSERTION, value 'pregnant', no question in any version)
    is still filed under its value."""
    pregnancy = _smoking_status("2.16.840.1.113883.10.20.15.3.8", R11_SMOKING).replace(
        'code="8517006"', 'code="77386006"')
    (pregnant,) = normalized(_section("29762-2", pregnancy)).entries[1:]
    assert (pregnant.code, pregnant.system) == ("77386006", "SNOMED-CT")


# -- results in progress ------------------------------------------------------------------------
def _creatinine(own_status: str, battery_status: str = "completed") -> str:
    """A C-CDA Result Organizer (4.1) holding one Result Observation (4.2)."""
    status = f'<statusCode code="{own_status}"/>' if own_status else ""
    return f"""<entry><organizer classCode="BATTERY" moodCode="EVN">
      <templateId root="2.16.840.1.113883.10.20.22.4.1" extension="2015-08-01"/>
      <id root="7d5a02b0-67a4-11db-bd13-0800200c9a61"/>
      <code code="24323-8" codeSystem="2.16.840.1.113883.6.1" displayName="CMP"/>
      <statusCode code="{battery_status}"/><effectiveTime value="20240310"/>
      <component><observation classCode="OBS" moodCode="EVN">
        <templateId root="2.16.840.1.113883.10.20.22.4.2" extension="2015-08-01"/>
        <id root="b1c2d3e4-0000-4000-8000-000000000001"/>
        <code code="2160-0" codeSystem="2.16.840.1.113883.6.1" displayName="Créatinine"/>
        {status}<effectiveTime value="20240310"/>
        <value xsi:type="PQ" value="1.1" unit="mg/dL"/></observation></component>
    </organizer></entry>"""


@pytest.mark.parametrize(("own", "battery", "expected"), [
    ("active", "active", "preliminary"), ("", "active", "preliminary"),
    ("completed", "active", "final"), ("aborted", "completed", "cancelled")])
def test_a_result_in_progress_is_preliminary(own: str, battery: str, expected: str) -> None:
    """C-CDA Result Status 'active' (the result is not final yet) was filed 'active', a
    status no result has on the HL7v2 path (OBX-11 P is 'preliminary'): the same result by
    both channels differed, and a final after it was not its later state. It is
    'preliminary', as a document whose results are still to come already was."""
    (result,) = normalized(_section("30954-2", _creatinine(own, battery))).entries[1:]
    assert (result.code, result.status) == ("2160-0", expected)
    assert result.status in status_order()
