"""Bytes -> the ClinicalDocument element, refusing hostile input before it can do harm.

Why each guard:
- size first (``max_bytes``): nothing is decoded or parsed beyond the limit;
- DTDs are refused *before* parsing by reading the prolog (the declaration, comments and
  processing instructions that may precede the root element): any ``<!DOCTYPE``, ``<!ENTITY``
  or other markup declaration there is CDA_DTD_FORBIDDEN. XXE, billion laughs and external
  DTDs all need one, and CDA never uses one. The tree's docinfo is checked again after the
  parse, for encodings the byte scan cannot read (the parser options below already make that
  parse harmless: no entity expansion, no DTD loading, no network);
- lxml/libxml2 with ``resolve_entities=False, no_network=True, load_dtd=False,
  huge_tree=False`` (the options of normalizers/cda_header.py): libxml2 then also caps the
  nesting at 256 levels and a single text node at 10,000,000 bytes;
- element count (``max_elements``): a document of a million small sibling elements fits
  well under the size limit (24 MB) and cost 420 MB to parse and 1 GB to read; the count is
  estimated from the bytes before parsing, and counted exactly (without building a tree)
  only when the estimate is over the limit;
- depth (``max_depth``): our walkers recurse along the tree, so the nesting is bounded before
  they run. Above 256, libxml2's own cap answers first (huge_tree stays off), so 256 is both
  the default and the effective maximum.
Comments and processing instructions are dropped at parse time (libxml2 merges the text
around them), which keeps narrative text whole and the tree smaller.
"""

from __future__ import annotations

import codecs
import re
from html.entities import name2codepoint
from typing import Any

from lxml import etree

from parsers.cda.errors import (
    CDA_DTD_FORBIDDEN,
    CDA_NOT_CDA,
    CDA_NOT_XML,
    CDA_TOO_DEEP,
    CDA_TOO_LARGE,
    CDA_TOO_MANY_ELEMENTS,
    CdaParseError,
)
from parsers.detect import SOAP_NAMESPACES, SOAP_REFUSED

V3 = "urn:hl7-org:v3"
CDA_ROOT = f"{{{V3}}}ClinicalDocument"
XSL_STYLESHEET = "{http://www.w3.org/1999/XSL/Transform}stylesheet"
CISIS_CONTENT = "{urn:asip-sante:ci-sis}Contenu"

DEFAULT_MAX_BYTES = 50 * 1024 * 1024
DEFAULT_MAX_DEPTH = 256
# The largest public CI-SIS documents hold about 6,000 elements, a cumulative CR-BIO of
# several years some 50,000; 200,000 leaves room and bounds a worker's memory (~250 MB).
DEFAULT_MAX_ELEMENTS = 200_000
ATTRIBUTES_PER_ELEMENT = 5  # real documents hold 2 to 3 per element
LIBXML_MAX_DEPTH = 256  # libxml2's nesting cap without XML_PARSE_HUGE

_PARSER_OPTIONS: dict[str, Any] = {
    "resolve_entities": False,
    "no_network": True,
    "load_dtd": False,
    "huge_tree": False,
    "dtd_validation": False,
    "remove_comments": True,
    "remove_pis": True,
    "collect_ids": False,
}

# The prolog items that may precede the root element: whitespace, <?...?>, <!--...-->.
_PROLOG = re.compile(rb"(?:\s+|<\?.*?\?>|<!--.*?-->)*", re.S)


def hardened_parser() -> etree.XMLParser:
    """A new parser with our options (lxml parsers are not thread-safe: one per parse)."""
    return etree.XMLParser(**_PARSER_OPTIONS)


