"""The MLLP listener, round 11: where an enhanced-mode application ACK goes (MSH-15/16 AL/AL).

HL7 v2.5 2.10 has the application ACK sent as a new message; the engines labs run take it
on an inbound channel of their own, while their sending channel reads ONE reply per message.
Over real sockets: the service in-process, a small MLLP server standing for the lab engine's
inbound channel (the source's ``application_ack_route``), the ACKs read with python-hl7."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import hl7
import pytest

from pipelines.acknowledge import ack_rules
from pipelines.app_acks import application_acks, outbox_of
from pipelines.settings import SettingsError, Source, _sources
from tests.conftest import migrated_sqlite
from tests.mllp_support import Client, read_frame, running_service
from tests.test_mllp_service import make_ctx, sample

ERROR_SAMPLE = "20_casse_nm_non_numerique.hl7"  # OBX-5 no number: AE after processing


class Inbound:
    """A lab engine's inbound channel: accepts MLLP connections, keeps every frame."""

    def __init__(self, port: int = 0) -> None:
        self.sock = socket.create_server(("127.0.0.1", port))
        self.port = self.sock.getsockname()[1]
        self.frames: list[bytes] = []
        self.connections = 0
        self.got = threading.Condition()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._read, args=(conn,), daemon=True).start()

    def _read(self, conn: socket.socket) -> None:
        buffer = bytearray()
        with conn:
            while True:
                try:
                    frame = read_frame(conn, buffer, timeout=30)
                except OSError:
                    return
                if frame is None:
                    return
                with self.got:
                    self.frames.append(frame)
                    self.got.notify_all()

    def wait(self, count: int, timeout: float = 60.0) -> list[hl7.Message]:
        """The frames received once there are ``count`` (a bound, not a delay: returns
        as soon as they are in; on a loaded machine they can take seconds)."""
        deadline = time.monotonic() + timeout
        with self.got:
            while len(self.frames) < count and time.monotonic() < deadline:
                self.got.wait(deadline - time.monotonic())
            return [hl7.parse(f.decode("utf-8")) for f in self.frames]

    def close(self) -> None:
        self.sock.close()


def _free_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as s:
        return s.getsockname()[1]


def message(name: str, control_id: str, application: str, accept: str = "AL",
            ack: str = "AL") -> bytes:
    """A sample with MSH-3 (which source it is), MSH-10, MSH-15 and MSH-16 set."""
    first, _, rest = sample(name).partition(b"\r")
    fields = first.split(b"|")
    fields[2], fields[9] = application.encode(), control_id.encode()
    fields[14:16] = [accept.encode(), ack.encode()]
    return b"|".join(fields) + b"\r" + rest


def msa(ack: bytes | hl7.Message) -> list[str]:
    parsed = ack if isinstance(ack, hl7.Message) else hl7.parse(ack.decode("utf-8"))
    return [str(f) for f in parsed.segment("MSA")[1:3]]


@pytest.fixture(scope="module")
def inbound() -> Iterator[Inbound]:
    server = Inbound()
    yield server
    server.close()


@pytest.fixture(scope="module")
def service(tmp_path_factory, inbound: Inbound, sqlite_template):  # noqa: ANN001, ANN201
    """Application mode; three sources told apart by MSH-3: ROUTED (a return route to
    ``inbound``), BOTH (reads both ACKs on its connection), any other (no route)."""
    tmp = tmp_path_factory.mktemp("round11")
    sources = (Source("routed", sending_application="ROUTED",
                      ack_route=("127.0.0.1", inbound.port)),
               Source("both", sending_application="BOTH", ack_same_connection=True),
               Source("labs"))
    ctx = make_ctx(tmp, migrated_sqlite(sqlite_template, tmp / "store.sqlite3"),
                   sources=sources, ack_mode="application")
    try:
        with running_service(ctx, process=False) as svc:
            svc.home = ctx.settings.home
            yield svc
    finally:
        ctx.engine.dispose()


def test_no_route_one_reply_per_message_and_the_application_ack_is_held(service) -> None:  # noqa: ANN001
    """No route declared, AL/AL: the commit ACK was followed by the application ACK on the
    same connection, which a sender reading one reply per message took for the reply to its
    next message (here: the CA of N2 read as N1's AE, then AE for N2, off by one). Now one
    reply per message, each answering its own MSH-10; the AE is held, seen in `imports
    show`."""
    with Client(service.port) as client:
        first = client.send(message(ERROR_SAMPLE, "R11-N1", "LABM"))
        second = client.send(message("01_labm_nfs.hl7", "R11-N2", "LABM"))
        with pytest.raises(socket.timeout):  # nothing more on the connection
            read_frame(client.sock, client.buffer, timeout=0.5)
    assert msa(first) == ["CA", "R11-N1"]
    assert msa(second) == ["CA", "R11-N2"]
    held = [a for i in range(1, 10) for a in application_acks(service.home, i)]
    assert [(a["state"], a["code"]) for a in held] == [("held", "AE"), ("held", "AA")]
    assert "no application_ack_route" in held[0]["meaning"]
    ack = hl7.parse(Path(held[0]["file"]).read_bytes().decode("utf-8"))
    assert msa(ack) == ["AE", "R11-N1"]
    assert str(ack.segment("ERR")[3]) == "102^Data type error^HL70357"


