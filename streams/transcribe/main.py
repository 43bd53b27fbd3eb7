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
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import faust
from prometheus_client import CollectorRegistry

from contracts.settings import Settings
from streams.common.faust_app import stage_main
from streams.common.runner import StageParts
from streams.enrichment.bootstrap import enrichment_resources, media_stage_app
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
    return media_stage_app(STAGE, settings, stage_parts)


def main() -> None:
    stage_main(build_app)


if __name__ == "__main__":
    main()
