"""The web console in a real browser: Debian's chromium driven by Playwright against
``python -m msgmem.readside`` (real HTTP) on the real Postgres and Kafka of the test stack.

The chats are the memory API tests' (``test_memory_api.seed``: Dana's chat with text both
ways, statuses, a reaction, a voice note with its transcript, an image, a PDF, an edit and a
deletion); the dead letter is a real ``DeadLettered`` on this module's wa.deadletter, for a
Whapi delivery today's normalize reads, so the console's retry (``msgmem.dlq.retry``)
resolves it. The operator logs in, reaches a chat by keyboard alone, sees the voice note's
<audio> and transcript, finds an order number, retries the letter and sees it resolved, with
no console error on any page. A screenshot of each page is written to build/screenshots/.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx
import pytest
from playwright.async_api import ConsoleMessage, Page, async_playwright, expect

from contracts import deadletter, raw
from contracts.deadletter import DeadLettered
from contracts.raw import RawDelivery
from contracts.settings import Settings
from projections.embeddings.vectors import register_vector
from projections.messages.store import MessagesWriter
from runtime.kafka import make_producer
from tests.conftest import FIXTURES, PROJECTED_TABLES
from tests.integration.test_memory_api import SIGNING_KEY, Seeded, seed
from tests.integration.test_recall_api import recall_service
from tests.unit.projections.factory import Chat
from tests.unit.projections.factory import items as message_items

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "build" / "screenshots"
CHROMIUM = Path("/usr/bin/chromium")
CONSOLE_KEY = "console-integration-key-0123456789abcdef"
SESSION_KEY = "console-session-signing-key-0123456789abcdef"
# A 1x1 PNG: the seeded photo's file, so the page shows a real image (no decode error).
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
    "0000000d49444154789c6360f8cfc0f01f0005000201a5f0e4d40000000049454e44ae426082"
)


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Debian's chromium, installed with apt-get when missing; failing that, the tests fail."""
    if not CHROMIUM.exists():
        apt = shutil.which("apt-get")
        assert apt, "no /usr/bin/chromium and no apt-get to install it"
        done = subprocess.run([apt, "install", "-y", "chromium"], capture_output=True, text=True, timeout=900)
        assert done.returncode == 0 and CHROMIUM.exists(), f"apt-get install chromium failed: {done.stderr[-2000:]}"
    return CHROMIUM


class Unparseable(Exception):
    """What normalize raised the first time (a bug since fixed)."""


async def poison_letter(settings: Settings) -> DeadLettered:
    """A dead letter of normalize for a Whapi text delivery, on this module's wa.deadletter."""
    delivery = RawDelivery(delivery_id=str(uuid.uuid4()), provider="whapi", channel="TESTCH-A1B2C",
                           received_at=datetime.now(UTC),
                           body=(FIXTURES / "webhooks" / "whapi" / "text.json").read_bytes())  # fmt: skip
    letter = DeadLettered.of(
        "normalize", topic=raw.TOPIC, partition=0, offset=0, key=delivery.key, value=delivery.body,
        headers=delivery.kafka_headers(), error=Unparseable("messages[0].text: missing"), attempts=3,
    )  # fmt: skip
    producer = make_producer(settings)
    await producer.start()
    try:
        await producer.send_and_wait(deadletter.TOPIC, letter.encode(), key=b"normalize")
    finally:
        await producer.stop()
    return letter


GROUP_MESSAGES = 120


async def seed_group(pool: asyncpg.Pool, channel: str) -> Chat:
    """A busy group on the same channel, its latest message after Dana's: more than two pages."""
    group = Chat(channel=channel, chat_id="120363000000000001", is_group=True, group_name="Warehouse team",
                 contact_name=None)  # fmt: skip
    members = [("15550007001", "Ana"), ("15550007002", "Bo")]
    events = [group.received(f"g{i}", f"shelf {i} counted", t=1000 + i, sender_id=members[i % 2][0],
                             sender_name=members[i % 2][1]) for i in range(GROUP_MESSAGES)]  # fmt: skip
    # the latest is a forwarded reply quoting an earlier message of the same page
    events[-1] = events[-1].model_copy(update={"reply_to_provider_message_id": f"g{GROUP_MESSAGES - 3}",
                                               "forwarded": True})  # fmt: skip
    async with pool.acquire() as conn, conn.transaction():
        await MessagesWriter(redact_deleted=False).write(conn, message_items(events))
    return group


