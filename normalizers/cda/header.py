"""The document entry and what its header says: status, authors, service event,
participants, recipients, consent, authenticators, performer and the encompassing encounter."""

from __future__ import annotations

from typing import Any

from normalizers.cda.common import SDTC, Ctx, loinc_of, system_name
from normalizers.cda.narrative import narratives
from normalizers.cda.tables import document_type_systems, national_person_roots, status_of
from normalizers.cda.times import center_bounds, end_of, iso_value, width_end
from normalizers.model import ACTION_NEW, ACTION_REPLACE, DOCUMENT, ENTRY_MAX, Attachment, Entry
from parsers.cda.model import IVL, TS, Document, Value


def document_entry(doc: Document, data: bytes, ctx: Ctx) -> Entry:
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
        "authors": [author_party(a) for a in header.authors],
        "custodian": _org_ids(header.custodian.organization)
        if header.custodian and header.custodian.organization else None,
        "encounter": _encounter(header, ctx.warnings),
        "service_events": [e for e in (_service_event(d, ctx.warnings)
                                       for d in header.documentation_of) if e],
        "legal_authenticator": _authenticator(header.legal_authenticator),
        # who else attested it (authenticator 0..*: a CR-BIO's validating biologist, IHE
        # XD-LAB Laboratory Results Validator; a co-signing senior): they were dropped
        "authenticators": [a for a in map(_authenticator, header.authenticators) if a],
        "orders": [i.key for i in header.in_fulfillment_of if i.root and not i.null_flavor],
        "ordered_by": _ordered_by(header.participants, ctx.warnings),
        "participants": _participants(header.participants, ctx.warnings),
        "recipients": _recipients(header.information_recipients),
        "data_enterer": _data_enterer(header.data_enterer, ctx.warnings),
        "consents": [c for c in map(_consent, header.consents) if c],
        "sections": narratives(doc.sections),
        "body": doc.body_kind,
        # the language it is written in (en-US, de-CH): a document from abroad said so
        "language": header.language_code.strip() or None,
    }
    if header.code is not None and code is not header.code:  # the local type, as sent
        sent = {"code": header.code.code, "system": system_name(header.code.code_system),
                "null_flavor": header.code.null_flavor}
        details["type_as_sent"] = {k: v for k, v in sent.items() if v}
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
                             in document_type_systems()),
                 value_type="ED", status=_REPORT_STATUS.get(report_status) or
                 status_of(report_status), effective=ctx.effective,
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


def author_party(author) -> dict:  # noqa: ANN001
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
        out["time"] = header_time(author.time)
    return out


def header_time(ts: TS) -> str:
    """When the document was written or signed, in ISO 8601 with its offset as every other
    time of the entry's details (it was kept as the HL7 TS, '20240312120000+0100', beside
    ISO times); a time without offset in the sender's zone, as the others. One that is no
    HL7 date stays as written."""
    return iso_value(ts.value) or ts.value


def _service_event(event, warnings: list[str]) -> dict[str, Any]:  # noqa: ANN001
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
    out.update(_period(event.effective_time, warnings))
    # the care team (C-CDA: the CCD's serviceEvent PCPR, each performer with its
    # functionCode, PCP the primary care physician, and NUCC specialty): read as the header's
    # other participants are; only the ids were kept, not who was the primary care physician
    performers = _participants(event.performers, warnings)
    if performers:
        out["performers"] = performers
    return {k: v for k, v in out.items() if v not in (None, [], {})}


def performing_party(part) -> dict[str, Any] | None:  # noqa: ANN001
    """A performer as ids: the person's (RPPS...) and the organization's (FINESS...)."""
    return assigned_party(part.entity) if part.entity is not None else None


def assigned_party(entity) -> dict[str, Any] | None:  # noqa: ANN001
    """An assigned entity as ids: the person's (RPPS...) and the organization's (FINESS...),
    with the organization's name."""
    out: dict[str, Any] = {"ids": [i.key for i in entity.ids if i.root]}
    if entity.organization is not None:
        out.update(_organization(entity.organization))
    out = {k: v for k, v in out.items() if v}
    return out or None


ORDERING = "REF"  # header participant typeCode of the prescriber (IHE XD-LAB Ordering
# Provider 1.3.6.1.4.1.19376.1.3.3.1.6, CI-SIS FR-Prescripteur)


def _ordered_by(participants: list, warnings: list[str]) -> list[dict[str, Any]]:
    """Who ordered what the document reports (header participant REF: the prescriber of a
    CR-BIO, with the date of the prescription), as ids (RPPS...) and organization; the
    HL7v2 path keeps OBR-16, the CDA's was dropped."""
    out = []
    for part in participants:
        if part.type_code != ORDERING:
            continue
        found = performing_party(part) or {}
        when = _participation_time(part.time, warnings)
        if when:
            found["time"] = when
        if found:
            out.append(found)
    return out


