"""Notes: comments, what nested observations and qualifiers say that no element holds, and
the reasons a fact was done or given (reasonCode)."""

from __future__ import annotations

import html
from collections.abc import Mapping

from dossiers.fhir.codings import said_concept
from dossiers.fhir.common import PATIENT_TOLD, fhir_code, fhir_string
from dossiers.fhir.conditions import staging_role
from dossiers.fhir.family import narrative
from dossiers.fhir.medications import patient_instruction

# Details holding what the sender wrote about an entry in words, wherever it was written:
# on the entry itself, on the whole exam (a lab's comment on the urine culture, on each of
# its results) or on the concern a problem or an allergy belongs to.
_NOTE_DETAILS = ("comments", "exam_comments", "concern_comments")
# Resources with a 'note' (R4) besides Observation, which always has its list.
NOTED = frozenset({"Condition", "AllergyIntolerance", "MedicationStatement",
                   "MedicationRequest", "MedicationDispense", "Immunization",
                   "Procedure", "FamilyMemberHistory", "ServiceRequest",
                   "DeviceUseStatement", "Goal"})


def comment_annotations(details: Mapping) -> list[dict]:
    """FHIR Annotations of every comment ``details`` keeps (``_NOTE_DETAILS``)."""
    out = []
    for key in _NOTE_DETAILS:
        said = details.get(key)
        for c in [said] if isinstance(said, str) else said or ():
            text = fhir_string(c.get("text") if isinstance(c, Mapping) else c)
            if text:
                out.append({"text": text})
    return out


# What a statement's nested observations say that no element of its resource holds
# (normalizers/cda/described.py _described): noted, each with its name
_DESCRIBED_NOTES = (("observations", ""), ("reasons", "reason: "),
                    ("characteristics", ""))
# Resources with a reasonCode (R4) of those an entry becomes
REASONED = frozenset({"Procedure", "MedicationStatement", "MedicationRequest",
                      "ServiceRequest", "Immunization", "DeviceUseStatement"})


def reason_codes(details: Mapping, base_url: str) -> list[dict]:
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
        concept = said_concept(coded.get("code"), coded.get("system"),
                               coded.get("display"), base_url, said.get("value")) \
            if coded else said_concept(said.get("code"), said.get("system"),
                                       said.get("display"), base_url, said.get("value"))
        if concept:
            out.append(concept)
    return out


def _described_words(said: Mapping) -> str | None:
    """'Taille: 2.5', 'Suivi du traitement: actif', 'Localisation anatomique: antérieur
    (Droit)' of a described observation {code, display, value, unit, qualifiers, parts}."""
    name = fhir_string(said.get("display")) or fhir_code(said.get("code"))
    coded = said.get("value_code") if isinstance(said.get("value_code"), Mapping) else {}
    value = fhir_string(said.get("value")) or fhir_string(coded.get("display")) \
        or fhir_code(coded.get("code"))
    if value and fhir_string(said.get("unit")):
        value = f"{value} {fhir_string(said.get('unit'))}"
    sides = [fhir_string(q["value"].get("display")) or fhir_code(q["value"].get("code"))
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


def qualifier_notes(details: Mapping) -> list[dict]:
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
            words = fhir_string(value.get("display")) or fhir_string(value.get("text")) or \
                fhir_code(value.get("code"))
            if not words or words == "None":
                continue
            name = q.get("name") if isinstance(q.get("name"), Mapping) else {}
            label = fhir_string(name.get("display")) or fhir_code(name.get("code")) or QUALIFIER
            out.append({"text": f"{label}: {words}"})
    return out


def described_notes(details: Mapping, reasons: bool = True) -> list[dict]:
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
                                                 staging_role(said)):
                continue
            words = _described_words(said)
            if words:
                out.append({"text": f"{prefix}{words}"})
    return out


# Resources whose export gives details.patient_instructions an element of its own
# (ServiceRequest.patientInstruction, Dosage.patientInstruction, the Procedure's note).
TOLD_ELSEWHERE = frozenset({"ServiceRequest", "Procedure", "MedicationStatement",
                            "MedicationRequest", "MedicationDispense", "Immunization"})


def told_note(res: dict, resource: str, details: Mapping) -> None:
    """What the patient was told (details.patient_instructions: a C-CDA Instruction under a
    problem, an observation or an encounter) as a note, or in the narrative of an R4
    Encounter, which has no note: it was stored and exported nowhere."""
    told = patient_instruction(details)
    if not told:
        return
    said = f"{PATIENT_TOLD}: {told}"
    if resource == "Observation" or resource in NOTED:
        res["note"] = [*(res.get("note") or []), {"text": said}]
    elif resource == "Encounter":
        div = (res.get("text") or {}).get("div")
        res["text"] = {"status": "additional", "div": div[:-len("</div>")] +
                       f"<p>{html.escape(said)}</p></div>" if div else narrative(said)}
