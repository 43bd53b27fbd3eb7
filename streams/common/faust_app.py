"""Building a stage's Faust app from settings and wiring a StageRunner to its input topic.

One Faust app (one consumer group) per stage, so each stage scales, lags and replays on
its own. Records are read as raw bytes and handed over in batches (``take_events`` with a
``within``, so a quiet partition never holds a batch back); a batch is acknowledged, and so
committed, only after the runner wrote every output durably.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import faust
from aiokafka.helpers import create_ssl_context
from faust.types import EventT
from faust.types.auth import CredentialsT

from contracts.settings import Settings
from streams.common.outputs import KafkaOutputs
from streams.common.records import InputRecord
from streams.common.runner import Handler, RetryPolicy, StageMetrics, StageRunner

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


def make_app(stage: str, settings: Settings) -> faust.App:
    return faust.App(
        f"msgmem-{stage}",
        broker=broker_url(settings),
        broker_credentials=_credentials(settings),
        broker_client_id=f"{settings.kafka_client_id}-{stage}",
        consumer_auto_offset_reset="earliest",
        topic_disable_leader=True,
        topic_allow_declare=False,
        web_enabled=settings.stage_web_port > 0,
        web_port=settings.stage_web_port or 6066,
        web_host="127.0.0.1",
        producer_acks=-1,
        producer_max_request_size=settings.ingest_max_body_bytes + 4 * 1024 * 1024,
        consumer_max_fetch_size=settings.ingest_max_body_bytes + 4 * 1024 * 1024,
        stream_buffer_maxsize=8192,
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
    app: faust.App, settings: Settings, *, stage: str, input_topic: str, handler_factory: Callable[[], Handler],
    policy: RetryPolicy, batch_size: int = 500, within: float = 0.2, metrics: StageMetrics | None = None,
) -> None:
    """Run ``handler`` over ``input_topic`` in batches through a StageRunner."""
    topic = app.topic(input_topic, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")

    async def agent(stream: faust.StreamT) -> None:
        writer = await KafkaOutputs.start(settings)
        runner = StageRunner(stage, handler_factory(), writer, policy=policy, metrics=metrics)
        log.info("%s consuming %s", stage, input_topic)
        try:
            async for events in stream.take_events(batch_size, within=within):
                await runner.run_batch([to_record(e) for e in events])
        finally:
            await writer.stop()

    app.agent(topic, name=f"msgmem-{stage}-agent")(agent)


def run_worker(app: faust.App, settings: Settings) -> None:
    """Start the worker in this process (blocks); it logs ``Ready`` once consuming."""
    worker = faust.Worker(app, loglevel=settings.log_level, quiet=True)
    worker.execute_from_commandline()
