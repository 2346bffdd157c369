"""The serial codecs without I/O: Sur-Gard MLR2 and Ademco 685 lines in, events out."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from console.signal import Poll, Signal
from receivers.serial import ademco685, mlr2
from receivers.serial.events import ACK, NAK, Accepted, Rejected

NOW = datetime(2026, 11, 25, 6, 0, tzinfo=UTC)


def codec(**kw: object) -> mlr2.Mlr2Codec:
    return mlr2.Mlr2Codec("serial-1", "/dev/ttyS0", now=lambda: NOW, **kw)  # type: ignore[arg-type]


def only_signal(ev: object) -> Signal:
    assert isinstance(ev, Accepted) and ev.reply == ACK
    assert len(ev.items) == 1 and isinstance(ev.items[0], Signal)
    return ev.items[0]


def test_mlr2_contact_id_manual_example() -> None:
    # The manual's example: account 1234, duress 121, group 01, zone 001, receiver 01, line 1.
    [ev] = codec().feed(b"5011 181234E12101001\x14")
    s = only_signal(ev)
    assert (s.protocol, s.code_kind, s.account, s.code, s.qualifier) == ("MLR2-CID", "cid", "1234", "121", "1")
    assert (s.partition, s.zone, s.receiver_no, s.line_no) == ("01", "001", "01", "1")
    assert s.raw == b"5011 181234E12101001" and s.peer == "/dev/ttyS0" and s.receiver == "serial-1"
    assert s.received_at == NOW and s.transmitter_time is None


def test_mlr2_qualifiers_e_r_p_map_to_1_3_6() -> None:
    c = codec()
    evs = c.feed(b"5011 181234E13001003\x145011 181234R13001003\x145011 181234P40101012\x14")
    assert [only_signal(e).qualifier for e in evs] == ["1", "3", "6"]


def test_mlr2_three_digit_line_and_bytes_split_anywhere() -> None:
    c = codec()
    frame = b"502123 18ABCDE30102005\x14"  # receiver 02, line 123 (MLR2000's 3-digit line field)
    out = []
    for i in range(len(frame)):  # one byte at a time: framing must not care
        out += c.feed(frame[i:i + 1])
    s = only_signal(out[0])
    assert (s.receiver_no, s.line_no, s.account, s.code, s.zone) == ("02", "123", "ABCD", "301", "005")
    assert not c.pending()


def test_mlr2_sia_level_2() -> None:
    [ev] = codec().feed(b"S011[#1234|Nri1BA01]\x14")
    s = only_signal(ev)
    assert (s.protocol, s.code_kind, s.account, s.code, s.zone, s.partition) == ("MLR2-SIA", "sia", "1234", "BA", "01", "1")
    [ev] = codec().feed(b"S011[#12ab|Nri2/id7/OP14/CL15|AFront door]\x14")
    assert isinstance(ev, Accepted)
    sigs = [it for it in ev.items if isinstance(it, Signal)]
    assert [(s.code, s.zone, s.partition, s.user, s.index, s.text) for s in sigs] == [
        ("OP", "14", "2", "7", 0, "Front door"), ("CL", "15", "2", "7", 1, "Front door")]
    assert sigs[0].account == "12AB"


def test_mlr2_heartbeat_is_a_poll_of_the_receiver_itself() -> None:
    [ev] = codec().feed(b"1011           @    \x14")
    assert isinstance(ev, Accepted) and ev.heartbeat and ev.reply == ACK
    [p] = ev.items
    assert isinstance(p, Poll) and p.account == "" and p.receiver_no == "01" and p.line_no == "1"
    assert mlr2.encode_heartbeat() == b"1011           @    \x14"


def test_mlr2_clock_variant_is_the_receivers_local_time() -> None:
    c = codec(tz=ZoneInfo("Asia/Almaty"))  # UTC+5
    [ev] = c.feed(b"5011 181234E13001003 10:20:30-24/11\x14")
    s = only_signal(ev)
    assert s.transmitter_time == datetime(2026, 11, 24, 5, 20, 30, tzinfo=UTC)
    assert s.zone == "003"
    # A stamp from the end of last year, read in January, is last year's.
    jan = datetime(2027, 1, 1, 0, 5, tzinfo=UTC)
    assert mlr2.parse_clock("23:59:58-31/12", UTC, jan) == datetime(2026, 12, 31, 23, 59, 58, tzinfo=UTC)
    # Retransmissions of one clocked line share the natural key; another time does not.
    [again] = c.feed(b"5011 181234E13001003 10:20:30-24/11\x14")
    [later] = c.feed(b"5011 181234E13001003 10:20:31-24/11\x14")
    assert only_signal(again).dedup_key() == s.dedup_key() != only_signal(later).dedup_key()


def test_mlr2_sia_with_clock() -> None:
    [ev] = codec().feed(b"S011[#1234|Nri1BA01]10:00:00-25/11\x14")
    assert only_signal(ev).transmitter_time == datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


def test_mlr2_concatenated_copies_are_split_and_answered_once() -> None:
    # A receiver that got no ACK in time sent copies without terminators between them.
    frame = b"5011 181234E13001003"
    events = codec().feed(frame * 3 + b"\x14")
    assert len(events) == 1  # one reply: an extra ACK would acknowledge the receiver's next message
    [ev] = events
    assert isinstance(ev, Accepted) and ev.reply == ACK and len(ev.items) == 3
    keys = {s.dedup_key() for s in ev.items if isinstance(s, Signal)}
    assert len(keys) == 1  # the copies are one message: stored once


def test_mlr2_concatenated_different_frames_and_account_looking_like_the_prefix() -> None:
    # Account 5011 contains the "5011" prefix; the split is on "5011 18", which only a header has.
    data = b"5011 185011E13001003" + b"5011 185011R13001003" + b"\x14"
    [ev] = codec().feed(data)
    assert isinstance(ev, Accepted)
    assert [(s.account, s.qualifier) for s in ev.items if isinstance(s, Signal)] == [("5011", "1"), ("5011", "3")]


def test_mlr2_concatenated_with_one_bad_copy() -> None:
    events = codec().feed(b"5011 181234E13001003" + b"5011 18XXXX" + b"\x14")
    rej = [e for e in events if isinstance(e, Rejected)]
    acc = [e for e in events if isinstance(e, Accepted)]
    assert len(acc) == 1 and acc[0].reply == ACK and len(rej) == 1 and rej[0].reply is None


def test_mlr2_garbage_gets_nak() -> None:
    c = codec()
    evs = c.feed(b"5011 18ZZZZE13001003\x14hello\x14\xff\xfe\x14" + b"1234567\x14")
    assert [type(e) for e in evs] == [Rejected] * 4
    assert all(isinstance(e, Rejected) and e.reply == NAK for e in evs)
    assert [e.reason for e in evs if isinstance(e, Rejected)] == ["bad-cid", "unsupported", "not-ascii", "unsupported"]


def test_mlr2_noise_and_overlong() -> None:
    c = codec()
    assert c.feed(b"\x14\r\n\x14") == []  # lone terminators are not answered
    [ev] = c.feed(b"x" * (mlr2.MAX_MESSAGE + 1))
    assert isinstance(ev, Rejected) and ev.reason == "overlong"
    # Leading noise (Radionics' leading space, CR/LF) does not spoil a frame.
    assert isinstance(c.feed(b"\r\n 5011 181234E13001003\x14")[0], Accepted)


def test_mlr2_sia_without_account_or_event_is_rejected() -> None:
    evs = codec().feed(b"S011[Nri1BA01]\x14S011[#1234|Z]\x14S011[#1234|Nri1BA01\x14")
    assert [e.reason for e in evs if isinstance(e, Rejected)] == ["bad-sia", "bad-sia", "bad-sia"]


def test_mlr2_encoders_round_trip() -> None:
    c = codec()
    [a] = c.feed(mlr2.encode_cid("4321", "R", "401", "02", "007", receiver_no="03", line_no="2"))
    s = only_signal(a)
    assert (s.account, s.qualifier, s.code, s.partition, s.zone, s.receiver_no, s.line_no) == (
        "4321", "3", "401", "02", "007", "03", "2")
    [b] = c.feed(mlr2.encode_sia("#4321|Nri1/BA003"))
    assert only_signal(b).code == "BA"


# -- Ademco 685 ------------------------------------------------------------------------------------

def codec685() -> ademco685.Ademco685Codec:
    return ademco685.Ademco685Codec("serial-2", "/dev/ttyS1", now=lambda: NOW)


def test_685_contact_id() -> None:
    [ev] = codec685().feed(b"\n12 1234 18 E130 01 C003\r")
    s = only_signal(ev)
    assert (s.protocol, s.code_kind, s.account, s.code, s.qualifier) == ("685-CID", "cid", "1234", "130", "1")
    assert (s.partition, s.zone, s.user, s.receiver_no, s.line_no) == ("01", "003", "", "1", "2")
    assert s.raw == b"\n12 1234 18 E130 01 C003"


def test_685_user_field_and_variants() -> None:
    c = codec685()
    evs = c.feed(b"\n11 1234 18 R401 01 U005\r" + b"\n14 1111 18 E134 01 C08\r" + b"\n11 7777 E110 00 C001\r"
                 + b"\n11 7777 P602 00 C000\r")
    sigs = [only_signal(e) for e in evs]
    assert (sigs[0].qualifier, sigs[0].code, sigs[0].zone, sigs[0].user) == ("3", "401", "005", "005")
    assert (sigs[1].code, sigs[1].zone, sigs[1].line_no) == ("134", "08", "4")  # two-digit zone field
    assert (sigs[2].account, sigs[2].code) == ("7777", "110")  # Fire-Lite printout without "18"
    assert sigs[3].qualifier == "6"


def test_685_heartbeat() -> None:
    [ev] = codec685().feed(b"\n00 OKAY @ \r")
    assert isinstance(ev, Accepted) and ev.heartbeat
    assert ademco685.encode_heartbeat(receiver_no="0", line_no="0") == b"\n00 OKAY @ \r"


def test_685_garbage_gets_nak_and_noise_is_ignored() -> None:
    c = codec685()
    assert c.feed(b"\r\n\r") == []
    evs = c.feed(b"\n12 1234 18 X130 01 C003\r" + b"junk\r" + b"\n12 \xff\r")
    assert [type(e) for e in evs] == [Rejected] * 3
    assert all(isinstance(e, Rejected) and e.reply == NAK for e in evs)
    # Split delivery and the encoder.
    frame = ademco685.encode_cid("ABCD", "E", "570", "02", "011")
    assert isinstance(c.feed(frame[:5]), list) and c.pending()
    [ev] = c.feed(frame[5:])
    assert only_signal(ev).account == "ABCD"


def test_mlr2_concatenated_clock_frames_whose_zone_ends_like_the_prefix() -> None:
    # Group 05 + zone 011 puts "5011 " before the clock: the split must not happen there.
    frame = b"5011 181234E13005011 10:20:30-24/11"
    [ev] = codec().feed(frame * 2 + b"\x14")
    assert isinstance(ev, Accepted) and len(ev.items) == 2
    assert {(s.zone, s.partition) for s in ev.items if isinstance(s, Signal)} == {("011", "05")}
