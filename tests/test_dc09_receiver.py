"""The DC-09 receiver over real TCP and UDP sockets on 127.0.0.1, with the real database behind it."""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import signal
import tempfile
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import asyncpg
import pytest

from console import account, alarm, guarded_object
from console.config import Dc09Config, Settings
from kuzet.runtime import System
from receivers.dc09.transmitter import Transmitter, parse_reply
from tests.util import until

KEY = bytes.fromhex("000102030405060708090A0B0C0D0E0F")


@pytest.fixture
async def system(pool: asyncpg.Pool, migrated: str, tmp_path: Path) -> AsyncIterator[System]:
    oid = await guarded_object.create(pool, "Банк", address="Алматы")
    await account.create(pool, "1234", object_id=oid)
    await account.create(pool, "5678", object_id=oid, aes_key=KEY.hex(), key_format="hex")
    s = Settings(home=tmp_path, database_url=migrated,
                 dc09=[Dc09Config(port=0, unfinished_timeout=1.0)])
    sysm = System(s, with_web=False)
    await sysm.start()
    try:
        yield sysm
    finally:
        await sysm.stop()


class Panel:
    def __init__(self, port: int, account_no: str, key: bytes | None = None) -> None:
        self.port = port
        self.tx = Transmitter(account_no, key=key)
        self.reader: asyncio.StreamReader
        self.writer: asyncio.StreamWriter

    async def __aenter__(self) -> Panel:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.writer.close()

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def reply(self, timeout: float = 5.0) -> bytes:
        return await asyncio.wait_for(self.reader.readuntil(b"\r"), timeout)


async def count(pool: asyncpg.Pool, sql: str, *args: object) -> int:
    n: int = await pool.fetchval(sql, *args)
    return n


async def test_plain_and_encrypted_messages_are_acked_after_storing(system: System, pool: asyncpg.Pool) -> None:
    port = system.dc09_port
    async with Panel(port, "1234") as p:
        await p.send(p.tx.sia("BA", "003", area="1"))
        r = parse_reply(await p.reply())
        assert r.acknowledges(p.tx.last_sequence, "1234")
        assert b"None" not in r.raw
        row = await pool.fetchrow("SELECT * FROM signals WHERE account = '1234'")
        assert row is not None and row["code"] == "BA" and row["zone"] == "003" and row["partition"] == "1"
        assert row["peer"].startswith("127.0.0.1:") and row["raw"].startswith(b"\n")
    async with Panel(port, "5678", KEY) as p:
        await p.send(p.tx.cid("1", "130", 1, 5))
        r = p.tx.parse_reply(await p.reply())
        assert r.encrypted and r.kind == "ACK" and p.tx.handle(r)
        row = await pool.fetchrow("SELECT * FROM signals WHERE account = '5678'")
        assert row["encrypted"] and row["code"] == "130" and row["qualifier"] == "1" and row["zone"] == "005"
    # the alarm engine opened an alarm on the object for them
    await until(lambda: _alarm_count(pool), "the alarm to gather both signals")
    rows = await alarm.list_alarms(pool)
    assert rows[0]["object_name"] == "Банк" and rows[0]["signal_count"] == 2


async def _alarm_count(pool: asyncpg.Pool) -> bool:
    rows = await alarm.list_alarms(pool)
    return bool(rows) and rows[0]["signal_count"] == 2


