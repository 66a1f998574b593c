"""Quantities and their units: UCUM system and code only for a unit of our table or one that
parses as UCUM (ucum_atoms.csv), else the unit as text."""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from dossiers.fhir.common import COMPARATORS, TABLES, UCUM, fhir_string
from normalizers.tabledata import read_csv_rows, table


@cache
def _ucum_codes() -> frozenset[str]:
    """The UCUM codes our unit table maps to: a unit among them is exported as UCUM."""
    return frozenset(r["ucum"] for r in table("ucum_units"))


def fhir_quantity(number: float, unit: str | None, unit_original: str | None,
                  comparator: str | None = None, declared: bool = False) -> dict:
    """A Quantity: the unit as sent for people; UCUM system and code when the unit is a UCUM
    code of our table, or was declared UCUM (``declared``) and is one (``is_ucum``)."""
    q: dict[str, Any] = {"value": number}
    if comparator in COMPARATORS:
        q["comparator"] = comparator
    unit = fhir_string(unit)
    if unit:
        q["unit"] = fhir_string(unit_original) or unit
        if unit in _ucum_codes() or (declared and is_ucum(unit)):
            q["system"], q["code"] = UCUM, unit
    return q


# UCUM grammar (unitsofmeasure.org, 'The Unified Code for Units of Measure' §2-§7): a term of
# components joined by '.' or '/', each a unit symbol with an exponent, an annotation, a
# factor or a parenthesised term. Printable US-ASCII only (§1: characters 33 to 126; no
# space): an annotation {comprimé} or {red cells} is no UCUM ({tbl}, {cells} are)
_UCUM_COMPONENT = re.compile(r"(10[*^]|(?:[A-Za-z%']|\[[^\[\]{}]*\])+)?([+-]?\d+)?(\{[!-z|~]*\})?")
_PREFIXES = ("da", "Ki", "Mi", "Gi", "Ti", *"YZEPTGMkhdcmunpfazy")


@cache
def _ucum_atoms() -> dict[str, bool]:
    return {r["atom"]: r["metric"] == "Y"
            for r in read_csv_rows(TABLES / "ucum_atoms.csv")}


def is_ucum(unit: str) -> bool:
    """Whether ``unit`` is a UCUM expression of the atoms of ucum_atoms.csv ('mGy.cm',
    '[diop]', '{pack}/a', 'mmol/(24.h)'): a unit a sender declared UCUM (a CDA PQ's, an
    OBX-6 coded UCUM) that our unit table does not list."""
    rest = unit[1:] if unit.startswith("/") else unit
    return bool(rest) and len(unit) <= 60 and _ucum_term(rest) == ""


def _ucum_term(text: str) -> str | None:
    """What follows the UCUM term at the start of ``text`` ('' when it is all), or None."""
    while True:
        if text.startswith("("):
            inner = _ucum_term(text[1:])
            if inner is None or not inner.startswith(")"):
                return None
            text = inner[1:]
        else:
            m = _UCUM_COMPONENT.match(text)
            if not m.group(0) or not _ucum_symbol(m.group(1), m.group(2)):
                return None
            text = text[m.end():]
        if not text or text[0] not in "./":
            return text
        text = text[1:]


def _ucum_symbol(symbol: str | None, exponent: str | None) -> bool:
    """A unit symbol: an atom, or a prefix and a metric atom; no symbol: a factor ('24' in
    '/24.h') or an annotation alone ('{cells}')."""
    if symbol is None:
        return True
    if symbol in ("10*", "10^"):
        return exponent is not None
    atoms = _ucum_atoms()
    if symbol in atoms:
        return True
    return any(symbol.startswith(p) and atoms.get(symbol[len(p):]) for p in _PREFIXES)
