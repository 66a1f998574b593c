"""FHIR export round 7: dispenses, the patient's identity as FR Core reads it, what a
reader not entitled to a masked document may learn of it, and what a receiving server
checks of the Bundle whole.

Rows are built by hand as the store holds them, or read from the public ANS documents
(parser + normalizer: skipped when the corpus is absent); every Bundle is validated whole
(check_bundle, and check_r4_rules below for what the models do not check).
"""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert, select

import cli
from api.app import create_app
from api.tokens import mint
from dossiers import access
from dossiers.access import Principal
from dossiers.export import load_dossier_rows
from dossiers.fhir import full_url, to_bundle
from dossiers.merged import pointer_row
from dossiers.schema import entries, patient_identifiers
from normalizers.cda import normalize_cda
from parsers.cda import parse_cda
from pipelines.dossier_admin import DossierInput, create_dossiers
from pipelines.process import Context
from pipelines.settings import load_settings
from tests.conftest import SAMPLES, corpus_path, migrated_sqlite
from tests.test_access_round2 import ADMIN, NIR, NURSE, SECRET, TEST_OID, _file, _oru
from tests.test_dedup_channels import file
from tests.test_fhir_export import PATIENT, _row, _rows_read, by_entry_id, check_bundle

PS = "1.2.250.1.71.4.2.1"
FINESS = "1.2.250.1.71.4.2.2"
MEDICATION_DISPENSE_STATUSES = {"preparation", "in-progress", "cancelled", "on-hold",
                                "completed", "entered-in-error", "stopped", "declined",
                                "unknown"}


# -- the R4 rules a receiving server checks that the models do not ----------------------------
# Where a Reference may point (R4 element definitions: the target types a validator checks);
# None: Reference(Any). An element not listed here fails the check: add it with its R4 types.
_PEOPLE = {"Practitioner", "PractitionerRole", "Patient", "RelatedPerson"}
REFERENCE_TARGETS: dict[tuple[str, str], set[str] | None] = {
    ("*", "subject"): {"Patient"}, ("*", "patient"): {"Patient"},
    ("*", "encounter"): {"Encounter"}, ("*", "specimen"): {"Specimen"},
    ("*", "locationReference"): {"Location"},
    ("Specimen", "subject"): {"Patient", "Group", "Device", "Substance", "Location"},
    ("Observation", "hasMember"): {"Observation", "QuestionnaireResponse", "MolecularSequence"},
    ("Observation", "derivedFrom"): {"DocumentReference", "ImagingStudy", "Media",
                                     "QuestionnaireResponse", "Observation",
                                     "MolecularSequence"},
    ("Observation", "basedOn"): {"CarePlan", "DeviceRequest", "ImmunizationRecommendation",
                                 "MedicationRequest", "NutritionOrder", "ServiceRequest"},
    ("Observation", "performer"): _PEOPLE | {"Organization", "CareTeam"},
    ("Observation", "device"): {"Device", "DeviceMetric"}, ("Observation", "focus"): None,
    ("DiagnosticReport", "result"): {"Observation"},
    ("DiagnosticReport", "basedOn"): {"CarePlan", "ImmunizationRecommendation",
                                      "MedicationRequest", "NutritionOrder", "ServiceRequest"},
    ("DiagnosticReport", "performer"): {"Practitioner", "PractitionerRole", "Organization",
                                        "CareTeam"},
    ("DiagnosticReport", "imagingStudy"): {"ImagingStudy"},
    ("DocumentReference", "author"): _PEOPLE | {"Organization", "Device"},
    ("DocumentReference", "authenticator"): {"Practitioner", "PractitionerRole", "Organization"},
    ("DocumentReference", "context.related"): None,
    ("DocumentReference", "relatesTo.target"): {"DocumentReference"},
    ("Condition", "evidence.detail"): None,
    ("Condition", "asserter"): _PEOPLE, ("Condition", "recorder"): _PEOPLE,
    ("Condition", "stage.assessment"): {"ClinicalImpression", "DiagnosticReport",
                                        "Observation"},
    ("AllergyIntolerance", "asserter"): _PEOPLE, ("AllergyIntolerance", "recorder"): _PEOPLE,
    ("MedicationStatement", "basedOn"): {"MedicationRequest", "CarePlan", "ServiceRequest"},
    ("MedicationStatement", "derivedFrom"): None,
    ("MedicationStatement", "informationSource"): _PEOPLE | {"Organization"},
    ("MedicationRequest", "supportingInformation"): None,
    ("MedicationDispense", "authorizingPrescription"): {"MedicationRequest"},
    ("MedicationDispense", "supportingInformation"): None,
    ("MedicationDispense", "performer.actor"): _PEOPLE | {"Organization", "Device"},
    ("Immunization", "performer.actor"): {"Practitioner", "PractitionerRole", "Organization"},
    ("Procedure", "report"): {"DiagnosticReport", "DocumentReference", "Composition"},
    ("Procedure", "performer.actor"): _PEOPLE | {"Organization", "Device"},
    ("Procedure", "performer.onBehalfOf"): {"Organization"},
    ("ServiceRequest", "requester"): _PEOPLE | {"Organization", "Device"},
    ("Encounter", "diagnosis.condition"): {"Condition", "Procedure"},
    ("Encounter", "reasonReference"): {"Condition", "Procedure", "Observation",
                                       "ImmunizationRecommendation"},
    ("Encounter", "participant.individual"): {"Practitioner", "PractitionerRole",
                                              "RelatedPerson"},
    ("Encounter", "hospitalization.destination"): {"Location", "Organization"},
    ("DeviceUseStatement", "device"): {"Device"},
    ("ImagingStudy", "endpoint"): {"Endpoint"}, ("ImagingStudy", "series.endpoint"): {"Endpoint"},
    ("Provenance", "target"): None,
}


