"""The Patient resource: the INS typed as FR Core says, the local ids under their authority,
the birth and used names."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from functools import cache

from dossiers.fhir.codings import OID
from dossiers.fhir.common import ACT_REASON, GENDERS, IDENTIFIER_TYPES, RFC3986, TABLES, fhir_string
from dossiers.fhir.dates import fhir_date, fhir_datetime
from dossiers.fhir.identifiers import FR_CORE_IDENTIFIER_TYPES
from normalizers.tabledata import read_csv_rows, table


@cache
def _ins_kinds() -> dict[str, str]:
    return {r["oid"]: r["kind"] for r in table("ins_oids")}


@cache
def _fr_core_ins() -> dict[str, tuple[str, str]]:
    """INS kind -> (FR Core identifier type code, Identifier.use): a FHIR reader finds the
    INS by FR Core's coded type (identifier[INS-NIR]), not by a text (fhir_ins_identifiers.csv)."""
    return {r["kind"]: (r["type_code"], r["use"])
            for r in read_csv_rows(TABLES / "fhir_ins_identifiers.csv")}


@cache
def _ins_tags() -> dict[str, str]:
    """INS kind -> the v3-ActReason tag its Patient carries (HTEST: a test or demo INS)."""
    return {r["kind"]: r["tag"] for r in read_csv_rows(TABLES / "fhir_ins_identifiers.csv")
            if r.get("tag")}


@cache
def _patient_identifier_types() -> dict[str, str]:
    """CX.5 code -> its v2-0203 display, for a local id typed with FHIR's CodeSystem."""
    return {r["code"]: r["display"]
            for r in read_csv_rows(TABLES / "fhir_patient_identifier_types.csv")}


def patient_resource(patient: Mapping, identifiers: Sequence[Mapping] = ()) -> dict:
    """The Patient as FR Core reads it: the INS typed (fhir_ins_identifiers.csv; a test or
    demo INS tags the Patient HTEST), the local ids (an IPP, CX.4 / CDA id root) with their
    assigning authority, the birth name as the 'official' name and the used name as the
    'usual' one (FR Core: nom de naissance / nom utilisé) when the two differ."""
    ins, oid = fhir_string(patient.get("ins")), fhir_string(patient.get("ins_oid"))
    out: list[dict] = []
    tag = None
    if ins:
        kind = _ins_kinds().get(oid or "", "INS")
        fr_core = _fr_core_ins().get(kind)
        typed = {"coding": [{"system": FR_CORE_IDENTIFIER_TYPES, "code": fr_core[0]}]} \
            if fr_core else {}
        out.append({"use": fr_core[1] if fr_core else "official",
                    "type": {**typed, "text": kind},
                    "system": f"urn:oid:{oid}" if oid else None, "value": ins})
        tag = _ins_tags().get(kind)
    out += [i for i in map(_local_patient_identifier, identifiers) if i]
    given = fhir_string(patient.get("given"))
    family, birth = fhir_string(patient.get("family")), fhir_string(patient.get("birth_family"))
    given_names = [given] if given else []
    names = [{"use": "usual", "family": family, "given": given_names}]
    if birth and birth != family:
        # told apart by the sender (PID-5 L and D, 'MARTIN épouse DURAND'): the birth name
        # is the official one. One name for both may be an untyped name the store keeps as
        # both: which it is was not said, it stays the one the patient goes by
        names.insert(0, {"use": "official", "family": birth, "given": given_names})
    res = {"resourceType": "Patient", "identifier": out, "name": names,
           "gender": GENDERS.get((fhir_string(patient.get("sex")) or "").upper()),
           "birthDate": fhir_date(patient.get("birth_date"))}
    if tag:
        res["meta"] = {"tag": [{"system": ACT_REASON, "code": tag,
                                "display": "test health data"}]}
    if patient.get("deceased"):
        # Patient.deceased[x]: the dateTime when the death is dated, else the boolean
        when = fhir_datetime(fhir_string(patient.get("deceased_at")))
        res.update({"deceasedDateTime": when} if when else {"deceasedBoolean": True})
    return res


def _local_patient_identifier(row: Mapping) -> dict | None:
    """One of the patient's local ids (patient_identifiers: authority, value, CX.5 type):
    under urn:oid: of its authority when that is an OID (urn:uuid: when a UUID), the
    authority as Identifier.assigner (by its OID, or by name when a sender gave only a
    namespace). The caller leaves out our own pointers to merged dossiers (dossiers/export.py)."""
    authority, value = fhir_string(row.get("authority")), fhir_string(row.get("value"))
    if not value or not authority or authority in _ins_kinds():
        # a NIR under an INS OID kept as a local id (CX.5 'NH': the billing NIR) is no
        # identity: under the INS's system a reader would take it for the INS
        return None
    code = fhir_string(row.get("type_code"))
    kind = None
    if code and code in _patient_identifier_types():
        kind = {"coding": [{"system": IDENTIFIER_TYPES, "code": code,
                            "display": _patient_identifier_types()[code]}]}
    elif code:
        kind = {"text": code}
    system = _authority_uri(authority)
    return {"type": kind, "system": system, "value": value,
            "assigner": {"identifier": {"system": RFC3986, "value": system}}
            if system else {"display": authority}}


_UUID = re.compile(r"[0-9A-Fa-f]{8}(-[0-9A-Fa-f]{4}){3}-[0-9A-Fa-f]{12}")


def _authority_uri(authority: str) -> str | None:
    """The URI of an assigning authority that is a universal id: an OID -> urn:oid:, a UUID
    (a CDA id/@root may be one, HL7 V3 II) -> urn:uuid: in lower case (RFC 4122, as FHIR
    writes it); None for a namespace, which names no system."""
    if OID.fullmatch(authority):
        return f"urn:oid:{authority}"
    if _UUID.fullmatch(authority):
        return f"urn:uuid:{authority.lower()}"
    return None