def test_route_declared_the_application_ack_goes_to_the_senders_inbound_channel(
        service, inbound: Inbound) -> None:  # noqa: ANN001
    """A return route declared: the connection gets the commit ACK alone; the application
    ACK (a new message: MSH-5/6 the sender, MSA-2 its MSH-10, ERR at OBX-5) is delivered to
    the route, then leaves the outbox."""
    before = len(inbound.frames)
    with Client(service.port) as client:
        commit = client.send(message(ERROR_SAMPLE, "R11-R1", "ROUTED"))
        valid = client.send(message("01_labm_nfs.hl7", "R11-R2", "ROUTED"))
        with pytest.raises(socket.timeout):
            read_frame(client.sock, client.buffer, timeout=0.3)
    assert msa(commit) == ["CA", "R11-R1"]
    assert msa(valid) == ["CA", "R11-R2"]
    routed = inbound.wait(before + 2)[before:]
    assert [msa(a) for a in routed] == [["AE", "R11-R1"], ["AA", "R11-R2"]]
    assert str(routed[0].segment("MSH")[5]) == "ROUTED"
    assert str(routed[0].segment("ERR")[2]) == "OBX^2^5^1"
    assert str(routed[0].segment("MSH")[15]) == ""  # an ACK asks for no ACK
    deadline = time.monotonic() + 60
    while outbox_of(service.home).queued("routed") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert outbox_of(service.home).queued("routed") == []


def test_opt_in_same_connection_keeps_both_frames(service) -> None:  # noqa: ANN001
    """A source declared to read both replies (``application_ack_same_connection``, as
    @medplum/hl7 and node-hl7-client do): the commit ACK then the application ACK on the
    connection, as before."""
    with Client(service.port) as client:
        commit = client.send(message(ERROR_SAMPLE, "R11-B1", "BOTH"))
        application = read_frame(client.sock, client.buffer)
    assert msa(commit) == ["CA", "R11-B1"]
    assert application is not None and msa(application) == ["AE", "R11-B1"]


def test_no_commit_ack_asked_the_application_ack_is_the_one_reply(service) -> None:  # noqa: ANN001
    """MSH-15 NE, MSH-16 AL, no route: the application ACK is the one reply, on the
    connection (unchanged)."""
    with Client(service.port) as client:
        assert msa(client.send(message(ERROR_SAMPLE, "R11-NE1", "LABM", "NE"))) == [
            "AE", "R11-NE1"]


def test_original_mode_unchanged(service) -> None:  # noqa: ANN001
    with Client(service.port) as client:
        assert msa(client.send(message(ERROR_SAMPLE, "R11-O1", "ROUTED", "", ""))) == [
            "AE", "R11-O1"]


def test_queued_ack_survives_a_restart_and_is_sent_once_the_route_listens(
        tmp_path, sqlite_template) -> None:  # noqa: ANN001
    """The route down: the application ACK stays queued (a file in the outbox) through a
    stop of the service, and is delivered by the next start once the route listens."""
    port = _free_port()
    sources = (Source("routed", sending_application="ROUTED", ack_route=("127.0.0.1", port)),)
    ctx = make_ctx(tmp_path, migrated_sqlite(sqlite_template, tmp_path / "store.sqlite3"),
                   sources=sources, ack_mode="application")
    outbox = outbox_of(ctx.settings.home)
    try:
        with running_service(ctx, process=False) as svc, Client(svc.port) as client:
            assert msa(client.send(message(ERROR_SAMPLE, "R11-Q1", "ROUTED"))) == [
                "CA", "R11-Q1"]
            deadline = time.monotonic() + 60
            while not outbox.queued("routed") and time.monotonic() < deadline:
                time.sleep(0.05)
        assert len(outbox.queued("routed")) == 1
        assert [a["state"] for a in application_acks(ctx.settings.home, 1)] == ["queued"]
        inbound = Inbound(port)
        try:
            with running_service(ctx, process=False):
                routed = inbound.wait(1)
                assert [msa(a) for a in routed] == [["AE", "R11-Q1"]]
        finally:
            inbound.close()
        assert outbox.queued("routed") == []
    finally:
        ctx.engine.dispose()


# --- settings --------------------------------------------------------------------------------

def test_route_settings_are_read_and_checked() -> None:
    [source] = _sources({"lab": {"application_ack_route": "[2001:db8::1]:6661",
                                 "application_ack_tls": True}})
    assert source.ack_route == ("2001:db8::1", 6661) and source.ack_route_tls
    assert _sources({"lab": {"application_ack_route": "mirth.labo.fr:6661"}})[0].ack_route == (
        "mirth.labo.fr", 6661)
    for bad in ({"application_ack_route": "mirth.labo.fr"},
                {"application_ack_route": "h:70000"},
                {"application_ack_route": "h:1", "application_ack_same_connection": True},
                {"application_ack_tls": True}):
        with pytest.raises(SettingsError):
            _sources({"lab": bad})


