r"""HL7v2 escape sequences (v2.5 chapter 2.7): \F\ \S\ \T\ \R\ \E\ \Xhh..\ \.br\ and friends;
\P\ (v2.7 2.7.1) is the truncation character of MSH-2 ('#'), which a v2.7+ encoder escapes
wherever the text holds one ('Flacon \P\2' is 'Flacon #2').

Formatting commands carry no text and are dropped (\H\ \N\ \.in\ \.fi\ ...), except those
that move the text: \.br\ \.ce\ (a newline), \.sp<n>\ (n newlines), \.sk<n>\ (n spaces).
\Xhh\ is hexadecimal data in the message's charset: it is decoded as UTF-8 when valid (what
senders who use it mostly put there), else in the message's own charset (``\XA4\`` is '€' in
an ISO 8859-15 message), else latin-1; data holding a zero byte, or no text in any of those
(``\X20AC\``), is read as code points (``\X00B5\`` is 'µ', ``\X20AC\`` '€', see
``_code_points`` and ``_hex_data``) or kept as sent.
Unknown or unterminated sequences are kept verbatim: a faithful parse never invents text.

ISO 2022 character set switches (v2.5 2.7.4: \Cxxyy\ single-byte, \Mxxyy[zz]\ multi-byte,
the bytes after ESC in hex) change what the text after them means, up to the next switch or
the end of the value: '\M2442\' then 7-bit bytes is Japanese (JIS X 0208), '\C2D62\' then a
byte 0xBD is 'œ' (ISO-IR 203, Latin-9) where the message's 8859/1 reads '½'. Dropped, the
text after them was kept as the wrong characters without a word. Switches of
``iso2022_escapes.csv`` are decoded (``_switched``); any other, and a text that is no text in
the set switched to, is kept as sent, switch included, and said at its field by
``switch_problems`` (HL7_CHARSET_SWITCH, parse_text).
"""

from __future__ import annotations

import binascii
import codecs
import csv
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable

    from parsers.hl7v2.er7 import Delimiters


def unescape(value: str, d: Delimiters) -> str:
    esc = d.escape
    if esc not in value:
        return value
    out: list[str] = []
    i = 0
    n = len(value)
    while i < n:
        c = value[i]
        if c != esc:
            out.append(c)
            i += 1
            continue
        end = value.find(esc, i + 1)
        if end == -1:
            out.append(value[i:])
            break
        seq = value[i + 1:end]
        if seq[:1] in _SWITCH_KINDS and _SWITCH.fullmatch(seq):
            return _switched(value, d)  # rare: the whole value again, run by run
        repl = _expand(seq, d)
        if repl is None:
            out.append(value[i:end + 1])
        else:
            out.append(repl)
        i = end + 1
    return "".join(out)


def _expand(seq: str, d: Delimiters) -> str | None:
    simple = {"F": d.field, "S": d.component, "T": d.subcomponent, "R": d.repetition,
              "E": d.escape, "P": d.truncation}
    if seq in simple:
        return simple[seq]
    if seq in ("H", "N"):
        return ""
    if seq.startswith("."):
        return _format(seq[1:3], seq[3:])
    if seq[:1] == "X" and len(seq) > 1:
        try:
            raw = binascii.unhexlify(seq[1:])
        except (binascii.Error, ValueError):
            return None
        if b"\x00" in raw:
            return _code_points(raw)
        return _hex_data(raw, d.charset, simple.values())
    if seq[:1] == "Z":
        return ""  # locally defined sequences: no text of their own
    return None  # a 'C'/'M' that is no switch's shape ('\Cardio\') stays as sent


_SWITCH_KINDS = ("C", "M")
# \Cxxyy\ (two hex values) and \Mxxyy\ or \Mxxyyzz\ (two or three), v2.5 2.7.4
_SWITCH = re.compile(r"C[0-9A-Fa-f]{4}|M[0-9A-Fa-f]{4}(?:[0-9A-Fa-f]{2})?")
_SWITCHES_FILE = Path(__file__).with_name("iso2022_escapes.csv")


@dataclass(frozen=True)
class _Switch:
    escape: str  # 'C2D62' as in the table, upper case
    charset: str  # its name, for warnings
    form: str  # '7bit' (designated to G0) or '8bit' (designated to G1)
    codec: str


