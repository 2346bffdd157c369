"""Stopping a receiver's background task for certain."""

from __future__ import annotations

import asyncio
from typing import Any


async def stop_task(task: asyncio.Task[Any] | None) -> None:
    """Cancel `task` and wait until it has ended.

    Cancelled once, a task can still carry on: on Python 3.11 `asyncio.wait_for` (used inside
    pymodbus and asyncpg) drops a cancellation that arrives just as the awaited call completes. So
    the cancellation is repeated until the task is done, instead of awaiting it forever.
    """
    if task is None:
        return
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=0.5)
    if not task.cancelled():
        task.exception()  # retrieved, so asyncio does not warn "exception was never retrieved"
