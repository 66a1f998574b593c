"""Write an HL7v2 acknowledgment (ACK) for a received message header (v2.5 chapter 2.9, 2.14),
and the batch that answers a received batch (v2.5 2.10.3.3, ``build_batch_ack``).

The ACK answers in the sender's own terms: MSH-3/4 and MSH-5/6 swapped, the same encoding
characters, version (MSH-12), processing id (MSH-11) and character set (MSH-18, and the bytes
encoded with it), a new control id in MSH-10, and MSA-2 = the received MSH-10. An error is
carried by an ERR segment: for v2.5 and later ERR-2 (location), ERR-3 (HL7 table 0357 code),
ERR-4 (severity) and ERR-8 (text); before v2.5 the same in ERR-1 (ELD). MSA-3 repeats the text
for receivers that only read MSA, up to v2.6: v2.7 withdrew it (ERR carries the error), and an
engine that validates ACKs against v2.7+ may reject a filled one. Texts are ours (codes,
positions), never message content.
"""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from parsers.hl7v2.charset import CHARSETS, hl7_name
from parsers.hl7v2.er7 import Delimiters
from parsers.hl7v2.escape import escape
from parsers.hl7v2.framing import Outline
from parsers.hl7v2.header import Header

# HL7 table 0357 texts for the codes we send
ERROR_TEXTS = {
    "0": "Message accepted", "100": "Segment sequence error", "101": "Required field missing",
    "102": "Data type error", "103": "Table value not found", "104": "Value too long",
    "200": "Unsupported message type", "201": "Unsupported event code",
    "202": "Unsupported processing id", "203": "Unsupported version id",
    "204": "Unknown key identifier", "205": "Duplicate key identifier",
    "206": "Application record locked", "207": "Application internal error",
}
_LOCATION = re.compile(r"^([A-Z][A-Z0-9]{2})(?:\[(\d+)\])?(?:-(\d+)(?:\[(\d+)\])?"
                       r"(?:\.(\d+))?(?:\.(\d+))?)?")
_counter = itertools.count()
_VERSION = re.compile(r"\s*[vV]?(\d+(?:\.\d+){0,2})")  # MSH-12.1's number, 3 parts at most
# ERR-8 (user message) is TX 250 in v2.5 and v2.6: a longer text (a location list, a long
# reason) made an ACK that engines validating lengths (HAPI's strict parser) reject
ERR_TEXT_MAX = 250


@dataclass(frozen=True, slots=True)
class AckError:
    """What went wrong, for the ERR segment."""

    hl7_code: str  # HL7 table 0357
    text: str  # ours: code and reason, no patient data
    location: str = ""  # 'OBX[4]-5.1' style (parsers.hl7v2.errors), '' when unknown
    severity: str = "E"  # E error, W warning, I information


def new_control_id() -> str:
    """20 characters at most (MSH-10 is ST 20 before v2.7), unique within this process and
    increasing across restarts (milliseconds, then a counter)."""
    return f"A{int(time.time() * 1000):013d}{next(_counter) % 1_000_000:06d}"


def build_ack(header: Header | None, code: str, *, error: AckError | None = None,
              control_id: str | None = None, now: datetime | None = None,
              application: str = "DMP", warnings: Sequence[AckError] = ()) -> bytes:
    """The ACK message for ``header`` (None: the frame held no readable MSH; the answer then
    uses default delimiters, v2.5 and UTF-8), encoded in the message's charset.

    ``warnings``: more ERR segments after ``error``'s, one per thing to tell (v2.5 2.14.5:
    ERR repeats in ACK), e.g. severity W for each document filed unread; MSA-3 (before v2.7)
    gives the first one's text when there is no ``error``."""
    d = header.delimiters if header is not None else Delimiters()
    stamp = (now or datetime.now().astimezone()).strftime("%Y%m%d%H%M%S%z")
    if header is not None:
        version = header.get(12) or "2.5"
        trigger = escape(header.get(9, comp=2), d)  # as text again: never a delimiter
        fields = ["MSH", d.field, header.raw(2),
                  header.raw(5) or application, header.raw(6),  # we answer as the receiver
                  header.raw(3), header.raw(4), stamp, "",
                  _message_type(trigger, version, d), control_id or new_control_id(),
                  header.raw(11) or "P", header.raw(12) or "2.5"]
        tail = [header.raw(n) for n in (13, 14, 15, 16, 17, 18, 19)]
        tail[:4] = ["", "", "", ""]  # MSH-13 to -16: an ACK is not itself acknowledged
        if _wide(header.get(18)):  # what its bytes are (MSH-18 says how to read them)
            tail[5] = hl7_name(header.codec) or tail[5]
        while tail and not tail[-1]:
            tail.pop()
        fields += tail
        received_id = header.raw(10)
        codec = answer_codec(header)
    else:
        version = "2.5"
        fields = ["MSH", d.field, _encoding(d), application, "", "", "", stamp, "", "ACK",
                  control_id or new_control_id(), "P", version]
        received_id = ""
        codec = "utf-8"
    msh = d.field.join([fields[0], *fields[2:]])
    msa = ["MSA", code, received_id]
    segments = [msh]
    errors = ([error] if error is not None else []) + list(warnings)
    if errors and not _version_at_least(version, (2, 7)):
        msa.append(_truncate(errors[0].text, 80, d))
    segments.append(d.field.join(msa))
    segments += [_err(e, version, d) for e in errors]
    return ("\r".join(segments) + "\r").encode(codec, errors="replace")


