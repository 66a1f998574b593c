"""Cut the raw bytes of a file or MLLP frame into HL7v2 messages, before any decoding.

Why bytes: the charset is declared per message (MSH-18) and is not known until each message is
cut out; segment names and line ends are ASCII in every charset HL7 allows for ER7 (UTF-16 aside,
see below), so cutting at line starts is safe before decoding.

What is accepted (HL7 v2.5 chapter 2.10.3, and what senders really send):

- one message, or many messages plainly concatenated, segments ending in CR, LF or CRLF;
- batch envelopes ``[FHS] {BHS {MSH ...} BTS} [FTS]``, several batches in one file, messages
  outside any batch; the envelope segments are checked (counts in BTS-1 / FTS-1, missing
  trailers) and reported as problems, never raised: the messages that did arrive are still
  worth processing, and the problems tell the admin that some may be missing;
- a UTF-8 byte order mark, MLLP framing bytes (VT ``\\x0b``, FS ``\\x1c``, even between
  messages of a captured stream), blank lines and trailing whitespace.

Each message is the exact slice of the input from its ``MSH`` to the end of its last segment,
original line ends included, so that the archive's bytes and the parsed bytes stay comparable
and a concatenation of plain messages cuts back into the same bytes.

Input without any MSH, FHS or BHS segment at a line start (empty input, a PDF sent to the HL7
channel, UTF-16 text whose ASCII is interleaved with NULs) comes back whole as the only
"message": ``messages == [data]``, with no problem. The parse step then decodes it and reports
``HL7_NO_MSH`` (or parses it, for UTF-16), so the failure lands on the ledger with the parser's
code and location instead of a framing guess. An envelope without any MSH (an empty batch,
``BHS BTS|0``) is valid and gives ``messages == []``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

# Problem codes (stable: they end up as ledger error codes and in admin filters).
BATCH_COUNT_MISMATCH = "HL7_BATCH_COUNT_MISMATCH"  # BTS-1 / FTS-1 disagree with what we found
BATCH_TRUNCATED = "HL7_BATCH_TRUNCATED"  # BHS without BTS, FHS without FTS
BATCH_BAD_COUNT = "HL7_BATCH_BAD_COUNT"  # BTS-1 / FTS-1 is not a number
BATCH_UNEXPECTED = "HL7_BATCH_UNEXPECTED"  # BTS / FTS with no BHS / FHS to close
# A note, not a problem: FTS-1 counting the file's messages rather than its batches
FTS_COUNTS_MESSAGES = "HL7_FTS_COUNTS_MESSAGES"
# A note, not a problem: BTS-1 / FTS-1 announcing fewer than were found (none is missing)
BATCH_COUNT_LOW = "HL7_BATCH_COUNT_LOW"
GARBAGE = "HL7_GARBAGE"  # bytes that belong to no message and are not envelope segments
# A note, not a problem: a message's MSH glued to the end of the segment before it (no
# segment terminator), cut there as if the terminator had been sent
GLUED_MESSAGE = "HL7_GLUED_MESSAGE"
# A note, not a problem: a BHS opened inside a batch and both closed by their BTS (v2.5
# 2.10.3 has one FHS hold several BHS, never a BHS inside a BHS): every message was read
BATCH_NESTED = "HL7_BATCH_NESTED"

_BOM = b"\xef\xbb\xbf"
# A segment that starts or ends a message or an envelope, at the start of a line. The byte
# before it must be a line end or an MLLP framing byte; the start of the input is handled
# apart (a lookbehind costs 5x more on an 800 KB base64 message). A UTF-8 BOM may stand
# between them: files that each begin with one, concatenated ('cat *.hl7'), have one at the
# start of every message; the second message was read as lines of the first one's last
# segment, and both failed.
_BOUNDARY = re.compile(rb"[\r\n\x0b\x1c](?:\xef\xbb\xbf)?(MSH|BHS|BTS|FHS|FTS)(?![A-Za-z0-9])")
_NAMES = (b"MSH", b"BHS", b"BTS", b"FHS", b"FTS")
_STARTS = b"\r\n\x0b\x1c"  # the bytes after which a segment starts a line (see _BOUNDARY)
# (offset, segment name, glued): glued when an MSH follows other text on its line (_glued)
Bound = tuple[int, str, bool]
_LEAD = b" \t\r\n\x0b\x0c\x00"  # skipped silently before the first segment
_LINE_END = re.compile(rb"\r\n|\r|\n")
_JUNK = b" \t\r\n\x0b\x1c\x0c\x00\x1a"  # blank lines, framing, padding, DOS end of file
_BLANK = b" \t\x0c\x00\x1a"  # what a blank line may hold besides its end


@dataclass(frozen=True, slots=True)
class BatchProblem:
    """Something wrong with the framing. ``message`` never holds message content, only segment
    names, counts and byte offsets (``offset`` is counted in the input given to split_batch)."""

    code: str
    message: str
    offset: int | None = None
    warning: bool = False  # a note (``Batch.notes``): odd, but nothing is missing


@dataclass(slots=True)
class Batch:
    messages: list[bytes]
    problems: list[BatchProblem] = field(default_factory=list)
    envelope: bool = False  # an FHS, BHS, BTS or FTS segment was seen
    # what is odd in the envelope although every message is there (a warning, no failure)
    notes: list[BatchProblem] = field(default_factory=list)


@dataclass(slots=True)
class _Open:
    """An envelope segment (FHS or BHS) waiting for its trailer."""

    name: str
    offset: int
    count: int = 0  # messages seen (BHS, those of its nested batches too) or batches (FHS)
    messages: int = 0  # FHS: the messages seen in the file, in its batches or not
    loose: bool = False  # FHS only: messages met outside any batch
    # BHS: batches opened inside it; FHS: batches opened inside other batches
    nested: int = 0
    direct: int = 0  # BHS: its messages outside its nested batches
    # BHS: the first BHS met inside it ('BHS at byte 812'): what cut it short, if its own
    # BTS never comes (a truncated batch followed by the next one reads so)
    interrupted: str | None = None


def split_batch(data: bytes) -> Batch:
    """Cut ``data`` into messages at every line that starts with MSH; see the module doc."""
    start = _skip_lead(data)
    bounds = _boundaries(data, start)
    if not any(name in ("MSH", "FHS", "BHS") for _, name, _ in bounds):
        return Batch([data])  # not HL7 framing at all: let the parser say why (module doc)
    bounds = _with_glued(data, bounds, _glue_signature(data, bounds, True) or b"", start)
    splitter = _Splitter()
    if bounds[0][0] > start:
        _garbage(data, start, bounds[0][0], splitter.problems, "before the first segment")
    messages = [data[a:b] for a, b in splitter.cut(data, 0, bounds, len(data))]
    return splitter.finish(messages)


def iter_batch(read, window: int = 16 * 1024 * 1024) -> Iterator[bytes | Batch]:  # noqa: ANN001
    """``split_batch`` over a stream (``read(n) -> bytes``, b"" at the end), for files too
    big to hold: yields each message as soon as the next segment boundary is read, then, last,
    the ``Batch`` of the problems (its ``messages`` empty). Memory: one window plus the
    longest message. Offsets in problems count from the start of the stream, as if the whole
    had been given to split_batch, which gives the same messages and problems (a test checks
    it), except for input with no MSH, FHS or BHS at all: that is the caller's to detect."""
    splitter = _Splitter()
    buf, base = b"", 0
    start: int | None = None  # where boundaries are searched in buf (after the lead)
    lead_checked = False  # the bytes before the first segment were looked at
    glue: bytes | None = None  # the first MSH's signature (_glue_signature), once read
    head_glued = False  # buf starts (at 1) with the MSH of a glued boundary kept from before
    while True:
        chunk = read(window)
        final = not chunk
        buf += chunk
        if start is None:
            if not final and len(buf) < 4:
                continue  # too short to tell a byte order mark or a segment name
            start = _skip_lead(buf)
            if not final and start == len(buf):
                start = None  # only leading junk so far
                continue
        bounds = _boundaries(buf, start)
        if head_glued and bounds and bounds[0][0] == start:
            bounds[0] = (start, bounds[0][1], True)
        if glue is None and any(name == "MSH" for _, name, _ in bounds):
            glue = _glue_signature(buf, bounds, final)
            if glue is None:
                continue  # the first MSH's header is not whole yet: read on
        bounds = _with_glued(buf, bounds, glue or b"", start)
        if not final:
            # A boundary at the very end may be a longer name cut by the window ("MSH" of
            # "MSHX"), and the last one ends only where the next starts: both wait.
            bounds = [b for b in bounds if b[0] + 4 < len(buf)]
        if bounds and not lead_checked:
            lead_checked = True
            if bounds[0][0] > start:
                _garbage(buf, start, bounds[0][0], splitter.problems,
                         "before the first segment")
        if final:
            for a, b in splitter.cut(buf, base, bounds, len(buf)):
                yield buf[a:b]
            yield splitter.finish([])
            return
        if len(bounds) < 2:
            continue
        for a, b in splitter.cut(buf, base, bounds[:-1], bounds[-1][0]):
            yield buf[a:b]
        keep = bounds[-1][0] - 1  # from the line end before the last boundary
        head_glued = bounds[-1][2]  # found again at 1 by _boundaries, which cannot tell
        buf, base, start = buf[keep:], base + keep, 1


