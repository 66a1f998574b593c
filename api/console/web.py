"""The console's pages. Each handler: the session's role checked, one or two calls into
pipelines/ or dossiers/access.py, a template filled with what they returned.

Actions are POST forms carrying the session's CSRF token; each is confirmed first (a JS
confirm() adds ``confirmed=1``; without JS the POST answers a confirmation page that posts
again). Handlers are plain ``def`` where they touch the store (FastAPI's thread pool); those
that read a form are ``async`` and hand the store work to a thread.
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, FastAPI, Path, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.concurrency import run_in_threadpool

from api.app import MAX_ID, PATIENT_REF, state
from api.console import jobs
from api.console.render import (
    STATUS_COLOURS,
    cda_view,
    raw_lines,
    reference_bounds,
    sparkline,
    stacked_bars,
)
from api.console.session import (
    HERE,
    LANG_COOKIE,
    LANGUAGES,
    PRELOGIN_COOKIE,
    SESSION_COOKIE,
    CsrfError,
    Forbidden,
    LoginRequired,
    Session,
    check_csrf,
    check_prelogin,
    current,
    form,
    is_https,
    language,
    new_prelogin,
    require,
    status_namer,
    translator,
)
from api.tokens import TokenError, principal_from
from dossiers import access
from dossiers.access import AccessError, Principal
from pipelines import dashboard, silence
from pipelines.admin import (
    AdminError,
    assign,
    discard,
    edit,
    edited_text_bytes,
    read_raw,
    record_show,
)
from pipelines.advice import advice
from pipelines.archive import ArchiveError, ArchiveUnavailable
from pipelines.audit import Actor
from pipelines.documents import PDF_MEDIA_TYPE, embedded_pdf
from pipelines.filters import FilterError, build_filter
from pipelines.ledger import FAILED, QUARANTINED
from pipelines.report import (
    filter_notes,
    group_imports,
    list_imports,
    show_import,
)
from pipelines.rerun import targets

log = logging.getLogger("dmp.console")
router = APIRouter(prefix="/console", include_in_schema=False)
PAGE = 50
# The filters of `imports list` (pipelines/filters.py): the file name a sender's ticket names
# and the imports filed with warnings, as the CLI and the API select them.
FILTERS = ("status", "source", "channel", "stage", "code", "file", "since", "until", "patient",
           "warnings")
STATUSES = ("received", "processing", "deposited", "duplicate", "failed", "quarantined",
            "held", "discarded", "split")
ImportId = Annotated[int, Path(ge=1, le=MAX_ID)]
PatientRef = Annotated[str, Path(pattern=PATIENT_REF)]
CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
       "object-src 'self'; frame-src 'self'; frame-ancestors 'self'; form-action 'self'; "
       "base-uri 'none'")

_env = Environment(loader=FileSystemLoader(HERE / "templates"),
                   autoescape=select_autoescape(default=True, default_for_string=True),
                   trim_blocks=True, lstrip_blocks=True)


class ConsoleError(Exception):
    """A refusal or failure shown as a page (status, code, one line without patient data)."""

    def __init__(self, status: int, code: str, message: str, **extra: object) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.extra = status, code, message, extra


def page(request: Request, template: str, session: Session | None, status: int = 200,
         **values: object) -> HTMLResponse:
    lang = language(request)
    t = translator(lang)
    query = {k: v for k, v in request.query_params.items() if k != "lang"}
    body = _env.get_template(template).render(
        t=t, st=status_namer(lang), lang=lang, languages=LANGUAGES, session=session,
        who=session.principal if session else None, request=request,
        path=request.url.path, query=query, colours=STATUS_COLOURS, **values)
    response = HTMLResponse(body, status_code=status)
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    if request.query_params.get("lang") in LANGUAGES:
        response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, samesite="strict",
                            secure=is_https(request), httponly=True, path="/console")
    return response


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def error_pages(app: FastAPI) -> None:
    """The console's own exceptions become pages (the API's stay JSON)."""
    @app.exception_handler(LoginRequired)
    async def login_required(request: Request, exc: LoginRequired) -> Response:
        target = "/console/login" + (f"?{urlencode({'expired': 1})}" if exc.reason else "")
        response = redirect(target)
        if exc.reason:
            response.delete_cookie(SESSION_COOKIE, path="/console")
        return response

    @app.exception_handler(Forbidden)
    async def forbidden(request: Request, exc: Forbidden) -> Response:
        return page(request, "error.html", current(request), 403, code="FORBIDDEN",
                    message=translator(language(request))("forbidden"))

    @app.exception_handler(CsrfError)
    async def csrf(request: Request, exc: CsrfError) -> Response:
        return page(request, "error.html", current(request), 403, code="CSRF",
                    message=translator(language(request))("csrf_refused"))

    @app.exception_handler(ConsoleError)
    async def console_error(request: Request, exc: ConsoleError) -> Response:
        return page(request, exc.extra.pop("template", "error.html"), current(request),
                    exc.status, code=exc.code, message=exc.message, **exc.extra)


def _access_error(exc: AccessError) -> ConsoleError:
    return ConsoleError(exc.status, exc.code, exc.message)


# -- login ------------------------------------------------------------------------------------
@router.get("/")
def home(request: Request) -> Response:
    session = current(request)
    if session is None:
        return redirect("/console/login")
    who = session.principal
    if who.kind == "admin":
        return redirect("/console/dashboard")
    if who.kind == "patient":
        return redirect(f"/console/dossiers/{who.subject}")
    if who.kind in ("professional", "representative"):  # a parent may have several children
        return redirect("/console/dossier")
    raise Forbidden()


@router.get("/login")
def login_form(request: Request) -> Response:
    nonce = request.cookies.get(PRELOGIN_COOKIE) or new_prelogin()
    response = page(request, "login.html", None, nonce=nonce,
                    expired=bool(request.query_params.get("expired")))
    response.set_cookie(PRELOGIN_COOKIE, nonce, httponly=True, samesite="strict",
                        secure=is_https(request), path="/console")
    return response


@router.post("/login")
async def login(request: Request) -> Response:
    fields = await form(request)
    check_prelogin(request, fields)
    token = fields.get("token", "").strip()
    t = translator(language(request))
    try:
        who = principal_from(token, state(request).key)
    except TokenError as exc:
        response = page(request, "login.html", None, 401, nonce=request.cookies[PRELOGIN_COOKIE],
                        problem=f"{t('login_refused')} ({exc.code})")
        return response
    if who.kind == "sender":
        return page(request, "login.html", None, 403, nonce=request.cookies[PRELOGIN_COOKIE],
                    problem=t("login_sender"))
    response = redirect("/console/")
    response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="strict",
                        secure=is_https(request), path="/console")
    response.delete_cookie(PRELOGIN_COOKIE, path="/console")
    log.info("console login (%s)", who.kind)
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    session = require(request)
    check_csrf(session, await form(request))
    response = redirect("/console/login")
    response.delete_cookie(SESSION_COOKIE, path="/console")
    return response


# -- admin: dashboard -------------------------------------------------------------------------
@router.get("/dashboard")
def dashboard_page(request: Request, source: str | None = None) -> Response:
    session = require(request, "admin")
    engine = state(request).ctx.engine
    t = translator(language(request))
    hourly = dashboard.timeline(engine, hourly=True, source=source or None)
    daily = dashboard.timeline(engine, hourly=False, source=source or None)
    status = getattr(request.app.state, "service_status", None)
    settings = state(request).ctx.settings
    waiting = dashboard.backlog(engine, warning_minutes=settings.backlog_minutes,
                                critical_minutes=settings.backlog_critical_minutes)
    return page(request, "dashboard.html", session, source=source or "",
                hourly=hourly, daily=daily,
                hourly_chart=stacked_bars(hourly["labels"], hourly["series"],
                                          title=t("chart_24h")),
                daily_chart=stacked_bars(daily["labels"], daily["series"],
                                         title=t("chart_30d")),
                per_source=dashboard.per_source(engine), backlog=waiting,
                # what `check` says SILENT_SOURCE, and when each source (as the ledger names
                # it) last sent: a feed stopped at 2 a.m. shows here, not only by its absence
                silent=silence.silent_sources(engine, settings),
                heard=silence.last_received(engine), duration=silence.say_duration,
                # a burst of one code from one source is one line: how many, since when
                codes=_bursts(engine),
                service=status.snapshot() if status is not None else None)


def _bursts(engine) -> list[dict]:  # noqa: ANN001
    """The 15 largest (error code, source, status) groups, with their first and last import
    and, for what waits on an admin, the advice for the code."""
    groups = group_imports(engine, None, ["code", "source", "status"], limit=15,
                           coded=True)["groups"]
    for g in groups:
        g["advice"] = advice(g["code"]) if g["status"] in (FAILED, QUARANTINED) else None
    return groups


# -- admin: imports ---------------------------------------------------------------------------
def _filter_values(request: Request) -> dict[str, str]:
    return {k: request.query_params.get(k, "").strip() for k in FILTERS}


def _build(request: Request, values: dict[str, str]):  # noqa: ANN202
    try:
        ctx = state(request).ctx
        return build_filter(ctx.engine, **{k: (v or None) for k, v in values.items()},
                            settings=ctx.settings)
    except FilterError as exc:
        raise ConsoleError(400, "BAD_FILTER", str(exc)) from None


@router.get("/imports")
def imports_page(request: Request, offset: int = 0) -> Response:
    session = require(request, "admin")
    values = _filter_values(request)
    flt = _build(request, values)
    offset = max(0, min(offset, 100_000))
    rows = list_imports(state(request).ctx.engine, flt, limit=offset + PAGE + 1)
    shown = rows[offset:offset + PAGE]
    base = {k: v for k, v in values.items() if v}
    # an empty list for a code or channel no import ever had: a typo, said as such
    notes = [] if rows else filter_notes(state(request).ctx.engine, flt)
    return page(request, "imports.html", session, rows=shown, values=values, notes=notes,
                statuses=STATUSES, offset=offset, page_size=PAGE,
                has_next=len(rows) > offset + PAGE,
                prev_url=f"?{urlencode({**base, 'offset': max(0, offset - PAGE)})}",
                next_url=f"?{urlencode({**base, 'offset': offset + PAGE})}",
                filtered=not flt.is_empty())


@router.get("/imports/{import_id}")
def import_page(import_id: ImportId, request: Request, raw: int = 0) -> Response:
    session = require(request, "admin")
    ctx = state(request).ctx
    # in the trail of the patients it concerns, as the CLI's and the API's show are
    info = show_import(ctx.engine, import_id) if record_show(
        ctx.engine, import_id, Actor(session.principal.subject), "console") else None
    if info is None:
        raise ConsoleError(404, "NOT_FOUND", f"no import {import_id}")
    content = lines = None
    raw_problem = None
    if raw:
        try:
            content = read_raw(ctx.engine, ctx.archive, import_id,
                               Actor(session.principal.subject), reason="console",
                               settings=ctx.settings)
        except AdminError as exc:
            raw_problem = str(exc)
        except ArchiveUnavailable:
            raw_problem = translator(language(request))("error.ARCHIVE_UNAVAILABLE")
        if content is not None and content.text is not None:
            lines = raw_lines(content.text, content.format, info["error_location"])
    editable = info["status"] in ("failed", "quarantined")
    edit_text = None
    if content is not None and content.text is not None and editable:
        edit_text = content.text.replace("\r\n", "\n").replace("\r", "\n") \
            if content.format == "hl7v2" else content.text
    return page(request, "import.html", session, info=info, raw=raw, content=content,
                lines=lines, raw_problem=raw_problem, editable=editable, edit_text=edit_text,
                pdf_page=pdf_page(info["error_location"]) if info["format"] == "pdf" else None,
                done=request.query_params.get("done"),
                outcome=request.query_params.get("outcome"))


@router.get("/imports/{import_id}/raw.pdf")
def import_raw_pdf(import_id: ImportId, request: Request) -> Response:
    """An imported PDF as the browser's viewer shows it (the detail page opens it at the
    error's page). Reading it is audited like any raw read."""
    session = require(request, "admin")
    ctx = state(request).ctx
    try:
        content = read_raw(ctx.engine, ctx.archive, import_id,
                           Actor(session.principal.subject), reason="console (pdf view)",
                           settings=ctx.settings)
    except AdminError as exc:
        raise ConsoleError(404, "NOT_FOUND", str(exc)) from None
    except ArchiveUnavailable:
        raise ConsoleError(503, "ARCHIVE_UNAVAILABLE", "the archive cannot be read now") \
            from None
    if content.format != "pdf" or not content.data.startswith(b"%PDF"):
        raise ConsoleError(404, "NOT_PDF", f"import {import_id} is not a PDF")
    return Response(content.data, media_type="application/pdf",
                    headers={"Content-Disposition": f'inline; filename="import-{import_id}.pdf"',
                             "X-Content-Type-Options": "nosniff"})


