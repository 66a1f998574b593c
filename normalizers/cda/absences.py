"""Lists said empty ('no known allergies', 'no current problems'): one absence entry
for the list, never an item of it."""

from __future__ import annotations

from normalizers.cda.common import (
    ABSENCE,
    ACT_CODE,
    ALLERGY,
    IPS_ABSENT_SYSTEM,
    Ctx,
    absent_codes,
    negated_absences,
)
from normalizers.cda.values import untyped
from normalizers.model import Entry
from parsers.cda.model import CD, ClinicalStatement, Observation


def absence(entry: Entry, kind: str, ctx: Ctx) -> Entry | None:
    """A statement coded 'no known medications' (IPS absent-unknown codes, CI-SIS) was filed
    as a medication, a vaccination, a procedure whose product is that code. Nothing known:
    an 'absence' entry saying of what (details.absent); no information: not filed."""
    if absent_codes()[(entry.system or "", entry.code or "")] != "absent":
        ctx.warnings.append(f"CDA_NO_INFORMATION: {entry.source_ref}: "
                            f"{'an' if kind[0] in 'aeiou' else 'a'} {kind} statement "
                            "that says there is no information, not filed")
        return None
    entry.type, entry.mapped = ABSENCE, True  # a shared code system, not a local code
    entry.details["absent"] = kind
    if entry.status == "active":  # the list is empty now: a statement made, no result to come
        entry.status = "final"  # ('active' was exported as a preliminary Observation)
    return entry


def no_diagnosis(entry: Entry, act: ClinicalStatement) -> bool:
    """A problem whose value, the diagnosis, is a nullFlavor with no words, under a code that
    only says 'problem' (C-CDA R2.1 Problem Observation, value nullFlavor NI: 'no information
    on the problems'; CI-SIS FR-Probleme the same). It was filed as a problem named
    'Problem', which a clinician reads as a diagnosis made. A problem the text names, one
    whose value points at words (found or not: the sender meant to name something), or a
    negated one (an absence, read above), is not this."""
    value = untyped(act.values[0]) if isinstance(act, Observation) and act.values else None
    return (isinstance(value, CD) and not value.original_text
            and not value.original_text_reference
            and entry.value is None and "value_null_flavor" in entry.details
            and not entry.details.get("negated")
            and negated_absences().get((entry.system or "", entry.code or ""))
            == "no-known-problems")


ASSERTION = "ASSERTION"  # HL7 ActCode: the C-CDA Allergy - Intolerance Observation's code


def no_allergy(entry: Entry) -> bool:
    """A C-CDA R2.1 Allergy - Intolerance Observation (code ASSERTION) whose value, the
    allergy's type, is a nullFlavor and whose substance is coded nullFlavor with no words
    (value NI, playingEntity/code NI: 'no information on allergies'). It was filed as an
    allergy 'ASSERTION' to nothing. One naming its substance (coded or in words), a type
    with an unknown substance ('allergy to substance', participant UNK: an allergy the
    patient cannot name), or a negated one, is not this."""
    return (entry.code == ASSERTION and entry.system == ACT_CODE and entry.value is None
            and "value_null_flavor" in entry.details and not entry.details.get("negated")
            and not entry.details.get("allergen_text"))


def negated_absence(entry: Entry, kind: str) -> Entry:
    """A generic code negated (C-CDA: no 'allergy to substance', no 'problem', no 'drug or
    medicament') is the list said empty: the 'absence' an IPS document says with its own
    code, under that code (cda_negated_absences.csv), the code sent in details. An allergy
    naming its substance in words only ('no allergy to latex') is no absence."""
    if kind == ALLERGY and "allergen_text" in entry.details:
        return entry
    sent = {"code": entry.code, "system": entry.system, "display": entry.display}
    entry.code = negated_absences()[(entry.system or "", entry.code or "")]
    entry.system = IPS_ABSENT_SYSTEM
    entry.display = entry.code.replace("-", " ").capitalize()  # 'No known allergies'
    entry.type, entry.mapped = ABSENCE, True
    if entry.status == "active":  # as ``absence``: a statement made, no result to come
        entry.status = "final"
    entry.value = entry.value_type = None  # the generic code was the value: no finding
    for said in ("negated", "value_code", "observation_code"):  # all in 'absent' now
        entry.details.pop(said, None)
    entry.details["absent"] = kind
    entry.details["absent_as_sent"] = {k: v for k, v in sent.items() if v}
    return entry
