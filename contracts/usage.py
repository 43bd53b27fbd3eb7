"""What an AI call cost: the ``usage`` an event records, and the price table that turns it into dollars.

``Usage`` rides on the events that paid for a model (AudioTranscribed, ImageCaptioned,
DocumentExtracted, ChunksReplaced), taken from the API's own ``usage`` blocks where it
sends them: ``calls`` made, ``input_tokens`` / ``output_tokens``, ``audio_seconds`` of
audio sent, ``pages`` of a PDF sent to a vision model. A result reused from an earlier
identical file (``cached``) made no call: zero calls and tokens, one ``cache_hits``. The
embed stage batches many texts into one call; each event is charged its texts' share of
the tokens, and a call is charged to the event whose text opened the batch, so the sums
over events are the calls and tokens paid.

``Price`` is a model's list price as configured (AI_PRICES): every rate applies to its
quantity, so configure only the ones your contract bills by. The defaults are OpenAI's
public list prices for the default models; check your contract.
"""

from __future__ import annotations

from pydantic import Field

from contracts.envelope import Frozen


class Usage(Frozen):
    model: str
    calls: int = Field(0, ge=0)
    input_tokens: int = Field(0, ge=0)
    output_tokens: int = Field(0, ge=0)
    audio_seconds: float = Field(0.0, ge=0)
    pages: int = Field(0, ge=0)
    cache_hits: int = Field(0, ge=0)  # results (or embedded texts) reused instead of paid for


class Price(Frozen):
    """USD. A rate left at 0 is not billed."""

    input_per_1m_tokens: float = Field(0.0, ge=0)
    output_per_1m_tokens: float = Field(0.0, ge=0)
    per_audio_minute: float = Field(0.0, ge=0)
    per_page: float = Field(0.0, ge=0)
    per_call: float = Field(0.0, ge=0)


# OpenAI list prices (USD) of the default models, from openai.com/api/pricing. The gpt-4o
# transcribe models bill tokens (their input tokens are audio tokens), whisper-1 the minute.
DEFAULT_PRICES: dict[str, Price] = {
    "gpt-4o-mini-transcribe": Price(input_per_1m_tokens=3.00, output_per_1m_tokens=5.00),
    "gpt-4o-transcribe": Price(input_per_1m_tokens=6.00, output_per_1m_tokens=10.00),
    "whisper-1": Price(per_audio_minute=0.006),
    "gpt-4o-mini": Price(input_per_1m_tokens=0.15, output_per_1m_tokens=0.60),
    "text-embedding-3-small": Price(input_per_1m_tokens=0.02),
    "text-embedding-3-large": Price(input_per_1m_tokens=0.13),
}


def spend(usage: Usage, price: Price | None) -> float:
    """Estimated USD of ``usage`` at ``price``; 0 for a model without a price."""
    if price is None:
        return 0.0
    return (
        usage.input_tokens * price.input_per_1m_tokens / 1_000_000
        + usage.output_tokens * price.output_per_1m_tokens / 1_000_000
        + usage.audio_seconds / 60 * price.per_audio_minute
        + usage.pages * price.per_page
        + usage.calls * price.per_call
    )


COUNTS = ("calls", "input_tokens", "output_tokens", "audio_seconds", "pages", "cache_hits")  # the summable fields


def combine(model: str, parts: list[Usage]) -> Usage:
    """The sum of several calls' usage (the pages of one PDF)."""
    return Usage(model=model, **{name: sum(getattr(p, name) for p in parts) for name in COUNTS})
