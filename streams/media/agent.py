"""The media stage's I/O edge: a wa.messages record in, at most one wa.media record out.

Per media message: fetch (streamed, capped, hashed), verify, store, and emit MediaStored.
A duplicate is still downloaded: the SHA-256 in a message is the sender's claim (Baileys
and WhatsApp clients set it), so linking a message to an object stored for another chat on
that claim alone would let a crafted message point at someone else's file; the bytes are
verified every time and then stored once (content-addressed). A final refusal
(too large, wrong hash, host not allowed, gone) is a MediaFailed, not an error; a transient
failure raises ``TransientError`` for the runner to retry, and after the last attempt the
give-up hook adds a MediaFailed (``final`` False) beside the dead letter.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

from prometheus_client import CollectorRegistry, Counter
from pydantic import SecretStr

from contracts import media, messages
from contracts.settings import Settings
from streams.common.records import InputRecord, Output
from streams.common.runner import TransientError
from streams.media.logic import (
    FALLBACK_MIME,
    MediaJob,
    Placement,
    ProviderAccess,
    Refused,
    base_mime,
    check_declared_size,
    check_sha256,
    content_path,
    failed,
    job_for,
    plan_fetch,
    stored,
)
from streams.media.providers import Fetcher
from streams.media.storage import MediaStore, StorageError

log = logging.getLogger(__name__)

STAGE = "media"
T = TypeVar("T")
_MESSAGE_TYPES = {b"message_received", b"message_sent"}


def provider_access(settings: Settings) -> dict[str, ProviderAccess]:
    """Each provider's API base, credential header and extra media hosts, from settings."""

    def bearer(secret: SecretStr | None) -> dict[str, str]:
        return {"authorization": f"Bearer {secret.get_secret_value()}"} if secret is not None else {}

    evolution_key = settings.evolution_api_key
    return {
        "whapi": ProviderAccess(
            settings.whapi_api_url, bearer(settings.whapi_media_token), tuple(settings.whapi_media_hosts)
        ),
        "meta": ProviderAccess(
            f"{settings.meta_graph_url.rstrip('/')}", bearer(settings.meta_access_token), tuple(settings.meta_media_hosts)
        ),
        "evolution": ProviderAccess(
            settings.evolution_api_url,
            {"apikey": evolution_key.get_secret_value()} if evolution_key is not None else {},
            tuple(settings.evolution_media_hosts),
        ),
    }


class MediaMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.stored = Counter("msgmem_media_stored", "Media objects stored", ["reused"], registry=registry)
        self.failed = Counter("msgmem_media_failed", "Media that could not be stored", ["reason"], registry=registry)
        self.bytes = Counter("msgmem_media_downloaded_bytes", "Bytes downloaded from providers", registry=registry)


@dataclass
class MediaHandler:
    settings: Settings
    store: MediaStore
    fetcher: Fetcher
    metrics: MediaMetrics
    now: Callable[[], datetime] = lambda: datetime.now(UTC)

    def __post_init__(self) -> None:
        self._access = provider_access(self.settings)

    async def __call__(self, record: InputRecord) -> list[Output]:
        job = self._job(record)
        if job is None:
            return []
        try:
            event: media.MediaEvent = await self._store(job)
        except Refused as refusal:
            self.metrics.failed.labels(refusal.reason).inc()
            log.info("media %s of %s not stored: %s", job.media_id, job.event.chat_key, refusal)
            event = failed(job, refusal.reason, str(refusal), attempts=1, now=self.now())
        return [_output(event)]

    def give_up(self, record: InputRecord, error: BaseException, attempts: int) -> list[Output]:
        """After the last retry: record the failure on wa.media too, so the row does not stay pending."""
        try:
            job = self._job(record)
        except Exception:  # noqa: BLE001 - poison: the dead letter says it all
            return []
        if job is None:
            return []
        self.metrics.failed.labels("download_failed").inc()
        error_text = f"{type(error).__name__}: {error}"
        return [_output(failed(job, "download_failed", error_text, attempts=attempts, now=self.now(), final=False))]

    @staticmethod
    def _job(record: InputRecord) -> MediaJob | None:
        kind = dict(record.headers).get("mm-type")
        if kind is not None and kind not in _MESSAGE_TYPES:
            return None  # statuses, reactions, edits: decoding them would be wasted work
        return job_for(messages.decode_event(record.value))

    async def _store(self, job: MediaJob) -> media.MediaStored:
        ref = job.ref
        check_declared_size(ref, self.settings.media_max_bytes)
        plan = plan_fetch(job, self._access, self.settings.meta_graph_version)
        got = await self.fetcher.fetch(plan, self.store.staging_dir)
        try:
            check_sha256(ref.sha256, got.sha256)
            mime = ref.mime_type or base_mime(got.content_type) or FALLBACK_MIME
            path = content_path(got.sha256, mime)
            created = await self._guard(self.store.put(path, got.path, mime))
        finally:
            got.path.unlink(missing_ok=True)
        self.metrics.bytes.inc(got.size)
        self.metrics.stored.labels(str(not created).lower()).inc()
        return self._stored(job, path, got.sha256, got.size, mime, reused=not created)

    def _stored(self, job: MediaJob, path: str, sha: str, size: int, mime: str, *, reused: bool) -> media.MediaStored:
        where = Placement(self.store.backend, self.store.bucket, path)
        return stored(
            job, where, sha256=sha, size=size, mime=mime, now=self.now(),
            retention_days=self.settings.media_retention_days, reused=reused,
        )  # fmt: skip

    @staticmethod
    async def _guard(awaitable: Awaitable[T]) -> T:
        """Storage outages are transient: retried by the runner, then dead-lettered."""
        try:
            return await awaitable
        except (StorageError, OSError, TimeoutError) as exc:
            raise TransientError(f"storage: {type(exc).__name__}: {exc}") from exc
        except Exception as exc:
            if type(exc).__module__.startswith(("httpx", "httpcore")):
                raise TransientError(f"storage: {type(exc).__name__}: {exc}") from exc
            raise


def _output(event: media.MediaEvent) -> Output:
    return Output(media.TOPIC, event.chat_key.encode(), media.encode_event(event), (("mm-type", event.type.encode()),))
