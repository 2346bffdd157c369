"""The one mapping from a DC-03 or Contact ID event to a stored `Signal`.

DC-09 and the serial automation outputs differ in framing and in what they know about a message
(a DC-09 sequence number, encryption and extended data; a serial receiver's clock), which they
pass as an `Envelope`; what an event means is decided here, once:

- DC-03: the number after the code is a zone, a user or an area depending on the code (SIA DC-03
  event-code table, `console.eventcodes.sia_address`): ``OP12`` is an opening by user 12, stored in
  `user`, not `zone`. The ``ri`` (area) and ``id`` (user) modifiers fill `partition` and `user`;
  where a modifier already names the field the code addresses, the number stays in `zone` as sent; the other modifiers (``ti``, ``da``, ``pi`` ...) ride along in
  `xdata` under their two lower-case letters, which cannot clash with DC-09's ``[X]`` keys.
- Contact ID: Q is the qualifier, GG the group (stored as `partition`), CCC the zone; a sender that
  marks CCC as a user (Ademco 685 ``U``) also has it stored as `user`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from console.eventcodes import sia_address
from console.signal import Signal
from receivers.formats.cid import CidEvent
from receivers.formats.dc03 import Dc03Event

_NO_XDATA: Mapping[str, str] = {}


@dataclass(frozen=True, slots=True)
class Envelope:
    """What the transport knows about the message the events came in."""

    receiver: str
    protocol: str  # "SIA-DCS", "ADM-CID", "MLR2-SIA", "MLR2-CID", "685-CID"
    account: str
    received_at: datetime
    raw: bytes
    peer: str = ""
    receiver_no: str = ""
    line_no: str = ""
    sequence: str = ""
    transmitter_time: datetime | None = None
    encrypted: bool = False
    xdata: Mapping[str, str] = field(default_factory=lambda: _NO_XDATA)  # DC-09 [X...] blocks


def dc03_signals(env: Envelope, events: Sequence[Dc03Event], text: str = "") -> list[Signal]:
    """One signal per DC-03 event; `text` is the message's text for events without their own."""
    out: list[Signal] = []
    for idx, ev in enumerate(events):
        mods = ev.modifiers
        # The number goes where the code table says, unless a modifier already names that field
        # explicitly (``Nri1/NL501``: area 1, and 501 stays a point as sent).
        zone, user, area = ev.address, mods.get("id", ""), mods.get("ri", "")
        where = sia_address(ev.code)
        if where == "user" and not user:
            zone, user = "", ev.address
        elif where == "area" and not area:
            zone, area = "", ev.address
        xd = dict(env.xdata)
        for k, v in mods.items():
            if k != "ri" and k != "id":
                xd[k] = v
        out.append(Signal(
            env.receiver, env.protocol, env.account, ev.code, "sia", env.received_at, env.raw, env.peer,
            zone=zone, partition=area, user=user, text=ev.text or text, xdata=xd, sequence=env.sequence,
            receiver_no=env.receiver_no, line_no=env.line_no, transmitter_time=env.transmitter_time,
            encrypted=env.encrypted, index=idx))
    return out


def cid_signals(env: Envelope, events: Sequence[CidEvent], text: str = "") -> list[Signal]:
    """One signal per Contact ID event."""
    return [Signal(
        env.receiver, env.protocol, env.account, ev.code, "cid", env.received_at, env.raw, env.peer,
        qualifier=ev.qualifier, zone=ev.zone, partition=ev.group, user=ev.zone if ev.user else "", text=text,
        xdata=dict(env.xdata), sequence=env.sequence, receiver_no=env.receiver_no, line_no=env.line_no,
        transmitter_time=env.transmitter_time, encrypted=env.encrypted, index=idx)
        for idx, ev in enumerate(events)]
