"""One hostile peer must never silence the post: ten panels keep their ACKs while one peer floods
the DC-09 port with malformed frames; the flooder is slowed, then cut off (and shown in the health
view); rejected frames are sampled and bounded; a failing database shows as "degraded"; SIGTERM
stops the process during all of it. Real sockets, a real Kuzet process, the real database."""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import psutil
import pytest

from console import account, guarded_object
from console.config import Dc09Config, Settings
from console.rejected import RejectedLog, RejectedRecord
from kuzet.bench.flood import Fleet, _register_fleet, malformed_frame, start_flooder
from kuzet.runtime import System
from receivers.dc09.transmitter import Transmitter, parse_reply
from tests.util import until

ROOT = Path(__file__).resolve().parent.parent
RSS_BOUND_MB = 400  # the process stays under this during the flood (it went to 4.7 GB before)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def test_ten_panels_keep_their_acks_while_one_peer_floods(pool: asyncpg.Pool, migrated: str, owner_dsn: str,
                                                                tmp_path: Path) -> None:
    await _register_fleet(migrated, 10)
    port = free_port()
    cfg = tmp_path / "kuzet.toml"
    cfg.write_text(f'[database]\nurl = "{owner_dsn}"\napp_url = "{migrated}"\n[web]\nport = 0\n'
                   f"[[receivers.dc09]]\nport = {port}\nudp = false\n", encoding="utf-8")
    err = (tmp_path / "stderr.txt").open("wb")
    proc = subprocess.Popen(  # noqa: ASYNC220  # Kuzet itself, as an operator starts it
        [sys.executable, "-m", "kuzet", "run", "--config", str(cfg), "--home", str(tmp_path / "home")],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err, stdin=subprocess.DEVNULL)
    log_text = lambda: (tmp_path / "stderr.txt").read_text(errors="replace")  # noqa: E731
    fleet = Fleet("127.0.0.1", port, panels=10, rate=20.0)
    flooder: subprocess.Popen[bytes] | None = None
    try:
        await until(lambda: _port_open(port) or proc.poll() is not None, "Kuzet to listen", deadline=60)
        assert proc.poll() is None, log_text()
        kuzet = psutil.Process(proc.pid)
        fleet.start()
        await until(lambda: bool(fleet.per_second), "the panels' first ACKs", deadline=30)
        t0 = int(fleet.now()) + 1
        await until(lambda: fleet.now() >= t0 + 3, "three seconds of panels alone")
        before = fleet.rate_between(t0, int(fleet.now()))
        assert before >= 50, fleet.per_second  # ten panels at 20/s: about 200 ACKs a second

        flooder = start_flooder("127.0.0.1", port, 10.0, 4, "127.0.0.2")
        rss: list[float] = []

        async def flood_over() -> bool:
            rss.append(kuzet.memory_info().rss / 2**20)
            return flooder is not None and flooder.poll() is not None

        await until(flood_over, "the 10 s flood to end", deadline=60)
        frames = flooder.stdout.read() if flooder.stdout else b""
        ended = int(fleet.now())

        def recovered() -> bool:
            last = int(fleet.now()) - 1  # the last whole second
            return last > ended and fleet.per_second.get(last, 0) >= before / 2

        await until(recovered, "the panels' ACK rate to be back to half of before", deadline=15)
        assert max(rss) < RSS_BOUND_MB, f"RSS went to {max(rss):.0f} MB"
        await fleet.stop()

        # every ACKed signal is stored
        rows = await pool.fetch("SELECT account, sequence FROM signals WHERE account LIKE '81000%'")
        stored = {(r["account"], r["sequence"]) for r in rows}
        assert fleet.acked and fleet.acked <= stored, len(fleet.acked - stored)
        # the flood is in the table only as samples and counters, not row by row
        assert b"frames_sent" in frames
        n_rows = await pool.fetchval("SELECT count(*) FROM rejected_frames WHERE peer LIKE '127.0.0.2%'")
        assert 0 < n_rows < 200

        # SIGTERM in the middle of a second flood (another address, still being slowed or cut off)
        flooder.wait()
        flooder = start_flooder("127.0.0.1", port, 30.0, 4, "127.0.0.3")
        await until(lambda: "127.0.0.3" in log_text() or proc.poll() is not None, "the second flood to be noticed",
                    deadline=30)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            raise AssertionError("SIGTERM did not stop Kuzet within 10 s") from None
        assert proc.returncode == 0, log_text()
        assert "127.0.0.2 cut off" in log_text()
        assert time.monotonic() - t0 < 10
    finally:
        await fleet.stop()
        for p in (flooder, proc):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()
        err.close()


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


# -- in-process: the guard, the health view, the store's own failure ------------------------------

@pytest.fixture
async def system(pool: asyncpg.Pool, migrated: str, tmp_path: Path) -> AsyncIterator[System]:
    oid = await guarded_object.create(pool, "Банк", address="Алматы")
    await account.create(pool, "1234", object_id=oid)
    s = Settings(home=tmp_path, database_url=migrated,
                 dc09=[Dc09Config(port=0, udp=True, max_frame=2048, max_connections_per_peer=3,
                                  slow_after=5, block_after=40, slow_delay=0.2, block_seconds=30)])
    sysm = System(s, with_web=False, with_supervision=False)
    await sysm.start()
    try:
        yield sysm
    finally:
        await sysm.stop()


