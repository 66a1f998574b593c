"""FHIR export round 8: the Bundle as its consumers read it (a DMP viewer, the HAPI and ANS
validators, FR Core): numbers JSON can carry, who wrote a document when no person did, a
document's setId, what a reader is told of a file they may not open, and body sites coded
in HL7's own table.

Rows are built by hand as the store holds them, or filed through pipelines/ into a SQLite
store (no Prefect); every Bundle is validated whole (check_bundle and check_r4_rules of the
earlier rounds).
"""

from __future__ import annotations

import csv
import json

from sqlalchemy import select

from dossiers import access
from dossiers.access import Principal
from dossiers.fhir import to_bundle
from dossiers.schema import entries
from pipelines.dossier_admin import DossierInput, create_dossiers
from pipelines.intake import Received, intake
from pipelines.process import drain
from tests.conftest import SAMPLES
from tests.test_fhir_export import PATIENT, _row, by_entry_id, check_bundle
from tests.test_fhir_round7 import by_entry_id_of, check_r4_rules

HUGE = "9" * 400  # a number no float holds: float() makes it inf, JSON has no Infinity


def _valid(bundle: dict) -> str:
    """The Bundle checked whole, as the strict JSON an HTTP API writes (no NaN, no
    Infinity: Starlette's JSONResponse refuses them with a 500)."""
    check_bundle(bundle)
    check_r4_rules(bundle)
    return json.dumps(bundle, allow_nan=False, ensure_ascii=False)


# -- numbers JSON can carry -------------------------------------------------------------------
def test_a_number_beyond_a_float_stays_text_and_the_bundle_stays_json() -> None:
    """A CDA titre whose numerator has 400 digits, an interval of the same, a dispense of
    that many boxes, a dosing every that many hours: each became float('inf'), which the
    CLI wrote as the bare word Infinity (no JSON parser of a FHIR server reads it) and the
    API refused whole (a 500 for the patient's entire dossier). Each is now the text it
    was sent as (or no structured timing); the other values of the dossier are as before."""
    rows = [_row(1, value_type="RTO", value=f"{HUGE}/64", code="5370-2",
                 display="Sérologie toxoplasmose"),
            _row(2, value_type="IVL_PQ", value=f"10-{HUGE}", unit="/[HPF]",
                 code="5821-4", display="Leucocytes urinaires"),
            _row(3, type="medication", code="3400933516390", system="CIP",
                 display="DOLIPRANE 1000 mg", effective="2025-02-03T10:15+01:00",
                 details={"dispensed": True, "dispensed_quantity": f"{HUGE} boîtes",
                          "dosage": {"frequency": f"every {HUGE} h"}}),
            _row(4, type="medication", code="3400935955838", system="CIP",
                 display="AMOXICILLINE 1 g", details={"frequency": f"3 times every {HUGE} d",
                                                      "dispenses": [
                                                          {"quantity": f"{HUGE} boîtes",
                                                           "time": "2025-02-04"}]}),
            _row(5, value_type="RTO", value="1/64", code="5370-2",
                 display="Sérologie toxoplasmose")]
    text = _valid(to_bundle(PATIENT, rows))
    assert "Infinity" not in text and "NaN" not in text
    res = by_entry_id(json.loads(text))
    assert res[1]["valueString"] == f"{HUGE}/64"
    assert res[2]["valueString"] == f"10-{HUGE}"
    assert "quantity" not in res[3]
    assert "timing" not in res[3]["dosageInstruction"][0]
    assert "timing" not in res[4]["dosage"][0]
    assert res[5]["valueRatio"] == {"numerator": {"value": 1}, "denominator": {"value": 64}}


# -- who wrote a document when no person did ---------------------------------------------------
FINESS = "1.2.250.1.71.4.2.2"


