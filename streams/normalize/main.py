"""Composition root of the normalize stage: ``python -m streams.normalize``.

Consumer group ``msgmem-normalize`` reads wa.raw and writes wa.messages. Unreadable
deliveries go to wa.deadletter (no retries: parsing is deterministic).
"""

from __future__ import annotations

import faust

from contracts import raw
from contracts.settings import Settings
from runtime.logging_setup import configure_logging
from streams.common.faust_app import attach_stage, make_app, run_worker
from streams.common.runner import RetryPolicy, StageMetrics
from streams.normalize.agent import STAGE, NormalizeMetrics, config_from, make_handler

# Sized for a backlog (a restart, a replay), where throughput counts. Faust stops fetching a
# partition once the agent's buffer is 80% full and resumes below 40%, but still delivers the
# rest of the fetch in hand, and a record that finds the buffer full costs several tasks;
# while every partition is paused its fetcher sleeps a whole second. So: fetches of at most
# 1,000 records, which fit in the 20% above the mark, and a buffer whose 80% outlasts that
# second at ~10k events/s. Bounded fetches also unpack fewer records at once: peak memory
# measured lower than with 8,192 and unbounded fetches (the settings before).
BUFFER = 16_384
MAX_POLL_RECORDS = 1_000


def build_app(settings: Settings) -> faust.App:
    app = make_app(STAGE, settings, stream_buffer_maxsize=BUFFER, max_poll_records=MAX_POLL_RECORDS)
    metrics = StageMetrics(STAGE)
    unsupported = NormalizeMetrics(metrics.registry)  # once per process: a registry refuses duplicates
    config = config_from(settings)  # now: a declarative provider's bad mapping file stops start-up
    attach_stage(
        app, settings, stage=STAGE, input_topic=raw.TOPIC,
        handler_factory=lambda: make_handler(settings, unsupported, config),
        policy=RetryPolicy(attempts=1), batch_size=1000, within=0.1, metrics=metrics,
    )
    return app


def main() -> None:
    settings = Settings()
    configure_logging(settings.log_level)
    run_worker(build_app(settings), settings)


if __name__ == "__main__":
    main()
