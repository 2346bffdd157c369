"""Assignments: a group sent to an alarm, and each step of its response.

Steps in order: new (dispatched) -> accepted -> en-route -> on-site -> finished (with an outcome),
or recalled by the operator (with a reason) at any point before finished. Every step is an
`assignment_events` row (at most one per step: a phone's retry after a lost answer is recognised
and answered with the current state, not recorded twice), an alarm event (the alarm's timeline),
an audit entry, and a notification for the board and the crew's phone.

A group answers one alarm at a time; the partial unique index `assignments_one_active_per_group`
decides between two operators sending the same group at the same moment. The alarm follows the
response: dispatched while a group is on its way, on-site once one is there, acknowledged again when
every group was recalled, closed with the crew's outcome when the last group finishes.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from console import alarm as alarms
from console import audit, guarded_object, handling
from console.alarm import Actor
from dispatch import group as groups
from dispatch import notify, position
from dispatch import settings as dsettings
from dispatch.errors import Conflict, Forbidden, Invalid, NotFound

STEPS = ("new", "accepted", "en-route", "on-site", "finished")
CREW_STEPS = STEPS[1:]
ACTIVE = groups.ACTIVE
OUTCOMES = alarms.OUTCOMES
_COLUMN = {"accepted": "accepted", "en-route": "en_route", "on-site": "on_site", "finished": "finished"}

_SELECT = """
SELECT a.id, a.alarm_id, a.group_id, g.name AS group_name, g.call_sign, a.shift_id, a.vehicle_id, v.plate,
       a.status, a.distance_km, a.eta_minutes, a.dispatched_at, a.accepted_at, a.en_route_at, a.on_site_at,
       a.finished_at, a.recalled_at, a.recall_reason, a.outcome, a.report, a.arrive_deadline,
       a.accept_alerted_at, a.arrive_alerted_at, al.state AS alarm_state, al.object_id,
       o.name AS object_name, o.address, o.latitude AS lat, o.longitude AS lon,
       coalesce((SELECT json_agg(json_build_object('id', e.id, 'kind', e.kind, 'at', e.at, 'user_id', e.user_id,
                                                   'actor', e.actor, 'detail', e.detail) ORDER BY e.id)
                 FROM assignment_events e WHERE e.assignment_id = a.id), '[]') AS events
FROM assignments a
JOIN response_groups g ON g.id = a.group_id
JOIN alarms al ON al.id = a.alarm_id
LEFT JOIN guarded_objects o ON o.id = al.object_id
LEFT JOIN vehicles v ON v.id = a.vehicle_id
"""


def _shape(r: asyncpg.Record) -> dict[str, Any]:
    d = dict(r)
    events = d["events"]
    steps: dict[str, Any] = {}
    for e in events:
        if e["kind"] in STEPS[1:] + ("dispatched", "recalled"):
            steps[e["kind"]] = {"at": e["at"], "by": e["actor"]}
    d["steps"] = steps
    return d


async def get(conn: asyncpg.Connection | asyncpg.Pool, assignment_id: int) -> dict[str, Any]:
    r = await conn.fetchrow(_SELECT + " WHERE a.id = $1", assignment_id)
    if r is None:
        raise NotFound(f"assignment {assignment_id} does not exist")
    return _shape(r)


async def get_many(conn: asyncpg.Connection | asyncpg.Pool, ids: list[int]) -> list[dict[str, Any]]:
    rows = await conn.fetch(_SELECT + " JOIN unnest($1::bigint[]) AS q(id) ON q.id = a.id ORDER BY a.id", ids)
    return [_shape(r) for r in rows]


async def for_alarm(conn: asyncpg.Connection | asyncpg.Pool, alarm_id: int) -> list[dict[str, Any]]:
    rows = await conn.fetch(_SELECT + " WHERE a.alarm_id = $1 ORDER BY a.id", alarm_id)
    return [_shape(r) for r in rows]


async def active_for_group(conn: asyncpg.Connection | asyncpg.Pool, group_id: int) -> dict[str, Any] | None:
    r = await conn.fetchrow(_SELECT + " WHERE a.group_id = $1 AND a.status = ANY($2::text[])", group_id, list(ACTIVE))
    return _shape(r) if r else None


def _origin(g: dict[str, Any], fresh: int) -> tuple[float, float, str] | None:
    """Where a group is: its phone's position if recent enough, else its base."""
    p = g["position"]
    if p is not None and p["age_seconds"] <= fresh:
        return p["lat"], p["lon"], "position"
    if g["latitude"] is not None and g["longitude"] is not None:
        return g["latitude"], g["longitude"], "base"
    return None


