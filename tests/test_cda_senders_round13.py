"""CDA R2 documents the way other senders write them (round 13: what nested statements,
units and periods lose on their way to the store and to the FHIR export). Each test builds
a small invented document with one structure CDA R2 / CI-SIS allows, or runs an ANS example
when ../shared/corpus is there, and checks what is filed against what a clinician reading
the document understands."""

from __future__ import annotations

import pytest

from dossiers.fhir import to_bundle
from normalizers.cda import normalize_cda
from parsers.cda import parse_cda
from tests.conftest import corpus_path
from tests.test_cda_real_world import HEAD, TAIL, _entries, _section
from tests.test_cda_senders_round12 import STAGED_TUMOUR
from tests.test_fhir_export import PATIENT, _resource, _rows_read, check_bundle

LOINC = 'codeSystem="2.16.840.1.113883.6.1"'
LOINC_URI = "http://loinc.org"
CIM10 = 'codeSystem="2.16.840.1.113883.6.3"'


def _bundle(entries: list) -> dict:  # noqa: ANN001
    """The FHIR Bundle of a document's body entries (a document row first, as filed)."""
    bundle = to_bundle(PATIENT, _rows_read(entries))
    check_bundle(bundle)
    return bundle


def _codings(bundle: dict, resource_type: str) -> list[dict]:
    return [e["resource"] for e in bundle["entry"]
            if e["resource"]["resourceType"] == resource_type]


# -- nested observations keep the system of their code ------------------------------------------
def test_a_staging_and_its_t_n_m_are_exported_in_loinc() -> None:
    """A nested observation was described by its code string alone: the staging of a colon
    cancer went to Condition.stage.type and its T, N, M components as codings with no system
    (FHIR: a code without a system means nothing); they are LOINC's."""
    got = _entries(_section("72135-7", "Tumeur", STAGED_TUMOUR))
    staging = got[0].details["observations"][0]
    assert (staging["code"], staging["system"]) == ("21908-9", "LN")
    assert {p["system"] for p in staging["parts"]} == {"LN"}
    bundle = _bundle(got)
    (cancer,) = _codings(bundle, "Condition")
    (stage,) = cancer["stage"]
    assert stage["type"]["coding"][0]["system"] == LOINC_URI
    assessed = _resource(bundle, stage["assessment"][0]["reference"])
    assert {c["code"]["coding"][0]["system"] for c in assessed["component"]} == {LOINC_URI}


def test_a_local_code_spelled_like_a_loinc_staging_is_no_staging() -> None:
    """Two nested observations of one code string in two systems looked alike: a hospital's
    own questionnaire item '21908-9' (its local system) became the cancer's stage."""
    local = STAGED_TUMOUR.replace(f'code="21908-9" displayName="Stade TNM clinique" {LOINC}',
                                  'code="21908-9" displayName="Item 21908-9 du questionnaire" '
                                  'codeSystem="1.2.250.1.999.13.7"')
    got = _entries(_section("72135-7", "Tumeur", local))
    assert got[0].details["observations"][0]["system"] == "1.2.250.1.999.13.7"
    (cancer,) = _codings(_bundle(got), "Condition")
    assert "stage" not in cancer


def test_the_problem_a_procedure_was_done_for_is_exported_coded() -> None:
    """An IHE PCC internal reference (RSON) from a procedure to its problem kept the code
    of the problem but not its system: Procedure.reasonCode was a CIM-10 code in no system."""
    got = _entries(_section("47519-4", "Actes", f"""<entry><procedure classCode="PROC"
      moodCode="EVN"><templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.19"/>
      <id root="1.2.250.1.999.13" extension="PROC-1"/>
      <code code="DEQP003" codeSystem="1.2.250.1.213.2.5"
        displayName="Pose d'un stimulateur cardiaque définitif"/>
      <statusCode code="completed"/><effectiveTime value="20240212"/>
      <entryRelationship typeCode="RSON"><act classCode="ACT" moodCode="EVN">
        <templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.4.1"/><id root="1.2.250.1.999.4.41"/>
        <code code="I44.2" {CIM10} displayName="Bloc auriculoventriculaire complet"/>
      </act></entryRelationship></procedure></entry>"""))
    assert got[0].details["reasons"][0]["system"] == "CIM-10"
    (procedure,) = _codings(_bundle(got), "Procedure")
    (coding,) = procedure["reasonCode"][0]["coding"]
    assert (coding["code"], coding["system"]) == ("I44.2", "http://hl7.org/fhir/sid/icd-10")


