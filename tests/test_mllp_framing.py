"""MLLP framing (connectors/mllp/framing.py) driven through a real asyncio.StreamReader.

Every test feeds bytes with ``feed_data``/``feed_eof`` and reads with ``FrameReader.next`` until
end of stream. The feeder waits until the reader has taken each chunk before feeding the next,
so the chunks the tests choose are exactly the reads the FrameReader sees (checked by a spy on
``StreamReader.read``): a split in the test is a split on the wire.
"""

from __future__ import annotations

import asyncio
import itertools

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from connectors.mllp.framing import (
    AFTER_END,
    BOM,
    HEAD_KEPT,
    READ_SIZE,
    FrameReader,
    Oversize,
    frame,
    opening_protocol,
)

VT, FS, CR = b"\x0b", b"\x1c", b"\r"
MSG_A = b"MSH|^~\\&|LAB|CERBALLIANCE|DMP|ANS|20240101||ORU^R01^ORU_R01|A1|P|2.5\rPID|1||42\r"
MSG_B = b"MSH|^~\\&|GAM|CHU|DMP|ANS|20240102||ADT^A01^ADT_A01|B2|P|2.5\rPID|1||43\r"


class Run:
    """What one connection gave: frames (payload bytes or Oversize), counters, the reads."""

    def __init__(self, frames: list, reader: FrameReader, reads: list[bytes]) -> None:
        self.frames = frames
        self.skipped = reader.skipped
        self.abandoned = reader.abandoned
        self.unframed = reader.unframed
        self.reads = list(reads)


def run(chunks: list[bytes], max_size: int = 1 << 20) -> Run:
    """Feed ``chunks`` one read at a time, then EOF; collect frames until ``next`` gives None."""

    async def main() -> Run:
        stream = asyncio.StreamReader()
        reads: list[bytes] = []
        real_read = stream.read

        async def spy(n: int = -1) -> bytes:
            data = await real_read(n)
            reads.append(data)
            return data

        stream.read = spy  # type: ignore[method-assign]
        reader = FrameReader(stream, max_size)

        async def feed() -> None:
            for chunk in chunks:
                if not chunk:
                    continue
                stream.feed_data(chunk)
                # let the reader take the whole chunk before the next one arrives
                for _ in range(10_000):
                    if not stream._buffer:
                        break
                    await asyncio.sleep(0)
                else:  # pragma: no cover - would mean the reader stopped reading
                    raise AssertionError("the reader did not drain the stream")
            stream.feed_eof()

        feeder = asyncio.create_task(feed())
        frames = []
        while True:
            got = await reader.next()
            if got is None:
                break
            frames.append(got)
        await feeder
        result = Run(frames, reader, reads)
        # once at end of stream, it stays there
        assert await reader.next() is None
        return result

    return asyncio.run(main())


def chunked(data: bytes, size: int) -> list[bytes]:
    return [data[i:i + size] for i in range(0, len(data), size)]