async def _ack(port: int, seq: int, source: str = "127.0.0.1", timeout: float = 10.0) -> bool:
    tx = Transmitter("1234", sequence=seq - 1)
    r, w = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
    try:
        w.write(tx.sia("BA", "001"))
        await w.drain()
        return parse_reply(await asyncio.wait_for(r.readuntil(b"\r"), timeout)).acknowledges(tx.last_sequence, "1234")
    finally:
        w.close()


async def _closed_by_peer(r: asyncio.StreamReader) -> bool:
    """The receiver closed the connection (replies sent before it may still be read first)."""
    async def eof() -> None:
        while await r.read(65536):
            pass

    try:
        await asyncio.wait_for(eof(), 5)
    except ConnectionResetError:
        pass
    except TimeoutError:
        return False
    return True


async def test_a_garbage_peer_is_slowed_then_cut_off_and_shown(system: System) -> None:
    port = system.dc09_port
    srv = system.receivers[0]
    r, w = await asyncio.open_connection("127.0.0.1", port, local_addr=("127.0.0.2", 0))
    bad = malformed_frame(1000)
    try:
        for _ in range(60):
            w.write(bad)
            await w.drain()
            if srv.health()["peers_cut_off"]:
                break
        await until(lambda: srv.health()["peers_cut_off"] == 1, "the flooder to be cut off")
        assert await _closed_by_peer(r)
    finally:
        w.close()
    h = srv.health()
    assert h["cut_off"][0]["peer"] == "127.0.0.2" and h["slowed"] >= 1 and h["state"] == "running"
    assert "127.0.0.2" in h["detail"] and "cut off" in h["detail"]
    # a new connection from it is refused; a panel elsewhere is served
    r2, w2 = await asyncio.open_connection("127.0.0.1", port, local_addr=("127.0.0.2", 0))
    assert await _closed_by_peer(r2)
    w2.close()
    assert await _ack(port, 1)
    # and its datagrams are dropped unanswered
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol, local_addr=("127.0.0.2", 0),
                                                       remote_addr=("127.0.0.1", port))
    dropped = srv.guard.dropped_datagrams
    transport.sendto(bad)
    await until(lambda: srv.guard.dropped_datagrams > dropped, "the datagram to be dropped")
    transport.close()


async def test_connection_and_frame_limits(system: System, pool: asyncpg.Pool) -> None:
    port = system.dc09_port
    conns = [await asyncio.open_connection("127.0.0.1", port, local_addr=("127.0.0.3", 0)) for _ in range(4)]
    try:
        assert await _closed_by_peer(conns[3][0])  # the fourth from one address (max 3)
        assert system.receivers[0].health()["refused_connections"] >= 1
    finally:
        for _r, w in conns:
            w.close()
    # a frame longer than max_frame is refused before it is whole: the connection is closed
    r, w = await asyncio.open_connection("127.0.0.1", port)
    try:
        w.write(b"\n" + b"0" * 3000)
        await w.drain()
        assert await _closed_by_peer(r)
    finally:
        w.close()
    assert system.store is not None
    await system.store.flush()
    assert await pool.fetchval("SELECT count(*) FROM rejected_frames WHERE reason = 'oversize'") == 1
    assert await _ack(port, 2)


async def test_a_failing_store_shows_degraded_and_rejects_never_hold_signals(system: System, pg_dsn: str) -> None:
    port = system.dc09_port
    srv = system.receivers[0]
    locker = await asyncpg.connect(pg_dsn)  # the superuser: the runtime role may not lock signals
    try:
        # rejected frames cannot be written: signals are ACKed all the same
        tr = locker.transaction()
        await tr.start()
        await locker.execute("LOCK TABLE rejected_frames IN ACCESS EXCLUSIVE MODE")
        r, w = await asyncio.open_connection("127.0.0.1", port, local_addr=("127.0.0.4", 0))
        w.write(malformed_frame(500))
        await w.drain()
        w.close()
        assert system.store is not None
        await until(lambda: system.store is not None and system.store.rejected.stats.kept >= 1, "the reject")
        assert await _ack(port, 3)
        await tr.rollback()
        # the signals cannot be written: the health view says so
        tr = locker.transaction()
        await tr.start()
        await locker.execute("LOCK TABLE signals IN ACCESS EXCLUSIVE MODE")
        with pytest.raises(TimeoutError):  # no ACK without the commit (the store gives up after 5 s)
            await _ack(port, 4, timeout=8)
        await until(lambda: srv.health()["state"] == "degraded", "the health view to say degraded")
        assert "database failing" in srv.health()["detail"]
        assert system.health()[0]["state"] == "degraded"
        await tr.rollback()
        assert await _ack(port, 5)
        await until(lambda: srv.health()["state"] == "running", "the health view to recover")
    finally:
        await locker.close()


