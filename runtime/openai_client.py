"""The OpenAI client of an enrichment stage and the mapping of its errors onto our retry policy.

The client is built in the composition root (never at import), pointed at OPENAI_BASE_URL
(any OpenAI-compatible server) with the SDK's own retries off: the StageRunner's tenacity
loop owns retries, so the attempts and backoff in settings are the whole story. Without
OPENAI_API_KEY there is no client and the stages record results as skipped.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import openai
from openai import AsyncOpenAI

from contracts.settings import Settings
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
