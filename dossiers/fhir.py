"""A patient's dossier as a FHIR R4 Bundle (plain JSON-ready dicts).

Why plain dicts and no fhir.resources models here: the export runs on every dossier read of
the HTTP API and must stay cheap and dependency-free; the models are a test dependency that
validates what this module writes (tests/test_fhir_export.py).

What a caller passes in is what the reader may see: the CLI (an operator) and the HTTP API
(a professional, the patient) filter entries for access rights and masking themselves. This
module only drops, defensively, entries that are no longer current or are withdrawn: a
superseded or withdrawn fact must never leave the store as if it were valid.

Mapping decisions (the tables are in dossiers/tables/):
- Bundle type ``collection``: a dossier export is a set of resources about one patient, not
  the answer to a search (``searchset`` would need search modes and a total that mean
  nothing here) and not a ``document`` (that needs a Composition nobody authored). Nor a
  ``transaction``: the export is a read, a transaction an order to write on the receiver
  (each entry's request, the receiver's id policy); a server importing the dossier (HAPI)
  takes the collection as it is or turns it into its own transaction. ``meta.profile`` is
  claimed only where the export is checked to meet it (a profile claimed and not met fails
  the receiver's validation): R4's vitalsigns on a vital sign that meets its rules (a UCUM
  quantity, an effective time to the day, or the year or month we hold as a Period). FR
  Core's profiles (fr-core-patient, its vital signs) and ANS's are not claimed: their
  slices and bindings are not checked here; nor base R4 resource URLs, which say nothing.
- fullUrl ``urn:uuid:`` + uuid5 of the entry id (patient: its id), resource id the same uuid:
  two exports of one dossier name every resource alike, and a reference never points outside
  the Bundle. Each resource also carries our entry id as an identifier
  (``<base_url>/entries``).
- Entry types -> resources (fhir_entry_types.csv): lab_result, vital_sign, observation ->
  Observation; lab_report, imaging_report, report -> DiagnosticReport; document ->
  DocumentReference; problem -> Condition; allergy -> AllergyIntolerance; medication ->
  MedicationStatement, or MedicationRequest when prescribed or intended (CDA moodCode INT,
  RQO...: details.mood), or MedicationDispense when a pharmacy handed it out
  (details.dispensed: quantity, pharmacist and pharmacy, the posology given with it, the
  prescription as authorizingPrescription), with its dosage in words, its dose (a
  quantity or a range) and its timing structured (frequency, period, EIVL event as
  'when', duration); immunization ->
  Immunization (lot, dose number, route, dose, why not done); procedure -> Procedure;
  family_history -> FamilyMemberHistory (the relative's role code, else 'family member');
  plan -> ServiceRequest (intent from the CDA moodCode), a goal (moodCode GOL) -> Goal
  (its value the target); device -> DeviceUseStatement and
  the Device it points at; encounter -> Encounter (class from an ActEncounterCode, else
  'unknown'; place, provider and diagnoses by display and code, no resources of their
  own). Any other type (absence) becomes an Observation coded as the entry is.
- Statuses (fhir_statuses.csv): ours (HL7v2 OBX-11/OBR-25 and CDA statusCode, normalised)
  onto each resource's value set. Condition and AllergyIntolerance get a verificationStatus
  only when ours says something (preliminary, entered-in-error, negated), and a
  clinicalStatus only as the sender stated it (fhir_clinical_statuses.csv: the nested status
  observation, else the concern act's statusCode; never for an entry in error; a problem
  with an end date is resolved unless its own status observation says otherwise); a
  MedicationStatement is 'unknown' unless the sender said active/suspended/cancelled (a CDA
  statusCode 'completed' documents the statement, not the end of the treatment).
- Codes: LOINC ('LN') -> http://loinc.org; known systems -> their URI
  (fhir_code_systems.csv); OIDs -> urn:oid:; a sender's local system -> a local URI under
  base_url. Unmapped local codes are exported as they are, with their local system; a local
  code we mapped to LOINC follows the LOINC coding, a CIS product its ATC.
- Values: a number -> valueQuantity (comparator kept; UCUM system and code only when the unit
  is a UCUM code of our table, or one declared UCUM by the sender that parses as UCUM
  (ucum_atoms.csv), else the unit as text); a titre (SN '1:64', CDA RTO) ->
  valueRatio; an SN range or a CDA IVL of two bounds -> valueRange; a coded value ->
  valueCodeableConcept (words sent where a code was due: its text only); a boolean, a date,
  a time of day, a count -> valueBoolean, valueDateTime, valueTime, valueInteger; a CDA
  time interval (IVL_TS) -> valuePeriod; any other text -> valueString. No value: why, as
  dataAbsentReason (fhir_data_absent.csv: pending, not obtained, a CDA nullFlavor), with
  what the lab wrote instead of a value as its text; never for an entry in error. A vital
  sign with no value, reason, component nor member says 'unknown' (R4 vitalsigns vs-2). The
  reference range is kept as text, with low/high when we read its limits ('low-high' in its
  spellings, 'low^high', one-sided, powers of ten), followed or not by a unit, which must
  then be the result's (else text only).
- Flags (OBX-8, CDA interpretationCode): a code of table 0078 under v3-ObservationInterpretation;
  a sender's own ('+', 'HIGH') under ``<base_url>/CodeSystem/interpretation/<source>``, the
  source that brought the entry (provenance); words, or a flag of an unknown source, as text.
  A flag sent with its own system (details.interpretation_systems) under that system when it
  is known or an OID; the sender's flag translated to a 0078 code (details.
  interpretation_local) as a second coding beside it.
- Dates keep their precision: '2025', '2025-03', '2025-03-19' stay as they are (a vital sign
  known to the year or month: an effectivePeriod of it, as vitalsigns vs-1 wants a day). FHIR times
  need seconds: a time to the minute gets ':00' (zero-filled seconds, as the FHIR spec
  allows); a time to the hour only, or a time without offset, is cut back to its date (FHIR
  has no hour precision and we never invent an offset). ``issued`` and
  ``DocumentReference.date`` are FHIR instants: left out when we hold less than a full time
  with offset.
- Images (details.dicom_studies, a CR-IMG's DICOM object catalog) -> one ImagingStudy per
  Study Instance UID (urn:dicom:uid, series with their DCM modality, instances with their SOP
  class as urn:oid:, counts; the WADO service of the instances' links an Endpoint),
  referenced by DiagnosticReport.imagingStudy or DocumentReference.context.related.
- Documents: content.attachment with contentType and url ``<base_url>/documents/<entry
  id>``, its hash (base64 SHA-1, as R4 defines it) and size read from the archived bytes
  when the caller passes them (``files``; DiagnosticReport.presentedForm alike); the sha256
  naming the file in our archive also goes in an identifier (RFC 6920 ``ni:///sha-256;...``
  URI). The sender's confidentiality code (CDA N/R/V) -> securityLabel (v3-Confidentiality);
  the effective DMP masking (the patient's mask_override, else the sender's MASQUE_PS...) ->
  securityLabel and meta.security codes of the DMP's TRE_A07 (fhir_security_labels.csv), on
  every masked resource; routing and acknowledgement flags (DESTDMP, ACK_*) are no labels. A
  file the reader may not have (it states an entry hidden from them: ``withheld``) has no
  url nor digest. A document or report by an organization alone (an idNatSt author) names it
  as an Organization with its name; a setId of a root alone is an RFC 3986 URI, as the
  masterIdentifier.
- Numbers: one beyond a float (a 400-digit term) stays the text it was sent as: JSON has
  no Infinity, and the API writes strict JSON.
- Links: a result's report (parent_id, or the current version of the report it names:
  ``versions``) -> DiagnosticReport.result; an organism -> its susceptibility results
  (Observation.hasMember: the results of a panel filed under the organism, or results filed
  under it directly); a CDA result's parts (details.parent_result: a gene's variant, a
  finding's size, a score's items) -> its hasMember; an entry read from a
  document -> Observation/MedicationStatement.derivedFrom, Condition.evidence.detail,
  Procedure.report (AllergyIntolerance and Immunization have no such element: their
  Provenance names the import). ``provenance`` rows (entry id -> provenance table rows) become
  one Provenance per import and relation, targeting the entries it brought or confirmed.
- Lab results (how, on what, by whom): details.method (OBX-17, CDA methodCode) ->
  Observation.method; OBX-29 observation type (table 0936) -> a category of its own, and an
  answer to a question (AOE, ASC...) is neither 'laboratory' nor a result of its report; the
  specimen (type, collection time, SPM-24 condition, SPM-21 rejection: 'unsatisfactory')
  -> a Specimen per result (labelled as the result is); OBX-18 / CDA DEV -> a Device (one
  per analyser); the validating biologist (responsible_observer, CDA validated_by) -> one
  Practitioner per identifier (urn:oid: of the authority, fhir_identifier_systems.csv for
  authorities sent by name; a national PS id and the RPPS it holds both on it, FR Core's
  idNatPs and rpps, fhir_national_ps_ids.csv); the performing laboratory -> one
  Organization per identifier (details.performing_organization: the idNatSt under
  urn:oid:1.2.250.1.71.4.2.2 and the FINESS, SIREN or SIRET it holds, typed as FR Core's
  slices, fhir_structure_ids.csv), else per name; an organism's results (details.isolate)
  -> its identification's hasMember.
- Body sites (details.target_site, details.approach_site: CDA targetSiteCode /
  approachSiteCode with their laterality qualifiers) -> Observation/Condition/Procedure
  .bodySite, Immunization.site, Dosage.site; the side in the concept's text
  (fhir_laterality.csv: R4 has no laterality element); a procedure's way in, which R4 has
  no element for but a BodyStructure extension, in a note.
- A cancer's staging (details.observations coded as in fhir_staging_codes.csv) ->
  Condition.stage (summary: the stage group; type: the staging's code) whose assessment is an
  Observation with the TNM edition and the T, N and M parts as components.
- Eye-care organizers (details.group: lenses prescribed vs delivered, best corrected
  acuity) -> a grouping Observation per organizer and document (code the organizer's, its
  qualifiers components) whose hasMember are the measurements.
- Who gave a vaccine or did a procedure (details.performed_by) -> Immunization.performer
  (administering provider) / Procedure.performer (on behalf of the organization); a
  vaccine's manufacturer -> Immunization.manufacturer (by name). What nested observations
  say that no element holds (details.observations but stagings, reasons,
  characteristics: a screening's result, a tube's size) -> notes 'name: value (side)';
  why it was given or done (details.reasons) -> reasonCode where R4 has one. Every
  Observation's details.method -> Observation.method (lab results had it alone). An
  allergy's stated kind (details.allergy_type) -> type and category
  (fhir_allergy_types.csv). The qualifiers of a code or a coded value
  (details.code_qualifiers / value_qualifiers: a side, a kind of treatment) -> notes
  'name: value' (R4 CodeableConcept has no qualifiers; Encounter keeps them as types).
  A lab report's order -> DiagnosticReport.basedOn, the OBR's ServiceRequest (HL7
  v2-to-FHIR) in the Bundle: placer number OBR-2 (details.placer_order) as its PLAC
  identifier, the report's code, the prescriber OBR-16 / ORC-12
  (details.ordering_provider[_id]) as requester, a Practitioner with FR Core's ids; a CDA
  document's orders (details.orders: inFulfillmentOf) and prescriber (details.ordered_by:
  participant REF, its time authoredOn) -> ServiceRequests in DocumentReference.context
  .related (R4 has no DocumentReference.basedOn); status 'unknown' (we hold the order as
  its answer says it), intent 'order'. A result's OBX-5 repetitions beyond the first
  (details.other_values) -> a note.
- Who signed a CDA document (details.legal_authenticator) -> DocumentReference.authenticator
  (R4 0..1): a Practitioner in the Bundle by the signer's id, else the Organization she
  signs for. Other authenticators (details.authenticators) are not exported: R4 has one,
  and no standard extension holds more.
- A transfer's destination (details.destination, the service type in
  details.code_translations) -> Encounter.hospitalization.destination, a Location with its
  FINESS (urn:oid:1.2.250.1.71.4.2.2), kind and name.
- Who stated a fact (details.informants: the patient, a relative, a professional) and who
  recorded it (details.recorded_by, the entry-level CDA author) -> Condition and
  AllergyIntolerance asserter / recorder / recordedDate, MedicationStatement
  informationSource / dateAsserted; a vaccination the patient or a relative reports ->
  Immunization primarySource false, reportOrigin 'recall', recorded. A relative is a
  RelatedPerson by display only (no resource, no name kept); a professional a logical
  reference by its first id (RPPS...).
- Patient: the INS as identifier with system urn:oid:<ins_oid>, typed with FR Core's code
  (fr-core-cs-v2-0203 INS-NIR...) and use (fhir_ins_identifiers.csv; a test or demo INS tags
  the Patient HTEST); a dossier created without the INS's OID gets the INS without a system
  (real, test and demo INS-NIR look alike: only the OID tells them apart, we never guess it).
  The local ids (patient_identifiers: the IPP) under urn:oid: of their authority (urn:uuid:
  for a CDA root that is a UUID), which is their assigner; the birth name 'official', the
  used name 'usual' (FR Core).
- Versions: a document's own id (its key) is DocumentReference.masterIdentifier, a new
  version's relatesTo 'replaces' names the one it replaced; a reissued report (an addendum,
  a rectification) is 'appended' or 'corrected' (fhir_reissue_statuses.csv).
- Dispenses (details.dispensed; the deliveries a medication or a vaccination holds,
  details.dispenses) -> MedicationDispense.
"""

from __future__ import annotations

import base64
import html
import json
import math
import re
import uuid
from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, date, datetime
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

from normalizers.tabledata import read_csv_rows, table
from normalizers.units import to_ucum

TABLES = Path(__file__).resolve().parent / "tables"
NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:dmp-ingest:fhir")
UCUM = "http://unitsofmeasure.org"
CONFIDENTIALITY = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
RFC3986 = "urn:ietf:rfc:3986"
DATA_ABSENT = "http://terminology.hl7.org/CodeSystem/data-absent-reason"
DATA_ABSENT_EXTENSION = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"
GENDERS = {"F": "female", "M": "male", "U": "unknown", "O": "other"}
COMPARATORS = frozenset({"<", "<=", ">=", ">"})
CONFIDENTIALITY_CODES = frozenset({"U", "L", "M", "N", "R", "V"})
# v3 ObservationInterpretation codes (HL7v2 table 0078 flags are the same codes)
INTERPRETATIONS = frozenset(
    "< > A AA AC B CAR Carrier D DET E EX EXP H HH HM HU HX I IE IND L LL LU LX MS N NCL ND "
    "NEG NR NS OBX POS QCF R RR S SDD SYN-R SYN-S TOX U UNE VS W WR".split())
FALLBACK_RESOURCE = "Observation"
# value types of a coded value: HL7v2 CE, CWE, CNE, CF; CDA CD, CE, CV, CO
CODED_TYPES = frozenset({"CE", "CWE", "CNE", "CF", "CD", "CV", "CO"})
NEGATED = "negated by the sender (CDA negationInd): this was NOT observed"
ABOUT_SOMEONE_ELSE = "about another person than the patient (CDA subject)"
APPROACH_SITE = "approach site (CDA approachSiteCode)"
OTHER_VALUES = "further values sent (OBX-5 repeated)"
PATIENT_TOLD = "instructions to the patient (CDA instruction)"
OTHER_CDA_VALUES = "further values sent (CDA observation value repeated)"
IDENTIFIER_TYPES = "http://terminology.hl7.org/CodeSystem/v2-0203"
ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"

# FHIR R4 primitive formats (what the validators check)
_FHIR_DATETIME = re.compile(
    r"([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]"
    r"|3[0-1])(T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]{1,9})?)?)?"
    r"(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00)?)?)?")
_FHIR_DATE = re.compile(
    r"([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2]"
    r"[0-9]|3[0-1]))?)?")
_OURS = re.compile(r"(\d{4}(?:-\d{2}(?:-\d{2})?)?)"  # the date, as precise as it is
                   r"(?:T(\d{2})(?::(\d{2})(?::(\d{2})(\.\d+)?)?)?)?"  # the time
                   r"(Z|[+-]\d{2}:?\d{2})?")
_OID = re.compile(r"[0-2](\.(0|[1-9][0-9]*))+")
# a limit: a number ('3,5'), digits grouped by blanks as French reports print counts
# ('150 000'), or a power of ten as colony counts are written ('10^3', '10E5', '1,5x10^4')
_NUMBER = (r"(?:10\^[+-]?\d{1,2}|\d{1,3}(?:[ \u00a0\u202f]\d{3})+(?:,\d+)?|[+-]?\d+(?:[.,]\d+)?"
           r"(?:\s*[x\u00d7*]\s*10\^[+-]?\d{1,2}|[eE][+-]?\d{1,2})?)")
# 'low-high' and the spellings of other senders ('3,5 à 5,0', a Nova analyser's '7.31 to 7.41',
# '3.5^5.1' (OBX-7 sent as low^high components), '70_105', 'de 70 à 105' and the 'a' of
# ASCII-only converters, '135 a 145')
_RANGE = re.compile(rf"\s*(?:de\s+)?({_NUMBER})\s*(?:-|\u2013|to|à|a|\^|_)\s*({_NUMBER})\s*",
                    re.IGNORECASE)
# one-sided ranges ('<5', '< 5', '>= 60', '< ou = 5' of ASCII-only converters): a high or a
# low limit alone
_BOUND = re.compile(rf"\s*(<=|>=|\u2264|\u2265|<\s*ou\s*=|>\s*ou\s*=|<|>)\s*({_NUMBER})\s*",
                    re.IGNORECASE)
# a range printed in brackets, as French reports print it ('[3,5-5,1]', '(0,50 - 1,00)')
_ENCLOSED = re.compile(r"\s*(?:\[(.*)\]|\((.*)\))\s*")
# the same in French words, as labs print them ('inf à 0,5', 'sup. à 60', 'inférieur ou égal
# à 5'): 'inf...' is a high limit, 'sup...' a low one
_BOUND_WORDS = re.compile(rf"\s*(inf|sup)(?:\.|[ée]rieur)?(?:\s+ou\s+[ée]gal)?\s*[àa]\s*"
                          rf"({_NUMBER})\s*", re.IGNORECASE)
# a range followed by its unit ('45-84 µmol/l', '< 5 mg/L', '[3,5-5,1] mmol/L'): the unit
# is the last word
_RANGE_UNIT = re.compile(r"(.*[\d\])])\s+(\S*[^\d\s.,]\S*)\s*")
# ... or glued to the number ('35-45%', '3.5-5.1mmol/L', '<5mg/L'), starting with a letter
# (never the 'e' or 'x' of a power of ten), '%' or '/'
_RANGE_GLUED_UNIT = re.compile(r"(.*?\d)(?=[^\W\d_eExX]|[%/])(\S*[^\d\s.,]\S*)\s*")
# a limit that is a power of ten: mantissa (1 when '10^n') and exponent
_POWER = re.compile(r"(?:([+-]?\d+(?:[.,]\d+)?)\s*(?:[x\u00d7*]\s*10\^|[eE])|10\^)([+-]?\d{1,2})")


# -- tables -----------------------------------------------------------------------------------
@cache
def _types() -> dict[str, dict[str, str]]:
    return {r["type"]: r for r in read_csv_rows(TABLES / "fhir_entry_types.csv")}


@cache
def _statuses() -> dict[str, dict[str, str]]:
    return {r["status"]: r for r in read_csv_rows(TABLES / "fhir_statuses.csv")}


@cache
def _clinical_statuses() -> dict[tuple[str, str], dict[str, str]]:
    return {(r["source"], r["code"]): r
            for r in read_csv_rows(TABLES / "fhir_clinical_statuses.csv")}


@cache
def _verification_statuses() -> dict[tuple[str, str], dict[str, str]]:
    return {(r["system"], r["code"]): r
            for r in read_csv_rows(TABLES / "fhir_verification_statuses.csv")}


@cache
def _criticalities() -> dict[tuple[str, str], str]:
    """(system, code) -> FHIR criticality of an allergy stated in another vocabulary than
    FHIR's (tables/fhir_allergy_criticality.csv: C-CDA's CRITH was not exported)."""
    return {(r["system"], r["code"]): r["criticality"]
            for r in read_csv_rows(TABLES / "fhir_allergy_criticality.csv")}


@cache
def _reaction_severities() -> dict[tuple[str, str], str]:
    return {(r["system"], r["code"]): r["severity"]
            for r in read_csv_rows(TABLES / "fhir_reaction_severity.csv")}


@cache
def _systems() -> dict[str, str]:
    return {r["name"]: r["uri"] for r in read_csv_rows(TABLES / "fhir_code_systems.csv")}


@cache
def _ucum_codes() -> frozenset[str]:
    """The UCUM codes our unit table maps to: a unit among them is exported as UCUM."""
    return frozenset(r["ucum"] for r in table("ucum_units"))


@cache
def _ins_kinds() -> dict[str, str]:
    return {r["oid"]: r["kind"] for r in table("ins_oids")}


@cache
def _fr_core_ins() -> dict[str, tuple[str, str]]:
    """INS kind -> (FR Core identifier type code, Identifier.use): a FHIR reader finds the
    INS by FR Core's coded type (identifier[INS-NIR]), not by a text (fhir_ins_identifiers.csv)."""
    return {r["kind"]: (r["type_code"], r["use"])
            for r in read_csv_rows(TABLES / "fhir_ins_identifiers.csv")}


@cache
def _ins_tags() -> dict[str, str]:
    """INS kind -> the v3-ActReason tag its Patient carries (HTEST: a test or demo INS)."""
    return {r["kind"]: r["tag"] for r in read_csv_rows(TABLES / "fhir_ins_identifiers.csv")
            if r.get("tag")}


@cache
def _reissue_statuses() -> dict[str, dict[str, str]]:
    """A reissued report's kind (addendum, rectification) -> its status per resource."""
    return {r["kind"]: r for r in read_csv_rows(TABLES / "fhir_reissue_statuses.csv")}


def _reissued_status(status: str, details: Mapping, resource: str) -> str:
    """The status of a report, 'appended' or 'corrected' (DocumentReference: 'amended') when
    the sender says it reissues a final report with an addendum or as a rectification
    (fhir_reissue_statuses.csv): exported 'final', the reader could not tell the
    complemented or corrected reading from a first one."""
    said = details.get("reissue")
    kind = said.get("kind") if isinstance(said, Mapping) else None
    row = _reissue_statuses().get(str(kind or ""))
    if row is None or status not in ("final", "amended"):
        return status
    return row.get(resource) or status


@cache
def _patient_identifier_types() -> dict[str, str]:
    """CX.5 code -> its v2-0203 display, for a local id typed with FHIR's CodeSystem."""
    return {r["code"]: r["display"]
            for r in read_csv_rows(TABLES / "fhir_patient_identifier_types.csv")}


def resource_type(entry_type: str, details: Any = None) -> str:  # noqa: ANN401
    """The FHIR resource an entry type is exported as (Observation when not listed). A
    medication whose CDA moodCode is not EVN (details.mood: INT, RQO, PRP...) is
    prescribed or intended, not taken: a MedicationRequest, not a MedicationStatement; so is
    a plan of a medication (details.planned), not a ServiceRequest."""
    row = _types().get(entry_type)
    resource = row["resource"] if row else FALLBACK_RESOURCE
    details = _json(details) if resource in ("MedicationStatement", "ServiceRequest") else None
    if not isinstance(details, Mapping):
        return resource
    if resource == "MedicationStatement" and str(details.get("mood") or "EVN").upper() != "EVN":
        return "MedicationRequest"
    if resource == "MedicationStatement" and details.get("dispensed") is True:
        # handed out by a pharmacy (CDA supply EVN: eDISP, IHE Pharm DIS, C-CDA Medication
        # Dispense): what the pharmacist gave, not a statement that the patient takes it
        return "MedicationDispense"
    if resource == "ServiceRequest" and details.get("planned") == "medication":
        # a medication to start (plan of care): R4 reserves ServiceRequest for services
        return "MedicationRequest"
    if resource == "ServiceRequest" and str(details.get("mood") or "").upper() == "GOL":
        # a goal (CDA moodCode GOL: C-CDA Goal Observation, IHE PCC / CI-SIS objectives):
        # an HbA1c at or below 7 % is a target to reach, not an HbA1c test requested
        return "Goal"
    return resource


