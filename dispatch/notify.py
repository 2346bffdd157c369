"""The dispatch channel: tells web processes (board and crew phones) what changed.

Payload (JSON, sent on commit): {"groups": [ids], "assignments": [ids], "alerts": [{...}]}. The
hub reads the changed rows itself; a lost notification is made good by the next snapshot.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import asyncpg

CHANNEL_DISPATCH = "kuzet_dispatch"


async def notify(conn: asyncpg.Connection, *, groups: Iterable[int] = (), assignments: Iterable[int] = (),
                 alerts: Iterable[dict[str, Any]] = ()) -> None:
    payload = {"groups": sorted(set(groups)), "assignments": sorted(set(assignments)), "alerts": list(alerts)}
    if payload["groups"] or payload["assignments"] or payload["alerts"]:
        await conn.execute("SELECT pg_notify($1, $2)", CHANNEL_DISPATCH, json.dumps(payload, default=str))
