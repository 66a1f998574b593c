"""Watched drop folders: files dropped in a folder are taken once, handed to intake, then moved
aside. Nothing is ever deleted; a connector never parses (CDA, PDF and HL7v2 files alike).

Layout inside a watched folder (everything on the folder's own filesystem, so every move is a
``rename``):

    <folder>/...                         dropped files, subfolders too (``recursive``, default)
    <folder>/.claimed/<poller>/.lock     held (flock) by the live poller owning that claim folder
    <folder>/.claimed/<poller>/<n>/<rel> taken by that poller, not yet recorded by intake
    <folder>/done/<rel>                  recorded: bytes archived and ledger row committed
    <folder>/failed/<rel>                refused (too large, unreadable, a link, not a file...)
    <folder>/failed/<rel>.error.txt      why, in codes and sizes (no patient data)

One poll:

1. Claim folders of pollers that are gone (their flock is free: a crash, a kill) are adopted,
   and every file in a claim folder held by this poller is taken again first.
2. The folder is scanned. Hidden names (``.x``), the top-level ``done``/``failed`` folders
   (a file dropped under either name is taken like any other),
   temporary upload names (``*.part``, ``*.tmp``, ``*.crdownload``, ``*.filepart``,
   ``*.partial``, ``*~``), Office owner files (``~$x``), Explorer's ``Thumbs.db`` and
   ``desktop.ini``, and the folders of a NAS or of Windows (``#recycle``, ``@eaDir``,
   ``~snapshot``, ``$RECYCLE.BIN``... see connectors/files.py) are skipped. A file is *settled*
   when it was seen unchanged (size, mtime, inode, ctime, allocated blocks: a Windows copy
   over SMB sets the final size first and then fills the file, and a copy keeping the
   original's mtime leaves that still; any write moves ctime) by scans at least
   ``settle_seconds`` apart and its mtime is at least ``settle_seconds`` old (an empty file:
   ``EMPTY_SETTLE_SECONDS``, its writer may not have begun); a poller's
   first poll scans, waits ``settle_seconds`` and scans again. A settled file its writer
   holds locked, or holds open for writing on this host (sftp-server, smbd), is left until
   it lets go.
3. Settled files are claimed by renaming them into this poller's claim folder: ``rename`` is
   atomic, so of two pollers only one gets a file (the other's rename finds nothing).
4. Claimed files are read (``O_NOFOLLOW``) and handed to ``intake`` in groups (one archive sync,
   one commit); once it has returned they move to ``done/`` (same relative path; a name already
   there gets ``.1``, ``.2``... before its extension, a folder name held there by a file or
   a link gets ``.1``, ``.2``...: links there are never followed). Refused files are
   recorded by intake as failed imports (code ``FOLDER_*``, the first 64 KiB archived for a
   file over ``max_bytes``) and moved to ``failed/`` with a ``.error.txt``.
5. When intake raises because the archive or the store is down, or the folder's share stops
   answering while a claimed file is read (EHOSTDOWN, ETIMEDOUT, ESTALE...: SHARE_DOWN), the
   files stay claimed and the poll stops; the next poll takes them again first.

Symbolic links are never followed (a link is moved to ``failed/`` as it is: the link, not its
target) and the walk does not enter linked folders. Names are recorded as the file system gives
them (control characters included; bytes that are not UTF-8 as ``\\xNN``). A crash between
intake and the move to ``done/`` takes the file again after restart: intake records it as a
byte-identical repeat, nothing is filed twice. A subfolder the service cannot list (no read
or search permission) is a poll error: its files would otherwise never be taken, unsaid.

Several pollers may watch the same folder (threads, processes, hosts whose file system honours
``flock``, e.g. local disks and NFSv4): each file is taken once. A file system that refuses
locks (NFSv3 without its lock service: ENOLCK) is a poll error saying so; nothing is claimed.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import re
import secrets
import signal
import stat
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from connectors.files import FILE_NAME_MAX, PEER_MAX, is_temporary, shown
from pipelines.archive import ArchiveError
from pipelines.faults import fault_point
from pipelines.intake import IntakeResult, Received, intake
from pipelines.settings import FolderSource

log = logging.getLogger("dmp.folder")

CLAIMED, DONE, FAILED = ".claimed", "done", "failed"
INTAKE_CHUNK = 200  # files per intake call: one archive sync and one commit each
CHUNK_BYTES = 64 * 1024 * 1024  # and at most this many bytes read per call
HEAD_KEPT = 65536  # of a file over max_bytes, the bytes archived with its refusal
# What a network file system answers when its server stops answering, not a fault of the
# file: a CIFS/SMB mount reconnecting (EHOSTDOWN, ECONNRESET...), a soft NFS mount timing out
# (ETIMEDOUT), an NFS server whose export came back with other file handles (ESTALE). A file
# claimed and then read with one of these is left claimed (taken again at the next poll).
SHARE_DOWN = frozenset({errno.EHOSTDOWN, errno.EHOSTUNREACH, errno.ENETDOWN, errno.ENETUNREACH,
                        errno.ENOTCONN, errno.ECONNRESET, errno.ECONNABORTED, errno.ETIMEDOUT,
                        errno.ESTALE})
# An empty file is refused only once it has stayed empty this long (by our observation or its
# mtime), settle_seconds if longer: a scanner writing to the share (an MFP's scan-to-folder),
# or a Windows client whose copy stalls, creates the file and writes its first byte later,
# holding it open through smbd, which takes no lock we could see. Refused at the first
# settled poll, it was moved to failed/ while its writer went on filling it there: the
# report in failed/, the ledger saying 'empty'.
EMPTY_SETTLE_SECONDS = 60.0
# An empty file is refused, not processed: its sender wrote nothing, or created it and had not
# begun writing (it belongs in failed/ for someone to look at, not in done/); processed, every
# later empty file of the source would be a 'duplicate' of the first, out of the failures list.
EMPTY_FILE = ("FOLDER_EMPTY_FILE", "the file is empty (0 bytes): its sender wrote nothing in "
              "it, or had not begun writing; it is in failed/")


@dataclass
class PollResult:
    """What one poll of one source did."""

    source: str
    taken: int = 0  # files or objects recorded by intake (moved to done/ or failed/, tagged)
    refused: int = 0  # of which refused (failed/, tagged refused)
    message_ids: list[int] = field(default_factory=list)  # ledger rows to process
    batch_ids: list[int] = field(default_factory=list)
    pending: int = 0  # claimed but not recorded (store down): taken again at the next poll
    error: str | None = None  # why the poll stopped early (no patient data)

    def add(self, results: list[IntakeResult]) -> None:
        for res in results:
            self.message_ids.extend(res.message_ids)
            if res.batch_id is not None:
                self.batch_ids.append(res.batch_id)


def is_outage(exc: BaseException) -> bool:
    """An error of the archive or the store (retry later), not of the input."""
    from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError, TimeoutError

    return isinstance(exc, ArchiveError | OperationalError | InterfaceError | DisconnectionError
                      | TimeoutError | OSError)


def outage_text(exc: BaseException) -> str:
    """One line for logs and PollResult.error: our archive messages, else the type only (a
    database error's text can hold statement parameters, i.e. file names)."""
    if isinstance(exc, ArchiveError):
        return f"archive unavailable: {exc}"
    return f"store or archive unavailable ({type(exc).__name__})"


class ShareDown(Exception):
    """The folder's file system stopped answering while a claimed file was read."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass
class Claim:
    path: Path  # where it is now, under .claimed/<poller>/<n>/
    rel: str  # its path relative to the watched folder ('/'-separated)
    received_at: datetime


@dataclass
class _Seen:
    size: int
    mtime_ns: int
    ino: int
    # Also watched: any write moves ctime and a sparse file's allocated blocks, when size and
    # mtime stand still (an SMB copy that sets the final size first, then fills it; a sender
    # that restores the original mtime as it writes)
    ctime_ns: int
    blocks: int
    since: float  # monotonic time of the first scan that saw it in this state
    scan: int  # the number of that scan
    regular: bool = True  # a regular file (only those are opened before they are claimed)
    locked: bool = False  # found locked by its writer (logged once)


class FolderPoller:
    """Polls one declared folder; ``poll()`` is synchronous (serve runs it in a thread)."""

    def __init__(self, source: FolderSource, engine, archive, *,  # noqa: ANN001
                 name: str = "poller", on_intake: Callable[[], None] | None = None,
                 stop_event: threading.Event | None = None,
                 max_files: int = 5000, clock: Callable[[], float] = time.monotonic) -> None:
        self.source = source
        self.engine, self.archive = engine, archive
        self.root = Path(source.path)
        self.claimed_root = self.root / CLAIMED
        self.name = re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[:60] or "poller"
        self.on_intake = on_intake
        self.stop_event = stop_event or threading.Event()
        self.max_files = max_files  # new files claimed per poll (a poll ends in bounded time)
        self._clock = clock
        self._seen: dict[str, _Seen] | None = None  # None: never scanned
        self._scans = 0
        self._current: Path | None = None  # this poll's claim folder
        self._held: dict[Path, int] = {}  # claim folders this poller holds -> lock fd
        self._own: Path | None = None
        self._recorded: dict[Path, tuple[str, str | None]] = {}  # intake done, move pending
        self._other_fs = 0  # files of this poll on a mount inside the folder (EXDEV)
        self._unlisted = 0  # subfolders the last scan could not list (their files not seen)
        self._unlistable: set[str] = set()  # and why (strerror)
        # this poll: settled files the service may not open (EACCES), and their modes/owners
        self._denied = 0
        self._denied_why: set[str] = set()
        self._was_mount = False  # the folder was seen a mount point (a share mounted on it)
        self._dev: int | None = None  # its file system then (st_dev)

    # -- the poll ---------------------------------------------------------------------------
    def poll(self) -> PollResult:
        """One pass: claims left from before, then the files settled since the last scan.
        Problems of the folder or the store end up in ``result.error`` (nothing lost)."""
        result = PollResult(self.source.id)
        self._other_fs = 0
        self._denied, self._denied_why = 0, set()
        try:
            root = os.stat(self.root)
            if not stat.S_ISDIR(root.st_mode):
                raise NotADirectoryError(errno.ENOTDIR, "not a directory")
            self._check_mount(root)
            self.claimed_root.mkdir(exist_ok=True)
            self._adopt()
            # 1. what was claimed before (by us, or by a poller that is gone) goes first
            if self._take(list(self._claims()), result):
                self._take_new(result)
            if self._other_fs and result.error is None:
                result.error = (f"folder source {self.source.id}: {self._other_fs} file(s) on "
                                f"another file system than the folder (a mount inside it) "
                                f"cannot be claimed; left in place (mount it outside this "
                                f"folder and declare it as a folder source of its own)")
                log.error("%s", result.error)
            if self._unlisted and result.error is None:
                # a sender's subfolder the service may not read (an SFTP chroot made 0700 for
                # its user): its files would never be taken while the poll looked healthy
                result.error = (f"folder source {self.source.id}: {self._unlisted} "
                                f"subfolder(s) cannot be listed "
                                f"({', '.join(sorted(self._unlistable))}); the files in them "
                                f"are not taken (give the service read and search permission)")
                log.error("%s", result.error)
            if self._denied and result.error is None:
                result.error = self._denied_error()
                log.error("%s", result.error)
        except OSError as exc:
            result.error = (f"folder source {self.source.id}: folder unusable "
                            f"({exc.strerror or type(exc).__name__})")
            log.error("%s", result.error)
        finally:
            self._tidy()
        return result

    def _check_mount(self, root: os.stat_result) -> None:
        """A share mounted on the folder that goes away (unmounted, an automount expired, a
        lazy unmount after the server was lost) leaves the empty local folder under it: the
        poll found nothing and said nothing, made its claim folder on the local disk, and
        the lab's files piled up unseen. A folder seen a mount point that no longer is one is
        now a poll error, and nothing is written there. When the share is back (another file
        system: a new st_dev), the claim folders held on the old one are let go and locked
        again on the new one (adopted when their lock is free)."""
        if not os.path.ismount(self.root):
            if self._was_mount:
                raise OSError(errno.ENODEV, "it was a mount point and is not one now: the "
                                            "share mounted on it is gone; nothing is taken "
                                            "or written there until it is mounted again")
            return
        if self._dev is not None and root.st_dev != self._dev and self._held:
            log.warning("folder source %s: the share mounted on the folder was mounted again; "
                        "its claim folders are locked again", self.source.id)
            for fd in self._held.values():
                with contextlib.suppress(OSError):
                    os.close(fd)
            self._held.clear()
            self._own = self._current = None
        self._was_mount, self._dev = True, root.st_dev

    def _take_new(self, result: PollResult) -> None:
        if self._seen is None:  # first poll: two scans settle_seconds apart
            self._scan()
            if self.stop_event.wait(self.source.settle_seconds):
                return
        settled = self._settled(self._scan())
        # a file dropped as 'done' or 'failed' first: until it is gone done/ cannot be made
        settled.sort(key=lambda item: item[0] not in (DONE, FAILED))
        batch: list[Claim] = []
        size = 0
        for rel, seen in settled[:self.max_files]:
            if self.stop_event.is_set():
                break
            if seen.regular and self._in_use(rel, seen):
                continue
            claim = self._claim(rel, seen)
            if claim is None:
                continue
            batch.append(claim)
            size += seen.size
            if len(batch) >= INTAKE_CHUNK or size >= CHUNK_BYTES:
                if not self._take(batch, result):
                    return
                batch, size = [], 0
        if batch:
            self._take(batch, result)

    # -- scanning -------------------------------------------------------------------------
    def scan(self) -> None:
        """Look at the folder without taking anything (the next poll compares with this)."""
        self._scan()

    def _scan(self) -> dict[str, _Seen]:
        """Every candidate file (relative path -> state); remembers them for the next scan."""
        now = self._clock()
        self._scans += 1
        self._unlisted, self._unlistable = 0, set()
        previous = self._seen or {}
        current: dict[str, _Seen] = {}
        for rel, st in self._walk():
            before = previous.get(rel)
            state = (st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns, st.st_blocks)
            if before is not None and (before.size, before.mtime_ns, before.ino,
                                       before.ctime_ns, before.blocks) == state:
                current[rel] = before
            else:
                current[rel] = _Seen(*state, since=now, scan=self._scans,
                                     regular=stat.S_ISREG(st.st_mode))
        self._seen = current
        return current

    def _walk(self) -> Iterator[tuple[str, os.stat_result]]:
        stack = [("", self.root)]
        while stack:
            prefix, folder = stack.pop()
            try:
                entries = sorted(os.scandir(folder), key=lambda e: e.name)
            except FileNotFoundError:
                if folder == self.root:
                    raise
                continue  # removed by its sender meanwhile
            except OSError as exc:
                if folder == self.root:
                    raise
                self._unlistable.add(exc.strerror or type(exc).__name__)
                self._unlisted += 1
                continue
            subfolders = []
            for entry in entries:
                name = entry.name
                if is_temporary(name):
                    continue
                if not prefix and name in (DONE, FAILED) and _is_folder(entry):
                    continue  # ours (a folder, or a link to one); a file so named was dropped
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError:
                    continue  # gone meanwhile
                if stat.S_ISDIR(st.st_mode):
                    if self.source.recursive:
                        subfolders.append((f"{prefix}{name}/", Path(entry.path)))
                    continue
                yield prefix + name, st
            stack.extend(reversed(subfolders))

    def _settled(self, scan: dict[str, _Seen]) -> list[tuple[str, _Seen]]:
        """Files unchanged for settle_seconds by our clock, across two scans at least, and not
        modified in the last settle_seconds by their mtime (one in the future is judged by our
        observation alone: clock skew on a shared file system)."""
        settle = self.source.settle_seconds
        now, wall = self._clock(), time.time_ns()
        ready = []
        for rel, seen in scan.items():
            if seen.scan == self._scans or now - seen.since < settle:
                continue  # first seen by this scan, or not for long enough
            age = (wall - seen.mtime_ns) / 1e9
            if 0 <= age < settle:
                continue
            if seen.regular and seen.size == 0 and not _empty_for_long(seen, now, age, settle):
                continue  # its writer may not have begun: left until it has stayed empty
            ready.append((rel, seen))
        ready.sort(key=lambda item: (item[1].mtime_ns, item[0]))  # oldest first
        return ready

    # -- claiming -------------------------------------------------------------------------
    def _in_use(self, rel: str, seen: _Seen) -> bool:
        """A settled file its writer still holds locked (flock or fcntl: programs that lock
        what they write) or open for writing on this host (sftp-server, smbd: no lock) is
        left where it is: a writer that stalled longer than settle_seconds may go on
        writing. Logged once per file."""
        try:
            fd = os.open(self.root / rel, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK
                         | os.O_CLOEXEC)
        except PermissionError:
            self._not_ours_to_read(rel)
            return True  # left in place, looked at again at every poll
        except OSError:
            return False  # gone, or unreadable: the claim and the read say what it is
        try:
            locked = _locked(fd)
        finally:
            os.close(fd)
        if locked and not seen.locked:
            seen.locked = True
            log.info("folder source %s: a settled file is locked or held open for writing by "
                     "its writer; left in place until its writer lets go", self.source.id)
        return locked

    def _not_ours_to_read(self, rel: str) -> None:
        """A settled file the service may not open (EACCES): an SFTP server writing with
        its user's umask 077 makes every upload 0600, its owner's alone. Such a file was
        claimed, recorded as a failed import 'cannot be read (EACCES: Permission denied)'
        with no bytes, and moved to failed/: the report out of the way, an admin left to
        find the cause from an OS error. Now it is left in place, unclaimed and unrecorded,
        and the poll's error says how many and why (mode and owner, never the name): once
        its permission is fixed it is taken when settled again (a chmod moves its ctime)."""
        self._denied += 1
        with contextlib.suppress(OSError):
            st = os.lstat(self.root / rel)
            self._denied_why.add(f"mode {stat.S_IMODE(st.st_mode):04o} owned by uid "
                                 f"{st.st_uid} gid {st.st_gid}")

    def _denied_error(self) -> str:
        """The poll's error for the files the service may not read (``_not_ours_to_read``)."""
        why = "; ".join(sorted(self._denied_why)[:3]) or "permission denied"
        return (f"folder source {self.source.id}: {self._denied} file(s) cannot be read by "
                f"the service (EACCES: {why}; the service runs as uid {os.geteuid()} gid "
                f"{os.getegid()}); left in place and tried again at every poll (an SFTP or "
                f"share upload made with umask 077: set the upload umask to 022 or 027 with "
                f"the service in the group, or give the service a default ACL on the folder)")

    def _claim(self, rel: str, seen: _Seen) -> Claim | None:
        """Rename the file into this poll's claim folder; None if another poller was first.

        The file claimed must be the one scanned (inode, size, mtime): if another poller took
        it and a new upload began under the same name meanwhile, it is put back."""
        target = self._poll_folder() / rel
        original = self.root / rel
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            if os.path.lexists(target):  # cannot happen within one poll; never overwrite
                return None
            os.rename(original, target)
        except FileNotFoundError:
            return None  # taken by another poller, or withdrawn by the sender
        except OSError as exc:
            if exc.errno == errno.EXDEV:  # a mount inside the folder: the poll says so
                self._other_fs += 1
                return None
            log.warning("folder source %s: a file cannot be claimed (%s); left in place",
                        self.source.id, exc.strerror)
            return None
        if self._seen is not None:
            self._seen.pop(rel, None)
        try:
            st = os.lstat(target)
            if (st.st_ino, st.st_size, st.st_mtime_ns) != (seen.ino, seen.size, seen.mtime_ns):
                os.link(target, original, follow_symlinks=False)  # never replaces
                os.unlink(target)
                return None
        except OSError:
            pass  # cannot put it back: it stays claimed, read as it is
        fault_point("folder.claimed")
        return Claim(target, rel, datetime.now(UTC))

    def _poll_folder(self) -> Path:
        """This poll's numbered folder under the poller's own claim folder."""
        if self._current is not None:
            return self._current
        own = self._own_folder()
        n = 1
        while True:
            candidate = own / str(n)
            try:
                candidate.mkdir()
            except FileExistsError:
                n += 1
                continue
            self._current = candidate
            return candidate

    def _own_folder(self) -> Path:
        """Created under a hidden name, locked, then renamed: never adopted while being made."""
        if self._own is not None:
            return self._own
        for _ in range(100):
            token = f"{self.name}-{os.getpid()}-{secrets.token_hex(4)}"
            making = self.claimed_root / f".new-{token}"
            making.mkdir()
            try:
                fd = _open_lock(making / ".lock")
            except OSError:  # removed as abandoned by another poller meanwhile: try again
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                os.close(fd)
                if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                    continue  # taken as abandoned by another poller meanwhile: try again
                # the file system has no locks (NFSv3 without lockd, some FUSE mounts): each
                # try left a folder behind, a hundred per poll, never removed (that needs the
                # same lock); and without locks a claim cannot be told from a dead poller's
                _release(making, -1)
                raise OSError(exc.errno, f"its file system refuses locks ({exc.strerror}): on "
                                         f"NFS start its lock service (rpc.statd), or mount it "
                                         f"with 'nolock' when only this host polls it") from exc
            try:
                final = self.claimed_root / token
                os.rename(making, final)
            except OSError:
                os.close(fd)
                continue
            self._held[final] = fd
            self._own = final
            return final
        raise OSError(errno.EAGAIN, "cannot make a claim folder")

    def _adopt(self) -> None:
        """Take over the claim folders whose poller is gone (their lock is free)."""
        for held, fd in list(self._held.items()):  # removed by hand: forget it
            if not held.is_dir():
                os.close(fd)
                del self._held[held]
                if held == self._own:
                    self._own = None
        try:
            names = sorted(os.listdir(self.claimed_root))
        except OSError:
            return
        for name in names:
            path = self.claimed_root / name
            if path in self._held or not path.is_dir() or path.is_symlink():
                continue
            if name.startswith(".new-"):  # a crash while a claim folder was being made
                _drop_if_abandoned(path)
                continue
            if name.startswith("."):
                continue
            try:
                fd = _open_lock(path / ".lock")
            except OSError:
                continue  # removed meanwhile
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)  # its poller is alive
                continue
            if not (path / ".lock").exists():  # emptied and removed by its last holder
                os.close(fd)
                continue
            log.warning("folder source %s: files claimed by a poller that is gone are taken "
                        "again", self.source.id)
            self._held[path] = fd

    def _claims(self) -> Iterator[Claim]:
        """Files in every claim folder held, in the order they were claimed."""
        for held in list(self._held):
            try:
                polls = sorted((p for p in held.iterdir() if p.name.isdigit()),
                               key=lambda p: int(p.name))
            except OSError:
                continue
            for folder in polls:
                for dirpath, dirnames, filenames in os.walk(folder):
                    dirnames.sort()
                    base = Path(dirpath)
                    rel_dir = base.relative_to(folder).as_posix()
                    names = sorted(filenames) + [d for d in dirnames
                                                 if (base / d).is_symlink()]
                    for name in sorted(names):
                        rel = name if rel_dir == "." else f"{rel_dir}/{name}"
                        yield Claim(base / name, rel, datetime.now(UTC))

    # -- intake and after -----------------------------------------------------------------
    def _take(self, claims: list[Claim], result: PollResult) -> bool:
        """Record claimed files (by groups), then move them out. False: the store is down
        (the files stay claimed) or we are stopping."""
        group: list[tuple[Claim, Received]] = []
        size = 0
        for n, claim in enumerate(claims):
            if claim.path in self._recorded:  # recorded before, only the move is left
                self._move_out(claim, *self._recorded[claim.path], result)
                continue
            try:
                item = self._read(claim)
            except ShareDown as exc:
                return self._share_down(exc, group, len(claims) - n, result)
            if item is None:
                continue
            group.append((claim, item))
            size += len(item.data)
            if len(group) >= INTAKE_CHUNK or size >= CHUNK_BYTES:
                if not self._record(group, result):
                    return False
                group, size = [], 0
        return self._record(group, result) if group else True

    def _share_down(self, exc: ShareDown, group: list[tuple[Claim, Received]], left: int,
                    result: PollResult) -> bool:
        """A share (SMB, NFS) that stopped answering while a claimed file was read: that
        file was recorded as a failed import, 'unreadable' with no bytes, and moved to
        failed/ once the share was back: a good report out of the way, for someone to move
        back by hand. Now it stays claimed and the poll stops, saying so; the files read
        before it are recorded; the next poll takes the claimed ones again first."""
        recorded = self._record(group, result) if group else True
        result.pending += left  # this file and those after it
        if recorded or result.error is None:
            result.error = (f"folder source {self.source.id}: the folder's file system stopped "
                            f"answering while a file was read ({exc.code}); the files claimed "
                            f"stay claimed, taken again at the next poll")
        log.error("%s", result.error)
        return False

    def _read(self, claim: Claim) -> Received | None:
        limit = self.source.max_bytes
        rejection = None
        data = b""
        try:
            st = os.lstat(claim.path)
            if stat.S_ISLNK(st.st_mode):
                rejection = ("FOLDER_SYMLINK", "a symbolic link: links are not followed; "
                             "drop the file itself")
            elif not stat.S_ISREG(st.st_mode):
                rejection = ("FOLDER_NOT_A_FILE", "not a regular file (device, pipe or socket)")
            else:
                fd = os.open(claim.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK
                             | os.O_CLOEXEC)
                try:
                    if not stat.S_ISREG(os.fstat(fd).st_mode):
                        raise OSError(errno.EINVAL, "not a regular file")
                    if _locked(fd):  # locked by its writer since it was looked at
                        return self._still_written(claim, "locked or held open by its writer")
                    # a file its size already refuses: its head only, never max_bytes of it
                    over = st.st_size > limit
                    data = _read_up_to(fd, HEAD_KEPT if over else max(limit + 1, HEAD_KEPT))
                    after = os.fstat(fd)
                finally:
                    os.close(fd)
                over = over or len(data) > limit
                if not over and (after.st_size != len(data)
                                 or after.st_mtime_ns != st.st_mtime_ns
                                 or after.st_ctime_ns != st.st_ctime_ns):
                    return self._still_written(claim)
                if not data:
                    rejection = EMPTY_FILE
                elif over:
                    size = max(st.st_size, after.st_size, len(data))
                    data = data[:HEAD_KEPT]
                    rejection = ("FOLDER_FILE_TOO_LARGE",
                                 f"file of {size} bytes is over the folder's limit of {limit} "
                                 f"bytes (max_bytes); only its first {len(data)} bytes were "
                                 f"archived, the file is in failed/")
        except FileNotFoundError:
            log.warning("folder source %s: a claimed file vanished (moved by hand?)",
                        self.source.id)
            return None
        except OSError as exc:
            if exc.errno in SHARE_DOWN:
                raise ShareDown(errno.errorcode[exc.errno]) from exc
            data = b""
            code = errno.errorcode.get(exc.errno or 0, type(exc).__name__)
            rejection = ("FOLDER_FILE_UNREADABLE",
                         f"the file cannot be read ({code}: {exc.strerror}); it is in failed/")
        return Received(data=data, source=self.source.id, channel="folder",
                        peer=shown(str(self.root), PEER_MAX),
                        file_name=shown(claim.rel, FILE_NAME_MAX),
                        received_at=claim.received_at, rejection=rejection)

    def _still_written(self, claim: Claim,
                       why: str = "changed while it was read") -> None:
        """A sender still writing a file it had left alone for settle_seconds (a stalled
        upload over a network share): its bytes changed while we read them. It goes back
        where it was dropped, to settle again, instead of being archived cut short; if a new
        file took that name meanwhile, it stays claimed and is read again at the next poll."""
        original = self.root / claim.rel
        try:
            os.link(claim.path, original, follow_symlinks=False)  # never replaces
            os.unlink(claim.path)
            where = "put back to settle again"
        except OSError:
            where = "kept claimed, read again at the next poll"
        log.warning("folder source %s: a file %s (still being written): %s",
                    self.source.id, why, where)
        return None

    def _record(self, group: list[tuple[Claim, Received]], result: PollResult) -> bool:
        try:
            results = intake(self.engine, self.archive, [item for _, item in group])
        except Exception as exc:  # noqa: BLE001 - classified below
            if is_outage(exc):
                result.pending += len(group)
                result.error = f"folder source {self.source.id}: {outage_text(exc)}"
                log.error("%s; %d file(s) stay claimed, taken again at the next poll",
                          result.error, len(group))
                return False
            if len(group) > 1:  # one input the intake cannot take: find it, take the others
                return all(self._record([one], result) for one in group)
            claim, _ = group[0]
            log.error("folder source %s: intake refused a file (%s); moved to failed/",
                      self.source.id, type(exc).__name__)
            self._recorded[claim.path] = ("FOLDER_INTAKE_ERROR",
                                          f"intake raised {type(exc).__name__}; no import was "
                                          f"recorded")
            self._move_out(claim, *self._recorded[claim.path], result)
            return True
        result.add(results)
        fault_point("folder.recorded")
        for (claim, item), res in zip(group, results, strict=True):
            if item.rejection is not None:
                code, message = item.rejection
                ids = ", ".join(map(str, res.message_ids))
                self._recorded[claim.path] = (code, f"{message}\nimport: {ids} (dmp-ingest "
                                              f"imports show {res.message_ids[0]})")
                log.warning("folder source %s: import %s refused (%s)", self.source.id, ids,
                            code)
            else:
                self._recorded[claim.path] = ("", None)
            self._move_out(claim, *self._recorded[claim.path], result)
        if self.on_intake is not None:
            self.on_intake()
        return not self.stop_event.is_set()

    def _move_out(self, claim: Claim, code: str, why: str | None, result: PollResult) -> None:
        """To done/ (or failed/ with the reason beside it) under the same relative path."""
        where = DONE if not code else FAILED
        try:
            target = _place(claim.path, _beneath(self.root / where, claim.rel))
        except OSError as exc:
            result.error = (f"folder source {self.source.id}: a recorded file cannot be moved "
                            f"to {where}/ ({exc.strerror}); retried at the next poll")
            log.error("%s", result.error)
            return
        self._recorded.pop(claim.path, None)
        result.taken += 1
        if code:
            result.refused += 1
            _write_error(target, self.source.id, code, why or "")
        fault_point("folder.moved")  # this file out, the rest of its group still claimed

    # -- housekeeping -----------------------------------------------------------------------
    def _tidy(self) -> None:
        """Empty poll folders removed; adopted claim folders released once empty."""
        self._current = None
        for held, fd in list(self._held.items()):
            _remove_empty_dirs(held)
            if held != self._own and _only_lock(held):
                _release(held, fd)
                del self._held[held]

    def close(self) -> None:
        """Release the claim folders (removed when empty); files still claimed stay there
        and are taken by the next poller."""
        self._current = None
        for held, fd in list(self._held.items()):
            _remove_empty_dirs(held)
            if _only_lock(held):
                _release(held, fd)
            else:
                os.close(fd)
        self._held.clear()
        self._own = None

    def __enter__(self) -> FolderPoller:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _empty_for_long(seen: _Seen, now: float, age: float, settle: float) -> bool:
    """Whether an empty file has stayed so for EMPTY_SETTLE_SECONDS (settle_seconds if
    longer): seen unchanged that long, or last modified that long ago."""
    grace = max(settle, EMPTY_SETTLE_SECONDS)
    return now - seen.since >= grace or age >= grace


