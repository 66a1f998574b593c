"""Connectors round 7: what a bucket poller costs in real deployments (the memory of objects
taken kept between pollers, partial listings), objects it could not take (archived, SSE-C,
gzip-encoded, requester-pays buckets), a drop folder's share unmounted, what serve says at
start, settings mistakes all at once. Real moto server on loopback (through a counting
proxy), real folders (a real tmpfs mount when permitted)."""

from __future__ import annotations

import gzip
import os

from hypothesis import given, settings
from hypothesis import strategies as st

import flows
from connectors.s3_bucket import TAKEN_DIR, BucketPoller
from connectors.s3_encoding import Damaged, TooLarge, decode
from tests.test_connectors_round6 import V1, V2
from tests.test_s3_connector import (  # noqa: F401 - fixtures
    aws_env,
    bucket,
    bucket_source,
    ledger,
    s3_server,
    tags,
)


def _tag_reads(store) -> int:  # noqa: ANN001
    return sum(1 for method, _, query in store.seen if method == "GET" and "tagging" in query)


def _cr(n: int) -> bytes:
    return V1 + f"NTE|{n + 1}||Prélèvement n°{n} contrôlé\r".encode()


# -- S3 tag mode: a new poller does not read every object's tag again ------------------------
def test_a_new_poller_starts_from_the_memory_of_the_last_one(sqlite_ctx, quirky,  # noqa: ANN001
                                                             tmp_path) -> None:
    """With after = "tag" every object taken stays under the prefix. Each new poller (every
    run of the poll-buckets flow, each restart of serve) read the tag of every one of them
    again: with 100,000 taken, 100,000 GetObjectTagging per scheduled poll. The memory is
    now kept under the home: a new poller reads the tags of the new objects only, takes
    them, and takes an object put again under a known key."""
    store, name, client = quirky
    for n in range(6):
        client.put_object(Bucket=name, Key=f"incoming/2026/11/cr-{n}.hl7", Body=_cr(n))
    state = tmp_path / "state"

    def poller() -> BucketPoller:
        return BucketPoller(bucket_source(name), sqlite_ctx.engine, sqlite_ctx.archive,
                            endpoint_url=store.endpoint, state_dir=state)

    assert poller().poll().taken == 6
    before = _tag_reads(store)
    again = poller().poll()
    assert (again.error, again.taken) == (None, 0)
    assert _tag_reads(store) == before  # nothing asked about the six taken

    # a new object, sorting before every key taken, and a known key put again
    client.put_object(Bucket=name, Key="incoming/2025/12/cr-late.hl7", Body=_cr(40))
    client.put_object(Bucket=name, Key="incoming/2026/11/cr-3.hl7", Body=V2)
    before = _tag_reads(store)
    third = poller().poll()
    assert (third.error, third.taken) == (None, 2)
    assert _tag_reads(store) - before == 2
    assert tags(client, name, "incoming/2025/12/cr-late.hl7")["dmp-intake"] == "done"
    before = _tag_reads(store)
    assert poller().poll().taken == 0
    assert _tag_reads(store) == before
    assert len(ledger(sqlite_ctx.engine)) == 8