def pdf_page(location: str | None) -> int | None:
    """The page an error location names ('page 3'), for the PDF viewer's #page=."""
    found = re.search(r"\bpage (\d+)", location or "")
    return int(found.group(1)) if found else None


ACTIONS = ("rerun", "assign", "edit", "discard")


@router.post("/imports/{import_id}/{action}")
async def import_action(import_id: ImportId, action: str, request: Request) -> Response:
    session = require(request, "admin")
    fields = await form(request)
    check_csrf(session, fields)
    if action not in ACTIONS:
        raise ConsoleError(404, "NOT_FOUND", "no such action")
    if fields.get("confirmed") != "1":
        return page(request, "confirm.html", session, action=action, import_id=import_id,
                    fields={k: v for k, v in fields.items() if k not in ("csrf", "confirmed")},
                    target=f"/console/imports/{import_id}/{action}",
                    back=f"/console/imports/{import_id}")
    api = state(request)
    actor = Actor(session.principal.subject)
    reason = fields.get("reason", "").strip()

    def act() -> tuple[int, dict]:
        if action == "assign":
            assign(api.ctx.engine, import_id, fields.get("patient", "").strip(), actor, reason,
                   archive=api.ctx.archive)
            return import_id, jobs.run(api, [import_id])
        if action == "discard":
            discard(api.ctx.engine, import_id, actor, reason)
            return import_id, {"outcomes": {"discarded": 1}}
        if action == "edit":
            data = edited_text_bytes(api.ctx.engine, api.ctx.archive, import_id,
                                     fields.get("content", ""), actor, api.ctx.settings)
            new_ids = edit(api.ctx.engine, api.ctx.archive, import_id, data, actor,
                           reason=reason or None)
            return (min(new_ids) if new_ids else import_id), jobs.run(api, new_ids)
        if show_import(api.ctx.engine, import_id) is None:
            raise AdminError(f"no import {import_id}")
        jobs.audit_rerun(api, actor, [import_id], reason or None)
        return import_id, jobs.run(api, [import_id])

    try:
        shown, result = await run_in_threadpool(act)
    except AdminError as exc:
        raise ConsoleError(400, "ACTION_REFUSED", str(exc),
                           back=f"/console/imports/{import_id}") from None
    except ArchiveError:
        raise ConsoleError(503, "ARCHIVE_UNAVAILABLE", "the archive cannot be read now") \
            from None
    outcome = ",".join(f"{s}:{n}" for s, n in sorted(result.get("outcomes", {}).items()))
    return redirect(f"/console/imports/{shown}?{urlencode({'done': action, 'outcome': outcome})}")


