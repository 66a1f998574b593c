"""The CI-SIS FR-Statut-document observation: what the document says of its own
status (GEN-065), read onto the document."""

from __future__ import annotations

from normalizers.cda.common import Ctx, system_name
from normalizers.cda.tables import document_statuses
from normalizers.cda.values import untyped
from parsers.cda.model import CD, ClinicalStatement, Observation

DOCUMENT_STATUS = ("TA_ASIP", "GEN-065")  # CI-SIS FR-Statut-document: 'Statut du document'
DOCUMENT_STATUS_TEMPLATE = "1.2.250.1.213.1.1.3.48.16"  # FR-Statut-document (its template)


def document_status(act: ClinicalStatement, ctx: Ctx) -> bool:
    """Whether ``act`` is a CI-SIS FR-Statut-document (observation GEN-065 'Statut du
    document', TA_ASIP): what it says is about the document, kept for it in
    ``ctx.document_status`` (the first one). It was filed as an observation of the patient
    'Statut du document: en cours d'exécution', and the letter in progress as final."""
    code = act.code
    if not isinstance(act, Observation) or code is None or \
            (system_name(code.code_system, code.code_system_name), code.code) != \
            DOCUMENT_STATUS:
        return False
    value = untyped(act.values[0]) if act.values else None
    if ctx.document_status is None and isinstance(value, CD) and value.code:
        system = system_name(value.code_system, value.code_system_name)
        ctx.document_status = {
            "code": value.code, "system": system, "display": value.display or "",
            "status": document_statuses().get((system, value.code), "")}
        ctx.document_status = {k: v for k, v in ctx.document_status.items() if v}
    return True
