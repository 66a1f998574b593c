"""Alembic migrations of the dossier store (run by ``dossiers.migrate``; no alembic.ini)."""
