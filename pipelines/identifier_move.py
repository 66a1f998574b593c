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
- the dossier it names is the one the target's own identifiers (PID-3's local ones, not
  the moved one) name: the identifier is the target's here already, nothing to move;
  recorded (AA) on that dossier, nothing applied;
- one names another dossier: quarantined (ADT_MOVE_IDENTIFIER, still answered AA), the
  dossier and the MRG field named, never the identifier's value; nothing changed. Moving the
  identifier alone would leave the results filed under it in the wrong patient's dossier,
  and send the next ones elsewhere; an admin checks with the hospital (normalizers/tables/
  adt_identifier_moves.csv, pipelines/tables/error_advice.csv).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Connection

from normalizers.model import IdentifierMove
from pipelines.merge import merged_dossiers

MOVE_HELD = "ADT_MOVE_IDENTIFIER"


@dataclass(slots=True)
class MoveCheck:
    """What an A43's moves name here: ``held`` (MRG-1 location, the dossiers its identifiers
    name) for each move the dossier store would have to apply; ``done``: the dossiers that
    hold a moved identifier and are the target's already."""

    held: list[tuple[str, set[int]]] = field(default_factory=list)
    done: set[int] = field(default_factory=set)


def check_moves(conn: Connection, moves: list[IdentifierMove]) -> MoveCheck:
    """Read, never write: which moves name a dossier here (an INS or a local identifier of
    any authority, not a NIR used for billing: pipelines/merge.py ``merged_dossiers``), and
    which of those name the very dossier the target's own local identifiers name."""
    check = MoveCheck()
    for move in moves:
        held = merged_dossiers(conn, [(move.where, move.moved)])
        if not held:
            continue
        target = merged_dossiers(conn, [(move.where, move.target)]) \
            if move.target.local_ids else set()
        if len(held) == 1 and held == target:
            check.done |= held
        else:
            check.held.append((move.where, held))
    return check


def no_move_note(trigger: str, check: MoveCheck) -> str:
    """The ledger note of a move with nothing to apply here."""
    if check.done:
        return (f"ADT^{trigger} accepted, nothing applied: the identifier(s) MRG-1 moves name "
                "the dossier PID-3's own identifiers name already")
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
