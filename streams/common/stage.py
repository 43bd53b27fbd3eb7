"""A stream stage as data, and the one entry point that runs any of them.

Every stage declares a ``Stage``: its identity (``contracts.processes``: name, input topics,
consumer group), the metrics it adds, how to open its handler with its clients, its retry
policy and batch shape. ``run_stage`` is each stage's ``__main__``; ``open_parts`` gives
`msgmem dlq retry` and `msgmem replay` the same handler outside Faust. So a new stage is one
folder with a ``Stage`` and a two-line ``__main__``, and no stage wires Faust by hand.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import faust
from prometheus_client import CollectorRegistry

from contracts.processes import Process
from contracts.settings import Settings
from runtime.logging_setup import process_settings
from streams.common.erasure_guard import guarded_parts, screened_parts
from streams.common.faust_app import WriterFactory, attach_stage, make_app, run_worker
from streams.common.runner import RetryPolicy, StageMetrics, StageParts

M = TypeVar("M")


def _one(_settings: Settings) -> int:
    return 1


def _no_metrics(_registry: CollectorRegistry) -> None:
    return None


@dataclass(frozen=True)
class Stage(Generic[M]):
    """``metrics`` registers the stage's own metrics on a registry, once per process (a
    registry refuses duplicates); ``parts(settings, metrics)`` opens the handler and its
    clients when the agent starts and closes them when it stops, never at import.
    ``batch_size`` defaults to four rounds of ``concurrency``. ``check`` runs before the
    worker starts, so a bad configuration stops start-up rather than the first batch.
    ``timers`` adds periodic jobs to the app (the media retention sweep)."""

    process: Process
    parts: Callable[[Settings, M], AbstractAsyncContextManager[StageParts]]
    policy: Callable[[Settings], RetryPolicy]
    metrics: Callable[[CollectorRegistry], M] = _no_metrics  # type: ignore[assignment]
    concurrency: Callable[[Settings], int] = _one
    batch_size: Callable[[Settings], int] | None = None
    within: float = 0.2
    buffer: int = 8192
    max_poll_records: int | None = None
    check: Callable[[Settings], Any] | None = None
    timers: Callable[[faust.App, Settings], None] | None = None
    #: Skip inputs the erasure ledger hides (``streams.common.erasure_guard``) before the handler.
    reads_ledger: bool = True

    @property
    def name(self) -> str:
        return self.process.name

    def open(self, settings: Settings) -> AbstractAsyncContextManager[StageParts]:
        """The handler outside a worker (dlq retry, replay), with metrics of its own, checking
        the ledger before each record."""
        parts = self.parts(settings, self.metrics(CollectorRegistry()))
        return guarded_parts(parts, settings) if self.reads_ledger else parts

    def screened(self, settings: Settings, metrics: M) -> AbstractAsyncContextManager[StageParts]:
        """The worker's parts: the runner reads the ledger once per batch."""
        parts = self.parts(settings, metrics)
        return screened_parts(parts, settings) if self.reads_ledger else parts


def build_app(stage: Stage[Any], settings: Settings, *, writer_factory: WriterFactory | None = None) -> faust.App:
    if stage.check is not None:
        stage.check(settings)
    app = make_app(stage.name, settings, stream_buffer_maxsize=stage.buffer, max_poll_records=stage.max_poll_records)
    runner_metrics = StageMetrics(stage.name)
    own = stage.metrics(runner_metrics.registry)
    concurrency = stage.concurrency(settings)
    attach_stage(
        app, settings, stage=stage.name, input_topics=stage.process.inputs,
        parts=lambda: stage.screened(settings, own),
        policy=stage.policy(settings), batch_size=stage.batch_size(settings) if stage.batch_size else concurrency * 4,
        within=stage.within, metrics=runner_metrics, concurrency=concurrency, writer_factory=writer_factory,
    )  # fmt: skip
    if stage.timers is not None:
        stage.timers(app, settings)
    return app


def run_stage(stage: Stage[Any]) -> None:
    """Every stage's ``python -m`` entry: settings and logging, the app, the worker (blocks)."""
    settings = process_settings()
    run_worker(build_app(stage, settings), settings)
