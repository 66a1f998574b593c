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
import math
import re
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal
from functools import cache
from typing import Any

from normalizers.cda_header import confidentiality_masking
from normalizers.cda_sources import PATIENT, informants
from normalizers.cda_text_values import text_quantity, text_titre
from normalizers.codes import LOINC, CodeMappings, is_loinc_system, oid_names, resolve_code
from normalizers.codes import system_name as coding_system_name
from normalizers.dates import BAD_TS_TEXT, PARIS, hl7_ts_to_iso, sender_zone
from normalizers.death import feeding_cda_death
from normalizers.identity import authority_of, insee_code, read_joined_family
from normalizers.model import (
    ACTION_NEW,
    ACTION_REPLACE,
    DOCUMENT,
    ENTRY_MAX,
    LAB_RESULT,
    Attachment,
    Entry,
    InsIdentifier,
    LocalIdentifier,
    NormalizationError,
    NormalizedMessage,
    PatientIdentity,
    shorten_prose,
)
from normalizers.nir import ins_kind, ins_nir_like, nir_valid
from normalizers.tabledata import column_map, table
from normalizers.units import to_ucum
from parsers.cda.errors import CdaParseError
from parsers.cda.model import (
    BL,
    CD,
    ED,
    EIVL_TS,
    INT,
    IVL,
    MO,
    PIVL_TS,
    PQ,
    REAL,
    RTO,
    ST,
    SXPR_TS,
    TS,
    Act,
    AnyValue,
    ClinicalStatement,
    Document,
    Encounter,
    EntryRelationship,
    Extension,
    Header,
    NonXmlBody,
    Observation,
    ObservationMedia,
    Organizer,
    Procedure,
    Product,
    RecordTarget,
    ReferenceRange,
    Section,
    SubstanceAdministration,
    Supply,
    Value,
)
from parsers.detect import PDF, detect_format

PROBLEM, ALLERGY, MEDICATION = "problem", "allergy", "medication"
VITAL_SIGN, IMMUNIZATION, PROCEDURE, OBSERVATION = ("vital_sign", "immunization", "procedure",
                                                    "observation")
DEVICE = "device"  # a medical device the patient has (implant, prosthesis): not a medication
DISPENSE = "dispense"  # a supply template: a medication handed out when in event mood
CONCERN = "concern"  # problem/allergy concern act: not filed, its status goes to what it holds
ABSENCE = "absence"  # 'no known medications': a list said empty, no item of it
PLAN = "plan"  # a procedure or vaccination intended, requested, proposed: not done
FAMILY_HISTORY = "family_history"  # a relative's condition: never the patient's problem
ENCOUNTER = "encounter"  # a visit or stay (C-CDA Encounter Activity, IHE PCC, FR-Rencontre)
SKIP = "skip"
NOT_FILED = "not_filed"  # tables/cda_entry_kinds.csv: never filed, said (CDA_NOT_FILED)
CONTAINER = "container"  # tables/cda_entry_kinds.csv: no entry of its own, what it nests read
RESULT_BY_CONTEXT = "result_by_context"  # tables/cda_entry_kinds.csv: a lab result in a
# results section or battery, an observation elsewhere
CIM10 = "CIM-10"
RESULT_SECTIONS = {"30954-2", "18719-5", "18723-7", "18725-2", "18728-6", "18729-4", "18767-4",
                   "18768-2", "18769-0", "26436-6", "26437-4", "26438-2", "18716-1", "26435-8",
                   "26439-0", "26440-8", "26441-6", "18717-9", "18718-7", "18720-3", "18721-1",
                   "18722-9", "18724-0", "18727-8"}  # LOINC lab specialty sections (CR-BIO)
MEDIA_PDF = "application/pdf"
BODY_TEXT_CAP = 100_000  # characters of a level-1 text body kept in the details (as reports)
SDTC = "urn:hl7-org:sdtc"
# IHE Pharm product extensions (ingredients, generic class) under the namespaces senders bind:
# IHE's, HL7's (eHDSI cross-border documents) and epSOS's (its earlier pilots).
PHARM_NAMESPACES = frozenset({"urn:ihe:pharm:medication", "urn:ihe:pharm", "urn:hl7-org:pharm",
                              "urn:epsos-org:ep:medication"})


@cache
def _kinds() -> dict[str, str]:
    return {row["template"]: row["type"] for row in table("cda_entry_kinds")}


@cache
def _kind_meanings() -> dict[str, str]:
    """templateId -> what the statement is (the table's words), for CDA_NOT_FILED."""
    return {row["template"]: row["meaning"] for row in table("cda_entry_kinds")}


@cache
def _known_systems() -> frozenset[str]:
    """The short names of the shared terminologies (tables/code_systems.csv)."""
    return frozenset(oid_names().values())


@cache
def _identifying_systems() -> frozenset[str]:
    """The terminologies that name what a thing is (code_systems.csv, identifies = 1)."""
    return frozenset(row["name"] for row in table("code_systems") if row["identifies"] == "1")


@cache
def _absent_codes() -> dict[tuple[str, str], str]:
    """(system as entries name it, code) -> 'absent' or 'unknown' (cda_absent_codes.csv)."""
    return {(system_name(row["system"]), row["code"]): row["meaning"]
            for row in table("cda_absent_codes")}


IPS_ABSENT_SYSTEM = "2.16.840.1.113883.5.1150.1"  # HL7 IPS absent-unknown code system


@cache
def _negated_absences() -> dict[tuple[str, str], str]:
    """(system, generic code) -> the IPS absent code it says negated (cda_negated_absences)."""
    return {(system_name(row["system"]), row["code"]): row["absent_code"]
            for row in table("cda_negated_absences")}


@cache
def _placeholders() -> frozenset[str]:
    return frozenset(row["code"] for row in table("cda_placeholder_codes"))


@cache
def _placeholder_texts() -> frozenset[str]:
    return frozenset(row["text"].lower() for row in table("cda_placeholder_texts"))


def is_placeholder(text: str) -> bool:
    """Whether a text is a template's placeholder, not the author's words
    (tables/cda_placeholder_texts.csv: '(texte libre)', '...'), alone or in brackets
    ('(texte libre : description des lésions)')."""
    if not text or len(text) > 120:
        return False
    words = text.strip().lower()
    known = _placeholder_texts()
    if words in known:
        return True
    if not words or (words[0] != "(" and len(words) > 16):  # fast: most texts are words
        return False
    words = " ".join(words.split())
    if words in known:
        return True
    if words.startswith("(") and words.endswith(")"):
        inner = words[1:-1].strip()
        return inner in known or inner.partition(":")[0].strip() in known
    return False


@cache
def _absent_systems() -> frozenset[str]:
    return frozenset(system for system, _ in _absent_codes())


def system_name(oid: str, name: str = "") -> str:
    """Our short name for a code system OID ('LN' for LOINC), else the OID; without an OID
    its codeSystemName as the HL7v2 path names the same terminology (tables/
    coding_system_aliases.csv: 'SNOMED CT' and 'ICD-10' are SNOMED-CT and CIM-10 there, and
    were filed under those spellings here, never the same fact as the coded one). An OID
    written as a URN ('urn:oid:2.16.840.1.113883.6.96', FHIR's form, from senders that
    convert from FHIR) is that OID: it was filed under the URN, a system of its own."""
    if oid[:8].lower() == "urn:oid:":
        oid = oid[8:]
    if oid or not name:
        return oid_names().get(oid) or oid
    return LOINC if is_loinc_system(name.strip()) else coding_system_name(name)


@dataclass
class _Ctx:
    source: str | tuple[str, ...]
    mappings: CodeMappings | None
    doc_key: str
    set_key: str
    effective: str | None
    masking: dict[str, bool]
    warnings: list[str] = field(default_factory=list)
    keys: set[str] = field(default_factory=set)
    # specimen id -> (collection time, material) of the Specimen Collection procedures a
    # section holds as entries of their own, for the results that name the specimen by id
    specimens: dict[str, tuple[str | None, dict[str, Any] | None]] = \
        field(default_factory=dict)
    filed: int = 0  # entries the body's statements made so far
    # what was not filed, said once per kind per document: what -> [count, first path]
    not_filed: dict[str, list] = field(default_factory=dict)
    # (system, code) of the exams the header says the document reports on (serviceEvent
    # codes and translations): a CR-IMG's imaging act in the body is read there
    exams: frozenset[tuple[str, str]] = frozenset()
    # the DICOM studies a CR-IMG's object catalog references (for the document's details)
    dicom_studies: list[dict[str, Any]] = field(default_factory=list)
    # what the body's stand-alone external reference entries (IHE PCC / CI-SIS
    # FR-Reference-externe) point at, for the document's details.external_references
    external_references: list[dict[str, Any]] = field(default_factory=list)
    # images and files of the body no entry holds (an observationMedia entry of a section,
    # a component of an organizer that is no battery), for the document's details.media
    media: list[dict[str, Any]] = field(default_factory=list)
    # units read as their template says (tables/cda_template_units.csv), said once per
    # document and unit: (unit sent, unit read) -> [count, first path]
    units_read: dict[tuple[str, str], list] = field(default_factory=dict)
    # the patient's own ids (recordTarget/patientRole/id): an entry author or informant
    # named by one of them is the patient (C-CDA patient-generated data), not a professional
    patient_ids: frozenset[str] = frozenset()
    # the id of each filed statement -> its entry's key (the first entry of that id), for
    # the entry references that name a statement of this document by id
    entry_ids: dict[str, str] = field(default_factory=dict)
    # the id of each statement read -> its path (the first of that id): one that files no
    # entry of its own (a concern, an organizer) is found through the entries it holds
    statement_ids: dict[str, str] = field(default_factory=dict)
    # what a CI-SIS FR-Statut-document observation said of the document (GEN-065):
    # {code, system, display, status}, for the document's details and status
    document_status: dict[str, str] | None = None
    # isolates read so far per germ ((system, code, text)) that no specimen id tells apart
    isolate_germs: dict[tuple[str, str, str], int] = field(default_factory=dict)


# The zone of the times the document being read writes without offset ('20240315101500'):
# HL7 V3 TS, as HL7 v2.5 2.A.22, reads them in the sender's local time. Set for the length of
# one normalize_cda (``document_zone``); Paris's elsewhere (a CDA carried in HL7v2).
_ZONE: ContextVar[str] = ContextVar("cda_zone", default=PARIS)


def document_zone(doc: Document, declared: str | None = None) -> str:
    """The zone of a document's times sent without offset: the one its source declared,
    else the offset of its own effectiveTime when that says the sender is not in Paris
    (``sender_zone``, as MSH-7 for HL7v2: a US EHR's '20240315143200-0500'; not '+0100',
    which French senders write in any season), else Paris's.
    A C-CDA export writes the document's time with its offset and its vital signs and results
    without: read at Paris's offset they were filed five to ten hours off, and never met the
    same result received by HL7v2 (dedupe level 4)."""
    if declared:
        return declared
    ts = doc.header.effective_time
    if not isinstance(ts, TS) or not ts.value or ts.value.strip()[-5:] in _PARIS_OFFSETS:
        return PARIS
    return sender_zone(ts.value)


# Offsets that say nothing against Paris whatever the season: its winter one (French senders
# write '+0100' all year round, CI-SIS examples included) and UTC (a server clock). Its
# summer '+0200' is Paris's in summer (``sender_zone``), not in winter (Athens, Helsinki).
_PARIS_OFFSETS = frozenset({"+0100", "+0000", "-0000"})


def normalize_cda(doc: Document, data: bytes, source: str | tuple[str, ...],
                  mappings: CodeMappings | None = None,
                  zone: str | None = None) -> NormalizedMessage:
    """The NormalizedMessage of one CDA document (``data``: its original bytes, attached to
    the document entry). Raises NormalizationError for what makes it unusable. ``zone``: the
    one the source declared for its times without offset (see ``document_zone``)."""
    token = _ZONE.set(document_zone(doc, zone))
    try:
        return _normalize(doc, data, source, mappings)
    finally:
        _ZONE.reset(token)


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
            identity, document, entries, ctx = _structured(doc, data, source, mappings)
        finally:
            gc.enable()
    else:
        identity, document, entries, ctx = _structured(doc, data, source, mappings)
    entries.extend(level1_body_entries(doc, document, source, ctx.warnings))
    logical_id = f"cda|{doc.header.id.key}"
    rt = doc.header.record_targets[0]
    death = feeding_cda_death(rt.deceased_ind, rt.deceased_time.value if rt.deceased_time
                              else None, identity.birth_date, f"{_PATIENT_PATH}/patient",
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
    content = _body_bytes(body, warnings)
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
    shown = _shown_image_type(content, media_type)
    if shown and media_type not in _scanned_image_types():
        # a scan said application/octet-stream or nothing (the ED default, text/plain): its
        # bytes are a JPEG, PNG or TIFF, as the PDF said otherwise is read as the PDF it is
        warnings.append(f"CDA_BODY_MEDIA_TYPE: {body.path}: mediaType "
                        f"{body.media_type.strip()[:40]!r} on a {shown} image (its "
                        f"signature): read as {shown}")
        media_type = shown
    if content and media_type in _scanned_image_types():
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
        text = _body_text(content, body, warnings) if content else body.text
        document.details["sections"] = [{"code": None, "title": None,
                                         "text": text.strip()[:BODY_TEXT_CAP],
                                         "level": 0}]
    return []


# Where the size check (normalizers/model.py, written for HL7v2) places the patient and the
# message id, and where they are in a CDA document
_HL7_PLACES = {"PID": "/ClinicalDocument/recordTarget/patientRole",
               "MSH-10": "/ClinicalDocument/id"}


# Entry fields a CDA fills with prose: a name read in the narrative (originalText, an act's
# text), a reference range written out in words, interpretation codes joined. Codes, units
# and ids are never shortened: an over-long one stays FIELD_TOO_LONG (it is no code any more).
_FREE_TEXT = ("display", "reference_range", "interpretation")


def fit_free_text(entries: list[Entry], warnings: list[str]) -> None:
    """Prose longer than its column is shortened, kept whole in details (``shorten_prose``):
    the whole document failed as FIELD_TOO_LONG."""
    for entry in entries:
        shorten_prose(entry, _FREE_TEXT, warnings)


def _scanned_image_types() -> frozenset[str]:
    """The image formats a scanned page is read from (normalizers/documents.py's list)."""
    from normalizers.documents import IMAGE_MEDIA_TYPES

    return IMAGE_MEDIA_TYPES


def _shown_image_type(content: bytes | None, media_type: str) -> str | None:
    """The scanned-image type a level-1 body's bytes show (tables/ed_signatures.csv), when
    they show one; None for any other content."""
    if not content:
        return None
    from normalizers.documents import sniff_media_type

    shown = sniff_media_type(content)
    return shown if shown in _scanned_image_types() else None


def body_media_type(body: NonXmlBody) -> str:
    """A level-1 body's media type without its parameters ('application/pdf; name=cr.pdf'),
    lower case; the ED default (text/plain) when none is said."""
    return body.media_type.split(";", 1)[0].strip().lower() or "text/plain"


def _body_text(content: bytes, body: NonXmlBody, warnings: list[str]) -> str:
    """The words of a base64 text body in its ED ``charset`` (IANA name), else UTF-8; bytes
    that are not UTF-8 are read as Windows-1252 (what French senders' software writes when
    it says nothing), with a warning: they were decoded as UTF-8 with U+FFFD for every
    accented letter ('�chographie')."""
    charset = body.charset.strip()
    if charset:
        try:
            return content.decode(charset)
        except (LookupError, UnicodeDecodeError):
            warnings.append(f"CDA_BODY_CHARSET: {body.path}: the text body is not in the "
                            f"charset it says ({charset[:40]!r})")
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError:
        if not charset:
            warnings.append(f"CDA_BODY_CHARSET: {body.path}: text body not in UTF-8 and no "
                            "charset said: read as Windows-1252")
        return content.decode("cp1252", "replace")


def _body_bytes(body: NonXmlBody, warnings: list[str]) -> bytes | None:
    """The content of a level-1 body as the sender meant it: base64-decoded by the parser,
    then inflated when the ED says ``compression`` (DF deflate, GZ gzip, ZL zlib: the ED
    data type of CDA R2; the PDF of a 'DF' body was handed to the PDF reader still deflated,
    and lost). A stream that does not inflate, or an external ``reference`` (never fetched),
    leaves the document filed without a report and says so."""
    if body.data is None:
        if body.reference:
            warnings.append(f"CDA_EXTERNAL_BODY: {body.path}: the nonXMLBody content is a "
                            "reference to an external file, not fetched")
        return None
    try:
        return body.decompressed()
    except CdaParseError as exc:
        warnings.append(f"{exc.code}: {exc.location}: {exc.message}; the document is filed "
                        "without its report entry")
        return None


def _structured(doc: Document, data: bytes, source: str | tuple[str, ...],
                mappings: CodeMappings | None) -> tuple[PatientIdentity, Entry, list[Entry],
                                                        _Ctx]:
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
    identity = _identity(header.record_targets[0])
    warnings += identity.warnings
    doc_id = header.id.key
    set_id = _set_key(header, doc_id)
    effective = _iso(header.effective_time, warnings, "/ClinicalDocument/effectiveTime")
    confidentiality = header.confidentiality_code.code if header.confidentiality_code else ""
    known = confidentiality_masking(confidentiality)
    masking = known or {}
    if confidentiality and known is None:
        warnings.append(f"CDA_UNKNOWN_CONFIDENTIALITY: confidentialityCode {confidentiality!r} "
                        "is not in table cda_confidentiality; nothing masked")
    ctx = _Ctx(source, mappings, f"document|{doc_id}", set_id, effective, masking, warnings)
    ctx.exams = _exam_codes(header)

    document = _document_entry(doc, data, ctx)
    entries = [document, *_body(doc, ctx)]
    if ctx.dicom_studies:
        document.details["dicom_studies"] = ctx.dicom_studies
    if ctx.external_references:
        document.details["external_references"] = ctx.external_references
    if ctx.media:
        document.details["media"] = ctx.media
    _said_status(document, ctx)
    return identity, document, entries, ctx


def _said_status(document: Entry, ctx: _Ctx) -> None:
    """The document's status as its FR-Statut-document says it (``_document_status``),
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
    token = _ZONE.set(document_zone(doc, zone))
    try:
        return _body_entries(doc, document_key, source, mappings, warnings, document)
    finally:
        _ZONE.reset(token)


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


def _body_entries(doc: Document, document_key: str, source: str | tuple[str, ...],
                  mappings: CodeMappings | None, warnings: list[str],
                  document: Entry | None = None) -> list[Entry]:
    header = doc.header
    doc_id = header.id.key if header.id is not None else document_key
    set_id = _set_key(header, doc_id)
    ctx = _Ctx(source, mappings, document_key, set_id,
               _iso(header.effective_time, warnings, "/ClinicalDocument/effectiveTime"), {},
               warnings)
    ctx.exams = _exam_codes(header)
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


def _body(doc: Document, ctx: _Ctx) -> Iterator[Entry]:
    ctx.specimens = _specimens_by_id(doc.sections, ctx)
    ctx.patient_ids = frozenset(i.key for rt in doc.header.record_targets for i in rt.ids
                                if i.root and not i.null_flavor)
    made = [entry for section in doc.sections
            for entry in _section_entries(section, ctx, section_code(section))]
    _resolve_entry_links(made, ctx)  # an entry may name one read after it
    yield from made
    for what, (count, path) in ctx.not_filed.items():  # one warning per kind of statement
        ctx.warnings.append(f"CDA_NOT_FILED: {path}: {what}: not filed" +
                            (f" ({count} in the document)" if count > 1 else ""))
    for (sent, unit), (count, path) in ctx.units_read.items():
        ctx.warnings.append(f"CDA_UNIT_READ_AS: {path}: unit {sent[:20]!r} of a measurement "
                            f"its template gives in {unit} (UCUM {sent[:20]!r} is not): read "
                            f"as {unit}" + (f" ({count} in the document)" if count > 1 else ""))


# -- identity -----------------------------------------------------------------------------------
_INS_ARC = "1.2.250.1.213.1.4."  # the ANS's arc of INS OIDs (ins_oids.csv names its kinds)
_PATIENT_PATH = "/ClinicalDocument/recordTarget/patientRole"


def _identity(rt: RecordTarget) -> PatientIdentity:
    """The patient the document names (CI-SIS recordTarget): INS under the INS OIDs (blanks
    inside dropped, as printed on a card), other ids as local ids; the first given name is
    the first given at birth (``qualifier="BR"``) when given, else the list's first; a
    birthTime that is no date is said and ignored, never compared."""
    identity = PatientIdentity()
    for ii in rt.ids:
        if ii.null_flavor:
            # an II with a nullFlavor is no identifier (HL7 V3 data types), whatever its
            # extension says: a masked (MSK) or unknown INS was read as the INS, a
            # placeholder IPP as the patient's
            if ii.extension.strip():
                identity.warnings.append(f"{_PATIENT_PATH}/id: nullFlavor "
                                         f"{ii.null_flavor[:8]} beside an extension: no "
                                         "identifier, not used")
            continue
        # the root as its bare OID: 'urn:oid:1.2.250.1.213.1.4.8' (FHIR-minded generators)
        # was a local identifier of authority 'urn:oid:...', the INS never read as one
        root = authority_of("", ii.root.strip(), "ISO")
        extension = ii.extension.strip()
        if not root or not extension:
            continue
        if root != ii.root.strip():
            identity.warnings.append(f"{_PATIENT_PATH}/id: root written as a URN "
                                     "('urn:oid:'), read as its OID")
        kind = ins_kind(root)
        if kind is not None:
            nir = "".join(extension.split()).upper()
            valid = nir_valid(nir) if ins_nir_like(root) else True
            identity.ins.append(InsIdentifier(nir, root, kind, valid))
        else:
            if root.startswith(_INS_ARC):
                identity.warnings.append(f"{_PATIENT_PATH}/id: root {root[:64]} is in the "
                                         "INS arc but names no INS kind known here: read "
                                         "as a local identifier, never as an INS")
            identity.local_ids.append(LocalIdentifier(root, extension, "PI"))
    if identity.ins:
        identity.identity_status = "VALI"  # CI-SIS: only a qualified INS goes into a CDA
    name = _legal_name(rt.names)
    if name is not None:
        birth = name.families("BR")
        used = name.families("SP") or name.families("CL")
        other = [p.value for p in name.family if p.qualifier not in ("BR", "SP", "CL")]
        identity.birth_family = birth[0] if birth else ""
        identity.family = (used or other or birth or [""])[0]
        if not birth or not used:  # one name for both ('MARTIN épouse DUPONT')
            read_joined_family(identity, f"{_PATIENT_PATH}/patient/name/family")
        givens = [p.value for p in name.given if p.qualifier == "BR"] or \
            [p.value for p in name.given if p.qualifier != "CL"] or \
            [p.value for p in name.given]
        first = givens[0].replace(",", " ").split() if givens else []
        identity.given = first[0] if first else ""
    if rt.administrative_gender is not None:
        identity.sex = rt.administrative_gender.code.upper()[:1]
    identity.multiple_birth = _multiple_birth(rt)
    # CI-SIS: the INSEE code of the birth commune in birthplace/place/addr/county
    place = rt.birthplace.addr if rt.birthplace is not None else None
    identity.birth_place = insee_code(place.get("county")) if place is not None else ""
    if rt.birth_time is not None and 0 < len(rt.birth_time.value) < 8:
        # '1979', '197903': PID-7 says so for a partial date, the CDA path said nothing
        identity.warnings.append(f"{_PATIENT_PATH}/patient/birthTime: birth date is partial "
                                 "(year or month), kept empty")
        if len(rt.birth_time.value) in (4, 6) and rt.birth_time.value.isdigit():
            value = rt.birth_time.value
            identity.birth_date_partial = value[:4] + (f"-{value[4:6]}" if value[4:] else "")
    if rt.birth_time is not None and len(rt.birth_time.value) >= 8:
        try:
            identity.birth_date = hl7_ts_to_iso(rt.birth_time.value[:8])
        except ValueError:  # '19551399': compared, it would match nobody or the wrong one
            identity.warnings.append(f"CDA_BAD_DATE: {_PATIENT_PATH}/patient/birthTime: "
                                     f"{BAD_TS_TEXT}, birth date ignored")
    return identity


SDTC = "urn:hl7-org:sdtc"


def _multiple_birth(rt: RecordTarget) -> bool:
    """The patient is one of a multiple birth: ``sdtc:multipleBirthInd`` true, else (none
    sent) an ``sdtc:multipleBirthOrderNumber`` past the first, as PID-24/PID-25 are read
    (normalizers/identity.py). Twins share family name, birth date and often sex, and a
    newborn's given name is a placeholder: identity resolution never matches them on their
    traits. Read, the document's twin went into the other twin's dossier."""
    said = order = ""
    for ext in rt.extensions:
        if ext.namespace != SDTC:
            continue
        if ext.name == "multipleBirthInd":
            said = ext.attributes.get("value", "").strip().lower()
        elif ext.name == "multipleBirthOrderNumber":
            order = ext.attributes.get("value", "").strip()
    return said == "true" or (said not in ("true", "false") and order.isdigit()
                              and int(order) > 1)


# HL7 EntityNameUse codes of a name that is not the one a person is registered under: a
# pseudonym or nickname (P), an artist's (A), religious (R), indigenous (I) or assigned
# (ASGN) name, and the search, phonetic or script variants (SRCH, PHON, SNDX, ABC, SYL, IDE)
_NOT_LEGAL_USES = frozenset({"P", "A", "R", "I", "ASGN", "SRCH", "PHON", "SNDX", "ABC", "SYL",
                             "IDE"})


def _today_digits() -> str:
    """Today as 'YYYYMMDD', formatted by hand: this runs once per CDA document just after
    its parse, and the first ``strftime`` after an lxml parse costs 0.03-0.8 ms in glibc
    depending on the machine's load (its locale and zone data are out of the caches;
    bench/README.md, round 2), a few microseconds otherwise."""
    today = date.today()
    return f"{today.year:04d}{today.month:02d}{today.day:02d}"


def _legal_name(names: list) -> Any:
    """The patient's name to identify them by: the one marked legal or official registry
    (use L, OR), else the first that is no nickname or variant, else the first. A C-CDA may
    list the nickname ('Betty', use P) before the legal name: it was the one compared."""
    names = [n for n in names if not n.null_flavor] or names
    # A name whose validTime ended is a former one (a maiden name kept beside the married
    # one): compared with the dossier, it conflicted with the name the patient goes by now.
    today = _today_digits()
    names = [n for n in names if not n.valid_until or n.valid_until[:8] >= today] or names
    if not names:
        return None
    uses = [set(n.use.split()) for n in names]
    return next((n for n, u in zip(names, uses, strict=True) if u & {"L", "OR"}), None) or \
        next((n for n, u in zip(names, uses, strict=True) if not u & _NOT_LEGAL_USES),
             names[0])


# -- the document -------------------------------------------------------------------------------
def loinc_of(code: CD) -> CD:
    """``code``, or its LOINC translation when it is a local code translated into LOINC
    (a document type, a section code): what the type and the section are known by. The
    local code of a CR-BIO typed 'CRBIO' with 11502-2 in translation made a document of no
    known type, and its results section no results section (its results filed as plain
    observations)."""
    if not code.translations or not code.code_system or \
            system_name(code.code_system, code.code_system_name) == LOINC:
        return code
    return next((t for t in code.translations
                 if t.code and system_name(t.code_system, t.code_system_name) == LOINC), code)


def section_code(section: Section) -> str:
    """The code a section is known by: its LOINC (see ``loinc_of``), '' for none."""
    return loinc_of(section.code).code if section.code is not None else ""


@cache
def _document_type_systems() -> frozenset[str]:
    """The code systems of the DMP's document types (tables/cda_document_type_systems.csv,
    JDV_J07): a VSM typed SYNTH (TRE_A05) was an unmapped local code, failed CODE_UNMAPPED
    for a source whose codes must be mapped and listed '(unmapped)' in the dossier."""
    return frozenset(row["system"] for row in table("cda_document_type_systems"))


def _document_entry(doc: Document, data: bytes, ctx: _Ctx) -> Entry:
    header = doc.header
    code = loinc_of(header.code) if header.code is not None else None
    action, replaces = ACTION_NEW, None
    for related in header.related_documents:
        if related.type_code == "RPLC" and related.ids:
            action, replaces = ACTION_REPLACE, f"document|{related.ids[0].key}"
    details: dict[str, Any] = {
        "media_type": "text/xml", "set_id": ctx.set_key,
        "version": header.version_number or None,
        "confidentiality": header.confidentiality_code.code
        if header.confidentiality_code else None,
        "template_ids": sorted(header.template_roots),
        "authors": [_author(a) for a in header.authors],
        "custodian": _org_ids(header.custodian.organization)
        if header.custodian and header.custodian.organization else None,
        "encounter": _encounter(header),
        "service_events": [e for e in map(_service_event, header.documentation_of) if e],
        "legal_authenticator": _authenticator(header.legal_authenticator),
        # who else attested it (authenticator 0..*: a CR-BIO's validating biologist, IHE
        # XD-LAB Laboratory Results Validator; a co-signing senior): they were dropped
        "authenticators": [a for a in map(_authenticator, header.authenticators) if a],
        "orders": [i.key for i in header.in_fulfillment_of if i.root and not i.null_flavor],
        "ordered_by": _ordered_by(header.participants),
        "participants": _participants(header.participants),
        "recipients": _recipients(header.information_recipients),
        "data_enterer": _data_enterer(header.data_enterer),
        "consents": [c for c in map(_consent, header.consents) if c],
        "sections": _narratives(doc.sections),
        "body": doc.body_kind,
        # the language it is written in (en-US, de-CH): a document from abroad said so
        "language": header.language_code.strip() or None,
    }
    if header.code is not None and code is not header.code:  # the local type, as sent
        details["type_as_sent"] = {"code": header.code.code,
                                   "system": system_name(header.code.code_system)}
    for related in header.related_documents:
        details.setdefault("related", []).append(
            {"type": related.type_code, "ids": [i.key for i in related.ids]})
    report_status = _report_status(header)
    if report_status:
        details["report_status"] = report_status
    if doc.non_xml_body is not None:
        details["body_media_type"] = doc.non_xml_body.media_type
        if doc.non_xml_body.compression:
            details["body_compression"] = doc.non_xml_body.compression
        if doc.non_xml_body.data is None and doc.non_xml_body.reference:
            details["body_reference"] = doc.non_xml_body.reference  # where it is; not fetched
    return Entry(type=DOCUMENT, key=ctx.doc_key, source_ref="ClinicalDocument",
                 code=code.code if code else None,
                 # codeSystemName alone ('LOINC', no OID) names the system too: the type of
                 # document was filed without one, unmapped
                 system=system_name(code.code_system, code.code_system_name) or None
                 if code else None,
                 display=header.title or (code.display if code else None),
                 mapped=bool(code and system_name(code.code_system, code.code_system_name)
                             in _document_type_systems()),
                 value_type="ED", status=_REPORT_STATUS.get(report_status) or
                 _status(report_status), effective=ctx.effective,
                 performer=_document_performer(header),
                 action=action, replaces_key=replaces,
                 attachment=Attachment(data, "text/xml"), masking=dict(ctx.masking),
                 details={k: v for k, v in details.items() if v not in (None, [], {})})


LAB_NAMESPACE = "urn:oid:1.3.6.1.4.1.19376.1.3.2"  # IHE LAB (XD-LAB, PaLM) extensions
_REPORT_STATUS = {"active": "preliminary"}  # results still to come: as HL7v2 OBR-25 P


def _report_status(header) -> str:  # noqa: ANN001
    """The status of a lab report as a whole (IHE XD-LAB / CI-SIS CR-BIO: the lab:statusCode
    of documentationOf/serviceEvent, 'active' while results are still to come, 'completed'
    for the final report; ELGA and other realms: sdtc:statusCode on the ClinicalDocument,
    the HL7 extension for a document 'in other than the completed state'); '' when the
    document says none. A partial report was filed as a final one."""
    codes = [ext.attributes.get("code", "") for event in header.documentation_of
             for ext in event.extensions
             if ext.namespace == LAB_NAMESPACE and ext.name == "statusCode"]
    codes += [ext.attributes.get("code", "") for ext in header.extensions
              if ext.namespace == SDTC and ext.name == "statusCode"]
    codes = [c.strip() for c in codes if c.strip()]  # a cs token: ' completed ' is completed
    if not codes:
        return ""
    return next((c for c in codes if c != "completed"), codes[0])


def _author(author) -> dict:  # noqa: ANN001
    entity = author.entity
    out: dict[str, Any] = {}
    if entity is not None:
        out["ids"] = [i.key for i in entity.ids if i.root]  # RPPS 1.2.250.1.71.4.2.1, ADELI
        if entity.code is not None and entity.code.code:
            out["role"] = entity.code.code
        if entity.organization is not None:
            out["organization"] = [i.key for i in entity.organization.ids if i.root]
            names = [n for n in entity.organization.names if n]
            if entity.person is None and names:
                # no person named: the organization (or the device's) is who wrote it,
                # its name the only words saying so (a FINESS number alone is opaque)
                out["organization_name"] = names[0]
        if entity.person is None and entity.player_names:  # assignedAuthoringDevice
            out["device"] = entity.player_names
    if author.time is not None and isinstance(author.time, TS):
        out["time"] = _header_time(author.time)
    return out


def _header_time(ts: TS) -> str:
    """When the document was written or signed, in ISO 8601 with its offset as every other
    time of the entry's details (it was kept as the HL7 TS, '20240312120000+0100', beside
    ISO times); a time without offset in the sender's zone, as the others. One that is no
    HL7 date stays as written."""
    return _iso_value(ts.value) or ts.value


def _service_event(event) -> dict[str, Any]:  # noqa: ANN001
    """What the document reports on (documentationOf/serviceEvent): the exam of a CR-IMG
    (LOINC with its CCAM act, DICOM modality and body site as translations), the chapter of
    a CR-BIO, a stay; its ids (accession number, study), period and who performed it. Only
    in the archived XML until now: a report could not be found by the exam it reports."""
    out: dict[str, Any] = {}
    ids = [i.key for i in event.ids if i.root and not i.null_flavor]
    if ids:
        out["ids"] = ids
    code = event.code
    if code is not None and (code.code or code.translations):
        if code.code:
            out.update(code=code.code, system=system_name(code.code_system),
                       display=code.display or code.original_text or None)
        translations = [{"code": t.code, "system": system_name(t.code_system),
                         "display": t.display or None}
                        for t in code.translations if t.code]
        if translations:
            out["translations"] = translations
    if isinstance(event.effective_time, IVL | TS):
        period = event.effective_time
        bounds = [("low", period.low), ("high", period.high)] if isinstance(period, IVL) \
            else [("low", period)]
        for name, bound in bounds:
            if isinstance(bound, TS) and bound.value:
                iso = _iso_value(bound.value)
                if iso:
                    out[name] = iso
    # the care team (C-CDA: the CCD's serviceEvent PCPR, each performer with its
    # functionCode, PCP the primary care physician, and NUCC specialty): read as the header's
    # other participants are; only the ids were kept, not who was the primary care physician
    performers = _participants(event.performers)
    if performers:
        out["performers"] = performers
    return {k: v for k, v in out.items() if v not in (None, [], {})}


DICOM_STUDY = "1.2.840.10008.9.16"  # DICOM Part 20 Study Act (CI-SIS FR-DICOM-Examen)
DICOM_SERIES = "1.2.840.10008.9.17"  # Series Act (FR-DICOM-Serie)
DICOM_INSTANCE = "1.2.840.10008.9.18"  # SOP Instance Observation (FR-DICOM-Instance)
DICOM_INSTANCES_KEPT = 20  # per series, in the document's details


def _dicom_study(act: ClinicalStatement) -> dict[str, Any]:
    """A study of a CR-IMG's DICOM object catalog (the images the report is of): its
    Study Instance UID, time, and series (UID, modality, time) with their instances (SOP
    Instance UID, SOP class, the WADO reference a viewer opens). It was skipped: the report
    said nothing of its images but the header's study id."""
    uid = next((i.root for i in act.ids if i.root and not i.null_flavor), "")
    study: dict[str, Any] = {"uid": uid} if uid else {}
    when = _dicom_time(act)
    if when:
        study["time"] = when
    series = [s for s in (_dicom_series(rel.act) for rel in act.entry_relationships
                          if rel.act is not None and DICOM_SERIES in rel.act.template_roots)
              if s]
    if series:
        study["series"] = series
    return study


