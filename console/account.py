"""Accounts: the panels Kuzet knows, their keys, and the in-memory directory receivers consult.

The directory answers "is this account known, and what is its AES key?" for every frame without a
database round trip; it reloads when the accounts change (NOTIFY on `kuzet_accounts`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg

from console import audit, edit

CHANNEL_ACCOUNTS = "kuzet_accounts"

# What an account may look like: the API, the admin pages and the CSV import check the same rules.
NUMBER_PATTERN = r"^[0-9A-Za-z]{1,16}$"  # as the panel sends it (DC-09: 3-16 hex digits)
PREFIX_PATTERN = r"^((R[0-9A-Fa-f]{1,6})?L[0-9A-Fa-f]{1,6})?$"  # "", "L0", "R1L0"
PROTOCOL_PATTERN = r"^[a-z0-9-]{1,20}$"
INTERVAL_MIN, INTERVAL_MAX = 10, 7 * 86400  # seconds between expected test reports

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
    """An AES key as configured (SIA DC-09-2021 encryption; pysiaalarm-style ASCII keys too): hex-decoded, or the ASCII bytes of the string."""
    if not text:
        return None
    try:
        raw = bytes.fromhex(text) if fmt == "hex" else text.encode("ascii")
    except ValueError:
        raise ValueError("a hex key has only the digits 0-9 and A-F" if fmt == "hex"
                         else "an ascii key has only ASCII characters") from None
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


async def register_many(conn: asyncpg.Connection, actor: str, accounts: list[tuple[str, str | None, int | None]]) -> None:
    """Create or re-key many accounts at once — (number, hex AES key or None, object id) — for tools
    that set up a whole fleet of panels (benchmarks, bulk loads). One audit entry, one notification
    (the receivers reload their directory once). Call inside a transaction."""
    for _number, key, _oid in accounts:
        key_bytes(key, "hex")
    await conn.executemany(
        "INSERT INTO accounts (number, prefix, aes_key, key_format, object_id) VALUES ($1, '', $2, 'hex', $3)"
        " ON CONFLICT (prefix, number) DO UPDATE SET aes_key = excluded.aes_key, object_id = excluded.object_id",
        [(n.upper(), k, o) for n, k, o in accounts])
    await audit.append(conn, [audit.Entry(actor, "account.register-many", "account", "", {
        "count": len(accounts), "first": accounts[0][0] if accounts else "", "last": accounts[-1][0] if accounts else ""})])
    await conn.execute("SELECT pg_notify($1, $2)", CHANNEL_ACCOUNTS, "many")


async def list_accounts(conn: asyncpg.Connection | asyncpg.Pool, object_id: int | None = None) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT id, number, prefix, protocol, key_format, aes_key IS NOT NULL AS encrypted,"
        " supervision_interval, object_id, last_seen_at, version, updated_at, service_until, service_reason"
        " FROM accounts"
        " WHERE ($1::bigint IS NULL OR object_id = $1) ORDER BY number",
        object_id,
    )
    return [dict(r) for r in rows]


ACCOUNT_FIELDS = ("number", "prefix", "protocol", "aes_key", "key_format", "supervision_interval", "object_id")


async def get(conn: asyncpg.Connection | asyncpg.Pool, account_id: int) -> dict[str, Any] | None:
    """One account for the admin pages, with its zones (the key itself is never sent back)."""
    r = await conn.fetchrow(
        "SELECT id, number, prefix, protocol, key_format, aes_key IS NOT NULL AS encrypted, supervision_interval,"
        " object_id, last_seen_at, version, updated_at, service_until, service_reason FROM accounts WHERE id = $1",
        account_id)
    if r is None:
        return None
    zones = await conn.fetch("SELECT number, name FROM zones WHERE account_id = $1 ORDER BY number", account_id)
    return {**dict(r), "zones": [dict(z) for z in zones]}


async def update(conn: asyncpg.Connection, actor: str, account_id: int, version: int | None,
                 changes: dict[str, Any]) -> dict[str, Any]:
    """Edit an account (audited before/after, the key only as "set"); receivers reload their directory.
    `edit.Stale` if it moved on since `version`, `edit.Conflict` if the number/prefix is taken."""
    unknown = set(changes) - set(ACCOUNT_FIELDS)
    if unknown:
        raise ValueError(f"not account fields: {sorted(unknown)}")
    changes = dict(changes)
    for k in ("number", "prefix"):
        if k in changes:
            changes[k] = changes[k].upper()
    async with conn.transaction():
        row = await edit.locked(conn, "accounts", "account", account_id, version)
        fmt = changes.get("key_format", row["key_format"])
        key = changes.get("aes_key", row["aes_key"])
        try:
            key_bytes(key, fmt)
        except ValueError as exc:
            raise edit.Invalid(f"aes_key: {exc}", field="aes_key", code="aes_key") from None
        number, prefix = changes.get("number", row["number"]), changes.get("prefix", row["prefix"])
        if await conn.fetchval("SELECT 1 FROM accounts WHERE number = $1 AND prefix = $2 AND id <> $3",
                               number, prefix, account_id):
            raise edit.Conflict(f"account {prefix}#{number} already exists", field="number", code="account_exists",
                                value=number)
        await edit.update(conn, table="accounts", entity="account", row_id=account_id, version=version,
                          changes=changes, actor=actor, action="account.updated")
        await conn.execute("SELECT pg_notify($1, $2)", CHANNEL_ACCOUNTS, str(account_id))
        found = await get(conn, account_id)
    assert found is not None
    return found


async def replace_zones(conn: asyncpg.Connection, actor: str, account_id: int, version: int | None,
                        zones: list[tuple[str, str]]) -> dict[str, Any]:
    """Replace the account's zones (number, name); the account's version moves (audited before/after)."""
    numbers = [z[0] for z in zones]
    if len(set(numbers)) != len(numbers):
        raise edit.Invalid("each zone number at most once", field="zones", code="duplicate_zone")
    async with conn.transaction():
        await edit.locked(conn, "accounts", "account", account_id, version)
        before = [dict(r) for r in await conn.fetch(
            "SELECT number, name FROM zones WHERE account_id = $1 ORDER BY number", account_id)]
        after = sorted(({"number": n, "name": m} for n, m in zones), key=lambda z: z["number"])
        if before != after:
            await conn.execute("DELETE FROM zones WHERE account_id = $1", account_id)
            await conn.executemany("INSERT INTO zones (account_id, number, name) VALUES ($1, $2, $3)",
                                   [(account_id, z["number"], z["name"]) for z in after])
            v = await conn.fetchval("UPDATE accounts SET version = version + 1, updated_at = now() WHERE id = $1"
                                    " RETURNING version", account_id)
            await audit.append(conn, [audit.Entry(actor, "account.zones", "account", str(account_id),
                                                  {"version": v, "before": before, "after": after})])
        found = await get(conn, account_id)
    assert found is not None
    return found
