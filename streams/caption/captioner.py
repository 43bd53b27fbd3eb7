"""The ``Captioner`` port and its adapter: an OpenAI-compatible Chat Completions call with the image
as a data URL (the one image input every OpenAI-compatible vision server takes)."""

from __future__ import annotations

import asyncio
import base64
from typing import Literal, Protocol

from openai import AsyncOpenAI

from streams.common.enrichment.cache import Result
from contracts.usage import Usage
from runtime.openai_client import ModelRejected, api_errors, chat_usage


class Captioner(Protocol):
    async def caption(self, data: bytes, mime: str) -> Result:
        """``{"caption": ..., "usage": {Usage fields}}``."""


def data_url(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


async def describe_image(
    client: AsyncOpenAI, model: str, prompt: str, image_url: str, *, detail: str, max_tokens: int, what: str,
    pages: int = 0,
) -> tuple[str, Usage]:
    """One user message with the prompt and the image; the reply's text and the call's usage."""
    with api_errors(what):
        reply = await client.chat.completions.create(
            model=model,
            max_tokens=max_tokens,
            messages=[{
                "role": "user",
                "content": [
                    {"type": "text", "text": prompt},
                    {"type": "image_url", "image_url": {"url": image_url, "detail": detail}},
                ],
            }],  # fmt: skip
        )
    if not reply.choices or reply.choices[0].message.content is None:
        raise ModelRejected(f"{what}: the model answered no text")
    return reply.choices[0].message.content.strip(), chat_usage(model, reply, pages=pages)


class OpenAICaptioner:
    def __init__(
        self, client: AsyncOpenAI, model: str, limit: asyncio.Semaphore, *, prompt: str, max_tokens: int,
        detail: Literal["low", "high", "auto"] = "low",
    ) -> None:  # fmt: skip
        self._client, self._model, self._limit = client, model, limit
        self._prompt, self._max_tokens, self._detail = prompt, max_tokens, detail

    async def caption(self, data: bytes, mime: str) -> Result:
        async with self._limit:
            text, usage = await describe_image(
                self._client, self._model, self._prompt, data_url(data, mime),
                detail=self._detail, max_tokens=self._max_tokens, what="caption",
            )  # fmt: skip
        return {"caption": text, "usage": usage.model_dump(mode="json")}