@router.post("/bulk-rerun")
async def bulk_rerun(request: Request) -> Response:
    session = require(request, "admin")
    fields = await form(request)
    check_csrf(session, fields)
    values = {k: fields.get(k, "").strip() for k in FILTERS}
    api = state(request)
    flt = await run_in_threadpool(_build, request, values)
    if flt.is_empty():
        raise ConsoleError(400, "NOTHING_TO_RERUN", "choose a filter first",
                           back="/console/imports")
    ids = await run_in_threadpool(targets, api.ctx.engine, [], flt)
    if not ids:  # a confirmation, then a job, of nothing: said at once, as the API does
        notes = await run_in_threadpool(filter_notes, api.ctx.engine, flt)
        back = "/console/imports?" + urlencode({k: v for k, v in values.items() if v})
        raise ConsoleError(400, "NO_MATCH", "; ".join(notes) or "no import matches this "
                           "filter", back=back)
    if fields.get("confirmed") != "1":
        return page(request, "confirm.html", session, action="bulk", count=len(ids),
                    fields={k: v for k, v in values.items() if v},
                    target="/console/bulk-rerun",
                    back="/console/imports?" + urlencode({k: v for k, v in values.items()
                                                          if v}))
    actor = Actor(session.principal.subject)
    await run_in_threadpool(jobs.audit_rerun, api, actor, ids,
                            fields.get("reason", "").strip() or "bulk rerun (console)")
    job = jobs.start_bulk(api, ids, actor)
    return redirect(f"/console/jobs/{job.id}")


