"""The OpenAI client of an enrichment stage and the mapping of its errors onto our retry policy.

The client is built in the composition root (never at import), pointed at OPENAI_BASE_URL
(any OpenAI-compatible server) with the SDK's own retries off: the StageRunner's tenacity
loop owns retries, so the attempts and backoff in settings are the whole story. Without
OPENAI_API_KEY there is no client and the stages record results as skipped. ``*_usage``
read the ``usage`` block an answer carries into a ``contracts.usage.Usage`` of one call;
when a server sends none, what is known locally stands in (an audio file's duration).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import openai
from openai import AsyncOpenAI

from contracts.settings import Settings
from contracts.usage import Usage
from runtime.http_headers import retry_after
from runtime.errors import TransientError


class ModelRejected(Exception):
    """The API refused the input for good (400, 401, 403, 404, 413, 422): poison, dead-lettered at once."""


def make_openai(settings: Settings) -> AsyncOpenAI | None:
    if settings.openai_api_key is None or not settings.openai_api_key.get_secret_value():
        return None
    return AsyncOpenAI(
        api_key=settings.openai_api_key.get_secret_value(),
        base_url=settings.openai_base_url,
        timeout=settings.openai_timeout_seconds,
        max_retries=0,
    )


@contextmanager
def api_errors(what: str) -> Iterator[None]:
    """429, 5xx, timeouts and connection errors become ``TransientError`` (with a 429's Retry-After)."""
    try:
        yield
    except openai.APIStatusError as exc:
        status = exc.status_code
        if status in (408, 409, 425, 429) or status >= 500:
            raise TransientError(f"{what}: HTTP {status}", retry_after=retry_after(exc.response.headers)) from exc
        raise ModelRejected(f"{what}: HTTP {status}: {exc.message}") from exc
    except openai.APIConnectionError as exc:  # includes APITimeoutError
        raise TransientError(f"{what}: {type(exc).__name__}") from exc


def _count(block: Any, name: str) -> int:
    value = getattr(block, name, None) if block is not None else None
    return value if isinstance(value, int) and value >= 0 else 0


def chat_usage(model: str, reply: Any, *, pages: int = 0) -> Usage:
    """One Chat Completions call: ``usage.prompt_tokens`` / ``completion_tokens``."""
    block = getattr(reply, "usage", None)
    return Usage(model=model, calls=1, input_tokens=_count(block, "prompt_tokens"),
                 output_tokens=_count(block, "completion_tokens"), pages=pages)  # fmt: skip


def transcription_usage(model: str, result: Any, known_seconds: float | None) -> Usage:
    """One transcription call: ``usage`` of type ``tokens`` (input/output tokens) or ``duration``
    (seconds, whisper-1); the audio's length is the API's duration, else ``known_seconds``."""
    block = getattr(result, "usage", None)
    seconds = getattr(block, "seconds", None) if getattr(block, "type", None) == "duration" else None
    seconds = seconds if seconds is not None else getattr(result, "duration", None)
    seconds = seconds if isinstance(seconds, int | float) and seconds >= 0 else known_seconds
    return Usage(model=model, calls=1, input_tokens=_count(block, "input_tokens"),
                 output_tokens=_count(block, "output_tokens"), audio_seconds=float(seconds or 0))  # fmt: skip


def embeddings_tokens(result: Any) -> int | None:
    """The ``usage.prompt_tokens`` of an embeddings answer; None when the server sent none."""
    block = getattr(result, "usage", None)
    value = getattr(block, "prompt_tokens", None) if block is not None else None
    return value if isinstance(value, int) and value >= 0 else None
