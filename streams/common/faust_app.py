"""Building a stage's Faust app from settings and wiring a StageRunner to its input topic.

One Faust app (one consumer group) per stage, so each stage scales, lags and replays on
its own. Records are read as raw bytes and handed over in batches (``noack_take`` with a
``within``, so a quiet partition never holds a batch back).

Acknowledgement is manual, and that is the whole delivery guarantee: Faust acks a batch
taken with ``take``/``take_events`` when the agent raises, and a stream with automatic acks
acks whatever its buffer still holds as it winds down. Here the agent reads a ``noack()``
stream and acks each event only after the runner returned, that is once every output of
that event (or its dead letter) is acknowledged by the broker. Faust commits only offsets
below the first event not yet acked, so an input that did not finish is read again after a
crash, a rebalance or a restart: at least once, never lost. Nothing escapes the agent's
loop either: a batch that raised (a bug, never a bad record: the runner dead-letters those)
is run again after a backoff while its partitions wait.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Protocol

import faust
from aiokafka.helpers import create_ssl_context
from faust.types import EventT
from faust.types.auth import CredentialsT
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from contracts.settings import Settings
from contracts.topics import largest_limit
from runtime.private import private_dir
from streams.common.outputs import KafkaOutputs, OutputWriter
from streams.common.records import InputRecord
from streams.common.runner import Handler, RetryPolicy, StageMetrics, StageParts, StageRunner

class StoppableWriter(OutputWriter, Protocol):
    async def stop(self) -> None: ...


WriterFactory = Callable[[Settings], Awaitable[StoppableWriter]]

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
    datadir = private_dir(settings.state_dir / "faust" / stage)
    return faust.App(
        settings.consumer_group(stage),
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
        web_bind=settings.stage_web_host,  # Faust binds every interface (0.0.0.0) unless told
        producer_acks=-1,
        producer_max_request_size=largest_limit(settings.kafka_max_message_bytes) + 64 * 1024,
        consumer_max_fetch_size=largest_limit(settings.kafka_max_message_bytes) + 64 * 1024,
        stream_buffer_maxsize=stream_buffer_maxsize,
        broker_max_poll_records=max_poll_records,
        # A worker that dies (SIGKILL, a lost machine) holds its partitions until the session
        # times out: Faust's 60 s default left them idle for a minute.
        broker_session_timeout=settings.kafka_session_timeout_ms / 1000,
        broker_heartbeat_interval=settings.kafka_heartbeat_interval_ms / 1000,
        # Static membership when configured: a restarted worker is back without waiting out the
        # session timeout of the process it replaces.
        consumer_group_instance_id=settings.kafka_group_instance_id,
    )


def to_record(event: EventT, settings: Settings) -> InputRecord:
    """The event as the stage's handler sees it: under its declared topic name (no prefix)."""
    message = event.message
    headers = message.headers
    pairs = tuple(headers.items()) if isinstance(headers, dict) else tuple(headers or ())
    return InputRecord(
        topic=settings.declared_topic(message.topic), partition=message.partition, offset=message.offset, key=message.key,
        value=message.value, headers=pairs, timestamp_ms=int(message.timestamp * 1000) if message.timestamp else None,
    )


def attach_stage(
    app: faust.App, settings: Settings, *, stage: str, input_topics: tuple[str, ...],
    handler_factory: Callable[[], Handler] | None = None, parts: PartsContext | None = None,
    policy: RetryPolicy, batch_size: int = 500, within: float = 0.2, metrics: StageMetrics | None = None,
    concurrency: int = 1, writer_factory: WriterFactory | None = None,
) -> None:
    """Run a handler over ``input_topics`` (one agent, one consumer group, however many
    topics, named as declared: KAFKA_TOPIC_PREFIX is applied here; each record keeps its own
    coordinates) in batches through a StageRunner.

    Give either ``handler_factory`` (a plain handler) or ``parts``, an async context
    manager entered when the agent starts (open clients and pools there, never at import)
    and left when it stops. ``concurrency`` > 1 runs a batch's records concurrently.
    ``writer_factory`` replaces the Kafka writer (the delivery tests inject faults with it).
    With a web port (STAGE_WEB_PORT), the worker serves ``/metrics`` (Prometheus) and
    ``/healthz``.
    """
    if (handler_factory is None) == (parts is None):
        raise TypeError("give exactly one of handler_factory and parts")
    metrics = metrics or StageMetrics(stage)
    topic = app.topic(*(settings.topic(t) for t in input_topics), key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")
    make_parts: PartsContext = parts or _plain(handler_factory)  # type: ignore[arg-type]

    async def agent(stream: faust.StreamT) -> None:
        manual = stream.noack()
        writer = await (writer_factory or start_writer)(settings)
        try:
            async with make_parts() as built:
                runner = StageRunner(
                    stage, built.handler, writer, policy=policy, metrics=metrics, concurrency=concurrency,
                    give_up=built.give_up, screen=built.screen,
                )
                log.info("%s consuming %s", stage, ", ".join(input_topics))
                async for events in manual.noack_take(batch_size, within=within):
                    await run_until_done(runner, [to_record(e, settings) for e in events], stage)
                    for event in events:
                        await manual.ack(event)
        finally:
            await writer.stop()

    app.agent(topic, name=f"msgmem-{stage}-agent")(agent)
    if settings.stage_web_port > 0:
        _serve_metrics(app, stage, metrics)


async def run_until_done(
    runner: StageRunner, records: list[InputRecord], stage: str, *, sleep: Callable[[float], Any] = asyncio.sleep
) -> None:
    """Run the batch until it completes. The runner never raises for a record; should it raise
    all the same (a bug), the batch is run again after a backoff: outputs carry deterministic
    ids, so a second run only repeats what the first wrote, and nothing is acked unfinished."""
    failures = 0
    while True:
        try:
            await runner.run_batch(records)
            return
        except Exception:  # noqa: BLE001 - the partition waits; the worker never crashes into an ack
            failures += 1
            delay = min(30.0, 0.5 * 2 ** (failures - 1))
            log.exception("%s: batch of %d record(s) failed; running it again in %.1fs", stage, len(records), delay)
            await sleep(delay)


async def start_writer(settings: Settings) -> StoppableWriter:
    """The stage's writer, once the broker answers (a worker may start during an outage)."""
    failures = 0
    while True:
        try:
            return await KafkaOutputs.start(settings)
        except Exception as exc:  # noqa: BLE001 - retried until the broker is back
            failures += 1
            if failures == 1:
                log.warning("output producer cannot start yet (%s); retrying", type(exc).__name__)
            await asyncio.sleep(min(5.0, 0.5 * 2 ** (failures - 1)))


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
