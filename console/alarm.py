"""Alarms: the engine that turns stored signals into alarms, and the operators' actions on them.

The engine drains `signal_inbox` (filled in the same transaction as each signal) in id order, so it
runs off the acknowledgement path and loses nothing across a restart. A signal finds its object by
account; an alarm-class code opens an alarm on the object or joins its open one; a restore is
recorded against the open alarm; tests, openings/closings and polls only refresh last-seen (done by
the store). An unknown account raises an "unknown account" alarm instead of vanishing.

Lifecycle: new -> acknowledged -> (dispatched -> on-site, by dispatch) -> closed with an outcome.
Every step is an appended `alarm_events` row and an audit entry, in one transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg

from console import audit, eventcodes
from console.account import SIGNAL_ACCOUNT_JOIN
from console.bus import Listener
from console.store import CHANNEL_SIGNALS

log = logging.getLogger("kuzet.alarm")

CHANNEL_ALARMS = "kuzet_alarm"
ENGINE_LOCK = 0x616C726D  # "alrm": one engine at a time processes the inbox

OUTCOMES = ("real-alarm", "false-alarm", "technical-fault", "test", "owner-cancelled", "other")
OPEN_STATES = ("new", "acknowledged", "dispatched", "on-site")

UNKNOWN_ACCOUNT_TITLE = {"kk": "Белгісіз аккаунт", "ru": "Неизвестный аккаунт", "en": "Unknown account"}
# A receiver's report of its own trouble (device gone, heartbeat missed): an internal signal whose
# account is the receiver's name, qualifier 1 raise / 3 restore, the condition in xdata.
RECEIVER_TROUBLE = "receiver-trouble"
RECEIVER_TROUBLE_TITLE = {"kk": "Қабылдағыш ақауы", "ru": "Неисправность приёмника", "en": "Receiver trouble"}


class AlarmError(Exception):
    """An operator action that is not allowed in the alarm's current state."""


@dataclass(slots=True)
class Actor:
    user_id: int | None
    name: str  # username or "system:<component>"


SYSTEM = Actor(None, "system:alarm-engine")


def _title(info: eventcodes.CodeInfo, zone: str) -> dict[str, str]:
    words = {"kk": "аймақ", "ru": "зона", "en": "zone"}
    return {lang: (f"{name} ({words[lang]} {zone})" if zone and zone.strip("0") else name)
            for lang, name in info.name.items()}


async def notify_alarms(conn: asyncpg.Connection, ids: list[int]) -> None:
    """Tell listeners (web boards) which alarms changed; payloads stay far below 8,000 bytes."""
    for i in range(0, len(ids), 500):
        await conn.execute("SELECT pg_notify($1, $2)", CHANNEL_ALARMS, json.dumps(ids[i:i + 500]))


# -- the one alarm writer -----------------------------------------------------------------------
#
# Every alarm is opened, joined and restored here, a batch at a time: by the engine (from signals,
# receiver trouble included), by supervision (failure to communicate, schedules) and by
# `raise_alarm` / `restore_alarm` (one condition). A storm or an uplink outage costs a fixed number
# of statements, not one per alarm.

PER_OBJECT_KINDS = frozenset({"signal"})  # one open alarm per object, whichever account reported


@dataclass(slots=True)
class AlarmRaise:
    """Open an alarm, or join the open alarm of the same key (`alarm_key`)."""

    object_id: int | None
    account: str
    kind: str
    klass: str
    priority: int
    title: dict[str, str]
    detail: dict[str, Any] = field(default_factory=dict)
    signal_id: int | None = None  # the signal behind it, if a signal is
    code: str = ""


@dataclass(slots=True)
class AlarmRestore:
    """The condition behind the open alarm of the same key has ended."""

    object_id: int | None
    account: str
    kind: str
    detail: dict[str, Any] = field(default_factory=dict)
    signal_id: int | None = None
    code: str = ""


AlarmChange = AlarmRaise | AlarmRestore


