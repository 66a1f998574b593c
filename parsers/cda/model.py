"""The parsed form of one CDA R2 document: small dataclasses, faithful to the XML.

Why faithful rather than convenient: normalizers decide what a code, a date or a value means
(LOINC mapping, UCUM units, time zones, masking); the parser only says what the sender wrote.
So numbers, dates and booleans stay the strings of the document ("0.62", "20210104160527+0100",
"true"); a few read-only helpers (``PQ.number``, ``BL.bool``) convert on request and never
raise. Absent elements are ``None`` or empty lists; absent attributes are ''.

Every element that later code may need to point at (sections, entries, clinical statements,
values, header participations) keeps ``path``: an XPath-like location such as
``/ClinicalDocument/component/structuredBody/component[3]/section/entry[2]/observation/value``
(an index only where a name repeats among its siblings, as XPath needs; elements outside the
HL7 v3 namespace keep a prefix, e.g. ``sdtc:id``). Paths start at ``/ClinicalDocument`` even when
the document came inside the CI-SIS self-presenting XSL envelope (``Document.envelope``).

Data types follow the HL7 v3 data types R1 used by CDA R2: every typed value is a ``Value``
subclass carrying the raw ``xsi_type`` as written (``"c:PQ"``), the resolved ``type``
(``"PQ"``, or the schema's type for that element when xsi:type is absent, e.g. ``IVL_TS`` for
an observation's effectiveTime even when only ``@value`` is given), and ``null_flavor``.
"""

from __future__ import annotations

import base64
import binascii
import zlib
from collections.abc import Callable
from dataclasses import MISSING, dataclass, field, fields
from decimal import Decimal, InvalidOperation
from typing import Any

from parsers.cda.errors import CDA_BAD_COMPRESSION, CDA_TOO_LARGE, CdaParseError, ParseWarning

__all__ = [
    "ED", "II", "INT", "IVL", "PIVL_TS", "PQ", "PQR", "REAL", "RTO", "ST", "SXPR_TS", "TS",
    "Act", "Addr", "AnyValue", "Authenticator", "Author", "BL", "CD", "ClinicalStatement",
    "Custodian", "Document", "EIVL_TS", "EncompassingEncounter", "Encounter", "Entity", "Entry",
    "EntryRelationship", "Extension", "HealthCareFacility", "Header", "NamePart", "NonXmlBody",
    "Observation", "ObservationMedia", "Organization", "Organizer", "PN", "ParseWarning",
    "Participation", "Person", "Place", "Procedure", "Product", "RecordTarget", "Reference",
    "ReferenceRange", "RegionOfInterest", "RelatedDocument", "Section", "ServiceEvent",
    "SubstanceAdministration", "Supply", "TEL", "Value",
]


# -- data types ---------------------------------------------------------------------------------
@dataclass(slots=True, kw_only=True)
class Value:
    """Base of every typed value (ANY in HL7 v3)."""

    type: str = ""
    xsi_type: str = ""
    null_flavor: str = ""
    path: str = ""


def _decimal(text: str) -> Decimal | None:
    try:
        d = Decimal(text.strip())
    except (InvalidOperation, ValueError):
        return None
    return d if d.is_finite() else None


@dataclass(slots=True, kw_only=True)
class II(Value):
    """Instance identifier: OID/UUID ``root`` plus optional ``extension``."""

    type: str = "II"
    root: str = ""
    extension: str = ""
    assigning_authority_name: str = ""

    @property
    def key(self) -> str:
        """'root^extension' (or 'root' alone): the same key normalizers/cda_header.py uses."""
        return f"{self.root}^{self.extension}" if self.extension else self.root


@dataclass(slots=True, kw_only=True)
class CD(Value):
    """Coded value (CD, and its restrictions CE, CV, CO, CS: ``type`` says which was sent).

    ``original_text`` is the text written inside originalText; ``original_text_reference`` its
    ``reference/@value`` ('#ID' into the section narrative, see Section.narrative_ids)."""

    type: str = "CD"
    code: str = ""
    code_system: str = ""
    code_system_name: str = ""
    code_system_version: str = ""
    display: str = ""
    original_text: str = ""
    original_text_reference: str = ""
    value_set: str = ""  # sdtc:valueSet: the value set (CI-SIS: a JDV's OID) the code is from
    value_set_version: str = ""  # sdtc:valueSetVersion
    translations: list[CD] = field(default_factory=list)
    qualifiers: list[tuple[CD | None, CD | None]] = field(default_factory=list)  # (name, value)


