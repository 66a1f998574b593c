"""Filing a batch in bulk gives exactly what filing its messages one by one gives.

Generated traffic with repeats, corrections (new versions of results sent earlier, some in
the same batch), unknown patients and a reused control id, processed twice: in batches of 150
(the bulk path, with its fall-back for messages that depend on each other) and in batches of
one (the one-by-one path). Ledger outcomes and dossiers must be identical. The bulk run
prepares its batches in the pool of processes (pipelines/prepare_pool.py), the one-by-one run
in the filing process; a third run, bulk without the pool, must agree too.
"""

from __future__ import annotations

import dataclasses

from sqlalchemy import select

from dossiers.schema import entries, imports, provenance
from pipelines.dossier_admin import DossierInput, create_dossiers
from pipelines.intake import Received, intake
from pipelines.process import Context, drain
from pipelines.settings import load_settings
from tests.conftest import migrated_sqlite


def _run(tmp_path, template, messages: list[bytes], patients, batch_size: int,  # noqa: ANN001, ANN202
         prepare_processes: int = 2):
    name = f"{batch_size}-{prepare_processes}"
    home = tmp_path / f"home{name}"
    # a copy of the session's migrated template, not a new file migrated from the start
    settings = load_settings(env={"DMP_HOME": str(home),
                                  "DMP_DATABASE_URL": migrated_sqlite(template,
                                                                      home / "dmp.sqlite3"),
                                  "DMP_ARCHIVE_URL": str(tmp_path / f"archive{name}")})
    settings = dataclasses.replace(settings, batch_size=batch_size,
                                   prepare_processes=prepare_processes)
    ctx = Context.from_settings(settings)
    create_dossiers(ctx.engine, [DossierInput(ins=p.nir, family=p.family, given=p.given,
                                              birth_date=p.birth_date.isoformat(), sex=p.sex)
                                 for p in patients])
    intake(ctx.engine, ctx.archive, [Received(m, "labs", "file", file_name=f"{i}.hl7")
                                     for i, m in enumerate(messages)])
    drain(ctx)
    with ctx.engine.connect() as conn:
        ledger = [tuple(r) for r in conn.execute(
            select(imports.c.file_name, imports.c.status, imports.c.error_code,
                   imports.c.entries_count, imports.c.duplicates_count)
            .order_by(imports.c.id))]
        by_import = dict(conn.execute(select(imports.c.id, imports.c.file_name)).all())
        stored = sorted(
            (r.key, r.version, r.current, r.status, r.value, r.unit, r.effective,
             by_import[r.import_id])
            for r in conn.execute(select(entries)))
        links = sorted((by_import[r.import_id], r.relation, r.source_ref)
                       for r in conn.execute(select(provenance)))
    ctx.engine.dispose()
    return ledger, stored, links


def test_bulk_and_one_by_one_agree(tmp_path, caplog, sqlite_template) -> None:  # noqa: ANN001
    from samples.generate import Traffic

    traffic = Traffic(17, patients=40, corrections=0.15, duplicates=0.1)
    stream = iter(traffic)
    # 300 messages in two bulk batches, as 500 in batches of 250 were: they still hold 12
    # byte-identical repeats, control ids sent again with other contents, corrections in the
    # same batch and across, and all 40 patients (the one-by-one run is 300 batches)
    messages = [next(stream) for _ in range(300)]
    known = traffic.used_patients()[:-3]  # a few patients have no dossier: quarantined
    bulk = _run(tmp_path, sqlite_template, messages, known, 150)
    assert "fell back" not in caplog.text  # the bulk path did the filing
    single = _run(tmp_path, sqlite_template, messages, known, 1)
    statuses = {row[1] for row in bulk[0]}
    assert {"deposited", "duplicate", "quarantined"} <= statuses
    assert any(v > 1 for _, v, *_ in bulk[1]), "no correction made a second version"
    assert bulk[0] == single[0]
    assert bulk[1] == single[1]
    assert bulk[2] == single[2]
    assert _run(tmp_path, sqlite_template, messages, known, 150, prepare_processes=0) == bulk


def _trod_run(tmp_path, template, batch_size: int) -> tuple:  # noqa: ANN001
    """The four ANS BIO-TROD examples (one patient; rapid tests of which two documents state
    the same influenza B result), filed in batches of ``batch_size``, no pool."""
    from tests.conftest import corpus_path

    files = sorted(corpus_path("cda").glob("BIO-TROD_2024.01_*.xml"))
    assert len(files) == 4
    home = tmp_path / f"trod{batch_size}"
    settings = load_settings(env={"DMP_HOME": str(home), "DMP_DATABASE_URL":
                                  migrated_sqlite(template, home / "dmp.sqlite3")})
    ctx = Context.from_settings(dataclasses.replace(settings, batch_size=batch_size,
                                                    prepare_processes=0))
    create_dossiers(ctx.engine, [DossierInput(ins="279035121518989", family="PAT-TROIS",
                                              given="DOMINIQUE", birth_date="1979-03-28",
                                              sex="F", ins_oid="1.2.250.1.213.1.4.10")])
    intake(ctx.engine, ctx.archive, [Received(p.read_bytes(), "ans", "file", file_name=p.name)
                                     for p in files])
    drain(ctx)
    with ctx.engine.connect() as conn:
        by_import = dict(conn.execute(select(imports.c.id, imports.c.file_name)).all())
        ledger = sorted(conn.execute(select(imports.c.file_name, imports.c.status,
                                            imports.c.entries_count,
                                            imports.c.duplicates_count)).all())
        owned = sorted((by_import[r.import_id], r.key) for r in conn.execute(select(entries)))
    ctx.engine.dispose()
    return ledger, owned


def test_a_message_deferred_in_a_batch_keeps_its_place_before_those_it_shares_a_fact_with(
        tmp_path, sqlite_template) -> None:  # noqa: ANN001
    """A message of a batch that depends on an earlier one (the same document set, the same
    key) is filed after the batch's bulk messages. A later message stating a fact it also
    states (the second BIO-TROD with the influenza B result) went in bulk, before it: the
    later document owned the entry and the earlier one only confirmed it, the reverse of
    filing them in ledger order; which one won depended on where the batch was cut (the
    pool's pace). Whatever depends on a deferred message is now deferred behind it."""
    assert (_trod_run(tmp_path, sqlite_template, 100)
            == _trod_run(tmp_path, sqlite_template, 1))
