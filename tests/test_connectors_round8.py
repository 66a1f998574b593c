"""Connectors round 8: drop folders and S3 buckets from operators we have not seen. A lab that
exports under one fixed key on a versioned bucket, a bucket policy without the tagging
permissions, a share that stops answering while a file is read, a sender that creates its
file and writes it later. Real moto server on loopback (through a proxy where the store must
refuse something), real folders."""

from __future__ import annotations

import errno
import os
import time

import pytest

from connectors import folder
from connectors.folder import FolderPoller
from connectors.s3_bucket import BucketPoller
from tests.conftest import SAMPLES
from tests.test_connectors_round6 import V1, V2
from tests.test_folder_connector import settings_from
from tests.test_folder_connector import source as folder_source
from tests.test_s3_connector import (  # noqa: F401 - fixtures
    aws_env,
    bucket,
    bucket_source,
    keys,
    ledger,
    s3_server,
    tags,
)


def _versions(client, name: str, key: str) -> list[dict]:  # noqa: ANN001
    listed = client.list_object_versions(Bucket=name, Prefix=key).get("Versions", [])
    return [v for v in listed if v["Key"] == key]


# -- S3: a key put again between our listing and our read, on a versioned bucket -------------
@pytest.mark.parametrize("after", ["tag", "move"])
def test_the_version_listed_is_read_when_the_key_is_put_again_before_the_read(  # noqa: ANN001
        sqlite_ctx, bucket, after) -> None:  # noqa: F811
    """A laboratory exports every result file under one name ('resultats.hl7') into a
    versioned bucket. Its next export landed between our listing and our read: the read
    (If-Match the ETag listed) was refused, the new object taken at the next poll, and the
    one listed, kept by the bucket as a noncurrent version, was never taken: a result lost.
    Now the version listed is read by its VersionId and marked (tag: that version; move: its
    copy), and the new one is taken at the next poll: both on the ledger, in order."""
    _, name, client = bucket
    client.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    key = "incoming/resultats.hl7"
    client.put_object(Bucket=name, Key=key, Body=V1)
    poller = BucketPoller(bucket_source(name, after=after), sqlite_ctx.engine,
                          sqlite_ctx.archive, client=client)
    put = []

    def next_export(params, **_) -> None:  # noqa: ANN001, ANN003
        if not put:
            put.append(client.put_object(Bucket=name, Key=key, Body=V2)["VersionId"])

    client.meta.events.register("before-parameter-build.s3.GetObjectTagging", next_export)
    try:
        first = poller.poll()
        assert (first.taken, first.error) == (1, None)
        assert poller.poll().taken == 1  # the new export
        assert poller.poll().taken == 0
    finally:
        client.meta.events.unregister("before-parameter-build.s3.GetObjectTagging",
                                      next_export)
    rows = ledger(sqlite_ctx.engine)
    assert [(r["file_name"], sqlite_ctx.archive.get(r["sha256"])) for r in rows] == [
        (key, V1), (key, V2)]
    if after == "tag":
        by_version = {v["VersionId"]: client.get_object_tagging(
            Bucket=name, Key=key, VersionId=v["VersionId"])["TagSet"]
            for v in _versions(client, name, key)}
        assert {k: {t["Key"]: t["Value"] for t in v}.get("dmp-intake-import")
                for k, v in by_version.items()} == {
            vid: str(row["id"]) for vid, row in zip(
                [v["VersionId"] for v in reversed(_versions(client, name, key))], rows,
                strict=True)}
        assert put[0] == _versions(client, name, key)[0]["VersionId"]
    else:
        assert keys(client, name) == ["processed/" + key]
        copies = _versions(client, name, "processed/" + key)
        assert [client.get_object(Bucket=name, Key=c["Key"], VersionId=c["VersionId"])[
            "Body"].read() for c in reversed(copies)] == [V1, V2]


# -- S3: credentials that may read the objects but not tag them ------------------------------
def _deny_tagging(methods: tuple[str, ...]):  # noqa: ANN202
    """A bucket policy granting ListBucket and GetObject but not the tagging actions named:
    AccessDenied (403) for the tagging sub-resource with these methods."""
    def refuse(method, path, query, headers):  # noqa: ANN001, ANN202
        return (403, "AccessDenied") if "tagging" in query and method in methods else None
    return refuse


