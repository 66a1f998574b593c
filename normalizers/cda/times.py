"""TS readers: the zone of a document's times sent without offset and ISO 8601 times."""

from __future__ import annotations

from contextvars import ContextVar

from normalizers.cda.common import _Ctx
from normalizers.dates import BAD_TS_TEXT, PARIS, hl7_ts_to_iso, sender_zone
from parsers.cda.model import IVL, TS, Document, Value

# The zone of the times the document being read writes without offset ('20240315101500'):
# HL7 V3 TS, as HL7 v2.5 2.A.22, reads them in the sender's local time. Set for the length of
# one normalize_cda (``document_zone``); Paris's elsewhere (a CDA carried in HL7v2).
_ZONE: ContextVar[str] = ContextVar("cda_zone", default=PARIS)


def document_zone(doc: Document, declared: str | None = None) -> str:
    """The zone of a document's times sent without offset: the one its source declared,
    else the offset of its own effectiveTime when that says the sender is not in Paris
    (``sender_zone``, as MSH-7 for HL7v2: a US EHR's '20240315143200-0500'; not '+0100',
    which French senders write in any season), else Paris's.
    A C-CDA export writes the document's time with its offset and its vital signs and results
    without: read at Paris's offset they were filed five to ten hours off, and never met the
    same result received by HL7v2 (dedupe level 4)."""
    if declared:
        return declared
    ts = doc.header.effective_time
    if not isinstance(ts, TS) or not ts.value or ts.value.strip()[-5:] in _PARIS_OFFSETS:
        return PARIS
    return sender_zone(ts.value)


# Offsets that say nothing against Paris whatever the season: its winter one (French senders
# write '+0100' all year round, CI-SIS examples included) and UTC (a server clock). Its
# summer '+0200' is Paris's in summer (``sender_zone``), not in winter (Athens, Helsinki).
_PARIS_OFFSETS = frozenset({"+0100", "+0000", "-0000"})


def _effective(value: Value | None, ctx: _Ctx) -> str:
    if isinstance(value, TS) and value.value:
        return _iso_value(value.value, ctx.warnings, value.path)
    if isinstance(value, IVL):
        if value.value:
            return _iso_value(value.value, ctx.warnings, value.path)
        for v in (value.low, value.center, value.high):
            if isinstance(v, TS) and v.value:
                return _iso_value(v.value, ctx.warnings, v.path)
    return ""


def _iso(ts: TS | None, warnings: list[str], where: str) -> str | None:
    if ts is None or not ts.value:
        return None
    return _iso_value(ts.value, warnings, where) or None


def _iso_value(value: str, warnings: list[str] | None = None, where: str = "") -> str:
    try:
        return hl7_ts_to_iso(value, _ZONE.get())
    except ValueError:
        if warnings is not None:
            warnings.append(f"CDA_BAD_DATE: {where}: {BAD_TS_TEXT}, ignored")
        return ""
