"""A client that sends a request's headers and only part of its body, as a stranger
holding a connection open would; over a real socket to a real server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass
class Answer:
    status: int
    headers: dict[str, str]


@asynccontextmanager
async def partial_post(
    url: str, path: str, headers: dict[str, str], *, declared: int, sent: bytes
) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    """POST declaring ``declared`` body bytes but sending only ``sent``; the connection
    stays open (and the rest of the body unsent) while inside."""
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    lines = [f"POST {path} HTTP/1.1", f"host: {parts.netloc}", f"content-length: {declared}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + sent)
    await writer.drain()
    try:
        yield reader, writer
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except OSError:
            pass


async def read_answer(reader: asyncio.StreamReader, timeout: float = 5.0) -> Answer:
    """The status line and headers of the response; fails if none comes within ``timeout``."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        if ":" in line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    return Answer(int(status_line.split()[1]), headers)