# -- units: UCUM is case-sensitive -------------------------------------------------------------
def _stimulation(unit: str) -> str:
    """A session of electroconvulsive therapy (a CR-OP / CR of psychiatry) with the current
    delivered, a local observation nested in the procedure."""
    return f"""<entry><procedure classCode="PROC" moodCode="EVN">
      <templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.19"/>
      <id root="1.2.250.1.999.13" extension="ECT-4"/>
      <code code="AZRP001" codeSystem="1.2.250.1.213.2.5"
        displayName="Séance de sismothérapie sous anesthésie générale"/>
      <statusCode code="completed"/><effectiveTime value="20240412083000+0200"/>
      <entryRelationship typeCode="COMP"><observation classCode="OBS" moodCode="EVN">
        <code code="ECT-I" codeSystem="1.2.250.1.999.13.7" displayName="Intensité délivrée"/>
        <statusCode code="completed"/>
        <value xsi:type="PQ" value="0.9" unit="{unit}"/></observation></entryRelationship>
    </procedure></entry>"""


@pytest.mark.parametrize(("sent", "read"), [("A", "A"), ("uA", "uA"), ("µA", "µA")])
def test_an_ampere_is_not_a_year(sent: str, read: str) -> None:
    """The unit table was looked up without case: a current of 0.9 'A' (UCUM's ampere; a
    year is 'a') was filed as 0.9 year, and 'uA' (microampere) as arbitrary units (the
    French 'UA'). They stay as sent, not mapped, as an unknown unit does."""
    from normalizers.units import to_ucum

    (procedure,) = _entries(_section("47519-4", "Actes", _stimulation(sent)))
    assert procedure.details["observations"][0]["unit"] == read
    assert to_ucum(sent) == (read, False)


@pytest.mark.parametrize(("sent", "ucum"), [("a", "a"), ("an", "a"), ("UA", "[arb'U]"),
                                            ("MG/DL", "mg/dL"), ("S", "s")])
def test_units_of_another_case_still_read_as_before(sent: str, ucum: str) -> None:
    """Years written 'a' or 'an', arbitrary units 'UA', an upper-case legacy spelling (UCUM's
    case-insensitive form, in which 'S' is the second) keep their UCUM unit."""
    from normalizers.units import to_ucum

    assert to_ucum(sent) == (ucum, True)


# -- a procedure done, or planned, over a period keeps its end ---------------------------------
def _treatment(mood: str, period: str) -> str:
    """A CI-SIS PPS / FRCP treatment (IHE PCC procedure entry) with its effectiveTime."""
    return f"""<entry><procedure classCode="PROC" moodCode="{mood}">
      <templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.19"/>
      <id root="1.2.250.1.999.13" extension="TRT-{mood}"/>
      <code code="C15632" codeSystem="2.16.840.1.113883.3.26.1.1"
        displayName="Chimiothérapie conventionnelle"/>
      <statusCode code="{'completed' if mood == 'EVN' else 'active'}"/>{period}
    </procedure></entry>"""


def test_a_chemotherapy_given_from_may_to_july_keeps_its_end() -> None:
    """A procedure done over a period (low and high) was filed at its start alone: the
    chemotherapy of May to July 2019 read as given on 1 May; the export said so too. Its
    end is details.period_high and Procedure.performedPeriod's end."""
    (done,) = _entries(_section("47519-4", "Traitements", _treatment(
        "EVN", '<effectiveTime><low value="20190501"/><high value="20190701"/></effectiveTime>')))
    assert (done.effective, done.details["period_high"]) == ("2019-05-01", "2019-07-01")
    (procedure,) = _codings(_bundle([done]), "Procedure")
    assert procedure["performedPeriod"] == {"start": "2019-05-01", "end": "2019-07-01"}
    assert "performedDateTime" not in procedure


def test_an_operation_from_start_to_end_in_its_time_zone() -> None:
    """An operation's start and end, with the sender's offset (a hospital in Martinique)."""
    (done,) = _entries(_section("47519-4", "Actes", _treatment(
        "EVN", '<effectiveTime><low value="202403011015-0400"/>'
               '<high value="202403011140-0400"/></effectiveTime>')))
    assert (done.effective, done.details["period_high"]) == \
        ("2024-03-01T10:15-04:00", "2024-03-01T11:40-04:00")


