"""A parsed CDA R2 document (parsers/cda) -> one DOCUMENT entry and the coded entries of its body.

The document itself is kept whole (the original XML is the entry's attachment, so it stays
retrievable from the dossier) and every coded clinical statement of the structured body becomes
an entry of the same model as HL7v2 results, pointing at the document (``parent_key``):
results (LOINC, PQ/CD/ST/IVL values, UCUM units, interpretation, reference range, time),
problems (CIM-10), medications, allergies, vital signs, immunizations, procedures, encounters
(visits and stays: C-CDA Encounter Activity, IHE PCC / CI-SIS FR-Rencontre). The plain
narrative of each section goes to the document's ``details`` for display and search.

Keys: the document is ``document|<ClinicalDocument/id>``, as for a CDA carried in HL7v2, so
the same document by both channels is one document. A relatedDocument RPLC replaces the parent
id (dedupe level 3, history kept). Body entries are keyed by the document's setId (the same
across versions) and the statement's own id when it has one, else its position, so that a new
version of the document supersedes them statement by statement.

Identity: recordTarget/patientRole/id under an INS OID (1.2.250.1.213.1.4.8, test .10, demo
.11...) is the INS; CI-SIS only lets a qualified INS into a document, so it is trusted as
PID-32 = VALI would be. Other ids are the producer's local ids (root = authority).
Masking: confidentialityCode through ``tables/cda_confidentiality.csv``.
"""

from __future__ import annotations

import gc

from normalizers.cda.body import fit_free_text, normalize_structured, structured_body_entries
from normalizers.cda.common import BODY_TEXT_CAP, MEDIA_PDF, is_placeholder
from normalizers.cda.embedded import (
    body_bytes,
    body_media_type,
    body_text,
    scanned_image_types,
    shown_image_type,
)
from normalizers.cda.identity import PATIENT_PATH
from normalizers.cda.times import ZONE, document_zone
from normalizers.codes import CodeMappings
from normalizers.death import feeding_cda_death
from normalizers.model import Entry, NormalizationError, NormalizedMessage
from parsers.cda.model import Document
from parsers.detect import PDF, detect_format

__all__ = ["body_entries", "is_placeholder", "level1_body_entries", "normalize_cda"]


def normalize_cda(doc: Document, data: bytes, source: str | tuple[str, ...],
                  mappings: CodeMappings | None = None,
                  zone: str | None = None) -> NormalizedMessage:
    """The NormalizedMessage of one CDA document (``data``: its original bytes, attached to
    the document entry). Raises NormalizationError for what makes it unusable. ``zone``: the
    one the source declared for its times without offset (see ``document_zone``)."""
    token = ZONE.set(document_zone(doc, zone))
    try:
        return _normalize(doc, data, source, mappings)
    finally:
        ZONE.reset(token)


def _normalize(doc: Document, data: bytes, source: str | tuple[str, ...],
               mappings: CodeMappings | None) -> NormalizedMessage:
    """normalize_cda, in the document's zone."""
    # As in parse_cda: the cyclic GC is paused while the entries are built (no reference
    # cycles; refcounting frees everything). Running, it would collect several times per
    # document, each collection rescanning the parsed Document's ~5,000 young objects
    # (about 6 % of parse + normalize with the default thresholds). Not around the text
    # extraction of a level-1 PDF below, which is another library's business.
    if gc.isenabled():
        gc.disable()
        try:
            identity, document, entries, ctx = normalize_structured(doc, data, source, mappings)
        finally:
            gc.enable()
    else:
        identity, document, entries, ctx = normalize_structured(doc, data, source, mappings)
    entries.extend(level1_body_entries(doc, document, source, ctx.warnings))
    logical_id = f"cda|{doc.header.id.key}"
    rt = doc.header.record_targets[0]
    death = feeding_cda_death(rt.deceased_ind, rt.deceased_time.value if rt.deceased_time
                              else None, identity.birth_date, f"{PATIENT_PATH}/patient",
                              ctx.warnings)
    try:
        return NormalizedMessage(logical_id=logical_id, identity=identity, entries=entries,
                                 warnings=ctx.warnings, death=death)
    except NormalizationError as exc:  # sizes are checked there once for all
        if exc.code != "FIELD_TOO_LONG":
            raise
        if exc.location in _HL7_PLACES:  # the patient or the id: said in the CDA's terms
            raise NormalizationError(exc.code, str(exc), _HL7_PLACES[exc.location]) from None
        fit_free_text(entries, ctx.warnings)
        return NormalizedMessage(logical_id=logical_id, identity=identity, entries=entries,
                                 warnings=ctx.warnings, death=death)


