"""Context benchmark: an agent's context (``get_context``) over a large chat_messages, and how
fresh recall is behind the real pipeline.

    .venv/bin/python bench/context.py [--chats 10000] [--messages 1000000] [--queries 300]
                                      [--texts 100 --rate 5] [--voice 20] [--openai-latency 0.2]

Starts its own local stack (Kafka + Postgres, migrated), and:

1. Assembly: loads ``--chats`` chats and ``--messages`` messages into chat_messages with a
   binary COPY (its secondary indexes dropped during the load and rebuilt after), messages
   interleaved in time over the chats (~100 each at the defaults, so a chat's rows are spread
   over the heap as in a live table): typed texts with order numbers, names and dates, about
   6% voice notes with transcripts, 6% images (half with the sender's caption, half with the
   AI description in chat_messages.caption and chat_media), a few PDFs with extracted text and
   stickers; a chat_media row per media message. No message_embeddings: the context's recall
   runs by words (the default without OPENAI_API_KEY; ``semantic.used`` is false), which
   searches every message text of the chat. Then, for ``--queries`` random chats: the
   context function (``projections.recall.memory.get_context``: window of 20, recall for the
   contact's latest inbound text, 4,000 tokens) called in-process, p50/p95/p99, the first
   time a chat is asked and again; the same through ``GET /chats/{chat}/context`` of a real
   recall service (uvicorn, its own process); and a plain indexed query for the chat's last
   20 messages on the same chats, with the ratio. Target: p95 <= 30 ms.
2. Freshness, every service a real process (ingest, normalize, projector, media, transcribe,
   media projector, embed, embeddings projector) against a local fake of OpenAI's API whose
   every call takes ``--openai-latency`` seconds: ``--texts`` Whapi text webhooks at ``--rate``
   per second, each with a word of its own; per message, the time from ingest's 200 to the
   moment recall by words (``projections.recall.search.search``, polled every 5 ms) returns
   it. Target p95 <= 500 ms. Then ``--voice`` voice notes one after another, each with its
   own fake transcript: the time from the transcription call returning, and from the
   embedding call (of that transcript) returning, to recall by meaning (the query embedded
   locally with the fake's own deterministic embedding of the transcript's text, so the
   query itself costs no API call) returning the transcript's chunk. Target p95 <= 1 s.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import time
import uuid
from array import array
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import asyncpg
import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from contracts.settings import Settings  # noqa: E402
from msgmem.localstack.processes import Child, env_with, file_sink, free_port  # noqa: E402
from msgmem.localstack.stack import Stack, start_stack  # noqa: E402
from msgmem.services import by_name  # noqa: E402
from projections.embeddings.vectors import register_vector  # noqa: E402
from projections.recall.memory import MemoryConfig, get_context  # noqa: E402
from projections.recall.request import ContextQuery  # noqa: E402
from projections.recall.search import UnknownChat, search  # noqa: E402
from scratch import scratch_dir  # noqa: E402  (bench/scratch.py)
from tests.fakes.openai_api import FakeOpenAI, embedding  # noqa: E402
from tests.fakes.provider_media import FakeProviderMedia, sha256_of  # noqa: E402
from tests.fakes.server import ThreadedServer  # noqa: E402

WHAPI_TOKEN = "bench-whapi-token"
RECALL_KEY = "bench-recall-key"
WINDOW = 20
WHAPI = ROOT / "tests" / "fixtures" / "webhooks" / "whapi"
VOICE_SHA = sha256_of("voice_note.ogg")

# --- synthetic chats ----------------------------------------------------------------------

FIRST = ["Dana", "Omar", "Lena", "Ravi", "Sofia", "Kenji", "Amara", "Lucas", "Maya", "Tomasz", "Ines", "Noah"]
LAST = ["Silva", "Haddad", "Novak", "Patel", "Rossi", "Tanaka", "Okafor", "Martin", "Cohen", "Kowalski"]
ITEMS = ["blue sneakers", "coffee grinder", "desk lamp", "winter jacket", "phone case", "yoga mat", "kettle",
         "backpack", "headphones", "office chair", "garden hose", "bike helmet"]  # fmt: skip
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "tomorrow", "next week"]
INBOUND = [
    "Hi, is order {o} still arriving on {d}?",
    "The {i} from order {o} came damaged, can I get a refund?",
    "Can you send me the invoice for order {o}? I need it for my accountant.",
    "I changed my address, please deliver the {i} to the new one.",
    "Thanks! The {i} works great.",
    "Is there a discount if I order two {i}s?",
    "Where is my parcel? Tracking for {o} has not moved since {d}.",
    "Could the courier come {d} after 5pm?",
    "What is the warranty on the {i}?",
    "ok",
    "Perfect, thank you so much",
    "I paid with card but got no confirmation for order {o}",
]  # fmt: skip
OUTBOUND = [
    "Hello {n}! Order {o} ships {d}.",
    "Sorry about the {i}. A refund for order {o} is on its way, 3 to 5 working days.",
    "Here is your invoice for order {o}: INV-2026-{o}.",
    "Your new address is saved. The courier will come {d}.",
    "We have a 10% discount on the {i} this week.",
    "The {i} has a two-year warranty.",
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


def chat_key(c: int) -> str:
    return f"bench:CTX:c{c:05d}"


def fill(template: str, rng: random.Random, name: str) -> str:
    return template.format(o=rng.randrange(1000, 99999), d=rng.choice(DAYS), i=rng.choice(ITEMS), n=name)


CHAT_COLUMNS = ["chat_key", "provider", "channel_id", "chat_id", "contact_phone", "contact_name", "last_message_at",
                "last_inbound_at"]  # fmt: skip
MESSAGE_COLUMNS = ["id", "chat_key", "provider", "channel_id", "provider_message_id", "sender_id", "sender_name",
                   "origin", "direction", "message_type", "body", "caption", "caption_generated", "transcript",
                   "extracted_text", "provider_timestamp", "received_at"]  # fmt: skip
MEDIA_COLUMNS = ["id", "message_id", "chat_key", "kind", "mime_type", "size_bytes", "filename", "caption", "transcript",
                 "extracted_text", "status"]  # fmt: skip


def generate(chats: int, n: int, seed: int = 5) -> tuple[list[tuple], list[tuple], list[tuple]]:  # type: ignore[type-arg]
    """Chats, messages (in time order, each to a random chat) and the media rows."""
    rng = random.Random(seed)
    names = [f"{rng.choice(FIRST)} {rng.choice(LAST)}" for _ in range(chats)]
    start = datetime.now(UTC) - timedelta(days=365)
    step = timedelta(days=365) / max(1, n)
    messages, media = [], []
    last: dict[int, datetime] = {}
    for i in range(n):
        c = rng.randrange(chats)
        at = start + step * i
        last[c] = at
        name = names[c]
        phone = f"1555{c:07d}"
        inbound = rng.random() < 0.6
        body = caption = transcript = extracted = None
        generated = False
        kind = "text"
        r = rng.random()
        if inbound and r < 0.10:
            kind, transcript = "voice", fill(rng.choice(TRANSCRIPTS), rng, name)
            media.append((f"md{i}", f"cx{i}", chat_key(c), "voice", "audio/ogg; codecs=opus", 20000 + i % 9000, None,
                          None, transcript, None, "stored"))  # fmt: skip
        elif r < 0.16:
            kind = "image"
            description = fill(rng.choice(DESCRIPTIONS), rng, name)
            if rng.random() < 0.5:
                caption = "here is the photo" if inbound else "photo of your parcel"
            else:
                caption, generated = description, True
            media.append((f"md{i}", f"cx{i}", chat_key(c), "image", "image/jpeg", 80000 + i % 50000, None,
                          description, None, None, "stored"))  # fmt: skip
        elif r < 0.18:
            kind, caption = "document", "Invoice attached"
            extracted = f"INVOICE INV-2026-{i % 99991}\n" + fill("Order {o}: {i}, 1 x 49.00 EUR. Due {d}.", rng, name)
            media.append((f"md{i}", f"cx{i}", chat_key(c), "document", "application/pdf", 120000, f"invoice-{i}.pdf",
                          None, None, extracted, "stored"))  # fmt: skip
        elif r < 0.19:
            kind = "sticker"
        else:
            body = fill(rng.choice(INBOUND if inbound else OUTBOUND), rng, name.split()[0])
        messages.append((
            f"cx{i}", chat_key(c), "bench", "CTX", f"p{i}", phone if inbound else "business",
            name if inbound else "Shop", "user" if inbound else "agent", "inbound" if inbound else "outbound", kind,
            body, caption, generated, transcript, extracted, at, at,
        ))  # fmt: skip
    rows = [(chat_key(c), "bench", "CTX", f"c{c:05d}", f"1555{c:07d}", names[c], last.get(c), last.get(c))
            for c in range(chats)]  # fmt: skip
    return rows, messages, media


async def load(url: str, chats: int, n: int) -> None:
    t0 = time.perf_counter()
    chat_rows, messages, media = generate(chats, n)
    print(f"generated {len(chat_rows):,} chats, {len(messages):,} messages, {len(media):,} media rows "
          f"in {time.perf_counter() - t0:.0f} s", flush=True)  # fmt: skip
    conn = await asyncpg.connect(url)
    try:
        # Secondary indexes of chat_messages off during the load, rebuilt after from their own definitions.
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
        print(f"COPY {copied:.0f} s ({n / copied:,.0f} messages/s), indexes rebuilt in {indexed:.0f} s "
              f"({', '.join(r['relname'] for r in indexes)}); chat_messages with indexes: {size}", flush=True)  # fmt: skip
    finally:
        await conn.close()


# --- figures ------------------------------------------------------------------------------


def pct(values: Sequence[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def ms(values: Sequence[float], *, p99: bool = True) -> str:
    out = f"p50 {pct(values, 50) * 1000:.1f} ms, p95 {pct(values, 95) * 1000:.1f} ms"
    return out + (f", p99 {pct(values, 99) * 1000:.1f} ms" if p99 else "")


PLAIN_SQL = """
select m.id, m.provider_timestamp, m.origin, m.direction, m.message_type, m.sender_name, m.body, m.caption,
       m.transcript
