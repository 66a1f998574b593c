"""Connectors round 4: the drop folder and the S3 bucket against what real deployments do.
S3-compatible stores are played by a real HTTP proxy in front of moto's server
(tests/s3_quirks.py), so boto3 parses the store's own answers; drop folders are real folders
(a small tmpfs mounted where a full disk is needed)."""

from __future__ import annotations

import os
import re
import subprocess
import time
import tracemalloc
from pathlib import Path

import pytest

from connectors.folder import FolderPoller
from connectors.s3_bucket import BucketPoller
from tests.s3_quirks import QuirkyStore
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


def _poller(store: QuirkyStore, name: str, ctx, **kw) -> BucketPoller:  # noqa: ANN001, ANN003
    page = kw.pop("list_page_size", 1000)
    return BucketPoller(bucket_source(name, **kw), ctx.engine, ctx.archive,
                        endpoint_url=store.endpoint, list_page_size=page)


# -- S3 -------------------------------------------------------------------------------------
def test_one_object_that_cannot_be_read_does_not_block_the_others(sqlite_ctx, quirky,  # noqa: ANN001
                                                                  caplog) -> None:
    """An object a lifecycle rule moved to an archive storage class (GetObject answers 403
    InvalidObjectState until it is restored), or one encrypted with a key we may not use
    (AccessDenied on that object only): its GET failed the whole poll, before intake, at
    every poll, so no object listed with it was ever taken again. Now that object is left
    where it is (nothing recorded, nothing marked), the poll says how many and why, and the
    others are taken."""
    store, name, client = quirky
    for key in ("a.hl7", "archive.hl7", "c.hl7"):
        client.put_object(Bucket=name, Key=f"incoming/{key}", Body=f"MSH|^~\\&|{key}\r".encode())
    store.refuse = lambda method, path, query, headers: (
        (403, "InvalidObjectState") if method == "GET" and path.endswith("/archive.hl7")
        and "tagging" not in query else None)
    # round 7: an archived object is parked (not asked for again for an hour) instead of
    # failing every poll, which slowed the whole source to the longest back-off
    now = [0.0]
    poller = BucketPoller(bucket_source(name), sqlite_ctx.engine, sqlite_ctx.archive,
                          endpoint_url=store.endpoint, clock=lambda: now[0])
    result = poller.poll()
    assert result.error == ("bucket source lab-s3: 1 object(s) cannot be read "
                            "(InvalidObjectState: in an archive storage class: restore "
                            "it); left in place, tried again in 60 min")
    assert poller.poll().error is None
    assert sorted(r["file_name"] for r in ledger(sqlite_ctx.engine)) == [
        "incoming/a.hl7", "incoming/c.hl7"]
    assert tags(client, name, "incoming/archive.hl7") == {}
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("dmp"))
    assert "cannot be read (InvalidObjectState on GetObject)" in ours
    assert "archive.hl7" not in ours  # logs name keys by digest only
    store.refuse = None  # restored
    now[0] += 3601
    assert poller.poll().taken == 1 and len(ledger(sqlite_ctx.engine)) == 3


def test_a_store_that_ignores_range_does_not_get_a_huge_object_read_whole(sqlite_ctx,  # noqa: ANN001
                                                                          quirky) -> None:
    """An object over max_bytes is fetched with Range: bytes=0-65535; a store (or a proxy in
    front of it) that ignores Range answers 200 with the whole object, and the poller read
    all of it into memory and archived it whole as the 'head'. Now at most 64 KiB is read
    from the body, whatever the store sends."""
    store, name, client = quirky
    big = b"MSH|^~\\&|BIG|" + b"x" * 300_000 + b"\r"
    client.put_object(Bucket=name, Key="incoming/big.hl7", Body=big)
    store.alter = lambda method, path, query, headers, body: (
        {k: v for k, v in headers.items() if k.lower() != "range"}, body)
    result = _poller(store, name, sqlite_ctx, max_bytes=10_000).poll()
    assert (result.error, result.taken, result.refused) == (None, 1, 1)
    row = ledger(sqlite_ctx.engine)[0]
    assert row["error_code"] == "S3_OBJECT_TOO_LARGE" and f"{len(big)} bytes" in row[
        "error_message"]
    assert sqlite_ctx.archive.get(row["sha256"]) == big[:65536]


