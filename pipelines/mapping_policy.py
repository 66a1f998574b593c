"""Per-source mapping policy: sources whose local codes must map to LOINC before filing.

By default an unknown local code is filed flagged 'unmapped' (design rule: never dropped).
Some senders' results are useless to readers without their LOINC, so an admin can list them
(``require_mapping``): their imports with an unmapped code fail with CODE_UNMAPPED at the
normalize stage, nothing filed, and are rerun (``dmp-ingest imports rerun --code
CODE_UNMAPPED``) once the mapping table has the code.
"""

from __future__ import annotations

from normalizers.model import NormalizedMessage
from pipelines.ledger import FAILED, Outcome
from pipelines.settings import Settings


def unmapped_failure(settings: Settings, source: str,
                     normalized: NormalizedMessage) -> Outcome | None:
    """The failed outcome when ``source`` requires mapped codes and one is not; else None.
    The message names the code (a code, not patient data) and where it was read."""
    current = settings.current_source(source)  # renamed since it came in: the new settings
    if current not in settings.require_mapping:
        return None
    named = source if current == source else f"{source} (now {current})"
    unmapped = [e for e in normalized.entries if not e.mapped and e.code]
    if not unmapped:
        return None
    first = unmapped[0]
    location = f"{first.source_ref}-3" if first.source_ref.startswith("OBX[") else \
        first.source_ref
    more = f" (and {len(unmapped) - 1} more)" if len(unmapped) > 1 else ""
    return Outcome(FAILED, stage="normalize", error_code="CODE_UNMAPPED",
                   error_message=f"{location}: local code {first.code} ({first.system}) has "
                   f"no LOINC mapping for source {named}{more}", error_location=location,
                   logical_id=normalized.logical_id)