@dataclass
class World:
    seeded: Seeded
    group: Chat
    letter: DeadLettered
    base: str
    log: Path


@pytest.fixture(scope="module")
async def world(module_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    pool = await asyncpg.create_pool(module_settings.database_url, min_size=1, max_size=2, init=register_vector)
    media_dir = tmp_path_factory.mktemp("media")
    try:
        await pool.execute(f"truncate {', '.join(PROJECTED_TABLES)}")
        seeded = await seed(pool, media_dir)
        group = await seed_group(pool, seeded.chat.channel)
        for photo in media_dir.rglob("*.jpg"):
            photo.write_bytes(PNG)
        letter = await poison_letter(module_settings)
        logs = tmp_path_factory.mktemp("readside")
        with recall_service(module_settings.model_copy(update={"openai_api_key": None}), logs, "msgmem.readside",
                            KAFKA_BOOTSTRAP_SERVERS=module_settings.kafka_bootstrap_servers,
                            KAFKA_TOPIC_PREFIX=module_settings.kafka_topic_prefix,
                            KAFKA_GROUP_PREFIX=module_settings.kafka_group_prefix, CONSOLE_API_KEY=CONSOLE_KEY,
                            CONSOLE_SESSION_KEY=SESSION_KEY, MEDIA_SIGNING_KEY=SIGNING_KEY,
                            MEDIA_LOCAL_DIR=str(media_dir), STATE_DIR=str(logs / "state")) as base:  # fmt: skip
            yield World(seeded, group, letter, base, logs / "recall.log")
    finally:
        await pool.close()


@dataclass
class Browser:
    page: Page
    errors: list[str]

    async def shot(self, name: str) -> None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        await self.page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


@pytest.fixture
async def browser(chromium: Path) -> AsyncIterator[Browser]:
    async with async_playwright() as p:
        launched = await p.chromium.launch(executable_path=str(chromium), headless=True)
        try:
            context = await launched.new_context(viewport={"width": 1100, "height": 900}, timezone_id="Asia/Kolkata")
            page = await context.new_page()
            errors: list[str] = []

            def on_console(message: ConsoleMessage) -> None:
                if message.type == "error":
                    errors.append(message.text)

            page.on("console", on_console)
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400 else None)
            yield Browser(page, errors)
        finally:
            await launched.close()


async def log_in(b: Browser, base: str) -> None:
    await b.page.goto(f"{base}/console/")
    await expect(b.page).to_have_url(f"{base}/console/login")
    await b.shot("login")
    await b.page.fill("#key", CONSOLE_KEY)
    await b.page.press("#key", "Enter")
    await expect(b.page).to_have_url(f"{base}/console/")


