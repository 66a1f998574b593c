"""A sender's local codes under a system of that sender: 'GLY^Glycémie à jeun^L' of one lab
is not the 'GLY' of another (fhir_local_systems.csv)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from functools import cache
from typing import Any
from urllib.parse import quote, unquote

from dossiers.fhir.common import TABLES
from dossiers.fhir.interpretation import source_of
from normalizers.tabledata import read_csv_rows


@cache
def _generic_names() -> frozenset[str]:
    """The names of table 0396 that say 'local' without saying whose (upper case)."""
    return frozenset(r["name"].upper() for r in read_csv_rows(TABLES / "fhir_local_systems.csv"))


def sender_local_codes(kept: Sequence[Mapping], resources: Mapping[int, dict],
                       provenance: Mapping[int, Sequence[Mapping]], extras: Mapping[str, dict],
                       base_url: str) -> None:
    """Each entry's codings under a generic local system ('L') moved to that system of the
    source that brought the entry, in its resource and the resources of the Bundle it
    references (the OBR's ServiceRequest, its Specimen): the source is known from
    provenance only, once the resources are built. Without a known source, as before."""
    prefix = f"{base_url}/CodeSystem/"
    for e in kept:
        source = source_of(e, provenance.get(e["id"], ()))
        if source is None:
            continue
        res = resources[e["id"]]
        for target in (res, *(extras[url] for url in _references(res) if url in extras)):
            _move_codings(target, prefix, source)


def _move_codings(obj: Any, prefix: str, source: str) -> None:  # noqa: ANN401
    """Every Coding (a system and a code, no value: not an Identifier nor a Quantity) under
    a generic local system gets the source's."""
    if isinstance(obj, list):
        for item in obj:
            _move_codings(item, prefix, source)
        return
    if not isinstance(obj, dict):
        return
    system = obj.get("system")
    if isinstance(system, str) and "code" in obj and "value" not in obj and \
            system.startswith(prefix) and unquote(system[len(prefix):]).upper() in \
            _generic_names():
        obj["system"] = f"{system}/{quote(source, safe='')}"
    for value in obj.values():
        if isinstance(value, (dict, list)):
            _move_codings(value, prefix, source)


def _references(obj: Any) -> Iterator[str]:  # noqa: ANN401
    """The references a resource makes (its own elements, not the resources they name)."""
    if isinstance(obj, list):
        for item in obj:
            yield from _references(item)
    elif isinstance(obj, dict):
        if isinstance(obj.get("reference"), str):
            yield obj["reference"]
        for value in obj.values():
            if isinstance(value, (dict, list)):
                yield from _references(value)
