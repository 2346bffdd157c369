"""`kuzet user ...` and `kuzet import objects FILE.csv`: setting up a post without SQL.

They work on a fresh data directory: the embedded database is started (or KUZET_DATABASE_URL is
used) and migrated, as `kuzet db` does. Every change is audited with the actor "cli:<os user>".
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import os
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg

from console import config, db, edit, importer
from console import user as users
from kuzet.runtime import DOMAINS


def actor() -> str:
    try:
        name = getpass.getuser()
    except Exception:  # no passwd entry (some containers)
        name = str(os.getuid())
    return f"cli:{name}"


@contextlib.asynccontextmanager
async def database(settings: config.Settings) -> AsyncIterator[asyncpg.Connection]:
    """A connection to the post's database as the runtime role, after migrating as the schema's
    owner, as `kuzet db` does (the embedded server runs only meanwhile)."""
    embedded = None
    if settings.database_url:
        owner_dsn, app_dsn = settings.database_url, settings.app_database_url or settings.database_url
    else:
        embedded = db.EmbeddedServer(settings.pgdata)
        owner_dsn = await asyncio.to_thread(embedded.start)
        app_dsn = embedded.app_dsn
    try:
        await db.wait_ready(owner_dsn)
        runtime_role = await db.role_of(app_dsn) if app_dsn != owner_dsn else db.RUNTIME_ROLE
        conn = await db.connect(owner_dsn)
        try:
            await db.migrate(conn, DOMAINS, runtime_role=runtime_role)
        finally:
            await conn.close()
        conn = await db.connect(app_dsn)
        try:
            yield conn
        finally:
            await conn.close()
    finally:
        if embedded:
            await asyncio.to_thread(embedded.stop)


def add_arguments(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("user", help="users: add, passwd, disable, list")
    us = p.add_subparsers(dest="user_cmd", required=True)
    a = us.add_parser("add", help="add a user (asks for a password, reads it from stdin, or generates one)")
    a.add_argument("name")
    a.add_argument("--role", required=True, choices=users.ROLES)
    a.add_argument("--full-name", default="")
    a.add_argument("--lang", choices=users.LANGS, default="ru")
    a.add_argument("--password-stdin", action="store_true", help="read the password from the first line of stdin")
    a = us.add_parser("passwd", help="set a new password (the user's sessions end)")
    a.add_argument("name")
    a.add_argument("--password-stdin", action="store_true")
    a = us.add_parser("disable", help="disable a user (their sessions end at once)")
    a.add_argument("name")
    us.add_parser("list", help="list the users")
    for q in us.choices.values():
        q.add_argument("--config", help="TOML configuration (for the database)")
        q.add_argument("--home", help="data directory (default $KUZET_HOME or ./var)")

    p = sub.add_parser("import", help="import data from the old console")
    isub = p.add_subparsers(dest="import_what", required=True)
    a = isub.add_parser("objects", help="objects with their accounts, zones and contacts from a CSV file")
    a.add_argument("file", help="the CSV file (see README: Importing objects)")
    a.add_argument("--config")
    a.add_argument("--home")
    a.add_argument("--quiet", action="store_true", help="no progress lines")


def _password(args: argparse.Namespace, *, allow_generate: bool) -> tuple[str, bool]:
    """(password, generated): from stdin, from the terminal (asked twice), or generated."""
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n"), False
    if sys.stdin.isatty():
        first = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != first:
            raise edit.Invalid("the two passwords differ", field="password")
        return first, False
    if not allow_generate:
        raise edit.Invalid("no terminal to ask for the password: use --password-stdin", field="password")
    return users.generate_password(), True


async def user_main(args: argparse.Namespace, settings: config.Settings) -> int:
    try:
        password, generated = ("", False)
        if args.user_cmd in ("add", "passwd"):
            password, generated = _password(args, allow_generate=args.user_cmd == "add")
            users.check_password(password)  # before starting a database
        async with database(settings) as conn:
            who = actor()
            if args.user_cmd == "add":
                u = await users.add(conn, who, args.name, password, args.role, full_name=args.full_name,
                                    lang=args.lang)
                print(f"user {u['username']} ({u['role']}) created")
                if generated:
                    print(f"password: {password}")
                    print("(shown once: hand it over and have it changed)", file=sys.stderr)
            elif args.user_cmd == "passwd":
                await users.set_password(conn, who, await users.id_of(conn, args.name), password)
                print(f"password of {args.name} changed; their sessions ended")
            elif args.user_cmd == "disable":
                user_id = await users.id_of(conn, args.name)
                await users.update(conn, who, user_id, None, active=False)
                print(f"user {args.name} disabled; their sessions ended")
            else:
                rows = await users.list_users(conn)
                print(f"{'username':<20} {'role':<9} {'lang':<4} {'active':<6} full name")
                for r in rows:
                    print(f"{r['username']:<20} {r['role']:<9} {r['lang']:<4} {'yes' if r['active'] else 'no':<6}"
                          f" {r['full_name']}")
    except edit.EditError as exc:
        print(f"kuzet user {args.user_cmd}: {exc}", file=sys.stderr)
        return 1
    return 0


async def import_main(args: argparse.Namespace, settings: config.Settings) -> int:
    path = Path(args.file)
    try:
        text = importer.decode(path.read_bytes())
    except OSError as exc:
        print(f"kuzet import objects: cannot read {path}: {exc.strerror}", file=sys.stderr)
        return 1
    t0 = time.perf_counter()
    last = [0.0]

    def progress(phase: str, done: int, total: int) -> None:
        now = time.perf_counter()
        if not args.quiet and (phase != "checked" or now - last[0] > 0.2):
            last[0] = now
            print(f"  {phase}: {done}" + (f" of ~{total}" if phase == "checked" else ""), file=sys.stderr, flush=True)

    async with database(settings) as conn:
        result = await importer.import_csv(conn, text, actor(), source=path.name, progress=progress)
    if not result.ok:
        print(f"{path}: nothing imported; {len(result.problems) + result.more_problems} problem(s):", file=sys.stderr)
        for p in result.problems:
            print(f"  {p}", file=sys.stderr)
        if result.more_problems:
            print(f"  ... and {result.more_problems} more", file=sys.stderr)
        return 1
    print(f"imported {result.imported} objects from {path} in {time.perf_counter() - t0:.1f} s")
    return 0
