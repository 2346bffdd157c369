"""`kuzet bench ingest`: drive a running DC-09 receiver with N panel connections, each sending one
message and waiting for its ACK before the next (as panels do), and print the figures: messages
sent, ACKs, NAK/DUH, signals/s, ACK latency p50/p99, and the rows the database really holds.

With database access (`--home` of a running `kuzet demo`/`run`, or `--database-url`) the benchmark
registers its accounts (8000000 + i, on a "Benchmark" object; with `--encrypted` each gets an
AES-128 key) so the receiver knows them, and counts the stored rows afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from console import db
from kuzet.loop import run_fast
from receivers.dc09.transmitter import ReplyError, Transmitter, parse_reply

FIRST_ACCOUNT = 8_000_000
BENCH_KEY = bytes(range(16))


@dataclass
class Figures:
    sent: int = 0
    acked: int = 0
    naks: int = 0
    duhs: int = 0
    errors: int = 0
    last_sent: float = 0.0  # perf_counter of the last message sent
    latencies: list[float] = field(default_factory=list)


class _Panel:
    """One panel's loop: send, wait for the reply, send the next, until the deadline."""

    def __init__(self, tx: Transmitter, figures: Figures, deadline: float, done: asyncio.Future[None],
                 interval: float = 0.0) -> None:
        self.tx, self.fig, self.deadline, self.done = tx, figures, deadline, done
        self.interval = interval  # with --rate: seconds between this panel's messages (open loop)
        self.next_at = 0.0
        self.on_send: Callable[[str, str], None] | None = None  # (account, sequence) of every message sent
        self.send: Callable[[bytes], None] = lambda b: None
        self.close: Callable[[], None] = lambda: None
        self.t0 = 0.0
        self.zone = 0

    def next(self) -> None:
        now = time.perf_counter()
        if now >= self.deadline:
            self.close()
            return
        if self.interval:
            # paced: the next message leaves on schedule, not as soon as the ACK is in
            self.next_at = max(self.next_at + self.interval, now) if self.next_at else now
            if self.next_at > now:
                asyncio.get_running_loop().call_later(self.next_at - now, self._send_one)
                return
        self._send_one()

    def _send_one(self) -> None:
        if time.perf_counter() >= self.deadline:  # a paced send that fell due after the end
            self.close()
            return
        self.zone = self.zone % 99 + 1
        frame = self.tx.sia("BA", f"{self.zone:03d}", area="1")
        self.fig.sent += 1
        self.t0 = self.fig.last_sent = time.perf_counter()
        if self.on_send is not None:
            self.on_send(self.tx.account, self.tx.last_sequence)
        self.send(frame)

    def reply(self, raw: bytes) -> None:
        try:
            reply = parse_reply(raw, self.tx.key)
        except ReplyError:
            self.fig.errors += 1
            self.next()
            return
        if reply.acknowledges(self.tx.last_sequence, self.tx.account):
            self.fig.acked += 1
            self.fig.latencies.append(time.perf_counter() - self.t0)
        elif reply.kind == "DUH":
            self.fig.duhs += 1
        else:
            self.fig.naks += 1
            self.tx.handle(reply)
        self.next()

    def finished(self) -> None:
        if not self.done.done():
            self.done.set_result(None)


class _Tcp(asyncio.Protocol):
    def __init__(self, panel: _Panel) -> None:
        self.panel = panel
        self.buf = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        t: Any = transport
        self.panel.send, self.panel.close = t.write, t.close
        self.panel.next()

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while b"\r" in self.buf:
            raw, _, self.buf = self.buf.partition(b"\r")
            self.panel.reply(raw + b"\r")

    def connection_lost(self, exc: Exception | None) -> None:
        self.panel.finished()


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, panel: _Panel) -> None:
        self.panel = panel

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        t: Any = transport
        self.panel.send, self.panel.close = t.sendto, t.close
        self.panel.next()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.panel.reply(data)

    def error_received(self, exc: Exception) -> None:
        self.panel.fig.errors += 1

    def connection_lost(self, exc: Exception | None) -> None:
        self.panel.finished()


def _dsn(args: argparse.Namespace) -> str | None:
    if args.database_url:
        return str(args.database_url)
    home = Path(args.home or os.environ.get("KUZET_HOME", "./var")).resolve()
    pgdata = home / "pgdata"
    return db.running_dsn(pgdata) if (pgdata / "postmaster.pid").exists() else None


async def _register(dsn: str, n: int, encrypted: bool, object_per_account: bool = False) -> None:
    """The benchmark's panels as accounts of the post, through the account service (which tells the
    receivers to reload their directory)."""
    from console import account, guarded_object

    conn = await db.connect(dsn)
    try:
        async with conn.transaction():
            oid = await guarded_object.find_by_name(conn, "Benchmark")
            if oid is None:
                oid = await guarded_object.create(conn, "Benchmark", address="127.0.0.1")
            objects: list[int] = [oid] * n
            if object_per_account:  # a storm over a district: every panel its own object
                objects = await guarded_object.create_many(conn, [f"Benchmark {i + 1}" for i in range(n)],
                                                           address="127.0.0.1")
            await account.register_many(conn, "system:bench", [
                (str(FIRST_ACCOUNT + i), BENCH_KEY.hex() if encrypted else None, objects[i]) for i in range(n)])
    finally:
        await conn.close()
    await asyncio.sleep(1.0)  # let the receivers reload their account directory


