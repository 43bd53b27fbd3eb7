"""Run an ASGI app on a real socket inside the current event loop (tests, benchmarks)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import uvicorn

from msgmem.localstack.processes import free_port


@asynccontextmanager
async def serving(app: Any, *, port: int | None = None, **config: Any) -> AsyncIterator[str]:
    """Serve ``app`` on 127.0.0.1 and yield its base URL; shut it down on exit."""
    port = port or free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False, **config)
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("server stopped before it started")
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
