"""The signal store: durable append of signals with group commit.

Receivers call `submit(items, done)`; everything submitted while the previous commit was in flight
is written in one transaction (one round trip: a single statement over unnested arrays), and only
then is each `done(True)` called so the receiver can acknowledge the panel. Two such writers
("lanes", split by account) commit side by side, so one waits on the disk while the other fills. If the database cannot
be reached, `done(False)` is called and the receiver must not acknowledge: the panel retries or fails
over to its backup path. Callbacks instead of futures keep the per-signal path free of tasks.

A retried message (same natural key, see `Signal.dedup_key`) within `dedup_window` seconds is
acknowledged again but stored once. A link poll (`Poll`) only refreshes the account's last-seen time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import asyncpg

from console.rejected import RejectedLog, RejectedRecord
from console.signal import Poll, Signal

__all__ = ["RejectedRecord", "SignalStore", "StoreStats"]

log = logging.getLogger("kuzet.store")

Done = Callable[[bool], None]

CHANNEL_SIGNALS = "kuzet_signal"

# Which of the incoming natural keys are new (or older than the window): those get a signal id.
_CLAIM_KEYS = """
INSERT INTO signal_dedup (dedup_key, seen_at, signal_id)
SELECT k, t, nextval('signals_id_seq') FROM unnest($1::bytea[], $2::timestamptz[]) AS v(k, t)
ON CONFLICT (dedup_key) DO UPDATE
    SET seen_at = excluded.seen_at, signal_id = excluded.signal_id
    WHERE signal_dedup.seen_at < excluded.seen_at - make_interval(secs => $3::float8)
RETURNING dedup_key, signal_id
"""

SIGNAL_COLUMNS = (
    "id", "dedup_key", "received_at", "receiver", "peer", "protocol", "account", "receiver_no", "line_no",
    "sequence", "code_kind", "code", "qualifier", "zone", "partition", "user_no", "text", "xdata",
    "transmitter_time", "encrypted", "event_index", "raw",
)

def _touch_accounts(numbers: str, seen: str) -> str:
    """Last-seen time and supervision deadline of the accounts heard from (array parameters)."""
    return f"""
UPDATE accounts a SET last_seen_at = v.seen,
    supervision_deadline = v.seen + make_interval(secs => a.supervision_interval
                                                  + greatest(g.grace_seconds, g.grace_ratio * a.supervision_interval))
