"""Users, roles, passwords (argon2) and login sessions.

A session is a random token in an HttpOnly cookie; only its sha256 is stored, so a copy of the
database does not let anyone log in.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from console import audit, edit

ROLES = ("admin", "operator", "crew", "auditor")
# NOTIFY channel (payload: a user id) when a session of that user ends or the user is disabled,
# deleted or given another role (triggers of migration 0011): the web then rechecks that user's
# websockets at once.
CHANNEL_SESSIONS = "kuzet_sessions"
LANGS = ("kk", "ru", "en")
USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{1,63}$")
PASSWORD_MIN = 8
PASSWORD_MAX = 1024
SESSION_HOURS = 12  # one control-room shift

_hasher = PasswordHasher()


@dataclass(frozen=True, slots=True)
class User:
    id: int
    username: str
    full_name: str
    role: str
    lang: str
    group_id: int | None


def _user(r: asyncpg.Record) -> User:
    return User(r["id"], r["username"], r["full_name"], r["role"], r["lang"], r["group_id"])


async def create(conn: asyncpg.Connection | asyncpg.Pool, username: str, password: str, role: str, *,
                 full_name: str = "", lang: str = "ru", group_id: int | None = None) -> int:
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}")
    user_id: int = await conn.fetchval(
        "INSERT INTO users (username, full_name, role, password_hash, lang, group_id)"
        " VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        username, full_name, role, _hasher.hash(password), lang, group_id)
    return user_id


async def authenticate(conn: asyncpg.Connection | asyncpg.Pool, username: str, password: str) -> User | None:
    r = await conn.fetchrow("SELECT * FROM users WHERE username = $1 AND active", username)
    if r is None:
        _hasher.hash(password)  # same cost as a real check: no user enumeration by timing
        return None
    try:
        _hasher.verify(r["password_hash"], password)
    except (VerificationError, InvalidHashError):
        return None
    return _user(r)


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


async def open_session(conn: asyncpg.Connection, user: User) -> str:
    token = secrets.token_urlsafe(32)
    async with conn.transaction():
        await conn.execute(
            "INSERT INTO sessions (token_hash, user_id, expires_at) VALUES ($1, $2, $3)",
            _digest(token), user.id, datetime.now(UTC) + timedelta(hours=SESSION_HOURS))
        await audit.append(conn, [audit.Entry(user.username, "user.login", "user", str(user.id))])
    return token


async def session_user(conn: asyncpg.Connection | asyncpg.Pool, token: str) -> User | None:
    r = await conn.fetchrow(
        "SELECT u.* FROM sessions s JOIN users u ON u.id = s.user_id"
        " WHERE s.token_hash = $1 AND s.expires_at > now() AND u.active", _digest(token))
    return _user(r) if r else None


async def close_session(conn: asyncpg.Connection, token: str, user: User) -> None:
    async with conn.transaction():
        await conn.execute("DELETE FROM sessions WHERE token_hash = $1", _digest(token))
        await audit.append(conn, [audit.Entry(user.username, "user.logout", "user", str(user.id))])


# -- administration (CLI and admin pages) -----------------------------------------------------------


def generate_password() -> str:
    """A password to hand over once: 16 URL-safe characters (96 bits)."""
    return secrets.token_urlsafe(12)


def check_password(password: str) -> None:
    if len(password) < PASSWORD_MIN:
        raise edit.Invalid(f"the password must be at least {PASSWORD_MIN} characters", field="password",
                           code="password_short", min_length=PASSWORD_MIN)
    if len(password) > PASSWORD_MAX:
        raise edit.Invalid(f"the password must be at most {PASSWORD_MAX} characters", field="password",
                           code="string_too_long", max_length=PASSWORD_MAX)


def _check_fields(username: str | None = None, role: str | None = None, lang: str | None = None) -> None:
    if username is not None and not USERNAME.match(username):
        raise edit.Invalid("a username is 2-64 characters: letters, digits and . _ @ - (starting with a letter"
                           " or digit)", field="username", code="username_format")
    if role is not None and role not in ROLES:
        raise edit.Invalid(f"unknown role {role!r}; one of {', '.join(ROLES)}", field="role", code="literal_error",
                           expected=", ".join(ROLES))
    if lang is not None and lang not in LANGS:
        raise edit.Invalid(f"unknown language {lang!r}; one of {', '.join(LANGS)}", field="lang",
                           code="literal_error", expected=", ".join(LANGS))


def public(r: asyncpg.Record) -> dict[str, Any]:
    """A user as the admin pages show it (never the password hash)."""
    return {k: r[k] for k in ("id", "username", "full_name", "role", "lang", "group_id", "active", "version",
                              "created_at", "updated_at")}


async def list_users(conn: asyncpg.Connection | asyncpg.Pool) -> list[dict[str, Any]]:
    rows = await conn.fetch("SELECT * FROM users ORDER BY active DESC, username")
    return [public(r) for r in rows]


async def add(conn: asyncpg.Connection, actor: str, username: str, password: str, role: str, *,
              full_name: str = "", lang: str = "ru", group_id: int | None = None) -> dict[str, Any]:
    """Create a user (audited). `edit.Conflict` if the username is taken."""
    _check_fields(username, role, lang)
    check_password(password)
    async with conn.transaction():
        if await conn.fetchval("SELECT 1 FROM users WHERE lower(username) = lower($1)", username):
            raise edit.Conflict(f"user {username!r} already exists", field="username", code="user_exists",
                                value=username)
        user_id = await create(conn, username, password, role, full_name=full_name, lang=lang, group_id=group_id)
        await audit.append(conn, [audit.Entry(actor, "user.created", "user", str(user_id), {
            "username": username, "role": role, "full_name": full_name, "lang": lang, "group_id": group_id})])
        row = await conn.fetchrow("SELECT * FROM users WHERE id = $1", user_id)
    return public(row)


async def close_user_sessions(conn: asyncpg.Connection, user_id: int) -> int:
    """End every session of a user (disabled, password reset): their next request is "not logged in"
    and the board's websocket closes at its next session check."""
    n: int = await conn.fetchval("WITH d AS (DELETE FROM sessions WHERE user_id = $1 RETURNING 1)"
                                 " SELECT count(*) FROM d", user_id)
    return n


