"""The S3 bucket poller (connectors/s3_bucket.py) through boto3 against moto's S3 server on
loopback (no mock of boto3): taken once, tagged or moved after intake, odd keys, outages,
pagination; bucket settings."""

from __future__ import annotations

import csv
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import select

from connectors.s3_bucket import BucketPoller
from dossiers.schema import imports
from pipelines.dossier_admin import DossierInput, create_dossiers
from pipelines.settings import BucketSource, SettingsError
from tests.conftest import SAMPLES, corpus_path, start_moto
from tests.test_folder_connector import FlakyArchive, settings_from

HL7 = SAMPLES / "hl7v2"


@pytest.fixture(scope="module")
def s3_server():  # noqa: ANN201
    server, port = start_moto()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def aws_env(monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-3")
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)


_buckets = iter(range(1, 10_000))


@pytest.fixture
def bucket(s3_server, aws_env):  # noqa: ANN001, ANN201
    """A fresh bucket on the moto server: (endpoint, name, client)."""
    import boto3

    client = boto3.client("s3", endpoint_url=s3_server)
    name = f"dmp-drop-{os.getpid()}-{next(_buckets)}"
    client.create_bucket(Bucket=name,
                         CreateBucketConfiguration={"LocationConstraint": "eu-west-3"})
    return s3_server, name, client


def bucket_source(name: str, **kw) -> BucketSource:  # noqa: ANN003
    kw.setdefault("prefix", "incoming/")
    return BucketSource(id="lab-s3", bucket=name, **kw)


def ledger(engine) -> list[dict]:  # noqa: ANN001
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(imports).order_by(imports.c.id))]


def tags(client, name: str, key: str) -> dict[str, str]:  # noqa: ANN001
    return {t["Key"]: t["Value"] for t in
            client.get_object_tagging(Bucket=name, Key=key)["TagSet"]}


def keys(client, name: str, prefix: str = "") -> list[str]:  # noqa: ANN001
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=name, Prefix=prefix)
    return sorted(o["Key"] for page in pages for o in page.get("Contents", []))


def test_objects_under_the_prefix_are_taken_once_and_tagged(ctx, bucket) -> None:  # noqa: ANN001
    endpoint, name, client = bucket
    nfs = (HL7 / "01_labm_nfs.hl7").read_bytes()
    batch = (HL7 / "15_chu_batch.hl7").read_bytes()
    cda = sorted(corpus_path("cda").glob("*.xml"))[0].read_bytes()
    client.put_object(Bucket=name, Key="incoming/01_labm_nfs.hl7", Body=nfs)
    client.put_object(Bucket=name, Key="incoming/2026/04/batch.hl7", Body=batch,
                      Tagging="team=biologie")
    client.put_object(Bucket=name, Key="incoming/cr.xml", Body=cda)
    client.put_object(Bucket=name, Key="incoming/done-before.hl7", Body=b"MSH|^~\\&|OLD\r",
                      Tagging="dmp-intake=done")
    client.put_object(Bucket=name, Key="incoming/folder/", Body=b"")  # a console's "folder"
    client.put_object(Bucket=name, Key="elsewhere/x.hl7", Body=nfs)

    woken = []
    poller = BucketPoller(bucket_source(name), ctx.engine, ctx.archive, endpoint_url=endpoint,
                          on_intake=lambda: woken.append(1))
    result = poller.poll()
    assert result.error is None and (result.taken, result.refused) == (3, 0) and woken
    rows = ledger(ctx.engine)
    files = {r["file_name"]: r for r in rows if r["batch_of"] is None}
    assert set(files) == {"incoming/01_labm_nfs.hl7", "incoming/2026/04/batch.hl7",
                          "incoming/cr.xml"}
    assert {(r["channel"], r["source"]) for r in rows} == {("s3", "lab-s3")}
    assert files["incoming/cr.xml"]["peer"] == f"s3://{name}/incoming/cr.xml"
    assert ctx.archive.get(files["incoming/01_labm_nfs.hl7"]["sha256"]) == nfs
    assert ctx.archive.get(files["incoming/cr.xml"]["sha256"]) == cda
    assert sorted(result.message_ids) == sorted(r["id"] for r in rows if r["status"] != "split")

    assert tags(client, name, "incoming/01_labm_nfs.hl7") == {
        "dmp-intake": "done",
        "dmp-intake-import": str(files["incoming/01_labm_nfs.hl7"]["id"])}
    assert tags(client, name, "incoming/2026/04/batch.hl7")["team"] == "biologie"  # kept
    assert tags(client, name, "elsewhere/x.hl7") == {}
    assert keys(client, name) == sorted([  # nothing moved, nothing deleted
        "incoming/01_labm_nfs.hl7", "incoming/2026/04/batch.hl7", "incoming/cr.xml",
        "incoming/done-before.hl7", "incoming/folder/", "elsewhere/x.hl7"])

    assert poller.poll().taken == 0  # remembered
    fresh = BucketPoller(bucket_source(name), ctx.engine, ctx.archive, endpoint_url=endpoint)
    assert fresh.poll().taken == 0  # another process: reads the tags
    assert len(ledger(ctx.engine)) == len(rows)

    client.put_object(Bucket=name, Key="incoming/01_labm_nfs.hl7", Body=nfs + b"NTE|1||x\r")
    again = poller.poll()  # same key, new object (no tags): taken
    assert again.taken == 1
    assert ledger(ctx.engine)[-1]["file_name"] == "incoming/01_labm_nfs.hl7"


