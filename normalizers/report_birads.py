"""The ACR BI-RADS category of a breast imaging report (mammographie, échographie or IRM
mammaire), per breast, read from the words of its conclusion (else of the whole report).

French centres print it as 'ACR 4', 'BI-RADS 4b', 'classé ACR 2', 'Classification BI-RADS de
l'ACR : 2 à droite et 4a à gauche', 'Sein gauche : ... ACR 5', 'ACR 1 bilatéral'. Categories
and their order come from tables/birads_categories.csv. What is read is a fact in the dossier,
so nothing doubtful is coded: a scanned category read below the confidence threshold, or a
character OCR makes of a digit ('ACR Z' for 2, 'ACR S' for 5, 'ACR l' for 1), is warned about
and left out; two different categories for one breast are warned about and neither is kept.
Not categories: the breast density ('densité ACR 2', 'type B', 'ACR c'), and the other
*-RADS scales (PI-RADS, TI-RADS, LI-RADS), which the labels never match. Warnings name pages
and confidences, never the values.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import Any, Protocol

from normalizers.tabledata import table

SIDES = ("droit", "gauche")
OVERALL = "global"


class ReadLine(Protocol):
    """What is needed of a report's line (normalizers/report._Line)."""
    page: int
    source: str
    text: str
    folded: str  # ``text`` folded one character for one (normalizers/report.fold)
    spans: list[tuple[int, int, float]]


@cache
def categories() -> dict[str, dict[str, str]]:
    return {r["category"]: r for r in table("birads_categories")}


_SIDE = r"(droite?|gauche|bilaterale?s?|des deux (?:cotes|seins))"
_LABEL = re.compile(r"(?<![a-z0-9\-])(?:bi-? ?rads|acr)(?![a-z])"
                    r"(?: de l'acr)?(?:\s*(?:classe|categorie))?\s*[:\-]?\s*")
_CATEGORY = re.compile(r"([0-6][abc]?)(?![0-9a-z])(?![,.][0-9])")
# a digit as OCR misreads it: Z for 2, S for 5, l / I / | for 1, O for 0, G for 6
_MISREAD = re.compile(r"([zsli|og][abc]?)(?![0-9a-z])")
_SIDE_AFTER = re.compile(rf"\s*(?:\(?(?:a|au niveau du|du|sein|au sein)\s+)*(?:sein\s+)?{_SIDE}"
                         r"(?![a-z])")
_MORE = re.compile(rf"\s*(?:,|et|;)\s*(?:(?:bi-? ?rads|acr)\s*)?([0-6][abc]?)(?![0-9a-z])"
                   rf"\s*(?:(?:a|au niveau du|du)\s+)?(?:sein\s+)?{_SIDE}(?![a-z])")
_SIDE_BEFORE = re.compile(rf"(?:\bsein\s+{_SIDE}|(?:^|\n)\W*{_SIDE}\s*:)")
_DENSITY = re.compile(r"densit|\btype\s*$")
_DENSITY_REACH = 30  # characters before a label where 'densité' makes it the density
_CLAUSE_END = re.compile(r"[.;]\s|\n")


@dataclass
class _Read:
    side: str
    category: str
    page: int
    source: str
    confidence: float


