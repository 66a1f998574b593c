"""CDA R2 documents the way other senders write them (round 16: results written as text,
who recorded a fact, documents referred to). Each test builds a small invented document
with one structure CDA R2 / CI-SIS / C-CDA allows, or runs an ANS example when
../shared/corpus is there, and checks what is filed against what a clinician reading the
document understands."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from normalizers.cda import normalize_cda
from normalizers.cda_text_values import text_quantity
from parsers.cda import parse_cda
from tests.conftest import corpus_path
from tests.test_cda_real_world import HEAD, TAIL, _entries, _section
from tests.test_cda_senders_round14 import _bundle, _resources

LOINC = 'codeSystem="2.16.840.1.113883.6.1"'


def _corpus(name: str):  # noqa: ANN202
    """The NormalizedMessage of one ANS example; the test skips when the corpus is absent."""
    data = corpus_path("cda", name).read_bytes()
    return normalize_cda(parse_cda(data), data, "corpus")


# -- a result below the limit written as text ---------------------------------------------------
def _crp(value: str) -> str:
    """A CI-SIS FR-Resultat-examens-de-biologie (IHE LAB) CRP whose value the LIS wrote as
    text, as the ANS's own CR-BIO example does ('<value xsi:type="ED">&lt;1.0 mg/L')."""
    return f"""<entry><observation classCode="OBS" moodCode="EVN">
      <templateId root="1.3.6.1.4.1.19376.1.3.1.6"/><templateId root="1.2.250.1.213.1.1.3.209"/>
      <id root="1.2.250.1.999.16" extension="CRP-1"/>
      <code code="1988-5" displayName="CRP [Masse/Volume] Sérum/Plasma" {LOINC}/>
      <statusCode code="completed"/><effectiveTime value="20240311083000+0100"/>{value}
      <interpretationCode code="N" codeSystem="2.16.840.1.113883.5.83"/>
      </observation></entry>"""


@pytest.mark.parametrize(("value", "comparator", "number", "unit"), [
    ('<value xsi:type="ST">&lt;0,5</value>', "<", 0.5, None),
    ('<value xsi:type="ST">&lt; 0.5 mg/L</value>', "<", 0.5, "mg/L"),
    ('<value xsi:type="ED">&lt;1.0 mg/L</value>', "<", 1.0, "mg/L"),
    ('<value xsi:type="ST">\u2265 160</value>', ">=", 160.0, None),
    ('<value xsi:type="ST">12,5 mg/L</value>', None, 12.5, "mg/L"),
])
def test_a_result_written_as_text_below_a_limit_is_a_compared_quantity(
        value: str, comparator: str | None, number: float, unit: str | None) -> None:
    """'<0,5' written in an ST or ED: it was filed as text only (no number, no comparator):
    out of every trend, a valueString in the export, while the same CRP sent by HL7v2 as an
    SN '<^0.5' has both. Now the number, the comparator and a unit the text gives; the
    text and its type stay as sent."""
    (crp,) = _entries(_section("30954-2", "Résultats", _crp(value)))
    assert (crp.value_num, crp.comparator, crp.unit) == (number, comparator, unit)
    assert crp.value_type in ("ST", "ED") and crp.value.strip()[-1] in "05L"
    (obs,) = _resources(_bundle([crp]), "Observation")
    quantity = obs["valueQuantity"]
    assert quantity["value"] == number
    assert quantity.get("comparator") == comparator


@pytest.mark.parametrize("text", ["négatif", "2", "<5 colonies", "1.250,5", "> 3 croix",
                                  "stade 2"])
def test_text_that_is_no_quantity_stays_text(text: str) -> None:
    """A word, a bare number (a class, a stage), a count of something that is no unit, or
    digits that could be grouped thousands: one reading is not certain, the text stays."""
    (crp,) = _entries(_section("30954-2", "Résultats",
                               _crp(f'<value xsi:type="ST">{text.replace("<", "&lt;")}</value>')))
    assert (crp.value, crp.value_num, crp.comparator) == (text, None, None)