def test_a_radiotherapy_planned_over_months_keeps_its_end() -> None:
    """A treatment planned from February to August (moodCode INT, CI-SIS FRCP's proposal):
    ServiceRequest.occurrencePeriod, not a date."""
    (planned,) = _entries(_section("18776-5", "Plan de traitement", _treatment(
        "INT", '<effectiveTime><low value="20190220"/><high value="20190820"/></effectiveTime>')))
    assert planned.type == "plan" and planned.details["period_high"] == "2019-08-20"
    (request,) = _codings(_bundle([planned]), "ServiceRequest")
    assert request["occurrencePeriod"] == {"start": "2019-02-20", "end": "2019-08-20"}


@pytest.mark.parametrize("period", [
    '<effectiveTime value="20190501"/>', '<effectiveTime><low value="20190501"/></effectiveTime>',
    '<effectiveTime><low value="20190501"/><high nullFlavor="UNK"/></effectiveTime>',
    '<effectiveTime><low value="20190501"/><high value="20190501"/></effectiveTime>'])
def test_a_procedure_at_one_time_has_no_period(period: str) -> None:
    """One instant, an open end, an end equal to the start: no period, as before."""
    (done,) = _entries(_section("47519-4", "Actes", _treatment("EVN", period)))
    assert done.effective == "2019-05-01" and "period_high" not in done.details
    (procedure,) = _codings(_bundle([done]), "Procedure")
    assert procedure["performedDateTime"] == "2019-05-01"


def test_corpus_pps_treatments_keep_their_end() -> None:
    data = corpus_path("cda", "CANCER-PPS_2022.01_Autopresentable.xml").read_bytes()
    msg = normalize_cda(parse_cda(data), data, "corpus")
    done = {(e.code, e.effective, e.details.get("period_high")) for e in msg.entries
            if e.type == "procedure"}
    assert ("MED-568", "2019-05-01", "2019-07-01") in done


# -- a coded value keeps its other codes ---------------------------------------------------------
SNOMED = 'codeSystem="2.16.840.1.113883.6.96"'
ADICAP = 'codeSystem="1.2.250.1.213.2.11" codeSystemName="ADICAP"'


def _pathology(value: str) -> str:
    """A CR-ACP diagnostic conclusion (IHE PaLM APSR problem organizer) on a colectomy."""
    return f"""<entry><organizer classCode="BATTERY" moodCode="EVN">
      <templateId root="1.3.6.1.4.1.19376.1.8.1.3.6"/>
      <id root="1.2.250.1.999.13" extension="ACP-ORG-1"/>
      <code code="22637-3" {LOINC} displayName="Conclusion diagnostique"/>
      <statusCode code="completed"/><effectiveTime value="20240315"/>
      <component><observation classCode="OBS" moodCode="EVN">
        <templateId root="1.3.6.1.4.1.19376.1.8.1.3.7"/>
        <id root="1.2.250.1.999.13" extension="ACP-OBS-1"/>
        <code code="22637-3" {LOINC} displayName="Diagnostic"/><statusCode code="completed"/>
        <effectiveTime value="20240315"/>{value}</observation></component>
    </organizer></entry>"""


def test_the_adicap_code_of_a_pathology_diagnosis_is_kept_beside_its_snomed_ct() -> None:
    """A coded value in SNOMED CT with its ADICAP translation (the French pathology coding
    the CR-ACP asks for) was filed with the SNOMED CT code alone: the ADICAP code was lost,
    in the store and in the export. It is value_code.translations and a second coding."""
    (result,) = _entries(_section("22637-3", "Conclusion", _pathology(
        f"""<value xsi:type="CD" code="35917007" {SNOMED} displayName="Adénocarcinome">
          <translation code="BHGSA7A0" {ADICAP}
            displayName="Adénocarcinome lieberkühnien"/></value>""")))
    assert result.details["value_code"] == {
        "code": "35917007", "system": "SNOMED-CT", "translations": [
            {"code": "BHGSA7A0", "system": "1.2.250.1.213.2.11",
             "display": "Adénocarcinome lieberkühnien"}]}
    (observation,) = [r for r in _codings(_bundle([result]), "Observation")
                      if "valueCodeableConcept" in r]
    assert [(c["system"], c["code"]) for c in
            observation["valueCodeableConcept"]["coding"]] == [
        ("http://snomed.info/sct", "35917007"), ("urn:oid:1.2.250.1.213.2.11", "BHGSA7A0")]


