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
    recent: list[float] = field(default_factory=list)  # monotonic times of accepted frames, last minute

    def note_accepted(self) -> None:
        self.accepted += 1
        self.last_signal_at = datetime.now(UTC)
        now = time.monotonic()
        self.recent.append(now)
        if len(self.recent) > 4096 or (self.recent and self.recent[0] < now - 60):
            cut = now - 60
            self.recent = [t for t in self.recent if t >= cut]

    def last_minute(self) -> int:
        cut = time.monotonic() - 60
        return sum(1 for t in self.recent if t >= cut)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "state": self.state, "connections": self.connections,
                "accepted": self.accepted, "acked": self.acked, "not_acked": self.not_acked,
                "rejected": self.rejected, "last_minute": self.last_minute(),
                "last_signal_at": self.last_signal_at.isoformat() if self.last_signal_at else None,
                "supervision_misses": self.supervision_misses, "detail": self.detail}
