"""A faithful, lazy parsed form of one HL7v2 message in ER7 (pipe) encoding.

Why not keep python-hl7's tree: it builds every container eagerly (about 1,500 messages/s
for a 15-OBX result here), and our pipeline needs a few dozen fields per message. We split
segments and fields once, and components/subcomponents only when a field is read. python-hl7
stays the reference: the tests check that both agree on every field (tests/test_er7.py).

Positions follow the standard: ``msg.get("PID", 3, rep=2, comp=4, sub=2)`` is PID-3, second
repetition, CX.4, HD.2. For MSH, field 1 is the field separator and field 2 the encoding
characters, as in the standard.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from dataclasses import field as dataclass_field
from functools import lru_cache
from pathlib import Path

from parsers.hl7v2.errors import HL7ParseError


@dataclass(frozen=True, slots=True)
class Delimiters:
    field: str = "|"
    component: str = "^"
    repetition: str = "~"
    escape: str = "\\"
    subcomponent: str = "&"
    # the codec the message was decoded with: what \Xhh\ bytes mean (escape.py); not part
    # of the delimiters' identity (an ACK echoes them whatever the charset)
    charset: str = dataclass_field(default="utf-8", compare=False)
    # v2.7+ truncation character (MSH-2's 5th, '#' when not declared): what \P\ stands
    # for; no delimiter, it never splits a field
    truncation: str = dataclass_field(default="#", compare=False)


@dataclass(slots=True)
class Segment:
    """One segment: ``fields[0]`` is the segment name, ``fields[n]`` is field n (still escaped)."""

    name: str
    fields: list[str]
    index: int  # 1-based position of the segment in the message

    def raw(self, n: int) -> str:
        """Field n as sent (escaped, with all repetitions), '' when absent."""
        return self.fields[n] if 0 <= n < len(self.fields) else ""


@dataclass(slots=True)
class Message:
    segments: list[Segment]
    delimiters: Delimiters
    charset: str = "utf-8"  # the Python codec the text was decoded with
    warnings: list[str] = field(default_factory=list)
    # False when the text holds no '"' at all: no field is an HL7 explicit null '""' (v2.5
    # 2.5.3), which spares readers looking for one field by field.
    maybe_null: bool = True
    # The IANA zone its source declared for times sent without offset (pipelines/settings.py
    # source_timezones); None: read from MSH-7, else Paris's (normalizers/fields.zone_of).
    zone: str | None = None
    # Its source's identifier settings (pipelines/settings.py [sources.X], read by
    # normalizers/identity.py): the domain its namespace-only assigning authorities are
    # scoped to when MSH-4 cannot be ('' : none declared), the namespaces (upper case) its
    # facilities share (scoped to that domain, not to MSH-4), and namespace -> OID aliases.
    identifier_domain: str = ""
    shared_namespaces: frozenset[str] = frozenset()
    namespace_oids: dict[str, str] = field(default_factory=dict)

    # -- navigation -------------------------------------------------------------------------
    def all(self, name: str) -> list[Segment]:
        return [s for s in self.segments if s.name == name]

    def first(self, name: str) -> Segment | None:
        for s in self.segments:
            if s.name == name:
                return s
        return None

    def __iter__(self) -> Iterator[Segment]:
        return iter(self.segments)

    # -- values -----------------------------------------------------------------------------
    def get(self, seg: Segment | str | None, n: int, rep: int = 1, comp: int = 1,
            sub: int = 1) -> str:
        """One leaf value, unescaped; '' when any level is absent."""
        if isinstance(seg, str):
            seg = self.first(seg)
        if seg is None:
            return ""
        if n <= 2 and seg.name == "MSH":
            # MSH-1 and MSH-2 are the delimiters themselves: never split nor unescaped.
            return seg.raw(n) if rep == comp == sub == 1 else ""
        return self.unescape(leaf(seg.raw(n), self.delimiters, rep, comp, sub))

    def reps(self, seg: Segment, n: int) -> list[str]:
        """The repetitions of field n, each still escaped (use ``component`` to read them)."""
        raw = seg.raw(n)
        return raw.split(self.delimiters.repetition) if raw else []

    def component(self, value: str, comp: int = 1, sub: int = 1) -> str:
        """Component ``comp`` (subcomponent ``sub``) of one repetition, unescaped."""
        return self.unescape(leaf(value, self.delimiters, 1, comp, sub))

    def unescape(self, value: str) -> str:
        from parsers.hl7v2.escape import unescape

        if self.delimiters.escape not in value:
            return value
        return unescape(value, self.delimiters)

    # -- header shortcuts ---------------------------------------------------------------
    @property
    def msh(self) -> Segment:
        return self.segments[0]

    @property
    def control_id(self) -> str:
        return self.get(self.msh, 10)

    @property
    def message_type(self) -> tuple[str, str, str]:
        """(MSH-9.1, MSH-9.2, MSH-9.3), e.g. ('ORU', 'R01', 'ORU_R01')."""
        return (self.get(self.msh, 9, comp=1), self.get(self.msh, 9, comp=2),
                self.get(self.msh, 9, comp=3))

    @property
    def version(self) -> str:
        return self.get(self.msh, 12)

    @property
    def sender(self) -> str:
        """Sending application and facility (MSH-3 / MSH-4), the namespace of MSH-10: each
        HD's namespace id, or its universal id when only that is sent (``^2.16.840.1...^ISO``,
        as CDC ELR senders write their facility; v2.5 2.A.33: HD.1 or HD.2 + HD.3)."""
        return f"{self.hd(self.msh, 3)}|{self.hd(self.msh, 4)}"

    def hd(self, seg: Segment | str | None, n: int) -> str:
        """A hierarchic designator's identity: its namespace id, else its universal id."""
        return self.get(seg, n) or self.get(seg, n, comp=2)


