"""The REST API under /api. Every route but POST /api/login needs a session (the gate in
`web.auth` answers 401 before a route runs); roles are checked per route (403).

Who may do what:
  admin     everything, including creating objects and accounts
  operator  read the board, acknowledge / close / annotate alarms
  auditor   read the board and its history, change nothing
  crew      only /api/me and /api/logout here (crews get their own assignment view)

Errors are JSON {"detail": "..."}: 401 not logged in, 403 wrong role, 404 no such thing,
409 the action does not fit the alarm's state (the alarm engine's message), 422 a bad request body
or parameter (with "errors" listing each problem), 429 too many failed logins.
"""

from __future__ import annotations

import datetime as dt
import inspect
from typing import Annotated, Any, Literal

import asyncpg
from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, model_validator

from console import account as accounts
from console import alarm as alarms
from console import audit, db, guarded_object
from console import user as users
from console.alarm import AlarmError
from console.user import User
from web import auth
from web.feed import dumps, latest_signals

Outcome = Literal["real-alarm", "false-alarm", "technical-fault", "test", "owner-cancelled", "other"]


class KuzetJSON(JSONResponse):
    """JSON with datetimes as ISO strings and bytes as escaped text; never cached."""

    def render(self, content: Any) -> bytes:
        return dumps(content).encode("utf-8")


def reply(content: Any, status: int = 200) -> KuzetJSON:
    return KuzetJSON(content, status_code=status, headers={"cache-control": "no-store"})


# -- request bodies --------------------------------------------------------------------------------


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class LoginIn(_Body):
    username: str = Field(min_length=1, max_length=150)
    password: str = Field(min_length=1, max_length=1024)


class CloseIn(_Body):
    outcome: Outcome = Field(description="how the alarm ended")
    note: str = Field("", max_length=2000)


class NoteIn(_Body):
    note: str = Field(min_length=1, max_length=2000)


class ContactIn(_Body):
    name: str = Field(min_length=1, max_length=200)
    phone: str = Field("", max_length=50, pattern=r"^[0-9+()\-\s]*$")
    role: str = Field("keyholder", max_length=50)
    call_order: int = Field(1, ge=1, le=99)


class ObjectIn(_Body):
    name: str = Field(min_length=1, max_length=300)
    address: str = Field("", max_length=500)
    latitude: float | None = Field(None, ge=-90, le=90)
    longitude: float | None = Field(None, ge=-180, le=180)
    terror_vulnerable: bool = False
    instructions: str = Field("", max_length=10_000)
    contacts: list[ContactIn] = Field(default_factory=list, max_length=50)


class ScheduleDayIn(_Body):
    weekday: int = Field(ge=0, le=6, description="0 = Monday")
    open_from: dt.time = Field(description="may be opened (disarmed) from, local time of the post")
    arm_by: dt.time = Field(description="must be armed (closed) by")


class ScheduleIn(_Body):
    days: list[ScheduleDayIn] = Field(max_length=7, description="no day: closed that day; no days: no schedule")


class ZoneIn(_Body):
    number: str = Field(min_length=1, max_length=10, pattern=r"^[0-9A-Za-z]+$")
    name: str = Field(min_length=1, max_length=200)


class AccountIn(_Body):
    number: str = Field(min_length=1, max_length=16, pattern=r"^[0-9A-Za-z]+$",
                        description="account number as the panel sends it (DC-09: 3-16 hex digits)")
    object_id: int | None = Field(None, ge=1)
    prefix: str = Field("", pattern=r"^((R[0-9A-Fa-f]{1,6})?L[0-9A-Fa-f]{1,6})?$",
                        description="receiver/line prefix, e.g. L0 or R1L0; empty matches any line")
    protocol: str = Field("dc09", pattern=r"^[a-z0-9-]{1,20}$")
    aes_key: str | None = Field(None, min_length=16, max_length=64)
    key_format: Literal["hex", "ascii"] = "hex"
    supervision_interval: int | None = Field(None, ge=10, le=7 * 86400,
                                             description="seconds between expected test reports")
    zones: list[ZoneIn] = Field(default_factory=list, max_length=512)

    @model_validator(mode="after")
    def _key(self) -> AccountIn:
        try:
            accounts.key_bytes(self.aes_key, self.key_format)
        except ValueError as exc:
            raise ValueError(f"aes_key: {exc}") from None
        return self