def answer_codec(header: Header) -> str:
    """The codec the answer's bytes are written in: the one the message was read with,
    except under a declared UTF-8 (MSH-18 'UNICODE UTF-8') that the bytes were not (a
    latin-1 sender labelled UTF-8, read with its fallback): the ACK echoed those latin-1
    bytes ('SAINT-\\xc9TIENNE' in MSH-5/6) under the same MSH-18, an answer invalid in the
    charset it declares, which an engine decoding UTF-8 strictly (HAPI, Mirth) refuses as
    unreadable, then sends the message again. It is written in UTF-8, as it declares."""
    declared = CHARSETS.get(" ".join(header.get(18).upper().split()), ("", False))[0]
    if declared == "utf-8" and header.codec != "utf-8":
        return "utf-8"
    return header.codec


def _wide(declared: str) -> bool:
    """MSH-18 (its first repetition) names UTF-16 or UTF-32. The ACK is then written in
    UTF-8 (MLLP's framing bytes cannot be told apart inside UTF-16/32 text), or in the
    single-byte charset the message's bytes were in fact read with, and its MSH-18 names
    that charset instead of echoing the field: it echoed 'UNICODE UTF-16' over UTF-8 bytes
    (and 'UNICODE UTF-16~8859/1' over latin-1 ones), and an engine that reads its answers
    by MSH-18 (HAPI) read the ACK as UTF-16, unreadable, and sent the message again."""
    codec = CHARSETS.get(" ".join(declared.upper().split()), ("", False))[0]
    return codec.startswith(("utf-16", "utf-32"))


def _encoding(d: Delimiters) -> str:
    return d.component + d.repetition + d.escape + d.subcomponent


def _message_type(trigger: str, version: str, d: Delimiters) -> str:
    """ACK^<trigger>^ACK from v2.3.1 on (MSG.3 message structure), ACK^<trigger> before."""
    parts = ["ACK", trigger] if trigger else ["ACK"]
    if trigger and _version_at_least(version, (2, 3, 1)):
        parts.append("ACK")
    return d.component.join(parts)


def _version_at_least(version: str, floor: tuple[int, ...]) -> bool:
    """Whether MSH-12.1 is ``floor`` or later. A version written with a 'V' or with text
    after its number ('V2.4', 'v2.3.1', '2.4b') is read by that number; one with no number
    at all as 2.5, the version an ACK to an empty MSH-12 says. Such versions were read as
    the newest: a 'V2.4' sender's AE came in the v2.7 layout (ERR-2..8, no MSA-3), and its
    v2.4 engine, which reads ERR-1 and MSA-3, found no error text at all."""
    m = _VERSION.match(version)
    numbers = tuple(int(n) for n in m.group(1).split(".")) if m else (2, 5)
    return numbers >= floor


def _err(error: AckError, version: str, d: Delimiters) -> str:
    """The ERR segment. A location naming several fields ('MSH-9,OBX[6]-11': a CI-SIS
    trigger and OBX-11 that disagree) is one repetition of ERR-2 (ERR-1 before v2.5) per
    field: only the first was given, and the sender was pointed at MSH-9 alone."""
    text = _truncate(error.text, ERR_TEXT_MAX, d)
    hl7_text = ERROR_TEXTS.get(error.hl7_code, "")
    places = [_location(one) for one in (error.location or "").split(",")]
    if _version_at_least(version, (2, 5)):
        erl = d.repetition.join(
            d.component.join([seg, seq, field, rep, comp, sub]).rstrip(d.component)
            for seg, seq, field, rep, comp, sub in places)
        cwe = d.component.join([error.hl7_code, hl7_text, "HL70357"])
        return d.field.join(["ERR", "", erl, cwe, error.severity, "", "", "", text])
    # ERR-1 (ELD): segment ^ sequence ^ field ^ code&text&table
    ce = d.subcomponent.join([error.hl7_code, hl7_text, "HL70357"])
    return d.field.join(["ERR", d.repetition.join(
        d.component.join([seg, seq, field, ce]) for seg, seq, field, *_ in places)])


def _location(location: str) -> tuple[str, str, str, str, str, str]:
    m = _LOCATION.match(location or "")
    if not m:
        return ("", "", "", "", "", "")
    seg, seq, field, rep, comp, sub = m.groups()
    return (seg, seq or "1", field or "", (rep or "1") if field else "", comp or "", sub or "")


