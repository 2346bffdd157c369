"""The web under a hostile client: request bodies limited before they are read, the board websocket
ended at once when its session ends, forwarded headers believed only from configured proxies, HSTS
over HTTPS. A real uvicorn on 127.0.0.1 (port 0) over the real database."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import json
import ssl
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import psutil
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from console import user
from console.config import Settings
from tests.util import serve
from web import auth
from web.app import MiB

PASSWORD = "hardening-pass-1"


@pytest.fixture
async def users(pool: asyncpg.Pool) -> dict[str, int]:
    return {name: await user.create(pool, name, PASSWORD, role, lang="en")
            for name, role in (("admin", "admin"), ("operator", "operator"))}


# -- request body limit ------------------------------------------------------------------------------


class PeakRss:
    """Samples this process's resident memory in a thread (the server runs in this process)."""

    def __init__(self) -> None:
        self.proc = psutil.Process()
        self.base = self.peak = self.proc.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, self.proc.memory_info().rss)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def growth_mb(self) -> float:
        return (self.peak - self.base) / MiB


async def _status_line(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))
    return status, await reader.readexactly(length)


async def _chunked_post(port: int, path: str, total: int) -> tuple[int, bytes, int]:
    """POST `total` bytes chunked, 64 KiB at a time, until the server answers; returns the status,
    the body and how much was sent."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    data = b"a" * 65536
    chunk = b"%x\r\n" % len(data) + data + b"\r\n"
    writer.write(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                 "Transfer-Encoding: chunked\r\n\r\n".encode())
    answer = asyncio.create_task(_status_line(reader))
    sent = 0
    try:
        while sent < total and not answer.done():
            writer.write(chunk)
            drain = asyncio.ensure_future(writer.drain())
            await asyncio.wait({drain, answer}, return_when=asyncio.FIRST_COMPLETED)
            if not drain.done():
                drain.cancel()
                break
            if drain.exception() is not None:  # the server closed after answering
                break
            sent += len(data)
        status, body = await asyncio.wait_for(answer, 10)
        return status, body, sent
    finally:
        writer.close()


async def test_a_huge_body_is_refused_before_it_is_read(pool: asyncpg.Pool, migrated: str, tmp_path: Path,
                                                       users: dict[str, int]) -> None:
    async with serve(pool, migrated, Settings(home=tmp_path)) as url:
        port = int(url.rsplit(":", 1)[1])
        with PeakRss() as mem:
            # chunked, 100 MB, unauthenticated, to the public login: counted as it streams
            status, body, sent = await _chunked_post(port, "/api/login", 100 * 1000 * 1000)
        assert status == 413, body
        detail = json.loads(body)
        assert "too large" in detail["detail"] and detail["limit"] == MiB
        assert sent < 20 * MiB, sent  # refused near the limit, not after reading it all
        assert mem.growth_mb < 40, f"memory grew {mem.growth_mb:.0f} MB"
        # declared up front: refused at once, no body sent at all
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"POST /api/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 100000000\r\n\r\n")
        status, body = await asyncio.wait_for(_status_line(reader), 10)
        writer.close()
        assert status == 413 and b"too large" in body
        async with httpx.AsyncClient(base_url=url, timeout=30) as c:
            # a body under the limit is read as usual
            r = await c.post("/api/login", json={"username": "admin", "password": PASSWORD})
            assert r.status_code == 200, r.text
            big = b'{"username": "' + b"x" * (2 * MiB) + b'"}'
            r = await c.post("/api/login", content=big, headers={"content-type": "application/json"})
            assert r.status_code == 413
            # an upload prefix has its own, larger limit: 2 MiB passes it (and meets the route)
            r = await c.post("/api/import/objects", content=big, headers={"content-type": "text/csv"})
            assert r.status_code != 413


# -- the board websocket ends with its session --------------------------------------------------------


async def _board(url: str, cookie: str) -> Any:
    return await connect(url.replace("http", "ws") + "/ws/board", additional_headers={"Cookie": cookie},
                         origin=url)  # type: ignore[arg-type]


async def _login(c: httpx.AsyncClient, name: str) -> str:
    r = await c.post("/api/login", json={"username": name, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return f"{auth.COOKIE}={c.cookies[auth.COOKIE]}"


async def _closed_with(ws: Any) -> int:
    """Read until the server closes; the close code."""
    try:
        while True:
            await ws.recv()
    except ConnectionClosed as exc:
        return int(exc.rcvd.code) if exc.rcvd else -1


async def test_websocket_ends_at_logout_and_when_disabled(pool: asyncpg.Pool, migrated: str, tmp_path: Path,
                                                          users: dict[str, int]) -> None:
    async with serve(pool, migrated, Settings(home=tmp_path)) as url:
        async with httpx.AsyncClient(base_url=url, timeout=10) as admin, \
                httpx.AsyncClient(base_url=url, timeout=10) as op:
            cookie = await _login(admin, "admin")
            other_cookie = await _login(op, "operator")
            ws = await _board(url, cookie)
            other = await _board(url, other_cookie)
            assert json.loads(await ws.recv())["type"] == "snapshot"
            assert json.loads(await other.recv())["type"] == "snapshot"
            closed = asyncio.create_task(_closed_with(ws))
            r = await admin.post("/api/logout")
            assert r.status_code == 200
            # at once (the periodic check would take up to a minute and a half)
            code = await asyncio.wait_for(closed, 10)
            assert code == auth.CLOSE_UNAUTHENTICATED
            assert other.close_code is None  # another user's board stays
            # a disabled user: the trigger announces it, the board closes
            closed = asyncio.create_task(_closed_with(other))
            await pool.execute("UPDATE users SET active = false WHERE id = $1", users["operator"])
            assert await asyncio.wait_for(closed, 10) == auth.CLOSE_UNAUTHENTICATED
            # a role without the board (crew): closed as forbidden
            await pool.execute("UPDATE users SET active = true WHERE id = $1", users["operator"])
            cookie = await _login(op, "operator")
            ws = await _board(url, cookie)
            assert json.loads(await ws.recv())["type"] == "snapshot"
            closed = asyncio.create_task(_closed_with(ws))
            await pool.execute("UPDATE users SET role = 'crew' WHERE id = $1", users["operator"])
            assert await asyncio.wait_for(closed, 10) == auth.CLOSE_FORBIDDEN


# -- forwarded headers and HSTS -----------------------------------------------------------------------


async def _fail_logins(c: httpx.AsyncClient, n: int, forwarded: Callable[[int], str]) -> list[int]:
    codes = []
    for i in range(n):
        r = await c.post("/api/login", json={"username": "admin", "password": "wrong"},
                         headers={"x-forwarded-for": forwarded(i), "x-forwarded-proto": "https"})
        codes.append(r.status_code)
    return codes


async def test_forwarded_headers_only_from_a_trusted_proxy(pool: asyncpg.Pool, migrated: str, tmp_path: Path,
                                                           users: dict[str, int]) -> None:
    # No proxy configured: X-Forwarded-For is a stranger's claim; every failure counts for 127.0.0.1.
    async with serve(pool, migrated, Settings(home=tmp_path)) as url, \
            httpx.AsyncClient(base_url=url, timeout=10) as c:
        codes = await _fail_logins(c, 11, lambda i: f"10.0.0.{i}")
        assert codes[:10] == [401] * 10 and codes[10] == 429
        peers = {r["p"] for r in await pool.fetch("SELECT detail->>'peer' AS p FROM audit_log"
                                                  " WHERE action = 'user.login-failed'")}
        assert peers == {"127.0.0.1"}
        r = await c.get("/login", headers={"x-forwarded-proto": "https"})
        assert "strict-transport-security" not in r.headers  # a plain-HTTP answer, whatever it claims
    await pool.execute("DELETE FROM users WHERE TRUE")
    seen = await pool.fetchval("SELECT max(id) FROM audit_log")
    # Behind a configured proxy (here: 127.0.0.1): the address it forwards is the client's.
    await user.create(pool, "admin", PASSWORD, "admin")
    async with serve(pool, migrated, Settings(home=tmp_path, trusted_proxies=["127.0.0.1"])) as url, \
            httpx.AsyncClient(base_url=url, timeout=10) as c:
        codes = await _fail_logins(c, 12, lambda i: f"10.0.1.{i}")
        assert 429 not in codes  # twelve addresses, one failure each
        codes = await _fail_logins(c, 11, lambda i: "10.0.2.7")
        assert codes[10] == 429  # one address, eleven failures
        peers = {r["p"] for r in await pool.fetch("SELECT detail->>'peer' AS p FROM audit_log"
                                                  " WHERE action = 'user.login-failed' AND id > $1", seen)}
        assert "10.0.2.7" in peers and "127.0.0.1" not in peers
        r = await c.get("/login", headers={"x-forwarded-proto": "https"})
        assert r.headers["strict-transport-security"].startswith("max-age=")
        r = await c.get("/login")
        assert "strict-transport-security" not in r.headers


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


async def test_hsts_when_served_over_tls(pool: asyncpg.Pool, migrated: str, tmp_path: Path,
                                         users: dict[str, int]) -> None:
    cert, key = _self_signed(tmp_path)
    settings = Settings(home=tmp_path, tls_cert=str(cert), tls_key=str(key))
    async with serve(pool, migrated, settings) as url:
        ctx = ssl.create_default_context(cafile=str(cert))
        async with httpx.AsyncClient(base_url=url, timeout=10, verify=ctx) as c:
            r = await c.get("/login")
            assert r.status_code == 200 and r.headers["strict-transport-security"] == "max-age=31536000"
            r = await c.post("/api/login", json={"username": "admin", "password": PASSWORD})
            assert r.status_code == 200 and "secure" in r.headers["set-cookie"].lower()
