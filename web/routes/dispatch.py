"""Dispatch: response groups, vehicles, staff, duty shifts (admin); sending groups to alarms and
recalling them (operators); the crews' steps and positions (crew phones); response records.

Who may do what here: admin manages groups/vehicles/staff/shifts/settings; operator and admin
dispatch and recall (and may record a step a crew reported by radio); a crew member moves only
their own group's assignments and reports their position; the auditor reads. Errors: 404 no such
thing, 409 not possible now (group busy, step out of order, overlapping shift, staff not eligible),
403 another group's assignment, 422 a bad field.

Shift eligibility: routes that put staff on a shift call `request.app.state.shift_eligibility`
when set — async (conn, staff_id, starts_at, ends_at) -> reason or None — so compliance can refuse
an ineligible guard without dispatch importing compliance.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import Response
from pydantic import AwareDatetime, Field

from console.alarm import Actor
from console.user import User
from dispatch import assignment, group, position, records, shift, staff, vehicle
from dispatch import settings as dsettings
from dispatch.errors import Conflict, DispatchError, Forbidden, Invalid, NotFound
from web import auth
from web.routes.common import Acting, Admin, AlarmId, Anyone, KuzetJSON, ObjectId, Reader, _Body, _pool, reply

router = APIRouter(prefix="/api", dependencies=[Depends(auth.require())])

Id = Annotated[int, Path(ge=1, le=2**63 - 1)]
Crew = Annotated[User, Depends(auth.require("crew"))]
CREW_OR_ACTING = ("crew", *auth.ACT_ROLES)
CrewOrActing = Annotated[User, Depends(auth.require(*CREW_OR_ACTING))]
Outcome = Literal["real-alarm", "false-alarm", "technical-fault", "test", "owner-cancelled", "other"]


def actor(u: User) -> Actor:
    return Actor(u.id, u.username)


@contextmanager
def answers() -> Iterator[None]:
    """Dispatch's refusals as HTTP answers."""
    try:
        yield
    except NotFound as exc:
        raise HTTPException(404, str(exc)) from None
    except Forbidden as exc:
        raise HTTPException(403, str(exc)) from None
    except Conflict as exc:
        raise HTTPException(409, str(exc)) from None
    except Invalid as exc:
        raise HTTPException(422, str(exc)) from None
    except DispatchError as exc:
        raise HTTPException(409, str(exc)) from None


def _eligibility(request: Request) -> shift.Eligibility | None:
    check: shift.Eligibility | None = getattr(request.app.state, "shift_eligibility", None)
    return check


# -- bodies ------------------------------------------------------------------------------------------

Lat = Annotated[float, Field(ge=-90, le=90)]
Lon = Annotated[float, Field(ge=-180, le=180)]


class GroupIn(_Body):
    name: str = Field(min_length=1, max_length=100)
    call_sign: str = Field("", max_length=100)
    base_address: str = Field("", max_length=500)
    latitude: Lat | None = None
    longitude: Lon | None = None
    order_number: str = Field("", max_length=100, description="number of the order that formed the group")
    order_date: dt.date | None = Field(None, description="date of that order")


class GroupPatch(_Body):
    name: str | None = Field(None, min_length=1, max_length=100)
    call_sign: str | None = Field(None, max_length=100)
    base_address: str | None = Field(None, max_length=500)
    latitude: Lat | None = None
    longitude: Lon | None = None
    order_number: str | None = Field(None, max_length=100)
    order_date: dt.date | None = None
    active: bool | None = None


class VehicleIn(_Body):
    plate: str = Field(min_length=1, max_length=20)
    model: str = Field("", max_length=100)
    registration_certificate: str = Field("", max_length=50, description="state registration certificate number")
    ownership: Literal["owned", "leased"] = "owned"
    group_id: int | None = Field(None, ge=1, le=2**63 - 1)


