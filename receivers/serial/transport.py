"""The asyncio transport around the serial codecs: one hardware receiver's automation output on one
port (an RS-232 port, a USB adapter, or a `socket://host:port` URL for receivers with a TCP output).

All protocol decisions are the codec's; this layer only moves bytes, hands accepted lines to the
signal store, and writes the ACK after the commit. Replies go out in line order (a NAK for a bad line
waits for the ACKs of the lines before it), because the receiver pairs each reply with the message it
is waiting on. The port may vanish at any time (a USB adapter unplugged, a receiver switched off):
the transport reports it as receiver trouble (a signal, `receivers.trouble`) and reopens the port
with back-off until it is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import serial
import serial_asyncio_fast

from console.store import RejectedRecord, SignalStore
from receivers.serial.ademco685 import Ademco685Codec
from receivers.serial.events import Accepted, Event, Rejected
from receivers.serial.mlr2 import Mlr2Codec
from receivers.stats import ReceiverStats
from receivers.tasks import stop_task
from receivers.trouble import TroubleReport

log = logging.getLogger("kuzet.serial")

FORMATS = ("mlr2", "685")
PARITIES = {"N": serial.PARITY_NONE, "E": serial.PARITY_EVEN, "O": serial.PARITY_ODD,
            "M": serial.PARITY_MARK, "S": serial.PARITY_SPACE}

@dataclass(slots=True)
class SerialConfig:
    """One `[[receivers.serial]]` table (docs/receivers.md)."""

    name: str
    url: str
    format: str = "mlr2"
    baudrate: int = 9600
    bytesize: int = 8
    parity: str = "N"
    stopbits: float = 1
    heartbeat_interval: float = 60.0  # seconds; 0 turns heartbeat supervision off
    reconnect_min: float = 0.5  # back-off between attempts to reopen a lost port
    reconnect_max: float = 30.0
    timezone: str = "Asia/Almaty"  # the receiver's clock (clock variants of the MLR2 formats)
    exclusive: bool = True  # lock the port: two processes reading one port would each lose half

    @classmethod
    def from_table(cls, table: dict[str, Any], *, index: int = 0, timezone: str = "Asia/Almaty") -> SerialConfig:
        known = set(cls.__dataclass_fields__)
        unknown = set(table) - known
        if unknown:
            raise ValueError(f"[[receivers.serial]]: unknown keys {sorted(unknown)}")
        if "url" not in table:
            raise ValueError("[[receivers.serial]]: `url` (the port, e.g. /dev/ttyUSB0) is required")
        cfg = cls(name=str(table.get("name", f"serial-{index + 1}")), url=str(table["url"]),
                  timezone=str(table.get("timezone", timezone)))
        cfg.format = str(table.get("format", cfg.format)).lower()
        cfg.baudrate = int(table.get("baudrate", cfg.baudrate))
        cfg.bytesize = int(table.get("bytesize", cfg.bytesize))
        cfg.parity = str(table.get("parity", cfg.parity)).upper()[:1]
        cfg.stopbits = float(table.get("stopbits", cfg.stopbits))
        cfg.heartbeat_interval = float(table.get("heartbeat_interval", cfg.heartbeat_interval))
        cfg.reconnect_min = float(table.get("reconnect_min", cfg.reconnect_min))
        cfg.reconnect_max = float(table.get("reconnect_max", cfg.reconnect_max))
        cfg.exclusive = bool(table.get("exclusive", cfg.exclusive))
        cfg.validate()
        return cfg

    def validate(self) -> None:
        if self.format not in FORMATS:
            raise ValueError(f"{self.name}: format must be one of {FORMATS}, not {self.format!r}")
        if self.parity not in PARITIES:
            raise ValueError(f"{self.name}: parity must be one of {sorted(PARITIES)}")
        if self.bytesize not in (5, 6, 7, 8):
            raise ValueError(f"{self.name}: bytesize must be 5..8")
        if self.stopbits not in (1, 1.5, 2):
            raise ValueError(f"{self.name}: stopbits must be 1, 1.5 or 2")
        if self.heartbeat_interval < 0 or self.reconnect_min <= 0 or self.reconnect_max < self.reconnect_min:
            raise ValueError(f"{self.name}: bad heartbeat_interval / reconnect_min / reconnect_max")
        ZoneInfo(self.timezone)  # raises for an unknown zone


class _Replies:
    """Replies in line order: a slot per line, written as soon as every earlier slot is filled."""

    def __init__(self, write: Callable[[bytes], None]) -> None:
        self._write = write
        self._slots: deque[list[bytes | None]] = deque()

    def reserve(self) -> list[bytes | None]:
        slot: list[bytes | None] = [None]
        self._slots.append(slot)
        return slot

    def fill(self, slot: list[bytes | None], data: bytes) -> None:
        slot[0] = data
        while self._slots and self._slots[0][0] is not None:
            out = self._slots.popleft()[0]
            if out:  # b"": the commit failed, this line gets no ACK (the receiver retries)
                self._write(out)


class _SerialProtocol(asyncio.Protocol):
    def __init__(self, rx: SerialReceiver) -> None:
        self.rx = rx
        self.codec = rx.new_codec()
        self.transport: asyncio.BaseTransport | None = None
        self.lost: asyncio.Future[Exception | None] = asyncio.get_running_loop().create_future()
        self.replies = _Replies(self._send)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        for ev in self.codec.feed(data):
            try:
                self.rx.handle(ev, self)
            except Exception:  # one bad event must never take the port down
                log.exception("%s: handling %r", self.rx.name, ev)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.lost.done():
            self.lost.set_result(exc)

    def _send(self, data: bytes) -> None:
        t = self.transport
        if isinstance(t, asyncio.WriteTransport) and not t.is_closing():
            t.write(data)


class SerialReceiver:
    """One serial receiver: `start()`, `stop()`, `.stats`."""

    def __init__(self, store: SignalStore, config: SerialConfig) -> None:
        config.validate()
        self.store = store
        self.config = config
        self.name = config.name
        self.url = config.url
        self.stats = ReceiverStats(config.name, "serial")
        self.stats.state = "starting"
        self.trouble = TroubleReport(store, config.name, config.url)
        self._tz = ZoneInfo(config.timezone)
        self._proto: _SerialProtocol | None = None
        self._task: asyncio.Task[None] | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._last_line = time.monotonic()
        self._misses = 0
        self._stopping = False

    def new_codec(self) -> Mlr2Codec | Ademco685Codec:
        if self.config.format == "685":
            return Ademco685Codec(self.name, self.url)
        return Mlr2Codec(self.name, self.url, tz=self._tz)

    def health(self) -> dict[str, Any]:
        return self.stats.as_dict()

    def where(self) -> str:
        return self.url

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        """Returns at once: a port that is not there yet is reported and retried, not fatal."""
        self._task = asyncio.create_task(self._run(), name=f"{self.name}-port")
        if self.config.heartbeat_interval > 0:
            self._supervisor = asyncio.create_task(self._supervise(), name=f"{self.name}-heartbeat")

    async def stop(self) -> None:
        self._stopping = True
        for task in (self._supervisor, self._task):
            await stop_task(task)
        proto = self._proto
        if proto is not None and proto.transport is not None:
            proto.transport.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(proto.lost), 2.0)
        await self.trouble.stop()
        self.stats.state = "stopped"
        self.stats.connections = 0

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        cfg = self.config
        delay = cfg.reconnect_min
        while not self._stopping:
            try:
                proto = await self._open(loop)
            except Exception as open_error:  # SerialException, OSError, termios.error (a setting the port refuses)
                self._down(f"cannot open {cfg.url}: {open_error}")
                await asyncio.sleep(delay)
                delay = min(delay * 2, cfg.reconnect_max)  # back-off: an absent adapter is not polled hot
                continue
            self._proto = proto
            delay = cfg.reconnect_min
            self._up()
            try:
                why = await asyncio.shield(proto.lost)
            finally:
                if not proto.lost.done() and proto.transport is not None:
                    proto.transport.close()  # cancelled (stop): close the port
            self._proto = None
            self._down(f"lost {cfg.url}: {why or 'closed'}")
            await asyncio.sleep(delay)

    async def _open(self, loop: asyncio.AbstractEventLoop) -> _SerialProtocol:
        cfg = self.config
        settings: dict[str, Any] = {"baudrate": cfg.baudrate, "bytesize": cfg.bytesize,
                                    "parity": PARITIES[cfg.parity], "stopbits": cfg.stopbits,
                                    "exclusive": cfg.exclusive}
        if cfg.url.startswith("socket://"):  # serial_asyncio_fast makes that a native TCP connection
            _t, proto = await serial_asyncio_fast.create_serial_connection(
                loop, lambda: _SerialProtocol(self), cfg.url, **settings)
            assert isinstance(proto, _SerialProtocol)
            return proto
        # Opened here rather than by create_serial_connection, which leaks the open (and locked) port
        # when the transport then fails to set it up (a setting the device refuses).
        opening = loop.run_in_executor(None, lambda: serial.serial_for_url(cfg.url, **settings))
        try:
            port = await asyncio.shield(opening)
        except asyncio.CancelledError:  # stopped while the thread opens it: close it when it is open
            opening.add_done_callback(lambda f: f.exception() is None and f.result().close())
            raise
        try:
            _t, p = await serial_asyncio_fast.connection_for_serial(loop, lambda: _SerialProtocol(self), port)
        except BaseException:
            port.close()
            raise
        assert isinstance(p, _SerialProtocol)
        return p

    def _up(self) -> None:
        log.info("%s: %s open", self.name, self.url)
        self.stats.state = "running"
        self.stats.detail = ""
        self.stats.connections = 1
        self._last_line = time.monotonic()  # the heartbeat interval starts again from the reopening
        self.trouble.clear("device")

    def _down(self, detail: str) -> None:
        if self._stopping:
            return
        if self.stats.state != "down":
            log.warning("%s: %s", self.name, detail)
        self.stats.state = "down"
        self.stats.detail = detail
        self.stats.connections = 0
        self.trouble.set("device", detail)

    # -- lines -----------------------------------------------------------------------------------

    def handle(self, ev: Event, proto: _SerialProtocol) -> None:
        if isinstance(ev, Rejected):
            self.stats.rejected += 1
            self.store.reject(RejectedRecord(datetime.now(UTC), self.name, self.url, ev.reason, ev.detail,
                                             ev.account, ev.reply, ev.raw))
            if ev.reply:
                proto.replies.fill(proto.replies.reserve(), ev.reply)
            return
        assert isinstance(ev, Accepted)
        self._line_seen()
        if ev.heartbeat:
            self.stats.last_signal_at = datetime.now(UTC)  # the receiver's own liveness, not a signal
        else:
            self.stats.note_accepted()
        stats = self.stats
        replies = proto.replies
        slot = replies.reserve()
        reply = ev.reply

        def done(ok: bool) -> None:
            if ok:
                stats.acked += 1
                replies.fill(slot, reply)
            else:
                stats.not_acked += 1  # no ACK: the receiver retries, then buffers until we answer again
                replies.fill(slot, b"")

        self.store.submit(ev.items, done)

    def _line_seen(self) -> None:
        self._last_line = time.monotonic()
        if self._misses:
            self._misses = 0
            if self.stats.state == "running":
                self.stats.detail = ""
        self.trouble.clear("heartbeat")

    async def _supervise(self) -> None:
        """Count heartbeat intervals without any line; the first missed one raises receiver trouble."""
        interval = self.config.heartbeat_interval
        while True:
            await asyncio.sleep(min(1.0, interval / 5))
            if self.stats.state != "running":
                continue  # the port is down: that is already the reported trouble
            silent = time.monotonic() - self._last_line
            misses = int(silent // interval)
            if misses > self._misses:
                self.stats.supervision_misses += misses - self._misses
                self._misses = misses
                detail = f"no heartbeat for {silent:.0f} s (interval {interval:g} s)"
                self.stats.detail = detail
                self.trouble.set("heartbeat", detail)


def from_settings(store: SignalStore, tables: list[dict[str, Any]],
                  *, timezone: str = "Asia/Almaty") -> list[SerialReceiver]:
    """One receiver per `[[receivers.serial]]` table."""
    return [SerialReceiver(store, SerialConfig.from_table(t, index=i, timezone=timezone))
            for i, t in enumerate(tables)]
