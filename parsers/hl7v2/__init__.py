"""HL7v2 (ER7) parsing: bytes of a file -> messages (framing) -> text (charset) -> Message.

Typical use, one file or MLLP frame::

    batch = split_batch(raw)             # never raises; batch.problems say what is odd
    for chunk in batch.messages:
        msg = parse_message(chunk, fallback_charset=source.charset)  # may raise HL7ParseError
"""

from __future__ import annotations

from parsers.hl7v2.charset import byte_place, decode
from parsers.hl7v2.er7 import Delimiters, Message, Segment, parse_text
from parsers.hl7v2.errors import HL7ParseError
from parsers.hl7v2.framing import Batch, BatchProblem, split_batch

__all__ = ["Batch", "BatchProblem", "Delimiters", "HL7ParseError", "Message", "Segment",
           "decode", "parse_message", "split_batch"]


def parse_message(data: bytes, fallback_charset: str | None = None) -> Message:
    """Decode one message (charset from MSH-18, see charset.py) and parse it.

    ``data`` is one message as cut by split_batch; an MLLP frame (VT ... FS CR) can also be
    passed as is, and blank lines are ignored by the ER7 parser. Charset warnings end up in
    ``Message.warnings`` and ``Message.charset`` is the Python codec actually used.
    Raises HL7ParseError (HL7_BAD_CHARSET, HL7_UNKNOWN_CHARSET, HL7_NO_MSH, ...)."""
    if data.startswith(b"\x0b"):
        data = data[1:]
    if data.endswith((b"\x1c", b"\x1c\r")):
        data = data[:data.rindex(b"\x1c")]
    text, codec, warnings = decode(data, fallback_charset)
    msg = parse_text(text, codec)
    if "\x00" in text:
        _refuse_nul(msg)
    if "\x1b" in text:
        warnings.append(_raw_escape_warning(text))
    if warnings:
        msg.warnings[:0] = warnings
    return msg


def _raw_escape_warning(text: str) -> str:
    """A raw ESC (an ISO 2022 switch, 0x1B) left in the text after decoding: the message
    switches sets MSH-18 does not let us read (its first repetition no 7-bit ASCII, or no
    ISO 2022 set among the others). The text after it is kept as sent; where it is said
    (the field of the first), never what."""
    at = text.index("\x1b")
    head = text[:at].encode("utf-8", "replace")
    return (f"HL7_CHARSET_SWITCH: {byte_place(head, len(head))}: {text.count(chr(0x1b))} raw "
            "ISO 2022 escape(s) (ESC) that MSH-18 does not let us read (7-bit ASCII then the "
            "sets switched to, 'ISO IR6~ISO IR87'): the text after them is kept as sent")


def _refuse_nul(msg: Message) -> None:
    """NUL is not text: a message holding one is refused where it is (PostgreSQL could not
    store the field, and no sender means it). Raised by parse_message, the pipeline's entry;
    parse_text stays a faithful reader."""
    for seg in msg.segments:
        for n, value in enumerate(seg.fields):
            if "\x00" in value:
                where = f"{seg.name}[{seg.index}]-{n}"
                raise HL7ParseError("HL7_NUL_CHARACTER",
                                    f"{where} holds a NUL character (byte 0x00), which is "
                                    "not text: the sender's system must not write it",
                                    segment=seg.name, position=seg.index, field=n)
