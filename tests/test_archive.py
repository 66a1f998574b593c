"""The raw archive: local directory, and S3 through boto3 against moto's server on loopback."""

from __future__ import annotations

import pytest

from pipelines.archive import ArchiveError, DirectoryArchive, open_archive, sha256_hex
from pipelines.intake import Received, intake
from pipelines.process import drain
from pipelines.report import show_import
from tests.conftest import migrated_sqlite
from tests.test_pipeline import make_patient, oru

DATA = "MSH|^~\\&|LAB|Hôpital Saint-Éloi\r".encode()


def test_directory_archive_round_trip_and_corruption(tmp_path) -> None:  # noqa: ANN001
    archive = DirectoryArchive(tmp_path / "a")
    sha = archive.put(DATA)
    assert sha == sha256_hex(DATA) and archive.get(sha) == DATA
    assert archive.put(DATA) == sha  # content-addressed: stored once
    archive.path(sha).write_bytes(b"tampered")
    with pytest.raises(ArchiveError, match="corrupt"):
        archive.get(sha)
    with pytest.raises(ArchiveError, match="missing"):
        archive.get("0" * 64)


@pytest.fixture(scope="module")
def s3_endpoint():  # noqa: ANN201
    from tests.conftest import start_moto

    server, port = start_moto()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_env(s3_endpoint, monkeypatch):  # noqa: ANN001, ANN201
    import boto3

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-3")
    client = boto3.client("s3", endpoint_url=s3_endpoint)
    if "dmp-archive" not in [b["Name"] for b in client.list_buckets()["Buckets"]]:
        client.create_bucket(Bucket="dmp-archive",
                             CreateBucketConfiguration={"LocationConstraint": "eu-west-3"})
    return s3_endpoint


def test_s3_archive_round_trip_verify_and_missing(s3_env) -> None:  # noqa: ANN001
    archive = open_archive("s3://dmp-archive/raw", endpoint_url=s3_env)
    sha = archive.put(DATA)
    assert archive.get(sha) == DATA
    assert archive.client.head_object(Bucket="dmp-archive", Key=f"raw/{sha[:2]}/{sha[2:4]}/{sha}")
    archive.client.put_object(Bucket="dmp-archive", Key=archive.key(sha), Body=b"tampered")
    with pytest.raises(ArchiveError, match="corrupt"):
        archive.get(sha)
    with pytest.raises(ArchiveError, match="missing"):
        archive.get("1" * 64)


def test_pipeline_on_s3_archive(s3_env, sqlite_ctx) -> None:  # noqa: ANN001
    ctx = sqlite_ctx
    ctx.archive = open_archive("s3://dmp-archive/pipeline", endpoint_url=s3_env)
    make_patient(ctx)
    ids = intake(ctx.engine, ctx.archive, [Received(data=oru("S3-1"), source="lab",
                                                    channel="s3")])[0].message_ids
    drain(ctx)
    assert show_import(ctx.engine, ids[0])["status"] == "deposited"


def test_unreachable_s3_refuses_intake(monkeypatch, sqlite_ctx) -> None:  # noqa: ANN001
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-3")
    import boto3
    from botocore.config import Config

    from pipelines.s3_archive import S3Archive

    client = boto3.client("s3", endpoint_url="http://127.0.0.1:1",
                          config=Config(retries={"max_attempts": 1}, connect_timeout=1))
    archive = S3Archive("dmp-archive", client=client)
    with pytest.raises(ArchiveError):
        intake(sqlite_ctx.engine, archive, [Received(data=DATA, source="lab", channel="s3")])
    assert show_import(sqlite_ctx.engine, 1) is None  # no ledger row without archived bytes


def test_directory_group_write_is_complete_and_leaves_no_temp_files(tmp_path) -> None:  # noqa: ANN001
    """Several blobs at once take the syncfs group path: all readable, sha-checked."""
    from pipelines.archive import DirectoryArchive, sha256_hex

    archive = DirectoryArchive(tmp_path / "a")
    blobs = [f"MSH|^~\\&|LAB|{i}|\r".encode() * (i + 1) for i in range(50)]
    items = [(sha256_hex(b), b) for b in blobs]
    archive.put_many(items + items[:5])  # repeats within a group are written once
    archive.put_many(items)  # and already stored ones are skipped
    assert [archive.get(sha) for sha, _ in items] == blobs
    assert not [p for p in (tmp_path / "a").rglob("*") if p.name.endswith(".tmp")]


def test_a_blob_cut_by_a_crash_is_rewritten_when_sent_again(tmp_path) -> None:  # noqa: ANN001
    """A crash before the flush can leave a partial file under the final name; no ledger row
    points at it. When the sender sends the message again, it is written whole."""
    from pipelines.archive import DirectoryArchive, sha256_hex

    archive = DirectoryArchive(tmp_path / "a")
    data = "MSH|^~\\&|LABM|CERBALLIANCE_LYON|\rPID|1||X^^^Héloïse\r".encode() * 40
    sha = sha256_hex(data)
    archive.path(sha).parent.mkdir(parents=True)
    archive.path(sha).write_bytes(data[:100])  # what the crash left
    archive.put_many([(sha, data)])
    assert archive.get(sha) == data


