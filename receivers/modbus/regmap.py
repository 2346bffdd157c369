"""A Modbus device's register map and the diff that turns state changes into Contact ID signals.

Pure: no I/O. A `DeviceMap` (built from one `[[receivers.modbus.devices]]` table) says which coil,
discrete input, or bit of a holding/input register is which zone and what it means; `decode` turns
what was read into a `State`; `changes(old, new)` turns the difference into signals:

| kind   | value true (after `invert`)   | becomes true        | becomes false        |
| ------ | ----------------------------- | ------------------- | -------------------- |
| alarm  | zone in alarm                 | CID 130 q1 (zone)   | 130 q3               |
| tamper | zone / enclosure tampered     | 137 q1              | 137 q3               |
| fault  | zone / device fault           | 380 q1              | 380 q3               |
| armed  | partition armed               | 401 q3 (closing)    | 401 q1 (opening)     |
| mains  | mains power present           | 301 q3 (restored)   | 301 q1 (mains lost)  |

Each point may override the code (`code = "110"` for a fire zone, `"383"` for a sensor tamper).
The first state read after start-up is compared with the normal state (nothing in alarm, tamper or
fault; mains present), so a condition already active at start-up is reported. The armed state has no
normal value: it becomes the baseline without a signal, because a signal row says that something
happened, and nobody armed or disarmed anything when the poller started.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from console.signal import Signal

TABLES = ("coil", "discrete_input", "holding_register", "input_register")
_TABLE_ALIASES = {"coils": "coil", "discrete_inputs": "discrete_input", "di": "discrete_input",
                  "holding_registers": "holding_register", "holding": "holding_register", "hr": "holding_register",
                  "input_registers": "input_register", "ir": "input_register"}
BIT_TABLES = ("coil", "discrete_input")

KINDS: dict[str, str] = {"alarm": "130", "tamper": "137", "fault": "380", "armed": "401", "mains": "301"}
NORMAL: dict[str, bool | None] = {"alarm": False, "tamper": False, "fault": False, "mains": True, "armed": None}

MAX_BITS_PER_READ = 2000  # Modbus limits: 2000 coils/inputs, 125 registers per request
MAX_REGS_PER_READ = 125


@dataclass(frozen=True, slots=True)
class Point:
    table: str  # coil | discrete_input | holding_register | input_register
    address: int
    bit: int | None  # bit of a register (0 = least significant); None for coils / discrete inputs
    kind: str  # alarm | tamper | fault | armed | mains
    zone: str  # zone (or user for armed) as the signal carries it, e.g. "003"
    code: str  # Contact ID event code
    partition: str = ""
    invert: bool = False  # the device sets the bit for the opposite ("mains failure", "disarmed")
    name: str = ""  # the zone's name, carried as the signal's text

    def where(self) -> str:
        return f"{self.table}:{self.address}" + (f".{self.bit}" if self.bit is not None else "")


@dataclass(frozen=True, slots=True)
class DeviceMap:
    device_id: int  # Modbus unit / slave id
    account: str
    points: tuple[Point, ...]
    receiver: str = ""  # the poller's name, stamped on the signals
    peer: str = ""  # "host:port#unit" or "/dev/ttyUSB0#unit"

    def reads(self) -> list[tuple[str, int, int]]:
        """The requests that cover every point: (table, start, count), merged per table."""
        out: list[tuple[str, int, int]] = []
        for table in TABLES:
            addrs = sorted({p.address for p in self.points if p.table == table})
            limit = MAX_BITS_PER_READ if table in BIT_TABLES else MAX_REGS_PER_READ
            start = prev = -1
            for a in addrs:
                if start < 0:
                    start = prev = a
                elif a - start + 1 > limit or a - prev > 32:  # a wide gap costs more than two requests
                    out.append((table, start, prev - start + 1))
                    start = prev = a
                else:
                    prev = a
            if start >= 0:
                out.append((table, start, prev - start + 1))
        return out

    def decode(self, values: Mapping[tuple[str, int], int | bool], at: datetime) -> State:
        """What was read ({(table, address): bit or register value}) -> the state of every point."""
        state: dict[Point, bool] = {}
        for p in self.points:
            raw = values[(p.table, p.address)]
            on = bool(raw) if p.bit is None else bool((int(raw) >> p.bit) & 1)
            state[p] = on != p.invert
        return State(self, state, at)


@dataclass(frozen=True, slots=True)
class State:
    device: DeviceMap
    values: dict[Point, bool] = field(default_factory=dict)
    at: datetime | None = None


def changes(old: State | None, new: State) -> list[Signal]:
    """Signals for every point whose value differs from `old` (or, with no `old`, from normal)."""
    assert new.at is not None
    dev = new.device
    out: list[Signal] = []
    for p, value in new.values.items():
        before = old.values.get(p) if old is not None else None
        if before is None:
            before = NORMAL[p.kind]  # first read (or a point added since): compare with normal
        if before is None or value == before:
            continue  # the armed state on the first read is the baseline
        out.append(Signal(
            receiver=dev.receiver, protocol="MODBUS", account=dev.account, code=p.code, code_kind="cid",
            received_at=new.at, raw=f"{dev.device_id}/{p.where()}={int(value != p.invert)}".encode(),
            peer=dev.peer, qualifier=_qualifier(p.kind, value), zone=p.zone, partition=p.partition,
            text=p.name))
    return out


def _qualifier(kind: str, value: bool) -> str:
    if kind == "armed":
        return "3" if value else "1"  # closing (armed) is the CID restore qualifier
    if kind == "mains":
        return "3" if value else "1"  # mains present again = restore of 301
    return "1" if value else "3"


def communication(dev: DeviceMap, *, ok: bool, at: datetime, detail: str = "") -> Signal:
    """CID 350 (communication trouble) for a device that stopped answering (q1) or answers again (q3)."""
    return Signal(receiver=dev.receiver, protocol="MODBUS", account=dev.account, code="350", code_kind="cid",
                  received_at=at, raw=f"{dev.device_id}/{'answers' if ok else 'silent'} {detail}".strip().encode(),
                  peer=dev.peer, qualifier="3" if ok else "1", zone="000")


# -- from the TOML table -------------------------------------------------------------------------------

def _zone(value: Any) -> str:
    text = str(value).strip()
    return f"{int(text):03d}" if text.isdigit() else text


def _int(value: Any, where: str, name: str) -> int:
    """An integer setting, or a ValueError naming it (TOML may hold any type there)."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"{where}: `{name}` must be an integer")
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{where}: `{name}` must be an integer") from None