def _references(obj: object, path: str = "") -> list[tuple[str, dict]]:
    """(element path, Reference) of every Reference of a resource: a dict with a
    'reference', or a logical one (type and identifier)."""
    if isinstance(obj, list):
        return [r for v in obj for r in _references(v, path)]
    if not isinstance(obj, dict):
        return []
    found = [(path, obj)] if isinstance(obj.get("reference"), str) or (
        "identifier" in obj and "type" in obj and set(obj) <= {"type", "identifier",
                                                               "display"}) else []
    return found + [r for k, v in obj.items()
                    for r in _references(v, f"{path}.{k}" if path else k)]


def _broken(obj: object, where: str) -> list[str]:
    """R4 rules of the data types: ele-1 (no empty element), qty-3 (a code needs its
    system), rng-2 (low <= high), per-1 (start <= end)."""
    out = []
    if isinstance(obj, dict):
        if not obj:
            out.append(f"ele-1 {where}")
        if "code" in obj and isinstance(obj.get("value"), (int, float)) and "system" not in obj:
            out.append(f"qty-3 {where}")
        low, high = obj.get("low"), obj.get("high")
        if isinstance(low, dict) and isinstance(high, dict) and \
                isinstance(low.get("value"), (int, float)) and \
                isinstance(high.get("value"), (int, float)) and low["value"] > high["value"]:
            out.append(f"rng-2 {where}")
        start, end = obj.get("start"), obj.get("end")
        if isinstance(start, str) and isinstance(end, str) and start[:10] > end[:10]:
            out.append(f"per-1 {where}")
        out += [b for k, v in obj.items() for b in _broken(v, f"{where}.{k}")]
    elif isinstance(obj, list):
        out += [f"ele-1 {where}"] if not obj else [b for v in obj for b in _broken(v, where)]
    elif isinstance(obj, str) and not obj.strip():
        out.append(f"ele-1 {where}")
    return out