def _dicom_series(act: ClinicalStatement) -> dict[str, Any]:
    """One series of a study (see ``_dicom_study``)."""
    out: dict[str, Any] = {}
    uid = next((i.root for i in act.ids if i.root and not i.null_flavor), "")
    if uid:
        out["uid"] = uid
    modality = next((v.code for _, v in (act.code.qualifiers if act.code is not None else [])
                     if v is not None and v.code), "")
    if modality:
        out["modality"] = modality
    when = _dicom_time(act)
    if when:
        out["time"] = when
    instances = []
    for rel in act.entry_relationships:
        obs = rel.act
        if obs is None or DICOM_INSTANCE not in obs.template_roots:
            continue
        instance = {"uid": next((i.root for i in obs.ids if i.root and not i.null_flavor),
                                ""),
                    "sop_class": obs.code.code if obs.code is not None else "",
                    "reference": obs.text_reference if not
                    obs.text_reference.startswith("#") else ""}
        instance = {k: v[:500] for k, v in instance.items() if v}
        if instance:
            instances.append(instance)
    if instances:  # a CT series lists hundreds of slices: the first ones and the count
        out["instances"] = instances[:DICOM_INSTANCES_KEPT]
        if len(instances) > DICOM_INSTANCES_KEPT:
            out["instance_count"] = len(instances)
    return out


def _dicom_time(act: ClinicalStatement) -> str | None:
    """The time of a study or series (a TS, or an IVL_TS written with a value)."""
    value = getattr(act.effective_time, "value", "")
    return (_iso_value(value) or None) if isinstance(value, str) and value else None


def _exam_codes(header) -> frozenset[tuple[str, str]]:  # noqa: ANN001
    """(system, code) of every code and translation of the header's serviceEvents."""
    return frozenset((system_name(c.code_system), c.code)
                     for event in header.documentation_of if event.code is not None
                     for c in (event.code, *event.code.translations) if c.code)


def _reported_exam(act: ClinicalStatement, ctx: _Ctx) -> bool:
    """Whether an act is one of the exams the header's serviceEvents say (by a code or a
    translation in common)."""
    code = act.code
    return code is not None and any(
        (system_name(c.code_system), c.code) in ctx.exams
        for c in (code, *code.translations) if c.code)


def _performing_party(part) -> dict[str, Any] | None:  # noqa: ANN001
    """A performer as ids: the person's (RPPS...) and the organization's (FINESS...)."""
    return _party(part.entity) if part.entity is not None else None


def _party(entity) -> dict[str, Any] | None:  # noqa: ANN001
    """An assigned entity as ids: the person's (RPPS...) and the organization's (FINESS...),
    with the organization's name."""
    out: dict[str, Any] = {"ids": [i.key for i in entity.ids if i.root]}
    if entity.organization is not None:
        out["organization"] = _org_ids(entity.organization)
        names = [n for n in entity.organization.names if n]
        if names:
            out["organization_name"] = names[0]
    out = {k: v for k, v in out.items() if v}
    return out or None


ORDERING = "REF"  # header participant typeCode of the prescriber (IHE XD-LAB Ordering
# Provider 1.3.6.1.4.1.19376.1.3.3.1.6, CI-SIS FR-Prescripteur)


def _ordered_by(participants: list) -> list[dict[str, Any]]:
    """Who ordered what the document reports (header participant REF: the prescriber of a
    CR-BIO, with the date of the prescription), as ids (RPPS...) and organization; the
    HL7v2 path keeps OBR-16, the CDA's was dropped."""
    out = []
    for part in participants:
        if part.type_code != ORDERING:
            continue
        found = _performing_party(part) or {}
        when = _participation_time(part.time)
        if when:
            found["time"] = when
        if found:
            out.append(found)
    return out


def _participation_time(when: Value | None) -> str | None:
    """The time of a participation in ISO form: a TS, else an interval's high (a
    prescription's date, a specimen's collection), low or centre, else its point value."""
    if isinstance(when, IVL):
        when = next((b for b in (when.high, when.low, when.center)
                     if isinstance(b, TS) and b.value), None) or \
            (TS(type="TS", value=when.value) if when.value else None)
    if isinstance(when, TS) and when.value:
        return _iso_value(when.value) or None
    return None


def _participants(participants: list) -> list[dict[str, Any]]:
    """Whom else the document names, and as what (header participants but the prescriber,
    REF, in ``_ordered_by``): the patient's médecin traitant (INF, functionCode PCP), who
    took the specimen and when (PRF, PRELV: a CR-BIO's nurse), the correspondents it goes
    to (CON, CORRE), a referring physician (REFB)... as ids (RPPS...), qualification and
    organization. They were dropped: only the archived XML said who the médecin traitant
    or the préleveur was. One named by name and address alone is not kept (no names of
    third parties in the details)."""
    out = []
    for part in participants:
        if part.type_code == ORDERING or part.entity is None:
            continue
        found = _party(part.entity)
        if not found:
            continue
        said: dict[str, Any] = {"type": part.type_code or None}
        function = part.function_code
        if function is not None and function.code:
            said["function"] = {k: v for k, v in (
                ("code", function.code), ("system", system_name(function.code_system)),
                ("display", function.display)) if v}
        if part.entity.code is not None and part.entity.code.code:
            said["role"] = part.entity.code.code
        said["time"] = _participation_time(part.time)
        out.append({**{k: v for k, v in said.items() if v}, **found})
    return out


PRIMARY_RECIPIENT = "PRCP"  # informationRecipient's default typeCode (TRC: a copy to)


def _recipients(recipients: list) -> list[dict[str, Any]]:
    """Whom the document is addressed to (informationRecipient/intendedRecipient: a
    discharge letter's médecin traitant, 'copie à' the nurse, typeCode TRC), as type, ids
    (RPPS...) and organization (receivedOrganization, FINESS): they were dropped, and who
    the letter went to was only in the archived XML. One named by name alone is not kept
    (no names of third parties in the details)."""
    out = []
    for part in recipients:
        found = _party(part.entity) if part.entity is not None else None
        if found:
            out.append({"type": part.type_code or PRIMARY_RECIPIENT, **found})
    return out


def _data_enterer(part) -> dict[str, Any] | None:  # noqa: ANN001
    """Who keyed the document in (dataEnterer: a secretary typing a dictated letter, a
    nurse entering a DLU), as ids and organization, and when: it was parsed and dropped,
    and a reader could not tell who entered what the author said. One named by name alone
    is not kept (no names of third parties in the details)."""
    if part is None or part.entity is None:
        return None
    found = _party(part.entity)
    if not found:
        return None
    when = _participation_time(part.time)
    return {**found, "time": when} if when else found


def _consent(consent) -> dict[str, Any] | None:  # noqa: ANN001
    """A consent the document states (authorization/consent: the patient's consent to the
    sharing of the document, to a treatment), as ids, code and status: its code was parsed
    and dropped, the consent the sender recorded was in the archived XML only."""
    said: dict[str, Any] = {"ids": [i.key for i in consent.ids if i.root and not i.null_flavor]}
    code = consent.code
    if code is not None and code.code:
        said["code"] = {k: v for k, v in (
            ("code", code.code), ("system", system_name(code.code_system, code.code_system_name)),
            ("display", code.display)) if v}
    elif code is not None and code.original_text:
        said["text"] = code.original_text[:ENTRY_MAX["display"]]
    if not any(said.values()):
        return None  # an empty consent element: nothing stated
    said["status"] = consent.status_code or None
    return {k: v for k, v in said.items() if v}


def _authenticator(auth) -> dict[str, Any] | None:  # noqa: ANN001
    """Who signed the document (legalAuthenticator: the physician responsible) and when."""
    if auth is None:
        return None
    out = _performing_party(auth) or {}
    if isinstance(auth.time, TS) and auth.time.value:
        out["time"] = _header_time(auth.time)
    return out or None


def _human_author(authors: list) -> Any:
    """The author a document is by: the first person among its authors, else the first
    (IHE XDS-SD and C-CDA name the software or scanner that made it as an author too: its
    id was filed as the document's performer when it came first)."""
    return next((a for a in authors if a.entity is not None and a.entity.person is not None),
                authors[0])


def _is_device(author) -> bool:  # noqa: ANN001
    """An author that is software or a machine (assignedAuthoringDevice), not a person."""
    entity = author.entity
    return entity is not None and entity.person is None and bool(entity.player_names)


def _document_performer(header) -> str | None:  # noqa: ANN001
    """Who the document is by: its first person author (``_human_author``), else its first
    author that is no device, else who signed it (legalAuthenticator). A C-CDA exported by
    an EHR names only the EHR as its author (Epic 'Care Everywhere', assignedAuthoringDevice):
    the software's id was the document's performer. Last, the organization a device author
    writes for (a lab's middleware releasing its reports)."""
    authors = [a for a in header.authors if not _is_device(a)]
    if authors:
        return _performer(_human_author(authors))
    signed = header.legal_authenticator
    if signed is not None:
        return _performer(signed)
    # by devices only, signed by no one: the organization a device writes for (a lab's
    # middleware releasing a CR-BIO on behalf of its laboratory, FINESS) is who it is by
    return next((ids[0] for ids in (_org_ids(a.entity.organization) for a in header.authors
                                    if a.entity is not None and a.entity.organization
                                    is not None) if ids), None)


def _performer(author) -> str | None:  # noqa: ANN001
    """The author's id (its national one, idNatPS, when it has several: a hospital's
    software names its own user id first), else its organization's: an author that is an
    organization only (assignedAuthor/id nullFlavor NA and a representedOrganization with
    its FINESS, as a hospital's document service writes it; C-CDA R2.1 allows the same)
    left the document with no performer, whoever wrote it."""
    entity = author.entity
    if entity is None:
        return None
    national = _national_person_roots()
    ids = sorted((i for i in entity.ids if i.root), key=lambda i: i.root not in national)
    keys = [i.key for i in ids]  # a national id (idNatPS) first, else as sent
    if not keys and entity.organization is not None:
        keys = _org_ids(entity.organization)
    return keys[0] if keys else None


@cache
def _national_person_roots() -> frozenset[str]:
    """The roots of professionals' national ids (tables/cda_national_person_ids.csv)."""
    return frozenset(row["root"] for row in table("cda_national_person_ids"))


def _org_ids(org) -> list[str]:  # noqa: ANN001
    return [i.key for i in org.ids if i.root]


def _encounter(header) -> dict | None:  # noqa: ANN001
    """The stay or visit the document was written in (componentOf/encompassingEncounter):
    its ids, class (IMP, AMB, EMER...), admission (low) and discharge (high) as ISO 8601 like
    every other time of ours (they were the raw CDA TS, '20191029111700+0100'), where the
    patient went, who was responsible for it (responsibleParty, encounterParticipant ATND,
    ADM, DIS...: ids) and where it took place (the facility, its kind, the unit's name: a
    discharge letter's 'Service de cardiologie', and the organization providing it)."""
    enc = header.encounter
    if enc is None:
        return None
    out: dict[str, Any] = {"ids": [i.key for i in enc.ids if i.root]}
    if enc.code is not None and enc.code.code:
        out["code"] = enc.code.code
        if enc.code.code_system:
            out["system"] = system_name(enc.code.code_system)
        if enc.code.display:
            out["display"] = enc.code.display
    period = enc.effective_time
    bounds = [("low", period.low), ("high", period.high)] if isinstance(period, IVL) else \
        [("low", period)] if isinstance(period, TS) else []
    for name, bound in bounds:  # a single instant (a consultation) is when it began
        if isinstance(bound, TS) and bound.value:
            iso = _iso_value(bound.value)
            if iso:
                out[name] = iso
    responsible = _party(enc.responsible_party) if enc.responsible_party is not None else None
    if responsible:  # the physician in charge of the stay: the discharge letter's signatory
        out["responsible"] = responsible
    participants = []
    for part in enc.participants:
        found = _performing_party(part)
        if found:
            participants.append({"type": part.type_code, **found} if part.type_code else found)
    if participants:
        out["participants"] = participants
    disposition = enc.discharge_disposition_code
    if disposition is not None and disposition.code:
        # where the patient went at discharge (home, another facility: HL7 table 0112 in
        # C-CDA); a discharge summary's was dropped
        out["discharge_disposition"] = {"code": disposition.code,
                                        "system": system_name(disposition.code_system),
                                        "display": disposition.display or None}
    facility = enc.location
    if facility is not None:  # where: the care unit or facility and its kind (CI-SIS)
        place: dict[str, Any] = {"ids": [i.key for i in facility.ids if i.root]}
        if facility.code is not None and facility.code.code:
            place["code"] = {"code": facility.code.code,
                             "system": system_name(facility.code.code_system),
                             "display": facility.code.display or None}
        if facility.place is not None and facility.place.name:
            place["name"] = facility.place.name.strip()[:300]
        if facility.organization is not None:
            place["organization"] = _org_ids(facility.organization)
            names = [n for n in facility.organization.names if n]
            if names:
                place["organization_name"] = names[0]
        place = {k: v for k, v in place.items() if v}
        if place:
            out["location"] = place
    return out


def _narratives(sections: list[Section], depth: int = 0) -> list[dict]:
    """Every section's title, LOINC code and plain narrative text, nested sections flattened."""
    out = []
    for s in sections:
        text = None if is_placeholder(s.text) else s.text  # '(texte libre)' is no narrative
        if text or s.title:
            out.append({"code": s.code.code if s.code else None, "title": s.title or None,
                        "text": text or None, "level": depth})
        out.extend(_narratives(s.sections, depth + 1))
    return out


# -- the body -----------------------------------------------------------------------------------
def _section_entries(section: Section, ctx: _Ctx, outer_code: str,
                     about: dict[str, Any] | None = None,
                     authors: tuple = (), told_by: tuple = ()) -> Iterator[Entry]:
    """``outer_code``: see ``_section_content``; ``about``: whom the enclosing section is
    about when it names a subject (see ``_statement``); ``authors``: the nearest enclosing
    section's authors (see ``_attributed``); ``told_by`` its informants (see
    ``_section_informants``)."""
    if section.subject is not None:
        about = _relative_of(section.subject)
    authors = tuple(section.authors) or authors
    told_by = tuple(section.informants) or told_by
    content = _section_informants(
        _section_content(section, ctx, outer_code, about, authors, told_by), told_by, ctx)
    masking = _section_masking(section, ctx) if section.confidentiality_code is not None \
        else None
    if masking is None:
        yield from content
        return
    document_masking, ctx.masking = ctx.masking, masking
    try:
        yield from content
    finally:
        ctx.masking = document_masking


def _section_informants(made: Iterator[Entry], told_by: tuple, ctx: _Ctx) -> Iterator[Entry]:
    """Who gave the information of a whole section (CDA R2 Section.informant: the mother
    for a child's history, the patient for his own, the referring doctor) is the
    informant of each of its entries that names none of its own (context conduction, as
    for its author): it was not read, a history the mother told looked like one the
    clinician saw. The entry's own informant, or its concern's, stays."""
    said = informants(list(told_by), ctx.patient_ids) if told_by else []
    for entry in made:
        if said and "informants" not in entry.details:
            entry.details["informants"] = [dict(s) for s in said]
        yield entry


def _section_masking(section: Section, ctx: _Ctx) -> dict[str, bool] | None:
    """The masking of a section's entries when its own confidentialityCode (CDA R2 section
    confidentiality; HL7 DS4P privacy segmented sections: a 42 CFR Part 2 section R in a
    document N) says more than the document's: ignored, an addiction-treatment section was
    filed as visible as the rest. None when it changes nothing."""
    code = section.confidentiality_code.code if section.confidentiality_code else ""
    if not code:
        return None
    flags = confidentiality_masking(code)
    if flags is None:
        ctx.warnings.append(f"CDA_UNKNOWN_CONFIDENTIALITY: {section.path}: section "
                            f"confidentialityCode {code[:16]!r} is not in table "
                            "cda_confidentiality; the document's masking applies")
        return None
    merged = {**ctx.masking, **{k: v for k, v in flags.items() if v}}
    return merged if merged != ctx.masking else None


def _section_content(section: Section, ctx: _Ctx, outer_code: str,
                     about: dict[str, Any] | None, authors: tuple = (),
                     told_by: tuple = ()) -> Iterator[Entry]:
    """``outer_code``: the code of the nearest enclosing results section, else of the top
    section. A results section makes results of what its subsections hold at any depth: a
    '30954-2 Résultats' nested in a letter's 'Synthèse' passed on the top section's code,
    and the results of its own subsections ('Biochimie', coded locally) were filed as
    plain observations, those of the same section one level higher as results."""
    code = section_code(section)
    results_section = code in RESULT_SECTIONS or outer_code in RESULT_SECTIONS
    inner_code = code if code in RESULT_SECTIONS else outer_code
    for entry in section.entries:
        if entry.act is not None:
            made = list(_statement(entry.act, section, ctx, results_section, None,
                                   about=about))
            if made:
                _attributed(entry.act, made, authors, ctx)
                _diagnosis_roles(entry.act, made, section)
            yield from made
    for sub in section.sections:
        yield from _section_entries(sub, ctx, inner_code, about, authors, told_by)


@cache
def _diagnosis_role_table() -> dict[tuple[str, str], str]:
    return {(row["kind"], row["id"]): row["role"] for row in table("cda_diagnosis_roles")}


def _role_of(template_roots: set[str], code: CD | None) -> str | None:
    """The diagnosis role an act or section says (tables/cda_diagnosis_roles.csv): by its
    template, else by its LOINC code."""
    roles = _diagnosis_role_table()
    found = next((roles[("template", t)] for t in sorted(template_roots)
                  if ("template", t) in roles), None)
    if found is None and code is not None and code.code and is_loinc_system(code.code_system):
        found = roles.get(("loinc", code.code.strip()))
    return found


def _roled(act: ClinicalStatement, out: dict[str, str], diagnoses: set[str]) -> None:
    """The path of every statement in ``act`` (itself included) that says a role -> it;
    into ``diagnoses`` the paths of those that are problems by their template (IHE PCC,
    CCD, C-CDA Problem Entry) or name none."""
    role = _role_of(act.template_roots, act.code)
    if role:
        out[act.path] = role
    kinds = _kinds()
    if not act.template_roots or any(kinds.get(t) == PROBLEM for t in act.template_roots):
        diagnoses.add(act.path)
    for rel in act.entry_relationships:
        if rel.act is not None:
            _roled(rel.act, out, diagnoses)
    if isinstance(act, Organizer):
        for component in act.components:
            _roled(component, out, diagnoses)


def _diagnosis_roles(act: ClinicalStatement, made: list[Entry], section: Section) -> None:
    """Whether a problem is an admission or a discharge diagnosis (details.diagnosis_role):
    said by the nearest act wrapping it (C-CDA Hospital Admission / Discharge Diagnosis
    4.34 / 4.33), else by its section (IHE PCC, CI-SIS, C-CDA admission and discharge
    diagnosis sections). Only the section's code said it: such an act placed elsewhere
    (a discharge diagnosis in the problem list of a discharge summary) read as any
    problem. A problem nested in another, or an observation filed as a problem for its
    ICD-10 value (a sign beside the diagnosis, CI-SIS SDM-MR's FR-Simple-Observation), is
    no diagnosis of the stay."""
    problems = [e.source_ref for e in made if e.type == PROBLEM]
    if not problems:
        return
    holders: dict[str, str] = {}
    diagnoses: set[str] = set()
    _roled(act, holders, diagnoses)
    own = _role_of(section.template_roots, section.code)
    if not holders and own is None:
        return
    for entry in made:
        path = entry.source_ref
        if entry.type != PROBLEM or path not in diagnoses or \
                any(path.startswith(p + "/") for p in problems):
            continue
        owner = max((p for p in holders if path == p or path.startswith(p + "/")), key=len,
                    default=None)
        role = holders[owner] if owner is not None else own
        if role:
            entry.details["diagnosis_role"] = role


def _attributed(act: ClinicalStatement, made: list[Entry], section_authors: tuple,
                ctx: _Ctx) -> None:
    """Who recorded the facts of one entry that name no author of their own: the nearest
    enclosing statement's author (an organizer's, an act's: CDA R2 context conduction
    through component and entryRelationship), else the section's (CDA R2 Section.author,
    which its nested sections and entries inherit unless they say otherwise), as
    details.recorded_by. A problem list a specialist wrote in a GP's summary (the section's
    author) read as recorded by nobody, and the results of a battery the lab's biologist
    authored likewise. The header's author stays implicit: every entry points at its
    document, whose details name it."""
    if all("recorded_by" in e.details for e in made):
        return
    nested: dict[str, list] = {}
    _authored(act, nested)
    if not nested and not section_authors:
        return
    for entry in made:
        if "recorded_by" in entry.details:
            continue
        path = entry.source_ref
        owner = max((p for p in nested if path.startswith(p + "/")), key=len, default=None)
        authors = nested[owner] if owner is not None else section_authors
        recorded = [a for a in (_entry_author(x, ctx) for x in authors) if a]
        if recorded:
            entry.details["recorded_by"] = recorded


def _authored(act: ClinicalStatement, out: dict[str, list]) -> None:
    """The path of every statement in ``act`` (itself included) that names authors -> them."""
    if act.authors:
        out[act.path] = act.authors
    for rel in act.entry_relationships:
        if rel.act is not None:
            _authored(rel.act, out)
    if isinstance(act, Organizer):
        for component in act.components:
            _authored(component, out)


DOCUMENT_STATUS = ("TA_ASIP", "GEN-065")  # CI-SIS FR-Statut-document: 'Statut du document'
DOCUMENT_STATUS_TEMPLATE = "1.2.250.1.213.1.1.3.48.16"  # FR-Statut-document (its template)


