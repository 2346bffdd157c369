"""DC-03 (SIA-DCS data) and Contact ID (ADM-CID data) parsers, without any framing."""

from __future__ import annotations

import pytest

from receivers.formats.cid import CidError, parse_cid, parse_cid_data
from receivers.formats.dc03 import parse_dc03, split_blocks


def test_satel_peripheral_modifier_is_not_the_code() -> None:
    d = parse_dc03("#0000|Npi0/AT")  # pysiaalarm reads code "pi" here and answers DUH
    assert d.account == "0000"
    assert [(e.code, e.address) for e in d.events] == [("AT", "")]
    assert d.events[0].modifiers == {"pi": "0"}


def test_dc09_spt_time_modifier_without_separator() -> None:
    d = parse_dc03("#0123|Nri2ti04:42:14OP14|ASectie uit")
    (ev,) = d.events
    assert (ev.code, ev.address, ev.area) == ("OP", "14", "2")
    assert ev.modifiers["ti"] == "04:42:14"
    assert d.text == "Sectie uit"


def test_scantronic_time_and_user_packets() -> None:
    (ev,) = parse_dc03("#3080|Nti19:44/id1/RP").events
    assert (ev.code, ev.address, ev.user) == ("RP", "", "1")
    assert ev.modifiers["ti"] == "19:44"


def test_text_after_event_without_slash() -> None:
    (ev,) = parse_dc03("#123456|Nri1CL0^VX FRONTE ^").events
    assert (ev.code, ev.address, ev.area, ev.text) == ("CL", "0", "1", "VX FRONTE")


def test_several_events_and_modifier_scope() -> None:
    d = parse_dc03("#1|Nri1/BA003/BA004/ri2BA005|Nid7/CL001")
    assert [(e.code, e.address, e.area, e.user) for e in d.events] == [
        ("BA", "003", "1", ""), ("BA", "004", "1", ""), ("BA", "005", "2", ""),
        ("CL", "001", "", "7"),  # a new block starts without the previous block's modifiers
    ]
    # an event keeps the modifiers in force when it was read
    assert d.events[1].modifiers == {"ri": "1"}


def test_tolerated_variants() -> None:
    assert [e.code for e in parse_dc03("|Nri1/CL501").events] == ["CL"]  # empty first block
    assert [e.code for e in parse_dc03("Nri1/WA000").events] == ["WA"]  # no #acct
    assert [e.code for e in parse_dc03("#1|ri1/BA003").events] == ["BA"]  # no N
    assert [(e.code, e.address) for e in parse_dc03("#9999|NBA2").events] == [("BA", "2")]
    assert [(e.code, e.address) for e in parse_dc03("#1|NL501").events] == [("NL", "501")]
    old = parse_dc03("#1|Ori1/BA3").events[0]
    assert old.old and old.code == "BA"


def test_xsia_text() -> None:
    d = parse_dc03("#1|Nri1/OP001*'Front door'NM/CL002")
    assert [(e.code, e.text) for e in d.events] == [("OP", "Front door"), ("CL", "")]
    d = parse_dc03("#006969|Nri04/OP001*\u2019NM")  # closing quote lost: no text, no NM event
    assert [(e.code, e.address, e.text) for e in d.events] == [("OP", "001", "")]
    d = parse_dc03("#006969|Nri04/OP001NM")  # pysiaalarm's test with "*'" stripped
    assert [e.code for e in d.events] == ["OP"]


def test_text_with_bar_is_one_block() -> None:
    assert split_blocks("#1|NBA1^a|b^|AX") == ["#1", "NBA1^a|b^", "AX"]
    (ev,) = parse_dc03("#1|NBA1^a|b^").events
    assert ev.text == "a|b"


def test_no_event_and_ignored_blocks() -> None:
    d = parse_dc03("#1234|Etemp")
    assert d.events == [] and d.ignored == ["Etemp"]
    assert parse_dc03("").events == []


@pytest.mark.parametrize("q", ["1", "3", "6"])
def test_cid_qualifiers_all_valid(q: str) -> None:
    ev = parse_cid(f"{q}602 00 000")
    assert (ev.qualifier, ev.code, ev.group, ev.zone) == (q, "602", "00", "000")
    assert ev.is_status == (q == "6")


def test_cid_data_and_errors() -> None:
    d = parse_cid_data("#4F39|3401 01 057")
    assert d.account == "4F39"
    assert str(d.events[0]) == "3401 01 057"
    assert parse_cid("113001003").zone == "003"  # compact form without spaces
    for bad in ("2130 01 003", "1A30 01 003", "1130 1 003", "1130 01 0x3", ""):
        with pytest.raises(CidError):
            parse_cid(bad)
    with pytest.raises(CidError):
        parse_cid_data("#1234")