# -- helpers ---------------------------------------------------------------------------------------


def _pool(request: Request) -> asyncpg.Pool:
    pool: asyncpg.Pool = request.app.state.pool
    return pool


def _actor(u: User) -> alarms.Actor:
    return alarms.Actor(u.id, u.username)


def me_dict(u: User, request: Request) -> dict[str, Any]:
    settings = request.app.state.settings
    return {"id": u.id, "username": u.username, "full_name": u.full_name, "role": u.role, "lang": u.lang,
            "group_id": u.group_id, "can_act": u.role in auth.ACT_ROLES, "can_admin": u.role in auth.ADMIN_ROLES,
            "timezone": settings.timezone, "outcomes": list(alarms.OUTCOMES)}


async def _alarm_with_history(conn: asyncpg.Connection | asyncpg.Pool, alarm_id: int) -> dict[str, Any]:
    found = await alarms.get(conn, alarm_id)
    if found is None:
        raise HTTPException(404, f"alarm {alarm_id} does not exist")
    return {**found, "history": await alarms.history(conn, alarm_id)}


AlarmId = Annotated[int, Path(ge=1, le=2**63 - 1)]
ObjectId = Annotated[int, Path(ge=1, le=2**63 - 1)]
Reader = Annotated[User, Depends(auth.require(*auth.READ_ROLES))]
Acting = Annotated[User, Depends(auth.require(*auth.ACT_ROLES))]
Admin = Annotated[User, Depends(auth.require(*auth.ADMIN_ROLES))]
Anyone = Annotated[User, Depends(auth.require())]

# -- routes ----------------------------------------------------------------------------------------

public = APIRouter(prefix="/api", tags=["session"])
router = APIRouter(prefix="/api", dependencies=[Depends(auth.require())])


@public.post("/login", summary="Log in: sets the session cookie, returns the user")
async def login(body: LoginIn, request: Request) -> KuzetJSON:
    pool = _pool(request)
    throttle: auth.LoginThrottle = request.app.state.throttle
    peer = request.client.host if request.client else ""
    if throttle.blocked(peer, body.username):
        raise HTTPException(429, "too many failed logins; try again later")
    found = await users.authenticate(pool, body.username, body.password)
    if found is None:
        throttle.failed(peer, body.username)
        async with pool.acquire() as conn, conn.transaction():
            await audit.append(conn, [audit.Entry("system:web", "user.login-failed", "user", "",
                                                  {"username": body.username, "peer": peer})])
        raise HTTPException(401, "wrong username or password")
    throttle.succeeded(peer, body.username)
    async with pool.acquire() as conn:
        old = request.cookies.get(auth.COOKIE)
        if old and (previous := await users.session_user(conn, old)) is not None:
            await users.close_session(conn, old, previous)
        token = await users.open_session(conn, found)
    response = reply(me_dict(found, request))
    auth.set_session_cookie(request, response, token)
    return response


@router.post("/logout", tags=["session"], summary="End this session")
async def logout(request: Request, me: Anyone) -> KuzetJSON:
    token = request.scope.get(auth.SCOPE_TOKEN) or request.cookies.get(auth.COOKIE)
    if token:
        async with _pool(request).acquire() as conn:
            await users.close_session(conn, token, me)
    response = reply({"ok": True})
    auth.clear_session_cookie(request, response)
    return response


@router.get("/me", tags=["session"], summary="The logged-in user and what they may do")
async def me(request: Request, me: Anyone) -> KuzetJSON:
    return reply(me_dict(me, request))


@router.get("/alarms", tags=["alarms"], summary="Open alarms, most urgent first (closed=1: newest first, with closed)")
async def list_alarms(request: Request, _u: Reader, closed: bool = False,
                      limit: Annotated[int, Query(ge=1, le=1000)] = 200) -> KuzetJSON:
    return reply(await alarms.list_alarms(_pool(request), include_closed=closed, limit=limit))


