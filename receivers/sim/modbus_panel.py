"""A Modbus alarm panel, simulated: a real pymodbus server (Modbus TCP, or RTU on a serial port or a
pseudo-terminal) whose zones are tripped and cleared from a test or from the command line.

Register layout of every simulated device (what `default_points()` maps for the poller):

| table             | address         | meaning                                                     |
| ----------------- | --------------- | ----------------------------------------------------------- |
| discrete inputs   | 0 .. zones-1    | zone n (at address n-1) in alarm                            |
| holding registers | 0 ..            | tamper bits: register r, bit b = zone 16*r + b + 1         |
| input registers   | 0               | status: bit 0 = mains present                               |
| input registers   | 1 ..            | fault bits, laid out like the tamper bits                   |
| coils             | 0               | armed                                                       |

    kuzet sim modbus --tcp 127.0.0.1:5020 --zones 16       # then type: trip 3 / clear 3 / arm / mains off
    kuzet sim modbus --link /tmp/kuzet-rtu --zones 8       # RTU over a socat pty pair; poll /tmp/kuzet-rtu
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shlex
import sys
import tempfile
from typing import Any

from pymodbus import FramerType
from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from receivers.sim.ptypair import SocatPair

FC_COIL, FC_DISCRETE, FC_HOLDING, FC_INPUT = 1, 2, 3, 4


def _regs(zones: int) -> int:
    return max(1, (zones + 15) // 16)


def default_points(zones: int = 16) -> list[dict[str, Any]]:
    """The register map (`points = [...]` of a `[[receivers.modbus.devices]]` table) of this panel."""
    return [
        {"table": "discrete_input", "address": 0, "count": zones, "kind": "alarm", "zone": 1},
        {"table": "holding_register", "address": 0, "bit": 0, "count": zones, "kind": "tamper", "zone": 1},
        {"table": "input_register", "address": 1, "bit": 0, "count": zones, "kind": "fault", "zone": 1},
        {"table": "input_register", "address": 0, "bit": 0, "kind": "mains"},
        {"table": "coil", "address": 0, "kind": "armed"},
    ]


class _Device:
    """The panel's own copy of its state; every change is written through to the server."""

    def __init__(self, device_id: int, zones: int) -> None:
        self.device_id = device_id
        self.zones = zones
        self.alarm = [False] * (_regs(zones) * 16)
        self.tamper = [0] * _regs(zones)
        self.status = 1  # mains present
        self.fault = [0] * _regs(zones)
        self.armed = False

    def simdevice(self) -> SimDevice:
        # Separate blocks per table (the 4-tuple form): coil and discrete-input addresses are bits.
        # Values are written by `_write_all` right after the server starts.
        n = _regs(self.zones)
        return SimDevice(id=self.device_id, simdata=(
            [SimData(0, count=16, values=False, datatype=DataType.BITS)],
            [SimData(0, count=n * 16, values=False, datatype=DataType.BITS)],
            [SimData(0, count=n, values=0, datatype=DataType.REGISTERS)],
            [SimData(0, count=n + 1, values=0, datatype=DataType.REGISTERS)],
        ))


class ModbusPanelSim:
    """A simulated panel (one or several devices on one line). `start()`, the actions, `stop()`."""

    def __init__(self, *, tcp: tuple[str, int] | None = None, serial_port: str | None = None,
                 device_ids: tuple[int, ...] = (1,), zones: int = 16, baudrate: int = 19200) -> None:
        if (tcp is None) == (serial_port is None):
            raise ValueError("give either tcp=(host, port) or serial_port=")
        self.tcp = tcp
        self.serial_port = serial_port
        self.baudrate = baudrate
        self.zones = zones
        self.devices = {i: _Device(i, zones) for i in device_ids}
        self.server: ModbusTcpServer | ModbusSerialServer | None = None
        self.port = tcp[1] if tcp else 0

    async def start(self) -> None:
        """Start serving with the current state (a restarted panel keeps its zones as they were)."""
        sims = [d.simdevice() for d in self.devices.values()]
        if self.tcp is not None:
            self.server = ModbusTcpServer(sims, address=(self.tcp[0], self.port))
        else:
            assert self.serial_port
            self.server = ModbusSerialServer(sims, framer=FramerType.RTU, port=self.serial_port,
                                             baudrate=self.baudrate)
        await self.server.serve_forever(background=True)
        if self.tcp is not None and self.port == 0:
            srv: Any = self.server.transport
            self.port = srv.sockets[0].getsockname()[1]  # the same port again after a restart
        for d in self.devices.values():
            await self._write_all(d)

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.shutdown()
            self.server = None

    async def _write_all(self, d: _Device) -> None:
        assert self.server is not None
        await self.server.async_setValues(d.device_id, FC_DISCRETE, 0, list(d.alarm))
        await self.server.async_setValues(d.device_id, FC_HOLDING, 0, list(d.tamper))
        await self.server.async_setValues(d.device_id, FC_INPUT, 0, [d.status, *d.fault])
        await self.server.async_setValues(d.device_id, FC_COIL, 0, [d.armed])

    def _dev(self, device_id: int, zone: int | None = None) -> _Device:
        d = self.devices[device_id]
        if zone is not None and not 1 <= zone <= d.zones:
            raise ValueError(f"zone {zone} is not 1..{d.zones}")
        return d

    async def _sync(self, d: _Device) -> None:
        if self.server is not None:  # a stopped panel changes state silently, read when it is back
            await self._write_all(d)

    # -- what happens on the object --------------------------------------------------------------

    async def trip(self, zone: int, device_id: int = 1) -> None:
        d = self._dev(device_id, zone)
        d.alarm[zone - 1] = True
        await self._sync(d)

    async def clear(self, zone: int, device_id: int = 1) -> None:
        d = self._dev(device_id, zone)
        d.alarm[zone - 1] = False
        await self._sync(d)

    async def set_tamper(self, zone: int, on: bool = True, device_id: int = 1) -> None:
        d = self._dev(device_id, zone)
        r, b = divmod(zone - 1, 16)
        d.tamper[r] = d.tamper[r] | (1 << b) if on else d.tamper[r] & ~(1 << b)
        await self._sync(d)

    async def set_fault(self, zone: int, on: bool = True, device_id: int = 1) -> None:
        d = self._dev(device_id, zone)
        r, b = divmod(zone - 1, 16)
        d.fault[r] = d.fault[r] | (1 << b) if on else d.fault[r] & ~(1 << b)
        await self._sync(d)

    async def set_armed(self, on: bool = True, device_id: int = 1) -> None:
        d = self._dev(device_id)
        d.armed = on
        await self._sync(d)

    async def set_mains(self, on: bool = True, device_id: int = 1) -> None:
        d = self._dev(device_id)
        d.status = d.status | 1 if on else d.status & ~1
        await self._sync(d)

    async def command(self, line: str) -> str:
        """One CLI command: trip N | clear N | tamper N on|off | fault N on|off | arm | disarm |
        mains on|off | stop | start; an optional `@ID` picks the device (default the first)."""
        words = shlex.split(line)
        device_id = next(iter(self.devices))
        for w in list(words):
            if w.startswith("@"):
                device_id = int(w[1:])
                words.remove(w)
        if not words:
            return ""
        cmd, rest = words[0].lower(), words[1:]
        on = not (rest and rest[-1].lower() in ("off", "0", "false"))
        if cmd in ("trip", "clear"):
            await (self.trip if cmd == "trip" else self.clear)(int(rest[0]), device_id)
        elif cmd == "tamper":
            await self.set_tamper(int(rest[0]), on, device_id)
        elif cmd == "fault":
            await self.set_fault(int(rest[0]), on, device_id)
        elif cmd in ("arm", "disarm"):
            await self.set_armed(cmd == "arm", device_id)
        elif cmd == "mains":
            await self.set_mains(on, device_id)
        elif cmd == "stop":
            await self.stop()
        elif cmd == "start":
            await self.start()
        else:
            raise ValueError(f"unknown command {cmd!r}")
        return f"ok: {line.strip()}"


