"""CDA R2 documents the way other senders write them (round 9): each test builds a small
invented document with one structure the standard allows and checks what lands in the entries
against what a clinician reading the document expects."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from normalizers.cda import normalize_cda
from normalizers.model import Entry
from parsers.cda import parse_cda
from tests.conftest import corpus_path
from tests.test_cda_real_world import HEAD, TAIL, _entries, _one, _section

LOINC = "2.16.840.1.113883.6.1"


def _battery(components: str, subject: str = "", code: str = "24320-4") -> str:
    return f"""<entry><organizer classCode="BATTERY" moodCode="EVN">
      <templateId root="1.3.6.1.4.1.19376.1.3.1.4"/>
      <code code="{code}" codeSystem="{LOINC}"/><statusCode code="completed"/>
      {subject}<effectiveTime value="20240311083000+0100"/>{components}</organizer></entry>"""


def _result(code: str, name: str, value: str, subject: str = "", ident: str = "") -> str:
    return f"""<component><observation classCode="OBS" moodCode="EVN">
      <templateId root="1.3.6.1.4.1.19376.1.3.1.6"/>
      <id root="1.2.250.1.999.9" extension="R-{ident or code}"/>
      <code code="{code}" codeSystem="{LOINC}" displayName="{name}"/>
      {subject}<statusCode code="completed"/>{value}</observation></component>"""


NEWBORN = """<subject typeCode="SBJ"><relatedSubject classCode="PRS"><code code="NBOR"
  codeSystem="2.16.840.1.113883.5.111" displayName="nouveau-né"/><subject>
  <administrativeGenderCode code="M" codeSystem="2.16.840.1.113883.5.1"/>
  <birthTime value="20240310"/></subject></relatedSubject></subject>"""
ONESELF = """<subject><relatedSubject classCode="PRS"><code code="ONESELF"
  codeSystem="2.16.840.1.113883.5.111"/></relatedSubject></subject>"""


# -- whom a result is about: the subject of its battery or section ----------------------------
def test_the_subject_of_a_battery_is_the_subject_of_its_results() -> None:
    """A delivery report's newborn battery names the newborn once, on the organizer (CDA
    context conduction): its birth weight was filed as the mother's own weight."""
    got = _entries(_section("11502-2", "Nouveau-né", _battery(
        _result("8339-4", "Poids de naissance", '<value xsi:type="PQ" value="3250" unit="g"/>')
        + _result("9272-6", "Apgar à 1 min", '<value xsi:type="INT" value="9"/>'),
        subject=NEWBORN)))
    assert [(e.code, e.value) for e in got] == [("8339-4", "3250"), ("9272-6", "9")]
    for entry in got:
        assert entry.details["subject"]["code"] == "NBOR"
        assert entry.details["subject"]["sex"] == "M"
        assert entry.details["subject"]["birth_time"] == "2024-03-10"


def test_a_result_naming_the_patient_in_a_newborns_battery_is_the_patients() -> None:
    """The mother's own blood group next to the newborn's results: its own subject (ONESELF)
    wins over the battery's."""
    got = _entries(_section("11502-2", "Groupes", _battery(
        _result("882-1", "Groupe ABO Rh", '<value xsi:type="ST">O Rh+</value>', ONESELF)
        + _result("883-9", "Groupe ABO", '<value xsi:type="ST">A</value>'),
        subject=NEWBORN)))
    assert [(e.code, "subject" in e.details) for e in got] == [("882-1", False),
                                                                ("883-9", True)]


def test_the_patients_results_say_no_subject() -> None:
    entry = _one(_section("11502-2", "Résultats", _battery(_result(
        "2160-0", "Créatinine", '<value xsi:type="PQ" value="80" unit="umol/L"/>'))))
    assert "subject" not in entry.details and "relative" not in entry.details


