"""Documents carried in HL7v2, round 6: a draft held back until signed is 'held' on the ledger
(accepted, not filed, no failure), and the MDM^T03 that says it is signed files it.

Why: HL7 v2.5 9.6.1.19 holds back a document not for patient care yet (round 5); chapter 9
has a document server announce the signature with a T03 that carries no content. Each test
pins what a real transcription flow sends; the ones marked 'was' failed before the fix."""

from __future__ import annotations

import base64

from sqlalchemy import select

from dossiers.schema import imports, provenance
from tests.test_documents_senders import _filed
from tests.test_documents_senders_round4 import PDF, _auto, _mdm, _through
from tests.test_documents_senders_round5 import KEY, SIGNED, _status_change


def _row(ctx, import_id: int):  # noqa: ANN001, ANN202
    with ctx.engine.connect() as conn:
        return conn.execute(select(imports).where(imports.c.id == import_id)).one()


def _links(ctx, entry_id: int) -> set[tuple[int, str]]:  # noqa: ANN001
    with ctx.engine.connect() as conn:
        return {(r.import_id, r.relation) for r in conn.execute(
            select(provenance).where(provenance.c.entry_id == entry_id))}


def _archived(ctx, doc) -> bytes:  # noqa: ANN001
    """The file a filed document points at, as the archive keeps it."""
    return ctx.archive.get(doc.attachment_sha256)


def _documents(ctx) -> list[tuple]:  # noqa: ANN001
    return [(e.key, e.version, e.status, e.current) for e in _filed(ctx)
            if e.type == "document"]


# -- the ledger tells the truth: held, not failed ------------------------------------------------
def test_a_dictated_report_is_held_on_the_ledger_not_failed(ctx):
    """MDM^T02 of a dictated CR-IMG (TXA-17 DI, no TXA-19): 'held' with MDM_NOT_AVAILABLE
    at TXA-17, nothing filed; the failure filters, the ingest summary's failures and
    `check` do not count it. Was: 'failed', one failure per report of a working flow."""
    from pipelines.check import check
    from pipelines.ledger import ImportFilter
    from pipelines.report import import_stats, ingest_summary
    from pipelines.rerun import select_ids

    row, = _through(_auto(ctx), _mdm("T02", "F", "CR-90", txa17="DI", txa19=""))
    assert (row.status, row.error_code, row.error_location) == (
        "held", "MDM_NOT_AVAILABLE", "TXA[5]-17")
    assert _filed(ctx) == []
    assert select_ids(ctx.engine, ImportFilter(status="failed")) == []
    assert select_ids(ctx.engine, ImportFilter(status="held")) == [row.id]
    summary = ingest_summary(ctx.engine, [row.id], [])
    assert (summary["failed"], summary["held"]) == (0, 1)
    assert [p["id"] for p in summary["problems"]] == []
    advice, = [r["advice"] for r in import_stats(ctx.engine, ImportFilter(status="held"))
               ["by_code"]]
    assert advice.startswith("nothing to do")  # was: none for a held row
    report = check(ctx.engine, ctx.archive)  # no check of the store names a held import
    assert not [f for f in report.findings if row.id in f.ids]


def test_held_is_a_status_every_listing_knows():
    """The admin's filters (CLI, API), the console's status list and its labels know
    'held': a filter on it was refused as an unknown status."""
    import json
    from pathlib import Path

    from api.console.render import STATUS_COLOURS
    from api.console.web import STATUSES as CONSOLE
    from pipelines.filters import STATUSES, _status
    from pipelines.ledger import COUNTED, TERMINAL, reopenable

    assert "held" in STATUSES and "held" in CONSOLE and "held" in STATUS_COLOURS
    assert _status("Held") == "held"
    assert "held" in TERMINAL and "held" in COUNTED
    assert reopenable("held", "normalize")  # an admin may rerun it by id
    labels = json.loads((Path(__file__).parents[1] / "api/console/messages.json").read_text())
    assert labels["status.held"]["fr"] and labels["status.held"]["en"]


