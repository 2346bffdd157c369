"""The Modbus poller: reads every configured device each `poll_interval` over Modbus TCP or RTU
(pymodbus 3.16 async clients), turns state changes into Contact ID signals (`regmap.changes`), and
hands them to the signal store.

Unlike a panel, a Modbus device does not retry: the poller is the only holder of a change until it is
committed. A batch the store could not commit stays pending and is submitted again (same natural key,
so a batch that was in fact written is not stored twice) before anything newer, keeping the order.

A device that does not answer `offline_after` polls in a row gives CID 350 q1 (communication trouble)
for its account, and 350 q3 when it answers again; what changed meanwhile is then reported as usual.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pymodbus import FramerType
from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException

from console.signal import Signal
from console.store import SignalStore
from receivers.modbus import regmap
from receivers.modbus.regmap import DeviceMap, State
from receivers.stats import ReceiverStats
from receivers.tasks import stop_task

log = logging.getLogger("kuzet.modbus")

TRANSPORTS = ("tcp", "rtu")


@dataclass(slots=True)
class ModbusConfig:
    """One `[[receivers.modbus]]` table (docs/receivers.md)."""

    name: str
    transport: str = "tcp"  # tcp | rtu
    host: str = "127.0.0.1"  # tcp
    port: int = 502  # tcp
    url: str = ""  # rtu: the serial port (/dev/ttyUSB0, a pty)
    baudrate: int = 9600  # rtu
    bytesize: int = 8
    parity: str = "N"
    stopbits: int = 1
    poll_interval: float = 1.0  # seconds between polls of each device
    timeout: float = 1.0  # seconds to wait for one answer
    offline_after: int = 3  # unanswered polls in a row before 350 q1 is reported
    devices: list[DeviceMap] = field(default_factory=list)

    @property
    def peer(self) -> str:
        return f"{self.host}:{self.port}" if self.transport == "tcp" else self.url

    @classmethod
    def from_table(cls, table: dict[str, Any], *, index: int = 0) -> ModbusConfig:
        known = set(cls.__dataclass_fields__)
        unknown = set(table) - known
        if unknown:
            raise ValueError(f"[[receivers.modbus]]: unknown keys {sorted(unknown)}")
        cfg = cls(name=str(table.get("name", f"modbus-{index + 1}")))
        cfg.transport = str(table.get("transport", cfg.transport)).lower()
        cfg.host = str(table.get("host", cfg.host))
        cfg.port = int(table.get("port", cfg.port))
        cfg.url = str(table.get("url", cfg.url))
        cfg.baudrate = int(table.get("baudrate", cfg.baudrate))
        cfg.bytesize = int(table.get("bytesize", cfg.bytesize))
        cfg.parity = str(table.get("parity", cfg.parity)).upper()[:1]
        cfg.stopbits = int(table.get("stopbits", cfg.stopbits))
        cfg.poll_interval = float(table.get("poll_interval", cfg.poll_interval))
        cfg.timeout = float(table.get("timeout", cfg.timeout))
        cfg.offline_after = int(table.get("offline_after", cfg.offline_after))
        cfg.devices = [regmap.device_from_table(d, receiver=cfg.name, peer=cfg.peer)
                       for d in table.get("devices", [])]
        cfg.validate()
        return cfg

    def validate(self) -> None:
        if self.transport not in TRANSPORTS:
            raise ValueError(f"{self.name}: transport must be one of {TRANSPORTS}")
        if self.transport == "rtu" and not self.url:
            raise ValueError(f"{self.name}: rtu needs `url` (the serial port)")
        if self.parity not in ("N", "E", "O"):
            raise ValueError(f"{self.name}: parity must be N, E or O")
        if self.poll_interval <= 0 or self.timeout <= 0 or self.offline_after < 1:
            raise ValueError(f"{self.name}: poll_interval and timeout must be > 0, offline_after >= 1")
        if not self.devices:
            raise ValueError(f"{self.name}: no [[receivers.modbus.devices]]")
        ids = [d.device_id for d in self.devices]
        if len(set(ids)) != len(ids):
            raise ValueError(f"{self.name}: a device_id appears twice")


@dataclass(slots=True)
class _Device:
    map: DeviceMap
    state: State | None = None  # the last state read (the base of the next diff)
    failures: int = 0  # polls in a row without an answer
    offline: bool = False  # 350 q1 has been reported
    error: str = ""


class ModbusPoller:
    """One Modbus line (a TCP gateway or an RS-485 bus) with its devices: `start()`, `stop()`, `.stats`."""

    def __init__(self, store: SignalStore, config: ModbusConfig) -> None:
        config.validate()
        self.store = store
        self.config = config
        self.name = config.name
        self.stats = ReceiverStats(config.name, "modbus")
        self.stats.state = "starting"
        self.devices = [_Device(d) for d in config.devices]
        self.polls = 0  # completed poll cycles (tests wait on it)
        self._client: AsyncModbusTcpClient | AsyncModbusSerialClient | None = None
        self._task: asyncio.Task[None] | None = None
        self._pending: list[Signal] = []  # produced, not yet committed, in order
        self._in_flight = False
        self._stopping = False
        # Natural keys must tell a second trip of the same zone from a retry: a per-change sequence
        # that starts from the clock, so it does not repeat across restarts either.
        self._seq = int(time.time() * 1000)

    def health(self) -> dict[str, Any]:
        return self.stats.as_dict()

    def where(self) -> str:
        return self.config.peer

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        pm = logging.getLogger("pymodbus.logging")
        if pm.level == logging.NOTSET:  # one line per failed request at 1 Hz would bury our own log
            pm.setLevel(logging.CRITICAL)
        self._client = self._new_client()
        self._task = asyncio.create_task(self._run(), name=f"{self.name}-poll")

    async def stop(self) -> None:
        self._stopping = True
        await stop_task(self._task)
        self._task = None
        if self._client is not None:
            self._client.close()
            self._client = None
        self.stats.state = "stopped"
        self.stats.connections = 0

    def _new_client(self) -> AsyncModbusTcpClient | AsyncModbusSerialClient:
        c = self.config
        # reconnect_delay=0: no background reconnecting of its own; each poll cycle connects if needed.
        if c.transport == "tcp":
            return AsyncModbusTcpClient(c.host, port=c.port, timeout=c.timeout, retries=0, reconnect_delay=0,
                                        name=c.name)
        return AsyncModbusSerialClient(c.url, framer=FramerType.RTU, baudrate=c.baudrate, bytesize=c.bytesize,
                                       parity=c.parity, stopbits=c.stopbits, timeout=c.timeout, retries=0,
                                       reconnect_delay=0, name=c.name)

    async def _run(self) -> None:
        interval = self.config.poll_interval
        next_at = time.monotonic()
        while not self._stopping:
            try:
                await self.poll_once()
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug in one cycle must not end the polling
                log.exception("%s: poll cycle failed", self.name)
            next_at += interval
            now = time.monotonic()
            if next_at < now:
                next_at = now  # a slow cycle (silent devices) is not followed by a burst of catch-up polls
            await asyncio.sleep(next_at - now)

    # -- one cycle -------------------------------------------------------------------------------

    async def poll_once(self) -> None:
        client = self._client
        assert client is not None
        connected = client.connected
        if not connected:
            try:
                connected = await client.connect()
            except Exception as exc:  # pymodbus raises for some serial errors instead of returning False
                log.debug("%s: connect: %s", self.name, exc)
                connected = False
        self.stats.connections = 1 if connected else 0
        produced: list[Signal] = []
        for dev in self.devices:
            at = datetime.now(UTC)
            if connected:
                try:
                    values = await self._read(client, dev.map)
                except (TimeoutError, ModbusException, OSError, _DeviceError) as exc:
                    dev.error = str(exc) or type(exc).__name__
                else:
                    produced.extend(self._answered(dev, dev.map.decode(values, at)))
                    continue
            else:
                dev.error = f"cannot connect to {self.config.peer}"
            produced.extend(self._silent(dev, at))
        self.polls += 1
        self._update_state(connected)
        for s in produced:
            self._seq += 1
            s.sequence = str(self._seq)
        if produced:
            for _ in produced:
                self.stats.note_accepted()
            self._pending.extend(produced)
        self._flush()

    async def _read(self, client: AsyncModbusTcpClient | AsyncModbusSerialClient,
                    dev: DeviceMap) -> dict[tuple[str, int], int | bool]:
        values: dict[tuple[str, int], int | bool] = {}
        unit = dev.device_id
        for table, start, count in dev.reads():
            if table == "coil":
                rr = await client.read_coils(start, count=count, device_id=unit)
            elif table == "discrete_input":
                rr = await client.read_discrete_inputs(start, count=count, device_id=unit)
            elif table == "holding_register":
                rr = await client.read_holding_registers(start, count=count, device_id=unit)
            else:
                rr = await client.read_input_registers(start, count=count, device_id=unit)
            if rr.isError():
                raise _DeviceError(f"exception {getattr(rr, 'exception_code', '?')} reading {table} {start}+{count}")
            data: list[Any] = list(rr.bits) if table in regmap.BIT_TABLES else list(rr.registers)
            if len(data) < count:
                raise _DeviceError(f"short answer reading {table} {start}+{count}")
            for i in range(count):
                values[(table, start + i)] = data[i]
        return values

    def _answered(self, dev: _Device, state: State) -> list[Signal]:
        out: list[Signal] = []
        if dev.offline:
            log.warning("%s: device %d (%s) answers again", self.name, dev.map.device_id, dev.map.account)
            assert state.at is not None
            out.append(regmap.communication(dev.map, ok=True, at=state.at))
        dev.failures = 0
        dev.offline = False
        dev.error = ""
        out.extend(regmap.changes(dev.state, state))
        dev.state = state
        self.stats.last_signal_at = state.at  # the line's liveness, like a serial heartbeat
        return out

    def _silent(self, dev: _Device, at: datetime) -> list[Signal]:
        dev.failures += 1
        self.stats.supervision_misses += 1
        if dev.offline or dev.failures < self.config.offline_after:
            return []
        dev.offline = True
        log.warning("%s: device %d (%s) does not answer: %s", self.name, dev.map.device_id, dev.map.account,
                    dev.error)
        return [regmap.communication(dev.map, ok=False, at=at, detail=dev.error)]

    def _update_state(self, connected: bool) -> None:
        silent = [d for d in self.devices if d.failures]
        if not connected:
            self.stats.state = "down"
            self.stats.detail = f"cannot connect to {self.config.peer}"
        elif silent and len(silent) == len(self.devices):
            self.stats.state = "down"
            self.stats.detail = "no device answers: " + "; ".join(
                f"{d.map.device_id}: {d.error}" for d in silent)
        else:
            self.stats.state = "running"
            self.stats.detail = "; ".join(f"device {d.map.device_id} silent: {d.error}" for d in silent)

    # -- to the store ----------------------------------------------------------------------------

    def _flush(self) -> None:
        """Submit what is pending, one batch at a time so the order survives a failed commit."""
        if self._in_flight or not self._pending:
            return
        batch = list(self._pending)
        self._in_flight = True

        def done(ok: bool) -> None:
            self._in_flight = False
            if ok:
                self.stats.acked += len(batch)
                del self._pending[:len(batch)]
                self._flush()  # what was produced meanwhile
            else:
                self.stats.not_acked += len(batch)  # kept: submitted again with the next poll

        self.store.submit(batch, done)


class _DeviceError(Exception):
    """The device answered, but not with the data asked for (exception response, short answer)."""


def from_settings(store: SignalStore, tables: list[dict[str, Any]]) -> list[ModbusPoller]:
    """One poller per `[[receivers.modbus]]` table."""
    return [ModbusPoller(store, ModbusConfig.from_table(t, index=i)) for i, t in enumerate(tables)]
