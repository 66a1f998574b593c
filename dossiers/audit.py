"""The audit trail: append-only and hash-chained, so that tampering with it is detectable.

Every read, write, mask, unmask, authorisation change, break-glass and admin action appends
one row to ``audit_log``. Rows form one chain per dossier (``chain`` = the patient id; 0 for
rows about no dossier): ``seq`` counts the chain's rows from 1 and ``hash`` is the sha256 of
the previous row's hash followed by this row's content. Editing a row, deleting one, or
inserting one in the middle breaks the chain; ``verify`` finds where.

The chain alone cannot tell its last rows deleted from rows never written (what is left
still links from GENESIS). So each chain's head (its last seq and hash) is also written in
``audit_heads``, by ``append`` in the transaction that appends the rows (migration 0013), and
``verify`` compares every chain's end with it: a deleted tail, a chain deleted whole, rows
written around ``append``, a rewritten end all show. What it does not stop is someone who
rewrites both tables consistently: the anchor guards against a truncation (a careless
``DELETE``, a restore from an older backup of one table, someone hiding the last reads), and
``audit verify`` prints one digest of every head, for an operator to keep outside the store
(a later digest that differs while nothing was appended says the trail was rewritten).

Why one chain per dossier rather than one for the whole store: appending takes the chain's
head under a lock, and with several workers filing different patients a single chain would
make every transaction wait for every other. Per dossier, only writers of the same patient
wait for each other, and the patient's own trail verifies on its own.

Rows name people (actor) and ids, never patient data.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, and_, bindparam, exists, func, select, text
from sqlalchemy.dialects import postgresql, sqlite

from dossiers.db import bulk_insert
from dossiers.schema import audit_heads, audit_log

GENESIS = "0" * 64  # the prev_hash of a chain's first row
COMPARE_EVERY = 1000  # verify: chains read to their end, compared with their anchors at once
NO_DOSSIER = 0  # the chain of rows about no dossier (admin actions on imports only)


@dataclass(slots=True)
class AuditEvent:
    """One action to append (the chain, seq and hashes are filled in by ``append``)."""

    actor: str
    action: str
    patient_id: int | None = None
    import_id: int | None = None
    reason: str | None = None
    details: dict | None = None
    at: datetime = field(default_factory=lambda: datetime.now(UTC))


def canonical_time(at: datetime) -> str:
    """The instant as hashed: UTC, microseconds. SQLite gives back naive datetimes (stored
    as UTC), PostgreSQL aware ones: both hash the same."""
    if at.tzinfo is not None:
        at = at.astimezone(UTC).replace(tzinfo=None)
    return at.isoformat(timespec="microseconds")


# What ``json.dumps(..., sort_keys=True, ensure_ascii=False, separators=(",", ":"),
# default=str)`` builds for every call (the same output): made once, not per audit row.
_CANONICAL = json.JSONEncoder(sort_keys=True, ensure_ascii=False, separators=(",", ":"),
                              default=str)


def row_hash(prev_hash: str, *, chain: int, seq: int, at: datetime, actor: str, action: str,
             import_id: int | None, patient_id: int | None, reason: str | None,
             details: dict | None) -> str:
    """sha256 over the previous hash and a canonical JSON of the row's content."""
    content = _CANONICAL.encode(
        [chain, seq, canonical_time(at), actor, action, import_id, patient_id, reason,
         details])
    return hashlib.sha256((prev_hash + content).encode("utf-8")).hexdigest()


def _chain_of(event: AuditEvent) -> int:
    return event.patient_id if event.patient_id is not None else NO_DOSSIER


def _lock_chains(conn: Connection, chains: Sequence[int]) -> None:
    """PostgreSQL: take each chain's head for this transaction, in a fixed order (no
    deadlock between two appenders). SQLite: the transaction already holds the write lock."""
    if conn.dialect.name != "postgresql":
        return
    for chain in chains:
        conn.execute(text("SELECT pg_advisory_xact_lock(:a, :b)"),
                     {"a": 4_700_418, "b": chain % 2_147_483_647})


def _heads(conn: Connection, chains: Sequence[int]) -> dict[int, tuple[int, str]]:
    """Each chain's last (seq, hash); chains without rows are absent."""
    rows = conn.execute(_HEADS, {"chains": list(chains)})
    return {r.chain: (r.seq, r.hash) for r in rows}