async def test_a_clean_stop_acknowledges_what_is_being_committed(system: System, pg_dsn: str) -> None:
    """SIGTERM's path: the receiver stops taking frames, the signal whose commit is in flight is
    committed and ACKed, and only then is the connection closed (no retry needed)."""
    port = system.dc09_port
    assert system.store is not None
    store = system.store
    locker = await asyncpg.connect(pg_dsn)
    try:
        tr = locker.transaction()
        await tr.start()
        await locker.execute("LOCK TABLE signals IN ACCESS EXCLUSIVE MODE")  # hold the commit
        tx = Transmitter("1234", sequence=40)
        r, w = await asyncio.open_connection("127.0.0.1", port)
        w.write(tx.sia("BA", "007"))
        await w.drain()
        await until(lambda: store.stats.submitted == 0 and store.queued == 0 and _busy(store), "the commit in flight")
        stopping = asyncio.create_task(system.stop())
        await until(lambda: system.receivers == [] or system.receivers[0].stopping, "the receiver to stop taking frames")
        await tr.rollback()  # the commit goes through now
        reply = parse_reply(await asyncio.wait_for(r.readuntil(b"\r"), 10))
        assert reply.acknowledges(tx.last_sequence, "1234")
        assert await _closed_by_peer(r)  # then the connection is closed
        await stopping
        w.close()
    finally:
        await locker.close()
    conn = await asyncpg.connect(pg_dsn)
    try:
        assert await conn.fetchval("SELECT count(*) FROM signals WHERE account = '1234' AND sequence = $1",
                                   tx.last_sequence) == 1
    finally:
        await conn.close()


def _busy(store: object) -> bool:
    return any(lane.busy for lane in store._lanes)  # type: ignore[attr-defined]  # the lane writing now


async def test_rejected_frames_are_sampled_bounded_and_pruned(pool: asyncpg.Pool) -> None:
    from datetime import UTC, datetime

    log = RejectedLog(pool, samples_per_minute=3, queue_size=50, max_rows=20, prune_every=0.1)
    await log.start()
    try:
        for i in range(1000):
            log.offer(RejectedRecord(datetime.now(UTC), "dc09", f"10.0.0.{i % 2}:{5000 + i}", "length", "x",
                                     "", None, b"\n" + b"x" * 100))
        assert log.stats.kept == 6 and log.stats.suppressed == 994 and log.queued <= 50
        for i in range(200):  # as many addresses: the queue is full after 50, the rest dropped and counted
            log.offer(RejectedRecord(datetime.now(UTC), "dc09", f"10.1.{i}.1:1", "crc", "", "", None, b"y"))
        assert log.queued <= 50 and log.stats.dropped > 0
        await log.flush()
        await log.stop()  # the minute's counts are written as "suppressed" rows
        rows = await pool.fetch("SELECT peer, count FROM rejected_frames WHERE reason = 'suppressed'")
        counts = {r["peer"]: r["count"] for r in rows}
        assert counts.get("10.0.0.0") == 497 and counts.get("10.0.0.1") == 497
    finally:
        await log.stop()
    log = RejectedLog(pool, max_rows=20, prune_every=0.1)
    await log.start()
    try:
        await until(lambda: _count(pool, "SELECT count(*) <= 20 FROM rejected_frames"), "pruning to max_rows")
    finally:
        await log.stop()


async def _count(pool: asyncpg.Pool, sql: str) -> bool:
    return bool(await pool.fetchval(sql))


def _few_files() -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_NOFILE, (100, 100))


async def test_running_out_of_file_descriptors_is_said_clearly(migrated: str, owner_dsn: str, tmp_path: Path) -> None:
    port = free_port()
    cfg = tmp_path / "kuzet.toml"
    cfg.write_text(f'[database]\nurl = "{owner_dsn}"\napp_url = "{migrated}"\n[web]\nport = 0\n'
                   f"[[receivers.dc09]]\nport = {port}\nudp = false\n", encoding="utf-8")
    err_path, out_path = tmp_path / "stderr.txt", tmp_path / "stdout.txt"
    with err_path.open("wb") as err, out_path.open("wb") as out:
        proc = subprocess.Popen(  # noqa: ASYNC220  # Kuzet with 100 file descriptors
            [sys.executable, "-m", "kuzet", "run", "--config", str(cfg), "--home", str(tmp_path / "home")],
            cwd=ROOT, stdout=out, stderr=err, stdin=subprocess.DEVNULL, preexec_fn=_few_files)
    socks: list[socket.socket] = []
    try:
        await until(lambda: "Kuzet is running" in out_path.read_text() or proc.poll() is not None,
                    "Kuzet to start", deadline=60)
        assert proc.poll() is None, err_path.read_text()
        for _ in range(150):  # more than it can accept
            socks.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        await until(lambda: "OUT OF FILE DESCRIPTORS" in err_path.read_text(errors="replace"),
                    "the log line", deadline=20)
    finally:
        for s in socks:
            s.close()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
