"""The embed stage's handler: one input record -> at most one wa.embeddings event."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from contracts import processes
from contracts.settings import Settings
from streams.common.records import InputRecord, Output
from runtime.tokenizer import Tokenizer
from streams.embed.chunking import Chunked, chunk_text
from runtime.embedder import BatchingEmbedder
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

    async def __call__(self, record: InputRecord) -> list[Output]:
        work = read(record)
        if work is None:
            return []
        if isinstance(work, Deleted):
            return [output(removed(work))]
        if self.embedder is None:
            return [output(skipped(work, self.cfg, "no_api_key", "OPENAI_API_KEY is not set"))]
        chunked = self.chunk(work)
        vectors = await self.embedder.embed(
            [c.text for c in chunked.chunks], [c.end_token - c.start_token for c in chunked.chunks]
        ) if chunked.chunks else []  # fmt: skip
        return [output(replaced(work, self.cfg, chunked, vectors, now=self.now()))]

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
