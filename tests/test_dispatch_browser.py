"""Dispatch in two real Chromium pages against the whole running system: an operator's desktop and a
crew's phone (360x740, emulated geolocation). A DC-09 frame sent over TCP opens an alarm; the
operator sends the suggested group from the alarm's card; the phone gets the assignment live, the
crew moves it step by step while the phone's position moves on the operator's group panel; the
alarm's timeline shows every step and the alarm closes with the crew's outcome. Then: a phone that
loses its connection queues a step and sends it once when back, and a step whose answer was lost
on the way is sent again with the same request id and recorded once.

Never skipped: without a Chromium the tests fail and say how to get one (tests.util.chromium).
"""

from __future__ import annotations

import asyncio
import re
import shutil
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, BrowserContext, Page, Route, async_playwright, expect

from console import account, guarded_object, user
from console.alarm import Actor
from console.config import Dc09Config, Settings
from dispatch import group, shift, staff, vehicle
from kuzet.runtime import System
from tests.test_board_browser import send_alarm, watch_errors
from tests.util import CHROMIUM_ARGS, chromium, sia_frame, until

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
PASSWORD = "dispatch-browser-pass-1"
ADMIN = Actor(None, "test")

expect.set_options(timeout=15_000)

# The object (a bank branch in Almaty) and two groups: the first based 2.7 km away, the second 6 km.
OBJECT = ("4321", "Алматы, филиал банка «Самал»", "Алматы, ул. Панфилова, 98", 43.2610, 76.9457)
OBJECT2 = ("4322", "Алматы, аптека «Жанна»", "Алматы, ул. Толе би, 180", 43.2540, 76.8890)
GROUPS = [("ГБР-1 Алматы", "Беркут-1", 43.2370, 76.9300, "777 ABK 02", "crew1", "Серік Ахметов"),
          ("ГБР-2 Алматы", "Сұңқар-2", 43.2200, 76.8700, "123 KZA 02", "crew2", "Ержан Нұрланов")]
# where the first crew's phone is, step by step, on its way from the base to the object
ROUTE = [(43.2372, 76.9302), (43.2450, 76.9370), (43.2540, 76.9420), (43.2608, 76.9455)]


@dataclass
class Post:
    system: System
    url: str
    dc09_port: int
    users: dict[str, int]
    groups: dict[str, int] = field(default_factory=dict)
    seq: int = 0

    async def q(self, sql: str, *args: Any) -> Any:
        assert self.system.pool is not None
        return await self.system.pool.fetchval(sql, *args)

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq


@pytest.fixture(scope="module")
async def post() -> AsyncIterator[Post]:
    home = Path(tempfile.mkdtemp(prefix="kuzet-dispatch-browser-", dir="/tmp"))
    system = System(Settings(home=home, web_port=0, dc09=[Dc09Config(port=0, udp=False)]))
    try:
        await system.start()
        pool = system.pool
        assert pool is not None
        users = {name: await user.create(pool, name, PASSWORD, role, full_name=full, lang="ru")
                 for name, role, full in (("operator", "operator", "Дежурный оператор"), ("admin", "admin", "Әкімші"),
                                          ("auditor", "auditor", "Аудитор"),
                                          ("crew1", "crew", GROUPS[0][6]), ("crew2", "crew", GROUPS[1][6]))}
        p = Post(system, f"http://127.0.0.1:{system.web_port}", system.receivers[0].port, users)
        now = datetime.now(UTC)
        async with pool.acquire() as conn:
            for name, call_sign, lat, lon, plate, crew, full in GROUPS:
                gid = await group.create(conn, ADMIN, name=name, call_sign=call_sign, base_address=name,
                                         latitude=lat, longitude=lon, order_number="12-ГБР")
                vid = await vehicle.create(conn, ADMIN, plate=plate, model="Toyota Hilux",
                                           registration_certificate="KZ 02 123456", group_id=gid)
                sid = await staff.create(conn, ADMIN, full_name=full, role="senior", group_id=gid,
                                         user_id=users[crew], phone="+7 701 000 0000")
                driver = await staff.create(conn, ADMIN, full_name=f"Водитель {call_sign}", role="driver",
                                            group_id=gid)
                await shift.create(conn, ADMIN, group_id=gid, vehicle_id=vid, starts_at=now - timedelta(hours=1),
                                   ends_at=now + timedelta(hours=11), staff_ids=[sid, driver])
                p.groups[crew] = gid
            for number, name, address, lat, lon in (OBJECT, OBJECT2):
                oid = await guarded_object.create(conn, name, address=address, latitude=lat, longitude=lon,
                                                  instructions="Тревожная кнопка — ГБР немедленно.")
                acc = await account.create(conn, number, object_id=oid, supervision_interval=600)
                await guarded_object.add_zone(conn, acc, "003", "ИК-датчик холл")
                await guarded_object.add_zone(conn, acc, "005", "Тревожная кнопка")
                await guarded_object.add_contact(conn, oid, "Айгүл Серікқызы", "+7 701 555 12 34", call_order=1)
        deadline = time.monotonic() + 5
        while system.directory.find("", "0", OBJECT2[0]) is None:
            assert time.monotonic() < deadline, "the account directory did not reload"
            await asyncio.sleep(0.02)
        yield p
    finally:
        await system.stop()
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    exe = chromium()
    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=exe, headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            await b.close()


