"""A result's value as the FHIR value[x] it is (quantity, ratio, range, concept, boolean,
date, time, period, string) and, when there is none, why (dataAbsentReason)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache
from typing import Any

from dossiers.fhir.codings import coding_of, fhir_status
from dossiers.fhir.common import (
    CODED_TYPES,
    COMPARATORS,
    DATA_ABSENT,
    TABLES,
    as_number,
    fhir_code,
    fhir_decimal,
    fhir_string,
)
from dossiers.fhir.dates import fhir_datetime
from dossiers.fhir.decimals import sent_decimal
from dossiers.fhir.ranges import declared_ucum
from dossiers.fhir.units import fhir_quantity
from normalizers.tabledata import read_csv_rows
from normalizers.units import to_ucum


def observation_value(entry: Mapping, details: Mapping, base_url: str) -> dict:
    """value[x] of an Observation: quantity, ratio (a titre), range, coded concept (a coded
    value sent as words alone: its text only, never a code), or string. No value: why, in
    dataAbsentReason (``_absent``)."""
    typed = _typed_value(entry) or _dr_period_value(entry, details)
    if typed:
        return typed
    number = as_number(entry.get("value_num"))
    compared = fhir_string(entry.get("comparator"))
    if number is not None and compared and compared != "=" and compared not in COMPARATORS:
        # HL7 SN '<>' (not equal): R4 Quantity.comparator has < <= >= > only; a Quantity
        # without it said the result WAS the number
        shown = fhir_string(entry.get("value")) or f"{compared}{fhir_decimal(repr(number))}"
        unit = fhir_string(entry.get("unit_original")) or fhir_string(entry.get("unit"))
        return {"valueString": f"{shown} {unit}" if unit and not shown.endswith(unit)
                else shown}
    if number is not None:
        # the sender's digits ('5.40'): R4 decimal precision is significant
        return {"valueQuantity": fhir_quantity(sent_decimal(entry.get("value"), number),
                                               entry.get("unit"),
                                               entry.get("unit_original"),
                                               entry.get("comparator"), declared_ucum(entry))}
    text = fhir_string(entry.get("value"))
    numeric = _sn_value(entry, details) or _rto_value(entry) or _ivl_value(entry)
    if numeric:
        return numeric
    coded = details.get("coded_value") or details.get("value_code")
    if isinstance(coded, Mapping):
        codings = [coding_of(c, s, d, base_url) for c, s, d in (
            (coded.get("code"), coded.get("system"), coded.get("display") or text),
            (coded.get("alt_code"), coded.get("alt_system"), coded.get("alt_display")),
            *((t.get("code"), t.get("system"), t.get("display"))
              for t in coded.get("translations") or () if isinstance(t, Mapping)))
            if fhir_code(c)]  # a CDA value's translations: the same answer in other systems
        # the sender's own words first: CWE.9, or a CDA value coded only in translation
        # (details.value_text: 'Non reactive' for 'Negative')
        concept_text = fhir_string(coded.get("original_text")) or \
            fhir_string(details.get("value_text")) or text
        if codings or concept_text:
            concept = {"coding": codings} if codings else {}
            return {"valueCodeableConcept": {**concept, "text": concept_text}}
    if text and str(entry.get("value_type") or "").upper() in CODED_TYPES:
        # a coded value sent with its words only (a CDA CD of originalText alone)
        return {"valueCodeableConcept": {"text": text}}
    if text:
        return {"valueString": text}
    return _absent(entry, details)


_DATE_TYPES = frozenset({"DT", "DTM", "TS"})  # HL7v2 DT, DTM, TS; CDA TS
_TIME = re.compile(r"([01]\d|2[0-3]):[0-5]\d(:[0-5]\d(\.\d+)?)?")
_INT32 = 2**31


def _dr_period_value(entry: Mapping, details: Mapping) -> dict | None:
    """An HL7v2 DR (a urine collection's period: details.period, its start and/or end) ->
    valuePeriod; it was a valueString 'start/end'. None (the text stays) when an end is
    one FHIR cannot hold whole (a time without offset, to the hour only)."""
    period = details.get("period")
    if str(entry.get("value_type") or "").upper() != "DR" or not isinstance(period, Mapping):
        return None
    out = {}
    for side in ("start", "end"):
        sent = fhir_string(period.get(side))
        if sent is None:
            continue
        when = fhir_datetime(sent)
        if when is None or ("T" in sent and "T" not in when):
            return None
        out[side] = when
    return {"valuePeriod": out} if out else None


def _typed_value(entry: Mapping) -> dict | None:
    """The values FHIR has a type of its own for, which were all valueString or a Quantity
    without unit: a boolean (CDA BL) -> valueBoolean; a date or time (HL7v2 DT/DTM/TS, CDA
    TS) -> valueDateTime when FHIR can hold it whole (a time without offset stays text);
    a time of day (HL7v2 TM) -> valueTime; a count (CDA INT, no unit) -> valueInteger."""
    kind = str(entry.get("value_type") or "").upper()
    text = fhir_string(entry.get("value"))
    if text is None:
        return None
    if kind == "BL" and text.lower() in ("true", "false"):
        return {"valueBoolean": text.lower() == "true"}
    if kind in _DATE_TYPES:
        when = fhir_datetime(text)
        if when and ("T" in when or "T" not in text):
            return {"valueDateTime": when}
    if kind == "IVL_TS":
        return _ivl_ts_value(text)
    if kind == "TM" and _TIME.fullmatch(text):
        return {"valueTime": text if text.count(":") == 2 else f"{text}:00"}
    number = as_number(entry.get("value_num"))
    if kind == "INT" and number is not None and number.is_integer() \
            and abs(number) < _INT32 and not fhir_string(entry.get("unit")) \
            and not entry.get("comparator"):
        return {"valueInteger": int(number)}
    return None


def _ivl_ts_value(text: str) -> dict | None:
    """A CDA IVL_TS value as the normalizer writes it ('2024-09-03' for one point,
    'start/end' with either side empty) -> valueDateTime, valuePeriod. It was a
    valueString: the IPS-FR estimated date of delivery, a period of exposure. None when a
    side is no date FHIR can hold whole, or the period ends before it starts (R4 per-1)."""
    if "/" not in text:
        when = fhir_datetime(text)
        return {"valueDateTime": when} if when and ("T" in when or "T" not in text) else None
    sides = text.split("/")
    if len(sides) != 2:
        return None
    period = {}
    for name, side in zip(("start", "end"), sides, strict=True):
        when = fhir_datetime(side) if side else None
        if side and (when is None or ("T" in side and "T" not in when)):
            return None
        if when:
            period[name] = when
    start, end = period.get("start", ""), period.get("end", "")
    common = min(len(start[:10]), len(end[:10]))  # '1990-05' to '1990' is no reversal
    if not period or start[:common] > end[:common]:
        return None
    return {"valuePeriod": period}


@cache
def _absent_reasons() -> dict[tuple[str, str], dict[str, str]]:
    return {(r["source"], r["code"]): r
            for r in read_csv_rows(TABLES / "fhir_data_absent.csv")}


def _absent(entry: Mapping, details: Mapping) -> dict:
    """dataAbsentReason of an Observation without value (fhir_data_absent.csv), with what the
    lab wrote instead of a value (details.value_withheld: 'Prélèvement coagulé', 'En
    cours') as its text. An entry in error gets none: what it held is no value at all."""
    status = entry.get("status")
    if fhir_status(status, "Observation") == "entered-in-error":
        return {}
    reasons = _absent_reasons()
    row = reasons.get(("nullFlavor", str(details.get("value_null_flavor") or "").upper())) \
        or (reasons.get(("held", "true")) if details.get("value_held") else None) \
        or reasons.get(("status", str(status or "")))
    if row is None:
        return {}
    return {"dataAbsentReason": {
        "coding": [{"system": DATA_ABSENT, "code": row["reason"], "display": row["display"]}],
        "text": fhir_string(details.get("value_withheld"))}}


def _sn_value(entry: Mapping, details: Mapping) -> dict | None:
    """An HL7v2 SN of two numbers (details.sn): '1:64', '1/64' (a titre) -> valueRatio,
    '10-20' -> valueRange (in the result's unit). A comparator before it, a unit beside a
    ratio, anything else ('2+'): left as the text it is."""
    sn = details.get("sn")
    if not isinstance(sn, Mapping) or sn.get("comparator") not in (None, "", "="):
        return None
    first, second = (_sn_number(sn.get(k)) for k in ("num1", "num2"))
    if first is None or second is None:
        return None
    if sn.get("separator") in (":", "/") and not fhir_string(entry.get("unit")) and second:
        return {"valueRatio": {"numerator": {"value": first},
                               "denominator": {"value": second}}}
    if sn.get("separator") == "-" and first <= second:
        unit, sent, declared = entry.get("unit"), entry.get("unit_original"), declared_ucum(entry)
        return {"valueRange": {"low": fhir_quantity(first, unit, sent, declared=declared),
                               "high": fhir_quantity(second, unit, sent, declared=declared)}}
    return None


def _sn_number(value: Any) -> float | None:  # noqa: ANN401
    text = fhir_string(value)
    if text is None or not re.fullmatch(r"[+-]?\d+(?:[.,]\d+)?", text):
        return None
    return as_number(text.replace(",", "."))


# a CDA IVL_PQ / IVL_INT / IVL_REAL value of two bounds as the normalizer writes it: '10-20'
_INTERVAL = re.compile(r"([+-]?\d+(?:\.\d+)?)-([+-]?\d+(?:\.\d+)?)")


def _ivl_value(entry: Mapping) -> dict | None:
    """A CDA interval of two numbers as the result (xsi:type IVL_PQ: '10-20' leucocytes per
    field) -> valueRange in the result's unit; it was a valueString. One bound only is a
    comparator and a number (value_num), a time interval (IVL_TS) is a valuePeriod
    (``_ivl_ts_value``)."""
    kind = str(entry.get("value_type") or "").upper()
    if not kind.startswith("IVL_") or kind == "IVL_TS":
        return None
    m = _INTERVAL.fullmatch(fhir_string(entry.get("value")) or "")
    low, high = (as_number(g) for g in m.groups()) if m else (None, None)
    if low is None or high is None or low > high:  # unread, or beyond a float: its text
        return None
    unit, sent, declared = entry.get("unit"), entry.get("unit_original"), declared_ucum(entry)
    return {"valueRange": {"low": fhir_quantity(low, unit, sent, declared=declared),
                           "high": fhir_quantity(high, unit, sent, declared=declared)}}


# a CDA RTO value as the normalizer writes it: '1/64', '5 mg/1 mL'
_RATIO = re.compile(r"([+-]?\d+(?:\.\d+)?)(?:\s+(\S+))?/([+-]?\d+(?:\.\d+)?)(?:\s+(\S+))?")


def _rto_value(entry: Mapping) -> dict | None:
    """A CDA ratio (xsi:type RTO, RTO_INT_INT, RTO_PQ_PQ: a titre) -> valueRatio, each term
    with its unit (UCUM, as CDA PQ units are, when we know it as such)."""
    if not str(entry.get("value_type") or "").upper().startswith("RTO"):
        return None
    m = _RATIO.fullmatch(fhir_string(entry.get("value")) or "")
    if m is None or not as_number(m.group(3)) or as_number(m.group(1)) is None:
        return None  # no denominator, or a term beyond a float: the ratio's text
    terms = []
    for number, unit in ((m.group(1), m.group(2)), (m.group(3), m.group(4))):
        ucum = to_ucum(unit).unit if unit else None
        terms.append(fhir_quantity(float(number), ucum, unit, declared=True))
    return {"valueRatio": {"numerator": terms[0], "denominator": terms[1]}}
