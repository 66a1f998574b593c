"""The bytes of an S3 object as its sender meant them, when it was stored compressed.

A sender that uploads with ``Content-Encoding: gzip`` (``aws s3 cp --content-encoding
gzip``, a gateway compressing what it forwards, a lab's export tool saving bandwidth) stores
the compressed bytes; S3 keeps the header and serves them as stored, and boto3 does not
decompress. The poller archived the gzip stream: detected as no known format, every such
report failed. The object is now decompressed (never past the source's ``max_bytes``: a
small object may inflate a thousandfold).

Only the codings that compress are undone (gzip, x-gzip, deflate). Others are left as sent:
``aws-chunked`` is the upload's framing, already removed by the store, and senders put a
charset there by mistake (``Content-Encoding: utf-8``): those objects were always read
fine. A gzip header on bytes that are not gzip (a store or proxy that already decoded them)
leaves them as read.
"""

from __future__ import annotations

import zlib

COMPRESSED = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS,
              "deflate": zlib.MAX_WBITS}
GZIP_MAGIC = b"\x1f\x8b"


class TooLarge(Exception):
    """Decompressed, the object is over the limit."""


class Damaged(Exception):
    """The coding says compressed and the bytes start as such, but do not decompress."""


def codings(header: str | None) -> list[str]:
    """The compressing codings of a Content-Encoding header, in the order they were
    applied (so undone from the last)."""
    found = [c.strip().lower() for c in (header or "").split(",")]
    return [c for c in found if c in COMPRESSED]


def decode(data: bytes, header: str | None, limit: int) -> bytes:
    """``data`` with its compressing codings undone; at most ``limit`` bytes (TooLarge past
    it); Damaged when a stream that starts compressed cannot be read to its end."""
    for coding in reversed(codings(header)):
        if coding != "deflate" and not data.startswith(GZIP_MAGIC):
            continue  # already decoded on the way (a proxy, a store that does it)
        data = _inflate(data, COMPRESSED[coding], limit)
    return data


def _inflate(data: bytes, wbits: int, limit: int) -> bytes:
    """All members of a stream (gzip allows several, concatenated), bounded."""
    out: list[bytes] = []
    total = 0
    rest = data
    try:
        while rest:
            inflater = zlib.decompressobj(wbits)
            chunk = inflater.decompress(rest, limit + 1 - total)
            total += len(chunk)
            out.append(chunk)
            if total > limit or inflater.unconsumed_tail:
                raise TooLarge
            if not inflater.eof:
                raise Damaged
            rest = inflater.unused_data.lstrip(b"\0")  # padding some writers leave
    except zlib.error as exc:
        raise Damaged from exc
    return b"".join(out)
