"""CDA R2 documents from hospitals we have not seen (round 26). Each test builds a small
document the way a French laboratory or hospital, or an EHR abroad, writes it with the
structures CDA R2 / IHE LAB / CI-SIS / C-CDA R2.1 allow, and checks what is filed and
exported against what a clinician reading it understands.

Found wrong and fixed here: an effectiveTime given as its start and its width (IVL_TS low +
width, no high: a 24-hour urine 'from 08:00 for 24 h', a medication 'from the 1st for 7 d')
had no end; a targetSiteCode kept its code and system, not its words; a CLUSTER nested in
a battery (a sub-panel: 'Formule leucocytaire' in an 'NFS') lost its code, its results
taking the battery's panel; an Instruction under a problem or an encounter was stored but
exported nowhere (now a Condition note; R4 Encounter has no note: its narrative)."""

from __future__ import annotations

from dataclasses import asdict

import pytest

from dossiers.fhir import to_bundle
from normalizers.cda import normalize_cda
from parsers.cda import parse_cda
from tests.test_cda_real_world import HEAD, TAIL, _section
from tests.test_fhir_export import check_bundle

LOINC = 'codeSystem="2.16.840.1.113883.6.1"'
SNOMED = 'codeSystem="2.16.840.1.113883.6.96"'
PATIENT = {"id": 1, "family": "FOURNIER", "given": "Gaëlle", "birth_date": "1964-02-09",
           "sex": "F", "ins": None}


def _normalized(*sections: str):  # noqa: ANN202
    data = (HEAD + "".join(sections) + TAIL).encode()
    return normalize_cda(parse_cda(data), data, "test")


def _bundle(entries: list) -> list[dict]:
    """The resources of the entries in a Bundle checked against R4, in their order."""
    bundle = to_bundle(PATIENT, [{**asdict(e), "id": n} for n, e in enumerate(entries, 1)])
    check_bundle(bundle)
    return [item["resource"] for item in bundle["entry"]]


def _result(code: str, name: str, values: str,
            when: str = '<effectiveTime value="20240311080000+0100"/>', extra: str = "") -> str:
    """An IHE LAB / CI-SIS FR-Resultat-examens-de-biologie-element-clinique-pertinent."""
    return f"""<entry><observation classCode="OBS" moodCode="EVN">
      <templateId root="1.3.6.1.4.1.19376.1.3.1.6"/>
      <id root="1.2.250.1.999.26.1" extension="RES-{code}"/>
      <code code="{code}" displayName="{name}" {LOINC}/><statusCode code="completed"/>
      {when}{values}{extra}</observation></entry>"""


# -- a period given as its start and its width -------------------------------------------------
def _from(start: str, width: str) -> str:
    return f'<effectiveTime xsi:type="IVL_TS"><low value="{start}"/>{width}</effectiveTime>'


@pytest.mark.parametrize(("start", "width", "end"), [
    # a 24-hour urine collection, IHE LAB: from 08:00 for 24 h
    ("202403110800+0100", '<width value="24" unit="h"/>', "2024-03-12T08:00+01:00"),
    ("20240311080000+0100", '<width value="1440" unit="min"/>', "2024-03-12T08:00:00+01:00"),
    ("20240311080000+0100", '<width value="1.5" unit="h"/>', "2024-03-11T09:30:00+01:00"),
    # a day and whole days: still a day
    ("20240311", '<width value="2" unit="d"/>', "2024-03-13"),
    # a day and hours that are no whole day: the end is finer than what the start says
    ("20240311", '<width value="8" unit="h"/>', None),
])
def test_a_collection_given_by_its_start_and_width_keeps_its_end(start: str, width: str,
                                                                 end: str | None) -> None:
    """IVL_TS low + width, no high (CDA R2 data types: an interval is any two of low, high,
    width, center): a 24-hour urine protein 'from 08:00 for 24 h'. The width was not read;
    the collection read as an instant. Its end is details.period_high, as for low + high,
    and the export an effectivePeriod."""
    urine = _result("2889-4", "Protéinurie des 24 heures",
                    '<value xsi:type="PQ" value="0.42" unit="g/(24.h)"/>', _from(start, width))
    msg = _normalized(_section("30954-2", "Biochimie urinaire", urine))
    (protein,) = msg.entries[1:]
    assert protein.details.get("period_high") == end
    assert not [w for w in msg.warnings if "WIDTH" in w]
    if end:
        (*_, exported) = _bundle([protein])
        assert exported["effectivePeriod"]["end"][:len(end) - 6] == end[:-6]  # R4: seconds


