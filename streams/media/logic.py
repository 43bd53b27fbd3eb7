"""Pure decisions of the media stage: which events carry media, where a file may be fetched
from, where it is stored, and the wa.media events that record the outcome.

Nothing here does I/O, so every rule (the allow-list above all) is unit-tested directly.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal
from urllib.parse import quote

import orjson

from contracts import media
from contracts.ids import chat_key_parts, event_id
from contracts.media import FailureReason, MediaExpired, MediaFailed, MediaKind, MediaSkipped, MediaStored
from contracts.messages import MEDIA_TYPES, MediaRef, MessageReceived, MessageSent
from streams.common.records import Output
from streams.media.access import ProviderAccess
from streams.media.ids import instance_problem, media_id_problem
from streams.media.mime import base_mime  # the enrichment stages import it from here too

_EXTENSIONS = {
    "audio/ogg": ".ogg", "audio/opus": ".opus", "audio/mpeg": ".mp3", "audio/mp3": ".mp3", "audio/mp4": ".m4a",
    "audio/aac": ".aac", "audio/amr": ".amr", "audio/wav": ".wav", "audio/x-wav": ".wav", "audio/webm": ".webm",
    "image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp", "image/gif": ".gif", "image/heic": ".heic",
    "video/mp4": ".mp4", "video/3gpp": ".3gp", "video/quicktime": ".mov", "video/webm": ".webm",
    "application/pdf": ".pdf", "text/plain": ".txt",
}  # fmt: skip


class Refused(Exception):
    """A final, deterministic reason not to store a file: recorded as MediaFailed, never retried."""

    def __init__(self, reason: FailureReason, message: str) -> None:
        super().__init__(message)
        self.reason: FailureReason = reason


class NotConfigured(Exception):
    """The provider lacks a setting this media needs: recorded as MediaSkipped, never requested.
    The message names the setting ("META_ACCESS_TOKEN is not set")."""


@dataclass(frozen=True)
class MediaJob:
    """One message's media and the envelope fields its wa.media event repeats."""

    event: MessageReceived | MessageSent
    kind: MediaKind
    ref: MediaRef

    @property
    def media_id(self) -> str:
        return media.media_id(self.event.message_id)


def job_for(event: object) -> MediaJob | None:
    """The media job of a wa.messages event, or None when it carries no media."""
    if not isinstance(event, MessageReceived | MessageSent) or event.media is None:
        return None
    if event.message_type not in MEDIA_TYPES:
        return None
    return MediaJob(event, event.message_type, event.media)  # type: ignore[arg-type]


def content_path(sha256: str, mime: str | None) -> str:
    """Content-addressed object path: the same bytes always land at the same path."""
    return f"{sha256[:2]}/{sha256[2:4]}/{sha256}{_EXTENSIONS.get(base_mime(mime) or '', '')}"


# --- where a file may be fetched from -------------------------------------------------------------


Step = Literal["download", "meta_lookup", "evolution_base64"]


@dataclass(frozen=True)
class FetchPlan:
    """The first request of a download. ``meta_lookup`` answers with the URL to download next;
    ``evolution_base64`` with the file as base64 JSON; ``download`` with the bytes."""

    step: Step
    method: Literal["GET", "POST"]
    url: str
    access: ProviderAccess
    json: dict[str, object] | None = None


