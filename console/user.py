"""Users, roles, passwords (argon2) and login sessions.

A session is a random token in an HttpOnly cookie; only its sha256 is stored, so a copy of the
database does not let anyone log in.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from console import audit

ROLES = ("admin", "operator", "crew", "auditor")
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
