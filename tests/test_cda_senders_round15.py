"""CDA R2 documents the way other senders write them (round 15: statements with no code
element, local codes with a standard translation, who stated a fact, encodings). Each test
builds a small invented document with one structure CDA R2 / CI-SIS / C-CDA allows and
checks what is filed against what a clinician reading the document understands."""

from __future__ import annotations

import pytest

from tests.test_cda_real_world import _entries, _section
from tests.test_cda_senders_round14 import _bundle, _filed, _resources

LOINC = 'codeSystem="2.16.840.1.113883.6.1"'


# -- a procedure with no code element ----------------------------------------------------------
def _procedure(code: str, text: str) -> str:
    """A C-CDA / IHE PCC procedure entry as an EHR writes what the surgeon typed."""
    return f"""<entry><procedure classCode="PROC" moodCode="EVN">
      <templateId root="2.16.840.1.113883.10.20.22.4.14"/>
      <templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.19"/>
      <id root="1.2.250.1.999.15" extension="PROC-1"/>{code}
      <text>{text}</text>
      <statusCode code="completed"/><effectiveTime value="20230411"/></procedure></entry>"""


@pytest.mark.parametrize("text", ["Appendicectomie sous cœlioscopie",
                                  '<reference value="#proc1"/>'])
def test_a_procedure_without_a_code_element_is_filed_by_its_text(text: str) -> None:
    """CDA R2 Procedure.code is 0..1: an appendectomy written with no code element at all,
    its name in the statement's text (inline or in the narrative), was dropped before its
    words were read (round 13 read them only under a code nullFlavor'd)."""
    narrative = '<paragraph ID="proc1">Appendicectomie sous cœlioscopie</paragraph>'
    (proc,) = _entries(_section("47519-4", narrative, _procedure("", text)))
    assert (proc.type, proc.code, proc.display, proc.mapped) == (
        "procedure", None, "Appendicectomie sous cœlioscopie", False)
    assert proc.effective == "2023-04-11"
    (resource,) = _resources(_bundle([proc]), "Procedure")
    assert resource["code"]["text"] == "Appendicectomie sous cœlioscopie"


def test_a_procedure_with_no_code_nor_text_is_still_not_filed() -> None:
    assert _entries(_section("47519-4", "", _procedure("", ""))) == []


# -- a local code with a standard translation -----------------------------------------------
def _glucose(code: str) -> str:
    return f"""<entry><observation classCode="OBS" moodCode="EVN">
      <templateId root="2.16.840.1.113883.10.20.22.4.2"/>
      <templateId root="1.3.6.1.4.1.19376.1.3.1.6"/>
      <id root="1.2.250.1.999.15" extension="GLY-1"/>{code}
      <statusCode code="completed"/><effectiveTime value="20230411080500+0200"/>
      <value xsi:type="PQ" value="5.4" unit="mmol/L"/></observation></entry>"""


LOCAL_GLUCOSE = """<code code="GLYJ" codeSystem="1.2.250.1.999.15.55"
  displayName="Glycémie à jeun"><translation code="1558-6" codeSystem="2.16.840.1.113883.6.1"
  displayName="Glucose à jeun [Moles/Volume] Sang"/></code>"""


def test_a_local_result_code_translated_into_loinc_keeps_the_labs_code() -> None:
    """A lab's own code with its LOINC in translation: filed under the LOINC (as before), the
    lab's code was dropped. It is kept in details.local_code, as the HL7v2 path keeps
    OBX-3's, and the export gives both codings."""
    (result,) = _entries(_section("30954-2", "Glycémie", _glucose(LOCAL_GLUCOSE)))
    assert (result.code, result.system, result.value) == ("1558-6", "LN", "5.4")
    assert result.details["local_code"] == {"code": "GLYJ", "system": "1.2.250.1.999.15.55",
                                            "display": "Glycémie à jeun"}
    (obs,) = _resources(_bundle([result]), "Observation")
    assert [c["code"] for c in obs["code"]["coding"]] == ["1558-6", "GLYJ"]


