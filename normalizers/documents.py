"""Documents carried in HL7v2 (CI-SIS "transmission de documents CDA en HL7v2", MDM and ED).

A document travels in an OBX of type ED (``^TEXT^XML^Base64^...`` in ORU, ``^text^XML^...`` in
MDM). It becomes one DOCUMENT entry keyed by the CDA ClinicalDocument/id when the payload is a
CDA document, else by the message's own document id (TXA-12 in MDM; the order number and OBX
sub-id in ORU). The MetaDMPMSS OBX that follow carry the DMP/MSSanté flags: Y/N flags become
``Entry.masking`` of every document of the message, texts (mail bodies) go to ``details``.

The action comes from three places that CI-SIS requires to agree: the trigger (MDM T02 new,
T10 replace, T04 delete), ORC-1 (NW, RO, CA) and OBX-11 (F, C, D). A disagreement rejects the
message (CISIS_ACTION_MISMATCH). Real senders (the ANS examples of v2.0) send ORC-1 = 'SC'
whatever the action: that ORC-1 says nothing, so it is accepted with a warning.
"""

from __future__ import annotations

import base64
import binascii
import re
from codecs import BOM_UTF16_BE, BOM_UTF16_LE
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from normalizers.adt import feeding_refused
from normalizers.cda_header import (
    CdaHeader,
    confidentiality_masking,
    looks_like_xml,
    read_cda_header,
)
from normalizers.codes import (
    LOINC,
    CodeMappings,
    is_loinc,
    is_loinc_system,
    loinc_check_fails,
    resolve_code,
)
from normalizers.dates import hl7_ts_to_iso
from normalizers.death import feeding_pid_death
from normalizers.ed_mime import is_mime, mime_body
from normalizers.fields import (
    comps,
    first_rep,
    id_code,
    loc,
    logical_id,
    part,
    person_name,
    reps,
    sub,
    text,
    ts_field,
    unescaped,
)
from normalizers.identity import authority_of, extract_identity, scoped_authority, single_pid
from normalizers.model import (
    ACTION_DELETE,
    ACTION_NEW,
    ACTION_REPLACE,
    DOCUMENT,
    DOCUMENT_STATUS_DETAIL,
    LAB_RESULT,
    STATUS_CHANGE_DETAIL,
    STATUS_CONTENT_DETAIL,
    Attachment,
    Entry,
    HeldBack,
    NormalizationError,
    NormalizedMessage,
    NotificationOnlyError,
    PatientIdentity,
)
from normalizers.nir import ins_kind
from normalizers.tabledata import column_map, table
from parsers.hl7v2.er7 import Message, Segment

META_SYSTEM = "MetaDMPMSS"
_META_SYSTEM_U = META_SYSTEM.upper()  # compared in upper case: 'metadmpmss', 'METADMPMSS' sent
MAIL_PREFIX = "XDM/"  # LPS MSSanté: OBX-3.2 'XDM/1.0/DDM+<mail subject>', OBX-5 the mail body
CISIS_PROFILE_MARK = "CISIS"
OCTET_STREAM = "application/octet-stream"
PATIENT_MISMATCH = "CISIS_PATIENT_MISMATCH"
_WS = str.maketrans("", "", " \t\r\n")

# What an OBX is, for the normalizers
OBX_RESULT = "result"
OBX_DOCUMENT = "document"
OBX_META = "meta"
OBX_MAIL = "mail"
OBX_PIECE = "piece"  # the data of a document cut over several OBX (``continuations``)


# -- tables ---------------------------------------------------------------------------------
@cache
def _meta_codes() -> dict[str, tuple[str, str]]:
    """Upper-case code -> (canonical flag name, kind): a sender's 'masque_ps' is MASQUE_PS
    (kept as sent, the flag was stored under a name nothing reads, and the document shown)."""
    return {row["code"].upper(): (row["name"], row["kind"]) for row in table("metadmpmss")}


@cache
def _on_conflict() -> dict[str, str]:
    """Canonical flag name -> the value kept when it is sent twice, Y and N
    (tables/metadmpmss.csv)."""
    return {row["name"]: row["on_conflict"] for row in table("metadmpmss")
            if row["on_conflict"]}


@cache
def _refusals() -> dict[str, bool]:
    """Canonical flag name -> the value that says the message is not for the dossier at all
    (tables/metadmpmss.csv, refuse_when: DESTDMP=N)."""
    return {row["name"]: row["refuse_when"] == "Y" for row in table("metadmpmss")
            if row["refuse_when"]}


@cache
def _flag_values() -> dict[str, tuple[bool, bool]]:
    """Upper-case OBX-5 value -> (flag set, value of HL7 table 0136), tables/
    metadmpmss_values.csv."""
    return {row["value"].upper(): (row["flag"] == "true", row["standard"] == "yes")
            for row in table("metadmpmss_values")}


@cache
def _actions() -> dict[tuple[str, str], str]:
    return {(row["field"], row["code"]): row["action"] for row in table("cisis_actions")}


@cache
def ed_encodings() -> dict[str, str]:
    """ED.4 in upper case -> 'base64', 'hex' or 'text' (tables/ed_encodings.csv)."""
    return {row["code"].upper(): row["encoding"] for row in table("ed_encodings")}


@cache
def _media_types() -> dict[tuple[str, str], str]:
    return {(row["component"], row["code"]): row["media_type"] for row in table("ed_media_types")}


@cache
def _obx_statuses() -> dict[str, tuple[str, str]]:
    return {row["code"]: (row["status"], row["action"]) for row in table("result_status")}


def obx_status(code: str) -> tuple[str, str]:
    """(entry status, action) for an OBX-11 code, from tables/result_status.csv;
    ('unknown', 'new') for a code the table does not know."""
    return _obx_statuses().get(code, ("unknown", ACTION_NEW))


# -- classification -------------------------------------------------------------------------
def is_cisis(msg: Message) -> bool:
    """MSH-21 names a CI-SIS profile (e.g. '2.1^CISIS_CDA_HL7_V2', '1.0^CISIS_CDA_HL7_LPS')."""
    return any(CISIS_PROFILE_MARK in rep.upper() for rep in reps(msg, msg.msh, 21))


def meta_name(msg: Message, obx: Segment) -> tuple[str, str] | None:
    """(canonical flag name, kind) when the OBX is a MetaDMPMSS flag, else None.

    Recognised by OBX-3.3 = 'MetaDMPMSS', or, for the v1.x guides that sent no coding system,
    by a code from tables/metadmpmss.csv with an empty OBX-3.3; code and system in any case
    (a 'metadmpmss' system was filed as a lab result and masked nothing). The code may be in
    OBX-3's alternate triplet (``meta_triplet``).
    """
    code, system, _ = meta_triplet(msg, obx)
    hit = _meta_codes().get(code.upper())
    if system.upper() == _META_SYSTEM_U:
        return hit or (code, "flag")
    if not system and hit is not None:
        return hit
    return None


def meta_triplet(msg: Message, obx: Segment) -> tuple[str, str, bool]:
    """(code, coding system, from the alternate triplet) of OBX-3 as a MetaDMPMSS flag reads
    it: the first triplet, or the alternate one (OBX-3.4 to 3.6) when it is the one under
    MetaDMPMSS or the first is empty. Engines that map codes send the sender's local code
    first and the standard one as the alternate ('MSQ^Masqué PS^L^MASQUE_PS^Masqué aux
    professionnels de Santé^MetaDMPMSS', '^^^MASQUE_PS^...^MetaDMPMSS'): such a flag was
    filed as a lab result, and the document it masks was shown to every professional."""
    c = comps(msg, first_rep(msg, obx, 3))
    code, system = sub(msg, part(c, 1), 1).strip(), sub(msg, part(c, 3), 1).strip()
    alt_code, alt_system = sub(msg, part(c, 4), 1).strip(), sub(msg, part(c, 6), 1).strip()
    if alt_code and system.upper() != _META_SYSTEM_U \
            and (alt_system.upper() == _META_SYSTEM_U or not code):
        return alt_code, alt_system, True
    return code, system, False


def classify_obx(msg: Message, obx: Segment) -> str:
    """OBX_META, OBX_MAIL, OBX_DOCUMENT (type ED) or OBX_RESULT. Runs for every OBX: the
    common case (a result) is decided on raw text without splitting anything."""
    f = obx.fields
    raw3 = (f[3] if len(f) > 3 else "").upper()
    first = raw3.split(msg.delimiters.component, 1)[0].strip()
    if (_META_SYSTEM_U in raw3 or first in _meta_codes()
            or not first and msg.delimiters.component in raw3) \
            and meta_name(msg, obx) is not None:
        return OBX_META
    vtype = f[2] if len(f) > 2 else ""
    if vtype != "ED" and vtype.strip().upper() != "ED" \
            and (vtype.strip() or not untyped_ed(msg, obx)):
        return OBX_RESULT
    display = sub(msg, part(comps(msg, first_rep(msg, obx, 3)), 2), 1)
    return OBX_MAIL if display.startswith(MAIL_PREFIX) else OBX_DOCUMENT


def untyped_ed(msg: Message, obx: Segment) -> bool:
    """An OBX-5 with an ED's shape (``^application^pdf^Base64^JVBERi0...``: ED.4 an encoding,
    ED.5 data) under an OBX-2 left empty. OBX-2 is required when OBX-5 is valued; senders that
    leave it out send their PDF all the same, and it was filed as a result whose text was the
    base64 of the report, the report itself nowhere. Read as the ED it is (warned about by
    ``document_entry``: ``UNTYPED_ED_WARNING``)."""
    f = obx.fields
    raw5 = f[5] if len(f) > 5 else ""
    d = msg.delimiters
    if d.component not in raw5:
        return False
    c = raw5.split(d.repetition, 1)[0].split(d.component)
    return len(c) >= 5 and c[3].strip().upper() in ed_encodings() and bool(c[4].strip())


UNTYPED_ED_WARNING = ("no value type, value with an ED's shape (type of data, encoding, "
                      "data) read as ED: a document")


# -- ED payloads ----------------------------------------------------------------------------
# 'data:application/pdf;base64,' before the data: what engines that also speak FHIR or the
# web write (a data: URI, RFC 2397). Its own media type is not needed: the content shows it.
_DATA_URI = re.compile(r"\s*data:[^,;]*(?:;[^,;]*)*;base64,", re.IGNORECASE)
_URL_SAFE = str.maketrans("-_", "+/")


def b64decode_lenient(data: str) -> tuple[bytes, str | None]:
    """Base64 with the faults real senders make repaired (missing '=' padding, a dangling last
    character, line breaks, a data: URI prefix, the URL-safe alphabet of RFC 4648 section 5).
    Returns (bytes, note about the repair or None). Raises ValueError on characters outside
    the base64 alphabet, or both alphabets mixed."""
    notes = []
    prefix = _DATA_URI.match(data)
    if prefix is not None:
        data = data[prefix.end():]
        notes.append("data: URI prefix removed")
    s = data.translate(_WS)
    if ("-" in s or "_" in s) and not ("+" in s or "/" in s):
        s = s.translate(_URL_SAFE)  # '-' and '_' are in no other alphabet: no misreading
        notes.append("URL-safe base64 alphabet read")
    stripped = s.rstrip("=")
    if "=" in stripped and (runs := _padded_runs(s)) is not None:
        notes.append(f"base64 padding inside the data: read as {len(runs)} pieces encoded "
                     "apart")
        *whole, (last, note) = [b64decode_lenient(r) for r in runs]
        return b"".join([*(d for d, _ in whole), last]), "; ".join([*notes, *filter(None, [note])])
    dangling = len(stripped) % 4 == 1
    if dangling:
        stripped = stripped[:-1]
        notes.append("base64 data truncated: dangling last character dropped")
    rebuilt = stripped + "=" * (-len(stripped) % 4)
    if not dangling and rebuilt != s:
        notes.append("base64 padding repaired")
    return base64.b64decode(rebuilt, validate=True), "; ".join(notes) or None


_PADDED_RUN = re.compile(r"[^=]+=*")


def _padded_runs(s: str) -> list[str] | None:
    """The runs of base64 text ``s`` (no blanks) that end with '=' padding, when padding
    comes before the end: a document cut in pieces that were base64-encoded one by one, then
    joined (in one OBX-5, over its repetitions or over several OBX), as engines that cap a
    field's length and encode each piece do. Each run but the last is then a whole base64
    text (a multiple of 4 characters); the data was refused as not base64 (ED_BAD_BASE64).
    None when a run is not (padding in the middle of a quantum: no base64 at all)."""
    runs = _PADDED_RUN.findall(s)
    if "".join(runs) != s or any(len(r) % 4 or not r.endswith("=") for r in runs[:-1]):
        return None
    return runs