def test_a_held_draft_is_acknowledged_aa_with_a_warning():
    """Application ACK of a held draft: AA (accepted: it is kept and filed once signed) with
    an ERR of severity W naming MDM_NOT_AVAILABLE and TXA-17. Was: AR 207, which tells the
    sender it was refused and invites it to resend the draft unchanged."""
    from parsers.hl7v2.ack import build_ack
    from pipelines.acknowledge import _verdict

    code, error = _verdict(("held", "MDM_NOT_AVAILABLE", "TXA[5]-17: dictated", "TXA[5]-17"))
    assert code == "AA"
    assert (error.severity, error.hl7_code, error.location) == ("W", "0", "TXA[5]-17")
    assert error.text.startswith("MDM_NOT_AVAILABLE")
    ack = build_ack(None, code, error=error).decode().split("\r")
    assert ack[1].startswith("MSA|AA|")
    assert ack[2].split("|")[2:5] == ["TXA^5^17^1", "0^Message accepted^HL70357", "W"]
    assert _verdict(("failed", "MDM_NO_TXA", "no TXA", "TXA"))[0] == "AE"


# -- the signature (MDM^T03, no content) releases the held draft ---------------------------------
def test_a_signature_without_content_files_the_held_draft(ctx):
    """T02 dictated (held), then the T03 that says it is legally authenticated (TXA-17 LA,
    TXA-19 AV, no OBX): the held import's content is filed final, once, linked to both
    imports; the held row says it was released; the T03 sent again (another MSH-10) is a
    duplicate. Was: the T03 'does not hold', nothing filed, the sender asked to resend."""
    rows = _through(_auto(ctx),
                    _mdm("T02", "F", "CR-91", txa17="DI", txa19="", ed=SIGNED),
                    _status_change("CR-91", "LA"),
                    _status_change("CR-91", "LA").replace("RIS-Y-T03-CR-91",
                                                          "RIS-Y-T03b-CR-91"))
    assert [r.status for r in rows] == ["held", "deposited", "duplicate"]
    assert not any("does not hold" in w for w in rows[1].warnings or [])
    assert any(f"held back by import {rows[0].id}" in w for w in rows[1].warnings)
    doc, = _filed(ctx)
    assert (doc.key, doc.version, doc.status, doc.current) == (
        KEY.format(n="CR-91"), 1, "final", True)
    assert doc.media_type == "text/plain" and doc.attachment_sha256
    assert (doc.details["completion_status"], doc.details["availability_status"]) == (
        "LA", "AV")
    assert _links(ctx, doc.id) == {(rows[0].id, "drafted"), (rows[1].id, "created"),
                                  (rows[2].id, "confirmed")}  # the T03 sent again
    assert _row(ctx, rows[0].id).status == "held"
    assert f"released: filed by import {rows[1].id}" in _row(ctx, rows[0].id).discard_reason


def test_the_report_of_a_held_pdf_is_filed_signed_with_it(ctx):
    """A dictated CR-IMG sent as its PDF (held), signed by a T03 with TXA-18 V: the document
    and the imaging report read from it are final, the document masked as the T03 says."""
    masked = _status_change("CR-92", "AU").replace("|AU||AV", "|AU|V|AV")
    rows = _through(_auto(ctx), _mdm("T02", "F", "CR-92", txa17="PA", txa19="UN", ed=PDF),
                    masked)
    assert [r.status for r in rows] == ["held", "deposited"]
    filed = {e.type: e for e in _filed(ctx)}
    assert {(t, e.status, e.current) for t, e in filed.items()} == {
        ("document", "final", True), ("imaging_report", "final", True)}
    assert filed["document"].masking == {"MASQUE_PS": True}
    assert filed["imaging_report"].parent_id == filed["document"].id


def test_a_signature_before_its_draft_files_the_draft_signed(ctx):
    """Two interfaces, two queues: the T03 (signed) arrives before its T02 (dictated): the
    T03 files nothing and says so; the T02, when it comes, is filed at once final, linked to
    the T03. Was: the T02 held for ever, the signature already spent."""
    rows = _through(_auto(ctx), _status_change("CR-93", "LA"),
                    _mdm("T02", "F", "CR-93", txa17="DI", txa19="", ed=SIGNED))
    assert [r.status for r in rows] == ["deposited", "deposited"]
    assert any("does not hold" in w for w in rows[0].warnings)
    assert _documents(ctx) == [(KEY.format(n="CR-93"), 1, "final", True)]
    doc, = _filed(ctx)
    assert _links(ctx, doc.id) == {(rows[0].id, "signed"), (rows[1].id, "created")}
    # the waiting signature is spent: a second draft of the same number is held again
    again = _through(ctx, _mdm("T08", "F", "CR-93", txa17="DI", txa19="", ed=SIGNED)
                     .replace("RIS-Y-T08-CR-93", "RIS-Y-T08b-CR-93"))
    assert again[0].status == "held"