class _Splitter:
    """The envelope state of one input (open FHS/BHS, counts, problems), fed its segment
    boundaries in order, window by window."""

    def __init__(self) -> None:
        self.problems: list[BatchProblem] = []
        self.notes: list[BatchProblem] = []
        self.envelope = False
        self.file: _Open | None = None
        # the open batches, outermost first: more than one only when a BHS came before the
        # BTS of the one before it (nested, or that one truncated: told at its end, _bhs)
        self.batches: list[_Open] = []
        self.messages = 0  # messages cut so far

    def _glued(self, at: int) -> None:
        """Note a message whose MSH was glued to the end of the segment before it. A note,
        not a problem: every message is there, cut where its terminator should have been;
        the offset lets an admin find the place (and the sender fix its writer)."""
        self.notes.append(BatchProblem(
            GLUED_MESSAGE,
            f"the MSH of message {self.messages} at byte {at} is glued to the end of the "
            "segment before it (no segment terminator): the messages were cut there", at,
            warning=True))

    def cut(self, data: bytes, base: int, bounds: list[tuple[int, str]],
            stop: int) -> Iterator[tuple[int, int]]:
        """(start, end) in ``data`` of each message among ``bounds``, the last one ending
        before ``stop``; ``base`` is the offset of data[0] in the whole input."""
        problems = self.problems
        for i, (pos, name, glued) in enumerate(bounds):
            end = bounds[i + 1][0] if i + 1 < len(bounds) else stop
            if name == "MSH":
                yield pos, _message_end(data, pos, end)
                self.messages += 1
                if glued:
                    self._glued(base + pos)
                if self.file is not None:
                    self.file.messages += 1
                if self.batches:
                    for batch in self.batches:
                        batch.count += 1
                    self.batches[-1].direct += 1
                elif self.file is not None:
                    self.file.loose = True
                continue
            self.envelope = True
            at = base + pos
            line_end = _line_end(data, pos, end)
            _garbage(data, line_end, end, problems, f"after the {name} segment", base)
            if name == "FHS":
                self._close_batches(f"FHS at byte {at}")
                if self.file is not None:
                    _close_file(self.file, problems, f"FHS at byte {at}")
                self.file = _Open("FHS", at)
            elif name == "BHS":
                self._bhs(at)
            elif name == "BTS":
                if not self.batches:
                    problems.append(BatchProblem(
                        BATCH_UNEXPECTED, f"BTS at byte {at} closes no open batch (no BHS)",
                        at))
                    continue
                self._bts(data, pos, line_end, base)
            else:  # FTS
                self._close_batches(f"FTS at byte {at}")
                if self.file is None:
                    problems.append(BatchProblem(
                        BATCH_UNEXPECTED, f"FTS at byte {at} closes no open file (no FHS)",
                        at))
                    continue
                found = self.file.count + (1 if self.file.loose else 0)
                if not self._counts_nested(data, pos, line_end, found) \
                        and not self._counts_messages(data, pos, line_end, found, at):
                    _check_count(data, pos, line_end, found, "FTS", "batch", problems, base,
                                 self.notes)
                self.file = None

    def _bhs(self, at: int) -> None:
        """A BHS: a batch of the file, or one opened inside the open batch. Which of the two
        (a BHS inside a BHS, as some senders nest a ward's batch in the day's, or a batch
        whose BTS was lost followed by the next) is told only by the BTS that follow:
        kept open both (a stack), the outer one truncated only if nothing closes it."""
        if self.batches:
            outer = self.batches[-1]
            outer.nested += 1
            if outer.interrupted is None:
                outer.interrupted = f"BHS at byte {at}"
            if self.file is not None:
                self.file.nested += 1
        elif self.file is not None:
            self.file.count += 1
        self.batches.append(_Open("BHS", at))

    def _bts(self, data: bytes, pos: int, line_end: int, base: int) -> None:
        """A BTS closes the innermost open batch. One that held batches of its own closed
        by their BTS was nested: its messages were all read (they were reported truncated,
        and its BTS closing nothing); a note says so. Its BTS-1 may count every message in
        it, its own messages plus its batches (as a file's FTS-1 counts) or its own messages
        only: each is a sender's reading of a structure v2.5 does not define."""
        batch = self.batches.pop()
        if not (batch.nested and _count_field(data, pos, line_end)
                in (str(batch.direct + batch.nested).encode(), str(batch.direct).encode())):
            _check_count(data, pos, line_end, batch.count, "BTS", "message", self.problems,
                         base, self.notes)
        if batch.nested:
            n = batch.nested
            self.notes.append(BatchProblem(
                BATCH_NESTED,
                f"BHS at byte {batch.offset} holds {n} batch{'es' if n != 1 else ''} of its "
                "own (a BHS inside a BHS, which HL7 v2.5 2.10.3 does not provide for): "
                f"every message was read", batch.offset, warning=True))

    def _close_batches(self, by: str) -> None:
        """The batches still open when a file ends or starts: their BTS never came. A batch
        with a BHS inside it was cut short there (the next batch began)."""
        while self.batches:
            batch = self.batches.pop()
            _close_batch(batch, self.problems, batch.interrupted or by)

    def _counts_nested(self, data: bytes, pos: int, line_end: int, found: int) -> bool:
        """Whether FTS-1 counts the file's batches nested ones included (``_bhs``): each
        BHS sent is a batch the sender counts."""
        file = self.file
        if file is None or not file.nested:
            return False
        return _count_field(data, pos, line_end) == str(found + file.nested).encode()

    def _counts_messages(self, data: bytes, pos: int, line_end: int, found: int,
                         at: int) -> bool:
        """Whether FTS-1 counts the file's messages where v2.5 has it count its batches
        (FTS-1, file batch count), as many senders write it: one batch of 12 messages
        with 'FTS|12', or messages under FHS without BHS. Every message announced is there;
        read as a failed file ('FTS-1 announces 12 batches, 1 found: truncated file?'), it
        sent an operator looking for eleven lost batches. A note (warning), not a problem."""
        file = self.file
        if file is None or file.messages == found:
            return False
        value = _count_field(data, pos, line_end)
        if not value.isdigit() or int(value) != file.messages:
            return False
        self.notes.append(BatchProblem(
            FTS_COUNTS_MESSAGES,
            f"FTS-1 at byte {at} counts the file's {file.messages} messages, not its {found} "
            f"batch{'es' if found != 1 else ''} (the file batch count): every message it "
            "announces is there", at, warning=True))
        return True

    def finish(self, messages: list[bytes]) -> Batch:
        self._close_batches("the end of the input")
        if self.file is not None:
            _close_file(self.file, self.problems, "the end of the input")
        self.problems.sort(key=lambda p: p.offset or 0)  # stable: in the order of the input
        return Batch(messages, self.problems, self.envelope, self.notes)


