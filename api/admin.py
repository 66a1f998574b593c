"""The admin's endpoints, mirroring `dmp-ingest imports list / stats / show [--raw] / rerun /
assign / edit / discard` for a console or a script.

Same filters, same dicts as the CLI (pipelines/filters.py, pipelines/report.py,
pipelines/rerun.py). A rerun reopens the imports and lets the service's workers process them
(202); with ``"wait": true`` they are processed in the request, and the outcomes returned
(what the CLI does), for small reruns. Every rerun is in the audit trail under the admin's
name, with the reason given.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from api.app import MAX_ID, PATIENT_REF, ApiError, requires, state
from dossiers.access import Principal
from dossiers.patients import find_by_reference
from pipelines.admin import (
    AdminError,
    assign,
    discard,
    edit,
    edited_text_bytes,
    read_raw,
    record_show,
)
from pipelines.archive import ArchiveUnavailable
from pipelines.audit import Actor
from pipelines.check import health as check_health
from pipelines.dossier_merge import MergeRefusedError, merge_dossiers
from pipelines.filters import FilterError, build_filter
from pipelines.ledger import ImportFilter, claim_batch
from pipelines.process import CODE_VERSION
from pipelines.report import (
    code_seen,
    count_imports,
    filter_notes,
    group_imports,
    group_keys,
    import_stats,
    list_imports,
    show_import,
    unseen_words,
)
from pipelines.rerun import (
    RerunPlan,
    audit_rerun,
    dry_run,
    reopen_checked,
    rerun_outcomes,
    targets,
)
from pipelines.resilient import process_or_defer
from pipelines.waiting import resolvable_imports, resolvable_listing

router = APIRouter(prefix="/admin", tags=["admin"])
ADMIN = Annotated[Principal, Depends(requires("admin"))]
ImportId = Annotated[int, Path(ge=1, le=MAX_ID)]
MAX_LISTED = 10_000  # offset + limit: deeper pages are for filters, not paging
# A rerun processed in the request ("wait"): beyond this many imports the request outlives
# any client or proxy timeout, and a client that retries asks for the same rerun again.
MAX_WAITED = 1000
# The media type of an archived message by its detected format (HL7v2: its registered ER7
# type); anything else as bytes.
RAW_TYPES = {"hl7v2": "x-application/hl7-v2+er7", "cda": "application/xml",
             "pdf": "application/pdf"}


class Filter(BaseModel):
    """The filter options of `imports list/rerun` (all optional, combined with AND)."""

    status: str | None = None
    source: str | None = None
    channel: str | None = None
    stage: str | None = None
    code: str | None = Field(None, description="error code, e.g. CODE_UNMAPPED; or a family: CDA_*")
    since: str | None = Field(None, description="2026-11-25, 2026-11-25T08:00, 24h, 7d")
    until: str | None = None
    patient: str | None = Field(None, pattern=PATIENT_REF, description="INS or dossier id")
    warnings: bool = Field(False, description="only imports with warnings")
    file: str | None = Field(None, max_length=500,
                             description="file name; '*' and '?' as in a shell")


class Rerun(BaseModel):
    ids: list[Annotated[int, Field(ge=1, le=MAX_ID)]] = Field(default_factory=list,
                                                              max_length=100_000)
    filter: Filter | None = None
    dry_run: bool = False
    wait: bool = Field(False, description="process now and return the outcomes")
    reason: str | None = Field(None, max_length=1000,
                               description="why (kept in the audit trail)")
    resolvable: bool = Field(False, description="the quarantined imports (no dossier found) "
                             "whose message now names a dossier, as the listing's resolvable "
                             "selects them: the filter narrows them, selects nothing itself")


class Assign(BaseModel):
    patient: str = Field(pattern=PATIENT_REF, description="INS or dossier id")
    reason: str = Field(min_length=1, max_length=1000, pattern=r"\S",
                        description="why (kept in the audit trail)")
    wait: bool = Field(False, description="process now and return the outcome")


class Edit(BaseModel):
    """A corrected message: as text (what `/raw` or the console shows; stored in the
    message's own charset, HL7v2 segments joined by CR) or as the exact bytes in base64
    (a PDF, or bytes the admin prepared). One of the two."""

    content: str | None = Field(None, description="the corrected message as text")
    content_base64: str | None = Field(None, description="the corrected message's bytes, "
                                       "base64")
    reason: str | None = Field(None, max_length=1000,
                               description="why (kept in the audit trail)")
    wait: bool = Field(False, description="process now and return the outcome")


class Merge(BaseModel):
    survivor: str = Field(pattern=PATIENT_REF, description="the surviving dossier (INS or id)")
    merged: str = Field(pattern=PATIENT_REF, description="the dossier merged into it")
    reason: str = Field(min_length=1, max_length=1000, pattern=r"\S",
                        description="why (kept in both patients' audit trails)")
    dry_run: bool = Field(False, description="what would move (counts, codes); nothing done")


class Discard(BaseModel):
    reason: str = Field(min_length=1, max_length=1000, pattern=r"\S",
                        description="why (kept on the import and in the audit trail)")


def _filter(request: Request, f: Filter | None) -> ImportFilter:
    try:
        ctx = state(request).ctx
        return build_filter(ctx.engine, **(f or Filter()).model_dump(), settings=ctx.settings)
    except FilterError as exc:
        raise ApiError(400, "BAD_FILTER", str(exc)) from None


@router.get("/imports", summary="Imports matching a filter, sorted (imports list)")
def imports_list(request: Request, who: ADMIN,
                 status: str | None = None, source: str | None = None,
                 channel: str | None = None, stage: str | None = None,
                 code: str | None = None, since: str | None = None,
                 until: str | None = None,
                 patient: Annotated[str | None, Query(pattern=PATIENT_REF)] = None,
                 warnings: bool = Query(False, description="only imports with warnings"),
                 file: Annotated[str | None, Query(max_length=500, description="file name; "
                                                   "'*' and '?' as in a shell")] = None,
                 sort: str = Query("-id", description="id, received, updated, status, "
                                   "source, code, stage, attempts; '-' for descending"),
                 limit: int = Query(200, ge=1, le=5000),
                 offset: int = Query(0, ge=0, le=MAX_LISTED),
                 resolvable: bool = Query(False, description="only quarantined imports (no "
                                          "dossier found) whose message now names a dossier "
                                          "(INS or local identifier), each with its "
                                          "'dossiers': read from the archive, the most recent "
                                          "first (imports list --resolvable)")) -> dict:
    """A page of the imports a filter selects, and ``total``: how many it selects in all."""
    flt = _filter(request, Filter(status=status, source=source, channel=channel, stage=stage,
                                  code=code, since=since, until=until, patient=patient,
                                  warnings=warnings, file=file))
    engine = state(request).ctx.engine
    if resolvable:
        try:
            found = resolvable_listing(state(request).ctx, flt, sort=sort, limit=limit,
                                       offset=offset)
        except ValueError as exc:  # unknown sort key
            raise ApiError(400, "BAD_SORT", str(exc)) from None
        if not found["total"]:  # a code, channel or stage no import ever had: said
            found["notes"] = filter_notes(engine, flt)
        return found
    try:
        rows = list_imports(engine, flt, sort=sort, limit=limit, offset=offset)
    except ValueError as exc:  # unknown sort key
        raise ApiError(400, "BAD_SORT", str(exc)) from None
    total = count_imports(engine, flt)
    found = {"imports": rows, "offset": offset, "limit": limit, "total": total}
    if not total:  # a code, channel or stage no import ever had: a typo, said as such
        found["notes"] = filter_notes(engine, flt)
    return found


@router.get("/imports/stats", summary="Counts per status and per error code (imports stats)")
def imports_stats(request: Request, who: ADMIN,
                  status: str | None = None, source: str | None = None,
                  channel: str | None = None, stage: str | None = None,
                  code: str | None = None, since: str | None = None,
                  until: str | None = None,
                  patient: Annotated[str | None, Query(pattern=PATIENT_REF)] = None,
                  warnings: bool = Query(False, description="only imports with warnings"),
                  file: Annotated[str | None, Query(max_length=500)] = None) -> dict:
    """Counts, and ``notes`` when nothing is counted because the filter names a code, a
    channel or a stage no import ever had (as the list says it: zero is no good news then)."""
    flt = _filter(request, Filter(status=status, source=source, channel=channel, stage=stage,
                                  code=code, since=since, until=until, patient=patient,
                                  warnings=warnings, file=file))
    engine = state(request).ctx.engine
    stats = import_stats(engine, flt)
    if not stats["total"] and (notes := filter_notes(engine, flt)):
        stats["notes"] = notes
    return stats


@router.get("/health", summary="Backlog and silent sources, with a status for monitoring")
def health(request: Request, who: ADMIN) -> dict:
    """``status`` ok, warning or critical as `dmp-ingest check` rates the same things (the
    backlog's oldest wait against [check] backlog_minutes / backlog_critical_minutes, the
    sources silent past their max_silence), ``backlog``, ``silent`` and when each source
    last sent (``last_received``). Two small queries: fit for a poll every minute; the
    store's and the archive's consistency is `dmp-ingest check`'s."""
    ctx = state(request).ctx
    return check_health(ctx.engine, ctx.settings)


@router.get("/imports/groups", summary="Imports counted per code, source, status... "
            "(imports list --group-by)")
def imports_groups(request: Request, who: ADMIN,
                   group_by: str = Query("code,source", max_length=200,
                                         description="code, source, status, stage, channel; "
                                         "comma-separated"),
                   status: str | None = None, source: str | None = None,
                   channel: str | None = None, stage: str | None = None,
                   code: str | None = None, since: str | None = None,
                   until: str | None = None,
                   patient: Annotated[str | None, Query(pattern=PATIENT_REF)] = None,
                   warnings: bool = Query(False, description="only imports with warnings"),
                   file: Annotated[str | None, Query(max_length=500)] = None,
                   limit: int = Query(200, ge=1, le=5000),
                   offset: int = Query(0, ge=0, le=MAX_LISTED)) -> dict:
    """A burst of one code from one source is one group, not thousands of rows: its count,
    its first and last import, and ``filter``: the request's filter with the group's values,
    what `POST /admin/imports/rerun` takes (``dry_run`` first) to rerun that group alone."""
    given = Filter(status=status, source=source, channel=channel, stage=stage, code=code,
                   since=since, until=until, patient=patient, warnings=warnings, file=file)
    flt = _filter(request, given)
    try:
        keys = group_keys(group_by)
    except ValueError as exc:
        raise ApiError(400, "BAD_GROUP_BY", str(exc)) from None
    engine = state(request).ctx.engine
    found = group_imports(engine, flt, keys, limit=limit, offset=offset)
    base = {k: v for k, v in given.model_dump().items() if v not in (None, False)}
    for name in ("since", "until"):  # '24h' sent later would select another window
        if name in base:
            base[name] = getattr(flt, name).isoformat()
    for group in found["groups"]:
        group.pop("select")
        if group["filter"] is not None:
            group["filter"] = {**base, **group["filter"]}
    found.update(offset=offset, limit=limit)
    if not found["total"]:
        found["notes"] = filter_notes(engine, flt)
    return found


@router.get("/imports/{import_id}", summary="One import: attempts, error, entries, audit")
def imports_show(import_id: ImportId, request: Request, who: ADMIN,
                 reason: str | None = Query(None, max_length=500,
                                            description="why (kept in the audit trail)"),
                 ) -> dict:
    """The entries an import filed are what a dossier holds: the look is in the trail of
    every patient the import concerns (pipelines/admin.py ``record_show``)."""
    engine = state(request).ctx.engine
    info = show_import(engine, import_id) if record_show(
        engine, import_id, Actor(who.subject), reason) else None
    if info is None:
        raise ApiError(404, "NOT_FOUND", f"no import {import_id}")
    return info


@router.post("/imports/rerun", summary="Replay imports from the archive (ids and/or filter)",
             responses={202: {"description": "reopened; the workers process them"}})
def imports_rerun(body: Rerun, request: Request,
                  who: ADMIN) -> JSONResponse:
    flt = _filter(request, body.filter)
    if body.resolvable:  # the filter narrows the scan; the rerun takes what it found
        found = resolvable_imports(state(request).ctx, flt)
        ids = sorted({*body.ids, *found.found})
        if not ids:
            raise ApiError(400, "NOTHING_TO_RERUN", f"none of the {found.scanned} quarantined "
                           "imports read names a dossier now (INS or local identifier)")
        return _rerun(request, ids, body, who)
    if not body.ids and flt.is_empty():
        raise ApiError(400, "NOTHING_TO_RERUN", "give import ids or a filter")
    if not body.ids and flt.error_code and not code_seen(state(request).ctx.engine,
                                                         flt.error_code):
        raise ApiError(400, "NOTHING_TO_RERUN", f"no import has error code {flt.error_code}")
    if not body.ids and (unseen := unseen_words(state(request).ctx.engine, flt)):
        raise ApiError(400, "NOTHING_TO_RERUN", "; ".join(unseen))
    return _rerun(request, targets(state(request).ctx.engine, body.ids, flt), body, who)


@router.post("/imports/{import_id}/rerun", summary="Replay one import from the archive",
             responses={202: {"description": "reopened; the workers process it"}})
def imports_rerun_one(import_id: ImportId, request: Request, who: ADMIN,
                      body: Rerun | None = None) -> JSONResponse:
    if show_import(state(request).ctx.engine, import_id) is None:
        raise ApiError(404, "NOT_FOUND", f"no import {import_id}")
    return _rerun(request, [import_id], body or Rerun(), who)


def _rerun(request: Request, ids: list[int], body: Rerun, who: Principal) -> JSONResponse:
    api = state(request)
    ctx = api.ctx
    if body.wait and not body.dry_run and len(ids) > MAX_WAITED:
        raise ApiError(400, "TOO_MANY_TO_WAIT",
                       f"{len(ids)} imports: too many to process in the request (at most "
                       f"{MAX_WAITED} with wait); leave wait out (the service's workers "
                       "process them, `imports stats` follows them) or narrow the filter")
    try:
        if body.dry_run:
            return JSONResponse(dry_run(ctx.engine, ctx.archive, ids, ctx.settings))
        audit_rerun(ctx.engine, Actor(who.subject), ids, body.reason)
        plan = reopen_checked(ctx.engine, ctx.archive, ids, code_version=CODE_VERSION,
                              settings=ctx.settings)
    except ArchiveUnavailable:
        raise ApiError(503, "ARCHIVE_UNAVAILABLE", "the archive cannot be read now") from None
    if ids and len(plan.unknown) == len(ids):  # nothing of the ledger: not 'queued'
        shown = ", ".join(map(str, plan.unknown[:20]))
        more = f" and {len(plan.unknown) - 20} more" if len(plan.unknown) > 20 else ""
        raise ApiError(404, "NOT_FOUND", f"no import {shown}{more}")
    return _process(request, ids, plan, body.wait)


def _process(request: Request, ids: list[int], plan: RerunPlan, wait: bool,
             **extra: object) -> JSONResponse:
    """Reopened imports: left to the service's workers (202), or processed in the request
    (``wait``) and their outcomes read back from the ledger."""
    api = state(request)
    ctx = api.ctx
    result = {**extra, "requested": len(ids), "dry_run": False, "outcomes": {}, "results": [],
              **plan.summary()}
    if not wait:
        api.wake()
        return JSONResponse({**result, "processing": "queued"}, status_code=202)
    worker = api.rerun_ctx
    todo = plan.to_process
    size = ctx.settings.batch_size
    for i in range(0, len(todo), size):
        claimed = claim_batch(ctx.engine, limit=size, worker=worker.worker,
                              ids=todo[i:i + size], lease_seconds=ctx.settings.lease_seconds)
        process_or_defer(worker, claimed)
    return JSONResponse({**result, **rerun_outcomes(ctx.engine, todo), "processing": "done"})


def _known(request: Request, import_id: int) -> None:
    if show_import(state(request).ctx.engine, import_id) is None:
        raise ApiError(404, "NOT_FOUND", f"no import {import_id}")


@router.post("/imports/{import_id}/assign",
             summary="File a quarantined import in a dossier, then rerun it (imports assign)",
             responses={202: {"description": "assigned and reopened; the workers process it"}})
def imports_assign(import_id: ImportId, body: Assign, request: Request,
                   who: ADMIN) -> JSONResponse:
    """What the CLI and the console do for a quarantined identity (unknown or ambiguous
    patient): the admin names the dossier, the import is reopened and filed there. A script
    or another console needs it as much as a rerun: a quarantined import could be listed
    and rerun through the API, never resolved. Audited under the admin's name."""
    ctx = state(request).ctx
    _known(request, import_id)
    with ctx.engine.connect() as conn:
        if find_by_reference(conn, body.patient) is None:  # the reference not repeated
            raise ApiError(404, "NOT_FOUND", "no such dossier")
    try:
        patient_id = assign(ctx.engine, import_id, body.patient, Actor(who.subject),
                            body.reason, archive=ctx.archive)
        plan = reopen_checked(ctx.engine, ctx.archive, [import_id], code_version=CODE_VERSION,
                              settings=ctx.settings)
    except AdminError as exc:
        raise ApiError(409, "ACTION_REFUSED", str(exc)) from None
    except ArchiveUnavailable:
        raise ApiError(503, "ARCHIVE_UNAVAILABLE", "the archive cannot be read now") from None
    return _process(request, [import_id], plan, body.wait, patient_id=patient_id)


@router.post("/imports/{import_id}/edit",
             summary="Correct a failed or quarantined message and rerun it as a new import "
                     "(imports edit); the original is kept",
             responses={202: {"description": "stored as a new import; the workers process "
                                             "it"}})
def imports_edit(import_id: ImportId, body: Edit, request: Request,
                 who: ADMIN) -> JSONResponse:
    """What `imports edit` and the console do: the corrected bytes become a new archived
    object and a new import (channel 'edit', ``edited_from`` this one), the original is
    closed 'discarded' with "edited as import N" and its bytes are never touched. The same
    rules (only a failed or quarantined import, a change required) and the same audit
    (import.edit under the admin's name, with the reason). A script had to reach for the
    CLI on the server to correct what the API listed."""
    ctx = state(request).ctx
    info = show_import(ctx.engine, import_id)
    if info is None:
        raise ApiError(404, "NOT_FOUND", f"no import {import_id}")
    if info["status"] not in ("failed", "quarantined"):  # refused before its bytes are read
        # (a read of patient data, audited) for nothing; edit() decides again when storing
        raise ApiError(409, "ACTION_REFUSED", f"import {import_id} is {info['status']}: only "
                       "failed or quarantined imports can be edited")
    data = _edited(request, import_id, body, who)
    try:
        new_ids = edit(ctx.engine, ctx.archive, import_id, data, Actor(who.subject),
                       reason=body.reason)
        plan = reopen_checked(ctx.engine, ctx.archive, new_ids, code_version=CODE_VERSION,
                              settings=ctx.settings)
    except AdminError as exc:
        raise ApiError(409, "ACTION_REFUSED", str(exc)) from None
    except ArchiveUnavailable:
        raise ApiError(503, "ARCHIVE_UNAVAILABLE", "the archive cannot be stored or read "
                       "now") from None
    return _process(request, new_ids, plan, body.wait, **{"import": import_id,
                                                         "new_imports": new_ids})


def _edited(request: Request, import_id: int, body: Edit, who: Principal) -> bytes:
    """The bytes of an Edit: its text in the message's charset, or its base64 decoded;
    400 for neither or both, bad base64; 413 over the service's body limit."""
    ctx = state(request).ctx
    if (body.content is None) == (body.content_base64 is None):
        raise ApiError(400, "BAD_EDIT", "give the corrected message as content (text) or "
                       "content_base64 (bytes), one of the two")
    limit = ctx.settings.http.max_body
    if len(body.content_base64 if body.content is None else body.content) > 2 * limit:
        raise ApiError(413, "TOO_LARGE", f"the message is over the limit of {limit} bytes")
    if body.content_base64 is not None:
        try:
            data = base64.b64decode(body.content_base64, validate=True)
        except (binascii.Error, ValueError):
            raise ApiError(400, "BAD_EDIT", "content_base64 is not valid base64") from None
    else:
        try:
            data = edited_text_bytes(ctx.engine, ctx.archive, import_id, body.content,
                                     Actor(who.subject), ctx.settings)
        except AdminError as exc:
            raise ApiError(409, "ACTION_REFUSED", str(exc)) from None
        except ArchiveUnavailable:
            raise ApiError(503, "ARCHIVE_UNAVAILABLE", "the archive cannot be read now") \
                from None
    if len(data) > limit:
        raise ApiError(413, "TOO_LARGE", f"the message is over the limit of {limit} bytes")
    return data


@router.post("/imports/{import_id}/discard",
             summary="Close an import deliberately, its bytes kept (imports discard)")
def imports_discard(import_id: ImportId, body: Discard, request: Request,
                    who: ADMIN) -> dict:
    """A failed import the sender corrected and sent again, or one not for us: closed with
    the reason, audited; ``discarded`` false when it was already."""
    _known(request, import_id)
    try:
        changed = discard(state(request).ctx.engine, import_id, Actor(who.subject),
                          body.reason)
    except AdminError as exc:
        raise ApiError(409, "ACTION_REFUSED", str(exc)) from None
    return {"import": import_id, "discarded": changed}


@router.get("/imports/{import_id}/raw", response_class=Response,
            summary="The archived bytes of an import, as received (imports show --raw)")
def imports_raw(import_id: ImportId, request: Request, who: ADMIN,
                reason: Annotated[str | None, Query(max_length=1000, description="why it "
                                                    "is read (kept in the audit trail)")]
                = None) -> Response:
    """What was received, to see why it failed before fixing it: the CLI and the console
    show it, the API did not. Patient data: the read is audited under the admin's name
    before the bytes are returned. The charset the message was read in is a header
    (X-Dmp-Charset), the bytes are untouched."""
    ctx = state(request).ctx
    _known(request, import_id)
    try:
        raw = read_raw(ctx.engine, ctx.archive, import_id, Actor(who.subject), reason=reason,
                       settings=ctx.settings)
    except AdminError as exc:  # archived object missing or corrupt
        raise ApiError(500, "ARCHIVE_MISSING", str(exc)) from None
    except ArchiveUnavailable:
        raise ApiError(503, "ARCHIVE_UNAVAILABLE", "the archive cannot be read now") from None
    headers = {"X-Dmp-Charset": raw.charset} if raw.charset else None
    return Response(raw.data, media_type=RAW_TYPES.get(raw.format or "",
                                                       "application/octet-stream"),
                    headers=headers)


# HTTP status of a refused merge, by its code (anything else: 409)
_MERGE_STATUS = {"NOT_FOUND": 404, "REASON_REQUIRED": 400}


@router.post("/dossiers/merge", summary="Merge a dossier into another of the same person "
             "(dossier merge): identifiers, INS, entries move; the merged one stays as a "
             "closed pointer")
def dossiers_merge(body: Merge, request: Request, who: ADMIN) -> dict:
    """What `dmp-ingest dossier merge` does, for the console: the same checks, codes and
    counts (pipelines/dossier_merge.py); audited under the admin's name in both trails."""
    try:
        plan = merge_dossiers(state(request).ctx.engine, body.survivor, body.merged,
                              Actor(who.subject), body.reason, dry_run=body.dry_run)
    except MergeRefusedError as exc:
        raise ApiError(_MERGE_STATUS.get(exc.code, 409), exc.code, str(exc)) from None
    return plan.as_dict()
