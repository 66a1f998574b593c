"""Documents carried in HL7v2, round 13: the document of a child order (an antibiogram sent
without numbers of its own, keyed through its parent's OBR-29) has a key of its own, the
child's universal service id (OBR-4) and parent result (OBR-26) added to its parent's
numbers, so that it is no longer a version of the parent's own document; stable across
resends of the child; a child's document filed before under its parent's key is followed.

What the laboratory sends (IHE LAB-3 microbiology, ORU^R01 v2.5): day 1 the urine culture
under its filler number '24B0412-03^LAB' (no OID), the E. coli identified at OBX-4 '1' and
the culture report as a PDF; day 2 the antibiogram as a child order: no ORC/OBR numbers,
OBR-29 the culture's numbers, OBR-26 the isolate's OBX, its MICs and its own PDF.

Why: each test pins what a real sender sends and what we must file for it; the ones marked
'was' failed before the fix of the same commit."""

from __future__ import annotations

import pytest

from normalizers.model import DOCUMENT, LAB_RESULT
from tests.test_documents_normalizer import PID, b64, norm
from tests.test_documents_senders_round4 import _auto, _through
from tests.test_documents_senders_round9 import _documents

PRINTOUT = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
CULTURE_PDF = b64(PRINTOUT + b"% ECBU : culture positive\n")
ANTIBIOGRAM_PDF = b64(PRINTOUT + b"% Antibiogramme E. coli\n")
CORRECTED_PDF = b64(PRINTOUT + b"% Antibiogramme E. coli, amoxicilline corrigee\n")

MSH = "MSH|^~\\&|SIL|LABO-NORD|DMP|GHT|{at}||ORU^R01^ORU_R01|{control}|P|2.5|||||FRA|" \
      "UNICODE UTF-8"
# OBR-7 then up to OBR-25 (result status), for the OBR-26 and OBR-29 after it
TO_STATUS = "|||202403150810" + "|" * 18 + "F"


def _culture_order() -> list[str]:
    """The culture order: its own filler number, E. coli identified, the report PDF at
    OBX-2 (no OBX-4: its sub-id is its set id, '2')."""
    return ["ORC|RE||24B0412-03^LAB",
            f"OBR|1||24B0412-03^LAB|630-4^Culture urine^LN{TO_STATUS}",
            "OBX|1|CWE|600-7^Bactérie identifiée^LN|1|112283007^Escherichia coli^SCT||||||F",
            f"OBX|2|ED|11475-1^Culture^LN||^AP^PDF^Base64^{CULTURE_PDF}||||||F"]


def _antibiogram_order(isolate: str = "1^Escherichia coli", obx11: str = "F",
                       pdf: str = ANTIBIOGRAM_PDF, mic: str = ">^16") -> list[str]:
    """The antibiogram child order: OBR-26 the isolate (600-7, sub-id and name), OBR-29 the
    culture's filler number, an amoxicillin MIC and the antibiogram PDF at OBX-2."""
    return ["ORC|RE",
            f"OBR|1|||18769-0^Antibiogramme^LN{TO_STATUS}|"
            f"600-7&Bactérie identifiée&LN^{isolate}|||^24B0412-03&LAB",
            f"OBX|1|SN|18864-9^Amoxicilline^LN|1|{mic}|mg/L||R|||{obx11}",
            f"OBX|2|ED|18769-0^Antibiogramme^LN||^AP^PDF^Base64^{pdf}||||||{obx11}"]


def _message(control: str, at: str, *orders: list[str]) -> str:
    return "\r".join([MSH.format(at=at, control=control), PID, "PV1|1|I|UROLOGIE",
                      *(s for order in orders for s in order)]) + "\r"


def _culture(control: str = "CULT-1") -> str:
    return _message(control, "202403151830", _culture_order())


def _antibiogram(control: str = "ATB-1", **kw: str) -> str:
    return _message(control, "202403161430", _antibiogram_order(**kw))


CULTURE = "document|24B0412-03|LAB@LABO-NORD|2"  # the parent's own: unchanged
PARENT_FORM = CULTURE  # what the antibiogram's PDF was keyed as before this round
CHILD = "document|24B0412-03|LAB@LABO-NORD|2|18769-0|600-7^1"
CHILD_REPORT = "report|24B0412-03|LAB|18769-0|600-7^1"


def _document_keys(text: str) -> list[str]:
    return [e.key for e in norm(text).entries if e.type == DOCUMENT]


def test_a_child_order_document_has_a_key_of_its_own():
    """Was: the antibiogram's PDF keyed 'document|24B0412-03|LAB@LABO-NORD|2', the culture
    report PDF's key; in one message the second made unique by its rank ('#2')."""
    assert _document_keys(_culture()) == [CULTURE]
    assert _document_keys(_antibiogram()) == [CHILD]
    both = _message("CULT-ATB", "202403161430", _culture_order(), _antibiogram_order())
    assert _document_keys(both) == [CULTURE, CHILD]


