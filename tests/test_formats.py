"""One mapping from a DC-03 / Contact ID event to a stored signal, whatever carried it: the number
after a SIA code lands in zone, user or partition as the SIA DC-03 code table says."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from console.eventcodes import sia_address
from console.signal import Signal
from receivers.dc09.codec import Accepted, Dc09Codec, frame
from receivers.serial import ademco685, mlr2
from receivers.serial.events import Accepted as SerialAccepted

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def via_dc09(data: str) -> list[Signal]:
    codec = Dc09Codec("dc09", "10.0.0.1:1", lambda r, line, a: None, clock=lambda: NOW)
    [ev] = codec.feed(frame(f'"SIA-DCS"0001L0#1234[{data}]'.encode()))
    assert isinstance(ev, Accepted), ev
    return [s for s in ev.items if isinstance(s, Signal)]


def via_mlr2(data: str) -> list[Signal]:
    [ev] = mlr2.Mlr2Codec("serial", now=lambda: NOW).feed(mlr2.encode_sia(data))
    assert isinstance(ev, SerialAccepted), ev
    return [s for s in ev.items if isinstance(s, Signal)]


def fields(sigs: list[Signal]) -> list[tuple[str, str, str, str]]:
    return [(s.code, s.zone, s.user, s.partition) for s in sigs]


@pytest.mark.parametrize("carrier", [via_dc09, via_mlr2], ids=["dc09", "mlr2"])
@pytest.mark.parametrize(("data", "want"), [
    ("#1234|Nri1/BA003", [("BA", "003", "", "1")]),  # burglary: zone 3 of area 1
    ("#1234|Nri2/OP12", [("OP", "", "12", "2")]),  # opening: by user 12
    ("#1234|Nri1/CL501", [("CL", "", "501", "1")]),  # closing: by user 501
    ("#1234|NCA3", [("CA", "", "", "3")]),  # automatic closing of area 3
    ("#1234|Nri1/NL501", [("NL", "501", "", "1")]),  # area given by ri: the number stays as sent
    ("#1234|Nid7/OP14", [("OP", "14", "7", "")]),  # user given by id: likewise
    ("#1234|Nri1/BA003/OP5", [("BA", "003", "", "1"), ("OP", "", "5", "1")]),
])
def test_the_number_after_a_sia_code_goes_where_the_code_table_says(
        carrier: object, data: str, want: list[tuple[str, str, str, str]]) -> None:
    assert fields(carrier(data)) == want  # type: ignore[operator]


def test_the_code_table_names_users_and_areas() -> None:
    assert [sia_address(c) for c in ("BA", "OP", "CL", "OR", "BC", "CA", "NL", "FA", "ZZ")] == [
        "zone", "user", "user", "user", "user", "area", "area", "zone", "zone"]


def test_contact_id_user_field_is_kept_as_a_user_by_both_serial_formats_and_dc09() -> None:
    [ev] = ademco685.Ademco685Codec("s", now=lambda: NOW).feed(
        ademco685.encode_cid("1234", "R", "401", "01", "007", user=True))
    assert isinstance(ev, SerialAccepted)
    s = ev.items[0]
    assert isinstance(s, Signal) and (s.zone, s.user, s.partition) == ("007", "007", "01")
    [ev2] = mlr2.Mlr2Codec("s", now=lambda: NOW).feed(mlr2.encode_cid("1234", "R", "401", "01", "007"))
    assert isinstance(ev2, SerialAccepted)
    s2 = ev2.items[0]
    assert isinstance(s2, Signal) and (s2.zone, s2.partition, s2.qualifier) == ("007", "01", "3")
    codec = Dc09Codec("dc09", "p", lambda r, line, a: None, clock=lambda: NOW)
    [ev3] = codec.feed(frame(b'"ADM-CID"0001L0#1234[#1234|3401 01 007]'))
    assert isinstance(ev3, Accepted)
    s3 = ev3.items[0]
    assert isinstance(s3, Signal) and (s3.zone, s3.partition, s3.qualifier) == ("007", "01", "3")
