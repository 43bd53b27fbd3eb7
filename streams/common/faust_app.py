"""Building a stage's Faust app from settings and wiring a StageRunner to its input topic.

One Faust app (one consumer group) per stage, so each stage scales, lags and replays on
its own. Records are read as raw bytes and handed over in batches (``take_events`` with a
``within``, so a quiet partition never holds a batch back); a batch is acknowledged, and so
committed, only after the runner wrote every output durably.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import faust
from aiokafka.helpers import create_ssl_context
from faust.types import EventT
from faust.types.auth import CredentialsT
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from contracts.settings import Settings
from msgmem.logging_setup import configure_logging
from streams.common.outputs import KafkaOutputs
from streams.common.records import InputRecord
from streams.common.runner import Handler, RetryPolicy, StageMetrics, StageParts, StageRunner

# Builds a stage's handler with the clients it needs at agent start and closes them at stop.
PartsContext = Callable[[], AbstractAsyncContextManager[StageParts]]

log = logging.getLogger(__name__)


def broker_url(settings: Settings) -> str:
    return ";".join(f"kafka://{server.strip()}" for server in settings.kafka_bootstrap_servers.split(","))


def _credentials(settings: Settings) -> CredentialsT | None:
    ssl = create_ssl_context() if settings.kafka_security_protocol in ("SSL", "SASL_SSL") else None
    if settings.kafka_sasl_mechanism:
        password = settings.kafka_sasl_password.get_secret_value() if settings.kafka_sasl_password else ""
        return faust.SASLCredentials(
            username=settings.kafka_sasl_username, password=password, mechanism=settings.kafka_sasl_mechanism,
            ssl_context=ssl,
        )
    return faust.SSLCredentials(ssl) if ssl is not None else None


def make_app(
    stage: str, settings: Settings, *, stream_buffer_maxsize: int = 8192, max_poll_records: int | None = None
) -> faust.App:
    """The stage's app. ``stream_buffer_maxsize`` is how many records Faust queues for the
    agent; ``max_poll_records`` caps each fetch handed to it (None: all that is prefetched)."""
    datadir = settings.state_dir / "faust" / stage
    datadir.mkdir(parents=True, exist_ok=True)
    return faust.App(
        f"msgmem-{stage}",
        broker=broker_url(settings),
        broker_credentials=_credentials(settings),
        broker_client_id=f"{settings.kafka_client_id}-{stage}",
        # Faust keeps table state and a lock file here; never the working directory.
        datadir=str(datadir),
        consumer_auto_offset_reset="earliest",
        topic_disable_leader=True,
        topic_allow_declare=False,
        web_enabled=settings.stage_web_port > 0,
        web_port=settings.stage_web_port or 6066,
        web_host=settings.stage_web_host,
        producer_acks=-1,
        producer_max_request_size=settings.ingest_max_body_bytes + 4 * 1024 * 1024,
        consumer_max_fetch_size=settings.ingest_max_body_bytes + 4 * 1024 * 1024,
        stream_buffer_maxsize=stream_buffer_maxsize,
        broker_max_poll_records=max_poll_records,
    )


def to_record(event: EventT) -> InputRecord:
    message = event.message
    headers = message.headers
    pairs = tuple(headers.items()) if isinstance(headers, dict) else tuple(headers or ())
    return InputRecord(
        topic=message.topic, partition=message.partition, offset=message.offset, key=message.key,
        value=message.value, headers=pairs, timestamp_ms=int(message.timestamp * 1000) if message.timestamp else None,
    )


def attach_stage(
    app: faust.App, settings: Settings, *, stage: str, input_topic: str,
    handler_factory: Callable[[], Handler] | None = None, parts: PartsContext | None = None,
    policy: RetryPolicy, batch_size: int = 500, within: float = 0.2, metrics: StageMetrics | None = None,
    concurrency: int = 1,
) -> None:
    """Run a handler over ``input_topic`` in batches through a StageRunner.

    Give either ``handler_factory`` (a plain handler) or ``parts``, an async context
    manager entered when the agent starts (open clients and pools there, never at import)
    and left when it stops. ``concurrency`` > 1 runs a batch's records concurrently.
    With a web port (STAGE_WEB_PORT), the worker serves ``/metrics`` (Prometheus) and
    ``/healthz``.
    """
    if (handler_factory is None) == (parts is None):
        raise TypeError("give exactly one of handler_factory and parts")
    metrics = metrics or StageMetrics(stage)
    topic = app.topic(input_topic, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")
    make_parts: PartsContext = parts or _plain(handler_factory)  # type: ignore[arg-type]

    async def agent(stream: faust.StreamT) -> None:
        writer = await KafkaOutputs.start(settings)
        try:
            async with make_parts() as built:
                runner = StageRunner(
                    stage, built.handler, writer, policy=policy, metrics=metrics, concurrency=concurrency,
                    give_up=built.give_up,
                )
                log.info("%s consuming %s", stage, input_topic)
                async for events in stream.take_events(batch_size, within=within):
                    await runner.run_batch([to_record(e) for e in events])
        finally:
            await writer.stop()

    app.agent(topic, name=f"msgmem-{stage}-agent")(agent)
    if settings.stage_web_port > 0:
        _serve_metrics(app, stage, metrics)


def _plain(factory: Callable[[], Handler]) -> PartsContext:
    @asynccontextmanager
    async def parts() -> Any:
        yield StageParts(factory())

    return parts


def _serve_metrics(app: faust.App, stage: str, metrics: StageMetrics) -> None:
    async def metrics_page(view: Any, _request: Any) -> Any:
        return view.bytes(generate_latest(metrics.registry), content_type=CONTENT_TYPE_LATEST.split(";")[0])

    async def health_page(view: Any, _request: Any) -> Any:
        return view.json({"status": "alive", "stage": stage})

    app.page("/metrics")(metrics_page)
    app.page("/healthz")(health_page)


def run_worker(app: faust.App, settings: Settings) -> None:
    """Start the worker in this process (blocks); it logs ``Ready`` once consuming."""
    worker = faust.Worker(app, loglevel=settings.log_level, quiet=True, override_logging=False)  # configure_logging's
    worker.spinner = None  # as its own set-up would at INFO: then it logs "Ready" instead of drawing a spinner
    worker.execute_from_commandline()


def stage_main(build_app: Callable[[Settings], faust.App]) -> None:
    """The ``main()`` of every stage: settings from the environment, logging, the worker."""
    settings = Settings()
    configure_logging(settings.log_level)
    run_worker(build_app(settings), settings)
