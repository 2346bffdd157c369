"""Property-based tests (hypothesis) over every codec: whatever bytes arrive, no codec raises, none
hits its own "internal error" guard, and every reply it produces is a well-formed frame (DC-09
replies parse back with the transmitter's strict parser: framing, length, CRC, and for an encrypted
account the *ACK decrypts); serial codecs answer every terminated message exactly once with ACK or
NAK; Modbus register maps accept or refuse a table with a ValueError naming the field, and turn any
register values into Contact ID signals."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from receivers.dc09.codec import Accepted, AccountKey, Dc09Codec, Rejected
from receivers.dc09.transmitter import ReplyError, build_message, parse_reply
from receivers.formats.cid import CidError, parse_cid, parse_cid_data
from receivers.formats.dc03 import parse_dc03
from receivers.modbus import regmap
from receivers.serial import events
from receivers.serial.ademco685 import Ademco685Codec
from receivers.serial.mlr2 import Mlr2Codec

T0 = datetime(2026, 11, 25, 12, 0, 0, tzinfo=UTC)
KEY = bytes(range(16))
KEY256 = bytes(range(32))
ACCOUNTS = {"1234": AccountKey(True, None), "AE5": AccountKey(True, KEY), "A256": AccountKey(True, KEY256)}
FAST = settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


def keys(_r: str, _l: str, account: str) -> AccountKey | None:
    return ACCOUNTS.get(account)


def codec() -> Dc09Codec:
    return Dc09Codec("fuzz", "127.0.0.1:1", keys, clock=lambda: T0)


def check_dc09(results: list[Accepted | Rejected]) -> int:
    """Every reply is a strict, CRC-correct DC-09 reply; returns how many there were."""
    n = 0
    for r in results:
        if isinstance(r, Rejected):
            assert "internal error" not in r.detail, r.detail
        if r.reply is None:
            continue
        n += 1
        account = r.account if isinstance(r, Rejected) else (r.items[0].account if r.items else "")
        key = ACCOUNTS[account].key if account in ACCOUNTS else None
        try:
            reply = parse_reply(r.reply, key)
        except ReplyError as exc:  # an *ACK for a key we did not expect: try the other keys
            if not r.reply.startswith(b"\n") or b'"*' not in r.reply[:12]:
                raise AssertionError(f"malformed reply {r.reply!r}: {exc}") from exc
            reply = next(p for p in (_try(r.reply, k) for k in (KEY, KEY256)) if p is not None)
        assert reply.kind in ("ACK", "NAK", "DUH"), reply
        assert not reply.issues, (reply.issues, r.reply)
        if isinstance(r, Accepted):
            assert reply.kind == "ACK"
    return n


def _try(raw: bytes, key: bytes) -> Any:
    try:
        return parse_reply(raw, key)
    except ReplyError:
        return None


# -- messages: valid ones, then damaged ---------------------------------------------------------

ALNUM = st.text(alphabet="0123456789ABCDEF", min_size=1, max_size=6)
SIA_DATA = st.one_of(
    st.builds(lambda c, z: f"#1234|Nri1/{c}{z}", st.sampled_from(["BA", "FA", "OP", "CL", "RP", "YT", "ZZ"]),
              st.text(alphabet="0123456789", min_size=0, max_size=4)),
    st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=60),
)
CID_DATA = st.builds(lambda q, e, g, z: f"#1234|{q}{e} {g} {z}", st.sampled_from("136"),
                     st.text(alphabet="0123456789", min_size=3, max_size=3),
                     st.text(alphabet="0123456789", min_size=2, max_size=2),
                     st.text(alphabet="0123456789", min_size=3, max_size=3))


@st.composite
def dc09_message(draw: st.DrawFn) -> bytes:
    token = draw(st.sampled_from(["SIA-DCS", "ADM-CID", "NULL", "ACK", "XYZ"]))
    account = draw(st.sampled_from(["1234", "AE5", "A256", "9999", ""]) | ALNUM)
    data = "" if token == "NULL" else draw(CID_DATA if token == "ADM-CID" else SIA_DATA)
    encrypted = account in ("AE5", "A256") and draw(st.booleans())
    key = ACCOUNTS[account].key if encrypted else (draw(st.sampled_from([None, KEY])) if draw(st.booleans()) else None)
    skew = draw(st.sampled_from([0, 0, 5, -30, 120, -3600]))
    ts = T0 + timedelta(seconds=skew) if (encrypted or draw(st.booleans())) else None
    return build_message(
        token, data, sequence=draw(st.sampled_from(["0001", "9999", "0000", "12", "ABCD"])),
        account=account or None, line_no=draw(st.sampled_from(["0", "1", None, "FF"])),
        receiver_no=draw(st.sampled_from([None, "0", "12"])), key=key, timestamp=ts,
        xdata=draw(st.sampled_from([(), {"X": "1"}, {"K": "x"}])), binary_crc=draw(st.booleans()),
        crc_includes_cr=draw(st.booleans()), lower_hex=draw(st.booleans()))


@st.composite
def damaged(draw: st.DrawFn, message: st.SearchStrategy[bytes]) -> bytes:
    m = bytearray(draw(message))
    for _ in range(draw(st.integers(0, 3))):
        op = draw(st.sampled_from(["flip", "cut", "insert", "delete"]))
        if not m:
            break
        i = draw(st.integers(0, len(m) - 1))
        if op == "flip":
            m[i] = draw(st.integers(0, 255))
        elif op == "cut":
            del m[i:]
        elif op == "insert":
            m[i:i] = draw(st.binary(min_size=1, max_size=8))
        else:
            del m[i]
    return bytes(m)


def chunks(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    out, last = [], 0
    for p in points + [len(data)]:
        out.append(data[last:p])
        last = p
    return out


@FAST
@given(st.lists(damaged(dc09_message()), min_size=1, max_size=4), st.lists(st.integers(0, 10_000), max_size=6))
def test_dc09_tcp_any_stream(messages: list[bytes], cuts: list[int]) -> None:
    c = codec()
    results: list[Accepted | Rejected] = []
    for piece in chunks(b"".join(messages), cuts):
        results += c.feed(piece)
    results += c.timeout()
    check_dc09(results)


@FAST
@given(damaged(dc09_message()))
def test_dc09_udp_any_datagram(datagram: bytes) -> None:
    check_dc09(codec().datagram(datagram))


@FAST
@given(st.binary(max_size=600))
def test_dc09_random_bytes(data: bytes) -> None:
    c = codec()
    check_dc09(c.feed(data) + c.timeout())
    check_dc09(codec().datagram(data))


@FAST
@given(dc09_message())
def test_dc09_valid_messages_get_a_wellformed_answer(message: bytes) -> None:
    """Undamaged messages, plain and AES-128/256: every one is answered (ACK, NAK or DUH) in a
    well-formed frame, and an ACK acknowledges exactly the message's sequence and account."""
    for results in (codec().feed(message), codec().datagram(message)):
        assert results and check_dc09(results) == len(results)
        for r in results:
            if isinstance(r, Accepted):
                key = ACCOUNTS[r.items[0].account].key if r.items and r.items[0].account in ACCOUNTS else None
                reply = parse_reply(r.reply, key)
                assert reply.acknowledges(_sequence(message), reply.account)