# Built once, the chains as one expanding parameter: built per call with them as literals
# (a filing piece appends to about one chain per message), SQLAlchemy coerced each and
# rebuilt the statement, about 1.5 ms per piece of 100 messages.
_LAST = (select(audit_log.c.chain, func.max(audit_log.c.seq).label("seq"))
         .where(audit_log.c.chain.in_(bindparam("chains", expanding=True)))
         .group_by(audit_log.c.chain).subquery())
_HEADS = select(audit_log.c.chain, audit_log.c.seq, audit_log.c.hash).join(
    _LAST, and_(audit_log.c.chain == _LAST.c.chain, audit_log.c.seq == _LAST.c.seq))


def append(conn: Connection, events: Iterable[AuditEvent]) -> None:
    """Append events in the caller's transaction: the action and its trace commit together
    (or neither does)."""
    events = list(events)
    if not events:
        return
    chains = sorted({_chain_of(e) for e in events})
    _lock_chains(conn, chains)
    heads = _heads(conn, chains)
    rows = []
    for event in events:
        chain = _chain_of(event)
        seq, prev = heads.get(chain, (0, GENESIS))
        seq += 1
        digest = row_hash(prev, chain=chain, seq=seq, at=event.at, actor=event.actor,
                          action=event.action, import_id=event.import_id,
                          patient_id=event.patient_id, reason=event.reason,
                          details=event.details)
        heads[chain] = (seq, digest)
        rows.append({"at": event.at, "actor": event.actor, "action": event.action,
                     "import_id": event.import_id, "patient_id": event.patient_id,
                     "reason": event.reason, "details": event.details, "chain": chain,
                     "seq": seq, "prev_hash": prev, "hash": digest})
    bulk_insert(conn, audit_log, rows)
    _anchor(conn, [{"chain": chain, "seq": seq, "hash": digest}
                   for chain, (seq, digest) in sorted(heads.items())])