def _object_reads(store) -> int:  # noqa: ANN001
    return sum(1 for method, path, query in store.seen
               if method == "GET" and "tagging" not in query and path.count("/") > 1)


def test_credentials_that_may_not_read_tags_fall_back_on_the_ledger(sqlite_ctx,  # noqa: ANN001
                                                                    quirky) -> None:
    """The operator's policy grants s3:GetObject and s3:ListBucket only. With after = "tag"
    every GetObjectTagging was refused: each object 'cannot be read (AccessDenied)', none
    ever taken. Now the poller falls back on the ledger: each object is taken once, a new
    poller (no memory) finds them on the ledger and records nothing again, and a new object
    is taken."""
    store, name, client = quirky
    store.refuse = _deny_tagging(("GET", "PUT", "DELETE"))
    client.put_object(Bucket=name, Key="incoming/CR Müller+fils.hl7", Body=V1)
    client.put_object(Bucket=name, Key="incoming/2026/crp.hl7", Body=V2)
    poller = BucketPoller(bucket_source(name), sqlite_ctx.engine, sqlite_ctx.archive,
                          endpoint_url=store.endpoint)
    first = poller.poll()
    assert (first.taken, first.refused, first.error) == (2, 0, None)
    again = BucketPoller(bucket_source(name), sqlite_ctx.engine, sqlite_ctx.archive,
                         client=poller.client)  # a new poller: no memory
    assert (again.poll().taken, len(ledger(sqlite_ctx.engine))) == (0, 2)
    client.put_object(Bucket=name, Key="incoming/nouveau.hl7", Body=V1 + b"NTE|9||x\r")
    assert again.poll().taken == 1
    assert [r["file_name"] for r in ledger(sqlite_ctx.engine)] == [
        "incoming/2026/crp.hl7", "incoming/CR Müller+fils.hl7", "incoming/nouveau.hl7"]
    assert tags(client, name, "incoming/nouveau.hl7") == {}


def test_tags_refused_after_intake_are_not_retried_for_ever(sqlite_ctx, quirky,  # noqa: ANN001
                                                             tmp_path) -> None:
    """The policy lets the poller read tags but not put them (PutObjectTagging denied).
    Every object was recorded, then 'recorded but not tagged; done at the next poll' at every
    poll, for ever, and each new poller (a run of the poll-buckets flow, a restart) read and
    recorded every object again. Now an object taken is remembered (the memory kept under
    the home): the poll is clean, and a new poller neither reads nor records it again."""
    store, name, client = quirky
    store.refuse = _deny_tagging(("PUT", "DELETE"))
    for n in range(3):
        client.put_object(Bucket=name, Key=f"incoming/res-{n}.hl7",
                          Body=V1 + f"NTE|{n}||Hémolyse {n}\r".encode())
    home = tmp_path / "s3-taken"
    poller = BucketPoller(bucket_source(name), sqlite_ctx.engine, sqlite_ctx.archive,
                          endpoint_url=store.endpoint, state_dir=home)
    first = poller.poll()
    assert (first.taken, first.error) == (3, None)
    second = poller.poll()
    assert (second.taken, second.error) == (0, None)
    reads = _object_reads(store)
    fresh = BucketPoller(bucket_source(name), sqlite_ctx.engine, sqlite_ctx.archive,
                         endpoint_url=store.endpoint, client=poller.client, state_dir=home)
    assert (fresh.poll().taken, _object_reads(store)) == (0, reads)
    assert len(ledger(sqlite_ctx.engine)) == 3


