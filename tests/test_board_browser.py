"""The operators' board in a real Chromium (Debian's, driven by Playwright) against the whole running
system: log in through the login page, a DC-09 frame sent over TCP appears as an alarm row, the
operator acknowledges and closes it, the database agrees, the language switch works, and
screenshots (desktop and phone) land in test-artifacts/ for a human to look at.

Never skipped: without Chromium (found as run.sh finds it, tests.util.chromium) the test fails and
says how to get it.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.async_api import Browser, ConsoleMessage, Page, async_playwright, expect

from console import account, guarded_object, user
from console.config import Dc09Config, Settings
from kuzet.runtime import System
from tests.util import CHROMIUM_ARGS, chromium, send_frame, sia_frame

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
PASSWORD = "browser-test-pass-1"

expect.set_options(timeout=10_000)


async def send_alarm(port: int, frame: bytes) -> None:
    reply = await send_frame(port, frame)
    assert b'"ACK"' in reply, reply


# -- the running system ------------------------------------------------------------------------------

OBJECTS = [
    # account, name, address, lat, lon, terror-vulnerable
    ("1234", "Алматы, ТРЦ «Есентай»", "Алматы, пр. Аль-Фараби, 77/8", 43.2187, 76.9286, True),
    ("2345", "Астана, АЗС № 12", "Астана, ш. Коргалжын, 21", 51.1560, 71.3870, True),
    ("3456", "Алматы, филиал банка", "Алматы, ул. Панфилова, 98", 43.2610, 76.9457, False),
    ("4567", "Алматы, аптека «Жанна»", "Алматы, ул. Толе би, 180", 43.2540, 76.8890, False),
    ("5678", "Астана, детский сад «Балапан»", "Астана, ул. Кенесары, 40", 51.1660, 71.4240, True),
]
ZONES = ["Входная дверь", "Окна 1 этаж", "ИК-датчик холл", "ИК-датчик склад", "Тревожная кнопка", "Дымовой датчик"]


@dataclass
class Post:
    system: System
    url: str
    dc09_port: int
    operator_id: int


@pytest.fixture(scope="module")
async def post() -> AsyncIterator[Post]:
    # Not under pytest's tmp_path: the embedded server runs as its own system user, and pytest
    # makes /tmp/pytest-of-<user> private again whenever another session starts.
    home = Path(tempfile.mkdtemp(prefix="kuzet-browser-", dir="/tmp"))
    system = System(Settings(home=home, web_port=0, dc09=[Dc09Config(port=0, udp=False)]))
    try:
        await system.start()
        pool = system.pool
        assert pool is not None
        operator_id = await user.create(pool, "operator", PASSWORD, "operator", full_name="Дежурный оператор",
                                        lang="ru")
        for number, name, address, lat, lon, tv in OBJECTS:
            oid = await guarded_object.create(
                pool, name, address=address, latitude=lat, longitude=lon, terror_vulnerable=tv,
                instructions="При тревоге: позвонить ответственному лицу по порядку; при отсутствии ответа "
                             "направить ГБР. Тревожная кнопка — ГБР немедленно.")
            acc = await account.create(pool, number, object_id=oid, supervision_interval=600)
            for i, zone in enumerate(ZONES, start=1):
                await guarded_object.add_zone(pool, acc, f"{i:03d}", zone)
            await guarded_object.add_contact(pool, oid, "Айгүл Серікқызы", "+7 701 555 12 34", call_order=1)
            await guarded_object.add_contact(pool, oid, "Нурлан Абенов", "+7 777 555 98 76", call_order=2)
        deadline = time.monotonic() + 5
        while system.directory.find("", "0", OBJECTS[-1][0]) is None:
            assert time.monotonic() < deadline, "the account directory did not reload"
            await asyncio.sleep(0.02)
        yield Post(system, f"http://127.0.0.1:{system.web_port}", system.dc09_port, operator_id)
    finally:
        await system.stop()
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    exe = chromium()
    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=exe, headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            await b.close()


def watch_errors(page: Page) -> list[str]:
    errors: list[str] = []

    def on_console(msg: ConsoleMessage) -> None:
        if msg.type == "error":
            errors.append(msg.text)

    page.on("console", on_console)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return errors


def row_of(page: Page, object_name: str):  # type: ignore[no-untyped-def]
    return page.get_by_test_id("alarm-row").filter(has_text=object_name)


async def test_operator_handles_an_alarm_on_the_board(post: Post, browser: Browser) -> None:
    context = await browser.new_context(viewport={"width": 1600, "height": 900}, locale="ru-RU",
                                        timezone_id="Europe/Berlin")  # the board shows Almaty time regardless
    page = await context.new_page()
    errors = watch_errors(page)

    # anonymous: the board sends us to the login page
    await page.goto(post.url + "/board")
    await expect(page).to_have_url(re.compile(r"/login\?next=/board$"))
    await page.get_by_test_id("login-username").fill("operator")
    await page.get_by_test_id("login-password").fill("wrong password")
    await page.get_by_test_id("login-submit").click()
    await expect(page.get_by_test_id("login-error")).to_be_visible()
    await page.get_by_test_id("login-password").fill(PASSWORD)
    await page.get_by_test_id("login-submit").click()
    await page.wait_for_url(post.url + "/board")
    await expect(page.get_by_test_id("connection-indicator")).to_have_attribute("data-state", "online")
    await expect(page.get_by_test_id("alarms-heading")).to_have_text("Тревоги")  # the operator's language
    await expect(page.get_by_test_id("receiver-chip")).to_have_count(2)  # the DC-09 receiver and supervision
    await expect(page.locator('[data-testid="receiver-chip"][data-name="dc09"]')).to_be_visible()
    await expect(page.locator('[data-testid="receiver-chip"][data-name="supervision"]')).to_be_visible()
    await expect(page.get_by_test_id("no-alarms")).to_be_visible()

    # a panel reports a burglary: the row appears, with the object and the time in Almaty
    before = time.time()
    await send_alarm(post.dc09_port, sia_frame("1234", 1, "BA", "003"))
    row = row_of(page, "Есентай")
    await expect(row).to_have_count(1)
    await expect(row).to_have_attribute("data-state", "new")
    shown_after = time.time() - before
    assert shown_after < 5, shown_after
    alarm_id = int(await row.get_attribute("data-alarm-id") or 0)
    await expect(row.get_by_test_id("alarm-state")).to_have_text("Новая")
    await expect(row.get_by_test_id("alarm-zone")).to_have_text("003")
    almaty_now = await page.evaluate(
        "() => new Intl.DateTimeFormat('en-GB', {timeZone: 'Asia/Almaty', hour: '2-digit', hourCycle: 'h23'}).format(new Date())")
    assert (await row.get_by_test_id("alarm-time").inner_text()).startswith(almaty_now)
    await expect(page.get_by_test_id("signal-row").filter(has_text="#1234")).to_have_count(1)

    # the object card for the selected alarm
    await row.click()
    await expect(page.get_by_test_id("card-object-name")).to_have_text("Алматы, ТРЦ «Есентай»")
    await expect(page.get_by_test_id("card-contacts")).to_contain_text("Айгүл Серікқызы")
    await expect(page.get_by_test_id("card-zones")).to_contain_text("ИК-датчик холл")
    await expect(page.get_by_test_id("card-instructions")).to_contain_text("ГБР немедленно")

    # acknowledge
    await row.get_by_test_id("ack-button").click()
    await expect(row).to_have_attribute("data-state", "acknowledged")
    await expect(row.get_by_test_id("alarm-state")).to_have_text("Принята")
    await expect(page.get_by_test_id("card-history")).to_contain_text("operator")

    # the instructions are a checklist; closing waits for it
    await expect(page.get_by_test_id("card-handler")).to_contain_text("Дежурный оператор")
    await page.get_by_test_id("checklist-item").first.check()
    await expect(page.get_by_test_id("checklist-progress")).to_have_text("1/1")

    # close with an outcome and a note
    await row.get_by_test_id("close-button").click()
    dialog = page.get_by_test_id("close-dialog")
    await expect(dialog).to_be_visible()
    await page.get_by_test_id("close-confirm").click()  # no outcome chosen yet: refused in the dialog
    await expect(page.get_by_test_id("close-error")).to_be_visible()
    await page.get_by_test_id("outcome-select").select_option("false-alarm")
    await page.get_by_test_id("close-note").fill("Кошка в холле, ответственный подтвердил")
    await page.get_by_test_id("close-confirm").click()
    await expect(dialog).to_be_hidden()
    await expect(row).to_have_count(0)
    await expect(page.get_by_test_id("card-alarm-state")).to_have_text("Закрыта")

    assert post.system.pool is not None
    db_row = await post.system.pool.fetchrow(
        "SELECT state, outcome, acknowledged_by, closed_by FROM alarms WHERE id = $1", alarm_id)
    assert dict(db_row) == {"state": "closed", "outcome": "false-alarm", "acknowledged_by": post.operator_id,
                            "closed_by": post.operator_id}
    note = await post.system.pool.fetchval(
        "SELECT detail->>'note' FROM alarm_events WHERE alarm_id = $1 AND kind = 'closed'", alarm_id)
    assert note == "Кошка в холле, ответственный подтвердил"

    # the language switch
    await page.get_by_test_id("lang-kk").click()
    await expect(page.get_by_test_id("alarms-heading")).to_have_text("Дабылдар")
    await expect(page.locator("html")).to_have_attribute("lang", "kk")
    await expect(page.get_by_test_id("card-alarm-state")).to_have_text("Жабылды")
    await page.reload()  # the choice is remembered
    await expect(page.get_by_test_id("alarms-heading")).to_have_text("Дабылдар")
    await expect(page.get_by_test_id("connection-indicator")).to_have_attribute("data-state", "online")

    # a busy board for the screenshots: fire (P1, flashing), panic, burglary + restore, trouble, unknown
    await send_alarm(post.dc09_port, sia_frame("2345", 2, "FA", "006"))
    await send_alarm(post.dc09_port, sia_frame("5678", 3, "PA", "005"))
    await send_alarm(post.dc09_port, sia_frame("3456", 4, "BA", "001"))
    await send_alarm(post.dc09_port, sia_frame("3456", 5, "BR", "001"))
    await send_alarm(post.dc09_port, sia_frame("4567", 6, "AT", "000"))
    await send_alarm(post.dc09_port, sia_frame("9999", 7, "BA", "002"))
    await expect(page.get_by_test_id("alarm-row")).to_have_count(5)
    fire = row_of(page, "АЗС")
    await expect(fire).to_have_class(re.compile(r"\bp1\b.*\bstate-new\b"))
    await expect(row_of(page, "филиал банка").get_by_test_id("restored-marker")).to_be_visible()
    await row_of(page, "аптека").get_by_test_id("ack-button").click()
    await expect(row_of(page, "аптека")).to_have_attribute("data-state", "acknowledged")
    await fire.click()
    await expect(page.get_by_test_id("card-object-name")).to_have_text("Астана, АЗС № 12")
    await expect(page.get_by_test_id("card-history")).to_be_visible()
    priorities = [int(p or 0) for p in await page.get_by_test_id("alarm-row").evaluate_all(
        "rows => rows.map(r => r.dataset.priority)")]
    assert priorities == sorted(priorities)  # most urgent first

    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "board.png"))

    # the same board on a phone
    phone = await browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True,
                                      device_scale_factor=2, storage_state=await context.storage_state())
    mobile = await phone.new_page()
    mobile_errors = watch_errors(mobile)
    await mobile.goto(post.url + "/board")
    await expect(mobile.get_by_test_id("alarm-row")).to_have_count(5)
    await expect(mobile.get_by_test_id("connection-indicator")).to_have_attribute("data-state", "online")
    width = await mobile.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 390 + 1, f"the phone page scrolls sideways ({width} px)"
    await mobile.screenshot(path=str(ARTIFACTS / "board-mobile.png"), full_page=True)
    await phone.close()

    # logging out ends the session and returns to the login page
    await page.get_by_test_id("logout-button").click()
    await page.wait_for_url(re.compile(r"/login"))
    await page.goto(post.url + "/board")
    await expect(page).to_have_url(re.compile(r"/login"))

    assert not [e for e in errors + mobile_errors if "401" not in e], errors + mobile_errors
    await context.close()


async def test_the_board_shows_a_dropped_connection_and_reconnects(post: Post, browser: Browser) -> None:
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    page = await context.new_page()
    await page.goto(post.url + "/login")
    await page.get_by_test_id("lang-en").click()
    await expect(page.get_by_test_id("login-submit")).to_have_text("Sign in")
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "login.png"))
    await page.get_by_test_id("login-username").fill("operator")
    await page.get_by_test_id("login-password").fill(PASSWORD)
    await page.get_by_test_id("login-submit").click()
    await page.wait_for_url(post.url + "/board")
    indicator = page.get_by_test_id("connection-indicator")
    await expect(indicator).to_have_attribute("data-state", "online")
    await expect(page.get_by_test_id("alarms-heading")).to_have_text("Alarms")  # chosen on the login page

    # drop every board connection from the server side: the page turns red, then reconnects
    assert post.system._web is not None  # the app System serves (no public accessor for it)
    hub = post.system._web.config.app.state.hub
    assert hub.clients
    for client in list(hub.clients):
        client.drop(1012)
    await expect(indicator).to_have_attribute("data-state", "offline")
    await expect(page.get_by_test_id("offline-banner")).to_be_visible()
    await expect(indicator).to_have_attribute("data-state", "online")
    await expect(page.get_by_test_id("offline-banner")).to_be_hidden()

    # and still receives what happens after the reconnect
    await send_alarm(post.dc09_port, sia_frame("1234", 50, "TA", "004"))
    await expect(page.get_by_test_id("signal-row").filter(has_text="#1234").first).to_contain_text("TA")
    await context.close()
