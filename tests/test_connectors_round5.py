"""Connectors round 5: the drop folder, the S3 bucket poller and `ingest` against stores and
deployments not seen before (objects already carrying S3's 10 tags, NAS-backed buckets
listing objects still being written, copies over the store's single-request limit, big
command-line batches). Real moto server on loopback, real folders."""

from __future__ import annotations

import os
import time

import pytest

from connectors.folder import FolderPoller
from connectors.s3_bucket import BucketPoller
from tests.conftest import migrated_sqlite
from tests.test_folder_connector import claimed_files, files_under
from tests.test_folder_connector import source as folder_source
from tests.test_s3_connector import (  # noqa: F401 - fixtures
    HL7,
    aws_env,
    bucket,
    bucket_source,
    keys,
    ledger,
    s3_server,
    tags,
)

TEN = "&".join(f"team{i}=x{i}" for i in range(10))


def _poller(endpoint: str, name: str, ctx, **kw) -> BucketPoller:  # noqa: ANN001, ANN003
    return BucketPoller(bucket_source(name, **kw), ctx.engine, ctx.archive,
                        endpoint_url=endpoint)


# -- S3: objects that already carry 10 tags ---------------------------------------------------
def test_an_object_with_ten_tags_is_taken_once_and_its_tags_kept(sqlite_ctx, bucket) -> None:  # noqa: ANN001, F811
    """S3 allows 10 tags per object. A sender's object already carrying 10 had no room for
    dmp-intake=done: PutObjectTagging was refused (BadRequest) after intake, so every poll
    said 'recorded but not tagged; done at the next poll' (never done), and every restarted
    poller recorded the object again. Now the poller does not try, keeps the sender's tags,
    and a fresh poller finds the object in the ledger (same source, name and bytes) instead
    of recording it again."""
    endpoint, name, client = bucket
    data = (HL7 / "01_labm_nfs.hl7").read_bytes()
    client.put_object(Bucket=name, Key="incoming/full.hl7", Body=data, Tagging=TEN)
    client.put_object(Bucket=name, Key="incoming/nine.hl7", Body=data + b"NTE|1||x\r",
                      Tagging=TEN.rsplit("&", 1)[0])
    poller = _poller(endpoint, name, sqlite_ctx)
    first = poller.poll()
    assert first.error is None and first.taken == 2
    assert tags(client, name, "incoming/full.hl7") == dict(
        p.split("=") for p in TEN.split("&"))  # the sender's tags, untouched
    assert tags(client, name, "incoming/nine.hl7")["dmp-intake"] == "done"
    rows = len(ledger(sqlite_ctx.engine))
    again = poller.poll()
    assert again.error is None and again.taken == 0
    fresh = _poller(endpoint, name, sqlite_ctx).poll()  # a restarted service
    assert fresh.error is None and fresh.taken == 0
    assert len(ledger(sqlite_ctx.engine)) == rows
    # the same name with other bytes is another input: taken
    client.put_object(Bucket=name, Key="incoming/full.hl7", Body=data + b"NTE|2||y\r",
                      Tagging=TEN)
    assert _poller(endpoint, name, sqlite_ctx).poll().taken == 1


def test_an_object_with_ten_tags_is_moved_with_its_tags(sqlite_ctx, bucket) -> None:  # noqa: ANN001, F811
    """after = "move": the copy under processed/ asked for 11 tags and was refused, so the
    object was never moved (and copied again at every poll). Now the copy keeps the sender's
    10 tags; the prefix says it was taken."""
    endpoint, name, client = bucket
    client.put_object(Bucket=name, Key="incoming/full.hl7",
                      Body=(HL7 / "01_labm_nfs.hl7").read_bytes(), Tagging=TEN)
    result = _poller(endpoint, name, sqlite_ctx, after="move").poll()
    assert result.error is None and result.taken == 1
    assert keys(client, name) == ["processed/incoming/full.hl7"]
    assert tags(client, name, "processed/incoming/full.hl7") == dict(
        p.split("=") for p in TEN.split("&"))


