"""FHIR export round 9: what a receiver checks that the Bundle did not say: the files'
SHA-1 and size, a sender's own abnormal flags under that sender's system, vital signs dated
to the year or the month, and the vitalsigns profile claimed where it is met.

Rows are built by hand as the store holds them, or filed through pipelines/ into a SQLite
store (no Prefect); every Bundle is validated whole with fhir.resources (check_bundle and
check_r4_rules of the earlier rounds).
"""

from __future__ import annotations

import base64
import csv
import hashlib
import json
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from dossiers import access
from dossiers.access import Principal
from dossiers.export import attachment_digests, load_dossier_rows, load_provenance
from dossiers.fhir import to_bundle
from dossiers.schema import entries
from pipelines.archive import ArchiveMissing
from pipelines.dossier_admin import DossierInput, create_dossiers
from pipelines.intake import Received, intake
from pipelines.process import drain
from tests.conftest import SAMPLES
from tests.test_fhir_export import PATIENT, _row, by_entry_id, check_bundle
from tests.test_fhir_round7 import by_entry_id_of, check_r4_rules

V3_INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
VITAL_SIGNS = "http://hl7.org/fhir/StructureDefinition/vitalsigns"
UCUM = "http://unitsofmeasure.org"


def _valid(bundle: dict) -> dict:
    """The Bundle checked whole (models, statuses, references, R4 rules) and, for every
    resource claiming the vitalsigns profile, that profile's own rules."""
    check_bundle(bundle)
    check_r4_rules(bundle)
    for item in bundle["entry"]:
        res = item["resource"]
        if VITAL_SIGNS in (res.get("meta") or {}).get("profile", ()):
            _check_vital_signs(res)
    json.dumps(bundle, allow_nan=False)
    return bundle


def _check_vital_signs(res: dict) -> None:
    """R4 vitalsigns: effective required (vs-1: a dateTime to the day), a UCUM Quantity or
    a reason unless components or members (vs-2), components alike (vs-3)."""
    when = res.get("effectiveDateTime")
    assert res.get("effectivePeriod") or (when and len(when) >= 10), res
    assert {"vital-signs"} <= {c["code"] for cat in res["category"] for c in cat["coding"]}
    quantity = res.get("valueQuantity")
    assert [k for k in res if k.startswith("value")] in ([], ["valueQuantity"])
    if quantity:
        assert quantity["system"] == UCUM and quantity["code"] and quantity["unit"]
    elif not res.get("component") and not res.get("hasMember"):
        assert "dataAbsentReason" in res


# -- the files' SHA-1 and size ----------------------------------------------------------------
RENAL_PANEL = "02_crbio_synlab_bilan_renal_v1.xml"  # SYNLAB CR-BIO: créatinine, DFG, urée
ADMIN = Principal("admin", "alice")
TREATING, NURSE = "10000000001", "10000000002"


