"""Reading a request body with a hard size cap and a deadline, before any of it is trusted."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping

from ingest.errors import BodyTimeout, PayloadTooLarge


async def read_capped(headers: Mapping[str, str], stream: AsyncIterator[bytes], limit: int, timeout: float) -> bytes:
    """The body, refused (413) as soon as it is declared or read past ``limit`` bytes, and
    (408) when it has not fully arrived ``timeout`` seconds after the reading began."""
    declared = headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"body of {declared} bytes exceeds the limit of {limit}")
    try:
        async with asyncio.timeout(timeout):
            return await _read(stream, limit)
    except TimeoutError:
        raise BodyTimeout(f"body did not arrive within {timeout:g}s") from None


async def _read(stream: AsyncIterator[bytes], limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in stream:
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
