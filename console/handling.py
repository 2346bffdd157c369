"""Handling alarms over a shift: who works on an alarm, taking one over, handing all over at shift
change, holds with a reason and a time limit, calls to keyholders, and the object's instructions
as a checklist that gates closing.

Rules (decided for 24/7 operators):
- Acknowledging takes the alarm. `take` on a new alarm acknowledges it.
- An alarm someone else handles is taken over only on purpose: `take`, `hold` and `close` by another
  operator raise `HandledElsewhere` (the web answers 409 naming who handles it) unless `takeover`.
  An alarm in the pool (nobody handles it) is free for anyone.
- Hand-over moves every open alarm an operator handles to another operator, or to the pool.
- A hold needs a reason and a limit (3 seconds .. 12 hours; the page offers 1 .. 60 minutes); the alarm engine brings it back when the
  limit runs out (`console.alarm.release_expired_holds`), on top of its priority band.
- The checklist is the object's instructions, one item per non-empty line; ticks are alarm events.
  Closing needs every item ticked or a reason why not.
Every action is an alarm event and an audit entry, in one transaction.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from console import alarm as alarms
from console import audit
from console.alarm import Actor, AlarmError

HOLD_MIN = timedelta(seconds=3)  # the page offers 1-60 minutes; seconds are for drills and tests
HOLD_MAX = timedelta(hours=12)
CALL_ANSWERS = ("answered", "no-answer", "busy", "wrong-number", "voicemail")
_BULLET = re.compile(r"^\s*(?:[-*•–—]|\d{1,2}[.)])\s*")


class HandledElsewhere(AlarmError):
    """Another operator handles the alarm; the action needs an explicit takeover."""

    def __init__(self, alarm_id: int, username: str, full_name: str) -> None:
        self.alarm_id = alarm_id
        self.username = username
        self.full_name = full_name
        super().__init__(f"alarm {alarm_id} is handled by {username}; take it over explicitly (takeover)")


class ChecklistOpen(AlarmError):
    """Closing with checklist items not done and no reason given."""

    def __init__(self, alarm_id: int, open_items: list[str]) -> None:
        self.open_items = open_items
        super().__init__(f"alarm {alarm_id}: {len(open_items)} checklist item(s) not done; tick them or give a"
                         f" reason (checklist_reason): " + "; ".join(open_items))


async def _lock(conn: asyncpg.Connection, alarm_id: int) -> asyncpg.Record:
    row = await conn.fetchrow(
        "SELECT al.id, al.state, al.handled_by, al.object_id, u.username, u.full_name FROM alarms al"
        " LEFT JOIN users u ON u.id = al.handled_by WHERE al.id = $1 FOR UPDATE OF al", alarm_id)
    if row is None:
        raise AlarmError(f"alarm {alarm_id} does not exist")
    return row


def _check_handler(row: asyncpg.Record, actor: Actor, takeover: bool) -> bool:
    """True if this action takes the alarm over from someone else (allowed only with `takeover`)."""
    if row["handled_by"] is None or row["handled_by"] == actor.user_id:
        return False
    if not takeover:
        raise HandledElsewhere(row["id"], row["username"], row["full_name"] or "")
    return True


async def _record(conn: asyncpg.Connection, alarm_id: int, actor: Actor, kind: str, detail: dict[str, Any],
                  now: datetime) -> None:
    await conn.execute("INSERT INTO alarm_events (alarm_id, at, kind, user_id, detail) VALUES ($1, $2, $3, $4, $5)",
                       alarm_id, now, kind, actor.user_id, detail)
    await audit.append(conn, [audit.Entry(actor.name, f"alarm.{kind}", "alarm", str(alarm_id), detail, now)])


async def _result(conn: asyncpg.Connection, alarm_id: int) -> dict[str, Any]:
    found = await alarms.get(conn, alarm_id)
    assert found is not None
    return found


async def take(conn: asyncpg.Connection, alarm_id: int, actor: Actor, *, takeover: bool = False) -> dict[str, Any]:
    """Start handling an alarm (a new one is acknowledged at the same time)."""
    now = datetime.now(UTC)
    async with conn.transaction():
        row = await _lock(conn, alarm_id)
        if row["state"] == "closed":
            raise AlarmError(f"alarm {alarm_id} is closed; cannot take")
        if row["handled_by"] == actor.user_id and row["state"] != "new":
            return await _result(conn, alarm_id)  # already mine: nothing to record
        over = _check_handler(row, actor, takeover)
        if row["state"] == "new":
            await alarms.acknowledge(conn, alarm_id, actor)
        detail: dict[str, Any] = {"from": row["username"]} if over else {}
        await conn.execute("UPDATE alarms SET handled_by = $2, handled_since = $3, recalled_at = NULL,"
                           " updated_at = $3 WHERE id = $1", alarm_id, actor.user_id, now)
        await _record(conn, alarm_id, actor, "taken-over" if over else "taken", detail, now)
        await alarms.notify_alarms(conn, [alarm_id])
    return await _result(conn, alarm_id)


async def acknowledge(conn: asyncpg.Connection, alarm_id: int, actor: Actor, *,
                      takeover: bool = False) -> dict[str, Any]:
    """Acknowledge (and so take) a new alarm; someone else's needs `takeover` like any take."""
    async with conn.transaction():
        row = await _lock(conn, alarm_id)
        if row["state"] != "new":
            raise AlarmError(f"alarm {alarm_id} is {row['state']}; cannot acknowledged")
        if _check_handler(row, actor, takeover):
            return await take(conn, alarm_id, actor, takeover=True)
        return await alarms.acknowledge(conn, alarm_id, actor)


