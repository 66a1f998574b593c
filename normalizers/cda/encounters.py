"""Encounters in the body (C-CDA Encounter Activity, IHE PCC, FR-Rencontre): visits
and stays, their location and the diagnoses of the stay."""

from __future__ import annotations

from typing import Any

from normalizers.cda.base import base_entry
from normalizers.cda.coded import (
    coded_or_words,
    mapped_code,
    original_text,
    qualify,
    referenced_text,
)
from normalizers.cda.common import ACT_CODE, ENCOUNTER, SDTC, Ctx, is_placeholder, system_name
from normalizers.cda.results import performer_of
from normalizers.cda.times import effective_time, iso_value
from normalizers.cda.values import untyped
from normalizers.model import Entry
from parsers.cda.model import CD, IVL, TS, Act, Encounter, Observation, Section

ENCOUNTER_DIAGNOSIS = "2.16.840.1.113883.10.20.22.4.80"  # C-CDA Encounter Diagnosis act
SERVICE_LOCATION = "LOC"  # participant typeCode of the service delivery location (C-CDA)
DESTINATION = "DST"  # participant typeCode of where a patient transfer went (IHE PCC)


def encounter_entry(act: Encounter | Act, section: Section, ctx: Ctx,
                    parent_key: str | None) -> Entry | None:
    """A visit or stay the document reports (C-CDA Encounter Activity in the Encounters
    section, IHE PCC / CI-SIS FR-Rencontre: a CNAM-HR hospital stay with its GHS, an
    antenatal interview of OBP-SAP): its type (HL7 ActCode AMB/IMP/EMER, CPT, a CI-SIS
    TA_ASIP code) with its qualifiers, its period (details.period_low/high; effective is
    when it began), who saw the patient (details.performed_by), where (details.location:
    the participant LOC's service delivery location) and what it was for
    (details.diagnoses: the C-CDA Encounter Diagnosis and the RSON indications; the
    problems they hold are still filed as problems) and its class (details.class: the HL7
    ActCode among the code and its translations). Every encounter was dropped. Nothing
    to file when it has neither a code, words nor a time."""
    code = act.code
    coded = mapped_code(code, ctx, section) if code is not None else None
    name = "" if coded else (original_text(code, section) if code is not None else "") or \
        referenced_text(act.text_reference, section) or act.text.strip()
    name = "" if is_placeholder(name) else name
    when = effective_time(act.effective_time, ctx)
    if not coded and not name and not when:
        return None
    entry = base_entry(act, ENCOUNTER, section, ctx, parent_key)
    if name:
        entry.display, entry.mapped = name[:300], False
    if code is not None and code.qualifiers:
        qualify(code, entry, "code_qualifiers", ctx, section)
    klass = next((c for c in (code, *code.translations) if c.code and
                  system_name(c.code_system) == ACT_CODE), None) if code is not None else None
    if klass is not None:  # HL7 ActEncounterCode AMB, IMP, EMER... (C-CDA: a translation
        # of the CPT code): the encounter's class
        entry.details["class"] = {"code": klass.code, "display": klass.display or None}
    others = [t for t in (code.translations if code is not None else [])
              if t.code and t is not klass and t.code != entry.code]
    said = [c for c in (coded_or_words(t, ctx, section) for t in others) if c]
    entry.details.pop("other_codes", None)  # an encounter's translations say more than its
    # code (where the patient was transferred to): code_translations below
    if said:  # what else the code says in another terminology (CI-SIS FR-Transfert-du-
        # patient: the type of service transferred to, 'unité de soins intensifs
        # néonatals', in SNOMED CT under LOINC 80413-8): dropped with the translation
        entry.details["code_translations"] = said
    period = act.effective_time
    if isinstance(period, IVL):  # admission (low) and discharge (high)
        for bound in ("low", "high"):
            v = getattr(period, bound)
            if isinstance(v, TS) and v.value:
                iso = iso_value(v.value, ctx.warnings, v.path)
                if iso:
                    entry.details[f"period_{bound}"] = iso
    performed_by = performer_of(act) if act.performers else None
    if performed_by:
        entry.details["performed_by"] = performed_by
    places = [p for p in map(_service_location, act.participants) if p]
    if places:
        entry.details["location"] = places[0]
    destinations = [p for p in (_service_location(p, DESTINATION) for p in act.participants)
                    if p]
    if destinations:  # where the patient was transferred to (IHE PCC patient transfer:
        # participant DST, the facility's FINESS, kind, name): the transfer was not filed
        entry.details["destination"] = destinations[0]
    diagnoses = _encounter_diagnoses(act, ctx, section) if act.entry_relationships else []
    if diagnoses:
        entry.details["diagnoses"] = diagnoses
    disposition = next((x for x in act.extensions if x.namespace == SDTC and
                        x.name == "dischargeDispositionCode"), None)
    if disposition is not None and disposition.attributes.get("code", "").strip():
        # where the patient went at the end of the stay (C-CDA R2.1 Encounter Activity
        # sdtc:dischargeDispositionCode, HL7 table 0112 or NUBC): read on the header's
        # encompassingEncounter only, an encounter entry's was dropped
        said = disposition.attributes
        entry.details["discharge_disposition"] = {k: v for k, v in (
            ("code", said["code"].strip()),
            ("system", system_name(said.get("codeSystem", "").strip(),
                                   said.get("codeSystemName", ""))),
            ("display", said.get("displayName", "").strip())) if v}
    return entry


