"""The ClinicalDocument element -> Document: header, body sections, entries, level-1 body.

Why one pass over direct children everywhere: every element is visited at most once, by the
function of its parent, with its XPath-like path built on the way (see datatypes.kids). What
the CDA schema allows but this model does not keep is skipped silently; what looks wrong is
kept when possible and reported as a ParseWarning; only an undecodable level-1 body (the
document's whole content) is an error.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lxml import etree

from parsers.cda.datatypes import (
    addr,
    cd,
    collapse,
    extension,
    ii,
    kids,
    pn,
    read_ed,
    tel,
    text_and_reference,
    ts,
    value,
)
from parsers.cda.errors import (
    CDA_B64_PADDING,
    CDA_BAD_BASE64,
    CDA_NO_BODY,
    CDA_SEVERAL_STATEMENTS,
    CDA_UNKNOWN_ENTRY,
    CdaParseError,
    ParseWarning,
)
from parsers.cda.model import (
    ED,
    Act,
    Authenticator,
    Author,
    ClinicalStatement,
    Consent,
    Custodian,
    Document,
    EncompassingEncounter,
    Encounter,
    Entity,
    Entry,
    EntryRelationship,
    Header,
    HealthCareFacility,
    NonXmlBody,
    Observation,
    ObservationMedia,
    Organization,
    Organizer,
    Participation,
    Person,
    Place,
    Procedure,
    Product,
    RecordTarget,
    Reference,
    ReferenceRange,
    RegionOfInterest,
    RelatedDocument,
    Section,
    ServiceEvent,
    SubstanceAdministration,
    Supply,
    b64decode_lenient,
    constructor,
)
from parsers.cda.narrative import flatten

ROOT_PATH = "/ClinicalDocument"
El = etree._Element

STATEMENTS: dict[str, type[ClinicalStatement]] = {
    "observation": Observation, "act": Act, "organizer": Organizer,
    "substanceAdministration": SubstanceAdministration, "supply": Supply,
    "procedure": Procedure, "encounter": Encounter, "observationMedia": ObservationMedia,
    "regionOfInterest": RegionOfInterest,
}
_NEW_STATEMENT = {kind: constructor(cls) for kind, cls in STATEMENTS.items()}
# The model's classes built without type.__call__ (see model.constructor): the hot paths.
_new_Header = constructor(Header)
_new_Document = constructor(Document)
_new_RecordTarget = constructor(RecordTarget)
_new_Place = constructor(Place)
_new_Organization = constructor(Organization)
_new_Person = constructor(Person)
_new_Entity = constructor(Entity)
_new_Custodian = constructor(Custodian)
_new_Consent = constructor(Consent)
_new_ServiceEvent = constructor(ServiceEvent)
_new_RelatedDocument = constructor(RelatedDocument)
_new_EncompassingEncounter = constructor(EncompassingEncounter)
_new_HealthCareFacility = constructor(HealthCareFacility)
_new_NonXmlBody = constructor(NonXmlBody)
_new_Section = constructor(Section)
_new_Entry = constructor(Entry)
_new_Observation = constructor(Observation)
_new_EntryRelationship = constructor(EntryRelationship)
_new_Product = constructor(Product)
_new_Reference = constructor(Reference)
_new_ReferenceRange = constructor(ReferenceRange)
_NEW_PARTICIPATION = {cls: constructor(cls) for cls in (Participation, Author, Authenticator)}

# Role elements (the entity inside a participation) and what plays them.
_ROLES = frozenset({
    "assignedAuthor", "assignedEntity", "associatedEntity", "intendedRecipient",
    "relatedEntity", "participantRole", "specimenRole", "relatedSubject", "assignedCustodian",
})
_PERSONS = frozenset({
    "assignedPerson", "associatedPerson", "informationRecipient", "relatedPerson",
    "guardianPerson", "subject", "maintainingPerson",
})
_ORGANIZATIONS = frozenset({
    "representedOrganization", "scopingOrganization", "receivedOrganization",
    "representedCustodianOrganization", "serviceProviderOrganization", "guardianOrganization",
    "providerOrganization",
})
_PLAYERS = frozenset({
    "playingEntity", "playingDevice", "specimenPlayingEntity", "assignedAuthoringDevice",
})
# Statement children typed by the schema when xsi:type is absent.
_QUANTITIES = {
    "doseQuantity": "IVL_PQ", "rateQuantity": "IVL_PQ", "maxDoseQuantity": "RTO_PQ_PQ",
    "quantity": "PQ", "expectedUseTime": "IVL_TS", "repeatNumber": "IVL_INT",
}


_BODIES = frozenset({"structuredBody", "nonXMLBody"})


def _foreign_body(root: etree._Element) -> str:
    """Why the body was not read when one is there in another namespace (an xmlns rebinding
    the default namespace inside the document, '<structuredBody xmlns="">'): said, since
    the document is filed without any of its content; '' otherwise."""
    for component in root:
        if not isinstance(component.tag, str) or etree.QName(component).localname != "component":
            continue
        for child in component:
            if isinstance(child.tag, str) and etree.QName(child).localname in _BODIES:
                ns = etree.QName(child).namespace
                where = f"namespace {ns[:60]!r}" if ns else "no namespace"
                return (f" ({etree.QName(child).localname} is in {where}, not 'urn:hl7-org:v3':"
                        " an xmlns inside the document rebinds it; its content is not read)")
    return ""


class _Walker:
    """Holds the warnings of one parse; methods read one kind of element each."""

    def __init__(self) -> None:
        self.warnings: list[ParseWarning] = []

    # -- document ---------------------------------------------------------------------------
    def document(self, root: etree._Element, envelope: str) -> Document:
        header = _new_Header()
        doc = _new_Document(header=header, envelope=envelope)
        for name, c, p in kids(root, ROOT_PATH):
            if name == "component":
                self.body(c, p, doc)
            else:
                self.header_child(header, name, c, p)
        if doc.sections:
            _share_narrative_ids(doc.sections)
        if doc.body_kind == "none":
            self.warnings.append(ParseWarning(
                CDA_NO_BODY, "no structuredBody nor nonXMLBody: the document has no content"
                + _foreign_body(root), f"{ROOT_PATH}/component"))
        doc.warnings = self.warnings
        return doc

    def header_child(self, h: Header, name: str, c: etree._Element, p: str) -> None:
        if name == "templateId":
            h.template_ids.append(ii(c, p))
        elif name == "id":
            if h.id is None:
                h.id = ii(c, p)
        elif name == "code":
            h.code = cd(c, p, "CE")
        elif name == "title":
            h.title = collapse("".join(c.itertext()))
        elif name == "effectiveTime":
            h.effective_time = ts(c, p)
        elif name == "confidentialityCode":
            h.confidentiality_code = cd(c, p, "CE")
        elif name == "languageCode":
            h.language_code = c.get("code", "")
        elif name == "setId":
            h.set_id = ii(c, p)
        elif name == "versionNumber":
            h.version_number = c.get("value", "")
        elif name == "recordTarget":
            h.record_targets.append(self.record_target(c, p))
        elif name == "author":
            h.authors.append(self.participation(c, p, Author, "TS"))
        elif name == "custodian":
            h.custodian = self.custodian(c, p)
        elif name == "legalAuthenticator":
            h.legal_authenticator = self.participation(c, p, Authenticator, "TS")
        elif name == "authenticator":
            h.authenticators.append(self.participation(c, p, Authenticator, "TS"))
        elif name == "participant":
            h.participants.append(self.participation(c, p))
        elif name == "informant":
            h.informants.append(self.participation(c, p))
        elif name == "informationRecipient":
            h.information_recipients.append(self.participation(c, p))
        elif name == "dataEnterer":
            h.data_enterer = self.participation(c, p, Participation, "TS")
        elif name == "documentationOf":
            for n, se, sp in kids(c, p):
                if n == "serviceEvent":
                    h.documentation_of.append(self.service_event(se, sp))
        elif name == "relatedDocument":
            h.related_documents.append(self.related_document(c, p))
        elif name == "componentOf":
            for n, ee, ep in kids(c, p):
                if n == "encompassingEncounter":
                    h.encounter = self.encounter(ee, ep)
        elif name == "inFulfillmentOf":
            for n, order, op in kids(c, p):
                if n == "order":
                    h.in_fulfillment_of.extend(ii(i, ip) for k, i, ip in kids(order, op)
                                               if k == "id")
        elif name == "authorization":
            for n, consent, cp in kids(c, p):
                if n == "consent":
                    h.consents.append(self.consent(consent, cp))
                    h.authorizations.extend(c for c in (h.consents[-1].code,) if c is not None)
        elif name == "realmCode":
            h.realm_codes.append(c.get("code", ""))
        elif name == "typeId":
            h.type_id = ii(c, p)
        elif name == "copyTime":
            h.copy_time = ts(c, p)
        elif ":" in name:
            h.extensions.append(extension(c, p))

    # -- header parts -----------------------------------------------------------------------
    def record_target(self, el: etree._Element, path: str) -> RecordTarget:
        rt = _new_RecordTarget(path=path)
        for name, role, rp in kids(el, path):
            if name != "patientRole":
                continue
            for n, c, p in kids(role, rp):
                if n == "id":
                    rt.ids.append(ii(c, p))
                elif n == "addr":
                    rt.addrs.append(addr(c))
                elif n == "telecom":
                    rt.telecoms.append(tel(c))
                elif n == "patient":
                    self.patient(rt, c, p)
                elif n == "providerOrganization":
                    rt.provider_organization = self.organization(c, p)
                elif ":" in n:
                    rt.extensions.append(extension(c, p))
        return rt

    def patient(self, rt: RecordTarget, el: etree._Element, path: str) -> None:
        for n, c, p in kids(el, path):
            if n == "name":
                rt.names.append(pn(c))
            elif n == "administrativeGenderCode":
                rt.administrative_gender = cd(c, p, "CE")
            elif n == "birthTime":
                rt.birth_time = ts(c, p)
            elif n == "maritalStatusCode":
                rt.marital_status = cd(c, p, "CE")
            elif n == "guardian":
                rt.guardians.append(self.entity(c, p))
            elif n == "birthplace":
                for k, place, pp in kids(c, p):
                    if k == "place":
                        rt.birthplace = self.place(place, pp)
            elif n == "sdtc:deceasedInd":
                rt.deceased_ind = c.get("value", "")
                rt.extensions.append(extension(c, p))
            elif n == "sdtc:deceasedTime":
                rt.deceased_time = ts(c, p)
                rt.extensions.append(extension(c, p))
            elif ":" in n:
                rt.extensions.append(extension(c, p))

    def place(self, el: etree._Element, path: str) -> Place:
        place = _new_Place()
        for n, c, _p in kids(el, path):
            if n == "name":
                place.name = collapse("".join(c.itertext()))
            elif n == "addr":
                place.addr = addr(c)
        return place

    def organization(self, el: etree._Element, path: str) -> Organization:
        org = _new_Organization()
        for n, c, p in kids(el, path):
            if n == "id":
                org.ids.append(ii(c, p))
            elif n == "name":
                org.names.append(collapse("".join(c.itertext())))
            elif n == "telecom":
                org.telecoms.append(tel(c))
            elif n == "addr":
                org.addrs.append(addr(c))
            elif n == "standardIndustryClassCode":
                org.standard_industry_class_code = cd(c, p, "CE")
            elif ":" in n:
                org.extensions.append(extension(c, p))
        return org

    def person(self, el: etree._Element, path: str) -> Person:
        person = _new_Person()
        for n, c, p in kids(el, path):
            if n == "name":
                person.names.append(pn(c))
            elif n == "administrativeGenderCode":
                person.administrative_gender = cd(c, p, "CE")
            elif n == "birthTime":
                person.birth_time = ts(c, p)
            elif ":" in n:
                person.extensions.append(extension(c, p))
        return person

    def entity(self, el: etree._Element, path: str) -> Entity:
        e = _new_Entity(role=el.tag.rpartition("}")[2], class_code=el.get("classCode", ""),
                        path=path)
        for n, c, p in kids(el, path):
            if n == "id":
                e.ids.append(ii(c, p))
            elif n == "code":
                e.code = cd(c, p, "CE")
            elif n == "addr":
                e.addrs.append(addr(c))
            elif n == "telecom":
                e.telecoms.append(tel(c))
            elif n in _PERSONS:
                e.person = self.person(c, p)
            elif n in _ORGANIZATIONS:
                e.organization = self.organization(c, p)
            elif n in _PLAYERS:
                for k, pc, pp in kids(c, p):
                    if k == "code":
                        e.player_code = cd(pc, pp, "CE")
                    elif k in ("name", "manufacturerModelName", "softwareName"):
                        e.player_names.append(collapse("".join(pc.itertext())))
            elif ":" in n:
                e.extensions.append(extension(c, p))
        return e

    def participation(self, el: etree._Element, path: str,
                      cls: type[Participation] = Participation,
                      time_type: str = "IVL_TS") -> Participation:
        part = _NEW_PARTICIPATION[cls](name=el.tag.rpartition("}")[2],
                                       type_code=el.get("typeCode", "").strip(), path=path)
        for n, c, p in kids(el, path):
            if n in _ROLES:
                part.entity = self.entity(c, p)
            elif n == "time":
                part.time = value(c, p, time_type, self.warnings)
            elif n == "functionCode":
                part.function_code = cd(c, p, "CE")
            elif n == "templateId":
                part.template_ids.append(ii(c, p))
            elif n == "signatureCode" and isinstance(part, Authenticator):
                part.signature_code = c.get("code", "")
        return part

    def consent(self, el: etree._Element, path: str) -> Consent:
        """authorization/consent: its ids, code and statusCode (only the code was kept)."""
        found = _new_Consent(path=path)
        for n, c, p in kids(el, path):
            if n == "id":
                found.ids.append(ii(c, p))
            elif n == "code" and found.code is None:
                found.code = cd(c, p, "CE")
            elif n == "statusCode":
                found.status_code = c.get("code", "").strip()
        return found

    def custodian(self, el: etree._Element, path: str) -> Custodian:
        cust = _new_Custodian(path=path)
        for n, c, p in kids(el, path):
            if n == "assignedCustodian":
                for k, org, op in kids(c, p):
                    if k == "representedCustodianOrganization":
                        cust.organization = self.organization(org, op)
        return cust

    def service_event(self, el: etree._Element, path: str) -> ServiceEvent:
        se = _new_ServiceEvent(class_code=el.get("classCode", ""), path=path)
        for n, c, p in kids(el, path):
            if n == "id":
                se.ids.append(ii(c, p))
            elif n == "code":
                se.code = cd(c, p, "CE")
            elif n == "effectiveTime":
                se.effective_time = value(c, p, "IVL_TS", self.warnings)
            elif n == "performer":
                se.performers.append(self.participation(c, p))
            elif ":" in n:
                se.extensions.append(extension(c, p))
        return se

    def related_document(self, el: etree._Element, path: str) -> RelatedDocument:
        rd = _new_RelatedDocument(type_code=el.get("typeCode", "").strip(), path=path)
        for n, parent, pp in kids(el, path):
            if n != "parentDocument":
                continue
            for k, c, p in kids(parent, pp):
                if k == "id":
                    rd.ids.append(ii(c, p))
                elif k == "setId":
                    rd.set_id = ii(c, p)
                elif k == "versionNumber":
                    rd.version_number = c.get("value", "")
                elif k == "code":
                    rd.code = cd(c, p, "CD")
        return rd

    def encounter(self, el: etree._Element, path: str) -> EncompassingEncounter:
        enc = _new_EncompassingEncounter(path=path)
        for n, c, p in kids(el, path):
            if n == "id":
                enc.ids.append(ii(c, p))
            elif n == "code":
                enc.code = cd(c, p, "CE")
            elif n == "effectiveTime":
                enc.effective_time = value(c, p, "IVL_TS", self.warnings)
            elif n == "dischargeDispositionCode":
                enc.discharge_disposition_code = cd(c, p, "CE")
            elif n == "responsibleParty":
                for k, role, rp in kids(c, p):
                    if k == "assignedEntity":
                        enc.responsible_party = self.entity(role, rp)
            elif n == "encounterParticipant":
                enc.participants.append(self.participation(c, p))
            elif n == "location":
                for k, hcf, hp in kids(c, p):
                    if k == "healthCareFacility":
                        enc.location = self.facility(hcf, hp)
        return enc

    def facility(self, el: etree._Element, path: str) -> HealthCareFacility:
        f = _new_HealthCareFacility()
        for n, c, p in kids(el, path):
            if n == "id":
                f.ids.append(ii(c, p))
            elif n == "code":
                f.code = cd(c, p, "CE")
            elif n == "location":
                f.place = self.place(c, p)
            elif n == "serviceProviderOrganization":
                f.organization = self.organization(c, p)
        return f

    # -- body -------------------------------------------------------------------------------
    def body(self, el: etree._Element, path: str, doc: Document) -> None:
        for n, c, p in kids(el, path):
            if n == "structuredBody":
                doc.body_kind = "structured"
                for k, comp, cp in kids(c, p):
                    if k == "component":
                        for s, sec, sp in kids(comp, cp):
                            if s == "section":
                                doc.sections.append(self.section(sec, sp))
            elif n == "nonXMLBody":
                doc.body_kind = "nonXML"
                doc.non_xml_body = self.non_xml_body(c, p)

    def non_xml_body(self, el: etree._Element, path: str) -> NonXmlBody:
        body = _new_NonXmlBody(path=path)
        for n, c, p in kids(el, path):
            if n == "languageCode":
                body.language_code = c.get("code", "")
            elif n == "text":
                ed = read_ed(c, p)  # nonXMLBody/text is an ED whatever xsi:type says
                body.media_type, body.representation = ed.media_type, ed.representation
                body.compression, body.reference = ed.compression, ed.reference
                body.charset = ed.charset
                body.path = p
                if ed.representation == "B64":
                    body.data = self.base64(ed.text, p)
                else:
                    body.text = ed.text
        return body

    def base64(self, text: str, path: str) -> bytes:
        try:
            data, padded = b64decode_lenient(text)
        except ValueError:
            raise CdaParseError(CDA_BAD_BASE64, "B64 content that is not valid base64",
                                path) from None
        if padded:
            self.warnings.append(ParseWarning(
                CDA_B64_PADDING, "base64 without its '=' padding, decoded anyway", path))
        return data

    def section(self, el: etree._Element, path: str) -> Section:
        s = _new_Section(xml_id=el.get("ID", ""), path=path)
        for n, c, p in kids(el, path):
            if n == "entry":
                self.entry(c, p, s.entries)
            elif n == "templateId":
                s.template_ids.append(ii(c, p))
            elif n == "code":
                s.code = cd(c, p, "CE")
            elif n == "title":
                s.title = collapse("".join(c.itertext()))
            elif n == "text":
                s.text, s.narrative_ids = flatten(c)
                own = c.get("ID")
                if own:  # <text ID="..."> itself is a reference target too (C-CDA)
                    s.narrative_ids.setdefault(own, s.text)
            elif n == "component":
                for k, sub, sp in kids(c, p):
                    if k == "section":
                        s.sections.append(self.section(sub, sp))
            elif n == "id":
                s.id = ii(c, p)
            elif n == "author":
                s.authors.append(self.participation(c, p, Author, "TS"))
            elif n == "informant":
                s.informants.append(self.participation(c, p))
            elif n == "languageCode":
                s.language_code = c.get("code", "")
            elif n == "confidentialityCode":
                s.confidentiality_code = cd(c, p, "CE")
            elif n == "subject":
                _subject(self, s, c, p)
            elif ":" in n:
                s.extensions.append(extension(c, p))
        return s

    def entry(self, el: etree._Element, path: str, entries: list[Entry]) -> None:
        """Appends the Entry of ``el`` to ``entries``. The schema allows one statement per
        entry; a second one (eHDSI patient summaries put two observations in one entry) was
        silently overwritten by it: each further statement becomes an Entry of its own,
        with a CDA_SEVERAL_STATEMENTS warning."""
        e = _new_Entry(type_code=el.get("typeCode", ""), path=path)
        entries.append(e)
        for n, c, p in kids(el, path):
            if n in STATEMENTS:
                if e.act is None:
                    e.act = self.statement(n, c, p)
                    continue
                self.warnings.append(ParseWarning(
                    CDA_SEVERAL_STATEMENTS, "entry with more than one clinical statement: "
                    "each read as an entry of its own", p))
                entries.append(_new_Entry(type_code=e.type_code, template_ids=e.template_ids,
                                          act=self.statement(n, c, p), path=path))
            elif n == "templateId":
                e.template_ids.append(ii(c, p))
            elif ":" not in n and n not in ("realmCode", "typeId"):
                self.warnings.append(ParseWarning(
                    CDA_UNKNOWN_ENTRY, f"entry child {n!r} is no clinical statement", p))

    # -- clinical statements ----------------------------------------------------------------
    def statement(self, kind: str, el: etree._Element, path: str) -> ClinicalStatement:
        g = el.get
        act = _NEW_STATEMENT[kind](class_code=g("classCode", "").strip(),
                                   mood_code=g("moodCode", "").strip(),
                                   negation_ind=g("negationInd", "").strip(), xml_id=g("ID", ""),
                                   null_flavor=g("nullFlavor", ""),
                                   path=path)
        handlers = _HANDLERS[kind]
        for n, c, p in kids(el, path):
            handler = handlers.get(n)
            if handler is not None:
                handler(self, act, c, p)
            elif ":" in n:
                act.extensions.append(extension(c, p))
        return act

    def criterion(self, el: etree._Element, path: str) -> ClinicalStatement:
        """precondition/criterion: a code, a text and a value, read as an observation."""
        crit = _new_Observation(kind="criterion", class_code=el.get("classCode", ""),
                                mood_code=el.get("moodCode", ""), path=path)
        for n, c, p in kids(el, path):
            if n == "code":
                crit.code = cd(c, p, "CD")
            elif n == "text":
                crit.text, crit.text_reference = text_and_reference(c)
            elif n == "value":
                crit.values.append(value(c, p, "", self.warnings))
            elif n == "templateId":
                crit.template_ids.append(ii(c, p))
        return crit

    def entry_relationship(self, el: etree._Element, path: str,
                           relationships: list[EntryRelationship]) -> None:
        """Appends the EntryRelationship of ``el`` to ``relationships``. As for an entry, the
        schema allows one statement; producers that put several in one entryRelationship
        lost all but the last: each further one becomes an EntryRelationship of its own
        (same typeCode, flags and path), with a CDA_SEVERAL_STATEMENTS warning."""
        g = el.get
        er = _new_EntryRelationship(type_code=g("typeCode", "").strip(),
                                    inversion_ind=g("inversionInd", ""),
                                    negation_ind=g("negationInd", ""), path=path)
        relationships.append(er)
        for n, c, p in kids(el, path):
            if n in STATEMENTS:
                if er.act is None:
                    er.act = self.statement(n, c, p)
                    continue
                self.warnings.append(ParseWarning(
                    CDA_SEVERAL_STATEMENTS, "entryRelationship with more than one clinical "
                    "statement: each read as an entryRelationship of its own", p))
                relationships.append(_new_EntryRelationship(
                    type_code=er.type_code, inversion_ind=er.inversion_ind,
                    negation_ind=er.negation_ind, sequence_number=er.sequence_number,
                    act=self.statement(n, c, p), path=path))
            elif n == "sequenceNumber":
                er.sequence_number = c.get("value", "")
            elif ":" not in n and n not in ("realmCode", "typeId", "templateId",
                                            "seperatableInd"):
                self.warnings.append(ParseWarning(
                    CDA_UNKNOWN_ENTRY, f"entryRelationship child {n!r} is no clinical "
                    "statement", p))

    def product(self, el: etree._Element, path: str) -> Product | None:
        """consumable or product -> manufacturedProduct -> material."""
        for n, mp, mpp in kids(el, path):
            if n != "manufacturedProduct":
                continue
            prod = _new_Product(path=mpp)
            for k, c, p in kids(mp, mpp):
                if k == "templateId":
                    prod.template_ids.append(ii(c, p))
                elif k == "id":
                    prod.ids.append(ii(c, p))
                elif k in ("manufacturedMaterial", "manufacturedLabeledDrug"):
                    for m, mc, mcp in kids(c, p):
                        if m == "code":
                            prod.code = cd(mc, mcp, "CE")
                        elif m == "name":
                            prod.name = collapse("".join(mc.itertext()))
                        elif m == "lotNumberText":
                            prod.lot_number = collapse("".join(mc.itertext()))
                        elif ":" in m:
                            prod.extensions.append(extension(mc, mcp))
                elif k == "manufacturerOrganization":
                    prod.manufacturer = self.organization(c, p)
            return prod
        return None

    def reference(self, el: etree._Element, path: str) -> Reference:
        ref = _new_Reference(type_code=el.get("typeCode", ""), path=path)
        for n, ext, ep in kids(el, path):
            if not n.startswith("external"):
                continue
            ref.kind = n
            for k, c, p in kids(ext, ep):
                if k == "id":
                    ref.ids.append(ii(c, p))
                elif k == "code":
                    ref.code = cd(c, p, "CD")
                elif k == "text":
                    ref.text, ref.text_reference = text_and_reference(c)
                elif k == "setId":
                    ref.set_id = ii(c, p)
                elif k == "versionNumber":
                    ref.version_number = c.get("value", "")
        return ref

    def reference_range(self, el: etree._Element, path: str) -> ReferenceRange:
        rr = _new_ReferenceRange(type_code=el.get("typeCode", ""), path=path)
        for n, orange, op in kids(el, path):
            if n != "observationRange":
                continue
            rr.path = op
            for k, c, p in kids(orange, op):
                if k == "value":
                    rr.value = value(c, p, "", self.warnings)
                elif k == "text":
                    rr.text, rr.text_reference = text_and_reference(c)
                elif k == "code":
                    rr.code = cd(c, p, "CD")
                elif k == "interpretationCode":
                    rr.interpretation_code = cd(c, p, "CE")
        return rr


# -- statement child handlers (walker, act, element, path) --------------------------------------
# ``act`` is typed Any: each handler is registered only for the statement kinds that have the
# field it sets (see _SPECIFIC), which a static type cannot express without one class per kind.
def _template_id(w: _Walker, act: Any, c: El, p: str) -> None:
    act.template_ids.append(ii(c, p))


def _id(w: _Walker, act: Any, c: El, p: str) -> None:
    act.ids.append(ii(c, p))


def _code(w: _Walker, act: Any, c: El, p: str) -> None:
    act.code = cd(c, p, "CD")


def _text(w: _Walker, act: Any, c: El, p: str) -> None:
    act.text, act.text_reference = text_and_reference(c)


def _status(w: _Walker, act: Any, c: El, p: str) -> None:
    # a cs token: blanks around it are no part of it (' completed ' was filed as a status of
    # its own, neither final nor a known one)
    act.status_code = c.get("code", "").strip()


def _effective_time(w: _Walker, act: Any, c: El, p: str) -> None:
    v = value(c, p, "IVL_TS", w.warnings)
    if act.effective_time is None:
        act.effective_time = v
    times = getattr(act, "effective_times", None)
    if times is not None:
        times.append(v)


def _priority(w: _Walker, act: Any, c: El, p: str) -> None:
    act.priority_code = cd(c, p, "CE")


def _author(w: _Walker, act: Any, c: El, p: str) -> None:
    act.authors.append(w.participation(c, p, Author, "TS"))


def _performer(w: _Walker, act: Any, c: El, p: str) -> None:
    act.performers.append(w.participation(c, p))


def _participant(w: _Walker, act: Any, c: El, p: str) -> None:
    act.participants.append(w.participation(c, p))


def _informant(w: _Walker, act: Any, c: El, p: str) -> None:
    act.informants.append(w.participation(c, p))


def _specimen(w: _Walker, act: Any, c: El, p: str) -> None:
    act.specimens.append(w.participation(c, p))


def _share_narrative_ids(sections: list[Section]) -> None:
    """Gives every section the narrative IDs of the whole document (Section.document_ids),
    the first section's text winning for an ID that repeats."""
    everything: dict[str, str] = {}
    stack = list(reversed(sections))
    found: list[Section] = []
    while stack:
        section = stack.pop()
        found.append(section)
        for key, text in section.narrative_ids.items():
            everything.setdefault(key, text)
        stack.extend(reversed(section.sections))
    for section in found:
        section.document_ids = everything