async def _alarms_open_at(dsn: str, n: int, since: Any) -> float | None:
    """The perf_counter time at which every benchmark panel has its alarm open (polled every 50 ms
    while the load runs), or None if that did not happen within two minutes."""
    import asyncpg

    conn = await asyncpg.connect(dsn)
    numbers = [str(FIRST_ACCOUNT + i) for i in range(n)]
    t0 = time.perf_counter()
    try:
        while time.perf_counter() - t0 < 120:
            opened = await conn.fetchval(
                "SELECT count(DISTINCT account) FROM alarms WHERE opened_at >= $1 AND account = ANY($2::text[])",
                since, numbers)
            if opened >= n:
                return time.perf_counter()
            await asyncio.sleep(0.05)
        return None
    finally:
        await conn.close()


async def _count(dsn: str, n: int, since: Any) -> int:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        count: int = await conn.fetchval(
            "SELECT count(*) FROM signals WHERE account = ANY($1::text[]) AND received_at >= $2",
            [str(FIRST_ACCOUNT + i) for i in range(n)], since)
        return count
    finally:
        await conn.close()


async def ingest(args: argparse.Namespace) -> dict[str, Any]:
    from datetime import UTC, datetime

    dsn = _dsn(args)
    if dsn:
        await _register(dsn, args.conns, args.encrypted, args.object_per_account)
    elif args.encrypted:
        raise SystemExit("--encrypted needs database access (--home or --database-url) to register the keys")
    loop = asyncio.get_running_loop()
    fig = Figures()
    started_at = datetime.now(UTC)
    t_start = time.perf_counter()
    deadline = t_start + args.seconds
    futures: list[asyncio.Future[None]] = []
    transports: list[asyncio.BaseTransport] = []
    watch = asyncio.create_task(_alarms_open_at(dsn, args.conns, started_at)) \
        if dsn and args.object_per_account else None
    for i in range(args.conns):
        tx = Transmitter(str(FIRST_ACCOUNT + i), key=BENCH_KEY if args.encrypted else None)
        fut: asyncio.Future[None] = loop.create_future()
        futures.append(fut)
        panel = _Panel(tx, fig, deadline, fut, interval=args.conns / args.rate if args.rate else 0.0)
        t: asyncio.BaseTransport
        if args.udp:
            t, _ = await loop.create_datagram_endpoint(functools.partial(_Udp, panel),
                                                       remote_addr=(args.host, args.port))
        else:
            t, _ = await loop.create_connection(functools.partial(_Tcp, panel), args.host, args.port)
        transports.append(t)
    # UDP endpoints never see connection_lost by themselves: close them at the deadline.
    await asyncio.sleep(max(0.0, deadline - time.perf_counter()) + 0.5)
    for t in transports:
        t.close()
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(asyncio.gather(*futures), 10)
    elapsed = time.perf_counter() - t_start
    lat = sorted(fig.latencies)

    def pct(p: float) -> float:
        return lat[min(len(lat) - 1, int(len(lat) * p))] * 1000 if lat else float("nan")

    stored = None
    alarms_after = None
    if dsn:
        await asyncio.sleep(0.5)
        stored = await _count(dsn, args.conns, started_at)
        if watch is not None:
            done_at = await watch
            alarms_after = None if done_at is None else round(max(0.0, done_at - fig.last_sent), 2)
    return {"conns": args.conns, "seconds": round(elapsed, 2), "transport": "udp" if args.udp else "tcp",
            "encrypted": args.encrypted, "sent": fig.sent, "acked": fig.acked, "naks": fig.naks,
            "duhs": fig.duhs, "errors": fig.errors, "signals_per_s": round(fig.acked / elapsed, 1),
            "ack_p50_ms": round(pct(0.50), 2), "ack_p99_ms": round(pct(0.99), 2), "rows_stored": stored,
            "alarms_settled_s": alarms_after}


