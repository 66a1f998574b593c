"""Whether a PDF report is a reissue of a report sent before, and the exam number it prints.

Imaging centres send a report again when a radiologist adds to it ('Compte rendu
complémentaire', 'Addendum') or corrects it ('Rectificatif', 'Annule et remplace'). Filed as a
report of its own, the dossier showed both readings of one exam as current, the first one's
conclusion beside the one that corrects it. What is read here lets the deposit make it a new
version of the report it reissues (dedupe level 3, dossiers/report_reissue.py), and only when
the PDF says which exam that is:

- ``reissue``: {'kind': 'addendum' | 'rectification', 'page'}: a heading of
  tables/report_reissue_markers.csv at a line's start, or the addendum field;
- the exam's own number ('N° d'examen : 2025-004512', the RIS accession number; labels in
  tables/report_exam_number_labels.csv): two reports of one day, one modality and one region
  are one exam's only when they print the same number (or neither prints one). A number read
  by OCR below the confidence threshold is kept marked ``unsure`` (never compared as read).

Warnings name pages and confidences, never the number.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from normalizers.report_birads import ReadLine
from normalizers.tabledata import table

ADDENDUM = "addendum"
RECTIFICATION = "rectification"

# An exam number: letters, digits and separators, holding at least one digit
_NUMBER = re.compile(r"\s*[:#=]?\s*(?=[A-Za-z0-9./\-]*\d)([A-Za-z0-9][A-Za-z0-9./\-]{2,29})"
                     r"(?![A-Za-z0-9])")


@cache
def _markers() -> tuple[re.Pattern[str], dict[str, str]]:
    kinds = {" ".join(r["term"].split()): r["kind"] for r in table("report_reissue_markers")}
    terms = "|".join(re.escape(t).replace(r"\ ", " +")
                     for t in sorted(kinds, key=len, reverse=True))
    return re.compile(rf"^[\W_]{{0,3}}\s*({terms})(?=\s*(?:$|[:\-(*]|(?:du|le|la|les)\b"
                      r"|[0-9]))"), kinds


@cache
def _labels() -> re.Pattern[str]:
    labels = sorted((" ".join(r["label"].split()) for r in table("report_exam_number_labels")),
                    key=len, reverse=True)
    alternation = "|".join(re.escape(t).replace(r"\ ", " *") for t in labels)
    return re.compile(rf"(?<![a-z0-9])(?:{alternation})(?![a-z])")


def reissue(lines: list[ReadLine], addendum: dict[str, Any] | None) -> dict[str, Any] | None:
    """{'kind', 'page'} when the report says it is a reissue, else None. A rectification
    heading wins over an addendum: a corrected report may also add a text."""
    pattern, kinds = _markers()
    found: dict[str, Any] | None = None
    for line in lines:
        m = pattern.match(line.folded)
        if m is None:
            continue
        kind = kinds[" ".join(m.group(1).split())]
        if kind == RECTIFICATION:
            return {"kind": kind, "page": line.page}
        found = found or {"kind": kind, "page": line.page}
    if found is None and addendum:
        found = {"kind": ADDENDUM, "page": addendum.get("page")}
    return found


def exam_number(lines: list[ReadLine], min_confidence: float) \
        -> tuple[dict[str, Any] | None, list[str]]:
    """The 'exam_number' field (the first labelled one) and its warnings."""
    label = _labels()
    for line in lines:
        for m in label.finditer(line.folded):
            number = _NUMBER.match(line.text, m.end())
            if number is None:
                continue
            start, end = number.span(1)
            confs = [c for a, b, c in line.spans if a < end and b > start]
            conf = min(confs) if confs else (100.0 if line.source == "text" else 0.0)
            field: dict[str, Any] = {"value": number.group(1).upper().strip("./-"),
                                     "page": line.page, "source": line.source,
                                     "confidence": round(conf, 1)}
            warnings: list[str] = []
            if conf < min_confidence:
                field["unsure"] = True
                warnings.append(f"REPORT_EXAM_NUMBER_UNCERTAIN: the exam number on page "
                                f"{line.page} was read by OCR with confidence {conf:.0f} "
                                f"(below {min_confidence:.0f}); not compared with another "
                                "report's")
            return field, warnings
    return None, []
