"""Duty shifts: which staff and which vehicle form which group from when to when.

A group has one shift at a time, a vehicle and a staff member are on one group's shift at a time
(checked under a lock, so two admins cannot both succeed). Shift creation takes an `eligibility`
check from the caller (the web passes compliance's): for each staff member it returns why they may
not serve, or None; dispatch itself does not know the rules and does not import compliance.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any

import asyncpg

from console import audit
from console.alarm import Actor
from dispatch import notify
from dispatch.errors import Conflict, Invalid, NotFound

SHIFT_LOCK = 0x73686674  # "shft": shift changes one at a time (overlap checks stay true)

# (conn, staff_id, starts_at, ends_at) -> reason the staff member may not serve, or None
Eligibility = Callable[[asyncpg.Connection, int, datetime, datetime], Awaitable[str | None] | str | None]


class NotEligible(Conflict):
    """A staff member may not be put on the shift; `reasons` maps staff id to why."""

    def __init__(self, reasons: dict[int, str], names: dict[int, str]) -> None:
        text = "; ".join(f"{names.get(i, i)} (staff {i}): {r}" for i, r in reasons.items())
        super().__init__(f"not eligible for duty: {text}")
        self.reasons = reasons


async def _validate(conn: asyncpg.Connection, *, shift_id: int | None, group_id: int, vehicle_id: int | None,
                    starts_at: datetime, ends_at: datetime, staff_ids: Sequence[int],
                    eligibility: Eligibility | None) -> None:
    if ends_at <= starts_at:
        raise Invalid("ends_at", "must be after starts_at")
    if not await conn.fetchval("SELECT 1 FROM response_groups WHERE id = $1 AND active", group_id):
        raise NotFound(f"group {group_id} does not exist")
    if vehicle_id is not None and not await conn.fetchval("SELECT 1 FROM vehicles WHERE id = $1 AND active", vehicle_id):
        raise NotFound(f"vehicle {vehicle_id} does not exist")
    rows = await conn.fetch("SELECT id, full_name FROM staff WHERE id = ANY($1::bigint[]) AND active", list(staff_ids))
    names = {r["id"]: r["full_name"] for r in rows}
    missing = [i for i in staff_ids if i not in names]
    if missing:
        raise NotFound(f"staff member {missing[0]} does not exist")
    overlap = ("cancelled_at IS NULL AND starts_at < $2 AND ends_at > $1 AND ($3::bigint IS NULL OR id <> $3)")
    other = await conn.fetchval(f"SELECT id FROM duty_shifts WHERE {overlap} AND group_id = $4 LIMIT 1",
                                starts_at, ends_at, shift_id, group_id)
    if other:
        raise Conflict(f"group {group_id} already has shift {other} in that time")
    if vehicle_id is not None:
        other = await conn.fetchval(f"SELECT id FROM duty_shifts WHERE {overlap} AND vehicle_id = $4 LIMIT 1",
                                    starts_at, ends_at, shift_id, vehicle_id)
        if other:
            raise Conflict(f"vehicle {vehicle_id} is already on shift {other} in that time")
    if staff_ids:
        r = await conn.fetchrow(
            "SELECT d.id, ss.staff_id FROM duty_shifts d JOIN duty_shift_staff ss ON ss.shift_id = d.id"
            " WHERE d.cancelled_at IS NULL AND d.starts_at < $2 AND d.ends_at > $1 AND ($3::bigint IS NULL OR d.id <> $3)"
            " AND ss.staff_id = ANY($4::bigint[]) LIMIT 1", starts_at, ends_at, shift_id, list(staff_ids))
        if r:
            raise Conflict(f"{names[r['staff_id']]} (staff {r['staff_id']}) is already on shift {r['id']} in that time")
    if eligibility is not None:
        reasons: dict[int, str] = {}
        for sid in staff_ids:
            why = eligibility(conn, sid, starts_at, ends_at)
            if inspect.isawaitable(why):
                why = await why
            if why:
                reasons[sid] = str(why)
        if reasons:
            raise NotEligible(reasons, names)


async def create(conn: asyncpg.Connection, actor: Actor, *, group_id: int, vehicle_id: int | None,
                 starts_at: datetime, ends_at: datetime, staff_ids: Sequence[int] = (), note: str = "",
                 eligibility: Eligibility | None = None) -> int:
    staff_ids = list(dict.fromkeys(staff_ids))
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", SHIFT_LOCK)
        await _validate(conn, shift_id=None, group_id=group_id, vehicle_id=vehicle_id, starts_at=starts_at,
                        ends_at=ends_at, staff_ids=staff_ids, eligibility=eligibility)
        shift_id: int = await conn.fetchval(
            "INSERT INTO duty_shifts (group_id, vehicle_id, starts_at, ends_at, note) VALUES ($1, $2, $3, $4, $5)"
            " RETURNING id", group_id, vehicle_id, starts_at, ends_at, note)
        await conn.executemany("INSERT INTO duty_shift_staff (shift_id, staff_id) VALUES ($1, $2)",
                               [(shift_id, s) for s in staff_ids])
        await audit.append(conn, [audit.Entry(actor.name, "shift.created", "shift", str(shift_id), {
            "group_id": group_id, "vehicle_id": vehicle_id, "starts_at": starts_at, "ends_at": ends_at,
            "staff_ids": staff_ids, "note": note})])
        await notify.notify(conn, groups=[group_id])
    return shift_id


async def update(conn: asyncpg.Connection, actor: Actor, shift_id: int, *, changes: dict[str, Any],
                 eligibility: Eligibility | None = None) -> None:
    """Change a shift (vehicle, times, staff, note); the same checks as creating one."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", SHIFT_LOCK)
        old = await get(conn, shift_id)
        if old["cancelled_at"] is not None:
            raise Conflict(f"shift {shift_id} was cancelled")
        new = {**old, **{k: v for k, v in changes.items() if k in ("vehicle_id", "starts_at", "ends_at", "note")}}
        staff_ids = list(dict.fromkeys(changes["staff_ids"])) if "staff_ids" in changes else old["staff_ids"]
        await _validate(conn, shift_id=shift_id, group_id=old["group_id"], vehicle_id=new["vehicle_id"],
                        starts_at=new["starts_at"], ends_at=new["ends_at"], staff_ids=staff_ids,
                        eligibility=eligibility)
        await conn.execute("UPDATE duty_shifts SET vehicle_id = $2, starts_at = $3, ends_at = $4, note = $5"
                           " WHERE id = $1", shift_id, new["vehicle_id"], new["starts_at"], new["ends_at"], new["note"])
        if "staff_ids" in changes:
            await conn.execute("DELETE FROM duty_shift_staff WHERE shift_id = $1", shift_id)
            await conn.executemany("INSERT INTO duty_shift_staff (shift_id, staff_id) VALUES ($1, $2)",
                                   [(shift_id, s) for s in staff_ids])
        await audit.append(conn, [audit.Entry(actor.name, "shift.updated", "shift", str(shift_id), changes)])
        await notify.notify(conn, groups=[old["group_id"]])