def test_the_subject_of_a_section_is_the_subject_of_its_entries() -> None:
    """CDA R2 Section.subject (an obstetric summary's 'nouveau-né' section): its vital signs
    and its problem are the newborn's, also in a subsection; a problem of a relative is no
    problem of the patient (as a statement's own subject already said)."""
    vital = """<entry><observation classCode="OBS" moodCode="EVN">
      <templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.13.2"/>
      <code code="8302-2" codeSystem="2.16.840.1.113883.6.1" displayName="Taille"/>
      <statusCode code="completed"/><effectiveTime value="20240310"/>
      <value xsi:type="PQ" value="50" unit="cm"/></observation></entry>"""
    problem = """<entry><observation classCode="OBS" moodCode="EVN">
      <templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.5"/>
      <code code="282291009" codeSystem="2.16.840.1.113883.6.96"/>
      <statusCode code="completed"/><effectiveTime><low value="20240310"/></effectiveTime>
      <value xsi:type="CD" code="P59.9" codeSystem="2.16.840.1.113883.6.3"
        displayName="Ictère néonatal"/></observation></entry>"""
    section = f"""<component><section>
      <code code="57075-4" codeSystem="{LOINC}" displayName="Nouveau-né"/>
      <title>Nouveau-né</title><text>Garçon né le 10/03/2024</text>{NEWBORN}
      <component><section><code code="8716-3" codeSystem="{LOINC}"/><title>Signes vitaux</title>
        <text>Taille 50 cm</text>{vital}</section></component>
      <component><section><code code="11450-4" codeSystem="{LOINC}"/><title>Problèmes</title>
        <text>Ictère</text>{problem}</section></component></section></component>"""
    vital_entry, problem_entry = _entries(section)
    assert vital_entry.value == "50"
    assert vital_entry.details["subject"]["code"] == "NBOR"
    assert problem_entry.code == "P59.9"
    assert problem_entry.type == "family_history"
    assert problem_entry.details["relative"]["code"] == "NBOR"


# -- values ------------------------------------------------------------------------------------
def test_an_interval_given_as_a_point_is_that_quantity() -> None:
    """IVL<T> extends T: an IVL_PQ result with value and unit on the element itself is the
    quantity 5 mg/L; it was filed as the text '5 mg/L' with no unit and no number."""
    entry = _one(_section("11502-2", "CRP", _battery(_result(
        "1988-5", "CRP", '<value xsi:type="IVL_PQ" value="5" unit="mg/L"/>'))))
    assert (entry.value, entry.value_num, entry.unit, entry.comparator) == ("5", 5.0, "mg/L",
                                                                           None)


# -- codes -------------------------------------------------------------------------------------
@pytest.mark.parametrize("attrs", [
    f'code=" 2345-7 " codeSystem=" {LOINC} "',
    f'code="2345-7&#9;" codeSystem="{LOINC}"',
    f'code="&#10;  2345-7&#10;" codeSystem="{LOINC}"',
])
def test_blanks_around_a_code_are_no_part_of_it(attrs: str) -> None:
    """code is a token: a glucose sent as ' 2345-7 ' was filed under a code of its own, never
    the same fact as the '2345-7' of the HL7v2 result."""
    data = (HEAD + _section("11502-2", "Glycémie", _battery(f"""<component><observation
      classCode="OBS" moodCode="EVN"><code {attrs} displayName="Glucose"/>
      <statusCode code="completed"/><value xsi:type="PQ" value="5.2" unit="mmol/L"/>
      <interpretationCode code=" N " codeSystem="2.16.840.1.113883.5.83"/>
      </observation></component>""")) + TAIL).encode()
    entry: Entry = normalize_cda(parse_cda(data), data, "test").entries[1]
    assert (entry.code, entry.system, entry.value) == ("2345-7", "LN", "5.2")
    assert entry.interpretation == "N"


