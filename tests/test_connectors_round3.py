"""Connectors round 3: the drop folder and the S3 bucket against stores and senders not seen
before. S3-compatible stores that lack a feature are played by a real HTTP proxy in front of
moto's server (tests/s3_quirks.py), so boto3 parses the store's own error answers."""

from __future__ import annotations

import os

import pytest

from connectors.folder import FolderPoller
from connectors.s3_bucket import BucketPoller
from tests.s3_quirks import QuirkyStore, no_tagging
from tests.test_folder_connector import source as folder_source
from tests.test_s3_connector import (  # noqa: F401 - fixtures
    HL7,
    aws_env,
    bucket,
    bucket_source,
    keys,
    ledger,
    s3_server,
)


def test_move_works_on_a_store_without_object_tagging(sqlite_ctx, quirky) -> None:  # noqa: ANN001
    """Garage and some hosting providers' stores answer 501 NotImplemented to every tagging
    request. after = "move" needs no tag (what was taken is under processed/), yet the poller
    asked each object's tags before reading it: the poll failed on the first object, every
    time, and nothing was ever taken. Now the tags are not required for a move."""
    store, name, client = quirky
    store.refuse = no_tagging
    data = (HL7 / "05_chu_hba1c.hl7").read_bytes()
    client.put_object(Bucket=name, Key="incoming/hba1c.hl7", Body=data)
    client.put_object(Bucket=name, Key="incoming/vide.hl7", Body=b"")
    poller = BucketPoller(bucket_source(name, after="move"), sqlite_ctx.engine,
                          sqlite_ctx.archive, endpoint_url=store.endpoint)
    result = poller.poll()
    assert (result.error, result.taken, result.refused) == (None, 2, 1)
    assert keys(client, name) == ["processed/incoming/hba1c.hl7", "refused/incoming/vide.hl7"]
    assert client.get_object(Bucket=name, Key="processed/incoming/hba1c.hl7")[
        "Body"].read() == data
    assert [(r["file_name"], r["status"], r["error_code"]) for r in ledger(
        sqlite_ctx.engine)] == [("incoming/hba1c.hl7", "received", None),
                                ("incoming/vide.hl7", "failed", "S3_EMPTY_OBJECT")]
    fresh = BucketPoller(bucket_source(name, after="move"), sqlite_ctx.engine,
                         sqlite_ctx.archive, endpoint_url=store.endpoint)
    assert (fresh.poll().taken, poller.poll().taken) == (0, 0)
    assert len(ledger(sqlite_ctx.engine)) == 2


def test_tag_on_a_store_without_object_tagging_says_so_and_takes_nothing(
        sqlite_ctx, quirky) -> None:  # noqa: ANN001
    """after = "tag" cannot work there: the poll says the store has no object tagging and
    to use after = "move", and records nothing (nothing it could not mark: a restart would
    take it in again)."""
    store, name, client = quirky
    store.refuse = no_tagging
    client.put_object(Bucket=name, Key="incoming/a.hl7", Body=b"MSH|^~\\&|A\r")
    poller = BucketPoller(bucket_source(name), sqlite_ctx.engine, sqlite_ctx.archive,
                          endpoint_url=store.endpoint)
    for _ in range(2):
        result = poller.poll()
        assert result.taken == 0 and ledger(sqlite_ctx.engine) == []
        assert result.error == (f"bucket source lab-s3: S3 refused GetObjectTagging on "
                                f"s3://{name}/incoming/ (NotImplemented: the store does not "
                                f"implement object tagging; set after = \"move\")")
    assert keys(client, name) == ["incoming/a.hl7"]


def _ignores_checksums(headers: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in headers.items() if not k.lower().startswith("x-amz-checksum")
            and k.lower() != "x-amz-sdk-checksum-algorithm"}


