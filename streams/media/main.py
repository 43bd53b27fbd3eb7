"""Composition root of the media stage: ``python -m streams.media``.

Consumer group ``msgmem-media`` reads wa.messages and writes wa.media: every message with
media gets its file downloaded from its provider (or, inline in an Evolution delivery, read
back from wa.raw) into the media store (a local folder, or a private Supabase Storage
bucket) and a MediaStored or MediaFailed event; a MediaSkipped when the provider lacks the
setting downloads need. Downloads run
MEDIA_CONCURRENCY at a time with MEDIA_MAX_ATTEMPTS attempts (1 s to 8 s backoff) before
wa.deadletter. Every MEDIA_SWEEP_INTERVAL_SECONDS the worker also runs the retention sweep
(``streams.media.sweep``: deletes expired objects, appends MediaExpired to wa.media) and the
sweep of MESSAGE_RETENTION_DAYS and TRANSCRIPT_RETENTION_DAYS (``streams.media.retention_sweep``:
appends MessagesExpired / TextsCleared to wa.retention). Logs
``[^Worker]: Ready`` once consuming.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import faust
import httpx

from contracts import processes
from contracts.settings import Settings
from streams.common.runner import RetryPolicy, StageParts
from streams.common.stage import Stage
from streams.media.sweep import sweep_once
from streams.media.retention_sweep import sweep_once as retention_sweep_once
from streams.media.agent import MediaHandler, MediaMetrics
from streams.media.pinning import pinned_client
from streams.media.providers import Fetcher
from streams.media.raw_records import KafkaRawRecords
from runtime.media_storage import build_store

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
async def stage_parts(settings: Settings, metrics: MediaMetrics) -> AsyncIterator[StageParts]:
    """The handler with its store and HTTP client, open while in use (the worker, `msgmem dlq retry`)."""
    store = await build_store(settings)
    raw_records = KafkaRawRecords(settings, timeout_seconds=settings.kafka_request_timeout_ms / 1000)
    try:
        async with http_client(settings) as client:
            fetcher = Fetcher(client, settings.media_max_bytes)
            handler = MediaHandler(
                settings, store, fetcher, metrics, raw=raw_records
            )
            yield StageParts(handler, handler.give_up)
    finally:
        await raw_records.aclose()
        await store.aclose()


def sweep_timer(app: faust.App, settings: Settings) -> None:
    """Every MEDIA_SWEEP_INTERVAL_SECONDS; every worker may run it: the sweep takes an advisory
    lock, so one at a time does the work."""
    if settings.media_sweep_interval_seconds <= 0:
        return

    async def sweep() -> None:
        try:
            report = await sweep_once(settings)
            if report.rows_expired:
                log.info("retention sweep: %s", report)
        except Exception:  # noqa: BLE001 - a failed sweep is retried at the next interval
            log.exception("retention sweep failed")
        try:  # MESSAGE_RETENTION_DAYS and TRANSCRIPT_RETENTION_DAYS (streams.media.retention_sweep)
            policies = await retention_sweep_once(settings)
            if policies.chats_expired or policies.chats_cleared:
                log.info("retention policies sweep: %s", policies)
        except Exception:  # noqa: BLE001 - likewise
            log.exception("retention policies sweep failed")

    app.timer(settings.media_sweep_interval_seconds, name="msgmem-media-sweep")(sweep)


STAGE = Stage(
    processes.MEDIA, parts=stage_parts, metrics=MediaMetrics, policy=retry_policy,
    concurrency=lambda settings: settings.media_concurrency,
    batch_size=lambda settings: max(64, settings.media_concurrency * 8), timers=sweep_timer,
)
