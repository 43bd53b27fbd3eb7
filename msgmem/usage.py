"""What memory costs, per day, stage and model: a pure fold of the events that carry ``usage``.

The enrichment results (wa.transcripts, wa.captions, wa.documents) and the embeddings
(wa.embeddings) record what their model calls cost (contracts/usage.py); `msgmem status`
reads them over a window and folds them here into daily totals with the estimated spend at
AI_PRICES (list prices as configured: check your contract), and divides by the messages
logged on wa.messages in the same window. A redelivered event (same ``event_id``) counts
once; events without ``usage`` (written before it existed, or skips and failures) count
nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime

from contracts.embeddings import ChunksReplaced
from contracts.envelope import Envelope
from contracts.usage import COUNTS, Price, Usage, spend

Key = tuple[date, str, str]  # (UTC day, stage, model)
MESSAGE_TYPES = frozenset({b"message_received", b"message_sent"})  # what "a message" is on wa.messages


@dataclass
class Totals:
    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    audio_seconds: float = 0.0
    pages: int = 0
    cache_hits: int = 0
    spend_usd: float = 0.0

    def add(self, usage: Usage, price: Price | None) -> None:
        self.merge(usage)
        self.spend_usd += spend(usage, price)

    def merge(self, other: Usage | Totals) -> None:
        """Add ``other``'s counts (and its spend, if it is ``Totals``)."""
        for name in (*COUNTS, "spend_usd") if isinstance(other, Totals) else COUNTS:
            setattr(self, name, getattr(self, name) + getattr(other, name))


def stage_of(event: Envelope) -> str:
    return "embed" if isinstance(event, ChunksReplaced) else str(getattr(event, "stage", "unknown"))


def fold(events: Iterable[Envelope], prices: Mapping[str, Price], *, since: date | None = None) -> dict[Key, Totals]:
    """Daily totals by (day of ``produced_at``, stage, model), from ``since`` on (every day if None)."""
    totals: dict[Key, Totals] = {}
    seen: set[str] = set()
    for event in events:
        usage: Usage | None = getattr(event, "usage", None)
        produced: datetime | None = getattr(event, "produced_at", None)
        if usage is None or produced is None or event.event_id in seen:
            continue
        seen.add(event.event_id)
        day = produced.date()
        if since is not None and day < since:
            continue
        totals.setdefault((day, stage_of(event), usage.model), Totals()).add(usage, prices.get(usage.model))
    return dict(sorted(totals.items()))


@dataclass(frozen=True)
class UsageReport:
    since: date
    days: int
    totals: dict[Key, Totals]
    messages: int  # on wa.messages in the window
    by_model: dict[tuple[str, str], Totals] = field(init=False)

    def __post_init__(self) -> None:
        by_model: dict[tuple[str, str], Totals] = {}
        for (_day, stage, model), t in self.totals.items():
            by_model.setdefault((stage, model), Totals()).merge(t)
        object.__setattr__(self, "by_model", dict(sorted(by_model.items())))

    @property
    def spend_usd(self) -> float:
        return sum(t.spend_usd for t in self.totals.values())

    @property
    def per_1000_messages(self) -> float | None:
        return self.spend_usd * 1000 / self.messages if self.messages else None

    def as_json(self) -> dict[str, object]:
        return {
            "since": self.since.isoformat(), "days": self.days, "messages": self.messages,
            "spend_usd": round(self.spend_usd, 6), "spend_per_1000_messages_usd": (
                None if self.per_1000_messages is None else round(self.per_1000_messages, 6)
            ),
            "daily": [{"day": d.isoformat(), "stage": s, "model": m, **vars(t)} for (d, s, m), t in self.totals.items()],
        }  # fmt: skip


_HEADER = f"{'day':<10} {'stage':<10} {'model':<24} {'calls':>7} {'in tok':>10} {'out tok':>9} {'audio s':>8} " \
          f"{'pages':>6} {'cache':>6} {'usd':>10}"  # fmt: skip


def _row(day: str, stage: str, model: str, t: Totals) -> str:
    return (f"{day:<10} {stage:<10} {model:<24} {t.calls:>7} {t.input_tokens:>10} {t.output_tokens:>9} "
            f"{t.audio_seconds:>8.0f} {t.pages:>6} {t.cache_hits:>6} {t.spend_usd:>10.4f}")  # fmt: skip


def render(report: UsageReport) -> str:
    lines = [f"AI usage since {report.since.isoformat()} ({report.days} days; cache = calls saved):", _HEADER]
    lines += [_row(d.isoformat(), s, m, t) for (d, s, m), t in report.totals.items()]
    lines += [_row("total", s, m, t) for (s, m), t in report.by_model.items()]
    per = report.per_1000_messages
    per_text = f"${per:.4f} per 1,000 messages" if per is not None else "no messages to divide by"
    lines.append(
        f"estimated spend: ${report.spend_usd:.4f} over {report.days} days, {report.messages} messages: {per_text}"
        " (list prices as configured in AI_PRICES; check your contract)"
    )
    return "\n".join(lines)
