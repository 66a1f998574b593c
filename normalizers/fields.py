"""Small helpers to read HL7v2 data types out of a parsed segment without building trees.

Why not ``Message.get`` everywhere: it splits the field again for every component read. A
normalizer reads several components of the same field, so it splits once here (and unescapes
only the components it keeps). Positions are 1-based, as in the standard.
"""

from __future__ import annotations

from functools import lru_cache

from normalizers.dates import BAD_TS_TEXT, hl7_ts_to_iso, is_hl7_ts, sender_zone
from normalizers.model import NormalizationError
from normalizers.tabledata import table
from parsers.hl7v2.er7 import Delimiters, Message, Segment
from parsers.hl7v2.escape import unescape


def loc(seg: Segment, field: int | None = None) -> str:
    """'OBX[7]-5': segment name, its position in the message, field. Never patient data."""
    out = f"{seg.name}[{seg.index}]"
    return out if field is None else f"{out}-{field}"


def reps(msg: Message, seg: Segment, n: int) -> list[str]:
    """Raw (escaped) repetitions of field n; [] when empty."""
    raw = seg.fields[n] if n < len(seg.fields) else ""
    return raw.split(msg.delimiters.repetition) if raw else []


def first_rep(msg: Message, seg: Segment, n: int) -> str:
    raw = seg.fields[n] if n < len(seg.fields) else ""
    rsep = msg.delimiters.repetition
    return raw.split(rsep, 1)[0] if rsep in raw else raw


def comps(msg: Message, rep: str) -> list[str]:
    """Raw components of one repetition."""
    return rep.split(msg.delimiters.component) if rep else []


def part(parts: list[str], i: int) -> str:
    """Element i (1-based) of a split list, '' when absent."""
    return parts[i - 1] if i <= len(parts) else ""


def text(msg: Message, raw: str) -> str:
    """Unescape a leaf value; surrounding blanks removed (padding from fixed-width senders).

    Calls the escape module directly: most values hold no escape at all, and this is the
    hottest function of the normalizers."""
    if not raw:
        return ""
    d = msg.delimiters
    if d.escape in raw:
        return unescape(raw, d).strip()
    return raw.strip()


def unescaped(msg: Message, raw: str) -> str:
    """Unescape without stripping (text values whose leading blanks are layout)."""
    d = msg.delimiters
    return unescape(raw, d) if raw and d.escape in raw else raw


def sub(msg: Message, component: str, i: int) -> str:
    """Subcomponent i (1-based) of a raw component, unescaped."""
    if not component:
        return ""
    d = msg.delimiters
    if d.subcomponent not in component:
        if i != 1:
            return ""
        return unescape(component, d).strip() if d.escape in component else component.strip()
    return text(msg, part(component.split(d.subcomponent), i))


def field_text(msg: Message, seg: Segment, n: int, comp: int = 1) -> str:
    """Component ``comp`` (subcomponent 1) of the first repetition of field n, unescaped."""
    return sub(msg, part(comps(msg, first_rep(msg, seg, n)), comp), 1)


def id_code(msg: Message, seg: Segment, n: int) -> str:
    """The code of an ID field (one code of an HL7 table, no components), upper case: its
    first component when the sender wrote it as a coded element.

    Why: OBX-11 and OBR-25 stay ID up to v2.9, but engines that write every coded field as a
    CWE (v2.7+ senders, FHIR-to-v2 bridges) send 'F^Final^HL70085' or 'C^Correction^HL70123'.
    Read whole, the status was 'unknown': a final result filed as of unknown status, a
    correction filed as a new result beside the value it corrects."""
    raw = first_rep(msg, seg, n)
    if msg.delimiters.component in raw:
        raw = part(comps(msg, raw), 1)
    return text(msg, raw).upper()


def person_name(msg: Message, rep: str, family_at: int = 2) -> str:
    """An XCN / CNN / NDL person as 'PREFIX GIVEN FAMILY' (or its id when no name is given).

    ``family_at`` is 2 for XCN (id^family^given^middle^suffix^prefix) and 1 for XPN.
    """
    return _person_name(msg.delimiters, rep, family_at)


@lru_cache(maxsize=4096)
def _person_name(d: Delimiters, rep: str, family_at: int) -> str:
    """``person_name`` of the raw text alone (cached: every report of a lab names the same
    few practitioners). ``leaf`` reads a component as ``sub(msg, x, 1)`` does and a
    subcomponent as ``text`` does."""
    c = rep.split(d.component) if rep else []
    if len(c) == 1 and d.subcomponent in rep:  # CNN inside NDL: id&family&given
        s = [leaf(d, x) for x in rep.split(d.subcomponent)]
        c_id, family, given, prefix = part(s, 1), part(s, 2), part(s, 3), part(s, 6)
    else:
        c_id = leaf(d, part(c, 1)) if family_at == 2 else ""
        family = leaf(d, part(c, family_at))
        given = leaf(d, part(c, family_at + 1))
        prefix = leaf(d, part(c, family_at + 4))
    name = " ".join(x for x in (prefix, given, family) if x)
    return name or c_id


def organization(msg: Message, rep: str) -> str:
    """An XON as its name (XON.1), else its identifier (XON.10, or XON.3 before v2.5)."""
    c = comps(msg, rep)
    return sub(msg, part(c, 1), 1) or sub(msg, part(c, 10), 1) or sub(msg, part(c, 3), 1)


