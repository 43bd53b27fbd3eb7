"""wa.media and the three enrichment topics: codecs, discriminated unions, poison."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from contracts import enrichment, media
from contracts.envelope import EventDecodeError
from contracts.usage import Usage
from streams.common.enrichment.events import StageConfig, derived, skipped
from tests.fakes.events import stored_event

NOW = datetime(2026, 11, 21, tzinfo=UTC)
CFG = StageConfig("transcribe", enrichment.TRANSCRIPTS_TOPIC, "gpt-4o-mini-transcribe", True, 25 * 1024 * 1024)


def test_media_events_round_trip() -> None:
    event = stored_event("voice_note.ogg", "voice")
    assert media.decode_event(media.encode_event(event)) == event
    with pytest.raises(EventDecodeError, match="unknown event type"):
        media.decode_event(b'{"type": "audio_transcribed"}')


def test_each_topic_has_its_own_union() -> None:
    m = stored_event("voice_note.ogg", "voice")
    transcript = enrichment.AudioTranscribed(**derived(m, CFG, "audio_transcribed", now=NOW, model=CFG.model), text="hi")
    assert enrichment.decode_transcript(enrichment.encode_event(transcript)) == transcript
    with pytest.raises(EventDecodeError):
        enrichment.decode_caption(enrichment.encode_event(transcript))
    skip = skipped(m, CFG, "no_api_key", "OPENAI_API_KEY is not set", now=NOW)
    for decode in (enrichment.decode_transcript, enrichment.decode_caption, enrichment.decode_document):
        assert decode(enrichment.encode_event(skip)) == skip


def test_result_ids_change_with_the_model_only() -> None:
    m = stored_event("voice_note.ogg", "voice")
    a = derived(m, CFG, "audio_transcribed", now=NOW, model="model-a")
    assert a["event_id"] == derived(m, CFG, "audio_transcribed", now=datetime.now(UTC), model="model-a")["event_id"]
    assert a["event_id"] != derived(m, CFG, "audio_transcribed", now=NOW, model="model-b")["event_id"]
    assert a["message_id"] == m.message_id and a["media_id"] == m.media_id and a["chat_key"] == m.chat_key


def test_events_written_before_usage_existed_still_decode() -> None:
    m = stored_event("voice_note.ogg", "voice")
    usage = Usage(model=CFG.model, calls=1, input_tokens=120, output_tokens=30, audio_seconds=12.5)
    transcript = enrichment.AudioTranscribed(
        **derived(m, CFG, "audio_transcribed", now=NOW, model=CFG.model), text="hi", usage=usage
    )
    assert enrichment.decode_transcript(enrichment.encode_event(transcript)).usage == usage
    old = orjson.loads(enrichment.encode_event(transcript))
    del old["usage"]
    assert enrichment.decode_transcript(orjson.dumps(old)) == transcript.model_copy(update={"usage": None})