def _skip_lead(data: bytes) -> int:
    """Offset of the first byte after a UTF-8 BOM, whitespace and MLLP start bytes."""
    start = 3 if data.startswith(_BOM) else 0
    n = len(data)
    while start < n and data[start] in _LEAD:  # a few bytes at most
        start += 1
    return start


def _boundaries(data: bytes, start: int) -> list[Bound]:
    """(offset, name, False) of every MSH/BHS/BTS/FHS/FTS segment at the start of a line."""
    bounds: list[Bound] = []
    head = data[start:start + 4]
    if head[:3] in _NAMES and not head[3:4].isalnum():
        bounds.append((start, head[:3].decode("ascii"), False))
    for m in _BOUNDARY.finditer(data, start):
        bounds.append((m.start(1), m.group(1).decode("ascii"), False))
    return bounds


def _glue_signature(data: bytes, bounds: list[Bound], final: bool) -> bytes | None:
    """'MSH', field separator and encoding characters as the first MSH at a line start
    declares them (b'MSH|^~\\&' nearly always): what a glued MSH must repeat byte for byte.
    b'' when there is no such MSH or its MSH-2 is not 3 to 5 characters (nothing is then
    taken for glued); None when ``data`` (a window, not ``final``) ends inside that header."""
    first = next((pos for pos, name, _ in bounds if name == "MSH"), None)
    if first is None:
        return b""
    sep = data[first + 3:first + 4]
    end = data.find(sep, first + 4, first + 10) if sep else -1
    if end < 0:
        return None if not final and len(data) < first + 10 else b""
    encoding = data[first + 4:end]
    if not 3 <= len(encoding) <= 5 or sep.isalnum() or any(c in _JUNK for c in sep + encoding):
        return b""
    return b"MSH" + sep + encoding


