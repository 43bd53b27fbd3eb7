"""The transcribe stage's handler with the real OpenAI SDK against the fake server: results,
the cache (a duplicate voice note costs one call), skips, and errors mapped onto retries."""

from __future__ import annotations

import asyncio

import pytest

from contracts import enrichment
from contracts.usage import Usage
from streams.common.outputs import RecordingOutputs
from streams.common.runner import RetryPolicy, StageRunner
from runtime.errors import TransientError
from runtime.openai_client import ModelRejected
from streams.transcribe.agent import make_handler
from streams.transcribe.transcriber import OpenAITranscriber
from tests.fakes.events import fixture_path, media_record, sha256_file, stored_event
from tests.unit.enrichment.conftest import Env, usage_counters


def handler_for(env: Env, **settings: object):  # type: ignore[no-untyped-def]
    s = env.settings.model_copy(update=settings)
    transcriber = OpenAITranscriber(env.client, s.transcription_model, asyncio.Semaphore(4))
    return make_handler(s, env.store, transcriber, env.results)


async def transcript(handler, event) -> enrichment.TranscriptEvent:  # type: ignore[no-untyped-def]
    [out] = await handler(media_record(event))
    assert out.topic == enrichment.TRANSCRIPTS_TOPIC and out.key == event.chat_key.encode()
    return enrichment.decode_transcript(out.value)


async def test_voice_notes_and_audio_are_transcribed(env: Env) -> None:
    env.fake.transcripts[sha256_file("voice_note.ogg")] = "Hi, this is Dana about order 4271."
    handler = handler_for(env)
    voice = await transcript(handler, stored_event("voice_note.ogg", "voice"))
    assert isinstance(voice, enrichment.AudioTranscribed)
    assert voice.text == "Hi, this is Dana about order 4271." and voice.model == "gpt-4o-mini-transcribe"
    audio = await transcript(handler, stored_event("audio_clip.mp3", "audio"))
    assert isinstance(audio, enrichment.AudioTranscribed) and not audio.cached
    [first, second] = env.fake.calls("/v1/audio/transcriptions")
    assert first.model == "gpt-4o-mini-transcribe" and first.sha256 == sha256_file("voice_note.ogg")
    assert second.sha256 == sha256_file("audio_clip.mp3")


async def test_a_duplicate_voice_note_costs_one_call(env: Env) -> None:
    handler = handler_for(env)
    events = [stored_event("voice_note.ogg", "voice", message=f"forward-{n}") for n in range(5)]
    first = await transcript(handler, events[0])
    rest = await asyncio.gather(*(transcript(handler, e) for e in events[1:]))  # concurrent: single flight
    assert len(env.fake.calls("/v1/audio/transcriptions")) == 1
    assert not first.cached and all(r.cached and r.text == first.text for r in rest)  # type: ignore[union-attr]
    assert {r.message_id for r in rest} == {e.message_id for e in events[1:]}
    assert env.metrics.hits._value.get() == 4 and env.metrics.misses._value.get() == 1
    env.fake.latency = 0.05
    burst = [stored_event("audio_clip.mp3", "audio", message=f"burst-{n}") for n in range(4)]
    await asyncio.gather(*(transcript(handler, e) for e in burst))
    assert len(env.fake.calls("/v1/audio/transcriptions")) == 2  # four at once, one call


async def test_another_model_is_another_result(env: Env) -> None:
    await transcript(handler_for(env), stored_event("voice_note.ogg", "voice"))
    other = await transcript(handler_for(env, transcription_model="gpt-transcribe"), stored_event("voice_note.ogg", "voice"))
    assert not other.cached and other.model == "gpt-transcribe"
    assert [c.model for c in env.fake.calls("/v1/audio/")] == ["gpt-4o-mini-transcribe", "gpt-transcribe"]


async def test_without_a_key_or_when_disabled_or_too_large_it_is_skipped(env: Env) -> None:
    no_key = make_handler(env.settings, env.store, None, env.results)
    skipped = await transcript(no_key, stored_event("voice_note.ogg", "voice"))
    assert isinstance(skipped, enrichment.EnrichmentSkipped) and skipped.reason == "no_api_key"
    disabled = await transcript(handler_for(env, enable_audio_transcription=False), stored_event("voice_note.ogg", "voice"))
    assert disabled.reason == "disabled"  # type: ignore[union-attr]
    big = stored_event("audio_clip.mp3", "audio", size=26 * 1024 * 1024)
    assert (await transcript(handler_for(env), big)).reason == "too_large"  # type: ignore[union-attr]
    assert env.fake.calls() == [] and env.cache.items == {}  # skips cost nothing and are not cached