def test_a_documents_file_has_its_sha1_and_size_and_none_when_withheld(sqlite_ctx) -> None:  # noqa: ANN001
    """A SYNLAB CR-BIO filed as a document: its DocumentReference pointed at the file with
    no hash nor size (R4's Attachment.hash is the base64 SHA-1 of the data), so a viewer
    fetching it from the url could not tell a truncated download from the report. The
    CLI's and the API's exports now read the archived bytes for both; a file withheld from
    the reader (a nurse, the créatinine masked) says nothing of it; a file the archive
    cannot give now leaves the attachment without them, and the export still answers."""
    engine, archive = sqlite_ctx.engine, sqlite_ctx.archive
    with open(SAMPLES / "patients.csv", encoding="utf-8") as fh:
        create_dossiers(engine, [DossierInput.from_mapping(r) for r in csv.DictReader(fh)])
    data = (SAMPLES / "cda" / RENAL_PANEL).read_bytes()
    intake(engine, archive, [Received(data, "synlab", "file", file_name=RENAL_PANEL)])
    drain(sqlite_ctx)
    with engine.connect() as conn:
        doc = conn.execute(select(entries).where(entries.c.type == "document")).one()
        creat = conn.execute(select(entries.c.id).where(
            entries.c.code == "14682-9", entries.c.current.is_(True))).scalar_one()
    stored = archive.get(doc.attachment_sha256)
    sha1 = base64.b64encode(hashlib.sha1(stored).digest()).decode()  # noqa: S324
    # as the CLI reads it (an operator: every entry)
    with engine.connect() as conn:
        row, rows = load_dossier_rows(conn, doc.patient_id)
        provenance = load_provenance(conn, [r["id"] for r in rows])
    files = attachment_digests(rows, archive.get)
    cli = _valid(to_bundle(row, rows, provenance=provenance, files=files,
                           timestamp=datetime(2025, 3, 20, tzinfo=UTC)))
    attachment = by_entry_id_of(cli)[doc.id]["content"][0]["attachment"]
    assert attachment["hash"] == sha1 and attachment["size"] == len(stored)
    # as the API reads it, for the patient and for a nurse the file is withheld from
    patient = Principal("patient", str(doc.patient_id))
    for rpps, family, role in ((TREATING, "Durand", "médecin"),
                               (NURSE, "Nguyen", "infirmière")):
        access.register_professional(engine, ADMIN, rpps, family, "Anne", role)
    access.set_treating(engine, ADMIN, patient.subject, TREATING)
    access.grant(engine, patient, patient.subject, NURSE)
    access.set_mask(engine, patient, creat, True)
    own = _valid(access.export_fhir(engine, patient, patient.subject,
                                    base_url="https://dmp.test", read_file=archive.get))
    shown = by_entry_id_of(own)[doc.id]["content"][0]["attachment"]
    assert (shown["hash"], shown["size"]) == (sha1, len(stored))
    nurse = _valid(access.export_fhir(engine, Principal("professional", NURSE, "infirmière"),
                                      patient.subject, read_file=archive.get))
    hidden = by_entry_id_of(nurse)[doc.id]["content"][0]["attachment"]
    assert "hash" not in hidden and "size" not in hidden

    def gone(sha: str) -> bytes:
        raise ArchiveMissing(f"{sha} not in the archive")

    lost = [{**r, "attachment_sha256": "0" * 64} if r["id"] == doc.id else r for r in rows]
    held = _valid(to_bundle(row, lost, provenance=provenance,
                            files=attachment_digests(lost, gone)))
    missing = by_entry_id_of(held)[doc.id]["content"][0]["attachment"]
    assert "hash" not in missing and missing["url"].endswith(f"/documents/{doc.id}")


def test_a_reports_presented_form_has_its_sha1_and_size() -> None:
    """A radiology report's PDF (DiagnosticReport.presentedForm) gets them as a document's
    content does; a report whose file is withheld from the reader does not."""
    pdf = "%PDF-1.4 IRM du genou droit — compte rendu du Dr Lefèvre".encode()
    sha256 = hashlib.sha256(pdf).hexdigest()
    rows = [_row(i, type="imaging_report", code="18748-4", display="IRM du genou droit",
                 media_type="application/pdf", attachment_sha256=sha256,
                 effective="2025-02-11") for i in (1, 2)]
    files = attachment_digests(rows, {sha256: pdf}.__getitem__, withheld={2})
    res = by_entry_id(_valid(to_bundle(PATIENT, rows, files=files, withheld={2})))
    form = res[1]["presentedForm"][0]
    assert form["hash"] == base64.b64encode(hashlib.sha1(pdf).digest()).decode()  # noqa: S324
    assert form["size"] == len(pdf)
    assert "hash" not in res[2]["presentedForm"][0] and "url" not in res[2]["presentedForm"][0]


