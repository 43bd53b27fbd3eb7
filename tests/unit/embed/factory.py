"""Inputs of the embed stage for one chat: wa.messages events (tests.unit.projections.factory.Chat),
transcripts, captions and document text, as events and as consumed records."""

from __future__ import annotations

import asyncio
from typing import Any

from contracts import enrichment, media, messages
from contracts.embeddings import encode_vector
from contracts.enrichment import AudioTranscribed, DocumentExtracted, ImageCaptioned
from contracts.ids import event_id
from runtime.embedder import Embedded
from streams.common.records import InputRecord
from tests.unit.projections.factory import Chat, at


def _derived(chat: Chat, pmid: str, kind: str, stage: str, event_type: str, t: float) -> dict[str, Any]:
    mid = chat.mid(pmid)
    return {
        "event_id": event_id(chat.provider, chat.channel, pmid, event_type, f"model-{t}"), "chat_key": chat.key,
        "occurred_at": at(0), "received_at": at(1), "provider": chat.provider, "channel_id": chat.channel,
        "delivery_id": f"dlv-{pmid}", "message_id": mid, "media_id": media.media_id(mid), "provider_message_id": pmid,
        "kind": kind, "mime_type": None, "sha256": "ab" * 32, "stage": stage, "model": "fake", "produced_at": at(t),
    }  # fmt: skip


def transcribed(chat: Chat, pmid: str, text: str, t: float = 10) -> AudioTranscribed:
    return AudioTranscribed(**_derived(chat, pmid, "voice", "transcribe", "audio_transcribed", t), text=text)


def captioned(chat: Chat, pmid: str, caption: str, t: float = 10) -> ImageCaptioned:
    return ImageCaptioned(**_derived(chat, pmid, "image", "caption", "image_captioned", t), caption=caption)


def extracted(chat: Chat, pmid: str, text: str, t: float = 10) -> DocumentExtracted:
    return DocumentExtracted(**_derived(chat, pmid, "document", "extract", "document_extracted", t), text=text,
                             page_count=1)  # fmt: skip


TOPIC_OF = {
    AudioTranscribed: enrichment.TRANSCRIPTS_TOPIC, ImageCaptioned: enrichment.CAPTIONS_TOPIC,
    DocumentExtracted: enrichment.DOCUMENTS_TOPIC,
}  # fmt: skip


def topic_of(event: Any) -> str:
    return TOPIC_OF.get(type(event), messages.TOPIC)


def record(event: Any, offset: int = 0) -> InputRecord:
    topic = topic_of(event)
    value = messages.encode_event(event) if topic == messages.TOPIC else enrichment.encode_event(event)
    return InputRecord(topic, 0, offset, event.chat_key.encode(), value, (("mm-type", event.type.encode()),))


class Recorder:
    """A fake embeddings call: records each batch, fails with ``fail`` first, vector = [len(text), 1]."""

    def __init__(self, fail: list[BaseException] | None = None) -> None:
        self.batches: list[list[str]] = []
        self.fail = fail or []

    async def __call__(self, texts: list[str]) -> Embedded:
        self.batches.append(list(texts))
        await asyncio.sleep(0)
        if self.fail:
            raise self.fail.pop(0)
        return Embedded([encode_vector([float(len(t)), 1.0]) for t in texts], sum(len(t.split()) for t in texts))
