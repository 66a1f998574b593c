"""What every part of the FHIR export shares: the tables folder, the uuid namespace of the
fullUrls, the code system URIs and fixed texts, and the small helpers that make a value a
valid FHIR string, code or element (no empty ones)."""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

TABLES = Path(__file__).resolve().parent.parent / "tables"
NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:dmp-ingest:fhir")
UCUM = "http://unitsofmeasure.org"
CONFIDENTIALITY = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
RFC3986 = "urn:ietf:rfc:3986"
DATA_ABSENT = "http://terminology.hl7.org/CodeSystem/data-absent-reason"
DATA_ABSENT_EXTENSION = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"
GENDERS = {"F": "female", "M": "male", "U": "unknown", "O": "other"}
COMPARATORS = frozenset({"<", "<=", ">=", ">"})
CONFIDENTIALITY_CODES = frozenset({"U", "L", "M", "N", "R", "V"})
# v3 ObservationInterpretation codes (HL7v2 table 0078 flags are the same codes)
INTERPRETATIONS = frozenset(
    "< > A AA AC B CAR Carrier D DET E EX EXP H HH HM HU HX I IE IND L LL LU LX MS N NCL ND "
    "NEG NR NS OBX POS QCF R RR S SDD SYN-R SYN-S TOX U UNE VS W WR".split())
FALLBACK_RESOURCE = "Observation"
# value types of a coded value: HL7v2 CE, CWE, CNE, CF; CDA CD, CE, CV, CO
CODED_TYPES = frozenset({"CE", "CWE", "CNE", "CF", "CD", "CV", "CO"})
NEGATED = "negated by the sender (CDA negationInd): this was NOT observed"
ABOUT_SOMEONE_ELSE = "about another person than the patient (CDA subject)"
APPROACH_SITE = "approach site (CDA approachSiteCode)"
OTHER_VALUES = "further values sent (OBX-5 repeated)"
PATIENT_TOLD = "instructions to the patient (CDA instruction)"
OTHER_CDA_VALUES = "further values sent (CDA observation value repeated)"
IDENTIFIER_TYPES = "http://terminology.hl7.org/CodeSystem/v2-0203"
ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"


def full_url(kind: str, ident: object) -> str:
    return f"urn:uuid:{uuid.uuid5(NAMESPACE, f'{kind}/{ident}')}"


def decoded_json(value: Any) -> Any:  # noqa: ANN401
    """JSON columns come back decoded from SQLAlchemy; raw text when a caller passes it."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return None
    return value


def fhir_string(value: Any) -> str | None:  # noqa: ANN401
    """A FHIR string: not blank (FHIR forbids empty strings), other blanks than space, tab
    and line breaks (non-breaking spaces of French typography...) made spaces and control
    characters dropped, as the FHIR string pattern (Unicode-aware) requires."""
    if value is None:
        return None
    text = str(value)
    if not text.isprintable():  # rare: one pass over the characters only then
        text = "".join(c if c.isprintable() or c in "\t\r\n" else " " if c.isspace() else ""
                       for c in text)
    return text.strip() or None


def fhir_code(value: Any) -> str | None:  # noqa: ANN401
    """A FHIR code: no leading, trailing or repeated blanks (its pattern forbids them)."""
    if value is None:
        return None
    return " ".join(str(value).split()) or None


def clean(obj: Any) -> Any:  # noqa: ANN401
    """Drop None, empty strings, lists and dicts (FHIR forbids empty elements)."""
    if isinstance(obj, dict):
        out = {k: clean(v) for k, v in obj.items()}
        return {k: v for k, v in out.items() if v not in (None, "", [], {})}
    if isinstance(obj, list):
        out = [clean(v) for v in obj]
        return [v for v in out if v not in (None, "", [], {})]
    return obj


def fhir_decimal(text: str) -> int | float:
    """A number as FHIR JSON writes it: 8, not 8.0."""
    number = float(text)
    return int(number) if number.is_integer() else number


def as_number(value: Any) -> float | None:  # noqa: ANN401
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def items(said: Any) -> list:  # noqa: ANN401
    """A detail sent once (a mapping) or repeated (a list), as a list."""
    return said if isinstance(said, list) else [said] if said else []


def first(details: Mapping, key: str) -> Mapping | None:
    """The first mapping of a details list (details.informants, details.recorded_by)."""
    said = details.get(key)
    return next((x for x in said if isinstance(x, Mapping)), None) \
        if isinstance(said, list) else None
