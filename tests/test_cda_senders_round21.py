"""CDA R2 documents the way other senders write them (round 21: negations and null values,
value types, interpretations, authors). Each test builds a small invented document with one
structure C-CDA R2.1 or the CI-SIS templates allow, with their templateIds, and checks what
is filed against what a clinician reading the document understands.

Found wrong and fixed here: a problem whose diagnosis is a nullFlavor ('no information')
was filed as a problem named 'Problem', and one named only in the narrative lost its words;
an allergy of no type to no substance was an allergy 'ASSERTION'; a document by an
organization only (or by a lab's middleware for it) had no performer; SNOMED CT
interpretation codes were filed as bare codes, and a nullFlavor'd one lost its words; 'once a
day at 08:00' lost its hour. Checked right and kept so: negated allergies, problems,
medications, vaccinations and procedures; CO, RTO_PQ_PQ, one-sided IVL_PQ, PQ translations,
ED/ST narrative references, INT, BL, REAL values; IVL_PQ doses, PIVL_TS with IVL_TS, INT vs
EVN medications, CIS/CIP/ATC translations; device authors, languageCode en-US."""

from __future__ import annotations

from dataclasses import asdict

import pytest

from dossiers.fhir import to_bundle
from normalizers.cda import normalize_cda
from parsers.cda import parse_cda
from tests.test_cda_real_world import HEAD, TAIL, _entries, _section
from tests.test_fhir_export import check_bundle

SNOMED = 'codeSystem="2.16.840.1.113883.6.96"'
PATIENT = {"id": 1, "family": "ESSAI", "given": "Jeanne", "birth_date": "1962-04-15",
           "sex": "F", "ins": None}
LOINC = 'codeSystem="2.16.840.1.113883.6.1"'


def _normalized(*sections: str, head: str = HEAD):  # noqa: ANN202
    data = (head + "".join(sections) + TAIL).encode()
    return normalize_cda(parse_cda(data), data, "test")


# -- a problem whose diagnosis is a nullFlavor -------------------------------------------------
def _problem(value: str, text: str = "") -> str:
    """C-CDA R2.1 Problem Concern Act (4.3) holding a Problem Observation (4.4)."""
    return f"""<entry><act classCode="ACT" moodCode="EVN">
      <templateId root="2.16.840.1.113883.10.20.22.4.3" extension="2015-08-01"/>
      <id root="1.2.250.1.999.8" extension="PC1"/>
      <code code="CONC" codeSystem="2.16.840.1.113883.5.6"/><statusCode code="active"/>
      <effectiveTime><low value="20190301"/></effectiveTime>
      <entryRelationship typeCode="SUBJ"><observation classCode="OBS" moodCode="EVN">
        <templateId root="2.16.840.1.113883.10.20.22.4.4" extension="2015-08-01"/>
        <id root="1.2.250.1.999.8" extension="PO1"/>
        <code code="55607006" {SNOMED} displayName="Problem">
          <translation code="75326-9" {LOINC} displayName="Problem"/></code>{text}
        <statusCode code="completed"/><effectiveTime><low value="20190301"/></effectiveTime>
        {value}</observation></entryRelationship></act></entry>"""


@pytest.mark.parametrize("flavor", ["NI", "UNK", "ASKU"])
def test_a_problem_whose_diagnosis_is_a_null_flavor_is_not_a_problem(flavor: str) -> None:
    """'No information on the problems' (value nullFlavor NI, as C-CDA R2.1 EHRs write an
    empty problem list that still needs one entry) was filed as a problem 'Problem': the
    dossier's problem list showed a diagnosis where the sender said it knew none."""
    msg = _normalized(_section("11450-4", "Pas d'information sur les problèmes",
                               _problem(f'<value xsi:type="CD" nullFlavor="{flavor}"/>')))
    assert [e.type for e in msg.entries] == ["document"]
    (warning,) = [w for w in msg.warnings if w.startswith("CDA_NO_INFORMATION")]
    assert f"nullFlavor '{flavor}'" in warning and "/section/entry/act" in warning


