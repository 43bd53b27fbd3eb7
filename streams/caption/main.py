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

from contracts import processes
from contracts.settings import Settings
from streams.caption.agent import make_handler
from streams.caption.captioner import OpenAICaptioner
from streams.caption.logic import MAX_TOKENS, PROMPT
from streams.common.enrichment.bootstrap import EnrichmentHandler, Limits, Resources, enrichment_stage


def handler(settings: Settings, res: Resources) -> EnrichmentHandler:
    captioner = (
        OpenAICaptioner(
            res.client, settings.vision_model, asyncio.Semaphore(settings.caption_concurrency), prompt=PROMPT,
            max_tokens=MAX_TOKENS, detail=settings.vision_image_detail,
        )
        if res.client is not None else None
    )  # fmt: skip
    return make_handler(settings, res.store, captioner, res.results, res.meter)


def limits(s: Settings) -> Limits:
    return Limits(s.caption_concurrency, s.caption_max_attempts, s.caption_retry_min_seconds,
                  s.caption_retry_max_seconds)  # fmt: skip


STAGE = enrichment_stage(processes.CAPTION, limits=limits, handler=handler)
