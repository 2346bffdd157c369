"""The history is safe even from Kuzet's own connection: the runtime role (what `pool` and
`migrated` connect as) may add signals, audit entries and alarm events, never change, delete or
truncate them, and cannot switch the append-only triggers off. The embedded server asks every
connection for a password."""

from __future__ import annotations

import asyncio
import os
import secrets
import stat
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest

from console import audit, db
from console.signal import Signal
from console.store import SignalStore
from kuzet.runtime import DOMAINS

Refused = (asyncpg.InsufficientPrivilegeError,)


async def _refused(conn: asyncpg.Connection, sql: str) -> None:
    with pytest.raises(Refused):
        await conn.execute(sql)


def _sig(seq: str) -> Signal:
    return Signal(receiver="test", protocol="SIA-DCS", account="1234", code="BA", code_kind="sia",
                  received_at=datetime.now(UTC), raw=b"raw", sequence=seq, zone="001")


@pytest.fixture
async def history(pool: asyncpg.Pool, store: object) -> AsyncIterator[asyncpg.Pool]:
    """One signal, one alarm with an event, two audit entries, all written as the runtime."""
    assert isinstance(store, SignalStore)
    done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
    store.submit([_sig("0001")], done.set_result)
    assert await asyncio.wait_for(done, 10)
    async with pool.acquire() as conn, conn.transaction():
        await audit.append(conn, [audit.Entry("admin", "x.one", "thing", "1"), audit.Entry("admin", "x.two", "thing")])
        alarm_id = await conn.fetchval(
            "INSERT INTO alarms (account, kind, klass, priority, title) VALUES ('1234', 'signal', 'burglary', 1,"
            " '{}'::jsonb) RETURNING id")
        await conn.execute("INSERT INTO alarm_events (alarm_id, kind) VALUES ($1, 'opened')", alarm_id)
    yield pool


async def test_runtime_may_add_history_but_never_change_it(history: asyncpg.Pool) -> None:
    async with history.acquire() as conn:
        assert await conn.fetchval("SELECT current_user") == db.RUNTIME_ROLE
        assert await conn.fetchval("SELECT count(*) FROM signals") == 1
        for table in ("signals", "audit_log", "alarm_events"):
            await _refused(conn, f"DELETE FROM {table}")
            await _refused(conn, f"TRUNCATE {table}")
            await _refused(conn, f"TRUNCATE {table} CASCADE")
            await _refused(conn, f"UPDATE {table} SET id = id")
            # it owns nothing: the append-only triggers stay on
            with pytest.raises(Refused):  # "must be owner of table"
                await conn.execute(f"ALTER TABLE {table} DISABLE TRIGGER ALL")
            await _refused(conn, f"ALTER TABLE {table} OWNER TO {db.RUNTIME_ROLE}")
            await _refused(conn, f"DROP TABLE {table}")
        await _refused(conn, "UPDATE audit_log SET actor = 'mallory'")
        await _refused(conn, "UPDATE alarm_events SET kind = 'closed'")
        await _refused(conn, "ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_change")
        # nor around the triggers, nor around the grants
        await _refused(conn, "SET session_replication_role = replica")
        await _refused(conn, "CREATE TABLE mine (x int)")
        await conn.execute(f"GRANT DELETE ON signals TO {db.RUNTIME_ROLE}")  # only a warning: nothing granted
        assert not await conn.fetchval("SELECT has_table_privilege('signals', 'DELETE')")
        await _refused(conn, f"SELECT kuzet_grant_runtime('{db.RUNTIME_ROLE}'::regrole)")
        await _refused(conn, "SELECT kuzet_append_only('alarms')")
        await _refused(conn, "INSERT INTO schema_migrations (domain, version, name) VALUES ('x', 1, 'x')")
        with pytest.raises(asyncpg.PostgresError):  # no superuser, no CREATEROLE
            await conn.execute(f"ALTER ROLE {db.RUNTIME_ROLE} SUPERUSER")
        # and it still does its work: appends and the operational tables
        async with conn.transaction():
            await audit.append(conn, [audit.Entry("admin", "x.three", "thing")])
        await conn.execute("UPDATE alarms SET state = 'acknowledged'")
        await conn.execute("DELETE FROM signal_inbox")
        assert (await audit.verify(conn)).ok


