"""Processing's commits skip the disk flush; intake's, before any ACK, never do.

``dossiers.db.replayable_commits`` relaxes durability for one connection while processing
holds it: these tests check that it is relaxed there, and only there (the pooled connection
goes back durable, which intake relies on), on SQLite and PostgreSQL.
"""

from __future__ import annotations

from dossiers.db import begin_replayable, replayable_commits
from pipelines.intake import Received, intake
from pipelines.process import drain


def _durable_by_default(ctx) -> None:  # noqa: ANN001
    """The test cluster runs with synchronous_commit=off for speed: this database gets the
    production default back, so that a relaxation that leaked would show."""
    if ctx.engine.dialect.name == "postgresql":
        with ctx.engine.connect() as conn:
            name = conn.exec_driver_sql("SELECT current_database()").scalar()
            conn.exec_driver_sql(f'ALTER DATABASE "{name}" SET synchronous_commit = on')
            conn.commit()
        ctx.engine.dispose()


def _durability(conn) -> str:  # noqa: ANN001
    if conn.dialect.name == "sqlite":
        return str(conn.exec_driver_sql("PRAGMA synchronous").scalar())  # 2 = FULL, 1 = NORMAL
    return str(conn.exec_driver_sql("SHOW synchronous_commit").scalar())


def test_relaxed_inside_durable_outside(ctx) -> None:  # noqa: ANN001
    _durable_by_default(ctx)
    durable = "2" if ctx.engine.dialect.name == "sqlite" else "on"
    relaxed = "1" if ctx.engine.dialect.name == "sqlite" else "off"
    with ctx.engine.connect() as conn:
        assert _durability(conn) == durable
        conn.rollback()
    with ctx.engine.connect() as conn, replayable_commits(conn):
        with begin_replayable(conn):
            assert _durability(conn) == relaxed
    with ctx.engine.connect() as conn:  # the same pooled connection, handed back durable
        assert _durability(conn) == durable
        conn.rollback()


def test_processing_leaves_intake_durable(ctx) -> None:  # noqa: ANN001
    _durable_by_default(ctx)
    msg = (b"MSH|^~\\&|LAB|FAC|DMP|DMP|20250113104700||ORU^R01|DUR-1|P|2.5|||||FRA|UNICODE UTF-8\r"
           b"PID|1||123^^^LAB^PI||MARTIN^Ana\xc3\xafs||19800101|F\r"
           b"OBR|1|O1|F1|2345-7^Glucose^LN|||20250113083000\r"
           b"OBX|1|NM|2345-7^Glucose^LN||5.4|mmol/L|3.9-5.8|N|||F|||20250113083000\r")
    intake(ctx.engine, ctx.archive, [Received(msg, "lab", "file")])
    assert sum(drain(ctx).values()) == 1
    durable = "2" if ctx.engine.dialect.name == "sqlite" else "on"
    with ctx.engine.connect() as conn:
        assert _durability(conn) == durable
        conn.rollback()
