"""Composition root of the transcribe stage: ``python -m streams.transcribe``.

Consumer group ``msgmem-transcribe`` reads wa.media and writes wa.transcripts: each stored
voice note or audio file (up to TRANSCRIPTION_MAX_BYTES) goes once through the OpenAI
transcription API (TRANSCRIPTION_MODEL at OPENAI_BASE_URL), TRANSCRIBE_CONCURRENCY calls
at a time, TRANSCRIBE_MAX_ATTEMPTS attempts (2 s to 32 s backoff, or a 429's Retry-After)
before wa.deadletter. Results are cached by (sha256, stage, model). Logs
``[^Worker]: Ready`` once consuming.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import faust
from prometheus_client import CollectorRegistry

from contracts import media
from contracts.settings import Settings
from streams.common.faust_app import attach_stage, make_app, run_worker
from streams.common.runner import StageMetrics, StageParts
from streams.enrichment.bootstrap import enrichment_resources, policy
from streams.enrichment.cache import CacheMetrics
from streams.transcribe.agent import STAGE, make_handler
from streams.transcribe.transcriber import OpenAITranscriber


@asynccontextmanager
async def stage_parts(settings: Settings, metrics: CacheMetrics | None = None) -> AsyncIterator[StageParts]:
    """The handler with its store, OpenAI client and cache, open while in use (the worker, `msgmem dlq retry`)."""
    cache_metrics = metrics or CacheMetrics(STAGE, CollectorRegistry())
    async with enrichment_resources(settings, cache_metrics) as res:
        transcriber = (
            OpenAITranscriber(res.client, settings.transcription_model, asyncio.Semaphore(settings.transcribe_concurrency))
            if res.client is not None else None
        )  # fmt: skip
        handler = make_handler(settings, res.store, transcriber, res.results)
        yield StageParts(handler, handler.give_up)


def build_app(settings: Settings) -> faust.App:
    app = make_app(STAGE, settings)
    metrics = StageMetrics(STAGE)
    cache_metrics = CacheMetrics(STAGE, metrics.registry)  # once per process: a registry refuses duplicates
    concurrency = settings.transcribe_concurrency
    attach_stage(
        app, settings, stage=STAGE, input_topic=media.TOPIC, parts=lambda: stage_parts(settings, cache_metrics),
        policy=policy(settings, settings.transcribe_max_attempts, settings.transcribe_retry_min_seconds,
                      settings.transcribe_retry_max_seconds),
        batch_size=concurrency * 4, within=0.2, metrics=metrics, concurrency=concurrency,
    )  # fmt: skip
    return app


def main() -> None:
    settings = Settings()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    run_worker(build_app(settings), settings)


if __name__ == "__main__":
    main()
