"""Qualifier observations (clinical status, severity...) read into the entry they
qualify."""

from __future__ import annotations

from normalizers.cda.coded import mapped_code
from normalizers.cda.common import Ctx, system_name
from normalizers.cda.values import untyped
from normalizers.model import Entry
from parsers.cda.model import CD, ClinicalStatement, Observation, Section

# What the observations nested in a problem or an allergy say about it (LOINC 33999-4
# 'status' in C-CDA and IHE PCC/CI-SIS, HL7 ActCode SEV 'severity', LOINC 11323-3 'health
# status' in IHE PCC/CI-SIS, LOINC 66455-7 'certainty' (confirmed, provisional, refuted: CI-SIS
# FR-Certitude, eHDSI) and 82606-5 'criticality' (CI-SIS FR-Criticite, eHDSI)): details key ->
# (code system, code).
QUALIFIERS = {("LN", "33999-4"): "clinical_status", ("HL7-ACTCODE", "SEV"): "severity",
              ("LN", "11323-3"): "health_status", ("LN", "66455-7"): "certainty",
              ("LN", "82606-5"): "criticality"}
_QUALIFIER_CODES = frozenset(code for _, code in QUALIFIERS)


def is_qualifier(act: ClinicalStatement) -> bool:
    """True for an observation saying a status, severity, certainty... of what nests it."""
    code = act.code
    return isinstance(act, Observation) and code is not None and \
        code.code in _QUALIFIER_CODES and \
        (system_name(code.code_system), code.code) in QUALIFIERS


def nested_qualifiers(act: Observation, entry: Entry, ctx: Ctx, section: Section) -> None:
    """A problem's status ('active', 'resolved') and severity, an allergy's severity: coded
    values of the observations it nests, which were skipped as not entries of their own
    and lost; they go to details, as {code, system, display}."""
    for key, coded in qualifier_values(act, ctx, section).items():
        entry.details.setdefault(key, coded)


def qualifier_values(act: ClinicalStatement, ctx: Ctx,
                     section: Section) -> dict[str, dict[str, str]]:
    """The coded qualifiers (QUALIFIERS: status, severity, certainty...) the observations
    nested in ``act`` say, the first of each kind."""
    found: dict[str, dict[str, str]] = {}
    for rel in act.entry_relationships:
        obs = rel.act
        if not isinstance(obs, Observation) or obs.code is None or not obs.values or \
                obs.code.code not in _QUALIFIER_CODES:
            continue
        key = QUALIFIERS.get((system_name(obs.code.code_system), obs.code.code))
        value = untyped(obs.values[0])
        if key is None or key in found or not isinstance(value, CD):
            continue
        coded = mapped_code(value, ctx, section)
        if coded:
            found[key] = {"code": coded[0], "system": coded[1], "display": coded[2]}
    return found
