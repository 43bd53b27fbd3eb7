"""What every enrichment worker opens at start and closes at stop: the media store (to read the
stored files), the OpenAI client (None without a key), and the result cache in Postgres."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass

import faust
from openai import AsyncOpenAI

from contracts import media
from contracts.settings import Settings
from streams.common.faust_app import attach_stage, make_app
from streams.common.runner import RetryPolicy, StageMetrics, StageParts
from streams.enrichment.cache import CachedResults, CacheMetrics, PostgresResultCache
from runtime.openai_client import make_openai
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


def media_stage_app(
    stage: str, settings: Settings, parts: Callable[[Settings, CacheMetrics], AbstractAsyncContextManager[StageParts]]
) -> faust.App:
    """The Faust app of an AI stage that reads wa.media. Its knobs are the ``<STAGE>_*``
    settings (concurrency, attempts, retry bounds); a batch holds four rounds of calls."""
    app = make_app(stage, settings)
    metrics = StageMetrics(stage)
    cache_metrics = CacheMetrics(stage, metrics.registry)  # once per process: a registry refuses duplicates
    concurrency: int = getattr(settings, f"{stage}_concurrency")
    attach_stage(
        app, settings, stage=stage, input_topic=media.TOPIC, parts=lambda: parts(settings, cache_metrics),
        policy=policy(settings, getattr(settings, f"{stage}_max_attempts"),
                      getattr(settings, f"{stage}_retry_min_seconds"), getattr(settings, f"{stage}_retry_max_seconds")),
        batch_size=concurrency * 4, within=0.2, metrics=metrics, concurrency=concurrency,
    )  # fmt: skip
    return app
