"""The patient's DMP choices: history of every statement, current values, audit.

A hospital's ADT (ZFA segment) states the DMP status (ACTIF, FERME, INEXISTANT), the
opposition to feeding (NA, IO, INO) and the consent to consultation (NA, INC, IC). Rules:

- Every statement is kept (`consents`, one row per statement, with its import and source):
  the history is what the patient and an auditor read.
- The current values (`patients.dmp_status`, `.opposed`, `.consultation_consent`) follow the
  most recent statement *by its own date*, not by arrival: hospital feeds are replayed and
  reordered, and an old "does not object" arriving after a newer "objects" must not reopen
  a dossier the patient closed to feeding. A statement dated like the current one wins (the
  later word of the sender).
- ``NA`` (not asked) says nothing about the patient's choice: it is recorded, and changes the
  current value only when none is known yet (consultation; opposition stays False).
- Dates: ZFA-10 / ZFA-12 date the opposition and the consent; the statement's own time
  (EVN-2, else MSH-7) dates the DMP status and stands in for a missing ZFA-10 / ZFA-12.
- Applying the same import twice changes nothing (rerun, replayed batch): idempotent.

The audit row names codes and field names only, never names or identifiers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, insert, select, update

from dossiers.audit import record
from dossiers.patients import update_demographics
from dossiers.schema import audit_log, consents, patients
from normalizers.model import ConsentStatement

NOT_ASKED = "NA"
OBJECTS, DOES_NOT_OBJECT = "IO", "INO"
CLOSED = "FERME"
_PARIS = ZoneInfo("Europe/Paris")  # what a French sender means by a time without offset


@dataclass(slots=True)
class ConsentChange:
    """What one statement did: ``applied`` fields became current, ``kept_newer`` fields
    were older than what the dossier holds (history only)."""

    recorded: bool = False  # False: this import's statement was already there
    applied: list[str] = field(default_factory=list)
    kept_newer: list[str] = field(default_factory=list)


def instant(iso: str) -> datetime:
    """An ISO 8601 value of any precision as an aware UTC instant (a date alone is its
    midnight in Paris; a year or a month, its first day)."""
    text = iso.strip()
    if len(text) == 4:
        text += "-01-01"
    elif len(text) == 7:
        text += "-01"
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        value = value.replace(tzinfo=_PARIS)
    try:
        return value.astimezone(UTC)
    except OverflowError:  # year 1 or 9999 with an offset: as early (late) as can be stored
        return (datetime.min if value.year == 1 else datetime.max).replace(tzinfo=UTC)


def _aware(at: datetime) -> datetime:
    """SQLite gives back naive datetimes (stored as UTC), PostgreSQL aware ones."""
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


# (field name on the statement / `consents`, its date column, column on `patients`)
_FIELDS = (("dmp_status", None), ("opposition", "opposition_date"),
           ("consultation", "consultation_date"))


def _dated(row_value: str | None, row_date: str | None, at: datetime) -> datetime | None:
    if row_value is None or row_value == NOT_ASKED:
        return None  # says nothing: never the current value's date
    return instant(row_date) if row_date else _aware(at)


def apply_consent(conn: Connection, patient_id: int, statement: ConsentStatement, *,
                  actor: str, import_id: int | None = None,
                  trigger: str | None = None) -> ConsentChange:
    """Record one statement in the dossier's history and update its current values where
    the statement is the most recent; one audit row 'consent.update'. Idempotent per
    import."""
    change = ConsentChange()
    if import_id is not None and conn.execute(select(consents.c.id).where(
            consents.c.patient_id == patient_id,
            consents.c.import_id == import_id)).first() is not None:
        return change
    stated = instant(statement.stated_at)
    # The patient's row locked first (PostgreSQL; SQLite has one writer): two workers applying
    # statements of one patient at once would each compare with a history missing the other's
    # row, and the older one could become current.
    current = conn.execute(select(patients.c.dmp_status, patients.c.opposed,
                                  patients.c.consultation_consent)
                           .where(patients.c.id == patient_id).with_for_update()).one()
    history = conn.execute(select(consents).where(consents.c.patient_id == patient_id)
                           .order_by(consents.c.id)).all()
    values: dict[str, object] = {}
    for name, date_name in _FIELDS:
        value = getattr(statement, name)
        if value is None:
            continue
        if value == NOT_ASKED:
            if name == "consultation" and current.consultation_consent is None:
                values["consultation_consent"] = NOT_ASKED
                change.applied.append(name)
            continue
        mine = _dated(value, getattr(statement, date_name) if date_name else None, stated)
        held = [d for r in history if (d := _dated(getattr(r, name),
                                                   getattr(r, date_name) if date_name else None,
                                                   r.at)) is not None]
        if held and mine < max(held):
            change.kept_newer.append(name)
            continue
        change.applied.append(name)
        if name == "dmp_status":
            values["dmp_status"] = value
        elif name == "opposition":
            values["opposed"] = value == OBJECTS
        else:
            values["consultation_consent"] = value
    conn.execute(insert(consents).values(
        patient_id=patient_id, at=stated, actor=actor, import_id=import_id,
        dmp_status=statement.dmp_status, opposition=statement.opposition,
        opposition_date=statement.opposition_date, consultation=statement.consultation,
        consultation_date=statement.consultation_date))
    change.recorded = True
    if values:
        conn.execute(update(patients).where(patients.c.id == patient_id).values(**values))
    details = {"dmp_status": statement.dmp_status, "opposition": statement.opposition,
               "consultation": statement.consultation, "applied": change.applied,
               "kept_newer": change.kept_newer}
    if trigger:
        details["trigger"] = trigger
    record(conn, actor, "consent.update", patient_id=patient_id, import_id=import_id,
           details=details)
    return change


def consent_history(conn: Connection, patient_id: int) -> list[dict]:
    """Every statement about the dossier, oldest recorded first (codes and dates only)."""
    return [{"at": _aware(r.at).isoformat(), "actor": r.actor, "import_id": r.import_id,
             "dmp_status": r.dmp_status, "opposition": r.opposition,
             "opposition_date": r.opposition_date, "consultation": r.consultation,
             "consultation_date": r.consultation_date}
            for r in conn.execute(select(consents).where(consents.c.patient_id == patient_id)
                                  .order_by(consents.c.id))]


def update_identity(conn: Connection, patient_id: int, *, actor: str,
                    import_id: int | None = None, stated_at: str | None = None,
                    **values: str | None) -> list[str]:
    """Apply an identity statement (an ADT's PID) to the dossier's demographics; the audit
    row 'identity.update' names the fields that changed, never their values, and the
    statement's own time (``stated_at``: EVN-2, else MSH-7) that ``identity_stated_at``
    orders the next statements by."""
    changed = update_demographics(conn, patient_id, **values)
    if changed:
        details: dict[str, object] = {"fields": changed}
        if stated_at:
            details["stated_at"] = stated_at
        record(conn, actor, "identity.update", patient_id=patient_id, import_id=import_id,
               details=details)
    return changed


def identity_stated_at(conn: Connection, patient_id: int) -> datetime | None:
    """The time of the most recent identity statement applied to the dossier (the
    'identity.update' audit rows that carry one, and the 'dossier.create' row of a dossier
    an ADT auto-created, whose traits are that ADT's), None when none does.

    Why the audit rows: they are where each applied statement is recorded already (no
    migration), and a dossier's identity changes a handful of times in its life."""
    rows = conn.execute(select(audit_log.c.details).where(
        audit_log.c.patient_id == patient_id,
        audit_log.c.action.in_(("identity.update", "dossier.create"))))
    times = [instant(d["stated_at"]) for (d,) in rows
             if isinstance(d, dict) and isinstance(d.get("stated_at"), str)]
    return max(times) if times else None
