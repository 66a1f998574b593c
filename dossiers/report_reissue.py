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
  one of them only, or read unsure by OCR, cannot tell: doubt;
- exactly one such report held.

Anything else is a doubt said on the ledger (with the source_ref, never a value), and the
reissue is filed as a report of its own, as before.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def _details(row: Any) -> dict:
    got = row.get("details") if isinstance(row, dict) else getattr(row, "details", None)
    return got if isinstance(got, dict) else {}


def _number(details: dict) -> tuple[str, bool] | None:
    """(exam number, read unsure) as printed, None when none is."""
    field = (details.get("fields") or {}).get("exam_number")
    if not isinstance(field, dict) or not field.get("value"):
        return None
    return str(field["value"]), bool(field.get("unsure"))


def is_reissue(row: Any) -> bool:
    return isinstance(_details(row).get("reissue"), dict)


def reissued_report(row: dict, holding: Sequence[Any]) -> tuple[Any | None, str]:
    """(the held report ``row`` supersedes, '') or (None, why none: '' when the dossier holds
    no report of that exam, which the caller says in its own words). ``holding``: the current
    entries of the same fact, other than ``row``'s own key."""
    mine = _details(row)
    source = mine.get("source")
    number = _number(mine)
    candidates = []
    related = doubtful = other_source = 0
    for held in holding:
        theirs = _details(held)
        if theirs.get("source") != source:
            other_source += 1
            continue
        their_number = _number(theirs)
        if number is None and their_number is None:
            candidates.append(held)
        elif number is None or their_number is None or number[1] or their_number[1]:
            doubtful += 1
        elif number[0] == their_number[0]:
            candidates.append(held)
        else:
            related += 1
    if len(candidates) == 1 and not doubtful:
        return candidates[0], ""
    if len(candidates) > 1:
        return None, (f"{len(candidates)} reports of that exam are held; which one it "
                      "reissues cannot be told")
    if doubtful:
        return None, ("a report of that exam is held, but the exam number is printed on one "
                      "of them only, or read unsure by OCR; which exam it reissues cannot be "
                      "told")
    if related:
        return None, ("the report of that day, modality and region held prints another exam "
                      "number: a related report, not a version of it")
    if other_source:
        return None, ("the report of that exam held came from another source; a centre "
                      "reissues its own reports only")
    return None, ""
