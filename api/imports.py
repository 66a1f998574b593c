"""POST /imports: senders that push over HTTPS, the HTTP twin of the MLLP listener.

The body is the message or document as sent (HL7v2, CDA, PDF: the format is detected from the
bytes), gzip- or deflate-compressed (Content-Encoding) or as the file parts of a
multipart/form-data upload (api/upload.py); the source is the token's ``source`` claim.
The answer is 202 with the import id only once intake (pipelines/intake.py) has returned,
i.e. the bytes are synced in the archive and the ledger row committed: a sender that gets
202 may forget the message. If storing fails the answer is 503 and the sender sends again
(a byte-identical repeat is recorded as a duplicate, never processed twice).
"""

from __future__ import annotations

import asyncio
import logging
import re
import unicodedata
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from sqlalchemy import select
from starlette.requests import ClientDisconnect

from api.app import ApiError, requires, state
from api.upload import UploadError, decoded_body, refuse_stripped_line_breaks, uploaded_files
from dossiers.access import Principal
from dossiers.schema import imports as ledger
from pipelines.intake import Received, intake

log = logging.getLogger("dmp.api.imports")
router = APIRouter(tags=["imports"])
_UNSAFE = re.compile(r"[^\w.()+@ -]")
# Seconds a body may go without a byte before 408 (nginx's client_body_timeout is 60 s).
BODY_IDLE_SECONDS = 60.0
SENDER = Annotated[Principal, Depends(requires("sender"))]

_BINARY = {"schema": {"type": "string", "format": "binary"}}
# The types senders label their bodies with; any other (or none) is taken the same way: the
# format is detected from the bytes, the Content-Type only recorded.
_TYPES = ("application/hl7-v2", "x-application/hl7-v2+er7", "application/xml", "text/xml",
          "application/pdf", "application/octet-stream")
_BODY = {"content": {**{kind: _BINARY for kind in _TYPES},
                     "multipart/form-data": {"schema": {"type": "object", "properties": {
                         "file": {"type": "array", "items": {"type": "string",
                                                             "format": "binary"}}}}}},
         "required": True,
         "description": "An HL7v2 message (or batch), a CDA R2 document or a PDF, as is "
                        "(Content-Encoding gzip or deflate read), or several as the file "
                        "parts of a form. The format is detected from the bytes, whatever "
                        "the Content-Type says. Send files with `curl --data-binary @file` "
                        "or `curl -F file=@file`: `curl -d` drops line breaks."}
_FILE = {"type": "object", "properties": {
    "import_id": {"type": "integer"},
    "status": {"type": "string", "description": "ledger state: received, duplicate..."},
    "duplicate_of": {"type": ["integer", "null"],
                     "description": "the first import's id when already received"},
    "format": {"type": ["string", "null"], "enum": ["hl7v2", "cda", "pdf", "unknown", None]},
    "already_received": {"type": "boolean", "description": "the same bytes from this "
                         "source are held already (a retry): nothing is processed again"},
    "messages": {"type": "array", "description": "an HL7v2 batch: one per message",
                 "items": {"type": "object"}},
    "batch_problems": {"type": "array", "items": {"type": "string"}}}}
_ERROR = {"content": {"application/json": {"schema": {"type": "object", "properties": {
    "error": {"type": "string"}, "message": {"type": "string"}}}}}}
_RESPONSES: dict[int | str, dict] = {
    202: {"description": "Stored: archived and recorded in the ledger before this answer. "
                         "Several files (a form): every file's answer in ``files``.",
          "content": {"application/json": {"schema": {**_FILE, "properties": {
              **_FILE["properties"], "files": {"type": "array", "items": _FILE}}}}}},
    400: {"description": "EMPTY_BODY, EMPTY_FILE, BAD_ENCODING, BAD_MULTIPART, "
                         "NO_FILE_PART, LINE_BREAKS_STRIPPED", **_ERROR},
    401: {"description": "TOKEN_MISSING, TOKEN_EXPIRED, TOKEN_INVALID", **_ERROR},
    403: {"description": "WRONG_SCOPE, UNKNOWN_SOURCE, PEER_NOT_ALLOWED", **_ERROR},
    408: {"description": "BODY_TIMEOUT: the body stopped arriving; nothing stored",
          **_ERROR},
    413: {"description": "TOO_LARGE (decompressed size included): nothing stored", **_ERROR},
    415: {"description": "UNSUPPORTED_ENCODING (Content-Encoding other than gzip, "
                         "deflate)", **_ERROR},
    503: {"description": "STORE_UNAVAILABLE: nothing stored, send again after "
                         "Retry-After", **_ERROR}}


