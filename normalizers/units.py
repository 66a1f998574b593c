"""Units as sent (OBX-6) to UCUM, from the data table tables/ucum_units.csv.

Lookup is exact first, then on a normalized spelling (case, µ/μ -> u, blanks, ²/³, the
multiplication sign × -> x as in 'x10^9/L'). The
normalized lookup only uses spellings that cannot be confused: 'G/L' (giga per litre, i.e.
10*9/L) and 'g/L' (grams per litre) fold to the same text, so such folds are dropped from the
normalized index and an unknown variant stays unmapped rather than being mapped wrongly.
"""

from __future__ import annotations

from functools import cache, lru_cache
from typing import NamedTuple

from normalizers.tabledata import table

_FOLD = str.maketrans({"µ": "u", "μ": "u", "²": "2", "³": "3", " ": None, "^": "*", "×": "x"})


class UnitResult(NamedTuple):
    unit: str  # UCUM code, or the text as sent when unmapped
    mapped: bool


def normalize_spelling(sent: str) -> str:
    """The folded spelling used for the second lookup."""
    return sent.translate(_FOLD).lower()


@cache
def _exact() -> dict[str, str]:
    return {row["sent"]: row["ucum"] for row in table("ucum_units")}


@cache
def _folded() -> dict[str, str]:
    seen: dict[str, set[str]] = {}
    for row in table("ucum_units"):
        seen.setdefault(normalize_spelling(row["sent"]), set()).add(row["ucum"])
        seen.setdefault(normalize_spelling(row["ucum"]), set()).add(row["ucum"])
    return {k: next(iter(v)) for k, v in seen.items() if len(v) == 1}


@cache
def _not_folded() -> frozenset[str]:
    """Spellings that are UCUM units of their own in their case (tables/
    ucum_units_not_folded.csv): 'A' (ampere) was read as 'a' (years), 'uA' (microampere) as
    arbitrary units."""
    return frozenset(row["sent"] for row in table("ucum_units_not_folded"))


@lru_cache(maxsize=2048)
def to_ucum(sent: str) -> UnitResult:
    """UCUM for a unit as sent; unknown units come back as sent with ``mapped=False``."""
    text = sent.strip()
    hit = _exact().get(text)
    if hit is None and text not in _not_folded():
        hit = _folded().get(normalize_spelling(text))
    if hit is None:
        return UnitResult(text, False)
    return UnitResult(hit, True)
