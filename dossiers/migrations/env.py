"""Alembic's environment, configured in code by ``dossiers.migrate``.

The caller hands over an open connection (``config.attributes["connection"]``) inside its own
transaction, so that checking the version, stamping an older store and upgrading happen under
one lock (several worker processes start at once). ``alembic`` on the command line is not
supported: use ``dmp-ingest db upgrade``.
"""

from __future__ import annotations

from alembic import context

from dossiers.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `dmp-ingest db upgrade` (dossiers.migrate)")

context.configure(connection=connection, target_metadata=metadata,
                  render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
