"""PQ, IVL, RTO readers: a quantity, ratio or range as text, with its UCUM unit."""

from __future__ import annotations

from decimal import Decimal

from normalizers.cda.times import iso_value
from parsers.cda.model import INT, IVL, PQ, REAL, RTO, TS, Value


def period_text(value: IVL) -> str | None:
    """An IVL_TS value as 'start/end' in ISO form (either side may be empty)."""
    if value.value:
        return iso_value(value.value) or None
    low = iso_value(value.low.value) if isinstance(value.low, TS) and value.low.value else ""
    high = iso_value(value.high.value) if isinstance(value.high, TS) and value.high.value \
        else ""
    return f"{low}/{high}" if low or high else None


UCUM_OID = "2.16.840.1.113883.6.8"


def pq_parts(pq: PQ) -> tuple[str, Decimal | None, str]:
    """(value as written, its number, unit as sent) of a PQ. A PQ whose unit is no UCUM
    unit is sent by C-CDA as a nullFlavor (OTH) carrying its value in a translation, the
    unit in that translation's code (UCUM) or words ('THOUS/MCL'): the value was lost.
    The value is stripped of the blanks some senders pad it with (' 16.00': Italian CDA2)."""
    if pq.value or not pq.translations:
        return pq.value.strip(), pq.number, pq.unit
    for t in pq.translations:
        if t.value:
            unit = t.code if t.code and t.code_system == UCUM_OID else \
                t.original_text or t.code
            return t.value.strip(), t.number, unit
    return pq.value.strip(), pq.number, pq.unit


def _bound(value: Value | None) -> str:
    """The number a range bound says ('' for none), read in a translation when the bound
    itself is a nullFlavor (C-CDA non-UCUM units).

    The text only, as ``pq_parts`` reads it: not through ``pq_parts``, which also parses
    the value as a Decimal, unused here (two per result of a CR-BIO, low and high)."""
    if isinstance(value, PQ):
        if value.value or not value.translations:
            return value.value.strip()
        for t in value.translations:
            if t.value:
                return t.value.strip()
        return value.value.strip()
    return value.value.strip() if isinstance(value, (INT, REAL)) else ""


def ratio_text(value: RTO) -> str | None:
    """'1/64' (a titer), '5 mg/1 mL': a ratio's terms with their units when they are not 1."""
    terms = []
    for term in (value.numerator, value.denominator):
        if isinstance(term, PQ):
            unit = term.unit if term.unit not in ("", "1") else ""
            terms.append(f"{term.value} {unit}".strip())
        elif isinstance(term, (INT, REAL)):
            terms.append(term.value)
        else:
            terms.append("")
    return "/".join(terms) if all(terms) else None


def quantity_text(pq: PQ) -> str:
    return f"{pq.value} {pq.unit}".strip() if pq.value else ""


def range_text(value: Value | None) -> str | None:
    if not isinstance(value, IVL):
        return quantity_text(value) if isinstance(value, PQ) else None
    low, high = _bound(value.low), _bound(value.high)
    if low and high:
        return f"{low}-{high}"
    if low:
        return f">{'=' if value.low_inclusive else ''}{low}"
    if high:
        return f"<{'=' if value.high_inclusive else ''}{high}"
    center = value.center
    if isinstance(center, (PQ, INT, REAL)) and center.value:  # a dose 'about 2 tablets'
        unit = center.unit if isinstance(center, PQ) and center.unit != "1" else ""
        return f"{center.value} {unit}".strip()
    if value.value and value.unit and value.unit != "1":  # a dose of '40 [IU]'
        return f"{value.value} {value.unit}"
    return value.value or None
