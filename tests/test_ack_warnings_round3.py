"""Application ACK warnings, round 3: a document carried in an HL7v2 message (OBX ED) that was
filed unread is told to its sender, AA with one ERR of severity W per such document (HL7 v2.5
2.14.5, ERR-4 W: "transaction successful, but there may be issues"), and found by an operator
(`imports list --warning CODE`).

Before: a CDA refused for its DOCTYPE, an encrypted PDF... filed unread, a warning on the
ledger row ('deposited'), and a plain AA: the sender's integration engineer never learnt the
document was not read, and `imports list --code` found nothing (no error code)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime

import hl7
import hl7.client
import pytest
from sqlalchemy import create_engine, insert

from cli import build_parser
from dossiers.schema import imports
from parsers.hl7v2.ack import ERROR_TEXTS
from pipelines.acknowledge import APPLICATION, Frame, acknowledge
from pipelines.filters import build_filter
from pipelines.ledger import ImportFilter
from pipelines.report import list_imports
from pipelines.unread_documents import unread_codes, unread_document_errors
from tests.conftest import ROOT, SAMPLES, migrated_sqlite
from tests.mllp_support import msa, running_service, segment
from tests.test_documents_normalizer import b64, cda, oru
from tests.test_documents_senders_round9 import _mdm
from tests.test_mllp_service import make_ctx

ENCRYPTED_PDF = (SAMPLES / "pdf" / "13_irm_cerebrale_K3_chiffre.pdf").read_bytes()


def xxe_cda(ext: str) -> bytes:
    """A CR-BIO whose prolog declares an external entity (XXE): refused by the hardened
    parser. Each test its own document id (the same id again would be a duplicate)."""
    return cda(ext).replace(
        b'<?xml version="1.0" encoding="UTF-8"?>',
        b'<?xml version="1.0" encoding="UTF-8"?>'
        b'<!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
    ).replace(b"<title>Compte rendu", b"<title>&x; Compte rendu")




@pytest.fixture(scope="module")
def ctx(tmp_path_factory, sqlite_template) -> Iterator:  # noqa: ANN001
    """One application-mode store (SQLite: the ACK rules are no store rule), creating the
    dossier a message names, as Mon Espace Santé does."""
    tmp = tmp_path_factory.mktemp("acks3")
    context = make_ctx(tmp, migrated_sqlite(sqlite_template, tmp / "store.sqlite3"),
                       ack_mode="application")
    context.settings = replace(context.settings, auto_create=True)
    yield context
    context.engine.dispose()


def _numbered(message: str, control_id: str, version: str | None = None,
              msh15_16: tuple[str, str] | None = None) -> bytes:
    """``message`` under its own MSH-10 (and MSH-12, MSH-15/16 when given)."""
    first, _, rest = message.partition("\r")
    fields = first.split("|")
    fields[9] = control_id
    if version is not None:
        fields[11] = version
    if msh15_16 is not None:
        fields[14:16] = msh15_16
    return ("|".join(fields) + "\r" + rest).encode()


def _answers(ctx, data: bytes) -> list[bytes]:  # noqa: ANN001
    (acks,) = acknowledge(ctx, [Frame(data, "127.0.0.1", datetime.now(UTC))], mode=APPLICATION)
    return acks


def _errs(ack: bytes) -> list[list[str]]:
    return [s.split("|") for s in ack.decode().split("\r") if s.startswith("ERR|")]


def _report(control_id: str, *obx5: str) -> bytes:
    """A hospital DPI's MDM^T02 (v2.5) carrying its report in each OBX given."""
    obx = [f"OBX|{n}|ED|11502-2^CR d'examens biologiques^LN||{v}||||||F"
           for n, v in enumerate(obx5, start=1)]
    return _numbered(_mdm("T02", f"{control_id}^DPI-Y", obx), control_id)


# -- over a real socket, read by python-hl7 ------------------------------------------------------
def test_a_cisis_oru_whose_cda_is_refused_gets_aa_with_a_warning_err_over_mllp(ctx) -> None:  # noqa: ANN001
    """A laboratory's CI-SIS ORU^R01 whose CR-BIO declares an external entity, sent with
    python-hl7's MLLPClient: AA, and an ERR that python-hl7 reads, at the OBX carrying the
    CDA (the message's 6th segment, its 1st OBX), 102, severity W."""
    data = _numbered(oru("NW", "F", b64(xxe_cda("CRBIO-3301"))), "ACKS3-ORU-XXE")
    with running_service(ctx, process=False) as svc:
        client = hl7.client.MLLPClient("127.0.0.1", svc.port)
        try:
            raw = client.send_message(data)
        finally:
            client.close()
    ack = hl7.parse(raw.strip(b"\x0b\x1c\r").decode())
    assert str(ack.segment("MSA")[1]) == "AA" and str(ack.segment("MSA")[2]) == "ACKS3-ORU-XXE"
    err = ack.segment("ERR")
    assert str(err[2]) == "OBX^1^5^1"
    assert str(err[3]) == "102^Data type error^HL70357" and str(err[4]) == "W"
    assert str(err[8]).startswith("CDA_DTD_FORBIDDEN: the CDA body could not be read")
    assert "passwd" not in str(err[8])