# -- folder: the share stops answering while a claimed file is read ---------------------------
def test_a_share_that_stops_answering_mid_read_leaves_the_file_claimed(sqlite_ctx, tmp_path,  # noqa: ANN001
                                                                       monkeypatch) -> None:
    """The drop folder is a CIFS mount of the lab's Windows server; the server reboots while
    a poll reads the files it claimed: the kernel answers EHOSTDOWN (a soft NFS mount:
    ETIMEDOUT). That file was recorded as a failed import ('unreadable', no bytes) and moved
    to failed/ once the share was back: a good report out of the way. Now it stays claimed,
    the poll says the share stopped answering, the files read before it are recorded, and
    the next poll takes it. (A local tmpfs cannot refuse a read: the kernel's answer is
    given by the read of that one file.)"""
    drop = tmp_path / "partage-labo"
    drop.mkdir()
    names = ["a-CR Dupont.hl7", "b-CR Lefèvre.hl7", "c-CR Nguyễn.hl7"]
    for n, name in enumerate(names):
        (drop / name).write_bytes(V1 + f"NTE|{n}||Prélèvement {n}\r".encode())
    real = folder._read_up_to
    down = [True]

    def read(fd: int, limit: int) -> bytes:
        if down[0] and os.readlink(f"/proc/self/fd/{fd}").endswith(names[1]):
            raise OSError(errno.EHOSTDOWN, "Host is down")
        return real(fd, limit)

    monkeypatch.setattr(folder, "_read_up_to", read)
    with FolderPoller(folder_source(drop), sqlite_ctx.engine, sqlite_ctx.archive) as poller:
        first = poller.poll()
        assert first.error == ("folder source drop: the folder's file system stopped answering "
                               "while a file was read (EHOSTDOWN); the files claimed stay "
                               "claimed, taken again at the next poll")
        assert (first.taken, first.pending) == (1, 2)
        assert not (drop / "failed").exists()
        down[0] = False  # the server is back
        second = poller.poll()
        assert (second.taken, second.error) == (2, None)
    assert sorted(p.name for p in (drop / "done").iterdir()) == names
    rows = ledger(sqlite_ctx.engine)
    assert sorted((r["file_name"], r["status"]) for r in rows) == [
        (name, "received") for name in names]


# -- folder: an empty file its writer has not begun to fill -----------------------------------
def test_an_empty_file_is_left_until_its_writer_has_had_time_to_fill_it(sqlite_ctx,  # noqa: ANN001
                                                                         tmp_path) -> None:
    """A scanner's scan-to-folder (or a Windows copy that stalls) creates the PDF on the
    share and writes its first byte seconds later, the file held open by smbd (no lock we
    can see). Empty at the first settled poll, it was refused (FOLDER_EMPTY_FILE) and moved
    to failed/, where its writer went on filling it: the report in failed/, the ledger saying
    'empty'. Now an empty file is left until it has stayed empty for a minute (seen so, or
    its mtime that old); filled meanwhile, it is taken whole."""
    drop = tmp_path / "scanner"
    drop.mkdir()
    pdf = sorted((SAMPLES / "pdf").glob("*.pdf"))[0].read_bytes()
    (drop / "SCAN_IRM_genou.pdf").write_bytes(b"")  # created, not yet written
    (drop / "fin_de_lot.ok").write_bytes(b"")  # a batch marker left long ago
    old = time.time() - 120
    os.utime(drop / "fin_de_lot.ok", (old, old))
    now = [1000.0]
    with FolderPoller(folder_source(drop), sqlite_ctx.engine, sqlite_ctx.archive,
                      clock=lambda: now[0]) as poller:
        first = poller.poll()
        assert (first.taken, first.refused, first.error) == (1, 1, None)  # the old marker
        assert (drop / "SCAN_IRM_genou.pdf").exists()
        now[0] += 30
        assert poller.poll().taken == 0  # still empty, not for long: left
        (drop / "SCAN_IRM_genou.pdf").write_bytes(pdf)  # the scanner writes it
        poller.scan()
        assert poller.poll().taken == 1
        (drop / "vide.hl7").write_bytes(b"")  # never written
        poller.scan()
        now[0] += 59
        assert poller.poll().taken == 0
        now[0] += 2
        assert poller.poll().refused == 1
    rows = {r["file_name"]: (r["status"], r["error_code"], r["size"])
            for r in ledger(sqlite_ctx.engine)}
    assert rows == {"fin_de_lot.ok": ("failed", "FOLDER_EMPTY_FILE", 0),
                    "SCAN_IRM_genou.pdf": ("received", None, len(pdf)),
                    "vide.hl7": ("failed", "FOLDER_EMPTY_FILE", 0)}
    assert (drop / "done" / "SCAN_IRM_genou.pdf").read_bytes() == pdf


