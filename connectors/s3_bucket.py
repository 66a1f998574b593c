"""S3 bucket pollers: objects put under a prefix are taken once, handed to intake, then marked.

One poll of a ``[buckets.<id>]`` source lists the objects under its prefix (every page), skips
what is already marked, fetches the rest (a few requests at a time) and hands them to
``intake`` in groups (one archive sync, one commit per group). Only once intake has returned
is an object marked, so an outage of the endpoint, the archive or the store never loses one:
it is simply taken at a later poll.

Marking (``after``):

- ``tag`` (default): the object stays where it is and gets the tag ``dmp-intake=done`` (its
  other tags kept) and ``dmp-intake-import=<first import id>``. Objects tagged ``done`` or
  ``refused`` are skipped (one GetObjectTagging per object, once; then remembered by a
  digest of key, ETag and LastModified, so a poller does not ask again for the objects it
  already knows; at most ``remember_max``, a million: past it the others' tags are read at
  every poll, with a warning). That memory is kept under the service's home (``s3-taken/``,
  connectors/s3_taken.py): a new poller, each run of the poll-buckets flow and each restart
  of serve, starts from it instead of reading every object's tag again. Objects tagged
  done stay under the prefix, listed at every poll: ``move``, or a lifecycle rule expiring
  objects tagged ``dmp-intake=done``, keeps both the listing and the memory small.
- ``move``: the object is copied to ``<processed_prefix><key>`` (tagged the same way; the copy
  only succeeds if the object is still the one read: ``CopySourceIfMatch``) and then deleted
  from under the prefix. On a versioned bucket that is a delete marker: the version read
  stays, noncurrent (a retention decision: by default we delete nothing a sender put; a
  lifecycle rule on noncurrent versions expires them). ``delete_moved_version = true``
  deletes that version, and only it, once the copy is made and intake has committed it
  (never a version put since, never an older one: the marker keeps hiding those). Keys
  under the processed and refused prefixes are never taken. An object over CopyObject's
  5 GiB (or one the store will not copy in one request: InvalidRequest) is copied in parts
  (UploadPartCopy).

``full_listing_seconds`` (0 by default: every poll lists the whole prefix): with ``tag``
every object taken stays listed, 100 LIST requests a poll for 100,000 of them. With N, the
prefix is listed whole once in N seconds and the polls between start after the last key
settled (StartAfter, see _Frontier): an object put under a key sorting before it waits for
the next whole listing. A store without ListObjectsV2 is always listed whole.

``settle_seconds`` (0 by default): an object is taken only once its LastModified is that old
by the store's clock (the listing's Date header). A bucket served from a NAS (MinIO on a
share, a gateway in front of a file system) lists a file its sender is still writing, with a
LastModified that moves on as it grows; without it a cut file could be read (its size matches
the listing when nothing was written between the two). With it an empty object waits a minute
(as an empty file in a folder, connectors/folder.py): a scanner or a stalled copy on the share
creates the file before its first byte; past settle_seconds it was refused as empty
(S3_EMPTY_OBJECT), a failed import for the admin, and tagged refused while its bytes came.

An object that already carries the 10 tags S3 allows has no room for ours, and none of the
sender's is ours to drop: with ``tag`` it is left untagged and a poller that does not know it
(restarted) reads it and finds it in the ledger (same source, key and bytes) instead of
recording it again; with ``move`` its copy keeps the sender's tags (the prefix says it was
taken). With 9, ``dmp-intake`` fits and ``dmp-intake-import`` is left off.

Credentials that may read the objects but not their tags, or not tag them (AccessDenied on
GetObjectTagging or PutObjectTagging, with ``tag``): the poller falls back on the ledger. An
object without our tag is taken only if the ledger holds no import of the same source, key
and bytes; one taken is remembered (and kept under the home); the refusal is logged once.
With ``move`` a tag is not needed: the copies are made without tags.

On a versioned bucket (versioning Enabled: asked at the first poll, then every 5 min and at
the poll after an object read answers with a VersionId, so versioning turned on under a
running poller is followed without a restart) every version is listed
(ListObjectVersions, paginated), not only the current objects: a lab exporting under one fixed
name twice between two polls had its middle export, kept as a noncurrent version, never
taken. Every version not marked yet and not under a delete marker is taken, a key's oldest
first, each read by its VersionId and marked by it (a noncurrent one moved is copied, not
deleted: the move of the newest hides it). A store that refuses ListObjectVersions is listed
plainly (logged once).

A prefix names a folder: ``incoming`` is read as ``incoming/`` (said at start-up), else
``incoming-old/...`` was taken too; ``prefix_is_folder = false`` keeps the string prefix.

On a versioned bucket, a key put again between our listing and our read (a lab exporting
under one fixed name) has the version listed read by its VersionId (ListObjectVersions) and
marked; the new object is taken at the next poll. Deleted in that instant, it is not taken
(its sender withdrew it, as from a folder).

A sender may put a new object under the same key between our read and our mark (a result file
exported again under its name). The mark must not reach it: the delete is conditional on the
ETag read (``If-Match``, S3 and most compatible stores; a 412 leaves the new object in place),
and a tag on an unversioned key is checked afterwards (``HeadObject`` ``If-Match``) and taken
off again if the key holds another object. Either way the new object is taken at the next poll.

No more than ``max_bytes`` + 1 bytes of an object are ever read (64 KiB of one listed over
it), whatever the store sends: a store that ignores Range or If-Match cannot make the poller
hold a huge object in memory. An object over ``max_bytes`` is not read whole: its first 64 KiB
are archived with a failed import (``S3_OBJECT_TOO_LARGE``: the admin sees it with ``imports
list --status failed``), it is tagged ``dmp-intake=refused`` (``move``: moved under
``refused_prefix``) and its key and size are logged. Keys are data, never paths: nothing here
touches the local file system, and a key with ``../``, a leading ``/`` or control characters
is recorded as given (in the ledger's ``file_name``; ``peer`` is ``s3://bucket/key``; both
cut to the ledger's column sizes).

An object stored compressed (``Content-Encoding: gzip``; S3 serves it as stored, boto3 does
not decompress) is taken decompressed, never past ``max_bytes`` (connectors/s3_encoding.py);
one that does not decompress is refused (``S3_BAD_CONTENT_ENCODING``, archived as stored).

A store whose If-Match refuses its own ETags (DigitalOcean Spaces takes them unquoted only)
is found out at its first 412 for an object HEAD still finds unchanged: from then on this
poller reads with a plain GET and compares the ETag answered, and checks by HEAD before a
delete.

An object listed and then not found when read (NoSuchKey) is taken to be deleted since the
listing (a store's listing may lag behind); listed and not found at two polls in a row it is
a poll error: the store lists a key it does not serve under that name (some stores answer
encoding-type=url but leave a '+' unencoded, which boto3 then reads as a space).

An object whose bytes stop coming in the middle of its download (the connection reset by a
load balancer or a proxy's idle timeout, the store's socket timing out: botocore retries a
request until its answer's headers, never the reading of its body) is read again, at most
``body_retries`` more times, ``retry_backoff`` seconds apart then twice that; still cut, it
is left as an object the store will not give (below), and the others are taken. So is an
object the store answers a server error for (HTTP 500: InternalError; a MinIO or Ceph RGW
whose copies of that object are damaged or out of reach answers so for it alone, at every
read) once botocore's retries (``request_attempts``, standard mode) are spent: it failed the
whole poll, at every poll, and the source took nothing more. A store throttling us (503
SlowDown) still ends the poll: slowing down is what it asks.

An object the store will not give us while it gives the others (archived by a lifecycle rule:
``InvalidObjectState``; ``AccessDenied`` on that object: another owner, an encryption key we
may not use) is left in place, unrecorded and unmarked; the poll's error says how many and
why, and the other objects are taken.

A poller remembers an object by key, ETag and LastModified, and by VersionId when listed by
version: the same bytes put again within the second of the one taken (LastModified is to the
second) are a new version, taken. From a plain listing with ``move``, an object moved is not
remembered (it is gone from the prefix): the same bytes put again under its key are taken
(a byte-identical repeat on the ledger) and moved, not left under the prefix for ever. With
``tag`` on an unversioned bucket the listing cannot tell such a put from the object tagged
(same key, ETag and second): it is left, the same bytes being already recorded.

Run one poller per bucket source: two pollers on the same objects would both take them (the
second copy is recorded as a byte-identical repeat and never filed twice).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from urllib.parse import urlencode

from connectors.folder import (
    CHUNK_BYTES,
    EMPTY_SETTLE_SECONDS,
    FILE_NAME_MAX,
    HEAD_KEPT,
    INTAKE_CHUNK,
    PEER_MAX,
    PollResult,
    is_outage,
    outage_text,
    shown,
)
from connectors.s3_encoding import Damaged, TooLarge, codings, decode
from connectors.s3_taken import append, load, save, taken_path
from pipelines.intake import Received, intake
from pipelines.ledger import recorded_as
from pipelines.settings import BucketSource

log = logging.getLogger("dmp.s3_bucket")

TAG = "dmp-intake"
TAG_IMPORT = "dmp-intake-import"
DONE, REFUSED = "done", "refused"
MAX_TAGS = 10  # S3's limit per object
# Requests of ours whose body S3 says must carry a checksum: sent with Content-MD5 too
MD5_OPERATIONS = ("PutObjectTagging",)
# objects a poller remembers taken (16 bytes each: about 80 MB with the set's own cost);
# past it their tags are read again at every poll (_Remembered)
REMEMBER_MAX = 1_000_000
# under the service's home: each source's memory of the objects taken, kept between pollers
# (connectors/s3_taken.py), so a new poller does not read every object's tag again
TAKEN_DIR = "s3-taken"
COPY_LIMIT = 5 * 1024 ** 3  # CopyObject's limit on S3 and most compatible stores
PART_BYTES = 1024 ** 3  # each part of a multipart copy (S3: 5 MiB to 5 GiB, 10,000 parts)
# What an admin should look at when the endpoint refuses who we are (the code alone is cryptic)
_WRONG = "the S3 credentials are wrong or expired (access key, secret, session token)"
AUTH_HINTS = {"InvalidAccessKeyId": _WRONG, "SignatureDoesNotMatch": _WRONG,
              "ExpiredToken": _WRONG, "InvalidToken": _WRONG, "TokenRefreshRequired": _WRONG,
              "AccessDenied": "the S3 credentials lack a permission on this bucket (list, "
                              "get, tag, copy, delete)"}
# A store without object tagging answers NotImplemented to these (after = "tag" needs them)
TAGGING_OPERATIONS = ("GetObjectTagging", "PutObjectTagging", "DeleteObjectTagging")
_NO_TAGGING_HINT = ("the store does not implement object tagging; set after = \"move\"")
# A store without object tagging (Garage, some providers' object storage), or without
# conditional deletes, answers these
NO_TAGGING = ("NotImplemented", "501")
NO_LIST_V2 = ("NotImplemented", "501", "InvalidArgument")
# Refusals that concern one object, not the endpoint: archived by a lifecycle rule (restore
# it first), encrypted with a key we may not use (SSE-C, KMS), owned by another account. The
# object is left in place and the others are taken; the poll says how many and why.
UNREADABLE = ("InvalidObjectState", "AccessDenied", "403", "InvalidRequest",
              "KMS.DisabledException", "KMS.AccessDeniedException")
# Of those, the refusals that stay until someone acts on the object (a restore takes hours
# from Glacier, half a day from Deep Archive; an SSE-C object needs its customer's key): such
# an object is parked, not asked for again before PARK_SECONDS. Asked at every poll (its tags
# and its bytes), it failed every poll, which slowed the polling of the whole source to the
# service's longest back-off, and a lifecycle rule archiving thousands of objects cost
# thousands of requests per poll. AccessDenied is not parked: a missing permission is fixed
# by an admin who expects the objects taken at the next poll.
PARKED = ("InvalidObjectState", "InvalidRequest", "KMS.DisabledException",
          "KMS.AccessDeniedException")
PARK_SECONDS = 3600.0
# A download cut in the middle (ResponseStreamingError: connection reset, a short body;
# ReadTimeoutError: the socket's read timeout; IncompleteReadError: fewer bytes than
# Content-Length): read again BODY_RETRIES more times, RETRY_BACKOFF seconds apart, doubling
BODY_RETRIES = 2
RETRY_BACKOFF = 1.0
CUT = "ConnectionCut"  # how such an object is counted among those that cannot be read
# botocore's attempts at each request, the first included (total_max_attempts; the
# max_attempts of 3 set before counted retries only); standard mode: throttling, 5xx and
# connection errors retried with a jittered exponential backoff
REQUEST_ATTEMPTS = 4
# Empty objects that stand for a folder, not a file: 'a/b/' (the S3 console, Cyberduck,
# rclone), 'a/b_$folder$' (Hadoop's s3n and EMRFS, S3Fox, CloudBerry). Skipped: a '_$folder$'
# one was refused as an empty object, a failed import for the admin at every new folder
FOLDER_MARKERS = ("/", "_$folder$")
# how often a poller asks the bucket's versioning again (GetBucketVersioning): versioning
# turned on, or suspended, under a running poller is followed within that time (at once
# when an object read answers with a VersionId while the bucket was taken as unversioned)
VERSIONING_SECONDS = 300.0
UNREADABLE_HINTS = {"InvalidObjectState": "in an archive storage class: restore it",
                    "InvalidRequest": "encrypted with a customer key (SSE-C) we are not given",
                    "AccessDenied": "no permission on it (its owner, its encryption key, the "
                                    "bucket policy)",
                    "InternalError": "the store answered a server error for it (HTTP 500) "
                                     "after retries: a damaged or unreachable copy on the "
                                     "store's side",
                    CUT: "its download was cut by the network or the store every time it "
                         "was read (connection reset, read timeout)"}


class ListingStuck(Exception):
    """A listing page says there is more but gives no way to the next page."""

    def __init__(self, where: str) -> None:
        super().__init__(f"the S3 store's listing of {where} says there is more but gives no "
                         f"way on (no key, no continuation token); the poll stopped there")


class DownloadCut(Exception):
    """An object's download was cut every time it was read (``BucketPoller._download``)."""

    def __init__(self, cause: str) -> None:
        super().__init__(cause)
        self.cause = cause


