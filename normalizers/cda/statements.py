"""One clinical statement of the body read into entries, by kind, with what it nests."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from normalizers.cda.absences import absence, negated_absence, no_allergy, no_diagnosis
from normalizers.cda.attribution import sources
from normalizers.cda.base import period_end
from normalizers.cda.common import (
    ABSENCE,
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
    PLAN,
    PROBLEM,
    PROCEDURE,
    SKIP,
    VITAL_SIGN,
    Ctx,
    absent_codes,
    absent_systems,
    negated_absences,
    section_code,
)
from normalizers.cda.described import describe
from normalizers.cda.docstatus import document_status
from normalizers.cda.encounters import ENCOUNTER_DIAGNOSIS, encounter_entry
from normalizers.cda.imaging import DICOM_STUDY, dicom_study, reported_exam
from normalizers.cda.instructions import is_planned_instruction, planned_instruction
from normalizers.cda.kinds import PLAN_OF_TREATMENT_SECTION, entry_kind, is_typed
from normalizers.cda.medications import (
    is_instruction,
    medication_entry,
    medication_part,
    names_a_product,
    nested_delivery,
    patient_instruction,
)
from normalizers.cda.notfiled import not_filed
from normalizers.cda.observations import observation_entry
from normalizers.cda.organizers import (
    DEVICE_PARTICIPATIONS,
    DEVICES_SECTION,
    FAMILY_HISTORY_SECTION,
    PLANNED_SUPPLY,
    RESULT_ORGANIZERS,
    battery_panel,
    organizer_group,
    organizer_status,
    statement_relative,
    sub_panel,
)
from normalizers.cda.procedures import device_entry, procedure_entry
from normalizers.cda.qualifiers import is_qualifier
from normalizers.cda.references import (
    ENTRY_LINKS_KEPT,
    ENTRY_REFERENCES,
    EXTERNAL_REFERENCE,
    INTERNAL_REFERENCE,
    MEDIA_KEPT,
    comment_text,
    entry_link,
    is_comment,
    keep_references,
    media_ref,
    organizer_comments,
    parent_result,
    procedure_reference,
    statement_references,
)
from normalizers.cda.results import (
    Lab,
    device_kits,
    exam_of,
    lab_of,
    lab_status,
    performer_of,
    privacy_annotation,
    unit_of,
)
from normalizers.cda.specimens import (
    Isolate,
    isolate_of,
    linked_specimen,
    specimen_material,
    specimen_of,
)
from normalizers.cda.times import effective_time
from normalizers.model import LAB_RESULT, Entry
from parsers.cda.model import (
    IVL,
    Act,
    ClinicalStatement,
    Encounter,
    Observation,
    ObservationMedia,
    Organizer,
    Procedure,
    Section,
    SubstanceAdministration,
    Supply,
)


def statement_entries(act: ClinicalStatement, section: Section, ctx: Ctx, in_results: bool,
                      parent_key: str | None, specimen: str | None = None,
                      panel: dict[str, str] | None = None,
                      family: dict[str, Any] | None = None,
                      when: str | None = None,
                      isolate: Isolate | None = None,
                      lab: Lab | None = None,
                      material: dict[str, str] | None = None,
                      about: dict[str, Any] | None = None,
                      group: dict[str, Any] | None = None,
                      until: str | None = None) -> Iterator[Entry]:
    """Entries for one clinical statement and what it nests (organizer components,
    entryRelationships: a problem concern's problem, an allergy concern's allergy).
    ``specimen`` is the collection time of the specimen the enclosing act or battery
    describes (IHE LAB / CI-SIS FR-Prelevement), for the results under it; ``panel`` the
    code of the battery (organizer) a result belongs to; ``family`` is set (the relative,
    when said) inside a family history: what is observed there is about a relative;
    ``when`` the time of the organizer (or scored observation) whose component this is;
    ``isolate`` the micro-organism of the isolate organizer (IHE LAB) the results are of;
    ``lab`` who performed and who validated them (the nearest IHE LAB performer and
    verifier); ``material`` the type of that specimen (blood, urine: details.specimen);
    ``about`` whom the enclosing organizer, act or section is about when it names a subject
    that is not the patient (a newborn, a fetus): CDA context conduction gives it to what
    it contains, which names none of its own (the newborn's birth weight in a battery whose
    subject is the newborn was filed as the mother's); ``group`` what the enclosing
    organizer says its components measure (tables/cda_group_organizers.csv: lenses
    prescribed or delivered, which visual acuity), for the entry's details.group;
    ``until`` the end of ``when`` when that organizer (or result) is a period: the 24-hour
    urine battery 'from 08:00 to 08:00 the next day' whose results state no time."""
    if isinstance(act, ObservationMedia):
        # an image or file no entry holds (CI-SIS FR-Image-illustrative as a section's
        # entry, OPH-CR-RTN's retinographies in an organizer): it was dropped without a
        # word; where it is goes to the document's details.media (an entry's or battery's
        # own media are read there)
        if len(ctx.media) < MEDIA_KEPT:
            ctx.media.append({**media_ref(act), "section": section_code(section) or None})
        return
    own_section = section_code(section)
    # an entry reference carries the id of the statement it names, not one of its own: had
    # it registered that id, a reference read before its target (a C-CDA goal naming the
    # health concern of a later section) would have named itself, and nothing resolved
    for ii in act.ids[:1] if ENTRY_REFERENCES.isdisjoint(act.template_roots) else ():
        if ii.root and not ii.null_flavor:
            ctx.statement_ids.setdefault(ii.key, act.path)
    if document_status(act, ctx):
        return
    kind = entry_kind(act, in_results, own_section)
    if kind == SKIP:
        if DICOM_STUDY in act.template_roots:
            study = dicom_study(act)
            if study:
                ctx.dicom_studies.append(study)
        elif act.references and EXTERNAL_REFERENCE in act.template_roots:
            # a document the whole document refers to (CARD-F-PRC: 'Document externe')
            ctx.external_references.extend(statement_references(act, ctx.external_references,
                                                        section))
        return
    if kind == NOT_FILED:
        not_filed(act, kind, ctx, section)
        return
    if kind == CONTAINER and isinstance(act, Procedure) and act.mood_code in ("", "EVN") \
            and not reported_exam(act, ctx):
        # an imaging act (DICOM Part 20 Procedure Technique) the header's serviceEvents do
        # not name (a RIS writing one documentationOf for a three-act exam): it was in no
        # entry nor in the document's service_events, lost; it is filed as the procedure
        kind = PROCEDURE
    filed_before = ctx.filed
    relative = statement_relative(act) if act.subject is not None else about
    if kind == FAMILY_HISTORY or family is not None or own_section == FAMILY_HISTORY_SECTION \
            or (relative is not None and kind in (PROBLEM, ALLERGY)):
        # a problem or allergy whose subject is a relative (C-CDA lets any observation name
        # one: the mother's breast cancer in the problem list) is the relative's, not the
        # patient's: it was filed as the patient's problem with details.subject
        family = relative or family or {}
        if isinstance(act, Observation) and kind in (PROBLEM, OBSERVATION, LAB_RESULT,
                                                     VITAL_SIGN, None):
            kind = FAMILY_HISTORY  # a father's infarction is no problem of the patient
    if act.null_flavor:  # 'unknown whether pregnant': the statement is no fact at all
        ctx.warnings.append(f"CDA_NULL_STATEMENT: {act.path}: {act.kind} with nullFlavor "
                            f"{act.null_flavor[:8]!r} not filed")
        return
    mood = act.mood_code
    if mood not in ("", "EVN") and kind in (LAB_RESULT, VITAL_SIGN):
        kind = OBSERVATION  # an ordered, intended or goal measurement is no result yet
    linked = linked_specimen(act, ctx) if act.specimens and ctx.specimens else None
    if linked is not None:  # its specimen is described beside it and named by id
        specimen, material = linked[0] or specimen, linked[1] or material
    if not isinstance(act, Observation):
        taken, kind_of = specimen_of(act, ctx, section)
        specimen, material = taken or specimen, kind_of or material
    elif act.specimens:  # C-CDA, IHE LAB: the result's own specimen, nearest of all
        material = specimen_material(act, ctx, section) or material
    lab = lab_of(act, lab, ctx.warnings)
    if isinstance(act, Act | Organizer) and act.participants:  # not a procedure's tools
        kits = device_kits(act, ctx, section)
        if kits:
            lab = replace(lab or Lab(), devices=tuple(kits))
    made: Entry | None = None
    if kind in (LAB_RESULT, VITAL_SIGN, OBSERVATION, PROBLEM, ALLERGY, FAMILY_HISTORY) and \
            isinstance(act, Observation):
        made = observation_entry(act, kind, section, ctx, parent_key)
        if made is not None and family:
            made.details["relative"] = family
        if made is not None and family is not None and made.type == ALLERGY:
            made.type = FAMILY_HISTORY  # a relative's allergy (its substance read as one)
        if made is not None and kind == LAB_RESULT:
            made.specimen_time = specimen or made.specimen_time
            if panel:
                made.details["panel"] = panel
            if material:
                made.details["specimen"] = material
            if isolate and isolate.source != act.path:  # not the identification itself
                made.details["isolate"] = isolate.germ
            if lab is not None:
                made.performer = made.performer or lab.performer
                if lab.validated_by:
                    made.details["validated_by"] = lab.validated_by
                if lab.comments:  # what the lab wrote of the whole exam, on each result
                    made.details["exam_comments"] = list(lab.comments)
                if lab.devices and "devices" not in made.details:  # its own is nearer
                    made.details["devices"] = [dict(d) for d in lab.devices]
            status = (lab_status([r.act for r in act.entry_relationships if r.act], ctx)
                      if act.entry_relationships else None) or (lab.status if lab else None)
            if status is not None and act.status_code != "nullified":
                # the lab's word on the result (C-CDA 4.419, else its report's 4.418): a
                # preliminary result whose statusCode says completed was filed final
                made.status = status[2]
                made.details["lab_status"] = {"code": status[0], "system": status[1]}
    elif kind in (MEDICATION, IMMUNIZATION) and isinstance(act, SubstanceAdministration):
        made = medication_entry(act, kind, section, ctx, parent_key)
    elif kind == DISPENSE and isinstance(act, Supply) and mood in ("", "EVN"):
        made = medication_entry(act, MEDICATION, section, ctx, parent_key)
    elif kind == DEVICE and own_section != DEVICES_SECTION and \
            not any(p.type_code in DEVICE_PARTICIPATIONS for p in act.participants):
        # the CCD supply activity template also carries medication supplies (a supply
        # under a medication, in a medication section): a dispense when done; a C-CDA
        # Planned Supply of a medication (moodCode INT: '30 tablets of amlodipine to
        # dispense') a medication intended, as a planned medication activity is; else
        # nothing
        if isinstance(act, Supply) and mood in ("", "EVN"):
            made = medication_entry(act, MEDICATION, section, ctx, parent_key)
        elif isinstance(act, Supply) and PLANNED_SUPPLY in act.template_roots and \
                names_a_product(act.product):
            made = medication_entry(act, MEDICATION, section, ctx, parent_key)
            kind = MEDICATION
    elif kind == DEVICE:
        made = device_entry(act, section, ctx, parent_key)
        if made is not None and made.system in absent_systems() and \
                (made.system, made.code) in absent_codes():
            made = absence(made, kind, ctx)
        elif made is not None and mood not in ("", "EVN"):  # a device prescribed (eP-MED)
            made.type, made.details["planned"], made.details["mood"] = PLAN, DEVICE, mood
        if made is not None:
            ctx.filed += 1
            yield made
        elif ctx.filed == filed_before:
            not_filed(act, kind, ctx, section)
        return  # what it nests (size, diameter, a comment, ALD flags) is about the device
    elif kind == PROCEDURE:
        made = procedure_entry(act, section, ctx, parent_key)
    elif kind == ENCOUNTER and isinstance(act, Encounter | Act):  # an act: a transfer, a
        # transport (IHE PCC / CI-SIS FR-Transfert-du-patient, FR-Transport-du-patient)
        made = encounter_entry(act, section, ctx, parent_key)
    elif kind is None and is_planned_instruction(act, section):  # what the plan of care or
        # the discharge tells the patient to do, an entry of its own: it was CDA_NOT_FILED
        made = planned_instruction(act, section, ctx, parent_key)
    if made is not None and made.system in absent_systems() and \
            (made.system, made.code) in absent_codes():
        made = absence(made, kind, ctx)
        if made is None:  # 'no information': said (CDA_NO_INFORMATION), nothing in it
            return
    elif made is not None and made.details.get("negated") and \
            (made.system, made.code) in negated_absences():
        made = negated_absence(made, kind)
    elif made is not None and kind == PROBLEM and no_diagnosis(made, act):
        ctx.warnings.append(f"CDA_NO_INFORMATION: {made.source_ref}: a problem statement "
                            "whose diagnosis (value) is nullFlavor "
                            f"{made.details['value_null_flavor']!r}, not filed")
        return
    elif made is not None and kind == ALLERGY and no_allergy(made):
        ctx.warnings.append(f"CDA_NO_INFORMATION: {made.source_ref}: an allergy statement "
                            "whose type (value) is nullFlavor "
                            f"{made.details['value_null_flavor']!r} and that names no "
                            "substance, not filed")
        return
    if made is not None and mood not in ("", "EVN") and kind in (IMMUNIZATION, PROCEDURE,
                                                                 OBSERVATION, ENCOUNTER):
        # a planned vaccination, procedure, test or visit (C-CDA Planned Immunization/
        # Procedure/Observation/Encounter, goals, CI-SIS plan de soins, FR-Rencontre
        # 'recontacter pour fixer RDV': moodCode INT, RQO, PRP, APT, ARQ, GOL) was filed as
        # one given, done or observed
        made.type = PLAN
        made.details["planned"] = kind
    elif made is not None and mood not in ("", "EVN") and kind == MEDICATION and \
            own_section == PLAN_OF_TREATMENT_SECTION:
        # a medication to start (C-CDA Planned Medication Activity in the plan of treatment:
        # 'begin amlodipine 5 mg next visit') was filed as one taken; elsewhere an intended
        # medication is a prescription (CI-SIS eP-MED, an EHR's orders) and stays one
        made.type = PLAN
        made.details["planned"] = kind
    if made is not None and act.references:
        keep_references(made.details, act, section)
    if made is not None and act.entry_relationships:
        restricted = privacy_annotation(act)
        if restricted:  # DS4P: this statement alone is restricted (a 42 CFR Part 2 problem)
            made.masking = {**made.masking, **restricted}
    if made is not None and made.type in (IMMUNIZATION, PROCEDURE) and act.performers:
        performed_by = performer_of(act)
        if performed_by:
            made.details["performed_by"] = performed_by
    if made is not None:
        if made.effective is None and when:
            # IHE PCC / CI-SIS vital signs: effectiveTime nullFlavor NA on each measurement,
            # the time on the organizer; C-CDA assessment scale items: none, the scale's
            made.effective = when
            if until and made.type == LAB_RESULT and "period_high" not in made.details:
                # a battery over a period (IHE LAB / CI-SIS: a 24-hour urine collection
                # from 08:00 to 08:00) whose results say no time: its start was inherited,
                # its end lost, the day's collection read as an instant
                made.details["period_high"] = until
        if relative is not None and family is None:  # a fetus, a newborn: who it is about
            made.details["subject"] = relative
        if mood not in ("", "EVN"):
            made.details["mood"] = mood  # INT, RQO, PRP, GOL...: a plan, not a fact
        if group:
            made.details["group"] = group
        sources(act, made, ctx)
        ctx.filed += 1
        yield made
    inner_results = in_results or (isinstance(act, Organizer) and act.class_code == "BATTERY")
    if made is None and not isinstance(act, Observation) and \
            (act.entry_relationships or isinstance(act, Organizer)):
        lab = exam_of(act, lab, ctx, section)
    own_time = made.effective if made is not None else \
        (effective_time(act.effective_time, ctx) or None if isinstance(act, Organizer) else None)
    own_until = _own_until(act, made, own_time)
    if isinstance(act, Organizer):
        battery = battery_panel(act, ctx, section) if act.class_code == "BATTERY" or \
            not RESULT_ORGANIZERS.isdisjoint(act.template_roots) else None
        notes = organizer_comments(act, section) if act.class_code == "BATTERY" else []
        if notes:  # a comment on the whole battery (CR-BIO: its conclusion), coded or not
            battery = {**(battery or {}), "comments": notes}
        media = [media_ref(c) for c in act.components if isinstance(c, ObservationMedia)] \
            if act.class_code == "BATTERY" else []
        if media:  # an image of the whole battery (CR-BIO: the electrophoresis curve)
            battery = {**(battery or {}), "media": media}
        own_isolate = isolate_of(act, ctx, section)
        isolate = own_isolate or isolate
        measured = organizer_group(act, ctx, section)
        if battery is None and own_isolate is None and measured is None:
            battery = sub_panel(act, panel, ctx, section)  # else the battery's, as before
        for component in act.components:
            if media and isinstance(component, ObservationMedia):
                continue  # the battery's, read above
            inner = statement_entries(component, section, ctx, inner_results, parent_key,
                                      specimen, battery or panel, family, own_time or when,
                                      isolate, lab, material, relative, measured,
                                      own_until if own_time else until)
            if act.status_code in ("", "completed"):
                yield from inner
                continue
            for nested in inner:
                organizer_status(act, component, nested)
                yield nested
    # what an observation nests (a previous result, CR-BIO) is not of the same specimen,
    # nor of the same isolate nor done by the same laboratory
    inner_specimen = None if isinstance(act, Observation) else specimen
    inner_material = None if isinstance(act, Observation) else material
    concern = act.status_code if kind == CONCERN else ""
    # a comment on the concern as a whole (IHE PCC / CI-SIS: beside its problems): theirs
    concern_notes = organizer_comments(act, section) if concern else []
    for rel in act.entry_relationships:
        if rel.act is None:
            continue
        if made is not None and isinstance(rel.act, ObservationMedia):
            # what the statement shows (IPS-FR: the advance directives' PDF): where it is
            made.details.setdefault("media", []).append(media_ref(rel.act))
            continue
        if made is not None and ENTRY_REFERENCES & rel.act.template_roots:
            link = entry_link(rel)  # read as before too (a procedure's reason, by code)
            links = made.details.setdefault("entry_links", [])
            if link and len(links) < ENTRY_LINKS_KEPT:
                links.append(link)
            if not links:
                del made.details["entry_links"]
        if made is not None and EXTERNAL_REFERENCE in rel.act.template_roots:
            # the document the statement refers to, written as an external reference
            # entry nested in it (IHE PCC, CI-SIS FR-Reference-externe): skipped, lost
            keep_references(made.details, rel.act, section)
            continue
        if made is not None and is_comment(rel.act):
            # a comment on a result, problem, procedure... (IHE PCC Comment, C-CDA Comment
            # Activity, CCD comment): the statement's, not skipped with the narrative's
            note = comment_text(rel.act, section)
            if note:
                made.details.setdefault("comments", []).append(note)
            continue
        if made is not None and kind not in (MEDICATION, IMMUNIZATION, DISPENSE) and \
                is_instruction(rel.act):
            patient_instruction(rel.act, made, section)
            continue
        if concern:  # active, completed (resolved), suspended, aborted: the clinical status
            for nested in statement_entries(rel.act, section, ctx, inner_results, parent_key,
                                            inner_specimen, None, family, material=inner_material,
                                            about=relative):
                if nested.type in (PROBLEM, ALLERGY):
                    nested.details.setdefault("concern_status", concern)
                    sources(act, nested, ctx)  # the concern's, when the problem says none
                    if concern_notes:
                        nested.details["concern_comments"] = concern_notes
                    if concern == "nullified":  # the concern was recorded in error
                        nested.status = "entered-in-error"
                yield nested
            continue
        if made is not None and kind in (MEDICATION, IMMUNIZATION) and \
                isinstance(rel.act, Supply) and rel.act.mood_code in ("", "EVN") and \
                not names_a_product(rel.act.product):
            # a dispense of this very medication (IHE PCC supply entry nested in it, CNAM-HR:
            # delivered on, by, how many): it named no product, and was dropped
            delivery = nested_delivery(rel.act, ctx)
            if delivery:
                made.details.setdefault("dispenses", []).append(delivery)
            continue
        if made is not None and kind in (MEDICATION, IMMUNIZATION, DISPENSE, PROBLEM, ALLERGY,
                                         FAMILY_HISTORY) and not is_typed(rel.act):
            if kind in (MEDICATION, IMMUNIZATION, DISPENSE) and made.type != ABSENCE:
                medication_part(rel, made, ctx, section)
            elif isinstance(rel.act, Observation) and not is_qualifier(rel.act) and \
                    not (kind == ALLERGY and rel.type_code == "MFST"):
                # what else a problem says of itself (how much it bled, the follow-up of
                # its treatment, the age at onset: C-CDA 4.31) was dropped with them
                describe(rel.act, made, "observations", ctx, section)
            continue  # a problem's status or severity, a medication's dosing: not entries
            # (a statement with an entry template of its own, e.g. the reaction of an
            # allergy coded as a problem, is one)
        if made is not None and made.type in (PROCEDURE, PLAN) and kind == PROCEDURE and \
                isinstance(rel.act, Observation) and not is_typed(rel.act):
            # what the act found or how it went ('difficulty: easy', an approach), why it was
            # done (RSON): the procedure's, not an observation of the patient of its own
            if rel.type_code != "RSON":
                describe(rel.act, made, "observations", ctx, section)
            elif "not_done_reason" not in made.details:
                describe(rel.act, made, "reasons", ctx, section)
            continue
        if made is not None and kind == ENCOUNTER and rel.type_code == "RSON" and \
                isinstance(rel.act, Observation) and not is_typed(rel.act):
            # why the visit took place (C-CDA Indication, an IHE PCC reason): read into the
            # encounter's details.diagnoses (role 'reason'), as a medication's or a
            # procedure's reasons are. It was filed a second time as a fact of its own: the
            # cough a patient came for, an undated problem 'Toux' of the problem list
            continue
        if made is not None and made.type in (PROCEDURE, PLAN) and kind == PROCEDURE and \
                INTERNAL_REFERENCE in rel.act.template_roots:
            procedure_reference(rel, made, ctx, section)
            continue
        if made is not None and made.type == PLAN and kind == OBSERVATION and \
                isinstance(rel.act, Observation) and not is_typed(rel.act):
            # what a requested exam says of the request (CI-SIS FR-Demande-d-examen: the
            # function studied, 'the requester wants a call back'): the plan's, not the
            # patient's observations
            describe(rel.act, made, "observations", ctx, section)
            continue
        if made is not None and made.type == OBSERVATION and is_qualifier(rel.act):
            continue  # its status, severity, certainty: read into its details (eHDSI and
            # other templates we do not know nest them), no observation of their own
        if made is not None and kind in (LAB_RESULT, VITAL_SIGN) and unit_of(rel.act, made):
            continue  # the result's unit, not a result (a previous result nested with
            # typeCode REFR, as CR-BIO sends them, still is one)
        nested_entries = statement_entries(rel.act, section, ctx, inner_results, parent_key,
                                           inner_specimen, None, family,
                                           own_time if rel.type_code == "COMP" and
                                           isinstance(act, Observation) else None,
                                           *((None, None) if isinstance(act, Observation) else
                                             (isolate, lab)), inner_material, relative,
                                           until=own_until if rel.type_code == "COMP" and
                                           isinstance(act, Observation) else None)
        if made is not None and kind == ENCOUNTER and \
                (ENCOUNTER_DIAGNOSIS in rel.act.template_roots or rel.type_code == "RSON"):
            # the diagnosis made at a visit (C-CDA Encounter Diagnosis) or the problem it
            # was for, filed as a problem: it said nothing of the visit, and read as a
            # problem found anywhere. details.visit: the encounter entry's key and the role
            role = "reason" if rel.type_code == "RSON" else "diagnosis"
            for nested in nested_entries:
                if nested.type == PROBLEM and (nested.source_ref == rel.act.path or
                                               nested.source_ref.startswith(rel.act.path +
                                                                            "/")):
                    nested.details.setdefault("visit", {"key": made.key, "role": role})
                yield nested
            continue
        if made is not None and made.type in (MEDICATION, IMMUNIZATION) and \
                rel.type_code in ("CAUS", "MFST"):
            # the fever a vaccination caused (IHE PCC / CI-SIS FR-Vaccination: a problem
            # entry under CAUS): still filed as a problem, saying what it is the reaction to
            # (it read as an unrelated problem)
            for nested in nested_entries:
                if nested.source_ref == rel.act.path and nested.type == PROBLEM:
                    nested.details["reaction_to"] = made.key
                yield nested
            continue
        if made is not None and made.type in (LAB_RESULT, OBSERVATION) and \
                rel.type_code != "REFR":
            # a result's parts (CI-SIS CR-GM / APSR subordinate observations: the variant,
            # reference sequence and exon of one gene) are filed each as a result, saying
            # whose: 'c.35G>A' of KRAS and of NRAS the same day are two facts, not one
            # merged, and a variant read alone named no gene (a previous result, REFR, is
            # a result of its own). The same for an observation's: the size of an imaging
            # finding (DICOM Part 20 / FR-DICOM-Quantite under a FR-DICOM-Observation), the
            # items of a score (NIHSS)
            for nested in nested_entries:
                if nested.source_ref == rel.act.path and \
                        nested.type in (LAB_RESULT, OBSERVATION):
                    nested.details["parent_result"] = parent_result(made)
                yield nested
            continue
        if made is not None and made.type == ALLERGY and rel.type_code == "MFST":
            # a reaction written as a problem entry of its own (IHE PCC, CI-SIS
            # FR-Probleme under MFST): still filed as one, as before, saying which allergy
            # it is the manifestation of (it read as an unrelated problem)
            for nested in nested_entries:
                if nested.source_ref == rel.act.path:
                    nested.details["manifestation_of"] = made.key
                yield nested
            continue
        yield from nested_entries
    if made is None and ctx.filed == filed_before:
        not_filed(act, kind, ctx, section)


def _own_until(act: ClinicalStatement, made: Entry | None, own_time: str | None) -> str | None:
    """The end of the period a statement's components without a time of their own inherit
    with its start (``own_time``): a result's own period_high, else an organizer's
    effectiveTime end (``period_end``). Its width's or high's warnings are not said here:
    the organizer is no entry, and its start is read the same way (``effective_time``)."""
    if not own_time:
        return None
    if made is not None:
        return made.details.get("period_high") if made.type == LAB_RESULT else None
    period = act.effective_time
    if not isinstance(act, Organizer) or not isinstance(period, IVL):
        return None
    return period_end(period, own_time, [])