# -- S3: a prefix written as a path -----------------------------------------------------------
def test_a_prefix_written_as_a_path_is_a_poll_error_not_silence(sqlite_ctx, bucket) -> None:  # noqa: ANN001, F811
    """The operator copies the drop's path from MinIO's console or a file manager:
    prefix = '/incoming/' or 'bucket/incoming/'. S3 keys are 'incoming/x.hl7': the poller
    listed nothing at every poll and said nothing while the lab's files piled up. Now the
    poll says where the objects are; a prefix whose keys really begin with '/' (a sender's
    SDK joining paths) is listed as before, and an empty drop says nothing."""
    endpoint, name, client = bucket

    def poll(prefix: str):  # noqa: ANN202
        return BucketPoller(bucket_source(name, prefix=prefix), sqlite_ctx.engine,
                            sqlite_ctx.archive, client=client).poll()

    assert poll("/incoming/").error is None  # nothing anywhere yet
    client.put_object(Bucket=name, Key="incoming/CR bilan hépatique.hl7", Body=V1)
    for prefix in ("/incoming/", f"/{name}/incoming/"):
        result = poll(prefix)
        assert result.taken == 0
        assert result.error == (
            f"bucket source lab-s3: nothing under prefix {prefix!r}, but objects under "
            "'incoming/': a prefix is the start of the keys, without a leading '/' or the "
            "bucket's name (set prefix = 'incoming/'); nothing taken")
    client.put_object(Bucket=name, Key="/sdk/CR.hl7", Body=V2)
    assert (poll("/sdk/").taken, poll("incoming/").taken) == (1, 1)
    assert [r["file_name"] for r in ledger(sqlite_ctx.engine)] == [
        "/sdk/CR.hl7", "incoming/CR bilan hépatique.hl7"]


# -- S3: processed_prefix written without its '/' ---------------------------------------------
def test_a_processed_prefix_without_its_slash_is_a_folder(sqlite_ctx, bucket,  # noqa: ANN001, F811
                                                          tmp_path) -> None:
    """after = "move" with processed_prefix = "traites" (the operator's word for the
    folder): objects went to 'traitesincoming/...', and on a bucket polled whole every key
    beginning with those letters ('traitement-urgent.hl7') was skipped as ours, never taken,
    unsaid. The '/' is now added to processed_prefix and refused_prefix."""
    endpoint, name, client = bucket
    settings = settings_from(tmp_path, f"""
[buckets.labo]
bucket = "{name}"
after = "move"
processed_prefix = "traites"
refused_prefix = "refuses"
max_bytes = 1000
""")
    (source,) = settings.buckets
    assert (source.processed_prefix, source.refused_prefix) == ("traites/", "refuses/")
    client.put_object(Bucket=name, Key="traitement-urgent.hl7", Body=V1[:900])
    client.put_object(Bucket=name, Key="refuses-scanner.pdf", Body=b"%PDF-1.4" + b"x" * 2000)
    result = BucketPoller(source, sqlite_ctx.engine, sqlite_ctx.archive, client=client).poll()
    assert (result.taken, result.refused, result.error) == (2, 1, None)
    assert keys(client, name) == ["refuses/refuses-scanner.pdf",
                                  "traites/traitement-urgent.hl7"]


def test_a_move_with_credentials_that_may_not_tag_moves_untagged(sqlite_ctx,  # noqa: ANN001
                                                                  quirky) -> None:
    """after = "move" under the policy operators write for a move (s3:ListBucket, GetObject,
    PutObject, DeleteObject; no tagging action): GetObjectTagging refused made every object
    'cannot be read (AccessDenied)', none taken; with it granted, every tagged copy was
    refused and every object 'recorded but not moved' at every poll. A move needs no tag:
    the copies go without, the objects are moved once."""
    store, name, client = quirky

    def no_tag_actions(method, path, query, headers):  # noqa: ANN001, ANN202
        tagged = "tagging" in query or any(k.lower() == "x-amz-tagging" for k in headers)
        return (403, "AccessDenied") if tagged else None

    store.refuse = no_tag_actions
    client.put_object(Bucket=name, Key="incoming/CR échographie.hl7", Body=V1)
    client.put_object(Bucket=name, Key="incoming/CR+bilan.hl7", Body=V2)
    poller = BucketPoller(bucket_source(name, after="move"), sqlite_ctx.engine,
                          sqlite_ctx.archive, endpoint_url=store.endpoint)
    first = poller.poll()
    assert (first.taken, first.error) == (2, None)
    second = poller.poll()
    assert (second.taken, second.error) == (0, None)
    assert keys(client, name) == ["processed/incoming/CR échographie.hl7",
                                  "processed/incoming/CR+bilan.hl7"]
    assert len(ledger(sqlite_ctx.engine)) == 2