def test_an_object_grown_past_max_bytes_behind_a_store_ignoring_if_match(sqlite_ctx,  # noqa: ANN001
                                                                         quirky) -> None:
    """Listed small, replaced by a large one before the GET, on a store that ignores If-Match
    on GET: the large body was read whole into memory. The body is now read no further than
    max_bytes + 1, and a body that is not the object listed (another ETag, longer than
    listed) is left for the next poll, which sees it as it is now."""
    store, name, client = quirky
    client.put_object(Bucket=name, Key="incoming/r.hl7", Body=b"MSH|^~\\&|SMALL\r")
    store.alter = lambda method, path, query, headers, body: (
        {k: v for k, v in headers.items() if k.lower() != "if-match"}, body)
    poller = _poller(store, name, sqlite_ctx, max_bytes=10_000)
    big = b"MSH|^~\\&|BIG|" + b"y" * 200_000 + b"\r"

    def replaced(params, **_) -> None:  # noqa: ANN001, ANN003
        client.put_object(Bucket=name, Key="incoming/r.hl7", Body=big)

    poller.client.meta.events.register("before-parameter-build.s3.GetObject", replaced)
    result = poller.poll()
    assert (result.error, result.taken) == (None, 0) and ledger(sqlite_ctx.engine) == []
    poller.client.meta.events.unregister("before-parameter-build.s3.GetObject", replaced)
    result = poller.poll()
    assert (result.taken, result.refused) == (1, 1)
    row = ledger(sqlite_ctx.engine)[0]
    assert row["error_code"] == "S3_OBJECT_TOO_LARGE"
    assert sqlite_ctx.archive.get(row["sha256"]) == big[:65536]


def test_a_listing_truncated_without_a_continuation_token(sqlite_ctx, quirky) -> None:  # noqa: ANN001
    """Some stores answer a ListObjectsV2 page with IsTruncated true and no
    NextContinuationToken (older Ceph RGW and appliances with some prefixes). botocore's
    paginator then stops without a word: every object past the first page was never taken,
    and the poll looked healthy. The listing now goes on after the page's last key
    (StartAfter)."""
    store, name, client = quirky
    for i in range(7):
        client.put_object(Bucket=name, Key=f"incoming/{i:02d}.hl7",
                          Body=f"MSH|^~\\&|P{i}\r".encode())

    def no_token(method, path, query, body):  # noqa: ANN001, ANN202
        if method == "GET" and "list-type" in query:
            body = re.sub(rb"<NextContinuationToken>[^<]*</NextContinuationToken>", b"", body)
        return body

    store.reply = no_token
    poller = _poller(store, name, sqlite_ctx, list_page_size=3)
    result = poller.poll()
    assert (result.error, result.taken) == (None, 7)
    assert poller.poll().taken == 0 and len(ledger(sqlite_ctx.engine)) == 7


def test_a_listing_that_never_advances_is_a_poll_error(sqlite_ctx, quirky) -> None:  # noqa: ANN001
    """A store that answers every page truncated, with no key and no token, would be listed
    forever: the poll stops and says so."""
    store, name, client = quirky
    client.put_object(Bucket=name, Key="incoming/a.hl7", Body=b"MSH|^~\\&|A\r")

    def stuck(method, path, query, body):  # noqa: ANN001, ANN202
        if method == "GET" and "list-type" in query:
            body = re.sub(rb"<Contents>.*</Contents>", b"", body, flags=re.S)
            body = re.sub(rb"<NextContinuationToken>[^<]*</NextContinuationToken>", b"", body)
            body = body.replace(b"<IsTruncated>false</IsTruncated>",
                                b"<IsTruncated>true</IsTruncated>")
        return body

    store.reply = stuck
    result = _poller(store, name, sqlite_ctx).poll()
    assert result.taken == 0
    assert result.error == (f"bucket source lab-s3: the S3 store's listing of s3://{name}/"
                            f"incoming/ says there is more but gives no way on (no key, no "
                            f"continuation token); the poll stopped there")


