"""Which parser a received input goes to, decided from its content, never from its name.

Drop folders and S3 buckets are full of '.txt' HL7 and '.dat' PDFs; MLLP has no names at all.
Only the head of the input is read (a few KB), with byte comparisons and one regex: this runs on
every input before anything is known about it.
"""

from __future__ import annotations

import codecs
import re

from parsers.hl7v2.header import TAB_SEPARATOR

HL7V2 = "hl7v2"
CDA = "cda"
PDF = "pdf"
UNKNOWN = "unknown"
XML = "xml"  # ``bare_document`` only: XML that is no CDA

CDA_NAMESPACE = b"urn:hl7-org:v3"
_HEAD = 8192  # the XML prolog (declaration, stylesheet, comments) fits; the body is not read
_SKIP = b" \t\r\n\x0b\x0c\x00"  # whitespace, MLLP start block, NUL padding
_HL7_STARTS = (b"MSH", b"FHS", b"BHS")
# Any segment line ('PID|...'): HL7v2 that lost its header, which the HL7 parser reports as
# HL7_NO_MSH; far more useful to the sender than 'unknown format'.
_SEGMENT_LINE = re.compile(rb"[A-Z][A-Z0-9]{2}\|")
# Prolog items before the root element: declaration/PIs, comments, DOCTYPE (internal subset
# included), whitespace.
_PROLOG = re.compile(
    rb"(?:\s+|<\?.*?\?>|<!--.*?-->|<!DOCTYPE(?:[^\[>]|\[.*?\])*>)*", re.S | re.I)
# <prefix:name attributes... (the '>' may lie beyond the head: it is not required)
_ROOT = re.compile(
    rb"<(?:([A-Za-z_][\w.\-]*):)?([A-Za-z_][\w.\-]*)((?:[^>\"']|\"[^\"]*\"|'[^']*')*)")
_XMLNS = re.compile(rb"\bxmlns(?::([\w.\-]+))?\s*=\s*(?:\"([^\"]*)\"|'([^']*)')")


def detect_format(data: bytes) -> str:
    """'hl7v2', 'cda', 'pdf' or 'unknown' from the first bytes of ``data``.

    HL7v2: starts with MSH (in any case: the parser reads an 'msh' header with a warning),
    FHS or BHS followed by a field separator (or with another segment line, a message
    without its header). PDF: '%PDF-' at the
    start (or within the first 1024 bytes, where readers also accept it). CDA: XML whose root
    element is ClinicalDocument in the urn:hl7-org:v3 namespace; any other XML is 'unknown'
    (a CDA without its namespace is not a CDA for the CDA parser either)."""
    head = _text_head(data)
    if (head[:3] in _HL7_STARTS or head[:3].upper() == b"MSH") and len(head) > 3 \
            and not head[3:4].isalnum() and head[3:4] not in b" \t\r\n":
        return HL7V2
    if head.startswith(b"%PDF-"):
        return PDF
    if head.startswith(b"<"):
        return CDA if _is_cda(head) else UNKNOWN
    if b"%PDF-" in data[:1024]:
        return PDF
    if _SEGMENT_LINE.match(head):
        return HL7V2
    return UNKNOWN


def bare_document(data: bytes) -> str | None:
    """'cda', 'pdf' or 'xml' when ``data`` is a document on its own rather than an HL7v2
    message: '%PDF-' at the start (after a BOM or blanks, in UTF-16/32 too), a
    ClinicalDocument root ('cda' without its namespace too: its sender meant a CDA, which
    the CDA parser then tells it), or any other XML opening with its declaration; None
    otherwise. For a channel that carries HL7v2 only (MLLP), whose sender is to be told what
    it sent rather than that the HL7 is broken."""
    head = _text_head(data)
    if head.startswith(b"%PDF-"):
        return PDF
    if not head.startswith(b"<"):
        return None
    m = _ROOT.match(head, _PROLOG.match(head).end())
    if m is not None and m.group(2) == b"ClinicalDocument":
        return CDA
    return XML if head.startswith(b"<?xml") else None


def xml_root(data: bytes) -> str:
    """The root element's local name of the XML ``data`` (40 characters at most), '' when
    none is found in its head: an element name, never content, to say what was sent."""
    head = _text_head(data)
    m = _ROOT.match(head, _PROLOG.match(head).end())
    return m.group(2).decode("ascii", "replace")[:40] if m else ""


