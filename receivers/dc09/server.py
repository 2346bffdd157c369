"""The asyncio transport around the DC-09 codec: TCP (a stream, many frames per connection, thousands
of connections) and UDP (one datagram per frame). All protocol decisions are the codec's; this layer
only moves bytes, hands accepted frames to the signal store, and writes the ACK after the commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from console.account import AccountDirectory
from console.store import RejectedRecord, SignalStore
from receivers.dc09.codec import Accepted, AccountKey, Dc09Codec, KeyLookup, Rejected
from receivers.guard import Limits, PeerGuard, is_out_of_files, open_files
from receivers.stats import ReceiverStats

log = logging.getLogger("kuzet.dc09")


_last_files_log = 0.0


def note_out_of_files(what: str) -> None:
    """One clear line (at most every 30 s) when the process runs out of file descriptors."""
    global _last_files_log
    now = time.monotonic()
    if now - _last_files_log > 30:
        _last_files_log = now
        log.error("OUT OF FILE DESCRIPTORS (EMFILE): %s; new panel connections cannot be accepted."
                  " Raise the limit (ulimit -n, LimitNOFILE=) or lower [[receivers.dc09]] max_connections", what)


def out_of_files_handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """Event-loop exception handler: the default loop reports a failing accept() here, hundreds of
    times a second; say it once, clearly, and pass everything else on."""
    if is_out_of_files(context.get("exception")):
        note_out_of_files(str(context.get("exception")))
        return
    loop.default_exception_handler(context)


def key_lookup(directory: AccountDirectory) -> KeyLookup:
    def lookup(receiver_no: str, line_no: str, account: str) -> AccountKey | None:
        acc = directory.find(receiver_no, line_no, account)
        return None if acc is None else AccountKey(True, acc.key)

    return lookup


class _Handler:
    """What TCP and UDP share: hand accepted frames to the store, record rejected ones."""

    def __init__(self, store: SignalStore, stats: ReceiverStats) -> None:
        self.store = store
        self.stats = stats

    def record(self, ev: Rejected, peer: str) -> None:
        self.stats.rejected += 1
        self.store.reject(RejectedRecord(datetime.now(UTC), self.stats.name, peer, ev.reason, ev.detail,
                                         ev.account, ev.reply, ev.raw))

    def accept(self, ev: Accepted, send: Callable[[bytes], None]) -> None:
        self.stats.note_accepted()
        stats = self.stats
        reply = ev.reply

        def done(ok: bool) -> None:
            if ok:
                stats.acked += 1
                send(reply)
            else:
                stats.not_acked += 1  # no ACK: the panel retries or uses its backup path

        self.store.submit(ev.items, done)


class Dc09TcpProtocol(asyncio.Protocol):
    def __init__(self, server: Dc09Server) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.codec: Dc09Codec | None = None
        self.last_data = time.monotonic()
        self.peer = ""
        self.host = ""
        self.admitted = False
        self._write_blocked = False  # the peer does not read its replies: stop reading its frames
        self._slowed_until = 0.0  # the peer sends garbage: do not read from it until then
        self._resume: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's transports are no asyncio.Transport subclasses
        host, port = transport.get_extra_info("peername")[:2]
        self.host = str(host)
        self.peer = f"{host}:{port}"
        srv = self.server
        why = srv.guard.admit(self.host) if not srv.stopping else "the receiver is stopping"
        if why is not None:
            srv.guard.refused += 1
            srv.note_refused(self.host, why)
            transport.abort()  # type: ignore[attr-defined]  # a TCP transport
            return
        self.admitted = True
        srv.guard.opened(self.host)
        self.codec = srv.new_codec(self.peer)
        srv.connections.add(self)
        srv.stats.connections += 1

    def connection_lost(self, exc: Exception | None) -> None:
        if self._resume is not None:
            self._resume.cancel()
        if not self.admitted:
            return
        self.admitted = False
        self.server.guard.closed(self.host)
        self.server.connections.discard(self)
        self.server.stats.connections -= 1

    def data_received(self, data: bytes) -> None:
        if self.codec is None or self.transport is None or self.transport.is_closing():
            return
        self.last_data = time.monotonic()
        handler = self.server.handler
        bad = 0
        for ev in self.codec.feed(data):
            if isinstance(ev, Accepted):
                handler.accept(ev, self._send)
            else:
                bad += 1
                handler.record(ev, self.peer)
                if ev.reply:
                    self._send(ev.reply)
                if ev.close:
                    self.transport.close()
                    break
        if bad:
            self.server.offend(self, bad)

    def slow_down(self, seconds: float) -> None:
        """Read nothing more from this peer for a while (its garbage costs it, not the panels)."""
        if self.transport is None or self.transport.is_closing():
            return
        self._slowed_until = time.monotonic() + seconds
        self.transport.pause_reading()
        if self._resume is not None:
            self._resume.cancel()
        self._resume = asyncio.get_running_loop().call_later(seconds, self._maybe_resume)

    def pause_writing(self) -> None:
        # The peer reads none of our replies: stop taking its frames, so neither the replies it does
        # not read nor its frames pile up in memory.
        self._write_blocked = True
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        self._write_blocked = False
        self._maybe_resume()

    def _maybe_resume(self) -> None:
        self._resume = None
        t = self.transport
        if t is None or t.is_closing() or self._write_blocked or self.server.stopping:
            return
        left = self._slowed_until - time.monotonic()
        if left > 0:  # timers may fire a little early (millisecond resolution): wait out the rest
            self._resume = asyncio.get_running_loop().call_later(left + 0.001, self._maybe_resume)
            return
        t.resume_reading()

    def _send(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def check_idle(self, now: float) -> None:
        """A half frame left hanging is recorded and the connection closed; a quiet idle one is kept
        until the receiver's idle timeout (panels hold connections open between polls)."""
        assert self.codec is not None and self.transport is not None
        idle = now - self.last_data
        if self._write_blocked or now < self._slowed_until:
            return  # we are the ones not reading
        if self.codec.pending() and idle > self.server.unfinished_timeout:
            for ev in self.codec.timeout():
                self.server.handler.record(ev, self.peer)
            self.transport.close()
        elif idle > self.server.idle_timeout:
            self.transport.close()


