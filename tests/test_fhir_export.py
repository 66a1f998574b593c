"""The dossier as a FHIR R4 Bundle (dossiers/fhir/, `dmp-ingest dossier export`).

The samples (HL7v2, CDA, PDF) are filed once for the module through pipelines/ (no Prefect);
every dossier's Bundle is validated whole with the fhir.resources R4B models, each resource
with its own model, statuses against the R4 value sets (the models check patterns, not value
sets) and every reference against the Bundle's fullUrls.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest
from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.bundle import Bundle
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

import cli
from dossiers import audit
from dossiers.export import load_dossier_rows, load_parent_versions, load_provenance
from dossiers.fhir import (
    fhir_datetime,
    full_url,
    resource_type,
    to_bundle,
)
from dossiers.fhir.codings import entry_type_table, status_table
from dossiers.patients import find_by_reference
from dossiers.schema import entries, imports, patients
from pipelines.audit import trail
from pipelines.dossier_admin import DossierInput, create_dossiers
from pipelines.intake import Received, intake
from pipelines.process import drain
from tests.conftest import SAMPLES, corpus_path, migrated_sqlite
from tests.test_samples_e2e import load_samples

# FHIR R4 required value sets (fhir.resources checks the code pattern only)
STATUSES = {
    "Observation": {"registered", "preliminary", "final", "amended", "corrected", "cancelled",
                    "entered-in-error", "unknown"},
    "DiagnosticReport": {"registered", "partial", "preliminary", "final", "amended",
                         "corrected", "appended", "cancelled", "entered-in-error", "unknown"},
    "DocumentReference": {"current", "superseded", "entered-in-error"},
    "MedicationStatement": {"active", "completed", "entered-in-error", "intended", "stopped",
                            "on-hold", "unknown", "not-taken"},
    "MedicationRequest": {"active", "on-hold", "cancelled", "completed", "entered-in-error",
                          "stopped", "draft", "unknown"},
    "MedicationDispense": {"preparation", "in-progress", "cancelled", "on-hold", "completed",
                           "entered-in-error", "stopped", "declined", "unknown"},
    "Immunization": {"completed", "entered-in-error", "not-done"},
    "Procedure": {"preparation", "in-progress", "not-done", "on-hold", "stopped", "completed",
                  "entered-in-error", "unknown"},
    "FamilyMemberHistory": {"partial", "completed", "entered-in-error", "health-unknown"},
    "ServiceRequest": {"draft", "active", "on-hold", "revoked", "completed", "entered-in-error",
                       "unknown"},
    "DeviceUseStatement": {"active", "completed", "entered-in-error", "intended", "stopped",
                           "on-hold"},
    "Encounter": {"planned", "arrived", "triaged", "in-progress", "onleave", "finished",
                  "cancelled", "entered-in-error", "unknown"},
}
DOC_STATUSES = {"preliminary", "final", "amended", "entered-in-error"}
VERIFICATION = {
    "Condition": {"unconfirmed", "provisional", "differential", "confirmed", "refuted",
                  "entered-in-error"},
    "AllergyIntolerance": {"unconfirmed", "confirmed", "refuted", "entered-in-error"},
}
UCUM = "http://unitsofmeasure.org"
THO = "http://terminology.hl7.org/CodeSystem/"
DCM_SYSTEM = "http://dicom.nema.org/resources/ontology/DCM"
RFC3986 = "urn:ietf:rfc:3986"
TRE_A07 = ("https://mos.esante.gouv.fr/NOS/TRE_A07-StatutVisibiliteDocument/FHIR/"
           "TRE-A07-StatutVisibiliteDocument")


def _entry_resources(bundle: dict) -> int:
    """How many resources are entries of ours (each has our entry id as first identifier);
    the others are the patient, provenance and what results reference (Specimen, Device,
    Practitioner, Organization, an isolate's Observation)."""
    return sum(1 for e in bundle["entry"]
               if e["resource"].get("identifier", [{}])[0].get("system", "").endswith(
                   "/entries"))


def _fr_core_id(kind: str, system: str, value: str, **more: str) -> dict:
    """An Identifier typed with FR Core's identifier types (fr-core-cs-v2-0203)."""
    return {**more, "type": {"coding": [{
        "system": "https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-v2-0203", "code": kind}]},
        "system": system, "value": value}


def check_bundle(bundle: dict) -> Counter:
    """Validate the Bundle and each resource; statuses in their value sets; references
    resolved inside the Bundle. Returns the count of resources per type."""
    json.dumps(bundle)  # JSON-ready: plain types only
    Bundle.model_validate(bundle)
    assert bundle["type"] == "collection"
    urls = [e["fullUrl"] for e in bundle["entry"]]
    assert len(urls) == len(set(urls))
    kinds: Counter = Counter()
    for item in bundle["entry"]:
        res = item["resource"]
        kind = res["resourceType"]
        kinds[kind] += 1
        get_fhir_model_class(kind).model_validate(res)
        assert item["fullUrl"] == f"urn:uuid:{res['id']}"
        if kind in STATUSES:
            assert res["status"] in STATUSES[kind], (kind, res["status"])
        if kind == "DocumentReference" and "docStatus" in res:
            assert res["docStatus"] in DOC_STATUSES
        if kind in VERIFICATION and "verificationStatus" in res:
            assert res["verificationStatus"]["coding"][0]["code"] in VERIFICATION[kind]
            # R4 binds them to FHIR's own code systems (required): a reader matches on them
            assert res["verificationStatus"]["coding"][0]["system"] == THO + (
                "condition-ver-status" if kind == "Condition"
                else "allergyintolerance-verification")
        if kind in VERIFICATION and "clinicalStatus" in res:
            said = res["clinicalStatus"]
            assert said["coding"][0]["system"] == THO + (
                "condition-clinical" if kind == "Condition" else "allergyintolerance-clinical") \
                if "coding" in said else said["extension"][0]["valueCode"] == "unknown"
        if kind == "AllergyIntolerance":  # R4 ait-1 and ait-2 (rules)
            in_error = res.get("verificationStatus", {}).get("coding", [{}])[0].get(
                "code") == "entered-in-error"
            assert ("clinicalStatus" in res) is not in_error
        if kind == "ImagingStudy":  # R4: DICOM UIDs as urn:oid:, DCM modalities, counts
            assert all(i["system"] == "urn:dicom:uid" and i["value"].startswith("urn:oid:")
                       for i in res.get("identifier", []))
            series = res.get("series", [])
            assert res.get("numberOfSeries", 0) >= len(series)
            assert res.get("numberOfInstances", 0) >= sum(
                s.get("numberOfInstances", 0) for s in series)
            for s in series:
                assert s["modality"].get("system", DCM_SYSTEM) == DCM_SYSTEM
                assert s.get("numberOfInstances", 0) >= len(s.get("instance", []))
                assert all(i["sopClass"].get("system", RFC3986) == RFC3986 and
                           i["sopClass"].get("code", "urn:oid:").startswith("urn:oid:")
                           for i in s.get("instance", []))
        if kind == "Endpoint":
            assert res["connectionType"]["system"] == THO + "endpoint-connection-type"
        for ref in _references(res):
            assert ref in urls, (kind, ref)
        assert not _both_hours_and_events(res), kind  # R4 tim-10
    assert kinds["Patient"] == 1
    return kinds


def _both_hours_and_events(obj: object) -> bool:
    """Whether a Timing.repeat has timeOfDay and when (R4 tim-10 forbids it)."""
    if isinstance(obj, dict):
        return ("timeOfDay" in obj and "when" in obj) or any(
            _both_hours_and_events(v) for v in obj.values())
    if isinstance(obj, list):
        return any(_both_hours_and_events(v) for v in obj)
    return False


def _references(obj: object) -> list[str]:
    if isinstance(obj, dict):
        found = [obj["reference"]] if isinstance(obj.get("reference"), str) else []
        return found + [r for v in obj.values() for r in _references(v)]
    if isinstance(obj, list):
        return [r for v in obj for r in _references(v)]
    return []


def by_entry_id(bundle: dict) -> dict[int, dict]:
    """entry id -> its resource (our id is the resource's first identifier)."""
    out = {}
    for item in bundle["entry"]:
        for ident in item["resource"].get("identifier", []):
            if ident.get("system") == "urn:dmp/entries":
                out[int(ident["value"])] = item["resource"]
    return out


# -- the samples ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def store(tmp_path_factory, sqlite_template):  # noqa: ANN001, ANN201
    """The samples filed in a SQLite store of the module's own (HL7v2, CDA, PDF)."""
    from pipelines.process import Context
    from pipelines.settings import load_settings

    home = tmp_path_factory.mktemp("fhir") / "home"
    migrated_sqlite(sqlite_template, home / "dmp.sqlite3")  # the home's default store, at head
    ctx = Context.from_settings(load_settings(env={"DMP_HOME": str(home)}))
    ctx.settings = replace(ctx.settings, mappings_dir=SAMPLES / "mappings")
    load_samples(ctx)  # the dossiers and the HL7v2 samples
    # the PDFs with a text layer and one scan: each more scan is seconds of OCR, no new shape
    pdfs = [f for f in sorted((SAMPLES / "pdf").glob("*.pdf"))
            if "scan" not in f.stem and "mixte" not in f.stem
            or f.name == "02_tdm_thorax_K2_scan.pdf"]
    files = sorted((SAMPLES / "cda").glob("*.xml")) + pdfs
    intake(ctx.engine, ctx.archive, [Received(f.read_bytes(), "samples", "file",
                                              file_name=f.name) for f in files])
    drain(ctx)
    ctx.home = home
    yield ctx
    ctx.engine.dispose()


def _patients() -> dict[str, dict]:
    with open(SAMPLES / "patients.csv", encoding="utf-8") as fh:
        return {r["key"]: r for r in csv.DictReader(fh)}


def export(ctx, ins: str) -> tuple[dict, list]:  # noqa: ANN001
    with ctx.engine.connect() as conn:
        patient = find_by_reference(conn, ins)
        row, rows = load_dossier_rows(conn, patient.id)
        prov = load_provenance(conn, [r["id"] for r in rows])
    return to_bundle(row, rows, provenance=prov), rows


def test_every_sample_dossier_is_a_valid_bundle(store) -> None:  # noqa: ANN001
    with store.engine.connect() as conn:
        ids = conn.execute(select(patients.c.id).order_by(patients.c.id)).scalars().all()
        types = set(conn.execute(select(entries.c.type).where(entries.c.current))
                    .scalars())
    seen: Counter = Counter()
    for pid in ids:
        with store.engine.connect() as conn:
            row, rows = load_dossier_rows(conn, pid)
            prov = load_provenance(conn, [r["id"] for r in rows])
        bundle = to_bundle(row, rows, provenance=prov)
        kinds = check_bundle(bundle)
        seen.update(kinds)
        # one resource per entry, besides those they reference (who, on what, with what)
        assert _entry_resources(bundle) == len(rows)
        mapped = by_entry_id(bundle)
        for r in rows:  # every entry, whatever its type, is its resource
            assert mapped[r["id"]]["resourceType"] == resource_type(r["type"], r["details"])
        assert to_bundle(row, rows, provenance=prov) == bundle  # stable
    # every entry type of the samples has its own mapping (none falls back unseen)
    assert types <= set(entry_type_table()), types - set(entry_type_table())
    for kind in ("Observation", "DiagnosticReport", "DocumentReference", "Condition",
                 "MedicationStatement", "AllergyIntolerance", "Provenance"):
        assert seen[kind] > 0, kind


def test_lab_results_codes_units_ranges(store) -> None:  # noqa: ANN001
    """K1: a LOINC result with its UCUM unit and range; the corrected platelet count is the
    only one exported (the superseded 96 G/L is not), unit as sent kept as its text."""
    k1 = _patients()["K1"]["ins"]
    bundle, rows = export(store, k1)
    mapped = by_entry_id(bundle)
    hb = next(r for r in rows if r["code"] == "718-7" and r["reference_range"])
    obs = mapped[hb["id"]]
    assert obs["code"]["coding"][0]["system"] == "http://loinc.org"
    assert obs["code"]["coding"][0]["code"] == "718-7"
    assert obs["valueQuantity"] == {"value": hb["value_num"], "unit": "g/dL", "system": UCUM,
                                    "code": "g/dL"}
    assert obs["referenceRange"][0]["text"] == hb["reference_range"]
    assert obs["referenceRange"][0]["low"]["code"] == "g/dL"
    assert obs["category"][0]["coding"][0]["code"] == "laboratory"
    assert obs["effectiveDateTime"] == fhir_datetime(hb["effective"])
    assert obs["effectiveDateTime"].count(":") == 3  # zero-filled seconds and the offset
    platelets = [r for r in bundle["entry"] if r["resource"]["resourceType"] == "Observation"
                 and r["resource"]["code"]["coding"][0]["code"] == "777-3"]
    values = {p["resource"]["valueQuantity"]["value"]: p["resource"] for p in platelets}
    assert 96.0 not in values
    assert values[212.0]["status"] == "corrected"
    assert values[212.0]["valueQuantity"]["unit"] == "G/L"  # as sent
    assert values[212.0]["valueQuantity"]["code"] == "10*9/L"  # UCUM
    # the report lists its results
    report = next(e["resource"] for e in bundle["entry"]
                  if {"reference": f"urn:uuid:{values[212.0]['id']}"} in
                  e["resource"].get("result", []))
    assert report["resourceType"] == "DiagnosticReport"
    assert report["status"] == "corrected"
    # the history handed to to_bundle anyway: superseded versions still left out
    with store.engine.connect() as conn:
        pid = find_by_reference(conn, k1).id
        everything = [r._mapping for r in conn.execute(
            select(entries).where(entries.c.patient_id == pid))]
        row = conn.execute(select(patients).where(patients.c.id == pid)).one()._mapping
    assert any(not r["current"] for r in everything)
    again = to_bundle(row, everything)
    assert set(by_entry_id(again)) == {r["id"] for r in everything if r["current"]}


def test_comparator_coded_value_and_unmapped_code(store) -> None:  # noqa: ANN001
    people = _patients()
    bundle, rows = export(store, people["K1"]["ins"])
    mapped = by_entry_id(bundle)
    crp = next((r for r in rows if r["comparator"] == "<"), None)
    if crp is not None:
        assert mapped[crp["id"]]["valueQuantity"]["comparator"] == "<"
    for k in people:
        bundle, rows = export(store, people[k]["ins"])
        mapped = by_entry_id(bundle)
        for r in rows:
            if r["type"] == "lab_result" and not r["mapped"]:
                coding = mapped[r["id"]]["code"]["coding"][0]
                assert coding["code"] == r["code"]  # the sender's code, kept
                assert coding["system"] == f"urn:dmp/CodeSystem/{r['system']}"
            if r["value_type"] == "CE" and r["type"] == "lab_result":
                concept = mapped[r["id"]]["valueCodeableConcept"]
                assert concept["coding"][0]["system"] == "http://snomed.info/sct"
    # a local code mapped to LOINC (samples/mappings): both codings, LOINC first
    k2 = export(store, people["K2"]["ins"])[0]
    assert any([(c["system"], c["code"]) for c in e["resource"]["code"]["coding"]] ==
               [("http://loinc.org", "1558-6"), ("urn:dmp/CodeSystem/L/samples", "GLY")]
               for e in k2["entry"] if e["resource"].get("code", {}).get("coding"))
    k3 = export(store, people["K3"]["ins"])[0]
    codes = {c["code"] for e in k3["entry"] for c in
             e["resource"].get("code", {}).get("coding", [])}
    assert "VITD25" in codes


def test_documents_reports_and_masking(store) -> None:  # noqa: ANN001
    with store.engine.connect() as conn:
        docs = conn.execute(select(entries).where(entries.c.type == "document",
                                                  entries.c.current)).all()
        masked = next(d for d in docs if d.masking and d.masking.get("MASQUE_PS"))
        owner = conn.execute(select(patients.c.ins).where(
            patients.c.id == masked.patient_id)).scalar_one()
    bundle, rows = export(store, owner)
    mapped = by_entry_id(bundle)
    doc = mapped[masked.id]
    assert doc["resourceType"] == "DocumentReference"
    assert doc["status"] == "current"
    attachment = doc["content"][0]["attachment"]
    assert attachment["contentType"] == masked.media_type == "text/xml"
    assert attachment["url"] == f"urn:dmp/documents/{masked.id}"
    assert "hash" not in attachment  # FHIR's hash is SHA-1: the sha256 is an identifier
    assert any(i["value"].startswith("ni:///sha-256;") for i in doc["identifier"])
    labels = {(c["system"], c["code"]) for s in doc["securityLabel"] for c in s["coding"]}
    assert ("http://terminology.hl7.org/CodeSystem/v3-Confidentiality",
            masked.details["confidentiality"]) in labels
    assert (TRE_A07, "MASQUE_PS") in labels
    # what was read from the masked document is masked too, and points to it
    children = [r for r in rows if r["parent_id"] == masked.id]
    assert children
    for child in children:
        res = mapped[child["id"]]
        assert {(s["system"], s["code"]) for s in res["meta"]["security"]} >= {
            (TRE_A07, "MASQUE_PS")}
    # a scanned imaging report: date-only effective stays a date, the PDF is its form
    imaging = next(r for k in _patients().values() for r in export(store, k["ins"])[1]
                   if r["type"] == "imaging_report")
    owner_bundle = export(store, next(k["ins"] for k in _patients().values() if any(
        r["id"] == imaging["id"] for r in export(store, k["ins"])[1])))[0]
    rep = by_entry_id(owner_bundle)[imaging["id"]]
    assert rep["effectiveDateTime"] == imaging["effective"] and len(imaging["effective"]) == 10
    assert rep["presentedForm"][0]["contentType"] == "application/pdf"
    assert rep["category"][0]["coding"][0]["code"] == "RAD"


def test_problems_medications_allergies(store) -> None:  # noqa: ANN001
    with store.engine.connect() as conn:
        pid = conn.execute(select(entries.c.patient_id).where(
            entries.c.type == "medication")).scalars().first()
        ins = conn.execute(select(patients.c.ins).where(patients.c.id == pid)).scalar_one()
    bundle, rows = export(store, ins)
    mapped = by_entry_id(bundle)
    for r in rows:
        res = mapped[r["id"]]
        if r["type"] == "problem":
            assert res["code"]["coding"][0]["system"] == "http://hl7.org/fhir/sid/icd-10"
            assert res["onsetDateTime"] == r["effective"]  # a date stays a date
        if r["type"] == "medication":
            assert res["status"] == "unknown"
            assert res["medicationCodeableConcept"]["coding"][0]["code"] == r["code"]
            if r["details"].get("period_low"):
                assert res["effectivePeriod"]["start"] == r["details"]["period_low"]
        if r["type"] == "allergy":
            assert res["patient"]["reference"] == bundle["entry"][0]["fullUrl"]


def test_export_reads_on_both_databases(ctx) -> None:  # noqa: ANN001
    """load_dossier_rows / load_provenance on SQLite and PostgreSQL: a replaced CDA (v1 then
    v2, RPLC) exports its current version only, with its provenance."""
    with open(SAMPLES / "patients.csv", encoding="utf-8") as fh:
        create_dossiers(ctx.engine, [DossierInput.from_mapping(r) for r in csv.DictReader(fh)])
    files = [SAMPLES / "cda" / n for n in ("02_crbio_synlab_bilan_renal_v1.xml",
                                           "03_crbio_synlab_bilan_renal_v2_rplc.xml",
                                           "11_ldl_ses_tres_restreint.xml")]
    intake(ctx.engine, ctx.archive, [Received(f.read_bytes(), "samples", "file",
                                              file_name=f.name) for f in files])
    drain(ctx)
    with ctx.engine.connect() as conn:
        pids = conn.execute(select(entries.c.patient_id).distinct()).scalars().all()
        old = conn.execute(select(entries.c.id).where(entries.c.current.is_(False))
                           ).scalars().all()
        assert pids and old
        for pid in pids:
            row, rows = load_dossier_rows(conn, pid)
            prov = load_provenance(conn, [r["id"] for r in rows])
            assert all(r["current"] and r["status"] != "withdrawn" for r in rows)
            assert [r["id"] for r in rows] == sorted(r["id"] for r in rows)
            assert set(prov) == {r["id"] for r in rows}
            bundle = to_bundle(row, rows, provenance=prov)
            check_bundle(bundle)
            assert not set(old) & set(by_entry_id(bundle))
        assert load_dossier_rows(conn, 999999) == (None, [])


# -- rows made up -----------------------------------------------------------------------------
PATIENT = {"id": 7, "ins": "268036912354128", "ins_oid": "1.2.250.1.213.1.4.10",
           "family": "DURAND", "given": "Marie", "birth_family": "MARTIN",
           "birth_date": "1968-03-14", "sex": "F"}


def _row(i: int, **kw: object) -> dict:
    base = {"id": i, "type": "lab_result", "status": "final", "current": True,
            "code": "2345-7", "system": "LN", "display": "Glucose", "mapped": True,
            "superseded_by": None, "parent_id": None}
    base.update(kw)
    return base


def test_patient_ins_and_partial_dates() -> None:
    rows = [_row(1, effective="2025-03", issued="2025-03-19"),
            _row(2, effective="2025", value="positif", value_type="ST"),
            _row(3, effective="2025-03-19T08:30+01:00", issued="2025-03-19T09:00+01:00",
                 value_num=5.4, value="5.40", unit="mmol/L"),
            _row(4, effective="2025-03-19T08+01:00"),
            _row(5, status="withdrawn"),
            _row(6, current=False, superseded_by=7),
            _row(7, type="problem", effective="2016", code="I10", system="CIM-10"),
            _row(8, type="immunization", code="3400932857241", system="1.2.250.1.215.200"),
            _row(9, type="observation", details={"negated": True}, value="fièvre"),
            _row(10, type="allergy", details={"negated": True}, code="416098002",
                 system="SNOMED-CT", effective="2004-07")]
    bundle = to_bundle(PATIENT, rows, timestamp=None)
    check_bundle(bundle)
    mapped = by_entry_id(bundle)
    assert set(mapped) == {1, 2, 3, 4, 7, 8, 9, 10}
    assert mapped[8]["resourceType"] == "Immunization"
    assert mapped[8]["occurrenceString"] == "date not stated by the sender"
    assert mapped[8]["vaccineCode"]["coding"][0]["system"] == "urn:oid:1.2.250.1.215.200"
    assert "NOT observed" in mapped[9]["note"][0]["text"]
    assert mapped[10]["verificationStatus"]["coding"][0]["code"] == "refuted"
    assert mapped[10]["onsetDateTime"] == "2004-07"
    assert mapped[1]["effectiveDateTime"] == "2025-03"
    assert "issued" not in mapped[1]  # an instant needs a time: not invented
    assert mapped[2]["effectiveDateTime"] == "2025"
    assert mapped[2]["valueString"] == "positif"
    assert mapped[3]["effectiveDateTime"] == "2025-03-19T08:30:00+01:00"
    assert mapped[3]["issued"] == "2025-03-19T09:00:00+01:00"
    assert mapped[4]["effectiveDateTime"] == "2025-03-19"  # no hour precision in FHIR
    assert mapped[7]["onsetDateTime"] == "2016"
    patient = bundle["entry"][0]["resource"]
    assert patient["identifier"][0]["system"] == "urn:oid:1.2.250.1.213.1.4.10"
    assert patient["identifier"][0]["value"] == PATIENT["ins"]
    assert patient["identifier"][0]["type"]["text"] == "INS-NIR-TEST"
    assert patient["gender"] == "female" and patient["birthDate"] == "1968-03-14"
    # FR Core: the birth name is the official name, the used name the usual one
    assert {n["use"] for n in patient["name"]} == {"usual", "official"}
    assert bundle["entry"][1]["fullUrl"] == full_url("entry", 1)
    # without the INS's OID: no system guessed
    no_oid = to_bundle({**PATIENT, "ins_oid": None}, [])
    check_bundle(no_oid)
    assert "system" not in no_oid["entry"][0]["resource"]["identifier"][0]


def test_status_tables_stay_in_the_r4_value_sets() -> None:
    for status, row in status_table().items():
        for resource, allowed in STATUSES.items():
            if resource == "DocumentReference":
                allowed = DOC_STATUSES | {""}  # docStatus is optional: blank, left out
            if resource == "DeviceUseStatement":
                allowed = allowed | {""}  # blank: active, or completed once removed
            assert row[resource] in allowed, (status, resource)
        for resource, allowed in VERIFICATION.items():
            assert row[resource] in allowed | {""}, (status, resource)
    for row in entry_type_table().values():
        assert row["resource"] in set(STATUSES) | set(VERIFICATION) | {"Observation"}


# -- hypothesis: made-up rows always make a valid Bundle ---------------------------------------
_FREQUENCIES = st.sampled_from(["every 8 h", "3 times a day", "once a day", "every 4-6 h",
                                 "2 times every 1 wk", "every 2 x", "0 times a day", ""])


def _dates() -> st.SearchStrategy[str | None]:
    """Our ISO forms at every precision (some impossible: month 13, hour 61...), and junk."""
    two = st.integers(0, 61).map(lambda n: f"{n:02d}")
    full = st.builds(lambda y, mo, d, h, mi, s: f"{y:04d}-{mo}-{d}T{h}:{mi}:{s}",
                     st.integers(0, 2100), two, two, two, two, two)
    cut = st.builds(lambda f, n, off: f[:n] + (off if n > 10 else ""), full,
                    st.sampled_from([4, 7, 10, 13, 16, 19]),
                    st.sampled_from(["", "Z", "+01:00", "-05:00", "+0200", "+14:00", "+15:00"]))
    return st.one_of(st.none(), st.text(max_size=12), cut)


_text = st.one_of(st.none(), st.text(max_size=20))
_CODED = st.fixed_dictionaries({}, optional={"code": _text, "system": st.sampled_from(
    ["SCT", "SNOMED-CT", "HL70493", "99METH", "", "1.2.3"]), "display": _text, "text": _text})
_EQUIPMENT = st.fixed_dictionaries({}, optional={
    "id": _text, "namespace": _text, "universal_id": st.sampled_from(["1.2.3.4", "ROCHE", ""])})
_entry_rows = st.fixed_dictionaries({
    "type": st.one_of(st.sampled_from(sorted(entry_type_table())), st.text(max_size=12)),
    "status": st.one_of(st.sampled_from(sorted(status_table())), st.text(max_size=12)),
    "current": st.booleans(),
    "code": _text, "system": st.one_of(_text, st.sampled_from(["LN", "CIM-10", "99BAZ",
                                                               "1.2.3.4", "http://x y"])),
    "display": _text, "mapped": st.booleans(), "value": _text,
    "value_type": st.sampled_from([None, "NM", "ST", "CE", "SN", "ED", "PQ", "RTO", "IVL_PQ",
                                   "CD"]),
    "value_num": st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)),
    "comparator": st.sampled_from([None, "<", ">=", "=", "<>"]),
    "unit": st.one_of(st.none(), st.sampled_from(["mmol/L", "10*9/L", "g/L", "G/L", "%"]),
                      st.text(max_size=8)),
    "unit_original": _text,
    "reference_range": st.one_of(_text, st.sampled_from(
        ["3.5-5.1", "10-2", "<5", "30,0-100,0", "45-84 µmol/l", "3.5^5.1", "<10^3",
         "150 000 - 400 000", "1,5x10^4-2E5 /mL"])),
    "interpretation": st.one_of(_text, st.sampled_from(["H", "L,A", "HH", "??"])),
    "effective": _dates(), "issued": _dates(), "performer": _text,
    "attachment_sha256": st.sampled_from([None, "ab" * 32, "xyz"]),
    "media_type": st.sampled_from([None, "text/xml", "application/pdf", " odd  type "]),
    "masking": st.one_of(st.none(), st.dictionaries(
        st.sampled_from(["MASQUE_PS", "INVISIBLE_PATIENT", "odd flag"]), st.booleans())),
    "mask_override": st.sampled_from([None, True, False]),
    "details": st.one_of(st.none(), st.fixed_dictionaries({}, optional={
        "confidentiality": st.sampled_from(["N", "R", "V", "x"]),
        "negated": st.booleans(),
        "period_low": _dates(), "period_high": _dates(),
        "dose": _text, "frequency": st.one_of(_text, _FREQUENCIES), "route": _text,
        "coded_value": st.fixed_dictionaries({"code": _text, "system": _text}, optional={
            "alt_code": _text, "alt_system": _text, "original_text": _text}),
        "sn": st.fixed_dictionaries({"comparator": st.sampled_from(["", "<", "="]),
                                     "num1": st.sampled_from(["1", "2,5", "", "x"]),
                                     "separator": st.sampled_from([":", "/", "-", "+"]),
                                     "num2": st.sampled_from(["64", "0", "", "-3"])}),
        "value_null_flavor": st.sampled_from(["NAV", "MSK", "NA", "OTH", ""]),
        "value_withheld": _text, "value_held": st.booleans(),
        "set_id": st.sampled_from(["1.2.3^ABC", "plain", ""]),
        "comments": st.lists(st.text(max_size=10), max_size=2),
        "concern_status": st.sampled_from(["active", "completed", "aborted", "nullified", ""]),
        "clinical_status": st.fixed_dictionaries({"code": st.sampled_from(
            ["55561003", "413322009", "277022003", "x"]), "system": _text}),
        "resolved": _dates(), "relative": st.fixed_dictionaries({}, optional={
            "code": _text, "system": _text, "display": _text, "sex": _text}),
        "mood": st.sampled_from(["INT", "RQO", "GOL", "x", ""]),
        "planned": st.sampled_from(["medication", "procedure", ""]),
        "performed_by": st.fixed_dictionaries({}, optional={
            "ids": st.lists(st.sampled_from(["1.2.3^X1", "plain", ""]), max_size=2),
            "organization": st.lists(st.sampled_from(["1.2.4^F1", " "]), max_size=1),
            "organization_name": _text}),
        "location": st.fixed_dictionaries({}, optional={"name": _text}),
        "diagnoses": st.lists(st.fixed_dictionaries({}, optional={
            "code": _text, "system": _text, "display": _text, "text": _text}), max_size=2),
        "code_qualifiers": st.lists(st.fixed_dictionaries({"value": st.fixed_dictionaries(
            {"code": _text, "system": _text})}), max_size=2),
        # a medication's dosing and a prescription's parts, a vaccination's, a problem's
        "event": st.sampled_from(["HS", "WAKE, HS", "XX", ""]),
        "duration": st.sampled_from(["5 d", "2 x", "d", ""]),
        "times_of_day": st.lists(st.sampled_from(["08:00", "25:00", ""]), max_size=2),
        "dosage_steps": st.lists(st.fixed_dictionaries({}, optional={
            "sequence": st.sampled_from(["1", "0", "x", ""]), "frequency": _FREQUENCIES,
            "dose": _text}), max_size=2),
        "administration_unit": st.fixed_dictionaries({}, optional={"code": _text,
                                                                   "display": _text}),
        "renewals": st.sampled_from([0, 3, -1, True]),
        "quantity_prescribed": st.fixed_dictionaries({"value": _text, "unit": _text}),
        "substitution": st.fixed_dictionaries({"code": st.sampled_from(["N", "E", ""]),
                                               "system": _text}),
        "patient_instructions": st.lists(_text, max_size=2), "sig": st.lists(_text, max_size=1),
        "lot_number": _text, "dose_number": st.sampled_from([1, 0, "booster", " ", True]),
        "target_diseases": st.lists(st.fixed_dictionaries({}, optional={
            "code": _text, "system": _text, "display": _text, "text": _text}), max_size=2),
        "not_done_reason": st.fixed_dictionaries({"code": _text, "system": _text}),
        "certainty": st.fixed_dictionaries({"code": st.sampled_from(
            ["refuted", "confirmed", "x"]), "system": st.sampled_from(
            ["2.16.840.1.113883.4.642.1.1075", "2.16.840.1.113883.4.642.4.130", "x"])}),
        "severity": st.fixed_dictionaries({"code": _text, "system": _text}),
        "criticality": st.fixed_dictionaries({"code": st.sampled_from(["high", "x"])}),
        # how a lab result was obtained (HL7 round 7, CDA rounds 9-10)
        "method": st.one_of(_CODED, st.lists(_CODED, max_size=2)),
        "equipment": st.one_of(_EQUIPMENT, st.lists(_EQUIPMENT, max_size=2)),
        "devices": st.lists(_CODED, max_size=2),
        "observation_type": st.sampled_from(["RSLT", "AOE", "XYZ", " ", ""]),
        "specimen": _CODED, "specimen_condition": st.lists(_CODED, max_size=2),
        "specimen_rejected": st.lists(_CODED, max_size=2),
        "responsible_observer": st.fixed_dictionaries({}, optional={
            "name": _text, "id": st.fixed_dictionaries({}, optional={
                "id": _text, "authority": st.sampled_from(
                    ["1.2.250.1.71.4.2.1", "ASIP-SANTE-PS", "x y", ""]), "type": _text})}),
        "validated_by": st.fixed_dictionaries({}, optional={
            "ids": st.lists(st.sampled_from(["1.2.250.1.71.4.2.1^810001", "plain", "^", ""]),
                            max_size=2), "time": _dates()}),
        "isolate": _CODED,
        "subject": st.fixed_dictionaries({}, optional={"code": _text, "display": _text}),
        # round 4: images, parts of a result, reactions said absent, the lab's identifier
        "dicom_studies": st.lists(st.fixed_dictionaries({}, optional={
            "uid": st.sampled_from(["1.2.3.4", "1.2.3.5", "", "x"]), "time": _dates(),
            "series": st.lists(st.fixed_dictionaries({}, optional={
                "uid": st.sampled_from(["1.2.3.4.1", "", "1.2"]),
                "modality": st.sampled_from(["CT", "MR", "", " "]), "time": _dates(),
                "instance_count": st.sampled_from([0, 3, 450, -1, "x"]),
                "instances": st.lists(st.fixed_dictionaries({}, optional={
                    "uid": st.sampled_from(["1.2.3.4.1.1", ""]),
                    "sop_class": st.sampled_from(["1.2.840.10008.5.1.4.1.1.2", "MR", ""]),
                    "reference": st.sampled_from([
                        "https://pacs.test/wado?requestType=WADO&objectUID=1.2",
                        "https://pacs.test/dicomweb/studies/1.2.3", "#ref", "ftp://x", ""])}),
                    max_size=2)}), max_size=2)}), max_size=2),
        "parent_result": st.fixed_dictionaries({}, optional={
            "key": st.sampled_from(["k1", "k2", "k3", ""]), "code": _text,
            "value": _text}),
        "absent_reactions": st.lists(_CODED, max_size=2),
        "performing_organization": st.fixed_dictionaries({}, optional={
            "name": _text, "id": st.fixed_dictionaries({}, optional={
                "id": _text, "authority": st.sampled_from(
                    ["1.2.250.1.71.4.2.2", "ASIP-SANTE-ST", "x y", ""]), "type": _text})})})),
    "key": st.sampled_from(["k1", "k2", "k3", None]),
    "specimen_time": _dates(),
})


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(_entry_rows, max_size=8), parents=st.lists(st.integers(0, 9), max_size=8),
       birth=_dates(), sex=st.sampled_from(["F", "M", "U", "X", ""]))
