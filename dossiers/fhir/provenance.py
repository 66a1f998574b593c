"""Provenance: one per import and relation, targeting the entries it brought or confirmed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from dossiers.fhir.common import fhir_string, full_url
from dossiers.fhir.dates import instant_of


def provenances(provenance: Mapping[int, Sequence[Mapping]], urls: Mapping[int, str],
                base_url: str, import_ids: bool = True) -> list[tuple[str, dict]]:
    """One Provenance per (import, relation): which import brought or confirmed which of the
    exported entries, from which sender; the import itself named (entity) only for an
    operator (``import_ids``): readers of the API never see our import ids."""
    groups: dict[tuple[int, str], dict[str, Any]] = {}
    for entry_id, links in provenance.items():
        if entry_id not in urls:
            continue
        for link in links:
            key = (link.get("import_id"), link.get("relation") or "created")
            group = groups.setdefault(key, {"targets": [], "recorded": [], "sources": set()})
            if urls[entry_id] not in group["targets"]:
                group["targets"].append(urls[entry_id])
            recorded = instant_of(link.get("created_at"))
            if recorded:
                group["recorded"].append(recorded)
            if fhir_string(link.get("source")):
                group["sources"].add(fhir_string(link["source"]))
    out = []
    for (import_id, relation), group in sorted(groups.items(), key=lambda kv: (
            str(kv[0][0]), kv[0][1])):
        if not group["recorded"] or import_id is None:
            continue  # recorded is required: a link without its time is not exported
        sources = sorted(group["sources"]) or ["unknown sender"]
        # named after what it is about when import ids are not to be seen (a uuid of a small
        # integer is found back by trying them all)
        seed = f"{import_id}/{relation}" if import_ids else \
            f"{relation}/{min(group['recorded'])}/{','.join(group['targets'])}"
        out.append((full_url("provenance", seed), {
            "resourceType": "Provenance",
            "target": [{"reference": t} for t in group["targets"]],
            "recorded": min(group["recorded"]),
            "activity": {"text": fhir_string(relation) or "created"},
            "agent": [{"type": {"text": "sender"}, "who": {"display": s}} for s in sources],
            "entity": [{"role": "source", "what": {
                "identifier": {"system": f"{base_url}/imports", "value": str(import_id)},
                "display": f"import {import_id}"}}] if import_ids else []}))
    return out