@cache
def _document_statuses() -> dict[tuple[str, str], str]:
    """(value's system, code) -> document status (tables/cda_document_statuses.csv)."""
    return {(row["system"], row["code"]): row["status"]
            for row in table("cda_document_statuses")}


def _document_status(act: ClinicalStatement, ctx: _Ctx) -> bool:
    """Whether ``act`` is a CI-SIS FR-Statut-document (observation GEN-065 'Statut du
    document', TA_ASIP): what it says is about the document, kept for it in
    ``ctx.document_status`` (the first one). It was filed as an observation of the patient
    'Statut du document: en cours d'exécution', and the letter in progress as final."""
    code = act.code
    if not isinstance(act, Observation) or code is None or \
            (system_name(code.code_system, code.code_system_name), code.code) != \
            DOCUMENT_STATUS:
        return False
    value = _untyped(act.values[0]) if act.values else None
    if ctx.document_status is None and isinstance(value, CD) and value.code:
        system = system_name(value.code_system, value.code_system_name)
        ctx.document_status = {
            "code": value.code, "system": system, "display": value.display or "",
            "status": _document_statuses().get((system, value.code), "")}
        ctx.document_status = {k: v for k, v in ctx.document_status.items() if v}
    return True


def _statement(act: ClinicalStatement, section: Section, ctx: _Ctx, in_results: bool,
               parent_key: str | None, specimen: str | None = None,
               panel: dict[str, str] | None = None,
               family: dict[str, Any] | None = None,
               when: str | None = None,
               isolate: _Isolate | None = None,
               lab: _Lab | None = None,
               material: dict[str, str] | None = None,
               about: dict[str, Any] | None = None,
               group: dict[str, Any] | None = None) -> Iterator[Entry]:
    """Entries for one clinical statement and what it nests (organizer components,
    entryRelationships: a problem concern's problem, an allergy concern's allergy).
    ``specimen`` is the collection time of the specimen the enclosing act or battery
    describes (IHE LAB / CI-SIS FR-Prelevement), for the results under it; ``panel`` the
    code of the battery (organizer) a result belongs to; ``family`` is set (the relative,
    when said) inside a family history: what is observed there is about a relative;
    ``when`` the time of the organizer (or scored observation) whose component this is;
    ``isolate`` the micro-organism of the isolate organizer (IHE LAB) the results are of;
    ``lab`` who performed and who validated them (the nearest IHE LAB performer and
    verifier); ``material`` the type of that specimen (blood, urine: details.specimen);
    ``about`` whom the enclosing organizer, act or section is about when it names a subject
    that is not the patient (a newborn, a fetus): CDA context conduction gives it to what
    it contains, which names none of its own (the newborn's birth weight in a battery whose
    subject is the newborn was filed as the mother's); ``group`` what the enclosing
    organizer says its components measure (tables/cda_group_organizers.csv: lenses
    prescribed or delivered, which visual acuity), for the entry's details.group."""
    if isinstance(act, ObservationMedia):
        # an image or file no entry holds (CI-SIS FR-Image-illustrative as a section's
        # entry, OPH-CR-RTN's retinographies in an organizer): it was dropped without a
        # word; where it is goes to the document's details.media (an entry's or battery's
        # own media are read there)
        if len(ctx.media) < MEDIA_KEPT:
            ctx.media.append({**_media_ref(act), "section": section_code(section) or None})
        return
    own_section = section_code(section)
    # an entry reference carries the id of the statement it names, not one of its own: had
    # it registered that id, a reference read before its target (a C-CDA goal naming the
    # health concern of a later section) would have named itself, and nothing resolved
    for ii in act.ids[:1] if ENTRY_REFERENCES.isdisjoint(act.template_roots) else ():
        if ii.root and not ii.null_flavor:
            ctx.statement_ids.setdefault(ii.key, act.path)
    if _document_status(act, ctx):
        return
    kind = _kind(act, in_results, own_section)
    if kind == SKIP:
        if DICOM_STUDY in act.template_roots:
            study = _dicom_study(act)
            if study:
                ctx.dicom_studies.append(study)
        elif act.references and EXTERNAL_REFERENCE in act.template_roots:
            # a document the whole document refers to (CARD-F-PRC: 'Document externe')
            ctx.external_references.extend(_references(act, ctx.external_references,
                                                        section))
        return
    if kind == NOT_FILED:
        _not_filed(act, kind, ctx, section)
        return
    if kind == CONTAINER and isinstance(act, Procedure) and act.mood_code in ("", "EVN") \
            and not _reported_exam(act, ctx):
        # an imaging act (DICOM Part 20 Procedure Technique) the header's serviceEvents do
        # not name (a RIS writing one documentationOf for a three-act exam): it was in no
        # entry nor in the document's service_events, lost; it is filed as the procedure
        kind = PROCEDURE
    filed_before = ctx.filed
    relative = _relative(act) if act.subject is not None else about
    if kind == FAMILY_HISTORY or family is not None or own_section == FAMILY_HISTORY_SECTION \
            or (relative is not None and kind in (PROBLEM, ALLERGY)):
        # a problem or allergy whose subject is a relative (C-CDA lets any observation name
        # one: the mother's breast cancer in the problem list) is the relative's, not the
        # patient's: it was filed as the patient's problem with details.subject
        family = relative or family or {}
        if isinstance(act, Observation) and kind in (PROBLEM, OBSERVATION, LAB_RESULT,
                                                     VITAL_SIGN, None):
            kind = FAMILY_HISTORY  # a father's infarction is no problem of the patient
    if act.null_flavor:  # 'unknown whether pregnant': the statement is no fact at all
        ctx.warnings.append(f"CDA_NULL_STATEMENT: {act.path}: {act.kind} with nullFlavor "
                            f"{act.null_flavor[:8]!r} not filed")
        return
    mood = act.mood_code
    if mood not in ("", "EVN") and kind in (LAB_RESULT, VITAL_SIGN):
        kind = OBSERVATION  # an ordered, intended or goal measurement is no result yet
    linked = _linked_specimen(act, ctx) if act.specimens and ctx.specimens else None
    if linked is not None:  # its specimen is described beside it and named by id
        specimen, material = linked[0] or specimen, linked[1] or material
    if not isinstance(act, Observation):
        taken, kind_of = _specimen_of(act, ctx, section)
        specimen, material = taken or specimen, kind_of or material
    elif act.specimens:  # C-CDA, IHE LAB: the result's own specimen, nearest of all
        material = _specimen_material(act, ctx, section) or material
    lab = _lab_of(act, lab)
    if isinstance(act, Act | Organizer) and act.participants:  # not a procedure's tools
        kits = _kits(act, ctx, section)
        if kits:
            lab = replace(lab or _Lab(), devices=tuple(kits))
    made: Entry | None = None
    if kind in (LAB_RESULT, VITAL_SIGN, OBSERVATION, PROBLEM, ALLERGY, FAMILY_HISTORY) and \
            isinstance(act, Observation):
        made = _observation(act, kind, section, ctx, parent_key)
        if made is not None and family:
            made.details["relative"] = family
        if made is not None and family is not None and made.type == ALLERGY:
            made.type = FAMILY_HISTORY  # a relative's allergy (its substance read as one)
        if made is not None and kind == LAB_RESULT:
            made.specimen_time = specimen or made.specimen_time
            if panel:
                made.details["panel"] = panel
            if material:
                made.details["specimen"] = material
            if isolate and isolate.source != act.path:  # not the identification itself
                made.details["isolate"] = isolate.germ
            if lab is not None:
                made.performer = made.performer or lab.performer
                if lab.validated_by:
                    made.details["validated_by"] = lab.validated_by
                if lab.comments:  # what the lab wrote of the whole exam, on each result
                    made.details["exam_comments"] = list(lab.comments)
                if lab.devices and "devices" not in made.details:  # its own is nearer
                    made.details["devices"] = [dict(d) for d in lab.devices]
            status = (_lab_status([r.act for r in act.entry_relationships if r.act], ctx)
                      if act.entry_relationships else None) or (lab.status if lab else None)
            if status is not None and act.status_code != "nullified":
                # the lab's word on the result (C-CDA 4.419, else its report's 4.418): a
                # preliminary result whose statusCode says completed was filed final
                made.status = status[2]
                made.details["lab_status"] = {"code": status[0], "system": status[1]}
    elif kind in (MEDICATION, IMMUNIZATION) and isinstance(act, SubstanceAdministration):
        made = _medication(act, kind, section, ctx, parent_key)
    elif kind == DISPENSE and isinstance(act, Supply) and mood in ("", "EVN"):
        made = _medication(act, MEDICATION, section, ctx, parent_key)
    elif kind == DEVICE and own_section != DEVICES_SECTION and \
            not any(p.type_code in DEVICE_PARTICIPATIONS for p in act.participants):
        # the CCD supply activity template also carries medication supplies (a supply
        # under a medication, in a medication section): a dispense when done; a C-CDA
        # Planned Supply of a medication (moodCode INT: '30 tablets of amlodipine to
        # dispense') a medication intended, as a planned medication activity is; else
        # nothing
        if isinstance(act, Supply) and mood in ("", "EVN"):
            made = _medication(act, MEDICATION, section, ctx, parent_key)
        elif isinstance(act, Supply) and PLANNED_SUPPLY in act.template_roots and \
                _names_a_product(act.product):
            made = _medication(act, MEDICATION, section, ctx, parent_key)
            kind = MEDICATION
    elif kind == DEVICE:
        made = _device(act, section, ctx, parent_key)
        if made is not None and made.system in _absent_systems() and \
                (made.system, made.code) in _absent_codes():
            made = _absence(made, kind, ctx)
        elif made is not None and mood not in ("", "EVN"):  # a device prescribed (eP-MED)
            made.type, made.details["planned"], made.details["mood"] = PLAN, DEVICE, mood
        if made is not None:
            ctx.filed += 1
            yield made
        elif ctx.filed == filed_before:
            _not_filed(act, kind, ctx, section)
        return  # what it nests (size, diameter, a comment, ALD flags) is about the device
    elif kind == PROCEDURE:
        made = _procedure(act, section, ctx, parent_key)
    elif kind == ENCOUNTER and isinstance(act, Encounter | Act):  # an act: a transfer, a
        # transport (IHE PCC / CI-SIS FR-Transfert-du-patient, FR-Transport-du-patient)
        made = _encounter_entry(act, section, ctx, parent_key)
    if made is not None and made.system in _absent_systems() and \
            (made.system, made.code) in _absent_codes():
        made = _absence(made, kind, ctx)
        if made is None:  # 'no information': said (CDA_NO_INFORMATION), nothing in it
            return
    elif made is not None and made.details.get("negated") and \
            (made.system, made.code) in _negated_absences():
        made = _negated_absence(made, kind)
    elif made is not None and kind == PROBLEM and _no_diagnosis(made, act):
        ctx.warnings.append(f"CDA_NO_INFORMATION: {made.source_ref}: a problem statement "
                            "whose diagnosis (value) is nullFlavor "
                            f"{made.details['value_null_flavor']!r}, not filed")
        return
    elif made is not None and kind == ALLERGY and _no_allergy(made):
        ctx.warnings.append(f"CDA_NO_INFORMATION: {made.source_ref}: an allergy statement "
                            "whose type (value) is nullFlavor "
                            f"{made.details['value_null_flavor']!r} and that names no "
                            "substance, not filed")
        return
    if made is not None and mood not in ("", "EVN") and kind in (IMMUNIZATION, PROCEDURE,
                                                                 OBSERVATION, ENCOUNTER):
        # a planned vaccination, procedure, test or visit (C-CDA Planned Immunization/
        # Procedure/Observation/Encounter, goals, CI-SIS plan de soins, FR-Rencontre
        # 'recontacter pour fixer RDV': moodCode INT, RQO, PRP, APT, ARQ, GOL) was filed as
        # one given, done or observed
        made.type = PLAN
        made.details["planned"] = kind
    elif made is not None and mood not in ("", "EVN") and kind == MEDICATION and \
            own_section == PLAN_OF_TREATMENT_SECTION:
        # a medication to start (C-CDA Planned Medication Activity in the plan of treatment:
        # 'begin amlodipine 5 mg next visit') was filed as one taken; elsewhere an intended
        # medication is a prescription (CI-SIS eP-MED, an EHR's orders) and stays one
        made.type = PLAN
        made.details["planned"] = kind
    if made is not None and act.references:
        _keep_references(made.details, act, section)
    if made is not None and act.entry_relationships:
        restricted = _privacy_annotation(act)
        if restricted:  # DS4P: this statement alone is restricted (a 42 CFR Part 2 problem)
            made.masking = {**made.masking, **restricted}
    if made is not None and made.type in (IMMUNIZATION, PROCEDURE) and act.performers:
        performed_by = _performed_by(act)
        if performed_by:
            made.details["performed_by"] = performed_by
    if made is not None:
        if made.effective is None and when:
            # IHE PCC / CI-SIS vital signs: effectiveTime nullFlavor NA on each measurement,
            # the time on the organizer; C-CDA assessment scale items: none, the scale's
            made.effective = when
        if relative is not None and family is None:  # a fetus, a newborn: who it is about
            made.details["subject"] = relative
        if mood not in ("", "EVN"):
            made.details["mood"] = mood  # INT, RQO, PRP, GOL...: a plan, not a fact
        if group:
            made.details["group"] = group
        _sources(act, made, ctx)
        ctx.filed += 1
        yield made
    inner_results = in_results or (isinstance(act, Organizer) and act.class_code == "BATTERY")
    if made is None and not isinstance(act, Observation) and \
            (act.entry_relationships or isinstance(act, Organizer)):
        lab = _exam_of(act, lab, ctx, section)
    own_time = made.effective if made is not None else \
        (_effective(act.effective_time, ctx) or None if isinstance(act, Organizer) else None)
    if isinstance(act, Organizer):
        battery = _panel(act, ctx, section) if act.class_code == "BATTERY" or \
            not RESULT_ORGANIZERS.isdisjoint(act.template_roots) else None
        notes = _comments(act, section) if act.class_code == "BATTERY" else []
        if notes:  # a comment on the whole battery (CR-BIO: its conclusion), coded or not
            battery = {**(battery or {}), "comments": notes}
        media = [_media_ref(c) for c in act.components if isinstance(c, ObservationMedia)] \
            if act.class_code == "BATTERY" else []
        if media:  # an image of the whole battery (CR-BIO: the electrophoresis curve)
            battery = {**(battery or {}), "media": media}
        isolate = _isolate(act, ctx, section) or isolate
        measured = _group(act, ctx, section)
        for component in act.components:
            if media and isinstance(component, ObservationMedia):
                continue  # the battery's, read above
            inner = _statement(component, section, ctx, inner_results, parent_key,
                               specimen, battery or panel, family, own_time or when,
                               isolate, lab, material, relative, measured)
            if act.status_code in ("", "completed"):
                yield from inner
                continue
            for nested in inner:
                _organizer_status(act, component, nested)
                yield nested
    # what an observation nests (a previous result, CR-BIO) is not of the same specimen,
    # nor of the same isolate nor done by the same laboratory
    inner_specimen = None if isinstance(act, Observation) else specimen
    inner_material = None if isinstance(act, Observation) else material
    concern = act.status_code if kind == CONCERN else ""
    # a comment on the concern as a whole (IHE PCC / CI-SIS: beside its problems): theirs
    concern_notes = _comments(act, section) if concern else []
    for rel in act.entry_relationships:
        if rel.act is None:
            continue
        if made is not None and isinstance(rel.act, ObservationMedia):
            # what the statement shows (IPS-FR: the advance directives' PDF): where it is
            made.details.setdefault("media", []).append(_media_ref(rel.act))
            continue
        if made is not None and ENTRY_REFERENCES & rel.act.template_roots:
            link = _entry_link(rel)  # read as before too (a procedure's reason, by code)
            links = made.details.setdefault("entry_links", [])
            if link and len(links) < ENTRY_LINKS_KEPT:
                links.append(link)
            if not links:
                del made.details["entry_links"]
        if made is not None and EXTERNAL_REFERENCE in rel.act.template_roots:
            # the document the statement refers to, written as an external reference
            # entry nested in it (IHE PCC, CI-SIS FR-Reference-externe): skipped, lost
            _keep_references(made.details, rel.act, section)
            continue
        if made is not None and _is_comment(rel.act):
            # a comment on a result, problem, procedure... (IHE PCC Comment, C-CDA Comment
            # Activity, CCD comment): the statement's, not skipped with the narrative's
            note = _comment_text(rel.act, section)
            if note:
                made.details.setdefault("comments", []).append(note)
            continue
        if made is not None and kind not in (MEDICATION, IMMUNIZATION, DISPENSE) and \
                _is_instruction(rel.act):
            _instruction(rel.act, made, section)
            continue
        if concern:  # active, completed (resolved), suspended, aborted: the clinical status
            for nested in _statement(rel.act, section, ctx, inner_results, parent_key,
                                     inner_specimen, None, family, material=inner_material,
                                     about=relative):
                if nested.type in (PROBLEM, ALLERGY):
                    nested.details.setdefault("concern_status", concern)
                    _sources(act, nested, ctx)  # the concern's, when the problem says none
                    if concern_notes:
                        nested.details["concern_comments"] = concern_notes
                    if concern == "nullified":  # the concern was recorded in error
                        nested.status = "entered-in-error"
                yield nested
            continue
        if made is not None and kind in (MEDICATION, IMMUNIZATION) and \
                isinstance(rel.act, Supply) and rel.act.mood_code in ("", "EVN") and \
                not _names_a_product(rel.act.product):
            # a dispense of this very medication (IHE PCC supply entry nested in it, CNAM-HR:
            # delivered on, by, how many): it named no product, and was dropped
            delivery = _delivery(rel.act, ctx)
            if delivery:
                made.details.setdefault("dispenses", []).append(delivery)
            continue
        if made is not None and kind in (MEDICATION, IMMUNIZATION, DISPENSE, PROBLEM, ALLERGY,
                                         FAMILY_HISTORY) and not _typed(rel.act):
            if kind in (MEDICATION, IMMUNIZATION, DISPENSE) and made.type != ABSENCE:
                _medication_part(rel, made, ctx, section)
            elif isinstance(rel.act, Observation) and not _is_qualifier(rel.act) and \
                    not (kind == ALLERGY and rel.type_code == "MFST"):
                # what else a problem says of itself (how much it bled, the follow-up of
                # its treatment, the age at onset: C-CDA 4.31) was dropped with them
                _describe(rel.act, made, "observations", ctx, section)
            continue  # a problem's status or severity, a medication's dosing: not entries
            # (a statement with an entry template of its own, e.g. the reaction of an
            # allergy coded as a problem, is one)
        if made is not None and made.type in (PROCEDURE, PLAN) and kind == PROCEDURE and \
                isinstance(rel.act, Observation) and not _typed(rel.act):
            # what the act found or how it went ('difficulty: easy', an approach), why it was
            # done (RSON): the procedure's, not an observation of the patient of its own
            if rel.type_code != "RSON":
                _describe(rel.act, made, "observations", ctx, section)
            elif "not_done_reason" not in made.details:
                _describe(rel.act, made, "reasons", ctx, section)
            continue
        if made is not None and kind == ENCOUNTER and rel.type_code == "RSON" and \
                isinstance(rel.act, Observation) and not _typed(rel.act):
            # why the visit took place (C-CDA Indication, an IHE PCC reason): read into the
            # encounter's details.diagnoses (role 'reason'), as a medication's or a
            # procedure's reasons are. It was filed a second time as a fact of its own: the
            # cough a patient came for, an undated problem 'Toux' of the problem list
            continue
        if made is not None and made.type in (PROCEDURE, PLAN) and kind == PROCEDURE and \
                INTERNAL_REFERENCE in rel.act.template_roots:
            _procedure_reference(rel, made, ctx, section)
            continue
        if made is not None and made.type == PLAN and kind == OBSERVATION and \
                isinstance(rel.act, Observation) and not _typed(rel.act):
            # what a requested exam says of the request (CI-SIS FR-Demande-d-examen: the
            # function studied, 'the requester wants a call back'): the plan's, not the
            # patient's observations
            _describe(rel.act, made, "observations", ctx, section)
            continue
        if made is not None and made.type == OBSERVATION and _is_qualifier(rel.act):
            continue  # its status, severity, certainty: read into its details (eHDSI and
            # other templates we do not know nest them), no observation of their own
        if made is not None and kind in (LAB_RESULT, VITAL_SIGN) and _unit_of(rel.act, made):
            continue  # the result's unit, not a result (a previous result nested with
            # typeCode REFR, as CR-BIO sends them, still is one)
        nested_entries = _statement(rel.act, section, ctx, inner_results, parent_key,
                                    inner_specimen, None, family,
                                    own_time if rel.type_code == "COMP" and
                                    isinstance(act, Observation) else None,
                                    *((None, None) if isinstance(act, Observation) else
                                      (isolate, lab)), inner_material, relative)
        if made is not None and kind == ENCOUNTER and \
                (ENCOUNTER_DIAGNOSIS in rel.act.template_roots or rel.type_code == "RSON"):
            # the diagnosis made at a visit (C-CDA Encounter Diagnosis) or the problem it
            # was for, filed as a problem: it said nothing of the visit, and read as a
            # problem found anywhere. details.visit: the encounter entry's key and the role
            role = "reason" if rel.type_code == "RSON" else "diagnosis"
            for nested in nested_entries:
                if nested.type == PROBLEM and (nested.source_ref == rel.act.path or
                                               nested.source_ref.startswith(rel.act.path +
                                                                            "/")):
                    nested.details.setdefault("visit", {"key": made.key, "role": role})
                yield nested
            continue
        if made is not None and made.type in (MEDICATION, IMMUNIZATION) and \
                rel.type_code in ("CAUS", "MFST"):
            # the fever a vaccination caused (IHE PCC / CI-SIS FR-Vaccination: a problem
            # entry under CAUS): still filed as a problem, saying what it is the reaction to
            # (it read as an unrelated problem)
            for nested in nested_entries:
                if nested.source_ref == rel.act.path and nested.type == PROBLEM:
                    nested.details["reaction_to"] = made.key
                yield nested
            continue
        if made is not None and made.type in (LAB_RESULT, OBSERVATION) and \
                rel.type_code != "REFR":
            # a result's parts (CI-SIS CR-GM / APSR subordinate observations: the variant,
            # reference sequence and exon of one gene) are filed each as a result, saying
            # whose: 'c.35G>A' of KRAS and of NRAS the same day are two facts, not one
            # merged, and a variant read alone named no gene (a previous result, REFR, is
            # a result of its own). The same for an observation's: the size of an imaging
            # finding (DICOM Part 20 / FR-DICOM-Quantite under a FR-DICOM-Observation), the
            # items of a score (NIHSS)
            for nested in nested_entries:
                if nested.source_ref == rel.act.path and \
                        nested.type in (LAB_RESULT, OBSERVATION):
                    nested.details["parent_result"] = _parent_result(made)
                yield nested
            continue
        if made is not None and made.type == ALLERGY and rel.type_code == "MFST":
            # a reaction written as a problem entry of its own (IHE PCC, CI-SIS
            # FR-Probleme under MFST): still filed as one, as before, saying which allergy
            # it is the manifestation of (it read as an unrelated problem)
            for nested in nested_entries:
                if nested.source_ref == rel.act.path:
                    nested.details["manifestation_of"] = made.key
                yield nested
            continue
        yield from nested_entries
    if made is None and ctx.filed == filed_before:
        _not_filed(act, kind, ctx, section)


def _sources(act: ClinicalStatement, entry: Entry, ctx: _Ctx) -> None:
    """Who stated the fact and who recorded it, from the statement's own informant and
    author (C-CDA Author Participation, IHE PCC / CI-SIS entry-level author; the informant:
    the patient, a relative, a professional): details.informants and details.recorded_by
    ({ids, role, organization, time}, as the header's authors). Both were dropped: a
    patient-reported allergy looked like one a clinician saw, and a problem carried no
    trace of who recorded it nor when. What the entry already says (its own, before its
    concern's: CDA context conduction, the nearer one wins) is kept."""
    if act.informants and "informants" not in entry.details:
        said = informants(act.informants, ctx.patient_ids)
        if said:
            entry.details["informants"] = said
    if act.authors and "recorded_by" not in entry.details:
        recorded = [_entry_author(a, ctx) for a in act.authors]
        recorded = [a for a in recorded if a]
        if recorded:
            entry.details["recorded_by"] = recorded


def _entry_author(author: Any, ctx: _Ctx) -> dict[str, Any]:  # noqa: ANN401
    """An entry's author as the header's (``_author``), or, when its id is one of the
    patient's (C-CDA patient-generated data: assignedAuthor/id = patientRole/id), the
    patient with the time: the patient's identifiers (an INS) are not copied into the
    details as a professional's."""
    entity = author.entity
    if entity is not None and ctx.patient_ids and \
            any(i.key in ctx.patient_ids for i in entity.ids if i.root):
        out: dict[str, Any] = {"source": PATIENT}
        if isinstance(author.time, TS) and author.time.value:
            out["time"] = _header_time(author.time)
        return out
    return _author(author)


# Statements that make no entry of their own by design, read where they belong: a
# specimen's collection and reception (into its results), a comment (into what it is on),
# a medication's parts and a dispense's dosage (into the medication), the document's status
# (into the document).
@cache
def _read_elsewhere() -> frozenset[str]:
    return frozenset({*SPECIMEN_COLLECTIONS, SPECIMEN_COLLECTION_APSR, SPECIMEN_RECEIVED,
                      SPECIMEN_RECEIVED_FR, DOCUMENT_STATUS_TEMPLATE,
                      DOSAGE_INSTRUCTIONS, *COMMENT_TEMPLATES})


# Entry kinds that file a statement when it names something: one naming nothing is said
_FILED_KINDS = frozenset({LAB_RESULT, VITAL_SIGN, OBSERVATION, PROBLEM, ALLERGY,
                          FAMILY_HISTORY, MEDICATION, IMMUNIZATION, DISPENSE, DEVICE,
                          PROCEDURE, ENCOUNTER})


def _not_filed(act: ClinicalStatement, kind: str | None, ctx: _Ctx,
               section: Section) -> None:
    """A statement that made no entry, nor did anything it holds: counted for one
    CDA_NOT_FILED warning per kind and document (first path, count; codes and templates,
    never the patient's data), unless it is structure read elsewhere or holding nothing
    (a comment, a specimen, a reference, an empty organizer or concern). They were dropped
    without a word: an IHE Pharm PADV, a CI-SIS patient transfer, a dispense whose product
    reference pointed nowhere (eDISP-MED)."""
    if kind == CONCERN and not act.entry_relationships and \
            (act.text.strip() or act.text_reference):
        # a concern said in words alone (C-CDA R2.1 Health Concern Act, whose
        # observations are optional): not filed, but not without a word either
        what = "concern act holding no statement, only words"
    elif kind in (CONCERN, CONTAINER) or isinstance(act, Organizer | ObservationMedia):
        return  # what they hold was said (or filed) on its own; a container is read
        # elsewhere (the imaging act of a CR-IMG: in the header's service_events)
    elif any(t.root in _read_elsewhere() for t in act.template_ids):
        return
    else:
        what = _not_filed_what(act, kind, section)
        if what is None:
            return
    seen = ctx.not_filed.get(what)
    if seen is None:
        ctx.not_filed[what] = [1, act.path]
    else:
        seen[0] += 1


def _not_filed_what(act: ClinicalStatement, kind: str | None, section: Section) -> str | None:
    """What a statement not filed is, for the CDA_NOT_FILED warning; None: nothing to say
    (structure read elsewhere, or nothing said beyond the narrative)."""
    if kind == NOT_FILED:
        meanings = _kind_meanings()
        what = next((meanings[t.root] for t in act.template_ids
                     if _kinds().get(t.root) == NOT_FILED), act.kind)
    elif kind in _FILED_KINDS:
        if isinstance(act, Supply) and act.mood_code not in ("", "EVN"):
            return None  # a supply ordered with a prescription: its quantity, read there
        what = f"{kind} statement naming nothing (no code, words nor value)"
        if isinstance(act, Observation) and act.values and \
                _placeholder_value(_untyped(act.values[0]), section):
            what = f"{kind} whose value is a template placeholder ('(texte libre)'...)"
        elif isinstance(act, Observation) and _empty_string(act.values):
            what = f"{kind} whose value is an empty string and whose text says nothing"
    else:
        parts = _medication_parts()
        if _is_comment(act):
            return None
        if _is_instruction(act) and _SECTION_ENTRY.search(act.path):
            # an instruction that is an entry of its own (C-CDA Plan of Treatment section:
            # 'surveiller la glycémie matin et soir'): read only as a statement's part, it
            # was dropped without a word; its words are the section's narrative. (One
            # nested in a statement not filed goes with it: that one is said.)
            return "instruction to the patient outside any statement (in the narrative only)"
        if any(t.root in parts for t in act.template_ids):
            return None
        if not act.template_ids and (act.code is None or not act.code.code):
            return None  # no template, no code: nothing said beyond the narrative
        template = act.template_ids[0].root if act.template_ids else "no templateId"
        code = f" code {act.code.code[:40]}" if act.code is not None and act.code.code \
            else ""
        what = f"{act.kind} {template[:64]}{code} of a kind not read here"
    return what