def alarm_key(object_id: int | None, account: str, kind: str) -> tuple[int, str, str]:
    """Which open alarm a change belongs to: panel signals share one alarm per object; every other
    kind has one per (object, account, kind) — each account of an object fails on its own."""
    if object_id is not None and kind in PER_OBJECT_KINDS:
        return (object_id, "", kind)
    return (object_id or 0, account, kind)


@dataclass(slots=True)
class _Touch:
    """What one batch did to one alarm after opening it (or to an alarm already open)."""

    count: int = 0  # signals joined
    last_signal_id: int | None = None
    priority: int | None = None
    restored: bool = False

    def add(self, signal_id: int | None, priority: int | None, *, restored: bool) -> None:
        if signal_id is not None:
            self.count += 1
            self.last_signal_id = signal_id
        if priority is not None:
            self.priority = priority if self.priority is None else min(self.priority, priority)
        self.restored = restored  # the latest change decides: an alarm after a restore is active again


async def _open_alarms(conn: asyncpg.Connection, changes: Sequence[AlarmChange]) -> dict[tuple[int, str, str], list[Any]]:
    """The newest open alarm per key: key -> [id, restored]."""
    kinds = sorted({c.kind for c in changes})
    oids = sorted({c.object_id for c in changes if c.object_id is not None})
    accounts = sorted({c.account for c in changes if c.object_id is None})
    rows = await conn.fetch(
        "SELECT id, object_id, account, kind, restored FROM alarms WHERE state <> 'closed' AND kind = ANY($1::text[])"
        " AND (object_id = ANY($2::bigint[]) OR (object_id IS NULL AND account = ANY($3::text[]))) ORDER BY id",
        kinds, oids, accounts)
    return {alarm_key(r["object_id"], r["account"], r["kind"]): [r["id"], r["restored"]] for r in rows}


async def write_alarms(conn: asyncpg.Connection, changes: Sequence[AlarmChange], now: datetime,
                       actor: Actor = SYSTEM) -> list[int]:
    """Apply `changes` in order, inside the caller's transaction; returns the alarm ids touched.

    A raise opens an alarm (an `opened` event and audit entry) or joins the open one (a `signal`
    event; audited only when no signal is behind it — a signal is its own record). A restore marks
    the open alarm restored (a `restore` event and audit entry); without a signal it does nothing to
    an alarm already restored. Listeners are told which alarms changed.
    """
    if not changes:
        return []
    current = await _open_alarms(conn, changes)
    new_keys = {alarm_key(c.object_id, c.account, c.kind) for c in changes if isinstance(c, AlarmRaise)} - current.keys()
    free_ids = [r[0] for r in await conn.fetch(
        "SELECT nextval('alarms_id_seq') FROM generate_series(1, $1)", len(new_keys))] if new_keys else []
    new_alarms: list[tuple[Any, ...]] = []
    touched: dict[int, _Touch] = {}
    order: dict[int, None] = {}  # every alarm touched, in order
    events: list[tuple[int, datetime, str, int | None, dict[str, Any]]] = []
    entries: list[audit.Entry] = []
    for c in changes:
        key = alarm_key(c.object_id, c.account, c.kind)
        found = current.get(key)
        signal_ref = {"signal_id": c.signal_id, "code": c.code} if c.signal_id is not None else {}
        if isinstance(c, AlarmRestore):
            if found is None or (found[1] and c.signal_id is None):
                continue
            found[1] = True
            touched.setdefault(found[0], _Touch()).add(c.signal_id, None, restored=True)
            order[found[0]] = None
            events.append((found[0], now, "restore", c.signal_id, c.detail))
            entries.append(audit.Entry(actor.name, "alarm.restore", "alarm", str(found[0]), {**c.detail, **signal_ref}, now))
            continue
        if found is not None:
            found[1] = False
            touched.setdefault(found[0], _Touch()).add(c.signal_id, c.priority, restored=False)
            order[found[0]] = None
            events.append((found[0], now, "signal", c.signal_id, c.detail))
            if c.signal_id is None:
                entries.append(audit.Entry(actor.name, "alarm.signal", "alarm", str(found[0]),
                                           {"kind": c.kind, **c.detail}, now))
            continue
        alarm_id = free_ids.pop()
        new_alarms.append((alarm_id, c.object_id, c.account, c.kind, c.klass, c.priority, c.title, now, now,
                           c.signal_id, c.signal_id, 0 if c.signal_id is None else 1))
        current[key] = [alarm_id, False]
        order[alarm_id] = None
        events.append((alarm_id, now, "opened", c.signal_id, c.detail))
        entries.append(audit.Entry(actor.name, "alarm.opened", "alarm", str(alarm_id),
                                   {"kind": c.kind, **c.detail, **signal_ref}, now))
    if new_alarms:
        await conn.copy_records_to_table("alarms", records=new_alarms, columns=(
            "id", "object_id", "account", "kind", "klass", "priority", "title", "opened_at", "updated_at",
            "first_signal_id", "last_signal_id", "signal_count"))
    if touched:
        ts = list(touched.items())
        await conn.execute(
            "UPDATE alarms a SET updated_at = $6, last_signal_id = coalesce(t.last, a.last_signal_id),"
            " signal_count = a.signal_count + t.n, priority = least(a.priority, coalesce(t.p, a.priority)),"
            " restored = t.r"
            " FROM unnest($1::bigint[], $2::bigint[], $3::int[], $4::int[], $5::bool[]) AS t(id, last, n, p, r)"
            " WHERE a.id = t.id",
            [a for a, _ in ts], [t.last_signal_id for _, t in ts], [t.count for _, t in ts],
            [t.priority for _, t in ts], [t.restored for _, t in ts], now)
    if events:
        await conn.copy_records_to_table("alarm_events", records=events,
                                         columns=("alarm_id", "at", "kind", "signal_id", "detail"))
    await audit.append(conn, entries)
    ids = list(order)
    if ids:
        await notify_alarms(conn, ids)
    return ids


