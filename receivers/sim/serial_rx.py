"""A hardware alarm receiver's automation output, emulated: writes Sur-Gard MLR2 or Ademco 685 lines
into a serial port (one end of a pseudo-terminal pair, or a real port) and checks the ACK/NAK that
comes back, like the real thing: stop-and-wait, each message retransmitted up to 3 more times on NAK
or when no ACK arrives within 4 s, and a heartbeat every N seconds.

    kuzet sim serial --link /tmp/kuzet-mlr2 --format mlr2 --rate 1 --heartbeat 30
    # then [[receivers.serial]] url = "/tmp/kuzet-mlr2" reads what it sends

or `--port /dev/pts/N` for one end of `socat -d -d pty,raw,echo=0 pty,raw,echo=0`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import sys
import time
import tty
from dataclasses import dataclass, field

import serial

from receivers.serial import ademco685, mlr2
from receivers.tasks import stop_task

ACK = 0x06
NAK = 0x15


@dataclass(slots=True)
class SendResult:
    frame: bytes
    outcome: str  # "ack" | "nak" (NAKed on every attempt) | "timeout" (no answer on the last attempt)
    attempts: int
    replies: list[str] = field(default_factory=list)  # what each attempt got: "ack", "nak", "timeout"


class SerialReceiverEmulator:
    """One receiver's output line. Use `open()` (or `create_pty()`), `send()`, `close()`."""

    def __init__(self, port: str | None = None, *, fmt: str = "mlr2", receiver_no: str = "",
                 line_no: str = "1", baudrate: int = 9600, heartbeat: float = 0.0, ack_timeout: float = 4.0,
                 retries: int = 3) -> None:
        if fmt not in ("mlr2", "685"):
            raise ValueError("fmt must be mlr2 or 685")
        self.port = port
        self.fmt = fmt
        self.receiver_no = receiver_no or ("01" if fmt == "mlr2" else "1")
        self.line_no = line_no
        self.baudrate = baudrate
        self.heartbeat = heartbeat
        self.ack_timeout = ack_timeout
        self.retries = retries
        self.results: list[SendResult] = []
        self.closed = asyncio.Event()  # set when the port went away (or close())
        self.link: str | None = None  # the receiver's end of a pty we created, as linked
        self.pty_path = ""  # ... and its real /dev/pts path
        self._fd = -1
        self._serial: serial.Serial | None = None
        self._slave_fd = -1
        self._replies: asyncio.Queue[int] = asyncio.Queue()
        self._lock = asyncio.Lock()  # stop-and-wait: one message in flight, like the hardware
        self._hb_task: asyncio.Task[None] | None = None

    # -- the port --------------------------------------------------------------------------------

    async def open(self) -> None:
        """Open an existing port (a pty end or a real serial port)."""
        assert self.port
        self._serial = serial.Serial(self.port, baudrate=self.baudrate, timeout=0)  # sets raw mode too
        self._fd = self._serial.fileno()
        self._start()

    async def create_pty(self, link: str | None = None) -> str:
        """Create a pty pair; we write on the master, the receiver opens the slave (or `link` to it).
        We keep the slave open too, so the receiver may close and reopen its end freely."""
        master, slave = os.openpty()
        tty.setraw(slave)  # a fresh pty is in cooked mode with echo (stack notes)
        tty.setraw(master)
        os.set_blocking(master, False)
        self._fd, self._slave_fd = master, slave
        path = self.pty_path = os.ttyname(slave)
        if link:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(link)
            os.symlink(path, link)
            self.link = link
        self._start()
        return link or path

    def _start(self) -> None:
        self.closed.clear()
        asyncio.get_running_loop().add_reader(self._fd, self._readable)
        if self.heartbeat > 0:
            self._hb_task = asyncio.create_task(self._heartbeats(), name="sim-serial-heartbeat")

    def _readable(self) -> None:
        try:
            data = os.read(self._fd, 256)
        except BlockingIOError:
            return
        except OSError:  # EIO: the other side of the pty is gone
            data = b""
        if not data:
            self._detach()
            return
        for b in data:
            if b in (ACK, NAK):
                self._replies.put_nowait(b)

    def _detach(self) -> None:
        if self._fd >= 0:
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_reader(self._fd)
        self.closed.set()

    async def close(self) -> None:
        await stop_task(self._hb_task)
        self._hb_task = None
        self._detach()
        if self._serial is not None:
            self._serial.close()
            self._serial = None
        elif self._fd >= 0:
            os.close(self._fd)
        if self._slave_fd >= 0:
            os.close(self._slave_fd)
        self._fd = self._slave_fd = -1
        if self.link:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.link)

    async def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                n = os.write(self._fd, view)
            except BlockingIOError:
                await asyncio.sleep(0.01)  # the other side is not reading: its buffer is full
                continue
            view = view[n:]

    # -- messages --------------------------------------------------------------------------------

    async def send(self, frame: bytes) -> SendResult:
        """Send one framed message; retransmit on NAK or silence, as the hardware does."""
        async with self._lock:
            result = SendResult(frame, "timeout", 0)
            for _ in range(1 + self.retries):
                if self.closed.is_set():
                    break
                while not self._replies.empty():  # a late reply to an earlier attempt does not count
                    self._replies.get_nowait()
                result.attempts += 1
                try:
                    await self._write(frame)
                except OSError:
                    self._detach()
                    break
                try:
                    reply = await asyncio.wait_for(self._replies.get(), self.ack_timeout)
                except TimeoutError:
                    result.replies.append("timeout")
                    result.outcome = "timeout"
                    continue
                if reply == ACK:
                    result.replies.append("ack")
                    result.outcome = "ack"
                    break
                result.replies.append("nak")
                result.outcome = "nak"
            self.results.append(result)
            return result

    async def send_burst(self, frames: list[bytes], reply_wait: float = 5.0) -> list[str]:
        """Write several messages back to back (no real receiver does; it tests that the replies come
        back in message order) and collect one reply per message."""
        async with self._lock:
            while not self._replies.empty():
                self._replies.get_nowait()
            await self._write(b"".join(frames))
            out: list[str] = []
            with contextlib.suppress(TimeoutError):
                while len(out) < len(frames):
                    reply = await asyncio.wait_for(self._replies.get(), reply_wait)
                    out.append("ack" if reply == ACK else "nak")
            return out

    def cid(self, account: str, q: str, code: str, group: str = "01", zone: str = "001", *,
            clock: str = "") -> bytes:
        """A Contact ID message in this line's format (q is E, R or P)."""
        if self.fmt == "685":
            return ademco685.encode_cid(account, q, code, group, zone, receiver_no=self.receiver_no,
                                        line_no=self.line_no)
        return mlr2.encode_cid(account, q, code, group, zone, receiver_no=self.receiver_no,
                               line_no=self.line_no, clock=clock)

    def sia(self, data: str) -> bytes:
        if self.fmt != "mlr2":
            raise ValueError("SIA level 2 is an MLR2 format")
        return mlr2.encode_sia(data, receiver_no=self.receiver_no, line_no=self.line_no)

    def heartbeat_frame(self) -> bytes:
        if self.fmt == "685":
            return ademco685.encode_heartbeat(receiver_no=self.receiver_no, line_no=self.line_no)
        return mlr2.encode_heartbeat(receiver_no=self.receiver_no, line_no=self.line_no)

    async def _heartbeats(self) -> None:
        while not self.closed.is_set():
            await self.send(self.heartbeat_frame())
            await asyncio.sleep(self.heartbeat)

    def counts(self) -> dict[str, int]:
        out = {"ack": 0, "nak": 0, "timeout": 0}
        for r in self.results:
            out[r.outcome] += 1
        return out


