"""Which held report a reissued PDF report supersedes (dedupe level 3 for PDF reports).

A report sent again with an addendum or as a rectification (normalizers/report_reissue.py:
``details['reissue']``) was filed beside the report it reissues, both current: the dossier
showed the first reading as if nothing had been added or corrected. It now supersedes it,
history kept, when the dossier says without a guess which report that is:

- the same exam: same patient (the dossier), same type, exam date, modality and body region
  (the report's fact, deposit.fact_of, which finds the candidates);
- the same centre: both came from the same source (the sender's connector);
- the same exam number when one is printed: both print the same one, or neither does. Two
  numbers that differ are two exams (a related report: filed beside it); a number printed on
  one of them only, read unsure by OCR, or read by OCR differing only by characters OCR
  confuses ('MR25O3' and 'MR2503'), cannot tell: doubt;
- it reprints the report: it has a conclusion of its own (an addendum or a correction printed
  alone is a related report: superseding the report with it hid the report's conclusion),
  and an addendum's is the held report's (REPORT_SIMILARITY alike: it says it only adds);
- exactly one such report held.

Anything else is a doubt said on the ledger (with the source_ref, never a value), and the
reissue is filed as a report of its own, as before.
"""

from __future__ import annotations

import difflib
import unicodedata
from collections.abc import Sequence
from typing import Any

REPORT_SIMILARITY = 0.9  # as dossiers/deposit.py's level 4 for two readings of one report


def _details(row: Any) -> dict:
    got = row.get("details") if isinstance(row, dict) else getattr(row, "details", None)
    return got if isinstance(got, dict) else {}


def _number(details: dict) -> tuple[str, bool, bool] | None:
    """(exam number, read unsure, read by OCR) as printed, None when none is."""
    field = (details.get("fields") or {}).get("exam_number")
    if not isinstance(field, dict) or not field.get("value"):
        return None
    return str(field["value"]), bool(field.get("unsure")), field.get("source") == "ocr"


# Characters OCR takes for one another in an identifier ('MR25O3' for 'MR2503')
_CONFUSABLE = str.maketrans("OQDIL|SBZG", "0001115826")


def _misread(a: tuple[str, bool, bool], b: tuple[str, bool, bool]) -> bool:
    """Whether two different numbers, one of them read by OCR, may be one number misread."""
    return (a[2] or b[2]) and len(a[0]) == len(b[0]) \
        and a[0].upper().translate(_CONFUSABLE) == b[0].upper().translate(_CONFUSABLE)


def _conclusion(details: dict) -> str:
    field = (details.get("fields") or {}).get("conclusion")
    text = str(field.get("value") or "") if isinstance(field, dict) else ""
    folded = unicodedata.normalize("NFKD", text.casefold())
    return " ".join("".join(c if c.isalnum() else " " for c in folded
                            if not unicodedata.combining(c)).split())


def _alike(a: str, b: str) -> bool:
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    return bool(a and b) and matcher.quick_ratio() >= REPORT_SIMILARITY \
        and matcher.ratio() >= REPORT_SIMILARITY


def is_reissue(row: Any) -> bool:
    return isinstance(_details(row).get("reissue"), dict)


def reissued_report(row: dict, holding: Sequence[Any]) -> tuple[Any | None, str]:
    """(the held report ``row`` supersedes, '') or (None, why none: '' when the dossier holds
    no report of that exam, which the caller says in its own words). ``holding``: the current
    entries of the same fact, other than ``row``'s own key."""
    mine = _details(row)
    source = mine.get("source")
    number = _number(mine)
    conclusion = _conclusion(mine)
    if not conclusion:
        return None, ("it prints no conclusion of its own (an addendum or a correction printed "
                      "without the report): a related report, not a new version of it")
    adds_only = (mine.get("reissue") or {}).get("kind") == "addendum"
    candidates = []
    related = doubtful = other_source = changed = 0
    for held in holding:
        theirs = _details(held)
        if theirs.get("source") != source:
            other_source += 1
            continue
        their_number = _number(theirs)
        if number is None and their_number is None:
            same_exam = True
        elif number is None or their_number is None or number[1] or their_number[1] \
                or (number[0] != their_number[0] and _misread(number, their_number)):
            doubtful += 1
            continue
        else:
            same_exam = number[0] == their_number[0]
        if not same_exam:
            related += 1
        elif adds_only and not _alike(conclusion, _conclusion(theirs)):
            changed += 1
        else:
            candidates.append(held)
    if len(candidates) == 1 and not doubtful and not changed:
        return candidates[0], ""
    if changed:
        return None, ("it says it adds to the report (an addendum) but its conclusion is not "
                      "the held report's: which report it reissues cannot be told")
    if len(candidates) > 1:
        return None, (f"{len(candidates)} reports of that exam are held; which one it "
                      "reissues cannot be told")
    if doubtful:
        return None, ("a report of that exam is held, but the exam number is printed on one "
                      "of them only, or read by OCR unsure or with characters OCR confuses; which "
                      "exam it reissues cannot be told")
    if related:
        return None, ("the report of that day, modality and region held prints another exam "
                      "number: a related report, not a version of it")
    if other_source:
        return None, ("the report of that exam held came from another source; a centre "
                      "reissues its own reports only")
    return None, ""