def test_a_problem_named_only_in_its_text_keeps_the_words_as_its_diagnosis() -> None:
    """Value nullFlavor OTH and the diagnosis in the statement's text (a reference into the
    narrative): the words are the problem; it was filed as 'Problem', the hypertension lost."""
    (entry,) = _entries(_section(
        "11450-4", '<list><item ID="pb1">Hypertension artérielle essentielle</item></list>',
        _problem('<value xsi:type="CD" nullFlavor="OTH"/>',
                 '<text><reference value="#pb1"/></text>')))
    assert (entry.type, entry.code, entry.display, entry.mapped) == (
        "problem", None, "Hypertension artérielle essentielle", False)
    assert entry.effective == "2019-03-01"
    assert entry.details["observation_code"] == "75326-9"


def test_a_coded_problem_and_a_negated_one_are_unchanged() -> None:
    """What the rule is not about: a coded diagnosis, and 'no known problems' (negated)."""
    coded = _problem('<value xsi:type="CD" code="I10" codeSystem="2.16.840.1.113883.6.3" '
                     'displayName="Hypertension essentielle"/>')
    negated = _problem(f'<value xsi:type="CD" code="55607006" {SNOMED}/>').replace(
        '<observation classCode="OBS" moodCode="EVN">',
        '<observation classCode="OBS" moodCode="EVN" negationInd="true">').replace(
        "PC1", "PC2").replace("PO1", "PO2")
    got = _entries(_section("11450-4", "x", coded + negated))
    assert [(e.type, e.code) for e in got] == [("problem", "I10"),
                                               ("absence", "no-known-problems")]


# -- a document written by an organization, or by a device for it ------------------------------
ORIGINAL_AUTHOR = HEAD[HEAD.index("<author>"):HEAD.index("</author>") + len("</author>")]
HOSPITAL = """<author><time value="20240312101500+0100"/><assignedAuthor><id nullFlavor="NA"/>
    <representedOrganization><id root="1.2.250.1.71.4.2.2" extension="1120000016"/>
      <name>Centre hospitalier de Rodez – Service de médecine polyvalente</name>
    </representedOrganization></assignedAuthor></author>"""
MIDDLEWARE = """<author><time value="20240312101500+0100"/><assignedAuthor>
    <id root="1.2.250.1.999.77" extension="AUTOMATE-3"/>
    <assignedAuthoringDevice><manufacturerModelName>Cobas 8000</manufacturerModelName>
      <softwareName>Middleware Biologie 4.2</softwareName></assignedAuthoringDevice>
    <representedOrganization><id root="1.2.250.1.71.4.2.2" extension="1690012345"/>
      <name>Laboratoire de biologie médicale Sainte-Anne</name></representedOrganization>
  </assignedAuthor></author>"""


def _document_by(*authors: str):  # noqa: ANN202
    """The document entry of a document whose header names these authors, in order."""
    head = HEAD.replace(ORIGINAL_AUTHOR, "".join(authors))
    return _normalized(_section("11450-4", "Néant", ""), head=head).entries[0]


@pytest.mark.parametrize("authors", [(HOSPITAL,), (HOSPITAL, MIDDLEWARE), (MIDDLEWARE, HOSPITAL)])
def test_a_document_by_an_organization_is_performed_by_it(authors: tuple[str, ...]) -> None:
    """An author that is an organization only (assignedAuthor/id nullFlavor NA, the FINESS
    in representedOrganization: a hospital's document service) left the document with no
    performer; its name, the only words saying who wrote it, was dropped."""
    document = _document_by(*authors)
    assert document.performer == "1.2.250.1.71.4.2.2^1120000016"
    by_hospital = next(a for a in document.details["authors"] if not a["ids"])
    assert by_hospital == {"ids": [], "organization": ["1.2.250.1.71.4.2.2^1120000016"],
                           "organization_name": "Centre hospitalier de Rodez – Service de "
                                                "médecine polyvalente",
                           "time": "2024-03-12T10:15:00+01:00"}


