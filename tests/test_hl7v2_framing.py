"""split_batch: plain concatenations, FHS/BHS envelopes, MLLP framing, junk, the real corpus."""

from __future__ import annotations

from pathlib import Path

import hl7
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parsers.hl7v2 import Batch, parse_message, split_batch
from parsers.hl7v2.framing import (
    BATCH_BAD_COUNT,
    BATCH_COUNT_MISMATCH,
    BATCH_TRUNCATED,
    BATCH_UNEXPECTED,
    GARBAGE,
    iter_batch,
    outline,
    starts_with_envelope,
)

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"
needs_corpus = pytest.mark.skipif(not CORPUS.is_dir(), reason="../shared/corpus is absent")

# -- generated messages ------------------------------------------------------------------------

# Field text may hold "MSH|", "BTS|9" and the like, never at the start of a line: exactly what
# must not be taken for a boundary.
field_text = st.text(alphabet="abcXYZ019 ^~&|MSHBTFéè€", max_size=12)
segment_name = st.sampled_from(["PID", "PV1", "OBR", "OBX", "NTE", "ZFA", "MSA", "EVN"])
line_end = st.sampled_from([b"\r", b"\n", b"\r\n"])


@st.composite
def message(draw, last: bool = False) -> bytes:
    """One message as bytes; its segment ends are drawn per segment (senders mix them)."""
    control = draw(st.integers(0, 10**9))
    lines = [f"MSH|^~\\&|LAB|FAC|DMP|DMP|20240101||ORU^R01|{control}|P|2.5"]
    for _ in range(draw(st.integers(0, 5))):
        fields = draw(st.lists(field_text, max_size=5))
        lines.append("|".join([draw(segment_name), *fields]))
    out = b""
    for i, line in enumerate(lines):
        out += line.encode(draw(st.sampled_from(["utf-8", "iso-8859-15"])))
        if i < len(lines) - 1 or not last or draw(st.booleans()):
            out += draw(line_end)
    return out


@st.composite
def message_lists(draw) -> list[bytes]:
    n = draw(st.integers(1, 6))
    return [draw(message(last=i == n - 1)) for i in range(n)]


@settings(max_examples=200, deadline=None)
@given(message_lists())
def test_concatenation_splits_back_into_the_same_bytes(msgs):
    batch = split_batch(b"".join(msgs))
    assert batch.messages == msgs
    assert batch.problems == [] and batch.envelope is False


@settings(max_examples=150, deadline=None)
@given(st.lists(message_lists(), min_size=1, max_size=3), line_end, st.booleans())
def test_envelope_is_removed_and_counts_check(batches, end, with_file):
    parts = [b"FHS|^~\\&|LAB\r"] if with_file else []
    for msgs in batches:
        body = b"".join(m if m.endswith((b"\r", b"\n")) else m + end for m in msgs)
        parts += [b"BHS|^~\\&|LAB" + end, body, f"BTS|{len(msgs)}".encode() + end]
    if with_file:
        parts.append(f"FTS|{len(batches)}".encode())
    batch = split_batch(b"".join(parts))
    expected = [m if m.endswith((b"\r", b"\n")) else m + end for msgs in batches for m in msgs]
    assert batch.messages == expected
    assert batch.problems == [] and batch.envelope is True


@settings(max_examples=100, deadline=None)
@given(message_lists())
def test_mllp_frames_are_unwrapped(msgs):
    msgs = [m if m.endswith((b"\r", b"\n")) else m + b"\r" for m in msgs]
    stream = b"".join(b"\x0b" + m + b"\x1c\r" for m in msgs)
    assert split_batch(stream).messages == msgs


@settings(max_examples=100, deadline=None)
@given(message_lists())
def test_every_split_message_parses_like_python_hl7(msgs):
    for chunk in split_batch(b"".join(msgs)).messages:
        msg = parse_message(chunk)
        text = chunk.decode(msg.charset).replace("\r\n", "\r").replace("\n", "\r")
        ref = hl7.parse(text)
        assert msg.control_id == str(ref.segment("MSH")(10))
        assert len(msg.segments) == len(ref)


# -- envelopes -------------------------------------------------------------------------------

