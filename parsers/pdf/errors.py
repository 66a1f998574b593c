"""Errors of the PDF parser: a stable code, a message for people, where (``page 3``).

Codes are stable (the import ledger stores and counts them; messages may be reworded). Messages
never contain patient data: no text of the report, no metadata values, only limits, page
numbers, sizes and the names of the libraries that refused the file.
"""

from __future__ import annotations

# -- error codes (the PDF cannot be read) -----------------------------------------------------
PDF_NOT_PDF = "PDF_NOT_PDF"  # no '%PDF-' header in the first 1024 bytes
PDF_ENCRYPTED = "PDF_ENCRYPTED"  # needs a password to open: refused, no password is tried
PDF_CORRUPT = "PDF_CORRUPT"  # pdfium or pdfminer cannot read it (broken xref, truncated...)
PDF_TOO_LARGE = "PDF_TOO_LARGE"  # more bytes than PdfLimits.max_bytes
PDF_TOO_MANY_PAGES = "PDF_TOO_MANY_PAGES"  # more pages than PdfLimits.max_pages
PDF_PAGE_TOO_LARGE = "PDF_PAGE_TOO_LARGE"  # page to OCR whose raster would exceed max pixels
PDF_TIMEOUT = "PDF_TIMEOUT"  # document time limit exceeded, or a page's OCR killed
PDF_OCR_UNAVAILABLE = "PDF_OCR_UNAVAILABLE"  # tesseract binary or its language data missing

ERROR_CODES = frozenset({PDF_NOT_PDF, PDF_ENCRYPTED, PDF_CORRUPT, PDF_TOO_LARGE,
                         PDF_TOO_MANY_PAGES, PDF_PAGE_TOO_LARGE, PDF_TIMEOUT,
                         PDF_OCR_UNAVAILABLE})

# -- warning codes (PdfDocument.warnings: 'CODE: text'; the document was read) ----------------
PDF_OCR_LOW_CONFIDENCE = "PDF_OCR_LOW_CONFIDENCE"  # an OCR'd page's mean confidence < 60
PDF_PAGE_EMPTY = "PDF_PAGE_EMPTY"  # no text at all on a page, even after OCR (blank page)
PDF_TEXT_LAYER_UNREADABLE = "PDF_TEXT_LAYER_UNREADABLE"  # pdfminer failed on a page: OCR'd
# a text layer giving no text for too many glyphs (unmapped '(cid:N)', private-use codes): OCR'd
PDF_TEXT_LAYER_GARBLED = "PDF_TEXT_LAYER_GARBLED"
PDF_ATTACHMENTS = "PDF_ATTACHMENTS"  # files embedded in the PDF that are no CDA: not read


class PdfParseError(ValueError):
    """A PDF that cannot be read.

    ``code`` is one of ERROR_CODES; ``message`` is for humans and holds no patient data;
    ``location`` is 'page N' (1-based) when one page is the cause, '' for the whole document.
    ``str(exc)`` is the message alone, as for the HL7v2 and CDA parse errors."""

    def __init__(self, code: str, message: str, location: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.location = location

    def __reduce__(self):  # picklable across worker processes
        return (type(self), (self.code, self.message, self.location))