def test_a_damaged_or_foreign_memory_costs_requests_never_an_object(sqlite_ctx, quirky,  # noqa: ANN001
                                                                    tmp_path) -> None:
    """The file is a cache, the tag is the truth: a file cut in an append keeps its whole
    digests, one that is not ours is ignored, the memory of the same source id pointed at
    another prefix is not used; the tags are read again, nothing taken twice or missed.
    What a poll takes is appended (16 bytes an object), not the whole file rewritten."""
    store, name, client = quirky
    for n in range(3):
        client.put_object(Bucket=name, Key=f"incoming/cr-{n}.hl7", Body=_cr(n))
    state = tmp_path / "state"

    def poller(**kw) -> BucketPoller:  # noqa: ANN003
        return BucketPoller(bucket_source(name, **kw), sqlite_ctx.engine, sqlite_ctx.archive,
                            endpoint_url=store.endpoint, state_dir=state)

    assert poller().poll().taken == 3
    [kept] = list(state.iterdir())
    size = kept.stat().st_size
    client.put_object(Bucket=name, Key="incoming/cr-3.hl7", Body=_cr(3))
    assert poller().poll().taken == 1
    assert kept.stat().st_size == size + 16  # appended
    kept.write_bytes(kept.read_bytes()[:-5])  # a crash in the append: 3 whole, 1 cut
    client.put_object(Bucket=name, Key="incoming/cr-new.hl7", Body=_cr(9))
    before = _tag_reads(store)
    assert poller().poll().taken == 1
    assert _tag_reads(store) - before == 2  # the one cut and the new one
    kept.write_bytes(b"not ours" + kept.read_bytes())
    before = _tag_reads(store)
    assert poller().poll().taken == 0
    assert _tag_reads(store) - before == 5
    before = _tag_reads(store)
    assert poller(prefix="incoming/cr-",  # a string prefix (round 9: else a folder)
                  prefix_is_folder=False).poll().taken == 0  # a memory of its own
    assert _tag_reads(store) - before == 5
    assert len(list(state.iterdir())) == 2
    assert len(ledger(sqlite_ctx.engine)) == 5


def test_the_poll_buckets_flow_keeps_its_memory_under_the_home(tmp_path, monkeypatch,  # noqa: ANN001
                                                               quirky) -> None:
    """The poll-buckets flow makes a new poller at every run: it read the tag of every
    object under the prefix at every scheduled poll."""
    store, name, client = quirky
    home = tmp_path / "home"
    home.mkdir()
    (home / "dmp.toml").write_text(f"""
[buckets.biologie-s3]
bucket = "{name}"
prefix = "incoming/"
endpoint_url = "{store.endpoint}"
""", encoding="utf-8")
    monkeypatch.setenv("DMP_HOME", str(home))
    for var in ("DMP_DATABASE_URL", "DMP_ARCHIVE_URL", "DMP_CONFIG", "DMP_S3_ENDPOINT_URL"):
        monkeypatch.delenv(var, raising=False)
    for n in range(4):
        client.put_object(Bucket=name, Key=f"incoming/cr-{n}.hl7", Body=_cr(n))
    flows._context.cache_clear()
    try:
        assert flows.poll_bucket.fn("biologie-s3")["taken"] == 4
        before = _tag_reads(store)
        assert flows.poll_bucket.fn("biologie-s3")["taken"] == 0
        assert _tag_reads(store) == before
        assert len(list((home / TAKEN_DIR).iterdir())) == 1
    finally:
        flows._context.cache_clear()



# -- S3: an object in an archive storage class -----------------------------------------------
def test_an_archived_object_is_parked_not_asked_for_at_every_poll(sqlite_ctx, quirky,  # noqa: ANN001
                                                                  caplog) -> None:
    """An object a sender put in (or a lifecycle rule moved to) Glacier or Deep Archive
    answers GetObject with InvalidObjectState until restored, which takes hours. It was
    asked for (its tags, its bytes) at every poll and failed every poll: the service backs
    off a failing source, so one archived report slowed the intake of all the others to
    one poll in five minutes. Now it is parked for an hour: said once, the next polls are
    clean and send no request for it; restored, it is taken."""
    store, name, client = quirky
    client.put_object(Bucket=name, Key="incoming/2024/cr-archivé.hl7", Body=_cr(1),
                      StorageClass="GLACIER")
    client.put_object(Bucket=name, Key="incoming/2026/cr-du-jour.hl7", Body=_cr(2))
    now = [1000.0]
    poller = BucketPoller(bucket_source(name), sqlite_ctx.engine, sqlite_ctx.archive,
                          endpoint_url=store.endpoint, clock=lambda: now[0])
    first = poller.poll()
    assert first.taken == 1
    assert first.error == ("bucket source lab-s3: 1 object(s) cannot be read "
                           "(InvalidObjectState: in an archive storage class: restore it); "
                           "left in place, tried again in 60 min")
    asked = len([s for s in store.seen if "archiv" in s[1]])
    client.put_object(Bucket=name, Key="incoming/2026/cr-suivant.hl7", Body=_cr(3))
    second = poller.poll()
    assert (second.error, second.taken) == (None, 1)
    assert len([s for s in store.seen if "archiv" in s[1]]) == asked  # not asked again
    client.restore_object(Bucket=name, Key="incoming/2024/cr-archivé.hl7",
                          RestoreRequest={"Days": 2})
    now[0] += 1800
    assert poller.poll().taken == 0  # parked for an hour
    now[0] += 1801
    third = poller.poll()
    assert (third.error, third.taken) == (None, 1)
    assert sorted(r["file_name"] for r in ledger(sqlite_ctx.engine)) == [
        "incoming/2024/cr-archivé.hl7", "incoming/2026/cr-du-jour.hl7",
        "incoming/2026/cr-suivant.hl7"]
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("dmp"))
    assert "asked for again in 60 min" in ours and "archivé" not in ours


