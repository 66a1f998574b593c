"""CDA R2 parsing: bytes of one document -> a faithful Document (no business rules).

Typical use::

    doc = parse_cda(raw)                     # may raise CdaParseError (code, message, location)
    doc.header.id.key, doc.header.code.code  # document id, type (LOINC)
    for section, act in iter_acts(doc):      # every clinical statement, nested ones included
        ...

The parse is hardened against hostile input (see reader.py): size and depth limits, no DTD,
no entity expansion, no file or network access. Documents wrapped in the CI-SIS
self-presenting XSL envelope are read as the CDA they carry (``Document.envelope``).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator

from parsers.cda.document import build_document
from parsers.cda.errors import (
    CDA_BLANKS_BEFORE_DECLARATION,
    CDA_ENCODING_MISMATCH,
    CDA_HTML_ENTITY,
    CDA_UTF16_WITHOUT_BOM,
    ERROR_CODES,
    CdaParseError,
    ParseWarning,
)
from parsers.cda.model import (
    CD,
    ED,
    II,
    IVL,
    PQ,
    ClinicalStatement,
    Document,
    Entry,
    Header,
    NonXmlBody,
    Observation,
    Organizer,
    Section,
    SubstanceAdministration,
    Value,
)
from parsers.cda.reader import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_DEPTH,
    DEFAULT_MAX_ELEMENTS,
    add_missing_utf16_bom,
    html_entities_as_characters,
    read_root,
    skip_blanks_before_declaration,
    undefined_entity,
    utf8_under_another_label,
)

__all__ = ["CD", "DEFAULT_MAX_BYTES", "DEFAULT_MAX_DEPTH", "DEFAULT_MAX_ELEMENTS", "ED",
           "ERROR_CODES", "II", "IVL", "PQ", "CdaParseError", "ClinicalStatement", "Document",
           "Entry", "Header",
           "NonXmlBody", "Observation", "Organizer", "ParseWarning", "Section",
           "SubstanceAdministration", "Value", "iter_acts", "iter_sections", "parse_cda"]


def parse_cda(data: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES,
              max_depth: int = DEFAULT_MAX_DEPTH,
              max_elements: int = DEFAULT_MAX_ELEMENTS) -> Document:
    """Parse one CDA R2 document.

    ``max_bytes`` bounds the input (CDA_TOO_LARGE before anything is parsed); ``max_depth``
    the element nesting (CDA_TOO_DEEP; libxml2 caps it at 256 anyway); ``max_elements`` the
    number of elements (CDA_TOO_MANY_ELEMENTS). Raises CdaParseError
    only: CDA_NOT_XML, CDA_NOT_CDA, CDA_DTD_FORBIDDEN, CDA_TOO_LARGE, CDA_TOO_DEEP,
    CDA_TOO_MANY_ELEMENTS,
    CDA_BAD_BASE64. Oddities that do not prevent reading are in ``Document.warnings``
    (an empty body is one of them: CDA_NO_BODY)."""
    blanks = no_bom = False
    mislabelled: str | None = None
    if isinstance(data, bytes):
        data, no_bom = add_missing_utf16_bom(data)
        data, blanks = skip_blanks_before_declaration(data)
        if len(data) <= max_bytes:
            data, mislabelled = utf8_under_another_label(data)
    html_entities: list[str] = []
    try:
        root, envelope = read_root(data, max_bytes=max_bytes, max_depth=max_depth,
                                   max_elements=max_elements)
    except CdaParseError as exc:
        # only after a failure on it: a well-formed document pays nothing
        repaired = html_entities_as_characters(data) if isinstance(data, bytes) and \
            undefined_entity(exc) else None
        if repaired is None:
            raise
        data, html_entities = repaired
        first = exc.location
        root, envelope = read_root(data, max_bytes=max_bytes, max_depth=max_depth,
                                   max_elements=max_elements)
    # The walk allocates thousands of small objects (a lab report's Document holds ~5,000) and
    # no reference cycles: the cyclic GC would only rescan them, several times per document
    # (~10% of the time). It is paused for the walk and resumed after, unless the caller had
    # it off already; refcounting still frees everything as usual.
    if not gc.isenabled():
        document = build_document(root, envelope)
    else:
        gc.disable()
        try:
            document = build_document(root, envelope)
        finally:
            gc.enable()
    if html_entities:
        names = ", ".join(f"&{n};" for n in html_entities[:5])
        document.warnings.insert(0, ParseWarning(
            CDA_HTML_ENTITY, f"HTML entity references XML does not define ({names}"
            f"{', ...' if len(html_entities) > 5 else ''}): read as the characters they "
            "name", first))
    if mislabelled:
        document.warnings.insert(0, ParseWarning(
            CDA_ENCODING_MISMATCH, f"the XML declaration names {mislabelled[:20]!r} but the "
            "bytes are UTF-8: read as UTF-8",
            "line 1"))
    if blanks:
        document.warnings.insert(0, ParseWarning(
            CDA_BLANKS_BEFORE_DECLARATION, "blank characters before the XML declaration "
            "(not allowed by XML): skipped", "line 1"))
    if no_bom:
        document.warnings.insert(0, ParseWarning(
            CDA_UTF16_WITHOUT_BOM, "UTF-16 without its byte order mark (required by XML): "
            "read in the byte order of its first characters", "line 1"))
    return document


def iter_sections(document: Document) -> Iterator[Section]:
    """Every section, subsections included, in document order."""
    stack = list(reversed(document.sections))
    while stack:
        section = stack.pop()
        yield section
        stack.extend(reversed(section.sections))


def iter_acts(document: Document) -> Iterator[tuple[Section, ClinicalStatement]]:
    """(section, statement) for every clinical statement in document order: the entries'
    statements, then, depth first, what they contain (organizer components and
    entryRelationship targets). The section is the innermost one holding the entry.
    Preconditions (criteria) are not clinical statements and are not yielded."""
    for section in iter_sections(document):
        for entry in section.entries:
            if entry.act is not None:
                yield from _act_tree(section, entry.act)


def _act_tree(section: Section,
              act: ClinicalStatement) -> Iterator[tuple[Section, ClinicalStatement]]:
    stack = [act]
    while stack:
        current = stack.pop()
        yield section, current
        nested: list[ClinicalStatement] = []
        if isinstance(current, Organizer):
            nested.extend(current.components)
        nested.extend(er.act for er in current.entry_relationships if er.act is not None)
        stack.extend(reversed(nested))