def test_a_signature_is_spent_once_its_document_is_filed(ctx):
    """A T03 (signed) before a T02 already authenticated (filed final as it came), then a
    later draft of the same document (T08 dictated): held, not filed as signed by a
    signature given for the earlier version."""
    rows = _through(_auto(ctx), _status_change("CR-105", "LA"),
                    _mdm("T02", "F", "CR-105", txa17="LA", txa19="AV", ed=SIGNED),
                    _mdm("T08", "F", "CR-105", txa17="DI", txa19=""))
    assert [r.status for r in rows] == ["deposited", "deposited", "held"]
    assert [d[1:] for d in _documents(ctx)] == [(1, "final", True)]


def test_the_latest_draft_is_the_one_released(ctx):
    """T02 dictated, then T08 (an edit of the draft, still dictated): the T03 files the
    T08's content. The first draft's row stays held without being released."""
    edited = "^TEXT^PLAIN^Base64^" + base64.b64encode(
        "IRM du genou droit : fissure de la corne postérieure du ménisque interne.".encode()
    ).decode()
    rows = _through(_auto(ctx), _mdm("T02", "F", "CR-94", txa17="DI", txa19=""),
                    _mdm("T08", "F", "CR-94", txa17="DI", txa19="", ed=edited),
                    _status_change("CR-94", "LA"))
    assert [r.status for r in rows] == ["held", "held", "deposited"]
    doc, = _filed(ctx)
    assert base64.b64decode(edited.rsplit("^", 1)[1]) == _archived(ctx, doc)
    assert _links(ctx, doc.id) == {(rows[1].id, "drafted"), (rows[2].id, "created")}


def test_a_draft_signed_since_with_its_content_is_not_released_over_it(ctx):
    """T02 dictated (held), T04 with the signed content (filed), then a T03 restating the
    signature: the signed content stays; the old draft is not filed over it."""
    rows = _through(_auto(ctx), _mdm("T02", "F", "CR-95", txa17="DI", txa19=""),
                    _mdm("T04", "F", "CR-95", txa17="AU", txa19="AV", ed=SIGNED),
                    _status_change("CR-95", "LA"))
    assert [r.status for r in rows][:2] == ["held", "deposited"]
    current = [e for e in _filed(ctx) if e.current]
    assert len(current) == 1 and current[0].import_id in (rows[1].id, rows[2].id)
    first = next(e for e in _filed(ctx) if e.import_id == rows[1].id)
    assert current[0].attachment_sha256 == first.attachment_sha256
    assert "superseded" in (_row(ctx, rows[0].id).discard_reason or "")


def _in_one_batch(ctx, *messages: str) -> list:  # noqa: ANN001
    """The messages received together (an MLLP burst, a file of several), then drained in
    one batch: filed in one transaction, outcomes recorded together."""
    from pipelines.intake import Received, intake
    from pipelines.process import drain

    ids = []
    for n, text in enumerate(messages):
        ids += intake(ctx.engine, ctx.archive, [Received(text.encode(), "mllp-ght", "mllp",
                                                         file_name=f"{n}.hl7")])[0].message_ids
    drain(ctx)
    return [_row(ctx, i) for i in ids]


def test_a_draft_and_its_signature_in_one_batch(ctx):
    """A transcription server's burst: the T02 (dictated) and the T03 that signs it, then
    another report's T03 before its T02, drained in one batch. Was (before the batch's
    own rows were looked at): the second message of each pair found its partner still
    'processing' and the draft stayed held."""
    rows = _in_one_batch(_auto(ctx), _mdm("T02", "F", "CR-99", txa17="DI", txa19=""),
                         _status_change("CR-99", "LA"), _status_change("CR-100", "AU"),
                         _mdm("T02", "F", "CR-100", txa17="IP", txa19="UN"))
    assert [r.status for r in rows] == ["held", "deposited", "deposited", "deposited"]
    assert set(_documents(ctx)) == {(KEY.format(n="CR-99"), 1, "final", True),
                                    (KEY.format(n="CR-100"), 1, "final", True)}