@given(st.sampled_from(["<", ">", "<=", ">=", "\u2264", "\u2265"]),
       st.decimals(min_value=0, max_value=10**6, places=3, allow_nan=False),
       st.sampled_from(["", " "]), st.booleans())
def test_a_comparator_and_any_decimal_read_back(sign: str, number: Decimal, blank: str,
                                                comma: bool) -> None:
    """Whatever the number and however it is written (point or French comma, a blank after
    the sign or not), the comparator and the number are what was written."""
    written = f"{number:f}".replace(".", ",") if comma else f"{number:f}"
    said = text_quantity(f"{sign}{blank}{written}")
    assert said is not None
    assert said.number == number
    assert said.comparator == {"\u2264": "<=", "\u2265": ">="}.get(sign, sign)


def test_corpus_cr_bio_crp_written_as_text_has_its_number() -> None:
    """The ANS CR-BIO example writes its CRP '<1.0 mg/L' as an ED: now a quantity."""
    msg = _corpus("BIO-CR-BIO_2021.01_Auto-Presentable.xml")
    crp = [e for e in msg.entries if e.code == "1988-5" and e.value_type == "ED"]
    assert crp and all((e.value_num, e.comparator, e.unit) == (1.0, "<", "mg/L") for e in crp)
    assert any(w.startswith("CDA_TEXT_QUANTITY") for w in msg.warnings)
    assert not any("1.0" in w for w in msg.warnings)  # no value in the warnings


@pytest.mark.parametrize(("value", "comparator", "number", "unit"), [
    ('<value xsi:type="PQ" value="&gt;60" unit="mL/min/{1.73_m2}"/>', ">", 60.0,
     "mL/min/{1.73_m2}"),
    ('<value xsi:type="PQ" value="&lt;0,5" unit="mg/L"/>', "<", 0.5, "mg/L"),
    ('<value xsi:type="INT" value="&gt;=90"/>', ">=", 90.0, None),
])
def test_a_number_written_with_its_comparator_is_read(value: str, comparator: str,
                                                       number: float, unit: str | None) -> None:
    """An eGFR '>60' in a PQ's value attribute (invalid for xs:double, written so by LIS
    whose result is beyond the reported range): CDA_BAD_NUMBER, text without number, while
    the same as an IVL_PQ with one bound had both. Now the comparator and the number, the
    PQ's own unit, said as CDA_COMPARATOR_IN_NUMBER."""
    data = (HEAD + _section("30954-2", "Résultats", _crp(value)) + TAIL).encode()
    msg = normalize_cda(parse_cda(data), data, "test")
    (result,) = msg.entries[1:]
    assert (result.value_num, result.comparator, result.unit) == (number, comparator, unit)
    assert any(w.startswith("CDA_COMPARATOR_IN_NUMBER") for w in msg.warnings)
    assert not any(w.startswith("CDA_BAD_NUMBER") for w in msg.warnings)
    (obs,) = _resources(_bundle([result]), "Observation")
    assert obs["valueQuantity"]["comparator"] == comparator


@pytest.mark.parametrize(("text", "separator", "dilution"), [("1/160", "/", "160"),
                                                            ("1 : 128", ":", "128")])
def test_a_titre_written_as_text_is_a_ratio(text: str, separator: str, dilution: str) -> None:
    """A toxoplasmosis IgG titre written '1/160' in an ST: a valueString, while the same
    sent as an RTO or an HL7v2 ST (read as an SN) is a ratio. Now details.sn, exported as
    valueRatio; the text stays as sent."""
    (titre,) = _entries(_section("30954-2", "Résultats", _crp(
        f'<value xsi:type="ST">{text}</value>').replace('code="1988-5"', 'code="5206-8"')))
    assert titre.value == text and titre.value_num is None
    assert titre.details["sn"] == {"comparator": "", "num1": "1", "separator": separator,
                                   "num2": dilution}
    (obs,) = _resources(_bundle([titre]), "Observation")
    assert obs["valueRatio"] == {"numerator": {"value": 1.0},
                                 "denominator": {"value": float(dilution)}}


