"""Per-source mapping policy: sources whose local codes must map to LOINC before filing.

By default an unknown local code is filed flagged 'unmapped' (design rule: never dropped).
Some senders' results are useless to readers without their LOINC, so an admin can list them
(``require_mapping``): their imports with an unmapped code fail with CODE_UNMAPPED at the
normalize stage, nothing filed, and are rerun (``dmp-ingest imports rerun --code
CODE_UNMAPPED``) once the mapping table has the code.
"""

from __future__ import annotations

from normalizers.model import Entry, NormalizedMessage
from pipelines.ledger import FAILED, Outcome
from pipelines.settings import Settings


def unmapped_failure(settings: Settings, source: str,
                     normalized: NormalizedMessage) -> Outcome | None:
    """The failed outcome when ``source`` requires mapped codes and one is not; else None.
    The message names the codes (codes, not patient data) and where each was first read."""
    current = settings.current_source(source)  # renamed since it came in: the new settings
    if current not in settings.require_mapping:
        return None
    named = source if current == source else f"{source} (now {current})"
    unmapped = [e for e in normalized.entries if not e.mapped and e.code]
    if not unmapped:
        return None
    first = unmapped[0]
    location = _location(first)
    return Outcome(FAILED, stage="normalize", error_code="CODE_UNMAPPED",
                   error_message=f"{location}: local code {first.code} ({first.system}) has "
                   f"no LOINC mapping for source {named}{_others(unmapped)}",
                   error_location=location, logical_id=normalized.logical_id)


NAMED_MAX = 10  # other unmapped codes named in the message; the rest counted


def _location(entry: Entry) -> str:
    """Where the code was read, as the ledger's locations say it: an OBX's field 3."""
    return f"{entry.source_ref}-3" if entry.source_ref.startswith("OBX[") else entry.source_ref


def _others(unmapped: list[Entry]) -> str:
    """The message's tail naming the message's other local codes without a mapping (each
    once, where first read; codes, never values). Why: it said '(and 7 more)' of the
    results, so the operator added the one code named, reran, failed on the next, and so on
    through a lab's whole new panel; and a code repeated in a cumulative report counted as
    'more' though there was nothing more to add."""
    first_seen: dict[tuple[str | None, str | None], Entry] = {}
    for entry in unmapped:
        first_seen.setdefault((entry.code, entry.system), entry)
    others = list(first_seen.values())[1:]
    if not others:
        return ""
    named = ", ".join(f"{e.code} ({e.system}) at {_location(e)}" for e in others[:NAMED_MAX])
    rest = len(others) - NAMED_MAX
    return f"; nor have {named}" + (f" and {rest} more code(s)" if rest > 0 else "")
