"""The header of a CDA R2 document carried inside an HL7v2 message (ids, type, versions).

Why a separate, tiny reader: the normalizer only needs the header to key the document
(ClinicalDocument/id), to know which version it replaces (relatedDocument RPLC) and to check
the patient; the full CDA parser (parsers/cda) is for CDA inputs. The payload comes from a
sender, so the parse is hardened (no entities, no DTD, no network, no huge trees) and it
stops at the body (``component``): a 500 kB level-1 document with its PDF costs nothing more
than its header.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from lxml import etree

from normalizers.tabledata import table

V3 = "urn:hl7-org:v3"
_ROOT = f"{{{V3}}}ClinicalDocument"
# CI-SIS self-presenting form ("document autoprésentable"): an XSL stylesheet whose
# data:Contenu child holds the ClinicalDocument (as parsers/cda/reader.py reads it)
_XSL_ROOT = "{http://www.w3.org/1999/XSL/Transform}stylesheet"
_CISIS_CONTENT = "{urn:asip-sante:ci-sis}Contenu"
_CHUNK = 16384
_PARSER_OPTIONS: dict[str, Any] = {
    "resolve_entities": False,
    "no_network": True,
    "load_dtd": False,
    "huge_tree": False,
}
_HEADER = {"id", "setId", "versionNumber", "code", "title", "effectiveTime",
           "confidentialityCode", "languageCode"}


def hardened_parser() -> etree.XMLParser:
    """The parser options every CDA read in this package uses."""
    return etree.XMLParser(**_PARSER_OPTIONS)


@dataclass(slots=True)
class CdaHeader:
    id_root: str = ""
    id_extension: str = ""
    set_id: str = ""  # root^extension
    version_number: str = ""
    code: str = ""
    code_system: str = ""
    code_display: str = ""
    title: str = ""
    effective_time: str = ""  # as in the document (HL7 TS form)
    confidentiality_code: str = ""
    language_code: str = ""
    related: list[tuple[str, str]] = field(default_factory=list)  # (typeCode, parent id)
    patient_ids: list[tuple[str, str]] = field(default_factory=list)  # (root, extension)

    @property
    def document_id(self) -> str:
        return ii_key(self.id_root, self.id_extension)

    def replaced_id(self) -> str:
        """The parent document id of relatedDocument typeCode RPLC, '' when none."""
        for type_code, parent in self.related:
            if type_code == "RPLC" and parent:
                return parent
        return ""

    def as_details(self) -> dict[str, Any]:
        return {
            "id": self.document_id, "set_id": self.set_id, "version_number": self.version_number,
            "code": self.code, "code_system": self.code_system, "title": self.title,
            "effective_time": self.effective_time,
            "confidentiality_code": self.confidentiality_code,
            "language_code": self.language_code,
            "related": [{"type": t, "parent_id": p} for t, p in self.related],
        }


@cache
def _confidentiality() -> dict[str, dict[str, bool]]:
    flags = ("masque_ps", "invisible_patient", "invisible_rep_legaux")
    return {row["code"]: {f.upper(): True for f in flags if row[f] == "1"}
            for row in table("cda_confidentiality")}


def confidentiality_masking(code: str) -> dict[str, bool] | None:
    """The masking flags a CDA confidentialityCode means (tables/cda_confidentiality.csv:
    R and V mask the document to professionals), None for a code the table does not know."""
    found = _confidentiality().get(code.strip().upper())
    return dict(found) if found is not None else None


def ii_key(root: str, extension: str) -> str:
    """One text for an HL7 v3 II: 'root^extension', or 'root' alone."""
    return f"{root}^{extension}" if extension else root


_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


def looks_like_xml(data: bytes) -> bool:
    """Starts with '<' past a byte order mark and blanks: UTF-8, or UTF-16 with its BOM (a
    CDA a Windows sender wrote as 'Unicode' was 'not a CDA document')."""
    if data[:2] in _UTF16_BOMS:
        try:
            return data[:128].decode("utf-16", "ignore").lstrip("\ufeff \t\r\n") \
                .startswith("<")
        except UnicodeDecodeError:
            return False
    head = data[:64].lstrip(b"\xef\xbb\xbf \t\r\n")
    return head.startswith(b"<")


def read_cda_header(data: bytes) -> CdaHeader | None:
    """The header of a CDA document, None when ``data`` is not a CDA ClinicalDocument (also
    read inside the CI-SIS self-presenting XSL envelope, whose CDA is data:Contenu's)."""
    if not looks_like_xml(data):
        return None
    header = CdaHeader()
    path: list[str] = []
    tags: list[str] = []
    base = 0  # elements above the ClinicalDocument: 2 in the XSL envelope, else 0
    envelope = False
    try:
        for event, el in _events(data):
            if event == "start":
                tag = el.tag if isinstance(el.tag, str) else ""
                path.append(etree.QName(el).localname if tag else "")
                tags.append(tag)
                depth = len(path)
                if depth == 1 and tag != _ROOT:
                    if tag != _XSL_ROOT:
                        return None
                    envelope = True
                if envelope and not base:
                    if depth == 3 and tag == _ROOT and tags[1] == _CISIS_CONTENT:
                        base = 2
                    continue
                if depth - base == 2 and path[-1] == "component":
                    return header  # the body: everything we need is above it
                continue
            if not envelope or base:
                _on_end(el, path[base:], header)
            path.pop()
            tags.pop()
    except etree.XMLSyntaxError:
        return None
    return header if header.id_root or header.code else None


def _events(data: bytes) -> Iterator[tuple[str, Any]]:
    """Parse events, fed by chunks so that the caller can stop at the body."""
    parser = etree.XMLPullParser(events=("start", "end"), **_PARSER_OPTIONS)
    try:
        for pos in range(0, len(data), _CHUNK):
            parser.feed(data[pos:pos + _CHUNK])
            yield from parser.read_events()
        parser.close()
    except etree.XMLSyntaxError:
        # What was parsed before the fault still counts: a broken body after a sound
        # header is the body's problem (the full CDA parser reports it), not the key's.
        yield from parser.read_events()
        raise
    yield from parser.read_events()


def _on_end(el: etree._Element, path: list[str], header: CdaHeader) -> None:
    depth = len(path)
    name = path[-1]
    if depth == 2 and name in _HEADER:
        a = el.attrib
        if name == "id":
            header.id_root, header.id_extension = a.get("root", ""), a.get("extension", "")
        elif name == "setId":
            header.set_id = ii_key(a.get("root", ""), a.get("extension", ""))
        elif name == "versionNumber":
            header.version_number = a.get("value", "")
        elif name == "code":
            header.code = a.get("code", "")
            header.code_system = a.get("codeSystem", "")
            header.code_display = a.get("displayName", "")
        elif name == "title":
            header.title = " ".join("".join(el.itertext()).split())
        elif name == "effectiveTime":
            header.effective_time = a.get("value", "")
        elif name == "confidentialityCode":
            header.confidentiality_code = a.get("code", "")
        elif name == "languageCode":
            header.language_code = a.get("code", "")
    elif depth == 2 and name == "relatedDocument":
        parent = el.find(f"{{{V3}}}parentDocument/{{{V3}}}id")
        pid = ii_key(parent.get("root", ""), parent.get("extension", "")) if parent is not None \
            else ""
        header.related.append((el.get("typeCode", ""), pid))
    elif depth == 4 and name == "id" and path[1] == "recordTarget" and path[2] == "patientRole":
        header.patient_ids.append((el.get("root", ""), el.get("extension", "")))