def test_a_titre_below_a_limit_stays_text() -> None:
    """'<1/20' has no ratio FHIR can hold with its comparator: text, as HL7v2 leaves it."""
    (titre,) = _entries(_section("30954-2", "Résultats",
                                 _crp('<value xsi:type="ST">&lt;1/20</value>')))
    assert "sn" not in titre.details and titre.value_num is None


# -- who recorded a fact: the nearest author -----------------------------------------------------
SPECIALIST = """<author><time value="20240301"/><assignedAuthor>
  <id root="1.2.250.1.71.4.2.1" extension="810000099999"/>
  <code code="SM04" codeSystem="1.2.250.1.71.1.2.5" displayName="Cardiologie"/>
  </assignedAuthor></author>"""
BIOLOGIST = """<author><time value="20240311120000+0100"/><assignedAuthor>
  <id root="1.2.250.1.71.4.2.1" extension="810000055555"/></assignedAuthor></author>"""
HTA = """<entry><observation classCode="OBS" moodCode="EVN">
  <templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.5"/>
  <id root="1.2.250.1.999.16" extension="P-HTA"/>
  <code code="55607006" codeSystem="2.16.840.1.113883.6.96"/><statusCode code="completed"/>
  <effectiveTime><low value="2019"/></effectiveTime>
  <value xsi:type="CD" code="I10" codeSystem="2.16.840.1.113883.6.3"
    displayName="Hypertension essentielle"/>{author}</observation></entry>"""


def _authored_section(section_author: str, entries: str, sub: str = "") -> str:
    return (f'<component><section><code code="11450-4" {LOINC}/><title>Problèmes</title>'
            f"<text>HTA</text>{section_author}{entries}{sub}</section></component>")


def test_a_problem_in_a_section_written_by_a_specialist_is_recorded_by_him() -> None:
    """CDA R2 Section.author conducts to the section's entries: the cardiologist wrote the
    problem list of the GP's summary. The hypertension read as recorded by nobody; it is
    recorded by the cardiologist, and exported so."""
    (hta,) = _entries(_authored_section(SPECIALIST, HTA.format(author="")))
    assert hta.details["recorded_by"] == [{"ids": ["1.2.250.1.71.4.2.1^810000099999"],
                                           "role": "SM04", "time": "2024-03-01"}]
    (res,) = _resources(_bundle([hta]), "Condition")
    assert res["recorder"]["identifier"]["value"] == "810000099999"
    assert res["recordedDate"] == "2024-03-01"


def test_an_entrys_own_author_wins_over_its_sections() -> None:
    """The entry names its author: it is the nearer one, the section's does not replace it;
    a nested section without author inherits its parent's."""
    sub = ('<component><section><code code="11450-4" ' + LOINC + '/><title>Antécédents'
           "</title><text>HTA</text>" + HTA.replace("P-HTA", "P-OLD").format(author="")
           + "</section></component>")
    own, inherited = _entries(_authored_section(SPECIALIST, HTA.format(author=BIOLOGIST),
                                                sub))
    assert own.details["recorded_by"][0]["ids"] == ["1.2.250.1.71.4.2.1^810000055555"]
    assert inherited.details["recorded_by"][0]["ids"] == ["1.2.250.1.71.4.2.1^810000099999"]


def test_the_results_of_a_battery_are_recorded_by_the_batterys_author() -> None:
    """An organizer's author conducts to its components (CDA R2 context conduction), before
    the section's: the biologist who authored the battery, not the section's writer."""
    battery = f"""<entry><organizer classCode="BATTERY" moodCode="EVN">
      <templateId root="1.3.6.1.4.1.19376.1.3.1.4"/>
      <code code="24326-1" {LOINC}/><statusCode code="completed"/>
      <effectiveTime value="20240311083000+0100"/>{BIOLOGIST}
      <component>{_crp('<value xsi:type="PQ" value="3" unit="mg/L"/>')[7:-8]}</component>
      </organizer></entry>"""
    (crp,) = _entries(f'<component><section><code code="30954-2" {LOINC}/><title>Résultats'
                      f"</title><text>CRP 3 mg/L</text>{SPECIALIST}{battery}"
                      "</section></component>")
    assert crp.details["recorded_by"][0]["ids"] == ["1.2.250.1.71.4.2.1^810000055555"]


