"""Application ACK warnings, round 5: the level-1 resend of a draft held until signed or of an
MDM notification without its document is answered like the first copy (AA, the same warning
ERR); a CDA document or a PDF pushed bare over MLLP, without an HL7 message around it, is
refused for what it is (MLLP_BARE_DOCUMENT, AR), not as broken HL7 (HL7_NO_MSH).

Before: a DPI that lost our ACK of its dictated report (MDM^T02, TXA-17 DI) and sent it again
got a plain AA, and never learnt the report waits for its signature; a document server
pushing its CR-IMG as a bare CDA over MLLP was told 'no readable MSH segment', and its
integrator looked for the fault in an HL7 message it never meant to send. Level-2 repeats
(the same logical message in other bytes) stay answered for their own row (out of scope)."""

from __future__ import annotations

import codecs
import hashlib
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime

import hl7
import hl7.client
import pytest
from sqlalchemy import select

from dossiers.schema import imports
from pipelines.acknowledge import APPLICATION, Frame, acknowledge
from tests.conftest import SAMPLES, corpus_path, migrated_sqlite
from tests.mllp_support import msa, running_service
from tests.test_ack_warnings_round3 import _numbered
from tests.test_documents_senders_round4 import _mdm as _ris_mdm
from tests.test_documents_senders_round9 import _mdm
from tests.test_mllp_service import make_ctx


@pytest.fixture(scope="module")
def ctx(tmp_path_factory, sqlite_template) -> Iterator:  # noqa: ANN001
    """One application-mode store (SQLite: the ACK rules are no store rule), creating the
    dossier a message names."""
    tmp = tmp_path_factory.mktemp("acks5")
    context = make_ctx(tmp, migrated_sqlite(sqlite_template, tmp / "store.sqlite3"),
                       ack_mode="application")
    context.settings = replace(context.settings, auto_create=True)
    yield context
    context.engine.dispose()


def _answers(ctx, data: bytes) -> list[bytes]:  # noqa: ANN001
    (acks,) = acknowledge(ctx, [Frame(data, "127.0.0.1", datetime.now(UTC))], mode=APPLICATION)
    return acks


def _errs(ack: bytes) -> list[list[str]]:
    return [s.split("|") for s in ack.decode().split("\r") if s.startswith("ERR|")]


def _row_of(ctx, data: bytes):  # noqa: ANN001, ANN202
    """The last ledger row of these bytes (the frame as received)."""
    with ctx.engine.connect() as conn:
        return conn.execute(select(imports).where(
            imports.c.sha256 == hashlib.sha256(data).hexdigest())
            .order_by(imports.c.id.desc())).first()


def _draft(control_id: str) -> bytes:
    """An imaging centre's RIS sends its dictated CR-IMG (MDM^T02, TXA-17 DI, no TXA-19):
    held until signed."""
    return _numbered(_ris_mdm("T02", "F", control_id, txa17="DI", txa19=""), control_id)


def _notification(control_id: str) -> bytes:
    """A hospital DPI's MDM^T01 (original document notification) with TXA alone."""
    return _numbered(_mdm("T01", f"{control_id}^DPI-Y", [], txa17=""), control_id)


# -- level-1 resends of a held draft and of a notification only ----------------------------------
@pytest.mark.parametrize(("make", "code", "where"), [
    (_draft, "MDM_NOT_AVAILABLE", "TXA^1^17^1"),
    (_notification, "MDM_NOTIFICATION_ONLY", "MSH^1^9^1")])
def test_a_byte_identical_resend_gets_the_first_copys_warning_err(ctx, make, code, where) -> None:  # noqa: ANN001, E501
    """The same bytes sent again (level 1, 'duplicate' at intake): AA with the first copy's
    ERR, severity W, 0, at the same place, and the same MSA-3. Was: a plain AA."""
    data = make(f"ACKS5-{code[4:12]}")
    first, = _answers(ctx, data)
    again, = _answers(ctx, data)
    row = _row_of(ctx, data)
    assert (row.status, row.stage) == ("duplicate", "intake")
    assert msa(again)[1:3] == ["AA", f"ACKS5-{code[4:12]}"]
    err, = _errs(again)
    assert (err[2], err[3].split("^")[0], err[4], err[8].split(":")[0]) == (where, "0", "W", code)
    assert _errs(again) == _errs(first) and msa(again)[3] == msa(first)[3]



# -- a document pushed bare over MLLP --------------------------------------------------------------
TROD_CDA = "BIO-TROD_2024.01_Angine.xml"  # the ANS example of a CI-SIS BIO-TROD (a real CDA)
FHIR_BUNDLE = (b'<?xml version="1.0" encoding="UTF-8"?><Bundle xmlns="http://hl7.org/fhir">'
               b'<type value="document"/></Bundle>')

# a template engine's CDA that lost its xmlns: still a CDA to its sender (the parser says why not)
CDA_WITHOUT_NAMESPACE = ("<ClinicalDocument><title>Compte rendu d'échographie abdominale"
                         "</title></ClinicalDocument>").encode()


def _refused(ctx, data: bytes, size: int | None = None) -> tuple[list[str], list[str]]:  # noqa: ANN001
    """(MSA, ERR) fields of the one ACK a frame of ``data`` is answered with."""
    (acks,) = acknowledge(ctx, [Frame(data, "127.0.0.1", datetime.now(UTC), size)],
                          mode=APPLICATION)
    ack, = acks
    err, = _errs(ack)
    return msa(ack), err


