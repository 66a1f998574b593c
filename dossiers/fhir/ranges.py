"""A result's reference range: kept as text, with low/high when we read its limits (in the
spellings real senders use) and its unit is the result's."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from dossiers.fhir.common import decoded_json, fhir_string
from dossiers.fhir.decimals import sent_decimal
from dossiers.fhir.units import fhir_quantity
from normalizers.units import to_ucum

# a limit: a number ('3,5'), digits grouped by blanks as French reports print counts
# ('150 000'), or a power of ten as colony counts are written ('10^3', '10E5', '1,5x10^4')
_NUMBER = (r"(?:10\^[+-]?\d{1,2}|\d{1,3}(?:[ \u00a0\u202f]\d{3})+(?:,\d+)?|[+-]?\d+(?:[.,]\d+)?"
           r"(?:\s*[x\u00d7*]\s*10\^[+-]?\d{1,2}|[eE][+-]?\d{1,2})?)")
# 'low-high' and the spellings of other senders ('3,5 à 5,0', a Nova analyser's '7.31 to 7.41',
# '3.5^5.1' (OBX-7 sent as low^high components), '70_105', 'de 70 à 105' and the 'a' of
# ASCII-only converters, '135 a 145')
_RANGE = re.compile(rf"\s*(?:de\s+)?({_NUMBER})\s*(?:-|\u2013|to|à|a|\^|_)\s*({_NUMBER})\s*",
                    re.IGNORECASE)
# one-sided ranges ('<5', '< 5', '>= 60', '< ou = 5' of ASCII-only converters): a high or a
# low limit alone
_BOUND = re.compile(rf"\s*(<=|>=|\u2264|\u2265|<\s*ou\s*=|>\s*ou\s*=|<|>)\s*({_NUMBER})\s*",
                    re.IGNORECASE)
# a range printed in brackets, as French reports print it ('[3,5-5,1]', '(0,50 - 1,00)')
_ENCLOSED = re.compile(r"\s*(?:\[(.*)\]|\((.*)\))\s*")
# the same in French words, as labs print them ('inf à 0,5', 'sup. à 60', 'inférieur ou égal
# à 5'): 'inf...' is a high limit, 'sup...' a low one
_BOUND_WORDS = re.compile(rf"\s*(inf|sup)(?:\.|[ée]rieur)?(?:\s+ou\s+[ée]gal)?\s*[àa]\s*"
                          rf"({_NUMBER})\s*", re.IGNORECASE)
# a range followed by its unit ('45-84 µmol/l', '< 5 mg/L', '[3,5-5,1] mmol/L'): the unit
# is the last word
_RANGE_UNIT = re.compile(r"(.*[\d\])])\s+(\S*[^\d\s.,]\S*)\s*")
# ... or glued to the number ('35-45%', '3.5-5.1mmol/L', '<5mg/L'), starting with a letter
# (never the 'e' or 'x' of a power of ten), '%' or '/'
_RANGE_GLUED_UNIT = re.compile(r"(.*?\d)(?=[^\W\d_eExX]|[%/])(\S*[^\d\s.,]\S*)\s*")
# a limit that is a power of ten: mantissa (1 when '10^n') and exponent
_POWER = re.compile(r"(?:([+-]?\d+(?:[.,]\d+)?)\s*(?:[x\u00d7*]\s*10\^|[eE])|10\^)([+-]?\d{1,2})")


def reference_range(entry: Mapping) -> list[dict]:
    """referenceRange: the text as sent, and its low/high (in the result's unit) when the
    text is a range we read: 'low-high' in its spellings, one-sided ('<5', 'inf à 5'), a
    power of ten ('<10^3'), followed or not by a unit. A unit written in the range is taken
    only when it is the result's (the same UCUM unit); another unit, or one we cannot read,
    leaves the text alone: a limit is never given in a unit it was not written in."""
    text = fhir_string(entry.get("reference_range"))
    if not text:
        return []
    rng: dict[str, Any] = {"text": text}
    unit, sent = entry.get("unit"), entry.get("unit_original")
    limits = _range_limits(text)
    for pattern in (_RANGE_UNIT, _RANGE_GLUED_UNIT):
        if limits is None and (m := pattern.fullmatch(text)) is not None \
                and _same_unit(m.group(2), unit, sent):
            limits = _range_limits(m.group(1))
    if limits is not None:
        for side, number in limits.items():
            rng[side] = fhir_quantity(number, unit, sent, declared=declared_ucum(entry))
    return [rng]


def declared_ucum(entry: Mapping) -> bool:
    """Whether the entry's unit was declared UCUM: a CDA PQ's by the standard, an HL7v2
    unit unless the normalizer found it neither UCUM nor declared so
    (details.unit_unmapped)."""
    details = decoded_json(entry.get("details"))
    return not (isinstance(details, Mapping) and details.get("unit_unmapped"))


def _range_limits(text: str) -> dict[str, float] | None:
    """{'low': .., 'high': ..} (either or both) that a range's text says, in brackets or
    not; None if unread, or if a limit is too large for a number (JSON has no Infinity:
    the text alone says it)."""
    limits = _read_limits(text)
    if limits is None or not all(map(math.isfinite, limits.values())):
        return None
    return limits


def _read_limits(text: str) -> dict[str, float] | None:
    """The limits a range's text says, as numbers (``_range_limits``)."""
    if (m := _ENCLOSED.fullmatch(text)) is not None:
        text = m.group(1) if m.group(1) is not None else m.group(2)
    if (m := _RANGE.fullmatch(text)) is not None:
        low, high = (_limit(g) for g in m.groups())
        return {"low": low, "high": high} if low <= high else None
    if (m := _BOUND.fullmatch(text)) is not None:
        return {"high" if m.group(1)[0] in "<\u2264" else "low": _limit(m.group(2))}
    if (m := _BOUND_WORDS.fullmatch(text)) is not None:
        return {"high" if m.group(1).lower() == "inf" else "low": _limit(m.group(2))}
    return None


def _limit(number: str) -> float:
    """A limit as written ('3,5', '10^3', '1,5x10^4', '1E5', '150 000') as its number, with
    the digits it was written with ('3.50': R4 decimal precision is significant)."""
    number = re.sub(r"[ \u00a0\u202f]", "", number.strip())
    m = _POWER.fullmatch(number)
    if m is None:
        return sent_decimal(number, float(number.replace(",", ".")))
    mantissa = (m.group(1) or "1").replace(",", ".")
    return float(f"{mantissa}e{int(m.group(2))}")


def _same_unit(written: str, unit: str | None, sent: str | None) -> bool:
    """Whether the unit written after a range is the result's: the same UCUM unit, or the
    unit exactly as the result was sent with (a unit we do not map)."""
    if not unit:
        return False
    if written == fhir_string(sent) or written == unit:
        return True
    read = to_ucum(written)
    return read.mapped and read.unit == unit
