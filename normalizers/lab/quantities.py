"""Quantities written as text (ST, TX, FT): a number with a comparator, a unit or a titre read from
a text value."""

from __future__ import annotations

import re

from normalizers.lab.common import NUMBER, Ctx
from normalizers.lab.numeric import (
    COMPARED,
    EXPONENT,
    POWER_TEXT,
    comparator_of,
    number_with_unit,
    parse_number,
)
from normalizers.model import Entry


def text_quantity(ctx: Ctx, entry: Entry, vtype: str, where: str) -> None:
    """A text value (ST, TX, FT) that is a number, or a comparator and a number, sent with
    its unit (OBX-6): a quantity, as an NM or SN would have said. Blood gas analysers and
    middleware type every value FT or ST ('OBX|1|FT|^^^pCO2^pCO2^NOVABIO||40.0|mmHg|...');
    read as text, the result fell out of every trend and never met the same result sent
    as a number by another channel (dedupe level 4). The value and its type stay as sent;
    without a unit a number in a text value may be a class or a stage, and stays text."""
    value = entry.value.strip() if entry.value else ""
    m = COMPARED.fullmatch(value)
    number = m.group(2) if m is not None else value
    if not (NUMBER.fullmatch(number.replace(",", ".", 1)) or EXPONENT.fullmatch(number)
            or POWER_TEXT.fullmatch(number)):
        return  # a viral load typed ST '1.2E+03' 'copies/mL' is a number too, and a colony
        # count '10^5' (escaped '10\S\5') 'UFC/mL' one
    num = parse_number(ctx, number, where)
    if num is None:
        return
    _set_quantity(ctx, entry, num, m, where)
    ctx.warnings.append(f"{where}: number with a unit sent as {vtype}, read as a number")


def _set_quantity(ctx: Ctx, entry: Entry, num: float, m: re.Match | None,
                  where: str) -> None:
    """The number read from a text value, and its comparator when ``m`` (``COMPARED``)
    found one ('=' says nothing more than the number)."""
    entry.value_num = num
    if m is not None:
        comparator = comparator_of(ctx, m.group(1), where)
        if comparator != "=":
            entry.comparator = comparator


QUANTITY_STARTS = frozenset("0123456789<>=+-.,\u2264\u2265\u2a7d\u2a7e")


# A titre written as text: 1, then ':' or '/', then the dilution ('1/160', '1 : 128')
_TITRE = re.compile(r"\s*1\s*([:/])\s*(\d+)\s*")


def text_titre(ctx: Ctx, entry: Entry, vtype: str, where: str) -> None:
    """A text value (ST, TX, FT) that is a titre, '1/160' or '1:128' (a serology, as a LIS
    prints it): the ratio an SN '^1^/^160' says, in ``details['sn']`` (the FHIR export's
    valueRatio), said. It was text alone, a valueString no trend or comparison reads. The
    value and its type stay as sent."""
    m = _TITRE.fullmatch(entry.value or "")
    if m is None or int(m.group(2)) == 0:
        return
    entry.details["sn"] = {"comparator": "", "num1": "1", "separator": m.group(1),
                           "num2": m.group(2)}
    ctx.warnings.append(f"{where}: a titre (1:n) sent as {vtype}, read as a ratio (SN)")


def text_with_unit(ctx: Ctx, entry: Entry, vtype: str, where: str) -> None:
    """A text value (ST, TX, FT) without OBX-6 that is a number, or a comparator and a
    number, followed by a unit the units table knows ('12,5 g/dL', '< 0,5 mg/L'): the
    quantity it spells, as ``text_quantity`` reads one whose unit is in OBX-6. The value
    and its type stay as sent."""
    value = entry.value.strip() if entry.value else ""
    m = COMPARED.fullmatch(value)
    num = number_with_unit(ctx, m.group(2) if m is not None else value, entry, where)
    if num is None:
        return
    _set_quantity(ctx, entry, num, m, where)
