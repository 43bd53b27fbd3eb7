"""The stages `msgmem dlq retry` and `msgmem replay` can run in-process, by the name they
dead-letter under. Each entry opens the stage's handler (and its clients) from settings,
lazily, so a command imports only the stage it needs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import import_module

from contracts.settings import Settings
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


@asynccontextmanager
async def open_handler(stage: str, settings: Settings) -> AsyncIterator[Handler]:
    try:
        module, _, name = HANDLERS[stage].partition(":")
    except KeyError:
        raise KeyError(f"stage {stage!r} cannot be re-run here; known: {', '.join(sorted(HANDLERS))}") from None
    factory = getattr(import_module(module), name)
    if name == "stage_parts":
        async with factory(settings) as parts:
            yield parts.handler
    else:
        yield factory(settings)