@router.get("/alarms/{alarm_id}", tags=["alarms"], summary="One alarm with its history")
async def get_alarm(request: Request, alarm_id: AlarmId, _u: Reader) -> KuzetJSON:
    return reply(await _alarm_with_history(_pool(request), alarm_id))


@router.post("/alarms/{alarm_id}/ack", tags=["alarms"], summary="Acknowledge a new alarm")
async def acknowledge(request: Request, alarm_id: AlarmId, me: Acting) -> KuzetJSON:
    async with _pool(request).acquire() as conn:
        await _alarm_with_history(conn, alarm_id)  # 404 before 409
        try:
            return reply(await alarms.acknowledge(conn, alarm_id, _actor(me)))
        except AlarmError as exc:
            raise HTTPException(409, str(exc)) from None


@router.post("/alarms/{alarm_id}/close", tags=["alarms"], summary="Close an acknowledged alarm with an outcome")
async def close(request: Request, alarm_id: AlarmId, body: CloseIn, me: Acting) -> KuzetJSON:
    async with _pool(request).acquire() as conn:
        await _alarm_with_history(conn, alarm_id)
        try:
            return reply(await alarms.close(conn, alarm_id, _actor(me), body.outcome, body.note))
        except AlarmError as exc:
            raise HTTPException(409, str(exc)) from None


@router.post("/alarms/{alarm_id}/note", tags=["alarms"], summary="Add an operator's note to an alarm")
async def note(request: Request, alarm_id: AlarmId, body: NoteIn, me: Acting) -> KuzetJSON:
    async with _pool(request).acquire() as conn:
        await _alarm_with_history(conn, alarm_id)
        try:
            await alarms.add_note(conn, alarm_id, _actor(me), body.note)
        except AlarmError as exc:
            raise HTTPException(409, str(exc)) from None
        return reply(await _alarm_with_history(conn, alarm_id))


@router.get("/objects", tags=["objects"], summary="Guarded objects")
async def list_objects(request: Request, _u: Reader) -> KuzetJSON:
    return reply(await guarded_object.list_objects(_pool(request)))


@router.get("/objects/{object_id}", tags=["objects"], summary="The object card: object, accounts, zones, contacts")
async def object_card(request: Request, object_id: ObjectId, _u: Reader) -> KuzetJSON:
    card = await guarded_object.card(_pool(request), object_id)
    if card is None:
        raise HTTPException(404, f"object {object_id} does not exist")
    return reply(card)


@router.post("/objects", tags=["objects"], status_code=201, summary="Create a guarded object (admin)")
async def create_object(request: Request, body: ObjectIn, me: Admin) -> KuzetJSON:
    async with _pool(request).acquire() as conn, conn.transaction():
        object_id = await guarded_object.create(
            conn, body.name, address=body.address, latitude=body.latitude, longitude=body.longitude,
            terror_vulnerable=body.terror_vulnerable, instructions=body.instructions)
        for c in body.contacts:
            await guarded_object.add_contact(conn, object_id, c.name, c.phone, role=c.role, call_order=c.call_order)
        await audit.append(conn, [audit.Entry(me.username, "object.created", "object", str(object_id),
                                              body.model_dump(exclude={"instructions"}))])
        card = await guarded_object.card(conn, object_id)
    return reply(card, 201)


@router.get("/objects/{object_id}/schedule", tags=["objects"], summary="The object's weekly open/close window")
async def get_schedule(request: Request, object_id: ObjectId, _u: Reader) -> KuzetJSON:
    return reply(await guarded_object.schedule(_pool(request), object_id))