@dataclass
class _Object:
    key: str
    etag: str
    size: int
    tags: dict[str, str] | None = None
    version: str | None = None
    item: Received | None = None
    pending: _Mark | None = None  # recorded by intake before, only its mark is left
    unreadable: str | None = None  # the store's code when it refused this object only
    missing: bool = False  # listed, then not found when read
    modified: str = ""  # LastModified listed: the same bytes put again have the same ETag
    # versioned bucket (listed by ListObjectVersions): the version listed, read by its id,
    # and whether it is the key's current one (a noncurrent one is copied, never deleted)
    listed_version: str | None = None
    latest: bool = True

    @property
    def ident(self) -> tuple[str, ...]:
        """What a poller remembers an object by (see _ident)."""
        return _ident(self.key, self.etag, self.modified, self.listed_version)

    @property
    def slot(self) -> tuple[str, str, str]:
        """How an object recorded but not marked is found again in a listing: key, ETag and
        (versioned bucket) VersionId; two versions of one key with the same bytes are two."""
        return (self.key, self.etag, self.listed_version or "")


_Mark = tuple[_Object, str, int | None, str | None]  # object, done/refused, import id, code


def _ident(key: str, etag: str, modified: str, version: str | None) -> tuple[str, ...]:
    """What a poller remembers an object by. Key and ETag alone took the same bytes put
    again under the same key (a sender's resend: a new object, untagged, or back under the
    prefix after a move) for the object already marked. LastModified is to the second: on a
    versioned bucket the same bytes put again within that second (a lab's export repeated
    under its fixed name) had the same (key, ETag, LastModified) as the version taken and
    were never taken (with move: left under the prefix for ever); the VersionId, listed
    with each version, tells them apart. Unversioned ('null' or no id), the tuple is the
    three of before: the memory kept on disk by earlier pollers still matches."""
    if version in (None, "", "null"):
        return (key, etag, modified)
    return (key, etag, modified, version)


def _digest(ident: tuple[str, ...]) -> bytes:
    """16 bytes for an object's ident (key, ETag, LastModified[, VersionId]): what a poller
    remembers."""
    return hashlib.blake2b("\0".join(ident).encode("utf-8", "surrogatepass"),
                           digest_size=16).digest()


