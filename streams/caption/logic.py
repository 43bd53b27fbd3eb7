"""Pure rules of the caption stage: which media it takes, the prompt, and the event a caption becomes."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from contracts.enrichment import ImageCaptioned, SkipReason
from contracts.media import MediaStored
from streams.common.enrichment.cache import Result
from streams.common.enrichment.events import StageConfig, derived, usage_of
from streams.media.logic import base_mime

# What vision models accept as image input.
SUPPORTED = frozenset({"image/jpeg", "image/png", "image/webp", "image/gif"})
PROMPT = (
    "This image was sent in a WhatsApp chat with a business. In one or two sentences, say what it shows. "
    "Then copy any legible text (names, numbers, amounts, dates) exactly as written. Plain text, no preamble."
)
MAX_TOKENS = 300


def wants(m: MediaStored) -> bool:
    """Photos and images; stickers are decoration and videos are not captioned."""
    return m.kind == "image"


def check(m: MediaStored) -> tuple[SkipReason, str] | None:
    mime = base_mime(m.mime_type)
    return None if mime in SUPPORTED else ("unsupported", f"{mime or 'unknown type'} is not an image format vision models take")


def build(cfg: StageConfig) -> Callable[[MediaStored, Result, bool, datetime], ImageCaptioned]:
    def event(m: MediaStored, result: Result, cached: bool, now: datetime) -> ImageCaptioned:
        return ImageCaptioned(
            **derived(m, cfg, "image_captioned", now=now, model=cfg.model, cached=cached), caption=result["caption"],
            usage=usage_of(result, cached, cfg.model),
        )

    return event
