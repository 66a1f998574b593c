"""The MLLP listener over real sockets: ACK rules, concurrency, bad frames, TLS, outages.

The service runs in a thread of the test process (tests/mllp_support.py) on a free port, on
SQLite and PostgreSQL. Clients written by others are in test_mllp_clients.py; kills of the
real process in test_mllp_crash.py.
"""

from __future__ import annotations

import csv
import socket
import ssl
import subprocess
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from dossiers.schema import entries, imports
from pipelines.acknowledge import UNSUPPORTED_CODES
from pipelines.archive import ArchiveError, sha256_hex
from pipelines.dossier_admin import DossierInput, create_dossiers
from pipelines.process import Context
from pipelines.settings import ListenerSettings, Source, load_settings
from tests.conftest import SAMPLES, migrated_sqlite
from tests.mllp_support import (
    CR,
    FS,
    VT,
    Client,
    msa,
    read_frame,
    running_service,
    segment,
    statuses,
    wait_processed,
)

HL7 = SAMPLES / "hl7v2"
ANY = (Source("labs"),)


def sample(name: str) -> bytes:
    """A sample file as one MLLP payload (segments separated by CR)."""
    data = (HL7 / name).read_bytes()
    return b"\r".join(line for line in data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
                      .split(b"\n") if line) + b"\r"


def original_mode(data: bytes) -> bytes:
    """The same message without MSH-15/16 (original acknowledgment mode)."""
    first, _, rest = data.partition(b"\r")
    fields = first.split(b"|")
    fields[14:16] = [b"", b""]
    return b"|".join(fields) + b"\r" + rest


def make_ctx(tmp_path: Path, database_url: str, *, sources=ANY, **listener) -> Context:  # noqa: ANN001
    settings = load_settings(
        env={"DMP_HOME": str(tmp_path / "home"), "DMP_DATABASE_URL": database_url,
             "DMP_ARCHIVE_URL": str(tmp_path / "archive"),
             "DMP_MAPPINGS_DIR": str(SAMPLES / "mappings")},
        sources=sources, listener=ListenerSettings(port=0, **listener),
        workers=0)  # the worker as a thread: no process start-up per test
    ctx = Context.from_settings(settings)
    with (SAMPLES / "patients.csv").open(encoding="utf-8", newline="") as fh:
        create_dossiers(ctx.engine, [DossierInput.from_mapping(r) for r in csv.DictReader(fh)],
                        skip_existing=True)
    return ctx


@pytest.fixture
def ctx(tmp_path, database_url):  # noqa: ANN001, ANN201
    context = make_ctx(tmp_path, database_url)
    yield context
    context.engine.dispose()


def test_ack_after_storage_and_processing_follows(ctx) -> None:  # noqa: ANN001
    with running_service(ctx) as svc, Client(svc.port) as client:
        data = original_mode(sample("01_labm_nfs.hl7"))
        ack = client.send(data)
        fields = msa(ack)
        assert fields[1:3] == ["AA", "RB2501140000001"]
        # stored before the ACK: the ledger row exists as soon as the ACK is read
        with ctx.engine.connect() as conn:
            row = conn.execute(select(imports).where(imports.c.channel == "mllp")).one()
        assert row.source == "labs" and row.peer == "127.0.0.1"
        assert ctx.archive.get(row.sha256) == data
        wait_processed(ctx)
    assert statuses(ctx) == {"deposited": 1}


def test_ack_header_swaps_sender_and_receiver_and_keeps_charset(ctx) -> None:  # noqa: ANN001
    data = original_mode(sample("06_bioazur_iono_vitd.hl7"))  # 8859/15
    with running_service(ctx) as svc, Client(svc.port) as client:
        ack = client.send(data)
    msh_in = data.split(b"\r")[0].decode("iso-8859-15").split("|")
    msh = segment(ack, "MSH", "iso-8859-15")
    assert msh[2:4] == msh_in[4:6] and msh[4:6] == msh_in[2:4]
    assert msh[8] == "ACK^R01^ACK" and msh[9] != msh_in[9]
    assert msh[11] == msh_in[11] == "2.5" and msh[17] == "8859/15"
    assert msa(ack, "iso-8859-15")[2] == msh_in[9]


# (MSH-18 as sent, the charset of the message's bytes)
CHARSETS = [("UNICODE UTF-8", "utf-8"), ("8859/15", "iso-8859-15"), ("8859/1", "latin-1"),
            ("ASCII", "ascii"), ("", "utf-8"), ("", "latin-1"), ("UTF-8", "utf-8"),
            ("UNICODE UTF-8~8859/1", "utf-8")]


def test_ack_answers_in_the_message_charset(ctx) -> None:  # noqa: ANN001
    """Each MSH-18 a sender may write, over a real socket: the ACK keeps MSH-18 as sent and
    echoes the sender's accented facility (MSH-4, the ACK's MSH-6) in the message's own
    bytes (the euro sign is A4 in 8859/15; ASCII has no accent to echo); an empty MSH-18
    is answered in the bytes the message came in."""
    facility = "Clinique Sainte-Cécile €"
    text = sample("01_labm_nfs.hl7").decode("utf-8")
    with running_service(ctx) as svc, Client(svc.port) as client:
        for n, (charset, codec) in enumerate(CHARSETS):
            fields = text.split("\r", 1)[0].split("|")
            fields[3], fields[9], fields[14:16] = facility, f"CS{n}", ["", ""]
            fields[17:] = [charset]
            message = "|".join(fields) + "\r" + text.split("\r", 1)[1]
            data = message.encode(codec, errors="replace")
            ack = client.send(data)
            msh = ack.split(b"\r", 1)[0].split(b"|")
            assert msa(ack, codec)[1:3] == ["AA", f"CS{n}"], charset
            assert msh[5] == facility.encode(codec, errors="replace"), (charset, codec)
            assert msh[17:] == ([charset.encode()] if charset else []), charset
        wait_processed(ctx)
    assert "failed" not in statuses(ctx)


def test_enhanced_mode_commit_ack_follows_msh15(ctx) -> None:  # noqa: ANN001
    data = sample("01_labm_nfs.hl7")  # MSH-15 AL, MSH-16 NE (CI-SIS)
    never = data.replace(b"|P|2.5|||AL|NE|", b"|P|2.5|||NE|NE|", 1)
    never = never.replace(b"RB2501140000001|", b"RB2501140000099|", 1)
    with running_service(ctx) as svc, Client(svc.port) as client:
        assert msa(client.send(data))[1] == "CA"
        client.sock.sendall(b"\x0b" + never + b"\x1c\r")  # MSH-15 NE: no answer at all
        # so the next answer on this connection is the third message's
        third = client.send(original_mode(sample("03_synlab_iono_creatinine.hl7")))
        assert msa(third)[1:3] == ["AA", "RB2504080000001"]
        wait_processed(ctx)
    # the NE message was stored too (same results under a new control id: a duplicate)
    assert statuses(ctx) == {"deposited": 2, "duplicate": 1}


