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

import hashlib
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from dossiers.schema import imports
from pipelines.acknowledge import APPLICATION, Frame, acknowledge
from tests.conftest import migrated_sqlite
from tests.mllp_support import msa
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

