"""The audit chain is anchored outside the database: `kuzet audit verify` holds the chain against
the anchors and names what is wrong. The attacker here has the owner's connection (it can switch
the append-only trigger off and rewrite rows); the runtime role cannot even do that."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import sys
from pathlib import Path

import asyncpg

from console import audit


async def _entries(pool: asyncpg.Pool, n: int, start: int = 0) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await audit.append(conn, [audit.Entry("admin", "thing.changed", "thing", str(start + i), {"i": start + i})
                                  for i in range(n)])


async def _as_owner(owner_dsn: str, *sql: str) -> None:
    conn = await asyncpg.connect(owner_dsn)
    try:
        await conn.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_change")
        for s in sql:
            await conn.execute(s)
        await conn.execute("ALTER TABLE audit_log ENABLE TRIGGER audit_log_no_change")
    finally:
        await conn.close()


async def _rewrite_from(owner_dsn: str, first_id: int, new_detail: dict[str, object]) -> None:
    """Change one entry and recompute every hash after it: the links alone then look intact."""
    conn = await asyncpg.connect(owner_dsn)
    try:
        await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")
        await conn.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_change")
        await conn.execute("UPDATE audit_log SET detail = $2 WHERE id = $1", first_id, new_detail)
        prev = await conn.fetchval("SELECT hash FROM audit_log WHERE id < $1 ORDER BY id DESC LIMIT 1",
                                   first_id) or audit.GENESIS
        for r in await conn.fetch("SELECT * FROM audit_log WHERE id >= $1 ORDER BY id", first_id):
            h = audit.entry_hash(prev, r["at"], r["actor"], r["action"], r["entity"], r["entity_id"], r["detail"])
            await conn.execute("UPDATE audit_log SET prev_hash = $2, hash = $3 WHERE id = $1", r["id"], prev, h)
            prev = h
        await conn.execute("ALTER TABLE audit_log ENABLE TRIGGER audit_log_no_change")
    finally:
        await conn.close()


async def _cli(home: Path, owner_dsn: str, app_dsn: str, *anchors: Path) -> tuple[int, str]:
    env = {**os.environ, "KUZET_DATABASE_URL": owner_dsn, "KUZET_APP_DATABASE_URL": app_dsn,
           "KUZET_HOME": str(home)}
    args = [a for p in anchors for a in ("--anchor", str(p))]
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "kuzet", "audit", "verify", *args, env=env,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode()


async def test_anchor_file_is_private_json_lines(pool: asyncpg.Pool, tmp_path: Path) -> None:
    empty = await audit.anchor(pool)
    assert (empty.count, empty.last_id, empty.last_hash) == (0, 0, "")
    await _entries(pool, 3)
    a = await audit.anchor(pool)
    last = await pool.fetchrow("SELECT id, hash FROM audit_log ORDER BY id DESC LIMIT 1")
    assert (a.count, a.last_id, a.last_hash) == (3, last["id"], bytes(last["hash"]).hex())
    audit.write_anchor(tmp_path, empty, "start")
    audit.write_anchor(tmp_path, a, "backup")
    path = tmp_path / "audit-anchors.jsonl"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [d["reason"] for d in lines] == ["start", "backup"] and lines[1]["count"] == 3
    back = audit.read_anchors(path)
    assert [(x.count, x.last_hash, x.reason) for x in back] == [(0, "", "start"), (3, a.last_hash, "backup")]
    # one anchor as a JSON object (as a backup or an evidence export carries it)
    single = tmp_path / "anchor.json"
    single.write_text(json.dumps(a.as_dict()))
    assert audit.read_anchors(single)[0].last_hash == a.last_hash


async def test_verify_finds_a_deleted_tail(pool: asyncpg.Pool, owner_dsn: str, migrated: str, tmp_path: Path) -> None:
    await _entries(pool, 5)
    audit.write_anchor(tmp_path, await audit.anchor(pool), "stop")
    code, out = await _cli(tmp_path, owner_dsn, migrated)  # the default anchors file of $KUZET_HOME
    assert code == 0, out
    assert "audit log: 5 entries" in out and "OK" in out
    # the newest two entries go: every remaining hash link still holds
    await _as_owner(owner_dsn, "DELETE FROM audit_log WHERE id IN (SELECT id FROM audit_log ORDER BY id DESC LIMIT 2)")
    async with pool.acquire() as conn:
        assert (await audit.verify(conn)).ok  # without the anchor nothing shows
    code, out = await _cli(tmp_path, owner_dsn, migrated, tmp_path / "audit-anchors.jsonl")
    assert code == 1, out
    assert "counted 5 entries" in out and "the log has 3" in out and "2 entries after #3 were deleted" in out, out
    assert "TAMPERED" in out


async def test_verify_finds_a_rewritten_chain(pool: asyncpg.Pool, owner_dsn: str, migrated: str,
                                              tmp_path: Path) -> None:
    await _entries(pool, 4)
    a4 = await audit.anchor(pool)
    audit.write_anchor(tmp_path, a4, "evidence export")
    await _entries(pool, 2, start=4)
    a6 = await audit.anchor(pool)
    other = tmp_path / "backup-anchor.json"
    other.write_text(json.dumps({"audit_anchor": {**a6.as_dict(), "reason": "backup"}}))
    ids = [r["id"] for r in await pool.fetch("SELECT id FROM audit_log ORDER BY id")]
    await _rewrite_from(owner_dsn, ids[1], {"i": 99})
    async with pool.acquire() as conn:
        assert (await audit.verify(conn)).ok  # a consistent forgery: the links alone cannot tell
        v = await audit.verify(conn, [a4, a6])
    assert not v.ok and len(v.problems) == 2 and v.anchors_checked == 2
    code, out = await _cli(tmp_path, owner_dsn, migrated, tmp_path / "audit-anchors.jsonl", other)
    assert code == 1, out
    assert "anchor of" in out and "evidence export" in out and "backup" in out
    assert f"entry #4 was id {ids[3]} with hash {a4.last_hash[:16]}" in out
    assert "the chain was rewritten" in out and "PROBLEM" in out


async def test_verify_names_a_changed_entry(pool: asyncpg.Pool, owner_dsn: str) -> None:
    await _entries(pool, 3)
    first = await pool.fetchval("SELECT min(id) FROM audit_log")
    await _as_owner(owner_dsn, f"UPDATE audit_log SET actor = 'mallory' WHERE id = {first + 1}")
    async with pool.acquire() as conn:
        v = await audit.verify(conn, [await audit.anchor(conn)])
    assert not v.ok and v.first_bad_id == first + 1
    assert "content does not match its hash" in v.reason