def test_an_archive_out_of_reach_is_not_asked_for_every_file() -> None:
    """The S3 bucket out of reach: each read waits for its timeouts, and a dossier of ten
    scanned reports would make the export wait ten times as long. After three failures in
    a row the archive is not asked again for this export, which answers without hashes."""
    from pipelines.archive import ArchiveUnavailable

    asked: list[str] = []

    def down(sha: str) -> bytes:
        asked.append(sha)
        raise ArchiveUnavailable("S3 archive read failed (EndpointConnectionError)")

    rows = [_row(i, type="document", code="11502-2", display="Compte rendu de biologie",
                 media_type="application/pdf", attachment_sha256=f"{i:064x}",
                 effective="2025-02-11") for i in range(1, 11)]
    files = attachment_digests(rows, down)
    assert files == {} and len(asked) == 3
    res = by_entry_id(_valid(to_bundle(PATIENT, rows, files=files)))
    assert all("hash" not in r["content"][0]["attachment"] for r in res.values())


# -- a sender's own abnormal flags -------------------------------------------------------------
def _link(source: str) -> list[dict]:
    return [{"import_id": 12, "source": source, "relation": "created",
             "created_at": datetime(2025, 3, 19, 9, 5, tzinfo=UTC)}]


@pytest.mark.parametrize(("flags", "expected"), [
    ("H", [{"coding": [{"system": V3_INTERPRETATION, "code": "H"}]}]),
    ("+,H", [{"coding": [{"system": "urn:dmp/CodeSystem/interpretation/labo-bio-ouest",
                          "code": "+"}], "text": "+"},
             {"coding": [{"system": V3_INTERPRETATION, "code": "H"}]}]),
    ("HIGH", [{"coding": [{"system": "urn:dmp/CodeSystem/interpretation/labo-bio-ouest",
                           "code": "HIGH"}], "text": "HIGH"}]),
    ("très élevé", [{"text": "très élevé"}]),  # words: no code of anyone's
])
def test_a_flag_outside_table_0078_is_under_its_senders_system(flags: str,
                                                                expected: list) -> None:
    """OBX-8 '+' or 'HIGH' of a LIS (no code of HL7 table 0078, kept as sent) was exported
    as a text alone: a reader could not tell a sender's code from words, nor whose code it
    was. It is now a coding under the system of the source that sent it (its provenance),
    never v3-ObservationInterpretation; words stay text; a flag whose sender is unknown
    (no provenance given) stays text, no system invented."""
    rows = [_row(1, value="7.9", value_num=7.9, unit="mmol/L", interpretation=flags,
                 code="2345-7", display="Glucose", effective="2025-03-19T08:30+01:00")]
    res = by_entry_id(_valid(to_bundle(PATIENT, rows, provenance={1: _link("labo-bio-ouest")})))
    assert res[1]["interpretation"] == expected
    alone = by_entry_id(_valid(to_bundle(PATIENT, rows)))[1]["interpretation"]
    assert all("coding" not in i or i["coding"][0]["system"] == V3_INTERPRETATION
               for i in alone)



def test_a_flag_is_under_the_system_of_the_import_it_was_filed_from() -> None:
    """A potassium sent by the lab (import 12, '+') and confirmed by a hospital's CR-BIO
    (import 30): the flag is the lab's code, so under the lab's system, whichever link comes
    first; an entry whose own import is not among its links (hidden from the reader) takes
    the first link's."""
    rows = [_row(1, value="6.2", value_num=6.2, unit="mmol/L", interpretation="+",
                 code="2823-3", display="Potassium", import_id=12,
                 effective="2025-03-19T08:30+01:00")]
    confirmed = [{"import_id": 30, "source": "chu-annecy", "relation": "confirmed",
                  "created_at": datetime(2025, 3, 20, 14, 0, tzinfo=UTC)}]
    both = by_entry_id(_valid(to_bundle(PATIENT, rows, provenance={
        1: confirmed + _link("labo-bio-ouest")})))
    assert both[1]["interpretation"][0]["coding"][0]["system"] == \
        "urn:dmp/CodeSystem/interpretation/labo-bio-ouest"
    other = by_entry_id(_valid(to_bundle(PATIENT, rows, provenance={1: confirmed})))
    assert other[1]["interpretation"][0]["coding"][0]["system"] == \
        "urn:dmp/CodeSystem/interpretation/chu-annecy"


