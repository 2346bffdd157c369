"""The Modbus register map and the state diff, without I/O."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from receivers.modbus import regmap
from receivers.modbus.poller import ModbusConfig
from receivers.sim.modbus_panel import default_points

AT = datetime(2026, 11, 25, 6, 0, tzinfo=UTC)


def device(points: list[dict[str, object]]) -> regmap.DeviceMap:
    return regmap.device_from_table({"device_id": 3, "account": "7a01", "points": points},
                                    receiver="modbus-1", peer="10.0.0.5:502")


def read(dev: regmap.DeviceMap, values: dict[tuple[str, int], int]) -> regmap.State:
    full: dict[tuple[str, int], int | bool] = {}
    for table, start, count in dev.reads():
        for a in range(start, start + count):
            full[(table, a)] = values.get((table, a), 0)
    return dev.decode(full, AT)


def test_points_expand_and_reads_are_merged() -> None:
    dev = device(default_points(20))
    assert dev.account == "7A01" and dev.device_id == 3 and dev.peer == "10.0.0.5:502#3"
    alarms = [p for p in dev.points if p.kind == "alarm"]
    assert [(p.address, p.zone) for p in alarms[:3]] == [(0, "001"), (1, "002"), (2, "003")]
    tampers = [p for p in dev.points if p.kind == "tamper"]
    assert (tampers[16].address, tampers[16].bit, tampers[16].zone) == (1, 0, "017")  # bit 16 -> next register
    assert dev.reads() == [("coil", 0, 1), ("discrete_input", 0, 20), ("holding_register", 0, 2),
                           ("input_register", 0, 3)]


def test_alarm_trip_and_clear() -> None:
    dev = device(default_points(8))
    normal = read(dev, {("input_register", 0): 1})  # mains present, nothing else
    assert regmap.changes(None, normal) == []  # the first read at normal reports nothing
    tripped = read(dev, {("input_register", 0): 1, ("discrete_input", 2): 1})
    [s] = regmap.changes(normal, tripped)
    assert (s.code, s.qualifier, s.zone, s.code_kind, s.protocol, s.account) == ("130", "1", "003", "cid", "MODBUS", "7A01")
    assert (s.receiver, s.peer, s.raw) == ("modbus-1", "10.0.0.5:502#3", b"3/discrete_input:2=1")
    [r] = regmap.changes(tripped, normal)
    assert (r.code, r.qualifier, r.zone) == ("130", "3", "003")


def test_tamper_fault_armed_mains() -> None:
    dev = device(default_points(8))
    base = read(dev, {("input_register", 0): 1})
    now = read(dev, {("holding_register", 0): 0b100, ("input_register", 1): 0b1, ("coil", 0): 1,
                     ("input_register", 0): 0})
    got = {(s.code, s.qualifier, s.zone) for s in regmap.changes(base, now)}
    assert got == {("137", "1", "003"), ("380", "1", "001"), ("401", "3", "000"), ("301", "1", "000")}
    back = {(s.code, s.qualifier, s.zone) for s in regmap.changes(now, base)}
    assert back == {("137", "3", "003"), ("380", "3", "001"), ("401", "1", "000"), ("301", "3", "000")}


def test_first_read_reports_active_conditions_but_not_the_armed_state() -> None:
    dev = device(default_points(4))
    first = read(dev, {("discrete_input", 1): 1, ("coil", 0): 1})  # zone 2 in alarm, armed, mains lost
    got = {(s.code, s.qualifier, s.zone) for s in regmap.changes(None, first)}
    assert got == {("130", "1", "002"), ("301", "1", "000")}


def test_invert_code_override_name_and_partition() -> None:
    dev = device([
        {"table": "hr", "address": 5, "bit": 15, "kind": "alarm", "zone": 9, "code": "110", "name": "Boiler room",
         "partition": "02"},
        {"table": "coils", "address": 7, "kind": "mains", "invert": True},  # the device flags "mains failure"
    ])
    base = read(dev, {})
    assert regmap.changes(None, base) == []  # failure bit clear = mains present
    now = read(dev, {("holding_register", 5): 0x8000, ("coil", 7): 1})
    got = {(s.code, s.qualifier, s.zone, s.text, s.partition) for s in regmap.changes(base, now)}
    assert got == {("110", "1", "009", "Boiler room", "02"), ("301", "1", "000", "", "")}


def test_communication_signal() -> None:
    dev = device(default_points(1))
    lost = regmap.communication(dev, ok=False, at=AT, detail="timeout")
    back = regmap.communication(dev, ok=True, at=AT)
    assert (lost.code, lost.qualifier, back.qualifier, lost.account) == ("350", "1", "3", "7A01")


@pytest.mark.parametrize("points, message", [
    ([{"table": "x", "address": 0, "zone": 1}], "table"),
    ([{"table": "coil", "address": 0, "kind": "smoke", "zone": 1}], "kind"),
    ([{"table": "coil", "zone": 1}], "address"),
    ([{"table": "coil", "address": 0, "bit": 1, "zone": 1}], "bit"),
    ([{"table": "holding_register", "address": 0, "bit": 16, "zone": 1}], "bit"),
    ([{"table": "coil", "address": 0}], "zone"),
    ([{"table": "coil", "address": 0, "zone": 1, "code": "13"}], "code"),
    ([{"table": "coil", "address": 0, "zone": 1}, {"table": "coil", "address": 0, "zone": 2}], "twice"),
    ([{"table": "coil", "address": 0, "zone": 1, "colour": "red"}], "unknown"),
    ([], "no points"),
])
def test_bad_maps_are_refused(points: list[dict[str, object]], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        device(points)


def test_config_table() -> None:
    cfg = ModbusConfig.from_table({
        "transport": "rtu", "url": "/dev/ttyUSB1", "baudrate": 19200, "poll_interval": 0.5,
        "devices": [{"device_id": 1, "account": "7001", "points": default_points(4)},
                    {"unit": 2, "account": "7002", "points": default_points(4)}]}, index=1)
    assert cfg.name == "modbus-2" and cfg.peer == "/dev/ttyUSB1"
    assert [d.device_id for d in cfg.devices] == [1, 2] and cfg.devices[1].peer == "/dev/ttyUSB1#2"
    with pytest.raises(ValueError, match="url"):
        ModbusConfig.from_table({"transport": "rtu", "devices": [{"account": "1", "points": default_points(1)}]})
    with pytest.raises(ValueError, match="twice"):
        ModbusConfig.from_table({"devices": [{"account": "1", "points": default_points(1)},
                                             {"account": "2", "points": default_points(1)}]})
    with pytest.raises(ValueError, match="unknown keys"):
        ModbusConfig.from_table({"hots": "x", "devices": []})