async def test_an_operator_reads_a_chat_searches_it_and_retries_a_dead_letter(world: World, browser: Browser) -> None:
    page, base, chat = browser.page, world.base, world.seeded.chat
    await log_in(browser, base)
    await expect(page.locator(".chat-link")).to_have_count(3)
    await expect(page.locator(".chat-link").first).to_contain_text("Warehouse team")  # the latest message first
    await browser.shot("chats")

    # Keyboard only: search by name, then Tab to the chat's link and open it with Enter.
    await page.fill("#q", "dana")
    await page.press("#q", "Enter")
    await expect(page.locator(".chat-link")).to_have_count(1)
    for _ in range(12):
        await page.keyboard.press("Tab")
        if await page.evaluate("document.activeElement.classList.contains('chat-link')"):
            break
    else:
        raise AssertionError("Tab never reached a chat link")
    await page.keyboard.press("Enter")
    await expect(page).to_have_url(f"{base}/console/chats/{chat.key.replace(':', '%3A')}")

    voice = page.locator(f"#m-{chat.mid('voice')}")
    await expect(voice.locator("audio")).to_have_count(1)
    assert (await voice.locator("audio").get_attribute("src") or "").startswith(f"{base}/media/")
    await expect(voice.locator(".transcript")).to_contain_text("The courier left the parcel at the wrong address.")
    photo = page.locator(f"#m-{chat.mid('photo')}")
    await expect(photo.locator("img")).to_have_count(1)
    await expect(photo).to_contain_text("A cardboard box with a torn corner.")
    await expect(page.locator(f"#m-{chat.mid('pdf')} .extracted")).to_contain_text("INVOICE 2026-0193")
    await expect(page.locator(f"#m-{chat.mid('card')}")).to_contain_text("This message was deleted")
    await expect(page.locator("body")).not_to_contain_text("my card number")
    await expect(page.locator(f"#m-{chat.mid('typo')} .history")).to_contain_text("I typed the wrong address")
    await expect(page.locator(f"#m-{chat.mid('reply')} .ticks")).to_have_attribute("title", "read")
    await expect(page.locator(f"#m-{chat.mid('reply')} .reactions")).to_contain_text("👍")
    # Times in the viewer's zone (Asia/Kolkata, UTC+5:30): the script rewrote every <time>.
    first = page.locator(f"#m-{chat.mid('order')} time")
    await expect(first).to_have_attribute("data-local", "")
    assert "UTC" not in await first.inner_text()
    await browser.shot("conversation")

    await page.fill("#q", "4271")
    await page.press("#q", "Enter")
    hits = page.locator(".hits li")
    await expect(hits.first).to_be_visible()
    await expect(page.locator(".hits mark").first).to_have_text("4271")
    await browser.shot("search")
    target = await hits.first.locator("a").get_attribute("href")
    assert target and "#m-" in target
    await hits.first.locator("a").click()
    anchor = target.split("#", 1)[1]
    await expect(page.locator(f"#{anchor}")).to_have_class("bubble in target")

    # Across every chat, from the navigation: the invoice number finds the PDF's message in
    # Dana's chat (its extracted text), "shelf" the group's messages; a hit opens its chat there.
    await page.get_by_role("navigation").get_by_role("link", name="Search").click()
    await page.fill("#q", "2026-0193")
    await page.press("#q", "Enter")
    found = page.locator(".hits li")
    await expect(found.first).to_contain_text("INVOICE 2026-0193")
    await expect(found.first.locator(".chat")).to_have_text(chat.contact_name or "")
    await browser.shot("search-everywhere")
    await found.first.locator("a").click()
    await expect(page.locator(f"#m-{chat.mid('pdf')}")).to_have_class("bubble in target")
    await page.goto(f"{base}/console/search?q=shelf")
    await expect(page.locator(".hits li").first.locator(".chat")).to_have_text("Warehouse team")

    # A big chat a page at a time: the latest 50 (scrolled to the newest), then older pages
    # fetched by htmx as the "Older messages" link scrolls into view (a plain link without script).
    group = world.group
    await page.goto(f"{base}/console/chats/{group.key}")
    bubbles = page.locator("li.bubble")
    await expect(bubbles).to_have_count(50)
    await expect(bubbles.last).to_contain_text(f"shelf {GROUP_MESSAGES - 1} counted")
    await expect(bubbles.last.locator(".forwarded")).to_have_text("Forwarded")
    quote = bubbles.last.locator("blockquote.reply")
    await expect(quote).to_contain_text(f"shelf {GROUP_MESSAGES - 3} counted")
    await expect(quote.locator(".sender")).to_have_text(("Ana", "Bo")[(GROUP_MESSAGES - 3) % 2])
    await expect(bubbles.first.locator(".sender")).to_have_text("Ana" if (GROUP_MESSAGES - 50) % 2 == 0 else "Bo")
    url = page.url
    for _ in range(20):  # scrolled up to the top: older pages load in place, one per link revealed
        if await bubbles.count() == GROUP_MESSAGES:
            break
        await page.evaluate("window.scrollTo(0, 0)")
        await page.wait_for_timeout(250)
    await expect(bubbles).to_have_count(GROUP_MESSAGES)
    await expect(bubbles.first).to_contain_text("shelf 0 counted")
    assert page.url == url  # no navigation
    await expect(page.get_by_role("link", name="Older messages")).to_have_count(0)
    assert await page.locator("li.bubble time:not([data-local])").count() == 0  # swapped-in times localised too

    await page.goto(f"{base}/console/pipeline")
    lags = page.locator("table.lags tbody tr")
    for _ in range(30):  # a new broker's group coordinator takes a moment: the page says so meanwhile
        if await lags.count():
            break
        await page.wait_for_timeout(1000)
        await page.reload()
    row = page.locator(f"tr[data-letter='{world.letter.dead_letter_id}']")
    await expect(row.locator(".state")).to_have_text("open")
    await expect(row).to_contain_text("Unparseable")
    await expect(page.locator("table.lags").get_by_role("cell", name="normalize").first).to_be_visible()
    await browser.shot("pipeline")
    await row.get_by_role("button", name="Retry").click()
    await expect(page.locator(".notice")).to_have_text("Retry: resolved")
    await expect(row.locator(".state")).to_have_text("resolved")
    await expect(row.get_by_role("button", name="Retry")).to_have_count(0)
    # the view after the retry is the page's second: consumption rates show; so do the retention
    # policies and the privacy requests table
    await expect(page.locator("table.lags tr", has_text="normalize").locator("td.rate")).to_have_text(re.compile(r"^\d+\.\d$"))
    await expect(page.locator("ul.retention li").first).to_contain_text("MESSAGE_RETENTION_DAYS")
    await expect(page.locator("table.erasures")).to_be_visible()
    await browser.shot("pipeline-retried")

    assert browser.errors == []
    logged = world.log.read_text()
    assert CONSOLE_KEY not in logged and "4271" not in logged and chat.chat_id not in logged


