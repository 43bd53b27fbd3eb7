"""Composition root of the normalize stage: ``python -m streams.normalize``.

Consumer group ``msgmem-normalize`` reads wa.raw and writes wa.messages. Unreadable
deliveries go to wa.deadletter (no retries: parsing is deterministic).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from contracts import processes
from contracts.settings import Settings
from streams.common.runner import RetryPolicy, StageParts
from streams.common.stage import Stage
from streams.normalize.agent import NormalizeMetrics, config_from, make_handler

# Sized for a backlog (a restart, a replay), where throughput counts. Faust stops fetching a
# partition once the agent's buffer is 80% full and resumes below 40%, but still delivers the
# rest of the fetch in hand, and a record that finds the buffer full costs several tasks;
# while every partition is paused its fetcher sleeps a whole second. So: fetches of at most
# 1,000 records, which fit in the 20% above the mark, and a buffer whose 80% outlasts that
# second at ~10k events/s. Bounded fetches also unpack fewer records at once: peak memory
# measured lower than with 8,192 and unbounded fetches (the settings before).
BUFFER = 16_384
MAX_POLL_RECORDS = 1_000


@asynccontextmanager
async def parts(settings: Settings, metrics: NormalizeMetrics) -> AsyncIterator[StageParts]:
    yield StageParts(make_handler(settings, metrics, config_from(settings)))


STAGE = Stage(
    processes.NORMALIZE, parts=parts, metrics=NormalizeMetrics, policy=lambda _settings: RetryPolicy(attempts=1),
    batch_size=lambda _settings: 1000, within=0.1, buffer=BUFFER, max_poll_records=MAX_POLL_RECORDS,
    check=config_from,  # now: a declarative provider's bad mapping file stops start-up
    # Parsing is all it does (no download, no model call) and it needs no database: what it
    # writes about an erased chat is left alone by every stage and projector downstream.
    reads_ledger=False,
)
