"""KAFKA_TOPIC_PREFIX: declared names everywhere above the Kafka clients, prefixed names on the broker."""

from __future__ import annotations

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from pydantic import ValidationError

from contracts.settings import Settings
from runtime.kafka import make_consumer, make_producer
from runtime.topic_prefix import PrefixedConsumer, PrefixedProducer, TopicNames


def test_settings_map_declared_names_to_the_broker_and_back() -> None:
    plain = Settings.model_construct()
    assert (plain.topic("wa.raw"), plain.declared_topic("wa.raw")) == ("wa.raw", "wa.raw")
    staging = Settings(kafka_topic_prefix="staging.")
    assert staging.topic("wa.raw") == "staging.wa.raw"
    assert staging.declared_topic("staging.wa.raw") == "wa.raw"
    assert staging.declared_topic("other.wa.raw") == "other.wa.raw"  # not ours: left as it is


@pytest.mark.parametrize("prefix", ["with space-", "a/b", "x" * 201])
def test_a_prefix_the_broker_would_refuse_is_refused_at_start(prefix: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Settings(kafka_topic_prefix=prefix)
    assert "kafka_topic_prefix" in str(caught.value) and prefix not in str(caught.value)


def test_topic_names_translate_partitions_offsets_and_records() -> None:
    names = TopicNames("t1-")
    tp = TopicPartition("wa.media", 3)
    assert names.broker_tp(tp) == TopicPartition("t1-wa.media", 3)
    assert names.declared_tp(names.broker_tp(tp)) == tp
    assert names.declared_keys(names.broker_keys({tp: 7})) == {tp: 7}
    record = ConsumerRecord("t1-wa.media", 3, 9, 0, 0, b"k", b"v", None, 1, 1, ())
    assert names.declared_record(record).topic == "wa.media"
    with pytest.raises(ValueError):
        TopicNames("")


async def test_clients_translate_only_when_a_prefix_is_set() -> None:
    plain, prefixed = Settings.model_construct(), Settings(kafka_topic_prefix="t1-")
    clients = [
        make_consumer(plain, group_id=None), make_producer(plain),
        make_consumer(prefixed, "wa.raw", group_id="g"), make_producer(prefixed),
    ]
    try:
        assert [type(c) for c in clients] == [AIOKafkaConsumer, AIOKafkaProducer, PrefixedConsumer, PrefixedProducer]
        consumer = clients[2]
        assert consumer._subscription.subscription.topics == {"t1-wa.raw"}  # what the broker is asked for
        assert consumer.subscription() == {"wa.raw"}  # what the code sees
    finally:
        for client in clients:
            await client.stop()
