"""Organizers and their context: result batteries (panels), groups, family history
relatives, organizer statuses, section constants that change a statement's kind."""

from __future__ import annotations

from typing import Any

from normalizers.cda.coded import coded_or_words, mapped_code, original_text, qualify
from normalizers.cda.common import OBSERVATION, SDTC, Ctx, system_name
from normalizers.cda.tables import group_organizers, result_statuses, status_of
from normalizers.cda.times import iso_value
from normalizers.model import LAB_RESULT, Entry
from parsers.cda.model import ClinicalStatement, Organizer, Section

FAMILY_HISTORY_SECTION = "10157-6"  # LOINC History of family member diseases
DEVICES_SECTION = "46264-8"  # LOINC History of medical device use
# The participations that name a device a supply is of: DEV (CCD, CI-SIS FR-Dispositif-
# medical, eHDSI) and PRD, the product (C-CDA Non-Medicinal Supply Activity and Planned
# Supply hold their Product Instance so: the pacemaker of a C-CDA medical equipment section
# was 'naming nothing' and not filed)
DEVICE_PARTICIPATIONS = frozenset({"DEV", "PRD"})
PLANNED_SUPPLY = "2.16.840.1.113883.10.20.22.4.43"  # C-CDA Planned Supply (moodCode INT)
_SELF = "ONESELF"  # HL7 RoleCode: the subject is the patient


def organizer_status(act: Organizer, component: ClinicalStatement, nested: Entry) -> None:
    """What an organizer's own statusCode says of what it holds. Nullified: the battery
    (or vital signs cluster) was recorded in error, and all of it with it; its results
    were filed final. Aborted, cancelled, active...: the status of its components that
    state none of their own (statusCode is required, some senders put it on the battery
    only); a result with its own statusCode, or a laboratory status, keeps it."""
    if act.status_code == "nullified":
        nested.status = "entered-in-error"
    elif not component.status_code and nested.source_ref == component.path and \
            "lab_status" not in nested.details and nested.status != "entered-in-error":
        nested.status = status_of(act.status_code)
        if nested.type == LAB_RESULT:
            nested.status = result_statuses().get(act.status_code.strip(), nested.status)


def statement_relative(act: ClinicalStatement) -> dict[str, Any] | None:
    """Whom a statement is about when it is not the patient (CDA subject/relatedSubject:
    a family member, a fetus): the relationship code (HL7 RoleCode FTH, MTH, FAMMEMB...) and
    the relative's sex when given; None for the patient."""
    return relative_of(act.subject)


def relative_of(subject: Any) -> dict[str, Any] | None:
    """``statement_relative`` of a subject participation (a statement's or a section's)."""
    if subject is None or subject.role != "relatedSubject":
        return None
    code = subject.code
    if code is not None and code.code == _SELF:
        return None
    out: dict[str, Any] = {}
    if code is not None and code.code:
        out.update(code=code.code, system=system_name(code.code_system),
                   display=code.display or code.original_text)
    person = subject.person
    if person is not None and person.administrative_gender is not None and \
            person.administrative_gender.code:
        out["sex"] = person.administrative_gender.code
    if person is not None:
        # birthTime, or the sdtc: extensions C-CDA puts on a subject (birthTime, deceasedInd)
        born = person.birth_time.value if person.birth_time is not None else ""
        for ext in person.extensions:
            if ext.namespace == SDTC and ext.name == "birthTime" and not born:
                born = ext.attributes.get("value", "")
            elif ext.namespace == SDTC and ext.name == "deceasedInd":
                out["deceased"] = ext.attributes.get("value", "") == "true"
        if born and iso_value(born):
            out["birth_time"] = iso_value(born)
    return out


def organizer_group(act: Organizer, ctx: Ctx, section: Section) -> dict[str, Any] | None:
    """What an organizer listed in tables/cda_group_organizers.csv says its components
    measure: its code ({code, system, display} or {text}) and the code's qualifiers. Under
    OPH-BRE's 'lentilles prescrites' and 'lentilles délivrées' the same LOINC codes were
    filed alike (and their facts merged): which lens was which was lost."""
    if act.code is None or group_organizers().isdisjoint(act.template_roots):
        return None
    said = coded_or_words(act.code, ctx, section)
    if said is None:
        return None
    group: dict[str, Any] = {k: v for k, v in said.items() if v}
    if act.code.qualifiers:
        holder = Entry(type=OBSERVATION, key="", source_ref=act.path)
        qualify(act.code, holder, "qualifiers", ctx, section)
        if holder.details.get("qualifiers"):
            group["qualifiers"] = holder.details["qualifiers"]
    return group


RESULT_ORGANIZERS = frozenset({
    # a panel whatever its classCode: C-CDA's Result Organizer allows CLUSTER or BATTERY
    # (EHRs abroad send CLUSTER), and its results named no panel at all; the nearest
    # organizer's code is the panel, as a battery's nested in a battery is
    "2.16.840.1.113883.10.20.22.4.1",  # C-CDA Result Organizer
    "2.16.840.1.113883.10.20.1.32",  # CCD 1.0 result organizer
})


def battery_panel(act: Organizer, ctx: Ctx, section: Section) -> dict[str, str] | None:
    """The code of a battery (lab panel: 'lipid panel', 'CBC') for its results, else its
    name in words (code nullFlavor + originalText, as C-CDA senders without a panel code
    write it: the panel was lost)."""
    coded = mapped_code(act.code, ctx, section) if act.code is not None else None
    if not coded or not coded[0]:
        words = original_text(act.code, section) if act.code is not None else ""
        return {"text": words[:300]} if words else None
    return {"code": coded[0], "system": coded[1], "display": coded[2]}


def sub_panel(act: Organizer, outer: dict[str, Any] | None, ctx: Ctx,
              section: Section) -> dict[str, Any] | None:
    """A CLUSTER of no result template nested in a battery (a sub-panel: 'Formule
    leucocytaire' inside 'NFS') as the panel of its results, the battery (whole: its
    comments, its own parent) as its ``parent``: its code was lost and its results took
    the battery's. None when it names nothing, or
    is in no battery that names one (a flat battery, a cluster alone: as before)."""
    if act.class_code != "CLUSTER" or not outer or not (outer.get("code") or outer.get("text")):
        return None
    own = battery_panel(act, ctx, section)
    if own is None:
        return None
    return {**own, "parent": dict(outer)}
