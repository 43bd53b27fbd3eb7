"""Composition root of the normalize stage: ``python -m streams.normalize``.

Consumer group ``msgmem-normalize`` reads wa.raw and writes wa.messages. Unreadable
deliveries go to wa.deadletter (no retries: parsing is deterministic).
"""

from __future__ import annotations

import logging

import faust

from contracts import raw
from contracts.settings import Settings
from streams.common.faust_app import attach_stage, make_app, run_worker
from streams.common.runner import RetryPolicy
from streams.normalize.agent import STAGE, make_handler


def build_app(settings: Settings) -> faust.App:
    app = make_app(STAGE, settings)
    attach_stage(
        app, settings, stage=STAGE, input_topic=raw.TOPIC, handler_factory=lambda: make_handler(settings),
        policy=RetryPolicy(attempts=1), batch_size=1000, within=0.1,
    )
    return app


def main() -> None:
    settings = Settings()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    run_worker(build_app(settings), settings)


if __name__ == "__main__":
    main()
