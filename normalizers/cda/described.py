"""Observations that describe another (a staging, its parts): read into the entry
that holds them."""

from __future__ import annotations

from typing import Any

from normalizers.cda.coded import mapped_code
from normalizers.cda.common import OBSERVATION, Ctx
from normalizers.cda.qualifiers import is_qualifier
from normalizers.cda.values import fill_value, untyped
from normalizers.model import Entry
from parsers.cda.model import Observation, Section


def describe(obs: Observation, entry: Entry, key: str, ctx: Ctx, section: Section) -> None:
    """An observation about a device or an act (its size, how it went) added to the
    entry's details[key] as {code, display, value, unit}, instead of an entry of its own."""
    described = _described(obs, ctx, section, DESCRIBED_DEPTH)
    if described is not None:
        entry.details.setdefault(key, []).append(described)


DESCRIBED_DEPTH = 3  # levels of parts read under a described observation (a staging, its
# T, N and M; an 'other classification', its name and version): the XML allows any


def _described(obs: Observation, ctx: Ctx, section: Section,
               depth: int) -> dict[str, Any] | None:
    """{code, system, display, value, unit} of an observation described in another's details
    (its system with its code: two nested observations of one code string in two systems, a
    local '21908-9' and LOINC's, were alike, and the export coded them in no system); with
    ``qualifiers`` when its coded value says more in qualifiers (CI-SIS / IHE PCC cancer
    staging 75620-5: no code of its own, the stage 21909-7 and the TNM version 21917-0 as
    qualifiers), and ``parts``: the observations it nests, each described the same way (the
    T, N and M of that staging). Both were dropped: a cancer's stage was filed as a staging
    observation with no value and its T1b N1 M0 lost."""
    if obs.code is None or obs.null_flavor:
        return None
    parts = [d for d in (_described(rel.act, ctx, section, depth - 1)
                         for rel in obs.entry_relationships
                         if isinstance(rel.act, Observation) and not is_qualifier(rel.act))
             if d is not None and _says_something(d)] if depth > 0 else []
    if not obs.values and not parts:
        return None
    item = Entry(type=OBSERVATION, key="", source_ref=obs.path)
    value = untyped(obs.values[0]) if obs.values else None
    if value is not None:
        fill_value(value, item, ctx, section)
    coded = mapped_code(obs.code, ctx, section)
    described: dict[str, Any] = {
        "code": coded[0] if coded else None, "system": coded[1] if coded else None,
        "display": coded[2] if coded else None, "value": item.value, "unit": item.unit}
    value_code = item.details.get("value_code")
    if value_code:  # the coded value itself (T1b in TNM_UICC), not only its words
        described["value_code"] = value_code
    qualifiers = item.details.get("value_qualifiers")
    if qualifiers:
        described["qualifiers"] = qualifiers
    if parts:
        described["parts"] = parts
    if obs.negation_ind == "true":  # 'venous access difficult' negated: it was easy; it
        described["negated"] = True  # read as said
    return described


def _says_something(described: dict[str, Any]) -> bool:
    """A part worth keeping: it has a value (words, code or qualifiers) or parts of its own;
    a template's empty slot ('name of the classification': a placeholder) is not one."""
    return any(described.get(k) for k in ("value", "value_code", "qualifiers", "parts"))