_B64_TEXT = re.compile(r"[A-Za-z0-9+/\s]{16,}={0,2}\s*")


@cache
def _signatures() -> tuple[tuple[bytes, str], ...]:
    """(leading bytes, media type) of the formats a report is sent in
    (tables/ed_signatures.csv), longest first."""
    rows = [(bytes.fromhex(r["signature_hex"]), r["media_type"]) for r in table("ed_signatures")]
    return tuple(sorted(rows, key=lambda r: -len(r[0])))


def sniff_media_type(data: bytes) -> str | None:
    """The media type the content itself shows ('%PDF-' -> application/pdf), None if unknown."""
    for signature, media in _signatures():
        if data.startswith(signature):
            return media
    return None


_XML_DECLARED = re.compile(r"""\s*<\?xml[^>]*?\sencoding\s*=\s*["']([A-Za-z0-9._:-]+)["']""")


# XML text as a document begins: its declaration, or an element (a CDA's root)
_XML_TEXT = re.compile(r"\ufeff?\s*<(?:\?xml\s|[A-Za-z_][\w.:-]*[\s>/])")


def text_bytes(value: str) -> bytes:
    """The bytes of an ED sent as text (not base64): an XML document in the encoding its
    declaration names (read as text in the message's charset, it was written out as UTF-8
    under a declaration saying ISO-8859-1, and every accented word of the CDA read as
    'hÃ©matologie'); UTF-8 for anything else or an encoding Python does not know.
    Characters the declared encoding lacks become XML character references."""
    m = _XML_DECLARED.match(value[:200])
    if m:
        try:
            return value.encode(m.group(1), errors="xmlcharrefreplace")
        except LookupError:
            pass
    return value.encode("utf-8")


def _undeclared_base64(raw: str) -> bytes | None:
    """ED.5 sent without its encoding (ED.4 empty) that is base64 of a known format: what
    laboratory systems send as '^^^^JVBERi0x...' (a PDF). Only content with a known signature
    is decoded; any other text stays the text it is."""
    if not (_B64_TEXT.fullmatch(raw) or _DATA_URI.match(raw)):
        return None
    try:
        data, _ = b64decode_lenient(raw)
    except (ValueError, binascii.Error):
        return None
    return data if sniff_media_type(data) else None


def _base64_twice(data: bytes, note: str | None) -> tuple[bytes, str | None]:
    """The document of base64 data that decodes to base64 again, of a known format (a CDA, a
    PDF): an engine that took a document already in base64 (from an XDS or FHIR source)
    and encoded it once more. Read once, the document was the base64 text of the CDA, filed
    as text/xml 'not a CDA document', its patient never checked. Other data unchanged."""
    if sniff_media_type(data) is not None or not data[:16].isascii():
        return data, note
    twice = _undeclared_base64(data.decode("ascii", "replace"))
    if twice is None:
        return data, note
    said = "the data is base64 encoded twice: decoded twice"
    return twice, f"{note}; {said}" if note else said


def media_type(type_of_data: str, subtype: str) -> str:
    """ED.2/ED.3 to a media type ('TEXT','XML' -> 'text/xml'; 'AP','PDF' -> application/pdf)."""
    sub_u = subtype.strip().upper()
    if "/" in sub_u:  # a sender who put a MIME type in the subtype
        return subtype.strip().lower()
    types = _media_types()
    return (types.get(("subtype", sub_u)) or types.get(("type", type_of_data.strip().upper()))
            or OCTET_STREAM)


def _late_encoding(msg: Message, c: list[str]) -> int | None:
    """The place (1-based, past 4) of the ED's encoding when components come before its type
    of data that the ED has not: '^^TEXT^XML^Base64^PD94...' (an engine writing ED.1 as two
    components), 'SIL^1.2.250.1.71^ISO^TEXT^XML^Base64^...' (the source application's HD
    with '^' where '&' belongs). The encoding was read in the subtype's place: the document
    refused, ED_BAD_ENCODING 'XML'. None when ED.4 is an encoding, or no later component is
    one with data right after it."""
    encodings = ed_encodings()
    if len(c) < 6 or text(msg, part(c, 4)).upper() in encodings:
        return None
    for k in range(len(c) - 1, 4, -1):
        if text(msg, part(c, k)).upper() in encodings and part(c, k + 1).strip():
            return k
    return None


def decode_ed(msg: Message, obx: Segment,
              more: tuple[str, ...] = ()) -> tuple[Attachment, str | None]:
    """The ED of OBX-5 as an Attachment; the note says what was repaired. ``more``: the raw
    data that continues it (repetitions, OBX after it: see ``continuations``).

    Raises NormalizationError ED_BAD_ENCODING / ED_BAD_BASE64 naming OBX[i]-5.
    """
    c = comps(msg, first_rep(msg, obx, 5))
    where = loc(obx, 5)
    note: str | None = None
    encodings = ed_encodings()
    if len(c) == 4 and text(msg, part(c, 4)).upper() not in encodings \
            and text(msg, part(c, 3)).upper() in encodings:
        # 'TEXT^XML^Base64^PD94...': ED.1 (the source application) left out, every component
        # one place early; the data was read as the encoding name (ED_BAD_ENCODING)
        c = ["", *c]
        shifted = "ED.1 (source application) missing: the components are read one place later"
    elif (k := _late_encoding(msg, c)) is not None:
        c = c[k - 4:]
        shifted = (f"{k - 4} component(s) too many before the ED's type of data (an empty "
                   "one, or the source application's HD written with '^'): the components "
                   f"are read {k - 4} place(s) earlier")
    elif len(c) == 1 and c[0]:
        # 'OBX|1|ED|...||JVBERi0xLjQK...': the data alone, no ED components; it was read as
        # an empty ED.5 (and an empty document)
        c = ["", "", "", "", c[0]]
        shifted = "OBX-5 holds the data alone, without the ED's type and encoding components"
    else:
        shifted = ""
    type_of_data, subtype = text(msg, part(c, 2)), text(msg, part(c, 3))
    encoding = text(msg, part(c, 4)).upper()
    raw = part(c, 5) + "".join(more)
    kind = encodings.get(encoding, "text" if not encoding else "")
    if kind == "text" and any(x.strip() for x in c[5:]):
        # a text ED whose data holds '^' its sender did not escape ('^TEXT^PLAIN^A^Kaliémie
        # 5^2 mmol/L'): the data goes on to the field's end; it stopped at the first '^',
        # the rest of the report dropped unsaid
        raw = msg.delimiters.component.join(c[4:]) + "".join(more)
        said = "ED data holds the component separator unescaped: read to the field's end"
        shifted = f"{shifted}; {said}" if shifted else said
    if kind == "text" and not more and (lines := _text_repetitions(msg, obx)):
        raw = "\n".join([raw, *lines])
        said = (f"the text goes on in {len(lines)} more repetition(s) of OBX-5: read as its "
                "next lines")
        shifted = f"{shifted}; {said}" if shifted else said
    if kind == "base64" and is_mime(unescaped(msg, raw[:4096]).encode("utf-8")):
        # the MIME entity says how its body is encoded (its Content-Transfer-Encoding): its
        # headers were read as base64, and the document refused (ED_BAD_BASE64)
        data = unescaped(msg, raw).encode("utf-8")
    elif kind == "base64":
        try:
            data, note = b64decode_lenient(unescaped(msg, raw))
            data, note = _base64_twice(data, note)
        except (ValueError, binascii.Error):
            value = unescaped(msg, raw)
            if not _XML_TEXT.match(value):
                raise NormalizationError("ED_BAD_BASE64", f"{where}: data is not valid base64",
                                         where) from None
            # the XML itself under '^TEXT^XML^Base64^' (an engine's template filled with
            # the document as it is): '<' is no base64, the CDA was refused, ED_BAD_BASE64
            data = text_bytes(value)
            note = "ED encoding (ED.4) says base64, the data is XML text: read as text"
    elif kind == "text":
        value = unescaped(msg, raw)
        decoded = _undeclared_base64(value)  # also under 'A': senders label base64 so
        if decoded is None:
            data = text_bytes(value)
        else:
            data = decoded
            note = (f"ED encoding (ED.4) {'missing' if not encoding else repr(encoding)}: "
                    "base64 data recognised by its content")
    elif kind == "hex":
        try:
            # line breaks anywhere, even inside a byte's two digits ('3\.br\C'): an engine
            # wrapping at an odd column; bytes.fromhex allows blanks between bytes only
            data = bytes.fromhex(unescaped(msg, raw).translate(_WS))
        except ValueError:
            raise NormalizationError("ED_BAD_HEX", f"{where}: data is not valid hexadecimal",
                                     where) from None
    else:  # the name is echoed only when it can be one (not a piece of the data)
        said = repr(encoding) if len(encoding) <= 12 else "(too long for a name: data in ED.4?)"
        raise NormalizationError("ED_BAD_ENCODING",
                                 f"{where}: unknown ED encoding {said}", where)
    if shifted:
        note = f"{shifted}; {note}" if note else shifted
    media = media_type(type_of_data, subtype)
    if is_mime(data):
        data, media, said = _mime_document(data, where)
        note = f"{note}; {said}" if note else said
    found = sniff_media_type(data) if media != OCTET_STREAM else None
    if found and found != media and found != "text/xml":  # XML is told by its header below
        # a binary format's signature does not lie: a PDF sent as '^TEXT^XML^' was filed
        # as text/xml, 'not a CDA document', and its report never read
        said = (f"content is {found}, not the {media} ED.2/ED.3 say: read as {found}")
        note = f"{note}; {said}" if note else said
        media = found
    if media == OCTET_STREAM:
        # '^AP^^Base64^...' or '^^^Base64^...': no subtype to tell a PDF from anything else
        found = sniff_media_type(data)
        if found:
            media = found
            said = f"media type {found} taken from the content (ED.2/ED.3 do not name it)"
            note = f"{note}; {said}" if note else said
    if media in (TEXT_MEDIA_TYPE, HTML_MEDIA_TYPE) and data:
        data, said = _utf8_text(msg, data, html=media == HTML_MEDIA_TYPE)
        if said:
            note = f"{note}; {said}" if note else said
    return Attachment(data=data, media_type=media, encoding_note=note), note


def _text_repetitions(msg: Message, obx: Segment) -> list[str]:
    """The raw text of OBX-5's repetitions after the first, for an ED sent as text (ED.4 'A'
    or empty): each the ED again ('~^TEXT^PLAIN^A^Conclusion...': its data) or the text
    alone. Senders that write a report one line per repetition, as a TX field's, send them
    so; the first alone was read, and the rest of the report dropped without a word."""
    out = []
    for rep in reps(msg, obx, 5)[1:]:
        c = comps(msg, rep)
        encoding = ed_encodings().get(text(msg, part(c, 4)).upper()) if len(c) >= 5 else None
        if encoding not in (None, "text"):
            break  # another document (a PDF in base64 after the text): not a line of it
        out.append(msg.delimiters.component.join(c[4:]) if encoding else rep)
    return out


def _mime_document(data: bytes, where: str) -> tuple[bytes, str, str]:
    """(the document, its media type, what the ledger says) of an ED holding a MIME package
    (normalizers/ed_mime.py): its first XML part (the CDA of CDA R2 3.3), else its first part;
    the others are the document's attachments, kept in the archived message.

    Raises NormalizationError ED_BAD_MIME when no part has a body."""
    body = mime_body(data)
    if body is None:
        raise NormalizationError("ED_BAD_MIME", f"{where}: MIME package without a body part "
                                 "(a multipart whose boundary never comes, or empty parts): "
                                 "no document in it", where)
    said = f"MIME package: its {body.media_type} part read as the document"
    if body.others:
        said += (f", {body.others} other part(s) (its attachments) kept in the archived "
                 "message only")
    return body.data, body.media_type, said


_UTF8_NAMES = frozenset({"utf-8", "utf8", "utf_8"})


HTML_MEDIA_TYPE = "text/html"
# <meta charset="iso-8859-15"> or <meta http-equiv="Content-Type" content="...; charset=...">
_HTML_CHARSET = re.compile(rb"""<meta[^>]*?charset\s*=\s*["']?\s*([A-Za-z0-9._:-]+)""",
                           re.IGNORECASE)


