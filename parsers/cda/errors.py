"""Parse errors and warnings that say where: an XPath-like path, or a line when the XML is broken.

Why stable codes: the import ledger stores ``code`` and admins filter and count failures by it;
messages may be reworded, codes may not. Messages never contain patient data (no names,
identifiers, values): only element names, limits, positions and the codes of the standard.
"""

from __future__ import annotations

from dataclasses import dataclass

# -- error codes (the document cannot be read) ------------------------------------------------
CDA_NOT_XML = "CDA_NOT_XML"  # not well-formed XML (location: 'line L, column C')
CDA_NOT_CDA = "CDA_NOT_CDA"  # root is not {urn:hl7-org:v3}ClinicalDocument
CDA_DTD_FORBIDDEN = "CDA_DTD_FORBIDDEN"  # DOCTYPE / ENTITY / other DTD markup: refused
CDA_TOO_LARGE = "CDA_TOO_LARGE"  # over max_bytes, or a text node over the XML parser's limit
CDA_TOO_DEEP = "CDA_TOO_DEEP"  # element nesting over max_depth
CDA_TOO_MANY_ELEMENTS = "CDA_TOO_MANY_ELEMENTS"  # more elements than max_elements
CDA_BAD_BASE64 = "CDA_BAD_BASE64"  # nonXMLBody B64 content that does not decode
CDA_BAD_COMPRESSION = "CDA_BAD_COMPRESSION"  # NonXmlBody.decompressed() on a broken stream

ERROR_CODES = frozenset({CDA_NOT_XML, CDA_NOT_CDA, CDA_DTD_FORBIDDEN, CDA_TOO_LARGE,
                         CDA_TOO_DEEP, CDA_TOO_MANY_ELEMENTS, CDA_BAD_BASE64,
                         CDA_BAD_COMPRESSION})

# -- warning codes (the document was read; something is odd) ----------------------------------
CDA_NO_BODY = "CDA_NO_BODY"  # no structuredBody nor nonXMLBody: an empty document, not an error
CDA_B64_PADDING = "CDA_B64_PADDING"  # base64 without its '=' padding, decoded anyway
CDA_UNKNOWN_XSI_TYPE = "CDA_UNKNOWN_XSI_TYPE"  # xsi:type we do not model: kept as AnyValue
CDA_XSI_TYPE_NAMESPACE = "CDA_XSI_TYPE_NAMESPACE"  # xsi:type prefix not bound to urn:hl7-org:v3
CDA_XSI_TYPE_CASE = "CDA_XSI_TYPE_CASE"  # xsi:type in the wrong case ('pq'): read as
# the upper-case type it names
CDA_UNKNOWN_ENTRY = "CDA_UNKNOWN_ENTRY"  # entry/component child that is no clinical statement
CDA_SEVERAL_STATEMENTS = "CDA_SEVERAL_STATEMENTS"  # an entry (or entryRelationship) holding
# several statements: each kept
CDA_BLANKS_BEFORE_DECLARATION = "CDA_BLANKS_BEFORE_DECLARATION"  # whitespace before <?xml
# (not well-formed XML; template engines and file concatenation leave it): skipped
CDA_UTF16_WITHOUT_BOM = "CDA_UTF16_WITHOUT_BOM"  # UTF-16 without its byte order mark (XML
# requires it): read in the byte order its first characters show
CDA_ENCODING_MISMATCH = "CDA_ENCODING_MISMATCH"  # the XML declaration names a one-byte
# (ISO-8859-1...) or 16/32-bit (UTF-16...) encoding but the bytes are UTF-8: read as UTF-8
CDA_HTML_ENTITY = "CDA_HTML_ENTITY"  # HTML named entities XML does not define ('&nbsp;',
# '&eacute;': narrative generators writing HTML): read as the characters they name


class CdaParseError(ValueError):
    """A CDA document that cannot be read.

    ``code`` is stable (ledger error code, one of ERROR_CODES); the message is for humans and
    never contains patient data; ``location`` is an XPath-like path
    (``/ClinicalDocument/component/structuredBody/component[3]/section``) or, when the XML
    itself is broken, ``line L, column C``; '' when it concerns the whole input. ``str(exc)``
    is the message alone, as for HL7ParseError (the ledger stores code and location apart)."""

    def __init__(self, code: str, message: str, location: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.location = location

    def __reduce__(self):  # picklable across worker processes
        return (type(self), (self.code, self.message, self.location))


@dataclass(frozen=True, slots=True)
class ParseWarning:
    """Something odd in a document that was read anyway (same rules as CdaParseError: stable
    code, no patient data in the message)."""

    code: str
    message: str
    location: str = ""