async def test_udp(system: System, pool: asyncpg.Pool) -> None:
    loop = asyncio.get_running_loop()
    replies: asyncio.Queue[bytes] = asyncio.Queue()

    class Proto(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
            replies.put_nowait(data)

    transport, _ = await loop.create_datagram_endpoint(Proto, remote_addr=("127.0.0.1", system.dc09_port))
    try:
        tx = Transmitter("5678", key=KEY)
        transport.sendto(tx.sia("FA", "002"))
        r = tx.parse_reply(await asyncio.wait_for(replies.get(), 5))
        assert tx.handle(r) and r.encrypted
        assert await count(pool, "SELECT count(*) FROM signals WHERE code = 'FA'") == 1
        transport.sendto(b"\n0000001F\"SIA-DCS\"0001L0#1234[]\r")  # wrong CRC
        r = parse_reply(await asyncio.wait_for(replies.get(), 5))
        assert r.kind == "NAK" and r.account == ""
    finally:
        transport.close()


async def test_bad_input_is_answered_recorded_and_the_receiver_keeps_serving(system: System, pool: asyncpg.Pool) -> None:
    port = system.dc09_port
    async with Panel(port, "1234") as p:
        good = p.tx.sia("BA", "001")
        bad_crc = good[:1] + (b"0000" if good[1:5] != b"0000" else b"FFFF") + good[5:]
        await p.send(bad_crc)
        assert parse_reply(await p.reply()).kind == "NAK"
        bad_len = good[:5] + b"0FFF" + good[9:]
        await p.send(bad_len)
        assert parse_reply(await p.reply()).kind == "NAK"
        stale = p.tx.sia("BA", "002", timestamp=p.tx.now() - timedelta(minutes=5))
        await p.send(stale)
        nak = parse_reply(await p.reply())
        assert nak.kind == "NAK" and nak.timestamp is not None
        await p.send(b"garbage without a start\x00\xff")
        # same connection, a good frame still goes through
        await p.send(p.tx.sia("BA", "004"))
        assert parse_reply(await p.reply()).acknowledges(p.tx.last_sequence, "1234")
    async with Panel(port, "1234") as p:  # an encrypted frame with the wrong key
        tx = Transmitter("5678", key=bytes(16))
        await p.send(tx.sia("BA", "001"))
        assert parse_reply(await p.reply()).kind == "NAK"
        plain_for_keyed = Transmitter("5678").sia("BA", "001")
        await p.send(plain_for_keyed)
        assert parse_reply(await p.reply()).kind == "DUH"
        await p.send(Transmitter("9ABC", key=KEY).sia("BA", "001"))  # encrypted, unknown account
        assert parse_reply(await p.reply()).kind == "DUH"
    assert system.store is not None
    await system.store.flush()
    reasons = {r["reason"] for r in await pool.fetch("SELECT reason FROM rejected_frames")}
    assert {"crc", "length", "timestamp", "garbage", "decrypt", "plain-for-keyed-account",
            "unknown-account-encrypted"} <= reasons
    assert await count(pool, "SELECT count(*) FROM signals") == 1


async def test_oversize_and_unfinished_frames_close_the_connection(system: System, pool: asyncpg.Pool) -> None:
    port = system.dc09_port
    async with Panel(port, "1234") as p:
        await p.send(b"\n" + b"A" * 10_000)
        assert await asyncio.wait_for(p.reader.read(), 5) == b""  # closed by the receiver
    async with Panel(port, "1234") as p:
        await p.send(p.tx.sia("BA", "001")[:20])  # never finished
        assert await asyncio.wait_for(p.reader.read(), 5) == b""
    # and others are still served
    async with Panel(port, "1234") as p:
        await p.send(p.tx.sia("BA", "005"))
        assert parse_reply(await p.reply()).kind == "ACK"
    await until(lambda: _reasons_include(pool, {"oversize", "unfinished"}), "the rejects to be recorded")


async def _reasons_include(pool: asyncpg.Pool, want: set[str]) -> bool:
    return want <= {r["reason"] for r in await pool.fetch("SELECT reason FROM rejected_frames")}


async def test_stream_split_and_coalesced_and_retry_stored_once(system: System, pool: asyncpg.Pool) -> None:
    port = system.dc09_port
    async with Panel(port, "1234") as p:
        frames = [p.tx.sia("BA", f"{i:03d}") for i in range(1, 21)]
        seqs = [f"{i:04d}" for i in range(1, 21)]
        await p.send(b"".join(frames))  # twenty frames in one segment
        got = [parse_reply(await p.reply()) for _ in frames]
        assert [r.sequence for r in got] == seqs and all(r.kind == "ACK" for r in got)
        one = p.tx.sia("BA", "099")
        for i in range(len(one)):  # byte by byte
            await p.send(one[i:i + 1])
        assert parse_reply(await p.reply()).kind == "ACK"
        await p.send(one)  # the panel's retry of the same message
        assert parse_reply(await p.reply()).kind == "ACK"
    assert await count(pool, "SELECT count(*) FROM signals") == 21
    assert await count(pool, "SELECT count(*) FROM signals WHERE zone = '099'") == 1


async def test_unknown_plain_account_is_acked_stored_and_alarmed(system: System, pool: asyncpg.Pool) -> None:
    async with Panel(system.dc09_port, "7777") as p:
        await p.send(p.tx.sia("BA", "001"))
        assert parse_reply(await p.reply()).kind == "ACK"
    assert await count(pool, "SELECT count(*) FROM signals WHERE account = '7777'") == 1

    async def raised() -> bool:
        return any(a["kind"] == "unknown-account" and a["account"] == "7777" for a in await alarm.list_alarms(pool))

    await until(raised, "the unknown-account alarm")


async def test_every_acked_signal_is_in_the_database(system: System, pool: asyncpg.Pool) -> None:
    """Many panels at once through the simulator's own transmitters: count ACKs against rows."""
    from receivers.sim.dc09 import Panel as SimPanel
    from receivers.sim.dc09 import PanelStats

    stats = PanelStats()
    panels = [SimPanel(str(3000 + i), "127.0.0.1", system.dc09_port, key=None, udp=False, cid=i % 2 == 0,
                       timeout=5, retries=3, stats=stats, verbose=False) for i in range(30)]
    rng = random.Random(7)
    await asyncio.gather(*(p.event(rng) for p in panels for _ in range(5)))
    for p in panels:
        await p.close()
    assert stats.acked == 150 and stats.failed == 0
    assert await count(pool, "SELECT count(*) FROM signals WHERE account LIKE '30%'") == stats.acked


async def test_database_stopped_means_no_ack() -> None:
    """A system on its own embedded PostgreSQL; the server is stopped under it."""
    home = Path(tempfile.mkdtemp(prefix="kuzet-dbdown-", dir="/tmp"))
    sysm = System(Settings(home=home, database_url=None, dc09=[Dc09Config(port=0)]), with_web=False)
    await sysm.start()
    try:
        assert sysm.store is not None
        sysm.store.write_timeout = 2.0
        port = sysm.dc09_port
        async with Panel(port, "1234") as p:
            await p.send(p.tx.sia("BA", "001"))
            assert parse_reply(await p.reply()).kind == "ACK"
            pid = int((home / "pgdata" / "postmaster.pid").read_text().split()[0])
            os.kill(pid, signal.SIGINT)  # fast shutdown
            for _ in range(100):
                if not (home / "pgdata" / "postmaster.pid").exists():
                    break
                await asyncio.sleep(0.1)
            stats = sysm.receivers[0].health
            acked = stats()["acked"]
            await p.send(p.tx.sia("BA", "002"))
            # the commit fails (a real event, counted by the receiver) and nothing is acknowledged
            await until(lambda: stats()["not_acked"] >= 1, "the failed commit", deadline=30)
            assert stats()["acked"] == acked
            # the server comes back: the panel's retry is acknowledged and stored
            assert sysm._embedded is not None and sysm._embedded._server is not None
            await asyncio.to_thread(sysm._embedded._server.ensure_postgres_running)
            retry = p.tx.sia("BA", "002", sequence=p.tx.last_sequence)
            await p.send(retry)
            assert parse_reply(await p.reply(timeout=10)).kind == "ACK"
        assert sysm.pool is not None
        assert await sysm.pool.fetchval("SELECT count(*) FROM signals WHERE zone = '002'") == 1
    finally:
        await sysm.stop()
        shutil.rmtree(home, ignore_errors=True)
