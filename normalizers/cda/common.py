"""What every reader of a CDA document shares: the entry kinds, the kinds and codes
tables they are read with, code system names, placeholders and the reading context (Ctx)."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import Any

from normalizers.codes import LOINC, CodeMappings, is_loinc_system, oid_names
from normalizers.codes import system_name as coding_system_name
from normalizers.tabledata import table
from parsers.cda.model import CD, Section

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
def kind_table() -> dict[str, str]:
    return {row["template"]: row["type"] for row in table("cda_entry_kinds")}


@cache
def kind_meanings() -> dict[str, str]:
    """templateId -> what the statement is (the table's words), for CDA_NOT_FILED."""
    return {row["template"]: row["meaning"] for row in table("cda_entry_kinds")}


@cache
def known_systems() -> frozenset[str]:
    """The short names of the shared terminologies (tables/code_systems.csv)."""
    return frozenset(oid_names().values())


@cache
def identifying_systems() -> frozenset[str]:
    """The terminologies that name what a thing is (code_systems.csv, identifies = 1)."""
    return frozenset(row["name"] for row in table("code_systems") if row["identifies"] == "1")


@cache
def absent_codes() -> dict[tuple[str, str], str]:
    """(system as entries name it, code) -> 'absent' or 'unknown' (cda_absent_codes.csv)."""
    return {(system_name(row["system"]), row["code"]): row["meaning"]
            for row in table("cda_absent_codes")}


IPS_ABSENT_SYSTEM = "2.16.840.1.113883.5.1150.1"  # HL7 IPS absent-unknown code system


@cache
def negated_absences() -> dict[tuple[str, str], str]:
    """(system, generic code) -> the IPS absent code it says negated (cda_negated_absences)."""
    return {(system_name(row["system"]), row["code"]): row["absent_code"]
            for row in table("cda_negated_absences")}


@cache
def placeholder_codes() -> frozenset[str]:
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
def absent_systems() -> frozenset[str]:
    return frozenset(system for system, _ in absent_codes())


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
class Ctx:
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


def loinc_of(code: CD) -> CD:
    """``code``, or its LOINC translation when it is a local code translated into LOINC
    (a document type, a section code): what the type and the section are known by. The
    local code of a CR-BIO typed 'CRBIO' with 11502-2 in translation made a document of no
    known type, and its results section no results section (its results filed as plain
    observations). A code that says none (nullFlavor OTH: no code of the sender's own)
    is known by its LOINC translation too: it was of no type at all."""
    if not code.translations or (code.code and not code.code_system) or \
            system_name(code.code_system, code.code_system_name) == LOINC:
        return code
    # the whole chain (``all_translations``): a CR-BIO typed by the LIS's 'CRBIO', translated
    # into a regional catalogue's code, itself into 11502-2, was of no known type
    return next((t for t in all_translations(code)
                 if t.code and system_name(t.code_system, t.code_system_name) == LOINC), code)


def all_translations(code: CD) -> list[CD]:
    """A code's translations and theirs, depth first: a translation is a CD and may carry
    its own (a chain, each translated from the one before: the lab's 'KALI' -> a regional
    catalogue's code -> LOINC 2823-3). The LOINC at the chain's end was not looked at: the
    result was filed under the unmapped local code, without the LOINC among its other
    codes, and never met the same result sent by HL7v2 under its LOINC (dedupe level 4)."""
    found = code.translations
    if not found or not any(t.translations for t in found):  # nearly always: no chain
        return found
    out: list[CD] = []
    for t in found:
        out.append(t)
        out.extend(all_translations(t))
    return out


def section_code(section: Section) -> str:
    """The code a section is known by: its LOINC (see ``loinc_of``), '' for none."""
    return loinc_of(section.code).code if section.code is not None else ""


ACT_CODE = "HL7-ACTCODE"  # code_systems.csv: HL7 ActCode (2.16.840.1.113883.5.4)