def test_a_document_released_by_a_labs_middleware_is_the_labs() -> None:
    """A CR-BIO released by the lab's middleware, signed by no one: the device is no
    performer (tests/test_cda_international.py), the laboratory it writes for is."""
    document = _document_by(MIDDLEWARE)
    assert document.performer == "1.2.250.1.71.4.2.2^1690012345"
    assert document.details["authors"][0]["organization_name"] == \
        "Laboratoire de biologie médicale Sainte-Anne"
    assert document.details["authors"][0]["device"] == ["Cobas 8000", "Middleware Biologie 4.2"]


def test_a_person_author_stays_the_performer_and_keeps_no_organization_name() -> None:
    """What the rule is not about: a person's document, its organization named by id only."""
    person = ORIGINAL_AUTHOR.replace(
        "</assignedAuthor>", "<assignedPerson><name><family>Lefèvre</family></name>"
        "</assignedPerson><representedOrganization><id root=\"1.2.250.1.71.4.2.2\" "
        "extension=\"1120000016\"/><name>CH Rodez</name></representedOrganization>"
        "</assignedAuthor>")
    document = _document_by(person, HOSPITAL)
    assert document.performer == "1.2.250.1.71.4.2.1^810000000001"
    assert "organization_name" not in document.details["authors"][0]


# -- interpretation codes of another code system than ObservationInterpretation --------------
def _result(interpretation: str, value: str = '<value xsi:type="PQ" value="14.2" unit="mmol/L"/>',
            code: str = "2345-7", name: str = "Glucose [Moles/volume] in Serum or Plasma") -> str:
    """C-CDA R2.1 Result Organizer (4.1) with one Result Observation (4.2)."""
    return f"""<entry><organizer classCode="BATTERY" moodCode="EVN">
      <templateId root="2.16.840.1.113883.10.20.22.4.1" extension="2015-08-01"/>
      <id root="1.2.250.1.999.9" extension="ORG-1"/>
      <code code="24323-8" {LOINC} displayName="Bilan métabolique"/>
      <statusCode code="completed"/><effectiveTime value="20240311083000+0100"/>
      <component><observation classCode="OBS" moodCode="EVN">
        <templateId root="2.16.840.1.113883.10.20.22.4.2" extension="2015-08-01"/>
        <id root="1.2.250.1.999.9" extension="RES-1"/>
        <code code="{code}" {LOINC} displayName="{name}"/>
        <statusCode code="completed"/><effectiveTime value="20240311083000+0100"/>
        {value}{interpretation}</observation></component></organizer></entry>"""


@pytest.mark.parametrize(("sent", "meant", "local"), [
    (f'<interpretationCode code="281302008" {SNOMED} displayName="Above reference range"/>',
     "H", "281302008"),
    (f'<interpretationCode code="62482003" {SNOMED} displayName="Low"/>', "L", "62482003"),
    (f'<interpretationCode code="LOCAL-HAUT" codeSystem="1.2.250.1.999.3.2">'
     f'<translation code="281302008" {SNOMED}/></interpretationCode>', "H", "LOCAL-HAUT"),
], ids=["above-range", "low", "local-with-snomed-translation"])
def test_a_snomed_interpretation_is_read_as_the_flag_it_means(sent: str, meant: str,
                                                              local: str) -> None:
    """IPS and some C-CDA exporters send SNOMED CT qualifiers as interpretation: the result
    was filed flagged '281302008', exported to FHIR as that text, and differed from the same
    result sent by HL7v2 with OBX-8 'H'. The code sent is kept."""
    (result,) = [e for e in _entries(_section("30954-2", "Glycémie", _result(sent)))
                 if e.type == "lab_result"]
    assert result.interpretation == meant
    assert result.details["interpretation_local"] == [local]


