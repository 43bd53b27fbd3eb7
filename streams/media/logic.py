"""Pure decisions of the media stage: which events carry media, where a file may be fetched
from, where it is stored, and the wa.media events that record the outcome.

Nothing here does I/O, so every rule (the allow-list above all) is unit-tested directly.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Literal
from urllib.parse import quote, urlsplit

import orjson

from contracts import media
from contracts.ids import event_id
from contracts.media import FailureReason, MediaFailed, MediaKind, MediaSkipped, MediaStored
from contracts.messages import MEDIA_TYPES, MediaRef, MessageReceived, MessageSent

# The content type a file is stored with, when neither the event nor the provider says.
FALLBACK_MIME = "application/octet-stream"

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


def base_mime(mime: str | None) -> str | None:
    return mime.split(";", 1)[0].strip().lower() or None if mime else None


def content_path(sha256: str, mime: str | None) -> str:
    """Content-addressed object path: the same bytes always land at the same path."""
    return f"{sha256[:2]}/{sha256[2:4]}/{sha256}{_EXTENSIONS.get(base_mime(mime) or '', '')}"


# --- where a file may be fetched from -------------------------------------------------------------


@dataclass(frozen=True)
class ProviderAccess:
    """One provider's API base URL, its credential and the only places its media may come from.

    A URL is allowed when it has the API's own origin (scheme, host, port) or is https on one of
    ``media_hosts`` (``.example.com`` also admits its subdomains). The credential is sent to
    allowed URLs only, so a crafted payload can neither redirect the worker nor leak the token.

    ``unset`` says why the provider's API cannot be used ("META_ACCESS_TOKEN is not set"); its
    media is then skipped unless a URL on ``media_hosts`` (which the operator listed) serves it.
    """

    base_url: str | None
    headers: dict[str, str] = field(default_factory=dict)
    media_hosts: tuple[str, ...] = ()
    unset: str | None = None

    @property
    def hosts_only(self) -> ProviderAccess:
        """This access without the API's origin: what is left while the API is not configured."""
        return replace(self, base_url=None)

    def allows(self, url: str) -> bool:
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            return False
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.username or parts.password:
            return False
        if self.base_url and _origin(self.base_url) == (parts.scheme, parts.hostname, port or _default_port(parts.scheme)):
            return True
        host = parts.hostname.lower()
        return parts.scheme == "https" and any(
            host == h or (h.startswith(".") and host.endswith(h)) for h in self.media_hosts
        )


def _default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80


def _origin(url: str) -> tuple[str, str | None, int]:
    parts = urlsplit(url)
    return parts.scheme, parts.hostname, parts.port or _default_port(parts.scheme)


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

    Raises ``NotConfigured`` when only an unset setting stands in the way, ``Refused`` when
    no allowed way exists. An Evolution URL that is WhatsApp's encrypted blob is ignored.
    """
    provider, ref = job.event.provider, job.ref
    access = providers.get(provider)
    if access is None:
        raise Refused("no_source", f"provider {provider!r} has no media downloads")
    api = (access.base_url or "").rstrip("/") if access.unset is None else ""
    reachable = access if access.unset is None else access.hosts_only
    url = None if ref.url and provider == "evolution" and whatsapp_encrypted(ref.url) else ref.url
    if provider == "whapi" and ref.provider_media_id and api:
        return FetchPlan("download", "GET", f"{api}/media/{quote(ref.provider_media_id, safe='')}", access)
    if provider == "meta" and ref.provider_media_id and api:
        return FetchPlan("meta_lookup", "GET", f"{api}/{meta_version}/{quote(ref.provider_media_id, safe='')}", access)
    if url and reachable.allows(url):
        return FetchPlan("download", "GET", url, reachable)
    if provider == "evolution" and api:
        body = {"message": {"key": {"id": job.event.provider_message_id}}, "convertToMp4": False}
        instance = quote(job.event.channel_id, safe="")
        return FetchPlan("evolution_base64", "POST", f"{api}/chat/getBase64FromMediaMessage/{instance}", access, body)
    if access.unset is not None:
        raise NotConfigured(access.unset)
    if url:
        raise Refused("host_not_allowed", f"{_host(url)} is not an allowed media host for {provider}")
    raise Refused("no_source", f"{provider} media without an id or a usable URL")


def whatsapp_encrypted(url: str) -> bool:
    """A WhatsApp CDN URL (``mmg.whatsapp.net/...enc``): the sender's client set it in the
    message and it serves the encrypted blob, never the file. Evolution passes it through."""
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
    except ValueError:
        return False
    return parts.path.lower().endswith(".enc") or host == "whatsapp.net" or host.endswith(".whatsapp.net")


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


def _host(url: str) -> str:
    try:
        return urlsplit(url).hostname or "an invalid URL"
    except ValueError:
        return "an invalid URL"


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