def test_s3_archive_verifies_the_bytes_stored_are_the_bytes_received(sqlite_ctx,  # noqa: ANN001
                                                                     quirky) -> None:
    """The archive's PUT carried our sha256 (x-amz-checksum-sha256) for the store to check,
    and nothing else verified the write. A store that ignores that header (Ceph RGW before
    Squid, Garage, several providers) stored a body damaged on the way without a word: intake
    committed the ledger row, the sender was acknowledged, and the bytes received were gone.
    Now the answer is checked (the store's sha256 when it sends one, else the ETag against
    the MD5 of what we sent, else a read-back): a damaged write fails intake, nothing is
    recorded, the sender's input is taken again later."""
    from pipelines.archive import ArchiveError, sha256_hex
    from pipelines.intake import Received, intake
    from pipelines.s3_archive import S3Archive

    store, _, client = quirky
    import boto3

    client.create_bucket(Bucket="dmp-archive-r3",
                         CreateBucketConfiguration={"LocationConstraint": "eu-west-3"})
    archive = S3Archive("dmp-archive-r3", "raw",
                        client=boto3.client("s3", endpoint_url=store.endpoint))
    data = (HL7 / "05_chu_hba1c.hl7").read_bytes()

    def damage(method, path, query, headers, body):  # noqa: ANN001, ANN202
        if method == "PUT" and b"MSH|" in body:
            body = body.replace(b"MSH|", b"MSH!", 1)
        return _ignores_checksums(headers), body

    store.alter = damage
    with pytest.raises(ArchiveError, match="not verified"):
        intake(sqlite_ctx.engine, archive, [Received(data=data, source="lab", channel="s3")])
    assert ledger(sqlite_ctx.engine) == []

    store.alter = lambda m, p, q, h, b: (_ignores_checksums(h), b)  # the store is fine again
    intake(sqlite_ctx.engine, archive, [Received(data=data, source="lab", channel="s3")])
    assert archive.get(sha256_hex(data)) == data and len(ledger(sqlite_ctx.engine)) == 1


def test_s3_archive_accepts_a_store_whose_etags_are_not_md5(quirky) -> None:  # noqa: ANN001
    """MinIO with encryption at rest, and AWS with SSE-KMS, answer ETags that are not the
    MD5 of the body: the write is then verified by reading it back, not refused."""
    import boto3

    from pipelines.archive import sha256_hex
    from pipelines.s3_archive import S3Archive

    store, _, client = quirky
    client.create_bucket(Bucket="dmp-archive-r3b",
                         CreateBucketConfiguration={"LocationConstraint": "eu-west-3"})
    archive = S3Archive("dmp-archive-r3b", client=boto3.client("s3",
                                                               endpoint_url=store.endpoint))
    store.alter = lambda m, p, q, h, b: (_ignores_checksums(h), b)
    store.answer = lambda method, key, value: (
        '"0123456789abcdef0123456789abcdef"' if (method, key.lower()) == ("PUT", "etag")
        else value)
    data = b"MSH|^~\\&|LAB|X\r"
    archive.put_many([(sha256_hex(data), data)])
    gets = [s for s in store.seen if s[0] == "GET"]
    assert gets and archive.get(sha256_hex(data)) == data


def test_a_store_without_list_objects_v2_is_listed_with_version_1(sqlite_ctx,  # noqa: ANN001
                                                                  quirky) -> None:
    """Older S3-compatible stores (Ceph RGW before Luminous, some appliances) answer
    ListObjectsV2 (list-type=2) with 501 NotImplemented: every poll failed and nothing was
    taken. The poller now lists with ListObjects (markers), every page of it."""
    store, name, client = quirky

    def no_v2(method, path, query, headers):  # noqa: ANN001, ANN202
        return (501, "NotImplemented") if query.get("list-type") == ["2"] else None

    store.refuse = no_v2
    for i in range(5):
        client.put_object(Bucket=name, Key=f"incoming/r{i}.hl7",
                          Body=f"MSH|^~\\&|R{i}\r".encode())
    poller = BucketPoller(bucket_source(name), sqlite_ctx.engine, sqlite_ctx.archive,
                          endpoint_url=store.endpoint, list_page_size=2)
    result = poller.poll()
    assert (result.error, result.taken) == (None, 5)
    assert sorted(r["file_name"] for r in ledger(sqlite_ctx.engine)) == [
        f"incoming/r{i}.hl7" for i in range(5)]
    assert (poller.poll().taken, len(ledger(sqlite_ctx.engine))) == (0, 5)
    assert not [s for s in store.seen if "list-type=2" in s[2]][1:]  # asked once, not again


# -- drop folders -------------------------------------------------------------------------
@pytest.fixture
def mounted_subfolder(tmp_path):  # noqa: ANN001, ANN201
    """drop/ with drop/labX a tmpfs mounted inside it (as an SFTP chroot bind-mounted per
    sender); needs root and mount permission, else skipped."""
    import subprocess

    drop = tmp_path / "drop"
    sub = drop / "labX"
    sub.mkdir(parents=True)
    if os.geteuid() != 0 or subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=4m", "dmp-test", str(sub)],
            capture_output=True).returncode != 0:
        pytest.skip("cannot mount a file system here (root and mount permission needed)")
    try:
        yield drop
    finally:
        subprocess.run(["umount", "-l", str(sub)], check=False)


