"""The audit log: append-only and hash-chained, so that tampering with history is detectable.

Each entry's hash is sha256(previous hash + canonical JSON of the entry); the first entry chains
from 32 zero bytes. Appends take a transaction-scoped advisory lock so the chain never forks.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
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


ANCHORS_FILE = "audit-anchors.jsonl"


@dataclass(frozen=True, slots=True)
class Anchor:
    """The chain's state at one moment, kept outside the database (in `$KUZET_HOME`, in backups and
    evidence exports): a later chain must still have `last_hash` as its entry number `count`."""

    count: int  # entries in the log
    last_id: int  # id of the newest entry (0 when empty)
    last_hash: str  # its hash, hex ("" when empty)
    at: datetime  # when the anchor was taken
    reason: str = ""  # why: "stop", "backup", "evidence export", ...

    def as_dict(self) -> dict[str, Any]:
        return {"count": self.count, "last_id": self.last_id, "last_hash": self.last_hash,
                "at": self.at.astimezone(UTC).isoformat(), "reason": self.reason}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Anchor:
        return cls(int(d["count"]), int(d["last_id"]), str(d["last_hash"]),
                   datetime.fromisoformat(str(d["at"])), str(d.get("reason", "")))


async def anchor(conn: asyncpg.Connection | asyncpg.Pool) -> Anchor:
    """The log's count and newest entry, read in one statement (one snapshot)."""
    r = await conn.fetchrow(
        "SELECT (SELECT count(*) FROM audit_log) AS n, l.id, l.hash"
        " FROM (SELECT 1) one LEFT JOIN LATERAL (SELECT id, hash FROM audit_log ORDER BY id DESC LIMIT 1) l ON true")
    assert r is not None
    return Anchor(int(r["n"]), int(r["id"] or 0), bytes(r["hash"]).hex() if r["hash"] is not None else "",
                  datetime.now(UTC))


def write_anchor(home: Path, anchor: Anchor, reason: str) -> None:
    """Append the anchor as one JSON line to `home/audit-anchors.jsonl` (mode 0600), synced to disk."""
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    line = json.dumps({**anchor.as_dict(), "reason": reason}, ensure_ascii=False) + "\n"
    fd = os.open(home / ANCHORS_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, line.encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def read_anchors(path: Path) -> list[Anchor]:
    """Anchors from a file: JSON lines (audit-anchors.jsonl), or one JSON object or list of them
    (as a backup or an evidence export carries them)."""
    text = path.read_text(encoding="utf-8").strip()
    if not text:
        return []
    try:
        whole = json.loads(text)
    except json.JSONDecodeError:
        whole = None
    if isinstance(whole, dict):
        return [Anchor.from_dict(whole.get("audit_anchor", whole))]
    if isinstance(whole, list):
        return [Anchor.from_dict(d) for d in whole]
    return [Anchor.from_dict(json.loads(line)) for line in text.splitlines() if line.strip()]


@dataclass(slots=True)
class Verification:
    ok: bool
    entries: int
    first_bad_id: int | None = None
    reason: str = ""  # the first problem
    problems: list[str] = field(default_factory=list)  # every problem found, in plain words
    anchors_checked: int = 0


def _when(a: Anchor) -> str:
    return a.at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") + (f", {a.reason}" if a.reason else "")


async def verify(conn: asyncpg.Connection, anchors: Sequence[Anchor] = ()) -> Verification:
    """Recompute the whole chain (every hash link) and hold it against `anchors`: each anchor's
    entry number `count` must still exist and have the anchored hash. A deleted tail leaves fewer
    entries than an anchor counted; a rewritten chain (every hash recomputed) no longer has the
    anchored hash."""
    by_position: dict[int, list[Anchor]] = {}
    for a in anchors:
        by_position.setdefault(a.count, []).append(a)
    problems: list[str] = []
    first_bad: int | None = None
    prev = GENESIS
    n = 0
    # One snapshot for the whole walk (a cursor needs a transaction; inside the caller's if it has one).
    tx = conn.transaction() if conn.is_in_transaction() else conn.transaction(isolation="repeatable_read",
                                                                               readonly=True)
    async with tx:
        async for r in conn.cursor("SELECT * FROM audit_log ORDER BY id"):
            n += 1
            if r["prev_hash"] != prev:
                problems.append(f"entry id {r['id']} (#{n}): its prev_hash does not match the hash of the entry"
                                " before it: an entry before it was removed or changed")
                first_bad = first_bad or r["id"]
            h = entry_hash(r["prev_hash"], r["at"], r["actor"], r["action"], r["entity"], r["entity_id"], r["detail"])
            if h != r["hash"]:
                problems.append(f"entry id {r['id']} (#{n}): its content does not match its hash: the entry was"
                                " changed after it was written")
                first_bad = first_bad or r["id"]
            for a in by_position.get(n, ()):
                if r["id"] != a.last_id or bytes(r["hash"]).hex() != a.last_hash:
                    problems.append(
                        f"anchor of {_when(a)}: entry #{n} was id {a.last_id} with hash {a.last_hash[:16]}..., now it"
                        f" is id {r['id']} with hash {bytes(r['hash']).hex()[:16]}...: the chain was rewritten, or"
                        f" entries removed, at or before #{n}")
            prev = r["hash"]
    for a in anchors:
        if a.count > n:
            problems.append(f"anchor of {_when(a)} counted {a.count} entries (newest id {a.last_id}), the log has"
                            f" {n}: {a.count - n} entries after #{n} were deleted")
        elif a.count == 0 and a.last_hash:
            problems.append(f"anchor of {_when(a)} is malformed (no entries but a hash)")
    return Verification(not problems, n, first_bad, problems[0] if problems else "", problems, len(anchors))
