"""Composition root of the embed stage: ``python -m streams.embed``.

Consumer group ``msgmem-embed`` reads wa.messages, wa.transcripts, wa.captions and
wa.documents and writes wa.embeddings: each new or edited text is cut into
EMBEDDINGS_CHUNK_SIZE_TOKENS-token chunks (EMBEDDINGS_CHUNK_OVERLAP_TOKENS of overlap, at
most EMBEDDINGS_MAX_CHUNKS) with EMBEDDINGS_TOKENIZER and embedded by EMBEDDINGS_MODEL at
OPENAI_BASE_URL, EMBED_CONCURRENCY records at a time whose chunks share API calls;
EMBED_MAX_ATTEMPTS attempts (or a 429's Retry-After) before wa.deadletter. A deletion
becomes EmbeddingsRemoved; without OPENAI_API_KEY texts are recorded as skipped. Logs
``[^Worker]: Ready`` once consuming.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from contracts import processes
from contracts.settings import Settings
from runtime.embedder import EmbedMetrics, make_embedder
from runtime.openai_client import make_openai
from streams.common.runner import StageParts
from streams.common.stage import Stage
from streams.embed.agent import EmbedHandler, config
from runtime.tokenizer import load_tokenizer
from streams.common.enrichment.bootstrap import policy

log = logging.getLogger(__name__)


@asynccontextmanager
async def stage_parts(settings: Settings, metrics: EmbedMetrics) -> AsyncIterator[StageParts]:
    """The handler with its tokenizer and OpenAI client, open while in use (the worker, `msgmem dlq retry`)."""
    tokenizer = load_tokenizer(settings.embeddings_tokenizer)
    client = make_openai(settings)
    if client is None:
        log.warning("OPENAI_API_KEY is not set: texts are recorded as embedding_skipped")
    embedder = make_embedder(settings, client, metrics=metrics) if client else None
    try:
        handler = EmbedHandler(config(settings), tokenizer, embedder, meter=metrics.usage.meter(settings.ai_prices))
        yield StageParts(handler, handler.give_up)
    finally:
        if embedder is not None:
            await embedder.aclose()
        if client is not None:
            await client.close()


STAGE = Stage(
    processes.EMBED, parts=stage_parts, metrics=EmbedMetrics, concurrency=lambda settings: settings.embed_concurrency,
    policy=lambda s: policy(s, s.embed_max_attempts, s.embed_retry_min_seconds, s.embed_retry_max_seconds),
)