def fhir_status(status: str | None, resource: str) -> str:
    """Our status onto the resource's status value set ('' for 'not stated')."""
    row = _statuses().get(status or "") or _statuses()["*"]
    return row.get(resource, "")


def system_uri(system: str | None, base_url: str = "urn:dmp") -> str | None:
    """Our coding system name -> a FHIR system URI (None when the entry names none)."""
    if not system:
        return None
    known = _systems().get(system) or _systems().get(system.upper())
    if known:
        return known
    if _OID.fullmatch(system):
        return f"urn:oid:{system}"
    if system.startswith(("http://", "https://", "urn:")) and not any(
            c.isspace() for c in system):
        return system
    return f"{base_url}/CodeSystem/{quote(system, safe='')}"


# -- primitives -------------------------------------------------------------------------------
def fhir_datetime(value: str | None) -> str | None:
    """Our ISO 8601 (precision kept) -> a FHIR dateTime, never more precise than ours.

    '2025', '2025-03', '2025-03-19' unchanged; '2025-03-19T08:30+01:00' ->
    '2025-03-19T08:30:00+01:00' (FHIR requires seconds and lets them be zero-filled);
    a time to the hour, or without offset, -> its date. None when it is not a date at all."""
    if not value:
        return None
    m = _OURS.fullmatch(value.strip())
    if m is None:
        return None
    day, hour, minute, second, frac, offset = m.groups()
    if not _FHIR_DATETIME.fullmatch(day) or not _real_day(day):
        return None
    out = day
    if hour is not None and minute is not None and offset:
        if offset != "Z" and ":" not in offset:
            offset = f"{offset[:3]}:{offset[3:]}"
        out = f"{day}T{hour}:{minute}:{second or '00'}{(frac or '')[:7]}{offset}"
        if not _FHIR_DATETIME.fullmatch(out) or int(hour) > 23 or int(minute) > 59 \
                or int(second or 0) > 59:
            return day  # a time that cannot be: the date alone is what we can vouch for
    return out


def _real_day(day: str) -> bool:
    """'2025-02-30' is no day (the FHIR pattern alone lets it through)."""
    if len(day) < 10:
        return True
    try:
        date.fromisoformat(day)
    except ValueError:
        return False
    return True


def fhir_instant(value: str | None) -> str | None:
    """A FHIR instant (full time with offset), or None when we hold less than that."""
    out = fhir_datetime(value)
    return out if out and "T" in out else None


def fhir_date(value: str | None) -> str | None:
    if not value:
        return None
    value = value.strip()
    return value if _FHIR_DATE.fullmatch(value) and _real_day(value) else None


def _instant_of(moment: Any) -> str | None:  # noqa: ANN401
    """A stored timestamp (datetime, naive = UTC as SQLite gives them, or ISO text)."""
    if isinstance(moment, datetime):
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.isoformat()
    if isinstance(moment, str):
        try:
            return _instant_of(datetime.fromisoformat(moment.replace("Z", "+00:00")))
        except ValueError:
            return None
    return None


def full_url(kind: str, ident: object) -> str:
    return f"urn:uuid:{uuid.uuid5(NAMESPACE, f'{kind}/{ident}')}"


