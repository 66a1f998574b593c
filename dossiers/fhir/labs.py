"""How a lab result was obtained, on what and by whom: observation type and category, method,
specimen, validating biologist, analyser and performing laboratory."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any

from dossiers.fhir.codings import OID, coded_concept
from dossiers.fhir.common import (
    ABOUT_SOMEONE_ELSE,
    RFC3986,
    fhir_code,
    fhir_string,
    full_url,
    items,
)
from dossiers.fhir.dates import fhir_datetime
from dossiers.fhir.family import about_someone_else
from dossiers.fhir.identifiers import (
    NATIONAL_PS_OID,
    fhir_identifier,
    identifier_key,
    organization_identifiers,
    practitioner_identifiers,
)
from dossiers.fhir.masking import security_labels
from dossiers.fhir.parties import performer_reference
from normalizers.tabledata import table

LAB_RESULT = "lab_result"
OBSERVATION_TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v2-0936"
# R4 specimen-status: a specimen the laboratory rejected (SPM-21: broken tube, too little)
# 'cannot be used because of a quality issue'
REJECTED_SPECIMEN = "unsatisfactory"


@cache
def _observation_types() -> dict[str, bool]:
    """OBX-29 codes of HL7 table 0936 -> whether the OBX is a result of the laboratory."""
    return {r["code"]: r["result"] == "Y" for r in table("observation_types")}


@cache
def organism_codes() -> frozenset[tuple[str, str]]:
    """(system, code) of the observations that identify a micro-organism."""
    return frozenset((r["system"], r["code"]) for r in table("organism_identification_codes"))


def method(said: Any, base_url: str) -> dict | None:  # noqa: ANN401
    """Observation.method (0..1) of details.method (OBX-17 repeats, CDA methodCode): one
    CodeableConcept with every coding sent and the words of all ('Formule de Friedewald;
    Calculated')."""
    concepts = [c for c in (coded_concept(i, base_url) for i in items(said)) if c]
    if not concepts:
        return None
    return {"coding": [c for concept in concepts for c in concept.get("coding", [])],
            "text": "; ".join(c["text"] for c in concepts if c.get("text")) or None}


def _lab_category(category: list[dict], details: Mapping) -> list[dict]:
    """A lab result's category, with its OBX-29 observation type (HL7 table 0936) when sent:
    the answer to a question asked at order entry (AOE: 'fasting: yes'), at specimen
    collection, a placer's clinical information, is no result of the laboratory, so it is
    not in the 'laboratory' category. A type outside table 0936 stays as sent, in words."""
    kind = fhir_code(details.get("observation_type"))
    if not kind:
        return category
    result = _observation_types().get(kind)
    if result is None:
        return [*category, {"text": kind}]
    typed = {"coding": [{"system": OBSERVATION_TYPE_SYSTEM, "code": kind}]}
    return [*category, typed] if result else [typed]


def is_lab_result(resource: Mapping) -> bool:
    """Whether an exported Observation is a result (not an AOE answer, a question...)."""
    return not any(c.get("system") == OBSERVATION_TYPE_SYSTEM and
                   not _observation_types().get(c.get("code"), True)
                   for concept in resource.get("category") or () for c in
                   concept.get("coding") or ())


def specimen_resource(entry: Mapping, details: Mapping, subject: dict,
                      base_url: str) -> dict | None:
    """The Specimen a lab result was measured on: its type (SPM-4, OBR-15, CDA specimen),
    its collection time (SPM-17 / OBR-7, CDA specimen collection) and site (SPM-8,
    OBR-15.4), its condition (SPM-24, table 0493: haemolysed, lipaemic: a potassium on a
    haemolysed serum reads falsely high) and, when the laboratory rejected it (SPM-21,
    table 0490), status 'unsatisfactory' with the reasons as a note (R4 has no element of
    its own for them)."""
    kind = coded_concept(details.get("specimen"), base_url)
    collected = fhir_datetime(entry.get("specimen_time"))
    conditions = [c for c in (coded_concept(i, base_url)
                              for i in items(details.get("specimen_condition"))) if c]
    rejected = [c for c in (coded_concept(i, base_url)
                            for i in items(details.get("specimen_rejected"))) if c]
    site = coded_concept(details.get("specimen_site"), base_url)  # SPM-8, OBR-15.4
    if not (kind or collected or conditions or rejected or site):
        return None
    why = "; ".join(c.get("text") or c["coding"][0]["code"] for c in rejected)
    notes = [{"text": f"rejected by the laboratory: {why}"}] if rejected else []
    about = about_someone_else(details.get("subject"))
    if about is not None:  # a newborn's cord blood is not the mother's specimen
        notes.insert(0, {"text": f"{ABOUT_SOMEONE_ELSE}: {about['display']}"})
    security = security_labels(entry, details)
    return {"resourceType": "Specimen",
            # the labels of the result it was taken for: a masked result's specimen says
            # as much of the patient as the result
            "meta": {"security": security} if security else None,
            "status": REJECTED_SPECIMEN if rejected else None, "type": kind,
            "subject": subject if about is None else None,
            "collection": {"collectedDateTime": collected, "bodySite": site},
            "condition": conditions,
            "note": notes}


def _observer(entry: Mapping, details: Mapping) -> tuple[str, dict] | None:
    """(fullUrl, Practitioner) of who validated a lab result: details.responsible_observer
    (OBX-16 / PRT RO, in France the biologist, with the RPPS the XCN gives) or
    details.validated_by (CDA participant AUTHEN, ids 'root^extension'). One Practitioner
    per identifier in the Bundle (the same biologist validates a whole report); a name
    without identifier is one of its result only (two Dr MARTIN are not one)."""
    said = details.get("responsible_observer")
    name = None
    if isinstance(said, Mapping):
        ident = said.get("id") if isinstance(said.get("id"), Mapping) else {}
        identifier = fhir_identifier(ident.get("id"), ident.get("authority"), ident.get("type"))
        name = fhir_string(said.get("name"))
    elif isinstance(details.get("validated_by"), Mapping):
        ids = [i for i in details["validated_by"].get("ids") or () if isinstance(i, str)]
        # the national PS id when the participant has several (a local one first): the one
        # an HL7v2 result of the same biologist gives, and a reader looks her up by
        said_id = next((i for i in ids if i.strip().startswith(f"{NATIONAL_PS_OID}^")),
                       ids[0] if ids else "")
        root, _, ext = said_id.partition("^")
        root = root.strip()
        identifier = fhir_identifier(ext, root) if OID.fullmatch(root) and fhir_string(ext) else \
            {"system": RFC3986, "value": f"urn:oid:{root}"} if OID.fullmatch(root) else None
    else:
        return None
    if identifier is None and name is None:
        return None
    key = identifier_key(identifier) if identifier else f"entry/{entry.get('id')}"
    return full_url("practitioner", key), {
        "resourceType": "Practitioner",
        "identifier": practitioner_identifiers(identifier) if identifier else [],
        "name": [{"text": name}] if name else []}


def _equipment(entry: Mapping, details: Mapping, base_url: str) -> tuple[str, dict] | None:
    """(fullUrl, Device) a lab result was obtained with: details.equipment (OBX-18, EI: the
    analyser's id under its namespace or OID; one Device per analyser in the Bundle), else
    details.devices (CDA participant DEV: a test kit, by its code). R4 Observation.device
    holds one: the first sent."""
    said = next(iter(items(details.get("equipment"))), None)
    if isinstance(said, Mapping):
        universal = fhir_string(said.get("universal_id")) or ""
        identifier = fhir_identifier(said.get("id"), universal if OID.fullmatch(universal)
                                     else said.get("namespace") or universal)
        if identifier:
            return full_url("equipment", identifier_key(identifier)), {
                "resourceType": "Device", "identifier": [identifier]}
    kit = next(iter(items(details.get("devices"))), None)
    concept = coded_concept(kit, base_url)
    if concept:
        return full_url("kit", entry.get("id")), {"resourceType": "Device", "type": concept}
    return None


def _organization(name: str, details: Mapping) -> tuple[str, dict]:
    """(fullUrl, Organization) of the laboratory that performed a result: with its
    identifier when the store keeps it (details.performing_organization: OBX-23 / PRT-8
    XON.10 under XON.6, a FINESS under urn:oid:1.2.250.1.71.4.2.2), one per identifier in
    the Bundle (two 'LABO DEMO' of two towns are two); else one per name, as before."""
    said = details.get("performing_organization")
    ident = said.get("id") if isinstance(said, Mapping) and fhir_string(said.get("name")) == name \
        else None
    identifier = fhir_identifier(ident.get("id"), ident.get("authority"), ident.get("type")) \
        if isinstance(ident, Mapping) else None
    if identifier is None:
        return full_url("organization", name), {"resourceType": "Organization", "name": name}
    identifiers = organization_identifiers(identifier, fhir_string(ident.get("type")))
    return full_url("organization", identifier_key(identifiers[0])), {
        "resourceType": "Organization", "identifier": identifiers, "name": name}


def lab_parties(res: dict, entry: Mapping, details: Mapping, subject: dict,
                base_url: str, extras: dict[str, dict]) -> None:
    """What the store keeps of how a lab result was obtained, as FHIR says it: method,
    Specimen, Device, the validating biologist as a Practitioner with their RPPS and the
    performing laboratory as an Organization (resources added to ``extras``, shared by the
    results that name the same one). They were dropped, or a display string."""
    res["method"] = method(details.get("method"), base_url)
    res["category"] = _lab_category(res.get("category") or [], details)
    specimen = specimen_resource(entry, details, subject, base_url)
    if specimen:
        url = full_url("specimen", entry.get("id"))
        extras[url] = specimen
        res["specimen"] = {"reference": url}
    device = _equipment(entry, details, base_url)
    if device:
        extras.setdefault(device[0], device[1])
        res["device"] = {"reference": device[0]}
    performers = []
    observer = _observer(entry, details)
    observer_name = None
    if observer:
        url, practitioner = observer
        held = extras.setdefault(url, practitioner)
        if not held.get("name") and practitioner.get("name"):
            held["name"] = practitioner["name"]
        observer_name = practitioner["name"][0]["text"] if practitioner["name"] else None
        performers.append({"reference": url, "display": observer_name})
    said = fhir_string(entry.get("performer"))
    if said and said != observer_name:
        root, sep, _ = said.partition("^")
        if sep and OID.fullmatch(root.strip()):  # an id (CDA): a logical reference
            performers.insert(0, performer_reference(said))
        else:  # OBX-23, PRT PO, OBX-15 producer, CDA performing laboratory: its name
            url, organization = _organization(said, details)
            extras.setdefault(url, organization)
            performers.insert(0, {"reference": url, "display": said})
    res["performer"] = performers
