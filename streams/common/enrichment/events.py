"""Pure builders of the enrichment events from the MediaStored they derive from."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from contracts import enrichment, media
from contracts.enrichment import DerivedEvent, EnrichmentFailed, EnrichmentSkipped, SkipReason, Stage
from contracts.errors import describe_error
from contracts.ids import event_id
from contracts.usage import Usage
from streams.common.records import InputRecord, Output

_STORED = b"media_stored"


@dataclass(frozen=True)
class StageConfig:
    stage: Stage
    topic: str
    model: str
    enabled: bool
    max_bytes: int


def media_stored(record: InputRecord) -> media.MediaStored | None:
    """The MediaStored in a wa.media record; None for anything else (MediaFailed). Raises on poison."""
    kind = dict(record.headers).get("mm-type")
    if kind is not None and kind != _STORED:
        return None
    event = media.decode_event(record.value)
    return event if isinstance(event, media.MediaStored) else None


def derived(m: media.MediaStored, cfg: StageConfig, event_type: str, *, now: datetime, model: str | None,
            cached: bool = False) -> dict[str, Any]:  # fmt: skip
    """The fields every result shares; the event id changes with the model, so a re-run with a
    better model is a new event while a replay of the same one is the same event."""
    return {
        "event_id": event_id(m.provider, m.channel_id, m.provider_message_id, event_type, model or ""),
        "chat_key": m.chat_key, "occurred_at": m.occurred_at, "received_at": m.received_at,
        "provider": m.provider, "channel_id": m.channel_id, "delivery_id": m.delivery_id,
        "message_id": m.message_id, "media_id": m.media_id, "provider_message_id": m.provider_message_id,
        "kind": m.kind, "mime_type": m.mime_type, "sha256": m.sha256, "stage": cfg.stage,
        "model": model, "cached": cached, "produced_at": now,
    }  # fmt: skip


def usage_of(result: dict[str, Any], cached: bool, model: str) -> Usage | None:
    """What producing ``result`` cost this event: the calls' usage as computed, or, reused from
    the cache, nothing but a cache hit. None: a result computed without usage (a fake model)."""
    if cached:
        return Usage(model=model, cache_hits=1)
    raw = result.get("usage")
    return Usage.model_validate(raw) if raw is not None else None


def skipped(m: media.MediaStored, cfg: StageConfig, reason: SkipReason, detail: str, *, now: datetime) -> EnrichmentSkipped:
    return EnrichmentSkipped(
        **derived(m, cfg, "enrichment_skipped", now=now, model=cfg.model), reason=reason, detail=detail
    )


def skip_reason(m: media.MediaStored, cfg: StageConfig, *, has_client: bool) -> tuple[SkipReason, str] | None:
    """Why this stage must not call its model for ``m``, if it must not."""
    if not cfg.enabled:
        return "disabled", f"{cfg.stage} is disabled in settings"
    if not has_client:
        return "no_api_key", "OPENAI_API_KEY is not set"
    if m.size_bytes > cfg.max_bytes:
        return "too_large", f"{m.size_bytes} bytes is above the {cfg.max_bytes}-byte limit"
    return None


def failed(m: media.MediaStored, cfg: StageConfig, error: BaseException, attempts: int, *, now: datetime) -> EnrichmentFailed:
    return EnrichmentFailed(
        **derived(m, cfg, "enrichment_failed", now=now, model=cfg.model),
        error_type=type(error).__name__, error=describe_error(error)[:1000], attempts=attempts,
    )


def output(topic: str, event: DerivedEvent) -> Output:
    return Output(topic, event.chat_key.encode(), enrichment.encode_event(event), (("mm-type", event.type.encode()),))
