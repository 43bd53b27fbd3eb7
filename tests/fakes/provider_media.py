"""A local provider media server speaking Whapi's, Meta Graph's and Evolution's media protocols.

- Whapi: ``GET /media/{id}`` with ``Authorization: Bearer <whapi token>``.
- Meta: ``GET /{version}/{media-id}`` (Bearer) answers ``{url, mime_type, sha256, file_size, id}``;
  the bytes are then at that ``url`` (``/cdn/{media-id}``) and only with the same Bearer header.
- Evolution: ``POST /chat/getBase64FromMediaMessage/{instance}`` with an ``apikey`` header and
  ``{"message": {"key": {"id": ...}}}`` answers ``{"base64": ..., "mimetype": ...}``.

Media ids map to the real files in tests/fixtures/media (ids from the webhook fixtures'
READMEs); ``add_synthetic`` serves a large generated file, streamed. ``redirects`` answer a
302 to any URL (to test the allow-list), ``corrupt`` serves other bytes than announced, and
``faults`` inject status codes and delays. Every request is recorded.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.fakes.faults import Call, CallLog, Fault, Faults, now

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
MEDIA = FIXTURES / "media"

MIME = {
    ".ogg": "audio/ogg; codecs=opus", ".mp3": "audio/mpeg", ".jpg": "image/jpeg", ".pdf": "application/pdf",
    ".mp4": "video/mp4", ".webp": "image/webp",
}  # fmt: skip
WHAPI_IDS = {
    "oga-7f3c1a2b9d4e5f60718293a4": "voice_note.ogg", "oga-60718293a4b5c6d7e8f9a0b1": "voice_note.ogg",
    "mp3-0a1b2c3d4e5f60718293a4b5": "audio_clip.mp3", "jpeg-1b2c3d4e5f60718293a4b5c6": "receipt_photo.jpg",
    "jpeg-5f60718293a4b5c6d7e8f9a0": "receipt_photo.jpg", "mp4-2c3d4e5f60718293a4b5c6d7": "video_clip.mp4",
    "pdf-3d4e5f60718293a4b5c6d7e8": "invoice_text.pdf", "webp-4e5f60718293a4b5c6d7e8f9": "sticker.webp",
}  # fmt: skip
META_IDS = {
    "1205774054289243": "voice_note.ogg", "1226339154169922": "audio_clip.mp3", "1276732204818338": "receipt_photo.jpg",
    "1254657431266709": "video_clip.mp4", "1006433527223105": "invoice_text.pdf", "1179756819168671": "sticker.webp",
    "1134774834472430": "receipt_photo.jpg", "1257135890023774": "voice_note.ogg",
}  # fmt: skip

CHUNK = 64 * 1024


def sha256_of(name: str) -> str:
    return hashlib.sha256((MEDIA / name).read_bytes()).hexdigest()


@dataclass
class Blob:
    mime: str
    size: int
    sha256: str
    chunks: Callable[[], AsyncIterator[bytes]]


def _file_blob(name: str) -> Blob:
    data = (MEDIA / name).read_bytes()

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(data), CHUNK):
            yield data[start : start + CHUNK]

    return Blob(MIME[Path(name).suffix], len(data), hashlib.sha256(data).hexdigest(), chunks)


def _synthetic_blob(size: int, mime: str, seed: str) -> Blob:
    block = hashlib.shake_256(f"msgmem synthetic media {seed}".encode()).digest(CHUNK)
    digest = hashlib.sha256()
    for start in range(0, size, CHUNK):
        digest.update(block[: min(CHUNK, size - start)])

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, size, CHUNK):
            yield block[: min(CHUNK, size - start)]
            if start % (16 * CHUNK) == 0:
                await asyncio.sleep(0)

    return Blob(mime, size, digest.hexdigest(), chunks)


def _evolution_ids() -> dict[str, str]:
    """Evolution message key ids -> file, matched by the fileSha256 in the evolution fixtures."""
    by_sha = {sha256_of(p.name): p.name for p in MEDIA.iterdir() if p.suffix in MIME}
    out = {}
    for path in (FIXTURES / "webhooks" / "evolution").glob("*.json"):
        data = orjson.loads(path.read_bytes()).get("data") or {}
        for part in (data.get("message") or {}).values():
            if isinstance(part, dict) and part.get("fileSha256"):
                sha = base64.b64decode(part["fileSha256"]).hex()
                if sha in by_sha:
                    out[data["key"]["id"]] = by_sha[sha]
    return out


class FakeProviderMedia:
    def __init__(
        self, *, whapi_token: str = "test-whapi-token", meta_token: str = "test-access-token",
        evolution_key: str = "test-evolution-apikey", graph_version: str = "v21.0",
    ) -> None:  # fmt: skip
        self.whapi_token, self.meta_token, self.evolution_key = whapi_token, meta_token, evolution_key
        self.blobs: dict[str, Blob] = {}
        for ids in (WHAPI_IDS, META_IDS, _evolution_ids()):
            for media_id, name in ids.items():
                self.blobs[media_id] = _file_blob(name)
        self.redirects: dict[str, str] = {}
        self.corrupt: set[str] = set()
        self.faults = Faults()
        self.calls = CallLog()
        self.app = Starlette(routes=[
            Route("/media/{media_id}", self._whapi, methods=["GET"]),
            Route("/cdn/{media_id}", self._meta_cdn, methods=["GET"]),
            Route("/chat/getBase64FromMediaMessage/{instance}", self._evolution, methods=["POST"]),
            Route(f"/{graph_version}/{{media_id}}", self._meta_lookup, methods=["GET"]),
        ])  # fmt: skip

    def add_synthetic(self, media_id: str, size: int, mime: str = "application/pdf") -> Blob:
        """``size`` generated bytes (different per id), streamed in 64 KiB chunks."""
        self.blobs[media_id] = blob = _synthetic_blob(size, mime, media_id)
        return blob

    def fail(self, **kwargs: Any) -> Fault:
        return self.faults.add(Fault(**kwargs))

    async def _gate(self, request: Request, media_id: str, authorised: bool) -> Response | None:
        path = request.url.path
        if not authorised:
            self.calls.record(Call(path, now(), 401, key=media_id))
            return JSONResponse({"error": {"message": "unauthorized"}}, status_code=401)
        fault = self.faults.take(path, key=media_id)
        if fault and fault.delay:
            await asyncio.sleep(fault.delay)
        if fault is not None and fault.status >= 300:
            self.calls.record(Call(path, now(), fault.status, key=media_id))
            headers = {"retry-after": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
            return JSONResponse({"error": {"message": "injected"}}, status_code=fault.status, headers=headers)
        if media_id in self.redirects:
            self.calls.record(Call(path, now(), 302, key=media_id))
            return RedirectResponse(self.redirects[media_id], status_code=302)
        if media_id not in self.blobs:
            self.calls.record(Call(path, now(), 404, key=media_id))
            return JSONResponse({"error": {"message": "media not found"}}, status_code=404)
        self.calls.record(Call(path, now(), 200, key=media_id))
        return None

    def _stream(self, media_id: str) -> Response:
        blob = self.blobs[media_id]
        if media_id in self.corrupt:
            return Response(b"not the announced bytes", media_type=blob.mime)
        return StreamingResponse(blob.chunks(), media_type=blob.mime, headers={"content-length": str(blob.size)})

    async def _whapi(self, request: Request) -> Response:
        media_id = request.path_params["media_id"]
        ok = request.headers.get("authorization") == f"Bearer {self.whapi_token}"
        return await self._gate(request, media_id, ok) or self._stream(media_id)

    async def _meta_lookup(self, request: Request) -> Response:
        media_id = request.path_params["media_id"]
        ok = request.headers.get("authorization") == f"Bearer {self.meta_token}"
        if (answer := await self._gate(request, media_id, ok)) is not None:
            return answer
        blob = self.blobs[media_id]
        url = str(request.base_url).rstrip("/") + f"/cdn/{media_id}?ext=1795166100&hash=fake"
        return JSONResponse({
            "messaging_product": "whatsapp", "url": url, "mime_type": blob.mime, "sha256": blob.sha256,
            "file_size": blob.size, "id": media_id,
        })  # fmt: skip

    async def _meta_cdn(self, request: Request) -> Response:
        media_id = request.path_params["media_id"]
        ok = request.headers.get("authorization") == f"Bearer {self.meta_token}"
        return await self._gate(request, media_id, ok) or self._stream(media_id)

    async def _evolution(self, request: Request) -> Response:
        body = orjson.loads(await request.body())
        media_id = (((body.get("message") or {}).get("key")) or {}).get("id", "")
        ok = request.headers.get("apikey") == self.evolution_key
        if (answer := await self._gate(request, media_id, ok)) is not None:
            return answer
        blob = self.blobs[media_id]
        data = b"".join([chunk async for chunk in blob.chunks()])
        return JSONResponse({
            "mediaType": "audioMessage", "fileName": None, "size": {"fileLength": blob.size},
            "mimetype": blob.mime, "base64": base64.b64encode(data).decode(),
        })  # fmt: skip
