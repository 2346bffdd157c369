"""`kuzet backup` and `kuzet restore`: which server and which roles (the composition), then
compliance.backup does the work and prints its progress."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import asyncpg

from compliance import backup
from console import config, db


def _say(message: str) -> None:
    print(message, flush=True)


async def _reachable(dsn: str | None) -> bool:
    if not dsn:
        return False
    try:
        conn = await asyncpg.connect(dsn, timeout=3)
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return False
    await conn.close()
    return True


async def _open(settings: config.Settings) -> tuple[db.EmbeddedServer | None, str, str, bool]:
    """(embedded server we started or None, admin DSN for pg_dump/pg_restore and the scratch database,
    DSN to record with, external?). A running post's embedded server is used as it is (not stopped)."""
    if settings.database_url:
        return None, settings.database_url, settings.database_url, True
    running = db.running_dsn(settings.pgdata, db.SUPERUSER)
    if running and await _reachable(running):
        owner = db.running_dsn(settings.pgdata, db.OWNER_ROLE)
        assert owner is not None
        return None, running, owner, False
    embedded = db.EmbeddedServer(settings.pgdata)
    await asyncio.to_thread(embedded.start)
    return embedded, embedded.superuser_dsn, embedded.owner_dsn, False


async def backup_command(settings: config.Settings, out: str | None, *, check: bool = True) -> int:
    embedded, admin_dsn, record_dsn, external = await _open(settings)
    try:
        target = Path(out).resolve() if out else backup.default_path(settings.home)
        conn = await db.connect(record_dsn)
        try:
            rec = await backup.make(conn, admin_dsn, target, actor="cli:backup", home=settings.home,
                                    external=external, check=check, progress=_say)
        finally:
            await conn.close()
    except backup.BackupError as e:
        print(f"backup failed: {e}", file=sys.stderr)
        return 1
    finally:
        if embedded:
            await asyncio.to_thread(embedded.stop)
    print(f"backup {rec['id']}: {target} ({rec['size']} bytes), verified: {'yes' if rec['verified'] else 'NO'}")
    return 0 if rec["verified"] or not check else 1


async def restore_command(settings: config.Settings, file: str, *, into: str | None, replace: bool) -> int:
    """Restore FILE into `into` (default: the configured database, which must then be empty unless
    --replace), grant the runtime role, and check the audit chain of what was restored."""
    from console import audit
    from kuzet.runtime import DOMAINS

    path = Path(file)
    if not path.is_file():
        print(f"no such file: {file}", file=sys.stderr)
        return 2
    embedded = None
    external = bool(into or settings.database_url)
    if into is None:
        embedded, admin_dsn, _record, external = await _open(settings)
        into = admin_dsn
    try:
        conn = await db.connect(into)
        try:
            has = await conn.fetchval("SELECT to_regclass('public.audit_log') IS NOT NULL")
        finally:
            await conn.close()
        if has and not replace:
            print("the target database already holds a Kuzet schema: give --replace to overwrite it,"
                  " or --into URL of an empty database", file=sys.stderr)
            return 2
        _say(f"restoring {path} ({path.stat().st_size / 1048576:.2f} MiB, sha256 {backup.sha256_file(path)})")
        await backup.restore(path, into, external=external, clean=replace, progress=_say,
                             role=None if external else db.OWNER_ROLE)
        conn = await db.connect(into)
        try:
            runtime = db.RUNTIME_ROLE if await conn.fetchval(
                "SELECT 1 FROM pg_roles WHERE rolname = $1", db.RUNTIME_ROLE) else None
            await db.migrate(conn, DOMAINS, runtime_role=runtime)  # grants; newer migrations, if any
            v = await audit.verify(conn)
        finally:
            await conn.close()
    except (backup.BackupError, asyncpg.PostgresError, OSError) as e:
        print(f"restore failed: {e}", file=sys.stderr)
        return 1
    finally:
        if embedded:
            await asyncio.to_thread(embedded.stop)
    if v.ok:
        _say(f"restored; audit chain intact over {v.entries} entries")
        return 0
    _say(f"restored, but the audit chain is BROKEN: {v.reason}")
    return 1
