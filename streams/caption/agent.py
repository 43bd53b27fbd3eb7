"""The caption stage's handler: MediaStored (image) -> ImageCaptioned / skipped / failed."""

from __future__ import annotations

from collections.abc import Callable

from contracts import processes
from contracts.enrichment import CAPTIONS_TOPIC
from contracts.media import MediaStored
from contracts.settings import Settings
from contracts.usage import Usage
from streams.caption.captioner import Captioner
from streams.caption.logic import build, check, wants
from streams.common.enrichment.cache import CachedResults, Result
from streams.common.enrichment.events import StageConfig
from streams.common.enrichment.stage import EnrichmentHandler
from streams.media.logic import base_mime
from runtime.media_storage import MediaStore
from runtime.usage_metrics import no_meter

STAGE = processes.CAPTION.name


def config(settings: Settings) -> StageConfig:
    return StageConfig(
        STAGE, CAPTIONS_TOPIC, settings.vision_model, settings.enable_vision_captions, settings.caption_max_bytes
    )


def make_handler(
    settings: Settings, store: MediaStore, captioner: Captioner | None, results: CachedResults,
    meter: Callable[[Usage | None], None] = no_meter,
) -> EnrichmentHandler:
    cfg = config(settings)

    async def compute(m: MediaStored, data: bytes) -> Result:
        assert captioner is not None  # skip_reason answered no_api_key otherwise
        return await captioner.caption(data, base_mime(m.mime_type) or "image/jpeg")

    return EnrichmentHandler(
        cfg, store, results, captioner is not None, wants, compute, build(cfg), check=check, meter=meter
    )