def test_an_entry_in_a_section_without_author_names_none() -> None:
    """No author in the entry nor its section: the header's stays implicit (the document's
    own details name it), nothing is invented."""
    (hta,) = _entries(_authored_section("", HTA.format(author="")))
    assert "recorded_by" not in hta.details


# -- documents a fact refers to -----------------------------------------------------------------
COLONOSCOPY = f"""<entry><procedure classCode="PROC" moodCode="EVN">
  <templateId root="2.16.840.1.113883.10.20.22.4.14"/>
  <id root="1.2.250.1.999.16" extension="PR-COLO"/>
  <code code="73761001" codeSystem="2.16.840.1.113883.6.96" displayName="Coloscopie"/>
  <statusCode code="completed"/><effectiveTime value="20240105"/>
  <reference typeCode="REFR"><externalDocument classCode="DOC" moodCode="EVN">
    <id root="1.2.250.1.999.77" extension="CR-COLO-2024-001"/>
    <code code="28570-0" {LOINC} displayName="Compte rendu de procédure"/>
    <setId root="1.2.250.1.999.78" extension="SET-COLO"/><versionNumber value="2"/>
  </externalDocument></reference>{{nested}}</procedure></entry>"""
EXTERNAL_ENTRY = """<entryRelationship typeCode="REFR"><act classCode="ACT" moodCode="EVN">
  <templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.4"/><templateId root="1.2.250.1.213.1.1.3.35"/>
  <id root="1.2.250.1.999.16" extension="X1"/><code nullFlavor="NA"/>
  <reference typeCode="REFR"><externalDocument classCode="DOC" moodCode="EVN">
    <id root="1.2.250.1.999.79" extension="ANAPATH-2024-17"/>
    <text><reference value="https://dpi.example.fr/documents/ANAPATH-2024-17"/></text>
  </externalDocument></reference></act></entryRelationship>"""


def test_the_report_a_procedure_refers_to_is_kept() -> None:
    """CDA R2 act.reference (C-CDA procedure, CI-SIS entries): the procedure's own report,
    by id, type, set and version, and an IHE PCC external reference entry nested in it
    (the pathology report, by id and where it is) were dropped: the dossier could not find
    the document the procedure rests on."""
    (colo,) = _entries(_section("47519-4", "Actes", COLONOSCOPY.format(nested=EXTERNAL_ENTRY)))
    assert colo.details["external_references"] == [
        {"kind": "externalDocument", "type": "REFR", "id": "1.2.250.1.999.77^CR-COLO-2024-001",
         "code": {"code": "28570-0", "system": "LN", "display": "Compte rendu de procédure"},
         "set_id": "1.2.250.1.999.78^SET-COLO", "version": "2"},
        {"kind": "externalDocument", "type": "REFR", "id": "1.2.250.1.999.79^ANAPATH-2024-17",
         "url": "https://dpi.example.fr/documents/ANAPATH-2024-17"}]


def test_a_procedure_without_reference_says_none() -> None:
    (colo,) = _entries(_section("47519-4", "Actes", COLONOSCOPY.format(nested="").replace(
        COLONOSCOPY[COLONOSCOPY.index("<reference"):COLONOSCOPY.index("</reference>") + 12],
        "")))
    assert "external_references" not in colo.details


