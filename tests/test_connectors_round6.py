"""Connectors round 6: drop folders written by Windows hosts over SMB, versioned and
S3-compatible buckets, `ingest` of inputs too large to hold. Real moto server on loopback,
real folders."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import flows
from connectors.folder import FolderPoller
from connectors.s3_bucket import BucketPoller
from pipelines.archive import DirectoryArchive
from pipelines.process import drain
from tests.test_folder_connector import files_under
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


# -- folders: a Windows copy over SMB fills a file of its final size --------------------------
def test_a_file_filled_in_place_at_its_final_size_is_not_taken_cut(sqlite_ctx, tmp_path) -> None:  # noqa: ANN001
    """Explorer's copy to an SMB share sets the file's end first (Samba: a sparse file of
    its final size), then writes it chunk by chunk; a copy that keeps the original's
    modification time (robocopy /COPY:T, a sync tool) leaves mtime where it was. Size and
    mtime stood still while the bytes came in: the file was settled and claimed with zeros
    for its tail. Now ctime and allocated blocks count too: any write moves ctime."""
    drop = tmp_path / "drop"
    drop.mkdir()
    data = (HL7 / "01_labm_nfs.hl7").read_bytes()
    note = "NTE|1||Résultat contrôlé sur second prélèvement\r".encode()
    data += note * ((20000 - len(data)) // len(note))
    path = drop / "CR biologie Hélène.hl7"
    old = 1_700_000_000_000_000_000  # the original's mtime, kept by the copy
    quarter = len(data) // 4

    def write(start: int, end: int) -> None:
        with open(path, "r+b" if path.exists() else "wb") as fh:
            fh.truncate(len(data))  # the final size, set before any byte
            fh.seek(start)
            fh.write(data[start:end])
        os.utime(path, ns=(old, old))

    now = [0.0]
    poller = FolderPoller(folder_source(drop, settle_seconds=5), sqlite_ctx.engine,
                          sqlite_ctx.archive, clock=lambda: now[0])
    write(0, quarter)
    poller.scan()
    write(quarter, 3 * quarter)
    now[0] += 10
    assert poller.poll().taken == 0  # changed since the last scan: not settled
    write(3 * quarter, len(data))
    now[0] += 10
    assert poller.poll().taken == 0
    now[0] += 10
    result = poller.poll()
    assert result.error is None and result.taken == 1
    assert files_under(drop) == {"done/CR biologie Hélène.hl7": data}
    [row] = ledger(sqlite_ctx.engine)
    assert row["size"] == len(data)
    assert sqlite_ctx.archive.get(row["sha256"]) == data


# -- S3: move on a versioned bucket -----------------------------------------------------------
def _versioned(client, name: str) -> None:  # noqa: ANN001
    client.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})


def _versions(client, name: str, key: str) -> tuple[list[bytes], int]:  # noqa: ANN001
    """The bytes of every version of ``key`` (newest first) and how many delete markers."""
    listed = client.list_object_versions(Bucket=name, Prefix=key)
    bodies = [client.get_object(Bucket=name, Key=key, VersionId=v["VersionId"])["Body"].read()
              for v in listed.get("Versions", []) if v["Key"] == key]
    return bodies, len([m for m in listed.get("DeleteMarkers", []) if m["Key"] == key])


def _no_conditional_delete(method: str, path: str, query: dict[str, list[str]],
                           headers: dict[str, str]) -> tuple[int, str] | None:
    """A store without DELETE If-Match (most S3-compatible stores): 501."""
    if method == "DELETE" and any(k.lower() == "if-match" for k in headers):
        return 501, "NotImplemented"
    return None


V1 = (HL7 / "01_labm_nfs.hl7").read_bytes()
V2 = V1 + "NTE|1||Résultat corrigé: hémolyse\r".encode()


def test_a_superseded_version_does_not_come_back_after_a_move(sqlite_ctx, quirky) -> None:  # noqa: ANN001
    """A versioned bucket on a store without conditional deletes: the move deleted the
    version read by its VersionId. A lab that exported a result and then its correction
    under the same key before our poll had the correction taken, then its first export
    became current again and was taken at the next poll: the superseded result filed after
    the corrected one (and the version read, kept by default elsewhere, gone). Now a delete
    marker hides the key; the versions stay, noncurrent."""
    store, name, client = quirky
    store.refuse = _no_conditional_delete
    _versioned(client, name)
    client.put_object(Bucket=name, Key="incoming/cr.hl7", Body=V1)
    client.put_object(Bucket=name, Key="incoming/cr.hl7", Body=V2)
    poller = BucketPoller(bucket_source(name, after="move"), sqlite_ctx.engine,
                          sqlite_ctx.archive, endpoint_url=store.endpoint)
    first = poller.poll()  # round 9: every version put since the last poll, oldest first
    assert (first.error, first.taken) == (None, 2)
    again = poller.poll()
    assert (again.error, again.taken) == (None, 0)
    assert [r["size"] for r in ledger(sqlite_ctx.engine)] == [len(V1), len(V2)]
    assert keys(client, name) == ["processed/incoming/cr.hl7"]
    assert _versions(client, name, "incoming/cr.hl7") == ([V2, V1], 1)  # kept, noncurrent


def test_a_put_between_read_and_delete_marker_is_not_hidden(sqlite_ctx, quirky) -> None:  # noqa: ANN001
    """The same store: a sender's new put in the instant between our read and our delete
    marker would be hidden under it, never taken. The marker is taken off again."""
    store, name, client = quirky
    store.refuse = _no_conditional_delete
    _versioned(client, name)
    client.put_object(Bucket=name, Key="incoming/cr.hl7", Body=V1)
    poller = BucketPoller(bucket_source(name, after="move"), sqlite_ctx.engine,
                          sqlite_ctx.archive, endpoint_url=store.endpoint)

    def sender_puts(params, **_) -> None:  # noqa: ANN001, ANN003
        if params["Key"] == "incoming/cr.hl7" and not params.get("VersionId") \
                and not params.get("IfMatch"):
            client.put_object(Bucket=name, Key="incoming/cr.hl7", Body=V2)

    event = "before-parameter-build.s3.DeleteObject"
    poller.client.meta.events.register(event, sender_puts)
    assert poller.poll().taken == 1
    poller.client.meta.events.unregister(event, sender_puts)
    later = poller.poll()
    assert (later.error, later.taken) == (None, 1)
    assert [r["size"] for r in ledger(sqlite_ctx.engine)] == [len(V1), len(V2)]
    assert keys(client, name, "incoming/") == []


@pytest.mark.parametrize("conditional", [True, False])
def test_delete_moved_version_deletes_the_version_moved_and_only_it(sqlite_ctx, quirky,  # noqa: ANN001
                                                                   conditional) -> None:
    """Retention: by default the move leaves the version read as a noncurrent version (the
    bucket's storage grows with every input: a lifecycle rule expires them). A source may
    set delete_moved_version: the version moved, copied under processed/ and committed, is
    deleted; the older version and the marker stay (the key stays hidden)."""
    store, name, client = quirky
    if not conditional:
        store.refuse = _no_conditional_delete
    _versioned(client, name)
    client.put_object(Bucket=name, Key="incoming/cr.hl7", Body=V1)
    client.put_object(Bucket=name, Key="incoming/cr.hl7", Body=V2)
    source = bucket_source(name, after="move", delete_moved_version=True)
    poller = BucketPoller(source, sqlite_ctx.engine, sqlite_ctx.archive,
                          endpoint_url=store.endpoint)
    # round 9: both versions put since the last poll are taken (oldest first) and deleted
    assert (poller.poll().taken, poller.poll().taken) == (2, 0)
    assert _versions(client, name, "incoming/cr.hl7") == ([], 1)
    moved = client.get_object(Bucket=name, Key="processed/incoming/cr.hl7")["Body"].read()
    assert moved == V2


def test_delete_moved_version_is_a_move_setting() -> None:
    from pipelines.settings import SettingsError, _buckets

    conf = {"bucket": "dmp-drop", "prefix": "synlab/", "after": "move"}
    assert _buckets({"lab": conf | {"delete_moved_version": True}})[0].delete_moved_version
    assert not _buckets({"lab": conf})[0].delete_moved_version
    with pytest.raises(SettingsError, match="only with after = 'move'"):
        _buckets({"lab": conf | {"after": "tag", "delete_moved_version": True}})
    with pytest.raises(SettingsError, match="true or false"):
        _buckets({"lab": conf | {"delete_moved_version": "yes"}})


# -- ingest: a file too large for its parser ---------------------------------------------------
CDA_HEAD = ('<?xml version="1.0" encoding="UTF-8"?>\n<ClinicalDocument xmlns="urn:hl7-org:v3">'
            '<title>Compte rendu d\'imagerie médicale</title><!-- ').encode()


def test_ingest_streams_a_huge_scan_and_the_worker_refuses_it_unread(tmp_path, monkeypatch) -> None:  # noqa: ANN001
    """`dmp-ingest ingest` read a 60 MB scanned PDF or CDA whole (read_files), archived it,
    and the worker read it whole again from the archive before the parser refused it as too
    large (PDF_TOO_LARGE, CDA_TOO_LARGE at 50 MiB). Now a file over 16 MiB of any format is
    streamed to the archive (hashed while copied), and the worker refuses a row over its
    parser's limit by its size, without reading it: same stage, code and text as the parser,
    bytes archived, so a rerun decides again. An ordinary report beside them is unchanged."""
    import tracemalloc

    from pipelines import input_limits

    monkeypatch.setenv("DMP_HOME", str(tmp_path / "home"))
    for name in ("DMP_CONFIG", "DMP_DATABASE_URL", "DMP_ARCHIVE_URL"):
        monkeypatch.delenv(name, raising=False)
    drop = tmp_path / "imagerie"
    drop.mkdir()
    # 50 MiB for both parsers; 16 MiB here (files over it are streamed): less disk to write
    size = 17 * 1024 * 1024
    monkeypatch.setattr(input_limits, "PDF_MAX_BYTES", 16 * 1024 * 1024)
    monkeypatch.setattr(input_limits, "CDA_MAX_BYTES", 16 * 1024 * 1024)
    for name, head in (("scan IRM genou.pdf", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n"),
                       ("CR scanner thorax.xml", CDA_HEAD)):
        with open(drop / name, "wb") as fh:  # sparse: made at once, read back as zeros
            fh.write(head)
            fh.truncate(size)
    small = (HL7 / "01_labm_nfs.hl7").read_bytes()
    (drop / "bilan.hl7").write_bytes(small)
    flows._context.cache_clear()
    read: list[int] = []
    real_get = DirectoryArchive.get

    def get(self, sha: str) -> bytes:  # noqa: ANN001
        data = real_get(self, sha)
        read.append(len(data))
        return data

    monkeypatch.setattr(DirectoryArchive, "get", get)
    try:
        ctx = flows._context("ingest")
        tracemalloc.start()
        received = flows.intake_files.fn([str(drop)], "imagerie")
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        drain(ctx)
        rows = {r["file_name"]: r for r in ledger(ctx.engine)}
    finally:
        tracemalloc.stop()
        flows._context.cache_clear()
    assert peak < 8 * 1024 * 1024, peak
    assert len(received["message_ids"]) == 3
    assert max(read) < 1024 * 1024  # only the HL7 message was read back
    pdf, cda = rows["scan IRM genou.pdf"], rows["CR scanner thorax.xml"]
    assert (pdf["format"], pdf["size"], pdf["status"], pdf["stage"], pdf["error_code"]) == (
        "pdf", size, "failed", "parse", "PDF_TOO_LARGE")
    assert pdf["error_message"] == f"PDF of {size} bytes, over the limit of {16 * 1024 ** 2} bytes"
    assert (cda["format"], cda["status"], cda["stage"], cda["error_code"]) == (
        "cda", "failed", "parse", "CDA_TOO_LARGE")
    assert rows["bilan.hl7"]["status"] != "failed"
    for row in (pdf, cda):  # every byte archived
        [blob] = list((tmp_path / "home").rglob(row["sha256"]))
        assert blob.stat().st_size == size


# -- S3: this host's clock off the store's ----------------------------------------------------
def _skewed(times: str):  # noqa: ANN202
    def refuse(method: str, path: str, query: dict[str, list[str]],
               headers: dict[str, str]) -> tuple[int, str, str]:
        return 403, "RequestTimeTooSkewed", times
    return refuse


@pytest.mark.parametrize(("times", "offset", "said"), [
    ("<RequestTime>20261127T045000Z</RequestTime><ServerTime>2026-11-27T05:12:00Z"
     "</ServerTime><MaxAllowedSkewMilliseconds>900000</MaxAllowedSkewMilliseconds>", 0,
     "about 22 min behind the store's"),
    ("", -40 * 60, "about 40 min ahead of the store's"),  # no times: the store's Date header
])
def test_a_clock_off_the_stores_is_named_as_such(sqlite_ctx, quirky, times, offset,  # noqa: ANN001
                                                 said) -> None:
    """boto3 signs with this host's clock and never corrects it: a VM whose clock drifted
    (no NTP towards the outside in a hospital network) had every request refused with
    RequestTimeTooSkewed, and the poll said only that code. It now says the clock is off,
    by how much and which way, from the store's ServerTime or its Date header."""
    store, name, client = quirky
    client.put_object(Bucket=name, Key="incoming/bilan.hl7", Body=V1)
    store.refuse = _skewed(times)
    store.clock_offset = offset
    result = BucketPoller(bucket_source(name), sqlite_ctx.engine, sqlite_ctx.archive,
                          endpoint_url=store.endpoint).poll()
    assert result.taken == 0 and "RequestTimeTooSkewed: this host's clock is " in result.error
    assert said in result.error and "synchronise it (NTP)" in result.error


# -- folders: Windows streams kept as files --------------------------------------------------
def test_windows_streams_beside_a_report_are_not_taken(sqlite_ctx, tmp_path) -> None:  # noqa: ANN001
    """A report copied from Windows by WSL or a Linux tool arrives with its download mark
    as a file of its own ('x.pdf:Zone.Identifier'; Samba's catia mapping writes the ':' as
    U+F022; macOS over SMB leaves AFP_AfpInfo): each was recorded, failed UNKNOWN_FORMAT,
    and sat in the failures list beside every report. They are left alone now; a name
    with ':' that is no stream (a Linux sender's 'CR 12:30.hl7') is still taken."""
    from connectors.files import iter_files

    drop = tmp_path / "drop"
    drop.mkdir()
    report = (HL7 / "01_labm_nfs.hl7").read_bytes()
    mark = b"[ZoneTransfer]\r\nZoneId=3\r\nHostUrl=https://labo.example.fr/\r\n"
    (drop / "Résultats Hélène.hl7").write_bytes(report)
    for stream in ("Résultats Hélène.hl7:Zone.Identifier",
                   "Résultats Hélène.hl7\uf022Zone.Identifier",
                   "Résultats Hélène.hl7:AFP_AfpInfo",
                   "Résultats Hélène.hl7:com.apple.quarantine"):
        (drop / stream).write_bytes(mark)
    (drop / "CR 12:30.hl7").write_bytes(report + b"NTE|1||second envoi\r")
    assert sorted(p.name for p in iter_files([drop])) == ["CR 12:30.hl7",
                                                         "Résultats Hélène.hl7"]
    poller = FolderPoller(folder_source(drop), sqlite_ctx.engine, sqlite_ctx.archive)
    result = poller.poll()
    assert (result.error, result.taken) == (None, 2)
    assert sorted(r["file_name"] for r in ledger(sqlite_ctx.engine)) == [
        "CR 12:30.hl7", "Résultats Hélène.hl7"]


def test_a_move_without_permission_to_list_versions_still_completes(sqlite_ctx, quirky) -> None:  # noqa: ANN001
    """The poller's policy may grant delete and copy but not s3:ListBucketVersions: the
    object is moved all the same (copied, hidden by the marker), once, with a warning;
    not 'recorded but not moved' at every poll."""
    store, name, client = quirky

    def refuse(method, path, query, headers):  # noqa: ANN001, ANN202
        if method == "GET" and "versions" in query:
            return 403, "AccessDenied"
        return _no_conditional_delete(method, path, query, headers)

    store.refuse = refuse
    _versioned(client, name)
    client.put_object(Bucket=name, Key="incoming/cr.hl7", Body=V1)
    poller = BucketPoller(bucket_source(name, after="move"), sqlite_ctx.engine,
                          sqlite_ctx.archive, endpoint_url=store.endpoint)
    result = poller.poll()
    assert (result.error, result.taken) == (None, 1)
    assert keys(client, name) == ["processed/incoming/cr.hl7"]
    assert (poller.poll().error, poller.poll().taken) == (None, 0)


# -- S3: tag mode remembers a bounded number of objects ---------------------------------------
def test_tag_mode_remembers_at_most_remember_max_objects_and_takes_none_twice(sqlite_ctx,  # noqa: ANN001
                                                                              quirky) -> None:
    """With after = "tag" the objects stay under the prefix and the poller remembered every
    one it had taken, as tuples of strings, for ever: its memory grew with the bucket. Now
    digests, at most remember_max: the objects past it have their tag read again at every
    poll, are found done and never taken twice; a new object is still taken."""
    store, name, client = quirky
    for n in range(5):
        client.put_object(Bucket=name, Key=f"incoming/2026/11/cr-{n}.hl7",
                          Body=V1 + f"NTE|{n + 1}||Prélèvement n°{n}\r".encode())
    poller = BucketPoller(bucket_source(name), sqlite_ctx.engine, sqlite_ctx.archive,
                          endpoint_url=store.endpoint, remember_max=3)
    assert poller.poll().taken == 5
    assert len(poller._known) == 3

    def tag_reads() -> int:
        return sum(1 for method, _, query in store.seen if method == "GET" and "tagging" in query)

    for _ in range(2):
        before = tag_reads()
        again = poller.poll()
        assert (again.error, again.taken) == (None, 0)
        assert tag_reads() - before == 2  # the two not remembered, and only them
        assert len(poller._known) == 3
    client.put_object(Bucket=name, Key="incoming/2026/11/cr-new.hl7", Body=V2)
    assert poller.poll().taken == 1
    assert len(ledger(sqlite_ctx.engine)) == 6


# -- S3: stores that want Content-MD5 ---------------------------------------------------------
def test_tags_reach_a_store_that_requires_content_md5(sqlite_ctx, quirky) -> None:  # noqa: ANN001
    """botocore 1.36 stopped sending Content-MD5 (a CRC32 instead) on requests whose body
    must carry a checksum; MinIO before 2025 and older Ceph RGW refuse PutObjectTagging
    without it (MissingContentMD5). Every object was recorded, then 'not tagged; done at
    the next poll' for ever. The poller's requests carry Content-MD5 again (the right one)."""
    import base64
    import hashlib

    store, name, client = quirky
    bodies: list[tuple[str, bytes]] = []

    def needs_md5(method, path, query, headers):  # noqa: ANN001, ANN202
        if method == "PUT" and "tagging" in query and not any(
                k.lower() == "content-md5" for k in headers):
            return 400, "MissingContentMD5"
        return None

    def keep(method, path, query, headers, body):  # noqa: ANN001, ANN202
        if method == "PUT" and "tagging" in query:
            bodies.append((next(v for k, v in headers.items() if k.lower() == "content-md5"),
                           body))
        return headers, body

    store.refuse, store.alter = needs_md5, keep
    client.put_object(Bucket=name, Key="incoming/bilan.hl7", Body=V1)
    result = BucketPoller(bucket_source(name), sqlite_ctx.engine, sqlite_ctx.archive,
                          endpoint_url=store.endpoint).poll()
    assert (result.error, result.taken) == (None, 1)
    assert tags(client, name, "incoming/bilan.hl7")["dmp-intake"] == "done"
    assert bodies and all(md5 == base64.b64encode(hashlib.md5(body).digest()).decode()
                          for md5, body in bodies)


# -- ingest: file names a Windows host wrote in CP1252 ----------------------------------------
def test_ingest_of_a_folder_with_cp1252_names(tmp_path, monkeypatch) -> None:  # noqa: ANN001
    """A share written by a Windows host without charset mapping holds names in CP1252
    ('Résultat Hélène.hl7' as b'R\\xe9sultat H\\xe9l\\xe8ne.hl7'). `ingest` of that folder
    stopped with a traceback: the file list, a Prefect flow parameter, is sent as UTF-8
    JSON, which cannot hold the name; past it, the ledger could not store the name either.
    Paths now cross as ``hex:`` when they are not UTF-8, and names are recorded as the
    folder poller records them (\\xNN)."""
    import json

    from connectors.files import from_wire, iter_files, to_wire

    monkeypatch.setenv("DMP_HOME", str(tmp_path / "home"))
    for name in ("DMP_CONFIG", "DMP_DATABASE_URL", "DMP_ARCHIVE_URL"):
        monkeypatch.delenv(name, raising=False)
    drop = tmp_path / "labo"
    drop.mkdir()
    cp1252 = os.fsdecode("Résultat Hélène.hl7".encode("cp1252"))
    (drop / cp1252).write_bytes(V1)
    (drop / "hex:bilan créatinine.hl7").write_bytes(V2)  # the marker itself, as a name
    files = [to_wire(p) for p in iter_files([drop])]
    json.dumps(files, ensure_ascii=False).encode("utf-8")  # what Prefect does with them
    assert sorted(from_wire(f) for f in files) == sorted(str(p) for p in iter_files([drop]))
    flows._context.cache_clear()
    try:
        ctx = flows._context("ingest")
        received = flows.intake_files.fn(files, "labo")
        rows = ledger(ctx.engine)
    finally:
        flows._context.cache_clear()
    assert len(received["message_ids"]) == 2
    assert sorted(r["file_name"] for r in rows) == ["R\\xe9sultat H\\xe9l\\xe8ne.hl7",
                                                    "hex:bilan créatinine.hl7"]
    assert {r["peer"] for r in rows} == {str(drop)}


@given(st.binary(min_size=1, max_size=40).filter(lambda b: b"/" not in b and b"\0" not in b))
@settings(max_examples=200, deadline=None)
def test_any_file_name_crosses_to_a_flow_and_back(name: bytes) -> None:
    """Whatever bytes a file name holds, its path crosses the JSON boundary and comes back."""
    import json

    from connectors.files import from_wire, to_wire

    path = "/srv/depot/" + os.fsdecode(name)
    wire = to_wire(path)
    json.dumps([wire], ensure_ascii=False).encode("utf-8")
    assert from_wire(wire) == path
