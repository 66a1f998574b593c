"""FHIR export round 10: what an R4 server (HAPI, a FR Core reader) would reject or misread
in the Bundle, for the entries real inputs produce.

Rows are built by hand as the store holds them (the normalizers' details); every Bundle is
validated whole (check_bundle, check_r4_rules of round 7).
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from dossiers.fhir import to_bundle
from dossiers.fhir.units import is_ucum
from tests.test_fhir_export import PATIENT, _row, by_entry_id
from tests.test_fhir_round7 import _valid

UCUM = "http://unitsofmeasure.org"


# -- a medication's dose: the CDA PQ's unit is UCUM ---------------------------------------
def _medication(i: int, **details: object) -> dict:
    return _row(i, type="medication", code="V09AX01", system="ATC",
                display="111In-indium acide pentétique", status="completed",
                effective="2024-05-02T09:40+02:00", details=details)


def _dose(bundle: dict, i: int) -> dict:
    (dosage,) = by_entry_id(bundle)[i]["dosage"]
    (dose,) = dosage["doseAndRate"]
    return dose


def test_a_dose_in_a_ucum_unit_outside_the_lab_table_is_coded_ucum() -> None:
    """CR-IMG (ANS 2024.01): a scintigraphy's 200 MBq of indium; CR-ANEST: isoflurane
    500 to 500 g/mL. A CDA doseQuantity's unit is UCUM by the standard (PQ), and both are
    UCUM, but they are no lab units of our table: the Quantity had the unit alone, no
    system nor code, and a reader could neither convert nor compare the dose (R4 Quantity:
    the coded form, system + code, is what systems compute with). An Immunization's dose
    had them already."""
    bundle = to_bundle(PATIENT, [_medication(1, dose="200 MBq"),
                                 _medication(2, dose="500-500 g/mL"),
                                 _medication(3, dose="2 {tablet}")])
    _valid(bundle)
    assert _dose(bundle, 1) == {"doseQuantity": {"value": 200, "unit": "MBq",
                                                 "system": UCUM, "code": "MBq"}}
    low = {"value": 500, "unit": "g/mL", "system": UCUM, "code": "g/mL"}
    assert _dose(bundle, 2) == {"doseRange": {"low": low, "high": low}}
    assert _dose(bundle, 3)["doseQuantity"]["code"] == "{tablet}"


def test_words_and_an_accented_annotation_are_no_ucum_code() -> None:
    """What is no UCUM stays a unit for people: the administration unit's words (C-CDA
    dose 1 'comprimé'), an annotation of accented letters ('{comprimé}': UCUM is printable
    US-ASCII only, §1), a unit with a space. Claiming them UCUM would fail the receiver's
    UCUM validation of Quantity.code."""
    bundle = to_bundle(PATIENT, [
        _medication(1, dose="1", administration_unit={"code": "C48542",
                                                      "display": "comprimé"}),
        _medication(2, dose="1-2 {comprimé}")])
    _valid(bundle)
    assert _dose(bundle, 1) == {"doseQuantity": {"value": 1, "unit": "comprimé"}}
    assert _dose(bundle, 2) == {"doseRange": {"low": {"value": 1, "unit": "{comprimé}"},
                                              "high": {"value": 2, "unit": "{comprimé}"}}}


@pytest.mark.parametrize(("unit", "ucum"), [
    ("{comprimé}", False), ("{red cells}", False), ("{gélule}/d", False),
    ("{tbl}", True), ("{cells}/uL", True), ("10*3/uL{RBC}", True)])
def test_a_ucum_annotation_is_printable_ascii(unit: str, ucum: bool) -> None:
    """A result's unit declared UCUM by its sender (OBX-6.3 UCUM, a CDA PQ) is exported as
    a UCUM code only when it is one: an annotation holds characters 33 to 126 alone."""
    assert is_ucum(unit) is ucum


# -- a masked entry says it is restricted in the code system R4 servers enforce ------------
CONFIDENTIALITY = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"


def _confidentiality(labels: list[dict]) -> list[str]:
    return [s["code"] for s in labels if s["system"] == CONFIDENTIALITY]


def test_a_masked_entry_is_restricted_in_v3_confidentiality() -> None:
    """A potassium of an ORU the lab sent with MASQUE_PS=Y (no CDA, no confidentiality
    code), and a CR-BIO the sender coded 'N' that the patient masked (mask_override): their
    meta.security held the DMP's TRE_A07 MASQUE_PS alone (and the sender's 'N'). A server
    that enforces R4's security labels knows v3-Confidentiality (HAPI's consent interceptors,
    SMART apps), not TRE_A07: it read both as unrestricted, or 'normal'. They are now 'R'
    (restricted), one confidentiality code each, beside the TRE_A07 code."""
    rows = [_row(1, code="2823-3", display="Potassium", value_num=4.1, unit="mmol/L",
                 masking={"MASQUE_PS": True, "DESTDMP": True}),
            _row(2, type="document", code="11502-2", display="CR d'examens biologiques",
                 effective="2024-03-19T10:15:22+01:00", mask_override=True,
                 details={"confidentiality": "N"})]
    bundle = to_bundle(PATIENT, rows)
    _valid(bundle)
    res = by_entry_id(bundle)
    assert [s["code"] for s in res[1]["meta"]["security"]] == ["R", "MASQUE_PS"]
    assert _confidentiality(res[2]["meta"]["security"]) == ["R"]
    assert [c["coding"][0]["code"] for c in res[2]["securityLabel"]] == ["R", "MASQUE_PS"]


def test_confidentiality_is_the_senders_when_nothing_masks_it_or_it_is_higher() -> None:
    """The sender's 'V' stays 'V' under a mask (very restricted is above restricted); an
    unmasked 'N' stays 'N'; the patient's unmasking (mask_override false) of a MASQUE_PS
    result leaves it without label; a routing flag (DESTDMP) is no restriction."""
    rows = [_row(1, type="document", code="11502-2", display="CR d'examens biologiques",
                 masking={"MASQUE_PS": True}, details={"confidentiality": "V"}),
            _row(2, type="document", code="11502-2", display="CR d'examens biologiques",
                 details={"confidentiality": "N"}),
            _row(3, value_num=4.1, unit="mmol/L", masking={"MASQUE_PS": True},
                 mask_override=False),
            _row(4, value_num=4.1, unit="mmol/L", masking={"DESTDMP": True})]
    bundle = to_bundle(PATIENT, rows)
    _valid(bundle)
    res = by_entry_id(bundle)
    assert _confidentiality(res[1]["meta"]["security"]) == ["V"]
    assert _confidentiality(res[2]["meta"]["security"]) == ["N"]
    assert "meta" not in res[3] and "meta" not in res[4]


# -- a timing event that is the moment itself takes no offset (R4 tim-9) -------------------
def test_an_offset_from_a_meal_itself_stays_in_words() -> None:
    """An EIVL_TS 'au petit-déjeuner' (CM) with an offset of 30 min: Timing.repeat had
    when CM and offset 30, which R4 tim-9 (a rule: an offset needs a when, and not C, CM,
    CD, CV) rejects, and the whole MedicationStatement with it. The offset stays in the
    dosage text; before breakfast (ACM) keeps its offset."""
    bundle = to_bundle(PATIENT, [
        _row(1, type="medication", code="A10BA02", system="ATC", display="metformine",
             status="active", details={"dose": "1 {tablet}", "event": "CM",
                                       "event_offset": "30 min"}),
        _row(2, type="medication", code="A10BA02", system="ATC", display="metformine",
             status="active", details={"dose": "1 {tablet}", "event": "ACM",
                                       "event_offset": "30 min"})])
    _valid(bundle)
    res = by_entry_id(bundle)
    (at_meal,), (before,) = res[1]["dosage"], res[2]["dosage"]
    assert at_meal["timing"]["repeat"] == {"when": ["CM"]}
    assert "offset 30 min" in at_meal["text"]
    assert before["timing"]["repeat"] == {"when": ["ACM"], "offset": 30}


# -- a code system our entries name by its OID, that has a FHIR URI ------------------------
def test_an_ips_absence_is_in_the_ips_code_system_by_its_uri() -> None:
    """IPS-FR (ANS 2024.01): 'Pas de traitement médicamenteux connu', coded
    no-known-medications under 2.16.840.1.113883.5.1150.1, the OID of IPS's absent/unknown
    code system. It went out as urn:oid:2.16.840.1.113883.5.1150.1: R4 names a code system
    by its canonical URI when it has one, and an IPS reader (the IPS profiles bind these
    codes under the URI) matched nothing. Another OID without a URI stays urn:oid:."""
    bundle = to_bundle(PATIENT, [
        _row(1, type="absence", code="no-known-medications",
             system="2.16.840.1.113883.5.1150.1",
             display="Pas de traitement médicamenteux connu",
             details={"section": "10160-0", "absent": "medication"}),
        _row(2, type="problem", code="114", system="1.2.250.1.213.2.9",
             display="épilepsie")])
    _valid(bundle)
    res = by_entry_id(bundle)
    assert res[1]["code"]["coding"] == [{
        "system": "http://hl7.org/fhir/uv/ips/CodeSystem/absent-unknown-uv-ips",
        "code": "no-known-medications", "display": "Pas de traitement médicamenteux connu"}]
    assert res[2]["code"]["coding"][0]["system"] == "urn:oid:1.2.250.1.213.2.9"


def test_a_study_two_reports_share_carries_one_confidentiality_the_highest() -> None:
    """A knee MRI's report (sender 'N') and its addendum the patient masked: the one
    ImagingStudy both name took the labels of each, 'N' and 'R' side by side, which
    contradict each other. It carries 'R' alone, with the TRE_A07 mask."""
    from tests.test_fhir_export import KNEE_MRI

    rows = [_row(n, type="imaging_report", code="18748-4", display="CR d'imagerie",
                 status="final", details={"dicom_studies": KNEE_MRI, "confidentiality": "N"},
                 mask_override=n == 2) for n in (1, 2)]
    bundle = to_bundle(PATIENT, rows)
    _valid(bundle)
    (study,) = [e["resource"] for e in bundle["entry"]
                if e["resource"]["resourceType"] == "ImagingStudy"]
    assert [s["code"] for s in study["meta"]["security"]] == ["R", "MASQUE_PS"]


# -- a sender's local codes under that sender's system -------------------------------------
def _from(source: str, import_id: int) -> list[dict]:
    return [{"import_id": import_id, "source": source, "relation": "created",
             "created_at": datetime(2025, 2, 4, 10, 5, tzinfo=UTC)}]


def test_local_codes_of_two_labs_are_two_code_systems() -> None:
    """'GLY^Glycémie à jeun^L' of one lab and 'GLY^Glycosurie^L' of another (HL7 table 0396
    L: a local code, whose lab it does not say): both went out as urn:dmp/CodeSystem/L#GLY,
    one FHIR concept (R4: system + code identify it), and a reader merged a blood glucose
    with a urine one. Each is now under L of the source that brought it, the OBR's
    ServiceRequest too; a lab's named system (99BAZ) stays as it is, and so does an L code
    whose source is unknown."""
    rows = [_row(1, type="lab_report", code="GLY", system="L", display="Glycémie à jeun",
                 import_id=12, details={"placer_order": "8127079-2^LABM-PRE"}),
            _row(2, code="GLY", system="L", display="Glycémie à jeun", value_num=1.49,
                 unit="g/L", parent_id=1, import_id=12),
            _row(3, code="GLY", system="l", display="Glycosurie", value="négatif",
                 value_type="ST", import_id=30),
            _row(4, code="NA", system="99BAZ", display="Sodium", value_num=140,
                 unit="mmol/L", import_id=30),
            _row(5, code="GLY", system="L", display="Glycémie", value_num=1.0, unit="g/L")]
    bundle = to_bundle(PATIENT, rows, provenance={
        1: _from("labm-lyon", 12), 2: _from("labm-lyon", 12), 3: _from("bioazur nice", 30),
        4: _from("bioazur nice", 30)})
    _valid(bundle)
    res = by_entry_id(bundle)

    def system(i: int) -> str:
        return res[i]["code"]["coding"][0]["system"]

    assert system(2) == "urn:dmp/CodeSystem/L/labm-lyon"
    assert system(3) == "urn:dmp/CodeSystem/l/bioazur%20nice"
    assert (system(4), system(5)) == ("urn:dmp/CodeSystem/99BAZ", "urn:dmp/CodeSystem/L")
    (order,) = [e["resource"] for e in bundle["entry"]
                if e["resource"]["resourceType"] == "ServiceRequest"]
    assert order["code"]["coding"][0]["system"] == "urn:dmp/CodeSystem/L/labm-lyon"
    assert system(1) == "urn:dmp/CodeSystem/L/labm-lyon"