@router.get("/jobs/{job_id}.json")
def job_json(job_id: str, request: Request) -> Response:
    require(request, "admin")
    job = jobs.get(job_id)
    if job is None:
        return JSONResponse({"error": "NOT_FOUND"}, status_code=404)
    return JSONResponse(job.as_dict())


@router.get("/jobs/{job_id}")
def job_page(job_id: str, request: Request) -> Response:
    session = require(request, "admin")
    job = jobs.get(job_id)
    if job is None:
        raise ConsoleError(404, "NOT_FOUND", "no such rerun")
    st = status_namer(language(request))
    response = page(request, "job.html", session, job=job.as_dict(), summary=job.summary,
                    status_names={s: st(s) for s in STATUSES})
    if not job.finished:  # without JS the page reloads itself until the rerun is done
        response.headers["Refresh"] = "2"
    return response


# -- dossiers ---------------------------------------------------------------------------------
READERS = ("professional", "patient", "representative")  # who reads dossiers here


@router.get("/dossier")
def dossier_pick(request: Request, ref: str | None = None) -> Response:
    session = require(request, *READERS)
    if session.principal.kind == "patient":
        return redirect(f"/console/dossiers/{session.principal.subject}")
    if ref:
        ref = ref.strip()
        if re.match(PATIENT_REF, ref):
            return redirect(f"/console/dossiers/{ref}")
        return page(request, "pick.html", session, 400, problem=True, ref=ref)
    return page(request, "pick.html", session)