def _with_glued(data: bytes, bounds: list[Bound], glue: bytes, start: int) -> list[Bound]:
    """``bounds`` and, in order among them, every glued MSH (``_glued``) after the first
    MSH. Its line-start boundaries only when ``glue`` is empty (no MSH header to match)."""
    if not glue:
        return bounds
    first = next((pos for pos, name, _ in bounds if name == "MSH"), start - 1)
    glued = _glued(data, glue, first + 1, {pos for pos, _, _ in bounds})
    return sorted(bounds + glued) if glued else bounds


def _glued(data: bytes, glue: bytes, start: int, taken: set[int]) -> list[Bound]:
    """MSH headers glued after other text of a line, where a writer left out the segment
    terminator between two messages ('...|F|||20250301083000+0100MSH|^~\\&|LABO|...'):
    each starts a message, as if the terminator were there.

    Why such a cut never splits a legitimate segment: ``glue`` is 'MSH', the field
    separator, then the encoding characters (component, repetition, escape, [subcomponent,
    truncation]). Inside a segment a raw field separator only ends a field, so the bytes
    after it would be a field starting with the escape character followed by another
    encoding character or the field separator: no valid escape sequence (\\F\\, \\S\\,
    \\E\\, \\Xhh\\...) starts so, and a conforming writer escapes a literal escape
    character as \\E\\. Escaped text (ST, TX, FT: 'MSH\\F\\\\S\\...') never holds
    a raw separator, and base64 (ED) is drawn from A-Z a-z 0-9 + / =, none of which is a
    separator: 'MSH' may appear in both, the whole header never does."""
    found: list[Bound] = []
    at = data.find(glue, start)
    while at >= 0:
        if at > 0 and at not in taken and data[at - 1] not in _STARTS:
            found.append((at, "MSH", True))
        at = data.find(glue, at + 1)
    return _glued_other(data, glue[:4], start, taken | {pos for pos, _, _ in found}, found)