def test_any_rows_make_a_valid_bundle(rows, parents, birth, sex) -> None:  # noqa: ANN001
    entries_ = [{**r, "id": i + 1, "superseded_by": None,
                 "parent_id": parents[i] if i < len(parents) and parents[i] else None}
                for i, r in enumerate(rows)]
    patient = {**PATIENT, "birth_date": birth, "sex": sex}
    provenance = {e["id"]: [{"import_id": e["id"] % 3, "source": "lab", "relation": "created",
                             "created_at": "2026-11-25T10:00:00"}] for e in entries_}
    bundle = to_bundle(patient, entries_, provenance=provenance, base_url="https://dmp.test/")
    check_bundle(bundle)
    kept = {e["id"] for e in entries_ if e["current"] and e["status"] != "withdrawn"}
    # a device's use statement comes with its Device, a result with its lab...
    assert _entry_resources(bundle) == len(kept)


# -- the public ANS corpus --------------------------------------------------------------------
@pytest.mark.corpus
def test_ans_corpus_dossiers_are_valid_bundles(sqlite_ctx) -> None:  # noqa: ANN001
    """Every dossier the public corpus files (CDA documents, and the HL7v2 messages: lab
    results, CDA sent over HL7v2, ADT) exports a valid Bundle."""
    files = sorted(corpus_path("cda").glob("*.xml")) + \
        sorted(f for f in corpus_path("hl7v2").iterdir() if f.is_file())
    sqlite_ctx.settings = replace(sqlite_ctx.settings, auto_create=True)
    intake(sqlite_ctx.engine, sqlite_ctx.archive,
           [Received(f.read_bytes(), "ans", "file", file_name=f.name) for f in files])
    drain(sqlite_ctx)
    with sqlite_ctx.engine.connect() as conn:
        ids = conn.execute(select(patients.c.id)).scalars().all()
        deposited = conn.execute(select(imports.c.id).where(
            imports.c.status == "deposited")).scalars().all()
    assert ids and deposited
    seen: Counter = Counter()
    parts: list[bool] = []  # whether each CDA part (CR-GM variant...) is its result's member
    for pid in ids:
        with sqlite_ctx.engine.connect() as conn:
            row, rows = load_dossier_rows(conn, pid)
            prov = load_provenance(conn, [r["id"] for r in rows])
        bundle = to_bundle(row, rows, provenance=prov)
        seen.update(check_bundle(bundle))
        res = by_entry_id(bundle)
        members = {m["reference"] for r in res.values() for m in r.get("hasMember", [])}
        parts += [f"urn:uuid:{res[r['id']]['id']}" in members for r in rows
                  if r["id"] in res and ((r["details"] or {}).get("parent_result") or {})
                  .get("key")]
    assert seen["DocumentReference"] >= len(deposited) // 2
    assert seen["Observation"] > 0
    assert seen["ImagingStudy"] >= 3  # the CR-IMG's catalog
    assert len(parts) >= 30 and all(parts)  # CR-GM, D2LM, FRCP, PPS


