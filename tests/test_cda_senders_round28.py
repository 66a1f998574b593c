"""CDA R2 documents from hospitals we have not seen (round 28). Each test builds a small
document the way a French laboratory or hospital, or an EHR abroad, writes it with the
structures CDA R2 / IHE LAB / CI-SIS / C-CDA R2.1 allow, and checks what is filed against
what a clinician reading it understands.

Found wrong and fixed here: the results of a battery over a period (a 24-hour urine from
08:00 to 08:00) that state no time of their own inherited its start and lost its end; a
document or section code translated through a chain (local -> catalogue -> LOINC) was of no
known type; a repeated interpretationCode was filed twice ('H,H', 'HAUT' twice); the value
set (sdtc:valueSet) written on a translation was not read."""

from __future__ import annotations

import pytest

from normalizers.cda import normalize_cda
from parsers.cda import parse_cda
from tests.test_cda_real_world import HEAD, TAIL, _section

LOINC = 'codeSystem="2.16.840.1.113883.6.1"'
SNOMED = 'codeSystem="2.16.840.1.113883.6.96"'
INTERPRETATION = 'codeSystem="2.16.840.1.113883.5.83"'
LAB = 'codeSystem="1.2.250.1.999.28.1"'  # a laboratory's own codes


def _normalized(*sections: str, head: str = HEAD):  # noqa: ANN202
    data = (head + "".join(sections) + TAIL).encode()
    return normalize_cda(parse_cda(data), data, "test")


def _result(code: str, name: str, value: str, time: str = "", extra: str = "",
            number: str = "1") -> str:
    """An IHE LAB / CI-SIS FR-Resultat-examens-de-biologie-element-clinique-pertinent."""
    return f"""<component><observation classCode="OBS" moodCode="EVN">
      <templateId root="1.3.6.1.4.1.19376.1.3.1.6"/>
      <id root="1.2.250.1.999.28.2" extension="R-{number}"/>
      <code code="{code}" displayName="{name}" {LOINC}/><statusCode code="completed"/>
      {time}{value}{extra}</observation></component>"""


def _battery(period: str, *results: str) -> str:
    """An IHE LAB Laboratory Battery Organizer (CI-SIS FR-Batterie-examens-de-biologie)
    under the results act, its effectiveTime ``period``."""
    return f"""<entry><act classCode="ACT" moodCode="EVN">
      <templateId root="1.3.6.1.4.1.19376.1.3.1.4"/>
      <code code="18719-5" displayName="Biochimie" {LOINC}/><statusCode code="completed"/>
      <entryRelationship typeCode="COMP"><organizer classCode="BATTERY" moodCode="EVN">
        <templateId root="1.3.6.1.4.1.19376.1.3.1.4"/>
        <code code="24357-6" displayName="Analyse d'urine" {LOINC}/>
        <statusCode code="completed"/>{period}{"".join(results)}
      </organizer></entryRelationship></act></entry>"""


# -- a battery over a period: its results without a time inherit both ends -------------------
PROTEIN = '<value xsi:type="PQ" value="0.12" unit="g/(24.h)"/>'
CREAT = '<value xsi:type="PQ" value="9.8" unit="mmol/(24.h)"/>'
SODIUM = '<value xsi:type="PQ" value="142" unit="mmol/(24.h)"/>'


@pytest.mark.parametrize(("period", "start", "end"), ids=["low-high", "low-width",
                                                         "center-width"], argvalues=[
    # from 08:00 to 08:00 the next day
    ('<effectiveTime><low value="202403110800+0100"/><high value="202403120800+0100"/>'
     "</effectiveTime>", "2024-03-11T08:00+01:00", "2024-03-12T08:00+01:00"),
    # from 08:00, for 24 h
    ('<effectiveTime><low value="202403110800+0100"/><width value="24" unit="h"/>'
     "</effectiveTime>", "2024-03-11T08:00+01:00", "2024-03-12T08:00+01:00"),
    # around 20:00, 24 h wide
    ('<effectiveTime><center value="202403112000+0100"/><width value="1" unit="d"/>'
     "</effectiveTime>", "2024-03-11T08:00+01:00", "2024-03-12T08:00+01:00"),
])
def test_results_without_a_time_inherit_the_end_of_their_batterys_period(
        period: str, start: str, end: str) -> None:
    """A 24-hour urine battery whose organizer says the collection period and whose results
    say no time (none, or nullFlavor NA as the ANS's CR-BIO writes it): they took its start
    and were filed as instants. They keep its end in details.period_high; a result with a
    time of its own (the creatinine measured at 10:30) keeps its own, no end."""
    msg = _normalized(_section("18719-5", "Urines de 24 heures", _battery(
        period,
        _result("2889-4", "Protéinurie des 24 heures", PROTEIN),
        _result("2162-6", "Créatininurie des 24 heures", CREAT,
                '<effectiveTime value="202403121030+0100"/>', number="2"),
        _result("2956-1", "Natriurèse des 24 heures", SODIUM,
                '<effectiveTime nullFlavor="NA"/>', number="3"))))
    protein, creatinine, sodium = msg.entries[1:]
    assert (protein.effective, protein.details["period_high"]) == (start, end)
    assert (sodium.effective, sodium.details["period_high"]) == (start, end)
    assert creatinine.effective == "2024-03-12T10:30+01:00"
    assert "period_high" not in creatinine.details