async def test_other_media_are_not_for_this_stage(env: Env) -> None:
    handler = handler_for(env)
    for name, kind in (("receipt_photo.jpg", "image"), ("video_clip.mp4", "video"), ("invoice_text.pdf", "document")):
        assert await handler(media_record(stored_event(name, kind))) == []


async def test_rate_limits_and_outages_are_transient(env: Env) -> None:
    handler = handler_for(env)
    env.fake.fail(status=429, retry_after=3, times=1)
    with pytest.raises(TransientError) as caught:
        await handler(media_record(stored_event("voice_note.ogg", "voice")))
    assert caught.value.retry_after == 3
    env.fake.fail(status=500, times=1)
    with pytest.raises(TransientError):
        await handler(media_record(stored_event("voice_note.ogg", "voice")))
    env.fake.fail(status=200, delay=3, times=1)  # longer than the client's 2 s timeout
    with pytest.raises(TransientError, match="Timeout"):
        await handler(media_record(stored_event("voice_note.ogg", "voice")))
    env.fake.fail(status=400, times=1)
    with pytest.raises(ModelRejected):
        await handler(media_record(stored_event("voice_note.ogg", "voice")))
    assert env.cache.items == {}


async def test_retries_honour_retry_after_then_succeed(env: Env) -> None:
    handler = handler_for(env)
    env.fake.fail(status=429, retry_after=0.3, times=2)
    writer = RecordingOutputs()
    runner = StageRunner("transcribe", handler, writer, policy=RetryPolicy(5, 0.01, 0.05), give_up=handler.give_up)
    await runner.run_batch([media_record(stored_event("voice_note.ogg", "voice"))])
    calls = env.fake.calls("/v1/audio/transcriptions")
    assert [c.status for c in calls] == [429, 429, 200]
    gaps = [b.at - a.at for a, b in zip(calls, calls[1:])]
    assert all(0.28 <= g < 0.6 for g in gaps), gaps  # the server's 0.3 s, not the 0.01 s backoff
    assert isinstance(enrichment.decode_transcript(writer.written[0].value), enrichment.AudioTranscribed)


async def test_exhausted_retries_dead_letter_and_record_the_failure(env: Env) -> None:
    handler = handler_for(env)
    env.fake.fail(status=500, times=None)
    writer = RecordingOutputs()
    runner = StageRunner("transcribe", handler, writer, policy=RetryPolicy(3, 0.01, 0.02), give_up=handler.give_up)
    await runner.run_batch([media_record(stored_event("voice_note.ogg", "voice"))])
    assert len(env.fake.calls("/v1/audio/transcriptions")) == 3
    assert [o.topic for o in writer.written] == ["wa.deadletter", enrichment.TRANSCRIPTS_TOPIC]
    failed = enrichment.decode_transcript(writer.written[1].value)
    assert isinstance(failed, enrichment.EnrichmentFailed) and failed.attempts == 3


async def test_usage_is_recorded_as_the_api_reports_it_and_counted(env: Env) -> None:
    seconds = max(1, fixture_path("voice_note.ogg").stat().st_size // 2000)  # the fake's audio: 2000 bytes a second
    s = env.settings
    transcriber = OpenAITranscriber(env.client, s.transcription_model, asyncio.Semaphore(4))
    handler = make_handler(s, env.store, transcriber, env.results, env.metrics.usage.meter(s.ai_prices))
    first = await transcript(handler, stored_event("voice_note.ogg", "voice", duration=7.5))
    assert isinstance(first, enrichment.AudioTranscribed) and first.usage is not None
    # gpt-4o-mini-transcribe reports tokens (audio in, text out); the seconds are the message's own
    assert first.usage.model == "gpt-4o-mini-transcribe" and first.usage.calls == 1
    assert first.usage.input_tokens == 10 * seconds and first.usage.output_tokens == len(first.text) // 4
    assert first.usage.audio_seconds == 7.5 and first.usage.cache_hits == 0
    again = await transcript(handler, stored_event("voice_note.ogg", "voice", message="fwd"))
    assert again.cached and again.usage == Usage(model="gpt-4o-mini-transcribe", cache_hits=1)  # type: ignore[union-attr]
    counted = usage_counters(env.metrics.usage, "test", "gpt-4o-mini-transcribe")
    assert counted["calls"] == 1 and counted["cache_hits"] == 1 and counted["audio_seconds"] == 7.5
    assert counted["spend_usd"] == pytest.approx((10 * seconds * 3.00 + len(first.text) // 4 * 5.00) / 1e6)

    whisper = await transcript(handler_for(env, transcription_model="whisper-1"), stored_event("voice_note.ogg", "voice"))
    assert whisper.usage == Usage(model="whisper-1", calls=1, audio_seconds=seconds)  # type: ignore[union-attr]