def plan_fetch(job: MediaJob, providers: dict[str, ProviderAccess], meta_version: str) -> FetchPlan:
    """How to get this job's bytes (never from its inline copy: see ``inline_base64``).

    Whapi and Meta: by media id from the API, else the webhook's URL when the allow-list admits
    it. Evolution: from its API's getBase64FromMediaMessage only; the message's ``url`` is set
    by the sender's client (WhatsApp's encrypted blob, or anything a crafted message says), so
    it is never fetched. Raises ``NotConfigured`` when only an unset setting stands in the way,
    ``Refused`` when no allowed way exists or an id would not be one path segment.
    """
    provider, ref = job.event.provider, job.ref
    access = providers.get(provider)
    if access is None:
        raise Refused("no_source", f"provider {provider!r} has no media downloads")
    api = (access.base_url or "").rstrip("/") if access.unset is None else ""
    reachable = access if access.unset is None else access.hosts_only
    media_id = ref.provider_media_id
    if provider in ("whapi", "meta") and media_id and api:
        if (problem := media_id_problem(media_id)) is not None:
            raise Refused("malformed", problem)
        if provider == "whapi":
            return FetchPlan("download", "GET", f"{api}/media/{quote(media_id, safe='')}", access)
        return FetchPlan("meta_lookup", "GET", f"{api}/{meta_version}/{quote(media_id, safe='')}", access)
    if provider == "evolution":
        if not api:
            raise NotConfigured(access.unset or "EVOLUTION_API_URL is not set")
        if (problem := instance_problem(job.event.channel_id)) is not None:
            raise Refused("malformed", problem)
        body = {"message": {"key": {"id": job.event.provider_message_id}}, "convertToMp4": False}
        instance = quote(job.event.channel_id, safe="")
        return FetchPlan("evolution_base64", "POST", f"{api}/chat/getBase64FromMediaMessage/{instance}", access, body)
    if ref.url and (problem := reachable.problem(ref.url)) is None:
        return FetchPlan("download", "GET", ref.url, reachable)
    if access.unset is not None:
        raise NotConfigured(access.unset)
    if ref.url:
        raise Refused("host_not_allowed", f"{provider} media URL refused: {problem}")
    raise Refused("no_source", f"{provider} media without an id or a usable URL")


# --- media inline in the delivery (Evolution's webhook_base64) ------------------------------------


def inline_base64(body: bytes, provider_message_id: str) -> str:
    """The base64 text an Evolution delivery carries for this message at ``data.message.base64``
    (``data`` one item or a list of them, matched by ``key.id``). Raises ``Refused``."""
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise Refused("malformed", f"the wa.raw record is not JSON: {type(exc).__name__}") from exc
    data = parsed.get("data") if isinstance(parsed, dict) else None
    items = [(f"data[{n}]", item) for n, item in enumerate(data)] if isinstance(data, list) else [("data", data)]
    for path, item in items:
        key = item.get("key") if isinstance(item, dict) else None
        if not isinstance(key, dict) or key.get("id") != provider_message_id:
            continue
        message = item.get("message")
        value = message.get("base64") if isinstance(message, dict) else None
        if not isinstance(value, str):
            raise Refused("malformed", f"{path}.message.base64: {type(value).__name__}, not base64 text")
        return value
    raise Refused("not_found", "the wa.raw record has no item with this message's key.id")


_DATA_URI = re.compile(r"data:[^,]{0,200};base64,")
_WHITESPACE = re.compile(rb"\s+")


def decode_inline(text: str, max_bytes: int) -> bytes:
    """Decode inline media under the size cap; raises ``Refused`` (``malformed``, ``too_large``).
    Tolerates a data: URI prefix and line breaks (MIME-style base64); nothing else."""
    if (prefix := _DATA_URI.match(text)) is not None:
        text = text[prefix.end() :]
    try:
        raw = text.encode("ascii")
    except UnicodeEncodeError as exc:
        raise Refused("malformed", "inline base64: UnicodeEncodeError (not ASCII)") from exc
    if any(c in raw for c in b" \t\r\n"):
        raw = _WHITESPACE.sub(b"", raw)
    if len(raw) // 4 * 3 - 2 > max_bytes:
        raise Refused("too_large", f"inline media of about {len(raw) // 4 * 3} bytes exceeds {max_bytes} bytes")
    if not raw:
        raise Refused("malformed", "inline base64: empty")
    try:
        data = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError) as exc:
        kind = "binascii.Error" if isinstance(exc, binascii.Error) else type(exc).__name__
        raise Refused("malformed", f"inline base64: {kind} ({exc})") from exc
    if len(data) > max_bytes:
        raise Refused("too_large", f"{len(data)} bytes exceeds {max_bytes}")
    return data


def check_declared_size(ref: MediaRef, max_bytes: int) -> None:
    if ref.size_bytes is not None and ref.size_bytes > max_bytes:
        raise Refused("too_large", f"declared size {ref.size_bytes} exceeds {max_bytes} bytes")


def check_sha256(expected: str | None, actual: str) -> None:
    if expected and expected.lower() != actual:
        raise Refused("sha256_mismatch", f"expected sha256 {expected}, got {actual}")


# --- the events -------------------------------------------------------------------------------------