def _with_ack_types(data: bytes, accept: str, application: str, control_id: str) -> bytes:
    first, _, rest = data.partition(b"\r")
    fields = first.split(b"|")
    fields[9], fields[14], fields[15] = control_id.encode(), accept.encode(), application.encode()
    return b"|".join(fields) + b"\r" + rest


def _answers_to(client: Client, data: bytes) -> list[list[str]]:
    """[MSA-1, MSA-2] of every ACK sent for ``data``: it is followed on the connection by an
    original-mode message, whose own ACK ends what was sent for ``data`` (none is an answer
    too, which a read with a timeout could not tell from a slow one)."""
    follower = original_mode(sample("03_synlab_iono_creatinine.hl7"))
    client.sock.sendall(VT + data + FS + CR + VT + follower + FS + CR)
    got = []
    while True:
        ack = read_frame(client.sock, client.buffer)
        assert ack is not None
        fields = msa(ack, "latin-1")[1:3]
        if fields[1] == "RB2504080000001":
            return got
        got.append(fields)


# (MSH-15, MSH-16, the ACK codes a message stored and valid gets in accept mode): an
# application ACK asked by MSH-16 is sent in accept mode too, once the message is processed,
# on the connection when it is the one reply; after a commit ACK, it goes to the source's
# return route or is held (no route declared here: held; tests/test_mllp_senders_round11.py)
ACCEPT_MODE_ACKS = [
    ("AL", "NE", ["CA"]), ("NE", "AL", ["AA"]), ("ER", "NE", []), ("SU", "NE", ["CA"]),
    ("", "AL", ["CA"]),  # enhanced, MSH-15 empty: the commit ACK is always sent
    ("al", "ne", ["CA"]), (" AL", "NE", ["CA"]), ("XX", "", ["CA"]), ("Y", "Y", ["CA"]),
    (" ", " ", ["AA"]),  # spaces are no value: original mode
    ("NE", "NE", []), ("NE", "ER", []), ("NE", "SU", ["AA"]), ("AL", "ER", ["CA"]),
]


def test_msh_15_and_16_decide_the_acks_in_accept_mode(ctx) -> None:  # noqa: ANN001
    """Table 0155 as v2.5 2.9.3 has it, over a real socket. A value outside the table or
    padded with spaces ('XX', ' AL') got no ACK at all, so its sender waited and sent again:
    it is now read as AL."""
    data = sample("01_labm_nfs.hl7")
    with running_service(ctx) as svc, Client(svc.port) as client:
        for n, (accept, application, expected) in enumerate(ACCEPT_MODE_ACKS):
            control_id = f"K{n}"
            got = _answers_to(client, _with_ack_types(data, accept, application, control_id))
            assert got == [[code, control_id] for code in expected], (accept, application)


def test_accept_mode_sends_the_application_ack_msh_16_asks_for(ctx) -> None:  # noqa: ANN001
    """Accept mode, an engine asking no commit ACK but an application ACK (MSH-15 NE, MSH-16
    AL or ER): it got no answer at all and waited (then sent again, unanswered again). v2.5
    2.9.3: MSH-16 requires the application ACK, so the message is processed before the
    answer: AE with its ERR for a message in error, AA for a valid one, nothing for ER when
    valid. The commit ACK is still sent alone, without waiting, for MSH-16 NE."""
    invalid = sample("20_casse_nm_non_numerique.hl7")
    with running_service(ctx) as svc, Client(svc.port) as client:
        ack = client.send(_with_ack_types(invalid, "NE", "AL", "N1"))
        assert msa(ack)[1:3] == ["AE", "N1"]
        err = segment(ack, "ERR")
        assert err[2:5] == ["OBX^2^5^1", "102^Data type error^HL70357", "E"]
        for accept, application, control_id, expected in (("NE", "ER", "N2", ["AE"]),
                                                          ("AL", "NE", "N3", ["CA"])):
            got = _answers_to(client, _with_ack_types(invalid, accept, application, control_id))
            assert got == [[code, control_id] for code in expected]
        wait_processed(ctx)
    # N1 to N3 failed (N3 by the worker); the two followers _answers_to sent are filed
    assert statuses(ctx) == {"failed": 3, "deposited": 1, "duplicate": 1}


@pytest.mark.parametrize("mode", ["accept", "application"])
def test_a_slow_processing_holds_back_no_other_connection(tmp_path, database_url, mode,  # noqa: ANN001
                                                          monkeypatch) -> None:  # noqa: ANN001
    """The processing before an application ACK (application mode; accept mode when MSH-16
    asks for one) ran in the thread that stores every group: while one message was slow to
    file, every other connection waited for its ACK, past an engine's response timeout.
    Here the first processing is held until released: meanwhile another connection's ACK
    that needs no processing comes at once, and (application mode) a message processed
    beside the slow one is answered AA."""
    import pipelines.acknowledge as acknowledge

    # ``let_go``: set when the slow processing goes on (the gate opened, or its bound passed):
    # the other ACKs must come while it is still held, however long they take to come
    gate, held, let_go = threading.Event(), threading.Event(), threading.Event()
    process = acknowledge.process_claimed

    def slow_once(ctx, ids):  # noqa: ANN001, ANN202
        if not held.is_set():
            held.set()
            gate.wait(300)
            let_go.set()
        return process(ctx, ids)

    monkeypatch.setattr(acknowledge, "process_claimed", slow_once)
    ctx = make_ctx(tmp_path, database_url, ack_mode=mode)
    first = _with_ack_types(sample("01_labm_nfs.hl7"), "NE" if mode == "accept" else "",
                            "AL" if mode == "accept" else "", "S1")
    quick = _with_ack_types(sample("03_synlab_iono_creatinine.hl7"),
                            *(("", "") if mode == "accept" else ("AL", "NE")), "S2")
    beside = _with_ack_types(sample("05_chu_hba1c.hl7"), "", "", "S3")
    try:
        with running_service(ctx) as svc, Client(svc.port) as slow, \
                Client(svc.port) as other, Client(svc.port) as third:
            slow.sock.sendall(VT + first + FS + CR)
            assert held.wait(60)
            ack = other.send(quick)
            assert msa(ack, "latin-1")[1:3] == ["AA" if mode == "accept" else "CA", "S2"]
            if mode == "application":
                assert msa(third.send(beside), "latin-1")[1:3] == ["AA", "S3"]
            assert not let_go.is_set(), "the other ACKs waited for the slow processing"
            gate.set()
            assert msa(read_frame(slow.sock, slow.buffer), "latin-1")[1:3] == ["AA", "S1"]
    finally:
        gate.set()
        ctx.engine.dispose()