@pytest.mark.parametrize("code", [
    f'<code code="1558-6" {LOINC} displayName="Glucose à jeun"/>',
    f'<code code="1558-6" {LOINC}><translation code="GLYJ" codeSystem="1.2.250.1.999.15.55"/>'
    "</code>",
    f'<code nullFlavor="OTH"><translation code="1558-6" {LOINC}/></code>'])
def test_a_result_coded_in_loinc_has_no_local_code(code: str) -> None:
    (result,) = _entries(_section("30954-2", "Glycémie", _glucose(code)))
    assert result.code == "1558-6"
    assert "local_code" not in result.details


# -- who stated a fact, who recorded it -------------------------------------------------------
def _allergy(informant: str, author: str = "") -> str:
    """A C-CDA allergy concern (Allergy Intolerance Observation with its author and
    informant) to amoxicillin."""
    return f"""<entry><act classCode="ACT" moodCode="EVN">
      <templateId root="2.16.840.1.113883.10.20.22.4.30"/>
      <id root="1.2.250.1.999.15" extension="AL-1"/>
      <code code="CONC" codeSystem="2.16.840.1.113883.5.6"/><statusCode code="active"/>
      <author><templateId root="2.16.840.1.113883.10.20.22.4.119"/><time value="20220301"/>
        <assignedAuthor><id root="1.2.250.1.71.4.2.1" extension="810000000777"/>
        </assignedAuthor></author>
      <entryRelationship typeCode="SUBJ"><observation classCode="OBS" moodCode="EVN">
        <templateId root="2.16.840.1.113883.10.20.22.4.7"/>
        <id root="1.2.250.1.999.15" extension="AL-1-obs"/>
        <code code="ASSERTION" codeSystem="2.16.840.1.113883.5.4"/>
        <statusCode code="completed"/><effectiveTime><low value="2006"/></effectiveTime>
        <value xsi:type="CD" code="416098002" codeSystem="2.16.840.1.113883.6.96"
          displayName="allergie médicamenteuse"/>{author}{informant}
        <participant typeCode="CSM"><participantRole classCode="MANU">
          <playingEntity classCode="MMAT"><code code="J01CA04"
            codeSystem="2.16.840.1.113883.6.73" displayName="amoxicilline"/></playingEntity>
        </participantRole></participant></observation></entryRelationship></act></entry>"""


PATIENT_SAYS = '<informant><relatedEntity classCode="PAT"/></informant>'
MOTHER_SAYS = """<informant><relatedEntity classCode="PRS"><code code="MTH"
  codeSystem="2.16.840.1.113883.5.111" displayName="mère"/>
  <relatedPerson><name><given>Odile</given><family>Lefèvre</family></name></relatedPerson>
  </relatedEntity></informant>"""
NURSE_AUTHOR = """<author><time value="20230914103000+0200"/><assignedAuthor>
  <id root="1.2.250.1.71.4.2.1" extension="810000000888"/>
  <code code="60" codeSystem="1.2.250.1.71.1.2.7" displayName="Infirmier"/>
  <representedOrganization><id root="1.2.250.1.71.4.2.2" extension="1750000000"/>
  </representedOrganization></assignedAuthor></author>"""


def test_a_patient_reported_allergy_says_the_patient_stated_it() -> None:
    """The patient told the nurse of the allergy (informant relatedEntity PAT), who recorded
    it on 14 September 2023 (the observation's author): both were dropped, the allergy
    looked first-hand and undated. Kept as details.informants and recorded_by; exported
    as the AllergyIntolerance's asserter (the Patient), recorder and recordedDate."""
    (allergy,) = _entries(_section("48765-2", "Allergies",
                                   _allergy(PATIENT_SAYS, NURSE_AUTHOR)))
    assert allergy.details["informants"] == [{"source": "patient"}]
    assert allergy.details["recorded_by"] == [{
        "ids": ["1.2.250.1.71.4.2.1^810000000888"], "role": "60",
        "organization": ["1.2.250.1.71.4.2.2^1750000000"], "time": "2023-09-14T10:30:00+02:00"}]
    (res,) = _resources(_bundle([allergy]), "AllergyIntolerance")
    assert res["asserter"] == res["patient"]
    # typed as the Practitioner resources are since FHIR round 6
    assert res["recorder"]["type"] == "Practitioner"
    assert res["recorder"]["identifier"]["system"] == "urn:oid:1.2.250.1.71.4.2.1"
    assert res["recorder"]["identifier"]["value"] == "810000000888"
    assert res["recorder"]["identifier"]["type"]["coding"][0]["code"] == "IDNPS"
    assert res["recordedDate"] == "2023-09-14T10:30:00+02:00"


