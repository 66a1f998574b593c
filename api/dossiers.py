"""The dossier endpoints: reads for professionals, the patient and the patient's legal
representatives, the patient's choices, break-glass, withdrawal, professionals' registration,
legal representatives' declaration (admin).

Each handler is one call into dossiers/access.py, which applies the DMP's rules and writes
the audit trail in the same transaction; its AccessDenied / NotFound / InvalidRequest become
403 / 404 / 400 (api/app.py). Handlers are plain ``def``: FastAPI runs them in its thread
pool, so the event loop (and the MLLP listener beside it) never waits on the store.
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from api.app import MAX_ID, PATIENT_REF, ApiError, requires, state
from dossiers import access
from dossiers.access import Principal
from dossiers.fhir.decimals import bundle_json
from pipelines.archive import ArchiveError, ArchiveMissing

log = logging.getLogger("dmp.api.dossiers")
router = APIRouter(tags=["dossiers"])

READER = Annotated[Principal, Depends(requires("professional", "patient", "representative"))]
PATIENT = Annotated[Principal, Depends(requires("patient"))]
PATIENT_SIDE = Annotated[Principal, Depends(requires("patient", "representative"))]
PROFESSIONAL = Annotated[Principal, Depends(requires("professional"))]
ADMIN = Annotated[Principal, Depends(requires("admin"))]
PATIENT_OR_ADMIN = Annotated[Principal, Depends(requires("patient", "admin"))]
PATIENT_SIDE_OR_ADMIN = Annotated[Principal, Depends(requires("patient", "representative",
                                                              "admin"))]
EntryId = Annotated[int, Path(ge=1, le=MAX_ID, description="an entry (document) id")]
PatientRef = Annotated[str, Path(pattern=PATIENT_REF,
                                 description="INS (15 characters) or dossier id")]


class Rpps(BaseModel):
    rpps: str = Field(description="the professional's RPPS number (11 digits)")


class Grant(Rpps):
    valid_until: str | None = Field(None, description="YYYY-MM-DD, first day the "
                                    "authorisation no longer holds; null: until revoked")


class Treating(BaseModel):
    rpps: str | None = Field(description="RPPS of the médecin traitant; null to clear")


class Reason(BaseModel):
    reason: str = Field(description="why (kept in the audit trail the patient reads)")


class Opposition(BaseModel):
    opposed: bool = Field(description="true: the dossier is no longer fed; false: it is again")


class EmergencyOpposition(BaseModel):
    break_glass: bool | None = Field(None, description="true: the patient opposes break-glass "
                                     "access; false: no longer; null: unchanged")
    regulation: bool | None = Field(None, description="the same for the SAMU-Centre 15 "
                                    "regulating doctor's access")
    reason: str | None = Field(None, description="an admin: the patient's request (kept in "
                               "the audit trail)")


class Representative(BaseModel):
    account: str = Field(description="the representative's account id (what their token "
                         "names; never a NIR nor a name)")
    family: str
    given: str | None = None
    quality: str = Field(description="parent, tuteur or mandataire")
    valid_from: str | None = Field(None, description="YYYY-MM-DD, first day it holds "
                                   "(default today)")
    valid_until: str | None = Field(None, description="YYYY-MM-DD, first day it no longer "
                                    "holds (a minor: the 18th birthday); null: until revoked")


class Professional(BaseModel):
    rpps: str
    family: str
    given: str | None = None
    role: str = Field(description="médecin, infirmier, biologiste...")


def _engine(request: Request):  # noqa: ANN202
    return state(request).ctx.engine


@router.get("/dossiers/{patient}", summary="A dossier: identity, access basis, counts")
def get_dossier(patient: PatientRef, request: Request, who: READER) -> dict:
    return access.read_dossier(_engine(request), who, patient)


@router.get("/dossiers/{patient}/entries", summary="The entries the caller may see")
def get_entries(patient: PatientRef, request: Request, who: READER,
                type: str | None = None, code: str | None = None,  # noqa: A002
                date_from: str | None = Query(None, alias="from",
                                              description="YYYY, YYYY-MM or YYYY-MM-DD"),
                date_to: str | None = Query(None, alias="to"),
                limit: int = Query(500, ge=1, le=5000),
                offset: int = Query(0, ge=0, le=MAX_ID)) -> dict:
    return access.read_entries(_engine(request), who, patient, type=type, code=code,
                               date_from=date_from, date_to=date_to, limit=limit,
                               offset=offset)


@router.get("/dossiers/{patient}/audit",
            summary="Who read or changed the dossier, newest first (patient, legal "
            "representative)")
def get_audit(patient: PatientRef, request: Request, who: PATIENT_SIDE,
              limit: int = Query(1000, ge=1, le=10000),
              offset: int = Query(0, ge=0, le=MAX_ID),
              before: int | None = Query(None, ge=1, le=MAX_ID,
                                         description="only events older than this seq: "
                                         "the previous answer's next_before")) -> dict:
    """The dossier's access traces, newest first (the first page is the latest; ``seq``
    numbers the events in the order they happened), a page at a time: pass the answer's
    ``next_before`` as ``before`` for the next page (each read of the trail adds an event
    on top, which shifts an ``offset``). ``offset`` is bounded as ids are: a larger one
    reached the database's OFFSET and came back as a 500."""
    return access.read_audit(_engine(request), who, patient, limit=limit, offset=offset,
                             before=before)


