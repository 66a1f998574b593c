"""Decode one HL7v2 message from bytes, using the charset it declares in MSH-18.

Why here and not in the ER7 parser: MSH-18 must be read before the text exists. It is read
from the raw bytes (MSH-1 is byte 3, MSH-18 the 17th separator-delimited field after "MSH";
only the first repetition names the message's charset, the others are ISO 2022 switches).

Policy (DMP-FACTS: accept what senders really send, and record a warning):

- MSH-18 names a charset of HL7 table 0211 (charsets.csv): decode strictly with it. A common
  non-standard spelling ("UTF-8", "ISO-8859-15", "CP1252"...) is accepted with a warning.
- MSH-18 declares a single-byte charset (8859/x, ASCII aside) but the bytes are valid UTF-8
  and not ASCII: the sender's label is wrong (a latin-1 text is practically never valid UTF-8
  once it holds an accent), so it is read as UTF-8 with a warning, not turned into mojibake.
- MSH-18 declares 8859/x but the bytes hold C1 controls (0x80-0x9F, never text): a Windows
  sender writing cp1252 (its € is 0x80, its œ 0x9C, which 8859/1 lacks). The source
  ``fallback`` is used if configured; otherwise the declared charset, its C1 bytes read as
  the cp1252 characters they are (filed as controls, 'Bœuf' was 'B\x9cuf'), with a warning
  either way. Bytes cp1252 leaves undefined (0x81 0x8D 0x8F 0x90 0x9D) stay as decoded.
- The declared charset fails (declared UTF-8, bytes latin-1): the per-source ``fallback``
  codec when configured, with a warning; otherwise HL7ParseError ``HL7_BAD_CHARSET`` with the
  byte offset. An unknown MSH-18 value: ``fallback`` with a warning, else
  ``HL7_UNKNOWN_CHARSET``. An admin fixes either by configuring the source's fallback, then
  reruns.
- MSH-18 empty (the standard then means ASCII): ASCII or valid UTF-8 -> UTF-8 (a warning when
  not ASCII); otherwise ``fallback`` if configured, else ISO-8859-15 (the French PAM
  default, its C1 bytes read as cp1252 as above), with a warning.
- UTF-16 text (BOM, or NULs between the letters of "MSH") is decoded as such first, since
  MSH-18 cannot be read from its bytes. A UTF-8 BOM is dropped.

Warnings are strings "CODE: text", never holding message content.
"""

from __future__ import annotations

import codecs
import csv
import re
from pathlib import Path

from parsers.hl7v2.er7 import split_segments
from parsers.hl7v2.errors import HL7ParseError

BAD_CHARSET = "HL7_BAD_CHARSET"
UNKNOWN_CHARSET = "HL7_UNKNOWN_CHARSET"
# warning codes
W_ALIAS = "HL7_CHARSET_ALIAS"  # non-standard MSH-18 spelling
W_GUESSED = "HL7_CHARSET_GUESSED"  # MSH-18 empty, non-ASCII bytes
W_FALLBACK = "HL7_CHARSET_FALLBACK"  # declared charset failed or unknown, source fallback used
W_MISMATCH = "HL7_CHARSET_MISMATCH"  # declared charset contradicted by the bytes

DEFAULT_8BIT = "iso-8859-15"
_TABLE_FILE = Path(__file__).with_name("charsets.csv")
_LINE_END = re.compile(rb"[\r\n]")
_C1 = re.compile(rb"[\x80-\x9f]")
# C1 control (as an 8859/x decoding gives byte 0x80-0x9F) -> the cp1252 character of that byte
_C1_AS_CP1252 = str.maketrans({
    chr(b): bytes([b]).decode("cp1252") for b in range(0x80, 0xA0)
    if bytes([b]).decode("cp1252", "replace") != "\ufffd"})


def _load_table(path: Path = _TABLE_FILE) -> dict[str, tuple[str, bool]]:
    """HL7 name (normalised) -> (Python codec, standard?). Codecs are checked at load time so
    that a typo in the table fails the import, not a message at 3 a.m."""
    with path.open(encoding="utf-8", newline="") as f:
        rows = csv.DictReader(line for line in f if not line.startswith("#"))
        table = {}
        for row in rows:
            codecs.lookup(row["codec"])
            table[_norm(row["hl7_name"])] = (row["codec"], row["standard"] == "yes")
    return table


def _norm(name: str) -> str:
    return " ".join(name.upper().split())


CHARSETS: dict[str, tuple[str, bool]] = _load_table()


def hl7_name(codec: str) -> str | None:
    """The HL7 table 0211 name of a Python codec: the first standard name charsets.csv
    gives it, None when the table has none (cp1252, a Windows charset HL7 does not name)."""
    wanted = codecs.lookup(codec).name
    return next((name for name, (python, standard) in CHARSETS.items()
                 if standard and codecs.lookup(python).name == wanted), None)