async def release(conn: asyncpg.Connection, alarm_id: int, actor: Actor) -> dict[str, Any]:
    """Give an alarm back to the pool (only its handler may)."""
    now = datetime.now(UTC)
    async with conn.transaction():
        row = await _lock(conn, alarm_id)
        if row["state"] == "closed":
            raise AlarmError(f"alarm {alarm_id} is closed; cannot release")
        if row["handled_by"] != actor.user_id:
            raise AlarmError(f"alarm {alarm_id} is not handled by {actor.name}; cannot release")
        await conn.execute("UPDATE alarms SET handled_by = NULL, handled_since = NULL, updated_at = $2"
                           " WHERE id = $1", alarm_id, now)
        await _record(conn, alarm_id, actor, "released", {}, now)
        await alarms.notify_alarms(conn, [alarm_id])
    return await _result(conn, alarm_id)


async def hand_over(conn: asyncpg.Connection, actor: Actor, to_user: int | None) -> dict[str, Any]:
    """Shift change: every open alarm `actor` handles goes to `to_user` (an active operator or
    admin) or, with None, to the pool. Returns {"count": n, "alarm_ids": [...], "to": username|None}."""
    now = datetime.now(UTC)
    async with conn.transaction():
        to_name: str | None = None
        if to_user is not None:
            target = await conn.fetchrow("SELECT username, role, active FROM users WHERE id = $1", to_user)
            if target is None or not target["active"]:
                raise AlarmError(f"user {to_user} does not exist or is disabled")
            if target["role"] not in ("operator", "admin"):
                raise AlarmError(f"user {target['username']} is a {target['role']}; alarms go to operators")
            to_name = target["username"]
            if to_user == actor.user_id:
                raise AlarmError("cannot hand alarms over to yourself")
        ids = [r["id"] for r in await conn.fetch(
            "UPDATE alarms SET handled_by = $2, handled_since = CASE WHEN $2::bigint IS NULL THEN NULL ELSE $3::timestamptz END,"
            " updated_at = $3 WHERE handled_by = $1 AND state <> 'closed' RETURNING id",
            actor.user_id, to_user, now)]
        ids.sort()
        detail = {"to": to_name}
        if ids:
            await conn.executemany(
                "INSERT INTO alarm_events (alarm_id, at, kind, user_id, detail) VALUES ($1, $2, 'handed-over', $3, $4)",
                [(i, now, actor.user_id, detail) for i in ids])
        await audit.append(conn, [audit.Entry(actor.name, "alarm.hand-over", "user", str(actor.user_id),
                                              {"to": to_name, "alarm_ids": ids}, now)])
        await alarms.notify_alarms(conn, ids)
    return {"count": len(ids), "alarm_ids": ids, "to": to_name}