def test_after_move_copies_under_processed_then_deletes(sqlite_ctx, bucket) -> None:  # noqa: ANN001
    endpoint, name, client = bucket
    data = {f"incoming/{n}": (HL7 / n).read_bytes()
            for n in ("02_labm_lipides_glycemie.hl7", "05_chu_hba1c.hl7")}
    for key, body in data.items():
        client.put_object(Bucket=name, Key=key, Body=body)
    client.put_object(Bucket=name, Key="incoming/big.pdf", Body=b"%PDF-1.4\n" + b"0" * 30000)
    source = bucket_source(name, prefix="", after="move", max_bytes=20000)
    poller = BucketPoller(source, sqlite_ctx.engine, sqlite_ctx.archive, endpoint_url=endpoint)
    result = poller.poll()
    assert (result.taken, result.refused) == (3, 1)
    assert keys(client, name) == sorted(
        ["processed/" + k for k in data] + ["refused/incoming/big.pdf"])
    for key, body in data.items():
        moved = client.get_object(Bucket=name, Key="processed/" + key)["Body"].read()
        assert moved == body
        assert tags(client, name, "processed/" + key)["dmp-intake"] == "done"
    assert tags(client, name, "refused/incoming/big.pdf")["dmp-intake"] == "refused"
    rows = {r["file_name"]: r for r in ledger(sqlite_ctx.engine)}
    assert rows["incoming/big.pdf"]["error_code"] == "S3_OBJECT_TOO_LARGE"
    assert rows["incoming/big.pdf"]["status"] == "failed"
    assert poller.poll().taken == 0  # processed/ and refused/ are never taken
    assert BucketPoller(source, sqlite_ctx.engine, sqlite_ctx.archive,
                        endpoint_url=endpoint).poll().taken == 0


def test_too_large_objects_are_tagged_refused_and_recorded(sqlite_ctx, bucket, caplog) -> None:  # noqa: ANN001
    endpoint, name, client = bucket
    big = b"MSH|^~\\&|BIG|" + b"x" * 100_000 + b"\r"
    client.put_object(Bucket=name, Key="incoming/big.hl7", Body=big)
    poller = BucketPoller(bucket_source(name, max_bytes=10_000), sqlite_ctx.engine,
                          sqlite_ctx.archive, endpoint_url=endpoint)
    with caplog.at_level("WARNING", logger="dmp.s3_bucket"):
        result = poller.poll()
    assert (result.taken, result.refused) == (1, 1)
    row = ledger(sqlite_ctx.engine)[0]
    assert (row["status"], row["stage"], row["error_code"]) == (
        "failed", "intake", "S3_OBJECT_TOO_LARGE")
    assert "100014 bytes" in row["error_message"]
    assert sqlite_ctx.archive.get(row["sha256"]) == big[:65536]  # only the head was read
    assert tags(client, name, "incoming/big.hl7") == {"dmp-intake": "refused",
                                                      "dmp-intake-import": str(row["id"])}
    # logs name the object by a digest of its key: keys are file names, which can hold
    # patient names (the ledger keeps the key itself)
    ours = " ".join(r.getMessage() for r in caplog.records if r.name == "dmp.s3_bucket")
    assert "of 100014 bytes refused" in ours and "key#" in ours
    assert "big.hl7" not in ours
    assert "xxxx" not in caplog.text
    assert BucketPoller(bucket_source(name, max_bytes=10_000), sqlite_ctx.engine,
                        sqlite_ctx.archive, endpoint_url=endpoint).poll().taken == 0