def _subject(w: _Walker, act: Any, c: El, p: str) -> None:
    for n, role, rp in kids(c, p):
        if n in _ROLES:
            act.subject = w.entity(role, rp)


def _reference(w: _Walker, act: Any, c: El, p: str) -> None:
    act.references.append(w.reference(c, p))


def _precondition(w: _Walker, act: Any, c: El, p: str) -> None:
    for n, crit, cp in kids(c, p):
        if n == "criterion":
            act.preconditions.append(w.criterion(crit, cp))


def _entry_relationship(w: _Walker, act: Any, c: El, p: str) -> None:
    w.entry_relationship(c, p, act.entry_relationships)


def _value(w: _Walker, act: Any, c: El, p: str) -> None:
    act.values.append(value(c, p, "", w.warnings))


def _interpretation(w: _Walker, act: Any, c: El, p: str) -> None:
    act.interpretation_codes.append(cd(c, p, "CE"))


def _method(w: _Walker, act: Any, c: El, p: str) -> None:
    act.method_codes.append(cd(c, p, "CE"))


def _target_site(w: _Walker, act: Any, c: El, p: str) -> None:
    act.target_site_codes.append(cd(c, p, "CD"))


def _approach_site(w: _Walker, act: Any, c: El, p: str) -> None:
    act.approach_site_codes.append(cd(c, p, "CD"))


