"""The patient's death on the dossier: recorded from a hospital's ADT, reverted, audited.

IHE PAM France states a death on the discharge (A03) and on the updates (A08, A31) with
PID-29 (when) and PID-30 (Y); a correction sends PID-30 = N (or the HL7 null ""), and an A13
cancelling the discharge by death takes it back (tables/death_cancels.csv). Rules:

- The current death (``patients.deceased``, ``.deceased_at``) follows the most recent
  statement by its own time (EVN-2, else MSH-7: ``death_stated_at``), not by arrival: a GAM
  replays its feed, and an old A08 "alive" arriving after the A03 "deceased" must not revive
  the patient (nor an old death come back after its correction). A statement dated like the
  current one wins (the sender's later word). An A13 that finds no death still dates the
  statement held: the A03 it cancelled, arriving after it, is older (``_mark_cancellation``).
- Idempotent: a statement saying what the dossier holds changes nothing and writes no audit
  row (a rerun, a resend, every A08 of a living patient).
- Every change is in the dossier's audit trail ('patient.death', 'patient.death_reverted')
  with the trigger, the import and whether the death is dated, never the date itself (the
  dossier shows it to whoever may read it).
- What a death changes elsewhere: the patient's own access ends (dossiers/access.py);
  entries dated well after it are filed with a warning (pipelines/death.py). The dossier
  stays, fed and readable by professionals: labs send results after a death, and the record
  is kept for its legal retention period.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache

from sqlalchemy import Connection, select, update

from dossiers.audit import record
from dossiers.schema import patients
from normalizers.model import DeathStatement
from normalizers.tabledata import table


@dataclass(slots=True)
class DeathChange:
    """What one statement did: 'recorded', 'reverted', 'corrected' (another date), or None
    (nothing to change); ``older``: the dossier holds a newer statement, this one is not
    applied."""

    done: str | None = None
    older: bool = False


@cache
def death_cancels() -> dict[str, str]:
    """{cancelling trigger: the trigger whose death it takes back} (death_cancels.csv)."""
    return {row["cancel"].upper(): row["cancels"].upper() for row in table("death_cancels")}


def _aware(at: datetime | None) -> datetime | None:
    """SQLite gives back naive datetimes (stored as UTC), PostgreSQL aware ones."""
    if at is None:
        return None
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def _mark_cancellation(conn: Connection, patient_id: int, held_at: datetime | None,
                       stated_at: datetime, trigger: str, import_id: int | None) -> None:
    """A cancellation (A13) that finds no death: its time becomes the statement the dossier
    holds (the patient stays as recorded: alive, or never said), no audit (nothing changed).

    Why: the movement it cancels may arrive after it (a GAM's two queues, a replay of its
    feed). With nothing recorded, the A03 discharge by death, older than the A13 that took
    it back, was the newest statement: the patient was recorded dead, the hospital's own
    cancellation lost. Marked, that A03 is older (not applied, warned); a discharge by death
    stated after the A13 is a new one, applied. Not on a death held: an A13 leaves a death
    stated by an update (A08, A31), and moving its time would hide that update's later
    correction arriving late."""
    if held_at is not None and stated_at <= held_at:
        return
    conn.execute(update(patients).where(patients.c.id == patient_id).values(
        death_stated_at=stated_at, death_import_id=import_id,
        death_trigger=trigger.upper()[:8]))


def apply_death(conn: Connection, patient_id: int, death: DeathStatement | None, *,
                stated_at: datetime, trigger: str, actor: str,
                import_id: int | None = None) -> DeathChange:
    """Apply what an ADT says of the patient's death (``death`` None: it says nothing, which
    only matters for a cancellation of death_cancels.csv)."""
    change = DeathChange()
    row = conn.execute(select(patients.c.deceased, patients.c.deceased_at,
                              patients.c.death_stated_at, patients.c.death_trigger)
                       .where(patients.c.id == patient_id).with_for_update()).one()
    held_at = _aware(row.death_stated_at)
    if death is None:  # only a cancellation of the movement that stated the death says something
        cancels = death_cancels().get(trigger.upper())
        if cancels is None:
            return change
        if not row.deceased:
            _mark_cancellation(conn, patient_id, held_at, stated_at, trigger, import_id)
            return change
        if row.death_trigger != cancels:
            return change
    if held_at is not None and stated_at < held_at:
        if bool(row.deceased) != (death is not None and death.deceased) \
                or (death is not None and death.deceased and death.time != row.deceased_at):
            change.older = True
        return change
    deceased = death is not None and death.deceased
    time = death.time if deceased else None
    if deceased and time is None and row.deceased:
        time = row.deceased_at  # 'deceased' again without a date: the date held stands
    if row.deceased is not None and bool(row.deceased) == deceased and row.deceased_at == time:
        return change  # says what the dossier holds
    if deceased:
        change.done = "corrected" if row.deceased else "recorded"
    elif row.deceased:
        change.done = "reverted"
    conn.execute(update(patients).where(patients.c.id == patient_id).values(
        deceased=deceased, deceased_at=time, death_stated_at=stated_at,
        death_import_id=import_id, death_trigger=trigger.upper()[:8]))
    if change.done is not None:
        details = {"trigger": trigger, "dated": time is not None, "change": change.done}
        if death is not None:
            details["field"] = death.location
        record(conn, actor, "patient.death_reverted" if change.done == "reverted"
               else "patient.death", patient_id=patient_id, import_id=import_id,
               details=details)
    return change