def birads(parts: list[tuple[ReadLine, int, int]], min_confidence: float) \
        -> tuple[dict[str, Any] | None, list[str]]:
    """The 'birads' field of a report from its lines ``parts`` ((line, start, end): the
    conclusion's, else all), and the warnings. The field's value is the overall category
    (printed with no side, else the breast's of highest rank); ``by_side`` gives each
    breast's."""
    text, where = _joined(parts)
    reads: list[_Read] = []
    warnings: list[str] = []
    pos = 0
    for m in _LABEL.finditer(text):
        if m.start() < pos:
            continue
        clause = _CLAUSE_END.split(text[max(0, m.start() - _DENSITY_REACH):m.start()])[-1]
        if _DENSITY.search(clause):
            continue  # 'densité ACR 2'; not 'Densité B. ACR 2', another clause
        cat = _CATEGORY.match(text, m.end())
        if cat is None:
            bad = _MISREAD.match(text, m.end())
            if bad:
                page, _, conf = _at(where, bad.start(1), bad.end(1))
                warnings.append(f"REPORT_BIRADS_UNREADABLE: a BI-RADS category on page {page} "
                                f"was read as a letter (OCR, confidence {conf:.0f}); not coded")
            continue
        pos = cat.end()
        sides = [("", cat)]
        side = _SIDE_AFTER.match(text, pos)
        if side:
            sides = [(side.group(1), cat)]
            pos = side.end()
            while more := _MORE.match(text, pos):
                sides.append((more.group(2), more))
                pos = more.end()
        else:
            before = list(_SIDE_BEFORE.finditer(text, 0, m.start()))
            if before and not _LABEL.search(text, before[-1].end(), m.start()):
                sides = [(before[-1].group(1) or before[-1].group(2), cat)]
        for word, found in sides:
            page, source, conf = _at(where, found.start(1), found.end(1))
            for s in _sides(word):
                reads.append(_Read(s, found.group(1), page, source, conf))
    return _field(reads, min_confidence, warnings)


def _field(reads: list[_Read], min_confidence: float, warnings: list[str]) \
        -> tuple[dict[str, Any] | None, list[str]]:
    sure = []
    for r in reads:
        if r.confidence < min_confidence:
            warnings.append(f"REPORT_BIRADS_UNCERTAIN: a BI-RADS category on page {r.page} was "
                            f"read by OCR with confidence {r.confidence:.0f} (below "
                            f"{min_confidence:.0f}); not coded")
        else:
            sure.append(r)
    by_side: dict[str, str] = {}
    conflicting = set()
    for r in sure:
        if by_side.get(r.side, r.category) != r.category:
            conflicting.add(r.side)
        by_side.setdefault(r.side, r.category)
    for s in sorted(conflicting, key=[*SIDES, OVERALL].index):
        name = "overall" if s == OVERALL else f"the {'right' if s == 'droit' else 'left'} breast"
        warnings.append(f"REPORT_BIRADS_CONFLICT: two different BI-RADS categories are printed "
                        f"for {name} (page {sure[0].page}); not coded")
        del by_side[s]
    if not by_side:
        return None, warnings
    overall = by_side.get(OVERALL)
    if overall is None:
        rank = {c: int(r["rank"]) for c, r in categories().items()}
        overall = max((by_side[s] for s in SIDES if s in by_side), key=rank.__getitem__)
    first = sure[0]
    field: dict[str, Any] = {
        "value": overall, "page": first.page, "source": first.source,
        "confidence": round(min(r.confidence for r in sure), 1),
        "meaning": categories()[overall]["meaning"]}
    if any(s in by_side for s in SIDES):
        field["by_side"] = {s: by_side[s] for s in SIDES if s in by_side}
    return field, warnings


def _sides(word: str) -> tuple[str, ...]:
    if not word:
        return (OVERALL,)
    if word.startswith(("bilat", "des deux")):
        return SIDES
    return ("droit",) if word.startswith("droit") else ("gauche",)


def _joined(parts: list[tuple[ReadLine, int, int]]) \
        -> tuple[str, list[tuple[int, ReadLine, int]]]:
    """The parts' folded text joined by newlines, and where each part starts in it
    (offset in the joined text, line, offset in the line)."""
    chunks, where, pos = [], [], 0
    for line, start, end in parts:
        chunk = line.folded[start:end]
        where.append((pos, line, start))
        chunks.append(chunk)
        pos += len(chunk) + 1
    return "\n".join(chunks), where


def _at(where: list[tuple[int, ReadLine, int]], start: int, end: int) -> tuple[int, str, float]:
    """Page, source and lowest word confidence of the joined text's [start, end)."""
    base, line, offset = next(w for w in reversed(where) if w[0] <= start)
    s, e = start - base + offset, end - base + offset
    confs = [c for a, b, c in line.spans if a < e and b > s]
    return line.page, line.source, min(confs) if confs else 100.0
