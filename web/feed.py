"""The live board feed: one PostgreSQL listener per web process, fanned out to websocket clients.

The hub LISTENs on `kuzet_alarm` (payload: JSON list of changed alarm ids) and `kuzet_signal`
(payload: the highest new signal id). Notifications only mark work; a single pump task then reads
the changed alarms and the new signals once and sends the same pre-encoded text to every client, so
a burst of notifications costs one query, not one per client.

The hub also LISTENs on `kuzet_sessions` (payload: a user id, sent by triggers when a session ends
or a user is disabled, deleted or given another role) and ends that user's websockets at once
(4401, or 4403 for a role without the board); a periodic check per client is the fallback.

Every client has a bounded queue. A client that cannot keep up (queue full, or one send stuck for
`SEND_TIMEOUT`) is dropped with close code 4429 rather than letting memory grow; the page then
reconnects and starts again from a fresh snapshot. If the listener connection is lost, the hub
reconnects and sends every client a new snapshot, since notifications sent meanwhile are gone.

Protocol (server -> client, JSON text frames):
  {"type": "snapshot", "alarms": [...open alarms...], "signals": [...last 50, oldest first...],
   "counts": {"open", "new", "held", "unhandled", "by_priority": {"1": n, ...}}, "shown": n}
      the snapshot holds at most SNAPSHOT_ALARMS alarms (the most urgent); "counts" are the true
      totals from the database, "shown" how many of them the snapshot holds
  {"type": "alarm", "alarm": {...}}     one per changed alarm (state "closed" means: remove it)
  {"type": "counts", "counts": {...}}   the true totals, after every batch of alarm changes
  {"type": "signal", "signal": {...}}   one per new signal (at most 200 per notification)
  {"type": "ping"}                      every 25 s when idle
  {"type": "group", "group": {...}}     one per changed response group (state, position, assignment)
  {"type": "dispatch-warnings", "warnings": [...]}  after group changes (fewer than two on duty, ...)
  {"type": "dispatch-alert", "alert": {...}}  a crew late to accept / to arrive (dispatch.timers)
The snapshot also carries "groups" and "dispatch_warnings".

The crews' phones have their own socket, /ws/crew (below), fed by the same listener on
`kuzet_dispatch`: a crew client gets only its own group's assignments and group:
  {"type": "snapshot", "group": {...}, "assignment": {...crew card...} | null}   on connect
  {"type": "assignment", "assignment": {...crew card...}}   one per change (status tells: finished/recalled = gone)
  {"type": "group", "group": {...}}   the own group changed
  {"type": "ping"}
The client may send {"type": "ping"} and gets {"type": "pong"}. Ordering is by arrival: a client
keeps an alarm only if its `updated_at` is not older than the one it has, and signals by id.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Iterable
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

import asyncpg
from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from console import alarm as alarms
from console import signal as stored_signals
from console import user as users
from console.alarm import CHANNEL_ALARMS
from console.bus import Listener
from console.store import CHANNEL_SIGNALS
from dispatch import assignment as assignments
from dispatch import group as groups
from dispatch import staff
from dispatch.notify import CHANNEL_DISPATCH
from web import auth
from web.i18n import LANGS

log = logging.getLogger("kuzet.web.feed")

QUEUE_SIZE = 1000  # messages waiting for one client before it counts as too slow
SEND_TIMEOUT = 10.0  # seconds one send may take before the client counts as too slow
IDLE_PING = 25.0  # seconds of silence before a ping (keeps proxies open, finds dead peers)
SESSION_RECHECK = 60.0  # seconds between checks that the client's session is still valid
SIGNALS_PER_NOTIFY = 200
SNAPSHOT_SIGNALS = 50
SNAPSHOT_ALARMS = 1000
CLOSE_TOO_SLOW = 4429
CLOSE_GOING_AWAY = 1001

# -- JSON ------------------------------------------------------------------------------------------


def _default(o: Any) -> Any:
    if isinstance(o, datetime | date | time):
        return o.isoformat()
    if isinstance(o, bytes | bytearray | memoryview):
        return bytes(o).decode("latin-1").encode("unicode_escape").decode("ascii")
    if isinstance(o, Decimal):
        return float(o)
    if isinstance(o, set | frozenset | tuple):
        return list(o)
    raise TypeError(f"{type(o).__name__} is not JSON serialisable")


def dumps(obj: Any) -> str:
    """JSON text with datetimes as ISO 8601 strings and raw bytes as escaped ASCII."""
    return json.dumps(obj, default=_default, ensure_ascii=False, separators=(",", ":"))


def plain(obj: Any) -> Any:
    """The same conversion as `dumps`, giving Python objects (for FastAPI responses)."""
    return json.loads(dumps(obj))


# -- signals as the board shows them ---------------------------------------------------------------

def describe(kind: str, code: str, qualifier: str) -> dict[str, str]:
    """The event in every UI language (falls back to the bare code if the catalogue cannot say)."""
    try:
        from console import eventcodes

        return {lang: eventcodes.describe(kind, code, qualifier, lang) for lang in LANGS}
    except Exception:  # the catalogue is missing or does not know the code: show it raw
        bare = f"{code}{'/' + qualifier if qualifier else ''}"
        return dict.fromkeys(LANGS, bare)


def signal_dict(r: asyncpg.Record | dict[str, Any]) -> dict[str, Any]:
    d = dict(r)
    d["description"] = describe(d["code_kind"], d["code"], d["qualifier"])
    return d


async def latest_signals(conn: asyncpg.Pool | asyncpg.Connection, *, limit: int = SNAPSHOT_SIGNALS,
                         after: int = 0, account: str | None = None) -> list[dict[str, Any]]:
    """The newest signals (newest first), optionally only those with id > `after` or one account."""
    return [signal_dict(r) for r in await stored_signals.latest(conn, limit=limit, after=after, account=account)]


# -- clients and the hub ---------------------------------------------------------------------------


class Client:
    """One connected board: its outgoing queue, and whether it has been dropped."""

    __slots__ = ("queue", "gone", "close_code", "user", "token")

    def __init__(self, user: users.User, size: int = QUEUE_SIZE, token: str | None = None) -> None:
        self.user = user
        self.token = token  # the session's cookie value: rechecked when the session store announces a change
        self.queue: asyncio.Queue[str] = asyncio.Queue(size)
        self.gone = asyncio.Event()  # set when the hub lets go of this client
        self.close_code = CLOSE_TOO_SLOW

    def drop(self, code: int) -> None:
        if not self.gone.is_set():
            self.close_code = code
            self.gone.set()

    def offer(self, text: str) -> bool:
        if self.gone.is_set():
            return False
        try:
            self.queue.put_nowait(text)
            return True
        except asyncio.QueueFull:
            self.drop(CLOSE_TOO_SLOW)
            return False


class CrewClient(Client):
    """One crew phone: only its group's assignments reach it."""

    __slots__ = ("group_id",)

    def __init__(self, user: users.User, group_id: int, size: int = QUEUE_SIZE, token: str | None = None) -> None:
        super().__init__(user, size, token)
        self.group_id = group_id