# -- the command ------------------------------------------------------------------------------
def test_cli_export_prints_a_bundle_and_audits_the_read(store, monkeypatch, capsys,  # noqa: ANN001
                                                        tmp_path: Path) -> None:
    monkeypatch.setenv("DMP_HOME", str(store.home))
    for name in ("DMP_DATABASE_URL", "DMP_ARCHIVE_URL", "DMP_CONFIG", "DMP_ADMIN"):
        monkeypatch.delenv(name, raising=False)
    ins = _patients()["K2"]["ins"]
    assert cli.main(["dossier", "export", ins, "--format", "fhir", "--as", "tester"]) == 0
    bundle = json.loads(capsys.readouterr().out)
    check_bundle(bundle)
    n = _entry_resources(bundle)
    rows = trail(store.engine)
    mine = [r for r in rows if r["action"] == "dossier.export"]
    assert mine[-1]["actor"] == "admin:tester"
    assert mine[-1]["details"] == {"format": "fhir", "entries": n}
    with store.engine.connect() as conn:
        assert mine[-1]["patient_id"] == find_by_reference(conn, ins).id
    assert audit.verify(store.engine).ok
    # to a file, by internal id
    out = tmp_path / "b.json"
    assert cli.main(["dossier", "export", str(mine[-1]["patient_id"]), "--output",
                     str(out)]) == 0
    assert json.loads(out.read_text(encoding="utf-8"))["entry"][0]["fullUrl"] == \
        bundle["entry"][0]["fullUrl"]
    assert "written to" in capsys.readouterr().err
    # unknown dossier: one line, exit 1, nothing audited
    before = len(trail(store.engine))
    assert cli.main(["dossier", "export", "999999"]) == 1
    err = capsys.readouterr().err
    assert err.strip() == "dmp-ingest: no dossier 999999"
    assert len(trail(store.engine)) == before


def test_family_history_and_plans_are_not_the_patients_findings() -> None:
    """A relative's condition (CDA family history) is a FamilyMemberHistory naming the
    relative, never an Observation of the patient; a planned test or vaccination (moodCode
    INT, RQO...) is a ServiceRequest with its intent, never a final Observation."""
    patient = {"id": 7, "family": "ESSAI", "given": "Jeanne", "birth_date": "1962-04-15",
               "sex": "F", "ins": None}
    rows = [
        {"id": 1, "type": "family_history", "status": "completed", "code": "I21",
         "system": "CIM-10", "display": "Infarctus du myocarde", "effective": "2019",
         "details": {"relative": {"code": "FTH", "system": "HL7-ROLECODE", "display": "père",
                                  "sex": "M"}}},
        {"id": 2, "type": "family_history", "status": "completed", "code": "E11",
         "system": "CIM-10", "display": "Diabète de type 2", "details": {}},
        {"id": 3, "type": "plan", "status": "active", "code": "4548-4", "system": "LN",
         "display": "HbA1c", "effective": "2024-09-01", "details": {"mood": "RQO",
                                                                   "planned": "observation"}},
        {"id": 4, "type": "plan", "status": "new", "code": "J07BM01", "system": "ATC",
         "details": {"mood": "INT", "planned": "immunization"}},
    ]
    bundle = to_bundle(patient, rows)
    kinds = check_bundle(bundle)
    assert kinds["FamilyMemberHistory"] == 2 and kinds["ServiceRequest"] == 2
    assert kinds["Observation"] == 0
    res = {r["resource"]["identifier"][0]["value"]: r["resource"] for r in bundle["entry"]
           if r["resource"]["resourceType"] != "Patient"}
    father, unnamed, hba1c, vaccine = (res[str(i)] for i in range(1, 5))
    assert father["relationship"]["coding"][0] == {
        "system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode", "code": "FTH",
        "display": "père"}
    assert father["sex"]["coding"][0]["code"] == "male"
    assert father["condition"][0]["code"]["coding"][0]["code"] == "I21"
    assert unnamed["relationship"]["coding"][0]["code"] == "FAMMEMB"
    assert (hba1c["intent"], hba1c["status"], hba1c["occurrenceDateTime"]) == (
        "order", "active", "2024-09-01")
    assert (vaccine["intent"], vaccine["status"]) == ("plan", "unknown")


