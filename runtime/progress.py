"""A one-line progress bar with rate and ETA, for replays and rebuilds (no dependency)."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    def __init__(self, total: int, label: str, *, stream: TextIO = sys.stderr, every: float = 0.25) -> None:
        self.total = max(total, 0)
        self.done = 0
        self.label = label
        self._stream = stream
        self._every = every
        self._started = time.monotonic()
        self._last = 0.0

    def advance(self, n: int = 1) -> None:
        self.done += n
        now = time.monotonic()
        if now - self._last >= self._every or self.done >= self.total:
            self._last = now
            self._draw(now)

    def rate(self) -> float:
        elapsed = time.monotonic() - self._started
        return self.done / elapsed if elapsed > 0 else 0.0

    def _draw(self, now: float) -> None:
        rate = self.rate()
        fraction = self.done / self.total if self.total else 1.0
        bar = "#" * int(fraction * 30)
        eta = (self.total - self.done) / rate if rate > 0 else float("inf")
        eta_text = f"{eta:5.0f}s" if eta != float("inf") else "    ?"
        end = "\n" if self.done >= self.total else ""
        self._stream.write(
            f"\r{self.label} [{bar:<30}] {self.done}/{self.total} {fraction:6.1%} {rate:,.0f}/s ETA {eta_text}{end}"
        )
        self._stream.flush()

    def close(self) -> None:
        if self.done < self.total:
            self._stream.write("\n")
            self._stream.flush()
