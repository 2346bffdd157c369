"""Staff of the response groups: name, role in the group, and the user account their phone uses.

A crew user's group is the group of the staff member linked to them; linking also sets
`users.group_id` (the core's field), so both say the same. Personal data for eligibility belongs
to compliance, in its own tables keyed by `staff.id` (stable, never reused).
"""

from __future__ import annotations

from typing import Any

import asyncpg

from console import audit
from console.alarm import Actor
from console.user import User
from dispatch import notify
from dispatch.errors import Conflict, Invalid, NotFound

ROLES = ("senior", "driver", "guard")
FIELDS = ("full_name", "role", "group_id", "user_id", "phone", "active")
_COLS = ("s.id, s.full_name, s.role, s.group_id, s.user_id, s.phone, s.active, s.created_at,"
         " u.username, g.name AS group_name")
_FROM = " FROM staff s LEFT JOIN users u ON u.id = s.user_id LEFT JOIN response_groups g ON g.id = s.group_id"


async def _checks(conn: asyncpg.Connection, group_id: int | None, user_id: int | None) -> None:
    if group_id is not None and not await conn.fetchval("SELECT 1 FROM response_groups WHERE id = $1", group_id):
        raise NotFound(f"group {group_id} does not exist")
    if user_id is not None:
        role = await conn.fetchval("SELECT role FROM users WHERE id = $1", user_id)
        if role is None:
            raise NotFound(f"user {user_id} does not exist")
        if role != "crew":
            raise Invalid("user_id", f"user {user_id} has role {role}; only crew accounts are linked to staff")


async def _link_user(conn: asyncpg.Connection, staff_id: int) -> None:
    """Keep users.group_id in step with the staff member's group."""
    await conn.execute("UPDATE users u SET group_id = s.group_id FROM staff s WHERE s.id = $1 AND u.id = s.user_id",
                       staff_id)


async def create(conn: asyncpg.Connection, actor: Actor, *, full_name: str, role: str = "guard",
                 group_id: int | None = None, user_id: int | None = None, phone: str = "") -> int:
    async with conn.transaction():
        await _checks(conn, group_id, user_id)
        try:
            staff_id: int = await conn.fetchval(
                "INSERT INTO staff (full_name, role, group_id, user_id, phone) VALUES ($1, $2, $3, $4, $5)"
                " RETURNING id", full_name, role, group_id, user_id, phone)
        except asyncpg.UniqueViolationError:
            raise Conflict(f"user {user_id} is already linked to another staff member") from None
        await _link_user(conn, staff_id)
        await audit.append(conn, [audit.Entry(actor.name, "staff.created", "staff", str(staff_id), {
            "full_name": full_name, "role": role, "group_id": group_id, "user_id": user_id, "phone": phone})])
        if group_id is not None:
            await notify.notify(conn, groups=[group_id])
    return staff_id


async def update(conn: asyncpg.Connection, actor: Actor, staff_id: int, changes: dict[str, Any]) -> None:
    changes = {k: v for k, v in changes.items() if k in FIELDS}
    async with conn.transaction():
        old = await conn.fetchrow("SELECT group_id, user_id FROM staff WHERE id = $1 FOR UPDATE", staff_id)
        if old is None:
            raise NotFound(f"staff member {staff_id} does not exist")
        await _checks(conn, changes.get("group_id"), changes.get("user_id"))
        if changes:
            cols = list(changes)
            sets = ", ".join(f"{c} = ${i + 2}" for i, c in enumerate(cols))
            try:
                await conn.execute(f"UPDATE staff SET {sets} WHERE id = $1", staff_id, *[changes[c] for c in cols])
            except asyncpg.UniqueViolationError:
                raise Conflict(f"user {changes.get('user_id')} is already linked to another staff member") from None
        if "user_id" in changes and old["user_id"] is not None and old["user_id"] != changes["user_id"]:
            await conn.execute("UPDATE users SET group_id = NULL WHERE id = $1", old["user_id"])
        if changes.get("active") is False:
            await conn.execute("UPDATE users u SET group_id = NULL FROM staff s WHERE s.id = $1 AND u.id = s.user_id",
                               staff_id)
        else:
            await _link_user(conn, staff_id)
        await audit.append(conn, [audit.Entry(actor.name, "staff.updated", "staff", str(staff_id), changes)])
        await notify.notify(conn, groups=[g for g in (old["group_id"], changes.get("group_id")) if g is not None])


async def get(conn: asyncpg.Connection | asyncpg.Pool, staff_id: int) -> dict[str, Any]:
    r = await conn.fetchrow(f"SELECT {_COLS}{_FROM} WHERE s.id = $1", staff_id)
    if r is None:
        raise NotFound(f"staff member {staff_id} does not exist")
    return dict(r)


async def list_staff(conn: asyncpg.Connection | asyncpg.Pool, *, group_id: int | None = None,
                     include_inactive: bool = False) -> list[dict[str, Any]]:
    rows = await conn.fetch(f"SELECT {_COLS}{_FROM} WHERE ($1::bigint IS NULL OR s.group_id = $1)"
                            " AND (s.active OR $2) ORDER BY g.name NULLS LAST, s.full_name", group_id, include_inactive)
    return [dict(r) for r in rows]


async def crew_group(conn: asyncpg.Connection | asyncpg.Pool, user: User) -> int | None:
    """The group a crew user acts for: their staff record's group, else the core's users.group_id."""
    if user.role != "crew":
        return None
    gid = await conn.fetchval("SELECT coalesce(s.group_id, u.group_id) FROM users u"
                              " LEFT JOIN staff s ON s.user_id = u.id AND s.active WHERE u.id = $1", user.id)
    return int(gid) if gid is not None else None