class VehiclePatch(_Body):
    plate: str | None = Field(None, min_length=1, max_length=20)
    model: str | None = Field(None, max_length=100)
    registration_certificate: str | None = Field(None, max_length=50)
    ownership: Literal["owned", "leased"] | None = None
    group_id: int | None = Field(None, ge=1, le=2**63 - 1)
    active: bool | None = None


class StaffIn(_Body):
    full_name: str = Field(min_length=1, max_length=200)
    role: Literal["senior", "driver", "guard"] = "guard"
    group_id: int | None = Field(None, ge=1, le=2**63 - 1)
    user_id: int | None = Field(None, ge=1, le=2**63 - 1, description="the crew user account for the phone view")
    phone: str = Field("", max_length=50, pattern=r"^[0-9+()\-\s]*$")


class StaffPatch(_Body):
    full_name: str | None = Field(None, min_length=1, max_length=200)
    role: Literal["senior", "driver", "guard"] | None = None
    group_id: int | None = Field(None, ge=1, le=2**63 - 1)
    user_id: int | None = Field(None, ge=1, le=2**63 - 1)
    phone: str | None = Field(None, max_length=50, pattern=r"^[0-9+()\-\s]*$")
    active: bool | None = None


class ShiftIn(_Body):
    group_id: int = Field(ge=1, le=2**63 - 1)
    vehicle_id: int | None = Field(None, ge=1, le=2**63 - 1)
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    staff_ids: list[Annotated[int, Field(ge=1, le=2**63 - 1)]] = Field(default_factory=list, max_length=20)
    note: str = Field("", max_length=500)


class ShiftPatch(_Body):
    vehicle_id: int | None = Field(None, ge=1, le=2**63 - 1)
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None
    staff_ids: list[Annotated[int, Field(ge=1, le=2**63 - 1)]] | None = Field(None, max_length=20)
    note: str | None = Field(None, max_length=500)


class DispatchIn(_Body):
    group_id: int = Field(ge=1, le=2**63 - 1)


class StatusIn(_Body):
    status: Literal["accepted", "en-route", "on-site", "finished"]
    outcome: Outcome | None = Field(None, description="required with finished")
    report: str = Field("", max_length=2000)
    request_id: str | None = Field(None, max_length=100, description="the phone's id for this step (logged)")


class RecallIn(_Body):
    reason: str = Field(min_length=1, max_length=500)


class PositionIn(_Body):
    lat: Lat
    lon: Lon
    accuracy: float | None = Field(None, ge=0, le=100_000, description="metres")


class SettingsPatch(_Body):
    accept_timeout: int | None = Field(None, ge=1, le=86400)
    response_time: int | None = Field(None, ge=1, le=86400)
    average_speed_kmh: float | None = Field(None, gt=0, le=300)
    position_fresh: int | None = Field(None, ge=1, le=86400)
    returning_time: int | None = Field(None, ge=0, le=86400)
    min_groups_on_duty: int | None = Field(None, ge=0, le=100)


class ResponseTimeIn(_Body):
    response_time: int | None = Field(ge=1, le=86400, description="seconds from dispatch to on site; null: default")


def _changes(body: _Body) -> dict[str, Any]:
    """The fields the client sent (null included: it clears an optional field)."""
    return body.model_dump(exclude_unset=True)


# -- groups ------------------------------------------------------------------------------------------


@router.get("/groups", tags=["dispatch"], summary="Every group with its live state, crew, vehicles, position")
async def list_groups(request: Request, _u: Reader, all: bool = False) -> KuzetJSON:
    return reply(await group.list_groups(_pool(request), include_inactive=all))


@router.post("/groups", tags=["dispatch"], status_code=201, summary="Create a response group (admin)")
async def create_group(request: Request, body: GroupIn, me: Admin) -> KuzetJSON:
    async with _pool(request).acquire() as conn:
        with answers():
            gid = await group.create(conn, actor(me), **body.model_dump())
            return reply(await group.get(conn, gid), 201)


@router.get("/groups/{group_id}", tags=["dispatch"], summary="One group")
async def get_group(request: Request, group_id: Id, _u: Reader) -> KuzetJSON:
    with answers():
        return reply(await group.get(_pool(request), group_id))


