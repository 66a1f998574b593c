"""An import's warnings as the ledger keeps them: one line per thing said, not per place.

Why: a normalizer warns at each place it reads something doubtful, and some senders do the
same doubtful thing everywhere. A French LIS writing decimal commas gets 'OBX[n]-5: decimal
comma read as a decimal point' once per OBX: 700 lines on the ledger for one message, which
drown the one warning that matters in the console, the CLI and the API. Lines saying the same
thing at more than ``KEEP_EACH`` places become one line naming the first places and how many
more; nothing said is lost, only its repetition. A line whose text differs (another code,
another unit) stays its own.
"""

from __future__ import annotations

import re

KEEP_EACH = 5  # up to this many lines saying one thing are kept as they are
PLACES_NAMED = 3  # a condensed line names this many places, then counts the others

# Where a warning says it is, before its text: a segment and field ('OBX[7]-5', 'OBX[7]-5.2',
# 'OBX[7]'), a CDA element's path ('/ClinicalDocument/...'), a PDF page ('page 2').
_PLACE = re.compile(r"(?P<place>[A-Za-z][A-Za-z0-9]{2}\[\d+\](?:-\d+(?:\.\d+)*)?"
                    r"|/[^\s:]+|pages? \d+(?:(?:-|, )\d+)*): (?P<text>.+)", re.S)


def condensed(warnings: list[str]) -> list[str]:
    """``warnings`` with each text said at more than ``KEEP_EACH`` places (or repeated
    whole more than that) made one line, where its first occurrence was."""
    if len(warnings) <= KEEP_EACH:
        return warnings
    places: dict[str, list[str | None]] = {}
    texts: list[str] = []  # each line's text, read once
    for line in warnings:
        found = _PLACE.fullmatch(line)
        text, place = (found["text"], found["place"]) if found else (line, None)
        places.setdefault(text, []).append(place)
        texts.append(text)
    if all(len(p) <= KEEP_EACH for p in places.values()):
        return warnings
    out: list[str] = []
    for line, text in zip(warnings, texts, strict=True):
        where = places.get(text)
        if where is None:
            continue  # said already, condensed
        if len(where) <= KEEP_EACH:
            out.append(line)
            continue
        del places[text]
        out.append(_one_line(text, where))
    return out


def _one_line(text: str, where: list[str | None]) -> str:
    """'OBX[7]-5, OBX[8]-5, OBX[9]-5 and 697 more places: decimal comma ...', or 'text
    (said 12 times)' for a line that names no place."""
    named = [p for p in where if p is not None]
    if not named:
        return f"{text} (said {len(where)} times)"
    first = ", ".join(named[:PLACES_NAMED])
    more = len(where) - min(len(named), PLACES_NAMED)
    return f"{first} and {more} more place{'s' if more > 1 else ''}: {text}"