def _distance(g: dict[str, Any], lat: float | None, lon: float | None,
              cfg: dsettings.DispatchSettings) -> tuple[float | None, float | None, str | None]:
    origin = _origin(g, cfg.position_fresh)
    if origin is None or lat is None or lon is None:
        return None, None, origin[2] if origin else None
    km = position.haversine_km(origin[0], origin[1], lat, lon)
    return km, position.eta_minutes(km, cfg.average_speed_kmh), origin[2]


async def _alarm_row(conn: asyncpg.Connection | asyncpg.Pool, alarm_id: int) -> asyncpg.Record:
    r = await conn.fetchrow("SELECT al.id, al.state, al.object_id, o.name, o.latitude, o.longitude FROM alarms al"
                            " LEFT JOIN guarded_objects o ON o.id = al.object_id WHERE al.id = $1", alarm_id)
    if r is None:
        raise NotFound(f"alarm {alarm_id} does not exist")
    return r


async def suggest(conn: asyncpg.Connection | asyncpg.Pool, alarm_id: int) -> dict[str, Any]:
    """The on-duty groups by straight-line distance to the alarm's object (from each group's recent
    position, else its base), with an ETA at the post's average speed; `suggested` is the nearest
    available one (None when none is available)."""
    al = await _alarm_row(conn, alarm_id)
    cfg = await dsettings.load(conn)
    out = []
    for g in await groups.list_groups(conn):
        if not g["on_duty"]:
            continue
        km, eta, origin = _distance(g, al["latitude"], al["longitude"], cfg)
        out.append({"group_id": g["id"], "name": g["name"], "call_sign": g["call_sign"], "state": g["state"],
                    "available": g["available"], "distance_km": km, "eta_minutes": eta, "from": origin,
                    "vehicles": g["vehicles"]})
    out.sort(key=lambda s: (not s["available"], s["distance_km"] is None, s["distance_km"] or 0.0, s["name"]))
    best = next((s["group_id"] for s in out if s["available"]), None)
    return {"alarm_id": alarm_id, "object": {"id": al["object_id"], "name": al["name"], "lat": al["latitude"],
                                             "lon": al["longitude"]},
            "average_speed_kmh": cfg.average_speed_kmh, "groups": out, "suggested": best}


async def _alarm_state_after(conn: asyncpg.Connection, alarm_id: int) -> str:
    statuses = {r["status"] for r in await conn.fetch(
        "SELECT status FROM assignments WHERE alarm_id = $1 AND status = ANY($2::text[])", alarm_id, list(ACTIVE))}
    if "on-site" in statuses:
        return "on-site"
    return "dispatched" if statuses else "acknowledged"


async def _event(conn: asyncpg.Connection, assignment_id: int, kind: str, actor: Actor, at: datetime,
                 detail: dict[str, Any]) -> None:
    await conn.execute("INSERT INTO assignment_events (assignment_id, at, kind, user_id, actor, detail)"
                       " VALUES ($1, $2, $3, $4, $5, $6)", assignment_id, at, kind, actor.user_id, actor.name, detail)