async def _guard_last_admin(conn: asyncpg.Connection, row: asyncpg.Record, role: str, active: bool) -> None:
    if row["role"] == "admin" and row["active"] and (role != "admin" or not active):
        others = await conn.fetchval(
            "SELECT count(*) FROM users WHERE role = 'admin' AND active AND id <> $1", row["id"])
        if not others:
            raise edit.Conflict("this is the last active admin: make another admin first", field="role",
                                code="last_admin")


async def update(conn: asyncpg.Connection, actor: str, user_id: int, version: int | None, *,
                 full_name: str | None = None, role: str | None = None, lang: str | None = None,
                 active: bool | None = None, group_id: int | None | bool = False) -> dict[str, Any]:
    """Change a user (audited, before/after). Disabling ends their sessions. The last active admin
    cannot be demoted or disabled. `group_id=False` leaves the response group as it is."""
    _check_fields(role=role, lang=lang)
    async with conn.transaction():
        row = await edit.locked(conn, "users", "user", user_id, version)
        changes: dict[str, Any] = {}
        for k, v in (("full_name", full_name), ("role", role), ("lang", lang), ("active", active)):
            if v is not None:
                changes[k] = v
        if group_id is not False:
            changes["group_id"] = group_id
        await _guard_last_admin(conn, row, changes.get("role", row["role"]), changes.get("active", row["active"]))
        new, detail = await edit.update(conn, table="users", entity="user", row_id=user_id, version=version,
                                        changes=changes, actor=actor, action="user.updated",
                                        note={"username": row["username"]})
        if row["active"] and not new["active"]:
            n = await close_user_sessions(conn, user_id)
            await audit.append(conn, [audit.Entry(actor, "user.disabled", "user", str(user_id),
                                                  {"username": row["username"], "sessions_closed": n})])
    return public(new)


async def set_password(conn: asyncpg.Connection, actor: str, user_id: int, password: str,
                       version: int | None = None) -> dict[str, Any]:
    """Set a new password (audited, never the password itself); the user's sessions end."""
    check_password(password)
    async with conn.transaction():
        row = await edit.locked(conn, "users", "user", user_id, version)
        new = await conn.fetchrow(
            "UPDATE users SET password_hash = $2, version = version + 1, updated_at = now() WHERE id = $1 RETURNING *",
            user_id, _hasher.hash(password))
        n = await close_user_sessions(conn, user_id)
        await audit.append(conn, [audit.Entry(actor, "user.password-set", "user", str(user_id),
                                              {"username": row["username"], "sessions_closed": n})])
    return public(new)


async def id_of(conn: asyncpg.Connection | asyncpg.Pool, username: str) -> int:
    user_id = await conn.fetchval("SELECT id FROM users WHERE username = $1", username)
    if user_id is None:
        raise edit.NotFound(f"no user {username!r}", field="username")
    return int(user_id)