def test_corpus_references_of_the_ans_examples_are_kept() -> None:
    """The DLU's advance directives (an observation's externalDocument, where they are),
    the IPS-FR problem's guideline (a URL, no id) and the CARD-F-PRC document's external
    reference entry (on the document)."""
    dlu = _corpus("DLU-EHPAD-DLU_2022.01.xml")
    (directives,) = [e for e in dlu.entries if "external_references" in e.details]
    assert directives.code == "42348-3"
    assert directives.details["external_references"][0]["url"].startswith("ftp://")
    ips = _corpus("IPS-FR_2024.01.xml")
    assert any(r.get("url", "").endswith("ORPHA658.pdf") and "id" not in r
               for e in ips.entries for r in e.details.get("external_references", ()))
    card = _corpus("CARD-F-PRC-AVK_2022.01.xml")
    assert card.entries[0].details["external_references"][0]["id"] == \
        "A49FA706-28A1-418E-BC56-94070C9D3681"


def test_corpus_a_dispense_says_which_prescription_it_fulfils() -> None:
    """eDISP (IHE Pharm DIS): the prescription item a dispense executes (its id, its
    prescriber, the prescription document by XCRPT) was skipped."""
    msg = _corpus("eDISP-MED_2024.01.xml")
    dispensed = [e for e in msg.entries if e.details.get("dispensed")]
    assert dispensed
    for e in dispensed:
        fulfilled = e.details["prescription"]
        assert fulfilled["item"]
        assert fulfilled["prescribed_by"][0]["ids"] == ["1.2.250.1.71.4.2.1^801234567897"]
        assert fulfilled["documents"] == [{"kind": "externalDocument", "type": "XCRPT",
                                           "id": "1.2.250.1.213.1.1.1.39.12345.1"}]


def test_corpus_a_reference_into_the_narrative_is_its_words_not_a_url() -> None:
    """The CI-SIS PPS writes each referenced document's text as '#document-ref-1', a
    pointer into its narrative: the words there, not a location to fetch."""
    refs = _corpus("CANCER-PPS_2022.01_Autopresentable.xml").entries[0] \
        .details["external_references"]
    assert refs[0] == {"kind": "externalDocument", "type": "REFR",
                       "id": "1.2.3.4.567.8.9.10^FRCP-2021-00001-1",
                       "text": "FRCP-2021-00001-1 (1.2.3.4.567.8.9.10)."}
    assert not any("url" in r for r in refs)


# -- a problem that ended on a day nobody knows ----------------------------------------------------
def _asthma(concern: str, high: str, status: str = "") -> str:
    """An IHE PCC / CI-SIS concern holding a problem whose end date is unknown."""
    return f"""<entry><act classCode="ACT" moodCode="EVN">
      <templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.5.2"/>
      <templateId root="2.16.840.1.113883.10.20.1.27"/>
      <id root="1.2.250.1.999.16" extension="C-ASTHME"/><code nullFlavor="NA"/>
      <statusCode code="{concern}"/><effectiveTime><low value="2010"/></effectiveTime>
      <entryRelationship typeCode="SUBJ"><observation classCode="OBS" moodCode="EVN">
        <templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.5"/>
        <id root="1.2.250.1.999.16" extension="P-ASTHME"/>
        <code code="282291009" codeSystem="2.16.840.1.113883.6.96"/>
        <statusCode code="completed"/>
        <effectiveTime><low value="2010"/>{high}</effectiveTime>
        <value xsi:type="CD" code="J45.9" codeSystem="2.16.840.1.113883.6.3"
          displayName="Asthme"/>{status}</observation></entryRelationship></act></entry>"""


ACTIVE_STATUS = """<entryRelationship typeCode="REFR"><observation classCode="OBS" moodCode="EVN">
  <templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.1.1"/>
  <code code="33999-4" codeSystem="2.16.840.1.113883.6.1"/><statusCode code="completed"/>
  <value xsi:type="CD" code="55561003" codeSystem="2.16.840.1.113883.6.96"/></observation>
  </entryRelationship>"""


def test_a_problem_ended_on_an_unknown_day_is_resolved() -> None:
    """IHE PCC and C-CDA 2.1: a resolved problem whose resolution date is unknown has
    effectiveTime/high nullFlavor UNK. It read as no end at all: under a concern still
    followed (active) the asthma was exported active. Now resolved, abatement 'unknown'."""
    (asthma,) = _entries(_section("11450-4", "Problèmes",
                                  _asthma("active", '<high nullFlavor="UNK"/>')))
    assert asthma.details["resolved_date_unknown"] is True
    assert "resolved" not in asthma.details
    (res,) = _resources(_bundle([asthma]), "Condition")
    assert res["clinicalStatus"]["coding"][0]["code"] == "resolved"
    assert res["abatementString"] == "unknown"
    assert "abatementDateTime" not in res