async def login(page: Page, url: str, username: str, lands_on: str) -> None:
    await page.goto(url + "/login")
    await page.get_by_test_id("login-username").fill(username)
    await page.get_by_test_id("login-password").fill(PASSWORD)
    await page.get_by_test_id("login-submit").click()
    await page.wait_for_url(url + lands_on)


async def phone(browser: Browser, post: Post, username: str, at: tuple[float, float]) -> tuple[BrowserContext, Page]:
    context = await browser.new_context(viewport={"width": 360, "height": 740}, is_mobile=True, has_touch=True,
                                        locale="ru-RU", geolocation={"latitude": at[0], "longitude": at[1]},
                                        permissions=["geolocation"])
    page = await context.new_page()
    await login(page, post.url, username, "/crew")  # a crew member lands on the phone view
    await expect(page.get_by_test_id("crew-connection")).to_have_attribute("data-state", "online")
    return context, page


def group_row(page: Page, gid: int):  # type: ignore[no-untyped-def]
    return page.locator(f'[data-testid="group-row"][data-group-id="{gid}"]')


async def shows_position(page: Page, gid: int, lat: float, lon: float) -> None:
    pos = group_row(page, gid).get_by_test_id("group-position")
    await expect(pos).to_have_attribute("data-lat", re.compile("^" + re.escape(str(lat))))
    await expect(pos).to_have_attribute("data-lon", re.compile("^" + re.escape(str(lon))))


