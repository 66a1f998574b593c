"""ADT^A40 / A18, A34 / A36 of v2.3.1 (IHE PAM, French extension): the patient of MRG-1 is
merged into the patient of PID-3, the hospital's duplicate record closed. What it means for
the DMP intake: the merged patient's local identifiers (MRG-1) name the surviving dossier
from now on, so that a late result still sent under the old IPP, or a quarantined one
rerun, files there.

What is never done on the sender's word (an admin decides, the ADT is quarantined with the
reason and nothing is changed):
- moving entries: a merged identifier that another dossier already holds means that dossier
  received something under it; merging two dossiers moves their entries
  (ADT_MERGE_DOSSIERS, naming both dossiers and how many entries the other holds);
- merging two dossiers that hold different INS, or giving the survivor a merged patient
  whose INS is another than its own: one person has one INS (IDENTITY_CONFLICT).
- giving PID-3's identifiers to the dossier MRG-1 names (the survivor has none here) when
  that dossier holds another live record of the sender's domain, which neither this merge
  nor an earlier one names as merged away: a record merged twice, into two survivors
  (ADT_MERGE_OTHER_RECORD, round 21). A chain (A into B, then B into C) is followed.
The merge's audit row lists the dossier's identifier rows of MRG-1 (``merged_rows``, row
ids, never values): the identifiers of a record the hospital no longer references (HL7
v2.5 3.3.40), whose late A08 does not rewrite the survivor's traits (pipelines/adt_identity.py).
A merge whose MRG-1 the survivor held already (an admin assigned or merged the duplicate's
messages there first) writes that row too, once: 0 identifiers learnt, the rows marked.
An INS in MRG-1 that no dossier holds is not given to the survivor (the merge does not
qualify it): said in a warning. Reasons name dossiers by id and identifiers by field,
never by value.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, func, select

from dossiers.audit import record as record_audit
from dossiers.merged import MERGED_AUTHORITY, MERGED_ROWS, identifier_rows, merged_away_rows
from dossiers.patients import Patient, add_identifier, find_by_ins, find_by_local_id, get_patient
from dossiers.schema import entries, patient_identifiers
from normalizers.model import PatientIdentity

# The INS kinds that name a person (not a NIR used for billing, not the obsolete INS-C)
INS_KINDS = frozenset({"INS-NIR", "INS-NIA", "INS-NIR-TEST", "INS-NIR-DEMO"})


class MergeRefused(Exception):
    """The merge is not applied: ``code`` and ``reason`` for the ledger, ``location`` the
    MRG field."""

    def __init__(self, code: str, reason: str, location: str) -> None:
        super().__init__(reason)
        self.code, self.reason, self.location = code, reason, location


@dataclass(slots=True)
class MergeDone:
    learnt: int = 0  # identifiers that name the surviving dossier from now on
    known: int = 0  # identifiers it held already

    def note(self, trigger: str) -> str:
        if not self.learnt:
            return f"ADT^{trigger} merge: the dossier held MRG-1's identifiers already"
        return (f"ADT^{trigger} merge: {self.learnt} identifier(s) of MRG-1 now name the "
                "dossier")


def apply_merge(conn: Connection, survivor_id: int, merged: list[tuple[str, PatientIdentity]],
                *, actor: str, import_id: int, trigger: str, warnings: list[str],
                domains: frozenset[str] = frozenset()) -> MergeDone:
    """Make MRG-1's identifiers name dossier ``survivor_id`` (found by PID-3), after checking
    all of them: raises MergeRefused before any write when one cannot be (see module).

    ``domains``: the assigning authorities of PID-3's local identifiers. IHE PAM merges two
    records of one identifier domain: a merged identifier of another authority (a lab's
    IPP copied into MRG-1) is not the sender's to reassign; warned about, not merged."""
    survivor = get_patient(conn, survivor_id)
    if survivor is None:  # resolved a moment ago: only a concurrent delete gets here
        raise MergeRefused("IDENTITY_UNKNOWN_PATIENT", "the surviving dossier no longer "
                           "exists", "PID-3")
    to_learn = []
    named: list[tuple[str, str, str]] = []  # MRG-1's identifiers the survivor holds or learns
    done = MergeDone()
    for where, ident in merged:
        for ins in ident.ins:
            _check_ins(conn, survivor, ins.nir, ins.kind, where, warnings)
        for li in ident.local_ids:
            if not (li.authority and li.value):
                warnings.append(f"{where}: identifier without assigning authority: not merged")
                continue
            if domains and li.authority not in domains:
                warnings.append(f"{where}: identifier of another assigning authority than "
                                "PID-3's: not the sender's to merge, not merged")
                continue
            holders = find_by_local_id(conn, li.authority, li.value, li.unscoped)
            named.append((li.authority, li.value, li.unscoped))
            if survivor.id in holders:
                done.known += 1
                continue
            if holders:
                _refuse_other_dossier(conn, survivor, holders[0], where)
            to_learn.append(li)
    for li in to_learn:
        add_identifier(conn, survivor.id, li.authority, li.value, li.type_code)
    done.learnt = len(to_learn)
    rows = set(identifier_rows(conn, survivor.id, named))
    if to_learn or not rows <= merged_away_rows(conn, survivor.id):
        record_audit(conn, actor, "identity.merged", patient_id=survivor.id,
                     import_id=import_id,
                     details={"trigger": trigger, "identifiers": len(to_learn),
                              MERGED_ROWS: sorted(rows)})
    return done


