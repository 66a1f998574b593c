"""Immunization details: target diseases, dose number and occurrence."""

from __future__ import annotations

from normalizers.cda.coded import coded_or_words
from normalizers.cda.common import Ctx, system_name
from normalizers.cda.values import untyped
from normalizers.codes import LOINC
from parsers.cda.model import INT, IVL, PQ, REAL, ClinicalStatement, Observation, Section

TARGET_DISEASE = "IND"  # eHDSI immunization: participant typeCode IND, participantRole AGNT


def target_diseases(act: ClinicalStatement, ctx: Ctx,
                    section: Section) -> list[dict[str, str]]:
    """The diseases or agents a vaccination protects against (eHDSI / epSOS Immunization:
    participant typeCode IND / participantRole classCode AGNT / code, the playingEntity
    ENT naming it in words when uncoded): a vaccine combining several (DTP) says which
    ones it covers. They were not read."""
    out = []
    for part in act.participants:
        entity = part.entity
        if part.type_code != TARGET_DISEASE or entity is None or \
                entity.role != "participantRole" or entity.class_code not in ("AGNT", ""):
            continue
        found = coded_or_words(entity.code, ctx, section) if entity.code is not None \
            else None
        if found is None and entity.player_names and entity.player_names[0]:
            found = {"text": entity.player_names[0]}
        if found is not None:
            out.append(found)
    return out


# LOINC 'dose number in series' (CCD 2.16.840.1.113883.10.20.1.46, CI-SIS
# FR-Rang-de-la-vaccination, eHDSI)
DOSE_NUMBER = "30973-2"


def dose_number(act: ClinicalStatement) -> int | str | None:
    """Which dose of its series a vaccination was (the series number observation it nests,
    INT value: 'rang de la vaccination' 1, 2, booster...): it was skipped as no entry of
    its own, and with it whether the course is complete. The number as an int, what the
    sender wrote when it is not one; None when there is none."""
    for rel in act.entry_relationships:
        obs = rel.act
        if not isinstance(obs, Observation) or obs.code is None or \
                obs.code.code != DOSE_NUMBER or not obs.values or \
                system_name(obs.code.code_system) != LOINC:
            continue
        value = untyped(obs.values[0])
        if isinstance(value, INT):
            number = value.number
            return number if number is not None else (value.value.strip()[:20] or None)
        if isinstance(value, (PQ, REAL)) and value.number is not None and \
                value.number == value.number.to_integral_value():
            return int(value.number)  # '2' sent as a PQ or REAL: still the second dose
    return None


def occurrence(act: ClinicalStatement) -> int | None:
    """Which administration of its series an immunization done was, said by repeatNumber:
    in event mood it is the ordinal of this occurrence (CDA R2 / RIM; C-CDA Immunization
    Activity 1198-8838: '3' is the third dose), the way C-CDA senders give the dose number
    that IHE PCC / CI-SIS nest as a 30973-2 observation. It was dropped."""
    count = getattr(act, "repeat_number", None)
    text = count.value.strip() if isinstance(count, IVL | INT) else ""
    if not text and isinstance(count, IVL) and isinstance(count.low, INT) and \
            isinstance(count.high, INT) and count.low.value == count.high.value:
        text = count.low.value.strip()  # <low value="2"/><high value="2"/>
    # XML Schema integer: ASCII digits ('٣' is a digit to str.isdigit, not to the schema)
    return int(text) if text.isascii() and text.isdigit() and int(text) > 0 else None
