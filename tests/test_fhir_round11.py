"""FHIR export round 11: what an R4 receiver rejects or misreads, checked against the R4
spec (datatypes, Coding, code systems) for the entries real inputs produce.

Rows are built by hand as the store holds them (the normalizers' details); every Bundle is
validated whole (check_bundle, check_r4_rules of round 7).
"""

from __future__ import annotations

import pytest

from dossiers.fhir import to_bundle
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
