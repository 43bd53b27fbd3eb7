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

from contracts import processes
from contracts.settings import Settings
from streams.common.enrichment.bootstrap import EnrichmentHandler, Limits, Resources, enrichment_stage
from streams.transcribe.agent import make_handler
from streams.transcribe.transcriber import OpenAITranscriber


def handler(settings: Settings, res: Resources) -> EnrichmentHandler:
    transcriber = (
        OpenAITranscriber(res.client, settings.transcription_model, asyncio.Semaphore(settings.transcribe_concurrency))
        if res.client is not None else None
    )  # fmt: skip
    return make_handler(settings, res.store, transcriber, res.results, res.meter)


def limits(s: Settings) -> Limits:
    return Limits(s.transcribe_concurrency, s.transcribe_max_attempts, s.transcribe_retry_min_seconds,
                  s.transcribe_retry_max_seconds)  # fmt: skip


STAGE = enrichment_stage(processes.TRANSCRIBE, limits=limits, handler=handler)