async def test_operator_dispatches_and_the_crew_answers_on_its_phone(post: Post, browser: Browser) -> None:
    g1, g2 = post.groups["crew1"], post.groups["crew2"]
    desk = await browser.new_context(viewport={"width": 1600, "height": 900}, locale="ru-RU")
    board = await desk.new_page()
    board_errors = watch_errors(board)
    await login(board, post.url, "operator", "/board")
    await expect(board.get_by_test_id("connection-indicator")).to_have_attribute("data-state", "online")
    panel = board.get_by_test_id("group-panel")
    await expect(panel.get_by_test_id("group-row")).to_have_count(2)
    await expect(group_row(board, g1).get_by_test_id("group-state")).to_have_text("Свободна")
    await expect(group_row(board, g1).get_by_test_id("group-vehicle")).to_contain_text("777 ABK 02")
    await expect(group_row(board, g1).get_by_test_id("group-crew")).to_contain_text("Серік Ахметов")
    await expect(panel.get_by_test_id("dispatch-warning")).to_have_count(0)  # two groups on duty with vehicles

    # the crew's phone: logged in, on duty, its position reaches the operator's panel
    ctx, crew = await phone(browser, post, "crew1", ROUTE[0])
    crew_errors = watch_errors(crew)
    await expect(crew.get_by_test_id("crew-idle")).to_be_visible()
    await expect(crew.get_by_test_id("crew-group")).to_contain_text("ГБР-1 Алматы")
    await shows_position(board, g1, *ROUTE[0])
    await expect(group_row(board, g1).get_by_test_id("group-position-age")).to_contain_text("назад")

    # a panel reports a burglary
    await send_alarm(post.dc09_port, sia_frame(OBJECT[0], post.next_seq(), "BA", "003"))
    row = board.get_by_test_id("alarm-row").filter(has_text="Самал")
    await expect(row).to_have_count(1)
    alarm_id = int(await row.get_attribute("data-alarm-id") or 0)
    await row.click()
    await row.get_by_test_id("ack-button").click()
    await expect(row).to_have_attribute("data-state", "acknowledged")
    card = board.get_by_test_id("object-card")
    # the object's instructions are the operator's checklist: done, so the crew's finish may close the alarm
    for item in await card.get_by_test_id("checklist-item").all():
        await item.check()
    await expect(card.get_by_test_id("checklist-progress")).to_have_text("1/1")

    # a note for the crew, then send the suggested group: the nearest available one, with distance and ETA
    await card.get_by_test_id("note-input").fill("Ключи у охранника на входе")
    await card.get_by_test_id("note-button").click()
    await expect(card.get_by_test_id("card-history")).to_contain_text("Ключи у охранника")
    await card.get_by_test_id("dispatch-open").click()
    suggested = card.get_by_test_id("dispatch-suggested")
    await expect(suggested).to_have_attribute("data-group-id", str(g1))
    await expect(suggested).to_contain_text("км")
    await expect(suggested).to_contain_text("мин")
    await expect(suggested.locator("input")).to_be_checked()
    await card.get_by_test_id("dispatch-send").click()
    await expect(row).to_have_attribute("data-state", "dispatched")
    asg = card.get_by_test_id("assignment")
    await expect(asg).to_have_count(1)
    await expect(asg).to_have_attribute("data-status", "new")
    assignment_id = int(await asg.get_attribute("data-assignment-id") or 0)
    await expect(group_row(board, g1).get_by_test_id("group-state")).to_have_text("Направлена")
    await expect(group_row(board, g1).get_by_test_id("group-assignment")).to_contain_text("Самал")
    await expect(group_row(board, g2).get_by_test_id("group-state")).to_have_text("Свободна")

    # the phone gets it live: the object, its address, navigation, zones, keyholders, instructions
    job = crew.get_by_test_id("crew-assignment")
    await expect(job).to_have_attribute("data-status", "new")
    await expect(job.get_by_test_id("crew-object-name")).to_have_text(OBJECT[1])
    await expect(job.get_by_test_id("crew-object-address")).to_have_text(OBJECT[2])
    href = await job.get_by_test_id("crew-navigate").get_attribute("href") or ""
    assert href.startswith(f"geo:{OBJECT[3]:.6f},{OBJECT[4]:.6f}"), href
    await expect(job.get_by_test_id("crew-zones")).to_contain_text("ИК-датчик холл")
    assert await job.get_by_test_id("crew-call").first.get_attribute("href") == "tel:+77015551234"
    await expect(job.get_by_test_id("crew-instructions")).to_contain_text("ГБР немедленно")
    await expect(job.get_by_test_id("crew-operator-note")).to_contain_text("Ключи у охранника на входе")

    # the crew moves through its steps while its position moves on the operator's panel
    steps = [("accepted", "Принять", "Приняла"), ("en-route", "Выехали", "В пути"),
             ("on-site", "Прибыли на место", "На месте")]
    for i, (status, button, state) in enumerate(steps, start=1):
        step = job.get_by_test_id("crew-step-button")
        await expect(step).to_have_text(button)
        await step.click()
        await expect(job).to_have_attribute("data-status", status)
        await expect(crew.get_by_test_id("crew-pending")).to_be_hidden()
        await expect(group_row(board, g1).get_by_test_id("group-state")).to_have_text(state)
        await ctx.set_geolocation({"latitude": ROUTE[i][0], "longitude": ROUTE[i][1]})
        await shows_position(board, g1, *ROUTE[i])
    await expect(row).to_have_attribute("data-state", "on-site")
    await expect(asg).to_have_attribute("data-status", "on-site")

    # finished, with an outcome and a short report: the outcome is required
    await job.get_by_test_id("crew-step-button").click()
    await job.get_by_test_id("crew-finish-submit").click()
    await expect(job.get_by_test_id("crew-outcome-error")).to_be_visible()
    await job.get_by_test_id("crew-outcome").select_option("false-alarm")
    await job.get_by_test_id("crew-report").fill("Окна и двери целы, сработал датчик в холле")
    await crew.screenshot(path=str(ARTIFACTS / "crew-phone-finishing.png"))
    await job.get_by_test_id("crew-finish-submit").click()
    await expect(crew.get_by_test_id("crew-idle")).to_be_visible()

    # the alarm closed with the crew's outcome; its card shows every step with its time
    await expect(row).to_have_count(0)
    await expect(card.get_by_test_id("card-alarm-state")).to_have_text("Закрыта")
    await expect(asg).to_have_attribute("data-status", "finished")
    for step in ("new", "accepted", "en-route", "on-site", "finished"):
        await expect(asg.locator(f'[data-step="{step}"]')).to_have_class("done")
    await expect(asg.get_by_test_id("assignment-report")).to_contain_text("Ложная тревога")
    history = card.get_by_test_id("card-history")
    for text in ("ГБР направлена", "ГБР приняла", "ГБР в пути", "ГБР на месте", "ГБР завершила", "Закрыта"):
        await expect(history).to_contain_text(text)
    await expect(group_row(board, g1).get_by_test_id("group-state")).to_have_text("Возвращается")

    assert await post.q("SELECT outcome FROM alarms WHERE id = $1", alarm_id) == "false-alarm"
    kinds = await post.q("SELECT array_agg(kind ORDER BY id) FROM assignment_events WHERE assignment_id = $1",
                         assignment_id)
    assert kinds == ["dispatched", "accepted", "en-route", "on-site", "finished"]
    timeline = await board.request.get(f"{post.url}/api/alarms/{alarm_id}")
    detail = await timeline.json()
    (a,) = detail["assignments"]
    assert all(a[k] for k in ("dispatched_at", "accepted_at", "en_route_at", "on_site_at", "finished_at"))
    assert a["report"] == "Окна и двери целы, сработал датчик в холле"
    positions = await post.q("SELECT count(*) FROM group_positions WHERE group_id = $1", g1)
    assert positions >= len(ROUTE)

    await board.screenshot(path=str(ARTIFACTS / "board-groups.png"))
    assert not board_errors, board_errors
    assert not crew_errors, crew_errors
    await ctx.close()
    await desk.close()