@dataclass(slots=True, kw_only=True)
class PQR(Value):
    """A translation of a physical quantity into another unit system (value + coded unit)."""

    type: str = "PQR"
    value: str = ""
    code: str = ""
    code_system: str = ""
    code_system_name: str = ""
    display: str = ""
    original_text: str = ""  # the unit as the sender wrote it (C-CDA non-UCUM units)

    @property
    def number(self) -> Decimal | None:
        return _decimal(self.value)


@dataclass(slots=True, kw_only=True)
class PQ(Value):
    """Physical quantity: ``value`` as written and its (UCUM, normally) ``unit``."""

    type: str = "PQ"
    value: str = ""
    unit: str = ""
    translations: list[PQR] = field(default_factory=list)
    # not in PQ by the CDA R2 schema (data types R2 have it), written by senders to say a
    # quantity in words when it is a nullFlavor ('inférieur au seuil de détection')
    original_text: str = ""
    original_text_reference: str = ""

    @property
    def number(self) -> Decimal | None:
        """The value as a Decimal (precision kept: '5.60' stays 5.60), None when not a number."""
        return _decimal(self.value)


@dataclass(slots=True, kw_only=True)
class INT(Value):
    type: str = "INT"
    value: str = ""

    @property
    def number(self) -> int | None:
        try:
            return int(self.value.strip())
        except ValueError:
            return None


@dataclass(slots=True, kw_only=True)
class REAL(Value):
    type: str = "REAL"
    value: str = ""

    @property
    def number(self) -> Decimal | None:
        return _decimal(self.value)


@dataclass(slots=True, kw_only=True)
class MO(Value):
    """Monetary amount."""

    type: str = "MO"
    value: str = ""
    currency: str = ""

    @property
    def number(self) -> Decimal | None:
        return _decimal(self.value)


@dataclass(slots=True, kw_only=True)
class BL(Value):
    type: str = "BL"
    value: str = ""

    @property
    def bool(self) -> bool | None:
        return {"true": True, "false": False}.get(self.value.strip())


@dataclass(slots=True, kw_only=True)
class TS(Value):
    """Point in time as written: 'YYYY[MM[DD[HH[MM[SS[.S+]]]]]][+/-ZZZZ]' (precision kept)."""

    type: str = "TS"
    value: str = ""


@dataclass(slots=True, kw_only=True)
class ST(Value):
    """Character string (also SC; ``code`` holds SC's code when present). ``reference`` is
    a reference/@value the sender put in it (invalid for ST, which is ED without one, but
    written so for a result given in the narrative: '<value xsi:type="ST"><reference
    value="#r1"/></value>'); read as ED's."""

    type: str = "ST"
    text: str = ""
    code: CD | None = None
    reference: str = ""


@dataclass(slots=True, kw_only=True)
class ED(Value):
    """Encapsulated data. ``text`` is the element's content as sent (base64 text when
    ``representation`` is B64; decode it with ``data()``); ``reference`` is reference/@value."""

    type: str = "ED"
    media_type: str = ""
    representation: str = ""  # '' means TXT, the default
    compression: str = ""
    language: str = ""
    text: str = ""
    reference: str = ""
    charset: str = ""  # IANA name of the text's character set, as sent

    def data(self) -> bytes | None:
        """The B64 content decoded (padding tolerated), None when not B64 or not decodable."""
        if self.representation != "B64":
            return None
        try:
            return b64decode_lenient(self.text)[0]
        except ValueError:
            return None

    def decompressed(self, max_bytes: int = 50 * 1024 * 1024) -> bytes | None:
        """``data()`` inflated per ``compression`` (see ``inflate``); None when not B64 or
        not decodable. Raises CdaParseError as ``inflate`` does."""
        data = self.data()
        if data is None or not self.compression:
            return data
        return inflate(data, self.compression, max_bytes, self.path)


