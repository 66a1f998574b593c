"""Body sites and laterality (fhir_laterality.csv: R4 has no laterality element)."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any

from dossiers.fhir.codings import coding_of
from dossiers.fhir.common import TABLES, fhir_code, fhir_string
from normalizers.tabledata import read_csv_rows


@cache
def _lateralities() -> dict[str, str]:
    return {r["code"]: r["display"] for r in read_csv_rows(TABLES / "fhir_laterality.csv")}


def body_site(site: Any, base_url: str) -> dict | None:  # noqa: ANN401
    """A body site the CDA gave (details.target_site, details.approach_site: {code, system,
    qualifiers}) as a CodeableConcept: the site coded as sent, its side (the qualifiers:
    fhir_laterality.csv) in its text, since R4 bodySite has no laterality of its own. The
    right and the left eye's measurements were two Observations nothing told apart."""
    if not isinstance(site, Mapping) or not fhir_code(site.get("code")):
        return None
    concept: dict[str, Any] = {"coding": [coding_of(site.get("code"), site.get("system"),
                                                    site.get("display"), base_url)]}
    sides = [_lateralities().get(str(q), str(q)) for q in site.get("qualifiers") or ()
             if fhir_code(q)]
    if sides:
        name = fhir_string(site.get("display"))
        side = ", ".join(sides)
        concept["text"] = f"{name}, {side}" if name else f"laterality: {side}"
    return concept


def site_words(site: Any) -> str | None:  # noqa: ANN401
    """A body site in words (a note where R4 has no element for it)."""
    if not isinstance(site, Mapping) or not fhir_code(site.get("code")):
        return None
    name = fhir_string(site.get("display")) or \
        " ".join(filter(None, (fhir_string(site.get("system")), fhir_code(site.get("code")))))
    sides = [_lateralities().get(str(q), str(q)) for q in site.get("qualifiers") or ()
             if fhir_code(q)]
    return ", ".join([name, *sides])
