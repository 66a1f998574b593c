"""Medications: route, dosage and timing (frequency, period, events), the dispense request of
a prescription and the MedicationDispense of what a pharmacy handed out."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from dossiers.fhir.codings import coded_concept, entry_concept, fhir_status
from dossiers.fhir.common import UCUM, as_number, fhir_code, fhir_decimal, fhir_string, full_url
from dossiers.fhir.dates import fhir_datetime
from dossiers.fhir.parties import party_references
from dossiers.fhir.sites import body_site
from dossiers.fhir.units import fhir_quantity


def medication_route(details: Mapping, base_url: str) -> dict | None:
    """The route with its system and name when the CDA gave them (details.route_coded:
    EDQM '20053000' Voie orale, NCI 'C38288'), else the bare code as sent."""
    coded = coded_concept(details.get("route_coded"), base_url)
    if coded:
        return coded
    route = fhir_code(details.get("route"))
    return {"coding": [{"code": route}]} if route else None


def _as_needed(conditions: Any, base_url: str) -> dict:  # noqa: ANN401
    """Dosage.asNeeded from a medication's preconditions ('as needed for' wheezing, 'si
    douleur'): the first as a CodeableConcept; without it the medication read as taken
    regularly. R4 allows one condition: the others stay in the store."""
    if not isinstance(conditions, list):
        return {}
    for condition in conditions:
        concept = coded_concept(condition, base_url)
        if concept:
            return {"asNeededCodeableConcept": concept}
    return {}


# FHIR R4 units-of-time (UCUM codes) and EventTiming (HL7 v3 TimingEvent codes it shares)
UNITS_OF_TIME = frozenset({"s", "min", "h", "d", "wk", "mo", "a"})
EVENT_TIMINGS = frozenset({"HS", "WAKE", "C", "CM", "CD", "CV", "AC", "ACM", "ACD", "ACV",
                           "PC", "PCM", "PCD", "PCV"})
# events that are the moment itself (at a meal): R4 tim-9 (a rule) forbids an offset from
# them; the offset the CDA gave stays in the dosage text ('offset 30 min')
_AT_EVENT = frozenset({"C", "CM", "CD", "CV"})
# the frequencies normalizers/cda/timing.py writes in details.frequency (PIVL_TS)
_TIMES_A_DAY = re.compile(r"(once|\d+ times) a day")
_TIMES_EVERY = re.compile(r"(\d+) times every (\d+(?:\.\d+)?) (\S+)")
_TIME_OF_DAY = re.compile(r"([01]\d|2[0-3]):[0-5]\d")
_EVERY = re.compile(r"every (\d+(?:\.\d+)?)(?:-(\d+(?:\.\d+)?))? ?(\S+)")
_DOSAGE_TEXT = (("sig", ""), ("dose", ""), ("frequency", ""), ("times_of_day", "at "),
                ("event", "when "), ("event_offset", "offset "), ("duration", "for "),
                ("rate", "rate "),
                ("max_dose", "at most "))

NO_SUBSTITUTION = "N"  # HL7 v3 substanceAdminSubstitution (2.16.840.1.113883.5.1070)


def dispense_request(res: dict, details: Mapping, low: str | None, high: str | None,
                     base_url: str) -> None:
    """What a prescription says to the pharmacist (eP-MED, IHE Pharm): the period it covers,
    the renewals allowed after the first dispense (numberOfRepeatsAllowed), the quantity to
    dispense, and whether the drug may be substituted ('non substituable': allowedBoolean
    false). They were read into the store and left out of the export."""
    dispense: dict[str, Any] = {}
    if low or high:
        dispense["validityPeriod"] = {"start": low, "end": high}
    renewals = details.get("renewals")
    if isinstance(renewals, int) and not isinstance(renewals, bool) and \
            0 <= renewals < 2**31:
        dispense["numberOfRepeatsAllowed"] = renewals
    quantity = details.get("quantity_prescribed")
    if isinstance(quantity, Mapping) and as_number(quantity.get("value")) is not None:
        dispense["quantity"] = fhir_quantity(fhir_decimal(str(as_number(quantity["value"]))),
                                             fhir_string(quantity.get("unit")), None)
    res["dispenseRequest"] = dispense or None
    substitution = details.get("substitution")
    if isinstance(substitution, Mapping):
        if fhir_code(substitution.get("code")) == NO_SUBSTITUTION:
            res["substitution"] = {"allowedBoolean": False}
        else:
            concept = coded_concept(substitution, base_url)
            if concept:
                res["substitution"] = {"allowedCodeableConcept": concept}


# what a medication says once for all the steps of its dosing (details.dosage_steps)
_WHOLE_DOSING = ("route", "route_coded", "preconditions", "max_dose")


def sited(dosages: list[dict], details: Mapping, base_url: str) -> list[dict]:
    """Each Dosage with the body site it is given at (details.approach_site: C-CDA
    Medication Activity approachSiteCode, 'left deltoid'), Dosage.site; it was dropped."""
    site = body_site(details.get("approach_site"), base_url)
    return [{**d, "site": site} for d in dosages] if site else dosages


def medication_dosages(details: Mapping, base_url: str) -> list[dict]:
    """The Dosages of a medication: one per step of a dosing in steps (details.dosage_steps:
    eP-MED's 'every 8 h for 2 days, then every 12 h for 4 days', Dosage.sequence), each with
    the route, condition and maximum dose said once for all; else the one it has. The steps
    were not exported: the prescription read no dose nor frequency."""
    steps = [s for s in details.get("dosage_steps") or () if isinstance(s, Mapping)] \
        if isinstance(details.get("dosage_steps"), list) else []
    if not steps:
        return [_dosage(details, base_url)]
    whole = {k: details[k] for k in _WHOLE_DOSING + ("patient_instructions",) if k in details}
    out = []
    for step in steps:
        dosage = _dosage({**whole, **step}, base_url)
        sequence = str(step.get("sequence") or "").strip()
        if sequence.isdigit() and 0 < int(sequence) < 2**31:
            dosage = {"sequence": int(sequence), **dosage}
        out.append(dosage)
    return out


def _dosage(details: Mapping, base_url: str) -> dict:
    """A medication's Dosage: its words (the free text sig, dose, frequency, timing event,
    duration, rate, maximum dose: all the CDA said), route, 'as needed', and the timing it gave
    structured ('3 times a day', 'every 8 h', 'au coucher' HS, 'for 5 d'). Only dose and
    frequency were exported, in words: the bedtime, the rate and the maximum dose a day
    were lost, and no reader could compute with the frequency."""
    said = {k: ", ".join(map(str, v)) if isinstance(v, list) else v
            for k, v in details.items()}
    unit = details.get("administration_unit")
    words = fhir_string(unit.get("display") or unit.get("text") or unit.get("code")) \
        if isinstance(unit, Mapping) else None
    if words and as_number(said.get("dose")) is not None:
        # C-CDA: dose 1, administrationUnitCode 'comprimé': one tablet, not '1' of nothing
        said["dose"] = f"{fhir_string(said['dose'])} {words}"
    text = "; ".join(f"{prefix}{fhir_string(said[k])}" for k, prefix in _DOSAGE_TEXT
                     if fhir_string(said.get(k)))
    out: dict[str, Any] = {"text": text or None}
    dose = _dose_and_rate(details.get("dose"), words)
    if dose:
        out["doseAndRate"] = [dose]
    timing = _timing_repeat(details)
    if timing:
        out["timing"] = {"repeat": timing}
    out["route"] = medication_route(details, base_url)
    out.update(_as_needed(details.get("preconditions"), base_url))
    out["patientInstruction"] = patient_instruction(details)  # 'au cours d'un repas'
    return out


def patient_instruction(details: Mapping) -> str | None:
    """What the patient is told (details.patient_instructions), as one string."""
    told = details.get("patient_instructions")
    said = [fhir_string(t) for t in (told if isinstance(told, list) else [told])]
    return " ".join(t for t in said if t) or None


_DOSE = re.compile(r"(\d{1,9}(?:\.\d{1,9})?)(?:-(\d{1,9}(?:\.\d{1,9})?))?(?: (\S+))?")


def _dose_and_rate(dose: Any, words: str | None) -> dict | None:  # noqa: ANN401
    """Dosage.doseAndRate of details.dose ('1 {tablet}', '500 mg', '1-2 {tablet}': a CDA
    doseQuantity PQ or IVL_PQ), its unit else the administration unit's words (C-CDA dose
    1 with administrationUnitCode 'comprimé'). The dose was in the dosage text only, and
    no reader could compute with it. None for what is no plain amount or range ('>=1').

    The unit of the dose itself is a CDA PQ's, UCUM by the standard: system and code when it
    parses as UCUM ('MBq', 'g/mL'), as an Immunization's dose has them. They were left out
    for a unit outside our lab unit table, and a reader could neither convert the dose nor
    compare it (R4 Quantity: the coded form is what systems compute with; the unit alone is
    for display). The administration unit's words are never a UCUM code."""
    m = _DOSE.fullmatch(fhir_string(dose) or "")
    if m is None:
        return None
    unit, declared = m.group(3) or words, m.group(3) is not None
    low = fhir_quantity(fhir_decimal(m.group(1)), unit, None, declared=declared)
    if m.group(2) is None:
        return {"doseQuantity": low}
    high = fhir_quantity(fhir_decimal(m.group(2)), unit, None, declared=declared)
    if float(m.group(2)) < float(m.group(1)):
        return None
    return {"doseRange": {"low": low, "high": high}}


