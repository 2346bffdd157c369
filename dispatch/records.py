"""Response records: the whole timeline of one alarm, and per period and group the figures an
inspector asks for (how many responses, how long to dispatch, how long to arrive). Compliance reads
these to prove Order 353 ch. 3 row 5 from real data.

Time to dispatch = the group dispatched - the alarm received (opened). Time to arrive = on site -
dispatched. Percentiles are continuous (PostgreSQL percentile_cont), in seconds.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import Any

import asyncpg

from console import alarm as alarms
from dispatch import assignment
from dispatch.errors import NotFound


async def alarm_timeline(conn: asyncpg.Connection | asyncpg.Pool, alarm_id: int) -> dict[str, Any]:
    """The alarm, the time of each step (received, acknowledged, first dispatched, accepted, en
    route, on site, finished, closed), its assignments, and every event with who did it."""
    al = await alarms.get(conn, alarm_id)
    if al is None:
        raise NotFound(f"alarm {alarm_id} does not exist")
    history = await alarms.history(conn, alarm_id)
    assignments = await assignment.for_alarm(conn, alarm_id)

    def first(key: str) -> Any:
        times = [a[key] for a in assignments if a[key] is not None]
        return min(times) if times else None

    steps = {"received": al["opened_at"], "acknowledged": al["acknowledged_at"], "dispatched": first("dispatched_at"),
             "accepted": first("accepted_at"), "en_route": first("en_route_at"), "on_site": first("on_site_at"),
             "finished": first("finished_at"), "closed": al["closed_at"]}
    events = [{"at": h["at"], "source": "alarm", "kind": h["kind"], "who": h["username"] or (
        h["detail"].get("actor") if isinstance(h["detail"], dict) else None), "detail": h["detail"],
        "signal_id": h["signal_id"], "code": h["code"], "zone": h["zone"]} for h in history]
    for a in assignments:
        for e in a["events"]:
            events.append({"at": e["at"], "source": "assignment", "kind": e["kind"], "who": e["actor"],
                           "detail": e["detail"], "assignment_id": a["id"], "group": a["group_name"]})
    events.sort(key=lambda e: (str(e["at"]), e["source"] != "alarm"))
    return {"alarm": al, "steps": steps, "assignments": assignments, "events": events}


_STATS = """
WITH a AS (
    SELECT a.group_id, a.status, extract(epoch FROM a.dispatched_at - al.opened_at) AS to_dispatch,
           extract(epoch FROM a.on_site_at - a.dispatched_at) AS to_arrive
    FROM assignments a JOIN alarms al ON al.id = a.alarm_id
    WHERE a.dispatched_at >= $1 AND a.dispatched_at < $2 AND ($3::bigint IS NULL OR a.group_id = $3)
)
SELECT g.id AS group_id, g.name AS group_name, g.call_sign, count(a.group_id) AS count,
       count(*) FILTER (WHERE a.status = 'finished') AS finished,
       count(*) FILTER (WHERE a.status = 'recalled') AS recalled,
       count(a.to_arrive) AS arrived,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY a.to_dispatch) AS dispatch_p50,
       percentile_cont(0.9) WITHIN GROUP (ORDER BY a.to_dispatch) AS dispatch_p90,
       max(a.to_dispatch) AS dispatch_max,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY a.to_arrive) AS arrive_p50,
       percentile_cont(0.9) WITHIN GROUP (ORDER BY a.to_arrive) AS arrive_p90,
       max(a.to_arrive) AS arrive_max
FROM response_groups g LEFT JOIN a ON a.group_id = g.id
WHERE ($3::bigint IS NULL OR g.id = $3) AND (g.active OR a.group_id IS NOT NULL)
GROUP BY g.id, g.name, g.call_sign
ORDER BY g.name
"""

STAT_COLUMNS = ("group_id", "group_name", "call_sign", "count", "finished", "recalled", "arrived",
                "dispatch_p50", "dispatch_p90", "dispatch_max", "arrive_p50", "arrive_p90", "arrive_max")


def _num(v: Any) -> Any:
    return round(float(v), 1) if v is not None and not isinstance(v, int | str) else v


async def response_stats(conn: asyncpg.Connection | asyncpg.Pool, since: datetime, until: datetime,
                         group_id: int | None = None) -> list[dict[str, Any]]:
    """Per group, assignments dispatched in [since, until): count, finished, recalled, arrived,
    time to dispatch and time to arrive (p50 / p90 / max seconds; None when there is nothing)."""
    rows = await conn.fetch(_STATS, since, until, group_id)
    return [{k: _num(r[k]) for k in STAT_COLUMNS} for r in rows]


async def assignments_in(conn: asyncpg.Connection | asyncpg.Pool, since: datetime, until: datetime,
                         group_id: int | None = None, limit: int = 10000) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT a.id, a.alarm_id, a.group_id, g.name AS group_name, o.name AS object_name, al.opened_at,"
        " a.dispatched_at, a.accepted_at, a.en_route_at, a.on_site_at, a.finished_at, a.recalled_at,"
        " a.recall_reason, a.status, a.outcome, a.distance_km, a.eta_minutes,"
        " extract(epoch FROM a.dispatched_at - al.opened_at) AS to_dispatch,"
        " extract(epoch FROM a.on_site_at - a.dispatched_at) AS to_arrive"
        " FROM assignments a JOIN response_groups g ON g.id = a.group_id JOIN alarms al ON al.id = a.alarm_id"
        " LEFT JOIN guarded_objects o ON o.id = al.object_id"
        " WHERE a.dispatched_at >= $1 AND a.dispatched_at < $2 AND ($3::bigint IS NULL OR a.group_id = $3)"
        " ORDER BY a.dispatched_at LIMIT $4", since, until, group_id, limit)
    return [{k: _num(v) if k in ("to_dispatch", "to_arrive") else v for k, v in dict(r).items()} for r in rows]


def stats_csv(rows: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow(STAT_COLUMNS)
    for r in rows:
        w.writerow(["" if r[k] is None else r[k] for k in STAT_COLUMNS])
    return out.getvalue()