def split_at(data: bytes, *cuts: int) -> list[bytes]:
    bounds = [0, *cuts, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


# -- the basics --------------------------------------------------------------------------------

def test_frame_wraps_in_vt_fs_cr():
    assert frame(b"MSH|x") == b"\x0bMSH|x\x1c\r"
    assert frame(b"") == b"\x0b\x1c\r"


def test_one_frame():
    r = run([frame(MSG_A)])
    assert r.frames == [MSG_A]
    assert (r.skipped, r.abandoned) == (0, 0)


def test_empty_stream_and_empty_frame():
    assert run([]).frames == []
    r = run([frame(b"")])
    assert r.frames == [b""]
    assert (r.skipped, r.abandoned) == (0, 0)


def test_many_frames_in_one_chunk():
    payloads = [MSG_A, MSG_B, b"", MSG_A + MSG_B, b"x"]
    r = run([b"".join(frame(p) for p in payloads)])
    assert r.reads[0] == b"".join(frame(p) for p in payloads)  # one read held them all
    assert r.frames == payloads
    assert (r.skipped, r.abandoned) == (0, 0)


def test_the_harness_keeps_chunk_boundaries():
    chunks = [b"\x0bMSH", b"|", b"^~\\&\x1c", b"\r"]
    r = run(chunks)
    assert r.reads[:-1] == chunks and r.reads[-1] == b""
    assert r.frames == [b"MSH|^~\\&"]


# -- splits ------------------------------------------------------------------------------------

STREAM = frame(MSG_A) + frame(b"") + frame(MSG_B)


@pytest.mark.parametrize("cut", range(len(STREAM) + 1))
def test_split_in_two_at_every_byte(cut):
    r = run(split_at(STREAM, cut))
    assert r.frames == [MSG_A, b"", MSG_B]
    assert (r.skipped, r.abandoned) == (0, 0)


def test_split_in_three_at_every_pair_of_bytes():
    data = frame(b"MSH|1\rPID|\r") + frame(b"MSH|2\r")
    for i in range(len(data) + 1):
        for j in range(i, len(data) + 1):
            r = run(split_at(data, i, j))
            assert r.frames == [b"MSH|1\rPID|\r", b"MSH|2\r"], (i, j)
            assert (r.skipped, r.abandoned) == (0, 0), (i, j)


def test_byte_by_byte():
    r = run(chunked(STREAM, 1))
    assert len(r.reads) == len(STREAM) + 1
    assert r.frames == [MSG_A, b"", MSG_B]
    assert (r.skipped, r.abandoned) == (0, 0)


@pytest.mark.parametrize("chunks", [
    [b"\x0b", b"MSH|a\x1c", b"\r\x0b", b"MSH|b\x1c", b"\r"],  # VT alone, then FS|CR apart
    [b"\x0bMSH|a", b"\x1c", b"\r", b"\x0bMSH|b", b"\x1c\r"],  # FS alone, CR alone
    [b"\x0bMSH|a\x1c\r\x0b", b"MSH|b\x1c\r"],  # the next VT at the end of a chunk
    [b"\x0bMSH|a\x1c", b"\r\x0bMSH|b\x1c", b"\r"],  # CR at the start of the next read
])
def test_delimiters_split_across_chunks(chunks):
    r = run(chunks)
    assert r.frames == [b"MSH|a", b"MSH|b"]
    assert (r.skipped, r.abandoned) == (0, 0)


# -- tolerance ---------------------------------------------------------------------------------

def test_noise_between_frames_is_skipped_and_counted_except_line_ends_and_blanks():
    # blanks are padding, like line ends (round 7): counted, they made a warning for nothing
    data = (b"junk" + frame(MSG_A) + b"\r\n\n" + b"xx" + frame(MSG_B) + b"\r\n \t\x00z")
    r = run([data])
    assert r.frames == [MSG_A, MSG_B]
    assert r.skipped == len(b"junk") + len(b"xx") + len(b"\x00z")
    assert r.abandoned == 0


def test_noise_counted_the_same_whatever_the_chunks():
    data = b"ab\r\n" + frame(b"one") + b"\n\rcd" + frame(b"two") + b"ef\r\n"
    for size in (1, 2, 3, 5, 8, len(data)):
        r = run(chunked(data, size))
        assert r.frames == [b"one", b"two"], size
        assert r.skipped == 6, size


def test_only_cr_lf_between_frames_counts_nothing():
    r = run([b"\r\n" + frame(b"a") + b"\n\n\r\r" + frame(b"b") + b"\n"])
    assert r.frames == [b"a", b"b"]
    assert r.skipped == 0


def test_noise_without_any_frame():
    r = run([b"hello", b"\r\n", b"world"])
    assert r.frames == []
    assert r.skipped == 10


def test_frame_without_start_block_is_counted_as_unframed():
    """'MSH... FS CR' with no VT: skipped as noise (MLLP frames start with VT), and its FS
    counted apart, whatever the chunks, so that the listener can say so at once."""
    data = MSG_A + FS + CR + frame(MSG_B) + b"MSH|c" + FS + CR
    for size in (1, 3, len(data)):
        r = run(chunked(data, size))
        assert r.frames == [MSG_B], size
        assert r.unframed == 2, size
        assert r.skipped == len(MSG_A) - MSG_A.count(CR) + 1 + len(b"MSH|c") + 1, size


def test_fs_followed_by_data_is_content():
    """A raw 0x1C inside a message (followed by more of it) does not end the frame; FS then
    CR, LF, NUL or VT, or FS as the last byte arrived, does. Whatever the chunks, as long as
    the byte after the inner FS comes in the same read (a sender writes its message at
    once: an inner FS at the very end of a read still ends the frame there)."""
    inner = b"MSH|^~\\&|A\rNTE|1||x" + FS + b"y\rOBX|1\r"
    stream = frame(inner) + VT + b"MSH|b" + FS + VT + b"MSH|c" + FS + b"\n" + frame(b"MSH|d")
    r = run([stream])
    assert r.frames == [inner, b"MSH|b", b"MSH|c", b"MSH|d"]
    assert (r.skipped, r.abandoned, r.unframed) == (0, 0, 0)
    cut = stream.index(FS) + 2  # the inner FS and the byte after it in one read
    r = run([stream[:cut], stream[cut:]])
    assert r.frames == [inner, b"MSH|b", b"MSH|c", b"MSH|d"]


def test_frame_ending_with_fs_without_cr():
    r = run([b"\x0bMSH|a\x1c\x0bMSH|b\x1c", b"\x0bMSH|c\x1c"])
    assert r.frames == [b"MSH|a", b"MSH|b", b"MSH|c"]
    assert (r.skipped, r.abandoned) == (0, 0)


def test_late_cr_after_fs_is_uncounted_noise():
    r = run([b"\x0bMSH|a\x1c", b"\r", b"\x0bMSH|b\x1c", b"\r\n"])
    assert r.frames == [b"MSH|a", b"MSH|b"]
    assert r.skipped == 0


def test_vt_inside_an_unfinished_frame_abandons_it():
    data = b"\x0bMSH|cut short" + frame(MSG_A) + frame(MSG_B)
    for size in (1, 4, 7, len(data)):
        r = run(chunked(data, size))
        assert r.frames == [MSG_A, MSG_B], size
        assert r.abandoned == 1, size
        assert r.skipped == 0, size


def test_several_abandoned_frames_in_a_row():
    r = run([b"\x0bone\x0btwo", b"\x0bthree", b"\x0bfour\x1c\r"])
    assert r.frames == [b"four"]
    assert r.abandoned == 3


def test_vt_in_the_same_read_as_the_fs_of_the_next_frame():
    # the restart VT lies before the FS in the buffer: the first frame is abandoned
    r = run([b"\x0bpartial", b"\x0bwhole\x1c\r"])
    assert r.frames == [b"whole"]
    assert r.abandoned == 1


def test_eof_mid_frame_returns_none():
    r = run([frame(MSG_A), b"\x0bMSH|^~\\&|never finished"])
    assert r.frames == [MSG_A]
    assert r.abandoned == 0


def test_eof_right_after_vt_or_before_cr():
    assert run([b"\x0b"]).frames == []
    assert run([b"\x0bMSH|a\x1c"]).frames == [b"MSH|a"]


# -- oversize ----------------------------------------------------------------------------------

LIMIT = 100


def payload(n: int, seed: int = 0) -> bytes:
    """n bytes with no VT/FS, varied so that a wrong slice shows."""
    body = bytes((i * 7 + seed) % 256 for i in range(n))
    return body.replace(VT, b"v").replace(FS, b"f")


@pytest.mark.parametrize("size", [1, 3, 7, 64, 1000])
def test_exactly_at_the_limit_is_accepted(size):
    data = frame(payload(LIMIT)) + frame(b"next")
    r = run(chunked(data, size), max_size=LIMIT)
    assert r.frames == [payload(LIMIT), b"next"]


def test_zero_limit_accepts_only_empty_frames():
    r = run([frame(b"") + frame(b"x") + frame(b"")], max_size=0)
    assert r.frames == [b"", Oversize(b"x", 1), b""]


@pytest.mark.parametrize("size", [1, 3, 7, 50, 64, 99, 100, 101, 102, 1000])
def test_limit_plus_one_is_oversize_and_the_next_frame_is_read(size):
    big = payload(LIMIT + 1)
    data = frame(big) + frame(MSG_A) + frame(b"")
    r = run(chunked(data, size), max_size=LIMIT)
    assert len(r.frames) == 3
    over = r.frames[0]
    assert isinstance(over, Oversize)
    assert over.size == LIMIT + 1
    assert over.head == big  # smaller than HEAD_KEPT: the whole payload, nothing after it
    assert r.frames[1:] == [MSG_A, b""]
    assert (r.skipped, r.abandoned) == (0, 0)


def test_oversize_in_one_chunk_with_what_follows():
    big = payload(LIMIT + 30)
    r = run([frame(big) + frame(b"after")], max_size=LIMIT)
    assert r.frames == [Oversize(big, len(big)), b"after"]


def test_oversize_ending_in_the_read_that_crosses_the_limit():
    big = payload(LIMIT + 20)
    # first read under the limit, second read holds the rest, the FS and the next frame
    chunks = [VT + big[:60], big[60:] + FS + CR + frame(b"after")]
    r = run(chunks, max_size=LIMIT)
    assert r.frames == [Oversize(big, len(big)), b"after"]


@pytest.mark.parametrize("size", [1000, 4096, READ_SIZE, 3 * READ_SIZE, 10**6])
def test_large_oversize_keeps_the_first_64k(size):
    big = payload(200_000, seed=3)
    data = frame(big) + frame(MSG_B)
    r = run(chunked(data, size), max_size=1000)
    assert len(r.frames) == 2
    over = r.frames[0]
    assert isinstance(over, Oversize)
    assert over.size == len(big)
    assert len(over.head) == HEAD_KEPT == 65536
    assert over.head == big[:HEAD_KEPT]
    assert r.frames[1] == MSG_B


@pytest.mark.parametrize("n", [HEAD_KEPT - 1, HEAD_KEPT, HEAD_KEPT + 1])
def test_oversize_head_around_64k(n):
    big = payload(n, seed=5)
    for chunks in ([frame(big) + frame(b"x")], chunked(frame(big) + frame(b"x"), 777)):
        r = run(chunks, max_size=10)
        assert r.frames == [Oversize(big[:HEAD_KEPT], n), b"x"]


def test_vt_inside_an_oversize_frame_abandons_it():
    data = VT + payload(LIMIT * 3) + frame(b"small")
    r = run(chunked(data, 16), max_size=LIMIT)
    assert r.frames == [b"small"]
    assert r.abandoned == 1


def test_eof_inside_an_oversize_frame():
    r = run(chunked(frame(b"ok") + VT + payload(LIMIT * 5), 9), max_size=LIMIT)
    assert r.frames == [b"ok"]


def test_accepted_frame_after_an_oversize_one_in_the_same_buffer_is_not_truncated():
    # a burst: oversize, then frames whose total exceeds the limit, all in one read
    small = [payload(60, seed=s) for s in range(5)]
    data = frame(payload(LIMIT + 1)) + b"".join(frame(p) for p in small)
    r = run([data], max_size=LIMIT)
    assert r.frames[0] == Oversize(payload(LIMIT + 1), LIMIT + 1)
    assert r.frames[1:] == small


# -- bytes are bytes ---------------------------------------------------------------------------

BINARY = [
    bytes(b for b in range(256) if b not in (0x0B, 0x1C)),
    "MSH|^~\\&|LAB|CH Évian|DMP|ANS\rPID|1||42||LEFÈVRE^Hélène\r".encode("latin-1"),
    "MSH|^~\\&|LAB|CH Évian|DMP|ANS\rPID|1||42||LEFÈVRE^Hélène Bœuf 12 €\r".encode(),
    b"OBX|1|FT|||ligne 1\\.br\\ligne 2 \\E\\ \\F\\ \\X0D0A\\ \\S\\\r",
    b"\x00\x00\r\n\n\r\xff\xfe",
    "日本語の患者".encode("shift_jis").replace(VT, b"").replace(FS, b""),
]


@pytest.mark.parametrize("data", BINARY, ids=["all-bytes", "latin-1", "utf-8", "escapes",
                                              "nul-cr-lf", "shift-jis"])
def test_payload_bytes_pass_through_unchanged(data):
    assert VT not in data and FS not in data
    stream = frame(data) + frame(data)
    for size in (1, 2, 3, len(stream)):
        r = run(chunked(stream, size))
        assert r.frames == [data, data], size
        assert all(type(f) is bytes for f in r.frames)


# -- properties --------------------------------------------------------------------------------

frame_payloads = st.binary(max_size=300).map(lambda b: b.replace(VT, b"").replace(FS, b""))


def random_chunks(data: bytes, draw) -> list[bytes]:
    cuts = draw(st.lists(st.integers(0, len(data)), max_size=40))
    return split_at(data, *sorted(cuts))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payloads=st.lists(frame_payloads, max_size=12), data=st.data())