def check_r4_rules(bundle: dict) -> None:
    """What an R4 validator (HAPI's, the ANS's) checks beyond the models check_bundle runs:
    each Reference's target of a type its element allows (a reference and its type
    agreeing), the data types' rules, obs-6/obs-7, con-4/con-5."""
    kinds = {e["fullUrl"]: e["resource"]["resourceType"] for e in bundle["entry"]}
    broken = []
    for item in bundle["entry"]:
        res = item["resource"]
        kind = res["resourceType"]
        for path, ref in _references(res):
            allowed = REFERENCE_TARGETS.get((kind, path), REFERENCE_TARGETS.get(
                ("*", path), {"(element not listed)"}))
            target = kinds.get(ref["reference"]) if "reference" in ref else ref.get("type")
            if "reference" in ref and ref.get("type") not in (None, target):
                broken.append(f"{kind}.{path}: typed {ref['type']}, points at {target}")
            if allowed is not None and target is not None and target not in allowed:
                broken.append(f"{kind}.{path} -> {target}")
        broken += _broken(res, kind)
        if kind == "Observation":
            valued = any(k.startswith("value") for k in res)
            if valued and "dataAbsentReason" in res:
                broken.append("obs-6")
            if valued and any(c.get("code") == res.get("code")
                              for c in res.get("component", ())):
                broken.append("obs-7")
        if kind == "Condition":
            clinical = (res.get("clinicalStatus") or {}).get("coding", [{}])[0].get("code")
            verified = (res.get("verificationStatus") or {}).get("coding", [{}])[0].get("code")
            if any(k.startswith("abatement") for k in res) and \
                    clinical not in (None, "inactive", "resolved", "remission"):
                broken.append("con-4")
            if verified == "entered-in-error" and clinical:
                broken.append("con-5")
    assert not broken, broken


def _valid(bundle: dict) -> None:
    check_bundle(bundle)
    check_r4_rules(bundle)


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
    _valid(bundle)
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
        _valid(bundle)
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
    _valid(bundle)
    (dispense,) = _of_type(bundle, "MedicationDispense")
    assert {"reference": full_url("entry", document["id"])} in dispense["supportingInformation"]
    assert dispense["quantity"]["value"] == 2 and "system" not in dispense["quantity"]
    assert dispense["dosageInstruction"][0]["route"]["coding"][0]["code"] == "20053000"
    assert {p["actor"].get("display") for p in dispense["performer"]} >= {
        "Pharmacie du village"}
    assert not _of_type(bundle, "MedicationStatement")



def test_the_dispenses_a_medication_or_a_vaccination_holds_are_medication_dispenses() -> None:
    """CNAM-HR (the insurer's history, IHE PCC supply entries nested in the medication):
    each delivery's day, quantity and pharmacy were in the store (details.dispenses) and
    nowhere in the Bundle. Each is a MedicationDispense of the entry's product, labelled
    masked as its entry is; the MedicationStatement is derived from them. A vaccine bought
    at the pharmacy too (Immunization has no element to point at it: the dispense stands
    on its own)."""
    rows = [_row(1, type="medication", code="3400939169002", system="CIP",
                 display="DOLIPRANE 1000 mg", effective="2019-03-11",
                 masking={"MASQUE_PS": True},
                 details={"dispenses": [{"time": "2019-03-11", "quantity": "1",
                                         "by": {"organization_name": "PHARMACIE COMPAIN"}},
                                        {"time": "2019-04-02", "quantity": "2"}]}),
            _row(2, type="immunization", code="3400932857241", system="CIP",
                 display="REPEVAX", effective="2019-07-11",
                 details={"dispenses": [{"time": "2019-06-26",
                                         "by": {"organization_name": "PHARMACIE COMPAIN"}}]})]
    bundle = to_bundle(PATIENT, rows)
    _valid(bundle)
    res = by_entry_id(bundle)
    dispenses = {e["fullUrl"]: e["resource"] for e in bundle["entry"]
                 if e["resource"]["resourceType"] == "MedicationDispense"}
    assert len(dispenses) == 3
    first, second = (dispenses[r["reference"]] for r in res[1]["derivedFrom"])
    assert first["whenHandedOver"] == "2019-03-11" and first["status"] == "completed"
    assert first["quantity"] == {"value": 1}
    assert first["performer"] == [{"actor": {"display": "PHARMACIE COMPAIN"}}]
    assert first["medicationCodeableConcept"] == res[1]["medicationCodeableConcept"]
    assert first["meta"]["security"] == res[1]["meta"]["security"] != []
    assert second["quantity"] == {"value": 2} and "performer" not in second
    (vaccine,) = [d for d in dispenses.values() if d["whenHandedOver"] == "2019-06-26"]
    assert vaccine["medicationCodeableConcept"] == res[2]["vaccineCode"]
    assert "meta" not in vaccine