def _json(value: Any) -> Any:  # noqa: ANN401
    """JSON columns come back decoded from SQLAlchemy; raw text when a caller passes it."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return None
    return value


def _text(value: Any) -> str | None:  # noqa: ANN401
    """A FHIR string: not blank (FHIR forbids empty strings), other blanks than space, tab
    and line breaks (non-breaking spaces of French typography...) made spaces and control
    characters dropped, as the FHIR string pattern (Unicode-aware) requires."""
    if value is None:
        return None
    text = str(value)
    if not text.isprintable():  # rare: one pass over the characters only then
        text = "".join(c if c.isprintable() or c in "\t\r\n" else " " if c.isspace() else ""
                       for c in text)
    return text.strip() or None


def _code(value: Any) -> str | None:  # noqa: ANN401
    """A FHIR code: no leading, trailing or repeated blanks (its pattern forbids them)."""
    if value is None:
        return None
    return " ".join(str(value).split()) or None


def _clean(obj: Any) -> Any:  # noqa: ANN401
    """Drop None, empty strings, lists and dicts (FHIR forbids empty elements)."""
    if isinstance(obj, dict):
        out = {k: _clean(v) for k, v in obj.items()}
        return {k: v for k, v in out.items() if v not in (None, "", [], {})}
    if isinstance(obj, list):
        out = [_clean(v) for v in obj]
        return [v for v in out if v not in (None, "", [], {})]
    return obj


# -- pieces -----------------------------------------------------------------------------------
def _coded_concept(coded: Any, base_url: str) -> dict | None:  # noqa: ANN401
    """A {code, system, display} or {text} the normalizers keep (a route, a condition, a
    reaction) as a CodeableConcept; None when it holds neither."""
    if not isinstance(coded, Mapping):
        return None
    code, words = _code(coded.get("code")), _text(coded.get("display") or coded.get("text"))
    if not code and not words:
        return None
    concept: dict[str, Any] = {"text": words}
    if code:
        concept["coding"] = [_coding(code, coded.get("system"), coded.get("display"),
                                     base_url)]
    return concept


def _route(details: Mapping, base_url: str) -> dict | None:
    """The route with its system and name when the CDA gave them (details.route_coded:
    EDQM '20053000' Voie orale, NCI 'C38288'), else the bare code as sent."""
    coded = _coded_concept(details.get("route_coded"), base_url)
    if coded:
        return coded
    route = _code(details.get("route"))
    return {"coding": [{"code": route}]} if route else None


def _as_needed(conditions: Any, base_url: str) -> dict:  # noqa: ANN401
    """Dosage.asNeeded from a medication's preconditions ('as needed for' wheezing, 'si
    douleur'): the first as a CodeableConcept; without it the medication read as taken
    regularly. R4 allows one condition: the others stay in the store."""
    if not isinstance(conditions, list):
        return {}
    for condition in conditions:
        concept = _coded_concept(condition, base_url)
        if concept:
            return {"asNeededCodeableConcept": concept}
    return {}


# FHIR R4 units-of-time (UCUM codes) and EventTiming (HL7 v3 TimingEvent codes it shares)
UNITS_OF_TIME = frozenset({"s", "min", "h", "d", "wk", "mo", "a"})
EVENT_TIMINGS = frozenset({"HS", "WAKE", "C", "CM", "CD", "CV", "AC", "ACM", "ACD", "ACV",
                           "PC", "PCM", "PCD", "PCV"})
# the frequencies normalizers/cda/timing.py writes in details.frequency (PIVL_TS)
_TIMES_A_DAY = re.compile(r"(once|\d+ times) a day")
_TIMES_EVERY = re.compile(r"(\d+) times every (\d+(?:\.\d+)?) (\S+)")
_TIME_OF_DAY = re.compile(r"([01]\d|2[0-3]):[0-5]\d")
_EVERY = re.compile(r"every (\d+(?:\.\d+)?)(?:-(\d+(?:\.\d+)?))? ?(\S+)")
_DOSAGE_TEXT = (("sig", ""), ("dose", ""), ("frequency", ""), ("times_of_day", "at "),
                ("event", "when "), ("event_offset", "offset "), ("duration", "for "),
                ("rate", "rate "),
                ("max_dose", "at most "))


CRITICALITIES = frozenset({"low", "high", "unable-to-assess"})  # R4 allergy criticality
FHIR_OIDS = "2.16.840.1.113883.4.642."  # FHIR code systems and value sets
CONDITION_VERIFICATION_OID = "2.16.840.1.113883.4.642.1.1075"  # condition-ver-status
NO_SUBSTITUTION = "N"  # HL7 v3 substanceAdminSubstitution (2.16.840.1.113883.5.1070)


def _dispense_request(res: dict, details: Mapping, low: str | None, high: str | None,
                      base_url: str) -> None:
    """What a prescription says to the pharmacist (eP-MED, IHE Pharm): the period it covers,
    the renewals allowed after the first dispense (numberOfRepeatsAllowed), the quantity to
    dispense, and whether the drug may be substituted ('non substituable': allowedBoolean
    false). They were read into the store and left out of the export."""
    dispense: dict[str, Any] = {}
    if low or high:
        dispense["validityPeriod"] = {"start": low, "end": high}
    renewals = details.get("renewals")
    if isinstance(renewals, int) and not isinstance(renewals, bool) and \
            0 <= renewals < 2**31:
        dispense["numberOfRepeatsAllowed"] = renewals
    quantity = details.get("quantity_prescribed")
    if isinstance(quantity, Mapping) and _number(quantity.get("value")) is not None:
        dispense["quantity"] = _quantity(_decimal(str(_number(quantity["value"]))),
                                         _text(quantity.get("unit")), None)
    res["dispenseRequest"] = dispense or None
    substitution = details.get("substitution")
    if isinstance(substitution, Mapping):
        if _code(substitution.get("code")) == NO_SUBSTITUTION:
            res["substitution"] = {"allowedBoolean": False}
        else:
            concept = _coded_concept(substitution, base_url)
            if concept:
                res["substitution"] = {"allowedCodeableConcept": concept}


# what a medication says once for all the steps of its dosing (details.dosage_steps)
_WHOLE_DOSING = ("route", "route_coded", "preconditions", "max_dose")


def _sited(dosages: list[dict], details: Mapping, base_url: str) -> list[dict]:
    """Each Dosage with the body site it is given at (details.approach_site: C-CDA
    Medication Activity approachSiteCode, 'left deltoid'), Dosage.site; it was dropped."""
    site = _body_site(details.get("approach_site"), base_url)
    return [{**d, "site": site} for d in dosages] if site else dosages


def _dosages(details: Mapping, base_url: str) -> list[dict]:
    """The Dosages of a medication: one per step of a dosing in steps (details.dosage_steps:
    eP-MED's 'every 8 h for 2 days, then every 12 h for 4 days', Dosage.sequence), each with
    the route, condition and maximum dose said once for all; else the one it has. The steps
    were not exported: the prescription read no dose nor frequency."""
    steps = [s for s in details.get("dosage_steps") or () if isinstance(s, Mapping)] \
        if isinstance(details.get("dosage_steps"), list) else []
    if not steps:
        return [_dosage(details, base_url)]
    whole = {k: details[k] for k in _WHOLE_DOSING + ("patient_instructions",) if k in details}
    out = []
    for step in steps:
        dosage = _dosage({**whole, **step}, base_url)
        sequence = str(step.get("sequence") or "").strip()
        if sequence.isdigit() and 0 < int(sequence) < 2**31:
            dosage = {"sequence": int(sequence), **dosage}
        out.append(dosage)
    return out


def _dosage(details: Mapping, base_url: str) -> dict:
    """A medication's Dosage: its words (the free text sig, dose, frequency, timing event,
    duration, rate, maximum dose: all the CDA said), route, 'as needed', and the timing it gave
    structured ('3 times a day', 'every 8 h', 'au coucher' HS, 'for 5 d'). Only dose and
    frequency were exported, in words: the bedtime, the rate and the maximum dose a day
    were lost, and no reader could compute with the frequency."""
    said = {k: ", ".join(map(str, v)) if isinstance(v, list) else v
            for k, v in details.items()}
    unit = details.get("administration_unit")
    words = _text(unit.get("display") or unit.get("text") or unit.get("code")) \
        if isinstance(unit, Mapping) else None
    if words and _number(said.get("dose")) is not None:
        # C-CDA: dose 1, administrationUnitCode 'comprimé': one tablet, not '1' of nothing
        said["dose"] = f"{_text(said['dose'])} {words}"
    text = "; ".join(f"{prefix}{_text(said[k])}" for k, prefix in _DOSAGE_TEXT
                     if _text(said.get(k)))
    out: dict[str, Any] = {"text": text or None}
    dose = _dose_and_rate(details.get("dose"), words)
    if dose:
        out["doseAndRate"] = [dose]
    timing = _timing_repeat(details)
    if timing:
        out["timing"] = {"repeat": timing}
    out["route"] = _route(details, base_url)
    out.update(_as_needed(details.get("preconditions"), base_url))
    out["patientInstruction"] = _patient_instruction(details)  # 'au cours d'un repas'
    return out


def _patient_instruction(details: Mapping) -> str | None:
    """What the patient is told (details.patient_instructions), as one string."""
    told = details.get("patient_instructions")
    said = [_text(t) for t in (told if isinstance(told, list) else [told])]
    return " ".join(t for t in said if t) or None


_DOSE = re.compile(r"(\d{1,9}(?:\.\d{1,9})?)(?:-(\d{1,9}(?:\.\d{1,9})?))?(?: (\S+))?")


def _dose_and_rate(dose: Any, words: str | None) -> dict | None:  # noqa: ANN401
    """Dosage.doseAndRate of details.dose ('1 {tablet}', '500 mg', '1-2 {tablet}': a CDA
    doseQuantity PQ or IVL_PQ), its unit else the administration unit's words (C-CDA dose
    1 with administrationUnitCode 'comprimé'). The dose was in the dosage text only, and
    no reader could compute with it. None for what is no plain amount or range ('>=1')."""
    m = _DOSE.fullmatch(_text(dose) or "")
    if m is None:
        return None
    unit = m.group(3) or words
    low = _quantity(_decimal(m.group(1)), unit, None)
    if m.group(2) is None:
        return {"doseQuantity": low}
    high = _quantity(_decimal(m.group(2)), unit, None)
    if float(m.group(2)) < float(m.group(1)):
        return None
    return {"doseRange": {"low": low, "high": high}}


def _timing_repeat(details: Mapping) -> dict:
    """Timing.repeat from details.frequency, details.event and details.duration, when they
    are in a form FHIR can say (units of time, EventTiming codes); {} otherwise (the words
    stay in the dosage text)."""
    repeat: dict[str, Any] = {}
    frequency = _text(details.get("frequency")) or ""
    daily = _TIMES_A_DAY.fullmatch(frequency)
    every = _EVERY.fullmatch(frequency)
    times = _TIMES_EVERY.fullmatch(frequency)
    if times and times.group(3) in UNITS_OF_TIME and 0 < int(times.group(1)) < 2**31 \
            and _number(times.group(2)) is not None:
        repeat.update(frequency=int(times.group(1)), period=_decimal(times.group(2)),
                      periodUnit=times.group(3))
    elif daily and (daily.group(1) == "once" or 0 < int(daily.group(1).split()[0]) < 2**31):
        count = daily.group(1)
        repeat.update(frequency=1 if count == "once" else int(count.split()[0]), period=1,
                      periodUnit="d")
    elif every and every.group(3) in UNITS_OF_TIME and \
            all(_number(g) is not None for g in every.group(1, 2) if g):
        repeat.update(frequency=1, period=_decimal(every.group(1)))
        if every.group(2):
            repeat["periodMax"] = _decimal(every.group(2))
        repeat["periodUnit"] = every.group(3)
    hours = details.get("times_of_day")
    if isinstance(hours, list) and hours and \
            all(isinstance(h, str) and _TIME_OF_DAY.fullmatch(h) for h in hours):
        repeat["timeOfDay"] = [f"{h}:00" for h in hours]
    events = [e.strip() for e in (_text(details.get("event")) or "").split(",")]
    if events != [""] and all(e in EVENT_TIMINGS for e in events) \
            and "timeOfDay" not in repeat:
        # R4 tim-10 (a rule): hours or events, not both; the hours are kept, the events
        # stay in the dosage text. Both made the resource invalid
        repeat["when"] = events
        minutes = _offset_minutes(details.get("event_offset"))
        if minutes is not None:  # '30 min' of AC: FHIR's offset, minutes from the event
            repeat["offset"] = minutes
    duration = (_text(details.get("duration")) or "").split()
    if len(duration) == 2 and duration[1] in UNITS_OF_TIME and _number(duration[0]):
        repeat["boundsDuration"] = {"value": _decimal(duration[0]), "unit": duration[1],
                                    "system": UCUM, "code": duration[1]}
    return repeat


_MINUTES = {"s": 1 / 60, "min": 1, "h": 60, "d": 1440}
_OFFSET = re.compile(r"-?(\d+(?:\.\d+)?) (s|min|h|d)")


def _offset_minutes(offset: Any) -> int | None:  # noqa: ANN401
    """details.event_offset ('30 min', '-1 h': one quantity) as Timing.repeat.offset, whole
    minutes from the event (before or after is the event code's: AC, PC); None for a range
    or a unit of no fixed length."""
    m = _OFFSET.fullmatch(_text(offset) or "")
    if m is None:
        return None
    minutes = float(m.group(1)) * _MINUTES[m.group(2)]
    return int(minutes) if minutes.is_integer() and minutes < 2**31 else None


def _decimal(text: str) -> int | float:
    """A number as FHIR JSON writes it: 8, not 8.0."""
    number = float(text)
    return int(number) if number.is_integer() else number


@cache
def _allergy_types() -> dict[tuple[str, str], dict[str, str]]:
    return {(r["system"], r["code"]): r for r in read_csv_rows(TABLES / "fhir_allergy_types.csv")}


def _allergen(entry: Mapping, details: Mapping, base_url: str) -> dict:
    """AllergyIntolerance.code, the substance: the entry's code, or, for a substance the
    sender named only in words (details.allergen_text: 'Pollen de bouleau', a playing
    entity's originalText or name), those words; the entry's code is then the allergy's
    kind ('allergy to substance', C-CDA's value), which goes to type and category. The
    words were left out: the export said 'Allergy to substance' and nothing of what to."""
    substance = _text(details.get("allergen_text"))
    if substance and not details.get("allergy_type"):
        return {"text": substance}
    return _concept(entry, base_url, "allergy")


def _allergy_kind(said: Any) -> dict:  # noqa: ANN401
    """AllergyIntolerance.type and category of the allergy's stated kind
    (details.allergy_type: 'allergie médicamenteuse' 416098002, fhir_allergy_types.csv);
    nothing for a code that does not say it (a MedDRA reaction sent there)."""
    row = _allergy_types().get((str(said.get("system") or ""), str(said.get("code") or ""))) \
        if isinstance(said, Mapping) else None
    if not row:
        return {}
    return {"type": row.get("type") or None,
            "category": [row["category"]] if row.get("category") else []}


def _reactions(reactions: Any, base_url: str) -> list[dict]:  # noqa: ANN401
    """AllergyIntolerance.reaction: each reaction's manifestation, its onset and, when its
    severity is one FHIR grades (tables/fhir_reaction_severity.csv), the severity."""
    out: list[dict] = []
    for reaction in reactions if isinstance(reactions, list) else []:
        manifestation = _coded_concept(reaction, base_url)
        if manifestation is None:
            continue
        item: dict[str, Any] = {"manifestation": [manifestation]}
        severity = reaction.get("severity") if isinstance(reaction, Mapping) else None
        if isinstance(severity, Mapping):
            graded = _reaction_severities().get((str(severity.get("system") or ""),
                                                 str(severity.get("code") or "")))
            if graded:
                item["severity"] = graded
        onset = fhir_datetime(_text(reaction.get("onset"))) \
            if isinstance(reaction, Mapping) else None
        if onset:
            item["onset"] = onset
        out.append(item)
    return out


ABSENT_REACTION = "reaction the sender says did not occur"


def _absent_reactions(said: Any, base_url: str) -> list[dict]:  # noqa: ANN401
    """Notes of the reactions the sender says did not happen (CDA MFST with negationInd,
    details.absent_reactions: 'pas d'urticaire'). R4 AllergyIntolerance.reaction cannot say
    'not' (a manifestation there reads as present), so each is said in words, with its code
    as a FHIR token (system|code) for a reader who searches."""
    out = []
    for item in _items(said):
        concept = _coded_concept(item, base_url)
        if concept is None:
            continue
        coding = (concept.get("coding") or [{}])[0]
        token = "|".join(p for p in (coding.get("system"), coding.get("code")) if p)
        words = concept.get("text") or coding.get("display") or coding.get("code")
        out.append({"text": f"{ABSENT_REACTION}: {words}"
                            + (f" ({token})" if token and words != coding.get("code") else "")})
    return out


def _coding(code: Any, system: str | None, display: Any, base_url: str) -> dict:  # noqa: ANN401
    return {"system": system_uri(system, base_url), "code": _code(code),
            "display": _text(display)}


def _concept(entry: Mapping, base_url: str, fallback: str,
             details: Mapping | None = None) -> dict:
    """The entry's code as a CodeableConcept; its display (or the fallback) as text when it
    has no code (FHIR requires a code on most resources). The sender's own code, when we
    mapped it to LOINC (details.local_code), and a product's other codes (details.substance:
    the ATC of a CIS) follow as further codings: nothing the sender coded is lost. So do
    the other codes of a value that is the entry's code (a problem: the SNOMED CT of a
    C-CDA problem with its ICD-10-CM translation, a CR-ACP diagnosis with its ADICAP):
    details.value_code.translations, kept in the store, were dropped from the export."""
    code, display = _code(entry.get("code")), _text(entry.get("display"))
    concept: dict[str, Any] = {"text": display or (None if code else
                                                   _text(fallback) or "entry")}
    codings = [_coding(code, entry.get("system"), display, base_url)] if code else []
    details = details or {}
    substances = details.get("substance")
    others = [details.get("local_code"), *(substances if isinstance(substances, list) else []),
              *(details.get("other_codes") if isinstance(details.get("other_codes"), list)
                else [])]
    value_code = details.get("value_code")
    if code and isinstance(value_code, Mapping) and \
            (_code(value_code.get("code")), value_code.get("system")) == (code,
                                                                           entry.get("system")):
        translations = value_code.get("translations")
        others.extend(translations if isinstance(translations, list) else ())
    for other in others:
        if isinstance(other, Mapping) and _code(other.get("code")):
            coding = _coding(other.get("code"), other.get("system"), other.get("display"),
                             base_url)
            if all((c.get("system"), c.get("code")) != (coding["system"], coding["code"])
                   for c in codings):
                codings.append(coding)
    if codings:
        concept["coding"] = codings
    return concept


@cache
def _lateralities() -> dict[str, str]:
    return {r["code"]: r["display"] for r in read_csv_rows(TABLES / "fhir_laterality.csv")}


def _body_site(site: Any, base_url: str) -> dict | None:  # noqa: ANN401
    """A body site the CDA gave (details.target_site, details.approach_site: {code, system,
    qualifiers}) as a CodeableConcept: the site coded as sent, its side (the qualifiers:
    fhir_laterality.csv) in its text, since R4 bodySite has no laterality of its own. The
    right and the left eye's measurements were two Observations nothing told apart."""
    if not isinstance(site, Mapping) or not _code(site.get("code")):
        return None
    concept: dict[str, Any] = {"coding": [_coding(site.get("code"), site.get("system"),
                                                  site.get("display"), base_url)]}
    sides = [_lateralities().get(str(q), str(q)) for q in site.get("qualifiers") or ()
             if _code(q)]
    if sides:
        name = _text(site.get("display"))
        side = ", ".join(sides)
        concept["text"] = f"{name}, {side}" if name else f"laterality: {side}"
    return concept


def _site_words(site: Any) -> str | None:  # noqa: ANN401
    """A body site in words (a note where R4 has no element for it)."""
    if not isinstance(site, Mapping) or not _code(site.get("code")):
        return None
    name = _text(site.get("display")) or \
        " ".join(filter(None, (_text(site.get("system")), _code(site.get("code")))))
    sides = [_lateralities().get(str(q), str(q)) for q in site.get("qualifiers") or ()
             if _code(q)]
    return ", ".join([name, *sides])


def _performer(value: Any) -> dict | None:  # noqa: ANN401
    """'<oid>^<id>' (a CDA author id) -> a logical reference; a name -> a display.

    A professional's id (national PS OID) is a Practitioner reference typed as the
    Practitioner resources are (``_practitioner_identifiers``: IDNPS, the bare RPPS
    made the idNatPS): it was an untyped identifier whose value, for an HL7v2 sender's
    bare RPPS, matched no Practitioner of the Bundle."""
    text = _text(value)
    if not text:
        return None
    root, sep, ext = text.partition("^")
    if sep and root.strip() == NATIONAL_PS_OID and _text(ext):
        said = _identifier(ext, NATIONAL_PS_OID) or {}
        return {"type": "Practitioner", "identifier": _practitioner_identifiers(said)[0]}
    if sep and _OID.fullmatch(root.strip()) and _text(ext):
        identifier = {"system": f"urn:oid:{root.strip()}", "value": _text(ext)}
        # a structure's idNatSt typed as its Organization's is (IDNST, official)
        return {"identifier": _organization_identifiers(identifier, None)[0]}
    return {"display": text}


def _author(entry: Mapping, details: Mapping) -> dict | None:
    """Who a document or a report is by (entries.performer): ``_performer``, and when that
    is a structure's id (idNatSt, urn:oid:1.2.250.1.71.4.2.2: a CDA author that is an
    organization only, or a device writing for its laboratory) an Organization reference
    with the structure's name (details.authors[].organization_name). It was an untyped
    identifier with no words: a viewer showed a blank author, a validator could not tell
    it from a Practitioner."""
    said = _text(entry.get("performer")) or ""
    ref = _performer(said)
    if ref is None or said.partition("^")[0].strip() != FINESS_OID or "identifier" not in ref:
        return ref
    names = [_text(a.get("organization_name")) for a in _items(details.get("authors"))
             if isinstance(a, Mapping) and said in (a.get("organization") or ())]
    return {"type": "Organization", **ref, "display": next(filter(None, names), None)}


def masking_of(entry: Mapping) -> dict[str, bool]:
    """The DMP masking in force: the sender's flags, MASQUE_PS overridden by the patient's
    own choice (mask_override) when there is one."""
    flags = {k: bool(v) for k, v in (_json(entry.get("masking")) or {}).items()
             if isinstance(k, str)}
    override = entry.get("mask_override")
    if override is not None:
        flags["MASQUE_PS"] = bool(override)
    return {k: v for k, v in flags.items() if v}


@cache
def _security_labels() -> dict[str, dict[str, str]]:
    return {r["flag"]: r for r in read_csv_rows(TABLES / "fhir_security_labels.csv")}


def _security(entry: Mapping, details: Mapping) -> list[dict]:
    """Security labels: the sender's confidentiality (v3-Confidentiality) and the DMP masking
    in force, in the DMP's code system (fhir_security_labels.csv). Every MetaDMPMSS flag was
    a label under a local system, routing ones too (DESTDMP: 'sent to the DMP' read as a
    restriction); the masking ones were in no system a DMP reader knows."""
    labels = []
    conf = _text(details.get("confidentiality"))
    if conf and conf.upper() in CONFIDENTIALITY_CODES:
        labels.append({"system": CONFIDENTIALITY, "code": conf.upper()})
    known = _security_labels()
    for flag in sorted(f for f in masking_of(entry) if f in known):
        row = known[flag]
        labels.append({"system": row["system"], "code": row["code"],
                       "display": row["display"]})
    return labels


def _quantity(number: float, unit: str | None, unit_original: str | None,
              comparator: str | None = None, declared: bool = False) -> dict:
    """A Quantity: the unit as sent for people; UCUM system and code when the unit is a UCUM
    code of our table, or was declared UCUM (``declared``) and is one (``is_ucum``)."""
    q: dict[str, Any] = {"value": number}
    if comparator in COMPARATORS:
        q["comparator"] = comparator
    unit = _text(unit)
    if unit:
        q["unit"] = _text(unit_original) or unit
        if unit in _ucum_codes() or (declared and is_ucum(unit)):
            q["system"], q["code"] = UCUM, unit
    return q


# UCUM grammar (unitsofmeasure.org, 'The Unified Code for Units of Measure' §2-§7): a term of
# components joined by '.' or '/', each a unit symbol with an exponent, an annotation, a
# factor or a parenthesised term
_UCUM_COMPONENT = re.compile(r"(10[*^]|(?:[A-Za-z%']|\[[^\[\]{}]*\])+)?([+-]?\d+)?(\{[^{}]*\})?")
_PREFIXES = ("da", "Ki", "Mi", "Gi", "Ti", *"YZEPTGMkhdcmunpfazy")


@cache
def _ucum_atoms() -> dict[str, bool]:
    return {r["atom"]: r["metric"] == "Y"
            for r in read_csv_rows(TABLES / "ucum_atoms.csv")}


def is_ucum(unit: str) -> bool:
    """Whether ``unit`` is a UCUM expression of the atoms of ucum_atoms.csv ('mGy.cm',
    '[diop]', '{pack}/a', 'mmol/(24.h)'): a unit a sender declared UCUM (a CDA PQ's, an
    OBX-6 coded UCUM) that our unit table does not list."""
    rest = unit[1:] if unit.startswith("/") else unit
    return bool(rest) and len(unit) <= 60 and _ucum_term(rest) == ""


def _ucum_term(text: str) -> str | None:
    """What follows the UCUM term at the start of ``text`` ('' when it is all), or None."""
    while True:
        if text.startswith("("):
            inner = _ucum_term(text[1:])
            if inner is None or not inner.startswith(")"):
                return None
            text = inner[1:]
        else:
            m = _UCUM_COMPONENT.match(text)
            if not m.group(0) or not _ucum_symbol(m.group(1), m.group(2)):
                return None
            text = text[m.end():]
        if not text or text[0] not in "./":
            return text
        text = text[1:]


def _ucum_symbol(symbol: str | None, exponent: str | None) -> bool:
    """A unit symbol: an atom, or a prefix and a metric atom; no symbol: a factor ('24' in
    '/24.h') or an annotation alone ('{cells}')."""
    if symbol is None:
        return True
    if symbol in ("10*", "10^"):
        return exponent is not None
    atoms = _ucum_atoms()
    if symbol in atoms:
        return True
    return any(symbol.startswith(p) and atoms.get(symbol[len(p):]) for p in _PREFIXES)


def _number(value: Any) -> float | None:  # noqa: ANN401
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _reference_range(entry: Mapping) -> list[dict]:
    """referenceRange: the text as sent, and its low/high (in the result's unit) when the
    text is a range we read: 'low-high' in its spellings, one-sided ('<5', 'inf à 5'), a
    power of ten ('<10^3'), followed or not by a unit. A unit written in the range is taken
    only when it is the result's (the same UCUM unit); another unit, or one we cannot read,
    leaves the text alone: a limit is never given in a unit it was not written in."""
    text = _text(entry.get("reference_range"))
    if not text:
        return []
    rng: dict[str, Any] = {"text": text}
    unit, sent = entry.get("unit"), entry.get("unit_original")
    limits = _range_limits(text)
    for pattern in (_RANGE_UNIT, _RANGE_GLUED_UNIT):
        if limits is None and (m := pattern.fullmatch(text)) is not None \
                and _same_unit(m.group(2), unit, sent):
            limits = _range_limits(m.group(1))
    if limits is not None:
        for side, number in limits.items():
            rng[side] = _quantity(number, unit, sent, declared=_declared(entry))
    return [rng]


def _declared(entry: Mapping) -> bool:
    """Whether the entry's unit was declared UCUM: a CDA PQ's by the standard, an HL7v2
    unit unless the normalizer found it neither UCUM nor declared so
    (details.unit_unmapped)."""
    details = _json(entry.get("details"))
    return not (isinstance(details, Mapping) and details.get("unit_unmapped"))


def _range_limits(text: str) -> dict[str, float] | None:
    """{'low': .., 'high': ..} (either or both) that a range's text says, in brackets or
    not; None if unread, or if a limit is too large for a number (JSON has no Infinity:
    the text alone says it)."""
    limits = _read_limits(text)
    if limits is None or not all(map(math.isfinite, limits.values())):
        return None
    return limits


def _read_limits(text: str) -> dict[str, float] | None:
    """The limits a range's text says, as numbers (``_range_limits``)."""
    if (m := _ENCLOSED.fullmatch(text)) is not None:
        text = m.group(1) if m.group(1) is not None else m.group(2)
    if (m := _RANGE.fullmatch(text)) is not None:
        low, high = (_limit(g) for g in m.groups())
        return {"low": low, "high": high} if low <= high else None
    if (m := _BOUND.fullmatch(text)) is not None:
        return {"high" if m.group(1)[0] in "<\u2264" else "low": _limit(m.group(2))}
    if (m := _BOUND_WORDS.fullmatch(text)) is not None:
        return {"high" if m.group(1).lower() == "inf" else "low": _limit(m.group(2))}
    return None


def _limit(number: str) -> float:
    """A limit as written ('3,5', '10^3', '1,5x10^4', '1E5', '150 000') as its number."""
    number = re.sub(r"[ \u00a0\u202f]", "", number.strip())
    m = _POWER.fullmatch(number)
    if m is None:
        return float(number.replace(",", "."))
    mantissa = (m.group(1) or "1").replace(",", ".")
    return float(f"{mantissa}e{int(m.group(2))}")


def _same_unit(written: str, unit: str | None, sent: str | None) -> bool:
    """Whether the unit written after a range is the result's: the same UCUM unit, or the
    unit exactly as the result was sent with (a unit we do not map)."""
    if not unit:
        return False
    if written == _text(sent) or written == unit:
        return True
    read = to_ucum(written)
    return read.mapped and read.unit == unit


_LOCAL_FLAG = re.compile(r"\S{1,20}")  # a sender's own flag ('+', 'HIGH', '++'): no words


def _interpretation(entry: Mapping, local_system: str | None = None) -> list[dict]:
    """Observation.interpretation: a code of HL7 table 0078 (the v3 ObservationInterpretation
    codes) under its system; a sender's own flag ('+', '*', 'HIGH') under ``local_system``
    (the sender's, ``_sender_flags_system``), as code and text; words, or a flag whose sender
    is unknown, as text alone. Never under v3-ObservationInterpretation: a reader would take
    '+' or 'HIGH' for a code of it, and a validator rejects them there."""
    text = _text(entry.get("interpretation"))
    if not text:
        return []
    details = entry.get("details") or {}
    systems = details.get("interpretation_systems") or {}
    flags = [c.strip() for c in text.split(",")]
    paired = _paired_local_flags(flags, details.get("interpretation_local") or [])
    out = []
    for code, local in zip(flags, paired, strict=True):
        if code in INTERPRETATIONS:
            coding = [{"system": INTERPRETATION, "code": code}]
            theirs = _local_flag_coding(local, systems, local_system) if local else None
            out.append({"coding": [*coding, theirs] if theirs else coding})
        elif code and _LOCAL_FLAG.fullmatch(code) and \
                (system := _flag_system(code, systems, local_system)):
            out.append({"coding": [{"system": system, "code": code}], "text": code})
        elif code:
            out.append({"text": _text(code)})
    return out


def _paired_local_flags(flags: Sequence[str], local: Sequence[Any]) -> list[str | None]:
    """The sender's own flag (details.interpretation_local: a CDA lab's 'ELEVE' translated
    to H, an OBX-8 'HAUT^^L^H^^HL70078') beside each flag filed, when each flag has one:
    with fewer, which flag one belongs to is unknown, and none is paired."""
    mine = [_text(c) for c in local]
    if len(mine) != len(flags) or not all(mine):
        return [None] * len(flags)
    return mine


def _flag_system(code: str, systems: Mapping, local_system: str | None) -> str | None:
    """The system of a sender's own flag: the one it was sent with (details.
    interpretation_systems: a CDA codeSystem, an OBX-8 CWE coding system), as any code's
    (``system_uri``), else the sender's flags system; None when neither is known."""
    sent = _text(systems.get(code)) if isinstance(systems, Mapping) else None
    if sent and (sent in _systems() or sent.upper() in _systems() or _OID.fullmatch(sent)):
        return system_uri(sent)
    return local_system  # a name of the sender's own ('L', '99LAB'): meaningful with it only


def _local_flag_coding(code: str, systems: Mapping, local_system: str | None) -> dict | None:
    """The sender's flag as a second coding beside the table 0078 one (both say the same:
    FHIR codings of one concept), when its system is known."""
    system = _flag_system(code, systems, local_system)
    if not system or not _LOCAL_FLAG.fullmatch(code):
        return None
    return {"system": system, "code": code}


def _sender_flags_system(entry: Mapping, links: Sequence[Mapping],
                         base_url: str) -> str | None:
    """The code system of the abnormal flags of the source that brought an entry (the
    provenance link of the import the entry was filed from, else its first link): HL7v2
    OBX-8 outside table 0078 and a CDA lab's own interpretationCode are that sender's codes,
    meaningful only with it. None when no source is known."""
    mine = [link for link in links if link.get("import_id") == entry.get("import_id")]
    source = next((_text(link.get("source")) for link in (*mine, *links)
                   if _text(link.get("source"))), None)
    if source is None:
        return None
    return f"{base_url}/CodeSystem/interpretation/{quote(source, safe='')}"


def _local_interpretations(kept: Sequence[Mapping], resources: Mapping[int, dict],
                           provenance: Mapping[int, Sequence[Mapping]], base_url: str) -> None:
    """Each Observation's flags again, with its sender's system for the flags outside table
    0078 (the sender is known from provenance only, once the resources are built)."""
    for e in kept:
        res = resources[e["id"]]
        if res["resourceType"] != "Observation" or not res.get("interpretation"):
            continue
        system = _sender_flags_system(e, provenance.get(e["id"], ()), base_url)
        if system:
            res["interpretation"] = _interpretation(e, system)


def _value(entry: Mapping, details: Mapping, base_url: str) -> dict:
    """value[x] of an Observation: quantity, ratio (a titre), range, coded concept (a coded
    value sent as words alone: its text only, never a code), or string. No value: why, in
    dataAbsentReason (``_absent``)."""
    typed = _typed_value(entry) or _dr_period_value(entry, details)
    if typed:
        return typed
    number = _number(entry.get("value_num"))
    compared = _text(entry.get("comparator"))
    if number is not None and compared and compared != "=" and compared not in COMPARATORS:
        # HL7 SN '<>' (not equal): R4 Quantity.comparator has < <= >= > only; a Quantity
        # without it said the result WAS the number
        shown = _text(entry.get("value")) or f"{compared}{_decimal(repr(number))}"
        unit = _text(entry.get("unit_original")) or _text(entry.get("unit"))
        return {"valueString": f"{shown} {unit}" if unit and not shown.endswith(unit)
                else shown}
    if number is not None:
        return {"valueQuantity": _quantity(number, entry.get("unit"),
                                           entry.get("unit_original"),
                                           entry.get("comparator"), _declared(entry))}
    text = _text(entry.get("value"))
    numeric = _sn_value(entry, details) or _rto_value(entry) or _ivl_value(entry)
    if numeric:
        return numeric
    coded = details.get("coded_value") or details.get("value_code")
    if isinstance(coded, Mapping):
        codings = [_coding(c, s, d, base_url) for c, s, d in (
            (coded.get("code"), coded.get("system"), coded.get("display") or text),
            (coded.get("alt_code"), coded.get("alt_system"), coded.get("alt_display")),
            *((t.get("code"), t.get("system"), t.get("display"))
              for t in coded.get("translations") or () if isinstance(t, Mapping)))
            if _code(c)]  # a CDA value's translations: the same answer in other systems
        # the sender's own words first: CWE.9, or a CDA value coded only in translation
        # (details.value_text: 'Non reactive' for 'Negative')
        concept_text = _text(coded.get("original_text")) or \
            _text(details.get("value_text")) or text
        if codings or concept_text:
            concept = {"coding": codings} if codings else {}
            return {"valueCodeableConcept": {**concept, "text": concept_text}}
    if text and str(entry.get("value_type") or "").upper() in CODED_TYPES:
        # a coded value sent with its words only (a CDA CD of originalText alone)
        return {"valueCodeableConcept": {"text": text}}
    if text:
        return {"valueString": text}
    return _absent(entry, details)


_DATE_TYPES = frozenset({"DT", "DTM", "TS"})  # HL7v2 DT, DTM, TS; CDA TS
_TIME = re.compile(r"([01]\d|2[0-3]):[0-5]\d(:[0-5]\d(\.\d+)?)?")
_INT32 = 2**31


def _dr_period_value(entry: Mapping, details: Mapping) -> dict | None:
    """An HL7v2 DR (a urine collection's period: details.period, its start and/or end) ->
    valuePeriod; it was a valueString 'start/end'. None (the text stays) when an end is
    one FHIR cannot hold whole (a time without offset, to the hour only)."""
    period = details.get("period")
    if str(entry.get("value_type") or "").upper() != "DR" or not isinstance(period, Mapping):
        return None
    out = {}
    for side in ("start", "end"):
        sent = _text(period.get(side))
        if sent is None:
            continue
        when = fhir_datetime(sent)
        if when is None or ("T" in sent and "T" not in when):
            return None
        out[side] = when
    return {"valuePeriod": out} if out else None


def _typed_value(entry: Mapping) -> dict | None:
    """The values FHIR has a type of its own for, which were all valueString or a Quantity
    without unit: a boolean (CDA BL) -> valueBoolean; a date or time (HL7v2 DT/DTM/TS, CDA
    TS) -> valueDateTime when FHIR can hold it whole (a time without offset stays text);
    a time of day (HL7v2 TM) -> valueTime; a count (CDA INT, no unit) -> valueInteger."""
    kind = str(entry.get("value_type") or "").upper()
    text = _text(entry.get("value"))
    if text is None:
        return None
    if kind == "BL" and text.lower() in ("true", "false"):
        return {"valueBoolean": text.lower() == "true"}
    if kind in _DATE_TYPES:
        when = fhir_datetime(text)
        if when and ("T" in when or "T" not in text):
            return {"valueDateTime": when}
    if kind == "IVL_TS":
        return _ivl_ts_value(text)
    if kind == "TM" and _TIME.fullmatch(text):
        return {"valueTime": text if text.count(":") == 2 else f"{text}:00"}
    number = _number(entry.get("value_num"))
    if kind == "INT" and number is not None and number.is_integer() \
            and abs(number) < _INT32 and not _text(entry.get("unit")) \
            and not entry.get("comparator"):
        return {"valueInteger": int(number)}
    return None


def _ivl_ts_value(text: str) -> dict | None:
    """A CDA IVL_TS value as the normalizer writes it ('2024-09-03' for one point,
    'start/end' with either side empty) -> valueDateTime, valuePeriod. It was a
    valueString: the IPS-FR estimated date of delivery, a period of exposure. None when a
    side is no date FHIR can hold whole, or the period ends before it starts (R4 per-1)."""
    if "/" not in text:
        when = fhir_datetime(text)
        return {"valueDateTime": when} if when and ("T" in when or "T" not in text) else None
    sides = text.split("/")
    if len(sides) != 2:
        return None
    period = {}
    for name, side in zip(("start", "end"), sides, strict=True):
        when = fhir_datetime(side) if side else None
        if side and (when is None or ("T" in side and "T" not in when)):
            return None
        if when:
            period[name] = when
    start, end = period.get("start", ""), period.get("end", "")
    common = min(len(start[:10]), len(end[:10]))  # '1990-05' to '1990' is no reversal
    if not period or start[:common] > end[:common]:
        return None
    return {"valuePeriod": period}


@cache
def _absent_reasons() -> dict[tuple[str, str], dict[str, str]]:
    return {(r["source"], r["code"]): r
            for r in read_csv_rows(TABLES / "fhir_data_absent.csv")}


def _absent(entry: Mapping, details: Mapping) -> dict:
    """dataAbsentReason of an Observation without value (fhir_data_absent.csv), with what the
    lab wrote instead of a value (details.value_withheld: 'Prélèvement coagulé', 'En
    cours') as its text. An entry in error gets none: what it held is no value at all."""
    status = entry.get("status")
    if fhir_status(status, "Observation") == "entered-in-error":
        return {}
    reasons = _absent_reasons()
    row = reasons.get(("nullFlavor", str(details.get("value_null_flavor") or "").upper())) \
        or (reasons.get(("held", "true")) if details.get("value_held") else None) \
        or reasons.get(("status", str(status or "")))
    if row is None:
        return {}
    return {"dataAbsentReason": {
        "coding": [{"system": DATA_ABSENT, "code": row["reason"], "display": row["display"]}],
        "text": _text(details.get("value_withheld"))}}


def _sn_value(entry: Mapping, details: Mapping) -> dict | None:
    """An HL7v2 SN of two numbers (details.sn): '1:64', '1/64' (a titre) -> valueRatio,
    '10-20' -> valueRange (in the result's unit). A comparator before it, a unit beside a
    ratio, anything else ('2+'): left as the text it is."""
    sn = details.get("sn")
    if not isinstance(sn, Mapping) or sn.get("comparator") not in (None, "", "="):
        return None
    first, second = (_sn_number(sn.get(k)) for k in ("num1", "num2"))
    if first is None or second is None:
        return None
    if sn.get("separator") in (":", "/") and not _text(entry.get("unit")) and second:
        return {"valueRatio": {"numerator": {"value": first},
                               "denominator": {"value": second}}}
    if sn.get("separator") == "-" and first <= second:
        unit, sent, declared = entry.get("unit"), entry.get("unit_original"), _declared(entry)
        return {"valueRange": {"low": _quantity(first, unit, sent, declared=declared),
                               "high": _quantity(second, unit, sent, declared=declared)}}
    return None


def _sn_number(value: Any) -> float | None:  # noqa: ANN401
    text = _text(value)
    if text is None or not re.fullmatch(r"[+-]?\d+(?:[.,]\d+)?", text):
        return None
    return _number(text.replace(",", "."))


# a CDA IVL_PQ / IVL_INT / IVL_REAL value of two bounds as the normalizer writes it: '10-20'
_INTERVAL = re.compile(r"([+-]?\d+(?:\.\d+)?)-([+-]?\d+(?:\.\d+)?)")


def _ivl_value(entry: Mapping) -> dict | None:
    """A CDA interval of two numbers as the result (xsi:type IVL_PQ: '10-20' leucocytes per
    field) -> valueRange in the result's unit; it was a valueString. One bound only is a
    comparator and a number (value_num), a time interval (IVL_TS) is a valuePeriod
    (``_ivl_ts_value``)."""
    kind = str(entry.get("value_type") or "").upper()
    if not kind.startswith("IVL_") or kind == "IVL_TS":
        return None
    m = _INTERVAL.fullmatch(_text(entry.get("value")) or "")
    low, high = (_number(g) for g in m.groups()) if m else (None, None)
    if low is None or high is None or low > high:  # unread, or beyond a float: its text
        return None
    unit, sent, declared = entry.get("unit"), entry.get("unit_original"), _declared(entry)
    return {"valueRange": {"low": _quantity(low, unit, sent, declared=declared),
                           "high": _quantity(high, unit, sent, declared=declared)}}


# a CDA RTO value as the normalizer writes it: '1/64', '5 mg/1 mL'
_RATIO = re.compile(r"([+-]?\d+(?:\.\d+)?)(?:\s+(\S+))?/([+-]?\d+(?:\.\d+)?)(?:\s+(\S+))?")


def _rto_value(entry: Mapping) -> dict | None:
    """A CDA ratio (xsi:type RTO, RTO_INT_INT, RTO_PQ_PQ: a titre) -> valueRatio, each term
    with its unit (UCUM, as CDA PQ units are, when we know it as such)."""
    if not str(entry.get("value_type") or "").upper().startswith("RTO"):
        return None
    m = _RATIO.fullmatch(_text(entry.get("value")) or "")
    if m is None or not _number(m.group(3)) or _number(m.group(1)) is None:
        return None  # no denominator, or a term beyond a float: the ratio's text
    terms = []
    for number, unit in ((m.group(1), m.group(2)), (m.group(3), m.group(4))):
        ucum = to_ucum(unit).unit if unit else None
        terms.append(_quantity(float(number), ucum, unit, declared=True))
    return {"valueRatio": {"numerator": terms[0], "denominator": terms[1]}}


# -- how a lab result was obtained, on what, by whom -------------------------------------------
LAB_RESULT = "lab_result"
OBSERVATION_TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v2-0936"
# R4 specimen-status: a specimen the laboratory rejected (SPM-21: broken tube, too little)
# 'cannot be used because of a quality issue'
REJECTED_SPECIMEN = "unsatisfactory"


@cache
def _observation_types() -> dict[str, bool]:
    """OBX-29 codes of HL7 table 0936 -> whether the OBX is a result of the laboratory."""
    return {r["code"]: r["result"] == "Y" for r in table("observation_types")}


@cache
def _organism_codes() -> frozenset[tuple[str, str]]:
    """(system, code) of the observations that identify a micro-organism."""
    return frozenset((r["system"], r["code"]) for r in table("organism_identification_codes"))


@cache
def _identifier_systems() -> dict[str, str]:
    return {r["authority"].upper(): r["oid"]
            for r in read_csv_rows(TABLES / "fhir_identifier_systems.csv")}


def _identifier(value: Any, authority: Any, kind: Any = None) -> dict | None:  # noqa: ANN401
    """An Identifier under its authority's OID (sent, or known by its name:
    fhir_identifier_systems.csv, ASIP-SANTE-PS -> the RPPS/ADELI register
    1.2.250.1.71.4.2.1); an authority known by a name alone is its assigner, never
    guessed into a system. The value is exported as sent, but for a bare RPPS or ADELI
    number under the national PS identifier (``_national_ps_id``)."""
    value, authority = _text(value), _text(authority) or ""
    if not value:
        return None
    oid = authority if _OID.fullmatch(authority) else _identifier_systems().get(authority.upper())
    if oid == NATIONAL_PS_OID:
        value = _national_ps_id(value)
    return {"type": {"text": _text(kind)}, "system": f"urn:oid:{oid}" if oid else None,
            "value": value, "assigner": {"display": authority} if authority and not oid
            else None}


NATIONAL_PS_OID = "1.2.250.1.71.4.2.1"  # idNatPS: the national health professional id
# FR Core's identifier types (IDNPS, RPPS, ADELI): the type of a Practitioner's identifiers
FR_CORE_IDENTIFIER_TYPES = "https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-v2-0203"


@cache
def _national_ps_registers() -> tuple[tuple[str, re.Pattern, str, str], ...]:
    """(prefix, number pattern, type, system) of the registers behind an idNatPS
    (fhir_national_ps_ids.csv)."""
    return tuple((r["prefix"], re.compile(r["pattern"]), r["type"], r["system"])
                 for r in read_csv_rows(TABLES / "fhir_national_ps_ids.csv"))


def _national_ps_id(value: str) -> str:
    """The national PS identifier (idNatPS) of a number sent under its OID: '8' + the
    11-digit RPPS, '0' + the 9-character ADELI. CI-SIS documents give the idNatPS
    ('810003791976'); many HL7v2 senders put the bare RPPS ('10003791976') under the same
    authority, and one biologist became two Practitioners in a dossier fed by both."""
    for prefix, number, _, _ in _national_ps_registers():
        if number.fullmatch(value):
            return f"{prefix}{value}"
    return value


def _practitioner_identifiers(identifier: dict) -> list[dict]:
    """A Practitioner's identifiers from the one its source gave: an idNatPS typed IDNPS,
    with the register number it holds beside it (FR Core: identifier[idNatPs] and
    identifier[rpps], '810003791976' and '10003791976'), whichever of the two was sent. A
    lab's HL7v2 sends the RPPS, a hospital's CDA the idNatPS: both give the same
    Practitioner, which a reader can find by either number. Another identifier as it is."""
    if identifier.get("system") != f"urn:oid:{NATIONAL_PS_OID}":
        return [identifier]
    value = identifier["value"]
    out = [{"type": {"coding": [{"system": FR_CORE_IDENTIFIER_TYPES, "code": "IDNPS"}]},
            "system": identifier["system"], "value": value}]
    for prefix, number, kind, system in _national_ps_registers():
        if system and value.startswith(prefix) and number.fullmatch(value[len(prefix):]):
            out.append({"type": {"coding": [{"system": FR_CORE_IDENTIFIER_TYPES,
                                             "code": kind}]},
                        "system": system, "value": value[len(prefix):]})
    return out


def _identifier_key(ident: Mapping) -> str:
    return f"{ident.get('system') or (ident.get('assigner') or {}).get('display', '')}|" \
           f"{ident['value']}"


def _items(said: Any) -> list:  # noqa: ANN401
    """A detail sent once (a mapping) or repeated (a list), as a list."""
    return said if isinstance(said, list) else [said] if said else []


def _method(said: Any, base_url: str) -> dict | None:  # noqa: ANN401
    """Observation.method (0..1) of details.method (OBX-17 repeats, CDA methodCode): one
    CodeableConcept with every coding sent and the words of all ('Formule de Friedewald;
    Calculated')."""
    concepts = [c for c in (_coded_concept(i, base_url) for i in _items(said)) if c]
    if not concepts:
        return None
    return {"coding": [c for concept in concepts for c in concept.get("coding", [])],
            "text": "; ".join(c["text"] for c in concepts if c.get("text")) or None}


def _lab_category(category: list[dict], details: Mapping) -> list[dict]:
    """A lab result's category, with its OBX-29 observation type (HL7 table 0936) when sent:
    the answer to a question asked at order entry (AOE: 'fasting: yes'), at specimen
    collection, a placer's clinical information, is no result of the laboratory, so it is
    not in the 'laboratory' category. A type outside table 0936 stays as sent, in words."""
    kind = _code(details.get("observation_type"))
    if not kind:
        return category
    result = _observation_types().get(kind)
    if result is None:
        return [*category, {"text": kind}]
    typed = {"coding": [{"system": OBSERVATION_TYPE_SYSTEM, "code": kind}]}
    return [*category, typed] if result else [typed]


def is_lab_result(resource: Mapping) -> bool:
    """Whether an exported Observation is a result (not an AOE answer, a question...)."""
    return not any(c.get("system") == OBSERVATION_TYPE_SYSTEM and
                   not _observation_types().get(c.get("code"), True)
                   for concept in resource.get("category") or () for c in
                   concept.get("coding") or ())


def _specimen(entry: Mapping, details: Mapping, subject: dict, base_url: str) -> dict | None:
    """The Specimen a lab result was measured on: its type (SPM-4, OBR-15, CDA specimen),
    its collection time (SPM-17 / OBR-7, CDA specimen collection) and site (SPM-8,
    OBR-15.4), its condition (SPM-24, table 0493: haemolysed, lipaemic: a potassium on a
    haemolysed serum reads falsely high) and, when the laboratory rejected it (SPM-21,
    table 0490), status 'unsatisfactory' with the reasons as a note (R4 has no element of
    its own for them)."""
    kind = _coded_concept(details.get("specimen"), base_url)
    collected = fhir_datetime(entry.get("specimen_time"))
    conditions = [c for c in (_coded_concept(i, base_url)
                              for i in _items(details.get("specimen_condition"))) if c]
    rejected = [c for c in (_coded_concept(i, base_url)
                            for i in _items(details.get("specimen_rejected"))) if c]
    site = _coded_concept(details.get("specimen_site"), base_url)  # SPM-8, OBR-15.4
    if not (kind or collected or conditions or rejected or site):
        return None
    why = "; ".join(c.get("text") or c["coding"][0]["code"] for c in rejected)
    notes = [{"text": f"rejected by the laboratory: {why}"}] if rejected else []
    about = _about_someone_else(details.get("subject"))
    if about is not None:  # a newborn's cord blood is not the mother's specimen
        notes.insert(0, {"text": f"{ABOUT_SOMEONE_ELSE}: {about['display']}"})
    security = _security(entry, details)
    return {"resourceType": "Specimen",
            # the labels of the result it was taken for: a masked result's specimen says
            # as much of the patient as the result
            "meta": {"security": security} if security else None,
            "status": REJECTED_SPECIMEN if rejected else None, "type": kind,
            "subject": subject if about is None else None,
            "collection": {"collectedDateTime": collected, "bodySite": site},
            "condition": conditions,
            "note": notes}


def _observer(entry: Mapping, details: Mapping) -> tuple[str, dict] | None:
    """(fullUrl, Practitioner) of who validated a lab result: details.responsible_observer
    (OBX-16 / PRT RO, in France the biologist, with the RPPS the XCN gives) or
    details.validated_by (CDA participant AUTHEN, ids 'root^extension'). One Practitioner
    per identifier in the Bundle (the same biologist validates a whole report); a name
    without identifier is one of its result only (two Dr MARTIN are not one)."""
    said = details.get("responsible_observer")
    name = None
    if isinstance(said, Mapping):
        ident = said.get("id") if isinstance(said.get("id"), Mapping) else {}
        identifier = _identifier(ident.get("id"), ident.get("authority"), ident.get("type"))
        name = _text(said.get("name"))
    elif isinstance(details.get("validated_by"), Mapping):
        ids = [i for i in details["validated_by"].get("ids") or () if isinstance(i, str)]
        # the national PS id when the participant has several (a local one first): the one
        # an HL7v2 result of the same biologist gives, and a reader looks her up by
        said_id = next((i for i in ids if i.strip().startswith(f"{NATIONAL_PS_OID}^")),
                       ids[0] if ids else "")
        root, _, ext = said_id.partition("^")
        root = root.strip()
        identifier = _identifier(ext, root) if _OID.fullmatch(root) and _text(ext) else \
            {"system": RFC3986, "value": f"urn:oid:{root}"} if _OID.fullmatch(root) else None
    else:
        return None
    if identifier is None and name is None:
        return None
    key = _identifier_key(identifier) if identifier else f"entry/{entry.get('id')}"
    return full_url("practitioner", key), {
        "resourceType": "Practitioner",
        "identifier": _practitioner_identifiers(identifier) if identifier else [],
        "name": [{"text": name}] if name else []}


def _equipment(entry: Mapping, details: Mapping, base_url: str) -> tuple[str, dict] | None:
    """(fullUrl, Device) a lab result was obtained with: details.equipment (OBX-18, EI: the
    analyser's id under its namespace or OID; one Device per analyser in the Bundle), else
    details.devices (CDA participant DEV: a test kit, by its code). R4 Observation.device
    holds one: the first sent."""
    said = next(iter(_items(details.get("equipment"))), None)
    if isinstance(said, Mapping):
        universal = _text(said.get("universal_id")) or ""
        identifier = _identifier(said.get("id"), universal if _OID.fullmatch(universal)
                                 else said.get("namespace") or universal)
        if identifier:
            return full_url("equipment", _identifier_key(identifier)), {
                "resourceType": "Device", "identifier": [identifier]}
    kit = next(iter(_items(details.get("devices"))), None)
    concept = _coded_concept(kit, base_url)
    if concept:
        return full_url("kit", entry.get("id")), {"resourceType": "Device", "type": concept}
    return None


def _organization(name: str, details: Mapping) -> tuple[str, dict]:
    """(fullUrl, Organization) of the laboratory that performed a result: with its
    identifier when the store keeps it (details.performing_organization: OBX-23 / PRT-8
    XON.10 under XON.6, a FINESS under urn:oid:1.2.250.1.71.4.2.2), one per identifier in
    the Bundle (two 'LABO DEMO' of two towns are two); else one per name, as before."""
    said = details.get("performing_organization")
    ident = said.get("id") if isinstance(said, Mapping) and _text(said.get("name")) == name \
        else None
    identifier = _identifier(ident.get("id"), ident.get("authority"), ident.get("type")) \
        if isinstance(ident, Mapping) else None
    if identifier is None:
        return full_url("organization", name), {"resourceType": "Organization", "name": name}
    identifiers = _organization_identifiers(identifier, _text(ident.get("type")))
    return full_url("organization", _identifier_key(identifiers[0])), {
        "resourceType": "Organization", "identifier": identifiers, "name": name}


@cache
def _structure_registers() -> tuple[tuple[str, re.Pattern, str, str], ...]:
    """(prefix, number pattern, type, system) of the registers behind an idNatSt
    (fhir_structure_ids.csv)."""
    return tuple((r["prefix"], re.compile(r["pattern"]), r["type"], r["system"])
                 for r in read_csv_rows(TABLES / "fhir_structure_ids.csv"))


def _fr_core_type(code: str) -> dict:
    return {"coding": [{"system": FR_CORE_IDENTIFIER_TYPES, "code": code}]}


def _organization_identifiers(identifier: dict, kind: str | None) -> list[dict]:
    """An Organization's identifiers as FR Core types them, from the one its source gave
    under the structures' OID (1.2.250.1.71.4.2.2): the idNatSt (type IDNST, use official,
    '1' + FINESS) and the register number it holds under the register's system (finess,
    siren, siret... with the sender's type, FINEG or FINEJ), whichever of the two was sent
    (fhir_structure_ids.csv). An HL7v2 lab sends the bare FINESS with XON.7 'FINEG', a CDA
    the idNatSt: one laboratory, one Organization, found by either number. They were typed
    by the sender's text alone, the bare FINESS under the idNatSt's system as if it were
    one. A value of neither form is exported as it was sent: we never guess a register."""
    if identifier.get("system") != f"urn:oid:{FINESS_OID}":
        return [identifier]
    value, kind = identifier["value"], (kind or "").strip().upper()
    registers = _structure_registers()
    bare = next((r for r in registers if r[2] == kind and r[1].fullmatch(value)), None)
    if bare is not None:
        national, number, kinds = bare[0] + value, value, {kind: bare[3]}
    else:
        held = [r for r in registers if value.startswith(r[0]) and
                r[1].fullmatch(value[len(r[0]):])]
        if not held:
            return [identifier]
        national, number = value, value[len(held[0][0]):]
        kinds = {r[2]: r[3] for r in held}
    out = [{"use": "official", "type": _fr_core_type("IDNST"), "system": identifier["system"],
            "value": national}]
    # the sender's type when the number is of that register, else the prefix's only one
    said = kind if kind in kinds else next(iter(kinds)) if len(kinds) == 1 else None
    if said and kinds[said]:
        out.append({"type": _fr_core_type(said), "system": kinds[said], "value": number})
    return out


def _lab_parties(res: dict, entry: Mapping, details: Mapping, subject: dict,
                 base_url: str, extras: dict[str, dict]) -> None:
    """What the store keeps of how a lab result was obtained, as FHIR says it: method,
    Specimen, Device, the validating biologist as a Practitioner with their RPPS and the
    performing laboratory as an Organization (resources added to ``extras``, shared by the
    results that name the same one). They were dropped, or a display string."""
    res["method"] = _method(details.get("method"), base_url)
    res["category"] = _lab_category(res.get("category") or [], details)
    specimen = _specimen(entry, details, subject, base_url)
    if specimen:
        url = full_url("specimen", entry.get("id"))
        extras[url] = specimen
        res["specimen"] = {"reference": url}
    device = _equipment(entry, details, base_url)
    if device:
        extras.setdefault(device[0], device[1])
        res["device"] = {"reference": device[0]}
    performers = []
    observer = _observer(entry, details)
    observer_name = None
    if observer:
        url, practitioner = observer
        held = extras.setdefault(url, practitioner)
        if not held.get("name") and practitioner.get("name"):
            held["name"] = practitioner["name"]
        observer_name = practitioner["name"][0]["text"] if practitioner["name"] else None
        performers.append({"reference": url, "display": observer_name})
    said = _text(entry.get("performer"))
    if said and said != observer_name:
        root, sep, _ = said.partition("^")
        if sep and _OID.fullmatch(root.strip()):  # an id (CDA): a logical reference
            performers.insert(0, _performer(said))
        else:  # OBX-23, PRT PO, OBX-15 producer, CDA performing laboratory: its name
            url, organization = _organization(said, details)
            extras.setdefault(url, organization)
            performers.insert(0, {"reference": url, "display": said})
    res["performer"] = performers


# -- orders and their prescribers -------------------------------------------------------------
PLACER_TYPE = {"coding": [{"system": IDENTIFIER_TYPES, "code": "PLAC",
                           "display": "Placer Identifier"}]}


def _prescriber(identifier: dict | None, name: str | None,
                extras: dict[str, dict]) -> dict | None:
    """A reference to the Practitioner who ordered (added to ``extras``): one per
    identifier in the Bundle, the same as the biologist's when it is the same person (their
    RPPS and idNatPS as ``_practitioner_identifiers`` gives them); a name without identifier
    is a display only (two Dr MARTIN are not one)."""
    if identifier is None:
        return {"display": name} if name else None
    url = full_url("practitioner", _identifier_key(identifier))
    held = extras.setdefault(url, {"resourceType": "Practitioner",
                                   "identifier": _practitioner_identifiers(identifier),
                                   "name": [{"text": name}] if name else []})
    if not held.get("name") and name:
        held["name"] = [{"text": name}]
    return {"reference": url, "display": name or _text(
        (held.get("name") or [{}])[0].get("text"))}


def _service_request(key: str, entry: Mapping, details: Mapping, subject: dict,
                     extras: dict[str, dict], *, identifier: dict | None,
                     requester: dict | None, code: dict | None = None,
                     authored: str | None = None) -> dict:
    """A reference to the ServiceRequest of an order (added to ``extras``): what FHIR R4
    and FR Core say an order is, with its prescriber as requester. We hold the order as
    the report or document that answers it says it: its status is 'unknown', its intent
    'order'; it carries the labels of the entry that names it (a masked document's
    prescriber says as much as the document)."""
    url = full_url("service-request", key)
    security = _security(entry, details)
    extras.setdefault(url, {"resourceType": "ServiceRequest",
                            "meta": {"security": security} if security else None,
                            "identifier": [identifier] if identifier else [],
                            "status": "unknown", "intent": "order", "code": code,
                            "subject": subject, "authoredOn": authored,
                            "requester": requester})
    return {"reference": url}


def _lab_order(entry: Mapping, details: Mapping, res: Mapping, subject: dict,
               extras: dict[str, dict] | None) -> dict | None:
    """DiagnosticReport.basedOn of an HL7v2 report: the ServiceRequest of its OBR (HL7's
    v2-to-FHIR: OBR -> ServiceRequest), placer number OBR-2 as its PLAC identifier, what
    was ordered OBR-4, and the prescriber OBR-16 (or ORC-12) as requester with the RPPS
    the XCN gives. The prescriber was not exported at all, the order a logical reference
    to nothing in the Bundle. Without ``extras`` (no Bundle to add to), the logical
    reference by placer number as before."""
    placer = _text(details.get("placer_order"))
    said = details.get("ordering_provider_id")
    name = _text(details.get("ordering_provider"))
    identifier = _identifier(said.get("id"), said.get("authority"), said.get("type")) \
        if isinstance(said, Mapping) else None
    placed = {"type": PLACER_TYPE, "value": placer} if placer else None
    if extras is None or not (placed or identifier or name):
        return {"type": "ServiceRequest", "identifier": placed} if placed else None
    return _service_request(f"entry/{entry.get('id')}", entry, details, subject, extras,
                            identifier=placed, requester=_prescriber(identifier, name, extras),
                            code=res.get("code"))


def _document_orders(entry: Mapping, details: Mapping, subject: dict,
                     extras: dict[str, dict] | None) -> list[dict]:
    """The ServiceRequests a CDA document answers (details.orders: inFulfillmentOf/order/id,
    'root^extension'), each with the prescriber (details.ordered_by: participant REF, its
    RPPS or idNatPS; the prescription's date as authoredOn); one without identifier when a
    prescriber is named and no order id. Both were dropped."""
    if extras is None:
        return []
    orders = [i for i in (_entity_identifier(k) for k in details.get("orders") or ()) if i]
    said = _first(details, "ordered_by") or {}
    ids = [i for i in said.get("ids") or () if isinstance(i, str) and _text(i)]
    # the national PS id when the prescriber has several (as for the biologist)
    chosen = next((i for i in ids if i.strip().startswith(f"{NATIONAL_PS_OID}^")),
                  ids[0] if ids else "")
    root, _, ext = chosen.partition("^")
    identifier = _identifier(ext, root.strip()) if _OID.fullmatch(root.strip()) and \
        _text(ext) else None
    requester = _prescriber(identifier, None, extras)
    if requester is None and _text(said.get("organization_name")):
        requester = {"display": _text(said["organization_name"])}
    authored = fhir_datetime(_text(said.get("time")))
    if not orders and requester is None:
        return []
    return [_service_request(f"entry/{entry.get('id')}/order/{_identifier_key(o) if o else ''}",
                             entry, details, subject, extras, identifier=o,
                             requester=requester, authored=authored)
            for o in orders or [None]]


def _document_consents(details: Mapping) -> list[dict]:
    """The consents a CDA document states (details.consents: authorization/consent, its id,
    code and status) as logical references typed Consent in DocumentReference.context
    .related (R4 has no element for them; a Consent resource would need a scope and a
    category the document does not give). They were dropped."""
    out = []
    for said in _items(details.get("consents")):
        if not isinstance(said, Mapping):
            continue
        ids = [i for i in (_entity_identifier(k) for k in said.get("ids") or ()) if i]
        code = said.get("code") if isinstance(said.get("code"), Mapping) else {}
        words = _text(code.get("display")) or _text(said.get("text")) or \
            " ".join(filter(None, (_text(code.get("system")), _code(code.get("code")))))
        status = _text(said.get("status"))
        ref = {"type": "Consent", "identifier": ids[0] if ids else None,
               "display": f"{words} ({status})" if words and status else words or None}
        if ref["identifier"] or ref["display"]:
            out.append({k: v for k, v in ref.items() if v})
    return out


def _legal_authenticator(details: Mapping, extras: dict[str, dict] | None) -> dict | None:
    """DocumentReference.authenticator (R4 0..1: who attested the document) from the CDA
    legalAuthenticator (details.legal_authenticator): a Practitioner in the Bundle by the
    signer's id (the national PS id when several, as ``_prescriber`` makes one per
    identifier), else the Organization of the signer's structure, by its id. The other
    authenticators (details.authenticators) are not exported: R4 has one authenticator and
    no standard extension for more. Nothing without an id (a signer named by words only)."""
    said = details.get("legal_authenticator")
    if extras is None or not isinstance(said, Mapping):
        return None
    ids = [i.strip() for i in said.get("ids") or () if isinstance(i, str) and _text(i)]
    chosen = next((i for i in ids if i.startswith(f"{NATIONAL_PS_OID}^")),
                  ids[0] if ids else "")
    root, _, ext = chosen.partition("^")
    person = _identifier(ext, root) if _OID.fullmatch(root) else None
    if person is not None:
        return _prescriber(person, None, extras)
    orgs = [i.strip() for i in said.get("organization") or () if isinstance(i, str)]
    root, _, ext = next(iter(orgs), "").partition("^")
    org = _identifier(ext, root) if _OID.fullmatch(root) else None
    if org is None:
        return None
    identifiers = _organization_identifiers(org, None)
    name = _text(said.get("organization_name"))
    url = full_url("organization", _identifier_key(identifiers[0]))
    extras.setdefault(url, {"resourceType": "Organization", "identifier": identifiers,
                            "name": name})
    return {"reference": url, "display": name}


ENTERER = {"system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type",
           "code": "enterer", "display": "Enterer"}


def _data_enterer(entry: Mapping, details: Mapping, extras: dict[str, dict] | None) -> None:
    """Who keyed a CDA document in (details.data_enterer: a secretary typing a dictated
    letter) as a Provenance of the DocumentReference whose agent is typed 'enterer' (R4
    has no DocumentReference element for it). Recorded is required: the data enterer's
    time, else the document's; without either it is not exported."""
    said = details.get("data_enterer")
    if extras is None or not isinstance(said, Mapping):
        return
    ids = [i for i in said.get("ids") or () if isinstance(i, str) and _text(i)]
    chosen = next((i for i in ids if i.strip().startswith(f"{NATIONAL_PS_OID}^")),
                  ids[0] if ids else "")
    who = _performer(chosen) if chosen else None
    if who is None and _text(said.get("organization_name")):
        who = {"display": _text(said["organization_name"])}
    recorded = fhir_instant(_text(said.get("time"))) or fhir_instant(entry.get("effective"))
    if who is None or recorded is None:
        return
    extras[full_url("provenance", f"entry/{entry.get('id')}/enterer")] = {
        "resourceType": "Provenance",
        "target": [{"reference": full_url("entry", entry.get("id"))}],
        "recorded": recorded, "activity": {"text": "data entry"},
        "agent": [{"type": {"coding": [ENTERER]}, "who": who}]}


# -- resources --------------------------------------------------------------------------------
def _patient_resource(patient: Mapping, identifiers: Sequence[Mapping] = ()) -> dict:
    """The Patient as FR Core reads it: the INS typed (fhir_ins_identifiers.csv; a test or
    demo INS tags the Patient HTEST), the local ids (an IPP, CX.4 / CDA id root) with their
    assigning authority, the birth name as the 'official' name and the used name as the
    'usual' one (FR Core: nom de naissance / nom utilisé) when the two differ."""
    ins, oid = _text(patient.get("ins")), _text(patient.get("ins_oid"))
    out: list[dict] = []
    tag = None
    if ins:
        kind = _ins_kinds().get(oid or "", "INS")
        fr_core = _fr_core_ins().get(kind)
        typed = {"coding": [{"system": FR_CORE_IDENTIFIER_TYPES, "code": fr_core[0]}]} \
            if fr_core else {}
        out.append({"use": fr_core[1] if fr_core else "official",
                    "type": {**typed, "text": kind},
                    "system": f"urn:oid:{oid}" if oid else None, "value": ins})
        tag = _ins_tags().get(kind)
    out += [i for i in map(_local_patient_identifier, identifiers) if i]
    given = _text(patient.get("given"))
    family, birth = _text(patient.get("family")), _text(patient.get("birth_family"))
    given_names = [given] if given else []
    names = [{"use": "usual", "family": family, "given": given_names}]
    if birth and birth != family:
        # told apart by the sender (PID-5 L and D, 'MARTIN épouse DURAND'): the birth name
        # is the official one. One name for both may be an untyped name the store keeps as
        # both: which it is was not said, it stays the one the patient goes by
        names.insert(0, {"use": "official", "family": birth, "given": given_names})
    res = {"resourceType": "Patient", "identifier": out, "name": names,
           "gender": GENDERS.get((_text(patient.get("sex")) or "").upper()),
           "birthDate": fhir_date(patient.get("birth_date"))}
    if tag:
        res["meta"] = {"tag": [{"system": ACT_REASON, "code": tag,
                                "display": "test health data"}]}
    if patient.get("deceased"):
        # Patient.deceased[x]: the dateTime when the death is dated, else the boolean
        when = fhir_datetime(_text(patient.get("deceased_at")))
        res.update({"deceasedDateTime": when} if when else {"deceasedBoolean": True})
    return res


def _local_patient_identifier(row: Mapping) -> dict | None:
    """One of the patient's local ids (patient_identifiers: authority, value, CX.5 type):
    under urn:oid: of its authority when that is an OID (urn:uuid: when a UUID), the
    authority as Identifier.assigner (by its OID, or by name when a sender gave only a
    namespace). The caller leaves out our own pointers to merged dossiers (dossiers/export.py)."""
    authority, value = _text(row.get("authority")), _text(row.get("value"))
    if not value or not authority or authority in _ins_kinds():
        # a NIR under an INS OID kept as a local id (CX.5 'NH': the billing NIR) is no
        # identity: under the INS's system a reader would take it for the INS
        return None
    code = _text(row.get("type_code"))
    kind = None
    if code and code in _patient_identifier_types():
        kind = {"coding": [{"system": IDENTIFIER_TYPES, "code": code,
                            "display": _patient_identifier_types()[code]}]}
    elif code:
        kind = {"text": code}
    system = _authority_uri(authority)
    return {"type": kind, "system": system, "value": value,
            "assigner": {"identifier": {"system": RFC3986, "value": system}}
            if system else {"display": authority}}


_UUID = re.compile(r"[0-9A-Fa-f]{8}(-[0-9A-Fa-f]{4}){3}-[0-9A-Fa-f]{12}")


def _authority_uri(authority: str) -> str | None:
    """The URI of an assigning authority that is a universal id: an OID -> urn:oid:, a UUID
    (a CDA id/@root may be one, HL7 V3 II) -> urn:uuid: in lower case (RFC 4122, as FHIR
    writes it); None for a namespace, which names no system."""
    if _OID.fullmatch(authority):
        return f"urn:oid:{authority}"
    if _UUID.fullmatch(authority):
        return f"urn:uuid:{authority.lower()}"
    return None


# Details holding what the sender wrote about an entry in words, wherever it was written:
# on the entry itself, on the whole exam (a lab's comment on the urine culture, on each of
# its results) or on the concern a problem or an allergy belongs to.
_NOTE_DETAILS = ("comments", "exam_comments", "concern_comments")
# Resources with a 'note' (R4) besides Observation, which always has its list.
_NOTED = frozenset({"Condition", "AllergyIntolerance", "MedicationStatement",
                    "MedicationRequest", "MedicationDispense", "Immunization",
                    "Procedure", "FamilyMemberHistory", "ServiceRequest",
                    "DeviceUseStatement", "Goal"})


def _notes(details: Mapping) -> list[dict]:
    """FHIR Annotations of every comment ``details`` keeps (``_NOTE_DETAILS``)."""
    out = []
    for key in _NOTE_DETAILS:
        said = details.get(key)
        for c in [said] if isinstance(said, str) else said or ():
            text = _text(c.get("text") if isinstance(c, Mapping) else c)
            if text:
                out.append({"text": text})
    return out


def _first(details: Mapping, key: str) -> Mapping | None:
    """The first mapping of a details list (details.informants, details.recorded_by)."""
    said = details.get(key)
    return next((x for x in said if isinstance(x, Mapping)), None) \
        if isinstance(said, list) else None


def _practitioner(party: Mapping | None) -> dict | None:
    """A professional named by ids (RPPS under urn:oid:1.2.250.1.71.4.2.1): a logical
    Practitioner reference by the first id that is 'root^extension'."""
    for key in (party or {}).get("ids") or ():
        ref = _performer(key)
        if ref and "identifier" in ref:
            return {"type": "Practitioner", **ref}
    return None


def _stated_by(details: Mapping, subject: dict) -> dict | None:
    """Who stated the fact (details.informants, the first one): the patient (the dossier's
    Patient), a relative (a RelatedPerson by its relationship's display or code: no
    resource, no name), a professional (``_practitioner``)."""
    said = _first(details, "informants")
    if said is None:
        return None
    source = said.get("source")
    if source == "patient":
        return dict(subject)
    if source == "relative":
        rel = said.get("relationship")
        words = _text(rel.get("display")) or _text(rel.get("code")) \
            if isinstance(rel, Mapping) else None
        return {"type": "RelatedPerson", "display": words or "related person"}
    return _practitioner(said) if source == "professional" else None


def _recorded(details: Mapping, subject: dict) -> tuple[dict | None, str | None]:
    """(recorder, when recorded) of the entry-level author (details.recorded_by): the
    patient (patient-generated data) or a professional."""
    author = _first(details, "recorded_by")
    if author is None:
        return None, None
    who = dict(subject) if author.get("source") == "patient" else _practitioner(author)
    return who, fhir_datetime(_text(author.get("time")))


# immunization-origin: a vaccination the patient or a parent reports (not first-hand)
_RECALLED = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/immunization-origin",
                         "code": "recall", "display": "Parent/Guardian/Patient Recall"}]}