def test_a_relative_stating_a_fact_is_said_without_a_name() -> None:
    """The mother reports her son's allergy: a relative by its relationship code, her name
    not kept (no third party's name in the details); the concern's author (context
    conduction) recorded it when the observation names none."""
    (allergy,) = _entries(_section("48765-2", "Allergies", _allergy(MOTHER_SAYS)))
    assert allergy.details["informants"] == [{"source": "relative", "relationship": {
        "code": "MTH", "system": "HL7-ROLECODE", "display": "mère"}}]
    assert "Lefèvre" not in repr(allergy.details)
    assert allergy.details["recorded_by"] == [{"ids": ["1.2.250.1.71.4.2.1^810000000777"],
                                               "time": "2022-03-01"}]
    (res,) = _resources(_bundle([allergy]), "AllergyIntolerance")
    assert res["asserter"] == {"type": "RelatedPerson", "display": "mère"}


def test_an_entry_without_informant_nor_author_says_none() -> None:
    proc = _procedure('<code code="80146002" codeSystem="2.16.840.1.113883.6.96"/>', "")
    (entry,) = _entries(_section("47519-4", "", proc))
    assert "informants" not in entry.details and "recorded_by" not in entry.details


def _vaccination(informant: str) -> str:
    """A C-CDA Immunization Activity (ROR vaccine, CIS code) the parent recalls."""
    return f"""<entry><substanceAdministration classCode="SBADM" moodCode="EVN"
        negationInd="false"><templateId root="2.16.840.1.113883.10.20.22.4.52"/>
      <id root="1.2.250.1.999.15" extension="VAC-1"/><statusCode code="completed"/>
      <effectiveTime value="20190612"/>
      <consumable><manufacturedProduct><templateId root="2.16.840.1.113883.10.20.22.4.54"/>
        <manufacturedMaterial><code code="03" codeSystem="2.16.840.1.113883.12.292"
          displayName="MMR"/><lotNumberText>T1234</lotNumberText></manufacturedMaterial>
      </manufacturedProduct></consumable>{informant}</substanceAdministration></entry>"""


def test_a_vaccination_a_parent_recalls_is_not_a_primary_source() -> None:
    """Immunization.primarySource: a vaccination the patient or a parent reports (C-CDA
    informant) is a secondary record, reportOrigin 'recall'; one stated by no one is
    exported as before (no primarySource)."""
    (recalled,) = _entries(_section("11369-6", "Vaccinations", _vaccination(MOTHER_SAYS)))
    (res,) = _resources(_bundle([recalled]), "Immunization")
    assert res["primarySource"] is False
    assert res["reportOrigin"]["coding"][0]["code"] == "recall"
    (plain,) = _entries(_section("11369-6", "Vaccinations", _vaccination("")))
    (res,) = _resources(_bundle([plain]), "Immunization")
    assert "primarySource" not in res and "reportOrigin" not in res


# -- UTF-16 without its byte order mark -------------------------------------------------------
def _creatinine_document() -> str:
    """A CR-BIO with one creatinine, its patient named by an INS, with no XML declaration."""
    from tests.test_cda_real_world import HEAD, TAIL
    from tests.test_cda_senders_round9 import _battery, _result

    head = HEAD.replace('<?xml version="1.0" encoding="UTF-8"?>\n', "").replace(
        '<id root="1.2.250.1.999.1.1" extension="IPP-4242"/>',
        '<id root="1.2.250.1.213.1.4.8" extension="268036912354128"/>'
    ).replace('<birthTime value="19620415"/>', '<birthTime value="19680314"/>')
    return head + _section("11502-2", "Créatinine", _battery(_result(
        "2160-0", "Créatinine", '<value xsi:type="PQ" value="72" unit="umol/L"/>'))) + TAIL


