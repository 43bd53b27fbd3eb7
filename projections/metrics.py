"""Prometheus metrics of one projector (own registry, so several can live in one process)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server


@dataclass
class ProjectorMetrics:
    projection: str
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        labels = ["projection"]
        self.applied = Counter(
            "msgmem_projector_events_applied", "Events written to Postgres", labels, registry=self.registry
        ).labels(self.projection)
        self.skipped = Counter(
            "msgmem_projector_events_skipped", "Events below the stored offset (already applied)",
            labels, registry=self.registry,
        ).labels(self.projection)
        self._dead = Counter(
            "msgmem_projector_dead_lettered", "Events sent to wa.deadletter, by reason",
            [*labels, "reason"], registry=self.registry,
        )
        self.batches = Counter(
            "msgmem_projector_batches", "Batches committed", labels, registry=self.registry
        ).labels(self.projection)
        self._retries = Counter(
            "msgmem_projector_retries", "Failed batch attempts that were retried, by kind",
            [*labels, "kind"], registry=self.registry,
        )
        self.batch_seconds = Histogram(
            "msgmem_projector_batch_seconds", "Time to decode, write and commit one batch",
            labels, registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        ).labels(self.projection)
        self._flagged = Counter(
            "msgmem_projector_rows_flagged", "Rows flagged as they were written, by reason (outbound messages "
            "sent while the chat was opted out, or outside the 24-hour window without a template)",
            [*labels, "reason"], registry=self.registry,
        )
        self.assigned = Gauge(
            "msgmem_projector_assigned_partitions", "Partitions this process owns", labels, registry=self.registry
        ).labels(self.projection)

    def dead_lettered(self, reason: str, count: int = 1) -> None:
        self._dead.labels(self.projection, reason).inc(count)

    def flagged(self, reason: str, count: int = 1) -> None:
        self._flagged.labels(self.projection, reason).inc(count)

    def retried(self, kind: str) -> None:
        self._retries.labels(self.projection, kind).inc()


class MetricsServer:
    """``/metrics`` on a port of its own (a daemon thread), for processes with no web app."""

    def __init__(self, registry: CollectorRegistry, port: int, host: str = "127.0.0.1") -> None:
        self._registry, self._port, self._host = registry, port, host
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> int:
        self._server, self._thread = start_http_server(self._port, addr=self._host, registry=self._registry)
        return int(self._server.server_port)

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