def _sources(res: dict, resource: str, details: Mapping, subject: dict) -> None:
    """Who stated and who recorded the fact, on the resources R4 gives a place for it."""
    stated = _stated_by(details, subject)
    recorder, when = _recorded(details, subject)
    if resource in ("Condition", "AllergyIntolerance"):
        res.update(asserter=stated, recorder=recorder, recordedDate=when)
    elif resource == "MedicationStatement":
        res.update(informationSource=stated, dateAsserted=when)
    elif resource == "Immunization":
        said = _first(details, "informants") or {}
        if said.get("source") in ("patient", "relative"):
            res.update(primarySource=False, reportOrigin=_RECALLED)
        res["recorded"] = when


# R4 Immunization.performer.function (v2-0443): the one who gave the vaccine
_ADMINISTERING = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0443",
                              "code": "AP", "display": "Administering Provider"}]}


def _party(party: Mapping) -> tuple[dict | None, dict]:
    """A party as our details hold it (ids: the person's, organization: the organization's
    ids, organization_name) -> (the person as a reference by identifier, or None; the
    organization by identifier and name, or {})."""
    ids = [i for i in party.get("ids") or () if _text(i)]
    person = _performer(ids[0]) if ids else None
    orgs = [i for i in party.get("organization") or () if _text(i)]
    org = (_performer(orgs[0]) if orgs else None) or {}
    name = _text(party.get("organization_name"))
    if name:
        org = {**org, "display": name}
    return person, org