async def dispatch(conn: asyncpg.Connection, alarm_id: int, group_id: int, actor: Actor) -> dict[str, Any]:
    """Send a group to an alarm. Conflict when the alarm is closed or the group is not available
    (off duty, or busy — also when another operator sent it a moment ago)."""
    cfg = await dsettings.load(conn)
    now = datetime.now(UTC)
    async with conn.transaction():
        state = await conn.fetchval("SELECT state FROM alarms WHERE id = $1 FOR UPDATE", alarm_id)
        if state is None:
            raise NotFound(f"alarm {alarm_id} does not exist")
        if state == "closed":
            raise Conflict(f"alarm {alarm_id} is closed")
        al = await _alarm_row(conn, alarm_id)
        found = await groups.list_groups(conn, ids=[group_id], now=now)
        if not found:
            raise NotFound(f"group {group_id} does not exist")
        g = found[0]
        if not g["available"]:
            raise Conflict(f"group {g['name']} is not available ({g['state']})")
        km, eta, origin = _distance(g, al["latitude"], al["longitude"], cfg)
        rt = (await dsettings.object_response_time(conn, al["object_id"]) if al["object_id"] else None) \
            or cfg.response_time
        vehicle_id = g["vehicles"][0]["id"] if g["vehicles"] else None
        try:
            assignment_id: int = await conn.fetchval(
                "INSERT INTO assignments (alarm_id, group_id, shift_id, vehicle_id, distance_km, eta_minutes,"
                " dispatched_at, dispatched_by, arrive_deadline) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
                " RETURNING id", alarm_id, group_id, g["shift"]["id"] if g["shift"] else None, vehicle_id, km, eta,
                now, actor.user_id, now + timedelta(seconds=rt))
        except asyncpg.UniqueViolationError:
            raise Conflict(f"group {g['name']} was just sent to another alarm") from None
        detail = {"assignment_id": assignment_id, "group_id": group_id, "group": g["name"],
                  "distance_km": km, "eta_minutes": eta, "from": origin}
        await _event(conn, assignment_id, "dispatched", actor, now, detail)
        await audit.append(conn, [audit.Entry(actor.name, "assignment.dispatched", "assignment", str(assignment_id),
                                              {"alarm_id": alarm_id, **detail}, now)])
        await alarms.record_response(conn, alarm_id, actor, "dispatched", detail,
                                     state=await _alarm_state_after(conn, alarm_id))
        await notify.notify(conn, groups=[group_id], assignments=[assignment_id])
    return await get(conn, assignment_id)


async def set_status(conn: asyncpg.Connection, assignment_id: int, status: str, actor: Actor, *,
                     crew_of: int | None = None, as_crew: bool = False, outcome: str | None = None,
                     report: str = "", request_id: str | None = None) -> tuple[dict[str, Any], bool]:
    """Record the crew's next step. `as_crew`: the actor is a crew member of group `crew_of` and may
    only move that group's assignments. Returns (assignment, recorded): a step already recorded is
    not recorded again (recorded=False) — the phone's retry of a step whose answer it never got."""
    if status not in CREW_STEPS:
        raise Invalid("status", f"one of {', '.join(CREW_STEPS)}")
    now = datetime.now(UTC)
    async with conn.transaction():
        a = await conn.fetchrow("SELECT a.*, g.name AS group_name FROM assignments a JOIN response_groups g"
                                " ON g.id = a.group_id WHERE a.id = $1 FOR UPDATE OF a", assignment_id)
        if a is None:
            raise NotFound(f"assignment {assignment_id} does not exist")
        if as_crew and (crew_of is None or a["group_id"] != crew_of):
            raise Forbidden(f"assignment {assignment_id} belongs to another group")
        if await conn.fetchval("SELECT 1 FROM assignment_events WHERE assignment_id = $1 AND kind = $2",
                               assignment_id, status):
            return await get(conn, assignment_id), False
        if a["status"] not in ACTIVE:
            raise Conflict(f"assignment {assignment_id} is {a['status']}")
        expected = STEPS[STEPS.index(a["status"]) + 1]
        if status != expected:
            raise Conflict(f"assignment {assignment_id} is {a['status']}: the next step is {expected}, not {status}")
        if status == "finished" and outcome not in OUTCOMES:
            raise Invalid("outcome", f"required to finish: one of {', '.join(OUTCOMES)}")
        col = _COLUMN[status]
        await conn.execute(f"UPDATE assignments SET status = $2, {col}_at = $3, {col}_by = $4,"
                           " outcome = coalesce($5, outcome), report = coalesce($6, report) WHERE id = $1",
                           assignment_id, status, now, actor.user_id,
                           outcome if status == "finished" else None, report if status == "finished" else None)
        detail: dict[str, Any] = {"assignment_id": assignment_id, "group_id": a["group_id"], "group": a["group_name"]}
        if status == "finished":
            detail |= {"outcome": outcome, "report": report}
        if request_id:
            detail["request_id"] = request_id
        await _event(conn, assignment_id, status, actor, now, detail)
        await audit.append(conn, [audit.Entry(actor.name, f"assignment.{status}", "assignment", str(assignment_id),
                                              {"alarm_id": a["alarm_id"], **detail}, now)])
        alarm_id = a["alarm_id"]
        state = await _alarm_state_after(conn, alarm_id)
        after = await alarms.record_response(conn, alarm_id, actor, status, detail, state=state)
        if status == "finished" and after != "closed" and state == "acknowledged" and outcome is not None \
                and all(i["done"] for i in await handling.checklist(conn, alarm_id)):
            # The last group finished and the operator's checklist is done: the alarm closes with
            # the crew's outcome and report. Otherwise the operator closes it (the checklist gates that).
            await alarms.close(conn, alarm_id, actor, outcome, report)
        await notify.notify(conn, groups=[a["group_id"]], assignments=[assignment_id])
    return await get(conn, assignment_id), True


