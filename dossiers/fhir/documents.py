"""Documents and reports: a reissued report's status, the signer (authenticator) and data
enterer, attachments with their digests, and a document's identifiers (masterIdentifier)."""

from __future__ import annotations

import base64
import re
from collections.abc import Collection, Mapping, Sequence
from functools import cache
from typing import Any

from dossiers.fhir.codings import OID
from dossiers.fhir.common import RFC3986, TABLES, fhir_code, fhir_string, full_url
from dossiers.fhir.dates import fhir_instant
from dossiers.fhir.identifiers import (
    NATIONAL_PS_OID,
    entity_identifier,
    fhir_identifier,
    identifier_key,
    organization_identifiers,
)
from dossiers.fhir.orders import prescriber
from dossiers.fhir.parties import performer_reference
from normalizers.tabledata import read_csv_rows


@cache
def _reissue_statuses() -> dict[str, dict[str, str]]:
    """A reissued report's kind (addendum, rectification) -> its status per resource."""
    return {r["kind"]: r for r in read_csv_rows(TABLES / "fhir_reissue_statuses.csv")}


def reissued_status(status: str, details: Mapping, resource: str) -> str:
    """The status of a report, 'appended' or 'corrected' (DocumentReference: 'amended') when
    the sender says it reissues a final report with an addendum or as a rectification
    (fhir_reissue_statuses.csv): exported 'final', the reader could not tell the
    complemented or corrected reading from a first one."""
    said = details.get("reissue")
    kind = said.get("kind") if isinstance(said, Mapping) else None
    row = _reissue_statuses().get(str(kind or ""))
    if row is None or status not in ("final", "amended"):
        return status
    return row.get(resource) or status


def legal_authenticator(details: Mapping, extras: dict[str, dict] | None) -> dict | None:
    """DocumentReference.authenticator (R4 0..1: who attested the document) from the CDA
    legalAuthenticator (details.legal_authenticator): a Practitioner in the Bundle by the
    signer's id (the national PS id when several, as ``prescriber`` makes one per
    identifier), else the Organization of the signer's structure, by its id. The other
    authenticators (details.authenticators) are not exported: R4 has one authenticator and
    no standard extension for more. Nothing without an id (a signer named by words only)."""
    said = details.get("legal_authenticator")
    if extras is None or not isinstance(said, Mapping):
        return None
    ids = [i.strip() for i in said.get("ids") or () if isinstance(i, str) and fhir_string(i)]
    chosen = next((i for i in ids if i.startswith(f"{NATIONAL_PS_OID}^")),
                  ids[0] if ids else "")
    root, _, ext = chosen.partition("^")
    person = fhir_identifier(ext, root) if OID.fullmatch(root) else None
    if person is not None:
        return prescriber(person, None, extras)
    orgs = [i.strip() for i in said.get("organization") or () if isinstance(i, str)]
    root, _, ext = next(iter(orgs), "").partition("^")
    org = fhir_identifier(ext, root) if OID.fullmatch(root) else None
    if org is None:
        return None
    identifiers = organization_identifiers(org, None)
    name = fhir_string(said.get("organization_name"))
    url = full_url("organization", identifier_key(identifiers[0]))
    extras.setdefault(url, {"resourceType": "Organization", "identifier": identifiers,
                            "name": name})
    return {"reference": url, "display": name}


ENTERER = {"system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type",
           "code": "enterer", "display": "Enterer"}