def test_a_document_by_an_organization_only_names_it_as_an_organization() -> None:
    """A hospital's document service signs its CR-IMG as the hospital (assignedAuthor/id
    nullFlavor NA, representedOrganization with its idNatSt and name); a lab's middleware
    releases a CR-BIO for its laboratory. The author was an untyped identifier without a
    word: a DMP viewer showed a blank author, a validator could not tell an Organization
    from a Practitioner. Now a reference typed Organization, the idNatSt as FR Core types
    it, the name as display; a person author is as before."""
    rows = [_row(1, type="document", code="18748-4", display="CR d'imagerie médicale",
                 key="document|1.2.250.1.213.1.1.9^CRIMG-2025-0042",
                 performer=f"{FINESS}^1590000164", effective="2025-01-20T14:05+01:00",
                 media_type="text/xml",
                 details={"authors": [{"organization": [f"{FINESS}^1590000164"],
                                       "organization_name": "CH de Valenciennes",
                                       "time": "2025-01-20T14:05+01:00"}]}),
            _row(2, type="lab_report", code="11502-2", display="CR d'examens biologiques",
                 performer=f"{FINESS}^1750300550",
                 details={"authors": [{"ids": ["1.2.250.1.999.3^AUTOMATE-7"],
                                       "organization": [f"{FINESS}^1750300550"],
                                       "organization_name": "Laboratoire Cerballiance",
                                       "device": ["Middleware Cerballiance"]}]}),
            _row(3, type="document", code="11490-0", display="Lettre de liaison de sortie",
                 performer="1.2.250.1.71.4.2.1^810002345678", media_type="text/xml",
                 details={"authors": [{"ids": ["1.2.250.1.71.4.2.1^810002345678"],
                                       "organization": [f"{FINESS}^1590000164"],
                                       "organization_name": "CH de Valenciennes"}]})]
    res = by_entry_id(json.loads(_valid(to_bundle(PATIENT, rows))))
    author = res[1]["author"][0]
    assert author["type"] == "Organization" and author["display"] == "CH de Valenciennes"
    assert author["identifier"]["system"] == f"urn:oid:{FINESS}"
    assert author["identifier"]["value"] == "1590000164"
    assert author["identifier"]["type"]["coding"][0]["code"] == "IDNST"
    lab = res[2]["performer"][0]
    assert lab["type"] == "Organization"
    assert lab["display"] == "Laboratoire Cerballiance"
    person = res[3]["author"][0]
    assert person["type"] == "Practitioner" and "display" not in person


# -- a document's setId ------------------------------------------------------------------------
def test_a_set_id_of_a_root_alone_is_a_uri_as_the_document_id_is() -> None:
    """The ANS examples (CNAM-HR, eDISP) give setId as a root alone, an OID
    ('1.2.250.1.213.1.1.1.36.2021.1'); hospitals a UUID. It was an identifier with no
    system: a reader looking for the other versions of a document by its setId matched
    nothing. Now under RFC 3986 (urn:oid:, urn:uuid:), as the masterIdentifier of a
    document id of a root alone is; a setId root^extension is as before."""
    rows = [_row(1, type="document", code="96173-0", display="Données de remboursement",
                 key="document|1.2.250.1.213.1.1.1.36.2021.1.1",
                 details={"set_id": "1.2.250.1.213.1.1.1.36.2021.1"}),
            _row(2, type="document", code="11490-0", display="Lettre de liaison",
                 details={"set_id": "6F0C1A9E-3B7D-4C2A-9E51-2D8B7A41C0F3"}),
            _row(3, type="document", code="11502-2", display="CR de biologie",
                 details={"set_id": "1.2.250.1.213.1.1.9^SET-CRBIO-77"}),
            _row(4, type="document", code="11502-2", display="CR de biologie",
                 details={"set_id": "LABO-SET-12"})]
    res = by_entry_id(json.loads(_valid(to_bundle(PATIENT, rows))))

    def set_id(i: int) -> dict:
        return next(x for x in res[i]["identifier"] if x.get("type") == {"text": "setId"})
    assert set_id(1) == {"type": {"text": "setId"}, "system": "urn:ietf:rfc:3986",
                         "value": "urn:oid:1.2.250.1.213.1.1.1.36.2021.1"}
    assert set_id(2)["system"] == "urn:ietf:rfc:3986"
    assert set_id(2)["value"] == "urn:uuid:6f0c1a9e-3b7d-4c2a-9e51-2d8b7a41c0f3"
    assert res[1]["masterIdentifier"]["system"] == set_id(1)["system"]
    assert set_id(3) == {"type": {"text": "setId"}, "system": "urn:oid:1.2.250.1.213.1.1.9",
                         "value": "SET-CRBIO-77"}
    assert set_id(4) == {"type": {"text": "setId"}, "value": "LABO-SET-12"}


