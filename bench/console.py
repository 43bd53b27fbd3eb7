"""Console benchmark: every page of the web console (``/console``) over a large memory.

    .venv/bin/python bench/console.py [--chats 10000] [--messages 1000000] [--big 100000]
                                      [--requests 30] [--explain]

Starts its own local stack (Kafka + Postgres, migrated) and loads ``--chats`` chats and
``--messages`` messages into chats / chat_messages / chat_media with a binary COPY (the
secondary indexes of chat_messages dropped during the load and rebuilt after), interleaved in
time over a year: one chat (a busy group) holds ``--big`` of them, the rest are spread at
random over the other chats. Chats are on five channels of three providers (Whapi, Meta
Cloud, Evolution), contacts with names and E.164 phones of several countries, about 5%
groups; messages are typed texts with order numbers, voice notes with transcripts, images
with captions and AI descriptions, PDFs with extracted text (each media message with its
chat_media row), outbound ones with delivery statuses, a few with reactions. No embeddings:
recall runs by words (the default without OPENAI_API_KEY).

Then it starts the real read-side service (``python -m msgmem.readside``, uvicorn in its own
process, the console's pipeline page wired to this stack's Kafka) with a console key, logs in
as an operator would (the login form's token, then the session cookie), and asks every page
``--requests`` times, one request at a time, each with other parameters where the page has
any (another name, phone, cursor, message, query):

- chats: the first page; the next pages, following each page's cursor; searched by name;
  by phone digits; filtered by provider; filtered by channel;
- conversation: the latest page of the 100,000-message chat and of random chats; a deep page
  of the big chat (``before`` a cursor 5,000 to 99,000 messages back, as infinite scroll asks
  it, htmx fragment); the page at a given message (``at``, the jump from a search hit);
- search: recall by words in the big chat, in random chats and across every chat;
- pipeline: lags and dead letters, read from Kafka.

The time is the client's, on loopback: from sending the request to the last byte of the
response (keep-alive connection), so the server's time plus a loopback round trip. Each page
prints p50 / p95 / max and PASS when its max is at most 300 ms (the target: no page over
300 ms server time with 1,000,000 messages). ``--explain`` prints the plans (EXPLAIN ANALYZE)
of the statements the chats list and the conversation run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import aiohttp
import asyncpg
import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from contracts.settings import Settings  # noqa: E402
from msgmem.localstack.processes import Child, env_with, file_sink, free_port  # noqa: E402
from msgmem.localstack.stack import Stack, start_stack  # noqa: E402
from msgmem.services import by_name  # noqa: E402
from projections.recall import cursor, memory  # noqa: E402
from scratch import scratch_dir  # noqa: E402  (bench/scratch.py)

CONSOLE_KEY = "bench-console-key-0123456789abcdef"
SESSION_KEY = "bench-console-session-key-0123456789abcdef"
RECALL_KEY = "bench-recall-key"
TARGET = 0.300

# --- synthetic memory -----------------------------------------------------------------------

CHANNELS = [("whapi", "WHAPI-A1B2C"), ("whapi", "WHAPI-K9L3M"), ("meta_cloud", "100000000000001"),
            ("meta_cloud", "100000000000002"), ("evolution", "evo-sales")]  # fmt: skip
CHANNEL_WEIGHTS = [35, 15, 25, 15, 10]
FIRST = ["Dana", "Omar", "Lena", "Ravi", "Sofia", "Kenji", "Amara", "Lucas", "Maya", "Tomasz", "Ines", "Noah", "Aylin",
         "Mateo", "Priya", "Jonas", "Fatima", "Hugo", "Chiara", "Kwame", "Yuki", "Elif", "Santiago", "Anouk"]  # fmt: skip
LAST = ["Silva", "Haddad", "Novak", "Patel", "Rossi", "Tanaka", "Okafor", "Martin", "Cohen", "Kowalski", "Schmidt",
        "Yilmaz", "Fernandes", "Dubois", "Nakamura", "Mensah", "van Dijk", "García", "Müller", "Ivanova"]  # fmt: skip
# Country code and mobile prefix, then random digits to a plausible length.
PHONES = [("49", "151", 8), ("49", "176", 8), ("55", "11", 9), ("44", "7700", 6), ("91", "98", 8), ("1", "415", 7),
          ("34", "6", 8), ("33", "6", 8), ("90", "532", 7), ("234", "803", 7)]  # fmt: skip
ITEMS = ["blue sneakers", "coffee grinder", "desk lamp", "winter jacket", "phone case", "yoga mat", "kettle",
         "backpack", "headphones", "office chair", "garden hose", "bike helmet"]  # fmt: skip
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "tomorrow", "next week"]
INBOUND = [
    "Hi, is order {o} still arriving on {d}?", "The {i} from order {o} came damaged, can I get a refund?",
    "Can you send me the invoice for order {o}? I need it for my accountant.",
    "I changed my address, please deliver the {i} to the new one.", "Thanks! The {i} works great.",
    "Is there a discount if I order two {i}s?", "Where is my parcel? Tracking for {o} has not moved since {d}.",
    "Could the courier come {d} after 5pm?", "What is the warranty on the {i}?", "ok", "Perfect, thank you so much",
    "I paid with card but got no confirmation for order {o}",
]  # fmt: skip
OUTBOUND = [
    "Hello {n}! Order {o} ships {d}.", "Sorry about the {i}. A refund for order {o} is on its way, 3 to 5 working days.",
    "Here is your invoice for order {o}: INV-2026-{o}.", "Your new address is saved. The courier will come {d}.",
    "We have a 10% discount on the {i} this week.", "The {i} has a two-year warranty.",
    "Thanks for your patience, {n}.",
]  # fmt: skip
TRANSCRIPTS = [
    "Hi it's {n} again, about order {o}, the {i} still hasn't arrived and I'm home only {d}, call me back",
    "Hello, quick question about the {i}, does it come in another colour? Order {o}",
    "Yeah so the courier left the parcel at the neighbour's, that's fine, thanks",
]  # fmt: skip
DESCRIPTIONS = [
    "A photo of a {i} in its box, the box is dented on one corner.",
    "A screenshot of a bank transfer confirmation for order {o}.",
    "A delivery receipt for order {o}, signed, dated {d}.",
]  # fmt: skip
STATUSES = ["read"] * 6 + ["delivered"] * 3 + ["sent", "failed"]
EMOJI = ["👍", "❤️", "😂", "🙏"]

CHAT_COLUMNS = ["chat_key", "provider", "channel_id", "chat_id", "contact_phone", "contact_name", "is_group",
                "group_name", "last_message_at", "last_inbound_at", "last_outbound_at", "created_at", "updated_at"]  # fmt: skip
MESSAGE_COLUMNS = ["id", "chat_key", "provider", "channel_id", "provider_message_id", "sender_id", "sender_name",
                   "origin", "direction", "message_type", "body", "caption", "caption_generated", "transcript",
                   "extracted_text", "status", "status_at", "reactions", "provider_timestamp", "received_at"]  # fmt: skip
MEDIA_COLUMNS = ["id", "message_id", "chat_key", "kind", "mime_type", "size_bytes", "filename", "caption", "transcript",
                 "extracted_text", "status", "enrichment_status", "enrichment_at"]  # fmt: skip


def fill(template: str, rng: random.Random, name: str) -> str:
    return template.format(o=rng.randrange(1000, 99999), d=rng.choice(DAYS), i=rng.choice(ITEMS), n=name)


class Memory:
    """The chats and messages loaded, and what the requests pick from."""

    def __init__(self, chats: int, n: int, big: int, seed: int = 11) -> None:
        rng = random.Random(seed)
        self.keys, self.names, self.phones, self.channels = [], [], [], []
        self.groups: set[int] = {0} | {c for c in range(1, chats) if rng.random() < 0.05}
        for c in range(chats):
            provider, channel = rng.choices(CHANNELS, CHANNEL_WEIGHTS)[0]
            if c in self.groups:
                chat_id, phone = f"1203630{c:011d}", None
                name = f"{rng.choice(['Warehouse', 'Support', 'Couriers', 'Store', 'Returns'])} team {c}"
            else:
                country, prefix, rest = rng.choice(PHONES)
                phone = country + prefix + "".join(rng.choice("0123456789") for _ in range(rest))
                chat_id, name = phone, f"{rng.choice(FIRST)} {rng.choice(LAST)}"
            self.keys.append(f"{provider}:{channel}:{chat_id}")
            self.names.append(name)
            self.phones.append(phone)
            self.channels.append((provider, channel))
        self.big = 0
        self.big_size = min(big, n)
        self.n = n
        self.rng = rng

    def generate(self) -> tuple[list[tuple], list[tuple], list[tuple]]:  # type: ignore[type-arg]
        rng, chats, n = self.rng, len(self.keys), self.n
        start = datetime.now(UTC) - timedelta(days=365)
        step = timedelta(days=365) / max(1, n)
        every = n / max(1, self.big_size)  # the big chat's messages spread evenly over the year
        messages, media = [], []
        first: dict[int, datetime] = {}
        last: dict[int, tuple[datetime | None, datetime | None, datetime | None]] = {}
        members = [(f"4915100000{i:03d}", f"{rng.choice(FIRST)} {rng.choice(LAST)}") for i in range(12)]
        next_big = 0.0
        for i in range(n):
            at = start + step * i
            if i >= next_big and self.big_size:
                c, next_big = self.big, next_big + every
            else:
                c = rng.randrange(1, chats) if chats > 1 else 0
            provider, channel = self.channels[c]
            inbound = rng.random() < 0.6
            if c in self.groups:
                sender_id, sender_name = rng.choice(members) if inbound else ("business", "Shop")
            else:
                sender_id, sender_name = (self.phones[c], self.names[c]) if inbound else ("business", "Shop")
            body = caption = transcript = extracted = status = status_at = None
            generated = False
            kind = "text"
            mid = f"m{i:07d}"
            r = rng.random()
            if inbound and r < 0.10:
                kind, transcript = "voice", fill(rng.choice(TRANSCRIPTS), rng, sender_name.split()[0])
                media.append((f"d{i:07d}", mid, self.keys[c], "voice", "audio/ogg; codecs=opus", 20000 + i % 9000,
                              None, None, transcript, None, "stored", "done", at))  # fmt: skip
            elif r < 0.16:
                kind = "image"
                description = fill(rng.choice(DESCRIPTIONS), rng, sender_name)
                if rng.random() < 0.5:
                    caption = "here is the photo" if inbound else "photo of your parcel"
                else:
                    caption, generated = description, True
                media.append((f"d{i:07d}", mid, self.keys[c], "image", "image/jpeg", 80000 + i % 50000, None,
                              description, None, None, "stored", "done", at))  # fmt: skip
            elif r < 0.18:
                kind, caption = "document", "Invoice attached"
                extracted = f"INVOICE INV-2026-{i % 99991}\n" + fill("Order {o}: {i}, 1 x 49.00 EUR. Due {d}.", rng, "")
                media.append((f"d{i:07d}", mid, self.keys[c], "document", "application/pdf", 120000,
                              f"invoice-{i}.pdf", None, None, extracted, "stored", "done", at))  # fmt: skip
            elif r < 0.19:
                kind = "sticker"
            else:
                body = fill(rng.choice(INBOUND if inbound else OUTBOUND), rng, sender_name.split()[0])
            if not inbound:
                status, status_at = rng.choice(STATUSES), at + timedelta(seconds=rng.randrange(1, 600))
            reactions = "{}"
            if rng.random() < 0.01:
                reactions = orjson.dumps({sender_id: {"emoji": rng.choice(EMOJI), "name": sender_name,
                                                      "at": (at + timedelta(minutes=1)).isoformat()}}).decode()
            messages.append((mid, self.keys[c], provider, channel, f"p{i}", sender_id, sender_name,
                             "user" if inbound else "agent", "inbound" if inbound else "outbound", kind, body, caption,
                             generated, transcript, extracted, status, status_at, reactions, at, at))  # fmt: skip
            first.setdefault(c, at)
            _, last_in, last_out = last.get(c, (None, None, None))
            last[c] = (at, at if inbound else last_in, last_out if inbound else at)
        rows = []
        for c in range(chats):
            provider, channel = self.channels[c]
            chat_id = self.keys[c].rsplit(":", 1)[1]
            group = c in self.groups
            lm, li, lo = last.get(c, (None, None, None))
            created = first.get(c, start)
            rows.append((self.keys[c], provider, channel, chat_id, self.phones[c], None if group else self.names[c],
                         group, self.names[c] if group else None, lm, li, lo, created, lm or created))  # fmt: skip
        return rows, messages, media


async def load(url: str, memory_: Memory) -> None:
    t0 = time.perf_counter()
    chat_rows, messages, media = memory_.generate()
    print(f"generated {len(chat_rows):,} chats, {len(messages):,} messages ({memory_.big_size:,} in the big chat), "
          f"{len(media):,} media rows in {time.perf_counter() - t0:.0f} s", flush=True)  # fmt: skip
    conn = await asyncpg.connect(url)
    try:
        indexes = await conn.fetch(
            "select i.relname, pg_get_indexdef(x.indexrelid) as def from pg_index x join pg_class i on i.oid = x.indexrelid "
            "where x.indrelid = 'chat_messages'::regclass and not x.indisprimary and not x.indisunique"
        )
        for r in indexes:
            await conn.execute(f'drop index "{r["relname"]}"')
        t0 = time.perf_counter()
        await conn.execute("set session_replication_role = replica")  # no per-row foreign key check
        await conn.copy_records_to_table("chats", records=chat_rows, columns=CHAT_COLUMNS)
        await conn.copy_records_to_table("chat_messages", records=messages, columns=MESSAGE_COLUMNS)
        await conn.copy_records_to_table("chat_media", records=media, columns=MEDIA_COLUMNS)
        await conn.execute("reset session_replication_role")
        copied = time.perf_counter() - t0
        t0 = time.perf_counter()
        await conn.execute("set maintenance_work_mem = '512MB'")
        for r in indexes:
            await conn.execute(r["def"])
        indexed = time.perf_counter() - t0
        await conn.execute("vacuum analyze chats, chat_messages, chat_media")
        size = await conn.fetchval("select pg_size_pretty(pg_total_relation_size('chat_messages'))")
        print(f"COPY {copied:.0f} s, indexes rebuilt in {indexed:.0f} s "
              f"({', '.join(r['relname'] for r in indexes)}); chat_messages with indexes: {size}", flush=True)  # fmt: skip
    finally:
        await conn.close()


# --- figures --------------------------------------------------------------------------------


def pct(values: Sequence[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


class Console:
    """An operator's browser, minus the browser: a logged-in session on one keep-alive connection."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True),  # cookies of 127.0.0.1
                                             connector=aiohttp.TCPConnector(limit=1))  # fmt: skip

    async def log_in(self) -> None:
        async with self.session.get(f"{self.base}/console/login") as r:
            assert r.status == 200, r.status
            token = re.search(r'name="csrf" value="([^"]+)"', await r.text())
        assert token, "no login token"
        form = {"csrf": token.group(1), "key": CONSOLE_KEY}
        async with self.session.post(f"{self.base}/console/login", data=form, allow_redirects=False) as r:
            assert r.status == 303 and r.headers["location"] == "/console/", (r.status, r.headers.get("location"))

    async def get(self, path: str, *, fragment: bool = False) -> tuple[float, str]:
        headers = {"HX-Request": "true"} if fragment else {}
        t0 = time.perf_counter()
        async with self.session.get(f"{self.base}{path}", headers=headers, allow_redirects=False) as r:
            body = await r.text()
        took = time.perf_counter() - t0
        if r.status != 200:
            raise SystemExit(f"GET {path.split('?')[0]} answered {r.status}: {body[:300]}")
        return took, body

    async def close(self) -> None:
        await self.session.close()


