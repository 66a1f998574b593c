"""Instructions that are entries of their own: what a plan of care or a discharge tells the
patient to do ('surveiller la glycémie matin et soir', 'reprendre le travail dans 15 jours')."""

from __future__ import annotations

from normalizers.cda.base import base_entry
from normalizers.cda.common import PLAN, Ctx, section_code
from normalizers.cda.medications import PATIENT_INSTRUCTIONS, SECTION_ENTRY, is_instruction
from normalizers.cda.references import comment_text
from normalizers.cda.tables import instruction_sections
from normalizers.model import ENTRY_MAX, Entry
from parsers.cda.model import ClinicalStatement, Section

INSTRUCTION = "instruction"  # details.planned of a plan that is an instruction


def is_planned_instruction(act: ClinicalStatement, section: Section) -> bool:
    """Whether a statement is an Instruction (C-CDA R2.1 2.16.840.1.113883.10.20.22.4.20,
    IHE PCC / CI-SIS FR-Instructions-au-patient: tables/cda_medication_parts.csv) that is an
    entry of its own, intended (moodCode INT, not EVN), in a section whose instructions are
    the plan (tables/cda_instruction_sections.csv: plan of care, instructions, discharge)."""
    return act.mood_code not in ("", "EVN") and is_instruction(act) and \
        SECTION_ENTRY.search(act.path) is not None and \
        section_code(section) in instruction_sections()


def planned_instruction(act: ClinicalStatement, section: Section, ctx: Ctx,
                        parent_key: str | None) -> Entry | None:
    """An instruction of the plan as a plan entry (details.planned 'instruction'), its
    words in details.patient_instructions as an instruction under a statement has them
    (exported as ServiceRequest.patientInstruction), its code (C-CDA: Patient Education,
    SNOMED CT; IHE PCC: PINSTRUCT) the entry's, else it is named by its words. It was
    only said CDA_NOT_FILED and the plan lost what the patient is to do. None when it says
    nothing (no words, no code): said there."""
    words = comment_text(act, section)
    if not any(c.isalnum() for c in words):  # '-': the sender's 'no instruction'
        words = ""
    entry = base_entry(act, PLAN, section, ctx, parent_key)
    if not words and not entry.code:
        return None
    entry.details["planned"] = INSTRUCTION
    if words:
        entry.details[PATIENT_INSTRUCTIONS] = [words]
    if not entry.code:  # named by its words (a coded one keeps its code's name: the words
        # are no display of PINSTRUCT)
        entry.display, entry.mapped = words[:ENTRY_MAX["display"]], False
    return entry