def _rotating_credentials(store: QuirkyStore, tmp_path, monkeypatch):  # noqa: ANN001, ANN202
    """Credentials in a shared credentials file (key OLDKEY) and a store that takes only the
    current key, refusing any other as expired; returns ``rotate(key)``: the key changes, in
    the file and at the store, as a Vault agent's rotation does."""
    creds = tmp_path / "credentials"
    valid = {"key": ""}

    def rotate(key: str) -> None:
        valid["key"] = key
        creds.write_text(f"[default]\naws_access_key_id = {key}\n"
                         f"aws_secret_access_key = secret-{key}\n")

    def expired(method, path, query, headers):  # noqa: ANN001, ANN202
        auth = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
        return None if f"Credential={valid['key']}/" in auth else (400, "ExpiredToken")

    rotate("OLDKEY")
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(creds))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    store.refuse = expired
    return rotate


def test_rotated_credentials_are_read_again_after_the_store_refuses_the_old_ones(
        sqlite_ctx, quirky, tmp_path, monkeypatch) -> None:  # noqa: ANN001
    """Deployments rotate the S3 keys under a running service (a Vault agent or a cron job
    rewriting the shared credentials file; temporary keys that expire). The poller kept the
    client made at its first poll, and boto3's default session keeps the credentials it read
    first: once the old key expired every poll of `serve` failed until a restart. After the
    store refuses the credentials, the next poll makes a client that reads them again."""
    store, name, client = quirky
    rotate = _rotating_credentials(store, tmp_path, monkeypatch)
    client.put_object(Bucket=name, Key="incoming/a.hl7", Body=b"MSH|^~\\&|A\r")
    poller = _poller(store, name, sqlite_ctx)
    assert (poller.poll().error, len(ledger(sqlite_ctx.engine))) == (None, 1)
    rotate("NEWKEY")  # the old key expires, the new one is written
    client.put_object(Bucket=name, Key="incoming/b.hl7", Body=b"MSH|^~\\&|B\r")
    result = poller.poll()
    assert "ExpiredToken: the S3 credentials are wrong or expired" in result.error
    result = poller.poll()
    assert (result.error, result.taken) == (None, 1)
    assert tags(client, name, "incoming/b.hl7")["dmp-intake"] == "done"


def test_the_s3_archive_reads_rotated_credentials_after_the_store_refuses_the_old_ones(
        quirky, tmp_path, monkeypatch) -> None:  # noqa: ANN001
    """The raw archive on S3 had the same flaw as the poller: its client, made once, kept the
    keys it read first. Once they expired, every intake was refused (no ACK, nothing lost)
    and every archived read failed its import for good, until a restart. Now the write or
    read the store refuses drops the client; the next one reads the credentials again, and
    a refused read is transient (the import is retried, not failed)."""
    from pipelines.archive import ArchiveError, ArchiveUnavailable
    from pipelines.s3_archive import S3Archive

    store, name, _ = quirky
    rotate = _rotating_credentials(store, tmp_path, monkeypatch)
    archive = S3Archive(name, "raw", endpoint_url=store.endpoint)
    first = archive.put(b"MSH|^~\\&|LAB|1\r")
    rotate("NEWKEY")  # the old key expires, the new one is written
    with pytest.raises(ArchiveUnavailable):
        archive.get(first)
    assert archive.get(first) == b"MSH|^~\\&|LAB|1\r"
    rotate("NEWERKEY")
    with pytest.raises(ArchiveError):
        archive.put(b"MSH|^~\\&|LAB|2\r")
    second = archive.put(b"MSH|^~\\&|LAB|2\r")
    assert archive.get(second) == b"MSH|^~\\&|LAB|2\r"


