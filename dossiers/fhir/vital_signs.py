"""Vital signs: R4's vitalsigns profile claimed only where the export meets it, and 'unknown'
when a vital sign says nothing."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from dossiers.fhir.common import DATA_ABSENT, OTHER_CDA_VALUES, OTHER_VALUES, UCUM
from dossiers.fhir.dates import fhir_datetime

VITAL_SIGN = "vital_sign"
_UNKNOWN_VALUE = {"coding": [{"system": DATA_ABSENT, "code": "unknown",
                              "display": "Unknown"}]}


def vital_signs_absent(kept: Sequence[Mapping], resources: Mapping[int, dict]) -> None:
    """R4 requires every vital sign to meet its vitalsigns profile, whose vs-2 says: no
    component nor member, then a value or a dataAbsentReason. A vital sign sent with no
    value and no reason (a CDA observation without its value element: a weight not taken)
    was an Observation the validator rejected; it says 'unknown' now, which is all the
    sender said. Checked once the members are linked (a blood pressure panel has its two
    measurements as members and needs no value of its own); never for one in error."""
    for e in kept:
        res = resources[e["id"]]
        if e.get("type") != VITAL_SIGN or res["resourceType"] != "Observation" or \
                res.get("status") == "entered-in-error" or res.get("component") or \
                res.get("hasMember") or "dataAbsentReason" in res or \
                any(k.startswith("value") and v for k, v in res.items()):
            continue
        res["dataAbsentReason"] = json.loads(json.dumps(_UNKNOWN_VALUE))


VITAL_SIGNS_PROFILE = "http://hl7.org/fhir/StructureDefinition/vitalsigns"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"


def other_values_label(entry: Mapping) -> str:
    """What the note of an observation's further values says they were: OBX-5 repetitions,
    or a CDA observation's value elements after its first (a CDA entry's key starts 'cda|':
    normalizers/cda/); saying 'OBX-5' of a CDA document named what it never had."""
    return OTHER_CDA_VALUES if str(entry.get("key") or "").startswith("cda|") \
        else OTHER_VALUES


def observed_period(res: dict, start: str | None, details: Mapping) -> None:
    """An observation made over a period (CDA effectiveTime low and high: a 24-hour urine
    from 08:00 to 08:00 the next day, a smoker from 1995 to 2015) as effectivePeriod; the
    end (details.period_high) was dropped, a day's collection read as an instant."""
    end = fhir_datetime(details.get("period_high"))
    if start and end:
        res.pop("effectiveDateTime", None)
        res["effectivePeriod"] = {"start": start, "end": end}


def effective_start(res: Mapping) -> str | None:
    """When an Observation was made: its effectiveDateTime, else its period's start."""
    period = res.get("effectivePeriod")
    return res.get("effectiveDateTime") or \
        (period.get("start") if isinstance(period, Mapping) else None)


def _vital_sign_period(res: dict) -> None:
    """A vital sign known to the year or the month ('2024': a weight a CDA history gives by
    year) as effectivePeriod from and to that year or month. R4's vitalsigns profile (vs-1)
    wants an effectiveDateTime precise to the day, and a day we do not hold is not
    invented: a Period of the year says 'during 2024', all the sender said."""
    when = res.get("effectiveDateTime")
    if when and len(when) < len("YYYY-MM-DD"):
        del res["effectiveDateTime"]
        res["effectivePeriod"] = {"start": when, "end": when}


def _quantity_of_vital_signs(value: Any) -> bool:  # noqa: ANN401
    """vitalsigns' valueQuantity: a number with its unit as UCUM (system and code)."""
    return isinstance(value, Mapping) and "value" in value and bool(value.get("unit")) \
        and value.get("system") == UCUM and bool(value.get("code"))


def _meets_vital_signs(res: Mapping) -> bool:
    """Whether an Observation meets R4's vitalsigns profile, checked as its rules say:
    category vital-signs, subject, effective (vs-1: a dateTime to the day), a value that is
    a UCUM Quantity alone, a value or a reason unless components or members (vs-2), each
    component a UCUM Quantity or a reason (vs-3). A profile claimed and not met fails the
    receiver's validation: a vital sign written as words, or in a unit outside UCUM, claims
    none."""
    if not any(c.get("system") == OBSERVATION_CATEGORY and c.get("code") == "vital-signs"
               for cat in res.get("category", ()) for c in cat.get("coding", ())):
        return False
    when = res.get("effectiveDateTime")
    if not res.get("subject") or not (res.get("effectivePeriod") or (
            when and len(when) >= len("YYYY-MM-DD"))):
        return False
    values = [k for k in res if k.startswith("value")]
    if values != ([] if not values else ["valueQuantity"]) or (
            values and not _quantity_of_vital_signs(res["valueQuantity"])):
        return False
    if not values and "dataAbsentReason" not in res and not res.get("component") \
            and not res.get("hasMember"):
        return False
    for part in res.get("component", ()):
        said = [k for k in part if k.startswith("value")]
        if said != ["valueQuantity"] and not (not said and "dataAbsentReason" in part):
            return False
        if said and not _quantity_of_vital_signs(part["valueQuantity"]):
            return False
    return True


def vital_signs_profiles(kept: Sequence[Mapping], resources: Mapping[int, dict],
                         urls: Mapping[int, str]) -> None:
    """Each vital sign with its effective time as R4 allows a vital sign's, and claiming
    the vitalsigns profile (meta.profile) when it meets it, and so do its members (the
    profile's hasMember are vital signs: a blood pressure panel whose systolic is written
    in words claims nothing). FR Core's vital-sign profiles are not claimed: their units
    and codes are narrower than what senders send us, and are not checked here."""
    met: dict[str, dict] = {}
    for e in kept:
        res = resources[e["id"]]
        if e.get("type") != VITAL_SIGN or res["resourceType"] != "Observation":
            continue
        _vital_sign_period(res)
        if _meets_vital_signs(res):
            met[urls[e["id"]]] = res
    for res in met.values():
        if all(m.get("reference") in met for m in res.get("hasMember", ())):
            res.setdefault("meta", {})["profile"] = [VITAL_SIGNS_PROFILE]
