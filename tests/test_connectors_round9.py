"""Connectors round 9: drop folders, S3 buckets and MLLP senders from deployments we have not
seen. A lab overwriting one key twice between two polls of a versioned bucket, a prefix
written without its '/', an SFTP upload made with umask 077, a sender writing its MSH in
latin-1 under a declared UTF-8 or with tabs, plain MLLP sent to the TLS port. Real moto
server on loopback, real folders, real sockets."""

from __future__ import annotations

import logging

import pytest

from connectors.s3_bucket import BucketPoller
from tests.test_connectors_round6 import V1, V2
from tests.test_folder_connector import settings_from
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


# -- S3: a key overwritten twice between two polls of a versioned bucket --------------------
@pytest.mark.parametrize("after", ["tag", "move"])
def test_every_version_put_between_two_polls_is_taken_in_order(  # noqa: ANN001
        sqlite_ctx, bucket, after) -> None:  # noqa: F811
    """A laboratory exports every result file under one name ('resultats.hl7') into a
    versioned bucket, sometimes twice between two of our polls. The listing of objects shows
    the newest only: the middle export, kept by the bucket as a noncurrent version, was
    never taken. Now every version not taken yet is listed (ListObjectVersions), read by its
    VersionId and taken oldest first; a version the sender deleted stays withdrawn."""
    _, name, client = bucket
    client.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    key = "incoming/resultats.hl7"
    client.put_object(Bucket=name, Key=key, Body=V1)
    withdrawn = "incoming/retire.hl7"
    client.put_object(Bucket=name, Key=withdrawn, Body=V1 + b"NTE|1||erreur\r")
    client.delete_object(Bucket=name, Key=withdrawn)
    poller = BucketPoller(bucket_source(name, after=after), sqlite_ctx.engine,
                          sqlite_ctx.archive, client=client)
    first = poller.poll()
    assert (first.taken, first.error) == (1, None)
    client.put_object(Bucket=name, Key=key, Body=V2)
    client.put_object(Bucket=name, Key=key, Body=V3)
    second = poller.poll()
    assert (second.taken, second.error) == (2, None)
    assert poller.poll().taken == 0
    fresh = BucketPoller(bucket_source(name, after=after), sqlite_ctx.engine,
                         sqlite_ctx.archive, client=client)  # no memory: tags, markers
    assert fresh.poll().taken == 0
    rows = ledger(sqlite_ctx.engine)
    assert [(r["file_name"], sqlite_ctx.archive.get(r["sha256"])) for r in rows] == [
        (key, V1), (key, V2), (key, V3)]
    if after == "move":
        assert keys(client, name) == ["processed/" + key]
    else:
        listed = client.list_object_versions(Bucket=name, Prefix=key)["Versions"]
        assert sorted(client.get_object_tagging(
            Bucket=name, Key=key, VersionId=v["VersionId"])["TagSet"][0]["Value"]
            for v in listed) == ["done"] * 3


# -- S3: a prefix written without its '/' ---------------------------------------------------
def test_a_prefix_without_its_slash_is_a_folder_unless_told_otherwise(  # noqa: ANN001
        sqlite_ctx, bucket, tmp_path, caplog) -> None:  # noqa: F811
    """An operator configured prefix = "incoming" (as the folder is named in the console).
    Keys are strings, so 'incoming-old/' (last year's files, already filed) and
    'incoming2.hl7' were taken too. Now a prefix is a folder ('incoming/'), said at start-up;
    prefix_is_folder = false keeps the string prefix for a deployment that wants it."""
    _, name, client = bucket
    client.put_object(Bucket=name, Key="incoming/crp-dupont.hl7", Body=V1)
    client.put_object(Bucket=name, Key="incoming-old/crp-lefevre.hl7", Body=V2)
    client.put_object(Bucket=name, Key="incoming2.hl7", Body=V3)
    settings = settings_from(tmp_path, f"""
[buckets.labo]
bucket = "{name}"
prefix = "incoming"
[buckets.ancien]
bucket = "{name}"
prefix = "incoming-old"
prefix_is_folder = false
""")
    labo, ancien = settings.buckets
    assert (labo.key_prefix, ancien.key_prefix) == ("incoming/", "incoming-old")
    with caplog.at_level(logging.WARNING, logger="dmp.s3_bucket"):
        poller = BucketPoller(labo, sqlite_ctx.engine, sqlite_ctx.archive, client=client)
    assert "prefix 'incoming' has no trailing '/': read as the folder 'incoming/'" in (
        caplog.text)
    assert (poller.poll().taken, poller.where) == (1, f"s3://{name}/incoming/")
    assert BucketPoller(ancien, sqlite_ctx.engine, sqlite_ctx.archive,
                        client=client).poll().taken == 1
    assert [r["file_name"] for r in ledger(sqlite_ctx.engine)] == [
        "incoming/crp-dupont.hl7", "incoming-old/crp-lefevre.hl7"]