def _truncate(text: str, n: int, d: Delimiters) -> str:
    """``text`` escaped, ``n`` characters at most once escaped (MSA-3 is ST 80 on the wire);
    a cut is marked '...' and never falls inside an escape sequence."""
    out = escape(text, d)
    if len(out) <= n:
        return out
    kept: list[str] = []
    size = 3
    for c in text:
        e = escape(c, d)
        if size + len(e) > n:
            break
        kept.append(e)
        size += len(e)
    return "".join(kept) + "..."


def build_batch_ack(shape: Outline, acks: list[list[bytes]], header: Header | None, *,
                    comments: Mapping[int, str] | None = None, now: datetime | None = None,
                    application: str = "DMP") -> bytes:
    """The response batch to a received batch (v2.5 2.10.3.3: "its format is a batch of
    individual messages", here ACKs): for each received batch a BHS, the ACKs of its
    messages, a BTS whose BTS-1 counts them.

    ``acks``: for each received message, in order, the ACK messages answering it (none when
    its MSH-15/16 asked for none, two for a commit then an application ACK); the groups of
    ``shape`` take them in order. ``comments``: group index -> text for BHS-10 and BTS-2 (an
    envelope problem: a count not reached, a trailer missing). Each BHS swaps the received
    sender and receiver (falling back on the first message's MSH-3..6 when the BHS names
    nobody), gets a new control id in BHS-11 and echoes the received one in BHS-12 (reference
    batch control id). No FHS/FTS, even for a received file: a response is "a batch" in
    2.10.3.3, FHS is optional in 2.10.3.1, and node-hl7-client 4.0.0 cannot read a reply
    that starts with FHS (its reply reader takes it as a Batch, which must begin with BHS or
    MSH). The envelope uses the first message's delimiters and charset (``header``), as its
    ACK does; without any message, the BHS's own delimiters and UTF-8."""
    d = header.delimiters if header is not None else _envelope_delimiters(shape)
    codec = answer_codec(header) if header is not None else "utf-8"
    stamp = (now or datetime.now().astimezone()).strftime("%Y%m%d%H%M%S%z")
    comments = comments or {}

    def line(text: str) -> bytes:
        return (text + "\r").encode(codec, errors="replace")

    out: list[bytes] = []
    taken = 0
    for n, group in enumerate(shape.groups):
        answers = [a for message in acks[taken:taken + group.messages] for a in message]
        taken += group.messages
        comment = comments.get(n, "")
        out.append(line(_envelope_header(group.header, header, d, codec, stamp, comment,
                                         application)))
        out += answers  # each in its own message's charset, ending with CR (build_ack)
        out.append(line(d.field.join(["BTS", str(len(answers))]
                                     + ([_truncate(comment, 80, d)] if comment else []))))
    return b"".join(out)


def _envelope_header(received: bytes | None, header: Header | None, d: Delimiters,
                     codec: str, stamp: str, comment: str, application: str) -> str:
    """BHS of the response: fields 3-6 swapped, 7 now, 10 the comment, 11 a new control id,
    12 the received BHS-11."""
    got = _raw_fields(received, codec)
    msh = {n: header.raw(n) if header is not None else "" for n in (3, 4, 5, 6)}
    # the encoding characters of the ACKs inside, as their MSH-2 echoes them: a v2.7+
    # sender's truncation character too ('^~\\&#'), which BHS-2 dropped while each MSH-2
    # inside kept it
    encoding = header.raw(2) if header is not None and header.invalid is None \
        else _encoding(d)
    fields = ["BHS", encoding,
              got.get(5) or msh[5] or application, got.get(6) or msh[6],
              got.get(3) or msh[3], got.get(4) or msh[4], stamp, "", "",
              _truncate(comment, 80, d) if comment else "", new_control_id(),
              got.get(11, "")]
    while fields and not fields[-1]:
        fields.pop()
    return d.field.join(fields)


def _raw_fields(line: bytes | None, codec: str) -> dict[int, str]:
    """Fields 3 and on of a received BHS line as sent (escaped), by number."""
    if not line or len(line) < 4:
        return {}
    text = line.decode(codec, errors="replace")
    parts = text.split(text[3])
    return {n: value for n, value in enumerate(parts[2:], start=3)}


def _envelope_delimiters(shape: Outline) -> Delimiters:
    """The delimiters the received BHS declares (its fields 1 and 2), for a response that has
    no message to take them from (an empty batch)."""
    line = next((g.header for g in shape.groups if g.header), None)
    if not line or len(line) < 8:
        return Delimiters()
    text = line.decode("latin-1")
    separator, encoding = text[3], text[4:].split(text[3])[0]
    if len(encoding) < 4 or separator.isalnum() or len(set(encoding + separator)) < 5:
        return Delimiters()
    return Delimiters(separator, encoding[0], encoding[1], encoding[2], encoding[3])