# (MSH-15, MSH-16, the ACK codes of a message processed at once and found invalid, on the
# connection: after a commit ACK the application ACK is held, no return route declared)
APPLICATION_MODE_ACKS = [
    ("AL", "AL", ["CA"]), ("NE", "ER", ["AE"]), ("NE", "SU", []), ("SU", "AL", ["CA"]),
    ("ER", "ER", ["AE"]), ("AL", "NE", ["CA"]),  # NE: left to the worker, no application ACK
    ("AL", "", ["CA"]),  # no application ACK asked: not an AA for a message not processed
]


def test_msh_15_and_16_decide_the_acks_in_application_mode(tmp_path, database_url) -> None:  # noqa: ANN001, E501
    ctx = make_ctx(tmp_path, database_url, ack_mode="application")
    data = sample("20_casse_nm_non_numerique.hl7")
    try:
        with running_service(ctx) as svc, Client(svc.port) as client:
            for n, (accept, application, expected) in enumerate(APPLICATION_MODE_ACKS):
                control_id = f"E{n}"
                got = _answers_to(client, _with_ack_types(data, accept, application,
                                                          control_id))
                assert got == [[code, control_id] for code in expected], (accept, application)
    finally:
        ctx.engine.dispose()


def test_retransmission_is_acknowledged_again_and_files_nothing_twice(ctx) -> None:  # noqa: ANN001
    data = original_mode(sample("03_synlab_iono_creatinine.hl7"))
    with running_service(ctx) as svc:
        with Client(svc.port) as client:
            assert msa(client.send(data))[1] == "AA"
        with Client(svc.port) as client:  # the sender reconnects after a lost ACK
            assert msa(client.send(data))[1] == "AA"
        wait_processed(ctx)
    assert statuses(ctx) == {"deposited": 1, "duplicate": 1}
    with ctx.engine.connect() as conn:
        keys = conn.execute(select(entries.c.key).where(entries.c.current)).scalars().all()
    assert len(keys) == len(set(keys)) > 0


def test_unknown_sender_and_wrong_peer_are_refused_and_recorded(tmp_path, database_url) -> None:  # noqa: ANN001
    import ipaddress

    sources = (Source("labm", "LABM", "CERBALLIANCE_LYON"),
               Source("synlab", "SYNLAB", "*", peers=(ipaddress.ip_network("10.0.0.0/8"),)))
    ctx = make_ctx(tmp_path, database_url, sources=sources)
    with running_service(ctx) as svc, Client(svc.port) as client:
        ack = client.send(original_mode(sample("06_bioazur_iono_vitd.hl7")), )
        assert msa(ack, "latin-1")[1] == "AR"
        err = segment(ack, "ERR", "latin-1")
        assert err[3].startswith("204^") and "MLLP_UNKNOWN_SENDER" in err[8]
        ack = client.send(original_mode(sample("03_synlab_iono_creatinine.hl7")))
        assert msa(ack)[1] == "AR" and "MLLP_PEER_NOT_ALLOWED" in segment(ack, "ERR")[8]
        assert msa(client.send(original_mode(sample("01_labm_nfs.hl7"))))[1] == "AA"
        wait_processed(ctx)
    with ctx.engine.connect() as conn:
        rows = conn.execute(select(imports.c.source, imports.c.status, imports.c.error_code)
                            .order_by(imports.c.id)).all()
    assert [tuple(r) for r in rows] == [
        ("unknown", "failed", "MLLP_UNKNOWN_SENDER"),
        ("synlab", "failed", "MLLP_PEER_NOT_ALLOWED"),
        ("labm", "deposited", None)]
    ctx.engine.dispose()


def test_refusal_is_the_application_ack_when_msh_15_asks_no_commit_ack(tmp_path,  # noqa: ANN001
                                                                         database_url) -> None:
    """MSH-15 NE (or SU) keeps the commit reject back, MSH-16 AL or ER asks for an
    application ACK: an unknown sender's message was answered nothing at all, and its engine
    waited for an application ACK that never comes (the message is never processed). It
    gets AR with the reason; NE/NE still gets nothing, as asked, and ER/AL its CR alone."""
    sources = (Source("labm", "LABM", "CERBALLIANCE_LYON"),)
    ctx = make_ctx(tmp_path, database_url, sources=sources)
    unknown = sample("06_bioazur_iono_vitd.hl7")
    try:
        with running_service(ctx) as svc, Client(svc.port) as client:
            ack = client.send(_with_ack_types(unknown, "NE", "AL", "U1"))
            assert msa(ack, "latin-1")[1:3] == ["AR", "U1"]
            err = segment(ack, "ERR", "latin-1")
            assert err[3].startswith("204^") and err[8].startswith("MLLP_UNKNOWN_SENDER")
            for accept, application, control_id, expected in (
                    ("SU", "ER", "U2", ["AR"]), ("NE", "NE", "U3", []),
                    ("ER", "AL", "U4", ["CR"]), ("NE", "SU", "U5", [])):
                got = _answers_to(client, _with_ack_types(unknown, accept, application,
                                                          control_id))
                assert got == [[code, control_id] for code in expected], control_id
    finally:
        ctx.engine.dispose()


def test_refused_message_sent_again_from_an_allowed_peer_is_filed(tmp_path, database_url) -> None:  # noqa: ANN001, E501
    """A refusal is not an original for dedupe: the same bytes, now allowed, are processed."""
    import ipaddress

    sources = (Source("labm", "LABM", "*", peers=(ipaddress.ip_network("127.0.0.2/32"),)),)
    ctx = make_ctx(tmp_path, database_url, sources=sources)
    data = original_mode(sample("01_labm_nfs.hl7"))
    with running_service(ctx) as svc:
        with Client(svc.port) as client:
            assert msa(client.send(data))[1] == "AR"
        with Client(svc.port, source="127.0.0.2") as client:
            assert msa(client.send(data))[1] == "AA"
        wait_processed(ctx)
    assert statuses(ctx) == {"failed": 1, "deposited": 1}
    ctx.engine.dispose()