def leaf(raw: str, d: Delimiters, rep: int = 1, comp: int = 1, sub: int = 1) -> str:
    """Pick repetition/component/subcomponent out of a raw field without building a tree."""
    if not raw:
        return ""
    if rep != 1 or d.repetition in raw:
        parts = raw.split(d.repetition)
        if rep > len(parts):
            return ""
        raw = parts[rep - 1]
    if comp != 1 or d.component in raw:
        parts = raw.split(d.component)
        if comp > len(parts):
            return ""
        raw = parts[comp - 1]
    if sub != 1 or d.subcomponent in raw:
        parts = raw.split(d.subcomponent)
        if sub > len(parts):
            return ""
        raw = parts[sub - 1]
    return raw


def split_segments(text: str, fsep: str = "|") -> list[str]:
    """Segments separated by CR, LF or CRLF (published French examples use LF); blanks dropped.

    CR is the segment terminator of the standard; LF and CRLF are tolerated as such only where
    a segment follows (a segment name, then the field separator or nothing more). Elsewhere
    they are a line break a sender left unescaped inside a value (a comment, a report line, a
    wrapped segment): it stays in the value as '\\n' instead of cutting the segment in two. A
    line of just three capitals ('FIN') is taken for a segment: nothing tells them apart.
    Names in lower case: see ``_may_fold``."""
    return _split(text, fsep, _may_fold(text, _split_fast(text), fsep))[0]


def _split_fast(text: str) -> list[str]:
    """Every CR, LF and CRLF ends a segment: right whenever each line starts a segment."""
    if "\n" in text:
        text = text.replace("\r\n", "\r").replace("\n", "\r")
    return [s for s in text.split("\r") if s.strip()]


_BREAK = re.compile(r"(\r\n|\r|\n)")


def _split(text: str, fsep: str, fold: bool = False) -> tuple[list[str], int]:
    """(segments, how many LF / CRLF were read as text inside a value); see split_segments.
    ``fold``: a name in lower case after an LF starts a segment (``_may_fold``)."""
    if "\n" not in text:
        return _split_fast(text), 0
    parts = _BREAK.split(text)
    lines: list[str] = []
    joined = 0
    for i in range(0, len(parts), 2):
        line = parts[i]
        if not line.strip():
            continue
        if lines and parts[i - 1] != "\r" and not _starts_segment(line, fsep, fold):
            lines[-1] += "\n" + line
            joined += 1
        else:
            lines.append(line)
    return lines, joined


def _valid_name(name: str) -> bool:
    return len(name) == 3 and name.isalnum() and name[0].isalpha() and name.isupper()


def _starts_segment(line: str, fsep: str, fold: bool = False) -> bool:
    """A segment name, then the field separator or nothing more ('PV1' alone is a segment);
    with ``fold``, a name in lower case that ``_case_folded`` reads, then the separator."""
    return ((line[3:4] == fsep or not line[3:].strip()) and _valid_name(line[:3])) \
        or (fold and line[3:4] == fsep and _case_folded(line[:3]) is not None)


