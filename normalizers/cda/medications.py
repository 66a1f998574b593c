"""Medications, dispenses and their parts: IHE Pharm product details, the entry
relationships of a substance administration (instructions, indication, reactions), deliveries."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from normalizers.cda.allergies import allergy_reaction
from normalizers.cda.attribution import entry_author
from normalizers.cda.base import base_entry, body_site, local_code
from normalizers.cda.coded import coded_or_words, mapped_code, original_text, referenced_text
from normalizers.cda.common import (
    IMMUNIZATION,
    PHARM_NAMESPACES,
    Ctx,
    absent_codes,
    is_placeholder,
    system_name,
)
from normalizers.cda.described import describe
from normalizers.cda.dosing import precondition, read_dosing, repeats
from normalizers.cda.header import assigned_party, is_device
from normalizers.cda.immunizations import DOSE_NUMBER, dose_number, occurrence, target_diseases
from normalizers.cda.procedures import not_done_reason
from normalizers.cda.quantities import quantity_text
from normalizers.cda.references import comment_text, statement_references
from normalizers.cda.results import performer_of
from normalizers.cda.tables import medication_parts
from normalizers.cda.times import effective_time, iso_value
from normalizers.cda.values import untyped
from normalizers.model import Entry
from parsers.cda.model import (
    CD,
    IVL,
    PQ,
    TS,
    ClinicalStatement,
    EntryRelationship,
    Extension,
    Observation,
    Product,
    Section,
    SubstanceAdministration,
    Supply,
)


def _pharm_codes(ext: Extension) -> Iterator[dict[str, str]]:
    """The pharm:code elements under ``ext`` (any depth), as {code, system, display}."""
    for child in ext.children:
        if child.name == "code" and child.attributes.get("code"):
            a = child.attributes
            yield {"code": a["code"], "system": system_name(a.get("codeSystem", "")),
                   "display": a.get("displayName", "")}
        else:
            yield from _pharm_codes(child)


def _pharm_details(extensions: list[Extension], entry: Entry) -> None:
    """IHE Pharm (urn:ihe:pharm:medication) parts of a product: its active ingredients
    (pharm:ingredient, the substances of a mixture or a magistral preparation; CI-SIS nests
    pharm:ingredient in pharm:ingredient) and its generic class (pharm:asSpecializedKind,
    the ATC of a brand in CI-SIS)."""
    for ext in extensions:
        if ext.namespace not in PHARM_NAMESPACES:
            continue
        if ext.name == "ingredient":
            found = list(_pharm_codes(ext))
            strength = _pharm_strength(ext)
            if strength:  # how much of it (500 mg per tablet): it was dropped
                found = [{**f, "strength": strength} for f in found]
            entry.details.setdefault("ingredients", []).extend(found)
        elif ext.name == "asSpecializedKind":
            entry.details.setdefault("generic", []).extend(_pharm_codes(ext))
        elif ext.name == "asContent":
            entry.details.setdefault("package", []).extend(_pharm_package(ext))
    for name in ("ingredients", "generic", "package"):
        if name in entry.details and not entry.details[name]:
            del entry.details[name]


def _pharm_strength(ingredient: Extension) -> str:
    """An IHE Pharm ingredient's quantity (pharm:quantity numerator / denominator) as text:
    '500 mg', '20 mg/5 mL' ('' when not said)."""
    quantity = next((c for c in ingredient.children if c.name == "quantity"), None)
    if quantity is None:
        return ""
    parts = {c.name: c.attributes for c in quantity.children
             if c.name in ("numerator", "denominator")}
    numerator = parts.get("numerator", {})
    if not numerator.get("value"):
        return ""
    text = f"{numerator['value']} {numerator.get('unit', '')}".strip()
    denominator = parts.get("denominator", {})
    value, unit = denominator.get("value", ""), denominator.get("unit", "")
    if value and (value != "1" or unit not in ("", "1")):
        text += f"/{value} {unit}".rstrip() if value != "1" else f"/{unit}"
    return text[:60]


def _pharm_package(as_content: Extension) -> Iterator[dict[str, str]]:
    """The package a product comes in (IHE Pharm pharm:asContent/containerPackagedMedicine:
    CIP13 in France, GTIN in CDA-CH eMedication), with its name and capacity. A Swiss
    treatment plan names the product only there (its material code is the ATC class): the
    product prescribed was lost."""
    for package in as_content.children:
        if package.name != "containerPackagedMedicine":
            continue
        name = next((c.text.strip() for c in package.children if c.name == "name"), "")
        capacity = next((c.attributes for c in package.children
                         if c.name == "capacityQuantity"), {})
        for coded in _pharm_codes(Extension(package.namespace, "package", children=[
                c for c in package.children if c.name == "code"])):
            coded["display"] = coded["display"] or name
            if capacity.get("value"):
                coded["capacity"] = f"{capacity['value']} {capacity.get('unit', '')}".strip()
            yield coded


def medication_entry(act: SubstanceAdministration | Supply, kind: str, section: Section,
                     ctx: Ctx, parent_key: str | None) -> Entry | None:
    """A medication, vaccination or dispensed product: named by its product (consumable,
    or a supply's product), never by the statement's own code, which says what kind of act
    it is (IHE PHARM 'PREItem', IHE PCC 'IMMUNIZ'): a reference to a prescription item
    with no product was filed as the medication 'PREItem'. An absent-unknown code there
    ('no-known-medications', CI-SIS) is kept: it is what the statement says."""
    product = act.consumable if isinstance(act, SubstanceAdministration) else act.product
    entry = base_entry(act, kind, section, ctx, parent_key)
    entry.details.pop("local_code", None)  # the act's code's: not the product's
    entry.details.pop("other_codes", None)
    if entry.code is not None and (entry.system, entry.code) not in absent_codes():
        entry.details["act_code"] = entry.code
        entry.code = entry.system = entry.display = None
        entry.mapped = True
    if product is not None and product.code is not None and (product.code.code or
                                                             product.code.translations):
        coded = mapped_code(product.code, ctx, section)
        if coded:  # translations without a code, or only a placeholder: none (TypeError)
            entry.code, entry.system, entry.display, entry.mapped = coded
            local = local_code(product.code, coded)
            if local:  # a hospital formulary's code filed under its CIS / ATC translation
                entry.details["local_code"] = local
        entry.details["substance"] = [
            {"code": t.code, "system": system_name(t.code_system)}
            for t in product.code.translations if t.code]
    if product is not None and product.name:
        entry.display = entry.display or product.name
        entry.details["product_name"] = product.name
    if product is not None and product.extensions:
        _pharm_details(product.extensions, entry)
    if product is not None and product.lot_number:
        entry.details["lot_number"] = product.lot_number  # vaccines: traceability
    site = next((f for f in (body_site(c, section) for c in act.approach_site_codes) if f), None) \
        if isinstance(act, SubstanceAdministration) and act.approach_site_codes else None
    if site:  # where it was given, with its side (C-CDA Immunization / Medication Activity,
        # IHE PCC: approachSiteCode 'left deltoid'): dropped
        entry.details["approach_site"] = site
    if product is not None and product.manufacturer is not None:
        # with the lot, who made it (C-CDA immunization medication information): dropped
        maker = next((n for n in product.manufacturer.names if n), "") or \
            next((i.key for i in product.manufacturer.ids if i.root), "")
        if maker:
            entry.details["manufacturer"] = maker[:300]
    if kind == IMMUNIZATION and act.participants:
        targets = target_diseases(act, ctx, section)
        if targets:
            entry.details["target_diseases"] = targets
    if kind == IMMUNIZATION:
        dose = dose_number(act) if act.entry_relationships else None
        if dose is None and act.mood_code in ("", "EVN"):
            dose = occurrence(act)
        if dose is not None:
            entry.details["dose_number"] = dose
    if entry.code is None and not entry.display and product is not None and \
            product.code is not None:
        entry.display = original_text(product.code, section) or None  # free-text drug
    if entry.code is None and not entry.display and product is not None:
        # no product code nor name: the statement's own words (C-CDA free-text medication)
        words = act.text or referenced_text(act.text_reference, section)
        entry.display = None if is_placeholder(words) else words[:500] or None
    if entry.code is None and not entry.display:
        return None
    if act.negation_ind == "true":
        not_done_reason(act, entry, ctx, section)
    if isinstance(act, Supply) and act.mood_code.strip() not in ("", "EVN"):
        # a supply intended (C-CDA Planned Supply): the quantity to dispense, nothing
        # handed out yet (it was 'dispensed')
        quantity = act.quantity
        if isinstance(quantity, PQ) and quantity.value:
            entry.details["quantity_prescribed"] = {"value": quantity.value.strip(),
                                                    "unit": quantity.unit or None}
        return entry
    if isinstance(act, Supply):
        return _dispensed(act, entry, ctx, section)
    read_dosing(act, entry.details, ctx, section)
    if "period_high" in entry.details and "period_low" not in entry.details and \
            entry.effective == entry.details["period_high"] and \
            isinstance(act.effective_time, IVL) and not act.effective_time.value:
        # taken until a date, since when unknown (low nullFlavor UNK: a C-CDA medication
        # history): the end is no start, as for a problem's resolution; it was filed as
        # the day the medication was taken (details.period_high keeps it)
        entry.effective = None
    repeats(act, entry.details)
    if act.preconditions:
        conditions = [c for c in (precondition(p, ctx, section) for p in act.preconditions)
                      if c]
        if conditions:
            entry.details["preconditions"] = conditions
    if act.mood_code not in ("", "EVN"):
        entry.details["mood"] = act.mood_code
    return entry


PATIENT_INSTRUCTIONS = "patient_instructions"  # tables/cda_medication_parts.csv's key
SECTION_ENTRY = re.compile(r"/entry(\[\d+\])?/[^/]+$")  # a statement that is a section entry


def is_instruction(act: ClinicalStatement) -> bool:
    """Whether a statement is an instruction to the patient (C-CDA Instruction, IHE PCC /
    CI-SIS FR-Instructions-au-patient: tables/cda_medication_parts.csv)."""
    parts = medication_parts()
    return any(parts.get(t.root, ("",))[0] == PATIENT_INSTRUCTIONS for t in act.template_ids)


def patient_instruction(act: ClinicalStatement, entry: Entry, section: Section) -> None:
    """What the patient is told about a procedure, a planned act, test or visit (C-CDA R2.1
    Planned Procedure/Act/Encounter/Observation and Procedure Activity MAY hold an
    Instruction: 'à jeun depuis minuit', 'apporter les clichés précédents'), into
    details.patient_instructions as a medication's are. It was read under a medication
    only, and under anything else dropped without a word."""
    text = comment_text(act, section)
    if any(c.isalnum() for c in text):  # '-': the sender's 'no instruction'
        entry.details.setdefault(PATIENT_INSTRUCTIONS, []).append(text)


def medication_part(rel: EntryRelationship, entry: Entry, ctx: Ctx,
                    section: Section) -> None:
    """What a medication or vaccination nests about itself, into its details: the
    instructions to the patient and to the pharmacist, whether it may be substituted, the
    quantity to dispense (tables/cda_medication_parts.csv), why it is given (RSON: an
    indication coded in an observation's value or an internal reference's code), a
    reaction, and the prescription's flags (CI-SIS: related to an ALD, an occupational
    accident, off-label, not reimbursed). All were skipped as no entries of their own:
    an eP-MED prescription lost everything but the drug and its dosing."""
    act = rel.act
    if act is None or act.null_flavor:
        return
    parts = medication_parts()
    part = next((parts[t.root] for t in act.template_ids if t.root in parts), None)
    if part is not None:
        key, reads = part
        if reads == "text":
            text = comment_text(act, section)
            if any(c.isalnum() for c in text):  # '-': the sender's 'no instruction'
                entry.details.setdefault(key, []).append(text)
        elif reads == "code" and act.code is not None:
            found = coded_or_words(act.code, ctx, section)
            if found:
                entry.details[key] = found
        elif reads == "reference":
            fulfilled = _item_reference(act, ctx)
            if fulfilled:
                entry.details[key] = fulfilled
        elif reads == "quantity":
            quantity = getattr(act, "quantity", None)
            if isinstance(quantity, PQ) and quantity.value:
                entry.details[key] = {"value": quantity.value.strip(),
                                      "unit": quantity.unit or None}
            repeats(act, entry.details)
        return
    if isinstance(act, SubstanceAdministration) and rel.type_code == "COMP" and \
            not names_a_product(act.consumable) and \
            DOSAGE_INSTRUCTIONS not in act.template_roots:  # a dispense's: details.dosage
        # a subordinate administration (IHE PCC split / tapered dose, CI-SIS
        # FR-Traitement-prescrit-subordonnee: 'every 8 h for 2 days, then every 12 h'): a
        # step of this medication's dosing, dropped with all it said
        step: dict[str, Any] = {"sequence": rel.sequence_number} if rel.sequence_number \
            else {}
        read_dosing(act, step, ctx, section)
        if len(step) > ("sequence" in step):
            entry.details.setdefault("dosage_steps", []).append(step)
        return
    if rel.type_code == "RSON":
        if not entry.details.get("negated"):  # not given: the reason is why not
            reason = _indication(act, ctx, section)
            if reason:
                entry.details.setdefault("reasons", []).append(reason)
        return
    if not isinstance(act, Observation) or (act.code is not None and
                                            act.code.code == DOSE_NUMBER):
        return
    if rel.type_code in ("MFST", "CAUS"):
        reaction = allergy_reaction(act, ctx, section)
        if reaction:
            entry.details.setdefault("reactions", []).append(reaction)
        return
    describe(act, entry, "observations", ctx, section)


def _item_reference(act: ClinicalStatement, ctx: Ctx) -> dict[str, Any] | None:
    """The prescription item a dispense fulfils (IHE Pharm / CI-SIS eDISP): the item's id,
    who prescribed it and the prescription document it is in (its reference XCRPT). It was
    skipped: a dispense could not be tied to the prescription it executes, nor the
    prescriber named. None when it says none of them."""
    ids = [i.key for i in act.ids if i.root and not i.null_flavor]
    out: dict[str, Any] = {"item": ids[0] if ids else None}
    prescribers = [a for a in (entry_author(x, ctx) for x in act.authors) if a]
    if prescribers:
        out["prescribed_by"] = prescribers
    documents = statement_references(act, [])
    if documents:
        out["documents"] = documents
    return out if out["item"] or len(out) > 1 else None


def nested_delivery(act: Supply, ctx: Ctx) -> dict[str, Any] | None:
    """A dispense nested in a medication, without a product of its own: when (its time,
    else its performer's), how many and by whom (ids, organization and its name)."""
    when = effective_time(act.effective_time, ctx) or next(
        (t for t in (effective_time(p.time, ctx) for p in act.performers) if t), "")
    out: dict[str, Any] = {"time": when or None}
    if isinstance(act.quantity, PQ) and act.quantity.value:
        out["quantity"] = quantity_text(act.quantity)
    by = performer_of(act) if act.performers else None
    if by:
        out["by"] = by
    return {k: v for k, v in out.items() if v} or None


def names_a_product(product: Product | None) -> bool:
    """Whether a consumable says what is given (a code, a translation or a name), as
    opposed to the nullFlavor NA of a step or instruction of another statement's."""
    if product is None:
        return False
    code = product.code
    return bool(product.name or code is not None and (code.code or code.translations or
                                                      code.original_text))


def _indication(act: ClinicalStatement, ctx: Ctx, section: Section) -> dict[str, str] | None:
    """Why a medication is given: the coded value of an indication observation (C-CDA
    4.19: its code only says 'finding'), else the code of the act (CI-SIS
    FR-Reference-interne: the problem's CIM-10 code), else their words."""
    if isinstance(act, Observation) and act.values:
        value = untyped(act.values[0])
        if isinstance(value, CD):
            found = coded_or_words(value, ctx, section)
            if found:
                return found
    if act.code is not None:
        return coded_or_words(act.code, ctx, section)
    return None


DOSAGE_INSTRUCTIONS = "1.3.6.1.4.1.19376.1.9.1.3.6"  # IHE Pharm Dosage Instructions (CI-SIS
# eDISP: the posology the pharmacist hands out with a dispense)


def _dispensed(act: Supply, entry: Entry, ctx: Ctx, section: Section) -> Entry:
    """A dispense (supply in event mood: IHE PHARM DIS, CI-SIS FR-Traitement-dispense,
    C-CDA Medication Dispense): the quantity handed out, and the dosage instructions it
    nests (IHE Pharm DIS / CI-SIS eDISP: a substanceAdministration without a product of its
    own: dose, route, frequency, period; details.dosage: they were dropped); its time is the
    supply's, else its author's, else its section's (the pharmacist's, CI-SIS eDISP)."""
    quantity = act.quantity
    if isinstance(quantity, PQ) and quantity.value:
        entry.details["dispensed_quantity"] = quantity_text(quantity)
    entry.details["dispensed"] = True
    for rel in act.entry_relationships:
        dosing = rel.act
        if isinstance(dosing, SubstanceAdministration) and \
                DOSAGE_INSTRUCTIONS in dosing.template_roots:
            dosage: dict[str, Any] = {}
            read_dosing(dosing, dosage, ctx, section)
            if dosage:
                entry.details["dosage"] = dosage
            break
    if entry.effective is None:
        times = [a.time for a in (*act.authors, *section.authors)
                 if isinstance(a.time, TS) and a.time.value]
        entry.effective = iso_value(times[0].value) or None if times else None
    by = _dispenser(act, section)
    if by:
        entry.details["dispensed_by"] = by
    return entry


def _dispenser(act: Supply, section: Section) -> dict[str, Any] | None:
    """Who dispensed (the pharmacist, and the pharmacy: ids, FINESS, name), as ids like a
    vaccinator's: the supply's performer (C-CDA Medication Dispense, IHE PCC Supply Entry),
    else the person who authored the dispense or its section (CI-SIS eDISP and IHE PHARM
    DIS name the dispensing pharmacist and the pharmacy as the section's author). It was
    dropped: a dispense filed without the pharmacy that handed it out (the pharmacist's
    RPPS in recorded_by, never the pharmacy's name). Software authors dispense nothing."""
    if act.performers:
        by = performer_of(act)
        if by:
            return by
    people = [a for a in (*act.authors, *section.authors)
              if a.entity is not None and not is_device(a)]
    return assigned_party(people[0].entity) if people else None
