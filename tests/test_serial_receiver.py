"""The serial receiver end to end: a hardware-receiver emulator writes MLR2 / Ademco 685 lines into
one end of a real pty pair (socat), the receiver reads the other end, stores into the real database
and answers ACK/NAK; pulling the "device" (stopping socat) raises receiver trouble."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from console import db
from console.alarm import AlarmEngine
from console.store import SignalStore
from receivers.serial.transport import SerialConfig, SerialReceiver
from receivers.sim.ptypair import SocatPair
from receivers.sim.serial_rx import SerialReceiverEmulator
from tests.util import until

pytestmark = pytest.mark.skipif(not SocatPair.available(), reason="socat is not installed (apt-get install socat)")


@pytest.fixture
async def ptys(tmp_path: Path) -> AsyncIterator[SocatPair]:
    pair = SocatPair(tmp_path / "rx", tmp_path / "dev")  # rx: the computer's port, dev: the receiver's
    await pair.start()
    try:
        yield pair
    finally:
        await pair.stop()


@pytest.fixture
async def receivers() -> AsyncIterator[list[SerialReceiver | SerialReceiverEmulator]]:
    """Everything a test starts is stopped here, whatever the test's outcome."""
    started: list[SerialReceiver | SerialReceiverEmulator] = []
    try:
        yield started
    finally:
        for x in reversed(started):
            if isinstance(x, SerialReceiverEmulator):
                await x.close()
            else:
                await x.stop()


async def start_rx(started: list[SerialReceiver | SerialReceiverEmulator], store: SignalStore,
                   pool: asyncpg.Pool | None, **cfg: object) -> SerialReceiver:
    rx = SerialReceiver(store, SerialConfig(**cfg))  # type: ignore[arg-type]
    started.append(rx)
    await rx.start()
    return rx


@pytest.fixture
async def engine(pool: asyncpg.Pool, migrated: str) -> AsyncIterator[AlarmEngine]:
    """The alarm engine: a receiver reports its trouble as a signal, the engine makes it an alarm."""
    eng = AlarmEngine(pool, migrated)
    await eng.start()
    try:
        yield eng
    finally:
        await eng.stop()


async def open_emulator(started: list[SerialReceiver | SerialReceiverEmulator], port: str,
                        **kw: object) -> SerialReceiverEmulator:
    emu = SerialReceiverEmulator(port, **kw)  # type: ignore[arg-type]
    started.append(emu)
    await emu.open()
    return emu


async def test_mlr2_lines_are_stored_before_they_are_acked(pool: asyncpg.Pool, store: SignalStore,
                                                          ptys: SocatPair, receivers: list) -> None:
    rx = await start_rx(receivers, store, pool, name="serial-1", url=ptys.a, format="mlr2", timezone="UTC")
    await until(lambda: rx.stats.state == "running", "the port to open")
    emu = await open_emulator(receivers, ptys.b, fmt="mlr2", ack_timeout=3.0)
    frames = [
        emu.cid("1234", "E", "130", "01", "003"),
        emu.sia("#1234|Nri1/BA004"),
        emu.heartbeat_frame(),
        emu.cid("1234", "R", "130", "01", "003", clock="10:20:30-24/11"),
        emu.cid("5678", "E", "401", "02", "012"),
    ]
    for frame in frames:
        result = await emu.send(frame)
        assert (result.outcome, result.attempts) == ("ack", 1), frame
        if frame != emu.heartbeat_frame():
            # What the receiver was told is stored must already be readable by anyone.
            assert await pool.fetchval("SELECT count(*) FROM signals WHERE raw = $1", frame[:-1]) == 1, frame
    rows = await pool.fetch("SELECT protocol, account, code, code_kind, qualifier, zone, partition, receiver,"
                            " receiver_no, line_no, peer, transmitter_time FROM signals ORDER BY id")
    assert [(r["protocol"], r["account"], r["code"], r["qualifier"], r["zone"]) for r in rows] == [
        ("MLR2-CID", "1234", "130", "1", "003"),
        ("MLR2-SIA", "1234", "BA", "", "004"),
        ("MLR2-CID", "1234", "130", "3", "003"),
        ("MLR2-CID", "5678", "401", "1", "012"),
    ]
    assert {(r["receiver"], r["receiver_no"], r["line_no"], r["peer"]) for r in rows} == {("serial-1", "01", "1", ptys.a)}
    assert rows[2]["transmitter_time"] is not None and rows[2]["transmitter_time"].hour == 10
    assert await pool.fetchval("SELECT count(*) FROM signal_inbox") == 4  # queued for the alarm engine
    assert (rx.stats.accepted, rx.stats.acked, rx.stats.rejected) == (4, 5, 0)  # heartbeat: ACKed, not a signal
    assert rx.stats.last_signal_at is not None and rx.stats.connections == 1


