"""The pure fold behind `msgmem status`'s AI spend: events with ``usage`` -> totals per UTC day,
stage and model, priced at AI_PRICES; redeliveries count once, events without usage not at all."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import orjson
import pytest

from contracts import embeddings
from contracts.embeddings import ChunksReplaced
from contracts.usage import DEFAULT_PRICES, Price, Usage, spend
from msgmem.usage import Totals, UsageReport, fold, render
from tests.unit.embed.factory import captioned, extracted, transcribed
from tests.unit.projections.factory import Chat

CHAT = Chat(channel="USG")
DAY1, DAY2 = datetime(2026, 11, 20, 9, tzinfo=UTC), datetime(2026, 11, 21, 23, 59, tzinfo=UTC)


def at(event: Any, when: datetime, usage: Usage | None, event_id: str | None = None) -> Any:
    return event.model_copy(update={"produced_at": when, "usage": usage, "event_id": event_id or event.event_id})


def embedded(pmid: str, when: datetime, usage: Usage) -> ChunksReplaced:
    return ChunksReplaced(
        event_id=f"emb-{pmid}", chat_key=CHAT.key, occurred_at=when, received_at=when, provider="whapi",
        channel_id="USG", delivery_id="d", message_id=CHAT.mid(pmid), provider_message_id=pmid, source="text",
        version_at=when, text_sha256="00" * 32, token_count=3, model=usage.model, dimensions=2, tokenizer="cl100k_base",
        chunk_size_tokens=700, chunk_overlap_tokens=140, input_event_id="in", produced_at=when, usage=usage,
    )  # fmt: skip


VOICE = Usage(model="gpt-4o-mini-transcribe", calls=1, input_tokens=120, output_tokens=30, audio_seconds=90)
PAGES = Usage(model="gpt-4o-mini", calls=3, input_tokens=3000, output_tokens=600, pages=3)
PHOTO = Usage(model="gpt-4o-mini", calls=1, input_tokens=85, output_tokens=20)


def events() -> list[Any]:
    return [
        at(transcribed(CHAT, "v1", "hi"), DAY1, VOICE),
        at(transcribed(CHAT, "v2", "hi"), DAY1, Usage(model="gpt-4o-mini-transcribe", cache_hits=1), "v2-cached"),
        at(transcribed(CHAT, "v1", "hi"), DAY1, VOICE),  # a redelivery: the same event id
        at(captioned(CHAT, "p1", "a receipt"), DAY2, PHOTO),
        at(extracted(CHAT, "d1", "scan"), DAY2, PAGES),
        at(extracted(CHAT, "d2", "text layer"), DAY2, None),  # no model, no usage
        embedded("t1", DAY2, Usage(model="text-embedding-3-small", calls=1, input_tokens=1000)),
        embedded("t2", DAY2, Usage(model="text-embedding-3-small", input_tokens=500, cache_hits=2)),
    ]


def test_events_fold_into_daily_totals_per_stage_and_model() -> None:
    totals = fold(events(), DEFAULT_PRICES)
    assert list(totals) == [
        (date(2026, 11, 20), "transcribe", "gpt-4o-mini-transcribe"),
        (date(2026, 11, 21), "caption", "gpt-4o-mini"),
        (date(2026, 11, 21), "embed", "text-embedding-3-small"),
        (date(2026, 11, 21), "extract", "gpt-4o-mini"),
    ]
    voice = totals[(date(2026, 11, 20), "transcribe", "gpt-4o-mini-transcribe")]
    assert (voice.calls, voice.audio_seconds, voice.cache_hits) == (1, 90, 1)  # the redelivery counted once
    assert voice.spend_usd == pytest.approx((120 * 3.00 + 30 * 5.00) / 1e6)  # audio tokens in, text out
    minutes = fold([at(transcribed(CHAT, "w", "hi"), DAY1, VOICE.model_copy(update={"model": "whisper-1"}))], DEFAULT_PRICES)
    assert next(iter(minutes.values())).spend_usd == pytest.approx(1.5 * 0.006)  # whisper-1: by the minute
    pages = totals[(date(2026, 11, 21), "extract", "gpt-4o-mini")]
    assert (pages.calls, pages.pages, pages.input_tokens, pages.output_tokens) == (3, 3, 3000, 600)
    assert pages.spend_usd == pytest.approx((3000 * 0.15 + 600 * 0.60) / 1e6)
    embed = totals[(date(2026, 11, 21), "embed", "text-embedding-3-small")]
    assert (embed.calls, embed.input_tokens, embed.cache_hits) == (1, 1500, 2)


def test_the_window_and_the_price_table_decide() -> None:
    later = fold(events(), DEFAULT_PRICES, since=date(2026, 11, 21))
    assert {day for day, _, _ in later} == {date(2026, 11, 21)}
    unpriced = fold(events(), {})  # a model without a price costs nothing rather than a guess
    assert all(t.spend_usd == 0 for t in unpriced.values()) and sum(t.calls for t in unpriced.values()) == 6
    contract = {"gpt-4o-mini": Price(input_per_1m_tokens=1, output_per_1m_tokens=0, per_page=0.01)}
    assert fold(events(), contract)[(date(2026, 11, 21), "extract", "gpt-4o-mini")].spend_usd == pytest.approx(
        3000 / 1e6 + 0.03
    )
    assert spend(Usage(model="x", calls=4), Price(per_call=0.5)) == 2


def test_the_report_sums_models_and_prices_a_thousand_messages() -> None:
    totals = fold(events(), DEFAULT_PRICES)
    report = UsageReport(date(2026, 11, 20), 2, totals, messages=40)
    assert report.spend_usd == pytest.approx(sum(t.spend_usd for t in totals.values()))
    assert report.per_1000_messages == pytest.approx(report.spend_usd * 25)
    both = report.by_model[("caption", "gpt-4o-mini")]
    assert isinstance(both, Totals) and both.calls == 1
    text = render(report)
    assert "estimated spend: $" in text and "per 1,000 messages" in text and "check your contract" in text
    assert "gpt-4o-mini-transcribe" in text and "total" in text
    assert report.as_json()["messages"] == 40 and len(report.as_json()["daily"]) == 4  # type: ignore[arg-type]
    empty = UsageReport(date(2026, 11, 20), 7, {}, messages=0)
    assert empty.per_1000_messages is None and "no messages" in render(empty)


def test_embeddings_written_before_usage_existed_still_decode_and_count_nothing() -> None:
    event = embedded("old", DAY1, Usage(model="text-embedding-3-small", calls=1, input_tokens=9))
    raw = orjson.loads(embeddings.encode_event(event))
    del raw["usage"]
    old = embeddings.decode_event(orjson.dumps(raw))
    assert isinstance(old, ChunksReplaced) and old.usage is None and fold([old], DEFAULT_PRICES) == {}
