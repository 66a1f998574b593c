"""Orders and their prescribers: a lab report's order (OBR) and a CDA document's orders as
ServiceRequests."""

from __future__ import annotations

from collections.abc import Mapping

from dossiers.fhir.codings import _OID
from dossiers.fhir.common import IDENTIFIER_TYPES, _first, _text, full_url
from dossiers.fhir.dates import fhir_datetime
from dossiers.fhir.identifiers import (
    NATIONAL_PS_OID,
    _entity_identifier,
    _identifier,
    _identifier_key,
    _practitioner_identifiers,
)
from dossiers.fhir.masking import _security

PLACER_TYPE = {"coding": [{"system": IDENTIFIER_TYPES, "code": "PLAC",
                           "display": "Placer Identifier"}]}


def _prescriber(identifier: dict | None, name: str | None,
                extras: dict[str, dict]) -> dict | None:
    """A reference to the Practitioner who ordered (added to ``extras``): one per
    identifier in the Bundle, the same as the biologist's when it is the same person (their
    RPPS and idNatPS as ``_practitioner_identifiers`` gives them); a name without identifier
    is a display only (two Dr MARTIN are not one)."""
    if identifier is None:
        return {"display": name} if name else None
    url = full_url("practitioner", _identifier_key(identifier))
    held = extras.setdefault(url, {"resourceType": "Practitioner",
                                   "identifier": _practitioner_identifiers(identifier),
                                   "name": [{"text": name}] if name else []})
    if not held.get("name") and name:
        held["name"] = [{"text": name}]
    return {"reference": url, "display": name or _text(
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
    security = _security(entry, details)
    extras.setdefault(url, {"resourceType": "ServiceRequest",
                            "meta": {"security": security} if security else None,
                            "identifier": [identifier] if identifier else [],
                            "status": "unknown", "intent": "order", "code": code,
                            "subject": subject, "authoredOn": authored,
                            "requester": requester})
    return {"reference": url}


def _lab_order(entry: Mapping, details: Mapping, res: Mapping, subject: dict,
               extras: dict[str, dict] | None) -> dict | None:
    """DiagnosticReport.basedOn of an HL7v2 report: the ServiceRequest of its OBR (HL7's
    v2-to-FHIR: OBR -> ServiceRequest), placer number OBR-2 as its PLAC identifier, what
    was ordered OBR-4, and the prescriber OBR-16 (or ORC-12) as requester with the RPPS
    the XCN gives. The prescriber was not exported at all, the order a logical reference
    to nothing in the Bundle. Without ``extras`` (no Bundle to add to), the logical
    reference by placer number as before."""
    placer = _text(details.get("placer_order"))
    said = details.get("ordering_provider_id")
    name = _text(details.get("ordering_provider"))
    identifier = _identifier(said.get("id"), said.get("authority"), said.get("type")) \
        if isinstance(said, Mapping) else None
    placed = {"type": PLACER_TYPE, "value": placer} if placer else None
    if extras is None or not (placed or identifier or name):
        return {"type": "ServiceRequest", "identifier": placed} if placed else None
    return _service_request(f"entry/{entry.get('id')}", entry, details, subject, extras,
                            identifier=placed, requester=_prescriber(identifier, name, extras),
                            code=res.get("code"))


def _document_orders(entry: Mapping, details: Mapping, subject: dict,
                     extras: dict[str, dict] | None) -> list[dict]:
    """The ServiceRequests a CDA document answers (details.orders: inFulfillmentOf/order/id,
    'root^extension'), each with the prescriber (details.ordered_by: participant REF, its
    RPPS or idNatPS; the prescription's date as authoredOn); one without identifier when a
    prescriber is named and no order id. Both were dropped."""
    if extras is None:
        return []
    orders = [i for i in (_entity_identifier(k) for k in details.get("orders") or ()) if i]
    said = _first(details, "ordered_by") or {}
    ids = [i for i in said.get("ids") or () if isinstance(i, str) and _text(i)]
    # the national PS id when the prescriber has several (as for the biologist)
    chosen = next((i for i in ids if i.strip().startswith(f"{NATIONAL_PS_OID}^")),
                  ids[0] if ids else "")
    root, _, ext = chosen.partition("^")
    identifier = _identifier(ext, root.strip()) if _OID.fullmatch(root.strip()) and \
        _text(ext) else None
    requester = _prescriber(identifier, None, extras)
    if requester is None and _text(said.get("organization_name")):
        requester = {"display": _text(said["organization_name"])}
    authored = fhir_datetime(_text(said.get("time")))
    if not orders and requester is None:
        return []
    return [_service_request(f"entry/{entry.get('id')}/order/{_identifier_key(o) if o else ''}",
                             entry, details, subject, extras, identifier=o,
                             requester=requester, authored=authored)
            for o in orders or [None]]