ODD_KEYS = ["incoming/../../etc/passwd", "incoming/./x.hl7", "incoming//double.hl7",
            "incoming/%2e%2e/enc.hl7", "incoming/tab\there é.hl7", "incoming/ctrl\x01\x1b[31m",
            "incoming/曲 Hélène.hl7", "incoming/" + "k" * 600]


def test_odd_keys_are_recorded_as_given_and_never_touch_the_disk(sqlite_ctx, bucket,  # noqa: ANN001
                                                                 tmp_path) -> None:
    endpoint, name, client = bucket
    for i, key in enumerate(ODD_KEYS + ["/abs.hl7"]):
        client.put_object(Bucket=name, Key=key, Body=f"MSH|^~\\&|K|{i}\r".encode())
    before = sorted(p for p in tmp_path.rglob("*") if "archive" not in p.parts)
    cwd_before = sorted(os.listdir("."))
    poller = BucketPoller(bucket_source(name, prefix=""), sqlite_ctx.engine,
                          sqlite_ctx.archive, endpoint_url=endpoint)
    result = poller.poll()
    assert result.error is None and result.taken == len(ODD_KEYS) + 1
    rows = ledger(sqlite_ctx.engine)
    recorded = {r["file_name"] for r in rows}
    long_key = "incoming/" + "k" * 600
    assert recorded == (set(ODD_KEYS) - {long_key}) | {"/abs.hl7", long_key[:499] + "…"}
    peers = {r["peer"] for r in rows}
    assert f"s3://{name}/incoming/../../etc/passwd" in peers
    assert all(len(p) <= 200 for p in peers)
    for key in ODD_KEYS + ["/abs.hl7"]:
        assert tags(client, name, key)["dmp-intake"] == "done"
    after = sorted(p for p in tmp_path.rglob("*") if "archive" not in p.parts)
    assert after == before and sorted(os.listdir(".")) == cwd_before
    assert not Path("/etc/passwd").read_bytes().startswith(b"MSH")


def test_endpoint_down_is_a_clear_error_and_nothing_is_lost(sqlite_ctx, aws_env) -> None:  # noqa: ANN001
    """The endpoint stops answering: the poll says so in one line; when it is back, the
    object (not tagged meanwhile) is taken."""
    import boto3

    server, port = start_moto()
    endpoint = f"http://127.0.0.1:{port}"
    client = boto3.client("s3", endpoint_url=endpoint)
    name = f"dmp-down-{os.getpid()}"
    client.create_bucket(Bucket=name,
                         CreateBucketConfiguration={"LocationConstraint": "eu-west-3"})
    data = (HL7 / "06_bioazur_iono_vitd.hl7").read_bytes()
    client.put_object(Bucket=name, Key="incoming/vitd.hl7", Body=data)
    server.stop()
    try:
        poller = BucketPoller(bucket_source(name, endpoint_url=endpoint), sqlite_ctx.engine,
                              sqlite_ctx.archive)
        result = poller.poll()
        assert result.taken == 0
        assert result.error == (f"bucket source lab-s3: cannot reach the S3 endpoint "
                                f"{endpoint} (EndpointConnectionError)")
        assert ledger(sqlite_ctx.engine) == []
    finally:
        server, _ = start_moto(port)  # moto keeps its state in the process: the same bucket
    try:
        assert tags(client, name, "incoming/vitd.hl7") == {}
        result = poller.poll()
        assert result.error is None and result.taken == 1
        assert tags(client, name, "incoming/vitd.hl7")["dmp-intake"] == "done"
        assert [r["file_name"] for r in ledger(sqlite_ctx.engine)] == ["incoming/vitd.hl7"]
    finally:
        server.stop()