def _performers(details: Mapping, resource: str) -> list[dict]:
    """Who gave a vaccine or did a procedure (details.performed_by: the performer's ids, the
    organization's ids and name; kept apart from Entry.performer, the author): the person
    by identifier (RPPS under urn:oid:1.2.250.1.71.4.2.1), on behalf of the organization
    (Procedure) or the organization as actor when no person is named. Dropped until now:
    a vaccination exported without its vaccinator."""
    party = details.get("performed_by")
    if not isinstance(party, Mapping):
        return []
    person, org = _party(party)
    if person is None and not org:
        return []
    if person is None:
        # the organization alone (a pharmacy that vaccinated, a clinic's team): an actor
        # may be a person or a structure, and an untyped identifier with a FINESS said
        # neither; onBehalfOf is an Organization by definition and stays as it was
        return [{"actor": {"type": "Organization", **org}}]
    if resource == "Immunization":
        return [{"function": _ADMINISTERING, "actor": person}]
    return [{"actor": person, "onBehalfOf": org or None}]


# What a statement's nested observations say that no element of its resource holds
# (normalizers/cda/described.py _described): noted, each with its name
_DESCRIBED_NOTES = (("observations", ""), ("reasons", "reason: "),
                    ("characteristics", ""))
# Resources with a reasonCode (R4) of those an entry becomes
_REASONED = frozenset({"Procedure", "MedicationStatement", "MedicationRequest",
                       "ServiceRequest", "Immunization", "DeviceUseStatement"})


def _reason_codes(details: Mapping, base_url: str) -> list[dict]:
    """Why it was done or given (details.reasons: a medication's indication {code, system,
    display}, a procedure's or plan's RSON observation {code, display, value, value_code}:
    its coded value, else its code) -> reasonCode. IPS-FR's 'Thyroïdite auto-immune' for
    a Levothyrox, CARD-F-PRC-DCI's 'tachycardie ventriculaire' for a defibrillator were in
    the store only."""
    out = []
    for said in details.get("reasons") or ():
        if not isinstance(said, Mapping):
            continue
        coded = said.get("value_code") if isinstance(said.get("value_code"), Mapping) \
            else None
        concept = _said_concept(coded.get("code"), coded.get("system"),
                                coded.get("display"), base_url, said.get("value")) \
            if coded else _said_concept(said.get("code"), said.get("system"),
                                        said.get("display"), base_url, said.get("value"))
        if concept:
            out.append(concept)
    return out


def _described_words(said: Mapping) -> str | None:
    """'Taille: 2.5', 'Suivi du traitement: actif', 'Localisation anatomique: antérieur
    (Droit)' of a described observation {code, display, value, unit, qualifiers, parts}."""
    name = _text(said.get("display")) or _code(said.get("code"))
    coded = said.get("value_code") if isinstance(said.get("value_code"), Mapping) else {}
    value = _text(said.get("value")) or _text(coded.get("display")) or _code(coded.get("code"))
    if value and _text(said.get("unit")):
        value = f"{value} {_text(said.get('unit'))}"
    sides = [_text(q["value"].get("display")) or _code(q["value"].get("code"))
             for q in said.get("qualifiers") or () if isinstance(q, Mapping) and
             isinstance(q.get("value"), Mapping)]
    sides = [w for w in sides if w and w != "None"]
    if value and sides:
        value = f"{value} ({', '.join(sides)})"
    if not value:
        return None
    words = f"{name}: {value}" if name else value
    return f"not {words}" if said.get("negated") else words


QUALIFIER = "qualifier"


def _qualifier_notes(details: Mapping) -> list[dict]:
    """Notes of the qualifiers of an entry's code or coded value (details.code_qualifiers,
    value_qualifiers: CI-SIS 'latéralité: droit' on a genetic result, 'gauche' on a
    retinopathy finding or a motor deficit, 'radiothérapie' on a planned treatment): R4
    CodeableConcept has no qualifiers and nothing else holds them; they were dropped. A
    qualifier without a value (a template's empty slot) says nothing."""
    out = []
    for key in ("code_qualifiers", "value_qualifiers"):
        for q in details.get(key) or ():
            value = q.get("value") if isinstance(q, Mapping) else None
            if not isinstance(value, Mapping):
                continue
            words = _text(value.get("display")) or _text(value.get("text")) or \
                _code(value.get("code"))
            if not words or words == "None":
                continue
            name = q.get("name") if isinstance(q.get("name"), Mapping) else {}
            label = _text(name.get("display")) or _code(name.get("code")) or QUALIFIER
            out.append({"text": f"{label}: {words}"})
    return out


def _described_notes(details: Mapping, reasons: bool = True) -> list[dict]:
    """Notes of the observations a statement nests (details.observations, reasons,
    characteristics) that no element exports: a deafness screening's result, a device's
    size, a problem's follow-up. A cancer's staging is its Condition.stage, not a note; an
    observation with no value (a template's empty slot) says nothing."""
    out = []
    for key, prefix in _DESCRIBED_NOTES:
        if key == "reasons" and not reasons:  # said as reasonCode
            continue
        for said in details.get(key) or ():
            if not isinstance(said, Mapping) or (key == "observations" and
                                                 _staging_role(said)):
                continue
            words = _described_words(said)
            if words:
                out.append({"text": f"{prefix}{words}"})
    return out


def _entry_resource(entry: Mapping, resource: str, subject: dict, base_url: str,
                    extras: dict[str, dict] | None = None, withheld: bool = False) -> dict:
    """The resource of one entry, without its links to other entries (added later);
    resources it references (a lab result's Specimen, Device, Practitioner, Organization)
    are added to ``extras`` (fullUrl -> resource). ``withheld``: the reader may not have
    the entry's original file (``to_bundle``)."""
    details = _json(entry.get("details")) or {}
    if not isinstance(details, Mapping):
        details = {}
    status = entry.get("status")
    effective = fhir_datetime(entry.get("effective"))
    category_row = _types().get(entry.get("type") or "") or {}
    category = [{"coding": [{"system": category_row["category_system"],
                             "code": category_row["category_code"],
                             "display": category_row.get("category_display")}]}] \
        if category_row.get("category_code") else []
    performer = _performer(entry.get("performer"))
    res: dict[str, Any] = {"resourceType": resource}
    if resource == "Observation":
        res.update(status=fhir_status(status, resource), category=category,
                   code=_concept(entry, base_url, entry.get("type") or "observation",
                                 details),
                   subject=subject, effectiveDateTime=effective,
                   issued=fhir_instant(entry.get("issued")),
                   performer=[performer] if performer else [],
                   interpretation=_interpretation(entry),
                   referenceRange=_reference_range(entry),
                   bodySite=_body_site(details.get("target_site"), base_url),
                   method=_method(details.get("method"), base_url))
        res.update(_value(entry, details, base_url))
        notes = _notes(details)
        others = [t for t in map(_text, _items(details.get("other_values"))) if t]
        if others:  # OBX-5 (CDA value) repeated: the first is the value, the others
            # were dropped
            notes.append({"text": f"{_other_values_label(entry)}: {'; '.join(others)}"})
        if details.get("negated"):  # R4 Observation cannot say 'not': said in words
            notes.insert(0, {"text": NEGATED})
        res["note"] = notes
        _observed_period(res, effective, details)
        if entry.get("type") == LAB_RESULT:
            _lab_parties(res, entry, details, subject, base_url,
                         extras if extras is not None else {})
    elif resource == "DiagnosticReport":
        res.update(status=_reissued_status(fhir_status(status, resource), details, resource),
                   category=category,
                   code=_concept(entry, base_url, "report", details), subject=subject,
                   effectiveDateTime=effective, issued=fhir_instant(entry.get("issued")),
                   performer=[_author(entry, details)],
                   conclusion=_text(entry.get("value")))
        order = _lab_order(entry, details, res, subject, extras)
        if order:  # OBR-2 and OBR-16/ORC-12: the order this report answers, its prescriber
            res["basedOn"] = [order]
        if entry.get("attachment_sha256") or entry.get("media_type"):
            res["presentedForm"] = [_attachment(entry, base_url, withheld)]
        studies = _imaging_studies(entry, details, subject, extras)
        if studies:
            res["imagingStudy"] = studies
        specimen = _specimen(entry, details, subject, base_url) \
            if entry.get("type") == "lab_report" and extras is not None else None
        if specimen:  # an order cancelled because its tube broke says why (SPM-21)
            url = full_url("specimen", entry.get("id"))
            extras[url] = specimen
            res["specimen"] = [{"reference": url}]
    elif resource == "DocumentReference":
        error = fhir_status(status, resource) == "entered-in-error"
        res.update(status="entered-in-error" if error else "current",
                   docStatus=None if error else _reissued_status(
                       fhir_status(status, resource), details, resource),
                   masterIdentifier=_document_id(entry.get("key")),
                   type=_concept(entry, base_url, "document"), subject=subject,
                   date=fhir_instant(entry.get("effective")) or
                   fhir_instant(entry.get("issued")),
                   author=[_author(entry, details)],
                   description=_text(entry.get("display")),
                   securityLabel=[{"coding": [s]} for s in _security(entry, details)],
                   content=[{"attachment": _attachment(entry, base_url, withheld)}])
        res["identifier"] = _document_identifiers(entry, details, withheld)
        signed = _legal_authenticator(details, extras)
        if signed:
            res["authenticator"] = signed
        replaced = _text(details.get("replaces"))
        if replaced and not error:  # a new version (CDA RPLC, MDM^T10 / TXA-13)
            target = _document_id(replaced) or {"value": replaced.removeprefix(DOCUMENT_KEY)}
            res["relatesTo"] = [{"code": "replaces", "target": {
                "type": "DocumentReference", "identifier": target}}]
        studies = _imaging_studies(entry, details, subject, extras)
        # R4 DocumentReference has neither imagingStudy nor basedOn: the images and the
        # orders it answers (CDA inFulfillmentOf, with the REF prescriber) are its context
        related = studies + _document_orders(entry, details, subject, extras) + \
            _document_consents(details)
        if related:
            res["context"] = {"related": related}
        _data_enterer(entry, details, extras)
    elif resource == "Condition":
        res.update(clinicalStatus=_clinical(status, resource, details, "condition-clinical"),
                   verificationStatus=_verification(status, resource, details,
                                                    "condition-ver-status"),
                   code=_concept(entry, base_url, "problem", details), subject=subject,
                   onsetDateTime=effective,
                   severity=_coded_concept(details.get("severity"), base_url),
                   bodySite=[_body_site(details.get("target_site"), base_url)])
        _abatement(res, status, details)
        res["stage"] = _stages(entry, details, subject, base_url,
                               extras if extras is not None else {})
    elif resource == "AllergyIntolerance":
        res.update(clinicalStatus=_clinical(status, resource, details,
                                            "allergyintolerance-clinical"),
                   verificationStatus=_verification(status, resource, details,
                                                    "allergyintolerance-verification"),
                   code=_allergen(entry, details, base_url), patient=subject,
                   onsetDateTime=effective,
                   reaction=_reactions(details.get("reactions"), base_url))
        verified = (res["verificationStatus"] or {}).get("coding", [{}])[0].get("code")
        if res["clinicalStatus"] is None and verified != "entered-in-error":
            # R4 ait-1 (a rule): a clinicalStatus unless entered in error. Unstated, it was
            # left out and the resource was invalid; 'unknown' is said, never guessed
            res["clinicalStatus"] = {"extension": [{"url": DATA_ABSENT_EXTENSION,
                                                    "valueCode": "unknown"}]}
        res["note"] = _absent_reactions(details.get("absent_reactions"), base_url)
        kind = details.get("allergy_type")
        if not isinstance(kind, Mapping) and _text(details.get("allergen_text")):
            kind = {"system": entry.get("system"), "code": entry.get("code")}
        res.update(_allergy_kind(kind))
        critical = details.get("criticality")  # CI-SIS FR-Criticite: FHIR's own codes
        if isinstance(critical, Mapping) and critical.get("code") in CRITICALITIES:
            res["criticality"] = critical["code"]
        elif isinstance(critical, Mapping):  # C-CDA: HL7 ObservationValue CRITH...
            res["criticality"] = _criticalities().get(
                (str(critical.get("system") or ""), str(critical.get("code") or "")))
    elif resource == "MedicationRequest":
        low = fhir_datetime(details.get("period_low"))
        high = fhir_datetime(details.get("period_high"))
        res.update(status=fhir_status(status, resource) or "unknown",
                   intent=_INTENTS.get(str(details.get("mood") or "").upper(), "plan"),
                   medicationCodeableConcept=_concept(entry, base_url, "medication",
                                                      details),
                   subject=subject, authoredOn=effective if not (low or high) else None,
                   dosageInstruction=_sited(_dosages(details, base_url), details, base_url))
        if details.get("negated"):  # 'ne pas prendre': a request not to give it
            res["doNotPerform"] = True
        _dispense_request(res, details, low, high, base_url)
    elif resource == "MedicationStatement":
        taken = "not-taken" if details.get("negated") else fhir_status(status, resource)
        low = fhir_datetime(details.get("period_low"))
        high = fhir_datetime(details.get("period_high"))
        res.update(status=taken or "unknown",
                   medicationCodeableConcept=_concept(entry, base_url, "medication",
                                                      details),
                   subject=subject,
                   dosage=_sited(_dosages(details, base_url), details, base_url))
        if low or high:
            res["effectivePeriod"] = {"start": low, "end": high}
        else:
            res["effectiveDateTime"] = effective
    elif resource == "MedicationDispense":
        _dispense(res, entry, details, subject, base_url)
    elif resource == "Immunization":
        res.update(status="not-done" if details.get("negated")
                   else fhir_status(status, resource) or "completed",
                   vaccineCode=_concept(entry, base_url, "immunization", details),
                   patient=subject,
                   site=_body_site(details.get("approach_site"), base_url))
        _vaccination(res, details, base_url)
        maker = _text(details.get("manufacturer"))
        if maker:  # with the lot, who made it (C-CDA immunization medication information)
            res["manufacturer"] = {"display": maker}
        res["performer"] = _performers(details, "Immunization")
        if effective:
            res["occurrenceDateTime"] = effective
        else:  # required in R4; said as it is rather than invented
            res["occurrenceString"] = "date not stated by the sender"
    elif resource == "Procedure":
        res.update(status="not-done" if details.get("negated")
                   else "stopped" if details.get("aborted") and status == "cancelled"
                   else fhir_status(status, resource) or "unknown",
                   code=_concept(entry, base_url, "procedure", details), subject=subject,
                   performedDateTime=effective,
                   bodySite=[_body_site(details.get("target_site"), base_url)],
                   performer=_performers(details, "Procedure"))
        end = fhir_datetime(details.get("period_high"))
        if end:  # done over a period (CDA effectiveTime low and high): its end was dropped
            res.pop("performedDateTime", None)
            res["performedPeriod"] = {"start": effective, "end": end}
        way_in = _site_words(details.get("approach_site"))
        if way_in:  # R4 bodySite is the target; the way in (a coronary angiography by the
            # right radial artery) has no element of its own but a BodyStructure extension
            res["note"] = [{"text": f"{APPROACH_SITE}: {way_in}"}]
        told = _patient_instruction(details)
        if told:  # R4 Procedure has no patientInstruction: what the patient was told, said
            res["note"] = [*(res.get("note") or []), {"text": f"{PATIENT_TOLD}: {told}"}]
    elif resource == "FamilyMemberHistory":
        res.update(status=fhir_status(status, resource) or "completed", patient=subject,
                   relationship=_relationship(details.get("relative"), base_url),
                   condition=[{"code": _concept(entry, base_url, "family_history")}])
        sex = _relative_sex(details.get("relative"))
        if sex:
            res["sex"] = sex
        if effective:
            res["date"] = effective
    elif resource == "ServiceRequest":
        res.update(status=fhir_status(status, resource) or "unknown",
                   intent=_INTENTS.get(str(details.get("mood") or "").upper(), "plan"),
                   code=_concept(entry, base_url, "plan", details), subject=subject,
                   occurrenceDateTime=effective,
                   # what the patient is told ('à jeun depuis minuit': a C-CDA Instruction
                   # in a planned procedure)
                   patientInstruction=_patient_instruction(details))
        where = _destination_location(details, base_url, extras if extras is not None else {})
        if where is not None:  # where it is to happen (IHE PCC encounter disposition: the
            # hospital the patient is to be taken to, a DLU's 'établissement de préférence')
            res["locationReference"] = [where]
        end = fhir_datetime(details.get("period_high"))
        if end:  # planned over a period (radiotherapy from February to August): its end
            # was dropped
            res.pop("occurrenceDateTime", None)
            res["occurrencePeriod"] = {"start": effective, "end": end}
        if details.get("negated"):
            res["doNotPerform"] = True
    elif resource == "Goal":
        _goal(res, entry, details, subject, base_url,
              fhir_status(status, resource) or "active")
    elif resource == "Encounter":
        _encounter(res, entry, details, subject, base_url)
        _destination(res, details, base_url, extras if extras is not None else {})
        disposition = _coded_concept(details.get("discharge_disposition"), base_url)
        if disposition:  # where the patient went at discharge (C-CDA encounter entry)
            res["hospitalization"] = {**(res.get("hospitalization") or {}),
                                      "dischargeDisposition": disposition}
    elif resource == "DeviceUseStatement":
        low = fhir_datetime(details.get("period_low"))
        high = fhir_datetime(details.get("period_high"))
        res.update(status=fhir_status(status, resource) or ("completed" if high else "active"),
                   subject=subject, device={"reference": full_url("device", entry.get("id"))})
        if low or high:
            res["timingPeriod"] = {"start": low, "end": high}
        else:
            res["timingDateTime"] = effective
    else:  # pragma: no cover - every resource of fhir_entry_types.csv is handled above
        raise ValueError(f"no FHIR mapping for resource {resource}")
    reasons = _reason_codes(details, base_url) if resource in _REASONED else []
    if reasons:
        res["reasonCode"] = [*(res.get("reasonCode") or []), *reasons]
    if resource in _NOTED or resource == "Observation":
        said = _described_notes(details, resource not in _REASONED) + \
            _qualifier_notes(details)
        if said:
            res["note"] = [*(res.get("note") or []), *said]
    if resource in _NOTED:
        notes = _notes(details)
        if notes:
            res["note"] = [*(res.get("note") or []), *notes]
    about = _about_someone_else(details.get("subject"))
    if about is not None:
        # A newborn's weight, a fetus's malformation read from the mother's document
        # (details.subject): exported as hers without a word. Observation says whom it is
        # about in focus; every resource says it in a note, which any reader shows.
        if resource == "Observation":
            res["focus"] = [about]
        said = f"{ABOUT_SOMEONE_ELSE}: {about['display']}"
        if resource == "Observation" or resource in _NOTED:
            res["note"] = [{"text": said}, *(res.get("note") or [])]
        else:  # R4 DiagnosticReport, DocumentReference, Encounter have no note: a note
            # there made the whole Bundle invalid; their narrative says it
            res["text"] = {"status": "additional", "div": _narrative(said)}
    if resource not in _TOLD_ELSEWHERE:
        _told_note(res, resource, details)
    _sources(res, resource, details, subject)
    res.setdefault("identifier", [])
    res["identifier"].insert(0, {"system": f"{base_url}/entries",
                                 "value": str(entry.get("id"))})
    security = _security(entry, details)
    if security:
        res["meta"] = {"security": security}
    if resource in _DELIVERED and extras is not None:
        _deliveries(res, entry, details, subject, base_url, extras)
    return res


