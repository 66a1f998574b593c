"""Batches over MLLP answered with a batch (HL7 v2.5 2.10.3.3), over real sockets.

A frame that opens with BHS (or FHS) gets one frame back: BHS (sender and receiver swapped,
BHS-12 the received BHS-11), one ACK per message answering its MSH-10, BTS whose BTS-1
counts the ACKs. The rules are in pipelines/acknowledge.py; node-hl7-client's Batch and
FileBatch are in test_mllp_clients.py.
"""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from dossiers.schema import entries, imports
from pipelines.settings import Source
from tests.mllp_support import Client, running_service, statuses, wait_processed
from tests.test_mllp_service import make_ctx, original_mode, sample

BHS = b"BHS|^~\\&|GLIMS|CHU_RENNES|DMP-INTAKE|DMP|20251203061500+0100||||"
NAMES = ("01_labm_nfs.hl7", "03_synlab_iono_creatinine.hl7", "05_chu_hba1c.hl7")


def batch(messages: list[bytes], batch_id: bytes = b"B42", count: int | None = None) -> bytes:
    """A BHS ... BTS batch of ``messages`` (BTS-1 ``count``, else their number)."""
    n = len(messages) if count is None else count
    return BHS + batch_id + b"\r" + b"".join(messages) + b"BTS|%d\r" % n


def lines(answer: bytes) -> list[list[str]]:
    return [s.split("|") for s in answer.decode("latin-1").split("\r") if s]


def control_id(message: bytes) -> str:
    return message.split(b"\r", 1)[0].split(b"|")[9].decode()


@pytest.fixture
def ctx(tmp_path, database_url):  # noqa: ANN001, ANN201
    context = make_ctx(tmp_path, database_url)
    yield context
    context.engine.dispose()


def test_batch_answered_with_a_batch_and_a_resend_files_nothing_twice(ctx) -> None:  # noqa: ANN001
    """Three ORU^R01 in a BHS batch: one frame back, BHS swapping sender and receiver with
    BHS-12 = B42, an AA per message in order, BTS|3; the batch's row and its three, filed.
    The same batch again (its ACK lost): the same answer, the repeats recorded as duplicates,
    no entry twice."""
    messages = [original_mode(sample(n)) for n in NAMES]
    data = batch(messages)
    with running_service(ctx) as svc:
        with Client(svc.port) as client:
            first = client.send(data)
        wait_processed(ctx)
        with ctx.engine.connect() as conn:
            filed = conn.execute(select(func.count()).select_from(entries)).scalar_one()
        with Client(svc.port) as client:  # the sender reconnects after a lost answer
            again = client.send(data)
        wait_processed(ctx)
    for answer in (first, again):
        got = lines(answer)
        assert [f[0] for f in got] == ["BHS", *["MSH", "MSA"] * 3, "BTS"]
        assert got[0][2:6] == ["DMP-INTAKE", "DMP", "GLIMS", "CHU_RENNES"]
        assert got[0][11] == "B42" and got[0][10] != "B42"  # a control id of its own
        assert [f[1:3] for f in got if f[0] == "MSA"] == [
            ["AA", control_id(m)] for m in messages]
        assert [f[9] for f in got if f[0] == "MSH"] != [control_id(m) for m in messages]
        assert got[-1] == ["BTS", "3"]
    assert lines(first)[0][10] != lines(again)[0][10]
    assert statuses(ctx) == {"split": 2, "deposited": 3, "duplicate": 3}
    with ctx.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(entries)).scalar_one() == filed
        parts = conn.execute(select(imports.c.part, imports.c.status).where(
            imports.c.batch_of.is_not(None)).order_by(imports.c.id)).all()
    assert [tuple(p) for p in parts] == [(1, "deposited"), (2, "deposited"), (3, "deposited"),
                                         (1, "duplicate"), (2, "duplicate"), (3, "duplicate")]
    assert filed > 0


def test_application_mode_only_the_malformed_message_is_answered_ae(tmp_path,  # noqa: ANN001
                                                                    database_url) -> None:
    """Application mode, a batch whose second message has an OBX-5 that is no number: AA,
    AE with its ERR (the second OBX's field 5 of that message, table 0357 code 102), AA."""
    ctx = make_ctx(tmp_path, database_url, ack_mode="application")
    names = (NAMES[0], "20_casse_nm_non_numerique.hl7", NAMES[1])
    messages = [original_mode(sample(n)) for n in names]
    try:
        with running_service(ctx, process=False) as svc, Client(svc.port) as client:
            got = lines(client.send(batch(messages)))
        assert [f[0] for f in got] == ["BHS", "MSH", "MSA", "MSH", "MSA", "ERR", "MSH", "MSA",
                                       "BTS"]
        assert [f[1:3] for f in got if f[0] == "MSA"] == [
            ["AA", control_id(messages[0])], ["AE", control_id(messages[1])],
            ["AA", control_id(messages[2])]]
        err = got[5]
        assert err[2:5] == ["OBX^2^5^1", "102^Data type error^HL70357", "E"]
        assert err[8].startswith("OBX_BAD_NUMBER")
        assert got[-1] == ["BTS", "3"]
        assert statuses(ctx) == {"split": 1, "deposited": 2, "failed": 1}
    finally:
        ctx.engine.dispose()


