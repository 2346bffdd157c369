"""Accounts: the panels Kuzet knows, their keys, and the in-memory directory receivers consult.

The directory answers "is this account known, and what is its AES key?" for every frame without a
database round trip; it reloads when the accounts change (NOTIFY on `kuzet_accounts`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg

CHANNEL_ACCOUNTS = "kuzet_accounts"

# SQL: the account of signal `s`, as `a` (id, object_id). The same rule as AccountDirectory.find:
# an account bound to the signal's receiver/line wins over one that matches any line.
SIGNAL_ACCOUNT_JOIN = """LEFT JOIN LATERAL (
    SELECT id, object_id FROM accounts a
    WHERE a.number = s.account
      AND a.prefix IN ('', 'L' || s.line_no, 'R' || s.receiver_no || 'L' || s.line_no)
    ORDER BY a.prefix = '' LIMIT 1
) a ON true"""


@dataclass(frozen=True, slots=True)
class KnownAccount:
    id: int
    number: str
    prefix: str  # "" = any line
    key: bytes | None
    object_id: int | None


def key_bytes(text: str | None, fmt: str) -> bytes | None:
    """An AES key as configured (`protocols.md` §1.8): hex-decoded, or the ASCII bytes of the string."""
    if not text:
        return None
    raw = bytes.fromhex(text) if fmt == "hex" else text.encode("ascii")
    if len(raw) not in (16, 24, 32):
        raise ValueError(f"an AES key must be 16, 24 or 32 bytes, got {len(raw)}")
    return raw


class AccountDirectory:
    def __init__(self) -> None:
        self._by_number: dict[str, list[KnownAccount]] = {}

    async def load(self, conn: asyncpg.Connection | asyncpg.Pool) -> int:
        rows = await conn.fetch("SELECT id, number, prefix, aes_key, key_format, object_id FROM accounts")
        by_number: dict[str, list[KnownAccount]] = {}
        for r in rows:
            acc = KnownAccount(r["id"], r["number"].upper(), r["prefix"].upper(),
                               key_bytes(r["aes_key"], r["key_format"]), r["object_id"])
            by_number.setdefault(acc.number, []).append(acc)
        for accs in by_number.values():
            accs.sort(key=lambda a: a.prefix == "")  # a prefix-bound account wins over a wildcard
        self._by_number = by_number
        return len(rows)

    def find(self, receiver_no: str, line_no: str, number: str) -> KnownAccount | None:
        accs = self._by_number.get(number)
        if not accs:
            return None
        full = f"R{receiver_no}L{line_no}" if receiver_no else f"L{line_no}"
        line_only = f"L{line_no}"
        for a in accs:
            if a.prefix in ("", full, line_only):
                return a
        return None

    def __len__(self) -> int:
        return sum(len(v) for v in self._by_number.values())


async def create(conn: asyncpg.Connection | asyncpg.Pool, number: str, *, object_id: int | None = None,
                 prefix: str = "", protocol: str = "dc09", aes_key: str | None = None,
                 key_format: str = "hex", supervision_interval: int | None = None) -> int:
    key_bytes(aes_key, key_format)  # refuse a malformed key before it reaches a receiver
    account_id: int = await conn.fetchval(
        "INSERT INTO accounts (number, prefix, protocol, aes_key, key_format, supervision_interval, object_id)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        number.upper(), prefix.upper(), protocol, aes_key, key_format, supervision_interval, object_id,
    )
    await conn.execute("SELECT pg_notify($1, $2)", CHANNEL_ACCOUNTS, str(account_id))
    return account_id


async def list_accounts(conn: asyncpg.Connection | asyncpg.Pool, object_id: int | None = None) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT id, number, prefix, protocol, key_format, aes_key IS NOT NULL AS encrypted,"
        " supervision_interval, object_id, last_seen_at FROM accounts"
        " WHERE ($1::bigint IS NULL OR object_id = $1) ORDER BY number",
        object_id,
    )
    return [dict(r) for r in rows]
