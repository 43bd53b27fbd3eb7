"""The embed stage's handler: one input record -> at most one wa.embeddings event."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from contracts import processes
from contracts.settings import Settings
from contracts.usage import Usage
from streams.common.records import InputRecord, Output
from runtime.tokenizer import Tokenizer
from streams.embed.chunking import Chunked, chunk_text
from runtime.embedder import BatchingEmbedder
from runtime.usage_metrics import no_meter
from streams.embed.logic import Deleted, EmbedConfig, NewText, failed, output, read, removed, replaced, skipped

STAGE = processes.EMBED.name


def config(settings: Settings) -> EmbedConfig:
    return EmbedConfig(
        settings.embeddings_model, settings.embeddings_dimensions, settings.embeddings_tokenizer,
        settings.embeddings_chunk_size_tokens, settings.embeddings_chunk_overlap_tokens, settings.embeddings_max_chunks,
    )  # fmt: skip


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class EmbedHandler:
    """``embedder`` None: there is no OPENAI_API_KEY, and every text is recorded as skipped."""

    cfg: EmbedConfig
    tokenizer: Tokenizer
    embedder: BatchingEmbedder | None
    now: Callable[[], datetime] = utc_now
    meter: Callable[[Usage | None], None] = no_meter

    async def __call__(self, record: InputRecord) -> list[Output]:
        work = read(record)
        if work is None:
            return []
        if isinstance(work, Deleted):
            return [output(removed(work))]
        if self.embedder is None:
            return [output(skipped(work, self.cfg, "no_api_key", "OPENAI_API_KEY is not set"))]
        chunked = self.chunk(work)
        if not chunked.chunks:
            return [output(replaced(work, self.cfg, chunked, [], now=self.now()))]
        vectors, spent = await self.embedder.embed_counted(
            [c.text for c in chunked.chunks], [c.end_token - c.start_token for c in chunked.chunks]
        )
        usage = Usage(model=self.cfg.model, calls=spent.calls, input_tokens=spent.input_tokens,
                      cache_hits=spent.cache_hits)  # fmt: skip
        self.meter(usage)
        return [output(replaced(work, self.cfg, chunked, vectors, now=self.now(), usage=usage))]

    def chunk(self, work: NewText) -> Chunked:
        if not work.text.strip():
            return Chunked(0, False, ())
        cfg = self.cfg
        return chunk_text(work.text, self.tokenizer, cfg.chunk_size, cfg.chunk_overlap, cfg.max_chunks)

    def give_up(self, record: InputRecord, error: BaseException, attempts: int) -> list[Output]:
        try:
            work = read(record)
        except Exception:  # noqa: BLE001 - poison: the dead letter says it all
            return []
        if not isinstance(work, NewText):
            return []
        return [output(failed(work, self.cfg, error, attempts))]
