"""The consents a CDA document states, as logical references typed Consent in its
DocumentReference's context.related."""

from __future__ import annotations

from collections.abc import Mapping

from dossiers.fhir.common import fhir_code, fhir_string, items
from dossiers.fhir.identifiers import entity_identifier


def document_consents(details: Mapping) -> list[dict]:
    """The consents a CDA document states (details.consents: authorization/consent, its id,
    code and status) as logical references typed Consent in DocumentReference.context
    .related (R4 has no element for them; a Consent resource would need a scope and a
    category the document does not give). They were dropped."""
    out = []
    for said in items(details.get("consents")):
        if not isinstance(said, Mapping):
            continue
        ids = [i for i in (entity_identifier(k) for k in said.get("ids") or ()) if i]
        code = said.get("code") if isinstance(said.get("code"), Mapping) else {}
        words = fhir_string(code.get("display")) or fhir_string(said.get("text")) or \
            " ".join(filter(None, (fhir_string(code.get("system")), fhir_code(code.get("code")))))
        status = fhir_string(said.get("status"))
        ref = {"type": "Consent", "identifier": ids[0] if ids else None,
               "display": f"{words} ({status})" if words and status else words or None}
        if ref["identifier"] or ref["display"]:
            out.append({k: v for k, v in ref.items() if v})
    return out
