"""PostgreSQL restarts under a running Kuzet: every LISTEN comes back, and the account directory
follows changes made afterwards (an AES account created after the restart is not answered DUH)."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from console import account, db, guarded_object
from console.config import Dc09Config, Settings
from kuzet.runtime import DOMAINS, System
from receivers.dc09.transmitter import Transmitter
from tests.util import until

KEY = bytes(range(16, 32))


@pytest.fixture
async def own_server() -> AsyncIterator[tuple[db.EmbeddedServer, str]]:
    """A PostgreSQL of its own (the shared one must not be restarted under the other tests)."""
    base = Path(tempfile.mkdtemp(prefix="kuzet-restart-", dir="/tmp"))
    server = db.EmbeddedServer(base / "pgdata")
    dsn = await asyncio.to_thread(server.start)
    try:
        conn = await db.connect(dsn)
        try:
            await db.migrate(conn, DOMAINS)
        finally:
            await conn.close()
        yield server, dsn
    finally:
        await asyncio.to_thread(server.stop)
        shutil.rmtree(base, ignore_errors=True)


async def _exchange(port: int, tx: Transmitter, frame: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(frame)
        await writer.drain()
        return await asyncio.wait_for(reader.readuntil(b"\r"), 10)
    finally:
        writer.close()


async def test_listeners_survive_a_postgres_restart(own_server: tuple[db.EmbeddedServer, str]) -> None:
    server, dsn = own_server
    settings = Settings(home=server.pgdata.parent, database_url=dsn, app_database_url=server.app_dsn,
                        dc09=[Dc09Config(port=0, udp=False)])
    system = System(settings, with_web=False, with_supervision=False)
    await system.start()
    try:
        assert system._listener is not None and system.engine is not None
        listeners = [system._listener, system.engine.listener]
        await until(lambda: all(li.listening.is_set() for li in listeners), "the listeners")

        # stop the server under the running system, and start it again
        await asyncio.to_thread(db.pg_ctl, server.pgdata, "-w", "stop", "-m", "fast")
        await until(lambda: not any(li.listening.is_set() for li in listeners), "the loss to be noticed")
        await asyncio.to_thread(db.pg_ctl, server.pgdata, "-w", "restart")  # with the options it had
        await until(lambda: all(li.listening.is_set() and li.reconnects >= 1 for li in listeners),
                    "every listener to be back", deadline=30)

        # an encrypted account created now: its very first signal is acknowledged
        conn = await asyncpg.connect(dsn)
        try:
            oid = await guarded_object.create(conn, "После рестарта", address="Алматы")
            await account.create(conn, "7A01", object_id=oid, aes_key=KEY.hex(), key_format="hex")
        finally:
            await conn.close()
        await until(lambda: system.directory.find("0", "0", "7A01") is not None, "the directory to reload")
        tx = Transmitter("7A01", key=KEY)
        reply = tx.parse_reply(await _exchange(system.dc09_port, tx, tx.sia("BA", "001")))
        assert reply.kind == "ACK" and reply.encrypted and tx.handle(reply), reply
        assert await _stored(dsn, "7A01") == 1
    finally:
        await system.stop()


async def _stored(dsn: str, number: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        n: int = await conn.fetchval("SELECT count(*) FROM signals WHERE account = $1", number)
        return n
    finally:
        await conn.close()
