"""The retention sweep's MediaExpired shares wa.media with MediaStored: every stage reading the
topic (transcribe, caption, extract; embed reads their results, not wa.media) passes over it,
with no output and no dead letter, whether or not the record names its type in ``mm-type``."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from contracts import media, processes
from streams.caption.agent import make_handler as caption_handler
from streams.caption.captioner import OpenAICaptioner
from streams.caption.logic import MAX_TOKENS, PROMPT
from streams.common.outputs import RecordingOutputs
from streams.common.records import InputRecord
from streams.common.runner import RetryPolicy, StageRunner
from streams.extract.agent import ExtractHandler, config
from streams.extract.reader import OpenAIPageReader
from streams.media.logic import ExpiredRow, expired, output
from streams.transcribe.agent import make_handler as transcribe_handler
from streams.transcribe.transcriber import OpenAITranscriber
from tests.fakes.events import AT, stored_event
from tests.unit.enrichment.conftest import Env

FILES = {"voice": "voice_note.ogg", "image": "receipt_photo.jpg", "document": "invoice_text.pdf"}


def handlers(env: Env) -> dict[str, object]:
    s, sem = env.settings, asyncio.Semaphore(4)
    captioner = OpenAICaptioner(env.client, s.vision_model, sem, prompt=PROMPT, max_tokens=MAX_TOKENS)
    cfg, options = config(s)
    return {
        processes.TRANSCRIBE.name: transcribe_handler(s, env.store, OpenAITranscriber(env.client, s.transcription_model, sem),
                                                      env.results),
        processes.CAPTION.name: caption_handler(s, env.store, captioner, env.results),
        processes.EXTRACT.name: ExtractHandler(cfg, options, env.store, OpenAIPageReader(env.client, s.pdf_extraction_model,
                                                                                         sem), env.results),
    }  # fmt: skip


def expiry_records(kind: str) -> list[InputRecord]:
    stored = stored_event(FILES[kind], kind)
    row = ExpiredRow(stored.media_id, stored.message_id, stored.chat_key, stored.kind, stored.size_bytes, stored.sha256,
                     stored.bucket, stored.path, stored.stored_at, stored.expires_at or AT)  # fmt: skip
    out = output(expired(row, object_deleted=True, now=AT))
    record = InputRecord(out.topic, 0, 7, out.key, out.value, out.headers)
    return [record, dataclasses.replace(record, headers=())]  # a record without mm-type is decoded


@pytest.mark.parametrize("kind", sorted(FILES))
async def test_every_wa_media_stage_passes_over_an_expiry(env: Env, kind: str) -> None:
    assert {p.name for p in processes.ALL if media.TOPIC in p.inputs and p.kind == "stage"} == set(handlers(env))
    for stage, handler in handlers(env).items():
        for record in expiry_records(kind):
            assert await handler(record) == [], stage  # type: ignore[operator]
            writer = RecordingOutputs()
            runner = StageRunner(stage, handler, writer, policy=RetryPolicy(1, 0.01, 0.01),  # type: ignore[arg-type]
                                 give_up=handler.give_up)  # type: ignore[attr-defined]  # fmt: skip
            await runner.run_batch([record])
            assert writer.written == [], stage
    assert env.fake.calls() == []