# Enough fields after a header for it to be one (MSH-12, the version, is required)
_HEADER_FIELDS = 11


def _glued_other(data: bytes, head: bytes, start: int, taken: set[int],
                 found: list[Bound]) -> list[Bound]:
    """``found`` and the glued MSH whose encoding characters differ from the first MSH's
    (``head`` is 'MSH' and its field separator): a file gathering two senders' messages, one
    writing MSH-2 '^~\\&#' (v2.7's truncation character), the other '^~\\&', or other
    characters altogether. Matched on the first MSH's header only, the second message was
    read as the end of the first one's last segment: both failed or the second was lost.

    Why it never cuts a field: the bytes after 'MSH' and a raw field separator must be 3 to
    5 distinct encoding characters (no letter, digit, blank or field separator), then the
    field separator again, then at least the 11 separators up to MSH-12 on that line. Text
    holding 'MSH' then a field of nothing but distinct punctuation then ten more fields is
    no field a sender writes; a field that merely holds the letters is never taken."""
    at = data.find(head, start)
    while at >= 0:
        if at > 0 and at not in taken and data[at - 1] not in _STARTS \
                and _header_at(data, at):
            found.append((at, "MSH", True))
        at = data.find(head, at + 1)
    return sorted(found)


def _header_at(data: bytes, at: int) -> bool:
    """Whether an MSH header with its own encoding characters starts at ``at`` (see
    ``_glued_other``)."""
    sep = data[at + 3:at + 4]
    end = data.find(sep, at + 4, at + 10)
    encoding = data[at + 4:end]
    if end < 0 or not 3 <= len(encoding) <= 5 or len(set(encoding)) != len(encoding) \
            or any(chr(c).isalnum() or c in _JUNK for c in encoding):
        return False
    line = _LINE_END.search(data, end)
    return data.count(sep, end + 1, line.start() if line else len(data)) >= _HEADER_FIELDS - 1