# -- through acknowledge() --------------------------------------------------------------------
def test_each_unread_document_gets_its_own_err_at_its_obx(ctx) -> None:  # noqa: ANN001
    """An MDM carrying an encrypted PDF (OBX 1), a readable one would be filed with its
    report; then bytes that are no PDF at all (OBX 2): one ERR each, in OBX order."""
    ack, = _answers(ctx, _report("ACKS3-TWO", f"^AP^PDF^Base64^{b64(ENCRYPTED_PDF)}",
                                 f"^AP^PDF^Base64^{b64('Compte rendu dicté'.encode())}"))
    assert msa(ack)[1:3] == ["AA", "ACKS3-TWO"]
    errs = _errs(ack)
    assert [(e[2], e[3].split("^")[0], e[4], e[8].split(":")[0]) for e in errs] == [
        ("OBX^1^5^1", "102", "W", "PDF_ENCRYPTED"), ("OBX^2^5^1", "102", "W", "PDF_NOT_PDF")]
    assert msa(ack)[3].startswith("PDF_ENCRYPTED: the PDF could not be read")  # MSA-3 < 2.7


def test_a_v24_sender_gets_the_warning_in_err_1(ctx) -> None:  # noqa: ANN001
    """v2.4 (ERR-1 ELD, MSA-3): 'OBX^1^5^102&Data type error&HL70357', no ERR-4."""
    data = _report("ACKS3-V24", f"^AP^PDF^Base64^{b64(ENCRYPTED_PDF)}").replace(
        b"|P|2.5|", b"|P|2.4|", 1)
    ack, = _answers(ctx, data)
    assert msa(ack)[1] == "AA" and msa(ack)[3].startswith("PDF_ENCRYPTED: ")
    assert _errs(ack) == [["ERR", "OBX^1^5^102&Data type error&HL70357"]]


def test_enhanced_mode_commit_ack_is_unchanged_and_the_application_ack_warns(ctx) -> None:  # noqa: ANN001
    """MSH-15/16 AL/AL (a CI-SIS sender): CA without ERR (stored, nothing of the
    processing), then AA with the warning ERR."""
    data = _numbered(oru("NW", "F", b64(xxe_cda("CRBIO-3303"))), "ACKS3-ALAL",
                     msh15_16=("AL", "AL"))
    commit, application = _answers(ctx, data)
    assert msa(commit)[1] == "CA" and segment(commit, "ERR") is None
    assert msa(application)[1] == "AA"
    assert [e[2:5] for e in _errs(application)] == [
        ["OBX^1^5^1", "102^Data type error^HL70357", "W"]]


def test_a_readable_document_still_gets_a_plain_aa(ctx) -> None:  # noqa: ANN001
    """The same MDM with a CR-BIO that reads: AA, no ERR (the ERR is not on every ACK)."""
    ack, = _answers(ctx, _report("ACKS3-OK", f"^TEXT^XML^Base64^{b64(cda('CRBIO-3302'))}"))
    assert msa(ack)[1] == "AA" and segment(ack, "ERR") is None


# -- the warning lines -> ERRs (the table, a condensed line) ------------------------------------
MESSAGE = b"MSH|^~\\&|A|B|C|D|1||MDM^T02|X|P|2.5\rEVN|\rPID|\rPV1|\rTXA|\r" + b"".join(
    b"OBX|%d|ED|\r" % n for n in range(1, 9))