INTERNAL_REFERENCE = "1.3.6.1.4.1.19376.1.5.3.1.4.4.1"  # IHE PCC (CI-SIS FR-Reference-interne)
EXTERNAL_REFERENCE = "1.3.6.1.4.1.19376.1.5.3.1.4.4"  # IHE PCC (CI-SIS FR-Reference-externe)
ENTRY_REFERENCES = frozenset({
    INTERNAL_REFERENCE,
    "2.16.840.1.113883.10.20.22.4.122",  # C-CDA Entry Reference
})
ENTRY_LINKS_KEPT = 20  # per entry: a reference list is no place for a document's worth


def _entry_link(rel: EntryRelationship) -> dict[str, Any] | None:
    """What an entry reference nested in a statement names (IHE PCC internal reference,
    CI-SIS FR-Reference-interne, C-CDA Entry Reference 4.122: another entry of the same
    document, by its id): {type (the entryRelationship's typeCode: RSON, GEVL, SPRT...),
    id}; the key of the entry it names is added once the whole body is read
    (``_resolve_entry_links``). It was skipped: a care plan's outcome lost the goal it
    evaluates, an intervention the concern it is for."""
    act = rel.act
    ids = [i.key for i in act.ids if i.root and not i.null_flavor] if act is not None else []
    if not ids:
        return None
    return {k: v for k, v in {"type": rel.type_code or None, "id": ids[0]}.items() if v}


def _entries_under(entries: list[Entry]) -> dict[str, list[str]]:
    """Each statement path -> the keys of the entries read from statements under it (one
    pass over the paths' steps: a hostile document's thousands of links cost no more)."""
    out: dict[str, list[str]] = {}
    for entry in entries:
        steps = entry.source_ref.split("/")
        for depth in range(2, len(steps)):
            held = out.setdefault("/".join(steps[:depth]), [])
            if len(held) <= ENTRY_LINKS_KEPT:
                held.append(entry.key)
    return out


def _resolve_entry_links(entries: list[Entry], ctx: _Ctx) -> None:
    """Each entry link gets the key of the entry of this document it names; one naming a
    statement that files no entry of its own but holds some (a problem concern, an
    organizer of measurements) gets theirs (``keys``). One naming nothing read here (an
    id mistyped, a statement not filed) keeps its id and is said once per document: what
    it points at is not in the dossier."""
    missing: list[str] = []
    under: dict[str, list[str]] | None = None  # statement path -> keys of entries under it
    for entry in entries:
        for link in entry.details.get("entry_links") or ():
            key = ctx.entry_ids.get(link["id"])
            path = ctx.statement_ids.get(link["id"]) if key is None else None
            if path and under is None:
                under = _entries_under(entries)
            held = [k for k in (under or {}).get(path or "", ())
                    if k != entry.key][:ENTRY_LINKS_KEPT]
            if key is not None and key != entry.key:
                link["key"] = key
            elif held:
                link["keys"] = held
            elif key is None:
                missing.append(entry.source_ref)
    if missing:
        ctx.warnings.append(f"CDA_ENTRY_REFERENCE_UNRESOLVED: {missing[0]}: entry reference "
                            "to an id no statement of this document files: kept as the id"
                            + (f" ({len(missing)} in the document)" if len(missing) > 1
                               else ""))
EXTERNAL_REFERENCES_KEPT = 20  # per statement (CDA allows any number)


def _keep_references(details: dict[str, Any], act: ClinicalStatement,
                     section: Section) -> None:
    """details.external_references of an entry, with what ``act`` refers to."""
    kept = details.get("external_references") or []
    found = _references(act, kept, section)
    if found:
        details["external_references"] = [*kept, *found]


def _references(act: ClinicalStatement, kept: list,
                section: Section | None = None) -> list[dict[str, Any]]:
    """What a statement's reference elements point at (CDA R2 act.reference: an
    externalDocument, externalAct, externalObservation or externalProcedure): the
    advance directives an observation is the summary of (CI-SIS DLU), the prescription a
    dispense fulfils (eDISP typeCode XCRPT), the guideline a problem refers to (IPS-FR), the
    report of a procedure (C-CDA). They were dropped: the dossier could not find the
    document a fact came from or rests on. Kept as {kind, type, id, code, text, url, set_id,
    version}: identifiers and where it is, never fetched. A reference into the narrative
    ('#document-ref-1', as the CI-SIS PPS writes it) is no location: the words it points at
    are the text. Bounded with those ``kept``."""
    out: list[dict[str, Any]] = []
    for ref in act.references[:max(0, EXTERNAL_REFERENCES_KEPT - len(kept))]:
        ids = [i.key for i in ref.ids if i.root and not i.null_flavor]
        url, text = ref.text_reference.strip(), ref.text
        if url.startswith("#"):
            text = text or (referenced_text(url, section) if section is not None else "")
            url = ""
        said: dict[str, Any] = {
            "kind": ref.kind or None, "type": ref.type_code or None,
            "id": ids[0] if ids else None,
            "code": ({"code": ref.code.code, "system": system_name(ref.code.code_system),
                      **({"display": ref.code.display} if ref.code.display else {})}
                     if ref.code is not None and ref.code.code else None),
            "text": text[:500] or None, "url": url[:500] or None,
            "set_id": ref.set_id.key if ref.set_id is not None and ref.set_id.root else None,
            "version": ref.version_number.strip()[:20] or None}
        said = {k: v for k, v in said.items() if v is not None}
        if {"id", "url", "code", "text"} & said.keys():  # something that finds it
            out.append(said)
    return out


def _parent_result(parent: Entry) -> dict[str, str]:
    """The result a nested result is part of, as ``details['parent_result']`` says it for
    HL7v2 (OBR-26: code, value; part of the fact, dossiers/deposit.fact_of), with its key."""
    said = {"code": parent.code or "", "system": parent.system or "",
            "value": (parent.value or "")[:200], "key": parent.key}  # a finding's prose: its
    # start names it
    return {k: v for k, v in said.items() if v}


MEDIA_KEPT = 50  # images of the body no entry holds, listed on the document


def _media_ref(media: ObservationMedia) -> dict[str, Any]:
    """Where an image or file of the body is (CDA observationMedia: CI-SIS
    FR-Image-illustrative, an electrophoresis curve in its battery): its media type, ID
    (what the narrative's renderMultiMedia points at), path and size; the content stays in
    the document (its attachment), never copied into details. It was dropped."""
    value = media.value
    out: dict[str, Any] = {"media_type": (value.media_type or None) if value else None,
                           "id": media.xml_id or None, "ref": media.path}
    if value is not None and value.representation == "B64" and value.text:
        out["bytes"] = len("".join(value.text.split())) * 3 // 4  # about: not decoded
    elif value is not None and value.reference:
        out["reference"] = value.reference[:500]
    return {k: v for k, v in out.items() if v is not None}


def _procedure_reference(rel: EntryRelationship, entry: Entry, ctx: _Ctx,
                         section: Section) -> None:
    """An internal reference a procedure nests: to the problem it was done for (RSON:
    details.reasons, as a reason observation is read) or to what it used (the device of
    an anaesthesia, CI-SIS: details.references), by its code. Both were dropped."""
    act = rel.act
    if act is None or act.code is None:
        return
    found = _coded_or_words(act.code, ctx, section)
    if not found:
        return
    if rel.type_code == "RSON":
        if "not_done_reason" not in entry.details:
            entry.details.setdefault("reasons", []).append({
                "code": found.get("code"), "system": found.get("system"),
                "display": found.get("display") or found.get("text"), "value": None,
                "unit": None})  # its system too: a CIM-10 reason was exported uncoded
    else:
        entry.details.setdefault("references", []).append(found)


COMMENT_TEMPLATES = frozenset({
    "1.3.6.1.4.1.19376.1.5.3.1.4.2",  # IHE PCC Comment (CI-SIS FR-Commentaire-ER)
    "2.16.840.1.113883.10.20.22.4.64",  # C-CDA Comment Activity
    "2.16.840.1.113883.10.20.1.40",  # CCD Comment
    "2.16.840.1.113883.10.20.22.4.202",  # C-CDA Note Activity (a clinician's note: on what
    # nests it, else the section's narrative holds it; it was 'of a kind not read here')
})
ANNOTATION_COMMENT = "48767-8"  # LOINC Annotation comment: the code of all three


def _is_comment(act: ClinicalStatement) -> bool:
    return act.kind == "act" and (
        not COMMENT_TEMPLATES.isdisjoint(act.template_roots) or
        (act.code is not None and act.code.code == ANNOTATION_COMMENT and
         system_name(act.code.code_system) == LOINC))


def _comment_text(act: ClinicalStatement, section: Section) -> str:
    """The words of a comment act: its text, inline or the narrative it references."""
    text = act.text.strip() or referenced_text(act.text_reference, section).strip()
    return "" if is_placeholder(text) else text[:BODY_TEXT_CAP]


def _comments(act: ClinicalStatement, section: Section) -> list[str]:
    """The comments an organizer (a battery) holds, in order: as components (CI-SIS) or
    entryRelationships."""
    nested = [rel.act for rel in act.entry_relationships if rel.act is not None]
    if isinstance(act, Organizer):
        nested = [*act.components, *nested]
    notes = [_comment_text(a, section) for a in nested if _is_comment(a)]
    return [n for n in notes if n]


def _absence(entry: Entry, kind: str, ctx: _Ctx) -> Entry | None:
    """A statement coded 'no known medications' (IPS absent-unknown codes, CI-SIS) was filed
    as a medication, a vaccination, a procedure whose product is that code. Nothing known:
    an 'absence' entry saying of what (details.absent); no information: not filed."""
    if _absent_codes()[(entry.system or "", entry.code or "")] != "absent":
        ctx.warnings.append(f"CDA_NO_INFORMATION: {entry.source_ref}: "
                            f"{'an' if kind[0] in 'aeiou' else 'a'} {kind} statement "
                            "that says there is no information, not filed")
        return None
    entry.type, entry.mapped = ABSENCE, True  # a shared code system, not a local code
    entry.details["absent"] = kind
    if entry.status == "active":  # the list is empty now: a statement made, no result to come
        entry.status = "final"  # ('active' was exported as a preliminary Observation)
    return entry


def _no_diagnosis(entry: Entry, act: ClinicalStatement) -> bool:
    """A problem whose value, the diagnosis, is a nullFlavor with no words, under a code that
    only says 'problem' (C-CDA R2.1 Problem Observation, value nullFlavor NI: 'no information
    on the problems'; CI-SIS FR-Probleme the same). It was filed as a problem named
    'Problem', which a clinician reads as a diagnosis made. A problem the text names, one
    whose value points at words (found or not: the sender meant to name something), or a
    negated one (an absence, read above), is not this."""
    value = _untyped(act.values[0]) if isinstance(act, Observation) and act.values else None
    return (isinstance(value, CD) and not value.original_text
            and not value.original_text_reference
            and entry.value is None and "value_null_flavor" in entry.details
            and not entry.details.get("negated")
            and _negated_absences().get((entry.system or "", entry.code or ""))
            == "no-known-problems")


ASSERTION = "ASSERTION"  # HL7 ActCode: the C-CDA Allergy - Intolerance Observation's code


def _no_allergy(entry: Entry) -> bool:
    """A C-CDA R2.1 Allergy - Intolerance Observation (code ASSERTION) whose value, the
    allergy's type, is a nullFlavor and whose substance is coded nullFlavor with no words
    (value NI, playingEntity/code NI: 'no information on allergies'). It was filed as an
    allergy 'ASSERTION' to nothing. One naming its substance (coded or in words), a type
    with an unknown substance ('allergy to substance', participant UNK: an allergy the
    patient cannot name), or a negated one, is not this."""
    return (entry.code == ASSERTION and entry.system == ACT_CODE and entry.value is None
            and "value_null_flavor" in entry.details and not entry.details.get("negated")
            and not entry.details.get("allergen_text"))


def _negated_absence(entry: Entry, kind: str) -> Entry:
    """A generic code negated (C-CDA: no 'allergy to substance', no 'problem', no 'drug or
    medicament') is the list said empty: the 'absence' an IPS document says with its own
    code, under that code (cda_negated_absences.csv), the code sent in details. An allergy
    naming its substance in words only ('no allergy to latex') is no absence."""
    if kind == ALLERGY and "allergen_text" in entry.details:
        return entry
    sent = {"code": entry.code, "system": entry.system, "display": entry.display}
    entry.code = _negated_absences()[(entry.system or "", entry.code or "")]
    entry.system = IPS_ABSENT_SYSTEM
    entry.display = entry.code.replace("-", " ").capitalize()  # 'No known allergies'
    entry.type, entry.mapped = ABSENCE, True
    if entry.status == "active":  # as ``_absence``: a statement made, no result to come
        entry.status = "final"
    entry.value = entry.value_type = None  # the generic code was the value: no finding
    for said in ("negated", "value_code", "observation_code"):  # all in 'absent' now
        entry.details.pop(said, None)
    entry.details["absent"] = kind
    entry.details["absent_as_sent"] = {k: v for k, v in sent.items() if v}
    return entry


FAMILY_HISTORY_SECTION = "10157-6"  # LOINC History of family member diseases
DEVICES_SECTION = "46264-8"  # LOINC History of medical device use
# The participations that name a device a supply is of: DEV (CCD, CI-SIS FR-Dispositif-
# medical, eHDSI) and PRD, the product (C-CDA Non-Medicinal Supply Activity and Planned
# Supply hold their Product Instance so: the pacemaker of a C-CDA medical equipment section
# was 'naming nothing' and not filed)
DEVICE_PARTICIPATIONS = frozenset({"DEV", "PRD"})
PLANNED_SUPPLY = "2.16.840.1.113883.10.20.22.4.43"  # C-CDA Planned Supply (moodCode INT)
_SELF = "ONESELF"  # HL7 RoleCode: the subject is the patient


@cache
def _result_statuses() -> dict[str, str]:
    """A laboratory result's ActStatus -> its result status where they differ
    (tables/cda_result_statuses.csv: active -> preliminary)."""
    return column_map("cda_result_statuses", "status_code", "status")


def _organizer_status(act: Organizer, component: ClinicalStatement, nested: Entry) -> None:
    """What an organizer's own statusCode says of what it holds. Nullified: the battery
    (or vital signs cluster) was recorded in error, and all of it with it; its results
    were filed final. Aborted, cancelled, active...: the status of its components that
    state none of their own (statusCode is required, some senders put it on the battery
    only); a result with its own statusCode, or a laboratory status, keeps it."""
    if act.status_code == "nullified":
        nested.status = "entered-in-error"
    elif not component.status_code and nested.source_ref == component.path and \
            "lab_status" not in nested.details and nested.status != "entered-in-error":
        nested.status = _status(act.status_code)
        if nested.type == LAB_RESULT:
            nested.status = _result_statuses().get(act.status_code.strip(), nested.status)


def _relative(act: ClinicalStatement) -> dict[str, Any] | None:
    """Whom a statement is about when it is not the patient (CDA subject/relatedSubject:
    a family member, a fetus): the relationship code (HL7 RoleCode FTH, MTH, FAMMEMB...) and
    the relative's sex when given; None for the patient."""
    return _relative_of(act.subject)


def _relative_of(subject: Any) -> dict[str, Any] | None:
    """``_relative`` of a subject participation (a statement's or a section's)."""
    if subject is None or subject.role != "relatedSubject":
        return None
    code = subject.code
    if code is not None and code.code == _SELF:
        return None
    out: dict[str, Any] = {}
    if code is not None and code.code:
        out.update(code=code.code, system=system_name(code.code_system),
                   display=code.display or code.original_text)
    person = subject.person
    if person is not None and person.administrative_gender is not None and \
            person.administrative_gender.code:
        out["sex"] = person.administrative_gender.code
    if person is not None:
        # birthTime, or the sdtc: extensions C-CDA puts on a subject (birthTime, deceasedInd)
        born = person.birth_time.value if person.birth_time is not None else ""
        for ext in person.extensions:
            if ext.namespace == SDTC and ext.name == "birthTime" and not born:
                born = ext.attributes.get("value", "")
            elif ext.namespace == SDTC and ext.name == "deceasedInd":
                out["deceased"] = ext.attributes.get("value", "") == "true"
        if born and _iso_value(born):
            out["birth_time"] = _iso_value(born)
    return out


@cache
def _group_organizers() -> frozenset[str]:
    return frozenset(row["template"] for row in table("cda_group_organizers"))


def _group(act: Organizer, ctx: _Ctx, section: Section) -> dict[str, Any] | None:
    """What an organizer listed in tables/cda_group_organizers.csv says its components
    measure: its code ({code, system, display} or {text}) and the code's qualifiers. Under
    OPH-BRE's 'lentilles prescrites' and 'lentilles délivrées' the same LOINC codes were
    filed alike (and their facts merged): which lens was which was lost."""
    if act.code is None or _group_organizers().isdisjoint(act.template_roots):
        return None
    said = _coded_or_words(act.code, ctx, section)
    if said is None:
        return None
    group: dict[str, Any] = {k: v for k, v in said.items() if v}
    if act.code.qualifiers:
        holder = Entry(type=OBSERVATION, key="", source_ref=act.path)
        _qualify(act.code, holder, "qualifiers", ctx, section)
        if holder.details.get("qualifiers"):
            group["qualifiers"] = holder.details["qualifiers"]
    return group


RESULT_ORGANIZERS = frozenset({
    # a panel whatever its classCode: C-CDA's Result Organizer allows CLUSTER or BATTERY
    # (EHRs abroad send CLUSTER), and its results named no panel at all; the nearest
    # organizer's code is the panel, as a battery's nested in a battery is
    "2.16.840.1.113883.10.20.22.4.1",  # C-CDA Result Organizer
    "2.16.840.1.113883.10.20.1.32",  # CCD 1.0 result organizer
})


def _panel(act: Organizer, ctx: _Ctx, section: Section) -> dict[str, str] | None:
    """The code of a battery (lab panel: 'lipid panel', 'CBC') for its results, else its
    name in words (code nullFlavor + originalText, as C-CDA senders without a panel code
    write it: the panel was lost)."""
    coded = _code(act.code, ctx, section) if act.code is not None else None
    if not coded or not coded[0]:
        words = original_text(act.code, section) if act.code is not None else ""
        return {"text": words[:300]} if words else None
    return {"code": coded[0], "system": coded[1], "display": coded[2]}


SPECIMEN_COLLECTION = "1.3.6.1.4.1.19376.1.3.1.2"  # IHE LAB Specimen Collection procedure
SPECIMEN_COLLECTIONS = frozenset({
    SPECIMEN_COLLECTION,  # IHE LAB / CI-SIS FR-Prelevement
    "1.2.250.1.213.1.1.3.77",  # CI-SIS FR-Prelevement named without the IHE LAB template
    # it builds on: the results lost when and what was collected (CDA_NOT_FILED instead)
    "2.16.840.1.113883.10.20.22.4.415",  # C-CDA Specimen Collection Procedure (a result
    # organizer's component since C-CDA R2.1 companion guide / 3.0)
    "2.16.840.1.113883.10.22.4.30",  # HL7 CDA IPS Specimen Collection
})
# An isolate organizer: IHE LAB (PaLM, XD-LAB) Isolate Organizer, and CI-SIS
# FR-Isolat-microbiologique, which a sender may name alone (its germ was read as the
# specimen of the results, urine become 'Escherichia coli', and two germs' antibiograms of
# one value were one fact)
ISOLATE_ORGANIZERS = frozenset({"1.3.6.1.4.1.19376.1.3.1.5", "1.2.250.1.213.1.1.3.79"})


@dataclass(frozen=True, slots=True)
class _Isolate:
    """The germ of an isolate (details.isolate of its results) and ``source``: the path of
    the observation that identified it ('' when the organizer's specimen names it), which
    is the identification result itself and does not carry it."""

    germ: dict[str, str]
    source: str = ""


@cache
def _organism_codes() -> frozenset[tuple[str, str]]:
    return frozenset((row["system"], row["code"])
                     for row in table("organism_identification_codes"))


def _isolate(act: Organizer, ctx: _Ctx, section: Section) -> _Isolate | None:
    """The micro-organism an isolate organizer is about (IHE LAB / CI-SIS
    FR-Isolat-microbiologique: its template, specimen/specimenRole/specimenPlayingEntity coded in
    SNOMED CT, its words in originalText), for the results it holds: the count and the
    antibiogram of each germ carry no organism of their own, and two isolates' 'amoxicillin:
    R' and 'amoxicillin: S' could not be told apart (the organism was lost). When no
    specimen names it, the germ is the value of the one 'organism identified' observation
    (tables/organism_identification_codes.csv) the isolate, or a culture CLUSTER, holds."""
    isolate_template = not ISOLATE_ORGANIZERS.isdisjoint(act.template_roots)
    if not isolate_template and act.class_code != "CLUSTER":
        return None
    if isolate_template:  # a C-CDA result organizer is also a CLUSTER, and its specimen
        # is the material (blood), not a germ
        for spec in act.specimens:
            entity = spec.entity
            if entity is None or entity.player_code is None:
                continue
            germ = _germ(entity.player_code, ctx, section)
            if germ:
                ids = [i.key for i in entity.ids if i.root and not i.null_flavor]
                if ids:
                    germ["id"] = ids[0]  # the isolate number: the same germ across reports
                return _Isolate(_told_apart(germ, act, ctx))
    found = _identifications(act)
    if len(found) != 1:  # none, or two germs in one cluster: which result is whose is unsaid
        return None
    obs = found[0]
    value = _untyped(obs.values[0])
    germ = _germ(value, ctx, section) if isinstance(value, CD) else \
        {"text": value.text.strip()[:300]} if isinstance(value, ST) and value.text.strip() \
        else None  # a germ named in words only ('E. coli BLSE')
    return _Isolate(_told_apart(germ, act, ctx), obs.path) if germ else None


def _told_apart(germ: dict[str, str], act: Organizer, ctx: _Ctx) -> dict[str, str]:
    """``germ``, told apart from the isolates of the same germ read before it in the
    document when no specimen id does (two strains of E. coli, with and without an ESBL,
    each with its antibiogram: CI-SIS FR-Isolat-microbiologique's specimenRole/id is
    optional): by the isolate organizer's id, else its rank ('2'). Both antibiograms'
    'gentamicin: S' had one fact (the report sent again confirmed the first strain's twice)
    and the FHIR export one isolate for both. The first isolate of a germ keeps the germ
    alone, as another channel names it."""
    if germ.get("id"):
        return germ
    key = (germ.get("system", ""), germ.get("code", ""), germ.get("text", ""))
    rank = ctx.isolate_germs.get(key, 0) + 1
    ctx.isolate_germs[key] = rank
    if rank == 1:
        return germ
    ids = [i.key for i in act.ids if i.root and not i.null_flavor]
    return {**germ, "id": ids[0] if ids else str(rank)}


def _identifications(act: Organizer) -> list[Observation]:
    """The 'organism identified' observations among an organizer's components and those of
    the batteries it holds (IHE LAB: an identification battery beside the antibiogram)."""
    codes = _organism_codes()
    found: list[Observation] = []
    for component in act.components:
        nested = component.components if isinstance(component, Organizer) else [component]
        for obs in nested:
            if isinstance(obs, Observation) and obs.values and obs.code is not None and \
                    obs.code.code and \
                    (system_name(obs.code.code_system), obs.code.code) in codes:
                found.append(obs)
    return found


def _germ(code: CD, ctx: _Ctx, section: Section) -> dict[str, str] | None:
    """A micro-organism as {code, system, display}, with the lab's words ('E. coli BLSE')
    as text when they say more than the code's name; None when neither is there."""
    coded = _code(code, ctx, section)
    text = original_text(code, section)
    out = {"code": coded[0], "system": coded[1], "display": coded[2]} if coded else {}
    if text and text != out.get("display"):
        out["text"] = text
    return out if out.get("code") or text else None


def _specimen_of(act: ClinicalStatement, ctx: _Ctx,
                 section: Section) -> tuple[str | None, dict[str, str] | None]:
    """(when the specimen was taken, what it is) for the results under ``act``: the
    effectiveTime and the specimen (participant PRD / participantRole SPEC / playingEntity
    code: BLD, UR in HL7 table 0487, or SNOMED CT) of the Specimen Collection procedure an
    IHE LAB act nests, or a battery or isolate organizer holds as a component (one specimen
    per battery) (CI-SIS FR-Prelevement puts the time in high; C-CDA's own Specimen
    Collection Procedure in a result organizer was not recognised); else, for the type, the
    act's own specimen (C-CDA result organizer, IHE XD-LAB act), but not an isolate's,
    which is its germ. The type was not read at all."""
    own = _specimen_material(act, ctx, section) if act.specimens and \
        ISOLATE_ORGANIZERS.isdisjoint(act.template_roots) else None
    nested = [rel.act for rel in act.entry_relationships]
    if isinstance(act, Organizer):
        nested.extend(act.components)
    for proc in nested:
        if proc is None or proc.kind != "procedure" or \
                SPECIMEN_COLLECTIONS.isdisjoint(proc.template_roots):
            continue
        return _collection(proc, ctx, section, own)
    return None, own


def _collection(proc: ClinicalStatement, ctx: _Ctx, section: Section,
                own: dict[str, Any] | None = None) -> tuple[str | None, dict[str, Any] | None]:
    """(when, what) of one Specimen Collection procedure: its time, and the type of what it
    produced (else ``own``) with the site it was taken from, the specimen's condition and the
    time the lab received it."""
    material = _collected(proc, ctx, section) or own
    sites = getattr(proc, "target_site_codes", None) or getattr(proc, "approach_site_codes", None)
    site = next((found for found in (_coded_or_words(c, ctx, section) for c in sites)
                 if found), None) if sites else None
    if site:  # where it was taken from (C-CDA targetSiteCode 'specimen source site', IHE
        # LAB / CDA-CH approachSiteCode 'Entnahmeort'; HL7v2 SPM-8): a swab of which wound
        material = {**(material or {}), "site": site}
    if proc.entry_relationships:
        conditions = _specimen_conditions(proc, ctx, section)
        if conditions:  # hemolysed, clotted...: said of the specimen, read with it
            material = {**(material or {}), "condition": conditions}
        received = _received_time(proc, ctx)
        if received:
            material = {**(material or {}), "received": received}
    return _collection_time(proc, ctx), material


SPECIMEN_COLLECTION_APSR = "1.3.6.1.4.1.19376.1.3.10.4.1"  # IHE PaLM (APSR) specimen
# collection, CI-SIS FR-Prelevement-APSR: an entry of its own in a specimen section


def _specimens_by_id(sections: list[Section], ctx: _Ctx) -> dict[str, tuple[str | None,
                                                                        dict[str, Any] | None]]:
    """The Specimen Collection procedures that are entries of a section (a specimen section:
    ELGA 'Probeninformation', CI-SIS CR-GM 'Informations sur le prélèvement', C-CDA senders
    writing 4.415 beside the results) by the ids of their specimen (specimen/specimenRole or
    participant PRD/participantRole): a result names its specimen by that id (IHE PaLM,
    C-CDA Result Observation specimen). Only these top-level entries are looked at."""
    found: dict[str, tuple[str | None, dict[str, Any] | None]] = {}
    pending = list(sections)
    while pending:
        section = pending.pop()
        pending.extend(section.sections)
        for entry in section.entries:
            proc = entry.act
            if proc is None or proc.kind != "procedure":
                continue
            roots = proc.template_roots
            if SPECIMEN_COLLECTIONS.isdisjoint(roots) and SPECIMEN_COLLECTION_APSR not in roots:
                continue
            roles = [spec.entity for spec in proc.specimens] + \
                [part.entity for part in proc.participants if part.type_code == SPECIMEN_PRODUCT]
            keys = [i.key for role in roles if role is not None
                    for i in role.ids if i.root and not i.null_flavor]
            if keys:
                collected = _collection(proc, ctx, section)
                for key in keys:
                    found.setdefault(key, collected)
    return found


def _linked_specimen(act: ClinicalStatement,
                     ctx: _Ctx) -> tuple[str | None, dict[str, Any] | None] | None:
    """The collection of the specimen ``act`` names by id (specimen/specimenRole/id), when a
    section holds it as an entry of its own; None otherwise. Not for an isolate organizer,
    whose specimen is its germ."""
    if not ISOLATE_ORGANIZERS.isdisjoint(act.template_roots):
        return None
    for spec in act.specimens:
        if spec.entity is not None:
            for ii in spec.entity.ids:
                if ii.root and not ii.null_flavor and ii.key in ctx.specimens:
                    return ctx.specimens[ii.key]
    return None


SPECIMEN_CONDITION = "2.16.840.1.113883.10.20.22.4.421"  # C-CDA Specimen Condition Observation


