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
  base_url; a generic local one (table 0396 'L': fhir_local_systems.csv) that of the source
  that brought the entry, ``<base_url>/CodeSystem/L/<source>`` (two labs' 'GLY' are two).
  Unmapped local codes are exported as they are, with their local system; a local code we
  mapped to LOINC follows the LOINC coding, a CIS product its ATC.
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
  every masked resource, whose v3-Confidentiality code is then at least R (one code: the
  sender's N raised, its V kept); routing and acknowledgement flags (DESTDMP, ACK_*) are no
  labels. A file the reader may not have (it states an entry hidden from them:
  ``withheld``) has no url nor digest. A document or report by an organization alone (an
  idNatSt author) names it as an Organization with its name; a setId of a root alone is an
  RFC 3986 URI, as the masterIdentifier.
- Numbers: one beyond a float (a 400-digit term) stays the text it was sent as: JSON has
  no Infinity, and the API writes strict JSON. A result's value and its reference range's
  limits keep the digits the sender wrote ('5.40', not 5.4: R4 decimal precision is
  significant): a float that remembers them (decimals.py ``SentDecimal``), written so by
  ``bundle_json``, the one JSON writer of the CLI's and the API's export.
- A report read from an imaging PDF is coded by its DICOM modality (DCM): the Coding's
  display is DICOM's (fhir_dicom_modalities.csv, CID 29), the exam's title the text.
  ORPHAcodes (1.2.250.1.213.2.49) under https://www.orpha.net, the URI HL7's Terminology
  Authority endorses for Orphanet.
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

from dossiers.fhir.bundle import to_bundle
from dossiers.fhir.codings import fhir_status, resource_type, system_uri
from dossiers.fhir.common import full_url
from dossiers.fhir.dates import fhir_date, fhir_datetime, fhir_instant
from dossiers.fhir.labs import is_lab_result
from dossiers.fhir.masking import masking_of
from dossiers.fhir.units import is_ucum

__all__ = [
    "fhir_date",
    "fhir_datetime",
    "fhir_instant",
    "fhir_status",
    "full_url",
    "is_lab_result",
    "is_ucum",
    "masking_of",
    "resource_type",
    "system_uri",
    "to_bundle",
]
