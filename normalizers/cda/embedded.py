"""Level-1 bodies (nonXMLBody): the media type of what they embed and its bytes or text."""

from __future__ import annotations

from parsers.cda.errors import CdaParseError
from parsers.cda.model import NonXmlBody


def scanned_image_types() -> frozenset[str]:
    """The image formats a scanned page is read from (normalizers/documents.py's list)."""
    from normalizers.documents import IMAGE_MEDIA_TYPES

    return IMAGE_MEDIA_TYPES


def shown_image_type(content: bytes | None, media_type: str) -> str | None:
    """The scanned-image type a level-1 body's bytes show (tables/ed_signatures.csv), when
    they show one; None for any other content."""
    if not content:
        return None
    from normalizers.documents import sniff_media_type

    shown = sniff_media_type(content)
    return shown if shown in scanned_image_types() else None


def body_media_type(body: NonXmlBody) -> str:
    """A level-1 body's media type without its parameters ('application/pdf; name=cr.pdf'),
    lower case; the ED default (text/plain) when none is said."""
    return body.media_type.split(";", 1)[0].strip().lower() or "text/plain"


def body_text(content: bytes, body: NonXmlBody, warnings: list[str]) -> str:
    """The words of a base64 text body in its ED ``charset`` (IANA name), else UTF-8; bytes
    that are not UTF-8 are read as Windows-1252 (what French senders' software writes when
    it says nothing), with a warning: they were decoded as UTF-8 with U+FFFD for every
    accented letter ('�chographie')."""
    charset = body.charset.strip()
    if charset:
        try:
            return content.decode(charset)
        except (LookupError, UnicodeDecodeError):
            warnings.append(f"CDA_BODY_CHARSET: {body.path}: the text body is not in the "
                            f"charset it says ({charset[:40]!r})")
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError:
        if not charset:
            warnings.append(f"CDA_BODY_CHARSET: {body.path}: text body not in UTF-8 and no "
                            "charset said: read as Windows-1252")
        return content.decode("cp1252", "replace")


def body_bytes(body: NonXmlBody, warnings: list[str]) -> bytes | None:
    """The content of a level-1 body as the sender meant it: base64-decoded by the parser,
    then inflated when the ED says ``compression`` (DF deflate, GZ gzip, ZL zlib: the ED
    data type of CDA R2; the PDF of a 'DF' body was handed to the PDF reader still deflated,
    and lost). A stream that does not inflate, or an external ``reference`` (never fetched),
    leaves the document filed without a report and says so."""
    if body.data is None:
        if body.reference:
            warnings.append(f"CDA_EXTERNAL_BODY: {body.path}: the nonXMLBody content is a "
                            "reference to an external file, not fetched")
        return None
    try:
        return body.decompressed()
    except CdaParseError as exc:
        warnings.append(f"{exc.code}: {exc.location}: {exc.message}; the document is filed "
                        "without its report entry")
        return None
