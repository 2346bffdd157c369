"""Backups with the embedded server's pg_dump / pg_restore: a backup restored into a fresh database
passes the audit-chain check; each backup is recorded (and verified) for the row-3 check."""

from __future__ import annotations

import datetime as dt
import json
import secrets
from pathlib import Path

import asyncpg
import pytest

from compliance import backup, check
from console import audit, db
from console.config import Settings
from kuzet import backup_cli
from tests import compliance_post as post


async def test_a_backup_restores_into_a_fresh_database_with_its_audit_chain(
        pool: asyncpg.Pool, pg_dsn: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    async with pool.acquire() as conn:
        await post.build(conn, tmp_path, dt.date.today())
        entries = await conn.fetchval("SELECT count(*) FROM audit_log")
        lines: list[str] = []
        rec = await backup.make(conn, pg_dsn, tmp_path / "out" / "k.dump", actor="test", home=tmp_path,
                                progress=lines.append)
    dump = tmp_path / "out" / "k.dump"
    assert rec["verified"] and rec["audit_entries"] == entries, rec
    assert rec["sha256"] == backup.sha256_file(dump) and rec["size"] == dump.stat().st_size
    assert dump.stat().st_mode & 0o777 == 0o600
    assert any("verified: audit chain intact" in x for x in lines), lines
    # an anchor beside the dump and in the data directory
    side = json.loads((tmp_path / "out" / "k.dump.anchor.json").read_text())
    assert side["backup"]["sha256"] == rec["sha256"] and side["audit_anchor"]["count"] == entries + 1
    assert audit.read_anchors(tmp_path / audit.ANCHORS_FILE)[-1].reason == "backup"
    # restore into a fresh database: the audit chain verifies there, the data is there
    fresh = f"kuzet_restore_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(pg_dsn)
    await admin.execute(f'CREATE DATABASE "{fresh}"')
    try:
        target = backup.with_database(pg_dsn, fresh)
        await backup.restore(dump, target)
        conn = await db.connect(target)
        try:
            v = await audit.verify(conn)
            assert v.ok and v.entries == entries
            assert await conn.fetchval("SELECT count(*) FROM compliance_documents") > 10
            assert await conn.fetchval("SELECT count(*) FROM signals") == post.DAYS
        finally:
            await conn.close()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{fresh}" WITH (FORCE)')
        await admin.close()
    # the row-3 check now rests on this backup
    async with pool.acquire() as conn:
        got = {r.row: r for r in await check.run_all(conn, period_from=dt.date.today() - dt.timedelta(days=6),
                                                         period_to=dt.date.today(),
                                                         settings={"home": str(tmp_path)})}
        ev = next(e for e in got["3.3"].evidence if e.label["en"] == "Last verified backup")
        assert ev.detail["sha256"] == rec["sha256"] and got["3.3"].status == "met", got["3.3"].to_dict()
        chain = next(e for e in got["3.3"].evidence if e.label["en"] == "Audit log chain")
        assert chain.detail["anchors_checked"] == 1


async def test_a_damaged_backup_is_recorded_as_not_verified(pool: asyncpg.Pool, pg_dsn: str, tmp_path: Path) -> None:
    async with pool.acquire() as conn:
        await post.build(conn, tmp_path, dt.date.today())
        dump = tmp_path / "k.dump"
        await backup.dump(pg_dsn, dump)
        data = bytearray(dump.read_bytes())
        data[len(data) // 2: len(data) // 2 + 64] = bytes(64)  # a damaged stretch in the middle
        dump.write_bytes(bytes(data))
        with pytest.raises(backup.BackupError):
            await backup.verify(pg_dsn, dump)
        # the scratch database of the failed verification is gone
        admin = await asyncpg.connect(pg_dsn)
        try:
            assert not await admin.fetchval("SELECT count(*) FROM pg_database WHERE datname LIKE 'kuzet_verify_%'")
        finally:
            await admin.close()
        # make() records such a backup as made but not verified (row 3 then says so)
        rec = await backup.make(conn, pg_dsn, tmp_path / "ok.dump", actor="test", check=False)
        assert not rec["verified"]


async def test_backup_and_restore_commands(pool: asyncpg.Pool, pg_dsn: str, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    async with pool.acquire() as conn:
        await post.build(conn, tmp_path, dt.date.today())
    settings = Settings(home=tmp_path, database_url=pg_dsn)
    out = tmp_path / "cli.dump"
    assert await backup_cli.backup_command(settings, str(out)) == 0
    printed = capsys.readouterr().out
    assert "backing up the database" in printed and "verified: yes" in printed
    async with pool.acquire() as conn:
        made = await backup.list_backups(conn)
        assert made[0]["file"] == str(out) and made[0]["verified"] and made[0]["made_by"] == "cli:backup"
    # restore into the configured database refuses to overwrite without --replace
    assert await backup_cli.restore_command(settings, str(out), into=None, replace=False) == 2
    fresh = f"kuzet_restore_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(pg_dsn)
    await admin.execute(f'CREATE DATABASE "{fresh}"')
    try:
        code = await backup_cli.restore_command(settings, str(out), into=backup.with_database(pg_dsn, fresh),
                                                replace=False)
        assert code == 0
        assert "audit chain intact" in capsys.readouterr().out
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{fresh}" WITH (FORCE)')
        await admin.close()