# -- masking -----------------------------------------------------------------------------------
@pytest.mark.parametrize(("code", "flag"), [
    ("MASQUE_PS", "MASQUE_PS"),
    ("INVISIBLE_PATIENT", "INVISIBLE_PATIENT"),
    ("INVISIBLE_REPRESENTANTS_LEGAUX", "INVISIBLE_REP_LEGAUX"),
])
def test_dmp_visibility_code_as_the_confidentiality_code_masks(code: str, flag: str) -> None:
    """A sender that puts the DMP's XDS visibility code (1.2.250.1.213.1.1.4.13) in the CDA
    confidentialityCode: a document made invisible to the patient was filed visible to all
    (CDA_UNKNOWN_CONFIDENTIALITY, nothing masked)."""
    head = HEAD.replace('<confidentialityCode code="N" codeSystem="2.16.840.1.113883.5.25"/>',
                        f'<confidentialityCode code="{code}" '
                        'codeSystem="1.2.250.1.213.1.1.4.13"/>')
    data = (head + _section("11502-2", "CRP", _battery(_result(
        "1988-5", "CRP", '<value xsi:type="PQ" value="5" unit="mg/L"/>'))) + TAIL).encode()
    msg = normalize_cda(parse_cda(data), data, "test")
    assert msg.entries[0].masking == {flag: True}
    assert msg.entries[1].masking == {flag: True}
    assert not [w for w in msg.warnings if w.startswith("CDA_UNKNOWN_CONFIDENTIALITY")]


# -- code systems named by codeSystemName only, or by a URN ------------------------------------
def _problem(value: str) -> str:
    return f"""<entry><act classCode="ACT" moodCode="EVN">
      <templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.5.2"/><id root="1.2.250.1.999.4"
      extension="C1"/><code nullFlavor="NA"/><statusCode code="active"/>
      <effectiveTime><low value="20200101"/></effectiveTime>
      <entryRelationship typeCode="SUBJ"><observation classCode="OBS" moodCode="EVN">
        <templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.5"/>
        <id root="1.2.250.1.999.4" extension="P1"/>
        <code code="282291009" codeSystem="2.16.840.1.113883.6.96" displayName="Diagnostic"/>
        <statusCode code="completed"/><effectiveTime><low value="20200101"/></effectiveTime>
        {value}</observation></entryRelationship></act></entry>"""


@pytest.mark.parametrize(("system_attrs", "code", "expected"), [
    ('codeSystemName="ICD-10"', "E11.9", "CIM-10"),
    ('codeSystemName="I10"', "E11.9", "CIM-10"),
    ('codeSystemName="SNOMED CT"', "44054006", "SNOMED-CT"),
    ('codeSystemName="SCT"', "44054006", "SNOMED-CT"),
    ('codeSystem="urn:oid:2.16.840.1.113883.6.3"', "E11.9", "CIM-10"),
    ('codeSystem="URN:OID:2.16.840.1.113883.6.96"', "44054006", "SNOMED-CT"),
    ('codeSystem="2.16.840.1.113883.6.3" codeSystemName="ICD-10"', "E11.9", "CIM-10"),
])
def test_a_diagnosis_coded_by_system_name_or_urn_is_under_its_terminology(
        system_attrs: str, code: str, expected: str) -> None:
    """A type 2 diabetes coded without the OID ('SNOMED CT', 'ICD-10' as codeSystemName, the
    names the HL7v2 path already reads) or with the OID as a URN was filed under the name or
    URN as sent: a system of its own, never the same problem as the coded one."""
    entry = _one(_section("11450-4", "Diabète de type 2", _problem(
        f'<value xsi:type="CD" code="{code}" {system_attrs} displayName="Diabète de type 2"/>')))
    assert (entry.type, entry.code, entry.system) == ("problem", code, expected)



