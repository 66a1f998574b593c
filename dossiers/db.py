"""Engine creation: one place that knows the SQLite and PostgreSQL particulars."""

from __future__ import annotations

import json
import logging
import os
import struct
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from json.encoder import c_make_encoder, encode_basestring_ascii
from operator import itemgetter
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Connection,
    Engine,
    Float,
    Select,
    Table,
    bindparam,
    create_engine,
    event,
    func,
    literal,
    select,
    text,
    update,
)
from sqlalchemy.engine import Dialect

log = logging.getLogger("dmp.store")


def normalize_url(url: str) -> str:
    """Plain 'postgresql://' URLs use psycopg 3 (the driver we ship), not psycopg2."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def make_engine(url: str) -> Engine:
    url = normalize_url(url)
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1] if "///" in url else ""
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record) -> None:  # noqa: ANN001
            # We issue BEGIN ourselves (below), not the driver.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            # WAL lets readers (CLI, API) work while the pipeline writes; FULL makes every
            # commit durable (fsync), which intake promises before any acknowledgement.
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute(f"PRAGMA wal_autocheckpoint={SAFETY_CHECKPOINT_PAGES}")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin_immediate(conn) -> None:  # noqa: ANN001
            # A deferred transaction that reads, then writes after another connection has
            # committed (the listener's intake beside the worker) fails at once with
            # "database is locked" (SQLITE_BUSY_SNAPSHOT), whatever the busy timeout.
            # Taking the write lock at BEGIN makes writers queue instead: in turn
            # (dossiers/write_turn.py), else SQLite's busy handler (timeout 30 s).
            turn = _turn_of(conn.connection)
            if turn is not None:
                turn.take()
            try:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            except BaseException:
                if turn is not None:
                    turn.give_back()
                raise

        if path and path != ":memory:" and not path.startswith("file:"):
            _take_turns(engine, path)
        return engine
    return create_engine(url, pool_pre_ping=True, connect_args=_postgres_connect_args(url))


# Seconds libpq may take to open a connection (TCP and the startup exchange). Without it an
# unreachable host (a firewall dropping packets, a server frozen mid-failover) held every
# connection attempt until the kernel gave up, minutes later: the listener's answers and the
# worker's retries waited that long instead of failing over to their backoff.
POSTGRES_CONNECT_TIMEOUT = 10


def _postgres_connect_args(url: str) -> dict[str, Any]:
    """libpq's connect_timeout, unless the URL sets its own (which wins)."""
    from sqlalchemy.engine import make_url

    if "connect_timeout" in make_url(url).query:
        return {}
    return {"connect_timeout": POSTGRES_CONNECT_TIMEOUT}


def _take_turns(engine: Engine, database: str) -> None:
    """Each pooled connection gets its place in the queue for the write lock (taken by the
    "begin" event above), given back once its COMMIT or ROLLBACK has returned: the
    dialect's own calls are wrapped, because SQLAlchemy's commit and rollback events come
    before them, when SQLite still holds the lock."""
    from dossiers.write_turn import WriteTurn

    @event.listens_for(engine, "connect")
    def _open_turn(_dbapi_conn, record) -> None:  # noqa: ANN001
        try:
            record.info["write_turn"] = WriteTurn(database)
            record.info["database"] = database
        except OSError as exc:  # a read-only directory: SQLite's own queue, as before
            log.warning("no write turns beside the store (%s): writers queue in SQLite",
                        exc.strerror)

    @event.listens_for(engine, "close")
    def _close_turn(_dbapi_conn, record) -> None:  # noqa: ANN001
        turn = record.info.pop("write_turn", None)
        if turn is not None:
            turn.close()

    dialect = engine.dialect
    commit, rollback = dialect.do_commit, dialect.do_rollback

    def give_back(connection: Any) -> None:  # noqa: ANN401 - the pool's proxied connection
        turn = _turn_of(connection)
        if turn is not None:
            turn.give_back()

    def do_commit(connection: Any) -> None:  # noqa: ANN401
        try:
            commit(connection)
        finally:
            give_back(connection)
        _checkpoint_if_due(connection)

    def do_rollback(connection: Any) -> None:  # noqa: ANN401
        try:
            rollback(connection)
        finally:
            give_back(connection)

    dialect.do_commit = do_commit  # type: ignore[method-assign]
    dialect.do_rollback = do_rollback  # type: ignore[method-assign]


