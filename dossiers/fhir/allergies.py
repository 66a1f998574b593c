"""AllergyIntolerance: the allergen, its kind (type and category), criticality and the
reactions, those the sender says did not occur included."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any

from dossiers.fhir.codings import coded_concept, entry_concept
from dossiers.fhir.common import TABLES, fhir_string, items
from dossiers.fhir.dates import fhir_datetime
from normalizers.tabledata import read_csv_rows


@cache
def criticalities() -> dict[tuple[str, str], str]:
    """(system, code) -> FHIR criticality of an allergy stated in another vocabulary than
    FHIR's (tables/fhir_allergy_criticality.csv: C-CDA's CRITH was not exported)."""
    return {(r["system"], r["code"]): r["criticality"]
            for r in read_csv_rows(TABLES / "fhir_allergy_criticality.csv")}


@cache
def _reaction_severities() -> dict[tuple[str, str], str]:
    return {(r["system"], r["code"]): r["severity"]
            for r in read_csv_rows(TABLES / "fhir_reaction_severity.csv")}


CRITICALITIES = frozenset({"low", "high", "unable-to-assess"})  # R4 allergy criticality


@cache
def _allergy_types() -> dict[tuple[str, str], dict[str, str]]:
    return {(r["system"], r["code"]): r for r in read_csv_rows(TABLES / "fhir_allergy_types.csv")}


def allergen(entry: Mapping, details: Mapping, base_url: str) -> dict:
    """AllergyIntolerance.code, the substance: the entry's code, or, for a substance the
    sender named only in words (details.allergen_text: 'Pollen de bouleau', a playing
    entity's originalText or name), those words; the entry's code is then the allergy's
    kind ('allergy to substance', C-CDA's value), which goes to type and category. The
    words were left out: the export said 'Allergy to substance' and nothing of what to."""
    substance = fhir_string(details.get("allergen_text"))
    if substance and not details.get("allergy_type"):
        return {"text": substance}
    return entry_concept(entry, base_url, "allergy")


def allergy_kind(said: Any) -> dict:  # noqa: ANN401
    """AllergyIntolerance.type and category of the allergy's stated kind
    (details.allergy_type: 'allergie médicamenteuse' 416098002, fhir_allergy_types.csv);
    nothing for a code that does not say it (a MedDRA reaction sent there)."""
    row = _allergy_types().get((str(said.get("system") or ""), str(said.get("code") or ""))) \
        if isinstance(said, Mapping) else None
    if not row:
        return {}
    return {"type": row.get("type") or None,
            "category": [row["category"]] if row.get("category") else []}


def allergy_reactions(reactions: Any, base_url: str) -> list[dict]:  # noqa: ANN401
    """AllergyIntolerance.reaction: each reaction's manifestation, its onset and, when its
    severity is one FHIR grades (tables/fhir_reaction_severity.csv), the severity."""
    out: list[dict] = []
    for reaction in reactions if isinstance(reactions, list) else []:
        manifestation = coded_concept(reaction, base_url)
        if manifestation is None:
            continue
        item: dict[str, Any] = {"manifestation": [manifestation]}
        severity = reaction.get("severity") if isinstance(reaction, Mapping) else None
        if isinstance(severity, Mapping):
            graded = _reaction_severities().get((str(severity.get("system") or ""),
                                                 str(severity.get("code") or "")))
            if graded:
                item["severity"] = graded
        onset = fhir_datetime(fhir_string(reaction.get("onset"))) \
            if isinstance(reaction, Mapping) else None
        if onset:
            item["onset"] = onset
        out.append(item)
    return out


ABSENT_REACTION = "reaction the sender says did not occur"


def absent_reactions(said: Any, base_url: str) -> list[dict]:  # noqa: ANN401
    """Notes of the reactions the sender says did not happen (CDA MFST with negationInd,
    details.absent_reactions: 'pas d'urticaire'). R4 AllergyIntolerance.reaction cannot say
    'not' (a manifestation there reads as present), so each is said in words, with its code
    as a FHIR token (system|code) for a reader who searches."""
    out = []
    for item in items(said):
        concept = coded_concept(item, base_url)
        if concept is None:
            continue
        coding = (concept.get("coding") or [{}])[0]
        token = "|".join(p for p in (coding.get("system"), coding.get("code")) if p)
        words = concept.get("text") or coding.get("display") or coding.get("code")
        out.append({"text": f"{ABSENT_REACTION}: {words}"
                            + (f" ({token})" if token and words != coding.get("code") else "")})
    return out