def test_a_width_that_is_no_time_is_said_and_leaves_the_period_open() -> None:
    """A width in mL (a volume written where the duration goes): no end is made up, and the
    ledger row says why (CDA_WIDTH_NOT_TIME names the element, not the patient)."""
    urine = _result("2889-4", "Protéinurie des 24 heures",
                    '<value xsi:type="PQ" value="0.42" unit="g/(24.h)"/>',
                    _from("20240311080000+0100", '<width value="1850" unit="mL"/>'))
    msg = _normalized(_section("30954-2", "Biochimie urinaire", urine))
    (protein,) = msg.entries[1:]
    assert "period_high" not in protein.details
    (warning,) = [w for w in msg.warnings if w.startswith("CDA_WIDTH_NOT_TIME")]
    assert "'mL'" in warning and "width" in warning


@pytest.mark.parametrize(("width", "end"), [
    ('<width value="24" unit="hr"/>', "2024-03-12T08:00:00+01:00"),  # ANSI / ISO+ habit
    ('<width value="1" unit="j"/>', "2024-03-12T08:00:00+01:00"),  # a French 'jour'
])
def test_a_width_in_a_unit_of_time_that_is_not_ucum_is_read_and_said(width: str,
                                                                      end: str) -> None:
    """A width in 'hr' or the French 'j' (not UCUM, which CDA asks for): what it means is
    plain, so the end is computed, and the ledger row says the unit is not UCUM's."""
    urine = _result("2889-4", "Protéinurie des 24 heures",
                    '<value xsi:type="PQ" value="0.42" unit="g/(24.h)"/>',
                    _from("20240311080000+0100", width))
    msg = _normalized(_section("30954-2", "Biochimie urinaire", urine))
    (protein,) = msg.entries[1:]
    assert protein.details["period_high"] == end
    assert [w.split(":")[0] for w in msg.warnings if "WIDTH" in w] == [
        "CDA_WIDTH_UNIT_NOT_UCUM"]


def _amoxicillin(timing: str) -> str:
    """A CI-SIS / IHE PCC medication 'from 1 March for N': amoxicilline 1 g."""
    return f"""<entry><substanceAdministration classCode="SBADM" moodCode="INT">
      <templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.7"/>
      <id root="1.2.250.1.999.26.2" extension="AMOX-1"/><statusCode code="active"/>
      {timing}
      <doseQuantity value="1" unit="g"/>
      <consumable><manufacturedProduct><manufacturedMaterial>
      <code code="J01CA04" codeSystem="2.16.840.1.113883.6.73" displayName="amoxicilline"/>
      </manufacturedMaterial></manufacturedProduct></consumable></substanceAdministration>
      </entry>"""


@pytest.mark.parametrize(("width", "end"), [
    ('<width value="7" unit="d"/>', "2024-03-08"),
    ('<width value="2" unit="wk"/>', "2024-03-15"),
    # calendar months: 'for 3 mo from 1 March' ends on 1 June
    ('<width value="3" unit="mo"/>', "2024-06-01"),
])
def test_a_medication_for_a_duration_ends_after_it(width: str, end: str) -> None:
    """A treatment 'from 1 March for 7 days' (IVL_TS low + width): its duration was kept
    (details.duration) but no end, so the FHIR MedicationRequest's period had no end."""
    msg = _normalized(_section("10160-0", "Traitements",
                               _amoxicillin(_from("20240301", width))))
    (medication,) = msg.entries[1:]
    assert (medication.details["period_low"], medication.details["period_high"]) == (
        "2024-03-01", end)
    assert medication.details["duration"]
    (request,) = [r for r in _bundle([medication]) if r["resourceType"] == "MedicationRequest"]
    assert request["dispenseRequest"]["validityPeriod"] == {"start": "2024-03-01", "end": end}


