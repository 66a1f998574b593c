"""An identity-vigilance operator merges two dossiers of one person (`dossier merge`).

What an ADT^A40 is never allowed to do on the sender's word (pipelines/merge.py quarantines
it ADT_MERGE_DOSSIERS) an operator decides here: the merged dossier's identifiers, INS and
entries (every version, every provenance link) move into the survivor, and the merged
dossier stays as a closed tombstone that points to the survivor (dossiers/merged.py), so a
later message under its identifiers, or a rerun of the quarantined ADT, files in the
survivor, and a read of the old id says where it went.

Refused before any write (``MergeRefusedError``, a code and one line naming dossiers by id,
never patient data), the same safeguards as round 6's merges:
- two dossiers holding different INS: one person has one INS (IDENTITY_CONFLICT);
- a patient's choice the survivor does not carry: the merged patient opposed feeding, closed
  their DMP or refused consultation (MERGE_CONSENT_DIFFERS): merging would lift it;
- one key held by both with different content or history (MERGE_ENTRIES_CONFLICT): which
  version is current would be a guess;
- a dossier merged already, or the same dossier twice (DOSSIER_MERGED, MERGE_SAME_DOSSIER).
  The same merge again is not refused: it moves what was filed in the tombstone since (a
  worker that resolved the merged dossier just before the merge committed; `check` reports
  ENTRIES_IN_MERGED_DOSSIER).

Entries that are now the same fact twice in one dossier become one (dedupe levels 2 and 4,
as deposit decides them): the merged dossier's entry is absorbed into the survivor's, its
provenance links re-pointed there ('created' read as 'confirmed', as deposit would have
linked it), its children hung from the survivor's entry. Only a lone current version is
absorbed (the same masking too for the same key, the same patient's choice for the same
fact); anything else moves as it is: two entries, never a loss.

All of it in one transaction, audited in both patients' trails.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field

from sqlalchemy import Connection, Engine, delete, func, select, update

from dossiers.audit import AuditEvent, append
from dossiers.deposit import FACT_TYPES, REPORT_TYPES, _same, _same_fact
from dossiers.merged import merged_into, pointer_row
from dossiers.patients import Patient, add_identifiers, find_by_reference
from dossiers.schema import (
    authorizations,
    entries,
    imports,
    legal_representatives,
    patient_identifiers,
    patients,
    provenance,
)
from pipelines.admin import AdminError
from pipelines.audit import Actor
from pipelines.identity import CLOSED

COMMAND = "dmp-ingest dossier merge SURVIVOR MERGED --reason TEXT"


class MergeRefusedError(AdminError):
    """The merge is refused as a whole; ``code`` for scripts and the API."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(slots=True)
class MergePlan:
    """What a merge moves: counts and codes, never names or values (printed by --dry-run)."""

    survivor: int
    merged: int
    identifiers: int = 0
    ins_moved: bool = False
    entries_moved: int = 0
    absorbed_same_key: int = 0  # dedupe level 2: the same entry under the same key
    absorbed_same_fact: int = 0  # dedupe level 4: the same fact under another key
    provenance_links: int = 0
    imports_refiled: int = 0  # ledger rows that now name the survivor
    entry_types: dict[str, int] = field(default_factory=dict)
    codes: dict[str, int] = field(default_factory=dict)  # "system|code": count moved
    not_moved: dict[str, int] = field(default_factory=dict)  # kept on the tombstone
    dry_run: bool = False
    # {absorbed entry id: survivor entry id}; internal to apply, not reported
    absorb: dict[int, int] = field(default_factory=dict, repr=False)

    def as_dict(self) -> dict:
        shown = asdict(self)
        shown.pop("absorb")
        return shown


def merge_dossiers(engine: Engine, survivor_ref: str, merged_ref: str, actor: Actor,
                   reason: str, *, dry_run: bool = False) -> MergePlan:
    """Merge dossier ``merged_ref`` into ``survivor_ref`` (INS or id each), all or nothing;
    with ``dry_run`` only the plan, nothing written. ``MergeRefusedError`` when refused."""
    if not reason.strip():
        raise MergeRefusedError("REASON_REQUIRED", "a reason is required (--reason)")
    with engine.begin() as conn:
        survivor, merged = _both(conn, survivor_ref, merged_ref)
        plan = plan_merge(conn, survivor, merged)
        plan.dry_run = dry_run
        if dry_run:
            conn.rollback()
            return plan
        _apply(conn, plan, survivor, merged, actor, reason)
    return plan