async def test_the_phone_survives_a_dropped_connection(post: Post, browser: Browser) -> None:
    g2 = post.groups["crew2"]
    ctx, crew = await phone(browser, post, "crew2", (43.2200, 76.8700))
    await send_alarm(post.dc09_port, sia_frame(OBJECT2[0], post.next_seq(), "PA", "005"))
    await until(lambda: post.q("SELECT count(*) FROM alarms WHERE account = $1 AND state <> 'closed'", OBJECT2[0]),
                "the alarm on the pharmacy")
    alarm_id = await post.q("SELECT id FROM alarms WHERE account = $1 AND state <> 'closed'", OBJECT2[0])
    desk = await browser.new_context(viewport={"width": 1600, "height": 900}, locale="ru-RU")
    board = await desk.new_page()
    await login(board, post.url, "operator", "/board")
    # the board is live before the alert can fire (an alert is a message, not part of the snapshot)
    await expect(board.get_by_test_id("connection-indicator")).to_have_attribute("data-state", "online")
    await post.q("UPDATE dispatch_settings SET accept_timeout = 2")  # the crew is late to accept at once
    r = await desk.request.post(f"{post.url}/api/alarms/{alarm_id}/dispatch", data={"group_id": g2},
                                headers={"origin": post.url})
    assert r.status == 201, await r.text()
    assignment_id = (await r.json())["id"]
    job = crew.get_by_test_id("crew-assignment")
    await expect(job).to_have_attribute("data-status", "new")

    async def events(kind: str) -> int:
        n: int = await post.q("SELECT count(*) FROM assignment_events WHERE assignment_id = $1 AND kind = $2",
                              assignment_id, kind)
        return n

    # not accepted in time: the operator is alerted on the board, in the panel and in the alarm's card
    alert = board.locator(f'[data-testid="dispatch-alert"][data-alarm-id="{alarm_id}"]')
    await expect(alert).to_have_attribute("data-kind", "accept-overdue", timeout=30_000)
    await expect(alert).to_contain_text("ГБР-2 Алматы")
    await alert.get_by_test_id("dispatch-alert-open").click()
    await expect(board.get_by_test_id("card-dispatch-alert")).to_contain_text("не приняла задание вовремя")
    await post.q("UPDATE dispatch_settings SET accept_timeout = 120")

    # the connection drops; the crew accepts anyway: the step waits on the phone, shown as not sent
    await ctx.set_offline(True)
    await expect(crew.get_by_test_id("crew-connection")).to_have_attribute("data-state", "offline")
    await job.get_by_test_id("crew-step-button").click()
    await expect(job).to_have_attribute("data-status", "accepted")
    await expect(crew.get_by_test_id("crew-pending")).to_be_visible()
    await expect(job.locator('[data-step="accepted"]')).to_have_class(re.compile("queued"))
    queued = await crew.evaluate("() => JSON.parse(localStorage.getItem('kuzet.crew.queue.crew2'))")
    assert [q["status"] for q in queued] == ["accepted"]
    assert await events("accepted") == 0

    # back: the phone reconnects, gets the current state and sends the step once
    await ctx.set_offline(False)
    await expect(crew.get_by_test_id("crew-connection")).to_have_attribute("data-state", "online")
    await expect(crew.get_by_test_id("crew-pending")).to_be_hidden()
    await until(lambda: post.q("SELECT status = 'accepted' FROM assignments WHERE id = $1", assignment_id),
                "the accepted step reaching the server")
    assert await events("accepted") == 1
    request_id = await post.q("SELECT detail->>'request_id' FROM assignment_events"
                              " WHERE assignment_id = $1 AND kind = 'accepted'", assignment_id)
    assert request_id == queued[0]["request_id"]

    # the next step reaches the server but its answer is lost on the way back: the phone keeps it,
    # sends it again with the same request id, and the server records it once
    lost: list[str] = []

    async def lose_the_answer(route: Route) -> None:
        if route.request.method == "POST" and not lost:
            lost.append(route.request.post_data or "")
            await route.fetch()  # the server gets it and answers...
            await route.abort("connectionreset")  # ...but the phone never hears
        else:
            await route.continue_()

    await crew.route("**/api/assignments/*/status", lose_the_answer)
    await job.get_by_test_id("crew-step-button").click()
    await until(lambda: bool(lost), "the en-route step to be sent")
    await until(lambda: post.q("SELECT status = 'en-route' FROM assignments WHERE id = $1", assignment_id),
                "the en-route step reaching the server")
    # the phone learns it either from the resent step's answer or from its socket; either way once
    await expect(crew.get_by_test_id("crew-pending")).to_be_hidden(timeout=30_000)
    await crew.unroute("**/api/assignments/*/status")
    assert await events("en-route") == 1
    await expect(job).to_have_attribute("data-status", "en-route")
    assert await crew.evaluate("() => localStorage.getItem('kuzet.crew.queue.crew2')") == "[]"

    await ctx.close()
    await desk.close()


