"""CDA R2 documents from hospitals we have not seen (round 27). Each test builds a small
document the way a French laboratory or hospital, or an EHR abroad, writes it with the
structures CDA R2 / IHE LAB / CI-SIS / C-CDA R2.1 allow, and checks what is filed against
what a clinician reading it understands.

Found wrong and fixed here: an effectiveTime (or participation time) given as its center and
its width was read as its center alone by the specimen collection, the biologist's validation
and the header's participations, and dropped altogether by the header's serviceEvent and
encompassingEncounter."""

from __future__ import annotations

from dataclasses import asdict

import pytest

from dossiers.fhir import to_bundle
from normalizers.cda import normalize_cda
from parsers.cda import parse_cda
from tests.test_cda_real_world import HEAD, TAIL, _section
from tests.test_fhir_export import check_bundle

LOINC = 'codeSystem="2.16.840.1.113883.6.1"'


def _normalized(*sections: str, header: str = ""):  # noqa: ANN202
    head = HEAD.replace("<component><structuredBody>", header + "<component><structuredBody>")
    data = (head + "".join(sections) + TAIL).encode()
    return normalize_cda(parse_cda(data), data, "test")


def _around(center: str, width: str, element: str = "effectiveTime") -> str:
    """An IVL_TS given as its center and its width (CDA R2 data types: any two of low,
    high, width, center)."""
    return f'<{element} xsi:type="IVL_TS"><center value="{center}"/>{width}</{element}>'


def _lab_act(collection_time: str, validation_time: str = "") -> str:
    """An IHE LAB / CI-SIS FR-Resultats-examens-de-biologie act: a Specimen Collection
    procedure (FR-Prelevement) and a kalaemia validated by its biologist (AUTHEN)."""
    validator = f"""<participant typeCode="AUTHEN">{validation_time}<participantRole>
        <id root="1.2.250.1.71.4.2.1" extension="810000000002"/></participantRole>
        </participant>""" if validation_time else ""
    return f"""<entry><act classCode="ACT" moodCode="EVN">
      <templateId root="1.3.6.1.4.1.19376.1.3.1.4"/>
      <code code="24326-1" displayName="Ionogramme sanguin" {LOINC}/>
      <statusCode code="completed"/>
      <entryRelationship typeCode="COMP"><procedure classCode="PROC" moodCode="EVN">
        <templateId root="1.3.6.1.4.1.19376.1.3.1.2"/>
        <templateId root="1.2.250.1.213.1.1.3.77"/>
        <code code="33882-2" displayName="Prélèvement" {LOINC}/>{collection_time}
      </procedure></entryRelationship>
      <entryRelationship typeCode="COMP"><observation classCode="OBS" moodCode="EVN">
        <templateId root="1.3.6.1.4.1.19376.1.3.1.6"/>
        <id root="1.2.250.1.999.27.1" extension="K-1"/>
        <code code="2823-3" displayName="Potassium" {LOINC}/><statusCode code="completed"/>
        <effectiveTime value="20240311083000+0100"/>
        <value xsi:type="PQ" value="4.1" unit="mmol/L"/>{validator}
      </observation></entryRelationship></act></entry>"""


def _kalaemia(collection_time: str, validation_time: str = ""):  # noqa: ANN202
    msg = _normalized(_section("18719-5", "Biochimie",
                               _lab_act(collection_time, validation_time)))
    (potassium,) = msg.entries[1:]
    return msg, potassium


# -- a period given as its center and its width: specimen, validation, header ---------------
@pytest.mark.parametrize(("when", "taken", "warning"), [
    # 'around 08:00, over 20 min': the collection ended at 08:10
    (_around("20240311080000+0100", '<width value="20" unit="min"/>'),
     "2024-03-11T08:10:00+01:00", None),
    # a 24-hour urine 'centered on' noon, a day wide
    (_around("202403111200+0100", '<width value="1" unit="d"/>'),
     "2024-03-12T00:00+01:00", None),
    # the French 'h' written 'hr': read, said
    (_around("20240311080000+0100", '<width value="1" unit="hr"/>'),
     "2024-03-11T08:30:00+01:00", "CDA_WIDTH_UNIT_NOT_UCUM"),
    # a width that is no time: the center, as before, said
    (_around("20240311080000+0100", '<width value="2" unit="mL"/>'),
     "2024-03-11T08:00:00+01:00", "CDA_WIDTH_NOT_TIME"),
    # a center alone: as before
    ('<effectiveTime xsi:type="IVL_TS"><center value="20240311080000+0100"/></effectiveTime>',
     "2024-03-11T08:00:00+01:00", None),
    # low + width: the end too ('from 07:50 for 20 min')
    ('<effectiveTime xsi:type="IVL_TS"><low value="20240311075000+0100"/>'
     '<width value="20" unit="min"/></effectiveTime>', "2024-03-11T08:10:00+01:00", None),
])
def test_a_collection_given_by_its_center_and_width_is_dated_by_its_end(
        when: str, taken: str, warning: str | None) -> None:
    """The Specimen Collection's effectiveTime is the end of the collection (CI-SIS
    FR-Prelevement puts it in high), else its start. Given as center + width, it was dated
    by its center: ten minutes early for a blood draw, twelve hours for a 24-hour urine."""
    msg, potassium = _kalaemia(when)
    assert potassium.specimen_time == taken
    assert potassium.effective == "2024-03-11T08:30:00+01:00"  # its own, untouched
    said = [w.split(":")[0] for w in msg.warnings if "WIDTH" in w]
    assert said == ([warning] if warning else [])


