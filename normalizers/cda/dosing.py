"""A medication's dosing: dose, rate, preconditions and repeats (refills, dispenses)."""

from __future__ import annotations

from typing import Any

from normalizers.cda.coded import coded_or_words, referenced_text
from normalizers.cda.common import Ctx, is_placeholder
from normalizers.cda.quantities import quantity_text, ratio_text
from normalizers.cda.tables import repeat_keys
from normalizers.cda.timing import dose_range, read_timing, united
from normalizers.cda.values import untyped
from parsers.cda.model import (
    BL,
    CD,
    INT,
    IVL,
    PQ,
    RTO,
    ClinicalStatement,
    Section,
    SubstanceAdministration,
)


def repeats(act: ClinicalStatement, details: dict[str, Any]) -> None:
    """How many times a prescription may be renewed or filled (repeatNumber, read by the
    template saying what it counts: tables/cda_repeat_numbers.csv). eP-MED's 'à renouveler 3
    fois' and a C-CDA order's fills were dropped."""
    count = getattr(act, "repeat_number", None)
    if not isinstance(count, IVL | INT):
        return
    keys = repeat_keys()
    key = next((keys[t.root] for t in act.template_ids if t.root in keys), None)
    if key is None:
        return
    text = (count.value or (count.high.value if isinstance(count, IVL) and
                            isinstance(count.high, INT | IVL) else "")).strip()
    if text.isdigit():
        details[key] = int(text)


def precondition(criterion: ClinicalStatement, ctx: Ctx,
                 section: Section) -> dict[str, Any] | None:
    """What must hold for a medication to be given (precondition/criterion): C-CDA's 'as
    needed for' (Precondition for Substance Administration 4.25: code ASSERTION, the
    condition its value: albuterol PRN wheezing), CI-SIS eP-MED's 'si douleur' (text), a
    protocol's criterion checked (code and BL value). It was dropped: a medication taken
    only when needed read as taken regularly."""
    value = untyped(criterion.values[0]) if criterion.values else None
    code = criterion.code
    out: dict[str, Any] = {}
    if isinstance(value, CD):
        out = coded_or_words(value, ctx, section) or {}
    if not out and code is not None and code.code and code.code != "ASSERTION":
        out = coded_or_words(code, ctx, section) or {}
        if isinstance(value, BL) and value.value:
            out["value"] = value.value
    text = criterion.text or referenced_text(criterion.text_reference, section)
    if text and not is_placeholder(text) and "text" not in out:
        out["text"] = text[:500]
    return out or None


def read_dosing(act: SubstanceAdministration, details: dict[str, Any], ctx: Ctx,
                section: Section) -> None:
    """How a medication is taken (dose, rate, route, dose unit, period, frequency, timing
    event) into ``details``."""
    if isinstance(act.dose_quantity, (PQ, IVL)):
        dose = dose_range(act.dose_quantity) if isinstance(act.dose_quantity, IVL) else \
            quantity_text(act.dose_quantity)
        if dose:
            details["dose"] = dose
    rate = act.rate_quantity
    if isinstance(rate, (PQ, IVL)):  # how fast or how much a day (CI-SIS eP-MED '1500 to
        # 3000 mg/d', an infusion's mL/h): dropped
        rate_text = dose_range(rate) if isinstance(rate, IVL) else quantity_text(rate)
        if rate_text:
            details["rate"] = rate_text
    most = act.max_dose_quantity
    if isinstance(most, RTO):  # 'at most 4 a day' (eP-MED, C-CDA PRN): dropped
        ratio = ratio_text(most)
        if ratio:
            details["max_dose"] = ratio
    if act.route_code is not None and act.route_code.code:
        details["route"] = act.route_code.code
        coded = coded_or_words(act.route_code, ctx, section)
        if coded and (coded.get("system") or coded.get("display")):
            # the bare code said neither whose it is nor what it means: 'C38288' (NCI, C-CDA),
            # '20053000' (EDQM, CI-SIS, IPS), 'PO' (HL7 RouteOfAdministration)
            details["route_coded"] = coded
    if act.administration_unit_code is not None:
        # what one dose counts (C-CDA: doseQuantity 1 + administrationUnitCode 'tablet');
        # the dose read '1' of nothing
        unit = coded_or_words(act.administration_unit_code, ctx, section)
        if unit:
            details["administration_unit"] = unit
    for t in act.effective_times:
        read_timing(t, details, ctx.warnings)
    united(act.effective_times, details)
