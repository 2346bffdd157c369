"""Response groups (ГБР): the order that formed them, their base, and their live state.

A group's live state is derived, never stored: from its duty shift now (on duty or not), its active
assignment (dispatched / accepted / en route / on site) and its last finished one (returning for
`returning_time` seconds). A group is available for dispatch when on duty and not busy; a returning
group counts as available (it is free, only not at its base).
"""

from __future__ import annotations

import datetime as dt
from datetime import UTC, datetime
from typing import Any

import asyncpg

from console import audit
from console.alarm import Actor
from dispatch import notify
from dispatch import settings as dsettings
from dispatch.errors import Conflict, NotFound

STATES = ("available", "dispatched", "accepted", "en-route", "on-site", "returning", "off-duty")
ACTIVE = ("new", "accepted", "en-route", "on-site")  # assignment statuses that keep a group busy
_BUSY_STATE = {"new": "dispatched", "accepted": "accepted", "en-route": "en-route", "on-site": "on-site"}
DISPATCHABLE = ("available", "returning")

FIELDS = ("name", "call_sign", "base_address", "latitude", "longitude", "order_number", "order_date")


def live_state(*, on_duty: bool, active_status: str | None, last_finished_at: datetime | None,
               now: datetime, returning_time: int) -> str:
    if active_status is not None:
        return _BUSY_STATE[active_status]
    if not on_duty:
        return "off-duty"
    if last_finished_at is not None and (now - last_finished_at).total_seconds() < returning_time:
        return "returning"
    return "available"


async def create(conn: asyncpg.Connection, actor: Actor, *, name: str, call_sign: str = "", base_address: str = "",
                 latitude: float | None = None, longitude: float | None = None, order_number: str = "",
                 order_date: dt.date | None = None) -> int:
    async with conn.transaction():
        try:
            group_id: int = await conn.fetchval(
                "INSERT INTO response_groups (name, call_sign, base_address, latitude, longitude, order_number,"
                " order_date) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
                name, call_sign, base_address, latitude, longitude, order_number, order_date)
        except asyncpg.UniqueViolationError:
            raise Conflict(f"a group named {name!r} already exists") from None
        await audit.append(conn, [audit.Entry(actor.name, "group.created", "group", str(group_id), {
            "name": name, "call_sign": call_sign, "base_address": base_address, "latitude": latitude,
            "longitude": longitude, "order_number": order_number, "order_date": order_date})])
        await notify.notify(conn, groups=[group_id])
    return group_id


async def update(conn: asyncpg.Connection, actor: Actor, group_id: int, changes: dict[str, Any]) -> None:
    changes = {k: v for k, v in changes.items() if k in FIELDS + ("active",)}
    async with conn.transaction():
        if not await conn.fetchval("SELECT 1 FROM response_groups WHERE id = $1 FOR UPDATE", group_id):
            raise NotFound(f"group {group_id} does not exist")
        if changes:
            cols = list(changes)
            sets = ", ".join(f"{c} = ${i + 2}" for i, c in enumerate(cols))
            try:
                await conn.execute(f"UPDATE response_groups SET {sets} WHERE id = $1", group_id,
                                   *[changes[c] for c in cols])
            except asyncpg.UniqueViolationError:
                raise Conflict(f"a group named {changes.get('name')!r} already exists") from None
        await audit.append(conn, [audit.Entry(actor.name, "group.updated", "group", str(group_id), changes)])
        await notify.notify(conn, groups=[group_id])


async def deactivate(conn: asyncpg.Connection, actor: Actor, group_id: int) -> None:
    """Groups are never deleted (their assignments are the record); an inactive group is hidden."""
    async with conn.transaction():
        if await conn.fetchval("SELECT 1 FROM assignments WHERE group_id = $1 AND status = ANY($2::text[])",
                               group_id, list(ACTIVE)):
            raise Conflict(f"group {group_id} is answering an alarm; recall or finish it first")
        await update(conn, actor, group_id, {"active": False})