_DISPENSED_QUANTITY = re.compile(r"\s*([+-]?\d+(?:[.,]\d+)?)(?:\s+(\S+))?\s*")


def _dispense(res: dict, entry: Mapping, details: Mapping, subject: dict,
              base_url: str) -> None:
    """A dispense as a MedicationDispense (R4): the product, how many were handed out
    (details.dispensed_quantity, '2 30009000': the unit UCUM only when our table says so,
    an EDQM or CIP packaging code is no UCUM), when (whenHandedOver), by whom (the
    pharmacist and the pharmacy, details.dispensed_by), the posology handed out with it
    (details.dosage, IHE Pharm Dosage Instructions). It was a MedicationStatement, which
    says the patient takes a drug, with the quantity, the pharmacy and the posology
    dropped."""
    res.update(status=fhir_status(entry.get("status"), "MedicationDispense") or "unknown",
               medicationCodeableConcept=_concept(entry, base_url, "medication", details),
               subject=subject, whenHandedOver=fhir_datetime(entry.get("effective")),
               performer=_dispensers(details.get("dispensed_by")))
    m = _DISPENSED_QUANTITY.fullmatch(str(details.get("dispensed_quantity") or ""))
    if m is not None and _number(m.group(1).replace(",", ".")) is not None:
        res["quantity"] = _quantity(_decimal(m.group(1).replace(",", ".")), m.group(2), None)
    dosing = details.get("dosage")
    if isinstance(dosing, Mapping) and dosing:
        res["dosageInstruction"] = _sited(_dosages(dosing, base_url), dosing, base_url)
    lot = _text(details.get("lot_number"))
    if lot:  # R4 holds a lot on a Medication only: said in words rather than dropped
        res["note"] = [{"text": f"lot: {lot}"}]


# Resources whose entry may hold the dispenses of its product (details.dispenses)
_DELIVERED = frozenset({"MedicationStatement", "MedicationRequest", "Immunization"})


def _deliveries(res: dict, entry: Mapping, details: Mapping, subject: dict, base_url: str,
                extras: dict[str, dict]) -> None:
    """The dispenses nested in a medication or a vaccination (details.dispenses: IHE PCC
    supply entries without a product of their own, CNAM-HR's 'delivered on, by, how many')
    -> one MedicationDispense each, of the entry's product, labelled as the entry is; a
    MedicationStatement derivedFrom them. They were dropped from the export: the pharmacy
    and the day a drug was handed out, said by the insurer's history, were nowhere."""
    said = details.get("dispenses")
    if not isinstance(said, list):
        return
    product = res.get("medicationCodeableConcept") or res.get("vaccineCode")
    for n, delivery in enumerate(d for d in said if isinstance(d, Mapping)):
        url = full_url("dispense", f"{entry.get('id')}/{n}")
        dispense: dict[str, Any] = {
            "resourceType": "MedicationDispense",
            "status": fhir_status(entry.get("status"), "MedicationDispense") or "unknown",
            "medicationCodeableConcept": product, "subject": subject,
            "whenHandedOver": fhir_datetime(_text(delivery.get("time"))),
            "performer": _dispensers(delivery.get("by"))}
        m = _DISPENSED_QUANTITY.fullmatch(str(delivery.get("quantity") or ""))
        if m is not None and _number(m.group(1).replace(",", ".")) is not None:
            dispense["quantity"] = _quantity(_decimal(m.group(1).replace(",", ".")),
                                             m.group(2), None)
        if (res.get("meta") or {}).get("security"):
            dispense["meta"] = {"security": list(res["meta"]["security"])}
        extras[url] = dispense
        if res["resourceType"] == "MedicationStatement":
            res.setdefault("derivedFrom", []).append({"reference": url})


def _dispensers(party: Any) -> list[dict]:  # noqa: ANN401
    """MedicationDispense.performer: the pharmacist (a Practitioner by idNatPS) and the
    pharmacy (an Organization by its idNatSt, with its name); R4's performer has no
    onBehalfOf, so each is a performer of its own."""
    if not isinstance(party, Mapping):
        return []
    person, org = _party(party)
    if org and "identifier" in org:
        org = {"type": "Organization", **org}
    return [{"actor": a} for a in (person, org) if a]


# A plan's CDA moodCode -> ServiceRequest.intent (a promise: a plan of care's; a goal is a
# Goal, resource_type)
_INTENTS = {"INT": "plan", "RQO": "order", "PRP": "proposal", "PRMS": "directive",
            "ARQ": "order", "APT": "plan", "GOL": "plan"}
# Observation value[x] -> Goal.target.detail[x] (R4 allows these types only; a date, a
# period or no value leave the target without a detail)
_GOAL_DETAILS = {"valueQuantity": "detailQuantity", "valueRange": "detailRange",
                 "valueCodeableConcept": "detailCodeableConcept",
                 "valueString": "detailString", "valueBoolean": "detailBoolean",
                 "valueInteger": "detailInteger", "valueRatio": "detailRatio"}


def _fhir_date(value: str | None) -> str | None:
    """A FHIR date (Goal.startDate, target.dueDate are dates, not dateTimes): the day,
    month or year of ours."""
    when = fhir_datetime(value)
    return when.split("T")[0] if when else None


def _goal(res: dict, entry: Mapping, details: Mapping, subject: dict, base_url: str,
          lifecycle: str) -> None:
    """A goal (CDA moodCode GOL): what it is about as its description, its value as the
    target (C-CDA Goal Observation: code the measure, value the detail: HbA1c at or below
    7 %), its effectiveTime's low the start and high the date it is due. It was a
    ServiceRequest for the measure (an HbA1c requested) and its target was dropped."""
    concept = _concept(entry, base_url, "plan", details)
    res.update(lifecycleStatus=lifecycle, description=concept, subject=subject,
               startDate=_fhir_date(entry.get("effective")))
    target: dict[str, Any] = {}
    if entry.get("value") is not None or entry.get("value_num") is not None:
        for key, value in _value(entry, details, base_url).items():
            if key in _GOAL_DETAILS:
                target = {"measure": concept, _GOAL_DETAILS[key]: value}
    due = _fhir_date(details.get("period_high"))
    if due:
        target["dueDate"] = due
    if target:
        res["target"] = [target]
_ROLE_CODES = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"
_GENDERS = {"M": "male", "F": "female", "UN": "other", "U": "unknown"}


# Resources whose export gives details.patient_instructions an element of its own
# (ServiceRequest.patientInstruction, Dosage.patientInstruction, the Procedure's note).
_TOLD_ELSEWHERE = frozenset({"ServiceRequest", "Procedure", "MedicationStatement",
                             "MedicationRequest", "MedicationDispense", "Immunization"})


def _told_note(res: dict, resource: str, details: Mapping) -> None:
    """What the patient was told (details.patient_instructions: a C-CDA Instruction under a
    problem, an observation or an encounter) as a note, or in the narrative of an R4
    Encounter, which has no note: it was stored and exported nowhere."""
    told = _patient_instruction(details)
    if not told:
        return
    said = f"{PATIENT_TOLD}: {told}"
    if resource == "Observation" or resource in _NOTED:
        res["note"] = [*(res.get("note") or []), {"text": said}]
    elif resource == "Encounter":
        div = (res.get("text") or {}).get("div")
        res["text"] = {"status": "additional", "div": div[:-len("</div>")] +
                       f"<p>{html.escape(said)}</p></div>" if div else _narrative(said)}


def _narrative(said: str) -> str:
    """A FHIR Narrative div (XHTML) of plain words."""
    return f'<div xmlns="http://www.w3.org/1999/xhtml"><p>{html.escape(said)}</p></div>'


def _about_someone_else(subject: Any) -> dict | None:  # noqa: ANN401
    """A Reference (display only: the relative has no resource of their own) to whom an
    entry is about when not the patient (``details.subject``: role code, sex, birth)."""
    if not isinstance(subject, Mapping) or not subject:
        return None
    words = [_text(subject.get("display")) or _code(subject.get("code")) or "relative"]
    if _GENDERS.get(str(subject.get("sex") or "").upper()):
        words.append(_GENDERS[str(subject["sex"]).upper()])
    if _text(subject.get("birth_time")):
        words.append(f"born {_text(subject.get('birth_time'))}")
    return {"display": ", ".join(words)}


def _relationship(relative: Any, base_url: str) -> dict:  # noqa: ANN401
    """FamilyMemberHistory.relationship (required): the relative's role code as the
    sender gave it, else 'family member', which a family history section says at least."""
    if isinstance(relative, Mapping) and _code(relative.get("code")):
        return {"coding": [_coding(relative.get("code"), relative.get("system"),
                                   relative.get("display"), base_url)],
                "text": _text(relative.get("display"))}
    return {"coding": [{"system": _ROLE_CODES, "code": "FAMMEMB",
                        "display": "family member"}]}


def _relative_sex(relative: Any) -> dict | None:  # noqa: ANN401
    code = _GENDERS.get(str(relative.get("sex") or "").upper()) \
        if isinstance(relative, Mapping) else None
    if code is None:
        return None
    return {"coding": [{"system": "http://hl7.org/fhir/administrative-gender", "code": code}]}


# HL7 v3 ActEncounterCode (the value set of R4 Encounter.class): a CDA encounter coded so
# (FR-Rencontre IMP/AMB, C-CDA) says its class; any other code (CPT, TA_ASIP) is its type
_ENCOUNTER_CLASSES = frozenset({"AMB", "EMER", "FLD", "HH", "IMP", "ACUTE", "NONAC",
                                "OBSENC", "PRENC", "SS", "VR"})
_ACT_CODES = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
# Encounter.class is required (1..1): 'unknown' when the sender gave no ActEncounterCode
_UNKNOWN_CLASS = {"system": "http://terminology.hl7.org/CodeSystem/v3-NullFlavor",
                  "code": "UNK", "display": "unknown"}


def _encounter(res: dict, entry: Mapping, details: Mapping, subject: dict,
               base_url: str) -> None:
    """An encounter (a visit, a stay): class from details.class (the CDA code's ActCode
    translation) or its code when that is an ActEncounterCode,
    type its code and the code's qualifiers (a CNAM-HR stay's GHS), period from
    details.period_low/high (else its date), who saw the patient as participant (by id),
    the organization as serviceProvider, the place and the diagnoses as words and codes
    (no Location or Condition resource of their own: references by display)."""
    code = _code(entry.get("code"))
    system = system_uri(entry.get("system"), base_url)
    said = details.get("class") if isinstance(details.get("class"), Mapping) else {}
    klass = {"system": _ACT_CODES, "code": _code(said.get("code")),
             "display": _text(said.get("display"))} \
        if _code(said.get("code")) in _ENCOUNTER_CLASSES else \
        {"system": _ACT_CODES, "code": code, "display": _text(entry.get("display"))} \
        if system == _ACT_CODES and code in _ENCOUNTER_CLASSES else _UNKNOWN_CLASS
    types = [_concept(entry, base_url, "encounter")]
    for qualifier in details.get("code_qualifiers") or ():
        value = qualifier.get("value") if isinstance(qualifier, Mapping) else None
        if isinstance(value, Mapping) and _code(value.get("code")):
            types.append({"coding": [_coding(value.get("code"), value.get("system"),
                                             value.get("display"), base_url)],
                          "text": _text(value.get("display"))})
    start = fhir_datetime(details.get("period_low")) or fhir_datetime(entry.get("effective"))
    end = fhir_datetime(details.get("period_high"))
    res.update({"status": fhir_status(entry.get("status"), "Encounter") or "unknown",
                "class": klass, "type": types, "subject": subject})
    if start or end:
        res["period"] = {"start": start, "end": end}
    party = details.get("performed_by")
    if isinstance(party, Mapping):
        ids = [i for i in party.get("ids") or () if _text(i)]
        who = _performer(ids[0]) if ids else None
        if who:
            res["participant"] = [{"individual": who}]
        orgs = [i for i in party.get("organization") or () if _text(i)]
        provider = (_performer(orgs[0]) if orgs else None) or {}
        name = _text(party.get("organization_name"))
        if name:
            provider["display"] = name
        if provider:
            res["serviceProvider"] = provider
    place = details.get("location")
    if isinstance(place, Mapping):
        kind = place.get("code") if isinstance(place.get("code"), Mapping) else {}
        name = _text(place.get("name")) or _text(kind.get("display")) or _text(kind.get("code"))
        if name:
            res["location"] = [{"location": {"display": name}}]
    reasons = []
    for said in details.get("diagnoses") or ():
        if not isinstance(said, Mapping):
            continue
        if _code(said.get("code")):
            reasons.append({"coding": [_coding(said.get("code"), said.get("system"),
                                               said.get("display"), base_url)],
                            "text": _text(said.get("display"))})
        elif _text(said.get("text")):
            reasons.append({"text": _text(said.get("text"))})
    if reasons:
        res["reasonCode"] = reasons


@cache
@cache
def _staging_rows() -> dict[str, tuple[str, str]]:
    """code -> (system, role) of fhir_staging_codes.csv."""
    return {r["code"]: (r["system"], r["role"])
            for r in read_csv_rows(TABLES / "fhir_staging_codes.csv")}


def _staging_role(said: Mapping) -> str | None:
    """The staging role of a described observation or a qualifier's name ({code, system}):
    its code in the table's system. One stored without a system (described before its
    system was kept) is taken at its code; a code of another system (a local '21908-9')
    is no staging."""
    row = _staging_rows().get(_code(said.get("code")) or "")
    system = said.get("system")
    if row is None or (system and system != row[0]):
        return None
    return row[1]


def _said_concept(code: Any, system: Any, display: Any, base_url: str,  # noqa: ANN401
                  text: Any = None) -> dict | None:  # noqa: ANN401
    """A CodeableConcept of a code with its words; its words alone without a code."""
    words = _text(display) or _text(text)
    if not _code(code):
        return {"text": words} if words else None
    return {"coding": [_coding(code, system, display, base_url)], "text": words}


def _described_value(said: Mapping, base_url: str) -> dict:
    """The value[x] of an observation kept in another's details (details.observations: a
    T/N/M part, a qualifier): its code with its words, else its words."""
    coded = said.get("value_code") if isinstance(said.get("value_code"), Mapping) else {}
    concept = _said_concept(coded.get("code"), coded.get("system"), coded.get("display"),
                            base_url, said.get("value"))
    if concept is None:
        return {}
    if "coding" in concept or said.get("unit"):
        return {"valueCodeableConcept": concept} if "coding" in concept else \
            {"valueString": f"{concept['text']} {_text(said.get('unit'))}"}
    return {"valueString": concept["text"]}


def _stages(entry: Mapping, details: Mapping, subject: dict, base_url: str,
            extras: dict[str, dict]) -> list[dict]:
    """A cancer's stagings (details.observations whose code is a staging or a stage group:
    fhir_staging_codes.csv) -> Condition.stage: the stage group as summary (the staging's
    own coded value, else its qualifier naming the stage group: CI-SIS 75620-5 says 'IB'
    so), its code as type, and an Observation as assessment with the qualifiers (the TNM
    edition) and the T, N and M parts as components. All were left in the store: the
    cancer's Condition said nothing of its stage."""
    out = []
    for n, said in enumerate(details.get("observations") or ()):
        if not isinstance(said, Mapping) or not _staging_role(said):
            continue
        qualifiers = [q for q in said.get("qualifiers") or () if isinstance(q, Mapping)]
        parts = [p for p in said.get("parts") or () if isinstance(p, Mapping)]
        summary = _described_value(said, base_url).get("valueCodeableConcept")
        components = []
        for q in qualifiers:
            name = q.get("name") if isinstance(q.get("name"), Mapping) else {}
            value = q.get("value") if isinstance(q.get("value"), Mapping) else {}
            concept = _said_concept(value.get("code"), value.get("system"),
                                    value.get("display") if _text(value.get("display")) !=
                                    "None" else None, base_url)
            if concept is None:
                continue
            if summary is None and _staging_role(name) == "stage":
                summary = concept
            code = _said_concept(name.get("code"), name.get("system"), name.get("display"),
                                 base_url) or {"text": "qualifier"}
            components.append({"code": code, "valueCodeableConcept": concept})
        for part in parts:
            code = _said_concept(part.get("code"), part.get("system"), part.get("display"),
                                 base_url)
            value = _described_value(part, base_url)
            if code and value:
                components.append({"code": code, **value})
        kind = _said_concept(said.get("code"), said.get("system"), said.get("display"),
                             base_url)
        url = full_url("staging", f"{entry.get('id')}/{n}")
        # a staging of a problem recorded in error is in error too (it was 'final': a
        # reader of Observations found a cancer's stage the sender had withdrawn)
        in_error = fhir_status(entry.get("status"), "Observation") == "entered-in-error"
        extras[url] = {"resourceType": "Observation",
                       "status": "entered-in-error" if in_error else "final",
                       "code": kind or {"text": "cancer staging"}, "subject": subject,
                       "effectiveDateTime": fhir_datetime(entry.get("effective")),
                       "valueCodeableConcept": summary, "component": components,
                       "meta": {"security": _security(entry, details)}}
        out.append({"summary": summary, "type": kind, "assessment": [{"reference": url}]})
    return out


FINESS_OID = "1.2.250.1.71.4.2.2"  # national identifier of structures (FINESS, SIRET)


def _entity_identifier(key: Any) -> dict | None:  # noqa: ANN401
    """A CDA II as we key it ('root^extension', or the root alone) as an Identifier: the
    root an OID -> urn:oid:, a root alone (a UUID, an OID) -> its URI under RFC 3986."""
    root, _, extension = str(key or "").partition("^")
    root, extension = root.strip(), extension.strip()
    if extension and _OID.fullmatch(root):
        return {"system": f"urn:oid:{root}", "value": extension}
    if not extension and re.fullmatch(r"[0-9A-Fa-f]{8}(-[0-9A-Fa-f]{4}){3}-[0-9A-Fa-f]{12}",
                                      root):
        return {"system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{root.lower()}"}
    if not extension and _OID.fullmatch(root):
        return {"system": "urn:ietf:rfc:3986", "value": f"urn:oid:{root}"}
    return None


def _destination(res: dict, details: Mapping, base_url: str, extras: dict[str, dict]) -> None:
    """Where a transfer took the patient (details.destination: CI-SIS FR-Transfert-du-
    patient participant DST: the facility's FINESS, its kind, its name; the service type
    transferred to as the code's translation, details.code_translations) ->
    Encounter.hospitalization.destination, a Location (R4 allows no Organization there)
    with its FINESS under urn:oid:1.2.250.1.71.4.2.2, its kind and the service as its
    types. The encounter said 'Transfert du patient' and nothing of where."""
    where = _destination_location(details, base_url, extras)
    if where is not None:
        res["hospitalization"] = {"destination": where}


def _destination_location(details: Mapping, base_url: str,
                          extras: dict[str, dict]) -> dict | None:
    """The Location of details.destination (added to ``extras``) as a reference with its
    name; None when the destination names no place."""
    said = details.get("destination")
    if not isinstance(said, Mapping):
        return None
    idents = [i for i in map(_entity_identifier, said.get("ids") or ()) if i]
    kind = said.get("code") if isinstance(said.get("code"), Mapping) else {}
    types = [_said_concept(kind.get("code"), kind.get("system"), kind.get("display"),
                           base_url)]
    types += [_said_concept(t.get("code"), t.get("system"), t.get("display"), base_url,
                            t.get("text"))
              for t in details.get("code_translations") or () if isinstance(t, Mapping)]
    name = _text(said.get("name"))
    if not idents and not name:
        return None
    key = next((f"{i['system']}|{i['value']}" for i in idents
                if i["system"] == f"urn:oid:{FINESS_OID}"), None) or \
        (f"{idents[0]['system']}|{idents[0]['value']}" if idents else f"name|{name}")
    url = full_url("location", key)
    place = {"resourceType": "Location", "identifier": idents, "name": name,
             "type": [t for t in types if t]}
    if url in extras and extras[url] != place:  # one place, two ways of saying it
        url = full_url("location", f"{key}|{json.dumps(place, sort_keys=True)}")
    extras[url] = place
    return {"reference": url, "display": name}


