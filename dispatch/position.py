"""Where the groups are: positions reported by the crews' phones, straight-line distance and ETA."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

import asyncpg

from dispatch import notify

EARTH_RADIUS_KM = 6371.0088  # mean Earth radius (IUGG)


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance; the issue asks for straight-line distance, not road distance."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


def eta_minutes(distance_km: float, speed_kmh: float) -> float:
    return distance_km / speed_kmh * 60.0


async def record(conn: asyncpg.Connection, group_id: int, user_id: int | None, latitude: float,
                 longitude: float, accuracy: float | None, at: datetime | None = None) -> dict[str, Any]:
    """Store one position (not audited: a position is a measurement, not a change an operator makes;
    the table itself is the record) and tell the board."""
    async with conn.transaction():
        r = await conn.fetchrow(
            "INSERT INTO group_positions (group_id, user_id, latitude, longitude, accuracy, at)"
            " VALUES ($1, $2, $3, $4, $5, coalesce($6, now())) RETURNING id, latitude AS lat, longitude AS lon,"
            " accuracy, at", group_id, user_id, latitude, longitude, accuracy, at)
        await notify.notify(conn, groups=[group_id])
    return dict(r)


async def latest(conn: asyncpg.Connection | asyncpg.Pool, group_id: int) -> dict[str, Any] | None:
    r = await conn.fetchrow("SELECT latitude AS lat, longitude AS lon, accuracy, at FROM group_positions"
                            " WHERE group_id = $1 ORDER BY at DESC LIMIT 1", group_id)
    return dict(r) if r else None


async def track(conn: asyncpg.Connection | asyncpg.Pool, group_id: int, since: datetime,
                until: datetime | None = None, limit: int = 5000) -> list[dict[str, Any]]:
    rows = await conn.fetch("SELECT latitude AS lat, longitude AS lon, accuracy, at, user_id FROM group_positions"
                            " WHERE group_id = $1 AND at >= $2 AND ($3::timestamptz IS NULL OR at <= $3)"
                            " ORDER BY at LIMIT $4", group_id, since, until, limit)
    return [dict(r) for r in rows]