def _specimen_conditions(proc: ClinicalStatement, ctx: _Ctx,
                         section: Section) -> list[dict[str, str]]:
    """The condition of a specimen as its collection procedure says it (C-CDA Specimen
    Condition Observation, HL7 table 0493: HEM hemolysed, CLOT clotted, LIP lipemic...):
    skipped as no result, it was lost, and a potassium on a hemolysed tube read as any."""
    found = []
    for rel in proc.entry_relationships:
        obs = rel.act
        if isinstance(obs, Observation) and obs.values and \
                any(t.root == SPECIMEN_CONDITION for t in obs.template_ids):
            value = _untyped(obs.values[0])
            coded = _coded_or_words(value, ctx, section) if isinstance(value, CD) else None
            if coded:
                found.append(coded)
    return found


SPECIMEN_RECEIVED = "1.3.6.1.4.1.19376.1.3.1.3"  # IHE LAB (XD-LAB, PaLM) Specimen Received
# (CI-SIS FR-Echantillon-date-reception, CDA-CH lab reports): act SPRECEIVE (IHEActCode)
SPECIMEN_RECEIVED_FR = "1.2.250.1.213.1.1.3.107"  # CI-SIS FR-Echantillon-date-reception


def _received_time(proc: ClinicalStatement, ctx: _Ctx) -> str | None:
    """When the laboratory received the specimen (the effectiveTime of the Specimen Received
    act a Specimen Collection procedure nests): it was skipped with the act, and a
    specimen that waited two days before analysis (a potassium, a culture) looked fresh."""
    for rel in proc.entry_relationships:
        act = rel.act
        if act is not None and act.kind == "act" and (
                SPECIMEN_RECEIVED in act.template_roots or
                SPECIMEN_RECEIVED_FR in act.template_roots or
                act.code is not None and act.code.code == "SPRECEIVE"):
            return _collection_time(act, ctx)
    return None


def _collection_time(proc: ClinicalStatement, ctx: _Ctx) -> str | None:
    t = proc.effective_time
    if isinstance(t, IVL) and not t.value:  # the end of the collection, else its start
        for bound in (t.high, t.low, t.center):
            if isinstance(bound, TS) and bound.value:
                return _iso_value(bound.value, ctx.warnings, bound.path) or None
        return None
    return _effective(t, ctx) or None


SPECIMEN_PRODUCT = "PRD"  # participant typeCode of the specimen a collection produced


def _collected(proc: ClinicalStatement, ctx: _Ctx, section: Section) -> dict[str, str] | None:
    """The type of the specimen a Specimen Collection procedure produced (its participant
    PRD, or a specimen element some senders use there)."""
    for part in proc.participants:
        entity = part.entity
        if part.type_code == SPECIMEN_PRODUCT and entity is not None and \
                entity.player_code is not None:
            found = _coded_or_words(entity.player_code, ctx, section)
            if found:
                return found
    return _specimen_material(proc, ctx, section) if proc.specimens else None


def _specimen_material(act: ClinicalStatement, ctx: _Ctx,
                       section: Section) -> dict[str, str] | None:
    """The type of the specimen an act names in specimen/specimenRole/specimenPlayingEntity
    (C-CDA, IHE LAB), as {code, system, display} (the shape HL7v2 SPM-4 would have), else
    the words of its originalText ({text})."""
    for spec in act.specimens:
        entity = spec.entity
        if entity is not None and entity.player_code is not None:
            found = _coded_or_words(entity.player_code, ctx, section)
            if found:
                return found
    return None


@dataclass(frozen=True, slots=True)
class _Lab:
    """What the laboratory says of the results under an act, battery or isolate: who
    performed them (``performer``, as Entry.performer) and who validated them
    (``validated_by``: ids and time), from the nearest act, battery or result naming them;
    the comments on the whole exam (``comments``: a comment act under the results act of a
    CR-BIO, 'commentaire sur l'ECBU', or under the act of an Italian CDA2 lab report), for
    every result of it; the status its report gives them (``status``: a C-CDA Laboratory
    Result Status among the organizer's components, as (code, system, entry status))."""

    performer: str | None = None
    validated_by: dict[str, Any] | None = None
    comments: tuple[str, ...] = ()
    status: tuple[str, str, str] | None = None
    # the test kits or instruments the act names for all its results (CI-SIS BIO-TROD: the
    # rapid test device, its UDI, on the results act), each as a result's own
    devices: tuple[dict[str, Any], ...] = ()


VERIFIER = "AUTHEN"  # IHE LAB Laboratory Result Verifier / CI-SIS FR-Participant


def _kits(act: ClinicalStatement, ctx: _Ctx, section: Section) -> list[dict[str, Any]]:
    """The devices a statement names as participants (typeCode DEV: an analyser, a test
    kit), each coded or in words, with the device's own ids when it has some (a UDI, GS1
    2.51.1.1: which kit and lot, CI-SIS BIO-TROD)."""
    out = []
    for part in act.participants:
        entity = part.entity
        if part.type_code != "DEV" or entity is None or entity.player_code is None:
            continue
        kit = _coded_or_words(entity.player_code, ctx, section)
        if not kit:
            continue
        ids = [i.key for i in entity.ids if i.root and not i.null_flavor]
        out.append({**kit, "ids": ids[:5]} if ids else kit)
    return out


def _lab_of(act: ClinicalStatement, inherited: _Lab | None) -> _Lab | None:
    """The laboratory parties of ``act``: its own performer and verifier (participant
    AUTHEN: the biologist who validated the results, with when), else those of what holds
    it. The validation was dropped."""
    if not act.performers and not act.participants:  # most statements: nothing to read
        return inherited
    performer = _performing_lab(act)
    validator = next((v for v in map(_verifier, act.participants) if v), None)
    if performer is None and validator is None:
        return inherited
    base = inherited or _Lab()
    return replace(base, performer=performer or base.performer,
                   validated_by=validator or base.validated_by)


def _exam_of(act: ClinicalStatement, lab: _Lab | None, ctx: _Ctx,
             section: Section) -> _Lab | None:
    """``lab`` with what an act or organizer that is no entry of its own says of all the
    results it holds: its comments (not a battery's: those are its panel's) and the C-CDA
    Laboratory Result Status among its components. Both were dropped (the comment stayed
    in the narrative only; the status was skipped and a preliminary result filed final)."""
    notes = _comments(act, section) if not (isinstance(act, Organizer) and
                                            act.class_code == "BATTERY") else []
    status = _lab_status(act.components, ctx) if isinstance(act, Organizer) else None
    if not notes and status is None:
        return lab
    base = lab or _Lab()
    return replace(base, comments=base.comments + tuple(notes),
                   status=status or base.status)


REPORT_STATUS_TEMPLATE = "2.16.840.1.113883.10.20.22.4.418"  # C-CDA Laboratory Result Status
RESULT_STATUS_TEMPLATE = "2.16.840.1.113883.10.20.22.4.419"  # C-CDA Laboratory Observation
# Result Status. Their value: HL7 v2 table 0123 (OBR-25, the report) and 0085 (OBX-11, the
# result), read through the tables the HL7v2 path uses for OBR-25 and OBX-11.
_LAB_STATUS_TABLES = {REPORT_STATUS_TEMPLATE: "report_status",
                      RESULT_STATUS_TEMPLATE: "result_status"}
_STATUS_SYSTEM_TABLES = {"2.16.840.1.113883.18.51": "report_status",  # HL7 table 0123
                         "2.16.840.1.113883.12.123": "report_status",  # its v2 table OID
                         "2.16.840.1.113883.18.34": "result_status",  # HL7 table 0085
                         "2.16.840.1.113883.12.85": "result_status"}
# What a report status says of none of its results in particular: not applied to them
# (some results available, unknown order or patient); the results keep their statusCode's.
_NOT_A_RESULT_STATUS = frozenset({"partial", "unknown"})


def _lab_status(nested: list[ClinicalStatement],
                ctx: _Ctx) -> tuple[str, str, str] | None:
    """(code, code system, entry status) of the C-CDA laboratory status observation among
    ``nested`` (an organizer's components: 4.418, the report's; a result's entryRelationship
    statements: 4.419, its own), None when there is none or it says nothing of a result."""
    tables = _LAB_STATUS_TABLES
    for obs in nested:
        if not isinstance(obs, Observation) or not obs.values:
            continue
        table_name = ""
        for t in obs.template_ids:  # a plain loop: every result of a battery passes here
            if t.root in tables:
                table_name = tables[t.root]
                break
        if not table_name:
            continue
        value = _untyped(obs.values[0])
        if not isinstance(value, CD) or not value.code:
            continue
        table_name = _STATUS_SYSTEM_TABLES.get(value.code_system, table_name)
        status = column_map(table_name, "code", "status").get(value.code.strip().upper())
        if status is None:
            ctx.warnings.append(f"CDA_UNKNOWN_RESULT_STATUS: {obs.path}: laboratory status "
                                f"{value.code[:8]!r} is not in table {table_name}; the "
                                "statusCode's kept")
            return None
        if status in _NOT_A_RESULT_STATUS:
            return None
        return value.code, system_name(value.code_system), status
    return None


def _verifier(part) -> dict[str, Any] | None:  # noqa: ANN001
    if part.type_code != VERIFIER or part.entity is None:
        return None
    out: dict[str, Any] = {"ids": [i.key for i in part.entity.ids if i.root]}
    when = part.time
    if isinstance(when, IVL):
        when = next((b for b in (when.high, when.low, when.center)
                     if isinstance(b, TS) and b.value), None) or \
            (TS(type="TS", value=when.value) if when.value else None)
    if isinstance(when, TS) and when.value:
        iso = _iso_value(when.value)
        if iso:
            out["time"] = iso
    out = {k: v for k, v in out.items() if v}
    return out or None


def _performing_lab(act: ClinicalStatement) -> str | None:
    """Who performed a result: the performer (IHE LAB Laboratory Performer, CI-SIS
    FR-Laboratoire-executant) of the observation or of the act, battery or isolate that
    holds it, as the HL7v2 path files OBX-23: the organization's name, else its id, else
    the person's id. A subcontracting laboratory's results read as the author's own."""
    for part in act.performers:
        entity = part.entity
        if entity is None:
            continue
        org = entity.organization
        names = [n for n in org.names if n] if org is not None else []
        ids = [i.key for i in (org.ids if org is not None else []) if i.root] or \
            [i.key for i in entity.ids if i.root]
        found = names[0] if names else ids[0] if ids else ""
        if found:
            return found[:300]
    return None


PRIVACY_ANNOTATION = "2.16.840.1.113883.3.3251.1.4"  # HL7 DS4P Privacy Annotation organizer
CONFIDENTIALITY_OBSERVATION = "2.16.840.1.113883.3.445.12"  # its confidentiality observation


def _privacy_annotation(act: ClinicalStatement) -> dict[str, bool]:
    """The masking a DS4P Privacy Annotation nested in a statement gives it (its
    confidentiality security observation's value: R, V), through the table of the
    document's confidentialityCode. The annotation was skipped, and the statement filed
    as visible as the rest of its document."""
    flags: dict[str, bool] = {}
    for rel in act.entry_relationships:
        organizer = rel.act
        if not isinstance(organizer, Organizer) or \
                PRIVACY_ANNOTATION not in organizer.template_roots:
            continue
        for obs in organizer.components:
            if isinstance(obs, Observation) and obs.values and \
                    CONFIDENTIALITY_OBSERVATION in obs.template_roots:
                value = _untyped(obs.values[0])
                found = confidentiality_masking(value.code) if isinstance(value, CD) and \
                    value.code else None
                flags.update({k: v for k, v in (found or {}).items() if v})
    return flags


def _performed_by(act: ClinicalStatement) -> dict[str, Any] | None:
    """Who gave a vaccine or did a procedure (its performer: IHE PCC, CI-SIS FR-Vaccination,
    C-CDA; the primary one first), as ids: the person's (RPPS, NPI, GLN) and the
    organization's, with its name. It was dropped: a vaccination filed without its
    vaccinator. Not Entry.performer: dossiers/access.py reads that one as authorship (who
    may withdraw an entry), and the vaccinator did not write the document."""
    parts = sorted(act.performers, key=lambda p: p.type_code not in ("PPRF", "PRF", ""))
    return next((found for found in map(_performing_party, parts) if found), None)


UNITS_CONCEPT = "246514001"  # SNOMED CT 'units': C-CDA puts a result's unit in such a child


def _unit_of(act: ClinicalStatement, entry: Entry) -> bool:
    """True when ``act`` is the 'units' observation C-CDA nests in a result whose value
    cannot carry it (an ST 'Unable to calculate'; a unit translated from a non-UCUM one):
    its UCUM unit then goes on the result when the value gave none."""
    if not isinstance(act, Observation) or act.code is None or \
            act.code.code != UNITS_CONCEPT or system_name(act.code.code_system) != "SNOMED-CT":
        return False
    unit = act.values[0] if act.values else None
    if isinstance(unit, CD) and unit.code and not entry.unit:
        entry.unit_original = unit.original_text or unit.code
        entry.unit = to_ucum(unit.code).unit
    return True


# A statement often declares several templates (IHE, CCD, CI-SIS): the most specific wins
# (an immunization is also a CCD medication activity, a vital sign a CCD result).
_PRECEDENCE = (SKIP, FAMILY_HISTORY, IMMUNIZATION, VITAL_SIGN, ALLERGY, PROBLEM, LAB_RESULT,
               MEDICATION, DISPENSE, DEVICE, ENCOUNTER, PROCEDURE)


def _typed(act: ClinicalStatement) -> bool:
    kinds = _kinds()
    return any(t.root in kinds and kinds[t.root] != SKIP for t in act.template_ids)


# Sections whose untyped statements (no templateId we know: senders do omit them, other
# countries' documents have their own) are still of one kind when their structure agrees: a
# measurement among vital signs, a coded problem in a problem list, an observation naming a
# substance among allergies. Under a template of their own they were plain observations.
VITAL_SIGNS_SECTION = "8716-3"  # LOINC Vital signs
PLAN_OF_TREATMENT_SECTION = "18776-5"  # LOINC Plan of care note (C-CDA, CI-SIS plan de soins)
SECTION_KINDS = {VITAL_SIGNS_SECTION: VITAL_SIGN, "11450-4": PROBLEM, "48765-2": ALLERGY}
IMMUNIZATIONS_SECTION = "11369-6"  # LOINC History of Immunization Narrative


def _kind(act: ClinicalStatement, in_results: bool, section_code: str = "") -> str | None:
    kinds = _kinds()
    found = {kinds[t.root] for t in act.template_ids if t.root in kinds}
    if RESULT_BY_CONTEXT in found:  # the CCD 'result observation' every IHE PCC simple
        # observation also carries (functional status, social history...): a result only
        # among results, unless a more specific template says what it is
        found.discard(RESULT_BY_CONTEXT)
        if not found:
            if in_results:
                return LAB_RESULT
            if section_code == VITAL_SIGNS_SECTION and act.values:
                return VITAL_SIGN  # CCD 1.0 writes its vital signs with this template only
            return OBSERVATION if act.values else None
    if found:
        if len(found) == 1:  # nearly always (a result's templates all say 'result')
            return found.pop()
        return min(found, key=lambda k: _PRECEDENCE.index(k) if k in _PRECEDENCE else 99)
    if isinstance(act, SubstanceAdministration):
        # among immunizations, a vaccination whatever template of another country it has
        return IMMUNIZATION if section_code == IMMUNIZATIONS_SECTION else MEDICATION
    if isinstance(act, Procedure | Encounter) and not in_results and \
            (act.code is not None and (act.code.code or act.code.translations) or
             isinstance(act, Procedure) and (act.text.strip() or act.text_reference)) and \
            _read_elsewhere().isdisjoint(act.template_roots):
        # a procedure or an encounter element is one whatever its template (IPS, another
        # country's, none at all): they were not filed (CDA_NOT_FILED 'of a kind not read
        # here'); a specimen's collection (among results, or by its template) is read there,
        # one naming nothing (a reference to an encounter by its id) is no statement. A
        # procedure with no code but its text ('Ablation du plâtre') is named by it
        return PROCEDURE if isinstance(act, Procedure) else ENCOUNTER
    if not isinstance(act, Observation):
        return None
    by_section = SECTION_KINDS.get(section_code)
    if by_section == ALLERGY and any(p.type_code == "CSM" and p.entity is not None and
                                     p.entity.player_code is not None
                                     for p in act.participants):
        return ALLERGY
    if act.values:
        value = _untyped(act.values[0])
        if isinstance(value, CD) and (system_name(value.code_system) == CIM10 or
                                      by_section == PROBLEM):
            return PROBLEM
        if by_section == VITAL_SIGN and isinstance(value, PQ | IVL):
            return VITAL_SIGN
        if in_results:
            return LAB_RESULT
        return OBSERVATION
    return None


def _base(act: ClinicalStatement, kind: str, section: Section, ctx: _Ctx,
          parent_key: str | None) -> Entry:
    code = act.code
    coded = _code(code, ctx, section) if code is not None else None
    own = next((i.key for i in act.ids if i.root and not i.null_flavor), "")
    key = f"cda|{ctx.set_key}|{kind}|{own or act.path}"
    if key in ctx.keys:  # two statements with one id: keep both
        key = f"{key}#{act.path}"
    ctx.keys.add(key)
    if own:
        ctx.entry_ids.setdefault(own, key)
    entry = Entry(type=kind, key=key, source_ref=act.path,
                  code=coded[0] if coded else None, system=coded[1] if coded else None,
                  display=coded[2] if coded else None, mapped=coded[3] if coded else True,
                  status=_status(act.status_code), parent_key=parent_key or ctx.doc_key,
                  masking=dict(ctx.masking))
    if kind == LAB_RESULT:
        entry.status = _result_statuses().get(act.status_code.strip(), entry.status)
    entry.effective = _effective(act.effective_time, ctx) or None
    local = _local_code(code, coded) if code is not None and coded else None
    if local:
        entry.details["local_code"] = local
    # the code's other translations (a C-CDA procedure coded nullFlavor OTH with its CPT
    # and its SNOMED CT: filed under the CPT, the SNOMED CT was dropped)
    others = [c for c in _other_codes(code, coded) if local is None or
              (c.get("code"), c.get("system")) != (local.get("code"), local.get("system"))] \
        if code is not None and coded else None
    if others:
        entry.details["other_codes"] = others
    if section.code is not None and section.code.code:
        entry.details["section"] = section_code(section)
    if act.negation_ind == "true":
        entry.details["negated"] = True
    sites = getattr(act, "target_site_codes", None)
    if sites:  # where: body site, with laterality as a qualifier (C-CDA, IHE PCC)
        site = _site(sites[0])
        if site:
            entry.details["target_site"] = site
    return entry


def _local_code(code: CD, coded: tuple[str, str, str, bool]) -> dict[str, str] | None:
    """The sender's own code when the entry is filed under another one (its LOINC
    translation, a CCAM or SNOMED CT translation of a local act code, the per-source
    mapping table's LOINC): {code, system, display} as the HL7v2 path keeps OBX-3's local
    code in details.local_code. A lab's 'GLY' translated to 1558-6 lost 'GLY': the FHIR
    export could not give the sender's coding beside the LOINC, nor an admin find the
    result by the code the lab uses. None when the code is the one filed, or says nothing."""
    own = code.code.strip()
    if not own or own.lower() in _placeholders():
        return None
    system = system_name(code.code_system, code.code_system_name)
    if (own, system) == (coded[0], coded[1]):
        return None
    out = {"code": own, "system": system, "display": code.display}
    return {k: v for k, v in out.items() if v}


def _site(site: CD) -> dict[str, Any] | None:
    """A body site as {code, system} with its laterality (the values of its qualifiers:
    right, left) as ``qualifiers``; None when it has no code."""
    if not site.code:
        return None
    out: dict[str, Any] = {"code": site.code, "system": system_name(site.code_system)}
    laterality = [v.code for _, v in site.qualifiers if v is not None and v.code]
    if laterality:
        out["qualifiers"] = laterality
    return out


def _procedure(act: ClinicalStatement, section: Section, ctx: _Ctx,
               parent_key: str | None) -> Entry | None:
    """A procedure: coded (its code or a translation: a CCAM act under a local code
    nullFlavor'd), else named in words (originalText, in the narrative or inline: 'plâtre
    de l'avant-bras'), else nothing to file. Both uncoded forms were dropped. A procedure
    with no code element at all (CDA R2 Procedure.code is 0..1; IHE PCC and C-CDA senders
    that only have the surgeon's words write its text alone) is named by its text the same
    way; it was dropped before anything was read."""
    code = act.code
    if code is None:
        name = _uncoded_name(act, section)
    else:
        name = "" if code.code or code.translations else _uncoded_name(act, section)
    if not name and (code is None or not _code(code, ctx, section)):
        return None
    entry = _base(act, PROCEDURE, section, ctx, parent_key)
    if name:
        entry.display, entry.mapped = name, False
    if code is not None and code.qualifiers:
        _qualify(code, entry, "code_qualifiers", ctx, section)
    if isinstance(act, Observation) and act.values:  # C-CDA procedure activity observation:
        _value(_untyped(act.values[0]), entry, ctx, section)  # what it found (an ECG...)
    site = next((f for f in map(_site, act.approach_site_codes) if f), None) \
        if isinstance(act, Procedure) and act.approach_site_codes else None
    if site:  # the way in (approachSiteCode: a coronary angiography by the right radial
        # artery, C-CDA / IHE PCC procedure entries): dropped, the target site alone kept
        entry.details["approach_site"] = site
    if isinstance(act, Procedure) and act.method_codes:  # how: the imaging modality (DICOM
        # Part 20 Procedure Technique: CT, MR), the technique; it was dropped
        methods = [m for m in (_coded_or_words(c, ctx, section) for c in act.method_codes)
                   if m]
        if methods:
            entry.details["method"] = methods
    _period_end(act, entry, ctx)
    if act.status_code.strip() == "aborted":  # begun, then stopped before its end; filed
        # 'cancelled' as one called off before it began (ActStatus 'cancelled') is
        entry.details["aborted"] = True
    if act.negation_ind == "true":  # not done: why
        _not_done_reason(act, entry, ctx, section)
    return entry


def _uncoded_name(act: ClinicalStatement, section: Section) -> str:
    """The words an uncoded statement is named by: its code's originalText, else the
    statement's own text (inline, or the narrative its reference points at: C-CDA and IHE
    PCC's usual form for a free-text entry, '<code nullFlavor="UNK"/><text><reference
    value="#proc9"/></text>'; it was 'naming nothing' and not filed). Cut to the display's
    size: a long paragraph must not refuse the document."""
    words = original_text(act.code, section) if act.code is not None else ""
    if not words:
        words = act.text.strip() or referenced_text(act.text_reference, section).strip()
        words = "" if is_placeholder(words) else words
    return words[:ENTRY_MAX["display"]]


def _period_end(act: ClinicalStatement, entry: Entry, ctx: _Ctx) -> None:
    """The end of a procedure or a result over a period (effectiveTime low and high: an
    operation from 09:11 to 11:40, CI-SIS PPS chemotherapy from May to September, a 24-hour
    urine) in details.period_high; its start is the entry's time. The end was dropped."""
    period = act.effective_time
    if not isinstance(period, IVL) or not isinstance(period.low, TS) or \
            not period.low.value or not isinstance(period.high, TS) or not period.high.value:
        return
    end = _iso_value(period.high.value, ctx.warnings, period.high.path)
    if end and end != entry.effective:
        entry.details["period_high"] = end


def _statement_words(act: ClinicalStatement, section: Section, named: bool = False) -> str:
    """A statement's own text, inline or the narrative its reference points at, as what it
    observed; '' for none, a reference to nothing, a template's placeholder, or (unless
    ``named`` is accepted) the question's own name: the ANS's SDM-MR example points at
    the table cell 'Précision du mode de confirmation', the code's displayName, the
    answer being the next cell's '-'."""
    words = act.text.strip() or referenced_text(act.text_reference, section).strip()
    code = act.code
    names = {n.strip().casefold() for n in (code.display, code.original_text) if n} \
        if code is not None and not named else set()
    if is_placeholder(words) or words.casefold() in names:
        return ""
    return words[:TEXT_VALUE_SIZE]


TEXT_VALUE_SIZE = 2000  # the most of a value in words kept (as ST, ED and CD words are)


def _observation(act: Observation, kind: str, section: Section, ctx: _Ctx,
                 parent_key: str | None) -> Entry | None:
    name = ""
    if act.code is None or (not act.code.code and not act.code.translations):
        # no code: a result named only in words (code nullFlavor + originalText) is still
        # one when it has a value; a problem is identified by its value (the diagnosis)
        name = _uncoded_name(act, section) if act.values else ""
        if not name and not (kind in (PROBLEM, ALLERGY, FAMILY_HISTORY) and act.values):
            return None
    entry = _base(act, kind, section, ctx, parent_key)
    if name:
        entry.display, entry.mapped = name, False
    if act.code is not None and act.code.qualifiers:
        _qualify(act.code, entry, "code_qualifiers", ctx, section)
    if act.values:
        value = _untyped(act.values[0])
        if kind in (PROBLEM, FAMILY_HISTORY) and isinstance(value, CD) and value.code and \
                act.code is not None and value.code == act.code.code and \
                value.code_system == act.code.code_system:
            # the value repeats the question (code 'problem', value 'problem': Vitera) and
            # is no diagnosis; the translation or the words are (it was filed as 'Problem')
            value = replace(value, code="", display="")
        # an empty string as the value and no words in the statement's text either says
        # nothing. With words (the ANS's CR-GM and AVC examples: '<value xsi:type="ST"/>'
        # and '<text><reference value="#methodeExtractionADN"/></text>') it is filed as
        # before, without a value: those words are the answer in CR-GM, the exam's name
        # in AVC-EUNV, and cannot be told apart
        said = _statement_words(act, section, named=True) if _empty_string(act.values) \
            else None
        if _placeholder_value(value, section) or said == "":
            if kind != ALLERGY:  # the value was all it said (an allergy still has its agent)
                return None
        else:
            _value(value, entry, ctx, section)
            if entry.unit_original and act.template_ids:
                _template_unit(act, entry, ctx)
        rest = [_untyped(v) for v in act.values[1:]]
        if rest and "value_code" not in entry.details:
            # a score and its answer code (C-CDA assessment items: INT 3 and CO LA6555-2,
            # 'eye opening to verbal command'): the second value was dropped
            other = next((v for v in rest if isinstance(v, CD)), None)
            coded = _code(other, ctx, section) if other is not None else None
            if coded:
                entry.details["value_code"] = {"code": coded[0], "system": coded[1],
                                               "display": coded[2]}
                rest = [v for v in rest if v is not other]
        if rest:
            _other_values(rest, act, entry, ctx, section)
        question = _assertion_question(act) if _asserts(act, kind) else None
        if question is not None:
            # C-CDA R1.1 smoking status (ASSERTION, value 'former smoker'): the question
            # R2.1 codes it with (LOINC 72166-2); it was filed under the value's code, the
            # same fact from an R2.1 document under another
            entry.details["observation_code"] = entry.code
            entry.details.pop("local_code", None)
            entry.details.pop("other_codes", None)
            entry.code, entry.system, entry.display = question
            entry.mapped = True
        elif isinstance(value, CD) and (kind in (PROBLEM, ALLERGY, FAMILY_HISTORY) or
                                        _asserts(act, kind)):
            # the diagnosis / allergy type is the value; the observation code only says
            # 'diagnosis' or 'assertion' (C-CDA Pregnancy Observation: ASSERTION, value
            # 'pregnant', was an observation 'ASSERTION')
            coded = _code(value, ctx, section)
            if (coded and coded[0] or entry.value) and entry.code:
                entry.details["observation_code"] = entry.code
            entry.details.pop("local_code", None)  # the question's, not the value's
            entry.details.pop("other_codes", None)
            if coded and coded[0]:
                entry.code, entry.system, entry.display, entry.mapped = coded
            elif entry.value:  # not coded (nullFlavor OTH...): the sender's words are all
                # there is, and the observation code ('problem', 'symptom') is no diagnosis
                entry.code = entry.system = None
                entry.display, entry.mapped = entry.value, False
            elif kind == PROBLEM and value.null_flavor and _uncoded_name(act, section):
                # value nullFlavor, the diagnosis in the statement's text only ('<text>
                # <reference value="#pb1"/>', C-CDA R2.1 3.79): the words are the diagnosis
                # (without them the problem names nothing and is not filed)
                entry.details["observation_code"] = entry.code
                entry.code = entry.system = None
                entry.value = entry.display = _uncoded_name(act, section)
                entry.mapped = False
    if kind in (PROBLEM, ALLERGY, FAMILY_HISTORY) and isinstance(act.effective_time, IVL):
        _onset_and_resolution(act.effective_time, entry, ctx)
    elif kind == OBSERVATION and isinstance(act.effective_time, IVL) and \
            isinstance(act.effective_time.low, TS) and act.effective_time.low.value and \
            isinstance(act.effective_time.high, TS) and act.effective_time.high.value:
        # a period observed (C-CDA Tobacco Use: smoked daily from 1995 to 2015): its start
        # is the entry's time, its end was dropped
        end = act.effective_time.high
        entry.details["period_high"] = _iso_value(end.value, ctx.warnings, end.path) or None
    elif kind in (LAB_RESULT, VITAL_SIGN):
        # a result of a collection over a period (IHE LAB / C-CDA Result Observation
        # effectiveTime IVL_TS: a 24-hour urine protein from 08:00 to 08:00 the next day, a
        # mean blood pressure over a 24-hour ambulatory recording): its end was dropped and
        # the day's collection read as an instant
        _period_end(act, entry, ctx)
    if kind in (PROBLEM, ALLERGY) or (kind == OBSERVATION and act.entry_relationships):
        _qualifiers(act, entry, ctx, section)
    if kind == ALLERGY:
        _allergen(act, entry, ctx, section)
    kits = _kits(act, ctx, section)
    if kits:  # the instrument or test kit the result was obtained with (IHE LAB, CI-SIS
        # DEP-CCU: the HPV detection kit)
        entry.details["devices"] = kits
    methods = [m for m in (_coded_or_words(c, ctx, section) for c in act.method_codes) if m]
    if methods:  # the technique or reagent (CI-SIS: ANSM common reagent table): results
        # by two methods are not comparable; it was dropped
        entry.details["method"] = methods
    if act.interpretation_codes:
        entry.interpretation = ",".join(filter(None, (
            _interpretation(c, section) for c in act.interpretation_codes))) or None
        local = [c.code for c in act.interpretation_codes
                 if c.code and c.code_system != INTERPRETATION_SYSTEM and
                 any(t.code_system == INTERPRETATION_SYSTEM or
                     (t.code_system, t.code) in _interpretation_codes()
                     for t in (c, *c.translations))]
        if local:
            entry.details["interpretation_local"] = local  # the lab's flag, as sent
        systems = _interpretation_systems(act.interpretation_codes)
        if systems:
            entry.details["interpretation_systems"] = systems
    if act.reference_ranges:
        _reference_range(act.reference_ranges, entry, ctx, section)
    if entry.code is None and entry.value is None:
        return None
    return entry