def test_a_file_on_a_mount_inside_the_folder_is_a_poll_error_not_a_silent_skip(
        sqlite_ctx, mounted_subfolder) -> None:  # noqa: ANN001
    """A sender's subfolder that is another mount (an SFTP chroot bind-mounted into the drop
    folder, a share mounted there) cannot be claimed by rename (EXDEV): its files were left in
    place, one warning line each per poll, and the poll said nothing (serve and the flows
    showed a healthy source). The poll now fails with one line saying why; the other files
    are taken; nothing is recorded for the ones left, which stay where they were dropped."""
    drop = mounted_subfolder
    (drop / "top.hl7").write_bytes(b"MSH|^~\\&|TOP\r")
    (drop / "labX" / "r.hl7").write_bytes(b"MSH|^~\\&|LABX\r")
    assert os.stat(drop / "labX").st_dev != os.stat(drop).st_dev
    with FolderPoller(folder_source(drop, recursive=True), sqlite_ctx.engine,
                      sqlite_ctx.archive) as poller:
        result = poller.poll()
        assert result.taken == 1
        assert result.error == ("folder source drop: 1 file(s) on another file system "
                                "than the folder (a mount inside it) cannot be claimed; left "
                                "in place (mount it outside this folder and declare it as "
                                "a folder source of its own)")
        assert poller.poll().error == result.error
    assert [r["file_name"] for r in ledger(sqlite_ctx.engine)] == ["top.hl7"]
    assert (drop / "labX" / "r.hl7").read_bytes() == b"MSH|^~\\&|LABX\r"


def test_more_senders_temporary_names_are_not_taken(sqlite_ctx, tmp_path) -> None:  # noqa: ANN001
    """Names other uploaders give a file still being written, seen in no earlier round:
    SFTP servers' temporary suffix (SFTPPlus' documented '.incomplete'), Safari's download
    bundle (a folder 'name.download' holding the partial file under its final name: in a
    recursive folder the cut file inside it was taken), Opera's '.opdownload', Chrome's
    '.crswap', Resilio Sync's '.!sync'. The poller and the command line leave them alone."""
    from connectors.files import iter_files

    drop = tmp_path / "drop"
    drop.mkdir()
    data = b"MSH|^~\\&|LAB|X\r"
    for name in ("a.hl7.incomplete", "b.pdf.opdownload", "c.pdf.crswap", "d.hl7.!sync",
                 "E.HL7.INCOMPLETE", "ok.hl7"):
        (drop / name).write_bytes(data)
    (drop / "cr.pdf.download").mkdir()
    (drop / "cr.pdf.download" / "cr.pdf").write_bytes(b"%PDF-1.7 cut")
    assert [p.name for p in iter_files([drop])] == ["ok.hl7"]
    with FolderPoller(folder_source(drop, recursive=True), sqlite_ctx.engine,
                      sqlite_ctx.archive) as poller:
        assert poller.poll().taken == 1
    assert [r["file_name"] for r in ledger(sqlite_ctx.engine)] == ["ok.hl7"]
    assert (drop / "cr.pdf.download" / "cr.pdf").exists()


MOVE_KEYS = ["incoming/a+b.hl7", "incoming/100% sûr.hl7", "incoming/re\u0301sultat.hl7",
             "incoming/r\u00e9sultat.hl7", "incoming/espace final .hl7", "incoming/?x=1&y=#.hl7",
             "incoming/notes/"]


def test_move_with_keys_of_every_kind(sqlite_ctx, bucket) -> None:  # noqa: ANN001, F811
    """after = "move" copies each key under processed/ (CopySource is URL-encoded by boto3):
    '+', '%', spaces, a query-like key, the NFD and the NFC spellings of 'é' (two distinct
    keys, two objects, both taken and kept apart), a non-empty object whose key ends in '/'."""
    endpoint, name, client = bucket
    for i, key in enumerate(MOVE_KEYS):
        client.put_object(Bucket=name, Key=key, Body=f"MSH|^~\\&|K|{i}\r".encode())
    poller = BucketPoller(bucket_source(name, after="move"), sqlite_ctx.engine,
                          sqlite_ctx.archive, endpoint_url=endpoint)
    result = poller.poll()
    assert (result.error, result.taken) == (None, len(MOVE_KEYS))
    assert keys(client, name) == sorted("processed/" + k for k in MOVE_KEYS)
    for i, key in enumerate(MOVE_KEYS):
        body = client.get_object(Bucket=name, Key="processed/" + key)["Body"].read()
        assert body == f"MSH|^~\\&|K|{i}\r".encode()
    assert sorted(r["file_name"] for r in ledger(sqlite_ctx.engine)) == sorted(MOVE_KEYS)
    assert poller.poll().taken == 0


