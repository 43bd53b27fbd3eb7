"""wa.transcripts, wa.captions, wa.documents: text derived from stored media.

Each topic is written by one enrichment stage (transcribe, caption, extract) from the
MediaStored events of wa.media, keyed by ``chat_key``, and carries ``message_id`` and
``media_id`` so the projector can fill ``chat_messages.transcript / caption /
extracted_text`` and the matching ``chat_media`` columns. One module for the three
topics because they share every field but the result; each topic still has its own
discriminated union and codec.

A stage that cannot or may not call its model records ``EnrichmentSkipped`` with the
reason; one whose retries ran out records ``EnrichmentFailed`` (the input is also in
wa.deadletter). ``cached`` True means the result was reused from an earlier identical
file (same SHA-256, stage and model) and cost nothing. ``usage`` (contracts/usage.py) is
what the model calls behind a result cost: absent on events written before it existed.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AwareDatetime, Field

from contracts.envelope import Envelope, EventCodec, Frozen, Upcaster
from contracts.media import MediaKind
from contracts.usage import Usage

TRANSCRIPTS_TOPIC = "wa.transcripts"
CAPTIONS_TOPIC = "wa.captions"
DOCUMENTS_TOPIC = "wa.documents"

Stage = Literal["transcribe", "caption", "extract"]
SkipReason = Literal[
    "no_api_key",  # OPENAI_API_KEY is not set
    "disabled",  # the stage's ENABLE_* setting is off
    "too_large",  # above the stage's size limit (OpenAI: 25 MB of audio)
    "unsupported",  # a format the model does not take
    "unreadable",  # the file is damaged or encrypted
]


class _Derived(Envelope):
    """Common to every result; the envelope is the message's (chat, occurred_at, delivery)."""

    message_id: str  # chat_messages.id
    media_id: str  # chat_media.id
    provider_message_id: str
    kind: MediaKind
    mime_type: str | None = None
    sha256: str
    stage: Stage
    model: str | None = None  # None when no model was involved
    cached: bool = False
    produced_at: AwareDatetime


class AudioTranscribed(_Derived):
    type: Literal["audio_transcribed"] = "audio_transcribed"
    text: str
    language: str | None = None
    duration_seconds: float | None = None
    usage: Usage | None = None


class ImageCaptioned(_Derived):
    type: Literal["image_captioned"] = "image_captioned"
    caption: str  # a description and any legible text
    usage: Usage | None = None


class PageText(Frozen):
    number: int  # 1-based
    source: Literal["text_layer", "model", "skipped"]
    chars: int


class DocumentExtracted(_Derived):
    """``text`` joins the pages in order. ``complete`` False: some pages had no text layer and were not
    sent to a model (``skipped_reason``, or beyond PDF_MAX_MODEL_PAGES); a later run may fill them."""

    type: Literal["document_extracted"] = "document_extracted"
    text: str
    page_count: int
    pages: tuple[PageText, ...] = ()
    complete: bool = True
    skipped_reason: SkipReason | None = None
    truncated: bool = False
    usage: Usage | None = None  # every page sent to the model, summed; None when no page was


class EnrichmentSkipped(_Derived):
    type: Literal["enrichment_skipped"] = "enrichment_skipped"
    reason: SkipReason
    detail: str = ""


class EnrichmentFailed(_Derived):
    type: Literal["enrichment_failed"] = "enrichment_failed"
    error_type: str
    error: str
    attempts: int


TranscriptEvent = Annotated[AudioTranscribed | EnrichmentSkipped | EnrichmentFailed, Field(discriminator="type")]
CaptionEvent = Annotated[ImageCaptioned | EnrichmentSkipped | EnrichmentFailed, Field(discriminator="type")]
DocumentEvent = Annotated[DocumentExtracted | EnrichmentSkipped | EnrichmentFailed, Field(discriminator="type")]
DerivedEvent = AudioTranscribed | ImageCaptioned | DocumentExtracted | EnrichmentSkipped | EnrichmentFailed

UPCASTERS: dict[tuple[str, int], Upcaster] = {}

TRANSCRIPT_CODEC: EventCodec[TranscriptEvent] = EventCodec(
    TranscriptEvent, (AudioTranscribed, EnrichmentSkipped, EnrichmentFailed), UPCASTERS
)
CAPTION_CODEC: EventCodec[CaptionEvent] = EventCodec(
    CaptionEvent, (ImageCaptioned, EnrichmentSkipped, EnrichmentFailed), UPCASTERS
)
DOCUMENT_CODEC: EventCodec[DocumentEvent] = EventCodec(
    DocumentEvent, (DocumentExtracted, EnrichmentSkipped, EnrichmentFailed), UPCASTERS
)
CODECS: dict[str, EventCodec] = {  # type: ignore[type-arg]
    TRANSCRIPTS_TOPIC: TRANSCRIPT_CODEC,
    CAPTIONS_TOPIC: CAPTION_CODEC,
    DOCUMENTS_TOPIC: DOCUMENT_CODEC,
}


def encode_event(event: DerivedEvent) -> bytes:
    return TRANSCRIPT_CODEC.encode(event)


def decode_transcript(data: bytes) -> TranscriptEvent:
    return TRANSCRIPT_CODEC.decode(data)


def decode_caption(data: bytes) -> CaptionEvent:
    return CAPTION_CODEC.decode(data)


def decode_document(data: bytes) -> DocumentEvent:
    return DOCUMENT_CODEC.decode(data)