def test_a_battery_at_an_instant_or_a_result_over_its_own_period() -> None:
    """A battery dated by one instant gives its results no end (as before); a result over
    its own period keeps its own end, not its battery's; the part of such a result
    (CI-SIS subordinate observation, typeCode COMP, no time of its own) inherits both ends
    of the result it belongs to."""
    part = """<entryRelationship typeCode="COMP"><observation classCode="OBS" moodCode="EVN">
      <code code="2888-6" displayName="Protéines urinaires" {LOINC}/>
      <statusCode code="completed"/><effectiveTime nullFlavor="NA"/>
      <value xsi:type="PQ" value="0.05" unit="g/L"/></observation></entryRelationship>"""
    msg = _normalized(_section("18719-5", "Urines", _battery(
        '<effectiveTime value="202403110800+0100"/>',
        _result("2889-4", "Protéinurie des 24 heures", PROTEIN),
        _result("2956-1", "Natriurèse des 24 heures", SODIUM,
                '<effectiveTime><low value="202403110900+0100"/>'
                '<high value="202403120900+0100"/></effectiveTime>',
                part.replace("{LOINC}", LOINC), number="2"))))
    protein, sodium, concentration = msg.entries[1:]
    assert protein.effective == "2024-03-11T08:00+01:00"
    assert "period_high" not in protein.details
    assert (sodium.effective, sodium.details["period_high"]) == (
        "2024-03-11T09:00+01:00", "2024-03-12T09:00+01:00")
    assert (concentration.code, concentration.effective,
            concentration.details["period_high"]) == (
        "2888-6", "2024-03-11T09:00+01:00", "2024-03-12T09:00+01:00")


# -- loinc_of reads a translation chain -------------------------------------------------------
def test_a_document_and_section_typed_through_a_translation_chain_are_known() -> None:
    """A LIS types its report 'CRBIO', translated into a regional catalogue's code, itself
    translated into LOINC 11502-2 (CR-BIO), and its results section likewise into 18719-5:
    only the first level was read, the document was of no known type and its results
    section none (the kalaemia filed as a plain observation)."""
    def chained(local: str, regional: str, loinc: str) -> str:
        return (f'<code code="{local}" {LAB}><translation code="{regional}" '
                f'codeSystem="1.2.250.1.999.28.9"><translation code="{loinc}" {LOINC}/>'
                "</translation></code>")
    head = HEAD.replace(f'<code code="34133-9" {LOINC}/>', chained("CRBIO", "R-BIO", "11502-2"))
    section = _section("X", "Biochimie", f"""<entry><observation classCode="OBS" moodCode="EVN">
      <templateId root="1.3.6.1.4.1.19376.1.3.1.6"/>
      <code code="2823-3" displayName="Potassium" {LOINC}/><statusCode code="completed"/>
      <effectiveTime value="202403110830+0100"/>
      <value xsi:type="PQ" value="4.1" unit="mmol/L"/></observation></entry>""")
    section = section.replace(f'<code code="X" {LOINC}/>', chained("BIOCH", "R-BC", "18719-5"))
    msg = _normalized(section, head=head)
    document, potassium = msg.entries
    assert document.code == "11502-2"
    assert potassium.type == "lab_result"
    assert potassium.details["section"] == "18719-5"