@pytest.mark.parametrize(("before", "sent", "what", "fmt"), [
    (b"", "cda", "a CDA document", "cda"),
    (codecs.BOM_UTF8 + b"\r\n  ", "cda", "a CDA document", "cda"),
    (b"\n", "pdf", "a PDF", "pdf"),
    (b"", "fhir", "an XML document that is no CDA (root element 'Bundle')", "unknown"),
    (b"\t", "cda-no-namespace", "a CDA document", "unknown")])
def test_a_document_without_its_hl7_message_is_refused_for_what_it_is(
        ctx, before: bytes, sent: str, what: str, fmt: str) -> None:  # noqa: ANN001
    """A document server pushes its report over MLLP as it is (a CDA, after a BOM and a
    line break too, or without its namespace; a scanner's PDF; a FHIR document): AR
    (nothing we could read as a wrong message: table 0008), ERR-3 200, our code and what to
    send instead in ERR-8 and MSA-3. The frame is archived as received and on the ledger,
    failed at intake. Was: HL7_NO_MSH, 'the frame holds no readable MSH segment'."""
    body = {"cda": corpus_path("cda", TROD_CDA).read_bytes(),
            "pdf": (SAMPLES / "pdf" / "01_irm_genou_droit_K1_texte.pdf").read_bytes(),
            "fhir": FHIR_BUNDLE, "cda-no-namespace": CDA_WITHOUT_NAMESPACE}[sent]
    data = before + body
    fields, err = _refused(ctx, data)
    assert fields[1:3] == ["AR", ""]
    assert fields[3].startswith(f"MLLP_BARE_DOCUMENT: {what} was sent without"[:60])
    assert (err[3], err[4]) == ("200^Unsupported message type^HL70357", "E")
    assert err[8].startswith(f"MLLP_BARE_DOCUMENT: {what} was sent without an HL7 message: "
                             "wrap it in an MDM\\S\\T02 OBX of type ED")
    assert err[8].endswith("or drop it in the documents folder")
    row = _row_of(ctx, data)
    assert (row.status, row.stage, row.error_code, row.format) == (
        "failed", "intake", "MLLP_BARE_DOCUMENT", fmt)
    assert ctx.archive.get(row.sha256) == data  # nothing received is lost


def test_a_bare_cda_pushed_over_mllp_is_answered_ar_over_the_socket(ctx) -> None:  # noqa: ANN001
    """The ANS BIO-TROD example pushed as it is through python-hl7's MLLPClient (a document
    server's MLLP output pointed at the listener): one answer, read by python-hl7, AR with
    the code and ERR-3 200; the connection stays usable for the HL7 message that follows."""
    data = corpus_path("cda", TROD_CDA).read_bytes()
    message = _notification("ACKS5-AFTER-CDA")
    with running_service(ctx, process=False) as svc:
        client = hl7.client.MLLPClient("127.0.0.1", svc.port)
        try:
            raw, after = client.send_message(data), client.send_message(message)
        finally:
            client.close()
    ack = hl7.parse(raw.strip(b"\x0b\x1c\r").decode())
    assert str(ack.segment("MSA")[1]) == "AR" and str(ack.segment("MSA")[2]) == ""
    err = ack.segment("ERR")
    assert str(err[3]) == "200^Unsupported message type^HL70357"
    assert str(err[8]).startswith("MLLP_BARE_DOCUMENT: a CDA document was sent without an HL7")
    assert msa(after.strip(b"\x0b\x1c\r"))[1:3] == ["AA", "ACKS5-AFTER-CDA"]


def test_hl7_without_its_msh_is_still_hl7_no_msh(ctx) -> None:  # noqa: ANN001
    """The new code is for documents only: a message that lost its MSH (it starts with PID)
    is broken HL7, answered as before."""
    data = (SAMPLES / "hl7v2" / "17_casse_sans_msh.hl7").read_bytes()
    fields, err = _refused(ctx, data)
    assert fields[1] == "AR" and err[8].startswith("HL7_NO_MSH: ")
    assert _row_of(ctx, data).error_code == "HL7_NO_MSH"


def test_a_bare_pdf_over_the_size_limit_is_told_both(ctx) -> None:  # noqa: ANN001
    """A 12 MB scan pushed bare: what it is comes first (wrapped, it must also fit the
    limit), the size after; the head kept in the archive. Was: MLLP_FRAME_TOO_LARGE alone,
    and the sender raised its frame size."""
    head = (SAMPLES / "pdf" / "02_tdm_thorax_K2_scan.pdf").read_bytes()[:65536]
    limit = ctx.settings.listener.max_frame_bytes
    fields, err = _refused(ctx, head, size=12_000_000)
    assert err[8].startswith("MLLP_BARE_DOCUMENT: a PDF was sent without an HL7 message")
    assert err[8].endswith(f"or drop it in the documents folder; frame of 12000000 bytes, "
                           f"over the limit of {limit}: only its first 65536 bytes kept")
    row = _row_of(ctx, head)
    assert (row.error_code, ctx.archive.get(row.sha256)) == ("MLLP_BARE_DOCUMENT", head)
