"""Versions that arrive out of order (dedupe level 3): an earlier one never becomes current.

Why: versions reach us out of order. An import that failed or was quarantined is rerun by an
admin after the sender's next version was filed; a message retried after a lost ACK, two
channels of one hospital, several workers. Filing the late one as the new current version
put back a value its sender had corrected (a potassium of 6.4 replaced by 4.7 came back)
and left two versions of one document current.
"""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy import select

from dossiers.deposit import _later, status_order
from dossiers.schema import entries, imports
from pipelines.intake import Received, intake
from pipelines.process import drain
from pipelines.rerun import reopen
from tests.conftest import SAMPLES
from tests.test_cda_pipeline import _dossiers
from tests.test_lab_normalizer import MSH, OBR, ORC, PID

CDA = SAMPLES / "cda"
V1 = (CDA / "02_crbio_synlab_bilan_renal_v1.xml").read_bytes()
V2 = (CDA / "03_crbio_synlab_bilan_renal_v2_rplc.xml").read_bytes()


def _version3(v2: bytes) -> bytes:
    """Version 3 of the set, whose RPLC names version 2, and K+ at 4.9."""
    return (v2.replace(b'extension="SB25061039530-2"', b'extension="SB25061039530-3"')
            .replace(b'<versionNumber value="2"/>', b'<versionNumber value="3"/>')
            .replace(b'extension="SB25061039530-1"', b'extension="SB25061039530-2"')
            .replace(b'value="4.7"', b'value="4.9"'))


def _file(ctx, *docs: bytes, together: bool = False) -> list[int]:  # noqa: ANN001
    """Intake and process each document in turn (or all in one batch): their import ids."""
    ids: list[int] = []
    for n, data in enumerate(docs):
        ids += intake(ctx.engine, ctx.archive, [Received(data, "hospital", "file",
                                                         file_name=f"{n}.xml")])[0].message_ids
        if not together:
            drain(ctx)
    if together:
        drain(ctx)
    return ids


def _rows(ctx, code: str | None = None):  # noqa: ANN001, ANN202
    query = select(entries).order_by(entries.c.id)
    query = query.where(entries.c.code == code) if code else \
        query.where(entries.c.type == "document")
    with ctx.engine.connect() as conn:
        return conn.execute(query).all()


def _import(ctx, import_id: int):  # noqa: ANN001, ANN202
    with ctx.engine.connect() as conn:
        return conn.execute(select(imports).where(imports.c.id == import_id)).one()


def test_version_1_arriving_after_version_2_is_history(ctx) -> None:  # noqa: ANN001
    _dossiers(ctx)
    first, late = _file(ctx, V2, V1)
    docs = {r.import_id: r for r in _rows(ctx)}
    assert docs[first].current and not docs[late].current
    assert docs[late].superseded_by == docs[first].id
    potassium = {r.import_id: r for r in _rows(ctx, "2823-3")}
    assert potassium[first].current and potassium[first].value == "4.7"
    assert not potassium[late].current and potassium[late].value == "6.4"
    assert potassium[late].superseded_by == potassium[first].id
    row = _import(ctx, late)
    assert row.status == "deposited"
    assert any("filed as history" in w for w in row.warnings)
    # what the late version restates unchanged is confirmed, not filed again
    assert len([r for r in _rows(ctx, "2951-2") if r.current]) == 1
    # rerun (idempotent): nothing more is filed, nothing becomes current
    before = len(_rows(ctx, "2823-3")) + len(_rows(ctx))
    reopen(ctx.engine, [late])
    drain(ctx)
    assert len(_rows(ctx, "2823-3")) + len(_rows(ctx)) == before
    assert [r.import_id for r in _rows(ctx) if r.current] == [first]


def test_both_versions_in_one_batch_newest_first(ctx) -> None:  # noqa: ANN001
    _dossiers(ctx)
    first, late = _file(ctx, V2, V1, together=True)
    current = [r for r in _rows(ctx, "2823-3") if r.current]
    assert [(r.import_id, r.value) for r in current] == [(first, "4.7")]
    assert [r.import_id for r in _rows(ctx) if r.current] == [first]