# SQLite copies its write-ahead log into the database (a checkpoint, with an fsync) at the
# first commit that leaves the log longer than the committing connection's threshold: with
# SQLite's default of 1,000 pages (4 MB) that was nearly every filing commit, and often
# intake's, with a listener waiting to acknowledge. Processing's connection checkpoints past
# FILING_CHECKPOINT_PAGES (``replayable_commits``: about 8 % faster processing, bench/README);
# every other connection only past SAFETY_CHECKPOINT_PAGES, a safety net for a store where
# nothing is processed for a long time, so intake practically never pays for a checkpoint.
#
# SQLite runs that checkpoint inside COMMIT, so the write turn (dossiers/write_turn.py) was
# still held through it, 40 MB copied and synced, while the listener waited to acknowledge.
# Processing's checkpoint now runs once its turn is given back (``_checkpoint_if_due``, a
# PASSIVE one: it blocks no writer); the log's length is read from the wal-index header
# (https://www.sqlite.org/walformat.html, "the wal-index"). SQLite's own checkpoint stays as
# the safety net. (On this machine's MLLP benchmark the gain is within its noise: the
# listener's waits are mostly the filing pieces themselves, bench/README, stop 19.)
FILING_CHECKPOINT_PAGES = 10_000  # 40 MB of log
SAFETY_CHECKPOINT_PAGES = 50_000  # 200 MB
_WAL_INDEX_HEADER = struct.Struct("=48s48sI")  # two copies of WalIndexHdr, then nBackfill


def wal_frames_pending(database: str) -> int | None:
    """Frames of the write-ahead log not yet copied into the database (mxFrame minus
    nBackfill of the wal-index), or None when it cannot be read consistently."""
    try:
        fd = os.open(f"{database}-shm", os.O_RDONLY)
    except OSError:
        return None
    try:
        raw = os.pread(fd, _WAL_INDEX_HEADER.size, 0)
    finally:
        os.close(fd)
    if len(raw) < _WAL_INDEX_HEADER.size:
        return None
    first, second, backfilled = _WAL_INDEX_HEADER.unpack(raw)
    if first != second or first[12] != 1:  # being written, or not initialised
        return None
    (frames,) = struct.unpack_from("=I", first, 16)
    return max(0, frames - backfilled)


def _checkpoint_if_due(connection: Any) -> None:  # noqa: ANN401 - the pool's proxied connection
    """After a commit of processing's connection, with the write turn given back: a PASSIVE
    checkpoint when the log holds FILING_CHECKPOINT_PAGES frames or more. A failure is only
    logged: the log is checkpointed at a later commit, or by SQLite's safety net."""
    try:
        info = connection.info
    except (AttributeError, NotImplementedError):
        return
    past, database = info.get("checkpoint_past"), info.get("database")
    if past is None or database is None:
        return
    pending = wal_frames_pending(database)
    if pending is None or pending < past:
        return
    try:
        cursor = connection.cursor()
        try:
            cursor.execute("PRAGMA wal_checkpoint(PASSIVE)")
        finally:
            cursor.close()
    except Exception as exc:  # noqa: BLE001 - a checkpoint is never worth a failure
        log.warning("checkpoint of the store's log put off (%s)", type(exc).__name__)


@contextmanager
def replayable_commits(conn: Connection) -> Iterator[Connection]:
    """Commits on ``conn`` that need not reach the disk before returning: for work that is
    replayed if lost (processing: its input is archived and its ledger rows stay claimed
    until the commit that records the outcome; a commit lost in a power cut leaves them
    claimed, and they are processed again, with the same result). The databases write
    their log in order, so a later durable commit (intake's, before an ACK) makes every
    earlier one durable too: nothing acknowledged depends on these. On SQLite the fsync per
    commit costs more than the rows of a whole batch (WAL, synchronous=NORMAL instead of
    FULL; it can only change outside a transaction); on PostgreSQL, synchronous_commit=off
    for each transaction (SET LOCAL, see ``begin_replayable``)."""
    if conn.dialect.name != "sqlite":
        yield conn
        return
    dbapi = conn.connection.dbapi_connection
    info = conn.connection.info
    dbapi.execute("PRAGMA synchronous=NORMAL")
    if info.get("database") is not None:  # checkpoints after the write turn: see above
        info["checkpoint_past"] = FILING_CHECKPOINT_PAGES
    else:  # no write turns: SQLite's own, at the filing threshold
        dbapi.execute(f"PRAGMA wal_autocheckpoint={FILING_CHECKPOINT_PAGES}")
    try:
        yield conn
    finally:
        info.pop("checkpoint_past", None)
        try:
            dbapi.execute("PRAGMA synchronous=FULL")
            dbapi.execute(f"PRAGMA wal_autocheckpoint={SAFETY_CHECKPOINT_PAGES}")
        except Exception:  # the connection broke: dropped, never handed back relaxed
            conn.invalidate()