async def raise_alarm(conn: asyncpg.Connection, *, object_id: int | None, account: str, kind: str,
                      klass: str, priority: int, title: dict[str, str], detail: dict[str, Any] | None = None,
                      actor: Actor = SYSTEM) -> int:
    """Open (or join) one alarm that no panel signal caused (an operator's or a tool's condition)."""
    async with conn.transaction():
        [alarm_id] = await write_alarms(conn, [AlarmRaise(object_id, account, kind, klass, priority, title,
                                                          detail or {})], datetime.now(UTC), actor)
    return alarm_id


async def restore_alarm(conn: asyncpg.Connection, *, object_id: int | None, account: str, kind: str,
                        detail: dict[str, Any] | None = None, actor: Actor = SYSTEM) -> int | None:
    """Record the end of the condition behind an open alarm of `kind` (e.g. communication is back)."""
    async with conn.transaction():
        ids = await write_alarms(conn, [AlarmRestore(object_id, account, kind, detail or {})], datetime.now(UTC), actor)
    return ids[0] if ids else None


# -- the engine's batch: signals in, alarm changes out --------------------------------------------

_BATCH = """
DELETE FROM signal_inbox WHERE signal_id IN (
    SELECT signal_id FROM signal_inbox ORDER BY signal_id LIMIT $1 FOR UPDATE SKIP LOCKED)
RETURNING signal_id
"""

