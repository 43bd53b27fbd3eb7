"""The transcribe, caption and extract workers (real Faust processes) read MediaStored events from
wa.media, call the fake OpenAI-compatible server, and write their results to wa.transcripts,
wa.captions and wa.documents. A duplicate voice note costs one call (a cache hit in the
metrics), the text PDF never calls the model and the scanned one does, a 429's Retry-After
is honoured, and a file the server always fails on ends in wa.deadletter. Each result records the
usage the API reported (a cache hit records none but the hit), the transcribe stage's /metrics
counts it with its estimated spend, and `msgmem status` prices it per 1,000 messages."""

from __future__ import annotations

import hashlib
import os
import re
import uuid
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from contracts import deadletter, enrichment, media, messages
from contracts.deadletter import DeadLettered
from contracts.settings import Settings
from contracts.usage import Usage
from msgmem.status import collect, render
from runtime.kafka import end_offsets, make_producer
from msgmem.localstack.processes import free_port
from streams.media.logic import content_path
from runtime.media_storage import LocalMediaStore
from tests.fakes.events import fixture_path, put_fixture, sha256_file, stored_event
from tests.fakes.openai_api import FakeOpenAI
from tests.fakes.server import ThreadedServer
from tests.fakes.stages import running_stage
from tests.unit.projections.factory import Chat
from tests.waiting import eventually, read_since

pytestmark = pytest.mark.integration
TOPICS = (enrichment.TRANSCRIPTS_TOPIC, enrichment.CAPTIONS_TOPIC, enrichment.DOCUMENTS_TOPIC)


async def publish(
    settings: Settings, events: Sequence[Any], topic: str = media.TOPIC, encode: Callable[[Any], bytes] = media.encode_event
) -> None:  # fmt: skip
    producer = make_producer(settings)
    await producer.start()
    try:
        for e in events:
            await producer.send_and_wait(topic, encode(e), key=e.chat_key.encode(), headers=[("mm-type", e.type.encode())])
    finally:
        await producer.stop()


async def results(settings: Settings, start: dict[str, dict], ids: set[str]) -> dict[str, list]:  # type: ignore[type-arg]
    found: dict[str, list] = {}  # type: ignore[type-arg]
    for topic in TOPICS:
        for r in await read_since(settings, topic, start[topic]):
            event = enrichment.CODECS[topic].decode(r.value)
            mine = found.setdefault(event.message_id, []) if event.message_id in ids else None
            if mine is not None and all(e.event_id != event.event_id for e in mine):  # at-least-once: a
                mine.append(event)  # rebalance may re-deliver, and the same result has the same id
    return found


@pytest.fixture
async def clean_cache(db: asyncpg.Connection) -> None:
    await db.execute("truncate enrichment_cache")