def test_the_biologists_validation_over_a_period_is_dated_by_its_end() -> None:
    """participant AUTHEN time (IHE LAB Laboratory Results Validator) as center + width: the
    validation is complete at its end, as a low + high's high is read."""
    msg, potassium = _kalaemia(
        '<effectiveTime value="20240311080000+0100"/>',
        _around("20240311140000+0100", '<width value="30" unit="min"/>', "time"))
    assert potassium.details["validated_by"] == {
        "ids": ["1.2.250.1.71.4.2.1^810000000002"], "time": "2024-03-11T14:15:00+01:00"}
    assert potassium.specimen_time == "2024-03-11T08:00:00+01:00"


def _header(service_time: str, encounter_time: str) -> str:
    """documentationOf/serviceEvent (the exam reported: a CCAM chest X-ray) and
    componentOf/encompassingEncounter (the visit), and a participant with its time."""
    return f"""<participant typeCode="REF"><functionCode code="PRELV"
        codeSystem="1.2.250.1.213.1.1.4.2.280"/>{_around("20240311070000+0100",
        '<width value="10" unit="min"/>', "time")}<associatedEntity classCode="PROV">
        <id root="1.2.250.1.71.4.2.1" extension="810000000003"/></associatedEntity></participant>
      <documentationOf><serviceEvent classCode="ACT">
        <code code="ZBQK002" displayName="Radiographie du thorax" codeSystem="1.2.250.1.213.2.5"/>
        {service_time}</serviceEvent></documentationOf>
      <componentOf><encompassingEncounter>
        <id root="1.2.250.1.999.27.2" extension="VENUE-77"/>{encounter_time}
      </encompassingEncounter></componentOf>"""


def test_the_header_periods_given_by_center_and_width_keep_both_ends() -> None:
    """serviceEvent and encompassingEncounter effectiveTime as center + width: read as low
    and high only, both were dropped and the report could not be found by the date of its
    exam nor of its visit. Now center - width/2 and center + width/2. The prescription's
    date (participant REF time) was its center; it is its end."""
    msg = _normalized(header=_header(
        _around("20240311101500+0100", '<width value="30" unit="min"/>'),
        _around("20240311", '<width value="2" unit="d"/>')))
    details = msg.entries[0].details
    (event,) = details["service_events"]
    assert (event["low"], event["high"]) == ("2024-03-11T10:00:00+01:00",
                                             "2024-03-11T10:30:00+01:00")
    assert (details["encounter"]["low"], details["encounter"]["high"]) == ("2024-03-10",
                                                                           "2024-03-12")
    assert details["ordered_by"][0]["time"] == "2024-03-11T07:05:00+01:00"
    assert not [w for w in msg.warnings if "WIDTH" in w]


@pytest.mark.parametrize(("event_time", "low", "high", "warning"), [
    # a center alone: the instant the exam began, as a TS is read
    ('<effectiveTime xsi:type="IVL_TS"><center value="20240311101500+0100"/></effectiveTime>',
     "2024-03-11T10:15:00+01:00", None, None),
    # a width that is no time: the center, said
    (_around("20240311101500+0100", '<width value="30" unit="mg"/>'),
     "2024-03-11T10:15:00+01:00", None, "CDA_WIDTH_NOT_TIME"),
    # low + width: the end computed, as for a result
    ('<effectiveTime xsi:type="IVL_TS"><low value="20240311100000+0100"/>'
     '<width value="45" unit="min"/></effectiveTime>',
     "2024-03-11T10:00:00+01:00", "2024-03-11T10:45:00+01:00", None),
    # low + high: as before
    ('<effectiveTime><low value="20240311100000+0100"/><high value="20240311104000+0100"/>'
     '</effectiveTime>', "2024-03-11T10:00:00+01:00", "2024-03-11T10:40:00+01:00", None),
])
def test_a_header_period_center_alone_or_with_no_time_width(
        event_time: str, low: str, high: str | None, warning: str | None) -> None:
    """What else a header period may be: a center alone is the instant it began (it was
    dropped); a width in no unit of time is said and the center kept."""
    msg = _normalized(header=_header(event_time, event_time))
    details = msg.entries[0].details
    for period in (details["service_events"][0], details["encounter"]):
        assert (period.get("low"), period.get("high")) == (low, high)
    said = [w.split(":")[0] for w in msg.warnings if "WIDTH" in w]
    assert said == ([warning] * 2 if warning else [])