def q(value: str) -> str:
    return quote(value, safe="")


async def measure_pages(url: str, base: str, m: Memory, requests: int) -> list[tuple[str, list[float]]]:
    rng = random.Random(23)
    conn = await asyncpg.connect(url)
    try:
        big = m.keys[m.big]
        depths = sorted(rng.sample(range(5_000, max(5_001, m.big_size - 100)), requests))
        deep = []
        for d in depths:
            r = await conn.fetchrow("select provider_timestamp, id from chat_messages where chat_key = $1 "
                                    "order by provider_timestamp desc, id desc offset $2 limit 1", big, d)  # fmt: skip
            deep.append(cursor.encode(r["provider_timestamp"], r["id"]))
        targets = [r["id"] for r in await conn.fetch(
            "select id from chat_messages where chat_key = $1 and body like '%order%' order by random() limit $2",
            big, requests)]  # fmt: skip
        orders = [r["o"] for r in await conn.fetch(
            "select substring(body from 'order ([0-9]+)') as o from chat_messages where chat_key = $1 "
            "and body ~ 'order [0-9]+' order by random() limit $2", big, requests)]  # fmt: skip
    finally:
        await conn.close()
    people = [c for c in range(len(m.keys)) if c not in m.groups]
    words = ["refund", "courier", "invoice", "warranty", "damaged", "address", "discount", "parcel"]
    pages: list[tuple[str, list[float], list[tuple[str, bool]]]] = []

    def page(name: str, paths: list[tuple[str, bool]]) -> None:
        pages.append((name, [], paths))

    n = requests
    page("chats: first page", [("/console/", False)] * n)
    page("chats: next pages (cursor)", [])  # filled while walking
    page("chats: search by name", [(f"/console/?q={q(x)}", False) for x in
                                   [rng.choice([m.names[rng.choice(people)].split()[-1].lower(),
                                                m.names[rng.choice(people)], rng.choice(FIRST)[:4]])
                                    for _ in range(n)]])  # fmt: skip
    page("chats: search by phone digits", [(f"/console/?q={q(x)}", False) for x in
                                           [(lambda p: p[: rng.randrange(5, len(p) + 1)])(m.phones[rng.choice(people)])
                                            for _ in range(n)]])  # fmt: skip
    providers = sorted({p for p, _ in CHANNELS})
    page("chats: by provider", [(f"/console/?provider={providers[i % len(providers)]}", False) for i in range(n)])
    page("chats: by channel", [(f"/console/?channel={q(CHANNELS[i % len(CHANNELS)][1])}", False) for i in range(n)])
    page("conversation: latest, big chat", [(f"/console/chats/{q(big)}", False)] * n)
    page("conversation: latest, random chats", [(f"/console/chats/{q(m.keys[rng.randrange(1, len(m.keys))])}", False)
                                                for _ in range(n)])  # fmt: skip
    page("conversation: deep page, big chat (htmx)", [(f"/console/chats/{q(big)}?before={c}", True) for c in deep])
    page("conversation: at a message, big chat", [(f"/console/chats/{q(big)}?at={q(t)}", False) for t in targets])
    page("search: words, big chat", [(f"/console/chats/{q(big)}/search?q={q(x)}", False) for x in
                                      [rng.choice([f"order {rng.choice(orders)}", rng.choice(words),
                                                   f"{rng.choice(words)} {rng.choice(words)}"]) for _ in range(n)]])  # fmt: skip
    page("search: words, random chats", [(f"/console/chats/{q(m.keys[rng.randrange(1, len(m.keys))])}/search?q="
                                          f"{q(rng.choice(words))}", False) for _ in range(n)])  # fmt: skip
    page("search: every chat", [(f"/console/search?q={q(x)}", False) for x in
                                 [rng.choice([f"order {rng.choice(orders)}", rng.choice(words),
                                              f"{rng.choice(words)} {rng.choice(words)}"]) for _ in range(n)]])  # fmt: skip
    page("pipeline", [("/console/pipeline", False)] * n)

    console = Console(base)
    try:
        await console.log_in()
        for _ in range(3):  # the service's connections, templates and plans warm
            for _, _, paths in pages:
                for path, fragment in paths[:1]:
                    await console.get(path, fragment=fragment)
        for _ in range(60):  # a new broker's group coordinator takes a moment: the page says so meanwhile
            _, body = await console.get("/console/pipeline")
            if "unavailable (" not in body:
                break
            await asyncio.sleep(1)
        else:
            raise SystemExit("the pipeline page never read Kafka")
        for name, times, paths in pages:
            if name.startswith("chats: next"):  # page after page by the "More chats" link
                _, body = await console.get("/console/")
                while len(times) < n:
                    more = re.search(r'class="more" href="([^"]+)"', body)
                    if more is None:  # the last page: from the first again
                        _, body = await console.get("/console/")
                        continue
                    took, body = await console.get(more.group(1).replace("&amp;", "&"))
                    times.append(took)
                continue
            for path, fragment in paths:
                took, body = await console.get(path, fragment=fragment)
                if "conversation" in name:
                    assert body.count('class="bubble') >= 1, name
                if name == "pipeline":
                    assert "unavailable (" not in body and 'class="lags"' in body, "the pipeline page lost Kafka"
                times.append(took)
    finally:
        await console.close()
    return [(name, times) for name, times, _ in pages]


