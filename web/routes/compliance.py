"""Compliance: the document registry, the personnel, the checks of the qualification requirements
(current status with evidence, history), expiry warnings and backups.

Who may do what: the admin registers, reviews and withdraws documents and keeps the personnel
records; the auditor reads everything here and changes nothing (every write answers 403); operators
see only the expiry warnings (the board's banner), without personal names, because documents and
personnel files hold personal data they do not need at the console.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

import asyncpg
from fastapi import APIRouter, Depends, File, Form, HTTPException, Path, Query, Request, UploadFile
from fastapi.responses import FileResponse
from pydantic import Field

from compliance import backup, check, document, personnel
from compliance.settings import ComplianceSettings
from console import edit
from console.user import User
from web import auth
from web.routes.common import Admin, KuzetJSON, Reader, _Body, _pool, reply

router = APIRouter(prefix="/api", dependencies=[Depends(auth.require())])

COMPLIANCE_ROLES = ("admin", "auditor")
Viewer = Annotated[User, Depends(auth.require(*COMPLIANCE_ROLES))]
Id = Path(ge=1, le=2**63 - 1)  # metadata for a path id: `Annotated[int, Id]`
MAX_PERIOD_DAYS = 3 * 366


def _settings(request: Request) -> ComplianceSettings:
    return ComplianceSettings.load(request.app.state.settings)


def _today(request: Request) -> dt.date:
    return dt.datetime.now(ZoneInfo(_settings(request).timezone)).date()


def _invalid(field: str, message: str) -> edit.Invalid:
    """A 422 in the house's shape (web.errors: `errors` with the field, `detail` one English line)."""
    return edit.Invalid(f"{field}: {message}", field=field)


def _date(field: str, value: str | None) -> dt.date | None:
    if value is None or not value.strip():
        return None
    try:
        return dt.date.fromisoformat(value.strip())
    except ValueError:
        raise _invalid(field, "not a date (YYYY-MM-DD)") from None


def _int(field: str, value: str | None) -> int | None:
    if value is None or not value.strip():
        return None
    try:
        n = int(value)
    except ValueError:
        raise _invalid(field, "not a whole number") from None
    if not 1 <= n <= 2**63 - 1:
        raise _invalid(field, "out of range")
    return n


# --- documents -------------------------------------------------------------------------------

@router.get("/documents/kinds", tags=["compliance"], summary="Document kinds, their labels and requirement rows")
async def document_kinds(_u: Viewer) -> KuzetJSON:
    return reply([{"kind": k, "row": v.row, "label": v.label, "link": v.link, "detail": list(v.detail),
                   "choices": {a: list(b) for a, b in v.choices.items()}} for k, v in document.KINDS.items()])


@router.get("/documents", tags=["compliance"], summary="The document registry")
async def documents(request: Request, _u: Viewer, kind: Annotated[str | None, Query(max_length=60)] = None,
                    person_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
                    include_withdrawn: bool = False) -> KuzetJSON:
    return reply(await document.list_documents(_pool(request), kind=kind, person_id=person_id,
                                               include_withdrawn=include_withdrawn))


@router.post("/documents", tags=["compliance"], status_code=201,
             summary="Register a document with its file (multipart; PDF, JPEG or PNG, checked by content)")
