"""The handlers `msgmem dlq retry` and `msgmem replay` run in-process, by process name.

A stage's handler is opened from its declared ``Stage`` (``streams.<name>.main.STAGE``)
with its clients, lazily, so a command imports only the stage it needs. Projections are not
stages with an output topic: their dead letters (an event they could not decode, a row
Postgres refused) are retried by decoding the original record with today's code and, if
that works, appending it to its topic again for the live projector to apply. Their upserts
are keyed by the events' deterministic ids, so a record applied twice is still one row.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from importlib import import_module
from typing import Any

from contracts import processes
from contracts.processes import Process
from contracts.settings import Settings
from streams.common.records import InputRecord, Output
from streams.common.runner import Handler

#: Every process whose handler can run here: the stream stages (replayable) and the projectors.
STAGES: tuple[Process, ...] = tuple(p for p in processes.ALL if p.kind == "stage")
PROJECTORS: tuple[Process, ...] = tuple(p for p in processes.ALL if p.kind == "projector")


def stage_named(name: str) -> Process:
    """The stage or projector ``name`` (a name dead letters carry, old ones included)."""
    for process in (*STAGES, *PROJECTORS):
        if process.answers_to(name):
            return process
    known = ", ".join(p.name for p in (*STAGES, *PROJECTORS))
    raise KeyError(f"stage {name!r} cannot be re-run here; known: {known}")


def _definition(process: Process) -> Any:
    module = import_module(f"{process.module}.main")
    return module.STAGE if process.kind == "stage" else module.PROJECTOR


def projection_handler(decode: Callable[[bytes], object]) -> Handler:
    """Re-append a projection's dead letter to its topic once it decodes (else raise, stay open)."""

    async def handler(record: InputRecord) -> list[Output]:
        decode(record.value)
        return [Output(record.topic, record.key or b"", record.value, record.headers)]

    return handler


@asynccontextmanager
async def open_handler(stage: str, settings: Settings) -> AsyncIterator[Handler]:
    process = stage_named(stage)
    definition = _definition(process)
    if process.kind == "projector":
        yield projection_handler(definition.decode)
        return
    async with definition.open(settings) as parts:
        yield parts.handler