async def hold(conn: asyncpg.Connection, alarm_id: int, actor: Actor, *, reason: str, minutes: float,
               takeover: bool = False) -> dict[str, Any]:
    """Put an open alarm aside for `minutes` with a reason; the operator keeps handling it."""
    limit = timedelta(minutes=minutes)
    if not reason.strip():
        raise ValueError("reason: a hold needs a reason")
    if not HOLD_MIN <= limit <= HOLD_MAX:
        raise ValueError("minutes: a hold lasts 0.05 to 720 minutes")
    return await _hold(conn, alarm_id, actor, reason.strip(), limit, takeover)


async def _hold(conn: asyncpg.Connection, alarm_id: int, actor: Actor, reason: str, limit: timedelta,
                takeover: bool) -> dict[str, Any]:
    now = datetime.now(UTC)
    async with conn.transaction():
        row = await _lock(conn, alarm_id)
        if row["state"] in ("closed", "new"):
            raise AlarmError(f"alarm {alarm_id} is {row['state']}; cannot hold (acknowledge it first)")
        over = _check_handler(row, actor, takeover)
        until = now + limit
        await conn.execute("UPDATE alarms SET hold_until = $2, hold_reason = $3, handled_by = $4,"
                           " handled_since = CASE WHEN handled_by = $4 THEN handled_since ELSE $5 END,"
                           " recalled_at = NULL, updated_at = $5 WHERE id = $1",
                           alarm_id, until, reason, actor.user_id, now)
        detail: dict[str, Any] = {"reason": reason, "until": until.isoformat(), "seconds": int(limit.total_seconds())}
        if over:
            detail["from"] = row["username"]
        await _record(conn, alarm_id, actor, "hold", detail, now)
        await alarms.notify_alarms(conn, [alarm_id])
    return await _result(conn, alarm_id)


async def unhold(conn: asyncpg.Connection, alarm_id: int, actor: Actor) -> dict[str, Any]:
    """End a hold early."""
    now = datetime.now(UTC)
    async with conn.transaction():
        row = await _lock(conn, alarm_id)
        held = await conn.fetchval("SELECT hold_until FROM alarms WHERE id = $1", alarm_id)
        if held is None or row["state"] == "closed":
            raise AlarmError(f"alarm {alarm_id} is not on hold")
        await conn.execute("UPDATE alarms SET hold_until = NULL, updated_at = $2 WHERE id = $1", alarm_id, now)
        await _record(conn, alarm_id, actor, "unhold", {}, now)
        await alarms.notify_alarms(conn, [alarm_id])
    return await _result(conn, alarm_id)


async def add_call(conn: asyncpg.Connection, alarm_id: int, actor: Actor, *, called: str, phone: str = "",
                   answer: str, password_ok: bool | None = None, note: str = "") -> dict[str, Any]:
    """A "call made" entry: who was called, what came of it, whether the password was checked."""
    if answer not in CALL_ANSWERS:
        raise ValueError(f"answer: one of {', '.join(CALL_ANSWERS)}")
    if not called.strip():
        raise ValueError("called: who was called")
    now = datetime.now(UTC)
    async with conn.transaction():
        row = await _lock(conn, alarm_id)
        if row["state"] == "closed":
            raise AlarmError(f"alarm {alarm_id} is closed; cannot add a call")
        detail = {"called": called.strip(), "phone": phone.strip(), "answer": answer, "password_ok": password_ok,
                  "note": note.strip()}
        await conn.execute("UPDATE alarms SET updated_at = $2 WHERE id = $1", alarm_id, now)
        await _record(conn, alarm_id, actor, "call", detail, now)
        await alarms.notify_alarms(conn, [alarm_id])
    return await _result(conn, alarm_id)


# -- the checklist ------------------------------------------------------------------------------------

def checklist_items(instructions: str) -> list[str]:
    """One item per non-empty line of the instructions, without list bullets or numbers."""
    items = []
    for line in instructions.splitlines():
        text = _BULLET.sub("", line).strip()
        if text:
            items.append(text)
    return items


