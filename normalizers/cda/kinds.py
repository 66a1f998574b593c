"""Which kind of entry a clinical statement is (result, problem, medication...): its
templates, its section and its class, and the structure read elsewhere."""

from __future__ import annotations

from functools import cache

from normalizers.cda.common import (
    ALLERGY,
    CIM10,
    DEVICE,
    DISPENSE,
    ENCOUNTER,
    FAMILY_HISTORY,
    IMMUNIZATION,
    MEDICATION,
    OBSERVATION,
    PROBLEM,
    PROCEDURE,
    RESULT_BY_CONTEXT,
    SKIP,
    VITAL_SIGN,
    kind_table,
    system_name,
)
from normalizers.cda.docstatus import DOCUMENT_STATUS_TEMPLATE
from normalizers.cda.medications import DOSAGE_INSTRUCTIONS
from normalizers.cda.references import COMMENT_TEMPLATES
from normalizers.cda.specimens import (
    SPECIMEN_COLLECTION_APSR,
    SPECIMEN_COLLECTIONS,
    SPECIMEN_RECEIVED,
    SPECIMEN_RECEIVED_FR,
)
from normalizers.cda.values import untyped
from normalizers.model import LAB_RESULT
from parsers.cda.model import (
    CD,
    IVL,
    PQ,
    ClinicalStatement,
    Encounter,
    Observation,
    Procedure,
    SubstanceAdministration,
)


# Statements that make no entry of their own by design, read where they belong: a
# specimen's collection and reception (into its results), a comment (into what it is on),
# a medication's parts and a dispense's dosage (into the medication), the document's status
# (into the document).
@cache
def read_elsewhere() -> frozenset[str]:
    return frozenset({*SPECIMEN_COLLECTIONS, SPECIMEN_COLLECTION_APSR, SPECIMEN_RECEIVED,
                      SPECIMEN_RECEIVED_FR, DOCUMENT_STATUS_TEMPLATE,
                      DOSAGE_INSTRUCTIONS, *COMMENT_TEMPLATES})


# A statement often declares several templates (IHE, CCD, CI-SIS): the most specific wins
# (an immunization is also a CCD medication activity, a vital sign a CCD result).
_PRECEDENCE = (SKIP, FAMILY_HISTORY, IMMUNIZATION, VITAL_SIGN, ALLERGY, PROBLEM, LAB_RESULT,
               MEDICATION, DISPENSE, DEVICE, ENCOUNTER, PROCEDURE)


def is_typed(act: ClinicalStatement) -> bool:
    kinds = kind_table()
    return any(t.root in kinds and kinds[t.root] != SKIP for t in act.template_ids)


# Sections whose untyped statements (no templateId we know: senders do omit them, other
# countries' documents have their own) are still of one kind when their structure agrees: a
# measurement among vital signs, a coded problem in a problem list, an observation naming a
# substance among allergies. Under a template of their own they were plain observations.
VITAL_SIGNS_SECTION = "8716-3"  # LOINC Vital signs
PLAN_OF_TREATMENT_SECTION = "18776-5"  # LOINC Plan of care note (C-CDA, CI-SIS plan de soins)
SECTION_KINDS = {VITAL_SIGNS_SECTION: VITAL_SIGN, "11450-4": PROBLEM, "48765-2": ALLERGY}
IMMUNIZATIONS_SECTION = "11369-6"  # LOINC History of Immunization Narrative


def entry_kind(act: ClinicalStatement, in_results: bool, section_code: str = "") -> str | None:
    kinds = kind_table()
    found = {kinds[t.root] for t in act.template_ids if t.root in kinds}
    if RESULT_BY_CONTEXT in found:  # the CCD 'result observation' every IHE PCC simple
        # observation also carries (functional status, social history...): a result only
        # among results, unless a more specific template says what it is
        found.discard(RESULT_BY_CONTEXT)
        if not found:
            if in_results:
                return LAB_RESULT
            if section_code == VITAL_SIGNS_SECTION and act.values:
                return VITAL_SIGN  # CCD 1.0 writes its vital signs with this template only
            return OBSERVATION if act.values else None
    if found:
        if len(found) == 1:  # nearly always (a result's templates all say 'result')
            return found.pop()
        return min(found, key=lambda k: _PRECEDENCE.index(k) if k in _PRECEDENCE else 99)
    if isinstance(act, SubstanceAdministration):
        # among immunizations, a vaccination whatever template of another country it has
        return IMMUNIZATION if section_code == IMMUNIZATIONS_SECTION else MEDICATION
    if isinstance(act, Procedure | Encounter) and not in_results and \
            (act.code is not None and (act.code.code or act.code.translations) or
             isinstance(act, Procedure) and (act.text.strip() or act.text_reference)) and \
            read_elsewhere().isdisjoint(act.template_roots):
        # a procedure or an encounter element is one whatever its template (IPS, another
        # country's, none at all): they were not filed (CDA_NOT_FILED 'of a kind not read
        # here'); a specimen's collection (among results, or by its template) is read there,
        # one naming nothing (a reference to an encounter by its id) is no statement. A
        # procedure with no code but its text ('Ablation du plâtre') is named by it
        return PROCEDURE if isinstance(act, Procedure) else ENCOUNTER
    if not isinstance(act, Observation):
        return None
    by_section = SECTION_KINDS.get(section_code)
    if by_section == ALLERGY and any(p.type_code == "CSM" and p.entity is not None and
                                     p.entity.player_code is not None
                                     for p in act.participants):
        return ALLERGY
    if act.values:
        value = untyped(act.values[0])
        if isinstance(value, CD) and (system_name(value.code_system) == CIM10 or
                                      by_section == PROBLEM):
            return PROBLEM
        if by_section == VITAL_SIGN and isinstance(value, PQ | IVL):
            return VITAL_SIGN
        if in_results:
            return LAB_RESULT
        return OBSERVATION
    return None
