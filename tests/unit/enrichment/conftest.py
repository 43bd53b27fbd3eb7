"""The fake OpenAI server on a real socket, a real AsyncOpenAI pointed at it, and a local store
holding the media fixtures."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from openai import AsyncOpenAI
from prometheus_client import CollectorRegistry

from contracts.settings import Settings
from msgmem.localstack.http_server import serving
from streams.common.enrichment.cache import CachedResults, CacheMetrics, MemoryResultCache
from runtime.openai_client import make_openai
from runtime.media_storage import LocalMediaStore
from runtime.usage_metrics import UsageMetrics
from tests.fakes.events import put_fixture
from tests.fakes.openai_api import FakeOpenAI


def usage_counters(metrics: UsageMetrics, stage: str, model: str) -> dict[str, float]:
    """The msgmem_ai_* counters of (stage, model), by their suffix (calls, input_tokens, ..., spend_usd)."""
    out = {}
    for metric in metrics.registry.collect():
        for sample in metric.samples:
            if sample.name.endswith("_total") and sample.labels == {"stage": stage, "model": model}:
                out[sample.name.removeprefix("msgmem_ai_").removesuffix("_total")] = sample.value
    return out


@dataclass
class Env:
    fake: FakeOpenAI
    url: str
    settings: Settings
    client: AsyncOpenAI
    store: LocalMediaStore
    cache: MemoryResultCache
    results: CachedResults
    metrics: CacheMetrics


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    fake = FakeOpenAI()
    async with serving(fake.app) as url:
        settings = Settings(
            _env_file=None, openai_api_key=fake.api_key, openai_base_url=f"{url}/v1", openai_timeout_seconds=2,
            media_local_dir=tmp_path / "media",
        )  # type: ignore[call-arg]  # fmt: skip
        client = make_openai(settings)
        assert client is not None
        store = LocalMediaStore(settings.media_dir, settings.media_bucket)
        for name in ("voice_note.ogg", "audio_clip.mp3", "receipt_photo.jpg", "invoice_text.pdf", "receipt_scanned.pdf",
                     "sticker.webp", "video_clip.mp4"):  # fmt: skip
            await put_fixture(store, name)
        cache = MemoryResultCache()
        metrics = CacheMetrics("test", CollectorRegistry())
        try:
            yield Env(fake, url, settings, client, store, cache, CachedResults(cache, metrics), metrics)
        finally:
            await client.close()
