"""Encounters: class, place, provider and diagnoses, and a transfer's destination Location."""

from __future__ import annotations

import json
from collections.abc import Mapping

from dossiers.fhir.codings import coding_of, entry_concept, fhir_status, said_concept, system_uri
from dossiers.fhir.common import fhir_code, fhir_string, full_url
from dossiers.fhir.dates import fhir_datetime
from dossiers.fhir.identifiers import FINESS_OID, entity_identifier
from dossiers.fhir.parties import performer_reference

# HL7 v3 ActEncounterCode (the value set of R4 Encounter.class): a CDA encounter coded so
# (FR-Rencontre IMP/AMB, C-CDA) says its class; any other code (CPT, TA_ASIP) is its type
_ENCOUNTER_CLASSES = frozenset({"AMB", "EMER", "FLD", "HH", "IMP", "ACUTE", "NONAC",
                                "OBSENC", "PRENC", "SS", "VR"})
_ACT_CODES = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
# Encounter.class is required (1..1): 'unknown' when the sender gave no ActEncounterCode
_UNKNOWN_CLASS = {"system": "http://terminology.hl7.org/CodeSystem/v3-NullFlavor",
                  "code": "UNK", "display": "unknown"}


def encounter(res: dict, entry: Mapping, details: Mapping, subject: dict,
              base_url: str) -> None:
    """An encounter (a visit, a stay): class from details.class (the CDA code's ActCode
    translation) or its code when that is an ActEncounterCode,
    type its code and the code's qualifiers (a CNAM-HR stay's GHS), period from
    details.period_low/high (else its date), who saw the patient as participant (by id),
    the organization as serviceProvider, the place and the diagnoses as words and codes
    (no Location or Condition resource of their own: references by display)."""
    code = fhir_code(entry.get("code"))
    system = system_uri(entry.get("system"), base_url)
    said = details.get("class") if isinstance(details.get("class"), Mapping) else {}
    klass = {"system": _ACT_CODES, "code": fhir_code(said.get("code")),
             "display": fhir_string(said.get("display"))} \
        if fhir_code(said.get("code")) in _ENCOUNTER_CLASSES else \
        {"system": _ACT_CODES, "code": code, "display": fhir_string(entry.get("display"))} \
        if system == _ACT_CODES and code in _ENCOUNTER_CLASSES else _UNKNOWN_CLASS
    types = [entry_concept(entry, base_url, "encounter")]
    for qualifier in details.get("code_qualifiers") or ():
        value = qualifier.get("value") if isinstance(qualifier, Mapping) else None
        if isinstance(value, Mapping) and fhir_code(value.get("code")):
            types.append({"coding": [coding_of(value.get("code"), value.get("system"),
                                               value.get("display"), base_url)],
                          "text": fhir_string(value.get("display"))})
    start = fhir_datetime(details.get("period_low")) or fhir_datetime(entry.get("effective"))
    end = fhir_datetime(details.get("period_high"))
    res.update({"status": fhir_status(entry.get("status"), "Encounter") or "unknown",
                "class": klass, "type": types, "subject": subject})
    if start or end:
        res["period"] = {"start": start, "end": end}
    party = details.get("performed_by")
    if isinstance(party, Mapping):
        ids = [i for i in party.get("ids") or () if fhir_string(i)]
        who = performer_reference(ids[0]) if ids else None
        if who:
            res["participant"] = [{"individual": who}]
        orgs = [i for i in party.get("organization") or () if fhir_string(i)]
        provider = (performer_reference(orgs[0]) if orgs else None) or {}
        name = fhir_string(party.get("organization_name"))
        if name:
            provider["display"] = name
        if provider:
            res["serviceProvider"] = provider
    place = details.get("location")
    if isinstance(place, Mapping):
        kind = place.get("code") if isinstance(place.get("code"), Mapping) else {}
        name = fhir_string(place.get("name")) or fhir_string(kind.get("display")) \
            or fhir_string(kind.get("code"))
        if name:
            res["location"] = [{"location": {"display": name}}]
    reasons = []
    for said in details.get("diagnoses") or ():
        if not isinstance(said, Mapping):
            continue
        if fhir_code(said.get("code")):
            reasons.append({"coding": [coding_of(said.get("code"), said.get("system"),
                                                 said.get("display"), base_url)],
                            "text": fhir_string(said.get("display"))})
        elif fhir_string(said.get("text")):
            reasons.append({"text": fhir_string(said.get("text"))})
    if reasons:
        res["reasonCode"] = reasons


def destination(res: dict, details: Mapping, base_url: str, extras: dict[str, dict]) -> None:
    """Where a transfer took the patient (details.destination: CI-SIS FR-Transfert-du-
    patient participant DST: the facility's FINESS, its kind, its name; the service type
    transferred to as the code's translation, details.code_translations) ->
    Encounter.hospitalization.destination, a Location (R4 allows no Organization there)
    with its FINESS under urn:oid:1.2.250.1.71.4.2.2, its kind and the service as its
    types. The encounter said 'Transfert du patient' and nothing of where."""
    where = destination_location(details, base_url, extras)
    if where is not None:
        res["hospitalization"] = {"destination": where}


def destination_location(details: Mapping, base_url: str,
                         extras: dict[str, dict]) -> dict | None:
    """The Location of details.destination (added to ``extras``) as a reference with its
    name; None when the destination names no place."""
    said = details.get("destination")
    if not isinstance(said, Mapping):
        return None
    idents = [i for i in map(entity_identifier, said.get("ids") or ()) if i]
    kind = said.get("code") if isinstance(said.get("code"), Mapping) else {}
    types = [said_concept(kind.get("code"), kind.get("system"), kind.get("display"),
                          base_url)]
    types += [said_concept(t.get("code"), t.get("system"), t.get("display"), base_url,
                           t.get("text"))
              for t in details.get("code_translations") or () if isinstance(t, Mapping)]
    name = fhir_string(said.get("name"))
    if not idents and not name:
        return None
    key = next((f"{i['system']}|{i['value']}" for i in idents
                if i["system"] == f"urn:oid:{FINESS_OID}"), None) or \
        (f"{idents[0]['system']}|{idents[0]['value']}" if idents else f"name|{name}")
    url = full_url("location", key)
    place = {"resourceType": "Location", "identifier": idents, "name": name,
             "type": [t for t in types if t]}
    if url in extras and extras[url] != place:  # one place, two ways of saying it
        url = full_url("location", f"{key}|{json.dumps(place, sort_keys=True)}")
    extras[url] = place
    return {"reference": url, "display": name}
