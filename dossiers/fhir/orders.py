"""Orders and their prescribers: a lab report's order (OBR) and a CDA document's orders as
ServiceRequests."""

from __future__ import annotations

from collections.abc import Mapping

from dossiers.fhir.codings import OID
from dossiers.fhir.common import IDENTIFIER_TYPES, fhir_string, first, full_url
from dossiers.fhir.dates import fhir_datetime
from dossiers.fhir.identifiers import (
    NATIONAL_PS_OID,
    entity_identifier,
    fhir_identifier,
    identifier_key,
    practitioner_identifiers,
)
from dossiers.fhir.masking import security_labels

PLACER_TYPE = {"coding": [{"system": IDENTIFIER_TYPES, "code": "PLAC",
                           "display": "Placer Identifier"}]}


def prescriber(identifier: dict | None, name: str | None,
               extras: dict[str, dict]) -> dict | None:
    """A reference to the Practitioner who ordered (added to ``extras``): one per
    identifier in the Bundle, the same as the biologist's when it is the same person (their
    RPPS and idNatPS as ``practitioner_identifiers`` gives them); a name without identifier
    is a display only (two Dr MARTIN are not one)."""
    if identifier is None:
        return {"display": name} if name else None
    url = full_url("practitioner", identifier_key(identifier))
    held = extras.setdefault(url, {"resourceType": "Practitioner",
                                   "identifier": practitioner_identifiers(identifier),
                                   "name": [{"text": name}] if name else []})
    if not held.get("name") and name:
        held["name"] = [{"text": name}]
    return {"reference": url, "display": name or fhir_string(
        (held.get("name") or [{}])[0].get("text"))}


def _service_request(key: str, entry: Mapping, details: Mapping, subject: dict,
                     extras: dict[str, dict], *, identifier: dict | None,
                     requester: dict | None, code: dict | None = None,
                     authored: str | None = None) -> dict:
    """A reference to the ServiceRequest of an order (added to ``extras``): what FHIR R4
    and FR Core say an order is, with its prescriber as requester. We hold the order as
    the report or document that answers it says it: its status is 'unknown', its intent
    'order'; it carries the labels of the entry that names it (a masked document's
    prescriber says as much as the document)."""
    url = full_url("service-request", key)
    security = security_labels(entry, details)
    extras.setdefault(url, {"resourceType": "ServiceRequest",
                            "meta": {"security": security} if security else None,
                            "identifier": [identifier] if identifier else [],
                            "status": "unknown", "intent": "order", "code": code,
                            "subject": subject, "authoredOn": authored,
                            "requester": requester})
    return {"reference": url}


def lab_order(entry: Mapping, details: Mapping, res: Mapping, subject: dict,
              extras: dict[str, dict] | None) -> dict | None:
    """DiagnosticReport.basedOn of an HL7v2 report: the ServiceRequest of its OBR (HL7's
    v2-to-FHIR: OBR -> ServiceRequest), placer number OBR-2 as its PLAC identifier, what
    was ordered OBR-4, and the prescriber OBR-16 (or ORC-12) as requester with the RPPS
    the XCN gives. The prescriber was not exported at all, the order a logical reference
    to nothing in the Bundle. Without ``extras`` (no Bundle to add to), the logical
    reference by placer number as before."""
    placer = fhir_string(details.get("placer_order"))
    said = details.get("ordering_provider_id")
    name = fhir_string(details.get("ordering_provider"))
    identifier = fhir_identifier(said.get("id"), said.get("authority"), said.get("type")) \
        if isinstance(said, Mapping) else None
    placed = {"type": PLACER_TYPE, "value": placer} if placer else None
    if extras is None or not (placed or identifier or name):
        return {"type": "ServiceRequest", "identifier": placed} if placed else None
    return _service_request(f"entry/{entry.get('id')}", entry, details, subject, extras,
                            identifier=placed, requester=prescriber(identifier, name, extras),
                            code=res.get("code"))


def document_orders(entry: Mapping, details: Mapping, subject: dict,
                    extras: dict[str, dict] | None) -> list[dict]:
    """The ServiceRequests a CDA document answers (details.orders: inFulfillmentOf/order/id,
    'root^extension'), each with the prescriber (details.ordered_by: participant REF, its
    RPPS or idNatPS; the prescription's date as authoredOn); one without identifier when a
    prescriber is named and no order id. Both were dropped."""
    if extras is None:
        return []
    orders = [i for i in (entity_identifier(k) for k in details.get("orders") or ()) if i]
    said = first(details, "ordered_by") or {}
    ids = [i for i in said.get("ids") or () if isinstance(i, str) and fhir_string(i)]
    # the national PS id when the prescriber has several (as for the biologist)
    chosen = next((i for i in ids if i.strip().startswith(f"{NATIONAL_PS_OID}^")),
                  ids[0] if ids else "")
    root, _, ext = chosen.partition("^")
    identifier = fhir_identifier(ext, root.strip()) if OID.fullmatch(root.strip()) and \
        fhir_string(ext) else None
    requester = prescriber(identifier, None, extras)
    if requester is None and fhir_string(said.get("organization_name")):
        requester = {"display": fhir_string(said["organization_name"])}
    authored = fhir_datetime(fhir_string(said.get("time")))
    if not orders and requester is None:
        return []
    return [_service_request(f"entry/{entry.get('id')}/order/{identifier_key(o) if o else ''}",
                             entry, details, subject, extras, identifier=o,
                             requester=requester, authored=authored)
            for o in orders or [None]]