def _anchor(conn: Connection, heads: list[dict]) -> None:
    """Write the chains' new heads (insert, or update the row held): under the chain's lock
    (``_lock_chains``), in the transaction of the rows it anchors."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(audit_heads)
    conn.execute(stmt.on_conflict_do_update(
        index_elements=[audit_heads.c.chain],
        set_={"seq": stmt.excluded.seq, "hash": stmt.excluded.hash}), heads)


def record(conn: Connection, actor: str, action: str, **kwargs: object) -> None:
    """Append one event (see ``AuditEvent`` for the keyword arguments)."""
    append(conn, [AuditEvent(actor, action, **kwargs)])  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class Break:
    """Where a chain stops being intact."""

    chain: int
    seq: int | None
    row_id: int | None
    problem: str  # 'edited', 'missing row', 'unchained', 'reordered', 'missing tail', ...

    def describe(self) -> str:
        where = f"chain {self.chain}" + (f" seq {self.seq}" if self.seq is not None else "")
        row = f" (audit row {self.row_id})" if self.row_id is not None else ""
        return f"{where}{row}: {self.problem}"


@dataclass(slots=True)
class Verification:
    rows: int = 0
    chains: int = 0
    breaks: list[Break] = field(default_factory=list)
    digest: str = ""  # sha256 over every chain's end as read ("chain:seq:hash" lines)

    @property
    def ok(self) -> bool:
        return not self.breaks

    def heads_digest(self) -> str:
        """sha256 over every chain's end (chain, seq, hash), in chain order: what an
        operator keeps outside the store to compare with a later verification."""
        return self.digest


def verify(engine: Engine, *, chain: int | None = None, batch: int = 5000) -> Verification:
    """Recompute every chain (or one) from its first row; report each row whose hash, seq or
    link does not follow, and each chain whose end is not its anchor (``audit_heads``).
    Reads in batches: a store with millions of rows (and of dossiers: the chains' ends are
    compared ``COMPARE_EVERY`` chains at a time) verifies in bounded memory."""
    result = Verification()
    q = select(audit_log).order_by(audit_log.c.chain, audit_log.c.seq, audit_log.c.id)
    if chain is not None:
        q = q.where(audit_log.c.chain == chain)
    current: int | None = None
    expected_seq, prev = 0, GENESIS
    ends: dict[int, tuple[int, str]] = {}  # chains read to their end, not yet compared
    digest = hashlib.sha256()
    with engine.connect() as conn:
        def compare() -> None:
            result.breaks.extend(anchor_breaks(ends, _anchors(conn, sorted(ends))))
            for c, (s, h) in sorted(ends.items()):
                digest.update(f"{c}:{s}:{h}\n".encode("ascii"))
            ends.clear()

        for part in conn.execution_options(yield_per=batch).execute(q).partitions():
            for r in part:
                result.rows += 1
                if r.chain is None or r.seq is None or r.hash is None:
                    result.breaks.append(Break(-1, None, r.id, "unchained"))
                    continue
                if r.chain != current:
                    if current is not None:
                        ends[current] = (expected_seq, prev)
                        if len(ends) >= COMPARE_EVERY:
                            compare()
                    current, expected_seq, prev = r.chain, 0, GENESIS
                    result.chains += 1
                expected_seq += 1
                if r.seq != expected_seq:
                    result.breaks.append(Break(r.chain, r.seq, r.id, "missing row"))
                    expected_seq = r.seq
                if r.prev_hash != prev:
                    result.breaks.append(Break(r.chain, r.seq, r.id, "reordered"))
                digest_ = row_hash(r.prev_hash or "", chain=r.chain, seq=r.seq, at=r.at,
                                   actor=r.actor, action=r.action, import_id=r.import_id,
                                   patient_id=r.patient_id, reason=r.reason,
                                   details=r.details)
                if digest_ != r.hash:
                    result.breaks.append(Break(r.chain, r.seq, r.id, "edited"))
                if r.chain != (r.patient_id if r.patient_id is not None else NO_DOSSIER):
                    result.breaks.append(Break(r.chain, r.seq, r.id, "moved to another chain"))
                prev = r.hash
        if current is not None:
            ends[current] = (expected_seq, prev)
        compare()
        # anchors of chains that have no row left at all
        gone = select(audit_heads).where(~exists().where(audit_log.c.chain
                                                        == audit_heads.c.chain))
        if chain is not None:
            gone = gone.where(audit_heads.c.chain == chain)
        result.breaks.extend(anchor_breaks({}, {a.chain: (a.seq, a.hash)
                                                for a in conn.execute(gone)}))
    result.digest = digest.hexdigest()
    return result


def _anchors(conn: Connection, chains: Sequence[int]) -> dict[int, tuple[int, str]]:
    """The anchors (seq, hash) of these chains, read 500 at a time (bounded IN lists)."""
    found: dict[int, tuple[int, str]] = {}
    for start in range(0, len(chains), 500):
        found.update((a.chain, (a.seq, a.hash)) for a in conn.execute(
            select(audit_heads).where(audit_heads.c.chain.in_(chains[start:start + 500]))))
    return found


def anchor_breaks(ends: dict[int, tuple[int, str]],
                  anchors: dict[int, tuple[int, str]]) -> list[Break]:
    """Each chain's end as read (``ends``) against its anchor in ``audit_heads``."""
    found = []
    for chain in sorted(set(ends) | set(anchors)):
        end, anchor = ends.get(chain), anchors.get(chain)
        if anchor is None:
            found.append(Break(chain, end[0], None, "no anchor: audit_heads has no row for "
                               "this chain"))
        elif end is None:
            found.append(Break(chain, anchor[0], None, f"missing tail: the anchor says "
                               f"{anchor[0]} row(s), the chain has none"))
        elif end[0] < anchor[0]:
            found.append(Break(chain, end[0], None, f"missing tail: the chain ends at seq "
                               f"{end[0]}, the anchor says seq {anchor[0]}"))
        elif end[0] > anchor[0]:
            found.append(Break(chain, end[0], None, f"unanchored rows: the chain ends at seq "
                               f"{end[0]}, the anchor says seq {anchor[0]}"))
        elif end[1] != anchor[1]:
            found.append(Break(chain, end[0], None, "anchor mismatch: the chain's last hash "
                               "is not the anchor's"))
    return found


def iso_utc(at: datetime | None) -> str | None:
    """A stored instant as ISO text with its offset (SQLite gives it back naive, in UTC)."""
    if at is None:
        return None
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.isoformat()
