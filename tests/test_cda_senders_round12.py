"""CDA R2 documents the way other senders write them (round 12: the CI-SIS document types we
read least: cancer summaries and RCP sheets, nursing-home and newborn transfers, vaccination
notes, ophthalmology, cardiology prescriptions). Each test builds a small invented document
with one structure the CI-SIS templates allow and checks what is filed against what a
clinician reading the document understands; the corpus tests run the ANS examples when
../shared/corpus is there and skip cleanly when it is not."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dossiers.deposit import fact_of
from normalizers.cda import normalize_cda
from parsers.cda import parse_cda
from tests.conftest import corpus_path
from tests.test_cda_real_world import HEAD, TAIL, _entries, _section

LOINC = 'codeSystem="2.16.840.1.113883.6.1"'
SNOMED = 'codeSystem="2.16.840.1.113883.6.96"'
TNM = 'codeSystem="2.16.840.1.113883.15.6" codeSystemName="TNM_UICC"'


def _corpus(name: str):  # noqa: ANN202
    """The NormalizedMessage of one ANS example; the test skips when the corpus is absent."""
    data = corpus_path("cda", name).read_bytes()
    return normalize_cda(parse_cda(data), data, "corpus")


# -- cancer: a tumour's stage is read with the tumour ------------------------------------------
def _tnm(ident: str, code: str, name: str, value: str, meaning: str) -> str:
    return f"""<entryRelationship typeCode="COMP"><observation classCode="OBS" moodCode="EVN">
      <templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.13"/><templateId root="1.2.250.1.213.1.1.3.48"/>
      <id root="1.2.250.1.999.12" extension="{ident}"/>
      <code code="{code}" displayName="{name}" {LOINC}/><statusCode code="completed"/>
      <effectiveTime nullFlavor="NAV"/>
      <value xsi:type="CD" code="{value}" displayName="{meaning}" {TNM} codeSystemVersion="8"/>
    </observation></entryRelationship>"""


STAGED_TUMOUR = f"""<entry><act classCode="ACT" moodCode="EVN">
  <templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.5.2"/>
  <templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.5.1"/>
  <id root="1.2.250.1.999.12" extension="CONC-1"/><code nullFlavor="NA"/>
  <statusCode code="active"/><effectiveTime><low value="20240205"/></effectiveTime>
  <entryRelationship typeCode="SUBJ"><observation classCode="OBS" moodCode="EVN">
    <templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.5"/><templateId root="1.2.250.1.213.1.1.3.37"/>
    <id root="1.2.250.1.999.12" extension="TUM-1"/>
    <code code="282291009" displayName="Diagnostic" {SNOMED}/><statusCode code="completed"/>
    <effectiveTime><low value="20240205"/></effectiveTime>
    <value xsi:type="CD" code="8140/3" displayName="Adénocarcinome, SAI"
      codeSystem="2.16.840.1.113883.6.43.1" codeSystemName="CIM-O-3"/>
    <targetSiteCode code="C18.7" displayName="Côlon sigmoïde" codeSystem="2.16.840.1.113883.6.3"/>
    <entryRelationship typeCode="SUBJ"><observation classCode="OBS" moodCode="EVN">
      <templateId root="1.3.6.1.4.1.19376.1.7.3.1.4.14.2"/>
      <id root="1.2.250.1.999.12" extension="STADE-1"/>
      <code code="21908-9" displayName="Stade TNM clinique" {LOINC}/><statusCode code="completed"/>
      <effectiveTime><low value="20240212"/></effectiveTime>
      <value xsi:type="CD">
        <qualifier><name code="21909-7" displayName="Stade" {LOINC}/>
          <value xsi:type="CD" code="IIIB" displayName="Stade IIIB" {TNM}/></qualifier>
        <qualifier><name code="21917-0" displayName="Version TNM" {LOINC}/>
          <value xsi:type="CD" code="8" displayName="TNM UICC 8e édition" {TNM}/></qualifier>
      </value>
      {_tnm("T", "21905-5", "T clinique", "T3", "Tumeur envahissant la sous-séreuse")}
      {_tnm("N", "21906-3", "N clinique", "N1b", "Métastases dans 2 à 3 ganglions régionaux")}
      {_tnm("M", "21907-1", "M clinique", "M0", "Pas de métastase à distance")}
    </observation></entryRelationship>
  </observation></entryRelationship>