def test_the_cnam_history_exports_its_deliveries() -> None:
    data = corpus_path("cda", "CNAM-HR_2021.01.xml").read_bytes()
    rows = _rows_read(normalize_cda(parse_cda(data), data, "CNAM-HR_2021.01.xml").entries)
    bundle = to_bundle(PATIENT, rows)
    _valid(bundle)
    dispenses = _of_type(bundle, "MedicationDispense")
    assert len(dispenses) >= 6
    assert {"HARMACIE COMPAIN", "PHARMACIE COMPAIN"} <= {
        p["actor"].get("display") for d in dispenses for p in d.get("performer", ())}

# -- the patient as FR Core reads it ----------------------------------------------------------
def _patient_of(bundle: dict) -> dict:
    (patient,) = _of_type(bundle, "Patient")
    return patient


def test_the_birth_name_is_official_and_the_used_name_usual() -> None:
    """FR Core (as the INS referential): the birth name (nom de naissance) is the name of
    use 'official', the used name (nom utilisé) 'usual'. The birth name was exported as
    'maiden', which FR Core readers do not take for the INS identity's name. A dossier
    holding one name for both (maybe an untyped name, kept as both) or no birth name keeps
    its name as the one the patient goes by, as before: which it is was not said."""
    names = _patient_of(to_bundle(PATIENT, []))["name"]
    assert names == [{"use": "official", "family": "MARTIN", "given": ["Marie"]},
                     {"use": "usual", "family": "DURAND", "given": ["Marie"]}]
    same = _patient_of(to_bundle({**PATIENT, "birth_family": "DURAND"}, []))["name"]
    assert same == [{"use": "usual", "family": "DURAND", "given": ["Marie"]}]
    unsaid = _patient_of(to_bundle({**PATIENT, "birth_family": None}, []))["name"]
    assert unsaid == [{"use": "usual", "family": "DURAND", "given": ["Marie"]}]


def test_a_test_ins_tags_its_patient_as_test_data() -> None:
    """A test INS (OID 1.2.250.1.213.1.4.10) looks like a real NIR: only its OID tells.
    Its type said so (INS-NIR-TEST); the Patient itself now carries the HTEST tag a FHIR
    server filters test data by. A real INS-NIR none."""
    tagged = _patient_of(to_bundle(PATIENT, []))
    assert tagged["meta"]["tag"] == [{
        "system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "HTEST",
        "display": "test health data"}]
    real = _patient_of(to_bundle({**PATIENT, "ins_oid": "1.2.250.1.213.1.4.8"}, []))
    assert "meta" not in real
    assert real["identifier"][0]["type"]["coding"][0]["code"] == "INS-NIR"