@pytest.mark.parametrize("value", [
    f'<value xsi:type="CD" code="35917007" {SNOMED} displayName="Adénocarcinome"/>',
    f'<value xsi:type="CD" nullFlavor="OTH"><originalText>Adénocarcinome</originalText>'
    f'<translation code="35917007" {SNOMED} displayName="Adénocarcinome"/></value>',
    f'<value xsi:type="CD" code="35917007" {SNOMED} displayName="Adénocarcinome">'
    f'<translation code="35917007" {SNOMED}/></value>'])
def test_a_value_with_no_other_code_has_no_translations(value: str) -> None:
    """One code, the code in translation only, a translation repeating the code: none."""
    (result,) = _entries(_section("22637-3", "Conclusion", _pathology(value)))
    assert result.details["value_code"]["code"] == "35917007"
    assert "translations" not in result.details["value_code"]


# -- a string value given by a reference into the narrative ---------------------------------------
def _yeast(value: str) -> str:
    """A mycology result of a CR-BIO whose words are in the section's narrative."""
    return f"""<entry typeCode="DRIV"><act classCode="ACT" moodCode="EVN">
      <templateId root="1.3.6.1.4.1.19376.1.3.1"/><code code="18725-2" {LOINC}/>
      <statusCode code="completed"/>
      <entryRelationship typeCode="COMP"><observation classCode="OBS" moodCode="EVN">
        <templateId root="1.3.6.1.4.1.19376.1.3.1.6"/>
        <id root="1.2.250.1.999.13" extension="MYCO-1"/>
        <code code="580-1" {LOINC} displayName="Champignons identifiés"/>
        <statusCode code="completed"/><effectiveTime value="20240312081500+0100"/>
        {value}</observation></entryRelationship></act></entry>"""


NARRATIVE = "<table><tr><td>Mycologie</td><td ID='res-myco'>Présence de rares levures</td>" \
    "</tr></table>"


def test_a_string_value_pointing_into_the_narrative_is_read_there() -> None:
    """An ST value holding only a reference to the narrative (ST has no reference by
    schema, but senders write it as they write an ED's) was filed without a value."""
    (result,) = _entries(_section("18725-2", NARRATIVE, _yeast(
        '<value xsi:type="ST"><reference value="#res-myco"/></value>')))
    assert result.value == "Présence de rares levures"


@pytest.mark.parametrize(("value", "read"), [
    ('<value xsi:type="ST">Absence de levures</value>', "Absence de levures"),
    ('<value xsi:type="ST">Absence de levures<reference value="#res-myco"/></value>',
     "Absence de levures"),
    ('<value xsi:type="ED"><reference value="#res-myco"/></value>',
     "Présence de rares levures"),
    ('<value xsi:type="ST"><reference value="#absent"/></value>', None)])
def test_a_string_values_own_words_come_first(value: str, read: str | None) -> None:
    """Its own text wins over a reference; a reference to nothing is no value."""
    (result,) = _entries(_section("18725-2", NARRATIVE, _yeast(value)))
    assert result.value == read


# -- an operation called off and one stopped midway -------------------------------------------
def _colonoscopy(status: str) -> str:
    return f"""<entry><procedure classCode="PROC" moodCode="EVN">
      <templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.19"/>
      <id root="1.2.250.1.999.13" extension="COLO-{status}"/>
      <code code="HHQE002" codeSystem="1.2.250.1.213.2.5"
        displayName="Coloscopie totale, avec franchissement de l'orifice iléocolique"/>
      <statusCode code="{status}"/><effectiveTime value="20240318"/></procedure></entry>"""


@pytest.mark.parametrize(("status", "aborted", "fhir"), [
    ("aborted", True, "stopped"), ("cancelled", False, "not-done"),
    ("completed", False, "completed")])
def test_a_procedure_stopped_midway_is_not_one_never_begun(status: str, aborted: bool,
                                                           fhir: str) -> None:
    """CDA 'aborted' (begun, stopped before its end: a colonoscopy stopped for a poor
    preparation) and 'cancelled' (called off before it began) were both filed 'cancelled'
    and exported as Procedure 'stopped': a colonoscopy never begun read as one begun. The
    entry's status stays 'cancelled' for both (dedupe, masking and status order unchanged);
    details.aborted tells them apart and the export says not-done or stopped."""
    (done,) = _entries(_section("47519-4", "Actes", _colonoscopy(status)))
    assert done.status == ("final" if status == "completed" else "cancelled")
    assert done.details.get("aborted", False) is aborted
    (procedure,) = _codings(_bundle([done]), "Procedure")
    assert procedure["status"] == fhir


