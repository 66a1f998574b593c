"""Who says what: diagnosis roles, the author and informants of an entry (a section's,
an entry's own, the patient as source)."""

from __future__ import annotations

from typing import Any

from normalizers.cda.common import PROBLEM, Ctx, kind_table
from normalizers.cda.header import author_party, header_time
from normalizers.cda.tables import diagnosis_role_table
from normalizers.cda_sources import PATIENT, informants
from normalizers.codes import is_loinc_system
from normalizers.model import Entry
from parsers.cda.model import CD, TS, ClinicalStatement, Organizer, Section


def _role_of(template_roots: set[str], code: CD | None) -> str | None:
    """The diagnosis role an act or section says (tables/cda_diagnosis_roles.csv): by its
    template, else by its LOINC code."""
    roles = diagnosis_role_table()
    found = next((roles[("template", t)] for t in sorted(template_roots)
                  if ("template", t) in roles), None)
    if found is None and code is not None and code.code and is_loinc_system(code.code_system):
        found = roles.get(("loinc", code.code.strip()))
    return found


def _roled(act: ClinicalStatement, out: dict[str, str], diagnoses: set[str]) -> None:
    """The path of every statement in ``act`` (itself included) that says a role -> it;
    into ``diagnoses`` the paths of those that are problems by their template (IHE PCC,
    CCD, C-CDA Problem Entry) or name none."""
    role = _role_of(act.template_roots, act.code)
    if role:
        out[act.path] = role
    kinds = kind_table()
    if not act.template_roots or any(kinds.get(t) == PROBLEM for t in act.template_roots):
        diagnoses.add(act.path)
    for rel in act.entry_relationships:
        if rel.act is not None:
            _roled(rel.act, out, diagnoses)
    if isinstance(act, Organizer):
        for component in act.components:
            _roled(component, out, diagnoses)


def diagnosis_roles(act: ClinicalStatement, made: list[Entry], section: Section) -> None:
    """Whether a problem is an admission or a discharge diagnosis (details.diagnosis_role):
    said by the nearest act wrapping it (C-CDA Hospital Admission / Discharge Diagnosis
    4.34 / 4.33), else by its section (IHE PCC, CI-SIS, C-CDA admission and discharge
    diagnosis sections). Only the section's code said it: such an act placed elsewhere
    (a discharge diagnosis in the problem list of a discharge summary) read as any
    problem. A problem nested in another, or an observation filed as a problem for its
    ICD-10 value (a sign beside the diagnosis, CI-SIS SDM-MR's FR-Simple-Observation), is
    no diagnosis of the stay."""
    problems = [e.source_ref for e in made if e.type == PROBLEM]
    if not problems:
        return
    holders: dict[str, str] = {}
    diagnoses: set[str] = set()
    _roled(act, holders, diagnoses)
    own = _role_of(section.template_roots, section.code)
    if not holders and own is None:
        return
    for entry in made:
        path = entry.source_ref
        if entry.type != PROBLEM or path not in diagnoses or \
                any(path.startswith(p + "/") for p in problems):
            continue
        owner = max((p for p in holders if path == p or path.startswith(p + "/")), key=len,
                    default=None)
        role = holders[owner] if owner is not None else own
        if role:
            entry.details["diagnosis_role"] = role


def attributed(act: ClinicalStatement, made: list[Entry], section_authors: tuple,
               ctx: Ctx) -> None:
    """Who recorded the facts of one entry that name no author of their own: the nearest
    enclosing statement's author (an organizer's, an act's: CDA R2 context conduction
    through component and entryRelationship), else the section's (CDA R2 Section.author,
    which its nested sections and entries inherit unless they say otherwise), as
    details.recorded_by. A problem list a specialist wrote in a GP's summary (the section's
    author) read as recorded by nobody, and the results of a battery the lab's biologist
    authored likewise. The header's author stays implicit: every entry points at its
    document, whose details name it."""
    if all("recorded_by" in e.details for e in made):
        return
    nested: dict[str, list] = {}
    _authored(act, nested)
    if not nested and not section_authors:
        return
    for entry in made:
        if "recorded_by" in entry.details:
            continue
        path = entry.source_ref
        owner = max((p for p in nested if path.startswith(p + "/")), key=len, default=None)
        authors = nested[owner] if owner is not None else section_authors
        recorded = [a for a in (entry_author(x, ctx) for x in authors) if a]
        if recorded:
            entry.details["recorded_by"] = recorded


def _authored(act: ClinicalStatement, out: dict[str, list]) -> None:
    """The path of every statement in ``act`` (itself included) that names authors -> them."""
    if act.authors:
        out[act.path] = act.authors
    for rel in act.entry_relationships:
        if rel.act is not None:
            _authored(rel.act, out)
    if isinstance(act, Organizer):
        for component in act.components:
            _authored(component, out)


def sources(act: ClinicalStatement, entry: Entry, ctx: Ctx) -> None:
    """Who stated the fact and who recorded it, from the statement's own informant and
    author (C-CDA Author Participation, IHE PCC / CI-SIS entry-level author; the informant:
    the patient, a relative, a professional): details.informants and details.recorded_by
    ({ids, role, organization, time}, as the header's authors). Both were dropped: a
    patient-reported allergy looked like one a clinician saw, and a problem carried no
    trace of who recorded it nor when. What the entry already says (its own, before its
    concern's: CDA context conduction, the nearer one wins) is kept."""
    if act.informants and "informants" not in entry.details:
        said = informants(act.informants, ctx.patient_ids)
        if said:
            entry.details["informants"] = said
    if act.authors and "recorded_by" not in entry.details:
        recorded = [entry_author(a, ctx) for a in act.authors]
        recorded = [a for a in recorded if a]
        if recorded:
            entry.details["recorded_by"] = recorded


def entry_author(author: Any, ctx: Ctx) -> dict[str, Any]:  # noqa: ANN401
    """An entry's author as the header's (``author_party``), or, when its id is one of the
    patient's (C-CDA patient-generated data: assignedAuthor/id = patientRole/id), the
    patient with the time: the patient's identifiers (an INS) are not copied into the
    details as a professional's."""
    entity = author.entity
    if entity is not None and ctx.patient_ids and \
            any(i.key in ctx.patient_ids for i in entity.ids if i.root):
        out: dict[str, Any] = {"source": PATIENT}
        if isinstance(author.time, TS) and author.time.value:
            out["time"] = header_time(author.time)
        return out
    return author_party(author)
