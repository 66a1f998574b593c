"""Poison messages: an input that kills the worker processing it (a crash in a C library, the
memory exhausted) must not kill workers forever, nor take the rest of its batch with it.

A row taken again without an outcome is a suspect, taken alone; one taken POISON_AFTER times
is failed POISON_MESSAGE (pipelines/ledger.claim_batch). Here a real worker process is
SIGKILLed each time it prepares one chosen message (tests/crash_child.py, DMP_TEST_POISON)."""

from __future__ import annotations

import hashlib
import signal
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from dossiers.schema import import_attempts, imports
from pipelines.intake import Received, intake
from pipelines.ledger import POISON_AFTER, claim_batch, now, release_claims, reset_for_rerun
from pipelines.process import Context, drain
from tests.conftest import SAMPLES
from tests.reliability_support import create_sample_dossiers
from tests.test_crash_points import WORKER, Zygote, _env, _settings

FILES = ["01_labm_nfs.hl7", "02_labm_lipides_glycemie.hl7", "03_synlab_iono_creatinine.hl7",
         "05_chu_hba1c.hl7", "08_labm_creatinine_prov.hl7"]


def _received() -> list[Received]:
    return [Received((SAMPLES / "hl7v2" / n).read_bytes(), "lab", "file", file_name=n)
            for n in FILES]


@pytest.fixture(scope="module")
def zygote():  # noqa: ANN201
    """The worker runs below are children forked from one ``python -m tests.crash_child
    --zygote`` (tests/test_crash_points.py's Zygote): each still a process of its own running
    crash_child's ``main`` with its environment, SIGKILLed by the poison as before, without an
    interpreter start and the pipelines' imports per run (2-4 s each, up to four runs for each
    store)."""
    forks = Zygote()
    yield forks
    forks.close()


def test_a_message_that_kills_its_worker_is_failed_and_the_others_deposited(
        tmp_path, database_url, zygote) -> None:  # noqa: ANN001
    settings = _settings(tmp_path, database_url)
    ctx = Context.from_settings(settings, worker="recovery")
    try:
        create_sample_dossiers(ctx)
        intake(ctx.engine, ctx.archive, _received())
        poison = hashlib.sha256((SAMPLES / "hl7v2" / FILES[2]).read_bytes()).hexdigest()
        env = _env(settings, None) | {"DMP_TEST_POISON": poison, "DMP_BATCH_SIZE": "50"}
        deaths = 0
        for _ in range(10):  # a supervisor restarting its dead worker
            child = zygote.run(["drain"], env, tmp_path, timeout=120)
            assert child.returncode in (0, -signal.SIGKILL), child.stderr[-3000:]
            if child.returncode == 0:
                break
            deaths += 1
            release_claims(ctx.engine, WORKER)
        # killed with its whole batch, then with its group, then alone until failed
        assert deaths == POISON_AFTER
        with ctx.engine.connect() as conn:
            rows = {r.file_name: r for r in conn.execute(select(imports))}
            attempts = conn.execute(select(import_attempts.c.error_code).where(
                import_attempts.c.import_id == rows[FILES[2]].id)).scalars().all()
        assert (rows[FILES[2]].status, rows[FILES[2]].error_code) == ("failed",
                                                                      "POISON_MESSAGE")
        assert "without an outcome" in rows[FILES[2]].error_message
        assert attempts == ["POISON_MESSAGE"]
        assert {rows[n].status for n in FILES if n != FILES[2]} == {"deposited"}
        assert {r.claims for r in rows.values()} == {0}
    finally:
        ctx.engine.dispose()


def test_suspects_are_taken_one_at_a_time_and_a_rerun_starts_afresh(sqlite_ctx) -> None:  # noqa: ANN001
    ctx = sqlite_ctx
    intake(ctx.engine, ctx.archive, _received())
    with ctx.engine.connect() as conn:
        ids = list(conn.execute(select(imports.c.id).order_by(imports.c.id)).scalars())
    assert claim_batch(ctx.engine, limit=16, worker="w1") == ids  # then w1 dies

    def expire() -> None:
        with ctx.engine.begin() as conn:
            conn.execute(update(imports).values(claimed_until=now() - timedelta(seconds=1)))

    expire()
    assert claim_batch(ctx.engine, limit=16, worker="w2") == ids[:2]  # in eighths of a batch
    expire()
    assert claim_batch(ctx.engine, limit=16, worker="w3") == ids[:1]  # then alone
    expire()
    assert claim_batch(ctx.engine, limit=16, worker="w4") == ids[:1]
    expire()
    assert claim_batch(ctx.engine, limit=16, worker="w5") == ids[1:2]  # ids[0] poisoned
    drain(ctx)
    with ctx.engine.connect() as conn:
        statuses = dict(conn.execute(select(imports.c.id, imports.c.error_code)).all())
    assert statuses[ids[0]] == "POISON_MESSAGE"
    assert "POISON_MESSAGE" not in [statuses[i] for i in ids[1:]]  # (no dossiers here)
    with ctx.engine.begin() as conn:
        assert reset_for_rerun(conn, [ids[0]]) == [ids[0]]
    assert claim_batch(ctx.engine, limit=50, worker="w5") == [ids[0]]  # a fresh start
    with ctx.engine.connect() as conn:
        assert conn.execute(select(imports.c.claims).where(imports.c.id == ids[0])) \
            .scalar_one() == 1