def _text_head(data: bytes) -> bytes:
    """The first KB without BOM and leading whitespace; UTF-16 and UTF-32 re-encoded as UTF-8
    so that the byte patterns apply (XML is legitimately sent in either: XML 1.0 appendix F;
    a UTF-32 CDA, which the CDA parser reads, was 'binary content' of unknown format)."""
    head = data[:_HEAD]
    if head.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):  # before UTF-16: FF FE 00 00
        head = head[: len(head) // 4 * 4].decode("utf-32", "replace").encode("utf-8")
    elif head[:8] in (b"<\x00\x00\x00?\x00\x00\x00", b"<\x00\x00\x00C\x00\x00\x00"):
        head = head[: len(head) // 4 * 4].decode("utf-32-le", "replace").encode("utf-8")
    elif head[:8] in (b"\x00\x00\x00<\x00\x00\x00?", b"\x00\x00\x00<\x00\x00\x00C"):
        head = head[: len(head) // 4 * 4].decode("utf-32-be", "replace").encode("utf-8")
    elif head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        head = head[: len(head) // 2 * 2].decode("utf-16", "replace").encode("utf-8")
    elif head[:4] in (b"<\x00?\x00", b"<\x00C\x00", b"M\x00S\x00"):
        head = head[: len(head) // 2 * 2].decode("utf-16-le", "replace").encode("utf-8")
    elif head[:4] in (b"\x00<\x00?", b"\x00<\x00C", b"\x00M\x00S"):
        head = head[: len(head) // 2 * 2].decode("utf-16-be", "replace").encode("utf-8")
    if head.startswith(codecs.BOM_UTF8):
        head = head[3:]
    return head.lstrip(_SKIP)


def _is_cda(head: bytes) -> bool:
    """Root element is {urn:hl7-org:v3}ClinicalDocument (prefixed or default namespace)."""
    pos = _PROLOG.match(head).end()
    m = _ROOT.match(head, pos)
    if not m or m.group(2) != b"ClinicalDocument":
        return False
    prefix = m.group(1) or b""
    for ns in _XMLNS.finditer(m.group(3)):
        if (ns.group(1) or b"") == prefix:
            return (ns.group(2) if ns.group(2) is not None else ns.group(3)) == CDA_NAMESPACE
    return False


UNKNOWN_FORMAT = "UNKNOWN_FORMAT"
XDM_NOT_UNPACKED = "XDM_NOT_UNPACKED"
SOAP_NAMESPACES = frozenset({b"http://www.w3.org/2003/05/soap-envelope",
                             b"http://schemas.xmlsoap.org/soap/envelope/"})
# A CDA in a SOAP body is no transport of CI-SIS or IHE (ITI-41 sends it base64 or MTOM with
# its XDS metadata): the envelope's headers and operation would be ignored, so it is refused
# with what to send instead (here for the detector, in parsers/cda/reader.py for the parser).
SOAP_REFUSED = ("a SOAP envelope (a web-service call such as IHE ITI-41): envelopes are not "
                "unwrapped, send the CDA document it carries as a file of its own")
_NEITHER = "neither HL7v2 (MSH, FHS or BHS at the start), CDA (ClinicalDocument) nor PDF (%PDF-)"


def _is_xdm(data: bytes) -> bool:
    """A ZIP holding an IHE_XDM folder (IHE ITI TF-3 4.2.1.1), seen from the names of its
    first local header and its central directory (at the end), never inflating anything."""
    return b"IHE_XDM/" in data[:_HEAD] or b"IHE_XDM/" in data[-65536:]


def unknown_reason(data: bytes) -> tuple[str, str, str]:
    """(code, text, location) for an input ``detect_format`` calls 'unknown': what it looks
    like (empty, an HTML page, an archive, XML of another kind, text, binary), for the sender
    to recognise what their system sent; never a byte of the content itself, only element
    names. XML whose root is no CDA is CDA_NOT_CDA, as the CDA parser says of it."""
    if not data:
        return UNKNOWN_FORMAT, "the input is empty (0 bytes)", ""
    head = _text_head(data)
    if not head.strip(_SKIP):
        return UNKNOWN_FORMAT, f"the input holds only blanks ({len(data)} bytes)", ""
    if head.startswith(b"MSH\t"):  # a tab-separated export: parsers/hl7v2/header.py
        return TAB_SEPARATOR
    if head.startswith(b"<"):
        m = _ROOT.match(head, _PROLOG.match(head).end())
        name = m.group(2).decode("ascii", "replace")[:40] if m else ""
        if name.lower() == "html" or head[:15].lower().startswith(b"<!doctype html"):
            return (UNKNOWN_FORMAT, "an HTML page (a web server's error or login page saved "
                    f"in place of the file?): {_NEITHER}", "")
        if name == "ClinicalDocument":
            prefix = m.group(1) or b""
            ns = next(((n.group(2) if n.group(2) is not None else n.group(3))
                       for n in _XMLNS.finditer(m.group(3)) if (n.group(1) or b"") == prefix),
                      None)
            where = f"namespace {ns.decode('utf-8', 'replace')[:60]!r}" if ns else \
                "no namespace"
            return ("CDA_NOT_CDA", f"ClinicalDocument in {where}, expected "
                    f"{CDA_NAMESPACE.decode()!r} (xmlns=\"urn:hl7-org:v3\" on the root)",
                    "/ClinicalDocument")
        if name == "Envelope" and any((n.group(2) or n.group(3) or b"") in SOAP_NAMESPACES
                                      for n in _XMLNS.finditer(m.group(3))):
            return "CDA_NOT_CDA", SOAP_REFUSED, "/Envelope"
        if name:
            return ("CDA_NOT_CDA", f"XML whose root element is {name!r}, not a CDA "
                    "ClinicalDocument", f"/{name}")
    if head.startswith(b"PK\x03\x04") and _is_xdm(data):
        return (XDM_NOT_UNPACKED, "an IHE XDM package (a ZIP with an IHE_XDM folder and its "
                "METADATA.XML, the DMP's media exchange): packages are not unpacked here, send "
                "the CDA documents of its IHE_XDM/SUBSET folders one by one", "IHE_XDM/")
    if head.startswith(b"PK\x03\x04"):
        return (UNKNOWN_FORMAT, "a ZIP archive: archives are not unpacked, send the files "
                "it holds one by one", "")
    if head.startswith(b"\x1f\x8b"):
        return (UNKNOWN_FORMAT, "a gzip-compressed file: compressed files are not "
                "unpacked, send it uncompressed", "")
    sample = head[:512]
    text = sum(32 <= b < 127 or b in b"\t\r\n" or b >= 0xC0 for b in sample) > len(sample) * 0.9
    return UNKNOWN_FORMAT, f"{'text' if text else 'binary content'} that is {_NEITHER}", ""
