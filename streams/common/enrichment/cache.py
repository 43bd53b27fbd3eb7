"""No double spend: model results cached by (sha256 of the file, stage, model).

The cache is a Postgres table (``enrichment_cache``, migration 0003) rather than a
compacted topic: a lookup is one indexed read from any worker for any chat (a topic would
have to be read whole into every worker on start, since its key, the file hash, is not
the input's partitioning key), it survives restarts and replays, and Supabase has it
already. Within a worker, identical files in flight share one call (single flight), so
even a burst of the same forwarded voice note pays once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import asyncpg
import orjson
from prometheus_client import CollectorRegistry, Counter

from contracts.errors import describe_error
from runtime.errors import StoreUnavailable
from runtime.pg_unavailable import UNAVAILABLE
from runtime.usage_metrics import UsageMetrics

Result = dict[str, Any]
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CacheKey:
    sha256: str
    stage: str
    model: str


class ResultCache(Protocol):
    async def get(self, key: CacheKey) -> Result | None: ...

    async def put(self, key: CacheKey, result: Result) -> None: ...


class MemoryResultCache:
    """A fake (and the cache of a process without a database) that records what it was asked."""

    def __init__(self) -> None:
        self.items: dict[CacheKey, Result] = {}
        self.gets: list[CacheKey] = []

    async def get(self, key: CacheKey) -> Result | None:
        self.gets.append(key)
        return self.items.get(key)

    async def put(self, key: CacheKey, result: Result) -> None:
        self.items.setdefault(key, result)


class PostgresResultCache:
    """Postgres down is ``StoreUnavailable``: the stage holds the record until it answers again
    (computing anyway could pay twice for a result already stored)."""

    TIMEOUT = 10.0

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @classmethod
    async def connect(cls, dsn: str, *, statement_cache_size: int, max_size: int = 4) -> "PostgresResultCache":
        pool = await asyncpg.create_pool(dsn, min_size=1, max_size=max_size, statement_cache_size=statement_cache_size)
        return cls(pool)

    async def close(self) -> None:
        await self._pool.close()

    async def get(self, key: CacheKey) -> Result | None:
        try:
            raw = await self._pool.fetchval(
                "select result::text from enrichment_cache where sha256 = $1 and stage = $2 and model = $3",
                key.sha256, key.stage, key.model, timeout=self.TIMEOUT,
            )  # fmt: skip
        except UNAVAILABLE as exc:
            raise StoreUnavailable(f"result cache unavailable: {describe_error(exc)}") from exc
        return orjson.loads(raw) if raw is not None else None

    async def put(self, key: CacheKey, result: Result) -> None:
        try:
            await self._pool.execute(
                "insert into enrichment_cache (sha256, stage, model, result) values ($1, $2, $3, $4::text::jsonb) "
                "on conflict on constraint enrichment_cache_pkey do nothing",
                key.sha256, key.stage, key.model, orjson.dumps(result).decode(), timeout=self.TIMEOUT,
            )  # fmt: skip
        except UNAVAILABLE as exc:
            raise StoreUnavailable(f"result cache unavailable: {describe_error(exc)}") from exc


class CacheMetrics:
    def __init__(self, stage: str, registry: CollectorRegistry) -> None:
        self.hits = Counter(
            "msgmem_enrichment_cache_hits", "Results reused from the cache (no API call)", ["stage"], registry=registry
        ).labels(stage)
        self.misses = Counter(
            "msgmem_enrichment_cache_misses", "Results computed (an API call)", ["stage"], registry=registry
        ).labels(stage)
        self.unkept = Counter(
            "msgmem_enrichment_cache_unkept", "Results paid for but not cached (the store was down)", ["stage"],
            registry=registry,
        ).labels(stage)
        self.usage = UsageMetrics(registry, stage)


class CachedResults:
    """``get_or_compute``: the cached result, or ``compute()`` once per key however many ask at once."""

    def __init__(self, cache: ResultCache, metrics: CacheMetrics) -> None:
        self._cache = cache
        self._metrics = metrics
        self._inflight: dict[CacheKey, asyncio.Future[Result]] = {}

    async def _keep(self, key: CacheKey, result: Result) -> None:
        """Store a result paid for. The store down now must not fail the record: holding it
        would call the model again once Postgres is back; the result is on its way to the log
        anyway, and only a later rerun of this file would pay for it a second time."""
        try:
            await self._cache.put(key, result)
        except StoreUnavailable as exc:
            self._metrics.unkept.inc()
            log.warning("%s result not cached (%s)", key.stage, describe_error(exc))

    async def get_or_compute(self, key: CacheKey, compute: Callable[[], Awaitable[Result]]) -> tuple[Result, bool]:
        """Return (result, was_cached)."""
        pending = self._inflight.get(key)
        if pending is not None:
            result = await asyncio.shield(pending)
            self._metrics.hits.inc()
            return result, True
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            cached = await self._cache.get(key)
            if cached is not None:
                self._metrics.hits.inc()
                future.set_result(cached)
                return cached, True
            self._metrics.misses.inc()
            result = await compute()
            await self._keep(key, result)
            future.set_result(result)
            return result, False
        except asyncio.CancelledError:
            future.cancel()
            raise
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: waiters re-raise it, nobody else must
            raise
        finally:
            del self._inflight[key]