@dataclass(slots=True, kw_only=True)
class IVL(Value):
    """Interval (IVL_TS, IVL_PQ, IVL_INT, IVL_REAL): ``low``/``high`` are TS/PQ/INT/REAL.

    Inclusive flags are the ``inclusive`` attributes of low/high (the standard's default, true,
    when absent). ``value`` (and ``unit``) hold an interval given as a single point
    (``<effectiveTime value="20210104"/>``, very common for observations)."""

    type: str = "IVL_TS"
    value: str = ""
    unit: str = ""
    operator: str = ""
    low: Value | None = None
    high: Value | None = None
    center: Value | None = None
    width: Value | None = None
    low_inclusive: bool = True
    high_inclusive: bool = True


@dataclass(slots=True, kw_only=True)
class PIVL_TS(Value):  # noqa: N801 - the HL7 type name
    """Periodic interval (a frequency: 'every 8 h', 'each morning'). ``value``: the point
    in time PIVL_TS inherits from TS (via SXCM_TS), which senders use to type a plain date
    with it."""

    type: str = "PIVL_TS"
    value: str = ""
    operator: str = ""
    alignment: str = ""
    institution_specified: str = ""
    phase: IVL | None = None
    period: PQ | IVL | None = None  # IVL_PQ when the sender gives a range (every 4-6 h)


@dataclass(slots=True, kw_only=True)
class EIVL_TS(Value):  # noqa: N801
    """Event-related interval ('before breakfast'). ``value``: the point in time EIVL_TS
    inherits from TS (the CI-SIS PPS example types the date of a meeting so)."""

    type: str = "EIVL_TS"
    value: str = ""
    operator: str = ""
    event: CD | None = None
    offset: IVL | None = None


@dataclass(slots=True, kw_only=True)
class SXPR_TS(Value):  # noqa: N801
    """Set expression of times: ``comps`` combined by each comp's ``operator``."""

    type: str = "SXPR_TS"
    operator: str = ""
    comps: list[Value] = field(default_factory=list)


@dataclass(slots=True, kw_only=True)
class RTO(Value):
    """Ratio (RTO_PQ_PQ by default): ``numerator`` / ``denominator``."""

    type: str = "RTO"
    numerator: Value | None = None
    denominator: Value | None = None


@dataclass(slots=True, kw_only=True)
class AnyValue(Value):
    """A value of a type this parser does not model: attributes and text kept as sent."""

    type: str = ""
    attributes: dict[str, str] = field(default_factory=dict)
    text: str = ""


@dataclass(slots=True)
class TEL:
    value: str = ""  # 'tel:...', 'mailto:...'
    use: str = ""
    null_flavor: str = ""


@dataclass(slots=True)
class NamePart:
    value: str = ""
    qualifier: str = ""  # e.g. BR (birth name), CL (name of usage, "nom utilisé"), SP...


@dataclass(slots=True)
class PN:
    """A person (or organization) name with its parts in document order per kind.

    French identity: ``family`` with qualifier BR is the birth name, SP/CL the usage name;
    the first ``given`` is the list of birth first names, a given with qualifier BR the first
    one of them, CL the usual first name."""

    use: str = ""
    null_flavor: str = ""
    family: list[NamePart] = field(default_factory=list)
    given: list[NamePart] = field(default_factory=list)
    prefix: list[NamePart] = field(default_factory=list)
    suffix: list[NamePart] = field(default_factory=list)
    text: str = ""  # free text directly inside <name> (unstructured names)
    valid_until: str = ""  # validTime/high@value: a name that ended (a former name)

    def families(self, qualifier: str | None = None) -> list[str]:
        return [p.value for p in self.family if qualifier is None or p.qualifier == qualifier]


@dataclass(slots=True)
class Addr:
    use: str = ""
    null_flavor: str = ""
    parts: list[tuple[str, str]] = field(default_factory=list)  # (element name, text) in order
    text: str = ""  # free text directly inside <addr>

    def get(self, name: str) -> str:
        """The first part of that name ('city', 'postalCode'...), '' when absent."""
        for n, v in self.parts:
            if n == name:
                return v
        return ""