def _common(job: MediaJob, event_type: str) -> dict[str, object]:
    e, ref = job.event, job.ref
    return {
        "event_id": event_id(e.provider, e.channel_id, e.provider_message_id, event_type),
        "chat_key": e.chat_key, "occurred_at": e.occurred_at, "received_at": e.received_at,
        "provider": e.provider, "channel_id": e.channel_id, "delivery_id": e.delivery_id,
        "message_id": e.message_id, "media_id": job.media_id, "provider_message_id": e.provider_message_id,
        "direction": e.direction, "kind": job.kind, "provider_media_id": ref.provider_media_id,
        "filename": ref.filename, "voice": ref.voice, "duration_seconds": ref.duration_seconds,
        "page_count": ref.page_count, "width": ref.width, "height": ref.height,
    }  # fmt: skip


@dataclass(frozen=True)
class Placement:
    storage: Literal["local", "supabase"]
    bucket: str
    path: str


def stored(
    job: MediaJob, where: Placement, *, sha256: str, size: int, mime: str | None, now: datetime,
    retention_days: int, reused: bool,
) -> MediaStored:  # fmt: skip
    return MediaStored(
        **_common(job, "media_stored"),  # type: ignore[arg-type]
        mime_type=mime, size_bytes=size, sha256=sha256, storage=where.storage, bucket=where.bucket,
        path=where.path, stored_at=now, expires_at=now + timedelta(days=retention_days) if retention_days else None,
        reused=reused,
    )


def failed(
    job: MediaJob, reason: FailureReason, error: str, *, attempts: int, now: datetime, final: bool = True
) -> MediaFailed:
    """``size_bytes`` and ``sha256`` as the webhook declared them (None when it did not)."""
    return MediaFailed(
        **_common(job, "media_failed"),  # type: ignore[arg-type]
        mime_type=job.ref.mime_type, reason=reason, error=error[:1000], attempts=attempts, final=final, failed_at=now,
        size_bytes=job.ref.size_bytes, sha256=_declared_sha256(job.ref.sha256),
    )


def skipped(job: MediaJob, detail: str, *, now: datetime) -> MediaSkipped:
    """Not attempted: ``detail`` names the missing setting. Declared size and sha256 as in ``failed``."""
    return MediaSkipped(
        **_common(job, "media_skipped"),  # type: ignore[arg-type]
        mime_type=job.ref.mime_type, reason="not_configured", detail=detail[:1000], skipped_at=now,
        size_bytes=job.ref.size_bytes, sha256=_declared_sha256(job.ref.sha256),
    )


def _declared_sha256(value: str | None) -> str | None:
    return value.lower() if value else None


@dataclass(frozen=True)
class ExpiredRow:
    """What the retention sweep read of one chat_media row past its ``expires_at``."""

    media_id: str
    message_id: str
    chat_key: str
    kind: MediaKind
    size_bytes: int | None
    sha256: str | None
    bucket: str
    path: str
    stored_at: datetime
    expires_at: datetime
    received_at: datetime | None = None  # the message's (chat_messages), when its row is there


def expired(row: ExpiredRow, *, object_deleted: bool, now: datetime) -> MediaExpired:
    """The sweep's event for ``row``: its id names the stored copy, so a repeated sweep repeats it."""
    provider, channel, _chat = chat_key_parts(row.chat_key)
    return MediaExpired(
        event_id=media.expired_event_id(row.media_id, row.stored_at), chat_key=row.chat_key, occurred_at=now,
        received_at=row.received_at or now, provider=provider, channel_id=channel, delivery_id=media.SWEEP_DELIVERY,
        message_id=row.message_id, media_id=row.media_id, kind=row.kind, size_bytes=row.size_bytes, sha256=row.sha256,
        bucket=row.bucket, path=row.path, stored_at=row.stored_at, expires_at=row.expires_at,
        object_deleted=object_deleted,
    )  # fmt: skip


def output(event: media.MediaEvent) -> Output:
    """A wa.media record: keyed by chat, like every event of the chat, with its type in ``mm-type``
    (what the enrichment stages read to skip events that are not MediaStored without decoding them)."""
    return Output(media.TOPIC, event.chat_key.encode(), media.encode_event(event), (("mm-type", event.type.encode()),))