def _timing_repeat(details: Mapping) -> dict:
    """Timing.repeat from details.frequency, details.event and details.duration, when they
    are in a form FHIR can say (units of time, EventTiming codes); {} otherwise (the words
    stay in the dosage text)."""
    repeat: dict[str, Any] = {}
    frequency = fhir_string(details.get("frequency")) or ""
    daily = _TIMES_A_DAY.fullmatch(frequency)
    every = _EVERY.fullmatch(frequency)
    times = _TIMES_EVERY.fullmatch(frequency)
    if times and times.group(3) in UNITS_OF_TIME and 0 < int(times.group(1)) < 2**31 \
            and as_number(times.group(2)) is not None:
        repeat.update(frequency=int(times.group(1)), period=fhir_decimal(times.group(2)),
                      periodUnit=times.group(3))
    elif daily and (daily.group(1) == "once" or 0 < int(daily.group(1).split()[0]) < 2**31):
        count = daily.group(1)
        repeat.update(frequency=1 if count == "once" else int(count.split()[0]), period=1,
                      periodUnit="d")
    elif every and every.group(3) in UNITS_OF_TIME and \
            all(as_number(g) is not None for g in every.group(1, 2) if g):
        repeat.update(frequency=1, period=fhir_decimal(every.group(1)))
        if every.group(2):
            repeat["periodMax"] = fhir_decimal(every.group(2))
        repeat["periodUnit"] = every.group(3)
    hours = details.get("times_of_day")
    if isinstance(hours, list) and hours and \
            all(isinstance(h, str) and _TIME_OF_DAY.fullmatch(h) for h in hours):
        repeat["timeOfDay"] = [f"{h}:00" for h in hours]
    events = [e.strip() for e in (fhir_string(details.get("event")) or "").split(",")]
    if events != [""] and all(e in EVENT_TIMINGS for e in events) \
            and "timeOfDay" not in repeat:
        # R4 tim-10 (a rule): hours or events, not both; the hours are kept, the events
        # stay in the dosage text. Both made the resource invalid
        repeat["when"] = events
        minutes = _offset_minutes(details.get("event_offset"))
        if minutes is not None and not _AT_EVENT & set(events):
            # '30 min' of AC: FHIR's offset, minutes from the event
            repeat["offset"] = minutes
    duration = (fhir_string(details.get("duration")) or "").split()
    if len(duration) == 2 and duration[1] in UNITS_OF_TIME and as_number(duration[0]):
        repeat["boundsDuration"] = {"value": fhir_decimal(duration[0]), "unit": duration[1],
                                    "system": UCUM, "code": duration[1]}
    return repeat