# -- command line (`kuzet sim serial`) ---------------------------------------------------------------

def add_arguments(p: argparse.ArgumentParser) -> None:
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--port", help="an existing port to write to (a pty end, /dev/ttyUSB0)")
    where.add_argument("--link", help="create a pty pair and link the receiver's end here")
    p.add_argument("--format", choices=["mlr2", "685"], default="mlr2")
    p.add_argument("--baudrate", type=int, default=9600)
    p.add_argument("--receiver-no", default="", help="RR (MLR2, default 01) or R (685, default 1)")
    p.add_argument("--line-no", default="1")
    p.add_argument("--accounts", type=int, default=10, help="accounts 1001.. to report for")
    p.add_argument("--rate", type=float, default=0.5, help="events per second")
    p.add_argument("--count", type=int, default=0, help="stop after this many events (0: until Ctrl-C)")
    p.add_argument("--heartbeat", type=float, default=30.0, help="seconds between heartbeats (0: none)")
    p.add_argument("--sia", action="store_true", help="MLR2: send SIA level 2 instead of Contact ID")
    p.add_argument("--ack-timeout", type=float, default=4.0)
    p.add_argument("--seed", type=int, default=None)


_EVENTS = [("130", "BA"), ("137", "TA"), ("110", "FA"), ("120", "PA"), ("301", "AT"), ("602", "RP")]


async def _main(args: argparse.Namespace) -> int:
    rng = random.Random(args.seed)
    emu = SerialReceiverEmulator(args.port, fmt=args.format, receiver_no=args.receiver_no, line_no=args.line_no,
                                 baudrate=args.baudrate, heartbeat=args.heartbeat, ack_timeout=args.ack_timeout)
    if args.link:
        path = await emu.create_pty(args.link)
        print(f"receiver end of the pty: {path} -> {emu.pty_path}", flush=True)
    else:
        await emu.open()
    sent = 0
    started = time.monotonic()
    try:
        while not args.count or sent < args.count:
            await asyncio.sleep(rng.expovariate(args.rate) if args.rate > 0 else 3600)
            account = f"{1001 + rng.randrange(max(1, args.accounts))}"
            cid, sia_code = rng.choice(_EVENTS)
            zone = f"{rng.randint(1, 16):03d}"
            if args.sia and args.format == "mlr2":
                frame = emu.sia(f"#{account}|Nri1/{sia_code}{zone}")
            else:
                frame = emu.cid(account, rng.choice("EER"), cid, "01", zone)
            result = await emu.send(frame)
            sent += 1
            print(f"{result.outcome:<7} x{result.attempts} {frame!r}", flush=True)
            if emu.closed.is_set():
                print("port closed", file=sys.stderr)
                return 1
    except (KeyboardInterrupt, asyncio.CancelledError):
        pass
    finally:
        await emu.close()
        c = emu.counts()
        print(f"{sent} events in {time.monotonic() - started:.1f} s: {c['ack']} ACKed, {c['nak']} NAKed,"
              f" {c['timeout']} unanswered (heartbeats included)", flush=True)
    return 0 if not (emu.counts()["nak"] or emu.counts()["timeout"]) else 1


def main(args: argparse.Namespace) -> int:
    with contextlib.suppress(KeyboardInterrupt):
        return asyncio.run(_main(args))
    return 0


__all__ = ["SendResult", "SerialReceiverEmulator", "add_arguments", "main"]