# -- drop folders ---------------------------------------------------------------------------
def test_a_huge_file_over_max_bytes_is_not_read_into_memory(sqlite_ctx, tmp_path) -> None:  # noqa: ANN001
    """A file over max_bytes was read up to max_bytes + 1 before being refused: with the
    default limit of a few hundred MB, a scanner's multi-GB export held that much memory in
    the poller just to keep its first 64 KiB. Its size says it is too large: only the head
    is read now."""
    drop = tmp_path / "drop"
    drop.mkdir()
    big = drop / "export.pdf"
    with open(big, "wb") as f:
        f.write(b"%PDF-1.7\n")
        f.truncate(64 * 1024 * 1024)  # sparse: no disk used
    with FolderPoller(folder_source(drop, max_bytes=48 * 1024 * 1024), sqlite_ctx.engine,
                      sqlite_ctx.archive) as poller:
        poller.scan()
        tracemalloc.start()
        try:
            result = poller.poll()
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert (result.taken, result.refused, result.error) == (1, 1, None)
    assert peak < 8 * 1024 * 1024, peak
    row = ledger(sqlite_ctx.engine)[0]
    assert row["error_code"] == "FOLDER_FILE_TOO_LARGE" and "67108864 bytes" in row[
        "error_message"]
    assert len(sqlite_ctx.archive.get(row["sha256"])) == 65536
    assert (drop / "failed" / "export.pdf").stat().st_size == 64 * 1024 * 1024


NAS_FOLDERS = ["#recycle", "@eaDir", "sub/@eaDir", "#snapshot", "~snapshot/hourly.0",
               "@Recycle", "@Recently-Snapshot", "$RECYCLE.BIN/S-1-5-21", "@Recently-Snapshot",
               "System Volume Information", "lost+found"]


def test_nas_recycle_bins_snapshots_and_index_folders_are_not_taken(sqlite_ctx,  # noqa: ANN001
                                                                     tmp_path) -> None:
    """A drop folder shared by a NAS holds the NAS's own folders: Synology's '#recycle' (what
    a sender deleted from the share: taken, a file withdrawn was filed anyway), '@eaDir'
    (its indexer's thumbnails and streams, in every folder) and '#snapshot', NetApp's
    '~snapshot' on SMB shares and QNAP's '@Recently-Snapshot' (every file again, once per
    snapshot), QNAP's '@Recycle', Windows' '$RECYCLE.BIN' and 'System Volume Information', and
    'lost+found' at the root of a mounted volume. None of them is what a sender sent."""
    from connectors.files import iter_files

    drop = tmp_path / "drop"
    data = b"MSH|^~\\&|LAB|X\r"
    for folder in NAS_FOLDERS:
        (drop / folder).mkdir(parents=True, exist_ok=True)
        (drop / folder / "r.hl7").write_bytes(data)
    (drop / "sub" / "r.hl7").write_bytes(data)
    (drop / "ok.hl7").write_bytes(data)
    assert [p.relative_to(drop).as_posix() for p in iter_files([drop])] == ["ok.hl7",
                                                                          "sub/r.hl7"]
    with FolderPoller(folder_source(drop), sqlite_ctx.engine, sqlite_ctx.archive) as poller:
        assert poller.poll().taken == 2
    assert sorted(r["file_name"] for r in ledger(sqlite_ctx.engine)) == ["ok.hl7", "sub/r.hl7"]
    for folder in NAS_FOLDERS:
        assert (drop / folder / "r.hl7").exists()


@pytest.fixture
def small_disk(tmp_path):  # noqa: ANN001, ANN201
    """A 512 KiB tmpfs (a nearly full disk for done/); needs root and mount permission."""
    disk = tmp_path / "small"
    disk.mkdir()
    if os.geteuid() != 0 or subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=512k", "dmp-test", str(disk)],
            capture_output=True).returncode != 0:
        pytest.skip("cannot mount a file system here (root and mount permission needed)")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def test_done_on_a_full_disk_leaves_no_partial_copy_and_moves_once_there_is_room(
        sqlite_ctx, tmp_path, small_disk) -> None:  # noqa: ANN001
    """done/ is a link to another disk that is full: the copy across file systems failed
    half-way (ENOSPC) and left its partial '.dmp-copy-*.tmp' in done/, one more at every poll
    that tried again, so the disk stayed full for good. The partial copy is removed; the file
    stays claimed (recorded once) and is moved when there is room."""
    drop = tmp_path / "drop"
    drop.mkdir()
    (small_disk / "done").mkdir()
    (drop / "done").symlink_to(small_disk / "done", target_is_directory=True)
    filler = small_disk / "filler"
    filler.write_bytes(b"\0" * 300 * 1024)
    data = b"%PDF-1.7\n" + os.urandom(300 * 1024)
    (drop / "scan.pdf").write_bytes(data)
    with FolderPoller(folder_source(drop), sqlite_ctx.engine, sqlite_ctx.archive) as poller:
        for _ in range(2):
            result = poller.poll()
            assert result.error == ("folder source drop: a recorded file cannot be moved to "
                                    "done/ (No space left on device); retried at the next poll")
            assert list((small_disk / "done").iterdir()) == []
            assert claimed_files(drop) == ["scan.pdf"]
        filler.unlink()
        result = poller.poll()
        assert (result.error, result.taken) == (None, 1)
    assert files_under(small_disk / "done") == {"scan.pdf": data}
    assert not claimed_files(drop) and len(ledger(sqlite_ctx.engine)) == 1
    assert not list(Path(small_disk).rglob(".dmp-copy-*"))


