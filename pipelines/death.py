"""What a death recorded on a dossier (dossiers/death.py) changes when it is fed.

Nothing is refused: DESIGN.md and DMP-FACTS.md state no rule that closes a deceased
patient's dossier to feeding, and labs send results after a death (a specimen taken before
it, validated after; post-mortem samples). Two things are worth an admin's look, as
warnings on the import (counts and field names, never dates or values):
- entries dated (effective, else specimen time) more than ``AFTER_DEATH_GRACE`` after the
  end of the death's stated period: care after a death is the sign of a wrong patient;
- a message that feeds the dossier (results, a document) and states the patient's death
  (PID-29/30, sdtc:deceasedInd) when the dossier records none: never applied from there
  (only the hospital's ADT, which identity management trusts, records a death), said so
  that the ADT can be chased. The reverse is not said: laboratory systems fill PID-30 = N
  by default (the real PAM and LIS messages do), and a result of a deceased patient sent
  with it is the common case, not a contradiction.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from sqlalchemy import Connection, select

from dossiers.schema import patients
from normalizers.death import period_end, period_start
from normalizers.model import DeathStatement, Entry

# Post-mortem samples (toxicology, microbiology, autopsy) are taken in the days after a
# death; beyond two days, care dated after it is the sign of a wrong patient.
AFTER_DEATH_GRACE = timedelta(days=2)


def deaths_of(conn: Connection, patient_ids: Iterable[int]) -> dict[int, str | None]:
    """{dossier id: its death's ISO date/time (None: not dated)} for the dossiers among
    ``patient_ids`` that record a death; one query for a whole batch."""
    ids = sorted(set(patient_ids))
    if not ids:
        return {}
    return {r.id: r.deceased_at for r in conn.execute(
        select(patients.c.id, patients.c.deceased_at).where(
            patients.c.id.in_(ids), patients.c.deceased.is_(True)))}


def death_warnings(deaths: dict[int, str | None], patient_id: int,
                   items: Iterable[tuple[Entry, str | None]],
                   stated: DeathStatement | None) -> list[str]:
    """The warnings of filing ``items`` in dossier ``patient_id`` (see the module's doc)."""
    warnings: list[str] = []
    recorded = patient_id in deaths
    if stated is not None and stated.deceased and not recorded:
        warnings.append(f"{stated.location}: the message states the patient deceased, the "
                        "dossier records no death: not applied (only the hospital's ADT "
                        "records a death)")
    death_at = deaths.get(patient_id)
    end = period_end(death_at) if death_at else None
    if end is None:
        return warnings
    limit = end + AFTER_DEATH_GRACE
    late = 0
    for entry, _ in items:
        when = entry.effective or entry.specimen_time
        start = period_start(when) if when else None
        if start is not None and start >= limit:
            late += 1
    if late:
        warnings.append(f"{late} entr{'y' if late == 1 else 'ies'} dated more than "
                        f"{AFTER_DEATH_GRACE.days} days after the patient's recorded death: "
                        "filed; check that they are this patient's")
    return warnings