def test_truncated_batch_in_accept_mode(ctx) -> None:  # noqa: ANN001
    """BTS-1 announces 3, two arrived: both stored and answered AA, the batch comment (BHS-10,
    BTS-2) names the problem, BTS-1 counts the two ACKs; the batch's row is failed with the
    problem's code, as before."""
    messages = [original_mode(sample(n)) for n in NAMES[:2]]
    with running_service(ctx, process=False) as svc, Client(svc.port) as client:
        got = lines(client.send(batch(messages, count=3)))
    assert [f[1] for f in got if f[0] == "MSA"] == ["AA", "AA"]
    assert got[-1][:2] == ["BTS", "2"]
    assert got[-1][2].startswith("HL7_BATCH_COUNT_MISMATCH: BTS-1 announces 3 messages, 2")
    assert got[0][9] == got[-1][2]
    with ctx.engine.connect() as conn:
        rows = conn.execute(select(imports.c.status, imports.c.error_code)
                            .order_by(imports.c.id)).all()
    assert [tuple(r) for r in rows] == [("failed", "HL7_BATCH_COUNT_MISMATCH"),
                                        ("received", None), ("received", None)]


def test_batch_without_trailer(ctx) -> None:  # noqa: ANN001
    """A BHS whose BTS never came (the frame ends after the last message): each message
    answered, the response closed by a BTS of ours whose comment says the trailer was
    missing."""
    messages = [original_mode(sample(n)) for n in NAMES[:2]]
    with running_service(ctx, process=False) as svc, Client(svc.port) as client:
        got = lines(client.send(BHS + b"B9\r" + b"".join(messages)))
    assert [f[0] for f in got] == ["BHS", "MSH", "MSA", "MSH", "MSA", "BTS"]
    assert got[-1][:2] == ["BTS", "2"] and got[-1][2].startswith("HL7_BATCH_TRUNCATED: ")


def test_empty_batch_gets_an_empty_batch(ctx) -> None:  # noqa: ANN001
    """BHS BTS|0 (a periodic submission with nothing to send, 2.10.3): answered BHS BTS|0;
    the ledger records the frame as the folder intake records the same bytes: a batch row
    'split' into nothing, noted HL7_EMPTY_BATCH, not a failure."""
    with running_service(ctx, process=False) as svc, Client(svc.port) as client:
        got = lines(client.send(BHS + b"B0\rBTS|0\r"))
    assert [f[0] for f in got] == ["BHS", "BTS"]
    assert got[0][2:6] == ["DMP-INTAKE", "DMP", "GLIMS", "CHU_RENNES"] and got[0][11] == "B0"
    assert got[1] == ["BTS", "0"]
    with ctx.engine.connect() as conn:
        rows = conn.execute(select(imports.c.status, imports.c.error_code,
                                   imports.c.warnings)).all()
    assert [tuple(r) for r in rows] == [
        ("split", None, ["HL7_EMPTY_BATCH: the batch holds no message, nothing to file"])]


def test_empty_batch_of_an_unknown_sender_is_refused(tmp_path, database_url) -> None:  # noqa: ANN001
    """No MSH to read: the sender is who the BHS (or FHS) names, checked like any other."""
    from pipelines.acknowledge import envelope_sender
    from pipelines.settings import Source

    assert envelope_sender(BHS + b"B0\rBTS|0\r") == ("GLIMS", "CHU_RENNES")
    assert envelope_sender(b"\x0bFHS|^~\\&|^1.2.250.1^ISO|LAB\rBHS|^~\\&|X|Y\r") == (
        "1.2.250.1", "LAB")
    ctx = make_ctx(tmp_path, database_url, sources=(Source("labo-x", "SIL-X", "*"),))
    with running_service(ctx, process=False) as svc, Client(svc.port) as client:
        got = lines(client.send(BHS + b"B0\rBTS|0\r"))
    assert [f[0] for f in got] == ["BHS", "BTS"]
    # no message to carry an AR: the batch comment says it was refused
    assert got[1][2].startswith("MLLP_UNKNOWN_SENDER: ") and got[0][9] == got[1][2]
    assert "(BHS-" in got[1][2]  # the names were read from the BHS (the comment is cut at 80)
    with ctx.engine.connect() as conn:
        rows = conn.execute(select(imports.c.status, imports.c.error_code)).all()
    assert [tuple(r) for r in rows] == [("failed", "MLLP_UNKNOWN_SENDER")]
    ctx.engine.dispose()


