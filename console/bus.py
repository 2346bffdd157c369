"""LISTEN/NOTIFY that survives the database going away.

One connection per `Listener`, LISTENing on its channels. When the connection is lost (the server
restarted, a network cut, an idle connection killed), it reconnects with a growing back-off, LISTENs
again, and calls `on_connect(conn, first)`, so the owner can reload whatever may have changed while
no notification could reach it (the account directory, the board's last signal id, ...). A periodic
keep-alive query notices a connection that died without a word.

Every LISTEN in Kuzet goes through this class, so none of them stays deaf after an outage.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping

import asyncpg

log = logging.getLogger("kuzet.bus")

Handler = Callable[[str], None]  # called with the notification's payload
OnConnect = Callable[[asyncpg.Connection, bool], Awaitable[None]]  # (connection, first time?)


class Listener:
    def __init__(self, dsn: str, channels: Mapping[str, Handler], *, name: str = "listener",
                 on_connect: OnConnect | None = None, keepalive: float = 5.0,
                 max_delay: float = 10.0) -> None:
        self.dsn = dsn
        self.channels = dict(channels)
        self.name = name
        self.on_connect = on_connect
        self.keepalive = keepalive
        self.max_delay = max_delay
        self.listening = asyncio.Event()  # set while a connection LISTENs
        self.reconnects = 0  # how many times it came back after a loss
        self.last_error = ""
        self._conn: asyncpg.Connection | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def connection(self) -> asyncpg.Connection | None:
        """The LISTENing connection, while there is one."""
        return self._conn

    async def start(self, ready_timeout: float | None = None) -> None:
        """Start listening; with `ready_timeout`, wait that long for the first connection (a
        database still starting up only delays the listener, it never stops it)."""
        self._task = asyncio.create_task(self._run(), name=f"listen-{self.name}")
        if ready_timeout:
            try:
                await asyncio.wait_for(self.listening.wait(), ready_timeout)
            except TimeoutError:
                log.error("%s: not listening yet (%s); it keeps trying", self.name, self.last_error)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        await self._close()

    async def _close(self) -> None:
        conn, self._conn = self._conn, None
        self.listening.clear()
        if conn is not None and not conn.is_closed():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), 5)
        if conn is not None and not conn.is_closed():
            conn.terminate()

    def _dispatch(self, handler: Handler) -> Callable[[object, int, str, str], None]:
        def on_notify(_conn: object, _pid: int, channel: str, payload: str) -> None:
            try:
                handler(payload)
            except Exception:  # one bad handler must not take the connection down
                log.exception("%s: handler for %s failed", self.name, channel)

        return on_notify

    async def _run(self) -> None:
        delay = 0.2
        first = True
        while True:
            try:
                conn = await asyncio.wait_for(asyncpg.connect(self.dsn), 10)
                self._conn = conn
                lost = asyncio.Event()
                conn.add_termination_listener(lambda _c, lost=lost: lost.set())
                for channel, handler in self.channels.items():
                    await conn.add_listener(channel, self._dispatch(handler))
                # LISTEN first, then reload: a change between the two is seen twice, never missed
                if self.on_connect is not None:
                    await self.on_connect(conn, first)
                if not first:
                    self.reconnects += 1
                    log.warning("%s: listening again after a lost connection", self.name)
                first = False
                delay = 0.2
                self.last_error = ""
                self.listening.set()
                while not lost.is_set():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(lost.wait(), self.keepalive)
                    if not lost.is_set():
                        await asyncio.wait_for(conn.fetchval("SELECT 1"), self.keepalive)
                raise ConnectionError("listener connection closed")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.last_error = str(exc) or type(exc).__name__
                log.warning("%s: %s; reconnecting in %.1f s", self.name, self.last_error, delay)
                await self._close()
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.max_delay)