# -- a file the reader may not open ------------------------------------------------------------
ADMIN = Principal("admin", "alice")
TREATING, NURSE = "10000000001", "10000000002"
RENAL_PANEL = "02_crbio_synlab_bilan_renal_v1.xml"  # SYNLAB CR-BIO: créatinine, DFG, urée


def _document(bundle: dict, entry_id: int) -> dict:
    found = by_entry_id_of(bundle)[entry_id]
    assert found["resourceType"] == "DocumentReference"
    return found


def test_a_file_withheld_from_the_reader_has_no_link_in_their_bundle(sqlite_ctx) -> None:  # noqa: ANN001
    """The patient masks one result of a SYNLAB renal panel (the créatinine), not the
    report: an authorised nurse no longer sees the result, and the report's original CDA,
    which states it, is withheld from her (entries: has_file false; /documents: NO_FILE).
    Her FHIR export still linked the file (content.attachment.url) and gave its digest: a
    viewer showed a link that failed. Now her DocumentReference has its type and title and
    no url nor digest; the patient's and the médecin traitant's keep both."""
    engine = sqlite_ctx.engine
    with open(SAMPLES / "patients.csv", encoding="utf-8") as fh:
        create_dossiers(engine, [DossierInput.from_mapping(r) for r in csv.DictReader(fh)])
    intake(engine, sqlite_ctx.archive, [Received((SAMPLES / "cda" / RENAL_PANEL).read_bytes(),
                                                 "synlab", "file", file_name=RENAL_PANEL)])
    drain(sqlite_ctx)
    with engine.connect() as conn:
        doc = conn.execute(select(entries).where(entries.c.type == "document")).one()
        creat = conn.execute(select(entries.c.id).where(
            entries.c.code == "14682-9", entries.c.current.is_(True))).scalar_one()
    patient = Principal("patient", str(doc.patient_id))
    for rpps, family, role in ((TREATING, "Durand", "médecin"),
                               (NURSE, "Nguyen", "infirmière")):
        access.register_professional(engine, ADMIN, rpps, family, "Anne", role)
    access.set_treating(engine, ADMIN, patient.subject, TREATING)
    access.grant(engine, patient, patient.subject, NURSE)
    access.set_mask(engine, patient, creat, True)

    def export(who: Principal) -> dict:
        bundle = access.export_fhir(engine, who, patient.subject, base_url="https://dmp.test")
        _valid(bundle)
        return bundle

    nurse = export(Principal("professional", NURSE, "infirmière"))
    assert creat not in by_entry_id_of(nurse)
    withheld = _document(nurse, doc.id)
    assert withheld["content"] == [{"attachment": {"contentType": "text/xml",
                                                   "title": withheld["description"]}}]
    assert not any(i.get("value", "").startswith("ni:///sha-256;")
                   for i in withheld["identifier"])
    assert f"/documents/{doc.id}" not in json.dumps(nurse)
    for who in (patient, Principal("professional", TREATING, "médecin")):
        shown = export(who)
        assert creat in by_entry_id_of(shown)
        held = _document(shown, doc.id)
        assert held["content"][0]["attachment"]["url"] == f"https://dmp.test/documents/{doc.id}"
        assert any(i.get("value", "").startswith("ni:///sha-256;") for i in held["identifier"])


