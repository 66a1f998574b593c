"""Where an enhanced-mode application ACK goes: on the sender's connection, to its declared
return route (queued durably until sent), or held for the operator.

HL7 v2.5 2.10 (enhanced mode) has the application acknowledgement sent by the receiving
application as a new message; the engines labs run (Mirth/NextGen Connect, Rhapsody,
Cloverleaf, InterSystems) take it on an inbound channel of their own (another host/port)
while their sending channel, a request/response loop, reads exactly ONE reply per message on
its connection. A second frame there (our application ACK after the commit ACK) was read as
the reply to its next message, and every later ACK was one message late. So, per source:

- ``ack_route`` declared: the application ACK is written to the outbox (a file per ACK under
  ``$DMP_HOME/application-acks/queued/<source>/``, fsynced) and sent from there by an MLLP
  client (``connectors.mllp.ack_sender``) with retries; a file is removed once sent, so an
  ACK not yet delivered survives a restart. Nothing of it goes on the connection.
- ``ack_same_connection``: the sender reads both replies (@medplum/hl7, node-hl7-client):
  both frames on the connection, as before.
- neither: when the commit ACK was the reply on the connection, the application ACK is
  held (a file under ``held/<source>/``, a warning naming the import, ``imports show``),
  not sent. When no commit ACK was sent (MSH-15 NE, or its condition not met), the
  application ACK is the one reply: sent on the connection, as before.

The ledger already holds each message's outcome, which the ACK reports; the outbox holds
what it does not: that an ACK is owed, its exact bytes, and whether it has left. Files, not
a table: no migration, and the same fsync-then-rename the archive's local writes rely on.
Batches are answered by one frame holding all their ACKs (2.10.3.3): not routed here.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from hashlib import sha256
from pathlib import Path

from pipelines.logs import Throttle
from pipelines.settings import Source

log = logging.getLogger("dmp.acknowledge")

QUEUED, HELD = "queued", "held"
OUTBOX_DIR = "application-acks"
_SAFE = re.compile(r"[A-Za-z0-9_.-]{1,80}")
_NAME = re.compile(r"^(\d{20})-(\d+)\.hl7$")
_held = Throttle(window_seconds=60.0)
HELD_DAYS = 30  # days a held application ACK is kept (``AckOutbox.prune_held``)


def _folder(source: str) -> str:
    """A source id as a folder name: itself when plain, else a digest of it."""
    return source if _SAFE.fullmatch(source) and source not in (".", "..") \
        else "s-" + sha256(source.encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class OwedAck:
    """An application ACK in the outbox: for which import, in which state, where."""

    import_id: int
    state: str  # queued (to be sent to the route) or held (no route: kept, not sent)
    source: str
    path: Path


class AckOutbox:
    """The application ACKs owed to senders, one file each: ``<state>/<source>/<n>-<import
    id>.hl7`` (n: nanoseconds, the order they are sent in)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._listeners: list[Callable[[str], None]] = []
        self._lock = threading.Lock()
        self._last = 0

    def on_queued(self, callback: Callable[[str], None]) -> None:
        """``callback(source)`` after an ACK is queued for ``source`` (the sender wakes)."""
        self._listeners.append(callback)

    def put(self, state: str, source: str, import_id: int, ack: bytes) -> Path:
        """Write one ACK durably (fsync of the file, rename, fsync of its folder)."""
        folder = self.root / state / _folder(source)
        folder.mkdir(parents=True, exist_ok=True)
        with self._lock:  # names strictly increasing, hence the order of sending
            self._last = max(self._last + 1, time.time_ns())
            stamp = self._last
        path = folder / f"{stamp:020d}-{int(import_id)}.hl7"
        tmp = path.with_suffix(".tmp")
        with tmp.open("wb") as fh:
            fh.write(ack)
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(path)
        _sync_folder(folder)
        if state == QUEUED:
            for callback in self._listeners:
                callback(source)
        return path

    def queued(self, source: str) -> list[Path]:
        """The ACKs still to send to ``source``'s route, oldest first."""
        folder = self.root / QUEUED / _folder(source)
        try:
            return sorted(p for p in folder.iterdir() if _NAME.match(p.name))
        except FileNotFoundError:
            return []

    def sent(self, path: Path) -> None:
        """``path`` has been written to its route: no longer owed."""
        path.unlink(missing_ok=True)
        _sync_folder(path.parent)

    def prune_held(self, days: float = HELD_DAYS) -> int:
        """Remove the held ACKs older than ``days`` (a sender asking AL/AL without a route
        holds one per message: kept for the operator to look at, not for ever)."""
        limit = time.time_ns() - int(days * 86400e9)
        removed = 0
        for path in (self.root / HELD).glob("*/*.hl7"):
            m = _NAME.match(path.name)
            if m and int(m.group(1)) < limit:
                path.unlink(missing_ok=True)
                removed += 1
        return removed

    def find(self, import_id: int) -> list[OwedAck]:
        """The ACKs of one import still in the outbox (for ``imports show``)."""
        found = []
        for state in (QUEUED, HELD):
            for path in sorted((self.root / state).glob(f"*/*-{int(import_id)}.hl7")):
                m = _NAME.match(path.name)
                if m and int(m.group(2)) == import_id:
                    found.append(OwedAck(import_id, state, path.parent.name, path))
        return found