def test_a_newer_version_supersedes_an_older_one_its_rplc_does_not_name(ctx) -> None:  # noqa: ANN001
    """Version 3 (RPLC naming version 2, which never came) after version 1: version 1 is
    superseded all the same, and its potassium by version 3's."""
    _dossiers(ctx)
    v1, v3 = _file(ctx, V1, _version3(V2))
    docs = {r.import_id: r for r in _rows(ctx)}
    assert docs[v3].current and not docs[v1].current and docs[v1].superseded_by == docs[v3].id
    assert [(r.import_id, r.value) for r in _rows(ctx, "2823-3") if r.current] == [(v3, "4.9")]
    # version 2 never came: said, and not as 'filed as new entries' (it superseded v1)
    assert any("replace a version the dossier does not hold" in w
               for w in _import(ctx, v3).warnings)
    assert not any("filed as new entries" in w for w in _import(ctx, v3).warnings)


def test_versions_in_any_order_end_with_the_latest_current(ctx) -> None:  # noqa: ANN001
    _dossiers(ctx)
    v3, v1, v2 = _file(ctx, _version3(V2), V1, V2)
    assert [r.import_id for r in _rows(ctx) if r.current] == [v3]
    assert [(r.import_id, r.value) for r in _rows(ctx, "2823-3") if r.current] == [(v3, "4.9")]
    assert {r.import_id for r in _rows(ctx, "2823-3") if not r.current} == {v1, v2}


def test_version_order_by_number_then_effective_time() -> None:
    assert _later(("s", "2", None), ("s", "1", None)) is True
    assert _later(("s", "1", "2025-06-11T11:51+02:00"), ("s", "2", "2025-06-10T13:42+02:00")) \
        is False
    assert _later(("s", "", "2025-06-11T11:51+02:00"), ("s", "", "2025-06-11T10:51+01:00")) \
        is None  # the same instant
    assert _later(("s", "", "2025-06-11T11:52+02:00"), ("s", "", "2025-06-11T11:51+02:00"))
    assert _later(("s", "", "2025-06-11"), ("s", "", "2025-06-10")) is None  # a day, no zone
    assert status_order()["corrected"] > status_order()["final"] > status_order()["preliminary"]


# -- HL7v2 results: a late earlier state --------------------------------------------------------
def _oru(control_id: str, status: str, value: str, issued: str = "202403151045") -> bytes:
    header = MSH.replace("MSG-0001", control_id)
    obr = OBR.replace("|202403151045|||F|", f"|{issued}|||{status}|")
    obx = f"OBX|1|NM|2823-3^Potassium^LN||{value}|mmol/L|3.5-5.0||||{status}|||202403150810"
    return ("\r".join([header, PID, ORC, obr, obx]) + "\r").encode()


def _potassium(ctx):  # noqa: ANN001, ANN202
    return [(r.value, r.status, r.current) for r in _rows(ctx, "2823-3")]


def test_final_arriving_after_its_correction_stays_history(ctx) -> None:  # noqa: ANN001
    """The final failed (or waited in a queue) and is rerun after its correction was filed."""
    ctx.settings = replace(ctx.settings, auto_create=True)
    _file(ctx, _oru("K-2", "C", "4.7", issued="202403151400"))
    late = _file(ctx, _oru("K-1", "F", "6.4"))[0]
    assert _potassium(ctx) == [("4.7", "corrected", True), ("6.4", "final", False)]
    assert any("filed as history" in w for w in _import(ctx, late).warnings)
    # the same final sent again under a new MSH-10: the history it already is, confirmed
    again = _file(ctx, _oru("K-1-RESENT", "F", "6.4"))[0]
    assert len(_potassium(ctx)) == 2
    row = _import(ctx, again)
    assert (row.status, row.duplicates_count) == ("duplicate", 2)  # its report and result


def test_preliminary_after_final_stays_history_unless_issued_later(ctx) -> None:  # noqa: ANN001
    ctx.settings = replace(ctx.settings, auto_create=True)
    _file(ctx, _oru("K-F", "F", "4.2", issued="202403151200"),
          _oru("K-P", "P", "4.1", issued="202403151000"))
    assert [c for *_, c in _potassium(ctx)] == [True, False]
    # a preliminary the lab says it issued after the final (a new run): it is current
    _file(ctx, _oru("K-P2", "P", "4.4", issued="202403151600"))
    assert _potassium(ctx)[-1] == ("4.4", "preliminary", True)


def test_results_in_order_are_unchanged(ctx) -> None:  # noqa: ANN001
    ctx.settings = replace(ctx.settings, auto_create=True)
    _file(ctx, _oru("K-P", "P", "4.1", issued="202403151000"),
          _oru("K-F", "F", "4.2", issued="202403151200"),
          _oru("K-C", "C", "4.3", issued="202403151400"))
    assert [c for *_, c in _potassium(ctx)] == [False, False, True]
