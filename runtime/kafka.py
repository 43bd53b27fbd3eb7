"""Kafka client construction from settings, and idempotent topic creation.

Every producer in the project comes from :func:`make_producer` so that durability
settings (acks=all, idempotence) cannot drift between processes.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.helpers import create_ssl_context

from contracts.settings import Settings
from contracts.topics import ALL_TOPICS, TopicSpec, largest_limit, smallest_limit

log = logging.getLogger(__name__)


def connection_config(settings: Settings) -> dict[str, Any]:
    """Bootstrap, security and SASL options shared by producers, consumers and the admin client."""
    cfg: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap_servers,
        "client_id": settings.kafka_client_id,
        "security_protocol": settings.kafka_security_protocol,
        "request_timeout_ms": settings.kafka_request_timeout_ms,
    }
    if settings.kafka_security_protocol in ("SSL", "SASL_SSL"):
        cfg["ssl_context"] = create_ssl_context()
    if settings.kafka_sasl_mechanism:
        cfg["sasl_mechanism"] = settings.kafka_sasl_mechanism
        cfg["sasl_plain_username"] = settings.kafka_sasl_username
        if settings.kafka_sasl_password is not None:
            cfg["sasl_plain_password"] = settings.kafka_sasl_password.get_secret_value()
    return cfg


_BATCH_MARGIN = 16 * 1024


def producer_config(settings: Settings) -> dict[str, Any]:
    """Durable by default: a write is acknowledged only once every in-sync replica has it."""
    return connection_config(settings) | {
        "acks": "all",
        "enable_idempotence": True,
        "linger_ms": settings.kafka_producer_linger_ms,
        # One chat's (or channel's) records share a partition, and aiokafka keeps one batch in
        # flight per partition: a batch must hold every record waiting meanwhile. 16 KiB (the
        # default) caps a partition at ~25 webhooks per broker round trip.
        # A batch never outgrows the smallest topic limit (the broker refuses a whole batch
        # over max.message.bytes, good records with the bad); a record larger than the batch
        # size travels in a batch of its own.
        "max_batch_size": min(1024 * 1024, smallest_limit(settings.kafka_max_message_bytes) - _BATCH_MARGIN),
        "max_request_size": largest_limit(settings.kafka_max_message_bytes) + _BATCH_MARGIN,
    }


def make_producer(settings: Settings, **overrides: Any) -> AIOKafkaProducer:
    return AIOKafkaProducer(**(producer_config(settings) | overrides))


def make_consumer(settings: Settings, *topics: str, group_id: str | None, **overrides: Any) -> AIOKafkaConsumer:
    cfg = connection_config(settings) | {
        "group_id": group_id,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "isolation_level": "read_committed",
        "max_partition_fetch_bytes": largest_limit(settings.kafka_max_message_bytes) + _BATCH_MARGIN,
        "fetch_max_bytes": 64 * 1024 * 1024,
        "session_timeout_ms": settings.kafka_session_timeout_ms,
        "heartbeat_interval_ms": settings.kafka_heartbeat_interval_ms,
    }
    if group_id is not None and settings.kafka_group_instance_id:
        cfg["group_instance_id"] = settings.kafka_group_instance_id
    return AIOKafkaConsumer(*topics, **(cfg | overrides))


def durability(settings: Settings) -> dict[str, str]:
    """Replicated topics refuse a write that fewer than two replicas hold (with acks=all), and
    never elect a replica that missed writes: the settings the 3-broker fault test proves.
    Set per topic, not left to the broker default (Apache Kafka's is min.insync.replicas=1)."""
    if settings.kafka_replication_factor < 3:
        return {}
    return {"min.insync.replicas": "2", "unclean.leader.election.enable": "false"}


_TOPIC_ALREADY_EXISTS = 36


class TopicCreationError(RuntimeError):
    pass


def _raise_topic_errors(response: Any) -> None:
    """The admin API reports per-topic errors in the response instead of raising."""
    failures = [
        f"{err[0]}: error {err[1]} {err[2] if len(err) > 2 else ''}".strip()
        for err in response.topic_errors
        if err[1] not in (0, _TOPIC_ALREADY_EXISTS)
    ]
    if failures:
        raise TopicCreationError("could not create topics: " + "; ".join(failures))


@dataclass(frozen=True)
class TopicReport:
    created: list[str]
    existing: list[str]
    warnings: list[str]


async def ensure_topics(settings: Settings, specs: tuple[TopicSpec, ...] = ALL_TOPICS) -> TopicReport:
    """Create the topics that are missing; leave existing ones alone and warn where they differ.

    Partitions are never changed on an existing topic: adding partitions would move keys and
    break per-chat ordering, so that is an operator's decision, not a start-up side effect.
    """
    admin = AIOKafkaAdminClient(**connection_config(settings))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [s for s in specs if s.name not in existing]
        if missing:
            response = await admin.create_topics(
                [
                    NewTopic(
                        name=s.name,
                        num_partitions=s.partitions,
                        replication_factor=settings.kafka_replication_factor,
                        topic_configs=s.config(settings.kafka_max_message_bytes) | durability(settings),
                    )
                    for s in missing
                ]
            )
            _raise_topic_errors(response)
        warnings: list[str] = []
        present = [s for s in specs if s.name in existing]
        if present:
            described = await admin.describe_topics([s.name for s in present])
            partitions = {d["topic"]: len(d["partitions"]) for d in described}
            for s in present:
                if partitions.get(s.name, s.partitions) < s.partitions:
                    warnings.append(
                        f"{s.name} has {partitions[s.name]} partitions, fewer than the declared {s.partitions}"
                    )
        return TopicReport(
            created=[s.name for s in missing], existing=[s.name for s in present], warnings=warnings
        )
    finally:
        await admin.close()


async def standalone_consumer(settings: Settings) -> AIOKafkaConsumer:
    """A started consumer outside any group, for reading chosen offsets."""
    consumer = make_consumer(settings, group_id=None)
    await consumer.start()
    # aiokafka cannot stop a group-less consumer whose coordinator task was cancelled
    # before it first ran: give that task its first turn now.
    await asyncio.sleep(0)
    return consumer


async def partitions_of(settings: Settings, topic: str) -> list[TopicPartition]:
    admin = AIOKafkaAdminClient(**connection_config(settings))
    await admin.start()
    try:
        [described] = await admin.describe_topics([topic])
    finally:
        await admin.close()
    if described.get("error_code"):
        raise KeyError(f"topic {topic!r}: error {described['error_code']}")
    return [TopicPartition(topic, p["partition"]) for p in sorted(described["partitions"], key=lambda p: p["partition"])]


async def end_offsets(settings: Settings, topic: str) -> dict[TopicPartition, int]:
    """The next offset to be written on each partition of ``topic``."""
    parts = await partitions_of(settings, topic)
    consumer = await standalone_consumer(settings)
    try:
        return await consumer.end_offsets(parts)
    finally:
        await consumer.stop()


async def read_range(
    settings: Settings, topic: str, start: dict[TopicPartition, int], end: dict[TopicPartition, int]
) -> list[ConsumerRecord]:
    """The records of ``topic`` from ``start`` (inclusive) to ``end`` (exclusive), per partition."""
    out: list[ConsumerRecord] = []
    wanted = [tp for tp in end if end[tp] > start.get(tp, 0)]
    if not wanted:
        return out
    consumer = await standalone_consumer(settings)
    try:
        consumer.assign(wanted)
        for tp in wanted:
            consumer.seek(tp, start.get(tp, 0))
        remaining = set(wanted)
        while remaining:
            batch = await consumer.getmany(*remaining, timeout_ms=2000, max_records=10_000)
            for tp, records in batch.items():
                out.extend(r for r in records if r.offset < end[tp])
                if records and records[-1].offset >= end[tp] - 1:
                    remaining.discard(tp)
    finally:
        await consumer.stop()
    return out
