"""Helpers shared by the tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable


async def until(cond: Callable[[], bool | Awaitable[bool]], what: str, deadline: float = 15.0) -> None:
    """Poll a condition until it holds (no timing assertions: a slow machine only waits longer)."""
    end = time.monotonic() + deadline
    while True:
        got = cond()
        if not isinstance(got, bool):
            got = await got
        if got:
            return
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)
