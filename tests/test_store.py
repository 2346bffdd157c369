"""The signal store against the real database: group commit, dedup of retries, polls, rejects."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from console import account, db
from console.signal import Poll, Signal
from console.store import RejectedRecord, SignalStore


def sig(account_no: str = "1234", seq: str = "0001", code: str = "BA", zone: str = "003", **kw: object) -> Signal:
    return Signal(receiver="test", protocol="SIA-DCS", account=account_no, code=code, code_kind="sia",
                  received_at=kw.pop("received_at", datetime.now(UTC)), raw=b"raw", sequence=seq, zone=zone,
                  line_no="0", **kw)  # type: ignore[arg-type]


async def submit_and_wait(store: SignalStore, items: list[Signal | Poll]) -> bool:
    fut: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
    store.submit(items, fut.set_result)
    return await asyncio.wait_for(fut, 10)


# The store writes small batches in one statement and large ones with COPY: both paths are tested.
PATHS = pytest.mark.parametrize("single_max", [300, 0], ids=["one-statement", "copy"])


@PATHS
async def test_group_commit_acknowledges_after_commit(pool: asyncpg.Pool, single_max: int) -> None:
    store = SignalStore(pool, single_statement_max=single_max)
    await store.start()
    try:
        results: list[bool] = []
        seen_in_db: list[int] = []

        async def check_on_ack() -> None:
            # What the panel is told must already be readable by another connection.
            seen_in_db.append(await pool.fetchval("SELECT count(*) FROM signals"))

        tasks = []

        def done(ok: bool) -> None:
            results.append(ok)
            tasks.append(asyncio.ensure_future(check_on_ack()))

        for i in range(300):
            store.submit([sig(seq=f"{i:04d}")], done)
        await store.flush()
        await asyncio.gather(*tasks)
        assert results == [True] * 300
        assert min(seen_in_db) >= 1
        assert await pool.fetchval("SELECT count(*) FROM signals") == 300
        assert await pool.fetchval("SELECT count(*) FROM signal_inbox") == 300
        assert store.stats.batches < 300  # many signals shared a transaction
    finally:
        await store.stop()


@PATHS
async def test_retry_is_acknowledged_again_but_stored_once(pool: asyncpg.Pool, single_max: int) -> None:
    store = SignalStore(pool, single_statement_max=single_max)
    await store.start()
    try:
        assert await submit_and_wait(store, [sig(seq="0042")])
        assert await submit_and_wait(store, [sig(seq="0042")])  # the panel's retry
        # and a retry inside one batch
        assert await submit_and_wait(store, [sig(seq="0043"), sig(seq="0043")])
        assert await pool.fetchval("SELECT count(*) FROM signals WHERE sequence = '0042'") == 1
        assert await pool.fetchval("SELECT count(*) FROM signals WHERE sequence = '0043'") == 1
        # a different message (other sequence) is stored
        assert await submit_and_wait(store, [sig(seq="0044")])
        assert await pool.fetchval("SELECT count(*) FROM signals") == 3
    finally:
        await store.stop()


async def test_same_message_after_the_window_is_new(pool: asyncpg.Pool) -> None:
    store = SignalStore(pool, dedup_window=60)
    await store.start()
    try:
        t0 = datetime.now(UTC) - timedelta(minutes=5)
        assert await submit_and_wait(store, [sig(seq="0000", received_at=t0)])
        assert await submit_and_wait(store, [sig(seq="0000")])
        assert await pool.fetchval("SELECT count(*) FROM signals") == 2
    finally:
        await store.stop()


@PATHS
async def test_poll_refreshes_last_seen_without_a_signal_row(pool: asyncpg.Pool, single_max: int) -> None:
    await account.create(pool, "5555")
    store = SignalStore(pool, single_statement_max=single_max)
    await store.start()
    try:
        t = datetime.now(UTC)
        assert await submit_and_wait(store, [Poll("test", "5555", t)])
        assert await pool.fetchval("SELECT count(*) FROM signals") == 0
        seen = await pool.fetchval("SELECT last_seen_at FROM accounts WHERE number = '5555'")
        assert abs((seen - t).total_seconds()) < 0.001
    finally:
        await store.stop()


async def test_rejected_frames_are_kept(pool: asyncpg.Pool) -> None:
    store = SignalStore(pool)
    await store.start()
    try:
        store.reject(RejectedRecord(datetime.now(UTC), "test", "127.0.0.1:1", "crc", "CRC mismatch", "",
                                    b"\nNAK\r", b"\nbad\r"))
        await store.flush()
        row = await pool.fetchrow("SELECT * FROM rejected_frames")
        assert row["reason"] == "crc" and row["raw"] == b"\nbad\r"
    finally:
        await store.stop()


async def test_database_down_means_no_acknowledgement(migrated: str, pg_dsn: str) -> None:
    # A pool whose server goes away: the store must answer False, never True.
    p = await db.create_pool(migrated, min_size=1, max_size=2)
    store = SignalStore(p, write_timeout=2)
    await store.start()
    try:
        assert await submit_and_wait(store, [sig(seq="7000")])
        # Kill this pool's backends from another connection and forbid new ones for the test.
        admin = await asyncpg.connect(pg_dsn)  # the superuser: the pool is the runtime role's
        try:
            await admin.execute("ALTER DATABASE postgres CONNECTION LIMIT 0")
            await admin.execute(f"ALTER ROLE {db.RUNTIME_ROLE} NOLOGIN")
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid <> pg_backend_pid()"
                " AND datname = current_database() AND backend_type = 'client backend'")
            ok = await submit_and_wait(store, [sig(seq="7001")])
            assert ok is False
        finally:
            await admin.execute(f"ALTER ROLE {db.RUNTIME_ROLE} LOGIN")
            await admin.execute("ALTER DATABASE postgres CONNECTION LIMIT -1")
            await admin.close()
        assert store.stats.failures >= 1
        # and once the database is back, signals are acknowledged again
        assert await submit_and_wait(store, [sig(seq="7002")])
    finally:
        await store.stop()
        await p.close()