_MINUTES = {"s": 1 / 60, "min": 1, "h": 60, "d": 1440}
_OFFSET = re.compile(r"-?(\d+(?:\.\d+)?) (s|min|h|d)")


def _offset_minutes(offset: Any) -> int | None:  # noqa: ANN401
    """details.event_offset ('30 min', '-1 h': one quantity) as Timing.repeat.offset, whole
    minutes from the event (before or after is the event code's: AC, PC); None for a range
    or a unit of no fixed length."""
    m = _OFFSET.fullmatch(fhir_string(offset) or "")
    if m is None:
        return None
    minutes = float(m.group(1)) * _MINUTES[m.group(2)]
    return int(minutes) if minutes.is_integer() and minutes < 2**31 else None


_DISPENSED_QUANTITY = re.compile(r"\s*([+-]?\d+(?:[.,]\d+)?)(?:\s+(\S+))?\s*")


def fill_dispense(res: dict, entry: Mapping, details: Mapping, subject: dict,
                  base_url: str) -> None:
    """A dispense as a MedicationDispense (R4): the product, how many were handed out
    (details.dispensed_quantity, '2 30009000': the unit UCUM only when our table says so,
    an EDQM or CIP packaging code is no UCUM), when (whenHandedOver), by whom (the
    pharmacist and the pharmacy, details.dispensed_by), the posology handed out with it
    (details.dosage, IHE Pharm Dosage Instructions). It was a MedicationStatement, which
    says the patient takes a drug, with the quantity, the pharmacy and the posology
    dropped."""
    res.update(status=fhir_status(entry.get("status"), "MedicationDispense") or "unknown",
               medicationCodeableConcept=entry_concept(entry, base_url, "medication", details),
               subject=subject, whenHandedOver=fhir_datetime(entry.get("effective")),
               performer=_dispensers(details.get("dispensed_by")))
    m = _DISPENSED_QUANTITY.fullmatch(str(details.get("dispensed_quantity") or ""))
    if m is not None and as_number(m.group(1).replace(",", ".")) is not None:
        res["quantity"] = fhir_quantity(fhir_decimal(m.group(1).replace(",", ".")), m.group(2),
                                        None)
    dosing = details.get("dosage")
    if isinstance(dosing, Mapping) and dosing:
        res["dosageInstruction"] = sited(medication_dosages(dosing, base_url), dosing, base_url)
    lot = fhir_string(details.get("lot_number"))
    if lot:  # R4 holds a lot on a Medication only: said in words rather than dropped
        res["note"] = [{"text": f"lot: {lot}"}]