def _both(conn: Connection, survivor_ref: str, merged_ref: str) -> tuple[Patient, Patient]:
    found = []
    for role, ref in (("surviving", survivor_ref), ("merged", merged_ref)):
        patient = find_by_reference(conn, ref)
        if patient is None:
            # the reference not repeated: it may be an INS (patient data, in an API answer)
            raise MergeRefusedError("NOT_FOUND", f"no {role} dossier: no dossier has that "
                                    f"{'INS or id' if len(ref.strip()) == 15 else 'id'}")
        found.append(patient)
    survivor, merged = found
    if survivor.id == merged.id:
        raise MergeRefusedError("MERGE_SAME_DOSSIER", "the surviving and the merged dossier "
                                "are the same")
    if conn.dialect.name == "postgresql":  # a concurrent merge of either waits for this one
        conn.execute(select(patients.c.id).where(patients.c.id.in_(
            sorted((survivor.id, merged.id)))).order_by(patients.c.id).with_for_update())
    for patient in (survivor, merged):
        went = merged_into(conn, patient.id)
        # the same merge again sweeps what a worker filed in the merged dossier while the
        # first one ran (it resolved the dossier before the merge committed)
        if went is not None and not (patient is merged and went == survivor.id):
            raise MergeRefusedError("DOSSIER_MERGED", f"dossier {patient.id} was merged into "
                                    f"dossier {went} already: name dossier {went} instead")
    return survivor, merged


def plan_merge(conn: Connection, survivor: Patient, merged: Patient) -> MergePlan:
    """The checks (raising before any write) and what would move."""
    if survivor.ins and merged.ins and survivor.ins != merged.ins:
        raise MergeRefusedError("IDENTITY_CONFLICT", f"dossiers {survivor.id} and {merged.id} "
                                "hold different INS: two persons with different INS are never "
                                "merged (identity to check)")
    again = merged_into(conn, merged.id) == survivor.id
    if not again:  # merged already: a tombstone is closed (FERME) by the merge itself
        _check_choices(conn, survivor, merged)
    plan = MergePlan(survivor.id, merged.id, ins_moved=bool(merged.ins))
    plan.identifiers = conn.execute(select(func.count()).select_from(patient_identifiers)
                                    .where(patient_identifiers.c.patient_id == merged.id)
                                    ).scalar_one()
    mine = conn.execute(select(entries).where(entries.c.patient_id == merged.id)
                        .order_by(entries.c.id)).all()
    theirs = conn.execute(select(entries).where(entries.c.patient_id == survivor.id)).all()
    _plan_entries(plan, mine, theirs)
    plan.provenance_links = conn.execute(select(func.count()).select_from(provenance).where(
        provenance.c.entry_id.in_(select(entries.c.id).where(entries.c.patient_id == merged.id))
    )).scalar_one()
    plan.imports_refiled = conn.execute(select(func.count()).select_from(imports).where(
        (imports.c.patient_id == merged.id) | (imports.c.assigned_patient_id == merged.id))
    ).scalar_one()
    for name, table in (("authorizations", authorizations),
                        ("legal_representatives", legal_representatives)):
        held = conn.execute(select(func.count()).select_from(table).where(
            table.c.patient_id == merged.id, table.c.revoked_at.is_(None))).scalar_one()
        if held and not again:  # said by the first merge
            plan.not_moved[name] = held
    return plan


def _check_choices(conn: Connection, survivor: Patient, merged: Patient) -> None:
    """A choice the merged patient made and the survivor does not carry would be lifted by
    moving the entries into a dossier without it: the operator records it there first."""
    row_s = conn.execute(select(patients).where(patients.c.id == survivor.id)).one()
    row_m = conn.execute(select(patients).where(patients.c.id == merged.id)).one()
    lifted = []
    if row_m.opposed and not row_s.opposed:
        lifted.append("opposition to feeding")
    if row_m.dmp_status == CLOSED and row_s.dmp_status != CLOSED:
        lifted.append("closed DMP")
    if row_m.consultation_consent == "INC" and row_s.consultation_consent != "INC":
        lifted.append("refusal of consultation")
    # the oppositions to emergency access (migration 0013): moved into a dossier without
    # them, the merged patient's entries were open to the break-glass they had refused
    if row_m.break_glass_opposed and not row_s.break_glass_opposed:
        lifted.append("opposition to break-glass")
    if row_m.regulation_opposed and not row_s.regulation_opposed:
        lifted.append("opposition to the SAMU regulating doctor's access")
    if lifted:
        raise MergeRefusedError("MERGE_CONSENT_DIFFERS", f"dossier {merged.id} carries the "
                                f"patient's {', '.join(lifted)}, dossier {survivor.id} does "
                                "not: record it on the surviving dossier first")