def _service_location(part, type_code: str = SERVICE_LOCATION  # noqa: ANN001
                      ) -> dict[str, Any] | None:
    """Where an encounter took place (participant LOC, C-CDA Service Delivery Location:
    participantRole SDLOC with its HSLOC code and playingEntity name), or where a transfer
    went (``type_code`` DST): ids, kind, name. CI-SIS FR-Transfert-du-patient writes the
    destination's FINESS as the participant's templateId (root the FINESS OID, extension
    the number: no template has an extension there): read as its first id."""
    entity = part.entity
    if part.type_code != type_code or entity is None:
        return None
    ids = [i.key for i in part.template_ids if i.root and i.extension and not i.null_flavor]
    ids += [i.key for i in entity.ids if i.root and not i.null_flavor]
    out: dict[str, Any] = {"ids": ids}
    if entity.code is not None and entity.code.code:
        out["code"] = {"code": entity.code.code, "system": system_name(entity.code.code_system),
                       "display": entity.code.display or None}
    names = [n for n in entity.player_names if n]
    if names:
        out["name"] = names[0][:300]
    elif entity.code is not None and entity.code.display:
        out["name"] = entity.code.display[:300]
    out = {k: v for k, v in out.items() if v}
    return out or None


def _encounter_diagnoses(act: Encounter, ctx: Ctx, section: Section) -> list[dict[str, Any]]:
    """What an encounter was for: the problems of its C-CDA Encounter Diagnosis acts
    (role 'diagnosis') and its RSON entryRelationships (an indication observation, an IHE
    PCC internal reference to a problem: role 'reason'), each {code, system, display} or
    {text}: the problem's value, else its code."""
    out = []
    for rel in act.entry_relationships:
        nested = rel.act
        if nested is None:
            continue
        if ENCOUNTER_DIAGNOSIS in nested.template_roots:
            role, found = "diagnosis", [r.act for r in nested.entry_relationships
                                        if isinstance(r.act, Observation)]
        elif rel.type_code == "RSON":
            role, found = "reason", [nested]
        else:
            continue
        for obs in found:
            value = next((v for v in map(untyped, obs.values) if isinstance(v, CD)), None) \
                if isinstance(obs, Observation) else None
            said = (coded_or_words(value, ctx, section) if value is not None else None) or \
                (coded_or_words(obs.code, ctx, section) if obs.code is not None else None)
            if said:
                out.append({"role": role, **said})
    return out
