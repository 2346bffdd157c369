"""The live board end to end: a real DC-09 frame sent over TCP to the running system (receiver,
store, alarm engine, web) shows up on /ws/board as a signal and as an alarm within seconds; the
websocket refuses anonymous users, crews and foreign pages; a slow client is dropped, not buffered."""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from console import account, guarded_object, user
from console.config import Dc09Config, Settings
from kuzet.runtime import System
from tests.util import assert_ack, send_frame, sia_frame
from web import feed

PASSWORD = "board-test-pass-1"


# -- the running system ------------------------------------------------------------------------------


@dataclass
class Post:
    system: System
    web: str
    ws: str
    dc09_port: int
    objects: dict[str, int]

    async def token(self, username: str) -> str:
        async with httpx.AsyncClient(base_url=self.web, timeout=10) as c:
            r = await c.post("/api/login", json={"username": username, "password": PASSWORD})
            assert r.status_code == 200, r.text
            return str(c.cookies["kuzet_session"])

    def board(self, token: str | None = None, **kw: Any) -> Any:
        headers = {"Cookie": f"kuzet_session={token}"} if token else {}
        return connect(self.ws, additional_headers=headers, open_timeout=5, **kw)


@pytest.fixture(scope="module")
async def post() -> AsyncIterator[Post]:
    # Not under pytest's tmp_path: the embedded server runs as its own system user, and pytest
    # makes /tmp/pytest-of-<user> private again whenever another session starts.
    home = Path(tempfile.mkdtemp(prefix="kuzet-board-ws-", dir="/tmp"))
    system = System(Settings(home=home, web_port=0, dc09=[Dc09Config(port=0, udp=False)]))
    try:
        await system.start()
        assert system.pool is not None
        objects = {}
        for username, role in (("op", "operator"), ("aud", "auditor"), ("crew", "crew")):
            await user.create(system.pool, username, PASSWORD, role, lang="ru")
        for number, name in (("1234", "Алматы, ТРЦ «Есентай»"), ("2345", "Астана, АЗС № 12")):
            oid = await guarded_object.create(system.pool, name, address="Алматы, пр. Аль-Фараби, 77/8")
            await account.create(system.pool, number, object_id=oid)
            objects[number] = oid
        deadline = time.monotonic() + 5
        while system.directory.find("", "0", "2345") is None:  # the receivers reload on NOTIFY
            assert time.monotonic() < deadline, "the account directory did not reload"
            await asyncio.sleep(0.02)
        yield Post(system, f"http://127.0.0.1:{system.web_port}", f"ws://127.0.0.1:{system.web_port}/ws/board",
                   system.dc09_port, objects)
    finally:
        await system.stop()
        shutil.rmtree(home, ignore_errors=True)


async def next_message(ws: ClientConnection, within: float = 5.0) -> dict[str, Any]:
    msg: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), within))
    return msg


async def wait_for(ws: ClientConnection, want: Callable[[dict[str, Any]], bool], within: float = 5.0,
                   ) -> dict[str, Any]:
    deadline = time.monotonic() + within
    while True:
        left = deadline - time.monotonic()
        assert left > 0, "the expected board message did not arrive in time"
        msg = await next_message(ws, left)
        if want(msg):
            return msg


# -- tests -------------------------------------------------------------------------------------------


async def test_a_dc09_frame_reaches_every_board_as_signal_and_alarm(post: Post) -> None:
    op_token, aud_token = await post.token("op"), await post.token("aud")
    async with post.board(op_token) as op_ws, post.board(aud_token) as aud_ws:
        for ws in (op_ws, aud_ws):
            snap = await next_message(ws)
            assert snap["type"] == "snapshot" and isinstance(snap["alarms"], list)
            assert isinstance(snap["signals"], list)

        assert_ack(await send_frame(post.dc09_port, sia_frame("1234", 1, "BA", "003")), 1, "1234")

        def is_signal(m: dict[str, Any]) -> bool:
            return m["type"] == "signal" and m["signal"]["account"] == "1234" and m["signal"]["code"] == "BA"

        def is_alarm(m: dict[str, Any]) -> bool:
            return m["type"] == "alarm" and m["alarm"]["object_id"] == post.objects["1234"]

        for ws in (op_ws, aud_ws):
            s = (await wait_for(ws, is_signal))["signal"]
            assert s["zone"] == "003" and s["protocol"] == "SIA-DCS" and s["object_name"] == "Алматы, ТРЦ «Есентай»"
            assert "burglary" in s["description"]["en"].lower() and s["description"]["kk"]
            assert s["received_at"].endswith("+00:00")  # ISO 8601 text
            a = (await wait_for(ws, is_alarm))["alarm"]
            assert a["state"] == "new" and a["kind"] == "signal" and a["last_code"] == "BA"
            assert a["title"]["en"] and a["title"]["kk"] and a["signal_count"] == 1

        # an operator's action reaches every board as well
        async with httpx.AsyncClient(base_url=post.web, cookies={"kuzet_session": op_token}, timeout=10) as c:
            r = await c.post(f"/api/alarms/{a['id']}/ack")
            assert r.status_code == 200, r.text
        for ws in (op_ws, aud_ws):
            m = await wait_for(ws, lambda m: m["type"] == "alarm" and m["alarm"]["id"] == a["id"])
            assert m["alarm"]["state"] == "acknowledged"

    # a board that connects now starts from a snapshot that has it all
    async with post.board(op_token) as ws:
        snap = await next_message(ws)
        assert snap["type"] == "snapshot"
        assert [x["state"] for x in snap["alarms"] if x["id"] == a["id"]] == ["acknowledged"]
        assert any(x["account"] == "1234" and x["code"] == "BA" for x in snap["signals"])


