"""The composition root: start and stop the whole post (database, store, alarm engine, receivers,
web) in one process. Only this package imports receivers and web; the core never does."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import asyncpg
import uvicorn

from console import audit, db, eventcodes
from console.account import CHANNEL_ACCOUNTS, AccountDirectory
from console.alarm import AlarmEngine
from console.bus import Listener
from console.config import ConfigError, Settings
from console.rejected import RejectedLog
from console.store import SignalStore
from console.supervision import Supervisor
from dispatch.timers import DispatchTimers
from receivers.receiver import Receiver

log = logging.getLogger("kuzet")

# Every domain that owns tables, in dependency order: each one's migrations may refer to the tables
# of those before it.
DOMAINS = ("console", "dispatch", "compliance")


class StartupError(RuntimeError):
    """The post could not start: what, and where, in one line for the user."""


def check_settings(settings: Settings) -> None:
    """The tables the domains and receivers read themselves (`[compliance]`, `[[receivers.serial]]`,
    `[[receivers.modbus]]`), checked as they read them: `ConfigError` (one line, naming the table)
    before anything starts."""
    where = settings.config_file or "<config>"
    if settings.compliance:
        from compliance.settings import ComplianceSettings

        try:
            ComplianceSettings.load(settings)
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"{where}: compliance: {str(exc).removeprefix('[compliance]: ')}") from None
    if not settings.serial and not settings.modbus:
        return
    from receivers.modbus.poller import ModbusConfig
    from receivers.serial.transport import SerialConfig

    for kind, tables, read in (("serial", settings.serial, lambda t, i: SerialConfig.from_table(t, index=i)),
                               ("modbus", settings.modbus, lambda t, i: ModbusConfig.from_table(t, index=i))):
        for i, table in enumerate(tables):
            try:
                read(table, i)
            except (ValueError, TypeError, KeyError) as exc:
                detail = str(exc).split(": ", 1)[-1] if str(exc).startswith("[[") else str(exc)
                raise ConfigError(f"{where}: receivers.{kind}[{i}]: {detail}") from None


def _dsn_where(dsn: str) -> str:
    """user@host:port/database of a DSN, without the password."""
    u = urlsplit(dsn)
    host = unquote(u.hostname or "") or parse_qs(u.query).get("host", ["localhost"])[0]
    port = f":{u.port}" if u.port else ""
    return f"{unquote(u.username or '')}@{host}{port}{u.path or '/'}"


@contextlib.asynccontextmanager
async def _database_step(dsn: str) -> AsyncIterator[None]:
    """What goes wrong reaching the database, said in one line."""
    try:
        yield
    except asyncpg.InvalidPasswordError:
        raise StartupError(f"the database refused the password of {_dsn_where(dsn)}") from None
    except asyncpg.InvalidAuthorizationSpecificationError as exc:
        raise StartupError(f"the database refused {_dsn_where(dsn)}: {exc}") from None
    except asyncpg.InvalidCatalogNameError:
        raise StartupError(f"the database {_dsn_where(dsn)} does not exist") from None
    except OSError as exc:
        raise StartupError(f"cannot reach the database {_dsn_where(dsn)}: {exc.strerror or exc}") from None


def _bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket, bound here so that a port already in use is a clear error (uvicorn would
    log it and exit the process)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.create_server((host, port), family=family, backlog=2048)


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
    dispatch_timers: DispatchTimers | None = None
    web_port: int = 0
    _embedded: db.EmbeddedServer | None = None
    _web: UvicornServer | None = None
    _web_task: asyncio.Task[None] | None = None
    _listener: Listener | None = None
    _tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    _accounts_dirty: asyncio.Event = field(default_factory=asyncio.Event)

    async def start(self) -> None:
        """Start every part; `StartupError` (one line: what and where) if one cannot start. The caller
        stops what did start (`stop`)."""
        s = self.settings
        self._check_home()
        # Migrations run as the schema's owner; everything else as the runtime role, which owns
        # nothing and may not change the history (README, "Security").
        if s.database_url:
            self.owner_dsn = s.database_url
            self.dsn = s.app_database_url or s.database_url
        else:
            self._embedded = db.EmbeddedServer(s.pgdata)
            starting = asyncio.ensure_future(asyncio.to_thread(self._embedded.start))
            try:
                self.owner_dsn = await asyncio.shield(starting)
            except asyncio.CancelledError:
                # A thread cannot be interrupted: let it finish, so that stop() stops the server it started.
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(starting, 120)
                raise
            except db.DataPathError as exc:
                raise StartupError(str(exc)) from None
            except OSError as exc:
                raise StartupError(f"cannot start the embedded database in {s.pgdata}: {exc.strerror or exc}") from None
            self.dsn = self._embedded.app_dsn
        async with _database_step(self.owner_dsn):
            await db.wait_ready(self.owner_dsn)
        async with _database_step(self.dsn):
            runtime_role = await db.role_of(self.dsn) if self.dsn != self.owner_dsn else db.RUNTIME_ROLE
        if self.dsn == self.owner_dsn:
            log.warning("the runtime connects to the database as the schema's owner: set [database] app_url"
                        " (KUZET_APP_DATABASE_URL) to a role that owns nothing (README, \"Security\")")
        async with _database_step(self.owner_dsn):
            conn = await db.connect(self.owner_dsn)
        try:
            await db.migrate(conn, DOMAINS, runtime_role=runtime_role)
        finally:
            await conn.close()
        async with _database_step(self.dsn):
            self.pool = await db.create_pool(self.dsn, min_size=2, max_size=12)
        await self.directory.load(self.pool)
        # The directory follows every account change, also across a database restart: on
        # reconnecting, the listener reloads it (accounts may have changed while it was away).
        self._listener = Listener(self.dsn, {CHANNEL_ACCOUNTS: self._accounts_changed}, name="accounts",
                                  on_connect=self._reload_accounts)
        self._tasks.append(asyncio.create_task(self._account_reloader(), name="account-reloader"))
        await self._listener.start(ready_timeout=10)
        rejected = RejectedLog(self.pool, samples_per_minute=s.rejected_samples_per_minute,
                               max_rows=s.rejected_max_rows, max_age_days=s.rejected_max_age_days)
        self.store = SignalStore(self.pool, dedup_window=s.dedup_window, rejected=rejected)
        await self.store.start()
        if self.with_engine:
            self.engine = AlarmEngine(self.pool, self.dsn)
            await self.engine.start()
        if self.with_supervision:
            self.supervisor = Supervisor(self.pool, timezone=s.timezone)
            await self.supervisor.start()
            # dispatch's timers (late to accept / to arrive) run with the other supervision
            self.dispatch_timers = DispatchTimers(self.pool)
            await self.dispatch_timers.start()
        if self.with_receivers:
            await self._start_receivers()
        if self.with_web:
            await self._start_web()

    def _check_home(self) -> None:
        home = self.settings.home
        try:
            home.mkdir(mode=0o700, parents=True, exist_ok=True)  # private, as the embedded server keeps it
            with tempfile.TemporaryFile(dir=home):
                pass
        except OSError as exc:
            raise StartupError(f"cannot write the data directory {home}: {exc.strerror or exc}") from None

    def _accounts_changed(self, _payload: str = "") -> None:
        self._accounts_dirty.set()

    async def _reload_accounts(self, _conn: asyncpg.Connection, first: bool) -> None:
        if not first:
            log.warning("account directory: listening again after a lost connection; reloading it")
            self._accounts_dirty.set()

    async def _account_reloader(self) -> None:
        """One reload at a time, the latest change always wins; a failed reload is retried."""
        while True:
            await self._accounts_dirty.wait()
            self._accounts_dirty.clear()
            try:
                assert self.pool is not None
                n = await self.directory.load(self.pool)
                log.info("account directory reloaded: %d accounts", n)
            except Exception as exc:
                log.warning("account directory reload failed (%s); retrying", exc)
                self._accounts_dirty.set()
                await asyncio.sleep(1.0)

    @property
    def dc09_port(self) -> int:
        """The port of the first DC-09 receiver (the demo's simulated panels send there)."""
        from receivers.dc09.server import Dc09Server

        return next(r.port for r in self.receivers if isinstance(r, Dc09Server))

    async def _start_receivers(self) -> None:
        from receivers.dc09.server import Dc09Server
        from receivers.guard import Limits

        assert self.store is not None
        for i, c in enumerate(self.settings.dc09):
            srv = Dc09Server(self.store, self.directory, name=f"dc09-{i + 1}" if i else "dc09",
                             host=c.host, port=c.port, tcp=c.tcp, udp=c.udp, window=c.window,
                             idle_timeout=c.idle_timeout, unfinished_timeout=c.unfinished_timeout,
                             is_known_code=eventcodes.is_known, max_frame=c.max_frame,
                             limits=Limits(max_connections=c.max_connections,
                                           max_connections_per_peer=c.max_connections_per_peer,
                                           slow_after=c.slow_after, block_after=c.block_after,
                                           penalty_window=c.penalty_window, slow_delay=c.slow_delay,
                                           block_seconds=c.block_seconds))
            try:
                await srv.start()
            except OSError as exc:
                await srv.stop()  # the TCP side may be listening already
                raise StartupError(f"cannot listen for DC-09 ({srv.name}) on {c.host}:{c.port}:"
                                   f" {exc.strerror or exc}") from None
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
        try:
            sock = _bind(self.settings.web_host, self.settings.web_port)
        except OSError as exc:
            raise StartupError(f"cannot listen for the web on {self.settings.web_host}:{self.settings.web_port}:"
                               f" {exc.strerror or exc}") from None
        self._web = UvicornServer(config)
        self._web_task = asyncio.create_task(self._web.serve(sockets=[sock]), name="web")
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
        if self.store is not None and self.store.failing:  # receiving, but nothing is acknowledged
            for row in out:
                if row.get("state") == "running":
                    row["state"] = "degraded"
                    row["detail"] = f"database failing, signals not acknowledged: {self.store.stats.last_error}"
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
        """Stop everything that started (also after a start-up cut short). Receivers first: they
        stop taking frames and ACK what the store commits; then the rest; each step is bounded,
        so a stop ends even when the database does not answer."""
        t0 = time.monotonic()
        await self.write_audit_anchor("stop")

        async def step(what: str, aw: Awaitable[Any], timeout: float = 10.0) -> bool:
            try:
                await asyncio.wait_for(aw, timeout)
                return True
            except Exception as exc:
                log.warning("stopping %s: %s", what, str(exc) or type(exc).__name__)
                return False
            finally:
                log.debug("stopped %s at %.2f s", what, time.monotonic() - t0)

        for r in self.receivers:
            await step(r.name, r.stop())
        self.receivers.clear()
        if self._web is not None and self._web_task is not None:
            self._web.should_exit = True
            await step("web", self._web_task)
        if self.dispatch_timers:
            await step("dispatch timers", self.dispatch_timers.stop())
        if self.supervisor:
            await step("supervision", self.supervisor.stop())
        if self.engine:
            await step("alarm engine", self.engine.stop())
        if self.store:
            await step("signal store", self.store.stop(), 20)
        for t in self._tasks:
            t.cancel()
        if self._listener is not None:
            await step("account listener", self._listener.stop())
        if self.pool is not None:
            if not await step("database pool", self.pool.close(), 5):
                self.pool.terminate()  # connections still busy after 5 s: cut them
        if self._embedded is not None:
            await step("embedded PostgreSQL", asyncio.to_thread(self._embedded.stop), 60)
