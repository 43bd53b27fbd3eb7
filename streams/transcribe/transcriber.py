"""The ``Transcriber`` port and its OpenAI adapter (``POST /v1/audio/transcriptions``)."""

from __future__ import annotations

import asyncio
from typing import Protocol

from openai import AsyncOpenAI

from streams.common.enrichment.cache import Result
from runtime.openai_client import api_errors, transcription_usage


class Transcriber(Protocol):
    async def transcribe(self, data: bytes, filename: str, mime: str) -> Result:
        """``{"text": ..., "language": ... | None, "duration_seconds": ... | None, "usage": {Usage fields}}``."""


class OpenAITranscriber:
    """At most ``limit``'s worth of calls in flight, shared by the whole worker."""

    def __init__(self, client: AsyncOpenAI, model: str, limit: asyncio.Semaphore) -> None:
        self._client = client
        self._model = model
        self._limit = limit

    async def transcribe(self, data: bytes, filename: str, mime: str) -> Result:
        async with self._limit:
            with api_errors("transcription"):
                result = await self._client.audio.transcriptions.create(
                    model=self._model, file=(filename, data, mime), response_format="json"
                )
        text = result if isinstance(result, str) else result.text
        language = getattr(result, "language", None)
        languages = getattr(result, "languages", None)
        if language is None and languages:
            first = languages[0]
            language = getattr(first, "language", None) or getattr(first, "code", None)
        usage = transcription_usage(self._model, result, None)
        return {"text": text.strip(), "language": language, "duration_seconds": getattr(result, "duration", None),
                "usage": usage.model_dump(mode="json")}  # fmt: skip