</act></entry>"""


def test_a_tumours_stage_keeps_its_stage_and_its_t_n_m() -> None:
    """A sigmoid adenocarcinoma staged cT3 N1b M0, stage IIIB (CI-SIS cancer documents:
    PPS, FRCP, D2LM; the staging observation nested in the tumour's problem): the staging
    was described with no value (its stage and TNM version are qualifiers of an uncoded CD)
    and its T, N and M observations were dropped without a word."""
    got = _entries(_section("72135-7", "Tumeur", STAGED_TUMOUR))
    assert [(e.type, e.code) for e in got] == [("problem", "8140/3")]
    staging = got[0].details["observations"][0]
    assert staging["code"] == "21908-9"
    assert [(q["name"]["code"], q["value"]["code"]) for q in staging["qualifiers"]] == \
        [("21909-7", "IIIB"), ("21917-0", "8")]
    assert [(p["code"], p["value_code"]["code"], p["value"]) for p in staging["parts"]] == [
        ("21905-5", "T3", "Tumeur envahissant la sous-séreuse"),
        ("21906-3", "N1b", "Métastases dans 2 à 3 ganglions régionaux"),
        ("21907-1", "M0", "Pas de métastase à distance")]
    assert {p["value_code"]["system"] for p in staging["parts"]} == {"TNM-UICC"}


def test_an_empty_slot_of_a_staging_is_no_part() -> None:
    """An 'other classification' whose name and version are left empty (a template's
    slots, no value): no parts listed that say nothing."""
    empty = """<entryRelationship typeCode="COMP"><observation classCode="OBS" moodCode="EVN">
      <code code="GEN-101" displayName="Nom de la classification"
        codeSystem="1.2.250.1.213.1.1.4.322"/><value xsi:type="CD" nullFlavor="NA"/>
      </observation></entryRelationship>"""
    other = f"""<entryRelationship typeCode="SUBJ"><observation classCode="OBS" moodCode="EVN">
      <code code="21918-8" displayName="Autre classification du stade" {LOINC}/>
      <value xsi:type="ST">Dukes C</value>{empty}</observation></entryRelationship>"""
    tumour = STAGED_TUMOUR.replace('<entryRelationship typeCode="SUBJ"><observation '
                                   'classCode="OBS" moodCode="EVN">\n      <templateId '
                                   'root="1.3.6.1.4.1.19376.1.7.3.1.4.14.2"/>',
                                   other + '<entryRelationship typeCode="SUBJ"><observation '
                                   'classCode="OBS" moodCode="EVN"><templateId '
                                   'root="1.3.6.1.4.1.19376.1.7.3.1.4.14.2"/>', 1)
    got = _entries(_section("72135-7", "Tumeur", tumour))
    described = got[0].details["observations"]
    assert [d["code"] for d in described] == ["21918-8", "21908-9"]
    assert described[0]["value"] == "Dukes C" and "parts" not in described[0]


def test_corpus_cancer_pps_files_the_tnm_of_its_tumour() -> None:
    msg = _corpus("CANCER-PPS_2022.01_Autopresentable.xml")
    tumour = next(e for e in msg.entries if e.code == "8000/3")
    staging = next(o for o in tumour.details["observations"] if o["code"] == "75620-5")
    assert [p["value_code"]["code"] for p in staging["parts"]] == ["T1b", "N1", "M0"]
    assert staging["qualifiers"][0]["value"]["code"] == "IB"


# -- transfers and transports: where the patient went, how they came ---------------------------
def _message(*sections: str):  # noqa: ANN202
    data = (HEAD + "".join(sections) + TAIL).encode()
    return normalize_cda(parse_cda(data), data, "test")


TRANSFER = f"""<entry><act classCode="ACT" moodCode="EVN">
  <templateId root="1.3.6.1.4.1.19376.1.5.3.1.1.25.1.4.1"/>
  <templateId root="1.2.250.1.213.1.1.3.28"/>
  <id root="1.2.250.1.999.12" extension="TRF-1"/>
  <code code="80413-8" displayName="Transfert du patient" {LOINC}>
    <translation code="309904001" displayName="unité de soins intensifs" {SNOMED}/></code>
  <text><reference value="#trf"/></text><statusCode code="completed"/>
  <effectiveTime><low value="20240618221500+0200"/>
    <high value="20240618224000+0200"/></effectiveTime>
  <participant typeCode="DST"><templateId root="1.2.250.1.71.4.2.2" extension="690781810"/>
    <participantRole classCode="SDLOC"><id root="1.2.250.1.999.12" extension="UF-4021"/>
      <code code="SA01" displayName="Établissement public de santé"
        codeSystem="1.2.250.1.71.4.2.4"/>
      <addr><city>Lyon</city></addr>
      <playingEntity classCode="ENT"><name>Hôpital Édouard Herriot</name></playingEntity>
    </participantRole></participant>
</act></entry>"""

TRANSPORT = """<entry><act classCode="ACT" moodCode="EVN">
  <templateId root="1.3.6.1.4.1.19376.1.5.3.1.1.10.4.1"/>
  <templateId root="1.2.250.1.213.1.1.3.24"/>
  <id root="1.2.250.1.999.12" extension="TRP-1"/>
  <code code="ORG-154" displayName="Ambulance privée" codeSystem="1.2.250.1.213.1.1.4.322"/>
  <effectiveTime><low value="20240618213000+0200"/>
    <high value="20240618215500+0200"/></effectiveTime>
</act></entry>"""


def test_a_transfer_to_another_facility_is_filed_with_where_it_went() -> None:
    """A nursing-home resident sent to intensive care (CI-SIS FR-Transfert-du-patient in
    DLU-EHPAD FLUDR/FLUDT, CSE-CS8, OBP): 'act ... of a kind not read here', the transfer
    (when, to which facility, which service) was not filed. It is an encounter now, with
    the destination's FINESS (written as the participant's templateId), kind and name."""
    msg = _message(_section("42545-4", '<content ID="trf">Transfert en réanimation</content>',
                            TRANSFER))
    (got,) = msg.entries[1:]
    assert (got.type, got.code, got.system) == ("encounter", "80413-8", "LN")
    assert got.effective == "2024-06-18T22:15:00+02:00"
    assert got.details["period_high"] == "2024-06-18T22:40:00+02:00"
    destination = got.details["destination"]
    assert destination["ids"][0] == "1.2.250.1.71.4.2.2^690781810"
    assert destination["name"] == "Hôpital Édouard Herriot"
    assert destination["code"]["code"] == "SA01"
    assert got.details["code_translations"] == [
        {"code": "309904001", "system": "SNOMED-CT", "display": "unité de soins intensifs"}]
    assert "location" not in got.details
    assert not [w for w in msg.warnings if w.startswith("CDA_NOT_FILED")]


def test_how_the_patient_was_brought_is_filed() -> None:
    """The transport to the emergency department (CI-SIS FR-Transport-du-patient, AVC and
    emergency documents: ambulance, SAMU/SMUR, with times) was not filed either."""
    msg = _message(_section("11459-5", "Transport", TRANSPORT))
    (got,) = msg.entries[1:]
    assert (got.type, got.code, got.display) == ("encounter", "ORG-154", "Ambulance privée")
    assert got.details["period_low"] == "2024-06-18T21:30:00+02:00"
    assert "destination" not in got.details
    assert not [w for w in msg.warnings if w.startswith("CDA_NOT_FILED")]


@pytest.mark.parametrize("name", ["DLU-EHPAD-FLUDR_2022.01.xml", "DLU-EHPAD-FLUDT_2022.01.xml",
                                  "CSE-CS8_2024.01.xml", "OBP-SCM_2024.01.xml",
                                  "AVC-AUNV_2022.01.xml"])
def test_corpus_transfers_and_transports_are_filed(name: str) -> None:
    msg = _corpus(name)
    moves = [e for e in msg.entries if e.type == "encounter" and
             e.code in ("80413-8", "ORG-153")]
    assert moves and all(e.details.get("period_low") for e in moves)
    assert not [w for w in msg.warnings if "80413-8" in w or "ORG-153" in w]


# -- ophthalmology: lens powers are in dioptres ------------------------------------------------
def _refraction(ident: str, code: str, name: str, value: str, unit: str, eye: str) -> str:
    eyes = {"OD": ("18944008", "oeil droit"), "OG": ("8966001", "oeil gauche")}
    return f"""<component typeCode="COMP"><observation classCode="OBS" moodCode="EVN">
      <templateId root="1.3.6.1.4.1.19376.1.12.1.3.7"/>
      <templateId root="1.2.250.1.213.1.1.3.120"/>
      <id root="1.2.250.1.999.12" extension="{ident}"/>
      <code code="{code}" displayName="{name}" {LOINC}/><statusCode code="completed"/>
      <effectiveTime value="20240902101500+0200"/>
      <value xsi:type="PQ" value="{value}" unit="{unit}"/>
      <methodCode code="397277005" displayName="réfraction subjective" {SNOMED}/>
      <targetSiteCode code="{eyes[eye][0]}" displayName="{eyes[eye][1]}" {SNOMED}/>
    </observation></component>"""


REFRACTION = f"""<entry><organizer classCode="CLUSTER" moodCode="EVN">
  <templateId root="1.3.6.1.4.1.19376.1.12.1.3.3"/><id root="1.2.250.1.999.12" extension="REF"/>
  <code code="70938-6" displayName="Mesures réfractives" {LOINC}/><statusCode code="completed"/>
  <effectiveTime value="20240902101500+0200"/>
  {_refraction("SPH-OD", "95290-3", "Sphère", "-1.75", "d", "OD")}
  {_refraction("SPH-OG", "95290-3", "Sphère", "-2.25", "[diop]", "OG")}
  {_refraction("CYL-OD", "95292-9", "Cylindre", "-0.50", "D", "OD")}
  {_refraction("AXE-OD", "95291-1", "Axe", "95", "deg", "OD")}
