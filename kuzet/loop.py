"""The event loop every long-running `kuzet` command uses."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any


def run_fast(coro: Coroutine[Any, Any, Any]) -> Any:
    """uvloop where installed (it is, with uvicorn[standard]): receivers and load generators alike
    must not be slowed by the default loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)