def test_messages_asking_acks_on_error_only_get_an_empty_batch(ctx) -> None:  # noqa: ANN001
    """Enhanced mode, MSH-15 ER (accept ACK on error only): all stored, no ACK asked for, so
    the response batch is empty (2.10.3.3 c: an empty acknowledgment batch)."""
    messages = [sample(n).replace(b"|AL|NE|", b"|ER|NE|", 1) for n in NAMES]
    with running_service(ctx, process=False) as svc, Client(svc.port) as client:
        got = lines(client.send(batch(messages)))
    assert [f[0] for f in got] == ["BHS", "BTS"] and got[1] == ["BTS", "0"]
    assert sum(statuses(ctx).values()) == 4


def test_refused_batch_every_message_refused(tmp_path, database_url) -> None:  # noqa: ANN001
    """An undeclared sender's batch: archived whole and recorded refused, as a lone message
    is; every message in it answered AR with the reason (HL7 code 204)."""
    ctx = make_ctx(tmp_path, database_url, sources=(Source("labm", "LABM", "*"),))
    messages = [original_mode(sample(n)) for n in NAMES[1:]]  # SYNLAB, CHU
    try:
        with running_service(ctx, process=False) as svc, Client(svc.port) as client:
            got = lines(client.send(batch(messages)))
        assert [f[1:3] for f in got if f[0] == "MSA"] == [
            ["AR", control_id(m)] for m in messages]
        errs = [f for f in got if f[0] == "ERR"]
        assert len(errs) == 2 and all(e[3].startswith("204^") for e in errs)
        assert all("MLLP_UNKNOWN_SENDER" in e[8] for e in errs)
        assert statuses(ctx) == {"failed": 1}
    finally:
        ctx.engine.dispose()


def test_batch_that_cannot_be_stored_is_refused_message_by_message(ctx) -> None:  # noqa: ANN001
    """The archive down: no AA for any message of the batch, each AR (CE in enhanced mode)
    with HL7 code 207, nothing recorded; once the outage ends the same batch is stored."""
    from tests.test_mllp_service import FlakyArchive

    ctx.archive = archive = FlakyArchive(ctx.archive)
    original = batch([original_mode(sample(n)) for n in NAMES[:2]])
    enhanced = batch([sample(n) for n in NAMES[:2]], batch_id=b"B43")  # MSH-15/16 AL/NE
    with running_service(ctx, process=False) as svc, Client(svc.port) as client:
        got = lines(client.send(original))
        assert [f[1] for f in got if f[0] == "MSA"] == ["AR", "AR"]
        assert all(f[3].startswith("207^") for f in got if f[0] == "ERR")
        got = lines(client.send(enhanced))
        assert [f[1] for f in got if f[0] == "MSA"] == ["CE", "CE"]
        assert statuses(ctx) == {}  # nothing recorded that is not stored
        archive.down = False
        got = lines(client.send(original))
        assert [f[1] for f in got if f[0] == "MSA"] == ["AA", "AA"]
    assert statuses(ctx) == {"split": 1, "received": 2}


def test_application_mode_enhanced_messages_get_both_acks_in_the_batch(tmp_path,  # noqa: ANN001
                                                                        database_url) -> None:
    """Application mode, messages asking for both ACKs (MSH-15/16 AL/AL): each gets its
    commit ACK then its application ACK, in order, inside the one response batch; BTS-1
    counts the four ACK messages."""
    ctx = make_ctx(tmp_path, database_url, ack_mode="application")
    names = (NAMES[0], "20_casse_nm_non_numerique.hl7")
    messages = [sample(n).replace(b"|AL|NE|", b"|AL|AL|", 1) for n in names]
    try:
        with running_service(ctx, process=False) as svc, Client(svc.port) as client:
            got = lines(client.send(batch(messages)))
        ids = [control_id(m) for m in messages]
        assert [f[1:3] for f in got if f[0] == "MSA"] == [
            ["CA", ids[0]], ["AA", ids[0]], ["CA", ids[1]], ["AE", ids[1]]]
        assert got[-1] == ["BTS", "4"]
    finally:
        ctx.engine.dispose()


def test_accept_mode_batch_whose_messages_ask_an_application_ack(ctx) -> None:  # noqa: ANN001
    """Accept mode, a batch whose messages ask no commit ACK but an application ACK
    (MSH-15/16 NE/AL): its response batch was empty, which 2.10.3.3 c reads as "all
    accepted", the invalid message included. The batch is processed before its answer, as a
    lone message asking for it is: AA for the valid one, AE with its ERR for the other."""
    names = (NAMES[0], "20_casse_nm_non_numerique.hl7")
    messages = [sample(n).replace(b"|AL|NE|", b"|NE|AL|", 1) for n in names]
    with running_service(ctx) as svc, Client(svc.port) as client:
        got = lines(client.send(batch(messages)))
    ids = [control_id(m) for m in messages]
    assert [f[1:3] for f in got if f[0] == "MSA"] == [["AA", ids[0]], ["AE", ids[1]]]
    err = next(f for f in got if f[0] == "ERR")
    assert err[2:4] == ["OBX^2^5^1", "102^Data type error^HL70357"]
    assert got[-1] == ["BTS", "2"]