_LIST = """
SELECT g.id, g.name, g.call_sign, g.base_address, g.latitude, g.longitude, g.order_number, g.order_date,
       g.active,
       s.id AS shift_id, s.starts_at AS shift_starts_at, s.ends_at AS shift_ends_at, s.vehicle_id AS shift_vehicle_id,
       p.latitude AS pos_lat, p.longitude AS pos_lon, p.accuracy AS pos_accuracy, p.at AS pos_at,
       a.id AS a_id, a.alarm_id AS a_alarm_id, a.status AS a_status, a.dispatched_at AS a_dispatched_at,
       a.accepted_at AS a_accepted_at, a.en_route_at AS a_en_route_at, a.on_site_at AS a_on_site_at,
       a.eta_minutes AS a_eta_minutes, o.id AS a_object_id, o.name AS a_object_name, o.address AS a_address,
       o.latitude AS a_lat, o.longitude AS a_lon,
       (SELECT max(finished_at) FROM assignments f WHERE f.group_id = g.id AND f.status = 'finished')
           AS last_finished_at
FROM response_groups g
LEFT JOIN LATERAL (
    SELECT * FROM duty_shifts ds WHERE ds.group_id = g.id AND ds.cancelled_at IS NULL
      AND ds.starts_at <= $1 AND ds.ends_at > $1 ORDER BY ds.starts_at DESC LIMIT 1) s ON true
LEFT JOIN LATERAL (
    SELECT * FROM group_positions gp WHERE gp.group_id = g.id ORDER BY gp.at DESC LIMIT 1) p ON true
LEFT JOIN LATERAL (
    SELECT * FROM assignments x WHERE x.group_id = g.id AND x.status IN ('new', 'accepted', 'en-route', 'on-site')
    LIMIT 1) a ON true
LEFT JOIN alarms al ON al.id = a.alarm_id
LEFT JOIN guarded_objects o ON o.id = al.object_id
WHERE (g.active OR $2) AND ($3::bigint[] IS NULL OR g.id = ANY($3::bigint[]))
ORDER BY g.name
"""

_VEHICLE_COLS = "id, group_id, plate, model, registration_certificate, ownership, active"


