"""Counters every receiver keeps for the health view (API and board)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


@dataclass(slots=True)
class ReceiverStats:
    """What the health view shows about one receiver."""

    name: str
    kind: str
    connections: int = 0
    accepted: int = 0
    acked: int = 0
    not_acked: int = 0  # frames whose commit failed: no ACK went out
    rejected: int = 0
    state: str = "running"  # running | down (device gone, server unreachable) | stopped
    detail: str = ""  # why it is down, for the operator
    supervision_misses: int = 0  # heartbeats / polls missed
    last_signal_at: datetime | None = None
    # accepted frames per second over the last minute: a ring of 60 one-second buckets, so the
    # per-frame cost stays constant however fast signals come
    _counts: list[int] = field(default_factory=lambda: [0] * 60)
    _seconds: list[int] = field(default_factory=lambda: [-1] * 60)

    def note_accepted(self) -> None:
        self.accepted += 1
        self.last_signal_at = datetime.now(UTC)
        sec = int(time.monotonic())
        i = sec % 60
        if self._seconds[i] != sec:
            self._seconds[i] = sec
            self._counts[i] = 0
        self._counts[i] += 1

    def last_minute(self) -> int:
        now = int(time.monotonic())
        return sum(c for c, s in zip(self._counts, self._seconds, strict=True) if now - s < 60)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "state": self.state, "connections": self.connections,
                "accepted": self.accepted, "acked": self.acked, "not_acked": self.not_acked,
                "rejected": self.rejected, "last_minute": self.last_minute(),
                "last_signal_at": self.last_signal_at.isoformat() if self.last_signal_at else None,
                "supervision_misses": self.supervision_misses, "detail": self.detail}
