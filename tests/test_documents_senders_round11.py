"""Documents carried in HL7v2, round 11: the document of an ORU (OBX ED) keyed by an order
number whose namespace has no universal id is scoped by the sending facility (MSH-4), as
round 10 scopes a TXA-12 number.

Why: each test pins what a real sender sends and what we must file for it; the ones marked
'was' failed before the fix of the same commit."""

from __future__ import annotations

import pytest

from normalizers.model import DOCUMENT
from tests.test_documents_normalizer import b64, norm, oru
from tests.test_documents_senders_round4 import PDF_REPORT, _auto, _through
from tests.test_documents_senders_round9 import _documents

NORD, SUD = "document|24B0412-03|LAB@LABO-NORD|1", "document|24B0412-03|LAB@LABO-SUD|1"
LEGACY = "document|24B0412-03|LAB|1"  # as filed before this round


def _lab(facility: str, obx11: str = "F", obr3: str = "24B0412-03^LAB",
         pdf: bytes = b"") -> str:
    """A laboratory's SIL (MSH-3 SIL, MSH-4 its facility) sending its PDF report in an ORU^R01
    (outside CI-SIS) under the filler order number ``obr3``: namespace 'LAB' alone, no OID
    (EI.3 empty), as two SIL of one vendor are set up. OBX-11 'D' cancels it."""
    text = oru("NW", obx11, b64(pdf or PDF_REPORT.read_bytes()), profile="")
    return (text.replace("|SIL-Y|labo|", f"|SIL|{facility}|")
            .replace("1001-E1^labo", obr3).replace("^TEXT^XML^", "^AP^PDF^")
            .replace("|MSG-42|", f"|{facility}-{obx11}-{len(pdf)}|"))


def _keys(text: str) -> list[str]:
    return [e.key for e in norm(text).entries if e.type == DOCUMENT]


def test_two_labs_numbering_under_one_namespace_keep_their_reports_apart(sqlite_ctx):
    """Two laboratories (MSH-4 LABO-NORD, LABO-SUD) whose SIL both give filler number
    '24B0412-03^LAB' send their PDF reports through one MLLP listener: two documents, and
    the second lab's cancel (OBX-11 D) withdraws its own. Was: one key
    'document|24B0412-03|LAB|1', the second report a new version of the first's, its cancel
    withdrawing the other lab's."""
    ctx = _auto(sqlite_ctx)
    rows = _through(ctx, _lab("LABO-NORD"), _lab("LABO-SUD", pdf=PDF_REPORT.read_bytes()
                                                 + "\n% Bilan hépatique\n".encode()),
                    _lab("LABO-SUD", "D"))
    assert [r.status for r in rows] == ["deposited"] * 3
    documents = _documents(ctx)
    assert documents[NORD] == (True, "final")
    assert documents[SUD][1] != "final" and LEGACY not in documents


@pytest.mark.parametrize(("text", "key"), [
    # a universal id names the authority: its key as before (the namespace, as sent)
    (_lab("LABO-NORD", obr3="24B0412-03^LAB^1.2.250.1.999.1.3^ISO"), LEGACY),
    # a facility naming its namespace after itself: nothing to scope
    (_lab("LAB"), LEGACY),
    # a bare number: scoped by its sender as since documents round 4
    (_lab("LABO-NORD", obr3="24B0412-03"), "document|24B0412-03|&SIL^LABO-NORD|1"),
])
def test_only_a_namespace_without_universal_id_is_scoped(text, key):
    assert _keys(text) == [key]


def _filed_before_scoping(ctx) -> None:  # noqa: ANN001
    """LABO-NORD's report in the dossier under the key this round's code did not give yet."""
    from sqlalchemy import update

    from dossiers.schema import entries
    _through(ctx, _lab("LABO-NORD"))
    with ctx.engine.begin() as conn:
        conn.execute(update(entries).where(entries.c.key == NORD).values(key=LEGACY))


def test_a_report_filed_before_scoping_is_cancelled_by_its_own_lab_only(sqlite_ctx):
    """A dossier holding 'document|24B0412-03|LAB|1' filed by LABO-NORD before this round:
    LABO-SUD's cancel of its own 24B0412-03 leaves it; LABO-NORD's cancel withdraws it (the
    key it was filed under followed), no second document under the scoped key."""
    ctx = _auto(sqlite_ctx)
    _filed_before_scoping(ctx)
    rows = _through(ctx, _lab("LABO-SUD", "D"))
    assert _documents(ctx)[LEGACY] == (True, "final")
    rows += _through(ctx, _lab("LABO-NORD", "D"))
    assert [r.status for r in rows] == ["deposited"] * 2
    documents = _documents(ctx)
    assert documents[LEGACY][1] != "final" and NORD not in documents


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_report_filed_before_scoping_gets_its_correction_on_postgresql(ctx):
    """The same store rule on PostgreSQL: LABO-NORD's correction (OBX-11 C) supersedes the
    report it filed under the old key (the new version filed under the scoped key, as round 4's
    bare numbers). Was: a second current report beside the first."""
    ctx = _auto(ctx)
    _filed_before_scoping(ctx)
    row, = _through(ctx, _lab("LABO-NORD", "C", pdf=PDF_REPORT.read_bytes() + b"\n"))
    assert row.status == "deposited"
    assert _documents(ctx) == {LEGACY: (False, "final"), NORD: (True, "corrected")}