async def list_groups(conn: asyncpg.Connection | asyncpg.Pool, *, ids: list[int] | None = None,
                      include_inactive: bool = False, now: datetime | None = None) -> list[dict[str, Any]]:
    """Every group with its live state, crew, vehicle(s), last position and current assignment."""
    now = now or datetime.now(UTC)
    cfg = await dsettings.load(conn)
    rows = await conn.fetch(_LIST, now, include_inactive, ids)
    if not rows:
        return []
    group_ids = [r["id"] for r in rows]
    shift_ids = [r["shift_id"] for r in rows if r["shift_id"] is not None]
    vehicles = await conn.fetch(
        f"SELECT {_VEHICLE_COLS} FROM vehicles WHERE (group_id = ANY($1::bigint[]) AND active)"
        " OR id IN (SELECT vehicle_id FROM duty_shifts WHERE id = ANY($2::bigint[]))", group_ids, shift_ids)
    crews = await conn.fetch(
        "SELECT ss.shift_id, st.id, st.full_name, st.role, st.user_id, st.phone FROM duty_shift_staff ss"
        " JOIN staff st ON st.id = ss.staff_id WHERE ss.shift_id = ANY($1::bigint[])"
        " ORDER BY array_position(ARRAY['senior', 'driver', 'guard'], st.role), st.full_name", shift_ids)
    by_id = {v["id"]: dict(v) for v in vehicles}
    out = []
    for r in rows:
        on_duty = r["shift_id"] is not None
        if on_duty:
            vs = [by_id[r["shift_vehicle_id"]]] if r["shift_vehicle_id"] in by_id else []
        else:
            vs = [v for v in by_id.values() if v["group_id"] == r["id"] and v["active"]]
        position = None
        if r["pos_at"] is not None:
            position = {"lat": r["pos_lat"], "lon": r["pos_lon"], "accuracy": r["pos_accuracy"], "at": r["pos_at"],
                        "age_seconds": max(0.0, (now - r["pos_at"]).total_seconds())}
        assignment = None
        if r["a_id"] is not None:
            assignment = {"id": r["a_id"], "alarm_id": r["a_alarm_id"], "status": r["a_status"],
                          "dispatched_at": r["a_dispatched_at"], "accepted_at": r["a_accepted_at"],
                          "en_route_at": r["a_en_route_at"], "on_site_at": r["a_on_site_at"],
                          "eta_minutes": r["a_eta_minutes"], "object_id": r["a_object_id"],
                          "object_name": r["a_object_name"], "address": r["a_address"],
                          "lat": r["a_lat"], "lon": r["a_lon"]}
        state = live_state(on_duty=on_duty, active_status=r["a_status"], last_finished_at=r["last_finished_at"],
                           now=now, returning_time=cfg.returning_time)
        out.append({
            "id": r["id"], "name": r["name"], "call_sign": r["call_sign"], "base_address": r["base_address"],
            "base": {"lat": r["latitude"], "lon": r["longitude"]} if r["latitude"] is not None else None,
            "latitude": r["latitude"], "longitude": r["longitude"],
            "order_number": r["order_number"], "order_date": r["order_date"], "active": r["active"],
            "state": state, "on_duty": on_duty, "available": on_duty and state in DISPATCHABLE,
            "shift": {"id": r["shift_id"], "starts_at": r["shift_starts_at"], "ends_at": r["shift_ends_at"]}
            if on_duty else None,
            "vehicles": vs,
            "crew": [{k: c[k] for k in ("id", "full_name", "role", "user_id", "phone")}
                     for c in crews if c["shift_id"] == r["shift_id"]] if on_duty else [],
            "position": position,
            "assignment": assignment,
        })
    return out


async def get(conn: asyncpg.Connection | asyncpg.Pool, group_id: int, *, now: datetime | None = None) -> dict[str, Any]:
    found = await list_groups(conn, ids=[group_id], include_inactive=True, now=now)
    if not found:
        raise NotFound(f"group {group_id} does not exist")
    return found[0]


async def warnings(conn: asyncpg.Connection | asyncpg.Pool, *, now: datetime | None = None) -> list[dict[str, Any]]:
    """What the board warns about: fewer than the required groups on duty with a vehicle (Order 353
    ch. 3 row 5: at least two mobile groups), a group on a shift without a vehicle."""
    cfg = await dsettings.load(conn)
    groups = await list_groups(conn, now=now)
    out: list[dict[str, Any]] = []
    ready = [g for g in groups if g["on_duty"] and g["vehicles"]]
    if len(ready) < cfg.min_groups_on_duty:
        out.append({"code": "few-groups-on-duty", "on_duty_with_vehicle": len(ready),
                    "required": cfg.min_groups_on_duty,
                    "message": {"kk": f"Кезекшілікте көлігі бар топтар {len(ready)}, кемінде {cfg.min_groups_on_duty} қажет",
                                "ru": f"На дежурстве групп с автомобилем: {len(ready)}, нужно не менее {cfg.min_groups_on_duty}",
                                "en": f"Groups on duty with a vehicle: {len(ready)}; at least {cfg.min_groups_on_duty} required"}})
    for g in groups:
        if g["on_duty"] and not g["vehicles"]:
            out.append({"code": "shift-without-vehicle", "group_id": g["id"], "group": g["name"],
                        "shift_id": g["shift"]["id"],
                        "message": {"kk": f"{g['name']}: кезекшілікте көлік жоқ",
                                    "ru": f"{g['name']}: смена без автомобиля",
                                    "en": f"{g['name']}: shift without a vehicle"}})
    return out
