"""A receiver's own trouble (its device gone, its heartbeat missed), reported as signals.

Like a Modbus poller's Contact ID 350 for a silent device, a receiver's trouble goes through the
signal store as an internal signal (code `console.alarm.RECEIVER_TROUBLE`, account = the receiver's
name, qualifier 1 raise / 3 restore, the condition in xdata), and the alarm engine turns it into the
receiver-trouble alarm: the receiver writes no alarm itself, and the report is as durable as any
signal (stored before it counts, kept and resubmitted in order while the database is away).
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime

from console.alarm import RECEIVER_TROUBLE
from console.signal import Signal
from console.store import SignalStore

log = logging.getLogger("kuzet.receivers")

RETRY = 0.5  # seconds before a report the store could not commit is submitted again


class TroubleReport:
    """Keeps one receiver's trouble conditions ("device", "heartbeat"): a condition that appears is
    reported (raise), and the end of the last one (restore)."""

    def __init__(self, store: SignalStore, receiver: str, peer: str = "") -> None:
        self.store = store
        self.receiver = receiver
        self.peer = peer
        self.conditions: dict[str, str] = {}
        self.raised = 0  # reports committed (tests and health)
        self.restored = 0
        self._pending: list[Signal] = []  # reported, not yet committed, in order
        self._in_flight = False
        self._retry: asyncio.TimerHandle | None = None
        # Natural keys must tell a second outage from a retry of the first: a sequence from the clock.
        self._seq = int(time.time() * 1000)

    def set(self, condition: str, detail: str) -> None:
        if condition in self.conditions:
            return
        self.conditions[condition] = detail
        self._report("1", {"condition": condition, "reason": detail})

    def clear(self, condition: str) -> None:
        if self.conditions.pop(condition, None) is None:
            return
        if not self.conditions:
            self._report("3", {"condition": condition})

    def pending(self) -> int:
        return len(self._pending)

    async def stop(self, drain: float = 2.0) -> None:
        """Give reports still pending a moment to reach the database, then stop retrying."""
        deadline = time.monotonic() + drain
        while self._pending and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None

    def _report(self, qualifier: str, xdata: dict[str, str]) -> None:
        self._seq += 1
        now = datetime.now(UTC)
        self._pending.append(Signal(
            self.receiver, "RECEIVER", self.receiver, RECEIVER_TROUBLE, "internal", now,
            f"{qualifier} {xdata}".encode(), self.peer, qualifier=qualifier, xdata=xdata, sequence=str(self._seq)))
        self._flush()

    def _flush(self) -> None:
        if self._in_flight or not self._pending:
            return
        batch = list(self._pending)
        self._in_flight = True

        def done(ok: bool) -> None:
            self._in_flight = False
            if ok:
                for s in batch:
                    if s.qualifier == "1":
                        self.raised += 1
                    else:
                        self.restored += 1
                del self._pending[:len(batch)]
                self._flush()
            else:  # the database is away: the same signals again shortly (same keys, stored once)
                log.warning("%s: receiver trouble report not stored yet; retrying", self.receiver)
                self._retry = asyncio.get_running_loop().call_later(RETRY, self._flush)

        self.store.submit(batch, done)
