"""The composition root: start and stop the whole post (database, store, alarm engine, receivers,
web) in one process. Only this package imports receivers and web; the core never does."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import uvicorn

from console import audit, db, eventcodes
from console.account import CHANNEL_ACCOUNTS, AccountDirectory
from console.alarm import AlarmEngine
from console.config import Settings
from console.store import SignalStore
from console.supervision import Supervisor
from receivers.receiver import Receiver

log = logging.getLogger("kuzet")

# Every domain that owns tables, in dependency order: each one's migrations may refer to the tables
# of those before it.
DOMAINS = ("console", "dispatch", "compliance")


class UvicornServer(uvicorn.Server):
    """uvicorn without its own signal handling: the CLI owns SIGINT/SIGTERM and stops everything."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@dataclass
class System:
    settings: Settings
    with_web: bool = True
    with_receivers: bool = True
    with_engine: bool = True
    with_supervision: bool = True
    dsn: str = ""  # the runtime role's
    owner_dsn: str = ""  # the schema owner's: migrations only
    pool: asyncpg.Pool | None = None
    store: SignalStore | None = None
    directory: AccountDirectory = field(default_factory=AccountDirectory)
    receivers: list[Receiver] = field(default_factory=list)
    engine: AlarmEngine | None = None
    supervisor: Supervisor | None = None
    web_port: int = 0
    _embedded: db.EmbeddedServer | None = None
    _web: UvicornServer | None = None
    _web_task: asyncio.Task[None] | None = None
    _listener: asyncpg.Connection | None = None
    _tasks: list[asyncio.Task[Any]] = field(default_factory=list)

    async def start(self) -> None:
        s = self.settings
        # Migrations run as the schema's owner; everything else as the runtime role, which owns
        # nothing and may not change the history (README, "Security").
        if s.database_url:
            self.owner_dsn = s.database_url
            self.dsn = s.app_database_url or s.database_url
        else:
            self._embedded = db.EmbeddedServer(s.pgdata)
            self.owner_dsn = await asyncio.to_thread(self._embedded.start)
            self.dsn = self._embedded.app_dsn
        await db.wait_ready(self.owner_dsn)
        runtime_role = await db.role_of(self.dsn) if self.dsn != self.owner_dsn else db.RUNTIME_ROLE
        if self.dsn == self.owner_dsn:
            log.warning("the runtime connects to the database as the schema's owner: set [database] app_url"
                        " (KUZET_APP_DATABASE_URL) to a role that owns nothing (README, \"Security\")")
        conn = await db.connect(self.owner_dsn)
        try:
            await db.migrate(conn, DOMAINS, runtime_role=runtime_role)
        finally:
            await conn.close()
        self.pool = await db.create_pool(self.dsn, min_size=2, max_size=12)
        await self.directory.load(self.pool)
        self._listener = await asyncpg.connect(self.dsn)
        await self._listener.add_listener(CHANNEL_ACCOUNTS, self._accounts_changed)
        self.store = SignalStore(self.pool, dedup_window=s.dedup_window)
        await self.store.start()
        if self.with_engine:
            self.engine = AlarmEngine(self.pool, self.dsn)
            await self.engine.start()
        if self.with_supervision:
            self.supervisor = Supervisor(self.pool, timezone=s.timezone)
            await self.supervisor.start()
        if self.with_receivers:
            await self._start_receivers()
        if self.with_web:
            await self._start_web()

    def _accounts_changed(self, *_: object) -> None:
        async def reload() -> None:
            if self.pool is not None:
                n = await self.directory.load(self.pool)
                log.info("account directory reloaded: %d accounts", n)

        self._tasks.append(asyncio.create_task(reload()))

    @property
    def dc09_port(self) -> int:
        """The port of the first DC-09 receiver (the demo's simulated panels send there)."""
        from receivers.dc09.server import Dc09Server

        return next(r.port for r in self.receivers if isinstance(r, Dc09Server))

    async def _start_receivers(self) -> None:
        from receivers.dc09.server import Dc09Server

        assert self.store is not None
        for i, c in enumerate(self.settings.dc09):
            srv = Dc09Server(self.store, self.directory, name=f"dc09-{i + 1}" if i else "dc09",
                             host=c.host, port=c.port, tcp=c.tcp, udp=c.udp, window=c.window,
                             idle_timeout=c.idle_timeout, unfinished_timeout=c.unfinished_timeout,
                             is_known_code=eventcodes.is_known)
            await srv.start()
            self.receivers.append(srv)
        if self.settings.serial:
            from receivers.serial.transport import from_settings as serial_receivers

            # A serial receiver starts even without its port present: it reports receiver trouble
            # (a signal) and keeps reopening the port.
            for rx in serial_receivers(self.store, self.settings.serial, timezone=self.settings.timezone):
                await rx.start()
                self.receivers.append(rx)
        if self.settings.modbus:
            from receivers.modbus.poller import from_settings as modbus_pollers

            for poller in modbus_pollers(self.store, self.settings.modbus):
                await poller.start()
                self.receivers.append(poller)

    async def _start_web(self) -> None:
        from web.app import create_app, server_config

        assert self.pool is not None
        app = create_app(self.pool, self.dsn, health=self.health, settings=self.settings, domains=DOMAINS)
        config = server_config(app, self.settings)
        self._web = UvicornServer(config)
        self._web_task = asyncio.create_task(self._web.serve(), name="web")
        while not self._web.started:
            if self._web_task.done():
                self._web_task.result()  # raises why it could not start (port taken, ...)
                raise RuntimeError("web server stopped during start-up")
            await asyncio.sleep(0.02)
        sock = self._web.servers[0].sockets[0]
        self.web_port = sock.getsockname()[1]

    def health(self) -> list[dict[str, Any]]:
        """Every receiver's state for the API and the board, and supervision as one more line:
        the accounts silent beyond their interval are the post's "supervision misses"."""
        out = [r.health() for r in self.receivers]
        if self.supervisor is not None:
            st = self.supervisor.stats
            out.append({"name": "supervision", "kind": "supervision",
                        "state": "running" if st.errors == 0 or st.sweeps else "down",
                        "connections": 0, "accepted": st.sweeps, "acked": 0, "not_acked": 0, "rejected": 0,
                        "last_minute": 0, "last_signal_at": st.last_sweep_at.isoformat() if st.last_sweep_at else None,
                        "supervision_misses": st.failed_now,
                        "detail": f"{st.failed_now} silent now, {st.misses_total} missed since start,"
                                  f" last sweep {st.last_sweep_ms:.1f} ms"})
        return out

    async def write_audit_anchor(self, reason: str) -> None:
        """The audit chain's count and newest hash, appended to `$KUZET_HOME/audit-anchors.jsonl`
        (`kuzet audit verify` holds the chain against it)."""
        if self.pool is None:
            return
        try:
            a = await asyncio.wait_for(audit.anchor(self.pool), 5)
            await asyncio.to_thread(audit.write_anchor, self.settings.home, a, reason)
        except Exception:
            log.exception("writing the audit anchor")

    async def stop(self) -> None:
        await self.write_audit_anchor("stop")
        if self._web is not None and self._web_task is not None:
            self._web.should_exit = True
            with contextlib.suppress(Exception):
                await self._web_task
        for r in self.receivers:
            with contextlib.suppress(Exception):
                await r.stop()
        self.receivers.clear()
        if self.supervisor:
            await self.supervisor.stop()
        if self.engine:
            await self.engine.stop()
        if self.store:
            await self.store.stop()
        for t in self._tasks:
            t.cancel()
        if self._listener is not None:
            with contextlib.suppress(Exception):
                await self._listener.close()
        if self.pool is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.pool.close(), 5)
        if self._embedded is not None:
            await asyncio.to_thread(self._embedded.stop)