# -- MLLP: an MSH in latin-1 under a declared UTF-8; tabs for field separators ---------------
def _msh_fields(data: bytes) -> tuple[list[bytes], bytes]:
    head, rest = data.split(b"\r", 1)
    return head.split(b"|"), rest


def test_mllp_answers_valid_utf8_and_refuses_tab_separated_messages(  # noqa: ANN001
        tmp_path, sqlite_template) -> None:
    """Two senders of a lab network. One declares MSH-18 'UNICODE UTF-8' but writes latin-1
    (its facility 'LABO SAINT-ÉTIENNE'): the ACK echoed the latin-1 bytes under the same
    MSH-18, invalid UTF-8, and its engine refused the answer and sent again. Now the ACK is
    UTF-8, as it declares. The other writes its export with tabs for '|': it was refused as
    an unknown format; now it is refused as what it is (HL7_TAB_FIELD_SEPARATOR), AE with
    the reason in ERR and MSA-2 naming its MSH-10, and stored failed on the ledger."""
    from sqlalchemy import select

    from dossiers.schema import imports
    from tests.conftest import migrated_sqlite
    from tests.mllp_support import Client, msa, running_service, segment
    from tests.test_mllp_senders_round8 import message
    from tests.test_mllp_service import make_ctx

    fields, rest = _msh_fields(message("LAT1-0001"))
    fields[3] = "LABO SAINT-ÉTIENNE".encode("latin-1")
    fields += [b""] * (18 - len(fields))
    fields[17] = b"UNICODE UTF-8"
    latin = b"|".join(fields) + b"\r" + rest
    tabbed = message("TAB-0002").replace(b"|", b"\t")
    ctx = make_ctx(tmp_path, migrated_sqlite(sqlite_template, tmp_path / "store.sqlite3"))
    try:
        with running_service(ctx, process=False) as svc, Client(svc.port) as client:
            ack = client.send(latin)
            ack.decode("utf-8")  # valid in the charset it declares
            assert _msh_fields(ack)[0][5] == "LABO SAINT-ÉTIENNE".encode()
            assert _msh_fields(ack)[0][17] == b"UNICODE UTF-8"
            assert msa(ack)[1:3] == ["AA", "LAT1-0001"]
            refused = client.send(tabbed)
        assert msa(refused)[1:3] == ["AE", "TAB-0002"]
        err = segment(refused, "ERR")
        assert err[2] == "MSH^1^1^1" and err[3].startswith("102^")
        assert err[8].startswith("HL7_TAB_FIELD_SEPARATOR: MSH-1, the field separator, is a tab")
        with ctx.engine.connect() as conn:
            rows = conn.execute(select(imports.c.status, imports.c.error_code)
                                .order_by(imports.c.id)).all()
        assert [tuple(r) for r in rows][-1] == ("failed", "HL7_TAB_FIELD_SEPARATOR")
        # the same export dropped as a file, or this import rerun, is told the same way
        from parsers.detect import unknown_reason
        assert unknown_reason(tabbed)[0] == "HL7_TAB_FIELD_SEPARATOR"
    finally:
        ctx.engine.dispose()


