"""The audit trail of people's actions: who did what to which import or dossier, when, why.

Kept general on purpose (actor, action, import id and/or patient id, reason, details) so that
dossier reads (issue 8) go in the same table. Append-only: nothing here updates or deletes.
Rows name people and ids, never patient data.
"""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, or_, select

from dossiers.audit import AuditEvent, append, iso_utc
from dossiers.schema import audit_log, patients


@dataclass(frozen=True, slots=True)
class Actor:
    """The person acting: ``--as``, else DMP_ADMIN, else the OS user."""

    name: str

    @classmethod
    def current(cls, explicit: str | None = None) -> Actor:
        if explicit and explicit.strip():
            return cls(explicit.strip())
        env = os.environ.get("DMP_ADMIN", "").strip()
        if env:
            return cls(env)
        try:
            return cls(getpass.getuser())
        except (KeyError, OSError):  # no passwd entry (containers)
            return cls(f"uid:{os.getuid()}")


def record(conn: Connection, actor: Actor, action: str, *, import_id: int | None = None,
           patient_id: int | None = None, reason: str | None = None,
           details: dict | None = None, at: datetime | None = None) -> None:
    """Append one row, in the caller's transaction (the action and its trace commit together),
    to the hash-chained trail (dossiers/audit.py)."""
    event = AuditEvent(actor.name, action, patient_id=patient_id, import_id=import_id,
                       reason=reason, details=details)
    if at is not None:
        event.at = at
    append(conn, [event])


def record_token(engine: Engine, actor: Actor, claims: dict) -> None:
    """Who minted a token for whom (``token mint``): a token is a key to dossiers, and it was
    handed out without a trace. A patient's token goes in that patient's trail (their dossier
    can now be read with it), others in the trail of no dossier. The claims that say who and
    for how long are kept (scope, subject, RPPS, role, source, expiry), never the token."""
    kept = {k: claims[k] for k in ("scope", "sub", "rpps", "role", "source", "patient",
                                   "representative", "exp") if claims.get(k) is not None}
    if "exp" in kept:
        kept["exp"] = datetime.fromtimestamp(int(kept["exp"]), UTC).isoformat()
    with engine.begin() as conn:
        patient_id = None
        if claims.get("scope") == "patient" and str(claims.get("patient", "")).isdigit():
            patient_id = conn.execute(select(patients.c.id).where(
                patients.c.id == int(claims["patient"]))).scalar_one_or_none()
        record(conn, actor, "token.mint", patient_id=patient_id, details=kept)


def trail(engine: Engine, *, import_id: int | None = None,
          patient_id: int | None = None) -> list[dict]:
    """The rows about an import and/or a patient, oldest first."""
    q = select(audit_log).order_by(audit_log.c.id)
    conds = []
    if import_id is not None:
        conds.append(audit_log.c.import_id == import_id)
    if patient_id is not None:
        conds.append(audit_log.c.patient_id == patient_id)
    if conds:
        q = q.where(or_(*conds))
    with engine.connect() as conn:
        return [{"at": iso_utc(r.at), "actor": r.actor,
                 "action": r.action, "import_id": r.import_id, "patient_id": r.patient_id,
                 "reason": r.reason, "details": r.details} for r in conn.execute(q)]