@dataclass(slots=True)
class Extension:
    """An element outside the HL7 v3 namespace, kept as sent: sdtc: (urn:hl7-org:sdtc, e.g.
    sdtc:id, sdtc:birthTime, sdtc:raceCode), pharm: (IHE pharmacy), lab: (IHE lab)..."""

    namespace: str
    name: str  # local name
    attributes: dict[str, str] = field(default_factory=dict)
    text: str = ""
    children: list[Extension] = field(default_factory=list)
    path: str = ""


@dataclass(slots=True)
class Organization:
    ids: list[II] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    telecoms: list[TEL] = field(default_factory=list)
    addrs: list[Addr] = field(default_factory=list)
    standard_industry_class_code: CD | None = None
    extensions: list[Extension] = field(default_factory=list)


@dataclass(slots=True)
class Person:
    """The person playing a role (assignedPerson, associatedPerson, relatedSubject/subject...)."""

    names: list[PN] = field(default_factory=list)
    administrative_gender: CD | None = None
    birth_time: TS | None = None
    extensions: list[Extension] = field(default_factory=list)  # e.g. sdtc:id of a subject


@dataclass(slots=True)
class Place:
    name: str = ""
    addr: Addr | None = None


@dataclass(slots=True)
class Entity:
    """A role and who or what plays it: assignedAuthor, assignedEntity, associatedEntity,
    intendedRecipient, relatedEntity, participantRole, specimenRole, relatedSubject...

    ``role`` is the element name; ``person`` the person in it; ``organization`` the represented/
    scoping/received organization; ``player_code``/``player_names`` the playing entity or device
    (a product, a specimen type, a software name)."""

    role: str = ""
    class_code: str = ""
    ids: list[II] = field(default_factory=list)
    code: CD | None = None
    addrs: list[Addr] = field(default_factory=list)
    telecoms: list[TEL] = field(default_factory=list)
    person: Person | None = None
    organization: Organization | None = None
    player_code: CD | None = None
    player_names: list[str] = field(default_factory=list)
    extensions: list[Extension] = field(default_factory=list)
    path: str = ""


@dataclass(slots=True)
class Participation:
    """author, performer, participant, informant, specimen, responsibleParty...: the kind of
    participation (``name``, the element), its typeCode, time and the Entity."""

    name: str = ""
    type_code: str = ""
    function_code: CD | None = None
    time: Value | None = None
    entity: Entity | None = None
    template_ids: list[II] = field(default_factory=list)
    path: str = ""


@dataclass(slots=True)
class Author(Participation):
    """Header or entry author: time and assignedAuthor (ids: RPPS 1.2.250.1.71.4.2.1, ADELI...;
    assignedPerson or assignedAuthoringDevice; representedOrganization)."""


@dataclass(slots=True)
class Authenticator(Participation):
    """legalAuthenticator / authenticator: time, signatureCode and the assignedEntity."""

    signature_code: str = ""


@dataclass(slots=True)
class Custodian:
    organization: Organization | None = None
    path: str = ""


@dataclass(slots=True)
class RecordTarget:
    """recordTarget/patientRole and its patient, flattened.

    ``ids`` are every patientRole/id as sent: INS (roots 1.2.250.1.213.1.4.8 INS-NIR, .9 NIA,
    .10 test, .11 demo...) and local ids (root = the facility's OID); which to trust is the
    identity resolver's business."""

    ids: list[II] = field(default_factory=list)
    addrs: list[Addr] = field(default_factory=list)
    telecoms: list[TEL] = field(default_factory=list)
    names: list[PN] = field(default_factory=list)
    administrative_gender: CD | None = None
    birth_time: TS | None = None
    deceased_ind: str = ""  # sdtc:deceasedInd/@value when present
    deceased_time: TS | None = None  # sdtc:deceasedTime
    marital_status: CD | None = None
    birthplace: Place | None = None
    guardians: list[Entity] = field(default_factory=list)
    provider_organization: Organization | None = None
    extensions: list[Extension] = field(default_factory=list)  # patient's and patientRole's
    path: str = ""


