"""`kuzet user ...` and `kuzet import objects` as a post's admin runs them: real processes against the
test database (KUZET_DATABASE_URL), and the import's all-or-nothing rule on large files."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

from console import importer
from console import user as users

GOOD = """name;address;latitude;longitude;account;supervision_interval;terror_vulnerable;zones;keyholders;contacts
"Алматы, аптека";"Алматы, ул. Толе би, 180";43,254;76,889;5001;3600;нет;"001=Дверь; 002=Окна";Айгүл|+7 701 555 12 34;Охрана|+7 727 000 00 00
Школа № 5;Астана;51.1;71.4;5002;;да;;;
"""

BAD = """name,address,latitude,longitude,account,aes_key,supervision_interval
Ok,addr,43.2,76.9,6001,,
,addr,95,76.9,6002,,
Dup,addr,43.2,,6001,,
Key,addr,,,6004,abc,
Interval,addr,,,6005,,5
Fine again,addr,,,6006,,600
"""


def kuzet(dsn: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KUZET_DATABASE_URL": dsn, "PYTHONWARNINGS": "ignore"}
    return subprocess.run([sys.executable, "-m", "kuzet", *args], input=stdin, capture_output=True, text=True,
                          env=env, timeout=60, stdin=None if stdin is not None else subprocess.DEVNULL)


async def test_user_add_generates_a_password_without_a_terminal(pool: asyncpg.Pool, migrated: str) -> None:
    r = kuzet(migrated, "user", "add", "boss", "--role", "admin", "--full-name", "Бас әкімші", "--lang", "kk")
    assert r.returncode == 0, r.stderr
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("password: ")]
    assert len(lines) == 1
    password = lines[0].removeprefix("password: ")
    assert len(password) >= 12
    found = await users.authenticate(pool, "boss", password)
    assert found is not None and found.role == "admin" and found.lang == "kk" and found.full_name == "Бас әкімші"
    entry = await pool.fetchrow("SELECT actor, detail FROM audit_log WHERE action = 'user.created'")
    assert entry["actor"].startswith("cli:") and entry["detail"]["username"] == "boss"
    assert password not in str(entry["detail"])


async def test_user_add_passwd_disable_list(pool: asyncpg.Pool, migrated: str) -> None:
    r = kuzet(migrated, "user", "add", "op1", "--role", "operator", "--password-stdin", stdin="first-pass-1\n")
    assert r.returncode == 0, r.stderr
    assert "password:" not in r.stdout  # given, so not printed
    op = await users.authenticate(pool, "op1", "first-pass-1")
    assert op is not None
    async with pool.acquire() as conn:
        await users.open_session(conn, op)

    r = kuzet(migrated, "user", "add", "op1", "--role", "operator", "--password-stdin", stdin="other-pass-1\n")
    assert r.returncode == 1 and "already exists" in r.stderr
    r = kuzet(migrated, "user", "add", "op2", "--role", "operator", "--password-stdin", stdin="short\n")
    assert r.returncode == 1 and "at least 8" in r.stderr
    r = kuzet(migrated, "user", "add", "op3", "--role", "pilot", "--password-stdin", stdin="long-enough-1\n")
    assert r.returncode == 2 and "invalid choice" in r.stderr
    assert await pool.fetchval("SELECT count(*) FROM users") == 1

    r = kuzet(migrated, "user", "passwd", "op1", "--password-stdin", stdin="second-pass-2\n")
    assert r.returncode == 0, r.stderr
    assert await users.authenticate(pool, "op1", "first-pass-1") is None
    assert await users.authenticate(pool, "op1", "second-pass-2") is not None
    assert await pool.fetchval("SELECT count(*) FROM sessions") == 0  # a new password ends the sessions

    async with pool.acquire() as conn:
        await users.open_session(conn, op)
    r = kuzet(migrated, "user", "disable", "op1")
    assert r.returncode == 0, r.stderr
    assert await users.authenticate(pool, "op1", "second-pass-2") is None
    assert await pool.fetchval("SELECT count(*) FROM sessions") == 0
    r = kuzet(migrated, "user", "disable", "nobody")
    assert r.returncode == 1 and "no user" in r.stderr

    r = kuzet(migrated, "user", "list")
    assert r.returncode == 0
    assert any(ln.split()[:4] == ["op1", "operator", "ru", "no"] for ln in r.stdout.splitlines()), r.stdout
    actions = [a for (a,) in await pool.fetch("SELECT action FROM audit_log WHERE actor LIKE 'cli:%' ORDER BY id")]
    assert actions == ["user.created", "user.password-set", "user.updated", "user.disabled"]


async def test_import_objects_cli_all_or_nothing(pool: asyncpg.Pool, migrated: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(BAD, encoding="utf-8")
    r = kuzet(migrated, "import", "objects", str(bad))
    assert r.returncode == 1
    listed = [ln.strip() for ln in r.stderr.splitlines() if ln.strip().startswith("line ")]
    assert listed == [
        "line 3, column name: is required",
        "line 3, column latitude: 95 is outside -90..90",
        "line 4, column longitude: give both latitude and longitude, or neither",
        "line 4, column account: account #6001 is also on line 2",
        "line 5, column aes_key: a hex key has only the digits 0-9 and A-F (hex: 32, 48 or 64 hex digits)",
        "line 6, column supervision_interval: is outside 10..604800 seconds",
    ], r.stderr
    assert await pool.fetchval("SELECT count(*) FROM guarded_objects") == 0
    assert await pool.fetchval("SELECT count(*) FROM accounts") == 0

    good = tmp_path / "good.csv"
    good.write_text(GOOD.replace("Айгүл", "Айгуль"), encoding="cp1251")  # as Excel saves it on Russian Windows
    r = kuzet(migrated, "import", "objects", str(good))
    assert r.returncode == 0, r.stderr
    assert "imported 2 objects" in r.stdout
    card = await pool.fetchrow("SELECT o.*, a.number, a.supervision_interval FROM guarded_objects o"
                               " JOIN accounts a ON a.object_id = o.id WHERE a.number = '5001'")
    assert card["name"] == "Алматы, аптека" and card["latitude"] == pytest.approx(43.254)
    assert card["supervision_interval"] == 3600 and card["terror_vulnerable"] is False
    zones = await pool.fetch("SELECT z.number, z.name FROM zones z JOIN accounts a ON a.id = z.account_id"
                             " WHERE a.number = '5001' ORDER BY z.number")
    assert [tuple(z) for z in zones] == [("001", "Дверь"), ("002", "Окна")]
    contacts = await pool.fetch("SELECT name, phone, role, call_order FROM contacts WHERE object_id = $1"
                                " ORDER BY call_order", card["id"])
    assert [tuple(c) for c in contacts] == [("Айгуль", "+7 701 555 12 34", "keyholder", 1),
                                            ("Охрана", "+7 727 000 00 00", "contact", 2)]
    assert await pool.fetchval("SELECT terror_vulnerable FROM guarded_objects WHERE name = 'Школа № 5'") is True

    # the same file again: both accounts exist now
    r = kuzet(migrated, "import", "objects", str(good))
    assert r.returncode == 1
    assert "line 2, column account: account #5001 already exists in Kuzet" in r.stderr
    assert "line 3, column account: account #5002 already exists in Kuzet" in r.stderr
    assert await pool.fetchval("SELECT count(*) FROM guarded_objects") == 2
    assert await pool.fetchval("SELECT count(*) FROM audit_log WHERE action = 'object.imported'") == 2


def big_csv(n: int, first: int = 100000) -> str:
    lines = ["name,address,latitude,longitude,account,supervision_interval,zones,keyholders"]
    for i in range(n):
        lines.append(f'Object {i},"Street {i}",{43 + i / 10000:.5f},{76 + i / 10000:.5f},{first + i},3600,'
                     f'"001=Door;002=Window;003=Hall",Owner {i}|+7 701 {i:07d}')
    return "\n".join(lines) + "\n"


async def test_a_large_file_imports_whole_or_not_at_all(pool: asyncpg.Pool) -> None:
    text = big_csv(3000)
    broken = text.splitlines()
    broken[1500] = broken[1500].replace(",3600,", ",often,")  # line 1501
    broken[2999] = broken[2999].replace("102998", "100005")  # line 3000 repeats line 7's account
    async with pool.acquire() as conn:
        result = await importer.import_csv(conn, "\n".join(broken) + "\n", "tester")
        assert not result.ok and result.imported == 0 and result.rows == 3000
        assert [(p.line, p.column, p.code) for p in result.problems] == [
            (1501, "supervision_interval", "not_an_integer"), (3000, "account", "duplicate_in_file")]
        assert await conn.fetchval("SELECT count(*) FROM guarded_objects") == 0

        phases: list[str] = []
        result = await importer.import_csv(conn, text, "tester", progress=lambda ph, _d, _t: phases.append(ph))
        assert result.ok and result.imported == 3000
        assert "checked" in phases and phases[-1] == "done"
        assert await conn.fetchval("SELECT count(*) FROM accounts") == 3000
        assert await conn.fetchval("SELECT count(*) FROM zones") == 9000
        assert await conn.fetchval("SELECT count(*) FROM contacts") == 3000
        # every imported object is audited, and the chain still verifies
        from console import audit
        assert await conn.fetchval("SELECT count(*) FROM audit_log WHERE action = 'object.imported'") == 3000
        assert (await audit.verify(conn)).ok


async def test_header_problems_are_reported_on_line_1(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        r = await importer.import_csv(conn, "name,adress,lat\nX,Y,1\n", "tester")
    assert [(p.line, p.column, p.code) for p in r.problems] == [
        (1, "adress", "unknown_column"), (1, "lat", "unknown_column"), (1, "account", "missing_column")]
    async with pool.acquire() as conn:
        r = await importer.import_csv(conn, "", "tester")
    assert [p.code for p in r.problems] == ["empty"]
