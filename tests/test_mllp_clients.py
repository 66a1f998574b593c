"""Our listener against MLLP clients we did not write: python-hl7's `mllp_send` command,
@medplum/hl7's `Hl7Client` and node-hl7-client's `Connection` (npm, run with the machine's
Node.js by tests/node_mllp/send.mjs and send_node_hl7_client.mjs).

Each sends sample traffic with accented names in UTF-8 and ISO-8859-1/-15 over one keep-alive
connection; we check the ACKs they received and what landed in the dossiers.
`make test` installs the npm clients (`npm ci`) and sets DMP_REQUIRE_NODE=1, so there the
Node.js tests fail rather than skip when a client is missing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from dossiers.schema import entries, imports, patients
from pipelines.settings import Source
from tests import test_mllp_service
from tests.conftest import ROOT, migrated_sqlite
from tests.mllp_support import running_service, statuses, wait_processed
from tests.test_mllp_service import make_ctx, original_mode, sample

NODE_CLIENT = ROOT / "tests" / "node_mllp"
MLLP_SEND = str(Path(sys.executable).with_name("mllp_send"))
tls_files = test_mllp_service.tls_files  # the fixture: a CA, server and client certificates

# (file, charset on the wire): accented patient names and result labels in each
TRAFFIC = [("01_labm_nfs.hl7", "utf-8"), ("05_chu_hba1c.hl7", "latin-1"),
           ("06_bioazur_iono_vitd.hl7", "iso-8859-15"), ("03_synlab_iono_creatinine.hl7",
                                                         "utf-8")]


@pytest.fixture
def ctx(tmp_path, database_url):  # noqa: ANN001, ANN201
    context = make_ctx(tmp_path, database_url)
    yield context
    context.engine.dispose()


def _control_id(data: bytes) -> str:
    return data.split(b"\r", 1)[0].split(b"|")[9].decode()


def _check_dossiers(ctx) -> None:  # noqa: ANN001
    """Every message deposited once, with its accented labels decoded right."""
    wait_processed(ctx)
    assert statuses(ctx) == {"deposited": len(TRAFFIC)}
    with ctx.engine.connect() as conn:
        displays = set(conn.execute(select(entries.c.display)).scalars())
        sources = set(conn.execute(select(imports.c.channel, imports.c.peer)).all())
        names = set(conn.execute(select(patients.c.family)).scalars())
    assert sources == {("mllp", "127.0.0.1")}
    assert {"Hémoglobine", "Hémoglobine glyquée (HbA1c)"} & displays
    assert any("Protéines" in (d or "") for d in displays)  # from the 8859/15 message
    assert not any("Ã" in (d or "") or "\ufffd" in (d or "") for d in displays)  # no mojibake
    assert "N'Diaye" in names or any("è" in n for n in names)


def test_python_hl7_mllp_send(ctx, tmp_path) -> None:  # noqa: ANN001
    """`mllp_send` reads a file of MLLP frames and sends them over one connection."""
    stream = tmp_path / "stream.mllp"
    payloads = [sample(name) for name, _ in TRAFFIC]
    stream.write_bytes(b"".join(b"\x0b" + p + b"\x1c\r" for p in payloads))
    with running_service(ctx) as svc:
        out = subprocess.run([MLLP_SEND, "-p", str(svc.port), "-f", str(stream), "127.0.0.1"],
                             capture_output=True, timeout=60)
        assert out.returncode == 0, out.stderr.decode(errors="replace")[-2000:]
        acks = [a for a in out.stdout.decode("latin-1").split("\x0b") if "MSA" in a]
        _check_dossiers(ctx)
    assert svc.result["connections"] == 1
    assert len(acks) == len(payloads)
    for ack, payload in zip(acks, payloads, strict=True):
        msa = next(s for s in ack.split("\r") if s.startswith("MSA")).split("|")
        assert msa[1:3] == ["CA", _control_id(payload)]  # CI-SIS senders: enhanced mode, AL


def test_python_hl7_mllp_send_loose_original_mode(ctx, tmp_path) -> None:  # noqa: ANN001
    """`--loose`: a plain file with LF line ends; original mode answers AA."""
    plain = tmp_path / "plain.hl7"
    payloads = [original_mode(sample(name)) for name, _ in TRAFFIC]
    plain.write_bytes(b"".join(p.replace(b"\r", b"\n") for p in payloads))
    with running_service(ctx) as svc:
        out = subprocess.run([MLLP_SEND, "--loose", "-p", str(svc.port), "-f", str(plain),
                              "127.0.0.1"], capture_output=True, timeout=60)
        assert out.returncode == 0, out.stderr.decode(errors="replace")[-2000:]
        codes = [line.split("|")[1] for line in out.stdout.decode("latin-1").split("\r")
                 if line.startswith("MSA")]
        _check_dossiers(ctx)
    assert codes == ["AA"] * len(payloads)


def _node_client() -> list[str]:
    node = shutil.which("node")
    installed = (NODE_CLIENT / "node_modules" / "@medplum" / "hl7").is_dir()
    if node is None or not installed:
        if os.environ.get("DMP_REQUIRE_NODE") == "1":
            pytest.fail("Node.js or tests/node_mllp/node_modules missing (npm ci --prefix "
                        "tests/node_mllp) and DMP_REQUIRE_NODE=1")
        pytest.skip("Node.js MLLP client not installed (npm ci --prefix tests/node_mllp)")
    return [node, str(NODE_CLIENT / "send.mjs")]


def _node_send(port: int, files: list[Path], encoding: str) -> list[dict]:
    out = subprocess.run([*_node_client(), "--port", str(port), "--encoding", encoding,
                          "--timeout-ms", "20000", *map(str, files)],
                         capture_output=True, text=True, timeout=120)
    results = [json.loads(line) for line in out.stdout.splitlines() if line.strip()]
    assert out.returncode == 0, (out.stderr[-2000:], results)
    return results


def test_medplum_hl7client(ctx, tmp_path) -> None:  # noqa: ANN001
    """Hl7Client over one connection; each file sent in its own charset (iconv-lite)."""
    _node_client()
    results = []
    with running_service(ctx) as svc:
        for name, charset in TRAFFIC:
            path = tmp_path / name
            path.write_bytes(original_mode(sample(name)))
            encoding = {"latin-1": "latin1", "iso-8859-15": "iso-8859-15"}.get(charset, charset)
            results += _node_send(svc.port, [path], encoding)
        _check_dossiers(ctx)
    for (name, _), result in zip(TRAFFIC, results, strict=True):
        assert result["msa1"] == "AA", result
        assert result["msa2"] == _control_id(sample(name))
        assert "MSH|^~\\&|" in result["ack"]


def test_medplum_hl7client_keep_alive_many_messages(ctx, tmp_path) -> None:  # noqa: ANN001
    """Fifty messages from one Hl7Client: one connection, fifty ACKs, in order."""
    _node_client()
    from samples.generate import Traffic

    traffic = iter(Traffic(21, patients=10, corrections=0, duplicates=0, charset="utf-8"))
    files = []
    for i in range(50):
        path = tmp_path / f"{i:03d}.hl7"
        path.write_bytes(next(traffic))
        files.append(path)
    with running_service(ctx) as svc:
        results = _node_send(svc.port, files, "utf-8")
        wait_processed(ctx)
    assert [r["connection"] for r in results] == [1] * 50
    assert [r["msa1"] for r in results] == ["CA"] * 50  # generated traffic: enhanced mode
    assert [r["msa2"] for r in results] == [_control_id(p.read_bytes().replace(b"\n", b"\r"))
                                           for p in files]
    assert svc.result["connections"] == 1
    assert sum(statuses(ctx).values()) == 50


def _node_hl7_client() -> list[str]:
    """node-hl7-client (npm): its own MLLP framing, reply reader and batch classes."""
    node = shutil.which("node")
    installed = (NODE_CLIENT / "node_modules" / "node-hl7-client").is_dir()
    if node is None or not installed:
        if os.environ.get("DMP_REQUIRE_NODE") == "1":
            pytest.fail("Node.js or node-hl7-client missing (npm ci --prefix tests/node_mllp) "
                        "and DMP_REQUIRE_NODE=1")
        pytest.skip("node-hl7-client not installed (npm ci --prefix tests/node_mllp)")
    return [node, str(NODE_CLIENT / "send_node_hl7_client.mjs")]


def _node_hl7_send(port: int, files: list[Path], encoding: str, *extra: str,
                   ok: bool = True) -> list[dict]:
    out = subprocess.run([*_node_hl7_client(), "--port", str(port), "--encoding", encoding,
                          "--timeout-ms", "20000", *extra, *map(str, files)],
                         capture_output=True, text=True, timeout=120)
    results = [json.loads(line) for line in out.stdout.splitlines() if line.strip()]
    assert (out.returncode == 0) == ok, (out.stderr[-2000:], results)
    return results


def _fields(ack: str, name: str) -> list[str]:
    return next(s for s in ack.split("\r") if s.startswith(name + "|")).split("|")


def test_node_hl7_client(ctx, tmp_path) -> None:  # noqa: ANN001
    """node-hl7-client sends the UTF-8 messages in UTF-8 and the ISO 8859-1/-15 ones byte for
    byte (its 'latin1'), each group over one connection; every ACK answers its message in
    the sender's own terms and every message lands once, accents intact."""
    _node_hl7_client()
    results = []
    with running_service(ctx) as svc:
        for charset in ("utf-8", "latin-1"):
            files = []
            for name, wire in TRAFFIC:
                if (wire == "utf-8") == (charset == "utf-8"):
                    path = tmp_path / name
                    path.write_bytes(sample(name))
                    files.append((name, path))
            got = _node_hl7_send(svc.port, [p for _, p in files],
                                 "utf8" if charset == "utf-8" else "latin1")
            assert [r["connection"] for r in got] == [1] * len(files), got
            results += [(name, r) for (name, _), r in zip(files, got, strict=True)]
        _check_dossiers(ctx)
    assert svc.result["connections"] == 2
    for name, result in results:
        payload = sample(name)
        sent = payload.split(b"\r", 1)[0].decode("latin-1").split("|")
        assert len(result["acks"]) == 1, result  # enhanced AL/NE: the commit ACK alone
        msh, msa = _fields(result["acks"][0], "MSH"), _fields(result["acks"][0], "MSA")
        assert msa[1:3] == ["CA", _control_id(payload)]
        assert msh[2:6] == [sent[4], sent[5], sent[2], sent[3]]  # sender and receiver swapped
        assert msh[8] == "ACK^R01^ACK" and msh[11] == sent[11] and msh[17] == sent[17]
        assert msh[9] != sent[9]  # a control id of its own