M1 = b"MSH|^~\\&|A|B|||20240101||ADT^A01|1|P|2.5\rPID|1\r"
M2 = b"MSH|^~\\&|A|B|||20240101||ADT^A01|2|P|2.5\rPID|2\r"
M3 = b"MSH|^~\\&|A|B|||20240101||ADT^A01|3|P|2.5\rPID|3\r"


def codes(batch: Batch) -> list[str]:
    return [p.code for p in batch.problems]


def test_nested_batches_in_one_file():
    data = (b"FHS|^~\\&|A\rBHS|^~\\&|A\r" + M1 + M2 + b"BTS|2\rBHS|^~\\&|A\r" + M3
            + b"BTS|1\rFTS|2\r")
    batch = split_batch(data)
    assert batch.messages == [M1, M2, M3]
    assert batch.problems == [] and batch.envelope


def test_bts_count_mismatch_says_truncated():
    batch = split_batch(b"BHS|^~\\&|A\r" + M1 * 7 + b"BTS|10\r")
    assert len(batch.messages) == 7
    assert codes(batch) == [BATCH_COUNT_MISMATCH]
    assert batch.problems[0].message == "BTS-1 announces 10 messages, 7 found: truncated batch?"
    assert batch.problems[0].offset == len(b"BHS|^~\\&|A\r" + M1 * 7)


def test_fts_count_mismatch():
    batch = split_batch(b"FHS|^~\\&\rBHS|^~\\&\r" + M1 + b"BTS|1\rFTS|3\r")
    assert codes(batch) == [BATCH_COUNT_MISMATCH]
    assert batch.problems[0].message.startswith("FTS-1 announces 3 batches, 1 found")


def test_messages_outside_a_batch_count_as_one_batch_of_the_file():
    batch = split_batch(b"FHS|^~\\&\r" + M1 + M2 + b"FTS|1\r")
    assert batch.messages == [M1, M2] and batch.problems == []


def test_missing_trailers_are_truncations():
    batch = split_batch(b"FHS|^~\\&\rBHS|^~\\&\r" + M1 + M2)
    assert batch.messages == [M1, M2]
    assert codes(batch) == [BATCH_TRUNCATED, BATCH_TRUNCATED]
    assert "FHS at byte 0" in batch.problems[0].message
    assert "BHS at byte 9" in batch.problems[1].message


def test_new_bhs_before_bts_truncates_the_previous_batch():
    batch = split_batch(b"BHS|^~\\&\r" + M1 + b"BHS|^~\\&\r" + M2 + b"BTS|1\r")
    assert batch.messages == [M1, M2]
    assert codes(batch) == [BATCH_TRUNCATED]


def test_stray_trailer_and_bad_count():
    assert codes(split_batch(M1 + b"BTS|1\r")) == [BATCH_UNEXPECTED]
    assert codes(split_batch(M1 + b"FTS|1\r")) == [BATCH_UNEXPECTED]
    assert codes(split_batch(b"BHS|^~\\&\r" + M1 + b"BTS|one\r")) == [BATCH_BAD_COUNT]


def test_empty_trailer_counts_are_not_checked():
    batch = split_batch(b"FHS|^~\\&\rBHS|^~\\&\r" + M1 + b"BTS\rFTS||comment\r")
    assert batch.messages == [M1] and batch.problems == []


def test_empty_batch_has_no_messages():
    batch = split_batch(b"FHS|^~\\&\rBHS|^~\\&\rBTS|0\rFTS|1\r")
    assert batch.messages == [] and batch.problems == [] and batch.envelope


# -- junk and framing ----------------------------------------------------------------------

def test_bom_mllp_and_trailing_blank_lines_are_stripped():
    batch = split_batch(b"\xef\xbb\xbf\x0b" + M1 + b"\x1c\r\n\r\n  \n")
    assert batch.messages == [M1] and batch.problems == []


def test_blank_lines_between_messages_are_dropped():
    m1 = M1.replace(b"\r", b"\r\n")
    batch = split_batch(m1 + b"\r\n\r\n" + M2 + b" \r\n\t\r\n")
    assert batch.messages == [m1, M2]


def test_trailing_spaces_of_the_last_segment_are_content():
    assert split_batch(M1 + b"NTE|1||note   \r").messages == [M1 + b"NTE|1||note   \r"]


