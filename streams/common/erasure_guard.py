"""Every stage's handler behind the erasure ledger: an input of an erased chat received before
its erasure is skipped before the handler runs (no download, no model call), and an output
about one (normalize learns the chat only by parsing a delivery) is dropped. The worker,
`msgmem dlq retry` and `msgmem replay` all open their handler through ``Stage``, so all three
are guarded."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from contracts.settings import Settings
from runtime.erasure_ledger import LedgerCache
from streams.common.records import InputRecord, Output
from streams.common.runner import Handler, StageParts


def guard(handler: Handler, ledger: LedgerCache) -> Handler:
    async def guarded(record: InputRecord) -> list[Output]:
        book = await ledger.current()
        if book.hides_record(record.key, record.value):
            return []
        outputs = await handler(record)
        return [o for o in outputs if not book.hides_record(o.key, o.value)] if book.erased else outputs

    return guarded


@asynccontextmanager
async def guarded_parts(parts: AbstractAsyncContextManager[StageParts], settings: Settings) -> AsyncIterator[StageParts]:
    async with parts as opened, LedgerCache(settings) as ledger:
        yield StageParts(guard(opened.handler, ledger), opened.give_up)