_SIGNALS = """
SELECT s.id, s.account, s.receiver_no, s.line_no, s.code_kind, s.code, s.qualifier, s.zone,
       s.received_at, CASE WHEN s.code_kind = 'internal' THEN s.xdata END AS xdata, a.object_id,
       a.id AS account_id, svc.until AS service_until, svc.reason AS service_reason
FROM unnest($1::bigint[]) AS q(id)
JOIN signals s ON s.id = q.id  -- a join, not "id = ANY($1)": the generic plan of the latter scans the table
""" + SIGNAL_ACCOUNT_JOIN + """
LEFT JOIN LATERAL (  -- in service (maintenance) when received: the account's or its object's period
    SELECT sv.until, sv.reason FROM (
        SELECT ac.service_until AS until, ac.service_reason AS reason FROM accounts ac WHERE ac.id = a.id
        UNION ALL
        SELECT o.service_until, o.service_reason FROM guarded_objects o WHERE o.id = a.object_id
    ) sv WHERE sv.until > s.received_at ORDER BY sv.until DESC LIMIT 1
) svc ON true
ORDER BY s.id
"""


@dataclass(slots=True)
class BatchResult:
    signals: int  # how many queued signals were processed
    changed: list[int]  # ids of the alarms that changed


def signal_change(s: asyncpg.Record | dict[str, Any]) -> AlarmChange | None:
    """What one stored signal does to alarms (None: nothing; last-seen is the store's business).

    A signal finds its object by account; an alarm-class code raises the object's alarm, a restore
    restores it; a signal from an unknown account raises an unknown-account alarm; a receiver's own
    trouble report (`RECEIVER_TROUBLE`) raises or restores that receiver's trouble alarm. A signal
    received while its account or object is in service (maintenance) changes no alarm."""
    sid = s["id"]
    if s["service_until"] is not None:
        return None
    if s["code_kind"] == "internal" and s["code"] == RECEIVER_TROUBLE:
        detail = dict(s["xdata"] or {})
        if s["qualifier"] == "3":
            return AlarmRestore(None, s["account"], RECEIVER_TROUBLE, detail, sid, s["code"])
        return AlarmRaise(None, s["account"], RECEIVER_TROUBLE, "trouble", 3,
                          {k: f"{v}: {s['account']}" for k, v in RECEIVER_TROUBLE_TITLE.items()}, detail, sid, s["code"])
    if s["object_id"] is None:
        return AlarmRaise(None, s["account"], "unknown-account", "other", 2,
                          {k: f"{v} {s['account']}" for k, v in UNKNOWN_ACCOUNT_TITLE.items()}, {}, sid, s["code"])
    info = eventcodes.classify(s["code_kind"], s["code"], s["qualifier"])
    if info.is_restore:
        return AlarmRestore(s["object_id"], s["account"], "signal", {}, sid, s["code"])
    if not info.opens_alarm:
        return None  # tests, openings/closings, status
    return AlarmRaise(s["object_id"], s["account"], "signal", info.klass, info.priority,
                      _title(info, s["zone"]), {}, sid, s["code"])


async def process_batch(conn: asyncpg.Connection, limit: int = 1000) -> BatchResult:
    """Process up to `limit` queued signals in one transaction, through the one alarm writer."""
    async with conn.transaction():
        if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", ENGINE_LOCK):
            return BatchResult(0, [])  # another engine is at work
        ids = [r["signal_id"] for r in await conn.fetch(_BATCH, limit)]
        if not ids:
            return BatchResult(0, [])
        signals = await conn.fetch(_SIGNALS, ids)
        in_service = [(s["id"], s["account_id"], s["object_id"], s["service_until"], s["service_reason"])
                      for s in signals if s["service_until"] is not None]
        if in_service:  # stored and marked, and no alarm: the account or object is in service
            await conn.executemany(
                "INSERT INTO service_signals (signal_id, account_id, object_id, service_until, reason)"
                " VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING", in_service)
        changes = [c for c in map(signal_change, signals) if c is not None]
        changed = await write_alarms(conn, changes, datetime.now(UTC))
        return BatchResult(len(ids), changed)


