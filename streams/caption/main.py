"""Composition root of the caption stage: ``python -m streams.caption``.

Consumer group ``msgmem-caption`` reads wa.media and writes wa.captions: each stored image
(JPEG, PNG, WebP, GIF up to CAPTION_MAX_BYTES; not stickers) is described once by
VISION_MODEL at OPENAI_BASE_URL (Chat Completions, image as a data URL, detail
VISION_IMAGE_DETAIL), CAPTION_CONCURRENCY calls at a time, CAPTION_MAX_ATTEMPTS attempts
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
from streams.caption.agent import STAGE, make_handler
from streams.caption.captioner import OpenAICaptioner
from streams.caption.logic import MAX_TOKENS, PROMPT
from streams.common.faust_app import stage_main
from streams.common.runner import StageParts
from streams.enrichment.bootstrap import enrichment_resources, media_stage_app
from streams.enrichment.cache import CacheMetrics


@asynccontextmanager
async def stage_parts(settings: Settings, metrics: CacheMetrics | None = None) -> AsyncIterator[StageParts]:
    """The handler with its store, OpenAI client and cache, open while in use (the worker, `msgmem dlq retry`)."""
    cache_metrics = metrics or CacheMetrics(STAGE, CollectorRegistry())
    async with enrichment_resources(settings, cache_metrics) as res:
        captioner = (
            OpenAICaptioner(
                res.client, settings.vision_model, asyncio.Semaphore(settings.caption_concurrency), prompt=PROMPT,
                max_tokens=MAX_TOKENS, detail=settings.vision_image_detail,
            )
            if res.client is not None else None
        )  # fmt: skip
        handler = make_handler(settings, res.store, captioner, res.results)
        yield StageParts(handler, handler.give_up)


def build_app(settings: Settings) -> faust.App:
    return media_stage_app(STAGE, settings, stage_parts)


def main() -> None:
    stage_main(build_app)


if __name__ == "__main__":
    main()
