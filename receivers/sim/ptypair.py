"""A pair of connected pseudo-terminals made by socat, with stable paths (symlinks), so one side can
be "unplugged" (socat stopped) and "plugged in" again (socat started with the same links) — what a
USB serial adapter does to the program reading it.

    socat -d -d pty,raw,echo=0,link=A pty,raw,echo=0,link=B
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
from pathlib import Path


class SocatPair:
    def __init__(self, a: str | Path, b: str | Path) -> None:
        self.a = str(a)  # one end (e.g. the computer's port, what the receiver opens)
        self.b = str(b)  # the other end (the device side, what a simulator opens)
        self.proc: asyncio.subprocess.Process | None = None

    @staticmethod
    def available() -> bool:
        return shutil.which("socat") is not None

    async def start(self, wait: float = 10.0) -> None:
        for p in (self.a, self.b):  # links left by a killed socat would fool the wait below
            with contextlib.suppress(FileNotFoundError):
                os.unlink(p)
        self.proc = await asyncio.create_subprocess_exec(
            "socat", "-d", "-d", f"pty,raw,echo=0,link={self.a}", f"pty,raw,echo=0,link={self.b}",
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while not (os.path.exists(self.a) and os.path.exists(self.b)):
            if self.proc.returncode is not None:
                raise RuntimeError(f"socat exited with {self.proc.returncode}")
            if loop.time() > deadline:
                await self.stop()
                raise TimeoutError("socat did not create its ptys")
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        """Stop socat (both ptys vanish, as when the adapter is pulled out)."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 5)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        for p in (self.a, self.b):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(p)
