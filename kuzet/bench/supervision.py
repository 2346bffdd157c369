"""`kuzet bench supervision`: the supervision sweep over N supervised accounts.

Runs in a scratch database (created next to the given one and dropped afterwards, so neither the
post's data nor its LISTEN/NOTIFY channels see the benchmark; needs the CREATEDB privilege, which the
embedded server's user has). Figures are printed, never asserted.
"""

from __future__ import annotations

import asyncio
import secrets
import statistics
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from console import config, db
from console.store import touch_accounts
from console.supervision import Supervisor, configure, sweep
from kuzet.runtime import DOMAINS

# The store's UPDATE before supervision deadlines existed, for a side-by-side figure.
_TOUCH_LAST_SEEN_ONLY = """
UPDATE accounts a SET last_seen_at = v.seen
FROM unnest($1::text[], $2::timestamptz[]) AS v(number, seen)
WHERE a.number = v.number AND (a.last_seen_at IS NULL OR a.last_seen_at < v.seen)
"""

# Poll intervals of real panels: DC-09 IP polls, GSM, hourly and daily test reports.
INTERVALS = (20, 60, 90, 300, 600, 3600, 86400)


async def populate(conn: asyncpg.Connection, n: int, now: datetime) -> None:
    """N guarded objects, each with one supervised account seen recently enough that none is overdue
    at `now` (numbers "B0000001" ...)."""
    await conn.execute(
        """
        WITH o AS (
            INSERT INTO guarded_objects (name) SELECT 'bench ' || g FROM generate_series(1, $1) g RETURNING id
        )
        INSERT INTO accounts (number, protocol, supervision_interval, object_id, last_seen_at)
        SELECT 'B' || lpad(upper(to_hex(o.id)), 7, '0'), 'dc09', iv.s, o.id,
               $2::timestamptz - make_interval(secs => random() * iv.s * 0.9)
        FROM o CROSS JOIN LATERAL (SELECT ($3::int[])[1 + (o.id % array_length($3::int[], 1))::int] AS s) iv
        """, n, now, list(INTERVALS))
    await conn.execute("ANALYZE accounts")
    await conn.execute("ANALYZE guarded_objects")


async def make_overdue(conn: asyncpg.Connection, k: int, now: datetime) -> list[int]:
    """Put k random supervised, not failed accounts past their deadline at `now`; their ids."""
    rows = await conn.fetch(
        "UPDATE accounts SET supervision_deadline = $2::timestamptz - interval '1 second'"
        " WHERE id IN (SELECT id FROM accounts WHERE comm_failed_at IS NULL AND supervision_deadline >= $2"
        " ORDER BY random() LIMIT $1) RETURNING id", k, now)
    return sorted(r["id"] for r in rows)


def _figures(ms: list[float]) -> dict[str, float]:
    s = sorted(ms)
    p99 = s[min(len(s) - 1, max(0, round(0.99 * len(s)) - 1))]
    return {"n": len(s), "median_ms": round(statistics.median(s), 3), "p99_ms": round(p99, 3),
            "max_ms": round(s[-1], 3)}