def test_leading_garbage_is_reported_not_dropped_silently():
    junk = b"DUPONT JEAN 1801275123456\r\nsecond line\r\n"
    batch = split_batch(junk + M1)
    assert batch.messages == [M1]
    assert codes(batch) == [GARBAGE]
    problem = batch.problems[0]
    assert problem.offset == 0
    assert "2 lines" in problem.message
    assert "DUPONT" not in problem.message and "1801275123456" not in problem.message


def test_garbage_after_envelope_segments():
    batch = split_batch(b"BHS|^~\\&\rPID|1||DUPONT\r" + M1 + b"BTS|1\rtrailing junk")
    assert batch.messages == [M1]
    assert codes(batch) == [GARBAGE, GARBAGE]
    assert [p.offset for p in batch.problems] == [9, 9 + 14 + len(M1) + 6]
    assert all("DUPONT" not in p.message for p in batch.problems)


def test_no_msh_at_all_returns_the_whole_input_for_the_parser_to_reject():
    for data in (b"", b"hello\r\nworld", b"PID|1||123\r", b"<ClinicalDocument/>"):
        batch = split_batch(data)
        assert batch.messages == [data] and batch.problems == []


def test_msh_inside_a_field_or_longer_name_is_not_a_boundary():
    m = b"MSH|^~\\&|A\rNTE|1||see MSH|x\rMSHX|1\r"
    assert split_batch(m + M2).messages == [m, M2]


def test_message_ids_come_out_in_order_across_line_end_styles():
    msgs = [M1, M2.replace(b"\r", b"\n"), M3.replace(b"\r", b"\r\n")]
    out = split_batch(b"".join(msgs)).messages
    assert [parse_message(m).control_id for m in out] == ["1", "2", "3"]


# -- the real corpus -------------------------------------------------------------------------

def _corpus_files() -> list[Path]:
    if not CORPUS.is_dir():
        return []
    files = [*(CORPUS / "hl7v2").glob("*"), *(CORPUS / "intl" / "hl7v2").glob("*")]
    return sorted(f for f in files if f.suffix.lower() in (".hl7", ".er7"))


@pytest.mark.corpus
@needs_corpus
@pytest.mark.parametrize("path", _corpus_files(), ids=lambda p: p.name)
def test_corpus_file_splits_and_parses(path: Path):
    batch = split_batch(path.read_bytes())
    assert batch.problems == []
    assert len(batch.messages) == 1
    for chunk in batch.messages:
        msg = parse_message(chunk)
        assert msg.msh.name == "MSH" and msg.control_id


@pytest.mark.corpus
@needs_corpus
@pytest.mark.parametrize("name, envelope", [
    ("python-hl7_sample_batch.hl7", True),  # BHS, 1 ADT^A04, BTS|1
    ("python-hl7_sample_file.hl7", True),  # FHS, BHS, 1 ADT^A04, BTS|1, FTS|1
    ("python-hl7_sample_hl7.hl7", False),
])
def test_python_hl7_samples_match_python_hl7_counts(name, envelope):
    data = (CORPUS / "intl" / "hl7v2" / name).read_bytes()
    batch = split_batch(data)
    text = data.decode("ascii")
    if name.endswith("file.hl7"):
        expected = sum(len(b) for b in hl7.parse_file(text))
    elif name.endswith("batch.hl7"):
        expected = len(hl7.parse_batch(text))
    else:
        expected = 1
    assert len(batch.messages) == expected == 1
    assert batch.envelope is envelope and batch.problems == []
    assert parse_message(batch.messages[0]).message_type[:2] in (("ADT", "A04"), ("ORU", "R01"))


@pytest.mark.corpus
@needs_corpus
def test_whole_corpus_concatenated_in_one_file():
    files = _corpus_files()
    data = b"".join(f.read_bytes().rstrip(b"\r\n") + b"\r" for f in files)
    batch = split_batch(data)
    assert len(batch.messages) == len(files)
    assert batch.problems == []


# -- streaming: iter_batch over windows gives what split_batch gives over the whole ------------
envelope_piece = st.sampled_from([b"FHS|^~\\&|LAB\r", b"BHS|^~\\&|LAB\r", b"BTS|2\r", b"BTS|x\n",
                                  b"FTS|1\r\n", b"BTS\r", b"\r\n\r\n", b"garbage line\r",
                                  b"\x0b", b"\x1c\r", b"   \n", b"MSHX|not a header\r"])