def _utf8_text(msg: Message, data: bytes, html: bool = False) -> tuple[bytes, str | None]:
    """A plain-text or HTML document's bytes in UTF-8, as every text document is kept (a
    text ED not in base64 is written out in UTF-8, ``text_bytes``), and as it is served
    (text/* with charset utf-8). Base64 of a report typed in ISO-8859-1/15 or Windows-1252
    (what French LIS and RIS on Windows write, whatever MSH-18 says) was kept in that
    charset, and every accented word read back as UTF-8 was broken ('l\ufffdsion'). Bytes
    that are UTF-8 stay as sent; others are read in the charset an HTML document declares
    (its meta charset, then rewritten 'utf-8'), else the message's single-byte charset
    (MSH-18), else Windows-1252, else ISO-8859-1."""
    try:
        data.decode("utf-8")
        return data, None
    except UnicodeDecodeError:
        pass
    if data.startswith((BOM_UTF16_LE, BOM_UTF16_BE)):
        return _from_utf16(data, html)
    meta = _HTML_CHARSET.search(data[:4096]) if html else None
    declared = [meta.group(1).decode("ascii")] if meta is not None else []
    codecs = [msg.charset] if msg.charset.lower() not in _UTF8_NAMES else []
    for codec in [*declared, *codecs, "cp1252", "latin-1"]:
        try:
            text_ = data.decode(codec)
        except (UnicodeDecodeError, LookupError):
            continue
        if codec in codecs and any("\x80" <= c <= "\x9f" for c in text_):
            continue  # C1 controls: the text is not in that charset (cp1252's quotes)
        out = text_.encode("utf-8")
        if meta is not None:  # the declaration says what the bytes now are
            start, end = meta.span(1)
            out = data[:start].decode(codec).encode("utf-8") + b"utf-8" \
                + data[end:].decode(codec).encode("utf-8")
        return out, (f"text document not in UTF-8: read as {codec} and kept in UTF-8")
    return data, None  # unreachable: latin-1 reads any bytes


def _from_utf16(data: bytes, html: bool) -> tuple[bytes, str | None]:
    """A text or HTML document in UTF-16 with its byte order mark (what Windows applications
    save as 'Unicode' text), in UTF-8 without the mark; an HTML document's meta charset then
    says utf-8. It was read as Windows-1252: the byte order mark as two letters, a NUL
    after every character, the report unreadable. Bytes that are no UTF-16 stay as sent."""
    try:
        out = data.decode("utf-16").encode("utf-8")
    except UnicodeDecodeError:
        return data, None
    meta = _HTML_CHARSET.search(out[:8192]) if html else None
    if meta is not None:
        out = out[:meta.start(1)] + b"utf-8" + out[meta.end(1):]
    return out, "text document in UTF-16 (byte order mark): kept in UTF-8"


# -- a document split over several OBX or repetitions --------------------------------------
# v2.5 leaves a field's length to the sender: engines that cap one (32k, 64k) cut a CDA or a PDF
# over several OBX with the same OBX-3 and sub-id (OBX-4 '1' each time, or '1.1', '1.2'...),
# over repetitions of OBX-5, or send the ED's first piece then FT/TX lines of data. Each piece
# was filed as a document of its own (broken CDA fragments) or as a lab result of base64.
_PIECED_ENCODINGS = {"base64": 4, "hex": 2}  # how data is read -> characters per quantum
# a text line of data: its alphabet and line ends only (a comment has blanks between words)
_PIECE_ALPHABET = {"base64": re.compile(r"[A-Za-z0-9+/=\r\n]+"),
                   "hex": re.compile(r"[0-9A-Fa-f\r\n]+")}
_ROOT_TAG = re.compile(rb"<([A-Za-z_][\w.:-]*)")
_TAIL = 4096  # characters of data decoded to see whether a document is whole
_SHORTEST = 32  # bytes: less is no whole document (no PDF nor CDA is so short)


@dataclass(slots=True)
class Pieces:
    """The data that continues one document's ED, and the OBX it came from."""

    data: tuple[str, ...]
    segments: tuple[Segment, ...]


def _decoded(encoding: str, data: str) -> bytes | None:
    try:
        if encoding == "hex":
            return bytes.fromhex(data)
        return b64decode_lenient(data)[0]
    except (ValueError, binascii.Error):
        return None


