"""FHIR export round 11: what an R4 receiver rejects or misreads, checked against the R4
spec (datatypes, Coding, code systems) for the entries real inputs produce.

Rows are built by hand as the store holds them (the normalizers' details); every Bundle is
validated whole (check_bundle, check_r4_rules of round 7).
"""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

import cli
from api.app import create_app
from api.tokens import mint
from dossiers.fhir import to_bundle
from dossiers.fhir.decimals import bundle_json
from dossiers.schema import entries
from pipelines.dossier_admin import DossierInput, create_dossiers
from pipelines.process import Context
from pipelines.settings import load_settings
from tests.conftest import migrated_sqlite
from tests.test_access_round2 import NIR, SECRET, TEST_OID, _file, _oru
from tests.test_fhir_export import PATIENT, _row, by_entry_id
from tests.test_fhir_round7 import _valid

DCM = "http://dicom.nema.org/resources/ontology/DCM"


# -- a PDF imaging report: the modality's display is DICOM's, the exam title the text ------
@pytest.mark.parametrize(("code", "display"), [
    ("MR", "Magnetic Resonance"), ("CT", "Computed Tomography"), ("US", "Ultrasound"),
    ("MG", "Mammography"), ("PT", "Positron emission tomography"), ("XR", None)])
def test_an_imaging_reports_modality_has_its_dicom_display(code: str,
                                                           display: str | None) -> None:
    """A compte rendu read from a radiology PDF is coded by the modality its title names
    (normalizers/report.py) and displayed by the title: 'IRM du genou droit' went out as
    MR's Coding.display. R4 Coding.display is the system's representation of the code: a
    receiver validating displays against DCM flags it, one showing codings reads the title
    as the meaning of MR. Now the title is the concept's text and the display DICOM's (CID
    29); XR, our radiograph code, is no DCM code and has no display to give."""
    title = "IRM du genou droit – séquences T1/T2"
    bundle = to_bundle(PATIENT, [_row(1, type="imaging_report", code=code,
                                      system="DICOM-MODALITY", display=title,
                                      value="Pas de lésion méniscale.", value_type="TX")])
    _valid(bundle)
    concept = by_entry_id(bundle)[1]["code"]
    assert concept["text"] == title
    assert concept["coding"] == [{"system": DCM, "code": code, "display": display}
                                 if display else {"system": DCM, "code": code}]


def test_a_dcm_code_of_a_cda_sender_keeps_its_own_display() -> None:
    """A CDA entry coded in DCM with a code out of the modality table (a key object's
    121071 'Finding') keeps the displayName its sender gave: only the modality codes, whose
    words we know are not theirs, are changed."""
    bundle = to_bundle(PATIENT, [_row(1, type="observation", code="121071", system="DCM",
                                      display="Finding", value="nodule", value_type="ST")])
    assert by_entry_id(bundle)[1]["code"]["coding"] == [
        {"system": DCM, "code": "121071", "display": "Finding"}]


# -- Orphanet: the URI the HL7 Terminology Authority endorses -----------------------------
def test_an_orphacode_goes_out_under_the_orphanet_uri() -> None:
    """A CI-SIS problem coded in ORPHAcodes (OID 1.2.250.1.213.2.49; the ANS value sets'
    OIDs are folded into it by the normalizer) went out as urn:oid:1.2.250.1.213.2.49. R4
    names a code system by its URI when it has one (terminologies-systems: urn:oid: only
    for a system without one); HTA's Orphanet record endorses https://www.orpha.net, the
    system of the EU IGs' Orphanet code systems: a reader matching on it missed ours."""
    bundle = to_bundle(PATIENT, [_row(1, type="problem", code="558",
                                      system="1.2.250.1.213.2.49",
                                      display="Syndrome de Marfan", effective="2019")])
    _valid(bundle)
    assert by_entry_id(bundle)[1]["code"]["coding"] == [
        {"system": "https://www.orpha.net", "code": "558", "display": "Syndrome de Marfan"}]


# -- decimals keep the precision the lab sent ----------------------------------------------
def _quantity_values(bundle: dict) -> list:
    return [r["valueQuantity"]["value"] for r in (e["resource"] for e in bundle["entry"])
            if "valueQuantity" in r]


