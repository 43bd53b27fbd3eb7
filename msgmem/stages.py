"""The stages `msgmem dlq retry` and `msgmem replay` can run in-process, by the name they
dead-letter under. Each entry opens the stage's handler (and its clients) from settings,
lazily, so a command imports only the stage it needs.

Projections are not stages with an output topic: their dead letters (an event they could not
decode, a row Postgres refused) are retried by decoding the original record with today's code
and, if that works, appending it to its topic again for the live projector to apply. Their
upserts are keyed by the events' deterministic ids, so a record applied twice is still one row.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from importlib import import_module

from contracts.settings import Settings
from streams.common.records import InputRecord, Output
from streams.common.runner import Handler

#: stage name -> "module:function". A ``make_handler(settings) -> Handler`` factory, or a
#: ``stage_parts(settings)`` async context manager yielding parts with a ``handler``.
HANDLERS: dict[str, str] = {
    "normalize": "streams.normalize.agent:make_handler",
    "media": "streams.media.main:stage_parts",
    "transcribe": "streams.transcribe.main:stage_parts",
    "caption": "streams.caption.main:stage_parts",
    "extract": "streams.extract.main:stage_parts",
    "embed": "streams.embed.main:stage_parts",
}

#: projection stage name -> "module:decode function" of the events it reads.
PROJECTIONS: dict[str, str] = {
    "projector": "contracts.messages:decode_event",
    "media_projector": "projections.media.logic:decode_event",
    "embeddings-projector": "contracts.embeddings:decode_event",
}


def _import(target: str):  # type: ignore[no-untyped-def]
    module, _, name = target.partition(":")
    return getattr(import_module(module), name)


def projection_handler(decode: Callable[[bytes], object]) -> Handler:
    """Re-append a projection's dead letter to its topic once it decodes (else raise, stay open)."""

    async def handler(record: InputRecord) -> list[Output]:
        decode(record.value)
        return [Output(record.topic, record.key or b"", record.value, record.headers)]

    return handler


@asynccontextmanager
async def open_handler(stage: str, settings: Settings) -> AsyncIterator[Handler]:
    if stage in PROJECTIONS:
        yield projection_handler(_import(PROJECTIONS[stage]))
        return
    if stage not in HANDLERS:
        known = ", ".join(sorted([*HANDLERS, *PROJECTIONS]))
        raise KeyError(f"stage {stage!r} cannot be re-run here; known: {known}")
    factory = _import(HANDLERS[stage])
    if HANDLERS[stage].endswith(":stage_parts"):
        async with factory(settings) as parts:
            yield parts.handler
    else:
        yield factory(settings)
