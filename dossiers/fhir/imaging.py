"""The images a report is of (CR-IMG DICOM object catalog): ImagingStudy and its WADO Endpoint."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from dossiers.fhir.codings import OID
from dossiers.fhir.common import RFC3986, fhir_string, full_url, items
from dossiers.fhir.dates import fhir_datetime
from dossiers.fhir.masking import merge_security, security_labels

DCM = "http://dicom.nema.org/resources/ontology/DCM"
DICOM_UID = "urn:dicom:uid"
ENDPOINT_TYPES = "http://terminology.hl7.org/CodeSystem/endpoint-connection-type"


def imaging_studies(entry: Mapping, details: Mapping, subject: dict,
                    extras: dict[str, dict] | None) -> list[dict]:
    """References to the ImagingStudy of each study of details.dicom_studies (a CR-IMG's
    DICOM object catalog, DICOM Part 20 / CI-SIS FR-DICOM-Examen), added to ``extras``: the
    export said nothing of the images a report is of. One ImagingStudy per Study Instance
    UID in the Bundle (a report and its addendum are of one study), labelled as every
    report it is of is."""
    if extras is None:
        return []
    refs = []
    for said in items(details.get("dicom_studies")):
        if not isinstance(said, Mapping) \
                or not (fhir_string(said.get("uid")) or said.get("series")):
            continue  # nothing said of it: no ImagingStudy of nothing
        uid = fhir_string(said.get("uid"))
        url = full_url("imaging-study", uid or f"entry/{entry.get('id')}/{len(refs)}")
        study = extras.get(url)
        if study is None:
            study = extras[url] = _imaging_study(said, subject, extras)
        else:  # an addendum listing the reconstructions too: their series join the study
            _more_series(study, _imaging_study(said, subject, extras))
        # a masked report's images say as much of the patient
        merge_security(study.setdefault("meta", {}).setdefault("security", []),
                       security_labels(entry, details))
        if {"reference": url} not in refs:
            refs.append({"reference": url})
    return refs


def _imaging_study(said: Mapping, subject: dict, extras: dict[str, dict]) -> dict:
    """One R4 ImagingStudy: Study Instance UID as urn:dicom:uid (R4's own example), series
    (their UID and DCM modality; R4 requires both: a series sent without UID is counted,
    not listed), instances (SOP Instance UID and SOP class as urn:oid: under RFC 3986, as
    R4's sopClass value set says them), the counts (a series' instance_count when the store
    kept its first images only) and the WADO service the instances' links point to."""
    series_out: list[dict] = []
    modalities: list[dict] = []
    total = 0
    for series in items(said.get("series")):
        if not isinstance(series, Mapping):
            continue
        modality = fhir_string(series.get("modality"))
        coded = {"system": DCM, "code": modality} if modality else \
            {"display": "modality not stated by the sender"}
        if modality and coded not in modalities:
            modalities.append(coded)
        instances = [i for i in items(series.get("instances")) if isinstance(i, Mapping)]
        count = series.get("instance_count")
        count = count if isinstance(count, int) and not isinstance(count, bool) \
            and count >= len(instances) else len(instances)
        total += count
        uid = fhir_string(series.get("uid"))
        if not uid:
            continue
        endpoints = []
        for instance in instances:
            endpoint = _wado_endpoint(instance.get("reference"), extras)
            if endpoint and {"reference": endpoint} not in endpoints:
                endpoints.append({"reference": endpoint})
        series_out.append({
            "uid": uid, "modality": coded, "numberOfInstances": count,
            "started": fhir_datetime(series.get("time")), "endpoint": endpoints,
            "instance": [{"uid": fhir_string(i["uid"]), "sopClass": {
                "system": RFC3986, "code": f"urn:oid:{fhir_string(i['sop_class'])}"}
                if OID.fullmatch(fhir_string(i.get("sop_class")) or "") else
                {"display": fhir_string(i.get("sop_class"))
                 or "SOP class not stated by the sender"}}
                for i in instances if fhir_string(i.get("uid"))]})
    series_count = sum(1 for s in items(said.get("series")) if isinstance(s, Mapping))
    uid = fhir_string(said.get("uid"))
    return {"resourceType": "ImagingStudy", "status": "available" if total else "unknown",
            "identifier": [{"system": DICOM_UID, "value": f"urn:oid:{uid}"}] if uid else [],
            "subject": subject, "started": fhir_datetime(said.get("time")),
            "modality": modalities, "numberOfSeries": series_count,
            "numberOfInstances": total, "series": series_out}


def _more_series(study: dict, other: Mapping) -> None:
    """The series of ``other`` (the same study, as another report lists it) that ``study``
    does not hold, added with their counts; one listed by both stays as first listed."""
    held = {s["uid"] for s in study["series"]}
    added = [s for s in other["series"] if s["uid"] not in held]
    study["series"].extend(added)
    study["numberOfSeries"] += len(added)
    study["numberOfInstances"] += sum(s["numberOfInstances"] for s in added)
    study["modality"].extend(m for m in other["modality"] if m not in study["modality"])
    if study["numberOfInstances"]:
        study["status"] = "available"


def _wado_endpoint(link: Any, extras: dict[str, dict]) -> str | None:  # noqa: ANN401
    """The fullUrl of the Endpoint of an instance's link (CDA text reference): a WADO-URI
    link ('...wado?requestType=WADO&objectUID=...') is its service's address with the
    instance's UIDs, which the ImagingStudy holds, so one Endpoint per service; a DICOMweb
    (WADO-RS) link, its base before '/studies'. Any other link is no endpoint we can say."""
    link = fhir_string(link) or ""
    if not re.match(r"https?://", link, re.IGNORECASE):
        return None
    base, _, query = link.partition("?")
    if re.search(r"(^|&)requestType=WADO(&|$)", query, re.IGNORECASE):
        kind = "dicom-wado-uri"
    elif "/studies/" in base:
        base, kind = base.split("/studies/", 1)[0], "dicom-wado-rs"
    else:
        return None
    url = full_url("endpoint", f"{kind}/{base}")
    extras.setdefault(url, {
        "resourceType": "Endpoint", "status": "active",
        "connectionType": {"system": ENDPOINT_TYPES, "code": kind},
        "payloadType": [{"text": "DICOM"}], "payloadMimeType": ["application/dicom"],
        "address": base})
    return url
