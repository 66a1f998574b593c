"""ADT^A43 (HL7 v2.5 3.3.43, move patient information - patient identifier list): a sender's
MPI moves an identifier (MRG-1), with everything filed under it, from the patient who held it
to another one (PID-3). Not an IHE PAM / PAM France identity-feed event (their feed merges,
A40, and changes identifiers, A47), but plain HL7 MPIs and EAIs send it.

What it can mean here: the dossier store files entries by patient, not by identifier; a
dossier that holds the moved identifier holds, mixed with the rest, whatever was filed under
it, and which entries those are is not known here. So:
- MRG-1's identifiers name no dossier here: nothing here is keyed on what moves; accepted
  (AA), recorded with nothing applied (refused AR, it stopped the queue of a sender that
  stops on AR, and every later message of every patient waited behind it);
- one names a dossier: quarantined (ADT_MOVE_IDENTIFIER, still answered AA), the dossier and
  the MRG field named, never the identifier's value; nothing changed. Moving the identifier
  alone would leave the results filed under it in the wrong patient's dossier, and send the
  next ones elsewhere; an admin checks with the hospital (normalizers/tables/
  adt_identifier_moves.csv, pipelines/tables/error_advice.csv).
"""

from __future__ import annotations

from sqlalchemy import Connection

from normalizers.model import PatientIdentity
from pipelines.merge import merged_dossiers

MOVE_HELD = "ADT_MOVE_IDENTIFIER"


def move_holders(conn: Connection,
                 moved: list[tuple[str, PatientIdentity]]) -> list[tuple[str, set[int]]]:
    """(MRG-1 location, the dossiers its identifiers name) for each MRG-1 naming one: an INS
    or a local identifier of any authority, not a NIR used for billing (as a merge reads
    MRG-1, pipelines/merge.py ``merged_dossiers``)."""
    named = [(where, merged_dossiers(conn, [(where, ident)])) for where, ident in moved]
    return [(where, held) for where, held in named if held]


def no_move_note(trigger: str) -> str:
    """The ledger note of a move that names no dossier here."""
    return (f"ADT^{trigger} accepted, nothing applied: the identifier(s) MRG-1 moves name no "
            "dossier here")


def held_reason(trigger: str, held: list[tuple[str, set[int]]]) -> str:
    """Why a move naming dossiers here is quarantined: the fields and the dossier ids."""
    said = "; ".join(f"{where} -> dossier{'s' if len(ids) > 1 else ''} "
                     f"{', '.join(map(str, sorted(ids)))}" for where, ids in held)
    return (f"ADT^{trigger} moves an identifier, with what was filed under it, to another "
            f"patient (PID-3), and it names a dossier here ({said}): the dossier's entries "
            "are filed by patient, not by identifier, so which of them go with it is not "
            "known here; nothing changed")