async def test_the_panel_simulator_reaches_the_board(post: Post) -> None:
    """`kuzet sim dc09` in its own process, a real transmitter: its events appear on the board."""
    async with post.board(await post.token("op")) as ws:
        assert (await next_message(ws))["type"] == "snapshot"
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "kuzet", "sim", "dc09", "--host", "127.0.0.1",
            "--port", str(post.dc09_port), "--accounts", "1", "--first-account", "2345", "--count", "3",
            "--rate", "20", "--poll", "0", "--seed", "7", stdout=asyncio.subprocess.PIPE)
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), 60)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        assert proc.returncode == 0, out
        assert b"acked 3," in out and b"given up 0" in out, out
        seen = 0
        while seen < 3:
            await wait_for(ws, lambda m: m["type"] == "signal" and m["signal"]["account"] == "2345", within=10)
            seen += 1


async def test_a_burst_of_frames_arrives_in_order_without_loss(post: Post) -> None:
    token = await post.token("op")
    async with post.board(token) as ws:
        await next_message(ws)  # snapshot
        codes = ["BA", "TA", "FA", "PA", "BR", "OP", "CL", "RP"]
        replies = await asyncio.gather(*(send_frame(post.dc09_port, sia_frame("2345", 100 + i, code, f"{i:03d}"))
                                         for i, code in enumerate(codes)))
        for i, reply in enumerate(replies):
            assert_ack(reply, 100 + i, "2345")
        got: list[int] = []
        while len(got) < len(codes):
            m = await wait_for(ws, lambda m: m["type"] == "signal" and m["signal"]["account"] == "2345")
            got.append(m["signal"]["id"])
        assert got == sorted(got) and len(set(got)) == len(codes)


def hub_of(system: System) -> feed.Hub:
    assert system._web is not None  # the app System serves (no public accessor for it)
    hub: feed.Hub = system._web.config.app.state.hub
    return hub


async def test_the_feed_survives_losing_its_database_listener(post: Post) -> None:
    hub = hub_of(post.system)
    assert post.system.pool is not None and hub.listener.connection is not None
    async with post.board(await post.token("op")) as ws:
        await next_message(ws)  # snapshot
        before = hub.reconnects
        await post.system.pool.execute("SELECT pg_terminate_backend($1)", hub.listener.connection.get_server_pid())
        # notifications sent while it was away are lost, so every board gets a fresh snapshot
        snap = await wait_for(ws, lambda m: m["type"] == "snapshot", within=10)
        assert hub.reconnects == before + 1 and hub.listening.is_set()
        assert any(a["object_id"] == post.objects["1234"] for a in snap["alarms"])
        assert_ack(await send_frame(post.dc09_port, sia_frame("1234", 200, "TA", "009")), 200, "1234")
        m = await wait_for(ws, lambda m: m["type"] == "signal" and m["signal"]["code"] == "TA"
                           and m["signal"]["zone"] == "009")
        assert m["signal"]["account"] == "1234"


async def test_the_board_websocket_refuses_anonymous_crew_and_foreign_pages(post: Post) -> None:
    async def close_code(ws_cm: Any) -> int | None:
        async with ws_cm as ws:
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 5)
            return closed.value.rcvd.code if closed.value.rcvd else None

    assert await close_code(post.board()) == 4401
    assert await close_code(post.board("not-a-real-session")) == 4401
    assert await close_code(post.board(await post.token("crew"))) == 4403
    assert await close_code(post.board(await post.token("op"), origin="http://evil.example")) == 4403

    # logging out ends the session the websocket was opened with: a new connection is refused
    token = await post.token("op")
    async with httpx.AsyncClient(base_url=post.web, cookies={"kuzet_session": token}, timeout=10) as c:
        assert (await c.post("/api/logout")).status_code == 200
    assert await close_code(post.board(token)) == 4401


async def test_a_slow_client_is_dropped_not_buffered() -> None:
    hub = feed.Hub(pool=None, dsn="", queue_size=3)  # type: ignore[arg-type]  # no database needed here
    someone = user.User(1, "op", "", "operator", "ru", None)
    fast, slow = hub.register(someone), hub.register(someone)
    for i in range(3):
        hub.broadcast([f'{{"n":{i}}}'])
        fast.queue.get_nowait()
    assert not slow.gone.is_set()
    hub.broadcast(['{"n":3}'])  # the slow one's queue is full now
    assert slow.gone.is_set() and slow.close_code == feed.CLOSE_TOO_SLOW
    assert slow not in hub.clients and fast in hub.clients and hub.dropped == 1
    assert slow.queue.qsize() == 3  # it never grew past its bound
    assert fast.queue.get_nowait() == '{"n":3}'


def test_board_json_has_iso_times_and_readable_bytes() -> None:
    from datetime import UTC, datetime

    text = feed.dumps({"at": datetime(2026, 11, 25, 6, 0, tzinfo=UTC), "raw": b"\n\x00A\r", "kk": "Қ"})
    assert json.loads(text) == {"at": "2026-11-25T06:00:00+00:00", "raw": "\\n\\x00A\\r", "kk": "Қ"}
