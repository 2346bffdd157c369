"""Supervision against the real database: failure to communicate and its restore, deadlines across a
restart, open/close schedules, the opening/closing cursor, and a sweep over 100,000 accounts.

Short intervals, and conditions polled with a deadline: nothing here asserts a duration.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from datetime import time as dtime
from typing import TypeVar

import asyncpg

from console import account, alarm, audit, db, guarded_object
from console.signal import Poll, Signal
from console.store import SignalStore
from console.supervision import KIND_COMM, KIND_SCHEDULE, SUPERVISION_LOCK, Supervisor, configure, sweep
from kuzet.bench.supervision import make_overdue, populate

T = TypeVar("T")
TZ = "Asia/Almaty"


async def wait_for(cond: Callable[[], Awaitable[T]], timeout: float = 20.0, what: str = "condition") -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = await cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not reached within {timeout} s")
        await asyncio.sleep(0.05)


async def submit(store: SignalStore, items: list[Signal | Poll]) -> None:
    fut: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
    store.submit(items, fut.set_result)
    assert await asyncio.wait_for(fut, 10)


def sig(number: str, code: str, seq: str, *, kind: str = "sia", qualifier: str = "",
        at: datetime | None = None) -> Signal:
    return Signal(receiver="test", protocol="SIA-DCS" if kind == "sia" else "ADM-CID", account=number, code=code,
                  code_kind=kind, received_at=at or datetime.now(UTC), raw=b"raw", sequence=seq,
                  qualifier=qualifier, line_no="0")


async def comm_alarms(pool: asyncpg.Pool, number: str) -> list[asyncpg.Record]:
    return await pool.fetch("SELECT * FROM alarms WHERE kind = $1 AND account = $2 ORDER BY id", KIND_COMM, number)


async def events(pool: asyncpg.Pool, alarm_id: int) -> list[str]:
    return [r["kind"] for r in await pool.fetch("SELECT kind FROM alarm_events WHERE alarm_id = $1 ORDER BY id",
                                                alarm_id)]


async def sweeps_pass(sup: Supervisor, n: int = 3) -> None:
    """Wait until the supervisor has completed n more sweeps."""
    target = sup.stats.sweeps + n

    async def done() -> bool:
        return sup.stats.sweeps >= target

    await wait_for(done, what=f"{n} sweeps")


async def test_silent_account_fails_and_a_poll_restores_it(pool: asyncpg.Pool) -> None:
    oid = await guarded_object.create(pool, "Алматы, склад")
    await account.create(pool, "1001", object_id=oid, supervision_interval=1)
    await account.create(pool, "1002", object_id=oid)  # unsupervised: never raised
    store = SignalStore(pool)
    await store.start()
    sup = Supervisor(pool, grace=0.5, grace_ratio=0, sweep_interval=0.1)
    await sup.start()
    try:
        rows = await wait_for(lambda: comm_alarms(pool, "1001"), what="failure-to-communicate alarm")
        a = rows[0]
        assert (a["object_id"], a["klass"], a["priority"], a["state"]) == (oid, "trouble", 2, "new")
        assert a["title"] == {"kk": "Байланыс жоқ", "ru": "Нет связи с объектом", "en": "Failure to communicate"}
        assert await pool.fetchval("SELECT comm_failed_at IS NOT NULL FROM accounts WHERE number = '1001'")

        await sweeps_pass(sup)  # still silent: still one alarm, opened once
        assert len(await comm_alarms(pool, "1001")) == 1
        assert await events(pool, a["id"]) == ["opened"]
        assert sup.stats.misses_total == 1 and sup.stats.failed_now == 1
        assert not await comm_alarms(pool, "1002")

        await submit(store, [Poll("test", "1001", datetime.now(UTC))])

        async def restored() -> bool:
            return "restore" in await events(pool, a["id"])

        await wait_for(restored, what="restore event")
        assert await pool.fetchval("SELECT comm_failed_at FROM accounts WHERE number = '1001'") is None
        assert await pool.fetchval("SELECT restored FROM alarms WHERE id = $1", a["id"]) is True
        await wait_for(lambda: _true(sup.stats.restores_total == 1), what="restore counted")

        # Silent again: the open alarm (not closed by an operator yet) is joined, not duplicated.
        async def failed_again() -> bool:
            return "signal" in await events(pool, a["id"])

        await wait_for(failed_again, what="second failure")
        assert len(await comm_alarms(pool, "1001")) == 1
        assert await pool.fetchval("SELECT restored FROM alarms WHERE id = $1", a["id"]) is False
        actions = [r["action"] for r in await pool.fetch(
            "SELECT action FROM audit_log WHERE entity_id = $1 ORDER BY id", str(a["id"]))]
        assert actions[:3] == ["alarm.opened", "alarm.restore", "alarm.signal"]
        assert {r["actor"] for r in await pool.fetch("SELECT actor FROM audit_log")} == {"system:supervision"}
        async with pool.acquire() as conn:
            assert (await audit.verify(conn)).ok
    finally:
        await sup.stop()
        await store.stop()


async def _true(v: bool) -> bool:
    return v


async def test_deadline_survives_a_restart(pool: asyncpg.Pool, migrated: str) -> None:
    oa = await guarded_object.create(pool, "Астана, АЗС")
    ob = await guarded_object.create(pool, "Астана, офис")
    await account.create(pool, "2001", object_id=oa, supervision_interval=4)
    await account.create(pool, "2002", object_id=ob, supervision_interval=1)
    store = SignalStore(pool)
    await store.start()
    sup = Supervisor(pool, grace=0.5, grace_ratio=0, sweep_interval=0.1)
    await sup.start()
    try:
        await submit(store, [Poll("test", "2002", datetime.now(UTC))])
        b_alarm = (await wait_for(lambda: comm_alarms(pool, "2002"), what="2002 failed"))[0]
        await submit(store, [Poll("test", "2001", datetime.now(UTC))])  # 2001 is due in 4.5 s
    finally:
        await sup.stop()
        await store.stop()
    b_failed_at = await pool.fetchval("SELECT comm_failed_at FROM accounts WHERE number = '2002'")
    assert b_failed_at is not None
    assert await pool.fetchval("SELECT comm_failed_at FROM accounts WHERE number = '2001'") is None

    # Kuzet is down: 2001's deadline passes with nobody watching.
    async def a_overdue() -> bool:
        return bool(await pool.fetchval("SELECT supervision_deadline < now() FROM accounts WHERE number = '2001'"))

    await wait_for(a_overdue, what="2001 overdue")
    assert not await comm_alarms(pool, "2001")

    pool2 = await db.create_pool(migrated, min_size=1, max_size=4)
    store2 = SignalStore(pool2)
    await store2.start()
    sup2 = Supervisor(pool2, grace=0.5, grace_ratio=0, sweep_interval=0.1)
    await sup2.start()
    try:
        a_alarm = (await wait_for(lambda: comm_alarms(pool2, "2001"), what="2001 failed after restart"))[0]
        assert a_alarm["object_id"] == oa
        await sweeps_pass(sup2)
        # 2002 failed before the restart and is still failed: not raised again.
        assert [r["id"] for r in await comm_alarms(pool2, "2002")] == [b_alarm["id"]]
        assert await events(pool2, b_alarm["id"]) == ["opened"]
        assert await pool2.fetchval("SELECT comm_failed_at FROM accounts WHERE number = '2002'") == b_failed_at
        assert sup2.stats.misses_total == 1 and sup2.stats.failed_now == 2
    finally:
        await sup2.stop()
        await store2.stop()
        await pool2.close()


async def _local_now(pool: asyncpg.Pool, plus: float = 0.0) -> datetime:
    """The post's wall clock (Asia/Almaty), as PostgreSQL's time zone data has it."""
    v: datetime = await pool.fetchval(
        "SELECT date_trunc('second', now() AT TIME ZONE $1) + make_interval(secs => $2)", TZ, plus)
    return v


async def _utc(pool: asyncpg.Pool, local: datetime) -> datetime:
    v: datetime = await pool.fetchval("SELECT $1::timestamp AT TIME ZONE $2", local, TZ)
    return v


async def test_not_armed_by_arm_by_raises_failed_to_arm(pool: asyncpg.Pool) -> None:
    arm_at = await _local_now(pool, 3)
    while arm_at.time() < dtime(0, 0, 5):  # keep the window inside one day
        await asyncio.sleep(1)
        arm_at = await _local_now(pool, 3)
    late = await guarded_object.create(pool, "Алматы, аптека")
    armed = await guarded_object.create(pool, "Алматы, магазин")
    await account.create(pool, "3001", object_id=late)
    await account.create(pool, "3002", object_id=armed)
    for oid in (late, armed):
        await pool.execute("INSERT INTO object_schedules (object_id, weekday, open_from, arm_by)"
                           " VALUES ($1, $2, '00:00', $3)", oid, arm_at.weekday(), arm_at.time())
    due = await _utc(pool, arm_at)
    assert await pool.fetchval("SELECT arm_due_at FROM guarded_objects WHERE id = $1", late) == due

    store = SignalStore(pool)
    await store.start()
    sup = Supervisor(pool, arm_grace=0, sweep_interval=0.1, timezone=TZ)
    await sup.start()
    try:
        await submit(store, [sig("3002", "CL", "0001")])  # armed in time
        rows = await wait_for(lambda: pool.fetch("SELECT * FROM alarms WHERE kind = $1", KIND_SCHEDULE),
                              what="failed to arm on time")
        assert [r["object_id"] for r in rows] == [late]
        assert rows[0]["title"]["en"] == "Failed to arm on time" and rows[0]["title"]["ru"]
        detail = await pool.fetchval("SELECT detail FROM alarm_events WHERE alarm_id = $1", rows[0]["id"])
        assert detail["violation"] == "late-arm"

        async def both_checked() -> bool:
            n = await pool.fetchval("SELECT count(*) FROM guarded_objects WHERE id = ANY($1::bigint[])"
                                    " AND arm_due_at > $2", [late, armed], due)
            return bool(n == 2)

        await wait_for(both_checked, what="both arm_by instants checked")
        await sweeps_pass(sup)
        assert len(await pool.fetch("SELECT id FROM alarms WHERE kind = $1", KIND_SCHEDULE)) == 1
        assert await pool.fetchval("SELECT armed FROM guarded_objects WHERE id = $1", armed) is True
        assert await pool.fetchval("SELECT armed FROM guarded_objects WHERE id = $1", late) is None
        # the next check is the same weekday next week
        assert await pool.fetchval("SELECT arm_due_at FROM guarded_objects WHERE id = $1", late) == due + timedelta(days=7)
    finally:
        await sup.stop()
        await store.stop()


async def test_opening_outside_schedule_raises(pool: asyncpg.Pool) -> None:
    today = (await _local_now(pool)).replace(hour=0, minute=0, second=0)
    oid = await guarded_object.create(pool, "Алматы, ювелирный салон")
    await account.create(pool, "4001", object_id=oid)
    await pool.execute("INSERT INTO object_schedules (object_id, weekday, open_from, arm_by)"
                       " VALUES ($1, $2, '09:00', '18:00')", oid, today.weekday())
    at = {h: await _utc(pool, today + timedelta(hours=h)) for h in (12, 13, 20)}
    store = SignalStore(pool)
    await store.start()
    sup = Supervisor(pool, arm_grace=3600, sweep_interval=0.1, timezone=TZ)
    await sup.start()
    try:
        await submit(store, [
            sig("4001", "OP", "0001", at=at[12]),  # SIA opening inside 09:00-18:00
            sig("4001", "401", "0002", kind="cid", qualifier="3", at=at[13]),  # Contact ID closing
            sig("4001", "401", "0003", kind="cid", qualifier="1", at=at[20]),  # Contact ID opening at 20:00
        ])
        outside_id = await pool.fetchval("SELECT id FROM signals WHERE sequence = '0003'")
        rows = await wait_for(lambda: pool.fetch("SELECT * FROM alarms WHERE kind = $1", KIND_SCHEDULE),
                              what="opened outside schedule")
        assert len(rows) == 1 and rows[0]["object_id"] == oid and rows[0]["account"] == "4001"
        assert rows[0]["title"] == {"kk": "Кестеден тыс күзеттен алынды", "ru": "Снятие с охраны вне расписания",
                                    "en": "Opened outside schedule"}
        detail = await pool.fetchval("SELECT detail FROM alarm_events WHERE alarm_id = $1", rows[0]["id"])
        assert detail["violation"] == "opened-outside-schedule" and detail["signal_id"] == outside_id

        async def applied() -> bool:
            return bool(await pool.fetchval("SELECT arm_signal_id = $2 FROM guarded_objects WHERE id = $1",
                                            oid, outside_id))

        await wait_for(applied, what="arm state")
        o = await pool.fetchrow("SELECT armed, armed_changed_at FROM guarded_objects WHERE id = $1", oid)
        assert o["armed"] is False and o["armed_changed_at"] == at[20]
        await sweeps_pass(sup)
        assert await pool.fetchval("SELECT count(*) FROM alarm_events e JOIN alarms a ON a.id = e.alarm_id"
                                   " WHERE a.kind = $1", KIND_SCHEDULE) == 1  # each opening judged once
    finally:
        await sup.stop()
        await store.stop()


async def test_overnight_window_and_closed_days(pool: asyncpg.Pool) -> None:
    """A window past midnight (22:00-06:00) and a day without a row (closed all day)."""
    monday = datetime(2026, 11, 23)  # a Monday
    oid = await guarded_object.create(pool, "Бар")
    await account.create(pool, "4101", object_id=oid)
    await pool.execute("INSERT INTO object_schedules (object_id, weekday, open_from, arm_by) VALUES ($1, 0, '22:00', '06:00')",
                       oid)
    cases = [(monday + timedelta(hours=23), False), (monday + timedelta(days=1, hours=5), False),  # inside
             (monday + timedelta(days=1, hours=7), True),  # Tuesday 07:00: after arm_by
             (monday + timedelta(hours=5), True),  # Monday 05:00: Sunday has no window
             (monday + timedelta(days=1, hours=23), True)]  # Tuesday 23:00: no Tuesday row
    signals = [sig("4101", "OP", f"{i:04d}", at=await _utc(pool, t)) for i, (t, _) in enumerate(cases)]
    store = SignalStore(pool)
    await store.start()
    try:
        await submit(store, list(signals))
    finally:
        await store.stop()
    async with pool.acquire() as conn:
        r = await sweep(conn, datetime.now(UTC), arm_grace=1e9)
    ids = {r["sequence"]: r["id"] for r in await pool.fetch("SELECT id, sequence FROM signals")}
    assert sorted(r.opened_outside) == sorted(ids[s.sequence] for s, (_t, out) in zip(signals, cases, strict=True) if out)
    # next arm_by after Monday 23:00 local is Tuesday 06:00 local
    next_arm = await pool.fetchval("SELECT kuzet_next_arm_by($1, $2)", oid, await _utc(pool, monday + timedelta(hours=23)))
    assert next_arm == await _utc(pool, monday + timedelta(days=1, hours=6))


async def test_signals_committed_out_of_order_are_not_missed(pool: asyncpg.Pool, migrated: str) -> None:
    """Two writers: a lower signal id may commit after a higher one the sweep has already read."""
    o1 = await guarded_object.create(pool, "A")
    o2 = await guarded_object.create(pool, "B")
    await account.create(pool, "5001", object_id=o1)
    await account.create(pool, "5002", object_id=o2)
    insert = ("INSERT INTO signals (received_at, receiver, protocol, account, code_kind, code, raw, dedup_key)"
              " VALUES (now(), 'test', 'SIA-DCS', $1, 'sia', $2, '', $3) RETURNING id")
    slow = await db.connect(migrated)
    try:
        tx = slow.transaction()
        await tx.start()
        low = await slow.fetchval(insert, "5001", "OP", b"1")  # in flight
        high = await pool.fetchval(insert, "5002", "CL", b"2")  # committed
        assert low < high
        async with pool.acquire() as conn:
            r = await sweep(conn, datetime.now(UTC))
            assert r.openclose == 1
            r = await sweep(conn, datetime.now(UTC))  # still in flight: nothing new, nothing lost
            assert r.openclose == 0
            await tx.commit()
            r = await sweep(conn, datetime.now(UTC))
            assert r.openclose == 1
            r = await sweep(conn, datetime.now(UTC))
            assert r.openclose == 0
            assert await conn.fetchval("SELECT signal_id FROM supervision_cursor") == high
        states = {r["id"]: r["armed"] for r in await pool.fetch("SELECT id, armed FROM guarded_objects")}
        assert states == {o1: False, o2: True}
    finally:
        await slow.close()


async def test_batch_joins_an_alarm_raised_by_raise_alarm(pool: asyncpg.Pool) -> None:
    oid = await guarded_object.create(pool, "C")
    await account.create(pool, "6001", object_id=oid, supervision_interval=60)
    async with pool.acquire() as conn:
        first = await alarm.raise_alarm(conn, object_id=oid, account="6001", kind=KIND_COMM, klass="trouble",
                                        priority=2, title={"kk": "x", "ru": "x", "en": "x"})
        r = await sweep(conn, datetime.now(UTC) + timedelta(hours=1))
        assert r.alarms == [first] and len(r.failed) == 1
        assert await events(pool, first) == ["opened", "signal"]
        assert (await audit.verify(conn)).ok


async def test_one_sweep_at_a_time(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as holder, holder.transaction():
        await holder.execute("SELECT pg_advisory_xact_lock($1)", SUPERVISION_LOCK)
        async with pool.acquire() as conn:
            assert (await sweep(conn, datetime.now(UTC))).skipped


async def test_sweep_over_100000_accounts_finds_exactly_the_overdue(pool: asyncpg.Pool) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    async with pool.acquire() as conn:
        await configure(conn)
        await populate(conn, 100_000, now)
        for _ in range(3):
            await sweep(conn, now)
        t0 = time.perf_counter()
        idle = await sweep(conn, now)
        idle_ms = (time.perf_counter() - t0) * 1000
        assert not idle.failed and idle.failed_now == 0

        overdue = await make_overdue(conn, 500, now)
        t0 = time.perf_counter()
        r = await sweep(conn, now)
        ms = (time.perf_counter() - t0) * 1000
        assert sorted(r.failed) == overdue
        assert r.failed_now == 500
        assert await conn.fetchval("SELECT count(*) FROM alarms WHERE kind = $1", KIND_COMM) == 500
        assert sorted(x["id"] for x in await conn.fetch(
            "SELECT a.id FROM accounts a JOIN alarms al ON al.account = a.number AND al.object_id = a.object_id")) == overdue
        again = await sweep(conn, now)
        assert not again.failed and again.failed_now == 500
    print(f"\nsweep over 100,000 accounts: {idle_ms:.1f} ms with none overdue, {ms:.1f} ms raising 500")