def test_application_mode_answers_after_processing(tmp_path, database_url) -> None:  # noqa: ANN001
    ctx = make_ctx(tmp_path, database_url, ack_mode="application")
    with running_service(ctx, process=False) as svc, Client(svc.port) as client:
        ok = client.send(original_mode(sample("01_labm_nfs.hl7")))
        assert msa(ok)[1] == "AA"
        with ctx.engine.connect() as conn:  # processed before the ACK, no worker running
            assert conn.execute(select(imports.c.status)).scalar_one() == "deposited"
        bad = client.send(original_mode(sample("20_casse_nm_non_numerique.hl7")))
        assert msa(bad)[1] == "AE"
        err = segment(bad, "ERR")
        assert err[2] == "OBX^2^5^1" and err[3].startswith("102^") and err[4] == "E"
        assert err[8].startswith("OBX_BAD_NUMBER")
        # ADT are read now (consent, identity, merges since identity round 6); an identifier
        # move (A43) is read since ADT round 20; a person merge (A30) is still refused: 201, a
        # trigger of a type we read
        merge = sample("23_casse_adt_a01.hl7").replace(b"ADT^A01^ADT_A01", b"ADT^A30^ADT_A30")
        adt = client.send(original_mode(merge))
        fields = msa(adt, "latin-1")
        assert fields[1] == "AR" and segment(adt, "ERR", "latin-1")[3].startswith("201^")
        quarantined = client.send(original_mode(sample("11_labm_patient_inconnu.hl7")))
        assert msa(quarantined)[1] == "AA"  # held for an admin: accepted
    assert statuses(ctx) == {"deposited": 1, "failed": 2, "quarantined": 1}
    ctx.engine.dispose()


def test_empty_control_id(tmp_path, database_url) -> None:  # noqa: ANN001
    """MSH-10 empty: stored and answered AE with MSA-2 empty (there is nothing to echo),
    ERR 101 at MSH^1^10^1, in both modes (accept mode refuses it from its header since
    round 12: it answered AA, and processing failed the message unseen). Never a dropped
    frame."""
    for mode, name, expected in (("accept", "01_labm_nfs.hl7", "AE"),
                                 ("application", "03_synlab_iono_creatinine.hl7", "AE")):
        data = _with_ack_types(sample(name), "", "", "")  # one store for both: two messages
        ctx = make_ctx(tmp_path / mode, database_url, ack_mode=mode)
        try:
            with running_service(ctx, process=False) as svc, Client(svc.port) as client:
                ack = client.send(data)
            assert msa(ack)[1:3] == [expected, ""], mode
            err = segment(ack, "ERR")
            assert err[2:5] == ["MSH^1^10^1", "101^Required field missing^HL70357", "E"]
            assert err[8].startswith("HL7_NO_CONTROL_ID")
        finally:
            ctx.engine.dispose()


def test_application_mode_resend_of_a_failed_message_is_answered_as_it_was(tmp_path,  # noqa: ANN001
                                                                         database_url) -> None:
    """A sender that lost our AE (its connection dropped) sends the same bytes again: the
    repeat is recorded as a duplicate and was answered AA, as if the message had been filed.
    It gets the AE again, with the same ERR; a repeat of a filed message still gets AA."""
    ctx = make_ctx(tmp_path, database_url, ack_mode="application")
    bad = original_mode(sample("20_casse_nm_non_numerique.hl7"))
    good = original_mode(sample("01_labm_nfs.hl7"))
    try:
        with running_service(ctx, process=False) as svc:
            acks = []
            for data in (bad, good, bad, good):
                with Client(svc.port) as client:  # a new connection for each, as after a drop
                    acks.append(client.send(data))
        assert [msa(a)[1] for a in acks] == ["AE", "AA", "AE", "AA"]
        assert segment(acks[2], "ERR")[2:] == segment(acks[0], "ERR")[2:]
        assert segment(acks[2], "ERR")[2] == "OBX^2^5^1"
        with ctx.engine.connect() as conn:
            rows = conn.execute(select(imports.c.status, imports.c.duplicate_of)
                                .order_by(imports.c.id)).all()
        assert [r.status for r in rows] == ["failed", "deposited", "duplicate", "duplicate"]
    finally:
        ctx.engine.dispose()


def test_application_mode_message_left_unprocessed_is_not_answered_aa(  # noqa: ANN001
        tmp_path, database_url, monkeypatch) -> None:
    """The store goes away between storing a message and processing it (it stays claimed,
    for a worker to finish): it was answered AA as if filed. It gets AR 207, send again
    later. (A resend is then a duplicate of a stored message, answered AA as a restarted
    listener's backlog is.)"""
    from pipelines.ledger import release_claims

    ctx = make_ctx(tmp_path, database_url, ack_mode="application")
    data = original_mode(sample("01_labm_nfs.hl7"))

    def store_gone(*_: object) -> None:
        raise ConnectionError("the store went away")

    monkeypatch.setattr("pipelines.acknowledge.process_claimed", store_gone)
    try:
        with running_service(ctx, process=False) as svc, Client(svc.port) as client:
            ack = client.send(data)
        assert msa(ack)[1:3] == ["AR", "RB2501140000001"]
        err = segment(ack, "ERR")
        assert err[3].startswith("207^") and err[8].startswith("DMP_PROCESSING_DEFERRED")
        assert statuses(ctx) == {"processing": 1}
        monkeypatch.undo()
        release_claims(ctx.engine, f"{ctx.settings.worker_id}/")  # as a restart does
        with running_service(ctx) as svc, Client(svc.port) as client:
            wait_processed(ctx)
            assert msa(client.send(data))[1] == "AA"
        assert statuses(ctx) == {"deposited": 1, "duplicate": 1}
    finally:
        ctx.engine.dispose()