FROM unnest({numbers}::text[], {seen}::timestamptz[]) AS v(number, seen), kuzet_supervision_settings() g
WHERE a.number = v.number AND (a.last_seen_at IS NULL OR a.last_seen_at < v.seen)
"""


_TOUCH_ACCOUNTS = _touch_accounts("$1", "$2")


async def touch_accounts(conn: asyncpg.Connection, numbers: list[str], seen: list[datetime]) -> None:
    """What storing a signal or a poll does to its account: last seen and supervision deadline moved
    (for tools that simulate being heard from, e.g. the supervision benchmark)."""
    await conn.execute(_TOUCH_ACCOUNTS, numbers, seen)

# The whole batch in one statement (one round trip, one implicit transaction): signals, their
# inbox entries, last-seen times and the notification. Used for the common small batches, where
# round trips, not rows, are the cost; the COPY path takes over for large ones.
_BATCH_STATEMENT = """
WITH incoming AS (
    SELECT * FROM unnest(
        $1::bytea[], $2::timestamptz[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
        $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::text[],
        $15::text[], $16::text[], $17::jsonb[], $18::timestamptz[], $19::boolean[], $20::smallint[],
        $21::bytea[]
    ) AS t(dedup_key, received_at, receiver, peer, protocol, account, receiver_no, line_no, sequence,
           code_kind, code, qualifier, zone, partition, user_no, text, xdata, transmitter_time,
           encrypted, event_index, raw)
), fresh AS (
    INSERT INTO signal_dedup (dedup_key, seen_at, signal_id)
    SELECT dedup_key, received_at, nextval('signals_id_seq') FROM incoming
    ON CONFLICT (dedup_key) DO UPDATE
        SET seen_at = excluded.seen_at, signal_id = excluded.signal_id
        WHERE signal_dedup.seen_at < excluded.seen_at - make_interval(secs => $22::float8)
    RETURNING dedup_key, signal_id
), stored AS (
    INSERT INTO signals (id, dedup_key, received_at, receiver, peer, protocol, account, receiver_no,
                         line_no, sequence, code_kind, code, qualifier, zone, partition, user_no, text,
                         xdata, transmitter_time, encrypted, event_index, raw)
    SELECT f.signal_id, i.dedup_key, i.received_at, i.receiver, i.peer, i.protocol, i.account,
           i.receiver_no, i.line_no, i.sequence, i.code_kind, i.code, i.qualifier, i.zone, i.partition,
           i.user_no, i.text, i.xdata, i.transmitter_time, i.encrypted, i.event_index, i.raw
    FROM fresh f JOIN incoming i USING (dedup_key)
    RETURNING id
), queued AS (
    INSERT INTO signal_inbox (signal_id) SELECT id FROM stored RETURNING signal_id
), touched AS (""" + _touch_accounts("$23", "$24") + """
    RETURNING 1
)
SELECT (SELECT count(*) FROM queued)::int AS stored,
       (SELECT pg_notify('""" + CHANNEL_SIGNALS + """', max(signal_id)::text) FROM queued HAVING count(*) > 0) AS notified,
       (SELECT count(*) FROM touched)::int AS touched
"""

@dataclass(slots=True)
class StoreStats:
    batches: int = 0
    submitted: int = 0
    stored: int = 0
    duplicates: int = 0
    polls: int = 0
    failures: int = 0
    failing_since: float | None = None  # monotonic time of the first failed batch in a row (None: healthy)
    last_error: str = ""
    largest_batch: int = 0


@dataclass(slots=True)
class _Lane:
    """One writer: its queue and the task that commits it."""

    index: int
    items: list[Signal | Poll] = field(default_factory=list)
    done: list[tuple[Done, int]] = field(default_factory=list)  # callback, how many items it covers
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    busy: bool = False


class SignalStore:
    def __init__(self, pool: asyncpg.Pool, *, dedup_window: float = 120.0, max_batch: int = 5000,
                 write_timeout: float = 5.0, lanes: int = 1, single_statement_max: int = 300,
                 rejected: RejectedLog | None = None) -> None:
        self.pool = pool
        self.dedup_window = dedup_window
        self.max_batch = max_batch
        self.write_timeout = write_timeout
        self.single_statement_max = single_statement_max
        self.stats = StoreStats()
        self._lanes = [_Lane(i) for i in range(max(1, lanes))]
        # Rejected frames have their own bounded queue and writer: never part of a signal batch.
        self.rejected = rejected or RejectedLog(pool)
        self._prune_task: asyncio.Task[None] | None = None
        self._closing = False

    # -- the receivers' side -------------------------------------------------------------------

    def submit(self, items: Sequence[Signal | Poll], done: Done) -> None:
        """Queue items for the next commit; `done(ok)` is called once they are committed (or not)."""
        if self._closing:
            done(False)
            return
        # Lanes commit side by side; an account always goes to the same lane, so two lanes never
        # update the same account row (no lock waits, no deadlocks) and its messages stay in order.
        lanes = self._lanes
        lane = lanes[hash(items[0].account) % len(lanes)] if items and len(lanes) > 1 else lanes[0]
        lane.items.extend(items)
        lane.done.append((done, len(items)))
        lane.wake.set()

    def reject(self, record: RejectedRecord) -> None:
        """Keep a rejected frame for review (sampled, bounded, written apart; no reply waits on it)."""
        self.rejected.offer(record)

    @property
    def failing(self) -> bool:
        """The last batch could not be written: signals are not being acknowledged."""
        return self.stats.failing_since is not None

    @property
    def queued(self) -> int:
        return sum(len(lane.items) for lane in self._lanes)

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        for lane in self._lanes:
            lane.task = asyncio.create_task(self._writer(lane), name=f"signal-store-writer-{lane.index}")
        self._prune_task = asyncio.create_task(self._pruner(), name="signal-store-pruner")
        await self.rejected.start()

    async def stop(self) -> None:
        """Write what is queued, then stop. Callbacks still pending get their answer."""
        self._closing = True
        for lane in self._lanes:
            lane.wake.set()
        for lane in self._lanes:
            if lane.task:
                await lane.task
        if self._prune_task:
            self._prune_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._prune_task
        await self.rejected.stop()

    async def flush(self) -> None:
        """Wait until everything submitted so far is written (tests and shutdown)."""
        await self.flush_signals()
        await self.rejected.flush()

    async def flush_signals(self) -> None:
        """Wait until every signal submitted so far is committed (or refused) and answered."""
        while any(lane.items or lane.busy for lane in self._lanes):
            await asyncio.sleep(0.005)

    async def _writer(self, lane: _Lane) -> None:
        while True:
            if not lane.items:
                if self._closing:
                    return
                lane.wake.clear()
                await lane.wake.wait()
                continue
            items, done = self._take(lane)
            lane.busy = True
            ok = False
            try:
                await asyncio.wait_for(self._write_retrying(items), self.write_timeout)
                ok = True
                self.stats.failing_since = None
            except Exception as exc:  # database down or failing: nothing in this batch is acknowledged
                self.stats.failures += 1
                self.stats.last_error = str(exc) or type(exc).__name__
                if self.stats.failing_since is None:
                    self.stats.failing_since = time.monotonic()
                log.error("signal batch of %d not stored: %s", len(items), self.stats.last_error)
                if not self._closing:
                    await asyncio.sleep(0.2)  # do not spin on a database that is down
            finally:
                lane.busy = False
            for cb, _n in done:
                try:
                    cb(ok)
                except Exception:  # a receiver's callback must never stop the writer
                    log.exception("acknowledge callback failed")

    async def _write_retrying(self, items: list[Signal | Poll]) -> None:
        """One retry on a connection the server closed meanwhile (a restart): the batch is one
        statement or one transaction, and the natural keys make a second attempt store nothing twice."""
        try:
            await self._write(items)
        except (asyncpg.InterfaceError, asyncpg.PostgresConnectionError, ConnectionError) as exc:
            log.warning("signal batch: %s; retrying on a fresh connection", exc)
            await self._write(items)

    def _take(self, lane: _Lane) -> tuple[list[Signal | Poll], list[tuple[Done, int]]]:
        """Take whole submissions, up to max_batch items (a submission is never split)."""
        if len(lane.items) <= self.max_batch:
            items, done = lane.items, lane.done
            lane.items, lane.done = [], []
            return items, done
        n = 0
        k = 0
        for _cb, count in lane.done:
            if n and n + count > self.max_batch:
                break
            n += count
            k += 1
        items, done = lane.items[:n], lane.done[:k]
        lane.items, lane.done = lane.items[n:], lane.done[k:]
        return items, done

    async def _write(self, items: list[Signal | Poll]) -> None:
        signals: dict[bytes, Signal] = {}
        seen: dict[str, datetime] = {}
        for it in items:
            if isinstance(it, Signal):
                signals.setdefault(it.dedup_key(), it)  # a retry inside one batch: stored once
            if it.account:
                prev = seen.get(it.account)
                if prev is None or prev < it.received_at:
                    seen[it.account] = it.received_at
        numbers = sorted(seen)  # a fixed lock order
        async with self.pool.acquire() as conn:
            if len(signals) <= self.single_statement_max:
                row = await conn.fetchrow(_BATCH_STATEMENT, *_columns(signals), self.dedup_window,
                                          numbers, [seen[k] for k in numbers])
                n = row["stored"] if row else 0
                self.stats.stored += n
                self.stats.duplicates += len(signals) - n
            else:
                async with conn.transaction():
                    await self._write_copy(conn, signals, numbers, seen)
        self.stats.batches += 1
        self.stats.submitted += len(items)
        self.stats.polls += len(items) - sum(1 for it in items if isinstance(it, Signal))
        self.stats.largest_batch = max(self.stats.largest_batch, len(items))

    async def _write_copy(self, conn: asyncpg.Connection, signals: dict[bytes, Signal], numbers: list[str],
                          seen: dict[str, datetime]) -> None:
        """Large batches: claim the natural keys, then COPY (several times an INSERT's row rate)."""
        if signals:
            keys = list(signals)
            claimed = await conn.fetch(_CLAIM_KEYS, keys, [signals[k].received_at for k in keys], self.dedup_window)
            if claimed:
                records = [_record(r["signal_id"], r["dedup_key"], signals[r["dedup_key"]]) for r in claimed]
                await conn.copy_records_to_table("signals", records=records, columns=SIGNAL_COLUMNS)
                ids = [int(r["signal_id"]) for r in claimed]
                await conn.copy_records_to_table("signal_inbox", records=[(i,) for i in ids])
                await conn.execute("SELECT pg_notify($1, $2)", CHANNEL_SIGNALS, str(max(ids)))
            self.stats.stored += len(claimed)
            self.stats.duplicates += len(signals) - len(claimed)
        if numbers:
            await conn.execute(_TOUCH_ACCOUNTS, numbers, [seen[k] for k in numbers])

    async def _pruner(self) -> None:
        """Forget natural keys older than the window, so the dedup table stays small."""
        while True:
            await asyncio.sleep(max(10.0, self.dedup_window / 2))
            try:
                await self.pool.execute(
                    "DELETE FROM signal_dedup WHERE seen_at < now() - make_interval(secs => $1::float8)",
                    self.dedup_window * 2,
                )
            except Exception as exc:
                log.warning("pruning signal_dedup failed: %s", exc)


def _columns(signals: dict[bytes, Signal]) -> list[list[object]]:
    """The batch as one array per column (the one-statement path unnests them), in `_record`'s order."""
    rows = [_record(0, key, s)[1:] for key, s in signals.items()]
    return [list(col) for col in zip(*rows, strict=True)] if rows else [[] for _ in range(21)]


def _record(signal_id: int, key: bytes, s: Signal) -> tuple[object, ...]:
    return (signal_id, key, s.received_at, s.receiver, s.peer, s.protocol, s.account, s.receiver_no, s.line_no,
            s.sequence, s.code_kind, s.code, s.qualifier, s.zone, s.partition, s.user, s.text,
            s.xdata or None, s.transmitter_time, s.encrypted, s.index, s.raw)