async def _transition(conn: asyncpg.Connection, alarm_id: int, actor: Actor, *, event: str, sql: str,
                      args: tuple[Any, ...], allowed: tuple[str, ...], detail: dict[str, Any]) -> dict[str, Any]:
    now = datetime.now(UTC)
    async with conn.transaction():
        state = await conn.fetchval("SELECT state FROM alarms WHERE id = $1 FOR UPDATE", alarm_id)
        if state is None:
            raise AlarmError(f"alarm {alarm_id} does not exist")
        if state not in allowed:
            raise AlarmError(f"alarm {alarm_id} is {state}; cannot {event}")
        await conn.execute(sql, alarm_id, now, actor.user_id, *args)
        await conn.execute(
            "INSERT INTO alarm_events (alarm_id, at, kind, user_id, detail) VALUES ($1, $2, $3, $4, $5)",
            alarm_id, now, event, actor.user_id, detail)
        await audit.append(conn, [audit.Entry(actor.name, f"alarm.{event}", "alarm", str(alarm_id), detail, now)])
        await notify_alarms(conn, [alarm_id])
    result = await get(conn, alarm_id)
    assert result is not None
    return result


async def acknowledge(conn: asyncpg.Connection, alarm_id: int, actor: Actor) -> dict[str, Any]:
    return await _transition(
        conn, alarm_id, actor, event="acknowledged", allowed=("new",), detail={}, args=(),
        # acknowledging takes the alarm: the operator who looked handles it
        sql="UPDATE alarms SET state = 'acknowledged', acknowledged_at = $2, acknowledged_by = $3,"
            " handled_by = $3, handled_since = $2, recalled_at = NULL, updated_at = $2 WHERE id = $1")


async def close(conn: asyncpg.Connection, alarm_id: int, actor: Actor, outcome: str, note: str = "") -> dict[str, Any]:
    """Close with an outcome. A new alarm must be acknowledged first: someone has to have looked."""
    if outcome not in OUTCOMES:
        raise AlarmError(f"unknown outcome {outcome!r}; one of {', '.join(OUTCOMES)}")
    return await _transition(
        conn, alarm_id, actor, event="closed", allowed=("acknowledged", "dispatched", "on-site"),
        detail={"outcome": outcome, "note": note}, args=(outcome,),
        sql="UPDATE alarms SET state = 'closed', closed_at = $2, closed_by = $3, outcome = $4,"
            " hold_until = NULL, recalled_at = NULL, updated_at = $2 WHERE id = $1")


RESPONSE_STATES = ("acknowledged", "dispatched", "on-site")


async def record_response(conn: asyncpg.Connection, alarm_id: int, actor: Actor, event: str,
                          detail: dict[str, Any], state: str | None = None) -> str:
    """A step of the response to an alarm (a group dispatched, accepted, on site, recalled, late...),
    recorded by dispatch (which the core does not import): an alarm event, an audit entry, and the
    alarm's state moved to `state` (acknowledged, dispatched or on-site) while it is open. A new
    alarm is acknowledged first (whoever sends a group has looked at it). Call inside the caller's
    transaction; returns the alarm's state afterwards."""
    if state is not None and state not in RESPONSE_STATES:
        raise AlarmError(f"unknown response state {state!r}")
    now = datetime.now(UTC)
    current = await conn.fetchval("SELECT state FROM alarms WHERE id = $1 FOR UPDATE", alarm_id)
    if current is None:
        raise AlarmError(f"alarm {alarm_id} does not exist")
    entries = []
    if current == "new" and state is not None:
        # as `acknowledge`: the operator who sends a group has looked, and handles the alarm
        await conn.execute("UPDATE alarms SET state = 'acknowledged', acknowledged_at = $2, acknowledged_by = $3,"
                           " handled_by = coalesce($3, handled_by), handled_since = CASE WHEN $3::bigint IS NULL"
                           " THEN handled_since ELSE $2 END, recalled_at = NULL, updated_at = $2 WHERE id = $1",
                           alarm_id, now, actor.user_id)
        await conn.execute("INSERT INTO alarm_events (alarm_id, at, kind, user_id, detail)"
                           " VALUES ($1, $2, 'acknowledged', $3, $4)", alarm_id, now, actor.user_id, {})
        entries.append(audit.Entry(actor.name, "alarm.acknowledged", "alarm", str(alarm_id), {}, now))
        current = "acknowledged"
    if state is not None and current in RESPONSE_STATES and state != current:
        await conn.execute("UPDATE alarms SET state = $2, updated_at = $3 WHERE id = $1", alarm_id, state, now)
        current = state
    else:
        await conn.execute("UPDATE alarms SET updated_at = $2 WHERE id = $1", alarm_id, now)
    await conn.execute("INSERT INTO alarm_events (alarm_id, at, kind, user_id, detail) VALUES ($1, $2, $3, $4, $5)",
                       alarm_id, now, event, actor.user_id, detail)
    entries.append(audit.Entry(actor.name, f"alarm.{event}", "alarm", str(alarm_id), {**detail, "state": current}, now))
    await audit.append(conn, entries)
    await notify_alarms(conn, [alarm_id])
    return str(current)


