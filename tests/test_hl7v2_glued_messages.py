"""Two HL7v2 messages glued together: the writer left out the CR after the first message's
last segment, so the second MSH follows its text ('...|F|||20250301083000+0100MSH|^~\\&|...').

Cut there as if the terminator were sent (parsers/hl7v2/framing.py, ``_glued``), in memory
and streamed alike, with a note naming the byte offset on the row of the file or frame; a
field that merely holds the letters MSH (base64 ED, escaped FT) is never cut.
"""

from __future__ import annotations

import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from dossiers.schema import imports
from parsers.hl7v2 import parse_message, split_batch
from parsers.hl7v2.framing import GLUED_MESSAGE, Batch, iter_batch, outline
from pipelines.intake import Received, intake
from pipelines.process import drain
from tests.mllp_support import Client, msa, running_service, statuses
from tests.test_mllp_service import make_ctx, original_mode, sample

OBX_LAST = b"|F|||20250301083000+0100"


def labo(control: str, patient: str, obx: bytes = b"") -> bytes:
    """A short ORU^R01 from a French laboratory, segments ended by CR (the last one too)."""
    return (
        b"MSH|^~\\&|LABO|BIOPATH_NANTES^440012345^M|DMP-INTAKE|DMP|20250301083000+0100||"
        b"ORU^R01^ORU_R01|" + control.encode() + b"|P|2.5|||AL|NE|FRA|UNICODE UTF-8\r"
        b"PID|1||" + patient.encode() + b"^^^BIOPATH^PI||Le Goff^Yvonne^^^^^L||19520611|F\r"
        b"OBR|1|CMD-" + control.encode() + b"||2823-3^Potassium^LN|||20250301073000+0100\r"
        b"OBX|1|NM|2823-3^Potassium^LN||4.1|mmol/L|3.5-5.1|N||" + OBX_LAST + b"\r" + obx)


def glue(messages: list[bytes]) -> bytes:
    """The messages written one after the other, each but the last without its final CR."""
    return b"".join(m.removesuffix(b"\r") for m in messages[:-1]) + messages[-1]


def streamed(data: bytes, window: int) -> Batch:
    """iter_batch over ``data`` read ``window`` bytes at a time, as one Batch."""
    out = list(iter_batch(io.BytesIO(data).read, window))
    last = out.pop()
    assert isinstance(last, Batch) and not last.messages
    return Batch(out, last.problems, last.envelope, last.notes)


def test_glued_message_is_cut_with_a_note_naming_its_offset() -> None:
    first, second = labo("BIO250301001", "880012"), labo("BIO250301002", "880013")
    data = glue([first, second])
    batch = split_batch(data)
    assert batch.messages == [first.removesuffix(b"\r"), second]
    assert batch.problems == []
    [note] = batch.notes
    offset = len(first) - 1
    assert (note.code, note.offset, note.warning) == (GLUED_MESSAGE, offset, True)
    assert f"message 2 at byte {offset}" in note.message
    assert "Le Goff" not in note.message and "880013" not in note.message
    parsed = [parse_message(m) for m in batch.messages]
    assert [p.get("MSH", 10) for p in parsed] == ["BIO250301001", "BIO250301002"]
    # the first message's last field ends where it should, not in the second message
    assert [p.get(p.all("OBX")[-1], 14) for p in parsed] == ["20250301083000+0100"] * 2
    assert outline(data).groups[0].messages == 2


@pytest.mark.parametrize("window", [1, 5, 8, 9, 17, 64, 4096])
def test_streamed_split_of_glued_messages_agrees(window: int) -> None:
    """Windows that end inside the glued MSH, right before it, right after it."""
    data = b"\xef\xbb\xbf" + glue([labo(f"BIO25030100{i}", f"88001{i}") for i in range(4)])
    whole = split_batch(data)
    assert len(whole.messages) == 4 and len(whole.notes) == 3
    assert streamed(data, window) == whole


def test_glued_after_an_envelope_trailer_and_inside_a_batch() -> None:
    first, second = labo("BIO250301001", "880012"), labo("BIO250301002", "880013")
    data = b"BHS|^~\\&|LABO\r" + first + b"BTS|1" + second
    batch = split_batch(data)
    assert batch.messages == [first, second]
    assert batch.problems == []  # BTS-1 read as 1, not '1MSH'
    assert [n.offset for n in batch.notes] == [data.index(b"BTS|1") + 5]
    assert streamed(data, 7) == batch


