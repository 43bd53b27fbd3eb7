"""Fetching a media file from its provider into a staging file, streamed, capped and hashed.

- Whapi: ``GET {WHAPI_API_URL}/media/{id}`` with the channel's Bearer token.
- Meta: ``GET {META_GRAPH_URL}/{version}/{media-id}`` (Bearer) answers a short-lived URL,
  which is downloaded with the same Bearer token.
- Evolution: its plaintext copy (``mediaUrl``, when EVOLUTION_MEDIA_HOSTS allows the
  host), else ``POST /chat/getBase64FromMediaMessage/{instance}`` (apikey). That answer is
  base64 inside JSON, so it is read whole (still capped). Bytes Evolution inlined in the
  webhook itself never come through here: the agent reads them from wa.raw (``raw_records``).

Errors name the host and the HTTP status or the network error's type, never the URL (its
path and query may hold signatures) nor a credential.

Every URL, including each redirect and Meta's answer, is checked against the provider's
allow-list before it is requested; redirects are followed by hand for that reason. The body
is never held in memory: chunks go to disk as they arrive, through a hash and a size cap.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx
import orjson

from msgmem.private import private_dir
from streams.common.http import retry_after
from streams.common.runner import TransientError
from streams.media.logic import FetchPlan, ProviderAccess, Refused, decode_inline

CHUNK = 64 * 1024
MAX_REDIRECTS = 3
_RETRYABLE = {408, 425, 429, 500, 502, 503, 504}


@dataclass(frozen=True)
class Downloaded:
    path: Path
    size: int
    sha256: str
    content_type: str | None


def _check_status(response: httpx.Response, what: str) -> None:
    status = response.status_code
    if status < 300:
        return
    said = f"{what} from {response.url.host or 'an unknown host'}: HTTP {status}"
    if status in _RETRYABLE or status >= 500:
        raise TransientError(said, retry_after=retry_after(response.headers))
    if status in (401, 403):
        raise Refused("unauthorized", said)
    if status in (404, 410):
        raise Refused("not_found", said)
    raise Refused("rejected", said)


_URL = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://\S*")


def network_error(exc: httpx.TransportError) -> str:
    """``ConnectError reaching media.example: [Errno 111] Connection refused``: the host and the
    error, with any URL in the error's text cut out."""
    try:
        host = exc.request.url.host or "an unknown host"
    except RuntimeError:  # raised without a request
        host = "an unknown host"
    detail = _URL.sub("<url>", str(exc)).strip()
    return f"{type(exc).__name__} reaching {host}" + (f": {detail[:200]}" if detail else "")