@router.patch("/groups/{group_id}", tags=["dispatch"], summary="Change a group (admin)")
async def patch_group(request: Request, group_id: Id, body: GroupPatch, me: Admin) -> KuzetJSON:
    changes = _changes(body)
    if changes.get("name", "") is None:
        raise HTTPException(422, "name: may not be null")
    async with _pool(request).acquire() as conn:
        with answers():
            await group.update(conn, actor(me), group_id, changes)
            return reply(await group.get(conn, group_id))


@router.delete("/groups/{group_id}", tags=["dispatch"], summary="Retire a group (admin; kept for the record)")
async def delete_group(request: Request, group_id: Id, me: Admin) -> KuzetJSON:
    async with _pool(request).acquire() as conn:
        with answers():
            await group.get(conn, group_id)
            await group.deactivate(conn, actor(me), group_id)
            return reply(await group.get(conn, group_id))


# -- vehicles ----------------------------------------------------------------------------------------


@router.get("/vehicles", tags=["dispatch"], summary="Vehicles")
async def list_vehicles(request: Request, _u: Reader, group_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
                        all: bool = False) -> KuzetJSON:
    return reply(await vehicle.list_vehicles(_pool(request), group_id=group_id, include_inactive=all))


@router.post("/vehicles", tags=["dispatch"], status_code=201, summary="Add a vehicle (admin)")
async def create_vehicle(request: Request, body: VehicleIn, me: Admin) -> KuzetJSON:
    async with _pool(request).acquire() as conn:
        with answers():
            vid = await vehicle.create(conn, actor(me), **body.model_dump())
            return reply(await vehicle.get(conn, vid), 201)


@router.get("/vehicles/{vehicle_id}", tags=["dispatch"], summary="One vehicle")
async def get_vehicle(request: Request, vehicle_id: Id, _u: Reader) -> KuzetJSON:
    with answers():
        return reply(await vehicle.get(_pool(request), vehicle_id))


@router.patch("/vehicles/{vehicle_id}", tags=["dispatch"], summary="Change a vehicle (admin)")
async def patch_vehicle(request: Request, vehicle_id: Id, body: VehiclePatch, me: Admin) -> KuzetJSON:
    changes = _changes(body)
    for f in ("plate", "ownership", "model", "registration_certificate", "active"):
        if f in changes and changes[f] is None:
            raise HTTPException(422, f"{f}: may not be null")
    async with _pool(request).acquire() as conn:
        with answers():
            await vehicle.update(conn, actor(me), vehicle_id, changes)
            return reply(await vehicle.get(conn, vehicle_id))


@router.delete("/vehicles/{vehicle_id}", tags=["dispatch"], summary="Retire a vehicle (admin; kept for the record)")
async def delete_vehicle(request: Request, vehicle_id: Id, me: Admin) -> KuzetJSON:
    async with _pool(request).acquire() as conn:
        with answers():
            await vehicle.update(conn, actor(me), vehicle_id, {"active": False})
            return reply(await vehicle.get(conn, vehicle_id))


# -- staff -------------------------------------------------------------------------------------------


@router.get("/staff", tags=["dispatch"], summary="Staff of the response groups")
async def list_staff(request: Request, _u: Reader, group_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
                     all: bool = False) -> KuzetJSON:
    return reply(await staff.list_staff(_pool(request), group_id=group_id, include_inactive=all))


@router.post("/staff", tags=["dispatch"], status_code=201, summary="Add a staff member (admin)")
async def create_staff(request: Request, body: StaffIn, me: Admin) -> KuzetJSON:
    async with _pool(request).acquire() as conn:
        with answers():
            sid = await staff.create(conn, actor(me), **body.model_dump())
            return reply(await staff.get(conn, sid), 201)


@router.get("/staff/{staff_id}", tags=["dispatch"], summary="One staff member")
async def get_staff(request: Request, staff_id: Id, _u: Reader) -> KuzetJSON:
    with answers():
        return reply(await staff.get(_pool(request), staff_id))


