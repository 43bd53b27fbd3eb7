"""What a rebuild did, per projection, and its text form for the command line."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from projections.rebuild.compare import TableComparison


@dataclass
class Phases:
    """Seconds per phase. ``read_decode`` and ``write`` are busy times summed over the load's
    workers, and overlap (a pipeline); ``load`` is the load's wall time. ``compare`` includes the
    last catch-up, under the locks; ``swap`` runs from asking for the exclusive lock to the commit."""

    read_decode: float = 0.0
    write: float = 0.0
    load: float = 0.0
    index: float = 0.0
    catch_up: float = 0.0
    compare: float = 0.0
    swap: float = 0.0
    total: float = 0.0


@dataclass
class ProjectionReport:
    projection: str
    tables: tuple[str, ...]
    events: int = 0  # records read from the log, every phase
    workers: int = 1  # processes that loaded the bulk
    applied: int = 0
    undecodable: int = 0
    refused: int = 0
    skipped_at: list[str] = field(default_factory=list)
    live_behind: int = 0  # events the rebuild applied that the live projector had not, at the comparison
    comparisons: list[TableComparison] = field(default_factory=list)
    swapped: bool = False
    outcome: str = ""
    writers_paused: float = 0.0  # seconds the live projector waited for the comparison and the swap
    readers_paused: float = 0.0  # seconds reads waited for the swap itself
    warnings: list[str] = field(default_factory=list)
    phases: Phases = field(default_factory=Phases)

    @property
    def match(self) -> bool:
        return bool(self.comparisons) and all(c.match for c in self.comparisons)

    @property
    def events_per_second(self) -> float:
        return self.events / self.phases.total if self.phases.total else 0.0


@dataclass
class RebuildReport:
    projections: list[ProjectionReport]
    dry_run: bool = False
    require_match: bool = False

    @property
    def exit_code(self) -> int:
        """1 when differences were found and the caller asked to be told (dry run, --require-match)."""
        strict = self.dry_run or self.require_match
        return 1 if strict and any(not p.match for p in self.projections) else 0

    def as_json(self) -> dict[str, Any]:
        return {"dry_run": self.dry_run, "require_match": self.require_match, "exit_code": self.exit_code,
                "projections": [asdict(p) | {"match": p.match} for p in self.projections]}  # fmt: skip


def render(report: RebuildReport) -> str:
    lines: list[str] = []
    for p in report.projections:
        ph = p.phases
        lines.append(f"projection {p.projection} ({', '.join(p.tables)}): {p.events:,} events in {ph.total:.1f}s "
                     f"= {p.events_per_second:,.0f} events/s")  # fmt: skip
        lines.append(f"  phases: load {ph.load:.1f}s by {p.workers} worker(s) (busy: read+decode "
                     f"{ph.read_decode:.1f}s, write {ph.write:.1f}s, overlapping), indexes {ph.index:.1f}s, "
                     f"catch-up {ph.catch_up:.1f}s, compare {ph.compare:.1f}s, swap {ph.swap:.2f}s")  # fmt: skip
        if p.undecodable or p.refused:
            lines.append(f"  skipped {p.undecodable} undecodable and {p.refused} refused events, as the live projector"
                         f" does (see msgmem dlq list): {', '.join(p.skipped_at)}")  # fmt: skip
        if p.live_behind:
            lines.append(f"  the live projector had not applied {p.live_behind:,} of these events: their rows"
                         " differ as expected")  # fmt: skip
        lines.append(f"  {'table':<22} {'live rows':>10} {'rebuilt':>10}  {'live checksum':<16}  {'rebuilt':<16}"
                     "  result")  # fmt: skip
        for c in p.comparisons:
            result = "same" if c.match else (f"DIFFERENT: {c.changed} changed, {c.only_live} only live, "
                                             f"{c.only_rebuilt} only rebuilt")  # fmt: skip
            lines.append(f"  {c.table:<22} {c.live.rows:>10,} {c.rebuilt.rows:>10,}  {c.live.checksum:<16}  "
                         f"{c.rebuilt.checksum:<16}  {result}")  # fmt: skip
            for d in c.samples:
                key = ", ".join(f"{k}={v}" for k, v in d.key.items())
                what = f"columns {', '.join(d.columns)}" if d.kind == "changed" else d.kind.replace("_", " ")
                lines.append(f"      {key}: {what}")
        lines.extend(f"  warning: {w}" for w in p.warnings)
        paused = f" (writes paused {p.writers_paused:.2f}s, reads {p.readers_paused:.2f}s)" if p.swapped else ""
        lines.append(f"  {p.outcome}{paused}")
    return "\n".join(lines)