class Fetcher:
    """Runs a FetchPlan with one shared httpx client (built in the composition root)."""

    def __init__(self, client: httpx.AsyncClient, max_bytes: int) -> None:
        self._client = client
        self._max = max_bytes

    async def fetch(self, plan: FetchPlan, staging_dir: Path) -> Downloaded:
        try:
            if plan.step == "meta_lookup":
                url = await self._meta_url(plan)
                return await self._download("GET", url, plan.access, staging_dir)
            if plan.step == "evolution_base64":
                return await self._evolution(plan, staging_dir)
            return await self._download(plan.method, plan.url, plan.access, staging_dir, json=plan.json)
        except httpx.TransportError as exc:  # timeouts, refused connections, truncated bodies
            raise TransientError(network_error(exc)) from exc

    @asynccontextmanager
    async def _open(
        self, method: str, url: str, access: ProviderAccess, json: dict[str, object] | None = None
    ) -> AsyncIterator[httpx.Response]:
        """A streamed response for an allowed URL, following redirects only to allowed URLs."""
        for _ in range(MAX_REDIRECTS + 1):
            if not access.allows(url):
                raise Refused("host_not_allowed", f"{httpx.URL(url).host or 'an invalid URL'} is not an allowed media host")
            request = self._client.build_request(method, url, headers=access.headers, json=json)
            response = await self._client.send(request, stream=True, follow_redirects=False)
            try:
                if response.is_redirect and "location" in response.headers:
                    url = str(response.url.join(response.headers["location"]))
                    method, json = "GET", None
                    continue
                yield response
                return
            finally:
                await response.aclose()
        raise Refused("rejected", f"more than {MAX_REDIRECTS} redirects")

    async def _meta_url(self, plan: FetchPlan) -> str:
        async with self._open("GET", plan.url, plan.access) as response:
            _check_status(response, "Graph media lookup")
            body = orjson.loads(await response.aread())
        url = body.get("url") if isinstance(body, dict) else None
        if not isinstance(url, str) or not url:
            raise Refused("not_found", "Graph media lookup answered no url")
        return url

    async def _download(
        self, method: str, url: str, access: ProviderAccess, staging_dir: Path, json: dict[str, object] | None = None
    ) -> Downloaded:
        async with self._open(method, url, access, json) as response:
            _check_status(response, "media download")
            declared = response.headers.get("content-length")
            if declared and declared.isdigit() and int(declared) > self._max:
                raise Refused("too_large", f"content-length {declared} exceeds {self._max} bytes")
            return await self._spool(response.aiter_bytes(CHUNK), staging_dir, response.headers.get("content-type"))

    async def _evolution(self, plan: FetchPlan, staging_dir: Path) -> Downloaded:
        limit = self._max * 4 // 3 + 64 * 1024  # base64 grows by a third, plus the JSON around it
        async with self._open(plan.method, plan.url, plan.access, plan.json) as response:
            _check_status(response, "Evolution getBase64FromMediaMessage")
            body = bytearray()
            async for chunk in response.aiter_bytes(CHUNK):
                body.extend(chunk)
                if len(body) > limit:
                    raise Refused("too_large", f"base64 answer exceeds {self._max} bytes of media")
        try:
            parsed = orjson.loads(body)
            text = parsed["base64"]
        except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
            raise Refused("rejected", f"Evolution answered no base64 media: {type(exc).__name__}") from exc
        if not isinstance(text, str):
            raise Refused("rejected", f"Evolution answered base64: {type(text).__name__}, not text")
        data = await asyncio.to_thread(decode_inline, text, self._max)
        mime = parsed.get("mimetype") if isinstance(parsed.get("mimetype"), str) else None
        return await spool_bytes(data, staging_dir, mime, self._max)

    async def _spool(self, chunks: AsyncIterator[bytes], staging_dir: Path, content_type: str | None) -> Downloaded:
        return await spool(chunks, staging_dir, content_type, self._max)


async def spool(chunks: AsyncIterator[bytes], staging_dir: Path, content_type: str | None, max_bytes: int) -> Downloaded:
    """Write chunks to a new staging file while hashing and counting; delete it on any failure."""
    fd, name = await asyncio.to_thread(_mkstemp, staging_dir)
    path = Path(name)
    digest, size = hashlib.sha256(), 0
    try:
        with os.fdopen(fd, "wb") as fh:
            async for chunk in chunks:
                size += len(chunk)
                if size > max_bytes:
                    raise Refused("too_large", f"more than {max_bytes} bytes")
                digest.update(chunk)
                await asyncio.to_thread(_write, fh, chunk)
        return Downloaded(path, size, digest.hexdigest(), content_type)
    except BaseException:
        path.unlink(missing_ok=True)
        raise


async def spool_bytes(data: bytes, staging_dir: Path, content_type: str | None, max_bytes: int) -> Downloaded:
    """``spool`` for bytes already in memory (base64 media, decoded)."""

    async def chunks() -> AsyncIterator[bytes]:
        view = memoryview(data)
        for start in range(0, len(data), CHUNK):
            yield bytes(view[start : start + CHUNK])

    return await spool(chunks(), staging_dir, content_type, max_bytes)


def _mkstemp(directory: Path) -> tuple[int, str]:
    import tempfile

    private_dir(directory)
    return tempfile.mkstemp(dir=directory, prefix="dl-", suffix=".part")


def _write(fh: IO[bytes], chunk: bytes) -> None:
    fh.write(chunk)
