"""Dedupe keys of entries: unique within a message, told apart by observation time and by order
time."""

from __future__ import annotations

from normalizers.fields import comps, first_rep, loc, part, text
from normalizers.lab.common import Ctx
from normalizers.model import Entry
from parsers.hl7v2.er7 import Message, Segment


def make_unique(ctx: Ctx, entry: Entry, obx: Segment, observed: str = "") -> None:
    """A result under the key of an earlier one of the message. Observed at another time
    (OBX-14) than the first, it is a previous result a cumulative report repeats (French
    labs' 'antériorités'): its key says that time ('...@202401100805'). By rank ('#2') the
    key named whichever previous result came second: the next report, listing one more,
    filed December's potassium as a correction of January's, and January's was gone."""
    key = entry.key
    first = ctx.observed.get(key)
    if observed and first is not None and observed != first \
            and f"{key}@{observed}" not in ctx.keys:
        entry.key = f"{key}@{observed}"
        ctx.warnings.append(f"{loc(obx)}: same test as an earlier segment of the message, "
                            "observed at another time (OBX-14): told apart by that time")
        return
    if not observed and not first:
        by_order = order_time_key(ctx, key, obx)
        if by_order is not None:
            entry.key = by_order
            return
    entry.key = unique_key(ctx, key, obx)


def order_time_sent(msg: Message, obr: Segment) -> str:
    """OBR-7 as sent (its first component, the time without its degree of precision)."""
    f = obr.fields
    if len(f) <= 7 or not f[7]:
        return ""
    return text(msg, part(comps(msg, first_rep(msg, obr, 7)), 1)).strip()


def order_time_key(ctx: Ctx, key: str, seg: Segment) -> str | None:
    """The key of a report or result under the key of an earlier one of the message whose
    order has another observation time (OBR-7): that time appended ('...@202403150900'),
    said; None when the times are the same or unsaid (ranked, ``unique_key``).

    A dynamic test (a glucose tolerance test's T0, T60, T120; serial troponins), or the
    previous results of a cumulative report sent each in its own order group, repeats one
    order number and code under several OBR-7, OBX-14 empty. Keyed by rank ('#2', '#3'),
    the order's next report, with a time added between two others (the T30 the lab had
    not validated yet), filed the T30 under the T60's key, as a new version of it: the
    T60 was gone from the dossier. As round 14 keys a cumulative report's OBX by OBX-14."""
    when, first = ctx.order_time, ctx.ordered.get(key)
    if not when or first is None or first == when or f"{key}@{when}" in ctx.keys:
        return None
    ctx.warnings.append(f"{loc(seg)}: same test as in an earlier order of the message, "
                        "observed at another time (OBR-7): told apart by that time")
    return f"{key}@{when}"


def unique_key(ctx: Ctx, key: str, seg: Segment) -> str:
    """Keys are unique within a message: the same order or the same code and sub-id twice
    get their rank appended, so that nothing silently overwrites another entry (stable
    across resends of the same message)."""
    n = 2
    while f"{key}#{n}" in ctx.keys:
        n += 1
    ctx.warnings.append(f"{loc(seg)}: same key as an earlier segment of the message; "
                        "key made unique")
    return f"{key}#{n}"
