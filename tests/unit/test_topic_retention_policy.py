"""The retention policy as data: which topics take one, what a setting gives each, and the
segment size that lets the broker delete on time."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from contracts.settings import Settings
from contracts.topics import ALL_TOPICS, DAY_MS, EMBEDDINGS, ERASURES, FOREVER, MESSAGES, RAW, retention_config


def settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


def test_by_default_raw_deliveries_age_out_in_30_days_and_derived_events_stay() -> None:
    s = settings()
    assert s.retention_ms(RAW) == 30 * DAY_MS
    assert {spec.name for spec in ALL_TOPICS if s.retention_ms(spec) != FOREVER} == {RAW.name}


def test_per_topic_days_from_the_environment_and_zero_keeps_forever() -> None:
    s = settings(raw_retention_days=0, topic_retention_days="wa.embeddings=365, wa.messages=0")
    assert s.retention_ms(RAW) == FOREVER
    assert s.retention_ms(EMBEDDINGS) == 365 * DAY_MS
    assert s.retention_ms(MESSAGES) == FOREVER
    assert settings(topic_retention_days="wa.raw=2").retention_ms(RAW) == 2 * DAY_MS  # the entry wins


@pytest.mark.parametrize("value", ["wa.erasures=30", "nope=3", "wa.raw", "wa.raw=-1", "wa.raw=x"])
def test_a_policy_the_ledger_or_nonsense_cannot_take_is_refused(value: str) -> None:
    with pytest.raises(ValidationError) as refused:
        settings(topic_retention_days=value)
    assert "topic_retention_days" in str(refused.value)


def test_the_erasure_ledger_holds_no_content_and_keeps_forever() -> None:
    assert not ERASURES.content and settings(raw_retention_days=1).retention_ms(ERASURES) == FOREVER


def test_a_bounded_retention_gets_segments_of_a_day_at_most() -> None:
    assert retention_config(FOREVER) == {"retention.ms": "-1"}
    assert retention_config(7 * DAY_MS) == {"retention.ms": str(7 * DAY_MS), "segment.ms": str(DAY_MS)}
    assert retention_config(3_600_000)["segment.ms"] == "3600000"
    assert RAW.config(None, 30 * DAY_MS)["segment.ms"] == str(DAY_MS)