def _device(entry: Mapping, subject: dict, base_url: str) -> dict:
    """The Device a DeviceUseStatement points at (R4 requires a reference): its type is the
    entry's code (EMDN, LPP, GMDN, SNOMED CT...), its patient the dossier's."""
    return {"resourceType": "Device", "type": _concept(entry, base_url, "device"),
            "patient": subject}


def _clinical(status: str | None, resource: str, details: Mapping,
              system: str) -> dict | None:
    """A problem's or allergy's clinical status (active, resolved...) as the sender stated it
    (fhir_clinical_statuses.csv); none for an entry in error (R4 con-5, ait-2), none when
    not stated (never guessed as 'active')."""
    if fhir_status(status, resource) == "entered-in-error":
        return None
    stated = details.get("clinical_status")
    row = None
    if isinstance(stated, Mapping):
        row = _clinical_statuses().get((str(stated.get("system") or ""),
                                        str(stated.get("code") or "")))
    if row is None:
        row = _clinical_statuses().get(("concern", str(details.get("concern_status") or "")))
    if row is None or not row.get(resource):
        return None
    return {"coding": [{"system": f"http://terminology.hl7.org/CodeSystem/{system}",
                        "code": row[resource]}]}


_ONGOING = frozenset({"active", "recurrence", "relapse"})  # R4 con-4: no abatement with these
_ABATED = {"system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
           "code": "resolved"}


def _abatement(res: dict, status: str | None, details: Mapping) -> None:
    """Condition.abatement from the problem's own end (details.resolved: its effectiveTime
    high), and the clinical status that goes with it (R4 con-4). IHE PCC / CI-SIS: a concern
    still followed (statusCode active) may hold a problem that ended; it was exported
    'active' with an abatement date. The end date says it is resolved, unless the sender
    said otherwise in a status observation: then its word is kept, and the end date, which
    cannot be an abatement then, is said in a note."""
    abated = fhir_datetime(details.get("resolved"))
    if not abated and details.get("resolved_date_unknown") and \
            fhir_status(status, "Condition") != "entered-in-error":
        _ended_on_an_unknown_day(res, details)
        return
    if not abated or fhir_status(status, "Condition") == "entered-in-error":
        res["abatementDateTime"] = abated
        return
    clinical = res.get("clinicalStatus")
    code = clinical["coding"][0]["code"] if clinical else None
    if code not in _ONGOING:
        res["clinicalStatus"] = clinical or {"coding": [dict(_ABATED)]}
        res["abatementDateTime"] = abated
    elif _stated_status(details, "Condition"):
        res["note"] = [{"text": f"end date sent ({abated}) though the sender says the "
                                f"problem is {code}"}]
    else:  # only the concern said 'active': the concern is followed, the problem ended
        res["clinicalStatus"] = {"coding": [dict(_ABATED)]}
        res["abatementDateTime"] = abated


def _ended_on_an_unknown_day(res: dict, details: Mapping) -> None:
    """A problem the sender says ended on a day nobody knows (details.resolved_date_unknown:
    CDA effectiveTime/high nullFlavor UNK): resolved, with abatementString 'unknown' (R4
    Condition.abatement[x] allows a string), unless a status observation of the problem
    itself says otherwise, which is then kept. Only the concern (still followed, 'active')
    made it an active problem."""
    clinical = res.get("clinicalStatus")
    code = clinical["coding"][0]["code"] if clinical else None
    if code in _ONGOING and _stated_status(details, "Condition"):
        return  # the sender's own word on this problem: ongoing, no abatement (con-4)
    if code in _ONGOING or clinical is None:
        res["clinicalStatus"] = {"coding": [dict(_ABATED)]}
    res["abatementString"] = "unknown"


def _stated_status(details: Mapping, resource: str) -> bool:
    """Whether a status observation of the problem itself (details.clinical_status) gave
    its clinical status, rather than the concern act around it."""
    stated = details.get("clinical_status")
    row = _clinical_statuses().get((str(stated.get("system") or ""),
                                    str(stated.get("code") or ""))) \
        if isinstance(stated, Mapping) else None
    return bool(row and row.get(resource))


def _vaccination(res: dict, details: Mapping, base_url: str) -> None:
    """What a vaccination's CDA said besides the vaccine (details): the lot (traceability:
    a batch recall), the rank in its series (protocolApplied.doseNumber: '3e dose'), the
    route and dose, and why it was not done (statusReason: a refusal). All were read
    into the store and left out of the Immunization."""
    res["lotNumber"] = _text(details.get("lot_number"))
    res["route"] = _route(details, base_url)
    dose = (_text(details.get("dose")) or "").split()
    if 1 <= len(dose) <= 2 and _number(dose[0]) is not None:
        res["doseQuantity"] = _quantity(_decimal(dose[0]), dose[1] if len(dose) > 1 else None,
                                        None, declared=True)
    if res["status"] == "not-done":
        res["statusReason"] = _coded_concept(details.get("not_done_reason"), base_url)
        return
    number = details.get("dose_number")
    if isinstance(number, int) and not isinstance(number, bool) and 0 < number < 2**31:
        protocol: dict[str, Any] = {"doseNumberPositiveInt": number}
    elif isinstance(number, str) and _text(number.strip()):
        protocol = {"doseNumberString": _text(number.strip()[:20])}
    else:  # R4 protocolApplied needs its dose number: the diseases stay in the store
        return
    targets = details.get("target_diseases")
    diseases = [c for c in (_coded_concept(t, base_url) for t in
                            (targets if isinstance(targets, list) else [])) if c]
    if diseases:  # eHDSI: what a combined vaccine protects against (tetanus, diphtheria)
        protocol["targetDisease"] = diseases
    res["protocolApplied"] = [protocol]


def _verification(status: str | None, resource: str, details: Mapping,
                  system: str) -> dict | None:
    """The verificationStatus: refuted when negated, in error when the entry is, else the
    certainty the sender stated (fhir_verification_statuses.csv: a diagnosis 'infirmé' or
    only suspected was exported as a plain Condition, read as made), else our status."""
    code = "refuted" if details.get("negated") else fhir_status(status, resource)
    certainty = details.get("certainty")
    if code not in ("refuted", "entered-in-error") and isinstance(certainty, Mapping):
        # the sender's system is read here only: the exported one is FHIR's (``system``);
        # it was overwritten, and the verificationStatus went out under the sender's OID
        sent, said = str(certainty.get("system") or ""), str(certainty.get("code") or "")
        if sent.startswith(FHIR_OIDS):  # a FHIR code under another FHIR system's OID
            sent = CONDITION_VERIFICATION_OID  # (the IPS-FR example): FHIR's code still
        row = _verification_statuses().get((sent, said)) or {}
        code = row.get(resource) or code
    if not code:
        return None
    return {"coding": [{"system": f"http://terminology.hl7.org/CodeSystem/{system}",
                        "code": code}]}


# -- the images a report is of (CR-IMG DICOM object catalog) ----------------------------------
DCM = "http://dicom.nema.org/resources/ontology/DCM"
DICOM_UID = "urn:dicom:uid"
ENDPOINT_TYPES = "http://terminology.hl7.org/CodeSystem/endpoint-connection-type"


def _imaging_studies(entry: Mapping, details: Mapping, subject: dict,
                     extras: dict[str, dict] | None) -> list[dict]:
    """References to the ImagingStudy of each study of details.dicom_studies (a CR-IMG's
    DICOM object catalog, DICOM Part 20 / CI-SIS FR-DICOM-Examen), added to ``extras``: the
    export said nothing of the images a report is of. One ImagingStudy per Study Instance
    UID in the Bundle (a report and its addendum are of one study), labelled as every
    report it is of is."""
    if extras is None:
        return []
    refs = []
    for said in _items(details.get("dicom_studies")):
        if not isinstance(said, Mapping) or not (_text(said.get("uid")) or said.get("series")):
            continue  # nothing said of it: no ImagingStudy of nothing
        uid = _text(said.get("uid"))
        url = full_url("imaging-study", uid or f"entry/{entry.get('id')}/{len(refs)}")
        study = extras.get(url)
        if study is None:
            study = extras[url] = _imaging_study(said, subject, extras)
        else:  # an addendum listing the reconstructions too: their series join the study
            _more_series(study, _imaging_study(said, subject, extras))
        labels = study.setdefault("meta", {}).setdefault("security", [])
        for label in _security(entry, details):
            if label not in labels:  # a masked report's images say as much of the patient
                labels.append(label)
        if {"reference": url} not in refs:
            refs.append({"reference": url})
    return refs


def _imaging_study(said: Mapping, subject: dict, extras: dict[str, dict]) -> dict:
    """One R4 ImagingStudy: Study Instance UID as urn:dicom:uid (R4's own example), series
    (their UID and DCM modality; R4 requires both: a series sent without UID is counted,
    not listed), instances (SOP Instance UID and SOP class as urn:oid: under RFC 3986, as
    R4's sopClass value set says them), the counts (a series' instance_count when the store
    kept its first images only) and the WADO service the instances' links point to."""
    series_out: list[dict] = []
    modalities: list[dict] = []
    total = 0
    for series in _items(said.get("series")):
        if not isinstance(series, Mapping):
            continue
        modality = _text(series.get("modality"))
        coded = {"system": DCM, "code": modality} if modality else \
            {"display": "modality not stated by the sender"}
        if modality and coded not in modalities:
            modalities.append(coded)
        instances = [i for i in _items(series.get("instances")) if isinstance(i, Mapping)]
        count = series.get("instance_count")
        count = count if isinstance(count, int) and not isinstance(count, bool) \
            and count >= len(instances) else len(instances)
        total += count
        uid = _text(series.get("uid"))
        if not uid:
            continue
        endpoints = []
        for instance in instances:
            endpoint = _wado_endpoint(instance.get("reference"), extras)
            if endpoint and {"reference": endpoint} not in endpoints:
                endpoints.append({"reference": endpoint})
        series_out.append({
            "uid": uid, "modality": coded, "numberOfInstances": count,
            "started": fhir_datetime(series.get("time")), "endpoint": endpoints,
            "instance": [{"uid": _text(i["uid"]), "sopClass": {
                "system": RFC3986, "code": f"urn:oid:{_text(i['sop_class'])}"}
                if _OID.fullmatch(_text(i.get("sop_class")) or "") else
                {"display": _text(i.get("sop_class")) or "SOP class not stated by the sender"}}
                for i in instances if _text(i.get("uid"))]})
    series_count = sum(1 for s in _items(said.get("series")) if isinstance(s, Mapping))
    uid = _text(said.get("uid"))
    return {"resourceType": "ImagingStudy", "status": "available" if total else "unknown",
            "identifier": [{"system": DICOM_UID, "value": f"urn:oid:{uid}"}] if uid else [],
            "subject": subject, "started": fhir_datetime(said.get("time")),
            "modality": modalities, "numberOfSeries": series_count,
            "numberOfInstances": total, "series": series_out}


def _more_series(study: dict, other: Mapping) -> None:
    """The series of ``other`` (the same study, as another report lists it) that ``study``
    does not hold, added with their counts; one listed by both stays as first listed."""
    held = {s["uid"] for s in study["series"]}
    added = [s for s in other["series"] if s["uid"] not in held]
    study["series"].extend(added)
    study["numberOfSeries"] += len(added)
    study["numberOfInstances"] += sum(s["numberOfInstances"] for s in added)
    study["modality"].extend(m for m in other["modality"] if m not in study["modality"])
    if study["numberOfInstances"]:
        study["status"] = "available"


def _wado_endpoint(link: Any, extras: dict[str, dict]) -> str | None:  # noqa: ANN401
    """The fullUrl of the Endpoint of an instance's link (CDA text reference): a WADO-URI
    link ('...wado?requestType=WADO&objectUID=...') is its service's address with the
    instance's UIDs, which the ImagingStudy holds, so one Endpoint per service; a DICOMweb
    (WADO-RS) link, its base before '/studies'. Any other link is no endpoint we can say."""
    link = _text(link) or ""
    if not re.match(r"https?://", link, re.IGNORECASE):
        return None
    base, _, query = link.partition("?")
    if re.search(r"(^|&)requestType=WADO(&|$)", query, re.IGNORECASE):
        kind = "dicom-wado-uri"
    elif "/studies/" in base:
        base, kind = base.split("/studies/", 1)[0], "dicom-wado-rs"
    else:
        return None
    url = full_url("endpoint", f"{kind}/{base}")
    extras.setdefault(url, {
        "resourceType": "Endpoint", "status": "active",
        "connectionType": {"system": ENDPOINT_TYPES, "code": kind},
        "payloadType": [{"text": "DICOM"}], "payloadMimeType": ["application/dicom"],
        "address": base})
    return url


def _attachment(entry: Mapping, base_url: str, withheld: bool = False) -> dict:
    """The document's content: its type, title and where to get the file, unless the file
    is withheld from the reader (it states an entry hidden from them): then no url, as the
    API's entries say has_file false and /documents answers NO_FILE. A url to a file the
    reader is refused read as a broken link, and named a file with something to hide."""
    kind, title = _code(entry.get("media_type")), _text(entry.get("display"))
    if withheld:  # R4 content is required, an empty attachment none: a word at least
        return {"contentType": kind, "title": title or (None if kind else NO_FILE)}
    return {"contentType": kind, "url": f"{base_url}/documents/{entry.get('id')}",
            "title": title}


NO_FILE = "original file not available"


def _attachment_digests(kept: Sequence[Mapping], resources: Mapping[int, dict],
                        files: Mapping[str, tuple[str, int]],
                        withheld: Collection[int]) -> None:
    """Attachment.hash (base64 SHA-1 of the data, as R4 defines it) and .size of each
    document's and report's file, from ``files`` (sha256 -> (SHA-1, size): read from the
    archive by dossiers/export.py ``attachment_digests``). A receiver checks the file it
    fetches from the url against them; without them a truncated download read as the
    report. Never for a file withheld from the reader (nothing of it is said)."""
    for e in kept:
        said = files.get(e.get("attachment_sha256") or "")
        if said is None or e["id"] in withheld:
            continue
        res = resources[e["id"]]
        forms = res.get("presentedForm") or [c.get("attachment") for c in res.get("content", ())]
        for attachment in forms:
            if isinstance(attachment, dict) and attachment.get("url"):
                attachment["hash"], attachment["size"] = said


DOCUMENT_KEY = "document|"  # how a document's entry key starts (normalizers: its id follows)


def _document_id(key: Any) -> dict | None:  # noqa: ANN401
    """A document's own id (its entry key 'document|root^extension': the CDA
    ClinicalDocument/id, an MDM's TXA-12) as DocumentReference.masterIdentifier, written as
    IHE MHD writes a uniqueId; None when it is no II (a bare number of a sender's,
    a PDF's digest): no system is invented."""
    text = _text(key)
    if not text or not text.startswith(DOCUMENT_KEY):
        return None
    return _entity_identifier(text[len(DOCUMENT_KEY):])


def _document_identifiers(entry: Mapping, details: Mapping,
                          withheld: bool = False) -> list[dict]:
    """The digest of the document's file (not for a reader it is withheld from: nothing
    of the file is said to them) and its setId."""
    out = []
    sha = None if withheld else _text(entry.get("attachment_sha256"))
    if sha and re.fullmatch(r"[0-9a-fA-F]{64}", sha):
        digest = base64.urlsafe_b64encode(bytes.fromhex(sha)).decode().rstrip("=")
        out.append({"system": RFC3986, "type": {"text": "sha256 of the content"},
                    "value": f"ni:///sha-256;{digest}"})
    set_id = _text(details.get("set_id"))
    if set_id:
        # as the masterIdentifier is written (an II of its root alone, an OID or a UUID, is
        # that URI under RFC 3986): a setId of a root alone, as the ANS examples send it,
        # was an identifier with no system, which no reader matches across versions
        said = _entity_identifier(set_id) or {"value": set_id}
        out.append({"type": {"text": "setId"}, **said})
    return out


def _provenances(provenance: Mapping[int, Sequence[Mapping]], urls: Mapping[int, str],
                 base_url: str, import_ids: bool = True) -> list[tuple[str, dict]]:
    """One Provenance per (import, relation): which import brought or confirmed which of the
    exported entries, from which sender; the import itself named (entity) only for an
    operator (``import_ids``): readers of the API never see our import ids."""
    groups: dict[tuple[int, str], dict[str, Any]] = {}
    for entry_id, links in provenance.items():
        if entry_id not in urls:
            continue
        for link in links:
            key = (link.get("import_id"), link.get("relation") or "created")
            group = groups.setdefault(key, {"targets": [], "recorded": [], "sources": set()})
            if urls[entry_id] not in group["targets"]:
                group["targets"].append(urls[entry_id])
            recorded = _instant_of(link.get("created_at"))
            if recorded:
                group["recorded"].append(recorded)
            if _text(link.get("source")):
                group["sources"].add(_text(link["source"]))
    out = []
    for (import_id, relation), group in sorted(groups.items(), key=lambda kv: (
            str(kv[0][0]), kv[0][1])):
        if not group["recorded"] or import_id is None:
            continue  # recorded is required: a link without its time is not exported
        sources = sorted(group["sources"]) or ["unknown sender"]
        # named after what it is about when import ids are not to be seen (a uuid of a small
        # integer is found back by trying them all)
        seed = f"{import_id}/{relation}" if import_ids else \
            f"{relation}/{min(group['recorded'])}/{','.join(group['targets'])}"
        out.append((full_url("provenance", seed), {
            "resourceType": "Provenance",
            "target": [{"reference": t} for t in group["targets"]],
            "recorded": min(group["recorded"]),
            "activity": {"text": _text(relation) or "created"},
            "agent": [{"type": {"text": "sender"}, "who": {"display": s}} for s in sources],
            "entity": [{"role": "source", "what": {
                "identifier": {"system": f"{base_url}/imports", "value": str(import_id)},
                "display": f"import {import_id}"}}] if import_ids else []}))
    return out


def _link(kept: Sequence[Mapping], resources: Mapping[int, dict], urls: Mapping[int, str],
          versions: Mapping[int, int]) -> None:
    """Links between the resources, each to a resource inside this Bundle. An entry's parent
    (parent_id) may be an earlier version of it (a result confirmed unchanged by a corrected
    report still names the report it came with): ``versions`` leads to the current one.
    Report -> its results (DiagnosticReport.result); document -> what was read from it
    (derivedFrom, evidence, report); an organism (an Observation) -> its susceptibility
    results, sent as a panel of their own (OBR-26/29, filed as a report whose parent is the
    organism) or directly under it (Observation.hasMember, as the HL7 laboratory report IG
    links an isolate to its susceptibilities)."""
    panels: dict[int, int] = {}  # a report's id -> the Observation it is about
    links = []
    for e in kept:
        parent_id = e.get("parent_id")
        parent_id = versions.get(parent_id, parent_id) if parent_id is not None else None
        if parent_id in resources and parent_id != e["id"]:
            links.append((e["id"], parent_id))
            if resources[e["id"]]["resourceType"] == "DiagnosticReport" \
                    and resources[parent_id]["resourceType"] == "Observation":
                panels[e["id"]] = parent_id
    for child_id, parent_id in links:
        parent, mine = resources[parent_id], resources[child_id]
        ref, me = {"reference": urls[parent_id]}, {"reference": urls[child_id]}
        if parent["resourceType"] == "DiagnosticReport" and mine["resourceType"] == "Observation":
            if not is_lab_result(mine):  # an AOE answer, a question: no result of the report
                continue
            parent.setdefault("result", []).append(me)
            if parent_id in panels and panels[parent_id] != child_id:
                resources[panels[parent_id]].setdefault("hasMember", []).append(me)
        elif parent["resourceType"] == "Observation" and mine["resourceType"] == "Observation":
            parent.setdefault("hasMember", []).append(me)
        elif parent["resourceType"] in ("DocumentReference", "DiagnosticReport"):
            if mine["resourceType"] in ("Observation", "MedicationStatement"):
                mine.setdefault("derivedFrom", []).append(ref)
            elif mine["resourceType"] in ("MedicationRequest", "MedicationDispense"):
                mine.setdefault("supportingInformation", []).append(ref)
            elif mine["resourceType"] == "Condition":
                mine.setdefault("evidence", []).append({"detail": [ref]})
            elif mine["resourceType"] == "Procedure":
                mine.setdefault("report", []).append(ref)
    _link_parts(kept, resources, urls)


def _link_parts(kept: Sequence[Mapping], resources: Mapping[int, dict],
                urls: Mapping[int, str]) -> None:
    """A CDA result's parts -> the result's Observation.hasMember, as an HL7 OBR-26 child
    panel is its organism's: the variant, reference sequence and exon of one gene (CR-GM),
    the size of an imaging finding, the items of a score (NIHSS). CDA files them under the
    document (parent_id), and details.parent_result names the result they are part of by
    its key: two genes' identical 'c.35G>A' are each their own gene's. A key naming a
    result of another code than the one said (the store gave that key to another entry)
    links nothing: a member is never guessed."""
    by_key = {str(e["key"]): e for e in kept if e.get("key")}
    for e in kept:
        details = _json(e.get("details"))
        said = details.get("parent_result") if isinstance(details, Mapping) else None
        if not isinstance(said, Mapping) or not _text(said.get("key")):
            continue  # HL7 OBR-26 says the organism, its report links it (_link)
        parent = by_key.get(str(said["key"])) or _same_result(kept, e, said)
        if parent is None or parent["id"] == e["id"] \
                or (_code(said.get("code")) or "") != (_code(parent.get("code")) or ""):
            continue
        whole, me = resources[parent["id"]], {"reference": urls[e["id"]]}
        if whole["resourceType"] != "Observation" or \
                resources[e["id"]]["resourceType"] != "Observation":
            continue
        members = whole.setdefault("hasMember", [])
        if me not in members:
            members.append(me)


def _same_result(kept: Sequence[Mapping], part: Mapping, said: Mapping) -> Mapping | None:
    """The result a part's parent_result states, when the store holds it under another key:
    the same gene result sent in two documents is one fact (dedupe level 4), filed under
    the first document's key, and the second document's parts name the second's. Found by
    what parent_result says of it (code, system, value) and the part's time, only when one
    result says so; else none (never a guess between two)."""
    code, value = _code(said.get("code")), _text(said.get("value"))
    if not code or not value:
        return None
    found = [e for e in kept if e is not part and _code(e.get("code")) == code
             and (_text(e.get("system")) or "") == (_text(said.get("system")) or "")
             and (_text(e.get("value")) or "")[:200] == value
             and e.get("effective") == part.get("effective")]
    return found[0] if len(found) == 1 else None


def _germ_keys(said: Any) -> set[tuple[str, ...]]:  # noqa: ANN401
    """What names an organism: ('code', system, code) of a coded one, ('text', words)."""
    out: set[tuple[str, ...]] = set()
    for item in _items(said):
        if not isinstance(item, Mapping):
            continue
        if _code(item.get("code")):
            # by its URI: the identification's value keeps the system as sent ('SCT'),
            # details.isolate as named on every channel ('SNOMED-CT')
            out.add(("code", system_uri(item.get("system")) or "", _code(item["code"]) or ""))
        for k in ("display", "text", "original_text"):
            if _text(item.get(k)):
                out.add(("text", (_text(item[k]) or "").casefold()))
    return out