def ts_field(msg: Message, seg: Segment, n: int) -> str | None:
    """A TS/DTM field as ISO 8601 (precision kept, TS.2's degree of precision honoured),
    None when empty.

    Raises NormalizationError HL7_BAD_DATE naming the field ('OBR[3]-7'), never the value.
    """
    c = comps(msg, first_rep(msg, seg, n))
    raw = part(c, 1)
    if not raw:
        return None
    try:
        return hl7_ts_to_iso(with_degree(text(msg, raw), text(msg, part(c, 2))), zone_of(msg))
    except ValueError:
        where = loc(seg, n)
        raise NormalizationError("HL7_BAD_DATE", f"{where}: {BAD_TS_TEXT}",
                                 where) from None


def with_degree(value: str, degree: str) -> str:
    """A TS value and its degree of precision (TS.2, v2.3 to v2.5) in the 'value^degree'
    form ``hl7_ts_to_iso`` cuts to that precision; the value alone when none was sent."""
    return f"{value}^{degree}" if degree and value else value


def zone_of(msg: Message) -> str:
    """The zone the sender's times without offset are in: the one its source declared
    (``msg.zone``), else ``sender_zone`` of MSH-7. Declared wins: MSH-7 gives an offset at
    one instant, while a declared zone knows its summer time (a US lab) and is right even
    when MSH-7 carries no offset (a lab in La Réunion or Guadeloupe writing local times)."""
    return msg.zone or sender_zone(msg.msh.raw(7))


def header_warnings(msg: Message) -> list[str]:
    """What the header (MSH) holds that the normalizers would otherwise read past without a
    word, for the import's warnings (named by field, never by value; the message is read
    all the same). One place for every message type: ``normalizers.lab.normalize_message``.

    - MSH-7 sent but no HL7 date/time: the sender's zone (``zone_of``) cannot be read from
      it, so its times without offset are read at Paris's (or the source's declared zone),
      perhaps hours away from what the sender meant.
    - MSH-12 empty, or no HL7 v2 version id (``tables/hl7_versions.csv``, HL7 table 0104):
      a sender's misconfiguration (or a field shifted by a malformed MSH) worth fixing.
    - MSH-11 T (training) or D (debugging): a test channel's message, filed in a real
      dossier. The MLLP listener refuses them unless told otherwise ([mllp]
      processing_ids); a file, a bucket or HTTP has no answer to give, so the import says
      it here for the operator who reads the ledger."""
    out = []
    msh = msg.msh
    sent_at = text(msg, part(comps(msg, first_rep(msg, msh, 7)), 1))
    if sent_at and not is_hl7_ts(sent_at):
        zone = "the source's declared zone" if msg.zone else "Paris time"
        out.append(f"MSH-7: the message date/time is {BAD_TS_TEXT}; the sender's time zone "
                   f"cannot be read from it, its times without offset are read in {zone}")
    version = text(msg, part(comps(msg, first_rep(msg, msh, 12)), 1))
    if not version:
        out.append("MSH-12: no version id (the HL7 v2 version, 2.5, 2.5.1...); the message is "
                   "read all the same")
    elif version not in _hl7_versions():
        out.append("MSH-12: the version id is no HL7 v2 version (2.1 to 2.9.1: 2.3.1, 2.5.1, "
                   "2.8.2...); the message is read all the same")
    processing = text(msg, part(comps(msg, first_rep(msg, msh, 11)), 1)).strip().upper()
    if processing in _TEST_PROCESSING_IDS:
        out.append(f"MSH-11: processing id {processing!r} "
                   f"({_TEST_PROCESSING_IDS[processing]}), not production: filed all the "
                   "same; check that this sender's test channel is not pointed here")
    return out


# HL7 table 0103 values that say a message is no production traffic (MSH-11.1)
_TEST_PROCESSING_IDS = {"T": "training", "D": "debugging"}


@lru_cache(maxsize=1)
def _hl7_versions() -> frozenset[str]:
    return frozenset(row["version"] for row in table("hl7_versions"))


def logical_id(msg: Message, sender: str | None = None) -> str:
    """Sender (MSH-3|MSH-4) + '|' + MSH-10: the id of the message for dedupe level 2.
    ``sender``: ``msg.sender`` when the caller has it already."""
    control_id = msg.control_id.strip()
    if not control_id:
        raise NormalizationError("HL7_NO_CONTROL_ID", "MSH-10: no message control id (it "
                                 "identifies the message: acknowledgments and resends are "
                                 "matched on it)", "MSH-10")
    return f"{msg.sender if sender is None else sender}|{control_id}"


def leaf(d: Delimiters, x: str) -> str:
    """A component as a value: first subcomponent, unescaped, stripped. The fast path of the
    hot loops (one call instead of part/sub/text)."""
    if not x:
        return ""
    if d.subcomponent in x:
        x = x.split(d.subcomponent, 1)[0]
    if d.escape in x:
        x = unescape(x, d)
    return x.strip()


def split_field(d: Delimiters, raw: str) -> list[str]:
    """Components of the first repetition of a raw field ([''] when empty)."""
    if d.repetition in raw:
        raw = raw.split(d.repetition, 1)[0]
    return raw.split(d.component)