async def test_stages_enrich_media_once_each(settings: Settings, tmp_path: Path, clean_cache: None) -> None:
    run = uuid.uuid4().hex[:8]
    store = LocalMediaStore(tmp_path / "media", "chat-media")
    for name in ("voice_note.ogg", "audio_clip.mp3", "receipt_photo.jpg", "invoice_text.pdf", "receipt_scanned.pdf",
                 "sticker.webp"):  # fmt: skip
        await put_fixture(store, name)
    poison_audio = b"OggS" + os.urandom(4000)  # a file the fake server always fails on
    poison_sha = hashlib.sha256(poison_audio).hexdigest()
    staged = store.staging_dir / "poison.part"
    staged.write_bytes(poison_audio)
    await store.put(content_path(poison_sha, "audio/ogg"), staged, "audio/ogg")

    def event(name: str, kind: str, label: str, **kw: object) -> media.MediaStored:
        return stored_event(name, kind, store=store, message=f"{run}-{label}", **kw)  # type: ignore[arg-type]

    events = {
        "voice": event("voice_note.ogg", "voice", "voice"),
        "voice-forwarded": event("voice_note.ogg", "voice", "voice-forwarded"),
        "audio": event("audio_clip.mp3", "audio", "audio"),
        "photo": event("receipt_photo.jpg", "image", "photo"),
        "text-pdf": event("invoice_text.pdf", "document", "text-pdf"),
        "scanned-pdf": event("receipt_scanned.pdf", "document", "scanned-pdf"),
        "sticker": event("sticker.webp", "sticker", "sticker"),
        "poison": event("voice_note.ogg", "voice", "poison", sha256=poison_sha, size=len(poison_audio),
                        path=content_path(poison_sha, "audio/ogg")),
    }  # fmt: skip
    label = {e.message_id: name for name, e in events.items()}
    fake = FakeOpenAI()
    fake.transcripts[sha256_file("voice_note.ogg")] = "Hi, this is Dana Silva about order 4271."
    fake.descriptions[sha256_file("receipt_photo.jpg")] = "A delivery receipt for order 4271, total 189.00 EUR."
    fake.fail(status=429, retry_after=0.5, times=1, sha256=sha256_file("audio_clip.mp3"))
    fake.fail(status=500, times=None, sha256=poison_sha)

    start = {t: await end_offsets(settings, t) for t in TOPICS}
    start_dead = await end_offsets(settings, deadletter.TOPIC)
    await publish(settings, [events["voice"]])  # first alone, so its forward is a cache hit, not a race
    metrics_port = free_port()
    with ExitStack() as stack:
        url = stack.enter_context(ThreadedServer(fake.app))
        common = {
            "OPENAI_API_KEY": fake.api_key, "OPENAI_BASE_URL": f"{url}/v1", "MEDIA_LOCAL_DIR": str(store.root),
            "TRANSCRIBE_MAX_ATTEMPTS": "3", "TRANSCRIBE_RETRY_MIN_SECONDS": "0.05", "TRANSCRIBE_RETRY_MAX_SECONDS": "0.2",
        }  # fmt: skip
        stack.enter_context(running_stage("streams.transcribe", settings, tmp_path, **common, STAGE_WEB_PORT=str(metrics_port)))
        stack.enter_context(running_stage("streams.caption", settings, tmp_path, **common))
        stack.enter_context(running_stage("streams.extract", settings, tmp_path, **common))

        await eventually(lambda: results(settings, start, {events["voice"].message_id}), timeout=90)
        await publish(settings, [e for name, e in events.items() if name != "voice"])
        expected = set(label) - {events["sticker"].message_id}

        async def all_done() -> dict[str, list]:  # type: ignore[type-arg]
            found = await results(settings, start, set(label))
            return found if set(found) >= expected else {}

        found = {label[k]: v for k, v in (await eventually(all_done, timeout=90)).items()}
        async with httpx.AsyncClient() as client:
            exposition = (await client.get(f"http://127.0.0.1:{metrics_port}/metrics")).text
        letters = [DeadLettered.decode(r.value) for r in await read_since(settings, deadletter.TOPIC, start_dead)]

    [voice], [forwarded], [audio] = found["voice"], found["voice-forwarded"], found["audio"]
    assert isinstance(voice, enrichment.AudioTranscribed) and voice.text == "Hi, this is Dana Silva about order 4271."
    assert isinstance(forwarded, enrichment.AudioTranscribed) and forwarded.cached and forwarded.text == voice.text
    assert voice.model == "gpt-4o-mini-transcribe" and voice.chat_key == events["voice"].chat_key
    assert isinstance(audio, enrichment.AudioTranscribed) and not audio.cached
    [photo] = found["photo"]
    assert isinstance(photo, enrichment.ImageCaptioned) and "order 4271" in photo.caption
    [text_pdf], [scanned] = found["text-pdf"], found["scanned-pdf"]
    assert isinstance(text_pdf, enrichment.DocumentExtracted) and "INVOICE 2026-0193" in text_pdf.text
    assert text_pdf.model is None and [p.source for p in text_pdf.pages] == ["text_layer", "text_layer"]
    assert isinstance(scanned, enrichment.DocumentExtracted) and [p.source for p in scanned.pages] == ["model"]
    assert "sticker" not in found

    transcriptions = fake.calls("/v1/audio/transcriptions")
    voice_calls = [c for c in transcriptions if c.sha256 == sha256_file("voice_note.ogg")]
    assert len(voice_calls) == 1  # the duplicate cost nothing
    audio_calls = [c for c in transcriptions if c.sha256 == sha256_file("audio_clip.mp3")]
    assert [c.status for c in audio_calls] == [429, 200] and audio_calls[1].at - audio_calls[0].at >= 0.45
    chat_calls = fake.calls("/v1/chat/completions")
    assert len(chat_calls) == 2 and {c.model for c in chat_calls} == {"gpt-4o-mini"}  # the photo and the scanned page
    hits = re.search(r'^msgmem_enrichment_cache_hits_total\{stage="transcribe"\} (\S+)$', exposition, re.M)
    assert hits and float(hits.group(1)) >= 1  # more if a rebalance re-delivered a record: still no second call

    poison_calls = len([c for c in transcriptions if c.sha256 == poison_sha])
    assert poison_calls > 0 and poison_calls % 3 == 0  # 3 attempts (a re-delivery would try 3 more)
    [failed] = found["poison"]
    assert isinstance(failed, enrichment.EnrichmentFailed) and failed.attempts == 3
    [letter, *_] = [d for d in letters if d.stage == "transcribe" and media.decode_event(d.value).message_id in label]
    assert letter.attempts == 3 and letter.topic == media.TOPIC and "500" in letter.error

    # What it cost: the API's usage on each result, the cache hit on the forward, the metrics, the status.
    seconds = max(1, fixture_path("voice_note.ogg").stat().st_size // 2000)  # the fake's audio: 2000 bytes a second
    assert voice.usage is not None and (voice.usage.model, voice.usage.calls) == ("gpt-4o-mini-transcribe", 1)
    assert (voice.usage.input_tokens, voice.usage.output_tokens) == (10 * seconds, len(voice.text) // 4)
    assert forwarded.usage == Usage(model="gpt-4o-mini-transcribe", cache_hits=1)
    assert photo.usage is not None and (photo.usage.calls, photo.usage.input_tokens) == (1, 85)
    assert text_pdf.usage is None and scanned.usage is not None and (scanned.usage.calls, scanned.usage.pages) == (1, 1)

    def counter(name: str) -> float:
        [value] = [s.value for f in text_string_to_metric_families(exposition) for s in f.samples
                   if s.name == f"msgmem_ai_{name}_total" and s.labels == {"stage": "transcribe",
                                                                          "model": "gpt-4o-mini-transcribe"}]  # fmt: skip
        return value

    assert counter("calls") >= 2 and counter("cache_hits") >= 1  # voice and audio paid; the forward saved
    assert counter("input_tokens") >= 10 * seconds and counter("output_tokens") > 0
    assert counter("spend_usd") == pytest.approx(  # the tokens at the default list prices
        (counter("input_tokens") * 3.00 + counter("output_tokens") * 5.00) / 1e6
    )

    chat = Chat(channel=f"USAGE{run}")
    texts = [chat.received(f"{run}-m{n}", f"message {n}") for n in range(4)]
    await publish(settings, texts, messages.TOPIC, messages.encode_event)
    status = await collect(settings, 1)
    by_model = status.usage.by_model
    assert by_model[("transcribe", "gpt-4o-mini-transcribe")].calls == 2  # the events count each result once
    assert by_model[("caption", "gpt-4o-mini")].calls == 1 and by_model[("extract", "gpt-4o-mini")].pages == 1
    assert status.usage.messages == 4 and status.usage.spend_usd > 0
    assert f"estimated spend: ${status.usage.spend_usd:.4f} over 1 days, 4 messages: $" in render(status)
    assert "per 1,000 messages" in render(status)



async def test_without_an_api_key_results_are_skipped(settings: Settings, tmp_path: Path, clean_cache: None) -> None:
    store = LocalMediaStore(tmp_path / "media", "chat-media")
    await put_fixture(store, "voice_note.ogg")
    voice = stored_event("voice_note.ogg", "voice", store=store, message=f"{uuid.uuid4().hex}-nokey")
    start = {t: await end_offsets(settings, t) for t in TOPICS}
    await publish(settings, [voice])
    with running_stage("streams.transcribe", settings, tmp_path, OPENAI_API_KEY="", MEDIA_LOCAL_DIR=str(store.root)):
        found = await eventually(lambda: results(settings, start, {voice.message_id}), timeout=60)
    [skipped] = found[voice.message_id]
    assert isinstance(skipped, enrichment.EnrichmentSkipped) and skipped.reason == "no_api_key"