def test_problem_and_allergy_clinical_status_as_the_sender_stated_it() -> None:
    """The status observation's value (SNOMED CT) first, else the concern's statusCode;
    none for an entry in error (R4 con-5 / ait-2) nor when nothing was stated."""
    patient = {"id": 3, "family": "ESSAI", "given": "Paul", "birth_date": "1950-01-01",
               "sex": "M", "ins": None}
    rows = [
        {"id": 1, "type": "problem", "status": "completed", "code": "J45", "system": "CIM-10",
         "effective": "2010", "details": {"concern_status": "completed",
                                          "resolved": "2015-06-01"}},
        {"id": 2, "type": "problem", "status": "completed", "code": "I10", "system": "CIM-10",
         "details": {"concern_status": "completed", "clinical_status": {
             "code": "55561003", "system": "SNOMED-CT", "display": "Active"}}},
        {"id": 3, "type": "problem", "status": "entered-in-error", "code": "E11",
         "system": "CIM-10", "details": {"concern_status": "active"}},
        {"id": 4, "type": "problem", "status": "completed", "code": "K21", "system": "CIM-10",
         "details": {}},
        {"id": 5, "type": "allergy", "status": "completed", "code": "387207008",
         "system": "SNOMED-CT", "details": {"clinical_status": {
             "code": "277022003", "system": "SNOMED-CT"}}},
    ]
    bundle = to_bundle(patient, rows)
    check_bundle(bundle)
    res = {r["resource"]["identifier"][0]["value"]: r["resource"] for r in bundle["entry"]
           if r["resource"]["resourceType"] != "Patient"}

    def clinical(n: int) -> str | None:
        status = res[str(n)].get("clinicalStatus")
        return status["coding"][0]["code"] if status else None

    assert (clinical(1), res["1"]["abatementDateTime"]) == ("resolved", "2015-06-01")
    assert clinical(2) == "active"  # the status observation over the concern
    assert clinical(3) is None and clinical(4) is None
    assert clinical(5) == "active"  # remission: no such code for an allergy
    assert res["5"]["clinicalStatus"]["coding"][0]["system"].endswith(
        "allergyintolerance-clinical")


def test_an_allergy_whose_status_nobody_stated_says_unknown() -> None:
    """R4 ait-1 is a rule: an AllergyIntolerance has a clinicalStatus unless entered in
    error. Unstated (an IPS-FR 'interaction médicamenteuse' of the ANS corpus), it was left
    out and the whole Bundle was invalid for a validating reader; it says 'unknown' (the
    data-absent-reason extension), never a guessed 'active'."""
    rows = [_row(1, type="allergy", code="387207008", system="SNOMED-CT", details={}),
            _row(2, type="allergy", status="entered-in-error", code="387207008",
                 system="SNOMED-CT", details={})]
    bundle = to_bundle(PATIENT, rows)
    check_bundle(bundle)
    unstated, wrong = by_entry_id(bundle)[1], by_entry_id(bundle)[2]
    assert unstated["clinicalStatus"] == {"extension": [{
        "url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason",
        "valueCode": "unknown"}]}
    assert "clinicalStatus" not in wrong


def test_a_device_is_a_device_use_statement_of_its_device() -> None:
    patient = {"id": 4, "family": "ESSAI", "given": "Luc", "birth_date": "1948-02-02",
               "sex": "M", "ins": None}
    rows = [{"id": 9, "type": "device", "status": "completed", "code": "A0101",
             "system": "EMDN", "display": "Stimulateur cardiaque",
             "details": {"period_low": "2021-05-03"}},
            {"id": 10, "type": "device", "status": "completed", "code": "P0908",
             "system": "EMDN", "details": {"period_low": "2019-01-10",
                                           "period_high": "2023-02-01"}}]
    bundle = to_bundle(patient, rows)
    kinds = check_bundle(bundle)
    assert kinds["DeviceUseStatement"] == 2 and kinds["Device"] == 2
    res = {e["fullUrl"]: e["resource"] for e in bundle["entry"]}
    uses = [r for r in res.values() if r["resourceType"] == "DeviceUseStatement"]
    assert [u["status"] for u in uses] == ["active", "completed"]
    device = res[uses[0]["device"]["reference"]]
    assert device["type"]["coding"][0]["code"] == "A0101"
    assert uses[0]["timingPeriod"] == {"start": "2021-05-03"}


def test_comments_of_the_exam_and_of_the_concern_are_notes() -> None:
    """What the lab wrote of the whole exam ('Flore polymorphe, contamination probable')
    is on each of its results, and a concern's comment on its problem or allergy: neither
    left the store in the export."""
    patient = {"id": 3, "family": "ESSAI", "given": "Léa", "birth_date": "1950-01-01",
               "sex": "F", "ins": None}
    rows = [
        {"id": 1, "type": "lab_result", "status": "final", "code": "630-4", "system": "LN",
         "value": "10E5", "value_type": "ST",
         "details": {"comments": ["Recontrôle conseillé."],
                     "exam_comments": ["Flore polymorphe, contamination probable."]}},
        {"id": 2, "type": "problem", "status": "completed", "code": "J45", "system": "CIM-10",
         "details": {"concern_comments": ["Suivi pneumologique annuel."]}},
        {"id": 3, "type": "allergy", "status": "completed", "code": "387207008",
         "system": "SNOMED-CT", "details": {}},
    ]
    bundle = to_bundle(patient, rows)
    check_bundle(bundle)
    res = {r["resource"]["identifier"][0]["value"]: r["resource"] for r in bundle["entry"]
           if r["resource"]["resourceType"] != "Patient"}
    assert [n["text"] for n in res["1"]["note"]] == [
        "Recontrôle conseillé.", "Flore polymorphe, contamination probable."]
    assert [n["text"] for n in res["2"]["note"]] == ["Suivi pneumologique annuel."]
    assert "note" not in res["3"]


def test_an_encounter_is_an_encounter_with_its_class_period_place_and_reasons() -> None:
    """A CDA encounter (FR-Rencontre, C-CDA Encounter Activity): class from its ActCode
    (IMP), else 'unknown' (R4 requires one); its GHS qualifier as a further type; period;
    the clinic as serviceProvider, the physician by RPPS, the place and the diagnoses by
    display and code (no Location or Condition resources of their own)."""
    patient = {"id": 5, "family": "ESSAI", "given": "Marc", "birth_date": "1950-01-01",
               "sex": "M", "ins": None}
    rows = [
        {"id": 1, "type": "encounter", "status": "final", "code": "IMP",
         "system": "HL7-ACTCODE", "display": "Hospitalisation", "effective": "2019-05-15",
         "details": {"period_low": "2019-05-15", "period_high": "2019-05-30",
                     "code_qualifiers": [{"name": None, "value": {
                         "code": "1940", "system": "1.2.250.1.215.200.3.1",
                         "display": "Interventions majeures sur l'intestin grêle"}}],
                     "performed_by": {"ids": ["1.2.250.1.71.4.2.1^801234567897"],
                                      "organization": ["1.2.250.1.71.4.2.2^1750300550"],
                                      "organization_name": "CLINIQUE SAINTE GENEVIEVE"},
                     "location": {"name": "Service de chirurgie digestive"},
                     "diagnoses": [{"role": "diagnosis", "code": "K56.6", "system": "CIM-10",
                                    "display": "Occlusion"}, {"role": "reason",
                                                              "text": "douleurs"}]}},
        {"id": 2, "type": "encounter", "status": "active", "code": "GEN-079",
         "system": "TA_ASIP", "display": "Entretien prénatal précoce",
         "effective": "2022-12-11", "details": {}},
        {"id": 3, "type": "encounter", "status": "final", "code": "99213", "system": "CPT",
         "details": {"class": {"code": "AMB", "display": "Ambulatory"}}},
    ]
    bundle = to_bundle(patient, rows)
    kinds = check_bundle(bundle)
    assert kinds["Encounter"] == 3
    res = {r["resource"]["identifier"][0]["value"]: r["resource"] for r in bundle["entry"]
           if r["resource"]["resourceType"] != "Patient"}
    stay, visit = res["1"], res["2"]
    assert stay["status"] == "finished"
    assert stay["class"]["code"] == "IMP" and stay["class"]["system"].endswith("v3-ActCode")
    assert [t["coding"][0]["code"] for t in stay["type"]] == ["IMP", "1940"]
    assert stay["period"] == {"start": "2019-05-15", "end": "2019-05-30"}
    assert stay["participant"][0]["individual"]["identifier"]["value"] == "801234567897"
    assert stay["serviceProvider"]["display"] == "CLINIQUE SAINTE GENEVIEVE"
    assert stay["location"][0]["location"]["display"] == "Service de chirurgie digestive"
    assert [r.get("text") for r in stay["reasonCode"]] == ["Occlusion", "douleurs"]
    assert (visit["status"], visit["class"]["code"]) == ("in-progress", "UNK")
    assert visit["period"] == {"start": "2022-12-11"}
    assert (res["3"]["class"]["code"], res["3"]["type"][0]["coding"][0]["code"]) == (
        "AMB", "99213")  # C-CDA: the CPT visit code, AMB its ActCode translation


# -- results filed through the pipeline, read as a FHIR reader would ---------------------------
def _filed(ctx, *messages: bytes) -> tuple[dict, dict[str, dict]]:  # noqa: ANN001
    """The messages filed in order (tests/test_result_lifecycle.py's way), the dossier
    exported and validated; (bundle, {LOINC or local code: its current resource})."""
    from tests.test_result_lifecycle import _file

    _file(ctx, *messages)
    with ctx.engine.connect() as conn:
        (pid,) = conn.execute(select(patients.c.id)).scalars().all()
        row, rows = load_dossier_rows(conn, pid)
        prov = load_provenance(conn, [r["id"] for r in rows])
        versions = load_parent_versions(conn, rows)
    bundle = to_bundle(row, rows, provenance=prov, versions=versions)
    check_bundle(bundle)
    mapped = by_entry_id(bundle)
    by_code = {}
    for r in rows:
        key = r["code"] if r["code"] not in by_code else f"{r['code']}#2"
        by_code[key] = mapped[r["id"]]
    return bundle, by_code


def _limits(res: dict) -> dict:
    return {k: (v["value"], v.get("code", v.get("unit"))) for k, v in
            res["referenceRange"][0].items() if k in ("low", "high")}


def test_reference_ranges_with_their_unit_components_or_powers_of_ten(sqlite_ctx) -> None:  # noqa: ANN001
    """OBX-7 as labs write it: '45-84 µmol/l' (the unit after the range), '3.5^5.1'
    (low^high components), '70_105', '<10^3' (a colony count), '150 000 - 400 000' (digits
    grouped by blanks, as French reports print counts). All were exported as text
    alone: no reader could compare the value with them. Low/high now, in the result's
    unit; a range in another unit than the result's stays text (never a limit in a unit it
    was not written in); the text is always kept as sent."""
    from tests.test_result_lifecycle import _msg

    _, res = _filed(sqlite_ctx, _msg(1, "F",
                    "OBX|1|NM|14682-9^Créatinine^LN||70|µmol/L|45-84 µmol/l|N|||F",
                    "OBX|2|NM|2823-3^Potassium^LN||4.2|mmol/L|3.5^5.1|N|||F",
                    "OBX|3|NM|2345-7^Glucose^LN||95|mg/dL|70_105|N|||F",
                    "OBX|4|NM|564-5^Numération^LN||>10^5|UFC/mL|<10^3|A|||F",
                    "OBX|5|NM|2951-2^Sodium^LN||140|mmol/L|3,5 - 5,0 g/l|N|||F",
                    "OBX|6|NM|1988-5^CRP^LN||3|mg/L|< 5 mg/l|N|||F",
                    "OBX|7|NM|26515-7^Plaquettes^LN||250 000|/mm3|150 000 - 400 000|N|||F"))
    assert _limits(res["14682-9"]) == {"low": (45.0, "umol/L"), "high": (84.0, "umol/L")}
    assert res["14682-9"]["referenceRange"][0]["text"] == "45-84 µmol/l"
    assert _limits(res["2823-3"]) == {"low": (3.5, "mmol/L"), "high": (5.1, "mmol/L")}
    assert _limits(res["2345-7"]) == {"low": (70.0, "mg/dL"), "high": (105.0, "mg/dL")}
    assert _limits(res["564-5"]) == {"high": (1000.0, "{CFU}/mL")}
    assert _limits(res["2951-2"]) == {}  # g/l beside a result in mmol/L: text only
    assert res["2951-2"]["referenceRange"][0]["text"] == "3,5 - 5,0 g/l"
    assert _limits(res["1988-5"]) == {"high": (5.0, "mg/L")}
    assert _limits(res["26515-7"]) == {"low": (150000.0, "/mm3"), "high": (400000.0, "/mm3")}