# -- the status of a battery ------------------------------------------------------------------
def _status_battery(battery_status: str, result_status: str) -> str:
    own = f'<statusCode code="{result_status}"/>' if result_status else ""
    return f"""<entry><organizer classCode="BATTERY" moodCode="EVN">
      <templateId root="1.3.6.1.4.1.19376.1.3.1.4"/>
      <code code="24362-6" codeSystem="{LOINC}" displayName="Ionogramme"/>
      <statusCode code="{battery_status}"/><effectiveTime value="20240311083000+0100"/>
      <component><observation classCode="OBS" moodCode="EVN">
        <templateId root="1.3.6.1.4.1.19376.1.3.1.6"/>
        <id root="1.2.250.1.999.9" extension="K-1"/>
        <code code="2823-3" codeSystem="{LOINC}" displayName="Potassium"/>{own}
        <value xsi:type="PQ" value="6.8" unit="mmol/L"/></observation></component>
    </organizer></entry>"""


@pytest.mark.parametrize(("battery", "result", "expected"), [
    # the battery recorded in error: its results with it, whatever they say
    ("nullified", "completed", "entered-in-error"),
    ("nullified", "", "entered-in-error"),
    # a result stating no status of its own takes its battery's
    ("aborted", "", "cancelled"),
    ("cancelled", "", "cancelled"),
    ("active", "", "preliminary"),  # a result in progress: HL7v2's word (round 17)
    # a result's own statusCode is the nearest word on it
    ("aborted", "completed", "final"),
    ("active", "completed", "final"),
    ("completed", "", "final"),
])
def test_a_battery_status_goes_to_its_results(battery: str, result: str, expected: str) -> None:
    """A potassium of 6.8 in a haemolysed ionogram the lab cancelled (battery aborted, the
    result without a statusCode), or in a battery recorded in error (nullified), was filed
    as a final result."""
    entry = _one(_section("11502-2", "Ionogramme", _status_battery(battery, result)))
    assert (entry.code, entry.status) == ("2823-3", expected)


# -- an allergy's reaction written as a problem entry (IHE PCC, CI-SIS) -------------------------
CISIS_ALLERGY = """<entry><act classCode="ACT" moodCode="EVN">
  <templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.5.1"/>
  <templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.5.3"/>
  <id root="1.2.250.1.999.6" extension="AC1"/><code nullFlavor="NA"/><statusCode code="active"/>
  <effectiveTime><low value="20100101"/></effectiveTime>
  <entryRelationship typeCode="SUBJ"><observation classCode="OBS" moodCode="EVN">
    <templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.5"/>
    <templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.6"/>
    <id root="1.2.250.1.999.6" extension="AL1"/>
    <code code="DALG" codeSystem="2.16.840.1.113883.5.4" displayName="Allergie médicamenteuse"/>
    <text><reference value="#al1"/></text><statusCode code="completed"/>
    <effectiveTime><low value="2010"/></effectiveTime><value xsi:type="CD" nullFlavor="NA"/>
    <participant typeCode="CSM"><participantRole classCode="MANU">
      <playingEntity classCode="MMAT"><code code="J01CE" codeSystem="2.16.840.1.113883.6.73"
        displayName="Pénicillines sensibles aux bêtalactamases"/></playingEntity>
    </participantRole></participant>
    <entryRelationship typeCode="MFST" inversionInd="true"><observation classCode="OBS"
      moodCode="EVN"><templateId root="2.16.840.1.113883.10.20.1.28"/>
      <templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.5"/>
      <templateId root="2.16.840.1.113883.10.20.1.54"/>
      <id root="1.2.250.1.999.6" extension="RE1"/>
      <code code="75325-1" codeSystem="2.16.840.1.113883.6.1" displayName="Symptôme"/>
      <statusCode code="completed"/>
      <value xsi:type="CD" code="L50.9" codeSystem="2.16.840.1.113883.6.3"
        displayName="Urticaire"/></observation></entryRelationship>
  </observation></entryRelationship></act></entry>"""