# -- S3: objects stored compressed ------------------------------------------------------------
def test_an_object_stored_with_content_encoding_gzip_is_taken_decompressed(sqlite_ctx,  # noqa: ANN001
                                                                          quirky) -> None:
    """A sender that uploads with Content-Encoding: gzip stores the compressed bytes; S3
    serves them as stored and boto3 does not decompress. The gzip stream was archived and
    failed as no known format. Now it is decompressed (bounded by max_bytes); a charset put
    in Content-Encoding by mistake changes nothing; a damaged stream, or one over max_bytes
    once decompressed, is refused with its own code."""
    store, name, client = quirky
    endpoint = store.endpoint
    nfs = _cr(1)
    note = "NTE|2||Hémoglobine contrôlée, prélèvement à jeun\r".encode()
    big = V1 + note * 400  # about 20 KB, compresses to a few hundred bytes
    client.put_object(Bucket=name, Key="incoming/nfs.hl7.gz", Body=gzip.compress(nfs),
                      ContentEncoding="gzip")
    client.put_object(Bucket=name, Key="incoming/utf8.hl7", Body=V2, ContentEncoding="utf-8")
    client.put_object(Bucket=name, Key="incoming/cut.hl7", Body=gzip.compress(nfs)[:-12],
                      ContentEncoding="gzip")
    client.put_object(Bucket=name, Key="incoming/big.hl7", Body=gzip.compress(big),
                      ContentEncoding="x-gzip, aws-chunked")
    poller = BucketPoller(bucket_source(name, max_bytes=10_000), sqlite_ctx.engine,
                          sqlite_ctx.archive, endpoint_url=endpoint)
    result = poller.poll()
    assert (result.error, result.taken, result.refused) == (None, 4, 2)
    rows = {r["file_name"]: r for r in ledger(sqlite_ctx.engine)}
    gz = rows["incoming/nfs.hl7.gz"]
    assert (gz["format"], gz["size"], gz["error_code"]) == ("hl7v2", len(nfs), None)
    assert sqlite_ctx.archive.get(gz["sha256"]) == nfs
    assert sqlite_ctx.archive.get(rows["incoming/utf8.hl7"]["sha256"]) == V2
    assert rows["incoming/cut.hl7"]["error_code"] == "S3_BAD_CONTENT_ENCODING"
    assert rows["incoming/big.hl7"]["error_code"] == "S3_OBJECT_TOO_LARGE"
    assert tags(client, name, "incoming/cut.hl7")["dmp-intake"] == "refused"


@given(st.binary(max_size=3000), st.integers(0, 4000))
@settings(max_examples=150, deadline=None)
def test_decoding_never_passes_the_limit_and_gives_back_what_was_compressed(data: bytes,  # noqa: D103
                                                                            limit: int) -> None:
    try:
        assert decode(gzip.compress(data) + gzip.compress(data), "gzip", limit) == data * 2
        assert len(data) * 2 <= limit
    except TooLarge:
        assert len(data) * 2 > limit
    for damaged in (gzip.compress(data)[:-1], b"\x1f\x8b" + data):
        try:
            assert len(decode(damaged, "GZIP", limit)) <= limit
        except (TooLarge, Damaged):
            pass