def begin_replayable(conn: Connection):  # noqa: ANN201
    """``conn.begin()``, with PostgreSQL's commit of this transaction not waiting for its
    WAL flush (see ``replayable_commits``, which the connection must be inside)."""
    transaction = conn.begin()
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SET LOCAL synchronous_commit TO OFF")
    return transaction


def write_turn_wanted(conn: Connection) -> bool:
    """Whether another connection waits for the write lock this one holds (SQLite; never on
    PostgreSQL, which locks rows, not the store): a long writer ends its transaction early
    for it (dossiers/write_turn.py)."""
    turn = _turn_of(conn.connection)
    return turn is not None and turn.wanted()


def _turn_of(connection: Any) -> Any:  # noqa: ANN401 - WriteTurn | None, imported lazily
    """The write turn of a pooled connection (None on PostgreSQL, for a store without lock
    files, and for a raw or ad-hoc connection, such as the one of the first connect)."""
    try:
        return connection.info.get("write_turn")
    except (AttributeError, NotImplementedError):
        return None


def create_schema(engine: Engine) -> None:
    """Bring the store to the current schema: Alembic migrations (``dossiers.migrate``), a
    single read of the version table when it is already there (called at every start)."""
    from dossiers.migrate import upgrade

    upgrade(engine)


def allocate_ids(conn: Connection, table: Table, n: int) -> list[int]:
    """``n`` new ids for ``table``, so that rows referring to each other can be written in
    one executemany. PostgreSQL: from the id column's sequence. SQLite: after the highest id,
    safe because every transaction here holds the write lock from its start (BEGIN
    IMMEDIATE) and rows of these tables are never deleted."""
    if n <= 0:
        return []
    if conn.dialect.name == "postgresql":
        return list(conn.execute(text(
            "SELECT nextval(pg_get_serial_sequence(:t, 'id')) FROM generate_series(1, :n)"),
            {"t": table.name, "n": n}).scalars())
    start = conn.execute(_highest_id(table)).scalar_one()
    return list(range(start + 1, start + n + 1))


@lru_cache(maxsize=16)
def _highest_id(table: Table) -> Select:
    """``SELECT coalesce(max(id), 0)`` of ``table``, built once: built for each call it cost
    about 0.4 ms of SQLAlchemy (the max itself is one step down the rowid tree), once per
    filing piece."""
    return select(func.coalesce(func.max(table.c.id), 0))


def bulk_insert(conn: Connection, table: Table, rows: list[dict],
                columns: list[str] | None = None) -> None:
    """Insert many rows inside the caller's transaction: the ``columns`` given (by default
    the keys of the first row, which every row must have; other keys are ignored).

    PostgreSQL: COPY, about ten times cheaper per row than an executemany of INSERTs through
    psycopg (which prepares and sends each row). SQLite: executemany (sqlite3's C loop).
    Both bypass SQLAlchemy's insert(), so the columns' scalar defaults are applied here."""
    if not rows:
        return
    columns = columns or list(rows[0])
    defaults = {c.name: c.default.arg for c in table.columns
                if c.name not in columns and c.default is not None and c.default.is_scalar}
    if defaults:
        columns = [*columns, *defaults]
        rows = [{**defaults, **row} for row in rows]
    if conn.dialect.name != "postgresql":
        _sqlite_executemany(conn, table, rows, columns)
        return
    values = itemgetter(*columns) if len(columns) > 1 else lambda row: (row[columns[0]],)
    _copy(conn, table, columns, map(values, rows))


