"""What a document's archived file carries, for people to read it: the PDF inside a level-1
CDA (component/nonXMLBody, base64, possibly compressed), decoded by parsers/cda exactly as
processing decodes it. No access decision here: the caller has read the document through
dossiers/access.py (which checks and audits the read) before asking.
"""

from __future__ import annotations

from parsers.cda import CdaParseError, parse_cda
from parsers.detect import PDF, detect_format

PDF_MEDIA_TYPE = "application/pdf"


def embedded_pdf(data: bytes) -> bytes | None:
    """The PDF a level-1 CDA document carries, or None (not a CDA, no PDF body, a body that
    does not decode to a PDF). A PDF is known by its bytes, as processing reads it: one sent
    as application/octet-stream, x-pdf or with no mediaType is shown too."""
    try:
        body = parse_cda(data).non_xml_body
        if body is None:
            return None
        pdf = body.decompressed()
    except CdaParseError:
        return None
    return pdf if pdf and detect_format(pdf) == PDF else None
