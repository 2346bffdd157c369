"""Edits by the post's admins: optimistic concurrency, before/after audit, and the errors they give.

Every editable row (objects, accounts, users) has a `version`. An edit says which version it read;
if the row has moved on since, nothing changes and `Stale` tells the caller who must reload (two
admins editing the same object never silently overwrite each other). Every change is audited with
the fields before and after, in the same transaction.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from console import audit

SECRET_FIELDS = frozenset({"aes_key", "password_hash"})  # audited as "changed", never by value


class EditError(Exception):
    """Base of the errors an admin's edit can end with; `code` names the problem for translation."""

    code = "invalid"

    def __init__(self, message: str, *, field: str = "", code: str = "", **ctx: Any) -> None:
        super().__init__(message)
        self.field = field
        self.ctx = ctx
        if code:
            self.code = code


class NotFound(EditError):
    code = "not_found"


class Stale(EditError):
    """The row changed since the editor read it."""

    code = "stale"


class Invalid(EditError):
    """A value that passed the form's checks but not the post's rules (duplicate name, last admin ...)."""


class Conflict(EditError):
    code = "conflict"


def _shown(column: str, value: Any) -> Any:
    if column in SECRET_FIELDS:
        return "(set)" if value else None
    if isinstance(value, datetime):
        return value.isoformat()
    return value


async def locked(conn: asyncpg.Connection, table: str, entity: str, row_id: int, version: int | None) -> asyncpg.Record:
    """The row, locked for this transaction; `Stale` if `version` is given and is not the current one."""
    row = await conn.fetchrow(f"SELECT * FROM {table} WHERE id = $1 FOR UPDATE", row_id)
    if row is None:
        raise NotFound(f"{entity} {row_id} does not exist", field="id")
    if version is not None and row["version"] != version:
        raise Stale(f"{entity} {row_id} was changed by someone else (now version {row['version']}, your copy is"
                    f" version {version}); reload it and edit again", field="version",
                    current=row["version"], updated_at=row["updated_at"].isoformat())
    return row


async def update(conn: asyncpg.Connection, *, table: str, entity: str, row_id: int, version: int | None,
                 changes: dict[str, Any], actor: str, action: str, note: dict[str, Any] | None = None,
                 force_bump: bool = False) -> tuple[asyncpg.Record, dict[str, Any]]:
    """Apply `changes` to one row if it is still at `version`; audit before/after of what changed.
    Call inside a transaction. Returns the new row and the audited detail (empty when nothing changed
    and `force_bump` is false)."""
    row = await locked(conn, table, entity, row_id, version)
    changed = {k: v for k, v in changes.items() if row[k] != v}
    if not changed and not force_bump:
        return row, {}
    cols = list(changed)
    sets = "".join(f", {c} = ${i + 2}" for i, c in enumerate(cols))
    new = await conn.fetchrow(
        f"UPDATE {table} SET version = version + 1, updated_at = now(){sets} WHERE id = $1 RETURNING *",
        row_id, *[changed[c] for c in cols])
    assert new is not None
    detail: dict[str, Any] = {"version": new["version"],
                              "before": {c: _shown(c, row[c]) for c in cols},
                              "after": {c: _shown(c, new[c]) for c in cols}, **(note or {})}
    await audit.append(conn, [audit.Entry(actor, action, entity, str(row_id), detail)])
    return new, detail


SERVICE_MAX_DAYS = 90  # a longer "service" is a contract ending, not maintenance


async def set_service(conn: asyncpg.Connection, *, table: str, entity: str, row_id: int, version: int | None,
                      until: datetime | None, reason: str, actor: str) -> asyncpg.Record:
    """Take an object or account out of guard for service until `until` (with a reason), or put it
    back now (`until` None). Signals meanwhile are stored and marked and raise no alarm; the
    supervision sweep puts it back by itself when `until` passes. Call inside a transaction."""
    if until is not None:
        now = await conn.fetchval("SELECT now()")
        if until <= now:
            raise Invalid("the end of the service period must be in the future", field="until", code="service_past")
        if (until - now).days >= SERVICE_MAX_DAYS:
            raise Invalid(f"a service period is at most {SERVICE_MAX_DAYS} days", field="until", code="service_too_long",
                          max_days=SERVICE_MAX_DAYS)
        if not reason.strip():
            raise Invalid("say why it is taken out of guard", field="reason", code="reason_required")
    changes = {"service_until": until, "service_reason": reason.strip() if until else ""}
    new, _ = await update(conn, table=table, entity=entity, row_id=row_id, version=version, changes=changes,
                          actor=actor, action=f"{entity}.service" if until else f"{entity}.service-ended")
    return new