def test_a_utf16_document_without_bom_nor_declaration_is_filed(sqlite_ctx) -> None:  # noqa: ANN001
    """A .NET export (UnicodeEncoding without preamble): UTF-16LE, no BOM, no XML
    declaration. Detection called it a CDA; the parser read it as UTF-8 and refused it
    (CDA_NOT_XML, 'Char 0x0 out of allowed range'). It is read, and said on the ledger."""
    from dataclasses import replace

    sqlite_ctx.settings = replace(sqlite_ctx.settings, auto_create=True)
    row, values = _filed(sqlite_ctx, _creatinine_document().encode("utf-16-le"), "2160-0")
    assert (row.status, row.error_code) == ("deposited", None)
    assert [w for w in row.warnings if w.startswith("CDA_UTF16_WITHOUT_BOM")]
    assert [v for (v,) in values] == ["72"]


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
@pytest.mark.parametrize("before", ["", "\r\n"])
def test_utf16_without_bom_reads_in_either_byte_order(codec: str, before: str) -> None:
    from parsers.cda import parse_cda

    doc = parse_cda((before + _creatinine_document()).encode(codec))
    assert doc.header.title == "Synthèse"
    assert [w.code for w in doc.warnings][:1] == ["CDA_UTF16_WITHOUT_BOM"]


@pytest.mark.parametrize("data", [
    "\ufeff<ClinicalDocument/>".encode("utf-16-le"),
    b'<?xml version="1.0" encoding="UTF-8"?><ClinicalDocument/>',
    "<ClinicalDocument/>".encode("utf-32-le")])
def test_a_document_with_its_bom_or_in_utf8_gets_none(data: bytes) -> None:
    from parsers.cda.reader import add_missing_utf16_bom

    assert add_missing_utf16_bom(data) == (data, False)


# -- a decimal comma --------------------------------------------------------------------------
def test_a_result_with_a_decimal_comma_is_the_same_fact_as_the_labs_oru(sqlite_ctx) -> None:  # noqa: ANN001
    """A French hospital's CR-BIO writing its cholesterol 1,84 g/L (its locale's decimal
    mark; CDA's PQ has only the point): filed as text with no number (CDA_BAD_NUMBER),
    while the lab's ORU of the same result (read there with a warning) has one; the two
    channels' same fact made two entries. It is read as 1.84 with CDA_DECIMAL_COMMA, and
    is the ORU's entry, confirmed."""
    from tests.test_dedup_channels import cholesterol, cr_bio, file, links, oru

    lab = file(sqlite_ctx, oru(value="1,84"), "LABM")
    hospital = file(sqlite_ctx, cr_bio(value="1,84"), "chu")
    assert hospital.status == "deposited"
    assert [w for w in hospital.warnings if w.startswith("CDA_DECIMAL_COMMA")]
    assert not [w for w in hospital.warnings if w.startswith("CDA_BAD_NUMBER")]
    (entry,) = cholesterol(sqlite_ctx)
    assert (entry.value, entry.value_num) == ("1,84", 1.84)
    assert links(sqlite_ctx, entry.id) == [(lab.id, "created"), (hospital.id, "confirmed")]


@pytest.mark.parametrize(("value", "number"), [
    ('<value xsi:type="PQ" value="7,2" unit="mmol/L"/>', 7.2),
    ('<value xsi:type="REAL" value="-0,25"/>', -0.25),
    ('<value xsi:type="PQ" value="7.2" unit="mmol/L"/>', 7.2),
    ('<value xsi:type="PQ" value="1,250.5" unit="mmol/L"/>', None),
    ('<value xsi:type="INT" value="7,2"/>', None)])