@dataclass(slots=True)
class HealthCareFacility:
    ids: list[II] = field(default_factory=list)
    code: CD | None = None
    place: Place | None = None
    organization: Organization | None = None


@dataclass(slots=True)
class EncompassingEncounter:
    ids: list[II] = field(default_factory=list)
    code: CD | None = None
    effective_time: Value | None = None
    discharge_disposition_code: CD | None = None
    responsible_party: Entity | None = None
    participants: list[Participation] = field(default_factory=list)  # encounterParticipant
    location: HealthCareFacility | None = None
    path: str = ""


@dataclass(slots=True)
class RelatedDocument:
    """relatedDocument: ``type_code`` RPLC (replaces), APND (appends), XFRM (transforms) and
    the parent document's ids, setId and versionNumber."""

    type_code: str = ""
    ids: list[II] = field(default_factory=list)
    set_id: II | None = None
    version_number: str = ""
    code: CD | None = None
    path: str = ""


@dataclass(slots=True)
class ServiceEvent:
    """documentationOf/serviceEvent: the act the document reports on (exam, stay, chapter)."""

    class_code: str = ""
    ids: list[II] = field(default_factory=list)
    code: CD | None = None
    effective_time: Value | None = None
    performers: list[Participation] = field(default_factory=list)
    extensions: list[Extension] = field(default_factory=list)  # e.g. lab:statusCode
    path: str = ""


@dataclass(slots=True)
class Consent:
    """authorization/consent: a consent the document states (the patient's to sharing it,
    to a treatment: CDA R2 Consent, id 0..*, code 0..1, statusCode 'completed')."""

    ids: list[II] = field(default_factory=list)
    code: CD | None = None
    status_code: str = ""
    path: str = ""


@dataclass(slots=True)
class Header:
    realm_codes: list[str] = field(default_factory=list)
    type_id: II | None = None
    template_ids: list[II] = field(default_factory=list)
    id: II | None = None
    code: CD | None = None  # document type (LOINC 11502-2...)
    title: str = ""
    effective_time: TS | None = None
    confidentiality_code: CD | None = None
    language_code: str = ""
    set_id: II | None = None  # not always sent
    version_number: str = ""
    copy_time: TS | None = None
    record_targets: list[RecordTarget] = field(default_factory=list)
    authors: list[Author] = field(default_factory=list)
    data_enterer: Participation | None = None
    informants: list[Participation] = field(default_factory=list)
    custodian: Custodian | None = None
    information_recipients: list[Participation] = field(default_factory=list)
    legal_authenticator: Authenticator | None = None
    authenticators: list[Authenticator] = field(default_factory=list)
    participants: list[Participation] = field(default_factory=list)
    in_fulfillment_of: list[II] = field(default_factory=list)  # order ids
    documentation_of: list[ServiceEvent] = field(default_factory=list)
    related_documents: list[RelatedDocument] = field(default_factory=list)
    authorizations: list[CD] = field(default_factory=list)  # consent codes
    consents: list[Consent] = field(default_factory=list)  # the same consents, whole
    encounter: EncompassingEncounter | None = None
    extensions: list[Extension] = field(default_factory=list)

    @property
    def template_roots(self) -> set[str]:
        return {t.root for t in self.template_ids}


# -- body ---------------------------------------------------------------------------------------
@dataclass(slots=True)
class Reference:
    """act/reference to an externalDocument, externalAct, externalObservation..."""

    type_code: str = ""
    kind: str = ""  # element name of the external thing
    ids: list[II] = field(default_factory=list)
    code: CD | None = None
    text: str = ""
    set_id: II | None = None
    version_number: str = ""
    text_reference: str = ""  # text/reference/@value: where the document is (a URL)
    path: str = ""