def _is_folder(entry: os.DirEntry) -> bool:
    """A folder, or a link to one (done/ or failed/ an admin put on another disk)."""
    try:
        return entry.is_dir()
    except OSError:
        return False


def _open_lock(path: Path) -> int:
    return os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)


def _locked(fd: int) -> bool:
    """Whether another process holds a lock on the file that a reader's would conflict with:
    a flock or an fcntl (POSIX) lock, the two kinds writers take (independent on Linux, so
    both are tried), or holds it open for writing (``_open_for_writing``). Our shared lock,
    when granted, is let go at once. A file system without locks (ENOLCK, EINVAL...) says
    nothing: the settle check alone applies."""
    for lock in (fcntl.flock, fcntl.lockf):
        try:
            lock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                return True
            continue
        lock(fd, fcntl.LOCK_UN)
    return _open_for_writing(fd)


def _open_for_writing(fd: int) -> bool:
    """Whether a process on this host holds the file open for writing: an SFTP server
    (sftp-server) or Samba (smbd) writing a stalled upload takes no lock, and keeps size and
    mtime still for as long as the sender's network stalls. Linux refuses a read lease
    (EAGAIN) on a file open for writing; granted, it is let go at once. Where leases are not
    ours to take (not the file's owner without CAP_LEASE, a network file system, leases
    disabled) this says nothing. A lease break while we hold it must not kill the service:
    it is signalled with SIGURG (ignored by default), not SIGIO (which terminates)."""
    setlease = getattr(fcntl, "F_SETLEASE", None)
    setsig = getattr(fcntl, "F_SETSIG", None)
    if setlease is None or setsig is None:
        return False
    try:
        fcntl.fcntl(fd, setsig, signal.SIGURG)
        fcntl.fcntl(fd, setlease, fcntl.F_RDLCK)
    except OSError as exc:
        return exc.errno == errno.EAGAIN
    fcntl.fcntl(fd, setlease, fcntl.F_UNLCK)
    return False