def data_enterer(entry: Mapping, details: Mapping, extras: dict[str, dict] | None) -> None:
    """Who keyed a CDA document in (details.data_enterer: a secretary typing a dictated
    letter) as a Provenance of the DocumentReference whose agent is typed 'enterer' (R4
    has no DocumentReference element for it). Recorded is required: the data enterer's
    time, else the document's; without either it is not exported."""
    said = details.get("data_enterer")
    if extras is None or not isinstance(said, Mapping):
        return
    ids = [i for i in said.get("ids") or () if isinstance(i, str) and fhir_string(i)]
    chosen = next((i for i in ids if i.strip().startswith(f"{NATIONAL_PS_OID}^")),
                  ids[0] if ids else "")
    who = performer_reference(chosen) if chosen else None
    if who is None and fhir_string(said.get("organization_name")):
        who = {"display": fhir_string(said["organization_name"])}
    recorded = fhir_instant(fhir_string(said.get("time"))) or fhir_instant(entry.get("effective"))
    if who is None or recorded is None:
        return
    extras[full_url("provenance", f"entry/{entry.get('id')}/enterer")] = {
        "resourceType": "Provenance",
        "target": [{"reference": full_url("entry", entry.get("id"))}],
        "recorded": recorded, "activity": {"text": "data entry"},
        "agent": [{"type": {"coding": [ENTERER]}, "who": who}]}


def document_attachment(entry: Mapping, base_url: str, withheld: bool = False) -> dict:
    """The document's content: its type, title and where to get the file, unless the file
    is withheld from the reader (it states an entry hidden from them): then no url, as the
    API's entries say has_file false and /documents answers NO_FILE. A url to a file the
    reader is refused read as a broken link, and named a file with something to hide."""
    kind, title = fhir_code(entry.get("media_type")), fhir_string(entry.get("display"))
    if withheld:  # R4 content is required, an empty attachment none: a word at least
        return {"contentType": kind, "title": title or (None if kind else NO_FILE)}
    return {"contentType": kind, "url": f"{base_url}/documents/{entry.get('id')}",
            "title": title}


NO_FILE = "original file not available"


def attachment_digests(kept: Sequence[Mapping], resources: Mapping[int, dict],
                       files: Mapping[str, tuple[str, int]],
                       withheld: Collection[int]) -> None:
    """Attachment.hash (base64 SHA-1 of the data, as R4 defines it) and .size of each
    document's and report's file, from ``files`` (sha256 -> (SHA-1, size): read from the
    archive by dossiers/export.py ``attachment_digests``). A receiver checks the file it
    fetches from the url against them; without them a truncated download read as the
    report. Never for a file withheld from the reader (nothing of it is said)."""
    for e in kept:
        said = files.get(e.get("attachment_sha256") or "")
        if said is None or e["id"] in withheld:
            continue
        res = resources[e["id"]]
        forms = res.get("presentedForm") or [c.get("attachment") for c in res.get("content", ())]
        for attachment in forms:
            if isinstance(attachment, dict) and attachment.get("url"):
                attachment["hash"], attachment["size"] = said


DOCUMENT_KEY = "document|"  # how a document's entry key starts (normalizers: its id follows)


def document_id(key: Any) -> dict | None:  # noqa: ANN401
    """A document's own id (its entry key 'document|root^extension': the CDA
    ClinicalDocument/id, an MDM's TXA-12) as DocumentReference.masterIdentifier, written as
    IHE MHD writes a uniqueId; None when it is no II (a bare number of a sender's,
    a PDF's digest): no system is invented."""
    text = fhir_string(key)
    if not text or not text.startswith(DOCUMENT_KEY):
        return None
    return entity_identifier(text[len(DOCUMENT_KEY):])


def document_identifiers(entry: Mapping, details: Mapping,
                         withheld: bool = False) -> list[dict]:
    """The digest of the document's file (not for a reader it is withheld from: nothing
    of the file is said to them) and its setId."""
    out = []
    sha = None if withheld else fhir_string(entry.get("attachment_sha256"))
    if sha and re.fullmatch(r"[0-9a-fA-F]{64}", sha):
        digest = base64.urlsafe_b64encode(bytes.fromhex(sha)).decode().rstrip("=")
        out.append({"system": RFC3986, "type": {"text": "sha256 of the content"},
                    "value": f"ni:///sha-256;{digest}"})
    set_id = fhir_string(details.get("set_id"))
    if set_id:
        # as the masterIdentifier is written (an II of its root alone, an OID or a UUID, is
        # that URI under RFC 3986): a setId of a root alone, as the ANS examples send it,
        # was an identifier with no system, which no reader matches across versions
        said = entity_identifier(set_id) or {"value": set_id}
        out.append({"type": {"text": "setId"}, **said})
    return out