class Hub:
    def __init__(self, pool: asyncpg.Pool, dsn: str, *, queue_size: int = QUEUE_SIZE) -> None:
        self.pool = pool
        self.dsn = dsn
        self.queue_size = queue_size
        self.clients: set[Client] = set()
        self.last_signal_id = 0
        self.dropped = 0  # clients dropped for being too slow
        self._pending_alarms: set[int] = set()
        self.crew_clients: set[CrewClient] = set()
        self._pending_groups: set[int] = set()
        self._pending_assignments: set[int] = set()
        self._pending_alerts: list[dict[str, Any]] = []
        self._signal_hint = 0
        self._resync = False
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.listener = Listener(dsn, {CHANNEL_ALARMS: self._on_alarm, CHANNEL_SIGNALS: self._on_signal,
                                       users.CHANNEL_SESSIONS: self._on_session, CHANNEL_DISPATCH: self._on_dispatch},
                                 name="board-feed", on_connect=self._listening_again)
        self._session_checks: set[asyncio.Task[None]] = set()

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self, ready_timeout: float = 10.0) -> None:
        self._tasks = [asyncio.create_task(self._pump(), name="board-pump")]
        await self.listener.start(ready_timeout=ready_timeout)

    async def stop(self) -> None:
        await self.listener.stop()
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self._tasks = []
        for t in list(self._session_checks):
            t.cancel()
        for c in list(self.clients) + list(self.crew_clients):
            c.drop(CLOSE_GOING_AWAY)

    @property
    def listening(self) -> asyncio.Event:
        return self.listener.listening

    @property
    def reconnects(self) -> int:
        return self.listener.reconnects

    async def _listening_again(self, conn: asyncpg.Connection, first: bool) -> None:
        top = await stored_signals.last_id(conn)
        if first:
            self.last_signal_id = max(self.last_signal_id, int(top))
        else:  # notifications may have been missed while we were away
            self._session_checks.add(asyncio.create_task(self.recheck_sessions()))
            self._resync = True
            self._wake.set()

    def _on_alarm(self, payload: str) -> None:
        try:
            ids = json.loads(payload)
            self._pending_alarms.update(int(i) for i in ids)
        except (ValueError, TypeError):
            log.warning("board feed: bad %s payload %r", CHANNEL_ALARMS, payload[:100])
            return
        self._wake.set()

    def _on_dispatch(self, payload: str) -> None:
        try:
            data = json.loads(payload)
            self._pending_groups.update(int(i) for i in data.get("groups", ()))
            self._pending_assignments.update(int(i) for i in data.get("assignments", ()))
            self._pending_alerts.extend(a for a in data.get("alerts", ()) if isinstance(a, dict))
        except (ValueError, TypeError, AttributeError):
            log.warning("board feed: bad %s payload %r", CHANNEL_DISPATCH, payload[:100])
            return
        self._wake.set()

    def _on_signal(self, payload: str) -> None:
        try:
            self._signal_hint = max(self._signal_hint, int(payload))
        except ValueError:
            self._signal_hint = max(self._signal_hint, self.last_signal_id + 1)
        self._wake.set()

    # -- clients ------------------------------------------------------------------------------

    def register(self, user: users.User, token: str | None = None) -> Client:
        c = Client(user, self.queue_size, token)
        self.clients.add(c)
        return c

    def _on_session(self, payload: str) -> None:
        try:
            user_id = int(payload)
        except ValueError:
            return
        self._session_checks.add(asyncio.create_task(self.recheck_sessions(user_id)))

    async def recheck_sessions(self, user_id: int | None = None) -> None:
        """End the websockets (of one user, or all) whose session has ended, or whose user may no
        longer watch the board: 4401 "log in again", 4403 for a role without the board."""
        try:
            for c in [c for c in [*self.clients, *self.crew_clients] if user_id is None or c.user.id == user_id]:
                if c.token is None or c.gone.is_set():
                    continue
                now = await users.session_user(self.pool, c.token)
                if now is None:
                    c.drop(auth.CLOSE_UNAUTHENTICATED)
                elif isinstance(c, CrewClient):  # a phone: still crew, still in the same group
                    if now.role != "crew" or (await staff.crew_group(self.pool, now) or 0) != c.group_id:
                        c.drop(auth.CLOSE_FORBIDDEN)
                elif now.role not in auth.READ_ROLES:
                    c.drop(auth.CLOSE_FORBIDDEN)
        except Exception as exc:  # the periodic check in _send still covers this client
            log.warning("board feed: session recheck failed: %s", exc)
        finally:
            task = asyncio.current_task()
            if task is not None:
                self._session_checks.discard(task)

    def unregister(self, c: Client) -> None:
        self.clients.discard(c)
        if isinstance(c, CrewClient):
            self.crew_clients.discard(c)

    def register_crew(self, user: users.User, group_id: int, token: str | None = None) -> CrewClient:
        c = CrewClient(user, group_id, self.queue_size, token)
        self.crew_clients.add(c)
        return c

    def crew_watching(self, group_id: int) -> int:
        """Phone views of the group open on this web process (the crew simulator stands aside
        while there is one)."""
        return sum(1 for c in self.crew_clients if c.group_id == group_id and not c.gone.is_set())

    async def crew_snapshot(self, group_id: int) -> str:
        if not group_id:
            return dumps({"type": "snapshot", "group": None, "assignment": None})
        async with self.pool.acquire() as conn:
            found = await groups.list_groups(conn, ids=[group_id], include_inactive=True)
            current = await assignments.active_for_group(conn, group_id)
            card = await assignments.crew_card(conn, current["id"]) if current else None
        return dumps({"type": "snapshot", "group": found[0] if found else None, "assignment": card})

    def _offer_crew(self, c: CrewClient, texts: Iterable[str]) -> None:
        for text in texts:
            if not c.offer(text):
                self.crew_clients.discard(c)
                self.dropped += 1
                break

    def broadcast(self, texts: Iterable[str]) -> None:
        texts = list(texts)
        if not texts:
            return
        for c in list(self.clients):
            for text in texts:
                if not c.offer(text):
                    self.clients.discard(c)
                    self.dropped += 1
                    log.warning("board feed: dropped a client of %s (too slow)", c.user.username)
                    break

    async def snapshot(self) -> str:
        async with self.pool.acquire() as conn:
            open_alarms = await alarms.list_alarms(conn, limit=SNAPSHOT_ALARMS)
            counts = await alarms.counts(conn)
            signals = await latest_signals(conn, limit=SNAPSHOT_SIGNALS)
            group_list = await groups.list_groups(conn)
            warnings = await groups.warnings(conn)
        signals.reverse()  # oldest first, like the stream that follows
        return dumps({"type": "snapshot", "alarms": open_alarms, "signals": signals, "counts": counts,
                      "shown": len(open_alarms), "groups": group_list, "dispatch_warnings": warnings})

    # -- the pump -----------------------------------------------------------------------------

    async def _pump(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self._deliver()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # database trouble: try again shortly, keep what is pending
                log.warning("board feed: %s", exc)
                await asyncio.sleep(1.0)
                self._wake.set()

    async def _deliver(self) -> None:
        if self._resync:  # cleared only once the snapshot is out (a failure retries it)
            top = await stored_signals.last_id(self.pool)
            snapshot = await self.snapshot() if self.clients else None
            self._resync = False
            self._pending_alarms.clear()
            self._pending_groups.clear()
            self._pending_assignments.clear()
            self._pending_alerts.clear()
            self.last_signal_id = max(self.last_signal_id, int(top), self._signal_hint)
            if snapshot is not None:
                self.broadcast([snapshot])
            for c in list(self.crew_clients):
                self._offer_crew(c, [await self.crew_snapshot(c.group_id)])
            return
        await self._deliver_dispatch()
        ids, self._pending_alarms = self._pending_alarms, set()
        if ids and self.clients:
            try:
                changed = await alarms.get_many(self.pool, sorted(ids))
            except BaseException:
                self._pending_alarms |= ids
                raise
            counts = await alarms.counts(self.pool)  # true totals: the board holds only part of them
            self.broadcast([*(dumps({"type": "alarm", "alarm": a}) for a in changed),
                            dumps({"type": "counts", "counts": counts})])
        hint = self._signal_hint
        if hint > self.last_signal_id:
            if not self.clients:
                self.last_signal_id = hint
                return
            rows = await latest_signals(self.pool, after=self.last_signal_id, limit=SIGNALS_PER_NOTIFY)
            if rows:
                self.last_signal_id = max(hint, rows[0]["id"])
                self.broadcast(dumps({"type": "signal", "signal": s}) for s in reversed(rows))
            else:  # not visible yet (cannot happen after a commit, but never spin)
                self.last_signal_id = hint


    async def _deliver_dispatch(self) -> None:
        gids, self._pending_groups = self._pending_groups, set()
        aids, self._pending_assignments = self._pending_assignments, set()
        alerts, self._pending_alerts = self._pending_alerts, []
        if not (self.clients or self.crew_clients) or not (gids or aids or alerts):
            return
        try:
            changed = await groups.list_groups(self.pool, ids=sorted(gids), include_inactive=True) if gids else []
            warnings = await groups.warnings(self.pool) if gids and self.clients else None
            crew_groups = {c.group_id for c in self.crew_clients}
            cards = [await assignments.crew_card(self.pool, a["id"])
                     for a in await assignments.get_many(self.pool, sorted(aids)) if a["group_id"] in crew_groups]
        except BaseException:
            self._pending_groups |= gids
            self._pending_assignments |= aids
            self._pending_alerts = alerts + self._pending_alerts
            raise
        texts = [dumps({"type": "group", "group": g}) for g in changed]
        if warnings is not None:
            texts.append(dumps({"type": "dispatch-warnings", "warnings": warnings}))
        texts += [dumps({"type": "dispatch-alert", "alert": a}) for a in alerts]
        self.broadcast(texts)
        for c in list(self.crew_clients):  # a crew sees its own group and its own group's work only
            mine = [dumps({"type": "group", "group": g}) for g in changed if g["id"] == c.group_id]
            mine += [dumps({"type": "assignment", "assignment": card}) for card in cards
                     if card["group_id"] == c.group_id]
            self._offer_crew(c, mine)


# -- the websocket ---------------------------------------------------------------------------------

router = APIRouter()


@router.websocket("/ws/board")
async def board(ws: WebSocket) -> None:
    found = auth.scope_user(ws.scope)
    token = ws.scope.get(auth.SCOPE_TOKEN)
    if found is None or not isinstance(token, str):
        await ws.accept()
        await ws.close(auth.CLOSE_UNAUTHENTICATED, "not logged in")
        return
    if found.role not in auth.READ_ROLES:
        await ws.accept()
        await ws.close(auth.CLOSE_FORBIDDEN, "the board is not for this role")
        return
    hub: Hub = ws.app.state.hub
    client = hub.register(found, token)  # before the snapshot, so nothing falls between the two
    try:
        await ws.accept()
        await ws.send_text(await hub.snapshot())
        sender = asyncio.create_task(_send(ws, client, hub, token))
        receiver = asyncio.create_task(_receive(ws, client))
        dropped = asyncio.create_task(client.gone.wait())
        done, pending = await asyncio.wait({sender, receiver, dropped}, return_when=asyncio.FIRST_COMPLETED)
        for t in pending:
            t.cancel()
        for t in pending:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        code: int | None = None
        for t in done:
            if t.cancelled():
                continue
            if t is dropped:
                code = client.close_code
            elif t.exception() is None and isinstance(t.result(), int):
                code = t.result()
        if code is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(code), 2.0)
    except (WebSocketDisconnect, ConnectionError, RuntimeError):
        pass
    finally:
        hub.unregister(client)