# -- command line (`kuzet sim modbus`) ---------------------------------------------------------------

def add_arguments(p: argparse.ArgumentParser) -> None:
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--tcp", metavar="HOST:PORT", help="serve Modbus TCP here")
    where.add_argument("--rtu", metavar="PORT", help="serve Modbus RTU on this serial port / pty end")
    where.add_argument("--link", metavar="PATH", help="make a socat pty pair, serve RTU on one end and link"
                                                      " the poller's end to PATH")
    p.add_argument("--device-id", type=int, action="append", help="device id(s) on the line (default 1)")
    p.add_argument("--zones", type=int, default=16)
    p.add_argument("--baudrate", type=int, default=19200)
    p.add_argument("--script", help="commands separated by ';' (e.g. 'trip 3; sleep 2; clear 3'), then exit;"
                                    " without it commands are read from standard input")


async def _main(args: argparse.Namespace) -> int:
    socat: SocatPair | None = None
    ids = tuple(args.device_id or [1])
    if args.tcp:
        host, _, port = args.tcp.rpartition(":")
        panel = ModbusPanelSim(tcp=(host or "127.0.0.1", int(port)), device_ids=ids, zones=args.zones)
    else:
        port_path = args.rtu
        if args.link:
            port_path = os.path.join(tempfile.mkdtemp(prefix="kuzet-sim-"), "panel")
            socat = SocatPair(port_path, args.link)
            await socat.start()
        panel = ModbusPanelSim(serial_port=port_path, device_ids=ids, zones=args.zones, baudrate=args.baudrate)
    await panel.start()
    where = f"tcp {panel.tcp[0]}:{panel.port}" if panel.tcp else f"rtu {args.link or args.rtu}"
    print(f"simulated panel on {where}, devices {list(ids)}, {args.zones} zones", flush=True)
    print("register map for [[receivers.modbus.devices]]:\npoints = [", flush=True)
    for point in default_points(args.zones):
        fields = ", ".join(f"{k} = {v!r}".replace("'", '"') for k, v in point.items())
        print(f"  {{ {fields} }},", flush=True)
    print("]", flush=True)
    try:
        if args.script:
            failed = 0
            for cmd in args.script.split(";"):
                out = await _command(panel, cmd)
                failed += out.startswith("error")
                if out:
                    print(out, flush=True)
            return 1 if failed else 0
        loop = asyncio.get_running_loop()
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line or line.strip() in ("quit", "exit"):
                return 0
            out = await _command(panel, line)
            if out:
                print(out, flush=True)
    finally:
        await panel.stop()
        if socat is not None:
            await socat.stop()


async def _command(panel: ModbusPanelSim, line: str) -> str:
    line = line.strip()
    try:
        if line.startswith("sleep"):
            await asyncio.sleep(float(line.split()[1]))
            return ""
        return await panel.command(line)
    except (ValueError, IndexError, KeyError) as exc:
        return f"error: {line!r}: {exc}"


def main(args: argparse.Namespace) -> int:
    with contextlib.suppress(KeyboardInterrupt):
        return asyncio.run(_main(args))
    return 0


__all__ = ["ModbusPanelSim", "add_arguments", "default_points", "main"]