def _whole(encoding: str, pieces: list[str], total: int) -> bool | None:
    """Whether the encoded data in ``pieces`` (unescaped, without blanks; ``total`` their
    length) holds a whole document: a PDF ending with %%EOF, an XML document ending with its
    root's end tag. None for content that tells nothing. Only the head and the tail are
    joined and decoded (the tail aligned on the quanta counted from the start), so a long
    document cut in many pieces costs no more per piece."""
    q = _PIECED_ENCODINGS[encoding]
    head_parts, n = [], 0
    for p in pieces:
        head_parts.append(p)
        n += len(p)
        if n >= 400:
            break
    tail_parts, n = [], 0
    for p in reversed(pieces):
        tail_parts.append(p)
        n += len(p)
        if n >= _TAIL:
            break
    tail_text = "".join(reversed(tail_parts))
    tail_text = tail_text[(-(total - len(tail_text))) % q:]
    head = _decoded(encoding, "".join(head_parts)[:400 // q * q])
    tail = _decoded(encoding, tail_text)
    if head is None or tail is None or total % q:
        return False  # not decodable as it stands: cut in the middle of a quantum
    if len(head) < _SHORTEST:
        return False  # too short to be a document: a first piece of a few characters
    tail = tail.rstrip(b" \t\r\n\x00")
    if head.startswith(b"%PDF-"):
        return b"%%EOF" in tail[-1024:]
    body = head.removeprefix(b"\xef\xbb\xbf").lstrip()
    if body.startswith(b"<"):
        names = [m.group(1) for m in _ROOT_TAG.finditer(body[:400])]
        return bool(names) and re.search(b"</" + re.escape(names[0]) + rb"\s*>\Z", tail) \
            is not None
    return None


def _trailing(encoding: str, piece: str) -> bool:
    """A piece after a whole document that still belongs to it: the base64 padding, or the
    line end after %%EOF or the root's end tag, cut off alone."""
    if not piece.strip("="):
        return True
    decoded = _decoded(encoding, piece)
    return decoded is not None and not decoded.strip(b" \t\r\n\x00")


def _clean(msg: Message, raw: str) -> str:
    """A piece of encoded data as decoding reads it: escapes read ('\\.br\\'), no blanks."""
    return unescaped(msg, raw).translate(_WS)


def _sub_id_follows(first: str, previous: str, candidate: str) -> bool:
    """OBX-4 of a piece: the document's own sub-id again, or the next of a dotted series
    ('1.1', '1.2', ...) that the previous piece began."""
    if candidate == first:
        return bool(first)
    head, dot, last = previous.rpartition(".")
    c_head, c_dot, c_last = candidate.rpartition(".")
    return bool(dot and c_dot and head == c_head and last.isdigit() and c_last.isdigit()
                and int(c_last) == int(last) + 1)


def _numbered_on(first: str, previous: str, candidate: str) -> bool:
    """The pieces of a document known to be cut numbered by OBX-4 as engines number them
    besides the dotted series: no sub-id on any piece, or '1', '2', '3'... A PDF cut over
    three OBX so was filed as three documents, none of them readable."""
    if not first:
        return not candidate
    return previous.isdigit() and candidate.isdigit() and int(candidate) == int(previous) + 1


_DOCUMENT_HEADS = (b"%PDF-", b"<?xml", b"<ClinicalDocument")


def _starts_a_document(encoding: str, clean: str, heads: tuple[bytes, ...] = _DOCUMENT_HEADS
                       ) -> bool:
    """Whether encoded data begins a document of its own (a PDF, an XML document): the next
    document of the message, not a piece of a cut one, however its OBX-4 is numbered."""
    q = _PIECED_ENCODINGS[encoding]
    head = _decoded(encoding, clean[:64 // q * q])
    return head is not None and head.removeprefix(b"\xef\xbb\xbf").lstrip() \
        .startswith(heads)


_PROLOG = re.compile(rb"(?:<\?[^>]*\?>|<!--.*?-->|<!DOCTYPE[^>]*>|\s)*\Z", re.S)


def _prolog_only(encoding: str, pieces: list[str], total: int) -> bool:
    """Whether the data so far is an XML prolog alone ('<?xml version="1.0"?>', comments, a
    DOCTYPE) with no root element yet: a document cut right after its prolog, whose next
    piece begins '<ClinicalDocument' and continues it (that piece was read as a second
    document, the first filed as 39 bytes of prolog)."""
    q = _PIECED_ENCODINGS[encoding]
    if total > 400 or total % q:  # ``total``: the pieces' length, known without joining them
        return False
    joined = "".join(pieces)
    head = _decoded(encoding, joined)
    if head is None:
        return False
    body = head.removeprefix(b"\xef\xbb\xbf").lstrip()
    return body.startswith(b"<?xml") and _PROLOG.match(body) is not None


def continuations(msg: Message, obxs: list[Segment], kinds: list[str],
                  warnings: list[str]) -> dict[int, Pieces]:
    """For each document OBX (by its position in ``obxs``) whose ED data is cut, the pieces
    that complete it: its further OBX-5 repetitions and the OBX right after it with the same
    OBX-3 that go on with the data (an ED with the same sub-id or the next dotted one, an ED
    with no type nor encoding, a text line of the data's alphabet). Only base64 and hex data
    are pieced, and only while the document is not whole: two whole CDA with the same code
    and sub-id stay two documents."""
    out: dict[int, Pieces] = {}
    taken: set[int] = set()
    for i, (obx, kind) in enumerate(zip(obxs, kinds, strict=True)):
        if kind != OBX_DOCUMENT or i in taken:
            continue
        first, *more_reps = reps(msg, obx, 5) or [""]
        encoding = ed_encodings().get(text(msg, part(comps(msg, first), 4)).upper(), "")
        if encoding not in _PIECED_ENCODINGS:
            continue
        data = [part(comps(msg, first), 5)]
        clean = [_clean(msg, data[0])]
        total = len(clean[0])
        whole = _whole(encoding, clean, total)
        if whole is True:
            # whole already: its repetitions are not pieced, but the next OBX may still hold
            # its last bytes cut off alone ('Cg==', the line end after %%EOF: taken below
            # as trailing), else a second document of one byte was filed
            more_reps = []
        for rep in more_reps:  # a repetition: the ED again, or data alone
            c = comps(msg, rep)
            data.append(part(c, 5) if len(c) > 1 else rep)
            clean.append(_clean(msg, data[-1]))
            total += len(clean[-1])
        segments: list[Segment] = []
        code, sub_id = obx.fields[3].strip(), text(msg, obx.raw(4))
        previous = sub_id
        for j in range(i + 1, len(obxs)):
            if more_reps or segments:
                whole = _whole(encoding, clean, total)
            o = obxs[j]
            piece = _piece(msg, o, kinds[j], code, sub_id, previous, encoding,
                           strong=whole is not None,
                           after_prolog=whole is False and _prolog_only(encoding, clean, total))
            if piece is None or (whole is True and not _trailing(encoding, _clean(msg, piece))):
                break
            data.append(piece)
            clean.append(_clean(msg, piece))
            total += len(clean[-1])
            segments.append(o)
            taken.add(j)
            previous = text(msg, o.raw(4))
        if segments or more_reps:
            out[i] = Pieces(tuple(data[1:]), tuple(segments))
            if more_reps:
                warnings.append(f"{loc(obx, 5)}: the document's data goes on in "
                                f"{len(more_reps)} more repetition(s) of OBX-5: read as one")
            if segments:
                warnings.append(f"{loc(obx, 5)}: the document's data goes on in "
                                f"{', '.join(loc(o) for o in segments[:5])}"
                                f"{' ...' if len(segments) > 5 else ''}: read as one")
    return out


def _piece(msg: Message, o: Segment, kind: str, code: str, sub_id: str, previous: str,
           encoding: str, strong: bool, after_prolog: bool = False) -> str | None:
    """The data ``o`` adds to the document before it, None when it is no piece of it.
    ``strong``: the document is known to be cut (not only of a kind that tells nothing): only
    then do an ED with a type of its own and the same sub-id, or a text line, continue it
    (a comment 'Voir le compte rendu' is of the base64 alphabet too)."""
    f = o.fields
    if len(f) < 4 or f[3].strip() != code:
        return None
    o_sub = text(msg, o.raw(4))
    vtype = (f[2] if len(f) > 2 else "").strip().upper()
    rep_list = reps(msg, o, 5)
    if kind == OBX_DOCUMENT:
        c = comps(msg, rep_list[0] if rep_list else "")
        bare = len(c) <= 1 or not any(text(msg, part(c, k)) for k in (2, 3, 4))
        if not bare and ed_encodings().get(text(msg, part(c, 4)).upper()) != encoding:
            return None
        if not (bare or strong) or not (bare and not o_sub
                                         or _sub_id_follows(sub_id, previous, o_sub)
                                         or strong and _numbered_on(sub_id, previous, o_sub)):
            return None
        out = []
        for rep in rep_list:
            rc = comps(msg, rep)
            out.append(part(rc, 5) if len(rc) > 1 else rep)
        data = "".join(out)
        # after a prolog alone, a root element's start continues the document
        heads = (b"%PDF-", b"<?xml") if after_prolog else _DOCUMENT_HEADS
        return None if _starts_a_document(encoding, _clean(msg, data), heads) else data
    if strong and kind == OBX_RESULT and vtype in TEXT_DOCUMENT_TYPES and rep_list \
            and (not o_sub or _sub_id_follows(sub_id, previous, o_sub)):
        value = "".join(rep_list)
        return value if _PIECE_ALPHABET[encoding].fullmatch(unescaped(msg, value)) else None
    return None


def decode_text(msg: Message, obx: Segment) -> tuple[str, str | None]:
    """A text ED (mail body) or plain value, decoded as UTF-8 (latin-1 as a last resort).
    A plain value's repetitions are its lines (TX, FT: a mail body written one line per
    repetition, as ``text_body`` reads a document's); the first alone was kept, and the
    rest of the mail (its closing, the signature) dropped."""
    if text(msg, obx.fields[2] if len(obx.fields) > 2 else "").upper() != "ED":
        return "\n".join(unescaped(msg, r).rstrip() for r in reps(msg, obx, 5)).strip(), None
    att, note = decode_ed(msg, obx)
    try:
        return att.data.decode("utf-8"), note
    except UnicodeDecodeError:
        return att.data.decode("latin-1"), note


def reference_warning(obx: Segment) -> str:
    """What the ledger says of an OBX of type RP (a pointer to a report kept elsewhere: a URL,
    a file on the sender's server): nothing is ever fetched, so the dossier holds the pointer
    and not the document. The pointer itself is not repeated (a file name may name the
    patient)."""
    return (f"{loc(obx, 5)}: reference pointer (RP) to a document kept by the sender: not "
            "retrieved (nothing is fetched from a sender's server), only the reference is "
            "filed; send the document itself in an ED to have it in the dossier")


# -- message-wide metadata ------------------------------------------------------------------
@dataclass(slots=True)
class MessageMeta:
    """MetaDMPMSS flags and mail texts of one message: applied to each of its documents."""

    masking: dict[str, bool] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    where: dict[str, str] = field(default_factory=dict)  # flag name -> OBX-5 of its value


def collect_meta(msg: Message, obx: Segment, meta: MessageMeta, warnings: list[str]) -> None:
    """Add one MetaDMPMSS or mail OBX to ``meta``."""
    named = meta_name(msg, obx)
    where = loc(obx, 5)
    if named is None:  # the LPS mail (XDM) OBX
        display = sub(msg, part(comps(msg, first_rep(msg, obx, 3)), 2), 1)
        body, note = _safe_text(msg, obx, warnings)
        meta.details["mail_subject"] = display[len(MAIL_PREFIX):].partition("+")[2]
        meta.details["mail_body"] = body
        return
    name, kind = named
    if meta_triplet(msg, obx)[2]:
        warnings.append(f"{loc(obx, 3)}: MetaDMPMSS flag {name[:30]} read from the alternate "
                        "identifier (OBX-3.4), the first being a local code or empty")
    if name.upper() not in _meta_codes():
        # a code under the MetaDMPMSS system that no CI-SIS guide defines ('MASQUE_PATIENT',
        # a typo of a flag): kept as sent, but nothing reads it; it was stored silently,
        # and a sender meaning to hide the document never learnt that nothing was hidden
        warnings.append(f"{where}: {name[:30]!r} is not a MetaDMPMSS flag of the CI-SIS "
                        "guide: kept as sent, it masks nothing")
    if kind == "flag":
        value = flag_value(msg, obx, name, warnings)
        read = _flag_values().get(value)
        if read is None:
            warnings.append(f"{where}: MetaDMPMSS flag {name} is not Y or N, ignored")
            return
        flag, standard = read
        if meta.masking.get(name, flag) != flag:
            # the same flag twice, Y and N: the one that hides the document or sends it
            # nowhere is kept (a MASQUE_PS=Y followed by a default N showed the document)
            kept = _on_conflict().get(name, "")
            flag = kept == "Y" if kept else flag
            warnings.append(f"{where}: MetaDMPMSS flag {name} sent twice with different "
                            f"values: {'Y' if flag else 'N'} kept")
        if meta.masking.get(name) != flag:
            meta.where[name] = where
        meta.masking[name] = flag
        if not standard:
            warnings.append(f"{where}: MetaDMPMSS flag {name} written {value[:5]!r}, not Y/N "
                            f"(HL7 table 0136): read as {'Y' if read[0] else 'N'}")
    elif kind == "list":
        c = comps(msg, first_rep(msg, obx, 5))
        meta.details.setdefault(name, []).append(
            "^".join(x for x in (text(msg, part(c, 1)), text(msg, part(c, 2))) if x))
    else:
        body, _ = _safe_text(msg, obx, warnings)
        meta.details[name] = body


def flag_value(msg: Message, obx: Segment, name: str, warnings: list[str]) -> str:
    """A flag's OBX-5 value in upper case: CWE.1, else (CWE.1 empty) the alternate identifier
    CWE.4 ('^^^Y^Oui^HL70136', an engine's mapping), else the text CWE.2 ('^Oui'), said on the
    ledger. Read in CWE.1 alone, such a MASQUE_PS=Y was 'not Y or N, ignored', and the
    document shown to the professionals it was hidden from."""
    c = comps(msg, first_rep(msg, obx, 5))
    value = text(msg, part(c, 1)).upper()
    if value:
        return value
    for k, what in ((4, "alternate identifier (OBX-5.4)"), (2, "text (OBX-5.2), no code")):
        value = text(msg, part(c, k)).upper()
        if value:
            warnings.append(f"{loc(obx, 5)}: MetaDMPMSS flag {name[:30]} value read from its "
                            f"{what}")
            return value
    return ""


def _safe_text(msg: Message, obx: Segment, warnings: list[str]) -> tuple[str, str | None]:
    """Mail texts are accessories: a broken one is a warning, not a rejected message."""
    where = loc(obx, 5)
    try:
        body, note = decode_text(msg, obx)
    except NormalizationError as exc:
        warnings.append(f"{where}: {exc.code}, text ignored")
        return "", None
    if note:
        warnings.append(f"{where}: {note}")
    return body, note


# -- actions --------------------------------------------------------------------------------
@dataclass(slots=True)
class ActionSource:
    location: str  # 'MSH-9', 'ORC[4]-1', 'OBX[6]-11'
    code: str
    action: str | None  # None: this source says nothing about the action


def order_control_source(msg: Message, orc: Segment | None, cisis: bool,
                         warnings: list[str]) -> ActionSource | None:
    if orc is None:
        return None
    code = id_code(msg, orc, 1)  # 'CA^Cancel order request^HL70119' is CA
    if not cisis:  # outside CI-SIS, ORC-1 on results is order bookkeeping ('NW', 'RE'...)
        return ActionSource(loc(orc, 1), code, None)
    action = _actions().get(("ORC-1", code))
    if action is None:
        warnings.append(f"{loc(orc, 1)}: order control {code[:4]!r} is not NW/RO/CA; "
                        "action taken from the other segments")
    return ActionSource(loc(orc, 1), code, action)


# T04 deletes a document under CI-SIS only: in HL7 v2.5 (9.3.4) it is 'document status change
# notification and content' (the report now signed, TXA-17): a new version of the document.
STATUS_CHANGE = "T04"
CANCEL = "T11"  # v2.5 9.3.11 document cancel notification: TXA alone, the document withdrawn


@cache
def _mdm_triggers() -> dict[str, dict[str, str]]:
    return {row["trigger"]: row for row in table("mdm_triggers")}


def trigger_source(msg: Message, cisis: bool = True) -> ActionSource:
    """MSH-9.2 as an action source, read as the trigger with content it stands for when a
    notification carries the document (tables/mdm_triggers.csv: T01 as T02, T09 as T10)."""
    trigger = msg.message_type[1].strip().upper()
    row = _mdm_triggers().get(trigger)
    read_as = row["read_as"] if row is not None else trigger
    if read_as == STATUS_CHANGE and (not cisis or trigger != STATUS_CHANGE):
        return ActionSource("MSH-9", trigger, None)  # a new version of the same document
    return ActionSource("MSH-9", trigger, _actions().get(("MSH-9", read_as)))


def mdm_trigger_checks(msg: Message, with_content: bool, warnings: list[str]) -> None:
    """A notification trigger (T01, T03, T05, T07, T09) carries no document: without one
    there is nothing to file (MDM_NOTIFICATION_ONLY); with one, it is read as the trigger
    with content it stands for, with a warning."""
    trigger = msg.message_type[1].strip().upper()
    row = _mdm_triggers().get(trigger)
    if row is None or row["content"] == "yes" or trigger == CANCEL:
        return
    if not with_content:
        raise NotificationOnlyError(
            "MDM_NOTIFICATION_ONLY", f"MSH-9: MDM^{trigger} ({row['meaning']}) carries no "
            f"document: nothing to file (the document content is expected in an "
            f"MDM^{row['read_as']})", "MSH-9")
    warnings.append(f"MSH-9: MDM^{trigger} ({row['meaning']}) carries a document: read as "
                    f"MDM^{row['read_as']}")


def is_addendum(msg: Message) -> bool:
    """MDM^T05/T06: the document adds to the one TXA-13 names (tables/mdm_triggers.csv)."""
    row = _mdm_triggers().get(msg.message_type[1].strip().upper())
    return row is not None and row["addendum"] == "yes"


def obx_status_source(msg: Message, obx: Segment, cisis: bool) -> ActionSource:
    """OBX-11 as an action source. Outside CI-SIS, 'F' is what every sender puts on every
    document, so only C/D/W speak there."""
    code = id_code(msg, obx, 11)  # 'C^Correction^HL70085' is C (see id_code)
    action = column_map("result_status", "code", "action").get(code)
    if not cisis and action == ACTION_NEW:
        action = None
    return ActionSource(loc(obx, 11), code, action)


def decide_action(sources: list[ActionSource | None]) -> str:
    """The one action the decisive sources agree on ('new' when none speaks).

    Raises NormalizationError CISIS_ACTION_MISMATCH naming the segments that disagree."""
    decisive = [s for s in sources if s is not None and s.action is not None]
    for other in decisive[1:]:
        if other.action != decisive[0].action:
            first = decisive[0]
            raise NormalizationError(
                "CISIS_ACTION_MISMATCH",
                f"{first.location} {first.code[:4]!r} ({first.action}) and {other.location} "
                f"{other.code[:4]!r} ({other.action}) disagree on the document action",
                f"{first.location},{other.location}")
    return decisive[0].action if decisive else ACTION_NEW  # type: ignore[return-value]


# OBX-11 statuses (tables/result_status.csv) under which a document may come without content
NO_CONTENT_STATUSES = frozenset({"registered", "cancelled"})


# -- one document ---------------------------------------------------------------------------
@dataclass(slots=True)
class DocumentContext:
    """What the enclosing message says about the document of one OBX."""

    source: str
    mappings: CodeMappings | None
    fallback_id: str  # TXA-12 (MDM) or order number + OBX sub-id (ORU)
    fallback_is_slot: bool  # True for ORU: the same slot in a later message is the same document
    parent_id: str = ""  # TXA-13
    action_sources: list[ActionSource | None] = field(default_factory=list)
    effective: str | None = None
    issued: str | None = None
    performer: str | None = None
    parent_key: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    fallback_where: str = ""  # where fallback_id was read ('TXA[5]-12'), for an MDM
    parent_where: str = ""  # where parent_id was read ('TXA[5]-13')
    completion_status: str | None = None  # from TXA-17 (tables/txa_statuses.csv)
    # (location, why) when TXA-17/TXA-19 say the document is not for patient care yet
    held_back: tuple[str, str] | None = None
    # TXA-2 when it is a LOINC document type (CI-SIS: '18748-4'): (code, display)
    document_type: tuple[str, str] | None = None


def document_entry(msg: Message, obx: Segment, ctx: DocumentContext, identity: PatientIdentity,
                   cisis: bool, warnings: list[str], quarantine: list[str],
                   body: Attachment | None = None, pieces: Pieces | None = None) -> Entry:
    """One DOCUMENT entry for an OBX of type ED. Quarantine reasons are appended to
    ``quarantine``, warnings to ``warnings``. ``body``: the document already read (the text
    of an MDM sent as TX lines, see ``text_body``), ``obx`` then its first line. ``pieces``:
    the rest of its data when it is cut (``continuations``)."""
    where = loc(obx, 5)
    if body is None and not (obx.fields[2] if len(obx.fields) > 2 else "").strip():
        warnings.append(f"{loc(obx, 2)}: {UNTYPED_ED_WARNING}")
    more = pieces.data if pieces is not None else ()
    attachment, note = decode_ed(msg, obx, more) if body is None else (body, None)
    if note:
        warnings.append(f"{where}: {note}")
    header: CdaHeader | None = None
    reason = None
    if attachment.data and (attachment.media_type in ("text/xml", "application/xml")
                            or looks_like_xml(attachment.data)):
        header = read_cda_header(attachment.data)
        if header is None:
            if attachment.media_type != HTML_MEDIA_TYPE:  # an HTML report is no CDA missed
                warnings.append(f"{where}: payload is not a CDA document")
        else:
            attachment.media_type = "text/xml"
            reason = check_patient(identity, header, where)
            if reason:
                quarantine.append(reason)
                warnings.append(reason)

    status_source = obx_status_source(msg, obx, cisis)
    action = decide_action([*ctx.action_sources, status_source])
    status = obx_status(status_source.code)[0] if status_source.code else "final"
    if status == "final" and ctx.completion_status:
        status = ctx.completion_status  # TXA-17: dictated, in progress... not final yet
    if not attachment.data and action != ACTION_DELETE:
        # A deletion needs no content; a report announced as pending or not obtained (OBX-11
        # I, O, X, N) has none yet. Anything else filed empty was a blank current document,
        # and as a replacement it hid the version that held the report.
        if status not in NO_CONTENT_STATUSES:
            raise NormalizationError(
                "ED_EMPTY", f"{where}: the document is empty (no data in the ED, OBX-11 "
                f"{status_source.code[:4]!r}): nothing to file", where)
        warnings.append(f"{where}: empty document")

    doc_id = header.document_id if header is not None and header.id_root else ctx.fallback_id
    if not doc_id:
        _no_document_number(ctx)
    elif not ctx.fallback_id and ctx.fallback_where:
        # TXA-12 left empty by an engine that builds the MDM from the CDA: the CDA's id is
        # the document's (it was refused, MDM_NO_DOCUMENT_ID, with the id in the payload)
        warnings.append(f"{ctx.fallback_where}: no unique document number; the document is "
                        "filed under the carried CDA's ClinicalDocument/id")
    key = f"document|{doc_id}"
    replaces_key = None
    if action == ACTION_DELETE:
        replaces_key = key
    elif action == ACTION_REPLACE:
        cda_parent = header.replaced_id() if header is not None else ""
        parent = cda_parent or ctx.parent_id
        if cda_parent and ctx.parent_id and ctx.parent_where and ctx.parent_id != cda_parent \
                and number_of(ctx.parent_id) not in (cda_parent, cda_parent.rpartition("^")[2]):
            warnings.append(f"{ctx.parent_where}: the parent document number is "
                            "not the carried CDA's relatedDocument (RPLC); the CDA's is "
                            "the one replaced")
        if parent:
            replaces_key = f"document|{parent}"
        elif ctx.fallback_is_slot and (header is None or not header.id_root):
            replaces_key = key
        elif header is not None and header.set_id and header.set_id != doc_id:
            # The first version of a document is identified by its setId (CI-SIS, the ANS
            # examples): a replacement naming no parent replaces it. The warning promised
            # a match by setId nothing made; the replaced version stayed current.
            replaces_key = f"document|{header.set_id}"
            warnings.append(f"{loc(obx)}: replacement names no parent document (no "
                            "relatedDocument RPLC, no TXA-13); it replaces the first version "
                            "of its set (setId)")
        elif ctx.fallback_where and ctx.fallback_id and (header is None or not header.id_root):
            # MDM^T10 re-sending TXA-12 with no TXA-13: the parent is the document filed under
            # that same number, of which this is the next version. 'Names no parent' was
            # wrong: it is named, by TXA-12.
            warnings.append(f"{ctx.fallback_where}: replacement with no parent number "
                            "(TXA-13 empty) under the document's own number: filed as a new "
                            "version of the document held under this TXA-12")
        else:
            warnings.append(f"{loc(obx)}: replacement names no parent document "
                            "(no relatedDocument RPLC, no TXA-13, no setId)")
    elif header is not None and header.replaced_id():
        warnings.append(f"{loc(obx)}: the CDA replaces a parent document but the message "
                        "sends it as new")

    c3 = comps(msg, first_rep(msg, obx, 3))
    coded = resolve_code(sub(msg, part(c3, 1), 1), sub(msg, part(c3, 2), 1),
                         sub(msg, part(c3, 3), 1), sub(msg, part(c3, 4), 1),
                         sub(msg, part(c3, 5), 1), sub(msg, part(c3, 6), 1),
                         source=ctx.source, mappings=ctx.mappings)
    code, system, display, mapped = coded.code, coded.system, coded.display, coded.mapped
    effective = ctx.effective
    details: dict[str, Any] = {"media_type": attachment.media_type,
                               "obx_status": status_source.code, **ctx.details}
    if not mapped and ctx.document_type is not None:
        # OBX-3 a local or empty code ('PDF^Document PDF^L', as DPI send a PDF) and TXA-2
        # the LOINC document type: the document is of TXA-2's type. It was filed under
        # 'PDF' (or no code), a discharge letter no one could find as one.
        if code:
            details["obx_code"] = {"code": code, "system": system, "display": display}
        code, display = ctx.document_type[0], ctx.document_type[1] or display
        system, mapped = LOINC, True
    if header is not None:
        details["cda"] = header.as_details()
        if header.code:
            code, display = header.code, header.code_display or display
            system = LOINC if is_loinc_system(header.code_system) else header.code_system
            mapped = system == LOINC
        if header.effective_time:
            try:
                effective = hl7_ts_to_iso(header.effective_time)
            except ValueError:
                warnings.append(f"{where}: CDA effectiveTime is not a valid date, ignored")
    if reason:
        details["patient_mismatch"] = True
    if ctx.fallback_id and doc_id != ctx.fallback_id:
        details["message_document_id"] = ctx.fallback_id
        if ctx.fallback_where and header is not None \
                and number_of(ctx.fallback_id) not in (header.id_extension, header.id_root):
            warnings.append(f"{ctx.fallback_where}: the unique document number is not the "
                            "carried CDA's ClinicalDocument/id; the document is filed under "
                            "the CDA id (a later replacement or cancel naming this number "
                            "alone is followed to it)")
    return Entry(
        type=DOCUMENT, key=key, source_ref=loc(obx), code=code or None, system=system or None,
        display=(header.title if header is not None and header.title else display) or None,
        mapped=mapped, value_type="ED" if body is None else "TX", status=status,
        effective=effective, issued=ctx.issued,
        performer=ctx.performer, parent_key=ctx.parent_key, action=action,
        replaces_key=replaces_key, attachment=attachment, details=details)


def _no_document_number(ctx: DocumentContext) -> None:
    """MDM_NO_DOCUMENT_ID at TXA-12: no number there, and no CDA id to file the document
    under."""
    where = ctx.fallback_where or "TXA"
    raise NormalizationError("MDM_NO_DOCUMENT_ID", f"{where}: no unique document number (and "
                             "no CDA document id in the message)", where)


def check_patient(identity: PatientIdentity, header: CdaHeader, where: str) -> str | None:
    """CI-SIS: PID-3 must equal the CDA patientRole/id. INS compare across the two (an INS typed
    with blanks in the CDA is the same number: it was a mismatch); so do the local ids of
    one assigning authority (PID-3's CX.4, the CDA id's root): the hospital's IPP 100234 in
    PID-3 and 100872 in the CDA name two of its patients, and with no INS on one side the
    document was filed under PID's patient unchecked. When either side names nothing the
    other does, nothing is said. Returns the quarantine reason (code and location only),
    None when nothing is wrong.

    Not a rejection: the published ANS examples themselves embed CDA documents of another
    test patient, so this is left to a person (the pipeline quarantines)."""
    cda_ins: set[tuple[str, str]] = set()
    cda_local: dict[str, set[str]] = {}
    for root, ext in header.patient_ids:
        # the root as its bare OID ('urn:oid:...'), as normalizers/cda/identity.py reads the patient
        root, ext = authority_of("", root.strip(), "ISO"), ext.strip()
        if not root or not ext:
            continue
        if ins_kind(root):
            cda_ins.add((root, "".join(ext.split()).upper()))
        else:
            cda_local.setdefault(root, set()).add(ext)
    pid_ins = {(i.oid, i.nir) for i in identity.ins}
    if cda_ins and pid_ins and not cda_ins & pid_ins:
        return f"{PATIENT_MISMATCH} {where}: the CDA patientRole/id does not match the INS of PID-3"
    pid_local: dict[str, set[str]] = {}
    for li in identity.local_ids:
        if li.type_code != "NH" and li.authority in cda_local:
            pid_local.setdefault(li.authority, set()).add(li.value)
    if any(not values & cda_local[authority] for authority, values in pid_local.items()):
        return (f"{PATIENT_MISMATCH} {where}: the CDA patientRole/id and PID-3 give two "
                "identifiers of one assigning authority")
    return None


def apply_meta(entries: list[Entry], meta: MessageMeta, warnings: list[str]) -> None:
    """The message's MetaDMPMSS flags on its documents and on the entries read from their
    bodies (masking a document masks what it says), and on the message's other entries (the
    results of an order whose report is a masked document are masked too); mail texts on
    the documents.

    Raises NormalizationError CISIS_NOT_FOR_DMP when a flag says the message is not for the
    dossier (DESTDMP=N: the document goes to MSSanté mailboxes only): it was filed in the
    shared record all the same, shown to professionals and to the patient, against the
    sender's explicit choice."""
    refuse_not_for_dmp(meta)
    docs = [e for e in entries if e.type == DOCUMENT]
    if not docs:
        # A result message (no document) flagged MASQUE_PS: the flags are about what the
        # message says, so they go on its entries; a masked result must not show.
        for e in entries:
            e.masking = dict(meta.masking)
        if meta.details:
            warnings.append("MetaDMPMSS texts in a message without document, ignored")
        return
    masking_of: dict[str, dict[str, bool]] = {}
    of_order: dict[str, dict[str, bool]] = {}  # report key -> what its documents mask
    for e in docs:
        e.masking = _with_confidentiality(dict(meta.masking), e, warnings)
        e.details.update(meta.details)
        masking_of[e.key] = e.masking
        if e.parent_key:
            held = of_order.setdefault(e.parent_key, {})
            for name, flag in e.masking.items():
                held[name] = held.get(name, False) or flag
    for e in entries:
        if e.type == DOCUMENT:
            continue
        if e.parent_key in masking_of:
            e.masking = dict(masking_of[e.parent_key])
            continue
        # The message's own results (an ORU with its numbers and the report as a PDF or CDA):
        # the flags are the message's, and a masked report's results are masked with it.
        # They were left unmasked: the values of a report masked from professionals showed.
        masking = dict(meta.masking)
        for key in (e.parent_key, e.key):
            for name, flag in of_order.get(key or "", {}).items():
                masking[name] = masking.get(name, False) or flag
        e.masking = masking


def refuse_not_for_dmp(meta: MessageMeta) -> None:
    """CISIS_NOT_FOR_DMP at the flag's OBX-5 when a MetaDMPMSS flag has the value that keeps
    the message out of the dossier (tables/metadmpmss.csv, refuse_when). No flag, or
    DESTDMP=Y, files as before."""
    refused = not_for_dmp(meta)
    if refused is not None:
        raise refused


def not_for_dmp(meta: MessageMeta) -> NormalizationError | None:
    """The CISIS_NOT_FOR_DMP error ``refuse_not_for_dmp`` raises, None when the flags do not
    keep the documents out of the dossier."""
    for name, refused_value in _refusals().items():
        if meta.masking.get(name) is refused_value:
            where = meta.where.get(name, "OBX")
            return NormalizationError(
                "CISIS_NOT_FOR_DMP", f"{where}: MetaDMPMSS flag {name} is "
                f"{'Y' if refused_value else 'N'}: the message is not addressed to the DMP "
                "(MSSanté recipients only); nothing filed", where)
    return None


# -- MetaDMPMSS flags of each order of an ORU that carries several documents -----------------
@dataclass(slots=True)
class GroupFlags:
    """The MetaDMPMSS flags (and mail texts) one OBR group of an ORU carries, and the entries
    the group made (by ``id``), for ``apply_group_meta``."""

    where: str  # 'OBR[5]'
    meta: MessageMeta = field(default_factory=MessageMeta)
    obx: list[Segment] = field(default_factory=list)
    entries: set[int] = field(default_factory=set)
    documents: bool = False
    # what the message-wide reading said of the flags that the group's own does not: the
    # 'sent twice with different values' of two orders' flags
    cross: set[str] = field(default_factory=set)


def _same_flags(a: MessageMeta, b: MessageMeta) -> bool:
    return a.masking == b.masking and a.details == b.details


def own_flag_groups(groups: list[GroupFlags]) -> list[GroupFlags]:
    """The document groups read each with its own flags: when two orders or more carry
    documents, each order with its own MetaDMPMSS flags, and the orders' flags differ (a
    laboratory batching a CR-BIO masked from professionals and another that is not, or one
    that goes to MSSanté mailboxes only, in one ORU). Else [] (the flags are the message's,
    as the CI-SIS guide sends them: one set after the document(s))."""
    docs = [g for g in groups if g.documents]
    if len(docs) < 2 or any(not g.obx for g in docs) \
            or all(_same_flags(docs[0].meta, g.meta) for g in docs[1:]):
        return []
    return docs


def apply_group_meta(msg: Message, entries: list[Entry], groups: list[GroupFlags],
                     meta: MessageMeta, warnings: list[str]) -> list[Entry]:
    """``apply_meta`` for an ORU: each order's documents (and the entries read from them and
    from the order) under the flags of their own order when ``own_flag_groups`` says so;
    an order whose flags keep it out of the dossier (DESTDMP=N) is left out, with a warning,
    and the message refused (CISIS_NOT_FOR_DMP) only when every order is. Read message-wide,
    one order's MASQUE_PS=Y masked the other order's document from every professional, and
    one order's DESTDMP=N refused the whole message, the documents meant for the dossier
    with it. Returns the entries to file."""
    own = own_flag_groups(groups)
    if not own:
        apply_meta(entries, meta, warnings)
        return entries
    cross = set().union(*(g.cross for g in groups))
    warnings[:] = [w for w in warnings if w not in cross]
    owner: dict[int, GroupFlags] = {}
    for g in own:
        owner.update(dict.fromkeys(g.entries, g))
    by_key = {e.key: owner[id(e)] for e in entries if id(e) in owner}
    for e in entries:  # the entries read from a group's documents (a CDA's, a PDF's report)
        if id(e) not in owner and e.parent_key in by_key:
            owner[id(e)] = by_key[e.key] = by_key[e.parent_key]
    kept: list[GroupFlags] = []
    refused: list[NormalizationError] = []
    for g in own:
        error = not_for_dmp(g.meta)
        if error is None:
            kept.append(g)
            continue
        refused.append(error)
        warnings.append(f"{g.where}: {error.code} at {error.location}: this order's documents "
                        "are addressed to MSSanté recipients only, not to the DMP (MetaDMPMSS "
                        "flag): left out; the message's other orders are filed")
    if not kept:
        raise refused[0]
    warnings.append(f"{', '.join(g.where for g in own)}: each order carries its document(s) "
                    "with MetaDMPMSS flags of its own: each order's flags are applied to its "
                    "documents")
    out = [e for e in entries if id(e) not in owner or owner[id(e)] in kept]
    for g in kept:
        apply_meta([e for e in out if owner.get(id(e)) is g], g.meta, warnings)
    rest = [e for e in out if id(e) not in owner]
    if rest:  # the other orders' results: the flags of the orders filed, with their texts
        merged = MessageMeta()
        for g in [*kept, *(g for g in groups if g not in own)]:
            for obx in g.obx:
                collect_meta(msg, obx, merged, [])
        merged.details = {}
        apply_meta(rest, merged, warnings)
    return out


def _with_confidentiality(masking: dict[str, bool], doc: Entry,
                          warnings: list[str]) -> dict[str, bool]:
    """The message's flags, and what the carried CDA's confidentialityCode and the MDM's TXA-18
    mask (R, V: tables/cda_confidentiality.csv), as the same CDA received as a file is masked: a
    restricted document sent without MetaDMPMSS flags (or with MASQUE_PS=N) was shown to
    every professional. Masking wins: the flag that says N is overruled, with a warning."""
    code = str((doc.details.get("cda") or {}).get("confidentiality_code") or "")
    said = [("the CDA confidentialityCode", code, confidentiality_masking(code) if code
             else None)]
    # TXA-18 (HL7 table 0272: V very restricted, R restricted, U usual control), the same
    # scale as the CDA's: a PDF an MDM sent 'V' was filed unmasked, shown to every
    # professional; the code was kept in details, and nothing read it
    txa18 = str(doc.details.get("confidentiality_status") or "").strip().upper()
    if txa18:  # a code of no table is said by txa_status_sources, where its place is known
        said.append(("TXA-18", txa18, confidentiality_masking(txa18)))
    for what, value, flags in said:
        for name, masked in (flags or {}).items():
            if masked and masking.get(name) is False:
                warnings.append(f"{doc.source_ref}: {what} {value[:4]!r} masks the document "
                                f"({name}) though the message's flag says N")
            masking[name] = masking.get(name, False) or masked
    return masking


def add_embedded_entries(entries: list[Entry], source: str | tuple[str, ...],
                         mappings: CodeMappings | None, warnings: list[str],
                         zone: str | None = None) -> None:
    """Append the coded entries of every CDA document of the message, and the report read
    from every PDF document (not for deletions). ``zone``: the one the source declared
    (``Message.zone``), for a CDA's times without offset as a CDA file of that source."""
    for doc in [e for e in entries if e.type == DOCUMENT and e.action != ACTION_DELETE]:
        if doc.attachment is not None and doc.attachment.media_type == PDF_MEDIA_TYPE:
            entries.extend(pdf_report_entries(doc, doc.attachment.data, source, warnings))
        elif doc.attachment is not None and doc.attachment.media_type in IMAGE_MEDIA_TYPES:
            entries.extend(image_report_entries(doc, source, warnings))
        else:
            entries.extend(embedded_entries(doc, source, mappings, warnings, zone))


PDF_MEDIA_TYPE = "application/pdf"
PRELIMINARY = "preliminary"  # tables/result_status.csv, tables/txa_statuses.csv
# Scanners' formats (tables/ed_media_types.csv): a scanned report sent as its page images
IMAGE_MEDIA_TYPES = frozenset({"image/jpeg", "image/jpg", "image/png", "image/tiff",
                               "image/gif", "image/bmp"})


def image_report_entries(document: Entry, source: str | tuple[str, ...],
                         warnings: list[str]) -> list[Entry]:
    """The report read from a scanned page sent as an image (an ED IM^JPEG, ^TIFF, ^PNG):
    its page(s) read as a scanned PDF is (OCR, then the report's fields), when the image is
    shaped as a document page; else the image is filed as sent, and the ledger says it was
    kept unread. Why: such scans were filed with no reading and no word of it, where the
    same page sent as a PDF was read."""
    assert document.attachment is not None
    return scanned_image_entries(document, document.attachment.data,
                                 document.attachment.media_type, source, warnings)


def scanned_image_entries(document: Entry, data: bytes, media: str,
                          source: str | tuple[str, ...], warnings: list[str]) -> list[Entry]:
    """``image_report_entries`` for image bytes carried anywhere: an HL7 ED, a CDA
    nonXMLBody (an IHE XDS-SD scan sent as image/jpeg, image/png, image/tiff), so that one
    scanned page is read alike by both channels."""
    from parsers.pdf import PdfParseError
    from parsers.pdf.image import IMAGE_NOT_A_PAGE, image_pdf

    try:
        shape, pdf = image_pdf(data)
    except PdfParseError as exc:
        warnings.append(f"{document.source_ref}: the {media} image could not be read "
                        f"({exc.code}): kept unread, filed without its report entry")
        return []
    if pdf is None:
        warnings.append(f"{document.source_ref}: {IMAGE_NOT_A_PAGE}: the {media} image "
                        f"({shape.shape}) is not shaped as a document page (a photograph, a "
                        "drawing, a thumbnail): kept unread, filed without its report entry")
        return []
    return pdf_report_entries(document, pdf, source, warnings, what=f"{media} image")


def pdf_report_entries(document: Entry, pdf: bytes, source: str | tuple[str, ...],
                       warnings: list[str], what: str = "PDF") -> list[Entry]:
    """The report read from a PDF a document carries (an HL7 ED, a CDA nonXMLBody): the same
    path as a PDF received as a file (text layer or OCR, then the report's fields), filed
    under the document. The message's or document's identity is the one that counts; a PDF
    that cannot be read leaves the document filed, with a warning. The lab results a lab's
    PDF report gives when received as a file (normalizers/lab_pdf.py) are not taken from a
    PDF a structured document carries: the document's own coded results are the sender's,
    and the PDF is their rendering (read again, they would file a second, guessed copy)."""
    from normalizers.report import normalize_report
    from parsers.pdf import PdfParseError, parse_pdf

    where = document.source_ref
    try:
        parsed = parse_pdf(pdf)
        report = normalize_report(parsed, pdf, source if isinstance(source, str)
                                  else source[0])
    except (PdfParseError, NormalizationError) as exc:
        warnings.append(f"{where}: the {what} could not be read ({exc.code}); the document is "
                        "filed without its report entry")
        return []
    out = []
    for entry in report.entries:
        if entry.type == LAB_RESULT:
            continue
        entry.details.pop("lab_results", None)
        entry.key = f"{document.key}|report"
        entry.parent_key = document.key
        entry.source_ref = f"{where} ({'PDF' if what == 'PDF' else 'image'})"
        entry.masking = dict(document.masking)
        if document.status == PRELIMINARY:
            # a draft's report is a draft (TXA-17 DI/IP/IN/PA with TXA-19 AV, OBX-11 P): it
            # was filed final, read as a signed report beside its preliminary document;
            # the signed version's report, final, is a new version of it
            entry.status = PRELIMINARY
            entry.details[DOCUMENT_STATUS_DETAIL] = True  # a status change carries it along
        out.append(entry)
    return out


def embedded_entries(document: Entry, source: str | tuple[str, ...],
                     mappings: CodeMappings | None, warnings: list[str],
                     zone: str | None = None) -> list[Entry]:
    """The coded entries of a CDA carried in an OBX: the same extraction as a CDA received as
    a file (normalizers/cda/), so the same document by both channels files the same
    entries once. A body that cannot be read leaves the document filed, with a warning."""
    if document.attachment is None or "cda" not in document.details:
        return []
    from normalizers.cda import body_entries, level1_body_entries
    from parsers.cda import CdaParseError, parse_cda

    try:
        parsed = parse_cda(document.attachment.data)
    except CdaParseError as exc:
        warnings.append(f"{document.source_ref}: the CDA body could not be read "
                        f"({exc.code}); the document is filed without its coded entries")
        return []
    found = body_entries(parsed, document_key=document.key, source=source,
                         mappings=mappings, warnings=warnings, zone=zone, document=document)
    level1 = level1_body_entries(parsed, document, source, warnings)
    for entry in level1:  # where the carried document holds it, as its other entries say
        entry.source_ref = f"{parsed.non_xml_body.path} (PDF)"  # type: ignore[union-attr]
    return found + level1


def ei_id(msg: Message, rep: str, namespace: str = "", facility: str = "") -> str:
    """An EI (entity id ^ namespace ^ universal id ^ type) as one id text: 'universal^entity'
    when a universal id (OID root) is given, like a CDA II; the entity id read as a CDA II
    when it is one written 'root.extension' (``dotted_ii``); else 'entity|namespace', the
    number scoped by the application that assigned it (EI.2, else ``namespace``), as an
    ORU's document is keyed by its order number and namespace.

    Why the namespace: a document number is unique only within the application that gave it.
    Keyed by the number alone, the MDM^T04 of one hospital's DPI ('100234^DPI-Z') withdrew
    the report an imaging centre had filed as '100234^RIS-Y' in the same dossier, and its
    T02 filed a new version of it.

    A namespace with no universal id is only defined locally (v2.5 2.A.30): it is scoped by
    the sending facility ``facility`` (MSH-4), 'CR-100|RIS@IMAGERIE-EST', as namespace-only
    patient identifier authorities are (``identity.scoped_authority``). Two imaging centres
    both numbering their reports 'CR-100^RIS' had one key: the second's report filed as a
    new version of the first's, its T11 withdrawing the other's. A sender scope ('&APP^FAC',
    ``sender_scope``) names its facility already."""
    c = comps(msg, rep)
    entity, universal = sub(msg, part(c, 1), 1), sub(msg, part(c, 3), 1)
    if universal and entity:
        return f"{universal}^{entity}"
    if not entity:
        # '^RIS-Y^1.2.250.1.71.4.2.2^ISO': EI.2 to EI.4 name the assigning authority (its
        # namespace and OID), and no number it gave: no document id, as '^RIS-Y' is none.
        # Read as the OID, every report of that RIS had one key, each filed as a new
        # version of the one before and hiding it. A universal id alone is kept (an id
        # written as a CDA II's root alone)
        return "" if sub(msg, part(c, 2), 1).strip() else universal
    read = dotted_ii(entity)
    own = sub(msg, part(c, 2), 1).strip()
    if read == entity and _OID.fullmatch(own):
        # the OID root in EI.2 instead of EI.3 ('A7102^1.2.250.1.71.4.2.2.1204'): the CDA
        # id it is, so that a deletion without the CDA finds the document filed under it
        return f"{own}^{entity}"
    namespace = own or namespace
    if namespace and not namespace.startswith("&"):
        namespace = scoped_authority(namespace, facility)
    return f"{entity}|{namespace}" if read == entity and namespace else read


_OID = re.compile(r"[0-2](?:\.(?:0|[1-9][0-9]*)){2,}")


def sender_scope(msg: Message) -> str:
    """The namespace of a bare document number (no EI.2 nor EI.3): the application and
    facility that sent it ('&DPI-Z^CHU-NANTES', MSH-3^MSH-4, as ``normalizers.lab.order_scope``
    scopes a bare order number); '' when the message names no sender.

    Why: a bare TXA-12 '100234' was keyed 'document|100234', and a bare OBR-3 document
    'document|100234||1': a hospital's MDM^T11 for its 100234 withdrew the report an imaging
    centre had filed under its own 100234 in the same dossier, and its T02 became a new
    version of it. The '&' marks the scope as the sender's, not a namespace the sender gave:
    ``dossiers.deposit`` follows what the same sender filed under the bare key before."""
    sender = msg.sender
    return "" if sender == "|" else "&" + sender.replace("|", "^")


def ei_namespace(msg: Message, rep: str) -> str:
    """EI.2, the namespace of an EI (the application that assigned the number)."""
    return sub(msg, part(comps(msg, rep), 2), 1).strip()


def number_of(doc_id: str) -> str:
    """The sender's own number in a document id made by ``ei_id`` (its namespace dropped)."""
    return doc_id.partition("|")[0]


# An OID (at least three arcs), then a '.' and something no OID arc can be (not all digits).
_DOTTED_II = re.compile(r"([0-2](?:\.(?:0|[1-9][0-9]*)){2,})\.([^.]*[^0-9.][^.]*(?:\..*)?)")


def dotted_ii(text: str) -> str:
    """A document id written as the CDA's root and extension joined by '.' (the ANS MDM
    examples' TXA-12 '1.2.250.1.71.4.2.2.120456789.A71024000081' for the ClinicalDocument/id
    root 1.2.250.1.71.4.2.2.120456789, extension A71024000081) as the document key writes a
    CDA II, 'root^extension'. A message whose payload is no readable CDA (a T04 deletion, a
    placeholder) was keyed otherwise than the same document received with its CDA, and its
    deletion or replacement found nothing to act on. Unchanged when the text cannot be an
    OID and an extension (an OID alone, a local number)."""
    m = _DOTTED_II.fullmatch(text.strip())
    return f"{m.group(1)}^{m.group(2)}" if m else text


def parent_on_root(msg: Message, txa: Segment, doc_id: str, parent_id: str,
                   warnings: list[str]) -> str:
    """TXA-13 read on TXA-12's CDA root when the parent's number is that root and its
    extension run together, the '.' between them left out: the ANS MDM replacement example
    (v2.0) sends TXA-12 '1.2.250.1.71.4.2.2.120456789.A71024000082' and TXA-13
    '1.2.250.1.71.4.2.2.120456789A71024000081'. Read alone, the parent was the id
    '1.2.250.1.71.4.2.2^120456789A71024000081', a document nobody filed: the replacement
    replaced nothing and both versions stayed current. A replacement and its parent are
    documents of one application, under one root: the parent is read on it, with a warning.
    ``parent_id`` unchanged otherwise (a parent under another root, an EI.3 given)."""
    root = doc_id.partition("^")[0] if "^" in doc_id else ""
    c = comps(msg, first_rep(msg, txa, 13))
    entity = sub(msg, part(c, 1), 1).strip()
    if not root or not _OID.fullmatch(root) or sub(msg, part(c, 3), 1).strip() \
            or parent_id.startswith(root + "^") or not entity.startswith(root):
        return parent_id
    rest = entity[len(root):]
    if not rest or "." in rest or "^" in rest or rest.isdigit():
        return parent_id  # a longer OID, its own dotted id: no extension run into it
    warnings.append(f"{loc(txa, 13)}: the parent document number runs the CDA root of "
                    "TXA-12 and an extension together (no '.' between them): read as that "
                    "root and extension")
    return f"{root}^{rest}"


def parent_under_root(msg: Message, txa: Segment, doc_id: str, parent_id: str,
                      warnings: list[str]) -> str:
    """TXA-13 read under TXA-12's assigning authority when the parent number is sent bare
    (no EI.3, EI.2 empty or TXA-12's own) and TXA-12 names one (EI.3, an OID in EI.2, or
    the 'root.extension' of a CDA id): 'CR-101^RIS-Y^1.2.250.1.71.4.2.2^ISO' replacing
    'CR-100'. A parent document is one of the same application's (v2.5 9.6.1.13), and its
    number was filed under that root ('1.2.250.1.71.4.2.2^CR-100'); read as 'CR-100|RIS-Y',
    the replacement replaced a document nobody filed, and both versions stayed current.
    ``parent_id`` unchanged otherwise (a parent with its own root, another namespace)."""
    root, caret, _ = doc_id.partition("^")
    c = comps(msg, first_rep(msg, txa, 13))
    entity = sub(msg, part(c, 1), 1).strip()
    own, said = sub(msg, part(c, 2), 1).strip(), ei_namespace(msg, first_rep(msg, txa, 12))
    if not caret or "|" in doc_id or not root or not entity or sub(msg, part(c, 3), 1).strip() \
            or dotted_ii(entity) != entity or parent_id.startswith(root + "^") \
            or (own and own.upper() != said.upper()):
        return parent_id
    warnings.append(f"{loc(txa, 13)}: parent document number sent without the assigning "
                    "authority TXA-12 names (EI.3): read as one of TXA-12's")
    return f"{root}^{entity}"


def sender_performer(msg: Message) -> str | None:
    """The sender named by a PRT segment with role SB (CI-SIS), as a person name."""
    for prt in msg.all("PRT"):
        if text(msg, part(comps(msg, first_rep(msg, prt, 4)), 1)).upper() == "SB":
            return person_name(msg, first_rep(msg, prt, 5)) or None
    return None


# -- MDM ------------------------------------------------------------------------------------
def normalize_mdm(msg: Message, source: str,
                  mappings: CodeMappings | None = None) -> NormalizedMessage:
    """MDM^T02 (new), T10 (replace), T04 (delete under CI-SIS; elsewhere a status change
    with content: a new version), T06 (an addendum: a new document), T08 (edit: a new
    version), T11 (cancel: delete, with or without content); the notifications T01, T03, T05,
    T07 and T09 read as their trigger with content when they carry a document
    (tables/mdm_triggers.csv); a T03 without content stating TXA-17 is a status change of
    the document held (``_status_change``). A document its sender says is not for patient
    care yet is held back (``check_available``). One DOCUMENT entry per ED OBX, else one
    for the text lines."""
    warnings: list[str] = []
    lid = logical_id(msg)
    pid = single_pid(msg)
    identity = extract_identity(msg, pid)
    death = feeding_pid_death(msg, pid, identity.birth_date, warnings)
    txa = msg.first("TXA")
    if txa is None:
        raise NormalizationError("MDM_NO_TXA", "the MDM message has no TXA segment", "TXA")
    cisis = is_cisis(msg)
    scope = sender_scope(msg)  # of a bare number (no EI.2, EI.3): see sender_scope
    facility = msg.sender.partition("|")[2]  # MSH-4: the scope of a namespace-only number
    doc_id = ei_id(msg, first_rep(msg, txa, 12), scope, facility)  # '' refused unless a CDA id
    orc = msg.first("ORC")
    ctx = DocumentContext(
        source=source, mappings=mappings, fallback_id=doc_id, fallback_is_slot=False,
        # a parent number sent without its namespace is one of the same application's
        parent_id=ei_id(msg, first_rep(msg, txa, 13),
                        ei_namespace(msg, first_rep(msg, txa, 12)) or scope, facility),
        action_sources=[trigger_source(msg, cisis),
                        order_control_source(msg, orc, cisis, warnings)],
        effective=ts_field(msg, txa, 4) or ts_field(msg, txa, 6), issued=ts_field(msg, txa, 6),
        performer=person_name(msg, first_rep(msg, txa, 9)) or sender_performer(msg)
        or person_name(msg, first_rep(msg, txa, 22)) or None,
        details=_txa_details(msg, txa), fallback_where=loc(txa, 12),
        parent_where=loc(txa, 13))
    ctx.parent_id = parent_on_root(msg, txa, doc_id, ctx.parent_id, warnings)
    ctx.parent_id = parent_under_root(msg, txa, doc_id, ctx.parent_id, warnings)
    txa_status_sources(msg, txa, ctx, warnings)
    ctx.document_type = loinc_document_type(msg, txa)
    if ctx.parent_id and is_addendum(msg):  # a document of its own, that adds to its parent
        ctx.details["addendum_to"] = f"document|{ctx.parent_id}"
    meta = MessageMeta()
    quarantine: list[str] = [refused] if (refused := feeding_refused(msg)) else []
    entries: list[Entry] = []
    others: list[dict[str, str]] = []
    lines: list[Segment] = []  # text OBX (TX, FT, ST): the document when no ED carries one
    obxs = msg.all("OBX")
    kinds = [classify_obx(msg, obx) for obx in obxs]
    cut = continuations(msg, obxs, kinds, warnings)
    pieced = {id(o) for p in cut.values() for o in p.segments}
    for n, (obx, kind) in enumerate(zip(obxs, kinds, strict=True)):
        if id(obx) in pieced:
            continue
        if kind == OBX_DOCUMENT:
            entry = document_entry(msg, obx, ctx, identity, cisis, warnings, quarantine,
                                   pieces=cut.get(n))
            _unique_key(entry, entries, obx, warnings)
            entries.append(entry)
        elif kind == OBX_RESULT:
            vtype = text(msg, obx.fields[2] if len(obx.fields) > 2 else "")
            if vtype.upper() in TEXT_DOCUMENT_TYPES:
                lines.append(obx)
            c3 = comps(msg, first_rep(msg, obx, 3))
            others.append({"code": text(msg, part(c3, 1)), "system": text(msg, part(c3, 3)),
                           "value_type": vtype, "value": text(msg, first_rep(msg, obx, 5))})
        else:
            collect_meta(msg, obx, meta, warnings)
    if not entries and lines:
        # v2.5 9.6: the document's text sent one line per OBX (TX, FT), as transcription and
        # radiology systems do: that text is the document (it was refused, MDM_NO_DOCUMENT)
        entries.append(document_entry(msg, lines[0], ctx, identity, cisis, warnings,
                                      quarantine, body=text_body(msg, lines)))
        others = [o for o, obx in zip(others, _result_obx(msg, pieced), strict=True)
                  if obx not in lines]
    if not entries and (msg.message_type[1].strip().upper() == CANCEL
                        or decide_action(ctx.action_sources) == ACTION_DELETE):
        # T11, or a status change whose TXA-19 says CA: the document TXA-12 names is withdrawn
        entries.append(_cancelled(msg, txa, ctx))
    elif not entries and (changed := _status_change(msg, txa, ctx)) is not None:
        entries.append(changed)  # T03: the held document, in the status TXA-17 says
    else:
        mdm_trigger_checks(msg, bool(entries), warnings)
        _status_with_content(msg, ctx, entries)
    held_back = not_available(ctx, entries)
    referenced = [obx for obx, kind in zip(obxs, kinds, strict=True) if kind == OBX_RESULT
                  and text(msg, obx.fields[2] if len(obx.fields) > 2 else "").upper() == "RP"]
    if not entries and referenced:
        where = loc(referenced[0], 5)
        raise NormalizationError("MDM_REFERENCE_ONLY", f"{where}: the document is only pointed "
                                 "at (OBX-2 RP, a URL or a file of the sender): it is never "
                                 "fetched; send it in an OBX of type ED", where)
    if not entries:
        raise NormalizationError("MDM_NO_DOCUMENT", "the MDM message carries no document (no "
                                 "OBX of type ED, nor text lines TX, FT or ST)", "OBX")
    warnings.extend(reference_warning(obx) for obx in referenced)
    if others:
        meta.details["observations"] = others
    add_embedded_entries(entries, source, mappings, warnings, msg.zone)
    apply_meta(entries, meta, warnings)
    normalized = NormalizedMessage(logical_id=lid, identity=identity, entries=entries,
                                   warnings=identity.warnings + warnings,
                                   quarantine_reasons=quarantine, death=death)
    if held_back is not None:
        # read whole first: what it would file is kept for its release (pipelines/held.py)
        raise HeldBack(held_back.code, str(held_back), held_back.location, normalized)
    return normalized


TEXT_DOCUMENT_TYPES = frozenset({"TX", "FT", "ST"})
TEXT_MEDIA_TYPE = "text/plain"


def text_body(msg: Message, lines: list[Segment]) -> Attachment:
    """The text of a document sent one line per OBX: each OBX-5 repetition a line (escapes
    read: \\.br\\ breaks a line), an empty OBX an empty line, in message order; UTF-8."""
    out = []
    for obx in lines:
        out.extend(unescaped(msg, r).rstrip() for r in reps(msg, obx, 5) or [""])
    return Attachment(data="\n".join(out).strip("\n").encode("utf-8"),
                      media_type=TEXT_MEDIA_TYPE)


def _result_obx(msg: Message, pieced: set[int]) -> list[Segment]:
    """The OBX that ``normalize_mdm`` lists as observations, in the same order (``pieced``:
    ids of the OBX read as pieces of a document)."""
    return [obx for obx in msg.all("OBX")
            if id(obx) not in pieced and classify_obx(msg, obx) == OBX_RESULT]


def _cancelled(msg: Message, txa: Segment, ctx: DocumentContext) -> Entry:
    """MDM^T11 (or a message whose TXA-19 says CA): the document TXA-12 names is withdrawn;
    the message carries no content."""
    if not ctx.fallback_id:
        _no_document_number(ctx)
    key = f"document|{ctx.fallback_id}"
    return Entry(type=DOCUMENT, key=key, source_ref=loc(txa), status="entered-in-error",
                 effective=ctx.effective, issued=ctx.issued, performer=ctx.performer,
                 action=ACTION_DELETE, replaces_key=key, details=dict(ctx.details))


def _status_change(msg: Message, txa: Segment, ctx: DocumentContext) -> Entry | None:
    """MDM^T03 without content (v2.5 9.3.3, 'a document is authenticated': its TXA-17 goes
    from pre-authenticated to authenticated): the document TXA-12 names, in the status its
    TXA-17 says (final, or preliminary), no content; deposit makes it a new version of the
    document held with that content (nothing is filed when none is held). It was refused
    as a notification only (MDM_NOTIFICATION_ONLY): a report filed preliminary stayed a
    draft in the dossier after its author signed it. None when the trigger is no status
    change, or TXA-17 states no status (empty, unknown, 'CA')."""
    trigger = _mdm_triggers().get(msg.message_type[1].strip().upper())
    completion = _txa_statuses().get(("17", id_code(msg, txa, 17)))
    if trigger is None or trigger["status_only"] != "yes" or completion is None \
            or completion["care"] not in ("yes", "if_available") \
            or decide_action(ctx.action_sources) != ACTION_NEW:
        return None
    if not ctx.fallback_id:
        _no_document_number(ctx)
    return Entry(type=DOCUMENT, key=f"document|{ctx.fallback_id}", source_ref=loc(txa),
                 status=ctx.completion_status or "final", effective=ctx.effective,
                 issued=ctx.issued, performer=ctx.performer, action=ACTION_NEW,
                 details={**ctx.details, STATUS_CHANGE_DETAIL: True})


def _status_with_content(msg: Message, ctx: DocumentContext, entries: list[Entry]) -> None:
    """Mark the documents of a status change sent with its content (MDM^T04 outside CI-SIS,
    a T03 carrying the document; read as new versions of the documents held): deposit gives
    their new status to the other documents filed under the same number. Why: an MDM^T04
    re-sending the signed PDF rendering (TXA-17 LA) of a number filed as a CDA and its PDF
    made the PDF final and left the CDA preliminary beside it."""
    row = _mdm_triggers().get(msg.message_type[1].strip().upper())
    if row is None or row["read_as"] != STATUS_CHANGE \
            or decide_action(ctx.action_sources) != ACTION_NEW:
        return
    for entry in entries:
        if entry.type == DOCUMENT and entry.action == ACTION_NEW:
            entry.details[STATUS_CONTENT_DETAIL] = True


@cache
def _txa_statuses() -> dict[tuple[str, str], dict[str, str]]:
    return {(row["field"], row["code"]): row for row in table("txa_statuses")}


def txa_status_sources(msg: Message, txa: Segment, ctx: DocumentContext,
                       warnings: list[str]) -> None:
    """TXA-17 and TXA-19 on the document (tables/txa_statuses.csv): a completion status
    short of authenticated (dictated, in progress, pre-authenticated) makes a final OBX a
    preliminary document, and an availability 'CA' (deleted) withdraws the document, as a
    status change notification says it, as does a completion status 'CA' (canceled) (both
    were kept in details and the document filed final and current). TXA-18 masks the
    document in ``apply_meta``; a code of no table is said here. Whether the document may
    be read for care (column care) is kept in ``ctx.held_back`` for ``check_available``."""
    completion = id_code(msg, txa, 17)
    row17 = _txa_statuses().get(("17", completion))
    if completion and row17 is None:
        warnings.append(f"{loc(txa, 17)}: document completion status {completion[:6]!r} is "
                        "not of HL7 table 0271: the document is read as authenticated")
    if row17 is not None and row17["status"]:
        ctx.completion_status = row17["status"]
    if row17 is not None and row17["action"]:
        # 'CA' (canceled, table 0271 since v2.6): the document is withdrawn, as TXA-19 'CA'
        # says it; it was filed current and final
        ctx.action_sources.append(ActionSource(loc(txa, 17), completion, row17["action"]))
    confidentiality = id_code(msg, txa, 18)
    if confidentiality and confidentiality_masking(confidentiality) is None:
        warnings.append(f"{loc(txa, 18)}: document confidentiality status "
                        f"{confidentiality[:6]!r} is not of HL7 table 0272 (V, R, U): it "
                        "masks nothing")
    availability = id_code(msg, txa, 19)
    row19 = _txa_statuses().get(("19", availability))
    if availability and row19 is None:
        warnings.append(f"{loc(txa, 19)}: document availability status {availability[:6]!r} "
                        "is not of HL7 table 0273: it says nothing of the document")
    if row19 is not None and row19["action"]:
        ctx.action_sources.append(ActionSource(loc(txa, 19), availability, row19["action"]))
    if row19 is not None and row19["care"] == "no":
        # UN, OB: filed current (with a warning), a professional read a document its sender
        # says is not for patient care (a draft, a replaced version) as any other
        ctx.held_back = (loc(txa, 19), f"the document is sent as {row19['meaning']} "
                                       f"({availability})")
    elif row17 is not None and row17["care"] == "if_available" \
            and (row19 is None or row19["care"] != "yes"):
        # v2.5 9.6.1.19: a document is used for care before it is authenticated only when
        # TXA-19 says AV; a dictated report without it was filed as a preliminary version
        ctx.held_back = (loc(txa, 17), f"the document is {row17['meaning']} ({completion}), "
                                       "not authenticated, and TXA-19 does not make it "
                                       "available for patient care (AV)")


def not_available(ctx: DocumentContext, entries: list[Entry]) -> NormalizationError | None:
    """MDM_NOT_AVAILABLE (raised by ``normalize_mdm`` as HeldBack once the message is read
    whole, with what it would file): the sender says its document is not for patient care
    yet (TXA-19 UN or OB, or TXA-17 short of authenticated without TXA-19 AV): nothing is
    filed, and a version the dossier holds stays as it is. The document is filed when the
    sender sends it available (MDM^T04 or T08 with its content, TXA-17 AU/LA, or TXA-19 AV:
    then a preliminary version the authenticated one replaces), or says it is signed (an
    MDM^T03: pipelines/held.py). A cancel or a deletion is not held back: it withdraws,
    whatever the status of what it withdraws."""
    if ctx.held_back is None or all(e.action == ACTION_DELETE for e in entries):
        return None
    where, why = ctx.held_back
    return NormalizationError(
        "MDM_NOT_AVAILABLE", f"{where}: {why}: not for patient care yet, nothing filed (the "
        "document is filed once sent available, with its content: MDM^T04 or T08, or once "
        "its signature is announced: MDM^T03)", where)


_LOINC_FORM = re.compile(r"\d{1,7}-\d")


def loinc_document_type(msg: Message, txa: Segment) -> tuple[str, str] | None:
    """(code, display) of TXA-2 when it is a LOINC code: sent under a LOINC system, or
    without a system in LOINC's form with its check digit (the CI-SIS examples write TXA-2
    '18748-4' alone); None for the HL7 table 0270 codes ('DI', 'CR^Compte rendu^L')."""
    c = comps(msg, first_rep(msg, txa, 2))
    code, display, system = (sub(msg, part(c, k), 1).strip() for k in (1, 2, 3))
    if not code:
        return None
    if is_loinc(code, system) or (not system and _LOINC_FORM.fullmatch(code)
                                  and not loinc_check_fails(code)):
        return code, display
    return None


def _txa_details(msg: Message, txa: Segment) -> dict[str, Any]:
    # TXA-17/18/19 are ID fields; engines writing every coded field as a CWE send
    # 'V^Very restricted^HL70272': read whole, a very restricted document was filed unmasked
    # and a dictated one ('DI^Dictated^HL70271') final (``id_code``: the first component)
    out = {"document_type": text(msg, part(comps(msg, first_rep(msg, txa, 2)), 1)),
           "completion_status": id_code(msg, txa, 17),
           "confidentiality_status": id_code(msg, txa, 18),
           "availability_status": id_code(msg, txa, 19)}
    return {k: v for k, v in out.items() if v}


def _unique_key(entry: Entry, entries: list[Entry], obx: Segment, warnings: list[str]) -> None:
    """Two documents of one message with the same key would collapse into one: the later one
    gets its OBX set id appended (stable: the same message always gives the same keys)."""
    keys = {e.key for e in entries}
    if entry.key in keys:
        set_id = obx.fields[1] if len(obx.fields) > 1 and obx.fields[1] else str(obx.index)
        entry.key = f"{entry.key}|{set_id}"
        if entry.replaces_key and entry.action == ACTION_DELETE:
            entry.replaces_key = entry.key
        warnings.append(f"{loc(obx)}: same document id as an earlier OBX, key made unique")