def test_the_child_key_is_stable_and_its_results_keys_unchanged():
    """The same child order resent, corrected (OBX-11 C, another PDF): the same key. Its
    report and results keep the keys they had."""
    assert _document_keys(_antibiogram("ATB-2", obx11="C", pdf=CORRECTED_PDF)) == [CHILD]
    entries = norm(_antibiogram()).entries
    assert [e.key for e in entries if e.type != DOCUMENT and e.type != LAB_RESULT] \
        == [CHILD_REPORT]
    document = next(e for e in entries if e.type == DOCUMENT)
    assert document.parent_key == CHILD_REPORT


@pytest.mark.parametrize(("isolate", "child"), [
    # two isolates of one culture: each antibiogram its own document (was: one key, the
    # second isolate's antibiogram filed as a new version of the first's)
    ("2^Klebsiella pneumoniae", "600-7^2"),
    # PRL.2 left out: the isolate's name tells them apart, as the report key
    ("^Klebsiella pneumoniae", "600-7^^Klebsiella pneumoniae"),
])
def test_two_isolates_antibiograms_have_two_keys(isolate, child):
    assert _document_keys(_antibiogram(isolate=isolate)) \
        == [f"document|24B0412-03|LAB@LABO-NORD|2|18769-0|{child}"]


def test_the_antibiogram_no_longer_replaces_the_culture_report(sqlite_ctx):
    """Culture (day 1), antibiogram (day 2), the antibiogram corrected (day 3): the culture
    report stays current beside the antibiogram, whose correction versions its own PDF.
    Was: the antibiogram filed as version 2 of the culture report (the dossier's culture
    report gone from view), its correction as version 3."""
    ctx = _auto(sqlite_ctx)
    rows = _through(ctx, _culture(), _antibiogram(),
                    _antibiogram("ATB-2", obx11="C", pdf=CORRECTED_PDF, mic=">^32"))
    assert [r.status for r in rows] == ["deposited"] * 3
    documents = _documents(ctx)
    assert documents == {CULTURE: (True, "final"), CHILD: (True, "corrected")}


def _file_as_before(ctx, key: str = CHILD, old: str = PARENT_FORM) -> None:  # noqa: ANN001
    """Give the documents filed under ``key`` the key this round's code did not give yet."""
    from sqlalchemy import update

    from dossiers.schema import entries
    with ctx.engine.begin() as conn:
        conn.execute(update(entries).where(entries.c.key == key).values(key=old))


def test_an_antibiogram_filed_under_its_parent_key_is_found_again(sqlite_ctx):
    """An antibiogram filed before this round under its parent's key (hanging from the
    antibiogram's report): sent again after the upgrade (a new MSH-10) it is a duplicate of
    it, and its correction (OBX-11 C) supersedes it, the corrected version under the
    child's own key (as a correction of a number scoped since, round 12). Was: the resend
    filed as a second antibiogram under the new key, the correction beside the old one."""
    ctx = _auto(sqlite_ctx)
    _through(ctx, _antibiogram())
    _file_as_before(ctx)
    rows = _through(ctx, _antibiogram("ATB-1-BIS"))
    assert [r.status for r in rows] == ["duplicate"]
    assert _documents(ctx) == {PARENT_FORM: (True, "final")}
    rows = _through(ctx, _antibiogram("ATB-2", obx11="C", pdf=CORRECTED_PDF, mic=">^32"))
    assert [r.status for r in rows] == ["deposited"]
    assert _documents(ctx) == {PARENT_FORM: (False, "final"), CHILD: (True, "corrected")}


def test_a_culture_report_under_the_parent_key_is_not_taken_for_the_antibiogram(sqlite_ctx):
    """The culture report under 'document|24B0412-03|LAB@LABO-NORD|2' hangs from the
    culture's report: an antibiogram filed before round 12 under its parent's unscoped
    form ('...|LAB|2'), then the culture report (its key scoped since round 11), then the
    antibiogram's correction: the culture report is its own document and the correction
    supersedes the antibiogram. Was: the culture report filed as the old antibiogram's new
    version (its key's unscoped form followed), the correction beside it."""
    ctx = _auto(sqlite_ctx)
    _through(ctx, _antibiogram())
    _file_as_before(ctx, old="document|24B0412-03|LAB|2")
    rows = _through(ctx, _culture(), _antibiogram("ATB-2", obx11="C", pdf=CORRECTED_PDF))
    assert [r.status for r in rows] == ["deposited"] * 2
    assert _documents(ctx) == {CULTURE: (True, "final"),
                               "document|24B0412-03|LAB|2": (False, "final"),
                               CHILD: (True, "corrected")}


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_an_antibiogram_filed_under_its_parent_key_is_followed_on_postgresql(ctx):
    """On PostgreSQL: an antibiogram filed before this round under its parent's key; its
    correction supersedes it."""
    ctx = _auto(ctx)
    _through(ctx, _antibiogram())
    _file_as_before(ctx)
    rows = _through(ctx, _antibiogram("ATB-2", obx11="C", pdf=CORRECTED_PDF))
    assert [r.status for r in rows] == ["deposited"]
    assert _documents(ctx) == {PARENT_FORM: (False, "final"), CHILD: (True, "corrected")}