def _reader(session: Session) -> Principal:
    return session.principal


@router.get("/dossiers/{patient}")
def dossier_page(patient: PatientRef, request: Request) -> Response:
    session = require(request, *READERS)
    engine = state(request).ctx.engine
    try:
        dossier = access.read_dossier(engine, _reader(session), patient)
        found = access.read_entries(engine, _reader(session), patient, limit=5000)
    except AccessError as exc:
        if exc.status == 403 and session.principal.kind == "professional":
            # an opposed emergency access is not offered again (it would be refused)
            raise ConsoleError(403, exc.code, exc.message, template="denied.html",
                               patient=patient,
                               opposed=exc.code in access.OPPOSITION_CODES) from None
        raise _access_error(exc) from None
    return page(request, "dossier.html", session, patient=patient, dossier=dossier,
                **group_entries(found["entries"]))


def group_entries(entries: list[dict]) -> dict:
    """Results (a table), trends (codes measured at least twice), documents (with a file),
    the rest per type: only a layout of what dossiers/access.py let through."""
    by_id = {e["id"]: e for e in entries}
    results = [e for e in entries if e["type"] == "lab_result"]
    results.sort(key=lambda e: (e["effective"] or "", e["id"]), reverse=True)
    series: dict[tuple, list] = defaultdict(list)
    for e in results:
        if e["value_num"] is not None and e["code"]:
            series[(e["code"], e["unit"] or "")].append(e)
    trends = []
    for (code, unit), items in sorted(series.items()):
        if len(items) < 2:
            continue
        items = sorted(items, key=lambda e: (e["effective"] or "", e["id"]))
        low, high = reference_bounds(items[-1]["reference_range"])
        trends.append({"code": code, "unit": unit, "display": items[-1]["display"] or code,
                       "last": items[-1], "count": len(items),
                       "chart": sparkline([(e["effective"] or "", float(e["value_num"]))
                                           for e in items], low=low, high=high)})
    documents = [e for e in entries if e["has_file"]]
    others: dict[str, list] = defaultdict(list)
    for e in entries:
        if e["type"] != "lab_result" and not e["has_file"]:
            others[e["type"]].append(e)
    return {"results": results, "trends": trends, "documents": documents,
            "others": dict(sorted(others.items())), "by_id": by_id}


