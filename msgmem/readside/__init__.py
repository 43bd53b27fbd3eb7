"""The read-side service as deployed: the recall app (``projections.recall``: recall, the
memory API, the web console) with the console's pipeline page wired to ``msgmem.status`` and
``msgmem.dlq`` (``OperatorPipeline``), which the projections layer may not import itself.
Run it with ``python -m msgmem.readside`` (uvicorn on RECALL_HOST:RECALL_PORT)."""

from __future__ import annotations

import logging
from datetime import UTC

from contracts.settings import Settings
from msgmem import dlq
from msgmem.status import PartitionLag, collect_lags
from projections.recall.console.pipeline import DeadLetter, Lag, PipelineView, RetryOutcome

log = logging.getLogger(__name__)


class OperatorPipeline:
    """The console's pipeline page over Kafka: lags as `msgmem status` counts them, dead letters
    as `msgmem dlq list` folds them, a retry as `msgmem dlq retry <id>` runs it."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    async def view(self) -> PipelineView:
        """What can be read now: a broker or database that does not answer leaves its part empty
        and says so (the error's type only), instead of failing the page."""
        problems, lags, letters = [], [], []
        try:
            lags = [_lag(p) for p in await collect_lags(self._settings)]
        except Exception as exc:  # noqa: BLE001 - shown on the page, the page still answers
            problems.append(f"lags unavailable ({type(exc).__name__})")
        try:
            found = (await dlq.load(self._settings)).values()
            ordered = sorted(found, key=lambda x: (x.state != "open", -x.letter.failed_at.timestamp()))
            letters = [_letter(x) for x in ordered]
        except Exception as exc:  # noqa: BLE001
            problems.append(f"dead letters unavailable ({type(exc).__name__})")
        if problems:
            log.warning("console pipeline page: %s", "; ".join(problems))
        return PipelineView(lags, letters, "; ".join(problems) or None)

    async def retry(self, letter_id: str, by: str) -> RetryOutcome | None:
        chosen = dlq.select(await dlq.load(self._settings), stage=None, ids=[letter_id], everything=False)
        if not chosen:
            return None
        [result] = await dlq.retry(self._settings, chosen, by=dlq.operator(by))
        return RetryOutcome(result.ok, result.detail)


def _lag(p: PartitionLag) -> Lag:
    return Lag(p.stage, p.topic, p.partition, p.committed, p.end, p.lag)


def _letter(x: dlq.Letter) -> DeadLetter:
    retried = x.retried
    return DeadLetter(
        id=x.letter.dead_letter_id, stage=x.letter.stage, state=x.state, error_type=x.letter.error_type,
        error=x.letter.error, failed_at=x.letter.failed_at.astimezone(UTC), failures=x.failures,
        retried_by=retried.retried_by if retried else None,
        retried_at=retried.retried_at.astimezone(UTC) if retried else None,
    )  # fmt: skip


__all__ = ["OperatorPipeline"]