def test_a_name_dropped_from_a_mac_is_found_by_the_name_typed(sqlite_ctx, tmp_path) -> None:  # noqa: ANN001
    """macOS writes accented names decomposed (NFD: 'e' + U+0301) on SMB, SFTP and NFS
    shares; the ledger keeps the name as the file system gives it, and `imports list --file
    '*Hélène*'` typed on any keyboard (NFC) found nothing: the report a sender's ticket names
    could not be found by its name. A pattern now matches both spellings; names are still
    recorded as given (the file in done/ is found by the same bytes)."""
    import unicodedata

    from sqlalchemy import select

    from dossiers.schema import imports
    from pipelines.ledger import ImportFilter, where_filter

    drop = tmp_path / "drop"
    drop.mkdir()
    mac = unicodedata.normalize("NFD", "CR Hélène Dupré.hl7")
    windows = "Résultat Gaëlle.hl7"
    (drop / mac).write_bytes(b"MSH|^~\\&|MAC\r")
    (drop / windows).write_bytes(b"MSH|^~\\&|WIN\r")
    with FolderPoller(folder_source(drop), sqlite_ctx.engine, sqlite_ctx.archive) as poller:
        assert poller.poll().taken == 2
    assert {r["file_name"] for r in ledger(sqlite_ctx.engine)} == {mac, windows}

    def found(pattern: str) -> list[str]:
        query = where_filter(select(imports.c.file_name), ImportFilter(file_name=pattern))
        with sqlite_ctx.engine.connect() as conn:
            return sorted(conn.execute(query).scalars())

    assert found("*Hélène*") == [mac]  # typed (NFC), recorded decomposed
    assert found(unicodedata.normalize("NFD", "*Gaëlle*")) == [windows]  # pasted from a Mac
    assert found("*Dupre.hl7") == []  # an accent is still an accent


def test_a_file_named_done_does_not_block_the_folder(sqlite_ctx, tmp_path) -> None:  # noqa: ANN001
    """Senders that transfer by batches often end one with an empty marker file, and some
    name it 'done' (or 'failed' after an error). At the top of the folder that name was
    skipped as our own done/ folder, so done/ could never be made: every file was recorded,
    then could not be moved out (the poll failed at every poll, the files stayed claimed,
    the folder blocked for good). A top-level 'done' or 'failed' that is not a folder is
    now a dropped file like any other; done/ and failed/ (or links to folders) are ours."""
    drop = tmp_path / "drop"
    drop.mkdir()
    (drop / "done").write_bytes(b"")
    os.utime(drop / "done", (time.time() - 120,) * 2)  # round 8: an empty file waits a minute
    (drop / "failed").write_bytes(b"batch 12 ok\n")
    (drop / "r.hl7").write_bytes(b"MSH|^~\\&|R\r")
    with FolderPoller(folder_source(drop), sqlite_ctx.engine, sqlite_ctx.archive) as poller:
        result = poller.poll()
        assert (result.error, result.taken, result.refused) == (None, 3, 1)
        assert not claimed_files(drop)
        assert files_under(drop / "done") == {"r.hl7": b"MSH|^~\\&|R\r",
                                              "failed": b"batch 12 ok\n"}
        assert set(files_under(drop / "failed")) == {"done", "done.error.txt"}
        (drop / "done" / "x.hl7").write_bytes(b"MSH|^~\\&|X\r")  # ours now: never taken
        assert poller.poll().taken == 0
    assert sorted(r["file_name"] for r in ledger(sqlite_ctx.engine)) == ["done", "failed",
                                                                         "r.hl7"]