@router.put("/objects/{object_id}/schedule", tags=["objects"], summary="Replace the weekly open/close window (admin)")
async def put_schedule(request: Request, object_id: ObjectId, body: ScheduleIn, me: Admin) -> KuzetJSON:
    if len({d.weekday for d in body.days}) != len(body.days):
        raise HTTPException(422, "days: each weekday at most once")
    if any(d.open_from == d.arm_by for d in body.days):
        raise HTTPException(422, "days: open_from and arm_by must differ")
    async with _pool(request).acquire() as conn, conn.transaction():
        if not await conn.fetchval("SELECT 1 FROM guarded_objects WHERE id = $1", object_id):
            raise HTTPException(404, f"object {object_id} does not exist")
        await guarded_object.set_schedule(conn, object_id, [(d.weekday, d.open_from, d.arm_by) for d in body.days])
        await audit.append(conn, [audit.Entry(me.username, "object.schedule", "object", str(object_id),
                                              body.model_dump(mode="json"))])
        days = await guarded_object.schedule(conn, object_id)
    return reply(days)


@router.get("/accounts", tags=["objects"], summary="Accounts (panels), optionally of one object")
async def list_accounts(request: Request, _u: Reader,
                        object_id: Annotated[int | None, Query(ge=1)] = None) -> KuzetJSON:
    return reply(await accounts.list_accounts(_pool(request), object_id))


@router.post("/accounts", tags=["objects"], status_code=201, summary="Create an account with its zones (admin)")
async def create_account(request: Request, body: AccountIn, me: Admin) -> KuzetJSON:
    async with _pool(request).acquire() as conn, conn.transaction():
        if body.object_id is not None and not await conn.fetchval(
                "SELECT 1 FROM guarded_objects WHERE id = $1", body.object_id):
            raise HTTPException(400, f"object {body.object_id} does not exist")
        try:
            account_id = await accounts.create(
                conn, body.number, object_id=body.object_id, prefix=body.prefix, protocol=body.protocol,
                aes_key=body.aes_key, key_format=body.key_format, supervision_interval=body.supervision_interval)
        except asyncpg.UniqueViolationError:
            raise HTTPException(409, f"account {body.prefix.upper()}#{body.number.upper()} already exists") from None
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from None
        for z in body.zones:
            await guarded_object.add_zone(conn, account_id, z.number, z.name)
        detail = body.model_dump(exclude={"aes_key"})
        detail["encrypted"] = body.aes_key is not None  # the key itself never goes into the log
        await audit.append(conn, [audit.Entry(me.username, "account.created", "account", str(account_id), detail)])
        created = [a for a in await accounts.list_accounts(conn, body.object_id) if a["id"] == account_id]
    return reply(created[0] if created else {"id": account_id}, 201)


@router.get("/signals", tags=["signals"], summary="Latest stored signals, newest first")
async def list_signals(request: Request, _u: Reader, limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                       account: Annotated[str | None, Query(max_length=16, pattern=r"^[0-9A-Za-z]+$")] = None,
                       ) -> KuzetJSON:
    return reply(await latest_signals(_pool(request), limit=limit, account=account.upper() if account else None))


@router.get("/rejected", tags=["signals"], summary="Frames the receivers refused (bad CRC, unknown key, ...)")
async def list_rejected(request: Request, _u: Reader,
                        limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> KuzetJSON:
    rows = await _pool(request).fetch(
        "SELECT id, received_at, receiver, peer, reason, detail, account, reply, raw FROM rejected_frames"
        " ORDER BY id DESC LIMIT $1", limit)
    return reply([dict(r) for r in rows])


@router.get("/receivers", tags=["system"], summary="Health of every receiver in this process")
async def receivers(request: Request, _u: Reader) -> KuzetJSON:
    health = request.app.state.health
    if health is None:
        return reply([])
    result = health()
    if inspect.isawaitable(result):
        result = await result
    return reply(list(result))


@router.get("/status", tags=["system"], summary="Database schema version and counts; this web node's feed")
async def status(request: Request, _u: Reader) -> KuzetJSON:
    async with _pool(request).acquire() as conn:
        result = await db.status(conn)
    hub = request.app.state.hub
    result["web"] = {"board_clients": len(hub.clients), "dropped_clients": hub.dropped,
                     "listening": hub.listening.is_set(), "listener_reconnects": hub.reconnects}
    return reply(result)