@router.patch("/staff/{staff_id}", tags=["dispatch"], summary="Change a staff member (admin)")
async def patch_staff(request: Request, staff_id: Id, body: StaffPatch, me: Admin) -> KuzetJSON:
    changes = _changes(body)
    for f in ("full_name", "role", "phone", "active"):
        if f in changes and changes[f] is None:
            raise HTTPException(422, f"{f}: may not be null")
    async with _pool(request).acquire() as conn:
        with answers():
            await staff.update(conn, actor(me), staff_id, changes)
            return reply(await staff.get(conn, staff_id))


@router.delete("/staff/{staff_id}", tags=["dispatch"], summary="Retire a staff member (admin; kept for the record)")
async def delete_staff(request: Request, staff_id: Id, me: Admin) -> KuzetJSON:
    async with _pool(request).acquire() as conn:
        with answers():
            await staff.update(conn, actor(me), staff_id, {"active": False})
            return reply(await staff.get(conn, staff_id))


# -- shifts ------------------------------------------------------------------------------------------


@router.get("/shifts", tags=["dispatch"], summary="Duty shifts overlapping [from, to)")
async def list_shifts(request: Request, _u: Reader, group_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
                      since: Annotated[dt.datetime | None, Query(alias="from")] = None,
                      until: Annotated[dt.datetime | None, Query(alias="to")] = None,
                      cancelled: bool = False) -> KuzetJSON:
    return reply(await shift.list_shifts(_pool(request), since=since, until=until, group_id=group_id,
                                         include_cancelled=cancelled))


@router.post("/shifts", tags=["dispatch"], status_code=201, summary="Put staff and a vehicle on duty (admin)")
async def create_shift(request: Request, body: ShiftIn, me: Admin) -> KuzetJSON:
    async with _pool(request).acquire() as conn:
        with answers():
            sid = await shift.create(conn, actor(me), eligibility=_eligibility(request), **body.model_dump())
            return reply(await shift.get(conn, sid), 201)


@router.get("/shifts/{shift_id}", tags=["dispatch"], summary="One shift")
async def get_shift(request: Request, shift_id: Id, _u: Reader) -> KuzetJSON:
    with answers():
        return reply(await shift.get(_pool(request), shift_id))


@router.patch("/shifts/{shift_id}", tags=["dispatch"], summary="Change a shift (admin)")
async def patch_shift(request: Request, shift_id: Id, body: ShiftPatch, me: Admin) -> KuzetJSON:
    changes = _changes(body)
    for f in ("starts_at", "ends_at", "staff_ids", "note"):
        if f in changes and changes[f] is None:
            raise HTTPException(422, f"{f}: may not be null")
    async with _pool(request).acquire() as conn:
        with answers():
            await shift.update(conn, actor(me), shift_id, changes=changes, eligibility=_eligibility(request))
            return reply(await shift.get(conn, shift_id))


@router.delete("/shifts/{shift_id}", tags=["dispatch"], summary="Cancel a shift (admin; kept for the record)")
async def delete_shift(request: Request, shift_id: Id, me: Admin) -> KuzetJSON:
    async with _pool(request).acquire() as conn:
        with answers():
            await shift.cancel(conn, actor(me), shift_id)
            return reply(await shift.get(conn, shift_id))


# -- settings, warnings, objects' response times -----------------------------------------------------


@router.get("/dispatch/warnings", tags=["dispatch"], summary="Fewer than two groups on duty with a vehicle; shifts without one")
async def warnings(request: Request, _u: Reader) -> KuzetJSON:
    return reply(await group.warnings(_pool(request)))


@router.get("/dispatch/settings", tags=["dispatch"], summary="Timers, average speed, minimum groups on duty")
async def get_settings(request: Request, _u: Reader) -> KuzetJSON:
    return reply((await dsettings.load(_pool(request))).as_dict())


