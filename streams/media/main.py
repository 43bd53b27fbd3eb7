"""Composition root of the media stage: ``python -m streams.media``.

Consumer group ``msgmem-media`` reads wa.messages and writes wa.media: every message with
media gets its file downloaded from its provider (or, inline in an Evolution delivery, read
back from wa.raw) into the media store (a local folder, or a private Supabase Storage
bucket) and a MediaStored or MediaFailed event; a MediaSkipped when the provider lacks the
setting downloads need. Downloads run
MEDIA_CONCURRENCY at a time with MEDIA_MAX_ATTEMPTS attempts (1 s to 8 s backoff) before
wa.deadletter. Every MEDIA_SWEEP_INTERVAL_SECONDS the worker also runs the retention sweep
(``streams.media.sweep``). Logs ``[^Worker]: Ready`` once consuming.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import faust
import httpx
from prometheus_client import CollectorRegistry

from contracts import messages
from contracts.settings import Settings
from runtime.logging_setup import configure_logging
from streams.media.sweep import sweep_once
from streams.common.faust_app import attach_stage, make_app, run_worker
from streams.common.runner import RetryPolicy, StageMetrics, StageParts
from streams.media.agent import STAGE, MediaHandler, MediaMetrics
from streams.media.pinning import pinned_client
from streams.media.providers import Fetcher
from streams.media.raw_records import KafkaRawRecords
from streams.media.storage import build_store

log = logging.getLogger(__name__)


def retry_policy(settings: Settings) -> RetryPolicy:
    return RetryPolicy(
        attempts=settings.media_max_attempts, min_seconds=settings.media_retry_min_seconds,
        max_seconds=settings.media_retry_max_seconds, retry_after_max_seconds=settings.enrichment_retry_after_max_seconds,
    )  # fmt: skip


def http_client(settings: Settings) -> httpx.AsyncClient:
    """Connects only to public addresses (or MEDIA_TRUSTED_ORIGINS), to the address it checked."""
    n = settings.media_concurrency
    limits = httpx.Limits(max_connections=n * 2, max_keepalive_connections=n)
    return pinned_client(settings.media_trusted, timeout=settings.media_download_timeout_seconds, limits=limits)


@asynccontextmanager
async def stage_parts(settings: Settings, metrics: MediaMetrics | None = None) -> AsyncIterator[StageParts]:
    """The handler with its store and HTTP client, open while in use (the worker, `msgmem dlq retry`)."""
    store = await build_store(settings)
    raw_records = KafkaRawRecords(settings, timeout_seconds=settings.kafka_request_timeout_ms / 1000)
    try:
        async with http_client(settings) as client:
            fetcher = Fetcher(client, settings.media_max_bytes)
            handler = MediaHandler(
                settings, store, fetcher, metrics or MediaMetrics(CollectorRegistry()), raw=raw_records
            )
            yield StageParts(handler, handler.give_up)
    finally:
        await raw_records.aclose()
        await store.aclose()


def build_app(settings: Settings) -> faust.App:
    app = make_app(STAGE, settings)
    metrics = StageMetrics(STAGE)
    media_metrics = MediaMetrics(metrics.registry)  # once per process: a registry refuses duplicates
    attach_stage(
        app, settings, stage=STAGE, input_topic=messages.TOPIC, parts=lambda: stage_parts(settings, media_metrics),
        policy=retry_policy(settings),
        batch_size=max(64, settings.media_concurrency * 8), within=0.2, metrics=metrics,
        concurrency=settings.media_concurrency,
    )
    if settings.media_sweep_interval_seconds > 0:

        async def sweep() -> None:
            """Every worker may run it: the sweep takes an advisory lock, so one at a time does the work."""
            try:
                report = await sweep_once(settings)
                if report.rows_expired:
                    log.info("retention sweep: %s", report)
            except Exception:  # noqa: BLE001 - a failed sweep is retried at the next interval
                log.exception("retention sweep failed")

        app.timer(settings.media_sweep_interval_seconds, name="msgmem-media-sweep")(sweep)
    return app


def main() -> None:
    settings = Settings()
    configure_logging(settings.log_level)
    run_worker(build_app(settings), settings)


if __name__ == "__main__":
    main()
