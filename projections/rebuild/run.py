"""``msgmem projections rebuild``: rebuild projections from the log into fresh tables and swap them in.

For each projection chosen (``--tables``; see ``projections.rebuild.targets``):

1. shadow tables are made in a schema of their own (``projections.rebuild.ddl``), copies of
   the live ones (``projections.rebuild.plan``), and filled from the start of the projection's
   topics to their end offsets as of now, with the live projector's own decode, fold and SQL,
   in large pipelined batches (``projections.rebuild.load``), by one worker process per core
   (``projections.rebuild.workers``);
2. the indexes and foreign keys left out for the load are built, with the memory they need
   (``projections.rebuild.indexes``), RLS, policies, grants and owner copied, statistics gathered;
3. the shadow follows the live projector without any lock until the gap is small (if the live
   projector is behind the rebuild, it is given ``live_patience`` seconds to catch up);
4. in one transaction, live writes paused and reads not: catch up to the live offsets, compare
   row counts and checksums table by table, then (unless told otherwise) swap
   (``projections.rebuild.swap``).

The rebuild reproduces what the live projector wrote, at the live projector's offsets, so the
comparison is exact; where it went further than a lagging (or stopped) live projector, the
swap stores its offsets for it and the live projector skips what the new tables already hold.
Reads keep working throughout: readers see the old tables until the swap commits and the new,
complete, indexed ones after it; they only wait for the swap itself (catalog changes, well
under a second). Live writes wait for the comparison (a second or two per million events).

Run it with the live projector's settings (DELETED_MESSAGES, USERS_TABLE): different ones show
up as differences. It needs a session connection (not Supabase's transaction pooler), CREATE
on the database (for the shadow schema), and the role owning the tables. A rebuild that fails
or is interrupted leaves the live tables as they were; the next one starts again from scratch.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition

from contracts.settings import Settings
from runtime.kafka import make_consumer, partitions_of
from runtime.progress import Progress
from projections.rebuild import indexes
from projections.rebuild.compare import TableComparison, columns
from projections.rebuild.ddl import (
    Layout, create_shadow_schema, definition, dependents, drop_replaced, drop_shadow_schema, layout,
)  # fmt: skip
from projections.rebuild.load import ShadowLoader, connect
from projections.rebuild.plan import copy_grants, plan
from projections.rebuild.report import Phases, ProjectionReport, RebuildReport, render
from projections.rebuild.swap import Decide, Outcome, compare_and_swap, live_offsets
from projections.rebuild.targets import RebuildError, RebuildTarget, resolve
from projections.rebuild.workers import load_in_workers, split

__all__ = ["RebuildError", "RebuildReport", "rebuild", "render"]

DEFAULT_BATCH_SIZE = 20_000
MAX_WORKERS = 4


async def rebuild(
    settings: Settings, tables: Sequence[str] | None = None, progress: bool = True, *, dry_run: bool = False,
    require_match: bool = False, batch_size: int = DEFAULT_BATCH_SIZE, workers: int | None = None,
    live_patience: float = 5.0, index_memory_mb: int = indexes.DEFAULT_CAP_MB,
) -> RebuildReport:  # fmt: skip
    """Rebuild the projections owning ``tables`` (all when None) and swap them in.

    ``dry_run``: build and compare, swap nothing. ``require_match``: swap only when every table
    matches. ``workers``: load processes (default: one per core, at most 4; 1 loads in this
    process). ``index_memory_mb``: the most maintenance_work_mem an index build gets
    (``projections.rebuild.indexes``). Raises ``RebuildError`` when the rebuild cannot start or
    swap; the live tables are then untouched.
    """
    if settings.database_is_transaction_pooler:
        raise RebuildError("rebuild needs a session connection: DATABASE_URL points at the transaction pooler")
    reports = []
    for target in resolve(settings, tables):
        reports.append(await _rebuild(settings, target, progress=progress, dry_run=dry_run,
                                      require_match=require_match, batch_size=batch_size,
                                      workers=workers or min(os.cpu_count() or 1, MAX_WORKERS),
                                      live_patience=live_patience, index_memory_mb=index_memory_mb))  # fmt: skip
    return RebuildReport(reports, dry_run=dry_run, require_match=require_match)


async def _rebuild(settings: Settings, target: RebuildTarget, *, progress: bool, dry_run: bool, require_match: bool,
                   batch_size: int, workers: int, live_patience: float, index_memory_mb: int
                   ) -> ProjectionReport:  # fmt: skip
    report = ProjectionReport(target.name, target.tables)
    started = time.perf_counter()
    admin = await connect(settings)
    consumer = make_consumer(settings, group_id=None)  # no group: the live projector's is never touched
    await consumer.start()
    await asyncio.sleep(0)  # aiokafka cannot stop a group-less consumer whose coordinator never ran
    conn: asyncpg.Connection | None = None
    lay: Layout | None = None
    try:
        if not await admin.fetchval("select pg_try_advisory_lock(hashtext($1))", f"msgmem-rebuild/{target.name}"):
            raise RebuildError(f"another rebuild of {target.name} is running")
        lay = await layout(admin, target)
        blocking = await dependents(admin, lay)
        if blocking:
            raise RebuildError(f"other objects depend on the tables of {target.name} and would be dropped with them:"
                               f" {'; '.join(blocking)}")  # fmt: skip
        shadow, defined = await plan(admin, lay), await definition(admin, lay)
        compared = {t: await columns(admin, lay.live_q(t), target.clock_columns) for t in target.tables}
        await create_shadow_schema(admin, lay)
        conn = await connect(settings, lay.shadow, target)
        for statement in shadow.create:
            await conn.execute(statement)

        begin, end = await _log_bounds(settings, consumer, target)
        truncated = {tp: o for tp, o in begin.items() if o > 0}
        if truncated:
            report.warnings.append("the log no longer starts at offset 0 (retention?) on "
                                   + ", ".join(f"{tp.topic}[{tp.partition}] ({o})" for tp, o in truncated.items())
                                   + ": the rebuilt tables lack those events, so they are not swapped in")  # fmt: skip
        loader = ShadowLoader(target, conn, consumer, begin, batch_size=batch_size)
        _say(progress, f"rebuilding {target.name} ({', '.join(target.tables)}) into schema {lay.shadow}")
        with _timed(report.phases, "load"):
            await _load(settings, loader, lay, end, workers=workers, progress=progress, report=report)
            await target.settle(conn)
        report.phases.read_decode, report.phases.write = loader.stats.reader_seconds, loader.stats.writer_seconds

        _say(progress, "building indexes and copying privileges")
        with _timed(report.phases, "index"):
            report.warnings += await indexes.build(conn, target, shadow.after_load, cap_mb=index_memory_mb)
            await copy_grants(conn, lay, shadow.owners)
            await conn.execute(f"analyze {', '.join(lay.shadow_q(t) for t in lay.tables)}")

        _say(progress, "catching up with the live projector")
        with _timed(report.phases, "catch_up"):
            await _approach_live(admin, loader, target, patience=live_patience, slack=batch_size // 4)

        _say(progress, "comparing with the live tables" + ("" if dry_run else " and swapping"))
        decide = _decision(dry_run=dry_run, require_match=require_match, truncated=bool(truncated))
        outcome = await compare_and_swap(target=target, lay=lay, plan=shadow, loader=loader, conn=conn,
                                         reader=admin, columns=compared, defined=defined, decide=decide)  # fmt: skip
        _fill(report, outcome, loader)
        if report.swapped and (warning := await drop_replaced(admin, lay)):
            report.warnings.append(warning)
    finally:
        try:
            if lay is not None and not report.swapped:
                await drop_shadow_schema(admin, lay)
        finally:
            await consumer.stop()
            if conn is not None:
                await conn.close()
            await admin.close()  # ends the session, and its advisory lock
    report.phases.total = time.perf_counter() - started
    return report


async def _load(settings: Settings, loader: ShadowLoader, lay: Layout, end: dict[TopicPartition, int], *,
                workers: int, progress: bool, report: ProjectionReport) -> None:  # fmt: skip
    begin = dict(loader.positions)
    bar = Progress(sum(end[tp] - begin[tp] for tp in end), f"rebuild {loader.target.name}") if progress else None
    groups = split(begin, end, workers)
    report.workers = max(len(groups), 1)
    if len(groups) > 1:
        loader.positions, loader.stats = await load_in_workers(
            settings, loader.target.key, lay.shadow, begin, end, batch_size=loader.batch_size, groups=groups, bar=bar
        )  # fmt: skip
    else:
        await loader.run_to(end, bar)
    if bar is not None:
        bar.close()


def _decision(*, dry_run: bool, require_match: bool, truncated: bool) -> Decide:
    def decide(comparisons: list[TableComparison], behind: int) -> tuple[bool, str]:
        match = all(c.match for c in comparisons)
        if truncated:
            return False, "not swapped: the log is incomplete (see warning)"
        if dry_run:
            return False, "dry run: nothing swapped"
        if require_match and not match:
            return False, "not swapped: the tables differ and a match was required"
        return True, "swapped: the rebuilt tables are live" + ("" if match else ", with the differences above")

    return decide


def _fill(report: ProjectionReport, outcome: Outcome, loader: ShadowLoader) -> None:
    report.comparisons, report.live_behind = outcome.comparisons, outcome.live_behind
    report.swapped, report.outcome = outcome.swapped, outcome.reason
    report.phases.compare, report.phases.swap = outcome.compare_seconds, outcome.swap_seconds
    report.writers_paused, report.readers_paused = outcome.writers_paused, outcome.readers_paused
    stats = loader.stats
    report.events, report.applied, report.undecodable, report.refused = (
        stats.records, stats.applied, stats.undecodable, stats.refused)  # fmt: skip
    report.skipped_at = stats.skipped_at


@contextmanager
def _timed(phases: Phases, name: str) -> Iterator[None]:
    mark = time.perf_counter()
    try:
        yield
    finally:
        setattr(phases, name, time.perf_counter() - mark)


async def _log_bounds(settings: Settings, consumer: AIOKafkaConsumer, target: RebuildTarget
                      ) -> tuple[dict[TopicPartition, int], dict[TopicPartition, int]]:  # fmt: skip
    """Where the target's topics start, and end now; the consumer is assigned all their partitions."""
    parts = [tp for topic in target.topics for tp in await partitions_of(settings, topic)]
    consumer.assign(parts)
    return await consumer.beginning_offsets(parts), await consumer.end_offsets(parts)


async def _approach_live(conn: asyncpg.Connection, loader: ShadowLoader, target: RebuildTarget, *,
                         patience: float, slack: int) -> None:  # fmt: skip
    """Follow the live projector, lock-free, until the gap left for the locked phase is small.

    If the live projector is behind the rebuild, wait while it makes progress (at most
    ``patience`` seconds without any), so the comparison meets it at the same offsets.
    """
    previous: dict[TopicPartition, int] | None = None
    still_since = time.monotonic()
    while True:
        live = await live_offsets(conn, target)
        gap = sum(max(live.get(tp, 0) - n, 0) for tp, n in loader.positions.items())
        if gap > slack:
            await loader.run_to(live)
            continue
        behind = sum(max(n - live.get(tp, 0), 0) for tp, n in loader.positions.items())
        if live != previous:
            previous, still_since = live, time.monotonic()
        if behind == 0 or time.monotonic() - still_since >= patience:
            return
        await asyncio.sleep(0.2)


def _say(progress: bool, text: str) -> None:
    if progress:
        print(text, file=sys.stderr, flush=True)
