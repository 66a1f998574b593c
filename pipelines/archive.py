"""The raw archive: every byte we receive, stored once under its sha256, durable on return.

Local directory by default (fsync of the file and its directory before returning, so an
acknowledgement after ``put`` survives a power cut). An S3 bucket (boto3) implements the same
two methods; ``open_archive`` picks by URL.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Protocol


class ArchiveError(RuntimeError):
    """The archive cannot store or return bytes: intake must not acknowledge."""


class Archive(Protocol):
    def put(self, data: bytes) -> str: ...

    def put_many(self, items: list[tuple[str, bytes]]) -> None:
        """Store (sha256, bytes) pairs; durable when it returns (one sync for the group)."""
        ...

    def get(self, sha256: str) -> bytes: ...


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class DirectoryArchive:
    """Content-addressed files: ab/cd/abcd...; written to a temp name, fsynced, renamed."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ArchiveError(f"archive directory cannot be created ({exc.strerror})") from exc

    def path(self, sha: str) -> Path:
        return self.root / sha[:2] / sha[2:4] / sha

    def put(self, data: bytes) -> str:
        sha = sha256_hex(data)
        self.put_many([(sha, data)])
        return sha

    def put_many(self, items: list[tuple[str, bytes]]) -> None:
        """Store several blobs with one directory fsync per touched directory (group commit)."""
        dirs: set[Path] = set()
        try:
            for sha, data in items:
                target = self.path(sha)
                if target.exists():
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                tmp = target.with_name(f".{sha}.{os.getpid()}.tmp")
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
                try:
                    _write_all(fd, data)
                    os.fsync(fd)
                finally:
                    os.close(fd)
                os.replace(tmp, target)
                dirs.add(target.parent)
            for d in dirs:
                _fsync_dir(d)
        except OSError as exc:
            raise ArchiveError(f"archive write failed ({exc.strerror})") from exc

    def get(self, sha: str) -> bytes:
        try:
            data = self.path(sha).read_bytes()
        except FileNotFoundError as exc:
            raise ArchiveError(f"archived object {sha} is missing") from exc
        if sha256_hex(data) != sha:
            raise ArchiveError(f"archived object {sha} is corrupt (sha256 mismatch)")
        return data


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def open_archive(url: str, endpoint_url: str | None = None) -> Archive:
    if url.startswith("s3://"):
        from pipelines.s3_archive import S3Archive

        return S3Archive.from_url(url, endpoint_url=endpoint_url)
    if url.startswith("file://"):
        url = url[len("file://"):]
    return DirectoryArchive(Path(url))