def test_application_mode_truncated_batch_reports_its_envelope_problem(tmp_path, database_url) -> None:  # noqa: ANN001, E501
    """A batch whose BTS-1 announces 3 messages and holds 2 (one lost on the way): both are
    filed and each is answered AA in the response batch, whose BTS-1 counts 2 ACKs and whose
    batch comments (BHS-10, BTS-2) name the problem; the lost message has no ACK, which is
    how the sender learns it is missing (v2.5 2.10.3.3 a). Before batch ACKs the one ACK
    answering the first message was AE at the BTS segment's count field."""
    ctx = make_ctx(tmp_path, database_url, ack_mode="application")
    truncated = sample("16_chu_batch_tronque.hl7").replace(b"|AL|NE|", b"|||")
    whole = sample("15_chu_batch.hl7").replace(b"|AL|NE|", b"|||")
    with running_service(ctx, process=False) as svc, Client(svc.port) as client:
        ack = client.send(truncated)
        complete = client.send(whole)
    lines = [s.split("|") for s in ack.decode("latin-1").split("\r") if s]
    assert [f[0] for f in lines] == ["BHS", "MSH", "MSA", "MSH", "MSA", "BTS"]
    assert [f[1:3] for f in lines if f[0] == "MSA"] == [["AA", "RB2512030000005"],
                                                        ["AA", "RB2512030000006"]]
    bts, bhs = lines[-1], lines[0]
    assert bts[1] == "2"
    assert bts[2].startswith("HL7_BATCH_COUNT_MISMATCH: BTS-1 announces 3 messages, 2")
    assert bhs[9] == bts[2] and bhs[11] == "BRB0002"
    complete_lines = [s.split("|") for s in complete.decode("latin-1").split("\r") if s]
    assert [f[1] for f in complete_lines if f[0] == "MSA"] == ["AA"] * 3
    assert complete_lines[-1] == ["BTS", "3"]
    with ctx.engine.connect() as conn:
        rows = conn.execute(select(imports.c.status, imports.c.error_code)
                            .order_by(imports.c.id)).all()
    assert [tuple(r) for r in rows] == [("failed", "HL7_BATCH_COUNT_MISMATCH"),
                                        ("deposited", None), ("deposited", None),
                                        ("split", None), *[("deposited", None)] * 3]
    ctx.engine.dispose()


_M = b"MSH|^~\\&|GLIMS|CHU_RENNES|||20251203||ORU^R01|X|P|2.5\r"


@pytest.mark.parametrize(("frame", "code", "location"), [
    (b"BHS|^~\\&\r" + _M + b"BTS|1\rBHS|^~\\&\r" + _M + b"BTS|2\r",
     "HL7_BATCH_COUNT_MISMATCH", "BTS[2]-1"),
    (b"FHS|^~\\&\nBHS|^~\\&\n" + _M + b"BTS|1\nFTS|3\n", "HL7_BATCH_COUNT_MISMATCH",
     "FTS[1]-1"),
    (b"BHS|^~\\&\r" + _M, "HL7_BATCH_TRUNCATED", "BHS[1]"),
    (b"BHS|^~\\&\r" + _M + b"BTS|one\r", "HL7_BATCH_BAD_COUNT", "BTS[1]-1"),
])
def test_batch_problem_outcome_names_its_envelope_segment(frame, code, location) -> None:  # noqa: ANN001
    from parsers.hl7v2.framing import split_batch
    from pipelines.acknowledge import _batch_outcome, ack_rules

    status, got_code, _, got_location = _batch_outcome(frame, split_batch(frame).problems)
    assert (status, got_code, got_location) == ("failed", code, location)
    assert ack_rules()[code].ack == "AE"  # the sender's to fix, not our internal error


def test_application_mode_enhanced_commit_then_application_ack(tmp_path, database_url) -> None:  # noqa: ANN001, E501
    """A source declared to read both replies on its connection (``ack_same_connection``)."""
    ctx = make_ctx(tmp_path, database_url, ack_mode="application",
                   sources=(Source("labs", ack_same_connection=True),))
    data = sample("20_casse_nm_non_numerique.hl7").replace(b"|AL|NE|", b"|AL|AL|", 1)
    with running_service(ctx, process=False) as svc, Client(svc.port) as client:
        commit = client.send(data)
        assert msa(commit)[1] == "CA"
        application = read_frame(client.sock, client.buffer)
        assert msa(application)[1] == "AE"
        # MSH-16 NE: the commit ACK only, the worker files it later
        assert msa(client.send(sample("01_labm_nfs.hl7")))[1] == "CA"
    ctx.engine.dispose()


def _with_msh(data: bytes, **fields: str) -> bytes:
    """``data`` with MSH fields replaced: ``f9="ORU^R01"`` sets MSH-9."""
    first, _, rest = data.partition(b"\r")
    parts = first.split(b"|")
    for name, value in fields.items():
        parts[int(name[1:]) - 1] = value.encode()
    return b"|".join(parts) + b"\r" + rest


# How engines head their messages, and what our ACK's MSH-9, -11, -12 and MSA-2 must be
# (MSH-9.3, the message structure, exists from v2.3.1 on; MSA-2 echoes MSH-10 whole even
# past ST's 20 characters: engines match ACKs on it; HD subcomponents swapped as sent)
HEADER_STYLES = [
    ({"f12": "2.3", "f9": "ORU^R01"}, "ACK^R01", "P", "2.3"),
    ({"f12": "2.3.1", "f9": "ORU^R01"}, "ACK^R01^ACK", "P", "2.3.1"),
    ({"f12": "2.4", "f11": "T"}, "ACK^R01^ACK", "T", "2.4"),
    ({"f12": "2.5.1", "f11": "P^T"}, "ACK^R01^ACK", "P^T", "2.5.1"),
    ({"f12": "2.5^FRA^2.1", "f11": "D"}, "ACK^R01^ACK", "D", "2.5^FRA^2.1"),
    ({"f9": "ORU"}, "ACK", "P", "2.5"),
    ({"f10": "LAB-2026-11-26-000000000001"}, "ACK^R01^ACK", "P", "2.5"),
    ({"f3": "LABM&1.2.250.1.71.4.2.2&ISO", "f4": "CERBALLIANCE_LYON&1.2.250.1&ISO"},
     "ACK^R01^ACK", "P", "2.5"),
]


@pytest.mark.parametrize(("fields", "msh9", "msh11", "msh12"), HEADER_STYLES)
def test_ack_header_in_the_sender_s_version_and_style(tmp_path, database_url, fields, msh9,  # noqa: ANN001
                                                      msh11, msh12) -> None:
    """Over a socket, each message preceded by a BOM (some Windows senders) and answered
    in its own terms: checked right, kept right. On a listener declared for test traffic
    (MSH-11 T and D; a production one refuses them: test_mllp_senders_round5.py)."""
    data = _with_msh(original_mode(sample("01_labm_nfs.hl7")), **fields)
    received = data.split(b"\r", 1)[0].decode().split("|")
    ctx = make_ctx(tmp_path, database_url, processing_ids=("P", "T", "D"))
    with running_service(ctx, process=False) as svc, Client(svc.port) as client:
        ack = client.send(b"\xef\xbb\xbf" + data)
    ctx.engine.dispose()
    msh = segment(ack, "MSH")
    assert (msh[8], msh[10], msh[11]) == (msh9, msh11, msh12)
    assert msh[2:6] == [received[4], received[5], received[2], received[3]]
    assert len(msh[9]) <= 20 and msh[9] != received[9]
    assert msa(ack)[1:3] == ["AA", received[9]]