async def test_response_records_per_group(post: Post, browser: Browser) -> None:
    g1 = post.groups["crew1"]
    # one more response of the first group, through the API the board and the phone use
    await send_alarm(post.dc09_port, sia_frame(OBJECT[0], post.next_seq(), "BA", "005"))
    await until(lambda: post.q("SELECT count(*) FROM alarms WHERE account = $1 AND state = 'new'", OBJECT[0]),
                "the alarm on the bank")
    alarm_id = await post.q("SELECT id FROM alarms WHERE account = $1 AND state = 'new'", OBJECT[0])
    api = await browser.new_context()
    await login(await api.new_page(), post.url, "operator", "/board")
    r = await api.request.post(f"{post.url}/api/alarms/{alarm_id}/dispatch", data={"group_id": g1})
    assert r.status == 201, await r.text()
    assignment_id = (await r.json())["id"]
    await api.clear_cookies()
    await login(await api.new_page(), post.url, "crew1", "/crew")
    for status in ("accepted", "en-route", "on-site", "finished"):
        r = await api.request.post(f"{post.url}/api/assignments/{assignment_id}/status",
                                   data={"status": status, "outcome": "real-alarm" if status == "finished" else None})
        assert r.status == 200, await r.text()
    await api.close()
    responses = await post.q("SELECT count(*) FROM assignments WHERE group_id = $1", g1)
    everyone = await post.q("SELECT count(*) FROM assignments")

    context = await browser.new_context(viewport={"width": 1400, "height": 900}, locale="ru-RU")
    page = await context.new_page()
    errors = watch_errors(page)
    await login(page, post.url, "auditor", "/board")
    await page.get_by_test_id("records-link").click()
    await page.wait_for_url(post.url + "/dispatch/records")
    row = page.locator(f'[data-testid="records-row"][data-group-id="{g1}"]')
    await expect(row.get_by_test_id("records-count")).to_have_text(str(responses))
    await expect(row.get_by_test_id("records-arrive-p50")).not_to_have_text("—")
    await expect(page.get_by_test_id("records-chart").locator('rect[data-series="arrive_p50"]')).to_have_count(1)
    await expect(page.get_by_test_id("records-assignment")).to_have_count(everyone)
    href = await page.get_by_test_id("records-csv").get_attribute("href") or ""
    r = await context.request.get(post.url + href)
    assert r.status == 200 and r.headers["content-type"].startswith("text/csv")
    csv_text = await r.text()
    assert "ГБР-1 Алматы" in csv_text and csv_text.splitlines()[0].startswith("group_id,group_name")
    # a period that ends before it starts is refused in the page
    await page.get_by_test_id("records-from").fill("2026-12-31")
    await page.get_by_test_id("records-to").fill("2026-01-01")
    await page.get_by_test_id("records-show").click()
    await expect(page.get_by_test_id("records-error")).to_be_visible()
    await page.screenshot(path=str(ARTIFACTS / "dispatch-records.png"), full_page=True)
    assert not errors, errors
    await context.close()


