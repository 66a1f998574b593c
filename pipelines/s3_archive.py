"""The raw archive on an S3 bucket (any S3-compatible store: endpoint URL configurable).

Objects are named ``<prefix>/ab/cd/<sha256>``. ``put`` returns only once S3 has answered the
PUT (S3 acknowledges a write only after storing it durably) and the write is verified: the
PUT carries our sha256 for the store to check, but many S3-compatible stores ignore that header
(Ceph RGW before Squid, Garage, some providers), so the answer is checked too (the store's
sha256 when it returns one, else its ETag against the MD5 of what was sent, else, for a store
whose ETags are not MD5s, MinIO with encryption or SSE-KMS, the object is read back).
A PUT is conditional (``If-None-Match: *``): an object already held is checked, never written
over (plain PUTs on a store that does not implement conditional ones).
``get`` verifies the sha256 of what it reads back. Credentials come from the environment or an
AWS profile (``S3Options.profile``, else AWS_PROFILE as boto3 reads it). Server-side
encryption (``S3Options.sse``: AES256, aws:kms with an optional key id) is asked of every PUT.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlparse

from pipelines.archive import (
    ArchiveCorrupt,
    ArchiveError,
    ArchiveMissing,
    ArchiveUnavailable,
    sha256_hex,
)
from pipelines.settings import SettingsError

SSE_ALGORITHMS = ("AES256", "aws:kms", "aws:kms:dsse")


@dataclass(frozen=True, slots=True)
class S3Options:
    """How the archive talks to S3 beyond the bucket: encryption at rest and credentials."""

    sse: str | None = None  # ServerSideEncryption of every PUT
    kms_key_id: str | None = None  # SSEKMSKeyId (aws:kms only; None: the bucket's default key)
    profile: str | None = None  # an AWS profile (None: environment, AWS_PROFILE, instance role)

    def __post_init__(self) -> None:
        if self.sse is not None and self.sse not in SSE_ALGORITHMS:
            raise SettingsError(f"DMP_S3_SSE must be one of {', '.join(SSE_ALGORITHMS)}, "
                                f"not {self.sse!r}")
        if self.kms_key_id and not (self.sse or "").startswith("aws:kms"):
            raise SettingsError("DMP_S3_KMS_KEY_ID needs DMP_S3_SSE=aws:kms")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> S3Options:
        """DMP_S3_SSE, DMP_S3_KMS_KEY_ID, DMP_S3_PROFILE (empty values count as unset)."""
        env = os.environ if env is None else env
        return cls(sse=env.get("DMP_S3_SSE") or None,
                   kms_key_id=env.get("DMP_S3_KMS_KEY_ID") or None,
                   profile=env.get("DMP_S3_PROFILE") or None)

    def put_arguments(self) -> dict[str, str]:
        """The encryption arguments of put_object."""
        extra = {"ServerSideEncryption": self.sse} if self.sse else {}
        if self.kms_key_id:
            extra["SSEKMSKeyId"] = self.kms_key_id
        return extra


def s3_client(endpoint_url: str | None = None, profile: str | None = None):  # noqa: ANN201
    """A boto3 S3 client; with ``profile``, that profile's credentials and region."""
    import boto3
    from botocore.exceptions import BotoCoreError, ProfileNotFound

    try:
        session = boto3.Session(profile_name=profile) if profile else boto3.Session()
        return session.client("s3", endpoint_url=endpoint_url)
    except ProfileNotFound:
        raise SettingsError(f"AWS profile {profile or os.environ.get('AWS_PROFILE')!r} "
                            "not found (DMP_S3_PROFILE or AWS_PROFILE)") from None
    except BotoCoreError as exc:  # a malformed config file...
        raise ArchiveError(f"S3 client cannot be set up ({type(exc).__name__})") from exc


_TRANSIENT_CODES = {"SlowDown", "Throttling", "ThrottlingException", "RequestTimeout",
                    "ServiceUnavailable", "InternalError", "RequestTimeTooSkewed"}
# The store refusing who we are: keys wrong, or rotated and the old ones expired
_CREDENTIAL_CODES = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken",
                     "ExpiredTokenException", "InvalidToken", "TokenRefreshRequired"}


# How stores that do not implement If-None-Match on PUT refuse it (a plain PUT follows: if
# the refusal was about something else, that PUT fails the same way and says so)
_NO_CONDITIONAL_PUT = ("NotImplemented", "501", "InvalidArgument", "InvalidRequest",
                       "NotSupported")


# Part size of the managed upload (put_file): boto3's default, set here so that the multipart
# ETag a store gives (MD5 of the parts' MD5s) can be computed while the file is hashed
PART_BYTES = 8 * 1024 * 1024


