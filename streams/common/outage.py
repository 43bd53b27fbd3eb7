"""Logging a run of failed attempts at something the input waits for (the broker acknowledging
outputs, the erasure ledger answering) as three lines at most per half minute: the first
failure, a periodic summary, and the recovery; never a line per attempt."""

from __future__ import annotations

import logging
import time

log = logging.getLogger(__name__)


class Outage:
    SUMMARY_EVERY = 30.0

    def __init__(self, what: str) -> None:
        self.what = what
        self.since: float | None = None
        self.attempts = 0
        self._last_line = 0.0

    def failed(self, error: BaseException) -> None:
        now = time.monotonic()
        self.attempts += 1
        if self.since is None:
            self.since = self._last_line = now
            log.warning("%s failed (%s); retrying while the input waits", self.what, type(error).__name__)
        elif now - self._last_line >= self.SUMMARY_EVERY:
            self._last_line = now
            log.warning("%s still failing after %.0fs and %d attempts (last: %s)",
                        self.what, now - self.since, self.attempts, type(error).__name__)  # fmt: skip

    def recovered(self) -> None:
        if self.since is not None:
            log.warning("%s succeeded again after %.1fs and %d failed attempts",
                        self.what, time.monotonic() - self.since, self.attempts)  # fmt: skip
        self.since = None
        self.attempts = 0
