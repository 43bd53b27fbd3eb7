"""Composition root of the extract stage: ``python -m streams.extract``.

Consumer group ``msgmem-extract`` reads wa.media and writes wa.documents: each stored PDF
(up to EXTRACT_MAX_BYTES) is read from its text layer locally (pypdf); pages without one
(at most PDF_MAX_MODEL_PAGES) are rendered at PDF_RENDER_DPI (pypdfium2) and read by
PDF_EXTRACTION_MODEL at OPENAI_BASE_URL, EXTRACT_CONCURRENCY calls at a time,
EXTRACT_MAX_ATTEMPTS attempts (2 s to 16 s backoff) before wa.deadletter. Model results are
cached by (sha256, stage, model). Logs ``[^Worker]: Ready`` once consuming.
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
from streams.extract.agent import STAGE, ExtractHandler, config
from streams.extract.reader import OpenAIPageReader


@asynccontextmanager
async def stage_parts(settings: Settings, metrics: CacheMetrics | None = None) -> AsyncIterator[StageParts]:
    """The handler with its store, OpenAI client and cache, open while in use (the worker, `msgmem dlq retry`)."""
    cache_metrics = metrics or CacheMetrics(STAGE, CollectorRegistry())
    cfg, options = config(settings)
    async with enrichment_resources(settings, cache_metrics) as res:
        reader = (
            OpenAIPageReader(res.client, settings.pdf_extraction_model, asyncio.Semaphore(settings.extract_concurrency))
            if res.client is not None else None
        )  # fmt: skip
        handler = ExtractHandler(cfg, options, res.store, reader, res.results)
        yield StageParts(handler, handler.give_up)


def build_app(settings: Settings) -> faust.App:
    app = make_app(STAGE, settings)
    metrics = StageMetrics(STAGE)
    cache_metrics = CacheMetrics(STAGE, metrics.registry)  # once per process: a registry refuses duplicates
    concurrency = settings.extract_concurrency
    attach_stage(
        app, settings, stage=STAGE, input_topic=media.TOPIC, parts=lambda: stage_parts(settings, cache_metrics),
        policy=policy(settings, settings.extract_max_attempts, settings.extract_retry_min_seconds,
                      settings.extract_retry_max_seconds),
        batch_size=concurrency * 4, within=0.2, metrics=metrics, concurrency=concurrency,
    )  # fmt: skip
    return app


def main() -> None:
    settings = Settings()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    run_worker(build_app(settings), settings)


if __name__ == "__main__":
    main()