def test_a_draft_signed_with_its_content_is_closed_as_superseded(ctx):
    """T02 dictated (held), then the T04 that signs it with its content, drained alone and
    in a batch with another report: the held row says which import superseded it (it was
    left 'held' with nothing said, as if still waiting for a signature)."""
    first = _through(_auto(ctx), _mdm("T02", "F", "CR-102", txa17="DI", txa19=""),
                     _mdm("T02", "F", "CR-103", txa17="DI", txa19=""))
    alone, = _through(ctx, _mdm("T04", "F", "CR-102", txa17="LA", txa19="AV", ed=SIGNED))
    batch = _in_one_batch(ctx, _mdm("T04", "F", "CR-103", txa17="LA", txa19="AV", ed=SIGNED),
                          _mdm("T02", "F", "CR-104", txa17="AU", txa19="AV"))
    assert [r.status for r in (alone, *batch)] == ["deposited"] * 3
    assert f"filed by import {alone.id}" in _row(ctx, first[0].id).discard_reason
    assert f"filed by import {batch[0].id}" in _row(ctx, first[1].id).discard_reason
    assert {k: s for k, _, s, c in _documents(ctx) if c} == {
        KEY.format(n=n): "final" for n in ("CR-102", "CR-103", "CR-104")}


# -- a cancel closes the held draft --------------------------------------------------------------
def test_a_cancel_closes_the_held_draft_and_a_later_signature_files_nothing(ctx):
    """T02 dictated (held), T11 (cancelled before signing), then a T03 LA: nothing is filed
    (not even a withdrawn entry, nor a dossier made for it), the held row says it was
    cancelled, the T03 signs nothing. Was: the held row left open (a late T03 filed the
    cancelled draft), and a withdrawn tombstone filed, a dossier auto-created for it."""
    from dossiers.schema import patients

    rows = _through(_auto(ctx), _mdm("T02", "F", "CR-96", txa17="DI", txa19=""),
                    _mdm("T11", "", "CR-96", txa17="DI", txa19="UN"))
    assert [(r.status, r.entries_count) for r in rows] == [("held", 0), ("deposited", 0)]
    assert any(f"held back by import {rows[0].id}" in w for w in rows[1].warnings)
    assert f"cancelled by import {rows[1].id}" in _row(ctx, rows[0].id).discard_reason
    assert _filed(ctx) == []
    with ctx.engine.connect() as conn:
        assert conn.execute(select(patients.c.id)).all() == []
    late, = _through(ctx, _status_change("CR-96", "LA"))
    assert any("does not hold" in w for w in late.warnings)
    assert [e for e in _filed(ctx) if e.status != "withdrawn"] == []


def test_a_cancel_of_a_filed_draft_held_again_withdraws_it_and_closes_the_hold(ctx):
    """A preliminary draft filed (DI, AV), its update sent unavailable (held), then the T11:
    the filed version is withdrawn as before, and the held update is closed."""
    rows = _through(_auto(ctx), _mdm("T02", "F", "CR-101", txa17="DI", txa19="AV"),
                    _mdm("T08", "F", "CR-101", txa17="DI", txa19="UN", ed=SIGNED),
                    _mdm("T11", "", "CR-101", txa17="DI", txa19=""))
    assert [r.status for r in rows] == ["deposited", "held", "deposited"]
    assert _documents(ctx)[-1][2:] == ("withdrawn", True)
    assert f"cancelled by import {rows[2].id}" in _row(ctx, rows[1].id).discard_reason


# -- a held draft is never read --------------------------------------------------------------------
def test_a_held_draft_makes_no_dossier_and_no_entry(sqlite_ctx):
    """Held, even with auto-creation on: no entry, no dossier made for it (identity is read
    when it is filed), so no read path (API, FHIR export, dossier show, counts) has it."""
    from dossiers.schema import patients

    rows = _through(_auto(sqlite_ctx), _mdm("T02", "F", "CR-97", txa17="DI", txa19=""))
    assert rows[0].status == "held" and rows[0].patient_id is None
    assert _filed(sqlite_ctx) == []
    with sqlite_ctx.engine.connect() as conn:
        assert conn.execute(select(patients.c.id)).all() == []


def test_a_rerun_of_a_held_draft_is_held_again_and_files_nothing(ctx):
    """An admin reruns a held import by id (TXA-19 UN: unavailable): held again (not
    failed), nothing filed."""
    from pipelines.process import drain
    from pipelines.rerun import reopen

    row, = _through(_auto(ctx), _mdm("T02", "F", "CR-98", txa17="LA", txa19="UN"))
    assert reopen(ctx.engine, [row.id]) == [row.id]
    drain(ctx)
    assert _row(ctx, row.id).status == "held"
    assert _filed(ctx) == []


