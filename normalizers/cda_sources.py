"""Who stated an entry's fact (CDA R2 entry-level informant): the patient ('patient-reported
allergy'), a relative (a mother reporting her child's vaccinations), or a professional.

The informant of a clinical statement tells how far the fact can be trusted: an allergy the
patient remembers is not one a clinician saw, a vaccination the mother recalls is not one
read from the carnet. It was dropped: every entry looked first-hand. Kept in the entry's
details as ``informants`` (and exported as FHIR asserter / informationSource / primarySource).
No names are kept (no names of third parties in the details): the source, the relationship
code, and a professional's ids (RPPS...) and organization.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from normalizers.codes import oid_names
from normalizers.tabledata import table

PATIENT = "patient"
RELATIVE = "relative"
PROFESSIONAL = "professional"


@cache
def _patient_roles() -> frozenset[tuple[str, str]]:
    """(attribute, value) pairs of tables/cda_informant_sources.csv that name the patient."""
    return frozenset((r["attribute"], r["value"].upper()) for r in
                     table("cda_informant_sources") if r["source"] == PATIENT)


def informant(part: Any,  # noqa: ANN401 - a parsed Participation
              patient_ids: frozenset[str] = frozenset()) -> dict[str, Any] | None:
    """One informant as {source, relationship | ids, organization}; None when it names no one
    (an informant element left empty by a template engine). One named by an id of the
    patient's (``patient_ids``: recordTarget/patientRole/id) is the patient."""
    entity = part.entity
    if entity is None:
        return None
    if patient_ids and any(i.key in patient_ids for i in entity.ids if i.root):
        return {"source": PATIENT}
    if entity.role == "assignedEntity":
        out: dict[str, Any] = {"source": PROFESSIONAL,
                               "ids": [i.key for i in entity.ids if i.root]}
        if entity.organization is not None:
            out["organization"] = [i.key for i in entity.organization.ids if i.root]
        if entity.code is not None and entity.code.code:
            out["role"] = entity.code.code.strip()
        return {k: v for k, v in out.items() if v}
    if entity.role != "relatedEntity":
        return None
    code = entity.code.code.strip() if entity.code is not None else ""
    roles = _patient_roles()
    if ("classCode", entity.class_code.strip().upper()) in roles or \
            ("code", code.upper()) in roles:
        return {"source": PATIENT}
    out = {"source": RELATIVE}
    if code:
        system = entity.code.code_system.strip()
        out["relationship"] = {k: v for k, v in (
            ("code", code), ("system", oid_names().get(system) or system),
            ("display", entity.code.display)) if v}
    return out


def informants(parts: list, patient_ids: frozenset[str] = frozenset()) -> list[dict[str, Any]]:
    """Every informant of a statement that names someone, in the order sent."""
    return [i for i in (informant(p, patient_ids) for p in parts) if i is not None]