def test_unknown_bucket_is_a_clear_error(sqlite_ctx, bucket) -> None:  # noqa: ANN001
    endpoint, name, _ = bucket
    result = BucketPoller(bucket_source(name + "-nope"), sqlite_ctx.engine, sqlite_ctx.archive,
                          endpoint_url=endpoint).poll()
    assert result.error == (f"bucket source lab-s3: S3 refused ListObjectsV2 on "
                            f"s3://{name}-nope/incoming/ (NoSuchBucket)")


def test_archive_down_leaves_objects_unmarked_and_retries(sqlite_ctx, bucket,  # noqa: ANN001
                                                          tmp_path) -> None:
    endpoint, name, client = bucket
    client.put_object(Bucket=name, Key="incoming/a.hl7", Body=b"MSH|^~\\&|A\r")
    archive = FlakyArchive(tmp_path / "flaky")
    poller = BucketPoller(bucket_source(name), sqlite_ctx.engine, archive,
                          endpoint_url=endpoint)
    archive.down = True
    result = poller.poll()
    assert result.taken == 0 and result.pending == 1 and "archive unavailable" in result.error
    assert tags(client, name, "incoming/a.hl7") == {} and ledger(sqlite_ctx.engine) == []
    archive.down = False
    assert poller.poll().taken == 1
    assert tags(client, name, "incoming/a.hl7")["dmp-intake"] == "done"


def test_pagination_over_several_listing_pages(sqlite_ctx, bucket) -> None:  # noqa: ANN001
    """S3 lists at most 1,000 keys a page; pages of 50 here cross the same continuation
    tokens with 130 objects instead of 1,050 (29 s through moto on a slow machine)."""
    endpoint, name, client = bucket
    n = 130

    def put(i: int) -> None:
        client.put_object(Bucket=name, Key=f"incoming/{i:05d}.hl7",
                          Body=f"MSH|^~\\&|LAB|FAC|||20260101||ORU^R01|P{i}|P|2.5\r".encode())

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(put, range(n)))
    poller = BucketPoller(bucket_source(name), sqlite_ctx.engine, sqlite_ctx.archive,
                          endpoint_url=endpoint, list_page_size=50)
    listed = poller.client.list_objects_v2(Bucket=name, Prefix="incoming/", MaxKeys=50)
    assert listed["IsTruncated"]  # the server does page at 50
    result = poller.poll()
    assert result.error is None and result.taken == n
    rows = ledger(sqlite_ctx.engine)
    assert sorted(r["file_name"] for r in rows) == [f"incoming/{i:05d}.hl7" for i in range(n)]
    assert all(r["status"] == "received" for r in rows)
    assert poller.poll().taken == 0
    assert tags(client, name, f"incoming/{n - 1:05d}.hl7")["dmp-intake"] == "done"
    assert len(ledger(sqlite_ctx.engine)) == n


# -- settings -------------------------------------------------------------------------------
def test_bucket_settings(tmp_path) -> None:  # noqa: ANN001
    settings = settings_from(tmp_path, """
s3_endpoint_url = "http://minio:9000"
[buckets.labs]
bucket = "dmp-drop"
prefix = "labs/"
after = "move"
processed_prefix = "done/"
max_bytes = 5000000
poll_interval = 15
[buckets.scans]
bucket = "scans"
endpoint_url = "https://s3.example.org"
""")
    labs, scans = settings.buckets
    assert labs == BucketSource(id="labs", bucket="dmp-drop", prefix="labs/", after="move",
                                processed_prefix="done/", max_bytes=5000000,
                                poll_interval=15.0)
    assert (scans.after, scans.prefix, scans.endpoint_url) == (
        "tag", "", "https://s3.example.org")
    assert settings.s3_endpoint_url == "http://minio:9000"


