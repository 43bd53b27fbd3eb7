"""Kafka client construction from settings, and idempotent topic creation.

Every producer in the project comes from :func:`make_producer` so that durability
settings (acks=all, idempotence) cannot drift between processes. Callers name topics as
declared in ``contracts.topics``; with KAFKA_TOPIC_PREFIX set, the clients made here (and
the admin helpers below) apply it on the way out and remove it on the way back
(``runtime.topic_prefix``).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.helpers import create_ssl_context

from contracts.settings import Settings
from contracts.topics import ALL_TOPICS, TopicSpec, largest_limit, retention_config, smallest_limit
from runtime.topic_prefix import PrefixedConsumer, PrefixedProducer, TopicNames

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


def topic_names(settings: Settings) -> TopicNames | None:
    """The prefix translation, or None when topics carry their declared names on the broker."""
    return TopicNames(settings.kafka_topic_prefix) if settings.kafka_topic_prefix else None


def make_producer(settings: Settings, **overrides: Any) -> AIOKafkaProducer:
    config = producer_config(settings) | overrides
    names = topic_names(settings)
    return PrefixedProducer(names=names, **config) if names else AIOKafkaProducer(**config)


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
    names = topic_names(settings)
    if names:
        return PrefixedConsumer(*topics, names=names, **(cfg | overrides))
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


def _created(response: Any) -> set[str]:
    """The topics this request created. The admin API reports per-topic errors in the response
    instead of raising: one that already exists (another process created it meanwhile) is
    fine; any other error is raised."""
    failures = [
        f"{err[0]}: error {err[1]} {err[2] if len(err) > 2 else ''}".strip()
        for err in response.topic_errors
        if err[1] not in (0, _TOPIC_ALREADY_EXISTS)
    ]
    if failures:
        raise TopicCreationError("could not create topics: " + "; ".join(failures))
    return {err[0] for err in response.topic_errors if err[1] == 0}


@dataclass(frozen=True)
class TopicReport:
    created: list[str]
    existing: list[str]
    warnings: list[str]
    #: existing topics whose retention was set to the policy's: (name, old ms, new ms)
    retention_changed: list[tuple[str, int, int]] = field(default_factory=list)


async def ensure_topics(settings: Settings, specs: tuple[TopicSpec, ...] = ALL_TOPICS) -> TopicReport:
    """Create the topics that are missing; leave existing ones alone and warn where they differ.
    Returns once every partition of the created topics has a leader, so a client started next
    does not meet "unknown topic" while the broker's metadata catches up.

    Partitions are never changed on an existing topic: adding partitions would move keys and
    break per-chat ordering, so that is an operator's decision, not a start-up side effect.
    Retention is: it is a policy (RAW_RETENTION_DAYS, TOPIC_RETENTION_DAYS) an operator sets to
    bound how long personal content stays, so an existing topic whose retention differs gets
    the policy's (``align_retention``), its other settings kept.
    """
    topic = settings.topic
    admin = AIOKafkaAdminClient(**connection_config(settings))
    await admin.start()
    try:
        prefix = settings.kafka_topic_prefix
        existing = {settings.declared_topic(t) for t in await admin.list_topics() if t.startswith(prefix)}
        missing = [s for s in specs if s.name not in existing]
        created: set[str] = set()
        if missing:
            response = await admin.create_topics(
                [
                    NewTopic(
                        name=topic(s.name),
                        num_partitions=s.partitions,
                        replication_factor=settings.kafka_replication_factor,
                        topic_configs=s.config(settings.kafka_max_message_bytes, settings.retention_ms(s))
                        | durability(settings),
                    )
                    for s in missing
                ]
            )
            created = {settings.declared_topic(t) for t in _created(response)}
            await _until_led(admin, [topic(s.name) for s in missing], settings.kafka_request_timeout_ms / 1000 * 3)
        warnings: list[str] = []
        present = [s for s in specs if s.name not in created]
        if present:
            described = await admin.describe_topics([topic(s.name) for s in present])
            partitions = {settings.declared_topic(d["topic"]): len(d["partitions"]) for d in described}
            for s in present:
                if partitions.get(s.name, s.partitions) < s.partitions:
                    warnings.append(
                        f"{s.name} has {partitions[s.name]} partitions, fewer than the declared {s.partitions}"
                    )
        changed = await align_retention(admin, settings, present) if present else []
        return TopicReport(
            created=[s.name for s in specs if s.name in created], existing=[s.name for s in present], warnings=warnings,
            retention_changed=changed,
        )
    finally:
        await admin.close()


def describe_retention(ms: int) -> str:
    """``retention.ms`` for people: "forever", "30 days", "36 hours"."""
    if ms < 0:
        return "forever"
    days, rest = divmod(ms, 24 * 3600 * 1000)
    return f"{days} days" if not rest else f"{ms / 3_600_000:g} hours"


_DYNAMIC_TOPIC_CONFIG = 1  # DescribeConfigs v1+ config_source: set on the topic itself


async def align_retention(admin: AIOKafkaAdminClient, settings: Settings,
                          specs: list[TopicSpec]) -> list[tuple[str, int, int]]:  # fmt: skip
    """Give each topic of ``specs`` the retention the policy says; return what changed.

    AlterConfigs (the request aiokafka has) replaces a topic's whole set of dynamic settings,
    so the set is read first and written back with only retention.ms and segment.ms changed:
    what an operator set by hand stays."""
    names = {settings.topic(s.name): s for s in specs}
    current = await topic_configs(admin, list(names))
    changed: list[tuple[str, int, int]] = []
    resources = []
    for name, spec in names.items():
        dynamic = current.get(name, {})
        wanted = settings.retention_ms(spec)
        now = int(dynamic.get("retention.ms", spec.retention_ms))
        if now == wanted:
            continue
        merged = {k: v for k, v in dynamic.items() if k not in ("retention.ms", "segment.ms")}
        merged |= retention_config(wanted)
        resources.append(ConfigResource(ConfigResourceType.TOPIC, name, merged))
        changed.append((spec.name, now, wanted))
    if resources:
        for response in await admin.alter_configs(resources):
            for error_code, _message, _type, name in response.resources:
                if error_code:
                    raise TopicCreationError(f"setting the retention of {name} failed (error {error_code})")
    return changed


async def topic_configs(admin: AIOKafkaAdminClient, names: list[str]) -> dict[str, dict[str, str]]:
    """The settings set on each topic itself (not broker defaults), by broker topic name."""
    responses = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, n) for n in names])
    found: dict[str, dict[str, str]] = {}
    for response in responses:
        for _error, _message, _type, name, entries in response.resources:
            found[name] = {
                entry[0]: entry[1] for entry in entries
                if entry[1] is not None and _set_on_topic(response.API_VERSION, entry)
            }  # fmt: skip
    return found


def _set_on_topic(version: int, entry: tuple[Any, ...]) -> bool:
    # v0 entries: (name, value, read_only, is_default, is_sensitive); v1+: (name, value,
    # read_only, config_source, is_sensitive, synonyms)
    return not entry[3] if version == 0 else entry[3] == _DYNAMIC_TOPIC_CONFIG


async def _until_led(admin: AIOKafkaAdminClient, names: list[str], timeout: float) -> None:
    """Wait until the broker describes every partition of ``names`` with a leader."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        described = await admin.describe_topics(names)
        if all(not d["error_code"] and d["partitions"] and all(p["leader"] >= 0 for p in d["partitions"])
               for d in described):  # fmt: skip
            return
        if asyncio.get_running_loop().time() > deadline:
            raise TopicCreationError(f"created topics have no leader after {timeout:.0f}s")
        await asyncio.sleep(0.05)


async def delete_topics(settings: Settings, specs: tuple[TopicSpec, ...] = ALL_TOPICS) -> None:
    """Delete the declared topics that exist (a test's own, under its prefix). Irreversible:
    nothing in the services calls it."""
    admin = AIOKafkaAdminClient(**connection_config(settings))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        doomed = [settings.topic(s.name) for s in specs if settings.topic(s.name) in existing]
        if doomed:
            await admin.delete_topics(doomed)
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
    """The partitions of the declared topic ``topic`` (declared names in the result too)."""
    admin = AIOKafkaAdminClient(**connection_config(settings))
    await admin.start()
    try:
        [described] = await admin.describe_topics([settings.topic(topic)])
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


async def read_since_time(settings: Settings, topic: str, since: datetime) -> list[ConsumerRecord]:
    """The records of ``topic`` logged at ``since`` or later (by record timestamp), up to its current end."""
    ends = await end_offsets(settings, topic)
    consumer = await standalone_consumer(settings)
    try:
        found = await consumer.offsets_for_times({tp: int(since.timestamp() * 1000) for tp in ends})
    finally:
        await consumer.stop()
    start = {tp: found[tp].offset if found.get(tp) else ends[tp] for tp in ends}
    return await read_range(settings, topic, start, ends)
