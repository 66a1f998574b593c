"""Shared by every part of the lab normalizer: the value type and status sets, the reading context
of one message (``Ctx``) and the small field readers (times, coded identifiers) used
throughout."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial

from normalizers.codes import CodeMappings, system_name
from normalizers.dates import BAD_TS_TEXT, PARIS, hl7_ts_to_iso
from normalizers.fields import comps, id_code, leaf, loc, part, split_field, text, with_degree
from normalizers.model import Entry, NormalizationError
from parsers.hl7v2.er7 import Delimiters, Message, Segment

NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")
TEXT_TYPES = frozenset({"ST", "TX", "FT"})
NARRATIVE_TYPES = frozenset({"TX", "FT"})  # text meant for display, line by line
CODED_TYPES = frozenset({"CE", "CWE", "CNE", "CF"})
DATE_TYPES = frozenset({"DT", "TS", "DTM"})
# OBX-11 statuses (tables/result_status.csv) under which OBX-5 is not a result: X and N (no
# result obtained), D and W (the result is withdrawn). HL7 v2.5 7.4.2.11.
NO_VALUE_STATUSES = frozenset({"cancelled", "entered-in-error"})
# ... and those whose result is still to come: I (specimen in lab, results pending) and O
# (order detail, no result). What a SIL writes there ('En cours', 'A suivre' under NM) is no
# value either; read as one, it failed the whole message (OBX_BAD_NUMBER).
WITHHELD_STATUSES = NO_VALUE_STATUSES | {"registered"}
SINGLE_VALUE_TYPES = frozenset({"NM", "SN", "CQ", "TM", "DR"}) | DATE_TYPES


@dataclass(slots=True)
class Ctx:
    msg: Message
    source: tuple[str, ...]  # mapping table candidates: intake source id, then sender
    mappings: CodeMappings | None
    warnings: list[str]
    keys: set[str] = field(default_factory=set)
    # a result key -> the OBX-14 its first result was sent with ('' for none): what tells a
    # cumulative report's previous results of one test apart (``make_unique``)
    observed: dict[str, str] = field(default_factory=dict)
    # a result or report key -> the OBR-7 of the order its first entry came in, as sent:
    # what tells apart the orders of one number and code (``order_time_key``)
    ordered: dict[str, str] = field(default_factory=dict)
    order_time: str = ""  # OBR-7 as sent of the order being read
    zone: str = PARIS  # of times sent without offset (fields.zone_of)
    # MSH-7 as ISO 8601 and as an instant (None: no time with an offset to compare with)
    sent_iso: str = ""
    sent_at: datetime | None = None
    # a result key -> the entry of the message that withdraws it (OBX-11 W or D), and the
    # entries left out (a withdrawal its replacement follows: ``replacement_of``)
    withdrawals: dict[str, Entry] = field(default_factory=dict)
    dropped: set[int] = field(default_factory=set)
    # a result key -> the result of the message filed under it, for a withdrawal (W or D)
    # of it later in the message (``withdrawn_in_message``)
    filed: dict[str, Entry] = field(default_factory=dict)


def leaf_reader(d: Delimiters, fields: list[str]) -> Callable[[str], str]:
    """``leaf(d, x)`` for values cut from ``fields``. Most segments hold no subcomponent and no
    escape at all: then a leaf is just the text stripped, and ``str.strip`` (a C call) reads
    it instead of a Python call per value."""
    joined = "".join(fields)
    if d.subcomponent in joined or d.escape in joined:
        return partial(leaf, d)
    return str.strip


def coded_item(msg: Message, rep: str) -> dict[str, str] | None:
    """One CE/CWE repetition as {code, system (named as on every channel), display}, or its
    text alone ('Formule de Friedewald' sent as words); None when empty."""
    c = comps(msg, rep)
    code, display = text(msg, part(c, 1)), text(msg, part(c, 2))
    system = text(msg, part(c, 3))
    original = text(msg, part(c, 9))
    if code and not display and not system and WORDS.search(code):
        return {"text": code}
    if code:
        return {"code": code, "system": system_name(system) if system else "",
                "display": display or original}
    text_said = display or original
    return {"text": text_said} if text_said else None


def name_in_system_slot(ctx: Ctx, seg: Segment, n: int, raw: str) -> tuple[str, str]:
    """(text, coding system) of an identifier (OBX-3, OBR-4) sent 'LEUUR^^Leucocytes': the
    name in the coding-system slot, its own slot empty (``text_in_system_slot``). The name is
    its text and the code is local ('L'). The key keeps the component as sent (a result
    filed before this reading is still the one a correction replaces), and a mapping row
    keyed by the name as the coding system still maps (``resolve_code``'s sent_system).
    Said once per message: such a sender writes every identifier that way."""
    said = f"{seg.name}-{n}: name of the coding system"
    if not any(w.startswith(said) for w in ctx.warnings):
        ctx.warnings.append(f"{said} holds words, text empty: read as the text, the code as "
                            f"local (first at {loc(seg, n)})")
    return text(ctx.msg, raw), ""


def coded_id(ctx: Ctx, seg: Segment, n: int, what: str) -> str:
    """An ID field sent as a coded element ('F^Final^HL70085'): its code, said (``id_code``)."""
    code = id_code(ctx.msg, seg, n)
    ctx.warnings.append(f"{loc(seg, n)}: {what} sent with components (an ID holds one code): "
                        "its first component read as the code")
    return code


def field_ts(seg: Segment, n: int, d: Delimiters, zone: str) -> str | None:
    value = seg.fields[n]
    if d.component in value or d.repetition in value or d.escape in value:
        c = split_field(d, value)
        value = leaf(d, c[0])
        if not value:
            return None
        if len(c) > 1:
            value = with_degree(value, leaf(d, c[1]))  # TS.2: '20240315000000^D' is a day
    try:
        return hl7_ts_to_iso(value, zone)
    except ValueError:
        where = loc(seg, n)
        raise NormalizationError("HL7_BAD_DATE", f"{where}: {BAD_TS_TEXT}",
                                 where) from None


WORDS = re.compile(r"\S\s+\S")  # two words: text, never one code