@dataclass(slots=True, kw_only=True)
class ClinicalStatement:
    """What every CDA clinical statement (RIM act) has. ``kind`` is the element name
    ('observation', 'act', ...). ``text`` is the act's own text; ``text_reference`` its
    reference/@value ('#ID' into the section narrative). ``effective_time`` is the first
    effectiveTime (SubstanceAdministration and Supply also keep them all)."""

    kind: str = ""
    class_code: str = ""
    mood_code: str = ""
    negation_ind: str = ""  # 'true'/'false' as written, '' when absent
    null_flavor: str = ""  # on the statement itself: the whole statement is unknown (UNK...)
    xml_id: str = ""  # the ID attribute (what renderMultiMedia/referencedObject points at)
    template_ids: list[II] = field(default_factory=list)
    ids: list[II] = field(default_factory=list)
    code: CD | None = None
    text: str = ""
    text_reference: str = ""
    status_code: str = ""
    effective_time: Value | None = None
    priority_code: CD | None = None
    authors: list[Author] = field(default_factory=list)
    performers: list[Participation] = field(default_factory=list)
    participants: list[Participation] = field(default_factory=list)
    informants: list[Participation] = field(default_factory=list)
    specimens: list[Participation] = field(default_factory=list)
    subject: Entity | None = None
    references: list[Reference] = field(default_factory=list)
    preconditions: list[ClinicalStatement] = field(default_factory=list)  # criterion
    entry_relationships: list[EntryRelationship] = field(default_factory=list)
    extensions: list[Extension] = field(default_factory=list)
    path: str = ""

    @property
    def template_roots(self) -> set[str]:
        return {t.root for t in self.template_ids}


@dataclass(slots=True)
class ReferenceRange:
    """referenceRange/observationRange: the normal range as a value and/or text."""

    type_code: str = ""
    code: CD | None = None
    value: Value | None = None
    text: str = ""
    text_reference: str = ""  # '#ID' of the narrative the range is written in (C-CDA)
    interpretation_code: CD | None = None
    path: str = ""


@dataclass(slots=True, kw_only=True)
class Observation(ClinicalStatement):
    kind: str = "observation"
    values: list[Value] = field(default_factory=list)
    interpretation_codes: list[CD] = field(default_factory=list)
    method_codes: list[CD] = field(default_factory=list)
    target_site_codes: list[CD] = field(default_factory=list)
    reference_ranges: list[ReferenceRange] = field(default_factory=list)
    repeat_number: Value | None = None


@dataclass(slots=True, kw_only=True)
class ObservationMedia(ClinicalStatement):
    """Multimedia in the body (an image, the PDF of a CR-BIO in section 55107-7)."""

    kind: str = "observationMedia"
    language_code: str = ""
    value: ED | None = None


@dataclass(slots=True, kw_only=True)
class RegionOfInterest(ClinicalStatement):
    kind: str = "regionOfInterest"


@dataclass(slots=True)
class Product:
    """consumable / product: manufacturedProduct and its manufacturedMaterial (or
    manufacturedLabeledDrug): code (CIS, CIP, ATC...) and name."""

    template_ids: list[II] = field(default_factory=list)
    ids: list[II] = field(default_factory=list)
    code: CD | None = None
    name: str = ""
    lot_number: str = ""
    manufacturer: Organization | None = None
    extensions: list[Extension] = field(default_factory=list)  # pharm:... of the material
    path: str = ""


@dataclass(slots=True, kw_only=True)
class SubstanceAdministration(ClinicalStatement):
    kind: str = "substanceAdministration"
    effective_times: list[Value] = field(default_factory=list)  # IVL_TS, PIVL_TS, EIVL_TS...
    repeat_number: Value | None = None
    route_code: CD | None = None
    approach_site_codes: list[CD] = field(default_factory=list)
    dose_quantity: Value | None = None  # IVL_PQ by schema (or PQ)
    rate_quantity: Value | None = None
    max_dose_quantity: Value | None = None  # RTO
    administration_unit_code: CD | None = None
    consumable: Product | None = None


@dataclass(slots=True, kw_only=True)
class Supply(ClinicalStatement):
    kind: str = "supply"
    effective_times: list[Value] = field(default_factory=list)
    repeat_number: Value | None = None
    independent_ind: str = ""
    quantity: Value | None = None
    expected_use_time: Value | None = None
    product: Product | None = None


