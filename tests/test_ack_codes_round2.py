"""Application ACK codes for documents carried in HL7v2, round 2: what a sender of a CDA or a
PDF inside an OBX ED (ORU, MDM) is answered when the document is at fault, and where ERR-2
points; the advice rows' commands checked against the CLI's parser.

What the document path records for a message received as HL7v2 (normalizers/documents.py):
an ED that is not what its type says (ED_BAD_BASE64, ED_BAD_HEX: AE 102), an encoding outside
table 0299 (ED_BAD_ENCODING: AE 103), an empty document (ED_EMPTY: AE 101), a reference in
place of the document (MDM_REFERENCE_ONLY: AE 102), no document number (MDM_NO_DOCUMENT_ID:
AE 101), a trigger or ORC-1 and OBX-11 that disagree (CISIS_ACTION_MISMATCH: AE 103). A CDA
or PDF inside the ED that cannot be read (hostile XML, an encrypted PDF) fails nothing: the
document is filed unread, a warning on the ledger row, answered AA (since round acks3 with a
warning ERR for it: tests/test_ack_warnings_round3.py). No
document fault of an HL7v2 message falls on the '*' row (AE 207, "our fault")."""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from cli import build_parser
from dossiers.schema import imports
from normalizers.tabledata import read_csv_rows
from pipelines.acknowledge import APPLICATION, Frame, acknowledge
from pipelines.advice import advice
from tests.conftest import ROOT, SAMPLES, migrated_sqlite
from tests.mllp_support import Client, msa, running_service, segment
from tests.test_documents_normalizer import b64, cda, oru
from tests.test_documents_senders_round9 import _mdm
from tests.test_mllp_service import make_ctx

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


@pytest.fixture(scope="module")
def ctx(tmp_path_factory, sqlite_template) -> Iterator:  # noqa: ANN001
    """One application-mode store for the module (SQLite: the ACK rules are no store rule),
    creating the dossier a message names as Mon Espace Santé does."""
    tmp = tmp_path_factory.mktemp("acks2")
    context = make_ctx(tmp, migrated_sqlite(sqlite_template, tmp / "store.sqlite3"),
                       ack_mode="application")
    context.settings = replace(context.settings, auto_create=True)
    yield context
    context.engine.dispose()


def _numbered(message: str, control_id: str) -> bytes:
    """``message`` under its own MSH-10 (the helpers' messages share theirs)."""
    first, _, rest = message.partition("\r")
    fields = first.split("|")
    fields[9] = control_id
    return ("|".join(fields) + "\r" + rest).encode()


def _answer(ctx, data: bytes) -> bytes:  # noqa: ANN001
    """The application ACK of one frame, stored and processed as the listener does."""
    (ack,), = acknowledge(ctx, [Frame(data, "127.0.0.1", datetime.now(UTC))], mode=APPLICATION)
    return ack


# -- over a real socket: ERR-2 at the OBX carrying the document --------------------------------
def test_a_cisis_oru_whose_actions_disagree_is_pointed_at_its_document_obx(ctx) -> None:  # noqa: ANN001
    """A laboratory's CI-SIS ORU^R01: ORC-1 NW (new) and the CR-BIO's OBX-11 C (replace),
    then its five MetaDMPMSS OBX. AE 103, ERR-2 one repetition per field: ORC-1 and the
    OBX-11 of the first OBX, the one carrying the CDA. Was 'OBX^6^11^1' (the segment's
    place in the message read as the 6th OBX: the mail body for MSSanté recipients)."""
    data = _numbered(oru("NW", "C", b64(cda("CRBIO-2611"))), "ACKS2-MISMATCH-1")
    bad_ed = _numbered(_mdm("T02", "CR-2611^DPI-Y", [
        "OBX|1|ED|11502-2^CR d'examens biologiques^LN||^AP^PDF^Base64^@@Hélène##||||||F"]),
        "ACKS2-BASE64-1")
    with running_service(ctx, process=False) as svc, Client(svc.port) as client:
        mismatch, base64 = client.send(data), client.send(bad_ed)
    assert msa(mismatch)[1:3] == ["AE", "ACKS2-MISMATCH-1"]
    err = segment(mismatch, "ERR")
    assert err[2] == "ORC^1^1^1~OBX^1^11^1"
    assert err[3] == "103^Table value not found^HL70357"
    assert err[8].startswith("CISIS_ACTION_MISMATCH: ORC[4]-1 'NW' (new) and OBX[6]-11 'C'")
    # the PDF's base64 broken: the sender's data type error (102), at its OBX-5
    assert msa(base64)[1:3] == ["AE", "ACKS2-BASE64-1"]
    assert segment(base64, "ERR")[2:4] == ["OBX^1^5^1", "102^Data type error^HL70357"]


