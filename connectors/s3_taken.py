"""The objects a bucket poller knows taken, kept on disk between its lives.

With ``after = "tag"`` every object taken stays under the prefix. A poller remembered them
in memory only: each new poller (every run of the ``poll-buckets`` flow, each restart of
``serve``) read the tag of every object under the prefix again, one GetObjectTagging each:
with 100,000 objects taken, 100,000 requests at every scheduled poll. This file keeps the
poller's memory (16-byte digests of key, ETag and LastModified) under the service's home,
so a new poller asks only about the objects it has never seen.

The file is a cache, never the truth: the tag on the object is. A digest names one object
(a new put under the same key has another LastModified, usually another ETag), so an
object missing from the file is looked at as before (its tag read), and a file lost,
damaged, or written for another bucket or prefix only costs those requests again. To have
an object taken again, put it again (or delete this file along with its tag).

Objects taken are appended (16 bytes each, fsynced): rewriting the whole file at every poll
that took one wrote 1.6 MB per poll for 100,000 objects remembered. The file is rewritten
whole (compacted) only once it holds mostly objects gone from the prefix. A crash in an
append leaves a partial digest at the end: the whole ones before it are kept.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import tempfile
from pathlib import Path

log = logging.getLogger("dmp.s3_bucket")

MAGIC = b"DMP-S3-TAKEN 1\n"
DIGEST = 16  # bytes of each remembered object (connectors/s3_bucket.py _digest)


def taken_path(folder: Path, source_id: str, scope: tuple[str, ...]) -> Path:
    """The file of one bucket source: its id (made safe for a file name) and a digest of
    what it polls (endpoint, bucket, prefix), so a source pointed at another bucket does not
    start from the memory of the first."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", source_id)[:60] or "source"
    scope_hex = hashlib.blake2b("\0".join(scope).encode("utf-8", "surrogatepass"),
                                digest_size=8).hexdigest()
    return folder / f"{safe}-{scope_hex}.taken"


def load(path: Path, limit: int) -> set[bytes]:
    """The digests kept in ``path`` (at most ``limit``; a partial one at the end, a crash in
    an append, left out); none when there is no file or it is not one of ours (logged: the
    poller reads the tags again, nothing else is lost)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return set()
    except OSError as exc:
        log.warning("cannot read the S3 taken index %s (%s); the tags of objects under the "
                    "prefix are read again", path.name, type(exc).__name__)
        return set()
    body = data[len(MAGIC):]
    if not data.startswith(MAGIC):
        log.warning("the S3 taken index %s is not one of ours (no header); ignored, the "
                    "tags of objects under the prefix are read again", path.name)
        return set()
    count = min(len(body) // DIGEST, limit)
    return {body[i * DIGEST:(i + 1) * DIGEST] for i in range(count)}


def append(path: Path, digests: list[bytes]) -> bool:
    """Add digests at the end of an existing file (fsynced); False (logged) when there is
    no file to add to or the disk refused: the caller writes it whole instead."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        with os.fdopen(fd, "wb") as fh:
            if os.fstat(fh.fileno()).st_size % DIGEST != len(MAGIC) % DIGEST:
                return False  # a partial digest at the end (a crash): rewritten whole
            fh.write(b"".join(digests))
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as exc:
        log.warning("cannot add to the S3 taken index %s (%s)", path.name,
                    type(exc).__name__)
        return False
    return True


def save(path: Path, digests: set[bytes]) -> bool:
    """Write the digests in place of the file, atomically (a temporary file fsynced, then
    renamed over it): a crash leaves the old file or the new one, never half of one. False
    (logged) when the disk refused: the next poller only reads more tags."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".taken-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(MAGIC)
                fh.write(b"".join(sorted(digests)))
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    except OSError as exc:
        log.warning("cannot write the S3 taken index %s (%s); a new poller reads the tags of "
                    "the objects again", path.name, type(exc).__name__)
        return False
    return True

