"""Shared fixtures: one real embedded PostgreSQL for the whole run, emptied before each test.

Connections are made as production makes them: `migrated` is the runtime role's DSN (it owns
nothing: INSERT/SELECT only on the history tables, no TRUNCATE), and `pool` is a pool of that role,
so every test exercises the real privileges. Migrations and the emptying between tests run as the
schema's owner (`owner_dsn`); `pg_dsn` is the superuser's, for the few tests that need one.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import asyncpg
import pytest

from console import db
from console.store import SignalStore
from kuzet.runtime import DOMAINS

EXTRA_TABLES_SQL = (
    "SELECT string_agg(quote_ident(tablename), ', ') FROM pg_tables WHERE schemaname = 'public'"
    " AND tablename NOT IN ('schema_migrations', 'kuzet_append_only')"
)


@dataclass(frozen=True)
class Dsns:
    superuser: str
    owner: str  # kuzet_owner: owns the schema, runs the migrations
    app: str  # kuzet_app: what the running post connects as


def _with_user(url: str, user: str, password: str) -> str:
    u = urlsplit(url)
    host = u.netloc.rpartition("@")[2]
    return urlunsplit(u._replace(netloc=f"{quote(user, safe='')}:{quote(password, safe='')}@{host}"))


async def _external_roles(superuser_dsn: str) -> Dsns:
    """On an external test server (KUZET_TEST_DATABASE_URL, a superuser): the same two roles."""
    owner_pw, app_pw = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    conn = await asyncpg.connect(superuser_dsn)
    try:
        await conn.execute(db.roles_sql(owner_pw, app_pw))
    finally:
        await conn.close()
    return Dsns(superuser_dsn, _with_user(superuser_dsn, db.OWNER_ROLE, owner_pw),
                _with_user(superuser_dsn, db.RUNTIME_ROLE, app_pw))


@pytest.fixture(scope="session")
def pg_server() -> Iterator[Dsns]:
    """A real PostgreSQL: KUZET_TEST_DATABASE_URL (a superuser) if set, else an embedded server in a
    temp dir, secured as Kuzet secures it (passwords, no trust)."""
    external = os.environ.get("KUZET_TEST_DATABASE_URL")
    if external:
        import asyncio

        yield asyncio.run(_external_roles(external))
        return
    home = Path(tempfile.mkdtemp(prefix="kuzet-test-", dir="/tmp"))
    server = db.EmbeddedServer(home / "pgdata")
    server.start()
    try:
        yield Dsns(server.superuser_dsn, server.owner_dsn, server.app_dsn)
    finally:
        server.stop()
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_dsn(pg_server: Dsns) -> str:
    """The superuser's DSN (administration in tests: roles, connection limits)."""
    return pg_server.superuser


@pytest.fixture(scope="session")
async def owner_dsn(pg_server: Dsns) -> str:
    """The schema owner's DSN, over the migrated schema (what `kuzet db migrate` connects as)."""
    conn = await db.connect(pg_server.owner)
    try:
        await db.migrate(conn, DOMAINS, runtime_role=db.RUNTIME_ROLE)
    finally:
        await conn.close()
    return pg_server.owner


@pytest.fixture(scope="session")
async def migrated(owner_dsn: str, pg_server: Dsns) -> str:
    """The runtime role's DSN over the migrated schema: what the running post connects as."""
    return pg_server.app


@pytest.fixture
async def pool(migrated: str, owner_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    """A fresh pool of the runtime role over an emptied database (every table but the bookkeeping);
    the emptying is done as the owner: the runtime may not truncate."""
    owner = await asyncpg.connect(owner_dsn)
    try:
        tables = await owner.fetchval(EXTRA_TABLES_SQL)
        await owner.execute(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
    finally:
        await owner.close()
    p = await db.create_pool(migrated, min_size=1, max_size=8)
    try:
        yield p
    finally:
        await p.close()


@pytest.fixture
async def store(pool: asyncpg.Pool) -> AsyncIterator[SignalStore]:
    """A running signal store over the emptied database."""
    s = SignalStore(pool)
    await s.start()
    try:
        yield s
    finally:
        await s.stop()