async def cancel(conn: asyncpg.Connection, actor: Actor, shift_id: int) -> None:
    async with conn.transaction():
        old = await get(conn, shift_id)
        if old["cancelled_at"] is None:
            await conn.execute("UPDATE duty_shifts SET cancelled_at = now() WHERE id = $1", shift_id)
        await audit.append(conn, [audit.Entry(actor.name, "shift.cancelled", "shift", str(shift_id), {})])
        await notify.notify(conn, groups=[old["group_id"]])


_SELECT = """
SELECT d.id, d.group_id, g.name AS group_name, d.vehicle_id, v.plate, d.starts_at, d.ends_at, d.note,
       d.cancelled_at, d.created_at,
       coalesce((SELECT array_agg(ss.staff_id ORDER BY ss.staff_id) FROM duty_shift_staff ss
                 WHERE ss.shift_id = d.id), '{}') AS staff_ids,
       coalesce((SELECT json_agg(json_build_object('id', st.id, 'full_name', st.full_name, 'role', st.role)
                 ORDER BY st.full_name) FROM duty_shift_staff ss JOIN staff st ON st.id = ss.staff_id
                 WHERE ss.shift_id = d.id), '[]') AS staff
FROM duty_shifts d JOIN response_groups g ON g.id = d.group_id LEFT JOIN vehicles v ON v.id = d.vehicle_id
"""


async def get(conn: asyncpg.Connection | asyncpg.Pool, shift_id: int) -> dict[str, Any]:
    r = await conn.fetchrow(_SELECT + " WHERE d.id = $1", shift_id)
    if r is None:
        raise NotFound(f"shift {shift_id} does not exist")
    return {**dict(r), "staff_ids": list(r["staff_ids"])}


async def list_shifts(conn: asyncpg.Connection | asyncpg.Pool, *, since: datetime | None = None,
                      until: datetime | None = None, group_id: int | None = None,
                      include_cancelled: bool = False, limit: int = 1000) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        _SELECT + " WHERE ($1::timestamptz IS NULL OR d.ends_at > $1) AND ($2::timestamptz IS NULL OR d.starts_at < $2)"
        " AND ($3::bigint IS NULL OR d.group_id = $3) AND (d.cancelled_at IS NULL OR $4)"
        " ORDER BY d.starts_at, g.name LIMIT $5", since, until, group_id, include_cancelled, limit)
    return [{**dict(r), "staff_ids": list(r["staff_ids"])} for r in rows]