@router.get("/dossiers/{patient}/fhir", summary="The dossier as a FHIR R4 Bundle",
            response_class=JSONResponse)
def get_fhir(patient: PatientRef, request: Request, who: READER) -> Response:
    bundle = access.export_fhir(_engine(request), who, patient,
                                base_url=str(request.base_url).rstrip("/"),
                                read_file=state(request).ctx.archive.get)
    # JSONResponse's own settings (strict, compact), with the senders' decimal digits kept
    return Response(bundle_json(bundle, separators=(",", ":")),
                    media_type="application/fhir+json")


@router.get("/documents/{entry_id}", summary="A document's original file",
            response_class=Response,
            responses={200: {"content": {"application/pdf": {}, "text/xml": {}}}})
def get_document(entry_id: EntryId, request: Request,
                 who: READER) -> Response:
    ctx = state(request).ctx
    found = access.read_document(ctx.engine, who, entry_id)
    try:
        data = ctx.archive.get(found["sha256"])
    except ArchiveMissing:
        log.error("document %s: archived object missing", entry_id)
        raise ApiError(500, "ARCHIVE_MISSING", "the document's file is missing") from None
    except ArchiveError as exc:
        log.error("document %s: archive read failed (%s)", entry_id, type(exc).__name__)
        raise ApiError(503, "ARCHIVE_UNAVAILABLE", "the archive cannot be read now") from None
    return Response(data, media_type=found["media_type"], headers={
        "Content-Disposition": f'attachment; filename="{found["file_name"]}"',
        "X-Content-Type-Options": "nosniff"})


@router.post("/documents/{entry_id}/mask", summary="Mask a document from professionals "
             "(patient, or a minor's legal representative)")
def mask(entry_id: EntryId, request: Request, who: PATIENT_SIDE) -> dict:
    return access.set_mask(_engine(request), who, entry_id, True)


@router.post("/documents/{entry_id}/unmask", summary="Unmask a document (patient)")
def unmask(entry_id: EntryId, request: Request, who: PATIENT) -> dict:
    return access.set_mask(_engine(request), who, entry_id, False)


@router.post("/documents/{entry_id}/withdraw", summary="Withdraw a document (its author)")
def withdraw(entry_id: EntryId, body: Reason, request: Request,
             who: PROFESSIONAL) -> dict:
    return access.withdraw(_engine(request), who, entry_id, body.reason)


