"""Pure rules of the embed stage: which inputs carry text for which source, and the events
that text becomes. No I/O.

- wa.messages: MessageReceived / MessageSent with a body or a caption -> source ``text``
  (the message's time is its version); MessageEdited with a ``new_text`` -> ``text`` again
  (the edit's time; an empty text clears the source); MessageDeleted -> remove every
  source. Statuses, reactions and the rest are skipped by their ``mm-type`` header
  without being decoded.
- wa.transcripts AudioTranscribed -> ``transcript``; wa.captions ImageCaptioned ->
  ``caption``; wa.documents DocumentExtracted -> ``document`` (each versioned by its
  ``produced_at``, so a later re-run with a better model replaces the earlier text).
  Their skipped and failed events carry no text and are ignored.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from contracts import embeddings, enrichment, messages, processes
from contracts.embeddings import (
    ChunksReplaced, EmbeddedChunk, EmbeddingEvent, EmbeddingFailed, EmbeddingSkipped, EmbeddingsRemoved, SkipReason,
    Source,
)  # fmt: skip
from contracts.envelope import Envelope
from contracts.errors import describe_error
from contracts.ids import event_id
from contracts.usage import Usage
from streams.common.records import InputRecord, Output
from streams.embed.chunking import Chunked

INPUT_TOPICS: tuple[str, ...] = processes.EMBED.inputs
_MESSAGE_TYPES = frozenset({b"message_received", b"message_sent", b"message_edited", b"message_deleted"})
_DERIVED: dict[str, tuple[str, Source, str]] = {  # topic -> (event type, source, text field)
    enrichment.TRANSCRIPTS_TOPIC: ("audio_transcribed", "transcript", "text"),
    enrichment.CAPTIONS_TOPIC: ("image_captioned", "caption", "caption"),
    enrichment.DOCUMENTS_TOPIC: ("document_extracted", "document", "text"),
}


@dataclass(frozen=True)
class EmbedConfig:
    model: str
    dimensions: int
    tokenizer: str
    chunk_size: int
    chunk_overlap: int
    max_chunks: int


@dataclass(frozen=True)
class NewText:
    """Source ``source`` of message ``message_id`` now reads ``text`` (as of ``version_at``)."""

    envelope: Envelope  # the input event
    message_id: str
    provider_message_id: str
    source: Source
    text: str
    version_at: datetime

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()


@dataclass(frozen=True)
class Deleted:
    envelope: Envelope
    message_id: str
    provider_message_id: str


def read(record: InputRecord) -> NewText | Deleted | None:
    """What a consumed record means for the embeddings; None: nothing. Raises on poison."""
    kind = dict(record.headers).get("mm-type")
    if record.topic == messages.TOPIC:
        if kind is not None and kind not in _MESSAGE_TYPES:
            return None
        return _from_message(messages.decode_event(record.value))
    derived = _DERIVED.get(record.topic)
    if derived is None:
        raise ValueError(f"the embed stage does not read {record.topic}")
    event_type, source, field = derived
    if kind is not None and kind != event_type.encode():
        return None
    event = enrichment.CODECS[record.topic].decode(record.value)
    if event.type != event_type:
        return None
    return NewText(event, event.message_id, event.provider_message_id, source, getattr(event, field),
                   event.produced_at)  # fmt: skip


def _from_message(event: messages.MessageEvent) -> NewText | Deleted | None:
    if isinstance(event, messages.MessageReceived | messages.MessageSent):
        text = event.text if event.text is not None else event.caption
        if not text or not text.strip():
            return None  # nothing typed: nothing to embed, nothing to clear
        return NewText(event, event.message_id, event.provider_message_id, "text", text, event.occurred_at)
    if isinstance(event, messages.MessageEdited):
        if event.new_text is None:
            return None  # the provider did not say what it became
        return NewText(event, event.target_message_id, event.target_provider_message_id, "text", event.new_text,
                       event.occurred_at)  # fmt: skip
    if isinstance(event, messages.MessageDeleted):
        return Deleted(event, event.target_message_id, event.target_provider_message_id)
    return None


def _base(work: NewText | Deleted, event_type: str, *qualifiers: str) -> dict[str, Any]:
    e = work.envelope
    return {
        "event_id": event_id(e.provider, e.channel_id, work.provider_message_id, event_type, *qualifiers),
        "chat_key": e.chat_key, "occurred_at": e.occurred_at, "received_at": e.received_at,
        "provider": e.provider, "channel_id": e.channel_id, "delivery_id": e.delivery_id,
        "message_id": work.message_id, "provider_message_id": work.provider_message_id,
    }  # fmt: skip


def replaced(
    work: NewText, cfg: EmbedConfig, chunked: Chunked, vectors: list[str], *, now: datetime, usage: Usage | None = None
) -> ChunksReplaced:
    """The id covers everything that decides the chunks, so a replay is the same event."""
    qualifiers = (
        work.source, work.sha256, work.version_at.isoformat(), cfg.model, str(cfg.dimensions), cfg.tokenizer,
        f"{cfg.chunk_size}/{cfg.chunk_overlap}/{cfg.max_chunks}",
    )  # fmt: skip
    chunks = tuple(
        EmbeddedChunk(index=c.index, start_token=c.start_token, end_token=c.end_token, text=c.text, embedding=v)
        for c, v in zip(chunked.chunks, vectors, strict=True)
    )
    return ChunksReplaced(
        **_base(work, "chunks_replaced", *qualifiers), source=work.source, version_at=work.version_at,
        text_sha256=work.sha256, token_count=chunked.token_count, truncated=chunked.truncated, model=cfg.model,
        dimensions=cfg.dimensions, tokenizer=cfg.tokenizer, chunk_size_tokens=cfg.chunk_size,
        chunk_overlap_tokens=cfg.chunk_overlap, chunks=chunks, input_event_id=work.envelope.event_id,
        produced_at=now, usage=usage,
    )  # fmt: skip


def removed(work: Deleted) -> EmbeddingsRemoved:
    return EmbeddingsRemoved(**_base(work, "embeddings_removed"), deleted_at=work.envelope.occurred_at,
                             input_event_id=work.envelope.event_id)  # fmt: skip


def skipped(work: NewText, cfg: EmbedConfig, reason: SkipReason, detail: str) -> EmbeddingSkipped:
    return EmbeddingSkipped(
        **_base(work, "embedding_skipped", work.source, work.sha256, cfg.model), source=work.source, reason=reason,
        detail=detail, input_event_id=work.envelope.event_id,
    )  # fmt: skip


def failed(work: NewText, cfg: EmbedConfig, error: BaseException, attempts: int) -> EmbeddingFailed:
    return EmbeddingFailed(
        **_base(work, "embedding_failed", work.source, work.sha256, cfg.model), source=work.source,
        error_type=type(error).__name__, error=describe_error(error)[:1000], attempts=attempts,
        input_event_id=work.envelope.event_id,
    )  # fmt: skip


def output(event: EmbeddingEvent) -> Output:
    return Output(embeddings.TOPIC, event.chat_key.encode(), embeddings.encode_event(event),
                  (("mm-type", event.type.encode()),))  # fmt: skip
