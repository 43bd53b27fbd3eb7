"""A stage keeps its inputs through an outage of its own Postgres: with the erasure ledger and
the result cache read through a line that is cut (open connections reset, new ones refused)
for longer than every retry a record gets, a batch waits and then completes, and not one
input becomes a dead letter. Real Postgres, real asyncpg; the cut is a TCP proxy."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from contracts import deadletter
from contracts.settings import Settings
from msgmem.localstack.stack import Stack
from runtime.erasure_ledger import LedgerCache
from streams.common.enrichment.cache import CacheKey, PostgresResultCache
from streams.common.erasure_guard import LedgerScreen
from streams.common.outputs import RecordingOutputs
from streams.common.records import InputRecord, Output
from streams.common.runner import RetryPolicy, StageRunner
from tests.fakes.cuttable_proxy import CuttableProxy

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

OUTAGE_S = 2.5  # longer than the policy's whole schedule (0.05 + 0.1 s): counted attempts would be spent


@pytest.fixture
async def line(stack: Stack) -> AsyncIterator[tuple[CuttableProxy, Settings]]:
    proxy, dsn = await CuttableProxy.before(stack.settings.database_url)
    try:
        yield proxy, stack.settings.model_copy(update={"database_url": dsn})
    finally:
        await proxy.cut()


def records(n: int) -> list[InputRecord]:
    return [InputRecord("wa.media", 0, i, f"whapi:1:{i}@s.whatsapp.net".encode(), b"{}") for i in range(n)]


async def echo(rec: InputRecord) -> list[Output]:
    return [Output("wa.transcripts", rec.key or b"", rec.value)]




async def test_a_batch_waits_out_an_unreachable_erasure_ledger(line: tuple[CuttableProxy, Settings]) -> None:
    proxy, settings = line
    writer = RecordingOutputs()
    async with LedgerCache(settings) as ledger:
        runner = StageRunner("media", echo, writer, policy=RetryPolicy(3, 0.05, 0.1), screen=LedgerScreen(ledger, max_backoff=0.5))
        await runner.run_batch(records(2))  # connected, ledger read

        await proxy.cut()  # the open connection is reset and nothing listens
        batch = asyncio.create_task(runner.run_batch(records(5)))
        await asyncio.sleep(OUTAGE_S)
        assert not batch.done(), "the batch finished while the ledger was unreachable"
        await proxy.restore()
        await asyncio.wait_for(batch, 30)

    assert len(writer.written) == 7
    assert not [o for o in writer.written if o.topic == deadletter.TOPIC]
    assert runner.metrics.failed._value.get() == 0


async def test_a_record_waits_out_an_unreachable_result_cache(line: tuple[CuttableProxy, Settings]) -> None:
    proxy, settings = line
    cache = await PostgresResultCache.connect(settings.database_url, statement_cache_size=0, max_size=1)
    key = CacheKey("0" * 64, "store-outage-test", "none")

    async def handler(rec: InputRecord) -> list[Output]:
        await cache.get(key)
        return await echo(rec)

    writer = RecordingOutputs()
    runner = StageRunner("caption", handler, writer, policy=RetryPolicy(3, 0.05, 0.1, hold_max_seconds=0.5), concurrency=2)
    try:
        await runner.run_batch(records(1))
        await proxy.cut()
        batch = asyncio.create_task(runner.run_batch(records(4)))
        await asyncio.sleep(OUTAGE_S)
        assert not batch.done(), "the batch finished while the cache was unreachable"
        await proxy.restore()
        await asyncio.wait_for(batch, 30)
    finally:
        await cache.close()

    assert len(writer.written) == 5
    assert not [o for o in writer.written if o.topic == deadletter.TOPIC]
    assert runner.metrics.failed._value.get() == 0