def _segments(text: str) -> list[list[str]]:
    return [line.split("|") for line in text.replace("\n", "\r").split("\r") if line]


def test_node_hl7_client_batch(ctx, tmp_path) -> None:  # noqa: ANN001
    """A file batch (FHS BHS MSH... BTS FTS) sent as node-hl7-client's FileBatch in one frame:
    stored whole, its three messages filed, answered with one frame holding a batch (BHS,
    three ACKs, BTS|3, no FHS: the client cannot parse a reply that starts with FHS), which
    the client reads as a batch and hands to its handler ACK by ACK, each answering its own
    message. Before batch ACKs it got one ACK, answering the first message."""
    _node_hl7_client()
    batch = tmp_path / "batch.hl7"
    batch.write_bytes(sample("15_chu_batch.hl7"))
    with running_service(ctx) as svc:
        [result] = _node_hl7_send(svc.port, [batch], "latin1")
        wait_processed(ctx)
    sent = [_control_id(b"MSH|" + m) for m in sample("15_chu_batch.hl7").split(b"MSH|")[1:]]
    assert [_fields(a, "MSA")[1:3] for a in result["acks"]] == [["CA", c] for c in sent]
    [raw] = result["raw"]
    lines = _segments(raw)
    assert [f[0] for f in lines] == ["BHS", *["MSH", "MSA"] * 3, "BTS"]
    assert lines[0][2:6] == ["DMP-INTAKE", "DMP", "GLIMS", "CHU_RENNES"]
    assert lines[0][11] == "BRB0001" and lines[-1] == ["BTS", "3"]
    assert statuses(ctx) == {"split": 1, "deposited": 3}