# -- the words of a body site ------------------------------------------------------------------
@pytest.mark.parametrize(("site", "words"), [
    (f'<targetSiteCode code="368208006" {SNOMED} displayName="Bras gauche"/>', "Bras gauche"),
    # C-CDA's usual form: the words in the narrative, the code pointing at them
    (f'<targetSiteCode code="368208006" {SNOMED}><originalText><reference value="#site1"/>'
     '</originalText></targetSiteCode>', "bras gauche, au repos"),
    (f'<targetSiteCode code="368208006" {SNOMED}/>', None),
])
def test_a_body_sites_words_are_kept_with_its_code(site: str, words: str | None) -> None:
    """targetSiteCode with displayName or originalText (IHE PCC, C-CDA vital signs): only
    code and system were kept, the FHIR bodySite a bare SNOMED CT code. The words are the
    site's display and its coding's display; a bare code stays bare."""
    pressure = _result("8480-6", "Pression artérielle systolique",
                       '<value xsi:type="PQ" value="128" unit="mm[Hg]"/>', extra=site)
    (systolic,) = _normalized(_section(
        "8716-3", '<content ID="site1">bras gauche, au repos</content>', pressure)).entries[1:]
    assert systolic.details["target_site"].get("display") == words
    assert systolic.details["target_site"]["code"] == "368208006"
    (*_, exported) = _bundle([systolic])
    assert exported["bodySite"]["coding"][0].get("display") == words


# -- a sub-panel inside a battery --------------------------------------------------------------
def _component(code: str, name: str, value: str, unit: str) -> str:
    return _result(code, name, f'<value xsi:type="PQ" value="{value}" unit="{unit}"/>').replace(
        "<entry>", "<component>").replace("</entry>", "</component>")


def _nfs(cluster_code: str) -> str:
    """A CI-SIS / IHE LAB battery 'NFS' holding the haemoglobin and a CLUSTER 'Formule
    leucocytaire' (no template of its own) with the neutrophils."""
    return f"""<entry><organizer classCode="BATTERY" moodCode="EVN">
      <templateId root="1.3.6.1.4.1.19376.1.3.1.4"/>
      <id root="1.2.250.1.999.26.3" extension="NFS-1"/>
      <code code="58410-2" displayName="NFS" {LOINC}/><statusCode code="completed"/>
      <effectiveTime value="20240311080000+0100"/>
      {_component("718-7", "Hémoglobine", "13.2", "g/dL")}
      <component><organizer classCode="CLUSTER" moodCode="EVN">
        {cluster_code}<statusCode code="completed"/>
        {_component("751-8", "Polynucléaires neutrophiles", "4.1", "10*9/L")}
      </organizer></component></organizer></entry>"""


NFS = {"code": "58410-2", "system": "LN", "display": "NFS"}


@pytest.mark.parametrize(("cluster_code", "inner"), [
    (f'<code code="57023-4" displayName="Formule leucocytaire" {LOINC}/>',
     {"code": "57023-4", "system": "LN", "display": "Formule leucocytaire", "parent": NFS}),
    ('<code nullFlavor="OTH"><originalText>Formule leucocytaire</originalText></code>',
     {"text": "Formule leucocytaire", "parent": NFS}),
    # a cluster that names nothing: its results are the battery's, as before
    ("", NFS),
])
def test_a_sub_panel_in_a_battery_is_its_results_panel(cluster_code: str,
                                                       inner: dict) -> None:
    """A CLUSTER organizer nested in a battery (the 'Formule leucocytaire' of an 'NFS'):
    its code was lost and its results took the NFS as panel. It is their panel now, the
    NFS its parent; the NFS's own results are unchanged."""
    hb, neutrophils = _normalized(_section("26436-6", "Hématologie",
                                           _nfs(cluster_code))).entries[1:]
    assert hb.details["panel"] == NFS
    assert neutrophils.details["panel"] == inner