def test_a_reaction_written_as_a_problem_entry_is_the_allergys_reaction() -> None:
    """IPS-FR, VSM, LDL-SES: the manifestation of an allergy is an FR-Probleme under MFST.
    The allergy lost it (only C-CDA's untemplated reactions were read), and the urticaria
    read as a problem of its own with no link to the penicillin. It stays filed as a
    problem (as before: the ANS corpus count relies on it) and now says whose reaction it
    is; the allergy lists it."""
    allergy, reaction = _entries(_section(
        "48765-2", '<content ID="al1">Pénicilline : urticaire</content>', CISIS_ALLERGY))
    assert (allergy.type, allergy.code, allergy.system) == ("allergy", "J01CE", "ATC")
    assert allergy.details["reactions"] == [{"code": "L50.9", "system": "CIM-10",
                                             "display": "Urticaire"}]
    assert (reaction.type, reaction.code) == ("problem", "L50.9")
    assert reaction.details["manifestation_of"] == allergy.key


def test_the_ans_examples_name_the_child_and_the_mother_on_organizers_and_sections() -> None:
    """The ANS examples put CI-SIS FR-Sujet on a birth organizer and on the problem concern
    of 'pathologies fœtales diagnostiquées in utero' (OBP-SAP, the mother's record), and on
    the mother's sections of the child's 8th-day certificate (CSE-CS8): the newborn's
    oesophageal atresia was filed as the mother's problem, the mother's parity as the
    child's observation."""
    def entries(name: str) -> list[Entry]:
        data = corpus_path("cda", name).read_bytes()
        return normalize_cda(parse_cda(data), data, "ans").entries

    sap = {e.code: e for e in entries("OBP-SAP_2024.01.xml")}
    assert sap["Q39.0"].type == "family_history"
    assert sap["Q39.0"].details["relative"]["code"] == "CHILD"
    assert sap["8339-4"].details["subject"]["code"] == "CHILD"
    assert (sap["8339-4"].value, sap["8339-4"].unit) == ("3200", "g")
    cs8 = {e.code: e for e in entries("CSE-CS8_2024.01.xml")}
    assert cs8["11996-6"].details["subject"]["code"] == "MTH"


# -- narrative references written without their '#' ---------------------------------------------
def test_a_reference_without_its_hash_is_read_in_the_narrative() -> None:
    """The ANS examples (and the senders who copy them) write reference value="aspect"
    without the '#': a value and a test name written only in the narrative were lost (the
    result had no value; the uncoded test was not filed at all)."""
    narrative = ('<table><tbody><tr><td ID="nom-examen">Aspect du liquide pleural</td>'
                 '<td ID="aspect">Citrin, légèrement trouble</td></tr></tbody></table>')
    entry = _one(_section("11502-2", narrative, _battery("""<component><observation
      classCode="OBS" moodCode="EVN"><code nullFlavor="OTH"><originalText>
      <reference value="nom-examen"/></originalText></code><statusCode code="completed"/>
      <value xsi:type="CD" nullFlavor="OTH"><originalText><reference value="aspect"/>
      </originalText></value></observation></component>""")))
    assert (entry.display, entry.value) == ("Aspect du liquide pleural",
                                            "Citrin, légèrement trouble")


def test_a_reference_to_no_element_of_the_narrative_is_no_text() -> None:
    entry = _one(_section("11502-2", '<content ID="autre">Autre chose</content>', _battery(
        _result("5778-6", "Couleur des urines", '<value xsi:type="CD" nullFlavor="OTH">'
                '<originalText><reference value="http://exemple.fr/couleur"/></originalText>'
                "</value>"))))
    assert entry.value is None


