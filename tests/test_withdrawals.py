"""A deletion stays: what a sender withdrew never comes back as current by arriving late.

Why: a deletion can be filed before what it deletes. The original was quarantined (patient
unknown yet) and an admin reruns it after the deletion was filed; a sender retransmits the
original after a lost ACK; two channels. The deletion was dropped with a warning ("refers to
entries this dossier does not hold") and the original, filed next, became current: a result
the laboratory withdrew, or a document sent to the wrong patient and deleted, was shown in
the dossier. The same happened to the original sent again after its deletion.
"""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy import select

from dossiers.schema import entries, imports
from pipelines.check import check
from pipelines.intake import Received, intake
from pipelines.process import drain
from tests.test_lab_normalizer import MSH, PID, oru

GLY = "OBX|1|NM|GLY^Glycémie^L||5.4|mmol/L|3.9-5.8|N|||F||||||||{t}"
K = "OBX|2|NM|K^Potassium^L||{v}|mmol/L|3.5-5.1|{flag}|||{status}||||||||{t}"  # OBX-19


def _msg(n: int, *obx: str) -> bytes:
    header = MSH.replace("MSG-0001", f"MSG-{n:04d}").replace("20240315104500",
                                                             f"2024031{5 + n // 10}1{n % 10}0000")
    return oru(*obx, header=header).encode()


def original(n: int = 1) -> bytes:
    return _msg(n, GLY.format(t="202403151045"),
                K.format(v="6.1", flag="H", status="F", t="202403151045"))


def deletion(n: int = 2) -> bytes:
    """The laboratory withdraws the potassium (OBX-11 D: haemolysed sample)."""
    return _msg(n, K.format(v="6.1", flag="H", status="D", t="202403151200"))


def _file(ctx, *messages: bytes) -> list[int]:  # noqa: ANN001
    ids: list[int] = []
    for n, data in enumerate(messages):
        ids += intake(ctx.engine, ctx.archive, [Received(data, "demo-lab", "file",
                                                         file_name=f"{n}.hl7")])[0].message_ids
        drain(ctx)
    return ids


def _potassium(ctx):  # noqa: ANN001, ANN202
    with ctx.engine.connect() as conn:
        return conn.execute(select(entries).where(entries.c.code == "2823-3")
                            .order_by(entries.c.id)).all()


def _import(ctx, import_id: int):  # noqa: ANN001, ANN202
    with ctx.engine.connect() as conn:
        return conn.execute(select(imports).where(imports.c.id == import_id)).one()


def _consistent(ctx) -> None:  # noqa: ANN001
    report = check(ctx.engine, ctx.archive)
    assert [f.code for f in report.findings] == []


def test_a_deletion_before_its_original_keeps_the_original_out(ctx) -> None:  # noqa: ANN001
    ctx.settings = replace(ctx.settings, auto_create=True)
    gone, late = _file(ctx, deletion(2), original(1))
    tomb, kept = _potassium(ctx)
    assert (tomb.import_id, tomb.status, tomb.current) == (gone, "withdrawn", True)
    assert (kept.import_id, kept.status, kept.current, kept.value) == (late, "final", False,
                                                                      "6.1")
    assert kept.superseded_by == tomb.id and tomb.key == kept.key
    assert any("recorded as withdrawn" in w for w in _import(ctx, gone).warnings)
    row = _import(ctx, late)
    assert row.status == "deposited" and row.entries_count >= 1
    assert any("withdrawn by a deletion" in w for w in row.warnings)
    # the glucose of the same message is filed as usual
    with ctx.engine.connect() as conn:
        gly = conn.execute(select(entries).where(entries.c.code == "2345-7")).one()
    assert gly.current and gly.status == "final"
    _consistent(ctx)


def test_the_original_sent_again_after_its_deletion_stays_withdrawn(ctx) -> None:  # noqa: ANN001
    ctx.settings = replace(ctx.settings, auto_create=True)
    first, gone, again = _file(ctx, original(1), deletion(2), original(3))
    versions = _potassium(ctx)
    assert [(r.import_id, r.status, r.current) for r in versions] == [
        (first, "final", False), (gone, "withdrawn", True)]
    assert _import(ctx, again).status == "duplicate"
    _consistent(ctx)


def test_a_second_deletion_is_a_duplicate_and_a_rerun_files_nothing_more(ctx) -> None:  # noqa: ANN001
    ctx.settings = replace(ctx.settings, auto_create=True)
    gone, late, twice = _file(ctx, deletion(2), original(1), deletion(4))
    assert len(_potassium(ctx)) == 2
    assert _import(ctx, twice).status == "duplicate"
    _consistent(ctx)


def test_a_result_issued_after_its_deletion_is_current_again(ctx) -> None:  # noqa: ANN001
    """The laboratory deleted the potassium, then measured it again on a new sample and
    sent it under the same key, issued (OBX-19) after the deletion: a re-issue."""
    ctx.settings = replace(ctx.settings, auto_create=True)
    reissue = _msg(5, K.format(v="4.2", flag="N", status="F", t="202403161000"))
    first, gone, new = _file(ctx, original(1), deletion(2), reissue)
    current = [(r.import_id, r.value, r.status) for r in _potassium(ctx) if r.current]
    assert current == [(new, "4.2", "final")]
    _consistent(ctx)


def test_a_report_deleted_before_it_came_is_kept_out_with_its_content(ctx) -> None:  # noqa: ANN001
    """MDM^T11 (cancel) filed before the MDM^T02 that brought the report: the report arrives
    filed as history, and so does what was read from it."""
    ctx.settings = replace(ctx.settings, auto_create=True)

    def mdm(trigger: str, n: int, *obx: str) -> bytes:
        msh = (f"MSH|^~\\&|DPI|CHU-X|DMP|GHT|2024031{n}110000||MDM^{trigger}^MDM_T02|"
               f"MDM-{n}|P|2.5|||AL|NE||UNICODE UTF-8")
        txa = "TXA|1|CR^Compte rendu^L|TX|202403151000||||||||CR-4471^DPI||||||AU"
        return ("\r".join([msh, f"EVN||2024031{n}110000", PID, "PV1|1|O", txa, *obx])
                + "\r").encode()

    cancel = mdm("T11", 6)
    report = mdm("T02", 5, "OBX|1|TX|18748-4^Compte rendu^LN||Fracture du radius "
                 "gauche.||||||F")
    gone, late = _file(ctx, cancel, report)
    with ctx.engine.connect() as conn:
        rows = conn.execute(select(entries).order_by(entries.c.id)).all()
    assert [r for r in rows if r.current and r.status != "withdrawn"] == []
    assert {r.import_id for r in rows if not r.current} == {late}
    assert any("withdrawn by a deletion" in w for w in _import(ctx, late).warnings)
    _consistent(ctx)


def test_a_deletion_and_its_original_in_one_batch_file(ctx) -> None:  # noqa: ANN001
    """Both in one file, the deletion first (a sender's queue replayed out of order): filed
    one after the other, as two messages of one batch touching one key must be."""
    ctx.settings = replace(ctx.settings, auto_create=True)
    batch = deletion(2) + original(1)
    intake(ctx.engine, ctx.archive, [Received(batch, "demo-lab", "file", file_name="b.hl7")])
    drain(ctx)
    assert [(r.status, r.current) for r in _potassium(ctx)] == [("withdrawn", True),
                                                                 ("final", False)]
    _consistent(ctx)
