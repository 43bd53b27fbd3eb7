"""The one shape of an enrichment stage (transcribe, caption, extract): MediaStored in, one
result out, through a model client. What differs per stage is declared once each: the
client that turns opened resources into a handler, and the stage's limits read from its
own settings fields. Opened at agent start, closed at stop: the media store (to read the
stored files), the OpenAI client (None without a key), and the result cache in Postgres."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Protocol

from openai import AsyncOpenAI

from contracts.processes import Process
from contracts.settings import Settings
from contracts.usage import Usage
from runtime.openai_client import make_openai
from streams.common.records import InputRecord, Output
from streams.common.runner import RetryPolicy, StageParts
from streams.common.stage import Stage
from streams.common.enrichment.cache import CachedResults, CacheMetrics, PostgresResultCache
from runtime.media_storage import MediaStore, build_store


@dataclass(frozen=True)
class Resources:
    store: MediaStore
    client: AsyncOpenAI | None
    results: CachedResults
    meter: Callable[[Usage | None], None]  # each result's usage -> the stage's usage metrics


@dataclass(frozen=True)
class Limits:
    """A stage's ``<STAGE>_CONCURRENCY``, ``_MAX_ATTEMPTS``, ``_RETRY_MIN_SECONDS`` and ``_RETRY_MAX_SECONDS``."""

    concurrency: int
    attempts: int
    retry_min_seconds: float
    retry_max_seconds: float


class EnrichmentHandler(Protocol):
    async def __call__(self, record: InputRecord) -> list[Output]: ...

    def give_up(self, record: InputRecord, error: BaseException, attempts: int) -> list[Output]: ...


@asynccontextmanager
async def enrichment_resources(settings: Settings, metrics: CacheMetrics) -> AsyncIterator[Resources]:
    store = await build_store(settings)
    try:
        cache = await PostgresResultCache.connect(settings.database_url, statement_cache_size=settings.statement_cache_size)
        client = make_openai(settings)
        try:
            yield Resources(store, client, CachedResults(cache, metrics), metrics.usage.meter(settings.ai_prices))
        finally:
            if client is not None:
                await client.close()
            await cache.close()
    finally:
        await store.aclose()


def policy(settings: Settings, attempts: int, min_seconds: float, max_seconds: float) -> RetryPolicy:
    return RetryPolicy(attempts, min_seconds, max_seconds, settings.enrichment_retry_after_max_seconds)


def enrichment_stage(
    process: Process, *, limits: Callable[[Settings], Limits], handler: Callable[[Settings, Resources], EnrichmentHandler]
) -> Stage[CacheMetrics]:
    """The Stage of an AI stage that reads wa.media; a batch holds four rounds of calls."""

    @asynccontextmanager
    async def parts(settings: Settings, metrics: CacheMetrics) -> AsyncIterator[StageParts]:
        async with enrichment_resources(settings, metrics) as res:
            built = handler(settings, res)
            yield StageParts(built, built.give_up)

    def retry(settings: Settings) -> RetryPolicy:
        own = limits(settings)
        return policy(settings, own.attempts, own.retry_min_seconds, own.retry_max_seconds)

    return Stage(
        process, parts=parts, policy=retry, metrics=lambda registry: CacheMetrics(process.name, registry),
        concurrency=lambda settings: limits(settings).concurrency,
    )
