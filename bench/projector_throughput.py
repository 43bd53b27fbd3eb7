"""Projector benchmark: wa.messages events/s applied to Postgres by ``python -m projections``.

    .venv/bin/python bench/projector_throughput.py [--events 100000] [--chats 1000] [--batch-size 2000]

Starts a local Kafka broker and Postgres (cached jars, embedded pgvector), produces a mix of
events first (half messages in and out, the rest statuses out of order, reactions and edits),
then starts the projector as its own process and times it from its readiness line until the
offsets it stores in Postgres reach the end of the topic. Nothing else runs meanwhile but
this process polling ``projection_offsets`` every 50 ms. Target on a 2-core machine:
>= 5,000 events/s end to end.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import signal
import sys
import tempfile
import time
from pathlib import Path

import asyncpg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from contracts.messages import TOPIC, MessageEvent, encode_event  # noqa: E402
from runtime.kafka import end_offsets, make_producer  # noqa: E402
from msgmem.localstack.processes import Child, env_with, file_sink  # noqa: E402
from msgmem.localstack.stack import Stack, start_stack  # noqa: E402
from projections.consumer import READY_LINE  # noqa: E402
from tests.unit.projections.factory import Chat  # noqa: E402


def workload(events: int, chats: int) -> list[MessageEvent]:
    rng = random.Random(7)
    people = [Chat(channel="BENCH", chat_id=f"1666{n:07d}", contact_name=f"Person {n}") for n in range(chats)]
    out: list[MessageEvent] = []
    i = 0
    while len(out) < events:
        chat, t = people[i % chats], i * 0.01
        if i % 2:
            group: list[MessageEvent] = [chat.sent(f"m{i}", f"Reply number {i} with some words in it", t=t)]
            group += [chat.status(f"m{i}", s, t + n) for n, s in enumerate(("sent", "delivered", "read"), 1)]
            rng.shuffle(group)
        else:
            group = [chat.received(f"m{i}", f"Question {i}: is my order on its way? " * 2, t=t)]
            if i % 10 == 0:
                group.append(chat.reaction(f"m{i - 1}", "👍", t + 5))
            if i % 20 == 0:
                group.append(chat.edited(f"m{i}", f"Question {i}, edited", t + 9))
        out.extend(group)
        i += 1
    return out[:events]


async def produce(stack: Stack, events: list[MessageEvent]) -> float:
    started = time.perf_counter()
    producer = make_producer(stack.settings, linger_ms=20)
    await producer.start()
    try:
        futures = [await producer.send(TOPIC, encode_event(e), key=e.chat_key.encode()) for e in events]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return time.perf_counter() - started


async def stored_total(conn: asyncpg.Connection) -> int:
    return await conn.fetchval("select coalesce(sum(next_offset), 0) from projection_offsets where topic = $1", TOPIC)


async def run(args: argparse.Namespace, stack: Stack, log: Path) -> None:
    events = workload(args.events, args.chats)
    produce_seconds = await produce(stack, events)
    total = sum((await end_offsets(stack.settings, TOPIC)).values())
    print(f"produced {len(events):,} events in {produce_seconds:.1f}s")

    env = env_with({
        "KAFKA_BOOTSTRAP_SERVERS": stack.settings.kafka_bootstrap_servers, "DATABASE_URL": stack.settings.database_url,
        "PROJECTOR_BATCH_SIZE": str(args.batch_size), "ENVIRONMENT": "test", "LOG_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
    })  # fmt: skip
    argv = [sys.executable, "-m", "projections.messages"]
    if args.py_spy:  # sample the projector: a flame graph in raw (collapsed stacks) form
        argv = [str(Path(sys.executable).with_name("py-spy")), "record", "-r", "250", "-f", "raw", "-o", args.py_spy,
                "--", *argv]  # fmt: skip
    child = Child("projector", argv, ready_pattern=READY_LINE, env=env,
                  cwd=ROOT, sink=file_sink(log),
                  stop_signal=signal.SIGINT if args.py_spy else signal.SIGTERM)  # py-spy writes its file on SIGINT
    conn = await asyncpg.connect(stack.settings.database_url)
    try:
        launched = time.perf_counter()
        child.start()
        await asyncio.to_thread(child.wait_ready, 60)
        ready = time.perf_counter()
        while await stored_total(conn) < total:
            await asyncio.sleep(0.05)
        done = time.perf_counter()
        rows = await conn.fetchval("select count(*) from chat_messages")
    finally:
        child.stop()
        await conn.close()
    elapsed = done - ready
    print(f"projector: {total:,} events in {elapsed:.2f}s after ready = {total / elapsed:,.0f} events/s "
          f"({total / (done - launched):,.0f}/s including start-up); {rows:,} chat_messages rows")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--chats", type=int, default=1_000)
    parser.add_argument("--batch-size", type=int, default=2_000)
    parser.add_argument("--py-spy", metavar="FILE", help="record the projector with py-spy (collapsed stacks) to FILE")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="msgmem-bench-projector-") as tmp:
        stack = start_stack(Path(tmp))
        try:
            asyncio.run(run(args, stack, Path(tmp) / "projector.log"))
        finally:
            stack.stop()


if __name__ == "__main__":
    main()