_SEGMENT_NAME = re.compile(r"[A-Z][A-Z0-9]{2}")


def byte_place(data: bytes, offset: int) -> str:
    """Where byte ``offset`` of a message lies, as the parser numbers it ('PID[2]-5'; 'segment
    3' when its line starts no segment): the field an integrator opens to find the character
    their system wrote in another charset. Read from the ASCII separators only (the bytes
    cannot be decoded: that is the problem); the value itself is never returned."""
    fsep = data[3:4].decode("latin-1") if data[:3].upper() == b"MSH" else "|"
    # one placeholder for the byte: the line it is on exists even when it starts one
    lines = split_segments(data[:offset].decode("latin-1") + "?", fsep or "|")
    line = lines[-1]
    name = line[:3]
    if not _SEGMENT_NAME.fullmatch(name) or line[3:4] not in (fsep, ""):
        return f"segment {len(lines)}"
    field = line.count(fsep) + (1 if name == "MSH" else 0)
    return f"{name}[{len(lines)}]-{field}"


def declared_charset(data: bytes) -> str:
    """The first repetition of MSH-18 as written ('' when absent or when there is no MSH)."""
    labels = declared_charsets(data)
    return labels[0] if labels else ""


def declared_charsets(data: bytes) -> list[str]:
    """Every repetition of MSH-18 as written ([] when absent or when there is no MSH): the
    first names the message's charset, the others the sets ISO 2022 switches bring in."""
    start = 3 if data.startswith(codecs.BOM_UTF8) else 0
    if data[start:start + 3].upper() != b"MSH":  # 'msh': see er7.parse_text
        stripped = data[start:start + 64].lstrip(b" \t\r\n\x0b")
        if stripped[:3].upper() != b"MSH":
            return []
        start += data[start:start + 64].index(stripped[:3])
    m = _LINE_END.search(data, start)
    line = data[start:m.start() if m else len(data)]
    sep = line[3:4]
    if not sep:
        return []
    parts = line.split(sep, 18)
    if len(parts) < 18:
        return []
    enc = parts[1]
    values = parts[17].split(enc[1:2]) if enc[1:2] else [parts[17]]  # repetitions
    if enc[0:1]:
        values = [v.split(enc[0:1])[0] for v in values]  # component 1
    return [v.strip().decode("ascii", "replace") for v in values]


def _iso2022_codec(data: bytes, labels: list[str]) -> str | None:
    """The ISO 2022 codec of a 7-bit message that switches sets with raw ESC sequences
    (v2.5 2.15.9.18/20: MSH-18 '~ISO IR87' or 'ISO IR6~ISO IR87', its first repetition
    ASCII, the others the sets switched to; MSH-20 'ISO 2022-1994'), None for any other.
    Decoded as its first repetition (ASCII) alone, the ESC bytes and the 7-bit JIS pairs
    after them were filed as text ('\\x1b$B;3ED' for a name) without a word. Japanese
    receivers decode the whole message so before reading its delimiters, as here."""
    if b"\x1b" not in data or not labels or len(labels) < 2:
        return None
    first = CHARSETS.get(_norm(labels[0])) if labels[0] else ("ascii", True)
    if first is None or first[0] != "ascii":
        return None
    found = {CHARSETS[_norm(x)][0] for x in labels[1:]
             if _norm(x) in CHARSETS and CHARSETS[_norm(x)][0].startswith("iso2022")}
    if not found:
        return None
    return found.pop() if len(found) == 1 else "iso2022_jp_2"  # jp_2 reads jp's and jp_1's