from chat_messages m where m.chat_key = $1
order by m.provider_timestamp desc
limit $2
"""


async def assembly(settings: Settings, url: str, chats: int, queries: int, recall_url: str) -> None:
    config = MemoryConfig.from_settings(settings)
    pool = await asyncpg.create_pool(url, init=register_vector, min_size=1, max_size=2)
    rng = random.Random(17)
    sample = [chat_key(c) for c in rng.sample(range(chats), min(chats, queries + 20))]
    warm, sample = sample[:20], sample[20:]
    try:
        for c in warm:  # the tokenizer, the connections, the plans
            await get_context(pool, None, c, ContextQuery(), config)
        first, again, plain, recalled, words = [], [], [], 0, []
        for c in sample:
            t0 = time.perf_counter()
            answer = await get_context(pool, None, c, ContextQuery(), config)
            first.append(time.perf_counter() - t0)
            recalled += answer.recall_count
            words.append(answer.window_count)
        for c in sample:
            t0 = time.perf_counter()
            await pool.fetch(PLAIN_SQL, c, WINDOW)
            plain.append(time.perf_counter() - t0)
        for c in sample:
            t0 = time.perf_counter()
            answer = await get_context(pool, None, c, ContextQuery(), config)
            again.append(time.perf_counter() - t0)
        print(f"context function, {len(sample)} random chats (window {WINDOW}, recall by words for the latest "
              f"inbound text, {config.max_tokens} tokens; {recalled / len(sample):.1f} snippets and "
              f"{sum(words) / len(words):.1f} window messages on average; semantic.used "
              f"{answer.semantic.used}: {answer.semantic.reason})", flush=True)  # fmt: skip
        print(f"  first time a chat is asked: {ms(first)}  (target p95 <= 30 ms)", flush=True)
        print(f"  again, same chats:          {ms(again)}", flush=True)
        print(f"  plain indexed query for the last {WINDOW} messages, same chats: {ms(plain)}", flush=True)
        print(f"  ratio context / plain query (again vs plain): p50 {pct(again, 50) / pct(plain, 50):.1f}x, "
              f"p95 {pct(again, 95) / pct(plain, 95):.1f}x", flush=True)  # fmt: skip

        http = []
        headers = {"authorization": f"Bearer {RECALL_KEY}"}
        async with aiohttp.ClientSession(headers=headers) as session:
            for c in warm:
                async with session.get(f"{recall_url}/chats/{c}/context") as r:
                    assert r.status == 200, await r.text()
                    await r.read()
            for c in sample:
                t0 = time.perf_counter()
                async with session.get(f"{recall_url}/chats/{c}/context") as r:
                    assert r.status == 200, await r.text()
                    await r.read()
                http.append(time.perf_counter() - t0)
        print(f"  GET /chats/{{chat}}/context through the recall service (uvicorn, own process), same chats: "
              f"{ms(http)}", flush=True)  # fmt: skip
    finally:
        await pool.close()


# --- freshness ----------------------------------------------------------------------------


class LocalEmbedder:
    """The fake's own embedding of a query, computed here: recall by meaning without an API call."""

    def __init__(self, model: str, dimensions: int) -> None:
        self.model, self.dimensions = model, dimensions

    async def embed(self, texts: Sequence[str], tokens: Sequence[int]) -> list[array]:  # type: ignore[type-arg]
        return [array("f", embedding(self.model, t, self.dimensions)) for t in texts]


