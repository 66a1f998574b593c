"""Connectors round 10: S3 buckets whose objects cannot be told apart by the second of their
LastModified, and whose versioning is turned on under a running poller. Real moto server on
loopback (the session's), boto3, SQLite store."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest

from connectors.s3_bucket import BucketPoller
from tests.test_connectors_round6 import V1, V2
from tests.test_s3_connector import (  # noqa: F401 - fixtures
    aws_env,
    bucket,
    bucket_source,
    keys,
    ledger,
    s3_server,
    tags,
)

V3 = V2 + "NTE|2||Contrôle: résultat confirmé par le Dr Lefèvre\r".encode()
KEY = "incoming/resultats-hémato.hl7"


@pytest.fixture
def one_second(monkeypatch):  # noqa: ANN001, ANN201
    """moto's clock held within one second (a microsecond more at each reading, so its
    versions keep their order): every put has the same LastModified to the second, as two
    puts 300 ms apart on a real store."""
    import moto.s3.models

    base = dt.datetime(2026, 11, 27, 15, 42, 7)
    ticks = itertools.count(1)
    monkeypatch.setattr(moto.s3.models, "utcnow",
                        lambda: base + dt.timedelta(microseconds=next(ticks)))


def _sha_files(ctx) -> list[tuple[str, bytes]]:  # noqa: ANN001
    return [(r["file_name"], ctx.archive.get(r["sha256"])) for r in ledger(ctx.engine)]


# -- S3: the same bytes put again within the second of the object taken ----------------------
@pytest.mark.usefixtures("one_second")
@pytest.mark.parametrize("after", ["tag", "move"])
def test_a_version_put_again_within_the_second_is_taken_once(  # noqa: ANN001
        sqlite_ctx, bucket, after) -> None:  # noqa: F811
    """A lab's middleware exports 'resultats-hémato.hl7' into a versioned bucket and, its
    acknowledgement lost, exports the same bytes again a few hundred ms after our poll took
    the first. Same key, same ETag, same LastModified to the second: the poller's memory
    took the new version for the one it had marked, and never took it (with move: left
    under the prefix for ever). Now a version is remembered by its VersionId too: the new
    one is taken once (a byte-identical repeat on the ledger) and marked."""
    _, name, client = bucket
    client.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    client.put_object(Bucket=name, Key=KEY, Body=V1)
    poller = BucketPoller(bucket_source(name, after=after), sqlite_ctx.engine,
                          sqlite_ctx.archive, client=client)
    assert poller.poll().taken == 1
    client.put_object(Bucket=name, Key=KEY, Body=V1)
    again = poller.poll()
    assert (again.taken, again.error) == (1, None)
    assert poller.poll().taken == 0  # both versions remembered, by their VersionIds
    assert _sha_files(sqlite_ctx) == [(KEY, V1), (KEY, V1)]
    if after == "move":
        assert keys(client, name) == ["processed/" + KEY]
    else:
        versions = client.list_object_versions(Bucket=name, Prefix=KEY)["Versions"]
        assert len(versions) == 2
        assert [client.get_object_tagging(Bucket=name, Key=KEY, VersionId=v["VersionId"])
                ["TagSet"][0]["Value"] for v in versions] == ["done", "done"]


@pytest.mark.usefixtures("one_second")
def test_an_object_moved_then_put_again_within_the_second_is_moved_too(  # noqa: ANN001
        sqlite_ctx, bucket, tmp_path) -> None:  # noqa: F811
    """Unversioned bucket, after = "move": the object is moved, and its sender puts the same
    bytes under the same key within that second. The poller remembered the object moved by
    key, ETag and second, found the new one 'known', and left it under incoming/ for ever
    (a restarted poller too: the memory is kept on disk). An object moved is gone from the
    prefix: its key listed again holds a new object, taken (a repeat on the ledger) and
    moved."""
    _, name, client = bucket
    client.put_object(Bucket=name, Key=KEY, Body=V2)
    home = tmp_path / "home"
    poller = BucketPoller(bucket_source(name, after="move"), sqlite_ctx.engine,
                          sqlite_ctx.archive, client=client, state_dir=home)
    assert poller.poll().taken == 1
    client.put_object(Bucket=name, Key=KEY, Body=V2)
    restarted = BucketPoller(bucket_source(name, after="move"), sqlite_ctx.engine,
                             sqlite_ctx.archive, client=client, state_dir=home)
    again = restarted.poll()
    assert (again.taken, again.error) == (1, None)
    assert keys(client, name) == ["processed/" + KEY]
    assert _sha_files(sqlite_ctx) == [(KEY, V2), (KEY, V2)]
    assert restarted.poll().taken == 0


# -- S3: versioning turned on under a running poller -----------------------------------------
def test_versioning_turned_on_under_a_running_poller_is_followed(  # noqa: ANN001
        sqlite_ctx, bucket) -> None:  # noqa: F811
    """Ops turn versioning on (for retention) while serve runs. The poller asked once, at
    its start, and listed only current objects until its restart: a lab exporting twice
    under one name between two polls lost its middle export. Now the versioning is asked
    again every versioning_seconds: the poll after that lists every version."""
    _, name, client = bucket
    now = [0.0]
    poller = BucketPoller(bucket_source(name), sqlite_ctx.engine, sqlite_ctx.archive,
                          client=client, clock=lambda: now[0], versioning_seconds=300)
    client.put_object(Bucket=name, Key=KEY, Body=V1)
    assert poller.poll().taken == 1
    client.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    client.put_object(Bucket=name, Key=KEY, Body=V2)
    client.put_object(Bucket=name, Key=KEY, Body=V3)
    now[0] = 301.0
    second = poller.poll()
    assert (second.taken, second.error) == (2, None)
    assert poller.poll().taken == 0
    assert _sha_files(sqlite_ctx) == [(KEY, V1), (KEY, V2), (KEY, V3)]


def test_a_version_id_read_from_an_unversioned_bucket_asks_again(  # noqa: ANN001
        sqlite_ctx, bucket) -> None:  # noqa: F811
    """Before the interval is out, an object read answers with a VersionId while the bucket
    was taken as unversioned: its versioning is asked again at the next poll, which finds
    the version put before it (taken then, not lost; the current one was taken first)."""
    _, name, client = bucket
    poller = BucketPoller(bucket_source(name), sqlite_ctx.engine, sqlite_ctx.archive,
                          client=client, clock=lambda: 0.0)  # the interval never out
    assert poller.poll().taken == 0
    client.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    client.put_object(Bucket=name, Key=KEY, Body=V2)
    client.put_object(Bucket=name, Key=KEY, Body=V3)
    assert poller.poll().taken == 1  # listed plainly: the current object
    third = poller.poll()
    assert (third.taken, third.error) == (1, None)
    assert poller.poll().taken == 0
    assert sorted(_sha_files(sqlite_ctx)) == sorted([(KEY, V3), (KEY, V2)])


# -- S3: folder markers of Hadoop and older S3 clients ----------------------------------------
def test_hadoop_folder_markers_are_not_refused_as_empty_objects(  # noqa: ANN001
        sqlite_ctx, bucket) -> None:  # noqa: F811
    """A lab's export job runs on Hadoop (s3n, EMRFS) or its staff browse the bucket with
    S3Fox or CloudBerry: each folder they make is an empty object 'name_$folder$'. It was
    refused as an empty object (S3_EMPTY_OBJECT): a failed import on the admin's list for
    every folder, tagged refused. Now it is a folder marker, as 'name/' already was: left
    alone; the file beside it is taken. An empty object under another name is still
    refused."""
    _, name, client = bucket
    client.put_object(Bucket=name, Key="incoming/2026-11_$folder$", Body=b"")
    client.put_object(Bucket=name, Key="incoming/2026-11/crp-lefevre.hl7", Body=V1)
    client.put_object(Bucket=name, Key="incoming/vide.hl7", Body=b"")
    result = BucketPoller(bucket_source(name), sqlite_ctx.engine, sqlite_ctx.archive,
                          client=client).poll()
    assert (result.taken, result.refused, result.error) == (2, 1, None)
    assert sorted((r["file_name"], r["error_code"]) for r in ledger(sqlite_ctx.engine)) == [
        ("incoming/2026-11/crp-lefevre.hl7", None), ("incoming/vide.hl7", "S3_EMPTY_OBJECT")]
    assert tags(client, name, "incoming/2026-11_$folder$") == {}


# -- S3: an empty object on a bucket served from a NAS ----------------------------------------
def test_an_empty_object_on_a_settled_bucket_waits_a_minute(  # noqa: ANN001
        sqlite_ctx, bucket, monkeypatch) -> None:  # noqa: F811
    """A bucket served from a NAS (MinIO on a share, settle_seconds = 2): a scanner creates
    'scan-0001.pdf' on the share, then stalls before its first byte. Once two seconds old
    the empty object was refused (S3_EMPTY_OBJECT: a failed import for the admin) and
    tagged refused while its bytes were still to come. Now an empty object waits a minute
    (as an empty file in a drop folder); one still empty after that is refused."""
    import moto.s3.models

    _, name, client = bucket
    real_now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    monkeypatch.setattr(moto.s3.models, "utcnow", lambda: real_now - dt.timedelta(seconds=10))
    client.put_object(Bucket=name, Key="incoming/scan-0001.pdf", Body=b"")
    monkeypatch.setattr(moto.s3.models, "utcnow", lambda: real_now - dt.timedelta(seconds=90))
    client.put_object(Bucket=name, Key="incoming/scan-0000.pdf", Body=b"")
    poller = BucketPoller(bucket_source(name, settle_seconds=2), sqlite_ctx.engine,
                          sqlite_ctx.archive, client=client)
    result = poller.poll()
    assert (result.taken, result.refused, result.error) == (1, 1, None)
    assert [(r["file_name"], r["error_code"]) for r in ledger(sqlite_ctx.engine)] == [
        ("incoming/scan-0000.pdf", "S3_EMPTY_OBJECT")]
    assert tags(client, name, "incoming/scan-0001.pdf") == {}
