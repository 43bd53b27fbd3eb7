"""Prometheus metrics of one ingest app (own registry, so several apps can live in one process)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


@dataclass
class IngestMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        self.deliveries = Counter(
            "msgmem_ingest_deliveries", "Webhook deliveries by provider and outcome",
            ["provider", "outcome"], registry=self.registry,
        )
        self.append_seconds = Histogram(
            "msgmem_ingest_append_seconds", "Time to append a delivery to wa.raw (broker ack)",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.in_flight = Gauge("msgmem_ingest_requests_in_flight", "Deliveries being handled", registry=self.registry)
        self._outcomes: dict[tuple[str, str], Counter] = {}

    def count(self, provider: str, outcome: str) -> None:
        """Increment a delivery outcome; label children are cached (``labels()`` is not free)."""
        child = self._outcomes.get((provider, outcome))
        if child is None:
            child = self._outcomes[(provider, outcome)] = self.deliveries.labels(provider, outcome)
        child.inc()
