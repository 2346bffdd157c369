"""What the runtime needs from any receiver, whatever its wire protocol."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class Receiver(Protocol):
    """A receiver the runtime starts, stops and shows in the health view.

    `start` returns once the receiver listens (or, for a device that is not there yet, once it is
    retrying in the background); `stop` ends everything it started. `health` is one row of the
    health view (`receivers.stats.ReceiverStats.as_dict`); `where` says where it listens or what it
    reads, for the start-up lines.
    """

    name: str

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def health(self) -> dict[str, Any]: ...

    def where(self) -> str: ...
