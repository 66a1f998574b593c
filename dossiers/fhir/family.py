"""Family history: the relative's role, sex and narrative, and facts about another person
than the patient."""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

from dossiers.fhir.codings import coding_of
from dossiers.fhir.common import fhir_code, fhir_string

_ROLE_CODES = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"
_GENDERS = {"M": "male", "F": "female", "UN": "other", "U": "unknown"}


def narrative(said: str) -> str:
    """A FHIR Narrative div (XHTML) of plain words."""
    return f'<div xmlns="http://www.w3.org/1999/xhtml"><p>{html.escape(said)}</p></div>'


def about_someone_else(subject: Any) -> dict | None:  # noqa: ANN401
    """A Reference (display only: the relative has no resource of their own) to whom an
    entry is about when not the patient (``details.subject``: role code, sex, birth)."""
    if not isinstance(subject, Mapping) or not subject:
        return None
    words = [fhir_string(subject.get("display")) or fhir_code(subject.get("code")) or "relative"]
    if _GENDERS.get(str(subject.get("sex") or "").upper()):
        words.append(_GENDERS[str(subject["sex"]).upper()])
    if fhir_string(subject.get("birth_time")):
        words.append(f"born {fhir_string(subject.get('birth_time'))}")
    return {"display": ", ".join(words)}


def relationship(relative: Any, base_url: str) -> dict:  # noqa: ANN401
    """FamilyMemberHistory.relationship (required): the relative's role code as the
    sender gave it, else 'family member', which a family history section says at least."""
    if isinstance(relative, Mapping) and fhir_code(relative.get("code")):
        return {"coding": [coding_of(relative.get("code"), relative.get("system"),
                                     relative.get("display"), base_url)],
                "text": fhir_string(relative.get("display"))}
    return {"coding": [{"system": _ROLE_CODES, "code": "FAMMEMB",
                        "display": "family member"}]}


def relative_sex(relative: Any) -> dict | None:  # noqa: ANN401
    code = _GENDERS.get(str(relative.get("sex") or "").upper()) \
        if isinstance(relative, Mapping) else None
    if code is None:
        return None
    return {"coding": [{"system": "http://hl7.org/fhir/administrative-gender", "code": code}]}
