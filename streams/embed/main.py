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
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import faust
from prometheus_client import CollectorRegistry

from contracts.settings import Settings
from runtime.logging_setup import configure_logging
from streams.common.faust_app import attach_stage, make_app, run_worker
from streams.common.runner import StageMetrics, StageParts
from streams.embed.agent import STAGE, EmbedHandler, config
from streams.embed.chunking import load_tokenizer
from runtime.embedder import EmbedMetrics, make_embedder
from streams.embed.logic import INPUT_TOPICS
from streams.enrichment.bootstrap import policy
from runtime.openai_client import make_openai

log = logging.getLogger(__name__)


@asynccontextmanager
async def stage_parts(settings: Settings, metrics: EmbedMetrics | None = None) -> AsyncIterator[StageParts]:
    """The handler with its tokenizer and OpenAI client, open while in use (the worker, `msgmem dlq retry`)."""
    tokenizer = load_tokenizer(settings.embeddings_tokenizer)
    client = make_openai(settings)
    if client is None:
        log.warning("OPENAI_API_KEY is not set: texts are recorded as embedding_skipped")
    embedder = make_embedder(settings, client, metrics=metrics or EmbedMetrics(CollectorRegistry())) if client else None
    try:
        handler = EmbedHandler(config(settings), tokenizer, embedder)
        yield StageParts(handler, handler.give_up)
    finally:
        if embedder is not None:
            await embedder.aclose()
        if client is not None:
            await client.close()


class _EveryInput:
    """``attach_stage`` subscribes its agent to one topic; this view of the app hands it a
    channel over all of INPUT_TOPICS instead (one agent, one consumer group, per-topic
    coordinates kept on each record). Drop it once attach_stage takes several topics."""

    def __init__(self, app: faust.App, topics: Sequence[str]) -> None:
        self._app = app
        self._topics = tuple(topics)

    def topic(self, *_names: str, **options: Any) -> Any:
        return self._app.topic(*self._topics, **options)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._app, name)


def build_app(settings: Settings) -> faust.App:
    app = make_app(STAGE, settings)
    metrics = StageMetrics(STAGE)
    embed_metrics = EmbedMetrics(metrics.registry)  # once per process: a registry refuses duplicates
    concurrency = settings.embed_concurrency
    attach_stage(
        _EveryInput(app, INPUT_TOPICS), settings, stage=STAGE, input_topic=INPUT_TOPICS[0],  # type: ignore[arg-type]
        parts=lambda: stage_parts(settings, embed_metrics),
        policy=policy(settings, settings.embed_max_attempts, settings.embed_retry_min_seconds,
                      settings.embed_retry_max_seconds),
        batch_size=concurrency * 4, within=0.2, metrics=metrics, concurrency=concurrency,
    )  # fmt: skip
    return app


def main() -> None:
    settings = Settings()
    configure_logging(settings.log_level)
    run_worker(build_app(settings), settings)


if __name__ == "__main__":
    main()
