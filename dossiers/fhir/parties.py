"""Who did, stated or recorded something: performers, authors, asserters and recorders as
references or displays."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dossiers.fhir.codings import OID
from dossiers.fhir.common import fhir_string, first, items
from dossiers.fhir.dates import fhir_datetime
from dossiers.fhir.identifiers import (
    FINESS_OID,
    NATIONAL_PS_OID,
    fhir_identifier,
    organization_identifiers,
    practitioner_identifiers,
)


def performer_reference(value: Any) -> dict | None:  # noqa: ANN401
    """'<oid>^<id>' (a CDA author id) -> a logical reference; a name -> a display.

    A professional's id (national PS OID) is a Practitioner reference typed as the
    Practitioner resources are (``practitioner_identifiers``: IDNPS, the bare RPPS
    made the idNatPS): it was an untyped identifier whose value, for an HL7v2 sender's
    bare RPPS, matched no Practitioner of the Bundle."""
    text = fhir_string(value)
    if not text:
        return None
    root, sep, ext = text.partition("^")
    if sep and root.strip() == NATIONAL_PS_OID and fhir_string(ext):
        said = fhir_identifier(ext, NATIONAL_PS_OID) or {}
        return {"type": "Practitioner", "identifier": practitioner_identifiers(said)[0]}
    if sep and OID.fullmatch(root.strip()) and fhir_string(ext):
        identifier = {"system": f"urn:oid:{root.strip()}", "value": fhir_string(ext)}
        # a structure's idNatSt typed as its Organization's is (IDNST, official)
        return {"identifier": organization_identifiers(identifier, None)[0]}
    return {"display": text}


def author_reference(entry: Mapping, details: Mapping) -> dict | None:
    """Who a document or a report is by (entries.performer): ``performer_reference``, and when that
    is a structure's id (idNatSt, urn:oid:1.2.250.1.71.4.2.2: a CDA author that is an
    organization only, or a device writing for its laboratory) an Organization reference
    with the structure's name (details.authors[].organization_name). It was an untyped
    identifier with no words: a viewer showed a blank author, a validator could not tell
    it from a Practitioner."""
    said = fhir_string(entry.get("performer")) or ""
    ref = performer_reference(said)
    if ref is None or said.partition("^")[0].strip() != FINESS_OID or "identifier" not in ref:
        return ref
    names = [fhir_string(a.get("organization_name")) for a in items(details.get("authors"))
             if isinstance(a, Mapping) and said in (a.get("organization") or ())]
    return {"type": "Organization", **ref, "display": next(filter(None, names), None)}


def _practitioner(party: Mapping | None) -> dict | None:
    """A professional named by ids (RPPS under urn:oid:1.2.250.1.71.4.2.1): a logical
    Practitioner reference by the first id that is 'root^extension'."""
    for key in (party or {}).get("ids") or ():
        ref = performer_reference(key)
        if ref and "identifier" in ref:
            return {"type": "Practitioner", **ref}
    return None


def _stated_by(details: Mapping, subject: dict) -> dict | None:
    """Who stated the fact (details.informants, the first one): the patient (the dossier's
    Patient), a relative (a RelatedPerson by its relationship's display or code: no
    resource, no name), a professional (``_practitioner``)."""
    said = first(details, "informants")
    if said is None:
        return None
    source = said.get("source")
    if source == "patient":
        return dict(subject)
    if source == "relative":
        rel = said.get("relationship")
        words = fhir_string(rel.get("display")) or fhir_string(rel.get("code")) \
            if isinstance(rel, Mapping) else None
        return {"type": "RelatedPerson", "display": words or "related person"}
    return _practitioner(said) if source == "professional" else None


def _recorded(details: Mapping, subject: dict) -> tuple[dict | None, str | None]:
    """(recorder, when recorded) of the entry-level author (details.recorded_by): the
    patient (patient-generated data) or a professional."""
    author = first(details, "recorded_by")
    if author is None:
        return None, None
    who = dict(subject) if author.get("source") == "patient" else _practitioner(author)
    return who, fhir_datetime(fhir_string(author.get("time")))


# immunization-origin: a vaccination the patient or a parent reports (not first-hand)
_RECALLED = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/immunization-origin",
                         "code": "recall", "display": "Parent/Guardian/Patient Recall"}]}


def sources(res: dict, resource: str, details: Mapping, subject: dict) -> None:
    """Who stated and who recorded the fact, on the resources R4 gives a place for it."""
    stated = _stated_by(details, subject)
    recorder, when = _recorded(details, subject)
    if resource in ("Condition", "AllergyIntolerance"):
        res.update(asserter=stated, recorder=recorder, recordedDate=when)
    elif resource == "MedicationStatement":
        res.update(informationSource=stated, dateAsserted=when)
    elif resource == "Immunization":
        said = first(details, "informants") or {}
        if said.get("source") in ("patient", "relative"):
            res.update(primarySource=False, reportOrigin=_RECALLED)
        res["recorded"] = when


# R4 Immunization.performer.function (v2-0443): the one who gave the vaccine
_ADMINISTERING = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0443",
                              "code": "AP", "display": "Administering Provider"}]}


def party_references(party: Mapping) -> tuple[dict | None, dict]:
    """A party as our details hold it (ids: the person's, organization: the organization's
    ids, organization_name) -> (the person as a reference by identifier, or None; the
    organization by identifier and name, or {})."""
    ids = [i for i in party.get("ids") or () if fhir_string(i)]
    person = performer_reference(ids[0]) if ids else None
    orgs = [i for i in party.get("organization") or () if fhir_string(i)]
    org = (performer_reference(orgs[0]) if orgs else None) or {}
    name = fhir_string(party.get("organization_name"))
    if name:
        org = {**org, "display": name}
    return person, org


def performers(details: Mapping, resource: str) -> list[dict]:
    """Who gave a vaccine or did a procedure (details.performed_by: the performer's ids, the
    organization's ids and name; kept apart from Entry.performer, the author): the person
    by identifier (RPPS under urn:oid:1.2.250.1.71.4.2.1), on behalf of the organization
    (Procedure) or the organization as actor when no person is named. Dropped until now:
    a vaccination exported without its vaccinator."""
    party = details.get("performed_by")
    if not isinstance(party, Mapping):
        return []
    person, org = party_references(party)
    if person is None and not org:
        return []
    if person is None:
        # the organization alone (a pharmacy that vaccinated, a clinic's team): an actor
        # may be a person or a structure, and an untyped identifier with a FINESS said
        # neither; onBehalfOf is an Organization by definition and stays as it was
        return [{"actor": {"type": "Organization", **org}}]
    if resource == "Immunization":
        return [{"function": _ADMINISTERING, "actor": person}]
    return [{"actor": person, "onBehalfOf": org or None}]
