"""MLLP framing: VT <message> FS CR (HL7 v2.5 appendix C), bytes in, bytes out.

Ours rather than python-hl7's asyncio streams: those decode text before framing (ASCII by
default, so a latin-1 or UTF-8 accent stalls the read, python-hl7 issue #54) and can stall on
an escape sequence (#59). Here a frame is bytes; its charset is decided later from MSH-18.

Tolerance, as real senders need it: bytes between frames (a CR or LF after FS CR, keep-alive
noise) are skipped and counted, line ends, blanks (space, tab) and UTF-8 BOMs aside; a frame
may end with FS alone (the CR, if it comes, is then inter-frame noise); a VT inside a frame
abandons the unfinished frame and starts a new one.
An FS followed by anything but CR, LF, NUL or VT is content, not the end block (a raw 0x1C in
a sender's text, Mirth issue #1309): taken as the end, it cut the message there, its first
part was stored and answered AA and the rest skipped. FS alone still ends a frame when it is
the last byte arrived (a sender that ends with FS waits for its ACK before sending more), and
so does FS followed by blanks (spaces, tabs) up to one of those bytes or to the last byte
arrived: a sender padding its end block with a blank ('FS SP', 'FS SP CR') waited for an ACK
that never came, the frame read on as if the FS were text.
A frame over ``max_size`` is read to its end without being kept (only its head is, for the
error report), so one oversize message does not cost the connection.

A connection whose first bytes are another protocol's opening (a TLS ClientHello record, an
HTTP request line: ``FOREIGN_OPENINGS``) is no MLLP sender: a lab engine configured for TLS
pointed at the plain port, a load balancer's HTTP health check, a browser. Its bytes were
read as noise (a ClientHello holds 0x0B bytes, so a "frame" was started in it) until the
idle timeout, five minutes by default, while the client waited for an answer and the log
said a frame had been cut. The reader now ends the stream at once and names the protocol
(``foreign``), for the listener to say so and close. Only the connection's first bytes are
looked at: no MLLP stream starts so (frames start with VT, noise between them comes after a
frame), and a sender without start blocks begins with 'MSH', no method name.

A PROXY protocol header (a load balancer's, v1 or v2) opening a connection to a listener not
configured for it (``proxy_protocol``) is read and dropped (``proxy_header`` keeps it, for
the listener to warn): it was skipped as noise, the warning counting bytes outside frames,
with no word of the balancer set up to send it while the listener takes every sender
behind it for the balancer. The connection is served as before, as the balancer's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from connectors.mllp.proxy import (
    V1_PREFIX,
    V2_SIGNATURE,
    ProxyHeader,
    ProxyHeaderError,
    parse_header,
)

VT, FS, CR = b"\x0b", b"\x1c", b"\r"
START, END = 0x0B, 0x1C
# what may follow an end block (FS): its CR, a line end or NUL some senders add, the next VT
AFTER_END = frozenset(b"\r\n\x00\x0b")
BOM = b"\xef\xbb\xbf"  # a UTF-8 byte order mark: a writer's preamble, not noise
BLANKS = b" \t"  # padding some senders put after the end block, before its CR or nothing
HEAD_KEPT = 65536
READ_SIZE = 65536
# A connection's first bytes -> the protocol it speaks instead of MLLP. A TLS record of type
# handshake (0x16) and major version 3 (SSL 3.0 to TLS 1.3 all write 0x03 there, RFC 8446
# 5.1); HTTP/1.x request lines (RFC 9110 methods) and HTTP/2's connection preface.
FOREIGN_OPENINGS: tuple[tuple[bytes, str], ...] = (
    (b"\x16\x03", "TLS"),
    *((method + b" ", "HTTP") for method in (b"GET", b"HEAD", b"POST", b"PUT", b"DELETE",
                                              b"OPTIONS", b"PATCH", b"CONNECT", b"TRACE")),
    (b"PRI * HTTP/2", "HTTP"),
)
_LONGEST_OPENING = max(len(opening) for opening, _ in FOREIGN_OPENINGS)
_PROXY_OPENINGS = (V1_PREFIX, V2_SIGNATURE)  # a PROXY header's, v1 and v2


def frame(payload: bytes) -> bytes:
    """Wrap one message for sending."""
    return VT + payload + FS + CR


@dataclass(slots=True)
class Oversize:
    """A frame over the limit: its first bytes and its full size."""

    head: bytes
    size: int


class FrameReader:
    """Reads successive frames from one connection's StreamReader."""

    def __init__(self, reader: asyncio.StreamReader, max_size: int,
                 on_unframed: Callable[[], None] | None = None) -> None:
        self.reader = reader
        self.max_size = max_size
        self.buffer = bytearray()
        self.skipped = 0  # noise bytes outside frames (not CR, LF, space or tab)
        self.abandoned = 0  # frames cut by a VT before their FS
        self.unframed = 0  # end blocks (FS) outside any frame: frames sent without their VT
        self.inner_fs = 0  # FS bytes read as content (followed by other data)
        self.in_frame = False  # a start block read, its end block not yet (a cut is mid-frame)
        self.foreign: str | None = None  # the protocol the peer opened with, when not MLLP
        self._opening = True  # the connection's first bytes are still to be looked at
        self.proxy_header: ProxyHeader | None = None  # one the listener was not set up for
        # called at each such FS, as it arrives: its sender waits for an ACK that will not
        # come, and a keep-alive connection may stay open for hours before the counts above
        # are logged
        self.on_unframed = on_unframed

    async def _fill(self) -> bool:
        chunk = await self.reader.read(READ_SIZE)
        if not chunk:
            return False
        self.buffer += chunk
        return True

    async def next(self) -> bytes | Oversize | None:
        """The next frame's payload, an Oversize, or None at end of stream. Bytes of an
        unfinished frame at end of stream are dropped (never acknowledged, so the sender
        still holds them). Cancelled (a timeout), ``in_frame`` says whether it was cut in
        the middle of a frame."""
        got = await self._next()
        self.in_frame = False
        return got

    async def _next(self) -> bytes | Oversize | None:
        buf = self.buffer
        if self._opening and not await self._sniff():
            return None
        # 1. find the start block
        while True:
            start = buf.find(VT)
            if start >= 0:
                self._count_noise(buf[:start])
                del buf[:start + 1]
                self.in_frame = True
                break
            self._count_noise(buf)
            buf.clear()
            if not await self._fill():
                return None
        # 2. find the end block, bounded
        scanned = 0
        kept: bytearray | None = None
        size = 0
        while True:
            end = buf.find(FS, scanned)
            restart = buf.find(VT, scanned, end if end >= 0 else len(buf))
            if restart >= 0:  # a new frame starts before this one ended
                self.abandoned += 1
                del buf[:restart + 1]
                scanned, kept, size = 0, None, 0
                continue
            stop = _frame_end(buf, end) if end >= 0 else -1
            if end >= 0 and stop < 0:
                self.inner_fs += 1  # content: the frame goes on
                scanned = end + 1
                continue
            if end >= 0:  # the blanks after the FS go with it (padding, not noise)
                if kept is not None:
                    kept += buf[:max(0, HEAD_KEPT - len(kept))][:end]
                    size += end
                    del buf[:stop]
                    return Oversize(bytes(kept[:HEAD_KEPT]), size)
                if end > self.max_size:
                    head = bytes(buf[:min(end, HEAD_KEPT)])
                    del buf[:stop]
                    return Oversize(head, end)
                payload = bytes(buf[:end])
                del buf[:stop]
                return payload
            if kept is None and len(buf) > self.max_size:
                kept = bytearray(buf[:HEAD_KEPT])
                size = len(buf)
                buf.clear()
            elif kept is not None:
                if len(kept) < HEAD_KEPT:
                    kept += buf[:HEAD_KEPT - len(kept)]
                size += len(buf)
                buf.clear()
            scanned = len(buf)
            if not await self._fill():
                return None

    async def _sniff(self) -> bool:
        """Look at the connection's first bytes (reading until they tell, a few bytes at
        most); False when they open another protocol (``foreign`` says which: its bytes are
        dropped, not counted as noise) or the stream ended."""
        buf = self.buffer
        while True:
            head = bytes(buf[:_LONGEST_OPENING])
            found = opening_protocol(head)
            if found is not None:
                self._opening = False
                self.foreign = found
                buf.clear()
                return False
            if head.startswith(_PROXY_OPENINGS) and self._drop_proxy_header():
                continue  # what follows it is looked at as the connection's first bytes
            if not _may_open_foreign(head) and not _may_open_proxy(bytes(buf)):
                self._opening = False
                return True
            if not await self._fill():  # ended: what came is noise, counted as such
                self._opening = False
                return True

    def _drop_proxy_header(self) -> bool:
        """True when a whole PROXY header opened the buffer and was dropped (kept in
        ``proxy_header``); False when more bytes are needed, or when these bytes are no
        valid header (then noise, as before: sniffing stops)."""
        try:
            found = parse_header(bytes(self.buffer))
        except ProxyHeaderError:
            self._opening = False
            return False
        if found is None:
            return False
        self.proxy_header, taken = found
        del self.buffer[:taken]
        return True

    def _count_noise(self, data: bytes | bytearray) -> None:
        """Bytes outside frames, less the line ends and blanks some senders put between
        frames (counted, blanks made a warning saying bytes were skipped, for padding), and
        less a UTF-8 byte order mark: a .NET sender writing through a StreamWriter in UTF-8
        puts one before its first VT on each connection (the writer's preamble), and a
        sender connecting per message made a warning of it per message."""
        self.skipped += (len(data) - sum(data.count(c) for c in (b"\r", b"\n", b" ", b"\t"))
                         - len(BOM) * data.count(BOM))
        ends = data.count(FS)
        if ends:
            self.unframed += ends
            if self.on_unframed is not None:
                self.on_unframed()