@cache
def _switches() -> dict[str, _Switch]:
    """``iso2022_escapes.csv`` by escape; codecs checked at load, as charsets.csv's are."""
    with _SWITCHES_FILE.open(encoding="utf-8", newline="") as f:
        rows = csv.DictReader(line for line in f if not line.startswith("#"))
        out = {}
        for row in rows:
            codecs.lookup(row["codec"])
            out[row["escape"].upper()] = _Switch(row["escape"].upper(), row["charset"],
                                                 row["form"], row["codec"])
    return out


def _switched(value: str, d: Delimiters, problems: list[str] | None = None) -> str:
    """``unescape`` of a value holding ISO 2022 switches: cut into runs at each switch, each
    run unescaped (its \\F\\ \\E\\ are bytes of the set too: JIS X 0208 pairs hold '|' and
    '\\'), then read in the set its switch designates (``_decode_run``). A switch we do not
    read, or a run that is no text in its set, stays as sent, said in ``problems``."""
    esc = d.escape
    pieces: list[str] = []
    runs: list[tuple[str, list[str]]] = [("", pieces)]
    i, n = 0, len(value)
    while i < n:
        end = value.find(esc, i)
        if end == -1:
            pieces.append(value[i:])
            break
        pieces.append(value[i:end])
        close = value.find(esc, end + 1)
        if close == -1:
            pieces.append(value[end:])
            break
        seq = value[end + 1:close]
        if _SWITCH.fullmatch(seq):
            pieces = []
            runs.append((seq.upper(), pieces))
        else:
            repl = _expand(seq, d)
            pieces.append(value[end:close + 1] if repl is None else repl)
        i = close + 1
    out: list[str] = []
    for seq, run_pieces in runs:
        run = "".join(run_pieces)
        switch = _switches().get(seq) if seq else None
        decoded = run if not seq else _decode_run(run, switch, d.charset) if switch else None
        if decoded is None:
            if problems is not None:
                problems.append(
                    f"ISO 2022 switch {esc}{seq}{esc}: " + (
                        f"the text after it is no {switch.charset} text" if switch else
                        "a character set not read here (iso2022_escapes.csv)")
                    + ", kept as sent")
            decoded = f"{esc}{seq}{esc}{run}"
        out.append(decoded)
    return "".join(out)


def _decode_run(run: str, switch: _Switch, charset: str) -> str | None:
    """The text of one run in the set ``switch`` designates, None when it is none.

    7bit (G0): the run's characters are the 7-bit bytes sent; decoded as the ISO 2022 stream
    ESC + switch + bytes (back to ASCII, the run is as the message's charset decoded it,
    characters beyond ASCII included: they are G1's). 8bit (G1): its characters beyond
    ASCII are bytes 0xA0-0xFF the message's single-byte charset decoded, re-read in the set
    switched to; in a message decoded as Unicode (UTF-8) they are characters already and
    stay so."""
    if switch.form == "7bit":
        if switch.codec == "ascii":
            return run  # back to ASCII: G1 (the message's own charset) was never left
        if not run.isascii():
            return None
        stream = b"\x1b" + bytes.fromhex(switch.escape[1:]) + run.encode("ascii")
        try:
            return stream.decode(switch.codec)
        except UnicodeDecodeError:
            return None
    if run.isascii() or not _single_byte(charset):
        return run
    for codec in (charset, "cp1252"):  # cp1252: C1 bytes charset.py read as Windows text
        try:
            raw = run.encode(codec)
            break
        except UnicodeEncodeError:
            continue
    else:
        return None
    try:
        return raw.decode(switch.codec)
    except UnicodeDecodeError:
        return None


@cache
def _single_byte(charset: str) -> bool:
    """Whether a message decoded with ``charset`` has one character per byte sent."""
    try:
        name = codecs.lookup(charset).name
    except LookupError:
        return False
    return name.startswith(("iso8859", "cp125")) or name in ("ascii", "tis-620")


def switch_problems(value: str, d: Delimiters) -> list[str]:
    """What ``unescape`` keeps as sent of the ISO 2022 switches in one value (a leaf): a
    switch to a set we do not read, a run that is no text in its set; [] when none."""
    problems: list[str] = []
    esc = d.escape
    if esc + "C" in value or esc + "M" in value:
        _switched(value, d, problems)
    return problems


