"""Statements never filed: said once per kind per document (CDA_NOT_FILED) with what
they hold, never dropped silently."""

from __future__ import annotations

from normalizers.cda.common import (
    ALLERGY,
    CONCERN,
    CONTAINER,
    DEVICE,
    DISPENSE,
    ENCOUNTER,
    FAMILY_HISTORY,
    IMMUNIZATION,
    MEDICATION,
    NOT_FILED,
    OBSERVATION,
    PROBLEM,
    PROCEDURE,
    VITAL_SIGN,
    Ctx,
    kind_meanings,
    kind_table,
)
from normalizers.cda.kinds import read_elsewhere
from normalizers.cda.medications import SECTION_ENTRY, is_instruction
from normalizers.cda.observations import empty_string, placeholder_value
from normalizers.cda.references import is_comment
from normalizers.cda.tables import medication_parts
from normalizers.cda.values import untyped
from normalizers.model import LAB_RESULT
from parsers.cda.model import (
    ClinicalStatement,
    Observation,
    ObservationMedia,
    Organizer,
    Section,
    Supply,
)

# Entry kinds that file a statement when it names something: one naming nothing is said
_FILED_KINDS = frozenset({LAB_RESULT, VITAL_SIGN, OBSERVATION, PROBLEM, ALLERGY,
                          FAMILY_HISTORY, MEDICATION, IMMUNIZATION, DISPENSE, DEVICE,
                          PROCEDURE, ENCOUNTER})


def not_filed(act: ClinicalStatement, kind: str | None, ctx: Ctx,
              section: Section) -> None:
    """A statement that made no entry, nor did anything it holds: counted for one
    CDA_NOT_FILED warning per kind and document (first path, count; codes and templates,
    never the patient's data), unless it is structure read elsewhere or holding nothing
    (a comment, a specimen, a reference, an empty organizer or concern). They were dropped
    without a word: an IHE Pharm PADV, a CI-SIS patient transfer, a dispense whose product
    reference pointed nowhere (eDISP-MED)."""
    if kind == CONCERN and not act.entry_relationships and \
            (act.text.strip() or act.text_reference):
        # a concern said in words alone (C-CDA R2.1 Health Concern Act, whose
        # observations are optional): not filed, but not without a word either
        what = "concern act holding no statement, only words"
    elif kind in (CONCERN, CONTAINER) or isinstance(act, Organizer | ObservationMedia):
        return  # what they hold was said (or filed) on its own; a container is read
        # elsewhere (the imaging act of a CR-IMG: in the header's service_events)
    elif any(t.root in read_elsewhere() for t in act.template_ids):
        return
    else:
        what = _not_filed_what(act, kind, section)
        if what is None:
            return
    seen = ctx.not_filed.get(what)
    if seen is None:
        ctx.not_filed[what] = [1, act.path]
    else:
        seen[0] += 1


def _not_filed_what(act: ClinicalStatement, kind: str | None, section: Section) -> str | None:
    """What a statement not filed is, for the CDA_NOT_FILED warning; None: nothing to say
    (structure read elsewhere, or nothing said beyond the narrative)."""
    if kind == NOT_FILED:
        meanings = kind_meanings()
        what = next((meanings[t.root] for t in act.template_ids
                     if kind_table().get(t.root) == NOT_FILED), act.kind)
    elif kind in _FILED_KINDS:
        if isinstance(act, Supply) and act.mood_code not in ("", "EVN"):
            return None  # a supply ordered with a prescription: its quantity, read there
        what = f"{kind} statement naming nothing (no code, words nor value)"
        if isinstance(act, Observation) and act.values and \
                placeholder_value(untyped(act.values[0]), section):
            what = f"{kind} whose value is a template placeholder ('(texte libre)'...)"
        elif isinstance(act, Observation) and empty_string(act.values):
            what = f"{kind} whose value is an empty string and whose text says nothing"
    else:
        parts = medication_parts()
        if is_comment(act):
            return None
        if is_instruction(act) and SECTION_ENTRY.search(act.path):
            # an instruction that is an entry of its own (C-CDA Plan of Treatment section:
            # 'surveiller la glycémie matin et soir'): read only as a statement's part, it
            # was dropped without a word; its words are the section's narrative. (One
            # nested in a statement not filed goes with it: that one is said.)
            return "instruction to the patient outside any statement (in the narrative only)"
        if any(t.root in parts for t in act.template_ids):
            return None
        if not act.template_ids and (act.code is None or not act.code.code):
            return None  # no template, no code: nothing said beyond the narrative
        template = act.template_ids[0].root if act.template_ids else "no templateId"
        code = f" code {act.code.code[:40]}" if act.code is not None and act.code.code \
            else ""
        what = f"{act.kind} {template[:64]}{code} of a kind not read here"
    return what
