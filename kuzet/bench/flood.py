"""`kuzet bench flood`: well-behaved panels against a running DC-09 receiver while one peer floods
its port with malformed frames (a wrong length field, about 4 KB each, never reading the replies).
Prints the panels' ACK rate before, during and after the flood, and the receiver process's memory.

The panels run in this process (each sends one message, waits for the ACK, then the next, paced);
the flooder runs in a child process (`--flood-only`), from its own source address (127.0.0.2 by
default: on Linux the whole 127/8 is the loopback), so the receiver can tell it from the panels.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from receivers.dc09.transmitter import Transmitter, build_message

FIRST_ACCOUNT = 8_100_000


def malformed_frame(size: int = 4000) -> bytes:
    """A DC-09 frame of about `size` bytes whose length field lies."""
    good = build_message("SIA-DCS", "#9|NBA001^" + "X" * size + "^", sequence="0001", account="9")
    return good[:5] + b"0001" + good[9:]


@dataclass
class Fleet:
    """Ten (or N) panels, each with one message in flight, paced at `rate` messages/s each."""

    host: str
    port: int
    panels: int = 10
    rate: float = 20.0
    timeout: float = 5.0
    acked: set[tuple[str, str]] = field(default_factory=set)  # (account, sequence) of every ACK
    per_second: dict[int, int] = field(default_factory=dict)  # ACKs by whole second since start
    failures: int = 0  # timeouts, NAKs, broken connections (the message is sent again)
    started: float = field(default_factory=time.monotonic)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _stopping: bool = False

    def start(self) -> None:
        self.started = time.monotonic()
        self._tasks = [asyncio.create_task(self._panel(str(FIRST_ACCOUNT + i)), name=f"panel-{i}")
                       for i in range(self.panels)]

    async def stop(self) -> None:
        # A flag as well as cancel(): Python 3.11's wait_for may swallow a cancellation that comes
        # just as the reply arrives, and the panel would go on.
        self._stopping = True
        pending = {t for t in self._tasks if not t.done()}
        while pending:
            for t in pending:
                t.cancel()
            _done, pending = await asyncio.wait(pending, timeout=1.0)

    def rate_between(self, t0: float, t1: float) -> float:
        """ACKs per second between two times (seconds since start)."""
        secs = range(int(t0), int(t1))
        return sum(self.per_second.get(s, 0) for s in secs) / max(1, len(secs))

    def now(self) -> float:
        return time.monotonic() - self.started

    async def _panel(self, account: str) -> None:
        tx = Transmitter(account)
        writer: asyncio.StreamWriter | None = None
        reader: asyncio.StreamReader | None = None
        zone = 0
        interval = 1.0 / self.rate
        next_at = time.monotonic()
        frame = b""
        try:
            while not self._stopping:
                if not frame:
                    zone = zone % 999 + 1
                    frame = tx.sia("BA", f"{zone:03d}")
                delay = next_at - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                next_at = max(next_at + interval, time.monotonic() - 1.0)
                try:
                    if writer is None or writer.is_closing():
                        reader, writer = await asyncio.wait_for(
                            asyncio.open_connection(self.host, self.port), self.timeout)
                    assert reader is not None and writer is not None
                    writer.write(frame)
                    await writer.drain()
                    reply = tx.parse_reply(await asyncio.wait_for(reader.readuntil(b"\r"), self.timeout))
                except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ValueError):
                    self.failures += 1
                    if writer is not None:
                        writer.close()
                    writer = None
                    await asyncio.sleep(0.2)
                    continue  # the same message again, as a panel retries
                if tx.handle(reply):
                    self.acked.add((account, tx.last_sequence))
                    sec = int(self.now())
                    self.per_second[sec] = self.per_second.get(sec, 0) + 1
                    frame = b""
                else:
                    self.failures += 1
                    frame = b""  # a NAK: build it again (the clock was corrected)
        finally:
            if writer is not None:
                writer.close()


async def flood(host: str, port: int, seconds: float, *, conns: int = 4, source: str = "127.0.0.2",
                size: int = 4000, read: bool = True) -> dict[str, int]:
    """Write malformed frames as fast as the receiver takes them, from `conns` connections, reading
    and dropping the replies (or, with `read=False`, never reading them); a closed or refused
    connection is opened again at once."""
    frame = malformed_frame(size)
    chunk = frame * 16
    end = time.monotonic() + seconds
    sent = refused = 0

    async def one() -> None:
        nonlocal sent, refused
        while time.monotonic() < end:
            try:
                r, w = await asyncio.open_connection(host, port, local_addr=(source, 0))
            except OSError:
                refused += 1
                await asyncio.sleep(0.01)
                continue
            drain = asyncio.create_task(_discard(r)) if read else None
            try:
                while time.monotonic() < end:
                    w.write(chunk)
                    sent += 16
                    await asyncio.wait_for(w.drain(), max(0.01, end - time.monotonic()))
            except (OSError, TimeoutError, RuntimeError):  # closed by the receiver (uvloop: RuntimeError)
                refused += 1
            finally:
                w.close()
                if drain is not None:
                    drain.cancel()
            await asyncio.sleep(0.01)

    await asyncio.gather(*(one() for _ in range(conns)))
    return {"frames_sent": sent, "connections_lost": refused}


async def _discard(reader: asyncio.StreamReader) -> None:
    with contextlib.suppress(OSError):
        while await reader.read(65536):
            pass


def rss_mb(pid: int) -> float:
    import psutil

    return float(psutil.Process(pid).memory_info().rss) / 2**20


def receiver_pid(port: int) -> int | None:
    """The process listening on the TCP port (for its memory), if this user may see it."""
    import psutil

    with contextlib.suppress(psutil.Error):
        for c in psutil.net_connections("tcp"):
            if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port and c.pid:
                return int(c.pid)
    return None


def start_flooder(host: str, port: int, seconds: float, conns: int, source: str, *,
                  read: bool = True) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "kuzet", "bench", "flood", "--flood-only", "--host", host,
                             "--port", str(port), "--flood", str(seconds), "--flood-conns", str(conns),
                             "--source", source, *([] if read else ["--flood-no-read"])],
                            stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from kuzet.bench.ingest import _dsn

    dsn = _dsn(args)
    if dsn:
        await _register_fleet(dsn, args.panels)
    pid = args.pid or receiver_pid(args.port)
    fleet = Fleet(args.host, args.port, panels=args.panels, rate=args.rate)
    fleet.start()
    rss: list[float] = []

    async def sample() -> None:
        while pid:
            with contextlib.suppress(Exception):
                rss.append(rss_mb(pid))
            await asyncio.sleep(0.2)

    sampler = asyncio.create_task(sample())
    try:
        await asyncio.sleep(args.before)
        t_flood = fleet.now()
        proc = start_flooder(args.host, args.port, args.flood, args.flood_conns, args.source,
                             read=not args.flood_no_read)
        flooder = await asyncio.to_thread(proc.communicate)
        t_after = fleet.now()
        out = json.loads(flooder[0] or b"{}")
        await asyncio.sleep(args.after)
        t_end = fleet.now()
    finally:
        await fleet.stop()
        sampler.cancel()
    before = fleet.rate_between(1, t_flood)
    after_rates = [fleet.per_second.get(s, 0) for s in range(int(t_after), int(t_end))]
    recovered = next((i for i, r in enumerate(after_rates) if r >= before / 2), None)
    return {
        "panels": args.panels, "rate_per_panel": args.rate,
        "before": round(before, 1), "during": round(fleet.rate_between(t_flood + 1, t_after), 1),
        "after": round(fleet.rate_between(t_after + 1, t_end), 1),
        "recovered_in_s": recovered, "acked": len(fleet.acked), "failures": fleet.failures,
        "flood_frames": out.get("frames_sent", 0), "flood_connections_lost": out.get("connections_lost", 0),
        "rss_mb_max": round(max(rss), 1) if rss else None, "rss_mb_first": round(rss[0], 1) if rss else None,
        "stored": await _stored(dsn, fleet) if dsn else None,
    }


async def _register_fleet(dsn: str, n: int) -> None:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        oid = await conn.fetchval("INSERT INTO guarded_objects (name, address) VALUES ('Flood benchmark', '127.0.0.1')"
                                  " RETURNING id")
        await conn.executemany("INSERT INTO accounts (number, prefix, object_id) VALUES ($1, '', $2)"
                               " ON CONFLICT (prefix, number) DO NOTHING",
                               [(str(FIRST_ACCOUNT + i), oid) for i in range(n)])
        await conn.execute("SELECT pg_notify('kuzet_accounts', 'bench')")
    finally:
        await conn.close()
    await asyncio.sleep(1.0)  # the receivers reload their directory


async def _stored(dsn: str, fleet: Fleet) -> int:
    """How many of the ACKed messages the database holds."""
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        accounts = sorted({a for a, _ in fleet.acked})
        rows = await conn.fetch("SELECT account, sequence FROM signals WHERE account = ANY($1::text[])", accounts)
        have = {(r["account"], r["sequence"]) for r in rows}
        return len(fleet.acked & have)
    finally:
        await conn.close()


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=7000)
    p.add_argument("--panels", type=int, default=10)
    p.add_argument("--rate", type=float, default=20.0, help="messages per second of each panel")
    p.add_argument("--before", type=float, default=5.0, help="seconds of panels alone before the flood")
    p.add_argument("--flood", type=float, default=10.0, help="seconds of flood")
    p.add_argument("--after", type=float, default=15.0, help="seconds of panels alone after the flood")
    p.add_argument("--flood-conns", type=int, default=4)
    p.add_argument("--source", default="127.0.0.2", help="the flooder's source address")
    p.add_argument("--flood-no-read", action="store_true", help="the flooder never reads the receiver's replies")
    p.add_argument("--pid", type=int, help="the receiver's process, for its memory (default: found by port)")
    p.add_argument("--home", help="data directory of the running Kuzet (registers the panels' accounts)")
    p.add_argument("--database-url")
    p.add_argument("--flood-only", action="store_true", help=argparse.SUPPRESS)


def main(args: argparse.Namespace) -> int:
    from kuzet.loop import run_fast

    if args.flood_only:
        r = run_fast(flood(args.host, args.port, args.flood, conns=args.flood_conns, source=args.source,
                           read=not args.flood_no_read))
        print(json.dumps(r), flush=True)
        return 0
    r = run_fast(run(args))
    print(f"DC-09 flood: {r['panels']} panels at {r['rate_per_panel']:g} msg/s each; one peer writes"
          f" {r['flood_frames']} malformed ~4 KB frames in {args.flood:g} s")
    print(f"  panel ACKs/s  before {r['before']}  during {r['during']}  after {r['after']}"
          f"  (back to half within {r['recovered_in_s']} s of the flood's end)")
    print(f"  ACKed {r['acked']}  stored {r['stored'] if r['stored'] is not None else 'not counted'}"
          f"  panel retries {r['failures']}")
    if r["rss_mb_max"] is not None:
        print(f"  receiver RSS {r['rss_mb_first']} MB at start, at most {r['rss_mb_max']} MB")
    return 0