# -- vital signs dated to the year or the month, and their profile ----------------------------
def _vital(i: int, code: str, display: str, effective: str | None, **kw: object) -> dict:
    return _row(i, type="vital_sign", code=code, display=display, effective=effective, **kw)


def test_vital_signs_keep_their_precision_and_claim_the_profile_they_meet() -> None:
    """A VSM's history gives a weight 'in 2024' and a height 'in March 2024': exported as
    effectiveDateTime '2024', they broke R4's vitalsigns vs-1 (a vital sign's dateTime is
    to the day), which R4 requires of every vital sign. They are now an effectivePeriod of
    that year or month (no day invented). Every vital sign that meets the vitalsigns profile
    claims it (meta.profile); one in words, in a unit outside UCUM, without a time, or a
    panel whose member does not meet it, claims nothing. Other resources keep their partial
    dates as before, and claim no profile."""
    rows = [_vital(1, "29463-7", "Poids", "2024", value="71.5", value_num=71.5, unit="kg"),
            _vital(2, "8302-2", "Taille", "2024-03", value="168", value_num=168, unit="cm"),
            _vital(3, "8867-4", "Fréquence cardiaque", "2025-01-10T10:30+01:00",
                   value="72", value_num=72, unit="/min"),
            _vital(4, "8310-5", "Température", "2025-01-10", value="fébrile",
                   value_type="ST"),
            _vital(5, "29463-7", "Poids", None, value="70", value_num=70, unit="kg"),
            _vital(6, "85354-9", "Pression artérielle", "2025-01-10T10:30+01:00",
                   key="vital|85354-9|2025-01-10"),
            _vital(7, "8480-6", "Pression systolique", "2025-01-10T10:30+01:00",
                   value="128", value_num=128, unit="mm[Hg]",
                   details={"parent_result": {"key": "vital|85354-9|2025-01-10",
                                              "code": "85354-9"}}),
            _vital(8, "8462-4", "Pression diastolique", "2025-01-10T10:30+01:00",
                   value="normale", value_type="ST",
                   details={"parent_result": {"key": "vital|85354-9|2025-01-10",
                                              "code": "85354-9"}}),
            _vital(9, "9279-1", "Fréquence respiratoire", "2025-01-10",
                   value="16", value_num=16, unit="cycles/minute"),
            _row(10, effective="2025", value="positif", value_type="ST"),
            _row(11, type="immunization", code="3400932857241", system="1.2.250.1.215.200",
                 effective="2024-05"),
            _vital(12, "29463-7", "Poids", "2025-01-10")]  # not taken: 'unknown' (round 8)
    res = by_entry_id(_valid(to_bundle(PATIENT, rows)))
    assert res[1]["effectivePeriod"] == {"start": "2024", "end": "2024"}
    assert res[2]["effectivePeriod"] == {"start": "2024-03", "end": "2024-03"}
    assert "effectiveDateTime" not in res[1] and "effectiveDateTime" not in res[2]
    assert res[3]["effectiveDateTime"] == "2025-01-10T10:30:00+01:00"

    def claimed(i: int) -> bool:
        return VITAL_SIGNS in (res[i].get("meta") or {}).get("profile", ())

    assert [i for i in res if claimed(i)] == [1, 2, 3, 7, 12]
    assert res[6]["hasMember"] and not claimed(6)  # its diastolic is in words
    assert "unit" not in res[9]["valueQuantity"] or res[9]["valueQuantity"].get(
        "system") != UCUM
    assert res[10]["effectiveDateTime"] == "2025" and "meta" not in res[10]
    assert res[11]["occurrenceDateTime"] == "2024-05"



