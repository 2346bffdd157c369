"""Contact ID (SIA DC-05) events as carried in a DC-09 ``ADM-CID`` data field.

The data field is ``[#acct|QEEE GG CCC]``: Q the qualifier, EEE the event code, GG the group or
partition, CCC the zone (or user for open/close codes). DC-09 drops DC-05's ``AAAA 18`` prefix and
checksum; the account comes from the DC-09 header or the ``#acct`` block.

Qualifier 1 (new event / opening), 3 (restore / closing) and 6 (previously reported condition
still present) are all valid. pysiaalarm turns 6 into an "invalid report" and dc09-spt rejects
it; Kuzet keeps the native Contact ID event and lets the event-code table classify it.
"""

from __future__ import annotations

from dataclasses import dataclass

QUALIFIERS = frozenset("136")
_HEX = frozenset("0123456789ABCDEFabcdef")


class CidError(ValueError):
    """The text is not a Contact ID event (the message says why)."""


@dataclass(frozen=True, slots=True)
class CidEvent:
    qualifier: str  # "1", "3" or "6"
    code: str  # three digits, e.g. "130"
    group: str  # two characters as sent, "00" when not applicable
    zone: str  # three characters as sent (zone, or user for open/close codes)
    user: bool = False  # the sender marked CCC as a user number (Ademco 685 "U")

    @property
    def is_restore(self) -> bool:
        return self.qualifier == "3"

    @property
    def is_status(self) -> bool:
        return self.qualifier == "6"

    def __str__(self) -> str:
        return f"{self.qualifier}{self.code} {self.group} {self.zone}"


@dataclass(slots=True)
class CidData:
    account: str  # from the "#acct" block, upper-case; "" if the block is absent
    events: list[CidEvent]
    text: str = ""  # an "A" text block, if a sender added one


def parse_cid(text: str) -> CidEvent:
    """Parse ``QEEE GG CCC`` (spaces optional: ``QEEEGGCCC``); raise `CidError` if it is not one."""
    parts = text.split()
    if len(parts) == 3 and len(parts[0]) == 4 and len(parts[1]) == 2 and len(parts[2]) == 3:
        head, group, zone = parts
    elif len(parts) == 1 and len(parts[0]) == 9:
        head, group, zone = parts[0][:4], parts[0][4:6], parts[0][6:]
    else:
        raise CidError(f"not a Contact ID event 'QEEE GG CCC': {text[:40]!r}")
    q, code = head[0], head[1:]
    if q not in QUALIFIERS:
        raise CidError(f"Contact ID qualifier {q!r} is not 1, 3 or 6")
    if not (code.isascii() and code.isdigit()):
        raise CidError(f"Contact ID event code {code!r} is not three digits")
    # Group and zone are usually decimal; DTMF senders may use hex digits (0 sent as A).
    if not (set(group) <= _HEX and set(zone) <= _HEX):
        raise CidError(f"Contact ID group/zone {group!r}/{zone!r} are not digits")
    return CidEvent(q, code, group.upper(), zone.upper())


def parse_cid_data(data: str) -> CidData:
    """Parse a whole ADM-CID data field (without the brackets); raise `CidError` if no event."""
    account = ""
    text = ""
    events: list[CidEvent] = []
    for block in data.split("|"):
        block = block.strip()
        if not block:
            continue
        first = block[0]
        if first == "#":
            if not account:
                account = block[1:].strip().upper()
        elif first == "A" and len(block) > 1 and not block[1].isdigit():
            text = block[1:].strip()
        else:
            # Several events in one frame are not in DC-09, but costless to accept.
            events.append(parse_cid(block))
    if not events:
        raise CidError("ADM-CID data carries no Contact ID event")
    return CidData(account, events, text)