def _md5(data: bytes = b""):  # noqa: ANN202
    return hashlib.md5(data, usedforsecurity=False)


class S3Archive:
    def __init__(self, bucket: str, prefix: str = "", *, endpoint_url: str | None = None,
                 client=None, server_side_encryption: str | None = None,  # noqa: ANN001
                 options: S3Options | None = None) -> None:
        if options is None:
            options = S3Options(sse=server_side_encryption)
        self._endpoint_url = endpoint_url
        self._own_client = client is None  # made here: remade after a credentials refusal
        self._client = s3_client(endpoint_url, options.profile) if client is None else client
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.options = options
        self._put_extra = options.put_arguments()
        self._conditional = True  # False once the store refused If-None-Match on PUT

    @property
    def client(self):  # noqa: ANN201
        """The boto3 client, remade when ``_forget_client`` dropped it."""
        if self._client is None:
            self._client = s3_client(self._endpoint_url, self.options.profile)
        return self._client

    def _forget_client(self, exc: Exception) -> None:
        """After the store refused our credentials (or none were found), a client made here
        is dropped, so the next write or read makes one that reads them again: a boto3
        session keeps the static keys it read first for its life, and keys rotated under a
        running service (a rewritten credentials file, temporary keys that expired) were
        never seen, every intake refused until a restart. A client given to us is kept."""
        from botocore.exceptions import ClientError, NoCredentialsError

        code = exc.response.get("Error", {}).get("Code") if isinstance(exc, ClientError) \
            else None
        if self._own_client and (isinstance(exc, NoCredentialsError)
                                 or code in _CREDENTIAL_CODES):
            self._client = None

    @property
    def sse(self) -> str | None:
        return self.options.sse

    @classmethod
    def from_url(cls, url: str, endpoint_url: str | None = None,
                 options: S3Options | None = None) -> S3Archive:
        """``options`` None: from the environment (DMP_S3_SSE, DMP_S3_KMS_KEY_ID,
        DMP_S3_PROFILE), so every process that opens the archive by URL encrypts alike."""
        parsed = urlparse(url)  # s3://bucket/prefix
        if not parsed.netloc:
            raise ArchiveError("archive URL must look like s3://bucket/prefix")
        return cls(parsed.netloc, parsed.path, endpoint_url=endpoint_url,
                   options=S3Options.from_env() if options is None else options)

    def key(self, sha: str) -> str:
        name = f"{sha[:2]}/{sha[2:4]}/{sha}"
        return f"{self.prefix}/{name}" if self.prefix else name

    def put(self, data: bytes) -> str:
        sha = sha256_hex(data)
        self.put_many([(sha, data)])
        return sha

    def put_many(self, items: list[tuple[str, bytes]]) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        for sha, data in items:
            checksum = base64.b64encode(hashlib.sha256(data).digest()).decode()
            try:
                answer = self._put_if_absent(sha, data, checksum)
            except (BotoCoreError, ClientError) as exc:
                self._forget_client(exc)
                raise ArchiveError(f"S3 archive write failed ({type(exc).__name__})") from exc
            if answer is not None:
                self._verify(sha, data, checksum, answer)

    def _put_if_absent(self, sha: str, data: bytes, checksum: str) -> Mapping | None:
        """PUT only when the key is free (If-None-Match: *): the archive is content-addressed,
        so an object held is never written over (a repeat damaged on the way would replace
        bytes earlier rows point to; on a WORM bucket each repeat was a new version). An
        object held is checked instead (None: it is the bytes); one that is not is replaced.
        A store that refuses conditional PUTs gets plain ones from then on."""
        from botocore.exceptions import ClientError

        def put(**condition: str) -> Mapping:
            return self.client.put_object(Bucket=self.bucket, Key=self.key(sha), Body=data,
                                          ChecksumSHA256=checksum, **self._put_extra,
                                          **condition)

        if not self._conditional:
            return put()
        try:
            return put(IfNoneMatch="*")
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code in _NO_CONDITIONAL_PUT:
                self._conditional = False
                return put()
            if code not in ("PreconditionFailed", "412", "ConditionalRequestConflict"):
                raise
        return None if self._holds(sha, data) else put()

    def _holds(self, sha: str, data: bytes) -> bool:
        """The object under ``sha`` is these bytes (its ETag is their MD5, else read back)."""
        from botocore.exceptions import ClientError

        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self.key(sha))
            md5 = hashlib.md5(data, usedforsecurity=False).hexdigest()
            if head.get("ETag", "").strip('"').lower() == md5:
                return True
        except ClientError:
            pass  # gone meanwhile, or HEAD refused: the read says
        try:
            self.get(sha)
        except (ArchiveCorrupt, ArchiveMissing):
            return False
        return True

    def _verify(self, sha: str, data: bytes, checksum: str, answer: Mapping) -> None:
        """The stored object is the bytes sent, or ArchiveUnavailable (intake does not
        acknowledge; the write is tried again with the input). The store's own sha256 when
        it returns one; else a plain ETag equal to the body's MD5 (every store, single PUT,
        no KMS); else (an ETag that is no MD5) a read-back."""
        returned = answer.get("ChecksumSHA256")
        if returned:
            if returned.split("-")[0] != checksum:
                raise ArchiveUnavailable(f"S3 archive write of {sha} not verified: the store "
                                         f"holds other bytes than sent (sha256)")
            return
        md5 = hashlib.md5(data, usedforsecurity=False).hexdigest()
        if answer.get("ETag", "").strip('"').lower() == md5:
            return
        try:
            self.get(sha)
        except (ArchiveCorrupt, ArchiveMissing) as exc:
            raise ArchiveUnavailable(f"S3 archive write of {sha} not verified: "
                                     f"{exc.code} on reading it back") from exc

    def put_file(self, path) -> tuple[str, int]:  # noqa: ANN001
        """Read once to hash (and to compute the ETag a store gives: MD5, or MD5 of the
        parts' MD5s), then boto3's managed upload (multipart for big files); the object exists
        only once the upload completes, and is verified: its ETag, else read back."""
        from boto3.exceptions import S3UploadFailedError
        from boto3.s3.transfer import TransferConfig
        from botocore.exceptions import BotoCoreError, ClientError

        digest, whole, parts, size = hashlib.sha256(), _md5(), [], 0
        with open(path, "rb") as fh:
            while chunk := fh.read(PART_BYTES):
                digest.update(chunk)
                whole.update(chunk)
                parts.append(_md5(chunk).digest())
                size += len(chunk)
        sha = digest.hexdigest()
        # the ETag a store computing MD5s gives: of the bytes, or of the parts' MD5s ("-n")
        etag = (whole.hexdigest() if size < PART_BYTES
                else f"{_md5(b''.join(parts)).hexdigest()}-{len(parts)}")
        extra = {"ServerSideEncryption": self.sse} if self.sse else {}
        config = TransferConfig(multipart_threshold=PART_BYTES, multipart_chunksize=PART_BYTES)
        try:
            self.client.upload_file(str(path), self.bucket, self.key(sha), ExtraArgs=extra,
                                    Config=config)
            head = self.client.head_object(Bucket=self.bucket, Key=self.key(sha))
        except (BotoCoreError, ClientError, S3UploadFailedError) as exc:
            self._forget_client(exc)
            raise ArchiveError(f"S3 archive write failed ({type(exc).__name__})") from exc
        if head.get("ETag", "").strip('"').lower() != etag and not self._reads_back(sha):
            raise ArchiveUnavailable(f"S3 archive write of {sha} not verified: the store "
                                     f"holds other bytes than sent")
        return sha, size

    def _reads_back(self, sha: str) -> bool:
        """The object under ``sha`` read back in chunks hashes to it (never whole in memory:
        the streamed path is for files too big for that)."""
        from botocore.exceptions import BotoCoreError, ClientError

        digest = hashlib.sha256()
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=self.key(sha))["Body"]
            for chunk in body.iter_chunks(1 << 20):
                digest.update(chunk)
        except (BotoCoreError, ClientError) as exc:
            raise ArchiveUnavailable(f"S3 archive read-back failed ({type(exc).__name__})"
                                     ) from exc
        return digest.hexdigest() == sha

    def get(self, sha: str) -> bytes:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            data = self.client.get_object(Bucket=self.bucket, Key=self.key(sha))["Body"].read()
        except ClientError as exc:
            error = exc.response.get("Error", {}).get("Code")
            if error in ("NoSuchKey", "404"):
                raise ArchiveMissing(f"archived object {sha} is missing") from exc
            self._forget_client(exc)
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
            if status >= 500 or error in _TRANSIENT_CODES or error in _CREDENTIAL_CODES:
                raise ArchiveUnavailable(f"S3 archive read failed ({error or status})") from exc
            raise ArchiveError(f"S3 archive read failed ({error or type(exc).__name__})") from exc
        except BotoCoreError as exc:  # connection refused, timeout: S3 unreachable
            self._forget_client(exc)
            raise ArchiveUnavailable(f"S3 archive read failed ({type(exc).__name__})") from exc
        if sha256_hex(data) != sha:
            raise ArchiveCorrupt(f"archived object {sha} is corrupt (sha256 mismatch)")
        return data