@pytest.mark.parametrize(("line", "expected"), [
    ("OBX[6]: the CDA body could not be read (CDA_NOT_XML); the document is filed without its "
     "coded entries", [("OBX[1]-5", "102", "CDA_NOT_XML: the CDA body could not be read; the "
                        "document is filed without its coded entries")]),
    ("OBX[7]: the CDA body could not be read (CDA_UNKNOWN_XSI_TYPE); ...",
     [("OBX[2]-5", "103", "CDA_UNKNOWN_XSI_TYPE: the CDA body could not be read; ...")]),
    ("OBX[6]: the PDF could not be read (PDF_TOO_MANY_PAGES); the document is filed without "
     "its report entry", [("OBX[1]-5", "104", None)]),
    ("OBX[8]: the image/tiff image could not be read (PDF_CORRUPT): kept unread, filed "
     "without its report entry", [("OBX[3]-5", "102", None)]),
    ("OBX[6]: the PDF could not be read (REPORT_NO_DATE); ...", [("OBX[1]-5", "102", None)]),
    # condensed on the ledger (pipelines/warning_lines.py): one ERR per place it names
    ("OBX[6], OBX[7], OBX[8] and 5 more places: the PDF could not be read (PDF_ENCRYPTED); "
     "the document is filed without its report entry",
     [("OBX[1]-5", "102", None), ("OBX[2]-5", "102", None), ("OBX[3]-5", "102", None)]),
    ("OBX[6]-5: decimal comma read as a decimal point", []),
    ("the CDA body could not be read (CDA_NOT_XML)", []),  # no place: not a carried document
], ids=["not-xml", "unknown-type", "too-many-pages", "image", "default", "condensed",
        "other-warning", "no-place"])
def test_unread_document_lines_become_warning_errs(line: str, expected: list) -> None:
    errors = unread_document_errors([line], MESSAGE)
    assert [(e.location, e.hl7_code) for e in errors] == [(w, c) for w, c, _ in expected]
    assert all(e.severity == "W" for e in errors)
    for error, (_, _, text) in zip(errors, expected, strict=True):
        assert text is None or error.text == text


def test_every_code_of_the_table_exists_and_maps_to_a_0357_code() -> None:
    """A typo in the table would answer that code with the default: each code is raised in
    parsers/ or normalizers/, and each ERR-3 is one ERROR_TEXTS describes."""
    sources = "".join(p.read_text(encoding="utf-8") for folder in ("parsers", "normalizers")
                      for p in (ROOT / folder).rglob("*.py"))
    table = unread_codes()
    assert table["*"] == "102" and len(table) > 20
    assert [c for c in table if c != "*" and f'"{c}"' not in sources] == []
    assert [h for h in table.values() if h not in ERROR_TEXTS] == []


# -- found by an operator: imports list --warning CODE ----------------------------------------
def test_imports_list_warning_finds_the_rows_with_an_unread_document(ctx) -> None:  # noqa: ANN001
    """The rows filed with an unread document are 'deposited' without an error code:
    --code never found them. --warning CODE does (case ignored, '_' a plain character)."""
    _answers(ctx, _report("ACKS3-LIST", f"^AP^PDF^Base64^{b64(ENCRYPTED_PDF)}"))
    found = list_imports(ctx.engine, build_filter(ctx.engine, warning=" pdf_encrypted "))
    assert found and all(r["status"] == "deposited" and r["error_code"] is None
                         for r in found)
    assert any("ACKS3-LIST" in (r["logical_id"] or "") for r in found)
    assert not any("ACKS3-OK" in (r["logical_id"] or "") for r in found)
    assert list_imports(ctx.engine, ImportFilter(warning_code="PDF%ENCRYPTED")) == []
    args = build_parser().parse_args(["imports", "list", "--warning", "PDF_ENCRYPTED"])
    assert args.warning == "PDF_ENCRYPTED"
    with pytest.raises(SystemExit):  # rerun does not take it (it would rerun every import)
        build_parser().parse_args(["imports", "rerun", "--warning", "PDF_ENCRYPTED"])


def test_warning_filter_on_postgresql(postgres_server) -> None:  # noqa: ANN001
    """The JSON column read as text on PostgreSQL too (its JSON keeps the text as sent)."""
    engine = create_engine(postgres_server.new_database())
    row = {"source": "dpi-y", "channel": "mllp", "received_at": datetime.now(UTC),
           "sha256": "0" * 64, "size": 10, "status": "deposited", "format": "hl7v2"}
    with engine.begin() as conn:
        conn.execute(insert(imports), [
            {**row, "logical_id": "DPI-Y|CR-é", "warnings": [
                "OBX[6]: the PDF could not be read (PDF_ENCRYPTED); the document is filed "
                "without its report entry"]},
            {**row, "logical_id": "DPI-Y|CR-2", "warnings": ["OBX[6]-5: unité « mmol/l »"]},
            {**row, "logical_id": "DPI-Y|CR-3", "warnings": None}])
    try:
        found = list_imports(engine, ImportFilter(warning_code="PDF_ENCRYPTED"))
        assert [r["logical_id"] for r in found] == ["DPI-Y|CR-é"]
        assert list_imports(engine, ImportFilter(warning_code="PDF%")) == []
    finally:
        engine.dispose()


def test_the_docs_name_the_filter() -> None:
    """README's operator section and docs/error-codes.md say how to find these imports."""
    for doc in ("README.md", "docs/error-codes.md"):
        assert re.search(r"imports list --warning", (ROOT / doc).read_text(encoding="utf-8"))
