"""FHIR export round 6: what a FHIR consumer (an FR Core validator, a server taking the
Bundle, an EHR importing it) still tripped on.

Rows are built by hand as the store holds them (no Prefect, no database); every Bundle is
validated whole (check_bundle).
"""

from __future__ import annotations

import re

from dossiers.fhir import full_url, to_bundle
from tests.test_fhir_export import PATIENT, _row, by_entry_id, check_bundle

IDNPS_TYPE = {"coding": [{"system": "https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-v2-0203",
                          "code": "IDNPS"}]}
PS = "urn:oid:1.2.250.1.71.4.2.1"


def _practitioners(bundle: dict) -> list[dict]:
    return [e["resource"] for e in bundle["entry"]
            if e["resource"]["resourceType"] == "Practitioner"]


# -- professionals named by their id ----------------------------------------------------------
def test_a_professional_by_id_is_typed_as_the_practitioner_resources_are() -> None:
    """A document's author, a procedure's performer, a problem's informant named by their
    national PS id were logical references with an untyped identifier, and a bare RPPS (an
    HL7v2 sender's) kept as sent: a reader matching on the typed idNatPS of the Bundle's
    Practitioners found none. Each is now a Practitioner reference by the IDNPS-typed
    idNatPS ('8' + RPPS), the very identifier the Practitioner resources carry."""
    doc = {"type": "document", "code": "11502-2", "system": "LN", "display": "CR-BIO",
           "performer": f"{PS[8:]}^10003791976",  # a bare RPPS under the PS OID
           "details": {"ordered_by": [{"ids": [f"{PS[8:]}^810003791976"]}],
                       "orders": ["1.2.250.1.213.1.1.9^2024-77"]}}
    problem = {"type": "problem", "code": "38341003", "system": "SNOMED-CT",
               "display": "HTA", "details": {"informants": [
                   {"source": "professional", "ids": [f"{PS[8:]}^810003791976"]}]}}
    rows = [_row(1, **doc), _row(2, **problem)]
    bundle = to_bundle(PATIENT, rows)
    check_bundle(bundle)
    res = by_entry_id(bundle)
    expected = {"type": "Practitioner",
                "identifier": {"type": IDNPS_TYPE, "system": PS, "value": "810003791976"}}
    assert res[1]["author"] == [expected]
    assert res[2]["asserter"] == expected
    (prescriber,) = _practitioners(bundle)
    assert expected["identifier"] in prescriber["identifier"]


def test_an_other_registers_id_stays_as_it_was_sent() -> None:
    """A structure's or a local id is not a professional's: no Practitioner type."""
    rows = [_row(1, type="document", code="11502-2", system="LN", display="CR",
                 performer="1.2.250.1.213.1.1.9^ABC")]
    bundle = to_bundle(PATIENT, rows)
    check_bundle(bundle)
    assert by_entry_id(bundle)[1]["author"] == [
        {"identifier": {"system": "urn:oid:1.2.250.1.213.1.1.9", "value": "ABC"}}]
    assert full_url("entry", 1) in {e["fullUrl"] for e in bundle["entry"]}


# -- the order a CR-BIO answers ---------------------------------------------------------------
def test_a_cr_bios_results_and_report_are_based_on_its_order() -> None:
    """A CR-BIO's inFulfillmentOf became a ServiceRequest in the DocumentReference's
    context only: the report and the results read from it (what a reader of lab results
    looks at) had no basedOn, the prescription and its prescriber unreachable from them.
    Each now points at the document's order; a problem read from it does not (R4 Condition
    has no basedOn), nor a result of another document."""
    doc = {"type": "document", "code": "11502-2", "system": "LN", "display": "CR-BIO",
           "details": {"orders": ["1.2.250.1.213.1.1.9^2024-77"],
                       "ordered_by": [{"ids": [f"{PS[8:]}^810003791976"],
                                       "time": "2024-03-09T10:07+01:00"}]}}
    rows = [_row(1, **doc), _row(2, type="lab_report", code="24331-1", parent_id=1),
            _row(3, parent_id=2, value_num=5.2, unit="mmol/L"),
            _row(4, parent_id=1, value_num=1.1, unit="g/L"),
            _row(5, type="problem", code="44054006", system="SNOMED-CT", parent_id=1),
            _row(6, type="document", code="11502-2", system="LN", display="CR-BIO 2"),
            _row(7, parent_id=6, value_num=6.0, unit="mmol/L")]
    bundle = to_bundle(PATIENT, rows)
    check_bundle(bundle)
    res = by_entry_id(bundle)
    (order,) = [r["reference"] for r in res[1]["context"]["related"]]
    assert res[2]["basedOn"] == [{"reference": order}]
    assert res[4]["basedOn"] == [{"reference": order}]
    assert "basedOn" not in res[3]  # its report's: the report is based on the order
    assert "basedOn" not in res[5] and "basedOn" not in res[7]