def _read_up_to(fd: int, limit: int) -> bytes:
    chunks, total = [], 0
    while total < limit:
        chunk = os.read(fd, min(1 << 20, limit - total))
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    return b"".join(chunks)


def _beneath(top: Path, rel: str) -> Path:
    """Where ``rel`` goes under done/ or failed/: its folders made as needed, each one
    that is not a real folder there (a file of that name moved out before: a sender's
    marker 'lab' and later a folder 'lab/'; a link moved to failed/ as it is) replaced by
    ``name.1``, ``name.2``... A file there made every file of that folder unmovable, the
    poll failing for good; a link there was followed, so a sender who dropped a link to
    another folder, then a folder of that name, had our files and .error.txt written
    wherever the link pointed. ``top`` itself may be a link (an admin's other disk)."""
    top.mkdir(parents=True, exist_ok=True)
    folder = top
    *parts, name = rel.split("/")
    for part in parts:
        n = 0
        while True:
            candidate = folder / (part if n == 0 else _fit(part, f".{n}"))
            n += 1
            with contextlib.suppress(FileExistsError):
                os.mkdir(candidate)
            if stat.S_ISDIR(os.lstat(candidate).st_mode):  # a real folder, never a link
                folder = candidate
                break
    return folder / name


def _place(src: Path, target: Path) -> Path:
    """Move ``src`` to ``target`` without ever replacing a file there: ``name.1.ext``,
    ``name.2.ext``... when taken. A hard link then an unlink (atomic no-replace); on file
    systems without hard links, a rename after an existence check."""
    target.parent.mkdir(parents=True, exist_ok=True)
    stem, suffix = _split_name(target.name)
    n = 0
    while True:
        candidate = target if n == 0 else target.with_name(_fit(stem, f".{n}{suffix}"))
        n += 1
        try:
            os.link(src, candidate, follow_symlinks=False)
        except FileExistsError:
            continue
        except OSError as exc:
            if exc.errno == errno.EXDEV:  # done/ or failed/ mounted or linked elsewhere
                return _copy_across(src, target)
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK,
                                 errno.ENOSYS):
                raise
            if os.path.lexists(candidate):
                continue
            os.rename(src, candidate)
            return candidate
        os.unlink(src)
        return candidate