# -- an Instruction that is an entry of the plan of care or of the discharge -----------------
SNOMED = 'codeSystem="2.16.840.1.113883.6.96"'
PATIENT = {"id": 1, "family": "FOURNIER", "given": "Gaëlle", "birth_date": "1964-02-09",
           "sex": "F", "ins": None}


def _standalone(code: str, text: str, mood: str = "INT", entry_id: str = "") -> str:
    """C-CDA R2.1 Instruction (4.20) as an entry of its own, as the Plan of Treatment and
    the Instructions sections allow it."""
    return f"""<entry><act classCode="ACT" moodCode="{mood}">
      <templateId root="2.16.840.1.113883.10.20.22.4.20" extension="2014-06-09"/>
      {entry_id}{code}<text>{text}</text><statusCode code="completed"/></act></entry>"""


def test_an_instruction_of_the_plan_of_care_is_a_plan_with_its_words() -> None:
    """C-CDA Plan of Treatment (18776-5) with an Instruction of its own, coded Patient
    education and pointing at the narrative, and an IHE PCC / CI-SIS
    FR-Instructions-au-patient (PINSTRUCT) written inline: both were only said
    CDA_NOT_FILED. Each is a plan (details.planned 'instruction') whose words are its
    patient_instructions, exported as a ServiceRequest's patientInstruction."""
    told = "Surveiller la glycémie capillaire matin et soir."
    ccda = _standalone(f'<code code="311401005" {SNOMED} displayName="Éducation du patient"/>',
                       '<reference value="#ins1"/>',
                       entry_id='<id root="1.2.250.1.999.27.3" extension="INS-1"/>')
    ihe = """<entry><act classCode="ACT" moodCode="INT">
      <templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.3"/>
      <code code="PINSTRUCT" codeSystem="1.3.6.1.4.1.19376.1.5.3.2"/>
      <text>Reprise du travail dans quinze jours.</text>
      <statusCode code="completed"/></act></entry>"""
    msg = _normalized(_section("18776-5", f'<paragraph ID="ins1">{told}</paragraph>',
                               ccda + ihe))
    education, work = msg.entries[1:]
    assert (education.type, education.code, education.display) == (
        "plan", "311401005", "Éducation du patient")
    assert education.details["planned"] == "instruction"
    assert education.details["patient_instructions"] == [told]
    assert work.code == "PINSTRUCT" and not work.display  # the words are no display
    assert work.details["patient_instructions"] == ["Reprise du travail dans quinze jours."]
    assert not [w for w in msg.warnings if w.startswith("CDA_NOT_FILED")]
    bundle = to_bundle(PATIENT, [{**asdict(e), "id": n} for n, e in enumerate(msg.entries, 1)])
    check_bundle(bundle)
    requests = [e["resource"] for e in bundle["entry"]
                if e["resource"]["resourceType"] == "ServiceRequest"]
    assert [(r["intent"], r["patientInstruction"]) for r in requests] == [
        ("plan", told), ("plan", "Reprise du travail dans quinze jours.")]


def test_an_uncoded_discharge_instruction_is_named_by_its_words() -> None:
    """C-CDA Discharge Instructions (8653-8), the code nullFlavor: the plan is named by its
    words (unmapped), as an uncoded procedure is."""
    told = "Ne pas porter de charge lourde pendant six semaines."
    msg = _normalized(_section("8653-8", told, _standalone('<code nullFlavor="UNK"/>', told)))
    (plan,) = msg.entries[1:]
    assert (plan.type, plan.code, plan.display, plan.mapped) == ("plan", None, told, False)
    assert plan.details["patient_instructions"] == [told]


@pytest.mark.parametrize(("section", "mood", "text"), [
    ("10160-0", "INT", "Au cours des repas."),  # among the medications: whose is it?
    ("18776-5", "EVN", "Éducation thérapeutique faite."),  # given, not planned
    ("18776-5", "INT", "-"),  # the sender's 'no instruction', uncoded
])
def test_an_instruction_that_is_no_plan_is_still_said_not_filed(section: str, mood: str,
                                                                text: str) -> None:
    """Outside the plan of care, instructions and discharge sections
    (tables/cda_instruction_sections.csv), in event mood, or saying nothing, an Instruction
    alone is said CDA_NOT_FILED as before."""
    msg = _normalized(_section(section, text, _standalone('<code nullFlavor="NA"/>', text,
                                                          mood)))
    assert msg.entries[1:] == []
    assert [w for w in msg.warnings if w.startswith("CDA_NOT_FILED")]