class Dc09UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, server: Dc09Server) -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # selector transports before 3.12 fail isinstance

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        srv = self.server
        if srv.stopping or srv.guard.blocked(addr[0]):
            srv.guard.dropped_datagrams += 1
            return
        peer = f"{addr[0]}:{addr[1]}"
        codec = srv.new_codec(peer)
        transport = self.transport
        assert transport is not None

        def send(reply: bytes) -> None:
            transport.sendto(reply, addr)

        bad = 0
        for ev in codec.datagram(data):
            if isinstance(ev, Accepted):
                srv.handler.accept(ev, send)
            else:
                bad += 1
                srv.handler.record(ev, peer)
                if ev.reply:
                    send(ev.reply)
        if bad and srv.guard.offend(addr[0], bad) == math.inf:
            srv.note_cut_off(addr[0])

    def error_received(self, exc: Exception) -> None:
        log.warning("%s: %s", self.server.name, exc)


class Dc09Server:
    """One DC-09 receiver: a TCP listener and/or a UDP socket on the same port."""

    def __init__(self, store: SignalStore, directory: AccountDirectory, *, name: str = "dc09",
                 host: str = "127.0.0.1", port: int = 7000, tcp: bool = True, udp: bool = True,
                 window: tuple[int, int] = (40, 20), idle_timeout: float = 600.0,
                 unfinished_timeout: float = 10.0, is_known_code: Callable[[str, str], bool] | None = None,
                 max_frame: int = 4096, limits: Limits | None = None) -> None:
        self.name = name
        self.host, self.port, self.tcp, self.udp = host, port, tcp, udp
        self.window = window
        self.idle_timeout = idle_timeout
        self.unfinished_timeout = unfinished_timeout
        self.max_frame = max_frame
        self.guard = PeerGuard(limits)
        self.stopping = False
        self.files_exhausted = False
        self._last_refusal_log = 0.0
        self.stats = ReceiverStats(name, "dc09")
        self.handler = _Handler(store, self.stats)
        self.lookup = key_lookup(directory)
        self.is_known_code = is_known_code or (lambda kind, code: True)
        self.connections: set[Dc09TcpProtocol] = set()
        self._tcp: asyncio.Server | None = None
        self._udp: asyncio.DatagramTransport | None = None
        self._sweeper: asyncio.Task[None] | None = None

    def new_codec(self, peer: str) -> Dc09Codec:
        return Dc09Codec(self.name, peer, self.lookup, is_known_code=self.is_known_code, window=self.window,
                         max_frame=self.max_frame)

    def offend(self, conn: Dc09TcpProtocol, frames: int) -> None:
        delay = self.guard.offend(conn.host, frames)
        if delay == math.inf:
            self.note_cut_off(conn.host)
        elif delay > 0:
            conn.slow_down(delay)

    def note_cut_off(self, host: str) -> None:
        """Close every connection from an address just cut off (it may hold many)."""
        log.warning("%s: %s cut off for %.0f s: too many invalid frames", self.name, host,
                    self.guard.limits.block_seconds)
        for c in list(self.connections):
            if c.host == host and c.transport is not None:
                c.transport.abort()  # drop its unread replies too

    def _check_files(self) -> None:
        """uvloop says nothing when accept() fails for lack of file descriptors (it leaves the
        connections waiting in the backlog): so look, and say it clearly."""
        files = open_files()
        if files is None:
            return
        n, limit = files
        self.files_exhausted = n >= limit - 16
        if self.files_exhausted:
            note_out_of_files(f"{n} of {limit} file descriptors open")

    def note_refused(self, host: str, why: str) -> None:
        now = time.monotonic()
        if now - self._last_refusal_log > 10:  # one line per 10 s, however hard it is hammered
            self._last_refusal_log = now
            log.warning("%s: connection from %s refused: %s (%d refused so far)", self.name, host, why,
                        self.guard.refused)

    def health(self) -> dict[str, Any]:
        h = self.stats.as_dict()
        g = self.guard.health()
        h.update(g)
        store = self.handler.store
        h["rejected_dropped"] = store.rejected.stats.dropped
        notes = []
        if store.failing:
            h["state"] = "degraded"
            notes.append(f"database failing, signals not acknowledged: {store.stats.last_error}")
        if self.files_exhausted:
            h["state"] = "degraded"
            notes.append("out of file descriptors: new connections wait or fail (raise `ulimit -n`,"
                         " or lower max_connections)")
        if g["peers_cut_off"]:
            peers = ", ".join(f"{c['peer']} ({c['seconds_left']} s)" for c in g["cut_off"][:5])
            notes.append(f"{g['peers_cut_off']} peers cut off now: {peers}")
        if notes:
            h["detail"] = "; ".join([*notes, h["detail"]] if h["detail"] else notes)
        return h

    def where(self) -> str:
        transports = " and ".join(t for t, on in (("TCP", self.tcp), ("UDP", self.udp)) if on)
        return f"{transports} {self.host}:{self.port}"

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        if loop.get_exception_handler() is None:
            loop.set_exception_handler(out_of_files_handler)
        files = open_files()
        if files and self.guard.limits.max_connections > files[1] - 64:
            log.warning("%s: max_connections %d is above what the open-file limit (%d) allows; raise"
                        " `ulimit -n`", self.name, self.guard.limits.max_connections, files[1])
        if self.tcp:
            self._tcp = await loop.create_server(lambda: Dc09TcpProtocol(self), self.host, self.port,
                                                 backlog=4096, reuse_address=True)
            if self.port == 0:
                self.port = self._tcp.sockets[0].getsockname()[1]
        if self.udp:
            transport, _ = await loop.create_datagram_endpoint(lambda: Dc09UdpProtocol(self),
                                                               local_addr=(self.host, self.port))
            self._udp = transport
        self._sweeper = asyncio.create_task(self._sweep(), name=f"{self.name}-idle-sweep")
        log.info("%s listening on %s:%d (tcp=%s udp=%s)", self.name, self.host, self.port, self.tcp, self.udp)

    async def _sweep(self) -> None:
        # One periodic sweep instead of a timer per connection: cheap at 10,000 connections.
        ticks = 0
        while True:
            await asyncio.sleep(1.0)
            ticks += 1
            if ticks % 5 == 0:
                self._check_files()
            now = time.monotonic()
            for conn in list(self.connections):
                try:
                    conn.check_idle(now)
                except Exception:
                    log.exception("idle check")

    async def stop(self, flush_timeout: float = 10.0) -> None:
        """Stop taking frames, acknowledge what the store commits, then close the connections: a
        clean stop leaves no committed signal un-ACKed (the panel would only retry it)."""
        self.stopping = True
        if self._sweeper:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        if self._tcp:
            self._tcp.close()  # no new connections
        for c in list(self.connections):
            if c.transport is not None and not c.transport.is_closing():
                c.transport.pause_reading()
        try:  # the commits in flight call back with their ACKs, written to connections still open
            await asyncio.wait_for(self.handler.store.flush_signals(), flush_timeout)
        except TimeoutError:
            log.warning("%s: stopping without the ACKs of signals still being written", self.name)
        for c in list(self.connections):
            if c.transport is not None:
                c.transport.close()  # after the ACKs buffered for it are written
        if self._tcp:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._tcp.wait_closed(), 5)
        if self._udp:
            self._udp.close()