# -- serve: what each poller watches, said at start ------------------------------------------
def test_serve_says_at_start_what_each_source_polls_and_no_secret(tmp_path,  # noqa: ANN001
                                                                  sqlite_template) -> None:  # noqa: ANN001
    """'polling 1 folder(s), 1 bucket(s)' alone left the admin to guess which path,
    prefix and endpoint a running service had read from its settings."""
    from connectors.service import Pollers
    from pipelines.process import Context
    from tests.conftest import migrated_sqlite
    from tests.test_folder_connector import settings_from

    migrated_sqlite(sqlite_template, tmp_path / "home" / "dmp.sqlite3")  # the home's store
    settings = settings_from(tmp_path, f"""
poll_interval = 15
[folders.labo-cerballiance]
path = "{tmp_path / 'dépôt'}"
settle_seconds = 3
[buckets.imagerie-s3]
bucket = "cr-imagerie"
prefix = "entrant/"
endpoint_url = "https://AKIAEXAMPLE:s3cr3t@s3.fr-par.scw.cloud"
region = "fr-par"
after = "move"
poll_interval = 60
""")
    ctx = Context.from_settings(settings)
    try:
        lines = Pollers(ctx, None).lines()
    finally:
        ctx.engine.dispose()
    assert lines == [
        f"folder source labo-cerballiance: {tmp_path / 'dépôt'} (every 15 s, settled 3 s, "
        f"with subfolders, then moved to done/ or failed/)",
        "bucket source imagerie-s3: s3://cr-imagerie/entrant/ at https://s3.fr-par.scw.cloud "
        "(fr-par) (every 60 s, then moved under processed/)"]


# -- folders: a share that goes away and comes back -------------------------------------------
def _mount(path, *args: str) -> bool:  # noqa: ANN001
    import subprocess

    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(path), *args],
                          capture_output=True, check=False)
    return done.returncode == 0


def _umount(path) -> None:  # noqa: ANN001
    import subprocess

    subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)


def test_a_share_unmounted_under_the_poller_is_a_poll_error_not_an_empty_folder(  # noqa: ANN001
        sqlite_ctx, tmp_path) -> None:
    """A share mounted on the drop folder that goes away (an automount expired, a lazy
    unmount after the server was lost) leaves the empty local folder under it: polls found
    nothing, said nothing, and wrote their claim folder on the local disk while the lab's
    results piled up unseen. Now the poll says the share is gone and writes nothing there;
    mounted again, the poller takes the files and its claims are locked on the new mount."""
    import pytest

    from connectors.folder import CLAIMED, FolderPoller
    from tests.test_folder_connector import files_under
    from tests.test_folder_connector import source as folder_source

    drop = tmp_path / "partage-labo"
    drop.mkdir()
    if not _mount(drop):
        pytest.skip("cannot mount a tmpfs here (not root, or no mount permission)")
    try:
        now = [0.0]
        poller = FolderPoller(folder_source(drop), sqlite_ctx.engine, sqlite_ctx.archive,
                              clock=lambda: now[0])
        (drop / "NFS Hélène.hl7").write_bytes(_cr(1))
        first = poller.poll()
        assert (first.error, first.taken) == (None, 1)
        _umount(drop)
        gone = poller.poll()
        assert gone.error is not None and "share mounted on it is gone" in gone.error
        assert os.listdir(drop) == []  # no claim folder made on the local disk
        assert _mount(drop)
        (drop / "iono.hl7").write_bytes(_cr(2))
        now[0] += 5
        back = poller.poll()
        assert back.error is None
        now[0] += 5
        back = poller.poll()
        assert (back.error, back.taken) == (None, 1)
        assert files_under(drop) == {"done/iono.hl7": _cr(2)}
        held = [p for p in (drop / CLAIMED).iterdir() if not p.name.startswith(".")]
        assert list(poller._held) == held  # its claim folder, locked on the new mount
        poller.close()
    finally:
        _umount(drop)


