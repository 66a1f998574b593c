"""Result status and corrections (OBX-11): results withheld, withdrawals (W, D) and their
replacements, the status codes that are read."""

from __future__ import annotations

from functools import cache

from normalizers.fields import loc, reps
from normalizers.lab.common import Ctx
from normalizers.lab.notes import text_line
from normalizers.model import ACTION_REPLACE, REPLACES_WITHDRAWN_DETAIL, Entry
from normalizers.tabledata import column_map, table
from parsers.hl7v2.er7 import Segment


def why_no_status(f: list[str]) -> str:
    """Why OBX-11 is empty, for the error: the segment ends before it (a message cut in
    transit), or a status sits in OBX-12 (a field missing before it shifted the rest, as
    from a sender that leaves out OBX-10), or it is just empty. Codes only, never values."""
    if len(f) <= 11:
        return "missing; truncated message?"
    if len(f) > 12 and f[12].strip().upper() in _obx_status_codes():
        return "empty and OBX-12 holds a result status: a field missing before it?"
    return "empty"


@cache
def empty_means_held() -> frozenset[str]:
    """OBX-11 codes whose empty OBX-5 means 'the value sent before stands' (U), from
    tables/result_status.csv (column empty_value = held)."""
    return frozenset(row["code"] for row in table("result_status")
                     if row.get("empty_value") == "held")


@cache
def _obx_status_codes() -> frozenset[str]:
    return frozenset(column_map("result_status", "code", "status"))


def replacement_of(ctx: Ctx, entry: Entry, obx: Segment) -> None:
    """A result following, in one message, the OBX-11 W or D of the same observation (HL7
    table 0085 W: 'post original as wrong', the right result sent with it): the new version
    of that result, a correction of the one held (its versions kept). Made a key of its
    own as a second result of the test, it was current beside the key withdrawn, and the
    lab's next correction of the test (filed under that key) went to history. Marked
    (``REPLACES_WITHDRAWN_DETAIL``): the original, never received or sent again, arriving
    after it is history (dossiers/deposit.py), not a new version over the replacement."""
    gone = ctx.withdrawals.pop(entry.key)
    ctx.dropped.add(id(gone))
    entry.action, entry.replaces_key = ACTION_REPLACE, entry.key
    entry.details[REPLACES_WITHDRAWN_DETAIL] = True
    ctx.warnings.append(f"{loc(obx)}: follows {gone.source_ref}, the same result withdrawn "
                        "(OBX-11 W or D): filed as its replacement, the result held kept "
                        "in its history")


def withdrawn_in_message(ctx: Ctx, entry: Entry, obx: Segment) -> None:
    """OBX-11 W or D of a result sent earlier in the same message (the result, then its
    withdrawal: a LIS replaying a validation it undid): the result is not filed, and the
    withdrawal keeps the result's key, so that it withdraws what the dossier holds under it
    (or leaves a tombstone) and a replacement following it is one (``replacement_of``).
    Made unique ('...#2'), the withdrawal named a key nobody sent, a tombstone beside the
    result it withdrew, which stayed current."""
    gone = ctx.filed.pop(entry.key)
    ctx.dropped.add(id(gone))
    ctx.warnings.append(f"{loc(obx)}: withdraws {gone.source_ref}, the same result sent "
                        "earlier in the message (OBX-11 W or D): that result is not filed")


def withhold(ctx: Ctx, obx: Segment, entry: Entry, status_code: str) -> None:
    """OBX-11 X or N (no result could be obtained), I or O (no result yet) or D / W (the result
    is withdrawn): what OBX-5 holds is not a result and is never filed as the value. It is
    kept, as sent, in
    ``details['value_withheld']`` (a lab often says there why the analysis was not done)."""
    where = loc(obx, 5)
    entry.details["value_withheld"] = "\n".join(
        text_line(ctx.msg, r) for r in reps(ctx.msg, obx, 5))
    ctx.warnings.append(f"{where}: result status {status_code[:2]} ({entry.status}): the value "
                        "is not filed as a result")
