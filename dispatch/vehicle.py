"""Vehicles of the response groups, with the papers Order 353 ch. 3 row 5 asks for (state
registration certificate, held in ownership)."""

from __future__ import annotations

from typing import Any

import asyncpg

from console import audit
from console.alarm import Actor
from dispatch import notify
from dispatch.errors import Conflict, NotFound

OWNERSHIP = ("owned", "leased")
FIELDS = ("group_id", "plate", "model", "registration_certificate", "ownership", "active")
_COLS = "id, group_id, plate, model, registration_certificate, ownership, active, created_at"


async def _check_group(conn: asyncpg.Connection, group_id: int | None) -> None:
    if group_id is not None and not await conn.fetchval("SELECT 1 FROM response_groups WHERE id = $1", group_id):
        raise NotFound(f"group {group_id} does not exist")


async def create(conn: asyncpg.Connection, actor: Actor, *, plate: str, model: str = "",
                 registration_certificate: str = "", ownership: str = "owned", group_id: int | None = None) -> int:
    async with conn.transaction():
        await _check_group(conn, group_id)
        try:
            vehicle_id: int = await conn.fetchval(
                "INSERT INTO vehicles (group_id, plate, model, registration_certificate, ownership)"
                " VALUES ($1, $2, $3, $4, $5) RETURNING id", group_id, plate, model, registration_certificate, ownership)
        except asyncpg.UniqueViolationError:
            raise Conflict(f"a vehicle with plate {plate!r} already exists") from None
        await audit.append(conn, [audit.Entry(actor.name, "vehicle.created", "vehicle", str(vehicle_id), {
            "plate": plate, "model": model, "registration_certificate": registration_certificate,
            "ownership": ownership, "group_id": group_id})])
        if group_id is not None:
            await notify.notify(conn, groups=[group_id])
    return vehicle_id


async def update(conn: asyncpg.Connection, actor: Actor, vehicle_id: int, changes: dict[str, Any]) -> None:
    changes = {k: v for k, v in changes.items() if k in FIELDS}
    async with conn.transaction():
        old = await conn.fetchval("SELECT group_id FROM vehicles WHERE id = $1 FOR UPDATE", vehicle_id)
        if old is None and not await conn.fetchval("SELECT 1 FROM vehicles WHERE id = $1", vehicle_id):
            raise NotFound(f"vehicle {vehicle_id} does not exist")
        if "group_id" in changes:
            await _check_group(conn, changes["group_id"])
        if changes:
            cols = list(changes)
            sets = ", ".join(f"{c} = ${i + 2}" for i, c in enumerate(cols))
            try:
                await conn.execute(f"UPDATE vehicles SET {sets} WHERE id = $1", vehicle_id, *[changes[c] for c in cols])
            except asyncpg.UniqueViolationError:
                raise Conflict(f"a vehicle with plate {changes.get('plate')!r} already exists") from None
        await audit.append(conn, [audit.Entry(actor.name, "vehicle.updated", "vehicle", str(vehicle_id), changes)])
        groups = [g for g in (old, changes.get("group_id")) if g is not None]
        groups += [r["group_id"] for r in await conn.fetch(
            "SELECT group_id FROM duty_shifts WHERE vehicle_id = $1 AND cancelled_at IS NULL AND ends_at > now()",
            vehicle_id)]
        await notify.notify(conn, groups=groups)


async def get(conn: asyncpg.Connection | asyncpg.Pool, vehicle_id: int) -> dict[str, Any]:
    r = await conn.fetchrow(f"SELECT {_COLS} FROM vehicles WHERE id = $1", vehicle_id)
    if r is None:
        raise NotFound(f"vehicle {vehicle_id} does not exist")
    return dict(r)


async def list_vehicles(conn: asyncpg.Connection | asyncpg.Pool, *, group_id: int | None = None,
                        include_inactive: bool = False) -> list[dict[str, Any]]:
    rows = await conn.fetch(f"SELECT {_COLS} FROM vehicles WHERE ($1::bigint IS NULL OR group_id = $1)"
                            " AND (active OR $2) ORDER BY plate", group_id, include_inactive)
    return [dict(r) for r in rows]
