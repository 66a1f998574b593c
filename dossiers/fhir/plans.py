"""Plans: a ServiceRequest's intent from the CDA moodCode, and a Goal with its target."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dossiers.fhir.codings import entry_concept
from dossiers.fhir.dates import fhir_datetime
from dossiers.fhir.values import observation_value

# A plan's CDA moodCode -> ServiceRequest.intent (a promise: a plan of care's; a goal is a
# Goal, resource_type)
INTENTS = {"INT": "plan", "RQO": "order", "PRP": "proposal", "PRMS": "directive",
           "ARQ": "order", "APT": "plan", "GOL": "plan"}
# Observation value[x] -> Goal.target.detail[x] (R4 allows these types only; a date, a
# period or no value leave the target without a detail)
_GOAL_DETAILS = {"valueQuantity": "detailQuantity", "valueRange": "detailRange",
                 "valueCodeableConcept": "detailCodeableConcept",
                 "valueString": "detailString", "valueBoolean": "detailBoolean",
                 "valueInteger": "detailInteger", "valueRatio": "detailRatio"}


def _fhir_date(value: str | None) -> str | None:
    """A FHIR date (Goal.startDate, target.dueDate are dates, not dateTimes): the day,
    month or year of ours."""
    when = fhir_datetime(value)
    return when.split("T")[0] if when else None


def goal(res: dict, entry: Mapping, details: Mapping, subject: dict, base_url: str,
         lifecycle: str) -> None:
    """A goal (CDA moodCode GOL): what it is about as its description, its value as the
    target (C-CDA Goal Observation: code the measure, value the detail: HbA1c at or below
    7 %), its effectiveTime's low the start and high the date it is due. It was a
    ServiceRequest for the measure (an HbA1c requested) and its target was dropped."""
    concept = entry_concept(entry, base_url, "plan", details)
    res.update(lifecycleStatus=lifecycle, description=concept, subject=subject,
               startDate=_fhir_date(entry.get("effective")))
    target: dict[str, Any] = {}
    if entry.get("value") is not None or entry.get("value_num") is not None:
        for key, value in observation_value(entry, details, base_url).items():
            if key in _GOAL_DETAILS:
                target = {"measure": concept, _GOAL_DETAILS[key]: value}
    due = _fhir_date(details.get("period_high"))
    if due:
        target["dueDate"] = due
    if target:
        res["target"] = [target]
