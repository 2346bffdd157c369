"""Service periods and concurrent edits in the core: an account or object taken out of guard stores
and marks its signals but opens no alarm, supervision leaves it alone, and it comes back by itself
when the period ends; an edit from a stale copy changes nothing."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from console import account, alarm, audit, edit, guarded_object
from console.signal import Signal
from console.store import SignalStore
from console.supervision import KIND_COMM, sweep


async def submit(store: SignalStore, items: list[Signal]) -> None:
    fut: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
    store.submit(items, fut.set_result)
    assert await asyncio.wait_for(fut, 10)


def sig(number: str, code: str, seq: str) -> Signal:
    return Signal(receiver="test", protocol="SIA-DCS", account=number, code=code, code_kind="sia",
                  received_at=datetime.now(UTC), raw=b"raw", sequence=seq, zone="001", line_no="0")


async def setup_two(pool: asyncpg.Pool) -> tuple[int, int, int, int]:
    o1 = await guarded_object.create(pool, "Bank")
    a1 = await account.create(pool, "1111", object_id=o1, supervision_interval=60)
    o2 = await guarded_object.create(pool, "Shop")
    a2 = await account.create(pool, "2222", object_id=o2, supervision_interval=60)
    return o1, a1, o2, a2


async def test_signals_in_service_are_stored_marked_and_raise_no_alarm(pool: asyncpg.Pool, store: SignalStore) -> None:
    o1, a1, o2, a2 = await setup_two(pool)
    until = datetime.now(UTC) + timedelta(hours=2)
    async with pool.acquire() as conn, conn.transaction():
        acc = await edit.set_service(conn, table="accounts", entity="account", row_id=a1, version=1, until=until,
                                     reason="panel replaced", actor="admin")
        obj = await edit.set_service(conn, table="guarded_objects", entity="object", row_id=o2, version=1,
                                     until=until, reason="renovation", actor="admin")
    assert acc["version"] == 2 and obj["version"] == 2
    await submit(store, [sig("1111", "BA", "0001"), sig("2222", "FA", "0002")])
    async with pool.acquire() as conn:
        result = await alarm.process_batch(conn)
    assert result.signals == 2 and result.changed == []
    assert await pool.fetchval("SELECT count(*) FROM signals") == 2
    assert await pool.fetchval("SELECT count(*) FROM alarms") == 0
    marks = await pool.fetch("SELECT s.account, m.reason FROM service_signals m JOIN signals s ON s.id = m.signal_id"
                             " ORDER BY s.account")
    assert [tuple(m) for m in marks] == [("1111", "panel replaced"), ("2222", "renovation")]

    # supervision: both silent past their deadline, neither raised while in service
    await pool.execute("UPDATE accounts SET supervision_deadline = now() - interval '1 minute'")
    async with pool.acquire() as conn:
        r = await sweep(conn, datetime.now(UTC))
    assert r.failed == []

    # back in service early (until = None): a signal raises an alarm again
    async with pool.acquire() as conn, conn.transaction():
        await edit.set_service(conn, table="accounts", entity="account", row_id=a1, version=2, until=None,
                               reason="", actor="admin")
    await submit(store, [sig("1111", "BA", "0003")])
    async with pool.acquire() as conn:
        result = await alarm.process_batch(conn)
    assert len(result.changed) == 1
    actions = [r["action"] for r in await pool.fetch("SELECT action FROM audit_log WHERE actor = 'admin' ORDER BY id")]
    assert actions == ["account.service", "object.service", "account.service-ended"]


async def test_service_ends_by_itself_and_supervision_resumes(pool: asyncpg.Pool, store: SignalStore) -> None:
    o1, a1, o2, a2 = await setup_two(pool)
    # periods that have just run out (set directly: the API refuses an end in the past)
    await pool.execute("UPDATE accounts SET service_until = now() - interval '1 second', service_reason = 'x',"
                       " supervision_deadline = now() - interval '1 hour' WHERE id = $1", a1)
    await pool.execute("UPDATE guarded_objects SET service_until = now() - interval '1 second',"
                       " service_reason = 'y' WHERE id = $1", o2)
    async with pool.acquire() as conn:
        r = await sweep(conn, datetime.now(UTC))
    assert (r.service_ended_objects, r.service_ended_accounts) == ([o2], [a1])
    assert r.failed == []  # a fresh interval after the works, not an instant failure
    assert await pool.fetchval("SELECT count(*) FROM accounts WHERE service_until IS NOT NULL") == 0
    assert await pool.fetchval("SELECT count(*) FROM guarded_objects WHERE service_until IS NOT NULL") == 0
    ended = {(r["action"], r["entity_id"]) for r in await pool.fetch(
        "SELECT action, entity_id FROM audit_log WHERE actor = 'system:supervision'")}
    assert ended == {("account.service-ended", str(a1)), ("object.service-ended", str(o2))}
    await submit(store, [sig("2222", "BA", "0001")])
    async with pool.acquire() as conn:
        assert len((await alarm.process_batch(conn)).changed) == 1
    # and once its new deadline passes, a silent account is raised again
    await pool.execute("UPDATE accounts SET supervision_deadline = now() - interval '1 second' WHERE id = $1", a1)
    async with pool.acquire() as conn:
        r = await sweep(conn, datetime.now(UTC))
    assert r.failed == [a1]
    assert await pool.fetchval("SELECT count(*) FROM alarms WHERE kind = $1", KIND_COMM) == 1
    async with pool.acquire() as conn:
        assert (await audit.verify(conn)).ok


async def test_a_stale_edit_changes_nothing(pool: asyncpg.Pool) -> None:
    oid = await guarded_object.create(pool, "Bank", address="Old street 1")
    async with pool.acquire() as conn:
        first = await guarded_object.update(conn, "admin1", oid, 1, {"address": "New street 2"})
        assert first["version"] == 2
        with pytest.raises(edit.Stale) as stale:
            await guarded_object.update(conn, "admin2", oid, 1, {"name": "Bank (closed)"})
        assert stale.value.field == "version" and stale.value.ctx["current"] == 2
    row = await pool.fetchrow("SELECT * FROM guarded_objects WHERE id = $1", oid)
    assert (row["name"], row["address"], row["version"]) == ("Bank", "New street 2", 2)
    detail = await pool.fetchval("SELECT detail FROM audit_log WHERE action = 'object.updated'")
    assert detail["before"] == {"address": "Old street 1"} and detail["after"] == {"address": "New street 2"}
    async with pool.acquire() as conn, conn.transaction():
        with pytest.raises(edit.Invalid) as bad:
            await edit.set_service(conn, table="guarded_objects", entity="object", row_id=oid, version=2,
                                   until=datetime.now(UTC) - timedelta(minutes=1), reason="x", actor="a")
        assert bad.value.field == "until"
        with pytest.raises(edit.Invalid) as bad:
            await edit.set_service(conn, table="guarded_objects", entity="object", row_id=oid, version=2,
                                   until=datetime.now(UTC) + timedelta(hours=1), reason=" ", actor="a")
        assert bad.value.field == "reason"