# -- settings: every mistake of the sources at once -------------------------------------------
def test_every_mistake_of_the_folder_and_bucket_sources_is_said_at_once(tmp_path) -> None:  # noqa: ANN001
    """The settings stopped at their first mistake: an admin declaring a dozen sources found
    them one start at a time. Now one line per mistake, folders and buckets together; a
    correct file is read as before."""
    import pytest

    from pipelines.settings import SettingsError
    from tests.test_folder_connector import settings_from

    with pytest.raises(SettingsError) as caught:
        settings_from(tmp_path, f"""
[folders.labo-biomnis]
path = "{tmp_path / 'biomnis'}"
settle_secondes = 2
recursif = false
[folders.scanner-chu]
path = ""
[folders.ok]
path = "{tmp_path / 'ok'}"
[buckets.imagerie]
bucket = "cr-imagerie"
after = "copy"
[buckets.synlab]
bucket = "synlab-résultats"
max_bytes = -1
""")
    lines = str(caught.value).splitlines()
    assert lines[0].startswith("[folders.labo-biomnis] unknown setting 'recursif'")
    assert lines[1].startswith("[folders.labo-biomnis] unknown setting 'settle_secondes'")
    assert lines[2:] == [
        "[folders.scanner-chu] path: required (the folder to watch)",
        "[buckets.imagerie] after: 'tag' or 'move', not 'copy'",
        "[buckets.synlab] max_bytes: a positive whole number of bytes expected, not -1"]
    settings = settings_from(tmp_path, f"""
[folders.ok]
path = "{tmp_path / 'ok'}"
[buckets.synlab]
bucket = "synlab-resultats"
""")
    assert [f.id for f in settings.folders] == ["ok"]
    assert [b.id for b in settings.buckets] == ["synlab"]


# -- S3: a requester-pays bucket ----------------------------------------------------------------
def test_a_requester_pays_bucket_is_read_when_declared_so(sqlite_ctx, quirky) -> None:  # noqa: ANN001
    """A lab's bucket set to requester-pays refuses every request that does not say the
    requester pays (AccessDenied, as a missing permission would): there was no way to read
    it. ``requester_pays = true`` sends x-amz-request-payer on every request (signed), and
    the refusal without it says that it may be the cause."""
    store, name, client = quirky

    def requester_pays(method, path, query, headers):  # noqa: ANN001, ANN202
        sent = {k.lower(): v for k, v in headers.items()}
        if sent.get("x-amz-request-payer") != "requester":
            return 403, "AccessDenied"
        return None

    store.refuse = requester_pays
    client.put_object(Bucket=name, Key="incoming/cr-scanner-thorax.hl7", Body=_cr(7))
    plain = BucketPoller(bucket_source(name), sqlite_ctx.engine, sqlite_ctx.archive,
                         endpoint_url=store.endpoint)
    refused = plain.poll()
    assert refused.taken == 0
    assert "or the bucket is requester-pays (set requester_pays = true)" in refused.error
    paying = BucketPoller(bucket_source(name, requester_pays=True), sqlite_ctx.engine,
                          sqlite_ctx.archive, endpoint_url=store.endpoint)
    result = paying.poll()
    assert (result.error, result.taken) == (None, 1)
    store.refuse = None
    assert tags(client, name, "incoming/cr-scanner-thorax.hl7")["dmp-intake"] == "done"
    assert paying.poll().taken == 0


def test_an_object_encrypted_with_a_customer_key_is_parked_and_said_so(sqlite_ctx,  # noqa: ANN001
                                                                       quirky) -> None:
    """An object put with SSE-C can only be read with its customer's key: S3 answers 400
    InvalidRequest to a GET without it, at every poll, for ever. It is said once, with what
    it means, then left alone for an hour; the others are taken."""
    store, name, client = quirky
    client.put_object(Bucket=name, Key="incoming/chiffré-sse-c.hl7", Body=_cr(5))
    client.put_object(Bucket=name, Key="incoming/clair.hl7", Body=_cr(6))
    store.refuse = lambda method, path, query, headers: (
        (400, "InvalidRequest") if method == "GET" and "sse-c" in path and "tagging" not in query
        else None)
    now = [0.0]
    poller = BucketPoller(bucket_source(name), sqlite_ctx.engine, sqlite_ctx.archive,
                          endpoint_url=store.endpoint, clock=lambda: now[0])
    first = poller.poll()
    assert first.taken == 1
    assert "(InvalidRequest: encrypted with a customer key (SSE-C) we are not given)" in (
        first.error)
    gets = len([s for s in store.seen if "sse-c" in s[1]])
    assert poller.poll().error is None
    assert len([s for s in store.seen if "sse-c" in s[1]]) == gets