def _may_fold(text: str, lines: list[str], fsep: str) -> bool:
    """Whether names in lower case are read as segments (``_case_folded``). Always when
    every segment ends with a CR: a CR ends a segment, the line after it is one or an error.
    With LF ends, the last line of a value broken by an unescaped LF is followed by the
    field separator too ('...\\nvar|...'): a sender writing its names in lower case writes
    more than one, one such line alone is read as text, as before."""
    if "\n" not in text:
        return True
    found = 0
    for line in lines:
        if line[3:4] == fsep and not _valid_name(line[:3]) and _case_folded(line[:3]):
            found += 1
            if found > 1:
                return True
    return False


# The envelope and header segments: split_batch cuts messages at them in upper case only,
# so an 'msh' in lower case is left to fail where it is rather than be read as a segment.
_NOT_FOLDED = frozenset({"MSH", "BHS", "BTS", "FHS", "FTS"})


@lru_cache(maxsize=256)
def _case_folded(name: str) -> str | None:
    """The segment ``name`` stands for when a sender wrote it in lower or mixed case ('obx',
    'Nte'): a segment id of the standard (segment_names.csv) or a Z segment, never an
    envelope one; else None. HL7 names are upper case (v2.5 2.5.2); such a segment failed
    the whole message (CR ends) or, after an LF, was read as a line of the value before it,
    its result lost. A line of text is not taken for one: the field separator must follow."""
    if len(name) != 3 or not name.isalnum() or not name[0].isalpha() or name.isupper():
        return None
    upper = name.upper()
    if upper in _NOT_FOLDED:
        return None
    if upper in _segment_names() or (upper[0] == "Z"):
        return upper
    return None


@lru_cache(maxsize=1)
def _segment_names() -> frozenset[str]:
    with _NAMES_FILE.open(encoding="utf-8", newline="") as f:
        return frozenset(row["name"].strip().upper() for row in csv.DictReader(
            line for line in f if not line.startswith("#")))


_NAMES_FILE = Path(__file__).with_name("segment_names.csv")


def _segments(lines: list[str], fsep: str,
              folded: list[str] | None = None) -> tuple[list[Segment], int]:
    """The segments of ``lines``, or the 1-based position of the first line that is none.
    With ``folded`` (a list: ``_may_fold`` allows it), names sent in lower case that
    ``_case_folded`` reads are upper-cased, and added to ``folded`` as sent."""
    segments: list[Segment] = []
    for i, line in enumerate(lines, start=1):
        parts = line.split(fsep)
        name = parts[0]
        if len(name) != 3 or not name.isalnum() or not name[0].isalpha() or not name.isupper():
            upper = _case_folded(name) if folded is not None and len(parts) > 1 else None
            if upper is None:
                return segments, i
            if folded is not None:
                folded.append(name)
            name = parts[0] = upper
        if name == "MSH":
            # MSH-1 is the separator itself: shift so that fields[n] is MSH-n.
            parts = [name, fsep, *parts[1:]]
        segments.append(Segment(name, parts, i))
    return segments, 0


def _truncation(msh2: str, delimiters: str) -> str:
    """The truncation character of MSH-2 (v2.7 2.5.5.5: its 5th character, '#' in practice),
    '#' when MSH-2 holds 4: the character ``\\P\\`` escapes. A 5th character that is a
    delimiter, a letter or a digit is none (an MSH-2 miswritten): '#' as when undeclared."""
    if len(msh2) > 4 and not msh2[4].isalnum() and msh2[4] not in delimiters:
        return msh2[4]
    return "#"


def _header_case(text: str) -> str:
    """The name of the header as sent when it is 'MSH' in lower or mixed case ('msh'), then
    a field separator; else ''. A sender writing every segment name in lower case: its
    header was 'no MSH', although its other segments are read (``_case_folded``). Only as
    the first segment: an 'msh' further on starts no message (split_batch cuts at 'MSH'
    only) and still fails where it is."""
    if text.startswith("MSH"):  # nearly every message: nothing copied
        return ""
    body = text.lstrip("\r\n")
    name = body[:3]
    if name == "MSH" or name.upper() != "MSH" or len(body) < 4 or body[3].isalnum() \
            or body[3].isspace():
        return ""
    return name