def _copy_across(src: Path, target: Path) -> Path:
    """``_place`` when done/ or failed/ is on another file system (a mount, or a link an admin
    made to keep them on another disk): the bytes are copied to a hidden name beside the
    target and synced, then linked to a free name (never replacing), and only then is the
    claimed file removed. A crash in between leaves the claimed file, taken again (a repeat);
    a copy that fails (the other disk full) is removed, the file stays claimed."""
    st = os.lstat(src)
    temp = target.with_name(f".dmp-copy-{secrets.token_hex(6)}.tmp")
    if not (stat.S_ISLNK(st.st_mode) or stat.S_ISREG(st.st_mode)):
        # a pipe or socket cannot be copied: it stays claimed, the reason logged
        raise OSError(errno.EXDEV, "a special file cannot be moved to another file system")
    try:
        if stat.S_ISLNK(st.st_mode):
            os.symlink(os.readlink(src), temp)
        else:
            with open(src, "rb") as fin, open(temp, "xb") as fout:
                while chunk := fin.read(1 << 20):
                    fout.write(chunk)
                fout.flush()
                os.fsync(fout.fileno())
        placed = _place(temp, target)
    except BaseException:
        # a copy cut short (disk full) is removed: left, each retry would leave one more
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise
    os.unlink(src)
    return placed


