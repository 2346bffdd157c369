"""Sans-IO codec for the Ademco 685 automation output (and receivers emulating it).

Framing: LF (0x0A) header, CR (0x0D) terminator, fields separated by spaces (Ademco 685 automation output):

- Contact ID `<LF>RL AAAA 18 QXYZ GG FCCC<CR>`  Q = E/R/P, F = C (zone) or U (user)
- heartbeat  `<LF>RL OKAY @ <CR>`

Printouts without the `18` field (Fire-Lite: `11 7777 E110 00 C001`) and two-digit zone fields
(`C08`) are accepted as well. Answered with ACK 0x06 after the commit, NAK 0x15 when unparseable.
"""

from __future__ import annotations

import re

from console.signal import Poll
from receivers.formats.cid import CidEvent
from receivers.formats.signals import Envelope, cid_signals
from receivers.serial.events import ACK, NAK, Accepted, Event, Rejected, TerminatedLines

LF = b"\n"
CR = b"\r"
MAX_MESSAGE = 512

QUALIFIERS = {"E": "1", "R": "3", "P": "6"}

_CID = re.compile(r"(?P<r>\d)(?P<l>\d) +(?P<account>[0-9A-F]{3,6}) +(?:18 +)?(?P<q>[ERP])(?P<code>\d{3})"
                  r" +(?P<group>[0-9A-F]{2}) +(?P<f>[CU])(?P<zone>[0-9A-F]{2,3}) *")
_HEARTBEAT = re.compile(r"(?P<r>\d)(?P<l>\d) +OKAY +@ *")


class Ademco685Codec(TerminatedLines):
    terminator = CR
    max_message = MAX_MESSAGE

    def message(self, raw: bytes) -> list[Event]:
        """One CR-terminated message (without the CR) -> one event with the reply."""
        received_at = self.now()
        start = raw.rfind(LF)  # anything before the last LF is the tail of a garbled message
        body = raw[start + 1:].strip(b" \x00")
        if not body:
            return []  # a bare CR/LF pair is noise, not a message to answer
        try:
            text = body.decode("ascii")
        except UnicodeDecodeError:
            return [Rejected("not-ascii", "non-ASCII bytes in the message", raw)]
        m = _CID.fullmatch(text)
        if m is not None:
            env = Envelope(self.receiver, "685-CID", m["account"], received_at, raw, self.peer,
                           receiver_no=m["r"], line_no=m["l"])
            # F tells a zone from a user: a user is kept in the row as such
            event = CidEvent(QUALIFIERS[m["q"]], m["code"], m["group"], m["zone"], user=m["f"] == "U")
            return [Accepted([*cid_signals(env, [event])], raw, ACK)]
        m = _HEARTBEAT.fullmatch(text)
        if m is not None:
            return [Accepted([Poll(receiver=self.receiver, account="", received_at=received_at,
                                   peer=self.peer, receiver_no=m["r"], line_no=m["l"])], raw, ACK)]
        return [Rejected("unparseable", f"not an Ademco 685 Contact ID message: {text[:60]!r}", raw, NAK)]


def encode_cid(account: str, q: str, code: str, group: str = "01", zone: str = "001", *,
               receiver_no: str = "1", line_no: str = "1", user: bool = False) -> bytes:
    """`<LF>RL AAAA 18 QXYZ GG FCCC<CR>`; q is E, R or P."""
    f = "U" if user else "C"
    return f"\n{receiver_no}{line_no} {account} 18 {q}{code} {group} {f}{zone}\r".encode("ascii")


def encode_heartbeat(*, receiver_no: str = "1", line_no: str = "1") -> bytes:
    return f"\n{receiver_no}{line_no} OKAY @ \r".encode("ascii")


__all__ = ["ACK", "NAK", "Ademco685Codec", "encode_cid", "encode_heartbeat"]
