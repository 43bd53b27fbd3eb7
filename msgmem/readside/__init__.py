"""The read-side service as deployed: the recall app (``projections.recall``: recall, the
memory API, the web console) with the console's pipeline page wired to ``msgmem.status`` and
``msgmem.dlq`` (``OperatorPipeline``), which the projections layer may not import itself.
Run it with ``python -m msgmem.readside`` (uvicorn on RECALL_HOST:RECALL_PORT)."""

from __future__ import annotations

from datetime import UTC

from contracts.settings import Settings
from msgmem import dlq
from msgmem.status import PartitionLag, collect_lags
from projections.recall.console.pipeline import DeadLetter, Lag, PipelineView, RetryOutcome


class OperatorPipeline:
    """The console's pipeline page over Kafka: lags as `msgmem status` counts them, dead letters
    as `msgmem dlq list` folds them, a retry as `msgmem dlq retry <id>` runs it."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    async def view(self) -> PipelineView:
        lags = await collect_lags(self._settings)
        letters = await dlq.load(self._settings)
        ordered = sorted(letters.values(), key=lambda x: (x.state != "open", -x.letter.failed_at.timestamp()))
        return PipelineView([_lag(p) for p in lags], [_letter(x) for x in ordered])

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