def _reference_range(w: _Walker, act: Any, c: El, p: str) -> None:
    act.reference_ranges.append(w.reference_range(c, p))


def _quantity(field: str, schema_type: str) -> Callable[[_Walker, Any, El, str], None]:
    def handler(w: _Walker, act: Any, c: El, p: str) -> None:
        setattr(act, field, value(c, p, schema_type, w.warnings))
    return handler


def _route(w: _Walker, act: Any, c: El, p: str) -> None:
    act.route_code = cd(c, p, "CE")


def _admin_unit(w: _Walker, act: Any, c: El, p: str) -> None:
    act.administration_unit_code = cd(c, p, "CE")


def _consumable(w: _Walker, act: Any, c: El, p: str) -> None:
    act.consumable = w.product(c, p)


def _product(w: _Walker, act: Any, c: El, p: str) -> None:
    act.product = w.product(c, p)


def _independent(w: _Walker, act: Any, c: El, p: str) -> None:
    act.independent_ind = c.get("value", "")


def _media_value(w: _Walker, act: Any, c: El, p: str) -> None:
    v = value(c, p, "ED", w.warnings)
    act.value = v if isinstance(v, ED) else None


def _language(w: _Walker, act: Any, c: El, p: str) -> None:
    act.language_code = c.get("code", "")