def _frames_of(messages: list[bytes], end: bytes = FS + CR, between: bytes = b"") -> bytes:
    return b"".join(between + VT + m + end for m in messages)


# What real senders put on the wire, each with the messages it carries: (name, how to send
# them as a list of TCP writes, whether the sender half-closes after its last write).
SENDER_QUIRKS = [
    ("FS without CR", lambda ms: [VT + m + FS for m in ms], False),
    ("CR LF after FS", lambda ms: [VT + m + FS + CR + b"\n" for m in ms], False),
    ("LF between segments", lambda ms: [_frames_of([m.replace(CR, b"\n") for m in ms])],
     False),
    ("CR LF between segments", lambda ms: [_frames_of([m.replace(CR, b"\r\n") for m in ms])],
     False),
    ("NULs and line ends before VT", lambda ms: [_frames_of(ms, between=b"\x00\x00\r\n")],
     False),
    ("FS then the next VT at once", lambda ms: [_frames_of(ms, end=FS)], False),
    ("two frames in one packet", lambda ms: [_frames_of(ms)], False),
    ("one frame over many packets",
     lambda ms: [f[i:i + 61] for f in (_frames_of([m]) for m in ms) for i in range(0, len(f),
                                                                                  61)], False),
    ("half-close after the last frame", lambda ms: [_frames_of([m]) for m in ms], True),
]


def test_real_sender_quirks_over_a_socket(ctx) -> None:  # noqa: ANN001
    """Each quirk on a connection of its own, over a real socket with Nagle off and a pause
    between writes (so that a split in the list is a packet on the wire), both messages
    written before any ACK is read (a pipelining sender): every message is answered AA, in
    order, with its MSH-10, then filed once; a half-closing sender still gets its ACKs
    before the listener closes its side."""
    from samples.generate import Traffic

    traffic = iter(Traffic(11, patients=20, corrections=0, duplicates=0))
    sent: list[tuple[str, list[bytes], list[bytes]]] = []
    with running_service(ctx) as svc:
        for name, writes, half_close in SENDER_QUIRKS:
            messages = [original_mode(next(traffic).replace(b"\n", b"\r")) for _ in range(2)]
            with socket.create_connection(("127.0.0.1", svc.port), timeout=10) as sock:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                for chunk in writes(messages):
                    sock.sendall(chunk)
                    time.sleep(0.002)
                if half_close:
                    sock.shutdown(socket.SHUT_WR)
                buffer = bytearray()
                acks = [read_frame(sock, buffer) for _ in messages]
                if half_close:
                    assert read_frame(sock, buffer) is None, name
            sent.append((name, messages, acks))
        wait_processed(ctx)
    for name, messages, acks in sent:
        assert None not in acks, name
        assert [msa(a, "latin-1")[1:3] for a in acks] == [
            ["AA", m.split(b"|", 10)[9].decode()] for m in messages], name
    counts = statuses(ctx)  # generated patients have no dossier: held for an admin
    assert sum(counts.values()) == 2 * len(SENDER_QUIRKS), counts
    assert set(counts) <= {"deposited", "quarantined"}, counts


def test_concurrent_keep_alive_connections(ctx) -> None:  # noqa: ANN001
    from samples.generate import Traffic

    traffic = iter(Traffic(7, patients=20, corrections=0, duplicates=0))
    per_client = [[original_mode(next(traffic).replace(b"\n", b"\r")) for _ in range(25)]
                  for _ in range(8)]
    codes: list[str] = []
    errors: list[BaseException] = []

    def run(port: int, messages: list[bytes]) -> None:
        try:
            with Client(port) as client:
                for m in messages:
                    codes.append(msa(client.send(m), "latin-1")[1])
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    with running_service(ctx) as svc:
        threads = [threading.Thread(target=run, args=(svc.port, m)) for m in per_client]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        wait_processed(ctx)
    assert not errors and codes == ["AA"] * 200
    counts = statuses(ctx)
    assert sum(counts.values()) == 200 and "failed" not in counts


def test_bad_frames_do_not_stop_other_clients(ctx) -> None:  # noqa: ANN001
    ok = original_mode(sample("01_labm_nfs.hl7"))
    with running_service(ctx) as svc:
        garbage = socket.create_connection(("127.0.0.1", svc.port))
        noise = bytes(b for b in range(256) if b not in (0x0B, 0x1C)) * 10
        garbage.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + noise)
        half_open = socket.create_connection(("127.0.0.1", svc.port))
        half_open.sendall(b"\x0bMSH|^~\\&|LABM|CERBALLIANCE_LYON|")  # never finished
        with Client(svc.port) as client:
            # noise and an abandoned frame before a good one, on the same connection
            client.sock.sendall(b"noise\r\n\x0bMSH|^~\\&|cut short")
            assert msa(client.send(ok))[1] == "AA"
            not_hl7 = client.send(b"this is not HL7 at all")
            assert msa(not_hl7)[1] == "AR" and "HL7_NO_MSH" in segment(not_hl7, "ERR")[8]
        garbage.close()
        half_open.close()
        with Client(svc.port) as client:
            assert msa(client.send(original_mode(sample("03_synlab_iono_creatinine.hl7"))))[1] \
                == "AA"
        wait_processed(ctx)
    counts = statuses(ctx)
    assert counts == {"deposited": 2, "failed": 1}


