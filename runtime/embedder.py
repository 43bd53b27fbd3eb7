"""Texts -> vectors through the OpenAI embeddings API, in as few calls as the limits allow.

``BatchingEmbedder`` is what the embed stage and recall hold. Every caller hands it a few
texts and awaits their vectors; texts queued by concurrent callers (the records a stage
worker processes at once, the recalls a server answers at once) go out together in one
API call of at most EMBEDDINGS_BATCH_MAX_INPUTS texts and EMBEDDINGS_BATCH_MAX_TOKENS
tokens, after waiting at most EMBEDDINGS_BATCH_WAIT_MS for company, with at most
EMBEDDINGS_MAX_REQUESTS calls in flight. Identical texts in flight share one slot, and the
last EMBEDDINGS_CACHE_ENTRIES vectors are kept by (SHA-256 of the text, model,
dimensions): WhatsApp is full of "ok" and "thanks", and a replay re-embeds what it saw.

A failed call fails every text in it with the same error; each waiting record is then
retried by the StageRunner on its own (a 429's Retry-After included), and the retries
batch together again. Vectors travel as base64 of little-endian float32, as the API sends
them with ``encoding_format=base64``.

``embed_counted`` also says what the caller's texts cost: a call's ``usage.prompt_tokens``
(or, when the server sends none, our own token counts) shared among its texts by their
token counts, the call itself charged to the text that opened it, and every text reused
(from memory or another caller's call in flight) a cache hit. Summed over callers, that is
exactly the calls and tokens paid.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from openai import AsyncOpenAI
from prometheus_client import CollectorRegistry, Counter

from contracts.embeddings import decode_vector, encode_vector
from contracts.settings import Settings
from runtime.errors import TransientError
from runtime.openai_client import ModelRejected, api_errors, embeddings_tokens
from runtime.usage_metrics import UsageMetrics


@dataclass(frozen=True)
class Embedded:
    """One call's answer: base64 float32 vectors in order, and the tokens the API counted (None: not said)."""

    vectors: list[str]
    input_tokens: int | None = None


@dataclass(frozen=True)
class EmbedUsage:
    """What an ``embed_counted`` caller's texts cost."""

    calls: int = 0
    input_tokens: int = 0
    cache_hits: int = 0


# texts -> their vectors; raises TransientError / ModelRejected
EmbedCall = Callable[[list[str]], Awaitable[Embedded]]
_Charged = tuple[str, int, int]  # (vector, input tokens, calls) of a text its caller sent


class OpenAIEmbeddings:
    """One ``POST /embeddings`` call."""

    def __init__(self, client: AsyncOpenAI, model: str, dimensions: int) -> None:
        self._client = client
        self.model = model
        self.dimensions = dimensions

    async def __call__(self, texts: list[str]) -> Embedded:
        with api_errors("embeddings"):
            result = await self._client.embeddings.create(
                model=self.model, input=texts, dimensions=self.dimensions, encoding_format="base64"
            )
        data = sorted(result.data, key=lambda d: d.index)
        if len(data) != len(texts):
            raise TransientError(f"embeddings: {len(data)} vectors for {len(texts)} inputs")
        out = []
        for item in data:
            value = item.embedding
            encoded = value if isinstance(value, str) else encode_vector(value)  # a server that ignores base64
            size = len(decode_vector(encoded))
            if size != self.dimensions:
                raise ModelRejected(f"embeddings: {self.model} answered {size} dimensions, not {self.dimensions}")
            out.append(encoded)
        return Embedded(out, embeddings_tokens(result))


class EmbedMetrics:
    def __init__(self, registry: CollectorRegistry, name: str = "embed") -> None:
        self.calls = Counter("msgmem_embeddings_api_calls", "Embeddings API calls, by outcome", ["user", "outcome"],
                             registry=registry)  # fmt: skip
        self.inputs = Counter("msgmem_embeddings_api_inputs", "Texts sent to the embeddings API", ["user"],
                              registry=registry).labels(name)  # fmt: skip
        self.cache_hits = Counter("msgmem_embeddings_cache_hits", "Texts whose vector came from memory", ["user"],
                                  registry=registry).labels(name)  # fmt: skip
        self._name = name
        self.usage = UsageMetrics(registry, name)

    def call(self, outcome: str) -> None:
        self.calls.labels(self._name, outcome).inc()


@dataclass
class _Pending:
    key: str
    text: str
    tokens: int
    future: asyncio.Future[_Charged]


