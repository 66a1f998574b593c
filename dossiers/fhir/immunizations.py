"""Immunization: what a vaccination's CDA says besides the vaccine (lot, dose number, route,
dose, why it was not done)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dossiers.fhir.codings import coded_concept
from dossiers.fhir.common import as_number, fhir_decimal, fhir_string
from dossiers.fhir.medications import medication_route
from dossiers.fhir.units import fhir_quantity


def vaccination(res: dict, details: Mapping, base_url: str) -> None:
    """What a vaccination's CDA said besides the vaccine (details): the lot (traceability:
    a batch recall), the rank in its series (protocolApplied.doseNumber: '3e dose'), the
    route and dose, and why it was not done (statusReason: a refusal). All were read
    into the store and left out of the Immunization."""
    res["lotNumber"] = fhir_string(details.get("lot_number"))
    res["route"] = medication_route(details, base_url)
    dose = (fhir_string(details.get("dose")) or "").split()
    if 1 <= len(dose) <= 2 and as_number(dose[0]) is not None:
        res["doseQuantity"] = fhir_quantity(fhir_decimal(dose[0]),
                                            dose[1] if len(dose) > 1 else None,
                                            None, declared=True)
    if res["status"] == "not-done":
        res["statusReason"] = coded_concept(details.get("not_done_reason"), base_url)
        return
    number = details.get("dose_number")
    if isinstance(number, int) and not isinstance(number, bool) and 0 < number < 2**31:
        protocol: dict[str, Any] = {"doseNumberPositiveInt": number}
    elif isinstance(number, str) and fhir_string(number.strip()):
        protocol = {"doseNumberString": fhir_string(number.strip()[:20])}
    else:  # R4 protocolApplied needs its dose number: the diseases stay in the store
        return
    targets = details.get("target_diseases")
    diseases = [c for c in (coded_concept(t, base_url) for t in
                            (targets if isinstance(targets, list) else [])) if c]
    if diseases:  # eHDSI: what a combined vaccine protects against (tetanus, diphtheria)
        protocol["targetDisease"] = diseases
    res["protocolApplied"] = [protocol]