def text_webhook(run: str, i: int, word: str) -> bytes:
    body = orjson.loads((WHAPI / "text.json").read_bytes())
    message = body["messages"][0]
    message["id"] = f"fresh-{run}-{i}"
    message["chat_id"] = f"1666{i % 20:07d}@s.whatsapp.net"
    message["from"] = f"1666{i % 20:07d}"
    message["timestamp"] = int(time.time())
    message["text"] = {"body": f"Is the parcel {word} on its way? Order {1000 + i}"}
    return orjson.dumps(body)


def voice_webhook(run: str, i: int) -> bytes:
    body = orjson.loads((WHAPI / "voice.json").read_bytes())
    message = body["messages"][0]
    message["id"] = f"voice-{run}-{i}"
    message["chat_id"] = f"1777{i % 5:07d}@s.whatsapp.net"
    message["from"] = f"1777{i % 5:07d}"
    message["timestamp"] = int(time.time())
    return orjson.dumps(body)


async def poll(check: Callable[[], Awaitable[bool]]) -> float:
    """The monotonic time ``check`` first holds, asked every 5 ms (an unknown chat: not yet)."""
    while True:
        try:
            if await check():
                return time.monotonic()
        except UnknownChat:
            pass
        await asyncio.sleep(0.005)


async def freshness(settings: Settings, url: str, ingest_url: str, fake: FakeOpenAI, args: argparse.Namespace) -> None:
    pool = await asyncpg.create_pool(url, init=register_vector, min_size=2, max_size=8)
    run = uuid.uuid4().hex[:6]
    headers = {"authorization": f"Bearer {WHAPI_TOKEN}"}
    try:
        lags: list[float] = []
        posts: list[float] = []  # the webhook's own round trip: ingest answers once wa.raw has it
        async with aiohttp.ClientSession(headers=headers) as session:

            async def one(i: int) -> None:
                word = f"fresh{run}w{i}"
                chat = f"whapi:TESTCH-A1B2C:1666{i % 20:07d}"
                sent = time.monotonic()
                async with session.post(f"{ingest_url}/webhooks/whapi", data=text_webhook(run, i, word)) as r:
                    assert r.status == 200, await r.text()
                acked = time.monotonic()

                async def check() -> bool:
                    return bool(await search(pool, None, chat, word, 3))

                found = await asyncio.wait_for(poll(check), 60)
                lags.append(found - acked)
                posts.append(acked - sent)

            start = time.perf_counter()
            tasks = []
            for i in range(args.texts):
                delay = start + i / args.rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(one(i)))
            await asyncio.gather(*tasks)
            print(f"text webhook 200 -> recall by words finds it, {len(lags)} messages at {args.rate:g}/s: "
                  f"median {pct(lags, 50) * 1000:.0f} ms, p95 {pct(lags, 95) * 1000:.0f} ms, "
                  f"max {max(lags) * 1000:.0f} ms  (target p95 <= 500 ms); the webhook's own round trip before its "
                  f"200: median {pct(posts, 50) * 1000:.0f} ms, p95 {pct(posts, 95) * 1000:.0f} ms", flush=True)  # fmt: skip

            embedder = LocalEmbedder(settings.embeddings_model, settings.embeddings_dimensions)
            from_transcript, from_embedding, from_ack = [], [], []
            for i in range(args.voice):
                text = f"voice memo {run} number {i}: the {ITEMS[i % len(ITEMS)]} should come {DAYS[i % len(DAYS)]}"
                fake.transcripts[VOICE_SHA] = text
                async with pool.acquire() as conn:
                    await conn.execute("truncate enrichment_cache")  # the same file: a transcription each time
                chat = f"whapi:TESTCH-A1B2C:1777{i % 5:07d}"
                posted = time.monotonic()
                async with session.post(f"{ingest_url}/webhooks/whapi", data=voice_webhook(run, i)) as r:
                    assert r.status == 200, await r.text()
                acked = time.monotonic()

                async def check() -> bool:
                    answer = await search(pool, embedder, chat, text, 3)
                    return any(s.source == "transcript" and s.matched != "words" and s.text == text
                               for s in answer.snippets)  # fmt: skip

                try:
                    found = await asyncio.wait_for(poll(check), 60)
                except TimeoutError:
                    rows = await pool.fetch(
                        "select m.message_type, m.transcript, d.status, d.error, d.enrichment_status, d.enrichment_error "
                        "from chat_messages m left join chat_media d on d.message_id = m.id "
                        "where m.provider_message_id = $1", f"voice-{run}-{i}")
                    raise SystemExit(f"voice note {i} not found by meaning in 60 s: {[dict(r) for r in rows]}, "
                                     f"OpenAI calls {[(c.path, c.status) for c in fake.calls()][-5:]}")
                transcribed = [c.at for c in fake.calls("/v1/audio/transcriptions") if c.at >= posted]
                embedded = [c.at for c in fake.calls("/v1/embeddings") if transcribed and c.at >= transcribed[0]]
                if not transcribed or not embedded:
                    raise SystemExit(f"voice note {i}: no transcription or embedding call seen")
                from_transcript.append(found - transcribed[0])
                from_embedding.append(found - embedded[0])
                from_ack.append(found - acked)
            print(f"voice note, {args.voice} one after another, OpenAI calls {args.openai_latency * 1000:.0f} ms each: "
                  f"transcription returned -> recall by meaning finds it: median {pct(from_transcript, 50) * 1000:.0f} ms,"
                  f" p95 {pct(from_transcript, 95) * 1000:.0f} ms; embedding returned -> found: median "
                  f"{pct(from_embedding, 50) * 1000:.0f} ms, p95 {pct(from_embedding, 95) * 1000:.0f} ms "
                  f"(target p95 <= 1 s); webhook 200 -> found: median {pct(from_ack, 50) * 1000:.0f} ms, "
                  f"p95 {pct(from_ack, 95) * 1000:.0f} ms", flush=True)  # fmt: skip
    finally:
        await pool.close()