# -- S3: a bucket served from a NAS lists files still being written ---------------------------
def test_a_bucket_settle_setting_leaves_objects_still_being_written(sqlite_ctx, quirky) -> None:  # noqa: ANN001
    """MinIO serving a NAS share lists a file as soon as its sender begins writing it, with
    a LastModified that moves on as it grows; a poll that read it between two writes took a
    cut file (its size matched the listing). Folders had settle_seconds, buckets nothing.
    Now [buckets.x] settle_seconds: an object is taken once its LastModified is that old,
    by the store's clock (the listing's Date), not ours."""
    from pipelines.settings import _buckets

    store, name, client = quirky
    conf = {"lab": {"bucket": name, "prefix": "incoming/", "settle_seconds": 30}}
    assert _buckets(conf)[0].settle_seconds == 30
    client.put_object(Bucket=name, Key="incoming/growing.hl7",
                      Body=(HL7 / "01_labm_nfs.hl7").read_bytes())
    poller = BucketPoller(bucket_source(name, settle_seconds=30), sqlite_ctx.engine,
                          sqlite_ctx.archive, endpoint_url=store.endpoint)
    first = poller.poll()
    assert first.error is None and first.taken == 0 and ledger(sqlite_ctx.engine) == []
    assert "dmp-intake" not in tags(client, name, "incoming/growing.hl7")
    store.clock_offset = 10  # 10 s later by the store's clock: not yet
    assert poller.poll().taken == 0
    store.clock_offset = 31
    later = poller.poll()
    assert later.error is None and later.taken == 1
    assert tags(client, name, "incoming/growing.hl7")["dmp-intake"] == "done"