def test_property_framed_payloads_come_back_in_order(payloads, data):
    stream = b"".join(frame(p) for p in payloads)
    r = run(random_chunks(stream, data.draw), max_size=1 << 20)
    assert r.frames == payloads
    assert (r.skipped, r.abandoned) == (0, 0)


noise = st.binary(max_size=8).map(lambda b: b.replace(VT, b""))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(items=st.lists(st.tuples(noise, frame_payloads, st.booleans()), max_size=8),
       tail=noise, max_size=st.integers(0, 120), data=st.data())
def test_property_noise_fs_only_and_oversize(items, tail, max_size, data):
    """Noise before frames, frames ending with FS alone or FS CR, a random limit: every frame
    comes back in order (oversize ones as Oversize with their size and head), and the skipped
    count is the noise less its CR and LF bytes. After FS alone, what follows is the next VT,
    a line end or nothing: an FS followed by other data is content (test_fs_followed_by_data
    _is_content), so noise there starts with LF."""
    parts: list[bytes] = []
    fs_alone = False
    for n, p, with_cr in items:
        if fs_alone and n and n[0] not in AFTER_END:
            n = b"\n" + n
        parts.append(n + VT + p + (FS + CR if with_cr else FS))
        fs_alone = not with_cr
    if fs_alone and tail and tail[0] not in AFTER_END:
        tail = b"\n" + tail
    stream = b"".join(parts) + tail
    assume(opening_protocol(stream[:16]) is None)  # TLS or HTTP: no MLLP (round 12)
    r = run(random_chunks(stream, data.draw), max_size=max_size)
    expected = [p if len(p) <= max_size else Oversize(p[:HEAD_KEPT], len(p))
                for _, p, _ in items]
    assert r.frames == expected
    all_noise = b"".join(part[:part.index(VT)] for part in parts) + tail
    assert r.skipped == len(all_noise) - sum(all_noise.count(c) for c in (b"\r", b"\n", b" ",
                                                                          b"\t")) \
        - len(BOM) * all_noise.count(BOM)  # a writer's preamble (round 12)
    assert r.abandoned == 0
