"""Reading a request body with a hard size cap, before any of it is trusted."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping

from ingest.errors import PayloadTooLarge


async def read_capped(headers: Mapping[str, str], stream: AsyncIterator[bytes], limit: int) -> bytes:
    declared = headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"body of {declared} bytes exceeds the limit of {limit}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in stream:
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
