"""The transcribe stage's handler: MediaStored (voice, audio) -> AudioTranscribed / skipped / failed."""

from __future__ import annotations

from collections.abc import Callable

from contracts import processes
from contracts.enrichment import TRANSCRIPTS_TOPIC
from contracts.media import MediaStored
from contracts.settings import Settings
from contracts.usage import Usage
from streams.common.enrichment.cache import CachedResults, Result
from streams.common.enrichment.events import StageConfig
from streams.common.enrichment.stage import EnrichmentHandler
from runtime.media_storage import MediaStore
from runtime.usage_metrics import no_meter
from streams.transcribe.logic import build, upload_name, wants
from streams.transcribe.transcriber import Transcriber

STAGE = processes.TRANSCRIBE.name


def config(settings: Settings) -> StageConfig:
    return StageConfig(
        STAGE, TRANSCRIPTS_TOPIC, settings.transcription_model, settings.enable_audio_transcription,
        settings.transcription_max_bytes,
    )  # fmt: skip


def make_handler(
    settings: Settings, store: MediaStore, transcriber: Transcriber | None, results: CachedResults,
    meter: Callable[[Usage | None], None] = no_meter,
) -> EnrichmentHandler:
    cfg = config(settings)

    async def compute(m: MediaStored, data: bytes) -> Result:
        assert transcriber is not None  # skip_reason answered no_api_key otherwise
        return await transcriber.transcribe(data, upload_name(m), m.mime_type or "audio/ogg")

    return EnrichmentHandler(cfg, store, results, transcriber is not None, wants, compute, build(cfg), meter=meter)