async def test_no_truncate_anywhere_for_the_runtime(pool: asyncpg.Pool) -> None:
    tables = [r["tablename"] for r in await pool.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
    assert "signals" in tables and len(tables) > 10
    async with pool.acquire() as conn:
        for t in tables:
            assert not await conn.fetchval("SELECT has_table_privilege($1, 'TRUNCATE')", t), t
            assert not await conn.fetchval("SELECT has_table_privilege($1, 'TRIGGER')", t), t
            assert await conn.fetchval("SELECT pg_get_userbyid(relowner) FROM pg_class WHERE relname = $1", t) \
                == db.OWNER_ROLE, t


async def test_new_tables_are_granted_and_append_only_ones_stay_so(pool: asyncpg.Pool, owner_dsn: str) -> None:
    """What another domain's migration gets: a new table is the runtime's to use at once; one marked
    with kuzet_append_only() (or given a plain REVOKE) takes rows but never loses them, also after
    the migration runner grants again."""
    suffix = secrets.token_hex(3)
    log_t, plain_t, revoked_t = f"t_log_{suffix}", f"t_plain_{suffix}", f"t_rev_{suffix}"
    owner = await db.connect(owner_dsn)
    try:
        await owner.execute(f"CREATE TABLE {plain_t} (id bigserial PRIMARY KEY, v text)")
        await owner.execute(f"CREATE TABLE {log_t} (id bigserial PRIMARY KEY, v text);"
                            f" SELECT kuzet_append_only('{log_t}')")
        await owner.execute(f"CREATE TABLE {revoked_t} (id bigserial PRIMARY KEY, v text);"
                            f" REVOKE UPDATE, DELETE, TRUNCATE ON {revoked_t} FROM {db.RUNTIME_ROLE}")
        for again in (False, True):
            if again:  # the runner's grants at the next start keep both append-only
                await db.migrate(owner, DOMAINS, runtime_role=db.RUNTIME_ROLE)
            async with pool.acquire() as conn:
                await conn.execute(f"INSERT INTO {plain_t} (v) VALUES ('a')")
                await conn.execute(f"UPDATE {plain_t} SET v = 'b'")
                await conn.execute(f"DELETE FROM {plain_t}")
                for t in (log_t, revoked_t):
                    await conn.execute(f"INSERT INTO {t} (v) VALUES ('a')")
                    assert await conn.fetchval(f"SELECT count(*) FROM {t}") >= 1
                    await _refused(conn, f"UPDATE {t} SET v = 'b'")
                    await _refused(conn, f"DELETE FROM {t}")
                    await _refused(conn, f"TRUNCATE {t}")
    finally:
        await owner.execute(f"DROP TABLE {log_t}, {plain_t}, {revoked_t}")
        await owner.execute("DELETE FROM kuzet_append_only WHERE table_name = $1", log_t)
        await owner.close()


def test_a_long_data_path_is_refused(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60) / "pgdata"
    with pytest.raises(db.DataPathError, match="too long"):
        db.EmbeddedServer(deep).start()
    assert not deep.exists()  # refused before anything was made


async def test_the_embedded_server_wants_a_password(tmp_path: Path) -> None:
    home = Path(os.path.join("/tmp", f"kz-{secrets.token_hex(4)}"))
    server = db.EmbeddedServer(home / "pgdata")
    try:
        owner_dsn = server.start()
        assert stat.S_IMODE(home.stat().st_mode) in (0o700, 0o711)  # traversal only for the server's user
        assert stat.S_IMODE((home / "pgdata").stat().st_mode) == 0o700
        assert stat.S_IMODE(server.credentials_file.stat().st_mode) == 0o600
        assert "trust" not in "".join(line.split("#")[0] for line in (home / "pgdata" / "pg_hba.conf").read_text().splitlines())
        socket_dir = str(home / "pgdata")
        for user in ("postgres", db.OWNER_ROLE, db.RUNTIME_ROLE):
            with pytest.raises((asyncpg.InvalidPasswordError, asyncpg.InvalidAuthorizationSpecificationError)):
                await asyncpg.connect(host=socket_dir, user=user, database="postgres", password="guess")
        with pytest.raises((asyncpg.InvalidPasswordError, asyncpg.InvalidAuthorizationSpecificationError)):
            await asyncpg.connect(host=socket_dir, user="postgres", database="postgres")
        conn = await asyncpg.connect(owner_dsn)
        try:
            assert await conn.fetchval("SELECT current_user") == db.OWNER_ROLE
            assert not await conn.fetchval("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        finally:
            await conn.close()
        # an older database, made by the superuser, is handed to the owner at the next start
        su = await asyncpg.connect(server.superuser_dsn)
        try:
            await su.execute("CREATE TABLE legacy (id bigserial PRIMARY KEY)")
        finally:
            await su.close()
        server.stop()
        server.start()  # a restart: the same passwords, scram all along
        conn = await asyncpg.connect(server.app_dsn)
        try:
            assert await conn.fetchval("SELECT pg_get_userbyid(relowner) FROM pg_class WHERE relname = 'legacy'") \
                == db.OWNER_ROLE
        finally:
            await conn.close()
    finally:
        server.stop()
        import shutil

        shutil.rmtree(home, ignore_errors=True)


async def test_the_runtime_connects_as_the_runtime_role(pool: asyncpg.Pool, owner_dsn: str, migrated: str,
                                                        tmp_path: Path) -> None:
    """System: migrations as the owner, everything else as the runtime role; a clean stop anchors
    the audit chain in $KUZET_HOME."""
    from console.config import Settings
    from kuzet.runtime import System

    settings = Settings(home=tmp_path, database_url=owner_dsn, app_database_url=migrated, dc09=[])
    system = System(settings, with_web=False, with_receivers=False, with_engine=False, with_supervision=False)
    await system.start()
    try:
        assert system.pool is not None and system.dsn == migrated and system.owner_dsn == owner_dsn
        assert await system.pool.fetchval("SELECT current_user") == db.RUNTIME_ROLE
        async with system.pool.acquire() as conn, conn.transaction():
            await audit.append(conn, [audit.Entry("admin", "x.one", "thing")])
    finally:
        await system.stop()
    anchors = audit.read_anchors(tmp_path / audit.ANCHORS_FILE)
    assert [(a.count, a.reason) for a in anchors] == [(1, "stop")]