def test_table_0008_bad_msh_is_an_error_not_a_reject() -> None:
    """Table 0008: AR (reject) is for MSH-9/11/12 not accepted or a receiver unable to
    take the message now, and invites sending it again unchanged; a malformed MSH or
    unusable encoding characters is the message's error: AE."""
    rules = ack_rules()
    assert rules["HL7_BAD_MSH"].ack == "AE"
    assert rules["HL7_BAD_ENCODING_CHARS"].ack == "AE"


def test_unusable_encoding_characters_original_mode_are_ae_over_the_socket(service) -> None:  # noqa: ANN001
    """Sample 18 (MSH-2 '^^\\&') in original mode: AE with ERR-3 102 at MSH-2 (it was AR,
    which tells an engine to send it again unchanged); enhanced mode keeps CR."""
    bad = sample("18_casse_delimiteurs.hl7")
    first, _, rest = bad.partition(b"\r")
    fields = first.split(b"|")
    fields[9], fields[14:16] = b"R11-ENC1", [b"", b""]
    with Client(service.port) as client:
        ack = client.send(b"|".join(fields) + b"\r" + rest)
    assert ack is not None and b"MSA|AE|R11-ENC1" in ack and b"|102^" in ack


def test_err_8_is_capped_at_250_characters() -> None:
    """ERR-8 (TX 250 in v2.5) carried the whole text, however long; it is cut at 250
    characters once escaped, the cut marked, MSA-3 still 80."""
    from parsers.hl7v2.ack import AckError, build_ack
    from parsers.hl7v2.header import read_header

    header = read_header(message("01_labm_nfs.hl7", "R11-LONG", "LABM", "", ""))
    text = "OBX_BAD_NUMBER: " + "valeur non numérique|" * 30
    ack = hl7.parse(build_ack(header, "AE", error=AckError("102", text, "OBX[3]-5"))
                    .decode("utf-8"))
    err8 = str(ack.segment("ERR")[8])
    assert len(err8) <= 250 and err8.endswith("...")
    assert err8.startswith("OBX_BAD_NUMBER: valeur non num")
    assert len(str(ack.segment("MSA")[3])) <= 80


def test_held_acks_are_pruned_after_their_retention(tmp_path) -> None:  # noqa: ANN001
    """Held ACKs (one per AL/AL message of a source without a route) are kept 30 days, not
    for ever; queued ones, still owed, are never pruned."""
    outbox = outbox_of(tmp_path)
    old = outbox.put("held", "labs", 7, b"MSH|^~\\&|\rMSA|AA|X\r")
    outbox.put("queued", "routed", 8, b"MSH|^~\\&|\rMSA|AA|Y\r")
    recent = outbox.put("held", "labs", 9, b"MSH|^~\\&|\rMSA|AA|Z\r")
    aged = old.with_name(f"{int(old.name[:20]) - 31 * 86400 * 10**9:020d}-7.hl7")
    old.rename(aged)
    assert outbox.prune_held() == 1
    assert not aged.exists() and recent.exists() and len(outbox.queued("routed")) == 1


def test_imports_show_names_the_held_application_ack(tmp_path, monkeypatch, capsys,  # noqa: ANN001
                                                      sqlite_template) -> None:  # noqa: ANN001
    """`dmp-ingest imports show` tells the operator an import's application ACK was held
    (not sent: no route), with its MSA-1; in --json too."""
    import json

    import cli
    from pipelines.intake import Received, intake
    from pipelines.process import Context
    from pipelines.settings import load_settings

    migrated_sqlite(sqlite_template, tmp_path / "var" / "dmp.sqlite3")  # the home's store
    monkeypatch.setenv("DMP_HOME", str(tmp_path / "var"))
    for name in ("DMP_DATABASE_URL", "DMP_ARCHIVE_URL", "DMP_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    ctx = Context.from_settings(load_settings())
    data = message(ERROR_SAMPLE, "R11-SHOW", "LABM")
    [result] = intake(ctx.engine, ctx.archive, [Received(data, "labs", "mllp")])
    ctx.engine.dispose()
    [import_id] = result.message_ids
    outbox_of(ctx.settings.home).put(
        "held", "labs", import_id,
        b"MSH|^~\\&|DMP|DMP|LABM|X|20261127||ACK^R01^ACK|A1|P|2.5\rMSA|AE|R11-SHOW\r")
    assert cli.main(["imports", "show", str(import_id)]) == 0
    out = capsys.readouterr().out
    assert "application ACK: AE held: not sent" in out
    assert cli.main(["imports", "show", str(import_id), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)["application_acks"]
    assert [(a["state"], a["code"]) for a in shown] == [("held", "AE")]
