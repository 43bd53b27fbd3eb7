"""A throw-away local stack (Kafka + Postgres on free ports, migrated, topics created)
for the test suite and the benchmarks. Starting it either succeeds or raises with the
reason: callers fail, they never skip."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from contracts.settings import Environment, Settings
from contracts.topics import ALL_TOPICS
from runtime.kafka import ensure_topics
from msgmem.localstack.kafka import LocalKafka, kafka_libs
from msgmem.localstack.kafka_cluster import LocalKafkaCluster
from msgmem.localstack.postgres import LocalPostgres
from msgmem.localstack.processes import file_sink, free_port
from msgmem.migrate import migrate


@dataclass
class Stack:
    kafka: LocalKafka | LocalKafkaCluster
    postgres: LocalPostgres
    settings: Settings
    log: Path

    def stop(self) -> None:
        self.kafka.stop()
        self.postgres.stop()


def start_stack(
    root: Path, *, durable: bool = False, brokers: int = 1, max_message_bytes: int | None = None
) -> Stack:
    """One Kafka broker by default. With ``brokers`` > 1 a :class:`LocalKafkaCluster`
    (replication min(brokers, 3), ``min.insync.replicas`` one less, set broker-wide so
    the topics inherit it) and topics created with that replication factor, returned once
    every broker knows them with all replicas in sync. ``max_message_bytes`` (one broker)
    makes a broker with a hosted cluster's record limit, and settings that know it."""
    root.mkdir(parents=True, exist_ok=True)
    log = root / "stack.log"
    sink = file_sink(log)
    base = Settings(_env_file=None, environment=Environment.TEST)  # type: ignore[call-arg]
    libs = kafka_libs(base.cache_dir, base.local_kafka_version, log=sink)
    kafka: LocalKafka | LocalKafkaCluster
    replication = base.kafka_replication_factor
    if brokers == 1:
        kafka = LocalKafka(
            libs, root / "kafka", free_port(), free_port(), sink=sink, max_message_bytes=max_message_bytes
        )
    else:
        kafka = LocalKafkaCluster(libs, root / "kafka", brokers=brokers, sink=sink)
        replication = kafka.replication
    postgres = LocalPostgres(root / "postgres", free_port(), durable=durable, sink=sink)
    stack = Stack(kafka, postgres, base, log)
    try:
        kafka.start()
        postgres.start()
        postgres.wait_ready(60)
        kafka.wait_ready(120)
        stack.settings = base.model_copy(
            update={
                "kafka_bootstrap_servers": kafka.bootstrap_servers,
                "kafka_replication_factor": replication,
                "database_url": postgres.database_url,
                "state_dir": root / "state",
                "kafka_max_message_bytes": max_message_bytes,
            }
        )
        asyncio.run(migrate(postgres.database_url))
        asyncio.run(ensure_topics(stack.settings))
        if isinstance(kafka, LocalKafkaCluster):
            asyncio.run(kafka.wait_for_topics([stack.settings.topic(t.name) for t in ALL_TOPICS]))
    except BaseException:
        stack.stop()
        raise
    return stack