async def register_document(
    request: Request, me: Admin, file: Annotated[UploadFile, File()],
    kind: Annotated[str, Form(max_length=60)],
    number: Annotated[str, Form(max_length=100)] = "", title: Annotated[str, Form(max_length=300)] = "",
    issuer: Annotated[str, Form(max_length=300)] = "", holder: Annotated[str, Form(max_length=300)] = "",
    holder_bin: Annotated[str, Form(max_length=12, pattern=r"^(\d{12})?$")] = "",
    issued_on: Annotated[str | None, Form(max_length=10)] = None,
    valid_until: Annotated[str | None, Form(max_length=10)] = None,
    registry_ref: Annotated[str, Form(max_length=200)] = "",
    detail: Annotated[str, Form(max_length=10_000)] = "{}",
    person_id: Annotated[str | None, Form(max_length=20)] = None,
    group_id: Annotated[str | None, Form(max_length=20)] = None,
    vehicle_id: Annotated[str | None, Form(max_length=20)] = None,
) -> KuzetJSON:
    s = _settings(request)
    try:
        extra = json.loads(detail or "{}")
    except json.JSONDecodeError:
        raise _invalid("detail", "not JSON") from None
    if not isinstance(extra, dict) or any(not isinstance(v, str | int | float | bool) for v in extra.values()):
        raise _invalid("detail", "must be a JSON object of plain values")
    content = await file.read(s.upload_max_bytes + 1)
    try:
        async with _pool(request).acquire() as conn:
            doc = await document.register(
                conn, request.app.state.settings.home, kind=kind, content=content, actor=me.username,
                max_bytes=s.upload_max_bytes, file_name=file.filename or "", number=number, title=title,
                issuer=issuer, holder=holder, holder_bin=holder_bin, issued_on=_date("issued_on", issued_on),
                valid_until=_date("valid_until", valid_until), registry_ref=registry_ref, detail=extra,
                person_id=_int("person_id", person_id), group_id=_int("group_id", group_id),
                vehicle_id=_int("vehicle_id", vehicle_id))
    except document.DocumentError as e:
        if e.field == "file" and "limit" in e.message:
            raise HTTPException(413, detail=f"{e.field}: {e.message}") from None
        raise _invalid(e.field, e.message) from None
    return reply(doc, 201)


async def _document(request: Request, doc_id: int) -> dict[str, Any]:
    doc = await document.get(_pool(request), doc_id)
    if doc is None:
        raise HTTPException(404, f"document {doc_id} does not exist")
    return doc


@router.get("/documents/{doc_id}", tags=["compliance"], summary="One registered document")
async def get_document(request: Request, doc_id: Annotated[int, Id], _u: Viewer) -> KuzetJSON:
    return reply(await _document(request, doc_id))


@router.get("/documents/{doc_id}/file", tags=["compliance"], summary="The document's file (checked against its SHA-256)",
            response_model=None)
async def document_file(request: Request, doc_id: Annotated[int, Id], _u: Viewer) -> FileResponse:
    doc = await _document(request, doc_id)
    path = document.file_path(request.app.state.settings.home, doc)
    try:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
    except FileNotFoundError:
        raise HTTPException(410, "the document's file is missing from the data directory") from None
    if digest != doc["file_sha256"]:
        raise HTTPException(409, "the stored file does not match its registered SHA-256")
    from compliance.filecheck import MEDIA_TYPES

    return FileResponse(path, media_type=MEDIA_TYPES[doc["file_type"]], filename=document.file_name(doc),
                        headers={"cache-control": "no-store"})


class ReviewIn(_Body):
    status: Literal["accepted", "rejected"]
    note: str = Field("", max_length=2000)


@router.post("/documents/{doc_id}/review", tags=["compliance"],
             summary="Accept or reject a document (by someone other than who registered it)")
async def review_document(request: Request, doc_id: Annotated[int, Id], body: ReviewIn, me: Admin) -> KuzetJSON:
    async with _pool(request).acquire() as conn:
        try:
            return reply(await document.review(conn, doc_id, status=body.status, actor=me.username, note=body.note))
        except LookupError:
            raise HTTPException(404, f"document {doc_id} does not exist") from None
        except document.ReviewConflict as e:
            raise HTTPException(409, str(e)) from None


class WithdrawIn(_Body):
    reason: str = Field("", max_length=2000)


@router.post("/documents/{doc_id}/withdraw", tags=["compliance"],
             summary="Withdraw a document (kept for the history, no longer counted)")
async def withdraw_document(request: Request, doc_id: Annotated[int, Id], body: WithdrawIn, me: Admin) -> KuzetJSON:
    async with _pool(request).acquire() as conn:
        try:
            return reply(await document.withdraw(conn, doc_id, actor=me.username, reason=body.reason))
        except LookupError:
            raise HTTPException(404, f"document {doc_id} does not exist") from None
        except document.ReviewConflict as e:
            raise HTTPException(409, str(e)) from None


# --- personnel -------------------------------------------------------------------------------

class PersonIn(_Body):
    full_name: str = Field(min_length=1, max_length=300)
    position: Literal["head", "guard"]
    birth_date: dt.date
    iin: str = Field("", pattern=r"^(\d{12})?$")
    job_title: str = Field("", max_length=200)
    citizenship: str = Field("KZ", pattern=r"^[A-Z]{2}$")
    hired_on: dt.date | None = None
    dismissed_on: dt.date | None = None
    qualification: Literal["", "legal_higher_education", "command_experience"] = ""
    staff_id: int | None = Field(None, ge=1, le=2**63 - 1)
    note: str = Field("", max_length=2000)