@dataclass(slots=True, kw_only=True)
class Procedure(ClinicalStatement):
    kind: str = "procedure"
    method_codes: list[CD] = field(default_factory=list)
    approach_site_codes: list[CD] = field(default_factory=list)
    target_site_codes: list[CD] = field(default_factory=list)


@dataclass(slots=True, kw_only=True)
class Encounter(ClinicalStatement):
    kind: str = "encounter"


@dataclass(slots=True, kw_only=True)
class Act(ClinicalStatement):
    """A generic act: problem / allergy concerns, comments, lab result acts..."""

    kind: str = "act"


@dataclass(slots=True, kw_only=True)
class Organizer(ClinicalStatement):
    """BATTERY (a lab panel) or CLUSTER: its ``components`` are nested statements."""

    kind: str = "organizer"
    components: list[ClinicalStatement] = field(default_factory=list)


@dataclass(slots=True)
class EntryRelationship:
    type_code: str = ""  # COMP, SUBJ, REFR, RSON, MFST...
    inversion_ind: str = ""
    negation_ind: str = ""
    sequence_number: str = ""
    act: ClinicalStatement | None = None
    path: str = ""


@dataclass(slots=True)
class Entry:
    """section/entry: its typeCode (DRIV when the narrative derives from the entries) and
    templateIds (CI-SIS puts some on the entry itself) around one clinical statement."""

    type_code: str = ""
    template_ids: list[II] = field(default_factory=list)
    act: ClinicalStatement | None = None
    path: str = ""


@dataclass(slots=True)
class Section:
    """A section with its narrative flattened to plain text (``text``: paragraphs, list
    items and table rows on their own lines, table cells separated by ' | ') and
    ``narrative_ids``: the plain text of every narrative element carrying an ID attribute,
    so that '#ID' references (originalText, act text) can be resolved."""

    template_ids: list[II] = field(default_factory=list)
    id: II | None = None
    xml_id: str = ""  # the ID attribute
    code: CD | None = None
    title: str = ""
    text: str = ""
    narrative_ids: dict[str, str] = field(default_factory=dict)
    # every section's narrative_ids (one dict shared by all the document's sections): an ID
    # is unique in the whole document, and senders point at the narrative of another
    # section (the parent's, a sibling's); looked up after the section's own
    document_ids: dict[str, str] = field(default_factory=dict)
    language_code: str = ""
    confidentiality_code: CD | None = None
    authors: list[Author] = field(default_factory=list)
    # who gave the information of the whole section (CDA R2 Section.informant: the patient,
    # a relative, the referring doctor); its statements inherit it unless they name one
    informants: list[Participation] = field(default_factory=list)
    # whom the section is about when not the patient (CDA R2 Section.subject: the newborn's
    # section of a delivery summary); its statements inherit it
    subject: Entity | None = None
    entries: list[Entry] = field(default_factory=list)
    sections: list[Section] = field(default_factory=list)  # component/section
    extensions: list[Extension] = field(default_factory=list)
    path: str = ""

    @property
    def template_roots(self) -> set[str]:
        return {t.root for t in self.template_ids}


def b64decode_lenient(text: str | bytes) -> tuple[bytes, bool]:
    """Base64 with whitespace ignored and missing '=' padding tolerated (some senders drop it).

    Returns (data, padding_was_missing). Raises ValueError on anything else that is not base64.
    """
    raw = text.encode("ascii", "replace") if isinstance(text, str) else text
    compact = b"".join(raw.split())
    missing = (-len(compact)) % 4
    if missing == 3:
        raise ValueError("base64 length is impossible")
    try:
        return base64.b64decode(compact + b"=" * missing, validate=True), missing > 0
    except (binascii.Error, ValueError) as exc:
        raise ValueError(str(exc)) from None


