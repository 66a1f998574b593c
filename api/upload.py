"""What a POST /imports body holds: the files a sender uploads, out of the HTTP wrappings.

A body is usually the message or document itself. Two wrappings are common enough among HTTP
senders to be read rather than stored as an input of unknown format:
- ``Content-Encoding: gzip`` (or ``deflate``): interface engines compress large CDA and PDF
  uploads. The decompressed size is held to the same limit as a plain body, so that a
  compression bomb is refused (413) before it fills memory.
- ``multipart/form-data`` (RFC 7578; ``curl -F file=@result.hl7``, a browser form):
  every part with a file name is one file; the form's other fields are not ours.

Nothing here detects formats or parses messages: the files go to intake as they are.
"""

from __future__ import annotations

import base64
import binascii
import re
import zlib
from dataclasses import dataclass
from email.message import Message
from email.utils import collapse_rfc2231_value


class UploadError(ValueError):
    """A body that cannot be unwrapped: HTTP status, stable code, one line."""

    def __init__(self, status: int, code: str, text: str) -> None:
        super().__init__(text)
        self.status, self.code = status, code


@dataclass(frozen=True, slots=True)
class UploadedFile:
    data: bytes
    file_name: str | None  # the part's file name (multipart), else None


_DECOMPRESSORS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS,
                  "deflate": zlib.MAX_WBITS}
_STEP = 1 << 20


def decoded_body(body: bytes, content_encoding: str | None, limit: int) -> bytes:
    """The body without its Content-Encoding; 413 once the decoded size exceeds ``limit``,
    400 when it is not what the header says, 415 for an encoding we do not read."""
    codings = [c.strip().lower() for c in (content_encoding or "").split(",") if c.strip()]
    for coding in reversed(codings):  # applied in the order listed: undone the other way
        if coding == "identity":
            continue
        wbits = _DECOMPRESSORS.get(coding)
        if wbits is None:
            raise UploadError(415, "UNSUPPORTED_ENCODING",
                              f"Content-Encoding {coding!r} is not read (gzip, deflate)")
        body = _inflate(body, wbits, coding, limit)
    return body


def _inflate(data: bytes, wbits: int, coding: str, limit: int) -> bytes:
    d = zlib.decompressobj(wbits)
    out, size = [], 0
    try:
        chunk = d.decompress(data, _STEP)
        while True:
            size += len(chunk)
            if size > limit:
                raise UploadError(413, "TOO_LARGE", f"the body, once decompressed ({coding}), "
                                  f"is over the limit of {limit} bytes")
            out.append(chunk)
            if not d.unconsumed_tail:
                break
            chunk = d.decompress(d.unconsumed_tail, _STEP)
        out.append(d.flush())
    except zlib.error:
        raise UploadError(400, "BAD_ENCODING",
                          f"the body is not {coding} data as Content-Encoding says") from None
    if not d.eof:
        raise UploadError(400, "BAD_ENCODING", f"the {coding} data of the body is cut short")
    return b"".join(out)


def uploaded_files(body: bytes, content_type: str | None) -> list[UploadedFile]:
    """The files of a multipart/form-data body, each with its file name; any other body is
    one file, as sent."""
    kind, params = _header_value(content_type or "")
    if not kind.startswith("multipart/"):
        return [UploadedFile(body, None)]
    boundary = params.get("boundary")
    if not boundary or len(boundary) > 200:
        raise UploadError(400, "BAD_MULTIPART", f"{kind} without a usable boundary parameter")
    parts = _parts(body, boundary.encode("latin-1", "replace"))
    files = [_file(headers, data) for headers, data in parts if _is_file(headers)]
    _refuse_named_empty_files(files)
    files = [f for f in files if f.data.strip()]
    if not files:
        raise UploadError(400, "NO_FILE_PART", f"the {kind} body holds no file part (a part "
                          "with a filename, e.g. curl -F file=@result.hl7)")
    return files


def _refuse_named_empty_files(files: list[UploadedFile]) -> None:
    """400 for an empty file that has a name (`curl -F file=@result.hl7` of a file its
    engine had not written yet): it was dropped in silence and the answer listed the other
    files only. A browser form's unchosen file input (no file name, no content) is still
    skipped. The message gives the part's position, not its name (names hold patients')."""
    for n, f in enumerate(files, 1):
        if f.file_name and not f.data.strip():
            raise UploadError(400, "EMPTY_FILE", f"file part {n} of the form is empty; "
                              "nothing was stored, send the form again with its content")