</organizer></entry>"""


def test_a_lens_power_written_d_is_in_dioptres_not_days() -> None:
    """An eye's sphere of -1.75 written unit="d" (CI-SIS OPH-BRE as the ANS example writes
    it; 'D' as French opticians do) was filed in UCUM d, days, beside the other eye's sphere
    in [diop]. In an eye-care measurement template it is read in dioptres, as sent kept in
    unit_original, said once (CDA_UNIT_READ_AS); the axis in degrees is left alone."""
    msg = _message(_section("70938-6", "Réfraction", REFRACTION))
    got = {(e.code, e.details["target_site"]["code"]): e for e in msg.entries[1:]}
    assert [(e.value, e.unit, e.unit_original) for e in got.values()] == [
        ("-1.75", "[diop]", "d"), ("-2.25", "[diop]", "[diop]"), ("-0.50", "[diop]", "D"),
        ("95", "deg", "deg")]
    said = [w for w in msg.warnings if w.startswith("CDA_UNIT_READ_AS")]
    assert len(said) == 2 and "(UCUM 'd' is not): read as [diop]" in said[0]
    assert "component[1]/observation" in said[0] and "'D'" in said[1]


def test_a_duration_in_days_outside_eye_care_stays_in_days() -> None:
    """'d' is days everywhere else (a length of stay, CSE-CS8's durations)."""
    obs = """<entry><observation classCode="OBS" moodCode="EVN">
      <templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.13"/>
      <id root="1.2.250.1.999.12" extension="J"/>
      <code code="ORG-077" displayName="Durée d'hospitalisation"
        codeSystem="1.2.250.1.213.1.1.4.322"/>
      <statusCode code="completed"/><effectiveTime value="20240902"/>
      <value xsi:type="PQ" value="12" unit="d"/></observation></entry>"""
    msg = _message(_section("11348-0", "Antécédents", obs))
    assert [(e.value, e.unit) for e in msg.entries[1:]] == [("12", "d")]
    assert not [w for w in msg.warnings if w.startswith("CDA_UNIT_READ_AS")]


def test_corpus_oph_bre_files_no_lens_power_in_days() -> None:
    msg = _corpus("OPH-BRE_2022.02.xml")
    powers = [e for e in msg.entries if e.unit_original in ("d", "[diop]")]
    assert len(powers) >= 40 and {e.unit for e in powers} == {"[diop]"}


# -- vaccination: the dose number as C-CDA gives it ---------------------------------------------
def _ccda_immunization(ident: str, repeat: str, mood: str = "EVN") -> str:
    return f"""<entry><substanceAdministration classCode="SBADM" moodCode="{mood}"
      negationInd="false"><templateId root="2.16.840.1.113883.10.20.22.4.52"/>
      <id root="1.2.250.1.999.12" extension="{ident}"/><statusCode code="completed"/>
      <effectiveTime value="20240115"/>{repeat}
      <consumable><manufacturedProduct classCode="MANU">
        <templateId root="2.16.840.1.113883.10.20.22.4.54"/>
        <manufacturedMaterial><code code="J07CA02" displayName="DTCaP"
          codeSystem="2.16.840.1.113883.6.73"/><lotNumberText>X4512B</lotNumberText>
        </manufacturedMaterial></manufacturedProduct></consumable>
    </substanceAdministration></entry>"""


def test_a_vaccinations_repeat_number_is_its_dose_number() -> None:
    """A C-CDA Immunization Activity done gives the dose it was in its series as
    repeatNumber (in event mood the ordinal of the occurrence: '3', the third dose; IHE PCC
    and CI-SIS nest a 30973-2 observation instead): it was dropped, and with it whether the
    child's DTCaP course is complete. An intended vaccination's repeatNumber is no dose."""
    got = _entries(_section("11369-6", "Vaccinations", "".join([
        _ccda_immunization("V1", '<repeatNumber value="1"/>'),
        _ccda_immunization("V3", '<repeatNumber><low value="3"/><high value="3"/>'
                                 '</repeatNumber>'),
        _ccda_immunization("V0", ""),
        _ccda_immunization("VP", '<repeatNumber value="4"/>', mood="INT")])))
    assert [(e.type, e.details.get("dose_number"), e.details.get("lot_number"))
            for e in got] == [("immunization", 1, "X4512B"), ("immunization", 3, "X4512B"),
                              ("immunization", None, "X4512B"), ("plan", None, "X4512B")]


def test_where_a_vaccine_was_given_is_kept_with_its_side() -> None:
    """The injection site (approachSiteCode: C-CDA Immunization Activity, IHE PCC; the
    deltoid and its side as a qualifier) was dropped: a local reaction could not be told
    apart from the other arm's vaccine given the same day."""
    site = f"""<approachSiteCode code="244109008" displayName="muscle deltoïde" {SNOMED}>
      <qualifier><name code="272741003" displayName="latéralité" {SNOMED}/>
        <value code="7771000" displayName="gauche" {SNOMED}/></qualifier></approachSiteCode>"""
    shot = _ccda_immunization("VS", site + '<doseQuantity value="0.5" unit="mL"/>')
    (got,) = _entries(_section("11369-6", "Vaccinations", shot))
    assert got.details["approach_site"] == {"code": "244109008", "system": "SNOMED-CT",
                                            "display": "muscle deltoïde",  # round 26
                                            "qualifiers": ["7771000"]}
    assert "target_site" not in got.details


def test_the_way_into_a_procedure_is_kept_beside_its_target() -> None:
    """A coronary angiography by the right radial artery (IHE PCC / CI-SIS FR-Acte:
    approachSiteCode beside targetSiteCode): the approach was dropped."""
    proc = f"""<entry><procedure classCode="PROC" moodCode="EVN">
      <templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.19"/><templateId root="1.2.250.1.213.1.1.3.62"/>
      <id root="1.2.250.1.999.12" extension="CORO"/>
      <code code="DDQH009" displayName="Coronarographie" codeSystem="1.2.250.1.213.2.5"/>
      <statusCode code="completed"/><effectiveTime value="20240312"/>
      <approachSiteCode code="45631007" displayName="artère radiale" {SNOMED}>
        <qualifier><name code="272741003" {SNOMED}/><value code="24028007" {SNOMED}/></qualifier>
      </approachSiteCode>
      <targetSiteCode code="41801008" displayName="artère coronaire" {SNOMED}/>
    </procedure></entry>"""
    (got,) = _entries(_section("47519-4", "Actes", proc))
    assert got.details["approach_site"] == {"code": "45631007", "system": "SNOMED-CT",
                                            "display": "artère radiale",  # round 26
                                            "qualifiers": ["24028007"]}
    assert got.details["target_site"] == {"code": "41801008", "system": "SNOMED-CT",
                                          "display": "artère coronaire"}  # round 26


def test_corpus_vac_keeps_vaccine_lot_date_and_dose() -> None:
    msg = _corpus("VAC_2023.01.xml")
    shots = [e for e in msg.entries if e.type == "immunization"]
    assert [(e.code, e.details["lot_number"], e.details["dose_number"]) for e in shots] == [
        ("61077869", "235421176", 1), ("68747507", "4456668", 1),
        ("68747507", "4456672", 2), ("61920725", "357904636", 1)]
    assert all(e.effective for e in shots)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.integers(min_value=-3, max_value=120).map(str),
                 st.sampled_from(["", " 2 ", "2.0", "deux", "1e3", "٣", "NaN"])))