# -- an instruction under a problem or an encounter --------------------------------------------
def _instruction(words: str) -> str:
    """C-CDA R2.1 Instruction (V2)."""
    return f"""<entryRelationship typeCode="SUBJ" inversionInd="true">
      <act classCode="ACT" moodCode="INT">
      <templateId root="2.16.840.1.113883.10.20.22.4.20" extension="2014-06-09"/>
      <code code="311401005" {SNOMED} displayName="Éducation du patient"/>
      <text>{words}</text><statusCode code="completed"/></act></entryRelationship>"""


def _asthma(instruction: str) -> str:
    """C-CDA Problem Concern Act (4.3) holding a Problem Observation (4.4)."""
    return f"""<entry><act classCode="ACT" moodCode="EVN">
      <templateId root="2.16.840.1.113883.10.20.22.4.3" extension="2015-08-01"/>
      <id root="1.2.250.1.999.26.4" extension="PB-1"/>
      <code code="CONC" codeSystem="2.16.840.1.113883.5.6"/><statusCode code="active"/>
      <effectiveTime><low value="20190402"/></effectiveTime>
      <entryRelationship typeCode="SUBJ"><observation classCode="OBS" moodCode="EVN">
        <templateId root="2.16.840.1.113883.10.20.22.4.4" extension="2015-08-01"/>
        <id root="1.2.250.1.999.26.4" extension="PB-1-OBS"/>
        <code code="55607006" {SNOMED} displayName="Problème"/><statusCode code="completed"/>
        <effectiveTime><low value="20190402"/></effectiveTime>
        <value xsi:type="CD" code="J45.9" codeSystem="2.16.840.1.113883.6.3"
          displayName="Asthme, sans précision"/>{instruction}
      </observation></entryRelationship></act></entry>"""


def _stay(instruction: str) -> str:
    """C-CDA Encounter Activity (4.49): a day-hospital stay."""
    return f"""<entry><encounter classCode="ENC" moodCode="EVN">
      <templateId root="2.16.840.1.113883.10.20.22.4.49" extension="2015-08-01"/>
      <id root="1.2.250.1.999.26.5" extension="SEJ-1"/>
      <code code="AMB" codeSystem="2.16.840.1.113883.5.4" displayName="Hôpital de jour"/>
      <effectiveTime><low value="20240311083000+0100"/><high value="20240311170000+0100"/>
      </effectiveTime>{instruction}</encounter></entry>"""


def test_a_problems_instruction_is_a_note_of_the_condition() -> None:
    """An Instruction under a Problem Observation ('toujours avoir son aérosol sur soi'):
    stored in details.patient_instructions, exported nowhere. It is a note of the
    Condition now; a problem without one has no such note."""
    told = "Toujours avoir son aérosol de salbutamol sur soi."
    problem, other = _normalized(_section("11450-4", "Problèmes", _asthma(_instruction(told)) +
                                          _asthma("").replace("PB-1", "PB-2"))).entries[1:]
    assert problem.details["patient_instructions"] == [told]
    first, second = [r for r in _bundle([problem, other]) if r["resourceType"] == "Condition"]
    assert {"text": f"instructions to the patient (CDA instruction): {told}"} in first["note"]
    assert not [n for n in second.get("note") or () if "instruction" in n["text"]]


def test_an_encounters_instruction_is_said_in_its_narrative() -> None:
    """An Instruction under an Encounter Activity ('revenir à jeun le 18 mars'): R4
    Encounter has no note (one made the Bundle invalid), so the Encounter's narrative
    says it; without an instruction, no narrative."""
    told = "Revenir à jeun le 18 mars pour le bilan de contrôle."
    stay, other = _normalized(_section("46240-8", "Rencontres", _stay(_instruction(told)) +
                                       _stay("").replace("SEJ-1", "SEJ-2"))).entries[1:]
    assert stay.details["patient_instructions"] == [told]
    first, second = [r for r in _bundle([stay, other]) if r["resourceType"] == "Encounter"]
    assert "Revenir à jeun le 18 mars" in first["text"]["div"]
    assert "note" not in first and "text" not in second
