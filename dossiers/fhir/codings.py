"""Codes and code systems: the entry type and status tables, our system names as FHIR system
URIs (fhir_code_systems.csv, OIDs, local systems under base_url) and the Codings and
CodeableConcepts of an entry's code."""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache
from typing import Any
from urllib.parse import quote

from dossiers.fhir.common import FALLBACK_RESOURCE, TABLES, decoded_json, fhir_code, fhir_string
from normalizers.tabledata import read_csv_rows

OID = re.compile(r"[0-2](\.(0|[1-9][0-9]*))+")


@cache
def entry_type_table() -> dict[str, dict[str, str]]:
    return {r["type"]: r for r in read_csv_rows(TABLES / "fhir_entry_types.csv")}


@cache
def status_table() -> dict[str, dict[str, str]]:
    return {r["status"]: r for r in read_csv_rows(TABLES / "fhir_statuses.csv")}


@cache
def code_system_table() -> dict[str, str]:
    return {r["name"]: r["uri"] for r in read_csv_rows(TABLES / "fhir_code_systems.csv")}


DCM = "http://dicom.nema.org/resources/ontology/DCM"
MODALITY_SYSTEM = "DICOM-MODALITY"  # normalizers/report.py: the modality of a PDF's title


@cache
def dicom_modality_table() -> dict[str, str]:
    return {r["code"]: r["display"]
            for r in read_csv_rows(TABLES / "fhir_dicom_modalities.csv")}


def code_display(coding: dict, system: str | None) -> dict:
    """The Coding with the display its code system gives the code, where the entry's words
    are not it: a report read from an imaging PDF is coded by its DICOM modality ('MR') and
    its display is the exam's title ('IRM du genou droit'), which R4 wants as the concept's
    text (Coding.display: 'a representation of the meaning of the code in the system');
    a receiver checking displays against DCM would reject it or show the title as MR's.
    A DCM code of a CDA sender not in the table keeps the displayName sent with it; one of
    our PDF normalizer (``system`` DICOM-MODALITY: XR, DXA) none: its words are a title."""
    if coding.get("system") != DCM:
        return coding
    known = dicom_modality_table().get(str(coding.get("code")))
    if known or system == MODALITY_SYSTEM:
        return {**coding, "display": known}
    return coding


def resource_type(entry_type: str, details: Any = None) -> str:  # noqa: ANN401
    """The FHIR resource an entry type is exported as (Observation when not listed). A
    medication whose CDA moodCode is not EVN (details.mood: INT, RQO, PRP...) is
    prescribed or intended, not taken: a MedicationRequest, not a MedicationStatement; so is
    a plan of a medication (details.planned), not a ServiceRequest."""
    row = entry_type_table().get(entry_type)
    resource = row["resource"] if row else FALLBACK_RESOURCE
    details = decoded_json(details) if resource in ("MedicationStatement", "ServiceRequest") \
        else None
    if not isinstance(details, Mapping):
        return resource
    if resource == "MedicationStatement" and str(details.get("mood") or "EVN").upper() != "EVN":
        return "MedicationRequest"
    if resource == "MedicationStatement" and details.get("dispensed") is True:
        # handed out by a pharmacy (CDA supply EVN: eDISP, IHE Pharm DIS, C-CDA Medication
        # Dispense): what the pharmacist gave, not a statement that the patient takes it
        return "MedicationDispense"
    if resource == "ServiceRequest" and details.get("planned") == "medication":
        # a medication to start (plan of care): R4 reserves ServiceRequest for services
        return "MedicationRequest"
    if resource == "ServiceRequest" and str(details.get("mood") or "").upper() == "GOL":
        # a goal (CDA moodCode GOL: C-CDA Goal Observation, IHE PCC / CI-SIS objectives):
        # an HbA1c at or below 7 % is a target to reach, not an HbA1c test requested
        return "Goal"
    return resource


def fhir_status(status: str | None, resource: str) -> str:
    """Our status onto the resource's status value set ('' for 'not stated')."""
    row = status_table().get(status or "") or status_table()["*"]
    return row.get(resource, "")


