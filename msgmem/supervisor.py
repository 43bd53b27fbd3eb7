"""Restarting crashed children with exponential backoff, for `msgmem dev`.

``RestartPolicy`` decides how long to wait before the next start of one child: pure
arithmetic over the times it is told. ``Supervisor`` applies it to running processes: each
``tick`` notices the children that exited, says so in one line, and starts them again once
their delay has passed; it reads time only through the clock it is given, and starts
processes only through the factories it is given, so both are tested without processes.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Backoff:
    """1 s, 2 s, 4 s ... up to 30 s between restarts; a child that stayed up ``reset_after``
    seconds before it exited starts the series again from ``first``."""

    first: float = 1.0
    factor: float = 2.0
    cap: float = 30.0
    reset_after: float = 60.0

    def delay(self, streak: int) -> float:
        """The wait before the ``streak``-th restart in a row (1-based)."""
        return min(self.first * self.factor ** (streak - 1), self.cap)


class RestartPolicy:
    """When to start one child again. Pure: the caller says when it started and exited."""

    def __init__(self, backoff: Backoff = Backoff()) -> None:
        self.backoff = backoff
        #: Restarts so far, over the child's whole life.
        self.restarts = 0
        self._streak = 0
        self._started_at: float | None = None

    def started(self, now: float) -> None:
        self._started_at = now

    def exited(self, now: float) -> float:
        """The child exited at ``now``: the seconds to wait before starting it again."""
        if self._started_at is not None and now - self._started_at >= self.backoff.reset_after:
            self._streak = 0
        self._started_at = None
        self._streak += 1
        self.restarts += 1
        return self.backoff.delay(self._streak)


def describe_exit(returncode: int | None) -> str:
    """``signal SIGKILL`` for a child killed by a signal (a negative Popen return code), else ``code 1``."""
    if returncode is None:
        return "unknown status"
    if returncode < 0:
        try:
            return f"signal {signal.Signals(-returncode).name}"
        except ValueError:
            return f"signal {-returncode}"
    return f"code {returncode}"


class Process(Protocol):
    """What the supervisor needs of a started child (``msgmem.localstack.processes.Child``)."""

    name: str

    @property
    def pid(self) -> int | None: ...

    @property
    def returncode(self) -> int | None: ...

    def running(self) -> bool: ...

    def is_ready(self) -> bool: ...


@dataclass
class _Entry:
    name: str
    start: Callable[[], Process]
    policy: RestartPolicy
    process: Process | None = None
    restart_at: float | None = None  # set while the child is down, waiting for its delay
    awaiting_ready: float | None = None  # the time of a restart whose readiness is not yet reported


class Supervisor:
    """Keeps a set of children running; ``tick()`` is called periodically by the owner's loop.

    ``say`` receives one line per event (an exit with its restart delay, a failed start, a
    child ready again); ``on_change`` is called with the current pids after every start.
    """

    def __init__(
        self,
        *,
        say: Callable[[str], None],
        on_change: Callable[[dict[str, int | None]], None] = lambda _pids: None,
        backoff: Backoff = Backoff(),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._say = say
        self._on_change = on_change
        self._backoff = backoff
        self._clock = clock
        self._entries: dict[str, _Entry] = {}

    def adopt(self, process: Process, start: Callable[[], Process]) -> None:
        """Supervise ``process`` (already started); ``start()`` starts a new one like it."""
        entry = _Entry(process.name, start, RestartPolicy(self._backoff), process)
        entry.policy.started(self._clock())
        self._entries[process.name] = entry

    def processes(self) -> list[Process]:
        """The current process of each child, in the order they were adopted."""
        return [e.process for e in self._entries.values() if e.process is not None]

    def pids(self) -> dict[str, int | None]:
        return {name: e.process.pid if e.process is not None else None for name, e in self._entries.items()}

    def tick(self) -> None:
        now = self._clock()
        changed = False
        for entry in self._entries.values():
            process = entry.process
            if entry.restart_at is None and process is not None:
                if not process.running():
                    delay = entry.policy.exited(now)
                    entry.restart_at = now + delay
                    entry.awaiting_ready = None
                    self._say(
                        f"{entry.name} exited ({describe_exit(process.returncode)}); "
                        f"restarting in {delay:g}s (restart {entry.policy.restarts})"
                    )
                elif entry.awaiting_ready is not None and process.is_ready():
                    self._say(
                        f"{entry.name} is back (pid {process.pid}, "
                        f"ready {now - entry.awaiting_ready:.1f}s after its restart)"
                    )
                    entry.awaiting_ready = None
            if entry.restart_at is not None and now >= entry.restart_at:
                changed |= self._restart(entry, now)
        if changed:
            self._on_change(self.pids())

    def _restart(self, entry: _Entry, now: float) -> bool:
        try:
            process = entry.start()
        except Exception as exc:  # noqa: BLE001 - a failed start counts as one more crash, retried later
            delay = entry.policy.exited(now)
            entry.restart_at = now + delay
            self._say(f"{entry.name} could not start ({exc}); retrying in {delay:g}s (restart {entry.policy.restarts})")
            return False
        entry.process = process
        entry.restart_at = None
        entry.policy.started(now)
        entry.awaiting_ready = now
        return True