def insert_values(conn: Connection, table: Table, columns: tuple[str, ...],
                  values: list[tuple]) -> None:
    """``bulk_insert`` of rows given as tuples in the order of ``columns`` (every column
    written: no defaults applied), for a hot writer that can build them directly: a dict per
    row, then its values picked out again, cost more than the tuple."""
    if not values:
        return
    if conn.dialect.name != "postgresql":
        sql, processors = _sqlite_statement(table, columns, conn.dialect)
        conn.exec_driver_sql(sql, _processed(values, processors))
        return
    _copy(conn, table, list(columns), values)


def _copy(conn: Connection, table: Table, columns: list[str], values: Iterable[tuple]) -> None:
    """PostgreSQL: COPY of value tuples in the order of ``columns`` (JSON values wrapped)."""
    from psycopg.types.json import Json

    json_columns = {c.name for c in table.columns if isinstance(c.type, JSON)}
    wrap = [c in json_columns for c in columns]
    cursor = conn.connection.dbapi_connection.cursor()
    names = ", ".join(f'"{c}"' for c in columns)
    with cursor.copy(f'COPY "{table.name}" ({names}) FROM STDIN') as copy:
        if not any(wrap):
            for row in values:
                copy.write_row(row)
            return
        for row in values:
            copy.write_row([Json(v) if w and v is not None else v
                            for v, w in zip(row, wrap, strict=True)])


def bulk_update(conn: Connection, table: Table, rows: list[dict], columns: list[str], *,
                key: str = "id", fixed: dict[str, Any] | None = None) -> None:
    """``UPDATE table SET column = row[column]... WHERE key = row[key]`` for each row, inside
    the caller's transaction, plus ``fixed``: the same SQL expression or value for every row
    (``attempts + 1``, None). SQLite: one executemany straight to sqlite3, as
    ``bulk_insert`` does (SQLAlchemy's executemany of an UPDATE builds each row's parameters
    at several times SQLite's cost). PostgreSQL: SQLAlchemy's executemany."""
    if not rows:
        return
    fixed = fixed or {}
    if conn.dialect.name != "sqlite":
        conn.execute(update(table).where(table.c[key] == bindparam("b__key")).values(
            {**{c: bindparam(f"b_{c}", type_=table.c[c].type) for c in columns}, **fixed}),
            [{"b__key": row[key], **{f"b_{c}": row[c] for c in columns}} for row in rows])
        return
    sql, processors = _sqlite_statement(table, (*columns, key), conn.dialect,
                                           for_update=True)
    constants = _set_constants(tuple(fixed.items()), conn.dialect)
    if constants:
        sql = sql.replace(" WHERE ", f", {constants} WHERE ", 1)
    conn.exec_driver_sql(sql, _converted(rows, [*columns, key], processors))


