"""Taking turns at SQLite's single write lock, across processes, without its busy sleeps.

Every transaction on the SQLite store starts with BEGIN IMMEDIATE (dossiers/db.py), so the
listener's intake, `serve`'s workers, the CLI and the API queue for one lock. SQLite's own
queue is its busy handler: a waiting connection sleeps 1, 2, 5 ... up to 100 ms between tries,
whenever the lock was freed, and a process that commits and begins again at once takes it
back before any sleeper wakes. Measured with the MLLP listener beside a filing worker: the
listener spent half its time waiting (ACK p99 100-140 ms, some over 1 s), for transactions
of 30-150 ms (bench/README, "Where the MLLP p99 goes").

Here each connection first takes its turn, then BEGIN IMMEDIATE, which then nearly always
succeeds at once. A turn is two ``flock`` locks on files beside the database:
- ``<db>-writer.lock``, held from before BEGIN to after COMMIT/ROLLBACK;
- ``<db>-queue.lock``, held only while waiting for the first: whoever holds it is next. A
  holder that ends its transaction and begins another finds the queue taken by the one
  waiting, and goes after it. Two writers alternate instead of one starving the other.

Waiting polls (0.1 ms doubling up to 1 ms): a blocking ``flock`` cannot time out. After
``TIMEOUT`` seconds the wait gives up and BEGIN IMMEDIATE falls back to SQLite's busy handler
(30 s, then "database is locked", a store outage to the callers). Locks held by a process
end with it, even SIGKILLed, so a crash never leaves the store locked.
"""

from __future__ import annotations

import fcntl
import os
import time

TIMEOUT = 30.0
_FIRST_POLL = 0.0001
_LAST_POLL = 0.001


class WriteTurn:
    """One connection's place in the queue for the write lock (its own open files: flock
    locks belong to an open file, so two connections of one process queue like two
    processes)."""

    def __init__(self, database: str) -> None:
        self._writer = os.open(f"{database}-writer.lock", os.O_RDWR | os.O_CREAT, 0o640)
        try:
            self._queue = os.open(f"{database}-queue.lock", os.O_RDWR | os.O_CREAT, 0o640)
        except OSError:
            os.close(self._writer)
            raise
        self.held = False

    def take(self, timeout: float = TIMEOUT) -> bool:
        """Wait for the turn; False when ``timeout`` passed first (the caller then waits
        SQLite's way)."""
        deadline = time.monotonic() + timeout
        if not _wait(self._queue, deadline):  # the queue first, even when the lock is free:
            return False                  # one waiting for it is served before us
        try:
            self.held = _wait(self._writer, deadline)
        finally:
            fcntl.flock(self._queue, fcntl.LOCK_UN)
        return self.held

    def wanted(self) -> bool:
        """Whether another connection is waiting for the turn (it holds the queue)."""
        if _try(self._queue):
            fcntl.flock(self._queue, fcntl.LOCK_UN)
            return False
        return True

    def give_back(self) -> None:
        """After COMMIT or ROLLBACK (and harmless when not held)."""
        if self.held:
            self.held = False
            fcntl.flock(self._writer, fcntl.LOCK_UN)

    def close(self) -> None:
        for fd in (self._writer, self._queue):
            try:
                os.close(fd)
            except OSError:
                pass


def _try(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


def _wait(fd: int, deadline: float) -> bool:
    poll = _FIRST_POLL
    while not _try(fd):
        if time.monotonic() >= deadline:
            return False
        time.sleep(poll)
        poll = min(poll * 2, _LAST_POLL)
    return True