def parse_text(text: str, charset: str = "utf-8") -> Message:
    """Parse one decoded message. Raises HL7ParseError naming the segment and field at fault."""
    text = text.lstrip("\ufeff")
    header_case = _header_case(text)  # the header's name as sent when not 'MSH' ('msh')
    if header_case:
        text = "MSH" + text.lstrip("\r\n")[3:]
    lines = _split_fast(text)
    if not lines or not lines[0].startswith("MSH"):
        # the first segment's name, when it is one (never the line itself: it may be data)
        first = f" (it starts with a {lines[0][:3]} segment: sent without its header?)" \
            if lines and _starts_segment(lines[0], "|") else ""
        raise HL7ParseError("HL7_NO_MSH", "the message does not start with an MSH segment"
                            + first, segment="MSH", position=1)
    head = lines[0]
    if len(head) < 8:
        raise HL7ParseError("HL7_BAD_MSH", "MSH segment is too short to hold its delimiters",
                            segment="MSH", position=1, field=2)
    fsep = head[3]
    enc = head[4:8].split(fsep)[0]
    if fsep.isalnum() or len(enc) < 3 or len(set(enc + fsep)) != len(enc) + 1 \
            or any(c.isalnum() for c in enc):
        raise HL7ParseError("HL7_BAD_ENCODING_CHARS",
                            f"MSH-1/MSH-2 do not define valid delimiters ({fsep!r}, {enc!r}): "
                            "MSH-2 holds 3 or 4 distinct encoding characters (component, "
                            "repetition, escape, subcomponent: usually ^~\\&), none a letter, "
                            "a digit or the field separator",
                            segment="MSH", position=1, field=2)
    delims = Delimiters(field=fsep, component=enc[0], repetition=enc[1],
                        escape=enc[2] if len(enc) > 2 else "\\",
                        subcomponent=enc[3] if len(enc) > 3 else "&", charset=charset,
                        truncation=_truncation(head[4:].split(fsep, 1)[0], fsep + enc))
    fold = _may_fold(text, lines, fsep)
    folded: list[str] = []
    segments, bad = _segments(lines, fsep, folded if fold else None)
    joined = 0
    if bad and "\n" in text:
        # A line that starts no segment after an LF: a line break inside a value (the slow
        # path, taken only then; see split_segments).
        lines, joined = _split(text, fsep, fold)
        folded = []
        segments, bad = _segments(lines, fsep, folded if fold else None)
    if bad:
        # The line's text is not quoted: it may be a field value cut by a stray line end.
        after = f" (after {segments[-1].name}[{segments[-1].index}])" if segments else ""
        raise HL7ParseError("HL7_BAD_SEGMENT",
                            f"segment {bad}{after} has no valid segment name (3 upper-case "
                            f"letters or digits before the field separator expected): a "
                            f"segment cut short, or a line break left unescaped inside a "
                            f"value (write it as \\.br\\)",
                            segment="?", position=bad)
    msg = Message(segments, delims, charset, maybe_null='"' in text)  # 1 char: a fast scan
    if header_case:
        folded.insert(0, header_case)
    if folded:
        said = ", ".join(dict.fromkeys(folded))
        msg.warnings.append(f"HL7_SEGMENT_NAME_CASE: {len(folded)} segment name(s) not in upper "
                            f"case ({said}) read as the segment they name")
    if joined:
        msg.warnings.append(f"HL7_LINE_BREAK_IN_VALUE: {joined} line break(s) not followed by a "
                            "segment read as text inside the value before them")
    if delims.escape + "C" in text or delims.escape + "M" in text:
        _say_charset_switches(msg)
    if not (fsep + enc).isascii():
        # Seen in ANS examples: '~' typed as U+02DC. Consistent use still parses; say so.
        odd = ", ".join(f"U+{ord(c):04X}" for c in fsep + enc if not c.isascii())
        msg.warnings.append(f"HL7_ODD_DELIMITERS: MSH-1/MSH-2 use non-ASCII delimiters ({odd})")
    return msg


def _say_charset_switches(msg: Message) -> None:
    """HL7_CHARSET_SWITCH warnings: each field holding an ISO 2022 switch (\\Cxxyy\\,
    \\Mxxyyzz\\) that escape.py keeps as sent, a set it does not read or a text that is
    none in it (``switch_problems``), named by its place; the text is never quoted. Read
    where a value is read, one leaf at a time, as unescape sees it."""
    from parsers.hl7v2.escape import switch_problems

    d = msg.delimiters
    cut = re.compile("|".join(re.escape(c) for c in (d.repetition, d.component,
                                                       d.subcomponent)))
    for seg in msg.segments:
        for n, value in enumerate(seg.fields):
            if n == 0 or d.escape not in value or (seg.name == "MSH" and n <= 2):
                continue
            problems = [p for leaf_value in cut.split(value)
                        for p in switch_problems(leaf_value, d)]
            for problem in dict.fromkeys(problems):
                msg.warnings.append(f"HL7_CHARSET_SWITCH: {seg.name}[{seg.index}]-{n}: "
                                    f"{problem}")
