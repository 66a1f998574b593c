"""Specimens and isolates of lab results: collection (time, material, conditions),
reception, germs identified."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from normalizers.cda.coded import coded_or_words, mapped_code, original_text
from normalizers.cda.common import Ctx, system_name
from normalizers.cda.tables import organism_codes
from normalizers.cda.times import effective_time, end_of
from normalizers.cda.values import untyped
from parsers.cda.model import CD, IVL, ST, ClinicalStatement, Observation, Organizer, Section

SPECIMEN_COLLECTION = "1.3.6.1.4.1.19376.1.3.1.2"  # IHE LAB Specimen Collection procedure
SPECIMEN_COLLECTIONS = frozenset({
    SPECIMEN_COLLECTION,  # IHE LAB / CI-SIS FR-Prelevement
    "1.2.250.1.213.1.1.3.77",  # CI-SIS FR-Prelevement named without the IHE LAB template
    # it builds on: the results lost when and what was collected (CDA_NOT_FILED instead)
    "2.16.840.1.113883.10.20.22.4.415",  # C-CDA Specimen Collection Procedure (a result
    # organizer's component since C-CDA R2.1 companion guide / 3.0)
    "2.16.840.1.113883.10.22.4.30",  # HL7 CDA IPS Specimen Collection
})
# An isolate organizer: IHE LAB (PaLM, XD-LAB) Isolate Organizer, and CI-SIS
# FR-Isolat-microbiologique, which a sender may name alone (its germ was read as the
# specimen of the results, urine become 'Escherichia coli', and two germs' antibiograms of
# one value were one fact)
ISOLATE_ORGANIZERS = frozenset({"1.3.6.1.4.1.19376.1.3.1.5", "1.2.250.1.213.1.1.3.79"})


@dataclass(frozen=True, slots=True)
class Isolate:
    """The germ of an isolate (details.isolate of its results) and ``source``: the path of
    the observation that identified it ('' when the organizer's specimen names it), which
    is the identification result itself and does not carry it."""

    germ: dict[str, str]
    source: str = ""


def isolate_of(act: Organizer, ctx: Ctx, section: Section) -> Isolate | None:
    """The micro-organism an isolate organizer is about (IHE LAB / CI-SIS
    FR-Isolat-microbiologique: its template, specimen/specimenRole/specimenPlayingEntity coded in
    SNOMED CT, its words in originalText), for the results it holds: the count and the
    antibiogram of each germ carry no organism of their own, and two isolates' 'amoxicillin:
    R' and 'amoxicillin: S' could not be told apart (the organism was lost). When no
    specimen names it, the germ is the value of the one 'organism identified' observation
    (tables/organism_identification_codes.csv) the isolate, or a culture CLUSTER, holds."""
    isolate_template = not ISOLATE_ORGANIZERS.isdisjoint(act.template_roots)
    if not isolate_template and act.class_code != "CLUSTER":
        return None
    if isolate_template:  # a C-CDA result organizer is also a CLUSTER, and its specimen
        # is the material (blood), not a germ
        for spec in act.specimens:
            entity = spec.entity
            if entity is None or entity.player_code is None:
                continue
            germ = _germ(entity.player_code, ctx, section)
            if germ:
                ids = [i.key for i in entity.ids if i.root and not i.null_flavor]
                if ids:
                    germ["id"] = ids[0]  # the isolate number: the same germ across reports
                return Isolate(_told_apart(germ, act, ctx))
    found = _identifications(act)
    if len(found) != 1:  # none, or two germs in one cluster: which result is whose is unsaid
        return None
    obs = found[0]
    value = untyped(obs.values[0])
    germ = _germ(value, ctx, section) if isinstance(value, CD) else \
        {"text": value.text.strip()[:300]} if isinstance(value, ST) and value.text.strip() \
        else None  # a germ named in words only ('E. coli BLSE')
    return Isolate(_told_apart(germ, act, ctx), obs.path) if germ else None


def _told_apart(germ: dict[str, str], act: Organizer, ctx: Ctx) -> dict[str, str]:
    """``germ``, told apart from the isolates of the same germ read before it in the
    document when no specimen id does (two strains of E. coli, with and without an ESBL,
    each with its antibiogram: CI-SIS FR-Isolat-microbiologique's specimenRole/id is
    optional): by the isolate organizer's id, else its rank ('2'). Both antibiograms'
    'gentamicin: S' had one fact (the report sent again confirmed the first strain's twice)
    and the FHIR export one isolate for both. The first isolate of a germ keeps the germ
    alone, as another channel names it."""
    if germ.get("id"):
        return germ
    key = (germ.get("system", ""), germ.get("code", ""), germ.get("text", ""))
    rank = ctx.isolate_germs.get(key, 0) + 1
    ctx.isolate_germs[key] = rank
    if rank == 1:
        return germ
    ids = [i.key for i in act.ids if i.root and not i.null_flavor]
    return {**germ, "id": ids[0] if ids else str(rank)}


def _identifications(act: Organizer) -> list[Observation]:
    """The 'organism identified' observations among an organizer's components and those of
    the batteries it holds (IHE LAB: an identification battery beside the antibiogram)."""
    codes = organism_codes()
    found: list[Observation] = []
    for component in act.components:
        nested = component.components if isinstance(component, Organizer) else [component]
        for obs in nested:
            if isinstance(obs, Observation) and obs.values and obs.code is not None and \
                    obs.code.code and \
                    (system_name(obs.code.code_system), obs.code.code) in codes:
                found.append(obs)
    return found


def _germ(code: CD, ctx: Ctx, section: Section) -> dict[str, str] | None:
    """A micro-organism as {code, system, display}, with the lab's words ('E. coli BLSE')
    as text when they say more than the code's name; None when neither is there."""
    coded = mapped_code(code, ctx, section)
    text = original_text(code, section)
    out = {"code": coded[0], "system": coded[1], "display": coded[2]} if coded else {}
    if text and text != out.get("display"):
        out["text"] = text
    return out if out.get("code") or text else None


def specimen_of(act: ClinicalStatement, ctx: Ctx,
                section: Section) -> tuple[str | None, dict[str, str] | None]:
    """(when the specimen was taken, what it is) for the results under ``act``: the
    effectiveTime and the specimen (participant PRD / participantRole SPEC / playingEntity
    code: BLD, UR in HL7 table 0487, or SNOMED CT) of the Specimen Collection procedure an
    IHE LAB act nests, or a battery or isolate organizer holds as a component (one specimen
    per battery) (CI-SIS FR-Prelevement puts the time in high; C-CDA's own Specimen
    Collection Procedure in a result organizer was not recognised); else, for the type, the
    act's own specimen (C-CDA result organizer, IHE XD-LAB act), but not an isolate's,
    which is its germ. The type was not read at all."""
    own = specimen_material(act, ctx, section) if act.specimens and \
        ISOLATE_ORGANIZERS.isdisjoint(act.template_roots) else None
    nested = [rel.act for rel in act.entry_relationships]
    if isinstance(act, Organizer):
        nested.extend(act.components)
    for proc in nested:
        if proc is None or proc.kind != "procedure" or \
                SPECIMEN_COLLECTIONS.isdisjoint(proc.template_roots):
            continue
        return _collection(proc, ctx, section, own)
    return None, own


def _collection(proc: ClinicalStatement, ctx: Ctx, section: Section,
                own: dict[str, Any] | None = None) -> tuple[str | None, dict[str, Any] | None]:
    """(when, what) of one Specimen Collection procedure: its time, and the type of what it
    produced (else ``own``) with the site it was taken from, the specimen's condition and the
    time the lab received it."""
    material = _collected(proc, ctx, section) or own
    sites = getattr(proc, "target_site_codes", None) or getattr(proc, "approach_site_codes", None)
    site = next((found for found in (coded_or_words(c, ctx, section) for c in sites)
                 if found), None) if sites else None
    if site:  # where it was taken from (C-CDA targetSiteCode 'specimen source site', IHE
        # LAB / CDA-CH approachSiteCode 'Entnahmeort'; HL7v2 SPM-8): a swab of which wound
        material = {**(material or {}), "site": site}
    if proc.entry_relationships:
        conditions = _specimen_conditions(proc, ctx, section)
        if conditions:  # hemolysed, clotted...: said of the specimen, read with it
            material = {**(material or {}), "condition": conditions}
        received = _received_time(proc, ctx)
        if received:
            material = {**(material or {}), "received": received}
    return _collection_time(proc, ctx), material


SPECIMEN_COLLECTION_APSR = "1.3.6.1.4.1.19376.1.3.10.4.1"  # IHE PaLM (APSR) specimen
# collection, CI-SIS FR-Prelevement-APSR: an entry of its own in a specimen section


def specimens_by_id(sections: list[Section], ctx: Ctx) -> dict[str, tuple[str | None,
                                                                        dict[str, Any] | None]]:
    """The Specimen Collection procedures that are entries of a section (a specimen section:
    ELGA 'Probeninformation', CI-SIS CR-GM 'Informations sur le prélèvement', C-CDA senders
    writing 4.415 beside the results) by the ids of their specimen (specimen/specimenRole or
    participant PRD/participantRole): a result names its specimen by that id (IHE PaLM,
    C-CDA Result Observation specimen). Only these top-level entries are looked at."""
    found: dict[str, tuple[str | None, dict[str, Any] | None]] = {}
    pending = list(sections)
    while pending:
        section = pending.pop()
        pending.extend(section.sections)
        for entry in section.entries:
            proc = entry.act
            if proc is None or proc.kind != "procedure":
                continue
            roots = proc.template_roots
            if SPECIMEN_COLLECTIONS.isdisjoint(roots) and SPECIMEN_COLLECTION_APSR not in roots:
                continue
            roles = [spec.entity for spec in proc.specimens] + \
                [part.entity for part in proc.participants if part.type_code == SPECIMEN_PRODUCT]
            keys = [i.key for role in roles if role is not None
                    for i in role.ids if i.root and not i.null_flavor]
            if keys:
                collected = _collection(proc, ctx, section)
                for key in keys:
                    found.setdefault(key, collected)
    return found


def linked_specimen(act: ClinicalStatement,
                    ctx: Ctx) -> tuple[str | None, dict[str, Any] | None] | None:
    """The collection of the specimen ``act`` names by id (specimen/specimenRole/id), when a
    section holds it as an entry of its own; None otherwise. Not for an isolate organizer,
    whose specimen is its germ."""
    if not ISOLATE_ORGANIZERS.isdisjoint(act.template_roots):
        return None
    for spec in act.specimens:
        if spec.entity is not None:
            for ii in spec.entity.ids:
                if ii.root and not ii.null_flavor and ii.key in ctx.specimens:
                    return ctx.specimens[ii.key]
    return None


SPECIMEN_CONDITION = "2.16.840.1.113883.10.20.22.4.421"  # C-CDA Specimen Condition Observation


def _specimen_conditions(proc: ClinicalStatement, ctx: Ctx,
                         section: Section) -> list[dict[str, str]]:
    """The condition of a specimen as its collection procedure says it (C-CDA Specimen
    Condition Observation, HL7 table 0493: HEM hemolysed, CLOT clotted, LIP lipemic...):
    skipped as no result, it was lost, and a potassium on a hemolysed tube read as any."""
    found = []
    for rel in proc.entry_relationships:
        obs = rel.act
        if isinstance(obs, Observation) and obs.values and \
                any(t.root == SPECIMEN_CONDITION for t in obs.template_ids):
            value = untyped(obs.values[0])
            coded = coded_or_words(value, ctx, section) if isinstance(value, CD) else None
            if coded:
                found.append(coded)
    return found


SPECIMEN_RECEIVED = "1.3.6.1.4.1.19376.1.3.1.3"  # IHE LAB (XD-LAB, PaLM) Specimen Received
# (CI-SIS FR-Echantillon-date-reception, CDA-CH lab reports): act SPRECEIVE (IHEActCode)
SPECIMEN_RECEIVED_FR = "1.2.250.1.213.1.1.3.107"  # CI-SIS FR-Echantillon-date-reception


def _received_time(proc: ClinicalStatement, ctx: Ctx) -> str | None:
    """When the laboratory received the specimen (the effectiveTime of the Specimen Received
    act a Specimen Collection procedure nests): it was skipped with the act, and a
    specimen that waited two days before analysis (a potassium, a culture) looked fresh."""
    for rel in proc.entry_relationships:
        act = rel.act
        if act is not None and act.kind == "act" and (
                SPECIMEN_RECEIVED in act.template_roots or
                SPECIMEN_RECEIVED_FR in act.template_roots or
                act.code is not None and act.code.code == "SPRECEIVE"):
            return _collection_time(act, ctx)
    return None


def _collection_time(proc: ClinicalStatement, ctx: Ctx) -> str | None:
    """When a specimen was taken (or received): the end of the collection, else its start.
    An end said by a width (center + width: 'around 10:00, over 2 h', CDA R2 IVL_TS; low +
    width: 'from 08:00 for 24 h') is computed: the collection was dated by its center or
    start."""
    t = proc.effective_time
    if isinstance(t, IVL) and not t.value:
        return end_of(t, ctx.warnings, ctx.warnings)
    return effective_time(t, ctx) or None


SPECIMEN_PRODUCT = "PRD"  # participant typeCode of the specimen a collection produced


def _collected(proc: ClinicalStatement, ctx: Ctx, section: Section) -> dict[str, str] | None:
    """The type of the specimen a Specimen Collection procedure produced (its participant
    PRD, or a specimen element some senders use there)."""
    for part in proc.participants:
        entity = part.entity
        if part.type_code == SPECIMEN_PRODUCT and entity is not None and \
                entity.player_code is not None:
            found = coded_or_words(entity.player_code, ctx, section)
            if found:
                return found
    return specimen_material(proc, ctx, section) if proc.specimens else None


def specimen_material(act: ClinicalStatement, ctx: Ctx,
                      section: Section) -> dict[str, str] | None:
    """The type of the specimen an act names in specimen/specimenRole/specimenPlayingEntity
    (C-CDA, IHE LAB), as {code, system, display} (the shape HL7v2 SPM-4 would have), else
    the words of its originalText ({text})."""
    for spec in act.specimens:
        entity = spec.entity
        if entity is not None and entity.player_code is not None:
            found = coded_or_words(entity.player_code, ctx, section)
            if found:
                return found
    return None
