"""Schema migrations: Alembic, configured in code, run at every start (a no-op when current).

The migration environment ships inside the package (``dossiers/migrations``), so an installed
service finds it without an alembic.ini. Every process that opens the store calls ``upgrade``;
it is cheap when the store is at head (one read of the version table) and safe when several
processes start at once: the check and the upgrade run in one transaction, under a PostgreSQL
advisory lock (SQLite: the write lock taken at BEGIN IMMEDIATE, see ``dossiers.db``).

A store created by ``metadata.create_all`` before migrations existed has tables but no version
table: it is stamped at the first revision, then upgraded (revision 0002 skips what
create_all may already have added).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, inspect, text

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
BASELINE = "0001"  # what a store created by create_all before migrations is stamped at
_LOCK_KEY = 4_700_417  # pg_advisory_xact_lock key: one migrator at a time per database


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic's configuration without a file; ``connection`` is used by env.py."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


@cache
def head() -> str:
    """The newest revision (read once per process from the versions folder)."""
    found = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert found is not None, "no migration revisions shipped"
    return found


def current(engine: Engine) -> str | None:
    """The store's revision (None: empty or created before migrations)."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine, target: str = "head") -> list[str]:
    """Bring the store to ``target``; returns what was done (empty when already there)."""
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
        revision = MigrationContext.configure(conn).get_current_revision()
        wanted = head() if target == "head" else target
        if revision == wanted:
            return []
        done = []
        config = alembic_config(conn)
        if revision is None and inspect(conn).has_table("imports"):
            command.stamp(config, BASELINE)
            done.append(f"stamped {BASELINE} (created before migrations)")
        command.upgrade(config, target)
        after = MigrationContext.configure(conn).get_current_revision()
        done.append(f"upgraded to {after}")
        return done
