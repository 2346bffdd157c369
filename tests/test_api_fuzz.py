"""The API's own OpenAPI schema, fuzzed with schemathesis against a real uvicorn (port 0) logged in
as an admin: valid and invalid requests for every operation, and not one answer is a 500.

The number of examples per operation shrinks as the API grows, so the run stays well under a minute;
the counts are printed (pytest -s) and asserted to be non-trivial."""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from console import account, guarded_object, user
from console.config import Settings
from tests.util import serve
from web import auth

# CI runs the same examples every time (a red CI means a change broke something, not bad luck);
# KUZET_FUZZ_EXPLORE=1 draws new ones on every run, which is how the fuzzer finds new bugs.
EXPLORE = os.environ.get("KUZET_FUZZ_EXPLORE") == "1"
PASSWORD = "fuzz-admin-pass-1"
BUDGET = 400  # requests in all, over both modes and every operation
SKIP = {("POST", "/api/logout")}  # would end the fuzzer's own session


def _fuzz(url: str, spec: dict[str, Any], cookie: str) -> tuple[Counter[str], list[str]]:
    schema = schemathesis.openapi.from_dict(spec)
    ops = [r.ok() for r in schema.get_all_operations()]
    ops = [op for op in ops if (op.method.upper(), op.path) not in SKIP]
    per = max(3, BUDGET // (2 * max(1, len(ops))))
    session = requests.Session()
    session.cookies.set(auth.COOKIE, cookie)
    counts: Counter[str] = Counter()
    failures: list[str] = []

    def relogin() -> None:
        r = session.post(url + "/api/login", json={"username": "fuzz-admin", "password": PASSWORD}, timeout=10)
        assert r.status_code == 200, r.text

    for op in ops:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            @given(case=op.as_strategy(generation_mode=mode))
            @settings(max_examples=per, deadline=None, database=None, phases=[Phase.generate],
                      suppress_health_check=list(HealthCheck), derandomize=not EXPLORE)
            def run(case: Any) -> None:
                try:
                    response = case.call(base_url=url, session=session, timeout=15)
                except (requests.RequestException, ValueError, UnicodeError):
                    counts["not sendable"] += 1  # the HTTP client refused the generated request
                    return
                counts["requests"] += 1
                counts[f"{response.status_code // 100}xx"] += 1
                if response.status_code >= 500:
                    failures.append(f"{case.method} {case.path} -> {response.status_code}:"
                                    f" {case.as_curl_command()} :: {response.text[:200]}")
                if response.status_code == 401 and case.path != "/api/login":
                    relogin()

            try:
                run()
            except Unsatisfiable:  # nothing to get wrong (an operation without parameters or body)
                counts[f"operations without {mode.value} cases"] += 1
                continue
            counts[f"operations {mode.value}"] += 1
    counts["examples per operation and mode"] = per
    return counts, failures


async def _empty(owner_dsn: str) -> None:
    owner = await asyncpg.connect(owner_dsn)
    try:
        tables = await owner.fetchval(
            "SELECT string_agg(quote_ident(tablename), ', ') FROM pg_tables WHERE schemaname = 'public'"
            " AND tablename NOT IN ('schema_migrations', 'kuzet_append_only')")
        await owner.execute(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
    finally:
        await owner.close()


async def test_openapi_fuzz_finds_no_server_error(pool: asyncpg.Pool, migrated: str, owner_dsn: str,
                                                  tmp_path: Path) -> None:
    # Ids far from the small numbers the fuzzer likes, so it edits its own objects, not its admin.
    owner = await asyncpg.connect(owner_dsn)
    try:
        await owner.execute("SELECT setval('users_id_seq', 900000)")
    finally:
        await owner.close()
    await user.create(pool, "fuzz-admin", PASSWORD, "admin", lang="en")
    for i in range(3):
        oid = await guarded_object.create(pool, f"Объект {i}", address="Алматы")
        await account.create(pool, f"{7000 + i}", object_id=oid)
    async with serve(pool, migrated, Settings(home=tmp_path)) as url:
        async with httpx.AsyncClient(base_url=url, timeout=10) as c:
            r = await c.post("/api/login", json={"username": "fuzz-admin", "password": PASSWORD})
            assert r.status_code == 200, r.text
            cookie = c.cookies[auth.COOKIE]
            spec = (await c.get("/api/openapi.json")).json()
        started = time.monotonic()
        counts, failures = await asyncio.to_thread(_fuzz, url, spec, cookie)
        seconds = time.monotonic() - started
    await _empty(owner_dsn)  # what the fuzzer wrote (settings, keys, users) must not reach later tests
    print(f"\nschemathesis: {dict(counts)} in {seconds:.1f} s")
    assert not failures, "\n".join(failures[:10])
    assert counts["requests"] >= 100 and counts["2xx"] > 0 and counts["4xx"] > 0, counts
