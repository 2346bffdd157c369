"""SIGTERM at any moment of `kuzet demo`'s start-up (and after it) stops everything it started:
no embedded PostgreSQL of its data directory, no simulator is left. Real processes, real signals."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from console import db

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Demo:
    """`kuzet demo` in a subprocess, its output read line by line, its descendants recorded."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.dc09_port = free_port()
        self.modbus_port = free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "kuzet", "demo", "--home", str(home), "--web-port", "0",
             "--dc09-port", str(self.dc09_port), "--modbus-port", str(self.modbus_port), "--panels", "2"],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.lines: list[str] = []
        self.seen: dict[int, float] = {}  # every descendant ever seen: pid -> create time
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self._watcher = threading.Thread(target=self._watch, daemon=True)
        self._watcher.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            self.lines.append(raw.decode(errors="replace").rstrip())

    def _watch(self) -> None:
        try:
            me = psutil.Process(self.proc.pid)
        except psutil.Error:
            return
        while self.proc.poll() is None:
            try:
                for c in me.children(recursive=True):
                    self.seen.setdefault(c.pid, c.create_time())
            except psutil.Error:
                pass
            time.sleep(0.01)

    def wait_for(self, cond: Callable[[], bool], what: str, deadline: float = 90.0) -> None:
        end = time.monotonic() + deadline
        while not cond():
            if self.proc.poll() is not None:
                raise AssertionError(f"kuzet demo ended before {what}:\n" + "\n".join(self.lines))
            if time.monotonic() > end:
                raise AssertionError(f"timed out waiting for {what}:\n" + "\n".join(self.lines))
            time.sleep(0.01)

    def said(self, text: str) -> bool:
        return any(text in line for line in self.lines)

    def terminate_and_wait(self, deadline: float = 60.0) -> int:
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(deadline)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("kuzet demo did not stop on SIGTERM:\n" + "\n".join(self.lines)) from None
        self._watcher.join(5)
        self._reader.join(5)
        return code

    def leftovers(self) -> list[str]:
        """Processes of this demo still alive (a zombie counts as gone)."""
        left = []
        for pid, created in self.seen.items():
            try:
                p = psutil.Process(pid)
                if p.create_time() == created and p.status() != psutil.STATUS_ZOMBIE:
                    left.append(f"{pid} {' '.join(p.cmdline())}")
            except psutil.Error:
                pass
        marks = (str(self.home), f"127.0.0.1:{self.modbus_port}", f"--port {self.dc09_port}")
        for p in psutil.process_iter(["pid", "cmdline", "status"]):
            cmd = " ".join(p.info["cmdline"] or [])
            if p.info["status"] != psutil.STATUS_ZOMBIE and any(m in cmd for m in marks) and p.pid != os.getpid():
                left.append(f"{p.pid} {cmd}")
        return sorted(set(left))

    def kill_leftovers(self) -> None:
        for line in self.leftovers():
            with_pid = int(line.split()[0])
            try:
                psutil.Process(with_pid).kill()
            except psutil.Error:
                pass


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


MOMENTS: dict[str, Callable[[Demo], bool]] = {
    "immediately": lambda d: True,
    "simulators started": lambda d: len(d.seen) >= 2,
    "database started": lambda d: db.postmaster_running(d.home / "pgdata"),
    "DC-09 port open": lambda d: _port_open(d.dc09_port),
    "running": lambda d: d.said("Kuzet is running"),
    "panels started": lambda d: d.said("Ctrl-C stops everything"),
}


@pytest.fixture(scope="module")
def home() -> Iterator[Path]:
    # One data directory for every moment, as on a real post restarted again and again. Not under
    # pytest's tmp_path: pytest keeps its base directory 0700, which the embedded server's own
    # user (when run as root) cannot enter.
    base = Path(tempfile.mkdtemp(prefix="kuzet-stop-", dir="/tmp"))
    yield base / "home"
    shutil.rmtree(base, ignore_errors=True)


@pytest.mark.parametrize("moment", list(MOMENTS))
def test_sigterm_during_start_up_leaves_no_process(home: Path, moment: str) -> None:
    demo = Demo(home)
    try:
        demo.wait_for(lambda: MOMENTS[moment](demo), moment)
        code = demo.terminate_and_wait()
        left = demo.leftovers()
        assert not left, f"left running after SIGTERM {moment}: {left}\n" + "\n".join(demo.lines)
        assert code == 0 or moment == "immediately", "\n".join(demo.lines)
        assert not db.postmaster_running(home / "pgdata")
    finally:
        if demo.proc.poll() is None:
            demo.proc.kill()
        demo.kill_leftovers()


def test_stale_ids_in_the_handle_file_do_not_keep_postgres_running(home: Path) -> None:
    """After a crash the embedded server's handle file names processes long gone."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    demo = Demo(home)
    try:
        demo.wait_for(lambda: db.postmaster_running(home / "pgdata"), "the database")
        handles = home / "pgdata" / ".handle_pids.json"
        demo.wait_for(lambda: handles.exists() and demo.proc.pid in json.loads(handles.read_text() or "[]"),
                      "the handle file")
        pids = json.loads(handles.read_text())
        handles.write_text(json.dumps([dead.pid, *pids, 999_999_999]))  # as a crash leaves it
        demo.wait_for(lambda: demo.said("Kuzet is running"), "the start")
        assert demo.terminate_and_wait() == 0
        assert not demo.leftovers()
        assert not db.postmaster_running(home / "pgdata")
    finally:
        if demo.proc.poll() is None:
            demo.proc.kill()
        demo.kill_leftovers()