def _component(w: _Walker, act: Any, c: El, p: str) -> None:
    for n, k, kp in kids(c, p):
        if n in STATEMENTS:
            act.components.append(w.statement(n, k, kp))


_COMMON = {
    "templateId": _template_id, "id": _id, "code": _code, "text": _text,
    "statusCode": _status, "effectiveTime": _effective_time, "priorityCode": _priority,
    "author": _author, "performer": _performer, "participant": _participant,
    "informant": _informant, "specimen": _specimen, "subject": _subject,
    "reference": _reference, "precondition": _precondition,
    "entryRelationship": _entry_relationship,
}
_SPECIFIC = {
    "observation": {
        "value": _value, "interpretationCode": _interpretation, "methodCode": _method,
        "targetSiteCode": _target_site, "referenceRange": _reference_range,
        "repeatNumber": _quantity("repeat_number", "IVL_INT"),
    },
    "observationMedia": {"value": _media_value, "languageCode": _language},
    "substanceAdministration": {
        "routeCode": _route, "approachSiteCode": _approach_site,
        "doseQuantity": _quantity("dose_quantity", _QUANTITIES["doseQuantity"]),
        "rateQuantity": _quantity("rate_quantity", _QUANTITIES["rateQuantity"]),
        "maxDoseQuantity": _quantity("max_dose_quantity", _QUANTITIES["maxDoseQuantity"]),
        "repeatNumber": _quantity("repeat_number", _QUANTITIES["repeatNumber"]),
        "administrationUnitCode": _admin_unit, "consumable": _consumable,
    },
    "supply": {
        "repeatNumber": _quantity("repeat_number", _QUANTITIES["repeatNumber"]),
        "quantity": _quantity("quantity", _QUANTITIES["quantity"]),
        "expectedUseTime": _quantity("expected_use_time", _QUANTITIES["expectedUseTime"]),
        "independentInd": _independent, "product": _product,
    },
    "procedure": {
        "methodCode": _method, "approachSiteCode": _approach_site,
        "targetSiteCode": _target_site,
    },
    "organizer": {"component": _component},
}

# Per statement kind, its own handlers over the common ones (one lookup per child).
_HANDLERS = {kind: {**_COMMON, **_SPECIFIC.get(kind, {})} for kind in STATEMENTS}


def build_document(root: etree._Element, envelope: str) -> Document:
    """The Document of a ClinicalDocument element (see reader.read_root)."""
    return _Walker().document(root, envelope)