# -- folder: an SFTP upload made with umask 077 ---------------------------------------------
def test_a_file_the_service_may_not_read_is_left_in_place_and_said(  # noqa: ANN001
        sqlite_ctx, tmp_path) -> None:
    """A lab's SFTP account writes with umask 077: its uploads are 0600, its user's alone.
    Such a file was claimed, recorded as a failed import 'cannot be read (EACCES:
    Permission denied)' with no bytes, and moved to failed/. Now it is left where it is,
    the poll's error naming the permission problem (mode, owner, the service's uid; never
    the file's name); once its mode is fixed it is taken when settled again."""
    import os

    from connectors.folder import FolderPoller
    from tests.test_connectors_round4 import _NoDacOverride
    from tests.test_folder_connector import ledger as folder_ledger
    from tests.test_folder_connector import source as folder_source

    if os.geteuid() != 0:
        pytest.skip("the file is made another user's, unreadable to root without capabilities")
    drop = tmp_path / "drop"
    drop.mkdir()
    private = drop / "CR_Lefèvre_Hélène.hl7"
    private.write_bytes(V1)
    os.chown(private, 1001, 1001)
    os.chmod(private, 0o600)
    (drop / "crp.hl7").write_bytes(V2)
    with FolderPoller(folder_source(drop), sqlite_ctx.engine, sqlite_ctx.archive) as poller:
        with _NoDacOverride():
            first = poller.poll()
        assert first.taken == 1 and private.exists()
        assert first.error.startswith(
            "folder source drop: 1 file(s) cannot be read by the service (EACCES: mode 0600 "
            "owned by uid 1001 gid 1001; the service runs as uid 0 gid 0); left in place")
        assert "Lef" not in first.error
        os.chmod(private, 0o644)
        with _NoDacOverride():  # the chmod moved its ctime: settled again first
            later = [poller.poll(), poller.poll()]
    assert [(r.taken, r.error) for r in later] == [(0, None), (1, None)]
    assert [(r["file_name"], r["status"]) for r in folder_ledger(sqlite_ctx.engine)] == [
        ("crp.hl7", "received"), ("CR_Lefèvre_Hélène.hl7", "received")]
    assert not (drop / "failed").exists()


# -- MLLP: plain MLLP sent to the TLS port ---------------------------------------------------
def test_plain_mllp_on_the_tls_port_is_said_as_such(tmp_path, sqlite_template,  # noqa: ANN001
                                                    caplog) -> None:
    """A lab's engine set up without TLS, pointed at our TLS port: it sees its connection
    closed, and our log said 'WRONG_VERSION_NUMBER: the peer is not speaking TLS'. The line
    now says it sent plain MLLP and what to change, naming the peer, never its bytes; and
    nothing is stored."""
    import socket

    from sqlalchemy import func, select

    from dossiers.schema import imports
    from tests.conftest import migrated_sqlite
    from tests.mllp_support import ec_tls_files, running_service
    from tests.test_mllp_senders_round8 import message
    from tests.test_mllp_service import make_ctx

    (tmp_path / "tls").mkdir()
    files = ec_tls_files(tmp_path / "tls")
    ctx = make_ctx(tmp_path, migrated_sqlite(sqlite_template, tmp_path / "store.sqlite3"),
                   tls_cert=files["server.pem"], tls_key=files["server.key"])
    caplog.set_level(logging.WARNING, logger="dmp.mllp")
    try:
        with running_service(ctx, process=False) as svc:
            with socket.create_connection(("127.0.0.1", svc.port), timeout=10) as plain:
                plain.sendall(b"\x0b" + message("PLAIN-0003") + b"\x1c\r")
                assert plain.recv(100) == b""  # closed, no ACK
        with ctx.engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(imports)).scalar() == 0
    finally:
        ctx.engine.dispose()
    [line] = [r.getMessage() for r in caplog.records if "TLS handshake" in r.getMessage()]
    assert "127.0.0.1" in line and "not speaking TLS; it sent plain MLLP" in line
    assert "turn TLS on in it, or point it at the plain MLLP port" in line
    assert "PLAIN-0003" not in line and "MSH" not in line
