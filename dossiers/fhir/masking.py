"""Masking: the DMP's effective mask and the sender's confidentiality as security labels."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache

from dossiers.fhir.common import (
    CONFIDENTIALITY,
    CONFIDENTIALITY_CODES,
    TABLES,
    decoded_json,
    fhir_string,
)
from normalizers.tabledata import read_csv_rows


def masking_of(entry: Mapping) -> dict[str, bool]:
    """The DMP masking in force: the sender's flags, MASQUE_PS overridden by the patient's
    own choice (mask_override) when there is one."""
    flags = {k: bool(v) for k, v in (decoded_json(entry.get("masking")) or {}).items()
             if isinstance(k, str)}
    override = entry.get("mask_override")
    if override is not None:
        flags["MASQUE_PS"] = bool(override)
    return {k: v for k, v in flags.items() if v}


@cache
def _security_labels() -> dict[str, dict[str, str]]:
    return {r["flag"]: r for r in read_csv_rows(TABLES / "fhir_security_labels.csv")}


def security_labels(entry: Mapping, details: Mapping) -> list[dict]:
    """Security labels: the confidentiality in force (v3-Confidentiality) and the DMP masking
    in force, in the DMP's code system (fhir_security_labels.csv). Every MetaDMPMSS flag was
    a label under a local system, routing ones too (DESTDMP: 'sent to the DMP' read as a
    restriction); the masking ones were in no system a DMP reader knows."""
    known = _security_labels()
    masks = [known[f] for f in sorted(f for f in masking_of(entry) if f in known)]
    conf = _confidentiality(fhir_string(details.get("confidentiality")), masks)
    labels = [{"system": CONFIDENTIALITY, "code": conf}] if conf else []
    labels += [{"system": row["system"], "code": row["code"], "display": row["display"]}
               for row in masks]
    return labels


# v3-Confidentiality from the least to the most restricted (U unrestricted ... V very)
_CONFIDENTIALITY_ORDER = "ULMNRV"


def _confidentiality(sent: str | None, masks: list[dict[str, str]]) -> str | None:
    """The v3-Confidentiality code in force: the sender's (CDA N, R, V), raised to what a
    masking flag in force sets (MASQUE_PS: R). A masked HL7v2 result carried the TRE_A07
    code alone, a masked CDA its sender's 'N': a server that enforces v3-Confidentiality,
    the one security code system R4 servers know (HAPI, SMART), read either as unrestricted.
    One code, the highest: two (N and R) would contradict each other."""
    levels = [c for c in (sent.upper() if sent else None,
                          *(m.get("confidentiality") for m in masks))
              if c and c in CONFIDENTIALITY_CODES]
    return max(levels, key=_CONFIDENTIALITY_ORDER.index) if levels else None


def merge_security(labels: list[dict], more: list[dict]) -> None:
    """Add the labels of another entry to those of a resource several entries share (an
    ImagingStudy, a document they cite): each label once, and one v3-Confidentiality code,
    the highest ('N' of one report and 'R' of a masked one made two that contradict)."""
    for label in more:
        if label.get("system") != CONFIDENTIALITY:
            if label not in labels:
                labels.append(label)
            continue
        held = next((i for i, x in enumerate(labels) if x.get("system") == CONFIDENTIALITY),
                    None)
        if held is None:
            labels.insert(0, label)
        elif _CONFIDENTIALITY_ORDER.index(label["code"]) > \
                _CONFIDENTIALITY_ORDER.index(labels[held]["code"]):
            labels[held] = label