async def _timed(fn: Callable[[], Awaitable[Any]]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    r = await fn()
    return (time.perf_counter() - t0) * 1000, r


def _scratch_dsn(dsn: str, name: str) -> str:
    u = urlsplit(dsn)
    return urlunsplit((u.scheme, u.netloc, "/" + name, u.query, u.fragment))


async def bench_supervision(dsn: str, accounts: int = 100_000, *, idle_sweeps: int = 200, rounds: int = 20,
                            per_round: int = 100, outage: int = 10_000, touch_batch: int = 1000) -> dict[str, Any]:
    """Create `accounts` supervised accounts in a scratch database and time sweeps: with nothing
    overdue, with `per_round` failures, with `per_round` restores, with an outage of `outage` at
    once; the store's last-seen UPDATE for `touch_batch` accounts; and, with a running Supervisor,
    how long after its deadline a silent account is marked failed."""
    name = f"kuzet_bench_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    scratch = _scratch_dsn(dsn, name)
    try:
        return await _run(scratch, accounts, idle_sweeps, rounds, per_round, outage, touch_batch)
    finally:
        admin = await asyncpg.connect(dsn)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


async def _run(dsn: str, n: int, idle_sweeps: int, rounds: int, per_round: int, outage: int,
               touch_batch: int) -> dict[str, Any]:
    conn = await db.connect(dsn)
    try:
        await db.migrate(conn, DOMAINS)
        await configure(conn)  # the defaults: 30 s or 10 % of the interval
        now = datetime.now(UTC).replace(microsecond=0)  # a frozen clock: nothing drifts overdue meanwhile
        t0 = time.perf_counter()
        await populate(conn, n, now)
        out: dict[str, Any] = {"accounts": n, "populate_s": round(time.perf_counter() - t0, 1)}
        for _ in range(5):  # warm up plans and caches
            await sweep(conn, now)

        ms = []
        for _ in range(idle_sweeps):
            t, r = await _timed(lambda: sweep(conn, now))
            assert not r.failed, "nothing should be overdue"
            ms.append(t)
        out["sweep_idle"] = _figures(ms)

        fail_ms, restore_ms = [], []
        for i in range(rounds):
            ids = await make_overdue(conn, per_round, now)
            t, r = await _timed(lambda: sweep(conn, now))
            assert sorted(r.failed) == ids, "the sweep must find exactly the overdue accounts"
            fail_ms.append(t)
            numbers = [x["number"] for x in await conn.fetch(
                "SELECT number FROM accounts WHERE id = ANY($1::bigint[]) ORDER BY number", ids)]
            seen = now + timedelta(milliseconds=i + 1)  # they report again (later than any earlier round)
            await touch_accounts(conn, numbers, [seen] * len(numbers))
            t, r = await _timed(lambda: sweep(conn, now))
            assert sorted(r.restored) == ids
            restore_ms.append(t)
        out[f"sweep_{per_round}_failures"] = _figures(fail_ms)
        out[f"sweep_{per_round}_restores"] = _figures(restore_ms)

        ids = await make_overdue(conn, outage, now)
        t, r = await _timed(lambda: sweep(conn, now, max_batch=outage))
        out[f"sweep_outage_{outage}_failures"] = {"ms": round(t, 1), "failed": len(r.failed)}
        numbers = [x["number"] for x in await conn.fetch(
            "SELECT number FROM accounts WHERE id = ANY($1::bigint[]) ORDER BY number", ids)]
        await touch_accounts(conn, numbers, [now + timedelta(seconds=1)] * len(numbers))
        t, r = await _timed(lambda: sweep(conn, now, max_batch=outage))
        out[f"sweep_outage_{outage}_restores"] = {"ms": round(t, 1), "restored": len(r.restored)}
        ms = []
        for _ in range(idle_sweeps):
            t, r = await _timed(lambda: sweep(conn, now))
            ms.append(t)
        out["sweep_idle_after"] = _figures(ms)

        # The receivers' hot path: the store's last-seen + deadline UPDATE for a batch of accounts, side
        # by side with the same UPDATE without the deadline (as before migration 0002).
        await conn.execute("VACUUM ANALYZE accounts")
        with_deadline: list[float] = []
        last_seen_only: list[float] = []
        for i in range(50):
            numbers = sorted(x["number"] for x in await conn.fetch(
                "SELECT number FROM accounts ORDER BY random() LIMIT $1", touch_batch))
            seen = now + timedelta(seconds=2 * i + 2)
            t0 = time.perf_counter()
            await touch_accounts(conn, numbers, [seen] * len(numbers))
            with_deadline.append((time.perf_counter() - t0) * 1000)
            t0 = time.perf_counter()
            await conn.execute(_TOUCH_LAST_SEEN_ONLY, numbers, [seen + timedelta(seconds=1)] * len(numbers))
            last_seen_only.append((time.perf_counter() - t0) * 1000)
        out[f"store_touch_{touch_batch}"] = _figures(with_deadline)
        out[f"store_touch_{touch_batch}_without_deadline"] = _figures(last_seen_only)

        out["noticed_after_deadline"] = await _notice_latency(dsn, conn)
        return out
    finally:
        await conn.close()


async def _notice_latency(dsn: str, conn: asyncpg.Connection, samples: int = 20) -> dict[str, Any]:
    """A running Supervisor (sweep every 0.5 s, real clock): how long after its deadline each of
    `samples` accounts, falling silent one after another, is marked failed."""
    await conn.execute("UPDATE accounts SET comm_failed_at = NULL,"
                       " supervision_deadline = now() + interval '1 hour' WHERE supervision_deadline IS NOT NULL")
    await conn.execute("VACUUM ANALYZE accounts")
    ids = [r["id"] for r in await conn.fetch(
        "UPDATE accounts SET supervision_deadline = clock_timestamp() + interval '1 second' + g.i * interval '137 ms'"
        " FROM (SELECT id, row_number() OVER () AS i FROM (SELECT id FROM accounts WHERE supervision_deadline IS NOT NULL"
        " ORDER BY random() LIMIT $1) r) g"
        " WHERE accounts.id = g.id RETURNING accounts.id", samples)]
    pool = await db.create_pool(dsn, min_size=1, max_size=2)
    sup = Supervisor(pool)
    try:
        await sup.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if await conn.fetchval("SELECT count(*) FROM accounts WHERE id = ANY($1::bigint[])"
                                   " AND comm_failed_at IS NOT NULL", ids) == len(ids):
                break
            await asyncio.sleep(0.2)
    finally:
        await sup.stop()
        await pool.close()
    lag = [r["ms"] for r in await conn.fetch(
        "SELECT extract(epoch FROM comm_failed_at - supervision_deadline) * 1000 AS ms FROM accounts"
        " WHERE id = ANY($1::bigint[]) AND comm_failed_at IS NOT NULL", ids)]
    res: dict[str, Any] = {"samples": len(ids), "noticed": len(lag), "sweep_interval_s": sup.sweep_interval}
    if lag:
        res.update({"median_ms": round(float(statistics.median(lag)), 1), "max_ms": round(float(max(lag)), 1)})
    res["supervisor_last_sweep_ms"] = round(sup.stats.last_sweep_ms, 2)
    return res


def main(settings: config.Settings, accounts: int) -> int:
    """The command: against KUZET_DATABASE_URL / the configured database, else the embedded server."""
    embedded = None
    dsn = settings.database_url
    if not dsn:
        embedded = db.EmbeddedServer(Path(settings.pgdata))
        embedded.start()
        dsn = embedded.superuser_dsn  # it creates and drops a scratch database
    try:
        res = asyncio.run(bench_supervision(dsn, accounts))
    finally:
        if embedded:
            embedded.stop()
    print(f"supervision over {res['accounts']:,} accounts (populated in {res['populate_s']} s)")
    for k, v in res.items():
        if isinstance(v, dict):
            print(f"  {k:<32} " + "  ".join(f"{kk}={vv}" for kk, vv in v.items()))
    return 0