def test_unusable_encoding_characters_are_refused_answering_the_control_id(ctx) -> None:  # noqa: ANN001, E501
    """Sample 18 (MSH-2 '^^\\&': '^' twice) was refused as 'no readable MSH' with an empty
    MSA-2, which a sender matching ACKs on MSA-2 (Hl7Client, HAPI) drops, then waits and
    sends again. It is now refused naming MSH-2, answering its MSH-10, recorded under its
    declared source."""
    bad = sample("18_casse_delimiteurs.hl7")
    with running_service(ctx) as svc, Client(svc.port) as client:
        enhanced = client.send(bad)  # AL/NE: the commit ACK, a reject
        original = client.send(original_mode(bad).replace(b"|RB2503120000009|", b"|RB25-2|"))
    assert msa(enhanced)[1:3] == ["CR", "RB2503120000009"]
    # AE, not AR (table 0008: AR invites sending it again unchanged; round 11)
    assert msa(original)[1:3] == ["AE", "RB25-2"]
    for ack in (enhanced, original):
        assert ack.startswith(b"MSH|^~\\&|DMP-INTAKE|DMP|LABM|CERBALLIANCE_LYON^690041231^M|")
        err = segment(ack, "ERR")
        assert err[2:5] == ["MSH^1^2^1", "102^Data type error^HL70357", "E"]
        assert err[8].startswith("HL7_BAD_ENCODING_CHARS: MSH-1/MSH-2")
    with ctx.engine.connect() as conn:
        rows = conn.execute(select(imports.c.status, imports.c.error_code,
                                   imports.c.source)).all()
    assert [tuple(r) for r in rows] == [("failed", "HL7_BAD_ENCODING_CHARS", "labs")] * 2


def test_unsupported_message_type_is_refused_from_its_header(ctx) -> None:  # noqa: ANN001
    """An order (ORM^O01) or an identifier move (ADT^A43) to this intake was answered AA/CA in
    accept mode and failed later, unseen by its sender. HL7 v2.5 2.9.2 has the receiver
    check MSH-9 before accepting: AR (CR in enhanced mode) with ERR at MSH-9, recorded
    under its source: 200 for a message type not read, 201 for a trigger not read of a type
    that is (the sender's engine tells the two apart); the supported types on the same
    connection are accepted as before."""
    order = sample("01_labm_nfs.hl7").replace(b"ORU^R01^ORU_R01", b"ORM^O01^ORM_O01", 1)
    # (an ADT^A40 merge was the example until identity round 6, which reads it, and an
    # identifier move ADT^A43 until ADT round 20)
    merge = original_mode(sample("23_casse_adt_a01.hl7").replace(b"ADT^A01^ADT_A01",
                                                                 b"ADT^A30^ADT_A30", 1))
    with running_service(ctx) as svc, Client(svc.port) as client:
        refused = [client.send(order), client.send(merge)]
        accepted = client.send(original_mode(sample("03_synlab_iono_creatinine.hl7")))
        wait_processed(ctx)
    assert [msa(a, "latin-1")[1] for a in refused] == ["CR", "AR"]  # AL/NE, original mode
    assert segment(refused[0], "MSH")[8] == "ACK^O01^ACK"
    expected = [("200^Unsupported message type^HL70357", "HL7_UNSUPPORTED_TYPE"),
                ("201^Unsupported event code^HL70357", "HL7_UNSUPPORTED_EVENT")]
    for ack, (hl7_code, code) in zip(refused, expected, strict=True):
        err = segment(ack, "ERR", "latin-1")
        assert err[2:5] == ["MSH^1^9^1", hl7_code, "E"]
        assert err[8].startswith(f"{code}: message type ")
    assert msa(accepted)[1] == "AA"
    with ctx.engine.connect() as conn:
        rows = conn.execute(select(imports.c.status, imports.c.error_code, imports.c.source)
                            .order_by(imports.c.id)).all()
    assert [tuple(r) for r in rows] == [("failed", "HL7_UNSUPPORTED_TYPE", "labs"),
                                        ("failed", "HL7_UNSUPPORTED_EVENT", "labs"),
        ("deposited", None, "labs")]


def _dispatch_cases() -> list[tuple[str, str]]:
    from normalizers.adt import CHANGE_IDENTIFIER, adt_triggers
    from normalizers.lab.dispatch import HANDLED

    return sorted({*HANDLED, *(("ADT", t) for t in adt_triggers()),
                   ("ADT", CHANGE_IDENTIFIER), ("ORU", ""), ("ORM", "O01"), ("ADT", "A40"),
                   ("ADT", "A18"), ("ADT", "A43"),
                   ("QRY", "A19"), ("ACK", "R01"), ("MDM", "T01"), ("ORU", "R99"), ("", ""),
                   ("oru", "r01")})


@pytest.mark.parametrize(("kind", "trigger"), _dispatch_cases())
def test_listener_type_check_agrees_with_the_normalizer_dispatch(kind, trigger) -> None:  # noqa: ANN001
    """The listener refuses from MSH-9 alone exactly the types normalize_message refuses at
    MSH-9: a type added to the dispatch is accepted by the listener too."""
    from normalizers.lab import handles_message_type, normalize_message
    from normalizers.model import NormalizationError
    from parsers.hl7v2 import HL7ParseError, parse_message

    data = (f"MSH|^~\\&|LABM|CERB|DMP|DMP|20250114114200+0100||{kind}^{trigger}|C1|P|2.5\r"
            "PID|1||4100001127^^^CERBA&2.999.250.1.1&ISO^PI||Béranger^Hélène\r").encode()
    try:
        normalize_message(parse_message(data), "labs")
        refused = False
    except NormalizationError as exc:
        refused = exc.code in UNSUPPORTED_CODES and exc.location == "MSH-9"
    except HL7ParseError:
        refused = False
    assert handles_message_type(kind, trigger) is not refused


def test_oversize_frame_is_refused_and_the_connection_goes_on(tmp_path, database_url) -> None:  # noqa: ANN001
    ctx = make_ctx(tmp_path, database_url, max_frame_bytes=20_000)
    big = original_mode(sample("01_labm_nfs.hl7")) + b"NTE|1||" + b"x" * 50_000 + b"\r"
    with running_service(ctx) as svc, Client(svc.port) as client:
        ack = client.send(big)
        assert msa(ack)[1:3] == ["AR", "RB2501140000001"]
        assert "MLLP_FRAME_TOO_LARGE" in segment(ack, "ERR")[8]
        assert msa(client.send(original_mode(sample("03_synlab_iono_creatinine.hl7"))))[1] \
            == "AA"
        wait_processed(ctx)
    with ctx.engine.connect() as conn:
        row = conn.execute(select(imports).where(imports.c.error_code.is_not(None))).one()
    assert row.status == "failed" and row.error_code == "MLLP_FRAME_TOO_LARGE"
    assert row.size == len(big)  # the real size; only the head is archived
    ctx.engine.dispose()