def _frame_end(buf: bytearray, end: int) -> int:
    """Where the bytes of the end block at ``end`` (the FS and any blanks after it) stop,
    or -1 when that FS is content: what follows it, past any blanks, is one of
    ``AFTER_END`` or nothing yet (the last byte arrived)."""
    after = end + 1
    while after < len(buf) and buf[after] in BLANKS:
        after += 1
    return after if after == len(buf) or buf[after] in AFTER_END else -1


def opening_protocol(head: bytes) -> str | None:
    """The protocol (``FOREIGN_OPENINGS``) a connection's first bytes ``head`` open, None
    when they open none of them (or not yet: ``_may_open_foreign``)."""
    return next((name for opening, name in FOREIGN_OPENINGS if head.startswith(opening)),
                None)


def _may_open_foreign(head: bytes) -> bool:
    """Whether ``head`` is still the beginning of some foreign opening (more bytes tell)."""
    return any(opening.startswith(head) for opening, _ in FOREIGN_OPENINGS)


def _may_open_proxy(data: bytes) -> bool:
    """Whether ``data`` is a PROXY header not yet whole (more bytes tell): the beginning of
    either opening, or a v1 line without its CRLF, a v2 header short of its length."""
    try:
        return parse_header(data) is None
    except ProxyHeaderError:
        return False