# -- ingest FILE... ---------------------------------------------------------------------------
def test_ingest_holds_a_bounded_group_of_files_not_200_whole_ones(tmp_path, monkeypatch,  # noqa: ANN001
                                                                  sqlite_template) -> None:  # noqa: ANN001
    """`dmp-ingest ingest FOLDER` handed files to intake 200 at a time, whatever their size:
    200 reports of 15 MB (under the 16 MB at which an HL7 file is streamed) sat in memory at
    once, 3 GB. Now a group also closes once it holds CHUNK_BYTES (64 MiB; 1 MiB here, on 16
    files of 512 KiB: the peak stays near a group, not near the 8 MiB of all of them), and
    every file is still recorded."""
    import tracemalloc

    import flows
    from dossiers.db import make_engine
    from tests.test_s3_connector import ledger as rows_of

    migrated_sqlite(sqlite_template, tmp_path / "home" / "dmp.sqlite3")  # the home's store
    monkeypatch.setenv("DMP_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("DMP_CONFIG", raising=False)
    monkeypatch.delenv("DMP_DATABASE_URL", raising=False)
    monkeypatch.delenv("DMP_ARCHIVE_URL", raising=False)
    monkeypatch.setattr(flows, "CHUNK_BYTES", 1024 * 1024)
    drop = tmp_path / "reports"
    drop.mkdir()
    for n in range(16):
        (drop / f"cr{n:02}.pdf").write_bytes(b"%PDF-1.4\n" + bytes([n]) * (512 * 1024))
    flows._context.cache_clear()
    try:
        flows._context("ingest")  # the store opened and migrated before we measure
        tracemalloc.start()
        received = flows.intake_files.fn([str(drop)], "files")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        flows._context.cache_clear()
    assert len(received["message_ids"]) == 16
    assert peak < 5 * 1024 * 1024, peak
    engine = make_engine(f"sqlite:///{tmp_path / 'home' / 'dmp.sqlite3'}")
    assert sorted(r["file_name"] for r in rows_of(engine)) == [f"cr{n:02}.pdf" for n in range(16)]


# -- S3: a copy the store will not make in one request ----------------------------------------
def _no_single_copy(method: str, path: str, query: dict[str, list[str]],
                    headers: dict[str, str]) -> tuple[int, str] | None:
    """CopyObject of an object over 5 GiB (AWS, MinIO, Ceph: InvalidRequest 'The specified
    copy source is larger than the maximum allowable size for a copy source'); parts of a
    multipart copy (UploadPartCopy) are allowed."""
    copy = any(k.lower() == "x-amz-copy-source" for k in headers)
    if method == "PUT" and copy and "partNumber" not in query:
        return 400, "InvalidRequest"
    return None


def test_move_of_an_object_the_store_will_not_copy_in_one_request(sqlite_ctx, quirky) -> None:  # noqa: ANN001
    """after = "move" copied with CopyObject, which S3 and its imitators refuse over 5 GiB:
    a huge object dropped in the bucket (refused as too large, to go under refused/) was
    never moved, 'done at the next poll' for ever, and recorded again by every restarted
    poller. Now such a copy is made in parts (UploadPartCopy, each part If-Match the object
    read), tagged as before, then the object is deleted."""
    store, name, client = quirky
    data = (HL7 / "01_labm_nfs.hl7").read_bytes()
    client.put_object(Bucket=name, Key="incoming/big.hl7", Body=data, Tagging="team=bio")
    store.refuse = _no_single_copy
    result = BucketPoller(bucket_source(name, after="move"), sqlite_ctx.engine,
                          sqlite_ctx.archive, endpoint_url=store.endpoint).poll()
    assert result.error is None and result.taken == 1
    assert keys(client, name) == ["processed/incoming/big.hl7"]
    moved = client.get_object(Bucket=name, Key="processed/incoming/big.hl7")["Body"].read()
    assert moved == data
    assert tags(client, name, "processed/incoming/big.hl7")["dmp-intake"] == "done"
    assert tags(client, name, "processed/incoming/big.hl7")["team"] == "bio"
    assert not client.list_multipart_uploads(Bucket=name).get("Uploads")


# -- S3: the same bytes put again under the same key ------------------------------------------
@pytest.mark.parametrize("after", ["tag", "move"])
def test_the_same_bytes_put_again_under_a_key_are_taken_again(sqlite_ctx, bucket, after) -> None:  # noqa: ANN001, F811
    """A poller remembered what it had marked by key and ETag. A sender that sends the same
    file again under its name (a resend after a timeout on its side) makes a new object
    with the same ETag: untagged in place (tag), or back under the prefix (move). The poller
    took it for the one it had marked and left it there, untagged or unmoved, for the life
    of the process. Now it is remembered by key, ETag and LastModified: the resend is
    recorded (a byte-identical repeat: nothing filed twice) and marked."""
    import time

    endpoint, name, client = bucket
    data = (HL7 / "01_labm_nfs.hl7").read_bytes()
    client.put_object(Bucket=name, Key="incoming/r.hl7", Body=data)
    poller = _poller(endpoint, name, sqlite_ctx, after=after)
    assert poller.poll().taken == 1
    rows = len(ledger(sqlite_ctx.engine))
    time.sleep(1.05)  # LastModified is to the second
    client.put_object(Bucket=name, Key="incoming/r.hl7", Body=data)
    again = poller.poll()
    assert again.error is None and again.taken == 1
    assert len(ledger(sqlite_ctx.engine)) > rows  # the repeat is on the ledger
    if after == "tag":
        assert tags(client, name, "incoming/r.hl7")["dmp-intake"] == "done"
    else:
        assert keys(client, name) == ["processed/incoming/r.hl7"]
    assert poller.poll().taken == 0


# -- S3: a listing that names keys the store does not serve -----------------------------------
def test_keys_a_store_lists_wrongly_encoded_are_a_poll_error_not_silence(sqlite_ctx,  # noqa: ANN001
                                                                         quirky) -> None:
    """Asked for encoding-type=url, some stores say they encoded the keys (<EncodingType>
    url) but leave a literal '+' as it is; boto3 decodes it to a space, and the GET of
    'lab result.hl7' answers NoSuchKey. The poller took that for an object deleted since
    the listing and said nothing, at every poll: the result was never taken and nobody
    knew. Now an object listed at two polls in a row and not found twice is a poll error
    saying why (the other objects are taken)."""
    store, name, client = quirky
    data = (HL7 / "01_labm_nfs.hl7").read_bytes()
    client.put_object(Bucket=name, Key="incoming/lab+result.hl7", Body=data)
    client.put_object(Bucket=name, Key="incoming/plain.hl7", Body=data + b"NTE|1||x\r")

    def plus_left(method: str, path: str, query: dict[str, list[str]], body: bytes) -> bytes:
        return body.replace(b"%2B", b"+") if "list-type" in query else body

    store.reply = plus_left
    poller = BucketPoller(bucket_source(name), sqlite_ctx.engine, sqlite_ctx.archive,
                          endpoint_url=store.endpoint)
    first = poller.poll()  # once: a listing lagging behind a delete looks the same
    assert first.error is None and first.taken == 1
    second = poller.poll()
    assert second.taken == 0 and "1 object(s)" in (second.error or "")
    assert "NoSuchKey" in second.error and "result" not in second.error  # no key named
    assert [r["file_name"] for r in ledger(sqlite_ctx.engine)] == ["incoming/plain.hl7"]


# -- drop folders: names that collide in done/ and failed/ ------------------------------------
def test_a_file_then_a_folder_of_the_same_name_both_reach_done(sqlite_ctx, tmp_path) -> None:  # noqa: ANN001
    """A sender's batch marker 'lab' (a file, moved to done/lab), then a folder 'lab/' of
    results: done/lab was a file, so done/lab/ could not be made; every file of that folder
    was recorded, then 'cannot be moved to done/' at every poll, claimed for good. Now the
    folder goes to done/lab.1/ (nothing replaced)."""
    drop = tmp_path / "drop"
    drop.mkdir()
    (drop / "lab").write_bytes(b"batch 12\n")
    with FolderPoller(folder_source(drop), sqlite_ctx.engine, sqlite_ctx.archive) as poller:
        assert poller.poll().taken == 1
        (drop / "lab").mkdir()
        (drop / "lab" / "r.hl7").write_bytes(b"MSH|^~\\&|R\r")
        poller.scan()  # seen once: settled at the next scan
        result = poller.poll()
        assert (result.error, result.taken) == (None, 1)
        assert not claimed_files(drop)
    assert files_under(drop / "done") == {"lab": b"batch 12\n", "lab.1/r.hl7": b"MSH|^~\\&|R\r"}


def test_a_link_moved_to_failed_is_never_followed_by_what_comes_after(sqlite_ctx,  # noqa: ANN001
                                                                      tmp_path) -> None:
    """A link dropped in the folder is moved to failed/ as it is. A folder of the same name
    dropped later, holding a file that is refused (empty), went to failed/<name>/...: through
    the link, so the file and our .error.txt were written in the folder the link pointed to
    (anywhere the service may write). Now a link there is not a folder: failed/<name>.1/."""
    drop, elsewhere = tmp_path / "drop", tmp_path / "elsewhere"
    drop.mkdir()
    elsewhere.mkdir()
    (drop / "lab").symlink_to(elsewhere)
    with FolderPoller(folder_source(drop), sqlite_ctx.engine, sqlite_ctx.archive) as poller:
        assert poller.poll().refused == 1
        assert (drop / "failed" / "lab").is_symlink()
        (drop / "lab").mkdir()
        (drop / "lab" / "empty.hl7").write_bytes(b"")
        os.utime(drop / "lab" / "empty.hl7", (time.time() - 120,) * 2)  # round 8: waited
        poller.scan()
        result = poller.poll()
        assert (result.error, result.taken, result.refused) == (None, 1, 1)
    assert list(elsewhere.iterdir()) == []
    assert sorted(p.name for p in (drop / "failed" / "lab.1").iterdir()) == [
        "empty.hl7", "empty.hl7.error.txt"]


# -- S3: a store whose If-Match refuses its own ETags -----------------------------------------
def _quoted_if_match_refused(method: str, path: str, query: dict[str, list[str]],
                             headers: dict[str, str]) -> tuple[int, str] | None:
    """DigitalOcean Spaces' If-Match takes an ETag unquoted only: the quoted form S3 gives
    (and boto3 sends back) is answered 412 PreconditionFailed."""
    value = next((v for k, v in headers.items() if k.lower() == "if-match"), "")
    return (412, "PreconditionFailed") if value.startswith('"') else None


@pytest.mark.parametrize("after", ["tag", "move"])
def test_a_store_that_refuses_its_own_etags_in_if_match(sqlite_ctx, quirky, after) -> None:  # noqa: ANN001
    """Every GET If-Match was answered 412, which the poller took for 'replaced since the
    listing, looked at again at the next poll': no object was ever taken, and no poll said
    anything. Now a 412 for an object HEAD still finds with the ETag listed turns If-Match
    off for that poller (a plain GET, its ETag compared; a HEAD before a tag check or a
    delete), and the objects are taken, marked once, not again."""
    store, name, client = quirky
    data = (HL7 / "01_labm_nfs.hl7").read_bytes()
    client.put_object(Bucket=name, Key="incoming/a.hl7", Body=data)
    client.put_object(Bucket=name, Key="incoming/b.hl7", Body=data + b"NTE|1||x\r")
    store.refuse = _quoted_if_match_refused
    poller = BucketPoller(bucket_source(name, after=after), sqlite_ctx.engine,
                          sqlite_ctx.archive, endpoint_url=store.endpoint)
    first = poller.poll()
    assert first.error is None and first.taken == 2
    if after == "tag":
        assert tags(client, name, "incoming/a.hl7")["dmp-intake"] == "done"
        assert tags(client, name, "incoming/b.hl7")["dmp-intake"] == "done"
    else:
        assert keys(client, name) == ["processed/incoming/a.hl7", "processed/incoming/b.hl7"]
    assert poller.poll().taken == 0
    assert len([r for r in ledger(sqlite_ctx.engine) if r["batch_of"] is None]) == 2