async def checklist(conn: asyncpg.Connection | asyncpg.Pool, alarm_id: int) -> list[dict[str, Any]]:
    """The alarm's checklist: [{"no", "text", "done", "by", "at"}] — the latest tick of each item counts."""
    instructions = await conn.fetchval(
        "SELECT coalesce(o.instructions, '') FROM alarms al LEFT JOIN guarded_objects o ON o.id = al.object_id"
        " WHERE al.id = $1", alarm_id)
    items = checklist_items(instructions or "")
    ticks = await conn.fetch(
        "SELECT e.at, e.detail, u.username FROM alarm_events e LEFT JOIN users u ON u.id = e.user_id"
        " WHERE e.alarm_id = $1 AND e.kind = 'check' ORDER BY e.id", alarm_id)
    state: dict[str, dict[str, Any]] = {}
    for t in ticks:  # ticks name the item by its text: an edit of other lines does not move them
        state[t["detail"].get("item", "")] = {"done": bool(t["detail"].get("done")), "by": t["username"], "at": t["at"]}
    return [{"no": i + 1, "text": text, "done": state.get(text, {}).get("done", False),
             "by": state.get(text, {}).get("by"), "at": state.get(text, {}).get("at")}
            for i, text in enumerate(items)]


async def tick(conn: asyncpg.Connection, alarm_id: int, actor: Actor, item_no: int, done: bool = True) -> list[dict[str, Any]]:
    """Mark checklist item `item_no` (1-based) done or not done."""
    now = datetime.now(UTC)
    async with conn.transaction():
        row = await _lock(conn, alarm_id)
        if row["state"] == "closed":
            raise AlarmError(f"alarm {alarm_id} is closed; cannot change its checklist")
        items = await checklist(conn, alarm_id)
        if not 1 <= item_no <= len(items):
            raise ValueError(f"item: the checklist has {len(items)} item(s); no item {item_no}")
        await conn.execute("UPDATE alarms SET updated_at = $2 WHERE id = $1", alarm_id, now)
        await _record(conn, alarm_id, actor, "check", {"item": items[item_no - 1]["text"], "no": item_no,
                                                       "done": done}, now)
        await alarms.notify_alarms(conn, [alarm_id])
    return await checklist(conn, alarm_id)


async def close(conn: asyncpg.Connection, alarm_id: int, actor: Actor, outcome: str, note: str = "", *,
                checklist_reason: str = "", takeover: bool = False) -> dict[str, Any]:
    """Close with an outcome, if the checklist is done (or a reason says why not) and the alarm is
    the actor's, in the pool, or explicitly taken over."""
    async with conn.transaction():
        row = await _lock(conn, alarm_id)
        if row["state"] in ("closed", "new"):  # the engine's own message for these
            return await alarms.close(conn, alarm_id, actor, outcome, note)
        _check_handler(row, actor, takeover)
        open_items = [i["text"] for i in await checklist(conn, alarm_id) if not i["done"]]
        if open_items and not checklist_reason.strip():
            raise ChecklistOpen(alarm_id, open_items)
        if open_items:
            await _record(conn, alarm_id, actor, "checklist-skipped",
                          {"reason": checklist_reason.strip(), "items": open_items}, datetime.now(UTC))
        return await alarms.close(conn, alarm_id, actor, outcome, note)


async def timeline(conn: asyncpg.Connection | asyncpg.Pool, alarm_id: int) -> list[dict[str, Any]]:
    """The alarm's whole story in time order: its events (signals, steps, notes, calls, checks,
    holds) and, where dispatch records them, the response group's steps."""
    items = [{**h, "source": "alarm"} for h in await alarms.history(conn, alarm_id)]
    # dispatch is another domain: read its record only if its tables exist (console imports none of it)
    if await conn.fetchval("SELECT to_regclass('assignment_events') IS NOT NULL AND to_regclass('assignments') IS NOT NULL"):
        try:
            rows = await conn.fetch(
                "SELECT e.id, e.at, e.kind, e.actor, e.detail, a.group_id FROM assignment_events e"
                " JOIN assignments a ON a.id = e.assignment_id WHERE a.alarm_id = $1 ORDER BY e.at, e.id", alarm_id)
        except asyncpg.PostgresError:  # dispatch's schema differs from what we read: leave it out
            rows = []
        for r in rows:
            items.append({"id": r["id"], "at": r["at"], "kind": f"dispatch.{r['kind']}", "signal_id": None,
                          "detail": {**dict(r["detail"] or {}), "group_id": r["group_id"]},
                          "username": r["actor"], "source": "dispatch"})
    items.sort(key=lambda h: (h["at"], h["source"] != "alarm", h.get("id") or 0))
    return items
