"""Guarded objects: the premises a post protects, with their zones and contacts (the object card)."""

from __future__ import annotations

from datetime import time
from typing import Any, TypeAlias

import asyncpg

from console import audit, edit

Conn: TypeAlias = asyncpg.Connection | asyncpg.Pool


async def create(conn: Conn, name: str, *, address: str = "", latitude: float | None = None,
                 longitude: float | None = None, terror_vulnerable: bool = False,
                 instructions: str = "") -> int:
    object_id: int = await conn.fetchval(
        "INSERT INTO guarded_objects (name, address, latitude, longitude, terror_vulnerable, instructions)"
        " VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        name, address, latitude, longitude, terror_vulnerable, instructions,
    )
    return object_id


async def create_many(conn: Conn, names: list[str], *, address: str = "") -> list[int]:
    """Many objects in one statement (bulk loads, benchmarks); their ids in the order of `names`."""
    rows = await conn.fetch(
        "INSERT INTO guarded_objects (name, address) SELECT n, $2 FROM unnest($1::text[]) WITH ORDINALITY AS t(n, i)"
        " ORDER BY i RETURNING id", names, address)
    return [r["id"] for r in rows]


async def exists(conn: Conn, object_id: int) -> bool:
    return bool(await conn.fetchval("SELECT 1 FROM guarded_objects WHERE id = $1", object_id))


async def find_by_name(conn: Conn, name: str) -> int | None:
    """The id of the (first) object called `name`, or None."""
    oid = await conn.fetchval("SELECT id FROM guarded_objects WHERE name = $1 ORDER BY id LIMIT 1", name)
    return None if oid is None else int(oid)


async def add_zone(conn: Conn, account_id: int, number: str, name: str) -> None:
    await conn.execute(
        "INSERT INTO zones (account_id, number, name) VALUES ($1, $2, $3)"
        " ON CONFLICT (account_id, number) DO UPDATE SET name = excluded.name",
        account_id, number, name,
    )


async def add_contact(conn: Conn, object_id: int, name: str, phone: str, *, role: str = "keyholder",
                      call_order: int = 1) -> None:
    await conn.execute(
        "INSERT INTO contacts (object_id, name, phone, role, call_order) VALUES ($1, $2, $3, $4, $5)",
        object_id, name, phone, role, call_order,
    )


async def list_objects(conn: Conn) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT o.*, (SELECT array_agg(number ORDER BY number) FROM accounts a WHERE a.object_id = o.id)"
        " AS accounts FROM guarded_objects o ORDER BY o.name"
    )
    return [dict(r) for r in rows]


async def card(conn: Conn, object_id: int) -> dict[str, Any] | None:
    """Everything an operator needs on one screen: object, accounts, zones, contacts."""
    obj = await conn.fetchrow("SELECT * FROM guarded_objects WHERE id = $1", object_id)
    if obj is None:
        return None
    accounts = await conn.fetch(
        "SELECT id, number, prefix, protocol, supervision_interval, last_seen_at, key_format, version,"
        " service_until, service_reason, aes_key IS NOT NULL AS encrypted FROM accounts WHERE object_id = $1"
        " ORDER BY number",
        object_id,
    )
    zones = await conn.fetch(
        "SELECT a.number AS account, z.number, z.name FROM zones z JOIN accounts a ON a.id = z.account_id"
        " WHERE a.object_id = $1 ORDER BY a.number, z.number",
        object_id,
    )
    contacts = await conn.fetch(
        "SELECT name, phone, role, call_order FROM contacts WHERE object_id = $1 ORDER BY call_order, id",
        object_id,
    )
    return {**dict(obj), "accounts": [dict(r) for r in accounts], "zones": [dict(r) for r in zones],
            "contacts": [dict(r) for r in contacts]}


async def schedule(conn: Conn, object_id: int) -> list[dict[str, Any]]:
    """The object's weekly open/close window: one row per weekday (0 = Monday); a day without a row
    is a closed day; no rows at all means the object is not on a schedule."""
    rows = await conn.fetch(
        "SELECT weekday, open_from, arm_by FROM object_schedules WHERE object_id = $1 ORDER BY weekday", object_id)
    return [{"weekday": r["weekday"], "open_from": r["open_from"].strftime("%H:%M"),
             "arm_by": r["arm_by"].strftime("%H:%M")} for r in rows]


async def set_schedule(conn: asyncpg.Connection, object_id: int, days: list[tuple[int, time, time]]) -> None:
    """Replace the weekly window (weekday, may open from, must be armed by), in the post's time zone.
    Supervision raises "failed to arm on time" and "opened outside schedule" from it."""
    async with conn.transaction():
        await conn.execute("DELETE FROM object_schedules WHERE object_id = $1", object_id)
        await conn.executemany(
            "INSERT INTO object_schedules (object_id, weekday, open_from, arm_by) VALUES ($1, $2, $3, $4)",
            [(object_id, d, a, b) for d, a, b in days])


OBJECT_FIELDS = ("name", "address", "latitude", "longitude", "terror_vulnerable", "instructions")


async def update(conn: asyncpg.Connection, actor: str, object_id: int, version: int | None,
                 changes: dict[str, Any]) -> asyncpg.Record:
    """Edit an object's own fields (audited before/after); `edit.Stale` if it moved on since `version`."""
    unknown = set(changes) - set(OBJECT_FIELDS)
    if unknown:
        raise ValueError(f"not object fields: {sorted(unknown)}")
    async with conn.transaction():
        new, _ = await edit.update(conn, table="guarded_objects", entity="object", row_id=object_id,
                                   version=version, changes=changes, actor=actor, action="object.updated")
    return new


async def replace_contacts(conn: asyncpg.Connection, actor: str, object_id: int, version: int | None,
                           contacts: list[tuple[str, str, str]]) -> asyncpg.Record:
    """Replace the object's contacts (name, phone, role) in calling order; the object's version moves."""
    async with conn.transaction():
        await edit.locked(conn, "guarded_objects", "object", object_id, version)
        before = [dict(r) for r in await conn.fetch(
            "SELECT name, phone, role, call_order FROM contacts WHERE object_id = $1 ORDER BY call_order, id", object_id)]
        after = [{"name": n, "phone": p, "role": r, "call_order": i} for i, (n, p, r) in enumerate(contacts, start=1)]
        if before == after:
            row = await conn.fetchrow("SELECT * FROM guarded_objects WHERE id = $1", object_id)
            assert row is not None
            return row
        await conn.execute("DELETE FROM contacts WHERE object_id = $1", object_id)
        await conn.executemany(
            "INSERT INTO contacts (object_id, name, phone, role, call_order) VALUES ($1, $2, $3, $4, $5)",
            [(object_id, c["name"], c["phone"], c["role"], c["call_order"]) for c in after])
        row = await conn.fetchrow("UPDATE guarded_objects SET version = version + 1, updated_at = now()"
                                  " WHERE id = $1 RETURNING *", object_id)
        assert row is not None
        await audit.append(conn, [audit.Entry(actor, "object.contacts", "object", str(object_id),
                                              {"version": row["version"], "before": before, "after": after})])
    return row
