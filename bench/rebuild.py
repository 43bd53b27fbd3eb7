"""Rebuild benchmark: events/s of ``msgmem projections rebuild`` per projection, beside raw COPY.

    .venv/bin/python bench/rebuild.py [--projection messages,media,embeddings] [--events 1000000]
                                      [--chats 10000] [--dimensions 1536] [--runs 3] [--workers N]
                                      [--batch-size 20000] [--live-projector-first]

Starts a local Kafka broker and a durable Postgres (fsync on). For each projection chosen
(default: all three, one after the other), produces its log (``bench/rebuild_workloads.py``:
wa.messages as the projector benchmark; wa.media and the enrichment topics; wa.embeddings of
``--dimensions``-float vectors, the column altered to that size when it is not 1536), then
fills the live tables: by a first rebuild (reported as the bootstrap run: no live projector,
so it stores the offsets for it), or with ``--live-projector-first`` by the live projector
itself (slower, but then every run compares the rebuild with tables the live projector
wrote). The live projector then runs, caught up, through the measured runs, as in production.
Each run rebuilds from offset 0, compares and swaps; the figures are its events/s over the
whole run and its phases, then the medians.

Then, in the same run, the baseline: the rows the rebuild produced, exported, are COPYed
(binary) into twins of the same tables made the way the rebuild makes its shadow tables
(primary key and unique constraints first, the other indexes built after): the rebuild's
events/s divided by the events/s that COPY (with its index build) would give is the ratio.

Targets on a 2-core machine, 1,000,000 events: >= 20,000 events/s for each projection; and
message_embeddings at 1536 dimensions >= 5,000 chunks/s including its HNSW index build.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.rebuild_workloads import Record, embeddings_log, media_log, messages_log  # noqa: E402
from bench.scratch import scratch_dir  # noqa: E402
from contracts.settings import Settings  # noqa: E402
from msgmem.localstack.stack import start_stack  # noqa: E402
from projections.consumer import Projection, running_projector  # noqa: E402
from projections.embeddings.main import PROJECTOR as EMBEDDINGS  # noqa: E402
from projections.media.main import PROJECTOR as MEDIA  # noqa: E402
from projections.messages.main import PROJECTOR as MESSAGES  # noqa: E402
from projections.rebuild import indexes  # noqa: E402
from projections.rebuild.ddl import layout, qi  # noqa: E402
from projections.rebuild.load import connect  # noqa: E402
from projections.rebuild.plan import plan  # noqa: E402
from projections.rebuild.report import ProjectionReport  # noqa: E402
from projections.rebuild.run import rebuild  # noqa: E402
from projections.rebuild.swap import live_offsets  # noqa: E402
from projections.rebuild.targets import PROJECTIONS, RebuildTarget  # noqa: E402
from runtime.kafka import end_offsets, make_producer  # noqa: E402

CHUNK = 20_000
LIVE: dict[str, Projection] = {"messages": MESSAGES, "media": MEDIA, "embeddings": EMBEDDINGS}  # type: ignore[type-arg]


@dataclass
class Baseline:
    rows: int
    copy: float  # seconds
    indexes: float  # seconds, after the copy


@dataclass
class Result:
    key: str
    events: int
    runs: list[ProjectionReport] = field(default_factory=list)
    chunks: int = 0  # message_embeddings rows
    baseline: Baseline | None = None


def log_of(key: str, args: argparse.Namespace) -> Iterable[Record]:
    if key == "messages":
        return messages_log(args.events, args.chats)
    if key == "media":
        return media_log(args.events, args.chats)
    return embeddings_log(args.events, args.chats, args.dimensions)


async def produce(settings: Settings, records: Iterable[Record]) -> int:
    producer = make_producer(settings, linger_ms=50)
    await producer.start()
    n, pending = 0, []
    try:
        for topic, key, value in records:
            pending.append(await producer.send(topic, value, key=key))
            n += 1
            if len(pending) == CHUNK:
                await asyncio.gather(*pending)
                pending = []
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return n


async def caught_up(settings: Settings, target: RebuildTarget) -> None:
    ends = {tp: o for topic in target.topics for tp, o in (await end_offsets(settings, topic)).items()}
    conn = await connect(settings)
    try:
        while True:
            stored = await live_offsets(conn, target)
            if all(stored.get(tp, 0) >= o for tp, o in ends.items() if o):
                return
            await asyncio.sleep(0.2)
    finally:
        await conn.close()


async def copy_baseline(settings: Settings, target: RebuildTarget, work: Path) -> Baseline:
    """COPY the live rows into twins of the live tables (as the rebuild makes its shadow tables)."""
    conn = await connect(settings)
    lay = await layout(conn, target)
    twin = replace(lay, shadow=f"bench_copy_{target.key}")
    statements = await plan(conn, twin)
    columns, rows = {}, 0
    for table in target.tables:
        columns[table] = [r["attname"] for r in await conn.fetch(
            "select attname from pg_attribute where attrelid = $1::regclass and attnum > 0 and not attisdropped"
            " and attgenerated = '' order by attnum", table)]  # fmt: skip
        await conn.copy_from_table(table, columns=columns[table], output=str(work / table), format="binary")
        rows += await conn.fetchval(f"select count(*) from {qi(table)}")
    await conn.execute(f"drop schema if exists {qi(twin.shadow)} cascade")
    await conn.execute(f"create schema {qi(twin.shadow)}")
    await conn.close()
    conn = await connect(settings, twin.shadow)  # the plan's definitions name the twins unqualified
    try:
        for statement in statements.create:
            await conn.execute(statement)
        started = time.perf_counter()
        for table in target.tables:
            await conn.copy_to_table(table, schema_name=twin.shadow, columns=columns[table],
                                     source=str(work / table), format="binary")  # fmt: skip
        copied = time.perf_counter()
        await indexes.build(conn, target, statements.after_load)  # with the memory the rebuild gives them
        indexed = time.perf_counter()
        await conn.execute(f"drop schema {qi(twin.shadow)} cascade")
    finally:
        await conn.close()
    for table in target.tables:
        (work / table).unlink()
    return Baseline(rows, copied - started, indexed - copied)


def line(p: ProjectionReport) -> str:
    ph = p.phases
    return (f"{p.events:,} events in {ph.total:.1f}s = {p.events_per_second:,.0f} events/s | load {ph.load:.1f}s "
            f"({p.events / ph.load:,.0f}/s; read+decode {ph.read_decode:.1f}s, write {ph.write:.1f}s, summed over "
            f"workers) | indexes {ph.index:.1f}s | catch-up {ph.catch_up:.1f}s | compare {ph.compare:.1f}s | "
            f"swap {ph.swap:.2f}s | {'same' if p.match else 'DIFFERENT'}, "
            f"{'swapped' if p.swapped else 'not swapped'}")  # fmt: skip


async def bench(key: str, args: argparse.Namespace, settings: Settings, work: Path) -> Result:
    target = PROJECTIONS[key](settings)
    if key == "embeddings" and args.dimensions != 1536:
        conn = await connect(settings)
        await conn.execute(f"alter table message_embeddings alter column embedding type vector({args.dimensions})")
        await conn.close()
    started = time.perf_counter()
    result = Result(key, await produce(settings, log_of(key, args)))
    print(f"{target.name}: produced {result.events:,} events in {time.perf_counter() - started:.1f}s", flush=True)
    options = {"progress": False, "batch_size": args.batch_size, "workers": args.workers}
    group = f"bench-live-{uuid.uuid4().hex[:6]}"
    if args.live_projector_first:
        started = time.perf_counter()
        async with running_projector(settings, LIVE[key], group=group):
            await caught_up(settings, target)
        print(f"  live projector: {result.events:,} events in {time.perf_counter() - started:.1f}s", flush=True)
    else:
        report = await rebuild(settings, [key], live_patience=0.5, **options)
        print(f"  bootstrap run (no live projector; waits 0.5s for one): {line(report.projections[0])}", flush=True)
    async with running_projector(settings, LIVE[key], group=group):
        await caught_up(settings, target)
        for n in range(args.runs):
            report = await rebuild(settings, [key], **options)
            result.runs.append(report.projections[0])
            print(f"  run {n + 1}: {line(result.runs[-1])}", flush=True)
    conn = await connect(settings)
    result.chunks = await conn.fetchval("select count(*) from message_embeddings") if key == "embeddings" else 0
    await conn.close()
    result.baseline = await copy_baseline(settings, target, work)
    b = result.baseline
    print(f"  raw COPY of the same {b.rows:,} rows into twins of the tables: copy {b.copy:.1f}s, then indexes "
          f"{b.indexes:.1f}s", flush=True)  # fmt: skip
    return result


def summary(r: Result) -> str:
    median = statistics.median
    runs, b = r.runs, r.baseline
    assert b is not None
    seconds = median([p.phases.total for p in runs])
    rate = median([p.events_per_second for p in runs])
    copy_rate, copy_only = r.events / (b.copy + b.indexes), r.events / b.copy
    out = (f"{runs[0].projection}: median of {len(runs)} runs, {r.events:,} events: {rate:,.0f} events/s end to end "
           f"({seconds:.1f}s; load {median([p.events / p.phases.load for p in runs]):,.0f} events/s, indexes "
           f"{median([p.phases.index for p in runs]):.1f}s, compare {median([p.phases.compare for p in runs]):.1f}s, "
           f"swap {median([p.phases.swap for p in runs]):.2f}s; writes paused "
           f"{median([p.writers_paused for p in runs]):.2f}s, reads {median([p.readers_paused for p in runs]):.2f}s)")
    if r.chunks:
        out += f"; {r.chunks:,} chunks = {r.chunks / seconds:,.0f} chunks/s"
    out += (f"\n  raw COPY of its {b.rows:,} rows: {b.copy:.1f}s + indexes {b.indexes:.1f}s = {copy_rate:,.0f} "
            f"events/s ({copy_only:,.0f} without the index build); rebuild / COPY = {rate / copy_rate:.2f} "
            f"({rate / copy_only:.2f} against COPY alone)")  # fmt: skip
    return out


async def run(args: argparse.Namespace, settings: Settings, work: Path) -> None:
    if "embeddings" in args.projection:
        settings = settings.model_copy(update={"embeddings_dimensions": args.dimensions})
    results = [await bench(key, args, settings, work) for key in args.projection]
    print("\n".join(summary(r) for r in results))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--projection", default="messages,media,embeddings",
                        help="comma-separated: messages, media, embeddings")
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--chats", type=int, default=10_000)
    parser.add_argument("--dimensions", type=int, default=1536, help="embedding size (the column is altered to it)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=None, help="load processes (default: one per core, <= 4)")
    parser.add_argument("--batch-size", type=int, default=20_000)
    parser.add_argument("--live-projector-first", action="store_true",
                        help="fill the live tables with the live projector instead of a first rebuild")
    args = parser.parse_args()
    args.projection = [p.strip() for p in args.projection.split(",") if p.strip()]
    unknown = set(args.projection) - set(PROJECTIONS)
    if unknown:
        parser.error(f"unknown projection {', '.join(sorted(unknown))}; known: {', '.join(PROJECTIONS)}")
    with scratch_dir("msgmem-bench-rebuild-") as work:
        stack = start_stack(work / "stack", durable=True)
        try:
            asyncio.run(run(args, stack.settings, work))
        finally:
            stack.stop()


if __name__ == "__main__":
    main()