def _named(idents: list[PatientIdentity]) -> list[tuple[str, str, str]]:
    """(authority, value, unscoped namespace) of the local identifiers of ``idents``."""
    return [(li.authority, li.value, li.unscoped) for ident in idents
            for li in ident.local_ids if li.authority and li.value]


def _check_no_other_record(conn: Connection, holder: Patient, survivor: PatientIdentity,
                           merged: list[tuple[str, PatientIdentity]], domains: set[str]) -> None:
    """Raise ADT_MERGE_OTHER_RECORD when the dossier MRG-1 names holds another live record
    of the sender's identifier domain: an identifier of MRG-1's assigning authority that
    neither this merge names (MRG-1, PID-3) nor an earlier merge named as merged away.

    Why: HL7 v2.5 3.3.40 merges MRG-1's record into PID-3's, and MRG-1 is never referenced
    again. The dossier holding another of the hospital's records beside MRG-1's (the one an
    earlier A40 merged MRG-1 into: a patient already merged away, merged again into another;
    or two records an admin put in one dossier) is not the hospital's one patient: giving it
    PID-3's identifiers made one dossier of two records the hospital never said are one
    person, and every result under PID-3 was filed there. A chain (A into B, then B into C)
    is not refused: A is merged away, B is this merge's MRG-1."""
    named = _named([survivor] + [i for _, i in merged])
    keys = {(a, v) for a, v, _ in named} | {(u, v) for _, v, u in named if u}
    gone = merged_away_rows(conn, holder.id)
    others = [r.id for r in conn.execute(select(
        patient_identifiers.c.id, patient_identifiers.c.authority, patient_identifiers.c.value,
        patient_identifiers.c.type_code).where(patient_identifiers.c.patient_id == holder.id))
        if r.authority in domains and r.authority != MERGED_AUTHORITY
        and r.type_code != "NH" and (r.authority, r.value) not in keys and r.id not in gone]
    if others:
        raise MergeRefused(
            "ADT_MERGE_OTHER_RECORD",
            f"MRG-1: dossier {holder.id}, which MRG-1 names, also holds {len(others)} other "
            "identifier(s) of the same assigning authority that this merge does not name (the "
            "record an earlier merge merged MRG-1 into, or another record of the hospital): "
            "giving it PID-3's identifiers would make one dossier of records the hospital "
            "never said are one patient; nothing was changed", "MRG-1")