def clean_file_name(value: str | None) -> str | None:
    """The last component of a sender's X-File-Name, without control or path characters,
    at most 200 characters; None when nothing usable is left."""
    if not value:
        return None
    try:  # HTTP headers arrive as latin-1: a UTF-8 name is read back as UTF-8
        value = value.encode("latin-1").decode("utf-8")
    except UnicodeError:
        pass
    name = unicodedata.normalize("NFC", value).replace("\\", "/").rsplit("/", 1)[-1]
    name = _UNSAFE.sub("_", "".join(c for c in name if c.isprintable())).strip(" .")
    return name[:200] or None


async def _body(request: Request, limit: int) -> bytes:
    """The request body, refused (413) as soon as it is known to exceed ``limit``; 408 when
    no byte of it has come for ``BODY_IDLE_SECONDS`` (uvicorn has no such limit: a sender
    whose upload stalled, or a slow-loris, held a connection and its buffer for ever)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, "TOO_LARGE", f"the body is over the limit of {limit} bytes")
    chunks, size = [], 0
    stream = request.stream().__aiter__()
    while True:
        try:
            chunk = await asyncio.wait_for(stream.__anext__(), BODY_IDLE_SECONDS)
        except StopAsyncIteration:
            break
        except TimeoutError:
            log.warning("POST /imports: body stalled after %d bytes, %s s without data",
                        size, BODY_IDLE_SECONDS)
            raise ApiError(408, "BODY_TIMEOUT", f"no data of the body came for "
                           f"{BODY_IDLE_SECONDS} s; nothing was stored, send it again",
                           {"Connection": "close"}) from None
        except ClientDisconnect:  # the sender gave up: nothing stored, nobody to answer
            log.info("POST /imports: the sender left after %d bytes of the body", size)
            raise ApiError(400, "BODY_INCOMPLETE", "the connection closed before the end "
                           "of the body; nothing was stored") from None
        size += len(chunk)
        if size > limit:
            raise ApiError(413, "TOO_LARGE", f"the body is over the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _declared_source(request: Request, who: Principal, peer: str | None) -> str:
    """The token's source, if the settings declare it and allow this peer (403 otherwise)."""
    settings = state(request).ctx.settings
    declared = {s.id: s for s in settings.sources}
    source = declared.get(who.subject)
    if source is None:
        if settings.listener.accept_unknown_senders:
            return who.subject
        log.warning("POST /imports refused 403 UNKNOWN_SOURCE: peer %s", peer or "-")
        raise ApiError(403, "UNKNOWN_SOURCE", "this token's source is not a declared sender")
    if not source.allows_peer(peer):
        log.warning("POST /imports refused 403 PEER_NOT_ALLOWED: source %s, peer %s",
                    source.id, peer or "-")
        raise ApiError(403, "PEER_NOT_ALLOWED",
                       "this sender may not send from this address")
    return source.id


@router.post("/imports", status_code=202, openapi_extra={"requestBody": _BODY},
             responses=_RESPONSES,
             summary="Push an HL7v2 message, a CDA document or a PDF (sender token)")
