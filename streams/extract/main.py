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
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import faust
from prometheus_client import CollectorRegistry

from contracts.settings import Settings
from streams.common.faust_app import stage_main
from streams.common.runner import StageParts
from streams.enrichment.bootstrap import enrichment_resources, media_stage_app
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
    return media_stage_app(STAGE, settings, stage_parts)


def main() -> None:
    stage_main(build_app)


if __name__ == "__main__":
    main()