async def e2e(args: argparse.Namespace) -> dict[str, Any]:
    """Signal sent by a panel -> the same signal on an operator's board websocket."""
    from websockets.asyncio.client import connect as ws_connect

    from console import edit, user
    from web.auth import COOKIE

    dsn = _dsn(args)
    if not dsn:
        raise SystemExit("bench e2e needs the running Kuzet's database (--home or --database-url)")
    await _register(dsn, args.conns, False)
    conn = await db.connect(dsn)
    try:
        # A fresh password each run: the benchmark's operator signs in like any other.
        password = user.generate_password()
        try:
            uid = await user.id_of(conn, "bench-e2e")
            await user.set_password(conn, "system:bench", uid, password)
        except edit.NotFound:
            await user.add(conn, "system:bench", "bench-e2e", password, "operator", full_name="Benchmark")
        me = await user.authenticate(conn, "bench-e2e", password)
        assert me is not None
        token = await user.open_session(conn, me)
    finally:
        await conn.close()
    import json

    sent: dict[tuple[str, str], float] = {}
    lat: list[float] = []
    loop = asyncio.get_running_loop()
    ws = await ws_connect(f"ws://{args.host}:{args.web_port}/ws/board",
                          additional_headers={"Cookie": f"{COOKIE}={token}"}, compression=None)

    async def read() -> None:
        async for msg in ws:
            t = time.perf_counter()
            m = json.loads(msg)
            if m.get("type") == "signal":
                s = m["signal"]
                t0 = sent.pop((s["account"], s["sequence"]), None)
                if t0 is not None:
                    lat.append(t - t0)

    reader = asyncio.create_task(read())
    fig = Figures()
    deadline = time.perf_counter() + args.seconds
    futures = []
    for i in range(args.conns):
        fut: asyncio.Future[None] = loop.create_future()
        futures.append(fut)
        panel = _Panel(Transmitter(str(FIRST_ACCOUNT + i)), fig, deadline, fut, interval=args.conns / args.rate)
        panel.on_send = lambda acct, seq: sent.__setitem__((acct, seq), time.perf_counter())
        await loop.create_connection(functools.partial(_Tcp, panel), args.host, args.port)
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(asyncio.gather(*futures), args.seconds + 10)
    await asyncio.sleep(2.0)  # the last signals on their way to the board
    reader.cancel()
    await ws.close()
    lat.sort()

    def pct(p: float) -> float:
        return lat[min(len(lat) - 1, int(len(lat) * p))] * 1000 if lat else float("nan")

    return {"sent": fig.sent, "acked": fig.acked, "on_board": len(lat), "missing": len(sent),
            "p50_ms": round(pct(0.5), 2), "p99_ms": round(pct(0.99), 2), "max_ms": round(pct(1.0), 2)}


def add_e2e_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=7000, help="the DC-09 receiver")
    p.add_argument("--web-port", type=int, default=8000)
    p.add_argument("--conns", type=int, default=100)
    p.add_argument("--rate", type=float, default=2000.0, help="signals per second over all connections")
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--home", help="data directory of the running Kuzet (default $KUZET_HOME or ./var)")
    p.add_argument("--database-url")


def main_e2e(args: argparse.Namespace) -> int:
    r = run_fast(e2e(args))
    print(f"DC-09 send -> board websocket, {args.conns} connections paced at {args.rate:g}/s, {args.seconds:g} s")
    print(f"  sent {r['sent']}  acked {r['acked']}  seen on the board {r['on_board']}  never seen {r['missing']}")
    print(f"  latency p50 {r['p50_ms']} ms  p99 {r['p99_ms']} ms  max {r['max_ms']} ms")
    return 0


def add_ingest_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=7000)
    p.add_argument("--conns", type=int, default=100, help="panel connections, one message in flight each")
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--rate", type=float, default=0.0,
                   help="signals per second over all connections (0: each sends again as soon as it is ACKed)")
    p.add_argument("--encrypted", action="store_true", help="AES-128 messages (registers the keys)")
    p.add_argument("--udp", action="store_true")
    p.add_argument("--object-per-account", action="store_true",
                   help="every panel its own guarded object (a storm opens one alarm each); reports when all are open")
    p.add_argument("--home", help="data directory of the running Kuzet (default $KUZET_HOME or ./var)")
    p.add_argument("--database-url", help="count rows in this database instead")


def main_ingest(args: argparse.Namespace) -> int:
    r = run_fast(ingest(args))
    pace = f", paced at {args.rate:g}/s" if args.rate else ", closed loop"
    print(f"DC-09 ingest, {r['transport'].upper()}{' AES-128' if r['encrypted'] else ''}, "
          f"{r['conns']} connections{pace}, {r['seconds']} s")
    print(f"  sent {r['sent']}  acked {r['acked']}  NAK {r['naks']}  DUH {r['duhs']}  errors {r['errors']}")
    print(f"  signals/s {r['signals_per_s']}  ACK p50 {r['ack_p50_ms']} ms  p99 {r['ack_p99_ms']} ms")
    if r["rows_stored"] is None:
        print("  rows stored: not counted (no database access: pass --home or --database-url)")
    else:
        lost = r["acked"] - r["rows_stored"]
        print(f"  rows stored {r['rows_stored']}" + ("" if lost <= 0 else f"  ACKED BUT MISSING: {lost}"))
    if r["alarms_settled_s"] is not None:
        print(f"  every panel's alarm open {r['alarms_settled_s']} s after the last message")
    return 0