def parse_points(items: Iterable[Mapping[str, Any]]) -> tuple[Point, ...]:
    """Points from `points = [...]` entries; `count = N` expands one entry into N consecutive points
    (next address for coils / discrete inputs, next bit for registers) with consecutive zones."""
    points: list[Point] = []
    if not isinstance(items, list | tuple):
        raise ValueError("`points` must be a list of tables")
    for n, item in enumerate(items):
        where = f"points[{n}]"
        if not isinstance(item, Mapping):
            raise ValueError(f"{where}: must be a table")
        unknown = set(item) - {"table", "address", "bit", "kind", "zone", "code", "partition", "invert", "name",
                               "count"}
        if unknown:
            raise ValueError(f"{where}: unknown keys {sorted(unknown)}")
        table = str(item.get("table", "")).lower()
        table = _TABLE_ALIASES.get(table, table)
        if table not in TABLES:
            raise ValueError(f"{where}: table must be one of {TABLES}")
        kind = str(item.get("kind", "alarm")).lower()
        if kind not in KINDS:
            raise ValueError(f"{where}: kind must be one of {tuple(KINDS)}")
        address = _int(item["address"], where, "address") if "address" in item else -1
        if not 0 <= address <= 65535:
            raise ValueError(f"{where}: address 0..65535 is required")
        bit: int | None = None
        if table not in BIT_TABLES:
            bit = _int(item.get("bit", 0), where, "bit")
            if not 0 <= bit <= 15:
                raise ValueError(f"{where}: bit must be 0..15")
        elif "bit" in item:
            raise ValueError(f"{where}: `bit` is for registers; coils and discrete inputs are single bits")
        count = _int(item.get("count", 1), where, "count")
        if not 1 <= count <= 65536:
            raise ValueError(f"{where}: count must be 1..65536")
        zone0 = item.get("zone", "000" if kind in ("armed", "mains") else None)
        if zone0 is None:
            raise ValueError(f"{where}: `zone` is required for {kind}")
        code = str(item.get("code", KINDS[kind]))
        if not (len(code) == 3 and code.isdigit()):
            raise ValueError(f"{where}: code must be a 3-digit Contact ID event code")
        for i in range(count):
            zone = _zone(zone0)
            if i and zone.isdigit():
                zone = f"{int(zone) + i:03d}"
            if bit is None:
                addr, b = address + i, None
            else:
                addr, b = address + (bit + i) // 16, (bit + i) % 16
            if addr > 65535:
                raise ValueError(f"{where}: count runs past address 65535")
            points.append(Point(table, addr, b, kind, zone, code, str(item.get("partition", "")),
                                bool(item.get("invert", False)), str(item.get("name", "")) if count == 1 else ""))
    seen: set[tuple[str, int, int | None]] = set()
    for p in points:
        key = (p.table, p.address, p.bit)
        if key in seen:
            raise ValueError(f"{p.where()} is mapped twice")
        seen.add(key)
    return tuple(points)


def device_from_table(table: Mapping[str, Any], *, receiver: str = "", peer: str = "") -> DeviceMap:
    """One `[[receivers.modbus.devices]]` table -> its map."""
    unknown = set(table) - {"device_id", "unit", "account", "points"}
    if unknown:
        raise ValueError(f"[[receivers.modbus.devices]]: unknown keys {sorted(unknown)}")
    if "account" not in table:
        raise ValueError("[[receivers.modbus.devices]]: `account` is required")
    device_id = _int(table.get("device_id", table.get("unit", 1)), "[[receivers.modbus.devices]]", "device_id")
    if not 0 <= device_id <= 247:
        raise ValueError("device_id must be 0..247")
    points = parse_points(table.get("points", []))
    if not points:
        raise ValueError(f"device {device_id}: no points")
    return DeviceMap(device_id, str(table["account"]).upper(), points, receiver,
                     f"{peer}#{device_id}" if peer else f"#{device_id}")
