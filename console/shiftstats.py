"""Shift figures: who was on duty, and per operator and for the whole post how many alarms were
acknowledged and closed and how fast (seconds from opening to acknowledging / closing: p50, p90, max).

Shifts are a setting (`shifts = ["08:00-20:00", "20:00-08:00"]`, local times of the post's time
zone); a shift that ends at or before its start runs past midnight. A report covers any interval;
`shift_at` gives the shift around a moment, `shift_on` the n-th shift starting on a day.

"On duty" is read from the audit trail (logins and logouts) and the sessions still open: an
operator is on duty in an interval if they logged in during it or were logged in when it began.
An alarm counts for the operator who acknowledged it (time to acknowledge) and for the one who
closed it (time to close), in the interval where that step happened.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, TypeAlias
from zoneinfo import ZoneInfo

import asyncpg

Conn: TypeAlias = asyncpg.Connection | asyncpg.Pool

DEFAULT_SHIFTS = ("08:00-20:00", "20:00-08:00")


@dataclass(frozen=True, slots=True)
class Shift:
    name: str  # "08:00-20:00"
    start: datetime  # aware, UTC-comparable
    end: datetime


def parse_shifts(specs: tuple[str, ...] | list[str]) -> list[tuple[time, time]]:
    """["08:00-20:00", ...] -> [(08:00, 20:00), ...]; ValueError naming the bad one."""
    out = []
    for spec in specs:
        try:
            a, b = spec.split("-")
            out.append((time.fromisoformat(a.strip()), time.fromisoformat(b.strip())))
        except ValueError:
            raise ValueError(f"shifts: {spec!r} is not HH:MM-HH:MM") from None
    if not out:
        raise ValueError("shifts: at least one shift")
    return out


def _shift(day: date, start: time, end: time, tz: ZoneInfo) -> Shift:
    s = datetime.combine(day, start, tz)
    e = datetime.combine(day + timedelta(days=1) if end <= start else day, end, tz)
    return Shift(f"{start:%H:%M}-{end:%H:%M}", s, e)


def shift_at(moment: datetime, tz_name: str, specs: tuple[str, ...] | list[str] = DEFAULT_SHIFTS) -> Shift:
    """The shift that contains `moment` (if the settings leave a gap, the latest that started)."""
    tz = ZoneInfo(tz_name)
    local = moment.astimezone(tz)
    candidates = [_shift(local.date() + timedelta(days=d), a, b, tz)
                  for d in (-1, 0) for a, b in parse_shifts(specs)]
    inside = [s for s in candidates if s.start <= moment < s.end]
    if inside:
        return inside[-1]
    started = [s for s in candidates if s.start <= moment]
    return max(started, key=lambda s: s.start)


def shift_on(day: date, index: int, tz_name: str, specs: tuple[str, ...] | list[str] = DEFAULT_SHIFTS) -> Shift:
    """The `index`-th shift (0-based, in the settings' order) that starts on `day`."""
    shifts = parse_shifts(specs)
    if not 0 <= index < len(shifts):
        raise ValueError(f"shift: 0 to {len(shifts) - 1}")
    a, b = shifts[index]
    return _shift(day, a, b, ZoneInfo(tz_name))


_FIGURES = """
SELECT {who} AS user_id, count(*) AS n,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY s) AS p50,
       percentile_cont(0.9) WITHIN GROUP (ORDER BY s) AS p90,
       max(s) AS max
FROM (SELECT {who}, extract(epoch FROM {at} - opened_at)::float8 AS s FROM alarms
      WHERE {at} >= $1 AND {at} < $2 AND {who} IS NOT NULL) t
GROUP BY GROUPING SETS (({who}), ())
"""


def _fig(row: asyncpg.Record | None) -> dict[str, Any]:
    if row is None:
        return {"count": 0, "p50": None, "p90": None, "max": None}
    return {"count": row["n"], "p50": row["p50"], "p90": row["p90"], "max": row["max"]}


async def report(conn: Conn, since: datetime, until: datetime) -> dict[str, Any]:
    """Figures for [since, until): {"from", "to", "totals", "operators": [...], "opened"}."""
    acks = await conn.fetch(_FIGURES.format(who="acknowledged_by", at="acknowledged_at"), since, until)
    closes = await conn.fetch(_FIGURES.format(who="closed_by", at="closed_at"), since, until)
    opened = await conn.fetchval("SELECT count(*) FROM alarms WHERE opened_at >= $1 AND opened_at < $2", since, until)
    still_open = await conn.fetchval("SELECT count(*) FROM alarms WHERE opened_at < $2 AND"
                                     " (closed_at IS NULL OR closed_at >= $2) AND opened_at >= $1", since, until)
    duty = await conn.fetch(
        """
        WITH ev AS (
            SELECT entity_id::bigint AS user_id, action, at FROM audit_log
            WHERE action IN ('user.login', 'user.logout') AND entity = 'user' AND entity_id ~ '^[0-9]+$'
              AND at >= $1 AND at < $2
        ), before_start AS (  -- still logged in when the interval began
            SELECT DISTINCT user_id FROM sessions WHERE created_at < $1 AND expires_at > $1
        ), acted AS (
            SELECT DISTINCT user_id FROM alarm_events WHERE user_id IS NOT NULL AND at >= $1 AND at < $2
        )
        SELECT u.id AS user_id, u.username, u.full_name, u.role,
               (SELECT min(at) FROM ev WHERE ev.user_id = u.id AND action = 'user.login') AS first_login,
               (SELECT max(at) FROM ev WHERE ev.user_id = u.id AND action = 'user.logout') AS last_logout,
               (SELECT count(*) FROM ev WHERE ev.user_id = u.id AND action = 'user.login') AS logins,
               u.id IN (SELECT user_id FROM before_start) AS on_at_start,
               EXISTS (SELECT 1 FROM sessions s WHERE s.user_id = u.id AND s.expires_at > now()) AS logged_in_now
        FROM users u
        WHERE u.role IN ('operator', 'admin')
          AND (u.id IN (SELECT user_id FROM ev) OR u.id IN (SELECT user_id FROM before_start)
               OR u.id IN (SELECT user_id FROM acted)
               OR u.id IN (SELECT acknowledged_by FROM alarms WHERE acknowledged_at >= $1 AND acknowledged_at < $2)
               OR u.id IN (SELECT closed_by FROM alarms WHERE closed_at >= $1 AND closed_at < $2))
        ORDER BY u.username
        """, since, until)
    ack_by = {r["user_id"]: r for r in acks}
    close_by = {r["user_id"]: r for r in closes}
    operators = []
    for d in duty:
        operators.append({
            "user_id": d["user_id"], "username": d["username"], "full_name": d["full_name"], "role": d["role"],
            "first_login": d["first_login"], "last_logout": d["last_logout"], "logins": d["logins"],
            "on_at_start": d["on_at_start"], "logged_in_now": d["logged_in_now"],
            "acknowledged": _fig(ack_by.get(d["user_id"])), "closed": _fig(close_by.get(d["user_id"])),
        })
    return {"from": since, "to": until, "opened": opened, "still_open": still_open,
            "totals": {"acknowledged": _fig(ack_by.get(None)), "closed": _fig(close_by.get(None))},
            "operators": operators}


REPORT_CSV = ("from", "to", "username", "full_name", "first_login", "last_logout", "acknowledged", "ack_p50_s",
              "ack_p90_s", "ack_max_s", "closed", "close_p50_s", "close_p90_s", "close_max_s")


def report_rows(rep: dict[str, Any]) -> list[dict[str, Any]]:
    """The report flattened: one row per operator, then one for the whole post (username "*")."""
    rows = []
    for o in [*rep["operators"], {"username": "*", "full_name": "", "first_login": None, "last_logout": None,
                                   **rep["totals"]}]:
        a, c = o["acknowledged"], o["closed"]
        rows.append({"from": rep["from"], "to": rep["to"], "username": o["username"], "full_name": o["full_name"],
                     "first_login": o["first_login"], "last_logout": o["last_logout"],
                     "acknowledged": a["count"], "ack_p50_s": a["p50"], "ack_p90_s": a["p90"], "ack_max_s": a["max"],
                     "closed": c["count"], "close_p50_s": c["p50"], "close_p90_s": c["p90"], "close_max_s": c["max"]})
    return rows