def _link_isolates(kept: Sequence[Mapping], resources: Mapping[int, dict],
                   urls: Mapping[int, str], versions: Mapping[int, int],
                   isolates: dict[str, dict] | None = None) -> None:
    """A culture's results about one organism (details.isolate: its colony count, its
    antibiogram, grouped by OBX-4 sub-id or a CDA isolate organizer) are members of that
    organism's identification (Observation.hasMember, as the HL7 laboratory and
    microbiology IGs link an isolate to what was measured on it): the organism of the same
    report whose value names the same germ (by code, else by words). They stood side by
    side, and which antibiogram was whose was said nowhere in the Bundle."""
    def scope(e: Mapping) -> tuple:
        parent = e.get("parent_id")
        parent = versions.get(parent, parent) if parent is not None else None
        return ("parent", parent) if parent is not None else ("import", e.get("import_id"))

    organisms: dict[tuple, list[tuple[int, set]]] = {}
    for e in kept:
        if (e.get("system") or "", e.get("code") or "") not in _organism_codes():
            continue
        details = _json(e.get("details"))
        details = details if isinstance(details, Mapping) else {}
        keys = _germ_keys(details.get("coded_value")) | _germ_keys(details.get("value_code"))
        if _text(e.get("value")):
            keys.add(("text", (_text(e["value"]) or "").casefold()))
        organisms.setdefault(scope(e), []).append((e["id"], keys))
    if not organisms and isolates is None:
        return
    for e in kept:
        details = _json(e.get("details"))
        germ = details.get("isolate") if isinstance(details, Mapping) else None
        if not germ or resources[e["id"]]["resourceType"] != "Observation":
            continue
        wanted = _germ_keys(germ)
        coded = {k for k in wanted if k[0] == "code"}
        found = [i for i, keys in organisms.get(scope(e), []) if (coded or wanted) & keys
                 and i != e["id"]]
        me = {"reference": urls[e["id"]]}
        if not found and isolates is not None:
            _isolate_of(e, germ, scope(e), resources[e["id"]], isolates)["hasMember"].append(me)
            continue
        if len(found) != 1:  # two identifications of one germ: which one is unsaid
            continue
        members = resources[found[0]].setdefault("hasMember", [])
        if me not in members:
            members.append(me)


ISOLATE_CODE = {"text": "micro-organism isolated"}


def _isolate_of(entry: Mapping, germ: Any, scope: tuple, member: Mapping,  # noqa: ANN401
                isolates: dict[str, dict]) -> dict:
    """The Observation of an isolate that no identification result names: CI-SIS and IHE LAB
    isolate organizers give the germ as their specimen (details.isolate, with the isolate's
    id), not as an observation. One per isolate of a report, its value the germ, its members
    the results about it, labelled as they are; its code says what it is in words (the
    sender coded no observation)."""
    said = germ if isinstance(germ, Mapping) else {}
    name = _text(said.get("id")) or "|".join(sorted(map(str, _germ_keys(germ))))
    url = full_url("isolate", f"{scope}/{name}")
    held = isolates.get(url)
    if held is None:
        held = isolates[url] = {
            "resourceType": "Observation", "status": member.get("status") or "unknown",
            "category": member.get("category") or [], "code": dict(ISOLATE_CODE),
            "subject": member.get("subject"),
            "effectiveDateTime": _effective_start(member),
            "valueCodeableConcept": _coded_concept(germ, "urn:dmp") or {"text": "isolate"},
            "identifier": [{"value": _text(said.get("id"))}] if _text(said.get("id")) else [],
            "hasMember": []}
    labels = held.setdefault("meta", {}).setdefault("security", [])
    for label in (member.get("meta") or {}).get("security") or ():
        if label not in labels:  # a masked result's organism is as masked
            labels.append(label)
    return held


def _bundle_entry(url: str, resource: dict) -> dict:
    """fullUrl and resource, whose id is the uuid of its fullUrl (resourceType, id first)."""
    rest = {k: v for k, v in resource.items() if k not in ("resourceType", "id")}
    return {"fullUrl": url, "resource": {"resourceType": resource["resourceType"],
                                         "id": url.removeprefix("urn:uuid:"), **rest}}


def _link_orders(kept: Sequence[Mapping], resources: Mapping[int, dict],
                 versions: Mapping[int, int], extras: Mapping[str, dict]) -> None:
    """The orders a document answers (its ServiceRequests, DocumentReference.context
    .related: R4 gives a DocumentReference no basedOn) -> basedOn of the reports and lab
    results read from it, as R4 DiagnosticReport and Observation say it. Only the
    DocumentReference pointed at the CR-BIO's order: a reader of the results (a lab
    Observation is what FR Core and IPS look at) could not find what was prescribed nor by
    whom. An order the report already names (HL7v2 OBR) is kept, the document's added."""
    for e in kept:
        parent = e.get("parent_id")
        parent = versions.get(parent, parent) if parent is not None else None
        mine = resources[e["id"]]
        if parent not in resources or parent == e["id"] or \
                resources[parent]["resourceType"] != "DocumentReference" or not (
                    mine["resourceType"] == "DiagnosticReport" or
                    (e.get("type") == LAB_RESULT and is_lab_result(mine))):
            continue
        related = (resources[parent].get("context") or {}).get("related") or ()
        for ref in related:
            if (extras.get(ref.get("reference") or "") or {}).get("resourceType") \
                    == "ServiceRequest" and ref not in mine.get("basedOn", ()):
                mine.setdefault("basedOn", []).append(dict(ref))


_ENCOUNTER_DIAGNOSIS = {"coding": [{
    "system": "http://terminology.hl7.org/CodeSystem/condition-category",
    "code": "encounter-diagnosis", "display": "Encounter Diagnosis"}]}


def _link_visits(kept: Sequence[Mapping], resources: Mapping[int, dict],
                 urls: Mapping[int, str]) -> None:
    """A problem diagnosed at a visit, or that the visit was for (details.visit: the
    encounter entry's key and the role, C-CDA Encounter Diagnosis or an RSON problem) ->
    Condition.encounter, and the Encounter's diagnosis or reasonReference (R4). The store
    said it, the Bundle did not: the diagnosis read as a problem found anywhere. An
    encounter the Bundle does not hold (masked, superseded) links nothing."""
    by_key = {str(e["key"]): e["id"] for e in kept if e.get("key")}
    for e in kept:
        details = _json(e.get("details"))
        visit = details.get("visit") if isinstance(details, Mapping) else None
        if not isinstance(visit, Mapping) or not _text(visit.get("key")):
            continue
        found = by_key.get(str(visit["key"]))
        mine = resources[e["id"]]
        if found is None or found == e["id"] or mine["resourceType"] != "Condition" or \
                resources[found]["resourceType"] != "Encounter":
            continue
        mine["encounter"] = {"reference": urls[found]}
        me = {"reference": urls[e["id"]]}
        if visit.get("role") == "reason":
            resources[found].setdefault("reasonReference", []).append(me)
        else:  # made at the visit: R4 condition-category says so
            resources[found].setdefault("diagnosis", []).append({"condition": me})
            mine.setdefault("category", []).append(_ENCOUNTER_DIAGNOSIS)


# Where R4 lets a resource name what it rests on: (element, wraps in evidence.detail,
# only documents); R4 Procedure.report and Observation.derivedFrom take a DocumentReference,
# not an act; the others any resource
_REFERENCED_BY = {"DocumentReference": ("context.related", False),
                  "Procedure": ("report", True), "Observation": ("derivedFrom", True),
                  "Condition": ("evidence", False), "MedicationStatement": ("derivedFrom", False),
                  "MedicationRequest": ("supportingInformation", False),
                  "MedicationDispense": ("supportingInformation", False)}


def _link_references(kept: Sequence[Mapping], resources: Mapping[int, dict],
                     extras: dict[str, dict], subject: dict, base_url: str) -> None:
    """What a fact or a document refers to (details.external_references, CDA
    act.reference: a procedure's report, the advance directives a DLU summarises, the
    guideline an IPS-FR problem follows, a document's external document) -> a reference
    where R4 gives one a place. A reference that says where it is (a URL) is a
    DocumentReference of its own, its attachment's url, as R4 says a document found at an
    address; one by id alone a logical reference by identifier. They were dropped: the
    dossier's reader could not find the document a fact rests on. Never fetched."""
    for e in kept:
        details = _json(e.get("details"))
        said = details.get("external_references") if isinstance(details, Mapping) else None
        mine = resources[e["id"]]
        where = _REFERENCED_BY.get(mine["resourceType"])
        if not isinstance(said, list) or where is None:
            continue
        element, documents_only = where
        for ref in said:
            if not isinstance(ref, Mapping):
                continue
            if documents_only and ref.get("kind") != "externalDocument" and \
                    not _text(ref.get("url")):
                continue
            found = _external_reference(ref, e, details, subject, base_url, extras)
            if found is None:
                continue
            if element == "context.related":
                mine.setdefault("context", {}).setdefault("related", []).append(found)
            elif element == "evidence":
                mine.setdefault("evidence", []).append({"detail": [found]})
            else:
                mine.setdefault(element, []).append(found)


def _link_prescriptions(kept: Sequence[Mapping], resources: Mapping[int, dict],
                        extras: dict[str, dict], subject: dict, base_url: str) -> None:
    """The prescription a dispense fulfils (details.prescription, CDA eDISP / IHE Pharm
    DIS: the prescription item's id, the prescription document by XCRPT) -> the
    MedicationDispense's authorizingPrescription (the MedicationRequest by its identifier)
    and supportingInformation (the document); a MedicationStatement's basedOn and
    derivedFrom. It was read by the CDA round and dropped here: a pharmacist's dispense
    named no prescription."""
    elements = {"MedicationDispense": ("authorizingPrescription", "supportingInformation"),
                "MedicationStatement": ("basedOn", "derivedFrom")}
    for e in kept:
        details = _json(e.get("details"))
        said = details.get("prescription") if isinstance(details, Mapping) else None
        mine = resources[e["id"]]
        if not isinstance(said, Mapping) or mine["resourceType"] not in elements:
            continue
        based_on, derived_from = elements[mine["resourceType"]]
        item = _entity_identifier(said.get("item"))
        if item is not None:
            mine.setdefault(based_on, []).append({"type": "MedicationRequest",
                                                  "identifier": item})
        for ref in said.get("documents") or ():
            found = _external_reference(ref, e, details, subject, base_url, extras) \
                if isinstance(ref, Mapping) else None
            if found is not None and found not in mine.get(derived_from, ()):
                mine.setdefault(derived_from, []).append(found)


def _external_reference(ref: Mapping, entry: Mapping, details: Mapping, subject: dict,
                        base_url: str, extras: dict[str, dict]) -> dict | None:
    """One act.reference as a Reference: with a URL, to a DocumentReference added to
    ``extras`` (one per id and URL, with the labels of the entries that name it); by id
    alone, logical (typed DocumentReference for an externalDocument)."""
    identifier = _entity_identifier(ref.get("id"))
    url, text = _text(ref.get("url")), _text(ref.get("text"))
    code = ref.get("code") if isinstance(ref.get("code"), Mapping) else {}
    words = text or _text(code.get("display"))
    if url:
        key = full_url("external-document", f"{ref.get('id') or ''}|{url}")
        held = extras.setdefault(key, {
            "resourceType": "DocumentReference", "meta": {"security": []},
            "identifier": [identifier] if identifier else [], "status": "current",
            "type": _said_concept(code.get("code"), code.get("system"), code.get("display"),
                                  base_url), "subject": subject, "description": words,
            "content": [{"attachment": {"url": url, "title": words}}]})
        for label in _security(entry, details):
            if label not in held["meta"]["security"]:
                held["meta"]["security"].append(label)
        return {"reference": key, "display": words}
    if identifier is None:
        return {"display": words} if words else None
    kind = "DocumentReference" if ref.get("kind") == "externalDocument" else None
    return {"type": kind, "identifier": identifier, "display": words}


def _link_groups(kept: Sequence[Mapping], resources: Mapping[int, dict],
                 urls: Mapping[int, str], versions: Mapping[int, int],
                 extras: dict[str, dict], subject: dict, base_url: str) -> None:
    """Measurements an organizer says what they are of (details.group: IHE Eye Care /
    CI-SIS OPH-BRE 'lentilles prescrites' vs 'lentilles délivrées', a visual acuity 'best
    corrected' by its qualifier) -> members of one grouping Observation per organizer
    (Observation.hasMember, FHIR's own way of grouping measurements: the code is the
    organizer's, its qualifiers components). The same LOINC sphere power prescribed and
    delivered were two Observations nothing told apart; a reader now finds which is which
    by the group that has it, a panel reader shows them under it. One group per document
    (the scope isolates use) and group as sent."""
    groups: dict[tuple, dict] = {}
    for e in kept:
        details = _json(e.get("details"))
        group = details.get("group") if isinstance(details, Mapping) else None
        if not isinstance(group, Mapping) or resources[e["id"]]["resourceType"] != \
                "Observation":
            continue
        parent = e.get("parent_id")
        parent = versions.get(parent, parent) if parent is not None else None
        scope = ("parent", parent) if parent is not None else ("import", e.get("import_id"))
        key = (scope, json.dumps(group, sort_keys=True, default=str))
        found = groups.get(key)
        if found is None:
            url = full_url("group", f"{scope}|{key[1]}")
            found = groups[key] = {
                "resourceType": "Observation",
                "status": resources[e["id"]].get("status") or "final",
                "code": _said_concept(group.get("code"), group.get("system"),
                                      group.get("display"), base_url, group.get("text"))
                or {"text": "group"},
                "subject": subject,
                "effectiveDateTime": _effective_start(resources[e["id"]]),
                "component": _group_components(group, base_url), "hasMember": [],
                "meta": {"security": []}}
            extras[url] = found
        found["hasMember"].append({"reference": urls[e["id"]]})
        if resources[e["id"]].get("status") != found["status"]:
            found["status"] = "unknown"  # members of several statuses: none is the group's
        for label in (resources[e["id"]].get("meta") or {}).get("security") or ():
            if label not in found["meta"]["security"]:
                found["meta"]["security"].append(label)


def _group_components(group: Mapping, base_url: str) -> list[dict]:
    """The qualifiers of a group's code ({name, value}: 'acuité visuelle observée' =
    'meilleure acuité visuelle corrigée') as components of its Observation."""
    out = []
    for q in group.get("qualifiers") or ():
        if not isinstance(q, Mapping):
            continue
        name = q.get("name") if isinstance(q.get("name"), Mapping) else {}
        value = q.get("value") if isinstance(q.get("value"), Mapping) else {}
        concept = _said_concept(value.get("code"), value.get("system"), value.get("display"),
                                base_url, value.get("text"))
        code = _said_concept(name.get("code"), name.get("system"), name.get("display"),
                             base_url, name.get("text"))
        if concept and code:
            out.append({"code": code, "valueCodeableConcept": concept})
    return out


VITAL_SIGN = "vital_sign"
_UNKNOWN_VALUE = {"coding": [{"system": DATA_ABSENT, "code": "unknown",
                              "display": "Unknown"}]}


def _vital_signs_absent(kept: Sequence[Mapping], resources: Mapping[int, dict]) -> None:
    """R4 requires every vital sign to meet its vitalsigns profile, whose vs-2 says: no
    component nor member, then a value or a dataAbsentReason. A vital sign sent with no
    value and no reason (a CDA observation without its value element: a weight not taken)
    was an Observation the validator rejected; it says 'unknown' now, which is all the
    sender said. Checked once the members are linked (a blood pressure panel has its two
    measurements as members and needs no value of its own); never for one in error."""
    for e in kept:
        res = resources[e["id"]]
        if e.get("type") != VITAL_SIGN or res["resourceType"] != "Observation" or \
                res.get("status") == "entered-in-error" or res.get("component") or \
                res.get("hasMember") or "dataAbsentReason" in res or \
                any(k.startswith("value") and v for k, v in res.items()):
            continue
        res["dataAbsentReason"] = json.loads(json.dumps(_UNKNOWN_VALUE))


VITAL_SIGNS_PROFILE = "http://hl7.org/fhir/StructureDefinition/vitalsigns"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"


def _other_values_label(entry: Mapping) -> str:
    """What the note of an observation's further values says they were: OBX-5 repetitions,
    or a CDA observation's value elements after its first (a CDA entry's key starts 'cda|':
    normalizers/cda/); saying 'OBX-5' of a CDA document named what it never had."""
    return OTHER_CDA_VALUES if str(entry.get("key") or "").startswith("cda|") \
        else OTHER_VALUES


def _observed_period(res: dict, start: str | None, details: Mapping) -> None:
    """An observation made over a period (CDA effectiveTime low and high: a 24-hour urine
    from 08:00 to 08:00 the next day, a smoker from 1995 to 2015) as effectivePeriod; the
    end (details.period_high) was dropped, a day's collection read as an instant."""
    end = fhir_datetime(details.get("period_high"))
    if start and end:
        res.pop("effectiveDateTime", None)
        res["effectivePeriod"] = {"start": start, "end": end}


def _effective_start(res: Mapping) -> str | None:
    """When an Observation was made: its effectiveDateTime, else its period's start."""
    period = res.get("effectivePeriod")
    return res.get("effectiveDateTime") or \
        (period.get("start") if isinstance(period, Mapping) else None)


def _vital_sign_period(res: dict) -> None:
    """A vital sign known to the year or the month ('2024': a weight a CDA history gives by
    year) as effectivePeriod from and to that year or month. R4's vitalsigns profile (vs-1)
    wants an effectiveDateTime precise to the day, and a day we do not hold is not
    invented: a Period of the year says 'during 2024', all the sender said."""
    when = res.get("effectiveDateTime")
    if when and len(when) < len("YYYY-MM-DD"):
        del res["effectiveDateTime"]
        res["effectivePeriod"] = {"start": when, "end": when}


def _quantity_of_vital_signs(value: Any) -> bool:  # noqa: ANN401
    """vitalsigns' valueQuantity: a number with its unit as UCUM (system and code)."""
    return isinstance(value, Mapping) and "value" in value and bool(value.get("unit")) \
        and value.get("system") == UCUM and bool(value.get("code"))


def _meets_vital_signs(res: Mapping) -> bool:
    """Whether an Observation meets R4's vitalsigns profile, checked as its rules say:
    category vital-signs, subject, effective (vs-1: a dateTime to the day), a value that is
    a UCUM Quantity alone, a value or a reason unless components or members (vs-2), each
    component a UCUM Quantity or a reason (vs-3). A profile claimed and not met fails the
    receiver's validation: a vital sign written as words, or in a unit outside UCUM, claims
    none."""
    if not any(c.get("system") == OBSERVATION_CATEGORY and c.get("code") == "vital-signs"
               for cat in res.get("category", ()) for c in cat.get("coding", ())):
        return False
    when = res.get("effectiveDateTime")
    if not res.get("subject") or not (res.get("effectivePeriod") or (
            when and len(when) >= len("YYYY-MM-DD"))):
        return False
    values = [k for k in res if k.startswith("value")]
    if values != ([] if not values else ["valueQuantity"]) or (
            values and not _quantity_of_vital_signs(res["valueQuantity"])):
        return False
    if not values and "dataAbsentReason" not in res and not res.get("component") \
            and not res.get("hasMember"):
        return False
    for part in res.get("component", ()):
        said = [k for k in part if k.startswith("value")]
        if said != ["valueQuantity"] and not (not said and "dataAbsentReason" in part):
            return False
        if said and not _quantity_of_vital_signs(part["valueQuantity"]):
            return False
    return True


def _vital_signs_profiles(kept: Sequence[Mapping], resources: Mapping[int, dict],
                          urls: Mapping[int, str]) -> None:
    """Each vital sign with its effective time as R4 allows a vital sign's, and claiming
    the vitalsigns profile (meta.profile) when it meets it, and so do its members (the
    profile's hasMember are vital signs: a blood pressure panel whose systolic is written
    in words claims nothing). FR Core's vital-sign profiles are not claimed: their units
    and codes are narrower than what senders send us, and are not checked here."""
    met: dict[str, dict] = {}
    for e in kept:
        res = resources[e["id"]]
        if e.get("type") != VITAL_SIGN or res["resourceType"] != "Observation":
            continue
        _vital_sign_period(res)
        if _meets_vital_signs(res):
            met[urls[e["id"]]] = res
    for res in met.values():
        if all(m.get("reference") in met for m in res.get("hasMember", ())):
            res.setdefault("meta", {})["profile"] = [VITAL_SIGNS_PROFILE]


def _exported(entry: Mapping) -> bool:
    """Current, not withdrawn, not superseded (the caller should have filtered: defensive)."""
    current = entry.get("current", True)
    return bool(current) and entry.get("status") != "withdrawn" \
        and entry.get("superseded_by") is None and entry.get("id") is not None


def to_bundle(patient: Mapping, entries: Sequence[Mapping], *,
              provenance: Mapping[int, Sequence[Mapping]] | None = None,
              versions: Mapping[int, int] | None = None, import_ids: bool = True,
              base_url: str = "urn:dmp", timestamp: datetime | None = None,
              identifiers: Sequence[Mapping] = (), withheld: Collection[int] = (),
              files: Mapping[str, tuple[str, int]] | None = None) -> dict:
    """The dossier as a FHIR R4 Bundle of type 'collection' (see the module docstring for
    why and for every mapping decision). ``patient`` is a row of ``patients``, ``entries``
    rows of ``entries`` already filtered for the reader (masking is NOT applied here);
    ``provenance`` maps entry ids to their rows of ``provenance``; ``versions`` the ids of
    earlier versions that entries name as their parent to the id of that parent's current
    version (dossiers/export.py ``load_parent_versions``); ``import_ids`` False leaves our
    import ids out of the Provenances (a reader's export); ``timestamp`` (given by
    the caller, so that the same dossier exports the same) becomes Bundle.timestamp;
    ``identifiers`` the patient's rows of ``patient_identifiers`` (local ids: the IPP);
    ``withheld`` the ids of entries whose original file the reader may not have
    (dossiers/access.py ``files_withheld``: it states an entry hidden from them);
    ``files`` the SHA-1 and size of archived files by sha256 (dossiers/export.py
    ``attachment_digests``) for the attachments' hash and size."""
    base_url = base_url.rstrip("/")
    patient_url = full_url("patient", patient.get("id"))
    subject = {"reference": patient_url}
    kept = [e for e in entries if _exported(e)]
    urls = {e["id"]: full_url("entry", e["id"]) for e in kept}
    resources: dict[int, dict] = {}
    extras: dict[str, dict] = {}
    for e in kept:
        resources[e["id"]] = _entry_resource(e, resource_type(e.get("type") or "",
                                                           e.get("details")),
                                             subject, base_url, extras,
                                             e["id"] in withheld)
    _link(kept, resources, urls, versions or {})
    _link_isolates(kept, resources, urls, versions or {}, extras)
    _link_groups(kept, resources, urls, versions or {}, extras, subject, base_url)
    _link_orders(kept, resources, versions or {}, extras)
    _link_visits(kept, resources, urls)
    _link_references(kept, resources, extras, subject, base_url)
    _link_prescriptions(kept, resources, extras, subject, base_url)
    _vital_signs_absent(kept, resources)
    _vital_signs_profiles(kept, resources, urls)
    _attachment_digests(kept, resources, files or {}, withheld)
    _local_interpretations(kept, resources, provenance or {}, base_url)
    bundle_entries = [_bundle_entry(patient_url, _patient_resource(patient, identifiers))]
    bundle_entries += [_bundle_entry(urls[e["id"]], resources[e["id"]]) for e in kept]
    bundle_entries += [_bundle_entry(full_url("device", e["id"]), _device(e, subject, base_url))
                       for e in kept if resources[e["id"]]["resourceType"] == "DeviceUseStatement"]
    bundle_entries += [_bundle_entry(url, res) for url, res in extras.items()]
    bundle_entries += [_bundle_entry(url, res)
                       for url, res in _provenances(provenance or {}, urls, base_url,
                                                    import_ids)]
    bundle = {"resourceType": "Bundle",
              "id": str(uuid.uuid5(NAMESPACE, f"bundle/{patient.get('id')}")),
              "type": "collection",
              "timestamp": _instant_of(timestamp) if timestamp else None,
              "entry": bundle_entries}
    return _clean(bundle)
