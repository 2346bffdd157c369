"""Rejected frames, kept for review without ever getting in the way of a signal.

A peer sending garbage can produce tens of thousands of rejected frames a second. What is kept of
them is bounded at every step, and none of it shares a transaction, a queue or a task with the
signals (a panel's ACK never waits on, or fails with, the bookkeeping of someone else's garbage):

- sampled per peer: the first `samples_per_minute` frames of each peer address for each reason in
  each minute are kept whole; the rest are only counted, and the count is written as one row (reason "suppressed",
  `count` = how many) when the minute ends;
- bounded in memory: a fixed-size queue; when it is full the frame is dropped and counted;
- written by its own task in its own short statements; a failure drops that batch (and logs it);
- bounded in the table: rows older than `max_age_days`, and all but the newest `max_rows`, are pruned.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime

import asyncpg

log = logging.getLogger("kuzet.rejected")

_INSERT = """
INSERT INTO rejected_frames (received_at, receiver, peer, reason, detail, account, reply, raw, count)
SELECT * FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                     $7::bytea[], $8::bytea[], $9::int[])
"""

MAX_PEERS = 10_000  # peers tracked per minute; beyond that they share one counter (spoofed UDP sources)
OTHER_PEERS = "*"


@dataclass(slots=True)
class RejectedRecord:
    received_at: datetime
    receiver: str
    peer: str
    reason: str
    detail: str
    account: str
    reply: bytes | None
    raw: bytes
    count: int = 1  # a "suppressed" row stands for this many frames


@dataclass(slots=True)
class RejectedStats:
    offered: int = 0  # every rejected frame reported by a receiver
    kept: int = 0  # queued whole (a sample)
    suppressed: int = 0  # only counted (beyond the per-peer sample)
    dropped: int = 0  # the queue was full
    written: int = 0  # rows written
    failures: int = 0  # batches the database refused (dropped)
    pruned: int = 0


@dataclass(slots=True)
class _Window:
    minute: int
    receiver: str
    kept: Counter[str] = field(default_factory=Counter)  # samples kept, by reason
    reasons: Counter[str] = field(default_factory=Counter)  # suppressed frames by reason


def peer_host(peer: str) -> str:
    """The address part of "host:port" (IPv6 "[::1]:7000" or "::1:7000" too); other peers as they are."""
    if peer.startswith("["):
        return peer[1:].split("]", 1)[0]
    host, sep, port = peer.rpartition(":")
    return host if sep and port.isdigit() else peer


class RejectedLog:
    def __init__(self, pool: asyncpg.Pool, *, samples_per_minute: int = 5, queue_size: int = 1000,
                 max_rows: int = 100_000, max_age_days: float = 30.0, write_timeout: float = 5.0,
                 batch: int = 500, prune_every: float = 60.0) -> None:
        self.pool = pool
        self.samples_per_minute = samples_per_minute
        self.queue_size = queue_size
        self.max_rows = max_rows
        self.max_age_days = max_age_days
        self.write_timeout = write_timeout
        self.batch = batch
        self.prune_every = prune_every
        self.stats = RejectedStats()
        self._queue: deque[RejectedRecord] = deque()
        self._windows: dict[str, _Window] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._busy = False
        self._closing = False
        self._last_error_log = 0.0

    # -- the receivers' side (synchronous, constant time) -----------------------------------

    def offer(self, rec: RejectedRecord) -> None:
        self.stats.offered += 1
        minute = int(time.time() // 60)
        host = peer_host(rec.peer)
        w = self._windows.get(host)
        if w is None and len(self._windows) >= MAX_PEERS:
            host = OTHER_PEERS
            w = self._windows.get(host)
        if w is not None and w.minute != minute:
            self._close_window(host, w)
            w = None
        if w is None:
            w = self._windows[host] = _Window(minute, rec.receiver)
        if w.kept[rec.reason] < self.samples_per_minute and self._enqueue(rec):
            w.kept[rec.reason] += 1
            self.stats.kept += 1
        else:
            w.reasons[rec.reason] += 1
            self.stats.suppressed += 1

    def _enqueue(self, rec: RejectedRecord) -> bool:
        if len(self._queue) >= self.queue_size:
            self.stats.dropped += 1
            return False
        self._queue.append(rec)
        self._wake.set()
        return True

    def _close_window(self, host: str, w: _Window) -> None:
        """The minute is over: what was only counted becomes one row."""
        n = sum(w.reasons.values())
        if n:
            by_reason = ", ".join(f"{r}: {c}" for r, c in w.reasons.most_common())
            self._enqueue(RejectedRecord(
                datetime.fromtimestamp(w.minute * 60 + 60, UTC), w.receiver, host, "suppressed",
                f"{n} more rejected frames from {host} in this minute, not kept ({by_reason})",
                "", None, b"", n))

    def _roll_windows(self) -> None:
        minute = int(time.time() // 60)
        for host, w in list(self._windows.items()):
            if w.minute != minute:
                del self._windows[host]
                self._close_window(host, w)

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        self._task = asyncio.create_task(self._writer(), name="rejected-frames-writer")

    async def stop(self) -> None:
        """Write what is queued (bounded by the write timeout), then stop."""
        self._closing = True
        self._roll_windows_all()
        self._wake.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, self.write_timeout * 2)
            except (TimeoutError, asyncio.CancelledError):
                pass
            self._task = None

    def _roll_windows_all(self) -> None:
        for host, w in list(self._windows.items()):
            del self._windows[host]
            self._close_window(host, w)

    async def flush(self) -> None:
        """Until everything queued so far is written (tests)."""
        while self._queue or self._busy:
            await asyncio.sleep(0.005)

    @property
    def queued(self) -> int:
        return len(self._queue)

    async def _writer(self) -> None:
        next_prune = time.monotonic() + 1.0
        while True:
            if not self._queue:
                if self._closing:
                    return
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), 5.0)
                self._roll_windows()
                if time.monotonic() >= next_prune:
                    next_prune = time.monotonic() + self.prune_every
                    await self._prune()
                continue
            rows = [self._queue.popleft() for _ in range(min(self.batch, len(self._queue)))]
            self._busy = True
            try:
                await asyncio.wait_for(self._write(rows), self.write_timeout)
                self.stats.written += len(rows)
            except Exception as exc:  # the database is down or slow: these rows are lost, said once
                self.stats.failures += 1
                self.stats.dropped += len(rows)
                now = time.monotonic()
                if now - self._last_error_log > 30:
                    self._last_error_log = now
                    log.warning("rejected frames not written (%d dropped so far): %s", self.stats.dropped, exc)
                if not self._closing:
                    await asyncio.sleep(1.0)
            finally:
                self._busy = False

    async def _write(self, rows: list[RejectedRecord]) -> None:
        async with self.pool.acquire(timeout=self.write_timeout) as conn:
            await conn.execute(_INSERT, [r.received_at for r in rows], [r.receiver for r in rows],
                               [r.peer for r in rows], [r.reason for r in rows], [r.detail for r in rows],
                               [r.account for r in rows], [r.reply for r in rows], [r.raw for r in rows],
                               [r.count for r in rows])

    async def _prune(self) -> None:
        try:
            async with self.pool.acquire(timeout=self.write_timeout) as conn:
                old = await conn.execute(
                    "DELETE FROM rejected_frames WHERE received_at < now() - make_interval(secs => $1::float8)",
                    self.max_age_days * 86400.0)
                over = await conn.execute(
                    "DELETE FROM rejected_frames WHERE id <= (SELECT id FROM rejected_frames"
                    " ORDER BY id DESC OFFSET $1 LIMIT 1)", self.max_rows)
            self.stats.pruned += sum(int(r.split()[-1]) for r in (old, over))
        except Exception as exc:
            log.warning("pruning rejected_frames failed: %s", exc)
