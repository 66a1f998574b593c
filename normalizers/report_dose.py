"""The radiation dose printed on an imaging report: French reports must give it (arrêté du
22 septembre 2006), as 'PDL : 245 mGy.cm', 'CTDIvol = 6,1 mGy', 'Produit Dose.Surface :
0,35 Gy.cm²', 'PDL total : 555 mGy.cm'.

Labels and units come from tables/dose_labels.csv and tables/dose_units.csv; a value is read
only with a unit of its label's quantity (a PDL in mGy is a misprint or a misread: warned, not
read). A dose is a fact of the dossier, so nothing doubtful is coded: a number read by OCR
below the confidence threshold, or several different values of one quantity with no 'total'
among them (a CT in several acquisitions), are warned about and not read. Each quantity is a
field 'dose_<quantity>' (dlp, ctdivol, dap, effective) with its ``unit`` (UCUM) and its value
with a full stop for decimals. Warnings name the quantity and page, never the values.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import Any

from normalizers.report_birads import ReadLine
from normalizers.tabledata import table

_NUMBER = r"(?<![0-9,.])([0-9]{1,3}(?:[ \u202f\u00a0][0-9]{3})+|[0-9]+)(?:[.,]([0-9]+))?"
_REACH = 40  # characters after a label where its value may be
_TOTAL = re.compile(r"(?<![a-z])(?:total|totale|cumule|cumulee?|global|globale)(?![a-z])")
_QUANTITY_NAMES = {"dlp": "dose-length product", "ctdivol": "CTDIvol",
                   "dap": "dose-area product", "effective": "effective dose"}


@dataclass
class _Read:
    quantity: str
    value: str
    unit: str
    total: bool
    page: int
    source: str
    confidence: float


@cache
def _labels() -> tuple[re.Pattern[str], dict[str, str]]:
    rows = {" ".join(r["term"].lower().split()): r["quantity"] for r in table("dose_labels")}
    alternation = "|".join(re.escape(t).replace(r"\ ", r"\s+").replace(r"\.", r"\s*[.\-]?\s*")
                           for t in sorted(rows, key=len, reverse=True))
    return re.compile(rf"(?<![a-z0-9])(?:{alternation})(?![a-z0-9])"), rows


@cache
def _units() -> tuple[re.Pattern[str], list[dict[str, str]]]:
    rows = list(table("dose_units"))
    rows.sort(key=lambda r: len(r["term"]), reverse=True)
    parts = []
    for n, r in enumerate(rows):
        unit = re.escape(r["term"]).replace(r"\.", r"\s*[.*x·×]?\s*")
        parts.append(f"(?P<u{n}>{unit})")
    return re.compile(rf"\s*(?:{'|'.join(parts)})(?![a-zA-Z0-9²])", re.IGNORECASE), rows


def _key(label: str) -> str:
    return " ".join(re.sub(r"\s*([.\-])\s*", r"\1", label).split())


def doses(lines: list[ReadLine], min_confidence: float) \
        -> tuple[dict[str, dict[str, Any]], list[str]]:
    """The 'dose_<quantity>' fields printed on a report's ``lines``, and the warnings."""
    labels, quantities = _labels()
    units, unit_rows = _units()
    reads: list[_Read] = []
    warnings: list[str] = []
    for line in lines:
        found = list(labels.finditer(line.folded))
        for k, m in enumerate(found):
            quantity = quantities.get(_key(m.group(0))) or _by_pattern(m.group(0), quantities)
            if quantity is None:
                continue
            stop = min(m.end() + _REACH, found[k + 1].start() if k + 1 < len(found)
                       else len(line.text))
            number = re.compile(_NUMBER).search(line.text, m.end(), stop)
            if number is None:
                continue
            unit = units.match(line.text, number.end())
            if unit is None:
                continue
            row = unit_rows[int(next(g for g, v in unit.groupdict().items() if v)[1:])]
            if row["quantity"] != quantity:
                warnings.append(f"REPORT_DOSE_UNIT: a {_QUANTITY_NAMES[quantity]} on page "
                                f"{line.page} is printed in a unit of another quantity; "
                                f"not read")
                continue
            whole = re.sub(r"\D", "", number.group(1))
            value = whole + (f".{number.group(2)}" if number.group(2) else "")
            confs = [c for a, b, c in line.spans if a < unit.end() and b > number.start()]
            total = bool(_TOTAL.search(line.folded, max(0, m.start() - 20), number.start()))
            reads.append(_Read(quantity, value, row["ucum"], total, line.page, line.source,
                               min(confs) if confs else 100.0))
    return _fields(reads, min_confidence, warnings), warnings


def _by_pattern(label: str, quantities: dict[str, str]) -> str | None:
    flat = re.sub(r"[\s.\-]+", "", label)
    return next((q for t, q in quantities.items() if re.sub(r"[\s.\-]+", "", t) == flat), None)


def _fields(reads: list[_Read], min_confidence: float, warnings: list[str]) \
        -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for quantity, name in _QUANTITY_NAMES.items():
        mine = [r for r in reads if r.quantity == quantity]
        if not mine:
            continue
        unsure = [r for r in mine if r.confidence < min_confidence]
        if unsure:
            warnings.append(f"REPORT_DOSE_UNCERTAIN: a {name} on page {unsure[0].page} was read "
                            f"by OCR with confidence {unsure[0].confidence:.0f} (below "
                            f"{min_confidence:.0f}); not read")
            continue
        chosen = [r for r in mine if r.total] or mine
        if len({(r.value, r.unit) for r in chosen}) > 1:
            warnings.append(f"REPORT_DOSE_SEVERAL: {len(chosen)} different values of the {name} "
                            f"on page {chosen[0].page} and no total among them; not read")
            continue
        r = chosen[0]
        out[f"dose_{quantity}"] = {"value": r.value, "unit": r.unit, "page": r.page,
                                   "source": r.source, "confidence": r.confidence}
    return out