# -- through the ACK-building function: each document failure the sender must fix ------------
def _mdm_with(obx5: str, txa12: str = "CR-2612^DPI-Y", obx2: str = "ED") -> str:
    """A hospital DPI's MDM^T02 carrying one report in its OBX."""
    return _mdm("T02", txa12, [f"OBX|1|{obx2}|11502-2^CR d'examens biologiques^LN||{obx5}"
                               "||||||F"])


def _cisis(message: str) -> str:
    """``message`` declaring the CI-SIS profile (MSH-21), whose actions must agree."""
    first, _, rest = message.partition("\r")
    return f"{first}|||2.1^CISIS_CDA_HL7_V2\r{rest}"


@pytest.mark.parametrize(("message", "code", "err_2", "hl7_code"), [
    (_mdm_with("^AP^PDF^Hex^4A5Zzz"), "ED_BAD_HEX", "OBX^1^5^1", "102"),
    (_mdm_with(f"^AP^PDF^Rot13^{b64(PDF)}"), "ED_BAD_ENCODING", "OBX^1^5^1", "103"),
    (_mdm_with("^AP^PDF^Base64^"), "ED_EMPTY", "OBX^1^5^1", "101"),
    (_mdm_with("https://dpi.chu-est.fr/cr/2612.pdf^^AP^PDF", obx2="RP"), "MDM_REFERENCE_ONLY",
     "OBX^1^5^1", "102"),
    (_mdm_with(f"^AP^PDF^Base64^{b64(PDF)}", txa12=""), "MDM_NO_DOCUMENT_ID", "TXA^1^12^1",
     "101"),
    # a CI-SIS MDM^T10 (replace) whose OBX-11 says F (initial): its one OBX, not the 6th
    (_cisis(_mdm("T10", "CR-2613^DPI-Y", [f"OBX|1|ED|11502-2^CR^LN||^AP^PDF^Base64^{b64(PDF)}"
                                          "||||||F"], txa13="CR-2612^DPI-Y")),
     "CISIS_ACTION_MISMATCH", "MSH^1^9^1~OBX^1^11^1", "103"),
], ids=["hex", "encoding", "empty", "reference", "no-number", "t10-mismatch"])
def test_a_document_the_sender_must_fix_is_ae_with_its_table_0357_code(
        ctx, message: str, code: str, err_2: str, hl7_code: str) -> None:  # noqa: ANN001
    """AE (table 0008: the message is wrong, sent again unchanged it fails again) with the
    0357 code saying what is wrong at the document's OBX (or TXA-12): never 207, which tells
    the sender's integration engineer to wait for us."""
    ack = _answer(ctx, _numbered(message, f"ACKS2-{code}"))
    assert msa(ack)[1] == "AE"
    err = segment(ack, "ERR")
    assert err[2] == err_2
    assert err[3].split("^")[0] == hl7_code
    assert err[8].startswith(f"{code}: ")


# -- a document inside the ED that cannot be read: filed unread, AA with a warning ERR --------
_XXE_CDA = cda("CRBIO-2614").replace(
    b'<?xml version="1.0" encoding="UTF-8"?>',
    b'<?xml version="1.0" encoding="UTF-8"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
).replace(b"<title>Compte rendu", b"<title>&x; Compte rendu")
_NO_RECORD_TARGET = re.sub(rb"<recordTarget>.*?</recordTarget>", b"", cda("CRBIO-2615"),
                           flags=re.S)