def test_local_ids_carry_their_assigning_authority() -> None:
    """The IPP (PID-3 typed PI, CX.4 the lab's OID) was not exported: the Patient had its
    INS alone, and a receiving EHR could not match it to its own record. Each local id is
    now an identifier: typed from v2-0203 when CX.5 is a code of it, under urn:oid: of its
    authority with the authority as assigner; a namespace without OID is the assigner by
    name, with no system invented."""
    ids = [{"authority": "2.999.250.1.2", "value": "SB20000756", "type_code": "PI"},
           {"authority": "CH-ANNECY", "value": "A-77", "type_code": None},
           {"authority": "1.2.250.1.999.3", "value": "X1", "type_code": "ZZ"},
           # the billing NIR (CX.5 NH) under the INS-NIR OID: no identity, not exported
           {"authority": "1.2.250.1.213.1.4.8", "value": "268036912354128", "type_code": "NH"}]
    patient = _patient_of(to_bundle(PATIENT, [], identifiers=ids))
    ins, ipp, named, local = patient["identifier"]
    assert ins["value"] == PATIENT["ins"]
    assert ipp == {"type": {"coding": [{
        "system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "PI",
        "display": "Patient internal identifier"}]},
        "system": "urn:oid:2.999.250.1.2", "value": "SB20000756",
        "assigner": {"identifier": {"system": "urn:ietf:rfc:3986",
                                    "value": "urn:oid:2.999.250.1.2"}}}
    assert named == {"value": "A-77", "assigner": {"display": "CH-ANNECY"}}
    assert local["type"] == {"text": "ZZ"}


def test_cli_export_names_the_ipp_and_not_a_merged_dossier(sqlite_ctx, monkeypatch,  # noqa: ANN001
                                                           capsys) -> None:  # noqa: ANN001
    """dmp-ingest dossier export, in process: the lab's IPP is on the Patient; our pointer
    to a dossier merged into this one (dossiers/merged.py) is no identifier of the patient."""
    data = (SAMPLES / "hl7v2" / "04_synlab_bilan_hepatique.hl7").read_bytes()
    file(sqlite_ctx, data, "SYNLAB")
    with sqlite_ctx.engine.begin() as conn:
        pid = conn.execute(select(entries.c.patient_id)).scalars().first()
        conn.execute(insert(patient_identifiers), [pointer_row(pid, 999)])
    monkeypatch.setenv("DMP_HOME", str(sqlite_ctx.settings.home))
    monkeypatch.setenv("DMP_DATABASE_URL", sqlite_ctx.settings.database_url)
    for name in ("DMP_ARCHIVE_URL", "DMP_CONFIG", "DMP_ADMIN"):
        monkeypatch.delenv(name, raising=False)
    assert cli.main(["dossier", "export", str(pid), "--as", "tester"]) == 0
    bundle = json.loads(capsys.readouterr().out)
    _valid(bundle)
    ids = _patient_of(bundle)["identifier"]
    assert {"SB20000756"} <= {i["value"] for i in ids}
    assert "999" not in {i["value"] for i in ids}
    assert not [i for i in ids if "merged" in json.dumps(i)]


# -- versions: a document that replaces another, a report reissued ---------------------------
def test_a_new_version_of_a_document_says_which_it_replaces() -> None:
    """CI-SIS replacement (relatedDocument RPLC, MDM^T10 TXA-13): the store keeps the key of
    the version replaced (details.replaces) but the DocumentReference said nothing of it,
    nor carried the document's own id: a receiving server holding version 1 could not tell
    that version 2 replaces it. Now masterIdentifier is the CDA's id and relatesTo
    'replaces' names version 1 by the same identifier; only the current version is in the
    Bundle (status current)."""
    rows = [_row(1, type="document", code="11502-2", system="LN", display="CR-BIO",
                 key="document|2.999.250.1.2.10^SB25061039530-2",
                 details={"replaces": "document|2.999.250.1.2.10^SB25061039530-1",
                          "set_id": "2.999.250.1.2.11^SB25061039530", "version": "2"}),
            _row(2, type="document", code="11502-2", system="LN", display="CR-BIO",
                 current=False, superseded_by=1,
                 key="document|2.999.250.1.2.10^SB25061039530-1"),
            _row(3, type="document", code="11488-4", system="LN", display="CR",
                 key="document|MDM-0042", details={"replaces": "document|MDM-0041"})]
    bundle = to_bundle(PATIENT, rows)
    _valid(bundle)
    res = by_entry_id(bundle)
    assert set(res) == {1, 3}
    assert res[1]["status"] == "current"
    assert res[1]["masterIdentifier"] == {"system": "urn:oid:2.999.250.1.2.10",
                                          "value": "SB25061039530-2"}
    assert res[1]["relatesTo"] == [{"code": "replaces", "target": {
        "type": "DocumentReference", "identifier": {
            "system": "urn:oid:2.999.250.1.2.10", "value": "SB25061039530-1"}}}]
    # a sender's bare number: no system invented, for the document as for the one replaced
    assert "masterIdentifier" not in res[3]
    assert res[3]["relatesTo"][0]["target"]["identifier"] == {"value": "MDM-0041"}


