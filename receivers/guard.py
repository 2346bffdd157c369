"""Limits for a receiver that faces the internet: how many connections (in all and per peer
address), and what happens to an address that keeps sending what is not a valid frame.

A peer address is slowed once it has had `slow_after` frames rejected within `penalty_window`
seconds (the receiver stops reading from it for `slow_delay` seconds after every chunk with a
rejected frame), and cut off once it reaches `block_after`: its connections are closed, new ones
refused and its datagrams dropped for `block_seconds`. A panel sends one message and waits for the
answer, so even many panels behind one NAT address stay far below these numbers; only a peer that
floods the port reaches them. Sans-IO: the transport asks, the guard counts and answers.
"""

from __future__ import annotations

import errno
import os
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

MAX_TRACKED = 10_000  # addresses remembered (offences, cut-offs): bounded even under spoofed UDP floods


@dataclass(slots=True, frozen=True)
class Limits:
    max_connections: int = 10_000  # TCP connections in all
    max_connections_per_peer: int = 256  # from one address (panels behind a carrier's NAT share one)
    slow_after: int = 20  # rejected frames from one address within the window before it is slowed
    block_after: int = 200  # ... before it is cut off
    penalty_window: float = 10.0  # seconds
    slow_delay: float = 0.5  # seconds without reading from a slowed connection after a bad chunk
    block_seconds: float = 60.0  # how long a cut-off address stays refused


@dataclass(slots=True)
class _Offences:
    since: float
    count: int = 0


class PeerGuard:
    def __init__(self, limits: Limits | None = None, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits or Limits()
        self.clock = clock
        self.connections: dict[str, int] = {}  # open TCP connections by address
        self.total = 0
        self._offences: dict[str, _Offences] = {}
        self._blocked: dict[str, float] = {}  # address -> until (clock)
        self.refused = 0  # connections refused (limits or cut off)
        self.dropped_datagrams = 0  # datagrams from cut-off addresses
        self.slowed = 0  # times a connection was paused for garbage
        self.cut_offs = 0  # times an address was cut off

    # -- connections -------------------------------------------------------------------------

    def admit(self, host: str) -> str | None:
        """Why a new connection from `host` is refused, or None to accept it (then call `opened`)."""
        if self.blocked(host):
            return "cut off for sending invalid frames"
        if self.total >= self.limits.max_connections:
            return f"{self.total} connections open (max_connections)"
        if self.connections.get(host, 0) >= self.limits.max_connections_per_peer:
            return f"{self.connections[host]} connections from this address (max_connections_per_peer)"
        return None

    def opened(self, host: str) -> None:
        self.total += 1
        self.connections[host] = self.connections.get(host, 0) + 1

    def closed(self, host: str) -> None:
        self.total -= 1
        n = self.connections.get(host, 0) - 1
        if n > 0:
            self.connections[host] = n
        else:
            self.connections.pop(host, None)

    # -- invalid frames ----------------------------------------------------------------------

    def blocked(self, host: str) -> bool:
        until = self._blocked.get(host)
        if until is None:
            return False
        if self.clock() < until:
            return True
        del self._blocked[host]
        return False

    def offend(self, host: str, n: int = 1) -> float:
        """`n` frames from `host` were rejected: how long to stop reading from it (0: go on), or
        `math.inf` when the address is now cut off (close its connections)."""
        now = self.clock()
        lim = self.limits
        o = self._offences.get(host)
        if o is None or now - o.since > lim.penalty_window:
            if o is None and len(self._offences) >= MAX_TRACKED:
                self._forget(now)
            o = self._offences[host] = _Offences(now)
        o.count += n
        if o.count >= lim.block_after:
            if len(self._blocked) >= MAX_TRACKED:
                self._forget(now)
            self._blocked[host] = now + lim.block_seconds
            del self._offences[host]
            self.cut_offs += 1
            return float("inf")
        if o.count >= lim.slow_after:
            self.slowed += 1
            return lim.slow_delay
        return 0.0

    def _forget(self, now: float) -> None:
        """Drop expired entries; if still full, the oldest ones (memory stays bounded)."""
        for host, o in list(self._offences.items()):
            if now - o.since > self.limits.penalty_window:
                del self._offences[host]
        for host, until in list(self._blocked.items()):
            if until <= now:
                del self._blocked[host]
        for table in (self._offences, self._blocked):
            while len(table) >= MAX_TRACKED:
                del table[next(iter(table))]

    def cut_off_now(self) -> list[dict[str, Any]]:
        """Addresses refused right now, with the seconds left (for the health view)."""
        now = self.clock()
        return [{"peer": h, "seconds_left": round(u - now)} for h, u in sorted(self._blocked.items(), key=lambda x: -x[1])
                if u > now]

    def health(self) -> dict[str, Any]:
        cut = self.cut_off_now()
        return {"peers_cut_off": len(cut), "cut_off": cut[:20], "refused_connections": self.refused,
                "dropped_datagrams": self.dropped_datagrams, "slowed": self.slowed, "cut_offs": self.cut_offs}


def open_files() -> tuple[int, int] | None:
    """(file descriptors open, soft limit) of this process, where /proc tells (Linux)."""
    limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    try:
        n = len(os.listdir("/proc/self/fd"))
    except OSError as exc:
        return (limit, limit) if is_out_of_files(exc) else None  # not even one left to look
    return n, limit


def is_out_of_files(exc: BaseException | None) -> bool:
    """accept() failing because the process (EMFILE) or the system (ENFILE) has no descriptor left."""
    return isinstance(exc, OSError) and exc.errno in (errno.EMFILE, errno.ENFILE)
