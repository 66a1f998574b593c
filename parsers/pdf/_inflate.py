"""A bound on the bytes pdfminer inflates (FlateDecode, LZWDecode) while reading one document.

Why: pdfminer inflates a stream whole, with no limit (``zlib.decompress``). One megabyte of
deflated spaces is a gigabyte of content stream: a 1 MB "PDF bomb" took 2 GB of memory, and a
file at PdfLimits.max_bytes (50 MB) would take the worker down. The byte and page limits are
checked before the work they protect; this one is checked while inflating, so that the memory
used stays within ``max_inflated_bytes`` (plus one chunk) whatever the compression ratio.

How: pdfminer.pdftypes reaches zlib and lzwdecode through its module attributes;
``install()`` replaces them with BoundedZlib (``decompress``, ``decompressobj``) and
bounded_lzwdecode, which draw on the budget ``budget(n)`` opens for the current thread (a
context variable). Outside a budget
(pdfminer used by other code) the default limit applies. Past the budget InflateLimit is
raised; parse_pdf turns it into PDF_TOO_LARGE. pdfium (the OCR side) is not concerned: a page
is only rasterised after its text layer was read through pdfminer.
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

DEFAULT_MAX_INFLATED = 256 * 1024 * 1024


class InflateLimit(Exception):  # noqa: N818 - a limit reached, as PdfLimits names them
    """More inflated bytes than the document's budget (holds sizes only)."""


@dataclass(slots=True)
class _Budget:
    limit: int
    used: int = 0

    def take(self, out: bytes) -> bytes:
        self.used += len(out)
        if self.used > self.limit:
            raise InflateLimit(f"streams inflate to more than {self.limit} bytes")
        return out

    @property
    def left(self) -> int:
        return max(0, self.limit - self.used)


_current: ContextVar[_Budget | None] = ContextVar("dmp_pdf_inflate_budget", default=None)


def _budget() -> _Budget:
    found = _current.get()
    # outside parse_pdf: a budget per call, at the default limit
    return found if found is not None else _Budget(DEFAULT_MAX_INFLATED)


@contextmanager
def budget(limit: int) -> Iterator[None]:
    """Every stream pdfminer inflates in this thread meanwhile draws on ``limit`` bytes."""
    token = _current.set(_Budget(limit))
    try:
        yield
    finally:
        _current.reset(token)


class _BoundedInflater:
    """zlib.decompressobj()'s interface (as pdfminer's decompress_corrupted uses it), bounded."""

    def __init__(self, inner, spend: _Budget) -> None:  # noqa: ANN001
        self._inner, self._spend = inner, spend

    def decompress(self, data: bytes, max_length: int = 0) -> bytes:
        cap = self._spend.left + 1
        return self._spend.take(self._inner.decompress(
            data, min(max_length, cap) if max_length else cap))

    def flush(self, *args: int) -> bytes:
        return self._spend.take(self._inner.flush(*args))

    def __getattr__(self, name: str):  # noqa: ANN204 - eof, unused_data, unconsumed_tail
        return getattr(self._inner, name)


class BoundedZlib:
    """Stands in for the zlib module inside pdfminer.pdftypes."""

    error = zlib.error
    MAX_WBITS = zlib.MAX_WBITS

    @staticmethod
    def decompress(data: bytes, wbits: int = zlib.MAX_WBITS, bufsize: int = 0) -> bytes:  # noqa: ARG004
        """zlib.decompress, bounded: the same result and the same zlib.error on a truncated
        stream (pdfminer then tries its tolerant path, also bounded)."""
        inflater = zlib.decompressobj(wbits)
        spend = _budget()
        out = spend.take(inflater.decompress(data, spend.left + 1))
        if not inflater.eof:
            raise zlib.error("incomplete or truncated stream")
        return out

    @staticmethod
    def decompressobj(*args, **kwargs) -> _BoundedInflater:  # noqa: ANN002, ANN003
        return _BoundedInflater(zlib.decompressobj(*args, **kwargs), _budget())

    def __getattr__(self, name: str):  # noqa: ANN204 - anything else: the real zlib
        return getattr(zlib, name)


def bounded_lzwdecode(data: bytes) -> bytes:
    """pdfminer's lzwdecode, drawing on the same budget (LZW reaches about 2,700:1)."""
    from pdfminer.lzw import LZWDecoder

    spend = _budget()
    out = bytearray()
    for chunk in LZWDecoder(io.BytesIO(data)).run():
        out += spend.take(chunk)
    return bytes(out)


def install() -> None:
    """Make pdfminer inflate through BoundedZlib and bounded_lzwdecode (idempotent)."""
    from pdfminer import pdftypes

    if not isinstance(pdftypes.zlib, BoundedZlib):
        pdftypes.zlib = BoundedZlib()
    pdftypes.lzwdecode = bounded_lzwdecode
