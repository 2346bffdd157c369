"""Setting up a post from nothing, in a real Chromium against the whole running system:

`kuzet user add` (a real process) makes the first admin on a fresh data directory; the admin logs
in, creates an object, an account with zones and contacts in the admin pages (a bad account number
is refused next to its field), and a DC-09 frame from that account raises an alarm on the
operator's board. Then: two admins edit the same object (the second is told), a service period
silences the object, a CSV upload with bad rows imports nothing and lists them, and the operator
gets 403 on /admin. Screenshots of the admin pages go to docs/screenshots/admin-*.png.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from console.config import Dc09Config, Settings
from kuzet.runtime import System
from tests.test_board_browser import send_alarm, watch_errors
from tests.test_setup_cli import BAD, GOOD
from tests.util import CHROMIUM_ARGS, chromium, sia_frame, until

# The README's screenshots are refreshed on request (KUZET_DOC_SCREENSHOTS=1), so that an ordinary test
# run leaves the working tree clean; otherwise they go with the other test artifacts.
ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / ("docs/screenshots" if os.environ.get("KUZET_DOC_SCREENSHOTS") else "test-artifacts")
ADMIN_PASSWORD = "first-admin-pass-1"
OPERATOR_PASSWORD = "operator-pass-1"

expect.set_options(timeout=10_000)


@pytest.fixture(scope="module")
async def system() -> AsyncIterator[System]:
    home = Path(tempfile.mkdtemp(prefix="kuzet-admin-", dir="/tmp"))  # a fresh data directory
    s = System(Settings(home=home, web_port=0, dc09=[Dc09Config(port=0, udp=False)]))
    try:
        await s.start()
        yield s
    finally:
        await s.stop()
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


def cli_user_add(s: System, name: str, role: str, password: str) -> None:
    env = {**os.environ, "KUZET_DATABASE_URL": s.owner_dsn, "KUZET_APP_DATABASE_URL": s.dsn,
           "PYTHONWARNINGS": "ignore"}
    r = subprocess.run([sys.executable, "-m", "kuzet", "user", "add", name, "--role", role, "--password-stdin",
                        "--full-name", name.title()], input=password + "\n", capture_output=True, text=True,
                       env=env, timeout=60)
    assert r.returncode == 0, r.stderr


async def log_in(browser: Browser, url: str, username: str, password: str, target: str, **ctx: object) -> Page:
    context = await browser.new_context(viewport={"width": 1400, "height": 1000}, locale="ru-RU", **ctx)  # type: ignore[arg-type]
    page = await context.new_page()
    await page.goto(url + target)
    await expect(page).to_have_url(re.compile(r"/login\?next="))
    await page.get_by_test_id("login-username").fill(username)
    await page.get_by_test_id("login-password").fill(password)
    await page.get_by_test_id("login-submit").click()
    await page.wait_for_url(re.compile(r"^http://[^/]+" + re.escape(target.split("#")[0]) + "(#.*)?$"))
    return page


async def test_first_admin_sets_up_a_post_and_the_board_raises_its_alarm(system: System, browser: Browser) -> None:
    url = f"http://127.0.0.1:{system.web_port}"
    pool = system.pool
    assert pool is not None
    assert await pool.fetchval("SELECT count(*) FROM users") == 0  # nobody: a fresh post
    cli_user_add(system, "boss", "admin", ADMIN_PASSWORD)
    cli_user_add(system, "op", "operator", OPERATOR_PASSWORD)

    page = await log_in(browser, url, "boss", ADMIN_PASSWORD, "/admin")
    errors = watch_errors(page)
    await page.get_by_test_id("lang-ru").click()
    await expect(page.get_by_test_id("nav-objects")).to_have_attribute("aria-current", "page")
    await expect(page.get_by_test_id("nav-objects")).to_have_text("Объекты")

    # a new object
    await page.get_by_test_id("object-new-button").click()
    await page.get_by_test_id("object-create").click()  # nothing filled in: the name is required
    await expect(page.get_by_test_id("error-name")).to_have_text("не короче 1 симв.")
    await page.get_by_test_id("object-new-name").fill("Алматы, ювелирный салон «Алтын»")
    await page.get_by_test_id("object-new-address").fill("Алматы, ул. Жибек Жолы, 50")
    await page.get_by_test_id("object-new-latitude").fill("43.262")
    await page.get_by_test_id("object-new-longitude").fill("76.942")
    await page.get_by_test_id("object-new-terror_vulnerable").check()
    await page.get_by_test_id("object-new-instructions").fill("1. Позвонить ответственному\n2. Направить ГБР")
    await page.get_by_test_id("object-create").click()
    await expect(page.get_by_test_id("object-title")).to_have_text("Алматы, ювелирный салон «Алтын»")
    object_id = int(page.url.rsplit("/", 1)[1])

    # an account: a bad number is refused next to its field, then a good one with zones
    await page.get_by_test_id("account-new-number").fill("12 34")
    await page.get_by_test_id("account-new-supervision_interval").fill("5")
    await page.get_by_test_id("account-create").click()
    await expect(page.get_by_test_id("error-number")).to_have_text("неверный формат")
    await expect(page.get_by_test_id("error-supervision_interval")).to_have_text("не меньше 10")
    assert await pool.fetchval("SELECT count(*) FROM accounts") == 0  # nothing half-saved
    await page.get_by_test_id("account-new-number").fill("4321")
    await page.get_by_test_id("account-new-supervision_interval").fill("3600")
    await page.get_by_test_id("account-new-zones").fill("001=Входная дверь\n002=Витрина\n003=Сейф")
    await page.get_by_test_id("account-create").click()
    await expect(page.get_by_test_id("object-account-row")).to_have_count(1)
    await expect(page.get_by_test_id("object-account-row")).to_contain_text("4321")

    # contacts and keyholders
    await page.get_by_test_id("contact-add").click()
    await page.get_by_test_id("contact-add").click()
    rows = page.get_by_test_id("contacts-row")
    await rows.nth(0).locator('[data-col="name"]').fill("Айгүл Серікқызы")
    await rows.nth(0).locator('[data-col="phone"]').fill("+7 701 555 12 34")
    await rows.nth(1).locator('[data-col="name"]').fill("Охрана ТЦ")
    await rows.nth(1).locator('[data-col="phone"]').fill("телефон")  # letters: refused
    await rows.nth(1).locator('[data-col="role"]').select_option("contact")
    await page.get_by_test_id("contacts-save").click()
    await expect(page.get_by_test_id("contacts-error")).to_contain_text("Телефон — неверный формат")
    await rows.nth(1).locator('[data-col="phone"]').fill("+7 727 000 00 00")
    await page.get_by_test_id("contacts-save").click()
    await expect(page.get_by_test_id("toast")).to_have_text("Сохранено")
    await expect(page.get_by_test_id("object-version")).to_have_text("версия 2")
    await expect(page.get_by_test_id("contacts-row")).to_have_count(2)
    SHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SHOTS / "admin-object.png"), full_page=True)

    # the operator's board raises an alarm for a signal from that account
    await until(lambda: system.directory.find("", "0", "4321") is not None, "the account directory reloads")
    board = await log_in(browser, url, "op", OPERATOR_PASSWORD, "/board")
    await expect(board.get_by_test_id("connection-indicator")).to_have_attribute("data-state", "online")
    assert system.receivers[0].port
    await send_alarm(system.receivers[0].port, sia_frame("4321", 1, "BA", "003"))
    row = board.get_by_test_id("alarm-row").filter(has_text="ювелирный салон")
    await expect(row).to_have_count(1)
    await row.click()
    await expect(board.get_by_test_id("card-zones")).to_contain_text("Сейф")
    await expect(board.get_by_test_id("card-contacts")).to_contain_text("Айгүл Серікқызы")
    await expect(board.get_by_test_id("card-instructions")).to_contain_text("Направить ГБР")

    # the operator administers nothing
    r = await board.goto(url + "/admin")
    assert r is not None and r.status == 403

    # two admins on the same object: the second is told, nothing of theirs is saved
    await page.get_by_test_id("nav-users").click()
    await page.get_by_test_id("user-new-username").fill("deputy")
    await page.get_by_test_id("user-new-full_name").fill("Заместитель")
    await page.get_by_test_id("user-new-role").select_option("admin")
    await page.get_by_test_id("user-create").click()
    await expect(page.get_by_test_id("new-password")).to_contain_text("deputy")
    deputy_password = (await page.get_by_test_id("new-password").inner_text()).rsplit(": ", 1)[1].strip()
    await expect(page.get_by_test_id("user-row")).to_have_count(3)
    await page.screenshot(path=str(SHOTS / "admin-users.png"), full_page=True)

    second = await log_in(browser, url, "deputy", deputy_password, "/admin")
    await second.goto(f"{url}/admin#objects/{object_id}")  # (a fragment never reaches the server's redirect)
    await page.goto(f"{url}/admin#objects/{object_id}")
    await expect(page.get_by_test_id("object-title")).to_be_visible()
    await expect(second.get_by_test_id("object-title")).to_be_visible()
    await page.get_by_test_id("object-address").fill("Алматы, ул. Жибек Жолы, 52")
    await page.get_by_test_id("object-save").click()
    await expect(page.get_by_test_id("object-version")).to_have_text("версия 3")
    await second.get_by_test_id("object-name").fill("Ювелирный салон (закрыт)")
    await second.get_by_test_id("object-save").click()
    banner = second.get_by_test_id("stale-banner")
    await expect(banner).to_contain_text("Эту запись уже изменил кто-то другой")
    await second.screenshot(path=str(SHOTS / "admin-stale.png"))
    assert await pool.fetchval("SELECT name FROM guarded_objects WHERE id = $1", object_id) == \
        "Алматы, ювелирный салон «Алтын»"
    await second.get_by_test_id("stale-reload").click()
    await expect(second.get_by_test_id("object-address")).to_have_value("Алматы, ул. Жибек Жолы, 52")

    # out of guard for service: the panel's signals are stored, no alarm
    almaty = datetime.now(UTC) + timedelta(hours=5 + 2)  # two hours from now, Almaty time (UTC+5)
    await page.get_by_test_id("object-service-until").fill(almaty.strftime("%Y-%m-%dT%H:%M"))
    await page.get_by_test_id("object-service-reason").fill("Ремонт витрины")
    await page.get_by_test_id("object-service-start").click()
    await expect(page.get_by_test_id("object-service-state")).to_contain_text("Ремонт витрины")
    alarms_before = await pool.fetchval("SELECT count(*) FROM alarms")
    await board.goto(url + "/board")
    await send_alarm(system.receivers[0].port, sia_frame("4321", 2, "FA", "002"))
    await until(lambda: pool.fetchval("SELECT count(*) FROM service_signals"), "the signal is marked in service")
    assert await pool.fetchval("SELECT count(*) FROM alarms") == alarms_before

    # the import: bad rows listed by line, nothing imported; then a good file
    bad = Path(tempfile.mkdtemp(prefix="kuzet-csv-", dir="/tmp"))
    try:
        (bad / "old-console.csv").write_text(BAD, encoding="utf-8")
        (bad / "good.csv").write_text(GOOD, encoding="utf-8")
        await page.get_by_test_id("nav-import").click()
        await page.get_by_test_id("import-file").set_input_files(str(bad / "old-console.csv"))
        await page.get_by_test_id("import-submit").click()
        await expect(page.get_by_test_id("import-problem")).to_have_count(6)
        await expect(page.get_by_test_id("import-problem").nth(3)).to_contain_text("аккаунт повторяется в файле")
        await page.screenshot(path=str(SHOTS / "admin-import.png"), full_page=True)
        assert await pool.fetchval("SELECT count(*) FROM guarded_objects") == 1
        await page.get_by_test_id("import-file").set_input_files(str(bad / "good.csv"))
        await page.get_by_test_id("import-submit").click()
        await expect(page.get_by_test_id("import-done")).to_contain_text("2")
    finally:
        shutil.rmtree(bad, ignore_errors=True)
    await page.get_by_test_id("nav-objects").click()
    await expect(page.get_by_test_id("object-row")).to_have_count(3)
    await page.screenshot(path=str(SHOTS / "admin-objects.png"), full_page=True)

    # the same pages on a phone
    phone = await browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True,
                                      device_scale_factor=2, storage_state=await page.context.storage_state())
    mobile = await phone.new_page()
    await mobile.goto(f"{url}/admin#objects/{object_id}")
    await expect(mobile.get_by_test_id("object-title")).to_be_visible()
    await mobile.screenshot(path=str(SHOTS / "admin-object-mobile.png"), full_page=True)
    width = await mobile.evaluate("() => document.documentElement.scrollWidth")
    wide = await mobile.evaluate(
        "() => [...document.querySelectorAll('body, body *')].filter(e => e.getBoundingClientRect().right > 391)"
        ".slice(0, 8).map(e => e.tagName + '.' + e.className + ' ' + (e.dataset.testid || '')"
        " + ' ' + Math.round(e.getBoundingClientRect().right))")
    assert width <= 390 + 1, f"the phone page scrolls sideways ({width} px): {wide}"
    await phone.close()

    # who did what is in the audit log
    actions = {(r["actor"], r["action"]) for r in await pool.fetch("SELECT actor, action FROM audit_log")}
    assert {("boss", "object.created"), ("boss", "account.created"), ("boss", "object.contacts"),
            ("boss", "user.created"), ("boss", "object.updated"), ("boss", "object.service"),
            ("boss", "import.objects")} <= actions
    assert any(a.startswith("cli:") and act == "user.created" for a, act in actions)
    assert not [e for e in errors if "401" not in e and "409" not in e and "422" not in e], errors
    for ctx in (page.context, second.context, board.context):
        await ctx.close()