def test_node_hl7_client_bhs_batch_then_a_message(ctx, tmp_path) -> None:  # noqa: ANN001
    """node-hl7-client's Batch (BHS ... BTS, no FHS) of three generated ORU^R01 in original
    mode, then a lone message on the same connection: the batch's answer is a batch of three
    AA answering each MSH-10, and the client, satisfied by it (no time-out), sends the next
    message and gets its own ACK."""
    from samples.generate import Traffic

    _node_hl7_client()
    traffic = iter(Traffic(23, patients=10, corrections=0, duplicates=0, charset="utf-8"))
    messages = [original_mode(next(traffic).replace(b"\n", b"\r")) for _ in range(4)]
    batch, single = tmp_path / "batch.hl7", tmp_path / "single.hl7"
    batch.write_bytes(b"BHS|^~\\&|LAB|SITE|DMP-INTAKE|DMP|20251203061500+0100||||B77\r"
                      + b"".join(messages[:3]) + b"BTS|3\r")
    single.write_bytes(messages[3])
    with running_service(ctx) as svc:
        first, second = _node_hl7_send(svc.port, [batch, single], "utf8")
        wait_processed(ctx)
    assert first["connection"] == second["connection"] == 1
    assert [_fields(a, "MSA")[1:3] for a in first["acks"]] == [
        ["AA", _control_id(m)] for m in messages[:3]]
    lines = _segments(first["raw"][0])
    assert [f[0] for f in lines] == ["BHS", *["MSH", "MSA"] * 3, "BTS"]
    assert lines[0][11] == "B77" and lines[-1] == ["BTS", "3"]
    assert [_fields(a, "MSA")[1:3] for a in second["acks"]] == [
        ["AA", _control_id(messages[3])]]
    assert sum(statuses(ctx).values()) == 1 + 3 + 1  # the batch's row, its 3, the lone one


