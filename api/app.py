"""The HTTP API: FastAPI over pipelines/ and dossiers/, nothing decided here.

``create_app(ctx)`` builds the application; `dmp-ingest serve` runs it with uvicorn beside
the MLLP listener (connectors/service.py), tests run it on a free port. A request goes:
bearer token -> Principal (api/tokens.py), scope checked against the endpoint, then one call
into pipelines/ (intake, admin reports, rerun) or dossiers/access.py (every rule on who reads
what, and the audit trail), whose exceptions become status codes here.

Every error is JSON ``{"error": CODE, "message": text}``, never a traceback, and never patient
data. The OpenAPI document is at /openapi.json; /docs is a plain page generated from it (the
usual Swagger UI loads its scripts from a CDN, which this service's hosts cannot reach).
"""

from __future__ import annotations

import html
import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.tokens import TokenError, principal_from, signing_key
from dossiers.access import AccessError, Principal
from pipelines.process import Context

log = logging.getLogger("dmp.api")
MAX_ID = 2**63 - 1  # ids are BIGINT: larger numbers are 422, not a database error
# A patient reference: an INS (15 characters) or a dossier id (a BIGINT). Anything else is
# 422, the same for every caller and dossier (a reference's form says nothing of a patient).
PATIENT_REF = r"^(?:[0-9]{1,18}|[0-9A-Za-z]{15})$"