HOLDER = """
import sys
with open(sys.argv[1], "ab") as fh:  # an SFTP server's or Samba's upload: open, no lock
    fh.write(bytes.fromhex(sys.argv[2]))
    fh.flush()
    print("writing", flush=True)
    sys.stdin.read()  # the sender's network stalls here
    fh.write(bytes.fromhex(sys.argv[3]))
"""


def test_a_stalled_upload_held_open_without_a_lock_is_left_until_closed(sqlite_ctx,  # noqa: ANN001
                                                                        tmp_path) -> None:
    """sftp-server and smbd write an upload through a file they hold open and take no lock;
    when the sender's network stalls longer than settle_seconds, size and mtime stand still
    and the file was taken cut short (the rest then written into the claimed file, or after
    it was archived). A file another process on this host holds open for writing is now
    left in place until it is closed, then taken whole."""
    import subprocess
    import sys
    import time

    drop = tmp_path / "drop"
    drop.mkdir()
    data = (HL7 / "05_chu_hba1c.hl7").read_bytes()
    path = drop / "upload.hl7"
    writer = subprocess.Popen([sys.executable, "-c", HOLDER, str(path), data[:100].hex(),
                               data[100:].hex()], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline() == "writing\n"
        past = time.time_ns() - 10 * 10**9
        os.utime(path, ns=(past, past))  # settled by its mtime and size
        with FolderPoller(folder_source(drop, settle_seconds=0.05), sqlite_ctx.engine,
                          sqlite_ctx.archive) as poller:
            assert poller.poll().taken == 0
            assert path.read_bytes() == data[:100] and ledger(sqlite_ctx.engine) == []
            writer.communicate("", timeout=10)  # the upload ends
            os.utime(path, ns=(past, past))
            assert poller.poll().taken == 0  # changed since seen: it settles first
            time.sleep(0.1)
            assert poller.poll().taken == 1
    finally:
        writer.kill()
        writer.wait()
    assert files_under(drop / "done") == {"upload.hl7": data}


class _NoDacOverride:
    """This thread without CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH in its effective set (a
    root test process reads any folder otherwise), put back on exit: Linux capabilities are
    per thread, and the permitted set keeps them to raise again."""

    def __enter__(self) -> None:
        import ctypes

        self._libc = ctypes.CDLL(None, use_errno=True)
        self._header = (ctypes.c_uint32 * 2)(0x20080522, 0)  # version 3, this thread
        self._data = (ctypes.c_uint32 * 6)()
        if self._libc.capget(self._header, self._data) != 0:
            pytest.skip("capget refused")
        self._saved = list(self._data)
        if not self._data[0] & 0b110:
            pytest.skip("no DAC override to drop: permissions already apply")
        self._data[0] &= ~0b110  # effective set, low word: bits 1 and 2
        if self._libc.capset(self._header, self._data) != 0:
            pytest.skip("capset refused")

    def __exit__(self, *exc: object) -> None:
        for i, value in enumerate(self._saved):
            self._data[i] = value
        assert self._libc.capset(self._header, self._data) == 0


def test_a_subfolder_the_service_cannot_list_is_a_poll_error(sqlite_ctx, tmp_path) -> None:  # noqa: ANN001
    """A sender's subfolder the service may not read (an SFTP chroot made 0700 for the
    sender's own user): its files were never taken, one warning line per poll, and the poll
    said nothing (serve and the flows showed a healthy source). The poll now fails with one
    line saying why; the other files are taken."""
    if os.geteuid() != 0:
        pytest.skip("the folder is made unreadable to root by dropping capabilities")
    drop = tmp_path / "drop"
    (drop / "labB").mkdir(parents=True)
    (drop / "labB" / "r.hl7").write_bytes(b"MSH|^~\\&|B\r")
    (drop / "top.hl7").write_bytes(b"MSH|^~\\&|TOP\r")
    os.chmod(drop / "labB", 0)
    try:
        with FolderPoller(folder_source(drop), sqlite_ctx.engine, sqlite_ctx.archive) as poller:
            with _NoDacOverride():
                result = poller.poll()
    finally:
        os.chmod(drop / "labB", 0o755)
    assert result.taken == 1
    assert result.error == ("folder source drop: 1 subfolder(s) cannot be listed (Permission "
                            "denied); the files in them are not taken (give the service read "
                            "and search permission)")
    assert (drop / "labB" / "r.hl7").exists()
    assert [r["file_name"] for r in ledger(sqlite_ctx.engine)] == ["top.hl7"]


def _in_a_thread_without_flock(work):  # noqa: ANN001, ANN202
    """Run ``work()`` in a thread whose flock() fails with ENOLCK, as on an NFSv3 mount whose
    lock service (lockd/statd) does not answer: a seccomp filter on that thread only (gone
    with it). Returns what work returned."""
    import ctypes
    import errno
    import platform
    import threading

    arch = {"x86_64": (0xC000003E, 73), "aarch64": (0xC00000B7, 32)}.get(platform.machine())
    if arch is None:
        pytest.skip("seccomp test written for x86_64 and aarch64")

    class Filter(ctypes.Structure):
        _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8),
                    ("jf", ctypes.c_uint8), ("k", ctypes.c_uint32)]

    class Program(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(Filter))]

    program = (Filter * 6)(
        Filter(0x20, 0, 0, 4),  # load the architecture
        Filter(0x15, 0, 3, arch[0]),  # not ours: allow
        Filter(0x20, 0, 0, 0),  # load the syscall number
        Filter(0x15, 0, 1, arch[1]),  # flock?
        Filter(0x06, 0, 0, 0x00050000 | errno.ENOLCK),  # fails with ENOLCK
        Filter(0x06, 0, 0, 0x7FFF0000))  # anything else allowed
    libc = ctypes.CDLL(None, use_errno=True)
    outcome: dict = {}

    def run() -> None:
        prog = Program(len(program), program)
        if (libc.prctl(38, 1, 0, 0, 0) != 0  # PR_SET_NO_NEW_PRIVS
                or libc.prctl(22, 2, ctypes.byref(prog), 0, 0) != 0):  # seccomp filter
            outcome["skip"] = True
            return
        try:
            outcome["value"] = work()
        except BaseException as exc:  # noqa: BLE001 - raised again in the test's thread
            outcome["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(30)
    if outcome.get("skip"):
        pytest.skip("seccomp refused here")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def test_a_folder_whose_file_system_refuses_locks_says_so_and_leaves_no_litter(
        sqlite_ctx, tmp_path) -> None:  # noqa: ANN001
    """On an NFSv3 share whose lock service does not answer, flock() fails with ENOLCK. The
    poller made a '.claimed/.new-*' folder to lock, failed, made another... a hundred per
    poll, never removed (their removal needs the same lock), and the poll said 'cannot make
    a claim folder': the share filled with empty folders at every poll. Now the poll says
    the file system refuses locks and what to do, and leaves nothing behind; once locks
    work, the files are taken."""
    drop = tmp_path / "drop"
    drop.mkdir()
    (drop / "r.hl7").write_bytes(b"MSH|^~\\&|R\r")
    with FolderPoller(folder_source(drop), sqlite_ctx.engine, sqlite_ctx.archive) as poller:
        results = _in_a_thread_without_flock(lambda: [poller.poll(), poller.poll()])
        for result in results:
            assert result.taken == 0
            assert result.error == (
                "folder source drop: folder unusable (its file system refuses locks (No locks "
                "available): on NFS start its lock service (rpc.statd), or mount it with "
                "'nolock' when only this host polls it)")
        assert os.listdir(drop / ".claimed") == []
        assert (drop / "r.hl7").exists() and ledger(sqlite_ctx.engine) == []
        assert poller.poll().taken == 1  # locks work again
