"""Application ACK warnings, round 4: a byte-identical resend (level-1 duplicate) of a message
filed with a document it could not read is answered like the first copy, AA with the same
warning ERRs (HL7 v2.5 2.14.5, ERR-4 W).

Before: the first copy got AA + one ERR W per unread document (round 3), but the same bytes
sent again (an engine that lost our ACK and resends) got a plain AA: ``_outcomes`` passed on
the first copy's outcome only when it had failed or was still processing, and the sender
that lost the first ACK never learnt that its document was not read. Level-2 repeats (the
same logical message in other bytes) are answered for their own row, as before."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime

import hl7
import hl7.client
import pytest
from sqlalchemy import select

from dossiers.schema import imports
from pipelines.acknowledge import APPLICATION, Frame, acknowledge
from tests.conftest import SAMPLES, migrated_sqlite
from tests.mllp_support import msa, running_service, segment
from tests.test_ack_warnings_round3 import _numbered, _report, xxe_cda
from tests.test_documents_normalizer import b64, cda, oru
from tests.test_mllp_service import make_ctx

ENCRYPTED_PDF = (SAMPLES / "pdf" / "13_irm_cerebrale_K3_chiffre.pdf").read_bytes()


@pytest.fixture(scope="module")
def ctx(tmp_path_factory, sqlite_template) -> Iterator:  # noqa: ANN001
    """One application-mode store (SQLite: the ACK rules are no store rule), creating the
    dossier a message names."""
    tmp = tmp_path_factory.mktemp("acks4")
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


def _rows(ctx, control_id: str) -> list[tuple[str, str]]:  # noqa: ANN001
    """(status, stage) of each row of the ledger whose bytes carry ``control_id``, in order."""
    with ctx.engine.connect() as conn:
        rows = conn.execute(select(imports.c.id, imports.c.status, imports.c.stage,
                                   imports.c.duplicate_of, imports.c.logical_id)
                            .order_by(imports.c.id)).all()
    first = [r for r in rows if control_id in (r.logical_id or "")]
    ids = {r.id for r in first}
    return [(r.status, r.stage) for r in rows if r.id in ids or r.duplicate_of in ids]


# -- over a real socket, read by python-hl7 ------------------------------------------------------
def test_a_resent_oru_gets_the_same_warning_err_over_mllp(ctx) -> None:  # noqa: ANN001
    """A laboratory's CI-SIS ORU^R01 whose CR-BIO declares an external entity, sent twice
    on one connection with python-hl7's MLLPClient (its engine lost the first ACK): the
    resend is answered AA with the first copy's ERR, at the same OBX, 102, severity W."""
    data = _numbered(oru("NW", "F", b64(xxe_cda("CRBIO-3401"))), "ACKS4-ORU-XXE")
    with running_service(ctx, process=False) as svc:
        client = hl7.client.MLLPClient("127.0.0.1", svc.port)
        try:
            first, again = client.send_message(data), client.send_message(data)
        finally:
            client.close()
    errs = []
    for raw in (first, again):
        ack = hl7.parse(raw.strip(b"\x0b\x1c\r").decode())
        assert str(ack.segment("MSA")[1]) == "AA"
        assert str(ack.segment("MSA")[2]) == "ACKS4-ORU-XXE"
        err = ack.segment("ERR")
        errs.append((str(err[2]), str(err[3]), str(err[4]), str(err[8])))
    assert errs[0] == errs[1]
    assert errs[1][:3] == ("OBX^1^5^1", "102^Data type error^HL70357", "W")
    assert errs[1][3].startswith("CDA_DTD_FORBIDDEN: the CDA body could not be read")


# -- through acknowledge() --------------------------------------------------------------------
def test_a_resend_gets_one_err_per_unread_document_as_the_first_copy(ctx) -> None:  # noqa: ANN001
    """Two unread PDFs (an encrypted scan, bytes that are no PDF): the resend, recorded as
    a level-1 duplicate, gets both ERRs at their OBX and the same MSA-3."""
    data = _report("ACKS4-TWO", f"^AP^PDF^Base64^{b64(ENCRYPTED_PDF)}",
                   f"^AP^PDF^Base64^{b64('Compte rendu dicté à Besançon'.encode())}")
    first, = _answers(ctx, data)
    again, = _answers(ctx, data)
    assert _rows(ctx, "ACKS4-TWO")[1] == ("duplicate", "intake")  # level 1
    assert msa(again)[1:3] == ["AA", "ACKS4-TWO"]
    assert [(e[2], e[3].split("^")[0], e[4], e[8].split(":")[0]) for e in _errs(again)] == [
        ("OBX^1^5^1", "102", "W", "PDF_ENCRYPTED"), ("OBX^2^5^1", "102", "W", "PDF_NOT_PDF")]
    assert _errs(again) == _errs(first) and msa(again)[3] == msa(first)[3]


def test_a_resend_of_a_readable_document_still_gets_a_plain_aa(ctx) -> None:  # noqa: ANN001
    """The first copy's other warnings are not ERRs: a readable CR-BIO resent, plain AA."""
    data = _report("ACKS4-OK", f"^TEXT^XML^Base64^{b64(cda('CRBIO-3402'))}")
    for _ in range(2):
        ack, = _answers(ctx, data)
        assert msa(ack)[1] == "AA" and segment(ack, "ERR") is None


def test_a_level2_repeat_is_answered_for_its_own_row_as_before(ctx) -> None:  # noqa: ANN001
    """Out of scope: the same logical message in other bytes (another MSH-7) is a level-2
    duplicate; its OBX may sit elsewhere, so it is not given the first copy's ERRs."""
    data = _report("ACKS4-L2", f"^AP^PDF^Base64^{b64(ENCRYPTED_PDF)}")
    first, = _answers(ctx, data)
    other, = _answers(ctx, data.replace(b"|202405061130|", b"|202405061145|", 1))
    assert [e[8].split(":")[0] for e in _errs(first)] == ["PDF_ENCRYPTED"]
    assert _rows(ctx, "ACKS4-L2")[1] == ("duplicate", "dedupe")  # level 2
    assert msa(other)[1] == "AA" and segment(other, "ERR") is None
