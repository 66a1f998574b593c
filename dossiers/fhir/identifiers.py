"""Identifiers of professionals and structures: authorities as urn:oid:, the national PS id
and RPPS, the idNatSt and FINESS, SIREN or SIRET typed as FR Core's slices."""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache
from typing import Any

from dossiers.fhir.codings import OID
from dossiers.fhir.common import TABLES, fhir_string
from normalizers.tabledata import read_csv_rows


@cache
def _identifier_systems() -> dict[str, str]:
    return {r["authority"].upper(): r["oid"]
            for r in read_csv_rows(TABLES / "fhir_identifier_systems.csv")}


def fhir_identifier(value: Any, authority: Any, kind: Any = None) -> dict | None:  # noqa: ANN401
    """An Identifier under its authority's OID (sent, or known by its name:
    fhir_identifier_systems.csv, ASIP-SANTE-PS -> the RPPS/ADELI register
    1.2.250.1.71.4.2.1); an authority known by a name alone is its assigner, never
    guessed into a system. The value is exported as sent, but for a bare RPPS or ADELI
    number under the national PS identifier (``_national_ps_id``)."""
    value, authority = fhir_string(value), fhir_string(authority) or ""
    if not value:
        return None
    oid = authority if OID.fullmatch(authority) else _identifier_systems().get(authority.upper())
    if oid == NATIONAL_PS_OID:
        value = _national_ps_id(value)
    return {"type": {"text": fhir_string(kind)}, "system": f"urn:oid:{oid}" if oid else None,
            "value": value, "assigner": {"display": authority} if authority and not oid
            else None}


NATIONAL_PS_OID = "1.2.250.1.71.4.2.1"  # idNatPS: the national health professional id
# FR Core's identifier types (IDNPS, RPPS, ADELI): the type of a Practitioner's identifiers
FR_CORE_IDENTIFIER_TYPES = "https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-v2-0203"


@cache
def _national_ps_registers() -> tuple[tuple[str, re.Pattern, str, str], ...]:
    """(prefix, number pattern, type, system) of the registers behind an idNatPS
    (fhir_national_ps_ids.csv)."""
    return tuple((r["prefix"], re.compile(r["pattern"]), r["type"], r["system"])
                 for r in read_csv_rows(TABLES / "fhir_national_ps_ids.csv"))


def _national_ps_id(value: str) -> str:
    """The national PS identifier (idNatPS) of a number sent under its OID: '8' + the
    11-digit RPPS, '0' + the 9-character ADELI. CI-SIS documents give the idNatPS
    ('810003791976'); many HL7v2 senders put the bare RPPS ('10003791976') under the same
    authority, and one biologist became two Practitioners in a dossier fed by both."""
    for prefix, number, _, _ in _national_ps_registers():
        if number.fullmatch(value):
            return f"{prefix}{value}"
    return value


def practitioner_identifiers(identifier: dict) -> list[dict]:
    """A Practitioner's identifiers from the one its source gave: an idNatPS typed IDNPS,
    with the register number it holds beside it (FR Core: identifier[idNatPs] and
    identifier[rpps], '810003791976' and '10003791976'), whichever of the two was sent. A
    lab's HL7v2 sends the RPPS, a hospital's CDA the idNatPS: both give the same
    Practitioner, which a reader can find by either number. Another identifier as it is."""
    if identifier.get("system") != f"urn:oid:{NATIONAL_PS_OID}":
        return [identifier]
    value = identifier["value"]
    out = [{"type": {"coding": [{"system": FR_CORE_IDENTIFIER_TYPES, "code": "IDNPS"}]},
            "system": identifier["system"], "value": value}]
    for prefix, number, kind, system in _national_ps_registers():
        if system and value.startswith(prefix) and number.fullmatch(value[len(prefix):]):
            out.append({"type": {"coding": [{"system": FR_CORE_IDENTIFIER_TYPES,
                                             "code": kind}]},
                        "system": system, "value": value[len(prefix):]})
    return out


def identifier_key(ident: Mapping) -> str:
    return f"{ident.get('system') or (ident.get('assigner') or {}).get('display', '')}|" \
           f"{ident['value']}"


@cache
def _structure_registers() -> tuple[tuple[str, re.Pattern, str, str], ...]:
    """(prefix, number pattern, type, system) of the registers behind an idNatSt
    (fhir_structure_ids.csv)."""
    return tuple((r["prefix"], re.compile(r["pattern"]), r["type"], r["system"])
                 for r in read_csv_rows(TABLES / "fhir_structure_ids.csv"))


def _fr_core_type(code: str) -> dict:
    return {"coding": [{"system": FR_CORE_IDENTIFIER_TYPES, "code": code}]}


def organization_identifiers(identifier: dict, kind: str | None) -> list[dict]:
    """An Organization's identifiers as FR Core types them, from the one its source gave
    under the structures' OID (1.2.250.1.71.4.2.2): the idNatSt (type IDNST, use official,
    '1' + FINESS) and the register number it holds under the register's system (finess,
    siren, siret... with the sender's type, FINEG or FINEJ), whichever of the two was sent
    (fhir_structure_ids.csv). An HL7v2 lab sends the bare FINESS with XON.7 'FINEG', a CDA
    the idNatSt: one laboratory, one Organization, found by either number. They were typed
    by the sender's text alone, the bare FINESS under the idNatSt's system as if it were
    one. A value of neither form is exported as it was sent: we never guess a register."""
    if identifier.get("system") != f"urn:oid:{FINESS_OID}":
        return [identifier]
    value, kind = identifier["value"], (kind or "").strip().upper()
    registers = _structure_registers()
    bare = next((r for r in registers if r[2] == kind and r[1].fullmatch(value)), None)
    if bare is not None:
        national, number, kinds = bare[0] + value, value, {kind: bare[3]}
    else:
        held = [r for r in registers if value.startswith(r[0]) and
                r[1].fullmatch(value[len(r[0]):])]
        if not held:
            return [identifier]
        national, number = value, value[len(held[0][0]):]
        kinds = {r[2]: r[3] for r in held}
    out = [{"use": "official", "type": _fr_core_type("IDNST"), "system": identifier["system"],
            "value": national}]
    # the sender's type when the number is of that register, else the prefix's only one
    said = kind if kind in kinds else next(iter(kinds)) if len(kinds) == 1 else None
    if said and kinds[said]:
        out.append({"type": _fr_core_type(said), "system": kinds[said], "value": number})
    return out


FINESS_OID = "1.2.250.1.71.4.2.2"  # national identifier of structures (FINESS, SIRET)


def entity_identifier(key: Any) -> dict | None:  # noqa: ANN401
    """A CDA II as we key it ('root^extension', or the root alone) as an Identifier: the
    root an OID -> urn:oid:, a root alone (a UUID, an OID) -> its URI under RFC 3986."""
    root, _, extension = str(key or "").partition("^")
    root, extension = root.strip(), extension.strip()
    if extension and OID.fullmatch(root):
        return {"system": f"urn:oid:{root}", "value": extension}
    if not extension and re.fullmatch(r"[0-9A-Fa-f]{8}(-[0-9A-Fa-f]{4}){3}-[0-9A-Fa-f]{12}",
                                      root):
        return {"system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{root.lower()}"}
    if not extension and OID.fullmatch(root):
        return {"system": "urn:ietf:rfc:3986", "value": f"urn:oid:{root}"}
    return None