@router.patch("/dispatch/settings", tags=["dispatch"], summary="Change dispatch settings (admin)")
async def patch_settings(request: Request, body: SettingsPatch, me: Admin) -> KuzetJSON:
    changes = {k: v for k, v in _changes(body).items() if v is not None}
    async with _pool(request).acquire() as conn:
        with answers():
            return reply((await dsettings.update(conn, actor(me), changes)).as_dict())


@router.get("/objects/{object_id}/response-time", tags=["dispatch"], summary="The object's agreed response time")
async def get_response_time(request: Request, object_id: ObjectId, _u: Reader) -> KuzetJSON:
    pool = _pool(request)
    own = await dsettings.object_response_time(pool, object_id)
    return reply({"object_id": object_id, "response_time": own,
                  "effective": own or (await dsettings.load(pool)).response_time})


@router.put("/objects/{object_id}/response-time", tags=["dispatch"], summary="Set the object's response time (admin)")
async def put_response_time(request: Request, object_id: ObjectId, body: ResponseTimeIn, me: Admin) -> KuzetJSON:
    async with _pool(request).acquire() as conn:
        if not await conn.fetchval("SELECT 1 FROM guarded_objects WHERE id = $1", object_id):
            raise HTTPException(404, f"object {object_id} does not exist")
        await dsettings.set_object_response_time(conn, actor(me), object_id, body.response_time)
        own = await dsettings.object_response_time(conn, object_id)
        return reply({"object_id": object_id, "response_time": own,
                      "effective": own or (await dsettings.load(conn)).response_time})


# -- dispatching -------------------------------------------------------------------------------------


@router.get("/alarms/{alarm_id}/suggest", tags=["dispatch"], summary="On-duty groups nearest first, with ETA")
async def suggest(request: Request, alarm_id: AlarmId, _u: Reader) -> KuzetJSON:
    with answers():
        return reply(await assignment.suggest(_pool(request), alarm_id))


@router.post("/alarms/{alarm_id}/dispatch", tags=["dispatch"], status_code=201, summary="Send a group to the alarm")
async def dispatch_group(request: Request, alarm_id: AlarmId, body: DispatchIn, me: Acting) -> KuzetJSON:
    async with _pool(request).acquire() as conn:
        with answers():
            return reply(await assignment.dispatch(conn, alarm_id, body.group_id, actor(me)), 201)


@router.get("/alarms/{alarm_id}/assignments", tags=["dispatch"], summary="The groups sent to the alarm, with step times")
async def alarm_assignments(request: Request, alarm_id: AlarmId, _u: Reader) -> KuzetJSON:
    return reply(await assignment.for_alarm(_pool(request), alarm_id))


async def _may_read(request: Request, me: User, assignment_id: int) -> dict[str, Any]:
    pool = _pool(request)
    with answers():
        a = await assignment.get(pool, assignment_id)
    if me.role == "crew" and a["group_id"] != await staff.crew_group(pool, me):
        raise HTTPException(403, f"assignment {assignment_id} belongs to another group")
    if me.role not in auth.READ_ROLES and me.role != "crew":
        raise HTTPException(403, "not for this role")
    return a


@router.get("/assignments/{assignment_id}", tags=["dispatch"], summary="An assignment: status and each step's time")
async def get_assignment(request: Request, assignment_id: Id, me: Anyone) -> KuzetJSON:
    return reply(await _may_read(request, me, assignment_id))


@router.post("/assignments/{assignment_id}/status", tags=["dispatch"],
             summary="The crew's next step (a repeat of a step already made answers 200, recorded once)")
async def set_status(request: Request, assignment_id: Id, body: StatusIn, me: CrewOrActing) -> KuzetJSON:
    async with _pool(request).acquire() as conn:
        crew_of = await staff.crew_group(conn, me) if me.role == "crew" else None
        with answers():
            a, recorded = await assignment.set_status(
                conn, assignment_id, body.status, actor(me), crew_of=crew_of, as_crew=me.role == "crew",
                outcome=body.outcome, report=body.report, request_id=body.request_id)
    return reply({**a, "recorded": recorded})