async def explain(url: str, m: Memory) -> None:
    """The plans of the console's statements, with their times (EXPLAIN ANALYZE)."""
    conn = await asyncpg.connect(url)
    big = m.keys[m.big]
    person = next(c for c in range(len(m.keys)) if c not in m.groups)
    r = await conn.fetchrow("select provider_timestamp, id from chat_messages where chat_key = $1 "
                            "order by provider_timestamp desc, id desc offset $2 limit 1", big, m.big_size * 9 // 10)  # fmt: skip
    target = await conn.fetchval("select id from chat_messages where chat_key = $1 order by provider_timestamp "
                                 "offset $2 limit 1", big, m.big_size // 10)  # fmt: skip
    name = m.names[person].split()[-1].lower()
    phone = m.phones[person][:7]
    statements = [
        ("chats, first page", *memory.browse_statement(limit=51)),
        (f"chats by name ({name!r})", *memory.browse_statement(text=name, limit=51)),
        (f"chats by phone digits ({phone[:3]}...)", *memory.browse_statement(text=phone, limit=51)),
        ("chats by channel", *memory.browse_statement(channel=CHANNELS[-1][1], limit=51)),
        ("the filters' provider/channel list", memory.PROVIDERS_SQL, []),
        ("a deep page, big chat", memory.OLDER_SQL, [big, r["provider_timestamp"], r["id"], 51]),
        ("the page at a message, big chat", memory.AT_SQL, [big, target, 51]),
        ("recall by words in message texts, big chat ('refund')",
         "select * from match_session_texts($1, $2, 30, 2000)", [big, "refund"]),
    ]
    try:
        for title, sql, args in statements:
            plan = await conn.fetch(f"explain (analyze, buffers, costs off) {sql}", *args)
            print(f"\n-- {title}")
            print("\n".join(p[0] for p in plan))
    finally:
        await conn.close()


# --- processes ------------------------------------------------------------------------------


def start_readside(settings: Settings, log_dir: Path, port: int) -> Child:
    service = by_name("recall")  # python -m msgmem.readside: recall, the memory API, the console
    env = service.env(settings) | {"PYTHONPATH": str(ROOT), "RECALL_PORT": str(port), "RECALL_API_KEY": RECALL_KEY,
                                   "CONSOLE_API_KEY": CONSOLE_KEY, "CONSOLE_SESSION_KEY": SESSION_KEY,
                                   "OPENAI_API_KEY": "", "LOG_LEVEL": "INFO"}  # fmt: skip
    child = Child("recall", service.argv(), ready_pattern=service.ready_pattern, env=env_with(env),
                  sink=file_sink(log_dir / "readside.log"))  # fmt: skip
    child.start().wait_ready(120)
    return child


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chats", type=int, default=10_000)
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--big", type=int, default=100_000, help="messages of the one big chat")
    parser.add_argument("--requests", type=int, default=30, help="requests per page")
    parser.add_argument("--explain", action="store_true", help="print the plans of the console's statements")
    args = parser.parse_args()
    with scratch_dir("msgmem-bench-console-") as work:
        run(args, work)


def run(args: argparse.Namespace, work: Path) -> None:
    t0 = time.monotonic()
    stack: Stack = start_stack(work / "stack", durable=True)
    print(f"stack up in {time.monotonic() - t0:.0f} s; logs in {work}; {os.cpu_count()} cores, load average "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}", flush=True)  # fmt: skip
    settings = stack.settings
    url = settings.database_url
    (work / "logs").mkdir()
    child = None
    try:
        m = Memory(args.chats, args.messages, args.big)
        asyncio.run(load(url, m))
        if args.explain:
            asyncio.run(explain(url, m))
        port = free_port()
        child = start_readside(settings, work / "logs", port)
        print(f"read-side service up (python -m msgmem.readside); load average "
              f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}", flush=True)  # fmt: skip
        results = asyncio.run(measure_pages(url, f"http://127.0.0.1:{port}", m, args.requests))
        print(f"\nconsole pages, {args.messages:,} messages in {args.chats:,} chats (one of {m.big_size:,}); "
              f"{args.requests} requests each, one at a time; time to the full response on loopback "
              f"(server time + a loopback round trip); target: none over {TARGET * 1000:.0f} ms", flush=True)  # fmt: skip
        failed = 0
        for name, times in results:
            ok = max(times) <= TARGET
            failed += not ok
            print(f"  {name:<45} p50 {pct(times, 50) * 1000:6.1f} ms  p95 {pct(times, 95) * 1000:6.1f} ms  "
                  f"max {max(times) * 1000:6.1f} ms  {'PASS' if ok else 'FAIL'}", flush=True)  # fmt: skip
        print(f"{len(results) - failed} of {len(results)} pages PASS", flush=True)
    finally:
        print(f"load average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}", flush=True)
        if child is not None:
            child.stop()
        stack.stop()


if __name__ == "__main__":
    main()