@pytest.mark.parametrize(("value", "value_num", "range_", "sent", "limits"), [
    ("5.40", 5.4, "3.90-6.10", "5.40", ("3.90", "6.10")),
    ("5,40", 5.4, "3,90 - 6,10", "5.40", ("3.90", "6.10")),  # the French comma
    ("120", 120.0, "<150", "120", (None, "150")),
    ("0.050", 0.05, ">=0.010", "0.050", ("0.010", None))])
def test_a_results_digits_are_kept_in_value_and_range(value: str, value_num: float,
                                                      range_: str, sent: str,
                                                      limits: tuple) -> None:
    """OBX-5 '5.40' mmol/L (glycémie) is stored as 5.4 beside its text: the Quantity said
    5.4, and 120 UI/L said 120.0. R4 datatypes: decimal 'precision is significant', to be
    kept as written; a lab's 5.40 states a measure to the hundredth. The value and the
    reference range's limits now carry the digits sent (a float still: 5.40 == 5.4 for the
    export and its readers), written as such by the Bundle's JSON writer."""
    bundle = to_bundle(PATIENT, [_row(1, value=value, value_num=value_num, unit="mmol/L",
                                      value_type="NM", reference_range=range_)])
    _valid(bundle)
    text = bundle_json(bundle)
    res = json.loads(text)["entry"][1]["resource"]
    assert f'"value": {sent},' in text and res["valueQuantity"]["value"] == value_num
    (rng,) = by_entry_id(bundle)[1]["referenceRange"]
    for side, digits in zip(("low", "high"), limits, strict=True):
        if digits is None:
            assert side not in rng
        else:
            assert f'"value": {digits}' in bundle_json(rng[side])


def test_a_value_not_written_as_its_number_keeps_the_number() -> None:
    """The digits are the sender's only when they are the number exported: a result the
    normalizer converted (its text in the sender's unit) or words around it go out as the
    number, never with digits that would say another value."""
    bundle = to_bundle(PATIENT, [
        _row(1, value="100", value_num=5.55, unit="mmol/L", value_type="NM"),
        _row(2, value="env. 12", value_num=12.0, unit="g/L", value_type="NM"),
        _row(3, value="007.50", value_num=7.5, unit="g/L", value_type="NM")])
    assert [type(v) for v in _quantity_values(bundle)] == [float, float, float]
    assert bundle_json(_quantity_values(bundle)) == "[5.55, 12.0, 7.5]"


def test_the_cli_and_the_api_write_the_senders_digits(tmp_path, sqlite_template,  # noqa: ANN001
                                                      monkeypatch, capsys) -> None:  # noqa: ANN001
    """dmp-ingest dossier export and GET /dossiers/{patient}/fhir, on a CI-SIS ORU of a
    β-hCG sent as 1245.50 [IU]/L: both write 1245.50 (json wrote the float, 1245.5)."""
    url = migrated_sqlite(sqlite_template, tmp_path / "dmp.sqlite3")
    ctx = Context.from_settings(load_settings(env={
        "DMP_HOME": str(tmp_path), "DMP_DATABASE_URL": url, "DMP_API_SECRET": SECRET}))
    create_dossiers(ctx.engine, [DossierInput(family="Da Silva", given="Maëlys",
                                              birth_date="2010-09-14", sex="F", ins=NIR,
                                              ins_oid=TEST_OID)])
    _file(ctx, _oru(1, "PLAIN", "1245.50"))
    with ctx.engine.connect() as conn:
        pid = str(conn.execute(select(entries.c.patient_id)).scalars().first())
    r = TestClient(create_app(ctx)).get(f"/dossiers/{pid}/fhir", headers={
        "Authorization": "Bearer " + mint(ctx.settings, "patient", patient=pid)})
    assert r.status_code == 200 and r.headers["content-type"] == "application/fhir+json"
    assert '"value":1245.50,' in r.text
    assert _quantity_values(r.json()) == [1245.5]
    monkeypatch.setenv("DMP_HOME", str(tmp_path))
    monkeypatch.setenv("DMP_DATABASE_URL", url)
    for name in ("DMP_ARCHIVE_URL", "DMP_CONFIG", "DMP_ADMIN"):
        monkeypatch.delenv(name, raising=False)
    assert cli.main(["dossier", "export", pid, "--as", "tester"]) == 0
    out = capsys.readouterr().out
    assert '"value": 1245.50,' in out
    assert json.loads(out)["entry"][0]["resource"]["resourceType"] == "Patient"