# -- a LIS's flag filed from a real message ---------------------------------------------------
def test_a_lis_flag_filed_from_an_oru_is_under_the_sending_sources_system(sqlite_ctx) -> None:  # noqa: ANN001
    """An ORU^R01 ionogram through intake and processing: the LIS flags the potassium '+'
    (no code of table 0078, kept as sent and warned on the ledger). Its Observation had the
    '+' as a text alone; it is now a code of the system of the source that sent it
    (provenance: 'demo-lab'); the sodium's N stays a code of v3-ObservationInterpretation."""
    from tests.test_fhir_export import _filed
    from tests.test_result_lifecycle import _msg

    bundle, res = _filed(sqlite_ctx, _msg(1, "F",
                         "OBX|1|NM|2823-3^Potassium^LN||6,2|mmol/L|3,5-5,1|+|||F",
                         "OBX|2|NM|2951-2^Sodium^LN||139|mmol/L|135-145|N|||F"))
    _valid(bundle)
    assert res["2823-3"]["interpretation"] == [{"coding": [{
        "system": "urn:dmp/CodeSystem/interpretation/demo-lab", "code": "+"}], "text": "+"}]
    assert res["2951-2"]["interpretation"] == [{"coding": [{"system": V3_INTERPRETATION,
                                                           "code": "N"}]}]


# -- a local id under a UUID root -------------------------------------------------------------
LPM_ROOT = "8F2C6B1E-3D4A-4E5F-9A7B-1C2D3E4F5A6B"  # an LIS whose ids are UUID-rooted (HL7 V3 II)


def test_a_local_id_under_a_uuid_root_is_under_urn_uuid(sqlite_ctx) -> None:  # noqa: ANN001
    """A CR-BIO whose patientRole/id of the lab's patient number has a UUID root (HL7 V3
    allows an OID or a UUID): the local id was exported with no system and the UUID as the
    assigner's name, so no reader could match it with the same lab's other documents. It
    is under urn:uuid: (lower case, as FHIR writes UUIDs) now, assigner alike; the
    OID-rooted one and the INS are as before."""
    from dossiers.export import load_patient_identifiers

    name = "01_crbio_labm_lipides_glycemie.xml"
    data = (SAMPLES / "cda" / name).read_bytes().replace(
        b'<id extension="4100001953" root="2.999.250.1.1"/>',
        b'<id extension="4100001953" root="2.999.250.1.1"/>'
        b'<id extension="LPM-000482" root="' + LPM_ROOT.encode() + b'"/>')
    sqlite_ctx.settings = replace(sqlite_ctx.settings, auto_create=True)
    intake(sqlite_ctx.engine, sqlite_ctx.archive, [Received(data, "labm", "file",
                                                            file_name=name)])
    drain(sqlite_ctx)
    with sqlite_ctx.engine.connect() as conn:
        pid = conn.execute(select(entries.c.patient_id)).scalars().first()
        row, rows = load_dossier_rows(conn, pid)
        identifiers = load_patient_identifiers(conn, pid)
    bundle = _valid(to_bundle(row, rows, identifiers=identifiers))
    patient = bundle["entry"][0]["resource"]
    ids = {i.get("system"): i for i in patient["identifier"]}
    uuid_id = ids[f"urn:uuid:{LPM_ROOT.lower()}"]
    assert uuid_id["value"] == "LPM-000482"
    assert uuid_id["assigner"] == {"identifier": {"system": "urn:ietf:rfc:3986",
                                                  "value": f"urn:uuid:{LPM_ROOT.lower()}"}}
    assert ids["urn:oid:2.999.250.1.1"]["value"] == "4100001953"
    assert ids["urn:oid:1.2.250.1.213.1.4.10"]["value"] == "155112923219071"
