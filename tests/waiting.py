"""Waiting for asynchronous outcomes in tests: poll until a deadline, never a fixed sleep."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from aiokafka import ConsumerRecord, TopicPartition

from contracts.settings import Settings
from runtime.kafka import end_offsets, read_range

T = TypeVar("T")


async def eventually(check: Callable[[], Awaitable[T]], timeout: float = 30.0, interval: float = 0.2) -> T:
    """The first truthy result of ``check()``; fails the test with the last result at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        assert time.monotonic() < deadline, f"timed out after {timeout}s; last result: {result!r}"[:2000]
        await asyncio.sleep(interval)


async def read_since(settings: Settings, topic: str, start: dict[TopicPartition, int]) -> list[ConsumerRecord]:
    """Every record of ``topic`` written after ``start`` (offsets from ``end_offsets``)."""
    return await read_range(settings, topic, start, await end_offsets(settings, topic))