async def add_note(conn: asyncpg.Connection, alarm_id: int, actor: Actor, note: str) -> None:
    async with conn.transaction():
        if not await conn.fetchval("SELECT 1 FROM alarms WHERE id = $1", alarm_id):
            raise AlarmError(f"alarm {alarm_id} does not exist")
        await conn.execute("INSERT INTO alarm_events (alarm_id, kind, user_id, detail) VALUES ($1, 'note', $2, $3)",
                           alarm_id, actor.user_id, {"note": note})
        await audit.append(conn, [audit.Entry(actor.name, "alarm.note", "alarm", str(alarm_id), {"note": note})])
        await notify_alarms(conn, [alarm_id])


_ALARM_COLUMNS = """
SELECT al.id, al.object_id, o.name AS object_name, o.address, o.latitude, o.longitude,
       o.terror_vulnerable, al.account, al.kind, al.klass, al.priority, al.title, al.state,
       al.opened_at, al.updated_at, al.signal_count, al.restored, al.acknowledged_at, al.closed_at,
       al.outcome, ls.code AS last_code, ls.code_kind AS last_code_kind, ls.zone AS last_zone,
       ls.received_at AS last_signal_at, al.handled_by, hu.username AS handled_by_name,
       hu.full_name AS handled_by_full_name, al.handled_since, al.hold_until, al.hold_reason, al.recalled_at
FROM alarms al
LEFT JOIN guarded_objects o ON o.id = al.object_id
LEFT JOIN signals ls ON ls.id = al.last_signal_id
LEFT JOIN users hu ON hu.id = al.handled_by
"""

# The board's order: alarms on hold last; then most urgent; a hold that ran out on top of its
# priority; new before taken; oldest first. board.js sorts the same way.
OPEN_ORDER = (" ORDER BY (al.hold_until IS NOT NULL AND al.hold_until > now()), al.priority,"
              " (al.recalled_at IS NULL), (al.state <> 'new'), al.opened_at, al.id")


async def get(conn: asyncpg.Connection | asyncpg.Pool, alarm_id: int) -> dict[str, Any] | None:
    r = await conn.fetchrow(_ALARM_COLUMNS + " WHERE al.id = $1", alarm_id)
    return dict(r) if r else None


async def get_many(conn: asyncpg.Connection | asyncpg.Pool, ids: list[int]) -> list[dict[str, Any]]:
    rows = await conn.fetch(_ALARM_COLUMNS + " JOIN unnest($1::bigint[]) AS q(id) ON q.id = al.id", ids)
    return [dict(r) for r in rows]


async def list_alarms(conn: asyncpg.Connection | asyncpg.Pool, *, include_closed: bool = False,
                      limit: int = 200) -> list[dict[str, Any]]:
    """Open alarms, most urgent first (priority, then oldest); with closed ones newest first."""
    if include_closed:
        rows = await conn.fetch(_ALARM_COLUMNS + " ORDER BY al.id DESC LIMIT $1", limit)
    else:
        rows = await conn.fetch(_ALARM_COLUMNS + " WHERE al.state <> 'closed'" + OPEN_ORDER + " LIMIT $1", limit)
    return [dict(r) for r in rows]


