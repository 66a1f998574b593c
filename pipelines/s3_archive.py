"""The raw archive on an S3 bucket (any S3-compatible store: endpoint URL configurable).

Objects are named ``<prefix>/ab/cd/<sha256>``. ``put`` returns only once S3 has answered the
PUT (S3 acknowledges a write only after storing it durably), and checks the returned checksum;
``get`` verifies the sha256 of what it reads back. Credentials come from the environment or an
AWS profile, as boto3 finds them.
"""

from __future__ import annotations

import base64
import hashlib
from urllib.parse import urlparse

from pipelines.archive import (
    ArchiveCorrupt,
    ArchiveError,
    ArchiveMissing,
    ArchiveUnavailable,
    sha256_hex,
)

_TRANSIENT_CODES = {"SlowDown", "Throttling", "ThrottlingException", "RequestTimeout",
                    "ServiceUnavailable", "InternalError", "RequestTimeTooSkewed"}


class S3Archive:
    def __init__(self, bucket: str, prefix: str = "", *, endpoint_url: str | None = None,
                 client=None, server_side_encryption: str | None = None) -> None:  # noqa: ANN001
        if client is None:
            import boto3

            client = boto3.client("s3", endpoint_url=endpoint_url)
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.sse = server_side_encryption

    @classmethod
    def from_url(cls, url: str, endpoint_url: str | None = None) -> S3Archive:
        parsed = urlparse(url)  # s3://bucket/prefix
        if not parsed.netloc:
            raise ArchiveError("archive URL must look like s3://bucket/prefix")
        return cls(parsed.netloc, parsed.path, endpoint_url=endpoint_url)

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
            extra = {"ServerSideEncryption": self.sse} if self.sse else {}
            try:
                self.client.put_object(
                    Bucket=self.bucket, Key=self.key(sha), Body=data,
                    ChecksumSHA256=base64.b64encode(hashlib.sha256(data).digest()).decode(),
                    **extra)
            except (BotoCoreError, ClientError) as exc:
                raise ArchiveError(f"S3 archive write failed ({type(exc).__name__})") from exc

    def put_file(self, path) -> tuple[str, int]:  # noqa: ANN001
        """Read once to hash, then boto3's managed upload (multipart for big files, each part
        checked by S3); the object exists only once the upload completes."""
        from boto3.exceptions import S3UploadFailedError
        from botocore.exceptions import BotoCoreError, ClientError

        digest, size = hashlib.sha256(), 0
        with open(path, "rb") as fh:
            while chunk := fh.read(1 << 20):
                digest.update(chunk)
                size += len(chunk)
        sha = digest.hexdigest()
        extra = {"ServerSideEncryption": self.sse} if self.sse else {}
        try:
            self.client.upload_file(str(path), self.bucket, self.key(sha), ExtraArgs=extra)
        except (BotoCoreError, ClientError, S3UploadFailedError) as exc:
            raise ArchiveError(f"S3 archive write failed ({type(exc).__name__})") from exc
        return sha, size

    def get(self, sha: str) -> bytes:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            data = self.client.get_object(Bucket=self.bucket, Key=self.key(sha))["Body"].read()
        except ClientError as exc:
            error = exc.response.get("Error", {}).get("Code")
            if error in ("NoSuchKey", "404"):
                raise ArchiveMissing(f"archived object {sha} is missing") from exc
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
            if status >= 500 or error in _TRANSIENT_CODES:
                raise ArchiveUnavailable(f"S3 archive read failed ({error or status})") from exc
            raise ArchiveError(f"S3 archive read failed ({error or type(exc).__name__})") from exc
        except BotoCoreError as exc:  # connection refused, timeout: S3 unreachable
            raise ArchiveUnavailable(f"S3 archive read failed ({type(exc).__name__})") from exc
        if sha256_hex(data) != sha:
            raise ArchiveCorrupt(f"archived object {sha} is corrupt (sha256 mismatch)")
        return data
