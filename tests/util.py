"""Helpers shared by the tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import asyncpg

from console.config import Settings
from receivers.dc09.transmitter import build_message, parse_reply


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


def sia_frame(account_no: str, seq: int, code: str, zone: str) -> bytes:
    """One plain SIA-DCS frame, as a panel sends it (no timestamp)."""
    return build_message("SIA-DCS", f"#{account_no}|Nri1/{code}{zone}", sequence=f"{seq:04d}", account=account_no)


async def send_frame(port: int, frame: bytes) -> bytes:
    """Send one frame over TCP the way a panel does and return the receiver's framed answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(frame)
        await writer.drain()
        return await asyncio.wait_for(reader.readuntil(b"\r"), 5)
    finally:
        writer.close()
        await writer.wait_closed()


def assert_ack(reply: bytes, seq: int, account_no: str) -> None:
    """A well-framed ACK (CRC and length checked by the parser) for exactly this message."""
    r = parse_reply(reply)
    assert r.acknowledges(f"{seq:04d}", account_no) and not r.issues, reply


# Headless Chromium for the browser tests: Debian's (never `playwright install`), found where
# run.sh found it — $KUZET_CHROMIUM, else `chromium` or `chromium-browser` on PATH.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic", "--disable-dev-shm-usage"]


def chromium() -> str:
    """The Chromium executable, or a test failure saying how to get one (browser tests are never skipped)."""
    import os
    import shutil

    import pytest

    found = os.environ.get("KUZET_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not found or not os.access(found, os.X_OK):
        pytest.fail("no Chromium: install Debian's chromium (./run.sh test does), or point KUZET_CHROMIUM at one."
                    " Browser tests are never skipped.")
    return found


@asynccontextmanager
async def serve(pool: asyncpg.Pool, dsn: str, settings: Settings) -> AsyncIterator[str]:
    """The web app on a real uvicorn (127.0.0.1, port 0), configured as the runtime configures it."""
    from kuzet.runtime import DOMAINS, UvicornServer
    from web.app import create_app, server_config

    app = create_app(pool, dsn, settings=settings, domains=DOMAINS)
    server = UvicornServer(server_config(app, settings, host="127.0.0.1", port=0))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    scheme = "https" if settings.tls_cert else "http"
    try:
        yield f"{scheme}://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
