"""FHIR export round 7: dispenses, the patient's identity as FR Core reads it, what a
reader not entitled to a masked document may learn of it, and what a receiving server
checks of the Bundle whole.

Rows are built by hand as the store holds them, or read from the public ANS documents
(parser + normalizer: skipped when the corpus is absent); every Bundle is validated whole
(check_bundle, and check_r4_rules below for what the models do not check).
"""

from __future__ import annotations

from dossiers.fhir import full_url, to_bundle
from normalizers.cda import normalize_cda
from parsers.cda import parse_cda
from tests.conftest import corpus_path
from tests.test_fhir_export import PATIENT, _row, _rows_read, by_entry_id, check_bundle

PS = "1.2.250.1.71.4.2.1"
FINESS = "1.2.250.1.71.4.2.2"
MEDICATION_DISPENSE_STATUSES = {"preparation", "in-progress", "cancelled", "on-hold",
                                "completed", "entered-in-error", "stopped", "declined",
                                "unknown"}


def _of_type(bundle: dict, kind: str) -> list[dict]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == kind]


# -- dispenses --------------------------------------------------------------------------------
def test_a_dispense_is_a_medication_dispense() -> None:
    """eDISP (IHE Pharm DIS): a pharmacy handed out two boxes of paracetamol with the
    posology. It was a MedicationStatement (which says the patient takes the drug), the
    quantity, the pharmacist and the pharmacy, and the posology given with it dropped.
    Now a MedicationDispense: quantity (no UCUM claimed for a packaging code), when handed
    over, the pharmacist and the pharmacy as performers, the posology as
    dosageInstruction, the prescription as authorizingPrescription."""
    rows = [_row(1, type="medication", code="3400933516390", system="CIP",
                 display="PARACETAMOL VIATRIS 500 mg", status="final",
                 effective="2021-12-01T09:30+01:00",
                 details={"dispensed": True, "dispensed_quantity": "2 30009000",
                          "lot_number": "L42",
                          "dosage": {"dose": "2 {tablet}", "frequency": "every 8 h"},
                          "dispensed_by": {"ids": [f"{PS}^810002345678"],
                                           "organization": [f"{FINESS}^1130456789"],
                                           "organization_name": "Pharmacie de la Canebière"},
                          "prescription": {"item": "1.2.250.1.999.16^PRESC-1"}}),
            _row(2, type="medication", code="3400933516390", system="CIP",
                 display="PARACETAMOL VIATRIS 500 mg", details={})]
    bundle = to_bundle(PATIENT, rows)
    check_bundle(bundle)
    res = by_entry_id(bundle)
    dispense = res[1]
    assert dispense["resourceType"] == "MedicationDispense"
    assert dispense["status"] == "completed"
    assert dispense["quantity"] == {"value": 2, "unit": "30009000"}
    assert dispense["whenHandedOver"] == "2021-12-01T09:30:00+01:00"
    actors = [p["actor"] for p in dispense["performer"]]
    assert actors[0]["type"] == "Practitioner"
    assert actors[0]["identifier"]["value"] == "810002345678"
    assert actors[1]["type"] == "Organization"
    assert actors[1]["display"] == "Pharmacie de la Canebière"
    assert actors[1]["identifier"]["system"] == f"urn:oid:{FINESS}"
    assert "every 8 h" in dispense["dosageInstruction"][0]["text"]
    assert dispense["authorizingPrescription"][0]["identifier"] == {
        "system": "urn:oid:1.2.250.1.999.16", "value": "PRESC-1"}
    assert {"text": "lot: L42"} in dispense["note"]
    assert res[2]["resourceType"] == "MedicationStatement"  # taken, not dispensed


def test_a_dispense_in_error_or_cancelled_keeps_r4_statuses() -> None:
    for ours, theirs in (("entered-in-error", "entered-in-error"), ("cancelled", "cancelled"),
                         ("active", "in-progress"), ("corrected", "completed")):
        rows = [_row(1, type="medication", status=ours, code="3400933516390", system="CIP",
                     details={"dispensed": True})]
        bundle = to_bundle(PATIENT, rows)
        check_bundle(bundle)
        (dispense,) = _of_type(bundle, "MedicationDispense")
        assert dispense["status"] == theirs
        assert dispense["status"] in MEDICATION_DISPENSE_STATUSES


def test_the_ans_edisp_example_is_a_dispense_read_from_its_document() -> None:
    """The ANS eDISP example, filed: its dispense under the document (parent_id) is
    supported by it (R4 MedicationDispense has no derivedFrom)."""
    data = corpus_path("cda", "eDISP-MED_2024.01.xml").read_bytes()
    rows = _rows_read(normalize_cda(parse_cda(data), data, "eDISP-MED_2024.01.xml").entries)
    document = next(r for r in rows if r["type"] == "document")
    for r in rows:
        if r is not document:
            r["parent_id"] = document["id"]
    bundle = to_bundle(PATIENT, rows)
    check_bundle(bundle)
    (dispense,) = _of_type(bundle, "MedicationDispense")
    assert {"reference": full_url("entry", document["id"])} in dispense["supportingInformation"]
    assert dispense["quantity"]["value"] == 2 and "system" not in dispense["quantity"]
    assert dispense["dosageInstruction"][0]["route"]["coding"][0]["code"] == "20053000"
    assert {p["actor"].get("display") for p in dispense["performer"]} >= {
        "Pharmacie du village"}
    assert not _of_type(bundle, "MedicationStatement")

