"""The Modbus poller end to end, against a real pymodbus server (the simulated panel) over Modbus TCP
on 127.0.0.1 and over Modbus RTU on a socat pty pair, storing into the real database."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from console import alarm, db
from console.store import SignalStore
from receivers.modbus.poller import ModbusConfig, ModbusPoller
from receivers.sim.modbus_panel import ModbusPanelSim, default_points
from receivers.sim.ptypair import SocatPair
from tests.util import until

FAST = {"poll_interval": 0.05, "timeout": 0.3, "offline_after": 2}


@pytest.fixture
async def running() -> AsyncIterator[list[Any]]:
    """Panels, pollers and pty pairs a test started; all stopped at the end, whatever happened."""
    things: list[Any] = []
    try:
        yield things
    finally:
        for t in reversed(things):
            await t.stop()


def signals_like(pool: asyncpg.Pool, account: str, code: str, qualifier: str, zone: str) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        n = await pool.fetchval("SELECT count(*) FROM signals WHERE account = $1 AND code = $2 AND qualifier = $3"
                                " AND zone = $4", account, code, qualifier, zone)
        return bool(n)

    return check


async def history(pool: asyncpg.Pool, account: str) -> list[tuple[str, str, str]]:
    rows = await pool.fetch("SELECT code, qualifier, zone FROM signals WHERE account = $1 ORDER BY id", account)
    return [(r["code"], r["qualifier"], r["zone"]) for r in rows]


async def test_modbus_tcp_zone_alarm_restore_and_communication_trouble(pool: asyncpg.Pool, store: SignalStore,
                                                                       running: list[Any]) -> None:
    panel = ModbusPanelSim(tcp=("127.0.0.1", 0), zones=8)
    running.append(panel)
    await panel.start()
    poller = ModbusPoller(store, ModbusConfig.from_table({
        "name": "modbus-tcp", "transport": "tcp", "host": "127.0.0.1", "port": panel.port, **FAST,
        "devices": [{"device_id": 1, "account": "7001", "points": default_points(8)}]}))
    running.append(poller)
    await poller.start()
    await until(lambda: poller.polls >= 2 and poller.stats.state == "running", "the first polls")
    assert await history(pool, "7001") == []  # a quiet panel at start-up reports nothing

    await panel.trip(3)
    await until(signals_like(pool, "7001", "130", "1", "003"), "the zone 3 alarm")
    await panel.clear(3)
    await until(signals_like(pool, "7001", "130", "3", "003"), "the zone 3 restore")
    row = await pool.fetchrow("SELECT protocol, code_kind, receiver, peer, raw, sequence FROM signals ORDER BY id LIMIT 1")
    assert row is not None
    assert (row["protocol"], row["code_kind"], row["receiver"]) == ("MODBUS", "cid", "modbus-tcp")
    assert row["peer"] == f"127.0.0.1:{panel.port}#1" and bytes(row["raw"]) == b"1/discrete_input:2=1"

    # The same zone again within the dedup window is a new event, not a retry.
    await panel.trip(3)
    await until(lambda: history_count(pool, "7001", 3), "the second alarm of zone 3")

    await panel.set_tamper(5)
    await panel.set_armed(True)
    await panel.set_mains(False)
    await until(signals_like(pool, "7001", "301", "1", "000"), "mains lost")
    await until(signals_like(pool, "7001", "401", "3", "000"), "the closing")
    await until(signals_like(pool, "7001", "137", "1", "005"), "the tamper")

    await panel.stop()  # the panel stops answering
    await until(signals_like(pool, "7001", "350", "1", "000"), "communication trouble")
    assert poller.stats.state == "down" and poller.stats.supervision_misses >= 2
    await panel.clear(3)  # changed while nobody could read it
    await panel.start()  # back, on the same port
    await until(signals_like(pool, "7001", "350", "3", "000"), "communication restored")
    await until(lambda: history_count(pool, "7001", 4, code="130"), "the restore that happened meanwhile")
    h = await history(pool, "7001")
    assert h.index(("350", "3", "000")) < len(h) - 1 and h[-1] == ("130", "3", "003")
    await until(lambda: poller.stats.state == "running", "the poller to be running again")
    assert poller.stats.acked == poller.stats.accepted == len(h)


async def history_count(pool: asyncpg.Pool, account: str, n: int, code: str = "130") -> bool:
    return bool(await pool.fetchval("SELECT count(*) >= $3 FROM signals WHERE account = $1 AND code = $2",
                                    account, code, n))


async def test_modbus_rtu_on_a_pty_two_devices(pool: asyncpg.Pool, store: SignalStore, running: list[Any],
                                               tmp_path: Path) -> None:
    if not SocatPair.available():
        pytest.skip("socat is not installed (apt-get install socat)")
    bus = SocatPair(tmp_path / "panel", tmp_path / "bus")
    running.append(bus)
    await bus.start()
    panel = ModbusPanelSim(serial_port=bus.a, device_ids=(1, 2), zones=8, baudrate=19200)
    running.append(panel)
    await panel.start()
    poller = ModbusPoller(store, ModbusConfig.from_table({
        "name": "modbus-rtu", "transport": "rtu", "url": bus.b, "baudrate": 19200, **FAST,
        "devices": [{"device_id": 1, "account": "8001", "points": default_points(8)},
                    {"device_id": 2, "account": "8002", "points": default_points(8)}]}))
    running.append(poller)
    await poller.start()
    await until(lambda: poller.polls >= 2 and poller.stats.state == "running", "the first polls")

    await panel.trip(2, device_id=2)
    await until(signals_like(pool, "8002", "130", "1", "002"), "zone 2 of device 2")
    await panel.clear(2, device_id=2)
    await until(signals_like(pool, "8002", "130", "3", "002"), "its restore")
    await panel.trip(7, device_id=1)
    await until(signals_like(pool, "8001", "130", "1", "007"), "zone 7 of device 1")
    assert await pool.fetchval("SELECT peer FROM signals WHERE account = '8002' LIMIT 1") == f"{bus.b}#2"

    await panel.stop()  # the bus goes silent (the pty stays: requests time out)
    await until(signals_like(pool, "8001", "350", "1", "000"), "trouble for device 1")
    await until(signals_like(pool, "8002", "350", "1", "000"), "trouble for device 2")
    await panel.start()
    await until(signals_like(pool, "8001", "350", "3", "000"), "device 1 back")
    await until(signals_like(pool, "8002", "350", "3", "000"), "device 2 back")
    assert await history(pool, "8002") == [("130", "1", "002"), ("130", "3", "002"), ("350", "1", "000"),
                                           ("350", "3", "000")]


async def test_changes_wait_for_the_database(pool: asyncpg.Pool, migrated: str, running: list[Any]) -> None:
    """A Modbus device does not retry: a change the store could not commit is kept and submitted
    again until it is stored (once)."""
    dead = await db.create_pool(migrated, min_size=1, max_size=1)
    await dead.close()
    dead_store = SignalStore(dead)
    live_store = SignalStore(pool)
    await dead_store.start()
    await live_store.start()
    try:
        panel = ModbusPanelSim(tcp=("127.0.0.1", 0), zones=4)
        running.append(panel)
        await panel.start()
        poller = ModbusPoller(dead_store, ModbusConfig.from_table({
            "name": "modbus-db", "port": panel.port, **FAST,
            "devices": [{"device_id": 1, "account": "9001", "points": default_points(4)}]}))
        running.append(poller)
        await poller.start()
        await until(lambda: poller.polls >= 2, "the first polls")
        await panel.trip(1)
        await until(lambda: poller.stats.not_acked >= 2, "failed commits")
        poller.store = live_store  # the database is back
        await until(signals_like(pool, "9001", "130", "1", "001"), "the kept alarm")
        polls = poller.polls
        await until(lambda: poller.polls >= polls + 3, "more polls")  # ... and the alarm is not submitted again
        assert await history(pool, "9001") == [("130", "1", "001")]
    finally:
        await dead_store.stop()
        await live_store.stop()


async def test_the_system_starts_serial_and_modbus_receivers_from_settings(
        pool: asyncpg.Pool, migrated: str, running: list[Any], tmp_path: Path) -> None:
    """The composition root: one receiver per `[[receivers.serial]]` / `[[receivers.modbus]]` table."""
    from console.config import Settings
    from kuzet.runtime import System

    panel = ModbusPanelSim(tcp=("127.0.0.1", 0), zones=4)
    running.append(panel)
    await panel.start()
    settings = Settings(home=tmp_path, database_url=migrated, dc09=[])
    settings.serial = [{"name": "surgard", "url": str(tmp_path / "no-such-port"), "reconnect_min": 0.1}]
    settings.modbus = [{"name": "gw", "port": panel.port, **FAST,
                        "devices": [{"account": "6001", "points": default_points(4)}]}]
    system = System(settings, with_web=False, with_engine=False)
    try:
        await system.start()
        by_name = {r.stats.name: r for r in system.receivers}
        assert {"surgard", "gw"} <= set(by_name)
        await until(lambda: by_name["surgard"].stats.state == "down", "the missing port to be reported")
        await until(lambda: by_name["gw"].stats.state == "running", "the poller")
        await panel.trip(4)
        await until(signals_like(pool, "6001", "130", "1", "004"), "the alarm through the system's store")
        health = {h["name"]: h for h in system.health()}
        assert health["surgard"]["kind"] == "serial" and "no-such-port" in health["surgard"]["detail"]
        assert health["gw"]["kind"] == "modbus" and health["gw"]["accepted"] == 1
    finally:
        await system.stop()
    # The missing port was reported as receiver trouble (a signal); the engine makes it the alarm.
    async with pool.acquire() as conn:
        await alarm.process_batch(conn)
    row = await pool.fetchrow("SELECT restored FROM alarms WHERE kind = 'receiver-trouble' AND account = 'surgard'")
    assert row is not None and not row["restored"]