# -- form: blanks before the XML declaration ---------------------------------------------------
@pytest.mark.parametrize("before", [b"\n", b"\r\n  ", b"\xef\xbb\xbf\n\t"])
def test_blanks_before_the_xml_declaration_are_skipped_and_said(ctx, before: bytes) -> None:  # noqa: ANN001
    """A template engine's first newline before '<?xml': detection called it a CDA, the
    parser refused it as CDA_NOT_XML (the XML rule: nothing before the declaration); the
    whole report was lost for a blank line. Now filed, with a warning on the ledger."""
    from dataclasses import replace

    from sqlalchemy import select

    from dossiers.schema import imports
    from pipelines.intake import Received, intake
    from pipelines.process import drain

    ctx.settings = replace(ctx.settings, auto_create=True)
    head = HEAD.replace('<id root="1.2.250.1.999.1.1" extension="IPP-4242"/>',
                        '<id root="1.2.250.1.213.1.4.8" extension="268036912354128"/>'
                        ).replace('<birthTime value="19620415"/>', '<birthTime value="19680314"/>')
    data = before + (head + _section("11502-2", "CRP", _battery(_result(
        "1988-5", "CRP", '<value xsi:type="PQ" value="12" unit="mg/L"/>'))) + TAIL).encode()
    intake(ctx.engine, ctx.archive, [Received(data, "hopital-x", "file")])
    drain(ctx)
    with ctx.engine.connect() as conn:
        row = conn.execute(select(imports)).one()
    assert (row.status, row.error_code) == ("deposited", None)
    assert [w for w in row.warnings if w.startswith("CDA_BLANKS_BEFORE_DECLARATION")]


def test_blanks_before_a_root_without_declaration_are_still_no_error() -> None:
    doc = parse_cda(b"\n\n" + (HEAD.split("?>", 1)[1] + TAIL).encode())
    assert not any(w.code == "CDA_BLANKS_BEFORE_DECLARATION" for w in doc.warnings)


# -- properties --------------------------------------------------------------------------------
_BLANK = st.text(alphabet=" \t\r\n", max_size=3)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(code=st.from_regex(r"[0-9]{1,6}-[0-9]", fullmatch=True), before=_BLANK, after=_BLANK,
       number=st.decimals(min_value=-10**6, max_value=10**6, places=3, allow_nan=False,
                          allow_infinity=False))
def test_a_padded_code_and_a_point_interval_read_as_the_plain_ones(code: str, before: str,
                                                                  after: str,
                                                                  number) -> None:  # noqa: ANN001
    """Whatever the blanks around a LOINC code, the result is filed under the code itself;
    a value written as an IVL_PQ point is the same number and unit as the PQ."""
    def read(code_attr: str, value: str) -> Entry:
        data = (HEAD + _section("11502-2", "", _battery(f"""<component><observation
          classCode="OBS" moodCode="EVN"><code code="{code_attr}" codeSystem="{LOINC}"/>
          <statusCode code="completed"/>{value}</observation></component>""")) + TAIL).encode()
        return normalize_cda(parse_cda(data), data, "test").entries[1]

    plain = read(code, f'<value xsi:type="PQ" value="{number}" unit="mmol/L"/>')
    padded = read(before + code + after,
                  f'<value xsi:type="IVL_PQ" value="{number}" unit="mmol/L"/>')
    assert (padded.code, padded.system) == (plain.code, plain.system) == (code, "LN")
    assert (padded.value, padded.value_num, padded.unit) == (plain.value, plain.value_num,
                                                            plain.unit)


def test_a_reference_into_another_sections_narrative_is_read() -> None:
    """IDs are unique in the whole document: a sender that writes the table in the parent
    section and the entries in a subsection (or the reverse) points across sections. The
    germ named only in words and the uncoded test were lost (value None, not filed)."""
    parent = f"""<component><section><code code="18725-2" codeSystem="{LOINC}"/>
      <title>Microbiologie</title><text><table><tbody><tr>
        <td ID="examen-1">Examen cytobactériologique des crachats</td>
        <td ID="germe-1">Streptococcus pneumoniae, nombreuses colonies</td></tr></tbody>
      </table></text>
      <component><section><code code="18725-2" codeSystem="{LOINC}"/><title>Culture</title>
        <text>Voir ci-dessus</text>{_battery('''<component><observation classCode="OBS"
          moodCode="EVN"><code nullFlavor="OTH"><originalText><reference value="#examen-1"/>
          </originalText></code><statusCode code="completed"/>
          <value xsi:type="CD" nullFlavor="OTH"><originalText><reference value="#germe-1"/>
          </originalText></value></observation></component>''')}</section></component>
    </section></component>"""
    entry = _one(parent)
    assert (entry.display, entry.value) == ("Examen cytobactériologique des crachats",
                                            "Streptococcus pneumoniae, nombreuses colonies")