def test_oversize_frame_in_enhanced_mode_is_a_commit_reject(tmp_path, database_url) -> None:  # noqa: ANN001, E501
    """An oversize message asking for enhanced mode (AL/NE) got CE, the commit error that
    tells its sender to send it again later (its ERR code, 207, was taken for 'not
    stored'): it would be sent again, forever. It is CR: refused, not to be resent as is;
    only a group that could not be stored gets CE."""
    ctx = make_ctx(tmp_path, database_url, max_frame_bytes=20_000)
    big = sample("01_labm_nfs.hl7") + b"NTE|1||" + b"x" * 50_000 + b"\r"
    try:
        with running_service(ctx) as svc, Client(svc.port) as client:
            ack = client.send(big)
        assert msa(ack)[1:3] == ["CR", "RB2501140000001"]
        assert "MLLP_FRAME_TOO_LARGE" in segment(ack, "ERR")[8]
    finally:
        ctx.engine.dispose()


def test_idle_connection_is_closed(tmp_path, database_url) -> None:  # noqa: ANN001
    ctx = make_ctx(tmp_path, database_url, idle_timeout=0.3)
    with running_service(ctx) as svc:
        sock = socket.create_connection(("127.0.0.1", svc.port))
        sock.settimeout(60)  # a bound, not the expected delay: recv returns at the close
        assert sock.recv(10) == b""  # closed by the server
        sock.close()
    ctx.engine.dispose()


class FlakyArchive:
    """The real archive, or a full disk while ``down``."""

    def __init__(self, real) -> None:  # noqa: ANN001
        self.real, self.down = real, True

    def put(self, data: bytes) -> str:
        self._check()
        return self.real.put(data)

    def put_many(self, items: list) -> None:
        self._check()
        self.real.put_many(items)

    def get(self, sha: str) -> bytes:
        return self.real.get(sha)

    def _check(self) -> None:
        if self.down:
            raise ArchiveError("archive write failed (No space left on device)")


def test_no_aa_when_the_message_cannot_be_stored(ctx) -> None:  # noqa: ANN001
    ctx.archive = archive = FlakyArchive(ctx.archive)
    with running_service(ctx) as svc, Client(svc.port) as client:
        ack = client.send(original_mode(sample("01_labm_nfs.hl7")))
        assert msa(ack)[1] == "AR"
        assert segment(ack, "ERR")[3].startswith("207^")
        commit = client.send(sample("03_synlab_iono_creatinine.hl7"))  # enhanced: CE
        assert msa(commit)[1] == "CE"
        # no commit ACK asked, an application ACK asked: AR 207, never silence
        alone = client.send(_with_ack_types(sample("03_synlab_iono_creatinine.hl7"), "NE",
                                            "AL", "NS1"))
        assert msa(alone)[1:3] == ["AR", "NS1"] and segment(alone, "ERR")[3].startswith("207^")
        assert statuses(ctx) == {}  # nothing recorded that is not stored
        archive.down = False  # the outage ends: the resend is stored
        assert msa(client.send(original_mode(sample("01_labm_nfs.hl7"))))[1] == "AA"
        wait_processed(ctx)
    assert statuses(ctx) == {"deposited": 1}


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory) -> dict[str, Path]:  # noqa: ANN001
    """A CA, a server certificate for 127.0.0.1 and a client certificate (openssl)."""
    d = tmp_path_factory.mktemp("tls")

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
        "-days", "2", "-subj", "/CN=test-ca")
    for name in ("server", "client"):
        run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out",
            f"{name}.csr", "-subj", f"/CN={name}")
        (d / f"{name}.ext").write_text("subjectAltName=IP:127.0.0.1\n")
        run("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext")
    return {n: d / n for n in ("ca.pem", "server.pem", "server.key", "client.pem",
                               "client.key")}


def test_tls_with_client_certificates(tmp_path, tls_files, sqlite_template) -> None:  # noqa: ANN001
    ctx = make_ctx(tmp_path, migrated_sqlite(sqlite_template, tmp_path / "tls.sqlite3"),
                   tls_cert=tls_files["server.pem"], tls_key=tls_files["server.key"],
                   tls_client_ca=tls_files["ca.pem"])
    data = original_mode(sample("01_labm_nfs.hl7"))
    with running_service(ctx) as svc:
        context = ssl.create_default_context(cafile=str(tls_files["ca.pem"]))
        context.load_cert_chain(str(tls_files["client.pem"]), str(tls_files["client.key"]))
        with socket.create_connection(("127.0.0.1", svc.port)) as raw, \
                context.wrap_socket(raw, server_hostname="127.0.0.1") as sock:
            sock.sendall(b"\x0b" + data + b"\x1c\r")
            assert msa(read_frame(sock, bytearray()))[1] == "AA"
        # without a client certificate the handshake is refused; the listener goes on
        anonymous = ssl.create_default_context(cafile=str(tls_files["ca.pem"]))
        with socket.create_connection(("127.0.0.1", svc.port)) as raw:
            try:  # TLS 1.3: the refusal arrives after the client's side of the handshake
                with anonymous.wrap_socket(raw, server_hostname="127.0.0.1") as sock:
                    sock.sendall(b"\x0b" + data + b"\x1c\r")
                    got = sock.recv(100)
            except (ssl.SSLError, ConnectionError):
                got = b""
            assert got == b""  # no ACK: the connection was refused
        with socket.create_connection(("127.0.0.1", svc.port)) as raw, \
                context.wrap_socket(raw, server_hostname="127.0.0.1") as sock:
            sock.sendall(b"\x0b" + original_mode(sample("03_synlab_iono_creatinine.hl7"))
                         + b"\x1c\r")
            assert msa(read_frame(sock, bytearray()))[1] == "AA"
    ctx.engine.dispose()


def test_stop_finishes_in_flight_messages(ctx) -> None:  # noqa: ANN001
    """A stop while a client is mid-stream: every ACK it got is for a stored message."""
    from samples.generate import Traffic

    traffic = iter(Traffic(11, patients=20, corrections=0, duplicates=0))
    messages = [original_mode(next(traffic).replace(b"\n", b"\r")) for _ in range(300)]
    acked: list[str] = []
    with running_service(ctx) as svc:
        def stream() -> None:
            try:
                with Client(svc.port) as client:
                    for m in messages:
                        ack = client.send(m)
                        if ack is None:
                            return
                        assert msa(ack, "latin-1")[1] == "AA"
                        acked.append(sha256_hex(m))
            except OSError:
                return

        t = threading.Thread(target=stream)
        t.start()
        while len(acked) < 50 and t.is_alive():
            time.sleep(0.01)
        result = svc.stop()
        t.join(30)
    assert result["acks"] == len(acked) >= 50
    with ctx.engine.connect() as conn:
        stored = set(conn.execute(select(imports.c.sha256)).scalars())
    assert set(acked) <= stored