# -- sdtc:valueSet on a coded value ------------------------------------------------------------
def test_the_value_set_of_a_coded_value_is_kept_beside_its_code() -> None:
    """CI-SIS names the JDV each coded value is taken from (sdtc:valueSet, with its
    sdtc:valueSetVersion): it was not read. It is in details.value_code beside the code it
    qualifies; not when the entry is filed under a translation (the set is the sent
    code's), nor when none is sent."""
    def hbs(value: str, number: str) -> str:
        return f"""<entry><observation classCode="OBS" moodCode="EVN">
          <templateId root="1.3.6.1.4.1.19376.1.3.1.6"/>
          <id root="1.2.250.1.999.27.4" extension="HBS-{number}"/>
          <code code="5196-1" displayName="Antigène HBs" {LOINC}/>
          <statusCode code="completed"/><effectiveTime value="20240311083000+0100"/>
          {value}</observation></entry>"""
    with_set = hbs('<value xsi:type="CD" code="10828004" codeSystem="2.16.840.1.113883.6.96" '
                   'displayName="Positif" sdtc:valueSet="1.2.250.1.213.1.1.5.42" '
                   'sdtc:valueSetVersion="20240126120000"/>', "1")
    translated = hbs('<value xsi:type="CD" code="POS" codeSystem="1.2.250.1.999.4.9" '
                     'displayName="Positif" sdtc:valueSet="1.2.250.1.999.4.10"><translation '
                     'code="10828004" codeSystem="2.16.840.1.113883.6.96"/></value>', "2")
    plain = hbs('<value xsi:type="CD" code="260385009" codeSystem="2.16.840.1.113883.6.96" '
                'displayName="Négatif"/>', "3")
    first, second, third = _normalized(_section("18723-7", "Sérologies",
                                                with_set + translated + plain)).entries[1:]
    assert first.details["value_code"] == {
        "code": "10828004", "system": "SNOMED-CT", "value_set": "1.2.250.1.213.1.1.5.42",
        "value_set_version": "20240126120000"}
    assert second.details["value_code"]["code"] == "10828004"
    assert "value_set" not in second.details["value_code"]
    assert "value_set" not in third.details["value_code"]


# -- a translation chain: local code -> catalogue -> LOINC -------------------------------------
def test_a_loinc_at_the_end_of_a_translation_chain_keys_the_result() -> None:
    """A translation is a CD and may carry its own: a lab writes its code, translated
    into a regional catalogue's, itself translated into LOINC. Only the first level was
    looked at: the kalaemia was filed under the unmapped 'KALI', the LOINC lost, and the
    same result received by HL7v2 under 2823-3 was filed twice (no dedupe level 4). It is
    filed under the LOINC, the other codes kept, and is the HL7v2 result's fact."""
    from dossiers.deposit import fact_of
    from tests.test_lab_normalizer import MSH, OBR, ORC, PID, norm, oru

    chain = f"""<code code="KALI" codeSystem="1.2.250.1.999.4.1" displayName="Kaliémie">
      <translation code="K-SER" codeSystem="1.2.250.1.999.4.2" displayName="Potassium sérique">
      <translation code="2823-3" displayName="Potassium [Moles/volume] in Serum or Plasma"
        {LOINC}/></translation></code>"""
    result = f"""<entry><observation classCode="OBS" moodCode="EVN">
      <templateId root="1.3.6.1.4.1.19376.1.3.1.6"/>
      <id root="1.2.250.1.999.27.5" extension="K-2"/>{chain}<statusCode code="completed"/>
      <effectiveTime value="20240315081000+0100"/>
      <value xsi:type="PQ" value="4.1" unit="mmol/L"/></observation></entry>"""
    (kalaemia,) = _normalized(_section("18719-5", "Biochimie", result)).entries[1:]
    assert (kalaemia.code, kalaemia.system, kalaemia.mapped) == ("2823-3", "LN", True)
    assert kalaemia.details["local_code"]["code"] == "KALI"
    assert kalaemia.details["other_codes"] == [
        {"code": "K-SER", "system": "1.2.250.1.999.4.2", "display": "Potassium sérique"}]
    obx = "OBX|1|NM|2823-3^Potassium^LN||4.1|mmol/L|3.5-5.0|N|||F|||202403150810"
    (twin,) = [e for e in norm(oru(obx, header=MSH, pid=PID, order=(ORC, OBR))).entries
               if e.type == "lab_result"]
    assert fact_of(kalaemia) is not None and fact_of(kalaemia) == fact_of(twin)
