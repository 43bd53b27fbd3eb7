"""The media stage's I/O edge: a wa.messages record in, at most one wa.media record out.

Per media message: fetch (streamed, capped, hashed), verify, store, and emit MediaStored.
The stored type is an allow-listed one the file's first bytes confirm, else
application/octet-stream (``mime``): a claimed type is never trusted alone.
A duplicate is still downloaded: the SHA-256 in a message is the sender's claim (Baileys
and WhatsApp clients set it), so linking a message to an object stored for another chat on
that claim alone would let a crafted message point at someone else's file; the bytes are
verified every time and then stored once (content-addressed). A final refusal
(too large, wrong hash, host not allowed, gone, malformed inline base64) is a MediaFailed,
not an error; a transient failure raises ``TransientError`` for the runner to retry, and
after the last attempt the give-up hook adds a MediaFailed (``final`` False) beside the dead
letter.

Media whose provider lacks a setting (no META_ACCESS_TOKEN, no Whapi token, no
EVOLUTION_API_URL for media not inline) is not requested at all: a MediaSkipped names the
setting, and nothing is dead-lettered.

Inline media (Evolution's webhook_base64): the bytes are in the delivery, so the stage reads
the wa.raw record the event points at (``MediaRef.inline_record``) and decodes them there,
with no request and no API URL; the size cap and the SHA-256 check apply as to downloads.
Why the event points at wa.raw instead of carrying the base64: ``contracts.messages.MediaRef``.
When that record is not in the log (an event from before ``inline_record``, or retention),
the provider's API is asked instead, as for any Evolution media.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TypeVar

from prometheus_client import CollectorRegistry, Counter
from pydantic import SecretStr

from contracts import media, messages, processes
from contracts.errors import describe_error
from contracts.messages import RecordRef
from contracts.origins import origin_of
from contracts.raw import TOPIC as RAW_TOPIC
from contracts.settings import Settings
from streams.common.records import InputRecord, Output
from runtime.errors import TransientError
from streams.media.access import CREDENTIAL_HOSTS, ProviderAccess
from streams.media.logic import (
    MediaJob,
    NotConfigured,
    Placement,
    Refused,
    check_declared_size,
    check_sha256,
    content_path,
    decode_inline,
    failed,
    inline_base64,
    job_for,
    output,
    plan_fetch,
    skipped,
    stored,
)
from streams.media.mime import stored_mime
from streams.media.providers import Downloaded, Fetcher, spool_bytes
from streams.media.raw_records import RawRecords
from runtime.media_storage import MediaStore, StorageError

log = logging.getLogger(__name__)

STAGE = processes.MEDIA.name
T = TypeVar("T")
_MESSAGE_TYPES = {b"message_received", b"message_sent"}


def provider_access(settings: Settings) -> dict[str, ProviderAccess]:
    """Each provider's API base, credential header, extra media hosts, trusted origins and, when
    its API cannot be used, why: a missing setting (an empty value counts as missing), or an API
    URL that breaks the https-443 rule without being in MEDIA_TRUSTED_ORIGINS."""

    def secret(value: SecretStr | None) -> str | None:
        return value.get_secret_value() or None if value is not None else None

    def bearer(token: str | None) -> dict[str, str]:
        return {"authorization": f"Bearer {token}"} if token else {}

    def unset(*required: tuple[str, object]) -> str | None:
        return next((f"{name} is not set" for name, value in required if not value), None)

    trusted = settings.media_trusted

    def access(provider: str, url: str | None, headers: dict[str, str], hosts: list[str], missing: str | None,
               setting: str) -> ProviderAccess:  # fmt: skip
        got = ProviderAccess(url or None, headers, tuple(hosts), missing, CREDENTIAL_HOSTS.get(provider, ()), trusted)
        if missing is None and url:
            origin = origin_of(url)
            problem = got.transport_problem(origin) if origin else "not an http(s) URL without user info"
            if problem is not None:
                return replace(got, unset=f"{setting} is not usable: {problem}")
        return got

    whapi_token, meta_token = secret(settings.whapi_media_token), secret(settings.meta_access_token)
    evolution_key = secret(settings.evolution_api_key)
    return {
        "whapi": access(
            "whapi", settings.whapi_api_url, bearer(whapi_token), settings.whapi_media_hosts,
            unset(("WHAPI_API_URL", settings.whapi_api_url), ("WHAPI_API_TOKEN (or WHAPI_TOKEN)", whapi_token)),
            "WHAPI_API_URL",
        ),
        "meta": access(
            "meta", settings.meta_graph_url.rstrip("/"), bearer(meta_token), settings.meta_media_hosts,
            unset(("META_GRAPH_URL", settings.meta_graph_url), ("META_ACCESS_TOKEN", meta_token)), "META_GRAPH_URL",
        ),
        "evolution": access(
            "evolution", settings.evolution_api_url, {"apikey": evolution_key} if evolution_key else {}, [],
            unset(("EVOLUTION_API_URL", settings.evolution_api_url), ("EVOLUTION_API_KEY", evolution_key)),
            "EVOLUTION_API_URL",
        ),
    }  # fmt: skip


class MediaMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.stored = Counter("msgmem_media_stored", "Media objects stored", ["reused"], registry=registry)
        self.failed = Counter("msgmem_media_failed", "Media that could not be stored", ["reason"], registry=registry)
        self.bytes = Counter("msgmem_media_downloaded_bytes", "Bytes downloaded from providers", registry=registry)
        self.skipped = Counter(
            "msgmem_media_skipped", "Media not requested: the provider lacks a setting", ["provider"], registry=registry
        )
        self.inline_bytes = Counter("msgmem_media_inline_bytes", "Bytes decoded from inline media", registry=registry)


@dataclass
class MediaHandler:
    settings: Settings
    store: MediaStore
    fetcher: Fetcher
    metrics: MediaMetrics
    now: Callable[[], datetime] = lambda: datetime.now(UTC)
    raw: RawRecords | None = None  # where inline media are read; None: never from wa.raw

    def __post_init__(self) -> None:
        self._access = provider_access(self.settings)

    async def __call__(self, record: InputRecord) -> list[Output]:
        job = self._job(record)
        if job is None:
            return []
        provider = job.event.provider
        try:
            event: media.MediaEvent = await self._store(job)
        except NotConfigured as missing:
            self.metrics.skipped.labels(provider).inc()
            log.info("media %s (%s) skipped: %s", job.media_id, provider, missing)
            event = skipped(job, str(missing), now=self.now())
        except Refused as refusal:
            self.metrics.failed.labels(refusal.reason).inc()
            log.info("media %s (%s) not stored: %s: %s", job.media_id, provider, refusal.reason, refusal)
            event = failed(job, refusal.reason, str(refusal), attempts=1, now=self.now())
        return [output(event)]

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
        return [output(failed(job, "download_failed", error_text, attempts=attempts, now=self.now(), final=False))]

    @staticmethod
    def _job(record: InputRecord) -> MediaJob | None:
        kind = dict(record.headers).get("mm-type")
        if kind is not None and kind not in _MESSAGE_TYPES:
            return None  # statuses, reactions, edits: decoding them would be wasted work
        return job_for(messages.decode_event(record.value))

    async def _store(self, job: MediaJob) -> media.MediaStored:
        ref = job.ref
        check_declared_size(ref, self.settings.media_max_bytes)
        got = await self._obtain(job)
        try:
            check_sha256(ref.sha256, got.sha256)
            mime = stored_mime((ref.mime_type, got.content_type), got.head)
            path = content_path(got.sha256, mime)
            created = await self._guard(self.store.put(path, got.path, mime))
        finally:
            got.path.unlink(missing_ok=True)
        self.metrics.stored.labels(str(not created).lower()).inc()
        return self._stored(job, path, got.sha256, got.size, mime, reused=not created)

    async def _obtain(self, job: MediaJob) -> Downloaded:
        """The job's bytes in a staging file: from the delivery when inline, else from the provider."""
        ref = job.ref
        if ref.inline_base64 and ref.inline_record is not None:
            got = await self._inline(job, ref.inline_record)
            if got is not None:
                self.metrics.inline_bytes.inc(got.size)
                return got
        try:
            plan = plan_fetch(job, self._access, self.settings.meta_graph_version)
        except NotConfigured as missing:
            if ref.inline_base64:
                raise NotConfigured(f"{missing}, and the inline copy was not found in {RAW_TOPIC}") from None
            raise
        got = await self.fetcher.fetch(plan, self.store.staging_dir)
        self.metrics.bytes.inc(got.size)
        return got

    async def _inline(self, job: MediaJob, where: RecordRef) -> Downloaded | None:
        """Decode the base64 the delivery at ``where`` holds for this message; None when that
        record is not in the log. Raises ``Refused`` on malformed or too large media."""
        if self.raw is None or where.topic != RAW_TOPIC:
            return None
        body = await self.raw.read(where)
        if body is None:
            return None
        limit = self.settings.media_max_bytes
        data = await asyncio.to_thread(_decode_inline, body, job.event.provider_message_id, limit)
        return await spool_bytes(data, self.store.staging_dir, job.ref.mime_type, limit)

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
        except (StorageError, OSError, TimeoutError) as exc:  # the store classifies its own failures
            raise TransientError(f"storage: {describe_error(exc)}") from exc


def _decode_inline(body: bytes, provider_message_id: str, max_bytes: int) -> bytes:
    return decode_inline(inline_base64(body, provider_message_id), max_bytes)