@router.websocket("/ws/crew")
async def crew(ws: WebSocket) -> None:
    """The crew phone's live feed: its group's current assignment on connect (so a phone that
    lost its connection gets the current state), then every change of its group's assignments."""
    found = auth.scope_user(ws.scope)
    token = ws.scope.get(auth.SCOPE_TOKEN)
    if found is None or not isinstance(token, str):
        await ws.accept()
        await ws.close(auth.CLOSE_UNAUTHENTICATED, "not logged in")
        return
    hub: Hub = ws.app.state.hub
    if found.role != "crew":
        await ws.accept()
        await ws.close(auth.CLOSE_FORBIDDEN, "the crew view is for crew members")
        return
    # The crew's group: its staff record's, else users.group_id. A crew member in no group gets a
    # snapshot saying so and nothing after it (group 0 matches nothing).
    group_id = await staff.crew_group(hub.pool, found) or 0
    client = hub.register_crew(found, group_id, token)  # before the snapshot, so nothing falls between the two
    try:
        await ws.accept()
        await ws.send_text(await hub.crew_snapshot(group_id))
        sender = asyncio.create_task(_send(ws, client, hub, token))
        receiver = asyncio.create_task(_receive(ws, client))
        dropped = asyncio.create_task(client.gone.wait())
        done, pending = await asyncio.wait({sender, receiver, dropped}, return_when=asyncio.FIRST_COMPLETED)
        for t in pending:
            t.cancel()
        for t in pending:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        code: int | None = None
        for t in done:
            if t.cancelled():
                continue
            if t is dropped:
                code = client.close_code
            elif t.exception() is None and isinstance(t.result(), int):
                code = t.result()
        if code is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(code), 2.0)
    except (WebSocketDisconnect, ConnectionError, RuntimeError):
        pass
    finally:
        hub.unregister(client)


async def _send(ws: WebSocket, client: Client, hub: Hub, token: str) -> int | None:
    """Send queued messages; ping when idle; end (with a close code) if the session has ended."""
    loop = asyncio.get_running_loop()
    next_check = loop.time() + SESSION_RECHECK
    while True:
        try:
            text = await asyncio.wait_for(client.queue.get(), IDLE_PING)
        except TimeoutError:
            text = '{"type":"ping"}'
        if loop.time() >= next_check:
            next_check = loop.time() + SESSION_RECHECK
            if await users.session_user(hub.pool, token) is None:
                return auth.CLOSE_UNAUTHENTICATED
        try:
            await asyncio.wait_for(ws.send_text(text), SEND_TIMEOUT)
        except TimeoutError:
            hub.dropped += 1
            return CLOSE_TOO_SLOW


async def _receive(ws: WebSocket, client: Client) -> None:
    """Read until the client goes away (the only way a sending server learns of it)."""
    while True:
        message = await ws.receive()
        if message["type"] == "websocket.disconnect":
            return
        text = message.get("text")
        if text and '"ping"' in text:
            client.offer('{"type":"pong"}')