@router.post("/assignments/{assignment_id}/recall", tags=["dispatch"], summary="Recall a group, with a reason")
async def recall(request: Request, assignment_id: Id, body: RecallIn, me: Acting) -> KuzetJSON:
    async with _pool(request).acquire() as conn:
        with answers():
            return reply(await assignment.recall(conn, assignment_id, actor(me), body.reason))


# -- the crew's phone --------------------------------------------------------------------------------


async def _crew_group(request: Request, me: User) -> int:
    gid = await staff.crew_group(_pool(request), me)
    if gid is None:
        raise HTTPException(403, "this crew account is not in a response group")
    return gid


@router.post("/crew/position", tags=["crew"], summary="The phone's position (crew)")
async def crew_position(request: Request, body: PositionIn, me: Crew) -> KuzetJSON:
    gid = await _crew_group(request, me)
    async with _pool(request).acquire() as conn:
        p = await position.record(conn, gid, me.id, body.lat, body.lon, body.accuracy)
    return reply({"group_id": gid, **p})


@router.get("/crew/assignment", tags=["crew"], summary="The crew's group and its current assignment with the object card")
async def crew_assignment(request: Request, me: Crew) -> KuzetJSON:
    pool = _pool(request)
    gid = await staff.crew_group(pool, me)
    if gid is None:  # not (yet) in a group: the phone view says so
        return reply({"group": None, "assignment": None, "phones": 0})
    g = await group.get(pool, gid)
    current = await assignment.active_for_group(pool, gid)
    card = await assignment.crew_card(pool, current["id"]) if current else None
    hub = request.app.state.hub
    return reply({"group": g, "assignment": card, "phones": hub.crew_watching(gid)})


# -- records -----------------------------------------------------------------------------------------


def _period(since: dt.datetime | None, until: dt.datetime | None) -> tuple[dt.datetime, dt.datetime]:
    now = dt.datetime.now(dt.UTC)
    until = until or now
    since = since or until - dt.timedelta(days=30)
    for name, v in (("from", since), ("to", until)):
        if v.tzinfo is None:
            raise HTTPException(422, f"{name}: give a time zone (e.g. 2026-11-01T00:00:00+05:00)")
    if until <= since:
        raise HTTPException(422, "to: must be after from")
    return since, until


@router.get("/records/alarms/{alarm_id}", tags=["records"], summary="One alarm's whole response timeline")
async def alarm_timeline(request: Request, alarm_id: AlarmId, _u: Reader) -> KuzetJSON:
    with answers():
        return reply(await records.alarm_timeline(_pool(request), alarm_id))


@router.get("/records/response", tags=["records"], summary="Per group: count, time to dispatch, time to arrive (CSV: format=csv)",
            response_model=None)
async def response_records(request: Request, _u: Reader,
                           since: Annotated[dt.datetime | None, Query(alias="from")] = None,
                           until: Annotated[dt.datetime | None, Query(alias="to")] = None,
                           group_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
                           format: Literal["json", "csv"] = "json") -> Response:
    since, until = _period(since, until)
    rows = await records.response_stats(_pool(request), since, until, group_id)
    if format == "csv":
        name = f"kuzet-response-{since.date()}-{until.date()}.csv"
        return Response(records.stats_csv(rows), media_type="text/csv; charset=utf-8",
                        headers={"content-disposition": f'attachment; filename="{name}"', "cache-control": "no-store"})
    return reply({"from": since, "to": until, "groups": rows})


@router.get("/records/assignments", tags=["records"], summary="Every assignment dispatched in the period, with step times")
async def assignment_records(request: Request, _u: Reader,
                             since: Annotated[dt.datetime | None, Query(alias="from")] = None,
                             until: Annotated[dt.datetime | None, Query(alias="to")] = None,
                             group_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None) -> KuzetJSON:
    since, until = _period(since, until)
    return reply({"from": since, "to": until,
                  "assignments": await records.assignments_in(_pool(request), since, until, group_id)})