@pytest.mark.parametrize(("obx5", "warned", "err_3"), [
    (f"^TEXT^XML^Base64^{b64(_XXE_CDA)}", "the CDA body could not be read (CDA_DTD_FORBIDDEN)",
     "102"),
    (f"^TEXT^XML^Base64^{b64(_NO_RECORD_TARGET)}", None, None),
    (f"^AP^PDF^Base64^{b64((SAMPLES / 'pdf' / '13_irm_cerebrale_K3_chiffre.pdf').read_bytes())}",
     "the PDF could not be read (PDF_ENCRYPTED)", "102"),
], ids=["xxe", "no-record-target", "encrypted-pdf"])
def test_a_document_unreadable_inside_its_ed_is_filed_and_answered_aa(
        ctx, obx5: str, warned: str | None, err_3: str | None) -> None:  # noqa: ANN001
    """The PID names the patient; the document is kept as sent, unread, and the ledger row
    says why: AA (no failure for any row of ack_codes.csv to answer), since round acks3 with
    a warning ERR (severity W) at its OBX-5 for the document that could not be read
    (tests/test_ack_warnings_round3.py). A CDA without recordTarget is read (the PID names
    the patient): no warning, no ERR."""
    control_id = f"ACKS2-UNREAD-{len(obx5)}"
    ack = _answer(ctx, _numbered(_mdm_with(obx5, txa12=f"{control_id}^DPI-Y"), control_id))
    assert msa(ack)[1] == "AA"
    err = segment(ack, "ERR")
    if err_3 is None:
        assert err is None
    else:
        assert err[2:5] == ["OBX^1^5^1", f"{err_3}^Data type error^HL70357", "W"]
    with ctx.engine.connect() as conn:
        row = conn.execute(select(imports).where(imports.c.logical_id.contains(control_id))
                           ).one()
    assert (row.status, row.error_code) == ("deposited", None)
    if warned:
        assert any(warned in w for w in row.warnings or [])


# -- the advice rows' commands exist in the CLI -------------------------------------------------
_PLACED = re.compile(r"\(([^()]*)\)")


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    return next((dict(a.choices) for a in parser._actions  # noqa: SLF001 - argparse's own
                 if isinstance(a, argparse._SubParsersAction)), {})  # noqa: SLF001


def _unknown_in(command: str, parser: argparse.ArgumentParser) -> str | None:
    """What of ``command`` ('imports rerun --code X') the CLI does not have, or None."""
    words = command.split()
    if words[0] == "dmp-ingest":
        words = words[1:]
    while words and words[0] in (subs := _subcommands(parser)):
        parser = subs[words.pop(0)]
    if _subcommands(parser):
        return f"{command!r}: no such command"
    options = {o for a in parser._actions for o in a.option_strings}  # noqa: SLF001
    bad = [w for w in words if w.startswith("--") and w not in options]
    return f"{command!r}: no option {bad[0]}" if bad else None


def _advice_commands(text: str, top: set[str]) -> list[str]:
    """The commands an advice names in parentheses: '(imports rerun ID)', '(dmp-ingest
    check)'; a clause after ';' is read alone."""
    clauses = (c.strip() for group in _PLACED.findall(text) for c in group.split(";"))
    return [c for c in clauses if c.split(" ", 1)[0] in top | {"dmp-ingest"}]


def test_every_advice_command_exists_in_the_cli() -> None:
    """An admin copies the command the advice gives: each command and option it names is
    one `dmp-ingest` has. IDENTITY_UNKNOWN_PATIENT's gave `imports rerun --code
    IDENTITY_UNKNOWN_PATIENT`, rerunning every unknown patient's imports for the one
    dossier created; `--waiting-for` reruns those that name its INS, as `dossier create`
    itself prints."""
    parser = build_parser()
    top = set(_subcommands(parser))
    rows = read_csv_rows(ROOT / "pipelines" / "tables" / "error_advice.csv")
    commands = [c for row in rows for c in _advice_commands(row["advice"], top)]
    assert len(commands) > 15 and "dossier create" in commands
    assert [u for c in commands if (u := _unknown_in(c, parser))] == []
    assert _unknown_in("imports rerun --wait-for 10", parser)  # the check can fail
    assert _unknown_in("dossier recreate", parser)
    unknown = advice("IDENTITY_UNKNOWN_PATIENT") or ""
    assert "imports rerun --waiting-for" in unknown and "--code" not in unknown
