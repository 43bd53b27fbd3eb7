"""Pure rules of the transcribe stage: which media it takes and the event a transcript becomes."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from contracts.enrichment import AudioTranscribed
from contracts.media import MediaStored
from streams.common.enrichment.cache import Result
from streams.common.enrichment.events import StageConfig, derived, usage_of
from streams.media.logic import base_mime

# The transcription API tells formats apart by the file name's extension.
_EXTENSIONS = {
    "audio/ogg": "ogg", "audio/opus": "ogg", "audio/mpeg": "mp3", "audio/mp3": "mp3", "audio/mp4": "m4a",
    "audio/x-m4a": "m4a", "audio/aac": "m4a", "audio/wav": "wav", "audio/x-wav": "wav", "audio/webm": "webm",
    "audio/flac": "flac", "audio/mpga": "mpga",
}  # fmt: skip


def wants(m: MediaStored) -> bool:
    """Voice notes and audio messages (video is not transcribed: it would need its audio track cut out)."""
    return m.kind in ("voice", "audio")


def upload_name(m: MediaStored) -> str:
    ext = _EXTENSIONS.get(base_mime(m.mime_type) or "", "ogg" if m.voice or m.kind == "voice" else "mp3")
    return f"{m.media_id}.{ext}"


def build(cfg: StageConfig) -> Callable[[MediaStored, Result, bool, datetime], AudioTranscribed]:
    def event(m: MediaStored, result: Result, cached: bool, now: datetime) -> AudioTranscribed:
        duration = result.get("duration_seconds") or m.duration_seconds
        usage = usage_of(result, cached, cfg.model)
        if usage is not None and usage.calls and not usage.audio_seconds and duration:
            usage = usage.model_copy(update={"audio_seconds": float(duration)})  # the API said nothing: what we know
        return AudioTranscribed(
            **derived(m, cfg, "audio_transcribed", now=now, model=cfg.model, cached=cached),
            text=result["text"], language=result.get("language"), duration_seconds=duration, usage=usage,
        )

    return event
