"""Procedures and medical devices, and the reason an act was not done."""

from __future__ import annotations

from normalizers.cda.base import base_entry, body_site, set_period_end, uncoded_name
from normalizers.cda.coded import (
    coded_or_words,
    mapped_code,
    original_text,
    qualify,
    referenced_text,
)
from normalizers.cda.common import DEVICE, PROCEDURE, Ctx
from normalizers.cda.described import describe
from normalizers.cda.organizers import DEVICE_PARTICIPATIONS
from normalizers.cda.times import iso_value
from normalizers.cda.values import fill_value, untyped
from normalizers.model import Entry
from parsers.cda.model import CD, IVL, TS, ClinicalStatement, Observation, Procedure, Section


def procedure_entry(act: ClinicalStatement, section: Section, ctx: Ctx,
                    parent_key: str | None) -> Entry | None:
    """A procedure: coded (its code or a translation: a CCAM act under a local code
    nullFlavor'd), else named in words (originalText, in the narrative or inline: 'plâtre
    de l'avant-bras'), else nothing to file. Both uncoded forms were dropped. A procedure
    with no code element at all (CDA R2 Procedure.code is 0..1; IHE PCC and C-CDA senders
    that only have the surgeon's words write its text alone) is named by its text the same
    way; it was dropped before anything was read."""
    code = act.code
    if code is None:
        name = uncoded_name(act, section)
    else:
        name = "" if code.code or code.translations else uncoded_name(act, section)
    if not name and (code is None or not mapped_code(code, ctx, section)):
        return None
    entry = base_entry(act, PROCEDURE, section, ctx, parent_key)
    if name:
        entry.display, entry.mapped = name, False
    if code is not None and code.qualifiers:
        qualify(code, entry, "code_qualifiers", ctx, section)
    if isinstance(act, Observation) and act.values:  # C-CDA procedure activity observation:
        fill_value(untyped(act.values[0]), entry, ctx, section)  # what it found (an ECG...)
    site = next((f for f in (body_site(c, section) for c in act.approach_site_codes) if f), None) \
        if isinstance(act, Procedure) and act.approach_site_codes else None
    if site:  # the way in (approachSiteCode: a coronary angiography by the right radial
        # artery, C-CDA / IHE PCC procedure entries): dropped, the target site alone kept
        entry.details["approach_site"] = site
    if isinstance(act, Procedure) and act.method_codes:  # how: the imaging modality (DICOM
        # Part 20 Procedure Technique: CT, MR), the technique; it was dropped
        methods = [m for m in (coded_or_words(c, ctx, section) for c in act.method_codes)
                   if m]
        if methods:
            entry.details["method"] = methods
    set_period_end(act, entry, ctx)
    if act.status_code.strip() == "aborted":  # begun, then stopped before its end; filed
        # 'cancelled' as one called off before it began (ActStatus 'cancelled') is
        entry.details["aborted"] = True
    if act.negation_ind == "true":  # not done: why
        not_done_reason(act, entry, ctx, section)
    return entry


REASON_NOT_DONE = "77301-0"  # LOINC 'reason care action performed or not' (QRDA, C-CDA)


def not_done_reason(act: ClinicalStatement, entry: Entry, ctx: Ctx,
                    section: Section) -> None:
    """Why a medication, vaccination or procedure was not done (negationInd): the RSON it
    nests (or a QRDA reason observation, LOINC 77301-0, whatever its typeCode: senders omit
    it), coded in its value or its code (C-CDA immunization refusal reason, 'PATOBJ')."""
    for rel in act.entry_relationships:
        reason = rel.act
        if reason is None or (rel.type_code != "RSON" and not (
                reason.code is not None and reason.code.code == REASON_NOT_DONE)):
            continue
        value = untyped(reason.values[0]) if isinstance(reason, Observation) and \
            reason.values else None
        coded = mapped_code(value, ctx, section) if isinstance(value, CD) else None
        if not coded and reason.code is not None:
            coded = mapped_code(reason.code, ctx, section)
        if coded:
            entry.details["not_done_reason"] = {"code": coded[0], "system": coded[1],
                                                "display": coded[2]}
            return


def device_entry(act: ClinicalStatement, section: Section, ctx: Ctx,
                 parent_key: str | None) -> Entry | None:
    """A medical device the patient has (CI-SIS FR-Dispositif-medical, CCD supply activity
    with a DEV participant, C-CDA non-medicinal supply): coded by its playing device (EMDN,
    LPP, GMDN, SNOMED CT), else its product; its characteristics (size, diameter: nested
    observations) go to details. They were filed as the patient's observations ('Taille:
    2.5') and the device itself was not filed."""
    device = next((p.entity.player_code for p in act.participants
                   if p.type_code in DEVICE_PARTICIPATIONS and p.entity is not None and
                   p.entity.player_code is not None), None)
    product = getattr(act, "product", None)
    if device is None and product is not None:
        device = product.code
    entry = base_entry(act, DEVICE, section, ctx, parent_key)
    entry.code = entry.system = entry.display = None
    entry.mapped = True
    coded = mapped_code(device, ctx, section) if device is not None else None
    if coded:
        entry.code, entry.system, entry.display, entry.mapped = coded
    else:
        entry.display = (original_text(device, section) if device is not None else "") or \
            referenced_text(act.text_reference, section) or act.text or None
        entry.mapped = False
    if entry.code is None and not entry.display:
        return None
    if isinstance(act.effective_time, IVL):  # implanted on (low), removed on (high)
        for name in ("low", "high"):
            v = getattr(act.effective_time, name)
            if isinstance(v, TS) and v.value:
                entry.details[f"period_{name}"] = iso_value(v.value)
    for rel in act.entry_relationships:
        if isinstance(rel.act, Observation):
            describe(rel.act, entry, "characteristics", ctx, section)
    return entry
