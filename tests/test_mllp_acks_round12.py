"""The MLLP listener's acknowledgements against HL7 v2.5 chapter 2, round 12 (the file
tests/test_mllp_senders_round12.py was taken by an earlier round): the response to a batch
holding another batch (a BHS inside a BHS, as some laboratory systems nest a bench's batch
in the day's), which must be one batch per 2.10.3.3. Over real sockets, on one SQLite
service in accept mode started for the module; the responses read with python-hl7's
``parse_batch``, a reader we did not write."""

from __future__ import annotations

from collections.abc import Iterator

import hl7
import pytest

from parsers.hl7v2.ack import AckError, build_ack
from parsers.hl7v2.framing import outline, split_batch
from parsers.hl7v2.header import read_header
from tests.conftest import migrated_sqlite
from tests.mllp_support import Client, running_service
from tests.test_mllp_senders_round8 import message
from tests.test_mllp_service import make_ctx

# the day's batch of the Lyon laboratory, and the haematology bench's batch inside it
DAY = b"BHS|^~\\&|LABM|CERBALLIANCE_LYON|DMP-INTAKE|DMP|20250114180000+0100||||JOUR-20250114\r"
BENCH = b"BHS|^~\\&|LABM|CERBALLIANCE_LYON|DMP-INTAKE|DMP|20250114180000+0100||||HEMATO-07\r"


@pytest.fixture(scope="module")
def port(tmp_path_factory, sqlite_template) -> Iterator[int]:  # noqa: ANN001
    tmp = tmp_path_factory.mktemp("acks_round12")
    ctx = make_ctx(tmp, migrated_sqlite(sqlite_template, tmp / "store.sqlite3"))
    try:
        with running_service(ctx, process=False) as svc:
            yield svc.port
    finally:
        ctx.engine.dispose()


def control_ids(batch: hl7.Batch) -> list[str]:
    return [str(m.segment("MSA")[2]) for m in batch]


# -- nested batches: one response batch per outermost batch ----------------------------------

M1, M2, M3 = message("LYON-0001"), message("LYON-0002"), message("LYON-0003")


@pytest.mark.parametrize(("data", "expected"), [
    # the bench's batch inside the day's, both closed: the day's batch holds both messages
    (DAY + BENCH + M1 + M2 + b"BTS|2\rBTS|2\r", [(b"JOUR-20250114", 2)]),
    # messages of the day's batch before and after the bench's
    (DAY + M1 + BENCH + M2 + b"BTS|1\r" + M3 + b"BTS|3\r", [(b"JOUR-20250114", 3)]),
    # two levels of nesting, in a file
    (b"FHS|^~\\&|LABM\r" + DAY + BENCH + BENCH + M1 + b"BTS|1\rBTS|1\rBTS|1\rFTS|1\r",
     [(b"JOUR-20250114", 1)]),
    # a day's batch whose BTS never came (truncated, the next batch began): kept apart
    (DAY + M1 + BENCH + M2 + b"BTS|1\r", [(b"JOUR-20250114", 1), (b"HEMATO-07", 1)]),
    # ... and the message after the bench's BTS is in no closed batch
    (DAY + M1 + BENCH + M2 + b"BTS|1\r" + M3,
     [(b"JOUR-20250114", 1), (b"HEMATO-07", 1), (None, 1)]),
    # an FTS closes the open batches: what follows is outside them
    (DAY + BENCH + M1 + b"FTS|1\r" + M2 + b"BTS|1\r", [(b"JOUR-20250114", 0),
                                                       (b"HEMATO-07", 1), (None, 1)]),
])
def test_a_nested_batch_is_part_of_the_batch_holding_it(data: bytes, expected: list) -> None:
    groups = outline(data).groups
    assert [(g.header.rsplit(b"|", 1)[1] if g.header else None, g.messages)
            for g in groups] == expected
    assert sum(g.messages for g in groups) == len(split_batch(data).messages)
    assert [g.start for g in groups] == sorted(g.start for g in groups)


@pytest.mark.parametrize("line_end", [b"\r", b"\r\n", b"\n"])
def test_a_nested_batch_is_answered_with_one_batch(port: int, line_end: bytes) -> None:
    """A day's batch holding a bench's batch (BHS BHS MSH MSH BTS|2 BTS|2), in one frame,
    with CR, CR LF or LF line ends. Each BHS was answered as a batch of its own: the day's
    with an empty batch (BHS, BTS|0, option c of 2.10.3.3: "every message accepted", for
    the batch the sender knows by BHS-11) and the bench's with the ACKs, a response of two
    batches that python-hl7 refuses ("Batch cannot have more than one BHS segment"). Now
    one batch answers the day's (BHS-12 its control id) with an ACK per message, BTS-1
    counting them."""
    ids = [f"LYON-{line_end.hex()}-{n}" for n in (1, 2)]
    sent = (DAY + BENCH + message(ids[0]) + message(ids[1]) + b"BTS|2\rBTS|2\r")
    with Client(port) as client:
        answer = client.send(sent.replace(b"\r", line_end))
    assert answer is not None and answer.count(b"BHS|") == 1
    batch = hl7.parse_batch(answer.decode("utf-8"))
    assert str(batch.header[12]) == "JOUR-20250114"  # the reference batch control id
    assert [str(batch.header[n]) for n in (3, 4, 5, 6)] == ["DMP-INTAKE", "DMP", "LABM",
                                                           "CERBALLIANCE_LYON"]
    assert [str(m.segment("MSA")[1]) for m in batch] == ["AA", "AA"]
    assert control_ids(batch) == ids
    assert str(batch.trailer) == "BTS|2"