def system_uri(system: str | None, base_url: str = "urn:dmp") -> str | None:
    """Our coding system name -> a FHIR system URI (None when the entry names none)."""
    if not system:
        return None
    known = code_system_table().get(system) or code_system_table().get(system.upper())
    if known:
        return known
    if OID.fullmatch(system):
        return f"urn:oid:{system}"
    if system.startswith(("http://", "https://", "urn:")) and not any(
            c.isspace() for c in system):
        return system
    return f"{base_url}/CodeSystem/{quote(system, safe='')}"


def coded_concept(coded: Any, base_url: str) -> dict | None:  # noqa: ANN401
    """A {code, system, display} or {text} the normalizers keep (a route, a condition, a
    reaction) as a CodeableConcept; None when it holds neither."""
    if not isinstance(coded, Mapping):
        return None
    code = fhir_code(coded.get("code"))
    words = fhir_string(coded.get("display") or coded.get("text"))
    if not code and not words:
        return None
    concept: dict[str, Any] = {"text": words}
    if code:
        concept["coding"] = [coding_of(code, coded.get("system"), coded.get("display"),
                                       base_url)]
    return concept


FHIR_OIDS = "2.16.840.1.113883.4.642."  # FHIR code systems and value sets
CONDITION_VERIFICATION_OID = "2.16.840.1.113883.4.642.1.1075"  # condition-ver-status


def coding_of(code: Any, system: str | None, display: Any, base_url: str) -> dict:  # noqa: ANN401
    return {"system": system_uri(system, base_url), "code": fhir_code(code),
            "display": fhir_string(display)}


def entry_concept(entry: Mapping, base_url: str, fallback: str,
                  details: Mapping | None = None) -> dict:
    """The entry's code as a CodeableConcept; its display (or the fallback) as text when it
    has no code (FHIR requires a code on most resources). The sender's own code, when we
    mapped it to LOINC (details.local_code), and a product's other codes (details.substance:
    the ATC of a CIS) follow as further codings: nothing the sender coded is lost. So do
    the other codes of a value that is the entry's code (a problem: the SNOMED CT of a
    C-CDA problem with its ICD-10-CM translation, a CR-ACP diagnosis with its ADICAP):
    details.value_code.translations, kept in the store, were dropped from the export."""
    code, display = fhir_code(entry.get("code")), fhir_string(entry.get("display"))
    concept: dict[str, Any] = {"text": display or (None if code else
                                                   fhir_string(fallback) or "entry")}
    codings = [code_display(coding_of(code, entry.get("system"), display, base_url),
                            entry.get("system"))] if code else []
    details = details or {}
    substances = details.get("substance")
    others = [details.get("local_code"), *(substances if isinstance(substances, list) else []),
              *(details.get("other_codes") if isinstance(details.get("other_codes"), list)
                else [])]
    value_code = details.get("value_code")
    if code and isinstance(value_code, Mapping) and \
            (fhir_code(value_code.get("code")), value_code.get("system")) == (code,
                                                                           entry.get("system")):
        translations = value_code.get("translations")
        others.extend(translations if isinstance(translations, list) else ())
    for other in others:
        if isinstance(other, Mapping) and fhir_code(other.get("code")):
            coding = coding_of(other.get("code"), other.get("system"), other.get("display"),
                               base_url)
            if all((c.get("system"), c.get("code")) != (coding["system"], coding["code"])
                   for c in codings):
                codings.append(coding)
    if codings:
        concept["coding"] = codings
    return concept


def said_concept(code: Any, system: Any, display: Any, base_url: str,  # noqa: ANN401
                 text: Any = None) -> dict | None:  # noqa: ANN401
    """A CodeableConcept of a code with its words; its words alone without a code."""
    words = fhir_string(display) or fhir_string(text)
    if not fhir_code(code):
        return {"text": words} if words else None
    return {"coding": [coding_of(code, system, display, base_url)], "text": words}