def test_a_repeat_number_is_a_dose_only_when_it_is_a_positive_whole_number(raw: str) -> None:
    """Whatever a sender writes in repeatNumber/@value, the vaccination is filed; the dose
    number is that count when it is a positive whole number written in ASCII digits."""
    got = _entries(_section("11369-6", "Vaccinations",
                            _ccda_immunization("VX", f'<repeatNumber value="{raw}"/>')))
    (shot,) = got
    text = raw.strip()
    expected = int(text) if text.isascii() and text.isdigit() and int(text) > 0 else None
    assert shot.type == "immunization" and shot.details.get("dose_number") == expected


# -- obstetrics and child health: durations in French words --------------------------------------
@pytest.mark.parametrize(("sent", "ucum"), [("semaines", "wk"), ("Semaine", "wk"),
                                            ("jour", "d"), ("années", "a"), ("heures", "h")])
def test_a_duration_written_in_french_words_is_in_ucum(sent: str, ucum: str) -> None:
    """A gestational age of '39 semaines' (OBP: FR-Simple-Observation 11884-4 with the unit
    in words, as obstetrics software writes it) stayed in the unit 'semaines', unmapped,
    never comparable to the same age in wk; 'jours', 'sem', 'ans' were read, their
    singulars and 'années', 'heures' were not."""
    obs = f"""<entry><observation classCode="OBS" moodCode="EVN">
      <templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.13"/>
      <id root="1.2.250.1.999.12" extension="AG"/>
      <code code="11884-4" displayName="Âge gestationnel" {LOINC}/>
      <statusCode code="completed"/><effectiveTime value="20240425"/>
      <value xsi:type="PQ" value="39" unit="{sent}"/></observation></entry>"""
    (got,) = _entries(_section("57073-9", "Grossesse", obs))
    assert (got.value, got.unit, got.unit_original) == ("39", ucum, sent)