def _participation_time(when: Value | None, warnings: list[str]) -> str | None:
    """The time of a participation in ISO form: a TS, else an interval's end (``end_of``:
    its high, the end its width says, else its low or centre: a prescription's date, a
    specimen's collection), else its point value. ``warnings``: a width that is no time."""
    if isinstance(when, IVL):
        return end_of(when, warnings)
    if isinstance(when, TS) and when.value:
        return iso_value(when.value) or None
    return None


def _period(when: Value | None, warnings: list[str]) -> dict[str, str]:
    """{low, high} of a header period (serviceEvent, encompassingEncounter) in ISO: a TS is
    when it began; an interval's low and high, the end a width says after a low ('from
    08:00 for 3 h'), or center - width/2 and center + width/2 (CDA R2 IVL_TS center +
    width: 'around 10:00, over 2 h'; both ends were dropped), a center alone the instant it
    began. Bad dates are left out, unsaid, as they were."""
    if isinstance(when, TS):
        iso = iso_value(when.value) if when.value else ""
        return {"low": iso} if iso else {}
    if not isinstance(when, IVL):
        return {}
    out = {name: iso for name, bound in (("low", when.low), ("high", when.high))
           if isinstance(bound, TS) and bound.value and (iso := iso_value(bound.value))}
    if "low" in out and "high" not in out:
        end = width_end(when, warnings)
        if end:
            out["high"] = end
    bounds = center_bounds(when, warnings) if not out else None
    if bounds:
        out = {"low": bounds[0], "high": bounds[1]}
    elif not out and isinstance(when.center, TS) and when.center.value:
        out = {"low": iso_value(when.center.value)}
    return {k: v for k, v in out.items() if v}


def _participants(participants: list, warnings: list[str]) -> list[dict[str, Any]]:
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
        found = assigned_party(part.entity)
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
        said["time"] = _participation_time(part.time, warnings)
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
        found = assigned_party(part.entity) if part.entity is not None else None
        if found:
            out.append({"type": part.type_code or PRIMARY_RECIPIENT, **found})
    return out


def _data_enterer(part, warnings: list[str]) -> dict[str, Any] | None:  # noqa: ANN001
    """Who keyed the document in (dataEnterer: a secretary typing a dictated letter, a
    nurse entering a DLU), as ids and organization, and when: it was parsed and dropped,
    and a reader could not tell who entered what the author said. One named by name alone
    is not kept (no names of third parties in the details)."""
    if part is None or part.entity is None:
        return None
    found = assigned_party(part.entity)
    if not found:
        return None
    when = _participation_time(part.time, warnings)
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
    out = performing_party(auth) or {}
    if isinstance(auth.time, TS) and auth.time.value:
        out["time"] = header_time(auth.time)
    return out or None


def _human_author(authors: list) -> Any:
    """The author a document is by: the first person among its authors, else the first
    (IHE XDS-SD and C-CDA name the software or scanner that made it as an author too: its
    id was filed as the document's performer when it came first)."""
    return next((a for a in authors if a.entity is not None and a.entity.person is not None),
                authors[0])


def is_device(author) -> bool:  # noqa: ANN001
    """An author that is software or a machine (assignedAuthoringDevice), not a person."""
    entity = author.entity
    return entity is not None and entity.person is None and bool(entity.player_names)


def _document_performer(header) -> str | None:  # noqa: ANN001
    """Who the document is by: its first person author (``_human_author``), else its first
    author that is no device, else who signed it (legalAuthenticator). A C-CDA exported by
    an EHR names only the EHR as its author (Epic 'Care Everywhere', assignedAuthoringDevice):
    the software's id was the document's performer. Last, the organization a device author
    writes for (a lab's middleware releasing its reports)."""
    authors = [a for a in header.authors if not is_device(a)]
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
    national = national_person_roots()
    ids = sorted((i for i in entity.ids if i.root), key=lambda i: i.root not in national)
    keys = [i.key for i in ids]  # a national id (idNatPS) first, else as sent
    if not keys and entity.organization is not None:
        keys = _org_ids(entity.organization)
    return keys[0] if keys else None


def _org_ids(org) -> list[str]:  # noqa: ANN001
    return [i.key for i in org.ids if i.root]


def _organization(org) -> dict[str, Any]:  # noqa: ANN001
    """An organization as ids (FINESS...) and its first name (the ids alone are opaque);
    an empty value is dropped by the caller."""
    names = [n for n in org.names if n]
    return {"organization": _org_ids(org), "organization_name": names[0] if names else None}


def _encounter(header, warnings: list[str]) -> dict | None:  # noqa: ANN001
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
    out.update(_period(enc.effective_time, warnings))  # an instant (a consultation) is when
    # it began
    responsible = (assigned_party(enc.responsible_party) if enc.responsible_party is not None
                   else None)
    if responsible:  # the physician in charge of the stay: the discharge letter's signatory
        out["responsible"] = responsible
    participants = []
    for part in enc.participants:
        found = performing_party(part)
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
            place.update(_organization(facility.organization))
        place = {k: v for k, v in place.items() if v}
        if place:
            out["location"] = place
    return out
