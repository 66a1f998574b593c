"""A result's flags (OBX-8, CDA interpretationCode) as Observation.interpretation: table
0078 codes, a sender's own flags under its source's system, words as text."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from dossiers.fhir.codings import OID, code_system_table, system_uri
from dossiers.fhir.common import INTERPRETATION, INTERPRETATIONS, fhir_string

_LOCAL_FLAG = re.compile(r"\S{1,20}")  # a sender's own flag ('+', 'HIGH', '++'): no words


def observation_interpretation(entry: Mapping, local_system: str | None = None) -> list[dict]:
    """Observation.interpretation: a code of HL7 table 0078 (the v3 ObservationInterpretation
    codes) under its system; a sender's own flag ('+', '*', 'HIGH') under ``local_system``
    (the sender's, ``_sender_flags_system``), as code and text; words, or a flag whose sender
    is unknown, as text alone. Never under v3-ObservationInterpretation: a reader would take
    '+' or 'HIGH' for a code of it, and a validator rejects them there."""
    text = fhir_string(entry.get("interpretation"))
    if not text:
        return []
    details = entry.get("details") or {}
    systems = details.get("interpretation_systems") or {}
    flags = [c.strip() for c in text.split(",")]
    paired = _paired_local_flags(flags, details.get("interpretation_local") or [])
    out = []
    for code, local in zip(flags, paired, strict=True):
        if code in INTERPRETATIONS:
            coding = [{"system": INTERPRETATION, "code": code}]
            theirs = _local_flag_coding(local, systems, local_system) if local else None
            out.append({"coding": [*coding, theirs] if theirs else coding})
        elif code and _LOCAL_FLAG.fullmatch(code) and \
                (system := _flag_system(code, systems, local_system)):
            out.append({"coding": [{"system": system, "code": code}], "text": code})
        elif code:
            out.append({"text": fhir_string(code)})
    return out


def _paired_local_flags(flags: Sequence[str], local: Sequence[Any]) -> list[str | None]:
    """The sender's own flag (details.interpretation_local: a CDA lab's 'ELEVE' translated
    to H, an OBX-8 'HAUT^^L^H^^HL70078') beside each flag filed, when each flag has one:
    with fewer, which flag one belongs to is unknown, and none is paired."""
    mine = [fhir_string(c) for c in local]
    if len(mine) != len(flags) or not all(mine):
        return [None] * len(flags)
    return mine


def _flag_system(code: str, systems: Mapping, local_system: str | None) -> str | None:
    """The system of a sender's own flag: the one it was sent with (details.
    interpretation_systems: a CDA codeSystem, an OBX-8 CWE coding system), as any code's
    (``system_uri``), else the sender's flags system; None when neither is known."""
    sent = fhir_string(systems.get(code)) if isinstance(systems, Mapping) else None
    if sent and (sent in code_system_table() or sent.upper() in code_system_table()
                 or OID.fullmatch(sent)):
        return system_uri(sent)
    return local_system  # a name of the sender's own ('L', '99LAB'): meaningful with it only


def _local_flag_coding(code: str, systems: Mapping, local_system: str | None) -> dict | None:
    """The sender's flag as a second coding beside the table 0078 one (both say the same:
    FHIR codings of one concept), when its system is known."""
    system = _flag_system(code, systems, local_system)
    if not system or not _LOCAL_FLAG.fullmatch(code):
        return None
    return {"system": system, "code": code}


def _sender_flags_system(entry: Mapping, links: Sequence[Mapping],
                         base_url: str) -> str | None:
    """The code system of the abnormal flags of the source that brought an entry (the
    provenance link of the import the entry was filed from, else its first link): HL7v2
    OBX-8 outside table 0078 and a CDA lab's own interpretationCode are that sender's codes,
    meaningful only with it. None when no source is known."""
    source = source_of(entry, links)
    if source is None:
        return None
    return f"{base_url}/CodeSystem/interpretation/{quote(source, safe='')}"


def source_of(entry: Mapping, links: Sequence[Mapping]) -> str | None:
    """The source that brought an entry: that of the provenance link of the import the
    entry was filed from, else of its first link; None when no link names one."""
    mine = [link for link in links if link.get("import_id") == entry.get("import_id")]
    return next((fhir_string(link.get("source")) for link in (*mine, *links)
                 if fhir_string(link.get("source"))), None)


def local_interpretations(kept: Sequence[Mapping], resources: Mapping[int, dict],
                          provenance: Mapping[int, Sequence[Mapping]], base_url: str) -> None:
    """Each Observation's flags again, with its sender's system for the flags outside table
    0078 (the sender is known from provenance only, once the resources are built)."""
    for e in kept:
        res = resources[e["id"]]
        if res["resourceType"] != "Observation" or not res.get("interpretation"):
            continue
        system = _sender_flags_system(e, provenance.get(e["id"], ()), base_url)
        if system:
            res["interpretation"] = observation_interpretation(e, system)
