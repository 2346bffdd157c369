"""What every receiver hands to the core: a decoded alarm signal, or a link poll.

A `Signal` is one event reported by a panel (one DC-03 event, one Contact ID event, one serial
line, one Modbus state change). It is immutable once stored. A `Poll` is a link test (DC-09 NULL,
serial heartbeat): it proves the path is alive and refreshes supervision, but is not stored as a
signal row, because a city of panels polling every 20 s would otherwise bury the real events.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg

from console.account import SIGNAL_ACCOUNT_JOIN


@dataclass(slots=True)
class Signal:
    receiver: str  # the receiver that took it in, e.g. "dc09-tcp", "serial-1", "modbus-gw1"
    protocol: str  # wire format: "SIA-DCS", "ADM-CID", "NULL", "MLR2-CID", "MLR2-SIA", "685-CID", "MODBUS"
    account: str  # account number as the panel sent it, upper-case
    code: str  # SIA two-letter code ("BA"), Contact ID event code ("130"), or an internal code
    code_kind: str  # "sia" | "cid" | "link" (NULL from an unknown account) | "internal"
    received_at: datetime  # UTC, when the bytes arrived
    raw: bytes  # the whole frame or line as received
    peer: str = ""  # "ip:port", serial device path, Modbus device
    qualifier: str = ""  # Contact ID: "1" new event/opening, "3" restore/closing, "6" status
    zone: str = ""  # zone number, or user number for open/close codes, as sent
    partition: str = ""  # area / group / partition
    user: str = ""  # user number where the format carries it separately (SIA "id")
    text: str = ""  # free text (SIA ^text^, A block, X-SIA text, xdata I)
    xdata: dict[str, str] = field(default_factory=dict)  # DC-09 extended data [X...]
    sequence: str = ""  # DC-09 sequence number (decimal text)
    receiver_no: str = ""  # DC-09 "R" / serial receiver number
    line_no: str = ""  # DC-09 "L" prefix / serial line number
    transmitter_time: datetime | None = None  # UTC time stated by the transmitter, if any
    encrypted: bool = False
    index: int = 0  # position of this event inside a multi-event frame

    @property
    def prefix(self) -> str:
        """Receiver/line prefix in DC-09 notation ("R1L0", "L0"), used to find the account."""
        return (f"R{self.receiver_no}" if self.receiver_no else "") + f"L{self.line_no or '0'}"

    def dedup_key(self) -> bytes:
        """Natural key of the message: a panel's retry of the same message gets the same key.

        Made from what the panel decides (account, prefix, sequence, content, its own timestamp),
        never from what the receiver adds (arrival time, peer address, encryption pad).
        """
        tt = self.transmitter_time.isoformat() if self.transmitter_time else ""
        parts = (
            self.protocol, self.account, self.receiver_no, self.line_no, self.sequence,
            self.code_kind, self.qualifier, self.code, self.zone, self.partition, self.user,
            self.text, tt, str(self.index),
        )
        return hashlib.blake2b("\x1f".join(parts).encode(), digest_size=16).digest()


@dataclass(slots=True)
class Poll:
    """A link test from a known account (DC-09 NULL) or a receiver heartbeat."""

    receiver: str
    account: str  # account number; for a receiver heartbeat, "" (the receiver itself)
    received_at: datetime
    peer: str = ""
    receiver_no: str = ""
    line_no: str = ""


# -- reading them back (the board, the API) ---------------------------------------------------------

_SIGNAL_COLUMNS = """
SELECT s.id, s.received_at, s.receiver, s.peer, s.protocol, s.account, s.receiver_no, s.line_no,
       s.sequence, s.code_kind, s.code, s.qualifier, s.zone, s.partition, s.user_no, s.text,
       s.transmitter_time, s.encrypted, a.object_id, o.name AS object_name, z.name AS zone_name
FROM signals s
""" + SIGNAL_ACCOUNT_JOIN + """
LEFT JOIN guarded_objects o ON o.id = a.object_id
LEFT JOIN zones z ON z.account_id = a.id AND z.number = s.zone
"""


async def latest(conn: asyncpg.Pool | asyncpg.Connection, *, limit: int, after: int = 0,
                 account: str | None = None) -> list[dict[str, Any]]:
    """The newest stored signals (newest first) with their object and zone names, optionally only
    those with id > `after` or of one account."""
    rows = await conn.fetch(
        _SIGNAL_COLUMNS + " WHERE s.id > $1 AND ($2::text IS NULL OR s.account = $2)"
        " ORDER BY s.id DESC LIMIT $3", after, account, limit)
    return [dict(r) for r in rows]


async def last_id(conn: asyncpg.Pool | asyncpg.Connection) -> int:
    """The id of the newest stored signal (0 if none)."""
    return int(await conn.fetchval("SELECT coalesce(max(id), 0) FROM signals"))


async def rejected(conn: asyncpg.Pool | asyncpg.Connection, *, limit: int) -> list[dict[str, Any]]:
    """The frames the receivers refused (bad CRC, unknown key, ...), newest first."""
    rows = await conn.fetch(
        "SELECT id, received_at, receiver, peer, reason, detail, account, reply, raw, count FROM rejected_frames"
        " ORDER BY id DESC LIMIT $1", limit)
    return [dict(r) for r in rows]