@pytest.mark.parametrize("toml, message", [
    ('[buckets.a]\nprefix = "x/"', r"\[buckets.a\] bucket: required"),
    ('[buckets.a]\nbucket = "a/b"', r"bucket: required, a bucket name"),
    ('[buckets.a]\nbucket = "b"\nafter = "delete"', r"after: 'tag' or 'move', not 'delete'"),
    ('[buckets.a]\nbucket = "b"\nafter = "move"\nprocessed_prefix = ""',
     r"processed_prefix: required with after = 'move'"),
    ('[buckets.a]\nbucket = "b"\nafter = "move"\nrefused_prefix = "processed/"',
     r"must differ"),
    ('[buckets.a]\nbucket = "b"\nendpoint_url = "minio:9000"', r"an http\(s\):// URL"),
    ('[buckets.a]\nbucket = "b"\nmax_bytes = -5', r"max_bytes: a positive whole number"),
    ('[buckets.a]\nbucket = "b"\nprefx = "x"', r"unknown setting 'prefx'"),
    ('[buckets.a]\nbucket = "b"\nprefix = 3', r"prefix: text expected"),
    ('[buckets.a]\nbucket = "b"\nprefix = "lab"\nprefix_is_folder = false\n'
     '[buckets.c]\nbucket = "b"\nprefix = "lab2/"',
     r"\[buckets.a\] prefix 'lab' overlaps \[buckets.c\] prefix 'lab2/' on bucket 'b'"),
    ('[buckets.a]\nbucket = "b"\n[buckets.c]\nbucket = "b"\nprefix = "labB/"',
     r"\[buckets.a\] prefix '' overlaps \[buckets.c\] prefix 'labB/'"),
    ('[buckets.a]\nbucket = "b"\nprefix = "labA/"\nafter = "move"\n'
     '[buckets.c]\nbucket = "b"\nprefix = "processed/"',
     r"\[buckets.c\] prefix 'processed/' overlaps \[buckets.a\] processed_prefix"),
    ('[buckets.a]\nbucket = "b"\nprefix = "processed/x/"\nafter = "move"',
     r"inside its own processed_prefix 'processed/'"),
])
def test_bad_bucket_settings_are_one_line_errors(tmp_path, toml, message) -> None:  # noqa: ANN001
    with pytest.raises(SettingsError, match=message) as info:
        settings_from(tmp_path, toml)
    assert "\n" not in str(info.value)


