"""NTE comments and text lines: notes of a result or an order, comment types (NTE-4), and the
continuation of a text result over several OBX."""

from __future__ import annotations

from functools import cache, lru_cache
from typing import Any

from normalizers.fields import comps, first_rep, part, reps, sub, text, unescaped
from normalizers.lab.common import NARRATIVE_TYPES, WITHHELD_STATUSES
from normalizers.model import Entry
from normalizers.tabledata import column_map
from parsers.hl7v2.er7 import Message, Segment


def untitled_text(msg: Message, obx: Segment, notes: list[Segment]) -> list[str]:
    """The lines of a text OBX (ST, TX, FT) sent without observation identifier.

    Transcription and radiology systems send a narrative report one line per OBX, OBX-3 left
    empty (empty lines are paragraph breaks). There is no observation to key a result on, but
    the text belongs to the report of the OBR: it is kept there, in order, notes included.
    Any other OBX without identifier but with a value still fails (OBX_NO_CODE, see
    ``result_entry``)."""
    lines = [text_line(msg, r) for r in reps(msg, obx, 5)] or [""]
    return lines + note_texts(msg, notes)


@lru_cache(maxsize=64)
def is_narrative(vtype: str) -> bool:
    """OBX-2 is TX or FT (cached: a handful of spellings, read for every OBX). Not ST: two
    ST values under one identifier are as often two results (two organisms) sent without
    sub-ids, and stay two entries."""
    return vtype.strip().upper() in NARRATIVE_TYPES


def continue_text(msg: Message, entry: Entry, obx: Segment, notes: list[Segment]) -> None:
    """A narrative report (TX, FT) sent one line per OBX, each with the same identifier,
    sub-id and status (radiology and transcription systems): one observation whose text
    goes on, not a result per line with made-up keys '#2', '#3'... (a correction with fewer
    lines left the old extra lines behind)."""
    lines = "\n".join(text_line(msg, r) for r in reps(msg, obx, 5))
    if entry.status in WITHHELD_STATUSES:  # the same OBX-11 as the first line's
        withheld = entry.details.get("value_withheld")
        entry.details["value_withheld"] = f"{withheld}\n{lines}" if withheld else lines
    else:
        entry.value = f"{entry.value or ''}\n{lines}"
        if entry.value_num is not None:  # a number read from the first line is no more
            entry.value_num = entry.comparator = None
    comments = note_texts(msg, notes) if notes else None
    if comments:
        entry.details.setdefault("comments", []).extend(comments)
        keep_comment_types(msg, notes, entry.details)


def text_line(msg: Message, raw: str) -> str:
    """One repetition of a text value (ST, TX, FT, NTE-3), unescaped, trailing blanks (layout)
    removed, its line ends as '\\n'. Engines escape a line end inside a field as hex
    (Cloverleaf and Mirth write '\\X0D\\', Windows senders '\\X0D0A\\'): kept as the
    parser reads it, the value held a bare CR ('Ligne 1\\rLigne 2'), which a terminal prints
    over the line's start and no other line end of ours is (\\.br\\, repetitions, an LF
    left unescaped are all '\\n')."""
    value = unescaped(msg, raw)
    if "\r" in value:
        value = value.replace("\r\n", "\n").replace("\r", "\n")
    return value.rstrip()


def note_texts(msg: Message, notes: list[Segment]) -> list[str]:
    """NTE-3 of each note (repetitions are lines); empty notes (a bare 'NTE|1') are dropped."""
    texts = (_note_text(msg, nte) for nte in notes)
    return [t for t in texts if t.strip()]


def _note_text(msg: Message, nte: Segment) -> str:
    return "\n".join(text_line(msg, r) for r in reps(msg, nte, 3))


def _comment_types(msg: Message, notes: list[Segment]) -> list[dict[str, str]]:
    """NTE-4, the comment type (CE, HL7 table 0364, v2.4+) of each note that has one and a
    text: {text, code, display, system}, the display from ``tables/comment_types.csv`` when
    only the code was sent. A patient instruction (PI: 'à jeun pour le prochain bilan') or
    the reason an order was made (1R) is no remark on the result; the type was dropped and
    all of them read alike. The comments themselves stay in ``details['comments']``."""
    out: list[dict[str, str]] = []
    for nte in notes:
        rep = first_rep(msg, nte, 4)
        if not rep:
            continue
        c = comps(msg, rep)
        code = sub(msg, part(c, 1), 1)
        body = _note_text(msg, nte)
        if not code or not body.strip():
            continue
        item = {"text": body, "code": code,
                "display": text(msg, part(c, 2)) or _comment_type_names().get(code.upper(), ""),
                "system": sub(msg, part(c, 3), 1)}
        out.append({k: v for k, v in item.items() if v})
    return out


@cache
def _comment_type_names() -> dict[str, str]:
    return column_map("comment_types", "code", "meaning")


def keep_comment_types(msg: Message, notes: list[Segment], details: dict[str, Any]) -> None:
    """``_comment_types`` of ``notes`` added to ``details['comment_types']``."""
    typed = _comment_types(msg, notes) if notes else None
    if typed:
        details.setdefault("comment_types", []).extend(typed)