async def test_no_page_without_the_key_and_no_post_without_the_token(world: World) -> None:
    base = world.base
    async with httpx.AsyncClient(base_url=base, timeout=10, follow_redirects=False) as client:
        assert (await client.get("/console/")).headers["location"] == "/console/login"
        assert (await client.get("/console/pipeline")).status_code == 303
        login = await client.get("/console/login")
        assert "httponly" in login.headers["set-cookie"].lower()
        assert "samesite=strict" in login.headers["set-cookie"].lower()
        token = login.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
        wrong = await client.post("/console/login", data={"csrf": token, "key": "not-the-key"})
        assert wrong.headers["location"] == "/console/login?failed=1" and "mm_console=" not in str(wrong.headers)
        no_token = await client.post("/console/login", data={"csrf": "forged", "key": CONSOLE_KEY})
        assert no_token.headers["location"] == "/console/login?failed=1"
        ok = await client.post("/console/login", data={"csrf": token, "key": CONSOLE_KEY})
        assert ok.headers["location"] == "/console/" and "mm_console=" in ok.headers["set-cookie"]
        assert "samesite=strict" in ok.headers["set-cookie"].lower() and "httponly" in ok.headers["set-cookie"].lower()
        assert (await client.get("/console/")).status_code == 200
        unknown = await client.get("/console/chats/whapi:NOPE:1")
        assert unknown.status_code == 404 and "No chat has this key." in unknown.text
        api = await client.get("/chats/whapi:NOPE:1", headers={"Authorization": "Bearer nope"})
        assert api.status_code == 401  # the memory API's refusals stay its own
        forged = await client.post("/console/pipeline/retry", data={"csrf": "forged", "letter": world.letter.dead_letter_id})
        assert forged.status_code == 403
        client.cookies.set("mm_console", client.cookies["mm_console"] + "x", path="/console")
        assert (await client.get("/console/")).status_code == 303
