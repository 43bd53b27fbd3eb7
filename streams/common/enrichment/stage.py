"""The handler shape the enrichment stages share: MediaStored in, one result event out.

Per record: ignore what the stage does not handle; record a skip (disabled, no API key,
too large) without a call; else take the result from the cache or compute it once (read the
object, call the model) and emit it. Transient failures propagate to the runner's retries;
after the last one ``give_up`` writes an EnrichmentFailed beside the dead letter.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from contracts.enrichment import DerivedEvent, SkipReason
from contracts.media import MediaStored
from contracts.errors import describe_error
from contracts.usage import Usage
from streams.common.records import InputRecord, Output
from runtime.errors import TransientError
from streams.common.enrichment.cache import CachedResults, CacheKey, Result
from streams.common.enrichment.events import StageConfig, failed, media_stored, output, skip_reason, skipped
from runtime.media_storage import MediaStore, StorageError
from runtime.usage_metrics import no_meter

log = logging.getLogger(__name__)

Now = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


class MediaGone(Exception):
    """The object is no longer in storage (swept after retention, or erased): recorded as skipped."""


async def read_object(store: MediaStore, m: MediaStored) -> bytes:
    """The stored bytes; a store outage is transient, a missing object is ``MediaGone``."""
    try:
        return await store.read(m.path)
    except FileNotFoundError as exc:
        raise MediaGone(f"{m.path} is no longer in storage") from exc
    except (StorageError, OSError, TimeoutError) as exc:  # the store classifies its own failures
        raise TransientError(f"media store: {describe_error(exc)}") from exc


@dataclass
class EnrichmentHandler:
    """``compute(m, data)`` calls the model and returns a JSON-able result; ``build(m, result, cached, now)``
    turns it into the stage's event. ``wants`` selects the MediaStored events the stage handles."""

    cfg: StageConfig
    store: MediaStore
    results: CachedResults
    has_client: bool
    wants: Callable[[MediaStored], bool]
    compute: Callable[[MediaStored, bytes], Awaitable[Result]]
    build: Callable[[MediaStored, Result, bool, datetime], DerivedEvent]
    check: Callable[[MediaStored], tuple[SkipReason, str] | None] = lambda _m: None  # stage-specific skips
    now: Now = utc_now
    meter: Callable[[Usage | None], None] = no_meter

    async def __call__(self, record: InputRecord) -> list[Output]:
        m = media_stored(record)
        if m is None or not self.wants(m):
            return []
        reason = skip_reason(m, self.cfg, has_client=self.has_client) or self.check(m)
        if reason is not None:
            return [output(self.cfg.topic, skipped(m, self.cfg, *reason, now=self.now()))]
        key = CacheKey(m.sha256, self.cfg.stage, self.cfg.model)

        async def compute() -> Result:
            return await self.compute(m, await read_object(self.store, m))

        try:
            result, cached = await self.results.get_or_compute(key, compute)
        except MediaGone as gone:
            return [output(self.cfg.topic, skipped(m, self.cfg, "unreadable", str(gone), now=self.now()))]
        event = self.build(m, result, cached, self.now())
        self.meter(getattr(event, "usage", None))
        return [output(self.cfg.topic, event)]

    def give_up(self, record: InputRecord, error: BaseException, attempts: int) -> list[Output]:
        try:
            m = media_stored(record)
        except Exception:  # noqa: BLE001 - poison: the dead letter says it all
            return []
        if m is None:
            return []
        return [output(self.cfg.topic, failed(m, self.cfg, error, attempts, now=self.now()))]