def test_values_withheld_titres_ranges_and_words_in_a_coded_value(sqlite_ctx) -> None:  # noqa: ANN001
    """What OBX-5 holds under OBX-11 I or X ('En cours', 'Prélèvement coagulé') is no value:
    the export said nothing of why there was none; now dataAbsentReason (temp-unknown,
    not-performed) with the lab's words as its text, never a value. A final status change
    (U) with nothing held before: unknown. A titre '1:64' was a string, now a valueRatio;
    an SN range a valueRange. A CE holding words alone is a CodeableConcept with its text
    only (it was a valueString), and a value coded in the alternate triplet only keeps
    its code."""
    from tests.test_result_lifecycle import _msg

    _, res = _filed(sqlite_ctx, _msg(1, "P",
                    "OBX|1|NM|2951-2^Sodium^LN||En cours||||||I",
                    "OBX|2|NM|2823-3^Potassium^LN||Prélèvement coagulé||||||X",
                    "OBX|3|NM|1963-8^Bicarbonates^LN||||||||U",
                    "OBX|4|SN|5130-0^Titre^LN||^1^:^64||<1:16|H|||F",
                    "OBX|5|SN|2349-9^Glucose urine^LN||^10^-^20|mg/dL||A|||F",
                    "OBX|6|CE|5778-6^Couleur^LN||Jaune citrin||||||F",
                    "OBX|7|CWE|20464-4^Bactéries^LN||^^^260373001^Detected^SCT||||||F",
                    "OBX|8|SN|18864-9^Ampicilline CMI^LN||>^16|mg/L||R|||F"))
    absent = {code: res[code].get("dataAbsentReason") for code in
              ("2951-2", "2823-3", "1963-8")}
    assert {c: (a["coding"][0]["code"], a.get("text")) for c, a in absent.items()} == {
        "2951-2": ("temp-unknown", "En cours"),
        "2823-3": ("not-performed", "Prélèvement coagulé"),
        "1963-8": ("unknown", None)}
    for code in absent:
        assert not any(k.startswith("value") for k in res[code])
        assert absent[code]["coding"][0]["system"] == \
            "http://terminology.hl7.org/CodeSystem/data-absent-reason"
    assert res["5130-0"]["valueRatio"] == {"numerator": {"value": 1.0},
                                           "denominator": {"value": 64.0}}
    assert res["2349-9"]["valueRange"]["low"] == {
        "value": 10.0, "unit": "mg/dL", "system": UCUM, "code": "mg/dL"}
    assert res["2349-9"]["valueRange"]["high"]["value"] == 20.0
    assert res["5778-6"]["valueCodeableConcept"] == {"text": "Jaune citrin"}
    assert res["20464-4"]["valueCodeableConcept"]["coding"] == [{
        "system": "http://snomed.info/sct", "code": "260373001", "display": "Detected"}]
    assert res["18864-9"]["valueQuantity"]["comparator"] == ">"
    assert "dataAbsentReason" not in res["18864-9"]


def test_a_cda_titre_is_a_ratio_and_a_null_flavor_says_why_there_is_no_value() -> None:
    """A CDA RTO value (filed '1/64', '5 mg/1 mL') was a valueString, an IVL_PQ of two
    bounds ('10-20' per field) too; a value sent as a nullFlavor (NAV, MSK) said nothing
    of why it was absent."""
    rows = [_row(1, value="1/64", value_type="RTO", code="31147-2"),
            _row(2, value="5 mg/1 mL", value_type="RTO_PQ_PQ", code="2345-7"),
            _row(3, details={"value_null_flavor": "NAV"}, code="2951-2"),
            _row(4, details={"value_null_flavor": "MSK"}, code="2823-3"),
            _row(5, status="entered-in-error", details={"value_withheld": "4.1"},
                 code="1963-8"),
            _row(6, value="10-20", value_type="IVL_PQ", unit="/[HPF]", unit_original="/[HPF]",
                 code="5821-4"),
            _row(7, value="2024-01-02/2024-01-09", value_type="IVL_TS", code="X-1"),
            _row(8, value="jaune paille", value_type="CD", code="5778-6"),
            _row(9, value="Negative", value_type="CD", code="5196-1", details={
                "value_code": {"code": "260385009", "system": "SNOMED-CT"},
                "value_text": "Non reactive"})]
    bundle = to_bundle(PATIENT, rows)
    check_bundle(bundle)
    res = by_entry_id(bundle)
    assert res[1]["valueRatio"] == {"numerator": {"value": 1.0}, "denominator": {"value": 64.0}}
    assert res[2]["valueRatio"]["numerator"] == {"value": 5.0, "unit": "mg", "system": UCUM,
                                                 "code": "mg"}
    assert res[2]["valueRatio"]["denominator"]["code"] == "mL"
    assert res[3]["dataAbsentReason"]["coding"][0]["code"] == "temp-unknown"
    assert res[4]["dataAbsentReason"]["coding"][0]["code"] == "masked"
    assert "dataAbsentReason" not in res[5] and "valueString" not in res[5]
    assert (res[6]["valueRange"]["low"]["value"], res[6]["valueRange"]["high"]["value"]) == (
        10.0, 20.0)
    # a period is FHIR's valuePeriod (round 14 of the CDA cases: it was this valueString)
    assert res[7]["valuePeriod"] == {"start": "2024-01-02", "end": "2024-01-09"}
    assert res[8]["valueCodeableConcept"] == {"text": "jaune paille"}  # a CD of words only
    assert res[9]["valueCodeableConcept"] == {  # the sender's words, the code's display
        "coding": [{"system": "http://snomed.info/sct", "code": "260385009",
                    "display": "Negative"}], "text": "Non reactive"}


def test_an_organism_has_its_susceptibilities_and_a_corrected_panel_all_its_results(
        sqlite_ctx) -> None:  # noqa: ANN001
    """A urine culture, its E. coli, the susceptibility panel (a child order naming the
    organism, OBR-26/29), then the panel corrected the next day (ciprofloxacin only changed).
    The organism was linked to nothing it was tested for, and the ampicillin, confirmed
    unchanged, still names the panel's first version: it was in no report at all. The
    organism now has its susceptibilities as members, and the corrected panel lists both."""
    from tests.test_result_lifecycle import _micro

    orc = "ORC|RE|CMD-9|24M0412-01^LABO-DEMO"
    culture = ("OBR|1|CMD-9|24M0412-01^LABO-DEMO|630-4^Bactéries identifiées, urine^LN|||"
               "202404120730|||||||202404120800|URI|^MARTIN^Paul||||||202404141000|||F")
    panel = ("OBR|2|CMD-9|24M0412-01-A1^LABO-DEMO|29576-6^Antibiogramme^LN|||202404120730||||"
             "G|||||||||||{t}|||{s}|600-7&Bactérie identifiée&LN^1^Escherichia coli|||"
             "CMD-9&LABO-DEMO^24M0412-01&LABO-DEMO")
    germ = "OBX|1|CWE|600-7^Bactérie identifiée^LN|1|112283007^Escherichia coli^SCT||||||F"
    count = "OBX|2|SN|564-5^Numération bactérienne^LN|1|>^100000|UFC/mL|<10^3|A|||F"
    ampi = "OBX|1|SN|18864-9^Ampicilline CMI^LN|1|>^16|mg/L||R|||F"
    cipro = "OBX|2|SN|18906-8^Ciprofloxacine CMI^LN|1|{v}|mg/L||{i}|||{s}"
    _, res = _filed(sqlite_ctx,
                    _micro(4, orc, culture, germ, count, orc,
                           panel.format(t="202404141000", s="F"), ampi,
                           cipro.format(v="<=^0.25", i="S", s="F")),
                    _micro(5, orc, panel.format(t="202404151000", s="C"), ampi,
                           cipro.format(v="^1", i="I", s="C")))
    organism, ampicillin, ciprofloxacin = res["600-7"], res["18864-9"], res["18906-8"]
    members = [m["reference"] for m in organism["hasMember"]]
    # its colony count too (details.isolate: sent under its sub-id)
    assert sorted(members) == sorted(f"urn:uuid:{r['id']}" for r in (
        ampicillin, ciprofloxacin, res["564-5"]))
    corrected = res["29576-6"]
    assert corrected["status"] == "corrected"
    assert sorted(r["reference"] for r in corrected["result"]) == sorted(
        f"urn:uuid:{r['id']}" for r in (ampicillin, ciprofloxacin))
    culture_report = res["630-4"]
    assert {r["reference"] for r in culture_report["result"]} == {
        f"urn:uuid:{organism['id']}", f"urn:uuid:{res['564-5']['id']}"}
    assert res["564-5"]["valueQuantity"] == {"value": 100000.0, "comparator": ">",
                                             "unit": "UFC/mL", "system": UCUM,
                                             "code": "{CFU}/mL"}
    assert (ciprofloxacin["status"], ciprofloxacin["valueQuantity"]["value"]) == (
        "corrected", 1.0)


