"""Every stage behind the erasure ledger: an input of an erased chat received before its erasure
is skipped before the handler runs (no download, no model call), and an output about one is
dropped.

A worker reads the ledger once per batch (``screened_parts``: the runner's screen), and while
Postgres cannot answer the batch waits, with backoff, as it waits for the broker: an outage of
the ledger never turns good inputs into dead letters. `msgmem dlq retry` and `msgmem replay`
handle one record at a time (``guarded_parts``) and fail fast: the letter stays open, the replay
stops with the error.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from contracts.settings import Settings
from runtime.erasure_ledger import LedgerCache
from runtime.errors import StoreUnavailable
from streams.common.outage import Outage
from streams.common.records import InputRecord, Output
from streams.common.runner import Handler, Hides, Sleep, StageParts


def guard(handler: Handler, ledger: LedgerCache) -> Handler:
    async def guarded(record: InputRecord) -> list[Output]:
        book = await ledger.current()
        if book.hides_record(record.key, record.value):
            return []
        outputs = await handler(record)
        return [o for o in outputs if not book.hides_record(o.key, o.value)] if book.active else outputs

    return guarded


class LedgerScreen:
    """The runner's per-batch screen: the ledger as committed now, waited for while unreadable
    (0.5 s doubling to ``max_backoff``; the outage logged as first failure, summary, recovery)."""

    def __init__(self, ledger: LedgerCache, *, max_backoff: float = 5.0, sleep: Sleep = asyncio.sleep) -> None:
        self._ledger = ledger
        self._max_backoff = max_backoff
        self._sleep = sleep
        self._outage = Outage("reading the erasure ledger")

    async def __call__(self) -> Hides | None:
        failures = 0
        while True:
            try:
                book = await self._ledger.current()
            except StoreUnavailable as exc:
                failures += 1
                self._outage.failed(exc)
                await self._sleep(min(self._max_backoff, 0.5 * 2 ** (failures - 1)))
                continue
            self._outage.recovered()
            return book.hides_record if book.active else None


@asynccontextmanager
async def screened_parts(parts: AbstractAsyncContextManager[StageParts], settings: Settings) -> AsyncIterator[StageParts]:
    """A worker's parts: the ledger read per batch by the runner, holding the batch while down."""
    async with parts as opened, LedgerCache(settings) as ledger:
        yield StageParts(opened.handler, opened.give_up, LedgerScreen(ledger))


@asynccontextmanager
async def guarded_parts(parts: AbstractAsyncContextManager[StageParts], settings: Settings) -> AsyncIterator[StageParts]:
    """One-off tools' parts: the ledger read before each record; unreadable, the record fails."""
    async with parts as opened, LedgerCache(settings) as ledger:
        yield StageParts(guard(opened.handler, ledger), opened.give_up)