@lru_cache(maxsize=16)
def _set_constants(fixed: tuple[tuple[str, Any], ...], dialect: Dialect) -> str:
    """``"name" = value, ...`` for bulk_update's ``fixed``, as literal SQL. Cached: the
    ledger passes the same clause (``ledger._RELEASED``) for every piece, and compiling it
    cost about 0.6 ms each time (SQL expressions hash by identity: a new clause is compiled
    anew)."""
    return ", ".join(
        f'"{name}" = ' + str((value if hasattr(value, "compile") else literal(value))
                             .compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
        for name, value in fixed)


def _sqlite_executemany(conn: Connection, table: Table, rows: list[dict],
                        columns: list[str]) -> None:
    """One executemany of value lists straight to sqlite3, converted by the columns' own
    SQLAlchemy bind processors (so they read back exactly as if SQLAlchemy had written them:
    JSON text, timestamps, booleans). SQLAlchemy's own executemany spends more time building
    per-row parameters than SQLite spends inserting the rows."""
    sql, processors = _sqlite_statement(table, tuple(columns), conn.dialect)
    conn.exec_driver_sql(sql, _converted(rows, columns, processors))


def _converted(rows: list[dict], columns: list[str],
               processors: list[tuple[int, Callable]]) -> list[tuple]:
    """Each row's values of ``columns``, in order, through the bind processors.

    Column by column: the rows are transposed (``zip``, in C), only the processed columns
    are walked in Python, and transposed back; row by row, each row cost a list, a tuple and
    a loop over its processors. Over the calls of filing 2,000 ORU^R01: 54 instead of 60 us
    per message. Most of what is left is the JSON of ``details`` (about 2 us per entry)."""
    if not rows:
        return []
    values = itemgetter(*columns) if len(columns) > 1 else lambda row: (row[columns[0]],)
    return _processed(list(map(values, rows)), processors)


def _processed(values: list[tuple], processors: list[tuple[int, Callable]]) -> list[tuple]:
    """Value tuples with the processed columns converted (``_converted``)."""
    if not processors or not values:
        return values
    table: list = list(zip(*values, strict=True))
    for i, process in processors:
        table[i] = _column_converted(table[i], process)
    return list(zip(*table, strict=True))


_UNSEEN = object()


def _column_converted(values: tuple, process: Callable) -> list:
    """``process`` of each value; a value that is the very object of the one before (the
    batch's timestamp in every row, None) is converted once."""
    out: list = []
    append = out.append
    last, converted = _UNSEEN, None
    for value in values:
        if value is not last:
            converted = process(value)
            last = value
        append(converted)
    return out


# Column types whose values sqlite3 binds as SQLAlchemy would have converted them: a bool is
# an int to sqlite3 (True binds 1, as Boolean's processor gives), and an int or float lands as
# REAL in a Float column either way. Their processors cost the filing process a Python call per
# value (four of the seven an entry row had) for the same stored bytes.
_BOUND_AS_IS = (Boolean, Float)


@lru_cache(maxsize=64)  # (table, columns) pairs of one or two dialects
def _sqlite_statement(table: Table, columns: tuple[str, ...], dialect: Dialect,
                      for_update: bool = False) -> tuple[str, list[tuple[int, Callable]]]:
    """The INSERT of ``columns`` (or the UPDATE of all but the last, by the last) and their
    bind processors, built once: per call they cost the listener's intake (a group of a
    few messages) more than SQLite's insert."""
    processors = [(i, _json_text(p, dialect) if isinstance(table.c[c].type, JSON) else p)
                  for i, c in enumerate(columns)
                  if not isinstance(table.c[c].type, _BOUND_AS_IS)
                  and (p := table.c[c].type.dialect_impl(dialect).bind_processor(dialect))
                  is not None]
    if for_update:
        sets = ", ".join(f'"{c}" = ?' for c in columns[:-1])
        return f'UPDATE "{table.name}" SET {sets} WHERE "{columns[-1]}" = ?', processors
    names = ", ".join(f'"{c}"' for c in columns)
    sql = f'INSERT INTO "{table.name}" ({names}) VALUES ({", ".join("?" * len(columns))})'
    return sql, processors


_PROBE = {"b": "\u00e9\u4e2d", "a": [1.5, -0.0, None, True, 10**20, {"x": "\n\"'"}]}


def _json_text(process: Callable[[Any], Any], dialect: Dialect) -> Callable[[Any], Any]:
    """A JSON column's bind processor, with its common values (a plain dict: ``details``,
    ``masking``; a plain list: an outcome's ``warnings``) encoded by one reused C encoder.
    ``json.dumps``, which SQLAlchemy calls, sets up a new encoder for each value: most of the
    cost of a small dict. Anything else (None, values the encoder refuses) goes to
    SQLAlchemy's processor; so does every value unless the dialect serializes with plain
    ``json.dumps`` (the probe checks the output)."""
    if c_make_encoder is None or getattr(dialect, "_json_serializer", None) is not None:
        return process
    markers: dict[int, Any] = {}
    encode = c_make_encoder(markers, json.JSONEncoder().default, encode_basestring_ascii, None,
                            ": ", ", ", False, False, True)

    def encoded(value: Any) -> Any:  # noqa: ANN401
        if type(value) is dict or type(value) is list:  # a list: an outcome's warnings
            try:
                return "".join(encode(value, 0))
            except Exception:  # noqa: BLE001 - SQLAlchemy's processor raises it as before
                markers.clear()
        return process(value)

    same = all(encoded(probe) == process(probe) == json.dumps(probe)
               for probe in (_PROBE, _PROBE["a"]))
    return encoded if same else process