async def test_corrupt_line_gets_nak_and_is_kept(pool: asyncpg.Pool, store: SignalStore, ptys: SocatPair,
                                                 receivers: list) -> None:
    rx = await start_rx(receivers, store, pool, name="serial-2", url=ptys.a)
    await until(lambda: rx.stats.state == "running", "the port to open")
    emu = await open_emulator(receivers, ptys.b, ack_timeout=3.0)
    bad = await emu.send(b"5011 18XXXXE13001003\x14")
    assert bad.outcome == "nak" and bad.replies == ["nak"] * 4  # NAKed, retransmitted 3 more times, NAKed
    good = await emu.send(emu.cid("1234", "E", "130", "01", "005"))
    assert good.outcome == "ack"
    await store.flush()
    rows = await pool.fetch("SELECT receiver, peer, reason, reply, raw FROM rejected_frames ORDER BY id")
    assert len(rows) == 4
    assert {(r["receiver"], r["peer"], r["reason"], bytes(r["reply"]), bytes(r["raw"])) for r in rows} == {
        ("serial-2", ptys.a, "bad-cid", b"\x15", b"5011 18XXXXE13001003")}
    assert await pool.fetchval("SELECT count(*) FROM signals") == 1
    assert rx.stats.rejected == 4


async def test_replies_keep_line_order(pool: asyncpg.Pool, store: SignalStore, ptys: SocatPair,
                                       receivers: list) -> None:
    # A NAK is known at once, an ACK only after the commit: the NAK must still wait its turn.
    rx = await start_rx(receivers, store, pool, name="serial-3", url=ptys.a)
    await until(lambda: rx.stats.state == "running", "the port to open")
    emu = await open_emulator(receivers, ptys.b)
    frames = [emu.cid("1111", "E", "130", "01", "001"), b"garbage\x14", emu.cid("1111", "E", "130", "01", "002"),
              b"\x15junk\x14", emu.heartbeat_frame(), emu.cid("1111", "R", "130", "01", "001")]
    assert await emu.send_burst(frames) == ["ack", "nak", "ack", "nak", "ack", "ack"]
    assert await pool.fetchval("SELECT count(*) FROM signals") == 3


async def test_no_ack_when_the_database_is_down(migrated: str, ptys: SocatPair, receivers: list) -> None:
    dead = await db.create_pool(migrated, min_size=1, max_size=1)
    await dead.close()  # every commit through this pool fails, as when the database is unreachable
    store = SignalStore(dead)
    await store.start()
    try:
        rx = await start_rx(receivers, store, None, name="serial-4", url=ptys.a)
        await until(lambda: rx.stats.state == "running", "the port to open")
        emu = await open_emulator(receivers, ptys.b, ack_timeout=0.3)
        result = await emu.send(emu.cid("1234", "E", "130", "01", "003"))
        assert (result.outcome, result.attempts) == ("timeout", 4)  # never ACKed: the receiver keeps it
        await until(lambda: rx.stats.not_acked == 4, "four failed commits")
        assert rx.stats.acked == 0
    finally:
        await store.stop()


async def test_ademco_685_lines(pool: asyncpg.Pool, store: SignalStore, ptys: SocatPair, receivers: list) -> None:
    # 1200 baud like an old 685 printer port (a Linux pty refuses 7E1, so 8N1 here).
    rx = await start_rx(receivers, store, pool, name="serial-685", url=ptys.a, format="685", baudrate=1200)
    await until(lambda: rx.stats.state == "running", "the port to open")
    emu = await open_emulator(receivers, ptys.b, fmt="685", receiver_no="1", line_no="2", ack_timeout=3.0)
    results = [await emu.send(f) for f in (emu.cid("4321", "E", "130", "01", "007"), emu.heartbeat_frame(),
                                           emu.cid("4321", "R", "401", "01", "003"))]
    assert [r.outcome for r in results] == ["ack"] * 3
    bad = await emu.send(b"\n12 4321 18 Q130 01 C007\r")
    assert bad.outcome == "nak"
    rows = await pool.fetch("SELECT protocol, account, code, qualifier, zone, receiver_no, line_no, raw"
                            " FROM signals ORDER BY id")
    assert [(r["protocol"], r["account"], r["code"], r["qualifier"], r["zone"], r["receiver_no"], r["line_no"])
            for r in rows] == [("685-CID", "4321", "130", "1", "007", "1", "2"),
                               ("685-CID", "4321", "401", "3", "003", "1", "2")]
    acked = {r.frame[:-1] for r in results if r.outcome == "ack" and b"OKAY" not in r.frame}
    assert acked == {bytes(r["raw"]) for r in rows}  # every ACKed line is in the database
    await store.flush()
    assert await pool.fetchval("SELECT count(*) FROM rejected_frames WHERE receiver = 'serial-685'") == 4


