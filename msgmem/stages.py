"""The stages `msgmem dlq retry` (and replay) can run in-process, by the name they
dead-letter under. Each entry builds the stage's handler from settings, lazily, so the
command imports only the stage it needs."""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module

from contracts.settings import Settings
from streams.common.runner import Handler

#: stage name -> "module:function" building its handler from settings.
HANDLERS: dict[str, str] = {
    "normalize": "streams.normalize.agent:make_handler",
}


def handler_for(stage: str, settings: Settings) -> Handler:
    try:
        module, _, name = HANDLERS[stage].partition(":")
    except KeyError:
        raise KeyError(f"stage {stage!r} cannot be re-run here; known: {', '.join(sorted(HANDLERS))}") from None
    factory: Callable[[Settings], Handler] = getattr(import_module(module), name)
    return factory(settings)