# -- S3 tag mode: partial listings after a watermark ----------------------------------------
def test_partial_listings_start_after_the_last_key_settled_and_miss_nothing(sqlite_ctx,  # noqa: ANN001
                                                                           quirky) -> None:
    """With after = "tag" every object taken stays under the prefix, and each poll listed
    them all (100,000 objects: 100 LIST requests every 10 s). With full_listing_seconds the
    polls between two whole listings start after the last key settled (StartAfter). An
    object left below it (unreadable this time) stops the watermark there, so it is listed
    again; an object put under a key sorting before the watermark waits for the next whole
    listing; nothing is taken twice."""
    from urllib.parse import parse_qs

    store, name, client = quirky
    now = [0.0]
    poller = BucketPoller(bucket_source(name, full_listing_seconds=600), sqlite_ctx.engine,
                          sqlite_ctx.archive, endpoint_url=store.endpoint, clock=lambda: now[0])

    def put(stamp: str, n: int) -> None:
        client.put_object(Bucket=name, Key=f"incoming/2026-11-27T{stamp}_cr.hl7", Body=_cr(n))

    def start_after() -> str | None:
        query = next(q for m, _, q in reversed(store.seen) if m == "GET" and "list-type" in q)
        return parse_qs(query).get("start-after", [None])[0]

    for n in range(4):
        put(f"08-0{n}", n)
    assert poller.poll().taken == 4
    assert start_after() is None  # the first listing is whole
    put("09-00", 10)
    before = _tag_reads(store)
    assert poller.poll().taken == 1
    assert start_after() == "incoming/2026-11-27T08-03_cr.hl7"
    assert _tag_reads(store) - before == 1

    put("10-00", 11)  # refused this time (AccessDenied on it alone)
    put("10-30", 12)
    store.refuse = lambda method, path, query, headers: (
        (403, "AccessDenied") if method == "GET" and "10-00" in path and "tagging" not in query
        else None)
    third = poller.poll()
    assert third.taken == 1 and "1 object(s) cannot be read" in third.error
    store.refuse = None
    assert poller.poll().taken == 1  # listed again: the watermark stopped before it
    assert start_after() == "incoming/2026-11-27T09-00_cr.hl7"

    client.put_object(Bucket=name, Key="incoming/2026-11-26T23-59_retard.hl7", Body=_cr(13))
    assert poller.poll().taken == 0  # sorts before the watermark: not listed yet
    now[0] += 601
    assert poller.poll().taken == 1  # the whole listing
    assert start_after() is None
    assert poller.poll().taken == 0
    assert start_after() == "incoming/2026-11-27T10-30_cr.hl7"
    rows = ledger(sqlite_ctx.engine)
    assert len(rows) == len({r["file_name"] for r in rows}) == 8


@given(st.lists(st.tuples(st.sampled_from(["known", "left", "taken", "not-taken"]),
                          st.booleans()), max_size=40))
@settings(max_examples=200, deadline=None)
def test_the_watermark_is_the_last_key_before_the_first_object_left(entries) -> None:  # noqa: ANN001
    """Whatever the order of objects known, taken, left or not taken, and wherever the
    groups are cut, the watermark never passes an object left."""
    from connectors.s3_bucket import _Frontier, _Object

    frontier = _Frontier("incoming/")
    taken: set[str] = set()
    expected, blocked = "incoming/", False
    for n, (kind, cut) in enumerate(entries):
        key = f"incoming/{n:03d}.hl7"
        if kind == "known":
            frontier.fine(key)
        elif kind == "left":
            frontier.left()
        else:
            frontier.looked_at(_Object(key, '"e"', 1))
            if kind == "taken":
                taken.add(key)
        if cut:
            frontier.resolve(lambda obj: obj.key in taken)
        blocked = blocked or kind in ("left", "not-taken")
        expected = expected if blocked else key
    frontier.resolve(lambda obj: obj.key in taken)
    assert frontier.mark == expected