def test_node_hl7_client_tls_with_client_certificate(tmp_path, tls_files, sqlite_template) -> None:  # noqa: ANN001
    """node-hl7-client over TLS (Node's TLS stack, not Python's): with a client certificate
    signed by the declared CA its messages are acknowledged; without one the handshake is
    refused, no ACK comes, and the listener goes on serving."""
    _node_hl7_client()
    ctx = make_ctx(tmp_path, migrated_sqlite(sqlite_template, tmp_path / "tls.sqlite3"),
                   tls_cert=tls_files["server.pem"], tls_key=tls_files["server.key"],
                   tls_client_ca=tls_files["ca.pem"])
    files = []
    for name in ("01_labm_nfs.hl7", "03_synlab_iono_creatinine.hl7"):
        files.append(tmp_path / name)
        files[-1].write_bytes(sample(name))
    ca = ("--tls-ca", str(tls_files["ca.pem"]))
    identity = ("--tls-cert", str(tls_files["client.pem"]), "--tls-key",
                str(tls_files["client.key"]))
    try:
        with running_service(ctx) as svc:
            first = _node_hl7_send(svc.port, files[:1], "utf8", *ca, *identity)
            anonymous = _node_hl7_send(svc.port, files[1:], "utf8", *ca, "--timeout-ms",
                                       "3000", ok=False)
            second = _node_hl7_send(svc.port, files[1:], "utf8", *ca, *identity)
            wait_processed(ctx)
        assert [_fields(r["acks"][0], "MSA")[1] for r in first + second] == ["CA", "CA"]
        assert "acks" not in anonymous[0] and anonymous[0]["error"]
        assert statuses(ctx) == {"deposited": 2}
    finally:
        ctx.engine.dispose()


def test_node_hl7_client_application_mode_commit_then_application_ack(tmp_path,  # noqa: ANN001
                                                                       database_url) -> None:
    """Application mode, a message asking for both ACKs (MSH-15/16 AL/AL) whose OBX-5 is no
    number: node-hl7-client receives the commit ACK (CA) then the application ACK (AE) whose
    ERR points at the 2nd OBX's field 5 with table 0357 code 102 and severity E, both on
    its connection: a client that reads both, declared so (``ack_same_connection``)."""
    _node_hl7_client()
    ctx = make_ctx(tmp_path, database_url, ack_mode="application",
                   sources=(Source("labs", ack_same_connection=True),))
    path = tmp_path / "nm.hl7"
    path.write_bytes(sample("20_casse_nm_non_numerique.hl7").replace(b"|AL|NE|", b"|AL|AL|"))
    try:
        with running_service(ctx) as svc:
            [result] = _node_hl7_send(svc.port, [path], "utf8", "--expect-acks", "2")
        control_id = _control_id(sample("20_casse_nm_non_numerique.hl7"))
        assert [_fields(a, "MSA")[1:3] for a in result["acks"]] == [["CA", control_id],
                                                                     ["AE", control_id]]
        err = _fields(result["acks"][1], "ERR")
        assert err[2:5] == ["OBX^2^5^1", "102^Data type error^HL70357", "E"]
        assert err[8].startswith("OBX_BAD_NUMBER")
        assert statuses(ctx) == {"failed": 1}
    finally:
        ctx.engine.dispose()