# -- a normal range in another unit than the result's ------------------------------------------
def _glucose(range_value: str) -> Entry:
    return _one(_section("11502-2", "Glycémie", _battery(_result(
        "2345-7", "Glucose", '<value xsi:type="PQ" value="1.05" unit="g/L"/>'
        f"""<referenceRange><observationRange><value xsi:type="IVL_PQ">{range_value}
        </value><interpretationCode code="N" codeSystem="2.16.840.1.113883.5.83"/>
        </observationRange></referenceRange>"""))))


def test_a_normal_range_in_another_unit_says_its_unit() -> None:
    """A glucose of 1.05 g/L with its normal range in mmol/L (3.9-5.8): filed as the range
    '3.9-5.8' of a result in g/L, it read as far below normal."""
    entry = _glucose('<low value="3.9" unit="mmol/L"/><high value="5.8" unit="mmol/L"/>')
    assert (entry.value, entry.unit, entry.reference_range) == ("1.05", "g/L",
                                                                "3.9-5.8 mmol/L")


@pytest.mark.parametrize("unit", ["g/L", "g/l"])
def test_a_normal_range_in_the_results_unit_stays_as_it_was(unit: str) -> None:
    entry = _glucose(f'<low value="0.70" unit="{unit}"/><high value="1.10" unit="{unit}"/>')
    assert entry.reference_range == "0.70-1.10"


@pytest.mark.parametrize("code", [
    '<code code="11502-2" codeSystemName="LOINC" displayName="CR d\'examens biologiques"/>',
    '<code code="11502-2" codeSystemName="LN"/>',
    '<code code=" 11502-2 " codeSystem="urn:oid:2.16.840.1.113883.6.1"/>',
])
def test_the_document_type_coded_without_the_loinc_oid_is_loinc(code: str) -> None:
    """A CR-BIO whose type says LOINC by name only: the document was filed with no system
    (unmapped), never the same type as the other CR-BIO."""
    head = HEAD.replace('<code code="34133-9" codeSystem="2.16.840.1.113883.6.1"/>', code)
    data = (head + _section("11502-2", "", "") + TAIL).encode()
    document = normalize_cda(parse_cda(data), data, "test").entries[0]
    assert (document.type, document.code, document.system, document.mapped) == (
        "document", "11502-2", "LN", True)


# -- the same documents in other senders' forms read the same ----------------------------------
def _other_senders_form(data: bytes) -> bytes:
    """``data`` as other senders write the same thing: blanks around every code and status
    (cs tokens), code system OIDs as URNs, narrative references without '#', CRLF line
    ends, blank lines before the XML declaration."""
    data = re.sub(rb'(\scode=")([^"]+)(")', rb"\1 \2 \3", data)
    data = re.sub(rb'(codeSystem=")([0-2](?:\.\d+)+)(")', rb"\1urn:oid:\2\3", data)
    data = re.sub(rb'(<reference value=")#', rb"\1", data)
    data = data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    return b"\r\n\r\n" + data if data.startswith(b"<?xml") else data


def _facts(data: bytes) -> list[tuple]:
    msg = normalize_cda(parse_cda(data), data, "test")
    return sorted((e.type, e.code, e.system, e.value, e.unit, e.status, e.effective,
                   e.reference_range, e.interpretation, repr(e.details.get("subject")),
                   repr(e.masking)) for e in msg.entries)