async def post_import(request: Request, who: SENDER) -> JSONResponse:
    """202 with the import id once the bytes are durable (archive synced, ledger committed);
    503 if they could not be stored (send again later); 413 over the size limit."""
    api = state(request)
    peer = request.client.host if request.client else None
    source = _declared_source(request, who, peer)
    limit = api.ctx.settings.http.max_body
    data = await _body(request, limit)
    try:
        body = decoded_body(data, request.headers.get("content-encoding"), limit)
        refuse_stripped_line_breaks(body, request.headers.get("content-type"))
        files = uploaded_files(body, request.headers.get("content-type"))
    except UploadError as exc:
        raise ApiError(exc.status, exc.code, str(exc)) from None
    if not any(f.data.strip() for f in files):
        raise ApiError(400, "EMPTY_BODY", "the body is empty")
    named = request.headers.get("x-file-name")
    received = datetime.now(UTC)
    items = [Received(f.data, source, "http", peer=peer,
                      file_name=clean_file_name(f.file_name or named), received_at=received)
             for f in files]
    try:
        results = await run_in_threadpool(intake, api.ctx.engine, api.ctx.archive, items)
    except Exception as exc:  # archive or store down: nothing acknowledged
        log.error("HTTP intake from source %s failed (%s)", source, type(exc).__name__)
        raise ApiError(503, "STORE_UNAVAILABLE",
                       "the content could not be stored; send it again later",
                       {"Retry-After": "30"}) from None
    api.wake()
    answers = [await _answer_or_guess(api, result) for result in results]
    for answer in answers:
        log.info("import %s from source %s over HTTP: %s, %s (declared %s)",
                 answer["import_id"], source, answer["format"], answer["status"],
                 (request.headers.get("content-type") or "-")[:60])
    # several files (multipart): the first one's answer, and every file's in ``files``
    head = answers[0] if len(answers) == 1 else {**answers[0], "files": answers}
    return JSONResponse(head, status_code=202)


async def _answer_or_guess(api, result) -> dict:  # noqa: ANN001
    try:
        return await run_in_threadpool(_answer, api, result)
    except Exception as exc:  # stored and committed: 202 all the same, with what we know
        log.warning("import %s: its state could not be read back (%s)",
                    (result.batch_id or result.message_ids[0]), type(exc).__name__)
        repeat = bool(result.repeats) and len(result.message_ids) == 1
        return {"import_id": result.batch_id or result.message_ids[0],
                "status": "duplicate" if repeat else "received", "duplicate_of": None,
                "format": None, "already_received": repeat}


def _answer(api, result) -> dict:  # noqa: ANN001
    """The ids and states intake gave (a batch: its file row and one row per message).

    ``already_received``: the bytes were held already from this source (dedupe level 1), so
    a client retrying after a lost answer reads it with ``duplicate_of`` (the first import's
    id) instead of guessing from a status "duplicate", which a processed message repeating
    another's MSH-10 also ends in. A row is a repeat when the row it duplicates has the
    same sha256: exact even when a worker has processed it already. A batch is a repeat
    when all its messages are."""
    ids = ([result.batch_id] if result.batch_id is not None else []) + result.message_ids
    with api.ctx.engine.connect() as conn:
        rows = {r.id: r for r in conn.execute(
            select(ledger.c.id, ledger.c.status, ledger.c.duplicate_of, ledger.c.format,
                   ledger.c.sha256).where(ledger.c.id.in_(ids)))}
        firsts = [r.duplicate_of for r in rows.values() if r.duplicate_of is not None]
        held = dict(conn.execute(select(ledger.c.id, ledger.c.sha256)
                                 .where(ledger.c.id.in_(firsts))).all()) if firsts else {}

    def repeat(i: int) -> bool:
        return rows[i].duplicate_of is not None and \
            held.get(rows[i].duplicate_of) == rows[i].sha256

    head = rows[ids[0]]
    answer = {"import_id": head.id, "status": head.status, "duplicate_of": head.duplicate_of,
              "format": head.format,
              "already_received": all(repeat(i) for i in result.message_ids)
              if result.message_ids else False}
    if result.batch_id is not None:
        answer["messages"] = [{"import_id": i, "status": rows[i].status,
                               "duplicate_of": rows[i].duplicate_of,
                               "already_received": repeat(i)}
                              for i in result.message_ids]
        answer["batch_problems"] = result.batch_problems
    return answer
