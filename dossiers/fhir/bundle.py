"""The dossier as a FHIR R4 Bundle of type collection: which entries leave the store and the
entry loop that assembles the resources."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime

from dossiers.fhir.codings import resource_type
from dossiers.fhir.common import NAMESPACE, clean, full_url
from dossiers.fhir.dates import instant_of
from dossiers.fhir.documents import attachment_digests
from dossiers.fhir.interpretation import local_interpretations
from dossiers.fhir.links import (
    bundle_entry,
    link,
    link_groups,
    link_isolates,
    link_orders,
    link_prescriptions,
    link_references,
    link_visits,
)
from dossiers.fhir.local_codes import sender_local_codes
from dossiers.fhir.patient import patient_resource
from dossiers.fhir.provenance import provenances
from dossiers.fhir.resources import device, entry_resource
from dossiers.fhir.vital_signs import vital_signs_absent, vital_signs_profiles


def _exported(entry: Mapping) -> bool:
    """Current, not withdrawn, not superseded (the caller should have filtered: defensive)."""
    current = entry.get("current", True)
    return bool(current) and entry.get("status") != "withdrawn" \
        and entry.get("superseded_by") is None and entry.get("id") is not None


def to_bundle(patient: Mapping, entries: Sequence[Mapping], *,
              provenance: Mapping[int, Sequence[Mapping]] | None = None,
              versions: Mapping[int, int] | None = None, import_ids: bool = True,
              base_url: str = "urn:dmp", timestamp: datetime | None = None,
              identifiers: Sequence[Mapping] = (), withheld: Collection[int] = (),
              files: Mapping[str, tuple[str, int]] | None = None) -> dict:
    """The dossier as a FHIR R4 Bundle of type 'collection' (see the module docstring for
    why and for every mapping decision). ``patient`` is a row of ``patients``, ``entries``
    rows of ``entries`` already filtered for the reader (masking is NOT applied here);
    ``provenance`` maps entry ids to their rows of ``provenance``; ``versions`` the ids of
    earlier versions that entries name as their parent to the id of that parent's current
    version (dossiers/export.py ``load_parent_versions``); ``import_ids`` False leaves our
    import ids out of the Provenances (a reader's export); ``timestamp`` (given by
    the caller, so that the same dossier exports the same) becomes Bundle.timestamp;
    ``identifiers`` the patient's rows of ``patient_identifiers`` (local ids: the IPP);
    ``withheld`` the ids of entries whose original file the reader may not have
    (dossiers/access.py ``files_withheld``: it states an entry hidden from them);
    ``files`` the SHA-1 and size of archived files by sha256 (dossiers/export.py
    ``attachment_digests``) for the attachments' hash and size."""
    base_url = base_url.rstrip("/")
    patient_url = full_url("patient", patient.get("id"))
    subject = {"reference": patient_url}
    kept = [e for e in entries if _exported(e)]
    urls = {e["id"]: full_url("entry", e["id"]) for e in kept}
    resources: dict[int, dict] = {}
    extras: dict[str, dict] = {}
    for e in kept:
        resources[e["id"]] = entry_resource(e, resource_type(e.get("type") or "",
                                                           e.get("details")),
                                            subject, base_url, extras,
                                            e["id"] in withheld)
    link(kept, resources, urls, versions or {})
    link_isolates(kept, resources, urls, versions or {}, extras)
    link_groups(kept, resources, urls, versions or {}, extras, subject, base_url)
    link_orders(kept, resources, versions or {}, extras)
    link_visits(kept, resources, urls)
    link_references(kept, resources, extras, subject, base_url)
    link_prescriptions(kept, resources, extras, subject, base_url)
    vital_signs_absent(kept, resources)
    vital_signs_profiles(kept, resources, urls)
    attachment_digests(kept, resources, files or {}, withheld)
    local_interpretations(kept, resources, provenance or {}, base_url)
    sender_local_codes(kept, resources, provenance or {}, extras, base_url)
    bundle_entries = [bundle_entry(patient_url, patient_resource(patient, identifiers))]
    bundle_entries += [bundle_entry(urls[e["id"]], resources[e["id"]]) for e in kept]
    bundle_entries += [bundle_entry(full_url("device", e["id"]), device(e, subject, base_url))
                       for e in kept if resources[e["id"]]["resourceType"] == "DeviceUseStatement"]
    bundle_entries += [bundle_entry(url, res) for url, res in extras.items()]
    bundle_entries += [bundle_entry(url, res)
                       for url, res in provenances(provenance or {}, urls, base_url,
                                                   import_ids)]
    bundle = {"resourceType": "Bundle",
              "id": str(uuid.uuid5(NAMESPACE, f"bundle/{patient.get('id')}")),
              "type": "collection",
              "timestamp": instant_of(timestamp) if timestamp else None,
              "entry": bundle_entries}
    return clean(bundle)
