"""`kuzet sim dc09`: simulated panels, each a real DC-09 transmitter on its own TCP connection (or UDP
socket). A panel sends one message at a time and waits for the receiver's answer; without an ACK
(timeout, NAK, broken connection) it retries as a panel does, and a NAK's timestamp corrects its
clock. Between events each panel sends NULL link polls.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from receivers.dc09.transmitter import ReplyError, Transmitter

# (weight, SIA code, restore code or "", zone) and the Contact ID equivalents (weight, event, restores?)
SIA_EVENTS = [(30, "BA", "BR"), (20, "OP", ""), (20, "CL", ""), (10, "RP", ""), (6, "TA", "TR"),
              (5, "YT", "YR"), (4, "AT", "AR"), (3, "FA", "FR"), (2, "PA", "")]
CID_EVENTS = [(30, "130", True), (20, "401", False), (10, "602", False), (6, "137", True), (5, "302", True),
              (4, "301", True), (3, "110", True), (2, "120", False)]


@dataclass
class PanelStats:
    sent: int = 0
    acked: int = 0
    naks: int = 0
    duhs: int = 0
    timeouts: int = 0
    failed: int = 0  # gave up after all retries
    latencies: list[float] = field(default_factory=list)


class Panel:
    def __init__(self, account: str, host: str, port: int, *, key: bytes | None, udp: bool, cid: bool,
                 timeout: float, retries: int, stats: PanelStats, verbose: bool) -> None:
        self.tx = Transmitter(account, key=key)
        self.host, self.port, self.udp, self.cid = host, port, udp, cid
        self.timeout, self.retries = timeout, retries
        self.stats = stats
        self.verbose = verbose
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.udp_transport: asyncio.DatagramTransport | None = None
        self.udp_replies: asyncio.Queue[bytes] = asyncio.Queue()
        self.pending_restores: list[tuple[str, str]] = []  # (code, zone) to restore later
        self.lock = asyncio.Lock()

    async def _connect(self) -> None:
        if self.udp:
            if self.udp_transport is None:
                loop = asyncio.get_running_loop()
                queue = self.udp_replies

                class _Proto(asyncio.DatagramProtocol):
                    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
                        queue.put_nowait(data)

                transport, _ = await loop.create_datagram_endpoint(_Proto, remote_addr=(self.host, self.port))
                self.udp_transport = transport  # type: ignore[assignment]
            return
        if self.writer is None or self.writer.is_closing():
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def _exchange(self, frame: bytes) -> bytes:
        await self._connect()
        if self.udp:
            assert self.udp_transport is not None
            while not self.udp_replies.empty():
                self.udp_replies.get_nowait()
            self.udp_transport.sendto(frame)
            return await asyncio.wait_for(self.udp_replies.get(), self.timeout)
        assert self.reader is not None and self.writer is not None
        self.writer.write(frame)
        await self.writer.drain()
        return await asyncio.wait_for(self.reader.readuntil(b"\r"), self.timeout)

    async def _drop(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(Exception):
                await self.writer.wait_closed()
        self.reader = self.writer = None

    async def send(self, build: Callable[[str | None], bytes], what: str) -> bool:
        """Send one message until ACKed or retries run out. `build(seq)` makes the frame; a NAK
        rebuilds it with the same sequence and the corrected clock."""
        async with self.lock:
            frame = build(None)
            seq = self.tx.last_sequence
            for attempt in range(self.retries + 1):
                t0 = time.perf_counter()
                self.stats.sent += 1
                try:
                    raw = await self._exchange(frame)
                except TimeoutError:
                    self.stats.timeouts += 1
                    await self._drop()
                    await asyncio.sleep(min(0.5 * (attempt + 1), 5))
                    continue
                except (OSError, asyncio.IncompleteReadError):
                    await self._drop()
                    await asyncio.sleep(min(0.5 * (attempt + 1), 5))
                    continue
                try:
                    reply = self.tx.parse_reply(raw.lstrip(b"\x00"))
                except ReplyError:
                    continue
                if self.tx.handle(reply):
                    self.stats.acked += 1
                    self.stats.latencies.append(time.perf_counter() - t0)
                    if self.verbose:
                        print(f"{self.tx.account} {what} seq {seq}: ACK", flush=True)
                    return True
                if reply.kind == "DUH":
                    self.stats.duhs += 1
                    if self.verbose:
                        print(f"{self.tx.account} {what} seq {seq}: DUH (receiver cannot process it)", flush=True)
                    return False  # a retry cannot help
                self.stats.naks += 1
                frame = build(seq)
            self.stats.failed += 1
            if self.verbose:
                print(f"{self.tx.account} {what} seq {seq}: no ACK after {self.retries + 1} attempts", flush=True)
            return False

    async def event(self, rng: random.Random) -> None:
        if self.pending_restores and rng.random() < 0.5:
            code, zone = self.pending_restores.pop(0)
            await self._emit(code, zone, restore=True)
            return
        table = CID_EVENTS if self.cid else SIA_EVENTS
        weights = [row[0] for row in table]
        row = rng.choices(table, weights)[0]
        zone = f"{rng.randint(1, 6):03d}"
        if self.cid:
            code, restorable = str(row[1]), bool(row[2])
            if code in ("602",):
                zone = "000"
            if code == "401":  # opening or closing by a user
                await self._emit(code, f"{rng.randint(1, 4):03d}", restore=rng.random() < 0.5)
                return
            await self._emit(code, zone, restore=False)
            if restorable:
                self.pending_restores.append((code, zone))
        else:
            code, restore_code = str(row[1]), str(row[2])
            await self._emit(code, zone if code not in ("RP", "AT") else "", restore=False)
            if restore_code:
                self.pending_restores.append((restore_code, zone if code != "AT" else ""))

    async def _emit(self, code: str, zone: str, *, restore: bool) -> None:
        if self.cid:
            q = "3" if restore else "1"
            await self.send(lambda seq: self.tx.cid(q, code, 1, zone, sequence=seq), f"CID {q}{code} {zone}")
        else:
            await self.send(lambda seq: self.tx.sia(code, zone, area="1", sequence=seq), f"SIA {code}{zone}")

    async def poll(self) -> None:
        await self.send(lambda seq: self.tx.null(sequence=seq), "NULL")

    async def close(self) -> None:
        await self._drop()
        if self.udp_transport is not None:
            self.udp_transport.close()


def parse_key(text: str | None) -> bytes | None:
    """A key as hex (32/48/64 digits) or as ASCII text of 16/24/32 characters."""
    if not text:
        return None
    try:
        raw = bytes.fromhex(text)
        if len(raw) in (16, 24, 32):
            return raw
    except ValueError:
        pass
    raw = text.encode()
    if len(raw) not in (16, 24, 32):
        raise SystemExit("--key must be 32/48/64 hex digits or 16/24/32 ASCII characters")
    return raw


async def run(args: argparse.Namespace) -> PanelStats:
    stats = PanelStats()
    key = parse_key(args.key)
    panels = [Panel(str(args.first_account + i), args.host, args.port, key=key, udp=args.udp, cid=args.cid,
                    timeout=args.timeout, retries=args.retries, stats=stats, verbose=args.verbose)
              for i in range(args.accounts)]
    rng = random.Random(args.seed)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    deadline = loop.time() + args.duration if args.duration else None

    async def poller(p: Panel) -> None:
        await asyncio.sleep(rng.uniform(0, args.poll))
        while not stop.is_set():
            await p.poll()
            await asyncio.sleep(args.poll)

    tasks = [asyncio.create_task(poller(p)) for p in panels] if args.poll > 0 else []
    sent_events = 0
    try:
        while not stop.is_set():
            if args.count and sent_events >= args.count:
                break
            if deadline is not None and loop.time() > deadline:
                break
            p = rng.choice(panels)
            if args.rate > 0:
                await p.event(rng)
                sent_events += 1
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(stop.wait(), rng.expovariate(args.rate))
            else:
                await stop.wait()
    finally:
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        for p in panels:
            await p.close()
    return stats


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=7000)
    p.add_argument("--accounts", type=int, default=4, help="number of panels")
    p.add_argument("--first-account", type=int, default=1001, help="account number of the first panel")
    p.add_argument("--rate", type=float, default=0.5, help="events per second over all panels (0: only polls)")
    p.add_argument("--key", help="AES key (hex, or ASCII of 16/24/32 characters): send encrypted")
    p.add_argument("--udp", action="store_true", help="UDP instead of TCP")
    p.add_argument("--cid", action="store_true", help="Contact ID (ADM-CID) instead of SIA DC-03")
    p.add_argument("--poll", type=float, default=60.0, help="seconds between NULL link polls per panel (0: none)")
    p.add_argument("--count", type=int, default=0, help="stop after this many events (0: run until stopped)")
    p.add_argument("--duration", type=float, default=0.0, help="stop after this many seconds (0: until stopped)")
    p.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for the receiver's answer")
    p.add_argument("--retries", type=int, default=5)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--verbose", action="store_true", help="print every answer")


def main(args: argparse.Namespace) -> int:
    stats = asyncio.run(run(args))
    lat = sorted(stats.latencies)
    p50 = lat[len(lat) // 2] * 1000 if lat else 0.0
    print(f"sent {stats.sent}, acked {stats.acked}, NAK {stats.naks}, DUH {stats.duhs}, "
          f"timeouts {stats.timeouts}, given up {stats.failed}, ACK p50 {p50:.1f} ms", flush=True)
    return 0 if stats.failed == 0 else 1