def _plan_entries(plan: MergePlan, mine: list, theirs: list) -> None:
    by_key: dict[str, list] = {}
    for row in theirs:
        by_key.setdefault(row.key, []).append(row)
    my_keys = Counter(r.key for r in mine)
    referenced = {r.superseded_by for r in mine if r.superseded_by is not None}
    facts: dict[str, list] = {}
    for row in theirs:
        if row.fact and row.current and row.status != "withdrawn":
            facts.setdefault(row.fact, []).append(row)
    conflicts = 0
    types: Counter[str] = Counter()
    codes: Counter[str] = Counter()
    for row in mine:
        held = by_key.get(row.key)
        lone = my_keys[row.key] == 1 and row.current and row.id not in referenced
        if held:
            # the same version of it (the survivor may hold its correction since)
            twin = next((r for r in held if r.version == row.version), None)
            if lone and twin is not None and _same(row._asdict(), twin) \
                    and row.mask_override == twin.mask_override:
                plan.absorb[row.id] = twin.id
                plan.absorbed_same_key += 1
                continue
            conflicts += 1
            continue
        same = _same_fact_held(row, facts) if lone else None
        if same is not None:
            plan.absorb[row.id] = same.id
            plan.absorbed_same_fact += 1
            continue
        plan.entries_moved += 1
        types[row.type] += 1
        if row.code:
            codes[f"{row.system or '-'}|{row.code}"] += 1
    if conflicts:
        raise MergeRefusedError("MERGE_ENTRIES_CONFLICT", f"{conflicts} entr"
                                f"{'y' if conflicts == 1 else 'ies'} of dossier {plan.merged} "
                                f"and of dossier {plan.survivor} share a key with other "
                                "content or history (the same document or result filed in "
                                "both, since changed): which version is current would be a "
                                "guess; nothing was changed")
    plan.entry_types, plan.codes = dict(sorted(types.items())), dict(sorted(codes.items()))


def _same_fact_held(row, facts: dict[str, list]):  # noqa: ANN001, ANN202
    """The survivor's current entry stating the same fact (level 4), as deposit finds it
    (the sender's masking is not compared: the fact is already in the survivor, shown as
    its entry says), unless the patient chose otherwise on one of the two (mask_override)."""
    if row.type not in FACT_TYPES | REPORT_TYPES or not row.fact \
            or row.status == "withdrawn":
        return None
    held = [r for r in facts.get(row.fact, ()) if r.mask_override == row.mask_override]
    return _same_fact(row._asdict(), held) if held else None


def _apply(conn: Connection, plan: MergePlan, survivor: Patient, merged: Patient,
           actor: Actor, reason: str) -> None:
    details = {k: v for k, v in plan.as_dict().items()
               if k not in ("codes", "dry_run", "survivor", "merged")}
    # the trails first, in one append: both heads are taken for this transaction
    # (PostgreSQL) in the order every appender takes them (two appends, survivor first,
    # could deadlock with a worker filing both dossiers in one piece), so writers of either
    # dossier wait for the merge rather than interleave with it
    append(conn, [AuditEvent(actor.name, "dossier.merge", patient_id=survivor.id,
                             reason=reason, details={"merged": merged.id, **details}),
                  AuditEvent(actor.name, "dossier.merged_into", patient_id=merged.id,
                             reason=reason, details={"survivor": survivor.id, **details})])
    for absorbed, kept in plan.absorb.items():
        conn.execute(update(provenance).where(provenance.c.entry_id == absorbed,
                                              provenance.c.relation == "created")
                     .values(entry_id=kept, relation="confirmed"))
        conn.execute(update(provenance).where(provenance.c.entry_id == absorbed)
                     .values(entry_id=kept))
        conn.execute(update(entries).where(entries.c.parent_id == absorbed)
                     .values(parent_id=kept))
    if plan.absorb:
        conn.execute(delete(entries).where(entries.c.id.in_(list(plan.absorb))))
    conn.execute(update(entries).where(entries.c.patient_id == merged.id)
                 .values(patient_id=survivor.id))
    conn.execute(update(patient_identifiers).where(patient_identifiers.c.patient_id == merged.id)
                 .values(patient_id=survivor.id))
    add_identifiers(conn, [pointer_row(survivor.id, merged.id)])
    if merged.ins:
        conn.execute(update(patients).where(patients.c.id == merged.id)
                     .values(ins=None, ins_oid=None))
        conn.execute(update(patients).where(patients.c.id == survivor.id)
                     .values(ins=merged.ins, ins_oid=merged.ins_oid))
    conn.execute(update(patients).where(patients.c.id == merged.id).values(dmp_status=CLOSED))
    conn.execute(update(imports).where(imports.c.patient_id == merged.id)
                 .values(patient_id=survivor.id))
    conn.execute(update(imports).where(imports.c.assigned_patient_id == merged.id)
                 .values(assigned_patient_id=survivor.id))
    if merged_into(conn, merged.id) != survivor.id:  # the pointer is what makes it a tombstone
        raise MergeRefusedError("MERGE_RACED", f"dossier {merged.id} could not be marked "
                                "merged (a concurrent merge): nothing was changed")