# -- the visit a problem was diagnosed at -----------------------------------------------------
def test_a_problem_diagnosed_at_a_visit_is_that_encounters() -> None:
    """C-CDA Encounter Diagnosis (and a problem under RSON): the store keeps the visit
    (details.visit, the encounter entry's key and the role) but the Condition said nothing
    of it. Condition.encounter names it now, and the Encounter lists it as its diagnosis
    or its reason; a visit the Bundle does not hold links nothing."""
    enc = {"type": "encounter", "code": "AMB", "system": "ActCode", "display": "Consultation",
           "key": "enc-2024-03-10", "effective": "2024-03-10T08:30+01:00"}
    rows = [_row(1, **enc),
            _row(2, type="problem", code="38341003", system="SNOMED-CT", display="HTA",
                 details={"visit": {"key": "enc-2024-03-10", "role": "diagnosis"}}),
            _row(3, type="problem", code="25064002", system="SNOMED-CT",
                 display="Céphalées",
                 details={"visit": {"key": "enc-2024-03-10", "role": "reason"}}),
            _row(4, type="problem", code="73211009", system="SNOMED-CT", display="Diabète",
                 details={"visit": {"key": "enc-masked", "role": "diagnosis"}})]
    bundle = to_bundle(PATIENT, rows)
    check_bundle(bundle)
    res = by_entry_id(bundle)
    visit = {"reference": full_url("entry", 1)}
    assert res[2]["encounter"] == visit and res[3]["encounter"] == visit
    assert res[1]["diagnosis"] == [{"condition": {"reference": full_url("entry", 2)}}]
    assert res[1]["reasonReference"] == [{"reference": full_url("entry", 3)}]
    assert "encounter" not in res[4]
    assert [c["coding"][0]["code"] for c in res[2]["category"]] == ["encounter-diagnosis"]
    assert "category" not in res[3] and "category" not in res[4]


# -- what a fact or a document refers to ------------------------------------------------------
def test_what_a_procedure_a_problem_and_a_document_refer_to_is_referenced() -> None:
    """details.external_references (CDA act.reference) were dropped from the Bundle: the
    colonoscopy's report (by id) is its Procedure.report, the pathology report found at an
    address a DocumentReference with that url, the IPS-FR problem's guideline (a URL, no
    id) its evidence, the CARD-F-PRC document's external document (a UUID) its context."""
    colo_refs = [
        {"kind": "externalDocument", "type": "REFR", "id": "1.2.250.1.999.77^CR-COLO-2024-001",
         "code": {"code": "28570-0", "system": "LN", "display": "Compte rendu de procédure"},
         "set_id": "1.2.250.1.999.78^SET-COLO", "version": "2"},
        {"kind": "externalDocument", "type": "REFR", "id": "1.2.250.1.999.79^ANAPATH-2024-17",
         "url": "https://dpi.example.fr/documents/ANAPATH-2024-17"},
        {"kind": "externalAct", "type": "REFR", "id": "1.2.250.1.999.80^ACT-1"}]
    guideline = "https://www.orpha.net/data/patho/Pro/fr/ORPHA658.pdf"
    rows = [_row(1, type="document", code="11488-4", system="LN", display="CR-CARD",
                 details={"external_references": [
                     {"kind": "externalDocument", "type": "REFR",
                      "id": "A49FA706-28A1-418E-BC56-94070C9D3681"}]}),
            _row(2, type="procedure", code="HHQE002", system="CCAM", display="Coloscopie",
                 details={"external_references": colo_refs}, masking={"MASQUE_PS": True}),
            _row(3, type="problem", code="ORPHA:658", system="ORPHANET",
                 display="Syndrome de Marfan", details={"external_references": [
                     {"kind": "externalDocument", "type": "REFR", "url": guideline,
                      "text": "PNDS Marfan"}]})]
    bundle = to_bundle(PATIENT, rows)
    check_bundle(bundle)
    res = by_entry_id(bundle)
    assert res[1]["context"]["related"] == [
        {"type": "DocumentReference", "identifier": {
            "system": "urn:ietf:rfc:3986",
            "value": "urn:uuid:a49fa706-28a1-418e-bc56-94070c9d3681"}}]
    report, anapath = res[2]["report"]  # the act is no document: not a report
    assert report == {"type": "DocumentReference", "identifier": {
        "system": "urn:oid:1.2.250.1.999.77", "value": "CR-COLO-2024-001"},
        "display": "Compte rendu de procédure"}
    found = {e["fullUrl"]: e["resource"] for e in bundle["entry"]}
    held = found[anapath["reference"]]
    assert held["content"] == [{"attachment": {
        "url": "https://dpi.example.fr/documents/ANAPATH-2024-17"}}]
    assert held["identifier"] == [{"system": "urn:oid:1.2.250.1.999.79",
                                   "value": "ANAPATH-2024-17"}]
    assert held["meta"]["security"]  # masked as the procedure that names it
    (evidence,) = res[3]["evidence"]
    doc = found[evidence["detail"][0]["reference"]]
    assert doc["content"][0]["attachment"] == {"url": guideline, "title": "PNDS Marfan"}


