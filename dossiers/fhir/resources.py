"""One stored entry as its FHIR resource (fhir_entry_types.csv), and the Device it points at."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dossiers.fhir.allergies import (
    CRITICALITIES,
    absent_reactions,
    allergen,
    allergy_kind,
    allergy_reactions,
    criticalities,
)
from dossiers.fhir.codings import coded_concept, entry_concept, entry_type_table, fhir_status
from dossiers.fhir.common import (
    ABOUT_SOMEONE_ELSE,
    APPROACH_SITE,
    DATA_ABSENT_EXTENSION,
    NEGATED,
    PATIENT_TOLD,
    decoded_json,
    fhir_string,
    full_url,
    items,
)
from dossiers.fhir.conditions import abatement, clinical_status, stages, verification
from dossiers.fhir.consents import document_consents
from dossiers.fhir.dates import fhir_datetime, fhir_instant
from dossiers.fhir.documents import (
    DOCUMENT_KEY,
    data_enterer,
    document_attachment,
    document_id,
    document_identifiers,
    legal_authenticator,
    reissued_status,
)
from dossiers.fhir.encounters import destination, destination_location, encounter
from dossiers.fhir.family import about_someone_else, narrative, relationship, relative_sex
from dossiers.fhir.imaging import imaging_studies
from dossiers.fhir.immunizations import vaccination
from dossiers.fhir.interpretation import observation_interpretation
from dossiers.fhir.labs import LAB_RESULT, lab_parties, method, specimen_resource
from dossiers.fhir.masking import security_labels
from dossiers.fhir.medications import (
    DELIVERED,
    deliveries,
    dispense_request,
    fill_dispense,
    medication_dosages,
    patient_instruction,
    sited,
)
from dossiers.fhir.notes import (
    NOTED,
    REASONED,
    TOLD_ELSEWHERE,
    comment_annotations,
    described_notes,
    qualifier_notes,
    reason_codes,
    told_note,
)
from dossiers.fhir.orders import document_orders, lab_order
from dossiers.fhir.parties import author_reference, performer_reference, performers, sources
from dossiers.fhir.plans import INTENTS, goal
from dossiers.fhir.ranges import reference_range
from dossiers.fhir.sites import body_site, site_words
from dossiers.fhir.values import observation_value
from dossiers.fhir.vital_signs import observed_period, other_values_label


def entry_resource(entry: Mapping, resource: str, subject: dict, base_url: str,
                   extras: dict[str, dict] | None = None, withheld: bool = False) -> dict:
    """The resource of one entry, without its links to other entries (added later);
    resources it references (a lab result's Specimen, Device, Practitioner, Organization)
    are added to ``extras`` (fullUrl -> resource). ``withheld``: the reader may not have
    the entry's original file (``to_bundle``)."""
    details = decoded_json(entry.get("details")) or {}
    if not isinstance(details, Mapping):
        details = {}
    status = entry.get("status")
    effective = fhir_datetime(entry.get("effective"))
    category_row = entry_type_table().get(entry.get("type") or "") or {}
    category = [{"coding": [{"system": category_row["category_system"],
                             "code": category_row["category_code"],
                             "display": category_row.get("category_display")}]}] \
        if category_row.get("category_code") else []
    performer = performer_reference(entry.get("performer"))
    res: dict[str, Any] = {"resourceType": resource}
    if resource == "Observation":
        res.update(status=fhir_status(status, resource), category=category,
                   code=entry_concept(entry, base_url, entry.get("type") or "observation",
                                      details),
                   subject=subject, effectiveDateTime=effective,
                   issued=fhir_instant(entry.get("issued")),
                   performer=[performer] if performer else [],
                   interpretation=observation_interpretation(entry),
                   referenceRange=reference_range(entry),
                   bodySite=body_site(details.get("target_site"), base_url),
                   method=method(details.get("method"), base_url))
        res.update(observation_value(entry, details, base_url))
        notes = comment_annotations(details)
        others = [t for t in map(fhir_string, items(details.get("other_values"))) if t]
        if others:  # OBX-5 (CDA value) repeated: the first is the value, the others
            # were dropped
            notes.append({"text": f"{other_values_label(entry)}: {'; '.join(others)}"})
        if details.get("negated"):  # R4 Observation cannot say 'not': said in words
            notes.insert(0, {"text": NEGATED})
        res["note"] = notes
        observed_period(res, effective, details)
        if entry.get("type") == LAB_RESULT:
            lab_parties(res, entry, details, subject, base_url,
                        extras if extras is not None else {})
    elif resource == "DiagnosticReport":
        res.update(status=reissued_status(fhir_status(status, resource), details, resource),
                   category=category,
                   code=entry_concept(entry, base_url, "report", details), subject=subject,
                   effectiveDateTime=effective, issued=fhir_instant(entry.get("issued")),
                   performer=[author_reference(entry, details)],
                   conclusion=fhir_string(entry.get("value")))
        order = lab_order(entry, details, res, subject, extras)
        if order:  # OBR-2 and OBR-16/ORC-12: the order this report answers, its prescriber
            res["basedOn"] = [order]
        if entry.get("attachment_sha256") or entry.get("media_type"):
            res["presentedForm"] = [document_attachment(entry, base_url, withheld)]
        studies = imaging_studies(entry, details, subject, extras)
        if studies:
            res["imagingStudy"] = studies
        specimen = specimen_resource(entry, details, subject, base_url) \
            if entry.get("type") == "lab_report" and extras is not None else None
        if specimen:  # an order cancelled because its tube broke says why (SPM-21)
            url = full_url("specimen", entry.get("id"))
            extras[url] = specimen
            res["specimen"] = [{"reference": url}]
    elif resource == "DocumentReference":
        error = fhir_status(status, resource) == "entered-in-error"
        res.update(status="entered-in-error" if error else "current",
                   docStatus=None if error else reissued_status(
                       fhir_status(status, resource), details, resource),
                   masterIdentifier=document_id(entry.get("key")),
                   type=entry_concept(entry, base_url, "document"), subject=subject,
                   date=fhir_instant(entry.get("effective")) or
                   fhir_instant(entry.get("issued")),
                   author=[author_reference(entry, details)],
                   description=fhir_string(entry.get("display")),
                   securityLabel=[{"coding": [s]} for s in security_labels(entry, details)],
                   content=[{"attachment": document_attachment(entry, base_url, withheld)}])
        res["identifier"] = document_identifiers(entry, details, withheld)
        signed = legal_authenticator(details, extras)
        if signed:
            res["authenticator"] = signed
        replaced = fhir_string(details.get("replaces"))
        if replaced and not error:  # a new version (CDA RPLC, MDM^T10 / TXA-13)
            target = document_id(replaced) or {"value": replaced.removeprefix(DOCUMENT_KEY)}
            res["relatesTo"] = [{"code": "replaces", "target": {
                "type": "DocumentReference", "identifier": target}}]
        studies = imaging_studies(entry, details, subject, extras)
        # R4 DocumentReference has neither imagingStudy nor basedOn: the images and the
        # orders it answers (CDA inFulfillmentOf, with the REF prescriber) are its context
        related = studies + document_orders(entry, details, subject, extras) + \
            document_consents(details)
        if related:
            res["context"] = {"related": related}
        data_enterer(entry, details, extras)
    elif resource == "Condition":
        res.update(clinicalStatus=clinical_status(status, resource, details, "condition-clinical"),
                   verificationStatus=verification(status, resource, details,
                                                   "condition-ver-status"),
                   code=entry_concept(entry, base_url, "problem", details), subject=subject,
                   onsetDateTime=effective,
                   severity=coded_concept(details.get("severity"), base_url),
                   bodySite=[body_site(details.get("target_site"), base_url)])
        abatement(res, status, details)
        res["stage"] = stages(entry, details, subject, base_url,
                              extras if extras is not None else {})
    elif resource == "AllergyIntolerance":
        res.update(clinicalStatus=clinical_status(status, resource, details,
                                                  "allergyintolerance-clinical"),
                   verificationStatus=verification(status, resource, details,
                                                   "allergyintolerance-verification"),
                   code=allergen(entry, details, base_url), patient=subject,
                   onsetDateTime=effective,
                   reaction=allergy_reactions(details.get("reactions"), base_url))
        verified = (res["verificationStatus"] or {}).get("coding", [{}])[0].get("code")
        if res["clinicalStatus"] is None and verified != "entered-in-error":
            # R4 ait-1 (a rule): a clinicalStatus unless entered in error. Unstated, it was
            # left out and the resource was invalid; 'unknown' is said, never guessed
            res["clinicalStatus"] = {"extension": [{"url": DATA_ABSENT_EXTENSION,
                                                    "valueCode": "unknown"}]}
        res["note"] = absent_reactions(details.get("absent_reactions"), base_url)
        kind = details.get("allergy_type")
        if not isinstance(kind, Mapping) and fhir_string(details.get("allergen_text")):
            kind = {"system": entry.get("system"), "code": entry.get("code")}
        res.update(allergy_kind(kind))
        critical = details.get("criticality")  # CI-SIS FR-Criticite: FHIR's own codes
        if isinstance(critical, Mapping) and critical.get("code") in CRITICALITIES:
            res["criticality"] = critical["code"]
        elif isinstance(critical, Mapping):  # C-CDA: HL7 ObservationValue CRITH...
            res["criticality"] = criticalities().get(
                (str(critical.get("system") or ""), str(critical.get("code") or "")))
    elif resource == "MedicationRequest":
        low = fhir_datetime(details.get("period_low"))
        high = fhir_datetime(details.get("period_high"))
        res.update(status=fhir_status(status, resource) or "unknown",
                   intent=INTENTS.get(str(details.get("mood") or "").upper(), "plan"),
                   medicationCodeableConcept=entry_concept(entry, base_url, "medication",
                                                           details),
                   subject=subject, authoredOn=effective if not (low or high) else None,
                   dosageInstruction=sited(medication_dosages(details, base_url), details,
                                           base_url))
        if details.get("negated"):  # 'ne pas prendre': a request not to give it
            res["doNotPerform"] = True
        dispense_request(res, details, low, high, base_url)
    elif resource == "MedicationStatement":
        taken = "not-taken" if details.get("negated") else fhir_status(status, resource)
        low = fhir_datetime(details.get("period_low"))
        high = fhir_datetime(details.get("period_high"))
        res.update(status=taken or "unknown",
                   medicationCodeableConcept=entry_concept(entry, base_url, "medication",
                                                           details),
                   subject=subject,
                   dosage=sited(medication_dosages(details, base_url), details, base_url))
        if low or high:
            res["effectivePeriod"] = {"start": low, "end": high}
        else:
            res["effectiveDateTime"] = effective
    elif resource == "MedicationDispense":
        fill_dispense(res, entry, details, subject, base_url)
    elif resource == "Immunization":
        res.update(status="not-done" if details.get("negated")
                   else fhir_status(status, resource) or "completed",
                   vaccineCode=entry_concept(entry, base_url, "immunization", details),
                   patient=subject,
                   site=body_site(details.get("approach_site"), base_url))
        vaccination(res, details, base_url)
        maker = fhir_string(details.get("manufacturer"))
        if maker:  # with the lot, who made it (C-CDA immunization medication information)
            res["manufacturer"] = {"display": maker}
        res["performer"] = performers(details, "Immunization")
        if effective:
            res["occurrenceDateTime"] = effective
        else:  # required in R4; said as it is rather than invented
            res["occurrenceString"] = "date not stated by the sender"
    elif resource == "Procedure":
        res.update(status="not-done" if details.get("negated")
                   else "stopped" if details.get("aborted") and status == "cancelled"
                   else fhir_status(status, resource) or "unknown",
                   code=entry_concept(entry, base_url, "procedure", details), subject=subject,
                   performedDateTime=effective,
                   bodySite=[body_site(details.get("target_site"), base_url)],
                   performer=performers(details, "Procedure"))
        end = fhir_datetime(details.get("period_high"))
        if end:  # done over a period (CDA effectiveTime low and high): its end was dropped
            res.pop("performedDateTime", None)
            res["performedPeriod"] = {"start": effective, "end": end}
        way_in = site_words(details.get("approach_site"))
        if way_in:  # R4 bodySite is the target; the way in (a coronary angiography by the
            # right radial artery) has no element of its own but a BodyStructure extension
            res["note"] = [{"text": f"{APPROACH_SITE}: {way_in}"}]
        told = patient_instruction(details)
        if told:  # R4 Procedure has no patientInstruction: what the patient was told, said
            res["note"] = [*(res.get("note") or []), {"text": f"{PATIENT_TOLD}: {told}"}]
    elif resource == "FamilyMemberHistory":
        res.update(status=fhir_status(status, resource) or "completed", patient=subject,
                   relationship=relationship(details.get("relative"), base_url),
                   condition=[{"code": entry_concept(entry, base_url, "family_history")}])
        sex = relative_sex(details.get("relative"))
        if sex:
            res["sex"] = sex
        if effective:
            res["date"] = effective
    elif resource == "ServiceRequest":
        res.update(status=fhir_status(status, resource) or "unknown",
                   intent=INTENTS.get(str(details.get("mood") or "").upper(), "plan"),
                   code=entry_concept(entry, base_url, "plan", details), subject=subject,
                   occurrenceDateTime=effective,
                   # what the patient is told ('à jeun depuis minuit': a C-CDA Instruction
                   # in a planned procedure)
                   patientInstruction=patient_instruction(details))
        where = destination_location(details, base_url, extras if extras is not None else {})
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
        goal(res, entry, details, subject, base_url,
             fhir_status(status, resource) or "active")
    elif resource == "Encounter":
        encounter(res, entry, details, subject, base_url)
        destination(res, details, base_url, extras if extras is not None else {})
        disposition = coded_concept(details.get("discharge_disposition"), base_url)
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
    reasons = reason_codes(details, base_url) if resource in REASONED else []
    if reasons:
        res["reasonCode"] = [*(res.get("reasonCode") or []), *reasons]
    if resource in NOTED or resource == "Observation":
        said = described_notes(details, resource not in REASONED) + \
            qualifier_notes(details)
        if said:
            res["note"] = [*(res.get("note") or []), *said]
    if resource in NOTED:
        notes = comment_annotations(details)
        if notes:
            res["note"] = [*(res.get("note") or []), *notes]
    about = about_someone_else(details.get("subject"))
    if about is not None:
        # A newborn's weight, a fetus's malformation read from the mother's document
        # (details.subject): exported as hers without a word. Observation says whom it is
        # about in focus; every resource says it in a note, which any reader shows.
        if resource == "Observation":
            res["focus"] = [about]
        said = f"{ABOUT_SOMEONE_ELSE}: {about['display']}"
        if resource == "Observation" or resource in NOTED:
            res["note"] = [{"text": said}, *(res.get("note") or [])]
        else:  # R4 DiagnosticReport, DocumentReference, Encounter have no note: a note
            # there made the whole Bundle invalid; their narrative says it
            res["text"] = {"status": "additional", "div": narrative(said)}
    if resource not in TOLD_ELSEWHERE:
        told_note(res, resource, details)
    sources(res, resource, details, subject)
    res.setdefault("identifier", [])
    res["identifier"].insert(0, {"system": f"{base_url}/entries",
                                 "value": str(entry.get("id"))})
    security = security_labels(entry, details)
    if security:
        res["meta"] = {"security": security}
    if resource in DELIVERED and extras is not None:
        deliveries(res, entry, details, subject, base_url, extras)
    return res


def device(entry: Mapping, subject: dict, base_url: str) -> dict:
    """The Device a DeviceUseStatement points at (R4 requires a reference): its type is the
    entry's code (EMDN, LPP, GMDN, SNOMED CT...), its patient the dossier's."""
    return {"resourceType": "Device", "type": entry_concept(entry, base_url, "device"),
            "patient": subject}