def _line_end(data: bytes, pos: int, end: int) -> int:
    """End of the line starting at ``pos`` (after its CR, LF or CRLF), at most ``end``."""
    m = _LINE_END.search(data, pos, end)
    return m.end() if m else end


def _message_end(data: bytes, pos: int, end: int) -> int:
    """End of the last non-blank line in data[pos:end], its own line end included.

    Walks back over trailing junk only (blank lines, MLLP FS/VT, padding, the UTF-8 BOM of
    the next message): a few bytes, so the Python loop costs nothing next to copying the
    message."""
    i = end - 3 if data.startswith(_BOM, end - 3) and end - 3 >= pos else end
    while True:
        while i > pos and data[i - 1] in b"\r\n\x0b\x1c":
            i -= 1
        j = i
        while j > pos and data[j - 1] in _BLANK:
            j -= 1
        if j > pos and data[j - 1] not in b"\r\n\x0b\x1c":
            break  # the last line has content: keep its trailing spaces
        i = j
        if i == pos:
            break
    if data.startswith(b"\r\n", i):
        return i + 2
    if data[i:i + 1] in (b"\r", b"\n"):
        return i + 1
    return i


def _garbage(data: bytes, start: int, end: int, problems: list[BatchProblem],
             where: str, base: int = 0) -> None:
    """Report non-blank bytes in data[start:end] (position and size only, never content)."""
    if data.startswith(_BOM, end - 3) and end - 3 >= start:
        end -= 3  # the BOM of the segment that follows (see _BOUNDARY)
    if start >= end:
        return
    chunk = data[start:end]
    stripped = chunk.lstrip(_JUNK)
    if not stripped.rstrip(_JUNK):
        return
    first = base + start + len(chunk) - len(stripped)
    size = len(stripped.rstrip(_JUNK))
    lines = len(_LINE_END.split(stripped.rstrip(_JUNK)))
    problems.append(BatchProblem(
        GARBAGE,
        f"{size} bytes ({lines} line{'s' if lines > 1 else ''}) at byte {first} {where} "
        f"belong to no message",
        first))


def _check_count(data: bytes, pos: int, line_end: int, found: int, name: str, what: str,
                 problems: list[BatchProblem], base: int = 0,
                 notes: list[BatchProblem] | None = None) -> None:
    """Compare BTS-1 (messages in the batch) or FTS-1 (batches in the file) with ``found``.

    Field 1 sits between the byte after the segment name (the field separator) and the next
    occurrence of that byte; it is an NM, so only its digits matter. Empty means "not given".
    Fewer found than announced is a problem (some may be lost in transit: the file's row
    fails, every message found is still filed). More found than announced is a note in
    ``notes`` when given: every message was read, none is missing (a sender counting from
    0, or leaving out a kind of message); failing the file sent an operator looking for a
    loss there was not, and over MLLP answered a complete batch AE."""
    value = _count_field(data, pos, line_end)
    if not value:
        return
    if not value.isdigit():
        problems.append(BatchProblem(
            BATCH_BAD_COUNT, f"{name}-1 at byte {base + pos} is not a count", base + pos))
        return
    announced = int(value)
    plural = what if announced == 1 else what + ("es" if what == "batch" else "s")
    if announced < found and notes is not None:
        notes.append(BatchProblem(
            BATCH_COUNT_LOW,
            f"{name}-1 at byte {base + pos} announces {announced} {plural}, {found} found: "
            f"every {what} found was read, none is missing", base + pos, warning=True))
    elif announced != found:
        problems.append(BatchProblem(
            BATCH_COUNT_MISMATCH,
            f"{name}-1 announces {announced} {plural}, {found} found: "
            f"truncated {'batch' if name == 'BTS' else 'file'}?",
            base + pos))