class _Remembered:
    """The objects a poller knows taken (tagged done or refused, or marked by it), by digest,
    at most ``limit``. With after = "tag" every object stays under the prefix: remembered by
    their (key, ETag, LastModified) tuples, a poller's memory grew with the bucket for ever,
    about 400 bytes an object (a laboratory's year: millions). Now 16-byte digests, and
    none past ``limit``: an object not remembered is looked at as a new one, its tag read
    (GetObjectTagging) and found done: never taken twice, never missed, only dearer."""

    __slots__ = ("digests", "full", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.digests: set[bytes] = set()
        self.full = False  # one was left out for want of room

    def __contains__(self, digest: bytes) -> bool:
        return digest in self.digests

    def __len__(self) -> int:
        return len(self.digests)

    def add(self, digest: bytes) -> None:
        if len(self.digests) < self.limit or digest in self.digests:
            self.digests.add(digest)
        else:
            self.full = True

    def update(self, other: _Remembered) -> None:
        for digest in other.digests:
            self.add(digest)
        self.full = self.full or other.full


class _Frontier:
    """With ``full_listing_seconds``: the greatest key W such that every object listed up to
    it is settled (known taken, taken by this poll, parked). The next partial listing starts
    after W (StartAfter); an object left below it (still being written, unreadable, not
    marked, the store down) stops W there, so it is listed again at the next poll. Objects
    are resolved in listing order, those of a group once the group has been taken."""

    __slots__ = ("blocked", "mark", "pending")

    def __init__(self, start: str) -> None:
        self.mark = start
        self.blocked = False
        self.pending: list[tuple[str | None, _Object | None]] = []

    def fine(self, key: str) -> None:
        if self.pending:
            self.pending.append((key, None))
        elif not self.blocked:
            self.mark = key

    def left(self) -> None:
        if self.pending:
            self.pending.append((None, None))
        else:
            self.blocked = True

    def looked_at(self, obj: _Object) -> None:
        if not self.blocked:
            self.pending.append((obj.key, obj))

    def resolve(self, settled: Callable[[_Object], bool]) -> None:
        for key, obj in self.pending:
            if self.blocked:
                break
            if key is None or (obj is not None and not settled(obj)):
                self.blocked = True
            else:
                self.mark = key
        self.pending = []


class BucketPoller:
    """Polls one declared bucket prefix; ``poll()`` is synchronous (serve runs it in a thread).
    """

    def __init__(self, source: BucketSource, engine, archive, *,  # noqa: ANN001
                 endpoint_url: str | None = None, client=None,  # noqa: ANN001
                 on_intake: Callable[[], None] | None = None,
                 stop_event: threading.Event | None = None, concurrency: int = 8,
                 list_page_size: int = 1000, remember_max: int = REMEMBER_MAX,
                 state_dir: Path | None = None, park_seconds: float = PARK_SECONDS,
                 versioning_seconds: float = VERSIONING_SECONDS,
                 body_retries: int = BODY_RETRIES, retry_backoff: float = RETRY_BACKOFF,
                 request_attempts: int = REQUEST_ATTEMPTS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.source = source
        self.engine, self.archive = engine, archive
        self.endpoint_url = source.endpoint_url or endpoint_url
        self.on_intake = on_intake
        self.stop_event = stop_event or threading.Event()
        self.concurrency = concurrency
        self.list_page_size = list_page_size  # S3's own maximum per listing page
        self._client = client
        self._own_client = False  # True when self._client was made here (see client)
        # objects taken (tagged or marked), not looked at again: at most remember_max
        self.remember_max = remember_max
        self._known = _Remembered(remember_max)
        self._said_full = False  # the warning that remember_max was reached, given
        # where the memory is kept between lives (connectors/s3_taken.py); None: not kept
        self._taken_path = (None if state_dir is None else taken_path(
            state_dir, source.id, (self.endpoint_url or "", source.region or "",
                                   source.bucket, source.prefix)))
        self._loaded = False
        self._dirty = False  # the memory changed since it was loaded or written
        self._fresh: list[bytes] = []  # digests remembered since the file was written
        self._in_file = 0  # digests in the file (those of objects gone included)
        # recorded by intake but not marked (endpoint down between the two, a move copied
        # and not deleted): marked at the next poll, never handed to intake again
        self._unmarked: dict[tuple[str, str, str], _Mark] = {}  # by _Object.slot
        # False once the store answered NotImplemented to tagging (after = "move" only: a
        # move needs no tag, what was taken is under processed/ or refused/)
        self._tagging = True
        self._list_v2 = True  # False once the store refused ListObjectsV2 (older stores)
        self._conditional_delete = True  # False once the store refused DELETE If-Match
        self._if_match = True  # False once the store refused its own ETag in GET If-Match
        self._versions_listable = True  # False once ListObjectVersions was refused (logged)
        # whether the bucket's versioning is Enabled (GetBucketVersioning, asked at the first
        # poll, then every versioning_seconds): then every version is listed
        # (ListObjectVersions), not only the current ones
        self._versioned: bool | None = None
        self._versioning_asked: float | None = None  # when (clock); None: never
        self._versioning_refused = False  # GetBucketVersioning refused: not asked again
        self._versioned_was: bool | None = None  # the last answer (a change is logged)
        self.versioning_seconds = versioning_seconds
        # after = "tag": the first tagging operation the credentials may not do (AccessDenied:
        # a bucket policy granting GetObject but not Get/PutObjectTagging); from then on an
        # object taken is known by the ledger and by the poller's memory, not by a tag
        self._tagging_denied: str | None = None
        self._unreadable: dict[str, int] = {}  # this poll: store's code -> objects left
        # objects the store will not give before someone acts on them (PARKED): digest ->
        # when (clock) to ask again
        self._parked: dict[bytes, float] = {}
        self._parked_listed: set[bytes] = set()  # this poll: parked objects still listed
        self._gone_now: set[bytes] = set()  # this poll: objects moved away (_moved_away)
        self.park_seconds, self._clock = park_seconds, clock
        self.body_retries, self.retry_backoff = body_retries, retry_backoff
        self.request_attempts = request_attempts  # botocore's, each request (first included)
        # full_listing_seconds: the key after which partial listings start, and when the
        # last full listing began (clock); None: never
        self._watermark = ""
        self._last_full: float | None = None
        self._frontier: _Frontier | None = None  # this poll's, when listings are partial
        # listed, then not found when read (NoSuchKey): this poll's and the previous one's
        self._missing: set[tuple[str, str]] = set()
        self._missing_before: set[tuple[str, str]] = set()
        self._listed_any = False  # this poll's listing gave at least one key
        if source.key_prefix != source.prefix:
            log.warning("bucket source %s: prefix %r has no trailing '/': read as the folder "
                        "%r (keys such as %r are not taken; set prefix_is_folder = false to "
                        "take every key beginning with %r)", source.id, source.prefix,
                        source.key_prefix, source.prefix + "-old/", source.prefix)

    @property
    def client(self):  # noqa: ANN201
        """Our boto3 client, made in a session of its own: boto3's default session keeps the
        credentials it read first for the life of the process, so keys rotated under a
        running service (a rewritten credentials file, new environment of a restarted
        sidecar...) were never seen. ``_forget_client`` after the store refuses who we are
        makes the next poll read them again."""
        if self._client is None:
            import boto3
            from botocore.config import Config

            self._client = boto3.session.Session().client(
                "s3", endpoint_url=self.endpoint_url, region_name=self.source.region,
                config=Config(retries={"total_max_attempts": self.request_attempts,
                                       "mode": "standard"},
                              connect_timeout=5, read_timeout=60,
                              max_pool_connections=self.concurrency + 2))
            for operation in MD5_OPERATIONS:
                self._client.meta.events.register(f"before-sign.s3.{operation}", _content_md5)
            if self.source.requester_pays:
                self._client.meta.events.register("before-sign.s3", _requester_pays)
            self._own_client = True
        return self._client

    def _forget_client(self, exc: Exception) -> None:
        """After a refusal of our credentials (or none found), a client we made is dropped:
        the next poll makes one that reads the credentials again. One given to us is kept."""
        from botocore.exceptions import NoCredentialsError

        if self._own_client and (isinstance(exc, NoCredentialsError)
                                 or _code(exc) in AUTH_HINTS):
            self._client = None
            self._own_client = False

    @property
    def where(self) -> str:
        return f"s3://{self.source.bucket}/{self.source.key_prefix}"

    # -- the poll ---------------------------------------------------------------------------
    def poll(self) -> PollResult:
        """One pass over every object under the prefix. Problems of the endpoint or the store
        end up in ``result.error`` (nothing lost: unmarked objects are taken next time)."""
        from botocore.exceptions import BotoCoreError, ClientError

        result = PollResult(self.source.id)
        self._load_taken()
        self._unreadable = {}
        self._parked_listed = set()
        self._gone_now = set()
        self._missing_before, self._missing = self._missing, set()
        self._listed_any = False
        listed_whole = False
        seen = _Remembered(self.remember_max)
        waiting = set(self._unmarked)  # recorded, not marked: forgotten if no longer listed
        listed: set[tuple[str, str, str]] = set()  # of those, the ones still there
        started = self._clock()
        full = self._full_listing(started)
        self._frontier = (None if not self.source.full_listing_seconds
                          else _Frontier("" if full else self._watermark))
        try:
            with ThreadPoolExecutor(self.concurrency, thread_name_prefix="s3-poll") as pool:
                complete = True
                for chunk in self._chunks(seen, listed):
                    taken = (not self.stop_event.is_set()
                             and self._take(chunk, pool, seen, result))
                    self._resolve(seen)
                    if not taken:
                        complete = False
                        break
                self._resolve(seen)
                if self._frontier is not None:
                    self._watermark = self._frontier.mark
                    if full and complete:
                        self._last_full = started
                if complete and full:
                    listed_whole = True
                    self._dirty |= len(seen) != len(self._known)  # some no longer there
                    self._known = seen  # forget objects no longer there
                    self._parked = {d: u for d, u in self._parked.items()
                                    if d in self._parked_listed}
                    for gone in waiting - listed:
                        self._unmarked.pop(gone, None)
                else:  # stopped, or a partial listing: the objects not listed are kept
                    self._known.update(seen)
            if self._known.full and not self._said_full:
                self._said_full = True
                log.warning("bucket source %s: more than %d objects taken stay under the "
                            "prefix; the others' tags are read again at every poll (use after "
                            "= \"move\", or a lifecycle rule expiring objects tagged "
                            "dmp-intake=done)", self.source.id, self.remember_max)
        except (BotoCoreError, ClientError, ListingStuck) as exc:
            result.error = f"bucket source {self.source.id}: {self._describe(exc)}"
            log.error("%s; unmarked objects are taken at a later poll", result.error)
            self._forget_client(exc)
        self._save_taken()
        if self._unreadable and result.error is None:
            codes = "; ".join(code + (f": {UNREADABLE_HINTS[code]}" if code in UNREADABLE_HINTS
                                      else "") for code in sorted(self._unreadable))
            when = ("at the next poll" if any(c not in PARKED for c in self._unreadable)
                    else f"in {self.park_seconds / 60:g} min")
            result.error = (f"bucket source {self.source.id}: "
                            f"{sum(self._unreadable.values())} object(s) cannot be read "
                            f"({codes}); left in place, tried again {when}")
        if listed_whole and not self._listed_any and result.error is None:
            result.error = self._misplaced_prefix()
        stuck = self._missing & self._missing_before
        if stuck and result.error is None:
            result.error = (f"bucket source {self.source.id}: {len(stuck)} object(s) listed "
                            f"at two polls in a row are not found when read (NoSuchKey): the "
                            f"store lists keys it does not serve under that name (a key with "
                            f"'+', '%' or spaces encoded wrongly in its listing?); not taken")
            log.error("%s", result.error)
        return result

    def _misplaced_prefix(self) -> str | None:
        """Why a prefix lists nothing, when it is a path rather than a key prefix: copied
        from a console or a file manager as '/incoming/' or 'bucket/incoming/'. S3 keys are
        'incoming/x.hl7': the poller listed nothing at every poll and said nothing while the
        lab's files piled up. When the prefix without its leading '/' (and the bucket's
        name) holds objects, the poll says so (one more listing, only while the prefix
        lists nothing); a prefix that really begins with '/' lists its objects, unsaid."""
        from botocore.exceptions import BotoCoreError, ClientError

        prefix = self.source.key_prefix
        guess = prefix.lstrip("/")
        if guess.startswith(self.source.bucket + "/"):
            guess = guess[len(self.source.bucket) + 1:]
        if guess == prefix:
            return None
        listing = self.client.list_objects_v2 if self._list_v2 else self.client.list_objects
        try:
            found = listing(Bucket=self.source.bucket, Prefix=guess, MaxKeys=1).get("Contents")
        except (BotoCoreError, ClientError):
            return None
        if not found:
            return None
        error = (f"bucket source {self.source.id}: nothing under prefix {prefix!r}, but objects "
                 f"under {guess!r}: a prefix is the start of the keys, without a leading '/' "
                 f"or the bucket's name (set prefix = {guess!r}); nothing taken")
        log.error("%s", error)
        return error

    def _full_listing(self, now: float) -> bool:
        """Whether this poll lists the whole prefix: always, unless full_listing_seconds is
        set (then once in that time; the polls between list the keys after the watermark
        only). A store without ListObjectsV2 (no StartAfter) is always listed whole."""
        every = self.source.full_listing_seconds
        return (not every or not self._list_v2 or bool(self._versioned)
                or self._last_full is None
                or now - self._last_full >= every)

    def _resolve(self, seen: _Remembered) -> None:
        """The objects of the group just taken, settled or left, in listing order."""
        if self._frontier is not None:
            self._frontier.resolve(lambda obj: _digest(obj.ident) in seen
                                   or _digest(obj.ident) in self._parked
                                   or _digest(obj.ident) in self._gone_now)

    def _load_taken(self) -> None:
        """At the first poll, the memory of earlier pollers of this source (kept on disk):
        each new poller (every run of the poll-buckets flow, each restart of serve) read the
        tag of every object under the prefix again, one request each."""
        if self._loaded or self._taken_path is None:
            return
        self._loaded = True
        for digest in load(self._taken_path, self.remember_max):
            self._known.add(digest)
        self._in_file = len(self._known)

    def _save_taken(self) -> None:
        """The memory written back when it changed (objects taken, or gone from the
        prefix), so the next poller starts from it."""
        if self._taken_path is None or not self._dirty:
            return
        if not self._fresh:  # only objects gone: the file holds them until compacted
            self._dirty = False
            return
        if (self._in_file > 2 * len(self._known) + 1000
                or not append(self._taken_path, self._fresh)):
            if not save(self._taken_path, self._known.digests):
                return
            self._in_file = len(self._known)
        else:
            self._in_file += len(self._fresh)
        self._fresh.clear()
        self._dirty = False

    def _describe(self, exc: Exception) -> str:
        from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

        endpoint = self.endpoint_url or "AWS"
        if isinstance(exc, ListingStuck):
            return str(exc)
        if isinstance(exc, ClientError):
            code = exc.response.get("Error", {}).get("Code", "?")
            hint = AUTH_HINTS.get(code)
            if code == "AccessDenied" and not self.source.requester_pays:
                hint += ", or the bucket is requester-pays (set requester_pays = true)"
            if code in NO_TAGGING and exc.operation_name in TAGGING_OPERATIONS:
                hint = _NO_TAGGING_HINT
            if code == "RequestTimeTooSkewed":
                hint = _skew_hint(exc)
            if code == "AuthorizationHeaderMalformed":  # boto3 follows a store naming its own
                hint = ("the requests are signed for another region than the store's: set "
                        "region in the bucket source")
            return (f"S3 refused {exc.operation_name} on {self.where} "
                    f"({code}{': ' + hint if hint else ''})")
        if isinstance(exc, EndpointConnectionError):
            return f"cannot reach the S3 endpoint {endpoint} (EndpointConnectionError)"
        if isinstance(exc, NoCredentialsError):
            return "no S3 credentials (environment or AWS profile)"
        return f"S3 endpoint {endpoint} unavailable ({type(exc).__name__})"

    def _chunks(self, seen: _Remembered,
                listed: set[tuple[str, str, str]]) -> Iterator[list[_Object]]:
        """Objects to look at, listed page by page, in groups bounded in count and bytes."""
        skip = ()
        if self.source.after == "move":
            skip = (self.source.processed_prefix, self.source.refused_prefix)
        frontier = self._frontier
        if frontier is None:  # listings are whole: a frontier that records nothing
            frontier = _Frontier("")
            frontier.blocked = True
        pages = (self._version_pages() if self._lists_versions()
                 else self._pages(frontier.mark))
        chunk: list[_Object] = []
        size = 0
        settle = timedelta(seconds=self.source.settle_seconds)
        empty_settle = timedelta(seconds=max(self.source.settle_seconds, EMPTY_SETTLE_SECONDS))
        for page in pages:
            store_now = _store_now(page)
            newest, newest_empty = store_now - settle, store_now - empty_settle
            self._keep_hidden(page.get("Hidden", []), seen)
            for entry in page.get("Contents", []):
                self._listed_any = True
                key, etag = entry["Key"], entry.get("ETag", "")
                if (skip and key.startswith(skip)) or (key.endswith(FOLDER_MARKERS)
                                                       and not entry["Size"]):
                    frontier.fine(key)
                    continue  # ours, or a "folder" marker
                modified = entry.get("LastModified")
                if settle and modified is not None and modified > (
                        newest_empty if not entry["Size"] else newest):
                    frontier.left()
                    continue  # still being written, maybe: looked at again next poll
                ident = _ident(key, etag, str(modified or ""), entry.get("VersionId"))
                digest = _digest(ident)
                if digest in self._known:
                    seen.add(digest)
                    frontier.fine(key)
                    continue
                if digest in self._parked:
                    self._parked_listed.add(digest)
                    if self._clock() < self._parked[digest]:
                        frontier.fine(key)
                        continue  # archived, or encrypted with a key we lack: not yet
                slot = (key, etag, entry.get("VersionId") or "")
                pending = self._unmarked.get(slot)
                if pending is not None:
                    listed.add(slot)
                obj = _Object(key, etag, entry["Size"], pending=pending, modified=ident[2],
                              listed_version=entry.get("VersionId"),
                              latest=entry.get("IsLatest", True))
                frontier.looked_at(obj)
                chunk.append(obj)
                size += min(entry["Size"], self.source.max_bytes)
                if len(chunk) >= INTAKE_CHUNK or size >= CHUNK_BYTES:
                    yield chunk
                    chunk, size = [], 0
        if chunk:
            yield chunk

    def _keep_hidden(self, hidden: list[dict], seen: _Remembered) -> None:
        """Versions under a delete marker (ours after a move) are not listed for taking, but
        those taken stay remembered: forgotten at the next poll, a version moved came back
        as soon as its key was put again within the marker's second (versions and markers
        are ordered by a LastModified to the second: a tie is listed) and was taken twice."""
        for entry in hidden:
            digest = _digest(_ident(entry["Key"], entry.get("ETag", ""),
                                    str(entry.get("LastModified") or ""),
                                    entry.get("VersionId")))
            if digest in self._known:
                seen.add(digest)

    def _lists_versions(self) -> bool:
        """Whether this poll lists every version (the bucket's versioning is Enabled). A key
        put twice between two polls (a lab exporting under one fixed name every few
        minutes) kept only its newest object in a plain listing: the middle one, kept by the
        bucket as a noncurrent version, was never taken. A store that will not say
        (AccessDenied, NotImplemented) is listed plainly (logged once, not asked again).

        Asked at the first poll, then again every ``versioning_seconds`` (5 min), and at
        the poll after an object read answered with a VersionId while the bucket was taken
        as unversioned: asked once per poller, versioning turned on under a running service
        (ops enabling it for retention) was not seen until its restart, and the exports a
        lab put twice between two polls meanwhile lost their middle one."""
        from botocore.exceptions import BotoCoreError, ClientError

        now = self._clock()
        if (self._versioned is not None and not self._versioning_refused
                and self._versioning_asked is not None
                and now - self._versioning_asked >= self.versioning_seconds):
            self._versioned = None
        if self._versioned is None:
            try:
                status = self.client.get_bucket_versioning(
                    Bucket=self.source.bucket).get("Status")
            except (BotoCoreError, ClientError) as exc:
                if _code(exc) not in ("AccessDenied", "403", *NO_TAGGING):
                    return False  # asked again at the next poll; the listing says what fails
                log.warning("bucket source %s: the store refuses GetBucketVersioning (%s): "
                            "listed as unversioned, a key put twice between two polls keeps "
                            "only its newest object (grant s3:GetBucketVersioning)",
                            self.source.id, _code(exc))
                status = None
                self._versioning_refused = True
            if self._versioned_was is not None and (status == "Enabled") != self._versioned_was:
                log.warning("bucket source %s: the bucket's versioning is now %s: %s",
                            self.source.id, status or "off",
                            "every version is listed" if status == "Enabled"
                            else "only the current objects are listed")
            self._versioned = status == "Enabled"
            self._versioned_was = self._versioned
            self._versioning_asked = now
        return self._versioned and self._versions_listable

    def _version_pages(self) -> Iterator[dict]:
        """ListObjectVersions pages turned into listing pages: every version of a key not
        hidden by a delete marker (the sender withdrew it, or we moved it), oldest first,
        each with its VersionId and IsLatest. A key's versions may run over two pages: it
        is given once the listing has gone past it. Refused (AccessDenied,
        NotImplemented), the poller lists the current objects only (logged once)."""
        from botocore.exceptions import ClientError

        pages = self.client.get_paginator("list_object_versions").paginate(
            Bucket=self.source.bucket, Prefix=self.source.key_prefix,
            PaginationConfig={"PageSize": self.list_page_size})
        held: dict[str, list[dict]] = {}
        started = False
        try:
            for page in pages:
                started = True
                for entry in page.get("Versions", []):
                    held.setdefault(entry["Key"], []).append(entry)
                for entry in page.get("DeleteMarkers", []):
                    held.setdefault(entry["Key"], []).append({**entry, "marker": True})
                last = max(held, default=None) if page.get("IsTruncated") else None
                contents, hidden = [], []
                for key in [k for k in sorted(held) if k != last]:
                    entries = held.pop(key)
                    shown = _not_hidden(entries)
                    contents.extend(shown)
                    hidden.extend(e for e in entries if not e.get("marker")
                                  and not any(e is v for v in shown))
                yield {"ResponseMetadata": page.get("ResponseMetadata", {}),
                       "Contents": contents, "Hidden": hidden}
        except ClientError as exc:
            if started or _code(exc) not in ("AccessDenied", "403", *NO_TAGGING):
                raise
            log.warning("bucket source %s: the store refuses ListObjectVersions (%s): only "
                        "the current object of each key is listed (grant "
                        "s3:ListBucketVersions)", self.source.id, _code(exc))
            self._versions_listable = False
            yield from self._pages()

    def _pages(self, after: str = "") -> Iterator[dict]:
        """Listing pages: ListObjectsV2, or ListObjects (markers) on a store that does not
        implement version 2 (older Ceph RGW, some appliances: 501 NotImplemented, or 400
        InvalidArgument on list-type); remembered for this poller."""
        from botocore.exceptions import ClientError

        args = {"Bucket": self.source.bucket, "Prefix": self.source.key_prefix,
                "PaginationConfig": {"PageSize": self.list_page_size}}
        if self._list_v2:
            pages = self._pages_v2(after)
            try:
                first = next(pages, None)
            except ClientError as exc:
                if _code(exc) not in NO_LIST_V2:
                    raise
                log.warning("bucket source %s: the store does not implement ListObjectsV2; "
                            "listing with ListObjects", self.source.id)
                self._list_v2 = False
            else:
                if first is not None:
                    yield first
                    yield from pages
                return
        yield from self.client.get_paginator("list_objects").paginate(**args)

    def _pages_v2(self, after: str = "") -> Iterator[dict]:
        """ListObjectsV2 pages. Not botocore's paginator: a page truncated without a
        NextContinuationToken (older Ceph RGW, appliances) ended its listing without a word,
        and no object past that page was ever taken. Such a page is followed by the next one
        after its last key (StartAfter); a page that gives no way on at all (no key, no
        token) or the same token again stops the poll with an error."""
        args = {"Bucket": self.source.bucket, "Prefix": self.source.key_prefix,
                "MaxKeys": self.list_page_size}
        way: dict[str, str] = {"StartAfter": after} if after else {}
        tokens: set[str] = set()
        while True:
            page = self.client.list_objects_v2(**args, **way)
            yield page
            if not page.get("IsTruncated"):
                return
            token = page.get("NextContinuationToken")
            contents = page.get("Contents") or []
            if token and token not in tokens:
                tokens.add(token)
                way = {"ContinuationToken": token}
            elif not token and contents and contents[-1]["Key"] > way.get("StartAfter", ""):
                way = {"StartAfter": contents[-1]["Key"]}
            else:
                raise ListingStuck(self.where)

    # -- one group --------------------------------------------------------------------------
    def _take(self, chunk: list[_Object], pool: ThreadPoolExecutor,
              seen: _Remembered, result: PollResult) -> bool:
        fetched = [obj for obj in pool.map(self._fetch, chunk) if obj is not None]
        todo, marks = [], []
        for obj in fetched:
            if obj.pending is not None:  # recorded at an earlier poll, only the mark is left
                marks.append(obj.pending)
            elif obj.missing:  # gone since listed, or listed under a name it is not served by
                self._missing.add((obj.key, obj.etag))
            elif obj.unreadable is not None:  # this object refused: left, the others go on
                self._unreadable[obj.unreadable] = self._unreadable.get(obj.unreadable, 0) + 1
                if obj.unreadable in PARKED:
                    digest = _digest(obj.ident)
                    self._parked[digest] = self._clock() + self.park_seconds
                    self._parked_listed.add(digest)
            elif obj.item is None:  # marked before
                self._remember(seen, _digest(obj.ident))
            else:
                todo.append(obj)
        recorded = self._record(todo, result) if todo else []
        marks.extend(recorded or [])
        self._marks(marks, pool, seen, result)
        if recorded and self.on_intake is not None:
            self.on_intake()
        return recorded is not None

    def _remember(self, seen: _Remembered, digest: bytes) -> None:
        """An object found or made taken at this poll: remembered, and kept on disk."""
        seen.add(digest)
        self._fresh.append(digest)
        self._dirty = True

    def _marks(self, marks: list[_Mark], pool: ThreadPoolExecutor,
               seen: _Remembered, result: PollResult) -> None:
        """Mark recorded objects; those the endpoint did not let us mark wait for the next
        poll (remembered by this poller: intake is not asked twice for one object)."""
        marked: list[bool | None] = [None] * len(marks)
        by_key: dict[str, list[int]] = {}  # a key's versions marked in order: with move,
        for n, mark in enumerate(marks):  # the newest copy is the last one made
            by_key.setdefault(mark[0].key, []).append(n)

        def in_order(indexes: list[int]) -> None:
            for n in indexes:
                marked[n] = self._mark(*marks[n])

        list(pool.map(in_order, by_key.values()))
        failed = 0
        for mark, done in zip(marks, marked, strict=True):
            obj = mark[0]
            if done is None:
                self._unmarked[obj.slot] = mark
                failed += 1
                continue
            self._unmarked.pop(obj.slot, None)
            if done and self._moved_away(obj):
                self._gone_now.add(_digest(obj.ident))
            elif done:  # a key whose object was replaced meanwhile is looked at again
                self._remember(seen, _digest(obj.ident))
        if failed:
            how = "moved" if self.source.after == "move" else "tagged"
            result.error = (f"bucket source {self.source.id}: {failed} object(s) recorded but "
                            f"not {how}; done at the next poll")

    def _moved_away(self, obj: _Object) -> bool:
        """An object moved from a plain listing: deleted from under the prefix, it is never
        listed again. Remembered, it made the same bytes put again under its key within the
        same second (LastModified is to the second; the ETag is the bytes') look taken: left
        under the prefix for ever, by this poller and every later one (the memory is kept on
        disk). Now such a key listed again holds a new object: it is taken (the ledger
        records it as a byte-identical repeat) and moved. A version listed by
        ListObjectVersions stays (noncurrent, under our delete marker, listed on a tie of
        seconds): remembered, by its VersionId."""
        return (self.source.after == "move" and obj.latest and obj.listed_version is None)

    def _fetch(self, obj: _Object) -> _Object | None:
        """Its tags, then its bytes (or only its head when too large); None when it changed
        or vanished since the listing (looked at again at the next poll)."""
        from botocore.exceptions import ClientError

        if obj.pending is not None:
            return obj
        bucket = self.source.bucket
        try:
            obj.tags = self._tags(obj.key, None if obj.latest else obj.listed_version)
            if obj.tags.get(TAG) in (DONE, REFUSED):
                return obj
            received_at = datetime.now(UTC)
            limit = self.source.max_bytes
            rejection = None
            if obj.size > limit:
                read = self._download(obj, HEAD_KEPT, Range=f"bytes=0-{HEAD_KEPT - 1}")
                if read is None:  # the version listed, found tagged by an earlier poller
                    return obj
                response, data = read  # a store ignoring Range sends it all: HEAD_KEPT read
                rejection = ("S3_OBJECT_TOO_LARGE",
                             f"object of {obj.size} bytes is over the bucket source's limit of "
                             f"{limit} bytes (max_bytes); only its first {len(data)} bytes "
                             f"were archived")
            else:
                read = self._download(obj, limit + 1)
                if read is None:
                    return obj
                response, data = read
                if len(data) != obj.size:  # not the object listed (a store ignoring If-Match)
                    log.warning("bucket source %s: object %s is not the one listed (%d bytes "
                                "read, %d listed); looked at again at the next poll",
                                self.source.id, key_ref(obj.key), len(data), obj.size)
                    return None
                if not data:  # refused, as an empty file in a folder (connectors/folder.py)
                    rejection = ("S3_EMPTY_OBJECT", "the object is empty (0 bytes): its "
                                 "sender put nothing in it")
                elif codings(response.get("ContentEncoding")):
                    data, rejection = self._decoded(obj, data, response["ContentEncoding"])
            obj.version = response.get("VersionId")
            self._versions_seen(obj.version)
            if self.source.after != "move" and (len(_own(obj.tags)) >= MAX_TAGS
                                                or self._tagging_denied is not None):
                first = recorded_as(self.engine, self.source.id,
                                    hashlib.sha256(data).hexdigest(),
                                    shown(obj.key, FILE_NAME_MAX))
                if first is not None:  # taken before; it could not carry our tag
                    return obj
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code in ("NoSuchKey", "NoSuchVersion", "404"):  # deleted since (lagging list?)
                obj.missing = True
                return obj
            if code in ("PreconditionFailed", "412", "InvalidRange"):
                return None
            if code not in UNREADABLE and not _server_error(exc):
                raise
            log.warning("bucket source %s: object %s cannot be read (%s on %s); left in place%s",
                        self.source.id, key_ref(obj.key), code, exc.operation_name,
                        f", asked for again in {self.park_seconds / 60:g} min" if code in PARKED
                        else "")
            obj.unreadable = code
            return obj
        except DownloadCut as exc:
            log.warning("bucket source %s: object %s: its download was cut %d times (%s); left "
                        "in place, read again at the next poll", self.source.id,
                        key_ref(obj.key), self.body_retries + 1, exc.cause)
            obj.unreadable = CUT
            return obj
        obj.item = Received(data=data, source=self.source.id, channel="s3",
                            peer=shown(f"s3://{bucket}/{obj.key}", PEER_MAX),
                            file_name=shown(obj.key, FILE_NAME_MAX), received_at=received_at,
                            rejection=rejection)
        return obj

    def _download(self, obj: _Object, limit: int, **extra: str) -> tuple[dict, bytes] | None:
        """The object listed (``_get_listed``) and at most ``limit`` bytes of its body. botocore
        retries a request (standard mode) until its answer's headers, never the reading of
        its body: a connection reset or a read timeout in the middle of a download failed
        the whole poll, before intake, and the objects read with it were read again at the
        next poll; one that a proxy's idle timeout always cuts (a slow store, a large
        object) stopped the whole source for good. Now it is asked for again, at most
        ``body_retries`` more times, waiting ``retry_backoff`` seconds then twice that;
        still cut: DownloadCut (the object left in place, the others taken)."""
        from botocore.exceptions import (
            IncompleteReadError,
            ReadTimeoutError,
            ResponseStreamingError,
        )

        for attempt in range(self.body_retries + 1):
            response = self._get_listed(obj, **extra)
            if response is None:
                return None
            try:
                return response, _read_body(response, limit)
            except (ResponseStreamingError, ReadTimeoutError, IncompleteReadError) as exc:
                if attempt == self.body_retries or self.stop_event.wait(
                        self.retry_backoff * 2 ** attempt):
                    raise DownloadCut(type(exc).__name__) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def _versions_seen(self, version: str | None) -> None:
        """An object read answers with a VersionId while the bucket is taken as unversioned:
        its versioning was turned on since it was asked; asked again at the next poll."""
        if version not in (None, "", "null") and self._versioned is False \
                and not self._versioning_refused:
            self._versioned = None

    def _decoded(self, obj: _Object, data: bytes,
                 header: str) -> tuple[bytes, tuple[str, str] | None]:
        """An object stored compressed (Content-Encoding: gzip), decompressed: its bytes
        and no refusal; or, when it cannot be, the bytes as stored (archived for the admin)
        or the first 64 KiB of an object over max_bytes once decompressed, and why."""
        limit = self.source.max_bytes
        try:
            return decode(data, header, limit), None
        except TooLarge:
            code = "S3_OBJECT_TOO_LARGE"
            why = (f"object of {obj.size} bytes stored compressed ({header.strip()[:40]}) is "
                   f"over the bucket source's limit of {limit} bytes (max_bytes) once "
                   f"decompressed; only its first {HEAD_KEPT} bytes as stored were archived")
            data = data[:HEAD_KEPT]
        except Damaged:
            code = "S3_BAD_CONTENT_ENCODING"
            why = (f"the object says it is compressed (Content-Encoding: {header.strip()[:40]}) "
                   f"but its bytes do not decompress (cut or damaged); archived as stored")
        return data, (code, why)  # logged by _record, with the import id

    def _tags(self, key: str, version: str | None = None) -> dict[str, str]:
        """An object's tags (of one version of it, when given); with after = "move" on a
        store without object tagging, none (a move needs no tag; with after = "tag" the
        refusal fails the poll, and says why)."""
        from botocore.exceptions import ClientError

        if not self._tagging:
            return {}
        extra = {"VersionId": version} if version else {}
        try:
            return {t["Key"]: t["Value"] for t in self.client.get_object_tagging(
                Bucket=self.source.bucket, Key=key, **extra)["TagSet"]}
        except ClientError as exc:
            if _code(exc) in ("AccessDenied", "403"):
                if self.source.after == "move":  # a move needs no tag: the copy goes without
                    self._copies_untagged("GetObjectTagging")
                    return {}
                self._tags_refused("GetObjectTagging")
                return {}  # not known by its tag: by the ledger (_fetch)
            if self.source.after != "move" or _code(exc) not in NO_TAGGING:
                raise
        log.warning("bucket source %s: the store does not implement object tagging; objects "
                    "are moved without tags", self.source.id)
        self._tagging = False
        return {}

    def _copies_untagged(self, operation: str) -> None:
        """after = "move" with credentials that may copy and delete but not read or write
        tags (a policy of GetObject, PutObject, DeleteObject, ListBucket): every object was
        'cannot be read (AccessDenied)', or recorded and then 'not moved' at every poll, its
        tagged copy refused. A move needs no tag (the prefix says it was taken): the copies
        go without (the sender's own tags then not carried over). Said once."""
        if self._tagging_denied is None:
            log.warning("bucket source %s: the store refuses %s (AccessDenied): objects are "
                        "moved without tags (grant s3:GetObjectTagging and "
                        "s3:PutObjectTagging to keep them)", self.source.id, operation)
        self._tagging_denied = self._tagging_denied or operation

    def _tags_refused(self, operation: str) -> None:
        """after = "tag" with credentials that may read the objects but not their tags, or
        not tag them (AccessDenied): every object read was recorded, then 'recorded but not
        tagged' at every poll (GetObjectTagging refused: every object 'cannot be read', none
        taken), and a restarted poller recorded every object again. Now the poller falls
        back on the ledger: an object without our tag is taken only if the ledger holds no
        import of the same source, key and bytes (as for an object carrying S3's 10 tags),
        and one taken is remembered (the s3-taken memory under the home). Said once."""
        if self._tagging_denied is None:
            log.warning("bucket source %s: the store refuses %s (AccessDenied): objects taken "
                        "are not tagged; each is known by the ledger (same source, key and "
                        "bytes) and by the poller's memory (grant s3:GetObjectTagging and "
                        "s3:PutObjectTagging, or set after = \"move\")", self.source.id,
                        operation)
        self._tagging_denied = self._tagging_denied or operation

    def _record(self, todo: list[_Object],
                result: PollResult) -> list[tuple[_Object, str, int | None, str | None]] | None:
        """intake; (object, done/refused, first import id, refusal code) per object; None
        when the store is down (nothing marked)."""
        try:
            results = intake(self.engine, self.archive, [obj.item for obj in todo])
        except Exception as exc:  # noqa: BLE001 - classified below
            if is_outage(exc):
                result.pending += len(todo)
                result.error = f"bucket source {self.source.id}: {outage_text(exc)}"
                log.error("%s; %d object(s) left unmarked, taken at a later poll",
                          result.error, len(todo))
                return None
            if len(todo) == 1:
                log.error("bucket source %s: intake refused object %s (%s); marked refused",
                          self.source.id, key_ref(todo[0].key), type(exc).__name__)
                result.taken += 1
                result.refused += 1
                return [(todo[0], REFUSED, None, "S3_INTAKE_ERROR")]
            marks = []
            for obj in todo:  # one input the intake cannot take: find it, take the others
                one = self._record([obj], result)
                if one is None:
                    return marks or None
                marks.extend(one)
            return marks
        result.add(results)
        marks = []
        for obj, res in zip(todo, results, strict=True):
            first = res.message_ids[0] if res.message_ids else res.batch_id
            result.taken += 1
            if obj.item.rejection is not None:
                result.refused += 1
                code = obj.item.rejection[0]
                log.warning("bucket source %s: object %s of %d bytes refused (%s), import %s",
                            self.source.id, key_ref(obj.key), obj.size, code, first)
                marks.append((obj, REFUSED, first, code))
            else:
                marks.append((obj, DONE, first, None))
        return marks

    def _mark(self, obj: _Object, status: str, import_id: int | None,
              code: str | None) -> bool | None:
        """Tag (or move) an object recorded by intake; False when the key holds a new object
        since it was read (left unmarked for the next poll); None when the endpoint refused
        or failed (logged; this poller marks it at its next poll, a restarted one records it
        again as a byte-identical repeat). A move copied and not deleted is copied again
        (the same bytes) and deleted."""
        from botocore.exceptions import BotoCoreError, ClientError

        tags = dict(obj.tags or {})
        tags[TAG] = status
        if import_id is not None:
            tags[TAG_IMPORT] = str(import_id)
        if len(tags) > MAX_TAGS:
            tags.pop(TAG_IMPORT, None)
        if len(tags) > MAX_TAGS:  # the sender's own 10 tags: none of them is ours to drop
            if self.source.after != "move":
                log.warning("bucket source %s: object %s carries %d tags of its own, no room "
                            "for %s (import %s); left untagged, known by the ledger",
                            self.source.id, key_ref(obj.key), MAX_TAGS, TAG, import_id)
                return True
            tags = _own(obj.tags)  # moved: the prefix says it was taken, its tags kept
        bucket = self.source.bucket
        try:
            if self.source.after == "move":
                prefix = (self.source.processed_prefix if status == DONE
                          else self.source.refused_prefix)
                source = {"Bucket": bucket, "Key": obj.key}
                if obj.version:
                    source["VersionId"] = obj.version
                self._copy(prefix + obj.key, source, obj.etag, tags, obj.size)
                if not obj.latest:  # a newer version is on top: hidden when it is moved
                    if self.source.delete_moved_version:
                        self._delete_version(obj, import_id)
                    return True
                try:  # only the object read: one put since is not ours to delete
                    self._delete_if_match(obj)
                except ClientError as exc:
                    if not _changed(exc):
                        raise
                    if obj.listed_version is not None:  # listed by version: the new one
                        return True  # is listed too, and its move hides this one
                    return self._left(obj, import_id)
                if self.source.delete_moved_version:
                    self._delete_version(obj, import_id)
            else:
                extra = {"VersionId": obj.version} if obj.version else {}
                try:
                    self.client.put_object_tagging(
                        Bucket=bucket, Key=obj.key, **extra,
                        Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in tags.items()]})
                except ClientError as exc:
                    if _code(exc) not in ("AccessDenied", "403"):
                        raise
                    self._tags_refused("PutObjectTagging")
                    return True  # known by the ledger and remembered: never taken twice
                if not obj.version:
                    return self._untag_if_replaced(obj, import_id)
        except (BotoCoreError, ClientError) as exc:
            log.error("bucket source %s: import %s recorded but object %s not marked %s (%s)",
                      self.source.id, import_id, key_ref(obj.key), status,
                      self._describe(exc) if isinstance(exc, ClientError)
                      else type(exc).__name__)
            return None
        return True

    def _delete_if_match(self, obj: _Object) -> None:
        """Delete the object read, not one put under its key since: DELETE If-Match. On a
        store that does not implement a conditional DELETE (501): the very version read when
        the bucket is versioned (its copy is under processed/), else HEAD If-Match then a
        plain DELETE: only a put in the instant between the two could be deleted unread, a
        narrow window against every object copied again at every poll and never deleted."""
        from botocore.exceptions import ClientError

        bucket = self.source.bucket
        if self._conditional_delete:
            try:
                self.client.delete_object(Bucket=bucket, Key=obj.key, IfMatch=obj.etag)
                return
            except ClientError as exc:
                # NotImplemented / 501; or 412 for the very object read (an If-Match that
                # refuses the store's own ETags)
                if _code(exc) not in NO_TAGGING and not (_changed(exc) and self._still(obj)):
                    raise
            log.warning("bucket source %s: the store does not implement conditional deletes "
                        "(or refuses its own ETags in If-Match); checked by HEAD before each "
                        "delete", self.source.id)
            self._conditional_delete = False
        if obj.version and obj.version != "null":
            self._hide_version(obj)
            return
        if not self._still(obj):
            raise _precondition_failed("DeleteObject")
        self.client.delete_object(Bucket=bucket, Key=obj.key)

    def _hide_version(self, obj: _Object) -> None:
        """On a versioned bucket without a conditional DELETE: a delete marker, then a look
        at the versions under it. The version read was deleted by its VersionId before: an
        older version of the key (a sender's first export, replaced before our poll)
        became current again and was taken at the next poll, the superseded bytes filed
        after the newer ones (and the version read, kept by default, was gone for good).
        A put between our read and our marker is hidden by it: the marker is then removed
        again (only it), that object is taken at the next poll."""
        from botocore.exceptions import ClientError

        client, bucket = self.client, self.source.bucket
        marker = client.delete_object(Bucket=bucket, Key=obj.key).get("VersionId")
        try:
            listed = client.list_object_versions(Bucket=bucket, Prefix=obj.key, MaxKeys=100)
        except ClientError as exc:
            if _code(exc) not in ("AccessDenied", "403", *NO_TAGGING):
                raise
            # moved all the same (copied, hidden): only the check for a put since is missing
            if self._versions_listable:
                log.warning("bucket source %s: the store refuses ListObjectVersions (%s): a "
                            "put in the instant between our read and our delete marker "
                            "cannot be found (grant s3:ListBucketVersions)", self.source.id,
                            _code(exc))
            self._versions_listable = False
            return
        versions = [v for v in listed.get("Versions", []) if v["Key"] == obj.key]
        # a key's versions are listed newest first (LastModified is to the second on many
        # stores: two puts in one second tie)
        if not versions or versions[0]["VersionId"] == obj.version:
            return
        if not marker:  # a store that does not say: the marker on top of the key
            marker = next((m["VersionId"] for m in listed.get("DeleteMarkers", [])
                           if m["Key"] == obj.key and m.get("IsLatest")), None)
        if marker:
            client.delete_object(Bucket=bucket, Key=obj.key, VersionId=marker)
        raise _precondition_failed("DeleteObject")

    def _delete_version(self, obj: _Object, import_id: int | None) -> None:
        """``delete_moved_version``: the version read, now noncurrent under our delete marker
        and copied under processed/ (or refused/), deleted for good. Only ever after intake
        has committed it and the copy is made; the marker stays (it hides the key's older
        versions). Refused, the version is kept (the default) and the failure logged."""
        from botocore.exceptions import BotoCoreError, ClientError

        if not obj.version or obj.version == "null":
            return
        try:
            self.client.delete_object(Bucket=self.source.bucket, Key=obj.key,
                                      VersionId=obj.version)
        except (BotoCoreError, ClientError) as exc:
            log.warning("bucket source %s: import %s moved but the version read of object %s "
                        "not deleted (%s); kept as a noncurrent version", self.source.id,
                        import_id, key_ref(obj.key),
                        _code(exc) if isinstance(exc, ClientError) else type(exc).__name__)

    def _get(self, obj: _Object, **extra: str) -> dict:
        """GetObject of the object listed: If-Match its ETag. A store whose If-Match refuses
        its own ETags (DigitalOcean Spaces takes them unquoted only, as boto3 never sends
        them) answered 412 for every object: each one taken for replaced since the listing,
        none ever taken, nothing said. A 412 for an object whose ETag is still the one
        listed (HEAD) turns If-Match off for this poller: a plain GET, its ETag compared."""
        from botocore.exceptions import ClientError

        bucket = self.source.bucket
        if self._if_match:
            try:
                return self.client.get_object(Bucket=bucket, Key=obj.key, IfMatch=obj.etag,
                                              **extra)
            except ClientError as exc:
                if _code(exc) not in ("PreconditionFailed", "412") or not self._still(obj):
                    raise
            log.warning("bucket source %s: the store refuses its own ETags in If-Match; the "
                        "ETag of each object read is compared instead", self.source.id)
            self._if_match = False
        response = self.client.get_object(Bucket=bucket, Key=obj.key, **extra)
        answered = response.get("ETag")  # none: the size is still compared (_fetch)
        if answered is not None and _etag(answered) != _etag(obj.etag):
            response["Body"].close()
            raise _precondition_failed("GetObject")
        return response

    def _get_listed(self, obj: _Object, **extra: str) -> dict | None:
        """GetObject of the object listed; on a versioned bucket where the key was put again
        between our listing and our read, the version listed, by its VersionId. A lab that
        exports under one fixed name ('resultats.hl7') put its next file over the one we
        had just listed: the If-Match read was refused, the new object taken at the next
        poll, and the one listed, kept by the bucket as a noncurrent version, was never
        taken. Now that version is read (its own tags looked at first: None when an
        earlier poller marked it) and marked by its VersionId; the newer object is taken
        at the next poll. Unversioned, the bytes listed are gone: the key is looked at
        again at the next poll, as before."""
        from botocore.exceptions import ClientError

        if not obj.latest:  # a noncurrent version never changes: read by its VersionId
            return self.client.get_object(Bucket=self.source.bucket, Key=obj.key,
                                          VersionId=obj.listed_version, **extra)
        try:
            return self._get(obj, **extra)
        except ClientError as exc:
            if _code(exc) not in ("PreconditionFailed", "412"):
                raise
            version = self._listed_version(obj)
            if version is None:
                raise
        log.warning("bucket source %s: object %s was put again after it was listed; the "
                    "version listed is read (the new one is taken at the next poll)",
                    self.source.id, key_ref(obj.key))
        obj.tags = self._tags(obj.key, version)
        if obj.tags.get(TAG) in (DONE, REFUSED):
            return None
        return self.client.get_object(Bucket=self.source.bucket, Key=obj.key,
                                      VersionId=version, **extra)

    def _listed_version(self, obj: _Object) -> str | None:
        """The VersionId of the object listed (same key, ETag and LastModified; the same
        ETag alone when the store renders LastModified otherwise in its version listing),
        when the bucket keeps it; None on an unversioned bucket, or when the store will not
        list versions (logged once)."""
        from botocore.exceptions import ClientError

        if not self._versions_listable:
            return None
        try:
            pages = self.client.get_paginator("list_object_versions").paginate(
                Bucket=self.source.bucket, Prefix=obj.key,
                PaginationConfig={"PageSize": 100, "MaxItems": 1000})
            versions = [v for page in pages for v in page.get("Versions", [])
                        if v["Key"] == obj.key and v.get("VersionId") not in (None, "null")
                        and _etag(v.get("ETag")) == _etag(obj.etag)]
        except ClientError as exc:
            if _code(exc) not in ("AccessDenied", "403", *NO_TAGGING):
                raise
            log.warning("bucket source %s: the store refuses ListObjectVersions (%s): an "
                        "object put again between our listing and our read is not found in "
                        "the bucket's versions (grant s3:ListBucketVersions)", self.source.id,
                        _code(exc))
            self._versions_listable = False
            return None
        same = [v for v in versions if str(v.get("LastModified") or "") == obj.modified]
        found = same or versions
        return found[0]["VersionId"] if found else None

    def _still(self, obj: _Object) -> bool:
        """The key still holds the object listed: HEAD without condition, ETags compared."""
        from botocore.exceptions import ClientError

        try:
            head = self.client.head_object(Bucket=self.source.bucket, Key=obj.key)
        except ClientError as exc:
            if _changed(exc):
                return False
            raise
        return _etag(head.get("ETag")) == _etag(obj.etag)

    def _copy(self, key: str, source: dict[str, str], etag: str, tags: dict[str, str],
              size: int) -> None:
        """Copy under processed/ or refused/ if still the object read. CopyObject takes at
        most 5 GiB: a larger object (one refused as too large: a backup dropped in the
        bucket) is copied in parts, as is any object on a store that refuses the single copy
        with InvalidRequest (a lower limit of its own); refused, it stayed in place and was
        'copied again at the next poll', for ever."""
        from botocore.exceptions import ClientError

        if size > COPY_LIMIT:
            self._copy_parts(key, source, etag, tags, size)
            return
        try:
            self._copy_whole(key, source, etag, tags)
        except ClientError as exc:
            if _code(exc) != "InvalidRequest":
                raise
            log.warning("bucket source %s: the store refused a copy of %d bytes in one "
                        "request (InvalidRequest); copied in parts", self.source.id, size)
            self._copy_parts(key, source, etag, tags, size)

    def _copy_parts(self, key: str, source: dict[str, str], etag: str, tags: dict[str, str],
                    size: int) -> None:
        """A multipart copy (UploadPartCopy, each part only if still the object read); the
        upload is aborted when a part fails, leaving no parts billed in the bucket."""
        from botocore.exceptions import BotoCoreError, ClientError

        client, bucket = self.client, self.source.bucket
        upload = None
        if self._tagging and tags:
            try:
                upload = client.create_multipart_upload(
                    Bucket=bucket, Key=key, Tagging=urlencode(tags))["UploadId"]
            except ClientError as exc:
                if _code(exc) not in (*NO_TAGGING, "AccessDenied", "403"):
                    raise
                upload = client.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
                if _code(exc) in ("AccessDenied", "403"):
                    self._copies_untagged("CreateMultipartUpload with tags")
                self._tagging = False
        if upload is None:
            upload = client.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
        try:
            parts = []
            for number, start in enumerate(range(0, max(size, 1), PART_BYTES), 1):
                part = {"Bucket": bucket, "Key": key, "CopySource": source,
                        "CopySourceIfMatch": etag, "UploadId": upload, "PartNumber": number}
                if size:
                    part["CopySourceRange"] = f"bytes={start}-{min(start + PART_BYTES, size) - 1}"
                done = client.upload_part_copy(**part)
                parts.append({"PartNumber": number, "ETag": done["CopyPartResult"]["ETag"]})
            client.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload,
                                             MultipartUpload={"Parts": parts})
        except BaseException:
            with contextlib.suppress(BotoCoreError, ClientError):
                client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload)
            raise

    def _copy_whole(self, key: str, source: dict[str, str], etag: str,
                    tags: dict[str, str]) -> None:
        """CopyObject, tagged when the store has tagging (one that refuses a tagged copy gets
        a copy without tags, from then on)."""
        from botocore.exceptions import ClientError

        args = {"Bucket": self.source.bucket, "Key": key, "CopySource": source,
                "CopySourceIfMatch": etag}
        if self._tagging:
            try:
                self.client.copy_object(**args, TaggingDirective="REPLACE",
                                        Tagging=urlencode(tags))
                return
            except ClientError as exc:
                if _code(exc) not in (*NO_TAGGING, "AccessDenied", "403"):
                    raise
                denied = _code(exc) in ("AccessDenied", "403")
            if not denied:  # no tagging at all (NotImplemented)
                self._tagging = False
            self.client.copy_object(**args)  # refused too: not a matter of tags, raised
            if denied:  # the credentials' refusal: untagged copies from now on
                self._copies_untagged("CopyObject with tags")
                self._tagging = False
            return
        self.client.copy_object(**args)

    def _untag_if_replaced(self, obj: _Object, import_id: int | None) -> bool:
        """Without versioning a tag goes to whatever object has the key now: if the sender
        put a new one since it was read, that one got our 'done' and would never be taken.
        So the key is looked at again (its ETag) and, when it changed, our two tags are taken
        off the new object (its own tags kept): it is taken at the next poll."""
        from botocore.exceptions import ClientError

        client, bucket = self.client, self.source.bucket
        if self._still(obj):
            return True
        try:
            now = client.get_object_tagging(Bucket=bucket, Key=obj.key)["TagSet"]
            kept = [t for t in now if t["Key"] not in (TAG, TAG_IMPORT)]
            if kept and len(kept) != len(now):
                client.put_object_tagging(Bucket=bucket, Key=obj.key,
                                          Tagging={"TagSet": kept})
            elif len(kept) != len(now):
                client.delete_object_tagging(Bucket=bucket, Key=obj.key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in ("NoSuchKey", "404"):
                raise
        return self._left(obj, import_id)

    def _left(self, obj: _Object, import_id: int | None) -> bool:
        log.warning("bucket source %s: object %s was replaced after it was read (import %s): "
                    "the new one is left in place and taken at the next poll",
                    self.source.id, key_ref(obj.key), import_id)
        return False

    def close(self) -> None:
        pass

    def __enter__(self) -> BucketPoller:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _not_hidden(entries: list[dict]) -> list[dict]:
    """A key's versions newer than its newest delete marker, oldest first; none when a
    marker is the key's current entry (its sender deleted it, or we moved it). Versions and
    markers come in two lists, ordered between them only by LastModified, which many stores
    keep to the second: a tie is taken (a version taken twice is a byte-identical repeat on
    the ledger; one skipped would be lost)."""
    if any(e.get("marker") and e.get("IsLatest") for e in entries):
        return []
    markers = [e["LastModified"] for e in entries if e.get("marker")]
    hidden_to = max(markers) if markers else None
    versions = [e for e in reversed(entries) if not e.get("marker")
                and e.get("VersionId") not in (None, "")
                and (hidden_to is None or e["LastModified"] >= hidden_to)]
    return sorted(versions, key=lambda e: e["LastModified"])  # stable: listing order kept


def _read_body(response: dict, limit: int) -> bytes:
    """At most ``limit`` bytes of a GetObject body, the connection then let go: what the
    store sends beyond (a Range it ignored, an object replaced by a larger one behind an
    If-Match it ignored) is never read into memory."""
    body = response["Body"]
    chunks, total = [], 0
    try:
        while total < limit:  # to the end when shorter: botocore then checks its length
            chunk = body.read(min(1 << 20, limit - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
    finally:
        body.close()
    return b"".join(chunks)


def _store_now(page: dict) -> datetime:
    """The store's clock when it answered (its Date header): an object's LastModified is by
    that clock, and ours may be minutes apart from a NAS's. Ours when it sent none."""
    date = page.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date")
    try:
        when = parsedate_to_datetime(date) if date else None
    except (TypeError, ValueError):
        when = None
    if when is None or when.tzinfo is None:
        return datetime.now(UTC)
    return when


def _content_md5(request, **_: object) -> None:  # noqa: ANN001
    """Content-MD5 on a request whose body S3's model says must carry a checksum. botocore
    1.36 and later send a CRC32 there instead; MinIO before 2025, Ceph RGW before Squid and
    other S3-compatible stores refuse such a request without Content-MD5 (MissingContentMD5,
    InvalidRequest): every tag was refused after intake, 'recorded but not tagged' at every
    poll, and a restarted poller recorded every object again. AWS accepts both headers."""
    body = request.body
    if isinstance(body, str):
        body = body.encode("utf-8")
    if isinstance(body, bytes) and "Content-MD5" not in request.headers:
        request.headers["Content-MD5"] = base64.b64encode(
            hashlib.md5(body, usedforsecurity=False).digest()).decode("ascii")


def _requester_pays(request, **_: object) -> None:  # noqa: ANN001
    """Every request to a requester-pays bucket says we pay for it (signed with it)."""
    request.headers["x-amz-request-payer"] = "requester"


def _skew_hint(exc: Exception) -> str:
    """Why a store answers RequestTimeTooSkewed, and by how much: boto3 signs with this
    host's clock and does not correct it, so every request of the poller (and the S3
    archive's) is refused until the clock is set right; the code alone read like a store
    fault. The skew is the store's ServerTime (AWS, MinIO, Ceph RGW send it beside our
    RequestTime) or its Date header, against our clock."""
    error = getattr(exc, "response", {}).get("Error", {})
    store = _when(error.get("ServerTime"))
    ours = _when(error.get("RequestTime"))
    if store is None:
        date = getattr(exc, "response", {}).get("ResponseMetadata", {}).get(
            "HTTPHeaders", {}).get("date")
        store, ours = _when(date), datetime.now(UTC)
    if store is None or ours is None:
        return ("this host's clock is too far from the store's (S3 refuses requests signed "
                "15 minutes off): synchronise it (NTP)")
    minutes = round((ours - store).total_seconds() / 60)
    way = "ahead of" if minutes > 0 else "behind"
    return (f"this host's clock is about {abs(minutes)} min {way} the store's (S3 refuses "
            f"requests signed 15 minutes off): synchronise it (NTP)")


def _when(text: str | None) -> datetime | None:
    """A time of an S3 error (ISO 8601 '2026-11-27T04:50:27Z', or compact '20261127T045027Z')
    or an HTTP date; None when absent or unreadable."""
    if not text:
        return None
    for parse in (datetime.fromisoformat, lambda t: datetime.strptime(t, "%Y%m%dT%H%M%SZ"),
                  parsedate_to_datetime):
        try:
            when = parse(text.strip().replace("Z", "+00:00") if parse is datetime.fromisoformat
                         else text.strip())
        except (TypeError, ValueError):
            continue
        return when if when.tzinfo is not None else when.replace(tzinfo=UTC)
    return None


def _etag(value: str | None) -> str:
    """An ETag as compared: quotes and a weak marker off (stores differ in both)."""
    text = (value or "").strip()
    return text[2:].strip('"') if text.startswith("W/") else text.strip('"')


def _precondition_failed(operation: str) -> Exception:
    """The error a conditional request gets when the key holds another object: raised
    when the condition was checked by us (a store without a working If-Match)."""
    from botocore.exceptions import ClientError

    return ClientError({"Error": {"Code": "PreconditionFailed",
                                  "Message": "the key holds another object"}}, operation)


def _own(tags: dict[str, str] | None) -> dict[str, str]:
    """An object's tags that are not ours."""
    return {k: v for k, v in (tags or {}).items() if k not in (TAG, TAG_IMPORT)}


def _code(exc: Exception) -> str | None:
    return getattr(exc, "response", {}).get("Error", {}).get("Code")


def _server_error(exc: Exception) -> bool:
    """An answer of HTTP 500 (InternalError, or a store's own code for it): on a read of one
    object, that object's copies are damaged or out of the store's reach. A 503 (SlowDown,
    ServiceUnavailable) is the store asking us to slow down, not a fault of one object."""
    meta = getattr(exc, "response", {}).get("ResponseMetadata", {})
    return meta.get("HTTPStatusCode") == 500 or _code(exc) == "InternalError"


def _changed(exc: Exception) -> bool:
    """A conditional request (If-Match) refused: the key holds another object (or none) than
    the one read."""
    code = getattr(exc, "response", {}).get("Error", {}).get("Code")
    return code in ("PreconditionFailed", "412", "NoSuchKey", "404")


def key_ref(key: str) -> str:
    """How logs name an object: keys are often file names, and file names of medical reports
    hold patient names. The ledger keeps the key (imports show); logs keep a digest of it."""
    return "key#" + hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()[:12]