OTHER_VALUES_KEPT = 10  # further values of one observation kept (CDA allows any number)
OTHER_VALUE_SIZE = 500  # characters of each kept


def _other_values(values: list[Value], act: Observation, entry: Entry, ctx: _Ctx,
                  section: Section) -> None:
    """The values of an observation after its first (CDA R2 Observation.value is 0..*: a
    lab writing a result in two units as two PQ, a blood pressure 142 and 88 mm[Hg] under
    one code, a culture's two coded germs) in details.other_values, as HL7v2's OBX-5
    repetitions are, each read as the value is ('88 mm[Hg]', '<0.5 mg/L'), with a warning:
    the first is the value. Every one but a score's answer code was dropped without a
    word. The value itself is unchanged (which one is 'the' value is the sender's order)."""
    said = []
    for value in values:
        scratch = Entry(type=entry.type, key="", source_ref=value.path)
        _value(value, scratch, ctx, section)
        text = " ".join(filter(None, (scratch.value, scratch.unit_original)))
        if text:
            said.append(text[:OTHER_VALUE_SIZE])
    if said:
        entry.details["other_values"] = said[:OTHER_VALUES_KEPT]
        ctx.warnings.append(f"CDA_OTHER_VALUES: {act.path}: {len(values) + 1} values: the "
                            "first is the value, the others are kept apart "
                            f"({min(len(said), OTHER_VALUES_KEPT)} in details.other_values)")


@cache
def _template_units() -> dict[tuple[str, str], str]:
    """(templateId, unit as sent, lower case) -> the UCUM unit it is read as."""
    return {(r["template"], r["sent"].strip().lower()): r["unit"]
            for r in table("cda_template_units")}


def _template_unit(act: Observation, entry: Entry, ctx: _Ctx) -> None:
    """A measurement's unit read in the one its template defines when the sender wrote it
    otherwise (tables/cda_template_units.csv): a sphere power of '2.50 d' (IHE Eye Care,
    CI-SIS OPH-BRE) was filed as 2.5 days (UCUM d), beside the same power sent as
    '[diop]' for the other eye. Said once per document (CDA_UNIT_READ_AS)."""
    units = _template_units()
    sent = (entry.unit_original or "").strip().lower()
    unit = next((units[(t.root, sent)] for t in act.template_ids if (t.root, sent) in units),
                None)
    if unit is None or unit == entry.unit:
        return
    seen = ctx.units_read.setdefault((entry.unit_original or "", unit), [0, act.path])
    seen[0] += 1
    entry.unit = unit


@cache
def _assertion_questions() -> dict[str, tuple[str, str, str]]:
    return {row["template"]: (row["code"], row["system"], row["display"])
            for row in table("cda_assertion_questions")}


def _assertion_question(act: Observation) -> tuple[str, str, str] | None:
    """(code, system, display) of the question an ASSERTION observation answers, by its
    template (tables/cda_assertion_questions.csv); None for any other."""
    questions = _assertion_questions()
    return next((questions[t.root] for t in act.template_ids if t.root in questions), None)


def _asserts(act: Observation, kind: str) -> bool:
    """An observation whose code is HL7 ActCode ASSERTION: its value is what it says."""
    return kind == OBSERVATION and act.code is not None and act.code.code == "ASSERTION" \
        and system_name(act.code.code_system) == "HL7-ACTCODE"


def _placeholder_value(value: Value, section: Section) -> bool:
    """A value in words that is a template's placeholder ('(texte libre)' as a result, a
    problem, a comment observation: CI-SIS examples), not the author's."""
    if isinstance(value, ST):
        return is_placeholder(value.text)
    if isinstance(value, ED) and value.representation != "B64":
        return is_placeholder(value.text or referenced_text(value.reference, section))
    if isinstance(value, CD) and not value.code and \
            not any(t.code for t in value.translations):
        return is_placeholder(value.original_text or
                              referenced_text(value.original_text_reference, section))
    return False


def _empty_string(values: list[Value]) -> bool:
    """A statement's one value an ST (or SC) with no text (empty, or blanks only: the
    parser collapses them), no reference to the narrative, no code nor nullFlavor: a
    result sent '<value xsi:type="ST"> </value>' says nothing by itself. It was filed as a
    result without a value: when its statement's text says nothing either, it is not
    filed, said (CDA_NOT_FILED). A value pointing at the narrative or with a nullFlavor
    is read as before."""
    if len(values) != 1:
        return False
    value = _untyped(values[0])
    return isinstance(value, ST) and not value.text.strip() and not value.reference.strip() \
        and not (value.code is not None and value.code.code) and not value.null_flavor


def _qualify(code: CD, entry: Entry, key: str, ctx: _Ctx, section: Section) -> None:
    """The qualifiers of a code or coded value (CD qualifier: name and/or value) into
    details[key], as [{name, value}] each {code, system, display} (or {text}). They say
    what was observed: CI-SIS asks one question per observation under one LOINC code
    ('mobility' qualified by 'fell in the last 6 months?'), or a side (laterality
    20228-3: right, left); dropped, two different results read as the same one."""
    found = []
    for name, value in code.qualifiers:
        item = {"name": _coded_or_words(name, ctx, section) if name is not None else None,
                "value": _coded_or_words(value, ctx, section) if value is not None else None}
        if item["name"] or item["value"]:
            found.append(item)
    if found:
        entry.details[key] = found


def _coded_or_words(code: CD, ctx: _Ctx, section: Section) -> dict[str, str] | None:
    """A code as {code, system, display}, else its words ({text}: CI-SIS lets a lab name a
    method it has no code for in originalText)."""
    coded = _code(code, ctx, section)
    if coded:
        return {"code": coded[0], "system": coded[1], "display": coded[2]}
    text = original_text(code, section)
    return {"text": text} if text else None


# What the observations nested in a problem or an allergy say about it (LOINC 33999-4
# 'status' in C-CDA and IHE PCC/CI-SIS, HL7 ActCode SEV 'severity', LOINC 11323-3 'health
# status' in IHE PCC/CI-SIS, LOINC 66455-7 'certainty' (confirmed, provisional, refuted: CI-SIS
# FR-Certitude, eHDSI) and 82606-5 'criticality' (CI-SIS FR-Criticite, eHDSI)): details key ->
# (code system, code).
QUALIFIERS = {("LN", "33999-4"): "clinical_status", ("HL7-ACTCODE", "SEV"): "severity",
              ("LN", "11323-3"): "health_status", ("LN", "66455-7"): "certainty",
              ("LN", "82606-5"): "criticality"}
_QUALIFIER_CODES = frozenset(code for _, code in QUALIFIERS)


def _is_qualifier(act: ClinicalStatement) -> bool:
    """True for an observation saying a status, severity, certainty... of what nests it."""
    code = act.code
    return isinstance(act, Observation) and code is not None and \
        code.code in _QUALIFIER_CODES and \
        (system_name(code.code_system), code.code) in QUALIFIERS


def _qualifiers(act: Observation, entry: Entry, ctx: _Ctx, section: Section) -> None:
    """A problem's status ('active', 'resolved') and severity, an allergy's severity: coded
    values of the observations it nests, which were skipped as not entries of their own
    and lost; they go to details, as {code, system, display}."""
    for key, coded in _qualifier_values(act, ctx, section).items():
        entry.details.setdefault(key, coded)


def _qualifier_values(act: ClinicalStatement, ctx: _Ctx,
                      section: Section) -> dict[str, dict[str, str]]:
    """The coded qualifiers (QUALIFIERS: status, severity, certainty...) the observations
    nested in ``act`` say, the first of each kind."""
    found: dict[str, dict[str, str]] = {}
    for rel in act.entry_relationships:
        obs = rel.act
        if not isinstance(obs, Observation) or obs.code is None or not obs.values or \
                obs.code.code not in _QUALIFIER_CODES:
            continue
        key = QUALIFIERS.get((system_name(obs.code.code_system), obs.code.code))
        value = _untyped(obs.values[0])
        if key is None or key in found or not isinstance(value, CD):
            continue
        coded = _code(value, ctx, section)
        if coded:
            found[key] = {"code": coded[0], "system": coded[1], "display": coded[2]}
    return found


RESOLVED_UNKNOWN = "UNK"  # the nullFlavor of effectiveTime/high of a problem that ended


def _onset_and_resolution(period: IVL, entry: Entry, ctx: _Ctx) -> None:
    """A problem's or allergy's effectiveTime is its onset (low) and resolution (high): the
    resolution goes to details.resolved; when only it is given, it is no onset (it was
    filed as the problem's date). A high of nullFlavor UNK says the problem ended on a day
    nobody knows (IHE PCC Problem Entry, C-CDA 2.1 Problem Observation: 'if the problem is
    known to be resolved, but the date of resolution is not known, then the high element
    SHALL be present, and the nullFlavor attribute SHALL be set to UNK'):
    details.resolved_date_unknown. It was read as no end at all, and a resolved asthma
    under a concern still followed was exported active."""
    low, high = period.low, period.high
    if isinstance(high, TS) and not high.value.strip() and \
            high.null_flavor.strip().upper() == RESOLVED_UNKNOWN:
        entry.details["resolved_date_unknown"] = True
    if isinstance(high, TS) and high.value:
        resolved = _iso_value(high.value, ctx.warnings, high.path)
        if resolved:
            entry.details["resolved"] = resolved
            if not (isinstance(low, TS) and low.value) and not period.value and \
                    entry.effective == resolved:
                entry.effective = None


INTERPRETATION_SYSTEM = "2.16.840.1.113883.5.83"  # HL7 ObservationInterpretation
# ObservationInterpretation and HL7 table 0078 (whose codes are ObservationInterpretation's)
_STANDARD_FLAG_SYSTEMS = frozenset({INTERPRETATION_SYSTEM, "2.16.840.1.113883.12.78"})


@cache
def _interpretation_codes() -> dict[tuple[str, str], str]:
    """(code system OID, code) -> ObservationInterpretation (cda_interpretation_codes.csv)."""
    return {(row["system"], row["code"]): row["interpretation"]
            for row in table("cda_interpretation_codes")}


def _interpretation_systems(codes: list[CD]) -> dict[str, str]:
    """Each flag sent outside ObservationInterpretation -> its code system, by our name
    (``system_name``: SNOMED-CT, else the OID as sent). A lab's own 'ELEVE' or '++' was kept
    without its system: the export could only guess it from the source, and the same code
    of two of a lab's terminologies read alike."""
    return {c.code: system_name(c.code_system) for c in codes
            if c.code and c.code_system and c.code_system not in _STANDARD_FLAG_SYSTEMS}


def _interpretation(code: CD, section: Section) -> str:
    """An interpretation as the HL7 ObservationInterpretation code (H, L, A, S, R...) when
    the code or one of its translations is one: a lab's own flag ('++', 'ELEVE') translated
    to HH was filed as '++', which no reader (nor the HL7v2 path's flags) knows. A SNOMED CT
    qualifier ('281302008 above reference range') is read as the code it means; one sent as
    words only (nullFlavor OTH, originalText 'Élevé') is kept in words, as an HL7v2 flag no
    table lists is (it was dropped, the result filed as said without a comment). Words with
    no nullFlavor stay unread: the ANS's family-history example (CANCER-D2LM-FIN) points an
    interpretationCode's originalText at a count of relatives, no interpretation."""
    for c in (code, *code.translations):
        if c.code and c.code_system == INTERPRETATION_SYSTEM:
            return c.code
    for c in (code, *code.translations):
        meant = _interpretation_codes().get((c.code_system, c.code))
        if c.code and meant:
            return meant
    if not code.code and code.null_flavor:
        return original_text(code, section)
    return code.code


def _reference_range(ranges: list[ReferenceRange], entry: Entry, ctx: _Ctx,
                     section: Section) -> None:
    """The normal range of a result. Several observationRanges may be sent, each with the
    interpretation that applies to values inside it (C-CDA: 'negative: normal', 'positive:
    abnormal'; titers by band): the normal one is the range interpreted N, else one
    without interpretation; the first was taken whatever it said. The range reads as its
    value (an interval, '<=5'; a coded value, 'Negative'), else its text, else an ST value
    (a coded range without text was lost)."""
    normal = next((r for r in ranges if r.interpretation_code is not None and
                   r.interpretation_code.code == "N"), None) or \
        next((r for r in ranges if r.interpretation_code is None or
              not r.interpretation_code.code), None) or ranges[0]
    value = _untyped(normal.value) if normal.value is not None else None
    text = _range(value)
    if text is None and isinstance(value, CD):
        coded = _code(value, ctx, section)
        text = (coded[2] or coded[0]) if coded else original_text(value, section)
    if text and isinstance(value, IVL) and entry.unit:
        # a range in another unit than the result's (value in g/L, range in mmol/L: some
        # labs give the SI range beside a conventional value) read as the result's own: a
        # glucose of 1.05 g/L beside '3.9-5.8' read as low. Its unit is said then.
        unit = next((b.unit for b in (value.low, value.high, value.center)
                     if isinstance(b, PQ) and b.unit and b.unit != "1"), "")
        if unit and to_ucum(unit).unit != entry.unit:
            text = f"{text} {unit}"
    text = text or normal.text or referenced_text(normal.text_reference, section) or \
        (value.text if isinstance(value, ST) else "")
    entry.reference_range = text or None
    if len(ranges) > 1:
        entry.details["reference_ranges"] = len(ranges)


def _allergen(act: Observation, entry: Entry, ctx: _Ctx, section: Section) -> None:
    """The substance of an allergy: participant typeCode CSM / participantRole /
    playingEntity / code (C-CDA, IHE PCC, CI-SIS alike). The kind of reaction ('drug
    allergy', 'food intolerance') is the value in C-CDA (code ASSERTION), the code in IHE
    PCC / CI-SIS (value: a description, often empty). A coded substance becomes the
    entry's code, the kind going to details.allergy_type."""
    for part in act.participants:
        if part.type_code != "CSM" or part.entity is None or part.entity.player_code is None:
            continue
        agent = part.entity.player_code
        coded = _code(agent, ctx, section)
        if coded and coded[0]:
            kind = (entry.code, entry.system, entry.display) if entry.code else None
            if kind is None and act.code is not None and act.code.code and \
                    act.code.code != "ASSERTION":
                own = _code(act.code, ctx, section)
                kind = own[:3] if own else None
            if kind is not None:
                entry.details["allergy_type"] = dict(zip(("code", "system", "display"), kind,
                                                         strict=True))
            if entry.value is None and entry.display and not entry.code:
                entry.value = entry.display  # an uncoded description stays the value
            entry.code, entry.system, entry.display, entry.mapped = coded
        else:
            names = part.entity.player_names
            text = original_text(agent, section) or agent.display or (names[0] if names
                                                                      else "")
            if text:
                entry.details["allergen_text"] = text
        break
    if entry.code is None and act.code is not None and act.code.code and \
            act.code.code != "ASSERTION":
        # no substance coded and a description in words only (IHE PCC / CI-SIS: the code
        # is the kind, 'allergie alimentaire'; the CSE-CS24 example's value says 'Oui'):
        # the allergy was filed uncoded, named by its description ('Oui'); it is the kind
        # it says, the description stays its value
        own = _code(act.code, ctx, section)
        if own and own[0]:
            entry.code, entry.system, entry.display, entry.mapped = own
    # every manifestation, also one written as a problem entry (IHE PCC, CI-SIS: the
    # reaction is an FR-Probleme under MFST; the allergy lost it)
    # A manifestation the sender negates ('no urticaria': negationInd, as the CI-SIS
    # LDL-EES and ANEST-CR-CPA examples send it) is no reaction: it was listed among them
    # (and exported as one); it is said apart, in absent_reactions
    said = [(rel.act.negation_ind == "true", _reaction(rel.act, ctx, section))
            for rel in act.entry_relationships
            if rel.type_code == "MFST" and isinstance(rel.act, Observation)]
    reactions = [r for negated, r in said if r and not negated]
    absent = [r for negated, r in said if r and negated]
    if reactions:
        entry.details["reactions"] = reactions
    if absent:
        entry.details["absent_reactions"] = absent


def _reaction(act: Observation, ctx: _Ctx, section: Section) -> dict[str, Any] | None:
    """A reaction (manifestation) of an allergy: its coded value, else its words, its
    severity (C-CDA R2.1 Severity Observation 4.8 nested in the reaction, no longer in the
    allergy: 'hives, moderate', 'anaphylaxis, severe'; it was dropped) and when it began
    (its effectiveTime: its low, else its point)."""
    value = _untyped(act.values[0]) if act.values else None
    coded = _code(value, ctx, section) if isinstance(value, CD) else None
    out: dict[str, Any]
    if coded and coded[0]:
        out = {"code": coded[0], "system": coded[1], "display": coded[2]}
    else:
        text = (original_text(value, section) if isinstance(value, CD) else "") or \
            act.text or referenced_text(act.text_reference, section)
        if not text:
            return None
        out = {"text": text}
    if act.entry_relationships:
        severity = _qualifier_values(act, ctx, section).get("severity")
        if severity:
            out["severity"] = severity
    onset = _effective(act.effective_time, ctx) if act.effective_time is not None else ""
    if onset:  # when it happened (hives in 2010, anaphylaxis in 2019): dropped
        out["onset"] = onset
    return out


def _pharm_codes(ext: Extension) -> Iterator[dict[str, str]]:
    """The pharm:code elements under ``ext`` (any depth), as {code, system, display}."""
    for child in ext.children:
        if child.name == "code" and child.attributes.get("code"):
            a = child.attributes
            yield {"code": a["code"], "system": system_name(a.get("codeSystem", "")),
                   "display": a.get("displayName", "")}
        else:
            yield from _pharm_codes(child)


def _pharm_details(extensions: list[Extension], entry: Entry) -> None:
    """IHE Pharm (urn:ihe:pharm:medication) parts of a product: its active ingredients
    (pharm:ingredient, the substances of a mixture or a magistral preparation; CI-SIS nests
    pharm:ingredient in pharm:ingredient) and its generic class (pharm:asSpecializedKind,
    the ATC of a brand in CI-SIS)."""
    for ext in extensions:
        if ext.namespace not in PHARM_NAMESPACES:
            continue
        if ext.name == "ingredient":
            found = list(_pharm_codes(ext))
            strength = _pharm_strength(ext)
            if strength:  # how much of it (500 mg per tablet): it was dropped
                found = [{**f, "strength": strength} for f in found]
            entry.details.setdefault("ingredients", []).extend(found)
        elif ext.name == "asSpecializedKind":
            entry.details.setdefault("generic", []).extend(_pharm_codes(ext))
        elif ext.name == "asContent":
            entry.details.setdefault("package", []).extend(_pharm_package(ext))
    for name in ("ingredients", "generic", "package"):
        if name in entry.details and not entry.details[name]:
            del entry.details[name]


def _pharm_strength(ingredient: Extension) -> str:
    """An IHE Pharm ingredient's quantity (pharm:quantity numerator / denominator) as text:
    '500 mg', '20 mg/5 mL' ('' when not said)."""
    quantity = next((c for c in ingredient.children if c.name == "quantity"), None)
    if quantity is None:
        return ""
    parts = {c.name: c.attributes for c in quantity.children
             if c.name in ("numerator", "denominator")}
    numerator = parts.get("numerator", {})
    if not numerator.get("value"):
        return ""
    text = f"{numerator['value']} {numerator.get('unit', '')}".strip()
    denominator = parts.get("denominator", {})
    value, unit = denominator.get("value", ""), denominator.get("unit", "")
    if value and (value != "1" or unit not in ("", "1")):
        text += f"/{value} {unit}".rstrip() if value != "1" else f"/{unit}"
    return text[:60]


def _pharm_package(as_content: Extension) -> Iterator[dict[str, str]]:
    """The package a product comes in (IHE Pharm pharm:asContent/containerPackagedMedicine:
    CIP13 in France, GTIN in CDA-CH eMedication), with its name and capacity. A Swiss
    treatment plan names the product only there (its material code is the ATC class): the
    product prescribed was lost."""
    for package in as_content.children:
        if package.name != "containerPackagedMedicine":
            continue
        name = next((c.text.strip() for c in package.children if c.name == "name"), "")
        capacity = next((c.attributes for c in package.children
                         if c.name == "capacityQuantity"), {})
        for coded in _pharm_codes(Extension(package.namespace, "package", children=[
                c for c in package.children if c.name == "code"])):
            coded["display"] = coded["display"] or name
            if capacity.get("value"):
                coded["capacity"] = f"{capacity['value']} {capacity.get('unit', '')}".strip()
            yield coded


def _medication(act: SubstanceAdministration | Supply, kind: str, section: Section,
                ctx: _Ctx, parent_key: str | None) -> Entry | None:
    """A medication, vaccination or dispensed product: named by its product (consumable,
    or a supply's product), never by the statement's own code, which says what kind of act
    it is (IHE PHARM 'PREItem', IHE PCC 'IMMUNIZ'): a reference to a prescription item
    with no product was filed as the medication 'PREItem'. An absent-unknown code there
    ('no-known-medications', CI-SIS) is kept: it is what the statement says."""
    product = act.consumable if isinstance(act, SubstanceAdministration) else act.product
    entry = _base(act, kind, section, ctx, parent_key)
    entry.details.pop("local_code", None)  # the act's code's: not the product's
    entry.details.pop("other_codes", None)
    if entry.code is not None and (entry.system, entry.code) not in _absent_codes():
        entry.details["act_code"] = entry.code
        entry.code = entry.system = entry.display = None
        entry.mapped = True
    if product is not None and product.code is not None and (product.code.code or
                                                             product.code.translations):
        coded = _code(product.code, ctx, section)
        if coded:  # translations without a code, or only a placeholder: none (TypeError)
            entry.code, entry.system, entry.display, entry.mapped = coded
            local = _local_code(product.code, coded)
            if local:  # a hospital formulary's code filed under its CIS / ATC translation
                entry.details["local_code"] = local
        entry.details["substance"] = [
            {"code": t.code, "system": system_name(t.code_system)}
            for t in product.code.translations if t.code]
    if product is not None and product.name:
        entry.display = entry.display or product.name
        entry.details["product_name"] = product.name
    if product is not None and product.extensions:
        _pharm_details(product.extensions, entry)
    if product is not None and product.lot_number:
        entry.details["lot_number"] = product.lot_number  # vaccines: traceability
    site = next((f for f in map(_site, act.approach_site_codes) if f), None) \
        if isinstance(act, SubstanceAdministration) and act.approach_site_codes else None
    if site:  # where it was given, with its side (C-CDA Immunization / Medication Activity,
        # IHE PCC: approachSiteCode 'left deltoid'): dropped
        entry.details["approach_site"] = site
    if product is not None and product.manufacturer is not None:
        # with the lot, who made it (C-CDA immunization medication information): dropped
        maker = next((n for n in product.manufacturer.names if n), "") or \
            next((i.key for i in product.manufacturer.ids if i.root), "")
        if maker:
            entry.details["manufacturer"] = maker[:300]
    if kind == IMMUNIZATION and act.participants:
        targets = _target_diseases(act, ctx, section)
        if targets:
            entry.details["target_diseases"] = targets
    if kind == IMMUNIZATION:
        dose = _dose_number(act) if act.entry_relationships else None
        if dose is None and act.mood_code in ("", "EVN"):
            dose = _occurrence(act)
        if dose is not None:
            entry.details["dose_number"] = dose
    if entry.code is None and not entry.display and product is not None and \
            product.code is not None:
        entry.display = original_text(product.code, section) or None  # free-text drug
    if entry.code is None and not entry.display and product is not None:
        # no product code nor name: the statement's own words (C-CDA free-text medication)
        words = act.text or referenced_text(act.text_reference, section)
        entry.display = None if is_placeholder(words) else words[:500] or None
    if entry.code is None and not entry.display:
        return None
    if act.negation_ind == "true":
        _not_done_reason(act, entry, ctx, section)
    if isinstance(act, Supply) and act.mood_code.strip() not in ("", "EVN"):
        # a supply intended (C-CDA Planned Supply): the quantity to dispense, nothing
        # handed out yet (it was 'dispensed')
        quantity = act.quantity
        if isinstance(quantity, PQ) and quantity.value:
            entry.details["quantity_prescribed"] = {"value": quantity.value.strip(),
                                                    "unit": quantity.unit or None}
        return entry
    if isinstance(act, Supply):
        return _dispensed(act, entry, ctx, section)
    _dosing(act, entry.details, ctx, section)
    if "period_high" in entry.details and "period_low" not in entry.details and \
            entry.effective == entry.details["period_high"] and \
            isinstance(act.effective_time, IVL) and not act.effective_time.value:
        # taken until a date, since when unknown (low nullFlavor UNK: a C-CDA medication
        # history): the end is no start, as for a problem's resolution; it was filed as
        # the day the medication was taken (details.period_high keeps it)
        entry.effective = None
    _repeats(act, entry.details)
    if act.preconditions:
        conditions = [c for c in (_precondition(p, ctx, section) for p in act.preconditions)
                      if c]
        if conditions:
            entry.details["preconditions"] = conditions
    if act.mood_code not in ("", "EVN"):
        entry.details["mood"] = act.mood_code
    return entry


@cache
def _repeat_keys() -> dict[str, str]:
    return column_map("cda_repeat_numbers", "template", "key")


def _repeats(act: ClinicalStatement, details: dict[str, Any]) -> None:
    """How many times a prescription may be renewed or filled (repeatNumber, read by the
    template saying what it counts: tables/cda_repeat_numbers.csv). eP-MED's 'à renouveler 3
    fois' and a C-CDA order's fills were dropped."""
    count = getattr(act, "repeat_number", None)
    if not isinstance(count, IVL | INT):
        return
    keys = _repeat_keys()
    key = next((keys[t.root] for t in act.template_ids if t.root in keys), None)
    if key is None:
        return
    text = (count.value or (count.high.value if isinstance(count, IVL) and
                            isinstance(count.high, INT | IVL) else "")).strip()
    if text.isdigit():
        details[key] = int(text)


def _precondition(criterion: ClinicalStatement, ctx: _Ctx,
                  section: Section) -> dict[str, Any] | None:
    """What must hold for a medication to be given (precondition/criterion): C-CDA's 'as
    needed for' (Precondition for Substance Administration 4.25: code ASSERTION, the
    condition its value: albuterol PRN wheezing), CI-SIS eP-MED's 'si douleur' (text), a
    protocol's criterion checked (code and BL value). It was dropped: a medication taken
    only when needed read as taken regularly."""
    value = _untyped(criterion.values[0]) if criterion.values else None
    code = criterion.code
    out: dict[str, Any] = {}
    if isinstance(value, CD):
        out = _coded_or_words(value, ctx, section) or {}
    if not out and code is not None and code.code and code.code != "ASSERTION":
        out = _coded_or_words(code, ctx, section) or {}
        if isinstance(value, BL) and value.value:
            out["value"] = value.value
    text = criterion.text or referenced_text(criterion.text_reference, section)
    if text and not is_placeholder(text) and "text" not in out:
        out["text"] = text[:500]
    return out or None


