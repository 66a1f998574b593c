"""The raw archive: every byte we receive, stored once under its sha256, durable on return.

Local directory by default (fsync of the file and its directory before returning, so an
acknowledgement after ``put`` survives a power cut). An S3 bucket (boto3) implements the same
two methods; ``open_archive`` picks by URL.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import hashlib
import os
import sys
import threading
from pathlib import Path
from typing import Protocol

from pipelines.faults import fault_point


class ArchiveError(RuntimeError):
    """The archive cannot store or return bytes: intake must not acknowledge."""

    code = "ARCHIVE_UNREADABLE"


class ArchiveMissing(ArchiveError):
    """The object is not in the archive: replaying it can never succeed (permanent)."""

    code = "ARCHIVE_MISSING"


class ArchiveCorrupt(ArchiveError):
    """The object's bytes do not match its sha256: never replayed (permanent)."""

    code = "ARCHIVE_CORRUPT"


class ArchiveUnavailable(ArchiveError):
    """The archive cannot be reached now (I/O error, S3 down or throttling): worth retrying."""

    code = "ARCHIVE_UNAVAILABLE"


class Archive(Protocol):
    def put(self, data: bytes) -> str: ...

    def put_many(self, items: list[tuple[str, bytes]]) -> None:
        """Store (sha256, bytes) pairs; durable when it returns (one sync for the group)."""
        ...

    def get(self, sha256: str) -> bytes: ...

    def put_file(self, path: Path) -> tuple[str, int]:
        """Store a file's bytes read in chunks, never whole in memory (a batch file of a
        gigabyte); durable when it returns. Returns (sha256, size)."""
        ...


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class DirectoryArchive:
    """Content-addressed files: ab/cd/abcd..., durable before ``put_many`` returns."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._root = str(self.root)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ArchiveError(f"archive directory cannot be created ({exc.strerror})") from exc

    def path(self, sha: str) -> Path:
        return Path(self._file(sha))

    def _file(self, sha: str) -> str:
        # plain strings: pathlib costs more than the write itself on the listener's hot path
        return os.path.join(self._root, sha[:2], sha[2:4], sha)

    def put(self, data: bytes) -> str:
        sha = sha256_hex(data)
        self.put_many([(sha, data)])
        return sha

    def put_many(self, items: list[tuple[str, bytes]]) -> None:
        """Store several blobs, durable on return (group commit).

        On Linux: every blob written under its final name, then one ``syncfs`` of the
        archive's filesystem for the whole group (the MLLP listener's groups: one flush
        instead of two fsyncs per blob; 100 blobs in 2 ms instead of 25-30 ms here). A crash
        before the flush can leave a partial file, but no ledger row points at it (intake
        commits after this returns) and nothing was acknowledged; when the sender sends the
        message again, the existing file is checked against its sha256 and rewritten.
        Elsewhere: temp file, fsync, rename, directory fsync, blob by blob."""
        if self.write_many(items):
            fault_point("archive.written")
            self.sync()

    def write_many(self, items: list[tuple[str, bytes]]) -> int:
        """``put_many`` without its flush: the blobs not stored yet (or cut by a crash) are
        written under their final names, not durable until ``sync`` (on Linux; elsewhere
        each is durable already and ``sync`` does nothing). Returns how many were written.
        The MLLP listener writes each frame's blob as it arrives, while the previous group
        is being flushed and committed, and syncs once per group."""
        written = 0
        try:
            if _syncfs is not None:
                for sha, data in dict(items).items():
                    written += self._write_new(sha, data)
                return written
            dirs: set[Path] = set()
            for sha, data in dict(items).items():
                if self._intact(sha):
                    continue
                target = self.path(sha)
                tmp = target.with_name(f".{sha}.{os.getpid()}.{threading.get_ident()}.tmp")
                self._write(str(tmp), data, sync=True)
                os.replace(tmp, target)
                dirs.add(target.parent)
                written += 1
            for d in dirs:
                _fsync_dir(d)
        except OSError as exc:
            raise ArchiveError(f"archive write failed ({exc.strerror})") from exc
        return written

    def sync(self) -> None:
        """Make every blob ``write_many`` wrote before this call durable (one ``syncfs`` of
        the archive's filesystem on Linux)."""
        if _syncfs is None:
            return
        try:
            _sync_filesystem(self.root)
        except OSError as exc:
            raise ArchiveError(f"archive write failed ({exc.strerror})") from exc

    def put_file(self, path: Path) -> tuple[str, int]:
        """Copied in 1 MiB chunks to a temporary name beside the final one, fsynced, renamed
        (atomic: a blob is whole or absent, even when the same bytes are being stored by
        someone else), directory fsynced."""
        digest, size = hashlib.sha256(), 0
        tmp = os.path.join(self._root, f".incoming.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            with open(path, "rb") as src, open(tmp, "wb") as dst:
                while chunk := src.read(1 << 20):
                    digest.update(chunk)
                    dst.write(chunk)
                    size += len(chunk)
                dst.flush()
                os.fsync(dst.fileno())
            sha = digest.hexdigest()
            target = self._file(sha)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            os.replace(tmp, target)
            _fsync_dir(Path(target).parent)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.remove(tmp)
            raise ArchiveError(f"archive write failed ({exc.strerror})") from exc
        return sha, size

    def _intact(self, sha: str) -> bool:
        """Stored already, and whole (a crash may have cut a file that was never synced)."""
        try:
            with open(self._file(sha), "rb") as fh:
                return sha256_hex(fh.read()) == sha
        except FileNotFoundError:
            return False

    def _write_new(self, sha: str, data: bytes) -> int:
        """Write a blob under its final name unless it is stored already and whole; 1 if
        written. Never truncates a file in place: another thread or process may be storing
        the same bytes at this moment (a resend racing its original) and must not see its
        synced, acknowledged file emptied under it. A file that exists already and is not
        whole (cut by a crash, or being written) is replaced whole, by rename. The exclusive
        create comes first: for a new blob (nearly all) it saves the failed open of the
        check."""
        path = self._file(sha)
        try:
            self._write(path, data, sync=False, exclusive=True)
            return 1
        except FileExistsError:
            if self._intact(sha):
                return 0
        tmp = f"{path}.{os.getpid()}.{threading.get_ident()}.tmp"
        self._write(tmp, data, sync=False)
        os.replace(tmp, path)
        return 1

    def _write(self, path: str, data: bytes, *, sync: bool, exclusive: bool = False) -> None:
        flags = os.O_WRONLY | os.O_CREAT | (os.O_EXCL if exclusive else os.O_TRUNC)
        try:
            fd = os.open(path, flags, 0o640)
        except FileNotFoundError:  # its subdirectory is not made yet: no mkdir per blob, and
            os.makedirs(os.path.dirname(path), exist_ok=True)  # no set of known directories
            fd = os.open(path, flags, 0o640)                   # growing in a long-lived service
        try:
            _write_all(fd, data)
            if sync:
                os.fsync(fd)
        finally:
            os.close(fd)

    def get(self, sha: str) -> bytes:
        try:
            data = _read_all(self._file(sha))
        except FileNotFoundError as exc:
            raise ArchiveMissing(f"archived object {sha} is missing") from exc
        except OSError as exc:  # EIO, a stale network mount: the object may well be there
            raise ArchiveUnavailable(f"archive read failed ({exc.strerror})") from exc
        if sha256_hex(data) != sha:
            raise ArchiveCorrupt(f"archived object {sha} is corrupt (sha256 mismatch)")
        return data


def _read_all(path: str) -> bytes:
    """The whole file, read as ``Path.read_bytes`` does (the same errors) without its Path
    and buffered reader: every message prepared reads its object once, and the pathlib and
    io layers cost more than the read of a 2 KB message itself."""
    with open(path, "rb", buffering=0) as fh:
        return fh.readall()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _load_syncfs():  # noqa: ANN202
    """Linux syncfs(2) through libc (not in the os module): flush one filesystem."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return libc.syncfs
    except (OSError, AttributeError):
        return None


_syncfs = _load_syncfs() if sys.platform.startswith("linux") else None


def _sync_filesystem(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        if _syncfs(fd) != 0:  # since Linux 5.8 it reports writeback errors too
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err))
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def open_archive(url: str, endpoint_url: str | None = None, s3_options=None) -> Archive:  # noqa: ANN001
    """A directory or ``s3://bucket/prefix``; ``s3_options`` (pipelines.s3_archive.S3Options,
    encryption and profile) default to the DMP_S3_* environment variables."""
    if url.startswith("s3://"):
        from pipelines.s3_archive import S3Archive

        return S3Archive.from_url(url, endpoint_url=endpoint_url, options=s3_options)
    if url.startswith("file://"):
        url = url[len("file://"):]
    return DirectoryArchive(Path(url))