class PersonPatch(_Body):
    full_name: str | None = Field(None, min_length=1, max_length=300)
    position: Literal["head", "guard"] | None = None
    birth_date: dt.date | None = None
    iin: str | None = Field(None, pattern=r"^(\d{12})?$")
    job_title: str | None = Field(None, max_length=200)
    citizenship: str | None = Field(None, pattern=r"^[A-Z]{2}$")
    hired_on: dt.date | None = None
    dismissed_on: dt.date | None = None
    qualification: Literal["", "legal_higher_education", "command_experience"] | None = None
    staff_id: int | None = Field(None, ge=1, le=2**63 - 1)
    note: str | None = Field(None, max_length=2000)


def _person_error(e: personnel.PersonError) -> edit.Invalid:
    return _invalid(e.field, e.message)


@router.get("/personnel", tags=["compliance"], summary="Heads and guards with their eligibility today")
async def list_personnel(request: Request, _u: Viewer, include_dismissed: bool = False) -> KuzetJSON:
    pool = _pool(request)
    people = {p["id"]: p for p in await personnel.list_personnel(pool, include_dismissed=include_dismissed)}
    elig = await personnel.eligibility_all(pool, as_of=_today(request), settings=_settings(request),
                                           include_dismissed=include_dismissed)
    return reply([{**people[e["person_id"]], "eligibility": e} for e in elig])


@router.post("/personnel", tags=["compliance"], status_code=201, summary="Add a head or a guard")
async def create_person(request: Request, body: PersonIn, me: Admin) -> KuzetJSON:
    async with _pool(request).acquire() as conn:
        try:
            return reply(await personnel.create(conn, body.model_dump(), actor=me.username), 201)
        except personnel.PersonError as e:
            raise _person_error(e) from None


@router.get("/personnel/{person_id}", tags=["compliance"],
            summary="One person: record, documents, external results and eligibility")
async def get_person(request: Request, person_id: Annotated[int, Id], _u: Viewer,
                     on: Annotated[dt.date | None, Query(description="eligibility on this day")] = None) -> KuzetJSON:
    pool = _pool(request)
    p = await personnel.get(pool, person_id)
    if p is None:
        raise HTTPException(404, f"person {person_id} does not exist")
    return reply({**p, "documents": await document.list_documents(pool, person_id=person_id, include_withdrawn=True),
                  "screenings": await personnel.screenings(pool, person_id),
                  "eligibility": await personnel.eligibility(pool, person_id, as_of=on or _today(request),
                                                             settings=_settings(request))})


@router.patch("/personnel/{person_id}", tags=["compliance"], summary="Change a person's record")
async def update_person(request: Request, person_id: Annotated[int, Id], body: PersonPatch, me: Admin) -> KuzetJSON:
    async with _pool(request).acquire() as conn:
        try:
            return reply(await personnel.update(conn, person_id, body.model_dump(exclude_unset=True),
                                                actor=me.username))
        except LookupError:
            raise HTTPException(404, f"person {person_id} does not exist") from None
        except personnel.PersonError as e:
            raise _person_error(e) from None


@router.delete("/personnel/{person_id}", tags=["compliance"],
               summary="Delete a person entered by mistake (one with documents or results is dismissed instead)")
async def delete_person(request: Request, person_id: Annotated[int, Id], me: Admin) -> KuzetJSON:
    from console import audit

    async with _pool(request).acquire() as conn, conn.transaction():
        try:
            done = await conn.fetchval("DELETE FROM compliance_personnel WHERE id = $1 AND NOT EXISTS"
                                       " (SELECT 1 FROM compliance_screenings WHERE person_id = $1) RETURNING id",
                                       person_id)
        except asyncpg.ForeignKeyViolationError:
            raise HTTPException(409, "the person has registered documents: set dismissed_on instead") from None
        if done is None:
            if await conn.fetchval("SELECT 1 FROM compliance_personnel WHERE id = $1", person_id):
                raise HTTPException(409, "the person has recorded results: set dismissed_on instead")
            raise HTTPException(404, f"person {person_id} does not exist")
        await audit.append(conn, [audit.Entry(me.username, "person.deleted", "person", str(person_id))])
    return reply({"deleted": person_id})