# --- processes ------------------------------------------------------------------------------


def start_service(name: str, settings: Settings, log_dir: Path, **env: str) -> Child:
    service = by_name(name)
    child = Child(name, service.argv(), ready_pattern=service.ready_pattern,
                  env=env_with(service.env(settings) | {"PYTHONPATH": str(ROOT)} | env),
                  sink=file_sink(log_dir / f"{name}.log"))  # fmt: skip
    child.start().wait_ready(120)
    return child


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chats", type=int, default=10_000)
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=300, help="random chats asked for their context")
    parser.add_argument("--texts", type=int, default=100, help="text webhooks timed to recall")
    parser.add_argument("--rate", type=float, default=5.0, help="text webhooks per second")
    parser.add_argument("--voice", type=int, default=20, help="voice notes timed to recall by meaning")
    parser.add_argument("--openai-latency", type=float, default=0.2, help="seconds each fake OpenAI call takes")
    parser.add_argument("--skip-freshness", action="store_true")
    parser.add_argument("--skip-assembly", action="store_true")
    args = parser.parse_args()
    with scratch_dir("msgmem-bench-context-") as work:
        measure(args, work)


def measure(args: argparse.Namespace, work: Path) -> None:
    t0 = time.monotonic()
    stack: Stack = start_stack(work / "stack", durable=True)
    busy = " ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"stack up in {time.monotonic() - t0:.0f} s; logs in {work}; {os.cpu_count()} cores, "
          f"load average {busy} (other work on the machine skews the tails)", flush=True)  # fmt: skip
    settings = stack.settings
    url = settings.database_url
    logs = work / "logs"
    logs.mkdir()
    children: list[Child] = []
    fake, media = FakeOpenAI(), FakeProviderMedia(whapi_token=WHAPI_TOKEN)
    fake.latency = args.openai_latency
    openai_server, media_server = ThreadedServer(fake.app), ThreadedServer(media.app)
    try:
        if not args.skip_assembly:
            asyncio.run(load(url, args.chats, args.messages))
            recall_port = free_port()
            children.append(start_service("recall", settings, logs, RECALL_PORT=str(recall_port),
                                          RECALL_API_KEY=RECALL_KEY))  # fmt: skip
            asyncio.run(assembly(settings, url, args.chats, args.queries, f"http://127.0.0.1:{recall_port}"))
        if args.skip_freshness:
            return
        openai_url, media_url = openai_server.start(), media_server.start()
        enrich = {"OPENAI_API_KEY": fake.api_key, "OPENAI_BASE_URL": f"{openai_url}/v1"}
        store = {"MEDIA_LOCAL_DIR": str(work / "media")}
        enrich = store | enrich
        fetch = store | {"WHAPI_API_URL": media_url, "WHAPI_API_TOKEN": WHAPI_TOKEN, "MEDIA_TRUSTED_ORIGINS": media_url}
        ingest_port = free_port()
        for name, env in (("ingest", {"INGEST_PORT": str(ingest_port), "WHAPI_TOKEN": WHAPI_TOKEN}),
                          ("normalize", {}), ("projector", {}), ("media", fetch), ("transcribe", enrich),
                          ("media_projector", store), ("embed", enrich), ("embeddings_projector", {})):  # fmt: skip
            children.append(start_service(name, settings, logs, **env))
        print(f"services up: ingest, normalize, projector, media, transcribe, media_projector, embed, "
              f"embeddings_projector; fake OpenAI latency {args.openai_latency * 1000:.0f} ms", flush=True)  # fmt: skip
        asyncio.run(freshness(settings, url, f"http://127.0.0.1:{ingest_port}", fake, args))
    finally:
        print(f"load average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}", flush=True)
        for child in reversed(children):
            child.stop()
        openai_server.stop()
        media_server.stop()
        stack.stop()


if __name__ == "__main__":
    main()
