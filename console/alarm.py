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
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg

from console import audit, eventcodes
from console.account import SIGNAL_ACCOUNT_JOIN
from console.store import CHANNEL_SIGNALS

log = logging.getLogger("kuzet.alarm")

CHANNEL_ALARMS = "kuzet_alarm"
ENGINE_LOCK = 0x616C726D  # "alrm": one engine at a time processes the inbox

OUTCOMES = ("real-alarm", "false-alarm", "technical-fault", "test", "owner-cancelled", "other")
OPEN_STATES = ("new", "acknowledged", "dispatched", "on-site")

UNKNOWN_ACCOUNT_TITLE = {"kk": "Белгісіз аккаунт", "ru": "Неизвестный аккаунт", "en": "Unknown account"}


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


_BATCH = """
DELETE FROM signal_inbox WHERE signal_id IN (
    SELECT signal_id FROM signal_inbox ORDER BY signal_id LIMIT $1 FOR UPDATE SKIP LOCKED)
RETURNING signal_id
"""

_SIGNALS = """
SELECT s.id, s.account, s.receiver_no, s.line_no, s.code_kind, s.code, s.qualifier, s.zone,
       s.received_at, a.object_id, a.id AS account_id, svc.until AS service_until,
       svc.reason AS service_reason
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


async def process_batch(conn: asyncpg.Connection, limit: int = 1000) -> BatchResult:
    """Process up to `limit` queued signals in one transaction.

    Work is gathered per alarm and written once per batch (one UPDATE per touched alarm, one
    executemany of events, one audit append), so a storm costs little more than a trickle.
    """
    async with conn.transaction():
        if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", ENGINE_LOCK):
            return BatchResult(0, [])  # another engine is at work
        ids = [r["signal_id"] for r in await conn.fetch(_BATCH, limit)]
        if not ids:
            return BatchResult(0, [])
        signals = await conn.fetch(_SIGNALS, ids)
        open_rows = await conn.fetch(
            "SELECT id, object_id, kind, account FROM alarms WHERE state <> 'closed'"
            " AND (object_id = ANY($1::bigint[]) OR (object_id IS NULL AND account = ANY($2::text[])))"
            " ORDER BY id",
            list({s["object_id"] for s in signals if s["object_id"] is not None}),
            list({s["account"] for s in signals if s["object_id"] is None}),
        )
        # key: (object_id, "signal") for known objects, (None, account) for unknown accounts
        open_alarms: dict[tuple[Any, str], int] = {}
        for r in open_rows:
            if r["object_id"] is not None and r["kind"] == "signal":
                open_alarms[(r["object_id"], "signal")] = r["id"]
            elif r["object_id"] is None and r["kind"] == "unknown-account":
                open_alarms[(None, r["account"])] = r["id"]
        # Ids for the alarms this batch may open, in one round trip: new alarms are then written
        # together (COPY) instead of one INSERT each — a storm opens thousands at once.
        candidates = {(None, s["account"]) if s["object_id"] is None else (s["object_id"], "signal")
                      for s in signals if s["service_until"] is None} - open_alarms.keys()
        free_ids = [r[0] for r in await conn.fetch(
            "SELECT nextval('alarms_id_seq') FROM generate_series(1, $1)", len(candidates))] if candidates else []
        new_alarms: list[tuple[Any, ...]] = []
        touched: dict[int, _Touch] = {}
        events: list[tuple[int, datetime, str, int]] = []
        entries: list[audit.Entry] = []
        now = datetime.now(UTC)
        in_service = [(s["id"], s["account_id"], s["object_id"], s["service_until"], s["service_reason"])
                      for s in signals if s["service_until"] is not None]
        if in_service:  # stored and marked, and no alarm: the account or object is in service
            await conn.executemany(
                "INSERT INTO service_signals (signal_id, account_id, object_id, service_until, reason)"
                " VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING", in_service)
        for s in signals:
            if s["service_until"] is not None:
                continue
            unknown = s["object_id"] is None
            info = None if unknown else eventcodes.classify(s["code_kind"], s["code"], s["qualifier"])
            key = (None, s["account"]) if unknown else (s["object_id"], "signal")
            current = open_alarms.get(key)
            if info is not None and info.is_restore:
                if current is not None:
                    touched.setdefault(current, _Touch()).add(s["id"], None, restored=True)
                    events.append((current, now, "restore", s["id"]))
                    entries.append(audit.Entry(SYSTEM.name, "alarm.restore", "alarm", str(current),
                                               {"signal_id": s["id"], "code": s["code"]}, now))
                continue
            if info is not None and not info.opens_alarm:
                continue  # tests, openings/closings, status: last-seen is all they change
            if current is not None:
                touched.setdefault(current, _Touch()).add(s["id"], info.priority if info else None, restored=False)
                # A further signal on an open alarm is an alarm event, not a lifecycle step: the audit
                # log records steps (opened, restored, acknowledged, closed), the events the rest.
                events.append((current, now, "signal", s["id"]))
                continue
            if info is None:
                title = {k: f"{v} {s['account']}" for k, v in UNKNOWN_ACCOUNT_TITLE.items()}
                kind, klass, priority = "unknown-account", "other", 2
            else:
                title, kind, klass, priority = _title(info, s["zone"]), "signal", info.klass, info.priority
            alarm_id = free_ids.pop()
            new_alarms.append((alarm_id, s["object_id"], s["account"], kind, klass, priority, title, now, now,
                               s["id"], s["id"], 1))
            open_alarms[key] = alarm_id
            touched[alarm_id] = _Touch()
            events.append((alarm_id, now, "opened", s["id"]))
            entries.append(audit.Entry(SYSTEM.name, "alarm.opened", "alarm", str(alarm_id),
                                       {"signal_id": s["id"], "code": s["code"], "kind": kind}, now))
        if new_alarms:
            await conn.copy_records_to_table("alarms", records=new_alarms, columns=(
                "id", "object_id", "account", "kind", "klass", "priority", "title", "opened_at", "updated_at",
                "first_signal_id", "last_signal_id", "signal_count"))
        updates = [(aid, now, t.last_signal_id, t.count, t.priority, t.restored)
                   for aid, t in touched.items() if t.count]
        if updates:
            await conn.executemany(
                "UPDATE alarms SET updated_at = $2, last_signal_id = $3, signal_count = signal_count + $4,"
                " priority = least(priority, coalesce($5, priority)), restored = $6 WHERE id = $1", updates)
        if events:
            await conn.copy_records_to_table("alarm_events", records=events,
                                             columns=("alarm_id", "at", "kind", "signal_id"))
        await audit.append(conn, entries)
        if touched:
            await notify_alarms(conn, list(touched))
        return BatchResult(len(ids), list(touched))


@dataclass(slots=True)
class _Touch:
    """What one batch did to one existing alarm."""

    count: int = 0  # signals joined after the one that opened it
    last_signal_id: int | None = None
    priority: int | None = None
    restored: bool = False

    def add(self, signal_id: int, priority: int | None, *, restored: bool) -> None:
        self.count += 1
        self.last_signal_id = signal_id
        if priority is not None:
            self.priority = priority if self.priority is None else min(self.priority, priority)
        self.restored = restored  # the latest signal decides: an alarm after a restore is active again


async def raise_alarm(conn: asyncpg.Connection, *, object_id: int | None, account: str, kind: str,
                      klass: str, priority: int, title: dict[str, str], detail: dict[str, Any] | None = None,
                      actor: Actor = SYSTEM) -> int:
    """Open (or join) an alarm that no panel signal caused: failure to communicate, receiver trouble,
    schedule violations. Joins the open alarm of the same kind on the same object/account."""
    now = datetime.now(UTC)
    async with conn.transaction():
        alarm_id = await conn.fetchval(
            "SELECT id FROM alarms WHERE state <> 'closed' AND kind = $1 AND account = $2"
            " AND object_id IS NOT DISTINCT FROM $3 ORDER BY id DESC LIMIT 1", kind, account, object_id)
        if alarm_id is None:
            alarm_id = await conn.fetchval(
                "INSERT INTO alarms (object_id, account, kind, klass, priority, title, opened_at, updated_at)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $7) RETURNING id",
                object_id, account, kind, klass, priority, title, now)
            event = "opened"
        else:
            await conn.execute("UPDATE alarms SET updated_at = $2, restored = false WHERE id = $1", alarm_id, now)
            event = "signal"
        await conn.execute("INSERT INTO alarm_events (alarm_id, at, kind, detail) VALUES ($1, $2, $3, $4)",
                           alarm_id, now, event, detail or {})
        await audit.append(conn, [audit.Entry(actor.name, f"alarm.{event}", "alarm", str(alarm_id),
                                              {"kind": kind, **(detail or {})}, now)])
        await notify_alarms(conn, [alarm_id])
    return int(alarm_id)


async def restore_alarm(conn: asyncpg.Connection, *, object_id: int | None, account: str, kind: str,
                        detail: dict[str, Any] | None = None, actor: Actor = SYSTEM) -> int | None:
    """Record the end of the condition behind an open alarm of `kind` (e.g. communication is back)."""
    now = datetime.now(UTC)
    async with conn.transaction():
        alarm_id = await conn.fetchval(
            "SELECT id FROM alarms WHERE state <> 'closed' AND kind = $1 AND account = $2"
            " AND object_id IS NOT DISTINCT FROM $3 AND NOT restored ORDER BY id DESC LIMIT 1", kind, account, object_id)
        if alarm_id is None:
            return None
        await conn.execute("UPDATE alarms SET restored = true, updated_at = $2 WHERE id = $1", alarm_id, now)
        await conn.execute("INSERT INTO alarm_events (alarm_id, at, kind, detail) VALUES ($1, $2, 'restore', $3)",
                           alarm_id, now, detail or {})
        await audit.append(conn, [audit.Entry(actor.name, "alarm.restore", "alarm", str(alarm_id), detail or {}, now)])
        await notify_alarms(conn, [alarm_id])
    return int(alarm_id)


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
        sql="UPDATE alarms SET state = 'acknowledged', acknowledged_at = $2, acknowledged_by = $3,"
            " updated_at = $2 WHERE id = $1")


async def close(conn: asyncpg.Connection, alarm_id: int, actor: Actor, outcome: str, note: str = "") -> dict[str, Any]:
    """Close with an outcome. A new alarm must be acknowledged first: someone has to have looked."""
    if outcome not in OUTCOMES:
        raise AlarmError(f"unknown outcome {outcome!r}; one of {', '.join(OUTCOMES)}")
    return await _transition(
        conn, alarm_id, actor, event="closed", allowed=("acknowledged", "dispatched", "on-site"),
        detail={"outcome": outcome, "note": note}, args=(outcome,),
        sql="UPDATE alarms SET state = 'closed', closed_at = $2, closed_by = $3, outcome = $4,"
            " updated_at = $2 WHERE id = $1")


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
       al.outcome, ls.code AS last_code, ls.code_kind AS last_code_kind, ls.zone AS last_zone
FROM alarms al
LEFT JOIN guarded_objects o ON o.id = al.object_id
LEFT JOIN signals ls ON ls.id = al.last_signal_id
"""


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
        rows = await conn.fetch(_ALARM_COLUMNS + " WHERE al.state <> 'closed'"
                                " ORDER BY al.priority, al.opened_at LIMIT $1", limit)
    return [dict(r) for r in rows]


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
        self._listener: asyncpg.Connection | None = None
        self.processed_batches = 0

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="alarm-engine")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._close_listener()

    async def _close_listener(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(Exception):
                await self._listener.close()
            self._listener = None

    async def _listen(self) -> None:
        if self._listener is None or self._listener.is_closed():
            self._listener = await asyncpg.connect(self.dsn)
            await self._listener.add_listener(CHANNEL_SIGNALS, lambda *_: self._wake.set())

    async def _run(self) -> None:
        while True:
            self._wake.clear()  # before the work: a signal committed meanwhile wakes the next round
            try:
                await self._listen()
                async with self.pool.acquire() as conn:
                    while (await process_batch(conn)).signals:
                        self.processed_batches += 1
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database went away: keep trying, nothing is lost
                log.warning("alarm engine: %s", exc)
                await self._close_listener()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), 1.0)