@dataclass(slots=True)
class NonXmlBody:
    """component/nonXMLBody (a level-1 document: PDF, text, image). ``data`` is the content
    decoded from base64 when ``representation`` is B64 (still compressed if ``compression`` is
    set: see ``decompressed``); ``text`` the content as sent otherwise; ``reference`` a
    reference/@value (never fetched)."""

    media_type: str = ""
    representation: str = ""
    compression: str = ""
    reference: str = ""
    text: str = ""
    data: bytes | None = None
    language_code: str = ""
    path: str = ""
    charset: str = ""  # the ED's charset (of a base64 text body), as sent

    def decompressed(self, max_bytes: int = 50 * 1024 * 1024) -> bytes | None:
        """``data`` inflated per ``compression`` (DF deflate, ZL zlib, GZ gzip), bounded by
        ``max_bytes`` so that a compression bomb fails (CDA_TOO_LARGE) instead of eating memory.
        Raises CdaParseError (CDA_BAD_COMPRESSION) on a broken stream or unknown method."""
        if self.data is None or not self.compression:
            return self.data
        return inflate(self.data, self.compression, max_bytes, self.path)


def inflate(data: bytes, compression: str, max_bytes: int, path: str = "") -> bytes:
    """``data`` inflated per an ED ``compression`` (DF deflate, ZL zlib, GZ gzip), bounded by
    ``max_bytes`` so that a compression bomb fails (CDA_TOO_LARGE) instead of eating memory.
    Raises CdaParseError (CDA_BAD_COMPRESSION) on a broken stream or unknown method."""
    wbits = {"DF": -15, "ZL": 15, "GZ": 31}.get(compression)
    if wbits is None:
        raise CdaParseError(CDA_BAD_COMPRESSION, f"unsupported compression {compression!r}",
                            path)
    inflater = zlib.decompressobj(wbits)
    try:
        out = inflater.decompress(data, max_bytes + 1)
    except zlib.error:
        raise CdaParseError(CDA_BAD_COMPRESSION, "compressed content does not inflate",
                            path) from None
    if len(out) > max_bytes or inflater.unconsumed_tail:
        raise CdaParseError(CDA_TOO_LARGE, f"inflated content over {max_bytes} bytes", path)
    return out


@dataclass(slots=True)
class Document:
    """One CDA document. ``body_kind`` is 'structured', 'nonXML' or 'none' (an empty body is
    not a parse error; a CDA_NO_BODY warning says so). ``envelope`` is '' for a plain CDA and
    'xsl:stylesheet' when the CDA came inside a CI-SIS self-presenting XSL document."""

    header: Header
    sections: list[Section] = field(default_factory=list)
    non_xml_body: NonXmlBody | None = None
    body_kind: str = "none"
    envelope: str = ""
    warnings: list[ParseWarning] = field(default_factory=list)


def constructor(cls: type) -> Callable[..., Any]:
    """A function that builds a ``cls`` exactly as its dataclass ``__init__`` does (every field,
    keyword arguments only, the same defaults, a new list/dict per default_factory), for the
    parser's hot paths: calling the class goes through ``type.__call__`` with a keyword dict,
    which costs about twice the building itself (a lab report builds ~2,500 such objects).
    Generated from ``dataclasses.fields`` so that it follows the model."""
    params: list[str] = []
    body: list[str] = []
    namespace: dict[str, Any] = {"_new": object.__new__, "_cls": cls, "_MISSING": MISSING}
    for f in fields(cls):
        if not f.init:
            raise TypeError(f"{cls.__name__}.{f.name}: init=False is not supported")
        name = f.name
        if f.default is not MISSING:
            namespace[f"_d_{name}"] = f.default
            params.append(f"{name}=_d_{name}")
            body.append(f"    o.{name} = {name}")
        elif f.default_factory is not MISSING:
            namespace[f"_f_{name}"] = f.default_factory
            params.append(f"{name}=_MISSING")
            body.append(f"    o.{name} = _f_{name}() if {name} is _MISSING else {name}")
        else:
            params.append(name)
            body.append(f"    o.{name} = {name}")
    if hasattr(cls, "__post_init__"):
        raise TypeError(f"{cls.__name__}: __post_init__ is not supported")
    source = (f"def new_{cls.__name__}(*, {', '.join(params)}):\n    o = _new(_cls)\n"
              + "\n".join(body) + "\n    return o\n")
    exec(source, namespace)  # noqa: S102 - generated from the dataclass fields above
    return namespace[f"new_{cls.__name__}"]
