"""Masking: the DMP's effective mask and the sender's confidentiality as security labels."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache

from dossiers.fhir.common import CONFIDENTIALITY, CONFIDENTIALITY_CODES, TABLES, _json, _text
from normalizers.tabledata import read_csv_rows


def masking_of(entry: Mapping) -> dict[str, bool]:
    """The DMP masking in force: the sender's flags, MASQUE_PS overridden by the patient's
    own choice (mask_override) when there is one."""
    flags = {k: bool(v) for k, v in (_json(entry.get("masking")) or {}).items()
             if isinstance(k, str)}
    override = entry.get("mask_override")
    if override is not None:
        flags["MASQUE_PS"] = bool(override)
    return {k: v for k, v in flags.items() if v}


@cache
def _security_labels() -> dict[str, dict[str, str]]:
    return {r["flag"]: r for r in read_csv_rows(TABLES / "fhir_security_labels.csv")}


def _security(entry: Mapping, details: Mapping) -> list[dict]:
    """Security labels: the sender's confidentiality (v3-Confidentiality) and the DMP masking
    in force, in the DMP's code system (fhir_security_labels.csv). Every MetaDMPMSS flag was
    a label under a local system, routing ones too (DESTDMP: 'sent to the DMP' read as a
    restriction); the masking ones were in no system a DMP reader knows."""
    labels = []
    conf = _text(details.get("confidentiality"))
    if conf and conf.upper() in CONFIDENTIALITY_CODES:
        labels.append({"system": CONFIDENTIALITY, "code": conf.upper()})
    known = _security_labels()
    for flag in sorted(f for f in masking_of(entry) if f in known):
        row = known[flag]
        labels.append({"system": row["system"], "code": row["code"],
                       "display": row["display"]})
    return labels