def test_masking_in_the_dmps_code_system_and_routing_flags_are_no_labels() -> None:
    """MetaDMPMSS flags: every one was a security label of a local system, DESTDMP ('sent to
    the DMP') and ACK_RECEPTION too, which restrict nothing. The masking ones are now the
    DMP's TRE_A07 codes (INVISIBLE_REP_LEGAUX as INVISIBLE_REPRESENTANTS_LEGAUX), the
    patient's choice over MASQUE_PS, and the others are left out."""
    flags = {"MASQUE_PS": True, "INVISIBLE_REP_LEGAUX": True, "DESTDMP": True,
             "ACK_RECEPTION": True, "INVISIBLE_PATIENT": False}
    rows = [_row(1, masking=flags, details={"confidentiality": "R"}),
            _row(2, masking=flags, mask_override=False),
            _row(3, masking={"DESTDMP": True})]
    bundle = to_bundle(PATIENT, rows)
    check_bundle(bundle)
    res = by_entry_id(bundle)
    assert [(s["system"], s["code"]) for s in res[1]["meta"]["security"]] == [
        ("http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "R"),
        (TRE_A07, "INVISIBLE_REPRESENTANTS_LEGAUX"), (TRE_A07, "MASQUE_PS")]
    assert [s["code"] for s in res[2]["meta"]["security"]] == [
        "R", "INVISIBLE_REPRESENTANTS_LEGAUX"]  # masked: v3 R in force (FHIR round 10)
    assert "meta" not in res[3]


def test_a_panel_filed_under_a_preliminary_organism_follows_its_final_version(
        sqlite_ctx) -> None:  # noqa: ANN001
    """The panel came with the preliminary identification; the final one (a new version of
    the organism) came the next day without it. The panel still names the preliminary
    version, which is history: it was linked to nothing; now to the current organism."""
    from tests.test_result_lifecycle import _micro

    orc = "ORC|RE|CMD-9|24M0412-01^LABO-DEMO"
    culture = ("OBR|1|CMD-9|24M0412-01^LABO-DEMO|630-4^Bactéries identifiées, urine^LN|||"
               "202404120730|||||||202404120800|URI|^MARTIN^Paul||||||{t}|||{s}")
    panel = ("OBR|2|CMD-9|24M0412-01-A1^LABO-DEMO|29576-6^Antibiogramme^LN|||202404120730||||"
             "G|||||||||||202404131000|||F|600-7&Bactérie identifiée&LN^1^Escherichia coli|||"
             "CMD-9&LABO-DEMO^24M0412-01&LABO-DEMO")
    germ = "OBX|1|CWE|600-7^Bactérie identifiée^LN|1|112283007^Escherichia coli^SCT||||||{s}"
    _, res = _filed(sqlite_ctx,
                    _micro(3, orc, culture.format(t="202404131000", s="P"), germ.format(s="P"),
                           orc, panel, "OBX|1|SN|18864-9^Ampicilline CMI^LN|1|>^16|mg/L||R|||F"),
                    _micro(4, orc, culture.format(t="202404141000", s="F"), germ.format(s="F")))
    assert res["600-7"]["status"] == "final"
    assert res["600-7"]["hasMember"] == [{"reference": f"urn:uuid:{res['18864-9']['id']}"}]


def test_a_fact_from_two_channels_has_two_provenances_and_a_reader_sees_no_import_ids(
        ) -> None:
    """Level 4: one entry, a link per import (HL7v2 created it, the CDA confirmed it): two
    Provenances target it. The API's export had none at all; a reader's (import_ids False)
    has them without our import ids, named after what they are about."""
    rows = [_row(1, value_num=4.1, unit="mmol/L"), _row(2, value_num=140.0, unit="mmol/L")]
    links = {1: [{"import_id": 11, "source": "labm", "relation": "created",
                  "created_at": "2026-01-02T10:00:00"},
                 {"import_id": 12, "source": "chu-cda", "relation": "confirmed",
                  "created_at": "2026-01-03T10:00:00"}],
             2: [{"import_id": 11, "source": "labm", "relation": "created",
                  "created_at": "2026-01-02T10:00:00"}]}
    for import_ids in (True, False):
        bundle = to_bundle(PATIENT, rows, provenance=links, import_ids=import_ids)
        check_bundle(bundle)
        provs = [e for e in bundle["entry"] if e["resource"]["resourceType"] == "Provenance"]
        about_1 = [p["resource"] for p in provs
                   if {"reference": full_url("entry", 1)} in p["resource"]["target"]]
        assert sorted((p["activity"]["text"], p["agent"][0]["who"]["display"])
                      for p in about_1) == [("confirmed", "chu-cda"), ("created", "labm")]
        assert ("entity" in about_1[0]) == import_ids
        urls = {p["fullUrl"] for p in provs}
        assert (full_url("provenance", "11/created") in urls) == import_ids


def test_booleans_dates_times_and_counts_have_their_fhir_types() -> None:
    """A CDA BL ('false': 172 statements of the ANS corpus), a date (HL7 DT/TS, CDA TS), a
    time of day (HL7 TM), a count (CDA INT) were valueString or a Quantity without unit;
    FHIR has valueBoolean, valueDateTime, valueTime, valueInteger. What FHIR cannot hold
    whole (a time without offset) stays text."""
    rows = [_row(1, value="false", value_type="BL"),
            _row(2, value="2018-10-01", value_type="TS"),
            _row(3, value="2024-03-15T08:30+01:00", value_type="DTM"),
            _row(4, value="2024-03-15T08:30", value_type="TS"),
            _row(5, value="08:30", value_type="TM"),
            _row(6, value="3", value_num=3.0, value_type="INT"),
            _row(7, value="3", value_num=3.0, value_type="INT", unit="mL"),
            _row(8, value="oui", value_type="BL")]
    bundle = to_bundle(PATIENT, rows)
    check_bundle(bundle)
    res = by_entry_id(bundle)
    values = {i: next((k, v) for k, v in res[i].items() if k.startswith("value"))
              for i in res}
    assert values == {1: ("valueBoolean", False), 2: ("valueDateTime", "2018-10-01"),
                      3: ("valueDateTime", "2024-03-15T08:30:00+01:00"),
                      4: ("valueString", "2024-03-15T08:30"), 5: ("valueTime", "08:30:00"),
                      6: ("valueInteger", 3),
                      7: ("valueQuantity", {"value": 3.0, "unit": "mL", "system": UCUM,
                                            "code": "mL"}),
                      8: ("valueString", "oui")}


def test_a_unit_declared_ucum_outside_our_table_is_ucum_when_it_parses_so(sqlite_ctx) -> None:  # noqa: ANN001
    """CDA PQ units are UCUM by the standard; the ANS corpus sends '[diop]', 'deg', 'mGy.cm',
    '{pack}/a', 'm', none in our unit table: they were exported as text without the UCUM
    system. A unit declared UCUM (CDA PQ, OBX-6 '^^UCUM') that parses as UCUM is now
    coded; one the normalizer found neither UCUM nor declared (details.unit_unmapped) and
    words ('THOUS/MCL', a translation's) stay text only."""
    rows = [_row(1, value_num=212.4, unit="mGy.cm", unit_original="mGy.cm"),
            _row(2, value_num=1.25, unit="[diop]", unit_original="[diop]"),
            _row(3, value_num=20.0, unit="{pack}/a", unit_original="{pack}/a"),
            _row(4, value_num=5.0, unit="THOUS/MCL", unit_original="THOUS/MCL"),
            _row(5, value_num=5.0, unit="mGy", unit_original="mGy",
                 details={"unit_unmapped": True}),
            _row(6, value_num=4.0, unit="G/l", unit_original="G/l")]
    bundle = to_bundle(PATIENT, rows)
    check_bundle(bundle)
    res = by_entry_id(bundle)
    assert {i: res[i]["valueQuantity"].get("code") for i in res} == {
        1: "mGy.cm", 2: "[diop]", 3: "{pack}/a", 4: None, 5: None, 6: None}
    from tests.test_result_lifecycle import _msg

    _, res = _filed(sqlite_ctx, _msg(1, "F",
                    "OBX|1|NM|2746-1^pH^LN||7.41|[pH]^^UCUM|7.35-7.45|N|||F",
                    "OBX|2|NM|2345-7^Glucose^LN||5.1|zorglub|4-6|N|||F",
                    "OBX|3|NM|2951-2^Sodium^LN||140|meq/L^^UCUM|135-145|N|||F"))
    assert res["2746-1"]["valueQuantity"] == {"value": 7.41, "unit": "[pH]", "system": UCUM,
                                              "code": "[pH]"}
    assert res["2746-1"]["referenceRange"][0]["low"]["code"] == "[pH]"
    assert res["2345-7"]["valueQuantity"] == {"value": 5.1, "unit": "zorglub"}
    assert res["2951-2"]["valueQuantity"]["code"] == "meq/L"


# -- what the CDA round 8 keeps of allergies and medications ----------------------------------
def test_reaction_severity_route_and_as_needed_reach_the_bundle() -> None:
    """A C-CDA's penicillin allergy with 'urticaire, modérée', and salbutamol inhaled 'as
    needed for' wheezing: the store kept the reaction's severity, the route's system and
    name, and the condition, the export dropped them (the allergy without its reaction,
    the route as a bare NCI code, the medication read as taken around the clock)."""
    from tests.test_cda_international import allergy, entries, section, snomed

    reaction = """<participant typeCode="CSM"><participantRole classCode="MANU">
      <playingEntity classCode="MMAT"><code code="7980" codeSystem="2.16.840.1.113883.6.88"
        displayName="Penicillin G"/></playingEntity></participantRole></participant>
      <entryRelationship typeCode="MFST" inversionInd="true"><observation classCode="OBS"
        moodCode="EVN"><templateId root="2.16.840.1.113883.10.20.22.4.9" extension="2014-06-09"/>
        <code code="ASSERTION" codeSystem="2.16.840.1.113883.5.4"/><statusCode code="completed"/>
        <value xsi:type="CD" code="247472004" codeSystem="2.16.840.1.113883.6.96"
          displayName="Urticaire"/>
        <entryRelationship typeCode="SUBJ" inversionInd="true"><observation classCode="OBS"
          moodCode="EVN"><templateId root="2.16.840.1.113883.10.20.22.4.8" extension="2014-06-09"/>
          <code code="SEV" codeSystem="2.16.840.1.113883.5.4"/><statusCode code="completed"/>
          <value xsi:type="CD" code="6736007" codeSystem="2.16.840.1.113883.6.96"
            displayName="Modérée"/></observation></entryRelationship>
      </observation></entryRelationship>"""
    salbutamol = """<entry><substanceAdministration classCode="SBADM" moodCode="EVN">
        <templateId root="2.16.840.1.113883.10.20.22.4.16" extension="2014-06-09"/>
        <id root="cdbd33f0-6cde-11db-9fe1-0800200c9a66" extension="m1"/>
        <statusCode code="active"/>
        <effectiveTime xsi:type="IVL_TS"><low value="20220301"/></effectiveTime>
        <routeCode code="C38216" codeSystem="2.16.840.1.113883.3.26.1.1"
          displayName="Inhalation"/>
        <doseQuantity value="2"/>
        <consumable><manufacturedProduct classCode="MANU"><manufacturedMaterial>
          <code code="745679" codeSystem="2.16.840.1.113883.6.88"
            displayName="200 ACTUAT albuterol 0.09 MG/ACTUAT Metered Dose Inhaler"/>
        </manufacturedMaterial></manufacturedProduct></consumable>
        <precondition typeCode="PRCN"><criterion>
          <templateId root="2.16.840.1.113883.10.20.22.4.25" extension="2014-06-09"/>
          <code code="ASSERTION" codeSystem="2.16.840.1.113883.5.4"/>
          <value xsi:type="CD" code="56018004" codeSystem="2.16.840.1.113883.6.96"
            displayName="Sifflements"/></criterion></precondition>
      </substanceAdministration></entry>"""
    read = entries(section("48765-2", "Pénicilline : urticaire modérée", allergy(
                       snomed("416098002", "Drug allergy (disorder)"), reaction, neg="")),
                   section("10160-0", "Salbutamol si sifflements", salbutamol))
    rows = [{"id": n, "type": e.type, "status": e.status, "current": True, "code": e.code,
             "system": e.system, "display": e.display, "mapped": e.mapped,
             "effective": e.effective, "details": e.details, "superseded_by": None,
             "parent_id": None} for n, e in enumerate(read, start=1)]
    bundle = to_bundle(PATIENT, rows, timestamp=None)
    check_bundle(bundle)
    found = {r["resourceType"]: r for r in by_entry_id(bundle).values()}
    reaction_out, = found["AllergyIntolerance"]["reaction"]
    assert reaction_out["severity"] == "moderate"
    assert reaction_out["manifestation"][0]["coding"][0]["code"] == "247472004"
    dosage, = found["MedicationStatement"]["dosage"]
    assert dosage["route"]["coding"][0]["code"] == "C38216"
    assert dosage["route"]["coding"][0].get("system") and dosage["route"]["text"] == "Inhalation"
    assert dosage["asNeededCodeableConcept"]["coding"][0]["code"] == "56018004"


def test_an_entry_about_the_newborn_says_so_in_the_bundle() -> None:
    """A delivery report's newborn battery (CDA subject on the organizer) is filed with
    details.subject; the export made the birth weight an Observation of the mother, with
    nothing saying otherwise. It now names the newborn in focus and in a note."""
    from tests.test_cda_real_world import _entries, _section
    from tests.test_cda_senders_round9 import NEWBORN, _battery, _result

    read = _entries(_section("11502-2", "Nouveau-né", _battery(
        _result("8339-4", "Poids de naissance", '<value xsi:type="PQ" value="3250" unit="g"/>'),
        subject=NEWBORN))) + _entries(_section("30954-2", "Résultats", _battery(
            _result("2345-7", "Glucose", '<value xsi:type="PQ" value="5.2" unit="mmol/L"/>'))))
    rows = [{"id": n, "type": e.type, "status": e.status, "current": True, "code": e.code,
             "system": e.system, "display": e.display, "mapped": e.mapped,
             "effective": e.effective, "value": e.value, "value_num": e.value_num,
             "unit": e.unit, "details": e.details, "superseded_by": None,
             "parent_id": None} for n, e in enumerate(read, start=1)]
    bundle = to_bundle(PATIENT, rows, timestamp=None)
    check_bundle(bundle)
    weight, glucose = (by_entry_id(bundle)[n] for n in (1, 2))
    assert weight["focus"] == [{"display": "nouveau-né, male, born 2024-03-10"}]
    assert weight["note"][0]["text"].startswith("about another person than the patient")
    assert "focus" not in glucose and not any(
        "another person" in n["text"] for n in glucose.get("note", []))


# -- how a lab result was obtained, on what, by whom (HL7 round 7, CDA rounds 9-10) ------------
BIOLOGIST = ("10003791976^LAGARDE^Bérénice^^^DR^^^ASIP-SANTE-PS&1.2.250.1.71.4.2.1&ISO^D^^^"
             "RPPS")
RPPS = "urn:oid:1.2.250.1.71.4.2.1"
FR_CORE_TYPES = "https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-v2-0203"
IDNPS_810003791976 = {"type": {"coding": [{"system": FR_CORE_TYPES, "code": "IDNPS"}]},
                      "system": RPPS, "value": "810003791976"}
RPPS_10003791976 = {"type": {"coding": [{"system": FR_CORE_TYPES, "code": "RPPS"}]},
                    "system": "https://rpps.esante.gouv.fr", "value": "10003791976"}


def _resource(bundle: dict, reference: str) -> dict:
    (found,) = [e["resource"] for e in bundle["entry"] if e["fullUrl"] == reference]
    return found


def test_an_order_entry_answer_is_no_lab_result_and_a_method_says_how(sqlite_ctx) -> None:  # noqa: ANN001
    """OBX-29 AOE ('fasting: yes', asked at order entry) was exported as a laboratory result
    of the report; OBX-17 (an LDL computed by Friedewald's formula) was dropped, so a
    computed value read as measured."""
    from tests.test_hl7v2_senders_round7 import _obx
    from tests.test_result_lifecycle import _msg

    _, res = _filed(sqlite_ctx, _msg(
        1, "F",
        _obx(1, "CWE", "49541-6^Fasting status - Reported^LN", "Y^Yes^HL70136", f29="AOE"),
        _obx(2, "NM", "13457-7^Cholestérol LDL calculé^LN", "1.21", "g/L",
             f17="FRIEDEWALD^Formule de Friedewald^L~CALC^Calculated^HL70936", f29="RSLT"),
        _obx(3, "NM", "2085-9^Cholestérol HDL^LN", "0.52", "g/L", f17="Précipitation au PTA")))
    fasting, ldl, hdl = res["49541-6"], res["13457-7"], res["2085-9"]
    assert fasting["category"] == [{"coding": [{
        "system": "http://terminology.hl7.org/CodeSystem/v2-0936", "code": "AOE"}]}]
    assert fasting["valueCodeableConcept"]["coding"][0]["system"] == \
        "http://terminology.hl7.org/CodeSystem/v2-0136"
    assert [c["coding"][0]["code"] for c in ldl["category"]] == ["laboratory", "RSLT"]
    report = res["BIOCHIMIE"]
    assert f"urn:uuid:{fasting['id']}" not in [r["reference"] for r in report["result"]]
    assert f"urn:uuid:{ldl['id']}" in [r["reference"] for r in report["result"]]
    assert ldl["method"] == {"coding": [
        {"system": "urn:dmp/CodeSystem/L/demo-lab", "code": "FRIEDEWALD",  # FHIR round 10
         "display": "Formule de Friedewald"},
        {"system": "http://terminology.hl7.org/CodeSystem/v2-0936", "code": "CALC",
         "display": "Calculated"}], "text": "Formule de Friedewald; Calculated"}
    assert hdl["method"] == {"text": "Précipitation au PTA"}
    assert [c["coding"][0]["code"] for c in hdl["category"]] == ["laboratory"]


def test_the_biologist_the_analyser_the_lab_and_the_specimen_are_resources(sqlite_ctx) -> None:  # noqa: ANN001
    """OBX-16 (the biologist who validated, RPPS under ASIP-SANTE-PS), OBX-18 (the analyser),
    OBX-23 (the performing laboratory) and SPM (serum, collected at 08:00, haemolysed) were
    a display string or nothing: a reader could neither tell two Dr LAGARDE apart nor see
    that the potassium was measured on a haemolysed serum."""
    from tests.test_hl7v2_senders_round7 import _obx, _seg
    from tests.test_result_lifecycle import _msg

    cerba = "LABORATOIRE CERBA^L^^^^ASIP-SANTE-ST&1.2.250.1.71.4.2.2&ISO^FINEG^^^950010019"
    bundle, res = _filed(sqlite_ctx, _msg(
        1, "F",
        _obx(1, "NM", "2093-3^Cholestérol total^LN", "1.95", "g/L", f16=BIOLOGIST,
             f18="C702-1^ROCHE^1.2.250.1.999.7.9^ISO", f23=cerba),
        _obx(2, "NM", "2823-3^Potassium^LN", "5.9", "mmol/L", f7="3.5-5.1", f8="H",
             f16=BIOLOGIST),
        _seg("SPM", f1="1", f4="119364003^Sérum^SCT", f17="20240315080000",
             f24="HEM^Hémolysé^HL70493")))
    chol, potassium = res["2093-3"], res["2823-3"]
    lab, biologist = chol["performer"]
    assert _resource(bundle, lab["reference"]) == {
        "resourceType": "Organization", "id": lab["reference"][9:],
        # its FINESS (XON.10, since round 4), typed as FR Core types it since operators'
        # round 5: the idNatSt ('1' + FINESS) and the FINESS itself, FINEG as XON.7 says
        "identifier": [_fr_core_id("IDNST", "urn:oid:1.2.250.1.71.4.2.2", "1950010019",
                                   use="official"),
                       _fr_core_id("FINEG", "https://finess.esante.gouv.fr", "950010019")],
        "name": "LABORATOIRE CERBA"}
    practitioner = _resource(bundle, biologist["reference"])
    # the bare RPPS under ASIP-SANTE-PS: the national PS id ('8' + RPPS), as CDA gives it,
    # and the RPPS itself (FR Core's idNatPs and rpps; since operators' round 4)
    assert practitioner["identifier"] == [IDNPS_810003791976, RPPS_10003791976]
    assert practitioner["name"] == [{"text": "DR Bérénice LAGARDE"}]
    # the same biologist validated both: one Practitioner, the display name not repeated
    assert potassium["performer"] == [biologist]
    assert sum(e["resource"]["resourceType"] == "Practitioner" for e in bundle["entry"]) == 1
    device = _resource(bundle, chol["device"]["reference"])
    assert device["identifier"] == [{"system": "urn:oid:1.2.250.1.999.7.9",
                                     "value": "C702-1"}]
    specimen = _resource(bundle, potassium["specimen"]["reference"])
    assert specimen["type"]["coding"] == [{"system": "http://snomed.info/sct",
                                           "code": "119364003", "display": "Sérum"}]
    assert specimen["condition"] == [{"coding": [{
        "system": "http://terminology.hl7.org/CodeSystem/v2-0493", "code": "HEM",
        "display": "Hémolysé"}], "text": "Hémolysé"}]
    assert specimen["collection"]["collectedDateTime"].startswith("2024-03-15T08:00:00")
    assert specimen["subject"] == potassium["subject"]
    assert "status" not in specimen


def test_a_rejected_specimen_is_unsatisfactory_with_the_labs_reasons(sqlite_ctx) -> None:  # noqa: ANN001
    """SPM-21: the order was cancelled because the tube broke; the report said no why."""
    from tests.test_hl7v2_senders_round7 import _seg
    from tests.test_lab_normalizer import MSH, PID

    obr = _seg("OBR", f1="1", f2="CMD-1", f3="24C0315-32^LABO-DEMO",
               f4="2823-3^Potassium^LN", f7="20240315080000", f25="X")
    spm = _seg("SPM", f1="1", f4="119364003^Sérum^SCT", f17="20240315080000", f20="N",
               f21="RB^Tube cassé^HL70490~Quantité insuffisante")
    message = "\r".join([MSH, PID, "ORC|CA|CMD-1|24C0315-32^LABO-DEMO", obr, spm]) + "\r"
    bundle, res = _filed(sqlite_ctx, message.encode())
    report = res["2823-3"]
    assert report["status"] == "cancelled"
    specimen = _resource(bundle, report["specimen"][0]["reference"])
    assert specimen["status"] == "unsatisfactory"
    assert specimen["note"] == [
        {"text": "rejected by the laboratory: Tube cassé; Quantité insuffisante"}]


def test_each_organisms_results_are_members_of_its_identification(sqlite_ctx) -> None:  # noqa: ANN001
    """A flat urine culture (French LIS: OBX-4 '1', '1.1'... per organism): the count and
    antibiogram of E. coli and of S. aureus stood side by side, nothing said whose was
    whose (details.isolate was in the store only)."""
    from tests.test_hl7v2_senders_round7 import ECBU_1, ECBU_2
    from tests.test_result_lifecycle import _msg

    _, res = _filed(sqlite_ctx, _msg(1, "F", *ECBU_1, *ECBU_2))
    coli, aureus = res["630-4"], res["630-4#2"]
    assert coli["valueCodeableConcept"]["coding"][0]["code"] == "112283007"
    assert [m["reference"] for m in coli["hasMember"]] == [
        f"urn:uuid:{res[c]['id']}" for c in ("564-5", "18862-3", "18906-8")]
    assert [m["reference"] for m in aureus["hasMember"]] == [
        f"urn:uuid:{res[c]['id']}" for c in ("564-5#2", "18862-3#2", "18906-8#2")]


def test_a_masked_results_specimen_is_labelled_and_a_newborns_is_not_the_patients() -> None:
    """The Specimen of a result masked from professionals (MASQUE_PS) says as much of the
    patient as the result: it carries the same label; a cord blood specimen (details.subject:
    the newborn) is not the mother's."""
    specimen = {"code": "119364003", "system": "SNOMED-CT", "display": "Sérum"}
    rows = [_row(1, specimen_time="2025-03-19T08:30+01:00", masking={"MASQUE_PS": True},
                 details={"specimen": specimen}),
            _row(2, code="883-9", display="Groupe ABO", specimen_time="2025-03-19T08:30+01:00",
                 details={"specimen": {"text": "Sang de cordon"},
                          "subject": {"code": "NBORN", "display": "nouveau-né"}}),
            _row(3, specimen_time="2025-03-19T08:30+01:00", details={"specimen": specimen})]
    bundle = to_bundle(PATIENT, rows)
    check_bundle(bundle)
    masked, cord, plain = (_resource(bundle, by_entry_id(bundle)[n]["specimen"]["reference"])
                           for n in (1, 2, 3))
    assert [s["code"] for s in masked["meta"]["security"]] == ["R", "MASQUE_PS"]
    assert "meta" not in plain and plain["subject"] == by_entry_id(bundle)[3]["subject"]
    assert "subject" not in cord
    assert cord["note"][0]["text"].startswith("about another person than the patient")


def test_a_report_or_document_about_someone_else_is_a_valid_resource_that_says_so() -> None:
    """R4 DiagnosticReport, DocumentReference and Encounter have no note: the note naming
    the newborn made the whole Bundle invalid (a reader's parser refuses it all). Their
    narrative says it."""
    newborn = {"subject": {"code": "NBORN", "display": "nouveau-né", "sex": "M"}}
    rows = [_row(1, type="lab_report", code="11502-2", details=newborn),
            _row(2, type="document", code="11502-2", media_type="text/xml", details=newborn),
            _row(3, details=newborn)]
    bundle = to_bundle(PATIENT, rows)
    check_bundle(bundle)
    report, document, result = (by_entry_id(bundle)[n] for n in (1, 2, 3))
    for res in (report, document):
        assert "note" not in res
        assert res["text"] == {"status": "additional", "div": (
            '<div xmlns="http://www.w3.org/1999/xhtml"><p>about another person than the '
            'patient (CDA subject): nouveau-né, male</p></div>')}
    assert result["note"][0]["text"].endswith("nouveau-né, male")


def test_the_biologist_who_validated_a_cda_result_is_a_practitioner() -> None:
    """CI-SIS / IHE LAB participant AUTHEN (details.validated_by, ids 'root^extension'): the
    validating biologist, under the national PS identifier's OID; an id that is an OID alone
    is a URI. The same biologist on two results is one Practitioner."""
    validated = {"ids": ["1.2.250.1.71.4.2.1^810003791976"], "time": "2024-03-15T11:00+01:00"}
    rows = [_row(1, performer="LABORATOIRE DE BIOLOGIE DU CENTRE",
                 details={"validated_by": validated}),
            _row(2, code="2823-3", details={"validated_by": validated}),
            _row(3, code="2951-2", details={"validated_by": {"ids": ["1.2.250.1.999.1.7"]}})]
    bundle = to_bundle(PATIENT, rows)
    check_bundle(bundle)
    glucose, potassium, sodium = (by_entry_id(bundle)[n] for n in (1, 2, 3))
    lab, biologist = glucose["performer"]
    assert _resource(bundle, lab["reference"])["name"] == "LABORATOIRE DE BIOLOGIE DU CENTRE"
    assert _resource(bundle, biologist["reference"])["identifier"] == [
        IDNPS_810003791976, RPPS_10003791976]  # the RPPS beside it since operators' round 4
    assert potassium["performer"] == [biologist]
    assert _resource(bundle, sodium["performer"][0]["reference"])["identifier"] == [
        {"system": "urn:ietf:rfc:3986", "value": "urn:oid:1.2.250.1.999.1.7"}]


def test_one_biologist_by_hl7v2_and_by_cda_is_one_practitioner() -> None:
    """The lab's HL7v2 result names the biologist by the bare RPPS under ASIP-SANTE-PS
    (OBX-16), the hospital's CR-BIO by the national PS id ('8' + RPPS): one Practitioner,
    not two. An ADELI number gets its '0'; other values under other systems stay as sent."""
    hl7 = {"responsible_observer": {"name": "Dr Bérénice LAGARDE", "id": {
        "id": "10003791976", "authority": "ASIP-SANTE-PS", "type": "RPPS"}}}
    cda = {"validated_by": {"ids": ["1.2.250.1.71.4.2.1^810003791976"]}}
    adeli = {"responsible_observer": {"name": "Dr Paul ROCHE", "id": {
        "id": "2A1234567", "authority": "1.2.250.1.71.4.2.1", "type": "ADELI"}}}
    local = {"responsible_observer": {"name": "Dr Anne VIDAL", "id": {
        "id": "10003791976", "authority": "LABM-LYON"}}}
    rows = [_row(1, details=hl7), _row(2, code="2823-3", details=cda),
            _row(3, code="2951-2", details=adeli), _row(4, code="2160-0", details=local)]
    bundle = to_bundle(PATIENT, rows)
    check_bundle(bundle)
    found = {n: _resource(bundle, r["performer"][-1]["reference"])["identifier"][0]
             for n, r in by_entry_id(bundle).items()}
    assert found[1]["value"] == found[2]["value"] == "810003791976"
    assert by_entry_id(bundle)[1]["performer"][-1]["reference"] == \
        by_entry_id(bundle)[2]["performer"][-1]["reference"]
    assert sum(e["resource"]["resourceType"] == "Practitioner" for e in bundle["entry"]) == 3
    assert found[3] == {"type": {"coding": [{"system": FR_CORE_TYPES, "code": "IDNPS"}]},
                        "system": RPPS, "value": "02A1234567"}  # FR Core has no ADELI slice
    assert found[4]["value"] == "10003791976" and "system" not in found[4]


def test_a_certainty_stated_by_the_sender_keeps_fhirs_verification_system() -> None:
    """A diagnosis the sender says suspected (CI-SIS FR-Certitude, condition-ver-status
    codes under their OID) went out with verificationStatus under
    'http://terminology.hl7.org/CodeSystem/2.16.840.1.113883.4.642.1.1075', a system no
    reader knows: the certainty was unreadable (9 conditions of the ANS corpus)."""
    rows = [_row(1, type="problem", code="J18.9", system="CIM-10", details={"certainty": {
        "code": "provisional", "system": "2.16.840.1.113883.4.642.1.1075"}})]
    bundle = to_bundle(PATIENT, rows)
    check_bundle(bundle)
    assert by_entry_id(bundle)[1]["verificationStatus"] == {"coding": [{
        "system": f"{THO}condition-ver-status", "code": "provisional"}]}


def test_a_dosing_at_hours_and_at_an_event_keeps_the_hours_only_in_its_timing() -> None:
    """R4 tim-10: a Timing has timeOfDay or when, not both. 'à 8 h et 20 h, et au coucher'
    (times_of_day and event HS) gave both: an invalid MedicationStatement. The hours stay
    structured, the event is in the dosage's words."""
    rows = [_row(1, type="medication", code="N02BE01", system="ATC", display="Paracétamol",
                 details={"frequency": "2 times a day", "times_of_day": ["08:00", "20:00"],
                          "event": "HS", "dose": "1 g"})]
    bundle = to_bundle(PATIENT, rows)
    check_bundle(bundle)
    dosage = by_entry_id(bundle)[1]["dosage"][0]
    assert dosage["timing"]["repeat"]["timeOfDay"] == ["08:00:00", "20:00:00"]
    assert "when" not in dosage["timing"]["repeat"]
    assert "when HS" in dosage["text"]


def test_an_isolate_given_as_a_specimen_is_an_observation_with_its_results() -> None:
    """CI-SIS / IHE LAB isolate organizers name the germ in their specimen, not by an
    'organism identified' observation (the ANS CR-BIO examples): two isolates' amoxicillin
    results were two Observations with nothing saying which germ each was of. Each isolate is
    an Observation (value: the germ, identifier: the isolate number) whose members are its
    results, labelled as they are."""
    from tests.test_cda_real_world import _entries, _isolate, _section

    read = _entries(_section("18725-2", "ECBU", f"""<entry><act classCode="ACT" moodCode="EVN">
      <templateId root="1.3.6.1.4.1.19376.1.3.1"/>
      <code code="18725-2" codeSystem="2.16.840.1.113883.6.1"/><statusCode code="completed"/>
      {_isolate("112283007", "Escherichia coli BLSE", "ISO-1", "R")}
      {_isolate("3092008", "Staphylococcus aureus", "ISO-2", "S")}
      </act></entry>"""))
    rows = [{"id": n, "type": e.type, "status": e.status, "current": True, "code": e.code,
             "system": e.system, "display": e.display, "mapped": e.mapped,
             "effective": e.effective, "value": e.value, "value_num": e.value_num,
             "unit": e.unit, "interpretation": e.interpretation, "details": e.details,
             "masking": {"MASQUE_PS": True} if n == 2 else None, "superseded_by": None,
             "parent_id": None, "import_id": 1} for n, e in enumerate(read, start=1)]
    bundle = to_bundle(PATIENT, rows)
    check_bundle(bundle)
    isolates = [e["resource"] for e in bundle["entry"]
                if e["resource"].get("code") == {"text": "micro-organism isolated"}]
    assert [(i["valueCodeableConcept"]["coding"][0]["code"], i["identifier"][0]["value"],
             [m["reference"] for m in i["hasMember"]]) for i in isolates] == [
        ("112283007", "1.2.250.1.999.9.3^ISO-1", [f"urn:uuid:{by_entry_id(bundle)[1]['id']}"]),
        ("3092008", "1.2.250.1.999.9.3^ISO-2", [f"urn:uuid:{by_entry_id(bundle)[2]['id']}"])]
    assert isolates[0]["valueCodeableConcept"]["text"] == "Escherichia coli BLSE"
    assert "meta" not in isolates[0]
    assert [s["code"] for s in isolates[1]["meta"]["security"]] == ["R", "MASQUE_PS"]
    assert isolates[0]["status"] == "final" and isolates[0]["subject"]["reference"] == \
        bundle["entry"][0]["fullUrl"]


# -- round 4: what the CDA round stores since this morning --------------------------------------
def _rows_read(read: list) -> list[dict]:
    """Rows of the store for entries a normalizer read (ids from 1, in their order)."""
    rows = []
    for n, e in enumerate(read, start=1):
        row = {"id": n, "type": e.type, "key": e.key, "status": e.status, "current": True,
               "code": e.code, "system": e.system, "display": e.display, "mapped": e.mapped,
               "effective": e.effective, "value": e.value, "value_num": e.value_num,
               "unit": e.unit, "interpretation": e.interpretation, "details": e.details,
               "performer": e.performer, "masking": None, "superseded_by": None,
               "parent_id": None, "import_id": 1}
        rows.append(row)
    return rows


def test_a_variant_is_a_member_of_its_gene_and_two_genes_variants_stay_two() -> None:
    """CR-GM (a KRAS and NRAS panel, c.35G>A in both): the store says which gene each
    variant, reference sequence and protein change is of (details.parent_result, since the
    CDA round 11) but the Bundle had six loose Observations beside two genes: which
    'c.35G>A' was KRAS's was said nowhere. Each gene's parts are its members, each once."""
    from tests.test_cda_real_world import _entries, _section
    from tests.test_cda_senders_round11 import RAS_PANEL

    read = _entries(_section("83321-0", "Résultats des analyses génétiques", RAS_PANEL))
    bundle = to_bundle(PATIENT, _rows_read(read))
    check_bundle(bundle)
    res = by_entry_id(bundle)
    url = {n: f"urn:uuid:{r['id']}" for n, r in res.items()}
    genes = [n for n, e in enumerate(read, start=1) if e.code == "48018-6"]
    assert [res[g]["valueCodeableConcept"]["coding"][0]["code"] for g in genes] == \
        ["KRAS", "NRAS"]
    members = {g: sorted(m["reference"] for m in res[g]["hasMember"]) for g in genes}
    parts = {g: sorted(url[n] for n, e in enumerate(read, start=1)
                       if (e.details.get("parent_result") or {}).get("key") == read[g - 1].key)
             for g in genes}
    assert members == parts and all(len(p) == 3 for p in parts.values())
    variants = [n for n, e in enumerate(read, start=1) if e.code == "48004-6"]
    assert len(variants) == 2 and [url[v] in members[g] for v, g in zip(
        variants, genes, strict=True)] == [True, True]
    # the panel's other results (the genes) are no one's members
    assert not any(url[g] in m for g in genes for m in members.values())


def test_a_part_is_a_member_only_of_the_result_its_parent_names() -> None:
    """A parent_result whose key names an entry of another code (the store gave that key to
    another result) links nothing: a member is never guessed."""
    from tests.test_cda_real_world import _entries, _section
    from tests.test_cda_senders_round11 import RAS_PANEL

    read = _entries(_section("83321-0", "Résultats des analyses génétiques", RAS_PANEL))
    genes = [n for n, e in enumerate(read, start=1) if e.code == "48018-6"]
    rows = [{**r, "code": "48019-4"} if r["id"] == genes[0] else r for r in _rows_read(read)]
    bundle = to_bundle(PATIENT, rows)
    check_bundle(bundle)
    res = by_entry_id(bundle)
    assert "hasMember" not in res[genes[0]]
    assert len(res[genes[1]]["hasMember"]) == 3


def test_a_reaction_the_sender_says_did_not_happen_is_a_note_not_a_reaction() -> None:
    """'Allergie à l'amoxicilline: éruption cutanée, pas d'urticaire' (CI-SIS MFST with
    negationInd): the store keeps the urticaria apart (details.absent_reactions) and the
    export said nothing of it: a reader could not tell 'no urticaria' from 'urticaria not
    asked'. It is no manifestation (R4 reaction has no negation) and is said in a note."""
    from tests.test_cda_real_world import _entries, _section
    from tests.test_cda_senders_round11 import _allergy

    read = _entries(_section("48765-2", "Allergies", _allergy("true")))
    bundle = to_bundle(PATIENT, _rows_read(read))
    check_bundle(bundle)
    (allergy,) = [e["resource"] for e in bundle["entry"]
                  if e["resource"]["resourceType"] == "AllergyIntolerance"]
    assert [m["coding"][0]["code"] for r in allergy["reaction"]
            for m in r["manifestation"]] == ["271807003"]
    assert [n["text"] for n in allergy["note"]] == [
        "reaction the sender says did not occur: urticaire "
        "(http://snomed.info/sct|126485001)"]


def test_an_allergy_without_absent_reactions_has_no_such_note() -> None:
    from tests.test_cda_real_world import _entries, _section
    from tests.test_cda_senders_round11 import _allergy

    read = _entries(_section("48765-2", "Allergies", _allergy("false")))
    (allergy,) = [e["resource"] for e in to_bundle(PATIENT, _rows_read(read))["entry"]
                  if e["resource"]["resourceType"] == "AllergyIntolerance"]
    assert len(allergy["reaction"]) == 2 and "note" not in allergy


KNEE_MRI = [{  # details.dicom_studies as the CDA normalizer keeps a CR-IMG's catalog
    "uid": "1.2.250.1.999.49.1", "time": "2024-03-11T09:30:00+01:00",
    "series": [
        {"uid": "1.2.250.1.999.49.1.1", "modality": "MR", "time": "2024-03-11T09:40:00+01:00",
         "instances": [{"uid": "1.2.250.1.999.49.1.1.1", "sop_class": "1.2.840.10008.5.1.4.1.1.4",
                        "reference": "https://pacs.exemple.fr/wado?requestType=WADO"
                                     "&objectUID=1.2.250.1.999.49.1.1.1"}]},
        {"uid": "1.2.250.1.999.49.1.2", "modality": "MR", "time": "2024-03-11T09:40:00+01:00",
         "instances": [{"uid": f"1.2.250.1.999.49.1.2.{i}",
                        "sop_class": "1.2.840.10008.5.1.4.1.1.4"} for i in range(1, 21)],
         "instance_count": 180}]}]


def test_the_images_a_report_is_of_are_an_imaging_study_it_references() -> None:
    """A CR-IMG's DICOM object catalog (details.dicom_studies since CDA round 11: a knee MRI,
    two series, the second of 180 images of which the store keeps 20): the export said
    nothing of the images a viewer could open. It is an ImagingStudy (Study Instance UID as
    urn:dicom:uid, series with their DCM modality, instances with their SOP class, counts,
    the WADO service as an Endpoint) that the document names in context.related."""
    doc = _row(1, type="document", code="18748-4", display="CR d'imagerie",
               media_type="text/xml", effective="2024-03-11T11:00:00+01:00",
               details={"dicom_studies": KNEE_MRI}, masking={"MASQUE_PS": True})
    bundle = to_bundle(PATIENT, [doc])
    kinds = check_bundle(bundle)
    assert kinds["ImagingStudy"] == 1 and kinds["Endpoint"] == 1
    document = by_entry_id(bundle)[1]
    (related,) = document["context"]["related"]
    study = _resource(bundle, related["reference"])
    assert study["status"] == "available"
    assert study["subject"] == document["subject"]
    assert study["identifier"] == [{"system": "urn:dicom:uid",
                                    "value": "urn:oid:1.2.250.1.999.49.1"}]
    assert study["started"] == "2024-03-11T09:30:00+01:00"
    assert (study["numberOfSeries"], study["numberOfInstances"]) == (2, 181)
    assert study["modality"] == [{"system": DCM_SYSTEM, "code": "MR"}]
    first, second = study["series"]
    assert (first["uid"], first["modality"], first["numberOfInstances"]) == (
        "1.2.250.1.999.49.1.1", {"system": DCM_SYSTEM, "code": "MR"}, 1)
    assert first["instance"] == [{"uid": "1.2.250.1.999.49.1.1.1", "sopClass": {
        "system": "urn:ietf:rfc:3986", "code": "urn:oid:1.2.840.10008.5.1.4.1.1.4"}}]
    assert (second["numberOfInstances"], len(second["instance"])) == (180, 20)
    endpoint = _resource(bundle, first["endpoint"][0]["reference"])
    assert endpoint["address"] == "https://pacs.exemple.fr/wado"
    assert endpoint["connectionType"]["code"] == "dicom-wado-uri"
    assert "endpoint" not in second  # no link was sent for its images
    # the images of a masked report are as masked
    assert [s["code"] for s in study["meta"]["security"]] == \
        [s["code"] for s in document["meta"]["security"]]


def test_an_imaging_reports_study_is_its_imaging_study() -> None:
    """The same catalog on a DiagnosticReport (an imaging report entry): imagingStudy; a
    study two reports are of (the report and its addendum) is one ImagingStudy."""
    rows = [_row(n, type="imaging_report", code="18748-4", status="final",
                 details={"dicom_studies": KNEE_MRI}) for n in (1, 2)]
    rows.append(_row(3, type="imaging_report", code="18748-4", status="final",
                     details={"dicom_studies": [{"time": "2024-03-11T09:30:00+01:00"}]}))
    bundle = to_bundle(PATIENT, rows)
    kinds = check_bundle(bundle)
    assert kinds["ImagingStudy"] == 1  # and none of a study said without UID nor series
    assert "imagingStudy" not in by_entry_id(bundle)[3]
    # an addendum listing a third series (the reconstructions) adds it to the one study
    ct = {"uid": "1.2.250.1.999.49.1.3", "modality": "CT",
          "instances": [{"uid": "1.2.250.1.999.49.1.3.1"}]}
    addendum = _row(4, type="imaging_report", code="18748-4", status="final", details={
        "dicom_studies": [{**KNEE_MRI[0], "series": [KNEE_MRI[0]["series"][0], ct]}]})
    bundle = to_bundle(PATIENT, [*rows, addendum])
    check_bundle(bundle)
    study = _resource(bundle, by_entry_id(bundle)[4]["imagingStudy"][0]["reference"])
    assert [s["uid"][-1] for s in study["series"]] == ["1", "2", "3"]
    assert (study["numberOfSeries"], study["numberOfInstances"]) == (3, 182)
    assert [m["code"] for m in study["modality"]] == ["MR", "CT"]
    first, second = (by_entry_id(bundle)[n] for n in (1, 2))
    assert first["imagingStudy"] == second["imagingStudy"]
    assert "meta" not in _resource(bundle, first["imagingStudy"][0]["reference"])


def test_the_performing_laboratory_is_an_organization_with_its_finess() -> None:
    """OBX-23 'LABO DEMO' with its FINESS (XON.10 under 1.2.250.1.71.4.2.2, kept in
    details.performing_organization): the Organization had a name only, so the two LABO
    DEMO of two towns were one Organization. Each is now its own, with its identifier under
    urn:oid:1.2.250.1.71.4.2.2 (or ASIP-SANTE-ST's OID when sent by namespace); a name alone
    stays one Organization per name, as before."""
    def lab(ident: str, authority: str = "1.2.250.1.71.4.2.2") -> dict:
        return {"performing_organization": {"name": "LABO DEMO", "id": {
            "id": ident, "authority": authority, "type": "FINEG"}}}

    rows = [_row(1, performer="LABO DEMO", details=lab("750000001")),
            _row(2, performer="LABO DEMO", code="2823-3", details=lab("690000001")),
            _row(3, performer="LABO DEMO", code="2951-2", details=lab("750000001",
                                                                      "ASIP-SANTE-ST")),
            _row(4, performer="LABO DEMO", code="2075-0")]
    bundle = to_bundle(PATIENT, rows)
    check_bundle(bundle)
    res = by_entry_id(bundle)
    orgs = [_resource(bundle, res[n]["performer"][0]["reference"]) for n in (1, 2, 3, 4)]
    def finess(number: str) -> list[dict]:  # FR Core's idNatSt and finess (round 5)
        return [_fr_core_id("IDNST", "urn:oid:1.2.250.1.71.4.2.2", f"1{number}",
                            use="official"),
                _fr_core_id("FINEG", "https://finess.esante.gouv.fr", number)]

    assert [o.get("identifier") for o in orgs] == [
        finess("750000001"), finess("690000001"), finess("750000001"), None]
    assert orgs[0] is orgs[2] or orgs[0] == orgs[2]  # one laboratory, one Organization
    assert len({o["id"] for o in orgs}) == 3
    assert {o["name"] for o in orgs} == {"LABO DEMO"}
    assert res[1]["performer"][0]["display"] == "LABO DEMO"


def test_a_gene_filed_once_for_two_documents_has_the_parts_of_both() -> None:
    """The same gene result sent in two CR-GM (the ANS 'analyse réalisée' and 'non réalisée'
    examples) is one fact, filed under the first document's key: the second document's parts
    name a key the store does not hold and were members of nothing (1 of the ANS corpus).
    They are members of the one result that says what their parent_result says (code,
    value, time); of none when two do."""
    from tests.test_cda_real_world import _entries, _section
    from tests.test_cda_senders_round11 import RAS_PANEL

    read = _entries(_section("83321-0", "Résultats des analyses génétiques", RAS_PANEL))
    genes = [n for n, e in enumerate(read, start=1) if e.code == "48018-6"]
    rows = [{**r, "key": "cda|other-document|lab_result|KRAS-1"} if r["id"] == genes[0]
            else r for r in _rows_read(read)]
    res = by_entry_id(to_bundle(PATIENT, rows))
    assert [len(res[g]["hasMember"]) for g in genes] == [3, 3]
    twin = {**rows[genes[0] - 1], "id": 99, "key": "cda|third-document|lab_result|KRAS-1"}
    bundle = to_bundle(PATIENT, [*rows, twin])
    check_bundle(bundle)
    res = by_entry_id(bundle)
    assert "hasMember" not in res[genes[0]] and "hasMember" not in res[99]