def test_the_ingest_summary_says_held_drafts_apart(capsys):
    """`dmp-ingest ingest` prints the held drafts on a line of their own (they were among
    the failures): not failed, not filed."""
    from cli import _print_ingest

    _print_ingest({"received": 3, "deposited": 2, "duplicate": 0, "failed": 0,
                   "quarantined": 0, "held": 1, "entries": 2, "adt": 0, "patients": [],
                   "problems": []})
    out = capsys.readouterr().out
    assert "0 failed" in out and "1 draft(s) held back" in out


def test_a_released_report_is_one_document_in_the_fhir_export(sqlite_ctx):
    """The dossier's FHIR export after a release, for an operator and for an API reader (no
    import ids): one DocumentReference, current, its two imports as two Provenances with
    distinct fullUrls."""
    from dossiers.export import load_dossier_rows, load_provenance
    from dossiers.fhir import to_bundle
    from tests.test_fhir_export import check_bundle

    rows = _through(_auto(sqlite_ctx), _mdm("T02", "F", "CR-106", txa17="DI", txa19=""),
                    _status_change("CR-106", "LA"))
    with sqlite_ctx.engine.connect() as conn:
        patient, filed = load_dossier_rows(conn, rows[1].patient_id)
        links = load_provenance(conn, [r["id"] for r in filed])
    for import_ids in (True, False):
        bundle = to_bundle(patient, filed, provenance=links, import_ids=import_ids)
        check_bundle(bundle)
        kinds = [e["resource"]["resourceType"] for e in bundle["entry"]]
        assert kinds.count("DocumentReference") == 1 and kinds.count("Provenance") == 2
        urls = [e["fullUrl"] for e in bundle["entry"]]
        assert len(urls) == len(set(urls))


def test_every_order_of_draft_signature_and_cancel(sqlite_ctx):
    """Every order in which a dictated T02, its signing T03 and (or not) its T11 can arrive,
    one document number per order: the report is readable (current, final) exactly when it
    was drafted and signed and not cancelled, whatever came first; no message fails; the
    store's checks find nothing."""
    from itertools import permutations

    from pipelines.check import check

    ctx = _auto(sqlite_ctx)
    sent = {"T02": lambda n: _mdm("T02", "F", n, txa17="DI", txa19="", ed=SIGNED),
            "T03": lambda n: _status_change(n, "LA"),
            "T11": lambda n: _mdm("T11", "", n, txa17="", txa19="")}
    expected, n = {}, 300
    for kinds in (("T02", "T03"), ("T02", "T03", "T11")):
        for order in permutations(kinds):
            n += 1
            rows = _through(ctx, *(sent[k](f"CR-{n}") for k in order))
            assert {r.status for r in rows} <= {"held", "deposited"}, order
            expected[KEY.format(n=f"CR-{n}")] = "T11" not in order
    readable = {e.key for e in _filed(ctx) if e.current and e.status == "final"}
    assert {k for k, want in expected.items() if want} == readable
    assert check(ctx.engine, ctx.archive).findings == []


def test_a_signature_naming_another_patient_does_not_file_the_draft(ctx):
    """A T03 whose PID-3 names another patient (another valid INS) than the held
    draft of the same number: the draft is not filed in the T03's dossier; it stays held,
    and the T03 says why. Was: filed in the dossier the T03 named."""
    t02 = _mdm("T02", "F", "CR-107", txa17="DI", txa19="")
    pid = next(s for s in t02.split("\r") if s.startswith("PID"))
    other = _status_change("CR-107", "LA").replace(pid, pid.replace(
        "279035121518989", "279037512345691").replace("LEFÈVRE-ÜNAL^Hélène", "MARTIN^Élise"))
    rows = _through(_auto(ctx), t02, other)
    assert [r.status for r in rows][0] == "held"
    assert any("another patient" in w for w in rows[1].warnings or [])
    assert [e for e in _filed(ctx) if e.status != "withdrawn"] == []
    assert _row(ctx, rows[0].id).discard_reason is None
    # the other way round: that patient's signature first, then this patient's draft
    later = _through(ctx, other.replace("CR-107", "CR-108"), t02.replace("CR-107", "CR-108"))
    assert [r.status for r in later] == ["deposited", "held"]
    assert [e for e in _filed(ctx) if e.status != "withdrawn"] == []
