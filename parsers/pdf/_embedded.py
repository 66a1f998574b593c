"""The files a PDF carries (/EmbeddedFiles, PDF/A-3 associated files /AF), read through
pdfminer within the document's inflate budget (_inflate.py): an embedded stream is as able to
be a deflate bomb as a page's.

Why: French LIS and RIS producing PDF/A-3 attach the report's structured copy (a CDA R2, its
coded results) to the PDF they print; read, it gives what the printed page can only approach
(the producer's own codes, the INS). Only files that are CDA documents are kept (the
pipeline reads them through the CDA path); the others are counted, never read further.
Their names are not kept: they may name the patient.
"""

from __future__ import annotations

from pdfminer.pdftypes import PDFStream, resolve1
from pdfminer.psparser import PSLiteral

from parsers.detect import CDA, detect_format

from ._inflate import InflateLimit
from .model import EmbeddedFile

MAX_NAME_TREE_NODES = 1000  # a name tree of more nodes (or a cycle) is not walked further


def embedded_files(doc, max_bytes: int) -> tuple[list[EmbeddedFile], int]:  # noqa: ANN001
    """The CDA documents embedded in pdfminer's ``doc`` (in the order of the name tree, then
    of /AF), and how many other embedded files there are (not CDA, unreadable, or over
    ``max_bytes``). InflateLimit goes through (the caller's PDF_TOO_LARGE)."""
    specs = list(_file_specs(doc))
    found: list[EmbeddedFile] = []
    others = 0
    for spec in specs:
        try:
            file = _read(spec, max_bytes)
        except InflateLimit:
            raise
        except Exception:  # noqa: BLE001 (pdfminer raises anything on a broken stream)
            file = None
        if file is not None and detect_format(file.data) == CDA:
            found.append(file)
        else:
            others += 1
    return found, others


def _file_specs(doc) -> list[dict]:  # noqa: ANN001
    """The file specifications of the /EmbeddedFiles name tree and of the catalog's /AF,
    each once (by the object of its embedded stream)."""
    try:
        catalog = resolve1(doc.catalog) or {}
        names = resolve1(catalog.get("Names")) or {}
        tree = resolve1(names.get("EmbeddedFiles")) if isinstance(names, dict) else None
        roots = [resolve1(catalog.get("AF"))] if isinstance(catalog, dict) else []
    except Exception:  # noqa: BLE001 (a damaged catalog: no attachment read)
        return []
    specs: list[dict] = []
    seen: set[int] = set()
    stack, visited = ([tree] if isinstance(tree, dict) else []), 0
    ordered: list[object] = []
    while stack and visited < MAX_NAME_TREE_NODES:
        node = resolve1(stack.pop())
        visited += 1
        if not isinstance(node, dict):
            continue
        pairs = resolve1(node.get("Names")) or []
        if isinstance(pairs, list):
            ordered.extend(pairs[1::2])
        kids = resolve1(node.get("Kids")) or []
        if isinstance(kids, list):
            stack.extend(reversed(kids))
    for root in roots:
        if isinstance(root, list):
            ordered.extend(root)
    for ref in ordered:
        key = getattr(ref, "objid", None)
        spec = resolve1(ref)
        if not isinstance(spec, dict):
            continue
        ef = resolve1(spec.get("EF"))
        stream_ref = (ef.get("F") or ef.get("UF")) if isinstance(ef, dict) else None
        key = getattr(stream_ref, "objid", key)
        if key is not None and key in seen:
            continue
        if key is not None:
            seen.add(key)
        specs.append(spec)
    return specs


def _read(spec: dict, max_bytes: int) -> EmbeddedFile | None:
    """One file specification's embedded file, or None (no stream, or bigger than
    ``max_bytes`` by its declared /Length before inflating, or by its bytes after)."""
    ef = resolve1(spec.get("EF"))
    if not isinstance(ef, dict):
        return None
    stream = resolve1(ef.get("F") or ef.get("UF"))
    if not isinstance(stream, PDFStream):
        return None
    length = resolve1(stream.get("Length"))
    if isinstance(length, int) and length > max_bytes:
        return None
    data = stream.get_data()
    if not data or len(data) > max_bytes:
        return None
    return EmbeddedFile(data=bytes(data), media_type=_name(stream.get("Subtype")),
                        relationship=_name(spec.get("AFRelationship")))


def _name(value: object) -> str:
    """A PDF name as text ('text/xml' from /text#2Fxml), '' when none."""
    value = resolve1(value)
    if isinstance(value, PSLiteral):
        name = value.name
        return name.decode("latin-1") if isinstance(name, bytes) else str(name)
    return ""
