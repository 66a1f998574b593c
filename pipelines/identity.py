"""Identity resolution: which dossier an input belongs to, or why we cannot tell.

Order (DESIGN.md): a trusted INS (valid key, identity status VALI), then a known local
identifier (assigning authority + id), then a strict demographic match (folded family name,
first given name, full birth date, sex). Anything ambiguous or unknown is quarantined with
the reason; nothing is filed on a guess. Reasons name identifiers by kind, never by value.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection

from dossiers.patients import (
    add_identifier,
    create_patient,
    find_by_demographics,
    find_by_ins,
    find_by_local_id,
    get_patient,
)
from normalizers.model import PatientIdentity

TRUSTED_KINDS = {"INS-NIR", "INS-NIA", "INS-NIR-TEST", "INS-NIR-DEMO"}


@dataclass(slots=True)
class Resolution:
    patient_id: int | None
    via: str = ""  # 'ins', 'local-id', 'demographics', 'auto-create'
    code: str | None = None  # quarantine reason code
    reason: str | None = None
    warnings: list[str] | None = None


def _quarantine(code: str, reason: str, warnings: list[str]) -> Resolution:
    return Resolution(None, code=code, reason=reason, warnings=warnings)


def resolve_identity(conn: Connection, identity: PatientIdentity, *,
                     auto_create: bool) -> Resolution:
    warnings: list[str] = []
    chosen = None
    ins_candidates = [i for i in identity.ins if i.kind in TRUSTED_KINDS]
    if ins_candidates:
        if identity.identity_status and identity.identity_status != "VALI":
            warnings.append(f"INS ignored: identity status (PID-32) is "
                            f"{identity.identity_status}, not VALI")
        elif not identity.identity_status and identity.ins:
            warnings.append("INS ignored: no identity status (PID-32) says it was qualified")
        else:
            invalid = [i for i in ins_candidates if not i.key_valid]
            if invalid:
                return _quarantine("IDENTITY_INS_INVALID_KEY",
                                   f"the {invalid[0].kind} sent has an invalid key "
                                   f"(OID {invalid[0].oid}): not filed on a guess", warnings)
            chosen = ins_candidates[0]

    local_ids = [li for li in identity.local_ids if li.type_code != "NH"]
    if chosen is not None:
        patient = find_by_ins(conn, chosen.nir)
        if patient is None:
            if not auto_create:
                return _quarantine("IDENTITY_UNKNOWN_PATIENT",
                                   f"no dossier for this {chosen.kind} "
                                   "(create it, or enable auto-creation)", warnings)
            if not (identity.family and identity.given and identity.birth_date
                    and identity.sex in ("F", "M")):
                return _quarantine("IDENTITY_INCOMPLETE",
                                   "dossier auto-creation needs family name, given name, "
                                   "full birth date and sex (PID-5, PID-7, PID-8)", warnings)
            pid = create_patient(conn, family=identity.family, given=identity.given,
                                 birth_family=identity.birth_family or None,
                                 birth_date=identity.birth_date, sex=identity.sex,
                                 ins=chosen.nir, ins_oid=chosen.oid, created_by="auto-create")
            _remember(conn, pid, local_ids)
            return Resolution(pid, via="auto-create", warnings=warnings)
        return _accept(conn, patient.id, "ins", local_ids, warnings, opposed=patient.opposed)

    matches: set[int] = set()
    for li in local_ids:
        matches.update(find_by_local_id(conn, li.authority, li.value))
    if len(matches) == 1:
        return _accept(conn, matches.pop(), "local-id", local_ids, warnings)
    if len(matches) > 1:
        return _quarantine("IDENTITY_AMBIGUOUS",
                           f"local identifiers point to {len(matches)} different dossiers",
                           warnings)

    if not (identity.family and identity.given and identity.birth_date and identity.sex):
        return _quarantine("IDENTITY_UNKNOWN_PATIENT",
                           "no trusted INS, no known local identifier, and demographics "
                           "incomplete for a strict match", warnings)
    found = find_by_demographics(conn, identity.family, identity.given,
                                 identity.birth_date, identity.sex)
    if identity.birth_family and identity.birth_family != identity.family:
        found = sorted(set(found) | set(find_by_demographics(
            conn, identity.birth_family, identity.given, identity.birth_date, identity.sex)))
    if len(found) == 1:
        return _accept(conn, found[0], "demographics", local_ids, warnings)
    if len(found) > 1:
        return _quarantine("IDENTITY_AMBIGUOUS",
                           f"demographics match {len(found)} dossiers", warnings)
    return _quarantine("IDENTITY_UNKNOWN_PATIENT",
                       "no dossier matches the INS, local identifiers or demographics",
                       warnings)


def _accept(conn: Connection, patient_id: int, via: str, local_ids, warnings,  # noqa: ANN001
            opposed: bool | None = None) -> Resolution:
    if opposed is None:
        patient = get_patient(conn, patient_id)
        opposed = patient is not None and patient.opposed
    if opposed:
        return _quarantine("DOSSIER_OPPOSED",
                           "the patient has opposed the feeding of their dossier", warnings)
    _remember(conn, patient_id, local_ids)
    return Resolution(patient_id, via=via, warnings=warnings)


def _remember(conn: Connection, patient_id: int, local_ids) -> None:  # noqa: ANN001
    for li in local_ids:
        if li.authority and li.value:
            add_identifier(conn, patient_id, li.authority, li.value, li.type_code)