# -- Prefect flows ------------------------------------------------------------------------------
# Through the session's one Prefect harness (tests/conftest.py): it starts on the Prefect
# database migrated since collection, and under pytest-xdist this test joins the harness's
# group on its worker. With a harness of its own it paid a second server's start and its
# migrations (32 s of setup in the CI, the other worker busy).
@pytest.mark.usefixtures("prefect_harness")
def test_poll_folders_and_poll_buckets_flows(tmp_path, monkeypatch, bucket) -> None:  # noqa: ANN001
    """One poll of every declared source, then processing of what came in, through Prefect;
    an unreachable source fails the run after the rest was processed."""
    import flows

    endpoint, bucket, client = bucket
    home = tmp_path / "home"
    home.mkdir()
    drop = tmp_path / "drop"
    drop.mkdir()
    (home / "dmp.toml").write_text(f"""
[folders.labm]
path = "{drop}"
settle_seconds = 0
[folders.gone]
path = "{tmp_path / 'absent'}"
[buckets.synlab]
bucket = "{bucket}"
prefix = "in/"
endpoint_url = "{endpoint}"
""", encoding="utf-8")
    monkeypatch.setenv("DMP_HOME", str(home))
    for name in ("DMP_DATABASE_URL", "DMP_ARCHIVE_URL", "DMP_CONFIG", "DMP_S3_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    flows._context.cache_clear()
    try:
        ctx = flows._context("poll")
        with (SAMPLES / "patients.csv").open(encoding="utf-8", newline="") as fh:
            create_dossiers(ctx.engine,
                            [DossierInput.from_mapping(r) for r in csv.DictReader(fh)])
        (drop / "nfs.hl7").write_bytes((HL7 / "01_labm_nfs.hl7").read_bytes())
        client.put_object(Bucket=bucket, Key="in/iono.hl7",
                          Body=(HL7 / "03_synlab_iono_creatinine.hl7").read_bytes())

        summary = flows.poll_folders(sources=["labm"])
        assert summary["sources"] == {"labm": {"taken": 1, "refused": 0, "pending": 0,
                                               "error": None}}
        summary = flows.poll_buckets()
        assert summary["sources"]["synlab"]["taken"] == 1
        assert [(r["channel"], r["status"]) for r in ledger(ctx.engine)] == [
            ("folder", "deposited"), ("s3", "deposited")]
        with pytest.raises(flows.PollFailed, match="folder source gone: folder unusable"):
            flows.poll_folders()
    finally:
        flows._context.cache_clear()



def _replace_during_intake(monkeypatch, client, name: str, key: str, body: bytes) -> None:  # noqa: ANN001
    """The sender puts a new object under ``key`` just after intake recorded the old one,
    before the poller marks it: the moment a mark could hit the wrong object."""
    import connectors.s3_bucket as s3_bucket

    real = s3_bucket.intake

    def intake_then_replace(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        results = real(*args, **kwargs)
        client.put_object(Bucket=name, Key=key, Body=body)
        return results

    monkeypatch.setattr(s3_bucket, "intake", intake_then_replace)


@pytest.mark.parametrize("after", ["tag", "move"])
def test_an_object_replaced_before_its_mark_is_taken_at_the_next_poll(
        sqlite_ctx, bucket, monkeypatch, caplog, after) -> None:  # noqa: ANN001
    """Tagging an unversioned key, or deleting it after the copy, acts on whatever object the
    key holds now: a result file re-exported under the same name between the read and the
    mark was marked done (or deleted) unread. Now the mark is conditional on the ETag read."""
    endpoint, name, client = bucket
    first = (HL7 / "02_labm_lipides_glycemie.hl7").read_bytes()
    second = (HL7 / "05_chu_hba1c.hl7").read_bytes()
    client.put_object(Bucket=name, Key="incoming/resultats.hl7", Body=first)
    source = bucket_source(name, after=after)
    poller = BucketPoller(source, sqlite_ctx.engine, sqlite_ctx.archive, endpoint_url=endpoint)
    with monkeypatch.context() as patched:
        _replace_during_intake(patched, client, name, "incoming/resultats.hl7", second)
        assert poller.poll().taken == 1
    left = client.get_object(Bucket=name, Key="incoming/resultats.hl7")["Body"].read()
    assert left == second  # neither deleted nor marked done
    assert "dmp-intake" not in tags(client, name, "incoming/resultats.hl7")
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("dmp"))
    assert "was replaced after it was read" in ours
    assert "resultats" not in ours  # logs name keys by digest only

    assert poller.poll().taken == 1  # the new object, at the next poll
    rows = ledger(sqlite_ctx.engine)
    assert len(rows) == 2 and rows[0]["sha256"] != rows[1]["sha256"]
    if after == "move":
        assert keys(client, name) == ["processed/incoming/resultats.hl7"]
        moved = client.get_object(Bucket=name, Key="processed/incoming/resultats.hl7")
        assert moved["Body"].read() == second
    else:
        assert tags(client, name, "incoming/resultats.hl7")["dmp-intake"] == "done"
    assert poller.poll().taken == 0


@pytest.fixture
def own_server(aws_env):  # noqa: ANN001, ANN201
    """A moto server of this test's own, to stop and start again: (endpoint, name, client,
    stop, start). moto keeps its state in the process: the bucket survives a restart."""
    import boto3

    first, port = start_moto()
    servers = [first]

    def stop() -> None:
        servers[-1].stop()

    def start() -> None:
        servers.append(start_moto(port)[0])

    endpoint = f"http://127.0.0.1:{port}"
    client = boto3.client("s3", endpoint_url=endpoint)
    name = f"dmp-own-{os.getpid()}-{next(_buckets)}"
    client.create_bucket(Bucket=name,
                         CreateBucketConfiguration={"LocationConstraint": "eu-west-3"})
    try:
        yield endpoint, name, client, stop, start
    finally:
        servers[-1].stop()


@pytest.mark.parametrize(("after", "operation"), [("move", "DeleteObject"),
                                                  ("tag", "PutObjectTagging")])
def test_a_mark_that_fails_is_done_at_the_next_poll_without_a_second_intake(
        sqlite_ctx, own_server, after, operation) -> None:  # noqa: ANN001
    """The endpoint goes away after intake, before the mark (with move: copied under
    processed/ but not deleted). The poll says so; once the endpoint is back the same poller
    finishes the mark (deletes the original, or tags it) without recording it again. Before,
    the poller remembered it as done: it stayed under the prefix until a restart took it in
    again as a repeat."""
    endpoint, name, client, stop, start = own_server
    data = (HL7 / "05_chu_hba1c.hl7").read_bytes()
    client.put_object(Bucket=name, Key="incoming/hba1c.hl7", Body=data)
    poller = BucketPoller(bucket_source(name, after=after), sqlite_ctx.engine,
                          sqlite_ctx.archive, endpoint_url=endpoint)
    stopped = []

    def endpoint_goes_away(**_) -> None:  # noqa: ANN003
        if not stopped:
            stopped.append(True)
            stop()

    poller.client.meta.events.register(f"before-call.s3.{operation}", endpoint_goes_away)
    result = poller.poll()
    assert stopped and result.taken == 1
    how = "moved" if after == "move" else "tagged"
    assert result.error == (f"bucket source lab-s3: 1 object(s) recorded but not {how}; "
                            f"done at the next poll")
    start()
    if after == "move":  # half-way: copied, not deleted
        assert keys(client, name) == ["incoming/hba1c.hl7", "processed/incoming/hba1c.hl7"]
    else:
        assert tags(client, name, "incoming/hba1c.hl7") == {}
    result = poller.poll()
    assert result.error is None and result.taken == 0
    if after == "move":
        assert keys(client, name) == ["processed/incoming/hba1c.hl7"]
        marked = "processed/incoming/hba1c.hl7"
    else:
        marked = "incoming/hba1c.hl7"
    rows = ledger(sqlite_ctx.engine)
    assert [(r["file_name"], r["status"]) for r in rows] == [("incoming/hba1c.hl7",
                                                              "received")]
    assert tags(client, name, marked) == {"dmp-intake": "done",
                                          "dmp-intake-import": str(rows[0]["id"])}
    assert poller.poll().taken == 0 and len(ledger(sqlite_ctx.engine)) == 1


def test_empty_objects_are_refused_and_the_same_bytes_twice_are_a_repeat(sqlite_ctx,  # noqa: ANN001
                                                                         bucket) -> None:
    """Zero-byte objects are refused (S3_EMPTY_OBJECT, tagged refused), not processed; a
    zero-byte key ending in '/' is a console's folder marker, left alone. The same content
    under two keys is recorded twice, the second a duplicate of the first (dedupe level 1)."""
    endpoint, name, client = bucket
    data = (HL7 / "05_chu_hba1c.hl7").read_bytes()
    for key, body in (("incoming/a.hl7", data), ("incoming/copie de a.hl7", data),
                      ("incoming/vide.hl7", b""), ("incoming/vide2.hl7", b""),
                      ("incoming/sub/", b"")):
        client.put_object(Bucket=name, Key=key, Body=body)
    poller = BucketPoller(bucket_source(name), sqlite_ctx.engine, sqlite_ctx.archive,
                          endpoint_url=endpoint)
    result = poller.poll()
    assert (result.taken, result.refused, result.error) == (4, 2, None)
    rows = {r["file_name"]: r for r in ledger(sqlite_ctx.engine)}
    assert {k: (r["status"], r["error_code"]) for k, r in rows.items()} == {
        "incoming/a.hl7": ("received", None),
        "incoming/copie de a.hl7": ("duplicate", None),
        "incoming/vide.hl7": ("failed", "S3_EMPTY_OBJECT"),
        "incoming/vide2.hl7": ("failed", "S3_EMPTY_OBJECT")}
    assert rows["incoming/copie de a.hl7"]["duplicate_of"] == rows["incoming/a.hl7"]["id"]
    assert tags(client, name, "incoming/vide.hl7")["dmp-intake"] == "refused"
    assert tags(client, name, "incoming/copie de a.hl7")["dmp-intake"] == "done"
    assert tags(client, name, "incoming/sub/") == {}


def test_wrong_credentials_are_a_clear_error(sqlite_ctx, bucket, monkeypatch) -> None:  # noqa: ANN001
    """moto checks signatures once its 'no auth' allowance is used up: an unknown access key
    is refused, and the poll says it is the credentials, in one line; nothing is taken."""
    import moto.settings

    endpoint, name, client = bucket
    client.put_object(Bucket=name, Key="incoming/a.hl7", Body=b"MSH|^~\\&|A\r")
    monkeypatch.setattr(moto.settings, "INITIAL_NO_AUTH_ACTION_COUNT", 0)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAWRONGWRONGWRONG0")
    result = BucketPoller(bucket_source(name), sqlite_ctx.engine, sqlite_ctx.archive,
                          endpoint_url=endpoint).poll()
    assert result.error == (f"bucket source lab-s3: S3 refused ListObjectsV2 on "
                            f"s3://{name}/incoming/ (InvalidAccessKeyId: the S3 credentials "
                            f"are wrong or expired (access key, secret, session token))")
    assert result.taken == 0 and ledger(sqlite_ctx.engine) == []


@pytest.mark.parametrize("versioned", [False, True])
def test_objects_deleted_or_replaced_between_list_and_get(sqlite_ctx, bucket,  # noqa: ANN001
                                                          versioned) -> None:
    """Between our listing and our read, a sender deletes one object and puts a new one under
    another key: the deleted one is not recorded (nothing to read), the replaced one is not
    read as the old ETag (If-Match) and is taken, new bytes, at the next poll; the rest of the
    poll goes on. With versioning on, the move copies the very version read, and the version
    listed before the put is read by its VersionId and taken too (round 8)."""
    endpoint, name, client = bucket
    if versioned:
        client.put_bucket_versioning(Bucket=name,
                                     VersioningConfiguration={"Status": "Enabled"})
    for key in ("gone.hl7", "replaced.hl7", "stays.hl7"):
        client.put_object(Bucket=name, Key=f"incoming/{key}", Body=f"MSH|^~\\&|{key}\r".encode())
    poller = BucketPoller(bucket_source(name, after="move"), sqlite_ctx.engine,
                          sqlite_ctx.archive, endpoint_url=endpoint)

    def sender_acts(params, **_) -> None:  # noqa: ANN001, ANN003
        if params["Key"] == "incoming/gone.hl7":
            client.delete_object(Bucket=name, Key=params["Key"])
        elif params["Key"] == "incoming/replaced.hl7" and not params.get("VersionId"):
            client.put_object(Bucket=name, Key=params["Key"], Body=b"MSH|^~\\&|NEW\r")

    poller.client.meta.events.register("before-parameter-build.s3.GetObjectTagging",
                                       sender_acts)
    result = poller.poll()
    assert (result.taken, result.error) == (1 + versioned, None)
    poller.client.meta.events.unregister("before-parameter-build.s3.GetObjectTagging",
                                         sender_acts)
    assert poller.poll().taken == 1
    assert keys(client, name) == ["processed/incoming/replaced.hl7",
                                  "processed/incoming/stays.hl7"]
    body = client.get_object(Bucket=name, Key="processed/incoming/replaced.hl7")["Body"]
    assert body.read() == b"MSH|^~\\&|NEW\r"
    rows = ledger(sqlite_ctx.engine)
    listed_version = [("incoming/replaced.hl7", 22)] if versioned else []
    assert [(r["file_name"], r["size"]) for r in rows] == [
        *listed_version, ("incoming/stays.hl7", 19), ("incoming/replaced.hl7", 13)]