def _archive_on(store: QuirkyStore, client, bucket_name: str):  # noqa: ANN001, ANN202
    import boto3

    from pipelines.s3_archive import S3Archive

    client.create_bucket(Bucket=bucket_name,
                         CreateBucketConfiguration={"LocationConstraint": "eu-west-3"})
    return S3Archive(bucket_name, "raw", client=boto3.client("s3", endpoint_url=store.endpoint))


def test_s3_archive_never_replaces_an_object_it_holds(quirky) -> None:  # noqa: ANN001
    """The archive is content-addressed: the same bytes again (a repeat, a file taken once
    more after a crash) were PUT again over the object held. Each repeat wrote a new version
    on an object-locked (WORM) bucket, and a repeat damaged on the way replaced good bytes
    that earlier ledger rows point to: their replay failed ARCHIVE_CORRUPT for good. A PUT is
    now conditional (If-None-Match: *): an object already there is checked, not replaced."""
    from pipelines.archive import ArchiveError, sha256_hex

    store, _, client = quirky
    archive = _archive_on(store, client, "dmp-archive-r3c")
    data = (HL7 / "05_chu_hba1c.hl7").read_bytes()
    archive.put_many([(sha256_hex(data), data)])

    def damage(method, path, query, headers, body):  # noqa: ANN001, ANN202
        if method == "PUT" and b"MSH|" in body:
            body = body.replace(b"MSH|", b"MSH!", 1)
        return _ignores_checksums(headers), body

    store.alter = damage
    archive.put_many([(sha256_hex(data), data)])  # already held, intact: nothing written
    store.alter = None
    assert archive.get(sha256_hex(data)) == data
    versions = client.list_object_versions(Bucket="dmp-archive-r3c").get("Versions", [])
    assert len(versions) == 1

    # an object held that is not the bytes (damaged by a store before this check) is replaced
    client.put_object(Bucket="dmp-archive-r3c", Key=archive.key(sha256_hex(b"MSH|good\r")),
                      Body=b"MSH|bad!\r")
    archive.put_many([(sha256_hex(b"MSH|good\r"), b"MSH|good\r")])
    assert archive.get(sha256_hex(b"MSH|good\r")) == b"MSH|good\r"
    with pytest.raises(ArchiveError):  # and one that cannot be written whole still fails
        store.alter = damage
        archive.put_many([(sha256_hex(b"MSH|new\r"), b"MSH|new\r")])


def test_s3_archive_on_a_store_without_conditional_puts(quirky) -> None:  # noqa: ANN001
    """A store that refuses If-None-Match on PUT (501 NotImplemented, older MinIO, Ceph
    before Squid, several providers) gets plain PUTs, still verified."""
    from pipelines.archive import sha256_hex

    store, _, client = quirky
    archive = _archive_on(store, client, "dmp-archive-r3d")
    store.refuse = lambda method, path, query, headers: (
        (501, "NotImplemented") if method == "PUT" and any(
            k.lower() == "if-none-match" for k in headers) else None)
    for data in (b"MSH|one\r", b"MSH|two\r", b"MSH|one\r"):
        archive.put_many([(sha256_hex(data), data)])
    assert archive.get(sha256_hex(b"MSH|one\r")) == b"MSH|one\r"
    assert archive.get(sha256_hex(b"MSH|two\r")) == b"MSH|two\r"
    puts = [s for s in store.seen if s[0] == "PUT"]
    assert len(puts) == 4  # one refused conditional PUT, then three plain ones


