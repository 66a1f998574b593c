"""A PDF report carrying its structured copy (PDF/A-3 with an embedded CDA R2) -> the CDA's
entries, the PDF kept as the document.

Why: some French LIS and RIS print the report to PDF/A-3 and attach the CDA they produced
(CR-BIO, CR-IMG) to it. Read, the CDA gives the producer's own coded results (LOINC, UCUM,
reference ranges, interpretation codes) and the patient's INS; read from the printed page the
same report gives what our layout reading can approach, under a printed name. So the CDA goes
through the CDA path (parsers/cda, normalizers/cda: the same entries and keys as when it is
received alone, so that both channels are one document), and the PDF, what people read, is
the document entry's file (the received input, archived at intake).

The patient printed on the PDF must be the CDA's: when the pages name another (another birth
date, or another family name that is neither of the CDA's names), the import is quarantined
(PDF_EMBEDDED_CDA_PATIENT_MISMATCH): filed on the CDA's identity, the PDF people read would
show another patient in this one's dossier.

When the embedded CDA cannot be read (broken XML, not a CDA the normalizer can use) the PDF's
pages are read as for any PDF report, with a warning saying which embedded file and why (its
code and location, never its content).
"""

from __future__ import annotations

from normalizers.cda import normalize_cda
from normalizers.codes import CodeMappings
from normalizers.model import (
    DOCUMENT,
    Attachment,
    NormalizationError,
    NormalizedMessage,
    PatientIdentity,
)
from normalizers.report import fold, normalize_report
from parsers.cda import CdaParseError, parse_cda
from parsers.pdf.model import PdfDocument

MEDIA_PDF = "application/pdf"


def embedded_cda(doc: PdfDocument, pdf: bytes, source: str,
                 mappings: CodeMappings | None = None, zone: str | None = None) \
        -> tuple[NormalizedMessage | None, list[str]]:
    """The NormalizedMessage of the first readable CDA embedded in ``doc`` (its document
    entry's file the PDF ``pdf``), or None when there is none; and the warnings to record
    (which embedded file was read, which could not be and why)."""
    warnings: list[str] = []
    for number, file in enumerate(doc.embedded, start=1):
        where = f"embedded file {number}"
        try:
            message = normalize_cda(parse_cda(file.data), file.data, source, mappings, zone)
        except (CdaParseError, NormalizationError) as exc:
            at = f" at {exc.location}" if exc.location else ""
            warnings.append(f"PDF_EMBEDDED_CDA_UNREADABLE: {where} is a CDA document that "
                            f"cannot be read ({exc.code}{at}): the PDF's pages are read "
                            "instead; ask the sender for a valid structured copy")
            continue
        for entry in message.entries:
            if entry.type == DOCUMENT and entry.source_ref == "ClinicalDocument":
                entry.attachment = Attachment(pdf, MEDIA_PDF)
                entry.details["structured_copy"] = {
                    "format": "cda", "embedded_file": number,
                    "media_type": file.media_type or None,
                    "relationship": file.relationship or None}
        left = len(doc.embedded) - number
        warnings.append(f"PDF_EMBEDDED_CDA: the PDF carries its structured copy ({where}, a "
                        "CDA document): filed through the CDA path, the PDF kept as the "
                        "document; its pages are not read for results"
                        + (f"; {left} more embedded CDA document(s) not read" if left else ""))
        message.warnings[:0] = warnings
        mismatch = _printed_mismatch(doc, pdf, source, message.identity)
        if mismatch:
            message.quarantine_reasons.append(
                f"PDF_EMBEDDED_CDA_PATIENT_MISMATCH {mismatch[0]}: the patient printed on the "
                f"PDF ({mismatch[1]}) is not the recordTarget of the CDA embedded in it "
                f"({where}): check which patient the report is about")
        return message, []
    return None, warnings


def _printed_mismatch(doc: PdfDocument, pdf: bytes, source: str,
                      cda: PatientIdentity) -> tuple[str, str] | None:
    """Where ('page 1', 'pages 1-2') the pages print another patient than the CDA's, and
    which field ('birth date', 'family name'); None when they agree or say too little."""
    try:
        printed = normalize_report(doc, pdf, source)
    except NormalizationError:  # no text on the pages: nothing printed to disagree
        return None
    parts = [(p.location, p.identity) for p in printed.patients] if printed.patients \
        else [(f"pages 1-{doc.page_count}" if doc.page_count > 1 else "page 1",
               printed.identity)]
    names = {_key(cda.family), _key(cda.birth_family)} - {""}
    for where, identity in parts:
        if identity.birth_date and cda.birth_date and identity.birth_date != cda.birth_date:
            return where, "birth date"
        family = {_key(identity.family), _key(identity.birth_family)} - {""}
        if family and names and not family & names:
            return where, "family name"
    return None


def _key(name: str) -> str:
    """A family name as compared: folded, blanks and hyphens alike ('Le Goff', 'LE-GOFF')."""
    return " ".join(fold(name).replace("-", " ").split())