def test_messages_around_a_nested_batch_are_answered_in_the_outer_batch(port: int) -> None:
    """Messages of the day's batch before and after the bench's: answered in order, in the
    day's response batch; the message after the bench's BTS was answered in a batch of its
    own, with no reference to any batch of the sender."""
    ids = ["LYON-AUTOUR-1", "LYON-AUTOUR-2", "LYON-AUTOUR-3"]
    sent = (DAY + message(ids[0]) + BENCH + message(ids[1]) + b"BTS|1\r" + message(ids[2])
            + b"BTS|3\r")
    with Client(port) as client:
        answer = client.send(sent)
    batch = hl7.parse_batch(answer.decode("utf-8"))
    assert str(batch.header[12]) == "JOUR-20250114"
    assert control_ids(batch) == ids and str(batch.trailer) == "BTS|3"


def test_an_empty_nested_batch_is_answered_with_one_empty_batch(port: int) -> None:
    """A day's batch holding only an empty bench's batch (a periodic submission, 2.10.3):
    one empty response batch naming the day's, not two."""
    with Client(port) as client:
        answer = client.send(DAY + BENCH + b"BTS|0\rBTS|0\r")
    lines = answer.decode("utf-8").split("\r")
    assert [line[:3] for line in lines if line] == ["BHS", "BTS"]
    assert lines[0].split("|")[11] == "JOUR-20250114" and lines[1] == "BTS|0"


# -- the ACK's layout for a version written with a letter ------------------------------------

def refused_ack(version: str) -> bytes:
    """The ACK ``build_ack`` writes for a message of MSH-12 ``version`` refused AR 200."""
    header = read_header(message("LYON-VERSION").replace(b"|P|2.5|", f"|P|{version}|".encode(),
                                                         1))
    error = AckError("200", "HL7_UNSUPPORTED_TYPE: message type ZZZ^Z01 is not handled",
                     "MSH[1]-9")
    return build_ack(header, "AR", error=error)


@pytest.mark.parametrize(("version", "layout"), [
    ("V2.4", "ERR-1"), ("v2.3.1", "ERR-1"), ("2.4b", "ERR-1"), ("V2.3", "ERR-1"),
    ("V2.5", "ERR-2"), ("V2.6", "ERR-2"), ("V2.7", "v2.7"), ("2.8a", "v2.7"),
    # no number at all: as an empty MSH-12, 2.5
    ("DEUX", "ERR-2"),
])
def test_a_version_written_with_a_letter_is_read_by_its_number(version: str,
                                                               layout: str) -> None:
    """MSH-12 'V2.4' (or '2.4b'): read as the newest version, the AR came in the v2.7
    layout, ERR-2..8 and no MSA-3, and an engine of that version, which reads ERR-1 and
    MSA-3, found no error text. Read by its number: ERR-1 and MSA-3 before 2.5, ERR-2..8
    and MSA-3 in 2.5 and 2.6, ERR-2..8 alone from 2.7."""
    lines = refused_ack(version).decode("utf-8").split("\r")
    msa_fields, err = lines[1].split("|"), lines[2].split("|")
    assert lines[0].split("|")[11] == version  # echoed as sent
    if layout == "ERR-1":
        assert err[1] == "MSH^1^9^200&Unsupported message type&HL70357" and len(err) == 2
    else:
        assert err[1] == "" and err[2:5] == ["MSH^1^9^1", "200^Unsupported message type^HL70357",
                                             "E"]
    has_text = len(msa_fields) > 3 and msa_fields[3].startswith("HL7_UNSUPPORTED_TYPE")
    assert has_text == (layout != "v2.7")


def test_a_v2_4_sender_writing_its_version_with_a_v_is_answered_in_v2_4(port: int) -> None:
    """Over the socket: a message of type no normalizer reads, MSH-12 'V2.4', refused from
    its header in accept mode: its AR carries MSA-3 and ERR-1, as a v2.4 engine reads them."""
    sent = message("LYON-V24").replace(b"|P|2.5|", b"|P|V2.4|", 1).replace(
        b"ORU^R01^ORU_R01", b"ZZZ^Z01", 1)
    with Client(port) as client:
        answer = client.send(sent)
    lines = answer.decode("utf-8").split("\r")
    msa_fields = lines[1].split("|")
    assert msa_fields[:3] == ["MSA", "AR", "LYON-V24"]
    assert msa_fields[3].startswith("HL7_UNSUPPORTED_TYPE")
    assert lines[2] == "ERR|MSH^1^9^200&Unsupported message type&HL70357"