def test_only_a_decimal_comma_reads_as_a_point(value: str, number: float | None) -> None:
    (result,) = _entries(_section("30954-2", "", _glucose(
        f'<code code="2823-3" {LOINC}/>').replace(
        '<value xsi:type="PQ" value="5.4" unit="mmol/L"/>', value)))
    assert result.value_num == number


# -- C-CDA supplies: the product participant, planned supplies ----------------------------------
def _supply(template: str, mood: str, product: str) -> str:
    return f"""<entry><supply classCode="SPLY" moodCode="{mood}">
      <templateId root="2.16.840.1.113883.10.20.22.4.{template}" extension="2014-06-09"/>
      <id root="1.2.250.1.999.15" extension="SUP-{template}"/><statusCode code="completed"/>
      <effectiveTime xsi:type="IVL_TS"><low value="20190305"/></effectiveTime>
      <quantity value="30"/>{product}</supply></entry>"""


PACEMAKER = """<participant typeCode="PRD"><participantRole classCode="MANU">
  <templateId root="2.16.840.1.113883.10.20.22.4.37"/>
  <playingDevice><code code="14106009" codeSystem="2.16.840.1.113883.6.96"
    displayName="Stimulateur cardiaque"/></playingDevice>
  <scopingEntity><id root="1.2.250.1.999.15.9"/></scopingEntity></participantRole></participant>"""
AMLODIPINE = """<product><manufacturedProduct classCode="MANU">
  <templateId root="2.16.840.1.113883.10.20.22.4.23" extension="2014-06-09"/>
  <manufacturedMaterial><code code="197361" codeSystem="2.16.840.1.113883.6.88"
    displayName="Amlodipine 5 MG Oral Tablet"/></manufacturedMaterial></manufacturedProduct>
  </product>"""


@pytest.mark.parametrize("section", ["46264-8", "47519-4"])
def test_a_device_supplied_as_ccda_writes_it_is_filed(section: str) -> None:
    """C-CDA Non-Medicinal Supply Activity names its device as the PRD participant (Product
    Instance): only DEV was read, the pacemaker was 'a device statement naming nothing' and
    not filed."""
    (device,) = _entries(_section(section, "", _supply("50", "EVN", PACEMAKER)))
    assert (device.type, device.code, device.display) == (
        "device", "14106009", "Stimulateur cardiaque")
    assert device.details["period_low"] == "2019-03-05"
    _bundle([device])


def test_a_planned_supply_of_a_device_is_a_plan() -> None:
    """C-CDA Planned Supply (4.43, moodCode INT) in the plan of treatment: not filed at all
    ('of a kind not read here'). A device to supply is a plan, as a planned procedure is."""
    (plan,) = _entries(_section("18776-5", "", _supply("43", "INT", PACEMAKER)))
    assert (plan.type, plan.code, plan.details["planned"]) == ("plan", "14106009", "device")


def test_a_planned_supply_of_a_medication_is_to_dispense_not_dispensed() -> None:
    """The same template with a medication: 30 tablets of amlodipine to dispense, a
    medication intended (a MedicationRequest with its quantity), never one handed out."""
    (plan,) = _entries(_section("18776-5", "", _supply("43", "INT", AMLODIPINE)))
    assert (plan.type, plan.code, plan.details["planned"]) == ("plan", "197361", "medication")
    assert plan.details["quantity_prescribed"] == {"value": "30", "unit": None}
    assert "dispensed" not in plan.details
    (request,) = _resources(_bundle([plan]), "MedicationRequest")
    assert request["dispenseRequest"]["quantity"]["value"] == 30


# -- an allergen named only in words, exported ------------------------------------------------
@pytest.mark.parametrize("agent", [
    '<code nullFlavor="OTH"><originalText><reference value="#al1"/></originalText></code>',
    '<code nullFlavor="UNK"/><name>Pollen de bouleau</name>'])
