"""The audit log: append-only and hash-chained, so that tampering with history is detectable.

Each entry's hash is sha256(previous hash + canonical JSON of the entry); the first entry chains
from 32 zero bytes. Appends take a transaction-scoped advisory lock so the chain never forks.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg

AUDIT_LOCK = 0x61756469  # "audi"
GENESIS = bytes(32)


@dataclass(slots=True)
class Entry:
    actor: str  # username, or "system:<component>"
    action: str  # e.g. "alarm.opened", "alarm.acknowledged", "user.login"
    entity: str  # e.g. "alarm", "account", "user"
    entity_id: str = ""
    detail: dict[str, Any] = field(default_factory=dict)
    at: datetime = field(default_factory=lambda: datetime.now(UTC))


def entry_hash(prev: bytes, at: datetime, actor: str, action: str, entity: str, entity_id: str,
               detail: dict[str, Any]) -> bytes:
    body = json.dumps(
        {"at": at.astimezone(UTC).isoformat(), "actor": actor, "action": action, "entity": entity,
         "entity_id": entity_id, "detail": detail},
        sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str,
    )
    return hashlib.sha256(prev + body.encode()).digest()


async def append(conn: asyncpg.Connection, entries: list[Entry]) -> None:
    """Append entries in order; call inside the transaction that makes the change being audited."""
    if not entries:
        return
    await conn.execute("SELECT pg_advisory_xact_lock($1)", AUDIT_LOCK)
    prev = await conn.fetchval("SELECT hash FROM audit_log ORDER BY id DESC LIMIT 1") or GENESIS
    rows = []
    for e in entries:
        # Detail goes through JSON once so what is hashed is exactly what the jsonb column returns.
        detail = json.loads(json.dumps(e.detail, default=str))
        h = entry_hash(prev, e.at, e.actor, e.action, e.entity, e.entity_id, detail)
        rows.append((e.at, e.actor, e.action, e.entity, e.entity_id, detail, prev, h))
        prev = h
    await conn.executemany(
        "INSERT INTO audit_log (at, actor, action, entity, entity_id, detail, prev_hash, hash)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        rows,
    )


@dataclass(slots=True)
class Verification:
    ok: bool
    entries: int
    first_bad_id: int | None = None
    reason: str = ""


async def verify(conn: asyncpg.Connection) -> Verification:
    """Recompute the whole chain; report the first entry that does not match."""
    prev = GENESIS
    n = 0
    async with conn.transaction():
        async for r in conn.cursor("SELECT * FROM audit_log ORDER BY id"):
            n += 1
            if r["prev_hash"] != prev:
                return Verification(False, n, r["id"], "prev_hash does not match the previous entry")
            h = entry_hash(prev, r["at"], r["actor"], r["action"], r["entity"], r["entity_id"], r["detail"])
            if h != r["hash"]:
                return Verification(False, n, r["id"], "entry content does not match its hash")
            prev = h
    return Verification(True, n)