def test_a_v3_and_a_v2_table_0078_flag_are_unchanged() -> None:
    """What the rule is not about: ObservationInterpretation and HL7 table 0078 codes."""
    got = [e for e in _entries(
        _section("30954-2", "x", _result(
            '<interpretationCode code="HH" codeSystem="2.16.840.1.113883.5.83"/>')),
        _section("30954-2", "x", _result(
            '<interpretationCode code="L" codeSystem="2.16.840.1.113883.12.78"/>').replace(
            "RES-1", "RES-2").replace("ORG-1", "ORG-2")))
        if e.type == "lab_result"]
    assert [(e.interpretation, e.details.get("interpretation_local")) for e in got] == [
        ("HH", None), ("L", None)]


def test_an_interpretation_in_words_only_is_kept_in_words() -> None:
    """nullFlavor OTH, originalText 'Élevé' (in the narrative): the lab's word was dropped
    and the result filed as if it had none; kept as an HL7v2 flag no table lists is."""
    sent = ('<interpretationCode nullFlavor="OTH"><originalText><reference value="#int1"/>'
            '</originalText></interpretationCode>')
    (result,) = [e for e in _entries(_section(
        "30954-2", '<table><tbody><tr><td ID="int1">Élevé</td></tr></tbody></table>',
        _result(sent))) if e.type == "lab_result"]
    assert result.interpretation == "Élevé"
    silent = sent.replace('<originalText><reference value="#int1"/></originalText>', "")
    (result,) = [e for e in _entries(_section("30954-2", "x", _result(silent)))
                 if e.type == "lab_result"]
    assert result.interpretation is None
    # words with no nullFlavor are not read (CANCER-D2LM-FIN: a count of relatives there)
    count = sent.replace(' nullFlavor="OTH"', "")
    (result,) = [e for e in _entries(_section(
        "30954-2", '<table><tbody><tr><td ID="int1">2</td></tr></tbody></table>',
        _result(count))) if e.type == "lab_result"]
    assert result.interpretation is None


# -- an allergy that names nothing -------------------------------------------------------------
def _allergy(value: str, agent: str, ident: str = "AO1") -> str:
    """C-CDA R2.1 Allergy Concern Act (4.30) holding an Allergy - Intolerance Observation
    (4.7), the substance in its consumable participant."""
    return f"""<entry><act classCode="ACT" moodCode="EVN">
      <templateId root="2.16.840.1.113883.10.20.22.4.30" extension="2015-08-01"/>
      <id root="1.2.250.1.999.7" extension="C-{ident}"/>
      <code code="CONC" codeSystem="2.16.840.1.113883.5.6"/><statusCode code="active"/>
      <entryRelationship typeCode="SUBJ"><observation classCode="OBS" moodCode="EVN">
        <templateId root="2.16.840.1.113883.10.20.22.4.7" extension="2014-06-09"/>
        <id root="1.2.250.1.999.7" extension="{ident}"/>
        <code code="ASSERTION" codeSystem="2.16.840.1.113883.5.4"/>
        <statusCode code="completed"/>{value}
        <participant typeCode="CSM"><participantRole classCode="MANU">
          <playingEntity classCode="MMAT">{agent}</playingEntity></participantRole>
        </participant></observation></entryRelationship></act></entry>"""


def test_an_allergy_of_no_type_to_no_substance_is_not_an_allergy() -> None:
    """'No information on allergies' written as an allergy whose type and substance are both
    nullFlavor NI: filed as an allergy 'ASSERTION' to nothing, in the allergy list."""
    msg = _normalized(_section("48765-2", "Allergies : pas d'information",
                               _allergy('<value xsi:type="CD" nullFlavor="NI"/>',
                                        '<code nullFlavor="NI"/>')))
    assert [e.type for e in msg.entries] == ["document"]
    (warning,) = [w for w in msg.warnings if w.startswith("CDA_NO_INFORMATION")]
    assert "an allergy statement" in warning and "nullFlavor 'NI'" in warning