def test_an_allergen_named_in_words_is_what_the_export_says_the_allergy_is_to(agent: str) -> None:
    """C-CDA: value 'allergy to substance' (the kind), the substance uncoded (originalText
    or the playing entity's name). Filed under the kind with the words in
    details.allergen_text (as before); the AllergyIntolerance said 'Allergy to substance'
    and nothing of birch pollen. Its code is the words, its type the kind's."""
    allergy = _allergy("").replace(
        """<code code="J01CA04"
            codeSystem="2.16.840.1.113883.6.73" displayName="amoxicilline"/>""", agent
    ).replace('code="416098002"', 'code="419199007"').replace(
        "allergie médicamenteuse", "allergie à une substance")
    (entry,) = _entries(_section("48765-2", '<content ID="al1">Pollen de bouleau</content>',
                                 allergy))
    assert (entry.code, entry.details["allergen_text"]) == ("419199007", "Pollen de bouleau")
    (res,) = _resources(_bundle([entry]), "AllergyIntolerance")
    assert res["code"] == {"text": "Pollen de bouleau"}
    assert res["type"] == "allergy"


def test_a_coded_allergen_is_exported_as_before() -> None:
    (entry,) = _entries(_section("48765-2", "", _allergy("")))
    (res,) = _resources(_bundle([entry]), "AllergyIntolerance")
    assert res["code"]["coding"][0]["code"] == "J01CA04"
    assert (res["type"], res["category"]) == ("allergy", ["medication"])


def test_a_local_act_code_with_its_ccam_translation_exports_both() -> None:
    """A hospital's own act code translated into CCAM (the French classification of acts):
    filed under the CCAM, the hospital's code kept in details.local_code and, as for a
    result, given beside it in the Procedure's code."""
    code = """<code code="APPEND-LAP" codeSystem="1.2.250.1.999.15.66"
      displayName="Appendicectomie coelio"><translation code="HHFA016"
      codeSystem="1.2.250.1.213.2.5" displayName="Appendicectomie, par cœlioscopie"/></code>"""
    (proc,) = _entries(_section("47519-4", "", _procedure(code, "")))
    assert (proc.code, proc.details["local_code"]["code"]) == ("HHFA016", "APPEND-LAP")
    (res,) = _resources(_bundle([proc]), "Procedure")
    assert [c["code"] for c in res["code"]["coding"]] == ["HHFA016", "APPEND-LAP"]


# -- an encounter's discharge disposition -----------------------------------------------------
def _stay(disposition: str) -> str:
    """A C-CDA R2.1 Encounter Activity: a hospital stay in pneumology, discharged to a
    rehabilitation centre (sdtc:dischargeDispositionCode, HL7 table 0112)."""
    return f"""<entry typeCode="DRIV"><encounter classCode="ENC" moodCode="EVN">
      <templateId root="2.16.840.1.113883.10.20.22.4.49" extension="2015-08-01"/>
      <id root="1.2.250.1.999.15" extension="SEJ-1"/>
      <code code="IMP" codeSystem="2.16.840.1.113883.5.4" displayName="Hospitalisation"/>
      <effectiveTime><low value="20230405"/><high value="20230410"/></effectiveTime>
      {disposition}</encounter></entry>"""


def test_where_the_patient_went_after_a_stay_is_kept() -> None:
    """The header's encompassingEncounter disposition was read; an encounter entry's (C-CDA
    R2.1 puts it there) was dropped. Kept in details.discharge_disposition and exported as
    the Encounter's hospitalization.dischargeDisposition."""
    (stay,) = _entries(_section("46240-8", "", _stay(
        """<sdtc:dischargeDispositionCode code="04" codeSystem="2.16.840.1.113883.12.112"
        displayName="Transfert en structure de soins intermédiaires"/>""")))
    assert stay.details["discharge_disposition"] == {
        "code": "04", "system": "HL70112",
        "display": "Transfert en structure de soins intermédiaires"}
    (res,) = _resources(_bundle([stay]), "Encounter")
    assert res["hospitalization"]["dischargeDisposition"]["coding"][0]["code"] == "04"
    assert res["period"] == {"start": "2023-04-05", "end": "2023-04-10"}