def _parts(body: bytes, boundary: bytes) -> list[tuple[dict[str, str], bytes]]:
    """(headers, content) of each part between '--boundary' lines (RFC 2046 5.1.1). A part's
    content ends before the CRLF (LF from lax clients) of the next delimiter line: its own
    bytes stay as sent, CR-ended HL7 segments and binary PDF alike."""
    delimiter = b"--" + boundary
    pieces = re.split(rb"(?:^|\r?\n)" + re.escape(delimiter), body)
    if len(pieces) < 2:
        raise UploadError(400, "BAD_MULTIPART", "the body holds no part of its boundary")
    parts = []
    for piece in pieces[1:]:
        if piece.startswith(b"--"):  # the close delimiter
            return parts
        parts.append(_split_head(piece))
    raise UploadError(400, "BAD_MULTIPART", "the body ends before its closing boundary "
                      "(cut short in transit?)")


def _split_head(piece: bytes) -> tuple[dict[str, str], bytes]:
    """A part, from the end of its delimiter line -> its headers and its content."""
    m = re.search(rb"\r?\n\r?\n", piece)
    if m is None:
        raise UploadError(400, "BAD_MULTIPART", "a part has no blank line after its headers")
    headers: dict[str, str] = {}
    for line in piece[:m.start()].decode("utf-8", "replace").splitlines():
        name, colon, value = line.partition(":")
        if colon:
            headers[name.strip().lower()] = value.strip()
    return headers, piece[m.end():]


def _is_file(headers: dict[str, str]) -> bool:
    """A form's file part (a file name in its Content-Disposition), or a part of a
    multipart/mixed body (no form-data disposition): not a form's text field."""
    disposition = headers.get("content-disposition", "")
    kind, params = _header_value(disposition)
    return kind != "form-data" or params.get("filename") is not None


def _file(headers: dict[str, str], data: bytes) -> UploadedFile:
    encoding = headers.get("content-transfer-encoding", "").strip().lower()
    if encoding == "base64":
        try:
            data = base64.b64decode(b"".join(data.split()), validate=True)
        except binascii.Error:
            raise UploadError(400, "BAD_MULTIPART", "a part says base64 and is not") from None
    name = _header_value(headers.get("content-disposition", ""))[1].get("filename")
    return UploadedFile(data, name or None)


def _header_value(value: str) -> tuple[str, dict[str, str]]:
    """'multipart/form-data; boundary=x' -> ('multipart/form-data', {'boundary': 'x'}), with
    quoted values and RFC 2231 ("filename*=UTF-8''r%C3%A9sultat.hl7") read by the standard
    library."""
    msg = Message()
    msg["x"] = value
    params = msg.get_params(header="x") or []
    if not params:
        return "", {}
    found = {key.lower(): collapse_rfc2231_value(val) for key, val in params[1:]}
    return params[0][0].lower(), found


_FORM_URLENCODED = "application/x-www-form-urlencoded"
# What an HL7v2 message or a PDF starts with: both are unusable without their line breaks.
_NEEDS_LINE_BREAKS = (b"MSH|", b"FHS|", b"BHS|", b"%PDF")


def refuse_stripped_line_breaks(body: bytes, content_type: str | None) -> None:
    """400 for the body `curl -d @result.hl7` sends: curl's -d is for form fields, so it
    drops every CR and LF of the file and labels it x-www-form-urlencoded. An HL7v2 message
    is then one segment (its PID and OBX run into MSH) and a PDF is corrupt: accepted, they
    failed later with no hint of the cause. A CDA keeps its meaning without line breaks
    and is taken as sent."""
    kind, _ = _header_value(content_type or "")
    if kind != _FORM_URLENCODED or b"\r" in body or b"\n" in body:
        return
    if body.lstrip()[:4] in _NEEDS_LINE_BREAKS:
        raise UploadError(400, "LINE_BREAKS_STRIPPED",
                          "the body has no line break left, as `curl -d @file` sends a "
                          "file: send it with `curl --data-binary @file` (or -F file=@file)")
