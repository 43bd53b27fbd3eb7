"""What every enrichment worker opens at start and closes at stop: the media store (to read the
stored files), the OpenAI client (None without a key), and the result cache in Postgres."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from openai import AsyncOpenAI

from contracts.settings import Settings
from streams.common.runner import RetryPolicy
from streams.enrichment.cache import CachedResults, CacheMetrics, PostgresResultCache
from streams.enrichment.openai_client import make_openai
from streams.media.storage import MediaStore, build_store


@dataclass(frozen=True)
class Resources:
    store: MediaStore
    client: AsyncOpenAI | None
    results: CachedResults


@asynccontextmanager
async def enrichment_resources(settings: Settings, metrics: CacheMetrics) -> AsyncIterator[Resources]:
    store = await build_store(settings)
    try:
        cache = await PostgresResultCache.connect(settings.database_url, statement_cache_size=settings.statement_cache_size)
        client = make_openai(settings)
        try:
            yield Resources(store, client, CachedResults(cache, metrics))
        finally:
            if client is not None:
                await client.close()
            await cache.close()
    finally:
        await store.aclose()


def policy(settings: Settings, attempts: int, min_seconds: float, max_seconds: float) -> RetryPolicy:
    return RetryPolicy(attempts, min_seconds, max_seconds, settings.enrichment_retry_after_max_seconds)