@router.post("/dossiers/{patient}/break-glass")
async def break_glass(patient: PatientRef, request: Request) -> Response:
    session = require(request, "professional")
    fields = await form(request)
    check_csrf(session, fields)
    if fields.get("confirmed") != "1":
        return page(request, "confirm.html", session, action="break_glass",
                    fields={"reason": fields.get("reason", "")},
                    target=f"/console/dossiers/{patient}/break-glass",
                    back=f"/console/dossiers/{patient}")
    try:
        await run_in_threadpool(access.open_break_glass, state(request).ctx.engine,
                                session.principal, patient, fields.get("reason", ""))
    except AccessError as exc:
        raise _access_error(exc) from None
    return redirect(f"/console/dossiers/{patient}")


@router.get("/dossiers/{patient}/audit")
def audit_page(patient: PatientRef, request: Request) -> Response:
    session = require(request, "patient", "representative")
    try:
        trail = access.read_audit(state(request).ctx.engine, session.principal, patient)
    except AccessError as exc:
        raise _access_error(exc) from None
    # newest first, as read_audit gives them (it was reversed here: the oldest page, upside down)
    return page(request, "audit.html", session, patient=patient, events=trail["events"])


@router.get("/documents/{entry_id}")
def document_page(entry_id: ImportId, request: Request, kind: str | None = None) -> Response:
    """A PDF is shown by the browser from /file (one audited read); a CDA is read here
    (audited) and laid out as HTML."""
    session = require(request, *READERS)
    if kind == "pdf":
        return page(request, "document.html", session, entry_id=entry_id, pdf=True)
    ctx = state(request).ctx
    try:
        found = access.read_document(ctx.engine, session.principal, entry_id)
    except AccessError as exc:
        raise _access_error(exc) from None
    if found["media_type"] == "application/pdf":
        return page(request, "document.html", session, entry_id=entry_id, pdf=True)
    data = _archived(ctx, found["sha256"])
    try:
        view = cda_view(data)
    except ValueError:
        view = None
    return page(request, "document.html", session, entry_id=entry_id, pdf=False, view=view,
                patient=found["patient_id"])


@router.get("/documents/{entry_id}/embedded.pdf")
def document_embedded_pdf(entry_id: ImportId, request: Request) -> Response:
    """The PDF inside a level-1 CDA, for the browser's viewer on the document's page (the
    read is checked and audited by dossiers/access.py like any document read)."""
    session = require(request, *READERS)
    ctx = state(request).ctx
    try:
        found = access.read_document(ctx.engine, session.principal, entry_id)
    except AccessError as exc:
        raise _access_error(exc) from None
    pdf = None
    if found["media_type"] != PDF_MEDIA_TYPE:
        pdf = embedded_pdf(_archived(ctx, found["sha256"]))
    if pdf is None:
        raise ConsoleError(404, "NO_EMBEDDED_PDF", f"document {entry_id} carries no PDF")
    return Response(pdf, media_type=PDF_MEDIA_TYPE,
                    headers={"Content-Disposition": f'inline; filename="document-{entry_id}.pdf"',
                             "X-Content-Type-Options": "nosniff"})


def _archived(ctx, sha: str) -> bytes:  # noqa: ANN001
    try:
        return ctx.archive.get(sha)
    except ArchiveError:
        raise ConsoleError(503, "ARCHIVE_UNAVAILABLE", "the document's file cannot be read "
                           "now") from None


@router.get("/documents/{entry_id}/file")
def document_file(entry_id: ImportId, request: Request) -> Response:
    session = require(request, *READERS)
    ctx = state(request).ctx
    try:
        found = access.read_document(ctx.engine, session.principal, entry_id)
    except AccessError as exc:
        raise _access_error(exc) from None
    data = _archived(ctx, found["sha256"])
    pdf = found["media_type"] == "application/pdf"
    return Response(data, media_type=found["media_type"] if pdf else "application/octet-stream",
                    headers={"Content-Disposition": f'{"inline" if pdf else "attachment"}; '
                             f'filename="{found["file_name"]}"',
                             "X-Content-Type-Options": "nosniff",
                             # the browser's own PDF viewer needs no policy; nothing else runs
                             **({} if pdf else {"Content-Security-Policy": "sandbox"})})
