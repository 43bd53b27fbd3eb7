"""The end of a rebuild: meet the live projector at the same offsets, compare, swap.

The live projector keeps running during a rebuild, so "the same rows" only means something at
the same offsets. Everything below happens in one transaction on the rebuild's connection:

0. the shadow tables, exclusively: nobody else uses them but autovacuum, which freshly loaded
   tables attract and which gives way to a waiting lock only after ``deadlock_timeout`` (1 s);
   waited for here, that second is not spent later with readers waiting;
1. the advisory locks the live store takes per (projection, topic, partition), in its order
   (topics sorted): a live batch in flight commits first, the next one waits, so the live
   offsets stop moving; then the locks other writers of these tables take first
   (``RebuildTarget.swap_locks``), in their order;
2. ``LOCK ... IN SHARE MODE`` on the live tables: any other writer waits too, readers do not;
3. the shadow catches up to the live projector's stored offsets (usually a batch or two) and
   settles (``RebuildTarget.settle``);
4. both sides are checksummed, the live tables on a second connection at the same time (SHARE
   lets it read them, and nothing can change them);
5. if the swap goes ahead: what the projection writes outside its tables is brought in line
   (``RebuildTarget.on_swap``: the media projection's text in chat_messages), then
   ``ACCESS EXCLUSIVE`` (readers wait from here), offsets the rebuild went past the live
   projector stored for it, triggers and publications carried over, the live tables moved
   out of their schema and the shadow tables in, under the same names (catalog changes
   only: the replaced tables are dropped after the commit).

Readers never see a partial table: before the commit they read the old tables, after it the
new ones, complete and indexed. A statement that was waiting for the lock looks its table up
again by name once it gets it (Postgres re-resolves names after an invalidation), and so do
prepared statements, whose plans are invalidated. The live projector's next batch takes its
locks, reads the stored offsets and writes the new tables by name. The exclusive lock is
taken with a short ``lock_timeout``, retried, so a long-running reader delays the swap
instead of queueing every other reader behind it. Known limit: a REPEATABLE READ transaction
that started before the swap and reads the table after it sees it empty (as after TRUNCATE).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

import asyncpg
from aiokafka import TopicPartition

from projections.postgres import _LOCK, _SAVE  # the live store's own lock key and offset upsert
from projections.rebuild.compare import Checksum, Columns, TableComparison, checksum, differences
from projections.rebuild.ddl import Layout, definition, swap_statements
from projections.rebuild.load import ShadowLoader
from projections.rebuild.plan import ShadowPlan
from projections.rebuild.targets import RebuildError, RebuildTarget

SHARE_LOCK_TIMEOUT = "30s"  # other writers' transactions to finish
EXCLUSIVE_LOCK_TIMEOUT_MS = 2000  # per attempt: how long readers may queue behind the swap
EXCLUSIVE_ATTEMPTS = 15


@dataclass
class Outcome:
    comparisons: list[TableComparison]
    live_behind: int
    swapped: bool
    reason: str
    compare_seconds: float
    writers_paused: float
    readers_paused: float = 0.0
    swap_seconds: float = 0.0


Decide = Callable[[list[TableComparison], int], tuple[bool, str]]


async def live_offsets(conn: asyncpg.Connection, target: RebuildTarget) -> dict[TopicPartition, int]:
    rows = await conn.fetch(
        "select topic, partition, next_offset from projection_offsets"
        " where projection = $1 and topic = any($2::text[])", target.name, list(target.topics),
    )  # fmt: skip
    return {TopicPartition(r["topic"], r["partition"]): r["next_offset"] for r in rows}


async def compare_and_swap(
    *, target: RebuildTarget, lay: Layout, plan: ShadowPlan, loader: ShadowLoader, conn: asyncpg.Connection,
    reader: asyncpg.Connection, columns: dict[str, Columns], defined: list[str], decide: Decide,
) -> Outcome:  # fmt: skip
    """``conn`` is the rebuild's connection (shadow schema first on its search_path, the loader's);
    ``reader`` a plain one, for the live checksums; ``defined`` the live tables' ``definition``
    when the shadow was made: a migration since then stops the rebuild."""
    started = time.perf_counter()
    async with conn.transaction():
        await conn.execute(f"lock table {', '.join(lay.shadow_q(t) for t in lay.tables)} in access exclusive mode")
        await _pause_writers(conn, target, lay, loader)
        locked = time.perf_counter()
        if await definition(reader, lay) != defined:  # deparsed with the search_path it was read with
            raise RebuildError(f"the tables of {target.name} changed during the rebuild (a migration?): run it again")
        live = await live_offsets(conn, target)
        await loader.run_to(live)
        await target.settle(conn)
        behind = {tp: n - live.get(tp, 0) for tp, n in loader.positions.items() if n > live.get(tp, 0)}
        comparisons = await _compare(lay, conn, reader, columns)
        swap, reason = decide(comparisons, sum(behind.values()))
        outcome = Outcome(comparisons, sum(behind.values()), swap, reason, time.perf_counter() - started, 0.0)
        if not swap:
            outcome.writers_paused = time.perf_counter() - locked
            return outcome
        if target.on_swap is not None and (note := await target.on_swap(conn)):
            outcome.reason += f"; {note}"
        exclusive = time.perf_counter()
        await _lock_exclusively(conn, lay)
        exclusive_at = time.perf_counter()
        for topic in target.topics:
            ahead = sorted((tp.partition, n) for tp, n in behind.items() if tp.topic == topic)
            if ahead:
                await conn.execute(_SAVE, target.name, topic, [p for p, _ in ahead], [n for _, n in ahead])
        for statement in [*plan.at_swap, *swap_statements(lay)]:
            await conn.execute(statement)
    done = time.perf_counter()
    outcome.swap_seconds, outcome.readers_paused = done - exclusive, done - exclusive_at
    outcome.writers_paused = done - locked
    return outcome


async def _pause_writers(conn: asyncpg.Connection, target: RebuildTarget, lay: Layout, loader: ShadowLoader) -> None:
    """The live store's advisory locks, the other writers' (``swap_locks``), then SHARE on the tables."""
    try:
        await conn.execute(f"set local lock_timeout = '{SHARE_LOCK_TIMEOUT}'")
        for topic in sorted(target.topics):  # the live store's order (``projections.postgres._by_topic``)
            parts = sorted(tp.partition for tp in loader.positions if tp.topic == topic)
            await conn.execute(_LOCK, f"{target.name}/{topic}", parts)
        await target.swap_locks(conn)
        await conn.execute(f"lock table {', '.join(lay.live_q(t) for t in lay.tables)} in share mode")
    except asyncpg.LockNotAvailableError as exc:
        raise RebuildError(f"writers of {target.name} held their locks for over {SHARE_LOCK_TIMEOUT}: {exc}") from exc


async def _compare(lay: Layout, conn: asyncpg.Connection, reader: asyncpg.Connection,
                   columns: dict[str, Columns]) -> list[TableComparison]:  # fmt: skip
    async def sums(c: asyncpg.Connection, name: Callable[[str], str]) -> list[Checksum]:
        return [await checksum(c, name(t), columns[t]) for t in lay.tables]

    live, rebuilt = await asyncio.gather(sums(reader, lay.live_q), sums(conn, lay.shadow_q))
    out = []
    for table, mine, theirs in zip(lay.tables, live, rebuilt, strict=True):
        if mine == theirs:
            out.append(TableComparison(table, mine, theirs))
        else:
            out.append(await differences(conn, table, lay.live_q(table), lay.shadow_q(table), columns[table],
                                         (mine, theirs)))  # fmt: skip
    return out


async def _lock_exclusively(conn: asyncpg.Connection, lay: Layout) -> None:
    """ACCESS EXCLUSIVE, a short wait at a time: while this waits, new readers queue behind it."""
    tables = ", ".join(lay.live_q(t) for t in lay.tables)
    for attempt in range(EXCLUSIVE_ATTEMPTS):
        try:
            async with conn.transaction():  # a savepoint: a timeout leaves the SHARE lock held
                await conn.execute(f"set local lock_timeout = {EXCLUSIVE_LOCK_TIMEOUT_MS}")
                await conn.execute(f"lock table {tables} in access exclusive mode")
            return
        except asyncpg.LockNotAvailableError:
            await asyncio.sleep(min(0.1 * 2**attempt, 2.0))
    raise RebuildError(f"readers kept {tables} busy: no exclusive lock after {EXCLUSIVE_ATTEMPTS} attempts")