class ScreeningIn(_Body):
    kind: Literal["psychiatric", "narcology", "criminal_record", "liability_release", "misdemeanour",
                  "admin_offence", "negative_dismissal", "labour_termination"]
    result: Literal["clear", "hit"]
    obtained_on: dt.date
    event_date: dt.date | None = None
    blocks_until: dt.date | None = None
    article: str = Field("", max_length=20)
    source: str = Field("", max_length=200)
    reference: str = Field("", max_length=200)
    document_id: int | None = Field(None, ge=1, le=2**63 - 1)


@router.post("/personnel/{person_id}/screenings", tags=["compliance"], status_code=201,
             summary="Record an external result (register extract, certificate) with the date it was obtained")
async def add_screening(request: Request, person_id: Annotated[int, Id], body: ScreeningIn, me: Admin) -> KuzetJSON:
    async with _pool(request).acquire() as conn:
        try:
            return reply(await personnel.add_screening(conn, person_id, actor=me.username, **body.model_dump()), 201)
        except LookupError:
            raise HTTPException(404, f"person {person_id} does not exist") from None
        except personnel.PersonError as e:
            raise _person_error(e) from None


# --- checks, warnings, backups ---------------------------------------------------------------

def _period(request: Request, period_from: dt.date | None, period_to: dt.date | None) -> tuple[dt.date, dt.date]:
    to = period_to or _today(request)
    start = period_from or to - dt.timedelta(days=29)
    if start > to:
        raise _invalid("from", "is after to")
    if (to - start).days > MAX_PERIOD_DAYS:
        raise _invalid("from", f"the period is longer than {MAX_PERIOD_DAYS} days")
    return start, to


@router.get("/compliance/checks", tags=["compliance"],
            summary="Every requirement row's status with its evidence over a period (default: the last 30 days)")
async def checks(request: Request, me: Viewer,
                 period_from: Annotated[dt.date | None, Query(alias="from")] = None,
                 period_to: Annotated[dt.date | None, Query(alias="to")] = None) -> KuzetJSON:
    start, to = _period(request, period_from, period_to)
    async with _pool(request).acquire() as conn:
        results = await check.run_all(conn, period_from=start, period_to=to, settings=request.app.state.settings)
        run_id = await check.store_run(conn, results, actor=me.username)  # the system records it, for me
    return reply({"period_from": start, "period_to": to, "overall": check.overall(results), "run_id": run_id,
                  "results": [r.to_dict() for r in results]})


@router.get("/compliance/checks/history", tags=["compliance"], summary="Earlier runs of the checks, newest first")
async def checks_history(request: Request, _u: Viewer, limit: Annotated[int, Query(ge=1, le=500)] = 50) -> KuzetJSON:
    return reply(await check.history(_pool(request), limit=limit))


@router.get("/compliance/checks/runs/{run_id}", tags=["compliance"], summary="One earlier run with its evidence")
async def checks_run(request: Request, run_id: Annotated[int, Id], _u: Viewer) -> KuzetJSON:
    run = await check.get_run(_pool(request), run_id)
    if run is None:
        raise HTTPException(404, f"run {run_id} does not exist")
    return reply(run)


@router.get("/compliance/warnings", tags=["compliance"],
            summary="Documents and personnel evidence expiring soon or expired (the board's banner)")
async def warnings(request: Request, me: Reader) -> KuzetJSON:
    s = _settings(request)
    today = _today(request)
    pool = _pool(request)
    docs = await document.warnings(pool, today=today, warn_days=s.expiry_warn_days)
    people = [e for e in await personnel.eligibility_all(pool, as_of=today, settings=s)
              if e["warnings"] or not e["eligible"]]
    private = me.role not in COMPLIANCE_ROLES
    if private:  # operators: what lapses, not whose
        docs = [{**w, "person": None} for w in docs]
    return reply({"today": today, "warn_days": s.expiry_warn_days, "documents": docs,
                  "personnel": [] if private else [
                      {"person_id": e["person_id"], "full_name": e["full_name"], "eligible": e["eligible"],
                       "problems": e["problems"], "warnings": e["warnings"]} for e in people],
                  "personnel_count": len(people)})


@router.get("/compliance/backups", tags=["compliance"], summary="Backups made and whether each restored")
async def backups(request: Request, _u: Viewer, limit: Annotated[int, Query(ge=1, le=500)] = 100) -> KuzetJSON:
    return reply(await backup.list_backups(_pool(request), limit=limit))