def test_put_file_streams_a_file_into_the_archive(tmp_path, s3_env) -> None:  # noqa: ANN001
    """A batch file too big to hold is archived from disk in chunks: same sha256 and bytes as
    put(), on a directory and on S3 (a multipart upload above boto3's 8 MB threshold)."""
    import hashlib

    data = bytes(range(256)) * (9 * 1024 * 1024 // 256) + b"tail"
    path = tmp_path / "big.hl7"
    path.write_bytes(data)
    sha = hashlib.sha256(data).hexdigest()
    for archive in (DirectoryArchive(tmp_path / "archive"),
                    open_archive("s3://dmp-archive/raw", endpoint_url=s3_env)):
        assert archive.put_file(path) == (sha, len(data))
        assert archive.get(sha) == data
        assert archive.put_file(path) == (sha, len(data))  # again: still whole
    assert not [p for p in (tmp_path / "archive").rglob("*") if p.name.endswith(".tmp")]

def _sse_of(archive, sha: str) -> dict:  # noqa: ANN001
    head = archive.client.head_object(Bucket="dmp-archive", Key=archive.key(sha))
    return {k: head.get(k) for k in ("ServerSideEncryption", "SSEKMSKeyId")}


def test_s3_server_side_encryption_from_the_environment(s3_env, monkeypatch) -> None:  # noqa: ANN001
    """DMP_S3_SSE reaches every PUT of an archive opened by URL (as the service opens it)."""
    monkeypatch.setenv("DMP_S3_SSE", "AES256")
    archive = open_archive("s3://dmp-archive/sse", endpoint_url=s3_env)
    sha = archive.put(DATA + b"aes")
    assert _sse_of(archive, sha)["ServerSideEncryption"] == "AES256"
    assert archive.get(sha) == DATA + b"aes"

    monkeypatch.setenv("DMP_S3_SSE", "aws:kms")
    monkeypatch.setenv("DMP_S3_KMS_KEY_ID", "alias/dmp-archive")
    archive = open_archive("s3://dmp-archive/kms", endpoint_url=s3_env)
    sha = archive.put(DATA + b"kms")
    sse = _sse_of(archive, sha)
    assert sse["ServerSideEncryption"] == "aws:kms"
    assert "alias/dmp-archive" in sse["SSEKMSKeyId"]

    monkeypatch.delenv("DMP_S3_SSE")
    monkeypatch.delenv("DMP_S3_KMS_KEY_ID")
    archive = open_archive("s3://dmp-archive/plain", endpoint_url=s3_env)
    assert _sse_of(archive, archive.put(DATA + b"plain"))["SSEKMSKeyId"] is None


def test_s3_settings_through_the_service_context(s3_env, monkeypatch, tmp_path,  # noqa: ANN001
                                                  sqlite_template) -> None:  # noqa: ANN001
    from pipelines.process import Context
    from pipelines.settings import load_settings

    monkeypatch.setenv("DMP_S3_SSE", "AES256")
    migrated_sqlite(sqlite_template, tmp_path / "dmp.sqlite3")  # the home's store, at head
    settings = load_settings(env={"DMP_HOME": str(tmp_path), "DMP_ARCHIVE_URL":
                                  "s3://dmp-archive/ctx", "DMP_S3_ENDPOINT_URL": s3_env})
    ctx = Context.from_settings(settings)
    try:
        sha = ctx.archive.put(DATA + b"ctx")
        assert _sse_of(ctx.archive, sha)["ServerSideEncryption"] == "AES256"
    finally:
        ctx.engine.dispose()


def test_s3_credentials_from_an_aws_profile(s3_env, monkeypatch, tmp_path) -> None:  # noqa: ANN001
    credentials = tmp_path / "credentials"
    credentials.write_text("[dmp-archive]\naws_access_key_id = profilekey\n"
                           "aws_secret_access_key = profilesecret\n")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("DMP_S3_PROFILE", "dmp-archive")
    archive = open_archive("s3://dmp-archive/profile", endpoint_url=s3_env)
    assert archive.client._request_signer._credentials.access_key == "profilekey"
    sha = archive.put(DATA)
    assert archive.get(sha) == DATA
    monkeypatch.delenv("DMP_S3_PROFILE")
    monkeypatch.setenv("AWS_PROFILE", "dmp-archive")
    archive = open_archive("s3://dmp-archive/profile", endpoint_url=s3_env)
    assert archive.client._request_signer._credentials.access_key == "profilekey"


def test_s3_bad_settings_are_one_line(monkeypatch, tmp_path) -> None:  # noqa: ANN001
    from pipelines.settings import SettingsError

    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    for env, message in (({"DMP_S3_SSE": "rot13"}, "DMP_S3_SSE must be one of"),
                         ({"DMP_S3_KMS_KEY_ID": "k"}, "needs DMP_S3_SSE=aws:kms"),
                         ({"DMP_S3_PROFILE": "nobody"}, "AWS profile 'nobody' not found")):
        for name in ("DMP_S3_SSE", "DMP_S3_KMS_KEY_ID", "DMP_S3_PROFILE"):
            monkeypatch.delenv(name, raising=False)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        with pytest.raises(SettingsError, match=message) as info:
            open_archive("s3://dmp-archive/x", endpoint_url="http://127.0.0.1:1")
        assert "\n" not in str(info.value)
