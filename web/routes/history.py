"""History beyond alarms and signals: the audit trail, shift figures, the map's data, and the
/history page (search, an old alarm's timeline, the shift report to print or export)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.responses import FileResponse

from console import history, shiftstats
from console.user import User
from web import auth
from web.routes.alarms import CSV_MAX, _aware, _check_limit, _rows
from web.routes.common import KuzetJSON, Reader, _pool, reply

router = APIRouter(dependencies=[Depends(auth.require())])
STATIC = Path(__file__).resolve().parent.parent / "static"

Auditing = Annotated[User, Depends(auth.require("admin", "auditor"))]


@router.get("/history", include_in_schema=False)
async def history_page(_u: Reader) -> FileResponse:
    return FileResponse(STATIC / "history.html", media_type="text/html; charset=utf-8",
                        headers={"cache-control": "no-store"})


@router.get("/api/audit", tags=["history"], response_model=None,
            summary="The audit trail, newest first (admin, auditor); filter, page, CSV")
async def audit_trail(
    request: Request, _u: Auditing, limit: Annotated[int, Query(ge=1, le=CSV_MAX)] = 200,
    actor: Annotated[str | None, Query(max_length=150)] = None,
    action: Annotated[str | None, Query(max_length=80, description="prefix, e.g. alarm.")] = None,
    entity: Annotated[str | None, Query(max_length=80)] = None,
    entity_id: Annotated[str | None, Query(max_length=80)] = None,
    since: Annotated[datetime | None, Query(alias="from")] = None,
    until: Annotated[datetime | None, Query(alias="to")] = None,
    before: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    format: Literal["json", "csv"] = "json",
) -> Response:
    since, until = _aware(since, "from"), _aware(until, "to")
    _check_limit(limit, format)
    page = await history.audit_entries(_pool(request), history.AuditFilter(
        actor=actor, action=action, entity=entity, entity_id=entity_id, since=since, until=until),
        before=before, limit=limit)
    return _rows(page.rows, page.next_before, format, history.AUDIT_CSV, "audit")


def _shift_settings(request: Request) -> tuple[str, tuple[str, ...]]:
    s = request.app.state.settings
    return s.timezone, tuple(s.shifts)


# Under /api/shifts/ but not /api/shifts itself: that list is dispatch's (the groups' duty shifts).
# This router is registered before dispatch's, so /api/shifts/current and /report are ours.
@router.get("/api/shifts/current", tags=["shifts"], summary="The post's shift settings and the current shift")
async def shifts(request: Request, _u: Reader) -> KuzetJSON:
    tz, specs = _shift_settings(request)
    now = shiftstats.shift_at(datetime.now(UTC), tz, specs)
    return reply({"timezone": tz, "shifts": list(specs), "current": {"name": now.name, "from": now.start,
                                                                      "to": now.end}})


@router.get("/api/shifts/report", tags=["shifts"], response_model=None,
            summary="Shift figures for an interval (from, to) or one shift (day, shift); CSV")
async def shift_report(
    request: Request, _u: Reader,
    since: Annotated[datetime | None, Query(alias="from")] = None,
    until: Annotated[datetime | None, Query(alias="to")] = None,
    day: Annotated[date | None, Query(description="a shift starting on this day (local)")] = None,
    shift: Annotated[int, Query(ge=0, le=23, description="which shift of the day, 0-based")] = 0,
    format: Literal["json", "csv"] = "json",
) -> Response:
    tz, specs = _shift_settings(request)
    since, until = _aware(since, "from"), _aware(until, "to")
    name = ""
    if day is not None:
        try:
            s = shiftstats.shift_on(day, shift, tz, specs)
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None
        since, until, name = s.start, s.end, s.name
    elif since is None and until is None:  # the current shift so far
        s = shiftstats.shift_at(datetime.now(UTC), tz, specs)
        since, until, name = s.start, s.end, s.name
    if since is None or until is None:
        raise HTTPException(422, "from: give both from and to (or day and shift)")
    if until <= since:
        raise HTTPException(422, "to: must be after from")
    if until - since > timedelta(days=93):
        raise HTTPException(422, "to: at most 93 days per report")
    rep = await shiftstats.report(_pool(request), since, until)
    rep["shift"] = name
    if format == "csv":
        return _rows(shiftstats.report_rows(rep), None, "csv", shiftstats.REPORT_CSV, "shift")
    return reply(rep)


@router.get("/api/map", tags=["map"], summary="What the board's map needs: the tile URL (if any) and the objects")
async def map_data(request: Request, _u: Reader) -> KuzetJSON:
    rows = await _pool(request).fetch(
        "SELECT o.id, o.name, o.address, o.latitude, o.longitude,"
        " (SELECT min(priority) FROM alarms al WHERE al.object_id = o.id AND al.state <> 'closed') AS open_priority"
        " FROM guarded_objects o WHERE o.latitude IS NOT NULL AND o.longitude IS NOT NULL ORDER BY o.id")
    objects: list[dict[str, Any]] = [dict(r) for r in rows]
    # response groups come from dispatch's own route, when this post runs it
    groups = any(getattr(r, "path", "") == "/api/groups" for r in request.app.routes)
    return reply({"tiles": request.app.state.settings.map_tiles, "objects": objects,
                  "groups_url": "/api/groups" if groups else None})
