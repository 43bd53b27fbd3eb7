"""Fetching a media file from its provider into a staging file, streamed, capped and hashed.

- Whapi: ``GET {WHAPI_API_URL}/media/{id}`` with the channel's Bearer token.
- Meta: ``GET {META_GRAPH_URL}/{version}/{media-id}`` (Bearer) answers a short-lived URL,
  which is downloaded with the same Bearer token.
- Evolution: ``POST /chat/getBase64FromMediaMessage/{instance}`` (apikey) only. That answer
  is base64 inside JSON, so it is read whole (still capped). Bytes Evolution inlined in the
  webhook itself never come through here: the agent reads them from wa.raw (``raw_records``).

Errors name the host, the rule and the HTTP status or the network error's type, never the
URL (its path and query may hold signatures) nor a credential.

Every URL, including each redirect and Meta's answer, is checked against the provider's
rules (``access``: allow-list, https-443) before it is requested; redirects are followed by
hand for that reason, and the credential goes only where ``ProviderAccess.credentials_for``
says, and never after a redirect to another origin. The client connects only to public
addresses (``pinning``). Bodies are read raw (``Accept-Encoding: identity``; a compressed
answer is refused, never inflated), and never held in memory: chunks go to disk as they
arrive, through a hash and a size cap; the first bytes are kept to check the type (``mime``).
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

from contracts.origins import origin_of
from runtime.private import private_dir
from runtime.http_headers import retry_after
from runtime.errors import TransientError
from streams.media.access import ProviderAccess
from streams.media.logic import FetchPlan, Refused, decode_inline
from streams.media.mime import HEAD_BYTES
from streams.media.pinning import BlockedAddress

CHUNK = 64 * 1024
MAX_REDIRECTS = 3
LOOKUP_MAX_BYTES = 64 * 1024  # Graph's media lookup answer is a few hundred bytes of JSON
_RETRYABLE = {408, 425, 429, 500, 502, 503, 504}


@dataclass(frozen=True)
class Downloaded:
    path: Path
    size: int
    sha256: str
    content_type: str | None
    head: bytes = b""  # the first HEAD_BYTES bytes, for the type check


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


def _check_identity(response: httpx.Response, what: str) -> None:
    """Bodies are read as sent: a compressed one (asked for identity) is refused, never inflated."""
    encoding = response.headers.get("content-encoding", "").strip().lower()
    if encoding not in ("", "identity"):
        host = response.url.host or "an unknown host"
        raise Refused("rejected", f"{what} from {host}: Content-Encoding {encoding[:32]} (only identity is read)")


async def _read_capped(response: httpx.Response, limit: int, what: str) -> bytes:
    """A small answer (JSON) read whole, raw and under ``limit`` bytes."""
    _check_identity(response, what)
    body = bytearray()
    async for chunk in response.aiter_raw(CHUNK):
        body.extend(chunk)
        if len(body) > limit:
            raise Refused("too_large", f"{what} answer exceeds {limit} bytes")
    return bytes(body)


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
        except BlockedAddress as exc:
            raise Refused("address_not_public", str(exc)) from exc
        except httpx.TransportError as exc:  # timeouts, refused connections, truncated bodies
            raise TransientError(network_error(exc)) from exc

    @asynccontextmanager
    async def _open(
        self, method: str, url: str, access: ProviderAccess, json: dict[str, object] | None = None
    ) -> AsyncIterator[httpx.Response]:
        """A streamed response for an allowed URL, following redirects only to allowed URLs.
        The credential goes with the first request and with redirects that stay on its origin."""
        first = origin_of(url)
        for _ in range(MAX_REDIRECTS + 1):
            if (problem := access.problem(url)) is not None:
                raise Refused("host_not_allowed", problem)
            same_origin = origin_of(url) == first
            headers = (access.credentials_for(url) if same_origin else {}) | {"accept-encoding": "identity"}
            request = self._client.build_request(method, url, headers=headers, json=json)
            response = await self._client.send(request, stream=True, follow_redirects=False)
            try:
                if response.is_redirect and "location" in response.headers:
                    url = str(response.url.join(response.headers["location"]))
                    method, json = "GET", None
                    if origin_of(url) != first:
                        first = None  # the credential never comes back in this chain
                    continue
                yield response
                return
            finally:
                await response.aclose()
        raise Refused("rejected", f"more than {MAX_REDIRECTS} redirects")

    async def _meta_url(self, plan: FetchPlan) -> str:
        async with self._open("GET", plan.url, plan.access) as response:
            _check_status(response, "Graph media lookup")
            body = await _read_capped(response, LOOKUP_MAX_BYTES, "Graph media lookup")
        try:
            parsed = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise Refused("rejected", f"Graph media lookup answered no JSON: {type(exc).__name__}") from exc
        url = parsed.get("url") if isinstance(parsed, dict) else None
        if not isinstance(url, str) or not url:
            raise Refused("not_found", "Graph media lookup answered no url")
        return url

    async def _download(
        self, method: str, url: str, access: ProviderAccess, staging_dir: Path, json: dict[str, object] | None = None
    ) -> Downloaded:
        async with self._open(method, url, access, json) as response:
            _check_status(response, "media download")
            _check_identity(response, "media download")
            declared = response.headers.get("content-length")
            if declared and declared.isdigit() and int(declared) > self._max:
                raise Refused("too_large", f"content-length {declared} exceeds {self._max} bytes")
            return await self._spool(response.aiter_raw(CHUNK), staging_dir, response.headers.get("content-type"))

    async def _evolution(self, plan: FetchPlan, staging_dir: Path) -> Downloaded:
        limit = self._max * 4 // 3 + 64 * 1024  # base64 grows by a third, plus the JSON around it
        async with self._open(plan.method, plan.url, plan.access, plan.json) as response:
            _check_status(response, "Evolution getBase64FromMediaMessage")
            body = await _read_capped(response, limit, "Evolution getBase64FromMediaMessage")
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
    digest, size, head = hashlib.sha256(), 0, b""
    try:
        with os.fdopen(fd, "wb") as fh:
            async for chunk in chunks:
                size += len(chunk)
                if size > max_bytes:
                    raise Refused("too_large", f"more than {max_bytes} bytes")
                digest.update(chunk)
                if len(head) < HEAD_BYTES:
                    head += chunk[: HEAD_BYTES - len(head)]
                await asyncio.to_thread(_write, fh, chunk)
        return Downloaded(path, size, digest.hexdigest(), content_type, head)
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