def _dosing(act: SubstanceAdministration, details: dict[str, Any], ctx: _Ctx,
            section: Section) -> None:
    """How a medication is taken (dose, rate, route, dose unit, period, frequency, timing
    event) into ``details``."""
    if isinstance(act.dose_quantity, (PQ, IVL)):
        dose = _dose_range(act.dose_quantity) if isinstance(act.dose_quantity, IVL) else \
            _quantity(act.dose_quantity)
        if dose:
            details["dose"] = dose
    rate = act.rate_quantity
    if isinstance(rate, (PQ, IVL)):  # how fast or how much a day (CI-SIS eP-MED '1500 to
        # 3000 mg/d', an infusion's mL/h): dropped
        rate_text = _dose_range(rate) if isinstance(rate, IVL) else _quantity(rate)
        if rate_text:
            details["rate"] = rate_text
    most = act.max_dose_quantity
    if isinstance(most, RTO):  # 'at most 4 a day' (eP-MED, C-CDA PRN): dropped
        ratio = _ratio(most)
        if ratio:
            details["max_dose"] = ratio
    if act.route_code is not None and act.route_code.code:
        details["route"] = act.route_code.code
        coded = _coded_or_words(act.route_code, ctx, section)
        if coded and (coded.get("system") or coded.get("display")):
            # the bare code said neither whose it is nor what it means: 'C38288' (NCI, C-CDA),
            # '20053000' (EDQM, CI-SIS, IPS), 'PO' (HL7 RouteOfAdministration)
            details["route_coded"] = coded
    if act.administration_unit_code is not None:
        # what one dose counts (C-CDA: doseQuantity 1 + administrationUnitCode 'tablet');
        # the dose read '1' of nothing
        unit = _coded_or_words(act.administration_unit_code, ctx, section)
        if unit:
            details["administration_unit"] = unit
    for t in act.effective_times:
        _timing(t, details)
    _united(act.effective_times, details)


def _flat_times(times: list[Value]) -> Iterator[Value]:
    """The effectiveTimes of a medication, the parts of a set expression among them."""
    for t in times:
        if isinstance(t, SXPR_TS):
            yield from _flat_times(t.comps)
        else:
            yield t


def _united(times: list[Value], details: dict[str, Any]) -> None:
    """Times of a dosing united (SXPR_TS comps, or effectiveTimes, with set operator I, the
    default; never A, intersect, nor E, exclude): IHE PCC's 'matin et soir' is two PIVL_TS of
    one day at 08:00 and at 20:00, 'au lever et au coucher' two EIVL_TS. Each overwrote the
    one before: filed 'every 1 d' (half the dose) and 'HS' alone. Several periodic times of
    one period are that many times a period (details.times_of_day: their hours); several
    events are all kept ('WAKE, HS')."""
    flat = list(_flat_times(times))
    pivls = [t for t in flat if t.type == "PIVL_TS" and
             isinstance(getattr(t, "period", None), PQ) and t.period.value]
    if len(pivls) > 1 and all(t.operator not in ("A", "E") for t in pivls[1:]) and \
            len({(t.period.value.strip(), t.period.unit.strip()) for t in pivls}) == 1:
        hours = [h for h in (_phase_time(t) for t in pivls) if h]
        if len(set(hours)) == len(pivls):  # distinct times, not the same one said twice
            period = pivls[0].period
            daily = period.unit.strip() == "d" and period.value.strip() in ("1", "1.0")
            details["frequency"] = f"{len(pivls)} times a day" if daily else \
                f"{len(pivls)} times every {period.value.strip()} {period.unit.strip()}"
            details["times_of_day"] = sorted(hours)
    elif len(pivls) == 1 and getattr(pivls[0], "institution_specified", "") != "true" and \
            _phase_time(pivls[0]):
        # one periodic time with its phase (C-CDA R2.1 'once a day at 08:00': phase low
        # 198701010800, period 1 d): the hour was dropped, filed 'every 1 d' at any time
        details["times_of_day"] = [_phase_time(pivls[0])]
    eivls = [t for t in flat if isinstance(t, EIVL_TS) and t.event is not None and
             t.event.code]
    if len(eivls) > 1 and all(t.operator not in ("A", "E") for t in eivls[1:]):
        details["event"] = ", ".join(dict.fromkeys(t.event.code for t in eivls))


def _phase_time(pivl: Value) -> str | None:
    """The time of day a PIVL_TS's phase starts at ('08:00'), None without one."""
    phase = getattr(pivl, "phase", None)
    low = phase.low if isinstance(phase, IVL) else None
    text = low.value.strip() if isinstance(low, TS) and low.value else ""
    digits = text.split("+")[0].split("-")[0]
    if len(digits) >= 12 and digits[:12].isdigit():
        return f"{digits[8:10]}:{digits[10:12]}"
    return None


_HOURS = {"h": Decimal(1), "d": Decimal(24)}  # UCUM units a daily frequency is given in


def _times_a_day(period: PQ) -> str | None:
    """A PIVL_TS with institutionSpecified="true" is a frequency, not an interval (HL7 V3
    data types: '3 times a day' against 'every 8 hours'): C-CDA writes twice a day as period
    12 h so, and it was read 'every 12 h'. None when it is no whole count a day."""
    try:
        hours = Decimal(period.value.strip()) * _HOURS[period.unit.strip() or "h"]
    except (KeyError, ArithmeticError, ValueError):
        return None
    if hours <= 0 or Decimal(24) % hours:
        return None
    times = int(Decimal(24) / hours)
    return "once a day" if times == 1 else f"{times} times a day"


def _dose_range(dose: IVL) -> str | None:
    """A dose given as a range ('1 to 2 tablets': IVL_PQ low/high, or a center) with its
    unit: the bounds' unit, else the one the IVL element carries (CDA-CH: unit="mg" on
    doseQuantity, center value="20"). '2-2' of nothing was filed: tablets or mg?"""
    text = _range(dose)
    if not text:
        return None
    unit = next((b.unit for b in (dose.low, dose.high, dose.center)
                 if isinstance(b, PQ) and b.unit and b.unit != "1"), "") or \
        (dose.unit if dose.unit != "1" else "")
    return f"{text} {unit}" if unit and not text.endswith(unit) else text


def _timing(t: Value, details: dict[str, Any]) -> None:
    """One effectiveTime of a medication into ``details``: its period (low, high; 'for 2 d'
    as duration), frequency (PIVL_TS), timing event (EIVL_TS), and the parts of a set
    expression (SXPR_TS: IHE PCC / CI-SIS structured posology 'every 8 h from the 1st for
    2 days', whose frequency and duration were lost)."""
    if isinstance(t, SXPR_TS):
        for comp in t.comps:
            _timing(comp, details)
    elif isinstance(t, IVL):
        for name in ("low", "high"):
            v = getattr(t, name)
            if isinstance(v, TS) and v.value:
                details[f"period_{name}"] = _iso_value(v.value)
        if isinstance(t.width, PQ) and t.width.value:
            details["duration"] = _quantity(t.width)
    elif t.type == "PIVL_TS":
        period = getattr(t, "period", None)
        if isinstance(period, PQ) and period.value:
            details["frequency"] = (_times_a_day(period) if
                                    getattr(t, "institution_specified", "") == "true"
                                    else None) or f"every {period.value} {period.unit}".strip()
        elif isinstance(period, IVL) and _range(period):  # every 4 to 6 h
            bound = next((b for b in (period.low, period.high) if isinstance(b, PQ)),
                         None)
            unit = bound.unit if bound is not None and bound.unit != "1" else ""
            details["frequency"] = f"every {_range(period)} {unit}".strip()
    elif isinstance(t, EIVL_TS) and t.event is not None and t.event.code:
        details["event"] = t.event.code  # HL7 TimingEvent: HS, ACM, PCV...
        offset = _offset_text(t.offset) if t.offset is not None else None
        if offset:  # '30 min before meals' (offset 30 min of AC) read as 'before meals'
            details["event_offset"] = offset


def _offset_text(offset: IVL) -> str | None:
    """The offset of an EIVL_TS from its event as sent ('30 min', '-1 h', '30-60 min'):
    its bounds, else its centre or point value, with their unit; None when it says none."""
    bounds = [b for b in (offset.low, offset.high) if isinstance(b, PQ) and b.value.strip()]
    if not bounds:
        point = offset.center if isinstance(offset.center, PQ) else \
            PQ(type="PQ", value=offset.value, unit=offset.unit) if offset.value else None
        bounds = [point] if point is not None and point.value.strip() else []
    if not bounds:
        return None
    unit = next((b.unit.strip() for b in bounds if b.unit.strip() not in ("", "1")), "")
    text = "-".join(dict.fromkeys(b.value.strip() for b in bounds))
    return f"{text} {unit}".strip()[:40]


TARGET_DISEASE = "IND"  # eHDSI immunization: participant typeCode IND, participantRole AGNT


def _target_diseases(act: ClinicalStatement, ctx: _Ctx,
                     section: Section) -> list[dict[str, str]]:
    """The diseases or agents a vaccination protects against (eHDSI / epSOS Immunization:
    participant typeCode IND / participantRole classCode AGNT / code, the playingEntity
    ENT naming it in words when uncoded): a vaccine combining several (DTP) says which
    ones it covers. They were not read."""
    out = []
    for part in act.participants:
        entity = part.entity
        if part.type_code != TARGET_DISEASE or entity is None or \
                entity.role != "participantRole" or entity.class_code not in ("AGNT", ""):
            continue
        found = _coded_or_words(entity.code, ctx, section) if entity.code is not None \
            else None
        if found is None and entity.player_names and entity.player_names[0]:
            found = {"text": entity.player_names[0]}
        if found is not None:
            out.append(found)
    return out


# LOINC 'dose number in series' (CCD 2.16.840.1.113883.10.20.1.46, CI-SIS
# FR-Rang-de-la-vaccination, eHDSI)
DOSE_NUMBER = "30973-2"


def _dose_number(act: ClinicalStatement) -> int | str | None:
    """Which dose of its series a vaccination was (the series number observation it nests,
    INT value: 'rang de la vaccination' 1, 2, booster...): it was skipped as no entry of
    its own, and with it whether the course is complete. The number as an int, what the
    sender wrote when it is not one; None when there is none."""
    for rel in act.entry_relationships:
        obs = rel.act
        if not isinstance(obs, Observation) or obs.code is None or \
                obs.code.code != DOSE_NUMBER or not obs.values or \
                system_name(obs.code.code_system) != LOINC:
            continue
        value = _untyped(obs.values[0])
        if isinstance(value, INT):
            number = value.number
            return number if number is not None else (value.value.strip()[:20] or None)
        if isinstance(value, (PQ, REAL)) and value.number is not None and \
                value.number == value.number.to_integral_value():
            return int(value.number)  # '2' sent as a PQ or REAL: still the second dose
    return None


def _occurrence(act: ClinicalStatement) -> int | None:
    """Which administration of its series an immunization done was, said by repeatNumber:
    in event mood it is the ordinal of this occurrence (CDA R2 / RIM; C-CDA Immunization
    Activity 1198-8838: '3' is the third dose), the way C-CDA senders give the dose number
    that IHE PCC / CI-SIS nest as a 30973-2 observation. It was dropped."""
    count = getattr(act, "repeat_number", None)
    text = count.value.strip() if isinstance(count, IVL | INT) else ""
    if not text and isinstance(count, IVL) and isinstance(count.low, INT) and \
            isinstance(count.high, INT) and count.low.value == count.high.value:
        text = count.low.value.strip()  # <low value="2"/><high value="2"/>
    # XML Schema integer: ASCII digits ('٣' is a digit to str.isdigit, not to the schema)
    return int(text) if text.isascii() and text.isdigit() and int(text) > 0 else None


@cache
def _medication_parts() -> dict[str, tuple[str, str]]:
    return {row["template"]: (row["key"], row["reads"])
            for row in table("cda_medication_parts")}


PATIENT_INSTRUCTIONS = "patient_instructions"  # tables/cda_medication_parts.csv's key
_SECTION_ENTRY = re.compile(r"/entry(\[\d+\])?/[^/]+$")  # a statement that is a section entry


def _is_instruction(act: ClinicalStatement) -> bool:
    """Whether a statement is an instruction to the patient (C-CDA Instruction, IHE PCC /
    CI-SIS FR-Instructions-au-patient: tables/cda_medication_parts.csv)."""
    parts = _medication_parts()
    return any(parts.get(t.root, ("",))[0] == PATIENT_INSTRUCTIONS for t in act.template_ids)


def _instruction(act: ClinicalStatement, entry: Entry, section: Section) -> None:
    """What the patient is told about a procedure, a planned act, test or visit (C-CDA R2.1
    Planned Procedure/Act/Encounter/Observation and Procedure Activity MAY hold an
    Instruction: 'à jeun depuis minuit', 'apporter les clichés précédents'), into
    details.patient_instructions as a medication's are. It was read under a medication
    only, and under anything else dropped without a word."""
    text = _comment_text(act, section)
    if any(c.isalnum() for c in text):  # '-': the sender's 'no instruction'
        entry.details.setdefault(PATIENT_INSTRUCTIONS, []).append(text)


def _medication_part(rel: EntryRelationship, entry: Entry, ctx: _Ctx,
                     section: Section) -> None:
    """What a medication or vaccination nests about itself, into its details: the
    instructions to the patient and to the pharmacist, whether it may be substituted, the
    quantity to dispense (tables/cda_medication_parts.csv), why it is given (RSON: an
    indication coded in an observation's value or an internal reference's code), a
    reaction, and the prescription's flags (CI-SIS: related to an ALD, an occupational
    accident, off-label, not reimbursed). All were skipped as no entries of their own:
    an eP-MED prescription lost everything but the drug and its dosing."""
    act = rel.act
    if act is None or act.null_flavor:
        return
    parts = _medication_parts()
    part = next((parts[t.root] for t in act.template_ids if t.root in parts), None)
    if part is not None:
        key, reads = part
        if reads == "text":
            text = _comment_text(act, section)
            if any(c.isalnum() for c in text):  # '-': the sender's 'no instruction'
                entry.details.setdefault(key, []).append(text)
        elif reads == "code" and act.code is not None:
            found = _coded_or_words(act.code, ctx, section)
            if found:
                entry.details[key] = found
        elif reads == "reference":
            fulfilled = _item_reference(act, ctx)
            if fulfilled:
                entry.details[key] = fulfilled
        elif reads == "quantity":
            quantity = getattr(act, "quantity", None)
            if isinstance(quantity, PQ) and quantity.value:
                entry.details[key] = {"value": quantity.value.strip(),
                                      "unit": quantity.unit or None}
            _repeats(act, entry.details)
        return
    if isinstance(act, SubstanceAdministration) and rel.type_code == "COMP" and \
            not _names_a_product(act.consumable) and \
            DOSAGE_INSTRUCTIONS not in act.template_roots:  # a dispense's: details.dosage
        # a subordinate administration (IHE PCC split / tapered dose, CI-SIS
        # FR-Traitement-prescrit-subordonnee: 'every 8 h for 2 days, then every 12 h'): a
        # step of this medication's dosing, dropped with all it said
        step: dict[str, Any] = {"sequence": rel.sequence_number} if rel.sequence_number \
            else {}
        _dosing(act, step, ctx, section)
        if len(step) > ("sequence" in step):
            entry.details.setdefault("dosage_steps", []).append(step)
        return
    if rel.type_code == "RSON":
        if not entry.details.get("negated"):  # not given: the reason is why not
            reason = _indication(act, ctx, section)
            if reason:
                entry.details.setdefault("reasons", []).append(reason)
        return
    if not isinstance(act, Observation) or (act.code is not None and
                                            act.code.code == DOSE_NUMBER):
        return
    if rel.type_code in ("MFST", "CAUS"):
        reaction = _reaction(act, ctx, section)
        if reaction:
            entry.details.setdefault("reactions", []).append(reaction)
        return
    _describe(act, entry, "observations", ctx, section)


def _item_reference(act: ClinicalStatement, ctx: _Ctx) -> dict[str, Any] | None:
    """The prescription item a dispense fulfils (IHE Pharm / CI-SIS eDISP): the item's id,
    who prescribed it and the prescription document it is in (its reference XCRPT). It was
    skipped: a dispense could not be tied to the prescription it executes, nor the
    prescriber named. None when it says none of them."""
    ids = [i.key for i in act.ids if i.root and not i.null_flavor]
    out: dict[str, Any] = {"item": ids[0] if ids else None}
    prescribers = [a for a in (_entry_author(x, ctx) for x in act.authors) if a]
    if prescribers:
        out["prescribed_by"] = prescribers
    documents = _references(act, [])
    if documents:
        out["documents"] = documents
    return out if out["item"] or len(out) > 1 else None


def _delivery(act: Supply, ctx: _Ctx) -> dict[str, Any] | None:
    """A dispense nested in a medication, without a product of its own: when (its time,
    else its performer's), how many and by whom (ids, organization and its name)."""
    when = _effective(act.effective_time, ctx) or next(
        (t for t in (_effective(p.time, ctx) for p in act.performers) if t), "")
    out: dict[str, Any] = {"time": when or None}
    if isinstance(act.quantity, PQ) and act.quantity.value:
        out["quantity"] = _quantity(act.quantity)
    by = _performed_by(act) if act.performers else None
    if by:
        out["by"] = by
    return {k: v for k, v in out.items() if v} or None


def _names_a_product(product: Product | None) -> bool:
    """Whether a consumable says what is given (a code, a translation or a name), as
    opposed to the nullFlavor NA of a step or instruction of another statement's."""
    if product is None:
        return False
    code = product.code
    return bool(product.name or code is not None and (code.code or code.translations or
                                                      code.original_text))


def _indication(act: ClinicalStatement, ctx: _Ctx, section: Section) -> dict[str, str] | None:
    """Why a medication is given: the coded value of an indication observation (C-CDA
    4.19: its code only says 'finding'), else the code of the act (CI-SIS
    FR-Reference-interne: the problem's CIM-10 code), else their words."""
    if isinstance(act, Observation) and act.values:
        value = _untyped(act.values[0])
        if isinstance(value, CD):
            found = _coded_or_words(value, ctx, section)
            if found:
                return found
    if act.code is not None:
        return _coded_or_words(act.code, ctx, section)
    return None


REASON_NOT_DONE = "77301-0"  # LOINC 'reason care action performed or not' (QRDA, C-CDA)


def _not_done_reason(act: ClinicalStatement, entry: Entry, ctx: _Ctx,
                     section: Section) -> None:
    """Why a medication, vaccination or procedure was not done (negationInd): the RSON it
    nests (or a QRDA reason observation, LOINC 77301-0, whatever its typeCode: senders omit
    it), coded in its value or its code (C-CDA immunization refusal reason, 'PATOBJ')."""
    for rel in act.entry_relationships:
        reason = rel.act
        if reason is None or (rel.type_code != "RSON" and not (
                reason.code is not None and reason.code.code == REASON_NOT_DONE)):
            continue
        value = _untyped(reason.values[0]) if isinstance(reason, Observation) and \
            reason.values else None
        coded = _code(value, ctx, section) if isinstance(value, CD) else None
        if not coded and reason.code is not None:
            coded = _code(reason.code, ctx, section)
        if coded:
            entry.details["not_done_reason"] = {"code": coded[0], "system": coded[1],
                                                "display": coded[2]}
            return


def _device(act: ClinicalStatement, section: Section, ctx: _Ctx,
            parent_key: str | None) -> Entry | None:
    """A medical device the patient has (CI-SIS FR-Dispositif-medical, CCD supply activity
    with a DEV participant, C-CDA non-medicinal supply): coded by its playing device (EMDN,
    LPP, GMDN, SNOMED CT), else its product; its characteristics (size, diameter: nested
    observations) go to details. They were filed as the patient's observations ('Taille:
    2.5') and the device itself was not filed."""
    device = next((p.entity.player_code for p in act.participants
                   if p.type_code in DEVICE_PARTICIPATIONS and p.entity is not None and
                   p.entity.player_code is not None), None)
    product = getattr(act, "product", None)
    if device is None and product is not None:
        device = product.code
    entry = _base(act, DEVICE, section, ctx, parent_key)
    entry.code = entry.system = entry.display = None
    entry.mapped = True
    coded = _code(device, ctx, section) if device is not None else None
    if coded:
        entry.code, entry.system, entry.display, entry.mapped = coded
    else:
        entry.display = (original_text(device, section) if device is not None else "") or \
            referenced_text(act.text_reference, section) or act.text or None
        entry.mapped = False
    if entry.code is None and not entry.display:
        return None
    if isinstance(act.effective_time, IVL):  # implanted on (low), removed on (high)
        for name in ("low", "high"):
            v = getattr(act.effective_time, name)
            if isinstance(v, TS) and v.value:
                entry.details[f"period_{name}"] = _iso_value(v.value)
    for rel in act.entry_relationships:
        if isinstance(rel.act, Observation):
            _describe(rel.act, entry, "characteristics", ctx, section)
    return entry


ENCOUNTER_DIAGNOSIS = "2.16.840.1.113883.10.20.22.4.80"  # C-CDA Encounter Diagnosis act
SERVICE_LOCATION = "LOC"  # participant typeCode of the service delivery location (C-CDA)
DESTINATION = "DST"  # participant typeCode of where a patient transfer went (IHE PCC)
ACT_CODE = "HL7-ACTCODE"  # code_systems.csv: HL7 ActCode (2.16.840.1.113883.5.4)


def _encounter_entry(act: Encounter | Act, section: Section, ctx: _Ctx,
                     parent_key: str | None) -> Entry | None:
    """A visit or stay the document reports (C-CDA Encounter Activity in the Encounters
    section, IHE PCC / CI-SIS FR-Rencontre: a CNAM-HR hospital stay with its GHS, an
    antenatal interview of OBP-SAP): its type (HL7 ActCode AMB/IMP/EMER, CPT, a CI-SIS
    TA_ASIP code) with its qualifiers, its period (details.period_low/high; effective is
    when it began), who saw the patient (details.performed_by), where (details.location:
    the participant LOC's service delivery location) and what it was for
    (details.diagnoses: the C-CDA Encounter Diagnosis and the RSON indications; the
    problems they hold are still filed as problems) and its class (details.class: the HL7
    ActCode among the code and its translations). Every encounter was dropped. Nothing
    to file when it has neither a code, words nor a time."""
    code = act.code
    coded = _code(code, ctx, section) if code is not None else None
    name = "" if coded else (original_text(code, section) if code is not None else "") or \
        referenced_text(act.text_reference, section) or act.text.strip()
    name = "" if is_placeholder(name) else name
    when = _effective(act.effective_time, ctx)
    if not coded and not name and not when:
        return None
    entry = _base(act, ENCOUNTER, section, ctx, parent_key)
    if name:
        entry.display, entry.mapped = name[:300], False
    if code is not None and code.qualifiers:
        _qualify(code, entry, "code_qualifiers", ctx, section)
    klass = next((c for c in (code, *code.translations) if c.code and
                  system_name(c.code_system) == ACT_CODE), None) if code is not None else None
    if klass is not None:  # HL7 ActEncounterCode AMB, IMP, EMER... (C-CDA: a translation
        # of the CPT code): the encounter's class
        entry.details["class"] = {"code": klass.code, "display": klass.display or None}
    others = [t for t in (code.translations if code is not None else [])
              if t.code and t is not klass and t.code != entry.code]
    said = [c for c in (_coded_or_words(t, ctx, section) for t in others) if c]
    entry.details.pop("other_codes", None)  # an encounter's translations say more than its
    # code (where the patient was transferred to): code_translations below
    if said:  # what else the code says in another terminology (CI-SIS FR-Transfert-du-
        # patient: the type of service transferred to, 'unité de soins intensifs
        # néonatals', in SNOMED CT under LOINC 80413-8): dropped with the translation
        entry.details["code_translations"] = said
    period = act.effective_time
    if isinstance(period, IVL):  # admission (low) and discharge (high)
        for bound in ("low", "high"):
            v = getattr(period, bound)
            if isinstance(v, TS) and v.value:
                iso = _iso_value(v.value, ctx.warnings, v.path)
                if iso:
                    entry.details[f"period_{bound}"] = iso
    performed_by = _performed_by(act) if act.performers else None
    if performed_by:
        entry.details["performed_by"] = performed_by
    places = [p for p in map(_service_location, act.participants) if p]
    if places:
        entry.details["location"] = places[0]
    destinations = [p for p in (_service_location(p, DESTINATION) for p in act.participants)
                    if p]
    if destinations:  # where the patient was transferred to (IHE PCC patient transfer:
        # participant DST, the facility's FINESS, kind, name): the transfer was not filed
        entry.details["destination"] = destinations[0]
    diagnoses = _encounter_diagnoses(act, ctx, section) if act.entry_relationships else []
    if diagnoses:
        entry.details["diagnoses"] = diagnoses
    disposition = next((x for x in act.extensions if x.namespace == SDTC and
                        x.name == "dischargeDispositionCode"), None)
    if disposition is not None and disposition.attributes.get("code", "").strip():
        # where the patient went at the end of the stay (C-CDA R2.1 Encounter Activity
        # sdtc:dischargeDispositionCode, HL7 table 0112 or NUBC): read on the header's
        # encompassingEncounter only, an encounter entry's was dropped
        said = disposition.attributes
        entry.details["discharge_disposition"] = {k: v for k, v in (
            ("code", said["code"].strip()),
            ("system", system_name(said.get("codeSystem", "").strip(),
                                   said.get("codeSystemName", ""))),
            ("display", said.get("displayName", "").strip())) if v}
    return entry


def _service_location(part, type_code: str = SERVICE_LOCATION  # noqa: ANN001
                      ) -> dict[str, Any] | None:
    """Where an encounter took place (participant LOC, C-CDA Service Delivery Location:
    participantRole SDLOC with its HSLOC code and playingEntity name), or where a transfer
    went (``type_code`` DST): ids, kind, name. CI-SIS FR-Transfert-du-patient writes the
    destination's FINESS as the participant's templateId (root the FINESS OID, extension
    the number: no template has an extension there): read as its first id."""
    entity = part.entity
    if part.type_code != type_code or entity is None:
        return None
    ids = [i.key for i in part.template_ids if i.root and i.extension and not i.null_flavor]
    ids += [i.key for i in entity.ids if i.root and not i.null_flavor]
    out: dict[str, Any] = {"ids": ids}
    if entity.code is not None and entity.code.code:
        out["code"] = {"code": entity.code.code, "system": system_name(entity.code.code_system),
                       "display": entity.code.display or None}
    names = [n for n in entity.player_names if n]
    if names:
        out["name"] = names[0][:300]
    elif entity.code is not None and entity.code.display:
        out["name"] = entity.code.display[:300]
    out = {k: v for k, v in out.items() if v}
    return out or None


def _encounter_diagnoses(act: Encounter, ctx: _Ctx, section: Section) -> list[dict[str, Any]]:
    """What an encounter was for: the problems of its C-CDA Encounter Diagnosis acts
    (role 'diagnosis') and its RSON entryRelationships (an indication observation, an IHE
    PCC internal reference to a problem: role 'reason'), each {code, system, display} or
    {text}: the problem's value, else its code."""
    out = []
    for rel in act.entry_relationships:
        nested = rel.act
        if nested is None:
            continue
        if ENCOUNTER_DIAGNOSIS in nested.template_roots:
            role, found = "diagnosis", [r.act for r in nested.entry_relationships
                                        if isinstance(r.act, Observation)]
        elif rel.type_code == "RSON":
            role, found = "reason", [nested]
        else:
            continue
        for obs in found:
            value = next((v for v in map(_untyped, obs.values) if isinstance(v, CD)), None) \
                if isinstance(obs, Observation) else None
            said = (_coded_or_words(value, ctx, section) if value is not None else None) or \
                (_coded_or_words(obs.code, ctx, section) if obs.code is not None else None)
            if said:
                out.append({"role": role, **said})
    return out


def _describe(obs: Observation, entry: Entry, key: str, ctx: _Ctx, section: Section) -> None:
    """An observation about a device or an act (its size, how it went) added to the
    entry's details[key] as {code, display, value, unit}, instead of an entry of its own."""
    described = _described(obs, ctx, section, DESCRIBED_DEPTH)
    if described is not None:
        entry.details.setdefault(key, []).append(described)


DESCRIBED_DEPTH = 3  # levels of parts read under a described observation (a staging, its
# T, N and M; an 'other classification', its name and version): the XML allows any


