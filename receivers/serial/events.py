"""What the serial codecs hand to the transport: one event per terminated message."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from console.signal import Poll, Signal

ACK = b"\x06"
NAK = b"\x15"


@dataclass(slots=True)
class Accepted:
    """A message that parsed: its signals (or the heartbeat's Poll) and the reply to send once
    they are committed. One terminated message gets exactly one reply, even when it held several
    concatenated frames: an extra ACK would be taken by the receiver as the ACK of its next message."""

    items: list[Signal | Poll]
    raw: bytes
    reply: bytes = ACK

    @property
    def heartbeat(self) -> bool:
        return any(isinstance(it, Poll) for it in self.items)


@dataclass(slots=True)
class Rejected:
    """A message (or one part of a concatenated message) that did not parse. `reply` is what to
    answer (NAK), or None when another part of the same message already gets the reply."""

    reason: str
    detail: str
    raw: bytes
    reply: bytes | None = NAK
    account: str = ""


Event = Accepted | Rejected


class TerminatedLines(ABC):
    """The framing both automation formats share: bytes accumulate until a terminator (DC4 for
    Sur-Gard, CR for Ademco 685); each terminated message goes to `message`; a run of bytes far
    longer than any message without a terminator is line noise or a wrong baud rate, and rejected."""

    terminator: bytes = b"\r"
    max_message: int = 512

    def __init__(self, receiver: str, peer: str = "", *,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.receiver = receiver
        self.peer = peer
        self.now = now
        self._buf = bytearray()

    def pending(self) -> bool:
        """A message has started but its terminator has not arrived yet."""
        return bool(self._buf.strip(b" \r\n\x00"))

    def feed(self, data: bytes) -> list[Event]:
        self._buf += data
        events: list[Event] = []
        while True:
            end = self._buf.find(self.terminator)
            if end < 0:
                break
            message = bytes(self._buf[:end])
            del self._buf[:end + 1]
            events.extend(self.message(message))
        if len(self._buf) > self.max_message:
            raw = bytes(self._buf)
            self._buf.clear()
            name = "DC4" if self.terminator == b"\x14" else "CR"
            events.append(Rejected("overlong", f"{len(raw)} bytes without {name}", raw))
        return events

    @abstractmethod
    def message(self, raw: bytes) -> list[Event]:
        """One terminated message (without its terminator) -> its events; each format parses its own."""