def test_a_reissued_report_is_appended_or_corrected() -> None:
    """A PDF report reissued with an addendum or as a rectification supersedes the report
    of that exam (dossiers/report_reissue.py), but was exported 'final' as a first reading.
    R4's DiagnosticReport has no relatesTo: its status says it, 'appended' (content added)
    or 'corrected'; a reissue in error keeps 'entered-in-error'."""
    rows = [_row(1, type="imaging_report", code="MR", system="DCM", value="Petite lésion",
                 details={"reissue": {"kind": "addendum", "page": 1}}),
            _row(2, type="imaging_report", code="CT", system="DCM", value="Pas de lésion",
                 details={"reissue": {"kind": "rectification", "page": 1}}),
            _row(3, type="imaging_report", code="US", system="DCM", status="entered-in-error",
                 details={"reissue": {"kind": "rectification", "page": 1}}),
            _row(4, type="imaging_report", code="US", system="DCM", value="Normal"),
            _row(5, type="document", code="18748-4", system="LN",
                 details={"reissue": {"kind": "addendum", "page": 2}})]
    bundle = to_bundle(PATIENT, rows)
    _valid(bundle)
    res = by_entry_id(bundle)
    assert [res[i]["status"] for i in (1, 2, 3, 4)] == [
        "appended", "corrected", "entered-in-error", "final"]
    assert res[5]["docStatus"] == "amended" and res[5]["status"] == "current"


def test_a_replaced_cda_filed_exports_its_current_version_replacing_the_first(
        sqlite_ctx) -> None:  # noqa: ANN001
    """The SYNLAB CR-BIO v1 then its v2 (RPLC), filed: one DocumentReference, v2's, which
    replaces v1 by the id v1 was exported under."""
    ids = {}
    for n in ("02_crbio_synlab_bilan_renal_v1.xml", "03_crbio_synlab_bilan_renal_v2_rplc.xml"):
        file(sqlite_ctx, (SAMPLES / "cda" / n).read_bytes(), "chu")
        with sqlite_ctx.engine.connect() as conn:
            pid = conn.execute(select(entries.c.patient_id)).scalars().first()
            bundle = to_bundle(*load_dossier_rows(conn, pid))
        _valid(bundle)
        (doc,) = _of_type(bundle, "DocumentReference")
        ids[n[:2]] = doc
    assert "relatesTo" not in ids["02"]
    assert ids["03"]["relatesTo"][0]["target"]["identifier"] == ids["02"]["masterIdentifier"]
    assert ids["03"]["masterIdentifier"] != ids["02"]["masterIdentifier"]



