"""Pipeline benchmark: sustained messages/s through normalize and the projector, and
webhook-to-row latency, beside the raw limits of the same machine.

    .venv/bin/python bench/pipeline.py [--messages 200000] [--rate 200 --seconds 30]

1. Pre-produces N Whapi text deliveries (one message each, spread over 1,000 chats) to
   wa.raw, starts the normalize worker and the projector as processes, and times until
   every message is a chat_messages row: sustained messages/s.
2. Raw limits measured in the same run: a plain aiokafka getmany loop over the same wa.raw
   records, and a bulk COPY of N rows into Postgres; the pipeline's rate as a ratio of each.
3. Latency: posts deliveries to a real ingest at a steady rate and reads, per message,
   the row's commit time: webhook-to-row p50/p95.
Targets on a 2-core machine: >= 5,000 messages/s sustained; p95 <= 300 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import asyncpg
import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from contracts import raw  # noqa: E402
from contracts.raw import RawDelivery  # noqa: E402
from contracts.settings import Settings  # noqa: E402
from runtime.kafka import make_consumer, make_producer, partitions_of  # noqa: E402
from msgmem.localstack.processes import Child, env_with, file_sink, free_port  # noqa: E402
from msgmem.localstack.stack import Stack, start_stack  # noqa: E402
from msgmem.services import by_name  # noqa: E402
from scratch import scratch_dir  # noqa: E402  (bench/scratch.py)

TOKEN = "bench-whapi-token"
TEMPLATE = orjson.loads((ROOT / "tests" / "fixtures" / "webhooks" / "whapi" / "text.json").read_bytes())


def delivery_body(i: int, run: str) -> bytes:
    message = dict(TEMPLATE["messages"][0])
    message["id"] = f"bench-{run}-{i}"
    message["chat_id"] = f"1555{i % 1000:07d}@s.whatsapp.net"
    message["from"] = f"1555{i % 1000:07d}"
    message["text"] = {"body": f"bench message {i} about order {i % 9973}"}
    return orjson.dumps({"messages": [message], "event": TEMPLATE["event"], "channel_id": "BENCH-CH"})


async def preproduce(settings: Settings, n: int, run: str) -> None:
    producer = make_producer(settings, linger_ms=20)
    await producer.start()
    try:
        pending = []
        for i in range(n):
            d = RawDelivery(
                delivery_id=f"{run}-{i}", provider="whapi", channel="BENCH-CH", received_at=datetime.now(UTC),
                body=delivery_body(i, run),
            )
            # Keyed like ingest would (provider:channel) would put all on one partition; a real
            # deployment has many channels, so spread the bench over partitions by chat.
            pending.append(await producer.send(raw.TOPIC, d.body, key=f"whapi:chat{i % 1000}".encode(), headers=d.kafka_headers()))
            if len(pending) >= 5000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


async def count_rows(dsn: str, run: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval(
            "select count(*) from chat_messages where provider_message_id like $1", f"bench-{run}-%"
        )
    finally:
        await conn.close()


async def raw_consume_rate(settings: Settings, n: int) -> float:
    parts = await partitions_of(settings, raw.TOPIC)
    consumer = make_consumer(settings, group_id=None)
    await consumer.start()
    try:
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        seen = 0
        started = time.perf_counter()
        while seen < n:
            batch = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            seen += sum(len(v) for v in batch.values())
        return seen / (time.perf_counter() - started)
    finally:
        await consumer.stop()


async def raw_copy_rate(dsn: str, n: int) -> float:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("create temp table bench_copy (like chat_messages including defaults)")
        now = datetime.now(UTC)
        rows = [
            (f"copy-{i}", f"whapi:BENCH-CH:c{i % 1000}", "whapi", "BENCH-CH", f"p{i}", "user", "inbound", "text",
             f"bench message {i}", now, now)
            for i in range(n)
        ]
        cols = ["id", "chat_key", "provider", "channel_id", "provider_message_id", "origin", "direction",
                "message_type", "body", "provider_timestamp", "received_at"]
        started = time.perf_counter()
        await conn.copy_records_to_table("bench_copy", records=rows, columns=cols)
        return n / (time.perf_counter() - started)
    finally:
        await conn.close()


def start_service(name: str, settings: Settings, log_dir: Path, **env: str) -> Child:
    service = by_name(name)
    child = Child(name, service.argv(), ready_pattern=service.ready_pattern,
                  env=env_with(service.env(settings) | {"PYTHONPATH": str(ROOT)} | env),
                  sink=file_sink(log_dir / f"{name}-{len(list(log_dir.glob(name + '*.log')))}.log"))
    child.start().wait_ready(90)
    return child


async def latency(settings: Settings, ingest_url: str, rate: float, seconds: float, run: str) -> list[float]:
    sent: dict[str, float] = {}
    total = int(rate * seconds)
    async with aiohttp.ClientSession() as session:
        async def post(i: int) -> None:
            body = delivery_body(i, run)
            sent[f"bench-{run}-{i}"] = time.time()
            async with session.post(f"{ingest_url}/webhooks/whapi", data=body,
                                    headers={"authorization": f"Bearer {TOKEN}"}) as r:
                assert r.status == 200, await r.text()

        start = time.perf_counter()
        tasks = []
        for i in range(total):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(post(i)))
        await asyncio.gather(*tasks)
    deadline = time.monotonic() + 60
    while await count_rows(settings.database_url, run) < total and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    conn = await asyncpg.connect(settings.database_url)
    try:
        rows = await conn.fetch(
            "select provider_message_id, extract(epoch from created_at) as t from chat_messages "
            "where provider_message_id like $1", f"bench-{run}-%",
        )
    finally:
        await conn.close()
    return [float(r["t"]) - sent[r["provider_message_id"]] for r in rows]


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q * 100) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--normalize-workers", type=int, default=1,
                        help="normalize worker processes in its consumer group (a stage scales by processes)")
    args = parser.parse_args()
    with scratch_dir("msgmem-bench-pipeline-") as work:
        measure(args, work)


def measure(args: argparse.Namespace, work: Path) -> None:
    stack: Stack = start_stack(work, durable=True)
    settings = stack.settings.model_copy(update={})
    children: list[Child] = []
    try:
        run = uuid.uuid4().hex[:8]
        t0 = time.perf_counter()
        asyncio.run(preproduce(settings, args.messages, run))
        print(f"pre-produced {args.messages} deliveries in {time.perf_counter() - t0:.1f}s")

        consume = asyncio.run(raw_consume_rate(settings, args.messages))
        copy = asyncio.run(raw_copy_rate(settings.database_url, args.messages))
        print(f"raw limits: aiokafka getmany {consume:,.0f} records/s; Postgres COPY {copy:,.0f} rows/s")

        t_start = time.perf_counter()
        for i in range(args.normalize_workers):
            children.append(start_service("normalize", settings, work, STATE_DIR=str(work / f"normalize-{i}")))
        children.append(start_service("projector", settings, work))
        started = time.perf_counter()
        print(f"workers ready in {started - t_start:.1f}s (timing starts now)")
        last = 0
        while (done := asyncio.run(count_rows(settings.database_url, run))) < args.messages:
            if time.perf_counter() - started > 900:
                raise SystemExit(f"only {done} of {args.messages} rows after 900 s")
            if done != last:
                last = done
            time.sleep(0.5)
        elapsed = time.perf_counter() - started
        rate = args.messages / elapsed
        print(f"sustained: {rate:,.0f} messages/s ({args.messages} in {elapsed:.1f}s after the workers were ready)"
              f"  (target >= 5,000)")
        print(f"as a ratio of raw limits: {rate / consume:.1%} of aiokafka consume, {rate / copy:.1%} of COPY")

        ingest_port = free_port()
        children.append(start_service("ingest", settings, work, INGEST_PORT=str(ingest_port), WHAPI_TOKEN=TOKEN))
        lat = asyncio.run(latency(settings, f"http://127.0.0.1:{ingest_port}", args.rate, args.seconds, run + "L"))
        print(f"webhook-to-row at {args.rate:.0f}/s: p50 {pct(lat, 0.5) * 1000:.0f} ms, p95 {pct(lat, 0.95) * 1000:.0f} ms"
              f" over {len(lat)} messages  (target p95 <= 300 ms)")
    finally:
        for child in reversed(children):
            child.stop()
        stack.stop()


if __name__ == "__main__":
    main()
