"""Read the MSH segment of a raw message cheaply and without failing.

The listener needs MSH before anything else: who sent the message (MSH-3/4, to route and to
refuse unknown senders), its control id, version, charset and acknowledgment types (MSH-10,
-12, -18, -15/-16) to answer it. Only the MSH line is decoded, with the charset MSH-18
declares; bytes that do not decode are replaced rather than refused, because an ACK must be
sent even for a message we will reject.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from parsers.hl7v2.charset import decode
from parsers.hl7v2.er7 import Message, parse_text, split_segments
from parsers.hl7v2.errors import HL7ParseError

_MSH = re.compile(rb"[\r\n]MSH")
_LINE_END = re.compile(rb"[\r\n\x1c]")


@dataclass(frozen=True, slots=True)
class Header:
    """The MSH of one message; ``get(n, comp)`` returns MSH-n (unescaped)."""

    msh: Message  # a one-segment message: the MSH line alone
    codec: str  # the Python codec the message's text uses (for the answer)
    # (code, text, location) when the MSH was only readable with the standard encoding
    # characters in place of the sender's unusable MSH-2: the message is to be refused
    invalid: tuple[str, str, str] | None = None

    def get(self, n: int, comp: int = 1) -> str:
        return self.msh.get(self.msh.msh, n, comp=comp)

    def raw(self, n: int) -> str:
        """MSH-n as sent, escaped, all components (to be echoed unchanged)."""
        return self.msh.msh.raw(n)

    @property
    def delimiters(self):  # noqa: ANN201
        return self.msh.delimiters

    @property
    def sender(self) -> tuple[str, str]:
        """(MSH-3, MSH-4): sending application and facility, as ``Message.sender`` reads
        them (each HD's namespace id, else its universal id)."""
        return self.get(3) or self.get(3, comp=2), self.get(4) or self.get(4, comp=2)

    @property
    def control_id(self) -> str:
        return self.get(10)

    @property
    def version(self) -> str:
        return self.get(12)

    @property
    def enhanced(self) -> bool:
        """Enhanced acknowledgment mode: MSH-15 or MSH-16 valued (v2.5 2.9.2); spaces are
        no value."""
        return bool(self.get(15).strip() or self.get(16).strip())


def read_header(data: bytes) -> Header | None:
    """The first MSH of ``data`` (which may start with VT, BOM, blank lines or FHS/BHS), or
    None when there is no readable MSH segment."""
    body = data.lstrip(b"\x0b\r\n \t")
    if body.startswith(b"\xef\xbb\xbf"):
        body = body[3:]
    if body[:3].upper() == b"MSH":  # 'msh' in lower case: parse_text reads it
        start = 0
    else:  # a batch envelope (FHS/BHS) before the first message
        m = _MSH.search(body, 0, 65536)
        if m is None:
            return None
        start = m.end() - 3
    data = body
    end = _LINE_END.search(data, start)
    line = data[start:end.start() if end else len(data)]
    try:
        text, codec, _ = decode(line)
    except HL7ParseError:
        text, codec = line.decode("latin-1"), "latin-1"
    codec = _answer_codec(text, line, codec)
    if text[3:4] == "\t":
        return _tab_separated(text, codec)
    try:
        msh = parse_text(text, codec)
    except HL7ParseError as exc:
        return _with_standard_encoding(text, codec, exc)
    return Header(msh, codec)


# What a Windows sender writes whatever its MSH-18 says: tried after the declared charset
_WINDOWS = "cp1252"


def _answer_codec(text: str, line: bytes, codec: str) -> str:
    """The codec to answer in: the one the MSH was read with, unless it cannot give the
    sender's bytes back. A Windows sender declaring 8859/1 or 8859/15 (or nothing) writes
    cp1252: its C1 bytes (0x80-0x9F: €, ’, Œ) are read as the cp1252 characters they are,
    which the declared charset lacks, and the ACK echoed 'd??uvre' in its MSH-5/6 (or
    8859/15's own bytes for Œ and €). cp1252 is taken when it, and not the declared one,
    gives back the MSH line as received; the ACK keeps the sender's MSH-18 all the same."""
    codec = _encodable(codec)
    if line.isascii():
        return codec
    for candidate in (codec, _WINDOWS):
        try:
            if text.encode(candidate) == line:
                return candidate
        except UnicodeEncodeError:
            continue
    return codec


_STANDARD_ENCODING = "^~\\&"


def _with_standard_encoding(line: str, codec: str, error: HL7ParseError) -> Header | None:
    """An MSH whose encoding characters (MSH-2) are unusable (a delimiter repeated, a letter,
    too few) while its field separator is sound, read with the standard ones instead: the
    refusal then answers the sender's MSH-10 in MSA-2, which senders match ACKs on (an ACK
    with an empty MSA-2 is dropped by such a sender, which waits and sends again), and says
    what is wrong rather than that there is no MSH."""
    if error.code != "HL7_BAD_ENCODING_CHARS" or len(line) < 5:
        return None
    separator = line[3]
    if separator.isalnum() or separator.isspace() or separator in _STANDARD_ENCODING:
        return None
    fields = line.split(separator)
    fields[1] = _STANDARD_ENCODING
    try:
        msh = parse_text(separator.join(fields), codec)
    except HL7ParseError:
        return None
    return Header(msh, _encodable(codec), invalid=(error.code, str(error), "MSH[1]-2"))


TAB_SEPARATOR = ("HL7_TAB_FIELD_SEPARATOR",
                 "MSH-1, the field separator, is a tab: a tab-separated export is not an HL7 v2 "
                 "message (ER7 fields are separated by '|'); the sender's interface must "
                 "send '|'", "MSH[1]-1")


def _tab_separated(line: str, codec: str) -> Header | None:
    """An MSH whose field separator is a tab ('MSH<TAB>^~\\&<TAB>LAB...': a spreadsheet or
    CSV-minded export, or an editor that turned '|' into tabs). HL7 v2.5 2.5.4 lets MSH-1
    be any character in theory; a tab is whitespace every engine and editor mangles, and no
    sender we know means it: the message is refused as not HL7 (HL7_TAB_FIELD_SEPARATOR),
    with an ACK that still names its MSH-10. It was refused as 'unknown format' or answered
    with fields read wrongly. The line is read with '|' in place of its tabs (only the first,
    when the rest holds '|') so that the ACK echoes the sender's MSH-3/4 and MSH-10."""
    rest = line[4:]
    text = "MSH|" + (rest if "|" in rest else rest.replace("\t", "|"))
    try:
        msh = parse_text(text, codec)
    except HL7ParseError:
        return None
    return Header(msh, _encodable(codec), invalid=TAB_SEPARATOR)


def _encodable(codec: str) -> str:
    """UTF-16 text decoded from bytes cannot be answered in kind over 8-bit MLLP: UTF-8."""
    return "utf-8" if codec.startswith("utf-16") else codec


_POSITION = re.compile(r"^([A-Z][A-Z0-9]{2})\[(\d+)\]")


def occurrence_location(data: bytes, location: str) -> str:
    """Turn our location 'OBX[7]-5' (7th segment of the message) into the HL7 ERL sense
    'OBX[2]-5' (2nd OBX), which is what ERR-2 reports. A list of places ('ORC[4]-1,OBX[6]-11':
    an ORC-1 and the document's OBX-11 that disagree) has each of them turned: only the first
    was, and ERR-2 named the 6th OBX of the message (a MetaDMPMSS one, or none) for the OBX
    carrying the document."""
    if "," not in (location or ""):
        return _one_occurrence(data, location)
    return ",".join(_one_occurrence(data, one) for one in location.split(","))


def _one_occurrence(data: bytes, location: str) -> str:
    """``occurrence_location`` of one place."""
    m = _POSITION.match(location or "")
    if not m:
        return location
    name, position = m.group(1), int(m.group(2))
    text = data.lstrip(b"\x0b").decode("latin-1")  # structure only: segment names are ASCII
    lines = split_segments(text, text[3:4] if text.startswith("MSH") else "|")
    names = [line[:3] for line in lines[:position]]
    if len(names) < position or names[-1] != name:
        return location
    return f"{name}[{names.count(name)}]{location[m.end():]}"
