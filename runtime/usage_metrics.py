"""What a stage's AI calls cost, on its ``/metrics``: counters by stage and model of the
``usage`` its events record (contracts/usage.py), and the estimated spend at AI_PRICES."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from prometheus_client import CollectorRegistry, Counter

from contracts.usage import Price, Usage, spend

_COUNTERS = (  # (field of Usage, metric name, help)
    ("calls", "msgmem_ai_calls", "AI API calls"),
    ("input_tokens", "msgmem_ai_input_tokens", "Input tokens the API reported"),
    ("output_tokens", "msgmem_ai_output_tokens", "Output tokens the API reported"),
    ("audio_seconds", "msgmem_ai_audio_seconds", "Seconds of audio sent for transcription"),
    ("pages", "msgmem_ai_pages", "PDF pages sent to a vision model"),
    ("cache_hits", "msgmem_ai_cache_hits", "Results reused instead of paid for (calls saved)"),
)


class UsageMetrics:
    def __init__(self, registry: CollectorRegistry, stage: str) -> None:
        self._stage = stage
        self.registry = registry
        self._counters = {
            field: Counter(name, text, ["stage", "model"], registry=registry) for field, name, text in _COUNTERS
        }
        self._spend = Counter("msgmem_ai_spend_usd", "Estimated spend in USD at AI_PRICES (list prices as configured)",
                              ["stage", "model"], registry=registry)  # fmt: skip

    def record(self, usage: Usage | None, prices: Mapping[str, Price]) -> None:
        if usage is None:
            return
        for field, counter in self._counters.items():
            value = getattr(usage, field)
            if value:
                counter.labels(self._stage, usage.model).inc(value)
        self._spend.labels(self._stage, usage.model).inc(spend(usage, prices.get(usage.model)))

    def meter(self, prices: Mapping[str, Price]) -> Callable[[Usage | None], None]:
        """``record`` at these prices: what a handler calls with each event's usage."""
        return lambda usage: self.record(usage, prices)


def no_meter(_usage: Usage | None) -> None:
    """The meter of a handler built without metrics (tests, `msgmem replay`)."""
