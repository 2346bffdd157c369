"""Timers and escalation: a crew that has not accepted within `accept_timeout`, or is not on site by
its object's response time, raises an alert for the operator (an assignment event, an alarm event
on the alarm's timeline, an audit entry, and a board message). Each alert is raised once per
assignment (`accept_alerted_at` / `arrive_alerted_at`); the operator may then recall and re-dispatch.

`sweep` runs in one transaction and takes the rows with SKIP LOCKED, so any number of processes may
run it; `DispatchTimers` runs it every `interval` seconds in the runtime, and also tells the board
when a group's state changes only because time passed (a shift began or ended, "returning" ran out).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime
from typing import Any

import asyncpg

from console import alarm as alarms
from console import audit
from console.alarm import Actor
from dispatch import group as groups
from dispatch import notify
from dispatch import settings as dsettings

log = logging.getLogger("kuzet.dispatch.timers")

ACTOR = Actor(None, "system:dispatch-timers")

_ACCEPT = """
UPDATE assignments a SET accept_alerted_at = $2
FROM (SELECT id FROM assignments WHERE status = 'new' AND accept_alerted_at IS NULL
        AND dispatched_at + make_interval(secs => $1) <= $2 FOR UPDATE SKIP LOCKED) q,
     response_groups g
WHERE a.id = q.id AND g.id = a.group_id
RETURNING a.id, a.alarm_id, a.group_id, g.name AS group_name, a.dispatched_at
"""

_ARRIVE = """
UPDATE assignments a SET arrive_alerted_at = $1
FROM (SELECT id FROM assignments WHERE status IN ('new', 'accepted', 'en-route') AND arrive_alerted_at IS NULL
        AND arrive_deadline <= $1 FOR UPDATE SKIP LOCKED) q,
     response_groups g
WHERE a.id = q.id AND g.id = a.group_id
RETURNING a.id, a.alarm_id, a.group_id, g.name AS group_name, a.dispatched_at, a.arrive_deadline
"""


async def sweep(conn: asyncpg.Connection, now: datetime | None = None) -> list[dict[str, Any]]:
    """Raise the alerts that are due; returns them."""
    now = now or datetime.now(UTC)
    cfg = await dsettings.load(conn)
    alerts: list[dict[str, Any]] = []
    async with conn.transaction():
        for kind, rows in (("accept-overdue", await conn.fetch(_ACCEPT, float(cfg.accept_timeout), now)),
                           ("arrive-overdue", await conn.fetch(_ARRIVE, now))):
            for r in rows:
                detail = {"assignment_id": r["id"], "group_id": r["group_id"], "group": r["group_name"],
                          "dispatched_at": r["dispatched_at"].isoformat(),
                          "minutes": round((now - r["dispatched_at"]).total_seconds() / 60, 1)}
                await conn.execute("INSERT INTO assignment_events (assignment_id, at, kind, actor, detail)"
                                   " VALUES ($1, $2, $3, $4, $5)", r["id"], now, kind, ACTOR.name, detail)
                await audit.append(conn, [audit.Entry(ACTOR.name, f"assignment.{kind}", "assignment", str(r["id"]),
                                                      {"alarm_id": r["alarm_id"], **detail}, now)])
                await alarms.record_response(conn, r["alarm_id"], ACTOR, kind, detail)
                alerts.append({"kind": kind, "alarm_id": r["alarm_id"], "at": now.isoformat(), **detail})
        if alerts:
            await notify.notify(conn, groups=[a["group_id"] for a in alerts],
                                assignments=[a["assignment_id"] for a in alerts], alerts=alerts)
    return alerts


class DispatchTimers:
    """Runs `sweep` every `interval` seconds (started by the runtime, like the Supervisor)."""

    def __init__(self, pool: asyncpg.Pool, interval: float = 5.0) -> None:
        self.pool = pool
        self.interval = interval
        self.sweeps = 0
        self.alerts = 0
        self._states: dict[int, str] = {}
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="dispatch-timers")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def run_once(self) -> list[dict[str, Any]]:
        async with self.pool.acquire() as conn:
            alerts = await sweep(conn)
            states = {g["id"]: g["state"] for g in await groups.list_groups(conn)}
            changed = [gid for gid, s in states.items() if self._states.get(gid) != s]
            if changed and self._states:
                await notify.notify(conn, groups=changed)
            self._states = states
        self.sweeps += 1
        self.alerts += len(alerts)
        return alerts

    async def _run(self) -> None:
        while True:
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database went away: try again next round
                log.warning("dispatch timers: %s", exc)
            await asyncio.sleep(self.interval)