def _fit(stem: str, tail: str, limit: int = 255) -> str:
    """stem + tail, the stem shortened if needed to fit a file name's byte limit."""
    while stem and len(os.fsencode(stem + tail)) > limit:
        stem = stem[:-1]
    return stem + tail


def _split_name(name: str) -> tuple[str, str]:
    dot = name.rfind(".")
    if dot <= 0:
        return name, ""
    return name[:dot], name[dot:]


def _write_error(target: Path, source: str, code: str, why: str) -> None:
    text = (f"dmp-ingest did not take this file.\nsource: {source}\ncode: {code}\n"
            f"reason: {why}\nat: {datetime.now(UTC).isoformat(timespec='seconds')}\n"
            "To try again once the cause is fixed, move the file back into the folder.\n")
    n = 0
    while True:
        path = target.with_name(_fit(target.name, ".error.txt" if n == 0
                                     else f".{n}.error.txt"))
        n += 1
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        except FileExistsError:
            continue
        except OSError as exc:
            log.warning("an .error.txt cannot be written (%s); the reason is on the ledger",
                        exc.strerror)
            return
        try:
            os.write(fd, text.encode())
        finally:
            os.close(fd)
        return


def _remove_empty_dirs(top: Path) -> None:
    for dirpath, _, _ in sorted(os.walk(top, topdown=False), key=lambda w: -len(w[0])):
        if Path(dirpath) != top:
            try:
                os.rmdir(dirpath)
            except OSError:
                pass


def _only_lock(folder: Path) -> bool:
    try:
        return [p.name for p in folder.iterdir()] in ([".lock"], [])
    except OSError:
        return False


def _drop_if_abandoned(folder: Path, min_age: float = 60.0) -> None:
    """A ``.new-*`` claim folder left by a crash while it was being made (old enough)."""
    try:
        if time.time() - folder.stat().st_mtime < min_age:
            return
        fd = _open_lock(folder / ".lock")
    except OSError:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return
    _remove_empty_dirs(folder)
    if _only_lock(folder):
        _release(folder, fd)
    else:
        os.close(fd)


def _release(folder: Path, fd: int) -> None:
    """Remove an empty claim folder while holding its lock, then let go (``fd`` -1: a folder
    never locked, on a file system without locks)."""
    try:
        os.unlink(folder / ".lock")
        os.rmdir(folder)
    except OSError:
        pass
    if fd >= 0:
        os.close(fd)
