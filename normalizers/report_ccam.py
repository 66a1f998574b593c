"""The CCAM codes of the acts an imaging report prints ('Cotation : QEQK004 + QEQM001',
'Acte(s) CCAM : ZCQK002', 'Code acte : ACQN001'): the exams done, coded, which the title line
only names (a mammography and a breast ultrasound in one report are two acts).

A code is four letters and three digits, read only on a line labelled for it (a patient's
file number 'DOSS123' elsewhere is none). A code OCR may have misread (a letter O, I or l
among its digits, a 0 or 1 among its letters: 'QEQK0O4') is warned about and not read, and so
is one read below the confidence threshold. Warnings name pages, never the codes.
"""

from __future__ import annotations

import re
from typing import Any

from normalizers.report_birads import ReadLine

_LABEL = re.compile(r"(?<![a-z])(?:ccam|cotations?|codes? (?:de l'|d')?actes?|actes? cotes?)"
                    r"(?![a-z])")
_CODE = re.compile(r"(?<![A-Za-z0-9])([A-Z]{4}[0-9]{3})(?![A-Za-z0-9])")
# a code as OCR may misread it: 0 / 1 among the letters, O / I / l / | among the digits
# (and at least one digit: 'SCANNER' is a word)
_MISREAD = re.compile(r"(?<![A-Za-z0-9])(?=[A-Z01]{4}[0-9OIl|]{3}(?![A-Za-z0-9]))"
                      r"(?=[A-Z]{0,6}[0-9])(?![A-Z]{4}[0-9]{3})[A-Z01]{4}[0-9OIl|]{3}")


def ccam_codes(lines: list[ReadLine], min_confidence: float) \
        -> tuple[dict[str, Any] | None, list[str]]:
    """The 'ccam' field (value: the codes in the order printed, each once) of a report's
    ``lines``, and the warnings."""
    codes: list[str] = []
    first: ReadLine | None = None
    confs: list[float] = []
    warnings: list[str] = []
    for line in lines:
        label = _LABEL.search(line.folded)
        if label is None:
            continue
        for _ in _MISREAD.finditer(line.text, label.end()):
            warnings.append(f"REPORT_CCAM_UNREADABLE: a CCAM code on page {line.page} holds a "
                            f"character OCR may have misread; not read")
        for m in _CODE.finditer(line.text, label.end()):
            conf = min((c for a, b, c in line.spans if a < m.end() and b > m.start()),
                       default=100.0)
            if conf < min_confidence:
                warnings.append(f"REPORT_CCAM_UNCERTAIN: a CCAM code on page {line.page} was "
                                f"read by OCR with confidence {conf:.0f} (below "
                                f"{min_confidence:.0f}); not read")
                continue
            if m.group(1) not in codes:
                codes.append(m.group(1))
                confs.append(conf)
                first = first or line
    if first is None:
        return None, warnings
    return {"value": codes, "page": first.page, "source": first.source,
            "confidence": min(confs)}, warnings