class ApiError(Exception):
    """A refusal decided by the API layer itself (authentication, scope, body size...)."""

    def __init__(self, status: int, code: str, message: str,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers


@dataclass
class ApiState:
    """What every request needs: the service's context, the token key, and the callback that
    wakes the ledger workers after an intake or a rerun (None: nobody to wake)."""

    ctx: Context
    key: bytes
    on_intake: Callable[[], None] | None = None

    @cached_property
    def rerun_ctx(self) -> Context:
        """Processing context for reruns an admin waits for (its own claims' name)."""
        c = self.ctx
        return Context(c.settings, c.engine, c.archive, worker=f"{c.settings.worker_id}/api",
                       trigger="rerun")

    def wake(self) -> None:
        if self.on_intake is not None:
            try:
                self.on_intake()
            except Exception as exc:  # the rows are stored: a poll takes them anyway
                log.warning("waking the workers failed (%s)", type(exc).__name__)


def state(request: Request) -> ApiState:
    return request.app.state.api


def error(status: int, code: str, message: str,
          headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": code, "message": message}, status_code=status,
                        headers=headers)


_bearer = HTTPBearer(auto_error=False, description="A token from `dmp-ingest token mint`")


def requires(*scopes: str) -> Callable[..., Principal]:
    """A dependency: the caller's Principal, if its token is valid and its scope one of
    ``scopes`` (401 for a missing or invalid token, 403 for another scope)."""
    async def principal(request: Request, credentials: Annotated[
            HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> Principal:
        if credentials is None or credentials.scheme.lower() != "bearer":
            _refused(request, 401, "TOKEN_MISSING")
            raise ApiError(401, "TOKEN_MISSING", "a bearer token is required",
                           {"WWW-Authenticate": "Bearer"})
        try:
            who = principal_from(credentials.credentials, state(request).key)
        except TokenError as exc:
            _refused(request, 401, exc.code)
            raise ApiError(401, exc.code, exc.message,
                           {"WWW-Authenticate": 'Bearer error="invalid_token"'}) from None
        if who.kind not in scopes:
            _refused(request, 403, "WRONG_SCOPE", who.kind)
            raise ApiError(403, "WRONG_SCOPE",
                           f"this endpoint needs a {' or '.join(scopes)} token")
        return who
    return principal


def _refused(request: Request, status: int, code: str, scope: str | None = None) -> None:
    """One log line per refused token, so that a sender's integration engineer and our
    support can see why a push is refused: the code, the route's template, the peer and
    the token's scope; never the token, the path (it may hold an INS) or the body."""
    peer = request.client.host if request.client else "-"
    log.warning("%s %s refused %s %s: peer %s, token scope %s", request.method,
                _template(request.scope), status, code, peer, scope or "-")


def create_app(ctx: Context, *, on_intake: Callable[[], None] | None = None) -> FastAPI:
    """The application for one service context. ``on_intake``: called after every intake or
    rerun (the service wakes its ledger workers)."""
    from api import admin, console, dossiers, imports

    app = FastAPI(title="dmp-ingest", version="1.0",
                  summary="Intake and patient dossiers of a shared medical record (DMP)",
                  docs_url=None, redoc_url=None)
    app.state.api = ApiState(ctx, signing_key(ctx.settings), on_intake)
    app.include_router(imports.router)
    app.include_router(dossiers.router)
    app.include_router(admin.router)
    console.install(app)  # the web console under /console/ (api/console/)
    _errors(app)
    app.add_middleware(Contain)

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return HTMLResponse(docs_page(app.openapi()))

    return app


def _errors(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return error(exc.status, exc.code, exc.message, exc.headers)

    @app.exception_handler(AccessError)
    async def access_error(request: Request, exc: AccessError) -> JSONResponse:
        return error(exc.status, exc.code, exc.message)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}.get(exc.status_code, "HTTP_ERROR")
        message = "no such resource" if exc.status_code == 404 else str(exc.detail)
        return error(exc.status_code, code, message, getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        # where and what kind of problem, never the value sent (it may be patient data)
        problems = [f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}"
                    for e in exc.errors()[:5]]
        return error(422, "INVALID_REQUEST", "; ".join(problems) or "invalid request")


class Contain:
    """Outermost guard (ASGI): an unexpected exception becomes a JSON 500 logged by type
    only, instead of a traceback (whose messages may quote patient data) in the server log;
    and no response is cached by a proxy or browser (dossiers are patient data)."""

    def __init__(self, app) -> None:  # noqa: ANN001
        self.app = app

    async def __call__(self, scope, receive, send) -> None:  # noqa: ANN001
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def sending(message: dict) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = list(message.get("headers", []))
                headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception as exc:
            log.error("%s %s failed (%s)", scope.get("method"), _template(scope),
                      type(exc).__name__)
            log.debug("request failure", exc_info=True)
            if not started:
                await _failure(exc)(scope, receive, send)


def _failure(exc: Exception) -> JSONResponse:
    """The answer to a request that raised: 503 STORE_UNAVAILABLE with a Retry-After when the
    store could not be reached or dropped the connection (a PostgreSQL restart or failover),
    else 500 INTERNAL_ERROR. Why: an operator's console or script told INTERNAL_ERROR reports
    a bug and does not retry; an outage is to wait out, as the push endpoint already says."""
    from pipelines.retry import is_store_outage

    if is_store_outage(exc):
        return error(503, "STORE_UNAVAILABLE", "the store could not be reached (a restart or "
                     "a failover?): what the request did before stays done; send it again "
                     "in a moment", {"Retry-After": "30"})
    return error(500, "INTERNAL_ERROR", "the request could not be handled")


def _template(scope: dict) -> str:
    """The route's template (/dossiers/{patient}), not the path: no patient reference in
    the log."""
    route = scope.get("route")
    return getattr(route, "path", "?")


def docs_page(schema: dict) -> str:
    """A self-contained page listing the operations of an OpenAPI document."""
    rows = []
    for path, operations in schema.get("paths", {}).items():
        for method, op in operations.items():
            params = ", ".join(f"{p['name']} ({p['in']})" for p in op.get("parameters", []))
            rows.append(f"<tr><td><b>{method.upper()}</b></td><td><code>{html.escape(path)}"
                        f"</code></td><td>{html.escape(op.get('summary', ''))}<br><small>"
                        f"{html.escape(op.get('description', '') or '')}</small></td>"
                        f"<td>{html.escape(params)}</td></tr>")
    info = schema.get("info", {})
    return ("<!doctype html><html><head><meta charset='utf-8'><title>"
            f"{html.escape(info.get('title', 'API'))}</title><style>body{{font-family:sans-"
            "serif;margin:2em}td{vertical-align:top;padding:.3em .6em;border-bottom:1px "
            "solid #ddd}</style></head><body>"
            f"<h1>{html.escape(info.get('title', 'API'))} {html.escape(info.get('version', ''))}"
            "</h1><p>Machine-readable: <a href='/openapi.json'>/openapi.json</a>. "
            "Every call needs <code>Authorization: Bearer &lt;token&gt;</code>.</p>"
            "<table><tr><th>method</th><th>path</th><th>what</th><th>parameters</th></tr>"
            + "".join(rows) + "</table></body></html>")