# -- issue 4: no coded statement of these document types is dropped without a word -----------
ROUND12_TYPES = ["AVC-AUNV_2022.01.xml", "AVC-EUNV_2022.01.xml", "AVC-PAVC_2022.01.xml",
                 "CANCER-D2LM-FIDD_2022.01.xml", "CANCER-D2LM-FIN_2022.01.xml",
                 "CANCER-FRCP_2022.01_Appareil.xml", "CANCER-PPS_2022.01_Autopresentable.xml",
                 "CARD-F-PRC-AVK_2022.01.xml", "CARD-F-PRC-DCI_2022.01.xml",
                 "CARD-F-PRC-PSC_2022.01.xml", "CSE-CS24_2024.01.xml", "CSE-CS8_2025.01.xml",
                 "CSE-MDE_2023.01.xml", "DLU-EHPAD-DLU_2022.01.xml",
                 "DLU-EHPAD-FLUDR_2022.01.xml", "DLU-EHPAD-FLUDT_2022.01.xml",
                 "IPS-FR_2024.01.xml", "OBP-SAP_2024.01.xml", "OBP-SCM_2024.01.xml",
                 "OBP-SNM_2024.01.xml", "OPH-BRE_2022.02.xml", "OPH-CR-RTN_2022.01.xml",
                 "SDM-MR_2022.01.xml", "VAC_2023.01.xml",
                 "eDISP-MED_2024.01.xml"]