def _sequence(message: bytes) -> str:
    start = 7 if message[7] == 0x22 else 9  # binary or hex CRC before the length and the body
    q = message.index(b'"', start + 1)
    return message[q + 1:q + 5].decode()


# -- the data formats inside ---------------------------------------------------------------------

TEXT = st.text(max_size=120) | st.text(alphabet="#|/NOriaZBACLF0123456789^ ", max_size=80)


@FAST
@given(TEXT)
def test_dc03_never_raises(data: str) -> None:
    parsed = parse_dc03(data)
    for e in parsed.events:
        assert isinstance(e.code, str)


@FAST
@given(TEXT | st.builds(lambda a, b: f"#{a}|{b}", ALNUM, st.text(alphabet="0123456789 ", max_size=12)))
def test_contact_id_raises_only_its_own_error(data: str) -> None:
    for parse in (parse_cid, parse_cid_data):
        try:
            parse(data)
        except CidError:
            pass


# -- serial automation formats -------------------------------------------------------------------


def _serial(make: Callable[[], events.TerminatedLines], data: bytes, cuts: list[int]) -> None:
    c = make()
    out: list[events.Event] = []
    for piece in chunks(data, cuts):
        out += c.feed(piece)
    replies = [e.reply for e in out if e.reply is not None]
    assert all(r in (events.ACK, events.NAK) for r in replies), replies
    # never a second reply for one message (the receiver would take it for its next one's ACK):
    # each terminated message gets exactly one reply, or none when it is line noise
    assert len(replies) <= data.count(c.terminator) + sum(
        1 for e in out if isinstance(e, events.Rejected) and e.reason == "overlong"), (replies, data)
    for message in data.split(c.terminator)[:-1]:
        got = make().message(message)
        assert len([e for e in got if e.reply is not None]) == (1 if got else 0), (message, got)
    for e in out:
        if isinstance(e, events.Rejected):
            assert "internal error" not in e.detail


