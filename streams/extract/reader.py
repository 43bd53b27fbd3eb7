"""The ``PageReader`` port (a page image in, its text out) and its OpenAI-compatible adapter."""

from __future__ import annotations

import asyncio
from typing import Protocol

from openai import AsyncOpenAI

from contracts.usage import Usage
from streams.caption.captioner import data_url, describe_image

PROMPT = (
    "This is one page of a PDF sent in a WhatsApp chat. Transcribe all of its text in reading order, "
    "exactly as written, keeping line breaks. Answer with the text only; if there is none, answer with nothing."
)
MAX_TOKENS = 2000


class PageReader(Protocol):
    async def read_page(self, png: bytes) -> tuple[str, Usage]:
        """The page's text and the usage of the call (``pages`` 1)."""


class OpenAIPageReader:
    """Pages are sent with detail ``high``: reading small print needs the resolution."""

    def __init__(self, client: AsyncOpenAI, model: str, limit: asyncio.Semaphore) -> None:
        self._client, self._model, self._limit = client, model, limit

    async def read_page(self, png: bytes) -> tuple[str, Usage]:
        async with self._limit:
            return await describe_image(
                self._client, self._model, PROMPT, data_url(png, "image/png"), detail="high",
                max_tokens=MAX_TOKENS, what="PDF page", pages=1,
            )  # fmt: skip
