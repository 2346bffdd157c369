"""Shared fixtures: one real embedded PostgreSQL for the whole run, emptied before each test."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from console import db
from console.store import SignalStore
from kuzet.runtime import DOMAINS

EXTRA_TABLES_SQL = (
    "SELECT string_agg(quote_ident(tablename), ', ') FROM pg_tables WHERE schemaname = 'public'"
    " AND tablename <> 'schema_migrations'"
)


@pytest.fixture(scope="session")
def pg_dsn() -> Iterator[str]:
    """A real PostgreSQL: KUZET_TEST_DATABASE_URL if set, else an embedded server in a temp dir."""
    external = os.environ.get("KUZET_TEST_DATABASE_URL")
    if external:
        yield external
        return
    home = Path(tempfile.mkdtemp(prefix="kuzet-test-", dir="/tmp"))
    server = db.EmbeddedServer(home / "pgdata")
    dsn = server.start()
    try:
        yield dsn
    finally:
        server.stop()
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
async def migrated(pg_dsn: str) -> str:
    conn = await db.connect(pg_dsn)
    try:
        await db.migrate(conn, DOMAINS)
    finally:
        await conn.close()
    return pg_dsn


@pytest.fixture
async def pool(migrated: str) -> AsyncIterator[asyncpg.Pool]:
    """A fresh pool over an emptied database (every table but the migrations)."""
    p = await db.create_pool(migrated, min_size=1, max_size=8)
    tables = await p.fetchval(EXTRA_TABLES_SQL)
    await p.execute(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
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