async def recall(conn: asyncpg.Connection, assignment_id: int, actor: Actor, reason: str) -> dict[str, Any]:
    now = datetime.now(UTC)
    async with conn.transaction():
        a = await conn.fetchrow("SELECT a.*, g.name AS group_name FROM assignments a JOIN response_groups g"
                                " ON g.id = a.group_id WHERE a.id = $1 FOR UPDATE OF a", assignment_id)
        if a is None:
            raise NotFound(f"assignment {assignment_id} does not exist")
        if a["status"] not in ACTIVE:
            raise Conflict(f"assignment {assignment_id} is {a['status']}; only an active one can be recalled")
        await conn.execute("UPDATE assignments SET status = 'recalled', recalled_at = $2, recalled_by = $3,"
                           " recall_reason = $4 WHERE id = $1", assignment_id, now, actor.user_id, reason)
        detail = {"assignment_id": assignment_id, "group_id": a["group_id"], "group": a["group_name"],
                  "reason": reason, "was": a["status"]}
        await _event(conn, assignment_id, "recalled", actor, now, detail)
        await audit.append(conn, [audit.Entry(actor.name, "assignment.recalled", "assignment", str(assignment_id),
                                              {"alarm_id": a["alarm_id"], **detail}, now)])
        await alarms.record_response(conn, a["alarm_id"], actor, "recalled", detail,
                                     state=await _alarm_state_after(conn, a["alarm_id"]))
        await notify.notify(conn, groups=[a["group_id"]], assignments=[assignment_id])
    return await get(conn, assignment_id)


async def crew_card(conn: asyncpg.Connection | asyncpg.Pool, assignment_id: int) -> dict[str, Any]:
    """What the crew's phone shows: the assignment, the alarm, the object card (address, zones,
    keyholders, instructions), the operators' notes, navigation links."""
    a = await get(conn, assignment_id)
    al = await alarms.get(conn, a["alarm_id"])
    assert al is not None
    obj = await guarded_object.card(conn, a["object_id"]) if a["object_id"] is not None else None
    notes = await conn.fetch("SELECT e.at, e.detail->>'note' AS note, u.username FROM alarm_events e"
                             " LEFT JOIN users u ON u.id = e.user_id WHERE e.alarm_id = $1 AND e.kind = 'note'"
                             " ORDER BY e.id", a["alarm_id"])
    nav = None
    if a["lat"] is not None and a["lon"] is not None:
        # geo: opens the phone's own navigation app; no outside map site unless one is configured
        # ([web] map_url, which the page applies)
        nav = {"geo": f"geo:{a['lat']},{a['lon']}?q={a['lat']},{a['lon']}"}
    card = None
    if obj is not None:
        card = {"id": obj["id"], "name": obj["name"], "address": obj["address"], "lat": obj["latitude"],
                "lon": obj["longitude"], "instructions": obj["instructions"],
                "terror_vulnerable": obj["terror_vulnerable"], "zones": obj["zones"], "contacts": obj["contacts"]}
    return {**a, "alarm": {"id": al["id"], "title": al["title"], "kind": al["kind"], "klass": al["klass"],
                           "priority": al["priority"], "state": al["state"], "opened_at": al["opened_at"],
                           "zone": al["last_zone"], "outcome": al["outcome"]},
            "object": card, "notes": [dict(n) for n in notes], "navigation": nav}
