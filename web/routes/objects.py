"""Guarded objects, their schedules, accounts (panels) and zones."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

import asyncpg
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import AwareDatetime, Field, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

from console import account as accounts
from console import audit, edit, guarded_object
from web import auth
from web.routes.common import Admin, KuzetJSON, ObjectId, Reader, _Body, _pool, reply

router = APIRouter(prefix="/api", dependencies=[Depends(auth.require())])


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


def _check_key(key: str | None, fmt: str) -> None:
    try:
        accounts.key_bytes(key, fmt)
    except ValueError as exc:
        raise PydanticCustomError("aes_key", "{reason}", {"reason": str(exc)}) from None


class AccountIn(_Body):
    number: str = Field(min_length=1, max_length=16, pattern=accounts.NUMBER_PATTERN,
                        description="account number as the panel sends it (DC-09: 3-16 hex digits)")
    object_id: int | None = Field(None, ge=1, le=2**63 - 1)
    prefix: str = Field("", pattern=accounts.PREFIX_PATTERN,
                        description="receiver/line prefix, e.g. L0 or R1L0; empty matches any line")
    protocol: str = Field("dc09", pattern=accounts.PROTOCOL_PATTERN)
    key_format: Literal["hex", "ascii"] = "hex"
    aes_key: str | None = Field(None, min_length=16, max_length=64)
    supervision_interval: int | None = Field(None, ge=accounts.INTERVAL_MIN, le=accounts.INTERVAL_MAX,
                                             description="seconds between expected test reports")
    zones: list[ZoneIn] = Field(default_factory=list, max_length=512)

    @field_validator("aes_key")
    @classmethod
    def _key(cls, v: str | None, info: ValidationInfo) -> str | None:
        _check_key(v, info.data.get("key_format", "hex"))
        return v


class Versioned(_Body):
    version: int = Field(ge=1, le=2**31 - 1, description="the version this edit was made from (409 if it has moved on)")


class ObjectPatch(Versioned):
    """Only the fields given change."""

    name: str | None = Field(None, min_length=1, max_length=300)
    address: str | None = Field(None, max_length=500)
    latitude: float | None = Field(None, ge=-90, le=90)
    longitude: float | None = Field(None, ge=-180, le=180)
    terror_vulnerable: bool | None = Field(None)
    instructions: str | None = Field(None, max_length=10_000)

    @model_validator(mode="after")
    def _both(self) -> ObjectPatch:
        given = self.model_fields_set
        if ("latitude" in given) != ("longitude" in given) or (self.latitude is None) != (self.longitude is None):
            raise PydanticCustomError("both_coordinates", "give both latitude and longitude, or neither")
        return self


class ContactsIn(Versioned):
    contacts: list[ContactIn] = Field(max_length=50, description="in calling order")


class ServiceIn(Versioned):
    until: AwareDatetime | None = Field(description="back under guard at this instant; null: back now")
    reason: str = Field("", max_length=500)


class AccountPatch(Versioned):
    """Only the fields given change; `aes_key: null` removes the key."""

    number: str | None = Field(None, min_length=1, max_length=16, pattern=accounts.NUMBER_PATTERN)
    object_id: int | None = Field(None, ge=1, le=2**63 - 1)
    prefix: str | None = Field(None, pattern=accounts.PREFIX_PATTERN)
    protocol: str | None = Field(None, pattern=accounts.PROTOCOL_PATTERN)
    key_format: Literal["hex", "ascii"] | None = Field(None)
    aes_key: str | None = Field(None, min_length=16, max_length=64)
    supervision_interval: int | None = Field(None, ge=accounts.INTERVAL_MIN, le=accounts.INTERVAL_MAX)


class ZonesIn(Versioned):
    zones: list[ZoneIn] = Field(max_length=512)


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
        raise edit.Invalid("days: each weekday at most once", field="days", code="duplicate_weekday")
    if any(d.open_from == d.arm_by for d in body.days):
        raise edit.Invalid("days: open_from and arm_by must differ", field="days", code="same_time")
    async with _pool(request).acquire() as conn, conn.transaction():
        if not await guarded_object.exists(conn, object_id):
            raise HTTPException(404, f"object {object_id} does not exist")
        await guarded_object.set_schedule(conn, object_id, [(d.weekday, d.open_from, d.arm_by) for d in body.days])
        await audit.append(conn, [audit.Entry(me.username, "object.schedule", "object", str(object_id),
                                              body.model_dump(mode="json"))])
        days = await guarded_object.schedule(conn, object_id)
    return reply(days)


@router.get("/accounts", tags=["objects"], summary="Accounts (panels), optionally of one object")
async def list_accounts(request: Request, _u: Reader,
                        object_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None) -> KuzetJSON:
    return reply(await accounts.list_accounts(_pool(request), object_id))


@router.post("/accounts", tags=["objects"], status_code=201, summary="Create an account with its zones (admin)")
async def create_account(request: Request, body: AccountIn, me: Admin) -> KuzetJSON:
    async with _pool(request).acquire() as conn, conn.transaction():
        if body.object_id is not None and not await guarded_object.exists(conn, body.object_id):
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



def _row_dict(r: asyncpg.Record) -> dict[str, Any]:
    return {k: v for k, v in dict(r).items() if k not in edit.SECRET_FIELDS}


@router.patch("/objects/{object_id}", tags=["objects"], summary="Edit an object (admin; carries the version read)")
async def patch_object(request: Request, object_id: ObjectId, body: ObjectPatch, me: Admin) -> KuzetJSON:
    changes = {k: getattr(body, k) for k in body.model_fields_set if k != "version"}
    for k in ("name", "address", "terror_vulnerable", "instructions"):
        if k in changes and changes[k] is None:
            raise edit.Invalid(f"{k}: may not be null", field=k, code="missing")
    async with _pool(request).acquire() as conn:
        await guarded_object.update(conn, me.username, object_id, body.version, changes)
        return reply(await guarded_object.card(conn, object_id))


@router.put("/objects/{object_id}/contacts", tags=["objects"], summary="Replace the contacts and keyholders (admin)")
async def put_contacts(request: Request, object_id: ObjectId, body: ContactsIn, me: Admin) -> KuzetJSON:
    async with _pool(request).acquire() as conn:
        await guarded_object.replace_contacts(conn, me.username, object_id, body.version,
                                              [(c.name, c.phone, c.role) for c in body.contacts])
        return reply(await guarded_object.card(conn, object_id))


@router.put("/objects/{object_id}/service", tags=["objects"],
            summary="Take the object out of guard for service until a time, with a reason; until null: back now (admin)")
async def put_object_service(request: Request, object_id: ObjectId, body: ServiceIn, me: Admin) -> KuzetJSON:
    async with _pool(request).acquire() as conn:
        async with conn.transaction():
            await edit.set_service(conn, table="guarded_objects", entity="object", row_id=object_id,
                                   version=body.version, until=body.until, reason=body.reason, actor=me.username)
        return reply(await guarded_object.card(conn, object_id))


@router.get("/accounts/{account_id}", tags=["objects"], summary="One account with its zones")
async def get_account(request: Request, account_id: ObjectId, _u: Reader) -> KuzetJSON:
    found = await accounts.get(_pool(request), account_id)
    if found is None:
        raise HTTPException(404, f"account {account_id} does not exist")
    return reply(found)


@router.patch("/accounts/{account_id}", tags=["objects"], summary="Edit an account (admin; carries the version read)")
async def patch_account(request: Request, account_id: ObjectId, body: AccountPatch, me: Admin) -> KuzetJSON:
    changes = {k: getattr(body, k) for k in body.model_fields_set if k != "version"}
    for k in ("number", "prefix", "protocol", "key_format"):
        if k in changes and changes[k] is None:
            raise edit.Invalid(f"{k}: may not be null", field=k, code="missing")
    async with _pool(request).acquire() as conn:
        if changes.get("object_id") is not None and not await conn.fetchval(
                "SELECT 1 FROM guarded_objects WHERE id = $1", changes["object_id"]):
            raise edit.Invalid(f"object {changes['object_id']} does not exist", field="object_id", code="not_found")
        return reply(await accounts.update(conn, me.username, account_id, body.version, changes))


@router.put("/accounts/{account_id}/zones", tags=["objects"], summary="Replace the account's zones (admin)")
async def put_zones(request: Request, account_id: ObjectId, body: ZonesIn, me: Admin) -> KuzetJSON:
    async with _pool(request).acquire() as conn:
        return reply(await accounts.replace_zones(conn, me.username, account_id, body.version,
                                                  [(z.number, z.name) for z in body.zones]))


@router.put("/accounts/{account_id}/service", tags=["objects"],
            summary="Take the account out of guard for service until a time, with a reason; until null: back now (admin)")
async def put_account_service(request: Request, account_id: ObjectId, body: ServiceIn, me: Admin) -> KuzetJSON:
    async with _pool(request).acquire() as conn:
        async with conn.transaction():
            await edit.set_service(conn, table="accounts", entity="account", row_id=account_id,
                                   version=body.version, until=body.until, reason=body.reason, actor=me.username)
        return reply(await accounts.get(conn, account_id))
