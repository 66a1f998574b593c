"""A MIME package carried in an ED (HL7 v2.5 table 0191 'multipart': MIME multipart package).

The CDA R2 standard (3.3, 'CDA document exchange in HL7 V2 messages') sends a CDA in an OBX
as ``^multipart^-hl7-cda-level-one^A^MIME-Version: 1.0\\X0D0A\\Content-Type: multipart/...``:
the data is a MIME package whose first body part is the CDA (its own Content-Transfer-Encoding,
base64 usually), the next ones the files it references. Engines that wrap a document for
mail do the same with one part ('Content-Type: application/pdf', then base64), whatever ED.4
says. Read as it stood, the package was filed as an opaque document (application/
octet-stream): the CDA never read, its id, confidentiality and patient never checked.

Here only the package is opened (the standard library's email parser, which never raises on
a malformed package); which part is the document is said by ``mime_body``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email import message_from_bytes, policy

# A MIME entity starts with its headers: MIME-Version or Content-Type first (RFC 2045), then
# a blank line before its body.
_MIME_HEAD = re.compile(rb"\s*(?:MIME-Version|Content-Type)[ \t]*:[^\r\n]*\r?\n",
                        re.IGNORECASE)
_BLANK_LINE = re.compile(rb"\r?\n\r?\n")
_XML = re.compile(r"(?:text|application)/(?:[\w.+-]*\+)?xml|application/x-hl7-cda[\w.+-]*")


@dataclass(slots=True)
class MimeBody:
    """The part of a MIME package that is the document, decoded."""

    data: bytes
    media_type: str  # its Content-Type, lower case, no parameters
    others: int  # the package's other parts (the document's attachments), not filed apart


def is_mime(data: bytes) -> bool:
    """Whether ``data`` is a MIME entity: a MIME-Version or Content-Type header first, and a
    blank line after the headers."""
    head = data[:4096]
    return _MIME_HEAD.match(head) is not None and _BLANK_LINE.search(head) is not None


def mime_body(data: bytes) -> MimeBody | None:
    """The document of a MIME package: its first XML part (the CDA, CDA R2 3.3), else its
    first part, decoded by its own Content-Transfer-Encoding. None when the package has no
    part with a body (a multipart whose boundary never comes, empty parts)."""
    package = message_from_bytes(data, policy=policy.compat32)
    parts = [p for p in package.walk()
             if not p.is_multipart() and p.get_content_maintype() != "multipart"]
    parts = [p for p in parts if p.get_payload(decode=True)]
    if not parts:
        return None
    root = next((p for p in parts if _XML.fullmatch(p.get_content_type())), parts[0])
    return MimeBody(data=root.get_payload(decode=True), media_type=root.get_content_type(),
                    others=len(parts) - 1)