def _sync_folder(folder: Path) -> None:
    """A rename or an unlink made durable (a folder's fsync; not on every system)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def outbox_of(home: Path) -> AckOutbox:
    return AckOutbox(home / OUTBOX_DIR)


def msa_code(ack: bytes) -> str:
    """MSA-1 of an ACK we built (for the log: a code, no content)."""
    for line in ack.split(b"\r"):
        if line.startswith(b"MSA") and len(line) > 4:
            return line[4:].split(line[3:4], 1)[0].decode("ascii", "replace")[:2]
    return ""


def place_application_acks(sources: tuple[Source, ...], outbox: AckOutbox, frames: list,
                           now: list[list[bytes]], later: list[list[bytes]],
                           blocks: frozenset[bytes]) -> list[list[bytes]]:
    """What of each frame's application ACKs (``later``) goes on its connection; the rest
    is queued for the source's route or held (module doc). ``frames``: (source id, import
    id, answered on the connection whatever the source: a batch, an original-mode message)
    per frame; ``now``: what the connection was sent already (``blocks``:
    MLLP release 2 blocks, which are no HL7 reply)."""
    by_id = {s.id: s for s in sources}
    out = []
    for (source_id, import_id, fixed), sent, acks in zip(frames, now, later, strict=True):
        source = by_id.get(source_id)
        if not acks or fixed or import_id is None or (source and source.ack_same_connection):
            out.append(acks)
            continue
        if source is not None and source.ack_route is not None:
            state = QUEUED
        elif any(a not in blocks for a in sent):  # the commit ACK was its one reply
            state = HELD
        else:
            out.append(acks)
            continue
        for ack in acks:
            try:
                outbox.put(state, source_id, import_id, ack)
            except OSError as exc:  # the outcome stays on the ledger; the ACK is lost
                log.error("application ACK of import %s (source %s) could not be written "
                          "to the outbox: %s", import_id, source_id, type(exc).__name__)
                continue
            if state == HELD:
                _log_held(source_id, import_id, msa_code(ack))
        out.append([])
    return out


def _log_held(source: str, import_id: int, code: str) -> None:
    """One warning a minute per source at most (an AL/AL sender sends all day)."""
    now, held = _held.allow(source)
    if now:
        log.warning("application ACK %s of import %s (source %s) held, not sent: the commit "
                    "ACK was the reply on the connection and no application_ack_route is "
                    "declared for the source%s", code, import_id, source,
                    f" ({held} more held since the last such line)" if held else "")


_MEANINGS = {QUEUED: "queued for the source's application_ack_route, not yet sent",
             HELD: "not sent: the commit ACK was the reply on the connection and the source "
                   "declares no application_ack_route"}


def application_acks(home: Path, import_id: int) -> list[dict]:
    """What ``imports show`` says of an import's application ACKs still in the outbox: its
    MSA-1, queued or held, and what that means (an ACK sent leaves the outbox)."""
    return [{"state": owed.state, "code": msa_code(_read_or_empty(owed.path)),
             "meaning": _MEANINGS[owed.state], "file": str(owed.path)}
            for owed in outbox_of(home).find(import_id)]


def _read_or_empty(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""