@pytest.mark.parametrize("high", ["", '<high nullFlavor="NI"/>'])
def test_a_problem_without_a_known_end_stays_as_its_concern_says(high: str) -> None:
    """No high, or one that says nothing ('no information'): the problem has not been said
    to end; the active concern's word stands."""
    (asthma,) = _entries(_section("11450-4", "Problèmes", _asthma("active", high)))
    assert "resolved_date_unknown" not in asthma.details
    (res,) = _resources(_bundle([asthma]), "Condition")
    assert res["clinicalStatus"]["coding"][0]["code"] == "active"
    assert "abatementString" not in res


def test_an_unknown_end_the_problems_own_status_contradicts_keeps_the_status() -> None:
    """The problem's own status observation says active: the sender's word is kept, and
    no abatement is given with it (R4 con-4)."""
    (asthma,) = _entries(_section("11450-4", "Problèmes", _asthma(
        "active", '<high nullFlavor="UNK"/>', ACTIVE_STATUS)))
    (res,) = _resources(_bundle([asthma]), "Condition")
    assert res["clinicalStatus"]["coding"][0]["code"] == "active"
    assert "abatementString" not in res


# -- images no entry holds ------------------------------------------------------------------
JPEG = "/9j/4AAQSkZJRgABAQEASABIAAD/2wBDAP//////////////////////////////////////////2Q=="


def _document(*sections: str):  # noqa: ANN202
    data = (HEAD + "".join(sections) + TAIL).encode()
    return normalize_cda(parse_cda(data), data, "test")


def test_an_image_a_section_holds_is_listed_on_the_document() -> None:
    """An observationMedia as a section's entry (CI-SIS FR-Image-illustrative; the eP-MED
    2D code) and as a component of an organizer that is no battery (OPH-CR-RTN: the
    retinographies of each eye) was dropped without a word: the dossier did not know the
    document held images. Where they are, by ID, type and size, is on the document."""
    image = (f'<observationMedia classCode="OBS" moodCode="EVN" ID="fond-oeil-od">'
             f'<value mediaType="image/jpeg" representation="B64">{JPEG}</value>'
             "</observationMedia>")
    cluster = (f'<entry><organizer classCode="CLUSTER" moodCode="EVN"><code code="PHOTOS" '
               f'codeSystem="1.2.250.1.999.3"/><statusCode code="completed"/>'
               f"<component>{image.replace('-od', '-og')}</component></organizer></entry>")
    msg = _document(_section("55113-5", "Images", f"<entry>{image}</entry>" + cluster))
    media = msg.entries[0].details["media"]
    assert [(m["id"], m["media_type"], m["section"]) for m in media] == [
        ("fond-oeil-od", "image/jpeg", "55113-5"), ("fond-oeil-og", "image/jpeg", "55113-5")]
    assert all(m["bytes"] > 0 and JPEG not in str(m) for m in media)


def test_a_batterys_image_stays_the_batterys_only() -> None:
    """An electrophoresis curve in its battery (CR-BIO) is read there, not again on the
    document."""
    image = (f'<component><observationMedia classCode="OBS" moodCode="EVN" ID="courbe">'
             f'<value mediaType="image/jpeg" representation="B64">{JPEG}</value>'
             "</observationMedia></component>")
    battery = f"""<entry><organizer classCode="BATTERY" moodCode="EVN">
      <templateId root="1.3.6.1.4.1.19376.1.3.1.4"/>
      <code code="24351-9" {LOINC}/><statusCode code="completed"/>
      <effectiveTime value="20240311083000+0100"/>
      <component>{_crp('<value xsi:type="PQ" value="3" unit="mg/L"/>')[7:-8]}</component>
      {image}</organizer></entry>"""
    msg = _document(_section("30954-2", "Résultats", battery))
    assert "media" not in msg.entries[0].details
    assert msg.entries[1].details["panel"]["media"][0]["id"] == "courbe"