def test_a_stay_without_disposition_says_none() -> None:
    (stay,) = _entries(_section("46240-8", "", _stay("")))
    assert "discharge_disposition" not in stay.details
    (res,) = _resources(_bundle([stay]), "Encounter")
    assert "hospitalization" not in res


def test_a_medication_the_patient_reports_is_his_statement() -> None:
    """A C-CDA Medication Activity of a medication history the patient stated (informant
    PAT) and a nurse recorded: the MedicationStatement's informationSource is the
    Patient, dateAsserted the nurse's time."""
    med = f"""<entry><substanceAdministration classCode="SBADM" moodCode="EVN">
      <templateId root="2.16.840.1.113883.10.20.22.4.16" extension="2014-06-09"/>
      <id root="1.2.250.1.999.15" extension="MED-1"/><statusCode code="active"/>
      <effectiveTime xsi:type="IVL_TS"><low value="20210301"/></effectiveTime>
      <consumable><manufacturedProduct classCode="MANU">
        <templateId root="2.16.840.1.113883.10.20.22.4.23" extension="2014-06-09"/>
        <manufacturedMaterial><code code="C09AA05" codeSystem="2.16.840.1.113883.6.73"
          displayName="ramipril"/></manufacturedMaterial></manufacturedProduct></consumable>
      {NURSE_AUTHOR}{PATIENT_SAYS}</substanceAdministration></entry>"""
    (entry,) = _entries(_section("10160-0", "", med))
    assert entry.details["informants"] == [{"source": "patient"}]
    (res,) = _resources(_bundle([entry]), "MedicationStatement")
    assert res["informationSource"] == res["subject"]
    assert res["dateAsserted"] == "2023-09-14T10:30:00+02:00"


# -- an encounter disposition (DLU: the hospital of preference) --------------------------------
DISPOSITION = """<entry><act classCode="ACT" moodCode="INT">
  <templateId root="1.3.6.1.4.1.19376.1.5.3.1.1.10.4.2"/>
  <templateId root="1.2.250.1.213.1.1.3.97"/>
  <id root="1.2.250.1.999.15" extension="DISPO-1"/>
  <code code="11302-7" displayName="Etablissement de santé de préférence"
    codeSystem="2.16.840.1.113883.6.1"/>
  <statusCode code="normal"/><effectiveTime nullFlavor="NAV"/>
  <participant typeCode="DST"><participantRole classCode="ROL">
    <id root="1.2.250.1.71.4.2.2" extension="920000650"/>
    <playingEntity><name>Hôpital Ambroise-Paré</name></playingEntity>
  </participantRole></participant></act></entry>"""


def test_the_hospital_a_resident_is_to_be_taken_to_is_a_plan_with_its_place() -> None:
    """A nursing home's DLU (dossier de liaison d'urgence) names the resident's hospital of
    preference (IHE PCC Encounter Disposition / CI-SIS FR-Disposition, moodCode INT, the
    hospital's FINESS as participant DST): 'of a kind not read here', not filed. It is a
    planned encounter with its destination, exported as a ServiceRequest whose location is
    the hospital."""
    (plan,) = _entries(_section("11302-7", "", DISPOSITION))
    assert (plan.type, plan.code, plan.details["planned"]) == ("plan", "11302-7", "encounter")
    assert plan.details["destination"] == {"ids": ["1.2.250.1.71.4.2.2^920000650"],
                                           "name": "Hôpital Ambroise-Paré"}
    bundle = _bundle([plan])
    (request,) = _resources(bundle, "ServiceRequest")
    (place,) = _resources(bundle, "Location")
    assert request["locationReference"][0]["display"] == place["name"] == \
        "Hôpital Ambroise-Paré"
    assert place["identifier"] == [{"system": "urn:oid:1.2.250.1.71.4.2.2",
                                    "value": "920000650"}]