def decode(data: bytes, fallback: str | None = None) -> tuple[str, str, list[str]]:
    """Return (text, Python codec used, warnings); see the module doc for the policy.

    ``fallback`` is the per-source codec configured by an admin (e.g. 'cp1252'); an unknown
    codec name there is a configuration error and raises LookupError."""
    if fallback is not None:
        codecs.lookup(fallback)
    warnings: list[str] = []
    if data.startswith(codecs.BOM_UTF8):
        data = data[3:]
    utf16 = _utf16_codec(data)
    if utf16:
        return _decode_utf16(data, utf16, warnings)
    labels = declared_charsets(data)
    label = labels[0] if labels else ""
    switched = _iso2022_codec(data, labels)
    if switched is not None:
        return _strict(data, switched, f"the ISO 2022 sets MSH-18 names ({switched})"), \
            switched, warnings
    if not label:
        return _undeclared(data, fallback, warnings)
    entry = CHARSETS.get(_norm(label))
    if entry is None:
        if fallback is None:
            raise HL7ParseError(UNKNOWN_CHARSET,
                                f"MSH-18 value {label[:20]!r} is not a known character set",
                                segment="MSH", position=1, field=18)
        warnings.append(f"{W_FALLBACK}: MSH-18 value {label[:20]!r} is not a known character "
                        f"set; decoded with the source fallback {fallback}")
        return _strict(data, fallback, f"the source fallback {fallback}"), fallback, warnings
    codec, standard = entry
    if not standard:
        warnings.append(f"{W_ALIAS}: MSH-18 value {label!r} is not in HL7 table 0211; "
                        f"read as {codec}")
    if codec in ("utf-16", "utf-32"):
        # MSH-18 was readable from the bytes, so they are not UTF-16/32: the label is wrong.
        warnings.append(f"{W_MISMATCH}: MSH-18 declares {label!r} but the message is 8-bit")
        return _undeclared(data, fallback, warnings)
    if (codec.startswith("iso-8859") or codec == "cp1252") and not data.isascii():
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            pass
        else:
            warnings.append(f"{W_MISMATCH}: MSH-18 declares {label!r} but the bytes are "
                            f"valid UTF-8; read as utf-8")
            return text, "utf-8", warnings
    if codec.startswith("iso-8859") and not data.isascii():
        c1 = _C1.search(data)
        if c1:  # C1 controls are never text: a Windows sender writing cp1252 (€ is 0x80)
            if fallback is not None:
                warnings.append(f"{W_FALLBACK}: byte {c1.start()} is a C1 control in {codec} "
                                f"(MSH-18 {label!r}); decoded with the source fallback "
                                f"{fallback}")
                return (_strict(data, fallback, f"the source fallback {fallback}"), fallback,
                        warnings)
            warnings.append(f"{W_MISMATCH}: byte {c1.start()} is a C1 control in {codec} "
                            f"(MSH-18 {label!r}): C1 bytes read as cp1252; configure the "
                            f"source's fallback charset")
            try:
                return data.decode(codec).translate(_C1_AS_CP1252), codec, warnings
            except UnicodeDecodeError:
                pass  # said below, as any byte the declared charset lacks
    try:
        return data.decode(codec), codec, warnings
    except UnicodeDecodeError as e:
        if fallback is None:
            raise HL7ParseError(
                BAD_CHARSET,
                f"byte {e.start} (in {byte_place(data, e.start)}) is not valid {codec}, the "
                f"character set declared in MSH-18 ({label[:20]!r}): the message was written "
                f"in another character set; declare that one in MSH-18 (or configure the "
                f"source's fallback charset)",
                segment="MSH", position=1, field=18) from None
        warnings.append(f"{W_FALLBACK}: byte {e.start} (in {byte_place(data, e.start)}) is not "
                        f"valid {codec} (MSH-18 {label[:20]!r}); decoded with the source "
                        f"fallback {fallback}")
        return _strict(data, fallback, f"the source fallback {fallback}"), fallback, warnings


def _undeclared(data: bytes, fallback: str | None,
                warnings: list[str]) -> tuple[str, str, list[str]]:
    """No usable MSH-18: UTF-8 if the bytes allow it, else the source fallback or 8859/15."""
    if data.isascii():
        return data.decode("ascii"), "utf-8", warnings
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        codec = fallback or DEFAULT_8BIT
        why = f"the source fallback {fallback}" if fallback else f"the default {DEFAULT_8BIT}"
        warnings.append(f"{W_GUESSED}: no character set in MSH-18 and byte {e.start} (in "
                        f"{byte_place(data, e.start)}) is not valid utf-8; decoded with {why}")
        text = _strict(data, codec, why)
        if fallback is None and _C1.search(data):
            warnings.append(f"{W_GUESSED}: C1 bytes read as cp1252")
            text = text.translate(_C1_AS_CP1252)
        return text, codec, warnings
    warnings.append(f"{W_GUESSED}: no character set in MSH-18; non-ASCII bytes read as utf-8")
    return text, "utf-8", warnings


def _strict(data: bytes, codec: str, why: str) -> str:
    try:
        return data.decode(codec)
    except UnicodeDecodeError as e:
        raise HL7ParseError(BAD_CHARSET, f"byte {e.start} (in {byte_place(data, e.start)}) is "
                            f"not valid {codec} ({why})",
                            segment="MSH", position=1, field=18) from None


def _utf16_codec(data: bytes) -> str:
    """'utf-16' (with BOM), 'utf-16-le' or 'utf-16-be' when the bytes look UTF-16, else ''."""
    head = data[:6]
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if head == b"M\x00S\x00H\x00":
        return "utf-16-le"
    if head == b"\x00M\x00S\x00H":
        return "utf-16-be"
    return ""


def _decode_utf16(data: bytes, codec: str,
                  warnings: list[str]) -> tuple[str, str, list[str]]:
    text = _strict(data, codec, "UTF-16 detected from the bytes")
    label = declared_charset(text[:4096].encode("utf-8", "replace"))
    entry = CHARSETS.get(_norm(label)) if label else None
    if entry is None or entry[0] != "utf-16":
        warnings.append(f"{W_MISMATCH}: the bytes are UTF-16 but MSH-18 declares {label!r}")
    return text, codec, warnings
