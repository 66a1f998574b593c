"""One stored entry as its FHIR resource (fhir_entry_types.csv), and the Device it points at."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dossiers.fhir.allergies import (
    CRITICALITIES,
    _absent_reactions,
    _allergen,
    _allergy_kind,
    _criticalities,
    _reactions,
)
from dossiers.fhir.codings import _coded_concept, _concept, _types, fhir_status
from dossiers.fhir.common import (
    ABOUT_SOMEONE_ELSE,
    APPROACH_SITE,
    DATA_ABSENT_EXTENSION,
    NEGATED,
    PATIENT_TOLD,
    _items,
    _json,
    _text,
    full_url,
)
from dossiers.fhir.conditions import _abatement, _clinical, _stages, _verification
from dossiers.fhir.consents import _document_consents
from dossiers.fhir.dates import fhir_datetime, fhir_instant
from dossiers.fhir.documents import (
    DOCUMENT_KEY,
    _attachment,
    _data_enterer,
    _document_id,
    _document_identifiers,
    _legal_authenticator,
    _reissued_status,
)
from dossiers.fhir.encounters import _destination, _destination_location, _encounter
from dossiers.fhir.family import _about_someone_else, _narrative, _relationship, _relative_sex
from dossiers.fhir.imaging import _imaging_studies
from dossiers.fhir.immunizations import _vaccination
from dossiers.fhir.interpretation import _interpretation
from dossiers.fhir.labs import LAB_RESULT, _lab_parties, _method, _specimen
from dossiers.fhir.masking import _security
from dossiers.fhir.medications import (
    _DELIVERED,
    _deliveries,
    _dispense,
    _dispense_request,
    _dosages,
    _patient_instruction,
    _sited,
)
from dossiers.fhir.notes import (
    _NOTED,
    _REASONED,
    _TOLD_ELSEWHERE,
    _described_notes,
    _notes,
    _qualifier_notes,
    _reason_codes,
    _told_note,
)
from dossiers.fhir.orders import _document_orders, _lab_order
from dossiers.fhir.parties import _author, _performer, _performers, _sources
from dossiers.fhir.plans import _INTENTS, _goal
from dossiers.fhir.ranges import _reference_range
from dossiers.fhir.sites import _body_site, _site_words
from dossiers.fhir.values import _value
from dossiers.fhir.vital_signs import _observed_period, _other_values_label


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


def _device(entry: Mapping, subject: dict, base_url: str) -> dict:
    """The Device a DeviceUseStatement points at (R4 requires a reference): its type is the
    entry's code (EMDN, LPP, GMDN, SNOMED CT...), its patient the dossier's."""
    return {"resourceType": "Device", "type": _concept(entry, base_url, "device"),
            "patient": subject}