def test_a_store_that_checks_the_signing_region(sqlite_ctx, quirky, tmp_path,  # noqa: ANN001
                                                monkeypatch) -> None:
    """Scaleway (fr-par), OVH (gra, sbg...) and Outscale refuse a request signed for another
    region than theirs; without one boto3 signs for us-east-1. A store whose error names its
    region is followed by boto3 itself (right). One whose error does not could only be
    reached through AWS_DEFAULT_REGION, one region for every source and the archive (two
    providers could not both work), and the poll said only 'AuthorizationHeaderMalformed'.
    A bucket source now takes `region`, and the error says to set it."""
    from tests.s3_quirks import signed_for
    from tests.test_folder_connector import settings_from

    store, name, client = quirky
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    client.put_object(Bucket=name, Key="incoming/a.hl7", Body=b"MSH|^~\\&|A\r")
    store.refuse = signed_for("fr-par")  # names its region: boto3 re-signs
    poller = BucketPoller(bucket_source(name), sqlite_ctx.engine, sqlite_ctx.archive,
                          endpoint_url=store.endpoint)
    assert (poller.poll().error, poller.poll().taken) == (None, 0)
    client.put_object(Bucket=name, Key="incoming/b.hl7", Body=b"MSH|^~\\&|B\r")

    store.refuse = signed_for("fr-par", named=False)
    result = BucketPoller(bucket_source(name), sqlite_ctx.engine, sqlite_ctx.archive,
                          endpoint_url=store.endpoint).poll()
    assert result.error == (f"bucket source lab-s3: S3 refused ListObjectsV2 on "
                            f"s3://{name}/incoming/ (AuthorizationHeaderMalformed: the "
                            f"requests are signed for another region than the store's: set "
                            f"region in the bucket source)")
    assert len(ledger(sqlite_ctx.engine)) == 1

    settings = settings_from(tmp_path, f"""
[buckets.scw]
bucket = "{name}"
prefix = "incoming/"
endpoint_url = "{store.endpoint}"
region = "fr-par"
""")
    (source,) = settings.buckets
    assert source.region == "fr-par"
    result = BucketPoller(source, sqlite_ctx.engine, sqlite_ctx.archive).poll()
    assert (result.error, result.taken) == (None, 1)


@pytest.mark.parametrize("versioned", [False, True])
def test_move_on_a_store_without_conditional_deletes(sqlite_ctx, quirky,  # noqa: ANN001
                                                     versioned) -> None:
    """The move's delete is conditional on the ETag read (If-Match); a store that answers
    501 NotImplemented to a conditional DELETE left every object copied and never deleted:
    each poll failed, copied again, and a restarted poller recorded them all again as
    repeats. Such a store now gets the DELETE of the very version read (versioned bucket),
    else a HEAD (If-Match) and a plain DELETE."""
    store, name, client = quirky

    def no_conditional_delete(method, path, query, headers):  # noqa: ANN001, ANN202
        if method == "DELETE" and any(k.lower() == "if-match" for k in headers):
            return 501, "NotImplemented"
        return None

    store.refuse = no_conditional_delete
    if versioned:
        client.put_bucket_versioning(Bucket=name,
                                     VersioningConfiguration={"Status": "Enabled"})
    client.put_object(Bucket=name, Key="incoming/a.hl7", Body=b"MSH|^~\\&|A\r")
    client.put_object(Bucket=name, Key="incoming/b.hl7", Body=b"MSH|^~\\&|B\r")
    poller = BucketPoller(bucket_source(name, after="move"), sqlite_ctx.engine,
                          sqlite_ctx.archive, endpoint_url=store.endpoint)
    result = poller.poll()
    assert (result.error, result.taken) == (None, 2)
    assert keys(client, name) == ["processed/incoming/a.hl7", "processed/incoming/b.hl7"]
    assert (poller.poll().taken, len(ledger(sqlite_ctx.engine))) == (0, 2)


def test_s3_archive_verifies_a_streamed_multipart_upload(quirky, tmp_path) -> None:  # noqa: ANN001
    """A big file (an HL7 batch over 16 MB: intake_stream) is archived by boto3's managed
    upload, in parts. Nothing checked what the store kept: a part damaged on the way (a
    store ignoring the checksum headers) was archived and the ledger committed. The multipart
    ETag (MD5 of the parts' MD5s) is now compared, else the object read back."""
    from pipelines.archive import ArchiveError, sha256_hex

    store, _, client = quirky
    archive = _archive_on(store, client, "dmp-archive-r3e")
    big = tmp_path / "batch.hl7"
    data = b"MSH|^~\\&|LAB|" + bytes(range(256)) * (9 * 4096)  # 9 MiB and a bit: two parts
    big.write_bytes(data)

    def damage_part_2(method, path, query, headers, body):  # noqa: ANN001, ANN202
        if method == "PUT" and query.get("partNumber") == ["2"]:
            body = body[:100] + bytes([body[100] ^ 1]) + body[101:]
        return _ignores_checksums(headers), body

    store.alter = damage_part_2
    with pytest.raises(ArchiveError, match="not verified"):
        archive.put_file(big)
    store.alter = lambda m, p, q, h, b: (_ignores_checksums(h), b)
    assert archive.put_file(big) == (sha256_hex(data), len(data))
    assert archive.get(sha256_hex(data)) == data