def _count_field(data: bytes, pos: int, line_end: int) -> bytes:
    """BTS-1 or FTS-1 as sent, stripped (b'' when absent)."""
    line = data[pos:line_end].rstrip(_JUNK)
    sep = line[3:4]
    return line[4:].split(sep)[0].strip() if sep else b""


def _close_batch(batch: _Open | None, problems: list[BatchProblem], by: str) -> None:
    """A batch still open when something else starts: its BTS never came."""
    if batch is not None:
        problems.append(BatchProblem(
            BATCH_TRUNCATED,
            f"BHS at byte {batch.offset} has no BTS trailer before {by}: truncated batch?",
            batch.offset))


def _close_file(file: _Open, problems: list[BatchProblem], by: str) -> None:
    problems.append(BatchProblem(
        BATCH_TRUNCATED,
        f"FHS at byte {file.offset} has no FTS trailer before {by}: truncated file?",
        file.offset))


@dataclass(frozen=True, slots=True)
class BatchGroup:
    """One batch of an input as its envelope delimits it: its BHS line as received (None for
    messages outside any BHS), how many messages (MSH) it holds, and the offset where it
    starts (its BHS, else its first MSH)."""

    header: bytes | None
    messages: int
    start: int


@dataclass(frozen=True, slots=True)
class Outline:
    """The batches of an input in order; the messages of the groups, taken in order, are
    ``split_batch(data).messages``."""

    groups: list[BatchGroup]


def starts_with_envelope(data: bytes) -> bool:
    """Whether the first segment (after a BOM, blank lines, MLLP start bytes) is FHS or BHS:
    what makes a frame a batch to be answered with a batch (node-hl7-client's isBatch and
    isFile decide the same way on the sending side)."""
    start = _skip_lead(data)
    head = data[start:start + 4]
    return head[:3] in (b"FHS", b"BHS") and not head[3:4].isalnum()


def outline(data: bytes) -> Outline:
    """The batches of ``data`` with their header lines and message counts, cut at the same
    segment boundaries as ``split_batch``. FHS and FTS close every open batch; messages
    outside any batch make a group of their own, without header.

    A batch nested in another (a BHS inside a BHS, both closed by their BTS, as
    ``split_batch`` reads it: HL7_BATCH_NESTED) is no group of its own: the outermost batch
    closed by its BTS is one group holding every message between its BHS and its BTS. Each
    BHS was a group of its own, so the response to a day's batch holding a ward's answered
    the day's batch with an empty batch (BHS, BTS|0: option c of v2.5 2.10.3.3, "every
    message accepted") and the ward's with every ACK, a response that v2.5's batch
    grammar (2.10.3.1: no BHS in a BHS) does not provide for either. A BHS whose BTS never
    comes is no batch holding the ones after it (it was truncated, the next one began):
    its groups stay apart, as before."""
    runs: list[_Run] = []  # in message order
    stack: list[tuple[int, int]] = []  # the open BHS: (its id, the index of its first run)
    loose = False  # the last run holds messages outside any batch and is still open
    start = _skip_lead(data)
    bounds = _boundaries(data, start)
    bounds = _with_glued(data, bounds, _glue_signature(data, bounds, True) or b"", start)
    for i, (pos, name, _) in enumerate(bounds):
        end = bounds[i + 1][0] if i + 1 < len(bounds) else len(data)
        if name == "MSH":
            owner = stack[-1][0] if stack else None
            if (owner is None and not loose) or (owner is not None and runs[-1].owner != owner):
                # outside any batch, or back in a batch after the one nested in it
                runs.append(_Run(None, pos, owner))
                loose = owner is None
            runs[-1].messages += 1
            continue
        loose = False
        if name == "BHS":
            stack.append((i, len(runs)))
            runs.append(_Run(data[pos:_line_end(data, pos, end)].rstrip(_JUNK), pos, i))
        elif name == "BTS" and stack:
            _, first = stack.pop()
            runs[first:] = [_Run(runs[first].header, runs[first].start, runs[first].owner,
                                 sum(r.messages for r in runs[first:]))]
        elif name in ("FHS", "FTS"):
            stack.clear()
    return Outline([BatchGroup(r.header, r.messages, r.start) for r in runs])


@dataclass(slots=True)
class _Run:
    """Consecutive messages of one batch (``owner``: its BHS's boundary index; None outside
    any batch), for ``outline``."""

    header: bytes | None
    start: int
    owner: int | None
    messages: int = 0