def test_msh_letters_in_base64_and_escaped_text_are_not_cut() -> None:
    """A PDF in a base64 ED OBX-5 ('TVNI' decodes to 'MSH'; the letters also appear raw) and
    an FT comment quoting a header, escaped as the standard wants: one message, no note."""
    ed = (b"OBX|2|ED|PDF^Compte rendu^L||^AP^PDF^Base64^JVBERi0xLjQKTVNIfE1TSF5+XCZ8"
          b"TVNIMSHMSH+/MSH==||||||F\r")
    ft = (b"NTE|1|L|Le laboratoire a recu MSH\\F\\\\S\\\\R\\\\E\\\\T\\ en tete, "
          b"MSH\\F\\ renvoye.\\.br\\Dr Kerjean\r")
    data = labo("BIO250301003", "880014", ed + ft)
    batch = split_batch(data)
    assert batch.messages == [data] and batch.notes == [] and batch.problems == []
    assert streamed(data, 3) == batch


def test_header_as_the_first_msh_declares_it() -> None:
    """MSH-2 with the v2.7 truncation character: the glued header must repeat it."""
    first = labo("BIO250301004", "880015").replace(b"MSH|^~\\&|", b"MSH|^~\\&#|", 1)
    second = labo("BIO250301005", "880016").replace(b"MSH|^~\\&|", b"MSH|^~\\&#|", 1)
    batch = split_batch(glue([first, second]))
    assert batch.messages == [first.removesuffix(b"\r"), second]
    assert len(batch.notes) == 1


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 10**9), st.sampled_from(["880012", "4100001127"]),
                          st.sampled_from([b"", b"NTE|1||MSH TVNI\r", b"NTE|1||A\\F\\MSH\r"])),
                min_size=1, max_size=5), st.integers(1, 40))
def test_gluing_valid_messages_splits_back_into_them(specs, window: int) -> None:
    """For any list of valid messages, gluing them without the CR before each MSH and
    splitting gives the same messages back (less that CR), with one note per glue, in memory
    and streamed."""
    messages = [labo(f"BIO{n}", patient, obx) for n, patient, obx in specs]
    data = glue(messages)
    batch = split_batch(data)
    assert batch.messages == [m.removesuffix(b"\r") for m in messages[:-1]] + messages[-1:]
    assert len(batch.notes) == len(messages) - 1 and batch.problems == []
    assert streamed(data, window) == batch


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_file_of_glued_messages_files_both_with_a_warning(tmp_path, database_url) -> None:  # noqa: ANN001
    """Through intake and processing: two rows filed under their own MSH-10, the file's row
    'split' with the note as its warning."""
    ctx = make_ctx(tmp_path, database_url)
    try:
        first = sample("01_labm_nfs.hl7")
        second = sample("03_synlab_iono_creatinine.hl7")
        data = glue([first, second])
        [result] = intake(ctx.engine, ctx.archive, [Received(data, "lab", "file",
                                                              file_name="nuit.hl7")])
        drain(ctx)
        with ctx.engine.connect() as conn:
            rows = conn.execute(select(imports).order_by(imports.c.id)).all()
        whole, *parts = rows
        assert (whole.id, whole.status, whole.error_code) == (result.batch_id, "split", None)
        assert whole.warnings == [f"{GLUED_MESSAGE}: the MSH of message 2 at byte "
                                  f"{len(first) - 1} is glued to the end of the segment "
                                  "before it (no segment terminator): the messages were cut "
                                  "there"]
        assert [p.status for p in parts] == ["deposited", "deposited"]
        assert [p.logical_id.rsplit("|", 1)[-1][-15:] for p in parts] == [
            "RB2501140000001", "RB2504080000001"]
    finally:
        ctx.engine.dispose()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_mllp_frame_of_glued_messages_is_answered_and_filed(tmp_path, database_url) -> None:  # noqa: ANN001
    """One MLLP frame, two glued messages, application ACKs: both filed, and the note is no
    failure (the answer is AA for the frame's first MSH-10, as for a plain concatenation)."""
    ctx = make_ctx(tmp_path, database_url, ack_mode="application")
    try:
        data = glue([original_mode(sample("01_labm_nfs.hl7")),
                     original_mode(sample("03_synlab_iono_creatinine.hl7"))])
        with running_service(ctx) as svc, Client(svc.port) as client:
            ack = client.send(data)
        assert msa(ack)[1:3] == ["AA", "RB2501140000001"]
        assert statuses(ctx) == {"split": 1, "deposited": 2}
    finally:
        ctx.engine.dispose()
