"""Rebuild benchmark: events/s of ``msgmem projections rebuild`` for chat_messages from 1,000,000 events.

    .venv/bin/python bench/rebuild.py [--events 1000000] [--chats 10000] [--runs 3] [--workers N]
                                      [--batch-size 20000] [--live-projector-first]

Starts a local Kafka broker and a durable Postgres (fsync on), produces the projector
benchmark's mix of events (half messages in and out, statuses out of order, reactions,
edits), then fills the live tables: by a first rebuild (reported as the bootstrap run: no
live projector, so it stores the offsets for it), or with ``--live-projector-first`` by the
live projector itself (slower, ~7,000 events/s, but then every run compares the rebuild
with tables the live projector wrote). The live projector then runs, caught up, through the
measured runs, as in production. Each run rebuilds from offset 0, compares and swaps; the
figures are its events/s over the whole run and its phases, then the medians.
Target on a 2-core machine: >= 20,000 events/s.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.projector_throughput import workload  # noqa: E402  the same mix, so the figures compare
from contracts.messages import TOPIC, encode_event  # noqa: E402
from contracts.settings import Settings  # noqa: E402
from runtime.kafka import end_offsets, make_producer  # noqa: E402
from msgmem.localstack.stack import start_stack  # noqa: E402
from projections.consumer import running_projector  # noqa: E402
from projections.messages.main import PROJECTOR  # noqa: E402
from projections.rebuild.run import rebuild, render  # noqa: E402
from projections.rebuild.report import ProjectionReport  # noqa: E402

CHUNK = 50_000


async def produce(settings: Settings, events: int, chats: int) -> float:
    started = time.perf_counter()
    all_events = workload(events, chats)
    producer = make_producer(settings, linger_ms=50)
    await producer.start()
    try:
        for i in range(0, len(all_events), CHUNK):
            futures = [await producer.send(TOPIC, encode_event(e), key=e.chat_key.encode())
                       for e in all_events[i:i + CHUNK]]  # fmt: skip
            await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return time.perf_counter() - started


async def caught_up(settings: Settings) -> None:
    end = await end_offsets(settings, TOPIC)
    conn = await asyncpg.connect(settings.database_url)
    try:
        while True:
            rows = await conn.fetch("select partition, next_offset from projection_offsets"
                                    " where projection = 'chat_messages'")  # fmt: skip
            stored = {r["partition"]: r["next_offset"] for r in rows}
            if all(stored.get(tp.partition, 0) >= o for tp, o in end.items()):
                return
            await asyncio.sleep(0.2)
    finally:
        await conn.close()


def line(p: ProjectionReport) -> str:
    ph = p.phases
    return (f"{p.events:,} events in {ph.total:.1f}s = {p.events_per_second:,.0f} events/s | load {ph.load:.1f}s "
            f"({p.events / ph.load:,.0f}/s; read+decode {ph.read_decode:.1f}s, write {ph.write:.1f}s, summed over "
            f"workers) | indexes {ph.index:.1f}s | catch-up {ph.catch_up:.1f}s | compare {ph.compare:.1f}s | "
            f"swap {ph.swap:.2f}s | {'same' if p.match else 'DIFFERENT'}, "
            f"{'swapped' if p.swapped else 'not swapped'}")  # fmt: skip


async def run(args: argparse.Namespace, settings: Settings) -> None:
    seconds = await produce(settings, args.events, args.chats)
    print(f"produced {args.events:,} events in {seconds:.1f}s", flush=True)
    options = {"progress": False, "batch_size": args.batch_size, "workers": args.workers}
    group = f"bench-live-{uuid.uuid4().hex[:6]}"
    if args.live_projector_first:
        started = time.perf_counter()
        async with running_projector(settings, PROJECTOR, group=group):
            await caught_up(settings)
        print(f"live projector: {args.events:,} events in {time.perf_counter() - started:.1f}s", flush=True)
    else:
        report = await rebuild(settings, ["chat_messages"], live_patience=0.5, **options)
        print(f"bootstrap run (no live projector; waits {0.5}s for one): {line(report.projections[0])}", flush=True)
    runs: list[ProjectionReport] = []
    async with running_projector(settings, PROJECTOR, group=group):
        await caught_up(settings)
        for n in range(args.runs):
            report = await rebuild(settings, ["chat_messages"], **options)
            runs.append(report.projections[0])
            print(f"run {n + 1}: {line(runs[-1])}", flush=True)
    print(render(report))

    def median(values: list[float]) -> float:
        return statistics.median(values)

    print(f"median of {len(runs)} runs: {median([p.events_per_second for p in runs]):,.0f} events/s end to end; "
          f"load {median([p.events / p.phases.load for p in runs]):,.0f} events/s; phases (s): "
          f"load {median([p.phases.load for p in runs]):.1f}, indexes {median([p.phases.index for p in runs]):.1f}, "
          f"compare {median([p.phases.compare for p in runs]):.1f}, swap {median([p.phases.swap for p in runs]):.2f}; "
          f"writes paused {median([p.writers_paused for p in runs]):.2f}s, "
          f"reads paused {median([p.readers_paused for p in runs]):.2f}s")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--chats", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=None, help="load processes (default: one per core, <= 4)")
    parser.add_argument("--batch-size", type=int, default=20_000)
    parser.add_argument("--live-projector-first", action="store_true",
                        help="fill the live tables with the live projector instead of a first rebuild")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="msgmem-bench-rebuild-") as tmp:
        stack = start_stack(Path(tmp), durable=True)
        try:
            asyncio.run(run(args, stack.settings))
        finally:
            stack.stop()


if __name__ == "__main__":
    main()