def _described(obs: Observation, ctx: _Ctx, section: Section,
               depth: int) -> dict[str, Any] | None:
    """{code, system, display, value, unit} of an observation described in another's details
    (its system with its code: two nested observations of one code string in two systems, a
    local '21908-9' and LOINC's, were alike, and the export coded them in no system); with
    ``qualifiers`` when its coded value says more in qualifiers (CI-SIS / IHE PCC cancer
    staging 75620-5: no code of its own, the stage 21909-7 and the TNM version 21917-0 as
    qualifiers), and ``parts``: the observations it nests, each described the same way (the
    T, N and M of that staging). Both were dropped: a cancer's stage was filed as a staging
    observation with no value and its T1b N1 M0 lost."""
    if obs.code is None or obs.null_flavor:
        return None
    parts = [d for d in (_described(rel.act, ctx, section, depth - 1)
                         for rel in obs.entry_relationships
                         if isinstance(rel.act, Observation) and not _is_qualifier(rel.act))
             if d is not None and _says_something(d)] if depth > 0 else []
    if not obs.values and not parts:
        return None
    item = Entry(type=OBSERVATION, key="", source_ref=obs.path)
    value = _untyped(obs.values[0]) if obs.values else None
    if value is not None:
        _value(value, item, ctx, section)
    coded = _code(obs.code, ctx, section)
    described: dict[str, Any] = {
        "code": coded[0] if coded else None, "system": coded[1] if coded else None,
        "display": coded[2] if coded else None, "value": item.value, "unit": item.unit}
    value_code = item.details.get("value_code")
    if value_code:  # the coded value itself (T1b in TNM_UICC), not only its words
        described["value_code"] = value_code
    qualifiers = item.details.get("value_qualifiers")
    if qualifiers:
        described["qualifiers"] = qualifiers
    if parts:
        described["parts"] = parts
    if obs.negation_ind == "true":  # 'venous access difficult' negated: it was easy; it
        described["negated"] = True  # read as said
    return described


VALUE_TRANSLATIONS_KEPT = 5  # a coded value's other codes kept (CDA allows any number)


def _other_codes(value: CD, chosen: tuple[str, str, str, bool]) -> list[dict[str, str]]:
    """The codes of a coded value other than the one it is filed under: the same answer in
    another terminology ({code, system, display}: the ADICAP code of a pathology diagnosis
    beside its SNOMED CT one, CI-SIS CR-ACP; the lab's own code beside a standard one).
    They were dropped: only the chosen code was kept."""
    out: list[dict[str, str]] = []
    seen = {(chosen[0], chosen[1])}
    for c in (value, *value.translations):
        if not c.code:
            continue
        system = system_name(c.code_system, c.code_system_name)
        if (c.code, system) in seen:
            continue
        seen.add((c.code, system))
        out.append({k: v for k, v in (("code", c.code), ("system", system),
                                      ("display", c.display)) if v})
    return out[:VALUE_TRANSLATIONS_KEPT]


def _says_something(described: dict[str, Any]) -> bool:
    """A part worth keeping: it has a value (words, code or qualifiers) or parts of its own;
    a template's empty slot ('name of the classification': a placeholder) is not one."""
    return any(described.get(k) for k in ("value", "value_code", "qualifiers", "parts"))


DOSAGE_INSTRUCTIONS = "1.3.6.1.4.1.19376.1.9.1.3.6"  # IHE Pharm Dosage Instructions (CI-SIS
# eDISP: the posology the pharmacist hands out with a dispense)


def _dispensed(act: Supply, entry: Entry, ctx: _Ctx, section: Section) -> Entry:
    """A dispense (supply in event mood: IHE PHARM DIS, CI-SIS FR-Traitement-dispense,
    C-CDA Medication Dispense): the quantity handed out, and the dosage instructions it
    nests (IHE Pharm DIS / CI-SIS eDISP: a substanceAdministration without a product of its
    own: dose, route, frequency, period; details.dosage: they were dropped); its time is the
    supply's, else its author's, else its section's (the pharmacist's, CI-SIS eDISP)."""
    quantity = act.quantity
    if isinstance(quantity, PQ) and quantity.value:
        entry.details["dispensed_quantity"] = _quantity(quantity)
    entry.details["dispensed"] = True
    for rel in act.entry_relationships:
        dosing = rel.act
        if isinstance(dosing, SubstanceAdministration) and \
                DOSAGE_INSTRUCTIONS in dosing.template_roots:
            dosage: dict[str, Any] = {}
            _dosing(dosing, dosage, ctx, section)
            if dosage:
                entry.details["dosage"] = dosage
            break
    if entry.effective is None:
        times = [a.time for a in (*act.authors, *section.authors)
                 if isinstance(a.time, TS) and a.time.value]
        entry.effective = _iso_value(times[0].value) or None if times else None
    by = _dispenser(act, section)
    if by:
        entry.details["dispensed_by"] = by
    return entry


def _dispenser(act: Supply, section: Section) -> dict[str, Any] | None:
    """Who dispensed (the pharmacist, and the pharmacy: ids, FINESS, name), as ids like a
    vaccinator's: the supply's performer (C-CDA Medication Dispense, IHE PCC Supply Entry),
    else the person who authored the dispense or its section (CI-SIS eDISP and IHE PHARM
    DIS name the dispensing pharmacist and the pharmacy as the section's author). It was
    dropped: a dispense filed without the pharmacy that handed it out (the pharmacist's
    RPPS in recorded_by, never the pharmacy's name). Software authors dispense nothing."""
    if act.performers:
        by = _performed_by(act)
        if by:
            return by
    people = [a for a in (*act.authors, *section.authors)
              if a.entity is not None and not _is_device(a)]
    return _party(people[0].entity) if people else None


def _untyped(value: Value) -> Value:
    """A value sent without xsi:type (invalid, but some senders forget it) read as what its
    attributes say: a CD when it has a code, a PQ when it has a unit; else as it is. The
    parser kept it as AnyValue with a CDA_UNKNOWN_XSI_TYPE warning."""
    if not isinstance(value, AnyValue) or value.xsi_type:
        return value
    a = value.attributes
    if a.get("code") or a.get("codeSystem"):
        return CD(type="CD", code=a.get("code", ""), code_system=a.get("codeSystem", ""),
                  code_system_name=a.get("codeSystemName", ""),
                  display=a.get("displayName", ""), null_flavor=value.null_flavor,
                  path=value.path)
    if a.get("unit"):
        return PQ(type="PQ", value=a.get("value", ""), unit=a["unit"],
                  null_flavor=value.null_flavor, path=value.path)
    simple = _SIMPLE_TYPES.get(a.get("type", "").strip().upper())
    if simple is not None and a.get("value"):
        # the type written without its xsi: prefix (type="TS", eHDSI samples): a date was
        # kept as the raw '20230214'
        return simple(type=simple.__name__, value=a["value"], null_flavor=value.null_flavor,
                      path=value.path)
    return value


_SIMPLE_TYPES: dict[str, type[TS | INT | REAL | BL]] = {"TS": TS, "INT": INT, "REAL": REAL,
                                                         "BL": BL}


# Entry.value_type holds 10 characters (HL7v2 types are 2-3): a longer CDA xsi:type
# (RTO_QTY_QTY, RTO_INT_INT: a titre) is filed as its family, the whole type in details.
VALUE_TYPE_SIZE = 10


def _value(value: Value, entry: Entry, ctx: _Ctx, section: Section | None = None) -> None:
    if isinstance(value, IVL) and value.value and value.low is None and \
            value.high is None and value.center is None and not value.type.endswith("_TS"):
        # an IVL_PQ given as a point (value and unit on the element itself, as IVL<T>
        # extends T: '<value xsi:type="IVL_PQ" value="5" unit="mg/L"/>') is that quantity:
        # it was filed as the text '5 mg/L' without unit nor number
        value = PQ(type=value.type, value=value.value, unit=value.unit,
                   null_flavor=value.null_flavor, path=value.path, xsi_type=value.xsi_type)
    if isinstance(value, PIVL_TS | EIVL_TS) and value.value.strip():
        # a date typed with a TS specialization (PIVL_TS and EIVL_TS extend TS and so have
        # its value: the CI-SIS PPS example dates its meeting with EIVL_TS, senders copy
        # it): filed as the TS it says, the type as sent in details; it was no value at all
        entry.details["xsi_type"] = value.type
        value = TS(type="TS", value=value.value, null_flavor=value.null_flavor,
                   path=value.path, xsi_type=value.xsi_type)
    entry.value_type = value.type or None
    if value.type and len(value.type) > VALUE_TYPE_SIZE:
        # the whole document was refused as FIELD_TOO_LONG for a titre sent as RTO_INT_INT
        entry.value_type = value.type.split("_", 1)[0][:VALUE_TYPE_SIZE]
        entry.details["xsi_type"] = value.type
    if isinstance(value, PQ):
        amount, number, unit = _pq_parts(value)
        if not value.value and len(unit) > ENTRY_MAX["unit_original"]:
            # a unit in words (a translation's originalText) too long for the unit column:
            # kept in details rather than refusing the whole document as FIELD_TOO_LONG
            entry.details["unit_text"], unit = unit, ""
        entry.value = amount or None
        if amount and number is None:
            number = _decimal_comma(amount, value, ctx)
        if amount and number is None:
            number = _compared_number(amount, value, entry, ctx)
        entry.value_num = float(number) if number is not None else None
        if amount and number is None:
            _not_a_number(value, ctx)
        if unit and unit != "1":
            entry.unit_original = unit
            entry.unit = to_ucum(unit).unit
        if amount and not value.value:
            entry.details["value_translated"] = True  # the PQ itself was a nullFlavor
        others = [{"value": t.value, "unit": t.code or t.original_text}
                  for t in value.translations if t.value] if value.value else []
        if others:  # the same quantity in other units (CDA PQR): kept as sent
            entry.details["value_translations"] = others
        if not amount and value.null_flavor:
            _quantity_in_words(value, entry, ctx, section)
    elif isinstance(value, MO):
        _money(value, entry, ctx)
    elif isinstance(value, (INT, REAL)):
        entry.value = value.value.strip() or None
        number = value.number
        if entry.value and number is None and isinstance(value, REAL):
            number = _decimal_comma(entry.value, value, ctx)
        if entry.value and number is None:
            number = _compared_number(entry.value, value, entry, ctx)
        entry.value_num = float(number) if number is not None else None
        if entry.value and number is None:
            _not_a_number(value, ctx)
    elif isinstance(value, CD):
        coded = _code(value, ctx, section)
        if coded:
            entry.value = coded[2] or coded[0]
            entry.details["value_code"] = {"code": coded[0], "system": coded[1]}
            others = _other_codes(value, coded)
            if others:
                entry.details["value_code"]["translations"] = others
            if not value.code and value.null_flavor:
                # no code of the sender's own (nullFlavor OTH), a standard one in translation:
                # the sender's words ('Non reactive' for 'Negative') were dropped
                words = original_text(value, section)[:500]
                if words and words != entry.value:
                    entry.details["value_text"] = words
        else:
            entry.value = original_text(value, section)[:2000] or None
        if value.qualifiers:
            _qualify(value, entry, "value_qualifiers", ctx, section)
    elif isinstance(value, IVL) and value.type.endswith("_TS"):
        entry.value = _period_text(value)
    elif isinstance(value, IVL):
        entry.value = _range(value)
        low, high = value.low, value.high
        bound = next((b for b in (low, high, value.center) if isinstance(b, PQ) and b.unit),
                     None)
        if bound is not None and bound.unit != "1":
            entry.unit_original = bound.unit
            entry.unit = to_ucum(bound.unit).unit
        one = (low if not isinstance(high, (PQ, INT, REAL)) or not high.value else
               high if not isinstance(low, (PQ, INT, REAL)) or not low.value else None)
        center = value.center
        if isinstance(one, (PQ, INT, REAL)) and one.value:  # '<5', '>=100': one bound only
            number = one.number
            entry.value_num = float(number) if number is not None else None
            entry.comparator = (">" if one is low else "<") + \
                ("=" if (value.low_inclusive if one is low else value.high_inclusive) else "")
        elif one is None and isinstance(center, (PQ, INT, REAL)) and center.value and \
                not isinstance(low, (PQ, INT, REAL)):
            # an interval given by its centre only ('about 7 days'): the centre is the
            # value (it was lost: no bound, no point value)
            entry.value = center.value
            number = center.number
            entry.value_num = float(number) if number is not None else None
    elif isinstance(value, ST):
        # its text, else the narrative a reference in it points at (ST has none by schema,
        # but senders write one as in an ED: the result was filed without a value)
        entry.value = value.text or (referenced_text(value.reference, section)[:2000]
                                     if value.reference else "") or None
        if value.code is not None and value.code.code:  # SC: a string with a code
            entry.details["value_code"] = {"code": value.code.code,
                                           "system": system_name(value.code.code_system)}
        _text_as_quantity(value, entry, ctx)
    elif isinstance(value, ED):
        # inline text, else the narrative its reference points at (it read as ''); a B64
        # text (text/plain, possibly compressed) decoded: it was dropped with the binaries
        if value.representation == "B64":
            entry.value = _ed_text(value, ctx) or None
            if value.media_type:
                entry.details["value_media_type"] = value.media_type
        else:
            entry.value = (value.text[:2000] or
                           referenced_text(value.reference, section)[:2000]) or None
        _text_as_quantity(value, entry, ctx)
    elif isinstance(value, TS):
        # a date the sender did not write as an HL7 TS is kept as written, with a warning
        iso = _iso_value(value.value)
        entry.value = iso or value.value.strip() or None
        if not iso and entry.value:
            ctx.warnings.append(f"CDA_BAD_DATE: {value.path}: a TS value that is not a valid "
                                "HL7 date/time, kept as written")
    elif isinstance(value, BL):
        entry.value = value.value.strip() or None
    elif isinstance(value, RTO):
        entry.value = _ratio(value)
    elif isinstance(value, PIVL_TS | EIVL_TS):
        # a frequency ('every 2 wk': how often seizures come) or an event ('HS') as the
        # value, said as a medication's timing is: it was filed with no value at all
        said: dict[str, Any] = {}
        _timing(value, said)
        entry.value = said.get("frequency") or said.get("event") or None
        if said.get("event_offset"):
            entry.details["event_offset"] = said["event_offset"]
    elif isinstance(value, AnyValue):  # an xsi:type we do not model: what it says, as sent
        entry.value = (value.attributes.get("value") or value.text)[:2000] or None
    if entry.value_num is not None and not math.isfinite(entry.value_num):
        entry.value_num = None  # '1e400' is a Decimal but no float
    if value.null_flavor and entry.value is None:
        # why there is no value: NA (pending, C-CDA), MSK (withheld), NAV, UNK, ASKU...;
        # the result read as one sent without a word
        entry.details["value_null_flavor"] = value.null_flavor[:8]


def _text_as_quantity(value: ST | ED, entry: Entry, ctx: _Ctx) -> None:
    """A result written as text that is a comparator and a number ('<0,5', '< 0.5 mg/L',
    '≥ 60') or a number and a known unit (normalizers/cda_text_values.py): its number,
    comparator and unit, as an HL7v2 SN '<^0.5' gives them. It was text alone: no number,
    out of every trend, a valueString in the export. The text and its type stay as sent;
    said as CDA_TEXT_QUANTITY, by where it is (never the value)."""
    if not entry.value or len(entry.value) > 40:
        return
    titre = text_titre(entry.value)
    if titre is not None:  # a serology written '1/160': the ratio (valueRatio), said
        entry.details["sn"] = {"comparator": "", "num1": "1", "separator": titre[0],
                               "num2": titre[1]}
        ctx.warnings.append(f"CDA_TEXT_TITRE: {value.path}: a {value.type or 'text'} value "
                            "that is a titre (1:n), read as a ratio (the text kept as sent)")
        return
    said = text_quantity(entry.value)
    if said is None or not math.isfinite(said.number):
        return
    entry.value_num = float(said.number)
    entry.comparator = said.comparator
    if said.unit_sent:
        entry.unit, entry.unit_original = said.unit, said.unit_sent[:ENTRY_MAX["unit_original"]]
        entry.details["unit_in_value"] = True
    ctx.warnings.append(f"CDA_TEXT_QUANTITY: {value.path}: a {value.type or 'text'} value "
                        "that is a quantity, read as its number"
                        f"{', comparator' if said.comparator else ''}"
                        f"{' and unit' if said.unit_sent else ''} (the text kept as sent)")


_DECIMAL_COMMA = re.compile(r"[+-]?\d*,\d+")


def _decimal_comma(amount: str, value: Value, ctx: _Ctx) -> Decimal | None:
    """The number of a PQ or REAL written with a decimal comma ('7,2': a French sender's
    locale; CDA's xs:double has only the point), said as CDA_DECIMAL_COMMA; None for
    anything else. It was filed as text without a numeric value, while the same potassium
    of 7,2 sent in an HL7v2 OBX (read there with a warning) had one: the two were two facts
    in the dossier, never deduplicated across channels, and the CDA one had no number to
    compare or chart. The value as written is kept."""
    if not _DECIMAL_COMMA.fullmatch(amount):
        return None
    ctx.warnings.append(f"CDA_DECIMAL_COMMA: {value.path}: a {value.type} value with a "
                        "decimal comma, read as a decimal point")
    return Decimal(amount.replace(",", "."))


def _compared_number(amount: str, value: Value, entry: Entry, ctx: _Ctx) -> Decimal | None:
    """The number of a PQ, INT or REAL whose value attribute starts with a comparator
    ('>60' for an eGFR, '<0,5': invalid for xs:double, but what LIS write when the result
    is beyond a limit and the type says a number), its comparator set on ``entry`` and
    said as CDA_COMPARATOR_IN_NUMBER; None for anything else (a unit or words after the
    number are not read here: the element has its own unit). It was filed as text without
    number, as CDA_BAD_NUMBER, while an IVL_PQ with one bound has both."""
    said = text_quantity(amount)
    if said is None or said.comparator is None or said.unit_sent is not None or \
            not said.number.is_finite():
        return None
    entry.comparator = said.comparator
    ctx.warnings.append(f"CDA_COMPARATOR_IN_NUMBER: {value.path}: a {value.type} value "
                        "written with a comparator, read as the comparator and the number")
    return said.number


def _quantity_in_words(value: PQ, entry: Entry, ctx: _Ctx, section: Section | None) -> None:
    """A PQ that is a nullFlavor with no value in a translation: its words, when it says
    them (originalText inline or in the narrative: 'traces', 'inférieur au seuil de
    détection'), are the value, said as CDA_PQ_IN_WORDS; a translation giving neither
    value nor words is said as CDA_PQ_NO_QUANTITY. Both were filed without a word."""
    flavor = value.null_flavor.strip()[:8]
    words = value.original_text or referenced_text(value.original_text_reference, section)
    if words.strip() and not is_placeholder(words):
        entry.value = words.strip()[:TEXT_VALUE_SIZE]
        entry.details["value_in_words"] = True
        ctx.warnings.append(f"CDA_PQ_IN_WORDS: {value.path}: a PQ of nullFlavor {flavor!r} "
                            "said in words (originalText): filed as its words, no quantity")
    elif value.translations:
        ctx.warnings.append(f"CDA_PQ_NO_QUANTITY: {value.path}: a PQ of nullFlavor {flavor!r} "
                            "whose translations give no value: filed without a value")


def _money(value: MO, entry: Entry, ctx: _Ctx) -> None:
    """A monetary amount (MO: a fee, the cost of a device left to the patient): its number
    and its currency (ISO 4217, 'EUR') as the unit, in details.currency too. It was filed
    without a value."""
    entry.value = value.value.strip() or None
    number = value.number
    entry.value_num = float(number) if number is not None else None
    if entry.value and number is None:
        _not_a_number(value, ctx)
    currency = value.currency.strip().upper()[:ENTRY_MAX["unit_original"]]
    if currency and entry.value:
        entry.unit = entry.unit_original = currency
        entry.details["currency"] = currency


def _not_a_number(value: Value, ctx: _Ctx) -> None:
    """A PQ, INT or REAL whose value is no number ('1,8', 'positif'): filed as the text it
    is, without a numeric value; said, by where it is (never the value)."""
    ctx.warnings.append(f"CDA_BAD_NUMBER: {value.path}: a {value.type} value that is not a "
                        "number, filed as text without a numeric value")


def _ed_text(value: ED, ctx: _Ctx, limit: int = 2000) -> str:
    """The text a B64 ED value carries when its media type is text (text/plain, text/html
    read as sent), inflated per its compression (bounded: 1 MB); '' for binaries (a PDF, an
    image) and for what does not decode (a warning with its code, never the content)."""
    if not value.media_type.strip().lower().startswith("text/"):
        return ""
    try:
        data = value.decompressed(max_bytes=1024 * 1024)
    except CdaParseError as exc:
        ctx.warnings.append(f"{exc.code}: {value.path}: {exc.message}")
        return ""
    if data is None:
        ctx.warnings.append(f"CDA_BAD_BASE64: {value.path}: a B64 value that does not decode")
        return ""
    return data.decode("utf-8", "replace")[:limit]


def _code(code: CD, ctx: _Ctx,
          section: Section | None = None) -> tuple[str, str, str, bool] | None:
    """(code, system, display, mapped): LOINC from the code or a translation, else the
    sender's code through the per-source mapping tables (as for HL7v2). The display falls
    back on the original text, read in the section narrative when it is only a '#ID'
    reference there (C-CDA's usual form)."""
    candidates = [code, *code.translations]
    for c in candidates:
        if c.code and system_name(c.code_system) == LOINC:
            return (c.code, LOINC,
                    c.display or code.display or original_text(code, section), True)
    placeholders = _placeholders()
    main = next((c for c in candidates if c.code and c.code.lower() not in placeholders),
                None)
    if main is None:
        return None
    system = system_name(main.code_system, main.code_system_name)
    r = resolve_code(main.code, main.display, system, source=ctx.source, mappings=ctx.mappings)
    if r.system == LOINC:
        return r.code, r.system, r.display, True
    # not a result code: a diagnosis, a drug, an allergen is coded in its own system; it is
    # 'mapped' (a shared terminology) when that system is a known one, not a local code.
    # A local code whose translation is in a terminology that names things (SNOMED CT,
    # CIM-10, CCAM, ATC...; not NCI or HL7 attribute vocabularies) is filed under the
    # translation, as the LOINC of a result is (a local diagnosis code with its CIM-10
    # translation was filed as the local code, unmapped).
    known = system in _known_systems()
    if not known and not r.mapped:
        identifying = _identifying_systems()
        for t in code.translations:
            if t.code and system_name(t.code_system, t.code_system_name) in identifying:
                main, system, known = t, system_name(t.code_system), True
                break
    display = main.display or (code.display if main is code or code.code.lower() not in
                               placeholders else "") or original_text(code, section)
    if _is_catch_all(system, main.code):
        display = _own_words(code, section) or display
    return main.code, system, display, known or r.mapped


@cache
def _catch_all_codes() -> tuple[frozenset[tuple[str, str]], tuple[tuple[str, str], ...]]:
    """(exact, prefix) (system, code) pairs of tables/cda_catch_all_codes.csv."""
    rows = table("cda_catch_all_codes")
    return (frozenset((r["system"], r["code"]) for r in rows if r["match"] == "exact"),
            tuple((r["system"], r["code"]) for r in rows if r["match"] == "prefix"))


def _is_catch_all(system: str, code: str) -> bool:
    """Whether a code only says 'other' (tables/cda_catch_all_codes.csv)."""
    exact, prefixes = _catch_all_codes()
    return (system, code) in exact or any(
        system == s and (code == p or code.startswith(p + ".")) for s, p in prefixes)


_BRACKETED = re.compile(r"\(([^()]*)\)")


def _own_words(code: CD, section: Section | None) -> str:
    """The sender's words for an 'other' code (its originalText), unless they say nothing
    ('-') or are the template's ('Autre acte (texte libre)': a placeholder in brackets)."""
    words = original_text(code, section).strip()
    if not any(c.isalnum() for c in words) or \
            any(is_placeholder(f"({m})") for m in _BRACKETED.findall(words)):
        return ""  # '-', '(texte libre)': nothing said
    return words


def original_text(code: CD, section: Section | None) -> str:
    """The originalText of a coded value: as written inside it, else the narrative element
    its reference ('#ID') points at in the section text; '' when neither is there."""
    text = code.original_text or referenced_text(code.original_text_reference, section)
    return "" if is_placeholder(text) else text


def referenced_text(reference: str, section: Section | None) -> str:
    """The plain text of the narrative element a '#ID' reference points at in the section
    text; '' when there is no such reference or element. A bare ID without its '#'
    (reference value="poids": the ANS examples write a third of their references so, and
    senders copy them) is that element too when the section has one by that ID: its text
    was not found, a value or a name only in the narrative was lost."""
    if not reference or section is None:
        return ""
    # an xs:anyURI, whose blanks around it are no part of it (whiteSpace collapse): the
    # ' #pb1' of a template engine pointed at no element, its text was lost
    reference = reference.strip()
    key = reference[1:] if reference.startswith("#") else reference
    # the section's own narrative, else the element of that ID elsewhere in the document (a
    # parent or sibling section's: IDs are unique in a document; it read as no text)
    return section.narrative_ids.get(key) or section.document_ids.get(key, "")


def _period_text(value: IVL) -> str | None:
    """An IVL_TS value as 'start/end' in ISO form (either side may be empty)."""
    if value.value:
        return _iso_value(value.value) or None
    low = _iso_value(value.low.value) if isinstance(value.low, TS) and value.low.value else ""
    high = _iso_value(value.high.value) if isinstance(value.high, TS) and value.high.value \
        else ""
    return f"{low}/{high}" if low or high else None


UCUM_OID = "2.16.840.1.113883.6.8"


def _pq_parts(pq: PQ) -> tuple[str, Decimal | None, str]:
    """(value as written, its number, unit as sent) of a PQ. A PQ whose unit is no UCUM
    unit is sent by C-CDA as a nullFlavor (OTH) carrying its value in a translation, the
    unit in that translation's code (UCUM) or words ('THOUS/MCL'): the value was lost.
    The value is stripped of the blanks some senders pad it with (' 16.00': Italian CDA2)."""
    if pq.value or not pq.translations:
        return pq.value.strip(), pq.number, pq.unit
    for t in pq.translations:
        if t.value:
            unit = t.code if t.code and t.code_system == UCUM_OID else \
                t.original_text or t.code
            return t.value.strip(), t.number, unit
    return pq.value.strip(), pq.number, pq.unit


def _bound(value: Value | None) -> str:
    """The number a range bound says ('' for none), read in a translation when the bound
    itself is a nullFlavor (C-CDA non-UCUM units).

    The text only, as ``_pq_parts`` reads it: not through ``_pq_parts``, which also parses
    the value as a Decimal, unused here (two per result of a CR-BIO, low and high)."""
    if isinstance(value, PQ):
        if value.value or not value.translations:
            return value.value.strip()
        for t in value.translations:
            if t.value:
                return t.value.strip()
        return value.value.strip()
    return value.value.strip() if isinstance(value, (INT, REAL)) else ""


def _ratio(value: RTO) -> str | None:
    """'1/64' (a titer), '5 mg/1 mL': a ratio's terms with their units when they are not 1."""
    terms = []
    for term in (value.numerator, value.denominator):
        if isinstance(term, PQ):
            unit = term.unit if term.unit not in ("", "1") else ""
            terms.append(f"{term.value} {unit}".strip())
        elif isinstance(term, (INT, REAL)):
            terms.append(term.value)
        else:
            terms.append("")
    return "/".join(terms) if all(terms) else None


def _quantity(pq: PQ) -> str:
    return f"{pq.value} {pq.unit}".strip() if pq.value else ""


def _range(value: Value | None) -> str | None:
    if not isinstance(value, IVL):
        return _quantity(value) if isinstance(value, PQ) else None
    low, high = _bound(value.low), _bound(value.high)
    if low and high:
        return f"{low}-{high}"
    if low:
        return f">{'=' if value.low_inclusive else ''}{low}"
    if high:
        return f"<{'=' if value.high_inclusive else ''}{high}"
    center = value.center
    if isinstance(center, (PQ, INT, REAL)) and center.value:  # a dose 'about 2 tablets'
        unit = center.unit if isinstance(center, PQ) and center.unit != "1" else ""
        return f"{center.value} {unit}".strip()
    if value.value and value.unit and value.unit != "1":  # a dose of '40 [IU]'
        return f"{value.value} {value.unit}"
    return value.value or None


_STATUSES = {"completed": "final", "active": "active", "aborted": "cancelled",
             "cancelled": "cancelled", "suspended": "suspended", "new": "preliminary",
             "held": "preliminary", "nullified": "entered-in-error"}  # ActStatus


def _status(code: str) -> str:
    return _STATUSES.get(code, code or "final")


def _effective(value: Value | None, ctx: _Ctx) -> str:
    if isinstance(value, TS) and value.value:
        return _iso_value(value.value, ctx.warnings, value.path)
    if isinstance(value, IVL):
        if value.value:
            return _iso_value(value.value, ctx.warnings, value.path)
        for v in (value.low, value.center, value.high):
            if isinstance(v, TS) and v.value:
                return _iso_value(v.value, ctx.warnings, v.path)
    return ""


def _iso(ts: TS | None, warnings: list[str], where: str) -> str | None:
    if ts is None or not ts.value:
        return None
    return _iso_value(ts.value, warnings, where) or None


def _iso_value(value: str, warnings: list[str] | None = None, where: str = "") -> str:
    try:
        return hl7_ts_to_iso(value, _ZONE.get())
    except ValueError:
        if warnings is not None:
            warnings.append(f"CDA_BAD_DATE: {where}: {BAD_TS_TEXT}, ignored")
        return ""