# -- a statement named by its own text ---------------------------------------------------------
PICC = "<list><item><content ID='proc-9'>Pose d'une voie veineuse centrale à insertion " \
    "périphérique (PICC line), bras gauche</content></item></list>"


def _free_text_procedure(code: str, text: str) -> str:
    """A C-CDA / IHE PCC procedure entry named only by its text (no code of its own)."""
    return f"""<entry><procedure classCode="PROC" moodCode="EVN">
      <templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.19"/>
      <templateId root="2.16.840.1.113883.10.20.22.4.14"/>
      <id root="1.2.250.1.999.13" extension="PROC-9"/>{code}{text}
      <statusCode code="completed"/><effectiveTime value="20240301"/></procedure></entry>"""


@pytest.mark.parametrize("code", ['<code nullFlavor="UNK"/>', '<code nullFlavor="OTH"/>'])
def test_a_procedure_named_only_by_its_text_is_filed(code: str) -> None:
    """A procedure with no code (nullFlavor UNK or OTH) whose text points at the narrative
    was not filed ('naming nothing', said so): the PICC line was lost. It is filed under
    its words, unmapped."""
    (done,) = _entries(_section("47519-4", PICC, _free_text_procedure(
        code, '<text><reference value="#proc-9"/></text>')))
    assert (done.type, done.code, done.mapped) == ("procedure", None, False)
    assert done.display == "Pose d'une voie veineuse centrale à insertion périphérique " \
        "(PICC line), bras gauche"


def test_an_observation_named_by_its_text_keeps_its_value() -> None:
    """An exam finding with no code, its name in the statement's text and a value: it was
    not filed, its value lost."""
    (finding,) = _entries(_section("29545-1", "<paragraph ID='obs-9'>Signe de Murphy</paragraph>",
                                   """<entry><observation classCode="OBS" moodCode="EVN">
      <templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.13"/>
      <id root="1.2.250.1.999.13" extension="OBS-9"/><code nullFlavor="UNK"/>
      <text><reference value="#obs-9"/></text><statusCode code="completed"/>
      <effectiveTime value="20240301"/><value xsi:type="ST">positif</value>
    </observation></entry>"""))
    assert (finding.display, finding.value, finding.mapped) == ("Signe de Murphy", "positif",
                                                               False)


def test_a_long_text_names_a_procedure_without_refusing_the_document() -> None:
    """The words are cut to the display's size (a paragraph must not make the document
    FIELD_TOO_LONG)."""
    long = "Pose d'une chambre implantable. " * 40
    (done,) = _entries(_section("47519-4", "x", _free_text_procedure(
        '<code nullFlavor="OTH"/>', f"<text>{long}</text>")))
    assert done.display == long.strip()[:500]


@pytest.mark.parametrize("text", ["", '<text><reference value="#nowhere"/></text>',
                                  "<text>(texte libre)</text>"])
def test_a_procedure_with_no_code_nor_words_is_still_said_not_filed(text: str) -> None:
    """No code and no words (or a reference to nothing, or the template's placeholder):
    not filed, as before."""
    assert _entries(_section("47519-4", PICC, _free_text_procedure(
        '<code nullFlavor="UNK"/>', text))) == []


# -- when the document was written and signed, as every other time ----------------------------
@pytest.mark.parametrize(("sent", "iso"), [
    ("20240312120000+0100", "2024-03-12T12:00:00+01:00"), ("202403121200-0400",
                                                           "2024-03-12T12:00-04:00"),
    ("20240312", "2024-03-12"), ("12/03/2024", "12/03/2024")])
def test_the_authors_and_signers_times_are_iso(sent: str, iso: str) -> None:
    """The document's author and legal authenticator times were kept as HL7 TS text
    ('20240312120000+0100') among ISO times (the service event's, every entry's); they are
    ISO 8601 with their offset now. One that is no HL7 date stays as written."""
    head = HEAD.replace('<author><time value="20240312"/>', f'<author><time value="{sent}"/>')
    head = head.replace("<custodian>", f'<legalAuthenticator><time value="{sent}"/>'
                        '<signatureCode code="S"/><assignedEntity><id root="1.2.250.1.71.4.2.1" '
                        'extension="810000000002"/></assignedEntity></legalAuthenticator>'
                        "<custodian>", 1)
    data = (head + _section("18782-3", "Conclusion", "") + TAIL).encode()
    details = normalize_cda(parse_cda(data), data, "test").entries[0].details
    assert details["authors"][0]["time"] == iso
    assert details["legal_authenticator"]["time"] == iso
