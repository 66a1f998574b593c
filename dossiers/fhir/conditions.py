"""Conditions: clinical and verification statuses as the sender stated them, the end of a
problem (abatement) and a cancer's staging (Condition.stage and its TNM Observation)."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache

from dossiers.fhir.codings import CONDITION_VERIFICATION_OID, FHIR_OIDS, fhir_status, said_concept
from dossiers.fhir.common import TABLES, fhir_code, fhir_string, full_url
from dossiers.fhir.dates import fhir_datetime
from dossiers.fhir.masking import security_labels
from normalizers.tabledata import read_csv_rows


@cache
def _clinical_statuses() -> dict[tuple[str, str], dict[str, str]]:
    return {(r["source"], r["code"]): r
            for r in read_csv_rows(TABLES / "fhir_clinical_statuses.csv")}


@cache
def verification_statuses() -> dict[tuple[str, str], dict[str, str]]:
    return {(r["system"], r["code"]): r
            for r in read_csv_rows(TABLES / "fhir_verification_statuses.csv")}


@cache
@cache
def _staging_rows() -> dict[str, tuple[str, str]]:
    """code -> (system, role) of fhir_staging_codes.csv."""
    return {r["code"]: (r["system"], r["role"])
            for r in read_csv_rows(TABLES / "fhir_staging_codes.csv")}


def staging_role(said: Mapping) -> str | None:
    """The staging role of a described observation or a qualifier's name ({code, system}):
    its code in the table's system. One stored without a system (described before its
    system was kept) is taken at its code; a code of another system (a local '21908-9')
    is no staging."""
    row = _staging_rows().get(fhir_code(said.get("code")) or "")
    system = said.get("system")
    if row is None or (system and system != row[0]):
        return None
    return row[1]


def _described_value(said: Mapping, base_url: str) -> dict:
    """The value[x] of an observation kept in another's details (details.observations: a
    T/N/M part, a qualifier): its code with its words, else its words."""
    coded = said.get("value_code") if isinstance(said.get("value_code"), Mapping) else {}
    concept = said_concept(coded.get("code"), coded.get("system"), coded.get("display"),
                           base_url, said.get("value"))
    if concept is None:
        return {}
    if "coding" in concept or said.get("unit"):
        return {"valueCodeableConcept": concept} if "coding" in concept else \
            {"valueString": f"{concept['text']} {fhir_string(said.get('unit'))}"}
    return {"valueString": concept["text"]}


def stages(entry: Mapping, details: Mapping, subject: dict, base_url: str,
           extras: dict[str, dict]) -> list[dict]:
    """A cancer's stagings (details.observations whose code is a staging or a stage group:
    fhir_staging_codes.csv) -> Condition.stage: the stage group as summary (the staging's
    own coded value, else its qualifier naming the stage group: CI-SIS 75620-5 says 'IB'
    so), its code as type, and an Observation as assessment with the qualifiers (the TNM
    edition) and the T, N and M parts as components. All were left in the store: the
    cancer's Condition said nothing of its stage."""
    out = []
    for n, said in enumerate(details.get("observations") or ()):
        if not isinstance(said, Mapping) or not staging_role(said):
            continue
        qualifiers = [q for q in said.get("qualifiers") or () if isinstance(q, Mapping)]
        parts = [p for p in said.get("parts") or () if isinstance(p, Mapping)]
        summary = _described_value(said, base_url).get("valueCodeableConcept")
        components = []
        for q in qualifiers:
            name = q.get("name") if isinstance(q.get("name"), Mapping) else {}
            value = q.get("value") if isinstance(q.get("value"), Mapping) else {}
            concept = said_concept(value.get("code"), value.get("system"),
                                   value.get("display") if fhir_string(value.get("display")) !=
                                   "None" else None, base_url)
            if concept is None:
                continue
            if summary is None and staging_role(name) == "stage":
                summary = concept
            code = said_concept(name.get("code"), name.get("system"), name.get("display"),
                                base_url) or {"text": "qualifier"}
            components.append({"code": code, "valueCodeableConcept": concept})
        for part in parts:
            code = said_concept(part.get("code"), part.get("system"), part.get("display"),
                                base_url)
            value = _described_value(part, base_url)
            if code and value:
                components.append({"code": code, **value})
        kind = said_concept(said.get("code"), said.get("system"), said.get("display"),
                            base_url)
        url = full_url("staging", f"{entry.get('id')}/{n}")
        # a staging of a problem recorded in error is in error too (it was 'final': a
        # reader of Observations found a cancer's stage the sender had withdrawn)
        in_error = fhir_status(entry.get("status"), "Observation") == "entered-in-error"
        extras[url] = {"resourceType": "Observation",
                       "status": "entered-in-error" if in_error else "final",
                       "code": kind or {"text": "cancer staging"}, "subject": subject,
                       "effectiveDateTime": fhir_datetime(entry.get("effective")),
                       "valueCodeableConcept": summary, "component": components,
                       "meta": {"security": security_labels(entry, details)}}
        out.append({"summary": summary, "type": kind, "assessment": [{"reference": url}]})
    return out