SERIAL_BYTES = st.binary(max_size=700) | st.lists(
    st.sampled_from([b"\x14", b"\r", b"\n", b"5", b"01", b"1", b" ", b"18", b"1234", b"E130", b"R130",
                     b"01 130 003", b"@", b"S", b"[", b"]", b"#", b"|", b"Nri1/BA003", b"\x06", b"\x00"]),
    max_size=60).map(b"".join)


@FAST
@given(SERIAL_BYTES, st.lists(st.integers(0, 10_000), max_size=5))
def test_mlr2_any_bytes(data: bytes, cuts: list[int]) -> None:
    _serial(lambda: Mlr2Codec("fuzz", now=lambda: T0), data, cuts)


@FAST
@given(SERIAL_BYTES, st.lists(st.integers(0, 10_000), max_size=5))
def test_ademco685_any_bytes(data: bytes, cuts: list[int]) -> None:
    _serial(lambda: Ademco685Codec("fuzz", now=lambda: T0), data, cuts)


# -- Modbus register maps ------------------------------------------------------------------------

POINT = st.dictionaries(
    st.sampled_from(["table", "address", "bit", "kind", "zone", "code", "partition", "invert", "name", "count",
                     "bogus"]),
    st.one_of(st.sampled_from(["coil", "hr", "discrete_input", "input_register", "nope", "alarm", "armed", "mains",
                               "fault", "tamper", "130", "1x0"]),
              st.integers(-5, 70000), st.booleans(), st.text(max_size=5)),
    max_size=8)


@FAST
@given(st.dictionaries(st.sampled_from(["device_id", "unit", "account", "points", "extra"]),
                       st.one_of(st.integers(-3, 300), st.text(max_size=6), st.lists(POINT, max_size=6)),
                       max_size=5))
def test_modbus_map_from_any_table(table: dict[str, Any]) -> None:
    try:
        dev = regmap.device_from_table(table, receiver="fuzz", peer="127.0.0.1:502")
    except ValueError as exc:
        assert str(exc)  # says what is wrong
        return
    for kind, start, count in dev.reads():
        assert kind in regmap.TABLES and start >= 0
        assert 0 < count <= (regmap.MAX_BITS_PER_READ if kind in regmap.BIT_TABLES else regmap.MAX_REGS_PER_READ)


DEVICE = regmap.device_from_table({"device_id": 1, "account": "3001", "points": [
    {"table": "coil", "address": 0, "kind": "alarm", "zone": 1, "count": 4},
    {"table": "hr", "address": 10, "bit": 3, "kind": "tamper", "zone": 5, "count": 20},
    {"table": "di", "address": 2, "kind": "armed"}, {"table": "ir", "address": 7, "kind": "mains", "invert": True}]})


@FAST
@given(st.lists(st.integers(0, 0xFFFF), min_size=1, max_size=40), st.lists(st.integers(0, 0xFFFF), min_size=1,
                                                                            max_size=40))
def test_modbus_changes_are_contact_id(a: list[int], b: list[int]) -> None:
    def values(seed: list[int]) -> dict[tuple[str, int], int | bool]:
        out: dict[tuple[str, int], int | bool] = {}
        for i, (kind, start, count) in enumerate(DEVICE.reads()):
            for j in range(count):
                v = seed[(i + j) % len(seed)]
                out[(kind, start + j)] = bool(v & 1) if kind in regmap.BIT_TABLES else v
        return out

    old = DEVICE.decode(values(a), T0)
    new = DEVICE.decode(values(b), T0 + timedelta(seconds=1))
    for s in regmap.changes(None, old) + regmap.changes(old, new):
        assert s.code_kind == "cid" and len(s.code) == 3 and s.code.isdigit() and s.qualifier in ("1", "3")
        assert s.account == "3001"