def test_allergies_that_say_something_are_still_filed() -> None:
    """What the rule is not about: an allergy to an unknown substance (the type is said),
    one whose substance is in words only, one whose substance is coded."""
    typed = f'<value xsi:type="CD" code="419199007" {SNOMED}/>'
    unknown = '<value xsi:type="CD" nullFlavor="NI"/>'
    got = _entries(_section(
        "48765-2", '<list><item ID="al2">Pollen de bouleau</item></list>',
        _allergy(typed, '<code nullFlavor="UNK"/>', "AO1")
        + _allergy(unknown, '<code nullFlavor="OTH"><originalText><reference value="#al2"/>'
                            "</originalText></code>", "AO2")
        + _allergy(unknown, '<code code="J01CA04" codeSystem="2.16.840.1.113883.6.73" '
                            'displayName="amoxicilline"/>', "AO3")))
    assert [(e.type, e.code) for e in got] == [("allergy", "419199007"),
                                               ("allergy", "ASSERTION"),
                                               ("allergy", "J01CA04")]
    assert got[1].details["allergen_text"] == "Pollen de bouleau"


# -- a medication taken once a day at a set hour -----------------------------------------------
def _amlodipine(times: str) -> str:
    """C-CDA R2.1 Medication Activity (4.16), the product a Medication Information (4.23)."""
    return f"""<entry><substanceAdministration classCode="SBADM" moodCode="EVN">
      <templateId root="2.16.840.1.113883.10.20.22.4.16" extension="2014-06-09"/>
      <id root="1.2.250.1.999.10" extension="MED-1"/><statusCode code="active"/>
      <effectiveTime xsi:type="IVL_TS"><low value="20240301"/></effectiveTime>{times}
      <doseQuantity value="1"/>
      <consumable><manufacturedProduct classCode="MANU">
        <templateId root="2.16.840.1.113883.10.20.22.4.23" extension="2014-06-09"/>
        <manufacturedMaterial><code code="197361" codeSystem="2.16.840.1.113883.6.88"
          displayName="amlodipine 5 MG Oral Tablet"/></manufacturedMaterial>
      </manufacturedProduct></consumable></substanceAdministration></entry>"""


def _pivl(phase: str, specified: str = "false") -> str:
    return (f'<effectiveTime xsi:type="PIVL_TS" institutionSpecified="{specified}" '
            f'operator="A"><phase><low value="{phase}"/><width value="10" unit="min"/>'
            '</phase><period value="1" unit="d"/></effectiveTime>')


def test_once_a_day_at_eight_keeps_its_hour() -> None:
    """'Once a day at 08:00' (C-CDA R2.1 Medication Frequency: phase low 198701010800,
    period 1 d) was filed 'every 1 d', the hour dropped; two such times already kept theirs
    (IHE PCC 'matin et soir')."""
    (med,) = _entries(_section("10160-0", "Amlodipine 5 mg le matin",
                               _amlodipine(_pivl("198701010800"))))
    assert (med.details["frequency"], med.details["times_of_day"]) == ("every 1 d", ["08:00"])
    bundle = to_bundle(PATIENT, [{**asdict(med), "id": 1}])
    check_bundle(bundle)
    (statement,) = [e["resource"] for e in bundle["entry"]
                    if e["resource"]["resourceType"] == "MedicationStatement"]
    repeat = statement["dosage"][0]["timing"]["repeat"]
    assert (repeat["frequency"], repeat["period"], repeat["periodUnit"],
            repeat["timeOfDay"]) == (1, 1, "d", ["08:00:00"])


@pytest.mark.parametrize(("phase", "specified"), [("19870101", "false"),
                                                  ("198701010800", "true")])
def test_a_phase_with_no_hour_or_left_to_the_ward_has_no_time_of_day(phase: str,
                                                                     specified: str) -> None:
    """A phase dated to the day says no hour; institutionSpecified says the ward sets it."""
    (med,) = _entries(_section("10160-0", "x", _amlodipine(_pivl(phase, specified))))
    assert "times_of_day" not in med.details
