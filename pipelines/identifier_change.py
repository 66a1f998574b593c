"""ADT^A47 (and A46, its v2.3 form): IHE PAM ITI-30 'change patient identifier list'. The
hospital's GAM replaced one of a patient's identifiers (her IPP, after a duplicate record or
a numbering error): MRG-1 holds the old one, PID-3 the new one of the same assigning
authority (normalizers/adt.py pairs them). Here the dossier the old identifier names gets
the new one in its place, so the results the hospital now sends under the new IPP reach it.

Refused (quarantined for an admin, nothing changed), reasons naming fields and dossier ids,
never identifier values:
- PID-3's new identifier already names another dossier (IDENTITY_CONFLICT): two dossiers of
  one patient only if the hospital is right, which an admin checks (dossier merge);
- MRG-1's identifiers name several dossiers, or PID-3 carries several identifiers of the old
  one's authority (IDENTITY_AMBIGUOUS): which dossier or which identifier is not guessed.
MRG-1's identifier held by no dossier here: nothing to change (the GAM sends the changes of
all its patients, most of whom have no dossier here).

The INS removal of an A47 (an INS in MRG-1 that PID-3 dropped) is pipelines/process.py's
``_file_ins_removal``; an A47 doing both is checked here first: the INS and the local
identifiers of MRG-1 must name the same dossier.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Connection

from dossiers.audit import record as record_audit
from dossiers.patients import find_by_local_id, replace_identifier
from normalizers.model import IdentifierChange, LocalIdentifier

AUDIT_ACTION = "identity.identifier_changed"


class ChangeRefused(Exception):
    """Nothing is changed: ``code`` and ``reason`` for the ledger, ``location`` the field."""

    def __init__(self, code: str, reason: str, location: str) -> None:
        super().__init__(reason)
        self.code, self.reason, self.location = code, reason, location


@dataclass(slots=True)
class ChangePlan:
    """What an A47 changes: the dossier (None: MRG-1 names none here) and, per change, whether
    that dossier holds the new identifier already (then the old one is only dropped)."""

    target: int | None
    changes: list[tuple[IdentifierChange, bool]] = field(default_factory=list)
    # dossiers PID-3's new identifiers name when MRG-1's name none (a resend, a late A47)
    new_named: set[int] = field(default_factory=set)

    def note(self, trigger: str) -> str:
        if self.target is None:
            also = (f" (PID-3's new identifier already names dossier "
                    f"{', '.join(map(str, sorted(self.new_named)))})" if self.new_named else "")
            return (f"ADT^{trigger}: the local identifier(s) of MRG-1 name no dossier here, "
                    f"nothing changed{also}")
        if not self.changes:
            return f"ADT^{trigger}: the dossier holds no identifier of MRG-1 to change"
        return (f"ADT^{trigger}: {len(self.changes)} identifier(s) of MRG-1 replaced by "
                "PID-3's in the dossier")


def _holders(conn: Connection, li: LocalIdentifier) -> set[int]:
    return set(find_by_local_id(conn, li.authority, li.value, li.unscoped))


def _dossiers(ids: set[int]) -> str:
    return f"dossier{'s' if len(ids) > 1 else ''} {', '.join(map(str, sorted(ids)))}"


def plan_changes(conn: Connection, changes: list[IdentifierChange], assigned: int | None,
                 warnings: list[str]) -> ChangePlan:
    """Which dossier the A47's changes apply to and which of them, checked before any write;
    raises ChangeRefused (see module). ``assigned``: the dossier an admin assigned the import
    to (after an IDENTITY_AMBIGUOUS): its changes apply there, but an identifier of MRG-1
    that another dossier holds is left to that dossier (warned), never taken from it."""
    olds = [(c, _holders(conn, c.old)) for c in changes]
    named = {p for _, held in olds for p in held}
    if assigned is not None:
        target: int | None = assigned
    elif len(named) > 1:
        said = "; ".join(f"{c.old_at} -> {_dossiers(held)}" for c, held in olds if held)
        raise ChangeRefused("IDENTITY_AMBIGUOUS", "the identifiers of MRG-1 name several "
                            f"dossiers ({said}): whose identifier changed is not guessed; "
                            "nothing changed", olds[0][0].old_at)
    else:
        target = next(iter(named), None)
    if target is None:
        return ChangePlan(None, new_named={p for c in changes if c.new is not None
                                           for p in _holders(conn, c.new)})
    plan = ChangePlan(target)
    for c, held in olds:
        if held - {target}:  # only with an admin's assignment: another dossier's identifier
            warnings.append(f"{c.old_at}: names {_dossiers(held)}, not dossier {target} the "
                            "import was assigned to: not changed")
            continue
        if assigned is None and target not in held:
            warnings.append(f"{c.old_at}: names no dossier here: not changed")
            continue
        if c.new is None:
            raise ChangeRefused("IDENTITY_AMBIGUOUS", f"{c.new_at}: several identifiers of the "
                                f"assigning authority of {c.old_at}: which one replaces it is "
                                "not said; nothing changed", c.new_at)
        new_held = _holders(conn, c.new)
        if new_held - {target}:
            other = min(new_held - {target})
            raise ChangeRefused("IDENTITY_CONFLICT", f"{c.new_at}: the new identifier already "
                                f"names dossier {other}, the old one ({c.old_at}) dossier "
                                f"{target}: two dossiers are one patient only if the hospital "
                                "is right; nothing changed. If they are one person: "
                                f"`dmp-ingest dossier merge {target} {other} --reason ...`, "
                                "then rerun this import", c.new_at)
        plan.changes.append((c, target in new_held))
    return plan


def apply_changes(conn: Connection, plan: ChangePlan, *, actor: str, import_id: int,
                  trigger: str) -> int:
    """Replace, in dossier ``plan.target``, each old identifier by its new one; audited as
    ``identity.identifier_changed`` with how many and the assigning authorities (an OID or a
    facility's namespace, never a value). Returns how many were changed."""
    if plan.target is None or not plan.changes:
        return 0
    for c, held in plan.changes:
        new = c.new
        if new is None:  # never: plan_changes refuses an ambiguous change
            continue
        olds = tuple(a for a in (c.old.authority, c.old.unscoped) if a)
        replace_identifier(conn, plan.target, olds, c.old.value,
                           None if held else (new.authority, new.value, new.type_code))
    record_audit(conn, actor, AUDIT_ACTION, patient_id=plan.target, import_id=import_id,
                 details={"trigger": trigger, "identifiers": len(plan.changes),
                          "authorities": sorted({c.old.authority for c, _ in plan.changes})})
    return len(plan.changes)
