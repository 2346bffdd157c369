"""What the serial codecs hand to the transport: one event per terminated message."""

from __future__ import annotations

from dataclasses import dataclass

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
