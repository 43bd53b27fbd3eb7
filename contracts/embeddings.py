"""wa.embeddings: a message's text cut into token chunks, each with its vector.

Keyed by ``chat_key``. Written by the embed stage from wa.messages (typed text and its
edits, deletions), wa.transcripts, wa.captions and wa.documents; consumed by the
embeddings projection (``message_embeddings``), which serves recall.

One message can have text from up to four *sources*, each arriving on its own and each
replaced on its own:

- ``text``: what a person typed, a text message's body or a media message's caption (and
  their edits);
- ``transcript``: what was said in a voice note or audio file (wa.transcripts);
- ``caption``: what an image shows, described by a vision model (wa.captions);
- ``document``: the text of a PDF (wa.documents).

``ChunksReplaced`` means "the chunks of message M for source S are now exactly these":
no chunks clears the source (an edit to an empty text). It is self-contained, so the
stage keeps no state and a projection applies it whole, in one transaction. ``version_at``
orders replacements of the same (message, source) whatever order they are logged in:
the message's time for the original text, the edit's time for an edit, the enrichment's
``produced_at`` for derived text. ``EmbeddingsRemoved`` (the message was deleted) removes
every source for good: a replacement logged after it is ignored.

Offsets are in tokens of ``tokenizer`` within the source's text: chunk i covers tokens
``[start_token, end_token)``; consecutive chunks overlap by ``chunk_overlap_tokens``.
``embedding`` is the vector as base64 of little-endian float32 (what the OpenAI API sends
with ``encoding_format=base64``): a quarter of the JSON float list's size, so a message of
EMBEDDINGS_MAX_CHUNKS chunks stays well inside a Kafka record.

Event ids are derived from (message, source, text hash, model, dimensions, chunking): a
replay or a redelivery of the same input is the same event, a different model or text a
new one. ``EmbeddingSkipped`` (no API key) and ``EmbeddingFailed`` (retries ran out; the
input is also in wa.deadletter) record why a text has no vectors; projections ignore them.
"""

from __future__ import annotations

import base64
import sys
from array import array
from typing import Annotated, Literal

from pydantic import AwareDatetime, Field

from contracts.envelope import Envelope, EventCodec, Frozen, Upcaster
from contracts.usage import Usage

TOPIC = "wa.embeddings"

Source = Literal["text", "caption", "transcript", "document"]
# The order of a message's chunks across sources (chunk_index runs through them in this order).
SOURCES: tuple[Source, ...] = ("text", "caption", "transcript", "document")
SkipReason = Literal["no_api_key"]


class EmbeddedChunk(Frozen):
    index: int = Field(ge=0)  # 0-based within the source
    start_token: int = Field(ge=0)
    end_token: int = Field(gt=0)
    text: str
    embedding: str  # base64 of little-endian float32

    def vector(self) -> array:  # type: ignore[type-arg]
        return decode_vector(self.embedding)


class _MessageText(Envelope):
    """The envelope is the input event's; ``message_id`` is ``chat_messages.id``."""

    message_id: str
    provider_message_id: str


class ChunksReplaced(_MessageText):
    type: Literal["chunks_replaced"] = "chunks_replaced"
    source: Source
    version_at: AwareDatetime
    text_sha256: str  # hex, of the source's whole text (UTF-8)
    token_count: int = Field(ge=0)
    truncated: bool = False  # the text had more than max_chunks chunks; the rest is not embedded
    model: str
    dimensions: int = Field(ge=1)
    tokenizer: str
    chunk_size_tokens: int = Field(ge=1)
    chunk_overlap_tokens: int = Field(ge=0)
    chunks: tuple[EmbeddedChunk, ...] = ()
    input_event_id: str
    produced_at: AwareDatetime
    usage: Usage | None = None  # this event's share of the embeddings calls (contracts/usage.py)


class EmbeddingsRemoved(_MessageText):
    """The message was deleted: every chunk of every source goes, and none comes back."""

    type: Literal["embeddings_removed"] = "embeddings_removed"
    deleted_at: AwareDatetime
    input_event_id: str


class EmbeddingSkipped(_MessageText):
    type: Literal["embedding_skipped"] = "embedding_skipped"
    source: Source
    reason: SkipReason
    detail: str = ""
    input_event_id: str


class EmbeddingFailed(_MessageText):
    type: Literal["embedding_failed"] = "embedding_failed"
    source: Source
    error_type: str
    error: str
    attempts: int
    input_event_id: str


EVENT_MODELS = (ChunksReplaced, EmbeddingsRemoved, EmbeddingSkipped, EmbeddingFailed)
EmbeddingEvent = Annotated[
    ChunksReplaced | EmbeddingsRemoved | EmbeddingSkipped | EmbeddingFailed, Field(discriminator="type")
]

UPCASTERS: dict[tuple[str, int], Upcaster] = {}

CODEC: EventCodec[EmbeddingEvent] = EventCodec(EmbeddingEvent, EVENT_MODELS, UPCASTERS)


def encode_event(event: EmbeddingEvent) -> bytes:
    return CODEC.encode(event)


def decode_event(data: bytes) -> EmbeddingEvent:
    """Bytes from wa.embeddings -> the current model; raises ``EventDecodeError`` on poison."""
    return CODEC.decode(data)


def encode_vector(values: array | list[float]) -> str:  # type: ignore[type-arg]
    """Floats -> base64 of little-endian float32."""
    packed = values if isinstance(values, array) and values.typecode == "f" else array("f", values)
    if sys.byteorder != "little":  # pragma: no cover - every platform we run on is little-endian
        packed = array("f", packed)
        packed.byteswap()
    return base64.b64encode(packed.tobytes()).decode()


def decode_vector(data: str) -> array:  # type: ignore[type-arg]
    """Base64 of little-endian float32 -> array('f')."""
    raw = base64.b64decode(data)
    if len(raw) % 4:
        raise ValueError(f"an embedding of {len(raw)} bytes is not float32")
    values = array("f", raw)
    if sys.byteorder != "little":  # pragma: no cover
        values.byteswap()
    return values