def _coded(act) -> bool:  # noqa: ANN001
    """A clinical statement that says something coded: its code, or its product's."""
    product = getattr(act, "consumable", None) or getattr(act, "product", None)
    codes = [c for c in (act.code, product.code if product is not None else None)
             if c is not None]
    return any(c.code or c.translations for c in codes) or \
        bool(product is not None and product.name)


@pytest.mark.parametrize("name", ROUND12_TYPES)
def test_corpus_every_coded_statement_is_filed_read_with_another_or_said(
        name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 4: every coded result, problem, medication... statement of a document is an
    entry, is read into the entry that holds it (a dose number, a status, a staging), is
    structure read elsewhere (a comment, a specimen, an internal reference, a payer: the
    'skip' rows of cda_entry_kinds.csv, with what they hold) or is said (CDA_NOT_FILED,
    with what it holds). A container (a concern, a lab report act) is covered by what it
    holds. None is dropped silently."""
    from normalizers.cda import common, kinds, notfiled, references, statements
    from parsers.cda import iter_acts
    from parsers.cda.model import Organizer

    said: list[str] = []
    real = notfiled.not_filed

    def spy(act, kind, ctx, section) -> None:  # noqa: ANN001
        before = sum(count for count, _ in ctx.not_filed.values())
        real(act, kind, ctx, section)
        if sum(count for count, _ in ctx.not_filed.values()) > before:
            said.append(act.path)

    monkeypatch.setattr(statements, "not_filed", spy)  # where statement_entries looks it up
    data = corpus_path("cda", name).read_bytes()
    doc = parse_cda(data)
    msg = normalize_cda(doc, data, "corpus")
    filed = {e.source_ref for e in msg.entries if e.source_ref}
    elsewhere = kinds.read_elsewhere()
    kind_of = common.kind_table()
    acts = [act for _, act in iter_acts(doc)]
    skipped = [a.path for a in acts if any(kind_of.get(t) == common.SKIP for t in a.template_roots)]
    covered = [*filed, *said, *skipped]  # with everything they hold
    dropped = []
    for act in acts:
        if isinstance(act, Organizer) or not _coded(act) or act.path in covered or \
                not elsewhere.isdisjoint(act.template_roots) or references.is_comment(act) or \
                act.null_flavor:
            continue
        if any(act.path.startswith(ref + "/") for ref in covered):
            continue  # read into the entry that holds it, said or skipped with it
        if any(ref.startswith(act.path + "/") for ref in [*filed, *said]):
            continue  # a container: what it holds is filed or said
        dropped.append((act.kind, act.code.code if act.code else "", act.path))
    assert not dropped, dropped


# -- ophthalmology: what an eye-care organizer says its measurements are ------------------------
def _lenses(ident: str, code: str, name: str) -> str:
    """An IHE Eye Care lensometry organizer (CI-SIS OPH-BRE) with the right lens' addition."""
    return f"""<entry><organizer classCode="CLUSTER" moodCode="EVN">
      <templateId root="1.3.6.1.4.1.19376.1.12.1.3.5"/><templateId root="1.2.250.1.213.1.1.3.118"/>
      <id root="1.2.250.1.999.12" extension="{ident}"/>
      <code code="{code}" displayName="{name}" {LOINC}/><statusCode code="completed"/>
      <effectiveTime value="20240902101500+0200"/>
      <component><observation classCode="OBS" moodCode="EVN">
        <templateId root="1.3.6.1.4.1.19376.1.12.1.3.9"/>
        <id root="1.2.250.1.999.12" extension="{ident}-ADD"/>
        <code code="28815-9" displayName="Addition" {LOINC}/><statusCode code="completed"/>
        <effectiveTime value="20240902101500+0200"/>
        <value xsi:type="PQ" value="2.25" unit="[diop]"/>
        <targetSiteCode code="18944008" displayName="oeil droit" {SNOMED}/>
      </observation></component></organizer></entry>"""


def test_lenses_prescribed_and_delivered_stay_apart() -> None:
    """The same right-eye addition (+2.25) under 'lentilles prescrites' and 'lentilles
    délivrées' (IHE Eye Care lensometry organizers, CI-SIS OPH-BRE: the components' LOINC
    codes are the same) was filed twice alike: which was prescribed and which delivered was
    lost, and among results their facts were one. Each now says its organizer (group)."""
    got = _entries(_section("30954-2", "Lentilles",
                            _lenses("LP", "28866-2", "Lentilles prescrites") +
                            _lenses("LD", "28868-8", "Lentilles délivrées")))
    assert [(e.code, e.details["group"]["code"], e.details["group"]["display"])
            for e in got] == [("28815-9", "28866-2", "Lentilles prescrites"),
                              ("28815-9", "28868-8", "Lentilles délivrées")]
    assert fact_of(got[0]) != fact_of(got[1])


def test_which_visual_acuity_is_said_by_its_organizer() -> None:
    """Best corrected or uncorrected is a qualifier of the visual acuity organizer's code,
    not of each eye's measurement: it is the measurements' group, with the qualifier."""
    organizer = f"""<entry><organizer classCode="CLUSTER" moodCode="EVN">
      <templateId root="1.3.6.1.4.1.19376.1.12.1.3.2"/><id root="1.2.250.1.999.12" extension="AV"/>
      <code code="28631-0" displayName="Acuité visuelle" {LOINC}><qualifier>
        <name code="MED-1049" displayName="Acuité visuelle observée"
          codeSystem="1.2.250.1.213.1.1.4.322"/>
        <value code="MED-1048" displayName="Meilleure acuité visuelle corrigée"
          codeSystem="1.2.250.1.213.1.1.4.322"/></qualifier></code>
      <statusCode code="completed"/><effectiveTime value="20240902"/>
      <component><observation classCode="OBS" moodCode="EVN">
        <templateId root="1.3.6.1.4.1.19376.1.12.1.3.6"/>
        <id root="1.2.250.1.999.12" extension="AV-OD"/>
        <code code="64841-0" displayName="Acuité visuelle ETDRS" {LOINC}/>
        <statusCode code="completed"/><effectiveTime value="20240902"/>
        <value xsi:type="INT" value="85"/>
        <targetSiteCode code="18944008" displayName="oeil droit" {SNOMED}/>
      </observation></component></organizer></entry>"""
    (got,) = _entries(_section("70939-4", "Acuité visuelle", organizer))
    group = got.details["group"]
    assert (group["code"], group["qualifiers"][0]["value"]["code"]) == ("28631-0", "MED-1048")


def test_a_vital_signs_organizer_gives_no_group() -> None:
    """Only the organizers listed in cda_group_organizers.csv: a vital signs organizer's
    measurements are what their own codes say (their facts unchanged)."""
    vitals = f"""<entry><organizer classCode="CLUSTER" moodCode="EVN">
      <templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.13.1"/>
      <id root="1.2.250.1.999.12" extension="VS"/>
      <code code="46680005" displayName="Signes vitaux" {SNOMED}/><statusCode code="completed"/>
      <effectiveTime value="20240902101500+0200"/>
      <component><observation classCode="OBS" moodCode="EVN">
        <templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.13.2"/>
        <id root="1.2.250.1.999.12" extension="VS-P"/>
        <code code="29463-7" displayName="Poids" {LOINC}/><statusCode code="completed"/>
        <effectiveTime value="20240902101500+0200"/><value xsi:type="PQ" value="71.5" unit="kg"/>
      </observation></component></organizer></entry>"""
    (got,) = _entries(_section("8716-3", "Signes vitaux", vitals))
    assert got.type == "vital_sign" and "group" not in got.details
