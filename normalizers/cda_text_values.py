"""A CDA result written as text (xsi:type ST, or an ED's inline text) that is a quantity.

Why: CDA has PQ and IVL_PQ for '<0,5 mg/L', but many French LIS and US EHRs write a result
below the limit of detection as text ('<0,5', '< 0.5 mg/L', '≥ 60'): filed as text it had no
number, fell out of every trend and was exported as a valueString, while the same result
sent in an HL7v2 SN ('<^0.5') is a comparator and a quantity. What is read here is only what
has one reading: a comparator and a number (the unit after it only when the units table
knows it), a number followed by a known unit, or a titre ('1/160'). A bare number stays
text, as it does in an HL7v2 ST without OBX-6 (a class, a stage, a score may be written
so); so does anything with words after the number that are no unit ('<5 colonies',
'> 3 croix') or whose digits could be grouped thousands ('1.250,5').
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import cache

from normalizers.tabledata import column_map
from normalizers.units import to_ucum

# a titre: 1, then ':' or '/', then the dilution ('1/160', '1 : 128'), as an HL7v2 LIS types it
_TITRE = re.compile(r"1\s*([:/])\s*(\d{1,9})")
_COMPARED = re.compile(r"(<=|>=|<|>|[\u2264\u2265\u2a7d\u2a7e])\s*(\S.*)")
# one number: digits, one decimal mark (point, or a French comma) and digits
_NUMBER_THEN_REST = re.compile(r"([+-]?(?:\d+(?:[.,]\d+)?|[.,]\d+))(?:\s*(\S.*))?")


@dataclass(frozen=True, slots=True)
class TextQuantity:
    """What the text says: comparator ('<', '<=', '>', '>=' or None), the number, and the
    unit in UCUM with the unit as written (both None when the text gives none)."""

    comparator: str | None
    number: Decimal
    unit: str | None
    unit_sent: str | None


@cache
def _signs() -> dict[str, str]:
    """'≤' -> '<=', '≥' -> '>=' (tables/comparator_signs.csv, shared with HL7v2)."""
    return column_map("comparator_signs", "sign", "comparator")


def text_quantity(text: str) -> TextQuantity | None:
    """The quantity ``text`` spells when it has one reading, else None (see the module)."""
    text = text.strip()
    m = _COMPARED.fullmatch(text)
    comparator = None
    if m is not None:
        comparator = _signs().get(m.group(1), m.group(1))
        text = m.group(2)
    n = _NUMBER_THEN_REST.fullmatch(text)
    if n is None:
        return None
    unit = unit_sent = None
    if n.group(2):
        unit_sent = n.group(2).strip()
        unit, known = to_ucum(unit_sent)
        if not known:
            return None  # words after the number: no unit we know, not a quantity
    elif comparator is None:
        return None  # a bare number in a text value may be a class or a stage
    try:
        number = Decimal(n.group(1).replace(",", "."))
    except InvalidOperation:  # pragma: no cover - the pattern admits only numbers
        return None
    return TextQuantity(comparator, number, unit, unit_sent)


def text_titre(text: str) -> tuple[str, str] | None:
    """(separator, dilution) of a titre written as text ('1/160', '1:128'), as HL7v2 reads
    an ST titre into an SN '^1^/^160'; None for anything else or a dilution of 0."""
    m = _TITRE.fullmatch(text.strip())
    if m is None or int(m.group(2)) == 0:
        return None
    return m.group(1), str(int(m.group(2)))
