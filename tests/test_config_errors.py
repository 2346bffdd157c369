"""What a user sees when the configuration or the machine is wrong: `kuzet run --config` as a real
process prints one line naming the problem (the file and the key, or what and where), no traceback,
and exits 2 for a configuration it cannot use, 1 for a post that cannot start — after stopping
everything it had started."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from console import config

BAD_CONFIGS = [
    # (file text, what the one line must say)
    ("[wbe]\nport = 8001\n", "wbe: unknown key"),
    ("[web]\nprot = 7000\n", "web.prot: unknown key"),
    ("[web\nport = 8001\n", "not valid TOML"),
    ('[web]\nport = "8001"\n', "web.port: input should be a valid integer, not '8001'"),
    ("[web]\nport = 70000\n", "web.port: input should be less than or equal to 65535"),
    ("[[receivers.dc09]]\nport = 7000\nudp = 1\n", "receivers.dc09[0].udp: input should be a valid boolean"),
    ("[[receivers.dc09]]\nprot = 7000\n", "receivers.dc09[0].prot: unknown key"),
    ('[[receivers.serial]]\nurl = "/dev/ttyUSB0"\nbaud = 9600\n', "receivers.serial[0]: unknown keys ['baud']"),
    ('[[receivers.modbus]]\nname = "gw"\n', "receivers.modbus[0]: gw: no [[receivers.modbus.devices]]"),
    ('timezone = "Asia/Almatyy"\n', "timezone: unknown time zone 'Asia/Almatyy'"),
    ('dedup_window = "2m"\n', "dedup_window: input should be a valid number"),
    ("[compliance]\nexpiry_warn_dayz = 30\n", "compliance: unknown setting(s) expiry_warn_dayz"),
]


async def kuzet(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> tuple[int, str, str]:
    """`kuzet ...` as a user runs it: (exit code, stdout, stderr)."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("KUZET_")}
    full_env.update(env or {})
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "kuzet", *args, env=full_env, cwd=cwd,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), 120)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("kuzet: "), err
    return lines[0]


@pytest.mark.parametrize(("text", "says"), BAD_CONFIGS, ids=[s for _t, s in BAD_CONFIGS])
async def test_a_bad_configuration_is_one_line_and_exit_code_2(tmp_path: Path, text: str, says: str) -> None:
    path = tmp_path / "kuzet.toml"
    path.write_text(text)
    code, out, err = await kuzet("run", "--config", str(path), cwd=tmp_path)
    line = one_line(err)
    assert code == 2 and f"{path}: " in line and says in line, (code, line)
    assert out == ""
    assert not (tmp_path / "var").exists()  # nothing was started, not even the data directory


async def test_a_missing_configuration_file(tmp_path: Path) -> None:
    code, _out, err = await kuzet("run", "--config", str(tmp_path / "nope.toml"), cwd=tmp_path)
    assert code == 2 and one_line(err) == f"kuzet: {tmp_path / 'nope.toml'}: no such configuration file"


async def test_with_v_the_traceback_is_shown_too(tmp_path: Path) -> None:
    path = tmp_path / "kuzet.toml"
    path.write_text("[wbe]\n")
    code, _out, err = await kuzet("-v", "run", "--config", str(path), cwd=tmp_path)
    assert code == 2 and "Traceback" in err and err.strip().endswith("wbe: unknown key")


def test_the_readme_configuration_passes_the_check() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme[readme.index("### Configuration"):]
    example = section[section.index("```toml") + len("```toml"):section.index("```", section.index("```toml") + 7)]
    f = config.parse(example, "README.md")
    assert f.web.port == 8000 and f.receivers.dc09 is not None and f.receivers.dc09[0].window == (40, 20)


def test_a_config_file_sets_the_settings(tmp_path: Path) -> None:
    path = tmp_path / "kuzet.toml"
    path.write_text('home = "/srv/kuzet"\ntimezone = "Asia/Almaty"\n[database]\nurl = "postgresql://o@db/kuzet"\n'
                    '[web]\nhost = "0.0.0.0"\nport = 8080\n[[receivers.dc09]]\nhost = "0.0.0.0"\nport = 7001\n'
                    "window = [60, 30]\n")
    s = config.load(path)
    assert (s.web_host, s.web_port, s.home, s.timezone) == ("0.0.0.0", 8080, Path("/srv/kuzet"), "Asia/Almaty")
    assert [(d.host, d.port, d.window, d.udp) for d in s.dc09] == [("0.0.0.0", 7001, (60, 30), True)]


# -- a post that cannot start: exit code 1, one line, nothing left running --------------------------


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A TCP port some other program listens on."""
    with socket.create_server(("127.0.0.1", 0)) as s:
        yield s.getsockname()[1]


def post_config(tmp_path: Path, *, dc09_port: int = 0, web_port: int = 0, home: Path | None = None) -> Path:
    path = tmp_path / "kuzet.toml"
    path.write_text(f'home = "{home or tmp_path / "home"}"\n[web]\nport = {web_port}\n'
                    f"[[receivers.dc09]]\nport = {dc09_port}\nudp = false\n")
    return path


def database_env(owner_dsn: str, app_dsn: str) -> dict[str, str]:
    return {"KUZET_DATABASE_URL": owner_dsn, "KUZET_APP_DATABASE_URL": app_dsn}


async def test_a_dc09_port_in_use(tmp_path: Path, taken_port: int, owner_dsn: str, migrated: str) -> None:
    path = post_config(tmp_path, dc09_port=taken_port)
    code, out, err = await kuzet("run", "--config", str(path), env=database_env(owner_dsn, migrated))
    line = one_line(err)
    assert code == 1 and f"127.0.0.1:{taken_port}" in line and "DC-09" in line and "in use" in line, line
    assert "Kuzet is running" not in out


async def test_a_web_port_in_use_stops_the_receivers_already_listening(
        tmp_path: Path, taken_port: int, owner_dsn: str, migrated: str) -> None:
    with socket.socket() as probe:  # a free port for DC-09, which starts before the web
        probe.bind(("127.0.0.1", 0))
        dc09_port = probe.getsockname()[1]
    path = post_config(tmp_path, dc09_port=dc09_port, web_port=taken_port)
    code, _out, err = await kuzet("run", "--config", str(path), env=database_env(owner_dsn, migrated))
    line = one_line(err)
    assert code == 1 and f"web on 127.0.0.1:{taken_port}" in line and "in use" in line, line
    with socket.create_server(("127.0.0.1", dc09_port)):  # the DC-09 port was let go
        pass


async def test_a_database_that_refuses_the_password(tmp_path: Path, owner_dsn: str) -> None:
    u = urlsplit(owner_dsn)
    wrong = urlunsplit(u._replace(netloc=f"{u.username}:not-the-password@{u.netloc.rpartition('@')[2]}"))
    code, _out, err = await kuzet("run", "--config", str(post_config(tmp_path)),
                                  env={"KUZET_DATABASE_URL": wrong})
    line = one_line(err)
    assert code == 1 and "refused the password" in line and f"{u.username}@" in line, line
    assert "not-the-password" not in line  # the line never shows a password


async def test_a_data_directory_that_cannot_be_written(tmp_path: Path, owner_dsn: str, migrated: str) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    home = blocker / "home"
    code, _out, err = await kuzet("run", "--config", str(post_config(tmp_path, home=home)),
                                  env=database_env(owner_dsn, migrated))
    line = one_line(err)
    assert code == 1 and f"cannot write the data directory {home}" in line, line