async def test_admin_sets_up_a_group_with_errors_shown_at_the_field(post: Post, browser: Browser) -> None:
    context = await browser.new_context(viewport={"width": 1400, "height": 900}, locale="ru-RU")
    page = await context.new_page()
    errors = watch_errors(page)
    await login(page, post.url, "admin", "/board")
    await page.get_by_test_id("dispatch-admin-link").click()
    await page.wait_for_url(post.url + "/dispatch/admin")
    await expect(page.get_by_test_id("dadmin-row")).to_have_count(2)

    # a group: a latitude out of range is named at its field; a taken name is said above the buttons
    await page.get_by_test_id("new-item").click()
    await page.get_by_test_id("field-name").fill("ГБР-3 Алматы")
    await page.get_by_test_id("field-latitude").fill("200")
    await page.get_by_test_id("field-longitude").fill("76.91")
    await page.get_by_test_id("form-save").click()
    await expect(page.get_by_test_id("error-latitude")).to_be_visible()
    await expect(page.get_by_test_id("error-name")).to_be_hidden()
    await page.get_by_test_id("field-latitude").fill("43.25")
    await page.get_by_test_id("field-name").fill(GROUPS[0][0])
    await page.get_by_test_id("form-save").click()
    await expect(page.get_by_test_id("form-error")).to_contain_text("already exists")
    await page.get_by_test_id("field-name").fill("ГБР-3 Алматы")
    await page.get_by_test_id("field-order_number").fill("15-ГБР")
    await page.get_by_test_id("form-save").click()
    await expect(page.get_by_test_id("dadmin-row")).to_have_count(3)
    gid = await post.q("SELECT id FROM response_groups WHERE name = 'ГБР-3 Алматы'")
    assert await post.q("SELECT count(*) FROM audit_log WHERE action = 'group.created' AND entity_id = $1",
                        str(gid)) == 1

    # a staff member: a phone number with letters is refused at its field
    await page.get_by_test_id("tab-staff").click()
    await page.get_by_test_id("new-item").click()
    await page.get_by_test_id("field-full_name").fill("Асқар Бекұлы")
    await page.get_by_test_id("field-role").select_option("driver")
    await page.get_by_test_id("field-group_id").select_option(str(gid))
    await page.get_by_test_id("field-phone").fill("call me")
    await page.get_by_test_id("form-save").click()
    await expect(page.get_by_test_id("error-phone")).to_be_visible()
    await page.get_by_test_id("field-phone").fill("+7 705 111 22 33")
    await page.get_by_test_id("form-save").click()
    await expect(page.get_by_test_id("dadmin-row").filter(has_text="Асқар Бекұлы")).to_have_count(1)
    staff_id = await post.q("SELECT id FROM staff WHERE full_name = 'Асқар Бекұлы'")

    # a shift without a vehicle: ends before it starts is named at "ends"; a guard with no personnel
    # record in compliance may not serve (said at the crew field); without them it is saved, and the
    # board warns that the group is on duty without a vehicle
    await page.get_by_test_id("tab-shifts").click()
    await page.get_by_test_id("new-item").click()
    await page.get_by_test_id("field-group_id").select_option(str(gid))
    now_local = await page.evaluate(
        "() => new Intl.DateTimeFormat('sv-SE', {timeZone: 'Asia/Almaty', year: 'numeric', month: '2-digit',"
        " day: '2-digit', hour: '2-digit', minute: '2-digit'}).format(new Date(Date.now() - 3600000)).replace(' ', 'T')")
    await page.get_by_test_id("field-starts_at").fill(now_local)
    await page.get_by_test_id("field-ends_at").fill(now_local)
    await page.get_by_test_id(f"field-staff_ids-{staff_id}").check()
    await page.get_by_test_id("form-save").click()
    await expect(page.get_by_test_id("error-ends_at")).to_be_visible()
    await page.get_by_test_id("field-ends_at").fill(now_local[:11] + "23:59")
    await page.get_by_test_id("form-save").click()
    await expect(page.get_by_test_id("error-staff_ids")).to_contain_text("not eligible")
    await expect(page.get_by_test_id("error-staff_ids")).to_contain_text("Асқар Бекұлы")
    await page.get_by_test_id(f"field-staff_ids-{staff_id}").uncheck()
    await page.get_by_test_id("form-save").click()
    shift_row = page.get_by_test_id("dadmin-row").filter(has_text="ГБР-3 Алматы")
    await expect(shift_row).to_have_count(1)
    await expect(shift_row.get_by_test_id("shift-state")).to_have_text("сейчас")

    board = await context.new_page()
    await board.goto(post.url + "/board")
    warning = board.locator('[data-testid="dispatch-warning"][data-code="shift-without-vehicle"]')
    await expect(warning).to_contain_text("ГБР-3 Алматы")

    # cancelling the shift (asked first) takes the warning away
    page.once("dialog", lambda d: asyncio.ensure_future(d.accept()))
    await shift_row.get_by_test_id("shift-cancel").click()
    await expect(shift_row).to_have_count(0)
    await expect(warning).to_have_count(0)

    # settings: zero seconds to accept is refused at the field
    await page.get_by_test_id("tab-settings").click()
    await page.get_by_test_id("field-accept_timeout").fill("0")
    await page.get_by_test_id("form-save").click()
    await expect(page.get_by_test_id("error-accept_timeout")).to_be_visible()
    await page.get_by_test_id("field-accept_timeout").fill("90")
    await page.get_by_test_id("form-save").click()
    await until(lambda: post.q("SELECT accept_timeout = 90 FROM dispatch_settings"), "the new setting")
    await expect(page.get_by_test_id("field-accept_timeout")).to_have_value("90")
    await page.get_by_test_id("tab-groups").click()
    await page.screenshot(path=str(ARTIFACTS / "dispatch-admin.png"))
    # the refused saves above log their 4xx answers; anything else (a script error) fails the test
    assert not [e for e in errors if not e.startswith("Failed to load resource")], errors
    await context.close()
