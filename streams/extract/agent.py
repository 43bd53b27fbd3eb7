"""The extract stage's handler: MediaStored (PDF) -> DocumentExtracted / skipped / failed.

The text layer is free and read every time; only pages without one cost a model call, and
those results are cached by (sha256, "extract", model). Pages already read during this
record's earlier attempts are kept in memory, so a retry after page 3 of 5 failed does not
pay for pages 1 and 2 again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from contracts import processes
from contracts.enrichment import DOCUMENTS_TOPIC, SkipReason
from contracts.media import MediaStored
from contracts.settings import Settings
from contracts.usage import Usage, combine
from streams.common.records import InputRecord, Output
from streams.common.enrichment.cache import CachedResults, CacheKey, Result
from streams.common.enrichment.events import StageConfig, failed, media_stored, output, skipped, usage_of
from streams.common.enrichment.stage import MediaGone, Now, read_object, utc_now
from streams.extract.logic import assemble, pages_for_model, wants
from streams.extract.pdf import UnreadablePdf, render_page, text_layers
from streams.extract.reader import PageReader
from runtime.media_storage import MediaStore
from runtime.usage_metrics import no_meter

STAGE = processes.EXTRACT.name


@dataclass(frozen=True)
class ExtractOptions:
    min_chars: int
    max_model_pages: int
    dpi: int
    vision_pages: bool


def config(settings: Settings) -> tuple[StageConfig, ExtractOptions]:
    cfg = StageConfig(STAGE, DOCUMENTS_TOPIC, settings.pdf_extraction_model, True, settings.extract_max_bytes)
    options = ExtractOptions(
        settings.pdf_text_min_chars, settings.pdf_max_model_pages, settings.pdf_render_dpi, settings.enable_pdf_vision_pages
    )
    return cfg, options


@dataclass
class ExtractHandler:
    cfg: StageConfig
    options: ExtractOptions
    store: MediaStore
    reader: PageReader | None
    results: CachedResults
    now: Now = utc_now
    meter: Callable[[Usage | None], None] = no_meter
    _read: dict[tuple[str, str], dict[int, tuple[str, Usage]]] = field(default_factory=dict)

    async def __call__(self, record: InputRecord) -> list[Output]:
        m = media_stored(record)
        if m is None or not wants(m):
            return []
        if m.size_bytes > self.cfg.max_bytes:
            detail = f"{m.size_bytes} bytes is above the {self.cfg.max_bytes}-byte limit"
            return [output(self.cfg.topic, skipped(m, self.cfg, "too_large", detail, now=self.now()))]
        try:
            data = await read_object(self.store, m)
            layers = await asyncio.to_thread(text_layers, data, self.options.min_chars)
        except (UnreadablePdf, MediaGone) as exc:
            return [output(self.cfg.topic, skipped(m, self.cfg, "unreadable", str(exc), now=self.now()))]
        reason = self._no_model_reason()
        to_read, _over_limit = pages_for_model(layers, self.options.max_model_pages if reason is None else 0)
        model_pages: dict[int, str] = {}
        cached = False
        usage = None
        if to_read:
            key = CacheKey(m.sha256, STAGE, self.cfg.model)
            result, cached = await self.results.get_or_compute(key, lambda: self._read_pages(m, data, to_read))
            model_pages = {int(n): text for n, text in result["pages"].items()}
            usage = usage_of(result, cached, self.cfg.model)
        event = assemble(m, self.cfg, layers, model_pages, skipped_reason=reason, cached=cached, now=self.now(),
                         usage=usage)  # fmt: skip
        self.meter(usage)
        return [output(self.cfg.topic, event)]

    def _no_model_reason(self) -> SkipReason | None:
        if not self.options.vision_pages:
            return "disabled"
        return "no_api_key" if self.reader is None else None

    async def _read_pages(self, m: MediaStored, data: bytes, numbers: list[int]) -> Result:
        assert self.reader is not None
        done = self._read.setdefault((m.sha256, self.cfg.model), {})

        async def one(number: int) -> None:
            if number not in done:
                png = await asyncio.to_thread(render_page, data, number, self.options.dpi)
                done[number] = await self.reader.read_page(png)  # type: ignore[union-attr]

        await asyncio.gather(*(one(n) for n in numbers))
        self._read.pop((m.sha256, self.cfg.model), None)
        usage = combine(self.cfg.model, [done[n][1] for n in numbers])  # pages paid in earlier attempts too
        return {"pages": {str(n): done[n][0] for n in numbers}, "usage": usage.model_dump(mode="json")}

    def give_up(self, record: InputRecord, error: BaseException, attempts: int) -> list[Output]:
        try:
            m = media_stored(record)
        except Exception:  # noqa: BLE001 - poison: the dead letter says it all
            return []
        if m is None:
            return []
        self._read.pop((m.sha256, self.cfg.model), None)
        return [output(self.cfg.topic, failed(m, self.cfg, error, attempts, now=self.now()))]