def test_the_staging_of_a_cancer_recorded_in_error_is_in_error() -> None:
    """CANCER-FRCP: the cancer's TNM staging is an Observation of its own (the stage's
    assessment). With the problem recorded in error (CDA nullified) the staging stayed
    'final': a reader of Observations found the stage of a cancer the sender withdrew.
    It follows the problem now; a problem still followed ('active') keeps a final staging."""
    data = corpus_path("cda", "CANCER-FRCP_2022.01_Appareil.xml").read_bytes()
    rows = _rows_read(normalize_cda(parse_cda(data), data, "frcp").entries)
    bundle = to_bundle(PATIENT, rows)
    (cancer,) = [r for r in by_entry_id(bundle).values() if r.get("stage")]
    entry_id = int(cancer["identifier"][0]["value"])
    for status, staged in (("entered-in-error", "entered-in-error"), ("active", "final")):
        again = [{**r, "status": status} if r["id"] == entry_id else r for r in rows]
        bundle = to_bundle(PATIENT, again)
        _valid(bundle)
        stage = by_entry_id(bundle)[entry_id]["stage"][0]["assessment"][0]["reference"]
        (staging,) = [e["resource"] for e in bundle["entry"] if e["fullUrl"] == stage]
        assert staging["status"] == staged

# -- values -----------------------------------------------------------------------------------
def test_a_not_equal_comparator_is_no_plain_quantity() -> None:
    """HL7 SN '<>^5' (SN.1 '<>': not equal) is stored with its number and
    comparator; R4 Quantity.comparator has < <= >= > only, and the comparator was dropped:
    the Observation said the result was 5 g/L. It is the text as sent now; the comparators
    R4 has stay on valueQuantity, '=' is no comparator."""
    rows = [_row(1, code="2885-2", display="Protéines", value="<>5", value_num=5.0,
                 comparator="<>", unit="g/L", unit_original="g/l"),
            _row(2, code="2885-2", value="<5", value_num=5.0, comparator="<", unit="g/L"),
            _row(3, code="2885-2", value="5", value_num=5.0, comparator="=", unit="g/L")]
    bundle = to_bundle(PATIENT, rows)
    _valid(bundle)
    res = by_entry_id(bundle)
    assert res[1]["valueString"] == "<>5 g/l" and "valueQuantity" not in res[1]
    assert res[2]["valueQuantity"]["comparator"] == "<"
    assert res[3]["valueQuantity"] == {"value": 5, "unit": "g/L",
                                       "system": "http://unitsofmeasure.org", "code": "g/L"}


def test_a_unit_we_could_not_map_claims_no_ucum() -> None:
    """What was checked and found right (kept so): a unit the normalizer could not map
    (details.unit_unmapped: 'UI/L', a lab's own 'U.Arb') is the unit's text alone on the
    value and on the range's limits; a UCUM unit of our table carries system and code."""
    rows = [_row(1, code="1920-8", value_num=32.0, unit="UI/L", reference_range="5-34",
                 details={"unit_unmapped": True}),
            _row(2, code="1920-8", value_num=32.0, unit="U/L", unit_original="UI/L",
                 reference_range="5-34")]
    bundle = to_bundle(PATIENT, rows)
    _valid(bundle)
    res = by_entry_id(bundle)
    assert res[1]["valueQuantity"] == {"value": 32, "unit": "UI/L"}
    assert res[1]["referenceRange"][0]["low"] == {"value": 5, "unit": "UI/L"}
    assert res[2]["valueQuantity"]["system"] == "http://unitsofmeasure.org"
    assert res[2]["valueQuantity"]["code"] == "U/L"


# -- every Bundle against the R4 rules; what a reader may not see -----------------------------
def test_the_r4_rules_check_can_fail() -> None:
    """check_r4_rules finds what it is for: a report's result that is a Condition, a
    reference whose type is not its target's, a Quantity code without its system."""
    bundle = to_bundle(PATIENT, [_row(1, type="lab_report", code="24331-1"),
                                 _row(2, value_num=5.2, unit="mmol/L")])
    report, result = by_entry_id(bundle)[1], by_entry_id(bundle)[2]
    report["result"] = [{"reference": full_url("entry", 2), "type": "Condition"}]
    result["valueQuantity"].pop("system")
    try:
        check_r4_rules(bundle)
    except AssertionError as exc:
        said = str(exc)
    else:  # pragma: no cover - the check must fail here
        raise AssertionError("check_r4_rules passed a broken Bundle")
    assert "typed Condition" in said and "qty-3" in said


