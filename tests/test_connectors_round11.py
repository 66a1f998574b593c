"""Connectors round 11: S3 downloads the network or the store cuts in the middle (a connection
reset by a load balancer, a proxy's idle timeout), and a store answering HTTP 500 for one
object it cannot serve. Real moto server on loopback behind a real
HTTP proxy that cuts the answer's body (tests/s3_quirks.py), boto3 unpatched, SQLite store."""

from __future__ import annotations

from connectors.s3_bucket import BucketPoller
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

NFS = (HL7 / "01_labm_nfs.hl7").read_bytes()
CUT_KEY = "incoming/CR biologie Héloïse Dupré+Müller.hl7"  # spaces, '+', accents: as sent


def _cut(store, path_end: str, times: int | None):  # noqa: ANN001, ANN202
    """The proxy cuts the body of GETs of the key ending with ``path_end`` after 40 bytes,
    ``times`` times (None: every time); counts the cuts."""
    cuts = [0]

    def cut(method: str, path: str, query: dict) -> int | None:
        if method != "GET" or "tagging" in query or not path.endswith(path_end):
            return None
        if times is not None and cuts[0] >= times:
            return None
        cuts[0] += 1
        return 40
    store.cut = cut
    return cuts


def _put_three(client, name: str) -> None:  # noqa: ANN001
    for key in ("incoming/nfs-lefevre.hl7", CUT_KEY, "incoming/nfs-garcon.hl7"):
        client.put_object(Bucket=name, Key=key, Body=NFS + key.encode() + b"\r")


def _poller(store, name: str, ctx, **kw) -> BucketPoller:  # noqa: ANN001, ANN003
    return BucketPoller(bucket_source(name), ctx.engine, ctx.archive,
                        endpoint_url=store.endpoint, retry_backoff=0.001, **kw)


def test_a_download_cut_once_is_read_again_within_the_poll(sqlite_ctx, quirky) -> None:  # noqa: ANN001
    """A load balancer resets the connection in the middle of one object's body: botocore
    retries a request only until its answer's headers, so the poll failed (IncompleteRead
    Error, a short body here), before intake, and none of the objects read with it was
    taken at that poll. Now the object is asked for again and every object is taken at
    this poll, each once, its key recorded as the sender wrote it."""
    store, name, client = quirky
    _put_three(client, name)
    cuts = _cut(store, "M%C3%BCller.hl7", times=1)
    poller = _poller(store, name, sqlite_ctx)
    result = poller.poll()
    assert cuts[0] == 1
    assert result.error is None and result.taken == 3
    rows = ledger(sqlite_ctx.engine)
    assert sorted(r["file_name"] for r in rows) == sorted(
        ["incoming/nfs-lefevre.hl7", CUT_KEY, "incoming/nfs-garcon.hl7"])
    cut_row = next(r for r in rows if r["file_name"] == CUT_KEY)
    assert sqlite_ctx.archive.get(cut_row["sha256"]) == NFS + CUT_KEY.encode() + b"\r"
    assert tags(client, name, CUT_KEY)["dmp-intake"] == "done"
    assert poller.poll().taken == 0 and len(ledger(sqlite_ctx.engine)) == 3


def test_a_download_cut_every_time_is_left_and_the_others_taken(sqlite_ctx, quirky,  # noqa: ANN001
                                                                caplog) -> None:
    """A proxy whose idle timeout always cuts one object's download (a slow store): the poll
    failed at every poll and the source took nothing, for good. Now the object is read
    body_retries + 1 times, then left in place (unrecorded, untagged), the poll says how many
    and why, the others are taken; once the store serves it, the next poll takes it."""
    store, name, client = quirky
    _put_three(client, name)
    cuts = _cut(store, "M%C3%BCller.hl7", times=None)
    poller = _poller(store, name, sqlite_ctx, body_retries=2)
    result = poller.poll()
    assert cuts[0] == 3
    assert result.taken == 2
    assert result.error == (
        "bucket source lab-s3: 1 object(s) cannot be read (ConnectionCut: its download was "
        "cut by the network or the store every time it was read (connection reset, read "
        "timeout)); left in place, tried again at the next poll")
    assert sorted(r["file_name"] for r in ledger(sqlite_ctx.engine)) == [
        "incoming/nfs-garcon.hl7", "incoming/nfs-lefevre.hl7"]
    assert tags(client, name, CUT_KEY) == {}
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("dmp"))
    assert "its download was cut 3 times (" in ours
    assert "Héloïse" not in ours and "Müller" not in ours  # keys logged by digest only
    store.cut = None  # the store serves it again
    second = poller.poll()
    assert second.error is None and second.taken == 1
    assert len(ledger(sqlite_ctx.engine)) == 3
    assert tags(client, name, CUT_KEY)["dmp-intake"] == "done"


def test_an_object_the_store_answers_500_for_is_left_and_the_others_taken(sqlite_ctx,  # noqa: ANN001
                                                                          quirky) -> None:
    """A MinIO or Ceph RGW whose copies of one object are damaged or out of reach answers
    HTTP 500 InternalError for that object alone, at every read: once botocore's retries
    were spent the whole poll failed, at every poll, and the source took nothing more. Now
    the object is left in place (unrecorded, untagged), the poll says how many and why, and
    the others are taken. botocore's attempts per request are a poller setting (one here:
    no backoff waited); a store throttling us (503 SlowDown) still ends the poll."""
    store, name, client = quirky
    _put_three(client, name)
    store.refuse = lambda method, path, query, headers: (
        (500, "InternalError") if method == "GET" and path.endswith("M%C3%BCller.hl7")
        and "tagging" not in query else None)
    poller = _poller(store, name, sqlite_ctx, request_attempts=1)
    result = poller.poll()
    assert result.taken == 2
    assert result.error == (
        "bucket source lab-s3: 1 object(s) cannot be read (InternalError: the store answered "
        "a server error for it (HTTP 500) after retries: a damaged or unreachable copy on the "
        "store's side); left in place, tried again at the next poll")
    assert sum(1 for method, path, query in store.seen if method == "GET"
               and path.endswith("M%C3%BCller.hl7") and "tagging" not in query) == 1
    assert sorted(r["file_name"] for r in ledger(sqlite_ctx.engine)) == [
        "incoming/nfs-garcon.hl7", "incoming/nfs-lefevre.hl7"]
    assert tags(client, name, CUT_KEY) == {}
    store.refuse = lambda method, path, query, headers: (
        (503, "SlowDown") if method == "GET" and "tagging" not in query
        and "list-type" not in query else None)
    client.put_object(Bucket=name, Key="incoming/nfs-noel.hl7", Body=NFS + b"NTE|1||x\r")
    throttled = poller.poll()
    assert throttled.taken == 0 and "(SlowDown)" in (throttled.error or "")
    store.refuse = None  # repaired, no longer throttled
    assert poller.poll().taken == 2 and len(ledger(sqlite_ctx.engine)) == 4