# -- body sites in HL7's own table -------------------------------------------------------------
def test_a_specimen_site_of_hl7_table_0163_is_in_hl7s_code_system() -> None:
    """A wound swab taken on the left arm (SPM-8 'LA^Bras gauche^HL70163', the body site
    table HL7 v2.5 names for it): Specimen.collection.bodySite was coded under a system of
    ours (urn:dmp/CodeSystem/HL70163) that no reader knows, so the side and the site were
    a bare 'LA'. Now HL7's own code system for table 0163, as tables 0070 and 0487 were."""
    rows = [_row(1, code="11475-1", display="Culture microbiologique",
                 specimen_time="2025-03-04T09:40+01:00",
                 details={"specimen": {"code": "WND", "system": "HL70487",
                                       "display": "Plaie"},
                          "specimen_site": {"code": "LA", "system": "HL70163",
                                            "display": "Bras gauche"}})]
    bundle = json.loads(_valid(to_bundle(PATIENT, rows)))
    specimen = next(e["resource"] for e in bundle["entry"]
                    if e["resource"]["resourceType"] == "Specimen")
    assert specimen["collection"]["bodySite"] == {
        "coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0163", "code": "LA",
                    "display": "Bras gauche"}], "text": "Bras gauche"}


def test_a_vaccination_or_a_procedure_by_an_organization_only_names_an_organization() -> None:
    """A pharmacy vaccinates and the VAC document names the pharmacy alone (performer's
    representedOrganization: idNatSt and name, no person); a clinic's team did a
    procedure. The actor was an untyped identifier: a viewer could not tell a structure
    from a professional. Now typed Organization, with its name; a person acting on behalf
    of the structure is as before (round 5)."""
    pharmacy = {"organization": [f"{FINESS}^1750512345"],
                "organization_name": "Pharmacie de la Gare"}
    rows = [_row(1, type="immunization", code="3400930231227", system="CIP",
                 display="EFLUELDA", effective="2024-10-21",
                 details={"performed_by": pharmacy}),
            _row(2, type="procedure", code="DEQP003", system="CCAM",
                 display="Électrocardiographie", details={"performed_by": {
                     "organization_name": "Clinique Sainte-Thérèse"}})]
    res = by_entry_id(json.loads(_valid(to_bundle(PATIENT, rows))))
    actor = res[1]["performer"][0]["actor"]
    assert actor["type"] == "Organization" and actor["display"] == "Pharmacie de la Gare"
    assert actor["identifier"]["system"] == f"urn:oid:{FINESS}"
    assert "function" not in res[1]["performer"][0]
    assert res[2]["performer"] == [{"actor": {"type": "Organization",
                                              "display": "Clinique Sainte-Thérèse"}}]


# -- a vital sign without a value --------------------------------------------------------------
def test_a_vital_sign_sent_without_value_says_it_is_unknown() -> None:
    """R4 makes every vital sign meet the vitalsigns profile, whose vs-2 wants a value or a
    dataAbsentReason when the Observation has no component nor member. A VSM's weight sent
    without its value element (not taken at the visit) was an Observation with neither,
    which the validator rejects. It says 'unknown' now; a blood pressure panel whose two
    measurements are its members, and a weight with its value, are as before."""
    rows = [_row(1, type="vital_sign", code="29463-7", display="Poids",
                 effective="2025-01-10T10:30+01:00"),
            _row(2, type="vital_sign", code="85354-9", display="Pression artérielle",
                 key="vital|85354-9|2025-01-10", effective="2025-01-10T10:30+01:00"),
            _row(3, type="vital_sign", code="8480-6", display="Pression systolique",
                 value="128", value_num=128, unit="mm[Hg]",
                 effective="2025-01-10T10:30+01:00",
                 details={"parent_result": {"key": "vital|85354-9|2025-01-10",
                                            "code": "85354-9"}}),
            _row(4, type="vital_sign", code="29463-7", display="Poids", value="71.5",
                 value_num=71.5, unit="kg", effective="2025-01-10T10:30+01:00"),
            _row(5, type="vital_sign", code="8867-4", display="Fréquence cardiaque",
                 status="entered-in-error")]
    res = by_entry_id(json.loads(_valid(to_bundle(PATIENT, rows))))
    assert res[1]["dataAbsentReason"]["coding"][0] == {
        "system": "http://terminology.hl7.org/CodeSystem/data-absent-reason",
        "code": "unknown", "display": "Unknown"}
    assert res[2]["hasMember"] and "dataAbsentReason" not in res[2]
    assert res[4]["valueQuantity"]["value"] == 71.5 and "dataAbsentReason" not in res[4]
    assert "dataAbsentReason" not in res[3] and "dataAbsentReason" not in res[5]
