"""The structured body of a document: the header and identity read, the sections walked
into entries, keyed by the document's setId so a new version supersedes them."""

from __future__ import annotations

from collections.abc import Iterator

from normalizers.cda.common import Ctx, section_code
from normalizers.cda.header import document_entry
from normalizers.cda.identity import patient_identity
from normalizers.cda.imaging import exam_codes
from normalizers.cda.references import resolve_entry_links
from normalizers.cda.sections import section_entries
from normalizers.cda.specimens import specimens_by_id
from normalizers.cda.times import iso_time
from normalizers.cda_header import confidentiality_masking
from normalizers.codes import CodeMappings
from normalizers.model import Entry, NormalizationError, PatientIdentity, shorten_prose
from parsers.cda.model import Document, Header

# Entry fields a CDA fills with prose: a name read in the narrative (originalText, an act's
# text), a reference range written out in words, interpretation codes joined. Codes, units
# and ids are never shortened: an over-long one stays FIELD_TOO_LONG (it is no code any more).
_FREE_TEXT = ("display", "reference_range", "interpretation")


def fit_free_text(entries: list[Entry], warnings: list[str]) -> None:
    """Prose longer than its column is shortened, kept whole in details (``shorten_prose``):
    the whole document failed as FIELD_TOO_LONG."""
    for entry in entries:
        shorten_prose(entry, _FREE_TEXT, warnings)


def normalize_structured(doc: Document, data: bytes, source: str | tuple[str, ...],
                         mappings: CodeMappings | None
                         ) -> tuple[PatientIdentity, Entry, list[Entry], Ctx]:
    """(identity, the DOCUMENT entry, it and the body's entries, context) of normalize_cda."""
    header = doc.header
    if header.id is None or not header.id.root:
        raise NormalizationError("CDA_NO_DOCUMENT_ID", _missing_id(header.id),
                                 "/ClinicalDocument/id")
    if not header.record_targets:
        raise NormalizationError("CDA_NO_RECORD_TARGET", "the document names no patient "
                                 "(recordTarget missing)", "/ClinicalDocument/recordTarget")
    if len(header.record_targets) > 1:
        raise NormalizationError("CDA_MULTIPLE_PATIENTS", f"the document names "
                                 f"{len(header.record_targets)} patients (recordTarget)",
                                 header.record_targets[1].path)
    warnings = [f"{w.code}: {w.message}" for w in doc.warnings] if doc.warnings else []
    identity = patient_identity(header.record_targets[0])
    warnings += identity.warnings
    doc_id = header.id.key
    set_id = _set_key(header, doc_id)
    effective = iso_time(header.effective_time, warnings, "/ClinicalDocument/effectiveTime")
    confidentiality = header.confidentiality_code.code if header.confidentiality_code else ""
    known = confidentiality_masking(confidentiality)
    masking = known or {}
    if confidentiality and known is None:
        warnings.append(f"CDA_UNKNOWN_CONFIDENTIALITY: confidentialityCode {confidentiality!r} "
                        "is not in table cda_confidentiality; nothing masked")
    ctx = Ctx(source, mappings, f"document|{doc_id}", set_id, effective, masking, warnings)
    ctx.exams = exam_codes(header)

    document = document_entry(doc, data, ctx)
    entries = [document, *_body(doc, ctx)]
    if ctx.dicom_studies:
        document.details["dicom_studies"] = ctx.dicom_studies
    if ctx.external_references:
        document.details["external_references"] = ctx.external_references
    if ctx.media:
        document.details["media"] = ctx.media
    _said_status(document, ctx)
    return identity, document, entries, ctx


def _said_status(document: Entry, ctx: Ctx) -> None:
    """The document's status as its FR-Statut-document says it (``document_status``),
    when its header says none (an IHE XD-LAB report status wins): a discharge letter 'en
    cours' is a provisional one, it was filed final."""
    said = ctx.document_status
    if said is None:
        return
    status = said.pop("status", "")
    document.details["document_status"] = said
    if status and "report_status" not in document.details:
        document.status = status


def _missing_id(ii) -> str:  # noqa: ANN001
    """What is wrong with a document id that cannot identify it, for the integrator: it was
    'missing' also when sent with a nullFlavor or with an extension but no root (the
    assigning authority's OID), which sent them looking for an absent element."""
    if ii is None:
        return "ClinicalDocument/id is missing"
    if ii.null_flavor:
        return f"ClinicalDocument/id is a nullFlavor ({ii.null_flavor[:8]!r}), not an identifier"
    if ii.extension:
        return ("ClinicalDocument/id has an extension but no root: the root (the OID or UUID "
                "of the assigning authority) is required")
    return "ClinicalDocument/id has no root"


def _set_key(header: Header, doc_id: str) -> str:
    """The set a document's entries are versions in: its setId; its own id when it has none,
    and for an addendum or a transformation of another document (relatedDocument APND,
    XFRM without RPLC: CDA R2 4.2.3.1): a document of its own beside its parent, whatever
    setId it was sent with. Under the parent's setId, its results were taken for new
    versions of the parent's (same keys), and the parent was superseded by it."""
    kinds = {r.type_code for r in header.related_documents}
    if kinds & _NOT_VERSIONS and "RPLC" not in kinds:
        return doc_id
    return header.set_id.key if header.set_id is not None and header.set_id.root else doc_id


# relatedDocument types whose document is no new version of its parent
_NOT_VERSIONS = frozenset({"APND", "XFRM"})


def structured_body_entries(doc: Document, document_key: str, source: str | tuple[str, ...],
                            mappings: CodeMappings | None, warnings: list[str],
                            document: Entry | None = None) -> list[Entry]:
    header = doc.header
    doc_id = header.id.key if header.id is not None else document_key
    set_id = _set_key(header, doc_id)
    ctx = Ctx(source, mappings, document_key, set_id,
              iso_time(header.effective_time, warnings, "/ClinicalDocument/effectiveTime"), {},
              warnings)
    ctx.exams = exam_codes(header)
    entries = list(_body(doc, ctx))
    fit_free_text(entries, warnings)  # the message they join checks sizes once for all
    if document is not None and ctx.dicom_studies:
        document.details["dicom_studies"] = ctx.dicom_studies
    if document is not None and ctx.external_references:
        document.details["external_references"] = ctx.external_references
    if document is not None and ctx.media:
        document.details["media"] = ctx.media
    if document is not None and ctx.document_status is not None:
        # the document's status is its carrier's here (an HL7v2 message's): said, not applied
        ctx.document_status.pop("status", None)
        document.details["document_status"] = ctx.document_status
    return entries


def _body(doc: Document, ctx: Ctx) -> Iterator[Entry]:
    ctx.specimens = specimens_by_id(doc.sections, ctx)
    ctx.patient_ids = frozenset(i.key for rt in doc.header.record_targets for i in rt.ids
                                if i.root and not i.null_flavor)
    made = [entry for section in doc.sections
            for entry in section_entries(section, ctx, section_code(section))]
    resolve_entry_links(made, ctx)  # an entry may name one read after it
    yield from made
    for what, (count, path) in ctx.not_filed.items():  # one warning per kind of statement
        ctx.warnings.append(f"CDA_NOT_FILED: {path}: {what}: not filed" +
                            (f" ({count} in the document)" if count > 1 else ""))
    for (sent, unit), (count, path) in ctx.units_read.items():
        ctx.warnings.append(f"CDA_UNIT_READ_AS: {path}: unit {sent[:20]!r} of a measurement "
                            f"its template gives in {unit} (UCUM {sent[:20]!r} is not): read "
                            f"as {unit}" + (f" ({count} in the document)" if count > 1 else ""))