class BatchingEmbedder:
    def __init__(
        self, call: EmbedCall, *, cache_key: str, max_inputs: int = 256, max_tokens: int = 250_000,
        wait_seconds: float = 0.02, max_requests: int = 4, cache_entries: int = 4096,
        metrics: EmbedMetrics | None = None,
    ) -> None:  # fmt: skip
        self._call = call
        self._cache_key = cache_key  # model and dimensions: part of every cache key
        self._max_inputs = max_inputs
        self._max_tokens = max_tokens
        self._wait = wait_seconds
        self._requests = asyncio.Semaphore(max_requests)
        self._cache: OrderedDict[str, str] = OrderedDict()
        self._cache_entries = cache_entries
        self._metrics = metrics or EmbedMetrics(CollectorRegistry())
        self._queue: list[_Pending] = []
        self._queued_tokens = 0
        self._inflight: dict[str, asyncio.Future[_Charged]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def embed(self, texts: Sequence[str], tokens: Sequence[int]) -> list[str]:
        """Vectors of ``texts`` (``tokens``: each one's token count, for the per-call token limit)."""
        vectors, _usage = await self.embed_counted(texts, tokens)
        return vectors

    async def embed_counted(self, texts: Sequence[str], tokens: Sequence[int]) -> tuple[list[str], EmbedUsage]:
        """``embed``, and what these texts cost this caller."""
        loop = asyncio.get_running_loop()
        waits: list[asyncio.Future[_Charged]] = []
        owned: list[bool] = []  # sent for this caller (else reused: a cache hit)
        for text, count in zip(texts, tokens, strict=True):
            key = hashlib.sha256(f"{self._cache_key}\x1f{text}".encode()).hexdigest()
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
                self._metrics.cache_hits.inc()
                done: asyncio.Future[_Charged] = loop.create_future()
                done.set_result((cached, 0, 0))
                waits.append(done)
                owned.append(False)
            elif key in self._inflight:
                waits.append(self._inflight[key])
                owned.append(False)
            else:
                future: asyncio.Future[_Charged] = loop.create_future()
                self._inflight[key] = future
                self._enqueue(_Pending(key, text or " ", max(1, count), future))
                waits.append(future)
                owned.append(True)
        # shield: a cancelled caller must not cancel a vector another caller shares
        results = await asyncio.gather(*(asyncio.shield(w) for w in waits), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result
        charged: list[_Charged] = results  # type: ignore[assignment]
        paid = [c for c, mine in zip(charged, owned, strict=True) if mine]
        usage = EmbedUsage(sum(c[2] for c in paid), sum(c[1] for c in paid), len(charged) - len(paid))
        return [c[0] for c in charged], usage

    async def aclose(self) -> None:
        """Send what is queued and wait for the calls in flight."""
        self._flush(everything=True)
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def _enqueue(self, pending: _Pending) -> None:
        self._queue.append(pending)
        self._queued_tokens += pending.tokens
        if len(self._queue) >= self._max_inputs or self._queued_tokens >= self._max_tokens:
            self._flush(everything=False)
        if self._queue and self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self._wait, self._flush, True)

    def _flush(self, everything: bool) -> None:
        """Send full batches; with ``everything`` the partial one too (its wait is over)."""
        if everything and self._timer is not None:
            self._timer.cancel()
        if everything:
            self._timer = None
        while self._queue and (
            everything or len(self._queue) >= self._max_inputs or self._queued_tokens >= self._max_tokens
        ):
            batch: list[_Pending] = []
            tokens = 0
            while self._queue and len(batch) < self._max_inputs and (
                not batch or tokens + self._queue[0].tokens <= self._max_tokens
            ):
                item = self._queue.pop(0)
                batch.append(item)
                tokens += item.tokens
            self._queued_tokens -= tokens
            task = asyncio.create_task(self._send(batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _send(self, batch: list[_Pending]) -> None:
        try:
            async with self._requests:
                answer = await self._call([p.text for p in batch])
        except BaseException as exc:
            self._metrics.call("error")
            for p in batch:
                self._inflight.pop(p.key, None)
                if not p.future.done():
                    p.future.set_exception(exc)
                    p.future.exception()  # retrieved: its waiters re-raise it
            if not isinstance(exc, Exception):
                raise
            return
        self._metrics.call("ok")
        self._metrics.inputs.inc(len(batch))
        shares = _shares(answer.input_tokens, [p.tokens for p in batch])
        for i, (p, vector) in enumerate(zip(batch, answer.vectors, strict=True)):
            self._inflight.pop(p.key, None)
            self._remember(p.key, vector)
            if not p.future.done():
                p.future.set_result((vector, shares[i], 1 if i == 0 else 0))

    def _remember(self, key: str, vector: str) -> None:
        if self._cache_entries <= 0:
            return
        self._cache[key] = vector
        if len(self._cache) > self._cache_entries:
            self._cache.popitem(last=False)


def _shares(total: int | None, counts: list[int]) -> list[int]:
    """``total`` tokens split by ``counts`` (our own counts when the API said none); the rounding
    remainder goes to the first, so the shares sum to ``total``."""
    if total is None:
        return list(counts)
    weight = sum(counts) or 1
    shares = [total * c // weight for c in counts]
    shares[0] += total - sum(shares)
    return shares


def make_embedder(
    settings: Settings, client: AsyncOpenAI, *, metrics: EmbedMetrics | None = None, wait_seconds: float | None = None
) -> BatchingEmbedder:
    """The embedder of EMBEDDINGS_MODEL / EMBEDDINGS_DIMENSIONS with the batching settings.
    Recall passes ``wait_seconds=0``: a query never waits for company."""
    call = OpenAIEmbeddings(client, settings.embeddings_model, settings.embeddings_dimensions)
    return BatchingEmbedder(
        call, cache_key=f"{settings.embeddings_model}/{settings.embeddings_dimensions}",
        max_inputs=settings.embeddings_batch_max_inputs, max_tokens=settings.embeddings_batch_max_tokens,
        wait_seconds=settings.embeddings_batch_wait_ms / 1000 if wait_seconds is None else wait_seconds,
        max_requests=settings.embeddings_max_requests, cache_entries=settings.embeddings_cache_entries,
        metrics=metrics,
    )  # fmt: skip