# -- the prescription a dispense fulfils ------------------------------------------------------
def test_a_dispense_names_the_prescription_it_fulfils() -> None:
    """eDISP: the prescription item a dispense executes and the prescription document
    (XCRPT) were in the store (details.prescription) and nowhere in the Bundle. The
    dispense (a MedicationDispense since round 7) is authorised by the MedicationRequest
    (by the item's id) and supported by the prescription document."""
    prescription = {"item": "AADC9C14-F1CA-4177-B2C8-A5178D5B3CA0",
                    "prescribed_by": [{"ids": [f"{PS[8:]}^801234567897"]}],
                    "documents": [{"kind": "externalDocument", "type": "XCRPT",
                                   "id": "1.2.250.1.213.1.1.1.39.12345^1"}]}
    rows = [_row(1, type="medication", code="3400933516390", system="CIP",
                 display="PARACETAMOL VIATRIS 500 mg", effective="2021-12-01T09:30+01:00",
                 details={"dispensed": True, "prescription": prescription})]
    bundle = to_bundle(PATIENT, rows)
    check_bundle(bundle)
    (dispense,) = by_entry_id(bundle).values()
    assert dispense["resourceType"] == "MedicationDispense"
    assert dispense["authorizingPrescription"] == [{"type": "MedicationRequest", "identifier": {
        "system": "urn:ietf:rfc:3986",
        "value": "urn:uuid:aadc9c14-f1ca-4177-b2c8-a5178d5b3ca0"}}]
    assert dispense["supportingInformation"] == [{"type": "DocumentReference", "identifier": {
        "system": "urn:oid:1.2.250.1.213.1.1.1.39.12345", "value": "1"}}]


# -- times to the hour ------------------------------------------------------------------------
HOUR_ONLY = "2024-03-10T08+01:00"  # as the store keeps a CDA/HL7v2 time to the hour


def _times(obj: object) -> list[str]:
    """Every string of the Bundle that starts like a date with a time."""
    if isinstance(obj, dict):
        return [t for v in obj.values() for t in _times(v)]
    if isinstance(obj, list):
        return [t for v in obj for t in _times(v)]
    return [obj] if isinstance(obj, str) and re.match(r"\d{4}-\d\d-\d\dT", obj) else []


def test_a_time_to_the_hour_is_a_date_or_a_full_time_everywhere() -> None:
    """FHIR dateTime and instant need minutes and seconds when a time is given: a time to
    the hour in any date field (effective, issued, end, period, recorded, authored,
    resolved) is exported as its date alone, never '2024-03-10T08+01:00'."""
    who = [{"ids": [f"{PS[8:]}^810003791976"], "time": HOUR_ONLY, "source": "professional"}]
    rows = [_row(1, type="document", code="11502-2", system="LN", display="CR-BIO",
                 effective=HOUR_ONLY, issued=HOUR_ONLY,
                 details={"orders": ["1.2.250.1.213.1.1.9^2024-77"], "ordered_by": who}),
            _row(2, parent_id=1, effective=HOUR_ONLY, issued=HOUR_ONLY, value_num=5.0,
                 unit="mmol/L"),
            _row(3, type="problem", code="38341003", system="SNOMED-CT", effective=HOUR_ONLY,
                 details={"resolved": HOUR_ONLY, "recorded_by": who}),
            _row(4, type="medication", code="3400933516390", system="CIP",
                 effective=HOUR_ONLY, details={"period_low": HOUR_ONLY,
                                               "period_high": HOUR_ONLY}),
            _row(5, type="medication", code="3400933516390", system="CIP",
                 details={"mood": "INT", "period_low": HOUR_ONLY, "period_high": HOUR_ONLY}),
            _row(6, type="procedure", code="HHQE002", system="CCAM", effective=HOUR_ONLY),
            _row(7, type="encounter", code="AMB", system="ActCode", effective=HOUR_ONLY)]
    bundle = to_bundle(PATIENT, rows)
    check_bundle(bundle)
    full = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)")
    assert all(full.fullmatch(t) for t in _times(bundle)), _times(bundle)
    assert by_entry_id(bundle)[2]["effectiveDateTime"] == "2024-03-10"