# Resources whose entry may hold the dispenses of its product (details.dispenses)
DELIVERED = frozenset({"MedicationStatement", "MedicationRequest", "Immunization"})


def deliveries(res: dict, entry: Mapping, details: Mapping, subject: dict, base_url: str,
               extras: dict[str, dict]) -> None:
    """The dispenses nested in a medication or a vaccination (details.dispenses: IHE PCC
    supply entries without a product of their own, CNAM-HR's 'delivered on, by, how many')
    -> one MedicationDispense each, of the entry's product, labelled as the entry is; a
    MedicationStatement derivedFrom them. They were dropped from the export: the pharmacy
    and the day a drug was handed out, said by the insurer's history, were nowhere."""
    said = details.get("dispenses")
    if not isinstance(said, list):
        return
    product = res.get("medicationCodeableConcept") or res.get("vaccineCode")
    for n, delivery in enumerate(d for d in said if isinstance(d, Mapping)):
        url = full_url("dispense", f"{entry.get('id')}/{n}")
        dispense: dict[str, Any] = {
            "resourceType": "MedicationDispense",
            "status": fhir_status(entry.get("status"), "MedicationDispense") or "unknown",
            "medicationCodeableConcept": product, "subject": subject,
            "whenHandedOver": fhir_datetime(fhir_string(delivery.get("time"))),
            "performer": _dispensers(delivery.get("by"))}
        m = _DISPENSED_QUANTITY.fullmatch(str(delivery.get("quantity") or ""))
        if m is not None and as_number(m.group(1).replace(",", ".")) is not None:
            dispense["quantity"] = fhir_quantity(fhir_decimal(m.group(1).replace(",", ".")),
                                                 m.group(2), None)
        if (res.get("meta") or {}).get("security"):
            dispense["meta"] = {"security": list(res["meta"]["security"])}
        extras[url] = dispense
        if res["resourceType"] == "MedicationStatement":
            res.setdefault("derivedFrom", []).append({"reference": url})


def _dispensers(party: Any) -> list[dict]:  # noqa: ANN401
    """MedicationDispense.performer: the pharmacist (a Practitioner by idNatPS) and the
    pharmacy (an Organization by its idNatSt, with its name); R4's performer has no
    onBehalfOf, so each is a performer of its own."""
    if not isinstance(party, Mapping):
        return []
    person, org = party_references(party)
    if org and "identifier" in org:
        org = {"type": "Organization", **org}
    return [{"actor": a} for a in (person, org) if a]