def test_a_document_type_with_no_code_of_its_own_is_known_by_its_loinc() -> None:
    """A document code nullFlavor OTH (the sender has no type code of its own), its LOINC
    in translation: it was of no type at all (a code with no codeSystem read as itself).
    It is known by the LOINC; details.type_as_sent says the nullFlavor, no empty code."""
    head = HEAD.replace(f'<code code="34133-9" {LOINC}/>',
                        f'<code nullFlavor="OTH"><translation code="11488-4" {LOINC} '
                        'displayName="Note de consultation"/></code>')
    (document,) = _normalized(_section("29545-1", "Examen clinique sans particularité.", ""),
                              head=head).entries
    assert document.code == "11488-4"
    assert document.details["type_as_sent"] == {"null_flavor": "OTH"}


# -- a repeated interpretation is one --------------------------------------------------------
@pytest.mark.parametrize(("codes", "filed", "local", "said"), ids=[
    "repeated", "code-and-translation", "two-flags"], argvalues=[
    # the LIS's 'HAUT' translated H, sent twice (the LIS's and the bridge's)
    ([f'<interpretationCode code="HAUT" {LAB}><translation code="H" {INTERPRETATION}/>'
      "</interpretationCode>"] * 2, "H", ["HAUT"], True),
    # the flag as a code, and again as another interpretationCode's translation
    ([f'<interpretationCode code="HAUT" {LAB}><translation code="H" {INTERPRETATION}/>'
      "</interpretationCode>",
      f'<interpretationCode code="H" {INTERPRETATION}><translation code="HAUT" {LAB}/>'
      "</interpretationCode>"], "H", ["HAUT"], True),
    # two flags, each once: both, in the order sent, nothing said
    ([f'<interpretationCode code="HAUT" {LAB}><translation code="H" {INTERPRETATION}/>'
      "</interpretationCode>",
      f'<interpretationCode code="CRIT" {LAB}><translation code="AA" {INTERPRETATION}/>'
      "</interpretationCode>"], "H,AA", ["HAUT", "CRIT"], False),
])
def test_an_interpretation_sent_twice_is_filed_once(codes: list[str], filed: str,
                                                    local: list[str], said: bool) -> None:
    """A lab repeats its interpretationCode, or writes the same flag as a code and as a
    translation: the result was filed 'H,H' (FHIR exported two interpretations) and
    details.interpretation_local listed 'HAUT' twice beside it, where the HL7v2 path lists
    each once (round 21). Each is listed once, in the order sent, the repeat said."""
    msg = _normalized(_section("18719-5", "Biochimie", f"""<entry>
      <observation classCode="OBS" moodCode="EVN">
      <templateId root="1.3.6.1.4.1.19376.1.3.1.6"/>
      <code code="2823-3" displayName="Potassium" {LOINC}/><statusCode code="completed"/>
      <effectiveTime value="202403110830+0100"/>
      <value xsi:type="PQ" value="6.4" unit="mmol/L"/>{"".join(codes)}
      </observation></entry>"""))
    (potassium,) = msg.entries[1:]
    assert potassium.interpretation == filed
    assert potassium.details["interpretation_local"] == local
    repeated = [w for w in msg.warnings if w.startswith("CDA_REPEATED_INTERPRETATION")]
    assert bool(repeated) is said


# -- sdtc:valueSet on a translation ----------------------------------------------------------
def test_the_value_set_written_on_a_translation_stays_with_its_code() -> None:
    """A lab sends its own 'POS' from its value set, translated into the SNOMED CT code of
    the CI-SIS JDV, the JDV written on the translation (sdtc:valueSet is allowed on any CD):
    the result is filed under the SNOMED CT code and the JDV was lost. It is beside the code
    filed; the lab's value set stays with the lab's code among the translations."""
    msg = _normalized(_section("18723-7", "Sérologies", f"""<entry>
      <observation classCode="OBS" moodCode="EVN">
      <templateId root="1.3.6.1.4.1.19376.1.3.1.6"/>
      <code code="5196-1" displayName="Antigène HBs" {LOINC}/><statusCode code="completed"/>
      <effectiveTime value="202403110830+0100"/>
      <value xsi:type="CD" code="POS" {LAB} displayName="Positif"
        sdtc:valueSet="1.2.250.1.999.28.10"><translation code="10828004" {SNOMED}
        sdtc:valueSet="1.2.250.1.213.1.1.5.42" sdtc:valueSetVersion="20240126120000"/></value>
      </observation></entry>"""))
    (hbs,) = msg.entries[1:]
    assert hbs.details["value_code"] == {
        "code": "10828004", "system": "SNOMED-CT", "value_set": "1.2.250.1.213.1.1.5.42",
        "value_set_version": "20240126120000",
        "translations": [{"code": "POS", "system": "1.2.250.1.999.28.1", "display": "Positif",
                          "value_set": "1.2.250.1.999.28.10"}]}