CORPUS = ("eDISP-MED_2024.01.xml", "IPS-FR_2024.01.xml", "CANCER-FRCP_2022.01_Appareil.xml",
          "BIO-CR-BIO_2021.01_Microbiologie_V2.xml", "IMG_CR_IMG_2024.01.xml",
          "DLU-EHPAD-DLU_2022.01.xml", "eP-MED-DM_2023.01_PosoStruct.xml", "VAC_2023.01.xml")


@pytest.mark.parametrize("name", CORPUS)
def test_the_ans_examples_export_within_the_r4_rules(name: str) -> None:
    """The public ANS documents of the kinds this round touches (dispense, prescription,
    summary, cancer, lab, imaging, vaccination), read and exported: each Bundle valid
    whole, every reference to a type its element allows."""
    data = corpus_path("cda", name).read_bytes()
    bundle = to_bundle(PATIENT, _rows_read(normalize_cda(parse_cda(data), data, name).entries))
    _valid(bundle)


def test_a_professional_reads_no_trace_of_a_masked_document_over_the_api(
        tmp_path, sqlite_template) -> None:  # noqa: ANN001
    """GET /dossiers/{patient}/fhir (the API app, in process) for a nurse the patient
    authorised: the document the sender masked from professionals (MASQUE_PS) and its
    result are not in the Bundle, nothing references them, no Provenance targets them; the
    Bundle is valid whole. The patient's export holds them, labelled masked."""
    url = migrated_sqlite(sqlite_template, tmp_path / "dmp.sqlite3")
    ctx = Context.from_settings(load_settings(env={
        "DMP_HOME": str(tmp_path), "DMP_DATABASE_URL": url, "DMP_API_SECRET": SECRET}))
    create_dossiers(ctx.engine, [DossierInput(family="Da Silva", given="Maëlys",
                                              birth_date="2010-09-14", sex="F", ins=NIR,
                                              ins_oid=TEST_OID)])
    _file(ctx, _oru(1, "PLAIN", "3"), _oru(4, "MASKED", "12", MASQUE_PS="Y"))
    with ctx.engine.connect() as conn:
        rows = conn.execute(select(entries).where(entries.c.current.is_(True))).all()
    pid = str(rows[0].patient_id)
    masked = {r.id for r in rows if r.key.endswith("RB-MASKED")}
    masked |= {r.id for r in rows if r.parent_id in masked}
    assert len(masked) >= 2
    access.register_professional(ctx.engine, ADMIN, NURSE, "Nguyen", "Anne", "infirmière")
    access.grant(ctx.engine, Principal("patient", pid), pid, NURSE)
    client = TestClient(create_app(ctx))

    def export(scope: str, **claims: object) -> dict:
        r = client.get(f"/dossiers/{pid}/fhir", headers={
            "Authorization": "Bearer " + mint(ctx.settings, scope, **claims)})
        assert r.status_code == 200, r.text
        return r.json()

    nurse = export("professional", rpps=NURSE, role="infirmière")
    _valid(nurse)
    hidden = {full_url("entry", i) for i in masked}
    text = json.dumps(nurse)
    assert not [u for u in hidden if u in text]
    assert not set(by_entry_id_of(nurse)) & masked
    assert "RB-MASKED" not in text and '"value": 12' not in text
    patient = export("patient", patient=pid)
    _valid(patient)
    shown = by_entry_id_of(patient)
    assert masked <= set(shown)
    assert all(shown[i]["meta"]["security"] for i in masked)
    ctx.engine.dispose()


def by_entry_id_of(bundle: dict) -> dict[int, dict]:
    """entry id -> resource, whatever the base URL of the export (the API's own)."""
    return {int(i["value"]): e["resource"] for e in bundle["entry"]
            for i in e["resource"].get("identifier", ()) if i.get("system", "").endswith(
                "/entries")}