@st.composite
def streams(draw) -> bytes:
    head = draw(st.sampled_from([b"", b"\xef\xbb\xbf", b"\r\n", b"\x0b", b"junk\r"]))
    # a message without its last line end: the next MSH is glued to its text (cut there)
    glued = message().map(lambda m: m.rstrip(b"\r\n"))
    parts = draw(st.lists(st.one_of(message(), glued, envelope_piece), min_size=1, max_size=8))
    return head + b"".join(parts)


def _streamed(data: bytes, window: int) -> Batch:
    pos = 0

    def read(n: int) -> bytes:
        nonlocal pos
        chunk = data[pos:pos + n]
        pos += len(chunk)
        return chunk

    out = list(iter_batch(read, window))
    batch = out.pop()
    assert isinstance(batch, Batch) and not batch.messages
    return Batch(out, batch.problems, batch.envelope, batch.notes)


@settings(max_examples=300, deadline=None)
@given(streams(), st.integers(1, 64))
def test_streaming_split_equals_whole_split(data: bytes, window: int) -> None:
    whole = split_batch(data)
    if whole.messages == [data] and not whole.problems and not whole.envelope:
        return  # no MSH/FHS/BHS at all: the caller of iter_batch detects that case
    assert _streamed(data, window) == whole


@pytest.mark.parametrize("window", [7, 4096])
def test_streaming_split_of_a_generated_batch_file(tmp_path, window: int) -> None:
    from samples.generate import write_bulk

    _, folder = write_bulk(tmp_path, 300, 11, batch=True)
    data = next(folder.iterdir()).read_bytes()
    assert _streamed(data, window) == split_batch(data)


# -- outline: the batches a batch acknowledgment answers ---------------------------------------


@settings(max_examples=300, deadline=None)
@given(streams())
def test_outline_groups_take_split_batch_messages_in_order(data: bytes) -> None:
    """Whatever the envelope (missing trailers, loose messages, junk), the groups' counts add
    up to split_batch's messages: each message's ACK lands in one response batch."""
    whole = split_batch(data)
    if whole.messages == [data] and not whole.problems and not whole.envelope:
        return  # no MSH/FHS/BHS at all: never a batch frame
    groups = outline(data).groups
    assert sum(g.messages for g in groups) == len(whole.messages)
    assert all(g.header is None or g.header.startswith(b"BHS") for g in groups)
    assert [g.start for g in groups] == sorted(g.start for g in groups)


def test_outline_of_a_file():
    data = (b"FHS|^~\\&|LAB\rBHS|^~\\&|LAB||||||||B1\rMSH|^~\\&|a\rBTS|1\r"
            b"BHS|^~\\&|LAB\nMSH|^~\\&|b\nMSH|^~\\&|c\nBTS|2\nMSH|^~\\&|d\rFTS|3\r")
    groups = outline(data).groups
    assert [(g.header, g.messages) for g in groups] == [
        (b"BHS|^~\\&|LAB||||||||B1", 1), (b"BHS|^~\\&|LAB", 2), (None, 1)]
    assert [data[g.start:g.start + 3] for g in groups] == [b"BHS", b"BHS", b"MSH"]


def test_outline_of_an_empty_batch_and_of_a_batch_without_trailer():
    assert [(g.header, g.messages) for g in outline(b"BHS|^~\\&\rBTS|0\r").groups] == [
        (b"BHS|^~\\&", 0)]
    assert [(g.header, g.messages) for g in outline(b"BHS|^~\\&\rMSH|^~\\&|a\r").groups] == [
        (b"BHS|^~\\&", 1)]


@pytest.mark.parametrize(("data", "expected"), [
    (b"BHS|^~\\&\rMSH|x\r", True), (b"FHS|^~\\&\r", True), (b"\xef\xbb\xbf\r\nBHS|x", True),
    (b"\x0bFHS|", True), (b"MSH|^~\\&\rBHS|^~\\&\r", False), (b"BHSX|", False),
    (b"PID|1\r", False), (b"", False),
])
def test_a_batch_frame_opens_with_fhs_or_bhs(data: bytes, expected: bool) -> None:
    assert starts_with_envelope(data) is expected