# -- why a visit took place is no problem of its own ------------------------------------------
def _visit(reason: str) -> str:
    """A C-CDA Encounter Activity (a consultation for a cough) with its reason (RSON)."""
    return f"""<entry><encounter classCode="ENC" moodCode="EVN">
      <templateId root="2.16.840.1.113883.10.20.22.4.49" extension="2015-08-01"/>
      <id root="1.2.250.1.999.16" extension="ENC-1"/>
      <code code="AMB" codeSystem="2.16.840.1.113883.5.4" displayName="Consultation"/>
      <effectiveTime value="20240105"/>
      <entryRelationship typeCode="RSON">{reason}</entryRelationship></encounter></entry>"""


INDICATION = """<observation classCode="OBS" moodCode="EVN">
  <templateId root="2.16.840.1.113883.10.20.22.4.19" extension="2014-06-09"/>
  <id root="1.2.250.1.999.16" extension="IND-1"/>
  <code code="75321-0" codeSystem="2.16.840.1.113883.6.1" displayName="Clinical finding"/>
  <statusCode code="completed"/>
  <value xsi:type="CD" code="R05" codeSystem="2.16.840.1.113883.6.3" displayName="Toux"/>
  </observation>"""


def test_the_reason_for_a_visit_is_the_visits_not_a_problem() -> None:
    """C-CDA Indication under RSON: the cough the patient came for was read as the visit's
    reason and filed a second time as an undated problem 'Toux' of the problem list (the
    CIM-10 value made it one). A medication's or a procedure's indication was already
    read as their reason only; a visit's now too."""
    (visit,) = _entries(_section("46240-8", "Rencontres", _visit(INDICATION)))
    assert visit.type == "encounter"
    assert visit.details["diagnoses"] == [{"role": "reason", "code": "R05", "system": "CIM-10",
                                           "display": "Toux"}]


def test_a_problem_entry_given_as_a_visits_reason_is_still_a_problem() -> None:
    """A statement with a template of its own (a C-CDA Problem Observation) under RSON is
    a fact of its own: still filed, and the visit's reason."""
    problem = INDICATION.replace("2.16.840.1.113883.10.20.22.4.19",
                                 "2.16.840.1.113883.10.20.22.4.4")
    visit, cough = _entries(_section("46240-8", "Rencontres", _visit(problem)))
    assert (visit.type, cough.type, cough.code) == ("encounter", "problem", "R05")
    assert cough.details["visit"] == {"key": visit.key, "role": "reason"}


def test_a_diagnosis_made_at_a_visit_says_which_visit() -> None:
    """C-CDA Encounter Diagnosis (4.80) under the encounter: its problem was filed as one
    found anywhere; it now names the visit (details.visit) with the role 'diagnosis'."""
    diagnosis = """<act classCode="ACT" moodCode="EVN">
      <templateId root="2.16.840.1.113883.10.20.22.4.80" extension="2015-08-01"/>
      <code code="29308-4" codeSystem="2.16.840.1.113883.6.1"/>
      <entryRelationship typeCode="SUBJ">""" + INDICATION.replace(
        "2.16.840.1.113883.10.20.22.4.19", "2.16.840.1.113883.10.20.22.4.4").replace(
        "R05", "J20.9").replace("Toux", "Bronchite aiguë") + "</entryRelationship></act>"
    visit, bronchitis = _entries(_section("46240-8", "Rencontres", _visit(
        INDICATION + "</entryRelationship><entryRelationship typeCode=\"COMP\">" + diagnosis)))
    assert [d["code"] for d in visit.details["diagnoses"]] == ["R05", "J20.9"]
    assert (bronchitis.code, bronchitis.details["visit"]) == (
        "J20.9", {"key": visit.key, "role": "diagnosis"})
