"""Sans-IO codec for the Sur-Gard MLR2 / MLR2000 / System I-III automation output ("Sur-Gard standard").

Every message ends with DC4 (0x14) and is answered with ACK 0x06 (after the commit) or NAK 0x15.
Formats understood (Sur-Gard "SG Automation Output Protocol"):

- Contact ID  `5RRLs18AAAAQXYZGGCCC`      Q = E (new/opening), R (restore/closing), P (previous)
- SIA level 2 `SRRL[#AAAA|Nri1BA01]`      the DC-03 data group in brackets
- heartbeat   `1RR` + line + spaces + `@` + spaces, e.g. `1011           @    `
- the clock variants of the above, with `HH:MM:SS-dd/mm` appended (the receiver's local time).

A receiver that was not acknowledged in time may send several copies of a frame without
terminators between them; such a message is split on its repeated `5RRL` (or `SRRL`, `1RRL`) prefix
and still gets one reply. The other Sur-Gard formats (4-2, SIA level 1, BFSK, ...) are rejected.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, tzinfo

from console.signal import Poll, Signal
from receivers.formats.cid import CidEvent
from receivers.formats.dc03 import parse_dc03
from receivers.formats.signals import Envelope, cid_signals, dc03_signals
from receivers.serial.events import ACK, NAK, Accepted, Event, Rejected, TerminatedLines

DC4 = b"\x14"
MAX_MESSAGE = 1024  # bytes without a DC4: line noise or a wrong baud rate, not a message

QUALIFIERS = {"E": "1", "R": "3", "P": "6"}  # E/R/P letters stand for Contact ID qualifiers 1/3/6

_CLOCK = r"(?:\s*(?P<clock>\d\d:\d\d:\d\d-\d\d/\d\d))?"
_CID = re.compile(
    r"5(?P<rr>\d\d)(?P<line>\d{1,3}) 18(?P<account>[0-9A-F]{4,6})(?P<q>[ERP])(?P<code>\d{3})"
    r"(?P<group>[0-9A-F]{2})(?P<zone>[0-9A-F]{3})" + _CLOCK + r"\s*")
_SIA = re.compile(r"S(?P<rr>\d\d)(?P<line>\d{1,3})\[(?P<data>[^\]]*)\]" + _CLOCK + r"\s*")
_HEARTBEAT = re.compile(r"1(?P<rr>\d\d)(?P<line>\d{1,3}) +@ *" + _CLOCK + r"\s*")
_PREFIX = re.compile(r"[15S]\d{3,5}(?= |\[)")  # what a copy of the same frame starts with again


def parse_clock(text: str, tz: tzinfo, now: datetime) -> datetime | None:
    """`HH:MM:SS-dd/mm` in the receiver's local time -> UTC. The year is not sent: it is the one that
    puts the stamp nearest before now (a stamp from 31 December read on 1 January is last year's)."""
    try:
        hh, mm, ss = int(text[0:2]), int(text[3:5]), int(text[6:8])
        day, month = int(text[9:11]), int(text[12:14])
        local_now = now.astimezone(tz)
        for year in (local_now.year, local_now.year - 1, local_now.year + 1):
            try:
                stamp = datetime(year, month, day, hh, mm, ss, tzinfo=tz)
            except ValueError:
                continue  # 29 February in a year without it: try the next candidate
            if stamp <= local_now + timedelta(days=1):
                return stamp.astimezone(UTC)
        return None
    except ValueError:
        return None


class Mlr2Codec(TerminatedLines):
    """Bytes from the port in, `Accepted` / `Rejected` events out. No I/O, no clock of its own
    beyond `now` (injectable for tests)."""

    terminator = DC4
    max_message = MAX_MESSAGE

    def __init__(self, receiver: str, peer: str = "", *, tz: tzinfo = UTC,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        super().__init__(receiver, peer, now=now)
        self.tz = tz

    def message(self, raw: bytes) -> list[Event]:
        """One DC4-terminated message (without the DC4) -> its events; exactly one carries the reply."""
        received_at = self.now()
        body = raw.strip(b" \r\n\x00")  # line noise around a message; a leading space is Radionics emulation
        if not body:
            return []  # a lone DC4 is noise: answering it could acknowledge the receiver's next message
        try:
            text = body.decode("ascii")
        except UnicodeDecodeError:
            return [Rejected("not-ascii", "non-ASCII bytes in the message", raw)]
        parsed = self._parse(text, body, received_at)
        if not isinstance(parsed, Rejected):
            return [Accepted(parsed, raw, ACK)]
        # Not one frame: maybe several copies (or frames) run together without terminators.
        m = _PREFIX.match(text)
        if m is None:
            return [parsed]
        # "5011 18": with the space (found only in headers, and before a clock) and the "18" (found
        # only in headers); "1011 " for heartbeats; "S011[" for SIA.
        prefix = m.group(0) + (" 18" if text[0] == "5" else text[m.end()])
        parts = _split(text, prefix)
        if len(parts) < 2:
            return [parsed]
        items: list[Signal | Poll] = []
        rejected: list[Event] = []
        for part in parts:
            one = self._parse(part, part.encode("ascii"), received_at)
            if isinstance(one, Rejected):
                one.reply = None
                rejected.append(one)
            else:
                items.extend(one)
        if not items:
            return [*rejected, Rejected("unparseable", f"{len(parts)} run-together frames, none valid", raw)]
        return [*rejected, Accepted(items, raw, ACK)]

    def _parse(self, text: str, raw: bytes, received_at: datetime) -> list[Signal | Poll] | Rejected:
        kind = text[:1]
        if kind == "5":
            m = _CID.fullmatch(text)
            if m is None:
                return Rejected("bad-cid", f"not a Contact ID message: {text[:60]!r}", raw)
            env = Envelope(self.receiver, "MLR2-CID", m["account"], received_at, raw, self.peer,
                           receiver_no=m["rr"], line_no=m["line"],
                           transmitter_time=self._clock(m["clock"], received_at))
            return [*cid_signals(env, [CidEvent(QUALIFIERS[m["q"]], m["code"], m["group"], m["zone"])])]
        if kind == "S":
            m = _SIA.fullmatch(text)
            if m is None:
                return Rejected("bad-sia", f"not a SIA message: {text[:60]!r}", raw)
            dcs = parse_dc03(m["data"])  # the same DC-03 parser as the DC-09 receiver's
            if not dcs.account:
                return Rejected("bad-sia", f"no #account block: {text[:60]!r}", raw)
            if not dcs.events:
                return Rejected("bad-sia", f"SIA data carries no event: {text[:60]!r}", raw, account=dcs.account)
            env = Envelope(self.receiver, "MLR2-SIA", dcs.account, received_at, raw, self.peer,
                           receiver_no=m["rr"], line_no=m["line"],
                           transmitter_time=self._clock(m["clock"], received_at))
            return [*dc03_signals(env, dcs.events, dcs.text)]  # the same mapping as DC-09's
        if kind == "1":
            m = _HEARTBEAT.fullmatch(text)
            if m is None:
                return Rejected("unsupported", f"Sur-Gard 4-2 format is not supported: {text[:60]!r}", raw)
            return [Poll(receiver=self.receiver, account="", received_at=received_at, peer=self.peer,
                         receiver_no=m["rr"], line_no=m["line"])]
        return Rejected("unsupported", f"unsupported Sur-Gard format {kind!r}: {text[:60]!r}", raw)

    def _clock(self, text: str | None, received_at: datetime) -> datetime | None:
        return parse_clock(text, self.tz, received_at) if text else None


def _split(text: str, prefix: str) -> list[str]:
    """Split on every occurrence of `prefix` (it contains the header's space or bracket, which
    occur nowhere else in a frame, so it cannot match inside a frame's body)."""
    starts = [i for i in range(len(text)) if text.startswith(prefix, i)]
    if not starts or starts[0] != 0:
        return [text]
    return [text[a:b] for a, b in zip(starts, [*starts[1:], len(text)], strict=True)]


# -- encoders (for the receiver emulator and the tests) --------------------------------------------

def encode_cid(account: str, q: str, code: str, group: str = "01", zone: str = "001", *,
               receiver_no: str = "01", line_no: str = "1", clock: str = "") -> bytes:
    """`5RRLs18AAAAQXYZGGCCC[clock]<DC4>`; q is E, R or P."""
    return f"5{receiver_no}{line_no} 18{account}{q}{code}{group}{zone}{clock}".encode("ascii") + DC4


def encode_sia(data: str, *, receiver_no: str = "01", line_no: str = "1", clock: str = "") -> bytes:
    """`SRRL[<DC-03 data>][clock]<DC4>`, e.g. data `#1234|Nri1BA01`."""
    return f"S{receiver_no}{line_no}[{data}]{clock}".encode("ascii") + DC4


def encode_heartbeat(*, receiver_no: str = "01", line_no: str = "1") -> bytes:
    """`1011           @    <DC4>` for receiver 01 line 1."""
    return f"1{receiver_no}{line_no}{' ' * 11}@{' ' * 4}".encode("ascii") + DC4


__all__ = ["ACK", "DC4", "NAK", "Mlr2Codec", "encode_cid", "encode_heartbeat", "encode_sia", "parse_clock"]
