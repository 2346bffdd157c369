"""Rows for the evidence bundle's CSV extracts: signals per panel per day, duty coverage per group per
day, response times, the audit-chain verification. Each function returns a list of flat dicts (one
per CSV line, the keys are the header)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import asyncpg

from compliance import row5
from compliance.result import Ctx
from compliance.settings import ComplianceSettings
from console import audit


def _ctx(conn: asyncpg.Connection, period_from: dt.date, period_to: dt.date, settings: Any) -> Ctx:
    return Ctx(conn, period_from, period_to, ComplianceSettings.load(settings), [], dt.datetime.now(dt.UTC))


def _bounds(ctx: Ctx) -> tuple[dt.datetime, dt.datetime]:
    from compliance.row3 import _bounds as b

    return b(ctx)


async def signals_per_panel_per_day(conn: asyncpg.Connection, *, period_from: dt.date, period_to: dt.date,
                                    settings: Any = None) -> list[dict[str, Any]]:
    ctx = _ctx(conn, period_from, period_to, settings)
    start, end = _bounds(ctx)
    rows = await conn.fetch(
        "SELECT (s.received_at AT TIME ZONE $3)::date AS day, s.account, min(o.name) AS object, count(*) AS signals"
        " FROM signals s LEFT JOIN accounts a ON a.number = s.account AND a.prefix = ''"
        " LEFT JOIN guarded_objects o ON o.id = a.object_id"
        " WHERE s.received_at >= $1 AND s.received_at < $2 GROUP BY 1, 2 ORDER BY 1, 2",
        start, end, ctx.settings.timezone)
    return [{"day": r["day"].isoformat(), "account": r["account"], "object": r["object"] or "",
             "signals": r["signals"]} for r in rows]


async def duty_coverage_per_group_per_day(conn: asyncpg.Connection, *, period_from: dt.date, period_to: dt.date,
                                          settings: Any = None) -> list[dict[str, Any]]:
    """Minutes each group was on duty each day, and the minutes with at least two groups on duty."""
    ctx = _ctx(conn, period_from, period_to, settings)
    if not await conn.fetchval("SELECT to_regclass('public.duty_shifts') IS NOT NULL"):
        return []
    from zoneinfo import ZoneInfo

    tz = ZoneInfo(ctx.settings.timezone)
    groups = {r["id"]: r["name"] for r in await conn.fetch("SELECT id, name FROM response_groups")}
    out: list[dict[str, Any]] = []
    day = period_from
    while day <= period_to:
        a = dt.datetime.combine(day, dt.time(), tz)
        b = min(a + dt.timedelta(days=1), ctx.now)
        if b <= a:
            break
        spans = [(r["group_id"], r["s"], r["e"]) for r in await conn.fetch(
            "SELECT group_id, greatest(starts_at, $1) AS s, least(ends_at, $2) AS e FROM duty_shifts"
            " WHERE cancelled_at IS NULL AND starts_at < $2 AND ends_at > $1", a, b)]
        pct, _gaps = row5.sweep(spans, a, b)
        minutes = (b - a).total_seconds() / 60
        for gid, name in sorted(groups.items()):
            on = sum(((e - s).total_seconds() for g, s, e in spans if g == gid), 0.0) / 60
            out.append({"day": day.isoformat(), "group": name, "minutes_on_duty": round(min(on, minutes)),
                        "minutes_in_day": round(minutes), "two_groups_pct": round(pct, 2)})
        day += dt.timedelta(days=1)
    return out


async def response_times(conn: asyncpg.Connection, *, period_from: dt.date, period_to: dt.date,
                         settings: Any = None) -> list[dict[str, Any]]:
    ctx = _ctx(conn, period_from, period_to, settings)
    rows = await row5.response_rows(ctx)

    def iso(v: Any) -> str:
        return v.isoformat() if v is not None else ""

    return [{"alarm_id": r["alarm_id"], "object": r["object"] or "", "priority": r["priority"],
             "opened_at": iso(r["opened_at"]), "acknowledged_at": iso(r["acknowledged_at"]),
             "dispatched_at": iso(r["dispatched_at"]), "arrived_at": iso(r["arrived_at"]),
             "closed_at": iso(r["closed_at"]), "ack_seconds": r["ack_seconds"] if r["ack_seconds"] is not None else "",
             "arrival_seconds": r["arrival_seconds"] if r["arrival_seconds"] is not None else "",
             "outcome": r["outcome"] or ""} for r in rows]


async def audit_chain(conn: asyncpg.Connection) -> list[dict[str, Any]]:
    v = await audit.verify(conn)
    last = await conn.fetchrow("SELECT id, at, hash FROM audit_log ORDER BY id DESC LIMIT 1")
    return [{"verified_at": dt.datetime.now(dt.UTC).isoformat(), "entries": v.entries, "intact": v.ok,
             "first_bad_id": v.first_bad_id or "", "reason": v.reason,
             "last_id": last["id"] if last else "", "last_at": last["at"].isoformat() if last else "",
             "last_hash": last["hash"].hex() if last else ""}]
