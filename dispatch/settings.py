"""Post-wide dispatch settings (one row in `dispatch_settings`; defaults when the row is missing)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

import asyncpg

from console import audit
from console.alarm import Actor
from dispatch.errors import Invalid


@dataclass(slots=True)
class DispatchSettings:
    accept_timeout: int = 120  # seconds a crew has to accept before the operator is alerted
    response_time: int = 1200  # seconds from dispatch to on site, unless the object has its own
    average_speed_kmh: float = 40.0  # for ETA estimates (straight line)
    position_fresh: int = 600  # seconds a phone's position counts as where the group is
    returning_time: int = 900  # seconds a group shows "returning" after finishing
    min_groups_on_duty: int = 2  # Order 353 ch. 3 row 5: at least two mobile groups

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


NAMES = tuple(f.name for f in fields(DispatchSettings))


async def load(conn: asyncpg.Connection | asyncpg.Pool) -> DispatchSettings:
    r = await conn.fetchrow("SELECT * FROM dispatch_settings WHERE id = 1")
    if r is None:
        return DispatchSettings()
    return DispatchSettings(**{n: r[n] for n in NAMES})


async def update(conn: asyncpg.Connection, actor: Actor, changes: dict[str, Any]) -> DispatchSettings:
    unknown = set(changes) - set(NAMES)
    if unknown:
        raise Invalid(sorted(unknown)[0], "no such setting")
    async with conn.transaction():
        current = await load(conn)
        merged = {**current.as_dict(), **changes}
        cols = ", ".join(NAMES)
        vals = ", ".join(f"${i + 1}" for i in range(len(NAMES)))
        sets = ", ".join(f"{n} = excluded.{n}" for n in NAMES)
        await conn.execute(f"INSERT INTO dispatch_settings (id, {cols}) VALUES (1, {vals})"
                           f" ON CONFLICT (id) DO UPDATE SET {sets}", *[merged[n] for n in NAMES])
        await audit.append(conn, [audit.Entry(actor.name, "dispatch.settings", "dispatch_settings", "1", changes)])
    return await load(conn)


async def object_response_time(conn: asyncpg.Connection | asyncpg.Pool, object_id: int) -> int | None:
    v = await conn.fetchval("SELECT response_time FROM object_response_times WHERE object_id = $1", object_id)
    return int(v) if v is not None else None


async def set_object_response_time(conn: asyncpg.Connection, actor: Actor, object_id: int,
                                   seconds: int | None) -> None:
    async with conn.transaction():
        if seconds is None:
            await conn.execute("DELETE FROM object_response_times WHERE object_id = $1", object_id)
        else:
            await conn.execute("INSERT INTO object_response_times (object_id, response_time) VALUES ($1, $2)"
                               " ON CONFLICT (object_id) DO UPDATE SET response_time = excluded.response_time",
                               object_id, seconds)
        await audit.append(conn, [audit.Entry(actor.name, "object.response_time", "object", str(object_id),
                                              {"response_time": seconds})])