async def counts(conn: asyncpg.Connection | asyncpg.Pool) -> dict[str, Any]:
    """True counts of the open alarms, from the database (the board holds only the first
    SNAPSHOT_ALARMS of them): open, per priority, new, on hold, taken by nobody."""
    rows = await conn.fetch(
        "SELECT priority, count(*) AS n, count(*) FILTER (WHERE state = 'new') AS new,"
        " count(*) FILTER (WHERE hold_until > now()) AS held,"
        " count(*) FILTER (WHERE handled_by IS NULL) AS unhandled"
        " FROM alarms WHERE state <> 'closed' GROUP BY priority ORDER BY priority")
    return {"open": sum(r["n"] for r in rows), "new": sum(r["new"] for r in rows),
            "held": sum(r["held"] for r in rows), "unhandled": sum(r["unhandled"] for r in rows),
            "by_priority": {str(r["priority"]): r["n"] for r in rows}}


async def release_expired_holds(conn: asyncpg.Connection) -> list[int]:
    """Holds whose time ran out: the alarm comes back (on top of its priority), recorded and audited."""
    now = datetime.now(UTC)
    async with conn.transaction():
        rows = await conn.fetch(
            "UPDATE alarms SET hold_until = NULL, recalled_at = $1, updated_at = $1"
            " WHERE hold_until IS NOT NULL AND hold_until <= $1 AND state <> 'closed'"
            " RETURNING id, hold_reason", now)
        if not rows:
            return []
        await conn.executemany(
            "INSERT INTO alarm_events (alarm_id, at, kind, detail) VALUES ($1, $2, 'hold-expired', $3)",
            [(r["id"], now, {"reason": r["hold_reason"] or ""}) for r in rows])
        await audit.append(conn, [audit.Entry(SYSTEM.name, "alarm.hold-expired", "alarm", str(r["id"]),
                                              {"reason": r["hold_reason"] or ""}, now) for r in rows])
        ids = [r["id"] for r in rows]
        await notify_alarms(conn, ids)
    return ids


async def history(conn: asyncpg.Connection | asyncpg.Pool, alarm_id: int) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT e.id, e.at, e.kind, e.signal_id, e.detail, u.username, s.code, s.code_kind, s.qualifier, s.zone"
        " FROM alarm_events e LEFT JOIN users u ON u.id = e.user_id LEFT JOIN signals s ON s.id = e.signal_id"
        " WHERE e.alarm_id = $1 ORDER BY e.id", alarm_id)
    return [dict(r) for r in rows]


class AlarmEngine:
    """Runs `process_batch` whenever the store announces new signals (and every second regardless,
    so a missed notification only delays, never loses)."""

    def __init__(self, pool: asyncpg.Pool, dsn: str) -> None:
        self.pool = pool
        self.dsn = dsn
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.listener = Listener(dsn, {CHANNEL_SIGNALS: lambda _payload: self._wake.set()}, name="alarm-engine",
                                 on_connect=self._reconnected)
        self.processed_batches = 0

    async def _reconnected(self, _conn: asyncpg.Connection, _first: bool) -> None:
        self._wake.set()  # signals may have been committed while nobody listened

    async def start(self) -> None:
        await self.listener.start()
        self._task = asyncio.create_task(self._run(), name="alarm-engine")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.listener.stop()

    async def _run(self) -> None:
        while True:
            self._wake.clear()  # before the work: a signal committed meanwhile wakes the next round
            try:
                async with self.pool.acquire() as conn:
                    while (await process_batch(conn)).signals:
                        self.processed_batches += 1
                    # holds run out on time: this loop wakes at least once a second
                    await release_expired_holds(conn)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database went away: keep trying, nothing is lost
                log.warning("alarm engine: %s", exc)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), 1.0)
