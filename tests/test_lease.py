"""A worker that overruns its lease (a batch of OCR, an overloaded machine) must not record
what another worker has taken since: each row is filed and given an outcome once. And a
worker still at a long batch extends its leases before they run out.

Real stores (SQLite and PostgreSQL), two contexts standing for two workers; the overrun is
made by moving the lease's end into the past, not by waiting."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select, update

from dossiers.schema import entries, import_attempts, imports, provenance
from pipelines.intake import Received, intake
from pipelines.ledger import claim_batch, now
from pipelines.prepare_pool import start_preparing
from pipelines.process import Context, _Lease, file_prepared, process_claimed, read_claimed
from tests.conftest import SAMPLES
from tests.reliability_support import create_sample_dossiers

FILES = ["01_labm_nfs.hl7", "02_labm_lipides_glycemie.hl7", "03_synlab_iono_creatinine.hl7",
         "05_chu_hba1c.hl7", "08_labm_creatinine_prov.hl7"]


def _intake(ctx: Context) -> None:
    create_sample_dossiers(ctx)
    intake(ctx.engine, ctx.archive, [
        Received((SAMPLES / "hl7v2" / n).read_bytes(), "lab", "file", file_name=n)
        for n in FILES])


def _expire(ctx: Context, ids: list[int]) -> None:
    with ctx.engine.begin() as conn:
        conn.execute(update(imports).where(imports.c.id.in_(ids)).values(
            claimed_until=now() - timedelta(seconds=1)))


def test_rows_taken_by_another_worker_are_left_to_it(settings) -> None:  # noqa: ANN001
    slow = Context.from_settings(settings, worker="slow")
    other = Context.from_settings(settings, worker="other")
    try:
        _intake(slow)
        mine = claim_batch(slow.engine, limit=50, worker="slow", lease_seconds=600)
        assert len(mine) == len(FILES)
        preparing = start_preparing(slow, read_claimed(slow, mine))  # then it stalls...
        _expire(slow, mine)
        theirs = claim_batch(other.engine, limit=80, worker="other", lease_seconds=600)
        assert sorted(theirs) == sorted(mine)

        assert file_prepared(slow, preparing) == {}  # ... and wakes up: nothing is its own
        with slow.engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(entries)).scalar_one() == 0
            assert conn.execute(select(func.count()).select_from(import_attempts)
                                ).scalar_one() == 0

        assert process_claimed(other, theirs) == {"deposited": len(FILES)}
        with slow.engine.connect() as conn:
            attempts = conn.execute(select(import_attempts.c.import_id, func.count())
                                    .group_by(import_attempts.c.import_id)).all()
            counted = conn.execute(select(func.sum(imports.c.entries_count))).scalar_one()
            filed = conn.execute(select(func.count()).select_from(entries)).scalar_one()
            created = conn.execute(select(func.count()).select_from(provenance).where(
                provenance.c.relation == "created")).scalar_one()
        assert sorted(n for _, n in attempts) == [1] * len(FILES)
        assert counted == filed == created > 0
    finally:
        slow.engine.dispose()
        other.engine.dispose()


def test_a_batch_near_the_end_of_its_lease_has_it_extended(settings) -> None:  # noqa: ANN001
    ctx = Context.from_settings(settings, worker="busy")
    try:
        _intake(ctx)
        ids = claim_batch(ctx.engine, limit=50, worker="busy", lease_seconds=600)
        with ctx.engine.begin() as conn:  # most of the lease gone already
            conn.execute(update(imports).where(imports.c.id.in_(ids)).values(
                claimed_until=now() + timedelta(seconds=30)))
        rows = read_claimed(ctx, ids)
        lease = _Lease(ctx, rows)
        with ctx.engine.begin() as conn:
            assert lease.keep(conn, ids[:1]) == set(ids)  # one piece: the rest renewed too
        with ctx.engine.connect() as conn:
            ends = conn.execute(select(imports.c.claimed_until).where(
                imports.c.id.in_(ids))).scalars().all()
        soonest = min(e if e.tzinfo else e.replace(tzinfo=now().tzinfo) for e in ends)
        assert soonest > now() + timedelta(seconds=500)
        # renewed once per half lease, not at every piece
        with ctx.engine.begin() as conn:
            assert lease.keep(conn, ids[1:2]) == {ids[1]}
    finally:
        ctx.engine.dispose()