def _hex_data(raw: bytes, charset: str, delimiters: Iterable[str] = ()) -> str:
    """Hex data without a zero byte: the first reading of UTF-8, the message's charset,
    cp1252 (a Windows sender's '\\X9C\\' is 'œ', a C1 control in ISO 8859), latin-1 that
    is text a sender had to escape (``_escaped_text``). None is: four hex digits
    are a code point ('\\X20AC\\' for '€', '\\X2264\\' for '≤', '\\X0153\\' for 'œ',
    as engines write what their charset lacks), read as UTF-16 when that is printable text,
    else the first reading, as before ('\\X20AC\\' was ' ¬', '\\X2264\\' '"d'). Bytes
    that are the message's delimiters ('\\X7C5E\\', '|^': a sender escaping them as hex
    rather than \\F\\ \\S\\) stay those characters, never a code point."""
    first = None
    for codec in ("utf-8", charset, "cp1252", "latin-1"):
        try:
            value = raw.decode(codec)
        except (UnicodeDecodeError, LookupError):
            continue
        if _escaped_text(value):
            return value
        if first is None:
            first = value
    special = set(delimiters)
    if first is not None and special and all(c in special for c in first):
        return first
    if len(raw) % 2 == 0:
        points = raw.decode("utf-16-be", errors="replace")
        if points.isprintable() and "\ufffd" not in points and min(points) >= "\u0100":
            return points
    return first if first is not None else raw.decode("latin-1")


def _escaped_text(value: str) -> bool:
    """Whether ``value`` is what a sender escapes as hex: characters beyond ASCII (no-break
    spaces included: '\\XA0A0\\' is two of them), and line ends and tabs
    (``\\X0D0A\\``). Printable ASCII needs no escape, and other controls are no text: hex
    data reading as either was not written in that charset."""
    return all(c in "\r\n\t" or (c > "\x7f" and (c.isprintable() or c.isspace())) for c in value)


def _code_points(raw: bytes) -> str | None:
    """Hex data holding a zero byte: Unicode code points written four hex digits each, as
    interface engines escape what their charset lacks ('\\X00B5\\' for the micro sign of
    'µmol/l', '\\X00E9\\' for 'é'): read as UTF-16 when that gives printable text without
    NUL, line ends and tabs included: HAPI and IPF (Java engines of IHE platforms) escape a
    CR inside a field as '\\X000d\\', kept as sent it was that text in the value, as '\\X0D\\'
    is a CR. Anything else holding a zero byte is no text (nor storable): None, the sequence
    stays as sent."""
    if len(raw) % 2:
        return None
    try:
        value = raw.decode("utf-16-be")
    except UnicodeDecodeError:
        return None
    return value if value.isprintable() or _escaped_text(value) else None


_MAX_SKIP = 20  # a '\\.sp999999\\' must not become a megabyte of blank lines


def _format(command: str, arg: str) -> str:
    """Formatted-text commands (v2.5 2.7.6) as plain text: \\.br\\ and \\.ce\\ end the
    line, \\.sp<n>\\ ends it and skips n lines (one when n is absent), \\.sk<n>\\ skips n
    spaces; indents and fill modes (.in .ti .fi .nf) carry no text."""
    if command in ("br", "ce"):
        return "\n"
    if command in ("sp", "sk"):
        n = arg.strip().lstrip("+")
        count = min(int(n), _MAX_SKIP) if n.isascii() and n.isdigit() else 1
        return "\n" * max(count, 1) if command == "sp" else " " * count
    return ""


def escape(value: str, d: Delimiters) -> str:
    """Escape delimiters in free text we write (ACK texts): the inverse of ``unescape`` for
    \\F\\ \\S\\ \\T\\ \\R\\ \\E\\; line ends become \\.br\\ so a text never cuts a segment,
    and VT/FS become \\X0B\\/\\X1C\\ so it never cuts an MLLP frame."""
    out: list[str] = []
    table = {d.escape: "E", d.field: "F", d.component: "S", d.subcomponent: "T",
             d.repetition: "R"}
    for c in value:
        if c in table:
            out.append(f"{d.escape}{table[c]}{d.escape}")
        elif c in "\r\n":
            out.append(f"{d.escape}.br{d.escape}")
        elif c in "\x0b\x1c":  # MLLP's start and end bytes: raw, they would cut the frame
            out.append(f"{d.escape}X{ord(c):02X}{d.escape}")
        else:
            out.append(c)
    return "".join(out)
