"""Immunization: what a vaccination's CDA says besides the vaccine (lot, dose number, route,
dose, why it was not done)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dossiers.fhir.codings import _coded_concept
from dossiers.fhir.common import _decimal, _number, _text
from dossiers.fhir.medications import _route
from dossiers.fhir.units import _quantity


def _vaccination(res: dict, details: Mapping, base_url: str) -> None:
    """What a vaccination's CDA said besides the vaccine (details): the lot (traceability:
    a batch recall), the rank in its series (protocolApplied.doseNumber: '3e dose'), the
    route and dose, and why it was not done (statusReason: a refusal). All were read
    into the store and left out of the Immunization."""
    res["lotNumber"] = _text(details.get("lot_number"))
    res["route"] = _route(details, base_url)
    dose = (_text(details.get("dose")) or "").split()
    if 1 <= len(dose) <= 2 and _number(dose[0]) is not None:
        res["doseQuantity"] = _quantity(_decimal(dose[0]), dose[1] if len(dose) > 1 else None,
                                        None, declared=True)
    if res["status"] == "not-done":
        res["statusReason"] = _coded_concept(details.get("not_done_reason"), base_url)
        return
    number = details.get("dose_number")
    if isinstance(number, int) and not isinstance(number, bool) and 0 < number < 2**31:
        protocol: dict[str, Any] = {"doseNumberPositiveInt": number}
    elif isinstance(number, str) and _text(number.strip()):
        protocol = {"doseNumberString": _text(number.strip()[:20])}
    else:  # R4 protocolApplied needs its dose number: the diseases stay in the store
        return
    targets = details.get("target_diseases")
    diseases = [c for c in (_coded_concept(t, base_url) for t in
                            (targets if isinstance(targets, list) else [])) if c]
    if diseases:  # eHDSI: what a combined vaccine protects against (tetanus, diphtheria)
        protocol["targetDisease"] = diseases
    res["protocolApplied"] = [protocol]