def level1_body_entries(doc: Document, document: Entry, source: str | tuple[str, ...],
                        warnings: list[str]) -> list[Entry]:
    """What a level-1 body (nonXMLBody) says: the report read from its PDF (text layer or
    OCR), or its text as the document's narrative (``document.details['sections']``).
    Shared by a CDA received as a file and a CDA carried in an HL7v2 ED (normalizers/
    documents.py), so that one document files the same entries by both channels: carried in
    an ORU or MDM, a level-1 CDA was filed without the report its PDF holds."""
    body = doc.non_xml_body
    if body is None:
        return []
    content = body_bytes(body, warnings)
    media_type = body_media_type(body)
    if content and (media_type == MEDIA_PDF or detect_format(content) == PDF):
        from normalizers.documents import pdf_report_entries

        if media_type != MEDIA_PDF:
            # a PDF said to be application/octet-stream, x-pdf, text/plain or nothing
            # (the ED default): it made no report (or its bytes became the narrative)
            warnings.append(f"CDA_BODY_MEDIA_TYPE: {body.path}: mediaType "
                            f"{body.media_type.strip()[:40]!r} on a PDF (%PDF- "
                            "header): read as application/pdf")
        return pdf_report_entries(document, content, source, warnings)
    shown = shown_image_type(content, media_type)
    if shown and media_type not in scanned_image_types():
        # a scan said application/octet-stream or nothing (the ED default, text/plain): its
        # bytes are a JPEG, PNG or TIFF, as the PDF said otherwise is read as the PDF it is
        warnings.append(f"CDA_BODY_MEDIA_TYPE: {body.path}: mediaType "
                        f"{body.media_type.strip()[:40]!r} on a {shown} image (its "
                        f"signature): read as {shown}")
        media_type = shown
    if content and media_type in scanned_image_types():
        from normalizers.documents import scanned_image_entries

        # an IHE XDS-SD scan sent as the scanner's image: read by OCR as the same page in
        # an HL7v2 ED is (it was filed with no report entry and no word of it)
        return scanned_image_entries(document, content, media_type, source, warnings)
    if content and not media_type.startswith("text/"):
        warnings.append(f"CDA_BODY_NOT_READ: {body.path}: a nonXMLBody of mediaType "
                        f"{media_type[:40]!r} is not read: kept as sent, filed without a "
                        "report entry")
        return []
    if media_type.startswith("text/") and (content or body.text.strip()):
        # a level-1 text document (IHE XDS-SD text/plain): its words are its narrative,
        # shown and searched like a structured body's (they were only in the XML)
        text = body_text(content, body, warnings) if content else body.text
        document.details["sections"] = [{"code": None, "title": None,
                                         "text": text.strip()[:BODY_TEXT_CAP],
                                         "level": 0}]
    return []


# Where the size check (normalizers/model.py, written for HL7v2) places the patient and the
# message id, and where they are in a CDA document
_HL7_PLACES = {"PID": "/ClinicalDocument/recordTarget/patientRole",
               "MSH-10": "/ClinicalDocument/id"}


def body_entries(doc: Document, *, document_key: str, source: str | tuple[str, ...],
                 mappings: CodeMappings | None, warnings: list[str],
                 zone: str | None = None, document: Entry | None = None) -> list[Entry]:
    """The coded entries of a document's body, pointing at ``document_key``: for a CDA that
    arrived inside an HL7v2 message (its DOCUMENT entry is made there, with the message's
    DMP flags, which then apply to these entries too). Its times without offset are read
    as ``normalize_cda`` reads them (``document_zone``): the same document by both channels
    files the same instants, which level 4 compares. What the body says of the document
    itself (the images of its DICOM object catalog) goes into ``document``'s details, as
    ``normalize_cda`` puts it into its own DOCUMENT entry."""
    token = ZONE.set(document_zone(doc, zone))
    try:
        return structured_body_entries(doc, document_key, source, mappings, warnings, document)
    finally:
        ZONE.reset(token)