_SAMPLES = sorted(p for p in (Path(__file__).parent.parent / "samples" / "cda").glob("0*.xml")
                  if "casse" not in p.name)


@pytest.mark.parametrize("path", _SAMPLES, ids=lambda p: p.name)
def test_a_document_in_another_senders_form_files_the_same_entries(path: Path) -> None:
    """What the sample documents file, written the way other senders write the same thing,
    is the same: before, a padded statusCode (' completed ') was filed as a status of its
    own, padded codes as codes of their own, URN code systems as systems of their own."""
    data = path.read_bytes()
    assert _facts(_other_senders_form(data)) == _facts(data)


@pytest.mark.parametrize(("value", "expected"), [
    # a coded value without xsi:type: its words in the narrative were lost
    ('<value nullFlavor="OTH"><originalText><reference value="#aspect"/></originalText>'
     "</value>", ("Trouble", None, None)),
    ('<value code="LA6577-6" codeSystem="2.16.840.1.113883.6.1"><originalText>Négatif'
     "</originalText></value>", ("Négatif", None, None)),
    # a quantity without xsi:type, its translation another unit: still the quantity
    ('<value value="1.05" unit="g/L"><translation value="5.8" code="mmol/L" '
     'codeSystem="2.16.840.1.113883.6.8"/></value>', ("1.05", 1.05, "g/L")),
])
def test_a_value_without_xsi_type_is_read_by_its_children_too(value: str,
                                                             expected: tuple) -> None:
    """A value sent without xsi:type (invalid; some senders forget it) was read by its
    attributes only: a coded value with no code of its own and its words in originalText
    read as nothing."""
    data = (HEAD + _section("11502-2", '<content ID="aspect">Trouble</content>', _battery(
        _result("5767-9", "Aspect", value))) + TAIL).encode()
    msg = normalize_cda(parse_cda(data), data, "test")
    entry = msg.entries[1]
    assert (entry.value, entry.value_num, entry.unit) == expected
    assert any(w.startswith("CDA_UNKNOWN_XSI_TYPE") for w in msg.warnings)


# -- a local code translated into LOINC for the document type and the sections ---------------
def test_document_type_and_section_coded_locally_with_a_loinc_translation() -> None:
    """A laboratory system that codes its report type and its sections with its own codes,
    the LOINC in translation: the document had no known type (the local code, unmapped)
    and its results section was none, its results filed as plain observations."""
    head = HEAD.replace('<code code="34133-9" codeSystem="2.16.840.1.113883.6.1"/>',
                        '<code code="CRBIO" codeSystem="1.2.250.1.999.77" displayName="CR">'
                        f'<translation code="11502-2" codeSystem="{LOINC}"/></code>')
    section = f"""<component><section><code code="BIOCHIMIE" codeSystem="1.2.250.1.999.78">
      <translation code="18719-5" codeSystem="{LOINC}" displayName="Chimie"/></code>
      <title>Biochimie</title><text>Créatinine 80 µmol/L</text>
      <entry><observation classCode="OBS" moodCode="EVN">
        <code code="2160-0" codeSystem="{LOINC}" displayName="Créatinine"/>
        <statusCode code="completed"/><effectiveTime value="20240311083000+0100"/>
        <value xsi:type="PQ" value="80" unit="umol/L"/></observation></entry>
    </section></component>"""
    data = (head + section + TAIL).encode()
    document, result = normalize_cda(parse_cda(data), data, "test").entries
    assert (document.code, document.system, document.mapped) == ("11502-2", "LN", True)
    assert document.details["type_as_sent"] == {"code": "CRBIO", "system": "1.2.250.1.999.77"}
    assert (result.type, result.code, result.value) == ("lab_result", "2160-0", "80")
    assert result.details["section"] == "18719-5"
