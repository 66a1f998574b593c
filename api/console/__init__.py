"""The operations console: server-rendered pages under /console/ for admins, professionals
and patients, over the same functions the HTTP API calls.

No rule is decided here: what an admin may do is pipelines/admin.py and pipelines/rerun.py,
what a reader sees is dossiers/access.py (which also writes the audit trail); a page only
lays out what they return. See api/console/web.py for the pages, session.py for login, CSRF
and language, render.py for charts, the highlighted raw message and CDA documents.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from api.console.session import HERE


def install(app: FastAPI) -> None:
    """Mount the console on the API's application (called by create_app)."""
    from api.console import web

    app.include_router(web.router)
    app.mount("/console/static", StaticFiles(directory=HERE / "static"), name="console-static")
    web.error_pages(app)
