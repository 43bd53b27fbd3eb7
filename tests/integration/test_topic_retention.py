"""Retention by policy on the real broker: topics are created with the retention the settings
give (wa.raw RAW_RETENTION_DAYS with day-long segments, derived topics forever), and
`ensure_topics` (`msgmem topics`, `msgmem dev`) gives an existing topic a changed policy while
keeping what an operator set on it by hand."""

from __future__ import annotations

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from contracts.settings import Settings
from contracts.topics import DAY_MS, DEADLETTER, RAW
from runtime.kafka import connection_config, ensure_topics, topic_configs
from tests.waiting import eventually

pytestmark = pytest.mark.integration


async def configs(settings: Settings, *names: str) -> dict[str, dict[str, str]]:
    admin = AIOKafkaAdminClient(**connection_config(settings))
    await admin.start()
    try:
        found = await topic_configs(admin, [settings.topic(n) for n in names])
    finally:
        await admin.close()
    return {settings.declared_topic(k): v for k, v in found.items()}


async def settled(settings: Settings, topic: str, name: str, value: str) -> bool:
    return (await configs(settings, topic))[topic].get(name) == value


async def test_topics_take_the_policy_at_creation_and_when_it_changes(settings: Settings) -> None:
    made = await configs(settings, "wa.raw", "wa.messages", "wa.erasures")
    assert made["wa.raw"]["retention.ms"] == str(30 * DAY_MS) and made["wa.raw"]["segment.ms"] == str(DAY_MS)
    assert made["wa.messages"]["retention.ms"] == "-1"
    assert made["wa.erasures"]["cleanup.policy"] == "compact" and made["wa.erasures"]["retention.ms"] == "-1"

    # an operator's own setting on wa.raw, set by hand
    admin = AIOKafkaAdminClient(**connection_config(settings))
    await admin.start()
    try:
        await admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, settings.topic("wa.raw"),
                                                  made["wa.raw"] | {"compression.type": "zstd"})])  # fmt: skip
    finally:
        await admin.close()
    # the broker applies a config change asynchronously (a metadata record): wait until it shows
    await eventually(lambda: settled(settings, "wa.raw", "compression.type", "zstd"))

    stricter = settings.model_copy(update={"raw_retention_days": 7, "topic_retention_days": {"wa.deadletter": 90}})
    report = await ensure_topics(stricter)
    assert sorted(report.retention_changed) == [
        (DEADLETTER.name, -1, 90 * DAY_MS), (RAW.name, 30 * DAY_MS, 7 * DAY_MS),
    ]
    await eventually(lambda: settled(settings, "wa.raw", "retention.ms", str(7 * DAY_MS)))
    await eventually(lambda: settled(settings, "wa.deadletter", "retention.ms", str(90 * DAY_MS)))
    now = await configs(settings, "wa.raw", "wa.deadletter", "wa.messages")
    assert now["wa.raw"]["retention.ms"] == str(7 * DAY_MS)
    assert now["wa.raw"]["compression.type"] == "zstd"  # kept
    assert now["wa.raw"]["max.message.bytes"] == made["wa.raw"]["max.message.bytes"]
    assert now["wa.deadletter"]["retention.ms"] == str(90 * DAY_MS) and now["wa.deadletter"]["segment.ms"] == str(DAY_MS)
    assert now["wa.messages"]["retention.ms"] == "-1"

    assert (await ensure_topics(stricter)).retention_changed == []  # once applied, nothing to do
