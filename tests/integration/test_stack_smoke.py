"""The embedded stack is real: a Kafka broker with the project's producer settings, and
PostgreSQL with pgvector and the migrated schema."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import asyncpg
import pytest
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from contracts.raw import RawDelivery
from contracts.settings import Settings
from contracts.topics import ALL_TOPICS, RAW, RAW_MAX_MESSAGE_BYTES
from runtime.kafka import connection_config, ensure_topics, make_consumer, make_producer, producer_config
from msgmem.migrate import MigrationError, apply_migrations, load_migrations, Migration

pytestmark = pytest.mark.integration


async def test_produce_and_consume_with_project_producer_settings(settings: Settings) -> None:
    cfg = producer_config(settings)
    assert cfg["acks"] == "all" and cfg["enable_idempotence"] is True

    delivery = RawDelivery(
        delivery_id=str(uuid.uuid4()), provider="whapi", channel="15550001000",
        received_at=datetime.now(UTC), headers={"content-type": "application/json"},
        body=b'{"messages": []}' + b" " * (2 * 1024 * 1024),  # larger than Kafka's 1 MiB default
    )
    producer = make_producer(settings)
    await producer.start()
    try:
        meta = await producer.send_and_wait(RAW.name, delivery.body, key=delivery.key, headers=delivery.kafka_headers())
    finally:
        await producer.stop()

    consumer = make_consumer(settings, group_id=None)
    await consumer.start()
    try:
        tp = TopicPartition(RAW.name, meta.partition)
        consumer.assign([tp])
        consumer.seek(tp, meta.offset)
        batch = await consumer.getmany(tp, timeout_ms=10_000, max_records=1)
        record = batch[tp][0]
    finally:
        await consumer.stop()
    assert record.key == b"whapi:15550001000"
    assert RawDelivery.from_kafka(record.value, list(record.headers)) == delivery


async def test_topics_are_declared_once_and_created_idempotently(settings: Settings) -> None:
    report = await ensure_topics(settings)
    assert report.created == []
    assert sorted(report.existing) == sorted(t.name for t in ALL_TOPICS)

    admin = AIOKafkaAdminClient(**connection_config(settings))
    await admin.start()
    try:
        described = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, settings.topic(RAW.name))])
    finally:
        await admin.close()
    configs = {entry[0]: entry[1] for entry in described[0].resources[0][4]}
    assert int(configs["max.message.bytes"]) == RAW_MAX_MESSAGE_BYTES
    assert configs["retention.ms"] == str(settings.retention_ms(RAW))  # RAW_RETENTION_DAYS (30 by default)
    assert settings.retention_ms(RAW) == 30 * 24 * 3600 * 1000


async def test_vector_roundtrip_and_match_function(db: asyncpg.Connection) -> None:
    await db.execute(
        "insert into chats (chat_key, provider, channel_id, chat_id) values ('whapi:1:2', 'whapi', '1', '2')"
    )
    await db.execute(
        """insert into chat_messages (id, chat_key, provider, channel_id, provider_message_id, origin, direction,
               message_type, body, provider_timestamp, received_at)
           values ('m1', 'whapi:1:2', 'whapi', '1', 'p1', 'user', 'inbound', 'text', 'hello', now(), now())"""
    )
    near = [1.0] + [0.0] * 1535
    far = [0.0, 1.0] + [0.0] * 1534
    for index, vector in enumerate((near, far)):
        await db.execute(
            """insert into message_embeddings (message_id, chunk_index, chat_key, chunk_text, start_token, end_token,
                   chunk_count, embedding, model)
               values ('m1', $1, 'whapi:1:2', $2, 0, 5, 2, $3::text::vector, 'test')""",
            index, f"chunk {index}", str(vector),
        )
    stored = await db.fetchval("select embedding::text from message_embeddings where chunk_index = 0")
    assert [float(x) for x in stored.strip("[]").split(",")] == near

    rows = await db.fetch(
        "select * from match_session_messages('whapi:1:2', $1::text::vector, 5, 0.5)", str(near)
    )
    assert [(r["message_id"], r["chunk_index"], r["direction"]) for r in rows] == [("m1", 0, "inbound")]
    assert rows[0]["similarity"] == pytest.approx(1.0)


async def test_row_level_security_is_enabled_on_every_table(db: asyncpg.Connection) -> None:
    rows = await db.fetch(
        "select relname, relrowsecurity from pg_class where relnamespace = 'public'::regnamespace and relkind = 'r'"
    )
    assert rows and all(r["relrowsecurity"] for r in rows), rows


async def test_migrations_are_recorded_idempotent_and_append_only(settings: Settings) -> None:
    admin = await asyncpg.connect(settings.database_url)
    name = f"mig_{uuid.uuid4().hex[:8]}"
    await admin.execute(f"create database {name}")
    url = settings.database_url.rsplit("/", 1)[0] + f"/{name}"
    conn = await asyncpg.connect(url)
    try:
        migrations = load_migrations()
        assert [m.version for m in migrations][0] == "0001_initial"
        assert await apply_migrations(conn, migrations) == [m.version for m in migrations]
        assert await apply_migrations(conn, migrations) == []
        assert await conn.fetchval("select count(*) from schema_migrations") == len(migrations)

        edited = [Migration(migrations[0].version, migrations[0].sql + "\n-- edited")] + migrations[1:]
        with pytest.raises(MigrationError, match="changed after it was applied"):
            await apply_migrations(conn, edited)
    finally:
        await conn.close()
        await admin.execute(f"drop database {name}")
        await admin.close()