def adopt_survivor(conn: Connection, holder_id: int, survivor: PatientIdentity,
                   merged: list[tuple[str, PatientIdentity]], *, actor: str, import_id: int,
                   trigger: str, warnings: list[str]) -> int:
    """PID-3 names no dossier here and MRG-1 names one (``holder_id``): that dossier is the
    patient's, now known to the hospital under PID-3's identifiers, which name it from now
    on (those of MRG-1's assigning authorities: IHE PAM merges records of one domain).
    Returns how many were learnt; raises MergeRefused, before any write, when an identifier
    of PID-3 names another dossier (ADT_MERGE_DOSSIERS), when PID-3 carries an INS other
    than the dossier's (IDENTITY_CONFLICT), or when PID-3 has none to give
    (ADT_MERGE_NO_IDENTIFIER). PID-3's INS is never given: a merge does not qualify it."""
    holder = get_patient(conn, holder_id)
    if holder is None:
        raise MergeRefused("IDENTITY_UNKNOWN_PATIENT", "the merged patient's dossier no "
                           "longer exists", "MRG-1")
    for ins in survivor.ins:
        if ins.kind in INS_KINDS and holder.ins and ins.nir != holder.ins:
            raise MergeRefused("IDENTITY_CONFLICT", f"PID-3: the surviving patient's {ins.kind} "
                               f"is another than the INS of dossier {holder.id}, which MRG-1 "
                               "names: two persons with different INS are never merged "
                               "(identity to check with the sender)", "PID-3")
        if ins.kind in INS_KINDS and not holder.ins:
            warnings.append(f"PID-3: the surviving patient's {ins.kind} is held by no dossier: "
                            "not given to the merged patient's dossier (a merge does not "
                            "qualify an INS)")
    domains = {li.authority for _, ident in merged for li in ident.local_ids if li.authority}
    _check_no_other_record(conn, holder, survivor, merged, domains | {
        li.unscoped for _, ident in merged for li in ident.local_ids if li.unscoped})
    to_learn = []
    for li in survivor.local_ids:
        if not (li.authority and li.value) or li.type_code == "NH":
            continue
        if li.authority not in domains:
            warnings.append("PID-3: identifier of another assigning authority than MRG-1's: "
                            "not the sender's to merge, not learnt")
            continue
        holders = find_by_local_id(conn, li.authority, li.value, li.unscoped)
        if holders and holder.id not in holders:
            _refuse_other_dossier(conn, holder, holders[0], "PID-3")
        if not holders:
            to_learn.append(li)
    if not to_learn:
        raise MergeRefused("ADT_MERGE_NO_IDENTIFIER", "PID-3: the surviving patient has no "
                           "dossier here and no identifier of MRG-1's assigning authority to "
                           f"give to dossier {holder.id}, which MRG-1 names", "PID-3")
    for li in to_learn:
        add_identifier(conn, holder.id, li.authority, li.value, li.type_code)
    record_audit(conn, actor, "identity.merged", patient_id=holder.id, import_id=import_id,
                 details={"trigger": trigger, "identifiers": len(to_learn),
                          "surviving_unknown": True,
                          MERGED_ROWS: sorted(identifier_rows(
                              conn, holder.id, _named([i for _, i in merged])))})
    return len(to_learn)


def merged_dossiers(conn: Connection, merged: list[tuple[str, PatientIdentity]]) -> set[int]:
    """The dossiers that MRG-1's identifiers (an INS, a local identifier of any authority)
    name here. Not a NIR used for billing (OID .4.13, type NH): it may be the insured
    parent's, and the child's merge would name the parent's dossier."""
    found: set[int] = set()
    for _, ident in merged:
        for ins in ident.ins:
            holder = find_by_ins(conn, ins.nir) if ins.kind in INS_KINDS else None
            if holder is not None:
                found.add(holder.id)
        for li in ident.local_ids:
            if li.authority and li.value and li.type_code != "NH":
                found.update(find_by_local_id(conn, li.authority, li.value, li.unscoped))
    return found


def _check_ins(conn: Connection, survivor: Patient, nir: str, kind: str, where: str,
               warnings: list[str]) -> None:
    holder = find_by_ins(conn, nir)
    if holder is not None and holder.id == survivor.id:
        return
    if survivor.ins and survivor.ins != nir:
        raise MergeRefused("IDENTITY_CONFLICT",
                           f"{where}: the merged patient's {kind} is another than the INS of "
                           f"the surviving dossier {survivor.id}: two persons with different "
                           "INS are never merged (identity to check with the sender)", where)
    if holder is not None:
        _refuse_other_dossier(conn, survivor, holder.id, where)
    warnings.append(f"{where}: the merged patient's {kind} is held by no dossier: not given "
                    "to the surviving dossier (a merge does not qualify an INS)")


def _refuse_other_dossier(conn: Connection, survivor: Patient, other_id: int,
                          where: str) -> None:
    other = get_patient(conn, other_id)
    if other is not None and other.ins and survivor.ins and other.ins != survivor.ins:
        raise MergeRefused("IDENTITY_CONFLICT",
                           f"{where}: the merged identifier names dossier {other_id}, which "
                           f"holds another INS than the surviving dossier {survivor.id}: two "
                           "dossiers with different INS are never merged (identity to check "
                           "with the sender)", where)
    held = conn.execute(select(func.count()).select_from(entries)
                        .where(entries.c.patient_id == other_id)).scalar_one()
    raise MergeRefused("ADT_MERGE_DOSSIERS",
                       f"{where}: the merged identifier names dossier {other_id} (holding "
                       f"{held} entr{'y' if held == 1 else 'ies'}), not the surviving dossier "
                       f"{survivor.id} that PID-3 names: merging two dossiers moves what "
                       "they hold, an admin's decision; nothing was changed. If they are one "
                       f"person: `dmp-ingest dossier merge {survivor.id} {other_id} --reason "
                       "...` (or POST /admin/dossiers/merge), then rerun this import", where)