def test_corpus_dlu_files_the_hospital_of_preference() -> None:
    from normalizers.cda import normalize_cda
    from parsers.cda import parse_cda
    from tests.conftest import corpus_path

    data = corpus_path("cda", "DLU-EHPAD-DLU_2022.01.xml").read_bytes()
    msg = normalize_cda(parse_cda(data), data, "corpus")
    (plan,) = [e for e in msg.entries if e.code == "11302-7"]
    assert plan.details["destination"]["ids"] == ["1.2.250.1.71.4.2.2^101765376"]
    assert not [w for w in msg.warnings if "11302-7" in w]


def test_a_formulary_code_translated_into_cis_is_kept_and_an_act_code_is_not() -> None:
    """A hospital formulary's drug code with its CIS in translation: filed under the CIS,
    the formulary's code kept as details.local_code (it was dropped). The statement's own
    code (a local kind of act translated into HL7 ActCode) is no code of the drug: it is
    never the medication's local code."""
    med = """<entry><substanceAdministration classCode="SBADM" moodCode="EVN">
      <templateId root="1.3.6.1.4.1.19376.1.5.3.1.4.7"/>
      <id root="1.2.250.1.999.15" extension="MED-2"/>
      <code code="TT-HAB" codeSystem="1.2.250.1.999.15.70"><translation code="DRUG"
        codeSystem="2.16.840.1.113883.5.4"/></code><statusCode code="completed"/>
      <effectiveTime xsi:type="IVL_TS"><low value="20230301"/></effectiveTime>
      <consumable><manufacturedProduct><manufacturedMaterial>
        <code code="PHARMA-0042" codeSystem="1.2.250.1.999.15.71" displayName="KARDEGIC 75">
          <translation code="64963291" codeSystem="1.2.250.1.213.2.3.1"
            displayName="KARDEGIC 75 mg, poudre pour solution buvable en sachet"/></code>
      </manufacturedMaterial></manufacturedProduct></consumable></substanceAdministration>
      </entry>"""
    (entry,) = _entries(_section("10160-0", "", med))
    assert (entry.code, entry.system) == ("64963291", "CIS")
    assert entry.details["local_code"] == {"code": "PHARMA-0042",
                                           "system": "1.2.250.1.999.15.71",
                                           "display": "KARDEGIC 75"}
    (res,) = _resources(_bundle([entry]), "MedicationStatement")
    codes = [c["code"] for c in res["medicationCodeableConcept"]["coding"]]
    assert codes[0] == "64963291" and "PHARMA-0042" in codes and "TT-HAB" not in codes


def test_an_allergy_the_patient_entered_himself_names_no_professional() -> None:
    """C-CDA patient-generated data: the entry's author is the patient (assignedAuthor/id
    = patientRole/id, here the hospital's IPP). Read as a professional's, the patient's
    identifier was copied into details.recorded_by and exported as a Practitioner's."""
    author = """<author><time value="20240110"/><assignedAuthor>
      <id root="1.2.250.1.999.1.1" extension="IPP-4242"/></assignedAuthor></author>"""
    informant = """<informant><assignedEntity><id root="1.2.250.1.999.1.1"
      extension="IPP-4242"/></assignedEntity></informant>"""
    (allergy,) = _entries(_section("48765-2", "", _allergy(informant, author)))
    assert allergy.details["recorded_by"] == [{"source": "patient", "time": "2024-01-10"}]
    assert allergy.details["informants"] == [{"source": "patient"}]
    assert "IPP-4242" not in repr(allergy.details)
    (res,) = _resources(_bundle([allergy]), "AllergyIntolerance")
    assert res["recorder"] == res["asserter"] == res["patient"]


def test_a_procedure_without_template_nor_code_is_filed_by_its_text() -> None:
    """The same with no template at all (CDA R2 alone: an EHR of another country): it was
    'of a kind not read here'."""
    proc = """<entry><procedure classCode="PROC" moodCode="EVN">
      <id root="1.2.250.1.999.15" extension="PROC-9"/>
      <text>Ablation du plâtre de l'avant-bras gauche</text>
      <statusCode code="completed"/><effectiveTime value="20230502"/></procedure></entry>"""
    (entry,) = _entries(_section("47519-4", "", proc))
    assert (entry.type, entry.display) == ("procedure", "Ablation du plâtre de l'avant-bras gauche")
