"""A local OpenAI-compatible server: what the enrichment stages (and the embedder) call.

Endpoints, as OpenAI shapes them: ``POST /v1/audio/transcriptions`` (multipart),
``POST /v1/chat/completions`` (image_url and file content parts), ``POST /v1/responses``
(input_image / input_file parts), ``POST /v1/embeddings`` (deterministic bag-of-words unit
vectors, so texts sharing words are similar; ``dimensions``, float or base64; each call
records its input count), ``GET /v1/models``. Requests need ``Authorization: Bearer
<api_key>``. Answers are deterministic per input (by the SHA-256 of the file or image), can
be set per file (``transcripts``, ``descriptions``), and every call is recorded with the
model and that SHA-256. ``latency`` delays every model call; ``faults`` inject 429 with
Retry-After, 500 or slow answers (a delay beyond the client's timeout is a timeout).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
import struct
import time
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from tests.fakes.faults import Call, CallLog, Fault, Faults, now

DEFAULT_DIMENSIONS = {"text-embedding-3-large": 3072}
_WORD = re.compile(r"\w+")
_SLOTS = 8  # positions per word


def _error(status: int, message: str, code: str, retry_after: float | None = None) -> JSONResponse:
    headers = {"retry-after": f"{retry_after:g}"} if retry_after is not None else {}
    body = {"error": {"message": message, "type": "invalid_request_error" if status < 500 else "server_error", "code": code}}
    return JSONResponse(body, status_code=status, headers=headers)


def embedding(model: str, text: str, dimensions: int) -> list[float]:
    """A deterministic unit vector for (model, text) whose direction follows the words: each word
    (lower-cased) adds +-1 at 8 positions hashed from (model, word), so texts sharing words are
    similar by cosine (bag of words), texts sharing none are near-orthogonal, and "meaning" is
    testable as word overlap. A text without a word gets a vector of its own."""
    values = [0.0] * dimensions
    for word in _WORD.findall(text.lower()) or [f"\x00{text}"]:
        digest = hashlib.shake_256(f"{model}\x1f{word}".encode()).digest(4 * _SLOTS)
        for n in struct.unpack(f"<{_SLOTS}I", digest):
            values[(n >> 1) % dimensions] += 1.0 if n & 1 else -1.0
    norm = sum(v * v for v in values) ** 0.5
    if not norm:  # every slot cancelled out: vanishingly rare, still deterministic
        values[hash(text) % dimensions] = norm = 1.0
    return [v / norm for v in values]


def _data_url_sha(url: str) -> str | None:
    if not url.startswith("data:") or "," not in url:
        return None
    return hashlib.sha256(base64.b64decode(url.split(",", 1)[1])).hexdigest()


def transcription_usage(model: str, data: bytes, text: str) -> dict[str, Any]:
    """As the API reports it: whisper-1 bills seconds; the gpt-4o transcribe models bill tokens
    (audio in, text out). The fake's audio is 2000 bytes a second, ten audio tokens a second."""
    seconds = max(1, len(data) // 2000)
    if model == "whisper-1":
        return {"type": "duration", "seconds": seconds}
    audio, out = 10 * seconds, max(1, len(text) // 4)
    return {"type": "tokens", "input_tokens": audio, "input_token_details": {"text_tokens": 0, "audio_tokens": audio},
            "output_tokens": out, "total_tokens": audio + out}  # fmt: skip


class FakeOpenAI:
    def __init__(self, api_key: str = "test-openai-key") -> None:
        self.api_key = api_key
        self.latency = 0.0
        self.faults = Faults()
        self.calls = CallLog()
        self.transcripts: dict[str, str] = {}  # sha256 of the audio -> text
        self.descriptions: dict[str, str] = {}  # sha256 of the image (or file) -> text
        self.app = Starlette(routes=[
            Route("/v1/audio/transcriptions", self._transcriptions, methods=["POST"]),
            Route("/v1/chat/completions", self._chat, methods=["POST"]),
            Route("/v1/responses", self._responses, methods=["POST"]),
            Route("/v1/embeddings", self._embeddings, methods=["POST"]),
            Route("/v1/models", self._models, methods=["GET"]),
        ])  # fmt: skip

    def fail(self, **kwargs: Any) -> Fault:
        return self.faults.add(Fault(**kwargs))

    async def _gate(
        self, request: Request, model: str | None, sha: str | None, detail: dict[str, object] | None = None
    ) -> Response | None:
        """Auth, latency and injected faults; records the call. None: answer normally."""
        path = request.url.path
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            self.calls.record(Call(path, now(), 401, model, sha, detail=detail or {}))
            return _error(401, "Incorrect API key provided.", "invalid_api_key")
        fault = self.faults.take(path, sha, model)
        delay = self.latency + (fault.delay if fault else 0.0)
        if delay:
            await asyncio.sleep(delay)
        status = fault.status if fault else 200
        self.calls.record(Call(path, now(), status, model, sha, detail=detail or {}))
        if fault is None or fault.status < 300:
            return None
        if fault.status == 429:
            return _error(429, "Rate limit reached.", "rate_limit_exceeded", fault.retry_after)
        return _error(fault.status, "The server had an error.", "server_error", fault.retry_after)

    async def _transcriptions(self, request: Request) -> Response:
        form = await request.form()
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            return _error(400, "file is required", "invalid_file")
        data = await upload.read()
        model, fmt = str(form.get("model") or ""), str(form.get("response_format") or "json")
        sha = hashlib.sha256(data).hexdigest()
        if (answer := await self._gate(request, model, sha)) is not None:
            return answer
        if not model:
            return _error(400, "model is required", "invalid_model")
        name = upload.filename or ""
        if "." not in name:
            return _error(400, "Could not determine the file format from its name", "invalid_file_format")
        text = self.transcripts.get(sha, f"Fake transcript of {name} ({len(data)} bytes, sha256 {sha[:12]}).")
        if fmt == "text":
            return PlainTextResponse(text)
        body: dict[str, Any] = {"text": text, "usage": transcription_usage(model, data, text)}
        if fmt == "verbose_json":
            body |= {"language": "english", "duration": len(data) / 2000, "segments": []}
        return JSONResponse(body)

    def _describe(self, model: str, shas: list[str]) -> str:
        if not shas:
            return f"Fake answer from {model}."
        return " ".join(self.descriptions.get(s, f"Fake description of image {s[:12]} by {model}.") for s in shas)

    async def _chat(self, request: Request) -> Response:
        body = orjson.loads(await request.body())
        model = body.get("model")
        shas = []
        for message in body.get("messages") or []:
            content = message.get("content")
            for part in content if isinstance(content, list) else []:
                if part.get("type") == "image_url":
                    shas.append(_data_url_sha((part.get("image_url") or {}).get("url", "")))
                elif part.get("type") == "file":
                    shas.append(_data_url_sha((part.get("file") or {}).get("file_data", "")))
        shas = [s for s in shas if s]
        if (answer := await self._gate(request, model, shas[0] if shas else None)) is not None:
            return answer
        text = self._describe(model, shas)
        return JSONResponse({
            "id": f"chatcmpl-fake-{len(self.calls())}", "object": "chat.completion", "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 85 * max(1, len(shas)), "completion_tokens": len(text) // 4,
                      "total_tokens": 85 * max(1, len(shas)) + len(text) // 4},
        })  # fmt: skip

    async def _responses(self, request: Request) -> Response:
        body = orjson.loads(await request.body())
        model = body.get("model")
        items = body.get("input")
        shas = []
        for item in items if isinstance(items, list) else []:
            content = item.get("content") if isinstance(item, dict) else None
            for part in content if isinstance(content, list) else []:
                if part.get("type") == "input_image":
                    shas.append(_data_url_sha(part.get("image_url") or ""))
                elif part.get("type") == "input_file":
                    shas.append(_data_url_sha(part.get("file_data") or ""))
        shas = [s for s in shas if s]
        if (answer := await self._gate(request, model, shas[0] if shas else None)) is not None:
            return answer
        text = self._describe(model, shas)
        return JSONResponse({
            "id": f"resp_fake_{len(self.calls())}", "object": "response", "created_at": int(time.time()),
            "model": model, "status": "completed", "parallel_tool_calls": True, "tool_choice": "auto", "tools": [],
            "output": [{"type": "message", "id": "msg_fake", "role": "assistant", "status": "completed",
                        "content": [{"type": "output_text", "text": text, "annotations": []}]}],
            "usage": {"input_tokens": 85, "output_tokens": len(text) // 4, "total_tokens": 85 + len(text) // 4,
                      "input_tokens_details": {"cached_tokens": 0}, "output_tokens_details": {"reasoning_tokens": 0}},
        })  # fmt: skip

    async def _embeddings(self, request: Request) -> Response:
        body = orjson.loads(await request.body())
        model = body.get("model") or ""
        inputs = body.get("input")
        texts = [inputs] if isinstance(inputs, str) else list(inputs or [])
        if (answer := await self._gate(request, model, None, {"inputs": len(texts)})) is not None:
            return answer
        dims = body.get("dimensions") or DEFAULT_DIMENSIONS.get(model, 1536)
        if not isinstance(dims, int) or dims < 1:
            return _error(400, "dimensions must be a positive integer", "invalid_value")
        data = []
        for index, text in enumerate(texts):
            key = text if isinstance(text, str) else ",".join(map(str, text))  # token arrays
            vector = embedding(model, key, dims)
            value: Any = vector
            if body.get("encoding_format") == "base64":
                value = base64.b64encode(struct.pack(f"<{dims}f", *vector)).decode()
            data.append({"object": "embedding", "index": index, "embedding": value})
        tokens = sum(len(str(t).split()) for t in texts)
        return JSONResponse({"object": "list", "data": data, "model": model,
                             "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})  # fmt: skip

    async def _models(self, request: Request) -> Response:
        if (answer := await self._gate(request, None, None)) is not None:
            return answer
        names = ["gpt-4o-mini-transcribe", "gpt-4o-mini", "text-embedding-3-small"]
        return JSONResponse({"object": "list", "data": [{"id": n, "object": "model", "owned_by": "fake"} for n in names]})