async def trouble(pool: asyncpg.Pool, account: str) -> asyncpg.Record | None:
    return await pool.fetchrow("SELECT id, restored, state, klass, priority, title FROM alarms"
                               " WHERE kind = 'receiver-trouble' AND account = $1", account)


async def test_pulled_device_raises_and_restores_receiver_trouble(pool: asyncpg.Pool, store: SignalStore,
                                                                  ptys: SocatPair, receivers: list,
                                                                  engine: AlarmEngine) -> None:
    rx = await start_rx(receivers, store, pool, name="serial-usb", url=ptys.a, reconnect_min=0.05,
                        reconnect_max=0.2, heartbeat_interval=0)
    await until(lambda: rx.stats.state == "running", "the port to open")
    emu = await open_emulator(receivers, ptys.b, ack_timeout=3.0)
    assert (await emu.send(emu.cid("1234", "E", "130", "01", "001"))).outcome == "ack"
    await emu.close()

    await ptys.stop()  # the USB adapter is pulled out
    await until(lambda: rx.stats.state == "down", "the receiver to notice")
    assert rx.stats.detail and rx.stats.connections == 0

    async def raised() -> bool:
        row = await trouble(pool, "serial-usb")
        return row is not None and not row["restored"]

    await until(raised, "a receiver-trouble alarm")
    row = await trouble(pool, "serial-usb")
    assert row is not None and (row["klass"], row["priority"], row["state"]) == ("trouble", 3, "new")
    assert "serial-usb" in row["title"]["en"]
    opened = await pool.fetchrow("SELECT kind, detail FROM alarm_events WHERE alarm_id = $1 ORDER BY id LIMIT 1",
                                 row["id"])
    assert opened is not None and opened["kind"] == "opened" and opened["detail"]["condition"] == "device"

    await ptys.start()  # plugged in again
    await until(lambda: rx.stats.state == "running", "the port to reopen")

    async def restored() -> bool:
        r = await trouble(pool, "serial-usb")
        return r is not None and r["restored"]

    await until(restored, "the alarm to be restored")
    kinds = [r["kind"] for r in await pool.fetch("SELECT kind FROM alarm_events WHERE alarm_id = $1 ORDER BY id",
                                                 row["id"])]
    assert kinds == ["opened", "restore"]
    # retries while down did not pile up alarms
    assert await pool.fetchval("SELECT count(*) FROM alarms WHERE kind = 'receiver-trouble'") == 1

    emu2 = await open_emulator(receivers, ptys.b, ack_timeout=3.0)  # and the reopened port works
    assert (await emu2.send(emu2.cid("1234", "R", "130", "01", "001"))).outcome == "ack"
    assert await pool.fetchval("SELECT count(*) FROM signals WHERE code_kind <> 'internal'") == 2
    # the trouble went through the store as two signals of the receiver's own (raise, restore)
    assert [tuple(r) for r in await pool.fetch(
        "SELECT account, code, qualifier FROM signals WHERE code_kind = 'internal' ORDER BY id")] == [
        ("serial-usb", "receiver-trouble", "1"), ("serial-usb", "receiver-trouble", "3")]


async def test_missed_heartbeat_raises_trouble_until_the_next_line(pool: asyncpg.Pool, store: SignalStore,
                                                                   ptys: SocatPair, receivers: list,
                                                                   engine: AlarmEngine) -> None:
    rx = await start_rx(receivers, store, pool, name="serial-hb", url=ptys.a, heartbeat_interval=0.3)
    await until(lambda: rx.stats.state == "running", "the port to open")
    await until(lambda: rx.stats.supervision_misses >= 1, "a missed heartbeat")
    assert "heartbeat" in rx.stats.detail

    async def alarm(restored: bool) -> bool:
        row = await trouble(pool, "serial-hb")
        return row is not None and row["restored"] is restored

    await until(lambda: alarm(False), "a receiver-trouble alarm")
    emu = await open_emulator(receivers, ptys.b, ack_timeout=3.0)
    assert (await emu.send(emu.heartbeat_frame())).outcome == "ack"
    await until(lambda: alarm(True), "the restore")
    detail = await pool.fetchval("SELECT e.detail FROM alarm_events e JOIN alarms a ON a.id = e.alarm_id"
                                 " WHERE a.account = 'serial-hb' AND e.kind = 'opened'")
    assert detail["condition"] == "heartbeat"
    assert rx.stats.last_signal_at is not None and rx.stats.accepted == 0  # liveness, not a signal
