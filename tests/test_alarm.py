"""The alarm engine and the operators' actions, against the real database."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import asyncpg
import pytest

from console import account, alarm, audit, guarded_object, user
from console.signal import Signal
from console.store import SignalStore


def cid(acct: str, q: str, code: str, zone: str = "003", seq: str = "0001") -> Signal:
    return Signal(receiver="test", protocol="ADM-CID", account=acct, code=code, code_kind="cid", qualifier=q,
                  zone=zone, partition="01", received_at=datetime.now(UTC), raw=b"raw", sequence=seq, line_no="0")


async def store_all(pool: asyncpg.Pool, signals: list[Signal]) -> None:
    store = SignalStore(pool)
    await store.start()
    try:
        fut: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        store.submit(signals, fut.set_result)
        assert await fut
    finally:
        await store.stop()


async def run_engine(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        while (await alarm.process_batch(conn)).signals:
            pass


@pytest.fixture
async def post(pool: asyncpg.Pool) -> dict[str, int]:
    oid = await guarded_object.create(pool, "Склад", address="Алматы", latitude=43.2, longitude=76.9)
    await account.create(pool, "1234", object_id=oid)
    uid = await user.create(pool, "op", "secret-pass", "operator")
    return {"object": oid, "user": uid}


async def test_alarm_opens_joins_and_restores(pool: asyncpg.Pool, post: dict[str, int]) -> None:
    await store_all(pool, [cid("1234", "1", "130", seq="0001")])
    await run_engine(pool)
    rows = await alarm.list_alarms(pool)
    assert len(rows) == 1
    a = rows[0]
    assert a["object_id"] == post["object"] and a["kind"] == "signal" and a["klass"] == "alarm"
    assert a["state"] == "new" and a["signal_count"] == 1 and not a["restored"]
    assert a["title"]["ru"] and a["title"]["kk"] and a["title"]["en"]

    # a fire on the same object joins the open alarm and raises its priority
    await store_all(pool, [cid("1234", "1", "110", zone="005", seq="0002")])
    await run_engine(pool)
    rows = await alarm.list_alarms(pool)
    assert len(rows) == 1 and rows[0]["signal_count"] == 2 and rows[0]["priority"] == 1

    # the restore is recorded against it
    await store_all(pool, [cid("1234", "3", "130", seq="0003")])
    await run_engine(pool)
    a = (await alarm.list_alarms(pool))[0]
    assert a["restored"]
    kinds = [e["kind"] for e in await alarm.history(pool, a["id"])]
    assert kinds == ["opened", "signal", "restore"]


async def test_tests_and_openings_do_not_open_alarms(pool: asyncpg.Pool, post: dict[str, int]) -> None:
    await store_all(pool, [cid("1234", "1", "602", zone="000", seq="0010"),
                           cid("1234", "1", "401", zone="002", seq="0011")])
    await run_engine(pool)
    assert await alarm.list_alarms(pool) == []
    assert await pool.fetchval("SELECT count(*) FROM signal_inbox") == 0
    assert await pool.fetchval("SELECT last_seen_at FROM accounts WHERE number = '1234'") is not None


async def test_unknown_account_raises_an_alarm(pool: asyncpg.Pool, post: dict[str, int]) -> None:
    await store_all(pool, [cid("9999", "1", "602", seq="0001"), cid("9999", "1", "130", seq="0002")])
    await run_engine(pool)
    rows = await alarm.list_alarms(pool)
    assert len(rows) == 1
    assert rows[0]["kind"] == "unknown-account" and rows[0]["account"] == "9999"
    assert rows[0]["object_id"] is None and rows[0]["signal_count"] == 2
    assert "9999" in rows[0]["title"]["en"]


async def test_lifecycle_with_events_and_audit(pool: asyncpg.Pool, post: dict[str, int]) -> None:
    await store_all(pool, [cid("1234", "1", "120", seq="0001")])
    await run_engine(pool)
    a = (await alarm.list_alarms(pool))[0]
    actor = alarm.Actor(post["user"], "op")
    async with pool.acquire() as conn:
        with pytest.raises(alarm.AlarmError):
            await alarm.close(conn, a["id"], actor, "false-alarm")  # not acknowledged yet
        acked = await alarm.acknowledge(conn, a["id"], actor)
        assert acked["state"] == "acknowledged"
        with pytest.raises(alarm.AlarmError):
            await alarm.acknowledge(conn, a["id"], actor)
        with pytest.raises(alarm.AlarmError):
            await alarm.close(conn, a["id"], actor, "no-such-outcome")
        closed = await alarm.close(conn, a["id"], actor, "real-alarm", "ГБР на месте, задержан")
        assert closed["state"] == "closed" and closed["outcome"] == "real-alarm"
        assert [e["kind"] for e in await alarm.history(conn, a["id"])] == ["opened", "acknowledged", "closed"]
        actions = [r["action"] for r in await conn.fetch("SELECT action FROM audit_log ORDER BY id")]
        assert actions == ["alarm.opened", "alarm.acknowledged", "alarm.closed"]
        v = await audit.verify(conn)
        assert v.ok and v.entries == 3
    # a new alarm on the same object after closing is a new alarm
    await store_all(pool, [cid("1234", "1", "130", seq="0002")])
    await run_engine(pool)
    assert len(await alarm.list_alarms(pool)) == 1
    assert len(await alarm.list_alarms(pool, include_closed=True)) == 2


async def test_audit_chain_detects_tampering(pool: asyncpg.Pool, owner_dsn: str) -> None:
    async with pool.acquire() as conn:
        async with conn.transaction():
            await audit.append(conn, [audit.Entry("admin", "x.one", "thing", "1", {"a": 1}),
                                      audit.Entry("admin", "x.two", "thing", "2", {"b": "қ"})])
        assert (await audit.verify(conn)).ok
        with pytest.raises(asyncpg.InsufficientPrivilegeError):  # the runtime role may not
            await conn.execute("UPDATE audit_log SET actor = 'mallory' WHERE id = 1")
    # someone with the owner's rights goes around the trigger: the chain still tells
    owner = await asyncpg.connect(owner_dsn)
    try:
        await owner.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_change")
        await owner.execute("UPDATE audit_log SET detail = '{\"b\": \"x\"}' WHERE id = 2")
        await owner.execute("ALTER TABLE audit_log ENABLE TRIGGER audit_log_no_change")
    finally:
        await owner.close()
    async with pool.acquire() as conn:
        v = await audit.verify(conn)
        assert not v.ok and v.first_bad_id == 2


async def test_a_storm_opens_one_alarm_per_object_in_one_batch(pool: asyncpg.Pool) -> None:
    """Hundreds of objects alarming at once (a power cut over a district): one alarm each, with its
    events and audit entries, all written by one engine batch."""
    for i in range(300):
        oid = await guarded_object.create(pool, f"Объект {i}")
        await account.create(pool, f"{5000 + i}", object_id=oid)
    await store_all(pool, [cid(f"{5000 + i}", "1", "130", seq=f"{i:04d}") for i in range(300)]
                    + [cid(f"{5000 + i}", "1", "110", zone="002", seq=f"{i + 1000:04d}") for i in range(0, 300, 3)])
    async with pool.acquire() as conn:
        result = await alarm.process_batch(conn, limit=1000)
        assert result.signals == 400 and len(result.changed) == 300
    rows = await alarm.list_alarms(pool, limit=1000)
    assert len(rows) == 300 and len({r["object_id"] for r in rows}) == 300
    fires = [r for r in rows if r["signal_count"] == 2]
    assert len(fires) == 100 and all(r["priority"] == 1 for r in fires)
    assert await pool.fetchval("SELECT count(*) FROM alarm_events") == 400
    async with pool.acquire() as conn:
        assert (await audit.verify(conn)).entries == 300