@router.post("/dossiers/{patient}/authorizations", status_code=201,
             summary="Authorise a professional to read the dossier (patient, or a minor's "
             "legal representative)")
def grant(patient: PatientRef, body: Grant, request: Request,
          who: PATIENT_SIDE) -> dict:
    return access.grant(_engine(request), who, patient, body.rpps, body.valid_until)


@router.get("/dossiers/{patient}/authorizations",
            summary="The professionals authorised, with each authorisation's end, revoked and "
            "ended ones included (patient, or admin)")
def authorizations(patient: PatientRef, request: Request, who: PATIENT_SIDE_OR_ADMIN) -> dict:
    return access.list_authorizations(_engine(request), who, patient)


@router.delete("/dossiers/{patient}/authorizations/{rpps}",
               summary="Revoke a professional's authorisation (patient, or a minor's legal "
               "representative: those representatives granted)")
def revoke(patient: PatientRef, rpps: str, request: Request,
           who: PATIENT_SIDE) -> dict:
    return access.revoke(_engine(request), who, patient, rpps)


@router.put("/dossiers/{patient}/treating-doctor",
            summary="Name or clear the médecin traitant (patient or admin)")
def treating(patient: PatientRef, body: Treating, request: Request,
             who: PATIENT_OR_ADMIN) -> dict:
    return access.set_treating(_engine(request), who, patient, body.rpps)


@router.put("/dossiers/{patient}/opposition",
            summary="Oppose (or stop opposing) the feeding of the dossier (patient)")
def opposition(patient: PatientRef, body: Opposition, request: Request,
               who: PATIENT) -> dict:
    return access.set_opposition(_engine(request), who, patient, body.opposed)


@router.put("/dossiers/{patient}/break-glass-opposition",
            summary="Oppose (or stop opposing) break-glass and SAMU regulation access "
            "(patient, or admin on the patient's request)")
def emergency_opposition(patient: PatientRef, body: EmergencyOpposition, request: Request,
                         who: PATIENT_OR_ADMIN) -> dict:
    return access.set_emergency_opposition(_engine(request), who, patient,
                                           break_glass=body.break_glass,
                                           regulation=body.regulation, reason=body.reason)


@router.post("/dossiers/{patient}/break-glass", status_code=201,
             summary="Emergency access with a reason, time-limited and traced (professional)")
def break_glass(patient: PatientRef, body: Reason, request: Request,
                who: PROFESSIONAL) -> dict:
    return access.open_break_glass(_engine(request), who, patient, body.reason)


@router.post("/professionals", status_code=201, tags=["admin"],
             summary="Register (or update) a professional: RPPS, name, role (admin)")
def register(body: Professional, request: Request, who: ADMIN) -> dict:
    return access.register_professional(_engine(request), who, body.rpps, body.family,
                                        body.given, body.role)


@router.get("/dossiers/{patient}/representatives", tags=["admin"],
            summary="The legal representatives declared on a dossier, ended ones included "
            "(admin)")
def representatives(patient: PatientRef, request: Request, who: ADMIN) -> dict:
    return access.list_representatives(_engine(request), who, patient)


@router.post("/dossiers/{patient}/representatives", status_code=201, tags=["admin"],
             summary="Declare a legal representative: parent, guardian (admin)")
def declare_representative(patient: PatientRef, body: Representative, request: Request,
                           who: ADMIN) -> dict:
    return access.declare_representative(
        _engine(request), who, patient, subject=body.account, family=body.family,
        given=body.given, quality=body.quality, valid_from=body.valid_from,
        valid_until=body.valid_until)


@router.delete("/dossiers/{patient}/representatives/{account}", tags=["admin"],
               summary="Revoke a legal representative, with a reason (admin)")
def revoke_representative(patient: PatientRef, account: str, body: Reason, request: Request,
                          who: ADMIN) -> dict:
    return access.revoke_representative(_engine(request), who, patient, account, body.reason)