def clinical_status(status: str | None, resource: str, details: Mapping,
                    system: str) -> dict | None:
    """A problem's or allergy's clinical status (active, resolved...) as the sender stated it
    (fhir_clinical_statuses.csv); none for an entry in error (R4 con-5, ait-2), none when
    not stated (never guessed as 'active')."""
    if fhir_status(status, resource) == "entered-in-error":
        return None
    stated = details.get("clinical_status")
    row = None
    if isinstance(stated, Mapping):
        row = _clinical_statuses().get((str(stated.get("system") or ""),
                                        str(stated.get("code") or "")))
    if row is None:
        row = _clinical_statuses().get(("concern", str(details.get("concern_status") or "")))
    if row is None or not row.get(resource):
        return None
    return {"coding": [{"system": f"http://terminology.hl7.org/CodeSystem/{system}",
                        "code": row[resource]}]}


_ONGOING = frozenset({"active", "recurrence", "relapse"})  # R4 con-4: no abatement with these
_ABATED = {"system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
           "code": "resolved"}


def abatement(res: dict, status: str | None, details: Mapping) -> None:
    """Condition.abatement from the problem's own end (details.resolved: its effectiveTime
    high), and the clinical status that goes with it (R4 con-4). IHE PCC / CI-SIS: a concern
    still followed (statusCode active) may hold a problem that ended; it was exported
    'active' with an abatement date. The end date says it is resolved, unless the sender
    said otherwise in a status observation: then its word is kept, and the end date, which
    cannot be an abatement then, is said in a note."""
    abated = fhir_datetime(details.get("resolved"))
    if not abated and details.get("resolved_date_unknown") and \
            fhir_status(status, "Condition") != "entered-in-error":
        _ended_on_an_unknown_day(res, details)
        return
    if not abated or fhir_status(status, "Condition") == "entered-in-error":
        res["abatementDateTime"] = abated
        return
    clinical = res.get("clinicalStatus")
    code = clinical["coding"][0]["code"] if clinical else None
    if code not in _ONGOING:
        res["clinicalStatus"] = clinical or {"coding": [dict(_ABATED)]}
        res["abatementDateTime"] = abated
    elif _stated_status(details, "Condition"):
        res["note"] = [{"text": f"end date sent ({abated}) though the sender says the "
                                f"problem is {code}"}]
    else:  # only the concern said 'active': the concern is followed, the problem ended
        res["clinicalStatus"] = {"coding": [dict(_ABATED)]}
        res["abatementDateTime"] = abated


def _ended_on_an_unknown_day(res: dict, details: Mapping) -> None:
    """A problem the sender says ended on a day nobody knows (details.resolved_date_unknown:
    CDA effectiveTime/high nullFlavor UNK): resolved, with abatementString 'unknown' (R4
    Condition.abatement[x] allows a string), unless a status observation of the problem
    itself says otherwise, which is then kept. Only the concern (still followed, 'active')
    made it an active problem."""
    clinical = res.get("clinicalStatus")
    code = clinical["coding"][0]["code"] if clinical else None
    if code in _ONGOING and _stated_status(details, "Condition"):
        return  # the sender's own word on this problem: ongoing, no abatement (con-4)
    if code in _ONGOING or clinical is None:
        res["clinicalStatus"] = {"coding": [dict(_ABATED)]}
    res["abatementString"] = "unknown"


def _stated_status(details: Mapping, resource: str) -> bool:
    """Whether a status observation of the problem itself (details.clinical_status) gave
    its clinical status, rather than the concern act around it."""
    stated = details.get("clinical_status")
    row = _clinical_statuses().get((str(stated.get("system") or ""),
                                    str(stated.get("code") or ""))) \
        if isinstance(stated, Mapping) else None
    return bool(row and row.get(resource))


def verification(status: str | None, resource: str, details: Mapping,
                 system: str) -> dict | None:
    """The verificationStatus: refuted when negated, in error when the entry is, else the
    certainty the sender stated (fhir_verification_statuses.csv: a diagnosis 'infirmé' or
    only suspected was exported as a plain Condition, read as made), else our status."""
    code = "refuted" if details.get("negated") else fhir_status(status, resource)
    certainty = details.get("certainty")
    if code not in ("refuted", "entered-in-error") and isinstance(certainty, Mapping):
        # the sender's system is read here only: the exported one is FHIR's (``system``);
        # it was overwritten, and the verificationStatus went out under the sender's OID
        sent, said = str(certainty.get("system") or ""), str(certainty.get("code") or "")
        if sent.startswith(FHIR_OIDS):  # a FHIR code under another FHIR system's OID
            sent = CONDITION_VERIFICATION_OID  # (the IPS-FR example): FHIR's code still
        row = verification_statuses().get((sent, said)) or {}
        code = row.get(resource) or code
    if not code:
        return None
    return {"coding": [{"system": f"http://terminology.hl7.org/CodeSystem/{system}",
                        "code": code}]}