def read_root(data: bytes, max_bytes: int = DEFAULT_MAX_BYTES,
              max_depth: int = DEFAULT_MAX_DEPTH,
              max_elements: int = DEFAULT_MAX_ELEMENTS) -> tuple[etree._Element, str]:
    """(the ClinicalDocument element, envelope) or CdaParseError.

    ``envelope`` is '' for a plain CDA and 'xsl:stylesheet' for the CI-SIS self-presenting
    form ("document autoprésentable"): an XSL stylesheet whose data:Contenu
    (urn:asip-sante:ci-sis) child holds the ClinicalDocument. The stylesheet is never run."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError("parse_cda expects bytes")
    data = bytes(data)
    if len(data) > max_bytes:
        raise CdaParseError(CDA_TOO_LARGE,
                            f"document of {len(data)} bytes over the limit of {max_bytes}")
    _refuse_dtd(data)
    _refuse_too_many_elements(data, max_elements)
    huge = False
    try:
        root = _parse(data, huge=False)
    except _TextTooLong:
        # A level-1 document whose base64 PDF is over 7.5 MB: one text node over libxml2's
        # 10 MB cap. Parsed again without the cap, which is safe here: no DTD can be in the
        # document (refused above, checked again below), entities are never expanded, the
        # size is bounded by max_bytes, and the nesting is checked by us (the cap on it
        # rises to 2048 with huge trees).
        huge = True
        root = _parse(data, huge=True)
    if root is None:
        raise CdaParseError(CDA_NOT_XML, "no root element")
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise CdaParseError(CDA_DTD_FORBIDDEN, "a DOCTYPE is not allowed in a CDA document")
    if max_depth < LIBXML_MAX_DEPTH or huge:
        _check_depth(root, min(max_depth, LIBXML_MAX_DEPTH))
    return _clinical_document(root)


_BLANKS = b" \t\r\n"


def skip_blanks_before_declaration(data: bytes) -> tuple[bytes, bool]:
    """``data`` without the whitespace some senders leave before the XML declaration (a
    template engine's first line, a file concatenated after a newline; after a UTF-8 BOM
    too), and whether there was any. XML allows nothing before '<?xml': the document was
    refused as CDA_NOT_XML though format detection, which skips it, had called it a CDA.
    UTF-16 with its BOM too (a Windows export writing a line break first): the blanks are
    16-bit units there, and the document was refused the same way."""
    for bom, codec, unit in _WIDE_BOMS:  # UTF-32 first: its LE mark begins as UTF-16's
        if data.startswith(bom):
            return _skip_wide_blanks(data, len(bom), codec, unit)
    start = 3 if data[:3] == codecs.BOM_UTF8 else 0
    end = start
    while end < len(data) and data[end] in _BLANKS:
        end += 1
    if end == start or not data.startswith(b"<?xml", end):
        return data, False
    return data[:start] + data[end:], True


_WIDE_BOMS = ((codecs.BOM_UTF32_LE, "utf-32-le", 4), (codecs.BOM_UTF32_BE, "utf-32-be", 4),
              (codecs.BOM_UTF16_LE, "utf-16-le", 2), (codecs.BOM_UTF16_BE, "utf-16-be", 2))
_FIRST_CHARS = frozenset(b"< \t\r\n")  # what a document may begin with: its prolog


def add_missing_utf16_bom(data: bytes) -> tuple[bytes, bool]:
    """``data`` with the UTF-16 byte order mark a sender left out, and whether it did.
    XML requires the BOM on UTF-16 entities (XML 1.0 section 4.3.3); without it and without
    an XML declaration (a .NET or Java export writing UnicodeEncoding without preamble)
    libxml2 read the bytes as UTF-8 and refused the document ('Char 0x0 out of allowed
    range', 'Document is empty') though format detection had called it a CDA. The byte
    order is the one its first two characters show (XML 1.0 appendix F: '<' or a blank
    beside a NUL; UTF-32 has three NULs and is left alone). Documents that begin with a BOM
    are left as they are; one with '<?xml' declaring UTF-16 read well before and reads the
    same with the mark."""
    head = data[:4]
    if len(head) < 4 or head[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE) or \
            head[:3] == codecs.BOM_UTF8:
        return data, False
    if head[0] in _FIRST_CHARS and not head[1] and head[2] and not head[3]:
        return codecs.BOM_UTF16_LE + data, True
    if not head[0] and head[1] in _FIRST_CHARS and not head[2] and head[3]:
        return codecs.BOM_UTF16_BE + data, True
    return data, False
_BLANK_CHARS = frozenset(" \t\r\n")

# The XML declaration's encoding pseudo-attribute, in an ASCII-compatible document
_DECLARED_ENCODING = re.compile(
    rb"<\?xml[ \t\r\n][^>]*?encoding[ \t\r\n]*=[ \t\r\n]*([\"'])([A-Za-z][A-Za-z0-9._\-]*)\1")
# Python's canonical names of the one-byte character sets senders declare (ISO-8859-x,
# Windows-125x, DOS and Mac code pages, ASCII): every byte is a character in them, so a
# document in UTF-8 reads 'well-formed' under such a label, each accented letter as two.
_ONE_BYTE = re.compile(r"iso8859-\d+|cp125\d|cp437|cp850|cp858|mac-roman|ascii|latin-1")
# The 16 and 32-bit labels (IANA and libxml2 names Python's codecs may not know)
_WIDE_LABELS = frozenset({"UTF-16", "UTF-16LE", "UTF-16BE", "UTF-32", "UTF-32LE", "UTF-32BE",
                          "UCS-2", "UCS-4", "ISO-10646-UCS-2", "ISO-10646-UCS-4", "UNICODE"})


def utf8_under_another_label(data: bytes) -> tuple[bytes, str | None]:
    """``data`` with its XML declaration saying UTF-8, and the label it had, when the
    declaration names a one-byte character set (ISO-8859-1, ISO-8859-15, Windows-1252) or a
    16/32-bit one (UTF-16, UCS-2, UTF-32) but the bytes are UTF-8; ``(data, None)``
    otherwise.

    Why, one-byte: a template kept its header while the engine writing it moved to UTF-8.
    Read under the label, the document was filed without any complaint and every accented
    letter as two characters ('HÃ©lÃ¨ne', 'CholestÃ©rol'): names and texts of the dossier
    corrupted in silence. Non-ASCII bytes that all form valid UTF-8 sequences are not French
    text in a one-byte set (its accented letters are lone bytes over 0x7F, which UTF-8 never
    has), so the bytes say which encoding it is.
    Why, 16/32-bit: .NET's XmlWriter over a StringWriter declares 'utf-16' whatever the
    bytes are later saved in; a declaration readable as single bytes is not in UTF-16, and
    the document was refused as 'Blank needed here'.
    The reverse (a UTF-8 label on ISO-8859-1 bytes) stays refused as CDA_NOT_XML: it cannot
    be told from broken bytes."""
    m = _DECLARED_ENCODING.match(data, 3 if data.startswith(codecs.BOM_UTF8) else 0)
    if m is None:
        return data, None
    label = m.group(2).decode("ascii")
    wide = label.upper().replace("_", "-") in _WIDE_LABELS
    try:
        name = codecs.lookup(label).name
    except LookupError:
        if not wide:
            return data, None
        name = "utf-16"
    wide = wide or name.startswith(("utf-16", "utf-32"))
    if not wide and (data.isascii() or not _ONE_BYTE.fullmatch(name)):
        return data, None
    decoder = codecs.getincrementaldecoder("utf-8")()  # by MB: never a copy of it all
    try:
        for start in range(0, len(data), 1 << 20):
            decoder.decode(data[start:start + (1 << 20)])
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return data, None
    return data[:m.start(2)] + b"UTF-8" + data[m.end(2):], label


def _skip_wide_blanks(data: bytes, start: int, codec: str, unit: int) -> tuple[bytes, bool]:
    """``skip_blanks_before_declaration`` for UTF-16 or UTF-32 (``unit`` bytes a character)
    after its BOM (``start`` bytes). UTF-32 with a line break before '<?xml' was refused
    as CDA_NOT_XML while the same in UTF-16 was read."""
    end = start
    while end + unit - 1 < len(data) and \
            data[end:end + unit].decode(codec, "replace") in _BLANK_CHARS:
        end += unit
    if end == start or not data.startswith("<?xml".encode(codec), end):
        return data, False
    return data[:start] + data[end:], True


def _refuse_too_many_elements(data: bytes, max_elements: int) -> None:
    """CDA_TOO_MANY_ELEMENTS when the document holds more than ``max_elements`` elements or
    more than ATTRIBUTES_PER_ELEMENT times as many attributes (each is a node of the tree
    too: 200,000 elements of 20 attributes fit in 50 MB). The number of '<' not followed by
    '/' bounds the elements, the number of '=' the attributes (both counted in C; in UTF-16
    and UTF-32 they overcount); only when a bound is over its limit are they counted, by a
    parse that builds no tree (huge_tree: a long base64 text node must not end the count
    early; no DTD can be there, refused before)."""
    if len(data) <= max_elements:
        # every count below is at most len(data): under both bounds without a scan (the
        # three passes cost 0.3 ms of CPU for a 130 KB CR-BIO, some 3 % of preparing it)
        return
    max_attributes = max_elements * ATTRIBUTES_PER_ELEMENT
    if data.count(b"<") - data.count(b"</") <= max_elements and \
            data.count(b"=") <= max_attributes:
        return
    counter = _ElementCounter(max_elements, max_attributes)
    parser = etree.XMLParser(target=counter, **{**_PARSER_OPTIONS, "huge_tree": True})
    try:
        etree.fromstring(data, parser)
    except _TooManyElements as exc:
        raise CdaParseError(CDA_TOO_MANY_ELEMENTS, f"more than {exc} in the document",
                            "/ClinicalDocument") from None
    except (etree.XMLSyntaxError, ValueError):
        return  # broken XML: the parse that follows says where


class _TooManyElements(Exception):
    """Internal: the element counter went over its limit (the message says which)."""


class _ElementCounter:
    """An lxml parser target that only counts start tags and attributes (no tree, no text)."""

    def __init__(self, max_elements: int, max_attributes: int) -> None:
        self.max_elements = max_elements
        self.max_attributes = max_attributes
        self.elements = 0
        self.attributes = 0

    def start(self, tag: str, attrib: dict) -> None:  # noqa: ARG002
        self.elements += 1
        self.attributes += len(attrib)
        if self.elements > self.max_elements:
            raise _TooManyElements(f"{self.max_elements} elements")
        if self.attributes > self.max_attributes:
            raise _TooManyElements(f"{self.max_attributes} attributes")

    def close(self) -> None:
        return None


class _TextTooLong(Exception):
    """Internal: libxml2's 10 MB cap on one text node was hit."""


def _parse(data: bytes, *, huge: bool) -> etree._Element:
    parser = etree.XMLParser(**{**_PARSER_OPTIONS, "huge_tree": huge})
    try:
        return etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        error = _syntax_error(exc)
        if not huge and error.code == CDA_TOO_LARGE and _is_text_cap(exc):
            raise _TextTooLong() from None
        raise error from None
    except ValueError as exc:  # lxml refuses some inputs before libxml2 sees them
        raise CdaParseError(CDA_NOT_XML, f"not XML ({type(exc).__name__})") from None


def _is_text_cap(exc: etree.XMLSyntaxError) -> bool:
    """libxml2's wording for a text node over XML_MAX_TEXT_LENGTH ("xmlSAX2Characters:
    huge text node", "Text node too long"), as opposed to its other limits."""
    text = str(exc.msg or exc).lower()
    return "text node" in text or "too long" in text


def _refuse_dtd(data: bytes) -> None:
    """CDA_DTD_FORBIDDEN when the prolog holds a markup declaration (<!DOCTYPE, <!ENTITY...)."""
    head = _ascii_compatible(data)
    if head.startswith(codecs.BOM_UTF8):
        head = head[3:]
    pos = _PROLOG.match(head).end()
    if head.startswith(b"<!", pos) and not head.startswith(b"<!--", pos):
        line = head.count(b"\n", 0, pos) + 1
        raise CdaParseError(CDA_DTD_FORBIDDEN,
                            "DTD markup (DOCTYPE/ENTITY) is not allowed in a CDA document",
                            f"line {line}")


def _ascii_compatible(data: bytes) -> bytes:
    """The bytes as UTF-8 when they are UTF-16/32 (by BOM or by alternating NULs), so that the
    prolog scan reads them; other encodings are ASCII-compatible (or caught after the parse)."""
    for bom, codec in ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
                       (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16")):
        if data.startswith(bom):
            return data.decode(codec, "replace").encode("utf-8")
    head = data[:4]
    if len(head) == 4 and head[0] and not head[1] and not head[3]:  # '<\0?\0', '\n\0<\0'
        return data.decode("utf-16-le", "replace").encode("utf-8")
    if len(head) == 4 and not head[0] and head[1] and not head[2]:
        return data.decode("utf-16-be", "replace").encode("utf-8")
    return data


_ENTITY_REF = re.compile(rb"&([A-Za-z][A-Za-z0-9]{1,31});")
_XML_ENTITIES = frozenset({"amp", "lt", "gt", "quot", "apos"})


def undefined_entity(exc: CdaParseError) -> bool:
    """Whether a parse failed on an entity reference XML does not define."""
    return exc.code == CDA_NOT_XML and "entity '" in exc.message.lower() and \
        "not defined" in exc.message.lower()


def html_entities_as_characters(data: bytes) -> tuple[bytes, list[str]] | None:
    """``data`` with its HTML named entity references ('&nbsp;', '&eacute;': narrative
    generators that write HTML) as the character references XML reads ('&#160;'), and the
    names replaced; None when there is none (or the bytes are no ASCII-compatible encoding).
    XML defines five entities only; the document was refused whole for a no-break space.
    No DTD is read nor allowed for it: the names are HTML 4's fixed list."""
    if data[:2] in (b"\xff\xfe", b"\xfe\xff") or b"\x00" in data[:4]:
        return None
    names: dict[str, None] = {}

    def character(m: re.Match[bytes]) -> bytes:
        name = m.group(1).decode("ascii")
        point = name2codepoint.get(name)
        if point is None or name in _XML_ENTITIES:
            return m.group(0)
        names[name] = None
        return b"&#%d;" % point

    repaired = _ENTITY_REF.sub(character, data)
    return (repaired, list(names)) if names else None


def _syntax_error(exc: etree.XMLSyntaxError) -> CdaParseError:
    """Our code for libxml2's complaint; the message keeps libxml2's wording (element names and
    positions) but drops the bytes it quotes from the input, which could be patient data."""
    text = " ".join(str(exc.msg or exc).split("Bytes:")[0].split(", line ")[0].split())
    text = text[:120] or "XML syntax error"
    line, column = exc.position if exc.position else (exc.lineno or 0, 0)
    location = f"line {line}, column {column}" if line else ""
    lower = text.lower()
    if "excessive depth" in lower:
        return CdaParseError(CDA_TOO_DEEP,
                             f"element nesting over the parser's limit of {LIBXML_MAX_DEPTH}",
                             location)
    if "amplification" in lower or "entity reference loop" in lower:
        # only DTD entities amplify; reached when the prolog scan could not read the encoding
        return CdaParseError(CDA_DTD_FORBIDDEN, f"DTD entities refused: {text}", location)
    if "huge" in lower or "too long" in lower or "exceeds" in lower:
        return CdaParseError(CDA_TOO_LARGE, f"over an XML parser limit: {text}", location)
    if "unsupported encoding" in lower:
        text += ": the XML declaration names an encoding this parser does not know"
    elif "encoding" in lower or "utf-8" in lower:  # libxml2's wordings for undecodable bytes
        text += (": the bytes are not in the character encoding the XML declaration names "
                 "(UTF-8 when it names none)")
    return CdaParseError(CDA_NOT_XML, f"not well-formed XML: {text}", location)


def _check_depth(root: etree._Element, max_depth: int) -> None:
    """One XPath evaluated in C: is there an element at depth max_depth + 1?"""
    found = root.xpath("/*" * (max_depth + 1) + "[1]")
    if found:
        line = found[0].sourceline
        raise CdaParseError(CDA_TOO_DEEP, f"element nesting over {max_depth} levels",
                            f"line {line}" if line else "")


def _clinical_document(root: etree._Element) -> tuple[etree._Element, str]:
    tag = root.tag
    if tag == CDA_ROOT:
        return root, ""
    if tag == XSL_STYLESHEET:
        for child in root:
            if child.tag == CISIS_CONTENT:
                for cda in child:
                    if cda.tag == CDA_ROOT:
                        return cda, "xsl:stylesheet"
        raise CdaParseError(CDA_NOT_CDA, "an XSL stylesheet without a CI-SIS data:Contenu/"
                            "ClinicalDocument inside", "/stylesheet")
    qname = etree.QName(root) if isinstance(tag, str) else None
    name = qname.localname if qname else "?"
    if name == "Envelope" and qname is not None and \
            (qname.namespace or "").encode() in SOAP_NAMESPACES:
        raise CdaParseError(CDA_NOT_CDA, SOAP_REFUSED, "/Envelope")
    if name == "ClinicalDocument":
        ns = qname.namespace if qname else None
        where = f"namespace {ns!r}" if ns else "no namespace"
        raise CdaParseError(CDA_NOT_CDA,
                            f"ClinicalDocument in {where}, expected {V3!r}", "/ClinicalDocument")
    raise CdaParseError(CDA_NOT_CDA, f"root element is {name!r}, not ClinicalDocument",
                        f"/{name}")
